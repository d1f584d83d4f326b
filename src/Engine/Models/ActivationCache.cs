using System.Numerics.Tensors;

namespace Workbench.Engine.Models;

/// <summary>
/// What one forward call left at the hook sites asked for (TransformerLens's <c>run_with_cache</c>): the model's
/// output and the captured activations by site name, e.g. <c>cache["blocks.1.attn.pattern"]</c>.
/// </summary>
public sealed class ActivationCache(float[] output, IReadOnlyDictionary<string, Activation> activations)
{
    /// <summary>The readout (empty when only blocks were run).</summary>
    public float[] Output { get; } = output;
    public IReadOnlyDictionary<string, Activation> Activations { get; } = activations;

    public Activation this[string site] => Activations.TryGetValue(site, out var a) ? a
        : throw new KeyNotFoundException($"site '{site}' was not captured (captured: {string.Join(", ", Activations.Keys.Take(8))})");
}

public static class RunWithCacheExtensions
{
    /// <summary>
    /// Runs each input through the whole model (embed, blocks, readout), capturing <paramref name="sites"/>; one cache
    /// per input, in order. <paramref name="ctx"/> gives skips, selector, linear override, threads and cancellation
    /// (its hooks and KV cache are not used: every input gets its own capture and no cache).
    /// </summary>
    public static ActivationCache[] RunWithCache(this ITransformerModel model, IReadOnlyList<ModelInput> inputs,
        IEnumerable<string> sites, ForwardContext? ctx = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputs);
        var names = sites.ToArray();
        var result = new ActivationCache[inputs.Count];
        for (int i = 0; i < inputs.Count; i++)
        {
            var hooks = new Hooks().Capture(names);
            var run = WithHooks(ctx ?? ForwardContext.Default, hooks);
            run.Cancellation.ThrowIfCancellationRequested();
            var (output, _) = model.Forward(inputs[i], run);
            result[i] = new ActivationCache(output, hooks.Captured);
        }
        return result;
    }

    /// <summary>
    /// Runs block <paramref name="layer"/> on a copy of <paramref name="state"/> (the state itself is left as it is),
    /// capturing <paramref name="sites"/> of that block. No KV cache: the rows attend to each other only.
    /// </summary>
    public static ActivationCache RunBlockWithCache(this ITransformerModel model, int layer, SequenceState state,
        IEnumerable<string> sites, ForwardContext? ctx = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentOutOfRangeException.ThrowIfNegative(layer);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(layer, model.Config.Layers);
        var hooks = new Hooks().Capture(sites);
        RunBlockOnCopy(model, layer, state, WithHooks(ctx ?? ForwardContext.Default, hooks));
        return new ActivationCache([], hooks.Captured);
    }

    /// <summary>
    /// The attention row <paramref name="queryRow"/> pays to every row of <paramref name="state"/> in block
    /// <paramref name="layer"/>, mean over heads: block <paramref name="layer"/>'s own <c>attn.pattern</c>, from a
    /// run of the block on a copy of the state (fp32 weights, one thread) that a hook stops once the pattern is there.
    /// Token dropping ranks with this. One probability per row.
    /// </summary>
    public static float[] QueryAttention(this ITransformerModel model, int layer, SequenceState state, int queryRow)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentOutOfRangeException.ThrowIfNegative(queryRow);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(queryRow, state.Rows);
        ArgumentOutOfRangeException.ThrowIfNegative(layer);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(layer, model.Config.Layers);
        // The block computes the scores of the query row only (PatternQueryRow: the pattern is [heads, 1, keys]), and a
        // hook reads them straight from the pattern.
        float[]? mean = null;
        var hooks = new Hooks().Add(HookNames.AttnPattern(layer), (p, data) =>
        {
            int heads = p.Shape[0], n = p.Shape[1], keys = p.Shape[2], row = n == 1 ? 0 : queryRow;
            mean = new float[keys];
            for (int h = 0; h < heads; h++)
                TensorPrimitives.Add(mean, data.Slice((h * n + row) * keys, keys), mean);
            TensorPrimitives.Divide(mean, heads, mean);
            throw new PatternRead(); // the rest of the block (A V, output projection, MLP) is not needed
        });
        try { RunBlockOnCopy(model, layer, state, new ForwardContext { Hooks = hooks, Threads = 1, PatternQueryRow = queryRow }); }
        catch (PatternRead) { }
        return mean ?? throw new InvalidOperationException($"block {layer} did not fire {HookNames.AttnPattern(layer)}");
    }

    private static void RunBlockOnCopy(ITransformerModel model, int layer, SequenceState state, ForwardContext ctx)
    {
        var copy = new SequenceState(state.Rows, state.Dim, (int[])state.Positions.Clone(), (int[])state.TokenIndex.Clone(),
            (bool[]?)state.Valid?.Clone());
        state.Active.CopyTo(copy.Hidden);
        model.RunBlock(layer, copy, ctx);
    }

    /// <summary>Stops a block run at the hook that has what it came for (thrown on the block's calling thread).</summary>
    private sealed class PatternRead : Exception;

    private static ForwardContext WithHooks(ForwardContext c, Hooks hooks) => new()
    {
        Hooks = hooks, Skips = c.Skips, Selector = c.Selector, Linear = c.Linear, Threads = c.Threads, Cancellation = c.Cancellation,
    };
}
