using System.Globalization;
using Microsoft.DotNet.Interactive.Events;
using Workbench.Engine.Training;
using Workbench.Interactive.Charts;
using Workbench.Interactive.Directives;

namespace Workbench.Interactive.Tests;

[Collection("formatters")]
public class TrainDirectiveTests
{
    private static string F(double x, int digits) => x.ToString("F" + digits, CultureInfo.InvariantCulture);

    [Fact]
    public async Task Train_draws_the_loss_live_then_shows_the_engines_figures_and_shares_the_result()
    {
        var throttle = TrainingDirectives.Throttle;
        TrainingDirectives.Throttle = TimeSpan.Zero; // a frame per step
        try
        {
            using var k = new TestKernel();
            var r = await k.SubmitAsync("#!train --model stories260K --qat ternary --steps 5 --seq 32 --batch 2 --lr 2e-3 --as t");
            r.AssertSucceeded();

            // the same request through the engine: training is deterministic, so every figure must be the engine's
            var direct = new TrainRequest { Model = "stories260K", QatMode = "ternary", Steps = 5, Seq = 32, Batch = 2, Lr = 2e-3 }.Run();
            var chart = r.Events.OfType<DisplayedValueProduced>().Single(e => e.Value is LiveLoss);
            var frames = r.Events.OfType<DisplayedValueUpdated>().Where(u => u.ValueId == chart.ValueId).ToList();
            Assert.Equal(5, frames.Count); // one per step, all replacing the one chart
            Assert.Empty(((LiveLoss)chart.Value).Loss);
            var last = (LiveLoss)frames[^1].Value;
            Assert.Equal(direct.Loss.Select(s => s.Loss), last.Loss.Select(s => s.Loss));
            Assert.Equal([1, 2], ((LiveLoss)frames[1].Value).Loss.Select(s => s.Step));
            var lastHtml = frames[^1].FormattedValues.First(v => v.MimeType == "text/html").Value;
            Assert.Contains("workbench-plotly", lastHtml);
            Assert.Contains($"step 5/5, loss {F(direct.Loss[^1].Loss, 3)}", lastHtml);
            Assert.DoesNotContain("window.__workbenchDefine", lastHtml); // the frames stay small: plotly.js is shown once, apart

            var html = r.Html();
            // the cell's first chart: plotly.js was shown once, as its own output before the chart, so the saved notebook renders
            Assert.Single(r.Events.OfType<DisplayedValueProduced>(), e => e.Value is PlotlyScript);
            Assert.Contains("window.__workbenchDefine", html);
            Assert.Contains($"trained {F(direct.Perplexity, 3)}", html);
            Assert.Contains($"start {F(direct.PerplexityStart, 3)}", html);
            Assert.Contains("start: post-training quantized", html);
            Assert.Contains("top1_vs_fp32", html);
            Assert.Contains("workbench-progress", html);

            var shared = await k.SubmitAsync("t.Perplexity");
            shared.AssertSucceeded();
            Assert.Contains(shared.Events.OfType<ReturnValueProduced>(), e => Equals(e.Value, direct.Perplexity));
        }
        finally { TrainingDirectives.Throttle = throttle; }
    }

    [Fact]
    public async Task A_pyramid_run_draws_its_baseline_beside_it_and_tables_both()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!train --model stories260K --pyramid 2,3:0.5 --steps 3 --seq 32 --batch 2");
        r.AssertSucceeded();
        var result = Assert.IsType<TrainResult>(Last.Of<TrainResult>(TrainingDirectives.Train));
        Assert.NotNull(result.Baseline);
        Assert.Equal(3, result.Baseline!.Loss.Count);
        Assert.Equal(32 - result.LossPositions, (int)Math.Round(32 * TrainingPyramid.DefaultContext));
        var html = r.Html();
        Assert.Contains("without (baseline)", html);
        Assert.Contains("without the drop", html);
        Assert.Contains("time per step, with / without the drop", html);
    }

    [Theory]
    [InlineData("--steps 0", "--steps")]
    [InlineData("--steps 5 --pyramid 9:0.5", "--pyramid")]
    [InlineData("--steps 5 --pyramid 2", "--pyramid")]
    [InlineData("--steps 5 --drop block:x", "--drop")]
    [InlineData("--steps 5 --qat binary", "--qat")]
    [InlineData("--steps 5 --context 0.5", "--context")]
    [InlineData("--steps five", "--steps")]
    public async Task Bad_options_fail_the_cell_in_one_line_naming_the_option_and_the_kernel_keeps_working(string options, string option)
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync($"#!train --model stories260K {options}");
        var failure = r.Failure();
        Assert.NotNull(failure);
        Assert.StartsWith($"{TrainingDirectives.Train}: {option}", failure!.Message);
        Assert.DoesNotContain('\n', failure.Message);
        (await k.SubmitAsync("1 + 1")).AssertSucceeded();
    }
}
