using static Workbench.Engine.Tests.Goldens;
using Workbench.Engine.Formats;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Quantization;
using Workbench.Engine.Tests.Formats;

namespace Workbench.Engine.Tests.Models;

/// <summary>
/// Models loaded with their linears kept as stored (memory-mapped bf16 / f16 / Q8_0 / Q4_0, the stored-type kernels)
/// against the same files copied to fp32: every block linear is stored, the logits agree to fp32 rounding, and the
/// quantized GGUFs still match llama.cpp's goldens (GgufQuantTests checks those against the loader's default).
/// </summary>
public class StoredWeightsTests
{

    private static int[] Prompt(int vocab, int n) => Enumerable.Range(0, n).Select(i => (i * 37 + 1) % vocab).ToArray();

    // The stored Q8_0 / Q4_0 linears quantize their activations to Q8_0 blocks (as llama.cpp does), the fp32 copy does
    // not: measured 0.183 (q8_0) and 0.263 (q4_0) apart, the size of llama.cpp's own quantized vs dequant-f32 gap.
    [Theory]
    [InlineData("q8_0", StoredType.Q8_0, 0.2)]
    [InlineData("q4_0", StoredType.Q4_0, 0.3)]
    [InlineData("q4_k_m", StoredType.Q5_0, 0.3)] // llama-quantize's Q4_K_M of 64-wide rows: Q5_0 / Q8_0 / F16, no K type fits
    public void Quantized_gguf_runs_from_its_blocks_with_the_logits_of_the_fp32_copy(string q, StoredType type, double tolerance)
    {
        string path = RepoFiles.Data("goldens", "gguf-quants", $"stories260K-{q}.gguf");
        var stored = LlamaLoader.FromGguf(path);
        var fp32 = LlamaLoader.FromGguf(path, storage: WeightStorage.Fp32);
        // every block linear in the type llama-quantize stored it in (w2, 172 columns, is not whole blocks: F16)
        using (var g = GgufFile.Open(path))
            for (int i = 0; i < stored.Config.Layers; i++)
                foreach (var (n, l) in new[] { ("attn_q", stored.Weights.Layers[i].Wq), ("attn_output", stored.Weights.Layers[i].Wo), ("ffn_down", stored.Weights.Layers[i].W2), ("ffn_up", stored.Weights.Layers[i].W3) })
                    Assert.Equal(StoredLinears.KernelType(g.GgmlTypeOf($"blk.{i}.{n}.weight")), StoredLinears.Find(l)?.Type);
        Assert.Contains(stored.BlockLinears, l => StoredLinears.Find(l.Weight)?.Type == type);
        Assert.All(stored.BlockLinears, l => Assert.NotNull(StoredLinears.Find(l.Weight)));
        Assert.All(fp32.BlockLinears, l => Assert.Null(StoredLinears.Find(l.Weight)));
        // resident bytes: the block linears at 8.5 / 4.5 / 5.5 / 16 bits instead of 32
        // untied head too, and the embedding where its type has kernels (its lookup decodes the rows it needs)
        var kept = stored.BlockLinears.Select(l => l.Weight).Append(stored.Weights.Output).Select(w => StoredLinears.Find(w)!)
            .Concat(StoredLinears.Find(stored.Weights.TokenEmbedding) is { } e ? [e] : []).ToList();
        Assert.Equal(fp32.ParameterBytes() - kept.Sum(m => 4L * m.Rows * m.Cols - m.WeightBytes), stored.ParameterBytes());
        var ids = Prompt(stored.Config.Vocab, 24);
        var a = stored.Forward(ids, 0, new ForwardContext()).Logits;
        var b = fp32.Forward(ids, 0, new ForwardContext()).Logits;
        Assert.True(MaxAbs(a, b) <= tolerance, $"{q}: stored vs fp32 logits differ by {MaxAbs(a, b)}");
        Assert.True(MaxAbs(a, b) > 0); // the activations are quantized
        // decode through the KV cache (the GEMV) gives the prefill's (GEMM's) last row
        var cache = new KvCache(stored.Config.Layers, ids.Length, stored.Config.KvDim);
        stored.Forward(ids[..^1], 0, new ForwardContext { Cache = cache });
        var last = stored.Forward(ids[^1..], ids.Length - 1, new ForwardContext { Cache = cache }).Logits;
        int v = stored.Config.Vocab;
        Assert.True(MaxAbs(last, a[^v..]) <= 1e-4);
    }

    /// <summary>
    /// The linears' types of the test-written GGUFs: llama-quantize's Q4_K_M assignment (attention q / output and ffn gate
    /// Q4_K, attn_v and ffn_down Q6_K, the head Q6_K) with one Q5_K (ffn_up) and one Q2_K (attn_k); and a mix of the
    /// remaining block types, Q3_K (as Q3_K_M / Q3_K_S use it), Q4_1 and Q5_1.
    /// </summary>
    public static TheoryData<string> Mixes => new() { "q4_k_m", "q3_k_q4_1_q5_1" };

    private static Dictionary<string, GgmlType> MixTypes(string mix) => mix switch
    {
        "q4_k_m" => new()
        {
            ["attn_q"] = GgmlType.Q4_K, ["attn_k"] = GgmlType.Q2_K, ["attn_v"] = GgmlType.Q6_K, ["attn_output"] = GgmlType.Q4_K,
            ["ffn_gate"] = GgmlType.Q4_K, ["ffn_up"] = GgmlType.Q5_K, ["ffn_down"] = GgmlType.Q6_K, ["output"] = GgmlType.Q6_K,
        },
        _ => new()
        {
            ["attn_q"] = GgmlType.Q3_K, ["attn_k"] = GgmlType.Q4_1, ["attn_v"] = GgmlType.Q5_1, ["attn_output"] = GgmlType.Q3_K,
            ["ffn_gate"] = GgmlType.Q4_1, ["ffn_up"] = GgmlType.Q5_1, ["ffn_down"] = GgmlType.Q3_K, ["output"] = GgmlType.Q5_1,
        },
    };

    /// <summary>
    /// A one-layer llama GGUF written here with whole super-blocks (dim 256, FFN 512, vocab 40), the linears in the
    /// mix's types (seeded random codes and scales, <see cref="StoredKernelsK.RandomBlocks"/>), F32 embeddings and norms.
    /// </summary>
    private static string WriteQuantGguf(string dir, Dictionary<string, GgmlType> mix, out Dictionary<string, GgmlType> types)
    {
        const int dim = 256, ffn = 512, vocab = 40;
        var gb = new GgufBuilder();
        gb.UInts.AddRange([("llama.block_count", 1), ("llama.embedding_length", dim), ("llama.feed_forward_length", ffn),
            ("llama.attention.head_count", 4), ("llama.attention.head_count_kv", 2), ("llama.context_length", 64)]);
        var data = new List<byte>();
        var kinds = new Dictionary<string, GgmlType>();
        types = kinds;
        var rng = new Random(7);
        void Add(string name, int rows, int cols, GgmlType type)
        {
            while (data.Count % 32 != 0) data.Add(0);
            gb.Tensors.Add((name, cols == 0 ? [(ulong)rows] : [(ulong)cols, (ulong)rows], (uint)type, (ulong)data.Count));
            kinds[name] = type;
            if (type == GgmlType.F32)
            {
                int n = rows * Math.Max(cols, 1);
                for (int i = 0; i < n; i++) data.AddRange(BitConverter.GetBytes(cols == 0 ? 1f + 0.1f * (float)(rng.NextDouble() - 0.5) : (float)(rng.NextDouble() * 2 - 1)));
                return;
            }
            var st = StoredLinears.KernelType(type)!.Value;
            var bytes = new byte[StoredMatrix.BytesFor(st, rows, cols)];
            StoredKernelsK.RandomBlocks(st, bytes, rng);
            data.AddRange(bytes);
        }
        Add("token_embd.weight", vocab, dim, GgmlType.F32);
        Add("blk.0.attn_norm.weight", dim, 0, GgmlType.F32);
        Add("blk.0.attn_q.weight", dim, dim, mix["attn_q"]);
        Add("blk.0.attn_k.weight", dim / 2, dim, mix["attn_k"]);
        Add("blk.0.attn_v.weight", dim / 2, dim, mix["attn_v"]);
        Add("blk.0.attn_output.weight", dim, dim, mix["attn_output"]);
        Add("blk.0.ffn_norm.weight", dim, 0, GgmlType.F32);
        Add("blk.0.ffn_gate.weight", ffn, dim, mix["ffn_gate"]);
        Add("blk.0.ffn_up.weight", ffn, dim, mix["ffn_up"]);
        Add("blk.0.ffn_down.weight", dim, ffn, mix["ffn_down"]);
        Add("output_norm.weight", dim, 0, GgmlType.F32);
        Add("output.weight", vocab, dim, mix["output"]);
        gb.Data = [.. data];
        string path = Path.Combine(dir, "k.gguf");
        File.WriteAllBytes(path, gb.Build());
        return path;
    }

    [Theory]
    [MemberData(nameof(Mixes))]
    public void Block_quantized_gguf_runs_from_its_blocks_with_the_logits_of_the_fp32_copy(string mix)
    {
        using var tmp = new TempDir();
        var want = MixTypes(mix);
        string path = WriteQuantGguf(tmp.Path, want, out var types);
        var stored = LlamaLoader.FromGguf(path);
        var fp32 = LlamaLoader.FromGguf(path, storage: WeightStorage.Fp32);
        var l0 = stored.Weights.Layers[0];
        foreach (var (n, w) in new[] { ("attn_q", l0.Wq), ("attn_k", l0.Wk), ("attn_v", l0.Wv), ("attn_output", l0.Wo), ("ffn_gate", l0.W1), ("ffn_down", l0.W2), ("ffn_up", l0.W3) })
        {
            Assert.Equal(StoredLinears.KernelType(types[$"blk.0.{n}.weight"]), StoredLinears.Find(w)?.Type);
            Assert.Equal(want[n].ToString(), StoredLinears.Find(w)?.Type.ToString()); // every one kept as stored
        }
        Assert.Equal(want["output"].ToString(), StoredLinears.Find(stored.Weights.Output!)?.Type.ToString());
        Assert.All(fp32.BlockLinears, l => Assert.Null(StoredLinears.Find(l.Weight)));
        // the card (what inspect prints) names the stored types; resident bytes are the blocks', not 4 a weight
        var card = stored.Card.Tensors.ToDictionary(t => t.Name, t => t.DType);
        foreach (var n in want.Keys.Where(k => k != "output"))
            Assert.Equal(want[n].ToString(), card[$"blk.0.{n}.weight"]);
        var kept = stored.BlockLinears.Select(l => l.Weight).Append(stored.Weights.Output).Select(w => StoredLinears.Find(w)!).ToList();
        Assert.Equal(fp32.ParameterBytes() - kept.Sum(m => 4L * m.Rows * m.Cols - m.WeightBytes), stored.ParameterBytes());
        // the fp32 copy holds ggml's dequantized values, so the two runs differ by accumulation rounding only
        var ids = Prompt(stored.Config.Vocab, 11);
        var a = stored.Forward(ids, 0, new ForwardContext()).Logits;
        var b = fp32.Forward(ids, 0, new ForwardContext()).Logits;
        Assert.True(b.Max(Math.Abs) > 0.1, "the logits are not degenerate");
        Assert.True(MaxAbs(a, b) <= 1e-4 * Math.Max(1, b.Max(Math.Abs)), $"{mix}: stored vs fp32 logits differ by {MaxAbs(a, b)} (max |logit| {b.Max(Math.Abs)})");
        // decode through the KV cache (GEMV) gives the prefill's (GEMM's) last row
        var cache = new KvCache(stored.Config.Layers, ids.Length, stored.Config.KvDim);
        stored.Forward(ids[..^1], 0, new ForwardContext { Cache = cache });
        var last = stored.Forward(ids[^1..], ids.Length - 1, new ForwardContext { Cache = cache }).Logits;
        Assert.True(MaxAbs(last, a[^stored.Config.Vocab..]) <= 1e-4 * Math.Max(1, b.Max(Math.Abs)));
    }

    public static TheoryData<string, DType> Families => new()
    {
        { "llama_untied", DType.BF16 }, { "mistral", DType.F16 }, { "qwen2", DType.BF16 }, { "qwen3", DType.F16 },
        { "phi3", DType.BF16 }, { "gemma2", DType.F16 }, { "gemma3_text", DType.BF16 }, { "llama3_tied", DType.F16 },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void Half_precision_copies_of_the_arch_goldens_run_as_stored_like_their_fp32_copies(string family, DType dtype)
    {
        string src = Path.GetDirectoryName(Bundled.Path($"data/goldens/arch/{family}/config.json"))!;
        string dir = Directory.CreateTempSubdirectory($"wb-stored-{family}-").FullName;
        try
        {
            using (var st = SafetensorsFile.Open(Path.Combine(src, "model.safetensors")))
                SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"),
                    st.Tensors.Select(t => (t.Name, t.Shape.Select(d => (int)d).ToArray(), st.ReadF32(t.Name))).ToList(), dtype);
            File.Copy(Path.Combine(src, "config.json"), Path.Combine(dir, "config.json"));
            var stored = ModelHub.LoadDecoder(dir).Model;
            var fp32 = ModelHub.LoadDecoder(dir, storage: WeightStorage.Fp32).Model;
            var want = dtype == DType.BF16 ? StoredType.BF16 : StoredType.F16;
            Assert.All(stored.BlockLinears, l => Assert.Equal(want, StoredLinears.Find(l.Weight)?.Type));
            if (!stored.Weights.SharedOutput) Assert.NotNull(StoredLinears.Find(stored.Weights.Output));
            // the stored rows (q / k rotary order, fused qkv / gate_up slices) are the fp32 copy's rows, value for value
            foreach (var (s, f) in stored.BlockLinears.Zip(fp32.BlockLinears))
                Assert.Equal(f.Weight, StoredLinears.Fp32(s.Weight));
            var ids = Prompt(stored.Config.Vocab, 7);
            var a = stored.Forward(ids, 0, new ForwardContext()).Logits;
            var b = fp32.Forward(ids, 0, new ForwardContext()).Logits;
            Assert.True(MaxAbs(a, b) <= 1e-4, $"{family} {dtype}: stored vs fp32 logits differ by {MaxAbs(a, b)}");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Analyses_that_need_fp32_get_it_from_a_stored_model()
    {
        var stored = LlamaLoader.FromGguf(RepoFiles.Data("goldens", "gguf-quants", "stories260K-q8_0.gguf"));
        var fp32 = LlamaLoader.FromGguf(RepoFiles.Data("goldens", "gguf-quants", "stories260K-q8_0.gguf"), storage: WeightStorage.Fp32);
        // ternary quantization reads the dequantized values: the same ternaries as from the fp32 copy
        using var a = TernaryModel.Quantize(stored, LowBitFormat.I2S);
        using var b = TernaryModel.Quantize(fp32, LowBitFormat.I2S);
        Assert.Equal(b.Layers.Select(l => l.Scale), a.Layers.Select(l => l.Scale));
        var ids = Prompt(stored.Config.Vocab, 9);
        // (the untied Q8_0 head runs from its stored bytes, activations quantized to Q8_0, in one and as fp32 in the other)
        double gap = MaxAbs(fp32.Forward(ids, 0, b.Context()).Logits, stored.Forward(ids, 0, a.Context()).Logits);
        Assert.True(gap <= 0.1, $"stored vs fp32 head: {gap}");
        // training copies: the parameters equal the fp32 copy's
        Assert.Equal(Workbench.Engine.Training.LlamaParameters.From(fp32).Wq, Workbench.Engine.Training.LlamaParameters.From(stored).Wq);
        Assert.Throws<Workbench.Engine.Requests.OptionException>(() => WeightStorageOption.Parse("int4"));
    }
}
