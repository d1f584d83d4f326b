using Microsoft.DotNet.Interactive.Events;

namespace Workbench.Interactive.Tests;

[Collection("formatters")]
public class ProgressTests
{
    [Fact]
    public async Task Progress_is_one_display_updated_in_place()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("""
            Workbench.Interactive.LiveProgress.Throttle = TimeSpan.Zero;
            var p = Workbench.Interactive.LiveProgress.Start("work", 4);
            for (int i = 1; i <= 4; i++) p.Report(i, $"step {i}");
            p.Complete("done");
            """);
        r.AssertSucceeded();
        var shown = Assert.Single(r.Events.OfType<DisplayedValueProduced>());
        var updates = r.Events.OfType<DisplayedValueUpdated>().ToList();
        Assert.Equal(5, updates.Count);
        Assert.All(updates, u => Assert.Equal(shown.ValueId, u.ValueId));
        var last = updates[^1].FormattedValues.First(v => v.MimeType == "text/html").Value;
        Assert.Contains("work: 4/4 (100%)", last);
        Assert.Contains("done", last);
    }

    [Fact]
    public async Task Progress_honours_the_cells_cancellation_token()
    {
        using var k = new TestKernel();
        using var cts = new CancellationTokenSource();
        var command = new Microsoft.DotNet.Interactive.Commands.SubmitCode("""
            var p = Workbench.Interactive.LiveProgress.Start("endless", 1_000_000_000);
            for (long i = 0; ; i++) { p.Report(i); System.Threading.Thread.Sleep(1); }
            """, "csharp");
        var run = k.Root.SendAsync(command, cts.Token);
        await Task.Delay(TimeSpan.FromSeconds(3));
        cts.Cancel();
        var finished = await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(30)));
        Assert.Same(run, finished); // the loop stopped: it did not run for 1e9 ms
    }
}
