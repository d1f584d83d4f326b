using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Workbench.Engine.LowBit;

/// <summary>
/// The dot products of <see cref="StoredMatrix"/>, one per stored type and path, all computing the one lane layout
/// documented there (16 fp32 lanes, element i in lane i mod 16, a fixed reduction tree), so every path returns the same
/// bits as its scalar twin (<see cref="HalfScalar"/>, <see cref="QScalar"/>, <see cref="PlainScalar"/>,
/// <see cref="BlocksScalar"/>). The f16 widening is done with integer operations and one exact multiply by 2^112
/// (.NET exposes no F16C conversion), identical to <see cref="F16ToF32"/>.
/// </summary>
internal static unsafe class StoredKernels
{
    private const int Lanes = 16;
    private const float Two112 = 5.192296858534828e33f; // 2^112: rebases an f16 exponent (bias 15) to f32 (bias 127)

    /// <summary>f16 bits to f32, exactly (subnormals included; infinities and NaN keep their sign and payload).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float F16ToF32(uint h)
    {
        uint em = h & 0x7FFF, sign = (h & 0x8000) << 16;
        uint bits = em >= 0x7C00 ? (em << 13) | 0x7F800000 : BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(em << 13) * Two112);
        return BitConverter.UInt32BitsToSingle(bits | sign);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> F16ToF32(Vector512<uint> h)
    {
        var em = h & Vector512.Create(0x7FFFu);
        var shifted = em << 13;
        var normal = (shifted.AsSingle() * Vector512.Create(Two112)).AsUInt32();
        var special = shifted | Vector512.Create(0x7F800000u);
        var bits = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(em, Vector512.Create(0x7C00u)), special, normal);
        return (bits | ((h & Vector512.Create(0x8000u)) << 16)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> F16ToF32(Vector256<uint> h)
    {
        var em = h & Vector256.Create(0x7FFFu);
        var shifted = em << 13;
        var normal = (shifted.AsSingle() * Vector256.Create(Two112)).AsUInt32();
        var special = shifted | Vector256.Create(0x7F800000u);
        var bits = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(em, Vector256.Create(0x7C00u)), special, normal);
        return (bits | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> F16ToF32(Vector128<uint> h)
    {
        var em = h & Vector128.Create(0x7FFFu);
        var shifted = em << 13;
        var normal = (shifted.AsSingle() * Vector128.Create(Two112)).AsUInt32();
        var special = shifted | Vector128.Create(0x7F800000u);
        var bits = Vector128.ConditionalSelect(Vector128.GreaterThanOrEqual(em, Vector128.Create(0x7C00u)), special, normal);
        return (bits | ((h & Vector128.Create(0x8000u)) << 16)).AsSingle();
    }

    /// <summary>The fixed reduction of 16 lanes: 8 + 8, 4 + 4, 2 + 2, 1 + 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Reduce(float* l)
    {
        for (int j = 0; j < 8; j++) l[j] += l[j + 8];
        for (int j = 0; j < 4; j++) l[j] += l[j + 4];
        l[0] += l[2];
        l[1] += l[3];
        return l[0] + l[1];
    }

    // ---- f16 / bf16 from stored bytes ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Widen(ushort h, bool bf16) => bf16 ? BitConverter.Int32BitsToSingle(h << 16) : F16ToF32(h);

    public static float HalfScalar(byte* row, float* x, int cols, bool bf16)
    {
        var l = stackalloc float[Lanes];
        for (int j = 0; j < Lanes; j++) l[j] = 0;
        var h = (ushort*)row;
        for (int i = 0; i < cols; i++) l[i & 15] = MathF.FusedMultiplyAdd(Widen(h[i], bf16), x[i], l[i & 15]);
        return Reduce(l);
    }

    private static float HalfTail(float* l, ushort* h, float* x, int from, int cols, bool bf16)
    {
        for (int i = from; i < cols; i++) l[i & 15] = MathF.FusedMultiplyAdd(Widen(h[i], bf16), x[i], l[i & 15]);
        return Reduce(l);
    }

    public static float F16V512(byte* row, float* x, int cols)
    {
        var h = (ushort*)row;
        var acc = Vector512<float>.Zero;
        int i = 0;
        for (; i + Lanes <= cols; i += Lanes)
            acc = Vector512.FusedMultiplyAdd(F16ToF32(Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i))), Vector512.Load(x + i), acc);
        var l = stackalloc float[Lanes];
        acc.Store(l);
        return HalfTail(l, h, x, i, cols, bf16: false);
    }

    public static float Bf16V512(byte* row, float* x, int cols)
    {
        var h = (ushort*)row;
        var acc = Vector512<float>.Zero;
        int i = 0;
        for (; i + Lanes <= cols; i += Lanes)
            acc = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i)) << 16).AsSingle(), Vector512.Load(x + i), acc);
        var l = stackalloc float[Lanes];
        acc.Store(l);
        return HalfTail(l, h, x, i, cols, bf16: true);
    }

    public static float F16V256(byte* row, float* x, int cols)
    {
        var h = (ushort*)row;
        Vector256<float> a0 = default, a1 = default;
        int i = 0;
        for (; i + Lanes <= cols; i += Lanes)
        {
            a0 = Vector256.FusedMultiplyAdd(F16ToF32(Avx2.ConvertToVector256Int32(h + i).AsUInt32()), Vector256.Load(x + i), a0);
            a1 = Vector256.FusedMultiplyAdd(F16ToF32(Avx2.ConvertToVector256Int32(h + i + 8).AsUInt32()), Vector256.Load(x + i + 8), a1);
        }
        var l = stackalloc float[Lanes];
        a0.Store(l);
        a1.Store(l + 8);
        return HalfTail(l, h, x, i, cols, bf16: false);
    }

    public static float Bf16V256(byte* row, float* x, int cols)
    {
        var h = (ushort*)row;
        Vector256<float> a0 = default, a1 = default;
        int i = 0;
        for (; i + Lanes <= cols; i += Lanes)
        {
            a0 = Vector256.FusedMultiplyAdd((Avx2.ConvertToVector256Int32(h + i).AsUInt32() << 16).AsSingle(), Vector256.Load(x + i), a0);
            a1 = Vector256.FusedMultiplyAdd((Avx2.ConvertToVector256Int32(h + i + 8).AsUInt32() << 16).AsSingle(), Vector256.Load(x + i + 8), a1);
        }
        var l = stackalloc float[Lanes];
        a0.Store(l);
        a1.Store(l + 8);
        return HalfTail(l, h, x, i, cols, bf16: true);
    }

    public static float F16V128(byte* row, float* x, int cols) => HalfV128(row, x, cols, bf16: false);
    public static float Bf16V128(byte* row, float* x, int cols) => HalfV128(row, x, cols, bf16: true);

    private static float HalfV128(byte* row, float* x, int cols, bool bf16)
    {
        var h = (ushort*)row;
        Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + Lanes <= cols; i += Lanes)
        {
            var v0 = Vector128.Load(h + i);
            var v1 = Vector128.Load(h + i + 8);
            a0 = Vector128.FusedMultiplyAdd(Half4(Vector128.WidenLower(v0), bf16), Vector128.Load(x + i), a0);
            a1 = Vector128.FusedMultiplyAdd(Half4(Vector128.WidenUpper(v0), bf16), Vector128.Load(x + i + 4), a1);
            a2 = Vector128.FusedMultiplyAdd(Half4(Vector128.WidenLower(v1), bf16), Vector128.Load(x + i + 8), a2);
            a3 = Vector128.FusedMultiplyAdd(Half4(Vector128.WidenUpper(v1), bf16), Vector128.Load(x + i + 12), a3);
        }
        var l = stackalloc float[Lanes];
        a0.Store(l);
        a1.Store(l + 4);
        a2.Store(l + 8);
        a3.Store(l + 12);
        return HalfTail(l, h, x, i, cols, bf16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Half4(Vector128<uint> h, bool bf16) => bf16 ? (h << 16).AsSingle() : F16ToF32(h);

    // ---- Q8_0 / Q4_0 from stored blocks ----

    public static float QScalar(byte* row, float* x, int cols, bool q4)
    {
        var l = stackalloc float[Lanes];
        for (int j = 0; j < Lanes; j++) l[j] = 0;
        int blockBytes = q4 ? 18 : 34;
        for (int b = 0; b < cols / 32; b++, row += blockBytes, x += 32)
        {
            float d = F16ToF32(*(ushort*)row);
            byte* q = row + 2;
            for (int j = 0; j < Lanes; j++)
            {
                float w0, w1;
                if (q4) { w0 = (q[j] & 0xF) - 8; w1 = (q[j] >> 4) - 8; }
                else { w0 = (sbyte)q[j]; w1 = (sbyte)q[16 + j]; }
                float p = w0 * x[j];
                p = MathF.FusedMultiplyAdd(w1, x[16 + j], p);
                l[j] = MathF.FusedMultiplyAdd(d, p, l[j]);
            }
        }
        return Reduce(l);
    }

    public static float Q8V256(byte* row, float* x, int cols)
    {
        Vector256<float> a0 = default, a1 = default;
        for (int b = 0; b < cols / 32; b++, row += 34, x += 32)
        {
            var d = Vector256.Create(F16ToF32(*(ushort*)row));
            sbyte* q = (sbyte*)row + 2;
            var p0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 16)), Vector256.Load(x + 16),
                Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q)) * Vector256.Load(x));
            var p1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 24)), Vector256.Load(x + 24),
                Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 8)) * Vector256.Load(x + 8));
            a0 = Vector256.FusedMultiplyAdd(d, p0, a0);
            a1 = Vector256.FusedMultiplyAdd(d, p1, a1);
        }
        var l = stackalloc float[Lanes];
        a0.Store(l);
        a1.Store(l + 8);
        return Reduce(l);
    }

    public static float Q4V256(byte* row, float* x, int cols)
    {
        Vector256<float> a0 = default, a1 = default;
        var eight = Vector256.Create(8);
        var mask = Vector128.Create((byte)0xF);
        for (int b = 0; b < cols / 32; b++, row += 18, x += 32)
        {
            var d = Vector256.Create(F16ToF32(*(ushort*)row));
            var qs = Vector128.Load(row + 2);
            var lo = qs & mask;
            var hi = Vector128.ShiftRightLogical(qs, 4);
            var w0 = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(lo) - eight);
            var w1 = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(lo, 8)) - eight);
            var w2 = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(hi) - eight);
            var w3 = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(hi, 8)) - eight);
            var p0 = Vector256.FusedMultiplyAdd(w2, Vector256.Load(x + 16), w0 * Vector256.Load(x));
            var p1 = Vector256.FusedMultiplyAdd(w3, Vector256.Load(x + 24), w1 * Vector256.Load(x + 8));
            a0 = Vector256.FusedMultiplyAdd(d, p0, a0);
            a1 = Vector256.FusedMultiplyAdd(d, p1, a1);
        }
        var l = stackalloc float[Lanes];
        a0.Store(l);
        a1.Store(l + 8);
        return Reduce(l);
    }

    public static float Q8V128(byte* row, float* x, int cols) => QV128(row, x, cols, q4: false);
    public static float Q4V128(byte* row, float* x, int cols) => QV128(row, x, cols, q4: true);

    private static float QV128(byte* row, float* x, int cols, bool q4)
    {
        Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int blockBytes = q4 ? 18 : 34;
        for (int b = 0; b < cols / 32; b++, row += blockBytes, x += 32)
        {
            var d = Vector128.Create(F16ToF32(*(ushort*)row));
            Vector128<short> s0, s1, s2, s3; // weights 0-7, 8-15, 16-23, 24-31 as int16
            if (q4)
            {
                var qs = Vector128.Load(row + 2);
                var lo = (qs & Vector128.Create((byte)0xF)).AsSByte() - Vector128.Create((sbyte)8);
                var hi = Vector128.ShiftRightLogical(qs, 4).AsSByte() - Vector128.Create((sbyte)8);
                (s0, s1) = Vector128.Widen(lo);
                (s2, s3) = Vector128.Widen(hi);
            }
            else
            {
                (s0, s1) = Vector128.Widen(Vector128.Load((sbyte*)row + 2));
                (s2, s3) = Vector128.Widen(Vector128.Load((sbyte*)row + 18));
            }
            a0 = Block4(d, Vector128.WidenLower(s0), Vector128.WidenLower(s2), x, 0, a0);
            a1 = Block4(d, Vector128.WidenUpper(s0), Vector128.WidenUpper(s2), x, 4, a1);
            a2 = Block4(d, Vector128.WidenLower(s1), Vector128.WidenLower(s3), x, 8, a2);
            a3 = Block4(d, Vector128.WidenUpper(s1), Vector128.WidenUpper(s3), x, 12, a3);
        }
        var l = stackalloc float[Lanes];
        a0.Store(l);
        a1.Store(l + 4);
        a2.Store(l + 8);
        a3.Store(l + 12);
        return Reduce(l);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Block4(Vector128<float> d, Vector128<int> w0, Vector128<int> w1, float* x, int j, Vector128<float> acc)
    {
        var p = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(w1), Vector128.Load(x + 16 + j), Vector128.ConvertToSingle(w0) * Vector128.Load(x + j));
        return Vector128.FusedMultiplyAdd(d, p, acc);
    }

    // ---- the GEMM's dots from a row already widened to fp32 (same operations as above) ----

    public static float PlainScalar(float* w, float* x, int cols)
    {
        var l = stackalloc float[Lanes];
        for (int j = 0; j < Lanes; j++) l[j] = 0;
        for (int i = 0; i < cols; i++) l[i & 15] = MathF.FusedMultiplyAdd(w[i], x[i], l[i & 15]);
        return Reduce(l);
    }

    private static float PlainTail(float* l, float* w, float* x, int from, int cols)
    {
        for (int i = from; i < cols; i++) l[i & 15] = MathF.FusedMultiplyAdd(w[i], x[i], l[i & 15]);
        return Reduce(l);
    }

    public static float PlainV512(float* w, float* x, int cols)
    {
        var acc = Vector512<float>.Zero;
        int i = 0;
        for (; i + Lanes <= cols; i += Lanes) acc = Vector512.FusedMultiplyAdd(Vector512.Load(w + i), Vector512.Load(x + i), acc);
        var l = stackalloc float[Lanes];
        acc.Store(l);
        return PlainTail(l, w, x, i, cols);
    }

    public static float PlainV256(float* w, float* x, int cols)
    {
        Vector256<float> a0 = default, a1 = default;
        int i = 0;
        for (; i + Lanes <= cols; i += Lanes)
        {
            a0 = Vector256.FusedMultiplyAdd(Vector256.Load(w + i), Vector256.Load(x + i), a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.Load(w + i + 8), Vector256.Load(x + i + 8), a1);
        }
        var l = stackalloc float[Lanes];
        a0.Store(l);
        a1.Store(l + 8);
        return PlainTail(l, w, x, i, cols);
    }

    public static float PlainV128(float* w, float* x, int cols)
    {
        Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + Lanes <= cols; i += Lanes)
        {
            a0 = Vector128.FusedMultiplyAdd(Vector128.Load(w + i), Vector128.Load(x + i), a0);
            a1 = Vector128.FusedMultiplyAdd(Vector128.Load(w + i + 4), Vector128.Load(x + i + 4), a1);
            a2 = Vector128.FusedMultiplyAdd(Vector128.Load(w + i + 8), Vector128.Load(x + i + 8), a2);
            a3 = Vector128.FusedMultiplyAdd(Vector128.Load(w + i + 12), Vector128.Load(x + i + 12), a3);
        }
        var l = stackalloc float[Lanes];
        a0.Store(l);
        a1.Store(l + 4);
        a2.Store(l + 8);
        a3.Store(l + 12);
        return PlainTail(l, w, x, i, cols);
    }

    public static float BlocksScalar(float* w, float* d, float* x, int cols)
    {
        var l = stackalloc float[Lanes];
        for (int j = 0; j < Lanes; j++) l[j] = 0;
        for (int b = 0; b < cols / 32; b++, w += 32, x += 32)
            for (int j = 0; j < Lanes; j++)
            {
                float p = w[j] * x[j];
                p = MathF.FusedMultiplyAdd(w[16 + j], x[16 + j], p);
                l[j] = MathF.FusedMultiplyAdd(d[b], p, l[j]);
            }
        return Reduce(l);
    }

    public static float BlocksV512(float* w, float* d, float* x, int cols)
    {
        var acc = Vector512<float>.Zero;
        for (int b = 0; b < cols / 32; b++, w += 32, x += 32)
        {
            var p = Vector512.FusedMultiplyAdd(Vector512.Load(w + 16), Vector512.Load(x + 16), Vector512.Load(w) * Vector512.Load(x));
            acc = Vector512.FusedMultiplyAdd(Vector512.Create(d[b]), p, acc);
        }
        var l = stackalloc float[Lanes];
        acc.Store(l);
        return Reduce(l);
    }

    public static float BlocksV256(float* w, float* d, float* x, int cols)
    {
        Vector256<float> a0 = default, a1 = default;
        for (int b = 0; b < cols / 32; b++, w += 32, x += 32)
        {
            var db = Vector256.Create(d[b]);
            a0 = Vector256.FusedMultiplyAdd(db, Vector256.FusedMultiplyAdd(Vector256.Load(w + 16), Vector256.Load(x + 16), Vector256.Load(w) * Vector256.Load(x)), a0);
            a1 = Vector256.FusedMultiplyAdd(db, Vector256.FusedMultiplyAdd(Vector256.Load(w + 24), Vector256.Load(x + 24), Vector256.Load(w + 8) * Vector256.Load(x + 8)), a1);
        }
        var l = stackalloc float[Lanes];
        a0.Store(l);
        a1.Store(l + 8);
        return Reduce(l);
    }

    public static float BlocksV128(float* w, float* d, float* x, int cols)
    {
        Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int b = 0; b < cols / 32; b++, w += 32, x += 32)
        {
            var db = Vector128.Create(d[b]);
            a0 = Vector128.FusedMultiplyAdd(db, Vector128.FusedMultiplyAdd(Vector128.Load(w + 16), Vector128.Load(x + 16), Vector128.Load(w) * Vector128.Load(x)), a0);
            a1 = Vector128.FusedMultiplyAdd(db, Vector128.FusedMultiplyAdd(Vector128.Load(w + 20), Vector128.Load(x + 20), Vector128.Load(w + 4) * Vector128.Load(x + 4)), a1);
            a2 = Vector128.FusedMultiplyAdd(db, Vector128.FusedMultiplyAdd(Vector128.Load(w + 24), Vector128.Load(x + 24), Vector128.Load(w + 8) * Vector128.Load(x + 8)), a2);
            a3 = Vector128.FusedMultiplyAdd(db, Vector128.FusedMultiplyAdd(Vector128.Load(w + 28), Vector128.Load(x + 28), Vector128.Load(w + 12) * Vector128.Load(x + 12)), a3);
        }
        var l = stackalloc float[Lanes];
        a0.Store(l);
        a1.Store(l + 4);
        a2.Store(l + 8);
        a3.Store(l + 12);
        return Reduce(l);
    }
}
