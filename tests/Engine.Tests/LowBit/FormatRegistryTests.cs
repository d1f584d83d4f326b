using Workbench.Engine.LowBit;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Tests.LowBit;

/// <summary>One loop over every registered format: a new format is tested by registering it.</summary>
public class FormatRegistryTests
{
    public static TheoryData<LowBitFormat> Registered => new(LowBitFormats.All.Select(f => f.Format));

    // Shapes straddling every format's padding: I2S cols to 256, Int8 to 64, TL1 cols to 4 and rows to 64, TL2 blocks of 24 and its TL1 tail.
    private static readonly (int Rows, int Cols)[] Shapes = [(1, 1), (3, 23), (64, 24), (65, 257), (130, 100), (7, 1000)];

    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(Registered))]
    public void Every_registered_format_packs_to_the_predicted_bytes_and_every_path_equals_the_scalar_reference(LowBitFormat format)
    {
        var info = LowBitFormats.Get(format);
        Assert.Same(info, LowBitFormats.Find(info.Name));
        Assert.Same(info, LowBitFormats.Find(" " + info.Name.ToUpperInvariant() + " "));
        Assert.Equal(info.Name, format.Name());
        if (info.IsStored)
        {
            // A stored type: its own bytes (2 a weight, or ggml's block bytes: 34 / 18 / 22 a block of 32, 144 / 176 / 210 a super-block of 256) and its kernels on every path
            foreach (var (rows, cols) in new[] { (3, 256), (65, 512) })
            {
                var sm = info.RandomStored(rows, cols, rows);
                Assert.Equal(info.WeightBytes(rows, cols), sm.WeightBytes);
                var xs = Enumerable.Range(0, cols).Select(i => MathF.Sin(i)).ToArray();
                var ys = new float[rows];
                sm.Gemv(xs, ys, 1, IsaPath.Scalar);
                foreach (var path in Isa.SupportedPaths)
                {
                    var yp = new float[rows];
                    sm.Gemv(xs, yp, 1, path);
                    Assert.Equal(ys, yp);
                }
            }
            Assert.Throws<ArgumentException>(() => info.Random(2, 64, 1));
            return;
        }
        if (!info.IsPacked)
        {
            Assert.Equal(4L * 65 * 257, info.WeightBytes(65, 257)); // F32: four bytes a weight, no padding, no scale
            return;
        }
        int seed = 0;
        foreach (var (rows, cols) in Shapes)
        {
            var m = info.Random(rows, cols, ++seed);
            Assert.Equal(format, m.Format);
            Assert.Equal(info.WeightBytes(rows, cols), m.WeightBytes);
            var w = m.Unpack();
            var rng = new Random(seed);
            var q = new sbyte[cols];
            for (int i = 0; i < cols; i++) q[i] = (sbyte)rng.Next(-128, 128);
            var expected = KernelTests.Reference(w, rows, cols, q);
            var x = q.Select(v => v / 100f).ToArray();
            float[]? scalarY = null;
            foreach (var path in Isa.SupportedPaths)
            {
                var a = m.CreateActivationBuffer();
                a.Load(q, 1f, path);
                Assert.True(expected.SequenceEqual(m.MatVec(a, path)), $"{format} {path} {rows}x{cols}");
                // The float GEMV: the same int32 sums and the same dequantization on every path, bit for bit.
                using var ws = m.CreateWorkspace();
                var y = new float[rows];
                m.Gemv(x, y, ws, path);
                scalarY ??= y;
                Assert.Equal(scalarY, y);
            }
            if (info.IsTernary)
            {
                var t = AbsMeanTernary.Random(rows, cols, seed);
                Assert.Equal(t.Values, info.Pack(t).Unpack());
                Assert.Equal(t.Values, t.Pack(format).Unpack());
            }
        }
    }

    [Fact]
    public void The_registry_lists_each_format_once_and_names_the_ternary_ones()
    {
        Assert.Equal(Enum.GetValues<LowBitFormat>(), LowBitFormats.All.Select(f => f.Format).Order());
        Assert.Equal(LowBitFormats.All.Count, LowBitFormats.All.Select(f => f.Name).Distinct().Count());
        Assert.Equal("f32, int8, i2s, tl1, tl2, f16, bf16, q8_0, q4_0, q5_0, q4_k, q5_k, q6_k, q2_k, q3_k, q4_1 or q5_1", LowBitFormats.NameList());
        Assert.Equal("i2s, tl1 or tl2", LowBitFormats.NameList(ternaryOnly: true));
        Assert.Null(LowBitFormats.Find("q4"));
        Assert.Null(LowBitFormats.Find(""));
        var e = Assert.Throws<ArgumentException>(() => LowBitFormats.Get(LowBitFormat.Int8).Pack(AbsMeanTernary.Random(2, 2, 1)));
        Assert.Contains("i2s, tl1 or tl2", e.Message);
        Assert.Throws<ArgumentException>(() => LowBitFormats.Get(LowBitFormat.F32).Pack(new float[4], 2, 2));
    }
}
