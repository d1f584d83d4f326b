using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Text;

/// <summary>
/// Byte-level BPE (GPT-2, Llama 3, Qwen2): the text is split by the family's regex, each piece's UTF-8 bytes are mapped
/// to GPT-2's printable characters (space as 'Ġ') and merged by rank. Encoding and decoding are Microsoft.ML.Tokenizers'
/// <see cref="BpeTokenizer"/> with <see cref="BpeOptions.ByteLevel"/> and a <see cref="RegexPreTokenizer"/>; this class
/// only reads the vocabulary, merges, split regex and special tokens from a tokenizer.json or a GGUF file.
/// </summary>
public sealed class ByteLevelBpeTokenizer : ITextTokenizer
{
    /// <summary>GPT-2's split (the ByteLevel pre-tokenizer's use_regex, llama.cpp's "gpt-2" pre-tokenizer).</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    /// <summary>Llama 3's split (its tokenizer.json Split regex, llama.cpp's "llama-bpe").</summary>
    public const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    /// <summary>Qwen2's split: Llama 3's with single digits (llama.cpp's "qwen2").</summary>
    public const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>llama.cpp's tokenizer.ggml.pre names this reader knows, with their split regex.</summary>
    public static readonly IReadOnlyDictionary<string, string> GgufPreTokenizers = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["default"] = Gpt2Pattern, ["gpt-2"] = Gpt2Pattern,
        ["llama-bpe"] = Llama3Pattern, ["llama3"] = Llama3Pattern,
        ["qwen2"] = Qwen2Pattern,
    };

    private readonly BpeTokenizer _tok;
    private readonly HashSet<int> _special;
    public int VocabSize { get; }
    public int BosId { get; }
    public int EosId { get; }
    /// <summary>The split regex in use.</summary>
    public string Pattern { get; }

    /// <param name="vocab">piece (in GPT-2's byte-to-character form) to id</param>
    /// <param name="merges">ranked merges, "left right"</param>
    /// <param name="special">added / control tokens, matched in the text before splitting (as the tokenizers library does)</param>
    /// <param name="path">the file, and <paramref name="field"/> where in it the vocabulary lives, for errors</param>
    public ByteLevelBpeTokenizer(string path, string field, IReadOnlyDictionary<string, int> vocab, IEnumerable<string> merges, string pattern,
        IReadOnlyDictionary<string, int> special, int bosId, int eosId, bool addPrefixSpace = false, bool nfc = false)
    {
        var specials = special.Count == 0 ? null : new Dictionary<string, int>(special, StringComparer.Ordinal);
        try
        {
            _tok = BpeTokenizer.Create(new BpeOptions(vocab.Where(kv => !special.ContainsKey(kv.Key)))
            {
                Merges = merges,
                ByteLevel = true,
                PreTokenizer = new RegexPreTokenizer(new Regex(pattern, RegexOptions.Compiled), specials),
                Normalizer = addPrefixSpace || nfc ? new PrefixNfcNormalizer(addPrefixSpace, nfc) : null,
                SpecialTokens = specials,
            });
        }
        // The readers check what they can name; whatever else the library refuses is still the file's fault.
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new ModelFormatException(path, field, 0, $"not a byte-level BPE vocabulary the tokenizer library accepts ({e.GetType().Name}: {e.Message.Split('\n')[0]})", e);
        }
        _special = [.. special.Values];
        VocabSize = Math.Max(vocab.Count == 0 ? 0 : vocab.Values.Max(), special.Count == 0 ? 0 : special.Values.Max()) + 1;
        BosId = bosId;
        EosId = eosId;
        Pattern = pattern;
    }

    /// <summary>BOS (when asked and the tokenizer has one: -1 when it has none, as a bare byte vocabulary) then the library's ids.</summary>
    public int[] Encode(string text, bool bos = true)
    {
        var ids = _tok.EncodeToIds(text);
        return bos && BosId >= 0 ? [BosId, .. ids] : [.. ids];
    }

    /// <summary>The text of every token after the BOS (the interface's convention), special tokens skipped.</summary>
    public string Decode(IReadOnlyList<int> ids) =>
        _tok.Decode(ids.Skip(BosId >= 0 && ids.Count > 0 ? 1 : 0).Where(i => !_special.Contains(i)), considerSpecialTokens: false) ?? "";

    /// <summary>
    /// The first of <paramref name="names"/> present (Llama 3's &lt;|begin_of_text|&gt;, GPT-2 and Qwen's
    /// &lt;|endoftext|&gt;, ...), or -1.
    /// </summary>
    internal static int Find(IReadOnlyDictionary<string, int> vocab, IReadOnlyDictionary<string, int> special, params string[] names)
    {
        foreach (var n in names)
            if (special.TryGetValue(n, out int id) || vocab.TryGetValue(n, out id)) return id;
        return -1;
    }

    internal static readonly string[] BosNames = ["<|begin_of_text|>", "<s>", "<bos>", "<|endoftext|>"];
    internal static readonly string[] EosNames = ["<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>", "<|im_end|>"];

    /// <summary>
    /// The byte-level tokenizer a GGUF of tokenizer.ggml.model "gpt2" carries: tokens (byte-level text), merges,
    /// token_type (3 control and 4 user-defined are matched as special tokens), pre (the split regex), bos / eos ids.
    /// </summary>
    public static ByteLevelBpeTokenizer FromGguf(GgufFile g, int? expectedVocab)
    {
        string path = g.Path;
        var tokens = g.GetStringArray("tokenizer.ggml.tokens");
        if (!g.Metadata.ContainsKey("tokenizer.ggml.merges"))
            throw new ModelFormatException(path, "tokenizer.ggml.merges", 0, "a gpt2 (byte-level BPE) tokenizer needs its merges");
        var merges = g.GetStringArray("tokenizer.ggml.merges");
        int[] types = g.Metadata.ContainsKey("tokenizer.ggml.token_type") ? g.GetInt32Array("tokenizer.ggml.token_type") : new int[tokens.Length];
        if (types.Length != tokens.Length)
            throw new ModelFormatException(path, "tokenizer.ggml.token_type", g.OffsetOf("tokenizer.ggml.token_type"), $"{types.Length} types for {tokens.Length} tokens");
        string pre = g.TryGet("tokenizer.ggml.pre", out string p) ? p : "default";
        if (!GgufPreTokenizers.TryGetValue(pre, out var pattern))
            throw new ModelFormatException(path, "tokenizer.ggml.pre", g.OffsetOf("tokenizer.ggml.pre"),
                $"pre-tokenizer '{pre}' is not supported ({string.Join(", ", GgufPreTokenizers.Keys)})");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++)
        {
            if (!vocab.TryAdd(tokens[i], i))
                throw new ModelFormatException(path, $"tokenizer.ggml.tokens[{i}]", g.OffsetOf("tokenizer.ggml.tokens"), $"'{tokens[i]}' is also token {vocab[tokens[i]]}");
            if (types[i] is (int)SentencePieceTokenizer.PieceType.Control or (int)SentencePieceTokenizer.PieceType.UserDefined) special[tokens[i]] = i;
        }
        for (int i = 0; i < merges.Length; i++)
            if (merges[i].Split(' ') is not [var a, var b] || !vocab.ContainsKey(a) || !vocab.ContainsKey(b))
                throw new ModelFormatException(path, $"tokenizer.ggml.merges[{i}]", g.OffsetOf("tokenizer.ggml.merges"), $"'{merges[i]}' is not two known tokens separated by a space");
        int bos = TokenId(g, "tokenizer.ggml.bos_token_id", tokens.Length) ?? Find(vocab, special, BosNames);
        int eos = TokenId(g, "tokenizer.ggml.eos_token_id", tokens.Length) ?? Find(vocab, special, EosNames);
        if (expectedVocab is { } v && tokens.Length > v)
            throw new ModelFormatException(path, "tokenizer.ggml.tokens", g.OffsetOf("tokenizer.ggml.tokens"), $"{tokens.Length} tokens for a model vocabulary of {v}");
        bool prefix = g.TryGet("tokenizer.ggml.add_space_prefix", out bool sp) && sp;
        return new ByteLevelBpeTokenizer(path, "tokenizer.ggml.tokens", vocab, merges, pattern, special, bos, eos, addPrefixSpace: prefix);
    }

    /// <summary>A token id key, or null when absent (or llama.cpp's "none", 0xFFFFFFFF); an id beyond the tokens is refused.</summary>
    internal static int? TokenId(GgufFile g, string key, int count)
    {
        if (!g.Metadata.ContainsKey(key)) return null;
        long id = g.GetInt64(key);
        if (id == uint.MaxValue || id == -1) return null;
        if (id < 0 || id >= count) throw new ModelFormatException(g.Path, key, g.OffsetOf(key), $"token id {id} is outside 0..{count - 1}");
        return (int)id;
    }

    /// <summary>The normalizers byte-level tokenizer.json files use: NFC (Qwen2) and ByteLevel's add_prefix_space.</summary>
    private sealed class PrefixNfcNormalizer(bool prefix, bool nfc) : Normalizer
    {
        public override string Normalize(string original)
        {
            string s = nfc ? original.Normalize(NormalizationForm.FormC) : original;
            return prefix && s.Length > 0 && s[0] != ' ' ? " " + s : s;
        }

        public override string Normalize(ReadOnlySpan<char> original) => Normalize(original.ToString());
    }
}
