using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;

namespace Workbench.Runner;

/// <summary>
/// What a notebook page needs to show its formulas typeset with nothing fetched at view time: KaTeX (vendored from the
/// npm registry in Katex/katex with its MIT licence, see Katex/README.md) as one inline style sheet, its woff2 fonts
/// inlined as data URIs, and one inline script (KaTeX, its auto-render extension and Katex/render-math.js, which
/// typesets the page on load and shows a formula KaTeX rejects as red source instead of failing the page).
/// The runner's HTML reports carry them (<see cref="HtmlReport"/>); <see cref="WriteNbconvertTemplate"/> writes an
/// nbconvert template that carries the same two files instead of MathJax from a URL.
/// </summary>
public static class MathAssets
{
    private static string? _css, _script;

    /// <summary>katex.min.css with every @font-face source replaced by its woff2 file as a data URI.</summary>
    public static string Css => _css ??= InlineFonts(Resource("katex/katex.min.css"));

    /// <summary>KaTeX, auto-render and the page's typesetting script, in one script body.</summary>
    public static string Script => _script ??= string.Join("\n",
        // KaTeX's UMD bundles register an AMD module instead of the globals when a page has require.js' define.
        "window.__workbenchMathDefine = window.define; window.define = undefined;",
        Resource("katex/katex.min.js"),
        Resource("katex/auto-render.min.js"),
        "window.define = __workbenchMathDefine; delete window.__workbenchMathDefine;",
        Resource("render-math.js"));

    /// <summary>The &lt;style&gt; and &lt;script&gt; elements for a page's &lt;head&gt;.</summary>
    public static string Head => $"<style>{Css}</style>\n<script>{Script}</script>\n";

    /// <summary>
    /// Writes the nbconvert template "workbench" into <paramref name="baseDir"/>/workbench: JupyterLab's HTML export
    /// with KaTeX inlined and no script from a URL. Use it as
    /// <c>jupyter nbconvert --to html --TemplateExporter.extra_template_basedirs=BASEDIR --template workbench NB.ipynb</c>.
    /// </summary>
    public static string WriteNbconvertTemplate(string baseDir)
    {
        var dir = Path.Combine(baseDir, "workbench");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "conf.json"), Resource("nbconvert/conf.json"));
        File.WriteAllText(Path.Combine(dir, "index.html.j2"), Resource("nbconvert/index.html.j2"));
        File.WriteAllText(Path.Combine(dir, "katex.css"), Css);
        File.WriteAllText(Path.Combine(dir, "math.js"), Script);
        return dir;
    }

    // src:url(fonts/X.woff2) format("woff2"),url(fonts/X.woff) format("woff"),url(fonts/X.ttf) format("truetype")
    private static readonly Regex FontSource =
        new(@"url\(fonts/(?<font>[\w-]+)\.woff2\) format\(""woff2""\)(?:,url\(fonts/[\w.-]+\) format\(""\w+""\))*");

    internal static string InlineFonts(string css)
    {
        var inlined = FontSource.Replace(css, m =>
            $"url(data:font/woff2;base64,{Convert.ToBase64String(Bytes($"katex/fonts/{m.Groups["font"].Value}.woff2"))}) format(\"woff2\")");
        // A KaTeX whose CSS names its fonts differently must not ship a page that fetches them.
        var left = Regex.Match(inlined, @"url\((?!data:)[^)]*\)");
        if (left.Success)
            throw new InvalidOperationException($"Katex/katex/katex.min.css: font source {left.Value} was not inlined (offset {left.Index})");
        return inlined;
    }

    /// <summary>The names of the files vendored in Katex/ and embedded in this assembly, relative to Katex/.</summary>
    public static IEnumerable<string> ResourceNames =>
        Assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)).Select(n => n[Prefix.Length..]);

    internal static byte[] Bytes(string name)
    {
        using var stream = Assembly.GetManifestResourceStream(Prefix + name)
            ?? throw new InvalidOperationException($"Katex/{name} is not embedded in {Assembly.GetName().Name} (see src/Runner/Katex/README.md)");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static string Resource(string name) => Encoding.UTF8.GetString(Bytes(name));

    private const string Prefix = "Katex/";
    private static Assembly Assembly => typeof(MathAssets).Assembly;
}
