using Workbench.Engine.LowBit;

namespace Workbench.Engine.Costs;

/// <summary>
/// The cost model's figures for one decode token of the BitNet b1.58 2B4T linear layers in one format, with no
/// measurement: weight bytes streamed, operations, energy (arithmetic and DRAM, Horowitz 2014), and the bandwidth
/// floor (the time to read the weights once at a given read bandwidth) with the tokens per second it allows.
/// </summary>
public sealed record BitNetTokenCost(LowBitFormat Format, LowBitFormat HeadFormat, long WeightBytes, long IntOps, long FloatOps,
    double ArithmeticUj, double MemoryUj, double ReadGBps)
{
    public double EnergyUj => ArithmeticUj + MemoryUj;
    /// <summary>Milliseconds per token if decode did nothing but stream the weights at <see cref="ReadGBps"/>.</summary>
    public double FloorMsPerToken => WeightBytes / (ReadGBps * 1e6);
    public double MaxTokensPerSecond => 1000 / FloorMsPerToken;
}

public static class BitNetTokenCosts
{
    /// <summary>
    /// Sums <see cref="LowBitCosts.ForBitNetToken"/> for each format. The head (128256 x 2560) is fp32 for the fp32
    /// model and <paramref name="headFormat"/> (default Int8) for every other format, as low-bit runtimes keep it.
    /// </summary>
    public static IReadOnlyList<BitNetTokenCost> Analytic(IEnumerable<LowBitFormat> formats, double readGBps,
        LowBitFormat headFormat = LowBitFormat.Int8, EnergyModel? energy = null)
    {
        ArgumentNullException.ThrowIfNull(formats);
        if (!(readGBps > 0 && double.IsFinite(readGBps)))
            throw new ArgumentOutOfRangeException(nameof(readGBps), readGBps, "read bandwidth must be a positive number of GB/s.");
        if (headFormat is not (LowBitFormat.F32 or LowBitFormat.Int8))
            throw new ArgumentOutOfRangeException(nameof(headFormat), headFormat, "the head is F32 or Int8.");
        return formats.Select(f =>
        {
            var head = f == LowBitFormat.F32 ? LowBitFormat.F32 : headFormat;
            var parts = LowBitCosts.ForBitNetToken(f, head, BitNetShapes.Layers, energy);
            return new BitNetTokenCost(f, head, parts.Sum(c => c.WeightBytes), parts.Sum(c => c.IntOps), parts.Sum(c => c.FloatAdds + c.FloatMults),
                parts.Sum(c => c.ArithmeticEnergyPj) / 1e6, parts.Sum(c => c.MemoryEnergyPj) / 1e6, readGBps);
        }).ToList();
    }
}
