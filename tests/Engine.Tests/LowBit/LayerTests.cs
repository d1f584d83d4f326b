using Workbench.Engine.Tensors;
using Workbench.Engine.Costs;
using Workbench.Engine.LowBit;

namespace Workbench.Engine.Tests.LowBit;

public class LayerTests
{
    [Fact]
    public void AbsMeanTernaryQuantizesAsThePaperSays()
    {
        float[] w = [0.5f, -1.5f, 0.1f, 2.0f]; // mean |W| = 1.025
        var t = AbsMeanTernary.Quantize(w, 2, 2);
        Assert.Equal(1.025f, t.Scale, 6);
        Assert.Equal(new sbyte[] { 0, -1, 0, 1 }, t.Values);
    }

    [Fact]
    public void AbsMaxInt8QuantizesAsThePaperSays()
    {
        float[] x = [0.5f, -2f, 1f, 0f];
        var q = new sbyte[4];
        float a = AbsMaxInt8.Quantize(x, q);
        Assert.Equal(63.5f, a);
        Assert.Equal(new sbyte[] { 32, -127, 64, 0 }, q); // round(31.75) = 32, round(63.5) = 64 (ties to even)
    }

    /// <summary>
    /// The vector quantizer (AVX-512 or AVX2 by hardware, or scalar under the switches) against the scalar definition,
    /// bit for bit: lengths around the 64 / 32 / 16 / 8 steps, exact ties (x a = k + 0.5), values at the clamp.
    /// </summary>
    [Theory, Trait("Category", "Simd")]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(64)]
    [InlineData(100)]
    [InlineData(2560)]
    [InlineData(11008 + 23)]
    public void AbsMaxInt8EqualsItsScalarDefinition(int n)
    {
        var rng = new Random(n);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 6 - 3);
        for (int i = 0; i < n; i += 7) x[i] = (2 * rng.Next(-127, 127) + 1) / 63.5f; // x a = k + 0.5 (within float rounding)
        x[rng.Next(n)] = -4f; // max |x| = 4, a = 31.75
        var q = new sbyte[n];
        float a = AbsMaxInt8.Quantize(x, q);
        Assert.Equal(127f / 4f, a);
        for (int i = 0; i < n; i++)
            Assert.Equal((sbyte)Math.Clamp(MathF.Round(x[i] * a), -128f, 127f), q[i]);
        x[n / 2] = float.NaN;
        Assert.Throws<ArgumentException>(() => AbsMaxInt8.Quantize(x, q));
        x[n / 2] = float.NegativeInfinity;
        Assert.Throws<ArgumentException>(() => AbsMaxInt8.Quantize(x, q));
    }

    [Theory, Trait("Category", "Simd")]
    [InlineData(LowBitFormat.I2S)]
    [InlineData(LowBitFormat.TL1)]
    [InlineData(LowBitFormat.TL2)]
    public void BitLinearEqualsDequantizedFp32(LowBitFormat format)
    {
        var rng = new Random(5);
        int rows = 100, cols = 300;
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() * 2 - 1);
        var x = new float[cols];
        for (int i = 0; i < cols; i++) x[i] = (float)(rng.NextDouble() * 4 - 2);
        var tw = AbsMeanTernary.Quantize(w, rows, cols);
        var q = new sbyte[cols];
        float a = AbsMaxInt8.Quantize(x, q);
        foreach (var path in Isa.SupportedPaths)
        {
            using var layer = new BitLinear(tw.Pack(format), path: path);
            var y = new float[rows];
            layer.Forward(x, y);
            for (int r = 0; r < rows; r++)
            {
                // Dequantized fp32 computation: sum (W_t s)(q / a) in double.
                double expected = 0;
                for (int c = 0; c < cols; c++) expected += tw.Values[r * cols + c] * (double)tw.Scale * (q[c] / (double)a);
                Assert.True(Math.Abs(y[r] - expected) <= 1e-5 * Math.Max(1, Math.Abs(expected)), $"{format} {path} row {r}: {y[r]} vs {expected}");
            }
        }
    }

    [Fact, Trait("Category", "Simd")]
    public void GemmEqualsGemvPerTokenAndThreadsAgree()
    {
        var rng = new Random(9);
        int rows = 200, cols = 520, n = 3;
        var t = AbsMeanTernary.Random(rows, cols, 3, 0.7f);
        var x = new float[n * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        foreach (var f in new[] { LowBitFormat.I2S, LowBitFormat.TL1, LowBitFormat.TL2 })
        {
            var m = t.Pack(f);
            using var ws1 = m.CreateWorkspace(1, n);
            using var ws2 = m.CreateWorkspace(2, n);
            var y1 = new float[n * rows];
            var y2 = new float[n * rows];
            m.Gemm(x, n, y1, ws1);
            m.Gemm(x, n, y2, ws2);
            Assert.Equal(y1, y2);
            for (int k = 0; k < n; k++)
            {
                var y = new float[rows];
                m.Gemv(x.AsSpan(k * cols, cols), y, ws1);
                Assert.Equal(y, y1.AsSpan(k * rows, rows).ToArray());
            }
        }
    }

    [Fact]
    public void BadInputThrowsClearly()
    {
        var ex = Assert.Throws<ArgumentException>(() => I2S.Pack(new sbyte[] { 0, 2, 0, 0 }, 2, 2, 1f));
        Assert.Contains("ternary[1] = 2", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => TL2.Pack(new sbyte[5], 2, 3, 1f));
        Assert.Contains("rows x cols = 2 x 3", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => TL1.Pack(new sbyte[0], 0, 3, 1f));
        var m = I2S.Pack(new sbyte[12], 3, 4, 1f);
        using var ws = m.CreateWorkspace();
        ex = Assert.Throws<ArgumentException>(() => m.Gemv(new float[5], new float[3], ws));
        Assert.Contains("n x cols = 1 x 4", ex.Message);
        Assert.Throws<ArgumentException>(() => m.Gemv(new float[4], new float[2], ws));
        Assert.Throws<ArgumentException>(() => m.Gemv(new float[] { 1, float.NaN, 0, 0 }, new float[3], ws));
        var a = m.CreateActivationBuffer();
        a.Load(new sbyte[4], 1f, IsaPath.Scalar);
        if (Isa.Supported(IsaPath.V128))
            Assert.Throws<ArgumentException>(() => m.MatVec(a, IsaPath.V128)); // prepared for another path
        var other = TL1.Pack(new sbyte[12], 3, 4, 1f);
        Assert.Throws<ArgumentException>(() => other.MatVec(a, IsaPath.Scalar)); // buffer of another format
    }

    [Theory]
    [InlineData(4096, 4096)]
    [InlineData(70, 1001)]
    [InlineData(6912, 2560)]
    [InlineData(2560, 6912)]
    public void CostModelBytesEqualPackedBytes(int rows, int cols)
    {
        var t = new sbyte[rows * cols];
        Assert.Equal(I2S.Pack(t, rows, cols, 1f).WeightBytes, LowBitFormats.WeightBytes(LowBitFormat.I2S, rows, cols));
        Assert.Equal(TL1.Pack(t, rows, cols, 1f).WeightBytes, LowBitFormats.WeightBytes(LowBitFormat.TL1, rows, cols));
        Assert.Equal(TL2.Pack(t, rows, cols, 1f).WeightBytes, LowBitFormats.WeightBytes(LowBitFormat.TL2, rows, cols));
        Assert.Equal(Int8.Pack(t, new float[rows], rows, cols).WeightBytes, LowBitFormats.WeightBytes(LowBitFormat.Int8, rows, cols));
        var c = LowBitCosts.ForGemv(LowBitFormat.I2S, rows, cols);
        Assert.Equal((long)rows * cols, c.IntAdds);
        Assert.Equal(c.WeightBytes * EnergyModel.Horowitz2014.DramPjPerByte, c.MemoryEnergyPj, 6);
    }

    [Fact]
    public void TinyProbeRunsAndReportsRates()
    {
        var r = GemvProbe.Run(LowBitFormat.TL2, 64, 96, threads: 1, runs: 3, warmup: 1, poolBytes: 1 << 16);
        Assert.True(r.MedianUs > 0 && r.Gops > 0 && r.WeightGBps > 0);
    }
}
