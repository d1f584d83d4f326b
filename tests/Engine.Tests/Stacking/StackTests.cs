using System.Text.Json;
using Workbench.Engine.Costs;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Quantization;
using Workbench.Engine.Redundancy;
using Workbench.Engine.Requests;
using Workbench.Engine.Stacking;
using Workbench.Engine.TokenDrop;

namespace Workbench.Engine.Tests.Stacking;

/// <summary>
/// The stack on the bundled pair (austen-16L, austen-16L-ternary): every step's numbers against the same quantity
/// computed another way (plain forwards, the drop request, the golden perplexities, the cost model's parts).
/// </summary>
public class StackTests
{
    private static readonly StackRequest Small = new()
    {
        Model = "austen-16L", DropAttention = 4, Pyramid = "4,8,12", Keep = "0.5",
        Windows = 3, Prompt = 96, Continuation = 24, CalibrationSamples = 4, Decode = 8, Runs = 1,
    };

    private static readonly Lazy<StackResult> Result = new(() => Small.Run());

    /// <summary>exp(mean NLL) of window[prompt..] under plain full-sequence forwards (no KV cache protocol).</summary>
    private static double PlainPerplexity(Decoder d, IReadOnlyList<int[]> windows, int prompt, ForwardContext ctx)
    {
        int v = d.Config.Vocab;
        double nll = 0;
        long n = 0;
        foreach (var w in windows)
        {
            var logp = DropEvaluator.LogSoftmaxRows(d.Model.Forward(w, 0, ctx).Logits, v);
            for (int i = prompt; i < w.Length; i++, n++) nll -= logp[(i - 1) * v + w[i]];
        }
        return Math.Exp(nll / n);
    }

    [Fact]
    public void Full_and_drop_steps_equal_plain_forwards_and_the_drop_request_picks_the_same_layers()
    {
        var r = Result.Value;
        Assert.Equal(new[] { "full", "+drop", "+pyramid", "+ternary" }, r.Steps.Select(s => s.Name));
        var a = ModelHub.LoadDecoder("austen-16L");
        var (calibration, windows, heldOut) = Small.Texts(a);
        Assert.Equal("persuasion.txt", heldOut);

        // The drop request on the same text (written blank-line separated), same seed and calibration size, ranks the same layers.
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, File.ReadAllText(Bundled.Persuasion).Replace("\r\n", "\n").Replace("\n", "\n\n"));
            var drop = (DropRun)new DropRequest
            {
                Model = "austen-16L", Granularity = "attention", Count = 4, Corpus = file, Samples = Small.CalibrationSamples,
                Seq = Small.CalibrationSeq, NoSpeed = true, Evaluation = new EvaluationOptions(Samples: Small.Windows, SeqLen: Small.Prompt + Small.Continuation),
            }.Run();
            Assert.Equal(drop.Plan.Dropped.Select(m => m.Layer).Order(), r.Dropped.Select(m => m.Layer));
            Assert.All(r.Dropped, m => Assert.Equal(ModuleKind.Attention, m.Kind));
            // The layers dropped are the K lowest attention importances.
            var lowest = r.AttentionImportance.Select((x, l) => (x, l)).OrderBy(t => t.x).Take(4).Select(t => t.l).Order();
            Assert.Equal(lowest, r.Dropped.Select(m => m.Layer));
            Assert.Equal(drop.Evaluation.Sequences, windows); // the same held-out windows
        }
        finally { File.Delete(file); }

        var full = r.Steps[0];
        Assert.Equal(PlainPerplexity(a, windows, Small.Prompt, new ForwardContext()), full.Perplexity, 1e-4 * full.Perplexity);
        Assert.Equal(0, full.Kl, 12);
        Assert.Equal(1, full.Top1);
        Assert.Equal(1, full.MeasuredSpeedup);
        Assert.Equal(1, full.PredictedSpeedup);

        var skips = new ModuleSkips(r.Dropped.Select(m => m.Layer).ToHashSet(), new HashSet<int>());
        var dropped = r.Steps[1];
        Assert.Equal(PlainPerplexity(a, windows, Small.Prompt, new ForwardContext { Skips = skips }), dropped.Perplexity, 1e-4 * dropped.Perplexity);
        Assert.True(dropped.Kl > 0 && dropped.Top1 < 1);
    }

    [Fact]
    public void Kv_cache_weights_and_energy_follow_each_step()
    {
        var r = Result.Value;
        var c = ModelHub.LoadDecoder("austen-16L").Config;
        foreach (var s in r.Steps)
        {
            Assert.Equal(s.KvCacheBytesPredicted, s.KvCacheBytes); // the cache really holds what the cost model counts
            Assert.True(s.MeasuredSpeedup > 0 && s.PredictedSpeedup > 0 && s.DecodeTokensPerSecond > 0 && s.PrefillTokensPerSecond > 0);
            Assert.True(double.IsFinite(s.Perplexity) && s.Perplexity > 1);
        }
        var (full, drop, pyramid, ternary) = (r.Steps[0], r.Steps[1], r.Steps[2], r.Steps[3]);
        long perEntry = 2L * sizeof(float) * c.KvDim;
        Assert.Equal(c.Layers * (Small.Prompt + Small.Decode) * perEntry, full.KvCacheBytes);
        Assert.Equal((c.Layers - 4) * (Small.Prompt + Small.Decode) * perEntry, drop.KvCacheBytes);
        // PyramidDrop: 96 = 1 + 87 droppable + 8 protected; 87 -> 44 -> 22 -> 11 over the stages 0-3 | 4-7 | 8-11 | 12-15.
        int[] stage = [96, 44 + 9, 22 + 9, 11 + 9];
        long want = Enumerable.Range(0, c.Layers).Where(l => !r.Dropped.Any(m => m.Layer == l)).Sum(l => (long)(stage[l / 4] + Small.Decode) * perEntry);
        Assert.Equal(want, pyramid.KvCacheBytes);
        Assert.Equal(pyramid.KvCacheBytes, ternary.KvCacheBytes);

        // Weight bytes: 12 attention + 16 MLP block linears fp32 plus the fp32 head; ternary packs the same linears.
        long head = 4L * c.Vocab * c.Dim;
        long attn = 4L * (2L * c.Dim * c.QDim + 2L * c.Dim * c.KvDim), mlp = 4L * 3 * c.Dim * c.MlpDim;
        Assert.Equal(16 * (attn + mlp) + head, full.WeightBytesPerToken);
        Assert.Equal(12 * attn + 16 * mlp + head, drop.WeightBytesPerToken);
        Assert.Equal(drop.WeightBytesPerToken, pyramid.WeightBytesPerToken);
        Assert.True(ternary.WeightBytesPerToken - head < (pyramid.WeightBytesPerToken - head) / 10, "packed linears are over 10x smaller");
        Assert.True(ternary.EnergyJPerToken < pyramid.EnergyJPerToken / 3);
        Assert.True(drop.FlopsPerToken < full.FlopsPerToken && pyramid.FlopsPerToken < drop.FlopsPerToken);
        Assert.Equal(pyramid.FlopsPerToken, ternary.FlopsPerToken);
        Assert.True(pyramid.PrefillFlops < 0.6 * drop.PrefillFlops); // stages of 96, 53, 31, 20 tokens: 52% of the tokens per block
        Assert.Equal(r.Steps[^1].MeasuredSpeedup, r.CompoundedMeasured);
    }

    [Fact]
    public void Ternary_without_drops_gives_the_golden_held_out_perplexities_of_A_and_B()
    {
        // heldout_32k_ids.npy: 64 windows of 512 predictions; as windows of 513 with a one-token prompt every prediction is scored.
        var ids = Goldens.Npy(Bundled.Path("data/goldens/austen-16L/heldout_32k_ids.npy")).Data.Select(x => (int)x).ToArray();
        var windows = Enumerable.Range(0, (ids.Length - 1) / 512).Select(w => ids[(w * 512)..(w * 512 + 513)]).ToArray();
        var ppl = JsonDocument.Parse(File.ReadAllText(Bundled.Path("data/goldens/austen-16L/ppl.json"))).RootElement;
        var a = ModelHub.LoadDecoder("austen-16L");
        var b = ModelHub.LoadDecoder(BundledTernary.Name);
        using var kernels = TernaryModel.FromStored(b.Model, LowBitFormat.I2S, Environment.ProcessorCount);
        var bench = new StackBench(a.Model, b.Model.WithLinear(kernels), LowBitFormat.I2S, ModuleSkips.None, null, threads: Environment.ProcessorCount);
        var reference = bench.Reference(windows, 1);
        var fullA = bench.Quality(StackConfig.Full, windows, 1, reference);
        var ternaryB = bench.Quality(new StackConfig(false, false, true), windows, 1, reference);
        double wantA = ppl.GetProperty("A").GetProperty("ppl_32k").GetDouble(), wantB = ppl.GetProperty("B").GetProperty("ppl_32k").GetDouble();
        Assert.Equal(32768, fullA.Positions);
        Assert.True(Math.Abs(fullA.Perplexity / wantA - 1) < 1e-4, $"A {fullA.Perplexity} vs PyTorch {wantA}");
        Assert.True(Math.Abs(ternaryB.Perplexity / wantB - 1) < 1e-3, $"B {ternaryB.Perplexity} vs PyTorch {wantB}");
        Assert.True(ternaryB.Kl > 0 && ternaryB.Top1 < 1);
    }

    [Fact]
    public void Decode_costs_agree_with_the_drop_cost_model_for_fp32_and_with_the_packed_bytes_for_ternary()
    {
        var c = ModelHub.LoadDecoder("austen-16L").Config;
        var skips = new ModuleSkips(new HashSet<int> { 3, 9 }, new HashSet<int> { 15 });
        var keys = Enumerable.Repeat(40, c.Layers).ToArray();
        var mine = DecodeCosts.Predict(c, skips, keys, 24);
        var theirs = DropCosts.Predict(c, skips, 40, 24);
        Assert.Equal(theirs.DecodeFlopsPerToken, mine.FlopsPerToken, 1e-9 * theirs.DecodeFlopsPerToken);
        Assert.Equal(theirs.DecodeBytesPerToken, mine.BytesPerToken, 1e-9 * theirs.DecodeBytesPerToken);
        Assert.Equal(theirs.KvCacheBytes, mine.KvCacheBytes);

        var b = ModelHub.LoadDecoder(BundledTernary.Name);
        using var kernels = TernaryModel.FromStored(b.Model, LowBitFormat.TL2);
        var t = DecodeCosts.Predict(c, ModuleSkips.None, keys, 24, LowBitFormat.TL2);
        Assert.Equal(kernels.PackedLinearBytes + 4L * c.Vocab * c.Dim, t.WeightBytesPerToken);
        // Energy: DRAM bytes dominate, so the ternary token costs a fraction of the fp32 one.
        Assert.True(t.EnergyJPerToken < DecodeCosts.Predict(c, ModuleSkips.None, keys, 24).EnergyJPerToken / 3);
    }

    [Fact]
    public void Bad_options_name_the_option()
    {
        Assert.Equal("--model", Assert.Throws<OptionException>(() => new StackRequest { DropAttention = 1 }.Validate()).Option);
        Assert.Equal("--drop-attention", Assert.Throws<OptionException>(() => new StackRequest { Model = "austen-16L" }.Validate()).Option);
        Assert.Equal("--drop-attention", Assert.Throws<OptionException>(() => new StackRequest { Model = "austen-16L", DropAttention = -1 }.Validate()).Option);
        Assert.Equal("--keep", Assert.Throws<OptionException>(() => new StackRequest { Model = "austen-16L", DropAttention = 1, Pyramid = "4" }.Validate()).Option);
        Assert.Equal("--keep", Assert.Throws<OptionException>(() => new StackRequest { Model = "austen-16L", DropAttention = 1, Pyramid = "4", Keep = "1.5" }.Validate()).Option);
        Assert.Equal("--pyramid", Assert.Throws<OptionException>(() => new StackRequest { Model = "austen-16L", DropAttention = 1, Pyramid = "8,4", Keep = "0.5" }.Validate()).Option);
        Assert.Equal("--format", Assert.Throws<OptionException>(() => new StackRequest { Model = "austen-16L", DropAttention = 1, Format = "q4" }.Validate()).Option);
        Assert.Equal("--pyramid", Assert.Throws<OptionException>(() => (Small with { Pyramid = "4,16" }).Run()).Option);
        Assert.Equal("--drop-attention", Assert.Throws<OptionException>(() => (Small with { DropAttention = 17 }).Run()).Option);
        Assert.Equal("--ternary", Assert.Throws<OptionException>(() => (Small with { Ternary = "stories260K" }).Run()).Option);
        Assert.Equal("--model", Assert.Throws<OptionException>(() => (Small with { Model = "minilm" }).Run()).Option);
    }
}
