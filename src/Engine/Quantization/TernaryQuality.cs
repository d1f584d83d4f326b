using System.Numerics.Tensors;
using System.Text.RegularExpressions;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;

namespace Workbench.Engine.Quantization;

/// <summary>
/// Next-token agreement of a ternary decoder with its fp32 original on held-out text: mean KL(p_fp32 || p_ternary)
/// in nats over every predicted position, the share of positions whose argmax agrees, and the perplexity of the
/// actual next tokens under each model.
/// </summary>
public sealed record DecoderQuality(string Model, LowBitFormat Format, int Sequences, int Positions,
    double MeanKl, double Top1Agreement, double Perplexity, double PerplexityFp32);

/// <summary>Cosine of each sentence's ternary embedding with its fp32 embedding (mean pooled), mean and minimum.</summary>
public sealed record EncoderQuality(string Model, LowBitFormat Format, int Sentences, double MeanCosine, double MinCosine);

/// <summary>
/// Top-1 accuracy of a ternary image classifier and of its fp32 original on the same images (null when the images carry
/// no labels naming the model's classes), how often they agree, and the mean KL(fp32 || ternary) of the class distributions.
/// </summary>
public sealed record ClassifierQuality(string Model, LowBitFormat Format, int Images, double? Accuracy, double? AccuracyFp32, double Agreement)
{
    public double? MeanKl { get; init; }
}

/// <summary>A ternary vision-language model against fp32 on images with prompts: mean KL and top-1 agreement of the next-token distributions at the text positions.</summary>
public sealed record VisionLanguageQuality(string Model, LowBitFormat Format, int Prompts, long Positions, double MeanKl, double Top1Agreement);

/// <summary>The quality cost of ternary post-training quantization against the fp32 model.</summary>
public static class TernaryQuality
{
    /// <summary>
    /// Held-out decoder text: the last <paramref name="count"/> paragraphs of the bundled TinyStories validation file
    /// (blank-line separated). Fixed, and not used for any calibration: ternary PTQ has none.
    /// </summary>
    public static IReadOnlyList<string> HeldOutStories(int count = 8)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var paragraphs = Regex.Split(File.ReadAllText(Bundled.TinyStories).Replace("\r\n", "\n"), @"\n\s*\n")
            .Select(p => p.Trim()).Where(p => p.Length > 0).ToArray();
        return paragraphs[^Math.Min(count, paragraphs.Length)..];
    }

    /// <summary>
    /// Encoder sentences: the last <paramref name="count"/> sentences of 6 to 40 words in the bundled Pride and
    /// Prejudice text (split at . ! ?), so they differ from the opening sentences other checks use.
    /// </summary>
    public static IReadOnlyList<string> HeldOutSentences(int count = 20)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var text = Regex.Replace(File.ReadAllText(Bundled.PrideAndPrejudice), @"\s+", " ");
        var sentences = Regex.Split(text, @"(?<=[.!?])\s+")
            .Select(s => s.Trim())
            .Where(s => { int words = s.Split(' ').Length; return words is >= 6 and <= 40 && !s.Contains('*'); })
            .ToArray();
        return sentences[^Math.Min(count, sentences.Length)..];
    }

    public static DecoderQuality Evaluate(Decoder decoder, TernaryModel ternary, IReadOnlyList<string>? texts = null)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        ArgumentNullException.ThrowIfNull(ternary);
        texts ??= HeldOutStories();
        int vocab = decoder.Config.Vocab, positions = 0, agree = 0;
        double kl = 0, nll = 0, nllFp32 = 0;
        var lp = new float[vocab];
        var lq = new float[vocab];
        foreach (var text in texts)
        {
            var ids = decoder.Tokenizer.Encode(text, bos: true);
            if (ids.Length > decoder.Config.MaxSeq) ids = ids[..decoder.Config.MaxSeq];
            if (ids.Length < 2) continue;
            var fp = decoder.Logits(ids, new ForwardContext());
            var tq = decoder.Logits(ids, ternary.Context());
            for (int i = 0; i + 1 < ids.Length; i++)
            {
                LogSoftmax(fp.AsSpan(i * vocab, vocab), lp);
                LogSoftmax(tq.AsSpan(i * vocab, vocab), lq);
                double d = 0;
                for (int v = 0; v < vocab; v++) d += Math.Exp(lp[v]) * ((double)lp[v] - lq[v]);
                kl += d;
                if (TensorPrimitives.IndexOfMax(lp) == TensorPrimitives.IndexOfMax(lq)) agree++;
                nll -= lq[ids[i + 1]];
                nllFp32 -= lp[ids[i + 1]];
                positions++;
            }
        }
        if (positions == 0) throw new ArgumentException("The texts give no position to predict.", nameof(texts));
        return new DecoderQuality(decoder.Name, ternary.Format, texts.Count, positions, kl / positions, agree / (double)positions,
            Math.Exp(nll / positions), Math.Exp(nllFp32 / positions));
    }

    public static EncoderQuality Evaluate(Encoder encoder, TernaryModel ternary, IReadOnlyList<string>? sentences = null)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(ternary);
        sentences ??= HeldOutSentences();
        if (sentences.Count == 0) throw new ArgumentException("No sentences.", nameof(sentences));
        var cos = sentences.Select(s => (double)TensorPrimitives.CosineSimilarity(encoder.Embed(s), encoder.Embed(s, ternary.Context()))).ToArray();
        return new EncoderQuality(encoder.Name, ternary.Format, cos.Length, cos.Average(), cos.Min());
    }

    /// <summary>
    /// Held-out images: <paramref name="count"/> images of the bundled CIFAR-10 test subset, spread evenly over it (it is
    /// ordered by class, so every class is represented). Fixed, and not used for any calibration.
    /// </summary>
    public static (byte[][] Images, int[] Labels) HeldOutImages(int count = 200)
    {
        var set = Vision.Cifar10Set.LoadBundled();
        count = Math.Clamp(count, 1, set.Count);
        var idx = Enumerable.Range(0, count).Select(i => (int)((long)i * set.Count / count)).ToArray();
        return (idx.Select(i => set.Pixels(i).ToArray()).ToArray(), idx.Select(i => (int)set.Labels[i]).ToArray());
    }

    public static ClassifierQuality Evaluate(ImageClassifier classifier, TernaryModel ternary, byte[][]? images = null, int[]? labels = null)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        ArgumentNullException.ThrowIfNull(ternary);
        if (images is null || labels is null) (images, labels) = HeldOutImages();
        if (images.Length == 0 || images.Length != labels.Length) throw new ArgumentException($"{images.Length} images for {labels.Length} labels.", nameof(labels));
        var model = classifier.Model;
        int right = 0, rightFp32 = 0, agree = 0;
        for (int i = 0; i < images.Length; i++)
        {
            int fp = TensorPrimitives.IndexOfMax(model.Forward(ModelInput.Of(images[i]), new ForwardContext()).Output);
            int tq = TensorPrimitives.IndexOfMax(model.Forward(ModelInput.Of(images[i]), ternary.Context()).Output);
            if (fp == labels[i]) rightFp32++;
            if (tq == labels[i]) right++;
            if (fp == tq) agree++;
        }
        double n = images.Length;
        return new ClassifierQuality(classifier.Name, ternary.Format, images.Length, right / n, rightFp32 / n, agree / n);
    }

    /// <summary>log softmax in float with the max subtracted.</summary>
    private static void LogSoftmax(ReadOnlySpan<float> logits, Span<float> output)
    {
        float max = TensorPrimitives.Max(logits);
        double sum = 0;
        foreach (var l in logits) sum += Math.Exp(l - max);
        float logZ = max + (float)Math.Log(sum);
        TensorPrimitives.Subtract(logits, logZ, output);
    }
}
