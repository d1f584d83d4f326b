using System.Diagnostics;
using Microsoft.Data.Analysis;
using Workbench.Engine.Costs;
using Workbench.Engine.Models;
using Workbench.Engine.Vision;

namespace Workbench.Engine.TokenDrop;

/// <summary>One image through the ViT with token dropping.</summary>
public sealed record VitDropRun(float[] Logits, IReadOnlyList<DropStage> Stages, float[][] ClsAttention)
{
    public int Predicted => VitModel.ArgMax(Logits);

    /// <summary>
    /// Per stage (stage 0 = before any drop), which patches are alive: 64 flags, row-major over the 8x8 grid
    /// (patch p = token p + 1), ready to draw over the image.
    /// </summary>
    public bool[][] StageMasks()
    {
        var masks = new List<bool[]> { Enumerable.Repeat(true, VitModel.Patches).ToArray() };
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
    /// <summary>One row per image: label, predictions, surviving patch count per stage.</summary>
    public DataFrame ToDataFrame()
    {
        var df = new DataFrame(
            new Int32DataFrameColumn("image", PerImage.Select(r => (int?)r.Index)),
            new StringDataFrameColumn("label", PerImage.Select(r => VitModel.ClassNames[r.Label])),
            new StringDataFrameColumn("predicted", PerImage.Select(r => VitModel.ClassNames[r.Predicted])),
            new StringDataFrameColumn("predicted_full", PerImage.Select(r => VitModel.ClassNames[r.PredictedFull])),
            new BooleanDataFrameColumn("correct", PerImage.Select(r => (bool?)(r.Predicted == r.Label))),
            new BooleanDataFrameColumn("agrees", PerImage.Select(r => (bool?)(r.Predicted == r.PredictedFull))));
        int stages = Schedule?.Boundaries.Count ?? 0;
        for (int s = 0; s < stages; s++)
        {
            int si = s;
            df.Columns.Add(new Int32DataFrameColumn($"patches_after_{Schedule!.Boundaries[si]}", PerImage.Select(r => (int?)r.Run.Stages[si].Kept.Length)));
        }
        return df;
    }

    public string Layers => Schedule?.LayersText ?? "";
    public string Keep => Schedule?.KeepText ?? "1";
}

/// <summary>Measured prefill time with and without dropping next to the analytic prediction.</summary>
public sealed record PrefillTiming(int Images, int Runs, double FullMs, double DroppedMs, double PredictedSaving, double PredictedSavingWithRanking)
{
    public double MeasuredSaving => 1 - DroppedMs / FullMs;
}

/// <summary>Token dropping on the CIFAR-10 ViT: CLS is the query and the only protected token; 64 patches are droppable.</summary>
public static class VitTokenDrop
{
    /// <summary>Runs one image; a null schedule is the full model. Also records the CLS row of every block's attention.</summary>
    public static VitDropRun Run(VitModel model, ReadOnlySpan<byte> image, PyramidSchedule? schedule, DropRanking ranking = DropRanking.Attention, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        int layers = model.Config.Layers;
        var cls = new float[layers][];
        var hooks = new Hooks();
        for (int l = 0; l < layers; l++)
            hooks.Add(HookNames.AttnPattern(l), (p, data) => cls[p.Layer] = ClsRow(p, data));
        var dropper = schedule is null ? null : new TokenDropper(model, schedule, TokenRoles.Cls, ranking, seed);
        var logits = model.Forward(image, new ForwardContext { Hooks = hooks, Selector = dropper?.Selector, Threads = 1 });
        return new VitDropRun(logits, dropper?.Stages ?? [], cls);
    }

    // Head-averaged attention of CLS, spread over the 65 original tokens (NaN where the token was dropped).
    private static float[] ClsRow(HookPoint p, ReadOnlySpan<float> data)
    {
        int heads = p.Shape[0], n = p.Shape[1];
        int q = Array.IndexOf(p.TokenIndex, 0);
        var row = new float[VitModel.Tokens];
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
    public static int[] FullPredictions(VitModel model, Cifar10Set set, int threads = 0, CancellationToken cancellation = default)
    {
        var pred = new int[set.Count];
        Parallel.For(0, set.Count, Options(threads, cancellation), i => pred[i] = model.Classify(set.Pixels(i), new ForwardContext { Threads = 1 }));
        return pred;
    }

    /// <summary>
    /// Evaluates a schedule on the set: accuracy, agreement with the full model and the analytic FLOPs ratio (blocks only).
    /// Random ranking seeds image i with (seed, i), so results do not depend on thread scheduling.
    /// <paramref name="progress"/> gets the number of images done (from worker threads); <paramref name="cancellation"/> stops the loop.
    /// </summary>
    public static VitDropEvaluation Evaluate(VitModel model, Cifar10Set set, PyramidSchedule? schedule, DropRanking ranking = DropRanking.Attention,
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
        var cost = schedule?.Cost(shape, VitModel.Patches, 1) ?? Flops.Full(shape, VitModel.Tokens);
        double n = set.Count;
        return new VitDropEvaluation(
            method ?? (schedule is null ? "full" : schedule.Boundaries.Count == 1 ? "fastv" : "pyramid"),
            schedule, ranking, set.Count,
            results.Count(r => r.Predicted == r.Label) / n,
            results.Count(r => r.PredictedFull == r.Label) / n,
            results.Count(r => r.Predicted == r.PredictedFull) / n,
            cost.RatioTo(Flops.Full(shape, VitModel.Tokens)), cost, results);
    }

    /// <summary>
    /// Times the forward pass (embed, blocks, head) over the first <paramref name="images"/> images on one thread,
    /// with and without the schedule (attention ranking), median of <paramref name="runs"/> runs after a warm-up.
    /// </summary>
    public static PrefillTiming MeasurePrefill(VitModel model, Cifar10Set set, PyramidSchedule schedule, int images = 200, int runs = 7)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(images);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(runs);
        images = Math.Min(images, set.Count);
        double Time(PyramidSchedule? s)
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < images; i++)
            {
                var dropper = s is null ? null : new TokenDropper(model, s, TokenRoles.Cls);
                model.Forward(set.Pixels(i), new ForwardContext { Selector = dropper?.Selector, Threads = 1 });
            }
            return sw.Elapsed.TotalMilliseconds;
        }
        Time(null); Time(schedule); // warm-up (JIT tiers)
        var full = new double[runs];
        var dropped = new double[runs];
        for (int r = 0; r < runs; r++) { full[r] = Time(null); dropped[r] = Time(schedule); }
        var shape = TransformerShape.From(model.Config);
        var fullCost = Flops.Full(shape, VitModel.Tokens);
        var cost = schedule.Cost(shape, VitModel.Patches, 1);
        return new PrefillTiming(images, runs, Median(full), Median(dropped),
            1 - (double)cost.TotalMacs / fullCost.TotalMacs, 1 - (double)cost.TotalMacsWithRanking / fullCost.TotalMacs);
    }

    internal static double Median(double[] xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static ParallelOptions Options(int threads, CancellationToken cancellation = default) =>
        new() { MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount, CancellationToken = cancellation };
}
