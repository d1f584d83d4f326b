using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.CSharp;
namespace Workbench.Interactive.Tests;

public class LoadTests
{
    [Fact]
    public async Task Load_from_a_cell_makes_the_magics_known_to_later_cells()
    {
        var csharp = new Microsoft.DotNet.Interactive.CSharp.CSharpKernel().UseKernelHelpers().UseValueSharing();
        using var root = new Microsoft.DotNet.Interactive.CompositeKernel { csharp };
        root.DefaultKernelName = "csharp";
        var dll = typeof(WorkbenchExtension).Assembly.Location;
        var r1 = await root.SendAsync(new Microsoft.DotNet.Interactive.Commands.SubmitCode($"#r \"{dll}\"", "csharp"));
        r1.AssertSucceeded();
        var r2 = await root.SendAsync(new Microsoft.DotNet.Interactive.Commands.SubmitCode("System.Console.WriteLine(Microsoft.DotNet.Interactive.Kernel.Root?.GetType().Name ?? \"null\"); Workbench.Interactive.WorkbenchExtension.Load(Microsoft.DotNet.Interactive.Kernel.Root);", "csharp"));
        r2.AssertSucceeded();
        foreach (var e in r2.Events) System.Console.WriteLine(e);
        var r3 = await root.SendAsync(new Microsoft.DotNet.Interactive.Commands.SubmitCode("#!workbench-plotly --embed never", "csharp"));
        r3.AssertSucceeded();
    }
}
