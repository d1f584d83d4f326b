using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Data.Analysis;
using Microsoft.DotNet.Interactive.Formatting;
using Plotly.NET;
using Workbench.Engine.Costs;
using Workbench.Engine.LowBit;
using Workbench.Engine.Quantization;
using Workbench.Engine.Tensors;

namespace Workbench.Interactive.Charts;

/// <summary>One reference kernel timing from /work/shared/LOWBIT.md (bitnet.cpp and llama.cpp on this kind of machine).</summary>
public sealed record ReferenceTiming(string Kernel, LowBitFormat? Comparable, double BitsPerWeight, int Rows, int Cols, double Us1Thread, double Us2Threads);

/// <summary>
/// Median microseconds of the reference CPU kernels, measured on an AMD EPYC Zen 5 with 2 cores (AVX-512, VNNI, VBMI),
/// weights cold, activation quantization included (LOWBIT.md). <see cref="ReferenceTiming.Comparable"/> is our format
/// doing the same job (TL1 has none: bitnet.cpp's TL1 is an Arm kernel).
/// </summary>
public static class LowBitReference
{
    /// <summary>Read bandwidth of that machine, GB/s, on one and two threads.</summary>
    public const double ReadGBps1Thread = 27, ReadGBps2Threads = 55;

    private static readonly (int Rows, int Cols)[] Shapes = [(6912, 2560), (2560, 6912), (4096, 4096), (11008, 4096), (4096, 11008)];

    public static IReadOnlyList<ReferenceTiming> Timings { get; } = Build(
    [
        ("bitnet.cpp I2_S, one row at a time", LowBitFormat.I2S, 2.00, [221, 225, 219, 602, 783], [114, 131, 132, 333, 414]),
        ("bitnet.cpp I2_S, 4 interleaved rows", null, 2.00, [199, 516, 192, 516, 942], [129, 269, 115, 270, 510]),
        ("bitnet.cpp TL2", LowBitFormat.TL2, 1.67, [308, 319, 294, 772, 771], [181, 206, 184, 415, 410]),
        ("llama.cpp TQ2_0", null, 2.06, [324, 321, 349, 964, 805], [289, 225, 235, 613, 529]),
        ("llama.cpp TQ1_0", null, 1.69, [678, 644, 553, 1742, 1494], [439, 365, 376, 991, 899]),
        ("llama.cpp Q8_0", LowBitFormat.Int8, 8.5, [745, 767, 709, 1942, 2224], [516, 504, 493, 1294, 1452]),
        ("llama.cpp F16", null, 16, [1438, 1808, 1252, 3543, 3859], [843, 936, 792, 2066, 2342]),
        ("llama.cpp F32", LowBitFormat.F32, 32, [3468, 3646, 3452, 8693, 9220], [1918, 1937, 1819, 4832, 5008]),
    ]);

    private static List<ReferenceTiming> Build((string Kernel, LowBitFormat? Comparable, double Bits, double[] One, double[] Two)[] rows) =>
        rows.SelectMany(r => Shapes.Select((s, i) => new ReferenceTiming(r.Kernel, r.Comparable, r.Bits, s.Rows, s.Cols, r.One[i], r.Two[i]))).ToList();

    /// <summary>The reference timings of one shape (empty when LOWBIT.md did not measure it).</summary>
    public static IReadOnlyList<ReferenceTiming> For(int rows, int cols) => Timings.Where(t => t.Rows == rows && t.Cols == cols).ToList();

    /// <summary>The reference timing of the kernel comparable to <paramref name="format"/>, if measured on this shape.</summary>
    public static ReferenceTiming? Comparable(LowBitFormat format, int rows, int cols) =>
        Timings.FirstOrDefault(t => t.Comparable == format && t.Rows == rows && t.Cols == cols);

    public static DataFrame ToDataFrame(int rows, int cols)
    {
        var list = For(rows, cols);
        return new DataFrame(
            new StringDataFrameColumn("kernel", list.Select(t => t.Kernel)),
            new DoubleDataFrameColumn("bits_per_weight", list.Select(t => t.BitsPerWeight)),
            new DoubleDataFrameColumn("us_1_thread", list.Select(t => t.Us1Thread)),
            new DoubleDataFrameColumn("us_2_threads", list.Select(t => t.Us2Threads)),
            new DoubleDataFrameColumn("floor_us_1_thread", list.Select(t => t.BitsPerWeight / 8 * rows * (double)cols / (ReadGBps1Thread * 1e3))),
            new StringDataFrameColumn("our_format", list.Select(t => t.Comparable?.ToString() ?? "")));
    }
}

/// <summary>
/// Formatters and charts for ternary low-bit inference: the <c>#!bitnet</c> report (lossless check, quality cost,
/// bytes), the <c>#!gemv</c> comparison (measured time against the bandwidth floor and the reference kernels), the
/// absmean histogram of a weight matrix, the I2_S byte layout, the TL1/TL2 tables and the per-token cost model.
/// </summary>
public static class LowBitCharts
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    internal static void RegisterFormatters()
    {
        Html.Register<TernaryReport>(r => ReportSummary(r) + Plot.Html(Bytes(r)) + Html.Table(r.ToDataFrame(), 64));
        Html.Register<GemvComparison>(g => GemvSummary(g) + Plot.Html(Gemv(g)) + Html.Table(g.ToDataFrame()));
        Html.Register<I2SBlockView>(I2SHtml);
        Html.Register<LookupTableView>(LookupHtml);
        Html.Register<TernaryWeights>(t =>
        {
            var (minus, zero, plus) = Fractions(t);
            return Html.Summary($"Ternary weights {t.Rows} x {t.Cols}", [("scale s = mean |W|", G(t.Scale)),
                ("-1 / 0 / +1", $"{Pct(minus)} / {Pct(zero)} / {Pct(plus)}")]);
        });
        Html.RegisterRecord<GemvProbeResult>(title: r => $"GEMV {r.Format} {r.Rows} x {r.Cols}, {r.Threads} thread(s), {r.Path}");
        Html.RegisterRecord<LosslessReport>(title: r => $"Lossless check ({r.Format}): {(r.Lossless ? "yes" : "NO")}");
        Html.RegisterRecord<DecoderQuality>(title: q => $"{q.Model} ternary {q.Format} against fp32");
        Html.RegisterRecord<EncoderQuality>(title: q => $"{q.Model} ternary {q.Format} against fp32");
        Html.RegisterRecord<TernaryLayer>();
        Html.RegisterRecord<LowBitCost>();
        Html.RegisterRecord<GemvCost>();
        Html.RegisterRecord<TokenCost>();
        Html.RegisterRecord<DecodeMeasurement>();
        Html.RegisterRecord<BitNetTokenCost>();
        Html.RegisterRecord<ReferenceTiming>();
    }

    // ---- charts a notebook can call directly ----

    /// <summary>
    /// Absmean quantization of one matrix: the histogram of W/s with the rounding thresholds at +-0.5 (inside: 0) and
    /// the clamp beyond +-1.5, and the share of -1, 0, +1. <paramref name="weights"/> is the fp32 matrix that
    /// <paramref name="ternary"/> was quantized from.
    /// </summary>
    public static GenericChart AbsMean(ReadOnlySpan<float> weights, TernaryWeights ternary, string name = "W")
    {
        ArgumentNullException.ThrowIfNull(ternary);
        if (weights.Length != ternary.Values.Length)
            throw new ArgumentException($"weights has {weights.Length} values, the ternary matrix {ternary.Values.Length}.", nameof(weights));
        var scaled = new double[weights.Length];
        for (int i = 0; i < scaled.Length; i++) scaled[i] = weights[i] / ternary.Scale;
        var (minus, zero, plus) = Fractions(ternary);
        var hist = Plot.Trace("histogram", ("x", scaled), ("name", $"{name} / s"), ("xbins", new { size = 0.05 }),
            ("marker", new { color = "#4c78a8" }), ("hovertemplate", "W/s in %{x}<br>%{y} weights<extra></extra>"));
        var bars = Plot.Trace("bar", ("x", new[] { "-1", "0", "+1" }), ("y", new[] { minus, zero, plus }), ("name", "ternary share"),
            ("text", new[] { Pct(minus), Pct(zero), Pct(plus) }), ("textposition", "outside"), ("xaxis", "x2"), ("yaxis", "y2"),
            ("marker", new { color = new[] { "#e45756", "#bab0ac", "#54a24b" } }), ("showlegend", false));
        double max = scaled.Length == 0 ? 2 : Math.Max(2, Math.Min(6, scaled.Max(Math.Abs)));
        var shapes = new List<object>();
        foreach (var x in new[] { -1.5, -0.5, 0.5, 1.5 })
            shapes.Add(new { type = "line", xref = "x", yref = "paper", x0 = x, x1 = x, y0 = 0, y1 = 1,
                line = new { color = Math.Abs(x) < 1 ? "#333" : "#999", dash = "dash", width = 1 } });
        var layout = new Layout();
        layout.SetProperty("title", new { text = $"{name}: {ternary.Rows} x {ternary.Cols}, s = mean|W| = {G(ternary.Scale)}; round(W/s) clamped to -1..1", font = new { size = 14 } });
        layout.SetProperty("xaxis", new { domain = new[] { 0.0, 0.68 }, title = new { text = "W / s  (dashed: rounding thresholds +-0.5; beyond +-1.5 the clamp bites)" }, range = new[] { -max, max }, anchor = "y" });
        layout.SetProperty("yaxis", new { title = new { text = "weights" }, anchor = "x" });
        layout.SetProperty("xaxis2", new { domain = new[] { 0.78, 1.0 }, title = new { text = "ternary value" }, anchor = "y2" });
        layout.SetProperty("yaxis2", new { tickformat = ".0%", range = new[] { 0.0, Math.Max(minus, Math.Max(zero, plus)) * 1.25 }, anchor = "x2" });
        layout.SetProperty("shapes", shapes);
        layout.SetProperty("height", 360);
        layout.SetProperty("showlegend", false);
        layout.SetProperty("margin", new { l = 60, r = 20, t = 50, b = 60 });
        return Plot.Figure([hist, bars], layout);
    }

    /// <summary>
    /// Measured median per format (log axis) beside its bandwidth floor (weight bytes / read bandwidth) and, when
    /// LOWBIT.md measured this shape, the comparable bitnet.cpp / llama.cpp kernel on the same thread count.
    /// </summary>
    public static GenericChart Gemv(GemvComparison g)
    {
        ArgumentNullException.ThrowIfNull(g);
        var names = g.Results.Select(r => $"{r.Format} ({F(r.BitsPerWeight, 2)} b/w)").ToArray();
        var traces = new List<Trace>
        {
            Bars("measured here (median)", names, g.Results.Select(r => (double?)r.MedianUs).ToArray(), "#4c78a8",
                g.Results.Select(r => $"{F(r.MedianUs, 0)} us, {F(r.WeightGBps, 1)} GB/s").ToArray(), "none"),
            Bars($"bandwidth floor at {F(g.ReadGBps, 1)} GB/s{(g.BandwidthMeasured ? " (measured)" : "")}", names,
                g.Results.Select(r => (double?)g.FloorUs(r.WeightBytes)).ToArray(), "#bab0ac",
                g.Results.Select(r => $"{F(g.FloorUs(r.WeightBytes), 0)} us").ToArray(), "none"),
        };
        if (g.Threads <= 2 && g.Results.Any(r => LowBitReference.Comparable(r.Format, g.Rows, g.Cols) is not null))
        {
            var refs = g.Results.Select(r => LowBitReference.Comparable(r.Format, g.Rows, g.Cols)).ToArray();
            traces.Add(Bars($"reference kernel, {g.Threads} thread(s) (LOWBIT.md)", names,
                refs.Select(t => t is null ? (double?)null : g.Threads == 1 ? t.Us1Thread : t.Us2Threads).ToArray(), "#f58518",
                refs.Select(t => t is null ? "" : $"{t.Kernel}: {F(g.Threads == 1 ? t.Us1Thread : t.Us2Threads, 0)} us").ToArray(), "none"));
        }
        var layout = new Layout();
        layout.SetProperty("title", new { text = $"GEMV {g.Rows} x {g.Cols}, {g.Threads} thread(s), cold weights: time per call", font = new { size = 14 } });
        layout.SetProperty("barmode", "group");
        layout.SetProperty("yaxis", new { title = new { text = "microseconds (log scale; lower is better)" }, type = "log" });
        layout.SetProperty("height", 420);
        layout.SetProperty("legend", new { orientation = "h", y = -0.18 });
        return Plot.Figure(traces, layout);
    }

    /// <summary>Model bytes, fp32 against ternary: the quantized linears and what stays fp32 (embeddings, norms, head), stacked.</summary>
    public static GenericChart Bytes(TernaryReport r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var x = new[] { "fp32", $"ternary {r.Format}" };
        var linear = Bars("linear weights (quantized)", x, [r.Fp32LinearBytes / 1e6, r.PackedLinearBytes / 1e6], "#4c78a8",
            [$"{F(r.Fp32LinearBytes / 1e6, 3)} MB", $"{F(r.PackedLinearBytes / 1e6, 3)} MB ({F(r.LinearCompression, 1)}x smaller)"]);
        var kept = Bars("kept fp32 (embeddings, norms, biases, head)", x, [r.KeptFp32Bytes / 1e6, r.KeptFp32Bytes / 1e6], "#bab0ac",
            [$"{F(r.KeptFp32Bytes / 1e6, 3)} MB", $"{F(r.KeptFp32Bytes / 1e6, 3)} MB"]);
        var layout = new Layout();
        layout.SetProperty("title", new { text = $"{r.Model}: weight memory, fp32 against ternary {r.Format}", font = new { size = 14 } });
        layout.SetProperty("barmode", "stack");
        layout.SetProperty("yaxis", new { title = new { text = "MB" } });
        layout.SetProperty("height", 340);
        layout.SetProperty("legend", new { orientation = "h", y = -0.15 });
        return Plot.Figure([linear, kept], layout);
    }

    /// <summary>Energy per decode token of the 2B-shaped model, DRAM against arithmetic, per format (log axis).</summary>
    public static GenericChart TokenEnergy(IReadOnlyList<BitNetTokenCost> costs)
    {
        ArgumentNullException.ThrowIfNull(costs);
        if (costs.Count == 0) throw new ArgumentException("no costs", nameof(costs));
        var x = costs.Select(c => $"{c.Format} (head {c.HeadFormat})").ToArray();
        var layout = new Layout();
        layout.SetProperty("title", new { text = "BitNet b1.58 2B4T shapes, one decode token: energy (Horowitz 2014, 45 nm)", font = new { size = 14 } });
        layout.SetProperty("barmode", "group");
        layout.SetProperty("yaxis", new { title = new { text = "microjoules per token (log scale)" }, type = "log" });
        layout.SetProperty("height", 380);
        layout.SetProperty("legend", new { orientation = "h", y = -0.18 });
        return Plot.Figure([
            Bars("DRAM: reading the weights", x, costs.Select(c => (double?)c.MemoryUj).ToArray(), "#4c78a8", costs.Select(c => $"{F(c.MemoryUj, 0)} uJ").ToArray()),
            Bars("arithmetic", x, costs.Select(c => (double?)c.ArithmeticUj).ToArray(), "#f58518", costs.Select(c => $"{F(c.ArithmeticUj, 0)} uJ").ToArray()),
        ], layout);
    }

    // ---- HTML ----

    private static string ReportSummary(TernaryReport r)
    {
        var rows = new List<(string, string)>
        {
            ("model", $"{r.Model} ({r.Kind}), {r.Layers.Count} linear layers -> ternary {r.Format}, kernels on {r.Path}, {r.Threads} thread(s)"),
            ("lossless", r.Lossless.Lossless
                ? $"yes: int32 sums equal the scalar reference on {r.Lossless.Layers.FirstOrDefault()?.Paths} in every layer; outputs equal the dequantized fp32 computation within {r.MaxRelativeError.ToString("E1", Inv)} (relative)"
                : $"NO: {string.Join(", ", r.Lossless.Layers.Where(l => !l.Passed).Select(l => $"{l.Name} ({l.IntegerMismatches} int mismatches, rel {l.MaxRelativeError.ToString("E1", Inv)})"))}"),
            ("zero weights", Pct(r.ZeroFraction)),
            ("linear weights", $"{F(r.Fp32LinearBytes / 1e6, 3)} MB fp32 -> {F(r.PackedLinearBytes / 1e6, 3)} MB packed ({F(r.LinearCompression, 1)}x smaller)"),
            ("whole model", $"{F(r.ModelBytesFp32 / 1e6, 3)} MB -> {F(r.ModelBytesPacked / 1e6, 3)} MB (embeddings, norms, biases, head kept fp32: {F(r.KeptFp32Bytes / 1e6, 3)} MB)"),
        };
        if (r.Decoder is { } d)
        {
            rows.Add(("quality (held-out TinyStories)", $"{d.Sequences} texts, {d.Positions} positions"));
            rows.Add(("perplexity", $"{F(d.PerplexityFp32, 2)} fp32 -> {F(d.Perplexity, 2)} ternary"));
            rows.Add(("KL(fp32 || ternary)", $"{F(d.MeanKl, 3)} nats per token"));
            rows.Add(("top-1 agreement", Pct(d.Top1Agreement)));
        }
        if (r.Classifier is { } c)
        {
            rows.Add(("quality (held-out images)", $"{c.Images} images"));
            if (c.Accuracy is { } acc && c.AccuracyFp32 is { } fp) rows.Add(("top-1 accuracy", $"{Pct(fp)} fp32 -> {Pct(acc)} ternary"));
            rows.Add(("agreement with fp32", Pct(c.Agreement)));
            if (c.MeanKl is { } ckl) rows.Add(("KL(fp32 || ternary)", $"{F(ckl, 4)} nats per image"));
        }
        if (r.VisionLanguage is { } v)
        {
            rows.Add(("quality (held-out images, seeded prompts)", $"{v.Prompts} prompts, {v.Positions} text positions"));
            rows.Add(("KL(fp32 || ternary)", $"{F(v.MeanKl, 4)} nats per token"));
            rows.Add(("top-1 agreement", Pct(v.Top1Agreement)));
        }
        if (r.Encoder is { } e)
        {
            rows.Add(("quality (Pride and Prejudice sentences)", $"{e.Sentences} sentences"));
            rows.Add(("embedding cosine to fp32", $"mean {F(e.MeanCosine, 3)}, min {F(e.MinCosine, 3)}"));
        }
        return Html.Summary($"{r.Model}: ternary post-training quantization ({r.Format})", rows);
    }

    private static string GemvSummary(GemvComparison g)
    {
        var rows = new List<(string, string)>
        {
            ("shape", $"{g.Rows} x {g.Cols} (rows x cols), {g.Threads} thread(s), {g.Results[0].Runs} timed runs per format, weights cold (pool > last-level cache)"),
            ("read bandwidth", $"{F(g.ReadGBps, 1)} GB/s {(g.BandwidthMeasured ? "measured now" : "given")}; the floor of a format is its weight bytes / this bandwidth"),
        };
        foreach (var r in g.Results)
            rows.Add((r.Format.ToString(), $"median {F(r.MedianUs, 1)} us (min {F(r.MinUs, 1)}), {F(g.TimesFloor(r), 2)}x its floor of {F(g.FloorUs(r.WeightBytes), 1)} us, {F(r.Gops, 1)} GOPS, {F(r.WeightGBps, 1)} GB/s"));
        rows.Add(("note", "timings vary with machine load; BenchmarkDotNet (bench/) gives the numbers of record"));
        return Html.Summary($"GEMV timings: {string.Join(", ", g.Results.Select(r => r.Format))}", rows);
    }

    private static string I2SHtml(I2SBlockView v)
    {
        var sb = new StringBuilder(Html.Summary($"I2_S row {v.Row}, block {v.Block}: 128 weights in 32 bytes", [
            ("layout", "byte g holds column g in bits 7:6, g + 32 in 5:4, g + 64 in 3:2, g + 96 in 1:0; code = weight + 1"),
            ("scale", $"one fp32 scale for the whole tensor: s = {G(v.Scale)}")]));
        sb.Append($"<table class=\"workbench-table\" style=\"{TableStyle}\"><thead><tr>");
        foreach (var h in new[] { "byte g", "hex", "bits 7:6 | 5:4 | 3:2 | 1:0", "columns", "codes", "weights" })
            sb.Append($"<th style=\"{CellStyle};background:#f3f3f3\">{Encode(h)}</th>");
        sb.Append("</tr></thead><tbody>");
        foreach (var b in v.Bytes)
        {
            var bits = Convert.ToString(b.Value, 2).PadLeft(8, '0');
            sb.Append("<tr>")
              .Append($"<td style=\"{CellStyle}\">{b.Index}</td>")
              .Append($"<td style=\"{CellStyle}\">0x{b.Value:X2}</td>")
              .Append($"<td style=\"{CellStyle}\">{bits[..2]} | {bits[2..4]} | {bits[4..6]} | {bits[6..]}</td>")
              .Append($"<td style=\"{CellStyle}\">{string.Join(", ", b.Columns)}</td>")
              .Append($"<td style=\"{CellStyle}\">{string.Join(", ", b.Codes)}</td>")
              .Append($"<td style=\"{CellStyle}\">{string.Join(", ", b.Weights.Select(w => w.ToString("+0;-0;0", Inv)))}</td>")
              .Append("</tr>");
        }
        return sb.Append("</tbody></table>").ToString();
    }

    private static string LookupHtml(LookupTableView v)
    {
        var names = v.Format == LowBitFormat.TL1 ? new[] { "b0", "b1" } : ["b0", "b1", "b2"];
        string unit = v.Format == LowBitFormat.TL1 ? "pair" : "triplet";
        int first = v.Group * v.Activations.Length;
        var sb = new StringBuilder(Html.Summary($"{v.Format} table of activation {unit} {v.Group} (columns {first}..{first + v.Activations.Length - 1})", [
            ("activations", string.Join(", ", names.Select((n, i) => $"{n} = {v.Activations[i]}"))),
            ("index", v.Format == LowBitFormat.TL1
                ? "3 w0 + w1 + 4 (4 bits per weight pair); all 9 entries"
                : "|9 w0 + 3 w1 + w2| (4 bits) plus a sign bit per triplet; the 14 entries cover all 27 triplets, the sign negates"),
            ("every entry matches its formula", v.Entries.All(e => e.TableValue == e.Expected) ? "yes" : "NO")]));
        sb.Append($"<table class=\"workbench-table\" style=\"{TableStyle}\"><thead><tr>");
        foreach (var h in new[] { "index", "weights", "entry", "table value (int16)", "recomputed" })
            sb.Append($"<th style=\"{CellStyle};background:#f3f3f3\">{Encode(h)}</th>");
        sb.Append("</tr></thead><tbody>");
        foreach (var e in v.Entries)
            sb.Append("<tr>")
              .Append($"<td style=\"{CellStyle}\">{e.Index}</td>")
              .Append($"<td style=\"{CellStyle}\">({string.Join(", ", e.Weights.Select(w => w.ToString("+0;-0;0", Inv)))})</td>")
              .Append($"<td style=\"{CellStyle}\">{Encode(Formula(e.Weights))}</td>")
              .Append($"<td style=\"{CellStyle}\">{e.TableValue}</td>")
              .Append($"<td style=\"{CellStyle}\">{e.Expected}</td>")
              .Append("</tr>");
        return sb.Append("</tbody></table>").ToString();
    }

    /// <summary>An entry's sum as a formula of the activations, e.g. "b0-b2".</summary>
    private static string Formula(int[] w)
    {
        var terms = w.Select((x, i) => x switch { 1 => $"+b{i}", -1 => $"-b{i}", _ => "" }).Where(s => s.Length > 0).ToList();
        if (terms.Count == 0) return "0";
        var s = string.Concat(terms);
        return s.StartsWith('+') ? s[1..] : s;
    }

    // ---- plumbing ----

    private const string TableStyle = "border-collapse:collapse;font-family:monospace;font-size:12px";
    private const string CellStyle = "border:1px solid #ccc;padding:2px 6px;text-align:right";

    internal static (double Minus, double Zero, double Plus) Fractions(TernaryWeights t)
    {
        long minus = 0, zero = 0, plus = 0;
        foreach (var v in t.Values) { if (v < 0) minus++; else if (v == 0) zero++; else plus++; }
        double n = Math.Max(1, t.Values.Length);
        return (minus / n, zero / n, plus / n);
    }

    private static Trace Bars(string name, string[] x, double?[] y, string color, string[] text, string textPosition = "auto") =>
        Plot.Trace("bar", ("name", name), ("x", x), ("y", y), ("text", text), ("textposition", textPosition),
            ("marker", new { color }), ("hovertemplate", name + "<br>%{x}: %{text}<extra></extra>"));

    private static Trace Bars(string name, string[] x, double[] y, string color, string[] text, string textPosition = "auto") =>
        Bars(name, x, y.Select(v => (double?)v).ToArray(), color, text, textPosition);

    private static string F(double x, int digits) => double.IsFinite(x) ? x.ToString("F" + digits, Inv) : "n/a";
    private static string G(double x) => x.ToString("G4", Inv);
    private static string Pct(double x) => x.ToString("P1", Inv);
    private static string Encode(string s) => WebUtility.HtmlEncode(s);
}
