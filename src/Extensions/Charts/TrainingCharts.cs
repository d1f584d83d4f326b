using System.Globalization;
using Microsoft.Data.Analysis;
using Plotly.NET;
using Workbench.Engine.Training;

namespace Workbench.Interactive.Charts;

/// <summary>
/// The loss of a training run so far, as a live cell shows it: displayed once and replaced in place after every few
/// steps (<c>#!train</c>). <see cref="Baseline"/> is the undropped run of a pyramid training, drawn beside it.
/// </summary>
public sealed record LiveLoss(string Title, int Steps, IReadOnlyList<TrainStep> Loss, IReadOnlyList<TrainStep>? Baseline = null);

/// <summary>Charts and tables of training: the loss curve (live or finished) and the held-out figures of a run.</summary>
public static class TrainingCharts
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    internal static void RegisterFormatters()
    {
        // no plotly.js in a live chart's HTML: #!train shows it once, before the first frame (PlotlyScript)
        Html.Register<LiveLoss>(l => PlotlyFormatter.ToHtml(Loss(l), PlotlyEmbed.Never));
        Html.Register<TrainResult>(r => Summary(r) + Html.Table(ToDataFrame(r)));
        Html.RegisterRecord<HeldOut>();
        Html.RegisterRecord<TrainStep>();
    }

    /// <summary>Batch loss per step (and the baseline's, for a pyramid run), the x axis fixed to the whole run.</summary>
    public static GenericChart Loss(LiveLoss l)
    {
        ArgumentNullException.ThrowIfNull(l);
        var traces = new List<Trace>
        {
            Plot.Trace("scatter", ("mode", "lines"), ("name", l.Baseline is null ? "batch loss" : "with the drop"),
                ("x", l.Loss.Select(s => s.Step).ToArray()), ("y", l.Loss.Select(s => s.Loss).ToArray()), ("line", new { color = "#4c78a8" })),
        };
        if (l.Baseline is { } b)
            traces.Add(Plot.Trace("scatter", ("mode", "lines"), ("name", "without (baseline)"),
                ("x", b.Select(s => s.Step).ToArray()), ("y", b.Select(s => s.Loss).ToArray()), ("line", new { color = "#e45756" })));
        var layout = new Layout();
        string last = l.Loss.Count == 0 ? "" : string.Create(Inv, $": step {l.Loss[^1].Step}/{l.Steps}, loss {l.Loss[^1].Loss:F3}");
        layout.SetProperty("title", new { text = l.Title + last, font = new { size = 14 } });
        layout.SetProperty("xaxis", new { title = new { text = "optimizer step" }, range = new[] { 0, Math.Max(1, l.Steps) } });
        layout.SetProperty("yaxis", new { title = new { text = "training loss (nats per token)" } });
        layout.SetProperty("height", 320);
        layout.SetProperty("margin", new { l = 60, r = 20, t = 50, b = 50 });
        return Plot.Figure(traces, layout);
    }

    /// <summary>One row per model state: the untouched fp32 model, the start (pruned / post-training quantized), the trained model (and the undropped baseline).</summary>
    public static DataFrame ToDataFrame(TrainResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var rows = new List<(string Name, HeldOut Q)>
        {
            ("fp32, untouched", new HeldOut(r.PerplexityFp32, 0, 1)),
            (r.Qat ? "start: post-training quantized" : r.Drop is not null ? $"start: {r.Drop} dropped" : "start", r.Start),
            ($"after {r.Steps} steps" + (r.Pyramid is null ? "" : $" with pyramid {r.Pyramid}"), r.After),
        };
        if (r.Baseline is { } b) rows.Add(($"after {r.Steps} steps without the drop", b.After));
        return new DataFrame(
            new StringDataFrameColumn("model", rows.Select(x => x.Name)),
            new DoubleDataFrameColumn("perplexity", rows.Select(x => x.Q.Perplexity)),
            new DoubleDataFrameColumn("kl_vs_fp32", rows.Select(x => x.Q.Kl)),
            new DoubleDataFrameColumn("top1_vs_fp32", rows.Select(x => x.Q.Top1Agreement)));
    }

    private static string Summary(TrainResult r)
    {
        var rows = new List<(string, string)>
        {
            ("run", string.Create(Inv, $"{r.Steps} steps x {r.Batch} windows x {r.Seq} tokens, lr {r.Lr:G3}, seed {r.Seed}{(r.Qat ? ", BitNet b1.58 QAT" : "")}{(r.Drop is null ? "" : $", dropped {r.Drop}")}")),
            ("loss", string.Create(Inv, $"{r.Loss[0].Loss:F4} at step 1 -> {TrainResult.TailLoss(r.Loss):F4} (mean of the last tenth)")),
            ("held-out perplexity", string.Create(Inv, $"fp32 {r.PerplexityFp32:F3}, start {r.PerplexityStart:F3}, trained {r.Perplexity:F3}")),
            ("time", string.Create(Inv, $"{r.TrainSeconds:F1} s training ({r.SecondsPerStep * 1e3:F1} ms/step, {r.TokensPerSecond:F0} tokens/s; forward only {r.ForwardTokensPerSecond:F0} tokens/s), {r.Seconds:F1} s in all")),
        };
        if (r.GapClosed is { } gap)
            rows.Insert(3, ("log-perplexity gap closed", gap.ToString("P1", Inv)));
        if (r.Baseline is { } b)
        {
            rows.Add(("pyramid", string.Create(Inv, $"{r.Pyramid}: rows per block {string.Join(" ", r.RowsPerBlock ?? [])} of {r.Seq}; loss on the last {r.LossPositions} positions")));
            rows.Add(("time per step, with / without the drop", string.Create(Inv, $"{r.SecondsPerStep * 1e3:F1} / {b.SecondsPerStep * 1e3:F1} ms = {r.PyramidTimeRatio:F3} (interleaved)")));
            rows.Add(("suffix loss, with / without", string.Create(Inv, $"{TrainResult.TailLoss(r.Loss):F4} / {TrainResult.TailLoss(b.Loss):F4}")));
        }
        return Html.Summary($"#!train {r.Model}", rows);
    }
}
