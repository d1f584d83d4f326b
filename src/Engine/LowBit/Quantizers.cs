using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Workbench.Engine.LowBit;

/// <summary>A ternary weight matrix, row-major [rows = out, cols = in], values in {-1, 0, 1}, and its fp32 scale.</summary>
public sealed record TernaryWeights(sbyte[] Values, int Rows, int Cols, float Scale)
{
    /// <summary>The dequantized weights W_t * s, the fp32 matrix the packed formats must reproduce.</summary>
    public float[] Dequantize()
    {
        var w = new float[Values.Length];
        for (int i = 0; i < w.Length; i++) w[i] = Values[i] * Scale;
        return w;
    }
}

/// <summary>
/// Weights trained ternary and stored as W_t s (a BitNet b1.58 checkpoint exported in a float type): every value is
/// -s, 0 or +s, so s = max |W| and W_t = W / s exactly. Re-applying absmean would give another scale (mean |W| is
/// s times the share of non-zero weights), so these are read, not quantized.
/// </summary>
public static class StoredTernary
{
    /// <summary>The ternary codes and scale of <paramref name="w"/>, or null when it holds anything but {-s, 0, +s}.</summary>
    public static TernaryWeights? TryRead(ReadOnlySpan<float> w, int rows, int cols)
    {
        Shapes.CheckMatrix(w.Length, rows, cols, nameof(w));
        float s = TensorPrimitives.MaxMagnitude(w) is var m && float.IsFinite(m) ? Math.Abs(m) : float.NaN;
        if (!(s > 0)) return null;
        var t = new sbyte[w.Length];
        for (int i = 0; i < w.Length; i++)
        {
            if (w[i] == s) t[i] = 1;
            else if (w[i] == -s) t[i] = -1;
            else if (w[i] != 0) return null;
        }
        return new TernaryWeights(t, rows, cols, s);
    }
}

/// <summary>BitNet b1.58 weight quantization: s = mean |W| over the tensor; W_t = clamp(round(W / s), -1, 1).</summary>
public static class AbsMeanTernary
{
    public static TernaryWeights Quantize(ReadOnlySpan<float> w, int rows, int cols)
    {
        Shapes.CheckMatrix(w.Length, rows, cols, nameof(w));
        float s = TensorPrimitives.SumOfMagnitudes(w) / w.Length;
        if (!float.IsFinite(s)) throw new ArgumentException("Weights contain NaN or infinity.", nameof(w));
        var t = new sbyte[w.Length];
        if (s > 0)
            for (int i = 0; i < w.Length; i++)
                t[i] = (sbyte)Math.Clamp(MathF.Round(w[i] / s), -1f, 1f);
        return new TernaryWeights(t, rows, cols, s > 0 ? s : 1f);
    }

    /// <summary>Seeded random ternary weights (P(0) = zeroFraction, +1 and -1 equally likely) for synthetic workloads.</summary>
    public static TernaryWeights Random(int rows, int cols, int seed, float scale = 1f, double zeroFraction = 1.0 / 3)
    {
        Shapes.CheckShape(rows, cols);
        var rng = new Random(seed);
        var t = new sbyte[(long)rows * cols];
        for (long i = 0; i < t.LongLength; i++)
        {
            double u = rng.NextDouble();
            t[i] = u < zeroFraction ? (sbyte)0 : u < zeroFraction + (1 - zeroFraction) / 2 ? (sbyte)1 : (sbyte)-1;
        }
        return new TernaryWeights(t, rows, cols, scale);
    }

    internal static void CheckTernary(ReadOnlySpan<sbyte> t, string paramName)
    {
        for (int i = 0; i < t.Length; i++)
            if ((uint)(t[i] + 1) > 2)
                throw new ArgumentException($"{paramName}[{i}] = {t[i]} is not ternary (must be -1, 0 or 1).", paramName);
    }
}

/// <summary>
/// BitNet b1.58 activation quantization, per token: a = 127 / max |x|; q = clamp(round(x a), -128, 127).
/// Rounding is to nearest, ties to even (TensorPrimitives.Round). An all-zero token gets a = 1 and q = 0.
/// </summary>
public static class AbsMaxInt8
{
    /// <summary>Quantizes x into q (q.Length &gt;= x.Length), using tmp (same length as x) as scratch; returns a.</summary>
    public static float Quantize(ReadOnlySpan<float> x, Span<sbyte> q, Span<float> tmp)
    {
        if (q.Length < x.Length) throw new ArgumentException($"q has {q.Length} elements, x has {x.Length}.", nameof(q));
        if (tmp.Length < x.Length) throw new ArgumentException($"tmp has {tmp.Length} elements, x has {x.Length}.", nameof(tmp));
        float max = MaxAbs(x, out bool finite);
        if (!finite) throw new ArgumentException("Activations contain NaN or infinity.", nameof(x));
        if (max == 0) { q[..x.Length].Clear(); return 1f; }
        float a = 127f / max;
        ScaleRoundSaturate(x, a, q);
        return a;
    }

    /// <summary>max |x| and whether every x is finite (x * 0 is NaN exactly for NaN and infinities).</summary>
    internal static float MaxAbs(ReadOnlySpan<float> x, out bool finite)
    {
        int i = 0;
        float max = 0, zero = 0;
        ref float r = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        if (Vector512.IsHardwareAccelerated && x.Length >= 64)
        {
            // Four independent max and x * 0 + z chains of 16 lanes (the one-chain Vector256 loop below ran at the add
            // latency, ~0.5 cycle per value). MaxNative (vmaxps) is exact here: its operands are |x| >= +0, and a NaN
            // it might drop still reaches z.
            Vector512<float> m0 = default, m1 = default, m2 = default, m3 = default, z0 = default, z1 = default, z2 = default, z3 = default;
            for (; i + 64 <= x.Length; i += 64)
            {
                var v0 = Vector512.LoadUnsafe(ref r, (nuint)i); var v1 = Vector512.LoadUnsafe(ref r, (nuint)i + 16);
                var v2 = Vector512.LoadUnsafe(ref r, (nuint)i + 32); var v3 = Vector512.LoadUnsafe(ref r, (nuint)i + 48);
                m0 = Vector512.MaxNative(m0, Vector512.Abs(v0)); m1 = Vector512.MaxNative(m1, Vector512.Abs(v1));
                m2 = Vector512.MaxNative(m2, Vector512.Abs(v2)); m3 = Vector512.MaxNative(m3, Vector512.Abs(v3));
                z0 = Vector512.FusedMultiplyAdd(v0, Vector512<float>.Zero, z0); z1 = Vector512.FusedMultiplyAdd(v1, Vector512<float>.Zero, z1);
                z2 = Vector512.FusedMultiplyAdd(v2, Vector512<float>.Zero, z2); z3 = Vector512.FusedMultiplyAdd(v3, Vector512<float>.Zero, z3);
            }
            var m = Vector512.MaxNative(Vector512.MaxNative(m0, m1), Vector512.MaxNative(m2, m3));
            var z = z0 + z1 + z2 + z3;
            for (int j = 0; j < 16; j++) { max = MathF.Max(max, m[j]); zero += z[j]; }
        }
        if (Vector256.IsHardwareAccelerated && x.Length - i >= 8)
        {
            Vector256<float> m = default, z = default;
            for (; i + 8 <= x.Length; i += 8)
            {
                var v = Vector256.Create(x.Slice(i, 8));
                m = Vector256.Max(m, Vector256.Abs(v));
                z += v * Vector256<float>.Zero;
            }
            for (int j = 0; j < 8; j++) { max = MathF.Max(max, m[j]); zero += z[j]; }
        }
        for (; i < x.Length; i++) { max = MathF.Max(max, MathF.Abs(x[i])); zero += x[i] * 0; }
        finite = float.IsFinite(zero) && float.IsFinite(max);
        return max;
    }

    /// <summary>
    /// q = saturate_int8(round_to_even(x a)) in one vectorized pass (32 values per step: multiply, round, clamp,
    /// convert, two narrows). Per element the same float operations as the scalar loop, so every path agrees; three
    /// TensorPrimitives passes (multiply, round, saturating convert) took ~40 us per 4096 values here.
    /// </summary>
    internal static void ScaleRoundSaturate(ReadOnlySpan<float> x, float a, Span<sbyte> q)
    {
        int i = 0;
        if (Avx512F.IsSupported && Vector512.IsHardwareAccelerated)
        {
            // AVX-512: vcvtps2dq rounding to nearest even (explicitly, not MXCSR's mode), then vpmovsdb's saturation is
            // the clamp to [-128, 127] (|x a| <= 127 give or take one rounding, far inside int32): the same value as
            // the scalar loop for every finite x, in 4 instructions per 16 values instead of ~10 (4096 values ~1.4 ->
            // ~0.4 us).
            var va = Vector512.Create(a);
            ref float r = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            ref sbyte d = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(q);
            for (; i + 16 <= x.Length; i += 16)
                Avx512F.ConvertToVector128SByteWithSaturation(Avx512F.ConvertToVector512Int32(Vector512.LoadUnsafe(ref r, (nuint)i) * va, FloatRoundingMode.ToEven))
                    .StoreUnsafe(ref d, (nuint)i);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(a);
            var lo = Vector256.Create(-128f);
            var hi = Vector256.Create(127f);
            for (; i + 32 <= x.Length; i += 32)
            {
                var s = x.Slice(i, 32);
                var v0 = Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(RoundEven(Vector256.Create(s) * va), lo), hi));
                var v1 = Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(RoundEven(Vector256.Create(s[8..]) * va), lo), hi));
                var v2 = Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(RoundEven(Vector256.Create(s[16..]) * va), lo), hi));
                var v3 = Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(RoundEven(Vector256.Create(s[24..]) * va), lo), hi));
                Vector256.Narrow(Vector256.Narrow(v0, v1), Vector256.Narrow(v2, v3)).CopyTo(q.Slice(i, 32));
            }
        }
        for (; i < x.Length; i++) q[i] = (sbyte)Math.Clamp(MathF.Round(x[i] * a), -128f, 127f);
    }

    /// <summary>Round half to even: vroundps (mode 8 = nearest, no exceptions) where AVX exists, else the portable API.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> RoundEven(Vector256<float> v) =>
        System.Runtime.Intrinsics.X86.Avx.IsSupported ? System.Runtime.Intrinsics.X86.Avx.RoundToNearestInteger(v) : Vector256.Round(v);

    public static float Quantize(ReadOnlySpan<float> x, Span<sbyte> q) => Quantize(x, q, new float[x.Length]);

    /// <summary>sum(q), widened 16 bytes at a time (a scalar loop took ~2.5 us per 4096 values, a third of a token's preparation).</summary>
    public static int Sum(ReadOnlySpan<sbyte> q)
    {
        int i = 0;
        var acc = Vector128<int>.Zero;
        if (Vector128.IsHardwareAccelerated)
            for (; i + 16 <= q.Length; i += 16)
            {
                var (lo, hi) = Vector128.Widen(Vector128.Create(q.Slice(i, 16)));
                acc += Vector128.WidenLower(lo) + Vector128.WidenUpper(lo) + Vector128.WidenLower(hi) + Vector128.WidenUpper(hi);
            }
        int s = Vector128.Sum(acc);
        for (; i < q.Length; i++) s += q[i];
        return s;
    }
}

internal static class Shapes
{
    /// <summary>Largest column count: keeps every int32 sum exact (|sum| &lt;= 2 * 128 * cols for codes, 127 * 128 * cols for int8).</summary>
    public const int MaxCols = 1 << 16;

    public static void CheckShape(int rows, int cols)
    {
        if (rows <= 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, $"rows must be positive (rows = {rows}, cols = {cols}).");
        if (cols <= 0 || cols > MaxCols)
            throw new ArgumentOutOfRangeException(nameof(cols), cols, $"cols must be in 1..{MaxCols} so int32 sums cannot overflow (rows = {rows}, cols = {cols}).");
    }

    public static void CheckMatrix(int length, int rows, int cols, string paramName)
    {
        CheckShape(rows, cols);
        if (length != (long)rows * cols)
            throw new ArgumentException($"{paramName} has {length} elements but rows x cols = {rows} x {cols} = {(long)rows * cols}.", paramName);
    }

    public static int RoundUp(int n, int multiple) => (n + multiple - 1) / multiple * multiple;
}
