using Workbench.Engine.Models;
using Workbench.Engine.Requests;
using Workbench.Engine.Text;

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
        int n = samples ?? (task.NextToken ? 8 : 16);
        int seq = seqLen ?? (task.NextToken ? 128 : 64);
        if (n <= 0) throw new OptionException("--samples", $"--samples {n} must be positive");
        if (seq < 2) throw new OptionException("--seq", $"--seq {seq} must be at least 2");
        if (seq > model.Config.MaxSeq) throw new OptionException("--seq", $"--seq {seq}: '{model.Name}' holds at most {model.Config.MaxSeq} positions");
        if (corpusPath is not null && !Text.Corpus.Exists(corpusPath))
            throw new OptionException("--corpus", $"--corpus '{corpusPath}' does not exist (a text file, or a bundled corpus: {string.Join(", ", Text.Corpus.BundledNames)})");
        return new Checked(task, n, seq, corpusPath ?? (task.NextToken ? Bundled.TinyStories : Bundled.PrideAndPrejudice));
    }
}

/// <summary>Importance scores of one model with where they came from, and the ranking of one granularity.</summary>
public sealed record RedundancyAnalysis(string Model, Granularity Granularity, ImportanceScores Scores, CorpusSplit Split, TokenSamples Calibration)
{
    /// <summary>Modules of <see cref="Granularity"/>, least important (first to drop) first.</summary>
    public IReadOnlyList<(ModuleRef Module, double Importance)> Ranked => Scores.Ranked(Granularity);
}

/// <summary>What a <see cref="DropRequest"/> returns: one drop (<see cref="DropRun"/>) or a sweep over k (<see cref="DropSweep"/>).</summary>
public abstract record DropResult(string Model, DropPlan Plan)
{
    /// <summary>The split the calibration and evaluation text came from (set by <see cref="DropRequest"/>).</summary>
    public CorpusSplit? Split { get; init; }
    /// <summary>The calibration sequences the plan was scored on (set by <see cref="DropRequest"/>).</summary>
    public TokenSamples? Calibration { get; init; }
}

/// <summary>One drop: the plan (what was dropped and the scores it was chosen from) and its evaluation.</summary>
public sealed record DropRun(string Model, DropPlan Plan, DropReport Report, TokenSamples Evaluation) : DropResult(Model, Plan);
