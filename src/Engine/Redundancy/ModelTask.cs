using System.Numerics.Tensors;
using Workbench.Engine.Models;
using Workbench.Engine.Requests;
using Workbench.Engine.Vision;

namespace Workbench.Engine.Redundancy;

/// <summary>
/// What an analysis feeds a loaded model and judges it by, asked of the loaded model's task (never its class):
/// text decoders and encoders (<see cref="TextTask"/>: packed token sequences or sentences), image classifiers
/// (<see cref="ImageClassifierTask"/>: images brought to the model's side and normalised by its own preprocessing;
/// judged by the class distribution) and vision-language models (<see cref="VisionLanguageTask"/>: an image with a
/// prompt; judged by the next-token distributions at the text positions).
/// </summary>
public abstract record ModelTask(LoadedModel Loaded)
{
    public ITransformerModel Model => Loaded.Model;
    /// <summary>decoder, encoder, image classifier or vision-language.</summary>
    public abstract string Kind { get; }

    /// <summary>The task of a loaded model; a model of no known task is refused, naming <paramref name="option"/>.</summary>
    public static ModelTask Of(LoadedModel model, string option = "--model") => model switch
    {
        null => throw new ArgumentNullException(nameof(model)),
        Decoder or Encoder => TextTask.Of(model, option),
        ImageClassifier c => new ImageClassifierTask(c),
        VisionLanguageModel v => new VisionLanguageTask(v),
        _ => throw new OptionException(option, $"{option} '{model.Name}' is a {model.GetType().Name}: not a decoder, encoder, image classifier or vision-language model"),
    };
}

/// <summary>
/// A task fed images: how an image of a set becomes the model's input, which rows of the readout are judged, and
/// whether the set's labels name the model's classes.
/// </summary>
public abstract record ImageTask(LoadedModel Loaded) : ModelTask(Loaded)
{
    /// <summary>The square side the model's image input takes.</summary>
    public abstract int Side { get; }
    /// <summary>Where the model's pixel mean / std come from (its preprocessor config, or the defaults it was built with).</summary>
    public abstract string NormSource { get; }
    /// <summary>How every image is brought to the model, as the reports say it.</summary>
    public string Preprocessing => $"centre crop, resized to {Side}x{Side}, normalised with {NormSource}";

    /// <summary>The model input for image <paramref name="index"/> of a set (pixels at <see cref="Side"/>); <paramref name="seed"/> draws any prompt.</summary>
    public abstract ModelInput Input(byte[] pixels, int index, int seed);

    /// <summary>The rows of the readout that are judged and the width of each (classes or vocabulary).</summary>
    public abstract (int[] Rows, int Width) Judged(ModelInput input);

    /// <summary>The class index of each image of the set when its labels name this model's classes, else null (no accuracy).</summary>
    public virtual int[]? ClassIndices(ImageSet images) => null;

    /// <summary>The inputs of a set of images, in order (image i drawing prompt <paramref name="first"/> + i).</summary>
    public ModelInput[] Inputs(ImageSet images, int seed, int first = 0) =>
        Enumerable.Range(0, images.Count).Select(i => Input(images.Pixels(i, Side), first + i, seed)).ToArray();
}

/// <summary>An image classifier: the image alone; its class logits judged; accuracy where the images' labels name its classes.</summary>
public sealed record ImageClassifierTask(ImageClassifier Classifier) : ImageTask(Classifier)
{
    public override string Kind => "image classifier";
    public override int Side => Classifier.Model.Image;
    public override string NormSource => Classifier.Model.PixelNormSource;
    public override ModelInput Input(byte[] pixels, int index, int seed) => ModelInput.Of(pixels);
    public override (int[] Rows, int Width) Judged(ModelInput input) => ([0], Classifier.Config.Vocab);

    public override int[]? ClassIndices(ImageSet images)
    {
        if (images.Labels is not { } labels || Classifier.Model.Labels is not { } classes) return null;
        var idx = labels.Select(l => classes.ToList().FindIndex(c => string.Equals(c, l, StringComparison.OrdinalIgnoreCase))).ToArray();
        return idx.All(i => i >= 0) ? idx : null;
    }
}

/// <summary>
/// A vision-language model (LLaVA): each image with a prompt around its image tokens; the next-token distributions
/// at the prompt's text positions judged (the image positions predict nothing the model was trained to predict).
/// Without a tokenizer (and the goldens have none) the prompt is seeded random ids, as the token-drop verbs draw them:
/// 4 ids, the image's tokens, 8 ids.
/// </summary>
public sealed record VisionLanguageTask(VisionLanguageModel Vlm) : ImageTask(Vlm)
{
    public const int IdsBefore = 4, IdsAfter = 8;
    public override string Kind => "vision-language";
    public override int Side => Vlm.Model.Tower.Image;
    public override string NormSource => Vlm.Model.Tower.PixelNormSource;
    public int PromptTokens => IdsBefore + Vlm.Model.ImageTokens + IdsAfter;

    /// <summary>Prompt <paramref name="index"/> of a seed: random ids uniform over [min(3, vocab - 1), vocab) but the image token, around the image tokens.</summary>
    public int[] Prompt(int index, int seed)
    {
        var m = Vlm.Model;
        var rng = new Random(unchecked(seed * 1_000_003 + index));
        int Draw() { int t; do t = rng.Next(Math.Min(3, m.Config.Vocab - 1), m.Config.Vocab); while (t == m.ImageTokenId); return t; }
        return [.. Enumerable.Range(0, IdsBefore).Select(_ => Draw()), .. Enumerable.Repeat(m.ImageTokenId, m.ImageTokens), .. Enumerable.Range(0, IdsAfter).Select(_ => Draw())];
    }

    public override ModelInput Input(byte[] pixels, int index, int seed) => ModelInput.Of(Prompt(index, seed), ModelInput.Of(pixels));

    public override (int[] Rows, int Width) Judged(ModelInput input)
    {
        var tokens = ((MultimodalInput)input).Tokens;
        return (Enumerable.Range(0, tokens.Length).Where(i => tokens[i] != Vlm.Model.ImageTokenId).ToArray(), Vlm.Config.Vocab);
    }
}

/// <summary>
/// Images (and prompts) fed to an image task, with where they came from: what calibration and evaluation are made of
/// for image classifiers and vision-language models. <see cref="Tokens"/> counts the rows of the residual stream
/// (patches + CLS, or image + text tokens).
/// </summary>
public sealed record ImageSamples(string Part, ImageSet Images, IReadOnlyList<ModelInput> Inputs, long Tokens, string Preprocessing)
{
    public static ImageSamples Of(ImageTask task, ImageSet images, int seed, string part, int first = 0)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(images);
        var inputs = task.Inputs(images, seed, first);
        long tokens = inputs.Sum(i => (long)(i is MultimodalInput m ? m.Tokens.Length : task.Model.Config.MaxSeq));
        return new ImageSamples(part, images, inputs, tokens, task.Preprocessing);
    }

    public override string ToString() => $"{Part}: {Inputs.Count} images ({Tokens} tokens) from {Images.Source}; {Preprocessing}";
}

/// <summary>
/// Quality of a changed model (modules dropped, linears quantized: any <see cref="ForwardContext"/>) against the
/// unchanged one on held-out images: over every judged row, the mean KL(full || changed) of the softmax distributions
/// (class distribution, or next token at text positions) and how often their top-1 agree; for classifiers whose images
/// carry labels naming their classes, top-1 accuracy of both. The unchanged model's outputs are computed once.
/// </summary>
public sealed class ImageEvaluation
{
    public ImageTask Task { get; }
    public ImageSamples Samples { get; }
    private readonly int[]? _classes;
    private readonly float[][][] _full; // per input, per judged row: log-softmax
    private readonly double? _accuracyFull;

    public ImageEvaluation(ImageTask task, ImageSamples samples)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Inputs.Count == 0) throw new ArgumentException("no evaluation images", nameof(samples));
        Task = task;
        Samples = samples;
        _classes = task.ClassIndices(samples.Images);
        _full = samples.Inputs.Select(i => Run(i, new ForwardContext())).ToArray();
        _accuracyFull = _classes is null ? null : Accuracy(_full);
    }

    /// <summary>True when accuracy against labels is reported.</summary>
    public bool Labelled => _classes is not null;

    public QualityReport Quality(ForwardContext changed)
    {
        ArgumentNullException.ThrowIfNull(changed);
        double kl = 0, agree = 0;
        long positions = 0;
        var runs = new float[Samples.Inputs.Count][][];
        for (int s = 0; s < runs.Length; s++)
        {
            runs[s] = Run(Samples.Inputs[s], changed);
            for (int r = 0; r < runs[s].Length; r++)
            {
                var lp = _full[s][r];
                var lq = runs[s][r];
                double k = 0;
                for (int t = 0; t < lp.Length; t++) k += Math.Exp(lp[t]) * ((double)lp[t] - lq[t]);
                kl += k;
                if (TensorPrimitives.IndexOfMax(lp) == TensorPrimitives.IndexOfMax(lq)) agree++;
                positions++;
            }
        }
        return new QualityReport(kl / positions, agree / positions, null, null, null, null, positions)
        {
            Accuracy = _classes is null ? null : Accuracy(runs), AccuracyFull = _accuracyFull,
        };
    }

    private double Accuracy(float[][][] runs) =>
        Enumerable.Range(0, runs.Length).Count(s => TensorPrimitives.IndexOfMax(runs[s][0]) == _classes![s]) / (double)runs.Length;

    private float[][] Run(ModelInput input, ForwardContext ctx)
    {
        var output = Task.Model.Forward(input, ctx).Output;
        var (rows, width) = Task.Judged(input);
        return rows.Select(r => DropEvaluator.LogSoftmaxRows(output.AsSpan(r * width, width).ToArray(), width)).ToArray();
    }
}
