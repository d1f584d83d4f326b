using Plotly.NET;

namespace Workbench.Interactive.Charts;

/// <summary>The Plotly.NET plumbing the technique charts share: raw traces (any plotly.js property by name) and figures.</summary>
internal static class Plot
{
    public static Trace Trace(string type, params (string Name, object Value)[] properties)
    {
        var trace = new Trace2D(type);
        foreach (var (name, value) in properties) trace.SetProperty(name, value);
        return trace;
    }

    public static GenericChart Figure(IEnumerable<Trace> traces, Layout layout) =>
        GenericChart.setLayout(layout, GenericChart.ofTraceObjects(true, traces.ToList()));

    /// <summary>The chart as offline HTML (plotly.js embedded as the notebook's setting says).</summary>
    public static string Html(GenericChart chart) => PlotlyFormatter.ToHtml(chart);
}
