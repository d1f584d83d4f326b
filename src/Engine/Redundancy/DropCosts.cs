using Workbench.Engine.Models;

namespace Workbench.Engine.Redundancy;

/// <summary>
/// What a model with some modules dropped should cost, from its shapes alone (fp32 weights and KV cache).
/// FLOPs count a multiply-add as 2. Norms, rotary, softmax and activations are left out (they are O(d) per token).
/// </summary>
public sealed record DropCost(
    double PrefillFlops,
    double DecodeFlopsPerToken,
    double DecodeBytesPerToken,
    long KvCacheBytes,
    long WeightBytes);

public static class DropCosts
{
    /// <summary>
    /// Costs of prefilling <paramref name="promptTokens"/> tokens and then decoding <paramref name="decodeTokens"/> more
    /// one at a time, with a KV cache of capacity promptTokens + decodeTokens (what <see cref="DropEvaluator"/> allocates).
    /// Encoders (no causal mask, no cache, no classifier): prefill is one bidirectional pass, decode costs are 0.
    /// Decode figures are averages over the decode steps.
    /// </summary>
    public static DropCost Predict(ModelConfig c, ModuleSkips skips, int promptTokens, int decodeTokens)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(skips);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(promptTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(decodeTokens);
        Modules.CheckSkips(c, skips, nameof(skips));
        int attnLayers = c.Layers - skips.Attention.Count, mlpLayers = c.Layers - skips.Mlp.Count;
        double d = c.Dim, kv = c.KvDim, h = c.MlpDim;
        double attnProj = 2 * d * (d + 2 * kv) + 2 * d * d;          // q, k, v, o projections per token
        double mlp = 2 * d * h * (c.Mlp == MlpKind.SwiGlu ? 3 : 2);    // gate, up, down (or up, down)
        double attnWeights = d * (d + 2 * kv) + d * d, mlpWeights = d * h * (c.Mlp == MlpKind.SwiGlu ? 3 : 2);
        long weightBytes = 4L * (long)(attnLayers * attnWeights + mlpLayers * mlpWeights);
        double perTokenDense = attnLayers * attnProj + mlpLayers * mlp;
        long p = promptTokens, n = decodeTokens;

        if (!c.IsCausal)
        {
            // QK^T and AV: 2 * d multiply-adds per (query, key) pair, n^2 pairs.
            double prefill = p * perTokenDense + attnLayers * 4 * d * p * p;
            return new DropCost(prefill, 0, 0, 0, weightBytes);
        }

        double classifier = 2 * d * c.Vocab;
        // Causal prefill: query i attends to i + 1 keys; only the last row goes through the classifier.
        double prefillFlops = p * perTokenDense + attnLayers * 4 * d * (p * (p + 1) / 2.0) + classifier;
        // Decode step j (0-based) attends to p + j + 1 keys; average over the steps.
        double meanContext = n == 0 ? 0 : p + (n + 1) / 2.0;
        double decodeFlops = n == 0 ? 0 : perTokenDense + attnLayers * 4 * d * meanContext + classifier;
        // Every decode token reads all kept weights, the classifier, and the keys and values of every kept attention layer.
        double decodeBytes = n == 0 ? 0 : weightBytes + 4.0 * d * c.Vocab + attnLayers * 2 * 4 * kv * meanContext;
        long kvBytes = attnLayers * 2L * sizeof(float) * (p + n) * c.KvDim;
        return new DropCost(prefillFlops, decodeFlops, decodeBytes, kvBytes, weightBytes);
    }
}
