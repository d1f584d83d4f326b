using static Workbench.Engine.Tests.Goldens;
using System.Numerics.Tensors;
using System.Text.Json;
using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Xunit.Abstractions;

namespace Workbench.Engine.Tests.Models;

/// <summary>
/// Every Hugging Face decoder family against transformers 5.17's own outputs (data/goldens/arch, README there): one
/// random-weight instance per family, loaded from its folder by ModelHub; logits, every layer's output and the final
/// norm within 1e-4 for both inputs, and the greedy continuation (through the KV cache) token for token. Sizes come
/// from the files, not from the test.
/// </summary>
public class ArchGoldenTests(ITestOutputHelper output)
{
    public static TheoryData<string> Families => new()
    {
        "llama3_tied", "llama_untied", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3_text", "gpt2", "bitnet_master", "bitnet_packed",
    };

    private const double Tol = 1e-4;

    private static string Folder(string family) => Path.GetDirectoryName(Bundled.Path($"data/goldens/arch/{family}/config.json"))!;

    private static LlamaModel Load(string family) => ModelHub.LoadDecoder(Folder(family)).Model;

    private static int[] Ids(string family, string which) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(family), $"gen_{which}.json"))).RootElement.GetProperty("prompt")
            .EnumerateArray().Select(e => e.GetInt32()).ToArray();

    private static int[] Generated(string family, string which) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(family), $"gen_{which}.json"))).RootElement.GetProperty("generated")
            .EnumerateArray().Select(e => e.GetInt32()).ToArray();


    [Theory]
    [MemberData(nameof(Families))]
    public void Logits_layer_outputs_and_final_norm_match_transformers(string family)
    {
        var model = Load(family);
        using var golden = NpzFile.Open(Path.Combine(Folder(family), "golden.npz"));
        foreach (var which in new[] { "a", "b" })
        {
            var ids = Ids(family, which);
            int layers = checked((int)golden.Get($"layer_out_{which}").Shape[0]);
            Assert.Equal(model.Config.Layers, layers);
            var sites = Enumerable.Range(0, layers).Select(HookNames.ResidPost).Append(HookNames.LnFinal).Append(HookNames.Embed).ToArray();
            var hooks = new Hooks().Capture(sites);
            var (logits, _) = model.Forward(ids, 0, new ForwardContext { Hooks = hooks });

            double de = MaxAbs(hooks.Get(HookNames.Embed).Data, golden.ReadF32($"embed_{which}"));
            Assert.True(de <= Tol, $"{family} {which}: embedding (input of layer 0) differs by {de}");
            double dl = MaxAbs(logits, golden.ReadF32($"logits_{which}"));
            Assert.True(dl <= Tol, $"{family} {which}: max |logit - transformers| = {dl}");
            var layerOut = golden.ReadF32($"layer_out_{which}");
            int per = layerOut.Length / layers;
            for (int l = 0; l < layers; l++)
            {
                double dh = MaxAbs(hooks.Get(HookNames.ResidPost(l)).Data, layerOut.AsSpan(l * per, per));
                Assert.True(dh <= Tol, $"{family} {which}: layer {l} output differs by {dh}");
            }
            double dn = MaxAbs(hooks.Get(HookNames.LnFinal).Data, golden.ReadF32($"final_norm_{which}"));
            Assert.True(dn <= Tol, $"{family} {which}: final norm differs by {dn}");
            output.WriteLine($"{family} {which}: max |logit diff| {dl:E2}, final norm {dn:E2}");
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Greedy_continuation_through_the_kv_cache_matches_transformers(string family)
    {
        var model = Load(family);
        using var golden = NpzFile.Open(Path.Combine(Folder(family), "golden.npz"));
        foreach (var which in new[] { "a", "b" })
        {
            var prompt = Ids(family, which);
            var want = Generated(family, which);
            var wantLogits = golden.ReadF32($"gen_logits_{which}");
            int v = model.Config.Vocab;
            var ctx = new ForwardContext { Cache = KvCache.For(model.Config, prompt.Length + want.Length) };
            var (logits, _) = model.Forward(prompt, 0, ctx, allRows: false);
            var got = new List<int>();
            for (int k = 0; k < want.Length; k++)
            {
                double d = MaxAbs(logits, wantLogits.AsSpan(k * v, v));
                Assert.True(d <= Tol, $"{family} {which}: step {k} logits differ by {d}");
                int next = TensorPrimitives.IndexOfMax(logits);
                got.Add(next);
                (logits, _) = model.Forward([next], prompt.Length + k, ctx, allRows: false);
            }
            Assert.Equal(want, got);
        }
    }

    [Theory]
    [InlineData("llama3_tied", "rope__model_rotary_emb_inv_freq", 0)]
    [InlineData("gemma3_text", "rope__model_rotary_emb_sliding_attention_inv_freq", 0)]
    [InlineData("gemma3_text", "rope__model_rotary_emb_full_attention_inv_freq", 5)]
    public void Rotary_frequencies_from_the_config_are_the_ones_transformers_used(string family, string file, int layer)
    {
        var model = Load(family);
        using var golden = NpzFile.Open(Path.Combine(Folder(family), "golden.npz"));
        var want = golden.ReadF32(file);
        var got = model.Spec.RopeInvFreq![layer];
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(got[i] - want[i]) <= 1e-6 * want[i], $"inv_freq[{i}] = {got[i]}, transformers {want[i]}");
    }

    [Fact]
    public void Every_block_linear_is_listed_and_goes_through_the_override()
    {
        var model = Load("bitnet_packed");
        var seen = new HashSet<float[]>(ReferenceEqualityComparer.Instance);
        var spy = new Spy(seen);
        model.Forward(Ids("bitnet_packed", "b"), 0, new ForwardContext { Linear = spy });
        var listed = model.BlockLinears.Select(l => l.Weight).ToHashSet(ReferenceEqualityComparer.Instance);
        Assert.Equal(model.Config.Layers * 7, listed.Count);
        // the block linears and, besides them, only the LM head
        Assert.True(listed.IsSubsetOf(seen), "a listed block linear did not go through ForwardContext.RunLinear");
        Assert.Equal([model.Weights.Output], seen.Except(listed));
    }

    private sealed class Spy(HashSet<float[]> seen) : ILinearOverride
    {
        public bool TryLinear(float[] weight, ReadOnlySpan<float> x, int n, int k, int m, Span<float> y) { seen.Add(weight); return false; }
    }

    [Fact]
    public void An_unsupported_architecture_names_the_field_and_the_supported_families()
    {
        var dir = Directory.CreateTempSubdirectory("wb-arch-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "config.json"), """{"architectures": ["FalconForCausalLM"], "model_type": "falcon"}""");
            File.Copy(Path.Combine(Folder("llama_untied"), "model.safetensors"), Path.Combine(dir, "model.safetensors"));
            var e = Assert.Throws<ModelFormatException>(() => ModelHub.Load(dir));
            Assert.Contains("architectures", e.Message);
            Assert.Contains("FalconForCausalLM", e.Message);
            Assert.Contains("Qwen2ForCausalLM", e.Message);

            var cfg = File.ReadAllText(Path.Combine(Folder("llama_untied"), "config.json")).Replace("\"default\"", "\"yarn\"");
            File.WriteAllText(Path.Combine(dir, "config.json"), cfg);
            e = Assert.Throws<ModelFormatException>(() => ModelHub.Load(dir));
            Assert.Contains("rope_type", e.Message);
            Assert.Contains("llama3", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_plain_llama_folder_gets_the_llama2_block_and_other_families_are_not_exported_as_llama()
    {
        Assert.Equal(DecoderSpec.Llama2, Load("llama_untied").Spec);
        Assert.NotEqual(DecoderSpec.Llama2, Load("llama3_tied").Spec); // llama3 rope scaling
        var dir = Path.Combine(Path.GetTempPath(), $"wb-export-{Guid.NewGuid():N}");
        Assert.Throws<NotSupportedException>(() => HuggingFaceExport.WriteLlama(Load("gemma2"), dir));
        Assert.False(Directory.Exists(dir));
    }

    [Theory]
    [InlineData("qwen2")]
    [InlineData("gemma3_text")]
    public void A_sharded_copy_gives_the_same_logits(string family)
    {
        var dir = Directory.CreateTempSubdirectory("wb-shard-").FullName;
        try
        {
            using (var st = SafetensorsFile.Open(Path.Combine(Folder(family), "model.safetensors")))
                SafetensorsWriter.WriteSharded(dir, st.Tensors.Select(t => (t.Name, t.Shape.Select(x => (int)x).ToArray(), st.ReadF32(t.Name))).ToList(),
                    DType.F32, maxShardBytes: 200_000);
            File.Copy(Path.Combine(Folder(family), "config.json"), Path.Combine(dir, "config.json"));
            Assert.True(File.Exists(Path.Combine(dir, "model.safetensors.index.json")));
            var ids = Ids(family, "b");
            Assert.Equal(Load(family).Forward(ids, 0, new ForwardContext()).Logits, ModelHub.LoadDecoder(dir).Model.Forward(ids, 0, new ForwardContext()).Logits);
        }
        finally { Directory.Delete(dir, true); }
    }
}
