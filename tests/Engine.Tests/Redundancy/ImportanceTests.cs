using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;
using Xunit.Abstractions;

namespace Workbench.Engine.Tests.Redundancy;

public class ImportanceTests(ITestOutputHelper output)
{
    public static TheoryData<string> Models => new() { "stories260K", "babyllama", "minilm" };

    /// <summary>
    /// The hook-accumulated scores against a direct computation: capture resid_pre/mid/post of every block with
    /// Hooks.Capture, then average 1 - cos in double precision with a scalar loop.
    /// </summary>
    [Theory]
    [MemberData(nameof(Models))]
    public void Importance_equals_direct_cosines_of_captured_hidden_states(string name)
    {
        var m = ModelHub.Load(name);
        var cal = Shared.Calibration(m, samples: 3, seq: 48);
        var scores = Importance.Measure(m.Model, cal);

        int layers = m.Config.Layers;
        var block = new double[layers]; var attn = new double[layers]; var mlp = new double[layers];
        long tokens = 0;
        foreach (var ids in cal)
        {
            var hooks = new Hooks().Capture(s => s.EndsWith(".resid_pre") || s.EndsWith(".resid_mid") || s.EndsWith(".resid_post"));
            Importance.Hidden(m.Model, ids, new ForwardContext { Hooks = hooks });
            for (int l = 0; l < layers; l++)
            {
                var pre = hooks.Get(HookNames.ResidPre(l)); var mid = hooks.Get(HookNames.ResidMid(l)); var post = hooks.Get(HookNames.ResidPost(l));
                for (int r = 0; r < pre.Rows; r++)
                {
                    attn[l] += 1 - Cos(pre.Row(r), mid.Row(r));
                    mlp[l] += 1 - Cos(mid.Row(r), post.Row(r));
                    block[l] += 1 - Cos(pre.Row(r), post.Row(r));
                }
            }
            tokens += ids.Length;
        }
        Assert.Equal(tokens, scores.Tokens);
        for (int l = 0; l < layers; l++)
        {
            Assert.Equal(attn[l] / tokens, scores.Attention[l], 5);
            Assert.Equal(mlp[l] / tokens, scores.Mlp[l], 5);
            Assert.Equal(block[l] / tokens, scores.Block[l], 5);
            Assert.InRange(scores.Attention[l], 1e-6, 2);
        }
        output.WriteLine($"{name}: layer block attention mlp");
        for (int l = 0; l < layers; l++) output.WriteLine($"{l} {scores.Block[l]:F4} {scores.Attention[l]:F4} {scores.Mlp[l]:F4}");
    }

    private static double Cos(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
        return ab / Math.Sqrt(aa * bb);
    }

    [Fact]
    public void Skipped_modules_score_zero_and_others_change()
    {
        var m = Shared.Stories;
        var cal = Shared.Calibration(m, 2, 32);
        var full = Importance.Measure(m.Model, cal);
        var skips = new ModuleSkips(new HashSet<int> { 1 }, new HashSet<int> { 3 });
        var pruned = Importance.Measure(m.Model, cal, skips);
        Assert.Equal(0, pruned.Attention[1]);
        Assert.Equal(0, pruned.Mlp[3]);
        Assert.Equal(full.Attention[0], pruned.Attention[0], 12); // layers before the first drop are unaffected
        Assert.NotEqual(full.Attention[2], pruned.Attention[2]);
        Assert.DoesNotContain(pruned.Ranked(Granularity.Attention), x => x.Module.Layer == 1);
        Assert.Equal(4, pruned.Ranked(Granularity.Attention).Count);
        Assert.Equal(8, pruned.Ranked(Granularity.Joint).Count);
    }

    [Fact]
    public void Bad_input_names_the_parameter()
    {
        var m = Shared.Stories;
        var cal = Shared.Calibration(m, 1, 16);
        Assert.Equal("calibration", Assert.Throws<ArgumentException>(() => Importance.Measure(m.Model, Array.Empty<int[]>())).ParamName);
        Assert.Equal("skips", Assert.ThrowsAny<ArgumentException>(() => Importance.Measure(m.Model, cal, new ModuleSkips(new HashSet<int> { 5 }, new HashSet<int>()))).ParamName);
        Assert.Equal("granularity", Assert.Throws<ArgumentException>(() => Names.ParseGranularity("heads")).ParamName);
        Assert.Equal("strategy", Assert.Throws<ArgumentException>(() => Names.ParseStrategy("random")).ParamName);
        Assert.Equal("g", Assert.Throws<ArgumentException>(() => Modules.Of(m.Config, (Granularity)7)).ParamName);
    }
}
