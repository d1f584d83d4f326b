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

    /// <summary>Adds a bias vector to every row of a [rows, bias.Length] matrix.</summary>
    public static void AddBias(Span<float> m, int rows, ReadOnlySpan<float> bias)
    {
        int d = bias.Length;
        for (int r = 0; r < rows; r++)
        {
            var row = m.Slice(r * d, d);
            TensorPrimitives.Add(row, bias, row);
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
    /// Exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (BERT), vectorised: erf from the Chebyshev-fitted erfc of Numerical
    /// Recipes (fractional error below 1.2e-7), evaluated with TensorPrimitives over chunks that stay in L1.
    /// </summary>
    public static void GeluErf(Span<float> x)
    {
        const int chunk = 1024;
        Span<float> z = stackalloc float[chunk], t = stackalloc float[chunk], p = stackalloc float[chunk];
        ReadOnlySpan<float> c = [0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f, 0.09678418f, 0.37409196f, 1.00002368f, -1.26551223f];
        for (int start = 0; start < x.Length; start += chunk)
        {
            var xs = x.Slice(start, Math.Min(chunk, x.Length - start));
            int n = xs.Length;
            var zs = z[..n]; var ts = t[..n]; var ps = p[..n];
            TensorPrimitives.Abs(xs, zs);
            TensorPrimitives.Multiply(zs, 0.70710678118654752f, zs);          // z = |x| / sqrt 2
            TensorPrimitives.Multiply(zs, 0.5f, ts);
            TensorPrimitives.Add(ts, 1f, ts);                                   // 1 + z/2
            TensorPrimitives.Reciprocal(ts, ts);                                // t = 1 / (1 + z/2)
            ps.Fill(c[0]);
            for (int i = 1; i < c.Length; i++) TensorPrimitives.FusedMultiplyAdd(ps, ts, c[i], ps);   // Horner in t
            TensorPrimitives.Multiply(zs, zs, zs);
            TensorPrimitives.Subtract(ps, zs, ps);                              // -z^2 + poly(t)
            TensorPrimitives.Exp(ps, ps);
            TensorPrimitives.Multiply(ps, ts, ps);                              // erfc(z) for z >= 0
            // 0.5 x (1 + erf(x/sqrt2)) = 0.5 x (2 - erfc(|x|/sqrt2)) for x >= 0, 0.5 x erfc(|x|/sqrt2) for x < 0
            for (int i = 0; i < n; i++)
            {
                float v = xs[i];
                xs[i] = v >= 0 ? 0.5f * v * (2f - ps[i]) : 0.5f * v * ps[i];
            }
        }
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

    /// <summary>Softmax in place. The max is subtracted first: TensorPrimitives.SoftMax does not, and large scores overflow.</summary>
    public static void Softmax(Span<float> x)
    {
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, x);
        TensorPrimitives.SoftMax(x, x);
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
