using System.Diagnostics;
using System.Numerics.Tensors;
using Workbench.Engine.Costs;
using Workbench.Engine.Models;
using Workbench.Engine.Text;

namespace Workbench.Engine.Redundancy;

/// <summary>Sizes of the evaluation: held-out sequences (decoders) or sentences (encoders), and the speed run.</summary>
public sealed record EvaluationOptions(int Samples = 4, int SeqLen = 128, int Sentences = 16,
    int SpeedPrompt = 16, int SpeedDecode = 48, int SpeedRuns = 3, int SpeedSentences = 4)
{
    /// <summary>Held-out images (image classifiers; vision-language models: images with their prompts).</summary>
    public int Images { get; init; } = 100;
    public static EvaluationOptions Default { get; } = new();
}

/// <summary>
/// Quality of a pruned model against the full one. Decoders: perplexity on held-out text (pruned and full), and over
/// every position of the evaluation sequences the mean KL(full || pruned) of the next-token distributions and how
/// often their top-1 tokens agree. Encoders: mean cosine between pruned and full sentence embeddings, and the Spearman
/// correlation of the pruned model's pairwise sentence similarities with the full model's.
/// </summary>
public sealed record QualityReport(double? Kl, double? Top1Agreement, double? Perplexity, double? PerplexityFull,
    double? EmbeddingCosine, double? Spearman, long Positions)
{
    /// <summary>Image classifiers whose evaluation images carry labels naming their classes: top-1 accuracy, changed and full.</summary>
    public double? Accuracy { get; init; }
    public double? AccuracyFull { get; init; }
}

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
    /// <summary>What the drops are judged by: next-token distributions, sentence embeddings, class distributions, or next-token distributions at text positions.</summary>
    public ModelTask Task { get; }
    public EvaluationOptions Options { get; }
    /// <summary>Decoders: the held-out token sequences. Encoders: the held-out sentences, tokenized. Image tasks: empty (see <see cref="Images"/>).</summary>
    public TokenSamples Evaluation { get; }
    /// <summary>Image tasks: the held-out images and the full model's outputs on them; null for text.</summary>
    public ImageEvaluation? Images { get; }
    private readonly bool _nextToken; // decoders and vision-language models: prefill + decode speed

    private readonly float[][] _fullLogProbs = [];   // decoders: per sequence, [L, vocab] log-softmax
    private readonly double _fullPerplexity;
    private readonly float[][] _fullEmbeddings = []; // encoders
    private readonly double[] _fullSimilarities = [];

    public DropEvaluator(LoadedModel model, CorpusSplit split, EvaluationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(split);
        Model = model;
        var task = TextTask.Of(model, nameof(model));
        Task = task;
        _nextToken = task.NextToken;
        Options = options ?? EvaluationOptions.Default;
        int seq = Math.Min(Options.SeqLen, model.Config.MaxSeq);
        if (task.NextToken)
        {
            Evaluation = split.Evaluation(task.Tokenize, Options.Samples, seq, pack: true);
            _fullLogProbs = Evaluation.Sequences.Select(s => LogSoftmaxRows(Readout(s, ModuleSkips.None), model.Config.Vocab)).ToArray();
            _fullPerplexity = Perplexity(_fullLogProbs, Evaluation.Sequences, model.Config.Vocab);
        }
        else
        {
            if (Options.Sentences < 3) throw new ArgumentOutOfRangeException(nameof(options), Options.Sentences, "at least 3 sentences are needed for a rank correlation of similarities");
            Evaluation = split.Evaluation(task.Tokenize, Options.Sentences, seq, pack: false);
            _fullEmbeddings = Embed(ModuleSkips.None);
            _fullSimilarities = PairwiseCosines(_fullEmbeddings);
        }
    }

    /// <summary>
    /// An image task's evaluator: drops judged on held-out images (<see cref="ImageEvaluation"/>: KL and top-1 of the
    /// class distribution, or of the next token at the text positions; accuracy where labels name the classes); speed
    /// as tokens/s through the model (vision-language models: prefill with the image, then greedy decode).
    /// </summary>
    public DropEvaluator(ImageTask task, ImageSamples evaluation, EvaluationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(evaluation);
        Model = task.Loaded;
        Task = task;
        _nextToken = task is VisionLanguageTask;
        Options = options ?? EvaluationOptions.Default;
        Images = new ImageEvaluation(task, evaluation);
        Evaluation = new TokenSamples(evaluation.Part, [], [], evaluation.Tokens);
    }

    public bool IsDecoder => Task is TextTask { NextToken: true };

    public QualityReport Quality(ModuleSkips skips)
    {
        ArgumentNullException.ThrowIfNull(skips);
        Modules.CheckSkips(Model.Config, skips, nameof(skips));
        if (Images is not null) return Images.Quality(new ForwardContext { Skips = skips });
        if (IsDecoder)
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
        if (_nextToken)
        {
            var (p, n) = CostShape();
            var prompt = Images is null ? ModelInput.Of(Evaluation.Sequences[0][..p]) : Images.Samples.Inputs[0];
            for (int r = -1; r < runs; r++)
                for (int i = 0; i < c; i++)
                {
                    var (pf, dc, bytes) = DecodeRun(Model.Model, prompt, p, n, configurations[i]);
                    if (r < 0) continue; // warm-up
                    prefill[i].Add(pf); decode[i].Add(dc); kv[i] = bytes;
                }
            return Enumerable.Range(0, c).Select(i => new SpeedReport(Median(prefill[i]), n == 0 ? null : Median(decode[i]), kv[i], p, n)).ToArray();
        }
        var (subset, tokens) = EncodeSubset();
        for (int r = -1; r < runs; r++)
            for (int i = 0; i < c; i++)
            {
                var sw = Stopwatch.StartNew();
                foreach (var input in subset) Model.Model.Hidden(input, new ForwardContext { Skips = configurations[i] });
                if (r >= 0) prefill[i].Add(tokens / sw.Elapsed.TotalSeconds);
            }
        return Enumerable.Range(0, c).Select(i => new SpeedReport(Median(prefill[i]), null, 0, (int)tokens, 0)).ToArray();
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
        if (_nextToken)
        {
            int p = Images is null ? Math.Clamp(Options.SpeedPrompt, 1, Evaluation.Sequences[0].Length)
                : ((MultimodalInput)Images.Samples.Inputs[0]).Tokens.Length; // the whole prompt: the image comes with it
            return (p, Math.Max(0, Math.Min(Options.SpeedDecode, Model.Config.MaxSeq - p)));
        }
        // Encoders: one sequence of the mean length of the sentences the speed run embeds (images: the rows of one image).
        var (subset, tokens) = EncodeSubset();
        return (Math.Max(1, (int)(tokens / subset.Length)), 0);
    }

    // The inputs the encode-speed run passes through the model, and their tokens (rows).
    private (ModelInput[] Inputs, long Tokens) EncodeSubset()
    {
        int n = Math.Max(1, Options.SpeedSentences);
        if (Images is not null)
        {
            var inputs = Images.Samples.Inputs.Take(n).ToArray();
            return (inputs, (long)inputs.Length * Model.Config.MaxSeq);
        }
        var seqs = Evaluation.Sequences.Take(n).ToArray();
        return (seqs.Select(ids => ModelInput.Of(ids)).ToArray(), seqs.Sum(s => (long)s.Length));
    }

    /// <summary>One prefill + greedy decode run; returns prefill and decode tokens/s and the KV bytes allocated.</summary>
    public static (double Prefill, double Decode, long KvBytes) DecodeRun(ITransformerModel model, ReadOnlySpan<int> prompt, int decodeTokens, ModuleSkips skips) =>
        DecodeRun(model, ModelInput.Of(prompt.ToArray()), prompt.Length, decodeTokens, skips);

    /// <summary>The same from any prompt input of <paramref name="promptLength"/> positions (an image with its prompt).</summary>
    public static (double Prefill, double Decode, long KvBytes) DecodeRun(ITransformerModel model, ModelInput prompt, int promptLength, int decodeTokens, ModuleSkips skips)
    {
        var cache = KvCache.For(model.Config, promptLength + decodeTokens);
        var ctx = new ForwardContext { Cache = cache, Skips = skips };
        var sw = Stopwatch.StartNew();
        var state = model.Hidden(prompt, ctx);
        state.Keep([state.Rows - 1]); // the prompt is in the cache; only the last row chooses the next token
        var logits = model.Readout(state, ctx);
        double prefill = promptLength / sw.Elapsed.TotalSeconds;
        sw.Restart();
        for (int i = 0; i < decodeTokens; i++)
        {
            int next = TensorPrimitives.IndexOfMax(logits);
            logits = model.Forward(ModelInput.Of([next], promptLength + i), ctx).Output;
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
