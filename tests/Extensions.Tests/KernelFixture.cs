using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.Formatting;

namespace Workbench.Interactive.Tests;

/// <summary>A fresh CompositeKernel + CSharpKernel with the extension loaded, as a notebook has it.</summary>
internal sealed class TestKernel : IDisposable
{
    public CompositeKernel Root { get; }
    public CSharpKernel CSharp { get; }

    public TestKernel()
    {
        CSharp = new CSharpKernel().UseKernelHelpers().UseValueSharing();
        Root = new CompositeKernel { CSharp };
        Root.DefaultKernelName = CSharp.Name;
        // What #r "nuget: Workbench.Interactive" gives a notebook: the extension and its chart and table libraries.
        CSharp.AddAssemblyReferences(new[]
        {
            typeof(WorkbenchExtension), typeof(Plotly.NET.GenericChart), typeof(Plotly.NET.CSharp.Chart),
            typeof(Microsoft.Data.Analysis.DataFrame), typeof(Microsoft.FSharp.Core.FSharpOption<>), typeof(Workbench.Engine.Models.ModelHub),
        }.Select(t => t.Assembly.Location));
        WorkbenchExtension.Load(Root);
    }

    public async Task<KernelCommandResult> SubmitAsync(string code) =>
        await Root.SendAsync(new SubmitCode(code, CSharp.Name));

    public void Dispose() => Root.Dispose();
}

internal static class Events
{
    public static CommandFailed? Failure(this KernelCommandResult r) => r.Events.OfType<CommandFailed>().FirstOrDefault();

    public static void AssertSucceeded(this KernelCommandResult r) =>
        Assert.True(r.Failure() is null, "command failed: " + r.Failure()?.Message);

    /// <summary>All formatted values of display and return events, as (mime, value).</summary>
    public static List<FormattedValue> Formatted(this KernelCommandResult r) =>
        r.Events.OfType<DisplayEvent>().SelectMany(e => e.FormattedValues).ToList();

    public static string Html(this KernelCommandResult r) =>
        string.Concat(r.Formatted().Where(v => v.MimeType == HtmlFormatter.MimeType).Select(v => v.Value));
}
