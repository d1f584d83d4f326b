using Workbench.Engine.Formats;

namespace Workbench.Engine.Tests.Formats;

public class NpzTests
{
    [Fact]
    public void Vit_cifar10_arrays()
    {
        using var npz = NpzFile.Open(RepoFiles.Model("vit-cifar10", "vit_cifar10.npz"));
        Assert.Equal(239, npz.Tensors.Count);
        Assert.Equal(Enumerable.Range(0, 239).Select(i => $"arr_{i}"), npz.Tensors.Select(t => t.Name));
        Assert.All(npz.Tensors, t => Assert.Equal(DType.F32, t.DType));
        Assert.Equal([48L, 64], npz.Get("arr_0").Shape);
        Assert.Equal([1L, 1, 64], npz.Get("arr_1").Shape);
        Assert.Equal([1L, 65, 64], npz.Get("arr_2").Shape);
        Assert.Equal([10L, 64], npz.Get("arr_237").Shape);
        Assert.Equal(141_962, npz.Tensors.Sum(t => t.ElementCount));
        // Per VIT.md: block 0 starts at 3 with ln1 gamma/beta, then head 0's Wq (8, 64) and bq (1, 8).
        Assert.Equal([64L], npz.Get("arr_3").Shape);
        Assert.Equal([8L, 64], npz.Get("arr_5").Shape);
        Assert.Equal([1L, 8], npz.Get("arr_6").Shape);
        var all = npz.Tensors.SelectMany(t => npz.ReadF32(t.Name)).ToArray();
        Assert.Equal(141_962, all.Length);
        Assert.All(all, v => Assert.True(float.IsFinite(v)));
        // A trained LayerNorm gamma is not all ones nor all zeros.
        var gamma = npz.ReadF32("arr_235");
        Assert.Contains(gamma, v => Math.Abs(v - 1f) > 1e-3f);
    }
}
