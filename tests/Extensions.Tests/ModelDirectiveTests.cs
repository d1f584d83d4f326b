using Microsoft.DotNet.Interactive.Events;
using Workbench.Engine.Models;

namespace Workbench.Interactive.Tests;

[Collection("formatters")]
public class ModelDirectiveTests
{
    [Fact]
    public async Task A_bundled_model_shows_its_card_and_is_shared_as_a_variable()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!model --name stories260K");
        r.AssertSucceeded();
        var html = r.Html();
        var card = ModelHub.Load("stories260K").Card;
        Assert.Contains("stories260K", html);
        Assert.Contains($">{card.Parameters}<", html);
        Assert.Contains(">tensor</th>", html);
        Assert.Contains(card.Tensors[0].Name, html);
        // stories260K: dim 64, 5 layers, vocab 512: about 260K parameters.
        Assert.InRange(card.Parameters, 200_000, 300_000);

        var read = await k.SubmitAsync("model.Card.Parameters");
        read.AssertSucceeded();
        Assert.Contains(read.Events.OfType<ReturnValueProduced>(), e => Equals(e.Value, card.Parameters));
        Assert.IsAssignableFrom<LoadedModel>(Last.Of<LoadedModel>("#!model"));
    }

    [Fact]
    public async Task A_missing_file_and_a_corrupt_file_give_clear_errors_and_the_kernel_stays_alive()
    {
        using var k = new TestKernel();
        var missing = await k.SubmitAsync("#!model --name /nonexistent/model.gguf");
        Assert.Contains("neither a bundled model", missing.Failure()!.Message);
        Assert.Contains("workbench-error", missing.Html());

        var corrupt = Path.Combine(Path.GetTempPath(), $"wb-corrupt-{Guid.NewGuid():N}.gguf");
        var magic = "GGUF"u8.ToArray();
        File.WriteAllBytes(corrupt, [.. magic, 3, 0, 0, 0, 1, 2]); // header cut after the version
        var bad = await k.SubmitAsync($"#!model --name \"{corrupt}\"");
        var failure = bad.Failure();
        Assert.NotNull(failure);
        Assert.Contains(corrupt, failure!.Message);
        Assert.Null(failure.Exception);

        (await k.SubmitAsync("#!model --name stories260K --as tiny")).AssertSucceeded();
        (await k.SubmitAsync("tiny.Name")).AssertSucceeded();
    }

    [Fact]
    public async Task A_bad_variable_name_is_refused()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!model --name stories260K --as 3x");
        Assert.Contains("--as '3x' is not a C# identifier", r.Failure()!.Message);
    }
}
