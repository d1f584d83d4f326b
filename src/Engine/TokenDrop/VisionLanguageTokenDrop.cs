using System.Numerics.Tensors;
using Workbench.Engine.Costs;
using Workbench.Engine.Models;

namespace Workbench.Engine.TokenDrop;

/// <summary>
/// One prompt with an image through a vision-language model, in full and with image tokens dropped inside the language
/// model: the next-token distribution after the prompt compared (KL, top-1), the greedy continuations from the full
/// and from the pruned KV cache, the stages (which image tokens survived), and the analytic FLOPs of the language
/// model's prefill (the vision tower and projector run in full either way and are not counted).
/// </summary>
public sealed record VlmDropEvaluation(string Model, PyramidSchedule Schedule, DropRanking Ranking, string Image, string Preprocessing,
    int[] Prompt, int ImageTokens, double Kl, int Top1Full, int Top1Dropped, int[] GeneratedFull, int[] GeneratedDropped,
    double FlopsRatio, CostReport Cost, IReadOnlyList<DropStage> Stages)
{
    public int PromptTokens => Prompt.Length;
    public bool Top1Agrees => Top1Full == Top1Dropped;
    /// <summary>Leading greedy tokens the dropped run shares with the full run.</summary>
    public int GeneratedAgreeing => GeneratedFull.Zip(GeneratedDropped).TakeWhile(p => p.First == p.Second).Count();
    /// <summary>Image tokens alive in each stage: all of them, then the survivors of each boundary.</summary>
    public int[] ImageTokensPerStage => [ImageTokens, .. Stages.Select(s => s.Kept.Length)];
}

/// <summary>
/// PyramidDrop and FastV on LLaVA, what PyramidDrop was made for: only image tokens are droppable; every text token
/// (before and after the image) is protected, and the last token of the prompt (the end of the instruction) is the
/// query whose attention ranks the image tokens at each stage boundary (<see cref="TokenDropper"/>).
/// </summary>
public static class VisionLanguageTokenDrop
{
    /// <summary>Image-token positions droppable, everything else protected, the last token the query.</summary>
    public static TokenRoles Roles(LlavaModel model, IReadOnlyList<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        if (!tokens.Contains(model.ImageTokenId))
            throw new ArgumentException($"the prompt holds no image token (id {model.ImageTokenId}): there is nothing to drop", nameof(tokens));
        if (tokens[^1] == model.ImageTokenId)
            throw new ArgumentException("the prompt ends with an image token: the last token is the query and must be text", nameof(tokens));
        return new TokenRoles(tokens.Count - 1, Enumerable.Range(0, tokens.Count).Where(i => tokens[i] != model.ImageTokenId));
    }

    /// <summary>
    /// Runs the prompt (tokens with <see cref="LlavaModel.ImageTokens"/> image tokens, and the image) in full and under
    /// <paramref name="schedule"/>, then decodes <paramref name="generate"/> greedy tokens from each run's KV cache.
    /// </summary>
    public static VlmDropEvaluation Evaluate(LlavaModel model, int[] tokens, ModelInput image, PyramidSchedule schedule,
        DropRanking ranking = DropRanking.Attention, int seed = 0, int generate = 8, string imageName = "image", string preprocessing = "",
        CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentOutOfRangeException.ThrowIfNegative(generate);
        schedule.Validate(model.Config.Layers);
        var roles = Roles(model, tokens);
        if (tokens.Length + generate > model.Config.MaxSeq)
            throw new ArgumentException($"{tokens.Length} prompt tokens + {generate} generated exceed the model's {model.Config.MaxSeq} positions", nameof(tokens));
        var input = ModelInput.Of(tokens, image);
        var (pFull, genFull) = Run(model, input, tokens.Length, generate, null, cancellation);
        var dropper = new TokenDropper(model, schedule, roles, ranking, seed);
        var (pDrop, genDrop) = Run(model, input, tokens.Length, generate, dropper.Selector, cancellation);

        double kl = 0;
        for (int v = 0; v < pFull.Length; v++)
            if (pFull[v] > 0) kl += pFull[v] * (Math.Log(pFull[v]) - Math.Log(Math.Max(pDrop[v], 1e-30)));
        var shape = TransformerShape.From(model.Config);
        int droppable = roles.Droppable(tokens.Length);
        var cost = schedule.Cost(shape, droppable, tokens.Length - droppable);
        return new VlmDropEvaluation(model.Card.Name, schedule, ranking, imageName, preprocessing, tokens, droppable, Math.Max(kl, 0),
            LanguageTokenDrop.ArgMax(pFull), LanguageTokenDrop.ArgMax(pDrop), genFull, genDrop, cost.RatioTo(Flops.Full(shape, tokens.Length)), cost, dropper.Stages.ToList());
    }

    // Prefill (with the selector, if any) into a KV cache, then greedy decoding from that cache.
    private static (double[] Next, int[] Generated) Run(LlavaModel model, ModelInput input, int promptLength, int generate, TokenSelector? selector,
        CancellationToken cancellation)
    {
        var ctx = new ForwardContext { Cache = KvCache.For(model.Config, promptLength + generate), Selector = selector, Cancellation = cancellation };
        var state = model.Hidden(input, ctx);
        state.Keep([state.Rows - 1]);
        var logits = model.Readout(state, ctx);
        var next = LanguageTokenDrop.Softmax(logits);
        var generated = new int[generate];
        var decode = new ForwardContext { Cache = ctx.Cache, Cancellation = cancellation };
        for (int k = 0; k < generate; k++)
        {
            generated[k] = TensorPrimitives.IndexOfMax(logits);
            if (k + 1 < generate) logits = model.Forward(ModelInput.Of([generated[k]], promptLength + k), decode).Output;
        }
        return (next, generated);
    }
}
