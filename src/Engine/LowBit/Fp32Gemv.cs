using System.Runtime.Intrinsics;
using System.Threading;

namespace Workbench.Engine.LowBit;

/// <summary>
/// The fp32 GEMV the low-bit formats are compared against: y = W x, W row-major [rows, cols], four rows per
/// iteration sharing each x load, Vector512 -> Vector256 -> Vector128 -> scalar. A stand-in until
/// Tensors.MatMul.Gemv lands; kept simple because fp32 GEMV is memory bound (4 bytes per weight).
/// </summary>
public static class Fp32Gemv
{
    public static unsafe void Gemv(ReadOnlySpan<float> w, int rows, int cols, ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowEnd)
    {
        if (w.Length != (long)rows * cols) throw new ArgumentException($"w has {w.Length} elements, rows x cols = {rows} x {cols}.", nameof(w));
        if (x.Length != cols) throw new ArgumentException($"x has {x.Length} elements, cols = {cols}.", nameof(x));
        if (y.Length != rows) throw new ArgumentException($"y has {y.Length} elements, rows = {rows}.", nameof(y));
        if (rowStart < 0 || rowEnd > rows || rowStart > rowEnd) throw new ArgumentOutOfRangeException(nameof(rowStart));
        fixed (float* pw = w, px = x, py = y)
        {
            int r = rowStart;
            for (; r + 4 <= rowEnd; r += 4)
            {
                float* w0 = pw + (long)r * cols, w1 = w0 + cols, w2 = w1 + cols, w3 = w2 + cols;
                int c = 0;
                float t0 = 0, t1 = 0, t2 = 0, t3 = 0;
                if (Vector512.IsHardwareAccelerated)
                {
                    Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
                    for (; c + 16 <= cols; c += 16)
                    {
                        var xv = Vector512.Load(px + c);
                        s0 = Vector512.FusedMultiplyAdd(Vector512.Load(w0 + c), xv, s0);
                        s1 = Vector512.FusedMultiplyAdd(Vector512.Load(w1 + c), xv, s1);
                        s2 = Vector512.FusedMultiplyAdd(Vector512.Load(w2 + c), xv, s2);
                        s3 = Vector512.FusedMultiplyAdd(Vector512.Load(w3 + c), xv, s3);
                    }
                    t0 = Vector512.Sum(s0); t1 = Vector512.Sum(s1); t2 = Vector512.Sum(s2); t3 = Vector512.Sum(s3);
                }
                else if (Vector256.IsHardwareAccelerated)
                {
                    Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
                    for (; c + 8 <= cols; c += 8)
                    {
                        var xv = Vector256.Load(px + c);
                        s0 = Vector256.FusedMultiplyAdd(Vector256.Load(w0 + c), xv, s0);
                        s1 = Vector256.FusedMultiplyAdd(Vector256.Load(w1 + c), xv, s1);
                        s2 = Vector256.FusedMultiplyAdd(Vector256.Load(w2 + c), xv, s2);
                        s3 = Vector256.FusedMultiplyAdd(Vector256.Load(w3 + c), xv, s3);
                    }
                    t0 = Vector256.Sum(s0); t1 = Vector256.Sum(s1); t2 = Vector256.Sum(s2); t3 = Vector256.Sum(s3);
                }
                for (; c < cols; c++) { t0 += w0[c] * px[c]; t1 += w1[c] * px[c]; t2 += w2[c] * px[c]; t3 += w3[c] * px[c]; }
                py[r] = t0; py[r + 1] = t1; py[r + 2] = t2; py[r + 3] = t3;
            }
            for (; r < rowEnd; r++)
            {
                float t = 0;
                float* wr = pw + (long)r * cols;
                for (int c = 0; c < cols; c++) t += wr[c] * px[c];
                py[r] = t;
            }
        }
    }
}
