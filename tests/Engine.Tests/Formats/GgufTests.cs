using Workbench.Engine.Formats;

namespace Workbench.Engine.Tests.Formats;

public class GgufTests
{
    [Fact]
    public void Stories260K_metadata_and_tensors()
    {
        using var g = GgufFile.Open(RepoFiles.Model("stories260K", "stories260K.gguf"));
        Assert.Equal(3u, g.Version);
        Assert.Equal(48, g.Tensors.Count);
        Assert.All(g.Tensors, t => Assert.Equal(DType.F32, t.DType));
        Assert.All(g.TensorInfos, t => Assert.Equal(GgmlType.F32, t.Type));
        Assert.Equal("llama", g.GetString("general.architecture"));
        Assert.Equal(2048, g.GetInt64("llama.context_length"));
        Assert.Equal(64, g.GetInt64("llama.embedding_length"));
        Assert.Equal(1e-5f, g.GetFloat("llama.attention.layer_norm_rms_epsilon"));
        var tokens = g.GetStringArray("tokenizer.ggml.tokens");
        Assert.Equal(512, tokens.Length);
        Assert.Equal(512, g.GetFloatArray("tokenizer.ggml.scores").Length);
        Assert.Equal(512, g.GetInt32Array("tokenizer.ggml.token_type").Length);
        // Same pieces as the llama2.c tokenizer (byte fallback pieces start at id 3).
        Assert.Equal("<0x00>", tokens[3]);
        // ggml ne = [64, 512] for the embedding, so the row-major shape is [512, 64].
        var emb = g.Get("token_embd.weight");
        Assert.Equal([512L, 64], emb.Shape);
        Assert.Equal([64L, 512], g.TensorInfos.Single(t => t.Name == "token_embd.weight").Ne);
        Assert.Equal([32L, 64], g.Get("blk.0.attn_k.weight").Shape);
        Assert.All(g.Tensors, t => Assert.Equal(0, (t.ByteOffset - g.DataOffset) % g.Alignment));
    }
}
