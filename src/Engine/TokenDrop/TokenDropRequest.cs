using Workbench.Engine.Models;
using Workbench.Engine.Requests;
using Workbench.Engine.Vision;

namespace Workbench.Engine.TokenDrop;

/// <summary>The two token-drop techniques a request runs.</summary>
public enum TokenDropMethod
{
    /// <summary>PyramidDrop: several stage boundaries (<c>--layers</c>), one keep ratio or one per stage.</summary>
    Pyramid,
    /// <summary>FastV: one boundary (<c>--layer</c> K), one keep ratio.</summary>
    FastV,
}

/// <summary>
/// What one run produced: the evaluation of the ViT on an image set, of one image stage by stage, of a decoder on
/// prompts, or of an encoder on texts; exactly one of them is set (<see cref="Value"/>).
/// </summary>
public sealed record TokenDropResult(string Model, TokenDropMethod Method, PyramidSchedule Schedule, DropRanking Ranking, int Seed,
    VitDropEvaluation? Vit = null, VitImageDrop? Image = null, LmDropEvaluation? Decoder = null, EncoderDropEvaluation? Encoder = null,
    VlmDropEvaluation? VisionLanguage = null)
{
    public object Value => (object?)Vit ?? (object?)Image ?? (object?)Decoder ?? (object?)VisionLanguage ?? Encoder!;
}

/// <summary>
/// One PyramidDrop or FastV run, the request behind <c>workbench pyramid-drop</c> / <c>workbench fastv</c> and
/// <c>#!pyramid-drop</c> / <c>#!fastv</c>. Options are text where the magics give text, with the CLI's names; the
/// defaults: rank attention, seed 0, every image of the set, 8 decoder prompts (about 1,000 characters of context each)
/// or 16 encoder texts (about 500).
/// </summary>
public sealed record TokenDropRequest : IRequest<TokenDropResult>
{
    public const int DefaultDecoderPrompts = 8, DefaultEncoderTexts = 16, DecoderContextChars = 1000, EncoderContextChars = 500;

    public required TokenDropMethod Method { get; init; }
    /// <summary><c>--model</c>: vit-cifar10, stories260K, babyllama, minilm, or a model path.</summary>
    public string? Model { get; init; }
    /// <summary><c>--layers</c> (pyramid-drop): stage boundaries, e.g. "1,2,3".</summary>
    public string? Layers { get; init; }
    /// <summary><c>--layer</c> (fastv): K, drop after this many layers.</summary>
    public string? Layer { get; init; }
    /// <summary><c>--keep</c>: keep ratio in (0, 1]; pyramid-drop takes one per stage as well.</summary>
    public string? Keep { get; init; }
    /// <summary><c>--rank</c>: attention | random | least.</summary>
    public string? Rank { get; init; }
    /// <summary><c>--seed</c>: seed of the random ranking.</summary>
    public int Seed { get; init; }
    /// <summary><c>--data</c>: a CIFAR-10 folder (ViT) or a text file of blank-line-separated paragraphs (language models).</summary>
    public string? Data { get; init; }
    /// <summary><c>--limit</c>: N images (ViT, spread evenly over the set) or N prompts / texts (language models).</summary>
    public int? Limit { get; init; }
    /// <summary><c>--images</c>: N images (ViT only).</summary>
    public int? Images { get; init; }
    /// <summary><c>--prompts</c>: N prompts or texts (language models only).</summary>
    public int? Prompts { get; init; }
    /// <summary>
    /// <c>--image</c>: one image to run stage by stage: a PNG/JPEG path or an index into the CIFAR-10 set (ViT); a PNG/JPEG
    /// path (vision-language models; default data/images/chelsea.png).
    /// </summary>
    public string? Image { get; init; }
    /// <summary>
    /// <c>--tokens</c> (vision-language models): the prompt's ids, with the image tokens where the image goes. Default: 4
    /// seeded random ids, the image tokens, 8 seeded random ids (a folder without a tokenizer has no text to encode).
    /// </summary>
    public string? Tokens { get; init; }
    /// <summary>Greedy tokens decoded from each KV cache (vision-language models).</summary>
    public const int VlmGenerate = 8;
    /// <summary>The image a vision-language run uses without <c>--image</c>.</summary>
    public const string DefaultVlmImage = "data/images/chelsea.png";

    private string LayerOption => Method == TokenDropMethod.FastV ? "--layer" : "--layers";
    private string MethodName => Method == TokenDropMethod.FastV ? "fastv" : "pyramid";

    /// <summary>The schedule the options give (checked against the model's depth in <see cref="Run"/>).</summary>
    public PyramidSchedule Schedule()
    {
        int[] boundaries;
        if (Method == TokenDropMethod.FastV)
        {
            int k = Parse.Int(Layer, "--layer") ?? throw new OptionException("--layer", "--layer is required (e.g. --layer 2)");
            boundaries = [k];
        }
        else
        {
            boundaries = Parse.Layers(Layers, "--layers");
            if (boundaries.Length == 0) throw new OptionException("--layers", "--layers is required (e.g. --layers 1,2,3)");
        }
        if (string.IsNullOrWhiteSpace(Keep)) throw new OptionException("--keep", "--keep is required (e.g. --keep 0.5)");
        var keep = Keep.Split(',', StringSplitOptions.TrimEntries).Select(k => Parse.Double(k, "--keep") ?? throw new OptionException("--keep", $"--keep '{Keep}' has an empty ratio")).ToArray();
        if (Method == TokenDropMethod.FastV && keep.Length != 1) throw new OptionException("--keep", $"--keep: fastv takes one ratio, not '{Keep}'");
        try { return new PyramidSchedule(boundaries, keep); }
        catch (ArgumentException e)
        {
            throw new OptionException(e.ParamName == "keepRatios" ? "--keep" : LayerOption, FirstLine(e.Message));
        }
    }

    public DropRanking Ranking => Rank?.Trim().ToLowerInvariant() switch
    {
        null or "" or "attention" => DropRanking.Attention,
        "random" => DropRanking.Random,
        "least" or "leastattended" or "least-attended" => DropRanking.LeastAttended,
        var r => throw new OptionException("--rank", $"--rank must be attention, random or least, not '{r}'"),
    };

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Model)) throw new OptionException("--model", "--model is required (e.g. --model vit-cifar10)");
        _ = Schedule();
        _ = Ranking;
        foreach (var (value, option) in new[] { (Limit, "--limit"), (Images, "--images"), (Prompts, "--prompts") })
            if (value is <= 0) throw new OptionException(option, $"{option} must be positive, not {value}");
        bool vit = VitBundled.IsVit(Model);
        if (vit && Prompts is not null) throw new OptionException("--prompts", $"--prompts works with language models; for {Model} use --images");
        if (!vit && Images is not null) throw new OptionException("--images", $"--images works with the ViT (vit-cifar10); for {Model} use --prompts");
        if (Data is not null)
        {
            // The ViT reads a CIFAR-10 folder, language models a text file: anything else is one line naming --data.
            if (vit && !Directory.Exists(Data)) throw new OptionException("--data", $"--data {Data}: no such folder (the ViT takes a CIFAR-10 folder in the bundled layout)");
            if (!vit && !Text.Corpus.Exists(Data))
                throw new OptionException("--data", Directory.Exists(Data)
                    ? $"--data {Data} is a folder; language models take a text file of blank-line-separated paragraphs"
                    : $"--data {Data}: no such file (a text file, or a bundled corpus: {string.Join(", ", Text.Corpus.BundledNames)})");
        }
    }

    public TokenDropResult Run(IProgress<RunProgress>? progress = null, CancellationToken cancel = default)
    {
        Validate();
        var schedule = Schedule();
        var ranking = Ranking;
        var loaded = ModelHub.Load(Model!);
        try { schedule.Validate(loaded.Config.Layers); }
        catch (ArgumentException e) { throw new OptionException(LayerOption, FirstLine(e.Message)); }
        var result = new TokenDropResult(loaded.Name, Method, schedule, ranking, Seed);
        switch (loaded)
        {
            case ImageClassifier other when other.Model.Image != VitImage.Size:
                throw new OptionException("--model", $"--model {Model}: the ViT takes {other.Model.Image}x{other.Model.Image} images; token dropping on images runs on the CIFAR-10 set and its 32x32 images (vit-cifar10)");
            case ImageClassifier vit when Image is not null:
                return result with { Image = RunImage(vit.Model, schedule, ranking) };
            case ImageClassifier vit:
            {
                var set = Data is null ? Cifar10Set.LoadBundled() : Cifar10Set.Load(Data);
                if ((Images ?? Limit) is { } n && n < set.Count) set = set.Every(set.Count / n).Take(n); // class-balanced subset
                var eval = VitTokenDrop.Evaluate(vit.Model, set, schedule, ranking, Seed, method: MethodName,
                    progress: Report(progress, $"{MethodName} on {set.Count} images", set.Count), cancellation: cancel);
                return result with { Vit = eval };
            }
            case VisionLanguageModel vlm:
                if (Data is not null || Prompts is not null || Limit is not null)
                    throw new OptionException(Data is not null ? "--data" : Prompts is not null ? "--prompts" : "--limit",
                        $"{loaded.Name} is a vision-language model: it takes --image and --tokens, not --data / --prompts / --limit");
                return result with { VisionLanguage = RunVisionLanguage(vlm.Model, schedule, ranking, cancel) };
            case Decoder or Encoder when Image is not null:
                throw new OptionException("--image", $"--image works with the ViT and LLaVA, not {loaded.Name}");
            case Decoder or Encoder or ImageClassifier when Tokens is not null:
                throw new OptionException("--tokens", $"--tokens works with LLaVA (vision-language models), not {loaded.Name}");
            case Decoder dec:
            {
                var prompts = LanguageTokenDrop.TinyStoriesPrompts(Prompts ?? Limit ?? DefaultDecoderPrompts, DecoderContextChars, Data);
                var eval = LanguageTokenDrop.EvaluateDecoder(dec, prompts, schedule, ranking, Seed,
                    progress: Report(progress, $"{MethodName} on {dec.Name}, {prompts.Count} prompts", prompts.Count), cancellation: cancel);
                return result with { Decoder = eval };
            }
            case Encoder enc:
            {
                var texts = LanguageTokenDrop.TinyStoriesPrompts(Prompts ?? Limit ?? DefaultEncoderTexts, EncoderContextChars, Data).Select(p => p.Context).ToList();
                var eval = LanguageTokenDrop.EvaluateEncoder(enc, texts, schedule, ranking, Seed,
                    Report(progress, $"{MethodName} on {enc.Name}, {texts.Count} texts", texts.Count), cancel);
                return result with { Encoder = eval };
            }
            default:
                throw new OptionException("--model", $"--model {Model}: not a decoder, encoder or image classifier");
        }
    }

    private VitImageDrop RunImage(ITransformerModel vit, PyramidSchedule schedule, DropRanking ranking)
    {
        if (int.TryParse(Image, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var index) && !File.Exists(Image))
        {
            var set = Data is null ? Cifar10Set.LoadBundled() : Cifar10Set.Load(Data);
            if (index < 0 || index >= set.Count)
                throw new OptionException("--image", $"--image {index}: the CIFAR-10 set has images 0..{set.Count - 1}");
            return VitImageDrop.Run(vit, set.Image(index), schedule, ranking, Seed, $"CIFAR-10 #{index} ({Cifar10Set.ClassNames[set.Labels[index]]})");
        }
        return VitImageDrop.Run(vit, VitImage.FromFile(Image!), schedule, ranking, Seed, Path.GetFileName(Image!));
    }

    /// <summary>The prompt and image of a vision-language run, checked against the model; then the evaluation.</summary>
    private VlmDropEvaluation RunVisionLanguage(LlavaModel model, PyramidSchedule schedule, DropRanking ranking, CancellationToken cancel)
    {
        int[] tokens;
        if (Tokens is null)
        {
            // No tokenizer in the folder: text ids drawn as the goldens' prompts were (uniform, seeded), around the image.
            var rng = new Random(Seed);
            int Draw() { int t; do t = rng.Next(Math.Min(3, model.Config.Vocab - 1), model.Config.Vocab); while (t == model.ImageTokenId); return t; }
            tokens = [.. Enumerable.Range(0, 4).Select(_ => Draw()), .. Enumerable.Repeat(model.ImageTokenId, model.ImageTokens), .. Enumerable.Range(0, 8).Select(_ => Draw())];
        }
        else
        {
            tokens = Parse.TokenIds(Tokens, "--tokens");
            if (tokens.Length == 0) throw new OptionException("--tokens", "--tokens is empty");
            foreach (var t in tokens)
                if (t >= model.Config.Vocab) throw new OptionException("--tokens", $"--tokens: id {t} is outside the vocabulary of {model.Config.Vocab}");
        }
        int images = tokens.Count(t => t == model.ImageTokenId);
        if (images == 0)
            throw new OptionException("--tokens", $"--tokens has no image token (id {model.ImageTokenId}); put {model.ImageTokens} of them where the image goes");
        if (images != model.ImageTokens)
            throw new OptionException("--tokens", $"--tokens has {images} image tokens (id {model.ImageTokenId}); one image fills {model.ImageTokens}");
        if (tokens[^1] == model.ImageTokenId)
            throw new OptionException("--tokens", "--tokens ends with an image token; the last token is the query and must be text");
        if (tokens.Length + VlmGenerate > model.Config.MaxSeq)
            throw new OptionException("--tokens", $"--tokens: {tokens.Length} ids + {VlmGenerate} generated exceed the model's {model.Config.MaxSeq} positions");

        var path = Image ?? Bundled.Path(DefaultVlmImage);
        if (!File.Exists(path)) throw new OptionException("--image", $"--image {path}: no such file (a PNG or JPEG)");
        int side = model.Tower.Image;
        var pixels = VitImage.LoadSquare(path, side);
        var how = $"centre crop, resized to {side}x{side}, normalised with {model.Tower.PixelNormSource}";
        return VisionLanguageTokenDrop.Evaluate(model, tokens, ModelInput.Of(pixels), schedule, ranking, Seed, VlmGenerate,
            System.IO.Path.GetFileName(path), how, cancel);
    }

    private static IProgress<int>? Report(IProgress<RunProgress>? progress, string stage, int total) =>
        progress is null ? null : new Progress(progress, stage, total);

    private sealed class Progress(IProgress<RunProgress> target, string stage, int total) : IProgress<int>
    {
        public void Report(int done) => target.Report(new RunProgress(stage, done, total));
    }

    // ArgumentException appends " (Parameter 'x')" and "Actual value was ..."; keep the first clean line.
    private static string FirstLine(string message)
    {
        int i = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        return (i >= 0 ? message[..i] : message).Split('\n')[0].Trim();
    }
}
