using Workbench.Engine.Tensors;

namespace Workbench.Engine.Tests.Tensors;

/// <summary>Every fp32 SIMD path against the scalar twin. fp32 sums in another order differ by rounding only.</summary>
[Trait("Category", "Simd")]
public class MatMulTests
{
    [Theory]
    [MemberData(nameof(IsaPaths.All), MemberType = typeof(IsaPaths))]
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
    [MemberData(nameof(IsaPaths.All), MemberType = typeof(IsaPaths))]
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
    [MemberData(nameof(IsaPaths.All), MemberType = typeof(IsaPaths))]
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
    [MemberData(nameof(IsaPaths.All), MemberType = typeof(IsaPaths))]
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
        // The same product in chunks, as the worker teams of the low-bit benchmarks run it (in any order): every row
        // exactly once, also for a matrix of several chunks with a short last one.
        foreach (int m in new[] { rows, 2 * MatMul.GemvChunkRows + 11 })
        {
            var wm = new float[m * cols];
            for (int i = 0; i < wm.Length; i++) wm[i] = (i * 7 % 13) - 6;
            var wantM = new float[m];
            MatMul.LinearScalar(x, 1, cols, wm, m, wantM);
            var byChunks = Enumerable.Repeat(float.NaN, m).ToArray();
            for (int c = MatMul.GemvChunks(m) - 1; c >= 0; c--) MatMul.GemvChunk(wm, m, cols, x, byChunks, c, path);
            Assert.Equal(wantM, byChunks);
            var threaded = new float[m];
            MatMul.Gemv(wm, m, cols, x, threaded, threads: 2, path: path);
            Assert.Equal(wantM, threaded);
            Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.GemvChunk(wm, m, cols, x, byChunks, MatMul.GemvChunks(m), path));
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.All), MemberType = typeof(IsaPaths))]
    public void Gemv_rows_give_the_same_bits_one_at_a_time_and_eight_at_a_time(IsaPath path)
    {
        // Rows of a large matrix shorter than GemvTileMinCols (4096 on AMD, 0 elsewhere) are read one at a time, longer
        // ones eight at a time: either way each row is the same lane sums, so a row's output equals that row alone as a
        // 1-row product, on each side of AMD's threshold.
        var rng = new Random(3);
        foreach (int cols in new[] { 4096 - 9, 4096 + 7 })
        {
            int rows = (int)(MatMul.GemvStreamMinWeights / cols) / 8 * 8 + 8 * 2 + 5; // a matrix streamed from memory
            var w = new float[rows * cols]; var x = new float[cols];
            for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() * 2 - 1);
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
            var all = new float[rows];
            MatMul.Gemv(w, rows, cols, x, all, threads: 1, path: path);
            for (int r = 0; r < rows; r++)
            {
                var one = new float[1];
                MatMul.Gemv(w.AsSpan(r * cols, cols), 1, cols, x, one, threads: 1, path: path);
                Assert.Equal(BitConverter.SingleToInt32Bits(one[0]), BitConverter.SingleToInt32Bits(all[r]));
            }
            var want = new float[rows];
            MatMul.LinearScalar(x, 1, cols, w, rows, want);
            for (int r = 0; r < rows; r++) Assert.True(Math.Abs(want[r] - all[r]) <= 1e-3f, $"{cols} cols, row {r}: {all[r]} vs {want[r]}");
        }
    }

    /// <summary>
    /// A small model's decode rows (eight at a time, the eight sums reduced together) equal each row alone (one dot, one
    /// Vector*.Sum), bit for bit, with values over eight decades so any other summation order shows.
    /// </summary>
    [Theory]
    [MemberData(nameof(IsaPaths.All), MemberType = typeof(IsaPaths))]
    public void Small_gemv_rows_reduced_eight_at_a_time_equal_each_row_alone(IsaPath path)
    {
        var rng = new Random(11);
        float R() => (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-4, 5)));
        foreach (int cols in new[] { 16, 64, 172, 256 })
        {
            int rows = 8 * 3 + 5;
            var w = Enumerable.Range(0, rows * cols).Select(_ => R()).ToArray();
            var x = Enumerable.Range(0, cols).Select(_ => R()).ToArray();
            var all = new float[rows];
            MatMul.Gemv(w, rows, cols, x, all, threads: 1, path: path);
            for (int r = 0; r < rows; r++)
            {
                var one = new float[1];
                MatMul.Gemv(w.AsSpan(r * cols, cols), 1, cols, x, one, threads: 1, path: path);
                Assert.True(BitConverter.SingleToInt32Bits(one[0]) == BitConverter.SingleToInt32Bits(all[r]), $"{path} {cols} cols, row {r}: {all[r]} vs {one[0]}");
            }
        }
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
