using System.Diagnostics;
using System.Reflection;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Documents;
using Microsoft.DotNet.Interactive.Documents.Jupyter;
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.Formatting;
using Microsoft.DotNet.Interactive.PackageManagement;

namespace Workbench.Runner;

/// <summary>The outcome of one notebook.</summary>
public sealed record NotebookResult(string Name, int CellsRun, TimeSpan Elapsed, CellFailure? Failure)
{
    public bool Succeeded => Failure is null;
}

/// <summary>Which cell failed (1-based, counting every cell as Jupyter shows them) and why.</summary>
public sealed record CellFailure(int Cell, string Message);

/// <summary>
/// Runs a notebook in process: a CompositeKernel with a C# kernel (#r nuget, kernel helpers, value sharing), each code
/// cell submitted in order, outputs captured into the document. Stops at the first failing cell, like nbconvert.
/// Packages that carry interactive-extensions/dotnet (extension.dib or IKernelExtension DLLs) are loaded the way the
/// dotnet-interactive tool does it, since that scan is not part of the libraries.
/// </summary>
public static class NotebookExecutor
{
    public static readonly KernelInfoCollection KernelInfos = CreateKernelInfos();

    private static KernelInfoCollection CreateKernelInfos()
    {
        var infos = new KernelInfoCollection
        {
            new Microsoft.DotNet.Interactive.Documents.KernelInfo("csharp", "C#", ["c#", "C#", "cs"]),
            new Microsoft.DotNet.Interactive.Documents.KernelInfo("markdown", "Markdown", ["md"]),
        };
        infos.DefaultKernelName = "csharp";
        return infos;
    }

    public static InteractiveDocument Read(string path)
    {
        using var stream = File.OpenRead(path);
        return Notebook.Read(stream, KernelInfos);
    }

    /// <summary>Executes <paramref name="document"/> in place (outputs are replaced). <paramref name="workingDirectory"/> is the
    /// notebook's folder, as under Jupyter, so relative paths in cells (e.g. <c>#i "nuget: ../artifacts/feed"</c>) work.</summary>
    public static async Task<NotebookResult> ExecuteAsync(
        InteractiveDocument document, string name, string workingDirectory, TextWriter log, TimeSpan cellTimeout)
    {
        var sw = Stopwatch.StartNew();
        var previousDirectory = Environment.CurrentDirectory;
        Environment.CurrentDirectory = workingDirectory;
        using var kernel = CreateKernel(log);
        int run = 0;
        try
        {
            for (int i = 0; i < document.Elements.Count; i++)
            {
                var cell = document.Elements[i];
                if (IsMarkdown(cell)) continue;
                cell.Outputs.Clear();
                if (string.IsNullOrWhiteSpace(cell.Contents)) continue;
                run++;
                cell.ExecutionOrder = run;
                var cellSw = Stopwatch.StartNew();
                var error = await RunCellAsync(kernel, cell, cellTimeout)
                    ?? await RunPendingExtensionsAsync(kernel, cell, log);
                log.WriteLine($"  cell {i + 1}: {(error is null ? "ok" : "FAILED")} ({cellSw.Elapsed.TotalSeconds:F1} s)");
                if (error is not null)
                    return new NotebookResult(name, run, sw.Elapsed, new CellFailure(i + 1, error));
            }
            return new NotebookResult(name, run, sw.Elapsed, null);
        }
        finally
        {
            Environment.CurrentDirectory = previousDirectory;
        }
    }

    public static bool IsMarkdown(InteractiveDocumentElement cell) =>
        string.Equals(cell.KernelName, "markdown", StringComparison.OrdinalIgnoreCase) ||
        string.Equals(cell.KernelName, "md", StringComparison.OrdinalIgnoreCase);

    public static CompositeKernel CreateKernel(TextWriter log)
    {
        var csharp = new CSharpKernel()
            // Supplying the callback replaces the default one: it must add the packages' assemblies itself.
            .UseNugetDirective((k, packages) =>
            {
                k.AddAssemblyReferences(packages.SelectMany(p => p.AssemblyPaths));
                return LoadExtensionsAsync(k, packages, log);
            })
            .UseKernelHelpers()
            .UseValueSharing()
            .UseWho();
        var composite = new CompositeKernel { csharp };
        composite.DefaultKernelName = csharp.Name;
        return composite;
    }

    /// <summary>
    /// The dotnet-interactive tool's package scan: DLLs in interactive-extensions/dotnet with IKernelExtension classes are
    /// loaded and called now; extension.dib files are queued and run right after the cell that restored the package
    /// (the package's assemblies are referenced from the next submission on, and failures stay visible).
    /// </summary>
    internal static async Task LoadExtensionsAsync(Kernel kernel, IReadOnlyList<ResolvedPackageReference> packages, TextWriter log)
    {
        var root = kernel.RootKernel;
        foreach (var package in packages)
        {
            if (Environment.GetEnvironmentVariable("WORKBENCH_RUNNER_DEBUG") == "1") log.WriteLine($"  package {package.PackageName} {package.PackageVersion}: {string.Join(", ", package.AssemblyPaths)}");
            var dir = Path.Combine(package.PackageRoot, "interactive-extensions", "dotnet");
            if (!Directory.Exists(dir)) continue;
            foreach (var dll in Directory.EnumerateFiles(dir, "*.dll"))
            {
                var assembly = Assembly.LoadFrom(dll);
                foreach (var type in assembly.GetExportedTypes().Where(t => typeof(IKernelExtension).IsAssignableFrom(t) && !t.IsAbstract))
                {
                    await ((IKernelExtension)Activator.CreateInstance(type)!).OnLoadAsync(root);
                    log.WriteLine($"  loaded extension {type.FullName} from {package.PackageName} {package.PackageVersion}");
                }
            }
            var dib = Path.Combine(dir, "extension.dib");
            if (File.Exists(dib))
                lock (PendingDibs) PendingDibs.Add((root, dib, $"{package.PackageName} {package.PackageVersion}"));
        }
    }

    private static readonly List<(Kernel Root, string Path, string Package)> PendingDibs = new();

    /// <summary>Runs the extension.dib files queued for <paramref name="root"/>; returns an error message on failure.</summary>
    private static async Task<string?> RunPendingExtensionsAsync(Kernel root, InteractiveDocumentElement cell, TextWriter log)
    {
        List<(Kernel Root, string Path, string Package)> mine;
        lock (PendingDibs)
        {
            mine = PendingDibs.Where(p => ReferenceEquals(p.Root, root)).ToList();
            PendingDibs.RemoveAll(p => ReferenceEquals(p.Root, root));
        }
        foreach (var (_, path, package) in mine)
        {
            var dib = CodeSubmission.Read(File.OpenRead(path), KernelInfos);
            foreach (var element in dib.Elements)
            {
                if (IsMarkdown(element) || string.IsNullOrWhiteSpace(element.Contents)) continue;
                var result = await root.SendAsync(new SubmitCode(element.Contents, string.IsNullOrEmpty(element.KernelName) ? "csharp" : element.KernelName));
                if (result.Events.OfType<CommandFailed>().FirstOrDefault() is { } failed)
                {
                    var message = $"extension.dib of {package} failed: {failed.Message}";
                    cell.Outputs.Add(new ErrorElement(errorValue: message, errorName: "ExtensionLoadError", stackTrace: []));
                    return message;
                }
            }
            log.WriteLine($"  loaded extension.dib from {package}");
        }
        return null;
    }

    /// <summary>Submits one cell; fills its outputs; returns the error message when it failed.</summary>
    private static async Task<string?> RunCellAsync(Kernel kernel, InteractiveDocumentElement cell, TimeSpan timeout)
    {
        var kernelName = string.IsNullOrEmpty(cell.KernelName) ? "csharp" : cell.KernelName;
        using var cts = new CancellationTokenSource(timeout);
        var command = new SubmitCode(cell.Contents, kernelName);
        KernelCommandResult result;
        try
        {
            result = await kernel.SendAsync(command, cts.Token);
        }
        catch (OperationCanceledException)
        {
            var message = $"timed out after {timeout.TotalSeconds:F0} s";
            cell.Outputs.Add(new ErrorElement(errorValue: message, errorName: "Timeout", stackTrace: []));
            return message;
        }

        var byDisplayId = new Dictionary<string, DisplayElement>();
        string? failure = null;
        foreach (var e in result.Events)
        {
            switch (e)
            {
                case StandardOutputValueProduced o:
                    cell.Outputs.Add(new TextElement(PlainText(o.FormattedValues), "stdout"));
                    break;
                case StandardErrorValueProduced o:
                    cell.Outputs.Add(new TextElement(PlainText(o.FormattedValues), "stderr"));
                    break;
                case ReturnValueProduced r:
                    var ret = new ReturnValueElement { ExecutionOrder = cell.ExecutionOrder };
                    foreach (var (mime, value) in Data(r.FormattedValues)) ret.Data[mime] = value;
                    cell.Outputs.Add(ret);
                    break;
                case DisplayedValueUpdated u when u.ValueId is not null && byDisplayId.TryGetValue(u.ValueId, out var shown):
                    shown.Data.Clear();
                    foreach (var (mime, value) in Data(u.FormattedValues)) shown.Data[mime] = value;
                    break;
                case ErrorProduced err:
                    cell.Outputs.Add(new ErrorElement(errorValue: err.Message, errorName: "Error", stackTrace: []));
                    break;
                case DisplayEvent d and not DisplayedValueUpdated:
                    var element = new DisplayElement(Data(d.FormattedValues));
                    if (d.ValueId is not null) byDisplayId[d.ValueId] = element;
                    cell.Outputs.Add(element);
                    break;
                case CommandFailed f when failure is null:
                    failure = f.Message;
                    cell.Outputs.Add(new ErrorElement(errorValue: f.Message, errorName: f.Exception?.GetType().Name ?? "Error",
                        stackTrace: f.Exception?.StackTrace?.Split('\n') ?? []));
                    break;
            }
        }
        return failure;
    }

    private static Dictionary<string, object> Data(IEnumerable<FormattedValue> values)
    {
        var data = new Dictionary<string, object>();
        foreach (var v in values)
            if (!v.SuppressDisplay) data[v.MimeType] = v.Value;
        return data;
    }

    private static string PlainText(IEnumerable<FormattedValue> values) =>
        values.FirstOrDefault(v => v.MimeType == PlainTextFormatter.MimeType)?.Value ?? string.Concat(values.Select(v => v.Value));

    /// <summary>The executed notebook as Jupyter JSON (the overload without a kernel name: the other throws on polyglot metadata).</summary>
    public static string ToIpynb(InteractiveDocument document) => Notebook.ToJupyterJson(document);
}
