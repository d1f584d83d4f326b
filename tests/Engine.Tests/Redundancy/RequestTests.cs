using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;
using Workbench.Engine.Requests;
using Workbench.Engine.Text;

namespace Workbench.Engine.Tests.Redundancy;

/// <summary>RedundancyRequest and DropRequest: defaults, one validation naming the options, progress, cancellation.</summary>
public class RequestTests
{
    private sealed class Sink : IProgress<RunProgress>
    {
        public List<RunProgress> Reports { get; } = [];
        public void Report(RunProgress value) => Reports.Add(value);
    }

    private static IReadOnlyList<int[]> StoriesCalibration(int samples, int seq, int seed)
    {
        var d = Shared.Stories;
        return Corpus.Load(Bundled.TinyStories).Split(seed).Calibration(t => d.Tokenizer.Encode(t), samples, seq, pack: true).Sequences;
    }

    [Fact]
    public void Redundancy_request_scores_the_calibration_set_its_options_describe()
    {
        var sink = new Sink();
        var a = new RedundancyRequest { Model = "stories260K", Granularity = "attn", Samples = 2, Seq = 64, Seed = 5 }.Run(sink);
        var want = Importance.Measure(Shared.Stories.Model, StoriesCalibration(2, 64, 5));
        Assert.Equal(want.Attention, a.Scores.Attention);
        Assert.Equal(want.Block, a.Scores.Block);
        Assert.Equal(Granularity.Attention, a.Granularity);
        Assert.Equal(128, a.Calibration.Tokens);
        Assert.Equal([(1, 2), (2, 2)], sink.Reports.Select(r => (r.Done, r.Total)));
        Assert.Equal($"{want.Tokens} tokens", sink.Reports[^1].Detail);
    }

    [Fact]
    public void Defaults_depend_on_the_task_8_x_128_for_decoders_16_x_64_for_encoders()
    {
        var dec = RedundancyInputs.Prepare(Shared.Stories);
        Assert.Equal(8, dec.Calibration.Sequences.Count);
        Assert.All(dec.Calibration.Sequences, s => Assert.Equal(128, s.Length)); // packed
        var enc = RedundancyInputs.Prepare(Shared.MiniLm);
        Assert.Equal(16, enc.Calibration.Sequences.Count);
        Assert.All(enc.Calibration.Sequences, s => Assert.InRange(s.Length, 3, 64)); // one paragraph each, [CLS] .. [SEP]
        Assert.True(TextTask.Of(Shared.Stories).NextToken);
        Assert.False(TextTask.Of(Shared.MiniLm).NextToken);
    }

    [Fact]
    public void Drop_request_sweep_matches_the_engine_and_reports_every_row()
    {
        var sink = new Sink();
        var result = new DropRequest { Model = "stories260K", Granularity = "mlp", Count = 2, Sweep = true, NoSpeed = true, Samples = 2, Seq = 64 }.Run(sink);
        var sweep = Assert.IsType<DropSweep>(result);
        var (model, split) = (Shared.Stories, Corpus.Load(Bundled.TinyStories).Split(0));
        var want = DropSweep.Run(new DropEvaluator(model, split), StoriesCalibration(2, 64, 0), Granularity.Mlp, DropStrategy.OneShot, 2, measureSpeed: false);
        Assert.Equal(want.Plan.Dropped, sweep.Plan.Dropped);
        for (int k = 0; k <= 2; k++) Assert.Equal(want.Rows[k].Quality, sweep.Rows[k].Quality);
        Assert.All(sweep.Rows, r => Assert.Null(r.Speed));
        Assert.Equal([0, 1, 2, 3], sink.Reports.Select(r => r.Done));
        Assert.All(sink.Reports, r => Assert.Equal(3, r.Total));
        Assert.NotNull(sweep.Split);
        Assert.Equal(want.Evaluation!.Tokens, sweep.Evaluation!.Tokens);

        var one = Assert.IsType<DropRun>(new DropRequest { Model = "stories260K", Granularity = "mlp", Count = 2, NoSpeed = true, Samples = 2, Seq = 64 }.Run());
        Assert.Equal(want.Plan.Dropped, one.Plan.Dropped);
        Assert.Equal(want.Rows[2].Quality, one.Report.Quality);
    }

    [Theory]
    [InlineData("--granularity", "heads", 1, null, null, null, null)]
    [InlineData("--count", "mlp", 6, null, null, null, null)]
    [InlineData("--count", "mlp", 2, "0,1,2,3", null, null, null)]
    [InlineData("--count", "mlp", -1, null, null, null, null)]
    [InlineData("--never", "mlp", 1, "7", null, null, null)]
    [InlineData("--never", "mlp", 1, "1;2", null, null, null)]
    [InlineData("--strategy", "mlp", 1, null, "greedy", null, null)]
    [InlineData("--samples", "mlp", 1, null, null, 0, null)]
    [InlineData("--seq", "mlp", 1, null, null, null, 1)]
    [InlineData("--seq", "mlp", 1, null, null, null, 600)]
    public void Validation_names_the_option_on_one_line(string option, string granularity, int count, string? never, string? strategy, int? samples, int? seq)
    {
        var request = new DropRequest
        {
            Model = "stories260K", Granularity = granularity, Count = count, Never = never, Strategy = strategy ?? "one-shot", Samples = samples, Seq = seq,
        };
        var e = Assert.Throws<OptionException>(request.Validate);
        Assert.Equal(option, e.Option);
        Assert.StartsWith(option, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Text_on_an_image_model_or_a_missing_corpus_is_refused_by_name()
    {
        new RedundancyRequest { Model = "vit-cifar10", Granularity = "block" }.Validate(); // images: its task's calibration
        Assert.Equal("--corpus", Assert.Throws<OptionException>(new RedundancyRequest { Model = "vit-cifar10", Granularity = "block", Corpus = "persuasion" }.Validate).Option);
        Assert.Equal("--corpus", Assert.Throws<OptionException>(new RedundancyRequest { Model = "minilm", Granularity = "block", Corpus = "/nonexistent.txt" }.Validate).Option);
    }

    [Fact]
    public void A_cancelled_request_stops()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => new RedundancyRequest { Model = "stories260K", Granularity = "block", Samples = 1, Seq = 16 }.Run(cancel: cts.Token));
    }

    [Fact]
    public void A_bundled_corpus_is_named_and_an_unknown_one_is_refused_listing_the_names()
    {
        var a = new RedundancyRequest { Model = "stories260K", Granularity = "block", Samples = 2, Seq = 64, Corpus = "persuasion" }.Run();
        var want = Importance.Measure(Shared.Stories.Model,
            Corpus.Load("persuasion").Split(0).Calibration(t => Shared.Stories.Tokenizer.Encode(t), 2, 64, pack: true).Sequences);
        Assert.Equal(want.Block, a.Scores.Block);
        Assert.Equal(Bundled.Persuasion, a.Split!.Corpus.Source);
        var e = Assert.Throws<OptionException>(new DropRequest { Model = "stories260K", Granularity = "block", Count = 1, Corpus = "middlemarch" }.Validate);
        Assert.Equal("--corpus", e.Option);
        Assert.Contains("persuasion", e.Message);
    }
}
