namespace Workbench.Engine.Tensors;

/// <summary>
/// Scaled dot-product attention of one head through the GEMM kernels: S = Q K^T * scale, masked, softmax per row,
/// O = S V. Q, K, V are gathered from their interleaved-head layouts into contiguous buffers first.
/// </summary>
public static class AttentionKernel
{
    /// <summary>
    /// <paramref name="q"/> [n, qStride] with this head at column <paramref name="qOff"/>; keys and values [c, kvStride]
    /// at column <paramref name="kvOff"/>. <paramref name="allowed"/>(i, j) says whether row i may attend key j.
    /// Writes the head's output into <paramref name="o"/> [n, qStride] at column qOff, and the probabilities into
    /// <paramref name="probs"/> [n, c] if given.
    /// </summary>
    public static void Head(ReadOnlySpan<float> q, int n, int qStride, int qOff,
        ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int c, int kvStride, int kvOff, int hd,
        Func<int, int, bool>? allowed, Span<float> o, Span<float> probs = default)
    {
        var qh = new float[n * hd];
        var kh = new float[c * hd];
        var vt = new float[hd * c];
        for (int i = 0; i < n; i++) q.Slice(i * qStride + qOff, hd).CopyTo(qh.AsSpan(i * hd, hd));
        for (int j = 0; j < c; j++)
        {
            keys.Slice(j * kvStride + kvOff, hd).CopyTo(kh.AsSpan(j * hd, hd));
            var vj = values.Slice(j * kvStride + kvOff, hd);
            for (int t = 0; t < hd; t++) vt[t * c + j] = vj[t];
        }
        var s = new float[n * c];
        MatMul.Linear(qh, n, hd, kh.AsSpan(), c, s, threads: 1); // temporaries: no cached packing
        float scale = 1f / MathF.Sqrt(hd);
        for (int i = 0; i < n; i++)
        {
            var row = s.AsSpan(i * c, c);
            for (int j = 0; j < c; j++)
                row[j] = allowed is null || allowed(i, j) ? row[j] * scale : float.NegativeInfinity;
            Ops.Softmax(row);
        }
        var oh = new float[n * hd];
        MatMul.Linear(s, n, c, vt.AsSpan(), hd, oh, threads: 1);
        for (int i = 0; i < n; i++) oh.AsSpan(i * hd, hd).CopyTo(o.Slice(i * qStride + qOff, hd));
        if (!probs.IsEmpty) s.CopyTo(probs);
    }
}
