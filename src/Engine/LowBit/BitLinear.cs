using Workbench.Engine.Tensors;
namespace Workbench.Engine.LowBit;

/// <summary>
/// The BitNet b1.58 linear layer: weights absmean-ternary (W_t, s), activations absmax int8 per token (q, a);
/// y = (W_t q) * s / a. Weights row-major [rows = out, cols = in]; y[rows] = W x, or Y[n, rows] = X[n, cols] W^T.
/// Owns its workspace, so Forward does not allocate. Not thread-safe.
/// </summary>
public sealed class BitLinear : IDisposable
{
    private readonly LowBitWorkspace _ws;
    public PackedMatrix Weights { get; }
    public int InFeatures => Weights.Cols;
    public int OutFeatures => Weights.Rows;
    public IsaPath Path { get; }

    public BitLinear(PackedMatrix weights, int threads = 1, int maxTokens = 1, IsaPath? path = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        Weights = weights;
        Path = path ?? Isa.Best;
        Isa.Require(Path);
        _ws = weights.CreateWorkspace(threads, maxTokens);
    }

    /// <summary>Quantizes fp32 weights (absmean ternary) and packs them in a ternary format (I2S, TL1 or TL2).</summary>
    public static BitLinear FromFloat(ReadOnlySpan<float> w, int rows, int cols, LowBitFormat format = LowBitFormat.I2S,
        int threads = 1, int maxTokens = 1, IsaPath? path = null) =>
        new(PackTernary(AbsMeanTernary.Quantize(w, rows, cols), format), threads, maxTokens, path);

    public static PackedMatrix PackTernary(TernaryWeights t, LowBitFormat format) => format switch
    {
        LowBitFormat.I2S => I2S.Pack(t),
        LowBitFormat.TL1 => TL1.Pack(t),
        LowBitFormat.TL2 => TL2.Pack(t),
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "BitLinear needs a ternary format: I2S, TL1 or TL2."),
    };

    public void Forward(ReadOnlySpan<float> x, Span<float> y) => Weights.Gemv(x, y, _ws, Path);

    public void Forward(ReadOnlySpan<float> x, int n, Span<float> y) => Weights.Gemm(x, n, y, _ws, Path);

    public void Dispose() => _ws.Dispose();
}
