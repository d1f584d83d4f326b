using System.Net;
using System.Text;
using System.Text.Json;
using Markdig;
using Markdig.Extensions.Mathematics;
using Markdig.Renderers.Html;
using Markdig.Syntax;
using Microsoft.DotNet.Interactive.Documents;

namespace Workbench.Runner;

/// <summary>
/// A self-contained HTML page of an executed notebook: markdown rendered, code shown, outputs inlined in order.
/// Chart outputs carry plotly.js themselves (the extension embeds it once per session by default), so the page draws
/// its charts offline; a page with formulas carries KaTeX and its fonts (<see cref="MathAssets"/>), so it typesets them
/// offline too.
/// </summary>
public static class HtmlReport
{
    private static readonly MarkdownPipeline Markdown = new MarkdownPipelineBuilder().UseAdvancedExtensions().Build();

    public static string Render(InteractiveDocument document, string title, NotebookResult? result = null)
    {
        var body = new StringBuilder();
        bool math = false;
        for (int i = 0; i < document.Elements.Count; i++)
        {
            var cell = document.Elements[i];
            if (NotebookExecutor.IsMarkdown(cell))
            {
                var html = MarkdownHtml(cell.Contents);
                math |= html.Contains(MathMarker, StringComparison.Ordinal);
                body.Append($"<section class=\"cell markdown\" id=\"cell-{i + 1}\">").Append(html).Append("</section>\n");
                continue;
            }
            body.Append($"<section class=\"cell code\" id=\"cell-{i + 1}\">")
              .Append($"<div class=\"prompt\">[{(cell.ExecutionOrder > 0 ? cell.ExecutionOrder.ToString() : " ")}]</div>")
              .Append($"<pre class=\"source\"><code>{Encode(cell.Contents)}</code></pre>");
            foreach (var output in cell.Outputs) body.Append(Output(output));
            body.Append("</section>\n");
        }

        var page = new StringBuilder();
        page.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>")
            .Append($"<title>{Encode(title)}</title>\n<style>{Style}</style>\n");
        if (math) page.Append(MathAssets.Head); // only pages with formulas carry KaTeX (about 0.7 MB)
        page.Append("</head>\n<body>\n");
        if (result is { Failure: { } failure })
            page.Append($"<div class=\"run-failed\">Run failed at cell {failure.Cell}: {Encode(failure.Message)}</div>\n");
        return page.Append(body).Append("</body></html>\n").ToString();
    }

    /// <summary>
    /// A markdown cell as HTML. Markdig's math extension keeps every $...$ and $$...$$ formula out of the markdown
    /// (no emphasis from its underscores) and wraps it in <c>&lt;span class="math"&gt;\(...\)</c>, or for $$ on lines
    /// of their own <c>&lt;div class="math"&gt;\[...\]</c>, which the page's KaTeX typesets (<see cref="MathAssets"/>).
    /// A $$...$$ within a line is display math too, as in Jupyter: Markdig wraps it like $...$, so it is marked
    /// <c>class="math display"</c>.
    /// </summary>
    internal static string MarkdownHtml(string markdown)
    {
        var parsed = Markdig.Markdown.Parse(markdown, Markdown);
        foreach (var math in parsed.Descendants<MathInline>())
            if (math.DelimiterCount >= 2) math.GetAttributes().AddClass("display");
        return parsed.ToHtml(Markdown);
    }

    private const string MathMarker = "class=\"math";

    private static string Output(InteractiveDocumentOutputElement output) => output switch
    {
        TextElement t => $"<pre class=\"output {Encode(t.Name)}\">{Encode(t.Text)}</pre>",
        ErrorElement e => $"<pre class=\"output error\">{Encode(e.ErrorName)}: {Encode(e.ErrorValue)}</pre>",
        DisplayElement d => $"<div class=\"output\">{Rich(d.Data)}</div>",
        ReturnValueElement r => $"<div class=\"output\">{Rich(r.Data)}</div>",
        _ => "",
    };

    /// <summary>The richest mime type we can inline: HTML, then SVG, PNG/JPEG, JSON, plain text.</summary>
    private static string Rich(IDictionary<string, object> data)
    {
        if (data.TryGetValue("text/html", out var html)) return Text(html);
        if (data.TryGetValue("image/svg+xml", out var svg)) return Text(svg);
        if (data.TryGetValue("image/png", out var png)) return $"<img src=\"data:image/png;base64,{Text(png).Trim()}\"/>";
        if (data.TryGetValue("image/jpeg", out var jpg)) return $"<img src=\"data:image/jpeg;base64,{Text(jpg).Trim()}\"/>";
        if (data.TryGetValue("application/json", out var json)) return $"<pre>{Encode(Text(json))}</pre>";
        if (data.TryGetValue("text/plain", out var plain)) return $"<pre>{Encode(Text(plain))}</pre>";
        return "";
    }

    // Values read back from .ipynb may be JSON elements or arrays of lines rather than strings.
    private static string Text(object value) => value switch
    {
        string s => s,
        JsonElement { ValueKind: JsonValueKind.String } j => j.GetString() ?? "",
        JsonElement { ValueKind: JsonValueKind.Array } j => string.Concat(j.EnumerateArray().Select(x => x.ToString())),
        IEnumerable<object> lines => string.Concat(lines.Select(Text)),
        _ => value.ToString() ?? "",
    };

    private static string Encode(string s) => WebUtility.HtmlEncode(s);

    private const string Style = """
        body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
        .cell { margin: 1em 0; }
        .code .source { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 8px; overflow-x: auto; font-size: 13px; }
        .prompt { color: #888; font-family: monospace; font-size: 12px; }
        .output { margin: 4px 0 4px 12px; overflow-x: auto; }
        pre.output { background: #fff; border-left: 3px solid #ddd; padding: 4px 8px; white-space: pre-wrap; }
        pre.output.error, pre.output.stderr { border-left-color: #c00; background: #fdecec; }
        .run-failed { background: #c00; color: #fff; padding: 8px; font-weight: bold; }
        table { border-collapse: collapse; }
        """;
}
