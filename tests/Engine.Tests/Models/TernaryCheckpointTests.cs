using static Workbench.Engine.Tests.Goldens;
using System.Numerics.Tensors;
using System.Text.Json;
using Workbench.Engine.Formats;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Quantization;

namespace Workbench.Engine.Tests.Models;

/// <summary>
/// microsoft/bitnet-b1.58-2B-4T's checkpoint form (data/goldens/arch/bitnet_packed: uint8 [out/4, in] + weight_scale) loads
/// its block linears straight into the packed ternary kernels (I2S, TL1 / TL2 on request), never through fp32, and
/// computes transformers' BitLinear: per-token absmax int8 activations, y = x_int code^T / (s_x * weight_scale).
/// </summary>
public class TernaryCheckpointTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const double Tol = 1e-4;
    private static string Folder => Path.GetDirectoryName(Bundled.Path("data/goldens/arch/bitnet_packed/config.json"))!;

    private static int[] Json(string which, string key) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, $"gen_{which}.json"))).RootElement.GetProperty(key)
            .EnumerateArray().Select(e => e.GetInt32()).ToArray();


    public static TheoryData<LowBitFormat> Formats => [.. LowBitFormats.Ternary.Select(f => f.Format)];

    [Theory]
    [MemberData(nameof(Formats))]
    public void Every_block_linear_is_a_packed_kernel_and_the_model_matches_transformers(LowBitFormat format)
    {
        var model = HfDecoders.Load(Folder, ternary: format);
        Assert.Equal(model.Config.Layers * 7, model.BlockLinears.Count);
        foreach (var l in model.BlockLinears)
        {
            Assert.Empty(l.Weight); // a placeholder: no fp32 (or any float) copy of the weights exists
            var t = StoredLinears.FindTernary(l.Weight);
            Assert.NotNull(t);
            Assert.Equal(format, t.Format);
            Assert.Equal((l.Rows, l.Cols), (t.Rows, t.Cols));
            Assert.Single(t.Parts);
            Assert.Equal(LowBitFormats.WeightBytes(format, l.Rows, l.Cols), StoredLinears.Bytes(l.Weight));
        }

        using var golden = NpzFile.Open(Path.Combine(Folder, "golden.npz"));
        foreach (var which in new[] { "a", "b" })
        {
            var prompt = Json(which, "prompt");
            double d = MaxAbs(model.Forward(prompt, 0, new ForwardContext()).Logits, golden.ReadF32($"logits_{which}"));
            Assert.True(d <= Tol, $"{format} {which}: max |logit - transformers| = {d}");
            output.WriteLine($"bitnet_packed on {format} {which}: max |logit - transformers| {d:E2}");

            var want = Json(which, "generated");
            var ctx = new ForwardContext { Cache = KvCache.For(model.Config, prompt.Length + want.Length) };
            var (logits, _) = model.Forward(prompt, 0, ctx, allRows: false);
            var got = new List<int>();
            for (int k = 0; k < want.Length; k++)
            {
                int next = TensorPrimitives.IndexOfMax(logits);
                got.Add(next);
                (logits, _) = model.Forward([next], prompt.Length + k, ctx, allRows: false);
            }
            Assert.Equal(want, got);
        }
    }

    [Fact]
    public void The_packed_codes_are_the_checkpoints_bytes_decoded_as_transformers_unpacks_them()
    {
        var model = HfDecoders.Load(Folder);
        using var st = SafetensorsFile.Open(Path.Combine(Folder, "model.safetensors"));
        var bytes = File.ReadAllBytes(Path.Combine(Folder, "model.safetensors"));
        int heads = model.Config.Heads, kvHeads = model.Config.KvHeads;
        for (int i = 0; i < model.Config.Layers; i++)
            foreach (var (proj, field) in new[] { ("self_attn.q_proj", "q"), ("self_attn.k_proj", "k"), ("self_attn.v_proj", "v"), ("mlp.down_proj", "down") })
            {
                var e = st.Get($"model.layers.{i}.{proj}.weight");
                int p = (int)e.Shape[0], cols = (int)e.Shape[1], rows = 4 * p;
                // transformers' unpack_weights: code[i * P + r, c] = ((byte[r, c] >> 2i) & 3) - 1
                var want = new sbyte[rows * cols];
                for (int r = 0; r < p; r++)
                    for (int c = 0; c < cols; c++)
                        for (int k = 0; k < 4; k++)
                            want[(k * p + r) * cols + c] = (sbyte)(((bytes[e.ByteOffset + (long)r * cols + c] >> (2 * k)) & 3) - 1);
                var layer = model.Weights.Layers[i];
                var w = field switch { "q" => layer.Wq, "k" => layer.Wk, "v" => layer.Wv, _ => layer.W2 };
                var got = StoredLinears.FindTernary(w)!.Codes();
                // q and k rows are in llama2.c's interleaved order: row 2i + j of a head is the folder's row j * hd/2 + i
                int[]? map = field switch { "q" => LlamaLoader.UnpermutedRows(rows, heads), "k" => LlamaLoader.UnpermutedRows(rows, kvHeads), _ => null };
                for (int r = 0; r < rows; r++)
                    Assert.Equal(want.AsSpan((map?[r] ?? r) * cols, cols).ToArray(), got.AsSpan(r * cols, cols).ToArray());
                float scale = st.ReadF32($"model.layers.{i}.{proj}.weight_scale")[0];
                Assert.Equal(1f / scale, StoredLinears.FindTernary(w)!.Parts[0].Scale);
            }
    }

    [Fact]
    public void Fp32_weights_on_request_give_the_same_logits()
    {
        var packed = HfDecoders.Load(Folder);
        var fp32 = HfDecoders.Load(Folder, storage: WeightStorage.Fp32);
        Assert.All(fp32.BlockLinears, l => Assert.Equal((long)l.Rows * l.Cols, l.Weight.Length));
        var ids = Json("b", "prompt");
        double d = MaxAbs(packed.Forward(ids, 0, new ForwardContext()).Logits, fp32.Forward(ids, 0, new ForwardContext()).Logits);
        output.WriteLine($"packed I2S vs fp32 codes: {d:E2}");
        Assert.True(d <= 1e-4, $"packed vs fp32 codes: {d}");
    }

    [Fact]
    public void Ternary_quantization_from_stored_reuses_the_checkpoints_codes()
    {
        var model = HfDecoders.Load(Folder);
        using var tl2 = TernaryModel.FromStored(model, LowBitFormat.TL2);
        foreach (var l in tl2.Layers)
        {
            var own = StoredLinears.FindTernary(model.BlockLinears.Single(b => b.Name == l.Name).Weight)!;
            Assert.Equal(own.Parts[0].Scale, l.Scale);
        }
        var ids = Json("a", "prompt");
        var a = model.Forward(ids, 0, new ForwardContext()).Logits;
        var b = model.Forward(ids, 0, tl2.Context()).Logits;
        Assert.True(MaxAbs(a, b) <= 1e-5, $"TL2 from the stored codes vs the model's own I2S kernels: {MaxAbs(a, b)}");
    }

    [Fact]
    public void Activation_rounding_is_half_to_even_as_torch_round()
    {
        // s_x = 127 / max |x| = 1 here, so x * s_x = x: ties go to the even integer (torch.round), not away from zero.
        float[] x = [127f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f];
        var q = new sbyte[x.Length];
        Assert.Equal(1f, AbsMaxInt8.Quantize(x, q));
        Assert.Equal(new sbyte[] { 127, 0, 2, 2, 0, -2, -2, 4 }, q);
        // the same in the fp32 path of LlamaModel (MathF.Round's default)
        Assert.Equal(new[] { 0f, 2f, 2f, -2f }, new[] { 0.5f, 1.5f, 2.5f, -2.5f }.Select(v => MathF.Round(v)));
    }
}
