using Microsoft.ML.Tokenizers;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Text;

/// <summary>A SentencePiece model (tokenizer.model, BabyLlama's tok105.model) read by Microsoft.ML.Tokenizers.</summary>
public sealed class SentencePieceTokenizer : ITextTokenizer
{
    private readonly LlamaTokenizer _tok;
    public int VocabSize { get; }
    public int Bos => _tok.BeginningOfSentenceId;
    public int Eos => _tok.EndOfSentenceId;

    private SentencePieceTokenizer(LlamaTokenizer tok)
    {
        _tok = tok;
        VocabSize = tok.Vocabulary.Count;
    }

    public static SentencePieceTokenizer Load(string path, int? expectedVocab = null)
    {
        LlamaTokenizer tok;
        try
        {
            using var f = File.OpenRead(path);
            tok = LlamaTokenizer.Create(f, addBeginOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not IOException)
        {
            throw new ModelFormatException(path, "ModelProto", 0, $"not a readable SentencePiece model ({e.Message})", e);
        }
        var t = new SentencePieceTokenizer(tok);
        if (expectedVocab is { } v && t.VocabSize != v)
            throw new ModelFormatException(path, "pieces", 0, $"the tokenizer has {t.VocabSize} pieces but the model's vocabulary is {v}");
        return t;
    }

    public int[] Encode(string text, bool bos = true)
    {
        var ids = _tok.EncodeToIds(text);
        return bos ? [Bos, .. ids] : [.. ids];
    }

    public string DecodePiece(int prev, int token)
    {
        // Decode the pair and drop the previous token's text: SentencePiece's word-boundary spaces come out right.
        if (token == Bos || token == Eos) return "";
        if (prev == Bos) return _tok.Decode([token]) ?? "";
        string both = _tok.Decode([prev, token]) ?? "", first = _tok.Decode([prev]) ?? "";
        return both.StartsWith(first, StringComparison.Ordinal) ? both[first.Length..] : _tok.Decode([token]) ?? "";
    }
}
