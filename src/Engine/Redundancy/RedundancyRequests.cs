using System.Runtime.CompilerServices;
using Workbench.Engine.Models;
using Workbench.Engine.Requests;
using Workbench.Engine.Text;

namespace Workbench.Engine.Redundancy;

/// <summary>
/// The options `redundancy` and `drop` share (named as the CLI and the magics name them): the model, the granularity,
/// and the calibration set (--samples, default 8 for decoders / 16 for encoders; --seq, default 128 / 64; --seed; --corpus).
/// Image classifiers and vision-language models are calibrated on images instead (--images, --samples default 16,
/// --seed: <see cref="ImageInputs"/>); --seq and --corpus are refused for them, --images for text models.
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
    /// <summary>--images: image classifiers and vision-language models, PNG / JPEG files or folders, comma-separated (default: the bundled CIFAR-10 test images).</summary>
    public string? Images { get; init; }

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
        var (g, task) = CheckTask();
        if (task is not TextTask)
            throw new OptionException("--model", $"--model '{task.Loaded.Name}' ({task.Kind}): text calibration needs a decoder or encoder"); // the callers branch on the task first
        var check = RedundancyInputs.Check(task.Loaded, Samples, Seq, Corpus);
        return (g, check);
    }

    /// <summary>The checked options and the loaded model's task (the model loaded once per request); --images only for image tasks.</summary>
    private protected (Granularity Granularity, ModelTask Task) CheckTask()
    {
        var (g, storage) = CheckOptions();
        var model = Loaded.TryGetValue(this, out var m) ? m : ModelHub.Load(Model, storage: storage);
        Loaded.AddOrUpdate(this, model);
        var task = ModelTask.Of(model);
        if (task is ImageTask it) ImageInputs.Check(it, Samples, Seq, Corpus, Images);
        else if (Images is not null)
            throw new OptionException("--images", $"--images works with image classifiers and vision-language models; '{model.Name}' is a {task.Kind}, calibrated on text (--corpus)");
        return (g, task);
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
    public void Validate()
    {
        if (CheckTask().Task is not ImageTask) Check();
    }

    private (Granularity G, RedundancyInputs.Checked Inputs) Check()
    {
        var (g, check) = CheckCalibration();
        if (check.Task.Loaded is Decoder { HasTokenizer: false } d && Corpus is not null)
            throw new OptionException("--corpus", $"--corpus '{Corpus}': '{d.Name}' has no tokenizer (no tokenizer.json, tokenizer.model or GGUF tokenizer metadata), so text cannot be turned into its token ids; leave --corpus out to calibrate on seeded random token ids");
        return (g, check);
    }

    public RedundancyAnalysis Run(IProgress<RunProgress>? progress = null, CancellationToken cancel = default)
    {
        if (CheckTask() is (var ig, ImageTask task))
        {
            var images = ImageInputs.Prepare(task, Samples, Seed, Images);
            progress?.Report(new RunProgress("calibration", 1, 2, images.Calibration.ToString()));
            var s = Importance.Measure(task.Model, images.Calibration.Inputs, cancel: cancel);
            progress?.Report(new RunProgress("importance", 2, 2, $"{s.Tokens} tokens"));
            return new RedundancyAnalysis(task.Loaded.Name, ig, s, null, new TokenSamples(images.Calibration.Part, [], [], s.Tokens)) { Images = images.Calibration };
        }
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

    private (Granularity G, DropStrategy Strategy, int[] Never, int Count, ModelTask Task) Check()
    {
        var (g, task) = CheckTask();
        if (task is TextTask)
        {
            var inputs = CheckCalibration().Inputs;
            if (inputs.Task.Loaded is Decoder { HasTokenizer: false } d)
                throw new OptionException("--model", $"--model '{d.Name}' has no tokenizer: drop measures quality on held-out text (redundancy alone runs on seeded random token ids)");
        }
        var strategy = Names.ParseStrategy(Strategy, "--strategy");
        var never = Parse.Layers(Never, "--never");
        var config = task.Model.Config;
        foreach (var l in never)
            if (l >= config.Layers) throw new OptionException("--never", $"--never: layer {l} is out of range: the model has layers 0..{config.Layers - 1}");
        int k = Count ?? throw new OptionException("--count", "--count is required");
        int available = Modules.Of(config, g).Count(m => !never.Contains(m.Layer));
        if (k < 0 || k > available)
            throw new OptionException("--count", $"--count {k}: {Names.Of(g)} has {available} droppable modules in '{task.Loaded.Name}'");
        return (g, strategy, never, k, task);
    }

    public DropResult Run(IProgress<RunProgress>? progress = null, CancellationToken cancel = default)
    {
        var (g, strategy, never, k, task) = Check();
        DropEvaluator evaluator;
        IReadOnlyList<ModelInput> calibration;
        Func<DropResult, DropResult> describe;
        if (task is ImageTask it)
        {
            var images = ImageInputs.Prepare(it, Samples, Seed, Images);
            var options = Evaluation ?? EvaluationOptions.Default;
            evaluator = new DropEvaluator(it, images.Evaluation(options.Images), options);
            calibration = images.Calibration.Inputs;
            describe = r => r with { CalibrationImages = images.Calibration, EvaluationImages = evaluator.Images!.Samples };
        }
        else
        {
            var inputs = CheckCalibration().Inputs.Prepare(Seed);
            evaluator = new DropEvaluator(inputs.Model, inputs.Split, Evaluation);
            calibration = inputs.Calibration.Sequences.Select(ids => ModelInput.Of(ids)).ToArray();
            describe = r => r with { Split = inputs.Split, Calibration = inputs.Calibration };
        }
        cancel.ThrowIfCancellationRequested();
        if (Sweep)
        {
            // DropSweep reports the rows evaluated so far: 0 once the plan is made, then one per k.
            var rows = progress is null ? null : new Rows(i => progress.Report(new RunProgress("sweep", i, k + 1, i == 0 ? "plan ready" : $"k = {i - 1} evaluated")));
            return describe(DropSweep.Run(evaluator, calibration, g, strategy, k, never, !NoSpeed, cancel, rows));
        }
        var plan = LayerDropper.Plan(task.Model, calibration, g, k, strategy, never, cancel);
        cancel.ThrowIfCancellationRequested();
        var report = evaluator.Evaluate(plan.Dropped, !NoSpeed);
        progress?.Report(new RunProgress("drop", 1, 1, string.Join(" ", plan.Dropped)));
        return describe(new DropRun(task.Loaded.Name, plan, report, evaluator.Images is null ? evaluator.Evaluation : null));
    }

    // Synchronous (System.Progress posts to a context, which would reorder the updates).
    private sealed class Rows(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }
}
