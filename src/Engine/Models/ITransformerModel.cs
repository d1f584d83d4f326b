namespace Workbench.Engine.Models;

/// <summary>What a model is fed: token ids (decoders, encoders), an image (vision transformers), or both (LLaVA).</summary>
public abstract record ModelInput
{
    public static ModelInput Of(int[] tokens, int startPos = 0) => new TokenInput(tokens, startPos);
    public static ModelInput Of(byte[] imageHwc) => new ImageInput(imageHwc);
    public static ModelInput Of(int[] tokens, ModelInput image, int startPos = 0) => new MultimodalInput(tokens, image, startPos);
}

/// <summary>
/// Normalised pixels, channels first ([3, Height, Width] row-major): what a Hugging Face image processor hands the model
/// as pixel_values (after resizing, rescaling and normalising).
/// </summary>
public sealed record PixelInput(float[] Chw, int Height, int Width) : ModelInput;

/// <summary>
/// Token ids with one image (<see cref="ImageInput"/> or <see cref="PixelInput"/>): the image's features replace the
/// embeddings of the image-token positions, in order (LLaVA).
/// </summary>
public sealed record MultimodalInput(int[] Tokens, ModelInput Image, int StartPos = 0) : ModelInput;

/// <summary>Token ids at positions startPos, startPos + 1, ... (no BOS is added).</summary>
public sealed record TokenInput(int[] Tokens, int StartPos = 0) : ModelInput;

/// <summary>An image as uint8 HWC pixels of the size the model's config asks for.</summary>
public sealed record ImageInput(byte[] PixelsHwc) : ModelInput;

/// <summary>
/// A linear layer of a block, Y = X W^T (+ bias): W row-major [Rows = out, Cols = in]. The weight array is the layer's
/// identity (ILinearOverride is keyed by it); <see cref="Name"/> is how reports name it.
/// </summary>
public sealed record NamedLinear(string Name, int Layer, float[] Weight, int Rows, int Cols);

/// <summary>
/// What every architecture offers the analyses, the ViT included: its numbers, the embedding of an input, the blocks
/// (each firing the documented hook sites of <see cref="HookNames"/>), the named linear layers of the blocks, and the
/// readout. No analysis needs to know which concrete model it holds.
/// </summary>
public interface ITransformerModel
{
    ModelConfig Config { get; }
    ModelCard Card { get; }

    /// <summary>The input's rows entering block 0 (fires <see cref="HookNames.Embed"/>). Throws ArgumentException for an input kind the model does not take.</summary>
    SequenceState Embed(ModelInput input, ForwardContext ctx);

    /// <summary>Runs block <paramref name="layer"/> in place on <paramref name="state"/>, firing the block's hook sites.</summary>
    void RunBlock(int layer, SequenceState state, ForwardContext ctx);

    /// <summary>
    /// The checkpoint's head on the final state: next-token logits of every row ([rows, vocab]) for decoders, the
    /// mean-pooled sentence embedding ([dim]) for encoders, class logits ([classes]) for image classifiers.
    /// </summary>
    float[] Readout(SequenceState state, ForwardContext ctx);

    /// <summary>Every linear layer of every block, in layer order (what low-bit quantization replaces).</summary>
    IReadOnlyList<NamedLinear> BlockLinears { get; }

    /// <summary>Every distinct parameter array (a tied weight once), for byte counts.</summary>
    IEnumerable<float[]> ParameterArrays { get; }
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

    /// <summary>Bytes (fp32, or as stored for weights kept as stored) of every distinct parameter array (a tied weight once), or of those <paramref name="include"/> accepts.</summary>
    public static long ParameterBytes(this ITransformerModel model, Func<float[], bool>? include = null) =>
        model.ParameterArrays.Distinct(ReferenceEqualityComparer.Instance).Cast<float[]>()
            .Where(a => include?.Invoke(a) ?? true).Sum(StoredLinears.Bytes);

    /// <summary>Bytes every distinct parameter array would take as fp32 (what <c>--weights fp32</c> holds resident), stored ones included at 4 bytes a value.</summary>
    public static long Fp32ParameterBytes(this ITransformerModel model) =>
        model.ParameterArrays.Distinct(ReferenceEqualityComparer.Instance).Cast<float[]>()
            .Sum(a => StoredLinears.Linear(a) is { } m ? 4L * m.Rows * m.Cols : 4L * a.Length);

    /// <summary>Embeds the input and runs every block (no readout): the final state, with the context's hooks fired.</summary>
    public static SequenceState Hidden(this ITransformerModel model, ModelInput input, ForwardContext ctx)
    {
        var s = model.Embed(input, ctx);
        model.RunBlocks(s, ctx);
        return s;
    }

    /// <summary>The whole forward pass: embed, blocks, readout.</summary>
    public static (float[] Output, SequenceState State) Forward(this ITransformerModel model, ModelInput input, ForwardContext ctx)
    {
        var s = model.Hidden(input, ctx);
        return (model.Readout(s, ctx), s);
    }
}
