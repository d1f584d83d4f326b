using System.Runtime.Intrinsics;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Tests.Tensors;

/// <summary>
/// Every Ops kernel on every in-process path (<see cref="Isa.Use"/>) against its scalar twin, bit for bit; the Simd
/// category re-runs them under the runtime's instruction-set switches too.
/// </summary>
public class OpsTests
{
    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(IsaPaths.All), MemberType = typeof(IsaPaths))]
    public void Vectorised_gelu_matches_the_double_precision_erf_reference(IsaPath path)
    {
        // 12,201 values: every vector width and the scalar tail (12201 = 762 x 16 + 9) take part.
        // Past |x| = 13 the exp argument falls below the vector exp's clamp (-87.3): the tails, up to +-40, are covered too.
        var xs = Enumerable.Range(-6000, 12001).Select(i => i / 1000f).Concat(Enumerable.Range(1, 100).SelectMany(i => new[] { 6 + i * 0.34f, -6 - i * 0.34f })).ToArray();
        var got = xs.ToArray();
        using (Isa.Use(path)) Ops.GeluErf(got);
        for (int i = 0; i < xs.Length; i++)
        {
            // The rational erf is good to ~2.6e-7 in fp32: GELU within 1e-6 (absolute: as for every 0.5 x (1 + erf) form,
            // not relative in the far negative tail).
            Assert.True(Math.Abs(got[i] - Ops.GeluErfReference(xs[i])) <= 1e-6f * (1 + Math.Abs(xs[i])), $"x={xs[i]}: {got[i]} vs {Ops.GeluErfReference(xs[i])}");
            // One element goes through the scalar twin: every vector width gives its bits.
            var one = new[] { xs[i] };
            Ops.GeluErf(one);
            Assert.Equal(BitConverter.SingleToInt32Bits(one[0]), BitConverter.SingleToInt32Bits(got[i]));
            Assert.Equal(BitConverter.SingleToInt32Bits(Ops.Gelu(xs[i])), BitConverter.SingleToInt32Bits(got[i]));
        }
        var special = new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f };
        using (Isa.Use(path)) Ops.GeluErf(special);
        Assert.True(float.IsNaN(special[0]));
        Assert.Equal(float.PositiveInfinity, special[1]);
        Assert.True(float.IsNaN(special[2]) || special[2] == 0f, $"GELU(-inf) = {special[2]}");
        Assert.Equal(0f, special[3]);
    }

    /// <summary>
    /// GELU-tanh in chunks gives the bits of the nine TensorPrimitives calls over the whole span (the ViT's sequence),
    /// for lengths around the chunk size and far tails where tanh saturates; and it is that formula.
    /// </summary>
    [Theory, Trait("Category", "Simd")]
    [InlineData(1)]
    [InlineData(37)]
    [InlineData(256)]
    [InlineData(300)]
    [InlineData(511)]
    [InlineData(512)]
    [InlineData(1000)]
    [InlineData(128 * 128 + 5)]
    public void GeluTanh_equals_the_TensorPrimitives_sequence_over_the_whole_span(int n)
    {
        var rng = new Random(n);
        var x = Enumerable.Range(0, n).Select(i => i % 97 == 5 ? (float)(rng.NextDouble() * 2e4 - 1e4) : (float)(rng.NextDouble() * 24 - 12)).ToArray();
        if (n > 3) { x[0] = 0f; x[1] = -0f; x[2] = 1e-20f; }
        var want = x.ToArray(); var tmp = new float[n];
        System.Numerics.Tensors.TensorPrimitives.Multiply(want, want, tmp);
        System.Numerics.Tensors.TensorPrimitives.Multiply(tmp, 0.044715f, tmp);
        System.Numerics.Tensors.TensorPrimitives.Add(tmp, 1f, tmp);
        System.Numerics.Tensors.TensorPrimitives.Multiply(tmp, want, tmp);
        System.Numerics.Tensors.TensorPrimitives.Multiply(tmp, 0.7978845608028654f, tmp);
        System.Numerics.Tensors.TensorPrimitives.Tanh(tmp, tmp);
        System.Numerics.Tensors.TensorPrimitives.Add(tmp, 1f, tmp);
        System.Numerics.Tensors.TensorPrimitives.Multiply(tmp, 0.5f, tmp);
        System.Numerics.Tensors.TensorPrimitives.Multiply(want, tmp, want);
        var got = x.ToArray();
        Ops.GeluTanh(got);
        Assert.Equal(want.Select(BitConverter.SingleToInt32Bits), got.Select(BitConverter.SingleToInt32Bits));
        for (int i = 0; i < n; i++)
        {
            double v = x[i], r = 0.5 * v * (1 + Math.Tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
            Assert.True(Math.Abs(got[i] - r) <= 1e-5 * (1 + Math.Abs(v)), $"x={x[i]}: {got[i]} vs {r}");
        }
    }

    [Fact]
    public void LayerNorm_of_rows_equals_LayerNorm_row_by_row()
    {
        var rng = new Random(3);
        int rows = 5, d = 37;
        float[] R(int len) => Enumerable.Range(0, len).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var x = R(rows * d); var g = R(d); var b = R(d);
        var want = new float[rows * d]; var got = new float[rows * d];
        for (int i = 0; i < rows; i++) Ops.LayerNorm(x.AsSpan(i * d, d), g, b, 1e-5f, want.AsSpan(i * d, d));
        Ops.LayerNorm(x, rows, g, b, 1e-5f, got);
        Assert.Equal(want, got);
        Assert.Equal(0.0, Enumerable.Range(0, d).Select(e => (got[e] - b[e]) / g[e]).Average(), 5); // normalised: mean 0
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Ops.LayerNorm(x, rows + 1, g, b, 1e-5f, new float[(rows + 1) * d])).ParamName);
        Assert.Equal("beta", Assert.Throws<ArgumentException>(() => Ops.LayerNorm(x, rows, g, b[1..], 1e-5f, got)).ParamName);
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
        // Through each width adapter, whether or not the process accelerates it (the software fallback must agree too).
        var e16 = new float[16]; var e8 = new float[8]; var e4 = new float[4];
        for (int i = 0; i + 16 <= xs.Length; i += 16)
        {
            W512.Store(Ops.Exp<W512, Vector512<float>>(W512.Load(ref xs[i], 0)), ref e16[0], 0);
            W256.Store(Ops.Exp<W256, Vector256<float>>(W256.Load(ref xs[i], 0)), ref e8[0], 0);
            W128.Store(Ops.Exp<W128, Vector128<float>>(W128.Load(ref xs[i], 0)), ref e4[0], 0);
            for (int j = 0; j < 16; j++) Assert.Equal(Ops.Exp(xs[i + j]), e16[j]);
            for (int j = 0; j < 8; j++) Assert.Equal(Ops.Exp(xs[i + j]), e8[j]);
            for (int j = 0; j < 4; j++) Assert.Equal(Ops.Exp(xs[i + j]), e4[j]);
        }
    }

    /// <summary>
    /// Rows of whole vectors (attention rows) and rows with a scalar rest, on every path: against doubles.
    /// </summary>
    [Theory, Trait("Category", "Simd")]
    [InlineData(16)]
    [InlineData(128)]
    [InlineData(144)]
    [InlineData(37)]
    public void Softmax_matches_a_double_precision_reference(int n)
    {
        foreach (var path in Isa.SupportedPaths)
        {
            using var scope = Isa.Use(path);
            SoftmaxMatchesTheReference(n);
        }
    }

    private static void SoftmaxMatchesTheReference(int n)
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

    /// <summary>
    /// On every path, softmax gives the bits of the scalar twin summing in that path's lanes (the only step whose bits
    /// depend on the width), for rows shorter than, equal to and longer than each vector, masked and not; and the
    /// row-pair kernel gives the same bits.
    /// </summary>
    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(IsaPaths.All), MemberType = typeof(IsaPaths))]
    public void Softmax_on_every_path_gives_the_bits_of_the_scalar_twin(IsaPath path)
    {
        var rng = new Random((int)path);
        foreach (int n in new[] { 1, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 31, 32, 37, 48, 128, 144 })
            for (int trial = 0; trial < 4; trial++)
            {
                int rows = 3;
                var x = Enumerable.Range(0, rows * n).Select(i => trial == 1 && i % 5 == 2 ? float.NegativeInfinity : (float)(rng.NextDouble() * 40 - 20 + (trial == 2 ? 500 : 0))).ToArray();
                var want = x.ToArray();
                for (int i = 0; i < rows; i++) Ops.SoftmaxScalar(want.AsSpan(i * n, n), Ops.SoftmaxLanes(path, n));
                var got = x.ToArray(); var byRows = x.ToArray();
                using (Isa.Use(path))
                {
                    for (int i = 0; i < rows; i++) Ops.Softmax(got.AsSpan(i * n, n));
                    Ops.SoftmaxRows(byRows, rows, n);
                }
                Assert.True(want.Select(BitConverter.SingleToInt32Bits).SequenceEqual(got.Select(BitConverter.SingleToInt32Bits)), $"{path} n={n} trial={trial}");
                Assert.True(want.Select(BitConverter.SingleToInt32Bits).SequenceEqual(byRows.Select(BitConverter.SingleToInt32Bits)), $"{path} rows n={n} trial={trial}");
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
    /// <summary>Ops.IndexOfMax (the greedy pick) decides as TensorPrimitives.IndexOfMax: ties, signed zeros, NaN, infinities.</summary>
    [Fact]
    public void IndexOfMax_and_Max_pick_what_TensorPrimitives_picks()
    {
        var rng = new Random(7);
        var cases = new List<float[]> { new float[0], new[] { 1f }, new[] { -0f, 0f }, new[] { 0f, -0f }, new[] { -0f, -0f, 0f, 0f },
            new[] { 3f, float.NaN, 5f, float.NaN }, new[] { float.NaN, 1f }, new[] { float.NegativeInfinity, float.NegativeInfinity },
            new[] { 2f, float.PositiveInfinity, 7f, float.PositiveInfinity }, new[] { 5f, 5f, 5f } };
        foreach (int n in new[] { 3, 16, 17, 64, 100, 512, 1000 })
            for (int rep = 0; rep < 20; rep++)
            {
                // Few distinct values, so ties (and ties of signed zeros) are common.
                var x = Enumerable.Range(0, n).Select(_ => rng.Next(6) switch { 0 => 0f, 1 => -0f, 2 => float.NaN, _ => rng.Next(-3, 4) * 0.5f }).ToArray();
                if (rep % 2 == 0) for (int i = 0; i < n; i++) if (float.IsNaN(x[i])) x[i] = 1.5f;
                cases.Add(x);
            }
        foreach (var x in cases)
        {
            Assert.Equal(System.Numerics.Tensors.TensorPrimitives.IndexOfMax(x), Ops.IndexOfMax(x));
            // Ops.Max (the softmax's row maximum) gives TensorPrimitives.Max's bits, NaN and signed zeros included.
            if (x.Length > 0)
                Assert.Equal(BitConverter.SingleToInt32Bits(System.Numerics.Tensors.TensorPrimitives.Max(x)), BitConverter.SingleToInt32Bits(Ops.Max(x)));
        }
    }
}

