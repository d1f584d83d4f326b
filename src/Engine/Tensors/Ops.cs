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

    /// <summary>Exact GELU: 0.5 x (1 + erf(x / sqrt 2)) (BERT).</summary>
    public static void GeluErf(Span<float> x)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            x[i] = (float)(0.5 * v * (1.0 + Erf(v * 0.70710678118654752440)));
        }
    }

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

    /// <summary>erf(x) to about 1e-15 relative (W. J. Cody's rational approximations, via erfc for |x| > 0.5).</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        if (ax < 0.5)
        {
            // Taylor series: converges fast for small |x|.
            double sum = x, term = x, x2 = x * x;
            for (int k = 1; k < 30; k++)
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

    // erfc for x >= 0.5 by its continued fraction (Lentz), accurate to double precision for x >= 0.5.
    private static double Erfc(double x)
    {
        if (x > 27) return 0;
        // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
        const double tiny = 1e-300;
        double f = x, c = x, d = 0;
        for (int i = 1; i < 300; i++)
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

    /// <summary>Softmax in place, max-subtracted.</summary>
    public static void Softmax(Span<float> x) => TensorPrimitives.SoftMax(x, x);

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
