using System.Globalization;
using Microsoft.Data.Analysis;
using Plotly.NET;
using Workbench.Engine.Stacking;

namespace Workbench.Interactive.Charts;

/// <summary>
/// The stacked techniques: a table of the steps, a waterfall of the compounded saving in decode time per token
/// (measured beside predicted), and the quality-vs-cost frontier over every combination with the path of each order.
/// </summary>
public static class StackCharts
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    internal static void RegisterFormatters() => Html.Register<StackResult>(r => Html.Summary($"stack on {r.Model} → {r.Ternary}", [
            ("ternary", $"{r.TernaryKind}, {r.Format.ToString().ToLowerInvariant()}"),
            ("dropped attention layers", string.Join(", ", r.Dropped.Select(m => m.Layer))),
            ("pyramid", r.Schedule?.ToString() ?? "none"),
            ("held out", $"{r.HeldOut}: {r.Windows} windows of {r.Prompt} prompt + {r.Continuation} scored tokens"),
            ("speed", $"{r.Prompt}-token prefill + {r.Decode} decode tokens, median of {r.Runs} interleaved runs, {r.Threads} thread(s)"),
            ("compounded decode speed-up", $"measured {r.CompoundedMeasured.ToString("F2", Inv)}x, predicted {r.CompoundedPredicted.ToString("F2", Inv)}x"),
        ])
        + Html.Table(r.ToDataFrame())
        + Plot.Html(Waterfall(r))
        + (r.Combinations.Count > 0 ? Plot.Html(Frontier(r)) + Html.Table(r.OrdersFrame()) : ""));

    /// <summary>One row per step: quality, measured speed, predicted costs, speed-ups.</summary>
    public static DataFrame ToDataFrame(this StackResult r) => Frame(r.Steps);

    /// <summary>One row per combination of the techniques (empty without them).</summary>
    public static DataFrame CombinationsFrame(this StackResult r) => Frame(r.Combinations);

    /// <summary>One row per order of applying the techniques: the path's points and its KL-cost area, best first.</summary>
    public static DataFrame OrdersFrame(this StackResult r)
    {
        var orders = r.Orders();
        var cols = new List<DataFrameColumn> { new StringDataFrameColumn("order", orders.Select(o => o.Name)) };
        for (int i = 1; i <= (orders.FirstOrDefault()?.Order.Count ?? 0); i++)
        {
            int k = i;
            cols.Add(new StringDataFrameColumn($"after {k}", orders.Select(o => string.Create(Inv,
                $"{o.Order[k - 1]}: ppl {o.Path[k].Perplexity:F1}, KL {o.Path[k].Kl:F3}, {o.Path[k].PredictedSpeedup:F2}x predicted ({o.Path[k].MeasuredSpeedup:F2}x measured)"))));
        }
        cols.Add(new DoubleDataFrameColumn("kl_cost_area", orders.Select(o => (double?)o.KlArea)));
        return new DataFrame(cols);
    }

    private static DataFrame Frame(IReadOnlyList<StackStep> steps) => new(
        new StringDataFrameColumn("step", steps.Select(s => s.Name)),
        new DoubleDataFrameColumn("perplexity", steps.Select(s => (double?)s.Perplexity)),
        new DoubleDataFrameColumn("kl", steps.Select(s => (double?)s.Kl)),
        new DoubleDataFrameColumn("top1", steps.Select(s => (double?)s.Top1)),
        new DoubleDataFrameColumn("prefill_tok_s", steps.Select(s => (double?)Math.Round(s.PrefillTokensPerSecond, 1))),
        new DoubleDataFrameColumn("decode_tok_s", steps.Select(s => (double?)Math.Round(s.DecodeTokensPerSecond, 1))),
        new DoubleDataFrameColumn("mflops_per_token", steps.Select(s => (double?)(s.FlopsPerToken / 1e6))),
        new DoubleDataFrameColumn("weight_mb", steps.Select(s => (double?)(s.WeightBytesPerToken / 1e6))),
        new DoubleDataFrameColumn("kv_cache_kb", steps.Select(s => (double?)(s.KvCacheBytes / 1e3))),
        new DoubleDataFrameColumn("mj_per_token", steps.Select(s => (double?)(s.EnergyJPerToken * 1e3))),
        new DoubleDataFrameColumn("measured_speedup", steps.Select(s => (double?)s.MeasuredSpeedup)),
        new DoubleDataFrameColumn("predicted_speedup", steps.Select(s => (double?)s.PredictedSpeedup)));

    /// <summary>
    /// Decode time per token relative to the full model (1 / speed-up), step by step: each bar is what one more
    /// technique took off, the last the stack's total. Measured (wall clock) beside predicted (bytes per token).
    /// </summary>
    public static GenericChart Waterfall(StackResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var x = r.Steps.Select(s => s.Name).Append("stack").ToArray();
        var measure = r.Steps.Select((_, i) => i == 0 ? "absolute" : "relative").Append("total").ToArray();
        Trace Series(string name, Func<StackStep, double> speedup, string color)
        {
            var cost = r.Steps.Select(s => 1 / speedup(s)).ToArray();
            var y = cost.Select((c, i) => i == 0 ? c : c - cost[i - 1]).Append(0.0).ToArray();
            var text = cost.Select((c, i) => i == 0 ? "1.00" : string.Create(Inv, $"÷{cost[i - 1] / c:F2}")).Append(string.Create(Inv, $"{speedup(r.Steps[^1]):F2}x")).ToArray();
            return Plot.Trace("waterfall", ("name", name), ("x", x), ("y", y), ("measure", measure), ("text", text), ("textposition", "outside"),
                ("offsetgroup", name), ("connector", new { line = new { color = "#bbb" } }),
                ("decreasing", new { marker = new { color } }), ("totals", new { marker = new { color = "#444" } }), ("increasing", new { marker = new { color = "#d62728" } }));
        }
        var layout = new Layout();
        layout.SetProperty("waterfallmode", "group");
        layout.SetProperty("title", new { text = $"Compounded decode saving on {r.Model}: time per token relative to the full model", font = new { size = 14 } });
        layout.SetProperty("yaxis", new { title = new { text = "decode time per token (full = 1)" }, range = new[] { 0, 1.15 } });
        layout.SetProperty("height", 420);
        return Plot.Figure([Series("measured (wall clock)", s => s.MeasuredSpeedup, "#1f77b4"), Series("predicted (bytes per token)", s => s.PredictedSpeedup, "#ff7f0e")], layout);
    }

    /// <summary>
    /// Quality (perplexity on the held-out text) against decode cost (time per token, full = 1) for every combination:
    /// the cost model's prediction (filled markers, with each order's path from the full model to the whole stack) and
    /// the wall clock's measurement (hollow markers) beside it.
    /// </summary>
    public static GenericChart Frontier(StackResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        if (r.Combinations.Count == 0) throw new ArgumentException("the result holds no combinations (run with Combinations = true)", nameof(r));
        var traces = new List<Trace>();
        string[] colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
        var orders = r.Orders();
        for (int i = 0; i < orders.Count; i++)
        {
            var o = orders[i];
            traces.Add(Plot.Trace("scatter", ("mode", "lines"), ("name", $"{o.Name} (area {o.KlArea.ToString("F3", Inv)})"),
                ("x", o.Path.Select(s => 1 / s.PredictedSpeedup).ToArray()), ("y", o.Path.Select(s => s.Perplexity).ToArray()),
                ("line", new { color = colors[i % colors.Length], width = i == 0 ? 3 : 1.5, dash = i == 0 ? "solid" : "dot" }), ("hoverinfo", "skip")));
        }
        var c = r.Combinations;
        var custom = c.Select(s => new object[] { s.Kl, s.Top1, 1 / s.PredictedSpeedup, 1 / s.MeasuredSpeedup }).ToArray();
        const string hover = "%{text}<br>perplexity %{y:.2f}, KL %{customdata[0]:.4f}, top-1 %{customdata[1]:.1%}<br>time per token: predicted %{customdata[2]:.3f}, measured %{customdata[3]:.3f}<extra></extra>";
        traces.Add(Plot.Trace("scatter", ("mode", "markers+text"), ("name", "combinations, predicted"),
            ("x", c.Select(s => 1 / s.PredictedSpeedup).ToArray()), ("y", c.Select(s => s.Perplexity).ToArray()),
            ("text", c.Select(s => s.Name).ToArray()), ("textposition", "top center"), ("customdata", custom), ("hovertemplate", hover),
            ("marker", new { size = 11, color = "#222" })));
        traces.Add(Plot.Trace("scatter", ("mode", "markers"), ("name", "combinations, measured"),
            ("x", c.Select(s => 1 / s.MeasuredSpeedup).ToArray()), ("y", c.Select(s => s.Perplexity).ToArray()),
            ("text", c.Select(s => s.Name).ToArray()), ("customdata", custom), ("hovertemplate", hover),
            ("marker", new { size = 11, color = "rgba(0,0,0,0)", line = new { width = 2, color = "#1f77b4" } })));
        var layout = new Layout();
        layout.SetProperty("title", new { text = $"Quality vs cost over every combination on {r.Model} (lower left is better)", font = new { size = 14 } });
        // Log axis, range in decades, padded on the left so the cheapest point's label fits.
        double left = c.SelectMany(s => new[] { 1 / s.PredictedSpeedup, 1 / s.MeasuredSpeedup }).Min();
        layout.SetProperty("xaxis", new { title = new { text = "decode time per token (full = 1): predicted from bytes, measured hollow" }, type = "log",
            range = new[] { Math.Log10(left) - 0.15, Math.Log10(1.15) } });
        layout.SetProperty("yaxis", new { title = new { text = "perplexity (held-out)" } });
        layout.SetProperty("height", 480);
        return Plot.Figure(traces, layout);
    }
}
