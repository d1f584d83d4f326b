using Workbench.Engine.Costs;
using Workbench.Engine.Models;

namespace Workbench.Engine.TokenDrop;

/// <summary>A long prompt: droppable context, a protected instruction (its last token is the query), and the true continuation.</summary>
public sealed record LmPrompt(string Context, string Instruction, string Continuation);

/// <summary>One prompt's comparison of the dropped prefill against the full one.</summary>
public sealed record LmPromptResult(int Prompt, int ContextTokens, int ProtectedTokens, int ContinuationTokens,
    double Kl, bool Top1Agrees, double NllFull, double NllDropped, double FlopsRatio);

/// <summary>Next-token quality of a decoder under a drop schedule, over several prompts.</summary>
public sealed record LmDropEvaluation(string Model, PyramidSchedule Schedule, DropRanking Ranking,
    double Kl, double Top1Agreement, double PerplexityFull, double PerplexityDropped, double FlopsRatio,
    IReadOnlyList<LmPromptResult> PerPrompt);

/// <summary>
/// Prompts prepared for one decoder and scored by its full model: the token ids (BOS + context + instruction), the
/// context length, the continuation, the full model's next-token distribution after the prompt and the continuation's
/// negative log-likelihood. Made by <see cref="LanguageTokenDrop.Reference"/>.
/// </summary>
public sealed record LmReference(Decoder Decoder, IReadOnlyList<LmReference.Scored> Prompts)
{
    public sealed record Scored(int[] Prompt, int ContextLength, int[] Continuation, double[] NextFull, double NllFull);
}

/// <summary>Embedding similarity of an encoder under a drop schedule (CLS queries; CLS and SEP protected; mean pooling over survivors).</summary>
public sealed record EncoderDropEvaluation(string Model, PyramidSchedule Schedule, DropRanking Ranking, double MeanCosine, double MinCosine, double FlopsRatio, double[] Cosines);

/// <summary>
/// Token dropping on language models. Decoders: BOS and the instruction are protected, the last instruction token
/// is the query, the context is droppable; the KV cache of each layer keeps only that layer's rows, so the
/// continuation is scored against the pruned cache (as FastV/PyramidDrop decode).
/// </summary>
public static class LanguageTokenDrop
{
    /// <summary>
    /// Prompts from TinyStories paragraphs (or those of <paramref name="path"/>: a text file of blank-line-separated
    /// paragraphs, or a bundled corpus name such as <c>persuasion</c>): whole paragraphs as context (up to about
    /// <paramref name="contextChars"/> characters), then the first sentence of the next paragraph as the instruction and
    /// the rest of it as the continuation.
    /// </summary>
    public static IReadOnlyList<LmPrompt> TinyStoriesPrompts(int count, int contextChars = 900, string? path = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(contextChars);
        var paragraphs = Text.Corpus.Paragraphs(path ?? Bundled.TinyStories);
        var prompts = new List<LmPrompt>();
        int i = 0;
        while (prompts.Count < count && i < paragraphs.Count)
        {
            var ctx = new List<string>();
            while (i < paragraphs.Count && ctx.Sum(p => p.Length + 1) + paragraphs[i].Length <= contextChars) ctx.Add(paragraphs[i++]);
            if (ctx.Count == 0) { i++; continue; }
            // The next paragraph with at least two sentences gives instruction + continuation.
            while (i < paragraphs.Count)
            {
                var p = paragraphs[i++];
                int dot = p.IndexOfAny(['.', '!', '?']);
                if (dot > 0 && dot < p.Length - 20)
                {
                    prompts.Add(new LmPrompt(string.Join("\n", ctx), p[..(dot + 1)], p[(dot + 1)..]));
                    break;
                }
            }
        }
        return prompts;
    }

    public static LmDropEvaluation EvaluateDecoder(Decoder decoder, IReadOnlyList<LmPrompt> prompts, PyramidSchedule schedule,
        DropRanking ranking = DropRanking.Attention, int seed = 0, int maxContinuation = 32,
        IProgress<int>? progress = null, CancellationToken cancellation = default) =>
        EvaluateDecoder(Reference(decoder, prompts, maxContinuation, cancellation), schedule, ranking, seed, progress, cancellation);

    /// <summary>
    /// Tokenizes the prompts for <paramref name="decoder"/> (context cut from the left to fit, continuation cut to
    /// <paramref name="maxContinuation"/> tokens) and scores them with the full model once, so many schedules can be
    /// evaluated against one reference (as <see cref="VitTokenDrop.FullPredictions"/> does for the ViT).
    /// </summary>
    public static LmReference Reference(Decoder decoder, IReadOnlyList<LmPrompt> prompts, int maxContinuation = 32, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        ArgumentNullException.ThrowIfNull(prompts);
        if (prompts.Count == 0) throw new ArgumentException("no prompts", nameof(prompts));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxContinuation);
        var model = decoder.Model;
        var tok = decoder.Tokenizer;
        var scored = new List<LmReference.Scored>();
        for (int pi = 0; pi < prompts.Count; pi++)
        {
            cancellation.ThrowIfCancellationRequested();
            var pr = prompts[pi];
            int[] context = tok.Encode(pr.Context, bos: true);
            int[] instruction = tok.Encode("\n" + pr.Instruction, bos: false);
            int[] continuation = tok.Encode(pr.Continuation, bos: false);
            continuation = continuation[..Math.Min(continuation.Length, maxContinuation)];
            // Too long for the model: cut the context from the left (BOS stays).
            int over = context.Length + instruction.Length + continuation.Length - model.Config.MaxSeq;
            if (over > 0) context = [context[0], .. context[(1 + over)..]];
            if (context.Length < 3 || continuation.Length == 0)
                throw new ArgumentException($"prompt {pi} leaves no room for context in {decoder.Name}'s {model.Config.MaxSeq} positions", nameof(prompts));
            int[] prompt = [.. context, .. instruction];
            var (next, nll) = Score(model, prompt, continuation, null);
            scored.Add(new LmReference.Scored(prompt, context.Length, continuation, next, nll));
        }
        return new LmReference(decoder, scored);
    }

    /// <summary>One schedule against a <see cref="Reference"/>: only the dropped prefills run.</summary>
    public static LmDropEvaluation EvaluateDecoder(LmReference reference, PyramidSchedule schedule,
        DropRanking ranking = DropRanking.Attention, int seed = 0, IProgress<int>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(schedule);
        var decoder = reference.Decoder;
        var model = decoder.Model;
        schedule.Validate(model.Config.Layers);
        var shape = TransformerShape.From(model.Config);
        var results = new List<LmPromptResult>();
        for (int pi = 0; pi < reference.Prompts.Count; pi++)
        {
            cancellation.ThrowIfCancellationRequested();
            var (prompt, contextLength, continuation, pFull, nllFull) = reference.Prompts[pi];
            var roles = TokenRoles.Prompt(prompt.Length, 1, contextLength); // BOS and the instruction are protected
            var dropper = new TokenDropper(model, schedule, roles, ranking, DropSeeds.For(seed, pi));
            var (pDrop, nllDrop) = Score(model, prompt, continuation, dropper.Selector);

            double kl = 0;
            for (int v = 0; v < pFull.Length; v++)
                if (pFull[v] > 0) kl += pFull[v] * (Math.Log(pFull[v]) - Math.Log(Math.Max(pDrop[v], 1e-30)));
            int droppable = roles.Droppable(prompt.Length);
            double ratio = schedule.Cost(shape, droppable, prompt.Length - droppable).RatioTo(Flops.Full(shape, prompt.Length));
            results.Add(new LmPromptResult(pi, droppable, prompt.Length - droppable, continuation.Length, kl,
                ArgMax(pFull) == ArgMax(pDrop), nllFull, nllDrop, ratio));
            progress?.Report(pi + 1);
        }
        int tokens = results.Sum(r => r.ContinuationTokens);
        return new LmDropEvaluation(decoder.Name, schedule, ranking,
            results.Average(r => r.Kl), results.Count(r => r.Top1Agrees) / (double)results.Count,
            Math.Exp(results.Sum(r => r.NllFull) / tokens), Math.Exp(results.Sum(r => r.NllDropped) / tokens),
            results.Average(r => r.FlopsRatio), results);
    }

    // Prefill the prompt (with the selector, if any) into a KV cache, then score the continuation against that cache.
    private static (double[] Next, double Nll) Score(ITransformerModel model, int[] prompt, int[] continuation, TokenSelector? selector)
    {
        var cache = KvCache.For(model.Config, prompt.Length + continuation.Length);
        var ctx = new ForwardContext { Cache = cache, Selector = selector };
        var state = model.Hidden(ModelInput.Of(prompt), ctx);
        state.Keep([state.Rows - 1]); // only the last row's next token is scored
        var next = Softmax(model.Readout(state, ctx));
        double nll = -Math.Log(Math.Max(next[continuation[0]], 1e-30));
        if (continuation.Length > 1)
        {
            var rows = model.Forward(ModelInput.Of(continuation[..^1], prompt.Length), new ForwardContext { Cache = cache }).Output;
            int v = model.Config.Vocab;
            for (int i = 0; i + 1 < continuation.Length; i++)
                nll -= Math.Log(Math.Max(Softmax(rows.AsSpan(i * v, v))[continuation[i + 1]], 1e-30));
        }
        return (next, nll);
    }

    public static EncoderDropEvaluation EvaluateEncoder(Encoder encoder, IReadOnlyList<string> texts, PyramidSchedule schedule,
        DropRanking ranking = DropRanking.Attention, int seed = 0, IProgress<int>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        if (texts.Count == 0) throw new ArgumentException("no texts", nameof(texts));
        var model = encoder.Model;
        schedule.Validate(model.Config.Layers);
        var shape = TransformerShape.From(model.Config);
        var cos = new double[texts.Count];
        double ratio = 0;
        for (int i = 0; i < texts.Count; i++)
        {
            cancellation.ThrowIfCancellationRequested();
            var ids = encoder.Tokenizer.Encode(texts[i]);
            var roles = new TokenRoles(0, [0, ids.Length - 1]); // CLS queries; CLS and SEP stay
            var full = model.Forward(ModelInput.Of(ids), new ForwardContext()).Output; // the mean-pooled embedding
            var dropper = new TokenDropper(model, schedule, roles, ranking, DropSeeds.For(seed, i));
            var dropped = model.Forward(ModelInput.Of(ids), new ForwardContext { Selector = dropper.Selector }).Output;
            cos[i] = System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(full, dropped);
            int droppable = roles.Droppable(ids.Length);
            ratio += schedule.Cost(shape, droppable, ids.Length - droppable).RatioTo(Flops.Full(shape, ids.Length));
            progress?.Report(i + 1);
        }
        return new EncoderDropEvaluation(encoder.Name, schedule, ranking, cos.Average(), cos.Min(), ratio / texts.Count, cos);
    }

    internal static double[] Softmax(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (var l in logits) max = Math.Max(max, l);
        var p = new double[logits.Length];
        double sum = 0;
        for (int i = 0; i < p.Length; i++) sum += p[i] = Math.Exp(logits[i] - max);
        for (int i = 0; i < p.Length; i++) p[i] /= sum;
        return p;
    }

    internal static int ArgMax(double[] p)
    {
        int best = 0;
        for (int i = 1; i < p.Length; i++) if (p[i] > p[best]) best = i;
        return best;
    }
}
