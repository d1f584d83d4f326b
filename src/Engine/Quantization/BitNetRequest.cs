using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;
using Workbench.Engine.Requests;
using Workbench.Engine.Vision;

namespace Workbench.Engine.Quantization;

/// <summary>
/// <c>workbench bitnet</c> and <c>#!bitnet</c>: ternary (BitNet b1.58) post-training quantization of a model's block
/// linears, the lossless check of the packed kernels on real activations, and the quality cost against fp32
/// (decoders: KL, top-1 agreement, perplexity on held-out TinyStories; encoders: embedding cosine on held-out
/// Pride and Prejudice sentences; image classifiers: agreement, KL and, where the labels name their classes, top-1
/// accuracy on held-out images (default 200 CIFAR-10 test images, resized to the model's side); vision-language models:
/// KL and top-1 of the next token at the text positions of images with seeded prompts). The task is asked of the loaded
/// model (<see cref="ModelTask"/>); LLaVA's quantized linears are its language model's (<see cref="ITransformerModel.BlockLinears"/>).
/// </summary>
public sealed record BitNetRequest : IRequest<TernaryReport>
{
    /// <summary>A bundled model name or a path (<c>--model</c>).</summary>
    public required string Model { get; init; }
    /// <summary>Packed ternary format as typed (<c>--format</c>): a registered ternary format name.</summary>
    public required string Format { get; init; }
    /// <summary>Kernel threads (<c>--threads</c>), 1..processor count.</summary>
    public int Threads { get; init; } = 1;
    /// <summary>
    /// <c>--images</c> (image classifiers and vision-language models): the evaluation images, PNG / JPEG files or folders,
    /// comma-separated; default 200 of the bundled CIFAR-10 test images spread evenly over the classes.
    /// </summary>
    public string? Images { get; init; }

    /// <summary>Stages reported to the progress of <see cref="Run(IProgress{RunProgress}?, CancellationToken)"/>.</summary>
    public const int Stages = 3;

    public void Validate() => Parsed();

    private LowBitFormat Parsed()
    {
        if (string.IsNullOrWhiteSpace(Model)) throw new OptionException("--model", "--model is required (a bundled name or a path).");
        var format = FormatOption.Parse(Format, "--format", ternaryOnly: true);
        FormatOption.CheckRange(Threads, "--threads", 1, Environment.ProcessorCount);
        return format;
    }

    public TernaryReport Run(IProgress<RunProgress>? progress = null, CancellationToken cancel = default)
    {
        Parsed();
        return Run(ModelHub.Load(Model), progress, cancel);
    }

    /// <summary>
    /// Runs on an already loaded model: quantizes its block linears, checks the kernels losslessly on the activations of
    /// the first held-out text, and measures the quality cost on the held-out texts. Cancellation is checked between stages.
    /// </summary>
    public TernaryReport Run(LoadedModel model, IProgress<RunProgress>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        var format = Parsed();
        // Quality needs a task: next-token logits (decoder), a sentence embedding (encoder), class logits, or next-token logits after an image.
        var task = ModelTask.Of(model);
        ImageSamples? images = null;
        if (task is ImageTask it)
            images = ImageSamples.Of(it, Images is null ? HeldOutImages() : ImageSet.Load(Images), 0, "held-out images");
        else if (Images is not null)
            throw new OptionException("--images", $"--images works with image classifiers and vision-language models; '{model.Name}' is a {task.Kind}, judged on held-out text");

        progress?.Report(new RunProgress("quantizing", 0, Stages));
        using var ternary = TernaryModel.Quantize(model, format, Threads);
        cancel.ThrowIfCancellationRequested();
        progress?.Report(new RunProgress("lossless check", 1, Stages));
        LosslessReport lossless;
        DecoderQuality? dq = null;
        EncoderQuality? eq = null;
        ClassifierQuality? cq = null;
        VisionLanguageQuality? vq = null;
        if (task is ImageTask imageTask)
        {
            lossless = ternary.CheckLossless(ctx => imageTask.Model.Forward(images!.Inputs[0], ctx));
            cancel.ThrowIfCancellationRequested();
            progress?.Report(new RunProgress("quality against fp32", 2, Stages));
            var q = new ImageEvaluation(imageTask, images!).Quality(ternary.Context());
            if (imageTask is VisionLanguageTask)
                vq = new VisionLanguageQuality(model.Name, format, images!.Inputs.Count, q.Positions, q.Kl!.Value, q.Top1Agreement!.Value);
            else
                cq = new ClassifierQuality(model.Name, format, images!.Inputs.Count, q.Accuracy, q.AccuracyFull, q.Top1Agreement!.Value) { MeanKl = q.Kl };
        }
        else if (model is Decoder d)
        {
            var texts = TernaryQuality.HeldOutStories();
            var ids = d.Tokenizer.Encode(texts[0], bos: true);
            lossless = ternary.CheckLossless(ctx => d.Logits(ids.AsSpan(0, Math.Min(ids.Length, d.Config.MaxSeq)), ctx));
            cancel.ThrowIfCancellationRequested();
            progress?.Report(new RunProgress("quality against fp32", 2, Stages));
            dq = TernaryQuality.Evaluate(d, ternary, texts);
        }
        else
        {
            var e = (Encoder)model;
            var sentences = TernaryQuality.HeldOutSentences();
            lossless = ternary.CheckLossless(ctx => e.Embed(sentences[0], ctx));
            cancel.ThrowIfCancellationRequested();
            progress?.Report(new RunProgress("quality against fp32", 2, Stages));
            eq = TernaryQuality.Evaluate(e, ternary, sentences);
        }
        progress?.Report(new RunProgress("done", 3, Stages));
        return new TernaryReport(model.Name, task.Kind, format, ternary.Path, Threads,
            ternary.Layers, lossless, dq, eq, ternary.Fp32LinearBytes, ternary.PackedLinearBytes, ternary.KeptFp32Bytes, cq, vq);
    }

    /// <summary>The default evaluation images: <see cref="TernaryQuality.HeldOutImages"/>'s 200 CIFAR-10 test images, spread evenly over the set.</summary>
    public static ImageSet HeldOutImages(int count = 200)
    {
        var set = ImageSet.Cifar10();
        count = Math.Clamp(count, 1, set.Count);
        return set.Subset(Enumerable.Range(0, count).Select(i => (int)((long)i * set.Count / count)).ToArray(), $"{count} of {set.Source}, spread evenly");
    }
}
