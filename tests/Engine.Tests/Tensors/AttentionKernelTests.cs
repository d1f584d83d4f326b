using Workbench.Engine.Tensors;

namespace Workbench.Engine.Tests.Tensors;

/// <summary>One head of attention on every in-process path (<see cref="Isa.Use"/>).</summary>
[Trait("Category", "Simd")]
public class AttentionKernelTests
{
    /// <summary>The causal-by-position mask gives the bits of the same mask as a predicate (positions with gaps, a cache longer than the queries).</summary>
    [Theory]
    [InlineData(1, 9)]
    [InlineData(6, 6)]
    [InlineData(20, 33)]
    public void Causal_positions_equal_the_same_mask_as_a_predicate(int n, int c)
    {
        foreach (var path in Isa.SupportedPaths)
        {
            using var scope = Isa.Use(path);
            CausalEqualsPredicate(n, c);
        }
    }

    private static void CausalEqualsPredicate(int n, int c)
    {
        var rng = new Random(n * 31 + c);
        int hd = 16, stride = 2 * hd;
        float[] R(int len) => Enumerable.Range(0, len).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var q = R(n * stride); var k = R(c * stride); var v = R(c * stride);
        var keyPos = Enumerable.Range(0, c).Select(j => 3 * j + (j % 2)).ToArray(); // increasing, with gaps
        var queryPos = keyPos[^n..];
        float[] want = new float[n * stride], wantP = new float[n * c], got = new float[n * stride], gotP = new float[n * c];
        AttentionKernel.Head(q, n, stride, hd, k, v, c, stride, hd, hd, (i, j) => keyPos[j] <= queryPos[i], want, wantP);
        AttentionKernel.CausalHead(q, n, stride, hd, k, v, c, stride, hd, hd, queryPos, keyPos, got, gotP);
        Assert.Equal(want, got);
        Assert.Equal(wantP, gotP);
        if (n > 1) Assert.Equal(0f, gotP[c - 1]); // the first query does not see the last key
        Assert.True(gotP[(n - 1) * c + c - 1] > 0); // the last query sees every key
        Assert.Throws<ArgumentException>(() => AttentionKernel.CausalHead(q, n, stride, hd, k, v, c, stride, hd, hd, queryPos[..^1], keyPos, got));
    }

    [Theory]
    [InlineData(1, 7, 8, false)]
    [InlineData(5, 5, 32, true)]
    [InlineData(37, 40, 20, true)]
    [InlineData(40, 40, 32, false)]
    [InlineData(128, 128, 32, false)] // MiniLM's heads: full tiles stored straight into the strided output
    [InlineData(13, 20, 48, true)] // a full and a partial panel of V
    [InlineData(12, 12, 64, false)]
    public void Head_equals_a_double_precision_reference(int n, int c, int hd, bool causal)
    {
        foreach (var path in Isa.SupportedPaths)
        {
            using var scope = Isa.Use(path);
            HeadEqualsReference(n, c, hd, causal);
        }
    }

    private static void HeadEqualsReference(int n, int c, int hd, bool causal)
    {
        var rng = new Random(n * 100 + c + hd);
        int heads = 3, qStride = heads * hd + 5, kvStride = heads * hd + 3, head = 1;
        float[] R(int len) => Enumerable.Range(0, len).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var q = R(n * qStride); var k = R(c * kvStride); var v = R(c * kvStride);
        var o = new float[n * qStride]; var probs = new float[n * c];
        Func<int, int, bool>? allowed = causal ? (i, j) => j <= i + (c - n) : null;
        AttentionKernel.Head(q, n, qStride, head * hd, k, v, c, kvStride, head * hd, hd, allowed, o, probs);
        for (int i = 0; i < n; i++)
        {
            var s = new double[c];
            for (int j = 0; j < c; j++)
            {
                double dot = 0;
                for (int t = 0; t < hd; t++) dot += q[i * qStride + head * hd + t] * k[j * kvStride + head * hd + t];
                s[j] = allowed is null || allowed(i, j) ? dot / Math.Sqrt(hd) : double.NegativeInfinity;
            }
            double max = s.Max(), sum = s.Sum(x => Math.Exp(x - max));
            for (int j = 0; j < c; j++)
            {
                double p = Math.Exp(s[j] - max) / sum;
                Assert.True(Math.Abs(p - probs[i * c + j]) <= 1e-5, $"p[{i},{j}] = {probs[i * c + j]} vs {p}");
                if (double.IsNegativeInfinity(s[j])) Assert.Equal(0f, probs[i * c + j]);
            }
            for (int t = 0; t < hd; t++)
            {
                double want = 0;
                for (int j = 0; j < c; j++) want += Math.Exp(s[j] - max) / sum * v[j * kvStride + head * hd + t];
                Assert.True(Math.Abs(want - o[i * qStride + head * hd + t]) <= 2e-5, $"o[{i},{t}] = {o[i * qStride + head * hd + t]} vs {want}");
            }
            // the other heads' columns and the padding are untouched (the GEMM writes the head's columns in place)
            for (int col = 0; col < qStride; col++)
                if (col < head * hd || col >= (head + 1) * hd) Assert.Equal(0f, o[i * qStride + col]);
        }
    }

    /// <summary>
    /// Decoding's one-row kernel over the cache's transposed keys and values gives the bits of CausalHead with one query
    /// row, on every path: heads narrower than a vector (scores as scalar chains in lanes) and wider, key counts that are
    /// not whole vectors, masked keys, grouped-query offsets. The transposed copies' padding holds NaN: it must not leak.
    /// </summary>
    [Theory]
    [InlineData(4, 1)]
    [InlineData(8, 7)]
    [InlineData(8, 33)]
    [InlineData(12, 16)]
    [InlineData(16, 40)]
    [InlineData(64, 19)]
    public void Decode_head_equals_causal_head_with_one_row(int hd, int c)
    {
        foreach (var path in Isa.SupportedPaths)
        {
            using var scope = Isa.Use(path);
            DecodeEqualsCausal(hd, c);
        }
    }

    /// <summary>
    /// Keys after the query's position are masked wherever they sit among the cached keys (token dropping keeps any
    /// subset): in the first vector of eight positions, in the middle, in the scalar rest, none, or all but one.
    /// </summary>
    [Theory]
    [MemberData(nameof(IsaPaths.All), MemberType = typeof(IsaPaths))]
    public void Decode_head_masks_every_key_after_the_query_wherever_it_sits(IsaPath path)
    {
        var rng = new Random(5);
        int hd = 8, kvStride = 8;
        foreach (int c in new[] { 3, 8, 9, 17, 40, 45 })
            foreach (int future in new[] { 0, 1, 2, c - 1 })
            {
                int tStride = (c + 15) / 16 * 16;
                float[] R(int len) => Enumerable.Range(0, len).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
                var q = R(hd); var k = R(c * kvStride); var v = R(c * kvStride);
                var kt = new float[kvStride * tStride]; var vt = new float[kvStride * tStride];
                for (int j = 0; j < c; j++)
                    for (int t = 0; t < kvStride; t++) { kt[t * tStride + j] = k[j * kvStride + t]; vt[t * tStride + j] = v[j * kvStride + t]; }
                // positions 0..c-1 shuffled; the query sits so that exactly `future` keys are after it
                var keyPos = Enumerable.Range(0, c).OrderBy(_ => rng.Next()).ToArray();
                int queryPos = c - 1 - future;
                float[] want = new float[hd], wantP = new float[c], got = new float[hd], gotP = new float[c];
                using (Isa.Use(path))
                {
                    AttentionKernel.CausalHead(q, 1, hd, 0, k, v, c, kvStride, 0, hd, [queryPos], keyPos, want, wantP);
                    AttentionKernel.DecodeHead(q, 0, k, kt, vt, tStride, c, kvStride, 0, hd, queryPos, keyPos, got, new float[c], gotP);
                }
                Assert.Equal(want, got);
                Assert.Equal(wantP, gotP);
                for (int j = 0; j < c; j++) Assert.Equal(keyPos[j] > queryPos, gotP[j] == 0);
            }
    }

    private static void DecodeEqualsCausal(int hd, int c)
    {
        var rng = new Random(hd * 1000 + c);
        int qHeads = 4, kvHeads = 2, qStride = qHeads * hd, kvStride = kvHeads * hd, capacity = c + 5;
        int tStride = (capacity + 15) / 16 * 16;
        float[] R(int len) => Enumerable.Range(0, len).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var q = R(qStride); var k = R(c * kvStride); var v = R(c * kvStride);
        var kt = new float[kvStride * tStride]; var vt = new float[kvStride * tStride];
        Array.Fill(kt, float.NaN); Array.Fill(vt, float.NaN);
        for (int j = 0; j < c; j++)
            for (int t = 0; t < kvStride; t++) { kt[t * tStride + j] = k[j * kvStride + t]; vt[t * tStride + j] = v[j * kvStride + t]; }
        var keyPos = Enumerable.Range(0, c).Select(j => 2 * j).ToArray();
        int queryPos = c > 2 ? keyPos[c - 2] : keyPos[c - 1]; // with three or more keys the last one is masked
        for (int h = 0; h < qHeads; h++)
        {
            int kvOff = h / (qHeads / kvHeads) * hd;
            float[] want = new float[qStride], wantP = new float[c], got = new float[qStride], gotP = new float[c];
            AttentionKernel.CausalHead(q, 1, qStride, h * hd, k, v, c, kvStride, kvOff, hd, [queryPos], keyPos, want, wantP);
            AttentionKernel.DecodeHead(q, h * hd, k, kt, vt, tStride, c, kvStride, kvOff, hd, queryPos, keyPos, got, new float[c], gotP);
            Assert.Equal(want, got);
            Assert.Equal(wantP, gotP);
            if (c > 2) Assert.Equal(0f, gotP[c - 1]);
            Assert.True(gotP[0] > 0);
        }
        Assert.Throws<ArgumentException>(() => AttentionKernel.DecodeHead(q, 0, k, kt, vt, tStride + 1, c, kvStride, 0, hd, queryPos, keyPos, new float[qStride], new float[c])); // stride not a multiple of 16
        Assert.Throws<ArgumentException>(() => AttentionKernel.DecodeHead(q, 0, k, kt, vt, tStride, c, kvStride, 0, hd, queryPos, keyPos, new float[qStride], new float[c - 1])); // scores too short
    }
}
