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
        LocateBundledData();
        var target = TargetKernel(kernel);
        if (!Loaded.TryAdd(target, new object())) return;
        RegisterFormatters();
        RegisterDirectives(target);
    }

    /// <summary>
    /// Inside a kernel the engine's assembly comes from the NuGet cache, far from the repository's models/ and data/:
    /// point WORKBENCH_HOME at the checkout holding the notebook (the kernel's working directory) unless it is set.
    /// </summary>
    private static void LocateBundledData()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("WORKBENCH_HOME"))) return;
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Workbench.sln")) && Directory.Exists(Path.Combine(dir.FullName, "models")))
            {
                Environment.SetEnvironmentVariable("WORKBENCH_HOME", dir.FullName);
                return;
            }
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
        ModelDirective.RegisterFormatters();
        Charts.RedundancyCharts.RegisterFormatters();
        Charts.LowBitCharts.RegisterFormatters();
        Charts.TokenDropCharts.RegisterFormatters();
        Charts.StackCharts.RegisterFormatters();
        Charts.TrainingCharts.RegisterFormatters();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RegisterDirectives(Kernel kernel)
    {
        PlotlyDirective.Add(kernel);
        ModelDirective.Add(kernel);
        RedundancyDirectives.Add(kernel);
        LowBitDirectives.Add(kernel);
        TokenDropDirectives.Add(kernel);
        StackDirective.Add(kernel);
        TrainingDirectives.Add(kernel);
    }
}
