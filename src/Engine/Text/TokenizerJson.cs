using System.Text.Json;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Text;

/// <summary>
/// A Hugging Face tokenizer.json, told apart by its pre-tokenizer: byte-level BPE (a ByteLevel pre-tokenizer or
/// decoder: GPT-2, Llama 3, Qwen2) goes to <see cref="ByteLevelBpeTokenizer"/> (Microsoft.ML.Tokenizers'
/// BpeTokenizer); SentencePiece-style BPE (U+2581 for spaces, byte fallback: Llama 2, Mistral, Gemma) to
/// <see cref="HfBpeTokenizer"/>. Other model types (Unigram, WordPiece) and pre-tokenizers are named and refused.
/// </summary>
public static class TokenizerJson
{
    public static ITextTokenizer Load(string path, int? expectedVocab = null)
    {
        using var doc = JsonFiles.Parse(path, File.ReadAllBytes(path), "json");
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new ModelFormatException(path, "json", 0, "tokenizer.json is not a JSON object");
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(path, "model", 0, "missing");
        string type = model.TryGetProperty("type", out var ty) ? JsonFiles.Str(ty) ?? "" : "";
        if (type != "BPE")
            throw new ModelFormatException(path, "model.type", 0, $"'{type}' is not supported (BPE: byte-level as GPT-2, Llama 3, Qwen2; SentencePiece-style as Llama 2, Mistral, Gemma)");
        return IsByteLevel(root) ? ByteLevel(path, root, model, expectedVocab) : HfBpeTokenizer.Load(path, root, expectedVocab);
    }

    private static bool IsByteLevel(JsonElement root) =>
        HasType(root, "pre_tokenizer", "pretokenizers", "ByteLevel") || HasType(root, "decoder", "decoders", "ByteLevel");

    private static bool HasType(JsonElement root, string name, string list, string type) =>
        root.TryGetProperty(name, out var e) && Steps(e, list).Any(s => TypeOf(s) == type);

    /// <summary>A step or the steps of a Sequence.</summary>
    internal static IEnumerable<JsonElement> Steps(JsonElement e, string list)
    {
        if (e.ValueKind != JsonValueKind.Object) yield break;
        if (TypeOf(e) == "Sequence" && e.TryGetProperty(list, out var items) && items.ValueKind == JsonValueKind.Array)
        {
            foreach (var i in items.EnumerateArray()) yield return i;
        }
        else yield return e;
    }

    internal static string TypeOf(JsonElement e) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty("type", out var t) ? JsonFiles.Str(t) ?? "" : "";

    private static bool Flag(JsonElement e, string name, bool fallback) =>
        e.TryGetProperty(name, out var v) ? v.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => fallback } : fallback;

    private static ByteLevelBpeTokenizer ByteLevel(string path, JsonElement root, JsonElement model, int? expectedVocab)
    {
        // The split regex: ByteLevel's own (GPT-2's, use_regex) or a Split step before a ByteLevel without one.
        string? pattern = null;
        bool prefix = false;
        var pre = root.TryGetProperty("pre_tokenizer", out var p) ? Steps(p, "pretokenizers").ToList() : [];
        for (int i = 0; i < pre.Count; i++)
        {
            string at = pre.Count == 1 && TypeOf(p) != "Sequence" ? "pre_tokenizer" : $"pre_tokenizer.pretokenizers[{i}]";
            switch (TypeOf(pre[i]))
            {
                case "ByteLevel":
                    prefix = Flag(pre[i], "add_prefix_space", false);
                    if (Flag(pre[i], "use_regex", true)) pattern = pattern is null ? ByteLevelBpeTokenizer.Gpt2Pattern : throw new ModelFormatException(path, at, 0, "a second split regex");
                    break;
                case "Split":
                    if (pattern is not null) throw new ModelFormatException(path, at, 0, "a second split regex");
                    if (!pre[i].TryGetProperty("pattern", out var pat) || pat.ValueKind != JsonValueKind.Object ||
                        !(pat.TryGetProperty("Regex", out var rx) && JsonFiles.Str(rx) is { } regex))
                        throw new ModelFormatException(path, $"{at}.pattern", 0, "needs a {\"Regex\": ...} pattern");
                    string behavior = pre[i].TryGetProperty("behavior", out var b) ? JsonFiles.Str(b) ?? "" : "";
                    if (behavior != "Isolated" || Flag(pre[i], "invert", false))
                        throw new ModelFormatException(path, $"{at}.behavior", 0, $"'{behavior}' (invert {Flag(pre[i], "invert", false)}) is not supported (Isolated, not inverted)");
                    try { _ = new System.Text.RegularExpressions.Regex(regex); }
                    catch (ArgumentException e) { throw new ModelFormatException(path, $"{at}.pattern.Regex", 0, $"not a regular expression .NET reads: {e.Message}"); }
                    pattern = regex;
                    break;
                default:
                    throw new ModelFormatException(path, $"{at}.type", 0, $"'{TypeOf(pre[i])}' is not supported for byte-level BPE (ByteLevel, Split)");
            }
        }
        pattern ??= ByteLevelBpeTokenizer.Gpt2Pattern;
        bool nfc = false;
        if (root.TryGetProperty("normalizer", out var norm) && norm.ValueKind != JsonValueKind.Null)
            foreach (var n in Steps(norm, "normalizers"))
                if (TypeOf(n) == "NFC") nfc = true;
                else throw new ModelFormatException(path, "normalizer.type", 0, $"'{TypeOf(n)}' is not supported for byte-level BPE (none, NFC)");

        if (!model.TryGetProperty("vocab", out var vocabEl) || vocabEl.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(path, "model.vocab", 0, "missing or not an object");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        var byId = new Dictionary<int, string>();
        int limit = vocabEl.GetPropertyCount() + (root.TryGetProperty("added_tokens", out var ad) && ad.ValueKind == JsonValueKind.Array ? ad.GetArrayLength() : 0);
        foreach (var e in vocabEl.EnumerateObject())
        {
            if (!JsonFiles.TryInt32(e.Value, out int id) || id < 0 || id >= limit)
                throw new ModelFormatException(path, $"model.vocab[{e.Name}]", 0, $"id {e.Value.GetRawText()} is not a non-negative integer below the number of entries ({limit})");
            if (!byId.TryAdd(id, e.Name)) throw new ModelFormatException(path, $"model.vocab[{e.Name}]", 0, $"id {id} is also '{byId[id]}'");
            vocab[e.Name] = id;
        }
        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
        {
            int k = 0;
            foreach (var a in added.EnumerateArray())
            {
                if (a.ValueKind != JsonValueKind.Object || !a.TryGetProperty("content", out var c) || JsonFiles.Str(c) is not { } content
                    || !a.TryGetProperty("id", out var i) || !JsonFiles.TryInt32(i, out int id) || id < 0 || id >= limit)
                    throw new ModelFormatException(path, $"added_tokens[{k}]", 0, $"needs a string content and an id below the number of entries ({limit})");
                if (byId.TryGetValue(id, out var other) && other != content)
                    throw new ModelFormatException(path, $"added_tokens[{k}].id", 0, $"id {id} is also '{other}' in model.vocab");
                special[content] = id;
                k++;
            }
        }
        var merges = Merges(path, model, vocab).Select(m => m.Left + " " + m.Right).ToList();
        int bos = TemplateBos(root, special) ?? ByteLevelBpeTokenizer.Find(vocab, special, ByteLevelBpeTokenizer.BosNames);
        int eos = ByteLevelBpeTokenizer.Find(vocab, special, ByteLevelBpeTokenizer.EosNames);
        var tok = new ByteLevelBpeTokenizer(path, "model", vocab, merges, pattern, special, bos, eos, prefix, nfc);
        // Checkpoints may pad their embedding past the tokenizer (Qwen2.5: 151,936 rows for 151,665 tokens), never the reverse.
        if (expectedVocab is { } v && tok.VocabSize > v)
            throw new ModelFormatException(path, "model.vocab", 0, $"{tok.VocabSize} tokens for a model vocabulary of {v}");
        return tok;
    }

    /// <summary>
    /// model.merges in rank order ("a b" strings or [a, b] pairs), with the ids of both sides and of the merged piece:
    /// the tokenizers library refuses a merge of or into a piece outside the vocabulary when it loads the file.
    /// </summary>
    internal static IEnumerable<(string Left, string Right, int LeftId, int RightId, int MergedId)> Merges(string path, JsonElement model, IReadOnlyDictionary<string, int> vocab)
    {
        if (!model.TryGetProperty("merges", out var ms) || ms.ValueKind != JsonValueKind.Array) yield break;
        int rank = 0;
        foreach (var m in ms.EnumerateArray())
        {
            (string a, string b) = m.ValueKind switch
            {
                JsonValueKind.String when JsonFiles.Str(m)?.Split(' ') is [var x, var y] => (x, y),
                JsonValueKind.Array when m.GetArrayLength() == 2 && JsonFiles.Str(m[0]) is { } x && JsonFiles.Str(m[1]) is { } y => (x, y),
                _ => throw new ModelFormatException(path, $"model.merges[{rank}]", 0, "not a pair of strings"),
            };
            if (!vocab.TryGetValue(a, out int l) || !vocab.TryGetValue(b, out int r) || !vocab.TryGetValue(a + b, out int merged))
                throw new ModelFormatException(path, $"model.merges[{rank}]", 0, $"'{a} {b}' merges pieces that are not in model.vocab");
            yield return (a, b, l, r, merged);
            rank++;
        }
    }

    /// <summary>The special token a TemplateProcessing post-processor puts first for a single sequence (Llama 3's BOS).</summary>
    private static int? TemplateBos(JsonElement root, Dictionary<string, int> special)
    {
        if (!root.TryGetProperty("post_processor", out var pp)) return null;
        foreach (var step in Steps(pp, "processors"))
            if (TypeOf(step) == "TemplateProcessing" && step.TryGetProperty("single", out var single) && single.ValueKind == JsonValueKind.Array
                && single.GetArrayLength() > 0 && single[0].TryGetProperty("SpecialToken", out var st) && st.TryGetProperty("id", out var id)
                && JsonFiles.Str(id) is { } name && special.TryGetValue(name, out int bos))
                return bos;
        return null;
    }
}
