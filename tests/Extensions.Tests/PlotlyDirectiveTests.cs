namespace Workbench.Interactive.Tests;

public class PlotlyDirectiveTests
{
    [Fact]
    public async Task Embed_once_is_accepted_and_displayed()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!workbench-plotly --embed once");
        r.AssertSucceeded();
        Assert.Contains("Once", r.Html());
    }
}
