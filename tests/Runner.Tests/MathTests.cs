using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.DotNet.Interactive.Documents;
using Workbench.Runner;

namespace Workbench.Runner.Tests;

/// <summary>
/// The formulas of the HTML reports: Markdig finds them, the page carries KaTeX and its fonts inline (nothing to fetch),
/// the vendored KaTeX is the npm registry's byte for byte, and the nbconvert template carries the same assets.
/// That the formulas actually typeset is checked in Chromium by .ci/math-check.sh.
/// </summary>
public class MathTests
{
    private static InteractiveDocument Document(params (string Kind, string Source)[] cells) =>
        new(cells.Select(c => new InteractiveDocumentElement(c.Source, c.Kind)).ToList());

    // Any reference a browser would follow by itself: a script, style sheet, image, frame or font from a URL.
    private static readonly Regex Fetching = new(
        @"<(script|img|iframe|audio|video|source)\b[^>]*\bsrc\s*=|<link\b|@import|url\((?!data:)", RegexOptions.IgnoreCase);

    // The markup without the bodies of inline scripts (KaTeX's own code holds '<img src=' for \includegraphics).
    private static string Markup(string html) =>
        Regex.Replace(html, @"(<script\b(?![^>]*\bsrc)[^>]*>).*?</script>", "$1</script>", RegexOptions.Singleline | RegexOptions.IgnoreCase);

    [Fact]
    public void A_report_with_formulas_carries_KaTeX_inline_and_references_nothing_to_fetch()
    {
        var doc = Document(
            ("markdown", "A block is $h = x + \\mathrm{Attn}(x_t)$ and\n\n$$S = 1 - \\frac{X_t \\cdot Y_t}{\\lVert X_t\\rVert}$$\n\n$$\ny = h + \\mathrm{MLP}(h)\n$$\n\nSet `$PATH` first."),
            ("csharp", "var a_t = 1;"));
        var html = HtmlReport.Render(doc, "math");

        Assert.Contains("<span class=\"math\">\\(h = x + \\mathrm{Attn}(x_t)\\)</span>", html);
        Assert.Contains("<span class=\"math display\">\\(S = 1 - \\frac{X_t \\cdot Y_t}{\\lVert X_t\\rVert}\\)</span>", html);
        Assert.Matches(@"<div class=""math"">\s*\\\[\s*y = h \+ \\mathrm\{MLP\}\(h\)\s*\\\]\s*</div>", html);
        Assert.DoesNotContain("<em>", html);                      // the formula's underscores are not emphasis
        Assert.Contains("<code>$PATH</code>", html);              // a dollar in code is not a formula
        var head = html[..html.IndexOf("</head>", StringComparison.Ordinal)];
        Assert.Contains(MathAssets.Head, head);                    // KaTeX, auto-render, our script, fonts: inline
        Assert.Single(Regex.Matches(html, Regex.Escape(MathAssets.Script)));
        Assert.Contains("katex.render(", MathAssets.Script);
        Assert.Contains("renderMathInElement", MathAssets.Script);
        Assert.DoesNotMatch(Fetching, Markup(html));
    }

    [Fact]
    public void A_report_without_formulas_carries_no_KaTeX()
    {
        var html = HtmlReport.Render(Document(("markdown", "# Title\n\nCosts $5 or more, `$x$` in code."), ("csharp", "1")), "plain");
        Assert.DoesNotContain("class=\"math\"", html);
        Assert.DoesNotContain("katex", html, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Every_KaTeX_font_is_inlined_as_its_woff2_file()
    {
        var fonts = MathAssets.ResourceNames.Where(n => n.StartsWith("katex/fonts/", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(fonts);
        Assert.All(fonts, f => Assert.EndsWith(".woff2", f));
        var faces = Regex.Matches(MathAssets.Css, @"@font-face\{[^}]*\}").Select(m => m.Value).ToList();
        Assert.Equal(fonts.Count, faces.Count);
        var inlined = new HashSet<string>();
        foreach (var face in faces)
        {
            var sources = Regex.Matches(face, @"url\(([^)]*)\)").Select(m => m.Groups[1].Value).ToList();
            var source = Assert.Single(sources);
            Assert.StartsWith("data:font/woff2;base64,", source);
            var bytes = Convert.FromBase64String(source["data:font/woff2;base64,".Length..]);
            Assert.Equal("wOF2", Encoding.ASCII.GetString(bytes, 0, 4)); // the woff2 signature
            var match = fonts.Single(f => MathAssets.Bytes(f).AsSpan().SequenceEqual(bytes));
            Assert.True(inlined.Add(match), $"{match} inlined twice");
        }
    }

    [Fact]
    public void A_style_sheet_whose_font_cannot_be_inlined_is_refused_by_name()
    {
        var e = Assert.Throws<InvalidOperationException>(() =>
            MathAssets.InlineFonts("@font-face{font-family:X;src:url(fonts/KaTeX_X.ttf) format(\"truetype\")}"));
        Assert.Contains("katex.min.css", e.Message);
        Assert.Contains("url(fonts/KaTeX_X.ttf)", e.Message);
        Assert.Contains("offset 29", e.Message);
    }

    [Fact]
    public void The_vendored_KaTeX_is_the_files_listed_in_its_SHA256SUMS_with_its_licence()
    {
        var sums = Encoding.UTF8.GetString(MathAssets.Bytes("katex/SHA256SUMS"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split("  ", 2)).ToDictionary(p => p[1], p => p[0]);
        var vendored = MathAssets.ResourceNames.Where(n => n.StartsWith("katex/", StringComparison.Ordinal) && n != "katex/SHA256SUMS")
            .Select(n => n["katex/".Length..]).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(sums.Keys.Order(StringComparer.Ordinal), vendored);
        foreach (var file in vendored)
            Assert.True(Convert.ToHexStringLower(SHA256.HashData(MathAssets.Bytes("katex/" + file))) == sums[file], $"Katex/katex/{file} differs from SHA256SUMS");
        Assert.Contains("The MIT License", Encoding.UTF8.GetString(MathAssets.Bytes("katex/LICENSE")));
    }

    [Fact]
    public void The_nbconvert_template_replaces_MathJax_and_require_js_by_the_same_inline_assets_and_drops_the_kernel_glue()
    {
        var dir = MathAssets.WriteNbconvertTemplate(Path.Combine(Path.GetTempPath(), "wb-nbconvert-" + Guid.NewGuid().ToString("N")));
        Assert.Equal("workbench", Path.GetFileName(dir));
        Assert.Equal(MathAssets.Css, File.ReadAllText(Path.Combine(dir, "katex.css")));
        Assert.Equal(MathAssets.Script, File.ReadAllText(Path.Combine(dir, "math.js")));
        Assert.Equal("lab", JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "conf.json"))).RootElement.GetProperty("base_template").GetString());
        var template = File.ReadAllText(Path.Combine(dir, "index.html.j2"));
        Assert.StartsWith("{%- extends 'lab/index.html.j2' -%}", template);
        Assert.Matches(@"\{%- block html_head_js_requirejs -%\}\s*\{%- endblock html_head_js_requirejs -%\}", template);
        Assert.Matches(@"\{%- block html_head_js_mathjax -%\}\s*\{\{ resources.include_css\(""katex.css""\) \}\}\s*\{\{ resources.include_js\(""math.js""\) \}\}\s*\{%- endblock html_head_js_mathjax -%\}", template);
        Assert.Matches(@"\{%- block data_html scoped -%\}\s*\{%- if 'loadDotnetInteractiveApi' not in output.data\['text/html'\] -%\}\s*\{\{ super\(\) \}\}", template);
        Assert.DoesNotMatch(Fetching, MathAssets.Css);
    }

    /// <summary>
    /// Every $ in the notebooks' markdown prose belongs to a formula Markdig found (so KaTeX gets it, not the reader
    /// as source); a $ left in the text names its notebook and cell.
    /// </summary>
    [Fact]
    public void Every_dollar_in_the_notebooks_markdown_is_inside_a_formula_the_report_typesets()
    {
        var notebooks = Directory.GetFiles(Path.Combine(RepoPaths.Root(), "notebooks"), "*.ipynb").Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(notebooks);
        int formulas = 0;
        foreach (var path in notebooks)
        {
            var doc = NotebookExecutor.Read(path);
            for (int i = 0; i < doc.Elements.Count; i++)
            {
                if (!NotebookExecutor.IsMarkdown(doc.Elements[i])) continue;
                var html = HtmlReport.MarkdownHtml(doc.Elements[i].Contents);
                var math = Regex.Matches(html, @"<(span|div) class=""math( display)?"">(.*?)</\1>", RegexOptions.Singleline);
                foreach (Match m in math)
                    Assert.True(Regex.IsMatch(m.Groups[3].Value, @"^\s*\\[(\[]\s*\S[\s\S]*\\[)\]]\s*$"),
                        $"{Path.GetFileName(path)} cell {i + 1}: empty or unwrapped formula {m.Value}");
                formulas += math.Count;
                var prose = Regex.Replace(html, @"<(span|div) class=""math( display)?"">.*?</\1>|<code>.*?</code>|<pre>.*?</pre>", "", RegexOptions.Singleline);
                var left = prose.IndexOf('$');
                Assert.True(left < 0, $"{Path.GetFileName(path)} cell {i + 1}: a $ outside any formula: ...{prose[Math.Max(0, left - 60)..Math.Min(prose.Length, left + 60)]}...");
            }
        }
        Assert.True(formulas > 0, "no formula in any notebook's markdown");
    }
}
