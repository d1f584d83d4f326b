using System.Runtime.Intrinsics;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Tests.Tensors;

/// <summary>Every fp32 SIMD path against the scalar twin. fp32 sums in another order differ by rounding only.</summary>
[Trait("Category", "Simd")]
public class MatMulTests
{
    public static TheoryData<IsaPath> Paths()
    {
        var d = new TheoryData<IsaPath>();
        foreach (var p in Isa.SupportedPaths) d.Add(p);
        return d;
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Linear_equals_the_scalar_twin_on_random_shapes(IsaPath path)
    {
        var rng = new Random(1234);
        for (int trial = 0; trial < 60; trial++)
        {
            int n = rng.Next(1, 20), k = rng.Next(1, 200), m = rng.Next(1, 90);
            var x = Rand(rng, n * k); var w = Rand(rng, m * k);
            var want = new float[n * m]; var got = new float[n * m];
            MatMul.LinearScalar(x, n, k, w, m, want);
            MatMul.Linear(x, n, k, w, m, got, threads: 1 + trial % 2, path: path);
            for (int i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(want[i] - got[i]) <= 1e-5f * (1 + MathF.Sqrt(k)), $"{path} n={n} k={k} m={m} [{i}]: {got[i]} vs {want[i]}");
        }
    }

    /// <summary>
    /// The GEMM splits k into blocks of 192 (prefetching the next block while it computes one) and pads the last
    /// n mod 12 (V512, where up to 8 take the 8-row kernel) or n mod 6 rows: cover all of these, packed and unpacked.
    /// </summary>
    [Theory]
    [MemberData(nameof(Paths))]
    public void Gemm_with_long_k_and_row_tails_equals_the_scalar_twin(IsaPath path)
    {
        var rng = new Random(77);
        foreach (var (n, k, m) in new[] { (5, 257, 33), (13, 600, 70), (128, 1536, 64), (7, 512, 32), (23, 300, 40), (36, 520, 96), (24, 256, 65), (20, 300, 40), (16, 300, 40), (28, 260, 64) })
        {
            var x = Rand(rng, n * k); var w = Rand(rng, m * k);
            var want = new float[n * m];
            MatMul.LinearScalar(x, n, k, w, m, want);
            var viaSpan = new float[n * m]; var viaArray = new float[n * m];
            MatMul.Linear(x, n, k, w.AsSpan(), m, viaSpan, threads: 2, path: path);
            MatMul.Linear(x, n, k, w, m, viaArray, threads: 1, path: path);
            for (int i = 0; i < want.Length; i++)
            {
                Assert.True(Math.Abs(want[i] - viaSpan[i]) <= 1e-5f * (1 + MathF.Sqrt(k)), $"{path} span n={n} k={k} m={m} [{i}]: {viaSpan[i]} vs {want[i]}");
                Assert.True(Math.Abs(want[i] - viaArray[i]) <= 1e-5f * (1 + MathF.Sqrt(k)), $"{path} packed n={n} k={k} m={m} [{i}]: {viaArray[i]} vs {want[i]}");
            }
        }
    }

    /// <summary>The fused epilogue (bias, then exact GELU, on each finished tile) against the plain product plus separate passes.</summary>
    [Theory]
    [MemberData(nameof(Paths))]
    public void Linear_with_bias_and_gelu_equals_the_unfused_layer(IsaPath path)
    {
        var rng = new Random(99);
        foreach (var (n, k, m) in new[] { (1, 40, 70), (3, 300, 33), (20, 300, 40), (128, 384, 96), (13, 520, 64) })
            foreach (bool gelu in new[] { false, true })
            {
                var x = Rand(rng, n * k); var w = Rand(rng, m * k); var bias = Rand(rng, m);
                var want = new float[n * m];
                MatMul.LinearScalar(x, n, k, w, m, want);
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < m; j++)
                    {
                        double v = want[i * m + j] + bias[j];
                        want[i * m + j] = (float)(gelu ? 0.5 * v * (1 + Ops.Erf(v / Math.Sqrt(2))) : v);
                    }
                foreach (int threads in new[] { 1, 2 })
                {
                    var got = new float[n * m];
                    MatMul.Linear(x, n, k, w, m, got, bias, gelu, threads, path);
                    for (int i = 0; i < want.Length; i++)
                        Assert.True(Math.Abs(want[i] - got[i]) <= 2e-5f * (1 + MathF.Sqrt(k)), $"{path} n={n} k={k} m={m} gelu={gelu} t={threads} [{i}]: {got[i]} vs {want[i]}");
                }
            }
        Assert.Throws<ArgumentException>(() => MatMul.Linear(new float[8], 2, 4, new float[12], 3, new float[6], new float[2], false));
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Gemv_uses_every_row_once_and_handles_tails(IsaPath path)
    {
        // Integer-valued inputs make every sum exact in fp32, so any order must give the same bits.
        int rows = 4 * 9 + 3, cols = 16 * 5 + 7;
        var w = new float[rows * cols]; var x = new float[cols];
        for (int i = 0; i < w.Length; i++) w[i] = (i * 7 % 13) - 6;
        for (int i = 0; i < x.Length; i++) x[i] = (i % 5) - 2;
        var want = new float[rows]; var got = new float[rows];
        MatMul.LinearScalar(x, 1, cols, w, rows, want);
        MatMul.Gemv(w, rows, cols, x, got, threads: 2, path: path);
        Assert.Equal(want, got);
        // The same product in parts, as the worker teams of the low-bit benchmarks run it: every row exactly once.
        foreach (int parts in new[] { 1, 2, 3, 4, 11 })
        {
            var byParts = Enumerable.Repeat(float.NaN, rows).ToArray();
            for (int p = 0; p < parts; p++) MatMul.GemvPart(w, rows, cols, x, byParts, p, parts, path);
            Assert.Equal(want, byParts);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.GemvPart(w, rows, cols, x, got, 2, 2, path));
    }

    [Fact]
    public void Bad_shapes_name_the_buffer()
    {
        var e = Assert.Throws<ArgumentException>(() => MatMul.Linear(new float[5], 1, 6, new float[12], 2, new float[2]));
        Assert.Equal("x", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => MatMul.Linear(new float[6], 1, 6, new float[11], 2, new float[2]));
        Assert.Equal("w", e.ParamName);
    }

    [Fact]
    public void A_path_the_process_lacks_is_refused()
    {
        foreach (var p in new[] { IsaPath.V128, IsaPath.V256, IsaPath.V512 }.Where(p => !Isa.Supported(p)))
            Assert.Throws<PlatformNotSupportedException>(() => MatMul.Gemv(new float[4], 1, 4, new float[4], new float[1], path: p));
    }

    private static float[] Rand(Random r, int n)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }
}

public class OpsTests
{
    [Fact, Trait("Category", "Simd")]
    public void Vectorised_gelu_matches_the_double_precision_erf_reference()
    {
        // 12,201 values: every vector width and the scalar tail (12201 = 762 x 16 + 9) take part.
        // Past |x| = 13 the exp argument falls below the vector exp's clamp (-87.3): the tails, up to +-40, are covered too.
        var xs = Enumerable.Range(-6000, 12001).Select(i => i / 1000f).Concat(Enumerable.Range(1, 100).SelectMany(i => new[] { 6 + i * 0.34f, -6 - i * 0.34f })).ToArray();
        var got = xs.ToArray();
        Ops.GeluErf(got);
        for (int i = 0; i < xs.Length; i++)
        {
            // The rational erf is good to ~2.6e-7 in fp32: GELU within 1e-6 (absolute: as for every 0.5 x (1 + erf) form,
            // not relative in the far negative tail).
            Assert.True(Math.Abs(got[i] - Ops.GeluErfReference(xs[i])) <= 1e-6f * (1 + Math.Abs(xs[i])), $"x={xs[i]}: {got[i]} vs {Ops.GeluErfReference(xs[i])}");
            // One element goes through the scalar twin: every vector width gives its bits.
            var one = new[] { xs[i] };
            Ops.GeluErf(one);
            Assert.Equal(BitConverter.SingleToInt32Bits(one[0]), BitConverter.SingleToInt32Bits(got[i]));
        }
        var special = new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f };
        Ops.GeluErf(special);
        Assert.True(float.IsNaN(special[0]));
        Assert.Equal(float.PositiveInfinity, special[1]);
        Assert.True(float.IsNaN(special[2]) || special[2] == 0f, $"GELU(-inf) = {special[2]}");
        Assert.Equal(0f, special[3]);
    }

    [Theory]
    [InlineData(0.0, 0.0)]
    [InlineData(0.5, 0.5204998778130465)]
    [InlineData(1.0, 0.8427007929497149)]
    [InlineData(-2.0, -0.9953222650189527)]
    [InlineData(3.5, 0.9999992569016276)]
    public void Erf_matches_published_values(double x, double erf) => Assert.Equal(erf, Ops.Erf(x), 1e-12);
}

public class SoftmaxTests
{
    [Fact, Trait("Category", "Simd")]
    public void Exp_is_accurate_and_every_width_gives_the_scalar_bits()
    {
        var xs = Enumerable.Range(0, 4000).Select(i => -90f + i * 0.045f).Append(float.NegativeInfinity).Append(-100f).ToArray();
        foreach (float x in xs)
        {
            float e = Ops.Exp(x);
            double want = Math.Exp(x);
            if (x < -87.3365f) Assert.Equal(0f, e);
            else if (x > 88.37f) Assert.True(float.IsFinite(e)); // clamped: no overflow to infinity
            else Assert.True(Math.Abs(e - want) <= 3e-7 * want + 1e-37, $"exp({x}) = {e}, want {want}");
        }
        for (int i = 0; i + 16 <= xs.Length; i += 16)
        {
            var v = Vector512.Create<float>(xs.AsSpan(i, 16));
            var w8 = Vector256.Create<float>(xs.AsSpan(i, 8));
            var w4 = Vector128.Create<float>(xs.AsSpan(i, 4));
            var e16 = Ops.Exp(v); var e8 = Ops.Exp(w8); var e4 = Ops.Exp(w4);
            for (int j = 0; j < 16; j++) Assert.Equal(Ops.Exp(xs[i + j]), e16[j]);
            for (int j = 0; j < 8; j++) Assert.Equal(Ops.Exp(xs[i + j]), e8[j]);
            for (int j = 0; j < 4; j++) Assert.Equal(Ops.Exp(xs[i + j]), e4[j]);
        }
    }

    /// <summary>
    /// Rows whose length is a multiple of 16 (attention rows) take an inlined Vector512 path, the rest the general one
    /// (and under the instruction-set switches, the narrower paths): against doubles.
    /// </summary>
    [Theory, Trait("Category", "Simd")]
    [InlineData(16)]
    [InlineData(128)]
    [InlineData(144)]
    [InlineData(37)]
    public void Softmax_matches_a_double_precision_reference(int n)
    {
        var rng = new Random(n);
        for (int trial = 0; trial < 20; trial++)
        {
            var x = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 40 - 20 + (trial == 3 ? 500 : 0))).ToArray();
            if (trial % 2 == 1) for (int j = 0; j < n; j += 5) x[j] = float.NegativeInfinity; // masked keys
            double max = x.Max(), sum = x.Sum(v => Math.Exp(v - max));
            var want = x.Select(v => Math.Exp(v - max) / sum).ToArray();
            Ops.Softmax(x);
            for (int j = 0; j < n; j++)
                Assert.True(Math.Abs(x[j] - want[j]) <= 1e-6 * want[j] + 1e-9, $"n={n} trial={trial} [{j}]: {x[j]} vs {want[j]}");
        }
    }

    /// <summary>Rows in pairs (the attention path) give exactly the bits of one row at a time, for any row count.</summary>
    [Theory, Trait("Category", "Simd")]
    [InlineData(7, 128)]
    [InlineData(128, 128)]
    [InlineData(5, 48)]
    [InlineData(4, 37)]
    public void Softmax_of_many_rows_equals_softmax_row_by_row(int rows, int cols)
    {
        var rng = new Random(rows * 1000 + cols);
        var x = Enumerable.Range(0, rows * cols).Select(i => i % 7 == 3 ? float.NegativeInfinity : (float)(rng.NextDouble() * 30 - 15)).ToArray();
        var want = x.ToArray();
        for (int i = 0; i < rows; i++) Ops.Softmax(want.AsSpan(i * cols, cols));
        Ops.SoftmaxRows(x, rows, cols);
        Assert.Equal(want.Select(BitConverter.SingleToInt32Bits), x.Select(BitConverter.SingleToInt32Bits));
        Assert.Throws<ArgumentException>(() => Ops.SoftmaxRows(new float[10], 3, 4));
    }

    [Fact]
    public void Large_scores_do_not_overflow()
    {
        float[] x = [1000f, 1000f, 999f, float.NegativeInfinity];
        Ops.Softmax(x);
        double e = Math.Exp(-1);
        Assert.Equal(1 / (2 + e), x[0], 1e-6);
        Assert.Equal(e / (2 + e), x[2], 1e-6);
        Assert.Equal(0f, x[3]);
    }
}

[Trait("Category", "Simd")]
public class PackedGemmTests
{
    public static TheoryData<IsaPath> Paths()
    {
        var d = new TheoryData<IsaPath>();
        foreach (var p in Isa.SupportedPaths) d.Add(p);
        return d;
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Gemm_with_cached_packed_weights_equals_the_scalar_twin(IsaPath path)
    {
        var rng = new Random(77);
        foreach (var (n, k, m) in new[] { (4, 33, 70), (13, 64, 96), (7, 100, 31), (130, 48, 200) })
        {
            var x = Enumerable.Range(0, n * k).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
            var w = Enumerable.Range(0, m * k).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
            var want = new float[n * m];
            MatMul.LinearScalar(x, n, k, w, m, want);
            for (int call = 0; call < 2; call++) // the second call uses the cached packing
                foreach (int threads in new[] { 1, 2 })
                {
                    var got = new float[n * m];
                    MatMul.Linear(x, n, k, w, m, got, threads, path);
                    for (int i = 0; i < want.Length; i++)
                        Assert.True(Math.Abs(want[i] - got[i]) <= 1e-5f * (1 + MathF.Sqrt(k)), $"{path} n={n} k={k} m={m} [{i}]");
                }
        }
    }
}

public class ParallelismTests
{
    [Fact]
    public void Every_index_runs_once_also_when_calls_nest_or_overlap()
    {
        var hits = new int[1000];
        // Nested: the inner calls find the team busy and fall back to Parallel.For.
        Parallelism.For(10, 2, outer => Parallelism.For(100, 2, inner => Interlocked.Increment(ref hits[outer * 100 + inner])));
        Assert.All(hits, h => Assert.Equal(1, h));
        // Overlapping callers on other threads.
        var counts = new int[4][];
        Parallel.For(0, 4, c =>
        {
            counts[c] = new int[5000];
            for (int rep = 0; rep < 20; rep++) Parallelism.For(5000, 2, i => Interlocked.Increment(ref counts[c][i]));
        });
        Assert.All(counts, a => Assert.All(a, h => Assert.Equal(20, h)));
    }

    [Fact]
    public void An_exception_in_a_part_reaches_the_caller_and_the_team_keeps_working()
    {
        Assert.ThrowsAny<Exception>(() => Parallelism.For(8, 2, i => { if (i == 7) throw new InvalidOperationException("part failed"); }));
        int sum = 0;
        Parallelism.For(8, 2, i => Interlocked.Add(ref sum, i));
        Assert.Equal(28, sum);
    }
}

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
