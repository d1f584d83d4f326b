using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.DotNet.Interactive.Formatting;
using Plotly.NET;
using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;

namespace Workbench.Interactive.Charts;

/// <summary>
/// Formatters and charts for redundancy analysis and layer dropping: the importance heatmap (layers x block / attention /
/// MLP), quality against the number of dropped modules per granularity, measured speed-up and KV cache against the
/// FLOPs prediction, and generations side by side. Charts are plain Plotly figures (traces and layout set by name).
/// </summary>
public static class RedundancyCharts
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static readonly string[] Kinds = ["block", "attention", "mlp"];

    internal static void RegisterFormatters()
    {
        Html.Register<ImportanceScores>(s => Html.Summary("Importance = 1 - cos(input, output)", [
                ("layers", s.Layers.ToString(Inv)), ("tokens", s.Tokens.ToString(Inv)), ("sequences", s.Sequences.ToString(Inv))])
            + Plot.Html(Heatmap(s)) + Html.Table(s.ToDataFrame()));
        Html.Register<RedundancyAnalysis>(a => Html.Summary($"Redundancy of {a.Model}", [
                ("importance", "1 - cos(input, output), mean over calibration tokens"),
                ("calibration", a.Images?.ToString() ?? a.RandomTokens ?? a.Calibration.ToString()),
                ("split", a.Split?.ToString() ?? (a.Images is not null ? "images: a seeded calibration half" : "none: seeded random token ids")),
                ($"{Names.Of(a.Granularity)}, least important first", string.Join(", ", a.Ranked.Select(x => $"{x.Module} {F(x.Importance, 4)}")))])
            + Plot.Html(Heatmap(a.Scores, $"{a.Model}: importance per layer (low = redundant)")) + Html.Table(a.ToDataFrame()));
        Html.Register<DropRun>(r => Html.Summary($"{r.Model}: dropped {r.Plan.Dropped.Count} {Names.Of(r.Plan.Granularity)} module(s), {Names.Of(r.Plan.Strategy)}", DropRows(r))
            + Plot.Html(PlanImportance(r.Plan, r.Model)) + Html.Table(r.ToDataFrame()));
        Html.Register<DropSweep>(s => Html.Summary($"{s.Model}: {Names.Of(s.Granularity)} drop sweep, {Names.Of(s.Strategy)}", SweepRows(s))
            + Plot.Html(QualityCurves(s)) + (s.Rows.Any(r => r.Speed is not null) ? Plot.Html(SpeedAndMemory(s)) : "")
            + Html.Table(Compact(s), 64));
        Html.Register<StoryComparison>(StoriesHtml);
    }

    // ---- charts a notebook can also call directly ----

    /// <summary>Importance heatmap: one column per layer, one row per module kind, values written in the cells.</summary>
    public static GenericChart Heatmap(ImportanceScores s, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(s);
        double[][] z = [s.Block, s.Attention, s.Mlp];
        var dropped = Kinds.Select((_, k) => Enumerable.Range(0, s.Layers)
            .Select(l => s.Skips.IsDropped(new ModuleRef(l, (ModuleKind)k)) ? "dropped" : "").ToArray()).ToArray();
        var trace = Plot.Trace("heatmap", ("z", z), ("x", Enumerable.Range(0, s.Layers).ToArray()), ("y", Kinds),
            ("colorscale", "YlOrRd"), ("reversescale", true), ("zmin", 0.0), ("xgap", 2), ("ygap", 2), ("customdata", dropped),
            ("texttemplate", "%{z:.3f}"), ("textfont", new { size = s.Layers > 10 ? 9 : 12 }), ("colorbar", new { title = new { text = "1 - cos" } }),
            ("hovertemplate", "layer %{x}, %{y}<br>importance %{z:.4f} %{customdata}<extra></extra>"));
        var layout = new Layout();
        layout.SetProperty("title", new { text = title ?? $"Importance per layer ({s.Tokens} tokens; low = redundant)", font = new { size = 14 } });
        layout.SetProperty("xaxis", new { title = new { text = "layer" }, dtick = 1 });
        layout.SetProperty("yaxis", new { autorange = "reversed" });
        layout.SetProperty("height", 260);
        layout.SetProperty("margin", new { l = 80, r = 20, t = 50, b = 45 });
        return Plot.Figure([trace], layout);
    }

    /// <summary>
    /// Attention and MLP importance against relative depth (layer / (layers - 1)) for several models, so models of
    /// different depth share one axis: the paper's claim is that attention importance falls with depth.
    /// </summary>
    public static GenericChart ImportanceByDepth(params RedundancyAnalysis[] analyses)
    {
        ArgumentNullException.ThrowIfNull(analyses);
        if (analyses.Length == 0) throw new ArgumentException("no analyses", nameof(analyses));
        var traces = new List<Trace>();
        for (int i = 0; i < analyses.Length; i++)
        {
            var s = analyses[i].Scores;
            var depth = Enumerable.Range(0, s.Layers).Select(l => s.Layers == 1 ? 0 : (double)l / (s.Layers - 1)).ToArray();
            string color = Palette(i);
            traces.Add(Line($"{analyses[i].Model} attention", depth, s.Attention.Cast<double?>().ToArray(), color, "solid",
                Enumerable.Range(0, s.Layers).Select(l => $"layer {l}").ToArray()));
            traces.Add(Line($"{analyses[i].Model} mlp", depth, s.Mlp.Cast<double?>().ToArray(), color, "dot",
                Enumerable.Range(0, s.Layers).Select(l => $"layer {l}").ToArray()));
        }
        var layout = new Layout();
        layout.SetProperty("title", new { text = "Attention (solid) and MLP (dotted) importance against depth", font = new { size = 14 } });
        layout.SetProperty("xaxis", new { title = new { text = "relative depth (0 = first layer, 1 = last)" } });
        layout.SetProperty("yaxis", new { title = new { text = "importance, 1 - cos" }, rangemode = "tozero" });
        layout.SetProperty("height", 380);
        return Plot.Figure(traces, layout);
    }

    /// <summary>
    /// Quality against the number of dropped modules, one line per sweep (e.g. attention, MLP, block drop of one model).
    /// Decoders: top-1 agreement with the full model (left) and KL(full || pruned) on a log axis (right).
    /// Encoders: embedding cosine to the full model (left) and Spearman of pairwise similarities (right).
    /// </summary>
    public static GenericChart QualityCurves(params DropSweep[] sweeps) =>
        Quality(sweeps, r => r.Dropped.Count, "modules dropped (k)", 1, "quality as modules are dropped (least important first)");

    /// <summary>
    /// The same quality measures as <see cref="QualityCurves"/>, against the share of the predicted cost removed instead
    /// of the number of modules: decode FLOPs per token for decoders, prefill FLOPs for encoders. Sweeps of different
    /// granularities compare at equal saving here (an MLP layer of a Llama holds more weights than its attention layer).
    /// </summary>
    public static GenericChart QualityByCost(params DropSweep[] sweeps) =>
        Quality(sweeps, CostRemoved, "share of the predicted FLOPs removed", null, "quality against the compute removed");

    /// <summary>1 - pruned / full predicted FLOPs (decode FLOPs per token for decoders, prefill FLOPs for encoders).</summary>
    internal static double CostRemoved(DropReport r) => r.PredictedFull.DecodeFlopsPerToken > 0
        ? 1 - (double)r.Predicted.DecodeFlopsPerToken / r.PredictedFull.DecodeFlopsPerToken
        : 1 - (double)r.Predicted.PrefillFlops / r.PredictedFull.PrefillFlops;

    private static GenericChart Quality(DropSweep[] sweeps, Func<DropReport, double> xOf, string xTitle, int? dtick, string what)
    {
        ArgumentNullException.ThrowIfNull(sweeps);
        if (sweeps.Length == 0) throw new ArgumentException("no sweeps", nameof(sweeps));
        bool decoder = sweeps[0].Rows[0].Quality.Kl is not null;
        if (sweeps.Any(s => (s.Rows[0].Quality.Kl is not null) != decoder))
            throw new ArgumentException("mixing decoder and encoder sweeps: their quality measures differ", nameof(sweeps));
        bool manyModels = sweeps.Select(s => s.Model).Distinct().Count() > 1;
        bool byGranularity = sweeps.Select(s => s.Granularity).Distinct().Count() == sweeps.Length;
        var traces = new List<Trace>();
        for (int i = 0; i < sweeps.Length; i++)
        {
            var s = sweeps[i];
            var k = s.Rows.Select(xOf).ToArray();
            var text = s.Rows.Select(r => r.Dropped.Count == 0 ? "full model" : "dropped " + string.Join(" ", r.Dropped)).ToArray();
            string name = (manyModels ? s.Model + " " : "") + Names.Of(s.Granularity) + (s.Strategy == DropStrategy.Iterative ? " (iterative)" : "");
            string color = byGranularity ? GranularityColor(s.Granularity) : Palette(i);
            var left = s.Rows.Select(r => N(decoder ? r.Quality.Top1Agreement : r.Quality.EmbeddingCosine)).ToArray();
            // A rank correlation of NaN embeddings is a number but means nothing: leave it out with its cosine.
            var right = s.Rows.Select(r => decoder ? Positive(r.Quality.Kl)
                : r.Quality.EmbeddingCosine is { } c && double.IsFinite(c) ? N(r.Quality.Spearman) : null).ToArray();
            traces.Add(Line(name, k, left, color, "solid", text));
            var t = Line(name, k, right, color, "solid", text);
            t.SetProperty("xaxis", "x2");
            t.SetProperty("yaxis", "y2");
            t.SetProperty("showlegend", false);
            traces.Add(t);
        }
        var layout = new Layout();
        string model = manyModels ? "" : sweeps[0].Model + ": ";
        layout.SetProperty("title", new { text = $"{model}{what}", font = new { size = 14 } });
        if (dtick is { } d)
        {
            layout.SetProperty("xaxis", new { domain = new[] { 0.0, 0.46 }, title = new { text = xTitle }, dtick = d, anchor = "y" });
            layout.SetProperty("xaxis2", new { domain = new[] { 0.56, 1.0 }, title = new { text = xTitle }, dtick = d, anchor = "y2" });
        }
        else
        {
            layout.SetProperty("xaxis", new { domain = new[] { 0.0, 0.46 }, title = new { text = xTitle }, tickformat = ".0%", anchor = "y" });
            layout.SetProperty("xaxis2", new { domain = new[] { 0.56, 1.0 }, title = new { text = xTitle }, tickformat = ".0%", anchor = "y2" });
        }
        layout.SetProperty("yaxis", decoder
            ? new { title = new { text = "top-1 agreement with full model" }, range = new[] { 0.0, 1.02 }, tickformat = ".0%", anchor = "x" }
            : (object)new { title = new { text = "embedding cosine to full model" }, range = new[] { 0.0, 1.02 }, anchor = "x" });
        layout.SetProperty("yaxis2", decoder
            ? new { title = new { text = "KL(full ‖ pruned), nats/token (log)" }, type = "log", anchor = "x2" }
            : (object)new { title = new { text = "Spearman of pairwise similarities" }, range = new[] { -0.3, 1.02 }, anchor = "x2" });
        layout.SetProperty("height", 420);
        layout.SetProperty("legend", new { orientation = "h", y = -0.3 });
        layout.SetProperty("margin", new { t = 60, b = 110 });
        return Plot.Figure(traces, layout);
    }

    /// <summary>
    /// Left: measured speed-up over the full model (decode tokens/s for decoders, encode tokens/s for encoders) beside
    /// the speed-up the FLOPs predict. Right: KV-cache bytes allocated by the decode run beside the predicted bytes.
    /// </summary>
    public static GenericChart SpeedAndMemory(DropSweep s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var k = s.Rows.Select(r => (double)r.Dropped.Count).ToArray();
        var text = s.Rows.Select(r => r.Dropped.Count == 0 ? "full model" : "dropped " + string.Join(" ", r.Dropped)).ToArray();
        bool decoder = s.Rows[0].Predicted.DecodeFlopsPerToken > 0;
        var traces = new List<Trace>
        {
            Line("measured speed-up", k, s.Rows.Select(r => N(r.MeasuredSpeedup)).ToArray(), "#1f77b4", "solid", text),
            Line("FLOPs-predicted speed-up", k, s.Rows.Select(r => N(r.PredictedSpeedup)).ToArray(), "#7f7f7f", "dash", text),
        };
        if (decoder)
        {
            var measured = Plot.Trace("bar", ("name", "KV cache allocated"), ("x", k), ("y", s.Rows.Select(r => (double?)r.Speed?.KvCacheBytes / 1024).ToArray()),
                ("xaxis", "x2"), ("yaxis", "y2"), ("marker", new { color = "#2ca02c" }), ("text", text), ("textposition", "none"),
                ("hovertemplate", "%{text}<br>%{y:.1f} KiB allocated<extra></extra>"));
            var predicted = Line("KV cache predicted", k, s.Rows.Select(r => (double?)r.Predicted.KvCacheBytes / 1024).ToArray(), "#000", "dot", text);
            predicted.SetProperty("xaxis", "x2");
            predicted.SetProperty("yaxis", "y2");
            traces.Add(measured);
            traces.Add(predicted);
        }
        var layout = new Layout();
        var shape = s.Rows[0].Speed;
        string run = shape is null ? "" : decoder ? $" (prompt {shape.PromptTokens}, decode {shape.DecodeTokens} tokens; medians of paired runs)" : " (median of paired runs)";
        layout.SetProperty("title", new { text = $"{s.Model}, {Names.Of(s.Granularity)} drop: speed and memory{run}", font = new { size = 14 } });
        layout.SetProperty("xaxis", new { domain = decoder ? new[] { 0.0, 0.46 } : new[] { 0.0, 1.0 }, title = new { text = "modules dropped (k)" }, dtick = 1, anchor = "y" });
        layout.SetProperty("yaxis", new { title = new { text = decoder ? "decode speed-up (x)" : "encode speed-up (x)" }, rangemode = "tozero", anchor = "x" });
        if (decoder)
        {
            layout.SetProperty("xaxis2", new { domain = new[] { 0.56, 1.0 }, title = new { text = "modules dropped (k)" }, dtick = 1, anchor = "y2" });
            layout.SetProperty("yaxis2", new { title = new { text = "KV cache, KiB" }, rangemode = "tozero", anchor = "x2" });
        }
        layout.SetProperty("height", 400);
        layout.SetProperty("legend", new { orientation = "h", y = -0.3 });
        layout.SetProperty("margin", new { t = 60, b = 110 });
        return Plot.Figure(traces, layout);
    }

    /// <summary>The importance of every candidate module the plan ranked (first scores), the dropped ones in red.</summary>
    public static GenericChart PlanImportance(DropPlan plan, string model = "")
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.Scores.Count == 0) throw new ArgumentException("the plan carries no scores (a manual plan)", nameof(plan));
        var scores = plan.Scores[0].Of(plan.Granularity);
        var dropped = plan.Dropped.ToHashSet();
        var bar = Plot.Trace("bar", ("x", scores.Select(x => x.Module.ToString()).ToArray()), ("y", scores.Select(x => x.Importance).ToArray()),
            ("marker", new { color = scores.Select(x => dropped.Contains(x.Module) ? "#d62728" : plan.Never.Contains(x.Module.Layer) ? "#bbbbbb" : "#1f77b4").ToArray() }),
            ("text", scores.Select(x => dropped.Contains(x.Module) ? $"dropped #{plan.Dropped.ToList().IndexOf(x.Module) + 1}" : plan.Never.Contains(x.Module.Layer) ? "never" : "").ToArray()),
            ("textposition", "outside"),
            ("hovertemplate", "%{x}: importance %{y:.4f} %{text}<extra></extra>"));
        var layout = new Layout();
        string how = plan.Strategy == DropStrategy.Iterative ? " (scores of the full model; iterative re-scores after each drop)" : "";
        layout.SetProperty("title", new { text = $"{model}{(model.Length > 0 ? ": " : "")}{Names.Of(plan.Granularity)} importance, dropped in red{how}", font = new { size = 14 } });
        layout.SetProperty("yaxis", new { title = new { text = "1 - cos" }, rangemode = "tozero" });
        layout.SetProperty("height", 300);
        layout.SetProperty("showlegend", false);
        return Plot.Figure([bar], layout);
    }

    internal static string StoriesHtml(StoryComparison c)
    {
        var sb = new StringBuilder("<div class=\"workbench-stories\" style=\"font-family:sans-serif\">");
        sb.Append($"<div style=\"font-weight:bold;margin-bottom:4px\">Prompt: {Encode(c.Prompt)}</div>");
        sb.Append("<div style=\"display:flex;gap:12px;align-items:stretch\">");
        foreach (var s in c.Stories)
        {
            string dropped = s.Dropped.Count == 0 ? "full model" : "dropped " + string.Join(" ", s.Dropped);
            string text = s.Result.Text;
            string generated = text.StartsWith(c.Prompt, StringComparison.Ordinal) ? text[c.Prompt.Length..] : text;
            string shown = text.StartsWith(c.Prompt, StringComparison.Ordinal) ? $"<b>{Encode(c.Prompt)}</b>{Encode(generated)}" : Encode(text);
            sb.Append("<div class=\"workbench-story\" style=\"flex:1;border:1px solid #ccc;border-radius:4px;padding:6px 10px;background:#fafafa\">")
              .Append($"<div style=\"font-weight:bold\">{Encode(s.Label)}</div>")
              .Append($"<div style=\"font-size:11px;color:#666;margin-bottom:4px\">{Encode(dropped)} &middot; {s.Result.Tokens.Length} tokens</div>")
              .Append($"<div style=\"white-space:pre-wrap;font-family:Georgia,serif;font-size:13px\">{shown}</div></div>");
        }
        return sb.Append("</div></div>").ToString();
    }

    // ---- summaries ----

    private static IEnumerable<(string, string)> DropRows(DropRun r)
    {
        var q = r.Report.Quality;
        yield return ("dropped, in order", r.Plan.Dropped.Count == 0 ? "nothing" : string.Join(" ", r.Plan.Dropped));
        var (attn, mlp) = r.Report.Skips.Lists();
        yield return ("drop_attn_list / drop_mlp_list", $"[{string.Join(",", attn)}] / [{string.Join(",", mlp)}]");
        if (r.Plan.Never.Count > 0) yield return ("never dropped", string.Join(",", r.Plan.Never));
        yield return ("evaluation", r.EvaluationImages?.ToString() ?? r.Evaluation?.ToString() ?? "");
        foreach (var row in QualityRows(q)) yield return row;
        foreach (var row in SpeedRows(r.Report)) yield return row;
    }

    private static IEnumerable<(string, string)> SweepRows(DropSweep s)
    {
        yield return ("drop order", string.Join(" ", s.Plan.Dropped));
        if (s.Plan.Never.Count > 0) yield return ("never dropped", string.Join(",", s.Plan.Never));
        var last = s.Rows[^1];
        yield return ("k", $"0..{last.Dropped.Count}");
        var half = s.Rows.FirstOrDefault(r => (r.Quality.Top1Agreement ?? r.Quality.EmbeddingCosine) < 0.5);
        yield return (last.Quality.Kl is not null ? "first k with top-1 agreement < 50%" : "first k with embedding cosine < 0.5",
            half is null ? "none" : half.Dropped.Count.ToString(Inv));
        if (s.Rows.Count > 1)
            foreach (var (key, value) in QualityRows(s.Rows[1].Quality)) yield return ("k = 1: " + key, value);
    }

    private static IEnumerable<(string, string)> QualityRows(QualityReport q)
    {
        if (q.Kl is { } kl)
        {
            yield return ("KL(full ‖ pruned)", F(kl, 4) + " nats/token");
            yield return ("top-1 agreement", Pct(q.Top1Agreement));
            if (q.Perplexity is not null) yield return ("perplexity", $"{F(q.Perplexity, 3)} (full {F(q.PerplexityFull, 3)})");
            if (q.Accuracy is not null) yield return ("accuracy", $"{Pct(q.Accuracy)} (full {Pct(q.AccuracyFull)})");
        }
        else
        {
            yield return ("embedding cosine to full", F(q.EmbeddingCosine, 4));
            yield return ("Spearman of pairwise similarities", F(q.Spearman, 4));
        }
    }

    private static IEnumerable<(string, string)> SpeedRows(DropReport r)
    {
        if (r.Speed is { } s && r.SpeedFull is { } f)
        {
            yield return (s.DecodeTokensPerSecond is not null ? "decode tokens/s" : "encode tokens/s",
                $"{F(s.DecodeTokensPerSecond ?? s.PrefillTokensPerSecond, 0)} (full {F(f.DecodeTokensPerSecond ?? f.PrefillTokensPerSecond, 0)})");
            yield return ("speed-up measured / FLOPs-predicted", $"x{F(r.MeasuredSpeedup, 2)} / x{F(r.PredictedSpeedup, 2)}");
            if (s.DecodeTokensPerSecond is not null)
                yield return ("KV cache bytes", $"{s.KvCacheBytes:N0} (full {f.KvCacheBytes:N0}, predicted {r.Predicted.KvCacheBytes:N0})");
        }
        else yield return ("speed-up FLOPs-predicted", $"x{F(r.PredictedSpeedup, 2)} (speed not measured)");
        yield return ("weight bytes (fp32)", $"{r.Predicted.WeightBytes:N0} (full {r.PredictedFull.WeightBytes:N0})");
    }

    /// <summary>The sweep table without the long cost columns a reader rarely needs in a notebook.</summary>
    private static Microsoft.Data.Analysis.DataFrame Compact(DropSweep s)
    {
        var df = s.ToDataFrame();
        foreach (var name in new[] { "dropped", "prefill_flops_predicted", "decode_bytes_per_token_predicted", "perplexity_full" })
            if (df.Columns.IndexOf(name) >= 0) df.Columns.Remove(name);
        return df;
    }

    // ---- plumbing ----

    private static Trace Line(string name, double[] x, double?[] y, string color, string dash, string[] text)
    {
        return Plot.Trace("scatter", ("mode", "lines+markers"), ("name", name), ("x", x), ("y", y), ("text", text),
            ("line", new { color, dash, width = 2 }), ("marker", new { color, size = 7 }),
            ("hovertemplate", name + "<br>%{text}<br>%{y:.4g}<extra></extra>"));
    }

    // Plotly draws gaps for null; NaN and infinities (an encoder with every block dropped costs 0 FLOPs) become gaps.
    private static double? N(double? x) => x is { } v && double.IsFinite(v) ? v : null;

    // A log axis cannot show 0 (k = 0 has KL exactly 0): leave that point out.
    private static double? Positive(double? x) => x is { } v && double.IsFinite(v) && v > 0 ? v : null;

    private static string GranularityColor(Granularity g) => g switch
    {
        Granularity.Attention => "#1f77b4",
        Granularity.Mlp => "#ff7f0e",
        Granularity.Block => "#d62728",
        _ => "#9467bd",
    };

    private static string Palette(int i) => new[] { "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b" }[i % 6];

    private static string F(double? x, int digits) => x is { } v ? v.ToString("F" + digits, Inv) : "n/a";

    private static string Pct(double? x) => x is { } v ? v.ToString("P1", Inv) : "n/a";

    private static string Encode(string s) => WebUtility.HtmlEncode(s);
}
