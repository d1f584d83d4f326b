using Workbench.Engine.Tensors;

namespace Workbench.Engine.Tests.Training;

[Trait("Category", "Simd")]
public class GemmBackwardTests
{
    private static float[] Random(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    // Shapes with row and column tails on every vector width (and the layer shapes of stories260K).
    public static TheoryData<int, int, int> Shapes => new() { { 1, 1, 1 }, { 5, 7, 3 }, { 13, 64, 172 }, { 37, 172, 64 }, { 252, 512, 64 }, { 6, 33, 100 } };

    [Theory, MemberData(nameof(Shapes))]
    public void Every_path_equals_the_scalar_twin_bit_for_bit_with_any_thread_count(int n, int q, int p)
    {
        var a = Random(n * q, 1);
        var b = Random(q * p, 2);
        var start = Random(n * p, 3);
        foreach (bool accumulate in new[] { false, true })
        {
            var expected = (float[])start.Clone();
            GemmBackward.ProductScalar(a, n, q, b, p, expected, accumulate);
            foreach (var path in Isa.SupportedPaths)
                foreach (int threads in new[] { 1, 2, 3 })
                {
                    var c = (float[])start.Clone();
                    GemmBackward.Product(a, n, q, b, p, c, accumulate, threads, path);
                    Assert.True(expected.AsSpan().SequenceEqual(c), $"{path}, {threads} threads, accumulate {accumulate}");
                }
        }
    }

    [Fact]
    public void Input_and_weight_gradients_are_the_products_they_name()
    {
        int n = 9, m = 11, k = 6;
        var dy = Random(n * m, 4);
        var w = Random(m * k, 5);
        var x = Random(n * k, 6);
        var dx = new float[n * k];
        GemmBackward.InputGrad(dy, n, m, w, k, dx);
        var dw = Enumerable.Repeat(1f, m * k).ToArray();
        GemmBackward.WeightGrad(dy, n, m, x, k, dw, new float[m * n]);
        for (int i = 0; i < n; i++)
            for (int c = 0; c < k; c++)
            {
                double s = 0;
                for (int j = 0; j < m; j++) s += (double)dy[i * m + j] * w[j * k + c];
                Assert.Equal(s, dx[i * k + c], 1e-5);
            }
        for (int j = 0; j < m; j++)
            for (int c = 0; c < k; c++)
            {
                double s = 1;
                for (int i = 0; i < n; i++) s += (double)dy[i * m + j] * x[i * k + c];
                Assert.Equal(s, dw[j * k + c], 1e-5);
            }
    }

    [Fact]
    public void Shapes_that_do_not_fit_are_refused()
    {
        Assert.Throws<ArgumentException>(() => GemmBackward.Product(new float[5], 2, 3, new float[6], 2, new float[4], false));
        Assert.Throws<ArgumentException>(() => GemmBackward.WeightGrad(new float[6], 2, 3, new float[4], 2, new float[6], new float[5]));
    }
}
