using Microsoft.Data.Analysis;
using Workbench.Engine.Redundancy;

namespace Workbench.Interactive;

/// <summary>The tables a notebook shows for redundancy results (the engine returns plain records; labels are the extension's).</summary>
public static class RedundancyTables
{
    /// <summary>Heat-map table: one row per layer, one column per module kind.</summary>
    public static DataFrame ToDataFrame(this ImportanceScores s) => new(
        new Int32DataFrameColumn("layer", Enumerable.Range(0, s.Layers)),
        new DoubleDataFrameColumn("block", s.Block),
        new DoubleDataFrameColumn("attention", s.Attention),
        new DoubleDataFrameColumn("mlp", s.Mlp));

    /// <summary>Long table: one row per (layer, kind).</summary>
    public static DataFrame ToLongDataFrame(this ImportanceScores s)
    {
        var rows = Enumerable.Range(0, s.Layers)
            .SelectMany(l => new[] { ModuleKind.Block, ModuleKind.Attention, ModuleKind.Mlp }.Select(k => new ModuleRef(l, k))).ToArray();
        return new DataFrame(
            new Int32DataFrameColumn("layer", rows.Select(r => r.Layer)),
            new StringDataFrameColumn("kind", rows.Select(r => Names.Kind(r.Kind))),
            new DoubleDataFrameColumn("importance", rows.Select(r => s[r])),
            new BooleanDataFrameColumn("dropped", rows.Select(r => s.Skips.IsDropped(r))));
    }

    /// <summary>One row per layer: block, attention and MLP importance.</summary>
    public static DataFrame ToDataFrame(this RedundancyAnalysis a) => a.Scores.ToDataFrame();

    /// <summary>Metric / pruned / full, one row per measured or predicted quantity.</summary>
    public static DataFrame ToDataFrame(this DropRun run)
    {
        var r = run.Report;
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
