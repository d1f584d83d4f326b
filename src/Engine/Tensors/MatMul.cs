using System.Runtime.CompilerServices;

namespace Workbench.Engine.Tensors;

/// <summary>
/// fp32 linear layers: Y[n, m] = X[n, k] W[m, k]^T, weights stored [out, in] as every checkpoint format here does.
/// Each W row block of 4 is streamed once per pair of X rows (GEMM) or once in all (GEMV, n = 1), so the GEMV runs
/// at memory bandwidth. Rows of W are split across threads. The scalar twin is the reference for tests.
/// </summary>
public static unsafe class MatMul
{
    // Below this many multiply-adds a parallel split costs more than it saves.
    private const long ParallelThreshold = 1 << 16;

    /// <summary>
    /// A GEMV on the wide paths reads rows shorter than this one at a time (one sequential stream, which the hardware
    /// prefetcher follows best), longer ones eight at a time (<see cref="Tile8x1{TV}"/>: one x load for eight rows). At
    /// 4096 columns and more the fp32 x (16 KB and up) no longer stays in a 32 KB L1 beside the streamed rows, and one
    /// row at a time re-reads it from L2 for every row. Measured on the Zen 4 VM (thread CPU time, interleaved in one
    /// process, load 20): 6912x2560 one thread 2.92 ms one row at a time against 3.45 ms eight (a plain read 2.47 ms);
    /// 2560x6912 4.61 ms against 3.34 ms. Both give the same bits (each row is the same lane sums).
    /// <para>On the Xeon VM of issue 14 (Emerald Rapids, session 9) the tile won at 2560 columns too, where the one
    /// row's single chain of fused multiply-adds seems to hold the stream back: fp32 6912x2560 one thread 5.6-7.4 ms
    /// one row at a time against 4.5-5.3 ms eight, two threads 2.4-3.2 against 1.9-2.5 ms; 2048x2048 one thread 1.30
    /// against 1.12 ms (median wall time, alternated call by call in one process, load 1.6-1.9). So rows are read one
    /// at a time only on AMD, where it was measured to win; <see cref="StoredKernels.TileMinCols"/> (f16, bf16) was
    /// not measured there and keeps 4096.</para>
    /// </summary>
    internal static readonly int GemvTileMinCols = Isa.IsAmd ? 4096 : 0;

    /// <summary>
    /// One row at a time only for a matrix streamed from memory (this many weights, 2 MB of fp32, and more): a matrix
    /// that stays in cache (a small model's decode step) is bound by the multiply-add chain, and eight rows are eight
    /// independent chains (one row's sum is a single chain of fused multiply-adds).
    /// </summary>
    internal const long GemvStreamMinWeights = 1 << 19;

    public static void Linear(ReadOnlySpan<float> x, int n, int k, ReadOnlySpan<float> w, int m, Span<float> y,
        int threads = 0, IsaPath? path = null)
    {
        CheckShapes(x, n, k, w, m, y);
        var p = Isa.Resolve(path);
        if (threads <= 0) threads = Environment.ProcessorCount;
        if ((long)n * k * m < ParallelThreshold || m < 8) threads = 1;
        fixed (float* px = x, pw = w, py = y)
        {
            if (threads == 1)
            {
                Rows(px, n, k, pw, m, py, 0, m, p);
                return;
            }
            nint ax = (nint)px, aw = (nint)pw, ay = (nint)py;
            if (n < PanelMinRows || p == IsaPath.Scalar)
            {
                // GEMV-like: chunks of GemvChunkRows W rows handed out one at a time, so a slowed core does fewer.
                // (Shorter ones, multiples of 4, when a thread's share of a small matrix is shorter than that.)
                int rowsPerChunk = Math.Min(GemvChunkRows, ((m + threads - 1) / threads + 3) / 4 * 4);
                Parallelism.Chunks((m + rowsPerChunk - 1) / rowsPerChunk, threads, c =>
                {
                    int r0 = c * rowsPerChunk;
                    Rows((float*)ax, n, k, (float*)aw, m, (float*)ay, r0, Math.Min(m, r0 + rowsPerChunk), p);
                });
                return;
            }
            // GEMM: one run of W rows per thread, a multiple of 32 (the GEMM panel width) when there are enough rows, else of 4.
            int align = m >= 64 * threads ? 32 : 4;
            int chunk = ((m + threads - 1) / threads + align - 1) / align * align;
            int chunks = (m + chunk - 1) / chunk;
            Parallelism.For(chunks, chunks, t =>
            {
                int r0 = t * chunk, r1 = Math.Min(m, r0 + chunk);
                Rows((float*)ax, n, k, (float*)aw, m, (float*)ay, r0, r1, p);
            });
        }
    }

    private sealed record PackedWeights(int Nr, float[] Data);
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<float[], PackedWeights> Packed = new();

    /// <summary>
    /// The same product for a weight array the caller keeps (a model's weights): from <see cref="PanelMinRows"/> rows of
    /// X on, the GEMM uses a transposed panel copy of W made on first use and cached with the array.
    /// </summary>
    public static void Linear(ReadOnlySpan<float> x, int n, int k, float[] w, int m, Span<float> y, int threads = 0, IsaPath? path = null)
        => Linear(x, n, k, w, m, y, default, false, threads, path);

    /// <summary>
    /// A whole linear layer: Y = X W^T + bias (m values; empty for none), then exact GELU on Y when
    /// <paramref name="gelu"/>. The GEMM applies both to each tile as it finishes, without another pass over Y.
    /// </summary>
    public static void Linear(ReadOnlySpan<float> x, int n, int k, float[] w, int m, Span<float> y, ReadOnlySpan<float> bias, bool gelu,
        int threads = 0, IsaPath? path = null)
    {
        if (!bias.IsEmpty && bias.Length != m) throw new ArgumentException($"bias has {bias.Length} values, not m = {m}", nameof(bias));
        var p = Isa.Resolve(path);
        if (n < PanelMinRows || p == IsaPath.Scalar)
        {
            Linear(x, n, k, w.AsSpan(), m, y, threads, p);
            Ops.AddBias(y, n, m, bias, gelu, p);
            return;
        }
        CheckShapes(x, n, k, w, m, y);
        if (w.Length != (long)m * k) throw new ArgumentException($"w has {w.Length} values, not m*k = {(long)m * k}", nameof(w));
        int nr = PanelGemm.PanelRows(p);
        var packed = Packed.GetValue(w, a => new PackedWeights(nr, PanelGemm.Pack(a, m, k, nr)));
        if (packed.Nr != nr) packed = new PackedWeights(nr, PanelGemm.Pack(w, m, k, nr)); // another path than the cached one (tests)
        if (threads <= 0) threads = Environment.ProcessorCount;
        if ((long)n * k * m < ParallelThreshold || m < 2 * PanelGemm.MaxPanel) threads = 1;
        fixed (float* px = x, pw = w, py = y, pp = packed.Data, pb = bias)
        {
            if (threads == 1)
            {
                PanelGemm.Run(px, n, k, pw, m, py, 0, m, p, pp, pb, gelu);
                return;
            }
            int chunk = ((m + threads - 1) / threads + PanelGemm.MaxPanel - 1) / PanelGemm.MaxPanel * PanelGemm.MaxPanel;
            nint ax = (nint)px, aw = (nint)pw, ay = (nint)py, ap = (nint)pp, ab = (nint)pb;
            int chunks = (m + chunk - 1) / chunk;
            Parallelism.For(chunks, chunks, t =>
            {
                int r0 = t * chunk, r1 = Math.Min(m, r0 + chunk);
                PanelGemm.Run((float*)ax, n, k, (float*)aw, m, (float*)ay, r0, r1, p, (float*)ap, (float*)ab, gelu);
            });
        }
    }

    /// <summary>y[m] = W[m, k] x[k].</summary>
    public static void Gemv(ReadOnlySpan<float> w, int rows, int cols, ReadOnlySpan<float> x, Span<float> y,
        int threads = 0, IsaPath? path = null) => Linear(x, 1, cols, w, rows, y, threads, path);

    /// <summary>
    /// Rows per chunk when threads split a GEMV (<see cref="WorkerTeam.RunChunks"/>: each thread takes the next
    /// unclaimed chunk): 64, as the reference's ggml threads take them, a multiple of the 8-row tile.
    /// </summary>
    public const int GemvChunkRows = 64;

    /// <summary>How many <see cref="GemvChunkRows"/>-row chunks a GEMV of <paramref name="rows"/> rows has.</summary>
    public static int GemvChunks(int rows) => (rows + GemvChunkRows - 1) / GemvChunkRows;

    /// <summary>
    /// Chunk <paramref name="chunk"/> (of <see cref="GemvChunks"/>) of y = W x on the calling thread: for callers that
    /// hand the chunks to their own threads (the low-bit benchmarks' worker teams).
    /// </summary>
    public static void GemvChunk(ReadOnlySpan<float> w, int rows, int cols, ReadOnlySpan<float> x, Span<float> y, int chunk, IsaPath? path = null)
    {
        if ((uint)chunk >= (uint)GemvChunks(rows)) throw new ArgumentOutOfRangeException(nameof(chunk), $"chunk {chunk} of {GemvChunks(rows)}");
        int r0 = chunk * GemvChunkRows;
        GemvRows(w, rows, cols, x, y, r0, Math.Min(rows, r0 + GemvChunkRows), path);
    }

    /// <summary>
    /// Rows [rowStart, rowEnd) of y = W x on the calling thread: for callers that split rows over their own threads.
    /// </summary>
    public static void GemvRows(ReadOnlySpan<float> w, int rows, int cols, ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowEnd, IsaPath? path = null)
    {
        CheckShapes(x, 1, cols, w, rows, y);
        if (rowStart < 0 || rowEnd > rows || rowStart > rowEnd) throw new ArgumentOutOfRangeException(nameof(rowStart), $"row range [{rowStart}, {rowEnd}) is outside [0, {rows})");
        var p = Isa.Resolve(path);
        fixed (float* px = x, pw = w, py = y) Rows(px, 1, cols, pw, rows, py, rowStart, rowEnd, p);
    }

    /// <summary>Scalar reference twin: the plain triple loop, accumulated in float in index order.</summary>
    public static void LinearScalar(ReadOnlySpan<float> x, int n, int k, ReadOnlySpan<float> w, int m, Span<float> y)
    {
        CheckShapes(x, n, k, w, m, y);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
            {
                float s = 0;
                for (int t = 0; t < k; t++) s += x[i * k + t] * w[j * k + t];
                y[i * m + j] = s;
            }
    }

    private static void CheckShapes(ReadOnlySpan<float> x, int n, int k, ReadOnlySpan<float> w, int m, Span<float> y)
    {
        if (n <= 0 || k <= 0 || m <= 0) throw new ArgumentException($"shape n={n}, k={k}, m={m} must be positive");
        if (x.Length < (long)n * k) throw new ArgumentException($"x has {x.Length} values, needs n*k = {(long)n * k}", nameof(x));
        if (w.Length < (long)m * k) throw new ArgumentException($"w has {w.Length} values, needs m*k = {(long)m * k}", nameof(w));
        if (y.Length < (long)n * m) throw new ArgumentException($"y has {y.Length} values, needs n*m = {(long)n * m}", nameof(y));
    }

    // From this many X rows on, packing a transposed panel of W pays for itself (prefill, encoders).
    private const int PanelMinRows = 4;

    // Precompiled by ReadyToRun (no JIT at start-up): its code equals tier-1 code since the IVec loads and stores are the
    // non-generic intrinsics (Vec.cs); a decode step calls this ~36 times for tiny matrices.
    private static void Rows(float* x, int n, int k, float* w, int m, float* y, int r0, int r1, IsaPath p)
    {
        if (n >= PanelMinRows && p != IsaPath.Scalar)
        {
            PanelGemm.Run(x, n, k, w, m, y, r0, r1, p);
            return;
        }
        int r = r0;
        if (n == 1 && k < GemvTileMinCols && (long)m * k >= GemvStreamMinWeights && p == IsaPath.V512)
        {
            for (; r < r1; r++) y[r] = Dot(x, w + (long)r * k, k, p);
            return;
        }
        if (n == 1 && p == IsaPath.V512)
            for (; r + 8 <= r1; r += 8)
                Tile8x1<V512>(x, w + (long)r * k, k, k, y + r);
        else if (n == 1 && p == IsaPath.V256)
            for (; r + 8 <= r1; r += 8)
                Tile8x1<V256>(x, w + (long)r * k, k, k, y + r);
        for (; r + 4 <= r1; r += 4)
        {
            float* w0 = w + (long)r * k;
            int i = 0;
            for (; i + 2 <= n; i += 2)
                Tile4x2(x + (long)i * k, x + (long)(i + 1) * k, w0, k, y + (long)i * m + r, y + (long)(i + 1) * m + r, p);
            for (; i < n; i++)
                Tile4x1(x + (long)i * k, w0, k, y + (long)i * m + r, p);
        }
        for (; r < r1; r++)
            for (int i = 0; i < n; i++)
                y[(long)i * m + r] = Dot(x + (long)i * k, w + (long)r * k, k, p);
    }

    private static float Dot(float* a, float* b, int k, IsaPath p) => p switch
    {
        IsaPath.V512 => Dot<V512>(a, b, k),
        IsaPath.V256 => Dot<V256>(a, b, k),
        IsaPath.V128 => Dot<V128>(a, b, k),
        _ => DotScalar(a, b, k, 0, 0),
    };

    internal static float DotScalar(float* a, float* b, int k, int t, float s)
    {
        for (; t < k; t++) s += a[t] * b[t];
        return s;
    }

    /// <summary>One dot product as every row kernel here forms it (lane sums over whole vectors, then the tail in order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Dot<TV>(float* a, float* b, int k) where TV : struct, IVec<TV>
    {
        var acc = default(TV);
        int t = 0;
        for (; t + TV.Count <= k; t += TV.Count) acc = TV.Fma(TV.Load(a + t), TV.Load(b + t), acc);
        return DotScalar(a, b, k, t, TV.Sum(acc));
    }

    private static void Tile4x1(float* x, float* w, int k, float* y, IsaPath p)
    {
        switch (p)
        {
            case IsaPath.V512: Tile4x1<V512>(x, w, k, y); break;
            case IsaPath.V256: Tile4x1<V256>(x, w, k, y); break;
            case IsaPath.V128: Tile4x1<V128>(x, w, k, y); break;
            default: for (int r = 0; r < 4; r++) y[r] = DotScalar(x, w + (long)r * k, k, 0, 0); break;
        }
    }

    /// <summary>
    /// GEMV on the wide paths: eight W rows (<paramref name="stride"/> floats apart) against one x row, eight memory
    /// streams at once. One core here reads about 13 GB/s from four streams and 15-16 GB/s from eight (4096x4096 cold:
    /// 5.3 -> 4.5 ms on one thread). Each row's sum is formed exactly as in <see cref="Tile4x1{TV}"/> (the eight lane
    /// sums reduced together by <see cref="IVec{TSelf}.Sum8"/>, with Sum's tree), so results do not change.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Tile8x1<TV>(float* x, float* w, long stride, int k, float* y) where TV : struct, IVec<TV>
    {
        float* w1 = w + stride, w2 = w1 + stride, w3 = w2 + stride, w4 = w3 + stride, w5 = w4 + stride, w6 = w5 + stride, w7 = w6 + stride;
        TV a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        int t = 0;
        for (; t + TV.Count <= k; t += TV.Count)
        {
            var xv = TV.Load(x + t);
            a0 = TV.Fma(TV.Load(w + t), xv, a0);
            a1 = TV.Fma(TV.Load(w1 + t), xv, a1);
            a2 = TV.Fma(TV.Load(w2 + t), xv, a2);
            a3 = TV.Fma(TV.Load(w3 + t), xv, a3);
            a4 = TV.Fma(TV.Load(w4 + t), xv, a4);
            a5 = TV.Fma(TV.Load(w5 + t), xv, a5);
            a6 = TV.Fma(TV.Load(w6 + t), xv, a6);
            a7 = TV.Fma(TV.Load(w7 + t), xv, a7);
        }
        TV.Sum8(a0, a1, a2, a3, a4, a5, a6, a7, y);
        if (t < k)
        {
            y[0] = DotScalar(x, w, k, t, y[0]);
            y[1] = DotScalar(x, w1, k, t, y[1]);
            y[2] = DotScalar(x, w2, k, t, y[2]);
            y[3] = DotScalar(x, w3, k, t, y[3]);
            y[4] = DotScalar(x, w4, k, t, y[4]);
            y[5] = DotScalar(x, w5, k, t, y[5]);
            y[6] = DotScalar(x, w6, k, t, y[6]);
            y[7] = DotScalar(x, w7, k, t, y[7]);
        }
    }

    // Four W rows against one x row: the GEMV kernel. Four independent streams keep the prefetchers busy.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile4x1<TV>(float* x, float* w, int k, float* y) where TV : struct, IVec<TV>
    {
        float* w1 = w + k, w2 = w1 + k, w3 = w2 + k;
        TV a0 = default, a1 = default, a2 = default, a3 = default;
        int t = 0;
        for (; t + TV.Count <= k; t += TV.Count)
        {
            var xv = TV.Load(x + t);
            a0 = TV.Fma(TV.Load(w + t), xv, a0);
            a1 = TV.Fma(TV.Load(w1 + t), xv, a1);
            a2 = TV.Fma(TV.Load(w2 + t), xv, a2);
            a3 = TV.Fma(TV.Load(w3 + t), xv, a3);
        }
        y[0] = DotScalar(x, w, k, t, TV.Sum(a0));
        y[1] = DotScalar(x, w1, k, t, TV.Sum(a1));
        y[2] = DotScalar(x, w2, k, t, TV.Sum(a2));
        y[3] = DotScalar(x, w3, k, t, TV.Sum(a3));
    }

    private static void Tile4x2(float* x0, float* x1, float* w, int k, float* y0, float* y1, IsaPath p)
    {
        switch (p)
        {
            case IsaPath.V512: Tile4x2<V512>(x0, x1, w, k, y0, y1); break;
            case IsaPath.V256: Tile4x2<V256>(x0, x1, w, k, y0, y1); break;
            case IsaPath.V128: Tile4x2<V128>(x0, x1, w, k, y0, y1); break;
            default: Tile4x1(x0, w, k, y0, p); Tile4x1(x1, w, k, y1, p); break;
        }
    }

    // Four W rows against two x rows: each weight load feeds two multiply-adds.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile4x2<TV>(float* x0, float* x1, float* w, int k, float* y0, float* y1) where TV : struct, IVec<TV>
    {
        float* w1 = w + k, w2 = w1 + k, w3 = w2 + k;
        TV a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        int t = 0;
        for (; t + TV.Count <= k; t += TV.Count)
        {
            var xa = TV.Load(x0 + t); var xb = TV.Load(x1 + t);
            var v = TV.Load(w + t); a0 = TV.Fma(v, xa, a0); b0 = TV.Fma(v, xb, b0);
            v = TV.Load(w1 + t); a1 = TV.Fma(v, xa, a1); b1 = TV.Fma(v, xb, b1);
            v = TV.Load(w2 + t); a2 = TV.Fma(v, xa, a2); b2 = TV.Fma(v, xb, b2);
            v = TV.Load(w3 + t); a3 = TV.Fma(v, xa, a3); b3 = TV.Fma(v, xb, b3);
        }
        y0[0] = DotScalar(x0, w, k, t, TV.Sum(a0)); y0[1] = DotScalar(x0, w1, k, t, TV.Sum(a1));
        y0[2] = DotScalar(x0, w2, k, t, TV.Sum(a2)); y0[3] = DotScalar(x0, w3, k, t, TV.Sum(a3));
        y1[0] = DotScalar(x1, w, k, t, TV.Sum(b0)); y1[1] = DotScalar(x1, w1, k, t, TV.Sum(b1));
        y1[2] = DotScalar(x1, w2, k, t, TV.Sum(b2)); y1[3] = DotScalar(x1, w3, k, t, TV.Sum(b3));
    }
}
