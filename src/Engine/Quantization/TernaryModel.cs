using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Quantization;

/// <summary>One linear layer after ternary post-training quantization: absmean scale, share of zero weights, bytes.</summary>
public sealed record TernaryLayer(string Name, int Rows, int Cols, float Scale, double ZeroFraction, long Fp32Bytes, long PackedBytes);

/// <summary>
/// The lossless check of one linear layer on real activations: the packed kernels' int32 sums on every supported path
/// against a plain scalar sum of ternary weight x int8 activation, and the layer's float output against the
/// dequantized fp32 computation sum_c (W_t[r, c] s)(q[c] / a) in double.
/// </summary>
public sealed record LayerCheck(string Name, int Rows, int Cols, int TokensChecked, string Paths, long IntegerMismatches, double MaxRelativeError)
{
    /// <summary>Float outputs may differ from the double computation only by float rounding of acc * (s / a).</summary>
    public const double Tolerance = 1e-6;
    public bool Passed => TokensChecked > 0 && IntegerMismatches == 0 && MaxRelativeError <= Tolerance;
}

public sealed record LosslessReport(LowBitFormat Format, IReadOnlyList<LayerCheck> Layers)
{
    public bool Lossless => Layers.Count > 0 && Layers.All(l => l.Passed);
}

/// <summary>
/// Ternary post-training quantization of a whole engine model, BitNet b1.58 style: every linear weight of every block
/// (the model's <see cref="ITransformerModel.BlockLinears"/>: Llama q, k, v, o, w1, w2, w3; BERT q, k, v, o, wi, wout) becomes absmean-ternary in a packed format and
/// runs through the low-bit kernels with per-token absmax int8 activations; embeddings, norms, biases and the output
/// head stay fp32, as in BitNet. Use it as <c>new ForwardContext { Linear = ternary }</c> (or <see cref="Context"/>).
/// This is quantization of a model trained in fp32, not a model trained ternary: expect a large quality loss.
/// Not thread-safe (one forward at a time).
/// </summary>
public sealed class TernaryModel : ILinearOverride, IDisposable
{
    /// <summary>Tokens per kernel call; longer inputs are run in chunks of this many.</summary>
    public const int ChunkTokens = 16;

    private sealed record Entry(TernaryLayer Info, TernaryWeights Weights, PackedMatrix Matrix, LowBitWorkspace Workspace);

    private readonly Dictionary<float[], Entry> _byWeight = new(ReferenceEqualityComparer.Instance);
    private readonly WorkerTeam _team;
    private Dictionary<string, CheckAccumulator>? _checks;
    private int _checkTokensPerCall;

    public LowBitFormat Format { get; }
    public IsaPath Path { get; }
    public int Threads => _team.Threads;
    public IReadOnlyList<TernaryLayer> Layers { get; }
    /// <summary>fp32 bytes of the quantized linear weights, and the same weights packed (with padding and scales).</summary>
    public long Fp32LinearBytes => Layers.Sum(l => l.Fp32Bytes);
    public long PackedLinearBytes => Layers.Sum(l => l.PackedBytes);
    /// <summary>Parameters kept fp32 (embeddings, norms, biases, head), in bytes.</summary>
    public long KeptFp32Bytes { get; }

    private TernaryModel(LowBitFormat format, IReadOnlyList<NamedLinear> linears, long keptFp32Bytes, int threads, IsaPath? path,
        Func<NamedLinear, TernaryWeights>? read = null)
    {
        if (!LowBitFormats.Get(format).IsTernary)
            throw new ArgumentOutOfRangeException(nameof(format), format, $"Ternary quantization needs {LowBitFormats.NameList(ternaryOnly: true)}.");
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Format = format;
        Path = path ?? Isa.Best;
        Isa.Require(Path);
        _team = new WorkerTeam(threads);
        var layers = new List<TernaryLayer>();
        foreach (var linear in linears)
        {
            var (name, _, w, rows, cols) = linear;
            if (_byWeight.ContainsKey(w)) continue; // a tied weight is quantized once
            TernaryWeights t;
            PackedMatrix m;
            if (read is not null && StoredLinears.FindTernary(w) is { Parts.Count: 1 } stored)
            {
                // the checkpoint's own codes, already packed at load (BitNet packed, GGUF ternary): reused, or repacked
                // code for code into the asked format; never through fp32
                var matrix = stored.Repack(format).Parts[0];
                t = new TernaryWeights(matrix.Unpack(), rows, cols, matrix.Scale);
                m = matrix;
            }
            else
            {
                // a weight kept as stored (bf16, Q8_0, ...) is quantized from its fp32 values, one layer at a time
                t = read is null ? AbsMeanTernary.Quantize(StoredLinears.Fp32(w), rows, cols) : read(linear);
                m = t.Pack(format);
            }
            int zeros = 0;
            foreach (var v in t.Values) if (v == 0) zeros++;
            var info = new TernaryLayer(name, rows, cols, t.Scale, zeros / (double)t.Values.Length, 4L * rows * cols, m.WeightBytes);
            _byWeight[w] = new Entry(info, t, m, m.CreateWorkspace(_team, ChunkTokens));
            layers.Add(info);
        }
        Layers = layers;
        KeptFp32Bytes = keptFp32Bytes;
    }

    /// <summary>
    /// Quantizes every block linear of <paramref name="model"/> (<see cref="ITransformerModel.BlockLinears"/>); every
    /// other parameter array (embeddings, norms, biases, head) stays fp32 and is counted in <see cref="KeptFp32Bytes"/>.
    /// </summary>
    public static TernaryModel Quantize(ITransformerModel model, LowBitFormat format, int threads = 1, IsaPath? path = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new TernaryModel(format, model.BlockLinears, KeptBytes(model), threads, path);
    }

    /// <summary>Bytes of every parameter array that is not a block linear (they stay fp32).</summary>
    private static long KeptBytes(ITransformerModel model)
    {
        var quantized = new HashSet<float[]>(model.BlockLinears.Select(l => l.Weight), ReferenceEqualityComparer.Instance);
        return model.ParameterBytes(a => !quantized.Contains(a));
    }

    /// <summary>
    /// A model trained ternary (BitNet b1.58) whose block linears are stored as W_t s: the codes and scales are read as
    /// they are (<see cref="StoredTernary"/>), not re-quantized, and run on the packed kernels with per-token int8
    /// activations. A block linear holding any other value is refused, naming it.
    /// </summary>
    public static TernaryModel FromStored(ITransformerModel model, LowBitFormat format, int threads = 1, IsaPath? path = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new TernaryModel(format, model.BlockLinears, KeptBytes(model), threads, path, l => StoredTernary.TryRead(StoredLinears.Fp32(l.Weight), l.Rows, l.Cols)
            ?? throw new ArgumentException($"{model.Card.Name}: block linear {l.Name} holds values other than -s, 0, +s; it was not trained ternary (use Quantize for post-training quantization)", nameof(model)));
    }

    /// <summary>
    /// The model's own ternary codes and scales when every block linear holds them (as <see cref="FromStored"/>), else
    /// post-training quantization of every block linear (as <see cref="Quantize(ITransformerModel, LowBitFormat, int, IsaPath?)"/>);
    /// <paramref name="stored"/> says which. Each linear is read (and a stored one dequantized) once.
    /// </summary>
    public static TernaryModel FromStoredOrQuantize(ITransformerModel model, LowBitFormat format, int threads, out bool stored)
    {
        ArgumentNullException.ThrowIfNull(model);
        var codes = new Dictionary<float[], TernaryWeights>(ReferenceEqualityComparer.Instance);
        foreach (var l in model.BlockLinears)
        {
            if (StoredLinears.FindTernary(l.Weight) is { Parts.Count: 1 } || codes.ContainsKey(l.Weight)) continue;
            if (StoredTernary.TryRead(StoredLinears.Fp32(l.Weight), l.Rows, l.Cols) is not { } t) { stored = false; return Quantize(model, format, threads); }
            codes[l.Weight] = t;
        }
        stored = true;
        return new TernaryModel(format, model.BlockLinears, KeptBytes(model), threads, null, l => codes[l.Weight]);
    }

    /// <summary>Quantizes the model of a loaded decoder, encoder or image classifier.</summary>
    public static TernaryModel Quantize(LoadedModel model, LowBitFormat format, int threads = 1, IsaPath? path = null) =>
        Quantize((model ?? throw new ArgumentNullException(nameof(model))).Model, format, threads, path);

    /// <summary>A forward context that runs the quantized linears through this model.</summary>
    public ForwardContext Context() => new() { Linear = this, Threads = Threads };

    public bool TryLinear(float[] weight, ReadOnlySpan<float> x, int n, int k, int m, Span<float> y)
    {
        if (!_byWeight.TryGetValue(weight, out var e)) return false;
        if (k != e.Info.Cols || m != e.Info.Rows)
            throw new ArgumentException($"Linear {e.Info.Name} is {e.Info.Rows} x {e.Info.Cols}; the call asked for m = {m}, k = {k}.", nameof(weight));
        for (int t0 = 0; t0 < n; t0 += ChunkTokens)
        {
            int count = Math.Min(ChunkTokens, n - t0);
            var yc = y.Slice(t0 * m, count * m);
            e.Matrix.Gemm(x.Slice(t0 * k, count * k), count, yc, e.Workspace, Path);
            if (_checks != null) Check(e, count, yc);
        }
        return true;
    }

    /// <summary>
    /// Runs <paramref name="forward"/> (one or more forward passes through <see cref="Context"/>) and checks every
    /// quantized linear on the activations it really receives: up to <paramref name="tokensPerCall"/> tokens per call.
    /// </summary>
    public LosslessReport CheckLossless(Action<ForwardContext> forward, int tokensPerCall = 4)
    {
        ArgumentNullException.ThrowIfNull(forward);
        ArgumentOutOfRangeException.ThrowIfLessThan(tokensPerCall, 1);
        _checks = [];
        _checkTokensPerCall = tokensPerCall;
        try
        {
            forward(Context());
            var paths = string.Join("+", Isa.SupportedPaths);
            return new LosslessReport(Format, Layers.Select(l => _checks.TryGetValue(l.Name, out var c)
                ? new LayerCheck(l.Name, l.Rows, l.Cols, c.Tokens, paths, c.Mismatches, c.MaxRel)
                : new LayerCheck(l.Name, l.Rows, l.Cols, 0, paths, 0, 0)).ToList());
        }
        finally { _checks = null; }
    }

    private sealed class CheckAccumulator { public int Tokens; public long Mismatches; public double MaxRel; }

    private void Check(Entry e, int count, ReadOnlySpan<float> y)
    {
        var acc = _checks![e.Info.Name] = _checks.GetValueOrDefault(e.Info.Name) ?? new CheckAccumulator();
        int rows = e.Info.Rows, cols = e.Info.Cols;
        var t = e.Weights.Values;
        var reference = new int[rows];
        for (int tok = 0; tok < Math.Min(count, _checkTokensPerCall); tok++)
        {
            var act = e.Workspace.Activations[tok];
            var q = act.Q[..cols];
            float a = act.Scale;
            for (int r = 0; r < rows; r++)
            {
                int s = 0;
                for (int c = 0; c < cols; c++) s += t[r * cols + c] * q[c];
                reference[r] = s;
            }
            foreach (var path in Isa.SupportedPaths)
            {
                var buffer = e.Matrix.CreateActivationBuffer();
                buffer.Load(q, a, path);
                var got = e.Matrix.MatVec(buffer, path);
                for (int r = 0; r < rows; r++) if (got[r] != reference[r]) acc.Mismatches++;
            }
            // The layer's float output against the dequantized fp32 weights times the dequantized activations, in double.
            double unit = e.Weights.Scale / (double)a;
            for (int r = 0; r < rows; r++)
            {
                double expected = 0;
                for (int c = 0; c < cols; c++) expected += t[r * cols + c] * (double)e.Weights.Scale * (q[c] / (double)a);
                double rel = Math.Abs(y[tok * rows + r] - expected) / Math.Max(Math.Abs(expected), unit);
                acc.MaxRel = Math.Max(acc.MaxRel, rel);
            }
            acc.Tokens++;
        }
    }

    public void Dispose()
    {
        foreach (var e in _byWeight.Values) e.Workspace.Dispose();
        _team.Dispose();
    }
}
