using Microsoft.Data.Analysis;
using Workbench.Engine.Costs;
using Workbench.Engine.TokenDrop;
using Workbench.Engine.Vision;

namespace Workbench.Interactive.Charts;

/// <summary>The token-drop results as tables (column names are display labels, so they live here, not in the engine).</summary>
public static class TokenDropTables
{
    /// <summary>One row per prompt: token counts, KL, top-1 agreement, perplexities, FLOPs ratio.</summary>
    public static DataFrame ToDataFrame(this LmDropEvaluation e) => new(
        new Int32DataFrameColumn("prompt", e.PerPrompt.Select(p => (int?)p.Prompt)),
        new Int32DataFrameColumn("context_tokens", e.PerPrompt.Select(p => (int?)p.ContextTokens)),
        new Int32DataFrameColumn("protected_tokens", e.PerPrompt.Select(p => (int?)p.ProtectedTokens)),
        new DoubleDataFrameColumn("kl", e.PerPrompt.Select(p => (double?)p.Kl)),
        new BooleanDataFrameColumn("top1_agrees", e.PerPrompt.Select(p => (bool?)p.Top1Agrees)),
        new DoubleDataFrameColumn("ppl_full", e.PerPrompt.Select(p => (double?)Math.Exp(p.NllFull / p.ContinuationTokens))),
        new DoubleDataFrameColumn("ppl_dropped", e.PerPrompt.Select(p => (double?)Math.Exp(p.NllDropped / p.ContinuationTokens))),
        new DoubleDataFrameColumn("flops_ratio", e.PerPrompt.Select(p => (double?)p.FlopsRatio)));

    /// <summary>
    /// One row per evaluation (e.g. a grid of schedules and rankings): model, method, schedule, ranking, mean / median /
    /// largest next-token KL over the prompts, top-1 agreement, continuation perplexity and the full model's, FLOPs ratio.
    /// </summary>
    public static DataFrame ToDataFrame(this IEnumerable<LmDropEvaluation> evaluations)
    {
        ArgumentNullException.ThrowIfNull(evaluations);
        var list = evaluations.ToList();
        static double Median(IEnumerable<double> x)
        {
            var s = x.Order().ToArray();
            return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
        }
        return new DataFrame(
            new StringDataFrameColumn("model", list.Select(e => e.Model)),
            new StringDataFrameColumn("method", list.Select(TokenDropCharts.LmMethod)),
            new StringDataFrameColumn("layers", list.Select(e => e.Schedule.LayersText)),
            new StringDataFrameColumn("keep", list.Select(e => e.Schedule.KeepText)),
            new StringDataFrameColumn("ranking", list.Select(e => TokenDropCharts.Rank(e.Ranking))),
            new DoubleDataFrameColumn("kl", list.Select(e => (double?)e.Kl)),
            new DoubleDataFrameColumn("kl_median", list.Select(e => (double?)Median(e.PerPrompt.Select(p => p.Kl)))),
            new DoubleDataFrameColumn("kl_max", list.Select(e => (double?)e.PerPrompt.Max(p => p.Kl))),
            new DoubleDataFrameColumn("top1_agreement", list.Select(e => (double?)e.Top1Agreement)),
            new DoubleDataFrameColumn("perplexity", list.Select(e => (double?)e.PerplexityDropped)),
            new DoubleDataFrameColumn("perplexity_full", list.Select(e => (double?)e.PerplexityFull)),
            new DoubleDataFrameColumn("flops_ratio", list.Select(e => (double?)e.FlopsRatio)));
    }

    /// <summary>One row per image: label, predictions, surviving patch count per stage.</summary>
    public static DataFrame ToDataFrame(this VitDropEvaluation e)
    {
        var names = Cifar10Set.ClassNames;
        var df = new DataFrame(
            new Int32DataFrameColumn("image", e.PerImage.Select(r => (int?)r.Index)),
            new StringDataFrameColumn("label", e.PerImage.Select(r => names[r.Label])),
            new StringDataFrameColumn("predicted", e.PerImage.Select(r => names[r.Predicted])),
            new StringDataFrameColumn("predicted_full", e.PerImage.Select(r => names[r.PredictedFull])),
            new BooleanDataFrameColumn("correct", e.PerImage.Select(r => (bool?)(r.Predicted == r.Label))),
            new BooleanDataFrameColumn("agrees", e.PerImage.Select(r => (bool?)(r.Predicted == r.PredictedFull))));
        int stages = e.Schedule?.Boundaries.Count ?? 0;
        for (int s = 0; s < stages; s++)
        {
            int si = s;
            df.Columns.Add(new Int32DataFrameColumn($"patches_after_{e.Schedule!.Boundaries[si]}", e.PerImage.Select(r => (int?)r.Run.Stages[si].Kept.Length)));
        }
        return df;
    }

    /// <summary>Class probabilities of both runs, one row per CIFAR-10 class.</summary>
    public static DataFrame ToDataFrame(this VitImageDrop d) => new(
        new StringDataFrameColumn("class", Cifar10Set.ClassNames),
        new DoubleDataFrameColumn("p_full", VitImageDrop.Softmax(d.Full.Logits).Select(p => (double?)p)),
        new DoubleDataFrameColumn("p_dropped", VitImageDrop.Softmax(d.Dropped.Logits).Select(p => (double?)p)));

    /// <summary>The frontier, one row per setting.</summary>
    public static DataFrame ToDataFrame(this SweepResult s) => new(
        new StringDataFrameColumn("method", s.Points.Select(p => p.Method)),
        new StringDataFrameColumn("ranking", s.Points.Select(p => p.Schedule is null ? "-" : p.Ranking.ToString().ToLowerInvariant())),
        new StringDataFrameColumn("layers", s.Points.Select(p => p.Layers)),
        new StringDataFrameColumn("keep", s.Points.Select(p => p.Keep)),
        new StringDataFrameColumn("tokens_per_layer", s.Points.Select(p => string.Join("/", p.Cost.Layers.Select(l => l.Tokens)))),
        new DoubleDataFrameColumn("flops_ratio", s.Points.Select(p => (double?)p.FlopsRatio)),
        new DoubleDataFrameColumn("accuracy", s.Points.Select(p => (double?)p.Accuracy)),
        new DoubleDataFrameColumn("agreement", s.Points.Select(p => (double?)p.Agreement)));

    /// <summary>Per-layer MACs and FLOPs by part.</summary>
    public static DataFrame ToDataFrame(this CostReport c) => new(
        new Int32DataFrameColumn("layer", c.Layers.Select(l => (int?)l.Layer)),
        new Int32DataFrameColumn("tokens", c.Layers.Select(l => (int?)l.Tokens)),
        new Int64DataFrameColumn("proj_macs", c.Layers.Select(l => (long?)l.Projections)),
        new Int64DataFrameColumn("attn_macs", c.Layers.Select(l => (long?)l.Attention)),
        new Int64DataFrameColumn("mlp_macs", c.Layers.Select(l => (long?)l.Mlp)),
        new Int64DataFrameColumn("macs", c.Layers.Select(l => (long?)l.Total)),
        new Int64DataFrameColumn("flops", c.Layers.Select(l => (long?)(2 * l.Total))));
}
