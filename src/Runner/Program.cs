using System.Diagnostics;
using Workbench.Runner;

// Workbench.Runner [--out DIR] [--only NAME] [--notebooks DIR] [--no-pack] [--pack-only] [--timeout SECONDS]
//                  [--nbconvert-template BASEDIR]   (writes the offline-math nbconvert template "workbench" and exits)
// Exit codes: 0 all notebooks ran, 1 a cell failed (the message names notebook and cell), 2 bad usage or set-up.
string? outDir = null, only = null, notebooksDir = null, templateDir = null;
bool pack = true, packOnly = false;
var timeout = TimeSpan.FromMinutes(10);
for (int i = 0; i < args.Length; i++)
{
    string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    try
    {
        switch (args[i])
        {
            case "--out": outDir = Value(); break;
            case "--only": only = Value(); break;
            case "--notebooks": notebooksDir = Value(); break;
            case "--no-pack": pack = false; break;
            case "--pack-only": packOnly = true; break;
            case "--nbconvert-template": templateDir = Value(); break;
            case "--timeout":
                var s = Value();
                timeout = int.TryParse(s, out var secs) && secs > 0 ? TimeSpan.FromSeconds(secs)
                    : throw new ArgumentException($"--timeout must be a positive number of seconds (got '{s}')");
                break;
            case "-h" or "--help":
                Console.WriteLine("Workbench.Runner [--out DIR] [--only NAME] [--notebooks DIR] [--no-pack] [--pack-only] [--timeout SECONDS] [--nbconvert-template BASEDIR]");
                return 0;
            default: throw new ArgumentException($"unknown option '{args[i]}'");
        }
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"error: {e.Message}");
        return 2;
    }
}

if (templateDir is not null)
{
    // For nbconvert's HTML export: jupyter nbconvert --to html --TemplateExporter.extra_template_basedirs=BASEDIR --template workbench
    try { Console.WriteLine($"nbconvert template: {MathAssets.WriteNbconvertTemplate(Path.GetFullPath(templateDir))}"); return 0; }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
    {
        Console.Error.WriteLine($"error: --nbconvert-template '{templateDir}': {e.Message}");
        return 2;
    }
}

string root;
try { root = RepoPaths.Root(); }
catch (DirectoryNotFoundException e) { Console.Error.WriteLine($"error: {e.Message}"); return 2; }

notebooksDir = Path.GetFullPath(notebooksDir ?? Path.Combine(root, "notebooks"));
outDir = Path.GetFullPath(outDir ?? Path.Combine(root, "out", "notebooks"));
if (packOnly)
{
    try { FeedBuilder.Pack(root, Console.Out); return 0; }
    catch (InvalidOperationException e) { Console.Error.WriteLine($"error: {e.Message}"); return 2; }
}
// A file where the output folder should be would only fail after every notebook ran: refuse it now.
if (File.Exists(outDir)) { Console.Error.WriteLine($"error: --out '{outDir}' is an existing file, not a folder"); return 2; }
if (!Directory.Exists(notebooksDir)) { Console.Error.WriteLine($"error: notebooks folder '{notebooksDir}' does not exist"); return 2; }

var notebooks = Directory.EnumerateFiles(notebooksDir, "*.ipynb").Order(StringComparer.Ordinal).ToList();
if (only is not null)
{
    var wanted = Path.GetFileNameWithoutExtension(only);
    notebooks = notebooks.Where(n => string.Equals(Path.GetFileNameWithoutExtension(n), wanted, StringComparison.OrdinalIgnoreCase)).ToList();
    if (notebooks.Count == 0) { Console.Error.WriteLine($"error: --only '{only}': no such notebook in {notebooksDir}"); return 2; }
}
if (notebooks.Count == 0) { Console.Error.WriteLine($"error: no .ipynb in {notebooksDir}"); return 2; }

// Packed only now, after the notebooks are found: a bad --only fails fast.
if (pack)
{
    try { FeedBuilder.Pack(root, Console.Out); }
    catch (InvalidOperationException e) { Console.Error.WriteLine($"error: {e.Message}"); return 2; }
}

try { Directory.CreateDirectory(outDir); }
catch (Exception e) when (e is IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"error: --out '{outDir}': {e.Message}");
    return 2;
}
var total = Stopwatch.StartNew();
var failures = new List<string>();
foreach (var path in notebooks)
{
    var name = Path.GetFileNameWithoutExtension(path);
    Console.WriteLine($"notebook {Path.GetRelativePath(root, path)}");
    var document = NotebookExecutor.Read(path);
    var result = await NotebookExecutor.ExecuteAsync(document, name, Path.GetDirectoryName(path)!, Console.Out, timeout);
    File.WriteAllText(Path.Combine(outDir, name + ".ipynb"), NotebookExecutor.ToIpynb(document));
    File.WriteAllText(Path.Combine(outDir, name + ".html"), HtmlReport.Render(document, name, result));
    if (result.Failure is { } f)
    {
        var message = $"FAILED {Path.GetRelativePath(root, path)} cell {f.Cell}: {f.Message.Split('\n')[0].Trim()}";
        Console.Error.WriteLine(message);
        failures.Add(message);
    }
    else
    {
        Console.WriteLine($"ok {name}: {result.CellsRun} cells in {result.Elapsed.TotalSeconds:F1} s -> {Path.GetRelativePath(root, outDir)}/{name}.ipynb, .html");
    }
}
Console.WriteLine($"notebooks: {notebooks.Count - failures.Count} passed, {failures.Count} failed ({total.Elapsed.TotalSeconds:F1} s)");
return failures.Count == 0 ? 0 : 1;
