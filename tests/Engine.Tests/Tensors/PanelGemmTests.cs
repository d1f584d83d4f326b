using Workbench.Engine.Tensors;

namespace Workbench.Engine.Tests.Tensors;

[Trait("Category", "Simd")]
public class PanelGemmTests
{
    [Theory]
    [MemberData(nameof(IsaPaths.All), MemberType = typeof(IsaPaths))]
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
