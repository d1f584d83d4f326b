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

    [Fact]
    public void The_bitnet_request_reports_the_classifier_accuracy_against_fp32()
    {
        var report = new BitNetRequest { Model = "vit-cifar10", Format = "i2s" }.Run();
        Assert.Equal("image classifier", report.Kind);
        Assert.True(report.Lossless.Lossless);
        var c = Assert.IsType<ClassifierQuality>(report.Classifier);
        Assert.Null(report.Decoder);
        Assert.Null(report.Encoder);

        // fp32 accuracy recomputed here on the same held-out images, through the model's own Classify.
        var (images, labels) = TernaryQuality.HeldOutImages();
        Assert.Equal(images.Length, c.Images);
        Assert.Equal(Enumerable.Range(0, 10), labels.Distinct().Order());
        double fp32 = images.Select((img, i) => VitTestData.Model.Classify(img) == labels[i] ? 1.0 : 0.0).Average();
        Assert.Equal(fp32, c.AccuracyFp32!.Value, 12);
        Assert.InRange(c.Agreement, 0, 1);
        Assert.True(c.Accuracy < c.AccuracyFp32, $"ternary post-training quantization left accuracy at {c.Accuracy} (fp32 {c.AccuracyFp32})");
    }
}
