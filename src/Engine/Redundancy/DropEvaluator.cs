using System.Diagnostics;
using System.Numerics.Tensors;
using Workbench.Engine.Models;
using Workbench.Engine.Text;

namespace Workbench.Engine.Redundancy;

/// <summary>Sizes of the evaluation: held-out sequences (decoders) or sentences (encoders), and the speed run.</summary>
public sealed record EvaluationOptions(int Samples = 4, int SeqLen = 128, int Sentences = 16,
    int SpeedPrompt = 16, int SpeedDecode = 48, int SpeedRuns = 3, int SpeedSentences = 4)
{
    public static EvaluationOptions Default { get; } = new();
}

/// <summary>
/// Quality of a pruned model against the full one. Decoders: perplexity on held-out text (pruned and full), and over
/// every position of the evaluation sequences the mean KL(full || pruned) of the next-token distributions and how
/// often their top-1 tokens agree. Encoders: mean cosine between pruned and full sentence embeddings, and the Spearman
/// correlation of the pruned model's pairwise sentence similarities with the full model's.
/// </summary>
public sealed record QualityReport(double? Kl, double? Top1Agreement, double? Perplexity, double? PerplexityFull,
    double? EmbeddingCosine, double? Spearman, long Positions);

/// <summary>Measured speed (median of a few runs) and the KV cache a decode run allocated (0 for encoders).</summary>
public sealed record SpeedReport(double PrefillTokensPerSecond, double? DecodeTokensPerSecond, long KvCacheBytes, int PromptTokens, int DecodeTokens);

/// <summary>One evaluated drop: what was dropped, quality, measured speed and memory beside the full model, and the predicted costs.</summary>
public sealed record DropReport(IReadOnlyList<ModuleRef> Dropped, QualityReport Quality, SpeedReport? Speed, SpeedReport? SpeedFull,
    DropCost Predicted, DropCost PredictedFull)
{
    public ModuleSkips Skips => Modules.ToSkips(Dropped);
    /// <summary>Measured decode (or, for encoders, encode) speed-up over the full model.</summary>
    public double? MeasuredSpeedup => Speed is null || SpeedFull is null ? null
        : Speed.DecodeTokensPerSecond is { } d && SpeedFull.DecodeTokensPerSecond is { } f ? d / f
        : Speed.PrefillTokensPerSecond / SpeedFull.PrefillTokensPerSecond;
    /// <summary>Speed-up the FLOPs predict (decode FLOPs per token for decoders, prefill FLOPs for encoders).</summary>
    public double PredictedSpeedup => Predicted.DecodeFlopsPerToken > 0
        ? PredictedFull.DecodeFlopsPerToken / Predicted.DecodeFlopsPerToken
        : PredictedFull.PrefillFlops / Predicted.PrefillFlops;
}

/// <summary>
/// Evaluates drops of one model on held-out text. The full model's outputs are computed once, so a sweep over
/// k = 0..N only runs the pruned models.
/// </summary>
public sealed class DropEvaluator
{
    public LoadedModel Model { get; }
    /// <summary>What the drops are judged by: next-token distributions, or sentence embeddings.</summary>
    public TextTask Task { get; }
    public EvaluationOptions Options { get; }
    /// <summary>Decoders: the held-out token sequences. Encoders: the held-out sentences, tokenized.</summary>
    public TokenSamples Evaluation { get; }

    private readonly float[][] _fullLogProbs = [];   // decoders: per sequence, [L, vocab] log-softmax
    private readonly double _fullPerplexity;
    private readonly float[][] _fullEmbeddings = []; // encoders
    private readonly double[] _fullSimilarities = [];

    public DropEvaluator(LoadedModel model, CorpusSplit split, EvaluationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(split);
        Model = model;
        Task = TextTask.Of(model, nameof(model));
        Options = options ?? EvaluationOptions.Default;
        int seq = Math.Min(Options.SeqLen, model.Config.MaxSeq);
        if (Task.NextToken)
        {
            Evaluation = split.Evaluation(Task.Tokenize, Options.Samples, seq, pack: true);
            _fullLogProbs = Evaluation.Sequences.Select(s => LogSoftmaxRows(Readout(s, ModuleSkips.None), model.Config.Vocab)).ToArray();
            _fullPerplexity = Perplexity(_fullLogProbs, Evaluation.Sequences, model.Config.Vocab);
        }
        else
        {
            if (Options.Sentences < 3) throw new ArgumentOutOfRangeException(nameof(options), Options.Sentences, "at least 3 sentences are needed for a rank correlation of similarities");
            Evaluation = split.Evaluation(Task.Tokenize, Options.Sentences, seq, pack: false);
            _fullEmbeddings = Embed(ModuleSkips.None);
            _fullSimilarities = PairwiseCosines(_fullEmbeddings);
        }
    }

    public bool IsDecoder => Task.NextToken;

    public QualityReport Quality(ModuleSkips skips)
    {
        ArgumentNullException.ThrowIfNull(skips);
        Modules.CheckSkips(Model.Config, skips, nameof(skips));
        if (Task.NextToken)
        {
            int v = Model.Config.Vocab;
            double kl = 0, agree = 0;
            long positions = 0;
            var pruned = new float[Evaluation.Sequences.Count][];
            for (int s = 0; s < Evaluation.Sequences.Count; s++)
            {
                var seq = Evaluation.Sequences[s];
                pruned[s] = LogSoftmaxRows(Readout(seq, skips), v);
                for (int i = 0; i < seq.Length; i++)
                {
                    var lp = _fullLogProbs[s].AsSpan(i * v, v);
                    var lq = pruned[s].AsSpan(i * v, v);
                    double k = 0;
                    for (int t = 0; t < v; t++) k += Math.Exp(lp[t]) * (lp[t] - lq[t]);
                    kl += k;
                    if (TensorPrimitives.IndexOfMax(lp) == TensorPrimitives.IndexOfMax(lq)) agree++;
                    positions++;
                }
            }
            return new QualityReport(kl / positions, agree / positions, Perplexity(pruned, Evaluation.Sequences, v), _fullPerplexity, null, null, positions);
        }
        var emb = Embed(skips);
        double cos = 0;
        for (int i = 0; i < emb.Length; i++) cos += TensorPrimitives.CosineSimilarity(emb[i], _fullEmbeddings[i]);
        double rho = Spearman(_fullSimilarities, PairwiseCosines(emb));
        return new QualityReport(null, null, null, null, cos / emb.Length, rho, emb.Length);
    }

    /// <summary>
    /// Decoders: prefill the first SpeedPrompt tokens of the first evaluation sequence, then decode SpeedDecode tokens
    /// greedily one at a time with a KV cache of capacity prompt + decode; medians over SpeedRuns runs (after one warm-up).
    /// Encoders: tokens per second of embedding the first SpeedSentences evaluation sentences.
    /// </summary>
    public SpeedReport Speed(ModuleSkips skips) => Speeds([skips])[0];

    /// <summary>
    /// Speed of several configurations measured in alternation (run 1 of each, then run 2 of each, ...), so JIT tiering
    /// and the load of a shared machine drift over all of them alike; a warm-up round comes first.
    /// </summary>
    public SpeedReport[] Speeds(IReadOnlyList<ModuleSkips> configurations)
    {
        ArgumentNullException.ThrowIfNull(configurations);
        foreach (var s in configurations) Modules.CheckSkips(Model.Config, s, nameof(configurations));
        int runs = Math.Max(1, Options.SpeedRuns), c = configurations.Count;
        var prefill = Enumerable.Range(0, c).Select(_ => new List<double>()).ToArray();
        var decode = Enumerable.Range(0, c).Select(_ => new List<double>()).ToArray();
        var kv = new long[c];
        if (Task.NextToken)
        {
            var seq = Evaluation.Sequences[0];
            var (p, n) = CostShape();
            for (int r = -1; r < runs; r++)
                for (int i = 0; i < c; i++)
                {
                    var (pf, dc, bytes) = DecodeRun(Model.Model, seq.AsSpan(0, p), n, configurations[i]);
                    if (r < 0) continue; // warm-up
                    prefill[i].Add(pf); decode[i].Add(dc); kv[i] = bytes;
                }
            return Enumerable.Range(0, c).Select(i => new SpeedReport(Median(prefill[i]), n == 0 ? null : Median(decode[i]), kv[i], p, n)).ToArray();
        }
        var subset = Evaluation.Sequences.Take(Math.Max(1, Options.SpeedSentences)).ToArray();
        int tokens = subset.Sum(s => s.Length);
        for (int r = -1; r < runs; r++)
            for (int i = 0; i < c; i++)
            {
                var sw = Stopwatch.StartNew();
                foreach (var ids in subset) Model.Model.Hidden(ModelInput.Of(ids), new ForwardContext { Skips = configurations[i] });
                if (r >= 0) prefill[i].Add(tokens / sw.Elapsed.TotalSeconds);
            }
        return Enumerable.Range(0, c).Select(i => new SpeedReport(Median(prefill[i]), null, 0, tokens, 0)).ToArray();
    }

    /// <summary>Quality, and (when asked) measured speed beside the full model's, with predicted costs.</summary>
    public DropReport Evaluate(IReadOnlyList<ModuleRef> dropped, bool measureSpeed = true)
    {
        ArgumentNullException.ThrowIfNull(dropped);
        var skips = Modules.ToSkips(dropped);
        var q = Quality(skips);
        SpeedReport? speed = null, full = null;
        if (measureSpeed)
        {
            // The full model is re-measured beside each pruned one: a speed-up is only meaningful from paired runs.
            var both = Speeds([ModuleSkips.None, skips]);
            full = both[0];
            speed = dropped.Count == 0 ? full : both[1];
        }
        var (p, n) = CostShape();
        return new DropReport(dropped.ToArray(), q, speed, full, DropCosts.Predict(Model.Config, skips, p, n), DropCosts.Predict(Model.Config, ModuleSkips.None, p, n));
    }

    /// <summary>The prompt and decode lengths the speed run uses, for the cost prediction.</summary>
    public (int Prompt, int Decode) CostShape()
    {
        if (Task.NextToken)
        {
            int p = Math.Clamp(Options.SpeedPrompt, 1, Evaluation.Sequences[0].Length);
            return (p, Math.Max(0, Math.Min(Options.SpeedDecode, Model.Config.MaxSeq - p)));
        }
        // Encoders: one sequence of the mean length of the sentences the speed run embeds.
        var subset = Evaluation.Sequences.Take(Math.Max(1, Options.SpeedSentences)).ToArray();
        return (Math.Max(1, subset.Sum(s => s.Length) / subset.Length), 0);
    }

    /// <summary>One prefill + greedy decode run; returns prefill and decode tokens/s and the KV bytes allocated.</summary>
    public static (double Prefill, double Decode, long KvBytes) DecodeRun(ITransformerModel model, ReadOnlySpan<int> prompt, int decodeTokens, ModuleSkips skips)
    {
        var cache = KvCache.For(model.Config, prompt.Length + decodeTokens);
        var ctx = new ForwardContext { Cache = cache, Skips = skips };
        var sw = Stopwatch.StartNew();
        var state = model.Hidden(ModelInput.Of(prompt.ToArray()), ctx);
        state.Keep([state.Rows - 1]); // the prompt is in the cache; only the last row chooses the next token
        var logits = model.Readout(state, ctx);
        double prefill = prompt.Length / sw.Elapsed.TotalSeconds;
        sw.Restart();
        for (int i = 0; i < decodeTokens; i++)
        {
            int next = TensorPrimitives.IndexOfMax(logits);
            logits = model.Forward(ModelInput.Of([next], prompt.Length + i), ctx).Output;
        }
        double decode = decodeTokens == 0 ? 0 : decodeTokens / sw.Elapsed.TotalSeconds;
        return (prefill, decode, cache.AllocatedBytes);
    }

    // The readout of the whole sequence: next-token logits of every row, or the pooled sentence embedding.
    private float[] Readout(int[] ids, ModuleSkips skips) => Model.Model.Forward(ModelInput.Of(ids), new ForwardContext { Skips = skips }).Output;

    private float[][] Embed(ModuleSkips skips) => Evaluation.Sequences.Select(ids => Readout(ids, skips)).ToArray();

    internal static float[] LogSoftmaxRows(float[] logits, int v)
    {
        var r = new float[logits.Length];
        for (int o = 0; o < logits.Length; o += v)
        {
            var row = logits.AsSpan(o, v);
            float max = TensorPrimitives.Max(row);
            double sum = 0;
            foreach (var x in row) sum += Math.Exp(x - max);
            float lse = max + (float)Math.Log(sum);
            TensorPrimitives.Subtract(row, lse, r.AsSpan(o, v));
        }
        return r;
    }

    /// <summary>exp(mean negative log-likelihood of token i + 1 given tokens 0..i) over all sequences.</summary>
    internal static double Perplexity(float[][] logProbs, IReadOnlyList<int[]> seqs, int v)
    {
        double nll = 0;
        long count = 0;
        for (int s = 0; s < seqs.Count; s++)
            for (int i = 0; i + 1 < seqs[s].Length; i++)
            {
                nll -= logProbs[s][i * v + seqs[s][i + 1]];
                count++;
            }
        return Math.Exp(nll / count);
    }

    /// <summary>Cosines of every pair i &lt; j, row by row.</summary>
    internal static double[] PairwiseCosines(float[][] e)
    {
        var r = new List<double>();
        for (int i = 0; i < e.Length; i++)
            for (int j = i + 1; j < e.Length; j++) r.Add(TensorPrimitives.CosineSimilarity(e[i], e[j]));
        return r.ToArray();
    }

    /// <summary>Spearman's rho: Pearson correlation of the ranks (ties get their mean rank).</summary>
    public static double Spearman(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Count != b.Count) throw new ArgumentException($"{a.Count} values against {b.Count}", nameof(b));
        if (a.Count < 2) throw new ArgumentException("at least 2 pairs are needed", nameof(a));
        return Pearson(Ranks(a), Ranks(b));
    }

    internal static double[] Ranks(IReadOnlyList<double> x)
    {
        var order = Enumerable.Range(0, x.Count).OrderBy(i => x[i]).ToArray();
        var ranks = new double[x.Count];
        for (int i = 0; i < order.Length;)
        {
            int j = i;
            while (j + 1 < order.Length && x[order[j + 1]] == x[order[i]]) j++;
            double mean = (i + j) / 2.0 + 1;
            for (int t = i; t <= j; t++) ranks[order[t]] = mean;
            i = j + 1;
        }
        return ranks;
    }

    internal static double Pearson(double[] a, double[] b)
    {
        double ma = a.Average(), mb = b.Average(), sab = 0, saa = 0, sbb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            sab += (a[i] - ma) * (b[i] - mb);
            saa += (a[i] - ma) * (a[i] - ma);
            sbb += (b[i] - mb) * (b[i] - mb);
        }
        return saa == 0 || sbb == 0 ? (saa == sbb ? 1 : 0) : sab / Math.Sqrt(saa * sbb);
    }

    private static double Median(List<double> x)
    {
        var s = x.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
