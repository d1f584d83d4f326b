using System.Runtime.Intrinsics;
using System.Numerics.Tensors;

namespace Workbench.Engine.Tensors;

/// <summary>Row-wise operations of the forward passes, over spans, built on TensorPrimitives where it has the op.</summary>
public static class Ops
{
    /// <summary>RMSNorm (Llama): y = x / sqrt(mean(x^2) + eps) * g.</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> g, float eps, Span<float> y)
    {
        float ss = TensorPrimitives.Dot(x, x) / x.Length;
        float inv = 1f / MathF.Sqrt(ss + eps);
        TensorPrimitives.Multiply(x, inv, y);
        TensorPrimitives.Multiply(y, g, y);
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

    /// <summary>
    /// The epilogue of a linear layer as passes over a [rows, cols] matrix: bias (cols values; empty for none), then
    /// exact GELU when <paramref name="gelu"/>. (The fp32 GEMM applies the same to its tiles instead.)
    /// </summary>
    public static void AddBias(Span<float> m, int rows, int cols, ReadOnlySpan<float> bias, bool gelu)
    {
        if (bias.IsEmpty && !gelu) return;
        for (int r = 0; r < rows; r++)
        {
            var row = m.Slice(r * cols, cols);
            if (!bias.IsEmpty) TensorPrimitives.Add(row, bias, row);
            if (gelu) GeluErf(row);
        }
    }

    /// <summary>SwiGLU gate in place: h1 = silu(h1) * h3.</summary>
    public static void SwiGlu(Span<float> h1, ReadOnlySpan<float> h3)
    {
        // silu(x) = x * sigmoid(x)
        Span<float> tmp = h1.Length <= 4096 ? stackalloc float[h1.Length] : new float[h1.Length];
        TensorPrimitives.Sigmoid(h1, tmp);
        TensorPrimitives.Multiply(h1, tmp, h1);
        TensorPrimitives.Multiply(h1, h3, h1);
    }

    /// <summary>
    /// Exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (BERT), vectorised: erf from a rational minimax fit (below), all steps
    /// fused in one pass per vector (Vector512/256/128, then a scalar tail with the same operations, so every width
    /// gives the same bits). Fifteen TensorPrimitives passes over L1 chunks took 1.8 ms per 128 x 1536 MiniLM
    /// activation here, a sixth of the encoder's time.
    /// </summary>
    public static void GeluErf(Span<float> x)
    {
        int i = 0;
        ref float r = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= x.Length; i += 16)
                Gelu(Vector512.LoadUnsafe(ref r, (nuint)i)).StoreUnsafe(ref r, (nuint)i);
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= x.Length; i += 8)
                Gelu(Vector256.LoadUnsafe(ref r, (nuint)i)).StoreUnsafe(ref r, (nuint)i);
        if (Vector128.IsHardwareAccelerated)
            for (; i + 4 <= x.Length; i += 4)
                Gelu(Vector128.LoadUnsafe(ref r, (nuint)i)).StoreUnsafe(ref r, (nuint)i);
        for (; i < x.Length; i++) x[i] = Gelu(x[i]);
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

    private static float Gelu(float v)
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

    // exp for softmax, Cephes' expf scheme: n = round(x log2 e), r = x - n ln 2 (in two parts), a degree-6 polynomial
    // for e^r, times 2^n built in the exponent bits. Relative error ~1e-7; the runtime's Vector512.Exp was half of
    // GELU's time here when GELU still used an exp. Below -87.3 (e^x < 1.2e-38) the result is 0, above 88.38 it is
    // clamped. The scalar twin does the same operations, so every width and the tails give the same bits.
    private const float ExpHi = 88.3762626647949f, ExpLo = -87.3365447505531f, Log2E = 1.44269504088896341f,
        Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f,
        E0 = 1.9875691500e-4f, E1 = 1.3981999507e-3f, E2 = 8.3334519073e-3f, E3 = 4.1665795894e-2f, E4 = 1.6666665459e-1f, E5 = 5.0000001201e-1f;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Exp(Vector512<float> input)
    {
        var x = Vector512.Min(Vector512.Max(input, Vector512.Create(ExpLo)), Vector512.Create(ExpHi));
        var n = Vector512.Round(x * Log2E);
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), x));
        var y = Vector512.FusedMultiplyAdd(Vector512.Create(E0), r, Vector512.Create(E1));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(E2)); y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(E3));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(E4)); y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(E5));
        y = Vector512.FusedMultiplyAdd(y, r * r, r + Vector512<float>.One);
        var scale = Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23).AsSingle();
        return Vector512.ConditionalSelect(Vector512.LessThan(input, Vector512.Create(ExpLo)), Vector512<float>.Zero, y * scale);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Exp(Vector256<float> input)
    {
        var x = Vector256.Min(Vector256.Max(input, Vector256.Create(ExpLo)), Vector256.Create(ExpHi));
        var n = Vector256.Round(x * Log2E);
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), x));
        var y = Vector256.FusedMultiplyAdd(Vector256.Create(E0), r, Vector256.Create(E1));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(E2)); y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(E3));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(E4)); y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(E5));
        y = Vector256.FusedMultiplyAdd(y, r * r, r + Vector256<float>.One);
        var scale = Vector256.ShiftLeft(Vector256.ConvertToInt32(n) + Vector256.Create(127), 23).AsSingle();
        return Vector256.ConditionalSelect(Vector256.LessThan(input, Vector256.Create(ExpLo)), Vector256<float>.Zero, y * scale);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> Exp(Vector128<float> input)
    {
        var x = Vector128.Min(Vector128.Max(input, Vector128.Create(ExpLo)), Vector128.Create(ExpHi));
        var n = Vector128.Round(x * Log2E);
        var r = Vector128.FusedMultiplyAdd(n, Vector128.Create(-Ln2Lo), Vector128.FusedMultiplyAdd(n, Vector128.Create(-Ln2Hi), x));
        var y = Vector128.FusedMultiplyAdd(Vector128.Create(E0), r, Vector128.Create(E1));
        y = Vector128.FusedMultiplyAdd(y, r, Vector128.Create(E2)); y = Vector128.FusedMultiplyAdd(y, r, Vector128.Create(E3));
        y = Vector128.FusedMultiplyAdd(y, r, Vector128.Create(E4)); y = Vector128.FusedMultiplyAdd(y, r, Vector128.Create(E5));
        y = Vector128.FusedMultiplyAdd(y, r * r, r + Vector128<float>.One);
        var scale = Vector128.ShiftLeft(Vector128.ConvertToInt32(n) + Vector128.Create(127), 23).AsSingle();
        return Vector128.ConditionalSelect(Vector128.LessThan(input, Vector128.Create(ExpLo)), Vector128<float>.Zero, y * scale);
    }

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

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Gelu(Vector512<float> v)
    {
        var c = Vector512.Min(Vector512.Max(v, Vector512.Create(-GeluClamp)), Vector512.Create(GeluClamp));
        var u = c * c;
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(R6), u, Vector512.Create(R5));
        var q = Vector512.FusedMultiplyAdd(Vector512.Create(S4), u, Vector512.Create(S3));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(R4)); q = Vector512.FusedMultiplyAdd(q, u, Vector512.Create(S2));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(R3)); q = Vector512.FusedMultiplyAdd(q, u, Vector512.Create(S1));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(R2)); q = Vector512.FusedMultiplyAdd(q, u, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(R1));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(R0));
        var h = v * 0.5f;
        return Vector512.FusedMultiplyAdd(h, c * p / q, h);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Gelu(Vector256<float> v)
    {
        var c = Vector256.Min(Vector256.Max(v, Vector256.Create(-GeluClamp)), Vector256.Create(GeluClamp));
        var u = c * c;
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(R6), u, Vector256.Create(R5));
        var q = Vector256.FusedMultiplyAdd(Vector256.Create(S4), u, Vector256.Create(S3));
        p = Vector256.FusedMultiplyAdd(p, u, Vector256.Create(R4)); q = Vector256.FusedMultiplyAdd(q, u, Vector256.Create(S2));
        p = Vector256.FusedMultiplyAdd(p, u, Vector256.Create(R3)); q = Vector256.FusedMultiplyAdd(q, u, Vector256.Create(S1));
        p = Vector256.FusedMultiplyAdd(p, u, Vector256.Create(R2)); q = Vector256.FusedMultiplyAdd(q, u, Vector256<float>.One);
        p = Vector256.FusedMultiplyAdd(p, u, Vector256.Create(R1));
        p = Vector256.FusedMultiplyAdd(p, u, Vector256.Create(R0));
        var h = v * 0.5f;
        return Vector256.FusedMultiplyAdd(h, c * p / q, h);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Gelu(Vector128<float> v)
    {
        var c = Vector128.Min(Vector128.Max(v, Vector128.Create(-GeluClamp)), Vector128.Create(GeluClamp));
        var u = c * c;
        var p = Vector128.FusedMultiplyAdd(Vector128.Create(R6), u, Vector128.Create(R5));
        var q = Vector128.FusedMultiplyAdd(Vector128.Create(S4), u, Vector128.Create(S3));
        p = Vector128.FusedMultiplyAdd(p, u, Vector128.Create(R4)); q = Vector128.FusedMultiplyAdd(q, u, Vector128.Create(S2));
        p = Vector128.FusedMultiplyAdd(p, u, Vector128.Create(R3)); q = Vector128.FusedMultiplyAdd(q, u, Vector128.Create(S1));
        p = Vector128.FusedMultiplyAdd(p, u, Vector128.Create(R2)); q = Vector128.FusedMultiplyAdd(q, u, Vector128<float>.One);
        p = Vector128.FusedMultiplyAdd(p, u, Vector128.Create(R1));
        p = Vector128.FusedMultiplyAdd(p, u, Vector128.Create(R0));
        var h = v * 0.5f;
        return Vector128.FusedMultiplyAdd(h, c * p / q, h);
    }

    /// <summary>Scalar exact GELU in double precision: the reference for <see cref="GeluErf"/>.</summary>
    public static float GeluErfReference(float x) => (float)(0.5 * x * (1.0 + Erf(x * 0.70710678118654752440)));

    /// <summary>GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).</summary>
    public static void GeluTanh(Span<float> x)
    {
        const float c = 0.7978845608028654f;
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            x[i] = 0.5f * v * (1f + MathF.Tanh(c * (v + 0.044715f * v * v * v)));
        }
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
    public static void Softmax(Span<float> x)
    {
        ref float r = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        if (Vector512.IsHardwareAccelerated && x.Length >= 16 && x.Length % 16 == 0)
        {
            Softmax512(ref r, x.Length);
            return;
        }
        float max = TensorPrimitives.Max(x);
        // e = exp(x - max) written in place with its sum (one exp per element; TensorPrimitives.SoftMax takes two),
        // then one scaling pass.
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated && x.Length >= 16)
        {
            var acc = Vector512<float>.Zero; var m = Vector512.Create(max);
            for (; i + 16 <= x.Length; i += 16) { var e = Exp(Vector512.LoadUnsafe(ref r, (nuint)i) - m); e.StoreUnsafe(ref r, (nuint)i); acc += e; }
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && x.Length >= 8)
        {
            var acc = Vector256<float>.Zero; var m = Vector256.Create(max);
            for (; i + 8 <= x.Length; i += 8) { var e = Exp(Vector256.LoadUnsafe(ref r, (nuint)i) - m); e.StoreUnsafe(ref r, (nuint)i); acc += e; }
            sum = Vector256.Sum(acc);
        }
        for (; i < x.Length; i++) { float e = Exp(x[i] - max); x[i] = e; sum += e; }
        TensorPrimitives.Multiply(x, 1f / sum, x);
    }

    /// <summary>
    /// An attention-length row (a multiple of 16: 128 keys and the like) in three inline Vector512 passes, with the
    /// bits of the general path; per-row library calls cost about half of a 128 x 128 softmax here. Compiled fully
    /// optimised at once: in tiered code the inliner's budget can run out, and then every exp is a call (5x slower).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void Softmax512(ref float r, int n)
    {
        var a = Vector512.LoadUnsafe(ref r);
        for (int j = 16; j < n; j += 16) a = Vector512.Max(a, Vector512.LoadUnsafe(ref r, (nuint)j));
        var m = Vector512.Create(HorizontalMax(a));
        var sum = Vector512<float>.Zero;
        for (int j = 0; j < n; j += 16) { var e = Exp(Vector512.LoadUnsafe(ref r, (nuint)j) - m); e.StoreUnsafe(ref r, (nuint)j); sum += e; }
        var inv = Vector512.Create(1f / Vector512.Sum(sum));
        for (int j = 0; j < n; j += 16) (Vector512.LoadUnsafe(ref r, (nuint)j) * inv).StoreUnsafe(ref r, (nuint)j);
    }

    /// <summary>
    /// Softmax of each of <paramref name="rows"/> rows of <paramref name="cols"/> values (attention scores), the same
    /// bits as <see cref="Softmax(Span{float})"/> row by row. With Vector512 and rows a multiple of 16 long, two rows go
    /// through each pass together: a row alone is a chain of dependent steps (max, exp, sum, reciprocal, scale), and
    /// two independent chains overlap.
    /// </summary>
    public static void SoftmaxRows(Span<float> s, int rows, int cols)
    {
        if ((long)rows * cols > s.Length) throw new ArgumentException($"{rows} x {cols} scores in a span of {s.Length}", nameof(s));
        int i = 0;
        if (Vector512.IsHardwareAccelerated && cols >= 16 && cols % 16 == 0)
            for (; i + 2 <= rows; i += 2)
                Softmax512x2(ref s[i * cols], ref s[(i + 1) * cols], cols);
        for (; i < rows; i++) Softmax(s.Slice(i * cols, cols));
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void Softmax512x2(ref float r, ref float q, int n)
    {
        Vector512<float> a = Vector512.LoadUnsafe(ref r), b = Vector512.LoadUnsafe(ref q);
        for (int j = 16; j < n; j += 16) { a = Vector512.Max(a, Vector512.LoadUnsafe(ref r, (nuint)j)); b = Vector512.Max(b, Vector512.LoadUnsafe(ref q, (nuint)j)); }
        var ma = Vector512.Create(HorizontalMax(a));
        var mb = Vector512.Create(HorizontalMax(b));
        Vector512<float> sa = default, sb = default;
        for (int j = 0; j < n; j += 16)
        {
            var ea = Exp(Vector512.LoadUnsafe(ref r, (nuint)j) - ma); ea.StoreUnsafe(ref r, (nuint)j); sa += ea;
            var eb = Exp(Vector512.LoadUnsafe(ref q, (nuint)j) - mb); eb.StoreUnsafe(ref q, (nuint)j); sb += eb;
        }
        Vector512<float> ia = Vector512.Create(1f / Vector512.Sum(sa)), ib = Vector512.Create(1f / Vector512.Sum(sb));
        for (int j = 0; j < n; j += 16)
        {
            (Vector512.LoadUnsafe(ref r, (nuint)j) * ia).StoreUnsafe(ref r, (nuint)j);
            (Vector512.LoadUnsafe(ref q, (nuint)j) * ib).StoreUnsafe(ref q, (nuint)j);
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static float HorizontalMax(Vector512<float> v)
    {
        var m8 = Vector256.Max(v.GetLower(), v.GetUpper());
        var m4 = Vector128.Max(m8.GetLower(), m8.GetUpper());
        return MathF.Max(MathF.Max(m4[0], m4[1]), MathF.Max(m4[2], m4[3]));
    }

    /// <summary>
    /// Rotary embedding in llama2.c's (GGUF's) convention: consecutive pairs (2i, 2i+1) of each head rotate by
    /// pos * theta^(-2i / headDim). Hugging Face stores q/k rows permuted to use halves instead; loaders undo that.
    /// </summary>
    public static void Rope(Span<float> v, int headDim, int pos, float theta)
    {
        for (int i = 0; i < v.Length; i += 2)
        {
            int hd = i % headDim;
            // float arithmetic, as llama2.c computes it, so greedy runs match its goldens token for token
            float freq = 1f / MathF.Pow(theta, hd / (float)headDim);
            float val = pos * freq;
            float fcr = MathF.Cos(val), fci = MathF.Sin(val);
            float v0 = v[i], v1 = v[i + 1];
            v[i] = v0 * fcr - v1 * fci;
            v[i + 1] = v0 * fci + v1 * fcr;
        }
    }
}
