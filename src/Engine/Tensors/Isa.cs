using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Workbench.Engine.Tensors;

/// <summary>The instruction-set paths a kernel can take, widest first.</summary>
public enum IsaPath { Scalar = 0, V128 = 128, V256 = 256, V512 = 512 }

/// <summary>
/// Which kernel paths this process can run, for the fp32 and the low-bit integer kernels alike, and which one kernels
/// take when the caller names none. A kernel reads <see cref="Best"/> once per call, never per element.
/// </summary>
public static class Isa
{
    /// <summary>
    /// V128 is the portable Vector128 API (SSE/Neon or software). V256 needs AVX2 with FMA (the fp32 kernels' fused
    /// multiply-adds; the low-bit kernels' vpshufb, vpmaddubsw, vpmaddwd): .NET 10 groups FMA with AVX2 (x86-64-v3),
    /// and Vector256 is accelerated exactly then. V512 needs AVX-512BW (F is implied) with Vector512 accelerated
    /// (DOTNET_PreferredVectorBitWidth=256 turns Vector512 off while leaving the AVX-512 classes on). .NET 10 exposes no
    /// 512-bit VNNI class (AvxVnni is 128/256-bit only and needs the separate AVX-VNNI CPUID bit; Avx10v1 needs AVX10),
    /// so the 512-bit integer kernels use vpmaddubsw + vpmaddwd (checked on the Zen 4 VM of issue 14: AvxVnni, Avx10v1
    /// and AvxVnniInt8 report false although the CPU lists avx512_vnni; Avx512Vbmi and Avx512Vbmi2 report true). The runtime's switches narrow these:
    /// DOTNET_EnableAVX512=0 (V256), DOTNET_EnableAVX2=0 (V128), DOTNET_EnableHWIntrinsic=0 (scalar).
    /// <para>What the process supports is asked once, in a method the runtime always compiles itself: ReadyToRun code
    /// (the build output is precompiled) bakes <c>VectorN.IsHardwareAccelerated</c> in as the build machine saw it, so
    /// DOTNET_PreferredVectorBitWidth=256 would otherwise leave precompiled and jitted callers disagreeing.</para>
    /// </summary>
    public static bool Supported(IsaPath path) => path switch
    {
        IsaPath.Scalar => true,
        IsaPath.V128 => Support[0],
        IsaPath.V256 => Support[1],
        IsaPath.V512 => Support[2],
        _ => false,
    };

    private static readonly bool[] Support = Probe();

    /// <summary>
    /// An AMD CPU ("AuthenticAMD"): the few memory-access choices measured to go opposite ways on the Zen 4 and the
    /// Xeon VMs of issue 14 (one GEMV row at a time, software prefetch) follow it. Never changes a result.
    /// </summary>
    internal static bool IsAmd { get; } = ProbeAmd();

    private static bool ProbeAmd()
    {
        if (!X86Base.IsSupported) return false;
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        return ebx == 0x68747541 && edx == 0x69746E65 && ecx == 0x444D4163;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization | System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static bool[] Probe() =>
    [
        Vector128.IsHardwareAccelerated,
        Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported,
        Vector512.IsHardwareAccelerated && Avx512BW.IsSupported,
    ];

    /// <summary>The widest supported path (the cascade V512 -> V256 -> V128 -> Scalar), whatever scope is open.</summary>
    public static IsaPath Widest { get; } =
        Supported(IsaPath.V512) ? IsaPath.V512 :
        Supported(IsaPath.V256) ? IsaPath.V256 :
        Supported(IsaPath.V128) ? IsaPath.V128 : IsaPath.Scalar;

    /// <summary>
    /// The path kernels take when the caller names none: that of the innermost <see cref="Use"/> scope of this
    /// async flow, else <see cref="Widest"/>.
    /// </summary>
    public static IsaPath Best
    {
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        // No scope open anywhere (every run but the tests'): one static read, not the async-local lookup.
        get => Volatile.Read(ref _openScopes) == 0 ? Widest : Scoped.Value ?? Widest;
    }

    /// <summary>Every path usable here (ignoring scopes), for tests that hold each equal to the scalar twin.</summary>
    public static IReadOnlyList<IsaPath> SupportedPaths { get; } = Paths();

    // A loop, not Where(...).ToArray(): LINQ over IsaPath has no precompiled code, and this runs in every process.
    private static IsaPath[] Paths()
    {
        var all = new List<IsaPath>(4);
        foreach (var p in new[] { IsaPath.Scalar, IsaPath.V128, IsaPath.V256, IsaPath.V512 }) if (Supported(p)) all.Add(p);
        return all.ToArray();
    }

    private static readonly AsyncLocal<IsaPath?> Scoped = new();
    private static int _openScopes;

    /// <summary>
    /// Until disposed, kernels called without a path on this async flow (and the tasks it starts) take
    /// <paramref name="path"/>: <c>using (Isa.Use(IsaPath.V256)) { ... }</c>. A path named in a call still wins.
    /// Scopes nest; the process's DOTNET_Enable* switches still bound what is supported.
    /// </summary>
    public static Scope Use(IsaPath path)
    {
        Require(path);
        var previous = Scoped.Value;
        Scoped.Value = path;
        Interlocked.Increment(ref _openScopes);
        return new Scope(previous);
    }

    /// <summary>An open <see cref="Use"/>; disposing it restores the enclosing choice.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly IsaPath? _previous;
        private readonly bool _open;
        internal Scope(IsaPath? previous) { _previous = previous; _open = true; }

        public void Dispose()
        {
            if (!_open) return;
            Scoped.Value = _previous;
            Interlocked.Decrement(ref _openScopes);
        }
    }

    internal static void Require(IsaPath path)
    {
        if (!Supported(path))
            throw new PlatformNotSupportedException($"instruction-set path {path} is not available in this process (widest: {Widest}; the DOTNET_Enable* switches narrow it)");
    }

    /// <summary>The path a kernel call takes: the one named, else <see cref="Best"/>; refused when unsupported.</summary>
    internal static IsaPath Resolve(IsaPath? requested)
    {
        var p = requested ?? Best;
        Require(p);
        return p;
    }
}
