using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.DotNet.Interactive.Events;
using Workbench.Engine;
using Workbench.Engine.Costs;
using Workbench.Engine.Models;
using Workbench.Engine.TokenDrop;
using Workbench.Engine.Vision;
using Workbench.Interactive.Charts;

namespace Workbench.Interactive.Tests;

/// <summary>#!pyramid-drop and #!fastv in a kernel, checked against the engine called directly.</summary>
[Collection("formatters")]
public class TokenDropDirectiveTests
{
    private static readonly Lazy<VitModel> Vit = new(VitModel.LoadBundled);
    private static readonly Lazy<Cifar10Set> Set = new(Cifar10Set.LoadBundled);

    private static string Pct(double x) => x.ToString("P1", CultureInfo.InvariantCulture);
    private static int PlotlyDivs(string html) => Regex.Matches(html, "class=\"workbench-plotly\"").Count;

    private static async Task<object?> Value(TestKernel k, string expression)
    {
        var r = await k.SubmitAsync(expression);
        r.AssertSucceeded();
        return r.Events.OfType<ReturnValueProduced>().Single().Value;
    }

    [Fact]
    public async Task Pyramid_drop_on_a_subset_matches_the_engine_and_draws_its_chart()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!pyramid-drop --model vit-cifar10 --layers 1,2,3 --keep 0.5 --images 50");
        r.AssertSucceeded();

        // The same subset the directive takes (every 20th image, as the CLI's --limit), through the engine.
        var expected = VitTokenDrop.Evaluate(Vit.Value, Set.Value.Every(20).Take(50), PyramidSchedule.Pyramid([1, 2, 3], 0.5));
        var html = r.Html();
        Assert.Contains("text/html", r.Formatted().Select(f => f.MimeType));
        Assert.Contains($">{Pct(expected.Accuracy)}<", html);
        Assert.Contains($">{Pct(expected.AccuracyFull)}<", html);
        Assert.Contains(">65 / 33 / 17 / 9<", html);
        Assert.Contains(">0.448<", html); // FLOPs ratio of 65/33/17/9 tokens over 4 blocks
        Assert.True(PlotlyDivs(html) >= 1, "the per-class accuracy chart is missing");
        Assert.Contains("\"type\":\"bar\"", html);
        Assert.Contains("10 of 50 rows shown", html); // the per-image table, cut

        // Shared with C# under the default name, with the engine's numbers.
        Assert.Equal(expected.Accuracy, await Value(k, "pyramidDrop.Accuracy"));
        Assert.Equal(50, await Value(k, "pyramidDrop.Images"));
        Assert.Equal(expected.PerImage.Select(p => p.Predicted), Last.Of<VitDropEvaluation>("#!pyramid-drop").PerImage.Select(p => p.Predicted));
    }

    [Fact]
    public async Task Pyramid_drop_on_llava_drops_image_tokens_and_matches_the_engine()
    {
        var folder = Path.GetDirectoryName(Bundled.Path("data/goldens/arch/llava/config.json"))!;
        var image = Bundled.Path("data/images/chelsea.png");
        using var k = new TestKernel();
        var r = await k.SubmitAsync($"#!pyramid-drop --model \"{folder}\" --layers 1,2 --keep 0.5 --image \"{image}\" --as vl");
        r.AssertSucceeded();
        var expected = new TokenDropRequest { Method = TokenDropMethod.Pyramid, Model = folder, Layers = "1,2", Keep = "0.5", Image = image }.Run().VisionLanguage!;
        var html = r.Html();
        Assert.Contains("16 → 8 → 4 of 28 prompt tokens", html);
        Assert.Contains(expected.Kl.ToString("F4", CultureInfo.InvariantCulture) + " nats", html);
        Assert.Equal(expected.FlopsRatio, await Value(k, "vl.FlopsRatio"));
    }

    [Fact]
    public async Task FastV_with_random_ranking_and_a_seed_matches_the_engine()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!fastv --model vit-cifar10 --layer 2 --keep 0.25 --rank random --seed 7 --images 40 --as fv");
        r.AssertSucceeded();
        var expected = VitTokenDrop.Evaluate(Vit.Value, Set.Value.Every(25).Take(40), PyramidSchedule.FastV(2, 0.25), DropRanking.Random, seed: 7);
        var html = r.Html();
        Assert.Contains("fastv on vit-cifar10", html);
        Assert.Contains(">random<", html);
        Assert.Contains(">65 / 65 / 17 / 17<", html);
        Assert.Contains($">{Pct(expected.Accuracy)}<", html);
        Assert.Equal(expected.Accuracy, await Value(k, "fv.Accuracy"));
        Assert.Equal("fastv", await Value(k, "fv.Method"));
    }

    [Fact]
    public async Task One_image_shows_the_kept_patches_per_stage_and_the_attention_maps()
    {
        using var k = new TestKernel();
        var path = Path.Combine(Bundled.Root, "data", "images", "chelsea.png");
        var r = await k.SubmitAsync($"#!pyramid-drop --model vit-cifar10 --layers 1,2,3 --keep 0.5 --image \"{path}\" --as cat");
        r.AssertSucceeded();
        var expected = VitImageDrop.Run(Vit.Value, VitImage.FromFile(path), PyramidSchedule.Pyramid([1, 2, 3], 0.5));
        var html = r.Html();
        Assert.Contains("chelsea.png", html);
        Assert.Contains(">64 → 32 → 16 → 8<", html);
        Assert.Contains($">{expected.PredictedFull} ({Pct(expected.ConfidenceFull)})<", html);
        Assert.Contains($">{expected.Predicted} ({Pct(expected.Confidence)})<", html);
        Assert.Equal(2, PlotlyDivs(html)); // stage overlay + attention maps
        Assert.Equal(4, Regex.Matches(html, "\"type\":\"image\"").Count); // one panel per stage
        Assert.Equal(8, Regex.Matches(html, "\"type\":\"heatmap\"").Count); // 4 layers, full and dropped
        Assert.Contains(">p_dropped</th>", html);

        // The masks the chart greys out are the engine's: 8 patches alive in the last stage.
        var masks = (bool[][])(await Value(k, "cat.Dropped.StageMasks()"))!;
        Assert.Equal(expected.Dropped.StageMasks(), masks);
        Assert.Equal(8, masks[^1].Count(m => m));

        // A CIFAR-10 index works too.
        var byIndex = await k.SubmitAsync("#!fastv --model vit-cifar10 --layer 1 --keep 0.5 --image 17");
        byIndex.AssertSucceeded();
        Assert.Contains($"CIFAR-10 #17 ({VitModel.ClassNames[Set.Value.Labels[17]]})", byIndex.Html());
        Assert.Contains(">64 → 32<", byIndex.Html());
    }

    [Fact]
    public async Task A_language_model_reports_its_kl_as_the_engine_does()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!pyramid-drop --model stories260K --layers 1,2,3 --keep 0.5 --prompts 3 --as lm");
        r.AssertSucceeded();
        var dec = ModelHub.LoadDecoder("stories260K");
        var expected = LanguageTokenDrop.EvaluateDecoder(dec, LanguageTokenDrop.TinyStoriesPrompts(3, 1000), PyramidSchedule.Pyramid([1, 2, 3], 0.5));
        var html = r.Html();
        Assert.Contains("pyramid on stories260K", html);
        Assert.Contains($">{expected.Kl.ToString("F4", CultureInfo.InvariantCulture)} nats<", html);
        Assert.True(PlotlyDivs(html) >= 1);
        Assert.Equal(expected.Kl, await Value(k, "lm.Kl"));
        Assert.True(expected.Kl > 0, "dropping half the context must change the next-token distribution");
    }

    [Fact]
    public async Task An_encoder_reports_the_embedding_cosine_as_the_engine_does()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!fastv --model minilm --layer 2 --keep 0.5 --prompts 3 --as enc");
        r.AssertSucceeded();
        var texts = LanguageTokenDrop.TinyStoriesPrompts(3, 500).Select(p => p.Context).ToList();
        var expected = LanguageTokenDrop.EvaluateEncoder(ModelHub.LoadEncoder("minilm"), texts, PyramidSchedule.FastV(2, 0.5));
        var html = r.Html();
        Assert.Contains("token dropping on minilm", html);
        Assert.Contains($">{expected.MeanCosine.ToString("F4", CultureInfo.InvariantCulture)}<", html);
        Assert.True(PlotlyDivs(html) >= 1);
        Assert.Equal(expected.MeanCosine, await Value(k, "enc.MeanCosine"));
        Assert.InRange(expected.MeanCosine, 0.5, 0.9999); // changed by dropping, but still the same text
    }

    [Fact]
    public async Task Prompts_from_the_held_out_novel_are_named_with_data_persuasion()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!fastv --model stories260K --layer 2 --keep 0.5 --data persuasion --prompts 2 --as novel");
        r.AssertSucceeded();
        var prompts = LanguageTokenDrop.TinyStoriesPrompts(2, TokenDropRequest.DecoderContextChars, "persuasion");
        var expected = LanguageTokenDrop.EvaluateDecoder(ModelHub.LoadDecoder("stories260K"), prompts, PyramidSchedule.FastV(2, 0.5));
        Assert.Contains($">{expected.Kl.ToString("F4", CultureInfo.InvariantCulture)} nats<", r.Html());
        Assert.Equal(expected.Kl, await Value(k, "novel.Kl"));
        Assert.StartsWith("Persuasion", prompts[0].Context); // the novel's first page, not TinyStories

        var bad = await k.SubmitAsync("#!fastv --model stories260K --layer 2 --keep 0.5 --data middlemarch");
        Assert.Contains("--data middlemarch: no such file (a text file, or a bundled corpus: persuasion, emma)", bad.Failure()!.Message);
    }

    [Fact]
    public void The_decoder_frontier_plots_kl_and_relative_perplexity_against_flops_per_method_and_ranking()
    {
        var dec = ModelHub.LoadDecoder("stories260K");
        var reference = LanguageTokenDrop.Reference(dec, LanguageTokenDrop.TinyStoriesPrompts(3, 600), maxContinuation: 8);
        var evals = new[]
        {
            LanguageTokenDrop.EvaluateDecoder(reference, PyramidSchedule.Pyramid([1, 2, 3], 0.5)),
            LanguageTokenDrop.EvaluateDecoder(reference, PyramidSchedule.Pyramid([1, 2, 3], 0.5), DropRanking.Random),
            LanguageTokenDrop.EvaluateDecoder(reference, PyramidSchedule.FastV(2, 0.5)),
            LanguageTokenDrop.EvaluateDecoder(reference, PyramidSchedule.FastV(2, 1.0)), // keeps everything: KL 0, left off the log axis
        };
        var json = System.Text.Json.Nodes.JsonNode.Parse(Plotly.NET.GenericChart.toFigureJson(TokenDropCharts.LmFrontier(evals)))!;
        var traces = json["data"]!.AsArray();
        Assert.Equal(6, traces.Count); // (pyramid, attention), (pyramid, random), (fastv, attention): two panels each
        var names = traces.Select(t => (string)t!["name"]!).Distinct().ToArray();
        Assert.Equal(["pyramid · attention", "pyramid · random", "fastv · attention"], names);
        var fastv = traces.Where(t => (string)t!["name"]! == "fastv · attention").ToArray();
        var byFlops = evals.Where(e => e.Schedule.Boundaries.Count == 1).OrderBy(e => e.FlopsRatio).ToArray();
        Assert.Equal(byFlops.Select(e => e.FlopsRatio), fastv[0]!["x"]!.AsArray().Select(x => (double)x!));
        Assert.Equal([byFlops[0].Kl, (double?)null], fastv[0]!["y"]!.AsArray().Select(y => y is null ? (double?)null : (double)y));
        Assert.Equal(byFlops.Select(e => e.PerplexityDropped / e.PerplexityFull), fastv[1]!["y"]!.AsArray().Select(y => (double)y!));
        Assert.Equal(1.0, (double)fastv[1]!["y"]![1]!, 12); // nothing dropped: the full model's perplexity
        Assert.Equal("log", (string)json["layout"]!["yaxis"]!["type"]!);
        Assert.Throws<ArgumentException>(() => TokenDropCharts.LmFrontier([]));

        var df = evals.ToDataFrame();
        Assert.Equal(4, df.Rows.Count);
        Assert.Equal(["pyramid", "pyramid", "fastv", "fastv"], df["method"].Cast<string>());
        var perPrompt = evals[0].PerPrompt.Select(p => p.Kl).Order().ToArray();
        Assert.Equal(perPrompt[1], (double)df["kl_median"][0]!); // 3 prompts: the middle one
        Assert.Equal(perPrompt[2], (double)df["kl_max"][0]!);
        Assert.Equal(evals[1].Kl, (double)df["kl"][1]!);
        Assert.Equal("random", (string)df["ranking"][1]!);
    }

    [Theory]
    [InlineData("#!pyramid-drop --model vit-cifar10 --layers 1,2,3 --keep 1.5", "--keep: keep ratios must be in (0, 1]")]
    [InlineData("#!pyramid-drop --model vit-cifar10 --layers 2,4 --keep 0.5", "--layers: boundaries must be in 1..3 for a 4-layer model")]
    [InlineData("#!pyramid-drop --model vit-cifar10 --layers 3,2 --keep 0.5", "--layers: boundaries must be strictly increasing")]
    [InlineData("#!pyramid-drop --model vit-cifar10 --layers 1,x --keep 0.5", "--layers '1,x': 'x' is not a layer index (a comma-separated list like 1,2,3)")]
    [InlineData("#!fastv --model vit-cifar10 --layer 0 --keep 0.5", "--layer: a boundary is a layer count >= 1")]
    [InlineData("#!fastv --model vit-cifar10 --layer 2 --keep 0.5,0.5", "--keep: fastv takes one ratio")]
    [InlineData("#!fastv --model vit-cifar10 --layer 2 --keep 0.5 --rank best", "--rank must be attention, random or least, not 'best'")]
    [InlineData("#!fastv --model vit-cifar10 --layer 2 --keep 0.5 --images 0", "--images must be positive")]
    [InlineData("#!fastv --model vit-cifar10 --layer 2 --keep 0.5 --seed abc", "--seed 'abc' is not an integer")]
    [InlineData("#!fastv --model vit-cifar10 --layer 2 --keep 0.5 --image 5000", "--image 5000: the CIFAR-10 set has images 0..999")]
    [InlineData("#!fastv --model vit-cifar10 --layer 2 --keep 0.5 --image /nonexistent/cat.png", "image not found: /nonexistent/cat.png")]
    [InlineData("#!fastv --model stories260K --layer 5 --keep 0.5", "--layer: boundaries must be in 1..4 for a 5-layer model")]
    [InlineData("#!fastv --model stories260K --layer 2 --keep 0.5 --image 3", "--image works with the ViT")]
    [InlineData("#!fastv --model no-such-model --layer 2 --keep 0.5", "neither a bundled model")]
    [InlineData("#!fastv --model vit-cifar10 --layer 2 --keep 0.5 --as 9lives", "--as '9lives' is not a C# identifier")]
    public async Task Bad_options_fail_with_a_clear_message_and_the_kernel_stays_alive(string magic, string message)
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync(magic);
        var failure = r.Failure();
        Assert.NotNull(failure);
        Assert.Contains(message, failure!.Message);
        Assert.Null(failure.Exception); // a message, not a stack trace
        Assert.Contains("workbench-error", r.Html());

        var after = await k.SubmitAsync("#!fastv --model vit-cifar10 --layer 3 --keep 0.5 --image 0");
        after.AssertSucceeded();
    }

    [Fact]
    public async Task A_corrupt_cifar_folder_is_reported_with_the_file()
    {
        var dir = Directory.CreateTempSubdirectory("wb-cifar-").FullName;
        File.WriteAllBytes(Path.Combine(dir, Cifar10Set.LabelsFile), [1, 2, 3]);
        File.WriteAllBytes(Path.Combine(dir, Cifar10Set.ImagesFile), new byte[3072 * 2]); // one image short
        using var k = new TestKernel();
        var r = await k.SubmitAsync($"#!pyramid-drop --model vit-cifar10 --layers 1 --keep 0.5 --data \"{dir}\"");
        Assert.Contains(Cifar10Set.ImagesFile, r.Failure()!.Message);
        Assert.Contains("3 labels need 9216 bytes", r.Failure()!.Message);
    }

    [Fact]
    public async Task Sweep_and_cost_results_render_their_charts()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("""
            using Workbench.Engine.Models;
            using Workbench.Engine.TokenDrop;
            using Workbench.Engine.Vision;
            TokenDropSweep.Vit(VitModel.LoadBundled(), Cifar10Set.LoadBundled().Every(50), new SweepPoint[]
            {
                new("full", null, DropRanking.Attention),
                new("pyramid", PyramidSchedule.Pyramid(new[] { 1, 2, 3 }, 0.5), DropRanking.Attention),
                new("fastv", PyramidSchedule.FastV(1, 0.5), DropRanking.Random),
            })
            """);
        r.AssertSucceeded();
        var html = r.Html();
        Assert.Contains("Accuracy vs FLOPs on 20 CIFAR-10 images", html);
        Assert.Contains("\"name\":\"pyramid · attention\"", html);
        Assert.Contains("\"name\":\"fastv · random\"", html);
        Assert.Contains("\"name\":\"full model\"", html);
        Assert.Contains(">65/33/17/9<", html);

        var full = Flops.Full(TransformerShape.LlavaLike7B, 576 + 64);
        var pyramid = PyramidSchedule.Pyramid([8, 16, 24], 0.5).Cost(TransformerShape.LlavaLike7B, 576, 64);
        var chart = PlotlyFormatter.ToHtml(TokenDropCharts.FlopsPerLayer(("full", full), ("PyramidDrop", pyramid)), PlotlyEmbed.Never);
        // 640 tokens in layers 1-8, then 64 + 288, 64 + 144, 64 + 72.
        Assert.Contains("\"text\":[\"640 tokens\"", chart);
        Assert.Contains("\"136 tokens\"]", chart);
        Assert.Contains($"({((double)pyramid.TotalFlops / full.TotalFlops).ToString("P0", CultureInfo.InvariantCulture)})", chart);
    }
}
