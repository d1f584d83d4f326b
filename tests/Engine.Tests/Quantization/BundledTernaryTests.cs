using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Quantization;

namespace Workbench.Engine.Tests.Quantization;

/// <summary>The bundled name austen-16L-ternary: B on the packed I2_S kernels with its stored scales, for every forward.</summary>
public class BundledTernaryTests
{
    [Fact]
    public void The_bundled_name_runs_B_on_the_packed_kernels_in_every_forward()
    {
        Assert.Contains(BundledTernary.Name, ModelHub.BundledNames);
        var named = ModelHub.LoadDecoder(BundledTernary.Name);
        Assert.Equal(BundledTernary.Name, named.Name);
        var kernels = BundledTernary.Kernels(named);
        Assert.NotNull(kernels);
        Assert.Equal(LowBitFormat.I2S, kernels.Format);
        Assert.Equal(named.Model.BlockLinears.Count, kernels.Layers.Count);

        var b = (Decoder)ModelHub.Load(Bundled.Folder(BundledTernary.Folder));
        using var stored = TernaryModel.FromStored(b.Model, LowBitFormat.I2S);
        var ids = named.Tokenizer.Encode("Anne Elliot had been walking with Captain Wentworth", bos: true);
        // A plain context (what every verb builds) reaches the packed kernels: bit-identical to an explicit override.
        Assert.Equal(b.Logits(ids, stored.Context()), named.Logits(ids, new ForwardContext()));
        Assert.Equal(b.Logits(ids, stored.Context()), named.Logits(ids));
        // ... and not B's fp32 forward (activations are not int8 there).
        Assert.NotEqual(b.Logits(ids), named.Logits(ids));
        // A context's own override still comes first.
        using var tl2 = TernaryModel.FromStored(named.Model, LowBitFormat.TL2);
        var viaTl2 = named.Logits(ids, new ForwardContext { Linear = tl2 });
        Assert.Equal(b.Logits(ids, stored.Context()), viaTl2); // the kernels are exact: TL2 gives I2_S's logits bit for bit
        Assert.All(tl2.CheckLossless(ctx => named.Logits(ids, ctx)).Layers, l => Assert.True(l.Passed)); // and TL2 ran on every layer
    }

    [Fact]
    public void A_name_can_be_registered_once()
    {
        Assert.Throws<ArgumentException>(() => ModelHub.RegisterBundled("austen-16L", () => throw new InvalidOperationException()));
        Assert.Throws<ArgumentException>(() => ModelHub.RegisterBundled(BundledTernary.Name.ToUpperInvariant(), () => throw new InvalidOperationException()));
    }
}
