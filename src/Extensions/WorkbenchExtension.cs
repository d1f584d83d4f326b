using System.Runtime.CompilerServices;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.CSharp;
using Workbench.Interactive.Directives;

namespace Workbench.Interactive;

/// <summary>
/// Entry point of the extension. The NuGet package runs it from interactive-extensions/dotnet/extension.dib;
/// with a local build, <c>#r</c> the DLLs in one cell and call <c>Workbench.Interactive.WorkbenchExtension.Load(Kernel.Root)</c> in the next.
/// </summary>
public static class WorkbenchExtension
{
    private static readonly ConditionalWeakTable<Kernel, object> Loaded = new();

    /// <summary>Registers formatters and magic commands. Idempotent per kernel.</summary>
    public static void Load(Kernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        // First, before any Plotly.NET type is touched: the kernel ships an older FSharp.Core than Plotly.NET asks for.
        FSharpCoreResolver.Install();
        var target = TargetKernel(kernel);
        if (!Loaded.TryAdd(target, new object())) return;
        RegisterFormatters();
        RegisterDirectives(target);
    }

    /// <summary>The kernel that gets the magic commands: the C# subkernel of a composite, else the kernel itself.</summary>
    internal static Kernel TargetKernel(Kernel kernel) =>
        kernel is CompositeKernel composite
            ? composite.ChildKernels.OfType<CSharpKernel>().FirstOrDefault() ?? kernel
            : kernel;

    // Separate, non-inlined methods: JIT-compiling them resolves Plotly.NET and hence FSharp.Core,
    // which must happen after the resolver above is installed.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RegisterFormatters()
    {
        PlotlyFormatter.Register();
        DataFrameFormatter.Register();
        ErrorFormatter.Register();
        LiveProgress.Register();
        Html.RegisterRecord<PlotlySettings>();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RegisterDirectives(Kernel kernel)
    {
        PlotlyDirective.Add(kernel);
    }
}
