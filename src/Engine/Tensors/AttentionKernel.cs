namespace Workbench.Engine.Tensors;

/// <summary>
/// Scaled dot-product attention of one head through the GEMM kernels: S = (Q scale) K^T, masked, softmax per row,
/// O = S V. Q and K are gathered from their interleaved-head layouts into contiguous buffers, V straight into panels.
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
        var path = Isa.Resolve(null);
        // O = S V through the panel GEMM: its packed panel [c, nr] of columns j0..j0+nr of V is V's rows cut into
        // nr-wide pieces, gathered here directly (no transpose of V and back).
        bool panels = n >= 4 && path != IsaPath.Scalar;
        int nr = panels ? PanelGemm.PanelRows(path) : 0, panelCount = panels ? (hd + nr - 1) / nr : 0;
        float[] qb = pool.Rent(n * hd), kb = pool.Rent(c * hd), vb = pool.Rent(panels ? panelCount * c * nr : hd * c),
            sb = pool.Rent(n * c), ob = pool.Rent(n * hd);
        var qh = qb.AsSpan(0, n * hd); var kh = kb.AsSpan(0, c * hd);
        var s = sb.AsSpan(0, n * c); var oh = ob.AsSpan(0, n * hd);
        // The 1/sqrt(hd) scale is applied to Q as it is gathered (n x hd values instead of n x c scores).
        float scale = 1f / MathF.Sqrt(hd);
        for (int i = 0; i < n; i++) System.Numerics.Tensors.TensorPrimitives.Multiply(q.Slice(i * qStride + qOff, hd), scale, qh.Slice(i * hd, hd));
        for (int j = 0; j < c; j++) keys.Slice(j * kvStride + kvOff, hd).CopyTo(kh.Slice(j * hd, hd));
        MatMul.Linear(qh, n, hd, kh, c, s, threads: 1); // temporaries: no cached packing
        for (int i = 0; i < n; i++)
        {
            var row = s.Slice(i * c, c);
            if (allowed is not null)
                for (int j = 0; j < c; j++)
                    if (!allowed(i, j)) row[j] = float.NegativeInfinity;
            Ops.Softmax(row);
        }
        if (panels)
        {
            var vp = vb.AsSpan(0, panelCount * c * nr);
            for (int pi = 0; pi < panelCount; pi++)
            {
                int width = Math.Min(nr, hd - pi * nr);
                for (int t = 0; t < c; t++)
                {
                    var dst = vp.Slice((pi * c + t) * nr, nr);
                    values.Slice(t * kvStride + kvOff + pi * nr, width).CopyTo(dst);
                    if (width < nr) dst[width..].Clear();
                }
            }
            unsafe
            {
                fixed (float* ps = s, po = oh, pv = vp)
                    PanelGemm.Run(ps, n, c, null, hd, po, 0, hd, path, pv);
            }
        }
        else
        {
            var vt = vb.AsSpan(0, hd * c);
            for (int j = 0; j < c; j++)
            {
                var vj = values.Slice(j * kvStride + kvOff, hd);
                for (int t = 0; t < hd; t++) vt[t * c + j] = vj[t];
            }
            MatMul.Linear(s, n, c, vt, hd, oh, threads: 1);
        }
        for (int i = 0; i < n; i++) oh.Slice(i * hd, hd).CopyTo(o.Slice(i * qStride + qOff, hd));
        if (!probs.IsEmpty) s.CopyTo(probs);
        pool.Return(qb); pool.Return(kb); pool.Return(vb); pool.Return(sb); pool.Return(ob);
    }
}
