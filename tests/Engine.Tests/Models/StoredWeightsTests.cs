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
    private static double MaxAbs(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double worst = 0;
        for (int i = 0; i < a.Length; i++) worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
        return worst;
    }

    private static int[] Prompt(int vocab, int n) => Enumerable.Range(0, n).Select(i => (i * 37 + 1) % vocab).ToArray();

    [Theory]
    [InlineData("q8_0", StoredType.Q8_0)]
    [InlineData("q4_0", StoredType.Q4_0)]
    public void Quantized_gguf_runs_from_its_blocks_with_the_logits_of_the_fp32_copy(string q, StoredType type)
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
        // resident bytes: the block linears at 8.5 / 4.5 / 16 bits instead of 32
        // untied head too, and the embedding where its type has kernels (its lookup decodes the rows it needs)
        var kept = stored.BlockLinears.Select(l => l.Weight).Append(stored.Weights.Output).Select(w => StoredLinears.Find(w)!)
            .Concat(StoredLinears.Find(stored.Weights.TokenEmbedding) is { } e ? [e] : []).ToList();
        Assert.Equal(fp32.ParameterBytes() - kept.Sum(m => 4L * m.Rows * m.Cols - m.WeightBytes), stored.ParameterBytes());
        var ids = Prompt(stored.Config.Vocab, 24);
        var a = stored.Forward(ids, 0, new ForwardContext()).Logits;
        var b = fp32.Forward(ids, 0, new ForwardContext()).Logits;
        Assert.True(MaxAbs(a, b) <= 1e-4, $"{q}: stored vs fp32 logits differ by {MaxAbs(a, b)}");
        // decode through the KV cache (the GEMV) gives the prefill's (GEMM's) last row
        var cache = new KvCache(stored.Config.Layers, ids.Length, stored.Config.KvDim);
        stored.Forward(ids[..^1], 0, new ForwardContext { Cache = cache });
        var last = stored.Forward(ids[^1..], ids.Length - 1, new ForwardContext { Cache = cache }).Logits;
        int v = stored.Config.Vocab;
        Assert.True(MaxAbs(last, a[^v..]) <= 1e-4);
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
        // (the untied head runs from its stored bytes in one and as fp32 in the other: equal to fp32 rounding)
        Assert.True(MaxAbs(fp32.Forward(ids, 0, b.Context()).Logits, stored.Forward(ids, 0, a.Context()).Logits) <= 1e-4);
        // training copies: the parameters equal the fp32 copy's
        Assert.Equal(Workbench.Engine.Training.LlamaParameters.From(fp32).Wq, Workbench.Engine.Training.LlamaParameters.From(stored).Wq);
        Assert.Throws<Workbench.Engine.Requests.OptionException>(() => WeightStorageOption.Parse("int4"));
    }
}
