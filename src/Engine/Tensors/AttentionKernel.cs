using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Workbench.Engine.Tensors;

/// <summary>
/// Scaled dot-product attention of one head through the GEMM kernels: S = Q (K scale)^T, masked, softmax per row,
/// O = S V. With enough query rows the GEMMs read Q and write O in place in their interleaved-head layouts, and K and
/// V are packed straight into panels. Without the gathers and copies, a one-thread MiniLM forward ran ~4% faster here.
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
        => Head(q, n, qStride, qOff, keys, values, c, kvStride, kvOff, hd, new Mask(allowed, null, null), o, probs);

    /// <summary>
    /// As above with a causal mask by position: row i attends key j when keyPositions[j] &lt;= queryPositions[i]
    /// (decoders, also after token dropping and with a KV cache). A direct comparison, not a delegate call per score:
    /// a 512-token prefill makes 262,144 of them per head, and a 512 x 512 head (hd 64) ran ~13% faster here.
    /// </summary>
    public static void CausalHead(ReadOnlySpan<float> q, int n, int qStride, int qOff,
        ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int c, int kvStride, int kvOff, int hd,
        int[] queryPositions, int[] keyPositions, Span<float> o, Span<float> probs = default)
    {
        ArgumentNullException.ThrowIfNull(queryPositions);
        ArgumentNullException.ThrowIfNull(keyPositions);
        if (queryPositions.Length < n || keyPositions.Length < c)
            throw new ArgumentException($"{queryPositions.Length} query and {keyPositions.Length} key positions for {n} queries and {c} keys");
        Head(q, n, qStride, qOff, keys, values, c, kvStride, kvOff, hd, new Mask(null, queryPositions, keyPositions), o, probs);
    }

    /// <summary>
    /// One query row against <paramref name="c"/> cached keys, causal by position (decoding with a KV cache): the bits
    /// of <see cref="CausalHead"/> with n = 1, without its per-call gathers and transposes. <paramref name="keysT"/> and
    /// <paramref name="valuesT"/> are the cache transposed ([kvStride, <paramref name="stride"/>]: element t of key j at
    /// t * stride + j, stride a multiple of 16 covering c), as the cache keeps them. The weighted sum of values is, per
    /// output element, a dot product over a row of valuesT. A score is a dot product over the head's width hd; when hd
    /// is narrower than one vector, the row kernels form it as one scalar chain, and here 16 (8, 4) keys' chains run
    /// side by side in the lanes of a vector from keysT's rows; otherwise it is a row kernel's dot product against the
    /// key's row in <paramref name="keys"/> ([c, kvStride]). <paramref name="scores"/> (at least c) is scratch; the
    /// probabilities are copied into <paramref name="probs"/> if given.
    /// </summary>
    public static unsafe void DecodeHead(ReadOnlySpan<float> q, int qOff, ReadOnlySpan<float> keys, ReadOnlySpan<float> keysT,
        ReadOnlySpan<float> valuesT, int stride, int c, int kvStride, int kvOff, int hd, int queryPosition, ReadOnlySpan<int> keyPositions,
        Span<float> o, Span<float> scores, Span<float> probs = default)
    {
        if (c <= 0 || hd <= 0 || stride % 16 != 0 || c > stride) throw new ArgumentException($"{c} keys of width {hd} in rows of {stride} (a multiple of 16)");
        long tRows = (long)(kvOff + hd) * stride;
        if (qOff + hd > q.Length || qOff + hd > o.Length || (long)(c - 1) * kvStride + kvOff + hd > keys.Length
            || tRows > keysT.Length || tRows > valuesT.Length || keyPositions.Length < c || scores.Length < c
            || (!probs.IsEmpty && probs.Length < c))
            throw new ArgumentException($"a head at column {qOff} / {kvOff} of width {hd} over {c} keys does not fit the given spans");
        var path = Isa.Resolve(null);
        var s = scores[..c];
        // The 1/sqrt(hd) scale on q first, as HeadRows applies it (an elementwise product: the same bits on every path).
        float scale = 1f / MathF.Sqrt(hd);
        Span<float> qs = hd <= 1024 ? stackalloc float[hd] : new float[hd];
        for (int t = 0; t < hd; t++) qs[t] = q[qOff + t] * scale;
        fixed (float* qh = qs, pk = keys, pkt = keysT, pvt = valuesT, ps = s, po = o)
        {
            switch (path)
            {
                case IsaPath.V512 when hd < V512.Count: ScalarChains<V512>(qh, pkt + (long)kvOff * stride, stride, hd, c, ps); break;
                case IsaPath.V256 when hd < V256.Count: ScalarChains<V256>(qh, pkt + (long)kvOff * stride, stride, hd, c, ps); break;
                case IsaPath.V128 when hd < V128.Count: ScalarChains<V128>(qh, pkt + (long)kvOff * stride, stride, hd, c, ps); break;
                default: Dots(path, qh, pk + kvOff, kvStride, hd, c, ps); break;
            }
            MaskFuture(keyPositions[..c], queryPosition, s, path);
            Ops.SoftmaxRows(s, 1, c, path);
            Dots(path, ps, pvt + (long)kvOff * stride, stride, c, hd, po + qOff);
        }
        if (!probs.IsEmpty) s.CopyTo(probs);
    }

    /// <summary>
    /// Causal mask by position: the score of every key after the query's position becomes -inf. A decode step rarely
    /// has such keys, so whole vectors of eight positions are compared first and the scalar loop starts at the first
    /// vector holding one. Its own method: inlined into DecodeHead, the loop's operands spilled to the stack
    /// (7% of a stories260K token's time, bin/workbench, perf).
    /// </summary>
    private static unsafe void MaskFuture(ReadOnlySpan<int> keyPositions, int queryPosition, Span<float> s, IsaPath path)
    {
        int c = s.Length, j = 0;
        fixed (int* p = keyPositions)
        {
            if (path >= IsaPath.V256 && Avx2.IsSupported)
            {
                var vq = Vector256.Create(queryPosition);
                for (; j + 8 <= c; j += 8)
                {
                    var after = Avx2.CompareGreaterThan(Avx.LoadVector256(p + j), vq);
                    if (!Avx.TestZ(after, after)) break;
                }
            }
            for (; j < c; j++)
                if (p[j] > queryPosition) s[j] = float.NegativeInfinity;
        }
    }

    // Dots and ScalarChains: precompiled by ReadyToRun, as MatMul.Rows (decode's hot loops; see there).
    /// <summary>y[r] = a . rows[r] for <paramref name="count"/> rows <paramref name="stride"/> apart, as MatMul's row kernels form each sum.</summary>
    private static unsafe void Dots(IsaPath path, float* a, float* rows, long stride, int k, int count, float* y)
    {
        switch (path)
        {
            case IsaPath.V512: DotsWide<V512>(a, rows, stride, k, count, y); break;
            case IsaPath.V256: DotsWide<V256>(a, rows, stride, k, count, y); break;
            case IsaPath.V128: for (int r = 0; r < count; r++) y[r] = MatMul.Dot<V128>(a, rows + r * stride, k); break;
            default: for (int r = 0; r < count; r++) y[r] = MatMul.DotScalar(a, rows + r * stride, k, 0, 0); break;
        }
    }

    /// <summary>Eight rows at a time (one load of a for eight rows, the eight sums reduced together), then one by one: the same bits.</summary>
    private static unsafe void DotsWide<TV>(float* a, float* rows, long stride, int k, int count, float* y) where TV : struct, IVec<TV>
    {
        int r = 0;
        for (; r + 8 <= count; r += 8) MatMul.Tile8x1<TV>(a, rows + r * stride, stride, k, y + r);
        for (; r < count; r++) y[r] = MatMul.Dot<TV>(a, rows + r * stride, k);
    }

    /// <summary>
    /// y[j] = a . column j of the k rows of <paramref name="cols"/> (<paramref name="stride"/> apart, padded to whole
    /// vectors), each sum the scalar chain ((0 + a0 b0) + a1 b1) + ... that a row kernel forms for k under one vector:
    /// TV.Count columns at a time, one lane per column.
    /// </summary>
    private static unsafe void ScalarChains<TV>(float* a, float* cols, long stride, int k, int count, float* y) where TV : unmanaged, IVec<TV>
    {
        int w = TV.Count;
        TV tail;
        for (int j = 0; j < count; j += w)
        {
            var acc = TV.Broadcast(0f);
            for (int t = 0; t < k; t++) acc = TV.Add(acc, TV.Mul(TV.Broadcast(a[t]), TV.Load(cols + t * stride + j)));
            if (j + w <= count) *(TV*)(y + j) = acc;
            else
            {
                tail = acc;
                float* pt = (float*)&tail;
                for (int r = j; r < count; r++) y[r] = pt[r - j];
            }
        }
    }

    /// <summary>Which keys a row may attend: a predicate, causal positions, or (both null) every key.</summary>
    private readonly record struct Mask(Func<int, int, bool>? Allowed, int[]? QueryPositions, int[]? KeyPositions);

    private static void Head(ReadOnlySpan<float> q, int n, int qStride, int qOff,
        ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int c, int kvStride, int kvOff, int hd,
        Mask mask, Span<float> o, Span<float> probs)
    {
        var path = Isa.Resolve(null);
        if (n >= 4 && path != IsaPath.Scalar) HeadPanels(q, n, qStride, qOff, keys, values, c, kvStride, kvOff, hd, mask, o, probs, path);
        else HeadRows(q, n, qStride, qOff, keys, values, c, kvStride, kvOff, hd, mask, o, probs, path);
    }

    /// <summary>
    /// Through the panel GEMM, in place: S = Q K^T reads the head's Q straight from its rows (stride qStride) against
    /// K packed into panels with the 1/sqrt(hd) scale folded in; O = S V writes straight into the head's columns of
    /// <paramref name="o"/>. V's panels [c, nr] are its rows cut into nr-wide pieces (no transpose).
    /// </summary>
    private static unsafe void HeadPanels(ReadOnlySpan<float> q, int n, int qStride, int qOff,
        ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int c, int kvStride, int kvOff, int hd,
        Mask mask, Span<float> o, Span<float> probs, IsaPath path)
    {
        // Bounds: every row read or written below lies inside the spans (checked here, then raw pointers).
        if ((long)(n - 1) * qStride + qOff + hd > q.Length || (long)(c - 1) * kvStride + kvOff + hd > Math.Min(keys.Length, values.Length)
            || (long)(n - 1) * qStride + qOff + hd > o.Length)
            throw new ArgumentException($"a head at column {qOff} / {kvOff} of width {hd} does not fit the given rows");
        var pool = System.Buffers.ArrayPool<float>.Shared;
        int nr = PanelGemm.PanelRows(path), vPanels = (hd + nr - 1) / nr, kPanels = (c + nr - 1) / nr;
        float[] kb = pool.Rent(kPanels * hd * nr), vb = pool.Rent(vPanels * c * nr), sb = pool.Rent(n * c);
        var s = sb.AsSpan(0, n * c);
        var vp = vb.AsSpan(0, vPanels * c * nr);
        for (int pi = 0; pi < vPanels; pi++)
        {
            int width = Math.Min(nr, hd - pi * nr);
            for (int t = 0; t < c; t++)
            {
                var dst = vp.Slice((pi * c + t) * nr, nr);
                values.Slice(t * kvStride + kvOff + pi * nr, width).CopyTo(dst);
                if (width < nr) dst[width..].Clear();
            }
        }
        fixed (float* pq = q, pk = keys, pkp = kb, ps = s, pv = vp, po = o)
        {
            PanelGemm.Pack(pk + kvOff, kvStride, c, hd, nr, 1f / MathF.Sqrt(hd), pkp);
            PanelGemm.Run(pq + qOff, qStride, n, hd, null, c, ps, c, 0, c, path, pkp);
            Softmax(s, n, c, mask, path);
            PanelGemm.Run(ps, c, n, c, null, hd, po + qOff, qStride, 0, hd, path, pv);
        }
        if (!probs.IsEmpty) s.CopyTo(probs);
        pool.Return(kb); pool.Return(vb); pool.Return(sb);
    }

    /// <summary>Few query rows (decoding) or the scalar path: gathered Q and K, and the row kernels of <see cref="MatMul"/> on the same path.</summary>
    private static void HeadRows(ReadOnlySpan<float> q, int n, int qStride, int qOff,
        ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int c, int kvStride, int kvOff, int hd,
        Mask mask, Span<float> o, Span<float> probs, IsaPath path)
    {
        var pool = System.Buffers.ArrayPool<float>.Shared;
        float[] qb = pool.Rent(n * hd), kb = pool.Rent(c * hd), vb = pool.Rent(hd * c), sb = pool.Rent(n * c), ob = pool.Rent(n * hd);
        var qh = qb.AsSpan(0, n * hd); var kh = kb.AsSpan(0, c * hd); var vt = vb.AsSpan(0, hd * c);
        var s = sb.AsSpan(0, n * c); var oh = ob.AsSpan(0, n * hd);
        // The 1/sqrt(hd) scale is applied to Q as it is gathered (n x hd values instead of n x c scores).
        float scale = 1f / MathF.Sqrt(hd);
        for (int i = 0; i < n; i++)
            for (int t = 0; t < hd; t++) qh[i * hd + t] = q[i * qStride + qOff + t] * scale;
        for (int j = 0; j < c; j++) keys.Slice(j * kvStride + kvOff, hd).CopyTo(kh.Slice(j * hd, hd));
        MatMul.Linear(qh, n, hd, kh, c, s, threads: 1, path: path); // temporaries: no cached packing
        Softmax(s, n, c, mask, path);
        for (int j = 0; j < c; j++)
        {
            var vj = values.Slice(j * kvStride + kvOff, hd);
            for (int t = 0; t < hd; t++) vt[t * c + j] = vj[t];
        }
        MatMul.Linear(s, n, c, vt, hd, oh, threads: 1, path: path);
        for (int i = 0; i < n; i++) oh.Slice(i * hd, hd).CopyTo(o.Slice(i * qStride + qOff, hd));
        if (!probs.IsEmpty) s.CopyTo(probs);
        pool.Return(qb); pool.Return(kb); pool.Return(vb); pool.Return(sb); pool.Return(ob);
    }

    /// <summary>Masks the keys row i may not attend (to -inf), then softmax per row of the n x c scores.</summary>
    private static void Softmax(Span<float> s, int n, int c, Mask mask, IsaPath path)
    {
        if (mask.Allowed is { } allowed)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < c; j++)
                    if (!allowed(i, j)) s[i * c + j] = float.NegativeInfinity;
        if (mask is { QueryPositions: { } qp, KeyPositions: { } kp })
            for (int i = 0; i < n; i++)
            {
                var row = s.Slice(i * c, c);
                int p = qp[i];
                for (int j = 0; j < c; j++)
                    if (kp[j] > p) row[j] = float.NegativeInfinity;
            }
        Ops.SoftmaxRows(s, n, c, path);
    }
}
