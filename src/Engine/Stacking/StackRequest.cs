using System.Globalization;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Quantization;
using Workbench.Engine.Redundancy;
using Workbench.Engine.Requests;
using Workbench.Engine.Text;
using Workbench.Engine.TokenDrop;

namespace Workbench.Engine.Stacking;

/// <summary>
/// One configuration measured: quality on the held-out windows against the full fp model, speed measured by wall clock,
/// and the cost model's prediction. Speed-ups are against the full model measured in the same interleaved runs:
/// measured = decode tokens/s ratio; predicted = the ratio of decode bytes per token (weights streamed plus keys and
/// values read: decode is memory bound), with the FLOPs ratio beside it.
/// </summary>
public sealed record StackStep(string Name, StackConfig Config,
    double Perplexity, double Kl, double Top1,
    double PrefillTokensPerSecond, double DecodeTokensPerSecond,
    double FlopsPerToken, long WeightBytesPerToken, double BytesPerToken, long KvCacheBytes, long KvCacheBytesPredicted,
    double EnergyJPerToken, double PrefillFlops,
    double MeasuredSpeedup, double PredictedSpeedup, double PredictedFlopsSpeedup,
    double MeasuredPrefillSpeedup, double PredictedPrefillSpeedup);

/// <summary>One order of applying the techniques: its path through the combinations and the KL-cost area (smaller keeps more quality).</summary>
public sealed record StackOrder(IReadOnlyList<string> Order, IReadOnlyList<StackStep> Path, double KlArea)
{
    public string Name => string.Join(" → ", Order);
}

/// <summary>
/// What <see cref="StackRequest"/> measured: the steps full, +drop, (+pyramid,) +ternary, each stacking one more
/// technique on the one before, and (when asked) every combination of the techniques.
/// </summary>
public sealed record StackResult(string Model, string Ternary, string TernaryKind, LowBitFormat Format,
    IReadOnlyList<ModuleRef> Dropped, IReadOnlyList<double> AttentionImportance, PyramidSchedule? Schedule,
    string HeldOut, int Windows, int Prompt, int Continuation, int Decode, int Runs, int Threads,
    IReadOnlyList<StackStep> Steps, IReadOnlyList<StackStep> Combinations)
{
    /// <summary>The last step's measured decode speed-up: the product of the per-step ratios.</summary>
    public double CompoundedMeasured => Steps[^1].MeasuredSpeedup;
    public double CompoundedPredicted => Steps[^1].PredictedSpeedup;

    /// <summary>
    /// Each technique's measured decode speed-up applied alone to the full model, multiplied: what the stack would give if
    /// the savings compounded independently (needs <see cref="Combinations"/>; null without them).
    /// </summary>
    public double? IndependentProductMeasured => Product(s => s.MeasuredSpeedup);
    public double? IndependentProductPredicted => Product(s => s.PredictedSpeedup);

    /// <summary>
    /// Every order of applying the techniques (needs <see cref="Combinations"/>): the path full -> one -> two -> all
    /// through the combinations, and the quality given up along it per unit of cost saved, the area
    /// sum_i (KL_(i-1) + KL_i) / 2 * (log2 s_i - log2 s_(i-1)) with s the predicted decode speed-up (the cost model's,
    /// so the ranking does not move with a shared machine's load). Every order ends at the same point; a smaller area
    /// keeps more quality while the cost falls. Best first.
    /// </summary>
    public IReadOnlyList<StackOrder> Orders()
    {
        if (Combinations.Count == 0) return [];
        var byName = Combinations.ToDictionary(c => c.Config);
        var techniques = byName.Keys.Single(c => c.Techniques.Count == byName.Keys.Max(k => k.Techniques.Count)).Techniques;
        IEnumerable<string[]> Permutations(string[] items) => items.Length <= 1 ? [items]
            : items.SelectMany((x, i) => Permutations(items.Where((_, j) => j != i).ToArray()).Select(rest => new[] { x }.Concat(rest).ToArray()));
        return Permutations(techniques.ToArray()).Select(order =>
        {
            var path = Enumerable.Range(0, order.Length + 1).Select(n =>
            {
                var set = order.Take(n).ToHashSet();
                return byName[new StackConfig(set.Contains("drop"), set.Contains("pyramid"), set.Contains("ternary"))];
            }).ToArray();
            double area = 0;
            for (int i = 1; i < path.Length; i++)
                area += (path[i - 1].Kl + path[i].Kl) / 2 * (Math.Log2(path[i].PredictedSpeedup) - Math.Log2(path[i - 1].PredictedSpeedup));
            return new StackOrder(order, path, area);
        }).OrderBy(o => o.KlArea).ToArray();
    }

    private double? Product(Func<StackStep, double> f)
    {
        var singles = Combinations.Where(c => c.Config.Techniques.Count == 1).ToList();
        return singles.Count == 0 ? null : singles.Aggregate(1.0, (p, s) => p * f(s));
    }
}

/// <summary>
/// <c>workbench stack</c> and <c>#!stack</c>: the three techniques stacked on one decoder, step by step: (1) drop the
/// <see cref="DropAttention"/> attention layers the importance analysis ranks least important (1 - cos, one shot, on the
/// calibration half of the held-out text), (2) PyramidDrop on the context tokens at <see cref="Pyramid"/> keeping
/// <see cref="Keep"/> per stage, (3) the ternary model on the packed kernels (<see cref="Format"/>) with the same drops
/// and schedule. After every step: perplexity, KL to the full fp model and top-1 agreement on the other half, prefill
/// and decode tokens/s measured, FLOPs, weight bytes, KV cache and energy per token predicted.
/// The ternary model: <see cref="Ternary"/>, by default austen-16L-ternary for austen-16L (trained ternary, stored
/// scales) and the post-training quantization of <see cref="Model"/> otherwise. Held-out text: Persuasion for the
/// austen-16L models (the novel they never saw), held-out TinyStories for the others, or <see cref="Corpus"/>.
/// No heal step inside the stack: notebook 04 heals the dropped model separately (TrainRequest with --drop) and measures what that buys.
/// </summary>
public sealed record StackRequest : IRequest<StackResult>
{
    /// <summary><c>--model</c>: the fp decoder, a bundled name or a path.</summary>
    public string? Model { get; init; }
    /// <summary><c>--ternary</c>: the ternary twin (trained ternary: its stored codes and scales; otherwise quantized after training).</summary>
    public string? Ternary { get; init; }
    /// <summary><c>--drop-attention</c>: K attention layers to drop (0..layers).</summary>
    public int? DropAttention { get; init; }
    /// <summary><c>--pyramid</c>: PyramidDrop stage boundaries, e.g. "4,8,12" (with <c>--keep</c>).</summary>
    public string? Pyramid { get; init; }
    /// <summary><c>--keep</c>: keep ratio per stage, one for all or one per boundary.</summary>
    public string? Keep { get; init; }
    /// <summary><c>--format</c>: the packed ternary format (default i2s).</summary>
    public string? Format { get; init; }
    /// <summary>A text file of held-out paragraphs (blank-line separated, or one per line); default by model.</summary>
    public string? Corpus { get; init; }
    /// <summary>Measure every combination of the techniques too (the frontier), not only the steps.</summary>
    public bool Combinations { get; init; }

    public int Windows { get; init; } = 8;
    public int Prompt { get; init; } = 192;
    public int Continuation { get; init; } = 64;
    public int Protect { get; init; } = StackBench.DefaultProtect;
    public int CalibrationSamples { get; init; } = 8;
    public int CalibrationSeq { get; init; } = 128;
    public int Decode { get; init; } = 64;
    public int Runs { get; init; } = 3;
    public int Seed { get; init; }
    public int Threads { get; init; } = 1;

    public const string DefaultTwinOf = "austen-16L";

    public void Validate() => Check();

    private (LowBitFormat Format, PyramidSchedule? Schedule, int K) Check()
    {
        if (string.IsNullOrWhiteSpace(Model)) throw new OptionException("--model", "--model is required (e.g. --model austen-16L)");
        int k = DropAttention ?? throw new OptionException("--drop-attention", "--drop-attention is required (e.g. --drop-attention 4)");
        if (k < 0) throw new OptionException("--drop-attention", $"--drop-attention {k} must be 0 or more");
        var format = string.IsNullOrWhiteSpace(Format) ? LowBitFormat.I2S : FormatOption.Parse(Format, "--format", ternaryOnly: true);
        PyramidSchedule? schedule = null;
        if (string.IsNullOrWhiteSpace(Pyramid) != string.IsNullOrWhiteSpace(Keep))
            throw new OptionException(string.IsNullOrWhiteSpace(Pyramid) ? "--pyramid" : "--keep", "--pyramid and --keep go together (e.g. --pyramid 4,8,12 --keep 0.5)");
        if (!string.IsNullOrWhiteSpace(Pyramid))
        {
            var layers = Parse.Layers(Pyramid, "--pyramid");
            var keep = Keep!.Split(',', StringSplitOptions.TrimEntries)
                .Select(x => Parse.Double(x, "--keep") ?? throw new OptionException("--keep", $"--keep '{Keep}' has an empty ratio")).ToArray();
            try { schedule = new PyramidSchedule(layers, keep); }
            catch (ArgumentException e) { throw new OptionException(e.ParamName == "keepRatios" ? "--keep" : "--pyramid", FirstLine(e.Message)); }
        }
        foreach (var (value, name) in new[] { (Windows, "windows"), (Continuation, "continuation"), (CalibrationSamples, "calibration samples"), (Decode, "decode tokens"), (Runs, "runs"), (Threads, "threads") })
            if (value <= 0) throw new OptionException("--" + name.Replace(' ', '-'), $"{name} must be positive, not {value}");
        if (Prompt < Protect + 2) throw new OptionException("--prompt", $"a prompt of {Prompt} tokens leaves no context to drop around {Protect} protected tokens");
        if (Corpus is not null && !File.Exists(Corpus)) throw new OptionException("--corpus", $"--corpus '{Corpus}' does not exist");
        return (format, schedule, k);
    }

    public StackResult Run(IProgress<RunProgress>? progress = null, CancellationToken cancel = default)
    {
        var (format, schedule, k) = Check();
        const int stages = 5;
        var fp = ModelHub.Load(Model!) as Decoder ?? throw new OptionException("--model", $"--model {Model}: stacking needs a decoder (a Llama-family model)");
        var config = fp.Config;
        if (k > config.Layers) throw new OptionException("--drop-attention", $"--drop-attention {k}: '{fp.Name}' has {config.Layers} attention layers");
        if (schedule is not null)
        {
            try { schedule.Validate(config.Layers); }
            catch (ArgumentException e) { throw new OptionException("--pyramid", FirstLine(e.Message)); }
        }
        if (Prompt + Continuation > config.MaxSeq)
            throw new OptionException("--prompt", $"prompt {Prompt} + continuation {Continuation} exceed '{fp.Name}''s {config.MaxSeq} positions");

        string? twin = Ternary ?? (fp.Name.Equals(DefaultTwinOf, StringComparison.OrdinalIgnoreCase) ? BundledTernary.Name : null);
        var tDecoder = twin is null ? fp : ModelHub.Load(twin) as Decoder ?? throw new OptionException("--ternary", $"--ternary {twin}: not a decoder");
        var tc = tDecoder.Config;
        if (tc.Layers != config.Layers || tc.Dim != config.Dim || tc.Vocab != config.Vocab || tc.Heads != config.Heads || tc.KvDim != config.KvDim || tc.MlpDim != config.MlpDim)
            throw new OptionException("--ternary", $"--ternary {tDecoder.Name} is not shaped like {fp.Name} ({tc.Layers} layers x {tc.Dim}, vocabulary {tc.Vocab}; want {config.Layers} x {config.Dim}, {config.Vocab})");
        using var kernels = TernaryModel.FromStoredOrQuantize(tDecoder.Model, format, Threads, out bool stored);
        progress?.Report(new RunProgress("ternary kernels", 0, stages, stored ? $"{tDecoder.Name}: stored scales" : $"{tDecoder.Name}: post-training quantization"));
        var ternaryModel = tDecoder.Model.WithLinear(kernels);

        var (calibration, windows, heldOut) = Texts(fp);
        cancel.ThrowIfCancellationRequested();
        progress?.Report(new RunProgress("importance", 1, stages, calibration.ToString()));
        var plan = LayerDropper.Plan(fp.Model, calibration.Sequences, Granularity.Attention, k, DropStrategy.OneShot, cancel: cancel);
        var importance = plan.Scores[0].Attention.ToArray();

        var bench = new StackBench(fp.Model, ternaryModel, format, plan.Skips, schedule, Protect, Threads);
        var steps = new List<StackConfig> { StackConfig.Full, new(true, false, false) };
        if (schedule is not null) steps.Add(new(true, true, false));
        steps.Add(new(true, schedule is not null, true));
        var configs = Combinations ? StackConfig.All(schedule is not null) : steps;

        progress?.Report(new RunProgress("quality", 2, stages, $"{windows.Count} windows of {Prompt} + {Continuation} tokens"));
        var reference = bench.Reference(windows, Prompt);
        var quality = configs.Select(c => bench.Quality(c, windows, Prompt, reference, cancel)).ToArray();
        progress?.Report(new RunProgress("speed", 3, stages, $"{configs.Count} configurations x {Runs} runs, interleaved"));
        var prompt = windows[0][..Prompt];
        var speed = bench.Speeds(configs, prompt, Decode, Runs, cancel);

        var full = Array.IndexOf(configs.ToArray(), StackConfig.Full);
        var fullCost = bench.PredictDecode(StackConfig.Full, Prompt, Decode);
        double fullPrefillFlops = bench.PredictPrefillFlops(StackConfig.Full, Prompt);
        var measured = configs.Select((c, i) =>
        {
            var cost = bench.PredictDecode(c, Prompt, Decode);
            double prefillFlops = bench.PredictPrefillFlops(c, Prompt);
            var (q, s) = (quality[i], speed[i]);
            return new StackStep(c.Name, c, q.Perplexity, q.Kl, q.Top1, s.PrefillTokensPerSecond, s.DecodeTokensPerSecond,
                cost.FlopsPerToken, cost.WeightBytesPerToken, cost.BytesPerToken, s.KvCacheBytes, cost.KvCacheBytes, cost.EnergyJPerToken, prefillFlops,
                s.DecodeTokensPerSecond / speed[full].DecodeTokensPerSecond, fullCost.BytesPerToken / cost.BytesPerToken,
                fullCost.FlopsPerToken / cost.FlopsPerToken,
                s.PrefillTokensPerSecond / speed[full].PrefillTokensPerSecond, fullPrefillFlops / prefillFlops);
        }).ToArray();
        string[] stepNames = ["full", "+drop", schedule is null ? "+ternary" : "+pyramid", "+ternary"];
        var stepResults = steps.Select((c, i) => measured[Array.IndexOf(configs.ToArray(), c)] with { Name = stepNames[i] }).ToArray();
        progress?.Report(new RunProgress("done", stages, stages));
        return new StackResult(fp.Name, tDecoder.Name, stored ? "trained ternary (stored scales)" : "post-training quantization (absmean)", format,
            plan.Dropped.OrderBy(m => m.Layer).ToArray(), importance, schedule, heldOut, windows.Count, Prompt, Continuation, Decode, Runs, Threads,
            stepResults, Combinations ? measured : []);
    }

    /// <summary>
    /// The held-out text cut for <paramref name="fp"/>: the calibration half of its documents (ranks the attention
    /// layers) and windows of <see cref="Prompt"/> + <see cref="Continuation"/> tokens from the other half (measure).
    /// </summary>
    public (TokenSamples Calibration, IReadOnlyList<int[]> Windows, string HeldOut) Texts(Decoder fp)
    {
        ArgumentNullException.ThrowIfNull(fp);
        var (corpus, heldOut) = HeldOut(fp);
        var split = corpus.Split(Seed);
        var task = TextTask.Of(fp);
        var calibration = split.Calibration(task.Tokenize, CalibrationSamples, Math.Min(CalibrationSeq, fp.Config.MaxSeq), pack: true);
        return (calibration, split.Evaluation(task.Tokenize, Windows, Prompt + Continuation, pack: true).Sequences, heldOut);
    }

    /// <summary>The held-out paragraphs: <see cref="Corpus"/>, Persuasion for the austen-16L models, else TinyStories.</summary>
    private (Corpus Corpus, string Description) HeldOut(Decoder fp)
    {
        string path = Corpus ?? (fp.Name.StartsWith(DefaultTwinOf, StringComparison.OrdinalIgnoreCase) ? Bundled.Persuasion : Bundled.TinyStories);
        var text = File.ReadAllText(path).Replace("\r\n", "\n");
        // One paragraph per line (the bundled novels) is read as blank-line-separated paragraphs.
        if (!text.Contains("\n\n", StringComparison.Ordinal)) text = text.Replace("\n", "\n\n");
        return (Text.Corpus.FromText(text, path), Path.GetFileName(path));
    }

    private static string FirstLine(string message)
    {
        int i = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        return (i >= 0 ? message[..i] : message).Split('\n')[0].Trim();
    }
}
