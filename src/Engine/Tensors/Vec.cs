using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Workbench.Engine.Tensors;

/// <summary>
/// The vector operations the fp32 kernels need (GEMM, GEMV, exp, GELU, softmax), as static members so a kernel is
/// written once over the width and the JIT specialises it per width (<see cref="V512"/>, <see cref="V256"/>,
/// <see cref="V128"/>). Every operation is lane-wise IEEE arithmetic except the two reductions, so a kernel gives the
/// same bits at every width wherever it does not reduce. Each member forwards to one Vector* call and is inlined.
/// </summary>
internal unsafe interface IVec<TSelf> where TSelf : struct, IVec<TSelf>
{
    static abstract int Count { get; }
    static abstract TSelf Load(float* p);
    static abstract TSelf Load(ref float r, nuint i);
    static abstract TSelf Broadcast(float v);
    /// <summary>a * b + c, rounded once.</summary>
    static abstract TSelf Fma(TSelf a, TSelf b, TSelf c);
    static abstract TSelf Add(TSelf a, TSelf b);
    static abstract TSelf operator +(TSelf a, TSelf b);
    static abstract TSelf operator -(TSelf a, TSelf b);
    static abstract TSelf operator *(TSelf a, TSelf b);
    static abstract TSelf operator /(TSelf a, TSelf b);
    static abstract TSelf Max(TSelf a, TSelf b);
    /// <summary>
    /// Min(Max(v, lo), hi) with constant bounds. One member, not Min and Max: the JIT turns a Max or Min against a
    /// constant into a bare vmaxps / vminps only when it sees the constant in the same call (through two wrapper calls
    /// it emitted the NaN-and-signed-zero-exact vrangeps + 2 vfixupimmps sequence for each: softmax ~10% slower).
    /// </summary>
    static abstract TSelf Clamp(TSelf v, float lo, float hi);
    /// <summary>To the nearest integer, ties to even (MathF.Round).</summary>
    static abstract TSelf Round(TSelf a);
    /// <summary>2^n for integral n in [-126, 127], built in the exponent bits: ((int)n + 127) &lt;&lt; 23.</summary>
    static abstract TSelf Pow2(TSelf n);
    /// <summary>
    /// v, with zero in the lanes where a &lt; limit. One member for the same reason as <see cref="Clamp"/>: a compare
    /// feeding a select becomes one masked blend only when the JIT sees both together.
    /// </summary>
    static abstract TSelf ZeroBelow(TSelf a, float limit, TSelf v);
    static abstract void Store(TSelf v, float* p);
    static abstract void Store(TSelf v, ref float r, nuint i);
    /// <summary>The sum of the lanes, in the runtime's horizontal order (Vector*.Sum).</summary>
    static abstract float Sum(TSelf v);
    /// <summary>The largest lane (exact, so any order gives it).</summary>
    static abstract float MaxAcross(TSelf v);
}

internal unsafe struct V512 : IVec<V512>
{
    private Vector512<float> _v;
    public static int Count => Vector512<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Load(float* p) => new() { _v = Vector512.Load(p) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Load(ref float r, nuint i) => new() { _v = Vector512.LoadUnsafe(ref r, i) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Broadcast(float v) => new() { _v = Vector512.Create(v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Fma(V512 a, V512 b, V512 c) => new() { _v = Vector512.FusedMultiplyAdd(a._v, b._v, c._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Add(V512 a, V512 b) => new() { _v = a._v + b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 operator +(V512 a, V512 b) => new() { _v = a._v + b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 operator -(V512 a, V512 b) => new() { _v = a._v - b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 operator *(V512 a, V512 b) => new() { _v = a._v * b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 operator /(V512 a, V512 b) => new() { _v = a._v / b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Max(V512 a, V512 b) => new() { _v = Vector512.Max(a._v, b._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Clamp(V512 v, float lo, float hi) => new() { _v = Vector512.Min(Vector512.Max(v._v, Vector512.Create(lo)), Vector512.Create(hi)) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Round(V512 a) => new() { _v = Vector512.Round(a._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Pow2(V512 n) => new() { _v = Vector512.ShiftLeft(Vector512.ConvertToInt32(n._v) + Vector512.Create(127), 23).AsSingle() };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 ZeroBelow(V512 a, float limit, V512 v) => new() { _v = Vector512.ConditionalSelect(Vector512.LessThan(a._v, Vector512.Create(limit)), Vector512<float>.Zero, v._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V512 v, float* p) => v._v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V512 v, ref float r, nuint i) => v._v.StoreUnsafe(ref r, i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(V512 v) => Vector512.Sum(v._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxAcross(V512 v) => V256.MaxAcross(Vector256.Max(v._v.GetLower(), v._v.GetUpper()));
}

internal unsafe struct V256 : IVec<V256>
{
    private Vector256<float> _v;
    public static int Count => Vector256<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Load(float* p) => new() { _v = Vector256.Load(p) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Load(ref float r, nuint i) => new() { _v = Vector256.LoadUnsafe(ref r, i) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Broadcast(float v) => new() { _v = Vector256.Create(v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Fma(V256 a, V256 b, V256 c) => new() { _v = Vector256.FusedMultiplyAdd(a._v, b._v, c._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Add(V256 a, V256 b) => new() { _v = a._v + b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 operator +(V256 a, V256 b) => new() { _v = a._v + b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 operator -(V256 a, V256 b) => new() { _v = a._v - b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 operator *(V256 a, V256 b) => new() { _v = a._v * b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 operator /(V256 a, V256 b) => new() { _v = a._v / b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Max(V256 a, V256 b) => new() { _v = Vector256.Max(a._v, b._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Clamp(V256 v, float lo, float hi) => new() { _v = Vector256.Min(Vector256.Max(v._v, Vector256.Create(lo)), Vector256.Create(hi)) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Round(V256 a) => new() { _v = Vector256.Round(a._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Pow2(V256 n) => new() { _v = Vector256.ShiftLeft(Vector256.ConvertToInt32(n._v) + Vector256.Create(127), 23).AsSingle() };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 ZeroBelow(V256 a, float limit, V256 v) => new() { _v = Vector256.ConditionalSelect(Vector256.LessThan(a._v, Vector256.Create(limit)), Vector256<float>.Zero, v._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V256 v, float* p) => v._v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V256 v, ref float r, nuint i) => v._v.StoreUnsafe(ref r, i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(V256 v) => Vector256.Sum(v._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxAcross(V256 v) => MaxAcross(v._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] internal static float MaxAcross(Vector256<float> v) => V128.MaxAcross(Vector128.Max(v.GetLower(), v.GetUpper()));
}

internal unsafe struct V128 : IVec<V128>
{
    private Vector128<float> _v;
    public static int Count => Vector128<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Load(float* p) => new() { _v = Vector128.Load(p) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Load(ref float r, nuint i) => new() { _v = Vector128.LoadUnsafe(ref r, i) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Broadcast(float v) => new() { _v = Vector128.Create(v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Fma(V128 a, V128 b, V128 c) => new() { _v = Vector128.FusedMultiplyAdd(a._v, b._v, c._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Add(V128 a, V128 b) => new() { _v = a._v + b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 operator +(V128 a, V128 b) => new() { _v = a._v + b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 operator -(V128 a, V128 b) => new() { _v = a._v - b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 operator *(V128 a, V128 b) => new() { _v = a._v * b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 operator /(V128 a, V128 b) => new() { _v = a._v / b._v };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Max(V128 a, V128 b) => new() { _v = Vector128.Max(a._v, b._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Clamp(V128 v, float lo, float hi) => new() { _v = Vector128.Min(Vector128.Max(v._v, Vector128.Create(lo)), Vector128.Create(hi)) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Round(V128 a) => new() { _v = Vector128.Round(a._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Pow2(V128 n) => new() { _v = Vector128.ShiftLeft(Vector128.ConvertToInt32(n._v) + Vector128.Create(127), 23).AsSingle() };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 ZeroBelow(V128 a, float limit, V128 v) => new() { _v = Vector128.ConditionalSelect(Vector128.LessThan(a._v, Vector128.Create(limit)), Vector128<float>.Zero, v._v) };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V128 v, float* p) => v._v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V128 v, ref float r, nuint i) => v._v.StoreUnsafe(ref r, i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(V128 v) => Vector128.Sum(v._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxAcross(V128 v) => MaxAcross(v._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] internal static float MaxAcross(Vector128<float> v) => MathF.Max(MathF.Max(v[0], v[1]), MathF.Max(v[2], v[3]));
}
