using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Workbench.Engine.LowBit;

/// <summary>
/// The dot products of <see cref="StoredMatrix"/>, one per stored type and path, each path computing the lane layout
/// documented there (f16 / bf16: 32 fp32 lanes; Q8_0 / Q4_0: integer block dots into 16 fp32 lanes; fixed reduction
/// trees), so every path returns the same bits as its scalar twin (<see cref="HalfScalar"/>, <see cref="QDotScalar"/>,
/// <see cref="PlainScalar"/>). .NET 10 exposes no F16C conversion (and its own Half to float is integer code): the f16
/// widening is a sign-extension, a shift, a mask and one exact multiply by 2^112, exact for every finite value.
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

    // ---- f16 / bf16 from stored bytes: 32 lanes (element i in lane i mod 32), folded 32 -> 16 then Reduce ----

    private const int HalfLanes = 32;
    private const uint SpecialShifted = 0xF800; // (h << 1) at or above this: f16 infinity or NaN

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Reduce32(float* l)
    {
        for (int j = 0; j < 16; j++) l[j] += l[j + 16];
        return Reduce(l);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Widen(ushort h, bool bf16) => bf16 ? BitConverter.Int32BitsToSingle(h << 16) : F16ToF32(h);

    public static float HalfScalar(byte* row, float* x, int cols, bool bf16)
    {
        var l = stackalloc float[HalfLanes];
        for (int j = 0; j < HalfLanes; j++) l[j] = 0;
        return HalfTail(l, (ushort*)row, x, 0, cols, bf16);
    }

    private static float HalfTail(float* l, ushort* h, float* x, int from, int cols, bool bf16)
    {
        for (int i = from; i < cols; i++) l[i & 31] = MathF.FusedMultiplyAdd(Widen(h[i], bf16), x[i], l[i & 31]);
        return Reduce32(l);
    }

    // The fast f16 widening (no F16C in .NET): sign-extend the 16 bits to 32 (vpmovsxwd), shift left by 13 and keep
    // bit 31 and bits 27..0: the sign lands on bit 31 and exponent + mantissa on bits 27..13, so the float is the f16
    // value times 2^-112, exactly (subnormals included); one multiply by 2^112 rebases it. Three operations instead of
    // the exact conversion's nine; wrong only for infinity / NaN, which a running max of (h << 1) detects: a row
    // holding one is recomputed by the scalar twin (same bits by definition).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> F16Fast(Vector256<ushort> h) =>
        ((Avx512F.ConvertToVector512Int32(h.AsInt16()) << 13) & Vector512.Create(unchecked((int)0x8FFFFFFF))).AsSingle() * Vector512.Create(Two112);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> F16Fast(short* h) =>
        ((Avx2.ConvertToVector256Int32(h) << 13) & Vector256.Create(unchecked((int)0x8FFFFFFF))).AsSingle() * Vector256.Create(Two112);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> F16Fast(Vector128<int> s) =>
        ((s << 13) & Vector128.Create(unchecked((int)0x8FFFFFFF))).AsSingle() * Vector128.Create(Two112);

    // With x already times 2^112 (xs, see StoredMatrix.Prepare: exact while every |x| < 2^16), the widened weight
    // w 2^-112 needs no multiply: fma(w 2^-112, x 2^112, acc) rounds the same real product w x, so the same bits.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> F16Shifted(Vector256<ushort> h) =>
        ((Avx512F.ConvertToVector512Int32(h.AsInt16()) << 13) & Vector512.Create(unchecked((int)0x8FFFFFFF))).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> F16Shifted(short* h) =>
        ((Avx2.ConvertToVector256Int32(h) << 13) & Vector256.Create(unchecked((int)0x8FFFFFFF))).AsSingle();

    /// <param name="xs">x times 2^112, or null (then each widened weight is multiplied by 2^112).</param>
    public static float F16V512(byte* row, float* x, float* xs, int cols)
    {
        var h = (ushort*)row;
        Vector512<float> a0 = default, a1 = default;
        var mx = Vector256<ushort>.Zero;
        int i = 0;
        if (xs != null)
            for (; i + HalfLanes <= cols; i += HalfLanes)
            {
                Sse.Prefetch0((byte*)(h + i) + PrefetchAhead); // one line a step, see PrefetchAhead
                var r0 = Vector256.Load(h + i);
                var r1 = Vector256.Load(h + i + 16);
                mx = Vector256.Max(mx, Vector256.Max(r0 << 1, r1 << 1));
                a0 = Vector512.FusedMultiplyAdd(F16Shifted(r0), Vector512.Load(xs + i), a0);
                a1 = Vector512.FusedMultiplyAdd(F16Shifted(r1), Vector512.Load(xs + i + 16), a1);
            }
        else
            for (; i + HalfLanes <= cols; i += HalfLanes)
            {
                var r0 = Vector256.Load(h + i);
                var r1 = Vector256.Load(h + i + 16);
                mx = Vector256.Max(mx, Vector256.Max(r0 << 1, r1 << 1));
                a0 = Vector512.FusedMultiplyAdd(F16Fast(r0), Vector512.Load(x + i), a0);
                a1 = Vector512.FusedMultiplyAdd(F16Fast(r1), Vector512.Load(x + i + 16), a1);
            }
        if (Vector256.GreaterThanOrEqualAny(mx, Vector256.Create((ushort)SpecialShifted))) return HalfScalar(row, x, cols, bf16: false);
        var l = stackalloc float[HalfLanes];
        a0.Store(l);
        a1.Store(l + 16);
        return HalfTail(l, h, x, i, cols, bf16: false);
    }

    public static float Bf16V512(byte* row, float* x, int cols)
    {
        var h = (ushort*)row;
        Vector512<float> a0 = default, a1 = default;
        int i = 0;
        for (; i + HalfLanes <= cols; i += HalfLanes)
        {
            a0 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i)) << 16).AsSingle(), Vector512.Load(x + i), a0);
            a1 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i + 16)) << 16).AsSingle(), Vector512.Load(x + i + 16), a1);
        }
        var l = stackalloc float[HalfLanes];
        a0.Store(l);
        a1.Store(l + 16);
        return HalfTail(l, h, x, i, cols, bf16: true);
    }

    /// <summary>
    /// bf16: below this many columns a GEMV streams one row at a time; from it on, eight rows at a time share each
    /// activation load (<see cref="Bf16V512x8"/>). The fp32 activations of a long row do not stay in L1
    /// beside the streamed weights (L1D is 32 KB on the Zen 4 VM measured; x is 16 KB at 4096 columns, 27 KB at 6912,
    /// 43 KB at 11008), so one row at a time reads x from L2 for every row and the weight stream slows to a third:
    /// f16 2560x6912 one thread 3.4-4.0 ms one row at a time, 2.3 ms eight rows at a time, 2.2 ms a plain read of the
    /// weights; with x cut to 8 KB the one-row kernel ran at the plain read's speed (thread CPU time, interleaved in one
    /// process, load 14-20). Short rows keep one stream, which the prefetcher follows best (f16 6912x2560: 1.67 ms one
    /// row at a time, 2.13 ms eight). The fp32 GEMV split the same way there (<see cref="Tensors.MatMul.GemvTileMinCols"/>,
    /// which reads eight rows at a time at every width on Intel). This threshold now applies to bf16 only: f16 goes eight
    /// rows at a time at every width, asking for the next tile's rows as it reads (see <see cref="F16V512x8"/>). On the
    /// Zen 4 VM one f16 row at a time had won at 2560 columns (6912x2560 2631 / 2008 us, tile / one row) only while the
    /// tile spilled its accumulators (see F16V512x8); spill-free, the tile wins at every shape there (one thread, median of
    /// nine alternations in one process, tile / one row: 6912x2560 1484-1656 / 2158-2248 us, 2560x6912 1416-1434 /
    /// 3151-3297, 4096x4096 1353-1402 / 2370-2410; two threads 6912x2560 1301 / 1406).
    /// </summary>
    public const int TileMinCols = 4096;

    /// <summary>
    /// Q8_0 / Q4_0 GEMVs read rows this long or longer eight at a time (QDotV256x8), shorter ones one at a time
    /// (QDotV256, prefetching 4 KB ahead in the row). On Intel the tile won at every width measured (see QDotV256x8);
    /// on the Zen 4 VM one row at a time won below 11008 columns. Cold GEMVs, median of seven alternations in one
    /// process, tile / one row (us): Q8_0 6912x2560 1588 / 1155, 2560x6912 1059 / 842, 4096x4096 993 / 789,
    /// 11008x4096 2706 / 2257, but 4096x11008 3087 / 3561; Q4_0 6912x2560 1969 / 1344, 4096x4096 1102 / 964,
    /// 4096x11008 3645 / 3742; two threads Q8_0 4096x4096 737 / 583, 11008x4096 1734 / 1513.
    /// </summary>
    internal static readonly int QTileMinCols = Tensors.Isa.IsAmd ? 8192 : 0;

    /// <summary>Offset o of the next tile's eight rows, into L2 or L1 (<see cref="Prefetch.NextTileToL2"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchNextTile(byte* n0, byte* n1, byte* n2, byte* n3, byte* n4, byte* n5, byte* n6, byte* n7, long o, bool toL2)
    {
        if (toL2)
        {
            Sse.Prefetch1(n0 + o); Sse.Prefetch1(n1 + o); Sse.Prefetch1(n2 + o); Sse.Prefetch1(n3 + o);
            Sse.Prefetch1(n4 + o); Sse.Prefetch1(n5 + o); Sse.Prefetch1(n6 + o); Sse.Prefetch1(n7 + o);
        }
        else
        {
            Sse.Prefetch0(n0 + o); Sse.Prefetch0(n1 + o); Sse.Prefetch0(n2 + o); Sse.Prefetch0(n3 + o);
            Sse.Prefetch0(n4 + o); Sse.Prefetch0(n5 + o); Sse.Prefetch0(n6 + o); Sse.Prefetch0(n7 + o);
        }
    }

    /// <summary>
    /// <see cref="F16V512"/> (with x times 2^112 in <paramref name="xs"/>) for eight rows at once, each row's lanes formed
    /// by the same operations in the same order, so each row gets F16V512's bits; one pair of activation loads feeds
    /// eight rows. A tile holding an infinity or NaN runs its rows one at a time through F16V512.
    /// <paramref name="rows"/> holds 16 row addresses: the tile's eight, then the eight read next (the next tile's), which
    /// are prefetched at the offset being read: eight streams keep too few lines in flight by themselves, and a prefetch
    /// a fixed distance ahead in the same row lost (near a row's end it asks for the next row, which the tile's
    /// neighbour stream already reads). One thread, one process, interleaved, load 1.5-2.4: 4096x4096 2.71 ms against
    /// 3.06 ms without prefetch and 3.43 ms with one 4 KB ahead in the row; 11008x4096 7.42 / 7.96 / 9.42 ms;
    /// 4096x11008 6.38 / 7.16 / 7.08; 2560x6912 2.42 / 2.76 / 2.85; and on short rows it beats one row at a time with
    /// a prefetch 4 KB ahead (6912x2560 2.50 against 2.86 ms).
    /// </summary>
    public static void F16V512x8(byte** rows, float* x, float* xs, int cols, float* y)
    {
        // Read first, before any accumulator is live: the read may call the class-init helper (see Prefetch.Distance).
        bool l2 = Prefetch.NextTileToL2;
        // Allocated (and zeroed, a helper call) before any accumulator is live: see the stores after the loop.
        var l = stackalloc float[8 * HalfLanes]; // row k's 32 lanes at 32 k
        ushort* h0 = (ushort*)rows[0], h1 = (ushort*)rows[1], h2 = (ushort*)rows[2], h3 = (ushort*)rows[3];
        ushort* h4 = (ushort*)rows[4], h5 = (ushort*)rows[5], h6 = (ushort*)rows[6], h7 = (ushort*)rows[7];
        byte* n0 = rows[8], n1 = rows[9], n2 = rows[10], n3 = rows[11], n4 = rows[12], n5 = rows[13], n6 = rows[14], n7 = rows[15];
        // row k's lanes 0-15 in ak, 16-31 in bk, as F16V512 / Bf16V512 hold one row's
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
        var mx = Vector256<ushort>.Zero;
        int i = 0;
        for (; i + HalfLanes <= cols; i += HalfLanes)
        {
            var x0 = Vector512.Load(xs + i);
            var x1 = Vector512.Load(xs + i + 16);
            long o = 2L * i; // one line of each next row a step
            PrefetchNextTile(n0, n1, n2, n3, n4, n5, n6, n7, o, l2);
            var r0 = Vector256.Load(h0 + i); var s0 = Vector256.Load(h0 + i + 16);
            mx = Vector256.Max(mx, Vector256.Max(r0 << 1, s0 << 1));
            a0 = Vector512.FusedMultiplyAdd(F16Shifted(r0), x0, a0);
            b0 = Vector512.FusedMultiplyAdd(F16Shifted(s0), x1, b0);
            var r1 = Vector256.Load(h1 + i); var s1 = Vector256.Load(h1 + i + 16);
            mx = Vector256.Max(mx, Vector256.Max(r1 << 1, s1 << 1));
            a1 = Vector512.FusedMultiplyAdd(F16Shifted(r1), x0, a1);
            b1 = Vector512.FusedMultiplyAdd(F16Shifted(s1), x1, b1);
            var r2 = Vector256.Load(h2 + i); var s2 = Vector256.Load(h2 + i + 16);
            mx = Vector256.Max(mx, Vector256.Max(r2 << 1, s2 << 1));
            a2 = Vector512.FusedMultiplyAdd(F16Shifted(r2), x0, a2);
            b2 = Vector512.FusedMultiplyAdd(F16Shifted(s2), x1, b2);
            var r3 = Vector256.Load(h3 + i); var s3 = Vector256.Load(h3 + i + 16);
            mx = Vector256.Max(mx, Vector256.Max(r3 << 1, s3 << 1));
            a3 = Vector512.FusedMultiplyAdd(F16Shifted(r3), x0, a3);
            b3 = Vector512.FusedMultiplyAdd(F16Shifted(s3), x1, b3);
            var r4 = Vector256.Load(h4 + i); var s4 = Vector256.Load(h4 + i + 16);
            mx = Vector256.Max(mx, Vector256.Max(r4 << 1, s4 << 1));
            a4 = Vector512.FusedMultiplyAdd(F16Shifted(r4), x0, a4);
            b4 = Vector512.FusedMultiplyAdd(F16Shifted(s4), x1, b4);
            var r5 = Vector256.Load(h5 + i); var s5 = Vector256.Load(h5 + i + 16);
            mx = Vector256.Max(mx, Vector256.Max(r5 << 1, s5 << 1));
            a5 = Vector512.FusedMultiplyAdd(F16Shifted(r5), x0, a5);
            b5 = Vector512.FusedMultiplyAdd(F16Shifted(s5), x1, b5);
            var r6 = Vector256.Load(h6 + i); var s6 = Vector256.Load(h6 + i + 16);
            mx = Vector256.Max(mx, Vector256.Max(r6 << 1, s6 << 1));
            a6 = Vector512.FusedMultiplyAdd(F16Shifted(r6), x0, a6);
            b6 = Vector512.FusedMultiplyAdd(F16Shifted(s6), x1, b6);
            var r7 = Vector256.Load(h7 + i); var s7 = Vector256.Load(h7 + i + 16);
            mx = Vector256.Max(mx, Vector256.Max(r7 << 1, s7 << 1));
            a7 = Vector512.FusedMultiplyAdd(F16Shifted(r7), x0, a7);
            b7 = Vector512.FusedMultiplyAdd(F16Shifted(s7), x1, b7);
        }
        if (Vector256.GreaterThanOrEqualAny(mx, Vector256.Create((ushort)SpecialShifted)))
        {
            for (int k = 0; k < 8; k++) y[k] = F16V512(rows[k], x, xs, cols); // the row holding an infinity / NaN goes to the scalar twin there
            return;
        }
        // Every accumulator is stored before the first call. One still live across a call (all vector registers are
        // caller-saved; zeroing a stackalloc here is a helper call too) is spilled at its definition, so the loop
        // stored and reloaded all sixteen every step: 68 stack accesses of vector registers, in the JIT's and the native
        // binary's code alike, against none now.
        a0.Store(l + 0); b0.Store(l + 16);
        a1.Store(l + 32); b1.Store(l + 48);
        a2.Store(l + 64); b2.Store(l + 80);
        a3.Store(l + 96); b3.Store(l + 112);
        a4.Store(l + 128); b4.Store(l + 144);
        a5.Store(l + 160); b5.Store(l + 176);
        a6.Store(l + 192); b6.Store(l + 208);
        a7.Store(l + 224); b7.Store(l + 240);
        for (int k = 0; k < 8; k++) y[k] = HalfTail(l + 32 * k, (ushort*)rows[k], x, i, cols, bf16: false);
    }

    /// <summary><see cref="Bf16V512"/> for eight rows at once (each row's bits unchanged; one activation load feeds eight rows).</summary>
    public static void Bf16V512x8(byte** rows, float* x, int cols, float* y)
    {
        var l = stackalloc float[8 * HalfLanes]; // before any accumulator is live (see F16V512x8)
        ushort* h0 = (ushort*)rows[0], h1 = (ushort*)rows[1], h2 = (ushort*)rows[2], h3 = (ushort*)rows[3];
        ushort* h4 = (ushort*)rows[4], h5 = (ushort*)rows[5], h6 = (ushort*)rows[6], h7 = (ushort*)rows[7];
        // row k's lanes 0-15 in ak, 16-31 in bk, as F16V512 / Bf16V512 hold one row's
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
        int i = 0;
        for (; i + HalfLanes <= cols; i += HalfLanes)
        {
            var x0 = Vector512.Load(x + i);
            var x1 = Vector512.Load(x + i + 16);
            var r0 = Vector256.Load(h0 + i); var s0 = Vector256.Load(h0 + i + 16);
            a0 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(r0) << 16).AsSingle(), x0, a0);
            b0 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(s0) << 16).AsSingle(), x1, b0);
            var r1 = Vector256.Load(h1 + i); var s1 = Vector256.Load(h1 + i + 16);
            a1 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(r1) << 16).AsSingle(), x0, a1);
            b1 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(s1) << 16).AsSingle(), x1, b1);
            var r2 = Vector256.Load(h2 + i); var s2 = Vector256.Load(h2 + i + 16);
            a2 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(r2) << 16).AsSingle(), x0, a2);
            b2 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(s2) << 16).AsSingle(), x1, b2);
            var r3 = Vector256.Load(h3 + i); var s3 = Vector256.Load(h3 + i + 16);
            a3 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(r3) << 16).AsSingle(), x0, a3);
            b3 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(s3) << 16).AsSingle(), x1, b3);
            var r4 = Vector256.Load(h4 + i); var s4 = Vector256.Load(h4 + i + 16);
            a4 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(r4) << 16).AsSingle(), x0, a4);
            b4 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(s4) << 16).AsSingle(), x1, b4);
            var r5 = Vector256.Load(h5 + i); var s5 = Vector256.Load(h5 + i + 16);
            a5 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(r5) << 16).AsSingle(), x0, a5);
            b5 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(s5) << 16).AsSingle(), x1, b5);
            var r6 = Vector256.Load(h6 + i); var s6 = Vector256.Load(h6 + i + 16);
            a6 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(r6) << 16).AsSingle(), x0, a6);
            b6 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(s6) << 16).AsSingle(), x1, b6);
            var r7 = Vector256.Load(h7 + i); var s7 = Vector256.Load(h7 + i + 16);
            a7 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(r7) << 16).AsSingle(), x0, a7);
            b7 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(s7) << 16).AsSingle(), x1, b7);
        }
        // every accumulator stored before the first call (see F16V512x8)
        a0.Store(l + 0); b0.Store(l + 16);
        a1.Store(l + 32); b1.Store(l + 48);
        a2.Store(l + 64); b2.Store(l + 80);
        a3.Store(l + 96); b3.Store(l + 112);
        a4.Store(l + 128); b4.Store(l + 144);
        a5.Store(l + 160); b5.Store(l + 176);
        a6.Store(l + 192); b6.Store(l + 208);
        a7.Store(l + 224); b7.Store(l + 240);
        for (int k = 0; k < 8; k++) y[k] = HalfTail(l + 32 * k, (ushort*)rows[k], x, i, cols, bf16: true);
    }

    /// <param name="xs">x times 2^112, or null.</param>
    public static float F16V256(byte* row, float* x, float* xs, int cols)
    {
        var h = (ushort*)row;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        var mx = Vector256<ushort>.Zero;
        int i = 0;
        if (xs != null)
            for (; i + HalfLanes <= cols; i += HalfLanes)
            {
                mx = Vector256.Max(mx, Vector256.Max(Vector256.Load(h + i) << 1, Vector256.Load(h + i + 16) << 1));
                var s = (short*)h + i;
                a0 = Vector256.FusedMultiplyAdd(F16Shifted(s), Vector256.Load(xs + i), a0);
                a1 = Vector256.FusedMultiplyAdd(F16Shifted(s + 8), Vector256.Load(xs + i + 8), a1);
                a2 = Vector256.FusedMultiplyAdd(F16Shifted(s + 16), Vector256.Load(xs + i + 16), a2);
                a3 = Vector256.FusedMultiplyAdd(F16Shifted(s + 24), Vector256.Load(xs + i + 24), a3);
            }
        else
            for (; i + HalfLanes <= cols; i += HalfLanes)
            {
                mx = Vector256.Max(mx, Vector256.Max(Vector256.Load(h + i) << 1, Vector256.Load(h + i + 16) << 1));
                var s = (short*)h + i;
                a0 = Vector256.FusedMultiplyAdd(F16Fast(s), Vector256.Load(x + i), a0);
                a1 = Vector256.FusedMultiplyAdd(F16Fast(s + 8), Vector256.Load(x + i + 8), a1);
                a2 = Vector256.FusedMultiplyAdd(F16Fast(s + 16), Vector256.Load(x + i + 16), a2);
                a3 = Vector256.FusedMultiplyAdd(F16Fast(s + 24), Vector256.Load(x + i + 24), a3);
            }
        if (Vector256.GreaterThanOrEqualAny(mx, Vector256.Create((ushort)SpecialShifted))) return HalfScalar(row, x, cols, bf16: false);
        var l = stackalloc float[HalfLanes];
        a0.Store(l);
        a1.Store(l + 8);
        a2.Store(l + 16);
        a3.Store(l + 24);
        return HalfTail(l, h, x, i, cols, bf16: false);
    }

    /// <summary>
    /// x times 2^112 into xs for <see cref="F16V512"/> / <see cref="F16V256"/>; false (xs unusable) when some |x| is at
    /// least 2^16, where the product would overflow.
    /// </summary>
    public static bool ScaleForF16(float* x, float* xs, int cols)
    {
        var big = Vector256<float>.Zero;
        int i = 0;
        for (; i + 8 <= cols; i += 8)
        {
            var v = Vector256.Load(x + i);
            big |= Vector256.GreaterThanOrEqual(Vector256.Abs(v), Vector256.Create(65536f));
            (v * Vector256.Create(Two112)).Store(xs + i);
        }
        bool ok = big == Vector256<float>.Zero;
        for (; i < cols; i++)
        {
            ok &= !(MathF.Abs(x[i]) >= 65536f);
            xs[i] = x[i] * Two112;
        }
        return ok;
    }

    public static float Bf16V256(byte* row, float* x, int cols)
    {
        var h = (ushort*)row;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + HalfLanes <= cols; i += HalfLanes)
        {
            a0 = Vector256.FusedMultiplyAdd((Avx2.ConvertToVector256Int32(h + i).AsUInt32() << 16).AsSingle(), Vector256.Load(x + i), a0);
            a1 = Vector256.FusedMultiplyAdd((Avx2.ConvertToVector256Int32(h + i + 8).AsUInt32() << 16).AsSingle(), Vector256.Load(x + i + 8), a1);
            a2 = Vector256.FusedMultiplyAdd((Avx2.ConvertToVector256Int32(h + i + 16).AsUInt32() << 16).AsSingle(), Vector256.Load(x + i + 16), a2);
            a3 = Vector256.FusedMultiplyAdd((Avx2.ConvertToVector256Int32(h + i + 24).AsUInt32() << 16).AsSingle(), Vector256.Load(x + i + 24), a3);
        }
        var l = stackalloc float[HalfLanes];
        a0.Store(l);
        a1.Store(l + 8);
        a2.Store(l + 16);
        a3.Store(l + 24);
        return HalfTail(l, h, x, i, cols, bf16: true);
    }

    public static float F16V128(byte* row, float* x, int cols) => HalfV128(row, x, cols, bf16: false);
    public static float Bf16V128(byte* row, float* x, int cols) => HalfV128(row, x, cols, bf16: true);

    private static float HalfV128(byte* row, float* x, int cols, bool bf16)
    {
        var h = (ushort*)row;
        var a = stackalloc Vector128<float>[8];
        for (int j = 0; j < 8; j++) a[j] = default;
        var mx = Vector128<ushort>.Zero;
        int i = 0;
        for (; i + HalfLanes <= cols; i += HalfLanes)
            for (int k = 0; k < 4; k++)
            {
                var v = Vector128.Load(h + i + 8 * k);
                if (!bf16) mx = Vector128.Max(mx, v << 1);
                var (lo, hi) = Vector128.Widen(v.AsInt16());
                a[2 * k] = Vector128.FusedMultiplyAdd(Half4(lo, bf16), Vector128.Load(x + i + 8 * k), a[2 * k]);
                a[2 * k + 1] = Vector128.FusedMultiplyAdd(Half4(hi, bf16), Vector128.Load(x + i + 8 * k + 4), a[2 * k + 1]);
            }
        if (!bf16 && Vector128.GreaterThanOrEqualAny(mx, Vector128.Create((ushort)SpecialShifted))) return HalfScalar(row, x, cols, bf16: false);
        var l = stackalloc float[HalfLanes];
        for (int j = 0; j < 8; j++) a[j].Store(l + 4 * j);
        return HalfTail(l, h, x, i, cols, bf16);
    }

    /// <summary>Four sign-extended halves to fp32: bf16 by a shift (the sign-extension bits shift out), f16 as above.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Half4(Vector128<int> s, bool bf16) => bf16 ? (s << 16).AsSingle() : F16Fast(s);

    // ---- Q8_0 / Q4_0 against activations quantized to Q8_0 blocks (llama.cpp's vec_dot_q8_0_q8_0 / q4_0_q8_0) ----

    /// <summary>
    /// x (cols a multiple of 32) to Q8_0 blocks as llama.cpp quantizes activations: per block amax, q = round-to-even
    /// (x 127 / amax) (0 where amax = 0), the block scale amax / 127 rounded to f16 (ggml stores it as f16) and kept
    /// here widened and times 2^112 (for <see cref="BlockScale"/>). The same code on every path, so every path sees the
    /// same activations.
    /// </summary>
    public static void QuantizeQ8(float* x, int cols, sbyte* q, float* d)
    {
        for (int b = 0; b < cols / 32; b++, x += 32, q += 32)
        {
            float amax;
            if (Avx2.IsSupported)
            {
                // the same values as the loop below: an exact max, one fp32 product, cvtps2dq's round-to-even
                var m = Vector256.Max(Vector256.Max(Vector256.Abs(Vector256.Load(x)), Vector256.Abs(Vector256.Load(x + 8))),
                                      Vector256.Max(Vector256.Abs(Vector256.Load(x + 16)), Vector256.Abs(Vector256.Load(x + 24))));
                var m4 = Vector128.Max(m.GetLower(), m.GetUpper());
                m4 = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(2, 3, 0, 1)));
                amax = MathF.Max(m4.ToScalar(), m4.GetElement(1));
                float idv = amax != 0 ? 127f / amax : 0f;
                var id = Vector256.Create(idv);
                var i0 = Avx.ConvertToVector256Int32(Vector256.Load(x) * id);
                var i1 = Avx.ConvertToVector256Int32(Vector256.Load(x + 8) * id);
                var i2 = Avx.ConvertToVector256Int32(Vector256.Load(x + 16) * id);
                var i3 = Avx.ConvertToVector256Int32(Vector256.Load(x + 24) * id);
                Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)).Store(q);
            }
            else
            {
                amax = 0;
                for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
                float id = amax != 0 ? 127f / amax : 0f;
                for (int j = 0; j < 32; j++) q[j] = (sbyte)(int)MathF.Round(x[j] * id);
            }
            d[b] = (float)(Half)(amax / 127f) * Two112; // exact: an f16 value times 2^112 stays below 2^128
        }
    }

    /// <summary>
    /// d_w d_x of one block: the weight block's f16 scale at <paramref name="blk"/> times the activation scale (kept times
    /// 2^112). The f16 bits are widened by the shift-and-mask of <see cref="F16Fast(short*)"/> (the value times 2^-112, exactly), and
    /// the 2^112 already in <paramref name="xdScaled"/> rebases it: one rounding of the same real product as F16ToF32(d_w) d_x,
    /// so the same bits, in four scalar operations instead of a dozen (the scalar twin and every path call this).
    /// Infinity / NaN scales take the exact conversion.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float BlockScale(byte* blk, float xdScaled)
    {
        // A branch-free form (the exponent test as a mask, both multipliers formed) was slower in the one-row Q8_0 GEMVs
        // (one thread, four alternated processes each, median 1085 -> 1456 us at 6912x2560, 995 -> 1230 at 4096x4096);
        // the branch is never taken in practice.
        int h = *(short*)blk;
        if ((h & 0x7C00) == 0x7C00) return F16ToF32((ushort)h) * (xdScaled * (1 / Two112));
        return BitConverter.Int32BitsToSingle((h << 13) & unchecked((int)0x8FFFFFFF)) * xdScaled;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int StoredQ(byte* row, int j, bool q4) => q4 ? (j < 16 ? row[2 + j] & 0xF : row[2 + j - 16] >> 4) - 8 : (sbyte)row[2 + j];

    /// <summary>
    /// The scalar twin of the integer dots. Block b of a row against block b of the quantized activations: for
    /// k = 0..7 the exact integer s_k = sum of w_i q_i over i = 4k..4k+3 (what vpmaddubsw + vpmaddwd leave in int32 lane
    /// k), then lane (b mod 2) 8 + k = fma(d_w d_x, s_k, lane) in fp32; the 16 lanes summed by <see cref="Reduce"/>.
    /// </summary>
    public static float QDotScalar(byte* row, sbyte* xq, float* xd, int cols, bool q4)
    {
        var l = stackalloc float[Lanes];
        for (int j = 0; j < Lanes; j++) l[j] = 0;
        int blockBytes = q4 ? 18 : 34;
        for (int b = 0; b < cols / 32; b++, row += blockBytes, xq += 32)
        {
            float d = BlockScale(row, xd[b]);
            for (int k = 0; k < 8; k++)
            {
                int s = 0;
                for (int i = 4 * k; i < 4 * k + 4; i++) s += StoredQ(row, i, q4) * xq[i];
                int lane = (b & 1) * 8 + k;
                l[lane] = MathF.FusedMultiplyAdd(d, s, l[lane]);
            }
        }
        return Reduce(l);
    }

    /// <summary>Eight int32 sums of four w q products each (signed w by signed q through |w| and sign(q, w)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Dot32(Vector256<sbyte> w, Vector256<sbyte> q) =>
        Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(w), Avx2.Sign(q, w)), Vector256.Create((short)1)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Q4Weights(byte* row)
    {
        var qs = Vector128.Load(row + 2);
        var m = Vector128.Create((byte)0xF);
        return (Vector256.Create(qs & m, Vector128.ShiftRightLogical(qs, 4) & m).AsSByte() - Vector256.Create((sbyte)8));
    }

    public static float Q8DotV256(byte* row, sbyte* xq, float* xd, int cols) => QDotV256<Q8Kind>(row, xq, xd, cols);
    public static float Q4DotV256(byte* row, sbyte* xq, float* xd, int cols) => QDotV256<Q4Kind>(row, xq, xd, cols);

    // Block kinds as type arguments: the JIT compiles one loop per kind with the kind's branch folded away.
    private struct Q8Kind;
    private struct Q4Kind;

    /// <summary>
    /// How far ahead of the blocks being read the Q kernels ask for the weights (software prefetch, bytes). The hardware
    /// prefetcher alone kept too few lines in flight for these loops (some 17 instructions per 34-byte block fill the
    /// reorder window long before a dense stream's would): Q8_0 2560x6912 one thread read 7 GB/s without, 11-12 with a
    /// prefetch 3-8 KB ahead (1 KB: 9, 512 B: 8.5; a plain 64-byte-load sweep of the same bytes 13-15), in one process,
    /// interleaved, load 2.6; 6912x2560 the same. Lines past a row's end are the next row's (or harmlessly unused).
    /// </summary>
    internal const int PrefetchAhead = 4096;

    /// <summary>acc + d_w d_x (the block's eight int32 sums) for the block at <paramref name="blk"/>: one lane group of <see cref="QDotScalar"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BlockFma<TKind>(byte* blk, Vector256<sbyte> q, float xd, Vector256<float> acc) where TKind : struct =>
        Vector256.FusedMultiplyAdd(Vector256.Create(BlockScale(blk, xd)),
            Dot32(typeof(TKind) == typeof(Q4Kind) ? Q4Weights(blk) : Vector256.Load((sbyte*)blk + 2), q), acc);

    private static float QDotV256<TKind>(byte* row, sbyte* xq, float* xd, int cols) where TKind : struct
    {
        Vector256<float> a0 = default, a1 = default; // even blocks: lanes 0-7, odd: 8-15
        int nb = cols / 32, bb = typeof(TKind) == typeof(Q4Kind) ? 18 : 34, b = 0;
        for (; b + 2 <= nb; b += 2, row += 2 * bb, xq += 64)
        {
            Sse.Prefetch0(row + PrefetchAhead); // Q8_0: one a 68 bytes; Q4_0: one a 36 (every line asked for once or twice)
            a0 = BlockFma<TKind>(row, Vector256.Load(xq), xd[b], a0);
            a1 = BlockFma<TKind>(row + bb, Vector256.Load(xq + 32), xd[b + 1], a1);
        }
        if (b < nb) a0 = BlockFma<TKind>(row, Vector256.Load(xq), xd[b], a0);
        return Reduce(a0, a1);
    }

    public static void Q8DotV256x8(byte** rows, sbyte* xq, float* xd, int cols, float* y) => QDotV256x8<Q8Kind>(rows, xq, xd, cols, y);
    public static void Q4DotV256x8(byte** rows, sbyte* xq, float* xd, int cols, float* y) => QDotV256x8<Q4Kind>(rows, xq, xd, cols, y);

    /// <summary>
    /// <see cref="QDotV256{TKind}"/> for eight rows at once (V512 only: the 16 accumulators need its 32 vector registers),
    /// each row's lanes formed by the same operations in the same order, so each row gets its bits; each activation block
    /// is loaded once for the eight. As <see cref="F16V512x8"/>, <paramref name="rows"/> holds the tile's eight row
    /// addresses and then the eight read next, prefetched at the offset being read. One thread, one process, interleaved,
    /// load 4.4: Q8_0 2560x6912 1.34 ms against 1.58 one row at a time with the prefetch 4 KB ahead (a plain 64-byte-load
    /// sweep of the same bytes 1.32), 4096x4096 1.30 / 1.51 (sweep 1.30), 4096x11008 3.38 / 4.31 (3.57), 6912x2560 1.53 / 1.57
    /// (1.35); four rows at a time took 1.36, 1.38, 3.55, 1.59, and four rows prefetching 4 KB ahead in the row lost (1.84 ms at 2560x6912).
    /// </summary>
    private static void QDotV256x8<TKind>(byte** rows, sbyte* xq, float* xd, int cols, float* y) where TKind : struct
    {
        // Read first, before any accumulator is live: the read may call the class-init helper (see Prefetch.Distance).
        bool l2 = Prefetch.NextTileToL2;
        var l = stackalloc float[8 * Lanes]; // before any accumulator is live (see F16V512x8)
        byte* p0 = rows[0], p1 = rows[1], p2 = rows[2], p3 = rows[3], p4 = rows[4], p5 = rows[5], p6 = rows[6], p7 = rows[7];
        byte* n0 = rows[8], n1 = rows[9], n2 = rows[10], n3 = rows[11], n4 = rows[12], n5 = rows[13], n6 = rows[14], n7 = rows[15];
        // row k's even blocks in ak, odd blocks in bk, as QDotV256 holds one row's
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
        int nb = cols / 32, bb = typeof(TKind) == typeof(Q4Kind) ? 18 : 34, b = 0;
        long o = 0; // the byte offset of block b in every row
        for (; b + 2 <= nb; b += 2, o += 2 * bb, xq += 64)
        {
            PrefetchNextTile(n0, n1, n2, n3, n4, n5, n6, n7, o, l2);
            var q0 = Vector256.Load(xq);
            var q1 = Vector256.Load(xq + 32);
            float d0 = xd[b], d1 = xd[b + 1];
            a0 = BlockFma<TKind>(p0 + o, q0, d0, a0); b0 = BlockFma<TKind>(p0 + o + bb, q1, d1, b0);
            a1 = BlockFma<TKind>(p1 + o, q0, d0, a1); b1 = BlockFma<TKind>(p1 + o + bb, q1, d1, b1);
            a2 = BlockFma<TKind>(p2 + o, q0, d0, a2); b2 = BlockFma<TKind>(p2 + o + bb, q1, d1, b2);
            a3 = BlockFma<TKind>(p3 + o, q0, d0, a3); b3 = BlockFma<TKind>(p3 + o + bb, q1, d1, b3);
            a4 = BlockFma<TKind>(p4 + o, q0, d0, a4); b4 = BlockFma<TKind>(p4 + o + bb, q1, d1, b4);
            a5 = BlockFma<TKind>(p5 + o, q0, d0, a5); b5 = BlockFma<TKind>(p5 + o + bb, q1, d1, b5);
            a6 = BlockFma<TKind>(p6 + o, q0, d0, a6); b6 = BlockFma<TKind>(p6 + o + bb, q1, d1, b6);
            a7 = BlockFma<TKind>(p7 + o, q0, d0, a7); b7 = BlockFma<TKind>(p7 + o + bb, q1, d1, b7);
        }
        if (b < nb)
        {
            var q0 = Vector256.Load(xq);
            float d0 = xd[b];
            a0 = BlockFma<TKind>(p0 + o, q0, d0, a0); a1 = BlockFma<TKind>(p1 + o, q0, d0, a1);
            a2 = BlockFma<TKind>(p2 + o, q0, d0, a2); a3 = BlockFma<TKind>(p3 + o, q0, d0, a3);
            a4 = BlockFma<TKind>(p4 + o, q0, d0, a4); a5 = BlockFma<TKind>(p5 + o, q0, d0, a5);
            a6 = BlockFma<TKind>(p6 + o, q0, d0, a6); a7 = BlockFma<TKind>(p7 + o, q0, d0, a7);
        }
        // every accumulator stored before the first call (see F16V512x8): row k's 16 lanes at 16 k, as Reduce(a, b) lays them
        a0.Store(l); b0.Store(l + 8); a1.Store(l + 16); b1.Store(l + 24); a2.Store(l + 32); b2.Store(l + 40); a3.Store(l + 48); b3.Store(l + 56);
        a4.Store(l + 64); b4.Store(l + 72); a5.Store(l + 80); b5.Store(l + 88); a6.Store(l + 96); b6.Store(l + 104); a7.Store(l + 112); b7.Store(l + 120);
        for (int k = 0; k < 8; k++) y[k] = Reduce(l + k * Lanes);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Reduce(Vector256<float> a0, Vector256<float> a1)
    {
        var l = stackalloc float[Lanes];
        a0.Store(l);
        a1.Store(l + 8);
        return Reduce(l);
    }

    public static float Q8DotV128(byte* row, sbyte* xq, float* xd, int cols) => QDotV128<Q8Kind>(row, xq, xd, cols);
    public static float Q4DotV128(byte* row, sbyte* xq, float* xd, int cols) => QDotV128<Q4Kind>(row, xq, xd, cols);

    /// <summary>Four int32 sums of four w q products each, as <see cref="Dot32"/> (SSSE3; elsewhere the same integers lane by lane).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Dot16(Vector128<sbyte> w, Vector128<sbyte> q)
    {
        if (Ssse3.IsSupported)
            return Sse2.ConvertToVector128Single(Sse2.MultiplyAddAdjacent(Ssse3.MultiplyAddAdjacent(Ssse3.Abs(w), Ssse3.Sign(q, w)), Vector128.Create((short)1)));
        var (wl, wh) = Vector128.Widen(w);
        var (ql, qh) = Vector128.Widen(q);
        var (p0, p1) = Vector128.Widen(wl * ql);
        var (p2, p3) = Vector128.Widen(wh * qh);
        return Vector128.ConvertToSingle(Vector128.Create(Vector128.Sum(p0), Vector128.Sum(p1), Vector128.Sum(p2), Vector128.Sum(p3)));
    }

    private static float QDotV128<TKind>(byte* row, sbyte* xq, float* xd, int cols) where TKind : struct
    {
        bool q4 = typeof(TKind) == typeof(Q4Kind);
        Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int bb = q4 ? 18 : 34;
        for (int b = 0; b < cols / 32; b++, row += bb, xq += 32)
        {
            var d = Vector128.Create(BlockScale(row, xd[b]));
            Vector128<sbyte> w0, w1;
            if (q4)
            {
                var qs = Vector128.Load(row + 2);
                var m = Vector128.Create((byte)0xF);
                w0 = (qs & m).AsSByte() - Vector128.Create((sbyte)8);
                w1 = (Vector128.ShiftRightLogical(qs, 4) & m).AsSByte() - Vector128.Create((sbyte)8);
            }
            else
            {
                w0 = Vector128.Load((sbyte*)row + 2);
                w1 = Vector128.Load((sbyte*)row + 18);
            }
            var s0 = Dot16(w0, Vector128.Load(xq));
            var s1 = Dot16(w1, Vector128.Load(xq + 16));
            if ((b & 1) == 0) { a0 = Vector128.FusedMultiplyAdd(d, s0, a0); a1 = Vector128.FusedMultiplyAdd(d, s1, a1); }
            else { a2 = Vector128.FusedMultiplyAdd(d, s0, a2); a3 = Vector128.FusedMultiplyAdd(d, s1, a3); }
        }
        var l = stackalloc float[Lanes];
        a0.Store(l);
        a1.Store(l + 4);
        a2.Store(l + 8);
        a3.Store(l + 12);
        return Reduce(l);
    }

    // ---- the GEMM's dots from a row already widened to fp32 (same operations as above) ----

    public static float PlainScalar(float* w, float* x, int cols)
    {
        var l = stackalloc float[HalfLanes];
        for (int j = 0; j < HalfLanes; j++) l[j] = 0;
        return PlainTail(l, w, x, 0, cols);
    }

    private static float PlainTail(float* l, float* w, float* x, int from, int cols)
    {
        for (int i = from; i < cols; i++) l[i & 31] = MathF.FusedMultiplyAdd(w[i], x[i], l[i & 31]);
        return Reduce32(l);
    }

    public static float PlainV512(float* w, float* x, int cols)
    {
        Vector512<float> a0 = default, a1 = default;
        int i = 0;
        for (; i + HalfLanes <= cols; i += HalfLanes)
        {
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w + i), Vector512.Load(x + i), a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(w + i + 16), Vector512.Load(x + i + 16), a1);
        }
        var l = stackalloc float[HalfLanes];
        a0.Store(l);
        a1.Store(l + 16);
        return PlainTail(l, w, x, i, cols);
    }

    public static float PlainV256(float* w, float* x, int cols)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + HalfLanes <= cols; i += HalfLanes)
        {
            a0 = Vector256.FusedMultiplyAdd(Vector256.Load(w + i), Vector256.Load(x + i), a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.Load(w + i + 8), Vector256.Load(x + i + 8), a1);
            a2 = Vector256.FusedMultiplyAdd(Vector256.Load(w + i + 16), Vector256.Load(x + i + 16), a2);
            a3 = Vector256.FusedMultiplyAdd(Vector256.Load(w + i + 24), Vector256.Load(x + i + 24), a3);
        }
        var l = stackalloc float[HalfLanes];
        a0.Store(l);
        a1.Store(l + 8);
        a2.Store(l + 16);
        a3.Store(l + 24);
        return PlainTail(l, w, x, i, cols);
    }

    public static float PlainV128(float* w, float* x, int cols)
    {
        var a = stackalloc Vector128<float>[8];
        for (int j = 0; j < 8; j++) a[j] = default;
        int i = 0;
        for (; i + HalfLanes <= cols; i += HalfLanes)
            for (int j = 0; j < 8; j++) a[j] = Vector128.FusedMultiplyAdd(Vector128.Load(w + i + 4 * j), Vector128.Load(x + i + 4 * j), a[j]);
        var l = stackalloc float[HalfLanes];
        for (int j = 0; j < 8; j++) a[j].Store(l + 4 * j);
        return PlainTail(l, w, x, i, cols);
    }
}
