namespace Workbench.Engine.LowBit;

/// <summary>
/// A linear layer kept in a checkpoint's own form and run by that form's kernels: a stored-type matrix
/// (<see cref="StoredMatrix"/>: bf16, f16, Q8_0, the 4-bit and K blocks) or packed ternary codes (<see cref="TernaryLinear"/>).
/// The models see one thing: Y[n, rows] = X[n, cols] W^T, the bytes it keeps, and fp32 values only where asked.
/// </summary>
public interface IStoredLinear
{
    int Rows { get; }
    int Cols { get; }
    /// <summary>Bytes of the weights as kept (blocks, codes and scales).</summary>
    long WeightBytes { get; }
    /// <summary>The weights as fp32 [rows, cols] (only where a caller asks for values).</summary>
    float[] ToFloat();
    /// <summary>Row r of the result is row <paramref name="rowMap"/>[r] of this one, in the same form.</summary>
    IStoredLinear WithRows(int[] rowMap);
    /// <summary>Y[n, rows] = X[n, cols] W^T on <paramref name="threads"/> threads (a form with its own team may ignore it).</summary>
    void Gemm(ReadOnlySpan<float> x, int n, Span<float> y, int threads);
}
