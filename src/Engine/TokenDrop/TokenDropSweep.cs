using Workbench.Engine.Models;
using Microsoft.Data.Analysis;
using Workbench.Engine.Vision;

namespace Workbench.Engine.TokenDrop;

/// <summary>One point of a sweep: a schedule (null = full model) and a ranking.</summary>
public sealed record SweepPoint(string Method, PyramidSchedule? Schedule, DropRanking Ranking);

/// <summary>Quality against cost for many drop settings: the frontier, one row per setting.</summary>
public sealed record SweepResult(IReadOnlyList<VitDropEvaluation> Points)
{
    public DataFrame ToDataFrame() => new(
        new StringDataFrameColumn("method", Points.Select(p => p.Method)),
        new StringDataFrameColumn("ranking", Points.Select(p => p.Schedule is null ? "-" : p.Ranking.ToString().ToLowerInvariant())),
        new StringDataFrameColumn("layers", Points.Select(p => p.Layers)),
        new StringDataFrameColumn("keep", Points.Select(p => p.Keep)),
        new StringDataFrameColumn("tokens_per_layer", Points.Select(p => string.Join("/", p.Cost.Layers.Select(l => l.Tokens)))),
        new DoubleDataFrameColumn("flops_ratio", Points.Select(p => (double?)p.FlopsRatio)),
        new DoubleDataFrameColumn("accuracy", Points.Select(p => (double?)p.Accuracy)),
        new DoubleDataFrameColumn("agreement", Points.Select(p => (double?)p.Agreement)));
}

public static class TokenDropSweep
{
    /// <summary>
    /// The default frontier for the 4-block ViT: PyramidDrop over lambda and stage layouts, FastV over K and R,
    /// random and least-attended at the same schedules, and the full model.
    /// </summary>
    public static IReadOnlyList<SweepPoint> DefaultVitGrid()
    {
        var points = new List<SweepPoint> { new("full", null, DropRanking.Attention) };
        int[][] layouts = [[1, 2, 3], [2, 3], [1, 3], [2]];
        foreach (var layout in layouts.Where(l => l.Length > 1))
            foreach (var lambda in new[] { 0.25, 0.5, 0.75 })
                foreach (var r in Enum.GetValues<DropRanking>())
                    points.Add(new("pyramid", PyramidSchedule.Pyramid(layout, lambda), r));
        foreach (var k in new[] { 1, 2, 3 })
            foreach (var keep in new[] { 0.25, 0.5, 0.75 })
                foreach (var r in Enum.GetValues<DropRanking>())
                    points.Add(new("fastv", PyramidSchedule.FastV(k, keep), r));
        return points;
    }

    public static SweepResult Vit(VitModel model, Cifar10Set set, IEnumerable<SweepPoint>? points = null, int seed = 0, int threads = 0)
    {
        var full = VitTokenDrop.FullPredictions(model, set, threads);
        var evals = (points ?? DefaultVitGrid())
            .Select(p => VitTokenDrop.Evaluate(model, set, p.Schedule, p.Ranking, seed, full, threads, p.Method))
            .ToList();
        return new SweepResult(evals);
    }
}
