using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Workbench.Engine.LowBit;

namespace Workbench.Bench.LowBit;

/// <summary>
/// Cold-weight GEMV per format: a pool of weight copies (GemvProbe.DefaultPoolBytes, as the reference kernels' pool), a different copy
/// per call round robin; activation quantization (and TL tables) inside the timed call. fp32 is the baseline.
/// Shapes are rows x cols (out x in). Run: dotnet run -c Release --project bench/Workbench.Bench -- --filter '*Gemv*'
/// </summary>
[Config(typeof(Config))]
public class GemvBenchmarks
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

    private int Rows => int.Parse(Shape.Split('x')[0]);
    private int Cols => int.Parse(Shape.Split('x')[1]);

    private float[][] _f32 = [];
    private PackedMatrix[] _pool = [];
    private LowBitWorkspace? _ws;
    private float[] _x = [], _y = [];
    private int _next;
    private WorkerTeamRunner? _runner;

    private void Common()
    {
        var rng = new Random(1);
        _x = new float[Cols];
        for (int i = 0; i < _x.Length; i++) _x[i] = (float)(rng.NextDouble() * 2 - 1);
        _y = new float[Rows];
    }

    private void SetupPacked(LowBitFormat f)
    {
        Common();
        var first = LowBitFormats.Get(f).Random(Rows, Cols, 1);
        int copies = (int)Math.Max(2, (GemvProbe.DefaultPoolBytes + first.WeightBytes - 1) / first.WeightBytes);
        _pool = new PackedMatrix[copies];
        _pool[0] = first;
        for (int i = 1; i < copies; i++) _pool[i] = first.CloneWeights();
        _ws = first.CreateWorkspace(Threads);
    }

    [GlobalSetup(Target = nameof(F32))]
    public void SetupF32()
    {
        Common();
        var rng = new Random(2);
        var w = new float[(long)Rows * Cols];
        for (long i = 0; i < w.LongLength; i++) w[i] = (float)(rng.NextDouble() * 2 - 1);
        int copies = (int)Math.Max(2, GemvProbe.DefaultPoolBytes / (w.LongLength * 4) + 1);
        _f32 = Enumerable.Range(0, copies).Select(i => i == 0 ? w : (float[])w.Clone()).ToArray();
        _runner = new WorkerTeamRunner(Threads, Rows, Cols);
    }

    [GlobalSetup(Target = nameof(Int8))] public void SetupInt8() => SetupPacked(LowBitFormat.Int8);
    [GlobalSetup(Target = nameof(I2S))] public void SetupI2S() => SetupPacked(LowBitFormat.I2S);
    [GlobalSetup(Target = nameof(TL1))] public void SetupTL1() => SetupPacked(LowBitFormat.TL1);
    [GlobalSetup(Target = nameof(TL2))] public void SetupTL2() => SetupPacked(LowBitFormat.TL2);

    [GlobalCleanup]
    public void Cleanup()
    {
        _ws?.Dispose();
        _runner?.Dispose();
        _pool = [];
        _f32 = [];
    }

    [Benchmark(Baseline = true)]
    public void F32()
    {
        _runner!.Run(_f32[_next], _x, _y);
        _next = (_next + 1) % _f32.Length;
    }

    private void Packed()
    {
        _pool[_next].Gemv(_x, _y, _ws!);
        _next = (_next + 1) % _pool.Length;
    }

    [Benchmark] public void Int8() => Packed();
    [Benchmark] public void I2S() => Packed();
    [Benchmark] public void TL1() => Packed();
    [Benchmark] public void TL2() => Packed();

    /// <summary>fp32 GEMV split across a fixed thread pair (the engine's MatMul.GemvRows).</summary>
    private sealed class WorkerTeamRunner : IDisposable
    {
        private readonly int _threads, _rows, _cols;
        private float[] _w = [], _x = [], _y = [];
        private readonly Thread[] _workers;
        private readonly Barrier _start, _end;
        private volatile bool _stop;

        public WorkerTeamRunner(int threads, int rows, int cols)
        {
            (_threads, _rows, _cols) = (threads, rows, cols);
            _start = new Barrier(threads);
            _end = new Barrier(threads);
            _workers = Enumerable.Range(1, threads - 1).Select(t => new Thread(() =>
            {
                while (true)
                {
                    _start.SignalAndWait();
                    if (_stop) return;
                    Part(t);
                    _end.SignalAndWait();
                }
            }) { IsBackground = true }).ToArray();
            foreach (var w in _workers) w.Start();
        }

        private int _next;

        // As the engine's teams do (WorkerTeam.RunChunks): each thread takes the next unclaimed chunk of rows.
        private void Part(int t)
        {
            int chunks = Workbench.Engine.Tensors.MatMul.GemvChunks(_rows);
            for (int c = t; c < chunks; c = Interlocked.Increment(ref _next) - 1)
                Workbench.Engine.Tensors.MatMul.GemvChunk(_w, _rows, _cols, _x, _y, c);
        }

        public void Run(float[] w, float[] x, float[] y)
        {
            (_w, _x, _y) = (w, x, y);
            _next = _threads;
            if (_threads == 1) { Part(0); return; }
            _start.SignalAndWait();
            Part(0);
            _end.SignalAndWait();
        }

        public void Dispose()
        {
            _stop = true;
            if (_threads > 1) _start.SignalAndWait();
        }
    }
}

/// <summary>Streaming read of a 256 MB buffer (sum of 64-bit words), 1 and 2 threads: the memory floor for GEMV.</summary>
public class MemoryBandwidthBenchmarks
{
    private const long Bytes = 256L << 20;
    private ulong[] _buffer = [];

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _buffer = GC.AllocateArray<ulong>((int)(Bytes / 8), pinned: true);
        Array.Fill(_buffer, 1UL);
    }

    [Benchmark]
    public ulong StreamRead256MB()
    {
        ulong total = 0;
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
        {
            long n = _buffer.LongLength;
            var span = _buffer.AsSpan((int)(n * t / Threads), (int)(n * (t + 1) / Threads - n * t / Threads));
            Vector512<ulong> s0 = default, s1 = default;
            int i = 0;
            for (; i + 16 <= span.Length; i += 16)
            {
                s0 += Vector512.Create<ulong>(span.Slice(i, 8));
                s1 += Vector512.Create<ulong>(span.Slice(i + 8, 8));
            }
            Interlocked.Add(ref total, Vector512.Sum(s0 + s1));
        });
        return total;
    }
}

/// <summary>GOPS (2 ops per weight) or effective GB/s of packed weights, from the mean time of each case.</summary>
internal sealed class RateColumn(string name, bool weightBytes) : IColumn
{
    public string Id => nameof(RateColumn) + name;
    public string ColumnName => name;
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => weightBytes ? "Packed weight bytes / mean time" : "2 x rows x cols / mean time";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics == null || benchmarkCase.Parameters["Shape"] is not string shape) return "-";
        var parts = shape.Split('x');
        int rows = int.Parse(parts[0]), cols = int.Parse(parts[1]);
        double ns = report.ResultStatistics.Mean;
        string method = benchmarkCase.Descriptor.WorkloadMethod.Name;
        var format = Enum.Parse<LowBitFormat>(method, ignoreCase: true);
        double value = weightBytes
            ? LowBitFormats.WeightBytes(format, rows, cols) / ns
            : 2.0 * rows * cols / ns;
        return value.ToString("F1");
    }
}
