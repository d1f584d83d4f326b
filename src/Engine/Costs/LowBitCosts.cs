using Microsoft.Data.Analysis;
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

    public static DataFrame ToDataFrame(this IEnumerable<TokenCost> rows)
    {
        var list = rows.ToList();
        return new DataFrame(
            new StringDataFrameColumn("format", list.Select(c => c.Format.ToString())),
            new StringDataFrameColumn("head", list.Select(c => c.HeadFormat.ToString())),
            new Int32DataFrameColumn("threads", list.Select(c => c.Threads)),
            new DoubleDataFrameColumn("weight_mb_per_token", list.Select(c => c.WeightBytesPerToken / 1e6)),
            new Int64DataFrameColumn("int_ops_per_token", list.Select(c => c.IntOpsPerToken)),
            new Int64DataFrameColumn("float_ops_per_token", list.Select(c => c.FloatOpsPerToken)),
            new DoubleDataFrameColumn("arith_uj_per_token", list.Select(c => c.ArithmeticUjPerToken)),
            new DoubleDataFrameColumn("memory_uj_per_token", list.Select(c => c.MemoryUjPerToken)),
            new DoubleDataFrameColumn("energy_uj_per_token", list.Select(c => c.EnergyUjPerToken)),
            new DoubleDataFrameColumn("measured_ms_per_token", list.Select(c => c.MeasuredMsPerToken)),
            new DoubleDataFrameColumn("tokens_per_s", list.Select(c => c.TokensPerSecond)),
            new DoubleDataFrameColumn("measured_gbps", list.Select(c => c.MeasuredGBps)));
    }

    public static DataFrame ToDataFrame(this IEnumerable<GemvCost> rows)
    {
        var list = rows.ToList();
        return new DataFrame(
            new StringDataFrameColumn("format", list.Select(c => c.Cost.Format.ToString())),
            new Int32DataFrameColumn("rows", list.Select(c => c.Cost.Rows)),
            new Int32DataFrameColumn("cols", list.Select(c => c.Cost.Cols)),
            new Int32DataFrameColumn("threads", list.Select(c => c.Threads)),
            new Int64DataFrameColumn("weight_bytes", list.Select(c => c.Cost.WeightBytes)),
            new Int64DataFrameColumn("int_ops", list.Select(c => c.Cost.IntOps)),
            new Int64DataFrameColumn("float_ops", list.Select(c => c.Cost.FloatAdds + c.Cost.FloatMults)),
            new DoubleDataFrameColumn("energy_uj", list.Select(c => c.Cost.TotalEnergyPj / 1e6)),
            new DoubleDataFrameColumn("median_us", list.Select(c => c.MedianUs)),
            new DoubleDataFrameColumn("min_us", list.Select(c => c.MinUs)),
            new DoubleDataFrameColumn("measured_gbps", list.Select(c => c.MeasuredGBps)),
            new DoubleDataFrameColumn("gops", list.Select(c => c.Gops)));
    }

    /// <summary>Packed bytes (with padding and scales) of a rows x cols matrix, as the formats in LowBit lay them out.</summary>
    public static long WeightBytes(LowBitFormat format, int rows, int cols)
    {
        long r = rows, r64 = (rows + 63) / 64 * 64;
        return format switch
        {
            LowBitFormat.F32 => 4 * r * cols,
            LowBitFormat.Int8 => r * RoundUp(cols, Int8.ColAlign) + 4 * r,
            LowBitFormat.I2S => r * RoundUp(cols, I2S.ColAlign) / 4 + 4,
            LowBitFormat.TL1 => r64 * RoundUp(cols, TL1.ColAlign) / 4 + 4,
            LowBitFormat.TL2 => r64 * (cols / TL2.BlockCols) * TL2.BlockBytes / TL2.RowGroup + 4
                                + (cols % TL2.BlockCols == 0 ? 0 : WeightBytes(LowBitFormat.TL1, rows, cols % TL2.BlockCols)),
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
        };
    }

    public static LowBitCost ForGemv(LowBitFormat format, int rows, int cols, EnergyModel? energy = null)
    {
        if (rows <= 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "rows must be positive.");
        if (cols <= 0) throw new ArgumentOutOfRangeException(nameof(cols), cols, "cols must be positive.");
        var e = energy ?? EnergyModel.Horowitz2014;
        long n = (long)rows * cols;
        long bytes = WeightBytes(format, rows, cols);
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

    public static DataFrame ToDataFrame(this IEnumerable<LowBitCost> costs)
    {
        var list = costs.ToList();
        return new DataFrame(
            new StringDataFrameColumn("format", list.Select(c => c.Format.ToString())),
            new Int32DataFrameColumn("rows", list.Select(c => c.Rows)),
            new Int32DataFrameColumn("cols", list.Select(c => c.Cols)),
            new Int64DataFrameColumn("weight_bytes", list.Select(c => c.WeightBytes)),
            new DoubleDataFrameColumn("bits_per_weight", list.Select(c => c.BitsPerWeight)),
            new Int64DataFrameColumn("int_ops", list.Select(c => c.IntOps)),
            new Int64DataFrameColumn("float_ops", list.Select(c => c.FloatAdds + c.FloatMults)),
            new DoubleDataFrameColumn("arith_uj", list.Select(c => c.ArithmeticEnergyPj / 1e6)),
            new DoubleDataFrameColumn("memory_uj", list.Select(c => c.MemoryEnergyPj / 1e6)),
            new DoubleDataFrameColumn("total_uj", list.Select(c => c.TotalEnergyPj / 1e6)));
    }

    private static long RoundUp(int n, int m) => (n + m - 1) / m * (long)m;
}
