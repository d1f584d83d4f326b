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
        Path = path ?? LowBitIsa.Best;
        LowBitIsa.Require(Path);
        _ws = weights.CreateWorkspace(threads, maxTokens);
    }

    public void Forward(ReadOnlySpan<float> x, Span<float> y) => Weights.Gemv(x, y, _ws, Path);

    public void Forward(ReadOnlySpan<float> x, int n, Span<float> y) => Weights.Gemm(x, n, y, _ws, Path);

    public void Dispose() => _ws.Dispose();
}
