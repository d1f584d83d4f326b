using static Workbench.Engine.Tests.Goldens;
using System.Numerics.Tensors;
using System.Text.Json;
using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Xunit.Abstractions;

namespace Workbench.Engine.Tests.Models;

/// <summary>
/// GGUF files of the non-Llama families llama.cpp names, made from the transformers goldens (data/goldens/arch) the way
/// convert_hf_to_gguf.py makes them (<see cref="HfToGguf"/>), loaded by <see cref="GgufDecoders"/> and checked against
/// transformers' own logits (1e-4) and greedy continuations.
/// </summary>
public sealed class GgufFamilyTests(ITestOutputHelper output) : IDisposable
{
    private const double Tol = 1e-4;
    private readonly string _dir = Directory.CreateTempSubdirectory("wb-gguf-fam-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static string Folder(string family) => Path.GetDirectoryName(Bundled.Path($"data/goldens/arch/{family}/config.json"))!;

    private string Gguf(string family, HfToGguf.Options? o = null) =>
        HfToGguf.Convert(Folder(family), Path.Combine(_dir, $"{family}-{Guid.NewGuid():N}.gguf"), o);

    private static int[] Json(string family, string which, string key) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(family), $"gen_{which}.json"))).RootElement.GetProperty(key)
            .EnumerateArray().Select(e => e.GetInt32()).ToArray();


    public static TheoryData<string, string> Families => new()
    {
        { "llama3_tied", "llama" }, { "llama_untied", "llama" }, { "mistral", "llama" }, { "qwen2", "qwen2" }, { "qwen3", "qwen3" },
        { "gemma2", "gemma2" }, { "gemma3_text", "gemma3" }, { "phi3", "phi3" }, { "gpt2", "gpt2" },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void A_converted_gguf_gives_transformers_logits_and_greedy_ids(string family, string arch)
    {
        var path = Gguf(family);
        using (var g = GgufFile.Open(path)) Assert.Equal(arch, g.GetString("general.architecture"));
        var model = GgufDecoders.Load(path);
        using var golden = NpzFile.Open(Path.Combine(Folder(family), "golden.npz"));
        foreach (var which in new[] { "a", "b" })
        {
            var prompt = Json(family, which, "prompt");
            double d = MaxAbs(model.Forward(prompt, 0, new ForwardContext()).Logits, golden.ReadF32($"logits_{which}"));
            Assert.True(d <= Tol, $"{family} ({arch} GGUF) {which}: max |logit - transformers| = {d}");
            output.WriteLine($"{family} ({arch} GGUF) {which}: max |logit - transformers| {d:E2}");

            var want = Json(family, which, "generated");
            var ctx = new ForwardContext { Cache = KvCache.For(model.Config, prompt.Length + want.Length) };
            var (logits, _) = model.Forward(prompt, 0, ctx, allRows: false);
            var got = new List<int>();
            for (int k = 0; k < want.Length; k++)
            {
                got.Add(TensorPrimitives.IndexOfMax(logits));
                (logits, _) = model.Forward([got[^1]], prompt.Length + k, ctx, allRows: false);
            }
            Assert.Equal(want, got);
        }
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("phi3")]
    [InlineData("gpt2")]
    [InlineData("gemma2")]
    public void F16_linears_stay_stored_and_compute_what_their_fp32_copy_does(string family)
    {
        var path = Gguf(family, new HfToGguf.Options(F16Linears: true));
        var stored = GgufDecoders.Load(path);
        Assert.All(stored.BlockLinears, l => Assert.Equal(Workbench.Engine.LowBit.StoredType.F16, StoredLinears.Find(l.Weight)!.Type));
        // the card (inspect) names each tensor by its GGUF name and stored type
        Assert.Equal("F16", stored.Card.Tensors.Single(t => t.Name == "blk.0.ffn_down.weight").DType);
        Assert.Equal("F32", stored.Card.Tensors.Single(t => t.Name == "output_norm.weight").DType);
        var fp32 = GgufDecoders.Load(path, storage: WeightStorage.Fp32);
        Assert.All(fp32.BlockLinears, l => Assert.Null(StoredLinears.Find(l.Weight)));
        var ids = Json(family, "b", "prompt");
        double d = MaxAbs(stored.Forward(ids, 0, new ForwardContext()).Logits, fp32.Forward(ids, 0, new ForwardContext()).Logits);
        output.WriteLine($"{family} F16 stored vs its fp32 copy: {d:E2}");
        Assert.True(d <= Tol, $"{family}: F16 kernels vs fp32 of the same values: {d}");
    }

    [Fact]
    public void Llama_qk_rows_are_stored_permuted_for_ggml_rope_and_loaded_as_they_are()
    {
        var path = Gguf("llama_untied");
        using var g = GgufFile.Open(path);
        using var st = SafetensorsFile.Open(Path.Combine(Folder("llama_untied"), "model.safetensors"));
        var hf = st.ReadF32("model.layers.1.self_attn.q_proj.weight");
        var gg = g.ReadF32("blk.1.attn_q.weight");
        int cols = (int)st.Get("model.layers.1.self_attn.q_proj.weight").Shape[1];
        int heads = checked((int)g.GetInt64("llama.attention.head_count")), hd = hf.Length / cols / heads;
        // by hand: head 1, pair i = 3, second element (j = 1): GGUF row 1*hd + 2*3 + 1 is the folder's row 1*hd + hd/2 + 3
        Assert.Equal(hf.AsSpan((hd + hd / 2 + 3) * cols, cols).ToArray(), gg.AsSpan((hd + 7) * cols, cols).ToArray());
        Assert.Equal(hf.AsSpan((hd + 3) * cols, cols).ToArray(), gg.AsSpan((hd + 6) * cols, cols).ToArray());
        // the GGUF loader keeps them; the folder loader unpermutes to the same rows
        var fromGguf = GgufDecoders.Load(path);
        var fromHf = HfDecoders.Load(Folder("llama_untied"));
        Assert.Equal(gg, fromGguf.Weights.Layers[1].Wq);
        Assert.Equal(fromHf.Weights.Layers[1].Wq, fromGguf.Weights.Layers[1].Wq);
        Assert.Equal(fromHf.Weights.Layers[1].Wk, fromGguf.Weights.Layers[1].Wk);
    }

    [Fact]
    public void Gemma_norms_are_stored_plus_one_and_not_shifted_again()
    {
        var path = Gguf("gemma2");
        using var g = GgufFile.Open(path);
        using var st = SafetensorsFile.Open(Path.Combine(Folder("gemma2"), "model.safetensors"));
        var hf = st.ReadF32("model.layers.0.post_attention_layernorm.weight");
        var gg = g.ReadF32("blk.0.post_attention_norm.weight");
        for (int i = 0; i < hf.Length; i++) Assert.Equal(hf[i] + 1, gg[i]);
        var fromGguf = GgufDecoders.Load(path);
        Assert.Equal(gg, fromGguf.Weights.Layers[0].PostAttnNorm);
        Assert.Equal(HfDecoders.Load(Folder("gemma2")).Weights.Layers[0].PostAttnNorm, fromGguf.Weights.Layers[0].PostAttnNorm);
    }

    [Theory]
    [InlineData("llama_untied", false, true)]  // q/k not permuted: ggml's rope would pair the wrong dimensions
    [InlineData("gemma2", true, false)]        // norms without the + 1
    [InlineData("gemma3_text", true, false)]
    public void The_golden_check_fails_when_a_convention_is_wrong(string family, bool permute, bool plusOne)
    {
        var model = GgufDecoders.Load(Gguf(family, new HfToGguf.Options(permute, plusOne)));
        using var golden = NpzFile.Open(Path.Combine(Folder(family), "golden.npz"));
        double d = MaxAbs(model.Forward(Json(family, "a", "prompt"), 0, new ForwardContext()).Logits, golden.ReadF32("logits_a"));
        Assert.True(d > 100 * Tol, $"{family}: a wrong convention still matched transformers ({d})");
    }

    /// <summary>
    /// The honest finding: what the stock converter writes for these instances, llama.cpp computes differently from
    /// transformers (Mistral's sliding window is dropped by the llama arch; Gemma's score scale is 1/sqrt(key_length), not
    /// query_pre_attn_scalar^-0.5), and the loader follows llama.cpp there, so the logits move.
    /// </summary>
    [Theory]
    [InlineData("mistral")]
    [InlineData("gemma2")]
    [InlineData("gemma3_text")]
    public void Without_the_extra_keys_the_file_means_what_llama_cpp_computes(string family)
    {
        var model = GgufDecoders.Load(Gguf(family, new HfToGguf.Options(Stock: true)));
        using var golden = NpzFile.Open(Path.Combine(Folder(family), "golden.npz"));
        double d = MaxAbs(model.Forward(Json(family, "a", "prompt"), 0, new ForwardContext()).Logits, golden.ReadF32("logits_a"));
        output.WriteLine($"{family}, stock keys: max |logit - transformers| {d:E2}");
        Assert.True(d > 100 * Tol, $"{family}: {d}");
    }

    [Fact]
    public void An_unsupported_architecture_names_the_field_and_lists_the_supported()
    {
        var path = Path.Combine(_dir, "falcon.gguf");
        HfToGguf.Write(path, [("general.architecture", "falcon")], [("token_embd.weight", [4, 8], new float[32])]);
        var e = Assert.Throws<ModelFormatException>(() => GgufDecoders.Load(path));
        Assert.Equal("general.architecture", e.Field);
        Assert.Contains("falcon", e.Message);
        foreach (var a in new[] { "llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "gpt2" }) Assert.Contains(a, e.Message);
    }

    [Fact]
    public void A_missing_tensor_is_named_by_its_gguf_name()
    {
        var src = Gguf("qwen2");
        using var g = GgufFile.Open(src);
        var kv = g.Metadata.Where(p => p.Value is string or uint or float).Select(p => (p.Key, p.Value)).ToList();
        var tensors = g.Tensors.Where(t => t.Name != "blk.2.attn_k.bias").Select(t => (t.Name, t.Shape, g.ReadF32(t.Name))).ToList();
        var path = Path.Combine(_dir, "missing.gguf");
        HfToGguf.Write(path, kv, tensors);
        var e = Assert.Throws<ModelFormatException>(() => GgufDecoders.Load(path));
        Assert.Equal("blk.2.attn_k.bias", e.Field);
    }
}
