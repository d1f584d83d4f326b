using Workbench.Engine.Models;
using Microsoft.Data.Analysis;
using Workbench.Engine.Vision;

namespace Workbench.Engine.TokenDrop;

/// <summary>
/// One image through the ViT twice, in full and with a drop schedule: what a reader needs to see which patches
/// survived each stage (<see cref="VitDropRun.StageMasks"/>), what CLS attended to, and how the prediction moved.
/// </summary>
public sealed record VitImageDrop(string Name, VitImage Image, PyramidSchedule Schedule, DropRanking Ranking, int Seed,
    VitDropRun Full, VitDropRun Dropped)
{
    public string PredictedFull => VitModel.ClassNames[Full.Predicted];
    public string Predicted => VitModel.ClassNames[Dropped.Predicted];
    public double ConfidenceFull => Softmax(Full.Logits)[Full.Predicted];
    public double Confidence => Softmax(Dropped.Logits)[Dropped.Predicted];
    public bool Agrees => Full.Predicted == Dropped.Predicted;

    /// <summary>Patches alive per stage: 64 before the first boundary, then the survivors of each.</summary>
    public int[] PatchesPerStage => Dropped.StageMasks().Select(m => m.Count(k => k)).ToArray();

    /// <summary>Runs <paramref name="image"/> in full and under <paramref name="schedule"/>.</summary>
    public static VitImageDrop Run(VitModel model, VitImage image, PyramidSchedule schedule, DropRanking ranking = DropRanking.Attention,
        int seed = 0, string name = "image")
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(schedule);
        schedule.Validate(model.Config.Layers);
        var full = VitTokenDrop.Run(model, image.Hwc, null);
        var dropped = VitTokenDrop.Run(model, image.Hwc, schedule, ranking, seed);
        return new VitImageDrop(name, image, schedule, ranking, seed, full, dropped);
    }

    /// <summary>Class probabilities of both runs, one row per CIFAR-10 class.</summary>
    public DataFrame ToDataFrame()
    {
        var pf = Softmax(Full.Logits);
        var pd = Softmax(Dropped.Logits);
        return new DataFrame(
            new StringDataFrameColumn("class", VitModel.ClassNames),
            new DoubleDataFrameColumn("p_full", pf.Select(p => (double?)p)),
            new DoubleDataFrameColumn("p_dropped", pd.Select(p => (double?)p)));
    }

    internal static double[] Softmax(float[] logits)
    {
        double max = logits.Max();
        var e = logits.Select(l => Math.Exp(l - max)).ToArray();
        double sum = e.Sum();
        return e.Select(x => x / sum).ToArray();
    }
}
