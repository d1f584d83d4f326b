using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Quantization;
using Workbench.Engine.Tests.Vision;

namespace Workbench.Engine.Tests.Quantization;

/// <summary>The ViT through the shared path with ternary linear layers: every block linear replaced, lossless kernels.</summary>
public class VitTernaryTests
{
    [Theory]
    [InlineData(LowBitFormat.I2S)]
    [InlineData(LowBitFormat.TL2)]
    public void Every_block_linear_runs_ternary_and_the_kernels_are_lossless(LowBitFormat format)
    {
        var vit = VitTestData.Model;
        using var ternary = TernaryModel.Quantize(vit, format);
        Assert.Equal(vit.BlockLinears.Count, ternary.Layers.Count);
        Assert.Equal(vit.BlockLinears.Select(l => l.Name), ternary.Layers.Select(l => l.Name));

        var images = Enumerable.Range(0, 4).Select(i => VitTestData.Set.Pixels(i).ToArray()).ToArray();
        var report = ternary.CheckLossless(ctx => { foreach (var img in images) vit.Forward(img, ctx); });
        Assert.True(report.Lossless, string.Join("; ", report.Layers.Where(l => !l.Passed).Select(l => $"{l.Name}: {l.IntegerMismatches} mismatches, {l.MaxRelativeError}")));
        Assert.All(report.Layers, l => Assert.True(l.TokensChecked > 0, $"{l.Name} was never reached"));

        // The override really replaced the layers: the logits move away from fp32 and stay finite.
        var full = vit.Forward(images[0]);
        var tern = vit.Forward(images[0], ternary.Context());
        Assert.NotEqual(full, tern);
        Assert.All(tern, v => Assert.True(float.IsFinite(v)));
    }
}
