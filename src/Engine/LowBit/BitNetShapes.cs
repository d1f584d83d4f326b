using Workbench.Engine.Tensors;
using System.Diagnostics;

namespace Workbench.Engine.LowBit;

/// <summary>One per-token linear layer of the model: output rows x input cols.</summary>
public sealed record LinearShape(string Name, int Rows, int Cols);

/// <summary>Decode speed and weight memory of one format on the BitNet b1.58 2B4T shapes.</summary>
public sealed record DecodeMeasurement(LowBitFormat Format, LowBitFormat HeadFormat, int Layers, int Threads, IsaPath Path,
    int Tokens, double MedianMsPerToken, double TokensPerSecond, long LayerWeightBytes, long HeadWeightBytes)
{
    public long TotalWeightBytes => LayerWeightBytes + HeadWeightBytes;
}

/// <summary>
/// The linear-layer shapes of BitNet b1.58 2B4T (30 layers, hidden 2560, FFN 6912, 20 heads, 5 KV heads of 128 -> kv
/// dim 640, vocab 128256), filled with seeded ternary weights, to measure one decode token's worth of GEMVs
/// (q, k, v, o, gate, up, down per layer, then the head). Attention, norms and activations are not included.
/// </summary>
public sealed class BitNetShapes : IDisposable
{
    public const int Layers = 30, Hidden = 2560, Ffn = 6912, Heads = 20, KvHeads = 5, HeadDim = Hidden / Heads, KvDim = KvHeads * HeadDim, Vocab = 128256;

    public static IReadOnlyList<LinearShape> LayerLinears { get; } =
    [
        new("q", Hidden, Hidden), new("k", KvDim, Hidden), new("v", KvDim, Hidden), new("o", Hidden, Hidden),
        new("gate", Ffn, Hidden), new("up", Ffn, Hidden), new("down", Hidden, Ffn),
    ];

    public static LinearShape Head { get; } = new("head", Vocab, Hidden);

    private readonly (PackedMatrix W, LowBitWorkspace Ws)[][] _layers;
    private readonly PackedMatrix? _head;
    private readonly LowBitWorkspace? _headWs;
    private readonly float[]? _headF32;
    private readonly WorkerTeam _team;
    private readonly float[] _x = new float[Ffn], _y = new float[Math.Max(Ffn, Vocab)];
    private readonly Action<int>? _headPart;
    private readonly float[][][]? _f32Layers;
    private readonly Action<int>? _f32Part;
    private float[] _f32W = [];
    private LinearShape _f32Shape = Head;

    public LowBitFormat Format { get; }
    public LowBitFormat HeadFormat { get; }
    public int LayerCount { get; }
    public int Threads { get; }
    public IsaPath Path { get; }
    public long LayerWeightBytes { get; }
    public long HeadWeightBytes { get; }

    /// <summary>
    /// Builds the model. Each shape is packed once from seeded weights; the other layers get copies in their own memory
    /// (same values, distinct bytes), so a decode token streams every layer's weights from DRAM as a real model would.
    /// headFormat: F32, Int8, or null for no head.
    /// </summary>
    public BitNetShapes(LowBitFormat format, int layers = Layers, LowBitFormat? headFormat = LowBitFormat.Int8, int threads = 1, int seed = 1, IsaPath? path = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(layers, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(layers, Layers);
        Format = format;
        LayerCount = layers;
        Threads = threads;
        Path = path ?? Isa.Best;
        Isa.Require(Path);
        _team = new WorkerTeam(threads);
        _layers = new (PackedMatrix, LowBitWorkspace)[format == LowBitFormat.F32 ? 0 : layers][];
        if (format == LowBitFormat.F32)
        {
            // fp32 baseline: 30 x 7 matrices, ~8.3 GB; each shape is drawn once and copied (distinct memory, same values).
            var firstF32 = LayerLinears.Select((s, i) =>
            {
                var rng = new Random(seed + i);
                var w = new float[(long)s.Rows * s.Cols];
                for (long j = 0; j < w.LongLength; j++) w[j] = (float)(rng.NextDouble() * 2 - 1) * 0.02f;
                return w;
            }).ToArray();
            _f32Layers = new float[layers][][];
            for (int l = 0; l < layers; l++) _f32Layers[l] = firstF32.Select(w => l == 0 ? w : (float[])w.Clone()).ToArray();
            LayerWeightBytes = 4L * layers * LayerLinears.Sum(s => (long)s.Rows * s.Cols);
            _f32Part = F32Part;
        }
        var firsts = format == LowBitFormat.F32 ? [] : LayerLinears.Select((s, i) => LowBitFormats.Get(format).Random(s.Rows, s.Cols, seed + i)).ToArray();
        for (int l = 0; l < _layers.Length; l++)
            _layers[l] = firsts.Select(f =>
            {
                var m = l == 0 ? f : f.CloneWeights();
                return (m, m.CreateWorkspace(_team));
            }).ToArray();
        if (format != LowBitFormat.F32) LayerWeightBytes = _layers.Sum(layer => layer.Sum(p => p.W.WeightBytes));
        HeadFormat = headFormat ?? format;
        if (headFormat == LowBitFormat.F32)
        {
            var rng = new Random(seed + 100);
            _headF32 = new float[(long)Vocab * Hidden];
            for (long i = 0; i < _headF32.LongLength; i++) _headF32[i] = (float)(rng.NextDouble() * 2 - 1) * 0.02f;
            HeadWeightBytes = _headF32.LongLength * sizeof(float);
            _headPart = HeadPart;
        }
        else if (headFormat != null)
        {
            _head = LowBitFormats.Get(headFormat.Value).Random(Vocab, Hidden, seed + 100);
            _headWs = _head.CreateWorkspace(_team);
            HeadWeightBytes = _head.WeightBytes;
        }
    }

    private void F32Part(int chunk) =>
        MatMul.GemvChunk(_f32W, _f32Shape.Rows, _f32Shape.Cols, _x.AsSpan(0, _f32Shape.Cols), _y.AsSpan(0, _f32Shape.Rows), chunk);

    private void HeadPart(int chunk) =>
        MatMul.GemvChunk(_headF32, Vocab, Hidden, _x.AsSpan(0, Hidden), _y.AsSpan(0, Vocab), chunk);

    /// <summary>Runs one decode token's GEMVs (every layer's q, k, v, o, gate, up, down, then the head). No allocation.</summary>
    public void DecodeToken()
    {
        var x = _x.AsSpan(0, Hidden);
        foreach (var layer in _layers)
            foreach (var (w, ws) in layer)
                w.Gemv(_x.AsSpan(0, w.Cols), _y.AsSpan(0, w.Rows), ws, Path);
        if (_f32Layers != null)
            foreach (var layer in _f32Layers)
                for (int i = 0; i < layer.Length; i++)
                {
                    _f32W = layer[i];
                    _f32Shape = LayerLinears[i];
                    _team.RunChunks(MatMul.GemvChunks(_f32Shape.Rows), _f32Part!);
                }
        if (_head != null) _head.Gemv(x, _y.AsSpan(0, Vocab), _headWs!, Path);
        else if (_headPart != null) _team.RunChunks(MatMul.GemvChunks(Vocab), _headPart);
    }

    /// <summary>Median time of <paramref name="tokens"/> decode steps after <paramref name="warmup"/> untimed ones.</summary>
    public DecodeMeasurement Measure(int tokens = 10, int warmup = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(tokens, 1);
        var rng = new Random(7);
        for (int i = 0; i < _x.Length; i++) _x[i] = (float)(rng.NextDouble() * 2 - 1);
        long start = Stopwatch.GetTimestamp(); // at least GemvProbe.MinWarmup too, so optimized (tier-1) code is timed
        for (int i = 0; i < warmup || Stopwatch.GetElapsedTime(start) < GemvProbe.MinWarmup; i++) DecodeToken();
        var ms = new double[tokens];
        for (int i = 0; i < tokens; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            DecodeToken();
            ms[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(ms);
        double median = ms[tokens / 2];
        return new DecodeMeasurement(Format, HeadFormat, LayerCount, Threads, Path, tokens, median, 1000 / median, LayerWeightBytes, HeadWeightBytes);
    }

    public void Dispose()
    {
        foreach (var layer in _layers) foreach (var (_, ws) in layer) ws.Dispose();
        _headWs?.Dispose();
        _team.Dispose();
    }
}
