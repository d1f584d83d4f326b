using Workbench.Engine.LowBit;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Tests.LowBit;

/// <summary>Weight buffers of 2 MB and more are their own mappings advised for huge pages (Linux).</summary>
public class HugePageTests
{
    [Fact]
    public void ABufferOfTwoMegabytesOrMoreIsAMappingStartingOnA2MBBoundaryZeroedAndCloned()
    {
        var b = new AlignedBuffer<int>((int)(HugePages.MinBytes / sizeof(int)) + 777);
        Assert.Equal(HugePages.Enabled, b.IsMapped);
        unsafe
        {
            nint address = (nint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref b.Ref);
            Assert.Equal(0, address % (b.IsMapped ? HugePages.MinBytes : 64));
        }
        Assert.True(b.Span.IndexOfAnyExcept(0) < 0, "a new buffer is zero");
        for (int i = 0; i < b.Length; i++) b.Span[i] = i * 7 - 3;
        var c = b.Clone();
        Assert.Equal(b.IsMapped, c.IsMapped);
        Assert.True(b.Span.SequenceEqual(c.Span));
        c.Span[^1] = 5;
        Assert.Equal(b.Length * 7 - 10, b.Span[^1]); // the clone has its own memory
        Assert.False(new AlignedBuffer<int>(1000).IsMapped);
    }

    [Theory, Trait("Category", "Simd")]
    [InlineData(1280, 8192)]
    [InlineData(2600, 4099)]
    public void MatricesInHugePageBuffersEqualTheScalarReferenceOnEveryPath(int rows, int cols)
    {
        var rng = new Random(rows + cols);
        var t = new sbyte[rows * cols];
        for (int i = 0; i < t.Length; i++) t[i] = (sbyte)rng.Next(-1, 2);
        var q = new sbyte[cols];
        for (int i = 0; i < cols; i++) q[i] = (sbyte)rng.Next(-128, 128);
        var expected = KernelTests.Reference(t, rows, cols, q);
        foreach (var f in KernelTests.Formats)
        {
            var m = KernelTests.PackTernary(f, t, rows, cols);
            Assert.True(m.WeightBytes < HugePages.MinBytes || !HugePages.Enabled || m.InHugePageMapping, $"{f}: {m.WeightBytes} bytes not mapped");
            foreach (var path in Isa.SupportedPaths)
            {
                var a = m.CreateActivationBuffer();
                a.Load(q, 1f, path);
                Assert.True(expected.SequenceEqual(m.MatVec(a, path)), $"{f} {path} {rows}x{cols}");
            }
        }
    }
}
