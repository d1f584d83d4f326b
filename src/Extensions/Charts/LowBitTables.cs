using Microsoft.Data.Analysis;
using Workbench.Engine.Costs;
using Workbench.Engine.LowBit;
using Workbench.Engine.Quantization;

namespace Workbench.Interactive.Charts;

/// <summary>Tables (DataFrames with display column names) of the low-bit results; the engine returns plain records.</summary>
public static class LowBitTables
{
    public static DataFrame ToDataFrame(this LosslessReport r) => new(
        new StringDataFrameColumn("layer", r.Layers.Select(l => l.Name)),
        new Int32DataFrameColumn("rows", r.Layers.Select(l => l.Rows)),
        new Int32DataFrameColumn("cols", r.Layers.Select(l => l.Cols)),
        new Int32DataFrameColumn("tokens", r.Layers.Select(l => l.TokensChecked)),
        new StringDataFrameColumn("paths", r.Layers.Select(l => l.Paths)),
        new Int64DataFrameColumn("int_mismatches", r.Layers.Select(l => l.IntegerMismatches)),
        new DoubleDataFrameColumn("max_rel_error", r.Layers.Select(l => l.MaxRelativeError)),
        new BooleanDataFrameColumn("passed", r.Layers.Select(l => l.Passed)));

    /// <summary>One row per quantized linear of a ternary model: scale, zeros and bytes.</summary>
    public static DataFrame LayersToDataFrame(this TernaryModel m) => new(
        new StringDataFrameColumn("layer", m.Layers.Select(l => l.Name)),
        new Int32DataFrameColumn("rows", m.Layers.Select(l => l.Rows)),
        new Int32DataFrameColumn("cols", m.Layers.Select(l => l.Cols)),
        new SingleDataFrameColumn("scale", m.Layers.Select(l => l.Scale)),
        new DoubleDataFrameColumn("zero_fraction", m.Layers.Select(l => l.ZeroFraction)),
        new Int64DataFrameColumn("fp32_bytes", m.Layers.Select(l => l.Fp32Bytes)),
        new Int64DataFrameColumn("packed_bytes", m.Layers.Select(l => l.PackedBytes)));

    /// <summary>One row per quantized linear: its scale, zeros and bytes beside its lossless check.</summary>
    public static DataFrame ToDataFrame(this TernaryReport r)
    {
        var checks = r.Lossless.Layers.ToDictionary(l => l.Name);
        LayerCheck? Check(TernaryLayer l) => checks.GetValueOrDefault(l.Name);
        return new DataFrame(
            new StringDataFrameColumn("layer", r.Layers.Select(l => l.Name)),
            new Int32DataFrameColumn("rows", r.Layers.Select(l => l.Rows)),
            new Int32DataFrameColumn("cols", r.Layers.Select(l => l.Cols)),
            new SingleDataFrameColumn("scale", r.Layers.Select(l => l.Scale)),
            new DoubleDataFrameColumn("zero_fraction", r.Layers.Select(l => l.ZeroFraction)),
            new Int64DataFrameColumn("fp32_bytes", r.Layers.Select(l => l.Fp32Bytes)),
            new Int64DataFrameColumn("packed_bytes", r.Layers.Select(l => l.PackedBytes)),
            new Int32DataFrameColumn("tokens_checked", r.Layers.Select(l => Check(l)?.TokensChecked ?? 0)),
            new Int64DataFrameColumn("int_mismatches", r.Layers.Select(l => Check(l)?.IntegerMismatches ?? 0)),
            new DoubleDataFrameColumn("max_rel_error", r.Layers.Select(l => Check(l)?.MaxRelativeError ?? 0)),
            new BooleanDataFrameColumn("passed", r.Layers.Select(l => Check(l)?.Passed ?? false)));
    }

    public static DataFrame ToDataFrame(this IEnumerable<DecoderQuality> rows)
    {
        var list = rows.ToList();
        return new DataFrame(
            new StringDataFrameColumn("model", list.Select(r => r.Model)),
            new StringDataFrameColumn("format", list.Select(r => r.Format.ToString())),
            new Int32DataFrameColumn("positions", list.Select(r => r.Positions)),
            new DoubleDataFrameColumn("kl", list.Select(r => r.MeanKl)),
            new DoubleDataFrameColumn("top1_agreement", list.Select(r => r.Top1Agreement)),
            new DoubleDataFrameColumn("perplexity", list.Select(r => r.Perplexity)),
            new DoubleDataFrameColumn("perplexity_fp32", list.Select(r => r.PerplexityFp32)));
    }

    public static DataFrame ToDataFrame(this IEnumerable<EncoderQuality> rows)
    {
        var list = rows.ToList();
        return new DataFrame(
            new StringDataFrameColumn("model", list.Select(r => r.Model)),
            new StringDataFrameColumn("format", list.Select(r => r.Format.ToString())),
            new Int32DataFrameColumn("sentences", list.Select(r => r.Sentences)),
            new DoubleDataFrameColumn("mean_cosine", list.Select(r => r.MeanCosine)),
            new DoubleDataFrameColumn("min_cosine", list.Select(r => r.MinCosine)));
    }

    public static DataFrame ToDataFrame(this GemvComparison g) => new(
        new StringDataFrameColumn("format", g.Results.Select(r => r.Format.ToString())),
        new StringDataFrameColumn("isa", g.Results.Select(r => r.Path.ToString())),
        new DoubleDataFrameColumn("bits_per_weight", g.Results.Select(r => r.BitsPerWeight)),
        new Int64DataFrameColumn("weight_bytes", g.Results.Select(r => r.WeightBytes)),
        new DoubleDataFrameColumn("median_us", g.Results.Select(r => r.MedianUs)),
        new DoubleDataFrameColumn("min_us", g.Results.Select(r => r.MinUs)),
        new DoubleDataFrameColumn("floor_us", g.Results.Select(r => g.FloorUs(r.WeightBytes))),
        new DoubleDataFrameColumn("times_floor", g.Results.Select(g.TimesFloor)),
        new DoubleDataFrameColumn("gops", g.Results.Select(r => r.Gops)),
        new DoubleDataFrameColumn("weight_gbps", g.Results.Select(r => r.WeightGBps)),
        new Int32DataFrameColumn("runs", g.Results.Select(r => r.Runs)));

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

    public static DataFrame ToDataFrame(this IEnumerable<BitNetTokenCost> rows)
    {
        var list = rows.ToList();
        return new DataFrame(
            new StringDataFrameColumn("format", list.Select(c => c.Format.ToString())),
            new StringDataFrameColumn("head", list.Select(c => c.HeadFormat.ToString())),
            new DoubleDataFrameColumn("weight_mb_per_token", list.Select(c => c.WeightBytes / 1e6)),
            new Int64DataFrameColumn("int_ops", list.Select(c => c.IntOps)),
            new Int64DataFrameColumn("float_ops", list.Select(c => c.FloatOps)),
            new DoubleDataFrameColumn("arith_uj", list.Select(c => c.ArithmeticUj)),
            new DoubleDataFrameColumn("dram_uj", list.Select(c => c.MemoryUj)),
            new DoubleDataFrameColumn("energy_uj", list.Select(c => c.EnergyUj)),
            new DoubleDataFrameColumn("floor_ms_per_token", list.Select(c => c.FloorMsPerToken)),
            new DoubleDataFrameColumn("max_tokens_per_s", list.Select(c => c.MaxTokensPerSecond)));
    }
}
