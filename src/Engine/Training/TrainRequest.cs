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
/// What a training run measured. Perplexities are on the corpus's held-out split: <see cref="PerplexityFp32"/> of the
/// untouched model, <see cref="PerplexityStart"/> of the model training starts from as it will run (pruned; with QAT
/// post-training-quantized to ternary on the engine's kernels), <see cref="Perplexity"/> of the trained model run the same way.
/// </summary>
public sealed record TrainResult(
    string Model, bool Qat, string? Drop, int Steps, int Seq, int Batch, double Lr, int Seed,
    double PerplexityStart, double Perplexity, double PerplexityFp32, IReadOnlyList<TrainStep> Loss,
    double Seconds, double TrainSeconds, double TrainCpuSeconds, double TokensPerSecond, double ForwardTokensPerSecond,
    int TrainWindows, int EvalSequences, long EvalTokens, string? OutDir)
{
    /// <summary>Share of the log-perplexity gap (start vs fp32) that training closed: 1 = all of it.</summary>
    public double GapClosed => (Math.Log(PerplexityStart) - Math.Log(Perplexity)) / (Math.Log(PerplexityStart) - Math.Log(PerplexityFp32));
}

/// <summary>The loss went NaN, infinite or exploded: training stops before the update, naming the step.</summary>
public sealed class TrainingDivergedException(string message) : InvalidOperationException(message);

/// <summary>
/// <c>workbench train</c> / <c>#!train</c>: fine-tune a Llama decoder (optionally BitNet b1.58 quantization-aware, optionally
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
    /// <summary>LAYERS:KEEP (PyramidDrop while training): not yet supported.</summary>
    public string? Pyramid { get; init; }
    public int Steps { get; init; }
    public int Seq { get; init; } = 128;
    public int Batch { get; init; } = 8;
    /// <summary>Peak learning rate; null: 5e-3 with QAT (stories260K, 300 steps: closes 90% of the PTQ log-perplexity gap; 2e-3 and 3e-3 close 89.9% and 89.7%), else 1e-3.</summary>
    public double? Lr { get; init; }
    public double LearningRate => Lr ?? (Qat ? 5e-3 : 1e-3);
    public int Seed { get; init; }
    public string? Corpus { get; init; }
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
        if (Pyramid is not null) throw new OptionException("--pyramid", "--pyramid: token dropping while training is not yet supported");
        if (Steps < 1 || Steps > MaxSteps) throw new OptionException("--steps", $"--steps {Steps} must be in 1..{MaxSteps}");
        if (Seq < 2) throw new OptionException("--seq", $"--seq {Seq} must be at least 2");
        if (Batch < 1 || Batch > 4096) throw new OptionException("--batch", $"--batch {Batch} must be in 1..4096");
        if (Lr is { } lr && !(lr > 0 && lr <= 1)) throw new OptionException("--lr", $"--lr {lr} must be in (0, 1]");
        if (!(WeightDecay >= 0 && WeightDecay < 1)) throw new OptionException("--weight-decay", $"--weight-decay {WeightDecay} must be in [0, 1)");
        if (Threads < 0) throw new OptionException("--threads", $"--threads {Threads} must be positive");
        if (EvalSequences < 1) throw new OptionException("--eval", $"--eval {EvalSequences} must be positive");
        if (Corpus is not null && !File.Exists(Corpus)) throw new OptionException("--corpus", $"--corpus '{Corpus}': no such file");
        if (Drop is not null) ParseDrop(Drop, int.MaxValue);
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

    public TrainResult Run(IProgress<RunProgress>? progress = null, CancellationToken cancel = default)
    {
        Validate();
        var total = Stopwatch.StartNew();
        var decoder = ModelHub.LoadDecoder(Model);
        var config = decoder.Config;
        if (Seq > config.MaxSeq) throw new OptionException("--seq", $"--seq {Seq} exceeds {decoder.Name}'s {config.MaxSeq} positions");
        var skips = Drop is null ? decoder.Pruned : Union(decoder.Pruned, ParseDrop(Drop, config.Layers));
        int threads = Threads <= 0 ? Environment.ProcessorCount : Threads;

        var corpus = Text.Corpus.Load(Corpus ?? Bundled.TinyStories);
        var split = corpus.Split(Seed);
        int[] Tokenize(string s) => decoder.Tokenizer.Encode(s, bos: true);
        var windows = Windows(split, Tokenize, Seq + 1, Steps * Batch);
        if (windows.Count < Batch)
            throw new OptionException("--corpus", $"--corpus '{corpus.Source}': the calibration split yields {windows.Count} windows of {Seq + 1} tokens, fewer than --batch {Batch}");
        var eval = split.Evaluation(Tokenize, EvalSequences, Seq, pack: true).Sequences;

        progress?.Report(new RunProgress("evaluate", 0, Steps, "perplexity before training"));
        var fw = Stopwatch.StartNew();
        double pplFp32 = Perplexity(decoder.Model, eval, ModuleSkips.None, qat: false, threads);
        double forwardTps = eval.Sum(e => (double)e.Length) / fw.Elapsed.TotalSeconds;
        double pplStart = skips == ModuleSkips.None && !Qat ? pplFp32 : Perplexity(decoder.Model, eval, skips, Qat, threads);

        var p = LlamaParameters.From(decoder.Model);
        var grads = new LlamaParameters(config, p.SharedOutput);
        var bp = new LlamaBackprop(config, Qat, skips, threads);
        var opt = new AdamW(p) { WeightDecay = WeightDecay };
        var rng = new Random(Seed);
        var order = Enumerable.Range(0, windows.Count).ToArray();
        int cursor = order.Length;
        var batch = new int[Batch][];
        var log = new List<TrainStep>(Steps);
        int warmup = Math.Min(20, Steps / 10);
        double first = double.NaN;
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
            double loss = bp.LossAndGradients(p, batch, grads);
            if (step == 1) first = loss;
            double norm = AdamW.ClipGlobalNorm(grads, Clip);
            if (!double.IsFinite(loss) || !double.IsFinite(norm))
                throw new TrainingDivergedException($"training stopped at step {step}: the loss is {loss} (gradient norm {norm}); try a smaller --lr");
            if (loss > 2 * first + 5)
                throw new TrainingDivergedException($"training stopped at step {step}: the loss exploded to {loss:G4} from {first:G4} at step 1; try a smaller --lr");
            double lr = AdamW.CosineLr(LearningRate, step, Steps, warmup);
            opt.Update(p, grads, lr);
            log.Add(new TrainStep(step, loss, lr, norm));
            progress?.Report(new RunProgress("train", step, Steps, $"loss {loss:F4}"));
        }
        double trainSeconds = train.Elapsed.TotalSeconds;
        double trainCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds; // the machine is shared: CPU time is the load-free figure

        progress?.Report(new RunProgress("evaluate", Steps, Steps, "perplexity after training"));
        var trained = p.ToModel(decoder.Card);
        double ppl = Perplexity(trained, eval, skips, Qat, threads);
        if (Out is not null)
        {
            var extra = new Dictionary<string, object>
            {
                ["workbench_training"] = new Dictionary<string, object>
                {
                    ["base_model"] = decoder.Name, ["steps"] = Steps, ["seq"] = Seq, ["batch"] = Batch, ["lr"] = LearningRate, ["seed"] = Seed,
                    ["qat"] = QatMode ?? "none", ["perplexity"] = ppl,
                },
            };
            HuggingFaceExport.WriteLlama(trained, Out, extraConfig: extra, omitAttention: skips.Attention, omitMlp: skips.Mlp);
            CopyTokenizer(Model, Out);
        }
        return new TrainResult(decoder.Name, Qat, Drop, Steps, Seq, Batch, LearningRate, Seed, pplStart, ppl, pplFp32, log,
            total.Elapsed.TotalSeconds, trainSeconds, trainCpu, (double)Steps * Batch * Seq / trainSeconds, forwardTps,
            windows.Count, eval.Count, eval.Sum(e => (long)e.Length), Out);
    }

    /// <summary>
    /// Held-out perplexity of the model as it would run: the engine's forward with the skips, and with QAT on the
    /// ternary (I2S) kernels with per-token int8 activations, i.e. post-training quantization of these weights.
    /// </summary>
    public static double Perplexity(LlamaModel model, IReadOnlyList<int[]> sequences, ModuleSkips skips, bool qat, int threads)
    {
        using var ternary = qat ? TernaryModel.Quantize(model, LowBitFormat.I2S, threads) : null;
        var ctx = new ForwardContext { Skips = skips, Linear = ternary, Threads = threads };
        int vocab = model.Config.Vocab;
        double nll = 0;
        long count = 0;
        foreach (var seq in sequences)
        {
            var (logits, _) = model.Forward(seq, 0, ctx);
            for (int i = 0; i + 1 < seq.Length; i++)
            {
                var row = logits.AsSpan(i * vocab, vocab);
                float max = float.NegativeInfinity;
                foreach (var v in row) max = Math.Max(max, v);
                double sum = 0;
                foreach (var v in row) sum += Math.Exp(v - max);
                nll += max + Math.Log(sum) - row[seq[i + 1]];
                count++;
            }
        }
        return Math.Exp(nll / count);
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
