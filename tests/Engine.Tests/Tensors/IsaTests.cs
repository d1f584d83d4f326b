using Workbench.Engine.LowBit;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Tests.Tensors;

/// <summary>The in-process instruction-set choice: scopes nest, flow into tasks, and every kernel's default honours them.</summary>
[Trait("Category", "Simd")]
public class IsaTests
{
    [Fact]
    public void A_scope_sets_the_default_path_nests_and_restores()
    {
        Assert.Equal(Isa.Widest, Isa.Best);
        Assert.Equal(Isa.Widest, Isa.SupportedPaths[^1]);
        using (Isa.Use(IsaPath.Scalar))
        {
            Assert.Equal(IsaPath.Scalar, Isa.Best);
            using (Isa.Use(Isa.Widest)) Assert.Equal(Isa.Widest, Isa.Best);
            Assert.Equal(IsaPath.Scalar, Isa.Best);
            Assert.Equal(IsaPath.Scalar, Task.Run(() => Isa.Best).Result); // flows into the tasks it starts
            Assert.Equal(Isa.SupportedPaths.Count, Isa.SupportedPaths.Count(Isa.Supported)); // the list ignores scopes
        }
        Assert.Equal(Isa.Widest, Isa.Best);
        foreach (var p in new[] { IsaPath.V128, IsaPath.V256, IsaPath.V512 }.Where(p => !Isa.Supported(p)))
            Assert.Throws<PlatformNotSupportedException>(() => Isa.Use(p));
    }

    /// <summary>
    /// A kernel called without a path inside a scope gives the bits of the same call naming that path; on the scalar
    /// path the GEMM is the plain loop, so it gives the scalar twin's bits.
    /// </summary>
    [Fact]
    public void The_fp32_kernels_take_the_scope_when_no_path_is_named()
    {
        var rng = new Random(8);
        foreach (var (n, k, m) in new[] { (1, 300, 70), (13, 300, 70), (128, 96, 64) })
        {
            var x = Enumerable.Range(0, n * k).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
            var w = Enumerable.Range(0, m * k).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
            var bias = Enumerable.Range(0, m).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
            var scalar = new float[n * m];
            MatMul.LinearScalar(x, n, k, w, m, scalar);
            foreach (var path in Isa.SupportedPaths)
            {
                float[] named = new float[n * m], scoped = new float[n * m], namedLayer = new float[n * m], scopedLayer = new float[n * m];
                MatMul.Linear(x, n, k, w.AsSpan(), m, named, threads: 2, path: path);
                MatMul.Linear(x, n, k, w, m, namedLayer, bias, gelu: true, threads: 1, path: path);
                using (Isa.Use(path))
                {
                    MatMul.Linear(x, n, k, w.AsSpan(), m, scoped, threads: 2);
                    MatMul.Linear(x, n, k, w, m, scopedLayer, bias, gelu: true, threads: 1);
                }
                Assert.Equal(named, scoped);
                Assert.Equal(namedLayer, scopedLayer);
                if (path == IsaPath.Scalar) Assert.Equal(scalar, scoped);
            }
        }
    }

    [Fact]
    public void The_low_bit_kernels_take_the_scope_when_no_path_is_named()
    {
        var m = AbsMeanTernary.Random(64, 128, 1, 0.05f).Pack(LowBitFormat.I2S);
        foreach (var path in Isa.SupportedPaths)
            using (Isa.Use(path))
            {
                using var layer = new BitLinear(m);
                Assert.Equal(path, layer.Path);
            }
    }
}
