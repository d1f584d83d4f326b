using Workbench.Engine.Models;

namespace Workbench.Engine.Costs;

/// <summary>
/// What a model with some modules dropped should cost, from its shapes alone (fp32 weights and KV cache), counted with
/// <see cref="Flops"/>' convention (FLOPs = 2 x MACs, causal attention for decoders) plus the decoder's output head.
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
    /// one at a time, with a KV cache of capacity promptTokens + decodeTokens (what the layer-drop evaluator allocates).
    /// Encoders (no causal mask, no cache, no classifier): prefill is one bidirectional pass, decode costs are 0.
    /// Decoders: only the last prompt row goes through the classifier. Decode figures are averages over the decode steps.
    /// </summary>
    public static DropCost Predict(ModelConfig c, ModuleSkips skips, int promptTokens, int decodeTokens)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(skips);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(promptTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(decodeTokens);
        foreach (var l in skips.Attention.Concat(skips.Mlp))
            if ((uint)l >= (uint)c.Layers)
                throw new ArgumentOutOfRangeException(nameof(skips), l, $"layer {l} is out of range: the model has layers 0..{c.Layers - 1}");
        var s = TransformerShape.From(c);
        int attnLayers = c.Layers - skips.Attention.Count, mlpLayers = c.Layers - skips.Mlp.Count;
        // A projection's weight count is its MACs per token.
        long weights = attnLayers * Flops.AttentionProjectionMacs(s) + mlpLayers * Flops.MlpMacs(s);
        long weightBytes = sizeof(float) * weights;
        double perTokenDense = 2.0 * weights;
        long p = promptTokens, n = decodeTokens;
        double prefillBlocks = 2.0 * Flops.ForTokens(s, Enumerable.Repeat(promptTokens, c.Layers).ToArray(), skips).TotalMacs;
        if (!c.IsCausal) return new DropCost(prefillBlocks, 0, 0, 0, weightBytes);

        double classifier = 2.0 * c.Dim * c.Vocab;
        // Decode step j (0-based) attends to p + j + 1 keys; average over the steps.
        double meanContext = n == 0 ? 0 : p + (n + 1) / 2.0;
        double decodeFlops = n == 0 ? 0 : perTokenDense + 2.0 * attnLayers * Flops.PairMacs(s) * meanContext + classifier;
        // Every decode token reads all kept weights, the classifier, and the keys and values of every kept attention layer.
        double decodeBytes = n == 0 ? 0 : weightBytes + 4.0 * c.Dim * c.Vocab + attnLayers * 2 * 4 * (double)c.KvDim * meanContext;
        long kvBytes = attnLayers * 2L * sizeof(float) * (p + n) * c.KvDim;
        return new DropCost(prefillBlocks + classifier, decodeFlops, decodeBytes, kvBytes, weightBytes);
    }
}
