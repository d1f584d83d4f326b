using System.Reflection;
using System.Runtime.Loader;

namespace Workbench.Interactive;

/// <summary>
/// Plotly.NET 6.0.0 references FSharp.Core 10.1.0.0 while the kernel ships 10.0.0.0, so every chart would throw
/// FileNotFoundException. FSharp.Core is backward compatible across these versions: hand back the loaded one.
/// </summary>
internal static class FSharpCoreResolver
{
    private static int installed;

    public static void Install()
    {
        if (Interlocked.Exchange(ref installed, 1) == 1) return;
        AssemblyLoadContext.Default.Resolving += Resolve;
    }

    private static Assembly? Resolve(AssemblyLoadContext context, AssemblyName name)
    {
        if (!string.Equals(name.Name, "FSharp.Core", StringComparison.OrdinalIgnoreCase)) return null;
        return AppDomain.CurrentDomain.GetAssemblies()
            .Where(a => string.Equals(a.GetName().Name, "FSharp.Core", StringComparison.OrdinalIgnoreCase))
            .OrderByDescending(a => a.GetName().Version)
            .FirstOrDefault();
    }
}
