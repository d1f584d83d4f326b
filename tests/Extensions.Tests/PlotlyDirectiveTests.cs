using System.Text.RegularExpressions;
using Microsoft.DotNet.Interactive.Formatting;
using Workbench.Interactive.Directives;

namespace Workbench.Interactive.Tests;

// Formatter registrations and the embedding mode are process-wide: these tests run one at a time.
[Collection("formatters")]
public class PlotlyDirectiveTests
{
    private const string Sine = """
        var xs = Enumerable.Range(0, 50).Select(i => i * 0.1).ToArray();
        Plotly.NET.CSharp.Chart.Line<double, double, string>(x: xs, y: xs.Select(Math.Sin).ToArray(), Name: "sin")
        """;

    private static int PlotlyJsCopies(string html) => Regex.Matches(html, "window.__workbenchDefine = window.define").Count;

    [Fact]
    public async Task A_chart_renders_as_a_plotly_div_and_newPlot_script_with_its_data()
    {
        using var k = new TestKernel();
        (await k.SubmitAsync("#!workbench-plotly --embed always")).AssertSucceeded();
        var r = await k.SubmitAsync(Sine);
        r.AssertSucceeded();
        var html = r.Html();
        Assert.Matches("<div id=\"workbench-plot-[0-9a-f]{32}\" class=\"workbench-plotly\"></div>", html);
        Assert.Contains("window.Plotly.newPlot(el, fig.data", html);
        Assert.Contains("\"name\":\"sin\"", html);
        // The data is the chart's: sin(0.1) as serialized by Plotly.NET.
        Assert.Contains(Math.Sin(0.1).ToString("R", System.Globalization.CultureInfo.InvariantCulture)[..10], html);
        // Offline: plotly.js itself is inlined (from Plotly.NET.dll), guarded against require.js; no CDN.
        Assert.Equal(1, PlotlyJsCopies(html));
        Assert.Contains(PlotlyFormatter.PlotlyJs[..200], html);
        Assert.DoesNotContain("cdn.plot.ly", html.Replace(PlotlyFormatter.PlotlyJs, ""));
        Assert.DoesNotContain("requirejs", html.Replace(PlotlyFormatter.PlotlyJs, ""));
    }

    [Fact]
    public async Task Once_embeds_plotly_js_in_the_first_chart_only_and_never_in_none()
    {
        using var k = new TestKernel();
        (await k.SubmitAsync("#!workbench-plotly --embed once")).AssertSucceeded();
        var first = (await k.SubmitAsync(Sine)).Html();
        var second = (await k.SubmitAsync(Sine)).Html();
        Assert.Equal(1, PlotlyJsCopies(first));
        Assert.Equal(0, PlotlyJsCopies(second));
        Assert.Contains("workbench-plotly", second);

        // A second kernel session (a new page) gets its own copy.
        using var other = new TestKernel();
        Assert.Equal(1, PlotlyJsCopies((await other.SubmitAsync(Sine)).Html()));

        (await k.SubmitAsync("#!workbench-plotly --embed never")).AssertSucceeded();
        var none = (await k.SubmitAsync(Sine)).Html();
        Assert.Equal(0, PlotlyJsCopies(none));
        Assert.True(none.Length < 20_000, $"a chart without plotly.js should be small, got {none.Length} chars");
        (await k.SubmitAsync("#!workbench-plotly --embed once")).AssertSucceeded();
    }

    [Fact]
    public async Task The_magic_displays_and_stores_its_settings()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!workbench-plotly --embed never");
        r.AssertSucceeded();
        Assert.Contains("PlotlySettings", r.Html());
        Assert.Contains("Never", r.Html());
        var settings = Last.Of<PlotlySettings>("#!workbench-plotly");
        Assert.Equal(PlotlyEmbed.Never, settings.Embed);
        Assert.True(settings.PlotlyJsBytes > 3_000_000, "plotly.js 2.28 min is about 3.6 MB");
        Assert.Equal(PlotlyEmbed.Never, PlotlyFormatter.Embed);
        (await k.SubmitAsync("#!workbench-plotly --embed once")).AssertSucceeded();
    }

    [Fact]
    public async Task A_bad_option_fails_the_command_with_a_clear_message_and_the_kernel_stays_alive()
    {
        using var k = new TestKernel();
        var before = PlotlyFormatter.Embed;
        var r = await k.SubmitAsync("#!workbench-plotly --embed sometimes");
        var failure = r.Failure();
        Assert.NotNull(failure);
        Assert.Contains("--embed must be once, always or never (got 'sometimes')", failure!.Message);
        Assert.Contains("workbench-error", r.Html());
        Assert.Contains("sometimes", r.Html());
        Assert.Equal(before, PlotlyFormatter.Embed);

        var next = await k.SubmitAsync("1 + 1");
        next.AssertSucceeded();
        Assert.Contains(next.Events.OfType<Microsoft.DotNet.Interactive.Events.ReturnValueProduced>(), e => Equals(e.Value, 2));
    }

    [Fact]
    public async Task A_missing_required_option_is_reported_by_the_kernel()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!workbench-plotly");
        Assert.NotNull(r.Failure());
        (await k.SubmitAsync("2 * 21")).AssertSucceeded();
    }
}
