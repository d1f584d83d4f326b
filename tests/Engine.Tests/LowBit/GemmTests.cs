using Workbench.Engine.LowBit;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Tests.LowBit;

public class GemmTests
{
    /// <summary>
    /// Small-batch GEMM (the I2S V512 kernel feeds one weight load to four tokens) must equal n one-token GEMVs on the
    /// scalar reference path, bit for bit, for batch sizes around the 4-token grouping and on 1 and 2 threads.
    /// </summary>
    [Theory, Trait("Category", "Simd")]
    [InlineData(LowBitFormat.I2S, 1)]
    [InlineData(LowBitFormat.I2S, 4)]
    [InlineData(LowBitFormat.I2S, 5)]
    [InlineData(LowBitFormat.I2S, 9)]
    [InlineData(LowBitFormat.TL1, 5)]
    [InlineData(LowBitFormat.TL2, 6)]
    public void GemmEqualsScalarGemvPerToken(LowBitFormat format, int n)
    {
        var rng = new Random(n * 31 + (int)format);
        int rows = 197, cols = 777;
        var t = AbsMeanTernary.Random(rows, cols, n, 0.05f);
        var x = new float[n * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 6 - 3);
        x[0] = 40f; // one large activation: the others quantize to small values, as in real layers
        var m = t.Pack(format);
        using var reference = m.CreateWorkspace(1, 1);
        var expected = new float[n * rows];
        for (int k = 0; k < n; k++) m.Gemv(x.AsSpan(k * cols, cols), expected.AsSpan(k * rows, rows), reference, IsaPath.Scalar);
        foreach (var path in Isa.SupportedPaths)
            foreach (int threads in new[] { 1, 2 })
            {
                using var ws = m.CreateWorkspace(threads, n);
                var y = new float[n * rows];
                m.Gemm(x, n, y, ws, path);
                Assert.True(expected.AsSpan().SequenceEqual(y), $"{format} n={n} {path} threads={threads}");
            }
    }

    /// <summary>
    /// On two threads every part but the caller's builds its own copy of the activation tables in each call. One
    /// workspace reused across calls with new activations, batch sizes and paths must give what a fresh single-thread
    /// scalar GEMV gives every time: a part that kept the previous call's tables would not.
    /// </summary>
    [Theory, Trait("Category", "Simd")]
    [InlineData(LowBitFormat.I2S)]
    [InlineData(LowBitFormat.TL1)]
    [InlineData(LowBitFormat.TL2)]
    [InlineData(LowBitFormat.Int8)]
    public void ReusedTwoThreadWorkspaceFollowsEveryCall(LowBitFormat format)
    {
        int rows = 197, cols = 777;
        var m = LowBitFormats.Get(format).Random(rows, cols, 7);
        using var reference = m.CreateWorkspace(1, 1);
        using var ws = m.CreateWorkspace(2, 3);
        var rng = new Random(11 + (int)format);
        int call = 0;
        foreach (var path in Isa.SupportedPaths)
            foreach (int n in new[] { 1, 3, 1, 2 })
            {
                var x = new float[n * cols];
                for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 6 - 3);
                x[call++ % cols] = 30f;
                var expected = new float[n * rows];
                for (int k = 0; k < n; k++) m.Gemv(x.AsSpan(k * cols, cols), expected.AsSpan(k * rows, rows), reference, IsaPath.Scalar);
                var y = new float[n * rows];
                m.Gemm(x, n, y, ws, path);
                Assert.True(expected.AsSpan().SequenceEqual(y), $"{format} call {call} n={n} {path}");
            }
    }
}

public class CostTableTests
{
    [Fact]
    public void TokenCostSumsTheBitNetLayersAndHead()
    {
        var m = new DecodeMeasurement(LowBitFormat.I2S, LowBitFormat.Int8, 30, 1, IsaPath.Scalar, 5, 100.0, 10.0, 0, 0);
        var c = Workbench.Engine.Costs.LowBitCosts.ForToken(m);
        // 30 layers x (q, k, v, o, gate, up, down) at 2 bits + 4-byte scale each, plus the int8 head with row scales.
        long layer = 2560L * 2560 * 2 + 640L * 2560 * 2 + 6912L * 2560 * 3;
        long expected = 30 * (layer / 4 + 7 * 4) + 128256L * 2560 + 4 * 128256L;
        Assert.Equal(expected, c.WeightBytesPerToken);
        Assert.Equal(expected / 0.1 / 1e9, c.MeasuredGBps, 6);
    }
}

public class SignedTableTests
{
    [Fact, Trait("Category", "Simd")]
    public void TL2SignedTablesHoldEveryEntryAndItsNegation()
    {
        if (!Isa.Supported(IsaPath.V512)) return; // the V512 tables are built only for that path
        var m = TL2.Pack(new sbyte[24], 1, 24, 1f);
        var a = (TL2.Activations)m.CreateActivationBuffer();
        var q = new sbyte[24];
        q[0] = -128; q[1] = 127; q[2] = -5;
        a.Load(q, 1f, IsaPath.V512);
        int b0 = -128, b1 = 127, b2 = -5;
        int[] expected = [0, b2, b1 - b2, b1, b1 + b2, b0 - b1 - b2, b0 - b1, b0 - b1 + b2, b0 - b2, b0, b0 + b2, b0 + b1 - b2, b0 + b1, b0 + b1 + b2];
        for (int e = 0; e < 14; e++)
        {
            Assert.Equal(expected[e], a.SignedTables[e]);
            Assert.Equal(-expected[e], a.SignedTables[16 + e]);
        }
        Assert.Equal(0, a.SignedTables[14] | a.SignedTables[15] | a.SignedTables[30] | a.SignedTables[31]);
    }
}

public class QuantizerSimdTests
{
    /// <summary>The vectorized activation quantizer equals clamp(round-half-even(x a)) element by element, ties included.</summary>
    [Fact, Trait("Category", "Simd")]
    public void AbsMaxInt8EqualsScalarFormulaIncludingTies()
    {
        var rng = new Random(3);
        foreach (int n in new[] { 1, 31, 32, 33, 100, 4096 })
        {
            var x = new float[n];
            for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
            x[0] = n % 2 == 0 ? 1f : -1f; // max |x| = 1, so a = 127 and x = k / 254 lands exactly on ties
            for (int i = 1; i < n; i += 3) x[i] = (2 * rng.Next(-127, 127) + 1) / 254f;
            var q = new sbyte[n];
            float a = AbsMaxInt8.Quantize(x, q);
            Assert.Equal(127f, a);
            for (int i = 0; i < n; i++)
                Assert.Equal((sbyte)Math.Clamp(MathF.Round(x[i] * a, MidpointRounding.ToEven), -128f, 127f), q[i]);
        }
    }
}
