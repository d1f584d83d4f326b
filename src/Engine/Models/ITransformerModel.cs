namespace Workbench.Engine.Models;

/// <summary>
/// What the analyses need of any model: its numbers, and a way to run one block on a sequence state.
/// Embedding the input and reading out the result are model-specific (tokens, images, pooling).
/// </summary>
public interface ITransformerModel
{
    ModelConfig Config { get; }
    ModelCard Card { get; }

    /// <summary>Runs block <paramref name="layer"/> in place on <paramref name="state"/>, firing the block's hook sites.</summary>
    void RunBlock(int layer, SequenceState state, ForwardContext ctx);

    /// <summary>
    /// The attention that row <paramref name="queryRow"/> would pay to every row of <paramref name="state"/> in block
    /// <paramref name="layer"/> (that block's norm, query and key projections, positions; softmax; mean over heads).
    /// Used to rank tokens for dropping. Returns one probability per row.
    /// </summary>
    float[] QueryAttention(int layer, SequenceState state, int queryRow);
}

public static class TransformerExtensions
{
    /// <summary>Runs blocks [from, to) on the state, calling the context's token selector after each block.</summary>
    public static void RunBlocks(this ITransformerModel model, SequenceState state, ForwardContext ctx, int from = 0, int to = -1)
    {
        if (to < 0) to = model.Config.Layers;
        for (int l = from; l < to; l++)
        {
            ctx.Cancellation.ThrowIfCancellationRequested();
            model.RunBlock(l, state, ctx);
            if (ctx.Selector?.Invoke(l, state) is { } keep) state.Keep(keep);
        }
    }
}
