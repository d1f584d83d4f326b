using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Workbench.Engine.Tensors;

/// <summary>
/// GEMM for prefill (several rows of X): Y[n, m] = X[n, k] W[m, k]^T. A panel of NR rows of W is transposed once into
/// a small buffer ([k, NR], fits in L2), then every block of 6 X rows runs an outer-product microkernel over it:
/// broadcast one x value, multiply-add against two vectors of the panel, 12 accumulators, no horizontal sums.
/// The vector width is a type parameter, so one kernel serves Vector512, Vector256 and Vector128.
/// </summary>
internal static unsafe class PanelGemm
{
    private const int MR = 6;
    /// <summary>Thread chunks of W rows are multiples of this when a pre-packed copy is used (the widest panel).</summary>
    public const int MaxPanel = 32;

    public static int PanelRows(IsaPath p) => p switch { IsaPath.V512 => 32, IsaPath.V256 => 16, _ => 8 };

    /// <summary>
    /// W packed once into panels of <paramref name="nr"/> rows, each stored transposed ([k, nr], zero-padded), so a
    /// GEMM call skips the packing pass. Weights are immutable, so the copy is cached per weight array.
    /// </summary>
    public static float[] Pack(ReadOnlySpan<float> w, int m, int k, int nr)
    {
        int panels = (m + nr - 1) / nr;
        var packed = new float[(long)panels * k * nr];
        for (int p = 0; p < panels; p++)
            for (int j = 0; j < nr && p * nr + j < m; j++)
            {
                var src = w.Slice((p * nr + j) * k, k);
                int o = p * k * nr + j;
                for (int t = 0; t < k; t++) packed[o + t * nr] = src[t];
            }
        return packed;
    }

    public static void Run(float* x, int n, int k, float* w, int m, float* y, int r0, int r1, IsaPath p, float* packed = null)
    {
        switch (p)
        {
            case IsaPath.V512: Run<V512>(x, n, k, w, m, y, r0, r1, packed); break;
            case IsaPath.V256: Run<V256>(x, n, k, w, m, y, r0, r1, packed); break;
            default: Run<V128>(x, n, k, w, m, y, r0, r1, packed); break;
        }
    }

    private static void Run<TV>(float* x, int n, int k, float* w, int m, float* y, int r0, int r1, float* packed) where TV : struct, IVec<TV>
    {
        int nr = 2 * TV.Count;
        var rented = ArrayPool<float>.Shared.Rent((packed is null ? k * nr : 0) + nr * MR + 16);
        try
        {
            fixed (float* buf = rented)
            {
                float* tail = buf, scratch = buf + nr * MR + 16;
                for (int j0 = r0; j0 < r1; j0 += nr)
                {
                    int cols = Math.Min(nr, r1 - j0);
                    float* panel;
                    if (packed is not null) panel = packed + (long)(j0 / nr) * k * nr;
                    else
                    {
                        // Pack: panel[t, j] = W[j0 + j, t]; missing rows are zero.
                        panel = scratch;
                        for (int j = 0; j < nr; j++)
                        {
                            if (j < cols)
                            {
                                float* src = w + (long)(j0 + j) * k;
                                for (int t = 0; t < k; t++) panel[t * nr + j] = src[t];
                            }
                            else
                                for (int t = 0; t < k; t++) panel[t * nr + j] = 0;
                        }
                    }
                    int i = 0;
                    for (; i + MR <= n; i += MR)
                    {
                        if (cols == nr) Micro6<TV>(x + (long)i * k, k, panel, y + (long)i * m + j0, m);
                        else
                        {
                            Micro6<TV>(x + (long)i * k, k, panel, tail, nr);
                            for (int ii = 0; ii < MR; ii++)
                                new Span<float>(tail + ii * nr, cols).CopyTo(new Span<float>(y + (long)(i + ii) * m + j0, cols));
                        }
                    }
                    for (; i < n; i++)
                    {
                        Micro1<TV>(x + (long)i * k, k, panel, tail);
                        new Span<float>(tail, cols).CopyTo(new Span<float>(y + (long)i * m + j0, cols));
                    }
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Micro6<TV>(float* x, int k, float* panel, float* y, int ldy) where TV : struct, IVec<TV>
    {
        int nr = 2 * TV.Count;
        TV c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
           c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* x0 = x, x1 = x + k, x2 = x1 + k, x3 = x2 + k, x4 = x3 + k, x5 = x4 + k;
        for (int t = 0; t < k; t++)
        {
            var b0 = TV.Load(panel + t * nr);
            var b1 = TV.Load(panel + t * nr + TV.Count);
            var a = TV.Broadcast(x0[t]); c00 = TV.Fma(a, b0, c00); c01 = TV.Fma(a, b1, c01);
            a = TV.Broadcast(x1[t]); c10 = TV.Fma(a, b0, c10); c11 = TV.Fma(a, b1, c11);
            a = TV.Broadcast(x2[t]); c20 = TV.Fma(a, b0, c20); c21 = TV.Fma(a, b1, c21);
            a = TV.Broadcast(x3[t]); c30 = TV.Fma(a, b0, c30); c31 = TV.Fma(a, b1, c31);
            a = TV.Broadcast(x4[t]); c40 = TV.Fma(a, b0, c40); c41 = TV.Fma(a, b1, c41);
            a = TV.Broadcast(x5[t]); c50 = TV.Fma(a, b0, c50); c51 = TV.Fma(a, b1, c51);
        }
        int v = TV.Count;
        TV.Store(c00, y); TV.Store(c01, y + v); y += ldy;
        TV.Store(c10, y); TV.Store(c11, y + v); y += ldy;
        TV.Store(c20, y); TV.Store(c21, y + v); y += ldy;
        TV.Store(c30, y); TV.Store(c31, y + v); y += ldy;
        TV.Store(c40, y); TV.Store(c41, y + v); y += ldy;
        TV.Store(c50, y); TV.Store(c51, y + v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Micro1<TV>(float* x, int k, float* panel, float* y) where TV : struct, IVec<TV>
    {
        int nr = 2 * TV.Count;
        TV c0 = default, c1 = default;
        for (int t = 0; t < k; t++)
        {
            var a = TV.Broadcast(x[t]);
            c0 = TV.Fma(a, TV.Load(panel + t * nr), c0);
            c1 = TV.Fma(a, TV.Load(panel + t * nr + TV.Count), c1);
        }
        TV.Store(c0, y);
        TV.Store(c1, y + TV.Count);
    }
}

/// <summary>The few vector operations the fp32 kernels need, as static members so the JIT specialises it per width.</summary>
internal unsafe interface IVec<TSelf> where TSelf : struct, IVec<TSelf>
{
    static abstract int Count { get; }
    static abstract TSelf Load(float* p);
    static abstract TSelf Broadcast(float v);
    static abstract TSelf Fma(TSelf a, TSelf b, TSelf c);
    static abstract void Store(TSelf v, float* p);
    static abstract float Sum(TSelf v);
}

internal unsafe struct V512 : IVec<V512>
{
    private Vector512<float> _v;
    public static int Count => Vector512<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Load(float* p) => new() { _v = Vector512.Load(p) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Broadcast(float v) => new() { _v = Vector512.Create(v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Fma(V512 a, V512 b, V512 c) => new() { _v = Vector512.FusedMultiplyAdd(a._v, b._v, c._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V512 v, float* p) => v._v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(V512 v) => Vector512.Sum(v._v);
}

internal unsafe struct V256 : IVec<V256>
{
    private Vector256<float> _v;
    public static int Count => Vector256<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Load(float* p) => new() { _v = Vector256.Load(p) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Broadcast(float v) => new() { _v = Vector256.Create(v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Fma(V256 a, V256 b, V256 c) => new() { _v = Vector256.FusedMultiplyAdd(a._v, b._v, c._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V256 v, float* p) => v._v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(V256 v) => Vector256.Sum(v._v);
}

internal unsafe struct V128 : IVec<V128>
{
    private Vector128<float> _v;
    public static int Count => Vector128<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Load(float* p) => new() { _v = Vector128.Load(p) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Broadcast(float v) => new() { _v = Vector128.Create(v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Fma(V128 a, V128 b, V128 c) => new() { _v = Vector128.FusedMultiplyAdd(a._v, b._v, c._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V128 v, float* p) => v._v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(V128 v) => Vector128.Sum(v._v);
}
