using Workbench.Engine.Tensors;

namespace Workbench.Engine.Models;

/// <summary>
/// LLaVA (LlavaForConditionalGeneration): a CLIP vision tower (<see cref="VitModel"/>) run up to its feature layer, CLS
/// dropped under the "default" strategy, a projector linear_2(gelu(linear_1(x))), and the Llama text model
/// (<see cref="LlamaModel"/>), whose embeddings at the image-token positions are replaced by the projected features.
/// To the analyses it is the text model: its blocks, hook sites, layer indices, KV cache and readout are the language
/// model's, and an input with an image (<see cref="MultimodalInput"/>) goes in where token ids would. Token dropping,
/// hooks and module skips therefore act on the language model with the image tokens in the sequence; the tower runs
/// with its own context (no hooks, skips or selector of the caller), and its result is fired at
/// <see cref="HookNames.ImageFeatures"/>.
/// </summary>
public sealed class LlavaModel : ITransformerModel
{
    public sealed record Projector(float[] W1, float[]? B1, float[] W2, float[]? B2);

    public LlamaModel Text { get; }
    public VitModel Tower { get; }
    public Projector Projection { get; }
    /// <summary>config.json's image_token_index: the id whose positions take the image features.</summary>
    public int ImageTokenId { get; }
    /// <summary>Vision blocks run for the features (vision_feature_layer as an index into the tower's hidden states).</summary>
    public int FeatureBlocks { get; }
    /// <summary>The "default" strategy drops the tower's CLS row; "full" keeps it.</summary>
    public bool DropsCls { get; }
    /// <summary>Image tokens one image fills (the features' rows).</summary>
    public int ImageTokens => Tower.PatchGrid * Tower.PatchGrid + (DropsCls ? 0 : 1);

    public ModelConfig Config => Text.Config;
    public ModelCard Card { get; }

    public LlavaModel(LlamaModel text, VitModel vision, Projector projector, int imageTokenId, int featureBlocks, bool dropsCls, ModelCard card)
    {
        Text = text ?? throw new ArgumentNullException(nameof(text));
        Tower = vision ?? throw new ArgumentNullException(nameof(vision));
        Projection = projector ?? throw new ArgumentNullException(nameof(projector));
        ArgumentOutOfRangeException.ThrowIfNegative(featureBlocks);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(featureBlocks, vision.Config.Layers);
        if ((uint)imageTokenId >= (uint)text.Config.Vocab)
            throw new ArgumentOutOfRangeException(nameof(imageTokenId), imageTokenId, $"outside the text model's vocabulary of {text.Config.Vocab}");
        ImageTokenId = imageTokenId;
        FeatureBlocks = featureBlocks;
        DropsCls = dropsCls;
        Card = card;
    }

    /// <summary>
    /// The projected image features [ImageTokens, text dim]: the tower's state after <see cref="FeatureBlocks"/> blocks
    /// (CLS dropped under "default"), then linear_2(gelu_erf(linear_1(x))). Linears run through the context's override.
    /// </summary>
    public float[] ImageFeatures(ModelInput image, ForwardContext? ctx = null)
    {
        ctx ??= ForwardContext.Default;
        var px = image switch
        {
            PixelInput p => p,
            ImageInput i => Tower.Normalize(i.PixelsHwc),
            _ => throw new ArgumentException($"an image is an ImageInput or PixelInput, not {image.GetType().Name}", nameof(image)),
        };
        var towerCtx = new ForwardContext { Linear = ctx.Linear, Threads = ctx.Threads, Cancellation = ctx.Cancellation };
        var s = Tower.EmbedPixels(px, towerCtx);
        Tower.RunBlocks(s, towerCtx, 0, FeatureBlocks);
        if (DropsCls) s.Keep(Enumerable.Range(1, s.Rows - 1).ToArray());
        int n = s.Rows, vd = Tower.Config.Dim, td = Text.Config.Dim;
        var h = new float[n * td];
        ctx.RunLinear(s.Active, n, vd, Projection.W1, td, h, Projection.B1, gelu: true);
        var f = new float[n * td];
        ctx.RunLinear(h, n, td, Projection.W2, td, f, Projection.B2);
        return f;
    }

    public SequenceState Embed(ModelInput input, ForwardContext ctx)
    {
        switch (input)
        {
            case TokenInput:
                // Without an image every id is embedded as itself (as transformers does when no pixel_values are given).
                return Text.Embed(input, ctx);
            case MultimodalInput m:
            {
                var slots = Enumerable.Range(0, m.Tokens.Length).Where(i => m.Tokens[i] == ImageTokenId).ToArray();
                if (slots.Length != ImageTokens)
                    throw new ArgumentException($"the tokens hold {slots.Length} image tokens (id {ImageTokenId}); one image fills {ImageTokens}", nameof(input));
                var features = ImageFeatures(m.Image, ctx);
                int d = Text.Config.Dim;
                ctx.Fire(HookNames.ImageFeatures, -1, features, slots.Length, d, slots);
                var s = Text.Embed(m.Tokens, m.StartPos);
                for (int k = 0; k < slots.Length; k++) features.AsSpan(k * d, d).CopyTo(s.Row(slots[k]));
                ctx.Fire(HookNames.Embed, -1, s.Active, s.Rows, s.Dim, s.TokenIndex);
                return s;
            }
            default:
                throw new ArgumentException($"{Card.Name} takes token ids, with or without an image (MultimodalInput), not {input.GetType().Name}", nameof(input));
        }
    }

    public void RunBlock(int layer, SequenceState state, ForwardContext ctx) => Text.RunBlock(layer, state, ctx);

    public float[] Readout(SequenceState state, ForwardContext ctx) => Text.Readout(state, ctx);

    /// <summary>The language model's block linears (layer indices are the text model's).</summary>
    public IReadOnlyList<NamedLinear> BlockLinears => Text.BlockLinears;

    public IEnumerable<float[]> ParameterArrays => Text.ParameterArrays.Concat(Tower.ParameterArrays)
        .Concat(new[] { Projection.W1, Projection.B1, Projection.W2, Projection.B2 }.OfType<float[]>());
}
