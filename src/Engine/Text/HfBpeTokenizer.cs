using System.Text;
using System.Text.Json;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Text;

/// <summary>
/// A Hugging Face tokenizer.json of the SentencePiece-BPE kind Llama 2, Mistral and Gemma checkpoints ship: model.type
/// "BPE" with vocab, ranked merges and byte fallback (&lt;0xXX&gt; pieces), spaces as U+2581 (a Replace normalizer or a
/// Metaspace pre-tokenizer), with a prepended one where a Prepend normalizer or the Metaspace prepend_scheme asks.
/// Encoding merges the adjacent pair of lowest rank until none is left, as the tokenizers library does for this model
/// type (and is checked against it on real text). Hand-written because Microsoft.ML.Tokenizers has no reader for it:
/// its BpeTokenizer (2.0.1 and 3.0.0) has no byte fallback (a character outside the vocabulary becomes the unknown
/// token, not its UTF-8 bytes); its LlamaTokenizer / SentencePieceTokenizer read only the protobuf tokenizer.model,
/// whose BPE merges by piece score rather than by this file's ranked merge list; and 3.0.0's
/// SentencePieceTokenizer.CreateFromTokenizerJson reads only Unigram tokenizer.json files.
/// Byte-level tokenizer.json files (GPT-2, Llama 3, Qwen2) go to <see cref="ByteLevelBpeTokenizer"/>, which is the library's.
/// Not done: added tokens written inside the text ("&lt;s&gt;", chat markers) are encoded as text, not matched as tokens.
/// </summary>
public sealed class HfBpeTokenizer : ITextTokenizer
{
    private const char Space = '\u2581';
    private readonly Dictionary<string, int> _vocab;
    private readonly string[] _pieces;
    private readonly Dictionary<(int, int), (int Rank, int Id)> _merges = new();
    private readonly int _unkId;
    private readonly bool _fuseUnk;
    private readonly int[] _byteIds = new int[256];
    private readonly bool _prependSpace, _replaceSpace, _splitAtSpace;

    public int VocabSize => _pieces.Length;
    public int BosId { get; }
    public int EosId { get; }

    public static HfBpeTokenizer Load(string path, int? expectedVocab = null)
    {
        var root = JsonFiles.Parse(path, File.ReadAllBytes(path), "json").RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new ModelFormatException(path, "json", 0, "tokenizer.json is not a JSON object");
        return new HfBpeTokenizer(path, root, expectedVocab);
    }

    internal static HfBpeTokenizer Load(string path, JsonElement root, int? expectedVocab) => new(path, root, expectedVocab);

    private HfBpeTokenizer(string path, JsonElement root, int? expectedVocab)
    {
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(path, "model", 0, "missing");
        string type = model.TryGetProperty("type", out var ty) ? JsonFiles.Str(ty) ?? "" : "";
        if (type != "BPE") throw new ModelFormatException(path, "model.type", 0, $"'{type}' is not supported (only SentencePiece-style BPE)");
        if (!model.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(path, "model.vocab", 0, "missing or not an object");
        _vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        int maxId = MaxId(vocab, root);
        foreach (var p in vocab.EnumerateObject())
        {
            // Ids index the piece table, so they are bounded by the entries present, not by a constant.
            if (!JsonFiles.TryInt32(p.Value, out int id) || id < 0 || id > maxId)
                throw new ModelFormatException(path, $"model.vocab[{p.Name}]", 0, $"id {p.Value.GetRawText()} is not a non-negative integer below the number of entries");
            // A byte-fallback piece must name a byte: <0xZZ> would fail only when decoded.
            if (p.Name.Length == 6 && p.Name.StartsWith("<0x", StringComparison.Ordinal) && p.Name[5] == '>' && !IsHexByte(p.Name.AsSpan(3, 2)))
                throw new ModelFormatException(path, $"model.vocab[{p.Name}]", 0, "byte piece is not <0x00>..<0xFF>");
            _vocab[p.Name] = id;
        }
        if (_vocab.Count == 0) throw new ModelFormatException(path, "model.vocab", 0, "the vocabulary is empty");
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var a in added.EnumerateArray())
                if (a.ValueKind == JsonValueKind.Object && a.TryGetProperty("content", out var c) && a.TryGetProperty("id", out var i))
                {
                    if (JsonFiles.Str(c) is not { } content || !JsonFiles.TryInt32(i, out int aid) || aid < 0 || aid > maxId)
                        throw new ModelFormatException(path, "added_tokens", 0, $"entry {a.GetRawText()} needs a string content and an id below the number of entries");
                    _vocab.TryAdd(content, aid);
                }
        int size = _vocab.Values.Max() + 1;
        if (expectedVocab is { } ev && size != ev)
            throw new ModelFormatException(path, "model.vocab", 0, $"{size} pieces for a model vocabulary of {ev}");
        _pieces = new string[size];
        foreach (var (piece, id) in _vocab)
        {
            if (_pieces[id] is not null) throw new ModelFormatException(path, $"model.vocab[{piece}]", 0, $"id {id} is used twice");
            _pieces[id] = piece;
        }
        for (int i = 0; i < size; i++) _pieces[i] ??= "";
        int rank = 0;
        foreach (var m in TokenizerJson.Merges(path, model, _vocab)) _merges.TryAdd((m.LeftId, m.RightId), (rank++, m.MergedId));
        for (int b = 0; b < 256; b++) _byteIds[b] = _vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
        string unk = model.TryGetProperty("unk_token", out var u) ? JsonFiles.Str(u) ?? "<unk>" : "<unk>";
        _unkId = _vocab.TryGetValue(unk, out int unkId) ? unkId : -1;
        _fuseUnk = model.TryGetProperty("fuse_unk", out var fu) && fu.ValueKind == JsonValueKind.True;
        BosId = _vocab.TryGetValue("<s>", out int bos) ? bos : 1;
        EosId = _vocab.TryGetValue("</s>", out int eos) ? eos : 2;
        (_prependSpace, _replaceSpace, _splitAtSpace) = Spaces(path, root);
    }

    /// <summary>
    /// Where spaces become U+2581: legacy Llama files use normalizers Prepend("▁") and Replace(" ", "▁"); newer ones
    /// a Metaspace pre-tokenizer (prepend_scheme always / first / never, split); Gemma a Replace alone.
    /// </summary>
    private static (bool prepend, bool replace, bool split) Spaces(string path, JsonElement root)
    {
        bool prepend = false, replace = false, split = false;
        if (root.TryGetProperty("normalizer", out var norm))
            foreach (var n in TokenizerJson.Steps(norm, "normalizers"))
                switch (TokenizerJson.TypeOf(n))
                {
                    case "Prepend" when n.TryGetProperty("prepend", out var pp) && JsonFiles.Str(pp) == Space.ToString(): prepend = true; break;
                    case "Replace" when n.TryGetProperty("pattern", out var pat) && pat.ValueKind == JsonValueKind.Object
                        && pat.TryGetProperty("String", out var from) && JsonFiles.Str(from) == " "
                        && n.TryGetProperty("content", out var to) && JsonFiles.Str(to) == Space.ToString(): replace = true; break;
                    default: throw new ModelFormatException(path, "normalizer", 0, $"'{TokenizerJson.TypeOf(n)}' {n.GetRawText()} is not supported (Prepend \"▁\", Replace \" \" with \"▁\")");
                }
        if (root.TryGetProperty("pre_tokenizer", out var pre))
            foreach (var p in TokenizerJson.Steps(pre, "pretokenizers"))
                switch (TokenizerJson.TypeOf(p))
                {
                    case "Metaspace":
                        replace = true;
                        string scheme = p.TryGetProperty("prepend_scheme", out var ps) ? JsonFiles.Str(ps) ?? "always"
                            : p.TryGetProperty("add_prefix_space", out var ap) && ap.ValueKind == JsonValueKind.False ? "never" : "always";
                        // "first" differs from "always" only after added tokens split the text, which this reader does not do.
                        prepend |= scheme is "always" or "first";
                        split = !(p.TryGetProperty("split", out var sp) && sp.ValueKind == JsonValueKind.False);
                        break;
                    // Gemma's Split(" ", MergedWithPrevious) runs after the normalizer turned every space into U+2581: a no-op.
                    case "Split" when replace: break;
                    default: throw new ModelFormatException(path, "pre_tokenizer", 0, $"'{TokenizerJson.TypeOf(p)}' is not supported for SentencePiece-style BPE (Metaspace)");
                }
        return (prepend, replace, split);
    }

    // Ids beyond vocab + added_tokens entries would leave holes in the piece table (and let a number allocate it).
    private static int MaxId(JsonElement vocab, JsonElement root) =>
        vocab.GetPropertyCount() + (root.TryGetProperty("added_tokens", out var a) && a.ValueKind == JsonValueKind.Array ? a.GetArrayLength() : 0) + 256;

    private static bool IsHexByte(ReadOnlySpan<char> s) => s.Length == 2 && char.IsAsciiHexDigit(s[0]) && char.IsAsciiHexDigit(s[1]);

    public int[] Encode(string text, bool bos = true)
    {
        var ids = new List<int>();
        if (bos) ids.Add(BosId);
        if (text.Length == 0) return [.. ids];
        string s = (_prependSpace ? Space.ToString() : "") + (_replaceSpace ? text.Replace(' ', Space) : text);
        // Metaspace's split: every U+2581 starts a word, and merges stay inside words.
        int start = 0;
        for (int i = 1; i <= s.Length; i++)
            if (i == s.Length || (_splitAtSpace && s[i] == Space))
            {
                EncodeWord(s[start..i], ids);
                start = i;
            }
        return [.. ids];
    }

    private void EncodeWord(string s, List<int> ids)
    {
        // Start from single characters (code points); one outside the vocabulary becomes its UTF-8 byte pieces when all
        // of them exist (byte fallback), else the unknown piece (consecutive ones fused when fuse_unk says so).
        var sym = new List<int>(s.Length);
        for (int i = 0; i < s.Length; i += char.IsSurrogatePair(s, i) ? 2 : 1)
        {
            string ch = char.IsSurrogatePair(s, i) ? s.Substring(i, 2) : s[i].ToString();
            if (_vocab.TryGetValue(ch, out int id)) { sym.Add(id); continue; }
            var bytes = Encoding.UTF8.GetBytes(ch);
            if (bytes.All(b => _byteIds[b] >= 0)) { foreach (byte b in bytes) sym.Add(_byteIds[b]); continue; }
            if (_unkId < 0) continue; // no unknown piece: the character is dropped, as the library does
            if (!(_fuseUnk && sym.Count > 0 && sym[^1] == _unkId)) sym.Add(_unkId);
        }
        // Lowest-rank pair first, leftmost among equals (the library's priority queue of (rank, position)), on a linked
        // list of symbols with stale queue entries skipped: O(n log n) rather than a rescan per merge.
        int n = sym.Count;
        var next = new int[n];
        var prev = new int[n];
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
        var queue = new PriorityQueue<(int Left, int Right, int Merged), (int Rank, int Pos)>();
        void Push(int left)
        {
            int right = left < 0 ? -1 : next[left];
            if (right >= 0 && _merges.TryGetValue((sym[left], sym[right]), out var m)) queue.Enqueue((left, right, m.Id), (m.Rank, left));
        }
        for (int i = 0; i + 1 < n; i++) Push(i);
        while (queue.TryDequeue(out var e, out _))
        {
            // Stale: either side merged away or changed since the entry was queued.
            if (sym[e.Left] < 0 || next[e.Left] != e.Right || sym[e.Right] < 0
                || !_merges.TryGetValue((sym[e.Left], sym[e.Right]), out var m) || m.Id != e.Merged) continue;
            sym[e.Left] = e.Merged;
            sym[e.Right] = -1;
            next[e.Left] = next[e.Right];
            if (next[e.Left] >= 0) prev[next[e.Left]] = e.Left;
            Push(prev[e.Left]);
            Push(e.Left);
        }
        foreach (int id in sym)
            if (id >= 0) ids.Add(id);
    }

    public string Decode(IReadOnlyList<int> ids)
    {
        var bytes = new List<byte>();
        for (int i = 1; i < ids.Count; i++)
        {
            int id = ids[i];
            if (id == BosId || id == EosId || (uint)id >= (uint)_pieces.Length) continue;
            string p = _pieces[id];
            if (p.Length == 6 && p.StartsWith("<0x", StringComparison.Ordinal) && p[5] == '>' && IsHexByte(p.AsSpan(3, 2)))
            {
                bytes.Add(Convert.ToByte(p.Substring(3, 2), 16));
                continue;
            }
            p = p.Replace(Space, ' ');
            // The decoder's Strip(" ", 1) undoes the prepended space.
            if (_prependSpace && ids[i - 1] == BosId && p.StartsWith(' ')) p = p[1..];
            bytes.AddRange(Encoding.UTF8.GetBytes(p));
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }
}
