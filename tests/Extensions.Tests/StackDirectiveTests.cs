using System.Text.RegularExpressions;
using Microsoft.DotNet.Interactive.Events;
using Workbench.Engine.Stacking;

namespace Workbench.Interactive.Tests;

/// <summary>#!stack in a kernel (on the small stories260K with its post-training-quantized twin), checked against the engine.</summary>
[Collection("formatters")]
public class StackDirectiveTests
{
    private static int PlotlyDivs(string html) => Regex.Matches(html, "class=\"workbench-plotly\"").Count;

    private static async Task<object?> Value(TestKernel k, string expression)
    {
        var r = await k.SubmitAsync(expression);
        r.AssertSucceeded();
        return r.Events.OfType<ReturnValueProduced>().Single().Value;
    }

    [Fact]
    public async Task Stack_renders_the_table_the_waterfall_and_the_frontier_with_the_engine_s_numbers()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!stack --model stories260K --drop-attention 1 --pyramid 1,2,3 --keep 0.5 --format tl2 --as st");
        r.AssertSucceeded();
        var html = r.Html();
        Assert.Contains("stack on stories260K", html);
        Assert.Contains("post-training quantization", html);
        Assert.Equal(2, PlotlyDivs(html));
        Assert.Contains("\"type\":\"waterfall\"", html);
        Assert.Contains("predicted (bytes per token)", html);
        Assert.Contains("Quality vs cost over every combination", html);
        foreach (var step in new[] { "full", "+drop", "+pyramid", "+ternary" }) Assert.Contains($">{step}<", html);

        // The quality numbers are deterministic: the engine, run directly with the same options, gives them exactly.
        var direct = new StackRequest { Model = "stories260K", DropAttention = 1, Pyramid = "1,2,3", Keep = "0.5", Format = "tl2", Combinations = true }.Run();
        var shown = Last.Of<StackResult>("#!stack");
        Assert.Equal(direct.Steps.Select(s => s.Perplexity), shown.Steps.Select(s => s.Perplexity));
        Assert.Equal(direct.Steps.Select(s => s.Kl), shown.Steps.Select(s => s.Kl));
        Assert.Equal(direct.Dropped, shown.Dropped);
        Assert.Equal(8, shown.Combinations.Count);
        Assert.Equal(6, shown.Orders().Count);
        Assert.All(shown.Orders(), o => Assert.Equal(shown.Combinations.Single(c => c.Config.Techniques.Count == 3).Perplexity, o.Path[^1].Perplexity));
        Assert.Equal(direct.Steps[^1].Perplexity, await Value(k, "st.Steps[3].Perplexity"));
    }

    [Theory]
    [InlineData("#!stack --model stories260K --drop-attention 1 --pyramid 1,2", "--keep")]
    [InlineData("#!stack --model stories260K --drop-attention x", "--drop-attention")]
    [InlineData("#!stack --model stories260K --drop-attention 1 --format q4", "--format")]
    [InlineData("#!stack --model stories260K --drop-attention 1 --as 1x", "--as")]
    public async Task Bad_options_fail_with_a_clear_message_and_the_kernel_stays_alive(string magic, string message)
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync(magic);
        var failure = r.Failure();
        Assert.NotNull(failure);
        Assert.Contains(message, failure!.Message);
        Assert.Null(failure.Exception);
        Assert.Contains("workbench-error", r.Html());
        (await k.SubmitAsync("1 + 1")).AssertSucceeded();
    }
}
