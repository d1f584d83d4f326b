using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Formatting;
using Plotly.NET;

namespace Workbench.Interactive;

/// <summary>How the HTML of a chart gets plotly.js.</summary>
public enum PlotlyEmbed
{
    /// <summary>The first chart of a kernel session carries plotly.js (about 3.6 MB); later charts reuse it.</summary>
    Once,
    /// <summary>Every chart carries plotly.js: each output stands alone, at 3.6 MB a chart.</summary>
    Always,
    /// <summary>No chart carries it: the page must already have plotly.js (an earlier embedded chart).</summary>
    Never,
}

/// <summary>
/// Offline HTML for <see cref="GenericChart"/>. The stock formatter loads plotly.js from a CDN through require.js
/// and renders blank offline; this one inlines the plotly.js that Plotly.NET.dll carries.
/// </summary>
public static class PlotlyFormatter
{
    public const string PlotlyResource = "Plotly.NET.plotly-2.28.0.min.js";

    private static readonly Lazy<string> Script = new(LoadScript);
    private static readonly ConditionalWeakTable<Kernel, object> Embedded = new();

    /// <summary>The process-wide embedding mode; <c>#!workbench-plotly --embed</c> sets it.</summary>
    public static PlotlyEmbed Embed { get; set; } = PlotlyEmbed.Once;

    internal static void Register()
    {
        Formatter.Register<PlotlyScript>((_, writer) => writer.Write(PlotlyJsTag()), HtmlFormatter.MimeType);
        Formatter.SetPreferredMimeTypesFor(typeof(PlotlyScript), HtmlFormatter.MimeType);
        Formatter.Register<GenericChart>((chart, writer) => writer.Write(ToHtml(chart)), HtmlFormatter.MimeType);
        Formatter.SetPreferredMimeTypesFor(typeof(GenericChart), HtmlFormatter.MimeType);
    }

    /// <summary>The plotly.js source shipped inside Plotly.NET.dll.</summary>
    public static string PlotlyJs => Script.Value;

    /// <summary>
    /// plotly.js wrapped so that it registers window.Plotly even when require.js is on the page (Jupyter classic, nbconvert
    /// HTML): with an AMD <c>define</c> present, the UMD bundle would register a module instead of the global.
    /// </summary>
    public static string PlotlyJsTag() =>
        "<script type=\"text/javascript\">window.__workbenchDefine = window.define; window.define = undefined;</script>\n" +
        "<script type=\"text/javascript\">" + Script.Value + "</script>\n" +
        "<script type=\"text/javascript\">window.define = window.__workbenchDefine; delete window.__workbenchDefine;</script>\n";

    /// <summary>A div and a script drawing the chart with <c>Plotly.newPlot</c>, preceded by plotly.js when the mode asks.</summary>
    public static string ToHtml(GenericChart chart, PlotlyEmbed? embed = null)
    {
        ArgumentNullException.ThrowIfNull(chart);
        var mode = embed ?? Embed;
        var include = mode switch
        {
            PlotlyEmbed.Always => true,
            PlotlyEmbed.Never => false,
            _ => FirstInSession(),
        };
        var id = "workbench-plot-" + Guid.NewGuid().ToString("N");
        var figure = GenericChart.toFigureJson(chart);
        var html = new System.Text.StringBuilder();
        if (include) html.Append(PlotlyJsTag());
        html.Append($"<div id=\"{id}\" class=\"workbench-plotly\"></div>\n");
        html.Append("<script type=\"text/javascript\">(function () {\n")
            .Append($"  var el = document.getElementById('{id}');\n")
            .Append("  if (typeof window.Plotly === 'undefined') { el.textContent = ")
            .Append("'plotly.js is not loaded on this page: run #!workbench-plotly --embed once (or always) and re-run the cell.'; return; }\n")
            .Append("  var fig = ").Append(figure.Replace("</", "<\\/")).Append(";\n")
            .Append("  window.Plotly.newPlot(el, fig.data, fig.layout || {}, { responsive: true });\n")
            .Append("})();</script>\n");
        return html.ToString();
    }

    /// <summary>
    /// Whether the next chart must bring plotly.js (as <see cref="ToHtml"/> decides, and claiming it like a chart would):
    /// a chart updated in place shows this once, as its own output before the chart (see <see cref="PlotlyScript"/>),
    /// so that the updates stay small and the saved notebook still has the script.
    /// </summary>
    internal static bool ClaimScript() => Embed switch
    {
        PlotlyEmbed.Always => true,
        PlotlyEmbed.Never => false,
        _ => FirstInSession(),
    };

    /// <summary>True the first time a chart is formatted in the current kernel session (per root kernel).</summary>
    private static bool FirstInSession()
    {
        var root = KernelInvocationContext.Current?.HandlingKernel?.RootKernel;
        if (root is null) return true; // formatted outside a kernel (e.g. a report): stand alone
        return Embedded.TryAdd(root, new object());
    }

    /// <summary>Forget which sessions got plotly.js, so the next chart embeds it again (after a page reload).</summary>
    public static void ResetEmbedded(Kernel kernel) => Embedded.Remove(kernel.RootKernel);

    private static string LoadScript()
    {
        using var stream = typeof(GenericChart).Assembly.GetManifestResourceStream(PlotlyResource)
            ?? throw new InvalidOperationException($"Plotly.NET.dll does not carry the resource '{PlotlyResource}'.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    internal static string Encode(string s) => WebUtility.HtmlEncode(s);
}

/// <summary>plotly.js on its own, displayed once before a chart that is updated in place (<see cref="PlotlyFormatter.ClaimScript"/>).</summary>
public sealed record PlotlyScript;
