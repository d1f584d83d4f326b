using Workbench.Engine.LowBit;
using Workbench.Engine.Models;

namespace Workbench.Engine.Costs;

/// <summary>
/// What one decode token of a decoder should cost, from shapes alone: the techniques that change it compose here
/// (dropped modules are absent, dropped tokens are absent from the KV cache of the layers after their boundary, block
/// linears are stored in a format). Averages over the decode steps. FLOPs follow <see cref="Flops"/> (2 per
/// multiply-accumulate, whatever the arithmetic: ternary kernels do the same accumulates as int8 adds). Bytes per token
/// are the weights streamed (block linears in their format, the fp32 head) plus the keys and values read.
/// Energy: <see cref="LowBitCosts.ForGemv"/> for every linear, fp32 multiply-adds for attention, DRAM for the KV reads.
/// </summary>
public sealed record DecodeTokenCost(double FlopsPerToken, long WeightBytesPerToken, double KvBytesReadPerToken, long KvCacheBytes,
    double ArithmeticJPerToken, double MemoryJPerToken)
{
    public double BytesPerToken => WeightBytesPerToken + KvBytesReadPerToken;
    public double EnergyJPerToken => ArithmeticJPerToken + MemoryJPerToken;
}

public static class DecodeCosts
{
    /// <summary>
    /// One decode token after a prefill left <paramref name="keysPerLayer"/>[l] entries in layer l's KV cache (its
    /// tokens that reached block l), averaged over <paramref name="decodeTokens"/> steps: step j attends to
    /// keys + j + 1 entries in every kept attention layer. <paramref name="linears"/> is the format of the block
    /// linears (F32 for the fp model); the output head stays fp32. KV cache bytes: fp32 keys and values held at the end.
    /// </summary>
    public static DecodeTokenCost Predict(ModelConfig c, ModuleSkips skips, IReadOnlyList<int> keysPerLayer, int decodeTokens,
        LowBitFormat linears = LowBitFormat.F32, EnergyModel? energy = null)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(skips);
        ArgumentNullException.ThrowIfNull(keysPerLayer);
        if (keysPerLayer.Count != c.Layers) throw new ArgumentException($"{keysPerLayer.Count} key counts for {c.Layers} layers", nameof(keysPerLayer));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(decodeTokens);
        skips.Check(c, nameof(skips));
        var e = energy ?? EnergyModel.Horowitz2014;
        var s = TransformerShape.From(c);
        double flops = 0, arithmeticPj = 0, memoryPj = 0, kvRead = 0;
        long weightBytes = 0, kvHeld = 0;
        void Gemv(LowBitFormat f, int rows, int cols)
        {
            var g = LowBitCosts.ForGemv(f, rows, cols, e);
            flops += 2.0 * rows * cols;
            weightBytes += g.WeightBytes;
            arithmeticPj += g.ArithmeticEnergyPj;
            memoryPj += g.MemoryEnergyPj;
        }
        for (int l = 0; l < c.Layers; l++)
        {
            if (!skips.SkipsAttention(l))
            {
                Gemv(linears, c.QDim, c.Dim);
                Gemv(linears, c.KvDim, c.Dim);
                Gemv(linears, c.KvDim, c.Dim);
                Gemv(linears, c.Dim, c.QDim);
                double keys = keysPerLayer[l] + (decodeTokens + 1) / 2.0;
                double macs = Flops.PairMacs(s) * keys;
                flops += 2 * macs;
                arithmeticPj += macs * (e.Fp32MultPj + e.Fp32AddPj);
                double bytes = 2.0 * sizeof(float) * c.KvDim * keys;
                kvRead += bytes;
                memoryPj += bytes * e.DramPjPerByte;
                kvHeld += 2L * sizeof(float) * c.KvDim * (keysPerLayer[l] + decodeTokens);
            }
            if (!skips.SkipsMlp(l))
            {
                Gemv(linears, c.MlpDim, c.Dim);
                if (c.Mlp == MlpKind.SwiGlu) Gemv(linears, c.MlpDim, c.Dim);
                Gemv(linears, c.Dim, c.MlpDim);
            }
        }
        Gemv(LowBitFormat.F32, c.Vocab, c.Dim);
        return new DecodeTokenCost(flops, weightBytes, kvRead, kvHeld, arithmeticPj * 1e-12, memoryPj * 1e-12);
    }
}
