using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Workbench.Engine.Formats;

namespace Workbench.Engine.LowBit;

/// <summary>
/// The dot products of <see cref="StoredMatrix"/> for ggml's K types (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: super-blocks of 256) and Q5_0
/// (the type llama-quantize's Q4_K_M falls back to when rows are not whole super-blocks), computed from the stored blocks.
///
/// <para>The arithmetic: each weight is dequantized on the fly to exactly ggml's value (its reference to_float: fp16
/// scales widened exactly; Q2_K / Q4_K / Q5_K <c>(d * sc) * q - dmin * m</c>, Q3_K <c>(d * (sc - 32)) * q</c>, Q6_K <c>(d * sc) * (q - 32)</c>, Q5_0
/// <c>(q - 16) * d</c>, no fused multiply-add), then fused into the f16 layout of <see cref="StoredMatrix"/>:
/// element i of a row goes to lane i mod 16, <c>lane = fma(w_i, x_i, lane)</c>, and the fixed 16-lane tree sums them.
/// So a row's output is the fp32 dot product of ggml's dequantized weights with x (only accumulation rounding), the
/// activations are not quantized (llama.cpp quantizes them to Q8_K / Q8_0 and takes integer dots, about 0.2 off in
/// stories260K's logits, see GgufQuantTests), and the GEMM takes its dots from a row decoded once to fp32 with the
/// same lane operations (<see cref="DotDecoded"/>), equal to the GEMV token by token.</para>
///
/// <para>The scalar twin (<see cref="Scalar"/>) decodes a block with <see cref="DecodeBlock"/> and runs the lane loop;
/// V512 holds the 16 lanes in one register, V256 in two, V128 in four, and every path gives its bits. Q3_K's SIMD paths
/// still decode with the scalar decoder (only the FMAs are vectorised), so models dequantize Q3_K at load.</para>
/// </summary>
internal static unsafe class StoredKernelsK
{
    private const int Lanes = 16;

    /// <summary>Values per block of a type (256 for the K types, 32 for Q5_0).</summary>
    internal static int BlockValues(StoredType t) => t == StoredType.Q5_0 ? 32 : 256;

    /// <summary>Bytes per block, as ggml's type traits.</summary>
    internal static int BlockBytes(StoredType t) => t switch
    {
        StoredType.Q5_0 => 22,
        StoredType.Q2_K => 84,
        StoredType.Q3_K => 110,
        StoredType.Q4_K => 144,
        StoredType.Q5_K => 176,
        StoredType.Q6_K => 210,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "not a K-family stored type"),
    };

    internal static bool Handles(StoredType t) => t is StoredType.Q5_0 or StoredType.Q2_K or StoredType.Q3_K or StoredType.Q4_K or StoredType.Q5_K or StoredType.Q6_K;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float F16(byte* p) => StoredKernels.F16ToF32(*(ushort*)p);

    /// <summary>ggml's get_scale_min_k4: the j-th (scale, min) pair of the 12 packed scale bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (int Scale, int Min) ScaleMin(int j, byte* q) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));

    // ---- the scalar decoder: Formats.GgufQuants, the load-time dequantizer (ggml's dequantize_row_*, value for value) ----

    private static GgmlType Ggml(StoredType t) => t switch
    {
        StoredType.Q5_0 => GgmlType.Q5_0, StoredType.Q2_K => GgmlType.Q2_K, StoredType.Q3_K => GgmlType.Q3_K,
        StoredType.Q4_K => GgmlType.Q4_K, StoredType.Q5_K => GgmlType.Q5_K, StoredType.Q6_K => GgmlType.Q6_K,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "not a K-family stored type"),
    };

    /// <summary>One block's values, exactly as ggml's reference to_float gives them (<see cref="GgufQuants.Dequantize"/>).</summary>
    internal static void DecodeBlock(StoredType t, byte* b, float* y) => DecodeRow(t, b, y, BlockValues(t));

    /// <summary>
    /// Q3_K on the SIMD paths: the block decoded by the scalar decoder into a buffer, then the lane FMAs
    /// vectorised (the same values and operations as the scalar twin; the decode is not vectorised yet).
    /// </summary>
    private static float Buffered(StoredType t, byte* row, float* x, int cols, Tensors.IsaPath p)
    {
        var w = stackalloc float[256];
        int bb = BlockBytes(t);
        Vector512<float> v = default;
        Vector256<float> a0 = default, a1 = default;
        Vector128<float> c0 = default, c1 = default, c2 = default, c3 = default;
        for (int i = 0; i < cols; i += 256, row += bb)
        {
            DecodeBlock(t, row, w);
            float* xi = x + i;
            for (int k = 0; k < 256; k += 16)
                switch (p)
                {
                    case Tensors.IsaPath.V512:
                        v = Vector512.FusedMultiplyAdd(Vector512.Load(w + k), Vector512.Load(xi + k), v);
                        break;
                    case Tensors.IsaPath.V256:
                        a0 = Vector256.FusedMultiplyAdd(Vector256.Load(w + k), Vector256.Load(xi + k), a0);
                        a1 = Vector256.FusedMultiplyAdd(Vector256.Load(w + k + 8), Vector256.Load(xi + k + 8), a1);
                        break;
                    default:
                        c0 = Vector128.FusedMultiplyAdd(Vector128.Load(w + k), Vector128.Load(xi + k), c0);
                        c1 = Vector128.FusedMultiplyAdd(Vector128.Load(w + k + 4), Vector128.Load(xi + k + 4), c1);
                        c2 = Vector128.FusedMultiplyAdd(Vector128.Load(w + k + 8), Vector128.Load(xi + k + 8), c2);
                        c3 = Vector128.FusedMultiplyAdd(Vector128.Load(w + k + 12), Vector128.Load(xi + k + 12), c3);
                        break;
                }
        }
        var l = stackalloc float[Lanes];
        if (p == Tensors.IsaPath.V512) v.Store(l);
        else if (p == Tensors.IsaPath.V256) { a0.Store(l); a1.Store(l + 8); }
        else { c0.Store(l); c1.Store(l + 4); c2.Store(l + 8); c3.Store(l + 12); }
        return StoredKernels.Reduce(l);
    }

    /// <summary>
    /// A row already decoded to ggml's values (the GEMM's), dotted the way every K GEMV path does: lane i mod 16 +=
    /// w_i x_i (fused), in row order, then the 16-lane tree; so the GEMM equals the GEMV bit for bit.
    /// </summary>
    internal static float DotDecoded(float* w, float* x, int cols, Tensors.IsaPath p)
    {
        var l = stackalloc float[Lanes];
        if (p == Tensors.IsaPath.V512)
        {
            Vector512<float> v = default;
            for (int k = 0; k < cols; k += 16) v = Vector512.FusedMultiplyAdd(Vector512.Load(w + k), Vector512.Load(x + k), v);
            v.Store(l);
        }
        else if (p == Tensors.IsaPath.V256)
        {
            Vector256<float> a0 = default, a1 = default;
            for (int k = 0; k < cols; k += 16)
            {
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(w + k), Vector256.Load(x + k), a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Load(w + k + 8), Vector256.Load(x + k + 8), a1);
            }
            a0.Store(l); a1.Store(l + 8);
        }
        else if (p == Tensors.IsaPath.V128)
        {
            Vector128<float> c0 = default, c1 = default, c2 = default, c3 = default;
            for (int k = 0; k < cols; k += 16)
            {
                c0 = Vector128.FusedMultiplyAdd(Vector128.Load(w + k), Vector128.Load(x + k), c0);
                c1 = Vector128.FusedMultiplyAdd(Vector128.Load(w + k + 4), Vector128.Load(x + k + 4), c1);
                c2 = Vector128.FusedMultiplyAdd(Vector128.Load(w + k + 8), Vector128.Load(x + k + 8), c2);
                c3 = Vector128.FusedMultiplyAdd(Vector128.Load(w + k + 12), Vector128.Load(x + k + 12), c3);
            }
            c0.Store(l); c1.Store(l + 4); c2.Store(l + 8); c3.Store(l + 12);
        }
        else
        {
            for (int j = 0; j < Lanes; j++) l[j] = 0;
            for (int k = 0; k < cols; k++) l[k & 15] = MathF.FusedMultiplyAdd(w[k], x[k], l[k & 15]);
        }
        return StoredKernels.Reduce(l);
    }

    /// <summary>A whole row (cols a multiple of the block) as ggml's fp32 values.</summary>
    internal static void DecodeRow(StoredType t, byte* row, float* y, int cols) =>
        GgufQuants.Dequantize(Ggml(t), new ReadOnlySpan<byte>(row, checked((int)((long)cols / BlockValues(t) * BlockBytes(t)))), new Span<float>(y, cols));

    /// <summary>The scalar twin: each block decoded, then lane i mod 16 += w_i x_i (fused), the 16-lane tree.</summary>
    public static float Scalar(StoredType t, byte* row, float* x, int cols)
    {
        var l = stackalloc float[Lanes];
        var w = stackalloc float[256];
        for (int j = 0; j < Lanes; j++) l[j] = 0;
        int bv = BlockValues(t), bb = BlockBytes(t);
        for (int i = 0; i < cols; i += bv, row += bb, x += bv)
        {
            DecodeBlock(t, row, w);
            for (int k = 0; k < bv; k++) l[k & 15] = MathF.FusedMultiplyAdd(w[k], x[k], l[k & 15]);
        }
        return StoredKernels.Reduce(l);
    }

    /// <summary>Row dot product on path p (every path gives the scalar twin's bits).</summary>
    public static float Dot(StoredType t, byte* row, float* x, int cols, Tensors.IsaPath p) => p switch
    {
        not Tensors.IsaPath.Scalar when t is StoredType.Q3_K => Buffered(t, row, x, cols, p),
        Tensors.IsaPath.V512 => V512(t, row, x, cols),
        Tensors.IsaPath.V256 => V256(t, row, x, cols),
        Tensors.IsaPath.V128 => V128(t, row, x, cols),
        _ => Scalar(t, row, x, cols),
    };

    // ---- Seeded synthetic blocks (tests, benchmarks) ----

    /// <summary>
    /// Random blocks of a K type: every code and packed scale byte uniform, the fp16 super-scales chosen so weights are
    /// about [-1, 1] (not ggml's iterative quantizer: the kernels read any bytes, so every bit pattern is exercised).
    /// </summary>
    internal static void RandomBlocks(StoredType t, Span<byte> dst, Random rng)
    {
        int bb = BlockBytes(t);
        rng.NextBytes(dst);
        for (int o = 0; o < dst.Length; o += bb)
        {
            var blk = dst.Slice(o, bb);
            float u = (float)(0.5 + rng.NextDouble());
            switch (t)
            {
                case StoredType.Q4_K or StoredType.Q5_K:
                    float top = t == StoredType.Q4_K ? 15 : 31;
                    WriteF16(blk, 0, 2 * u / (top * 63)); // d: d * sc * q spans up to about 2
                    WriteF16(blk, 2, u / 63);             // dmin: the mins shift by up to about 1
                    break;
                case StoredType.Q6_K:
                    WriteF16(blk, 208, u / (128 * 32));
                    break;
                case StoredType.Q2_K:
                    WriteF16(blk, 80, 2 * u / (15 * 3));
                    WriteF16(blk, 82, u / 15);
                    break;
                case StoredType.Q3_K:
                    WriteF16(blk, 108, u / (32 * 4));
                    break;
            }
        }
    }

    private static void WriteF16(Span<byte> b, int at, float v) =>
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(b[at..], BitConverter.HalfToUInt16Bits((Half)v));

    /// <summary>ggml's quantize_row_q5_0_ref: d = max / -16 of the value of largest magnitude, q = min(31, (int)(x / d + 16.5)).</summary>
    internal static void QuantizeQ5_0(ReadOnlySpan<float> x, Span<byte> dst)
    {
        for (int b = 0; b < x.Length / 32; b++)
        {
            var v = x.Slice(b * 32, 32);
            float amax = 0, max = 0;
            foreach (var f in v) if (Math.Abs(f) > amax) { amax = Math.Abs(f); max = f; }
            float d = max / -16, id = d != 0 ? 1 / d : 0;
            var blk = dst.Slice(b * 22, 22);
            WriteF16(blk, 0, d);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Min(31, (int)(v[j] * id + 16.5f)), q1 = Math.Min(31, (int)(v[16 + j] * id + 16.5f));
                blk[6 + j] = (byte)((q0 & 0xF) | ((q1 & 0xF) << 4));
                qh |= (uint)((q0 & 0x10) >> 4) << j;
                qh |= (uint)((q1 & 0x10) >> 4) << (j + 16);
            }
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(blk[2..], qh);
        }
    }

    // ---- V256: lanes 0-7 in a0, 8-15 in a1 ----

    /// <summary>8 zero-extended bytes as fp32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> U8(Vector128<byte> b) => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(b));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> S8(Vector128<sbyte> b) => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(b));

    /// <summary>16 values (codes q, one scale pair): w = d q - m (not fused), acc += w x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fma16(Vector128<byte> q, Vector256<float> d, Vector256<float> m, float* x, ref Vector256<float> a0, ref Vector256<float> a1)
    {
        a0 = Vector256.FusedMultiplyAdd(d * U8(q) - m, Vector256.Load(x), a0);
        a1 = Vector256.FusedMultiplyAdd(d * U8(Sse2.ShiftRightLogical128BitLane(q, 8)) - m, Vector256.Load(x + 8), a1);
    }

    /// <summary>16 values q - 32 (or - 16) already signed, one scale: w = d q, acc += w x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fma16(Vector128<sbyte> q, Vector256<float> d, float* x, ref Vector256<float> a0, ref Vector256<float> a1)
    {
        a0 = Vector256.FusedMultiplyAdd(S8(q) * d, Vector256.Load(x), a0);
        a1 = Vector256.FusedMultiplyAdd(S8(Sse2.ShiftRightLogical128BitLane(q, 8)) * d, Vector256.Load(x + 8), a1);
    }

    // One block's contribution on the 256-bit path, per type (a struct so the row loops below are specialised by the JIT).
    private interface IBlock256 { static abstract void Run(byte* b, float* x, ref Vector256<float> a0, ref Vector256<float> a1); }
    private interface IBlock512 { static abstract Vector512<float> Run(byte* b, float* x, Vector512<float> acc); }

    private struct Q4K : IBlock256, IBlock512
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Run(byte* b, float* x, ref Vector256<float> a0, ref Vector256<float> a1) => Q4or5K256(b, x, false, ref a0, ref a1);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Run(byte* b, float* x, Vector512<float> acc) => Q4or5K512(b, x, false, acc);
    }

    private struct Q5K : IBlock256, IBlock512
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Run(byte* b, float* x, ref Vector256<float> a0, ref Vector256<float> a1) => Q4or5K256(b, x, true, ref a0, ref a1);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Run(byte* b, float* x, Vector512<float> acc) => Q4or5K512(b, x, true, acc);
    }

    private struct Q6K : IBlock256, IBlock512
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Run(byte* b, float* x, ref Vector256<float> a0, ref Vector256<float> a1)
        {
            float d = F16(b + 208);
            for (int n = 0; n < 2; n++)
            {
                byte* ql = b + 64 * n, qh = b + 128 + 32 * n;
                sbyte* sc = (sbyte*)b + 192 + 8 * n;
                float* xn = x + 128 * n;
                var (p0, p1, p2, p3) = Q6Codes(Vector128.Load(ql), Vector128.Load(ql + 32), Vector128.Load(qh));           // values 0-15, 32-47, 64-79, 96-111
                var (r0, r1, r2, r3) = Q6Codes(Vector128.Load(ql + 16), Vector128.Load(ql + 48), Vector128.Load(qh + 16)); // 16-31, 48-63, 80-95, 112-127
                // in element order (each lane's accumulation order): group k covers values 16k .. 16k + 15, scale sc[k]
                Fma16(p0, Vector256.Create(d * sc[0]), xn + 0 * 16, ref a0, ref a1);
                Fma16(r0, Vector256.Create(d * sc[1]), xn + 1 * 16, ref a0, ref a1);
                Fma16(p1, Vector256.Create(d * sc[2]), xn + 2 * 16, ref a0, ref a1);
                Fma16(r1, Vector256.Create(d * sc[3]), xn + 3 * 16, ref a0, ref a1);
                Fma16(p2, Vector256.Create(d * sc[4]), xn + 4 * 16, ref a0, ref a1);
                Fma16(r2, Vector256.Create(d * sc[5]), xn + 5 * 16, ref a0, ref a1);
                Fma16(p3, Vector256.Create(d * sc[6]), xn + 6 * 16, ref a0, ref a1);
                Fma16(r3, Vector256.Create(d * sc[7]), xn + 7 * 16, ref a0, ref a1);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Run(byte* b, float* x, Vector512<float> acc)
        {
            float d = F16(b + 208);
            for (int n = 0; n < 2; n++)
            {
                byte* ql = b + 64 * n, qh = b + 128 + 32 * n;
                sbyte* sc = (sbyte*)b + 192 + 8 * n;
                float* xn = x + 128 * n;
                var (p0, p1, p2, p3) = Q6Codes(Vector128.Load(ql), Vector128.Load(ql + 32), Vector128.Load(qh));           // values 0-15, 32-47, 64-79, 96-111
                var (r0, r1, r2, r3) = Q6Codes(Vector128.Load(ql + 16), Vector128.Load(ql + 48), Vector128.Load(qh + 16)); // 16-31, 48-63, 80-95, 112-127
                // in element order (each lane's accumulation order): group k covers values 16k .. 16k + 15, scale sc[k]
                acc = Vector512.FusedMultiplyAdd(S8x16(p0) * Vector512.Create(d * sc[0]), Vector512.Load(xn + 0 * 16), acc);
                acc = Vector512.FusedMultiplyAdd(S8x16(r0) * Vector512.Create(d * sc[1]), Vector512.Load(xn + 1 * 16), acc);
                acc = Vector512.FusedMultiplyAdd(S8x16(p1) * Vector512.Create(d * sc[2]), Vector512.Load(xn + 2 * 16), acc);
                acc = Vector512.FusedMultiplyAdd(S8x16(r1) * Vector512.Create(d * sc[3]), Vector512.Load(xn + 3 * 16), acc);
                acc = Vector512.FusedMultiplyAdd(S8x16(p2) * Vector512.Create(d * sc[4]), Vector512.Load(xn + 4 * 16), acc);
                acc = Vector512.FusedMultiplyAdd(S8x16(r2) * Vector512.Create(d * sc[5]), Vector512.Load(xn + 5 * 16), acc);
                acc = Vector512.FusedMultiplyAdd(S8x16(p3) * Vector512.Create(d * sc[6]), Vector512.Load(xn + 6 * 16), acc);
                acc = Vector512.FusedMultiplyAdd(S8x16(r3) * Vector512.Create(d * sc[7]), Vector512.Load(xn + 7 * 16), acc);
            }
            return acc;
        }
    }

    private struct Q2K : IBlock256, IBlock512
    {
        // 16 scale bytes (low nibble scale, high nibble min), 64 bytes of 2-bit codes, fp16 d, fp16 dmin: per 32 code
        // bytes, shifts 0, 2, 4, 6 each give 2 x 16 values (scale k, then k + 1), in element order.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Run(byte* b, float* x, ref Vector256<float> a0, ref Vector256<float> a1)
        {
            float d = F16(b + 80), min = F16(b + 82);
            var three = Vector128.Create((byte)3);
            for (int n = 0, k = 0; n < 2; n++)
            {
                Vector128<byte> q0 = Vector128.Load(b + 16 + 32 * n), q1 = Vector128.Load(b + 32 + 32 * n);
                for (int s = 0; s < 4; s++, k += 2, x += 32)
                {
                    byte s0 = b[k], s1 = b[k + 1];
                    Fma16(q0 & three, Vector256.Create(d * (s0 & 0xF)), Vector256.Create(min * (s0 >> 4)), x, ref a0, ref a1);
                    Fma16(q1 & three, Vector256.Create(d * (s1 & 0xF)), Vector256.Create(min * (s1 >> 4)), x + 16, ref a0, ref a1);
                    q0 = Vector128.ShiftRightLogical(q0, 2);
                    q1 = Vector128.ShiftRightLogical(q1, 2);
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Run(byte* b, float* x, Vector512<float> acc)
        {
            float d = F16(b + 80), min = F16(b + 82);
            var three = Vector128.Create((byte)3);
            for (int n = 0, k = 0; n < 2; n++)
            {
                Vector128<byte> q0 = Vector128.Load(b + 16 + 32 * n), q1 = Vector128.Load(b + 32 + 32 * n);
                for (int s = 0; s < 4; s++, k += 2, x += 32)
                {
                    byte s0 = b[k], s1 = b[k + 1];
                    acc = Vector512.FusedMultiplyAdd(Vector512.Create(d * (s0 & 0xF)) * U8x16(q0 & three) - Vector512.Create(min * (s0 >> 4)), Vector512.Load(x), acc);
                    acc = Vector512.FusedMultiplyAdd(Vector512.Create(d * (s1 & 0xF)) * U8x16(q1 & three) - Vector512.Create(min * (s1 >> 4)), Vector512.Load(x + 16), acc);
                    q0 = Vector128.ShiftRightLogical(q0, 2);
                    q1 = Vector128.ShiftRightLogical(q1, 2);
                }
            }
            return acc;
        }
    }

    private struct Q50 : IBlock256, IBlock512
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Run(byte* b, float* x, ref Vector256<float> a0, ref Vector256<float> a1)
        {
            var d = Vector256.Create(F16(b));
            var (hLo, hHi) = Q5Bits(*(uint*)(b + 2));
            var qs = Vector128.Load(b + 6);
            Fma16(((qs & Vector128.Create((byte)0xF)) | hLo).AsSByte() - Vector128.Create((sbyte)16), d, x, ref a0, ref a1);
            Fma16((Vector128.ShiftRightLogical(qs, 4) | hHi).AsSByte() - Vector128.Create((sbyte)16), d, x + 16, ref a0, ref a1);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Run(byte* b, float* x, Vector512<float> acc)
        {
            var d = Vector512.Create(F16(b));
            var (hLo, hHi) = Q5Bits(*(uint*)(b + 2));
            var qs = Vector128.Load(b + 6);
            acc = Vector512.FusedMultiplyAdd(S8x16(((qs & Vector128.Create((byte)0xF)) | hLo).AsSByte() - Vector128.Create((sbyte)16)) * d, Vector512.Load(x), acc);
            return Vector512.FusedMultiplyAdd(S8x16((Vector128.ShiftRightLogical(qs, 4) | hHi).AsSByte() - Vector128.Create((sbyte)16)) * d, Vector512.Load(x + 16), acc);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q4or5K256(byte* b, float* x, bool q5, ref Vector256<float> a0, ref Vector256<float> a1)
    {
        var nib = Vector128.Create((byte)0xF);
        Vector128<byte> one = Vector128.Create((byte)1), two = Vector128.Create((byte)2);
        float d = F16(b), min = F16(b + 2);
        byte* sc = b + 4, qh = b + 16, ql = b + (q5 ? 48 : 16);
        Vector128<byte> h0 = q5 ? Vector128.Load(qh) : default, h1 = q5 ? Vector128.Load(qh + 16) : default;
        for (int j = 0; j < 4; j++, ql += 32)
        {
            var (s1, m1) = ScaleMin(2 * j, sc);
            var (s2, m2) = ScaleMin(2 * j + 1, sc);
            Vector256<float> d1 = Vector256.Create(d * s1), n1 = Vector256.Create(min * m1), d2 = Vector256.Create(d * s2), n2 = Vector256.Create(min * m2);
            var c0 = Vector128.Load(ql);
            var c1 = Vector128.Load(ql + 16);
            Vector128<byte> lo0 = c0 & nib, lo1 = c1 & nib, hi0 = Vector128.ShiftRightLogical(c0, 4), hi1 = Vector128.ShiftRightLogical(c1, 4);
            if (q5)
            {
                // bits 2j, 2j + 1 of qh (shifted down 2 a round below: constant byte shifts only)
                lo0 |= (h0 & one) << 4;
                lo1 |= (h1 & one) << 4;
                hi0 |= (h0 & two) << 3;
                hi1 |= (h1 & two) << 3;
                h0 = Vector128.ShiftRightLogical(h0, 2);
                h1 = Vector128.ShiftRightLogical(h1, 2);
            }
            float* xj = x + 64 * j;
            Fma16(lo0, d1, n1, xj, ref a0, ref a1);
            Fma16(lo1, d1, n1, xj + 16, ref a0, ref a1);
            Fma16(hi0, d2, n2, xj + 32, ref a0, ref a1);
            Fma16(hi1, d2, n2, xj + 48, ref a0, ref a1);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q4or5K512(byte* b, float* x, bool q5, Vector512<float> acc)
    {
        var nib = Vector128.Create((byte)0xF);
        Vector128<byte> one = Vector128.Create((byte)1), two = Vector128.Create((byte)2);
        float d = F16(b), min = F16(b + 2);
        byte* sc = b + 4, qh = b + 16, ql = b + (q5 ? 48 : 16);
        Vector128<byte> h0 = q5 ? Vector128.Load(qh) : default, h1 = q5 ? Vector128.Load(qh + 16) : default;
        for (int j = 0; j < 4; j++, ql += 32)
        {
            var (s1, m1) = ScaleMin(2 * j, sc);
            var (s2, m2) = ScaleMin(2 * j + 1, sc);
            Vector512<float> d1 = Vector512.Create(d * s1), n1 = Vector512.Create(min * m1), d2 = Vector512.Create(d * s2), n2 = Vector512.Create(min * m2);
            var c0 = Vector128.Load(ql);
            var c1 = Vector128.Load(ql + 16);
            Vector128<byte> lo0 = c0 & nib, lo1 = c1 & nib, hi0 = Vector128.ShiftRightLogical(c0, 4), hi1 = Vector128.ShiftRightLogical(c1, 4);
            if (q5)
            {
                // bits 2j, 2j + 1 of qh (shifted down 2 a round below: constant byte shifts only)
                lo0 |= (h0 & one) << 4;
                lo1 |= (h1 & one) << 4;
                hi0 |= (h0 & two) << 3;
                hi1 |= (h1 & two) << 3;
                h0 = Vector128.ShiftRightLogical(h0, 2);
                h1 = Vector128.ShiftRightLogical(h1, 2);
            }
            float* xj = x + 64 * j;
            acc = Vector512.FusedMultiplyAdd(d1 * U8x16(lo0) - n1, Vector512.Load(xj), acc);
            acc = Vector512.FusedMultiplyAdd(d1 * U8x16(lo1) - n1, Vector512.Load(xj + 16), acc);
            acc = Vector512.FusedMultiplyAdd(d2 * U8x16(hi0) - n2, Vector512.Load(xj + 32), acc);
            acc = Vector512.FusedMultiplyAdd(d2 * U8x16(hi1) - n2, Vector512.Load(xj + 48), acc);
        }
        return acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum(Vector256<float> a0, Vector256<float> a1)
    {
        var l = stackalloc float[Lanes];
        a0.Store(l);
        a1.Store(l + 8);
        return StoredKernels.Reduce(l);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum(Vector512<float> acc)
    {
        var l = stackalloc float[Lanes];
        acc.Store(l);
        return StoredKernels.Reduce(l);
    }

    private static float V256(StoredType t, byte* row, float* x, int cols) => t switch
    {
        StoredType.Q4_K => Row256<Q4K>(row, x, cols, 144, 256),
        StoredType.Q5_K => Row256<Q5K>(row, x, cols, 176, 256),
        StoredType.Q6_K => Row256<Q6K>(row, x, cols, 210, 256),
        StoredType.Q2_K => Row256<Q2K>(row, x, cols, 84, 256),
        _ => Row256<Q50>(row, x, cols, 22, 32),
    };

    private static float V512(StoredType t, byte* row, float* x, int cols) => t switch
    {
        StoredType.Q4_K => Row512<Q4K>(row, x, cols, 144, 256),
        StoredType.Q5_K => Row512<Q5K>(row, x, cols, 176, 256),
        StoredType.Q6_K => Row512<Q6K>(row, x, cols, 210, 256),
        StoredType.Q2_K => Row512<Q2K>(row, x, cols, 84, 256),
        _ => Row512<Q50>(row, x, cols, 22, 32),
    };

    private static float Row256<T>(byte* row, float* x, int cols, int bb, int bv) where T : struct, IBlock256
    {
        Vector256<float> a0 = default, a1 = default;
        for (int i = 0; i < cols; i += bv, row += bb) T.Run(row, x + i, ref a0, ref a1);
        return Sum(a0, a1);
    }

    private static float Row512<T>(byte* row, float* x, int cols, int bb, int bv) where T : struct, IBlock512
    {
        var acc = Vector512<float>.Zero;
        for (int i = 0; i < cols; i += bv, row += bb) acc = T.Run(row, x + i, acc);
        return Sum(acc);
    }

    /// <summary>
    /// Q6_K's codes q - 32 for the four 16-value groups g = 0..3 that share 16 bytes of qh (bits 2g, 2g + 1) and of ql:
    /// g = 0 / 2 take the low / high nibbles of <paramref name="ql0"/>, g = 1 / 3 those of <paramref name="ql1"/> (32 bytes on).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector128<sbyte>, Vector128<sbyte>, Vector128<sbyte>, Vector128<sbyte>) Q6Codes(Vector128<byte> ql0, Vector128<byte> ql1, Vector128<byte> qh)
    {
        var nib = Vector128.Create((byte)0xF);
        var hi2 = Vector128.Create((byte)0x30);
        var bias = Vector128.Create((sbyte)32);
        return (((ql0 & nib) | ((qh << 4) & hi2)).AsSByte() - bias,
                ((ql1 & nib) | ((qh << 2) & hi2)).AsSByte() - bias,
                (Vector128.ShiftRightLogical(ql0, 4) | (qh & hi2)).AsSByte() - bias,
                (Vector128.ShiftRightLogical(ql1, 4) | (Vector128.ShiftRightLogical(qh, 2) & hi2)).AsSByte() - bias);
    }

    /// <summary>Q5_0's 32 fifth bits as bytes 0x10 / 0: bits 0-15 (weights 0-15), bits 16-31 (weights 16-31).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector128<byte> Lo, Vector128<byte> Hi) Q5Bits(uint qh)
    {
        var v = Vector128.Create(qh).AsByte();
        var bit = Vector128.Create((byte)1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
        var lo = Vector128.Shuffle(v, Vector128.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
        var hi = Vector128.Shuffle(v, Vector128.Create((byte)2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
        var sixteen = Vector128.Create((byte)0x10);
        return (Vector128.Equals(lo & bit, bit) & sixteen, Vector128.Equals(hi & bit, bit) & sixteen);
    }

    // ---- V512: the 16 lanes in one register ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> U8x16(Vector128<byte> b) => Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(b));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> S8x16(Vector128<sbyte> b) => Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(b));

    // ---- V128 (portable Vector128): lanes 0-3, 4-7, 8-11, 12-15 in a0..a3 ----

    private struct Acc4 { public Vector128<float> A0, A1, A2, A3; }

    /// <summary>16 values as signed int16 (two halves), one scale: w = d q - m (m zero for the symmetric types).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fma16(Vector128<short> q0, Vector128<short> q1, Vector128<float> d, Vector128<float> m, bool minus, float* x, ref Acc4 a)
    {
        a.A0 = Vector128.FusedMultiplyAdd(W(Vector128.WidenLower(q0), d, m, minus), Vector128.Load(x), a.A0);
        a.A1 = Vector128.FusedMultiplyAdd(W(Vector128.WidenUpper(q0), d, m, minus), Vector128.Load(x + 4), a.A1);
        a.A2 = Vector128.FusedMultiplyAdd(W(Vector128.WidenLower(q1), d, m, minus), Vector128.Load(x + 8), a.A2);
        a.A3 = Vector128.FusedMultiplyAdd(W(Vector128.WidenUpper(q1), d, m, minus), Vector128.Load(x + 12), a.A3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> W(Vector128<int> q, Vector128<float> d, Vector128<float> m, bool minus) =>
        minus ? d * Vector128.ConvertToSingle(q) - m : Vector128.ConvertToSingle(q) * d;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fma16(Vector128<sbyte> q, Vector128<float> d, Vector128<float> m, bool minus, float* x, ref Acc4 a)
    {
        var (q0, q1) = Vector128.Widen(q);
        Fma16(q0, q1, d, m, minus, x, ref a);
    }

    private static float V128(StoredType t, byte* row, float* x, int cols)
    {
        var a = new Acc4();
        var nib = Vector128.Create((byte)0xF);
        switch (t)
        {
            case StoredType.Q2_K:
            {
                var three = Vector128.Create((byte)3);
                for (int i = 0; i < cols; i += 256, row += 84)
                {
                    float d = F16(row + 80), min = F16(row + 82);
                    float* xb = x + i;
                    for (int n = 0, k = 0; n < 2; n++)
                    {
                        Vector128<byte> q0 = Vector128.Load(row + 16 + 32 * n), q1 = Vector128.Load(row + 32 + 32 * n);
                        for (int s = 0; s < 4; s++, k += 2, xb += 32)
                        {
                            byte s0 = row[k], s1 = row[k + 1];
                            Fma16((q0 & three).AsSByte(), Vector128.Create(d * (s0 & 0xF)), Vector128.Create(min * (s0 >> 4)), true, xb, ref a);
                            Fma16((q1 & three).AsSByte(), Vector128.Create(d * (s1 & 0xF)), Vector128.Create(min * (s1 >> 4)), true, xb + 16, ref a);
                            q0 = Vector128.ShiftRightLogical(q0, 2);
                            q1 = Vector128.ShiftRightLogical(q1, 2);
                        }
                    }
                }
                break;
            }
            case StoredType.Q4_K or StoredType.Q5_K:
            {
                bool q5 = t == StoredType.Q5_K;
                int bb = q5 ? 176 : 144;
                Vector128<byte> one = Vector128.Create((byte)1), two = Vector128.Create((byte)2);
                for (int i = 0; i < cols; i += 256, row += bb)
                {
                    float d = F16(row), min = F16(row + 2);
                    byte* sc = row + 4, qh = row + 16, ql = row + (q5 ? 48 : 16);
                    Vector128<byte> h0 = q5 ? Vector128.Load(qh) : default, h1 = q5 ? Vector128.Load(qh + 16) : default;
                    for (int j = 0; j < 4; j++, ql += 32)
                    {
                        var (s1, m1) = ScaleMin(2 * j, sc);
                        var (s2, m2) = ScaleMin(2 * j + 1, sc);
                        Vector128<float> d1 = Vector128.Create(d * s1), n1 = Vector128.Create(min * m1), d2 = Vector128.Create(d * s2), n2 = Vector128.Create(min * m2);
                        var c0 = Vector128.Load(ql);
                        var c1 = Vector128.Load(ql + 16);
                        Vector128<byte> lo0 = c0 & nib, lo1 = c1 & nib, hi0 = Vector128.ShiftRightLogical(c0, 4), hi1 = Vector128.ShiftRightLogical(c1, 4);
                        if (q5)
                        {
                            // bits 2j, 2j + 1 of qh (shifted down 2 a round below: constant byte shifts only)
                            lo0 |= (h0 & one) << 4;
                            lo1 |= (h1 & one) << 4;
                            hi0 |= (h0 & two) << 3;
                            hi1 |= (h1 & two) << 3;
                            h0 = Vector128.ShiftRightLogical(h0, 2);
                            h1 = Vector128.ShiftRightLogical(h1, 2);
                        }
                        float* xj = x + i + 64 * j;
                        // codes are 0..31: as sbyte they are the same non-negative values
                        Fma16(lo0.AsSByte(), d1, n1, true, xj, ref a);
                        Fma16(lo1.AsSByte(), d1, n1, true, xj + 16, ref a);
                        Fma16(hi0.AsSByte(), d2, n2, true, xj + 32, ref a);
                        Fma16(hi1.AsSByte(), d2, n2, true, xj + 48, ref a);
                    }
                }
                break;
            }
            case StoredType.Q6_K:
            {
                for (int i = 0; i < cols; i += 256, row += 210)
                {
                    float d = F16(row + 208);
                    for (int n = 0; n < 2; n++)
                    {
                        byte* ql = row + 64 * n, qh = row + 128 + 32 * n;
                        sbyte* sc = (sbyte*)row + 192 + 8 * n;
                        float* xn = x + i + 128 * n;
                        var (p0, p1, p2, p3) = Q6Codes(Vector128.Load(ql), Vector128.Load(ql + 32), Vector128.Load(qh));           // values 0-15, 32-47, 64-79, 96-111
                        var (r0, r1, r2, r3) = Q6Codes(Vector128.Load(ql + 16), Vector128.Load(ql + 48), Vector128.Load(qh + 16)); // 16-31, 48-63, 80-95, 112-127
                        // in element order (each lane's accumulation order): group k covers values 16k .. 16k + 15, scale sc[k]
                        Fma16(p0, Vector128.Create(d * sc[0]), default, false, xn + 0 * 16, ref a);
                        Fma16(r0, Vector128.Create(d * sc[1]), default, false, xn + 1 * 16, ref a);
                        Fma16(p1, Vector128.Create(d * sc[2]), default, false, xn + 2 * 16, ref a);
                        Fma16(r1, Vector128.Create(d * sc[3]), default, false, xn + 3 * 16, ref a);
                        Fma16(p2, Vector128.Create(d * sc[4]), default, false, xn + 4 * 16, ref a);
                        Fma16(r2, Vector128.Create(d * sc[5]), default, false, xn + 5 * 16, ref a);
                        Fma16(p3, Vector128.Create(d * sc[6]), default, false, xn + 6 * 16, ref a);
                        Fma16(r3, Vector128.Create(d * sc[7]), default, false, xn + 7 * 16, ref a);
                    }
                }
                break;
            }
            default: // Q5_0
                for (int i = 0; i < cols; i += 32, row += 22)
                {
                    var d = Vector128.Create(F16(row));
                    var (hLo, hHi) = Q5Bits(*(uint*)(row + 2));
                    var qs = Vector128.Load(row + 6);
                    Fma16(((qs & nib) | hLo).AsSByte() - Vector128.Create((sbyte)16), d, default, false, x + i, ref a);
                    Fma16((Vector128.ShiftRightLogical(qs, 4) | hHi).AsSByte() - Vector128.Create((sbyte)16), d, default, false, x + i + 16, ref a);
                }
                break;
        }
        var l = stackalloc float[Lanes];
        a.A0.Store(l);
        a.A1.Store(l + 4);
        a.A2.Store(l + 8);
        a.A3.Store(l + 12);
        return StoredKernels.Reduce(l);
    }
}
