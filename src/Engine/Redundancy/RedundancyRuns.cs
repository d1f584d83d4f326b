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

    /// <summary>Where the calibration tokens came from: the split and sequences of the text, or the random-id line.</summary>
    public string CalibrationSource => RandomTokens ?? $"{Split}\n{Calibration}";

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
