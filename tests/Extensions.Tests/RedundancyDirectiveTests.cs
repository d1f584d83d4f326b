using System.Globalization;
using Microsoft.DotNet.Interactive.Events;
using Workbench.Engine;
using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;
using Workbench.Engine.Text;
using Workbench.Interactive.Charts;

namespace Workbench.Interactive.Tests;

/// <summary>
/// #!redundancy and #!drop in process. Expected numbers come from the engine called directly with the split the CLI
/// builds by hand (Corpus.Load(...).Split(seed).Calibration(...)), not from the extension's own helpers.
/// </summary>
[Collection("formatters")]
public class RedundancyDirectiveTests
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private static (Decoder Model, CorpusSplit Split, TokenSamples Calibration) Stories(int samples = 8, int seq = 128, int seed = 0)
    {
        var model = ModelHub.LoadDecoder("stories260K");
        var split = Corpus.Load(Bundled.TinyStories).Split(seed);
        return (model, split, split.Calibration(t => model.Tokenizer.Encode(t), samples, seq, pack: true));
    }

    [Fact]
    public async Task Redundancy_shows_the_heatmap_and_the_engine_scores_and_shares_them()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!redundancy --model stories260K --granularity attention --samples 4 --seq 64");
        r.AssertSucceeded();
        var html = r.Html();

        var (model, _, cal) = Stories(4, 64);
        var expected = Importance.Measure(model.Model, cal.Sequences);
        Assert.Contains("workbench-plotly", html);                  // the heatmap
        Assert.Contains("\"type\":\"heatmap\"", html);
        Assert.Contains("Redundancy of stories260K", html);
        // The ranking line: least important attention layer first, with its score to 4 decimals.
        var first = expected.Ranked(Granularity.Attention)[0];
        Assert.Contains($"{first.Module} {first.Importance.ToString("F4", Inv)}", html);
        // The table: every score of every kind (G6, as Html.Table prints doubles).
        foreach (var v in expected.Block.Concat(expected.Attention).Concat(expected.Mlp))
            Assert.Contains($">{v.ToString("G6", Inv)}<", html);
        Assert.Contains("calibration: 4 sequences, 256 tokens", html);

        var shared = await k.SubmitAsync("redundancy.Scores.Attention");
        shared.AssertSucceeded();
        var value = Assert.IsType<double[]>(shared.Events.OfType<ReturnValueProduced>().Single().Value);
        Assert.Equal(expected.Attention, value);
        Assert.Equal(expected.Mlp, Last.Of<RedundancyAnalysis>("#!redundancy").Scores.Mlp);
    }

    [Fact]
    public async Task Redundancy_and_drop_run_on_an_image_classifier_with_images_named_as_the_verb_names_them()
    {
        using var k = new TestKernel();
        string photos = Path.Combine(Bundled.Root, "data", "images");
        var r = await k.SubmitAsync($"#!redundancy --model vit-cifar10 --granularity block --images {photos}");
        r.AssertSucceeded();
        var task = (ImageTask)ModelTask.Of(ModelHub.Load("vit-cifar10"));
        var expected = Importance.Measure(task.Model, ImageInputs.Prepare(task, images: photos).Calibration.Inputs);
        Assert.Equal(expected.Block, Last.Of<RedundancyAnalysis>("#!redundancy").Scores.Block);
        Assert.Contains("2 images (130 tokens)", r.Html()); // the calibration half of the four photos, 65 rows each

        var d = await k.SubmitAsync("#!drop --model vit-cifar10 --granularity block --count 1 --no-speed --samples 4");
        d.AssertSucceeded();
        Assert.Contains("accuracy", d.Html());
    }

    [Fact]
    public async Task Drop_reports_quality_against_the_engine_and_the_LLM_Drop_lists()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!drop --model stories260K --granularity attention --count 2 --no-speed --as pruned");
        r.AssertSucceeded();
        var html = r.Html();

        var (model, split, cal) = Stories();
        var plan = LayerDropper.Plan(model.Model, cal.Sequences, Granularity.Attention, 2);
        var report = new DropEvaluator(model, split).Evaluate(plan.Dropped, measureSpeed: false);
        Assert.Equal(2, plan.Dropped.Count);
        Assert.Contains($"dropped, in order</th><td style=\"border:1px solid #ccc;padding:2px 6px;text-align:left\">{plan.Dropped[0]} {plan.Dropped[1]}<", html);
        Assert.Contains($"[{string.Join(",", plan.Skips.Attention.Order())}] / []", html);
        Assert.Contains(report.Quality.Kl!.Value.ToString("F4", Inv) + " nats/token", html);
        Assert.Contains(report.Quality.Top1Agreement!.Value.ToString("P1", Inv), html);
        Assert.Contains($"{report.Quality.Perplexity!.Value.ToString("F3", Inv)} (full {report.Quality.PerplexityFull!.Value.ToString("F3", Inv)})", html);
        Assert.Contains("speed not measured", html);
        Assert.Contains("\"type\":\"bar\"", html);                  // importance bars, dropped in red
        // A pruned model is worse than the full one, but not broken, on held-out text.
        Assert.True(report.Quality.Perplexity > report.Quality.PerplexityFull);

        var shared = await k.SubmitAsync("pruned.Report.Quality.Kl");
        shared.AssertSucceeded();
        Assert.Equal(report.Quality.Kl, (double?)shared.Events.OfType<ReturnValueProduced>().Single().Value);
    }

    [Fact]
    public async Task Drop_with_speed_shows_measured_KV_cache_bytes_that_match_the_prediction()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!drop --model stories260K --granularity block --count 1");
        r.AssertSucceeded();
        var run = Last.Of<DropRun>("#!drop");
        var speed = Assert.IsType<SpeedReport>(run.Report.Speed);
        // stories260K: 5 layers, KV dim 32, prompt 16 + decode 48 positions, fp32 keys and values: 4 layers kept.
        Assert.Equal(4L * 2 * 4 * 64 * 32, speed.KvCacheBytes);
        Assert.Equal(run.Report.Predicted.KvCacheBytes, speed.KvCacheBytes);
        Assert.Equal(5L * 2 * 4 * 64 * 32, run.Report.SpeedFull!.KvCacheBytes);
        var html = r.Html();
        Assert.Contains($"KV cache bytes</th><td style=\"border:1px solid #ccc;padding:2px 6px;text-align:left\">{speed.KvCacheBytes:N0} (full {run.Report.SpeedFull.KvCacheBytes:N0}", html);
        Assert.Contains("speed-up measured / FLOPs-predicted", html);
        Assert.True(run.Report.MeasuredSpeedup > 0);
    }

    [Fact]
    public async Task Sweep_evaluates_every_k_and_draws_quality_curves()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!drop --model stories260K --granularity mlp --count 2 --sweep --no-speed");
        r.AssertSucceeded();
        var sweep = Last.Of<DropSweep>("#!drop");
        Assert.Equal([0, 1, 2], sweep.Rows.Select(x => x.Dropped.Count));

        var (model, split, cal) = Stories();
        var expected = DropSweep.Run(new DropEvaluator(model, split), cal.Sequences, Granularity.Mlp, DropStrategy.OneShot, 2, measureSpeed: false);
        Assert.Equal(expected.Plan.Dropped, sweep.Plan.Dropped);
        for (int i = 0; i < 3; i++) Assert.Equal(expected.Rows[i].Quality, sweep.Rows[i].Quality);
        Assert.Equal(0, sweep.Rows[0].Quality.Kl!.Value, 12);           // k = 0 is the full model

        var html = r.Html();
        Assert.Contains("top-1 agreement with full model", html);     // the quality chart
        Assert.Contains("\"type\":\"log\"", html);
        Assert.Contains("workbench-progress", html);                  // live progress
        Assert.Contains(">3 rows<", html);
        Assert.DoesNotContain("speed and memory", html);             // no speed chart without speed runs
        (await k.SubmitAsync("sweep.Rows.Count")).AssertSucceeded();
    }

    [Fact]
    public async Task An_encoder_drop_reports_embedding_cosine_and_spearman()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!drop --model minilm --granularity attention --count 1 --samples 4 --no-speed");
        r.AssertSucceeded();
        var run = Last.Of<DropRun>("#!drop");
        var enc = ModelHub.LoadEncoder("minilm");
        var split = Corpus.Load(Bundled.PrideAndPrejudice).Split(0);
        var cal = split.Calibration(enc.Tokenizer.Encode, 4, 64, pack: false);
        var plan = LayerDropper.Plan(enc.Model, cal.Sequences, Granularity.Attention, 1);
        var q = new DropEvaluator(enc, split).Quality(plan.Skips);
        Assert.Equal(plan.Dropped, run.Plan.Dropped);
        var html = r.Html();
        Assert.Contains(q.EmbeddingCosine!.Value.ToString("F4", Inv), html);
        Assert.Contains(q.Spearman!.Value.ToString("F4", Inv), html);
        Assert.InRange(q.EmbeddingCosine.Value, 0.3, 0.9999);
    }

    [Theory]
    [InlineData("#!drop --model stories260K --granularity attention --count 6", "--count 6: attention has 5 droppable modules in 'stories260K'")]
    [InlineData("#!drop --model stories260K --granularity attention --count 2 --never 0,1,2,3", "--count 2: attention has 1 droppable modules")]
    [InlineData("#!drop --model stories260K --granularity attention --count 1 --never 7", "layer 7 is out of range: the model has layers 0..4")]
    [InlineData("#!drop --model stories260K --granularity heads --count 1", "unknown granularity 'heads'")]
    [InlineData("#!drop --model stories260K --granularity mlp --count 1 --strategy greedy", "unknown strategy 'greedy'")]
    [InlineData("#!drop --model stories260K --granularity mlp --count two", "--count 'two' is not an integer")]
    [InlineData("#!redundancy --model stories260K --granularity mlp --samples 0", "--samples 0 must be positive")]
    [InlineData("#!redundancy --model stories260K --granularity mlp --seq 600", "holds at most 512 positions")]
    [InlineData("#!redundancy --model stories260K --granularity mlp --samples 5000", "yields only")]
    [InlineData("#!redundancy --model nosuchmodel --granularity mlp", "neither a bundled model")]
    [InlineData("#!redundancy --model vit-cifar10 --granularity mlp --seq 16", "--seq 16: 'vit-cifar10' is an image classifier")]
    [InlineData("#!drop --model vit-cifar10 --granularity mlp --count 1 --corpus persuasion", "--corpus 'persuasion': 'vit-cifar10' is an image classifier")]
    [InlineData("#!redundancy --model stories260K --granularity mlp --images /nonexistent", "--images works with image classifiers")]
    [InlineData("#!redundancy --model vit-cifar10 --granularity mlp --images /nonexistent", "--images /nonexistent: no such file or folder")]
    [InlineData("#!redundancy --model stories260K --granularity mlp --corpus /nonexistent.txt", "--corpus '/nonexistent.txt' does not exist")]
    [InlineData("#!redundancy --model stories260K --granularity mlp --as 3x", "--as '3x' is not a C# identifier")]
    public async Task Bad_options_fail_with_a_clear_message_and_the_kernel_stays_alive(string magic, string message)
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync(magic);
        var failure = r.Failure();
        Assert.NotNull(failure);
        Assert.Contains(message, failure!.Message);
        Assert.Null(failure.Exception);
        Assert.Contains("workbench-error", r.Html());
        var alive = await k.SubmitAsync("1 + 1");
        alive.AssertSucceeded();
        Assert.Contains(alive.Events.OfType<ReturnValueProduced>(), e => Equals(e.Value, 2));
    }

    [Fact]
    public async Task Stories_side_by_side_match_the_engine_generation()
    {
        using var k = new TestKernel();
        var dropped = new[] { new ModuleRef(2, ModuleKind.Attention) };
        var r = await k.SubmitAsync("""
            using Workbench.Engine.Redundancy;
            StoryComparison.Generate(Workbench.Engine.Models.ModelHub.LoadDecoder("stories260K"), "Once upon a time", 40,
                ("full", new ModuleRef[0]), ("attention 2 dropped", new[] { new ModuleRef(2, ModuleKind.Attention) }))
            """);
        r.AssertSucceeded();
        var model = ModelHub.LoadDecoder("stories260K");
        var full = model.Generate("Once upon a time", 40);
        var pruned = model.Generate("Once upon a time", 40, skips: Modules.ToSkips(dropped));
        var html = r.Html();
        Assert.Contains("workbench-stories", html);
        Assert.Contains(System.Net.WebUtility.HtmlEncode(full.Text["Once upon a time".Length..]), html);
        Assert.Contains(System.Net.WebUtility.HtmlEncode(pruned.Text["Once upon a time".Length..]), html);
        Assert.Contains("dropped 2.attention", html);
        Assert.NotEqual(full.Text, pruned.Text);
    }

    [Fact]
    public void Heatmap_table_has_a_row_per_layer()
    {
        var m = ModelHub.LoadDecoder("babyllama");
        var cal = Corpus.Load(Bundled.TinyStories).Split(1).Calibration(t => m.Tokenizer.Encode(t), 2, 32, pack: true).Sequences;
        var s = Importance.Measure(m.Model, cal);
        var df = s.ToDataFrame();
        Assert.Equal(m.Config.Layers, df.Rows.Count);
        Assert.Equal(["layer", "block", "attention", "mlp"], df.Columns.Select(c => c.Name));
        Assert.Equal(s.Mlp[2], (double)df["mlp"][2]);
        Assert.Equal(3 * m.Config.Layers, s.ToLongDataFrame().Rows.Count);
    }

    [Fact]
    public async Task Redundancy_on_the_held_out_novel_scores_what_the_engine_scores()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!redundancy --model babyllama --granularity mlp --samples 2 --seq 64 --corpus persuasion --as novel");
        r.AssertSucceeded();
        var m = ModelHub.LoadDecoder("babyllama");
        var split = Corpus.Load("persuasion").Split(0);
        var expected = Importance.Measure(m.Model, split.Calibration(t => m.Tokenizer.Encode(t), 2, 64, pack: true).Sequences);
        Assert.Equal(expected.Mlp, Last.Of<RedundancyAnalysis>("#!redundancy").Scores.Mlp);
        Assert.Contains($"persuasion.txt: {split.Corpus.Documents.Count} documents", r.Html());
    }

    [Fact]
    public void Quality_by_cost_puts_each_row_at_the_share_of_predicted_flops_it_removes()
    {
        var m = ModelHub.LoadDecoder("stories260K");
        var split = Corpus.Load(Bundled.TinyStories).Split(1);
        var cal = split.Calibration(t => m.Tokenizer.Encode(t), 2, 32, pack: true).Sequences;
        var evaluator = new DropEvaluator(m, split, new EvaluationOptions(Samples: 2, SeqLen: 32));
        var attn = DropSweep.Run(evaluator, cal, Granularity.Attention, DropStrategy.OneShot, 2, measureSpeed: false);
        var mlp = DropSweep.Run(evaluator, cal, Granularity.Mlp, DropStrategy.OneShot, 2, measureSpeed: false);
        var json = System.Text.Json.Nodes.JsonNode.Parse(Plotly.NET.GenericChart.toFigureJson(RedundancyCharts.QualityByCost(attn, mlp)))!;
        var traces = json["data"]!.AsArray();
        Assert.Equal(4, traces.Count); // top-1 and KL panels for each sweep
        // x: 1 - pruned / full decode FLOPs per token, recomputed here from the predicted costs.
        var want = mlp.Rows.Select(r => 1 - (double)r.Predicted.DecodeFlopsPerToken / r.PredictedFull.DecodeFlopsPerToken).ToArray();
        Assert.Equal(want, traces[2]!["x"]!.AsArray().Select(x => (double)x!).ToArray());
        Assert.Equal(0.0, want[0]);
        Assert.True(want[2] > want[1] && want[1] > 0);
        Assert.Equal(mlp.Rows.Select(r => r.Quality.Top1Agreement), traces[2]!["y"]!.AsArray().Select(y => (double?)y));
        Assert.Equal(".0%", (string)json["layout"]!["xaxis"]!["tickformat"]!);
        // The count chart is unchanged: k on the x axis.
        var counts = System.Text.Json.Nodes.JsonNode.Parse(Plotly.NET.GenericChart.toFigureJson(RedundancyCharts.QualityCurves(attn, mlp)))!;
        Assert.Equal([0.0, 1, 2], counts["data"]![0]!["x"]!.AsArray().Select(x => (double)x!));
    }

    [Fact]
    public void Charts_turn_non_finite_values_into_gaps()
    {
        // An encoder with every block dropped costs 0 FLOPs: a predicted speed-up of infinity must not reach plotly.js.
        var enc = ModelHub.LoadEncoder("minilm");
        var split = Corpus.Load(Bundled.PrideAndPrejudice).Split(0);
        var cal = split.Calibration(enc.Tokenizer.Encode, 3, 16, pack: false);
        var evaluator = new DropEvaluator(enc, split, new EvaluationOptions(Sentences: 3, SeqLen: 16));
        var plan = LayerDropper.Plan(enc.Model, cal.Sequences, Granularity.Block, 6);
        var rows = new[] { evaluator.Evaluate([], false), evaluator.Evaluate(plan.Dropped, false) };
        Assert.True(double.IsPositiveInfinity(rows[1].PredictedSpeedup));
        var sweep = new DropSweep("minilm", Granularity.Block, DropStrategy.OneShot, plan, rows);
        var json = Plotly.NET.GenericChart.toFigureJson(RedundancyCharts.SpeedAndMemory(sweep));
        Assert.DoesNotContain("Infinity", json);
        Assert.DoesNotContain("NaN", json);
    }
}
