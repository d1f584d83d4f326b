using Workbench.Engine.Models;
using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.DotNet.Interactive.Formatting;
using Plotly.NET;
using Workbench.Engine.Costs;
using Workbench.Engine.TokenDrop;
using Workbench.Engine.Vision;

namespace Workbench.Interactive.Charts;

/// <summary>
/// Formatters and charts for token dropping: the kept patches drawn over the image, CLS attention maps, the
/// accuracy-vs-FLOPs frontier, per-layer FLOPs, and the language models' KL. Charts are built as plain Plotly
/// figures (traces and layout set by name), which keeps multi-panel layouts readable from C#.
/// </summary>
public static class TokenDropCharts
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    internal static void RegisterFormatters()
    {
        Html.Register<VitDropEvaluation>(e => Html.Summary($"{e.Method} on vit-cifar10", [
                ("schedule", e.Schedule?.ToString() ?? "full model"), ("ranking", Rank(e.Ranking)), ("images", e.Images.ToString(Inv)),
                ("tokens per layer", TokensPerLayer(e.Cost)),
                ("accuracy", Pct(e.Accuracy)), ("accuracy, full model", Pct(e.AccuracyFull)),
                ("agreement with full model", Pct(e.Agreement)),
                ("FLOPs ratio (blocks)", e.FlopsRatio.ToString("F3", Inv)),
                ("ranking cost (share of full)", (e.Cost.RankingMacs * e.FlopsRatio / e.Cost.TotalMacs).ToString("F3", Inv))])
            + Plot.Html(ClassAccuracy(e)) + Html.Table(e.ToDataFrame(), 10));
        Html.Register<VitImageDrop>(d => Html.Summary($"{d.Name}: {d.Schedule}, ranking {Rank(d.Ranking)}", [
                ("patches per stage", string.Join(" → ", d.PatchesPerStage)),
                ("full model", $"{d.PredictedFull} ({Pct(d.ConfidenceFull)})"),
                ("with dropping", $"{d.Predicted} ({Pct(d.Confidence)})"),
                ("same prediction", d.Agrees ? "yes" : "no")])
            + Plot.Html(StageOverlay(d)) + Plot.Html(ClsAttention(d)) + Html.Table(d.ToDataFrame()));
        Html.Register<SweepResult>(s => Html.Summary("Token-dropping sweep on vit-cifar10", [
                ("settings", s.Points.Count.ToString(Inv)), ("images", (s.Points.FirstOrDefault()?.Images ?? 0).ToString(Inv))])
            + Plot.Html(Frontier(s)) + Html.Table(s.ToDataFrame(), 60));
        Html.Register<LmDropEvaluation>(e => Html.Summary($"{LmMethod(e)} on {e.Model}", [
                ("schedule", e.Schedule.ToString()), ("ranking", Rank(e.Ranking)), ("prompts", e.PerPrompt.Count.ToString(Inv)),
                ("KL(full ‖ dropped), next token", e.Kl.ToString("F4", Inv) + " nats"),
                ("top-1 agreement", Pct(e.Top1Agreement)),
                ("perplexity", $"{e.PerplexityDropped.ToString("F3", Inv)} (full {e.PerplexityFull.ToString("F3", Inv)})"),
                ("FLOPs ratio (prefill)", e.FlopsRatio.ToString("F3", Inv))])
            + Plot.Html(PromptKl(e)) + Html.Table(e.ToDataFrame()));
        Html.Register<VlmDropEvaluation>(e => Html.Summary($"{(e.Schedule.Boundaries.Count == 1 ? "fastv" : "pyramid")} on {e.Model}'s image tokens", [
                ("schedule", e.Schedule.ToString()), ("ranking", Rank(e.Ranking)), ("image", $"{e.Image} ({e.Preprocessing})"),
                ("image tokens per stage", string.Join(" → ", e.ImageTokensPerStage) + $" of {e.PromptTokens} prompt tokens"),
                ("KL(full ‖ dropped), next token", e.Kl.ToString("F4", Inv) + " nats"),
                ("top-1", e.Top1Agrees ? "same" : $"differs ({e.Top1Dropped} vs {e.Top1Full})"),
                ($"greedy {e.GeneratedFull.Length} tokens agreeing", e.GeneratedAgreeing.ToString(Inv)),
                ("FLOPs ratio (language-model prefill)", e.FlopsRatio.ToString("F3", Inv))]));
        Html.Register<EncoderDropEvaluation>(e => Html.Summary($"token dropping on {e.Model}", [
                ("schedule", e.Schedule.ToString()), ("ranking", Rank(e.Ranking)), ("texts", e.Cosines.Length.ToString(Inv)),
                ("mean cosine to full embedding", e.MeanCosine.ToString("F4", Inv)), ("min cosine", e.MinCosine.ToString("F4", Inv)),
                ("FLOPs ratio", e.FlopsRatio.ToString("F3", Inv))])
            + Plot.Html(Bars("embedding cosine per text", "text", "cosine", e.Cosines.Select((_, i) => i.ToString(Inv)).ToArray(), e.Cosines)));
        Html.Register<CostReport>(c => Html.Summary("Cost of a prefill (analytic)", [
                ("layers", c.Layers.Count.ToString(Inv)), ("tokens per layer", TokensPerLayer(c)),
                ("FLOPs", Giga(c.TotalFlops)), ("ranking FLOPs", Giga(2 * c.RankingMacs))])
            + Plot.Html(FlopsPerLayer(("cost", c))) + Html.Table(c.ToDataFrame(), 64));
    }

    // ---- charts a notebook can also call directly ----

    /// <summary>The image once per stage, patches dropped by then greyed out: what the later layers still see.</summary>
    public static GenericChart StageOverlay(VitImageDrop d)
    {
        ArgumentNullException.ThrowIfNull(d);
        var masks = d.Dropped.StageMasks();
        int n = masks.Length, layers = d.Full.ClsAttention.Length;
        var traces = new List<Trace>();
        var layout = new Layout();
        var notes = new List<object>();
        for (int s = 0; s < n; s++)
        {
            string ax = s == 0 ? "" : (s + 1).ToString(Inv);
            traces.Add(Plot.Trace("image", ("z", Pixels(d.Image, masks[s])), ("xaxis", "x" + ax), ("yaxis", "y" + ax),
                ("hovertemplate", "x %{x}, y %{y}<extra></extra>")));
            Panel(layout, ax, s, n, 0, 1);
            int first = s == 0 ? 1 : d.Schedule.Boundaries[s - 1] + 1, last = s < n - 1 ? d.Schedule.Boundaries[s] : layers;
            string when = first == last ? $"layer {first}" : $"layers {first}–{last}";
            notes.Add(Note(ax, $"{when}: {masks[s].Count(k => k)} patches"));
        }
        layout.SetProperty("annotations", notes);
        layout.SetProperty("title", new { text = $"Patches kept per stage ({d.Schedule}, ranking {Rank(d.Ranking)})", font = new { size = 14 } });
        layout.SetProperty("height", 300);
        layout.SetProperty("margin", new { l = 10, r = 10, t = 70, b = 10 });
        return Plot.Figure(traces, layout);
    }

    /// <summary>
    /// CLS-to-patch attention per layer (head-averaged, 8x8 over the patch grid): top row the full model, bottom row
    /// the run with dropping (blank where a patch is gone). Each panel has its own colour scale.
    /// </summary>
    public static GenericChart ClsAttention(VitImageDrop d)
    {
        ArgumentNullException.ThrowIfNull(d);
        int layers = d.Full.ClsAttention.Length;
        var traces = new List<Trace>();
        var layout = new Layout();
        var notes = new List<object>();
        for (int row = 0; row < 2; row++)
        {
            var run = row == 0 ? d.Full : d.Dropped;
            for (int l = 0; l < layers; l++)
            {
                int index = row * layers + l;
                string ax = index == 0 ? "" : (index + 1).ToString(Inv);
                var att = run.ClsAttention[l];
                traces.Add(Plot.Trace("heatmap", ("z", Grid(att)), ("xaxis", "x" + ax), ("yaxis", "y" + ax),
                    ("colorscale", "Viridis"), ("showscale", false), ("xgap", 1), ("ygap", 1),
                    ("hovertemplate", "patch row %{y}, col %{x}<br>attention %{z:.4f}<extra></extra>")));
                Panel(layout, ax, l, layers, row, 2);
                int alive = att.Skip(1).Count(a => !float.IsNaN(a));
                notes.Add(Note(ax, $"{(row == 0 ? "full" : "dropped")} · layer {l + 1} · {alive} patches · CLS→CLS {att[0].ToString("F2", Inv)}"));
            }
        }
        layout.SetProperty("annotations", notes);
        layout.SetProperty("title", new { text = "CLS attention to each patch, per layer (head average; own colour scale per panel)", font = new { size = 14 } });
        layout.SetProperty("height", 520);
        layout.SetProperty("margin", new { l = 10, r = 10, t = 70, b = 10 });
        return Plot.Figure(traces, layout);
    }

    /// <summary>Accuracy against FLOPs ratio, one series per method and ranking; the full model as a star and a dashed line.</summary>
    public static GenericChart Frontier(SweepResult sweep)
    {
        ArgumentNullException.ThrowIfNull(sweep);
        var traces = new List<Trace>();
        foreach (var g in sweep.Points.Where(p => p.Schedule is not null).GroupBy(p => (p.Method, p.Ranking)))
        {
            var pts = g.OrderBy(p => p.FlopsRatio).ToList();
            traces.Add(Plot.Trace("scatter", ("mode", "markers"), ("name", $"{g.Key.Method} · {Rank(g.Key.Ranking)}"),
                ("x", pts.Select(p => p.FlopsRatio).ToArray()), ("y", pts.Select(p => p.Accuracy).ToArray()),
                ("text", pts.Select(p => $"{p.Method} layers {p.Layers} keep {p.Keep} ({Rank(p.Ranking)})<br>tokens {string.Join("/", p.Cost.Layers.Select(l => l.Tokens))}").ToArray()),
                ("hovertemplate", "%{text}<br>FLOPs %{x:.3f}, accuracy %{y:.1%}<extra></extra>"),
                ("marker", new { size = 10, color = MethodColor(g.Key.Method), symbol = RankSymbol(g.Key.Ranking), opacity = 0.85, line = new { width = 1, color = "#333" } })));
        }
        var layout = new Layout();
        var full = sweep.Points.FirstOrDefault(p => p.Schedule is null);
        double fullAccuracy = full?.Accuracy ?? sweep.Points.FirstOrDefault()?.AccuracyFull ?? double.NaN;
        traces.Add(Plot.Trace("scatter", ("mode", "markers"), ("name", "full model"), ("x", new[] { 1.0 }), ("y", new[] { fullAccuracy }),
            ("hovertemplate", "full model<br>accuracy %{y:.1%}<extra></extra>"),
            ("marker", new { size = 16, color = "#222", symbol = "star" })));
        layout.SetProperty("shapes", new[] { new { type = "line", xref = "paper", x0 = 0, x1 = 1, yref = "y", y0 = fullAccuracy, y1 = fullAccuracy, line = new { dash = "dash", color = "#888", width = 1 } } });
        layout.SetProperty("title", new { text = $"Accuracy vs FLOPs on {sweep.Points.FirstOrDefault()?.Images ?? 0} CIFAR-10 images", font = new { size = 14 } });
        double left = sweep.Points.Select(p => p.FlopsRatio).DefaultIfEmpty(0).Min();
        layout.SetProperty("xaxis", new { title = new { text = "FLOPs ratio (transformer blocks, analytic; 1 = full model)" }, range = new[] { Math.Max(0, left - 0.05), 1.05 } });
        layout.SetProperty("yaxis", new { title = new { text = "top-1 accuracy" }, tickformat = ".0%" });
        layout.SetProperty("height", 460);
        layout.SetProperty("legend", new { orientation = "v" });
        return Plot.Figure(traces, layout);
    }

    /// <summary>Per-class accuracy of the full model and with dropping.</summary>
    public static GenericChart ClassAccuracy(VitDropEvaluation e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var classes = VitModel.ClassNames.ToArray();
        double[] Acc(Func<VitImageResult, int> pred) => Enumerable.Range(0, classes.Length).Select(c =>
        {
            var rows = e.PerImage.Where(r => r.Label == c).ToList();
            return rows.Count == 0 ? double.NaN : rows.Count(r => pred(r) == c) / (double)rows.Count;
        }).ToArray();
        var traces = new List<Trace>
        {
            Plot.Trace("bar", ("name", "full model"), ("x", classes), ("y", Acc(r => r.PredictedFull)), ("marker", new { color = "#999" })),
            Plot.Trace("bar", ("name", $"{e.Method} · {Rank(e.Ranking)}"), ("x", classes), ("y", Acc(r => r.Predicted)), ("marker", new { color = MethodColor(e.Method) })),
        };
        var layout = new Layout();
        layout.SetProperty("barmode", "group");
        layout.SetProperty("title", new { text = $"Accuracy per class: {e.Schedule?.ToString() ?? "full"} ({Pct(e.Accuracy)} vs {Pct(e.AccuracyFull)} in full)", font = new { size = 14 } });
        layout.SetProperty("yaxis", new { tickformat = ".0%", range = new[] { 0, 1 } });
        layout.SetProperty("height", 340);
        return Plot.Figure(traces, layout);
    }

    /// <summary>FLOPs per layer of one or more prefills (e.g. a full model and the same model with PyramidDrop), grouped.</summary>
    public static GenericChart FlopsPerLayer(params (string Name, CostReport Cost)[] reports)
    {
        ArgumentNullException.ThrowIfNull(reports);
        if (reports.Length == 0) throw new ArgumentException("no cost reports", nameof(reports));
        double total0 = reports[0].Cost.TotalFlops;
        bool tera = total0 / reports[0].Cost.Layers.Count > 1e11;
        double scale = tera ? 1e12 : 1e9;
        string unit = tera ? "TFLOPs" : "GFLOPs";
        var palette = new[] { "#999", "#1f77b4", "#d62728", "#2ca02c", "#9467bd" };
        var traces = reports.Select((r, i) => Plot.Trace("bar",
            ("name", $"{r.Name}: {(r.Cost.TotalFlops / scale).ToString("F2", Inv)} {unit} ({(r.Cost.TotalFlops / total0).ToString("P0", Inv)})"),
            ("x", r.Cost.Layers.Select(l => l.Layer + 1).ToArray()),
            ("y", r.Cost.Layers.Select(l => 2.0 * l.Total / scale).ToArray()),
            ("text", r.Cost.Layers.Select(l => $"{l.Tokens} tokens").ToArray()),
            ("hovertemplate", "layer %{x}: %{y:.3f} " + unit + " (%{text})<extra></extra>"),
            ("marker", new { color = palette[i % palette.Length] }))).ToList();
        var layout = new Layout();
        layout.SetProperty("barmode", "group");
        layout.SetProperty("title", new { text = "FLOPs per layer of the prefill", font = new { size = 14 } });
        layout.SetProperty("xaxis", new { title = new { text = "layer" }, dtick = reports[0].Cost.Layers.Count > 12 ? 4 : 1 });
        layout.SetProperty("yaxis", new { title = new { text = unit } });
        layout.SetProperty("height", 380);
        layout.SetProperty("legend", new { orientation = "h", y = -0.2 });
        return Plot.Figure(traces, layout);
    }

    /// <summary>KL(full ‖ dropped) of the next token per model, one bar per ranking (log scale: the rankings differ by orders of magnitude).</summary>
    public static GenericChart KlByRanking(IEnumerable<LmDropEvaluation> evaluations)
    {
        ArgumentNullException.ThrowIfNull(evaluations);
        var list = evaluations.ToList();
        if (list.Count == 0) throw new ArgumentException("no evaluations", nameof(evaluations));
        var traces = list.GroupBy(e => e.Ranking).Select(g => Plot.Trace("bar", ("name", Rank(g.Key)),
            ("x", g.Select(e => $"{e.Model}<br>{e.Schedule}").ToArray()), ("y", g.Select(e => e.Kl).ToArray()),
            ("text", g.Select(e => e.Kl.ToString("F4", Inv)).ToArray()), ("textposition", "outside"),
            ("hovertemplate", "%{x}<br>KL %{y:.4f} nats<extra></extra>"),
            ("marker", new { color = RankColor(g.Key) }))).ToList();
        var layout = new Layout();
        layout.SetProperty("barmode", "group");
        layout.SetProperty("title", new { text = "Next-token KL(full ‖ dropped) by ranking (lower is better)", font = new { size = 14 } });
        // Whole decades on a log axis, with room above the tallest bar for its label.
        var kls = list.Select(e => e.Kl).Where(k => k > 0).DefaultIfEmpty(1e-3).ToList();
        double lo = Math.Floor(Math.Log10(kls.Min())), hi = Math.Log10(kls.Max()) + 0.4;
        layout.SetProperty("yaxis", new { title = new { text = "KL, nats (log scale)" }, type = "log", range = new[] { lo, hi }, dtick = 1, exponentformat = "power" });
        layout.SetProperty("height", 400);
        return Plot.Figure(traces, layout);
    }

    /// <summary>
    /// Quality kept against prefill FLOPs for decoder evaluations (e.g. PyramidDrop and FastV schedules with several
    /// rankings): next-token KL(full ‖ dropped) on a log axis (left) and the continuation's perplexity relative to the
    /// full model's (right). Colour: method (one boundary = FastV); symbol: ranking; one series per model, method and ranking.
    /// </summary>
    public static GenericChart LmFrontier(IEnumerable<LmDropEvaluation> evaluations)
    {
        ArgumentNullException.ThrowIfNull(evaluations);
        var list = evaluations.ToList();
        if (list.Count == 0) throw new ArgumentException("no evaluations", nameof(evaluations));
        bool manyModels = list.Select(e => e.Model).Distinct().Count() > 1;
        var traces = new List<Trace>();
        foreach (var g in list.GroupBy(e => (e.Model, Method: LmMethod(e), e.Ranking)))
        {
            var pts = g.OrderBy(e => e.FlopsRatio).ToList();
            string name = $"{(manyModels ? g.Key.Model + " · " : "")}{g.Key.Method} · {Rank(g.Key.Ranking)}";
            var text = pts.Select(e => $"{e.Model}: {LmMethod(e)} {e.Schedule} ({Rank(e.Ranking)})<br>KL {e.Kl.ToString("F4", Inv)} nats, top-1 {Pct(e.Top1Agreement)}, "
                + $"ppl {e.PerplexityDropped.ToString("F2", Inv)} (full {e.PerplexityFull.ToString("F2", Inv)})").ToArray();
            var marker = new { size = 10, color = MethodColor(g.Key.Method), symbol = RankSymbol(g.Key.Ranking), opacity = 0.85, line = new { width = 1, color = "#333" } };
            var x = pts.Select(e => e.FlopsRatio).ToArray();
            // A log axis cannot show KL 0 (a schedule that keeps every token): leave it out.
            traces.Add(Plot.Trace("scatter", ("mode", "markers"), ("name", name), ("legendgroup", name), ("x", x),
                ("y", pts.Select(e => e.Kl > 0 && double.IsFinite(e.Kl) ? e.Kl : (double?)null).ToArray()), ("text", text),
                ("hovertemplate", "%{text}<br>FLOPs ratio %{x:.3f}<extra></extra>"), ("marker", marker)));
            traces.Add(Plot.Trace("scatter", ("mode", "markers"), ("name", name), ("legendgroup", name), ("showlegend", false), ("x", x),
                ("y", pts.Select(e => e.PerplexityDropped / e.PerplexityFull).ToArray()), ("text", text), ("xaxis", "x2"), ("yaxis", "y2"),
                ("hovertemplate", "%{text}<br>FLOPs ratio %{x:.3f}<extra></extra>"), ("marker", marker)));
        }
        var layout = new Layout();
        string models = string.Join(", ", list.Select(e => e.Model).Distinct());
        int prompts = list.Max(e => e.PerPrompt.Count);
        layout.SetProperty("title", new { text = $"{models}: quality kept vs prefill FLOPs ({prompts} prompts)", font = new { size = 14 } });
        double left = Math.Max(0, list.Min(e => e.FlopsRatio) - 0.05);
        layout.SetProperty("xaxis", new { domain = new[] { 0.0, 0.46 }, title = new { text = "FLOPs ratio (prefill, analytic; 1 = full)" }, range = new[] { left, 1.02 }, anchor = "y" });
        layout.SetProperty("xaxis2", new { domain = new[] { 0.56, 1.0 }, title = new { text = "FLOPs ratio (prefill, analytic; 1 = full)" }, range = new[] { left, 1.02 }, anchor = "y2" });
        layout.SetProperty("yaxis", new { title = new { text = "next-token KL(full ‖ dropped), nats (log)" }, type = "log", exponentformat = "power", anchor = "x" });
        layout.SetProperty("yaxis2", new { title = new { text = "continuation perplexity / full model's" }, anchor = "x2" });
        layout.SetProperty("shapes", new[] { new { type = "line", xref = "x2 domain", x0 = 0, x1 = 1, yref = "y2", y0 = 1, y1 = 1, line = new { dash = "dash", color = "#888", width = 1 } } });
        layout.SetProperty("height", 440);
        layout.SetProperty("legend", new { orientation = "h", y = -0.25 });
        layout.SetProperty("margin", new { t = 60, b = 120 });
        return Plot.Figure(traces, layout);
    }

    /// <summary>The method a decoder schedule is: one boundary is FastV, several PyramidDrop.</summary>
    internal static string LmMethod(LmDropEvaluation e) => e.Schedule.Boundaries.Count == 1 ? "fastv" : "pyramid";

    /// <summary>KL per prompt of one language-model evaluation.</summary>
    public static GenericChart PromptKl(LmDropEvaluation e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return Bars($"KL(full ‖ dropped) per prompt, {e.Model}, {e.Schedule}, ranking {Rank(e.Ranking)}", "prompt", "KL, nats",
            e.PerPrompt.Select(p => p.Prompt.ToString(Inv)).ToArray(), e.PerPrompt.Select(p => p.Kl).ToArray());
    }

    // ---- building blocks ----

    private static GenericChart Bars(string title, string xTitle, string yTitle, string[] x, double[] y)
    {
        var layout = new Layout();
        layout.SetProperty("title", new { text = title, font = new { size = 14 } });
        layout.SetProperty("xaxis", new { title = new { text = xTitle }, type = "category" });
        layout.SetProperty("yaxis", new { title = new { text = yTitle } });
        layout.SetProperty("height", 300);
        return Plot.Figure([Plot.Trace("bar", ("x", x), ("y", y), ("marker", new { color = "#1f77b4" }))], layout);
    }

    // Panel i of n in a row of a rows-row grid: square axes without ticks, y pointing down like an image.
    private static void Panel(Layout layout, string ax, int i, int n, int row, int rows)
    {
        const double gap = 0.012;
        double x0 = (double)i / n + gap, x1 = (double)(i + 1) / n - gap;
        double y1 = 1 - (double)row / rows - (rows > 1 ? 0.06 : 0), y0 = 1 - (double)(row + 1) / rows + (rows > 1 ? 0.02 : 0);
        layout.SetProperty("xaxis" + ax, new { domain = new[] { x0, x1 }, anchor = "y" + ax, showticklabels = false, ticks = "", showgrid = false, zeroline = false });
        layout.SetProperty("yaxis" + ax, new { domain = new[] { Math.Max(0, y0), Math.Min(1, y1) }, anchor = "x" + ax, scaleanchor = "x" + ax, autorange = "reversed", showticklabels = false, ticks = "", showgrid = false, zeroline = false });
    }

    private static object Note(string ax, string text) => new
    {
        text, showarrow = false, xref = $"x{ax} domain", yref = $"y{ax} domain", x = 0.5, y = 1.0, xanchor = "center", yanchor = "bottom",
        font = new { size = 11 },
    };

    // 32x32x3 pixels; patches not in the mask turn pale grey (a trace of the content stays visible).
    private static int[][][] Pixels(VitImage image, bool[] kept)
    {
        int size = VitImage.Size, patch = VitModel.PatchSize;
        var z = new int[size][][];
        for (int y = 0; y < size; y++)
        {
            z[y] = new int[size][];
            for (int x = 0; x < size; x++)
            {
                int r = image[y, x, 0], g = image[y, x, 1], b = image[y, x, 2];
                if (!kept[(y / patch) * VitModel.Grid + x / patch])
                {
                    int grey = (int)Math.Round(0.25 * (0.299 * r + 0.587 * g + 0.114 * b) + 0.75 * 215);
                    r = g = b = grey;
                }
                z[y][x] = [r, g, b];
            }
        }
        return z;
    }

    // The 64 patch entries of a 65-token attention row as an 8x8 grid; dropped patches (NaN) become gaps.
    private static double?[][] Grid(float[] row) =>
        Enumerable.Range(0, VitModel.Grid).Select(y => Enumerable.Range(0, VitModel.Grid)
            .Select(x => row[1 + y * VitModel.Grid + x] is var a && float.IsNaN(a) ? (double?)null : a).ToArray()).ToArray();

    private static string TokensPerLayer(CostReport c) => string.Join(" / ", c.Layers.Select(l => l.Tokens));
    private static string Pct(double x) => x.ToString("P1", Inv);
    private static string Giga(long flops) => (flops / 1e9).ToString(flops >= 1e12 ? "N0" : "F3", Inv) + " GFLOPs";
    internal static string Rank(DropRanking r) => r switch { DropRanking.LeastAttended => "least-attended", _ => r.ToString().ToLowerInvariant() };
    private static string MethodColor(string method) => method switch { "pyramid" => "#1f77b4", "fastv" => "#ff7f0e", _ => "#7f7f7f" };
    private static string RankSymbol(DropRanking r) => r switch { DropRanking.Attention => "circle", DropRanking.Random => "square", _ => "x" };
    private static string RankColor(DropRanking r) => r switch { DropRanking.Attention => "#1f77b4", DropRanking.Random => "#7f7f7f", _ => "#d62728" };
}
