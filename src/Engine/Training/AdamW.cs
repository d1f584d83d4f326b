namespace Workbench.Engine.Training;

/// <summary>
/// AdamW as torch.optim.AdamW (foreach=False) computes it, in float32: m = m.lerp(g, 1 - beta1), v = beta2 v + (1 - beta2) g^2,
/// p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps), after the decoupled decay p *= 1 - lr wd
/// (matrices only, not the norm gains). Bias corrections are computed in double, as Python does.
/// </summary>
public sealed class AdamW
{
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    public double Eps { get; init; } = 1e-8;
    public double WeightDecay { get; init; }
    public int Step { get; private set; }

    private readonly float[][] _m, _v;

    public AdamW(LlamaParameters parameters)
    {
        _m = parameters.Tensors.Select(t => new float[t.Data.Length]).ToArray();
        _v = parameters.Tensors.Select(t => new float[t.Data.Length]).ToArray();
    }

    /// <summary>One update of every tensor with learning rate <paramref name="lr"/>.</summary>
    public void Update(LlamaParameters p, LlamaParameters grads, double lr)
    {
        Step++;
        double bc1 = 1 - Math.Pow(Beta1, Step), bc2 = 1 - Math.Pow(Beta2, Step);
        float stepSize = (float)(lr / bc1), bc2Sqrt = (float)Math.Sqrt(bc2), eps = (float)Eps;
        float w1 = (float)(1 - Beta1), b2 = (float)Beta2, w2 = (float)(1 - Beta2);
        for (int ti = 0; ti < p.Tensors.Count; ti++)
        {
            var t = p.Tensors[ti];
            float[] w = t.Data, g = grads.Tensors[ti].Data, m = _m[ti], v = _v[ti];
            float decay = t.Decays && WeightDecay != 0 ? (float)(1 - lr * WeightDecay) : 1f;
            for (int i = 0; i < w.Length; i++)
            {
                if (decay != 1f) w[i] *= decay;
                m[i] += w1 * (g[i] - m[i]);
                v[i] = v[i] * b2 + w2 * g[i] * g[i];
                float denom = MathF.Sqrt(v[i]) / bc2Sqrt + eps;
                w[i] -= stepSize * (m[i] / denom);
            }
        }
    }

    /// <summary>Scales the gradients so their global L2 norm is at most <paramref name="maxNorm"/>; returns the norm before.</summary>
    public static double ClipGlobalNorm(LlamaParameters grads, double maxNorm)
    {
        double ss = 0;
        foreach (var t in grads.Tensors)
            foreach (var g in t.Data) ss += (double)g * g;
        double norm = Math.Sqrt(ss);
        if (maxNorm > 0 && norm > maxNorm)
        {
            float s = (float)(maxNorm / (norm + 1e-6));
            foreach (var t in grads.Tensors)
                for (int i = 0; i < t.Data.Length; i++) t.Data[i] *= s;
        }
        return norm;
    }

    /// <summary>Linear warmup over <paramref name="warmup"/> steps, then cosine decay to <paramref name="minRatio"/> x lr at the last step (step is 1-based).</summary>
    public static double CosineLr(double lr, int step, int steps, int warmup, double minRatio = 0.1)
    {
        if (warmup > 0 && step <= warmup) return lr * step / warmup;
        if (steps <= warmup) return lr;
        double progress = (double)(step - warmup) / (steps - warmup);
        double min = lr * minRatio;
        return min + 0.5 * (1 + Math.Cos(Math.PI * progress)) * (lr - min);
    }
}
