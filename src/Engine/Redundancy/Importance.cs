using System.Numerics.Tensors;
using Workbench.Engine.Models;

namespace Workbench.Engine.Redundancy;

/// <summary>
/// Importance of every block, attention layer and MLP layer (He et al. 2024, "What Matters in Transformers"):
/// importance = 1 - cos(X, Y), averaged over all calibration tokens, where X is the residual stream entering the
/// module and Y the residual stream leaving it. A module whose output barely turns the stream is redundant.
/// Values are indexed by layer; a module already dropped by <see cref="Skips"/> scores 0 (Y = X).
/// </summary>
public sealed record ImportanceScores(double[] Block, double[] Attention, double[] Mlp, long Tokens, int Sequences, ModuleSkips Skips)
{
    public int Layers => Block.Length;

    public double this[ModuleRef m] => m.Kind switch
    {
        ModuleKind.Block => Block[m.Layer],
        ModuleKind.Attention => Attention[m.Layer],
        _ => Mlp[m.Layer],
    };

    /// <summary>Every module of a granularity with its score, in layer order.</summary>
    public IReadOnlyList<(ModuleRef Module, double Importance)> Of(Granularity g) =>
        Modules.Of(Layers, g).Select(m => (m, this[m])).ToArray();

    /// <summary>Modules still present (not in <see cref="Skips"/>), least important first; ties broken by layer order.</summary>
    public IReadOnlyList<(ModuleRef Module, double Importance)> Ranked(Granularity g) =>
        Of(g).Where(x => !Skips.IsDropped(x.Module)).OrderBy(x => x.Importance).ToArray();
}

/// <summary>
/// Measures <see cref="ImportanceScores"/> with hooks: one forward pass per calibration sequence scores every module.
///
/// Pre-norm decoders (Llama): attention X = resid_pre, Y = resid_mid; MLP X = resid_mid, Y = resid_post;
/// block X = resid_pre, Y = resid_post.
///
/// Post-norm encoders (BERT): the same sites, where resid_mid = LN1(X + attn(X)) and resid_post = LN2(resid_mid + mlp(resid_mid)).
/// The LayerNorm belongs to the sub-layer: dropping the attention module drops its residual add and LN1 too
/// (<see cref="BertModel"/> skips the whole sub-layer), so with the module dropped the next sub-layer sees X, and with it
/// kept it sees resid_mid. 1 - cos(X, resid_mid) therefore measures exactly what the drop changes, as in the pre-norm
/// case. (Comparing X with X + attn(X) before the LN would ignore the LN's re-centring and gain, which the drop also removes.)
///
/// <para>Layer by layer (the default): every calibration sequence goes through block l before any goes through block
/// l + 1, and then the memory-mapped pages of block l's stored weights are released (and those of block l + 1 read
/// ahead while block l runs), so a model kept as stored has about one layer resident (a Mistral-7B-shaped bf16
/// checkpoint peaked at 0.68 GiB resident, README). Each sequence meets exactly the operations of a whole forward pass in the same order, and the sums run over
/// the sequences in the same order, so the scores are bit for bit those of sequence-by-sequence passes
/// (<c>layerByLayer: false</c>), which hold one sequence's activations but touch every layer per sequence.</para>
/// </summary>
public static class Importance
{
    /// <summary>Token-id calibration sequences (no BOS added): <see cref="Measure(ITransformerModel, IReadOnlyList{ModelInput}, ModuleSkips?, int, CancellationToken, bool)"/> on <see cref="ModelInput.Of(int[], int)"/>.</summary>
    public static ImportanceScores Measure(ITransformerModel model, IReadOnlyList<int[]> calibration, ModuleSkips? skips = null,
        int threads = 0, CancellationToken cancel = default, bool layerByLayer = true)
    {
        ArgumentNullException.ThrowIfNull(calibration);
        return Measure(model, calibration.Select(ids => ModelInput.Of(ids)).ToArray(), skips, threads, cancel, layerByLayer);
    }

    /// <summary>
    /// Importance over any calibration inputs the model takes (token ids, images, an image with a prompt). The mean runs
    /// over every row of the residual stream entering block 0: tokens, image patches and CLS, image and text tokens.
    /// </summary>
    public static ImportanceScores Measure(ITransformerModel model, IReadOnlyList<ModelInput> calibration, ModuleSkips? skips = null,
        int threads = 0, CancellationToken cancel = default, bool layerByLayer = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(calibration);
        if (calibration.Count == 0) throw new ArgumentException("no calibration sequences", nameof(calibration));
        skips ??= ModuleSkips.None;
        Modules.CheckSkips(model.Config, skips, nameof(skips));
        int layers = model.Config.Layers;
        var block = new double[layers];
        var attn = new double[layers];
        var mlp = new double[layers];
        long tokens = 0;

        // Blocks run one after another, so one copy of resid_pre and one of resid_mid serve every layer.
        float[] pre = [], mid = [];
        var hooks = new Hooks();
        for (int l = 0; l < layers; l++)
        {
            int layer = l;
            hooks.Add(HookNames.ResidPre(l), (p, x) => pre = Copy(x, pre));
            hooks.Add(HookNames.ResidMid(l), (p, x) =>
            {
                attn[layer] += SumOfDistances(pre, x, p.Shape[0], p.Shape[1]);
                mid = Copy(x, mid);
            });
            hooks.Add(HookNames.ResidPost(l), (p, x) =>
            {
                mlp[layer] += SumOfDistances(mid, x, p.Shape[0], p.Shape[1]);
                block[layer] += SumOfDistances(pre, x, p.Shape[0], p.Shape[1]);
            });
        }
        var ctx = new ForwardContext { Hooks = hooks, Skips = skips, Threads = threads > 0 ? threads : Environment.ProcessorCount, Cancellation = cancel };
        if (layerByLayer)
        {
            var states = calibration.Select(input => model.Embed(input, ctx)).ToArray();
            tokens = states.Sum(s => (long)s.Rows);
            var weights = model.BlockLinears.ToLookup(w => w.Layer, w => w.Weight);
            foreach (var w in weights[0]) StoredLinears.Prefetch(w);
            for (int l = 0; l < layers; l++)
            {
                cancel.ThrowIfCancellationRequested();
                foreach (var w in weights[l + 1]) StoredLinears.Prefetch(w);
                foreach (var s in states) model.RunBlock(l, s, ctx);
                foreach (var w in weights[l]) StoredLinears.ReleasePages(w);
            }
        }
        else
            foreach (var input in calibration)
            {
                var s = model.Embed(input, ctx);
                tokens += s.Rows;
                model.RunBlocks(s, ctx);
            }
        for (int l = 0; l < layers; l++)
        {
            block[l] /= tokens; attn[l] /= tokens; mlp[l] /= tokens;
        }
        return new ImportanceScores(block, attn, mlp, tokens, calibration.Count, skips);
    }

    /// <summary>Sum over rows of 1 - cos(x_r, y_r).</summary>
    internal static double SumOfDistances(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int rows, int cols)
    {
        double sum = 0;
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            var yr = y.Slice(r * cols, cols);
            // An unchanged row (a skipped module) is exactly 0 apart, even where rounding would make cos 0.99999994.
            sum += xr.SequenceEqual(yr) ? 0 : 1.0 - TensorPrimitives.CosineSimilarity(xr, yr);
        }
        return sum;
    }

    private static float[] Copy(ReadOnlySpan<float> x, float[] into)
    {
        if (into.Length != x.Length) into = new float[x.Length];
        x.CopyTo(into);
        return into;
    }

    /// <summary>Embeds the ids and runs every block (no readout): all the importance pass needs.</summary>
    public static SequenceState Hidden(ITransformerModel model, int[] ids, ForwardContext ctx) => model.Hidden(ModelInput.Of(ids), ctx);
}
