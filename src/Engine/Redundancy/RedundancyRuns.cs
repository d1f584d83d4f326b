using Microsoft.Data.Analysis;
using Workbench.Engine.Models;
using Workbench.Engine.Text;

namespace Workbench.Engine.Redundancy;

/// <summary>
/// A model with its calibration/evaluation split and calibration sequences: what the `redundancy` and `drop` verbs
/// (and the notebook magics) resolve their options to. Defaults: 8 sequences of 128 tokens of TinyStories for
/// decoders, 16 Pride and Prejudice paragraphs of at most 64 tokens for encoders.
/// </summary>
public sealed record RedundancyInputs(LoadedModel Model, CorpusSplit Split, TokenSamples Calibration)
{
    public bool IsDecoder => Model is Decoder;

    public static RedundancyInputs Prepare(LoadedModel model, int? samples = null, int? seqLen = null, int seed = 0, string? corpusPath = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        bool decoder = model switch
        {
            Decoder => true,
            Encoder => false,
            _ => throw new ArgumentException($"'{model.Name}' is neither a decoder nor an encoder: layer dropping needs a text model", nameof(model)),
        };
        int n = samples ?? (decoder ? 8 : 16);
        int seq = seqLen ?? (decoder ? 128 : 64);
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(samples), n, "calibration samples must be positive");
        if (seq < 2) throw new ArgumentOutOfRangeException(nameof(seqLen), seq, "a calibration sequence needs at least 2 tokens");
        if (seq > model.Config.MaxSeq) throw new ArgumentOutOfRangeException(nameof(seqLen), seq, $"the model holds at most {model.Config.MaxSeq} positions");
        var path = corpusPath ?? (decoder ? Bundled.TinyStories : Bundled.PrideAndPrejudice);
        var split = Corpus.Load(path).Split(seed);
        var calibration = model switch
        {
            Decoder d => split.Calibration(t => d.Tokenizer.Encode(t), n, seq, pack: true),
            _ => split.Calibration(((Encoder)model).Tokenizer.Encode, n, seq, pack: false),
        };
        return new RedundancyInputs(model, split, calibration);
    }
}

/// <summary>Importance scores of one model with where they came from, and the ranking of one granularity.</summary>
public sealed record RedundancyAnalysis(string Model, Granularity Granularity, ImportanceScores Scores, CorpusSplit Split, TokenSamples Calibration)
{
    public static RedundancyAnalysis Run(RedundancyInputs inputs, Granularity granularity, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var scores = Importance.Measure(inputs.Model.Model, inputs.Calibration.Sequences, cancel: cancel);
        return new RedundancyAnalysis(inputs.Model.Name, granularity, scores, inputs.Split, inputs.Calibration);
    }

    /// <summary>Modules of <see cref="Granularity"/>, least important (first to drop) first.</summary>
    public IReadOnlyList<(ModuleRef Module, double Importance)> Ranked => Scores.Ranked(Granularity);

    /// <summary>One row per layer: block, attention and MLP importance.</summary>
    public DataFrame ToDataFrame() => Scores.ToDataFrame();
}

/// <summary>One drop: the plan (what was dropped and the scores it was chosen from) and its evaluation.</summary>
public sealed record DropRun(string Model, DropPlan Plan, DropReport Report, TokenSamples Evaluation)
{
    public static DropRun Run(RedundancyInputs inputs, Granularity granularity, int count, DropStrategy strategy = DropStrategy.OneShot,
        IEnumerable<int>? never = null, bool measureSpeed = true, EvaluationOptions? options = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var plan = LayerDropper.Plan(inputs.Model.Model, inputs.Calibration.Sequences, granularity, count, strategy, never, cancel);
        var evaluator = new DropEvaluator(inputs.Model, inputs.Split, options);
        cancel.ThrowIfCancellationRequested();
        return new DropRun(inputs.Model.Name, plan, evaluator.Evaluate(plan.Dropped, measureSpeed), evaluator.Evaluation);
    }

    /// <summary>Metric / pruned / full, one row per measured or predicted quantity.</summary>
    public DataFrame ToDataFrame()
    {
        var r = Report;
        var rows = new List<(string Metric, double? Pruned, double? Full)>();
        if (r.Quality.Kl is not null)
        {
            rows.Add(("KL(full || pruned), nats/token", r.Quality.Kl, 0));
            rows.Add(("top-1 agreement", r.Quality.Top1Agreement, 1));
            rows.Add(("perplexity", r.Quality.Perplexity, r.Quality.PerplexityFull));
        }
        else
        {
            rows.Add(("embedding cosine to full", r.Quality.EmbeddingCosine, 1));
            rows.Add(("Spearman of pairwise similarities", r.Quality.Spearman, 1));
        }
        if (r.Speed is { } s && r.SpeedFull is { } f)
        {
            rows.Add(("prefill tokens/s (measured)", s.PrefillTokensPerSecond, f.PrefillTokensPerSecond));
            if (s.DecodeTokensPerSecond is not null) rows.Add(("decode tokens/s (measured)", s.DecodeTokensPerSecond, f.DecodeTokensPerSecond));
            rows.Add(("KV cache bytes (allocated)", s.KvCacheBytes, f.KvCacheBytes));
        }
        rows.Add(("KV cache bytes (predicted)", r.Predicted.KvCacheBytes, r.PredictedFull.KvCacheBytes));
        rows.Add(("prefill FLOPs (predicted)", r.Predicted.PrefillFlops, r.PredictedFull.PrefillFlops));
        if (r.PredictedFull.DecodeFlopsPerToken > 0)
            rows.Add(("decode FLOPs/token (predicted)", r.Predicted.DecodeFlopsPerToken, r.PredictedFull.DecodeFlopsPerToken));
        rows.Add(("weight bytes (fp32)", r.Predicted.WeightBytes, r.PredictedFull.WeightBytes));
        return new DataFrame(
            new StringDataFrameColumn("metric", rows.Select(x => x.Metric)),
            new DoubleDataFrameColumn("pruned", rows.Select(x => x.Pruned)),
            new DoubleDataFrameColumn("full", rows.Select(x => x.Full)));
    }
}
