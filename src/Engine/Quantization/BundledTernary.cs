using System.Runtime.CompilerServices;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;

namespace Workbench.Engine.Quantization;

/// <summary>
/// The bundled name <c>austen-16L-ternary</c>: austen-16L's BitNet b1.58 twin (models/austen-16L/bitnet-b158) with its
/// block linears on the packed I2_S kernels, read with their stored scales (<see cref="TernaryModel.FromStored"/>),
/// and per-token int8 activations, for every forward any verb or magic runs on it. Registered with
/// <see cref="ModelHub"/> when the engine loads, so Models never names Quantization.
/// </summary>
public static class BundledTernary
{
    public const string Name = "austen-16L-ternary";
    public const string Folder = "models/austen-16L/bitnet-b158";
    public const LowBitFormat Format = LowBitFormat.I2S;

#pragma warning disable CA2255 // the engine registers its own bundled names; no other assembly is involved
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() => ModelHub.RegisterBundled(Name, Load);

    private static Decoder Load()
    {
        var b = (Decoder)ModelHub.Load(Bundled.Folder(Folder));
        // The model is cached and shared: one forward at a time through the packed kernels' workspaces.
        var packed = new Serialized(TernaryModel.FromStored(b.Model, Format));
        return new Decoder(Name, b.Model.WithLinear(packed), b.Tokenizer, b.Pruned, b.EosIds);
    }

    /// <summary>The packed ternary kernels a loaded model runs on by default, or null (fp32).</summary>
    public static TernaryModel? Kernels(LoadedModel model) => (model.Model as LlamaModel)?.LinearOverride switch
    {
        Serialized s => s.Inner,
        TernaryModel t => t,
        _ => null,
    };

    /// <summary>A ternary model behind a lock: a cached bundled model may be run from several threads.</summary>
    private sealed class Serialized(TernaryModel inner) : ILinearOverride
    {
        public TernaryModel Inner => inner;

        public bool TryLinear(float[] weight, ReadOnlySpan<float> x, int n, int k, int m, Span<float> y)
        {
            lock (inner) return inner.TryLinear(weight, x, n, k, m, y);
        }
    }
}
