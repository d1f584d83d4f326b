using System.Text;
using System.Text.Json;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Text;

/// <summary>
/// A Hugging Face tokenizer.json of the SentencePiece-BPE kind Llama checkpoints ship: model.type "BPE" with vocab,
/// ranked merges and byte fallback (&lt;0xXX&gt; pieces); spaces as U+2581 with a prepended one. Encoding merges the
/// adjacent pair of lowest rank until none is left, as the tokenizers library does for this model type.
/// (Microsoft.ML.Tokenizers' BpeTokenizer has no byte fallback, hence this reader.)
/// </summary>
public sealed class HfBpeTokenizer : ITextTokenizer
{
    private const char Space = '\u2581';
    private readonly Dictionary<string, int> _vocab;
    private readonly string[] _pieces;
    private readonly Dictionary<(string, string), int> _ranks = new();
    private readonly int[] _byteIds = new int[256];
    private readonly bool _prependSpace;

    public int VocabSize => _pieces.Length;
    public int BosId { get; }
    public int EosId { get; }

    public static HfBpeTokenizer Load(string path, int? expectedVocab = null)
    {
        var root = JsonFiles.Parse(path, File.ReadAllBytes(path), "json").RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new ModelFormatException(path, "json", 0, "tokenizer.json is not a JSON object");
        return new HfBpeTokenizer(path, root, expectedVocab);
    }

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
        if (model.TryGetProperty("merges", out var merges) && merges.ValueKind == JsonValueKind.Array)
        {
            int rank = 0;
            foreach (var m in merges.EnumerateArray())
            {
                (string a, string b) pair = m.ValueKind switch
                {
                    JsonValueKind.String when JsonFiles.Str(m)?.Split(' ') is [var x, var y] => (x, y),
                    JsonValueKind.Array when m.GetArrayLength() == 2 && JsonFiles.Str(m[0]) is { } x && JsonFiles.Str(m[1]) is { } y => (x, y),
                    _ => throw new ModelFormatException(path, $"model.merges[{rank}]", 0, "not a pair of strings"),
                };
                _ranks.TryAdd(pair, rank++);
            }
        }
        for (int b = 0; b < 256; b++) _byteIds[b] = _vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
        BosId = _vocab.TryGetValue("<s>", out int bos) ? bos : 1;
        EosId = _vocab.TryGetValue("</s>", out int eos) ? eos : 2;
        // Llama's tokenizer.json prepends U+2581 (a Prepend normalizer or a Metaspace pre-tokenizer); so do we unless told otherwise.
        _prependSpace = !root.GetRawText().Contains("\"prepend_scheme\":\"never\"", StringComparison.Ordinal);
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
        string s = (_prependSpace ? Space.ToString() : "") + text.Replace(' ', Space);
        // Start from single characters (code points), falling back to bytes.
        var parts = new List<string>();
        for (int i = 0; i < s.Length; i += char.IsSurrogatePair(s, i) ? 2 : 1)
        {
            string ch = char.IsSurrogatePair(s, i) ? s.Substring(i, 2) : s[i].ToString();
            if (_vocab.ContainsKey(ch)) parts.Add(ch);
            else foreach (byte b in Encoding.UTF8.GetBytes(ch)) parts.Add($"<0x{b:X2}>");
        }
        while (parts.Count > 1)
        {
            int best = -1, bestRank = int.MaxValue;
            for (int i = 0; i + 1 < parts.Count; i++)
                if (_ranks.TryGetValue((parts[i], parts[i + 1]), out int r) && r < bestRank) { bestRank = r; best = i; }
            if (best < 0) break;
            parts[best] += parts[best + 1];
            parts.RemoveAt(best + 1);
        }
        foreach (var p in parts)
            ids.Add(_vocab.TryGetValue(p, out int id) ? id : _vocab.GetValueOrDefault("<unk>", 0));
        return [.. ids];
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
            if (ids[i - 1] == BosId && p.StartsWith(' ')) p = p[1..];
            bytes.AddRange(Encoding.UTF8.GetBytes(p));
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }
}
