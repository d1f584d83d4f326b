using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Workbench.Engine.Tensors;

/// <summary>
/// The few vector operations the fp32 kernels need, as static members so the JIT specialises it per width. Loads and
/// stores use the instruction sets' own non-generic forms (Avx512F.LoadVector512, Avx.Store, ...): ReadyToRun
/// (crossgen2) compiles a call to the generic Vector512.Load&lt;T&gt; as an out-of-line call into jitted code, and refuses
/// any method calling Vector*.Store&lt;T&gt;, so through those the precompiled decode kernels ran ~3x slower than jitted ones.
/// </summary>
internal unsafe interface IVec<TSelf> where TSelf : struct, IVec<TSelf>
{
    static abstract int Count { get; }
    static abstract TSelf Load(float* p);
    static abstract TSelf Broadcast(float v);
    static abstract TSelf Fma(TSelf a, TSelf b, TSelf c);
    static abstract TSelf Add(TSelf a, TSelf b);
    static abstract TSelf Mul(TSelf a, TSelf b);
    static abstract void Store(TSelf v, float* p);
    static abstract float Sum(TSelf v);
    /// <summary>y[i] = Sum(a_i) for eight vectors, bit for bit as <see cref="Sum"/> forms each.</summary>
    static abstract void Sum8(TSelf a0, TSelf a1, TSelf a2, TSelf a3, TSelf a4, TSelf a5, TSelf a6, TSelf a7, float* y);
}

internal unsafe struct V512 : IVec<V512>
{
    private Vector512<float> _v;
    public static int Count => Vector512<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Load(float* p) => new() { _v = Avx512F.LoadVector512(p) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Broadcast(float v) => new() { _v = Vector512.Create(v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Fma(V512 a, V512 b, V512 c) => new() { _v = Vector512.FusedMultiplyAdd(a._v, b._v, c._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Add(V512 a, V512 b) => new() { _v = a._v + b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Mul(V512 a, V512 b) => new() { _v = a._v * b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V512 v, float* p) => Avx512F.Store(p, v._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(V512 v) => Vector512.Sum(v._v);

    /// <summary>
    /// The eight sums with the tree Vector512.Sum uses for each (in every 128-bit lane (x0 + x1) + (x2 + x3), then
    /// (L0 + L1) + (L2 + L3) over the lanes: measured against it, and held to it by MatMulTests' eight-rows-equal-one
    /// tests, which fail if the runtime's tree changes), formed for all eight at once: vshufps pairs
    /// put two vectors' neighbours side by side, vshuff32x4 does the same with lanes. 16 shuffles and 8 adds against
    /// 8 x (two extracts, two permutes, four adds): the horizontal sums were ~30% of a small model's GEMV rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Sum8(V512 a0, V512 a1, V512 a2, V512 a3, V512 a4, V512 a5, V512 a6, V512 a7, float* y)
    {
        // per 128-bit lane i: [L_i(a0), L_i(a1), L_i(a2), L_i(a3)] and the same for a4..a7
        var c0 = Pairs(Pairs(a0._v, a1._v), Pairs(a2._v, a3._v));
        var c1 = Pairs(Pairs(a4._v, a5._v), Pairs(a6._v, a7._v));
        // lanes [c0 L0 + L1, c0 L2 + L3, c1 L0 + L1, c1 L2 + L3], then lane 0 = c0's (L0 + L1) + (L2 + L3), lane 1 = c1's
        var d = Avx512F.Shuffle4x128(c0, c1, 0b10_00_10_00) + Avx512F.Shuffle4x128(c0, c1, 0b11_01_11_01);
        var e = Avx512F.Shuffle4x128(d, d, 0b10_00_10_00) + Avx512F.Shuffle4x128(d, d, 0b11_01_11_01);
        Avx.Store(y, e.GetLower());
    }

    /// <summary>Per 128-bit lane [l0 + l1, l2 + l3, r0 + r1, r2 + r3].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pairs(Vector512<float> l, Vector512<float> r) =>
        Avx512F.Shuffle(l, r, 0b10_00_10_00) + Avx512F.Shuffle(l, r, 0b11_01_11_01);
}

internal unsafe struct V256 : IVec<V256>
{
    private Vector256<float> _v;
    public static int Count => Vector256<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Load(float* p) => new() { _v = Avx.LoadVector256(p) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Broadcast(float v) => new() { _v = Vector256.Create(v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Fma(V256 a, V256 b, V256 c) => new() { _v = Vector256.FusedMultiplyAdd(a._v, b._v, c._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Add(V256 a, V256 b) => new() { _v = a._v + b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Mul(V256 a, V256 b) => new() { _v = a._v * b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V256 v, float* p) => Avx.Store(p, v._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(V256 v) => Vector256.Sum(v._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Sum8(V256 a0, V256 a1, V256 a2, V256 a3, V256 a4, V256 a5, V256 a6, V256 a7, float* y)
    {
        y[0] = Sum(a0); y[1] = Sum(a1); y[2] = Sum(a2); y[3] = Sum(a3); y[4] = Sum(a4); y[5] = Sum(a5); y[6] = Sum(a6); y[7] = Sum(a7);
    }
}

internal unsafe struct V128 : IVec<V128>
{
    private Vector128<float> _v;
    public static int Count => Vector128<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Load(float* p) => new() { _v = Sse.IsSupported ? Sse.LoadVector128(p) : Vector128.Load(p) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Broadcast(float v) => new() { _v = Vector128.Create(v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Fma(V128 a, V128 b, V128 c) => new() { _v = Vector128.FusedMultiplyAdd(a._v, b._v, c._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Add(V128 a, V128 b) => new() { _v = a._v + b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Mul(V128 a, V128 b) => new() { _v = a._v * b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V128 v, float* p) { if (Sse.IsSupported) Sse.Store(p, v._v); else v._v.Store(p); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(V128 v) => Vector128.Sum(v._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Sum8(V128 a0, V128 a1, V128 a2, V128 a3, V128 a4, V128 a5, V128 a6, V128 a7, float* y)
    {
        y[0] = Sum(a0); y[1] = Sum(a1); y[2] = Sum(a2); y[3] = Sum(a3); y[4] = Sum(a4); y[5] = Sum(a5); y[6] = Sum(a6); y[7] = Sum(a7);
    }
}

/// <summary>
/// The vector operations of the elementwise kernels (exp, GELU, softmax), over the runtime's vector types themselves,
/// so each kernel is written once and the JIT specialises it per width (<see cref="W512"/>, <see cref="W256"/>,
/// <see cref="W128"/>). A sibling of <see cref="IVec{TSelf}"/> (the GEMM's), which wraps the vector in a struct:
/// through that wrapper the JIT kept GELU's and exp's constants in memory instead of registers (~6% slower GELU,
/// measured in-process against the hand-written Vector512 code), while over the bare vector type it emits the same
/// code as the hand-written kernels. Every operation is lane-wise IEEE arithmetic except the two reductions, so a
/// kernel gives the same bits at every width wherever it does not reduce.
/// </summary>
internal interface IWidth<TV> where TV : struct
{
    static abstract int Count { get; }
    static abstract TV Load(ref float r, nuint i);
    static abstract void Store(TV v, ref float r, nuint i);
    static abstract TV Broadcast(float v);
    static abstract TV Add(TV a, TV b);
    static abstract TV Sub(TV a, TV b);
    static abstract TV Mul(TV a, TV b);
    static abstract TV Div(TV a, TV b);
    /// <summary>a * b + c, rounded once.</summary>
    static abstract TV Fma(TV a, TV b, TV c);
    static abstract TV Max(TV a, TV b);
    /// <summary>
    /// Min(Max(v, lo), hi) with constant bounds. One member, not Min and Max: the JIT turns a Max or Min against a
    /// constant into a bare vmaxps / vminps only when it sees the constant in the same call (else it emits the
    /// NaN-and-signed-zero-exact vrangeps + 2 vfixupimmps for each).
    /// </summary>
    static abstract TV Clamp(TV v, float lo, float hi);
    /// <summary>To the nearest integer, ties to even (MathF.Round).</summary>
    static abstract TV Round(TV v);
    /// <summary>2^n for integral n in [-126, 127], built in the exponent bits: ((int)n + 127) &lt;&lt; 23.</summary>
    static abstract TV Pow2(TV n);
    /// <summary>v, with zero in the lanes where a &lt; limit (one masked blend, for the same reason as <see cref="Clamp"/>).</summary>
    static abstract TV ZeroBelow(TV a, float limit, TV v);
    /// <summary>The sum of the lanes, in the runtime's horizontal order (Vector*.Sum).</summary>
    static abstract float Sum(TV v);
    /// <summary>The largest lane (exact, so any order gives it).</summary>
    static abstract float MaxAcross(TV v);
}

internal struct W512 : IWidth<Vector512<float>>
{
    public static int Count => Vector512<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(ref float r, nuint i) => Vector512.LoadUnsafe(ref r, i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<float> v, ref float r, nuint i) => v.StoreUnsafe(ref r, i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float v) => Vector512.Create(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Div(Vector512<float> a, Vector512<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Clamp(Vector512<float> v, float lo, float hi) => Vector512.Min(Vector512.Max(v, Vector512.Create(lo)), Vector512.Create(hi));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Round(Vector512<float> v) => Vector512.Round(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Pow2(Vector512<float> n) => Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ZeroBelow(Vector512<float> a, float limit, Vector512<float> v) => Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512.Create(limit)), Vector512<float>.Zero, v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> v) => Vector512.Sum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxAcross(Vector512<float> v) => W256.MaxAcross(Vector256.Max(v.GetLower(), v.GetUpper()));
}

internal struct W256 : IWidth<Vector256<float>>
{
    public static int Count => Vector256<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(ref float r, nuint i) => Vector256.LoadUnsafe(ref r, i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<float> v, ref float r, nuint i) => v.StoreUnsafe(ref r, i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float v) => Vector256.Create(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Div(Vector256<float> a, Vector256<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Clamp(Vector256<float> v, float lo, float hi) => Vector256.Min(Vector256.Max(v, Vector256.Create(lo)), Vector256.Create(hi));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Round(Vector256<float> v) => Vector256.Round(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Pow2(Vector256<float> n) => Vector256.ShiftLeft(Vector256.ConvertToInt32(n) + Vector256.Create(127), 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> ZeroBelow(Vector256<float> a, float limit, Vector256<float> v) => Vector256.ConditionalSelect(Vector256.LessThan(a, Vector256.Create(limit)), Vector256<float>.Zero, v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> v) => Vector256.Sum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxAcross(Vector256<float> v) => W128.MaxAcross(Vector128.Max(v.GetLower(), v.GetUpper()));
}

internal struct W128 : IWidth<Vector128<float>>
{
    public static int Count => Vector128<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(ref float r, nuint i) => Vector128.LoadUnsafe(ref r, i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector128<float> v, ref float r, nuint i) => v.StoreUnsafe(ref r, i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Broadcast(float v) => Vector128.Create(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Sub(Vector128<float> a, Vector128<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Mul(Vector128<float> a, Vector128<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Div(Vector128<float> a, Vector128<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Fma(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Clamp(Vector128<float> v, float lo, float hi) => Vector128.Min(Vector128.Max(v, Vector128.Create(lo)), Vector128.Create(hi));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Round(Vector128<float> v) => Vector128.Round(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Pow2(Vector128<float> n) => Vector128.ShiftLeft(Vector128.ConvertToInt32(n) + Vector128.Create(127), 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> ZeroBelow(Vector128<float> a, float limit, Vector128<float> v) => Vector128.ConditionalSelect(Vector128.LessThan(a, Vector128.Create(limit)), Vector128<float>.Zero, v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector128<float> v) => Vector128.Sum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxAcross(Vector128<float> v) => MathF.Max(MathF.Max(v[0], v[1]), MathF.Max(v[2], v[3]));
}
