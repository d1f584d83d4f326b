using System.Text.Json;
using Microsoft.DotNet.Interactive.Documents;
using Workbench.Interactive;
using Workbench.Runner;

namespace Workbench.Runner.Tests;

/// <summary>The headless runner on small notebooks written here: outputs captured, .ipynb and .html written, failures named.</summary>
public class RunnerTests
{
    private static string Dll(Type t) => t.Assembly.Location.Replace("\\", "/");

    private static string WriteNotebook(string dir, string name, params (string Kind, string Source)[] cells)
    {
        var json = new
        {
            cells = cells.Select((c, i) => c.Kind == "markdown"
                ? (object)new { cell_type = "markdown", id = $"c{i}", metadata = new { }, source = c.Source }
                : new { cell_type = "code", id = $"c{i}", execution_count = (int?)null, metadata = new { dotnet_interactive = new { language = "csharp" } }, outputs = Array.Empty<object>(), source = c.Source }),
            metadata = new { kernelspec = new { display_name = ".NET (C#)", language = "C#", name = ".net-csharp" } },
            nbformat = 4,
            nbformat_minor = 5,
        };
        var path = Path.Combine(dir, name + ".ipynb");
        File.WriteAllText(path, JsonSerializer.Serialize(json));
        return path;
    }

    private static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "wb-runner-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    [Fact]
    public async Task A_notebook_runs_and_its_ipynb_and_html_carry_the_outputs()
    {
        var dir = TempDir();
        // The documented local-build route: #r the DLLs in one cell, call Load in the next.
        var path = WriteNotebook(dir, "small",
            ("markdown", "# Small\n\nA **bold** claim."),
            ("code", $"#r \"{Dll(typeof(WorkbenchExtension))}\"\n#r \"{Dll(typeof(Plotly.NET.GenericChart))}\"\n#r \"{Dll(typeof(Plotly.NET.CSharp.Chart))}\""),
            ("code", "Workbench.Interactive.WorkbenchExtension.Load(Microsoft.DotNet.Interactive.Kernel.Root);"),
            ("code", "#!workbench-plotly --embed once"),
            ("code", "Console.WriteLine(6 * 7);"),
            ("code", "Plotly.NET.CSharp.Chart.Line<double, double, string>(x: new[] { 0.0, 1, 2 }, y: new[] { 0.0, 1, 4 }, Name: \"squares\")"));

        var doc = NotebookExecutor.Read(path);
        var result = await NotebookExecutor.ExecuteAsync(doc, "small", dir, TextWriter.Null, TimeSpan.FromMinutes(2));
        Assert.True(result.Succeeded, result.Failure?.Message);
        Assert.Equal(5, result.CellsRun);

        var ipynb = JsonDocument.Parse(NotebookExecutor.ToIpynb(doc)).RootElement;
        var cells = ipynb.GetProperty("cells");
        var stdout = cells[4].GetProperty("outputs")[0];
        Assert.Equal("stream", stdout.GetProperty("output_type").GetString());
        Assert.Equal("42", string.Concat(stdout.GetProperty("text").EnumerateArray().Select(t => t.GetString())).Trim());
        var chartOutputs = cells[5].GetProperty("outputs");
        var chartHtml = string.Concat(chartOutputs.EnumerateArray()
            .SelectMany(o => o.GetProperty("data").GetProperty("text/html").EnumerateArray()).Select(t => t.GetString()));
        Assert.Contains("workbench-plotly", chartHtml);
        Assert.Contains("\"name\":\"squares\"", chartHtml);
        Assert.Contains("window.__workbenchDefine", chartHtml); // first chart of the session carries plotly.js

        var html = HtmlReport.Render(doc, "small", result);
        Assert.Contains("<strong>bold</strong>", html);           // markdown rendered
        Assert.Contains("Console.WriteLine(6 * 7);", html);       // code shown
        Assert.Contains("<pre class=\"output stdout\">42", html); // output inlined
        Assert.Contains("window.Plotly.newPlot", html);           // chart inlined with plotly.js: works offline
        Assert.Contains(PlotlyFormatter.PlotlyJs[..100], html);
        Assert.DoesNotContain("Run failed", html);
    }

    [Fact]
    public async Task A_failing_cell_stops_the_run_and_is_named()
    {
        var dir = TempDir();
        var path = WriteNotebook(dir, "broken",
            ("markdown", "text"),
            ("code", "var x = 1;"),
            ("code", "throw new InvalidOperationException(\"boom at step 3\");"),
            ("code", "Console.WriteLine(\"never reached\");"));

        var doc = NotebookExecutor.Read(path);
        var result = await NotebookExecutor.ExecuteAsync(doc, "broken", dir, TextWriter.Null, TimeSpan.FromMinutes(2));
        Assert.False(result.Succeeded);
        Assert.Equal(3, result.Failure!.Cell); // counting the markdown cell, as Jupyter shows them
        Assert.Contains("boom at step 3", result.Failure.Message);
        Assert.Empty(doc.Elements[3].Outputs);
        Assert.Contains(doc.Elements[2].Outputs, o => o is ErrorElement e && e.ErrorValue.Contains("boom at step 3"));
        Assert.Contains("Run failed at cell 3", HtmlReport.Render(doc, "broken", result));
    }

    [Fact]
    public async Task A_compile_error_fails_the_cell_with_the_compiler_message()
    {
        var dir = TempDir();
        var path = WriteNotebook(dir, "typo", ("code", "int y = \"not an int\";"));
        var result = await NotebookExecutor.ExecuteAsync(NotebookExecutor.Read(path), "typo", dir, TextWriter.Null, TimeSpan.FromMinutes(2));
        Assert.Equal(1, result.Failure!.Cell);
        Assert.Contains("CS0029", result.Failure.Message);
    }
}
