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
        var pool = System.Buffers.ArrayPool<float>.Shared;
        float[] qb = pool.Rent(n * hd), kb = pool.Rent(c * hd), vb = pool.Rent(hd * c), sb = pool.Rent(n * c), ob = pool.Rent(n * hd);
        var qh = qb.AsSpan(0, n * hd); var kh = kb.AsSpan(0, c * hd); var vt = vb.AsSpan(0, hd * c);
        var s = sb.AsSpan(0, n * c); var oh = ob.AsSpan(0, n * hd);
        for (int i = 0; i < n; i++) q.Slice(i * qStride + qOff, hd).CopyTo(qh.Slice(i * hd, hd));
        for (int j = 0; j < c; j++)
        {
            keys.Slice(j * kvStride + kvOff, hd).CopyTo(kh.Slice(j * hd, hd));
            var vj = values.Slice(j * kvStride + kvOff, hd);
            for (int t = 0; t < hd; t++) vt[t * c + j] = vj[t];
        }
        MatMul.Linear(qh, n, hd, kh, c, s, threads: 1); // temporaries: no cached packing
        float scale = 1f / MathF.Sqrt(hd);
        for (int i = 0; i < n; i++)
        {
            var row = s.Slice(i * c, c);
            if (allowed is null) System.Numerics.Tensors.TensorPrimitives.Multiply(row, scale, row);
            else
                for (int j = 0; j < c; j++)
                    row[j] = allowed(i, j) ? row[j] * scale : float.NegativeInfinity;
            Ops.Softmax(row);
        }
        MatMul.Linear(s, n, c, vt, hd, oh, threads: 1);
        for (int i = 0; i < n; i++) oh.Slice(i * hd, hd).CopyTo(o.Slice(i * qStride + qOff, hd));
        if (!probs.IsEmpty) s.CopyTo(probs);
        pool.Return(qb); pool.Return(kb); pool.Return(vb); pool.Return(sb); pool.Return(ob);
    }
}
