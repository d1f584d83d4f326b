using Workbench.Engine.Models;
using Workbench.Engine.Tests.Vision;
using Workbench.Engine.TokenDrop;

namespace Workbench.Engine.Tests.TokenDrop;

/// <summary>The progress and cancellation hooks the notebook layer uses.</summary>
public class EvaluateProgressTests
{
    private sealed class Counter : IProgress<int>
    {
        public readonly List<int> Seen = [];
        public void Report(int value) { lock (Seen) Seen.Add(value); }
    }

    [Fact]
    public void Vit_evaluation_reports_every_image_once_and_stops_when_cancelled()
    {
        var set = VitTestData.Set.Every(50);
        var counter = new Counter();
        var e = VitTokenDrop.Evaluate(VitTestData.Model, set, PyramidSchedule.FastV(2, 0.5), progress: counter);
        Assert.Equal(Enumerable.Range(1, set.Count), counter.Seen.Order());
        Assert.Equal(set.Count, e.Images);

        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            VitTokenDrop.Evaluate(VitTestData.Model, set, PyramidSchedule.FastV(2, 0.5), cancellation: cts.Token));
    }

    [Fact]
    public void Decoder_evaluation_reports_each_prompt_and_stops_when_cancelled()
    {
        var dec = ModelHub.LoadDecoder("stories260K");
        var prompts = LanguageTokenDrop.TinyStoriesPrompts(2, 600);
        var counter = new Counter();
        LanguageTokenDrop.EvaluateDecoder(dec, prompts, PyramidSchedule.FastV(2, 0.5), maxContinuation: 4, progress: counter);
        Assert.Equal([1, 2], counter.Seen);

        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            LanguageTokenDrop.EvaluateDecoder(dec, prompts, PyramidSchedule.FastV(2, 0.5), cancellation: cts.Token));
    }
}
