using System.Runtime.CompilerServices;

namespace Workbench.Engine.Tensors;

/// <summary>
/// The two GEMMs of a linear layer's backward pass (Y = X W^T, W stored [out, in]): dX = dY W and dW += dY^T X.
/// Both are C[i, :] = sum_j A[i, j] B[j, :] ("axpy form"): every output element is one fused multiply-add chain over j
/// in index order, with no horizontal sums, so the SIMD paths equal the scalar twin bit for bit and the result does
/// not depend on how rows are split across threads (fixed summation order: training is deterministic).
/// The forward product itself is <see cref="MatMul.Linear(ReadOnlySpan{float}, int, int, ReadOnlySpan{float}, int, Span{float}, int, IsaPath?)"/>.
/// </summary>
public static unsafe class GemmBackward
{
    private const long ParallelThreshold = 1 << 16;
    private const int RowBlock = 4;

    /// <summary>dX[n, k] = dY[n, m] W[m, k].</summary>
    public static void InputGrad(ReadOnlySpan<float> dy, int n, int m, ReadOnlySpan<float> w, int k, Span<float> dx, int threads = 0, IsaPath? path = null)
        => Product(dy, n, m, w, k, dx, false, threads, path);

    /// <summary>
    /// dW[m, k] += dY[n, m]^T X[n, k]. <paramref name="dyT"/> is scratch of m*n floats for dY transposed (rows of dW
    /// then read contiguous runs of dY).
    /// </summary>
    public static void WeightGrad(ReadOnlySpan<float> dy, int n, int m, ReadOnlySpan<float> x, int k, Span<float> dw, Span<float> dyT, int threads = 0, IsaPath? path = null)
    {
        if (dyT.Length < (long)m * n) throw new ArgumentException($"dyT has {dyT.Length} values, needs m*n = {(long)m * n}", nameof(dyT));
        if (dy.Length < (long)n * m) throw new ArgumentException($"dy has {dy.Length} values, needs n*m = {(long)n * m}", nameof(dy));
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++) dyT[j * n + i] = dy[i * m + j];
        Product(dyT, m, n, x, k, dw, true, threads, path);
    }

    /// <summary>C[n, p] = A[n, q] B[q, p] (or C += A B when <paramref name="accumulate"/>; the product is summed from zero first).</summary>
    public static void Product(ReadOnlySpan<float> a, int n, int q, ReadOnlySpan<float> b, int p, Span<float> c, bool accumulate,
        int threads = 0, IsaPath? path = null)
    {
        CheckShapes(a, n, q, b, p, c);
        var isa = Isa.Resolve(path);
        if (threads <= 0) threads = Environment.ProcessorCount;
        int blocks = (n + RowBlock - 1) / RowBlock;
        if ((long)n * q * p < ParallelThreshold) threads = 1;
        fixed (float* pa = a, pb = b, pc = c)
        {
            nint aa = (nint)pa, ab = (nint)pb, ac = (nint)pc;
            Parallelism.For(blocks, threads, blk =>
            {
                int r0 = blk * RowBlock, r1 = Math.Min(n, r0 + RowBlock);
                Rows((float*)aa, q, (float*)ab, p, (float*)ac, r0, r1, accumulate, isa);
            });
        }
    }

    /// <summary>Scalar reference twin: per output element one fused multiply-add chain over j in index order.</summary>
    public static void ProductScalar(ReadOnlySpan<float> a, int n, int q, ReadOnlySpan<float> b, int p, Span<float> c, bool accumulate)
    {
        CheckShapes(a, n, q, b, p, c);
        for (int i = 0; i < n; i++)
            for (int col = 0; col < p; col++)
            {
                float s = 0;
                for (int j = 0; j < q; j++) s = MathF.FusedMultiplyAdd(a[i * q + j], b[j * p + col], s);
                c[i * p + col] = accumulate ? c[i * p + col] + s : s;
            }
    }

    private static void Rows(float* a, int q, float* b, int p, float* c, int r0, int r1, bool acc, IsaPath isa)
    {
        int col = isa switch
        {
            IsaPath.V512 => Columns<V512>(a, q, b, p, c, r0, r1, acc),
            IsaPath.V256 => Columns<V256>(a, q, b, p, c, r0, r1, acc),
            IsaPath.V128 => Columns<V128>(a, q, b, p, c, r0, r1, acc),
            _ => 0,
        };
        for (int i = r0; i < r1; i++)
            for (int cc = col; cc < p; cc++)
            {
                float s = 0;
                for (int j = 0; j < q; j++) s = MathF.FusedMultiplyAdd(a[(long)i * q + j], b[(long)j * p + cc], s);
                c[(long)i * p + cc] = acc ? c[(long)i * p + cc] + s : s;
            }
    }

    // Up to 4 rows x 2 vectors of accumulators; returns the first column left for the scalar tail.
    private static int Columns<TV>(float* a, int q, float* b, int p, float* c, int r0, int r1, bool acc) where TV : struct, IVec<TV>
    {
        int w = TV.Count, col = 0;
        int rows = r1 - r0;
        for (; col + 2 * w <= p; col += 2 * w)
        {
            TV c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
            for (int j = 0; j < q; j++)
            {
                float* bj = b + (long)j * p + col;
                var b0 = TV.Load(bj);
                var b1 = TV.Load(bj + w);
                var x0 = TV.Broadcast(a[(long)r0 * q + j]);
                c00 = TV.Fma(x0, b0, c00); c01 = TV.Fma(x0, b1, c01);
                if (rows > 1) { var x1 = TV.Broadcast(a[(long)(r0 + 1) * q + j]); c10 = TV.Fma(x1, b0, c10); c11 = TV.Fma(x1, b1, c11); }
                if (rows > 2) { var x2 = TV.Broadcast(a[(long)(r0 + 2) * q + j]); c20 = TV.Fma(x2, b0, c20); c21 = TV.Fma(x2, b1, c21); }
                if (rows > 3) { var x3 = TV.Broadcast(a[(long)(r0 + 3) * q + j]); c30 = TV.Fma(x3, b0, c30); c31 = TV.Fma(x3, b1, c31); }
            }
            Put(c + (long)r0 * p + col, c00, c01, w, acc);
            if (rows > 1) Put(c + (long)(r0 + 1) * p + col, c10, c11, w, acc);
            if (rows > 2) Put(c + (long)(r0 + 2) * p + col, c20, c21, w, acc);
            if (rows > 3) Put(c + (long)(r0 + 3) * p + col, c30, c31, w, acc);
        }
        for (; col + w <= p; col += w)
            for (int i = r0; i < r1; i++)
            {
                TV s = default;
                for (int j = 0; j < q; j++) s = TV.Fma(TV.Broadcast(a[(long)i * q + j]), TV.Load(b + (long)j * p + col), s);
                float* ci = c + (long)i * p + col;
                TV.Store(acc ? TV.Add(TV.Load(ci), s) : s, ci);
            }
        return col;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put<TV>(float* dst, TV v0, TV v1, int w, bool acc) where TV : struct, IVec<TV>
    {
        TV.Store(acc ? TV.Add(TV.Load(dst), v0) : v0, dst);
        TV.Store(acc ? TV.Add(TV.Load(dst + w), v1) : v1, dst + w);
    }

    private static void CheckShapes(ReadOnlySpan<float> a, int n, int q, ReadOnlySpan<float> b, int p, Span<float> c)
    {
        if (n <= 0 || q <= 0 || p <= 0) throw new ArgumentException($"shape n={n}, q={q}, p={p} must be positive");
        if (a.Length < (long)n * q) throw new ArgumentException($"a has {a.Length} values, needs n*q = {(long)n * q}", nameof(a));
        if (b.Length < (long)q * p) throw new ArgumentException($"b has {b.Length} values, needs q*p = {(long)q * p}", nameof(b));
        if (c.Length < (long)n * p) throw new ArgumentException($"c has {c.Length} values, needs n*p = {(long)n * p}", nameof(c));
    }
}
