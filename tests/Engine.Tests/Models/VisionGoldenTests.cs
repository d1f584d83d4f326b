using static Workbench.Engine.Tests.Goldens;
using System.Numerics.Tensors;
using System.Text.Json;
using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Xunit.Abstractions;

namespace Workbench.Engine.Tests.Models;

/// <summary>
/// Hugging Face ViTForImageClassification and LlavaForConditionalGeneration against transformers 5.17's own outputs
/// (data/goldens/arch/vit and llava, README there): random-weight instances loaded from their folders by ModelHub, fed
/// the goldens' pixel_values (and LLaVA's input ids); embeddings, every layer's output, the final norm, the image
/// features and the logits within 1e-4, LLaVA's greedy continuation through the KV cache token for token.
/// </summary>
public class VisionGoldenTests(ITestOutputHelper output)
{
    private const double Tol = 1e-4;

    private static string Folder(string family) => Path.GetDirectoryName(Bundled.Path($"data/goldens/arch/{family}/config.json"))!;


    /// <summary>Every layer's output, the final norm and the logits against transformers' (golden.npz), each within Tol; the last two differences.</summary>
    private static (double FinalNorm, double Logits) LayersNormAndLogits(Hooks hooks, NpzFile golden, int layers, ReadOnlySpan<float> logits)
    {
        var layerOut = golden.ReadF32("layer_out");
        int per = layerOut.Length / layers;
        for (int l = 0; l < layers; l++)
        {
            double dh = MaxAbs(hooks.Get(HookNames.ResidPost(l)).Data, layerOut.AsSpan(l * per, per));
            Assert.True(dh <= Tol, $"layer {l} output differs by {dh}");
        }
        double dn = MaxAbs(hooks.Get(HookNames.LnFinal).Data, golden.ReadF32("final_norm"));
        Assert.True(dn <= Tol, $"final norm differs by {dn}");
        double dl = MaxAbs(logits, golden.ReadF32("logits"));
        Assert.True(dl <= Tol, $"max |logit - transformers| = {dl}");
        return (dn, dl);
    }

    /// <summary>pixel_values [1, 3, H, W] of the golden as the model's input.</summary>
    internal static PixelInput Pixels(NpzFile golden)
    {
        var e = golden.Get("pixel_values");
        Assert.Equal([1L, 3L], e.Shape[..2]);
        return new PixelInput(golden.ReadF32("pixel_values"), (int)e.Shape[2], (int)e.Shape[3]);
    }

    internal static int[] LlavaPrompt() => Ints("prompt");
    private static int[] Ints(string key) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder("llava"), "gen.json"))).RootElement.GetProperty(key)
            .EnumerateArray().Select(e => e.GetInt32()).ToArray();

    internal static LlavaModel Llava() => Assert.IsType<VisionLanguageModel>(ModelHub.Load(Folder("llava"))).Model;

    [Fact]
    public void Vit_embeddings_layers_final_norm_and_logits_match_transformers()
    {
        var loaded = Assert.IsType<ImageClassifier>(ModelHub.Load(Folder("vit")));
        var model = loaded.Model;
        using var golden = NpzFile.Open(Path.Combine(Folder("vit"), "golden.npz"));
        var px = Pixels(golden);
        Assert.Equal(px.Height, model.Image);
        int layers = checked((int)golden.Get("layer_out").Shape[0]);
        Assert.Equal(layers, model.Config.Layers);
        Assert.Equal(golden.Get("embed").Shape[0], model.Config.MaxSeq); // CLS + grid^2 patches, from the files
        var hooks = new Hooks().Capture(Enumerable.Range(0, layers).Select(HookNames.ResidPost).Append(HookNames.LnFinal).Append(HookNames.Embed));
        var (logits, _) = model.Forward(px, new ForwardContext { Hooks = hooks });

        double de = MaxAbs(hooks.Get(HookNames.Embed).Data, golden.ReadF32("embed"));
        Assert.True(de <= Tol, $"embedding differs by {de}");
        var (dn, dl) = LayersNormAndLogits(hooks, golden, layers, logits);
        output.WriteLine($"vit: embed {de:E2}, final norm {dn:E2}, logits {dl:E2}");
    }

    [Fact]
    public void Vit_config_sizes_come_from_the_folder()
    {
        var m = Assert.IsType<ImageClassifier>(ModelHub.Load(Folder("vit"))).Model;
        var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder("vit"), "config.json"))).RootElement;
        Assert.Equal(cfg.GetProperty("image_size").GetInt32(), m.Image);
        Assert.Equal(cfg.GetProperty("patch_size").GetInt32(), m.Patch);
        Assert.Equal(cfg.GetProperty("layer_norm_eps").GetSingle(), m.Config.NormEps);
        Assert.Equal(MlpKind.GeluErf, m.Config.Mlp);
        Assert.Equal(cfg.GetProperty("id2label").EnumerateObject().Count(), m.Config.Vocab);
    }

    [Fact]
    public void Llava_image_features_embeddings_layers_final_norm_and_logits_match_transformers()
    {
        var model = Llava();
        using var golden = NpzFile.Open(Path.Combine(Folder("llava"), "golden.npz"));
        var ids = LlavaPrompt();
        int layers = checked((int)golden.Get("layer_out").Shape[0]);
        Assert.Equal(layers, model.Config.Layers);
        var hooks = new Hooks().Capture(Enumerable.Range(0, layers).Select(HookNames.ResidPost)
            .Append(HookNames.LnFinal).Append(HookNames.Embed).Append(HookNames.ImageFeatures));
        var (logits, _) = model.Forward(ModelInput.Of(ids, Pixels(golden)), new ForwardContext { Hooks = hooks });

        double df = MaxAbs(hooks.Get(HookNames.ImageFeatures).Data, golden.ReadF32("image_features"));
        Assert.True(df <= Tol, $"image features differ by {df}");
        Assert.Equal(Enumerable.Range(0, ids.Length).Where(i => ids[i] == model.ImageTokenId), hooks.Get(HookNames.ImageFeatures).TokenIndex);
        double de = MaxAbs(hooks.Get(HookNames.Embed).Data, golden.ReadF32("embed"));
        Assert.True(de <= Tol, $"embedding (image features in place) differs by {de}");
        var (dn, dl) = LayersNormAndLogits(hooks, golden, layers, logits);
        output.WriteLine($"llava: image features {df:E2}, embed {de:E2}, final norm {dn:E2}, logits {dl:E2}");
    }

    [Fact]
    public void Llava_greedy_continuation_through_the_kv_cache_matches_transformers()
    {
        var model = Llava();
        using var golden = NpzFile.Open(Path.Combine(Folder("llava"), "golden.npz"));
        var prompt = LlavaPrompt();
        var want = Ints("generated");
        var wantLogits = golden.ReadF32("gen_logits");
        int v = model.Config.Vocab;
        var ctx = new ForwardContext { Cache = KvCache.For(model.Config, prompt.Length + want.Length) };
        var state = model.Hidden(ModelInput.Of(prompt, Pixels(golden)), ctx);
        state.Keep([state.Rows - 1]);
        var logits = model.Readout(state, ctx);
        var got = new List<int>();
        for (int k = 0; k < want.Length; k++)
        {
            double d = MaxAbs(logits, wantLogits.AsSpan(k * v, v));
            Assert.True(d <= Tol, $"step {k} logits differ by {d}");
            int next = TensorPrimitives.IndexOfMax(logits);
            got.Add(next);
            logits = model.Forward(ModelInput.Of([next], prompt.Length + k), ctx).Output;
        }
        Assert.Equal(want, got);
    }

    [Fact]
    public void Llava_hooks_and_module_skips_act_on_the_text_model_with_the_image_in_the_input()
    {
        var model = Llava();
        using var golden = NpzFile.Open(Path.Combine(Folder("llava"), "golden.npz"));
        var input = ModelInput.Of(LlavaPrompt(), Pixels(golden));
        var sites = new[] { HookNames.ImageFeatures, HookNames.Embed, HookNames.ResidPre(1), HookNames.ResidMid(1) };
        var full = new Hooks().Capture(sites);
        var fullLogits = model.Forward(input, new ForwardContext { Hooks = full }).Output;
        var skip = new Hooks().Capture(sites);
        var skips = new ModuleSkips(new HashSet<int> { 1 }, new HashSet<int>());
        var skipLogits = model.Forward(input, new ForwardContext { Hooks = skip, Skips = skips }).Output;
        // The tower and the embedding are untouched by a text-layer skip; the skipped attention leaves the stream as it was.
        Assert.Equal(full.Get(HookNames.ImageFeatures).Data, skip.Get(HookNames.ImageFeatures).Data);
        Assert.Equal(full.Get(HookNames.Embed).Data, skip.Get(HookNames.Embed).Data);
        Assert.Equal(skip.Get(HookNames.ResidPre(1)).Data, skip.Get(HookNames.ResidMid(1)).Data);
        Assert.NotEqual(full.Get(HookNames.ResidPre(1)).Data, full.Get(HookNames.ResidMid(1)).Data);
        Assert.True(MaxAbs(fullLogits, skipLogits) > 1e-3, "skipping layer 1's attention should change the logits");
        // The text model's linears are the block linears, and every one of them and the projector run through the override.
        var seen = new HashSet<float[]>(ReferenceEqualityComparer.Instance);
        model.Forward(input, new ForwardContext { Linear = new Spy(seen) });
        Assert.True(model.BlockLinears.Select(l => l.Weight).All(seen.Contains));
        Assert.Contains(model.Projection.W1, seen);
    }

    private sealed class Spy(HashSet<float[]> seen) : ILinearOverride
    {
        public bool TryLinear(float[] weight, ReadOnlySpan<float> x, int n, int k, int m, Span<float> y) { seen.Add(weight); return false; }
    }

    [Fact]
    public void Llava_without_the_image_embeds_ids_as_themselves_and_a_wrong_count_of_image_tokens_is_refused()
    {
        var model = Llava();
        using var golden = NpzFile.Open(Path.Combine(Folder("llava"), "golden.npz"));
        var ids = LlavaPrompt();
        var hooks = new Hooks().Capture(HookNames.Embed);
        model.Hidden(ModelInput.Of(ids), new ForwardContext { Hooks = hooks });
        var plain = model.Text.Embed(ids);
        Assert.Equal(plain.Active.ToArray(), hooks.Get(HookNames.Embed).Data);
        var e = Assert.Throws<ArgumentException>(() => model.Hidden(ModelInput.Of(ids[..^10], Pixels(golden)), new ForwardContext()));
        Assert.Contains("image tokens", e.Message);
        var small = new PixelInput(new float[3 * 16 * 16], 16, 16);
        Assert.Throws<ArgumentException>(() => model.ImageFeatures(small));
    }

    [Theory]
    [InlineData("vision_config", "patch_size")]
    [InlineData("vision_config", "hidden_size")]
    [InlineData("text_config", "num_hidden_layers")]
    [InlineData("", "vision_feature_layer")]
    public void A_missing_config_field_names_the_file_and_the_field(string obj, string key)
    {
        var dir = Directory.CreateTempSubdirectory("wb-llava-").FullName;
        try
        {
            var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(Folder("llava"), "config.json")))!.AsObject();
            (obj == "" ? node : node[obj]!.AsObject()).Remove(key);
            File.WriteAllText(Path.Combine(dir, "config.json"), node.ToJsonString());
            File.Copy(Path.Combine(Folder("llava"), "model.safetensors"), Path.Combine(dir, "model.safetensors"));
            var e = Assert.Throws<ModelFormatException>(() => ModelHub.Load(dir));
            Assert.Contains("config.json", e.Message);
            Assert.Contains(obj == "" ? key : $"{obj}.{key}", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
