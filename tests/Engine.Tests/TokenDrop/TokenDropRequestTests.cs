using Workbench.Engine.Requests;
using Workbench.Engine.Tests.Vision;
using Workbench.Engine.TokenDrop;

namespace Workbench.Engine.Tests.TokenDrop;

public class TokenDropRequestTests
{
    private static TokenDropRequest Pyramid(string layers = "1,2,3", string keep = "0.5") =>
        new() { Method = TokenDropMethod.Pyramid, Model = "vit-cifar10", Layers = layers, Keep = keep };

    [Theory]
    [InlineData("1,x", "0.5", "--layers", "--layers '1,x': 'x' is not a layer index (a comma-separated list like 1,2,3)")]
    [InlineData("3,2", "0.5", "--layers", "--layers: boundaries must be strictly increasing: 3,2")]
    [InlineData("0,1", "0.5", "--layers", "--layers: a boundary is a layer count >= 1 (drop after that many blocks)")]
    [InlineData("", "0.5", "--layers", "--layers is required (e.g. --layers 1,2,3)")]
    [InlineData("1,2", "half", "--keep", "--keep 'half' is not a finite number")]
    [InlineData("1,2,3", "0.5,0.5", "--keep", "--keep: 2 keep ratios for 3 boundaries (give one, or one per stage)")]
    [InlineData("1,2,3", "1.5", "--keep", "--keep: keep ratios must be in (0, 1]")]
    public void Schedule_errors_are_one_line_naming_the_option(string layers, string keep, string option, string message)
    {
        var e = Assert.Throws<OptionException>(() => Pyramid(layers, keep).Validate());
        Assert.Equal(option, e.Option);
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Options_are_checked_before_anything_runs()
    {
        var fastv = new TokenDropRequest { Method = TokenDropMethod.FastV, Model = "vit-cifar10", Layer = "2", Keep = "0.5" };
        Assert.Equal([2], fastv.Schedule().Boundaries);
        Assert.Equal("--keep", Assert.Throws<OptionException>(() => (fastv with { Keep = "0.5,0.5" }).Validate()).Option);
        Assert.Equal("--layer", Assert.Throws<OptionException>(() => (fastv with { Layer = null }).Validate()).Option);
        Assert.Equal("--model", Assert.Throws<OptionException>(() => (fastv with { Model = " " }).Validate()).Option);
        Assert.Equal("--rank", Assert.Throws<OptionException>(() => (fastv with { Rank = "best" }).Validate()).Option);
        Assert.Equal("--limit", Assert.Throws<OptionException>(() => (fastv with { Limit = 0 }).Validate()).Option);
        Assert.Equal("--prompts", Assert.Throws<OptionException>(() => (fastv with { Prompts = 3 }).Validate()).Option);
        Assert.Equal("--images", Assert.Throws<OptionException>(() => (fastv with { Model = "stories260K", Images = 3 }).Validate()).Option);
        Assert.Equal(DropRanking.LeastAttended, (fastv with { Rank = "least" }).Ranking);
    }

    [Fact]
    public void Data_that_is_not_what_the_model_reads_names_data()
    {
        var dir = Directory.CreateTempSubdirectory().FullName;
        try
        {
            var lm = Pyramid() with { Model = "stories260K", Data = dir };
            var e = Assert.Throws<OptionException>(() => lm.Validate());
            Assert.Equal("--data", e.Option);
            Assert.Equal($"--data {dir} is a folder; language models take a text file of blank-line-separated paragraphs", e.Message);
            var file = Path.Combine(dir, "x.txt");
            Assert.Equal("--data", Assert.Throws<OptionException>(() => (Pyramid() with { Data = file }).Validate()).Option);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Depth_is_checked_against_the_model_and_the_run_reports_progress()
    {
        var e = Assert.Throws<OptionException>(() => Pyramid("1,2,4").Run());
        Assert.Equal("--layers: boundaries must be in 1..3 for a 4-layer model", e.Message);

        var reports = new List<RunProgress>();
        var r = (Pyramid() with { Limit = 20 }).Run(new SyncProgress(reports));
        Assert.NotNull(r.Vit);
        Assert.Same(r.Vit, r.Value);
        Assert.Equal(20, r.Vit!.Images);
        Assert.Equal(20, reports.Max(p => p.Done));
        Assert.All(reports, p => Assert.Equal(20, p.Total));
        // The same numbers as the engine called directly on the same class-balanced subset.
        var direct = VitTokenDrop.Evaluate(VitTestData.Model, VitTestData.Set.Every(50).Take(20), PyramidSchedule.Pyramid([1, 2, 3], 0.5));
        Assert.Equal(direct.Accuracy, r.Vit.Accuracy);
        Assert.Equal(direct.Agreement, r.Vit.Agreement);

        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => (Pyramid() with { Limit = 20 }).Run(cancel: cts.Token));
    }

    private sealed class SyncProgress(List<RunProgress> into) : IProgress<RunProgress>
    {
        public void Report(RunProgress value) { lock (into) into.Add(value); }
    }
}
