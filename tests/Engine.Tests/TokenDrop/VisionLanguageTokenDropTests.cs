using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Workbench.Engine.Requests;
using Workbench.Engine.Tests.Models;
using Workbench.Engine.TokenDrop;

namespace Workbench.Engine.Tests.TokenDrop;

/// <summary>
/// PyramidDrop / FastV on LLaVA's image tokens inside the language model (the transformers-checked random-weight
/// instance of data/goldens/arch/llava, with its golden pixel_values and prompt).
/// </summary>
public class VisionLanguageTokenDropTests
{
    private static readonly string Folder = Path.GetDirectoryName(Bundled.Path("data/goldens/arch/llava/config.json"))!;

    private static (LlavaModel Model, int[] Tokens, PixelInput Pixels) Setup()
    {
        using var golden = NpzFile.Open(Path.Combine(Folder, "golden.npz"));
        return (VisionGoldenTests.Llava(), VisionGoldenTests.LlavaPrompt(), VisionGoldenTests.Pixels(golden));
    }

    [Fact]
    public void Keeping_every_image_token_gives_the_undropped_model_exactly()
    {
        var (model, tokens, px) = Setup();
        var input = ModelInput.Of(tokens, px);
        var full = model.Forward(input, new ForwardContext()).Output;
        var dropper = new TokenDropper(model, new PyramidSchedule([1, 2], [1.0]), VisionLanguageTokenDrop.Roles(model, tokens));
        var kept = model.Forward(input, new ForwardContext { Selector = dropper.Selector }).Output;
        Assert.Equal(full, kept);
        Assert.Equal(2, dropper.Stages.Count);
        Assert.All(dropper.Stages, s => Assert.Empty(s.Dropped));

        var eval = VisionLanguageTokenDrop.Evaluate(model, tokens, px, PyramidSchedule.Pyramid([1, 2], 1.0));
        Assert.Equal(0, eval.Kl);
        Assert.True(eval.Top1Agrees);
        Assert.Equal(eval.GeneratedFull, eval.GeneratedDropped);
        Assert.Equal(1.0, eval.FlopsRatio);
        // The full run's greedy continuation is transformers' own (gen.json).
        var want = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "gen.json"))).RootElement
            .GetProperty("generated").EnumerateArray().Select(e => e.GetInt32());
        Assert.Equal(want, eval.GeneratedFull);
    }

    [Fact]
    public void A_drop_removes_only_image_tokens_after_the_boundary_and_keeps_the_most_attended()
    {
        var (model, tokens, px) = Setup();
        var input = ModelInput.Of(tokens, px);
        const int boundary = 2;
        var sites = Enumerable.Range(0, model.Config.Layers).Select(HookNames.ResidPost).Append(HookNames.ImageFeatures).ToArray();
        var fullHooks = new Hooks().Capture(sites);
        model.Forward(input, new ForwardContext { Hooks = fullHooks });
        var hooks = new Hooks().Capture(sites);
        var dropper = new TokenDropper(model, PyramidSchedule.FastV(boundary, 0.5), VisionLanguageTokenDrop.Roles(model, tokens));
        var (_, state) = model.Forward(input, new ForwardContext { Hooks = hooks, Selector = dropper.Selector });

        // Before the boundary nothing differs, the tower included.
        Assert.Equal(fullHooks.Get(HookNames.ImageFeatures).Data, hooks.Get(HookNames.ImageFeatures).Data);
        for (int l = 0; l < boundary; l++) Assert.Equal(fullHooks.Get(HookNames.ResidPost(l)).Data, hooks.Get(HookNames.ResidPost(l)).Data);
        // At it: half the image tokens go (rounded up kept), only image tokens, every text token stays with its position.
        var image = Enumerable.Range(0, tokens.Length).Where(i => tokens[i] == model.ImageTokenId).ToArray();
        var stage = Assert.Single(dropper.Stages);
        Assert.Equal(image, stage.Candidates);
        Assert.Equal(image.Length - PyramidSchedule.KeepCount(image.Length, 0.5), stage.Dropped.Length);
        Assert.Subset(image.ToHashSet(), stage.Dropped.ToHashSet());
        var alive = state.TokenIndex[..state.Rows];
        Assert.Equal(Enumerable.Range(0, tokens.Length).Where(i => tokens[i] != model.ImageTokenId || stage.Kept.Contains(i)), alive);
        Assert.Equal(alive, state.Positions[..state.Rows]);
        // Attention ranking: every kept image token scored at least as high as every dropped one.
        var score = stage.Candidates.Zip(stage.Scores).ToDictionary(p => p.First, p => p.Second);
        Assert.True(stage.Kept.Min(t => score[t]) >= stage.Dropped.Max(t => score[t]));
        // After it the layer outputs differ (the rows that are left).
        Assert.NotEqual(fullHooks.Get(HookNames.ResidPost(boundary)).Data.Length, hooks.Get(HookNames.ResidPost(boundary)).Data.Length);
    }

    [Fact]
    public void The_drop_is_reported_with_kl_flops_and_the_continuation_from_the_pruned_cache()
    {
        var (model, tokens, px) = Setup();
        var e = VisionLanguageTokenDrop.Evaluate(model, tokens, px, PyramidSchedule.Pyramid([1, 2], 0.5));
        Assert.Equal([16, 8, 4], e.ImageTokensPerStage);
        Assert.True(e.Kl > 0);
        Assert.Equal(8, e.GeneratedDropped.Length);
        // The FLOPs are the language model's with 12 text tokens + 16 / 8 / 4 image tokens over blocks 0 | 1 | 2-3.
        var shape = Costs.TransformerShape.From(model.Config);
        var want = Costs.Flops.ForStages(shape, [1, 2], [28, 20, 16]).RatioTo(Costs.Flops.Full(shape, 28));
        Assert.Equal(want, e.FlopsRatio, 12);
        Assert.True(e.FlopsRatio < 1);
    }

    [Fact]
    public void A_prompt_without_image_tokens_or_ending_in_one_is_refused()
    {
        var (model, tokens, _) = Setup();
        Assert.Throws<ArgumentException>(() => VisionLanguageTokenDrop.Roles(model, tokens.Where(t => t != model.ImageTokenId).ToArray()));
        Assert.Throws<ArgumentException>(() => VisionLanguageTokenDrop.Roles(model, [.. tokens, model.ImageTokenId]));
    }

    [Theory]
    [InlineData("--tokens", "1,2,3", null, "has no image token (id 255)")]
    [InlineData("--tokens", "1,255,3", null, "has 1 image tokens")]
    [InlineData("--tokens", "1,2,999", null, "outside the vocabulary")]
    [InlineData("--data", null, "persuasion", "takes --image and --tokens")]
    [InlineData("--image", null, null, "no such file")]
    public void Bad_requests_name_the_option(string option, string? tokens, string? data, string message)
    {
        var request = new TokenDropRequest
        {
            Method = TokenDropMethod.Pyramid, Model = Folder, Layers = "1,2", Keep = "0.5", Tokens = tokens, Data = data,
            Image = option == "--image" ? "/nonexistent/cat.png" : null,
        };
        var e = Assert.Throws<OptionException>(() => request.Run());
        Assert.Equal(option, e.Option);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void The_request_runs_a_real_image_resized_to_the_tower()
    {
        var r = new TokenDropRequest { Method = TokenDropMethod.FastV, Model = Folder, Layer = "1", Keep = "0.25", Image = Bundled.Path("data/images/coffee.png") }.Run();
        var e = Assert.IsType<VlmDropEvaluation>(r.Value);
        Assert.Equal("coffee.png", e.Image);
        Assert.Contains("CLIP", e.Preprocessing);
        Assert.Equal([16, 4], e.ImageTokensPerStage);
        Assert.Equal(28, e.PromptTokens); // 4 + 16 + 8 by default
    }
}
