using System.Buffers.Binary;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Tests.Formats;

public class Llama2cCheckpointTests
{
    [Fact]
    public void Stories260K_header_and_layout()
    {
        using var ck = Llama2cCheckpoint.Open(RepoFiles.Model("stories260K", "stories260K.bin"));
        Assert.Equal(new Llama2cHeader(64, 172, 5, 8, 4, 512, 512, true), ck.Header);
        Assert.Equal(32, ck.Header.KvDim);
        Assert.Equal([32L, 64], ck.Get("layers.2.attention.wk.weight").Shape);
        Assert.Equal([172L, 64], ck.Get("layers.4.feed_forward.w3.weight").Shape);
        Assert.Equal([64L, 172], ck.Get("layers.0.feed_forward.w2.weight").Shape);
        // Shared classifier: output.weight is the embedding table's bytes.
        Assert.Equal(ck.Get("tok_embeddings.weight").ByteOffset, ck.Get("output.weight").ByteOffset);
        Assert.Equal(28, ck.Get("tok_embeddings.weight").ByteOffset);
        // The last tensor ends exactly at the end of the file.
        long end = ck.Tensors.Max(t => t.ByteOffset + t.ByteLength);
        Assert.Equal(new FileInfo(ck.Path).Length, end);
    }

    [Fact]
    public void Stories260K_values_match_raw_bytes()
    {
        string path = RepoFiles.Model("stories260K", "stories260K.bin");
        byte[] raw = File.ReadAllBytes(path);
        using var ck = Llama2cCheckpoint.Open(path);
        // Offsets computed independently from the llama2.c order: embedding, 5 rms_att, 5 wq (64x64) ...
        long wq1 = 28 + 4L * (512 * 64 + 5 * 64 + 64 * 64);
        var wq = ck.ReadF32("layers.1.attention.wq.weight");
        Assert.Equal(BinaryPrimitives.ReadSingleLittleEndian(raw.AsSpan((int)wq1)), wq[0]);
        Assert.Equal(BinaryPrimitives.ReadSingleLittleEndian(raw.AsSpan((int)wq1 + 4 * 4095)), wq[4095]);
        // rms_final_weight sits right before freq_cis_real/imag (2 x 512 x 4 floats) at the end of the file.
        var norm = ck.ReadF32("norm.weight");
        long normAt = raw.Length - 4L * (2 * 512 * 4) - 4 * 64;
        Assert.Equal(BinaryPrimitives.ReadSingleLittleEndian(raw.AsSpan((int)normAt + 4 * 63)), norm[63]);
        // freq_cis_real[0, :] is cos(0) = 1 for every pair.
        var fr = ck.ReadF32("freq_cis_real");
        Assert.All(fr.Take(4), v => Assert.Equal(1f, v));
    }

    [Fact]
    public void BabyLlama_header()
    {
        using var ck = Llama2cCheckpoint.Open(RepoFiles.Model("babyllama-105", "model5000.bin"));
        Assert.Equal(new Llama2cHeader(128, 352, 5, 8, 4, 105, 256, true), ck.Header);
        Assert.Equal([105L, 128], ck.Get("output.weight").Shape);
        Assert.Equal(5 * 9 + 5, ck.Tensors.Count); // 9 per layer; embedding, norm, 2 rotary tables, output alias
        var w = ck.ReadF32("layers.4.feed_forward.w2.weight");
        Assert.Equal(128 * 352, w.Length);
        Assert.All(w, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Gguf_tensors_equal_llama2c_tensors()
    {
        using var bin = Llama2cCheckpoint.Open(RepoFiles.Model("stories260K", "stories260K.bin"));
        using var gguf = GgufFile.Open(RepoFiles.Model("stories260K", "stories260K.gguf"));
        var pairs = new List<(string gguf, string bin)>
        {
            ("token_embd.weight", "tok_embeddings.weight"),
            ("output_norm.weight", "norm.weight"),
            ("output.weight", "output.weight"),
        };
        for (int i = 0; i < bin.Header.Layers; i++)
        {
            pairs.Add(($"blk.{i}.attn_norm.weight", $"layers.{i}.attention_norm.weight"));
            pairs.Add(($"blk.{i}.attn_q.weight", $"layers.{i}.attention.wq.weight"));
            pairs.Add(($"blk.{i}.attn_k.weight", $"layers.{i}.attention.wk.weight"));
            pairs.Add(($"blk.{i}.attn_v.weight", $"layers.{i}.attention.wv.weight"));
            pairs.Add(($"blk.{i}.attn_output.weight", $"layers.{i}.attention.wo.weight"));
            pairs.Add(($"blk.{i}.ffn_norm.weight", $"layers.{i}.ffn_norm.weight"));
            pairs.Add(($"blk.{i}.ffn_gate.weight", $"layers.{i}.feed_forward.w1.weight"));
            pairs.Add(($"blk.{i}.ffn_down.weight", $"layers.{i}.feed_forward.w2.weight"));
            pairs.Add(($"blk.{i}.ffn_up.weight", $"layers.{i}.feed_forward.w3.weight"));
        }
        Assert.Equal(48, pairs.Count);
        Assert.Equal(gguf.Tensors.Select(t => t.Name).Order(), pairs.Select(p => p.gguf).Order());
        foreach (var (g, b) in pairs)
        {
            Assert.Equal(bin.Get(b).Shape, gguf.Get(g).Shape);
            Assert.True(bin.ReadF32(b).AsSpan().SequenceEqual(gguf.ReadF32(g)), $"{g} differs from {b}");
        }
    }
}
