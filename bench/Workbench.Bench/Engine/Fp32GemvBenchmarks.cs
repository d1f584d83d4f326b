using BenchmarkDotNet.Attributes;
using Workbench.Engine.Tensors;

namespace Workbench.Bench.Engine;

/// <summary>
/// fp32 GEMV with cold weights: a pool of weight copies well above the last-level cache (~32 MB here), a different
/// copy each call, so every call streams its weights from DRAM. Effective GB/s = rows * cols * 4 / time.
/// Reference (llama.cpp F32 on this machine): 4096x4096 3,452 us (1 thread), 1,819 us (2 threads).
/// </summary>
public class Fp32GemvBenchmarks
{
    [Params("4096x4096", "11008x4096")] public string Shape { get; set; } = "4096x4096";
    [Params(1, 2)] public int Threads { get; set; }

    private float[][] _pool = null!;
    private float[] _x = null!, _y = null!;
    private int _rows, _cols, _next;

    [GlobalSetup]
    public void Setup()
    {
        var p = Shape.Split('x');
        _rows = int.Parse(p[0]); _cols = int.Parse(p[1]);
        long bytes = (long)_rows * _cols * 4;
        int copies = (int)Math.Max(2, 256L * 1024 * 1024 / bytes);
        var rng = new Random(1);
        _pool = Enumerable.Range(0, copies).Select(_ =>
        {
            var w = new float[(long)_rows * _cols];
            for (long i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() - 0.5);
            return w;
        }).ToArray();
        _x = Enumerable.Range(0, _cols).Select(i => (float)Math.Sin(i)).ToArray();
        _y = new float[_rows];
    }

    [Benchmark]
    public float Gemv()
    {
        var w = _pool[_next++ % _pool.Length];
        MatMul.Gemv(w, _rows, _cols, _x, _y, Threads);
        return _y[0];
    }
}
