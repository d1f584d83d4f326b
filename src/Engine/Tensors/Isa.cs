using System.Runtime.Intrinsics;

namespace Workbench.Engine.Tensors;

/// <summary>The instruction-set paths a kernel can take, widest first.</summary>
public enum IsaPath { Scalar = 0, V128 = 128, V256 = 256, V512 = 512 }

public static class Isa
{
    /// <summary>The widest path this process may use (the runtime's DOTNET_Enable* switches narrow it).</summary>
    public static IsaPath Best =>
        Vector512.IsHardwareAccelerated ? IsaPath.V512 :
        Vector256.IsHardwareAccelerated ? IsaPath.V256 :
        Vector128.IsHardwareAccelerated ? IsaPath.V128 : IsaPath.Scalar;

    public static bool Supported(IsaPath path) => path switch
    {
        IsaPath.Scalar => true,
        IsaPath.V128 => Vector128.IsHardwareAccelerated,
        IsaPath.V256 => Vector256.IsHardwareAccelerated,
        IsaPath.V512 => Vector512.IsHardwareAccelerated,
        _ => false,
    };

    /// <summary>Every path usable here, for tests that hold each equal to the scalar twin.</summary>
    public static IEnumerable<IsaPath> SupportedPaths =>
        new[] { IsaPath.Scalar, IsaPath.V128, IsaPath.V256, IsaPath.V512 }.Where(Supported);

    internal static IsaPath Resolve(IsaPath? requested)
    {
        var p = requested ?? Best;
        if (!Supported(p)) throw new PlatformNotSupportedException($"instruction-set path {p} is not available in this process (best: {Best})");
        return p;
    }
}
