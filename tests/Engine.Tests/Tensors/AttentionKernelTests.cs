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
}
