using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Workbench.Engine.LowBit;

namespace Workbench.Bench.LowBit;

/// <summary>
/// Cold-weight GEMV of the stored-type kernels (weights as a checkpoint stores them: f16, bf16, Q8_0, Q4_0, the K types Q4_K, Q5_K, Q6_K that llama-quantize's Q4_K_M mixes, Q3_K of its Q3_K_M, Q2_K of its Q2_K, and the older Q4_1 / Q5_0 / Q5_1: every stored type the loaders keep), the same
/// pool discipline and shapes as <see cref="GemvBenchmarks"/>; Q8_0 / Q4_0 quantize the activations to Q8_0 blocks
/// inside the timed call (as llama.cpp does). f16 is the baseline.
/// Run: dotnet run -c Release --project bench/Workbench.Bench -- --filter '*StoredGemv*'
/// </summary>
[Config(typeof(Config))]
public class StoredGemvBenchmarks
{
    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new RateColumn("GOPS", weightBytes: false), new RateColumn("Weight GB/s", weightBytes: true));
            Orderer = new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared);
        }
    }

    [Params("6912x2560", "2560x6912", "4096x4096", "11008x4096", "4096x11008")]
    public string Shape { get; set; } = "4096x4096";

    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    private StoredMatrix[] _pool = [];
    private float[] _x = [], _y = [];
    private int _next;

    private void Setup(StoredType type)
    {
        int rows = int.Parse(Shape.Split('x')[0]), cols = int.Parse(Shape.Split('x')[1]);
        var rng = new Random(1);
        _x = new float[cols];
        for (int i = 0; i < cols; i++) _x[i] = (float)(rng.NextDouble() * 2 - 1);
        _y = new float[rows];
        var first = StoredMatrix.Random(type, rows, cols, 1);
        int copies = (int)Math.Max(2, (GemvProbe.DefaultPoolBytes + first.WeightBytes - 1) / first.WeightBytes);
        _pool = new StoredMatrix[copies];
        _pool[0] = first;
        for (int i = 1; i < copies; i++) _pool[i] = first.CloneWeights();
    }

    [GlobalSetup(Target = nameof(F16))] public void SetupF16() => Setup(StoredType.F16);
    [GlobalSetup(Target = nameof(BF16))] public void SetupBF16() => Setup(StoredType.BF16);
    [GlobalSetup(Target = nameof(Q8_0))] public void SetupQ8() => Setup(StoredType.Q8_0);
    [GlobalSetup(Target = nameof(Q4_0))] public void SetupQ4() => Setup(StoredType.Q4_0);
    [GlobalSetup(Target = nameof(Q4_K))] public void SetupQ4_K() => Setup(StoredType.Q4_K);
    [GlobalSetup(Target = nameof(Q5_K))] public void SetupQ5_K() => Setup(StoredType.Q5_K);
    [GlobalSetup(Target = nameof(Q6_K))] public void SetupQ6_K() => Setup(StoredType.Q6_K);
    [GlobalSetup(Target = nameof(Q3_K))] public void SetupQ3_K() => Setup(StoredType.Q3_K);
    [GlobalSetup(Target = nameof(Q4_1))] public void SetupQ4_1() => Setup(StoredType.Q4_1);
    [GlobalSetup(Target = nameof(Q5_1))] public void SetupQ5_1() => Setup(StoredType.Q5_1);
    [GlobalSetup(Target = nameof(Q5_0))] public void SetupQ5_0() => Setup(StoredType.Q5_0);
    [GlobalSetup(Target = nameof(Q2_K))] public void SetupQ2_K() => Setup(StoredType.Q2_K);

    [GlobalCleanup] public void Cleanup() => _pool = [];

    private void Run()
    {
        _pool[_next].Gemv(_x, _y, Threads);
        _next = (_next + 1) % _pool.Length;
    }

    [Benchmark(Baseline = true)] public void F16() => Run();
    [Benchmark] public void BF16() => Run();
    [Benchmark] public void Q8_0() => Run();
    [Benchmark] public void Q4_0() => Run();
    [Benchmark] public void Q4_K() => Run();
    [Benchmark] public void Q5_K() => Run();
    [Benchmark] public void Q6_K() => Run();
    [Benchmark] public void Q3_K() => Run();
    [Benchmark] public void Q4_1() => Run();
    [Benchmark] public void Q5_1() => Run();
    [Benchmark] public void Q5_0() => Run();
    [Benchmark] public void Q2_K() => Run();
}
