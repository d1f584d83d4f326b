using System.Collections;
using System.Net;
using System.Reflection;
using System.Text;
using Microsoft.Data.Analysis;
using Microsoft.DotNet.Interactive.Formatting;

namespace Workbench.Interactive;

/// <summary>HTML building blocks for engine results: summaries, tables, errors. No analysis here.</summary>
public static class Html
{
    /// <summary>Rows shown for a DataFrame before the table is cut.</summary>
    public static int MaxRows { get; set; } = 25;

    private const string TableStyle = "border-collapse:collapse;font-family:monospace;font-size:12px";
    private const string CellStyle = "border:1px solid #ccc;padding:2px 6px;text-align:right";

    /// <summary>A DataFrame as an HTML table: header, the first <paramref name="maxRows"/> rows, and a row count.</summary>
    public static string Table(DataFrame frame, int? maxRows = null)
    {
        ArgumentNullException.ThrowIfNull(frame);
        int cap = maxRows ?? MaxRows;
        if (cap < 0) throw new ArgumentOutOfRangeException(nameof(maxRows), cap, "must be >= 0");
        var sb = new StringBuilder();
        sb.Append($"<table class=\"workbench-table\" style=\"{TableStyle}\"><thead><tr>");
        foreach (var column in frame.Columns)
            sb.Append($"<th style=\"{CellStyle};background:#f3f3f3\">{Encode(column.Name)}</th>");
        sb.Append("</tr></thead><tbody>");
        long shown = Math.Min(frame.Rows.Count, cap);
        for (long r = 0; r < shown; r++)
        {
            sb.Append("<tr>");
            foreach (var column in frame.Columns)
                sb.Append($"<td style=\"{CellStyle}\">{Encode(Cell(column[r]))}</td>");
            sb.Append("</tr>");
        }
        sb.Append("</tbody></table>");
        sb.Append(shown < frame.Rows.Count
            ? $"<div class=\"workbench-table-note\"><i>{shown} of {frame.Rows.Count} rows shown</i></div>"
            : $"<div class=\"workbench-table-note\"><i>{frame.Rows.Count} rows</i></div>");
        return sb.ToString();
    }

    /// <summary>
    /// A record as a summary (its scalar properties) followed by a table. <paramref name="table"/> defaults to the
    /// record's own <c>ToDataFrame()</c> when it has one.
    /// </summary>
    public static string Record(object record, string? title = null, DataFrame? table = null)
    {
        ArgumentNullException.ThrowIfNull(record);
        var type = record.GetType();
        table ??= ToDataFrame(record);
        var sb = new StringBuilder("<div class=\"workbench-record\">");
        sb.Append($"<div style=\"font-weight:bold;margin-bottom:4px\">{Encode(title ?? type.Name)}</div>");
        sb.Append($"<table class=\"workbench-summary\" style=\"{TableStyle};margin-bottom:6px\"><tbody>");
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.GetIndexParameters().Length > 0 || !IsSummary(p.PropertyType)) continue;
            sb.Append($"<tr><th style=\"{CellStyle};text-align:left;background:#f3f3f3\">{Encode(p.Name)}</th>")
              .Append($"<td style=\"{CellStyle};text-align:left\">{Encode(Cell(p.GetValue(record)))}</td></tr>");
        }
        sb.Append("</tbody></table>");
        if (table is not null) sb.Append(Table(table));
        sb.Append("</div>");
        return sb.ToString();
    }

    /// <summary>A visible error box (red border), used when a magic command fails.</summary>
    public static string Error(string title, string message) =>
        "<div class=\"workbench-error\" style=\"border-left:4px solid #c00;background:#fdecec;padding:6px 10px;font-family:sans-serif\">" +
        $"<b>{Encode(title)}</b><br/><span style=\"white-space:pre-wrap\">{Encode(message)}</span></div>";

    /// <summary>
    /// Registers <see cref="Record"/> as the HTML formatter of <typeparamref name="T"/> (engine records with a
    /// <c>ToDataFrame()</c> get their table automatically).
    /// </summary>
    public static void RegisterRecord<T>(Func<T, DataFrame?>? table = null, Func<T, string>? title = null) =>
        Register<T>(value => Record(value!, title?.Invoke(value), table?.Invoke(value)));

    /// <summary>Registers <paramref name="html"/> as the preferred (HTML) formatter of <typeparamref name="T"/>.</summary>
    public static void Register<T>(Func<T, string> html)
    {
        Formatter.Register<T>((value, writer) => writer.Write(html(value!)), HtmlFormatter.MimeType);
        Formatter.SetPreferredMimeTypesFor(typeof(T), HtmlFormatter.MimeType);
    }

    /// <summary>A titled key/value table (the values already formatted): the summary above a result's chart.</summary>
    public static string Summary(string title, IEnumerable<(string Key, string Value)> rows)
    {
        const string cell = "border:1px solid #ccc;padding:2px 6px;text-align:left";
        var sb = new StringBuilder("<div class=\"workbench-record\">");
        sb.Append($"<div style=\"font-weight:bold;margin-bottom:4px\">{Encode(title)}</div>");
        sb.Append("<table class=\"workbench-summary\" style=\"border-collapse:collapse;font-family:monospace;font-size:12px;margin-bottom:6px\"><tbody>");
        foreach (var (k, v) in rows)
            sb.Append($"<tr><th style=\"{cell};background:#f3f3f3\">{Encode(k)}</th><td style=\"{cell}\">{Encode(v)}</td></tr>");
        return sb.Append("</tbody></table></div>").ToString();
    }

    internal static DataFrame? ToDataFrame(object record)
    {
        var method = record.GetType().GetMethod("ToDataFrame", BindingFlags.Public | BindingFlags.Instance, Type.EmptyTypes);
        return method is not null && typeof(DataFrame).IsAssignableFrom(method.ReturnType)
            ? (DataFrame?)method.Invoke(record, null)
            : null;
    }

    // Scalars and small nested records (e.g. a config) go in the summary; collections go in the table.
    private static bool IsSummary(Type t) =>
        IsScalar(t) || (!typeof(IEnumerable).IsAssignableFrom(t) && !typeof(DataFrame).IsAssignableFrom(t) && t.Namespace?.StartsWith("Workbench.") == true);

    private static bool IsScalar(Type t)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        return t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal) || t == typeof(TimeSpan) || t == typeof(DateTime);
    }

    private static string Cell(object? value) => value switch
    {
        null => "",
        float f => f.ToString("G6", System.Globalization.CultureInfo.InvariantCulture),
        double d => d.ToString("G6", System.Globalization.CultureInfo.InvariantCulture),
        string s => s,
        IEnumerable e => string.Join(", ", e.Cast<object?>().Take(8).Select(Cell)),
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string Encode(string s) => WebUtility.HtmlEncode(s);
}

/// <summary>DataFrame -> HTML table (capped at <see cref="Html.MaxRows"/>).</summary>
internal static class DataFrameFormatter
{
    internal static void Register()
    {
        Formatter.Register<DataFrame>((frame, writer) => writer.Write(Html.Table(frame)), HtmlFormatter.MimeType);
        Formatter.SetPreferredMimeTypesFor(typeof(DataFrame), HtmlFormatter.MimeType);
    }
}

/// <summary>A failure shown in a cell: title and message rendered as an error box.</summary>
public sealed record WorkbenchError(string Title, string Message);

internal static class ErrorFormatter
{
    internal static void Register()
    {
        Formatter.Register<WorkbenchError>((e, writer) => writer.Write(Html.Error(e.Title, e.Message)), HtmlFormatter.MimeType);
        Formatter.Register<WorkbenchError>((e, writer) => writer.Write($"{e.Title}: {e.Message}"), PlainTextFormatter.MimeType);
        Formatter.SetPreferredMimeTypesFor(typeof(WorkbenchError), HtmlFormatter.MimeType, PlainTextFormatter.MimeType);
    }
}
