using Microsoft.Data.Analysis;
using Workbench.Engine.Models;
using Workbench.Engine.Text;

namespace Workbench.Engine.Redundancy;

/// <summary>Quality, speed and memory for k = 0..N dropped modules of one granularity and strategy.</summary>
public sealed record DropSweep(string Model, Granularity Granularity, DropStrategy Strategy, DropPlan Plan, IReadOnlyList<DropReport> Rows)
    : DropResult(Model, Plan)
{
    /// <summary>The held-out text every row was evaluated on (set by <see cref="Run"/>; null for image tasks).</summary>
    public TokenSamples? Evaluation { get; init; }

    /// <summary>
    /// Runs the sweep. Both strategies are greedy, so the plan for k is the first k drops of the plan for N:
    /// one plan of N drops is made and each prefix evaluated.
    /// </summary>
    public static DropSweep Run(DropEvaluator evaluator, IReadOnlyList<int[]> calibration, Granularity g, DropStrategy strategy,
        int maxDrops = -1, IEnumerable<int>? never = null, bool measureSpeed = true, CancellationToken cancel = default,
        IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(calibration);
        return Run(evaluator, calibration.Select(ids => ModelInput.Of(ids)).ToArray(), g, strategy, maxDrops, never, measureSpeed, cancel, progress);
    }

    /// <summary>The sweep on any calibration inputs the model takes (images, an image with a prompt, token ids).</summary>
    public static DropSweep Run(DropEvaluator evaluator, IReadOnlyList<ModelInput> calibration, Granularity g, DropStrategy strategy,
        int maxDrops = -1, IEnumerable<int>? never = null, bool measureSpeed = true, CancellationToken cancel = default,
        IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(evaluator);
        var model = evaluator.Model.Model;
        var neverList = (never ?? []).ToArray();
        int available = Modules.Of(model.Config, g).Count(m => !neverList.Contains(m.Layer));
        if (maxDrops < 0) maxDrops = available;
        var plan = LayerDropper.Plan(model, calibration, g, maxDrops, strategy, neverList, cancel);
        // progress: the number of rows evaluated so far (0..maxDrops + 1), reported after the plan and after each row.
        progress?.Report(0);
        var rows = new DropReport[maxDrops + 1];
        for (int k = 0; k <= maxDrops; k++)
        {
            cancel.ThrowIfCancellationRequested();
            rows[k] = evaluator.Evaluate(plan.Dropped.Take(k).ToArray(), measureSpeed);
            progress?.Report(k + 1);
        }
        return new DropSweep(evaluator.Model.Name, g, strategy, plan, rows) { Evaluation = evaluator.Images is null ? evaluator.Evaluation : null, EvaluationImages = evaluator.Images?.Samples };
    }

    /// <summary>One row per k, one column per measure, keyed as the CLI's JSON and CSV name them (data, not display labels).</summary>
    public DataFrame ToDataFrame()
    {
        double? D(Func<DropReport, double?> f, DropReport r) => f(r);
        var df = new DataFrame(
            new Int32DataFrameColumn("k", Rows.Select(r => r.Dropped.Count)),
            new StringDataFrameColumn("dropped", Rows.Select(r => string.Join(" ", r.Dropped))),
            new StringDataFrameColumn("last_dropped", Rows.Select(r => r.Dropped.Count == 0 ? "" : r.Dropped[^1].ToString())));
        void Add(string name, Func<DropReport, double?> f)
        {
            if (Rows.Any(r => f(r) is not null)) df.Columns.Add(new DoubleDataFrameColumn(name, Rows.Select(r => D(f, r))));
        }
        Add("kl", r => r.Quality.Kl);
        Add("top1_agreement", r => r.Quality.Top1Agreement);
        Add("perplexity", r => r.Quality.Perplexity);
        Add("perplexity_full", r => r.Quality.PerplexityFull);
        Add("embedding_cosine", r => r.Quality.EmbeddingCosine);
        Add("accuracy", r => r.Quality.Accuracy);
        Add("accuracy_full", r => r.Quality.AccuracyFull);
        Add("spearman", r => r.Quality.Spearman);
        Add("prefill_tokens_per_s", r => r.Speed?.PrefillTokensPerSecond);
        Add("decode_tokens_per_s", r => r.Speed?.DecodeTokensPerSecond);
        Add("measured_speedup", r => r.MeasuredSpeedup);
        Add("predicted_speedup", r => r.PredictedSpeedup);
        Add("kv_cache_bytes", r => r.Speed?.KvCacheBytes);
        Add("kv_cache_bytes_predicted", r => r.Predicted.KvCacheBytes);
        Add("prefill_flops_predicted", r => r.Predicted.PrefillFlops);
        Add("decode_flops_per_token_predicted", r => r.Predicted.DecodeFlopsPerToken);
        Add("decode_bytes_per_token_predicted", r => r.Predicted.DecodeBytesPerToken);
        Add("weight_bytes", r => r.Predicted.WeightBytes);
        return df;
    }
}
