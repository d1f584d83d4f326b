using Microsoft.ML.Tokenizers;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Text;

/// <summary>A SentencePiece model (tokenizer.model, BabyLlama's tok105.model) read by Microsoft.ML.Tokenizers.</summary>
public sealed class SentencePieceTokenizer : ITextTokenizer
{
    private readonly LlamaTokenizer _tok;
    public int VocabSize { get; }
    public int BosId => _tok.BeginningOfSentenceId;
    public int EosId => _tok.EndOfSentenceId;

    private SentencePieceTokenizer(LlamaTokenizer tok)
    {
        _tok = tok;
        VocabSize = tok.Vocabulary.Count;
    }

    public static SentencePieceTokenizer Load(string path, int? expectedVocab = null)
    {
        LlamaTokenizer tok;
        using var f = File.OpenRead(path); // a missing or unreadable file is not a format error
        try
        {
            tok = LlamaTokenizer.Create(f, addBeginOfSentence: false, addEndOfSentence: false);
        }
        // Google.Protobuf's InvalidProtocolBufferException derives from IOException; the tokenizer library throws
        // ArgumentException, InvalidOperationException and others for pieces it cannot use. All are the file's fault.
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new ModelFormatException(path, "ModelProto", 0 /* the library does not say where parsing stopped */, $"not a readable SentencePiece model ({e.GetType().Name}: {e.Message.Split('\n')[0]})", e);
        }
        var t = new SentencePieceTokenizer(tok);
        if (expectedVocab is { } v && t.VocabSize != v)
            throw new ModelFormatException(path, "pieces", 0, $"the tokenizer has {t.VocabSize} pieces but the model's vocabulary is {v}");
        return t;
    }

    public int[] Encode(string text, bool bos = true)
    {
        var ids = _tok.EncodeToIds(text);
        return bos ? [BosId, .. ids] : [.. ids];
    }

    public string Decode(IReadOnlyList<int> ids) =>
        ids.Count <= 1 ? "" : _tok.Decode(ids.Skip(1).Where(i => i != BosId && i != EosId)) ?? "";
}
