using System.Diagnostics;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Quantization;
using Workbench.Engine.Redundancy;
using Workbench.Engine.Requests;
using Workbench.Engine.Text;

namespace Workbench.Engine.Training;

/// <summary>One logged optimizer step: the batch loss before the update, the learning rate used and the gradient norm before clipping.</summary>
public sealed record TrainStep(int Step, double Loss, double Lr, double GradNorm);

/// <summary>
/// Held-out quality of a model against the untouched fp32 model on the same positions: perplexity, mean
/// KL(full || this) of the next-token distributions, and the share of positions whose top-1 token agrees.
/// </summary>
public sealed record HeldOut(double Perplexity, double Kl, double Top1Agreement);

/// <summary>
/// The run a PyramidDrop training run is compared with: the same start, batches, seed and suffix loss, no token dropped,
/// trained step for step interleaved with the pyramid run (so both times see the same machine load).
/// </summary>
public sealed record TrainBaseline(IReadOnlyList<TrainStep> Loss, HeldOut After, double TrainSeconds, double SecondsPerStep);

/// <summary>
/// What a training run measured. Perplexities are on the corpus's held-out split: <see cref="PerplexityFp32"/> of the
/// untouched model, <see cref="PerplexityStart"/> of the model training starts from as it will run (pruned; with QAT
/// post-training-quantized to ternary on the engine's kernels), <see cref="Perplexity"/> of the trained model run the same way
/// (a pyramid-trained model is evaluated on the full held-out windows, no token dropped). <see cref="Start"/> and
/// <see cref="After"/> add KL and top-1 agreement against the untouched model (healing after a drop).
/// With <see cref="Pyramid"/>: <see cref="Baseline"/> is the same training without the drop, <see cref="RowsPerBlock"/> the
/// rows per window entering each block (one more entry: the final state), <see cref="LossPositions"/> the suffix positions per window that carry the loss.
/// </summary>
public sealed record TrainResult(
    string Model, bool Qat, string? Drop, int Steps, int Seq, int Batch, double Lr, int Seed,
    double PerplexityStart, double Perplexity, double PerplexityFp32, IReadOnlyList<TrainStep> Loss,
    double Seconds, double TrainSeconds, double TrainCpuSeconds, double TokensPerSecond, double ForwardTokensPerSecond,
    int TrainWindows, int EvalSequences, long EvalTokens, string? OutDir,
    HeldOut Start, HeldOut After, string? Pyramid = null, int LossPositions = 0, IReadOnlyList<int>? RowsPerBlock = null,
    TrainBaseline? Baseline = null)
{
    /// <summary>What the model was trained and evaluated on: a corpus and the tokenizer that made its ids, an id file, or seeded random ids (no tokenizer).</summary>
    public string Data { get; init; } = "";

    /// <summary>Share of the log-perplexity gap (start vs fp32) that training closed: 1 = all of it; null when there is no gap (plain fine-tuning, or a start no worse than fp32).</summary>
    public double? GapClosed => PerplexityStart <= PerplexityFp32 ? null
        : (Math.Log(PerplexityStart) - Math.Log(Perplexity)) / (Math.Log(PerplexityStart) - Math.Log(PerplexityFp32));

    public double SecondsPerStep => TrainSeconds / Steps;

    /// <summary>Mean batch loss over the last tenth of the steps (at least one): the end of a noisy curve.</summary>
    public static double TailLoss(IReadOnlyList<TrainStep> log) => log.Skip(log.Count - Math.Max(1, log.Count / 10)).Average(s => s.Loss);

    /// <summary>The trained model (fp32 latent weights; with QAT run it on the ternary kernels, e.g. TernaryModel.Quantize): for notebooks, never serialized.</summary>
    public LlamaModel? Trained { get; init; }

    /// <summary>Pyramid runs: seconds per step with the drop over seconds per step without it (interleaved in one run).</summary>
    public double? PyramidTimeRatio => Baseline is null ? null : SecondsPerStep / Baseline.SecondsPerStep;
}

/// <summary>The loss went NaN, infinite or exploded: training stops before the update, naming the step.</summary>
public sealed class TrainingDivergedException(string message) : InvalidOperationException(message);

/// <summary>
/// <c>workbench train</c> / <c>#!train</c>: fine-tune a decoder (any block <see cref="LlamaParameters.Covered"/> names; optionally BitNet b1.58 quantization-aware, optionally
/// with modules dropped) on the calibration split of a corpus with AdamW, a warmup + cosine schedule and global-norm
/// clipping, then evaluate perplexity on the held-out split. Seeded: the same request gives the same weights bit for bit.
/// </summary>
public sealed class TrainRequest : IRequest<TrainResult>
{
    public string Model { get; init; } = "stories260K";
    /// <summary>null (fp32) or "ternary" (BitNet b1.58 QAT).</summary>
    public string? QatMode { get; init; }
    /// <summary>GRANULARITY:LIST, e.g. block:3 or attention:1,2 or mlp:4.</summary>
    public string? Drop { get; init; }
    /// <summary>
    /// LAYERS:KEEP, PyramidDrop while training (<see cref="TrainingPyramid"/>: which positions are context, which carry
    /// the loss), e.g. 2,3,4:0.5. The run then also trains the undropped baseline, interleaved, for the time ratio.
    /// </summary>
    public string? Pyramid { get; init; }
    /// <summary>With <see cref="Pyramid"/>: the share of each window that is droppable context (the rest carries the loss).</summary>
    public double Context { get; init; } = TrainingPyramid.DefaultContext;
    public int Steps { get; init; }
    public int Seq { get; init; } = 128;
    public int Batch { get; init; } = 8;
    /// <summary>Peak learning rate; null: 5e-3 with QAT (stories260K, 300 steps: closes 90% of the PTQ log-perplexity gap; 2e-3 and 3e-3 close 89.9% and 89.7%), else 1e-3.</summary>
    public double? Lr { get; init; }
    public double LearningRate => Lr ?? (Qat ? 5e-3 : 1e-3);
    public int Seed { get; init; }
    public string? Corpus { get; init; }
    /// <summary>A tokenizer file for a model that has none beside it (tokenizer.model, tokenizer.json, tokenizer.bin): the corpus is tokenized by it.</summary>
    public string? Tokenizer { get; init; }
    /// <summary>
    /// A file of token ids (integers separated by whitespace or commas) to train on instead of a corpus: cut into windows of
    /// --seq + 1 ids, the last tenth (at least one) held out for the perplexities. Without it and without a tokenizer the
    /// model trains on seeded random ids uniform over its vocabulary (said so in <see cref="TrainResult.Data"/>).
    /// </summary>
    public string? Tokens { get; init; }
    public string? Out { get; init; }
    public int Threads { get; init; }
    public double WeightDecay { get; init; } = 0.01;
    public double Clip { get; init; } = 1.0;
    public int EvalSequences { get; init; } = 16;

    public const int MaxSteps = 1_000_000;
    public bool Qat => QatMode is not null;

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Model)) throw new OptionException("--model", "--model is required (a bundled name or a path)");
        if (QatMode is not (null or "ternary")) throw new OptionException("--qat", $"--qat '{QatMode}' is not supported (only 'ternary')");
        if (Steps < 1 || Steps > MaxSteps) throw new OptionException("--steps", $"--steps {Steps} must be in 1..{MaxSteps}");
        if (Seq < 2) throw new OptionException("--seq", $"--seq {Seq} must be at least 2");
        if (Batch < 1 || Batch > 4096) throw new OptionException("--batch", $"--batch {Batch} must be in 1..4096");
        if (Lr is { } lr && !(lr > 0 && lr <= 1)) throw new OptionException("--lr", $"--lr {lr} must be in (0, 1]");
        if (!(WeightDecay >= 0 && WeightDecay < 1)) throw new OptionException("--weight-decay", $"--weight-decay {WeightDecay} must be in [0, 1)");
        if (Threads < 0) throw new OptionException("--threads", $"--threads {Threads} must be positive");
        if (EvalSequences < 1) throw new OptionException("--eval", $"--eval {EvalSequences} must be positive");
        if (Corpus is not null && !Text.Corpus.Exists(Corpus)) throw new OptionException("--corpus", $"--corpus '{Corpus}': no such file (nor a bundled corpus: {string.Join(", ", Text.Corpus.BundledNames)})");
        if (Tokens is not null && Corpus is not null) throw new OptionException("--tokens", "--tokens and --corpus both name the training data: give one");
        if (Tokens is not null && !File.Exists(Tokens)) throw new OptionException("--tokens", $"--tokens '{Tokens}': no such file");
        if (Tokenizer is not null && !File.Exists(Tokenizer)) throw new OptionException("--tokenizer", $"--tokenizer '{Tokenizer}': no such file");
        if (Drop is not null) ParseDrop(Drop, int.MaxValue);
        if (Pyramid is not null)
        {
            TrainingPyramid.Parse(Pyramid, int.MaxValue, Context);
            if (Seq < TrainingPyramid.MinWindow) throw new OptionException("--seq", $"--seq {Seq} must be at least {TrainingPyramid.MinWindow} with --pyramid");
        }
        else if (Context != TrainingPyramid.DefaultContext) throw new OptionException("--context", "--context needs --pyramid");
    }

    /// <summary>GRANULARITY:LIST as module skips (block drops both halves of each listed layer).</summary>
    public static ModuleSkips ParseDrop(string text, int layers)
    {
        int colon = text.IndexOf(':');
        if (colon <= 0) throw new OptionException("--drop", $"--drop '{text}' must be GRANULARITY:LIST (block:3 or attention:1,2 or mlp:4)");
        Granularity g;
        try { g = Names.ParseGranularity(text[..colon], "--drop"); }
        catch (ArgumentException) { throw new OptionException("--drop", $"--drop '{text}': granularity '{text[..colon]}' is not block, attention or mlp"); }
        if (g is not (Granularity.Block or Granularity.Attention or Granularity.Mlp))
            throw new OptionException("--drop", $"--drop '{text}': granularity must be block, attention or mlp");
        var list = Parse.Layers(text[(colon + 1)..], "--drop");
        if (list.Length == 0) throw new OptionException("--drop", $"--drop '{text}': the layer list is empty");
        foreach (var l in list)
            if (l >= layers) throw new OptionException("--drop", $"--drop '{text}': layer {l} is outside the model's {layers} layers");
        var none = new HashSet<int>();
        var set = list.ToHashSet();
        return g switch
        {
            Granularity.Block => new ModuleSkips(set, set),
            Granularity.Attention => new ModuleSkips(set, none),
            _ => new ModuleSkips(none, set),
        };
    }

    public TrainResult Run(IProgress<RunProgress>? progress = null, CancellationToken cancel = default) => Run(progress, null, cancel);

    /// <summary>
    /// As <see cref="Run(IProgress{RunProgress}?, CancellationToken)"/>, calling <paramref name="onStep"/> after every
    /// optimizer step with the step just logged and, for a pyramid run, the baseline's step (else null): what a live loss chart draws.
    /// </summary>
    public TrainResult Run(IProgress<RunProgress>? progress, Action<TrainStep, TrainStep?>? onStep, CancellationToken cancel = default)
    {
        Validate();
        var total = Stopwatch.StartNew();
        Decoder decoder;
        try { decoder = ModelHub.LoadDecoder(Model, Tokenizer); }
        catch (ArgumentException e) when (e.ParamName == "--tokenizer") { throw new OptionException("--tokenizer", $"--tokenizer '{Tokenizer}': {e.Message}"); }
        var config = decoder.Config;
        if (Seq > config.MaxSeq) throw new OptionException("--seq", $"--seq {Seq} exceeds {decoder.Name}'s {config.MaxSeq} positions");
        if (LlamaParameters.Unsupported(decoder.Model, Seq) is { } why)
            throw new OptionException("--model", $"--model {decoder.Name}: {why}; training covers {LlamaParameters.Covered}");
        if (Out is not null && (decoder.Model.Spec != DecoderSpec.Llama2 || decoder.Model.Weights.Layers[0] is { Bq: not null } or { Bo: not null }))
            throw new OptionException("--out", $"--out: {decoder.Name} is a {decoder.Model.Spec.Family} decoder with its own block (or biases); only Llama-2-layout models are written back (train without --out)");
        if (Corpus is not null && !decoder.HasTokenizer)
            throw new OptionException("--corpus", $"--corpus '{Corpus}': '{decoder.Name}' has no tokenizer, so text cannot be turned into its token ids; pass --tokenizer PATH, or --tokens FILE, or leave both out to train on seeded random token ids");
        var skips = Drop is null ? decoder.Pruned : Union(decoder.Pruned, ParseDrop(Drop, config.Layers));
        int threads = Threads <= 0 ? Environment.ProcessorCount : Threads;

        var (windows, eval, data) = TrainingData(decoder);

        var pyramid = Pyramid is null ? null : TrainingPyramid.Parse(Pyramid, config.Layers, Context);

        progress?.Report(new RunProgress("evaluate", 0, Steps, "perplexity before training"));
        var fw = Stopwatch.StartNew();
        var reference = new List<float[]>(eval.Count);
        var fp32 = Evaluate(decoder.Model, eval, ModuleSkips.None, qat: false, threads, null, reference);
        double forwardTps = eval.Sum(e => (double)e.Length) / fw.Elapsed.TotalSeconds;
        var start = skips == ModuleSkips.None && !Qat ? fp32 : Evaluate(decoder.Model, eval, skips, Qat, threads, reference);

        var runs = new List<Trainee>
        {
            new(decoder.Model, config, Qat, skips, threads, pyramid, WeightDecay),
        };
        // the baseline of a pyramid run: the same suffix loss and batches, no token dropped (keep 1 drops nothing and ranks nothing)
        if (pyramid is not null)
            runs.Add(new(decoder.Model, config, Qat, skips, threads, pyramid with { Schedule = new([1], [1.0]) }, WeightDecay));
        var rng = new Random(Seed);
        var order = Enumerable.Range(0, windows.Count).ToArray();
        int cursor = order.Length;
        var batch = new int[Batch][];
        int warmup = Math.Min(20, Steps / 10);
        var train = Stopwatch.StartNew();
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        for (int step = 1; step <= Steps; step++)
        {
            cancel.ThrowIfCancellationRequested();
            for (int b = 0; b < Batch; b++)
            {
                if (cursor == order.Length) { rng.Shuffle(order); cursor = 0; }
                batch[b] = windows[order[cursor++]];
            }
            double lr = AdamW.CosineLr(LearningRate, step, Steps, warmup);
            // interleaved, the order alternating step by step, so the two times see the same load
            for (int k = 0; k < runs.Count; k++) runs[(k + step) % runs.Count].Step(step, batch, lr, Clip);
            onStep?.Invoke(runs[0].Log[^1], runs.Count > 1 ? runs[1].Log[^1] : null);
            progress?.Report(new RunProgress("train", step, Steps, $"loss {runs[0].Log[^1].Loss:F4}"));
        }
        double trainSeconds = train.Elapsed.TotalSeconds;
        double trainCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds; // the machine is shared: CPU time is the load-free figure
        var main = runs[0];
        if (pyramid is not null) trainSeconds = main.Seconds; // the pyramid run's own share of the interleaved loop

        progress?.Report(new RunProgress("evaluate", Steps, Steps, "perplexity after training"));
        var trained = main.P.ToModel(decoder.Card);
        var after = Evaluate(trained, eval, skips, Qat, threads, reference);
        TrainBaseline? baseline = null;
        if (pyramid is not null)
        {
            var b = runs[1];
            baseline = new TrainBaseline(b.Log, Evaluate(b.P.ToModel(decoder.Card), eval, skips, Qat, threads, reference), b.Seconds, b.Seconds / Steps);
        }
        double ppl = after.Perplexity;
        if (Out is not null)
        {
            var extra = new Dictionary<string, object>
            {
                ["workbench_training"] = new Dictionary<string, object>
                {
                    ["base_model"] = decoder.Name, ["steps"] = Steps, ["seq"] = Seq, ["batch"] = Batch, ["lr"] = LearningRate, ["seed"] = Seed,
                    ["qat"] = QatMode ?? "none", ["perplexity"] = ppl, ["pyramid"] = pyramid?.ToString() ?? "none",
                },
            };
            HuggingFaceExport.WriteLlama(trained, Out, extraConfig: extra, omitAttention: skips.Attention, omitMlp: skips.Mlp);
            CopyTokenizer(Model, Out);
        }
        return new TrainResult(decoder.Name, Qat, Drop, Steps, Seq, Batch, LearningRate, Seed, start.Perplexity, ppl, fp32.Perplexity, main.Log,
            total.Elapsed.TotalSeconds, trainSeconds, trainCpu, (double)Steps * Batch * Seq / trainSeconds, forwardTps,
            windows.Count, eval.Count, eval.Sum(e => (long)e.Length), Out, start, after,
            pyramid?.ToString(), pyramid is null ? 0 : Seq - pyramid.ContextEnd(Seq), pyramid is null ? null : main.Backprop.RowsPerSequence.ToArray(),
            baseline) { Trained = trained, Data = data };
    }

    /// <summary>Most windows of seeded random ids a run draws (the batches cycle through them as through a corpus's).</summary>
    public const int MaxRandomWindows = 4096;

    /// <summary>
    /// The training windows (--seq + 1 ids), the held-out sequences and what they are: the corpus tokenized by the model's
    /// tokenizer (or --tokenizer's), the ids of --tokens, or seeded random ids when the model has no tokenizer.
    /// </summary>
    private (List<int[]> Windows, IReadOnlyList<int[]> Eval, string Data) TrainingData(Decoder decoder)
    {
        int vocab = decoder.Config.Vocab;
        if (Tokens is not null)
        {
            var ids = ReadIds(Tokens, vocab);
            var all = new List<int[]>();
            for (int i = 0; i + Seq + 1 <= ids.Length; i += Seq + 1) all.Add(ids[i..(i + Seq + 1)]);
            int held = Math.Max(1, Math.Min(EvalSequences, all.Count / 10));
            if (all.Count - held < Batch)
                throw new OptionException("--tokens", $"--tokens '{Tokens}': {ids.Length} ids make {all.Count} windows of {Seq + 1}, fewer than --batch {Batch} plus {held} held out");
            var eval = all.Skip(all.Count - held).Select(w => w[..Seq]).ToList();
            var train = all.Take(all.Count - held).Take(Steps * Batch).ToList();
            return (train, eval, $"token ids from {Tokens}: {ids.Length} ids, {all.Count - held} windows to train on, the last {held} held out");
        }
        if (!decoder.HasTokenizer)
        {
            int count = Math.Min(Steps * Batch, MaxRandomWindows);
            var train = RedundancyInputs.RandomTokens(vocab, count, Seq + 1, Seed).Sequences.ToList();
            var eval = RedundancyInputs.RandomTokens(vocab, EvalSequences, Seq, Seed + 1).Sequences;
            return (train, eval, $"seeded random token ids uniform over the vocabulary of {vocab} (seed {Seed} to train, {Seed + 1} held out): '{decoder.Name}' has no tokenizer (--tokenizer PATH or --tokens FILE give it text or ids); no model beats perplexity {vocab} on them");
        }
        var corpus = Text.Corpus.Load(Corpus ?? Bundled.TinyStories);
        var split = corpus.Split(Seed);
        int[] Tokenize(string s) => decoder.Tokenizer.Encode(s, bos: true);
        var windows = Windows(split, Tokenize, Seq + 1, Steps * Batch);
        if (windows.Count < Batch)
            throw new OptionException("--corpus", $"--corpus '{corpus.Source}': the calibration split yields {windows.Count} windows of {Seq + 1} tokens, fewer than --batch {Batch}");
        var evalSeqs = split.Evaluation(Tokenize, EvalSequences, Seq, pack: true).Sequences;
        return (windows, evalSeqs, $"{corpus.Source}, tokenized by {(Tokenizer is null ? $"{decoder.Name}'s tokenizer" : Tokenizer)}");
    }

    /// <summary>Token ids of a text file, separated by whitespace or commas; a bad one names the file and its place.</summary>
    public static int[] ReadIds(string path, int vocab)
    {
        var parts = File.ReadAllText(path).Split([' ', '\t', '\r', '\n', ','], StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ids[i]) || ids[i] >= vocab)
                throw new OptionException("--tokens", $"--tokens '{path}': id {i} '{parts[i]}' is not a token id in 0..{vocab - 1}");
        return ids;
    }

    /// <summary>One model being trained: its parameters, gradients, backprop, optimizer, log and its own time.</summary>
    private sealed class Trainee(LlamaModel model, ModelConfig config, bool qat, ModuleSkips skips, int threads, TrainingPyramid? pyramid, double weightDecay)
    {
        public LlamaParameters P { get; } = LlamaParameters.From(model);
        public LlamaBackprop Backprop { get; } = new(config, qat, skips, threads, pyramid, model.Spec);
        public List<TrainStep> Log { get; } = [];
        public double Seconds { get; private set; }
        private LlamaParameters? _grads;
        private AdamW? _opt;
        private double _first = double.NaN;

        public void Step(int step, int[][] batch, double lr, double clip)
        {
            _opt ??= new AdamW(P) { WeightDecay = weightDecay };
            _grads ??= P.ZerosLike();
            long t0 = Stopwatch.GetTimestamp();
            double loss = Backprop.LossAndGradients(P, batch, _grads);
            if (step == 1) _first = loss;
            double norm = AdamW.ClipGlobalNorm(_grads, clip);
            if (!double.IsFinite(loss) || !double.IsFinite(norm))
                throw new TrainingDivergedException($"training stopped at step {step}: the loss is {loss} (gradient norm {norm}); try a smaller --lr");
            if (loss > 2 * _first + 5)
                throw new TrainingDivergedException($"training stopped at step {step}: the loss exploded to {loss:G4} from {_first:G4} at step 1; try a smaller --lr");
            _opt.Update(P, _grads, lr);
            Seconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
            Log.Add(new TrainStep(step, loss, lr, norm));
        }
    }

    /// <summary>
    /// Held-out perplexity of the model as it would run: the engine's forward with the skips, and with QAT on the
    /// ternary (I2S) kernels with per-token int8 activations, i.e. post-training quantization of these weights.
    /// </summary>
    public static double Perplexity(LlamaModel model, IReadOnlyList<int[]> sequences, ModuleSkips skips, bool qat, int threads) =>
        Evaluate(model, sequences, skips, qat, threads).Perplexity;

    /// <summary>
    /// <see cref="Perplexity"/> plus KL(reference || model) and top-1 agreement against <paramref name="reference"/>'s
    /// log-probabilities (one array per sequence, [positions, vocab]); with <paramref name="keep"/> this run's
    /// log-probabilities are added to it instead (and KL is 0, agreement 1: the model is its own reference).
    /// </summary>
    public static HeldOut Evaluate(LlamaModel model, IReadOnlyList<int[]> sequences, ModuleSkips skips, bool qat, int threads,
        IReadOnlyList<float[]>? reference = null, List<float[]>? keep = null)
    {
        using var ternary = qat ? TernaryModel.Quantize(model, LowBitFormat.I2S, threads) : null;
        var ctx = new ForwardContext { Skips = skips, Linear = ternary, Threads = threads };
        int vocab = model.Config.Vocab;
        double nll = 0, kl = 0;
        long count = 0, agree = 0;
        for (int s = 0; s < sequences.Count; s++)
        {
            var seq = sequences[s];
            var (logits, _) = model.Forward(seq, 0, ctx);
            var logp = new float[(seq.Length - 1) * vocab];
            for (int i = 0; i + 1 < seq.Length; i++)
            {
                var row = logits.AsSpan(i * vocab, vocab);
                float max = float.NegativeInfinity;
                foreach (var v in row) max = Math.Max(max, v);
                double sum = 0;
                foreach (var v in row) sum += Math.Exp(v - max);
                double lse = max + Math.Log(sum);
                nll += lse - row[seq[i + 1]];
                var lp = logp.AsSpan(i * vocab, vocab);
                for (int j = 0; j < vocab; j++) lp[j] = (float)(row[j] - lse);
                if (reference is not null)
                {
                    var rp = reference[s].AsSpan(i * vocab, vocab);
                    int top = 0, refTop = 0;
                    double k = 0;
                    for (int j = 0; j < vocab; j++)
                    {
                        k += Math.Exp(rp[j]) * ((double)rp[j] - lp[j]);
                        if (lp[j] > lp[top]) top = j;
                        if (rp[j] > rp[refTop]) refTop = j;
                    }
                    kl += k;
                    if (top == refTop) agree++;
                }
                count++;
            }
            keep?.Add(logp);
        }
        return new HeldOut(Math.Exp(nll / count), reference is null ? 0 : kl / count, reference is null ? 1 : (double)agree / count);
    }

    // Calibration documents (each with its BOS) packed end to end and cut into windows of `length` tokens, at most `max`.
    private static List<int[]> Windows(CorpusSplit split, Func<string, int[]> tokenize, int length, int max)
    {
        var windows = new List<int[]>();
        var buf = new List<int>();
        foreach (var d in split.CalibrationDocuments)
        {
            buf.AddRange(tokenize(split.Corpus.Documents[d]));
            while (buf.Count >= length && windows.Count < max)
            {
                windows.Add(buf.GetRange(0, length).ToArray());
                buf.RemoveRange(0, length);
            }
            if (windows.Count == max) break;
        }
        return windows;
    }

    // The folder loads on its own only with a tokenizer beside it: copy the source model's (a path's folder, or a bundled model's).
    private static void CopyTokenizer(string model, string folder)
    {
        var dir = File.Exists(model) ? Path.GetDirectoryName(Path.GetFullPath(model))! : Directory.Exists(model) ? model : Path.Combine(Bundled.Root, "models", model);
        if (!Directory.Exists(dir)) return;
        var tok = new[] { "tokenizer.model", "tokenizer.json", "tokenizer.bin" }.Select(n => Path.Combine(dir, n)).Where(File.Exists)
            .Concat(Directory.EnumerateFiles(dir, "tok*.bin")).Concat(Directory.EnumerateFiles(dir, "tok*.model")).FirstOrDefault();
        if (tok is not null) File.Copy(tok, Path.Combine(folder, Path.GetFileName(tok)), overwrite: true);
    }

    private static ModuleSkips Union(ModuleSkips a, ModuleSkips b) =>
        new(a.Attention.Union(b.Attention).ToHashSet(), a.Mlp.Union(b.Mlp).ToHashSet());
}
