using Microsoft.Data.Analysis;
using Microsoft.DotNet.Interactive.Formatting;

namespace Workbench.Interactive.Tests;

[Collection("formatters")]
public class FormatterTests
{
    public sealed record Sample(string Model, int Layers, double Score)
    {
        public DataFrame ToDataFrame() => new(
            new Int32DataFrameColumn("layer", Enumerable.Range(0, Layers)),
            new DoubleDataFrameColumn("importance", Enumerable.Range(0, Layers).Select(i => 1.0 / (i + 1))));
    }

    [Fact]
    public void A_dataframe_renders_as_an_html_table_capped_at_MaxRows()
    {
        var frame = new DataFrame(
            new Int32DataFrameColumn("i", Enumerable.Range(0, 100)),
            new DoubleDataFrameColumn("square", Enumerable.Range(0, 100).Select(i => (double)i * i)));
        var html = Html.Table(frame, maxRows: 10);
        Assert.Equal(11, System.Text.RegularExpressions.Regex.Matches(html, "<tr>").Count); // header + 10 rows
        Assert.Contains(">81<", html);        // row 9: 9*9
        Assert.DoesNotContain(">100<", html); // row 10 is cut
        Assert.Contains("10 of 100 rows shown", html);
        Assert.Throws<ArgumentOutOfRangeException>(() => Html.Table(frame, maxRows: -1));
    }

    [Fact]
    public async Task A_dataframe_returned_by_a_cell_is_formatted_as_html()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("""
            new Microsoft.Data.Analysis.DataFrame(new Microsoft.Data.Analysis.Int32DataFrameColumn("n", new[] { 7, 8, 9 }))
            """);
        r.AssertSucceeded();
        var html = r.Html();
        Assert.Contains("<table", html);
        Assert.Contains(">n</th>", html);
        Assert.Contains(">8<", html);
    }

    [Fact]
    public void A_record_shows_its_scalar_properties_and_its_own_table()
    {
        var html = Html.Record(new Sample("tiny", 3, 0.25));
        Assert.Contains(">Model</th>", html);
        Assert.Contains(">tiny<", html);
        Assert.Contains(">0.25<", html);
        Assert.Contains(">importance</th>", html);
        Assert.Contains(">0.333333<", html); // 1/3 from ToDataFrame, G6
        Assert.Contains("3 rows", html);
    }

    [Fact]
    public void RegisterRecord_makes_html_the_preferred_format()
    {
        Html.RegisterRecord<Sample>();
        var html = new Sample("m", 2, 1.5).ToDisplayString(HtmlFormatter.MimeType);
        Assert.Contains("workbench-record", html);
        Assert.Contains(">importance</th>", html);
    }

    [Fact]
    public void An_error_box_is_html_encoded()
    {
        var html = Html.Error("#!model failed", "bad <file> & co");
        Assert.Contains("bad &lt;file&gt; &amp; co", html);
        Assert.Contains("workbench-error", html);
    }
}
