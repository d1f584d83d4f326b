using Google.Protobuf;
using Microsoft.ML.Tokenizers;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Text;

/// <summary>
/// A SentencePiece BPE model read by Microsoft.ML.Tokenizers' LlamaTokenizer: from a tokenizer.model (BabyLlama's
/// tok105.model, austen-16L's), or from the pieces, scores and types a GGUF file of tokenizer.ggml.model "llama" carries
/// (llama.cpp copies them verbatim from the tokenizer.model, so they are written back into a ModelProto for the library).
/// </summary>
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
        using var f = File.OpenRead(path); // a missing or unreadable file is not a format error
        return Create(path, f, "ModelProto", expectedVocab, "pieces");
    }

    private static SentencePieceTokenizer Create(string path, Stream model, string field, int? expectedVocab, string vocabField)
    {
        LlamaTokenizer tok;
        try
        {
            tok = LlamaTokenizer.Create(model, addBeginOfSentence: false, addEndOfSentence: false);
        }
        // Google.Protobuf's InvalidProtocolBufferException derives from IOException; the tokenizer library throws
        // ArgumentException, InvalidOperationException and others for pieces it cannot use. All are the file's fault.
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new ModelFormatException(path, field, 0 /* the library does not say where parsing stopped */, $"not a readable SentencePiece model ({e.GetType().Name}: {e.Message.Split('\n')[0]})", e);
        }
        var t = new SentencePieceTokenizer(tok);
        if (expectedVocab is { } v && t.VocabSize != v)
            throw new ModelFormatException(path, vocabField, 0, $"the tokenizer has {t.VocabSize} pieces but the model's vocabulary is {v}");
        return t;
    }

    /// <summary>SentencePiece's piece types (sentencepiece_model.proto), which GGUF's tokenizer.ggml.token_type reuses.</summary>
    public enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

    /// <summary>
    /// A BPE ModelProto built from pieces (as GGUF stores them: text with U+2581 for spaces, &lt;0xXX&gt; byte pieces), read by
    /// the library. <paramref name="field"/> names where the pieces came from, for errors.
    /// </summary>
    public static SentencePieceTokenizer FromPieces(string path, string field, IReadOnlyList<string> pieces, IReadOnlyList<float> scores,
        IReadOnlyList<int> types, int unkId, int bosId, int eosId, bool addDummyPrefix, int? expectedVocab = null)
    {
        var ms = new MemoryStream();
        var o = new CodedOutputStream(ms, leaveOpen: true);
        bool byteFallback = false;
        for (int i = 0; i < pieces.Count; i++)
        {
            // ModelProto.pieces (1): SentencePiece { piece (1), score (2), type (3) }.
            var piece = new MemoryStream();
            var p = new CodedOutputStream(piece, leaveOpen: true);
            p.WriteTag(1, WireFormat.WireType.LengthDelimited); p.WriteString(pieces[i]);
            p.WriteTag(2, WireFormat.WireType.Fixed32); p.WriteFloat(scores[i]);
            p.WriteTag(3, WireFormat.WireType.Varint); p.WriteEnum(types[i]);
            p.Flush();
            byteFallback |= types[i] == (int)PieceType.Byte;
            o.WriteTag(1, WireFormat.WireType.LengthDelimited); o.WriteBytes(ByteString.CopyFrom(piece.ToArray()));
        }
        // TrainerSpec (2): model_type (3) = BPE (2), vocab_size (4), byte_fallback (35), unk_id (40), bos_id (41), eos_id (42), pad_id (43).
        var trainer = new MemoryStream();
        var t = new CodedOutputStream(trainer, leaveOpen: true);
        t.WriteTag(3, WireFormat.WireType.Varint); t.WriteEnum(2);
        t.WriteTag(4, WireFormat.WireType.Varint); t.WriteInt32(pieces.Count);
        t.WriteTag(35, WireFormat.WireType.Varint); t.WriteBool(byteFallback);
        t.WriteTag(40, WireFormat.WireType.Varint); t.WriteInt32(unkId);
        t.WriteTag(41, WireFormat.WireType.Varint); t.WriteInt32(bosId);
        t.WriteTag(42, WireFormat.WireType.Varint); t.WriteInt32(eosId);
        t.WriteTag(43, WireFormat.WireType.Varint); t.WriteInt32(-1);
        t.Flush();
        o.WriteTag(2, WireFormat.WireType.LengthDelimited); o.WriteBytes(ByteString.CopyFrom(trainer.ToArray()));
        // NormalizerSpec (3): name (1) "identity", add_dummy_prefix (3), remove_extra_whitespaces (4) off as llama.cpp
        // tokenizes (it never collapses spaces), escape_whitespaces (5).
        var norm = new MemoryStream();
        var n = new CodedOutputStream(norm, leaveOpen: true);
        n.WriteTag(1, WireFormat.WireType.LengthDelimited); n.WriteString("identity");
        n.WriteTag(3, WireFormat.WireType.Varint); n.WriteBool(addDummyPrefix);
        n.WriteTag(4, WireFormat.WireType.Varint); n.WriteBool(false);
        n.WriteTag(5, WireFormat.WireType.Varint); n.WriteBool(true);
        n.Flush();
        o.WriteTag(3, WireFormat.WireType.LengthDelimited); o.WriteBytes(ByteString.CopyFrom(norm.ToArray()));
        o.Flush();
        ms.Position = 0;
        return Create(path, ms, field, expectedVocab, field);
    }

    public int[] Encode(string text, bool bos = true)
    {
        var ids = _tok.EncodeToIds(text);
        return bos ? [BosId, .. ids] : [.. ids];
    }

    public string Decode(IReadOnlyList<int> ids) =>
        ids.Count <= 1 ? "" : _tok.Decode(ids.Skip(1).Where(i => i != BosId && i != EosId)) ?? "";
}
