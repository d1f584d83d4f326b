using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Workbench.Engine.Formats;

namespace Workbench.Engine.LowBit;

/// <summary>
/// The dot products of <see cref="StoredMatrix"/> for ggml's K types (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: super-blocks of 256)
/// and the 32-weight types Q5_0 (the type llama-quantize's Q4_K_M falls back to when rows are not whole super-blocks),
/// Q4_1 and Q5_1, computed from the stored blocks.
///
/// <para>The arithmetic: each weight is dequantized on the fly to exactly ggml's value (its reference to_float: fp16
/// scales widened exactly; Q2_K / Q4_K / Q5_K <c>(d * sc) * q - dmin * m</c>, Q3_K <c>(d * (sc - 32)) * q</c>, Q6_K
/// <c>(d * sc) * (q - 32)</c>, Q5_0 <c>(q - 16) * d</c>, Q4_1 / Q5_1 <c>q * d + m</c>, no fused multiply-add), then fused
/// into the 16-lane layout: element i of a row goes to lane i mod 16, <c>lane = fma(w_i, x_i, lane)</c>, and the fixed
/// 16-lane tree sums them. So a row's output is the fp32 dot product of ggml's dequantized weights with x (only
/// accumulation rounding), the activations are not quantized (llama.cpp quantizes them to Q8_K / Q8_0 / Q8_1 and takes
/// integer dots, about 0.2 off in stories260K's logits, see GgufQuantTests), and the GEMM takes its dots from a row
/// decoded once to fp32 (by the same SIMD block decoders, storing the weights instead of fusing them) with the same lane
/// operations (<see cref="DotDecoded"/>), equal to the GEMV token by token.</para>
///
/// <para>The scalar twin (<see cref="Scalar"/>) decodes a block with <see cref="DecodeBlock"/> (the load-time
/// dequantizer) and runs the lane loop. Each type's SIMD decode is written once (<see cref="IBlock"/>), generic over the
/// register width (<see cref="IWidth{TSelf}"/>): V512 holds the 16 lanes in one register, V256 in two, V128 in four; the
/// JIT specialises every (type, width) pair, and every path gives the scalar twin's bits.</para>
/// </summary>
internal static unsafe class StoredKernelsK
{
    private const int Lanes = 16;

    /// <summary>Values per block of a type (256 for the K types, 32 for Q5_0, Q4_1, Q5_1).</summary>
    internal static int BlockValues(StoredType t) => t is StoredType.Q5_0 or StoredType.Q4_1 or StoredType.Q5_1 ? 32 : 256;

    /// <summary>Bytes per block, as ggml's type traits.</summary>
    internal static int BlockBytes(StoredType t) => t switch
    {
        StoredType.Q5_0 => 22,
        StoredType.Q4_1 => 20,
        StoredType.Q5_1 => 24,
        StoredType.Q2_K => 84,
        StoredType.Q3_K => 110,
        StoredType.Q4_K => 144,
        StoredType.Q5_K => 176,
        StoredType.Q6_K => 210,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "not a K-family stored type"),
    };

    internal static bool Handles(StoredType t) => t is StoredType.Q5_0 or StoredType.Q4_1 or StoredType.Q5_1
        or StoredType.Q2_K or StoredType.Q3_K or StoredType.Q4_K or StoredType.Q5_K or StoredType.Q6_K;

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
        StoredType.Q5_0 => GgmlType.Q5_0, StoredType.Q4_1 => GgmlType.Q4_1, StoredType.Q5_1 => GgmlType.Q5_1,
        StoredType.Q2_K => GgmlType.Q2_K, StoredType.Q3_K => GgmlType.Q3_K,
        StoredType.Q4_K => GgmlType.Q4_K, StoredType.Q5_K => GgmlType.Q5_K, StoredType.Q6_K => GgmlType.Q6_K,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "not a K-family stored type"),
    };

    /// <summary>One block's values, exactly as ggml's reference to_float gives them (<see cref="GgufQuants.Dequantize"/>).</summary>
    internal static void DecodeBlock(StoredType t, byte* b, float* y) => DecodeRow(t, b, y, BlockValues(t));

    /// <summary>A whole row (cols a multiple of the block) as ggml's fp32 values.</summary>
    internal static void DecodeRow(StoredType t, byte* row, float* y, int cols) =>
        GgufQuants.Dequantize(Ggml(t), new ReadOnlySpan<byte>(row, checked((int)((long)cols / BlockValues(t) * BlockBytes(t)))), new Span<float>(y, cols));

    /// <summary>
    /// A whole row as ggml's fp32 values on path p (the GEMM's rows): the SIMD block decoders storing the weights they
    /// form for the dots, so the values are the scalar decoder's bit for bit (tests check every path).
    /// </summary>
    internal static void DecodeRow(StoredType t, byte* row, float* y, int cols, Tensors.IsaPath p)
    {
        switch (p)
        {
            case Tensors.IsaPath.V512: Row<W512<Store>>(t, row, y, cols); break;
            case Tensors.IsaPath.V256: Row<W256<Store>>(t, row, y, cols); break;
            case Tensors.IsaPath.V128: Row<W128<Store>>(t, row, y, cols); break;
            default: DecodeRow(t, row, y, cols); break;
        }
    }

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
        Tensors.IsaPath.V512 => Row<W512<Fuse>>(t, row, x, cols),
        Tensors.IsaPath.V256 => Row<W256<Fuse>>(t, row, x, cols),
        Tensors.IsaPath.V128 => Row<W128<Fuse>>(t, row, x, cols),
        _ => Scalar(t, row, x, cols),
    };

    /// <summary>
    /// A row already decoded to ggml's values (the GEMM's), dotted the way every K GEMV path does: lane i mod 16 +=
    /// w_i x_i (fused), in row order, then the 16-lane tree; so the GEMM equals the GEMV bit for bit.
    /// </summary>
    internal static float DotDecoded(float* w, float* x, int cols, Tensors.IsaPath p)
    {
        switch (p)
        {
            case Tensors.IsaPath.V512: return Plain<W512<Fuse>>(w, x, cols);
            case Tensors.IsaPath.V256: return Plain<W256<Fuse>>(w, x, cols);
            case Tensors.IsaPath.V128: return Plain<W128<Fuse>>(w, x, cols);
        }
        var l = stackalloc float[Lanes];
        for (int j = 0; j < Lanes; j++) l[j] = 0;
        for (int k = 0; k < cols; k++) l[k & 15] = MathF.FusedMultiplyAdd(w[k], x[k], l[k & 15]);
        return StoredKernels.Reduce(l);
    }

    private static float Plain<W>(float* w, float* x, int cols) where W : struct, IWidth<W>
    {
        W a = default;
        for (int k = 0; k < cols; k += 16) W.Fma(ref a, w + k, x + k);
        return W.Sum(a);
    }

    private static float Row<W>(StoredType t, byte* row, float* x, int cols) where W : struct, IWidth<W> => t switch
    {
        StoredType.Q4_K => Row<Q4K, W>(row, x, cols),
        StoredType.Q5_K => Row<Q5K, W>(row, x, cols),
        StoredType.Q6_K => Row<Q6K, W>(row, x, cols),
        StoredType.Q2_K => Row<Q2K, W>(row, x, cols),
        StoredType.Q3_K => Row<Q3K, W>(row, x, cols),
        StoredType.Q4_1 => Row<Q41, W>(row, x, cols),
        StoredType.Q5_1 => Row<Q51, W>(row, x, cols),
        _ => Row<Q50, W>(row, x, cols),
    };

    private static float Row<B, W>(byte* row, float* x, int cols) where B : struct, IBlock where W : struct, IWidth<W>
    {
        W a = default;
        for (int i = 0; i < cols; i += B.Values, row += B.Bytes) B.Run(row, x + i, ref a);
        return W.Sum(a);
    }

    // ---- the register widths: 16 fp32 lanes and the few weight forms every type's decode is written in ----

    /// <summary>
    /// One SIMD width's 16 fp32 lanes (lane i mod 16 of a row's dot product) and the operations the block decoders use,
    /// each on 16 consecutive weights at <c>x</c>: the weights formed exactly as ggml forms them (separate multiply and
    /// add, never fused), then <c>lane = fma(w, x, lane)</c>.
    /// </summary>
    private interface IWidth<TSelf> where TSelf : struct, IWidth<TSelf>
    {
        /// <summary>16 unsigned codes, one scale and min: w = d q - m (Q2_K, Q4_K, Q5_K).</summary>
        static abstract void ScaleMinus(ref TSelf a, Vector128<byte> q, float d, float m, float* x);
        /// <summary>32 values (codes q0 then q1) sharing the scale and min (broadcast once: the JIT does not merge two).</summary>
        static abstract void ScaleMinus(ref TSelf a, Vector128<byte> q0, Vector128<byte> q1, float d, float m, float* x);
        /// <summary>32 unsigned codes (q0 then q1), one scale and offset: w = q d + m (Q4_1, Q5_1).</summary>
        static abstract void ScalePlus(ref TSelf a, Vector128<byte> q0, Vector128<byte> q1, float d, float m, float* x);
        /// <summary>16 signed codes, one scale: w = q d (Q3_K, Q6_K).</summary>
        static abstract void Scale(ref TSelf a, Vector128<sbyte> q, float d, float* x);
        /// <summary>32 signed codes (q0 then q1), one scale (Q5_0).</summary>
        static abstract void Scale(ref TSelf a, Vector128<sbyte> q0, Vector128<sbyte> q1, float d, float* x);
        /// <summary>16 weights already fp32 (the GEMM's decoded rows).</summary>
        static abstract void Fma(ref TSelf a, float* w, float* x);
        /// <summary>The 16 lanes by the fixed tree (<see cref="StoredKernels.Reduce"/>).</summary>
        static abstract float Sum(TSelf a); // by value: a ref to the accumulators would keep them in memory
    }

    /// <summary>What a width does with the weights it forms: fuse them into the lanes (<see cref="Fuse"/>) or store them (<see cref="Store"/>).</summary>
    private interface IMode { static abstract bool Stores { get; } }

    /// <summary>The dot product: lane += w x.</summary>
    private struct Fuse : IMode { public static bool Stores => false; }

    /// <summary>The GEMM's row decode: the weights stored where x points (the row's fp32 scratch), exactly ggml's values.</summary>
    private struct Store : IMode { public static bool Stores => true; }

    /// <summary>AVX-512: the 16 lanes in one register.</summary>
    private struct W512<M> : IWidth<W512<M>> where M : struct, IMode
    {
        private Vector512<float> _v;

        /// <summary>16 weights w at x: lane += w x (Fuse), or stored at x (Store).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Put(ref Vector512<float> acc, Vector512<float> w, float* x)
        {
            if (M.Stores) w.Store(x);
            else acc = Vector512.FusedMultiplyAdd(w, Vector512.Load(x), acc);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> U(Vector128<byte> b) => Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(b));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> S(Vector128<sbyte> b) => Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(b));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void ScaleMinus(ref W512<M> a, Vector128<byte> q, float d, float m, float* x) =>
            Put(ref a._v, Vector512.Create(d) * U(q) - Vector512.Create(m), x);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void ScaleMinus(ref W512<M> a, Vector128<byte> q0, Vector128<byte> q1, float d, float m, float* x)
        {
            Vector512<float> vd = Vector512.Create(d), vm = Vector512.Create(m);
            Put(ref a._v, vd * U(q0) - vm, x);
            Put(ref a._v, vd * U(q1) - vm, x + 16);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void ScalePlus(ref W512<M> a, Vector128<byte> q0, Vector128<byte> q1, float d, float m, float* x)
        {
            Vector512<float> vd = Vector512.Create(d), vm = Vector512.Create(m);
            Put(ref a._v, U(q0) * vd + vm, x);
            Put(ref a._v, U(q1) * vd + vm, x + 16);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Scale(ref W512<M> a, Vector128<sbyte> q, float d, float* x) =>
            Put(ref a._v, S(q) * Vector512.Create(d), x);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Scale(ref W512<M> a, Vector128<sbyte> q0, Vector128<sbyte> q1, float d, float* x)
        {
            var vd = Vector512.Create(d);
            Put(ref a._v, S(q0) * vd, x);
            Put(ref a._v, S(q1) * vd, x + 16);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Fma(ref W512<M> a, float* w, float* x) => Put(ref a._v, Vector512.Load(w), x);

        public static float Sum(W512<M> a)
        {
            var l = stackalloc float[Lanes];
            a._v.Store(l);
            return StoredKernels.Reduce(l);
        }
    }

    /// <summary>AVX2: lanes 0-7 in one register, 8-15 in the other.</summary>
    private struct W256<M> : IWidth<W256<M>> where M : struct, IMode
    {
        private Vector256<float> _a0, _a1;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Put(ref Vector256<float> acc, Vector256<float> w, float* x)
        {
            if (M.Stores) w.Store(x);
            else acc = Vector256.FusedMultiplyAdd(w, Vector256.Load(x), acc);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> U(Vector128<byte> b) => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(b));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> S(Vector128<sbyte> b) => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(b));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector128<byte> Hi(Vector128<byte> b) => Sse2.ShiftRightLogical128BitLane(b, 8);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector128<sbyte> Hi(Vector128<sbyte> b) => Sse2.ShiftRightLogical128BitLane(b, 8);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void ScaleMinus(ref W256<M> a, Vector128<byte> q, float d, float m, float* x)
        {
            Vector256<float> vd = Vector256.Create(d), vm = Vector256.Create(m);
            Put(ref a._a0, vd * U(q) - vm, x);
            Put(ref a._a1, vd * U(Hi(q)) - vm, x + 8);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void ScaleMinus(ref W256<M> a, Vector128<byte> q0, Vector128<byte> q1, float d, float m, float* x)
        {
            Vector256<float> vd = Vector256.Create(d), vm = Vector256.Create(m);
            Put(ref a._a0, vd * U(q0) - vm, x);
            Put(ref a._a1, vd * U(Hi(q0)) - vm, x + 8);
            Put(ref a._a0, vd * U(q1) - vm, x + 16);
            Put(ref a._a1, vd * U(Hi(q1)) - vm, x + 24);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void ScalePlus(ref W256<M> a, Vector128<byte> q0, Vector128<byte> q1, float d, float m, float* x)
        {
            Vector256<float> vd = Vector256.Create(d), vm = Vector256.Create(m);
            Put(ref a._a0, U(q0) * vd + vm, x);
            Put(ref a._a1, U(Hi(q0)) * vd + vm, x + 8);
            Put(ref a._a0, U(q1) * vd + vm, x + 16);
            Put(ref a._a1, U(Hi(q1)) * vd + vm, x + 24);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Scale(ref W256<M> a, Vector128<sbyte> q, float d, float* x)
        {
            var vd = Vector256.Create(d);
            Put(ref a._a0, S(q) * vd, x);
            Put(ref a._a1, S(Hi(q)) * vd, x + 8);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Scale(ref W256<M> a, Vector128<sbyte> q0, Vector128<sbyte> q1, float d, float* x)
        {
            var vd = Vector256.Create(d);
            Put(ref a._a0, S(q0) * vd, x);
            Put(ref a._a1, S(Hi(q0)) * vd, x + 8);
            Put(ref a._a0, S(q1) * vd, x + 16);
            Put(ref a._a1, S(Hi(q1)) * vd, x + 24);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Fma(ref W256<M> a, float* w, float* x)
        {
            Put(ref a._a0, Vector256.Load(w), x);
            Put(ref a._a1, Vector256.Load(w + 8), x + 8);
        }

        public static float Sum(W256<M> a)
        {
            var l = stackalloc float[Lanes];
            a._a0.Store(l);
            a._a1.Store(l + 8);
            return StoredKernels.Reduce(l);
        }
    }

    /// <summary>Portable Vector128 (SSE, NEON): lanes 0-3, 4-7, 8-11, 12-15 in four registers.</summary>
    private struct W128<M> : IWidth<W128<M>> where M : struct, IMode
    {
        private Vector128<float> _a0, _a1, _a2, _a3;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Put(ref Vector128<float> acc, Vector128<float> w, float* x)
        {
            if (M.Stores) w.Store(x);
            else acc = Vector128.FusedMultiplyAdd(w, Vector128.Load(x), acc);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static (Vector128<float>, Vector128<float>, Vector128<float>, Vector128<float>) U(Vector128<byte> b)
        {
            var (lo, hi) = Vector128.Widen(b);
            return (Vector128.ConvertToSingle(Vector128.WidenLower(lo).AsInt32()), Vector128.ConvertToSingle(Vector128.WidenUpper(lo).AsInt32()),
                    Vector128.ConvertToSingle(Vector128.WidenLower(hi).AsInt32()), Vector128.ConvertToSingle(Vector128.WidenUpper(hi).AsInt32()));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static (Vector128<float>, Vector128<float>, Vector128<float>, Vector128<float>) S(Vector128<sbyte> b)
        {
            var (lo, hi) = Vector128.Widen(b);
            return (Vector128.ConvertToSingle(Vector128.WidenLower(lo)), Vector128.ConvertToSingle(Vector128.WidenUpper(lo)),
                    Vector128.ConvertToSingle(Vector128.WidenLower(hi)), Vector128.ConvertToSingle(Vector128.WidenUpper(hi)));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Add(ref W128<M> a, Vector128<float> w0, Vector128<float> w1, Vector128<float> w2, Vector128<float> w3, float* x)
        {
            Put(ref a._a0, w0, x);
            Put(ref a._a1, w1, x + 4);
            Put(ref a._a2, w2, x + 8);
            Put(ref a._a3, w3, x + 12);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void ScaleMinus(ref W128<M> a, Vector128<byte> q, float d, float m, float* x)
        {
            Vector128<float> vd = Vector128.Create(d), vm = Vector128.Create(m);
            var (q0, q1, q2, q3) = U(q);
            Add(ref a, vd * q0 - vm, vd * q1 - vm, vd * q2 - vm, vd * q3 - vm, x);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void ScaleMinus(ref W128<M> a, Vector128<byte> q0, Vector128<byte> q1, float d, float m, float* x)
        {
            Vector128<float> vd = Vector128.Create(d), vm = Vector128.Create(m);
            var (w0, w1, w2, w3) = U(q0);
            Add(ref a, vd * w0 - vm, vd * w1 - vm, vd * w2 - vm, vd * w3 - vm, x);
            (w0, w1, w2, w3) = U(q1);
            Add(ref a, vd * w0 - vm, vd * w1 - vm, vd * w2 - vm, vd * w3 - vm, x + 16);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void ScalePlus(ref W128<M> a, Vector128<byte> q0, Vector128<byte> q1, float d, float m, float* x)
        {
            Vector128<float> vd = Vector128.Create(d), vm = Vector128.Create(m);
            var (w0, w1, w2, w3) = U(q0);
            Add(ref a, w0 * vd + vm, w1 * vd + vm, w2 * vd + vm, w3 * vd + vm, x);
            (w0, w1, w2, w3) = U(q1);
            Add(ref a, w0 * vd + vm, w1 * vd + vm, w2 * vd + vm, w3 * vd + vm, x + 16);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Scale(ref W128<M> a, Vector128<sbyte> q, float d, float* x)
        {
            var vd = Vector128.Create(d);
            var (q0, q1, q2, q3) = S(q);
            Add(ref a, q0 * vd, q1 * vd, q2 * vd, q3 * vd, x);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Scale(ref W128<M> a, Vector128<sbyte> q0, Vector128<sbyte> q1, float d, float* x)
        {
            var vd = Vector128.Create(d);
            var (w0, w1, w2, w3) = S(q0);
            Add(ref a, w0 * vd, w1 * vd, w2 * vd, w3 * vd, x);
            (w0, w1, w2, w3) = S(q1);
            Add(ref a, w0 * vd, w1 * vd, w2 * vd, w3 * vd, x + 16);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Fma(ref W128<M> a, float* w, float* x) => Add(ref a, Vector128.Load(w), Vector128.Load(w + 4), Vector128.Load(w + 8), Vector128.Load(w + 12), x);

        public static float Sum(W128<M> a)
        {
            var l = stackalloc float[Lanes];
            a._a0.Store(l);
            a._a1.Store(l + 4);
            a._a2.Store(l + 8);
            a._a3.Store(l + 12);
            return StoredKernels.Reduce(l);
        }
    }

    // ---- the block decoders, each written once for every width (weights in element order: each lane's order) ----

    /// <summary>One block's contribution to the 16 lanes (a struct per type, so the row loop is specialised by the JIT).</summary>
    private interface IBlock
    {
        static abstract int Values { get; }
        static abstract int Bytes { get; }
        static abstract void Run<W>(byte* b, float* x, ref W a) where W : struct, IWidth<W>;
    }

    private struct Q4K : IBlock
    {
        public static int Values => 256;
        public static int Bytes => 144;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Run<W>(byte* b, float* x, ref W a) where W : struct, IWidth<W> => Q4or5K(b, x, false, ref a);
    }

    private struct Q5K : IBlock
    {
        public static int Values => 256;
        public static int Bytes => 176;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Run<W>(byte* b, float* x, ref W a) where W : struct, IWidth<W> => Q4or5K(b, x, true, ref a);
    }

    /// <summary>
    /// Q4_K / Q5_K: fp16 d, fp16 dmin, 12 bytes of 6-bit (scale, min) pairs, (Q5_K: 32 bytes of fifth bits), 128 bytes of
    /// nibbles; each 32 bytes give 64 values, the low nibbles with pair 2j, the high ones with pair 2j + 1.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q4or5K<W>(byte* b, float* x, bool q5, ref W a) where W : struct, IWidth<W>
    {
        var nib = Vector128.Create((byte)0xF);
        Vector128<byte> one = Vector128.Create((byte)1), two = Vector128.Create((byte)2);
        float d = F16(b), min = F16(b + 2);
        byte* sc = b + 4, qh = b + 16, ql = b + (q5 ? 48 : 16);
        Vector128<byte> h0 = q5 ? Vector128.Load(qh) : default, h1 = q5 ? Vector128.Load(qh + 16) : default;
        for (int j = 0; j < 4; j++, ql += 32, x += 64)
        {
            var (s1, m1) = ScaleMin(2 * j, sc);
            var (s2, m2) = ScaleMin(2 * j + 1, sc);
            float d1 = d * s1, n1 = min * m1, d2 = d * s2, n2 = min * m2;
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
            W.ScaleMinus(ref a, lo0, lo1, d1, n1, x);
            W.ScaleMinus(ref a, hi0, hi1, d2, n2, x + 32);
        }
    }

    /// <summary>Q6_K: 128 bytes of low nibbles, 64 of high 2 bits, 16 int8 scales, fp16 d; 2 halves of 128 values.</summary>
    private struct Q6K : IBlock
    {
        public static int Values => 256;
        public static int Bytes => 210;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Run<W>(byte* b, float* x, ref W a) where W : struct, IWidth<W>
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
                W.Scale(ref a, p0, d * sc[0], xn + 0 * 16);
                W.Scale(ref a, r0, d * sc[1], xn + 1 * 16);
                W.Scale(ref a, p1, d * sc[2], xn + 2 * 16);
                W.Scale(ref a, r1, d * sc[3], xn + 3 * 16);
                W.Scale(ref a, p2, d * sc[4], xn + 4 * 16);
                W.Scale(ref a, r2, d * sc[5], xn + 5 * 16);
                W.Scale(ref a, p3, d * sc[6], xn + 6 * 16);
                W.Scale(ref a, r3, d * sc[7], xn + 7 * 16);
            }
        }
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

    /// <summary>
    /// Q2_K: 16 scale bytes (low nibble scale, high nibble min), 64 bytes of 2-bit codes, fp16 d, fp16 dmin: per 32 code
    /// bytes, shifts 0, 2, 4, 6 each give 2 x 16 values (scale k, then k + 1), in element order.
    /// </summary>
    private struct Q2K : IBlock
    {
        public static int Values => 256;
        public static int Bytes => 84;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Run<W>(byte* b, float* x, ref W a) where W : struct, IWidth<W>
        {
            float d = F16(b + 80), min = F16(b + 82);
            var three = Vector128.Create((byte)3);
            for (int n = 0, k = 0; n < 2; n++)
            {
                Vector128<byte> q0 = Vector128.Load(b + 16 + 32 * n), q1 = Vector128.Load(b + 32 + 32 * n);
                for (int s = 0; s < 4; s++, k += 2, x += 32)
                {
                    byte s0 = b[k], s1 = b[k + 1];
                    W.ScaleMinus(ref a, q0 & three, d * (s0 & 0xF), min * (s0 >> 4), x);
                    W.ScaleMinus(ref a, q1 & three, d * (s1 & 0xF), min * (s1 >> 4), x + 16);
                    q0 = Vector128.ShiftRightLogical(q0, 2);
                    q1 = Vector128.ShiftRightLogical(q1, 2);
                }
            }
        }
    }

    /// <summary>
    /// Q3_K: 32 bytes of high bits (hmask), 64 bytes of 2-bit codes, 12 bytes of 6-bit scales, fp16 d. Per 32 code bytes,
    /// shifts 0, 2, 4, 6 each give 2 x 16 values (scale k, then k + 1); round r (0..7) takes hmask bit r, and a value is
    /// its 2-bit code minus 4 where that bit is clear: (code | bit &lt;&lt; 2) - 4. The 16 scales are unpacked as ggml
    /// does (low 4 bits from bytes 0..7, high 2 bits from bytes 8..11), all at once.
    /// </summary>
    private struct Q3K : IBlock
    {
        public static int Values => 256;
        public static int Bytes => 110;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Run<W>(byte* b, float* x, ref W a) where W : struct, IWidth<W>
        {
            const uint k1 = 0x03030303, k2 = 0x0f0f0f0f;
            float d = F16(b + 108);
            uint a0 = *(uint*)(b + 96), a1 = *(uint*)(b + 100), tmp = *(uint*)(b + 104);
            // scales[k] - 32 (6-bit scales, so -32..31)
            var sc = Vector128.Create((a0 & k2) | ((tmp & k1) << 4), (a1 & k2) | (((tmp >> 2) & k1) << 4),
                ((a0 >> 4) & k2) | (((tmp >> 4) & k1) << 4), ((a1 >> 4) & k2) | (((tmp >> 6) & k1) << 4)).AsSByte() - Vector128.Create((sbyte)32);
            Vector128<byte> three = Vector128.Create((byte)3), one = Vector128.Create((byte)1);
            Vector128<sbyte> four = Vector128.Create((sbyte)4);
            Vector128<byte> h0 = Vector128.Load(b), h1 = Vector128.Load(b + 16);
            for (int n = 0, k = 0; n < 2; n++)
            {
                Vector128<byte> q0 = Vector128.Load(b + 32 + 32 * n), q1 = Vector128.Load(b + 48 + 32 * n);
                for (int s = 0; s < 4; s++, k += 2, x += 32)
                {
                    W.Scale(ref a, ((q0 & three) | ((h0 & one) << 2)).AsSByte() - four, d * sc.GetElement(k), x);
                    W.Scale(ref a, ((q1 & three) | ((h1 & one) << 2)).AsSByte() - four, d * sc.GetElement(k + 1), x + 16);
                    q0 = Vector128.ShiftRightLogical(q0, 2);
                    q1 = Vector128.ShiftRightLogical(q1, 2);
                    h0 = Vector128.ShiftRightLogical(h0, 1);
                    h1 = Vector128.ShiftRightLogical(h1, 1);
                }
            }
        }
    }

    /// <summary>Q5_0: fp16 d, 32 fifth bits, 16 bytes of nibbles: (q - 16) d.</summary>
    private struct Q50 : IBlock
    {
        public static int Values => 32;
        public static int Bytes => 22;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Run<W>(byte* b, float* x, ref W a) where W : struct, IWidth<W>
        {
            float d = F16(b);
            var (hLo, hHi) = Q5Bits(*(uint*)(b + 2));
            var qs = Vector128.Load(b + 6);
            W.Scale(ref a, ((qs & Vector128.Create((byte)0xF)) | hLo).AsSByte() - Vector128.Create((sbyte)16),
                (Vector128.ShiftRightLogical(qs, 4) | hHi).AsSByte() - Vector128.Create((sbyte)16), d, x);
        }
    }

    /// <summary>Q4_1: fp16 d, fp16 m, 16 bytes of nibbles (value j low nibble of byte j, value 16 + j its high one): q d + m.</summary>
    private struct Q41 : IBlock
    {
        public static int Values => 32;
        public static int Bytes => 20;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Run<W>(byte* b, float* x, ref W a) where W : struct, IWidth<W>
        {
            float d = F16(b), m = F16(b + 2);
            var qs = Vector128.Load(b + 4);
            W.ScalePlus(ref a, qs & Vector128.Create((byte)0xF), Vector128.ShiftRightLogical(qs, 4), d, m, x);
        }
    }

    /// <summary>Q5_1: fp16 d, fp16 m, 32 fifth bits, 16 bytes of nibbles: q d + m.</summary>
    private struct Q51 : IBlock
    {
        public static int Values => 32;
        public static int Bytes => 24;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Run<W>(byte* b, float* x, ref W a) where W : struct, IWidth<W>
        {
            float d = F16(b), m = F16(b + 2);
            var (hLo, hHi) = Q5Bits(*(uint*)(b + 4));
            var qs = Vector128.Load(b + 8);
            W.ScalePlus(ref a, (qs & Vector128.Create((byte)0xF)) | hLo, Vector128.ShiftRightLogical(qs, 4) | hHi, d, m, x);
        }
    }

    /// <summary>Q5_0 / Q5_1's 32 fifth bits as bytes 0x10 / 0: bits 0-15 (weights 0-15), bits 16-31 (weights 16-31).</summary>
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

    // ---- Seeded synthetic blocks (tests, benchmarks) ----

    /// <summary>
    /// Random blocks of a K type (or Q4_1 / Q5_1): every code and packed scale byte uniform, the fp16 super-scales chosen so weights are
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
                case StoredType.Q4_1 or StoredType.Q5_1:
                    WriteF16(blk, 0, 2 * u / (t == StoredType.Q4_1 ? 15 : 31)); // d: q d spans about 2
                    WriteF16(blk, 2, -u);                                       // m: the offset, about -1
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

}
