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

    [Fact]
    public void F16_and_BF16_tensors_convert_and_shapes_reverse()
    {
        // ne = [3, 2]: 2 rows of 3. F16 values at data+0, BF16 at data+32 (aligned).
        float[] values = [1f, -2f, 0.5f, 3.25f, -0.125f, 1024f];
        var data = new byte[64];
        for (int i = 0; i < 6; i++)
        {
            BitConverter.TryWriteBytes(data.AsSpan(2 * i), (Half)values[i]);
            BitConverter.TryWriteBytes(data.AsSpan(32 + 2 * i), (ushort)(BitConverter.SingleToUInt32Bits(values[i]) >> 16));
        }
        var gb = new GgufBuilder { Version = 2, Data = data };
        gb.Tensors.Add(("h", [3, 2], (uint)GgmlType.F16, 0));
        gb.Tensors.Add(("b", [3, 2], (uint)GgmlType.BF16, 32));
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp.File("x.gguf"), gb.Build());
        using var g = GgufFile.Open(tmp.File("x.gguf"));
        Assert.Equal(2u, g.Version);
        Assert.Equal([2L, 3], g.Get("h").Shape);
        Assert.Equal(DType.F16, g.Get("h").DType);
        Assert.Equal(values, g.ReadF32("h"));
        Assert.Equal(values, g.ReadF32("b")); // all exactly representable in bfloat16
        Assert.Equal("llama", g.GetString("general.architecture"));
    }
}
