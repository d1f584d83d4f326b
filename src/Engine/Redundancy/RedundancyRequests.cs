using System.Runtime.CompilerServices;
using Workbench.Engine.Models;
using Workbench.Engine.Requests;
using Workbench.Engine.Text;

namespace Workbench.Engine.Redundancy;

/// <summary>
/// The options `redundancy` and `drop` share (named as the CLI and the magics name them): the model, the granularity,
/// and the calibration set (--samples, default 8 for decoders / 16 for encoders; --seq, default 128 / 64; --seed; --corpus).
/// </summary>
public abstract record CalibrationRequest
{
    /// <summary>--model: a bundled name or a path.</summary>
    public required string Model { get; init; }
    /// <summary>--granularity: block, attention, mlp or joint.</summary>
    public required string Granularity { get; init; }
    public int? Samples { get; init; }
    public int? Seq { get; init; }
    public int Seed { get; init; }
    public string? Corpus { get; init; }
    /// <summary>--weights: stored (default) or fp32.</summary>
    public string? Weights { get; init; }

    /// <summary>The options checked before any model is loaded: the granularity, --weights, --samples, --seq, --corpus, and that --model names something.</summary>
    private protected (Granularity Granularity, WeightStorage Storage) CheckOptions()
    {
        var g = Names.ParseGranularity(Granularity, "--granularity");
        if (string.IsNullOrWhiteSpace(Model)) throw new OptionException("--model", "--model is required");
        var storage = WeightStorageOption.Parse(Weights);
        RedundancyInputs.CheckOptions(Samples, Seq, Corpus);
        if (!ModelHub.BundledNames.Contains(Model, StringComparer.OrdinalIgnoreCase) && !File.Exists(Model) && !Directory.Exists(Model))
            throw new OptionException("--model", $"--model '{Model}' is neither a bundled model ({string.Join(", ", ModelHub.BundledNames)}) nor an existing file or folder");
        return (g, storage);
    }

    // The model a request's Validate loaded, reused by the same request's Run (keyed by reference: a `with` copy, whose
    // options may differ, loads its own), so Validate then Run loads a checkpoint once.
    private static readonly ConditionalWeakTable<CalibrationRequest, LoadedModel> Loaded = new();

    /// <summary>The checked options with the model loaded (once per request): the parsed granularity and the model with its calibration options.</summary>
    private protected (Granularity Granularity, RedundancyInputs.Checked Inputs) CheckCalibration()
    {
        var (g, storage) = CheckOptions();
        var model = Loaded.TryGetValue(this, out var m) ? m : ModelHub.Load(Model, storage: storage);
        var check = RedundancyInputs.Check(model, Samples, Seq, Corpus);
        Loaded.AddOrUpdate(this, model);
        return (g, check);
    }
}

/// <summary>
/// `redundancy`: the importance (1 - cos(input, output)) of every block, attention and MLP layer on calibration text
/// (He et al. 2024), ranked at <see cref="CalibrationRequest.Granularity"/>.
/// <para>A decoder without a tokenizer (a random-weight checkpoint from <c>bench make-model</c>, a Hugging Face folder of
/// weights only) is calibrated on seeded random token ids uniform over its vocabulary (said so in the result's
/// <see cref="RedundancyAnalysis.RandomTokens"/>); asking it for text (--corpus) is refused, naming the option. The
/// blocks run layer by layer (<see cref="Importance"/>), so a model kept as stored has about one layer resident.</para>
/// </summary>
public sealed record RedundancyRequest : CalibrationRequest, IRequest<RedundancyAnalysis>
{
    /// <summary>Checks the options (those that need no model first), loading the model once for this request's Run.</summary>
    public void Validate() => Check();

    private (Granularity G, RedundancyInputs.Checked Inputs) Check()
    {
        var (g, check) = CheckCalibration();
        if (check.Task.Loaded is Decoder { HasTokenizer: false } d && Corpus is not null)
            throw new OptionException("--corpus", $"--corpus '{Corpus}': '{d.Name}' has no tokenizer (no tokenizer.json, tokenizer.model or GGUF tokenizer metadata), so text cannot be turned into its token ids; leave --corpus out to calibrate on seeded random token ids");
        return (g, check);
    }

    public RedundancyAnalysis Run(IProgress<RunProgress>? progress = null, CancellationToken cancel = default)
    {
        var (g, check) = Check();
        var (loaded, split, calibration, random) = check.Task.Loaded is Decoder { HasTokenizer: false } d
            ? (d, null, RedundancyInputs.RandomTokens(d.Config.Vocab, check.Samples, check.Seq, Seed), $"calibration: {check.Samples} x {check.Seq} seeded random token ids, uniform over the vocabulary of {d.Config.Vocab} (seed {Seed}): '{d.Name}' has no tokenizer")
            : check.Prepare(Seed) is var inputs ? ((LoadedModel)inputs.Model, (CorpusSplit?)inputs.Split, inputs.Calibration, (string?)null) : default;
        progress?.Report(new RunProgress("calibration", 1, 2, random ?? calibration.ToString()));
        var scores = Importance.Measure(loaded.Model, calibration.Sequences, cancel: cancel);
        progress?.Report(new RunProgress("importance", 2, 2, $"{scores.Tokens} tokens"));
        return new RedundancyAnalysis(loaded.Name, g, scores, split, calibration) { RandomTokens = random };
    }
}

/// <summary>
/// `drop`: drop the <see cref="Count"/> least important modules (one-shot or iterative, never from the
/// <see cref="Never"/> layers) and measure quality, speed and memory against the full model; with <see cref="Sweep"/>,
/// every k = 0..Count (a <see cref="DropSweep"/>), else k = Count only (a <see cref="DropRun"/>).
/// </summary>
public sealed record DropRequest : CalibrationRequest, IRequest<DropResult>
{
    /// <summary>--count: modules to drop (with --sweep: the largest k).</summary>
    public required int? Count { get; init; }
    /// <summary>--strategy: one-shot (rank once) or iterative (re-score after each drop).</summary>
    public string Strategy { get; init; } = "one-shot";
    /// <summary>--never: layers never dropped, comma-separated (e.g. "0,4").</summary>
    public string? Never { get; init; }
    public bool Sweep { get; init; }
    /// <summary>--no-speed: skip the measured speed runs (quality and predicted costs only).</summary>
    public bool NoSpeed { get; init; }
    /// <summary>Sizes of the held-out evaluation (not an option of the CLI or the magic).</summary>
    public EvaluationOptions? Evaluation { get; init; }

    /// <summary>Checks every option, loading the model once for this request's Run.</summary>
    public void Validate() => Check();

    private (Granularity G, DropStrategy Strategy, int[] Never, int Count, RedundancyInputs.Checked Inputs) Check()
    {
        var (g, inputs) = CheckCalibration();
        if (inputs.Task.Loaded is Decoder { HasTokenizer: false } d)
            throw new OptionException("--model", $"--model '{d.Name}' has no tokenizer: drop measures quality on held-out text (redundancy alone runs on seeded random token ids)");
        var strategy = Names.ParseStrategy(Strategy, "--strategy");
        var never = Parse.Layers(Never, "--never");
        var config = inputs.Task.Model.Config;
        foreach (var l in never)
            if (l >= config.Layers) throw new OptionException("--never", $"--never: layer {l} is out of range: the model has layers 0..{config.Layers - 1}");
        int k = Count ?? throw new OptionException("--count", "--count is required");
        int available = Modules.Of(config, g).Count(m => !never.Contains(m.Layer));
        if (k < 0 || k > available)
            throw new OptionException("--count", $"--count {k}: {Names.Of(g)} has {available} droppable modules in '{inputs.Task.Loaded.Name}'");
        return (g, strategy, never, k, inputs);
    }

    public DropResult Run(IProgress<RunProgress>? progress = null, CancellationToken cancel = default)
    {
        var (g, strategy, never, k, check) = Check();
        var inputs = check.Prepare(Seed);
        var evaluator = new DropEvaluator(inputs.Model, inputs.Split, Evaluation);
        cancel.ThrowIfCancellationRequested();
        if (Sweep)
        {
            // DropSweep reports the rows evaluated so far: 0 once the plan is made, then one per k.
            var rows = progress is null ? null : new Rows(i => progress.Report(new RunProgress("sweep", i, k + 1, i == 0 ? "plan ready" : $"k = {i - 1} evaluated")));
            var sweep = DropSweep.Run(evaluator, inputs.Calibration.Sequences, g, strategy, k, never, !NoSpeed, cancel, rows);
            return sweep with { Split = inputs.Split, Calibration = inputs.Calibration };
        }
        var plan = LayerDropper.Plan(inputs.Model.Model, inputs.Calibration.Sequences, g, k, strategy, never, cancel);
        cancel.ThrowIfCancellationRequested();
        var report = evaluator.Evaluate(plan.Dropped, !NoSpeed);
        progress?.Report(new RunProgress("drop", 1, 1, string.Join(" ", plan.Dropped)));
        return new DropRun(inputs.Model.Name, plan, report, evaluator.Evaluation) { Split = inputs.Split, Calibration = inputs.Calibration };
    }

    // Synchronous (System.Progress posts to a context, which would reorder the updates).
    private sealed class Rows(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }
}
