using System.Diagnostics;
using System.Numerics.Tensors;
using Workbench.Engine.Text;

namespace Workbench.Engine.Models;

/// <summary>
/// The result of a generation: the text as llama2.c's run.c prints it (prompt included), the ids, timings, and why it
/// stopped: "eos" (the model chose an end-of-sequence id, not included in the tokens) or "steps" (all positions ran).
/// </summary>
public sealed record GenerationResult(string Text, int[] Tokens, int PromptTokens, double PrefillTokensPerSecond, double DecodeTokensPerSecond,
    string Stop = "steps");

/// <summary>A loaded model of any kind, with its name and card.</summary>
public abstract class LoadedModel
{
    public abstract string Name { get; }
    public abstract ITransformerModel Model { get; }
    public ModelCard Card => Model.Card;
    public ModelConfig Config => Model.Config;
}

/// <summary>
/// A decoder with its tokenizer: generation and next-token distributions. The tokenizer may be absent (a Hugging Face
/// folder without tokenizer files): everything that takes token ids still works, and what needs text says so.
/// <paramref name="eos"/>: the checkpoint's end-of-sequence ids (<see cref="EndOfSequence"/>); null keeps llama2.c's
/// convention, generation stops at BOS.
/// </summary>
public sealed class Decoder(string name, LlamaModel model, ITextTokenizer? tokenizer, ModuleSkips? pruned = null, IReadOnlyList<int>? eos = null) : LoadedModel
{
    public override string Name => name;
    /// <summary>The ids generation stops at; null: llama2.c's BOS-stop.</summary>
    public IReadOnlyList<int>? EosIds => eos;
    /// <summary>Modules a pruned checkpoint dropped (LLM-Drop's drop_attn_list / drop_mlp_list); skipped by default.</summary>
    public ModuleSkips Pruned { get; } = pruned ?? ModuleSkips.None;
    public override LlamaModel Model => model;
    public ITextTokenizer Tokenizer => tokenizer ?? throw new InvalidOperationException(
        $"{name} has no tokenizer (no tokenizer.model, tokenizer.json or tokenizer.bin beside it): pass --tokenizer PATH, or give token ids");
    public bool HasTokenizer => tokenizer is not null;

    /// <summary>
    /// Generates as llama2.c's run.c does: <paramref name="steps"/> counts positions including BOS; the prompt is
    /// forced, then tokens are chosen greedily (temperature 0) or sampled (seeded); generation stops at the model's
    /// end-of-sequence ids (<see cref="EosIds"/>; llama2.c checkpoints: at BOS) unless <paramref name="ignoreEos"/>.
    /// The prompt is prefilled in one pass, then decoded one token at a time with the KV cache.
    /// </summary>
    public GenerationResult Generate(string prompt, int steps, float temperature = 0f, int seed = 42, ModuleSkips? skips = null,
        IProgress<int>? progress = null, CancellationToken cancel = default, bool ignoreEos = false)
    {
        var promptIds = Tokenizer.Encode(prompt, bos: true);
        return Generate(promptIds, steps, temperature, seed, skips, progress, cancel, ignoreEos);
    }

    /// <summary>
    /// <see cref="Generate(string, int, float, int, ModuleSkips?, IProgress{int}?, CancellationToken, bool)"/> from token
    /// ids (nothing added), so a checkpoint without a tokenizer generates too (Text is empty then).
    /// </summary>
    public GenerationResult Generate(int[] promptIds, int steps, float temperature = 0f, int seed = 42, ModuleSkips? skips = null,
        IProgress<int>? progress = null, CancellationToken cancel = default, bool ignoreEos = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(steps);
        ArgumentOutOfRangeException.ThrowIfZero(promptIds.Length);
        // Infinity would divide every logit to 0 (uniform noise), NaN poisons the softmax: only finite values >= 0.
        if (!(temperature >= 0 && float.IsFinite(temperature)))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "must be a finite number >= 0");
        var stops = ignoreEos ? [] : eos?.ToArray() ?? [Tokenizer.BosId];
        steps = Math.Min(steps, Model.Config.MaxSeq);
        var rng = new Random(seed);
        var ctx = new ForwardContext { Cache = KvCache.For(Model.Config, steps), Skips = skips ?? Pruned, Cancellation = cancel };
        var tokens = new List<int> { promptIds[0] };
        int nPrefill = Math.Min(promptIds.Length, steps);
        var sw = Stopwatch.StartNew();
        // Prefill positions 0..nPrefill-1; the last row's logits choose position nPrefill.
        var (logits, _) = Model.Forward(promptIds.AsSpan(0, nPrefill), 0, ctx, allRows: false);
        double prefill = nPrefill / sw.Elapsed.TotalSeconds;
        for (int i = 1; i < nPrefill; i++) tokens.Add(promptIds[i]);
        sw.Restart();
        int decoded = 0, forwards = nPrefill;
        string stop = "steps";
        if (promptIds.Length > nPrefill) tokens.Add(promptIds[nPrefill]); // run.c forces prompt tokens even at the last step
        else
            while (true)
            {
                // run.c: every forward pass (position) yields one printed token; `steps` forward passes in all.
                int next = Sample(logits, temperature, rng);
                if (Array.IndexOf(stops, next) >= 0) { stop = "eos"; break; }
                tokens.Add(next);
                progress?.Report(tokens.Count);
                if (forwards >= steps) break;
                (logits, _) = Model.Forward([next], forwards, ctx, allRows: false);
                forwards++;
                decoded++;
            }
        double decode = decoded == 0 ? 0 : decoded / sw.Elapsed.TotalSeconds;
        var ids = tokens.ToArray();
        return new GenerationResult(HasTokenizer ? Tokenizer.Decode(ids) : "", ids, promptIds.Length, prefill, decode, stop);
    }

    /// <summary>Logits for every position of <paramref name="tokens"/> ([n, vocab]) in one prefill pass.</summary>
    public float[] Logits(ReadOnlySpan<int> tokens, ForwardContext? ctx = null) =>
        Model.Forward(tokens, 0, ctx ?? new ForwardContext { Skips = Pruned }).Logits;

    public static int Sample(ReadOnlySpan<float> logits, float temperature, Random rng)
    {
        if (temperature == 0) return Tensors.Ops.IndexOfMax(logits);
        var p = new float[logits.Length];
        TensorPrimitives.Divide(logits, temperature, p);
        Tensors.Ops.Softmax(p);
        double coin = rng.NextDouble(), cdf = 0;
        for (int i = 0; i < p.Length; i++)
        {
            cdf += p[i];
            if (coin < cdf) return i;
        }
        return p.Length - 1;
    }
}

/// <summary>A BERT-family encoder with its WordPiece tokenizer: sentence embeddings by mean pooling.</summary>
public sealed class Encoder(string name, BertModel model, WordPieceTokenizer tokenizer) : LoadedModel
{
    public override string Name => name;
    public override BertModel Model => model;
    public WordPieceTokenizer Tokenizer => tokenizer;

    public float[] Embed(string text, ForwardContext? ctx = null) => BertModel.MeanPool(Model.Forward(tokenizer.Encode(text), ctx ?? new ForwardContext()));

    public float[][] Embed(IEnumerable<string> texts, ForwardContext? ctx = null) =>
        Model.Forward(texts.Select(t => tokenizer.Encode(t)).ToArray(), ctx ?? new ForwardContext()).Select(BertModel.MeanPool).ToArray();

    /// <summary>Pairwise cosine similarities of the vectors.</summary>
    public static float[][] CosineMatrix(IReadOnlyList<float[]> v) =>
        v.Select(a => v.Select(b => TensorPrimitives.CosineSimilarity(a, b)).ToArray()).ToArray();
}

/// <summary>A vision transformer classifier (the bundled CIFAR-10 ViT, a ViT-NumPy .npz in its layout, or a Hugging Face ViTForImageClassification folder).</summary>
public sealed class ImageClassifier(string name, VitModel model) : LoadedModel
{
    public override string Name => name;
    public override VitModel Model => model;
}

/// <summary>A vision-language model (LLaVA): an image and token ids in, next-token logits out; the tokenizer may be absent.</summary>
public sealed class VisionLanguageModel(string name, LlavaModel model, ITextTokenizer? tokenizer) : LoadedModel
{
    public override string Name => name;
    public override LlavaModel Model => model;
    public ITextTokenizer? Tokenizer => tokenizer;

    /// <summary>
    /// The ids with the image's placeholder filled: either exactly <see cref="LlavaModel.ImageTokens"/> ids of
    /// config.json's image_token_index, or one, which is expanded to that many (as LLaVA's processor expands &lt;image&gt;).
    /// </summary>
    public int[] WithImageTokens(int[] ids)
    {
        int id = Model.ImageTokenId, n = Model.ImageTokens, count = ids.Count(t => t == id);
        if (count == n) return ids;
        if (count == 1) return [.. ids.TakeWhile(t => t != id), .. Enumerable.Repeat(id, n), .. ids.SkipWhile(t => t != id).Skip(1)];
        throw new ArgumentException($"the ids hold {count} image tokens (image_token_index {id}); give one (expanded) or {n}, one image's features");
    }

    /// <summary>
    /// A prompt's ids with BOS: the image goes where the text says &lt;image&gt; (once), else right after BOS.
    /// </summary>
    public int[] EncodePrompt(string text)
    {
        var tok = Tokenizer ?? throw new InvalidOperationException($"{Name} has no tokenizer (no tokenizer.model, tokenizer.json or tokenizer.bin beside it): pass --tokenizer PATH, or give token ids");
        int at = text.IndexOf("<image>", StringComparison.Ordinal);
        string before = at < 0 ? "" : text[..at], after = at < 0 ? text : text[(at + "<image>".Length)..];
        var head = tok.Encode(before, bos: true);
        return [.. head, .. Enumerable.Repeat(Model.ImageTokenId, Model.ImageTokens), .. after.Length == 0 ? [] : tok.Encode(after, bos: false)];
    }

    /// <summary>Logits for every position ([n, vocab]) with the image in the input (null: the ids alone, as transformers without pixel_values).</summary>
    public float[] Logits(int[] tokens, ModelInput? image, ForwardContext? ctx = null) =>
        Model.Forward(image is null ? new TokenInput(tokens) : ModelInput.Of(tokens, image), ctx ?? new ForwardContext()).Output;
}
