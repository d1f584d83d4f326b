using Workbench.Engine.LowBit;

namespace Workbench.Engine.Costs;

/// <summary>
/// Energy per operation and per byte of DRAM traffic, in picojoules.
/// Source: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm, 0.9 V:
/// 8-bit int add 0.03 pJ, 32-bit int add 0.1 pJ, 8-bit int mult 0.2 pJ, 32-bit float add 0.9 pJ, 32-bit float mult
/// 3.7 pJ; DRAM 1.3-2.6 nJ per 64-bit access. We take the low end, 1.3 nJ / 8 bytes = 162.5 pJ per byte (~20 pJ/bit).
/// </summary>
public sealed record EnergyModel(double Int8AddPj, double Int32AddPj, double Int8MultPj, double Fp32AddPj, double Fp32MultPj, double DramPjPerByte, string Source)
{
    public static EnergyModel Horowitz2014 { get; } = new(0.03, 0.1, 0.2, 0.9, 3.7, 1300.0 / 8,
        "Horowitz, ISSCC 2014, 45 nm: int8 add 0.03 pJ, int32 add 0.1 pJ, int8 mult 0.2 pJ, fp32 add 0.9 pJ, fp32 mult 3.7 pJ, DRAM 1.3 nJ / 64-bit access");
}

/// <summary>
/// Cost of one token through one linear layer (a GEMV) in a format. Operation counts are the arithmetic the format
/// needs, not what a given ISA executes: fp32 = one fp32 mult + add per weight; int8 = one int8 mult + one int32 add;
/// ternary (I2S, TL1, TL2) = one int8 add per weight (multiplying by -1, 0, 1 is a signed add, as the BitNet b1.58
/// paper counts it). Every format also pays, per row, one fp32 multiply for the scale, and per input one fp32 multiply
/// to quantize the activations (not for fp32).
/// </summary>
public sealed record LowBitCost(LowBitFormat Format, int Rows, int Cols, long WeightBytes, long IntAdds, long IntMults,
    long FloatAdds, long FloatMults, double ArithmeticEnergyPj, double MemoryEnergyPj)
{
    public double BitsPerWeight => WeightBytes * 8.0 / ((long)Rows * Cols);
    public double TotalEnergyPj => ArithmeticEnergyPj + MemoryEnergyPj;
    public long IntOps => IntAdds + IntMults;
}

/// <summary>
/// One decode token of the BitNet 2B4T-shaped model: the cost model's figures (weight bytes streamed, ops, energy per
/// Horowitz 2014) beside the measured time. MeasuredGBps = weight bytes / measured time.
/// </summary>
public sealed record TokenCost(LowBitFormat Format, LowBitFormat HeadFormat, int Threads, long WeightBytesPerToken, long IntOpsPerToken,
    long FloatOpsPerToken, double ArithmeticUjPerToken, double MemoryUjPerToken, double MeasuredMsPerToken, double TokensPerSecond)
{
    public double EnergyUjPerToken => ArithmeticUjPerToken + MemoryUjPerToken;
    public double MeasuredGBps => WeightBytesPerToken / (MeasuredMsPerToken * 1e6);
}

/// <summary>One GEMV: cost-model figures beside a measured cold-weight time (GemvProbe).</summary>
public sealed record GemvCost(LowBitCost Cost, int Threads, double MedianUs, double MinUs)
{
    public double MeasuredGBps => Cost.WeightBytes / (MedianUs * 1e3);
    public double Gops => 2.0 * Cost.Rows * Cost.Cols / (MedianUs * 1e3);
}

public static class LowBitCosts
{
    /// <summary>The cost model for a measured decode token (same layer and head formats, same layer count).</summary>
    public static TokenCost ForToken(DecodeMeasurement measured, EnergyModel? energy = null)
    {
        ArgumentNullException.ThrowIfNull(measured);
        var parts = ForBitNetToken(measured.Format, measured.HeadFormat, measured.Layers, energy);
        return new TokenCost(measured.Format, measured.HeadFormat, measured.Threads, parts.Sum(c => c.WeightBytes), parts.Sum(c => c.IntOps),
            parts.Sum(c => c.FloatAdds + c.FloatMults), parts.Sum(c => c.ArithmeticEnergyPj) / 1e6, parts.Sum(c => c.MemoryEnergyPj) / 1e6,
            measured.MedianMsPerToken, measured.TokensPerSecond);
    }

    /// <summary>The cost model for a measured GEMV.</summary>
    public static GemvCost ForGemv(GemvProbeResult measured, EnergyModel? energy = null)
    {
        ArgumentNullException.ThrowIfNull(measured);
        return new GemvCost(ForGemv(measured.Format, measured.Rows, measured.Cols, energy), measured.Threads, measured.MedianUs, measured.MinUs);
    }

    public static LowBitCost ForGemv(LowBitFormat format, int rows, int cols, EnergyModel? energy = null)
    {
        if (rows <= 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "rows must be positive.");
        if (cols <= 0) throw new ArgumentOutOfRangeException(nameof(cols), cols, "cols must be positive.");
        var e = energy ?? EnergyModel.Horowitz2014;
        long n = (long)rows * cols;
        long bytes = LowBitFormats.WeightBytes(format, rows, cols);
        (long ia, long im, long fa, long fm) = format switch
        {
            LowBitFormat.F32 => (0L, 0L, n, n),
            LowBitFormat.Int8 => (n, n, 0L, (long)rows + cols),
            _ => (n, 0L, 0L, (long)rows + cols),
        };
        // Int8 accumulates products in int32; ternary accumulates signed int8 activations (int8 adds).
        double intAddPj = format == LowBitFormat.Int8 ? e.Int32AddPj : e.Int8AddPj;
        double arithmetic = ia * intAddPj + im * e.Int8MultPj + fa * e.Fp32AddPj + fm * e.Fp32MultPj;
        return new LowBitCost(format, rows, cols, bytes, ia, im, fa, fm, arithmetic, bytes * e.DramPjPerByte);
    }

    /// <summary>One decode token of the BitNet b1.58 2B4T linear layers (layers x q,k,v,o,gate,up,down, plus the head).</summary>
    public static IReadOnlyList<LowBitCost> ForBitNetToken(LowBitFormat format, LowBitFormat headFormat = LowBitFormat.Int8, int layers = BitNetShapes.Layers, EnergyModel? energy = null)
    {
        var list = new List<LowBitCost>();
        foreach (var s in BitNetShapes.LayerLinears)
        {
            var c = ForGemv(format, s.Rows, s.Cols, energy);
            list.Add(c with { WeightBytes = c.WeightBytes * layers, IntAdds = c.IntAdds * layers, IntMults = c.IntMults * layers,
                FloatAdds = c.FloatAdds * layers, FloatMults = c.FloatMults * layers,
                ArithmeticEnergyPj = c.ArithmeticEnergyPj * layers, MemoryEnergyPj = c.MemoryEnergyPj * layers });
        }
        list.Add(ForGemv(headFormat, BitNetShapes.Head.Rows, BitNetShapes.Head.Cols, energy));
        return list;
    }
}
