namespace Workbench.Engine.Training;

/// <summary>
/// BitNet b1.58 quantization-aware forward values, in exactly the order of operations of the PyTorch reference
/// (goldens/train README section 3). The backward pass is straight-through: it treats these as the identity.
/// </summary>
public static class BitNetQat
{
    public const float Eps = 1e-5f;

    /// <summary>Absmean scale of one whole matrix: s = mean(|W|) + 1e-5.</summary>
    public static float WeightScale(ReadOnlySpan<float> w)
    {
        double sum = 0;
        foreach (var v in w) sum += Math.Abs(v);
        return (float)(sum / w.Length) + Eps;
    }

    /// <summary>Ternary code clamp(round(W / s), -1, 1) (round half to even).</summary>
    public static int Code(float w, float s) => (int)Math.Clamp(MathF.Round(w / s), -1f, 1f);

    /// <summary>The forward weights STE_w(W) = W + (Wq - W), Wq = code * s: literally that sum, which can differ from Wq in the last bit.</summary>
    public static void TernaryWeights(ReadOnlySpan<float> w, Span<float> result)
    {
        float s = WeightScale(w);
        for (int i = 0; i < w.Length; i++)
        {
            float q = Code(w[i], s) * s;
            result[i] = w[i] + (q - w[i]);
        }
    }

    /// <summary>
    /// Per-token int8 absmax activations STE_a(x) = x + (xq - x), xq = clamp(round((x * 127) / m), -128, 127) * m / 127,
    /// m = max(max_j |x_j|, 1e-5), for each of the n rows of k values.
    /// </summary>
    public static void Activations(ReadOnlySpan<float> x, int n, int k, Span<float> result)
    {
        for (int r = 0; r < n; r++)
        {
            var row = x.Slice(r * k, k);
            var dst = result.Slice(r * k, k);
            float m = Eps;
            foreach (var v in row) m = Math.Max(m, Math.Abs(v));
            for (int j = 0; j < k; j++)
            {
                float code = Math.Clamp(MathF.Round(row[j] * 127f / m), -128f, 127f);
                float q = code * m / 127f;
                dst[j] = row[j] + (q - row[j]);
            }
        }
    }
}
