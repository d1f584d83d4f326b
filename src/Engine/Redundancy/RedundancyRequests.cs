using Workbench.Engine.Models;
using Workbench.Engine.Requests;

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

    /// <summary>The checked options: the parsed granularity and the model with its calibration options.</summary>
    private protected (Granularity Granularity, RedundancyInputs.Checked Inputs) CheckCalibration()
    {
        var g = Names.ParseGranularity(Granularity, "--granularity");
        if (string.IsNullOrWhiteSpace(Model)) throw new OptionException("--model", "--model is required");
        var storage = WeightStorageOption.Parse(Weights);
        return (g, RedundancyInputs.Check(ModelHub.Load(Model, storage: storage), Samples, Seq, Corpus));
    }
}

/// <summary>
/// `redundancy`: the importance (1 - cos(input, output)) of every block, attention and MLP layer on calibration text
/// (He et al. 2024), ranked at <see cref="CalibrationRequest.Granularity"/>.
/// </summary>
public sealed record RedundancyRequest : CalibrationRequest, IRequest<RedundancyAnalysis>
{
    public void Validate() => CheckCalibration();

    public RedundancyAnalysis Run(IProgress<RunProgress>? progress = null, CancellationToken cancel = default)
    {
        var (g, check) = CheckCalibration();
        var inputs = check.Prepare(Seed);
        progress?.Report(new RunProgress("calibration", 1, 2, inputs.Calibration.ToString()));
        var scores = Importance.Measure(inputs.Model.Model, inputs.Calibration.Sequences, cancel: cancel);
        progress?.Report(new RunProgress("importance", 2, 2, $"{scores.Tokens} tokens"));
        return new RedundancyAnalysis(inputs.Model.Name, g, scores, inputs.Split, inputs.Calibration);
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

    public void Validate() => Check();

    private (Granularity G, DropStrategy Strategy, int[] Never, int Count, RedundancyInputs.Checked Inputs) Check()
    {
        var (g, inputs) = CheckCalibration();
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
