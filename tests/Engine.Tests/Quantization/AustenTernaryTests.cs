using System.Text.Json;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Quantization;

namespace Workbench.Engine.Tests.Quantization;

/// <summary>
/// austen-16L B, the BitNet b1.58 twin trained ternary from the first step, on the packed kernels with its stored
/// scales and per-token int8 activations, checked as data/goldens/austen-16L/README.md says a reimplementation can be:
/// per block, teacher forced (max 2e-3, mean 1e-4), and held-out perplexity within 0.1%.
/// </summary>
public class AustenTernaryTests
{
    private static string G(string file) => Bundled.Path($"data/goldens/austen-16L/{file}");
    private static readonly Lazy<Decoder> B = new(() => (Decoder)ModelHub.Load(Bundled.Folder("models/austen-16L/bitnet-b158")));

    [Theory]
    [InlineData(LowBitFormat.I2S)]
    [InlineData(LowBitFormat.TL2)]
    public void Every_block_teacher_forced_matches_pytorch(LowBitFormat format)
    {
        var model = B.Value.Model;
        using var ternary = TernaryModel.FromStored(model, format);
        Assert.Equal(model.BlockLinears.Count, ternary.Layers.Count);
        var (hidden, shape) = Goldens.Npy(G("hidden_B_64.npy"));   // [17, 64, 192]: embedding, then each block's output
        int layers = shape[0] - 1, n = shape[1], d = shape[2];
        Assert.Equal(model.Config.Layers, layers);
        var ctx = ternary.Context();
        for (int l = 0; l < layers; l++)
        {
            var s = new SequenceState(n, d, Enumerable.Range(0, n).ToArray());
            for (int i = 0; i < n * d; i++) s.Hidden[i] = (float)hidden[l * n * d + i];
            model.RunBlock(l, s, ctx);
            double max = 0, sum = 0;
            for (int i = 0; i < n * d; i++)
            {
                double e = Math.Abs(s.Hidden[i] - hidden[(l + 1) * n * d + i]);
                max = Math.Max(max, e);
                sum += e;
            }
            Assert.True(max < 2e-3 && sum / (n * d) < 1e-4, $"block {l}: max {max:E2}, mean {sum / (n * d):E2}");
        }
    }

    [Fact]
    public void Held_out_perplexity_matches_within_0_1_percent_and_the_scales_are_the_stored_ones()
    {
        var dec = B.Value;
        using var ternary = TernaryModel.FromStored(dec.Model, LowBitFormat.I2S, threads: Environment.ProcessorCount);
        // The stored weights are W_t s exactly: every scale is the tensor's largest magnitude, not its absmean.
        foreach (var (layer, linear) in ternary.Layers.Zip(dec.Model.BlockLinears))
            Assert.Equal(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(Workbench.Engine.Models.StoredLinears.Fp32(linear.Weight)), layer.Scale);

        var want = JsonDocument.Parse(File.ReadAllText(G("ppl.json"))).RootElement.GetProperty("B").GetProperty("ppl_32k").GetDouble();
        double got = Goldens.AustenHeldOutPerplexity(ids => dec.Logits(ids, ternary.Context()), dec.Config.Vocab);
        Assert.True(Math.Abs(got / want - 1) < 1e-3, $"perplexity {got} vs PyTorch {want}");
    }

    [Fact]
    public void A_model_not_trained_ternary_is_refused_naming_the_layer()
    {
        var a = ModelHub.LoadDecoder("stories260K").Model;
        var e = Assert.Throws<ArgumentException>(() => TernaryModel.FromStored(a, LowBitFormat.I2S));
        Assert.Contains("layers.0.wq", e.Message);
        Assert.Equal(0.5f, StoredTernary.TryRead([0.5f, 0, -0.5f, 0.5f], 2, 2)!.Scale);
        Assert.Equal(new sbyte[] { 1, 0, -1, 1 }, StoredTernary.TryRead([0.5f, 0, -0.5f, 0.5f], 2, 2)!.Values);
        Assert.Null(StoredTernary.TryRead([0.5f, 0.25f, -0.5f, 0], 2, 2));
    }
}
