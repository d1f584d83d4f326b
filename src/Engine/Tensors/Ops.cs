using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Workbench.Engine.Tensors;

/// <summary>Row-wise operations of the forward passes, over spans, built on TensorPrimitives where it has the op, except those a decode step runs (plain loops that ReadyToRun precompiles: see RmsNorm).</summary>
public static class Ops
{
    /// <summary>
    /// The index of the largest value, as TensorPrimitives.IndexOfMax decides it (IEEE 754:2019 maximum: the first NaN
    /// if there is one, +0 above -0, the first of equal values); -1 for an empty span. A plain loop, so ReadyToRun
    /// precompiles it: TensorPrimitives' generic kernel is jitted on first use, ~20 ms of a whole `generate` process
    /// for the one greedy pick per token over a 512-entry vocabulary, which this loop does in well under a microsecond.
    /// </summary>
    public static int IndexOfMax(ReadOnlySpan<float> x)
    {
        if (x.IsEmpty) return -1;
        int best = 0;
        float b = x[0];
        if (float.IsNaN(b)) return 0;
        for (int i = 1; i < x.Length; i++)
        {
            float v = x[i];
            if (v > b || (v == b && v == 0 && float.IsNegative(b) && !float.IsNegative(v))) { b = v; best = i; }
            else if (float.IsNaN(v)) return i;
        }
        return best;
    }

    // RmsNorm, SwiGlu and Add are plain loops, not TensorPrimitives calls: ReadyToRun cannot precompile TensorPrimitives'
    // generic kernels (static virtual calls through constrained generics, vector-typed signatures), so each was jitted
    // on first use, ~25 ms of CPU in a 512-step stories260K `generate` process. Over one row they are O(d) against the
    // row's O(d^2) matrix products (under 1% of a 7B-shaped layer, prefill or decode).

    /// <summary>
    /// RMSNorm (Llama): y = x / sqrt(mean(x^2) + eps) * g, as llama2.c's rmsnorm computes it: the sum of squares in
    /// index order, then g * (x * (1 / sqrt(ss / n + eps))).
    /// </summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> g, float eps, Span<float> y)
    {
        int n = x.Length;
        if (g.Length != n || y.Length < n) throw new ArgumentException($"RMSNorm of {n} values with {g.Length} gains into {y.Length}");
        float ss = 0;
        for (int i = 0; i < n; i++) ss += x[i] * x[i];
        float inv = 1f / MathF.Sqrt(ss / n + eps);
        for (int i = 0; i < n; i++) y[i] = x[i] * inv * g[i];
    }

    /// <summary>
    /// The largest value as TensorPrimitives.Max gives it (IEEE 754:2019 maximum: NaN if any value is NaN, +0 above
    /// -0), in a loop ReadyToRun precompiles (the softmax rows of the first decode steps; any order gives the same max).
    /// </summary>
    internal static float Max(ReadOnlySpan<float> x)
    {
        if (x.IsEmpty) throw new ArgumentException("the maximum of no values", nameof(x));
        float m = x[0];
        for (int i = 1; i < x.Length; i++)
        {
            float v = x[i];
            if (float.IsNaN(v)) return v;
            m = Maximum(m, v);
        }
        return m;
    }

    /// <summary>IEEE 754:2019 maximum of two values (NaN if either is NaN, +0 above -0), as Vector*.Max gives it per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Maximum(float m, float v) => float.IsNaN(v) || v > m || (v == m && float.IsNegative(m) && !float.IsNegative(v)) ? v : m;

    /// <summary>x += y, element by element (the residual stream).</summary>
    public static void Add(Span<float> x, ReadOnlySpan<float> y)
    {
        if (y.Length != x.Length) throw new ArgumentException($"adding {y.Length} values to {x.Length}", nameof(y));
        for (int i = 0; i < x.Length; i++) x[i] += y[i];
    }

    /// <summary>LayerNorm over the row: population variance, eps inside the square root, then * gamma + beta.</summary>
    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps, Span<float> y)
    {
        int n = x.Length;
        float mean = TensorPrimitives.Sum(x) / n;
        TensorPrimitives.Subtract(x, mean, y);
        float var = TensorPrimitives.Dot(y, y) / n;
        float inv = 1f / MathF.Sqrt(var + eps);
        TensorPrimitives.Multiply(y, inv, y);
        TensorPrimitives.FusedMultiplyAdd(y, gamma, beta, y);
    }

    /// <summary>LayerNorm of each row of a [rows, d] matrix (d = gamma's length): <see cref="LayerNorm(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, float, Span{float})"/> row by row.</summary>
    public static void LayerNorm(ReadOnlySpan<float> x, int rows, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps, Span<float> y)
    {
        int d = gamma.Length;
        if (beta.Length != d) throw new ArgumentException($"beta has {beta.Length} values, gamma {d}", nameof(beta));
        if ((long)rows * d > x.Length) throw new ArgumentException($"{rows} rows of {d} in a span of {x.Length}", nameof(x));
        if ((long)rows * d > y.Length) throw new ArgumentException($"{rows} rows of {d} in a span of {y.Length}", nameof(y));
        for (int i = 0; i < rows; i++) LayerNorm(x.Slice(i * d, d), gamma, beta, eps, y.Slice(i * d, d));
    }

    /// <summary>
    /// The epilogue of a linear layer as passes over a [rows, cols] matrix: bias (cols values; empty for none), then
    /// exact GELU when <paramref name="gelu"/>. (The fp32 GEMM applies the same to its tiles instead.)
    /// </summary>
    public static void AddBias(Span<float> m, int rows, int cols, ReadOnlySpan<float> bias, bool gelu) => AddBias(m, rows, cols, bias, gelu, Isa.Best);

    internal static void AddBias(Span<float> m, int rows, int cols, ReadOnlySpan<float> bias, bool gelu, IsaPath path)
    {
        if (bias.IsEmpty && !gelu) return;
        for (int r = 0; r < rows; r++)
        {
            var row = m.Slice(r * cols, cols);
            if (!bias.IsEmpty) TensorPrimitives.Add(row, bias, row);
            if (gelu) GeluErf(row, path);
        }
    }

    /// <summary>SwiGLU gate in place: h1 = silu(h1) * h3, silu(x) = x * (1 / (1 + exp(-x))), as llama2.c computes it.</summary>
    public static void SwiGlu(Span<float> h1, ReadOnlySpan<float> h3)
    {
        if (h3.Length != h1.Length) throw new ArgumentException($"gating {h1.Length} values with {h3.Length}", nameof(h3));
        for (int i = 0; i < h1.Length; i++)
        {
            float v = h1[i];
            h1[i] = v * (1f / (1f + MathF.Exp(-v))) * h3[i];
        }
    }

    /// <summary>
    /// Exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (BERT), vectorised: erf from a rational minimax fit (below), all steps
    /// fused in one pass per vector (the path's width, then the narrower ones, then a scalar tail with the same
    /// operations, so every width gives the same bits). Fifteen TensorPrimitives passes over L1 chunks took 1.8 ms per
    /// 128 x 1536 MiniLM activation here, a sixth of the encoder's time.
    /// </summary>
    public static void GeluErf(Span<float> x) => GeluErf(x, Isa.Best);

    internal static void GeluErf(Span<float> x, IsaPath path)
    {
        ref float r = ref MemoryMarshal.GetReference(x);
        int i = 0, n = x.Length;
        if (path == IsaPath.V512) i = GeluErf<W512, Vector512<float>>(ref r, i, n);
        if (path >= IsaPath.V256) i = GeluErf<W256, Vector256<float>>(ref r, i, n);
        if (path >= IsaPath.V128) i = GeluErf<W128, Vector128<float>>(ref r, i, n);
        for (; i < n; i++) x[i] = Gelu(x[i]);
    }

    /// <summary>
    /// GELU over the whole vectors of [i, n); returns where it stopped. Not inlined into the dispatch: with three widths
    /// inlined there, the JIT's inlining budget ran out and left the vector operations as calls.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int GeluErf<TW, TV>(ref float r, int i, int n) where TW : IWidth<TV> where TV : struct
    {
        // A do-while, so the loop is entered from a preheader where the JIT hoists the constants into registers
        // (written as a for loop here, it was not inverted and every constant came from memory).
        if (i + TW.Count > n) return i;
        do
        {
            TW.Store(Gelu<TW, TV>(TW.Load(ref r, (nuint)i)), ref r, (nuint)i);
            i += TW.Count;
        } while (i + TW.Count <= n);
        return i;
    }

    // erf(v / sqrt 2) ~ c P(c^2) / Q(c^2) with c = v clamped to +-4 sqrt 2 (where erf is 1 in fp32 to 1.5e-8): degrees
    // 6 and 4, fitted by tools/gelu-erf-fit.py for minimax absolute error on [0, 4] (5.5e-8 in exact arithmetic, ~2.6e-7
    // evaluated in fp32, so GELU is within 1e-6 of the double-precision reference). 17 operations and a division per
    // vector, against ~32 for the erfc-times-exp form it replaced; that made a one-thread MiniLM forward ~3% faster
    // here. Like every erf-based GELU (PyTorch's, ONNX Runtime's), 0.5 v (1 + erf) is accurate in absolute, not
    // relative, terms far into the negative tail.
    private const float R0 = 0.7978842258453369f, R1 = 0.07555986940860748f, R2 = 0.009263609535992146f, R3 = 0.0003785971493925899f,
        R4 = 6.863748694740934e-06f, R5 = -4.396636654746544e-08f, R6 = 2.1243234948897793e-10f,
        S1 = 0.2613641023635864f, S2 = 0.03017616830766201f, S3 = 0.0019414265407249331f, S4 = 6.848106568213552e-05f, GeluClamp = 5.656854249f;

    /// <summary>The scalar twin of <see cref="Gelu{TW, TV}"/>: the same operations in the same order.</summary>
    internal static float Gelu(float v)
    {
        float c = MathF.Min(MathF.Max(v, -GeluClamp), GeluClamp), u = c * c;
        float p = MathF.FusedMultiplyAdd(R6, u, R5), q = MathF.FusedMultiplyAdd(S4, u, S3);
        p = MathF.FusedMultiplyAdd(p, u, R4); q = MathF.FusedMultiplyAdd(q, u, S2);
        p = MathF.FusedMultiplyAdd(p, u, R3); q = MathF.FusedMultiplyAdd(q, u, S1);
        p = MathF.FusedMultiplyAdd(p, u, R2); q = MathF.FusedMultiplyAdd(q, u, 1f);
        p = MathF.FusedMultiplyAdd(p, u, R1);
        p = MathF.FusedMultiplyAdd(p, u, R0);
        float h = 0.5f * v;
        return MathF.FusedMultiplyAdd(h, c * p / q, h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TV Gelu<TW, TV>(TV v) where TW : IWidth<TV> where TV : struct
    {
        var c = TW.Clamp(v, -GeluClamp, GeluClamp);
        var u = TW.Mul(c, c);
        var p = TW.Fma(TW.Broadcast(R6), u, TW.Broadcast(R5));
        var q = TW.Fma(TW.Broadcast(S4), u, TW.Broadcast(S3));
        p = TW.Fma(p, u, TW.Broadcast(R4)); q = TW.Fma(q, u, TW.Broadcast(S2));
        p = TW.Fma(p, u, TW.Broadcast(R3)); q = TW.Fma(q, u, TW.Broadcast(S1));
        p = TW.Fma(p, u, TW.Broadcast(R2)); q = TW.Fma(q, u, TW.Broadcast(1f));
        p = TW.Fma(p, u, TW.Broadcast(R1));
        p = TW.Fma(p, u, TW.Broadcast(R0));
        var h = TW.Mul(v, TW.Broadcast(0.5f));
        return TW.Fma(h, TW.Div(TW.Mul(c, p), q), h);
    }

    // exp for softmax, Cephes' expf scheme: n = round(x log2 e), r = x - n ln 2 (in two parts), a degree-6 polynomial
    // for e^r, times 2^n built in the exponent bits. Relative error ~1e-7; the runtime's Vector512.Exp was half of
    // GELU's time here when GELU still used an exp. Below -87.3 (e^x < 1.2e-38) the result is 0, above 88.38 it is
    // clamped. The scalar twin does the same operations, so every width and the tails give the same bits.
    private const float ExpHi = 88.3762626647949f, ExpLo = -87.3365447505531f, Log2E = 1.44269504088896341f,
        Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f,
        E0 = 1.9875691500e-4f, E1 = 1.3981999507e-3f, E2 = 8.3334519073e-3f, E3 = 4.1665795894e-2f, E4 = 1.6666665459e-1f, E5 = 5.0000001201e-1f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TV Exp<TW, TV>(TV input) where TW : IWidth<TV> where TV : struct
    {
        var x = TW.Clamp(input, ExpLo, ExpHi);
        var n = TW.Round(TW.Mul(x, TW.Broadcast(Log2E)));
        var r = TW.Fma(n, TW.Broadcast(-Ln2Lo), TW.Fma(n, TW.Broadcast(-Ln2Hi), x));
        var y = TW.Fma(TW.Broadcast(E0), r, TW.Broadcast(E1));
        y = TW.Fma(y, r, TW.Broadcast(E2)); y = TW.Fma(y, r, TW.Broadcast(E3));
        y = TW.Fma(y, r, TW.Broadcast(E4)); y = TW.Fma(y, r, TW.Broadcast(E5));
        y = TW.Fma(y, TW.Mul(r, r), TW.Add(r, TW.Broadcast(1f)));
        return TW.ZeroBelow(input, ExpLo, TW.Mul(y, TW.Pow2(n)));
    }

    /// <summary>The scalar twin of <see cref="Exp{TW, TV}"/>.</summary>
    internal static float Exp(float input)
    {
        float x = MathF.Min(MathF.Max(input, ExpLo), ExpHi);
        float n = MathF.Round(x * Log2E);
        float r = MathF.FusedMultiplyAdd(n, -Ln2Lo, MathF.FusedMultiplyAdd(n, -Ln2Hi, x));
        float y = MathF.FusedMultiplyAdd(E0, r, E1);
        y = MathF.FusedMultiplyAdd(y, r, E2); y = MathF.FusedMultiplyAdd(y, r, E3);
        y = MathF.FusedMultiplyAdd(y, r, E4); y = MathF.FusedMultiplyAdd(y, r, E5);
        y = MathF.FusedMultiplyAdd(y, r * r, r + 1f);
        float scale = BitConverter.Int32BitsToSingle(((int)n + 127) << 23);
        return input < ExpLo ? 0f : y * scale;
    }

    /// <summary>Scalar exact GELU in double precision: the reference for <see cref="GeluErf(Span{float})"/>.</summary>
    public static float GeluErfReference(float x) => (float)(0.5 * x * (1.0 + Erf(x * 0.70710678118654752440)));

    /// <summary>
    /// GELU, tanh approximation, in place: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as nine TensorPrimitives
    /// passes (its Tanh is the library's own) over chunks that stay in L1. Every chunk is at least
    /// <see cref="TanhChunk"/> long when x is, so each element takes the same vector code as in one pass over all of
    /// x: the bits equal those of the same nine calls over the whole span.
    /// </summary>
    public static void GeluTanh(Span<float> x)
    {
        Span<float> tmp = stackalloc float[2 * TanhChunk];
        for (int i = 0; i < x.Length;)
        {
            int len = x.Length - i < 2 * TanhChunk ? x.Length - i : TanhChunk; // the last chunk: TanhChunk to 2 TanhChunk - 1
            GeluTanh(x.Slice(i, len), tmp[..len]);
            i += len;
        }
    }

    private const int TanhChunk = 256;

    private static void GeluTanh(Span<float> x, Span<float> tmp)
    {
        TensorPrimitives.Multiply(x, x, tmp);                              // x^2
        TensorPrimitives.Multiply(tmp, 0.044715f, tmp);
        TensorPrimitives.Add(tmp, 1f, tmp);                                // 1 + 0.044715 x^2
        TensorPrimitives.Multiply(tmp, x, tmp);                            // x + 0.044715 x^3
        TensorPrimitives.Multiply(tmp, 0.7978845608028654f, tmp);
        TensorPrimitives.Tanh(tmp, tmp);
        TensorPrimitives.Add(tmp, 1f, tmp);
        TensorPrimitives.Multiply(tmp, 0.5f, tmp);                         // 0.5 (1 + tanh)
        TensorPrimitives.Multiply(x, tmp, x);
    }

    /// <summary>erf(x) in double precision: its Maclaurin series below |x| = 3, erfc's continued fraction above.</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        if (ax < 3)
        {
            double sum = x, term = x, x2 = x * x;
            for (int k = 1; k < 200; k++)
            {
                term *= -x2 / k;
                double add = term / (2 * k + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17 * Math.Abs(sum)) break;
            }
            return 2.0 / Math.Sqrt(Math.PI) * sum;
        }
        double r = 1.0 - Erfc(ax);
        return x < 0 ? -r : r;
    }

    // erfc for x >= 3 by its continued fraction (Lentz), which converges in a few dozen terms there.
    private static double Erfc(double x)
    {
        if (x > 27) return 0;
        const double tiny = 1e-300;
        double f = x, c = x, d = 0;
        for (int i = 1; i < 500; i++)
        {
            double a = i * 0.5;
            d = x + a * d; if (Math.Abs(d) < tiny) d = tiny;
            c = x + a / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            double delta = c * d;
            f *= delta;
            if (Math.Abs(delta - 1) < 1e-16) break;
        }
        return Math.Exp(-x * x) / Math.Sqrt(Math.PI) / f;
    }

    /// <summary>Softmax in place, max subtracted first (TensorPrimitives.SoftMax does not, and large scores overflow); -inf gives exactly 0.</summary>
    public static void Softmax(Span<float> x) => Softmax(x, Isa.Best);

    internal static void Softmax(Span<float> x, IsaPath path)
    {
        ref float r = ref MemoryMarshal.GetReference(x);
        switch (SoftmaxLanes(path, x.Length))
        {
            case 16: Softmax<W512, Vector512<float>>(ref r, x.Length); break;
            case 8: Softmax<W256, Vector256<float>>(ref r, x.Length); break;
            case 4: Softmax<W128, Vector128<float>>(ref r, x.Length); break;
            default: SoftmaxScalar(x); break;
        }
    }

    /// <summary>
    /// The lanes a row's sum is accumulated in, which fixes its bits: the path's width (8 for rows of 8-15 on V512),
    /// and rows under 8 scalar on every path, as they always were (a decoder's first steps keep their bits).
    /// </summary>
    internal static int SoftmaxLanes(IsaPath path, int n) => n < 8 ? 1 : path switch
    {
        IsaPath.V512 => n >= 16 ? 16 : 8,
        IsaPath.V256 => 8,
        IsaPath.V128 => 4,
        _ => 1,
    };

    /// <summary>
    /// The scalar twin: e = exp(x - max) written in place with its sum (one exp per element; TensorPrimitives.SoftMax
    /// takes two), then one scaling pass. With <paramref name="lanes"/> &gt; 1 the sum is formed as the vector path
    /// forms it: the first n - n % lanes values in that many partial sums, reduced by the vector Sum, then the rest in
    /// order; so it gives the bits of every path (<see cref="SoftmaxLanes"/>).
    /// </summary>
    internal static void SoftmaxScalar(Span<float> x, int lanes = 1)
    {
        float max = Max(x);
        int full = lanes > 1 ? x.Length - x.Length % lanes : 0;
        Span<float> part = stackalloc float[16];
        part.Clear();
        for (int i = 0; i < full; i++) { float e = Exp(x[i] - max); x[i] = e; part[i % lanes] += e; }
        float sum = lanes switch
        {
            16 => Vector512.Sum(Vector512.Create<float>(part)),
            8 => Vector256.Sum(Vector256.Create<float>(part)),
            4 => Vector128.Sum(Vector128.Create<float>(part)),
            _ => 0f,
        };
        for (int i = full; i < x.Length; i++) { float e = Exp(x[i] - max); x[i] = e; sum += e; }
        float inv = 1f / sum;
        for (int i = 0; i < x.Length; i++) x[i] *= inv;
    }

    /// <summary>
    /// A row of n &gt;= TV.Count in three inline passes (max, exp and sum, scale), whole vectors then a scalar rest; per-row
    /// library calls cost about half of a 128 x 128 softmax here. Compiled fully optimised at once: in tiered code the
    /// inliner's budget can run out, and then every exp is a call (5x slower); and not inlined into the dispatch, for
    /// the same reason. ReadyToRun cannot precompile code generic over the runtime's vector types, so this is jitted
    /// in any case: at full optimisation on first call, not first as slow tier-0 code for the first decode steps.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Softmax<TW, TV>(ref float r, int n) where TW : IWidth<TV> where TV : struct
    {
        int c = TW.Count, full = n - n % c;
        // The max over whole vectors, then the rest one by one (the vector max is IEEE 754:2019's maximum, as Max's
        // loop; any order gives the same value). It was Max's loop over the whole row whenever n was not a multiple of
        // the width: most decode steps, where it was 17% of a stories260K token's time (bin/workbench, perf).
        var a = TW.Load(ref r, 0);
        for (int j = c; j < full; j += c) a = TW.Max(a, TW.Load(ref r, (nuint)j));
        float max = TW.MaxAcross(a);
        for (int j = full; j < n; j++) max = Maximum(max, Unsafe.Add(ref r, j));
        var m = TW.Broadcast(max);
        var acc = TW.Broadcast(0f);
        int k = 0;
        do { var e = Exp<TW, TV>(TW.Sub(TW.Load(ref r, (nuint)k), m)); TW.Store(e, ref r, (nuint)k); acc = TW.Add(acc, e); k += c; } while (k < full);
        float sum = TW.Sum(acc);
        for (int j = full; j < n; j++) { float e = Exp(Unsafe.Add(ref r, j) - max); Unsafe.Add(ref r, j) = e; sum += e; }
        float inv = 1f / sum;
        var vi = TW.Broadcast(inv);
        for (int j = 0; j < full; j += c) TW.Store(TW.Mul(TW.Load(ref r, (nuint)j), vi), ref r, (nuint)j);
        for (int j = full; j < n; j++) Unsafe.Add(ref r, j) *= inv; // elementwise: the bits TensorPrimitives.Multiply gave
    }

    /// <summary>
    /// Softmax of each of <paramref name="rows"/> rows of <paramref name="cols"/> values (attention scores), the same
    /// bits as <see cref="Softmax(Span{float})"/> row by row. When rows are whole vectors long, two rows go through each
    /// pass together: a row alone is a chain of dependent steps (max, exp, sum, reciprocal, scale), and two independent
    /// chains overlap.
    /// </summary>
    public static void SoftmaxRows(Span<float> s, int rows, int cols) => SoftmaxRows(s, rows, cols, Isa.Best);

    internal static void SoftmaxRows(Span<float> s, int rows, int cols, IsaPath path)
    {
        if ((long)rows * cols > s.Length) throw new ArgumentException($"{rows} x {cols} scores in a span of {s.Length}", nameof(s));
        int i = 0, lanes = SoftmaxLanes(path, cols);
        if (lanes > 1 && cols % lanes == 0)
            for (; i + 2 <= rows; i += 2)
            {
                ref float a = ref s[i * cols];
                ref float b = ref s[(i + 1) * cols];
                switch (lanes)
                {
                    case 16: Softmax2<W512, Vector512<float>>(ref a, ref b, cols); break;
                    case 8: Softmax2<W256, Vector256<float>>(ref a, ref b, cols); break;
                    default: Softmax2<W128, Vector128<float>>(ref a, ref b, cols); break;
                }
            }
        for (; i < rows; i++) Softmax(s.Slice(i * cols, cols), path);
    }

    /// <summary>Two rows of n (a multiple of TW.Count) through <see cref="Softmax{TW, TV}"/>'s passes together.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Softmax2<TW, TV>(ref float r, ref float q, int n) where TW : IWidth<TV> where TV : struct
    {
        int c = TW.Count;
        TV a = TW.Load(ref r, 0), b = TW.Load(ref q, 0);
        for (int j = c; j < n; j += c) { a = TW.Max(a, TW.Load(ref r, (nuint)j)); b = TW.Max(b, TW.Load(ref q, (nuint)j)); }
        TV ma = TW.Broadcast(TW.MaxAcross(a)), mb = TW.Broadcast(TW.MaxAcross(b));
        TV sa = TW.Broadcast(0f), sb = TW.Broadcast(0f);
        int k = 0;
        do
        {
            var ea = Exp<TW, TV>(TW.Sub(TW.Load(ref r, (nuint)k), ma)); TW.Store(ea, ref r, (nuint)k); sa = TW.Add(sa, ea);
            var eb = Exp<TW, TV>(TW.Sub(TW.Load(ref q, (nuint)k), mb)); TW.Store(eb, ref q, (nuint)k); sb = TW.Add(sb, eb);
            k += c;
        } while (k < n);
        TV ia = TW.Broadcast(1f / TW.Sum(sa)), ib = TW.Broadcast(1f / TW.Sum(sb));
        for (int j = 0; j < n; j += c)
        {
            TW.Store(TW.Mul(TW.Load(ref r, (nuint)j), ia), ref r, (nuint)j);
            TW.Store(TW.Mul(TW.Load(ref q, (nuint)j), ib), ref q, (nuint)j);
        }
    }

    /// <summary>
    /// Rotary embedding in llama2.c's (GGUF's) convention: consecutive pairs (2i, 2i+1) of each head rotate by
    /// pos * theta^(-2i / headDim). Hugging Face stores q/k rows permuted to use halves instead; loaders undo that.
    /// </summary>
    public static void Rope(Span<float> v, int headDim, int pos, float theta)
    {
        // Each pair index's angle once per call, applied to that pair of every head in v (the same values as computing
        // it per head: one pow, cos and sin per pair index instead of per pair).
        for (int hd = 0; hd < headDim && hd < v.Length; hd += 2)
        {
            // float arithmetic, as llama2.c computes it, so greedy runs match its goldens token for token
            float freq = 1f / MathF.Pow(theta, hd / (float)headDim);
            float val = pos * freq;
            float fcr = MathF.Cos(val), fci = MathF.Sin(val);
            for (int i = hd; i + 1 < v.Length; i += headDim)
            {
                float v0 = v[i], v1 = v[i + 1];
                v[i] = v0 * fcr - v1 * fci;
                v[i + 1] = v0 * fci + v1 * fcr;
            }
        }
    }
}
