using System.Diagnostics;
using System.Numerics.Tensors;
using Workbench.Engine.Costs;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;
using Workbench.Engine.TokenDrop;

namespace Workbench.Engine.Stacking;

/// <summary>Which techniques a configuration stacks on the full fp model.</summary>
public sealed record StackConfig(bool Drop, bool Pyramid, bool Ternary)
{
    public static StackConfig Full { get; } = new(false, false, false);

    /// <summary>"full", or the techniques joined by '+', in the order drop, pyramid, ternary ("drop+ternary").</summary>
    public string Name => Techniques.Count == 0 ? "full" : string.Join("+", Techniques);
    public IReadOnlyList<string> Techniques => new[] { Drop ? "drop" : null, Pyramid ? "pyramid" : null, Ternary ? "ternary" : null }.OfType<string>().ToArray();

    /// <summary>Every subset of the techniques on offer, the full model first.</summary>
    public static IReadOnlyList<StackConfig> All(bool pyramid) =>
        Enumerable.Range(0, 8).Select(i => new StackConfig((i & 1) != 0, (i & 2) != 0, (i & 4) != 0))
            .Where(c => pyramid || !c.Pyramid).OrderBy(c => c.Techniques.Count).ToArray();
}

/// <summary>Next-token quality of one configuration on the scored positions, against the full fp model.</summary>
public sealed record StackQuality(double Perplexity, double Kl, double Top1, long Positions);

/// <summary>One measured prefill + greedy decode: tokens per second by wall clock and the KV cache bytes held at the end.</summary>
public sealed record StackSpeed(double PrefillTokensPerSecond, double DecodeTokensPerSecond, long KvCacheBytes, int[] KeysPerLayer);

/// <summary>
/// The models and settings a stack is measured with: the fp model, the ternary model (a view of its weights whose block
/// linears run on the packed kernels), the attention layers dropped and the PyramidDrop schedule. Every measurement runs
/// the engine's real forward with them in effect. A prompt's first token and its last <see cref="Protect"/> tokens are
/// protected (the last is the query that ranks the rest); the context between them is what PyramidDrop drops.
/// Quality protocol, the same for every configuration: prefill the prompt (tokens dropped at the boundaries), then score
/// the continuation teacher forced against that KV cache, as PyramidDrop / FastV decode. Speed runs use
/// <paramref name="threads"/> for the fp32 kernels (match the ternary kernels' team). Not thread-safe.
/// </summary>
public sealed class StackBench(LlamaModel fp, LlamaModel ternary, LowBitFormat format, ModuleSkips drop, PyramidSchedule? schedule,
    int protect = StackBench.DefaultProtect, int threads = 1)
{
    public const int DefaultProtect = 8;

    public LlamaModel Fp => fp;
    public LlamaModel Ternary => ternary;
    public LowBitFormat Format => format;
    public ModuleSkips Drop => drop;
    public PyramidSchedule? Schedule => schedule;
    public int Protect => protect;
    public int Threads => threads;

    private LlamaModel ModelOf(StackConfig c) => c.Ternary ? ternary : fp;
    private ModuleSkips SkipsOf(StackConfig c) => c.Drop ? drop : ModuleSkips.None;

    private TokenSelector? SelectorOf(StackConfig c, LlamaModel model, int prompt, int seed)
    {
        if (!c.Pyramid) return null;
        if (schedule is null) throw new InvalidOperationException("a pyramid configuration needs a schedule");
        return new TokenDropper(model, schedule, Roles(prompt), DropRanking.Attention, seed).Selector;
    }

    /// <summary>The prompt's roles: token 0 and the last <see cref="Protect"/> tokens protected, the last one queries.</summary>
    public TokenRoles Roles(int prompt) => TokenRoles.Prompt(prompt, 1, prompt - protect);

    /// <summary>
    /// Logits [continuation, vocab] of the positions a window scores: row i predicts window[prompt + i]. The prompt
    /// window[..prompt] is prefilled (with the configuration's drops), its last row predicts the first continuation
    /// token, then window[prompt..^1] runs against the KV cache the prefill left.
    /// </summary>
    public float[] ScoredLogits(StackConfig c, int[] window, int prompt, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(window);
        if (prompt < 1 || prompt >= window.Length) throw new ArgumentOutOfRangeException(nameof(prompt), prompt, $"a prompt of 1..{window.Length - 1} tokens");
        var model = ModelOf(c);
        int v = model.Config.Vocab, n = window.Length - prompt;
        var cache = KvCache.For(model.Config, window.Length);
        // Quality is not timed: the fp32 kernels may use every core (the packed ones run on their own team).
        var ctx = new ForwardContext { Cache = cache, Skips = SkipsOf(c), Selector = SelectorOf(c, model, prompt, seed), Threads = Environment.ProcessorCount };
        var state = model.Hidden(ModelInput.Of(window[..prompt]), ctx);
        state.Keep([state.Rows - 1]);
        var logits = new float[n * v];
        model.Readout(state, ctx).CopyTo(logits, 0);
        if (n > 1)
            model.Forward(ModelInput.Of(window[prompt..^1], prompt), new ForwardContext { Cache = cache, Skips = SkipsOf(c), Threads = Environment.ProcessorCount })
                .Output.CopyTo(logits, v);
        return logits;
    }

    /// <summary>Log-probabilities of the full fp model at the scored positions of each window (the reference for KL and top-1).</summary>
    public float[][] Reference(IReadOnlyList<int[]> windows, int prompt) =>
        windows.Select(w => DropEvaluator.LogSoftmaxRows(ScoredLogits(StackConfig.Full, w, prompt), fp.Config.Vocab)).ToArray();

    /// <summary>Perplexity of the continuations, mean KL(full fp || configuration) and top-1 agreement over the scored positions.</summary>
    public StackQuality Quality(StackConfig c, IReadOnlyList<int[]> windows, int prompt, float[][] reference, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(windows);
        ArgumentNullException.ThrowIfNull(reference);
        if (reference.Length != windows.Count) throw new ArgumentException($"{reference.Length} references for {windows.Count} windows", nameof(reference));
        int v = fp.Config.Vocab;
        double nll = 0, kl = 0, agree = 0;
        long positions = 0;
        for (int w = 0; w < windows.Count; w++)
        {
            cancel.ThrowIfCancellationRequested();
            var window = windows[w];
            var lq = c == StackConfig.Full ? reference[w] : DropEvaluator.LogSoftmaxRows(ScoredLogits(c, window, prompt, w), v);
            var lp = reference[w];
            for (int i = 0; i < window.Length - prompt; i++)
            {
                var p = lp.AsSpan(i * v, v);
                var q = lq.AsSpan(i * v, v);
                nll -= q[window[prompt + i]];
                double d = 0;
                for (int t = 0; t < v; t++) d += Math.Exp(p[t]) * ((double)p[t] - q[t]);
                kl += d;
                if (TensorPrimitives.IndexOfMax(p) == TensorPrimitives.IndexOfMax(q)) agree++;
                positions++;
            }
        }
        return new StackQuality(Math.Exp(nll / positions), kl / positions, agree / positions, positions);
    }

    /// <summary>
    /// One measured run: prefill <paramref name="prompt"/> (with the drops, ranking included in the time), then decode
    /// <paramref name="decode"/> tokens greedily one at a time against the KV cache the prefill left (so layers after a
    /// PyramidDrop boundary attend to the surviving context only), every linear on the configuration's kernels.
    /// </summary>
    public StackSpeed Run(StackConfig c, int[] prompt, int decode)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(decode);
        var model = ModelOf(c);
        var cache = KvCache.For(model.Config, prompt.Length + decode);
        var skips = SkipsOf(c);
        var ctx = new ForwardContext { Cache = cache, Skips = skips, Selector = SelectorOf(c, model, prompt.Length, 0), Threads = threads };
        var sw = Stopwatch.StartNew();
        var state = model.Hidden(ModelInput.Of(prompt), ctx);
        state.Keep([state.Rows - 1]);
        var logits = model.Readout(state, ctx);
        double prefill = prompt.Length / sw.Elapsed.TotalSeconds;
        var keys = Enumerable.Range(0, model.Config.Layers).Select(cache.Count).ToArray();
        var step = new ForwardContext { Cache = cache, Skips = skips, Threads = threads };
        sw.Restart();
        for (int i = 0; i < decode; i++)
        {
            int next = TensorPrimitives.IndexOfMax(logits);
            logits = model.Forward(ModelInput.Of([next], prompt.Length + i), step).Output;
        }
        double tps = decode / sw.Elapsed.TotalSeconds;
        long held = Enumerable.Range(0, model.Config.Layers).Sum(l => 2L * sizeof(float) * cache.KvDim * cache.Count(l));
        return new StackSpeed(prefill, tps, held, keys);
    }

    /// <summary>
    /// Runs of several configurations in alternation (one warm-up round, then <paramref name="runs"/> rounds), so JIT
    /// tiering and a shared machine's load drift over all of them alike; medians per configuration.
    /// </summary>
    public StackSpeed[] Speeds(IReadOnlyList<StackConfig> configs, int[] prompt, int decode, int runs, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(configs);
        var all = configs.Select(_ => new List<StackSpeed>()).ToArray();
        for (int r = -1; r < Math.Max(1, runs); r++)
            for (int i = 0; i < configs.Count; i++)
            {
                cancel.ThrowIfCancellationRequested();
                var s = Run(configs[i], prompt, decode);
                if (r >= 0) all[i].Add(s);
            }
        return all.Select(list => list[0] with
        {
            PrefillTokensPerSecond = Median(list.Select(s => s.PrefillTokensPerSecond)),
            DecodeTokensPerSecond = Median(list.Select(s => s.DecodeTokensPerSecond)),
        }).ToArray();
    }

    /// <summary>Tokens reaching each block during a prefill of <paramref name="prompt"/> tokens (the schedule's stages).</summary>
    public int[] TokensPerLayer(StackConfig c, int prompt)
    {
        int layers = fp.Config.Layers;
        if (!c.Pyramid || schedule is null) return Enumerable.Repeat(prompt, layers).ToArray();
        var roles = Roles(prompt);
        int droppable = roles.Droppable(prompt), kept = prompt - droppable;
        var stages = schedule.DroppableCounts(droppable);
        return Enumerable.Range(0, layers).Select(l => stages[schedule.Boundaries.Count(b => b <= l)] + kept).ToArray();
    }

    /// <summary>The cost model's decode token for a configuration (keys per layer from the schedule, linears in their format).</summary>
    public DecodeTokenCost PredictDecode(StackConfig c, int prompt, int decode) =>
        DecodeCosts.Predict(fp.Config, SkipsOf(c), TokensPerLayer(c, prompt), decode, c.Ternary ? format : LowBitFormat.F32);

    /// <summary>Predicted prefill FLOPs: every block's MACs with its token count and drops, the ranking, the last row's head.</summary>
    public double PredictPrefillFlops(StackConfig c, int prompt)
    {
        var shape = TransformerShape.From(fp.Config);
        var perLayer = TokensPerLayer(c, prompt);
        long ranking = 0;
        if (c.Pyramid && schedule is not null)
        {
            var roles = Roles(prompt);
            int droppable = roles.Droppable(prompt);
            ranking = schedule.Cost(shape, droppable, prompt - droppable).RankingMacs;
        }
        return Flops.ForTokens(shape, perLayer, SkipsOf(c)).TotalFlops + 2.0 * ranking + 2.0 * fp.Config.Dim * fp.Config.Vocab;
    }

    private static double Median(IEnumerable<double> x)
    {
        var s = x.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
