using Workbench.Engine.Models;
using Workbench.Engine.Requests;
using Workbench.Engine.Text;
using Workbench.Engine.Vision;

namespace Workbench.Engine.Redundancy;

/// <summary>
/// A model with its calibration/evaluation split and calibration sequences: what the `redundancy` and `drop` requests
/// resolve their options to. Defaults: 8 sequences of 128 tokens of TinyStories for next-token models (decoders),
/// 16 Pride and Prejudice paragraphs of at most 64 tokens for sentence encoders.
/// </summary>
public sealed record RedundancyInputs(LoadedModel Model, CorpusSplit Split, TokenSamples Calibration)
{
    public bool IsDecoder => TextTask.Of(Model).NextToken;

    /// <summary>Checks the options (errors name them as --samples, --seq, --corpus, --model), then builds the split and the calibration set.</summary>
    public static RedundancyInputs Prepare(LoadedModel model, int? samples = null, int? seqLen = null, int seed = 0, string? corpusPath = null) =>
        Check(model, samples, seqLen, corpusPath).Prepare(seed);

    /// <summary>The options resolved against the model, before any text is read.</summary>
    internal sealed record Checked(TextTask Task, int Samples, int Seq, string Corpus)
    {
        public RedundancyInputs Prepare(int seed)
        {
            var split = Text.Corpus.Load(Corpus).Split(seed);
            return new RedundancyInputs(Task.Loaded, split, split.Calibration(Task.Tokenize, Samples, Seq, pack: Task.Pack));
        }
    }

    /// <summary>The one check of the calibration options, shared by the requests and direct callers.</summary>
    internal static Checked Check(LoadedModel model, int? samples, int? seqLen, string? corpusPath)
    {
        ArgumentNullException.ThrowIfNull(model);
        var task = TextTask.Of(model);
        CheckOptions(samples, seqLen, corpusPath);
        int n = samples ?? (task.NextToken ? 8 : 16);
        int seq = seqLen ?? (task.NextToken ? 128 : 64);
        if (seq > model.Config.MaxSeq) throw new OptionException("--seq", $"--seq {seq}: '{model.Name}' holds at most {model.Config.MaxSeq} positions");
        return new Checked(task, n, seq, corpusPath ?? (task.NextToken ? Bundled.TinyStories : Bundled.PrideAndPrejudice));
    }

    /// <summary>The checks that need no model: --samples positive, --seq at least 2, --corpus an existing file or bundled name.</summary>
    internal static void CheckOptions(int? samples, int? seqLen, string? corpusPath)
    {
        if (samples is { } n && n <= 0) throw new OptionException("--samples", $"--samples {n} must be positive");
        if (seqLen is { } seq && seq < 2) throw new OptionException("--seq", $"--seq {seq} must be at least 2");
        if (corpusPath is not null && !Text.Corpus.Exists(corpusPath))
            throw new OptionException("--corpus", $"--corpus '{corpusPath}' does not exist (a text file, or a bundled corpus: {string.Join(", ", Text.Corpus.BundledNames)})");
    }

    /// <summary>
    /// Calibration for a decoder without a tokenizer: <paramref name="samples"/> sequences of <paramref name="seq"/> token
    /// ids drawn uniformly from [0, vocab) by System.Random(seed) (no BOS), the same for every run of a seed.
    /// </summary>
    public static TokenSamples RandomTokens(int vocab, int samples, int seq, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocab);
        var rng = new Random(seed);
        var seqs = Enumerable.Range(0, samples).Select(_ => Enumerable.Range(0, seq).Select(_ => rng.Next(vocab)).ToArray()).ToArray();
        return new TokenSamples("calibration (seeded random token ids)", seqs, [], (long)samples * seq);
    }
}

/// <summary>
/// The images an image task (image classifier, vision-language model) is calibrated and judged on: <c>--images</c>
/// (PNG / JPEG files or folders, a CIFAR-10 folder) or by default the bundled CIFAR-10 test subset, split by the seed
/// into a calibration half and a held-out half (<see cref="ImageSet.Split"/>); <c>--samples</c> calibration images
/// (default 16) from the first, the evaluation images from the second. Every image is brought to the model's side by
/// the model's own preprocessing (<see cref="ImageTask.Preprocessing"/>).
/// </summary>
public sealed record ImageInputs(ImageTask Task, ImageSamples Calibration, ImageSet HeldOut, int Seed)
{
    public const int DefaultSamples = 16;

    /// <summary>The evaluation inputs: the first <paramref name="count"/> held-out images (prompts drawn after the calibration's).</summary>
    public ImageSamples Evaluation(int count)
    {
        if (HeldOut.Count == 0)
            throw new OptionException("--images", $"--images: a drop needs held-out images to judge it on, and {Calibration.Images.Count} image(s) leave none (give two or more)");
        var part = HeldOut.Subset(Enumerable.Range(0, Math.Min(count, HeldOut.Count)).ToArray());
        return ImageSamples.Of(Task, part, Seed, "evaluation (held out)", first: Calibration.Inputs.Count);
    }

    /// <summary>Checks the options (those that apply to text only are refused, naming them), then splits the images.</summary>
    public static ImageInputs Prepare(ImageTask task, int? samples = null, int seed = 0, string? images = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        var set = Check(task, samples, null, null, images);
        var (cal, held) = set.Split(seed);
        int n = Math.Min(samples ?? DefaultSamples, cal.Count);
        var calibration = ImageSamples.Of(task, cal.Subset(Enumerable.Range(0, n).ToArray()), seed, "calibration");
        return new ImageInputs(task, calibration, held, seed);
    }

    /// <summary>The one check of an image task's calibration options: --seq and --corpus are text options; --images must name images.</summary>
    internal static ImageSet Check(ImageTask task, int? samples, int? seq, string? corpus, string? images)
    {
        string what = $"'{task.Loaded.Name}' is {(task is VisionLanguageTask ? "a vision-language model" : "an image classifier")}";
        if (seq is not null)
            throw new OptionException("--seq", $"--seq {seq}: {what}; its inputs are {task.Side}x{task.Side} images{(task is VisionLanguageTask v ? $" with a prompt of {v.PromptTokens} tokens" : "")}, so --seq does not apply");
        if (corpus is not null)
            throw new OptionException("--corpus", $"--corpus '{corpus}': {what}; give images with --images (default: the bundled CIFAR-10 test images)");
        if (samples is { } s && s <= 0) throw new OptionException("--samples", $"--samples {s} must be positive");
        return images is null ? ImageSet.Cifar10() : ImageSet.Load(images);
    }
}

/// <summary>
/// Importance scores of one model with where they came from, and the ranking of one granularity. <see cref="Split"/> is
/// null when the calibration is seeded random token ids (<see cref="RandomTokens"/>: the model has no tokenizer).
/// </summary>
public sealed record RedundancyAnalysis(string Model, Granularity Granularity, ImportanceScores Scores, CorpusSplit? Split, TokenSamples Calibration)
{
    /// <summary>
    /// Set when the calibration sequences are seeded random token ids rather than text (a decoder without a tokenizer):
    /// the line that says so (how many, from which vocabulary, the seed); null for text calibration.
    /// </summary>
    public string? RandomTokens { get; init; }

    /// <summary>Image tasks: the calibration images (and prompts); null for text.</summary>
    public ImageSamples? Images { get; init; }

    /// <summary>Where the calibration tokens came from: the images, the split and sequences of the text, or the random-id line.</summary>
    public string CalibrationSource => Images?.ToString() ?? RandomTokens ?? $"{Split}\n{Calibration}";

    /// <summary>Modules of <see cref="Granularity"/>, least important (first to drop) first.</summary>
    public IReadOnlyList<(ModuleRef Module, double Importance)> Ranked => Scores.Ranked(Granularity);
}

/// <summary>What a <see cref="DropRequest"/> returns: one drop (<see cref="DropRun"/>) or a sweep over k (<see cref="DropSweep"/>).</summary>
public abstract record DropResult(string Model, DropPlan Plan)
{
    /// <summary>The split the calibration and evaluation text came from (set by <see cref="DropRequest"/>).</summary>
    public CorpusSplit? Split { get; init; }
    /// <summary>The calibration sequences the plan was scored on (set by <see cref="DropRequest"/>; null for image tasks).</summary>
    public TokenSamples? Calibration { get; init; }
    /// <summary>Image tasks: the calibration images the plan was scored on, and the held-out images it was judged on.</summary>
    public ImageSamples? CalibrationImages { get; init; }
    public ImageSamples? EvaluationImages { get; init; }
}

/// <summary>One drop: the plan (what was dropped and the scores it was chosen from) and its evaluation (held-out text; null for image tasks, see <see cref="DropResult.EvaluationImages"/>).</summary>
public sealed record DropRun(string Model, DropPlan Plan, DropReport Report, TokenSamples? Evaluation) : DropResult(Model, Plan);
