using Microsoft.ML.Tokenizers;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Text;

/// <summary>BERT WordPiece tokenization (lower-cased, [CLS] ... [SEP]) by Microsoft.ML.Tokenizers' BertTokenizer.</summary>
public sealed class WordPieceTokenizer
{
    /// <summary>The tokens BertTokenizer needs in the vocabulary.</summary>
    public static readonly string[] SpecialTokens = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"];

    private readonly BertTokenizer _tok;
    public int MaxTokens { get; }
    public int VocabSize { get; }

    /// <summary>Reads a vocab.txt (one word piece per line); <paramref name="source"/> names it in errors.</summary>
    public WordPieceTokenizer(Stream vocab, int maxTokens, bool lowerCase = true, string source = "vocab.txt")
    {
        var bytes = new MemoryStream();
        vocab.CopyTo(bytes);
        var text = System.Text.Encoding.UTF8.GetString(bytes.GetBuffer(), 0, (int)bytes.Length);
        VocabSize = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
        Check(text, source);
        bytes.Position = 0;
        try { _tok = BertTokenizer.Create(bytes, new BertOptions { LowerCaseBeforeTokenization = lowerCase }); }
        // The library reports what it cannot use (ArgumentException and others): the file's fault, named as such.
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new ModelFormatException(source, "vocab", 0, $"not a usable WordPiece vocabulary ({e.GetType().Name}: {e.Message.Split('\n')[0]})", e);
        }
        MaxTokens = maxTokens;
    }

    // What BertTokenizer would throw ArgumentException for, found first with the line it is on.
    private static void Check(string text, string source)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        int line = 0;
        long offset = 0;
        foreach (var raw in text.Split('\n'))
        {
            line++;
            var word = raw.TrimEnd('\r');
            if (word.Length > 0 && !seen.TryAdd(word, line))
                throw new ModelFormatException(source, $"line {line}", offset, $"word piece '{word}' already appears on line {seen[word]}");
            offset += System.Text.Encoding.UTF8.GetByteCount(raw) + 1;
        }
        foreach (var special in SpecialTokens)
            if (!seen.ContainsKey(special))
                throw new ModelFormatException(source, special, 0, $"the special token {special} is missing from the vocabulary");
    }

    public static WordPieceTokenizer Load(string vocabPath, int maxTokens, bool lowerCase = true)
    {
        using var f = File.OpenRead(vocabPath);
        return new WordPieceTokenizer(f, maxTokens, lowerCase, vocabPath);
    }

    /// <summary>Ids with [CLS] first and [SEP] last, truncated to MaxTokens (as sentence-transformers does).</summary>
    public int[] Encode(string text)
    {
        var ids = _tok.EncodeToIds(text, addSpecialTokens: true, considerPreTokenization: true, considerNormalization: true);
        if (ids.Count <= MaxTokens) return [.. ids];
        var cut = ids.Take(MaxTokens).ToArray();
        cut[^1] = _tok.SeparatorTokenId;
        return cut;
    }

    public string Decode(IEnumerable<int> ids) => _tok.Decode(ids) ?? "";
    public string Token(int id) => _tok.Decode([id], skipSpecialTokens: false) ?? "";
}
