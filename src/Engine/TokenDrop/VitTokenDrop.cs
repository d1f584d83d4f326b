using System.Numerics.Tensors;
using Workbench.Engine.Costs;
using Workbench.Engine.Models;
using Workbench.Engine.Vision;

namespace Workbench.Engine.TokenDrop;

/// <summary>One image through the ViT with token dropping.</summary>
public sealed record VitDropRun(float[] Logits, IReadOnlyList<DropStage> Stages, float[][] ClsAttention)
{
    public int Predicted => TensorPrimitives.IndexOfMax(Logits);

    /// <summary>
    /// Per stage (stage 0 = before any drop), which patches are alive: one flag per patch (64 for the CIFAR-10 ViT),
    /// row-major over the grid (patch p = token p + 1), ready to draw over the image.
    /// </summary>
    public bool[][] StageMasks()
    {
        var masks = new List<bool[]> { Enumerable.Repeat(true, ClsAttention[0].Length - 1).ToArray() };
        foreach (var s in Stages)
        {
            var m = (bool[])masks[^1].Clone();
            foreach (var t in s.Dropped) if (t >= 1) m[t - 1] = false;
            masks.Add(m);
        }
        return masks.ToArray();
    }
}

public sealed record VitImageResult(int Index, int Label, int Predicted, int PredictedFull, VitDropRun Run);

/// <summary>A drop method evaluated on an image set, with its analytic cost.</summary>
public sealed record VitDropEvaluation(
    string Method, PyramidSchedule? Schedule, DropRanking Ranking, int Images,
    double Accuracy, double AccuracyFull, double Agreement, double FlopsRatio, CostReport Cost,
    IReadOnlyList<VitImageResult> PerImage)
{
    public string Layers => Schedule?.LayersText ?? "";
    public string Keep => Schedule?.KeepText ?? "1";
}

/// <summary>Token dropping on an image classifier (the CIFAR-10 ViT): CLS is the query and the only protected token; every patch is droppable.</summary>
public static class VitTokenDrop
{
    /// <summary>Runs one image; a null schedule is the full model. Also records the CLS row of every block's attention.</summary>
    public static VitDropRun Run(ITransformerModel model, ReadOnlySpan<byte> image, PyramidSchedule? schedule, DropRanking ranking = DropRanking.Attention, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        int layers = model.Config.Layers;
        var cls = new float[layers][];
        var hooks = new Hooks();
        for (int l = 0; l < layers; l++)
            hooks.Add(HookNames.AttnPattern(l), (p, data) => cls[p.Layer] = ClsRow(p, data, model.Config.MaxSeq));
        var dropper = schedule is null ? null : new TokenDropper(model, schedule, TokenRoles.Cls, ranking, seed);
        var logits = model.Forward(ModelInput.Of(image.ToArray()), new ForwardContext { Hooks = hooks, Selector = dropper?.Selector, Threads = 1 }).Output;
        return new VitDropRun(logits, dropper?.Stages ?? [], cls);
    }

    // Head-averaged attention of CLS, spread over the original tokens (NaN where the token was dropped).
    private static float[] ClsRow(HookPoint p, ReadOnlySpan<float> data, int tokens)
    {
        int heads = p.Shape[0], n = p.Shape[1];
        int q = Array.IndexOf(p.TokenIndex, 0);
        var row = new float[tokens];
        Array.Fill(row, float.NaN);
        for (int j = 0; j < n; j++)
        {
            float s = 0;
            for (int h = 0; h < heads; h++) s += data[(h * n + q) * n + j];
            row[p.TokenIndex[j]] = s / heads;
        }
        return row;
    }

    /// <summary>Predictions of the full model on every image of the set.</summary>
    public static int[] FullPredictions(ITransformerModel model, Cifar10Set set, int threads = 0, CancellationToken cancellation = default)
    {
        var pred = new int[set.Count];
        Parallel.For(0, set.Count, Options(threads, cancellation), i =>
            pred[i] = TensorPrimitives.IndexOfMax(model.Forward(ModelInput.Of(set.Pixels(i).ToArray()), new ForwardContext { Threads = 1 }).Output));
        return pred;
    }

    /// <summary>
    /// Evaluates a schedule on the set: accuracy, agreement with the full model and the analytic FLOPs ratio (blocks only).
    /// Random ranking seeds image i with (seed, i), so results do not depend on thread scheduling.
    /// <paramref name="progress"/> gets the number of images done (from worker threads); <paramref name="cancellation"/> stops the loop.
    /// </summary>
    public static VitDropEvaluation Evaluate(ITransformerModel model, Cifar10Set set, PyramidSchedule? schedule, DropRanking ranking = DropRanking.Attention,
        int seed = 0, int[]? fullPredictions = null, int threads = 0, string? method = null,
        IProgress<int>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(set);
        schedule?.Validate(model.Config.Layers);
        if (fullPredictions is not null && fullPredictions.Length != set.Count)
            throw new ArgumentException($"{fullPredictions.Length} predictions for {set.Count} images", nameof(fullPredictions));
        var full = fullPredictions ?? FullPredictions(model, set, threads, cancellation);
        var results = new VitImageResult[set.Count];
        int done = 0;
        Parallel.For(0, set.Count, Options(threads, cancellation), i =>
        {
            var run = Run(model, set.Pixels(i), schedule, ranking, DropSeeds.For(seed, i));
            results[i] = new VitImageResult(i, set.Labels[i], run.Predicted, full[i], run);
            progress?.Report(Interlocked.Increment(ref done));
        });
        var shape = TransformerShape.From(model.Config);
        int tokens = model.Config.MaxSeq; // CLS + every patch
        var cost = schedule?.Cost(shape, tokens - 1, 1) ?? Flops.Full(shape, tokens);
        double n = set.Count;
        return new VitDropEvaluation(
            method ?? (schedule is null ? "full" : schedule.Boundaries.Count == 1 ? "fastv" : "pyramid"),
            schedule, ranking, set.Count,
            results.Count(r => r.Predicted == r.Label) / n,
            results.Count(r => r.PredictedFull == r.Label) / n,
            results.Count(r => r.Predicted == r.PredictedFull) / n,
            cost.RatioTo(Flops.Full(shape, tokens)), cost, results);
    }

    private static ParallelOptions Options(int threads, CancellationToken cancellation = default) =>
        new() { MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount, CancellationToken = cancellation };
}
