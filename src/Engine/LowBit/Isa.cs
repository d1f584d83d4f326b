using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.LowBit;

/// <summary>Which low-bit kernel paths (Tensors.IsaPath; every path gives the same int32 sums bit for bit) this machine (and this process's DOTNET_Enable* switches) can run.</summary>
public static class LowBitIsa
{
    /// <summary>
    /// V128 is the portable Vector128 API (SSE/Neon or software); V256 needs AVX2 (vpshufb, vpmaddubsw, vpmaddwd);
    /// V512 needs AVX-512BW. .NET 10 exposes no 512-bit VNNI class (AvxVnni is 128/256-bit only and needs the
    /// separate AVX-VNNI CPUID bit; Avx10v1 needs AVX10), so the 512-bit kernels use vpmaddubsw + vpmaddwd.
    /// </summary>
    public static bool Supported(IsaPath path) => path switch
    {
        IsaPath.Scalar => true,
        IsaPath.V128 => Vector128.IsHardwareAccelerated,
        IsaPath.V256 => Avx2.IsSupported,
        IsaPath.V512 => Avx512BW.IsSupported && Vector512.IsHardwareAccelerated,
        _ => false,
    };

    /// <summary>The widest supported path: the cascade V512 -> V256 -> V128 -> Scalar.</summary>
    public static IsaPath Best =>
        Supported(IsaPath.V512) ? IsaPath.V512 :
        Supported(IsaPath.V256) ? IsaPath.V256 :
        Supported(IsaPath.V128) ? IsaPath.V128 : IsaPath.Scalar;

    public static IReadOnlyList<IsaPath> SupportedPaths =>
        new[] { IsaPath.Scalar, IsaPath.V128, IsaPath.V256, IsaPath.V512 }.Where(Supported).ToArray();

    internal static void Require(IsaPath path)
    {
        if (!Supported(path))
            throw new PlatformNotSupportedException($"Instruction-set path {path} is not supported on this machine (LowBitIsa.Supported({path}) is false).");
    }
}

/// <summary>Weight storage formats compared by the low-bit benchmarks.</summary>
public enum LowBitFormat { F32, Int8, I2S, TL1, TL2 }
