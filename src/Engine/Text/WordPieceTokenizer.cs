using Microsoft.ML.Tokenizers;

namespace Workbench.Engine.Text;

/// <summary>BERT WordPiece tokenization (lower-cased, [CLS] ... [SEP]) by Microsoft.ML.Tokenizers' BertTokenizer.</summary>
public sealed class WordPieceTokenizer
{
    private readonly BertTokenizer _tok;
    public int MaxTokens { get; }
    public int VocabSize { get; }

    public WordPieceTokenizer(Stream vocab, int maxTokens, bool lowerCase = true)
    {
        var bytes = new MemoryStream();
        vocab.CopyTo(bytes);
        VocabSize = System.Text.Encoding.UTF8.GetString(bytes.GetBuffer(), 0, (int)bytes.Length).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
        bytes.Position = 0;
        _tok = BertTokenizer.Create(bytes, new BertOptions { LowerCaseBeforeTokenization = lowerCase });
        MaxTokens = maxTokens;
    }

    public static WordPieceTokenizer Load(string vocabPath, int maxTokens, bool lowerCase = true)
    {
        using var f = File.OpenRead(vocabPath);
        return new WordPieceTokenizer(f, maxTokens, lowerCase);
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
