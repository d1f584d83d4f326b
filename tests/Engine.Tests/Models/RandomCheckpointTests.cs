using System.Text.Json;
using Workbench.Engine.Formats;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Requests;

namespace Workbench.Engine.Tests.Models;

/// <summary>
/// `bench make-model`'s writer on small shapes (two different ones, so nothing depends on one instance's sizes): the
/// Hugging Face folder is laid out as save_pretrained lays it (shards in state-dict order, names sorted within a file,
/// contiguous offsets, an index covering every tensor) and loads as the Mistral of the shape with every matrix stored as
/// bf16; the GGUF loads as llama.cpp's llama with Q8_0 matrices; both hold the seeded draws (rounded / quantized exactly
/// as the stored types define), with the asked-for statistics; and the two files are one model (their logits agree
/// to the quantization error, which they would not if the GGUF's q/k rows were not in llama.cpp's rotary order).
/// </summary>
public sealed class RandomCheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wb-randckpt-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<DecoderShape> Shapes => new()
    {
        DecoderShape.Tiny,
        new DecoderShape("other", 3, 96, 6, 3, 160, 300, 128),
    };

    private static int[] Ids(int vocab, int n, int seed) { var r = new Random(seed); return Enumerable.Range(0, n).Select(_ => r.Next(vocab)).ToArray(); }

    [Theory, MemberData(nameof(Shapes))]
    public void Hugging_face_folder_is_sharded_as_save_pretrained_writes_it_and_loads_as_the_shapes_mistral(DecoderShape shape)
    {
        long total = shape.HfTensors().Sum(t => 2L * t.Rows * t.Cols);
        string sharded = Path.Combine(_dir, "sharded"), single = Path.Combine(_dir, "single");
        var w = RandomCheckpoint.Write(shape, "bf16", 7, sharded, maxShardBytes: total / 3);
        RandomCheckpoint.Write(shape, "bf16", 7, single);
        Assert.True(File.Exists(Path.Combine(single, "model.safetensors")));

        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(sharded, "model.safetensors.index.json")));
        Assert.Equal(total, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
        var map = index.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        Assert.Equal(shape.HfTensors().Select(t => t.Name).Order(StringComparer.Ordinal), map.Keys.Order(StringComparer.Ordinal));
        var shards = w.Files.Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal)).ToList();
        Assert.True(shards.Count >= 3);
        for (int i = 0; i < shards.Count; i++)
        {
            Assert.Equal($"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors", shards[i]);
            using var f = SafetensorsFile.Open(Path.Combine(sharded, shards[i]));
            Assert.Equal(f.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal), f.Tensors.OrderBy(t => t.ByteOffset).Select(t => t.Name));
            Assert.All(f.Tensors, t => Assert.Equal(DType.BF16, t.DType));
            var sorted = f.Tensors.OrderBy(t => t.ByteOffset).ToList();
            for (int k = 1; k < sorted.Count; k++) Assert.Equal(sorted[k - 1].ByteOffset + sorted[k - 1].ByteLength, sorted[k].ByteOffset);
            Assert.Equal("pt", f.Metadata["format"]);
        }
        // state-dict order across shards: the embedding in the first, the head in the last
        Assert.Equal(shards[0], map["model.embed_tokens.weight"]);
        Assert.Equal(shards[^1], map["lm_head.weight"]);

        var d = Assert.IsType<Decoder>(ModelHub.Load(sharded));
        Assert.False(d.HasTokenizer);
        Assert.Equal("mistral", d.Model.Spec.Family);
        var c = d.Config;
        Assert.Equal((shape.Layers, shape.Hidden, shape.Heads, shape.KvHeads, shape.Ffn, shape.Vocab), (c.Layers, c.Dim, c.Heads, c.KvHeads, c.MlpDim, c.Vocab));
        Assert.All(d.Model.BlockLinears.Select(l => l.Weight).Append(d.Model.Weights.TokenEmbedding).Append(d.Model.Weights.Output),
            x => Assert.Equal(StoredType.BF16, StoredLinears.Find(x)?.Type));
        // the values are the seeded draws rounded to bf16 (v_proj: no rotary permutation)
        var v = StoredLinears.Find(d.Model.Weights.Layers[^1].Wv)!;
        string name = $"model.layers.{shape.Layers - 1}.self_attn.v_proj.weight";
        var row = new float[shape.Hidden];
        var want = new float[shape.Hidden];
        var bytes = new byte[2 * shape.Hidden];
        foreach (int r in new[] { 0, shape.KvDim - 1 })
        {
            RandomCheckpoint.Row(7, name, r, 1f / MathF.Sqrt(shape.Hidden), want, new float[3 * shape.Hidden]);
            StoredMatrix.Quantize(StoredType.BF16, want, bytes);
            v.DecodeRow(r, row);
            for (int i = 0; i < row.Length; i++)
                Assert.Equal(SafetensorsWriter.ToBFloat16(want[i]), (ushort)(BitConverter.SingleToUInt32Bits(row[i]) >> 16));
        }
        // one model however it is sharded
        var ids = Ids(shape.Vocab, 12, 1);
        Assert.Equal(ModelHub.LoadDecoder(single).Logits(ids), d.Logits(ids));
    }

    [Theory, MemberData(nameof(Shapes))]
    public void Draws_are_seeded_normal_with_std_one_over_sqrt_in_and_norms_are_ones(DecoderShape shape)
    {
        foreach (var (name, rows, cols, std) in shape.HfTensors())
        {
            var x = new float[cols];
            var scratch = new float[3 * cols];
            double sum = 0, sq = 0;
            long n = 0;
            for (int r = 0; r < rows; r++)
            {
                RandomCheckpoint.Row(3, name, r, std, x, scratch);
                foreach (var f in x) { sum += f; sq += (double)f * f; n++; }
            }
            if (std == 0) { Assert.Equal(n, sum); continue; } // norms: ones
            double mean = sum / n, sd = Math.Sqrt(sq / n - mean * mean);
            Assert.True(Math.Abs(mean) < 5 * std / Math.Sqrt(n), $"{name}: mean {mean}");
            Assert.True(Math.Abs(sd / std - 1) < 5 / Math.Sqrt(n) + 0.01, $"{name}: std {sd}, want {std}");
        }
        var a = new float[shape.Hidden]; var b = new float[shape.Hidden]; var s = new float[3 * shape.Hidden];
        RandomCheckpoint.Row(3, "lm_head.weight", 5, 1, a, s);
        RandomCheckpoint.Row(3, "lm_head.weight", 5, 1, b, s);
        Assert.Equal(a, b);
        RandomCheckpoint.Row(4, "lm_head.weight", 5, 1, b, s);
        Assert.NotEqual(a, b);
        RandomCheckpoint.Row(3, "lm_head.weight", 6, 1, b, s);
        Assert.NotEqual(a, b);
    }

    [Theory, MemberData(nameof(Shapes))]
    public void Gguf_is_llama_cpp_q8_0_and_the_same_model_as_the_folder(DecoderShape shape)
    {
        string gguf = Path.Combine(_dir, "m.gguf"), folder = Path.Combine(_dir, "hf");
        RandomCheckpoint.Write(shape, "q8_0", 11, gguf);
        RandomCheckpoint.Write(shape, "bf16", 11, folder);
        using (var g = GgufFile.Open(gguf))
        {
            Assert.Equal("llama", g.GetString("general.architecture"));
            Assert.Equal(shape.Layers, g.GetInt64("llama.block_count"));
            Assert.Equal(shape.KvHeads, g.GetInt64("llama.attention.head_count_kv"));
            Assert.Equal(shape.HeadDim, g.GetInt64("llama.rope.dimension_count"));
            Assert.Equal(7, g.GetInt64("general.file_type"));
            Assert.Equal(9 * shape.Layers + 3, g.Tensors.Count); // embedding, 9 a block, final norm, head
            Assert.Equal(GgmlType.Q8_0, g.GgmlTypeOf("token_embd.weight"));
            Assert.Equal(GgmlType.Q8_0, g.GgmlTypeOf("output.weight"));
            Assert.Equal(GgmlType.F32, g.GgmlTypeOf("blk.0.attn_norm.weight"));
            Assert.Equal(GgmlType.Q8_0, g.GgmlTypeOf($"blk.{shape.Layers - 1}.ffn_down.weight"));
            Assert.Equal([shape.Hidden, shape.Ffn], g.Get("blk.0.ffn_down.weight").Shape);
        }
        var q = ModelHub.LoadDecoder(gguf);
        Assert.False(q.HasTokenizer);
        Assert.All(q.Model.BlockLinears, l => Assert.Equal(StoredType.Q8_0, StoredLinears.Find(l.Weight)?.Type));
        // Q8_0 blocks of the same draws, byte for byte as the reference quantizer makes them
        var wv = StoredLinears.Find(q.Model.Weights.Layers[0].Wv)!;
        var x = new float[shape.Hidden];
        RandomCheckpoint.Row(11, "model.layers.0.self_attn.v_proj.weight", 1, 1f / MathF.Sqrt(shape.Hidden), x, new float[3 * shape.Hidden]);
        var blocks = new byte[StoredMatrix.BytesFor(StoredType.Q8_0, 1, shape.Hidden)];
        StoredMatrix.Quantize(StoredType.Q8_0, x, blocks);
        var back = new float[shape.Hidden];
        StoredMatrix.FromBytes(StoredType.Q8_0, 1, shape.Hidden, blocks).DecodeRow(0, x);
        wv.DecodeRow(1, back);
        Assert.Equal(x, back);

        // The same model in two types: logits agree to the weights' rounding. A Q8_0 step is absmax / 127 of 32 normal
        // draws (about 2.1 std / 127), so its rounding error is about 0.5% of a weight's std (step / sqrt 12); bf16's 8
        // mantissa bits add about 0.1%. The logits (rms about 1) differ by about that relative error: rms under 2%, the
        // largest of the thousands under 10%. A wrong rotary order of q / k (or any misplaced tensor) changes them by O(1).
        var ids = Ids(shape.Vocab, 16, 2);
        var a = q.Logits(ids);
        var b = ModelHub.LoadDecoder(folder).Logits(ids);
        double spread = Math.Sqrt(b.Average(v => (double)v * v)), worst = a.Zip(b, (u, v) => Math.Abs(u - v)).Max();
        double rms = Math.Sqrt(a.Zip(b, (u, v) => (double)(u - v) * (u - v)).Average());
        Assert.True(rms < 0.02 * spread && worst < 0.1 * spread, $"GGUF vs folder logits differ by rms {rms}, max {worst} (logits rms {spread})");
        var shuffled = ModelHub.LoadDecoder(folder).Logits(ids.Reverse().ToArray());
        Assert.True(a.Zip(shuffled, (u, v) => Math.Abs(u - v)).Max() > 0.2 * spread); // the tolerance is far from what other inputs give
    }

    [Fact]
    public void Bad_options_name_the_option()
    {
        Assert.Equal("--type", Assert.Throws<OptionException>(() => RandomCheckpoint.Write(DecoderShape.Tiny, "f16", 0, Path.Combine(_dir, "x"))).Option);
        var e = Assert.Throws<OptionException>(() => DecoderShape.Parse("llama-70b"));
        Assert.Equal("--shape", e.Option);
        Assert.Contains("mistral-7b", e.Message);
        Assert.Equal("--layers", Assert.Throws<OptionException>(() => DecoderShape.Parse("tiny", 0)).Option);
        Assert.Equal(5, DecoderShape.Parse("MISTRAL-7B", 5).Layers);
        var m = DecoderShape.Mistral7B;
        Assert.Equal((32, 4096, 32, 8, 14336, 32000), (m.Layers, m.Hidden, m.Heads, m.KvHeads, m.Ffn, m.Vocab));
        Assert.Equal(7_241_732_096, m.HfTensors().Sum(t => (long)t.Rows * t.Cols)); // Mistral-7B-v0.1's parameter count
    }
}
