using Workbench.Engine.Formats;

namespace Workbench.Engine.Text;

/// <summary>
/// The tokenizer a GGUF file carries in its metadata (llama.cpp's tokenizer.ggml.* keys): model "llama" is a
/// SentencePiece BPE (tokens, scores, token_type, add_space_prefix) read by Microsoft.ML.Tokenizers' LlamaTokenizer;
/// model "gpt2" is byte-level BPE (tokens, merges, pre) read by its BpeTokenizer. Both take bos / eos ids from
/// tokenizer.ggml.bos_token_id / eos_token_id.
/// </summary>
public static class GgufTokenizer
{
    public static readonly IReadOnlyList<string> Models = ["llama", "gpt2"];

    /// <summary>The file's tokenizer, or null when it carries none (the model then runs on token ids).</summary>
    public static ITextTokenizer? TryLoad(string path, int? expectedVocab = null)
    {
        using var g = GgufFile.Open(path);
        return TryLoad(g, expectedVocab);
    }

    public static ITextTokenizer? TryLoad(GgufFile g, int? expectedVocab = null)
    {
        if (!g.Metadata.ContainsKey("tokenizer.ggml.tokens") && !g.Metadata.ContainsKey("tokenizer.ggml.model")) return null;
        string model = g.TryGet("tokenizer.ggml.model", out string m) ? m : "llama";
        return model switch
        {
            "llama" => SentencePiece(g, expectedVocab),
            "gpt2" => ByteLevelBpeTokenizer.FromGguf(g, expectedVocab),
            _ => throw new ModelFormatException(g.Path, "tokenizer.ggml.model", g.OffsetOf("tokenizer.ggml.model"),
                $"tokenizer model '{model}' is not supported ({string.Join(", ", Models)}); pass --tokens, or --tokenizer PATH"),
        };
    }

    private static SentencePieceTokenizer SentencePiece(GgufFile g, int? expectedVocab)
    {
        string path = g.Path;
        var tokens = g.GetStringArray("tokenizer.ggml.tokens");
        var scores = g.Metadata.ContainsKey("tokenizer.ggml.scores") ? g.GetFloatArray("tokenizer.ggml.scores") : new float[tokens.Length];
        if (scores.Length != tokens.Length)
            throw new ModelFormatException(path, "tokenizer.ggml.scores", g.OffsetOf("tokenizer.ggml.scores"), $"{scores.Length} scores for {tokens.Length} tokens");
        int[] types = g.Metadata.ContainsKey("tokenizer.ggml.token_type") ? g.GetInt32Array("tokenizer.ggml.token_type") : [.. Enumerable.Repeat(1, tokens.Length)];
        if (types.Length != tokens.Length)
            throw new ModelFormatException(path, "tokenizer.ggml.token_type", g.OffsetOf("tokenizer.ggml.token_type"), $"{types.Length} types for {tokens.Length} tokens");
        for (int i = 0; i < types.Length; i++)
            if (types[i] is < 1 or > 6)
                throw new ModelFormatException(path, $"tokenizer.ggml.token_type[{i}]", g.OffsetOf("tokenizer.ggml.token_type"), $"type {types[i]} is not a SentencePiece piece type (1..6)");
        if (expectedVocab is { } v && tokens.Length != v)
            throw new ModelFormatException(path, "tokenizer.ggml.tokens", g.OffsetOf("tokenizer.ggml.tokens"), $"{tokens.Length} tokens for a model vocabulary of {v}");
        int unk = ByteLevelBpeTokenizer.TokenId(g, "tokenizer.ggml.unknown_token_id", tokens.Length) ?? Math.Max(0, Array.IndexOf(types, 2));
        int bos = ByteLevelBpeTokenizer.TokenId(g, "tokenizer.ggml.bos_token_id", tokens.Length) ?? 1;
        int eos = ByteLevelBpeTokenizer.TokenId(g, "tokenizer.ggml.eos_token_id", tokens.Length) ?? 2;
        // llama.cpp adds the dummy prefix unless tokenizer.ggml.add_space_prefix says false.
        bool prefix = !g.TryGet("tokenizer.ggml.add_space_prefix", out bool sp) || sp;
        return SentencePieceTokenizer.FromPieces(path, "tokenizer.ggml.tokens", tokens, scores, types, unk, bos, eos, prefix, expectedVocab);
    }
}
