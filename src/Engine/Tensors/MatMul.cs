using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
            // Chunks of W rows, multiples of 32 (the GEMM panel width) when there are enough rows, else of 4.
            int align = m >= 64 * threads ? 32 : 4;
            int chunk = ((m + threads - 1) / threads + align - 1) / align * align;
            nint ax = (nint)px, aw = (nint)pw, ay = (nint)py;
            Parallel.For(0, (m + chunk - 1) / chunk, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                int r0 = t * chunk, r1 = Math.Min(m, r0 + chunk);
                Rows((float*)ax, n, k, (float*)aw, m, (float*)ay, r0, r1, p);
            });
        }
    }

    /// <summary>y[m] = W[m, k] x[k].</summary>
    public static void Gemv(ReadOnlySpan<float> w, int rows, int cols, ReadOnlySpan<float> x, Span<float> y,
        int threads = 0, IsaPath? path = null) => Linear(x, 1, cols, w, rows, y, threads, path);

    /// <summary>
    /// Rows [rowStart, rowEnd) of y = W x on the calling thread: for callers that split rows over their own threads
    /// (the low-bit benchmarks' worker team).
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

    private static void Rows(float* x, int n, int k, float* w, int m, float* y, int r0, int r1, IsaPath p)
    {
        if (n >= PanelMinRows && p != IsaPath.Scalar)
        {
            PanelGemm.Run(x, n, k, w, m, y, r0, r1, p);
            return;
        }
        int r = r0;
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(float* a, float* b, int k, IsaPath p)
    {
        int t = 0;
        float s = 0;
        if (p == IsaPath.V512)
        {
            var acc = Vector512<float>.Zero;
            for (; t + 16 <= k; t += 16) acc = Vector512.FusedMultiplyAdd(Vector512.Load(a + t), Vector512.Load(b + t), acc);
            s = Vector512.Sum(acc);
        }
        else if (p == IsaPath.V256)
        {
            var acc = Vector256<float>.Zero;
            for (; t + 8 <= k; t += 8) acc = Vector256.FusedMultiplyAdd(Vector256.Load(a + t), Vector256.Load(b + t), acc);
            s = Vector256.Sum(acc);
        }
        else if (p == IsaPath.V128)
        {
            var acc = Vector128<float>.Zero;
            for (; t + 4 <= k; t += 4) acc = Vector128.FusedMultiplyAdd(Vector128.Load(a + t), Vector128.Load(b + t), acc);
            s = Vector128.Sum(acc);
        }
        for (; t < k; t++) s += a[t] * b[t];
        return s;
    }

    // Four W rows against one x row: the GEMV kernel. Four independent streams keep the prefetchers busy.
    private static void Tile4x1(float* x, float* w, int k, float* y, IsaPath p)
    {
        float* w1 = w + k, w2 = w1 + k, w3 = w2 + k;
        int t = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (p == IsaPath.V512)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; t + 16 <= k; t += 16)
            {
                var xv = Vector512.Load(x + t);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w + t), xv, a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(w1 + t), xv, a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(w2 + t), xv, a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(w3 + t), xv, a3);
            }
            s0 = Vector512.Sum(a0); s1 = Vector512.Sum(a1); s2 = Vector512.Sum(a2); s3 = Vector512.Sum(a3);
        }
        else if (p == IsaPath.V256)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; t + 8 <= k; t += 8)
            {
                var xv = Vector256.Load(x + t);
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(w + t), xv, a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Load(w1 + t), xv, a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.Load(w2 + t), xv, a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.Load(w3 + t), xv, a3);
            }
            s0 = Vector256.Sum(a0); s1 = Vector256.Sum(a1); s2 = Vector256.Sum(a2); s3 = Vector256.Sum(a3);
        }
        else if (p == IsaPath.V128)
        {
            Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; t + 4 <= k; t += 4)
            {
                var xv = Vector128.Load(x + t);
                a0 = Vector128.FusedMultiplyAdd(Vector128.Load(w + t), xv, a0);
                a1 = Vector128.FusedMultiplyAdd(Vector128.Load(w1 + t), xv, a1);
                a2 = Vector128.FusedMultiplyAdd(Vector128.Load(w2 + t), xv, a2);
                a3 = Vector128.FusedMultiplyAdd(Vector128.Load(w3 + t), xv, a3);
            }
            s0 = Vector128.Sum(a0); s1 = Vector128.Sum(a1); s2 = Vector128.Sum(a2); s3 = Vector128.Sum(a3);
        }
        for (; t < k; t++)
        {
            float xv = x[t];
            s0 += w[t] * xv; s1 += w1[t] * xv; s2 += w2[t] * xv; s3 += w3[t] * xv;
        }
        y[0] = s0; y[1] = s1; y[2] = s2; y[3] = s3;
    }

    // Four W rows against two x rows: each weight load feeds two multiply-adds (GEMM for prefill).
    private static void Tile4x2(float* x0, float* x1, float* w, int k, float* y0, float* y1, IsaPath p)
    {
        float* w1 = w + k, w2 = w1 + k, w3 = w2 + k;
        int t = 0;
        Span<float> s = stackalloc float[8];
        if (p == IsaPath.V512)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
            for (; t + 16 <= k; t += 16)
            {
                var xa = Vector512.Load(x0 + t); var xb = Vector512.Load(x1 + t);
                var v = Vector512.Load(w + t); a0 = Vector512.FusedMultiplyAdd(v, xa, a0); b0 = Vector512.FusedMultiplyAdd(v, xb, b0);
                v = Vector512.Load(w1 + t); a1 = Vector512.FusedMultiplyAdd(v, xa, a1); b1 = Vector512.FusedMultiplyAdd(v, xb, b1);
                v = Vector512.Load(w2 + t); a2 = Vector512.FusedMultiplyAdd(v, xa, a2); b2 = Vector512.FusedMultiplyAdd(v, xb, b2);
                v = Vector512.Load(w3 + t); a3 = Vector512.FusedMultiplyAdd(v, xa, a3); b3 = Vector512.FusedMultiplyAdd(v, xb, b3);
            }
            s[0] = Vector512.Sum(a0); s[1] = Vector512.Sum(a1); s[2] = Vector512.Sum(a2); s[3] = Vector512.Sum(a3);
            s[4] = Vector512.Sum(b0); s[5] = Vector512.Sum(b1); s[6] = Vector512.Sum(b2); s[7] = Vector512.Sum(b3);
        }
        else if (p == IsaPath.V256)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
            for (; t + 8 <= k; t += 8)
            {
                var xa = Vector256.Load(x0 + t); var xb = Vector256.Load(x1 + t);
                var v = Vector256.Load(w + t); a0 = Vector256.FusedMultiplyAdd(v, xa, a0); b0 = Vector256.FusedMultiplyAdd(v, xb, b0);
                v = Vector256.Load(w1 + t); a1 = Vector256.FusedMultiplyAdd(v, xa, a1); b1 = Vector256.FusedMultiplyAdd(v, xb, b1);
                v = Vector256.Load(w2 + t); a2 = Vector256.FusedMultiplyAdd(v, xa, a2); b2 = Vector256.FusedMultiplyAdd(v, xb, b2);
                v = Vector256.Load(w3 + t); a3 = Vector256.FusedMultiplyAdd(v, xa, a3); b3 = Vector256.FusedMultiplyAdd(v, xb, b3);
            }
            s[0] = Vector256.Sum(a0); s[1] = Vector256.Sum(a1); s[2] = Vector256.Sum(a2); s[3] = Vector256.Sum(a3);
            s[4] = Vector256.Sum(b0); s[5] = Vector256.Sum(b1); s[6] = Vector256.Sum(b2); s[7] = Vector256.Sum(b3);
        }
        else if (p == IsaPath.V128)
        {
            Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
            for (; t + 4 <= k; t += 4)
            {
                var xa = Vector128.Load(x0 + t); var xb = Vector128.Load(x1 + t);
                var v = Vector128.Load(w + t); a0 = Vector128.FusedMultiplyAdd(v, xa, a0); b0 = Vector128.FusedMultiplyAdd(v, xb, b0);
                v = Vector128.Load(w1 + t); a1 = Vector128.FusedMultiplyAdd(v, xa, a1); b1 = Vector128.FusedMultiplyAdd(v, xb, b1);
                v = Vector128.Load(w2 + t); a2 = Vector128.FusedMultiplyAdd(v, xa, a2); b2 = Vector128.FusedMultiplyAdd(v, xb, b2);
                v = Vector128.Load(w3 + t); a3 = Vector128.FusedMultiplyAdd(v, xa, a3); b3 = Vector128.FusedMultiplyAdd(v, xb, b3);
            }
            s[0] = Vector128.Sum(a0); s[1] = Vector128.Sum(a1); s[2] = Vector128.Sum(a2); s[3] = Vector128.Sum(a3);
            s[4] = Vector128.Sum(b0); s[5] = Vector128.Sum(b1); s[6] = Vector128.Sum(b2); s[7] = Vector128.Sum(b3);
        }
        else s.Clear();
        for (; t < k; t++)
        {
            float xa = x0[t], xb = x1[t];
            s[0] += w[t] * xa; s[1] += w1[t] * xa; s[2] += w2[t] * xa; s[3] += w3[t] * xa;
            s[4] += w[t] * xb; s[5] += w1[t] * xb; s[6] += w2[t] * xb; s[7] += w3[t] * xb;
        }
        y0[0] = s[0]; y0[1] = s[1]; y0[2] = s[2]; y0[3] = s[3];
        y1[0] = s[4]; y1[1] = s[5]; y1[2] = s[6]; y1[3] = s[7];
    }
}
