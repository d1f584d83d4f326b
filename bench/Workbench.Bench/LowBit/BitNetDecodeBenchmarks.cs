using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Workbench.Engine.LowBit;

namespace Workbench.Bench.LowBit;

/// <summary>
/// One decode token of a model with the linear-layer shapes of BitNet b1.58 2B4T (30 layers of q, k, v, o, gate, up,
/// down, then a 128256 x 2560 head), seeded weights, each layer in its own memory so every token streams all of
/// them from DRAM: the layers in fp32 (the baseline, 8.3 GB), int8, I2S, TL1 or TL2; the head int8 in every case so
/// the ratio isolates the layer format. Attention, norms and activations are not included (see BitNetShapes).
/// Run: dotnet run -c Release --project bench/Workbench.Bench -- --filter '*BitNetDecode*' --job short
/// </summary>
[Config(typeof(Config))]
public class BitNetDecodeBenchmarks
{
    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new TokensPerSecondColumn());
            Orderer = new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared);
        }
    }

    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    private BitNetShapes? _model;

    private void Build(LowBitFormat f) => _model = new BitNetShapes(f, headFormat: LowBitFormat.Int8, threads: Threads);

    [GlobalSetup(Target = nameof(F32))] public void SetupF32() => Build(LowBitFormat.F32);
    [GlobalSetup(Target = nameof(Int8))] public void SetupInt8() => Build(LowBitFormat.Int8);
    [GlobalSetup(Target = nameof(I2S))] public void SetupI2S() => Build(LowBitFormat.I2S);
    [GlobalSetup(Target = nameof(TL1))] public void SetupTL1() => Build(LowBitFormat.TL1);
    [GlobalSetup(Target = nameof(TL2))] public void SetupTL2() => Build(LowBitFormat.TL2);

    [GlobalCleanup]
    public void Cleanup()
    {
        _model?.Dispose();
        _model = null;
    }

    [Benchmark(Baseline = true)] public void F32() => _model!.DecodeToken();
    [Benchmark] public void Int8() => _model!.DecodeToken();
    [Benchmark] public void I2S() => _model!.DecodeToken();
    [Benchmark] public void TL1() => _model!.DecodeToken();
    [Benchmark] public void TL2() => _model!.DecodeToken();

    /// <summary>Decode tokens per second from the mean time of one token.</summary>
    private sealed class TokensPerSecondColumn : IColumn
    {
        public string Id => nameof(TokensPerSecondColumn);
        public string ColumnName => "Tokens/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Decode tokens per second (1 / mean time of one token)";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report?.ResultStatistics is not { } s) return "-";
            return (1e9 / s.Mean).ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}
