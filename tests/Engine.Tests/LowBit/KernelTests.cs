using Workbench.Engine.Tensors;
using Workbench.Engine.LowBit;

namespace Workbench.Engine.Tests.LowBit;

public class KernelTests
{
    internal static int[] Reference(sbyte[] w, int rows, int cols, sbyte[] q)
    {
        var acc = new int[rows];
        for (int r = 0; r < rows; r++)
        {
            int s = 0;
            for (int c = 0; c < cols; c++) s += w[r * cols + c] * q[c];
            acc[r] = s;
        }
        return acc;
    }

    private static sbyte[] RandomTernary(Random rng, int count)
    {
        var t = new sbyte[count];
        for (int i = 0; i < count; i++) t[i] = (sbyte)rng.Next(-1, 2);
        return t;
    }

    private static sbyte[] RandomInt8(Random rng, int count)
    {
        var q = new sbyte[count];
        for (int i = 0; i < count; i++) q[i] = (sbyte)rng.Next(-128, 128);
        return q;
    }

    /// <summary>Ternary values in a registered packed format (Int8 holds them as int8 weights with row scales 1).</summary>
    internal static PackedMatrix PackTernary(LowBitFormat f, sbyte[] t, int rows, int cols) => LowBitFormats.Get(f).IsTernary
        ? LowBitFormats.Get(f).Pack(new TernaryWeights(t, rows, cols, 1f))
        : Int8.Pack(t, Enumerable.Repeat(1f, rows).ToArray(), rows, cols);

    public static readonly LowBitFormat[] Formats = LowBitFormats.All.Where(f => f.IsPacked).Select(f => f.Format).ToArray();

    public static TheoryData<int> Seeds => new() { 1, 2, 3, 4, 5, 6, 7, 8 };

    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(Seeds))]
    public void EveryFormatAndPathEqualsScalarReference_RandomShapes(int seed)
    {
        var rng = new Random(seed);
        // Random shapes plus shapes straddling the block sizes (24, 128, 256) and the 64-row groups.
        int rows = seed % 2 == 0 ? rng.Next(1, 200) : 64 * rng.Next(1, 3) + rng.Next(-3, 4);
        int cols = seed % 3 == 0 ? 256 * rng.Next(1, 4) + rng.Next(-2, 3) : rng.Next(1, 900);
        var t = RandomTernary(rng, rows * cols);
        var q = RandomInt8(rng, cols);
        var expected = Reference(t, rows, cols, q);
        foreach (var f in Formats)
        {
            var m = PackTernary(f, t, rows, cols);
            foreach (var path in Isa.SupportedPaths)
            {
                var a = m.CreateActivationBuffer();
                a.Load(q, 1f, path);
                Assert.True(expected.SequenceEqual(m.MatVec(a, path)), $"{f} {path} {rows}x{cols} seed {seed}");
            }
        }
    }

    [Theory, Trait("Category", "Simd")]
    [InlineData(-1, -128)]
    [InlineData(-1, 127)]
    [InlineData(1, -128)]
    [InlineData(1, 127)]
    [InlineData(0, -128)]
    public void ExtremeSumsCannotOverflowInt16Chunks(int weight, int activation)
    {
        // 8192 columns of the same weight and activation: every int16 lane sees its largest possible partial sums.
        const int rows = 65, cols = 8192;
        var t = Enumerable.Repeat((sbyte)weight, rows * cols).ToArray();
        var q = Enumerable.Repeat((sbyte)activation, cols).ToArray();
        int expected = weight * activation * cols;
        foreach (var f in Formats)
        {
            var m = PackTernary(f, t, rows, cols);
            foreach (var path in Isa.SupportedPaths)
            {
                var a = m.CreateActivationBuffer();
                a.Load(q, 1f, path);
                Assert.All(m.MatVec(a, path), v => Assert.Equal(expected, v));
            }
        }
    }

    [Fact, Trait("Category", "Simd")]
    public void Int8EqualsReferenceWithFullRangeWeights()
    {
        var rng = new Random(11);
        int rows = 37, cols = 333;
        var w = new sbyte[rows * cols];
        rng.NextBytes((byte[])(object)w);
        w[0] = -128;
        var q = new sbyte[cols];
        rng.NextBytes((byte[])(object)q);
        q[0] = -128;
        var expected = Reference(w, rows, cols, q);
        var m = Int8.Pack(w, Enumerable.Repeat(1f, rows).ToArray(), rows, cols);
        foreach (var path in Isa.SupportedPaths)
        {
            var a = m.CreateActivationBuffer();
            a.Load(q, 1f, path);
            Assert.Equal(expected, m.MatVec(a, path));
        }
    }

    /// <summary>
    /// The one-token kernels read rows from the quarters (I2S) or the two halves (TL1/TL2 on V512) of whatever row
    /// range they are given; every sub-range a thread may get must still give each row its own sum.
    /// </summary>
    [Theory, Trait("Category", "Simd")]
    [InlineData(64 * 9 + 5, 300)]
    [InlineData(64 * 6, 777)]
    [InlineData(64 * 8, 20)]            // TL2: no whole 24-column block, only the TL1 tail, four groups at a time
    [InlineData(64 * 5 + 3, 24 * 9 + 23)] // TL2: the longest tail (23 columns) beside whole blocks
    public void EveryFormatAndPathEqualsScalarReference_OnSubRanges(int rows, int cols)
    {
        var rng = new Random(rows + cols);
        var t = RandomTernary(rng, rows * cols);
        var q = RandomInt8(rng, cols);
        var expected = Reference(t, rows, cols, q);
        foreach (var f in Formats)
        {
            var m = PackTernary(f, t, rows, cols);
            foreach (var path in Isa.SupportedPaths)
            {
                var a = m.CreateActivationBuffer();
                a.Load(q, 1f, path);
                foreach (var (start, end) in new[] { (0, rows), (64, rows), (128, 64 * 5 + 7), (64 * 3, 64 * 4), (0, 64 * 3) })
                {
                    if (end > rows) continue;
                    var acc = new int[end - start];
                    m.MatVec(a, start, end, acc, path);
                    Assert.True(expected.AsSpan(start, end - start).SequenceEqual(acc), $"{f} {path} rows [{start}, {end}) of {rows}x{cols}");
                }
            }
        }
    }

    [Theory, Trait("Category", "Simd")]
    [InlineData(0)]
    [InlineData(15)]
    [InlineData(4096)]
    [InlineData(4099)]
    public void Int8SumEqualsScalarSum(int n)
    {
        var q = new sbyte[n];
        new Random(n).NextBytes((byte[])(object)q);
        if (n > 0) q[0] = -128;
        Assert.Equal(q.Sum(v => (int)v), AbsMaxInt8.Sum(q));
        Array.Fill(q, (sbyte)-128);
        Assert.Equal(-128 * n, AbsMaxInt8.Sum(q));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 5)]
    [InlineData(64, 24)]
    [InlineData(65, 130)]
    [InlineData(130, 257)]
    public void PackUnpackRoundTrips(int rows, int cols)
    {
        var rng = new Random(rows * 1000 + cols);
        var t = RandomTernary(rng, rows * cols);
        Assert.Equal(t, I2S.Pack(t, rows, cols, 1f).Unpack());
        Assert.Equal(t, TL1.Pack(t, rows, cols, 1f).Unpack());
        Assert.Equal(t, TL2.Pack(t, rows, cols, 1f).Unpack());
        Assert.Equal(t, Int8.Pack(t, new float[rows], rows, cols).Unpack());
    }

    [Fact]
    public void I2SByteLayoutMatchesSpec()
    {
        // Row of 128: element g in bits 7:6, g+32 in 5:4, g+64 in 3:2, g+96 in 1:0; code = t + 1.
        var t = new sbyte[128];
        t[0] = 1; t[32] = -1; t[64] = 0; t[96] = 1; t[5] = -1;
        var m = I2S.Pack(t, 1, 128, 1f);
        Assert.Equal(0b10_00_01_10, m.Data[0]);
        Assert.Equal(0b00_01_01_01, m.Data[5]);
        Assert.Equal(64, m.RowBytes); // padded to 256 columns
    }

    [Fact]
    public void TL2TableMatchesSpec()
    {
        var m = TL2.Pack(new sbyte[24], 1, 24, 1f);
        var a = (TL2.Activations)m.CreateActivationBuffer();
        var q = new sbyte[24];
        q[0] = 100; q[1] = -7; q[2] = 3; // b0, b1, b2
        a.Load(q, 1f, IsaPath.Scalar);
        int b0 = 100, b1 = -7, b2 = 3;
        int[] expected = [0, b2, b1 - b2, b1, b1 + b2, b0 - b1 - b2, b0 - b1, b0 - b1 + b2, b0 - b2, b0, b0 + b2, b0 + b1 - b2, b0 + b1, b0 + b1 + b2];
        for (int e = 0; e < 14; e++) Assert.Equal(expected[e], (short)(a.Tables[e] | a.Tables[16 + e] << 8));
        Assert.Equal(0, a.Tables[14]);
        Assert.Equal(0, a.Tables[15]);
    }

    [Fact]
    public void BitsPerWeight()
    {
        Assert.Equal(2.0, I2S.Pack(new sbyte[4096 * 4096], 4096, 4096, 1f).BitsPerWeight, 3);
        Assert.Equal(2.0, TL1.Pack(new sbyte[4096 * 4096], 4096, 4096, 1f).BitsPerWeight, 3);
        Assert.InRange(TL2.Pack(new sbyte[4096 * 4096], 4096, 4096, 1f).BitsPerWeight, 1.66, 1.68);
    }
}
