using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Workbench.Engine.Tensors;

/// <summary>
/// GEMM for prefill (several rows of X): Y[n, m] = X[n, k] W[m, k]^T. A panel of NR rows of W is transposed into
/// [k, NR] (once per weight array when the caller keeps a packed copy), then, one k block of 192 at a time, every block
/// of 12 (V512) or 6 X rows runs an outer-product microkernel over it: broadcast one x value, multiply-add against two
/// vectors of the panel, 24 or 12 accumulators, no horizontal sums. While it runs, the microkernel prefetches the next
/// block of the packed W (a model's weights come from memory, not cache). A linear layer's bias and GELU are applied
/// to each finished tile. The driver and the 6-row kernel take the vector width as a type parameter (Vector256,
/// Vector128); the V512 12- and 8-row kernels are written on Vector512 itself.
/// </summary>
internal static unsafe class PanelGemm
{
    private const int MaxMR = 12;

    /// <summary>
    /// Rows of X per tile: 12 on V512 (24 zmm accumulators of the 32 registers; 24 FMAs per 2 panel loads and 12
    /// broadcasts; it ran ~7% faster than 8 rows on MiniLM's shapes here), 6 elsewhere (12 accumulators fit AVX2's 16
    /// ymm registers).
    /// </summary>
    private static int Rows<TV>() where TV : struct, IVec<TV> => TV.Count == 16 ? 12 : 6;

    /// <summary>
    /// A full tile; on V512, with <paramref name="short8"/>, the 8-row kernel (8-row blocks, padded rests). The kernels
    /// are not inlined: together they exceed the JIT's inlining budget for one method, and it then leaves every Fma as a
    /// call.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Micro<TV>(float* x, int ldx, int kc, float* panel, float* y, int ldy, bool add, Prefetch pf, bool short8 = false) where TV : struct, IVec<TV>
    {
        if (TV.Count != 16) Micro6<TV>(x, ldx, kc, panel, y, ldy, add, pf.Next, pf.End, pf.Every);
        else if (short8) Micro8(x, ldx, kc, panel, y, ldy, add, pf.Next, pf.End, pf.Every);
        else Micro12(x, ldx, kc, panel, y, ldy, add, pf.Next, pf.End, pf.Every);
    }

    /// <summary>
    /// Cache lines of the next W block that one microkernel call touches (one every few k steps), so
    /// the row blocks of a panel block share the prefetching of the next one. The default prefetches nothing.
    /// The kernels take it as three scalars and rebuild it: passed by value, the struct went through the stack as one
    /// 16-byte load of fields just written by 8-byte stores (a failed store forward, which waits for every older store,
    /// the previous tile's included). perf put ~3% of a MiniLM forward on that load; without it the wait moved to the
    /// kernel's entry, and the forward time did not measurably change.
    /// </summary>
    private struct Prefetch
    {
        private float* _next, _end;
        private int _every, _wait;

        public Prefetch(float* next, float* end, int every) { _next = next; _end = end; _every = every; _wait = 1; }
        public readonly float* Next => _next;
        public readonly float* End => _end;
        public readonly int Every => _every;

        /// <summary>Called once per k step: every so many steps, one line of the next block.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Step()
        {
            if (--_wait != 0 || _next >= _end) return;
            _wait = _every;
            if (System.Runtime.Intrinsics.X86.Sse.IsSupported) System.Runtime.Intrinsics.X86.Sse.Prefetch0(_next);
            _next += 16;
        }

        /// <summary>
        /// The share of row block <paramref name="block"/> of <paramref name="blocks"/> in prefetching the
        /// <paramref name="floats"/> floats at <paramref name="next"/>, over kc k steps.
        /// </summary>
        public static Prefetch Share(float* next, long floats, int block, int blocks, int kc)
        {
            if (next is null || blocks == 0 || floats <= 0) return default;
            long lines = (floats + 15) / 16, per = (lines + blocks - 1) / blocks, first = block * per;
            long mine = Math.Min(per, lines - first);
            if (mine <= 0) return default;
            int every = (int)Math.Max(1, kc / mine);
            return new Prefetch(next + first * 16, next + (first + mine) * 16, every);
        }
    }

    /// <summary>
    /// k block: a panel block of KC x 32 floats (24 KB on V512) and a 12-row X block (9 KB) stay in the 48 KB L1
    /// across the X row blocks, with room for the y tile and the next panel block's prefetched lines. Without k
    /// blocks, k = 384 and 1536 ran at ~40 GFMA/s against ~54 for k &lt;= 256 on one core here; on MiniLM's shapes, 192
    /// ran 1-4% faster than 256 (and than 96, 128, 224, 384) in interleaved runs, and splits k = 384 evenly.
    /// </summary>
    private const int KC = 192;
    /// <summary>Thread chunks of W rows are multiples of this when a pre-packed copy is used (the widest panel).</summary>
    public const int MaxPanel = 32;

    public static int PanelRows(IsaPath p) => p switch { IsaPath.V512 => 32, IsaPath.V256 => 16, _ => 8 };

    /// <summary>
    /// W packed once into panels of <paramref name="nr"/> rows, each stored transposed ([k, nr], zero-padded), so a
    /// GEMM call skips the packing pass. Weights are immutable, so the copy is cached per weight array.
    /// </summary>
    public static float[] Pack(ReadOnlySpan<float> w, int m, int k, int nr)
    {
        var packed = new float[(long)(m + nr - 1) / nr * k * nr];
        fixed (float* pw = w, pp = packed) Pack(pw, k, m, k, nr, 1f, pp);
        return packed;
    }

    /// <summary>
    /// The panel layout of <see cref="Pack(ReadOnlySpan{float}, int, int, int)"/> for m rows of k values at stride
    /// <paramref name="ld"/> (a head's keys inside a wider row, say), times <paramref name="scale"/>, into
    /// <paramref name="dst"/> (ceil(m / nr) * k * nr floats; the missing rows of the last panel are zero).
    /// </summary>
    public static void Pack(float* src, int ld, int m, int k, int nr, float scale, float* dst)
    {
        int panels = (m + nr - 1) / nr;
        for (int p = 0; p < panels; p++)
        {
            int rows = Math.Min(nr, m - p * nr), t = 0;
            float* s0 = src + (long)p * nr * ld, o = dst + (long)p * k * nr;
            // 8 x 8 blocks transposed in registers: strided element moves took ~5-7 us for a 128-key MiniLM head
            // (1.3-1.7% of a forward), and AVX2 gathers were no faster on this CPU.
            if (Avx.IsSupported && rows == nr && nr % 8 == 0)
                for (; t + 8 <= k; t += 8)
                    for (int j = 0; j < nr; j += 8)
                        Transpose8(s0 + (long)j * ld + t, ld, scale, o + (long)t * nr + j, nr);
            for (; t < k; t++)
            {
                float* col = s0 + t, ot = o + (long)t * nr;
                int j = 0;
                for (; j < rows; j++) ot[j] = col[(long)j * ld] * scale;
                for (; j < nr; j++) ot[j] = 0;
            }
        }
    }

    /// <summary>
    /// dst[c * ldd + r] = src[r * lds + c] * scale for an 8 x 8 block (the unpack / shuffle / lane-swap transpose).
    /// Avx's own loads and stores, not Vector256.Load / Store: so ReadyToRun precompiles Pack (see Vec.cs).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8(float* src, int lds, float scale, float* dst, int ldd)
    {
        Vector256<float> r0 = Avx.LoadVector256(src), r1 = Avx.LoadVector256(src + lds), r2 = Avx.LoadVector256(src + 2 * lds), r3 = Avx.LoadVector256(src + 3 * lds),
            r4 = Avx.LoadVector256(src + 4 * lds), r5 = Avx.LoadVector256(src + 5 * lds), r6 = Avx.LoadVector256(src + 6 * lds), r7 = Avx.LoadVector256(src + 7 * lds);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1); var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5); var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE); var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE); var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        var sc = Vector256.Create(scale);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20) * sc);
        Avx.Store(dst + ldd, Avx.Permute2x128(u1, u5, 0x20) * sc);
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20) * sc);
        Avx.Store(dst + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20) * sc);
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31) * sc);
        Avx.Store(dst + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31) * sc);
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31) * sc);
        Avx.Store(dst + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31) * sc);
    }

    /// <summary>
    /// Columns [r0, r1) of Y. With <paramref name="bias"/> (m values) and <paramref name="gelu"/>, each finished tile
    /// gets bias[j] added and then exact GELU applied while it is still in L1 (the epilogue of a linear layer,
    /// without another pass over Y).
    /// </summary>
    public static void Run(float* x, int n, int k, float* w, int m, float* y, int r0, int r1, IsaPath p, float* packed = null,
        float* bias = null, bool gelu = false)
        => Run(x, k, n, k, w, m, y, m, r0, r1, p, packed, bias, gelu);

    /// <summary>
    /// As above with the rows of X at stride <paramref name="ldx"/> and those of Y at stride <paramref name="ldy"/>:
    /// one head's slice of a wider activation, read and written in place. Only columns [r0, r1) of Y are written.
    /// </summary>
    public static void Run(float* x, int ldx, int n, int k, float* w, int m, float* y, int ldy, int r0, int r1, IsaPath p,
        float* packed = null, float* bias = null, bool gelu = false)
    {
        switch (p)
        {
            case IsaPath.V512: Run<V512>(x, ldx, n, k, w, m, y, ldy, r0, r1, packed, bias, gelu); break;
            case IsaPath.V256: Run<V256>(x, ldx, n, k, w, m, y, ldy, r0, r1, packed, bias, gelu); break;
            default: Run<V128>(x, ldx, n, k, w, m, y, ldy, r0, r1, packed, bias, gelu); break;
        }
    }

    private static void Run<TV>(float* x, int ldx, int n, int k, float* w, int m, float* y, int ldy, int r0, int r1, float* packed, float* bias,
        bool gelu) where TV : struct, IVec<TV>
    {
        int nr = 2 * TV.Count;
        int mr = Rows<TV>();
        // Row blocks: full blocks of mr rows, then (V512) up to two 8-row blocks in place, then a padded rest. A rest
        // of 1-4 rows after 12-row blocks gives one 12-row block back to make 8 + 5..8 (n = 16 is two 8-row blocks, not
        // 12 and 4 padded to 8); n = 128 is ten 12-row blocks and one 8-row block.
        int full = n / mr * mr, eights = 0;
        if (TV.Count == 16)
        {
            int r = n - full;
            if (r is > 0 and <= 4 && full >= 12) { full -= 12; r += 12; }
            eights = r == 16 ? 2 : r >= 13 || r == 8 ? 1 : 0;
        }
        var rented = ArrayPool<float>.Shared.Rent((packed is null ? k * nr : 0) + nr * MaxMR + 16 + MaxMR * KC);
        try
        {
            fixed (float* buf = rented)
            {
                float* tail = buf, xpad = buf + nr * MaxMR + 16, scratch = xpad + MaxMR * KC;
                for (int j0 = r0; j0 < r1; j0 += nr)
                {
                    int cols = Math.Min(nr, r1 - j0);
                    float* panel;
                    if (packed is not null) panel = packed + (long)(j0 / nr) * k * nr;
                    else
                    {
                        panel = scratch; // this panel of W packed now: panel[t, j] = W[j0 + j, t], missing rows zero
                        Pack(w + (long)j0 * k, k, cols, k, nr, 1f, panel);
                    }
                    // k in blocks of KC so the panel block (KC x nr floats) stays in L1 while every X row block
                    // passes over it; the first block stores, later blocks add to the tile.
                    for (int kb = 0; kb < k; kb += KC)
                    {
                        int kc = Math.Min(KC, k - kb);
                        bool add = kb > 0, last = kb + KC >= k && (bias is not null || gelu);
                        float* pb = panel + (long)kb * nr;
                        // The W block after this one (this panel's next k block, or the next panel's first), fetched
                        // into cache by the row blocks below while they compute on this one.
                        float* next = null;
                        long nextFloats = 0;
                        if (packed is not null)
                        {
                            if (kb + KC < k) { next = pb + (long)KC * nr; nextFloats = (long)Math.Min(KC, k - kb - KC) * nr; }
                            else if (j0 + nr < r1) { next = packed + (long)((j0 + nr) / nr) * k * nr; nextFloats = (long)Math.Min(KC, k) * nr; }
                        }
                        int blocks = full / mr + eights + (n > full + 8 * eights ? 1 : 0), block = 0;
                        int i = 0;
                        for (; i < full; i += mr, block++)
                            Block<TV>(x + (long)i * ldx + kb, ldx, kc, pb, y + (long)i * ldy + j0, ldy, cols, add, Prefetch.Share(next, nextFloats, block, blocks, kc),
                                false, tail, last, bias is null ? null : bias + j0, gelu);
                        for (int e = 0; e < eights; e++, i += 8, block++)
                            Block<TV>(x + (long)i * ldx + kb, ldx, kc, pb, y + (long)i * ldy + j0, ldy, cols, add, Prefetch.Share(next, nextFloats, block, blocks, kc),
                                true, tail, last, bias is null ? null : bias + j0, gelu);
                        if (i < n)
                        {
                            // The rest: copied into a zero-padded block so it takes a full kernel (on V512 the 8-row
                            // one when it fits).
                            int rest = n - i;
                            bool short8 = TV.Count == 16 && rest <= 8;
                            int rows = short8 ? 8 : mr;
                            for (int ii = 0; ii < rows; ii++)
                                if (ii < rest) new Span<float>(x + (long)(i + ii) * ldx + kb, kc).CopyTo(new Span<float>(xpad + ii * KC, kc));
                                else new Span<float>(xpad + ii * KC, kc).Clear();
                            Micro<TV>(xpad, KC, kc, pb, tail, nr, false, Prefetch.Share(next, nextFloats, block, blocks, kc), short8);
                            for (int ii = 0; ii < rest; ii++)
                                AddOrCopy(tail + ii * nr, y + (long)(i + ii) * ldy + j0, cols, add);
                            if (last) Epilogue<TV>(y + (long)i * ldy + j0, rest, cols, ldy, bias is null ? null : bias + j0, gelu);
                        }
                    }
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Touches the lines of a tile of y before the kernel's k loop, so the stores (or the sums of a later k block) at
    /// its end find them in cache instead of waiting on memory: y is often a buffer fresh from the pool.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTile(float* y, int ldy, int rows, int nr)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported) return;
        for (int r = 0; r < rows; r++, y += ldy)
        {
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(y);
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(y + nr - 1);
        }
    }

    /// <summary>One row of a tile: stored, or added to what earlier k blocks left there.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put<TV>(TV lo, TV hi, float* y, int v, bool add) where TV : struct, IVec<TV>
    {
        if (add)
        {
            lo = TV.Add(lo, TV.Load(y));
            hi = TV.Add(hi, TV.Load(y + v));
        }
        TV.Store(lo, y);
        TV.Store(hi, y + v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(Vector512<float> lo, Vector512<float> hi, float* y, int v, bool add)
    {
        if (add)
        {
            lo += Vector512.Load(y);
            hi += Vector512.Load(y + v);
        }
        lo.Store(y);
        hi.Store(y + v);
    }

    /// <summary>
    /// One unpadded row block (mr rows, or 8 with <paramref name="short8"/>) against a panel block: straight into y when
    /// the panel is full, else through <paramref name="tail"/> for the valid columns; then the epilogue on the last k block.
    /// </summary>
    private static void Block<TV>(float* x, int ldx, int kc, float* pb, float* y, int ldy, int cols, bool add, Prefetch pf, bool short8,
        float* tail, bool last, float* bias, bool gelu) where TV : struct, IVec<TV>
    {
        int nr = 2 * TV.Count, rows = short8 ? 8 : Rows<TV>();
        if (cols == nr) Micro<TV>(x, ldx, kc, pb, y, ldy, add, pf, short8);
        else
        {
            Micro<TV>(x, ldx, kc, pb, tail, nr, false, pf, short8);
            for (int ii = 0; ii < rows; ii++)
                AddOrCopy(tail + ii * nr, y + (long)ii * ldy, cols, add);
        }
        if (last) Epilogue<TV>(y, rows, cols, ldy, bias, gelu);
    }

    /// <summary>
    /// Bias and GELU on a finished tile of <paramref name="rows"/> x <paramref name="cols"/> at stride ldy, while it is
    /// in L1. A full V512 tile row (32 columns) takes two vectors; other widths go through the span routines.
    /// </summary>
    private static void Epilogue<TV>(float* y, int rows, int cols, int ldy, float* bias, bool gelu) where TV : struct, IVec<TV>
    {
        if (TV.Count == 16 && cols == 32)
        {
            Vector512<float> b0 = bias is null ? default : Vector512.Load(bias), b1 = bias is null ? default : Vector512.Load(bias + 16);
            for (int r = 0; r < rows; r++, y += ldy)
            {
                Vector512<float> v0 = Vector512.Load(y) + b0, v1 = Vector512.Load(y + 16) + b1;
                if (gelu) { v0 = Ops.Gelu<W512, Vector512<float>>(v0); v1 = Ops.Gelu<W512, Vector512<float>>(v1); }
                v0.Store(y);
                v1.Store(y + 16);
            }
            return;
        }
        var path = TV.Count == 16 ? IsaPath.V512 : TV.Count == 8 ? IsaPath.V256 : IsaPath.V128;
        for (int r = 0; r < rows; r++, y += ldy)
        {
            var row = new Span<float>(y, cols);
            if (bias is not null) System.Numerics.Tensors.TensorPrimitives.Add(row, new ReadOnlySpan<float>(bias, cols), row);
            if (gelu) Ops.GeluErf(row, path);
        }
    }

    private static void AddOrCopy(float* src, float* dst, int n, bool add)
    {
        var d = new Span<float>(dst, n);
        if (add) System.Numerics.Tensors.TensorPrimitives.Add(d, new ReadOnlySpan<float>(src, n), d);
        else new ReadOnlySpan<float>(src, n).CopyTo(d);
    }

    /// <summary>
    /// A 12 x 32 tile on Vector512, as <see cref="Micro6{TV}"/> with twice the rows (24 of the 32 registers). Written
    /// on Vector512 itself, not through <see cref="IVec{TSelf}"/>: through the wrapper struct the JIT added a register
    /// copy after every second FMA (12 extra instructions per k step).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Micro12(float* x, int ldx, int kc, float* panel, float* y, int ldy, bool add, float* pfNext, float* pfEnd, int pfEvery)
    {
        int nr = 2 * 16, v = 16;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default,
           c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default,
           c80 = default, c81 = default, c90 = default, c91 = default, ca0 = default, ca1 = default, cb0 = default, cb1 = default;
        var pf = new Prefetch(pfNext, pfEnd, pfEvery);
        PrefetchTile(y, ldy, 12, nr);
        // Four row pointers stepped along k, each row at +0, +1 or +2 strides from one of them: addressing modes the
        // JIT folds, so the loop has five pointer increments and no other integer work.
        nint l = ldx;
        float* xa = x, xb = x + 3 * l, xc = x + 6 * l, xd = x + 9 * l, pe = panel + (long)kc * nr;
        for (; panel < pe; panel += nr, xa++, xb++, xc++, xd++)
        {
            pf.Step();
            var b0 = Vector512.Load(panel);
            var b1 = Vector512.Load(panel + v);
            var a = Vector512.Create(xa[0]); c00 = Vector512.FusedMultiplyAdd(b0, a, c00); c01 = Vector512.FusedMultiplyAdd(b1, a, c01);
            a = Vector512.Create(xa[l]); c10 = Vector512.FusedMultiplyAdd(b0, a, c10); c11 = Vector512.FusedMultiplyAdd(b1, a, c11);
            a = Vector512.Create(xa[2 * l]); c20 = Vector512.FusedMultiplyAdd(b0, a, c20); c21 = Vector512.FusedMultiplyAdd(b1, a, c21);
            a = Vector512.Create(xb[0]); c30 = Vector512.FusedMultiplyAdd(b0, a, c30); c31 = Vector512.FusedMultiplyAdd(b1, a, c31);
            a = Vector512.Create(xb[l]); c40 = Vector512.FusedMultiplyAdd(b0, a, c40); c41 = Vector512.FusedMultiplyAdd(b1, a, c41);
            a = Vector512.Create(xb[2 * l]); c50 = Vector512.FusedMultiplyAdd(b0, a, c50); c51 = Vector512.FusedMultiplyAdd(b1, a, c51);
            a = Vector512.Create(xc[0]); c60 = Vector512.FusedMultiplyAdd(b0, a, c60); c61 = Vector512.FusedMultiplyAdd(b1, a, c61);
            a = Vector512.Create(xc[l]); c70 = Vector512.FusedMultiplyAdd(b0, a, c70); c71 = Vector512.FusedMultiplyAdd(b1, a, c71);
            a = Vector512.Create(xc[2 * l]); c80 = Vector512.FusedMultiplyAdd(b0, a, c80); c81 = Vector512.FusedMultiplyAdd(b1, a, c81);
            a = Vector512.Create(xd[0]); c90 = Vector512.FusedMultiplyAdd(b0, a, c90); c91 = Vector512.FusedMultiplyAdd(b1, a, c91);
            a = Vector512.Create(xd[l]); ca0 = Vector512.FusedMultiplyAdd(b0, a, ca0); ca1 = Vector512.FusedMultiplyAdd(b1, a, ca1);
            a = Vector512.Create(xd[2 * l]); cb0 = Vector512.FusedMultiplyAdd(b0, a, cb0); cb1 = Vector512.FusedMultiplyAdd(b1, a, cb1);
        }
        Put(c00, c01, y, v, add); y += ldy;
        Put(c10, c11, y, v, add); y += ldy;
        Put(c20, c21, y, v, add); y += ldy;
        Put(c30, c31, y, v, add); y += ldy;
        Put(c40, c41, y, v, add); y += ldy;
        Put(c50, c51, y, v, add); y += ldy;
        Put(c60, c61, y, v, add); y += ldy;
        Put(c70, c71, y, v, add); y += ldy;
        Put(c80, c81, y, v, add); y += ldy;
        Put(c90, c91, y, v, add); y += ldy;
        Put(ca0, ca1, y, v, add); y += ldy;
        Put(cb0, cb1, y, v, add);
    }

    /// <summary>An 8 x 32 tile on Vector512 for the last rows of X, as <see cref="Micro12"/> with 8 rows.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Micro8(float* x, int ldx, int kc, float* panel, float* y, int ldy, bool add, float* pfNext, float* pfEnd, int pfEvery)
    {
        int nr = 2 * 16, v = 16;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default,
           c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        var pf = new Prefetch(pfNext, pfEnd, pfEvery);
        PrefetchTile(y, ldy, 8, nr);
        nint l = ldx;
        float* xa = x, xb = x + 3 * l, xc = x + 6 * l, pe = panel + (long)kc * nr;
        for (; panel < pe; panel += nr, xa++, xb++, xc++)
        {
            pf.Step();
            var b0 = Vector512.Load(panel);
            var b1 = Vector512.Load(panel + v);
            var a = Vector512.Create(xa[0]); c00 = Vector512.FusedMultiplyAdd(b0, a, c00); c01 = Vector512.FusedMultiplyAdd(b1, a, c01);
            a = Vector512.Create(xa[l]); c10 = Vector512.FusedMultiplyAdd(b0, a, c10); c11 = Vector512.FusedMultiplyAdd(b1, a, c11);
            a = Vector512.Create(xa[2 * l]); c20 = Vector512.FusedMultiplyAdd(b0, a, c20); c21 = Vector512.FusedMultiplyAdd(b1, a, c21);
            a = Vector512.Create(xb[0]); c30 = Vector512.FusedMultiplyAdd(b0, a, c30); c31 = Vector512.FusedMultiplyAdd(b1, a, c31);
            a = Vector512.Create(xb[l]); c40 = Vector512.FusedMultiplyAdd(b0, a, c40); c41 = Vector512.FusedMultiplyAdd(b1, a, c41);
            a = Vector512.Create(xb[2 * l]); c50 = Vector512.FusedMultiplyAdd(b0, a, c50); c51 = Vector512.FusedMultiplyAdd(b1, a, c51);
            a = Vector512.Create(xc[0]); c60 = Vector512.FusedMultiplyAdd(b0, a, c60); c61 = Vector512.FusedMultiplyAdd(b1, a, c61);
            a = Vector512.Create(xc[l]); c70 = Vector512.FusedMultiplyAdd(b0, a, c70); c71 = Vector512.FusedMultiplyAdd(b1, a, c71);
        }
        Put(c00, c01, y, v, add); y += ldy;
        Put(c10, c11, y, v, add); y += ldy;
        Put(c20, c21, y, v, add); y += ldy;
        Put(c30, c31, y, v, add); y += ldy;
        Put(c40, c41, y, v, add); y += ldy;
        Put(c50, c51, y, v, add); y += ldy;
        Put(c60, c61, y, v, add); y += ldy;
        Put(c70, c71, y, v, add);
    }

    /// <summary>
    /// A 6 x nr tile over kc steps of k: X rows at stride ldx, the panel block [kc, nr]; the tile is stored into y,
    /// or added to it when <paramref name="add"/> (later k blocks).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Micro6<TV>(float* x, int ldx, int kc, float* panel, float* y, int ldy, bool add, float* pfNext, float* pfEnd, int pfEvery) where TV : struct, IVec<TV>
    {
        int nr = 2 * TV.Count;
        TV c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
           c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        var pf = new Prefetch(pfNext, pfEnd, pfEvery);
        PrefetchTile(y, ldy, 6, nr);
        float* x0 = x, x1 = x + ldx, x2 = x1 + ldx, x3 = x2 + ldx, x4 = x3 + ldx, x5 = x4 + ldx;
        for (int t = 0; t < kc; t++)
        {
            pf.Step();
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
        Put(c00, c01, y, v, add); y += ldy;
        Put(c10, c11, y, v, add); y += ldy;
        Put(c20, c21, y, v, add); y += ldy;
        Put(c30, c31, y, v, add); y += ldy;
        Put(c40, c41, y, v, add); y += ldy;
        Put(c50, c51, y, v, add);
    }

}
