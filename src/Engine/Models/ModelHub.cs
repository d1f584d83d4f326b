using Workbench.Engine.Formats;
using Workbench.Engine.Text;

namespace Workbench.Engine.Models;

/// <summary>
/// One entry point for loading a model: a bundled name (stories260K, stories260K-gguf, babyllama, minilm, vit-cifar10) or a path
/// to a llama2.c .bin, a .gguf, an .onnx, a safetensors file or a Hugging Face folder, recognised by content.
/// </summary>
public static class ModelHub
{
    public static IReadOnlyList<string> BundledNames => Names;
    private static readonly List<string> Names = ["stories260K", "stories260K-gguf", "babyllama", "minilm", "vit-cifar10", "austen-16L"];

    // Bundled names whose loading needs a layer above Models (e.g. austen-16L-ternary on the packed kernels of
    // Quantization): that layer registers them at start-up, so Models never names it.
    private static readonly Dictionary<string, Func<LoadedModel>> Registered = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Adds a bundled name loaded by <paramref name="load"/> (called once, then cached like the others).</summary>
    public static void RegisterBundled(string name, Func<LoadedModel> load)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(load);
        lock (Cache)
        {
            if (Names.Contains(name, StringComparer.OrdinalIgnoreCase)) throw new ArgumentException($"bundled name '{name}' is taken", nameof(name));
            Registered[name] = load;
            Names.Add(name);
        }
    }

    private static readonly Dictionary<string, Lazy<LoadedModel>> Cache = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Loads a model, caching bundled ones (they are immutable and shared). Linears of GGUF and safetensors files stay
    /// in their stored type (bf16, f16, Q8_0, Q4_0) unless <paramref name="storage"/> asks for fp32 copies.
    /// </summary>
    public static LoadedModel Load(string nameOrPath, string? tokenizerPath = null, WeightStorage storage = WeightStorage.Stored)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nameOrPath);
        if (BundledNames.Contains(nameOrPath, StringComparer.OrdinalIgnoreCase) && tokenizerPath is not null)
        {
            // A bundled decoder with another tokenizer: the same weights, the tokenizer checked against the vocabulary.
            var bundled = Load(nameOrPath);
            return bundled is Decoder d
                ? new Decoder(d.Name, d.Model, DecoderTokenizer(tokenizerPath, d.Config.Vocab), d.Pruned, d.EosIds)
                : throw new ArgumentException($"a tokenizer file applies to decoders; '{bundled.Name}' brings its own", "--tokenizer");
        }
        if (BundledNames.Contains(nameOrPath, StringComparer.OrdinalIgnoreCase))
        {
            Lazy<LoadedModel> lazy;
            lock (Cache)
                if (!Cache.TryGetValue(nameOrPath, out lazy!))
                    Cache[nameOrPath] = lazy = new Lazy<LoadedModel>(() => LoadBundled(nameOrPath));
            return lazy.Value;
        }
        if (!File.Exists(nameOrPath) && !Directory.Exists(nameOrPath))
            throw new FileNotFoundException($"'{nameOrPath}' is neither a bundled model ({string.Join(", ", BundledNames)}) nor an existing file or folder", nameOrPath);
        var path = Path.GetFullPath(nameOrPath);
        try { return LoadPath(path, tokenizerPath, storage); }
        catch (Exception e) when (IsForeign(e))
        {
            // The readers name their own fields; this is the last net for an exception a reader let through.
            throw new ModelFormatException(path, UntranslatedField, 0, $"unreadable model ({e.GetType().Name}: {e.Message.Split('\n')[0]})", e);
        }
    }

    /// <summary>The field named when an exception from below the readers reaches the boundary untranslated.</summary>
    public const string UntranslatedField = "content";

    /// <summary>Exceptions that can only come from the bytes of a file (never from the options or the environment).</summary>
    private static bool IsForeign(Exception e) => e is InvalidCastException or FormatException or OverflowException
        or KeyNotFoundException or IndexOutOfRangeException or InvalidDataException or System.Text.Json.JsonException
        or Google.Protobuf.InvalidProtocolBufferException;

    public static Decoder LoadDecoder(string nameOrPath, string? tokenizerPath = null, WeightStorage storage = WeightStorage.Stored) =>
        Load(nameOrPath, tokenizerPath, storage) as Decoder ?? throw new ArgumentException($"'{nameOrPath}' is not a decoder (Llama) model", nameof(nameOrPath));

    public static Encoder LoadEncoder(string nameOrPath) =>
        Load(nameOrPath) as Encoder ?? throw new ArgumentException($"'{nameOrPath}' is not an encoder (BERT) model", nameof(nameOrPath));

    private static LoadedModel LoadBundled(string name) => Registered.TryGetValue(name, out var load) ? load() : name.ToLowerInvariant() switch
    {
        "stories260k" => new Decoder("stories260K",
            LlamaLoader.FromLlama2c(Bundled.Path("models/stories260K/stories260K.bin"), "stories260K"),
            new Llama2cTokenizer(Bundled.Path("models/stories260K/tok512.bin"), 512)),
        "stories260k-gguf" => LoadPath(Bundled.Path("models/stories260K/stories260K.gguf"), null),
        "babyllama" => new Decoder("babyllama",
            LlamaLoader.FromLlama2c(Bundled.Path("models/babyllama-105/model5000.bin"), "babyllama"),
            SentencePieceTokenizer.Load(Bundled.Path("models/babyllama-105/tok105.model"), 105)),
        "minilm" => MiniLm(),
        "vit-cifar10" => new ImageClassifier("vit-cifar10", VitModel.LoadBundled()),
        "austen-16l" => Renamed((Decoder)LoadPath(Bundled.Folder("models/austen-16L/fp"), null), "austen-16L"),
        _ => throw new ArgumentException($"unknown bundled model '{name}'", nameof(name)),
    };

    private static Decoder Renamed(Decoder d, string name) => new(name, d.Model, d.HasTokenizer ? d.Tokenizer : null, d.Pruned, d.EosIds);

    private static Encoder MiniLm()
    {
        var (model, tok) = BertLoader.MiniLm();
        return new Encoder("minilm", model, tok);
    }

    private static LoadedModel LoadPath(string path, string? tokenizerPath, WeightStorage storage = WeightStorage.Stored)
    {
        var kind = ModelFiles.Sniff(path);
        switch (kind)
        {
            case ModelFileKind.Llama2c:
            {
                var model = LlamaLoader.FromLlama2c(path);
                return new Decoder(model.Card.Name, model, DecoderTokenizer(tokenizerPath ?? FindTokenizerBeside(path), model.Config.Vocab));
            }
            case ModelFileKind.Gguf:
            {
                var model = LlamaLoader.FromGguf(path, storage: storage);
                // The embedded tokenizer (llama or gpt2 kind) when the file has one; without one the model runs on --tokens.
                var tok = tokenizerPath is not null ? DecoderTokenizer(tokenizerPath, model.Config.Vocab) : GgufTokenizer.TryLoad(path, model.Config.Vocab);
                return new Decoder(model.Card.Name, model, tok, eos: EndOfSequence.FromGguf(path));
            }
            case ModelFileKind.HuggingFaceFolder:
            {
                var cfg = File.ReadAllText(Path.Combine(path, "config.json"));
                if (cfg.Contains("\"bert\"", StringComparison.OrdinalIgnoreCase) || cfg.Contains("BertModel", StringComparison.Ordinal))
                {
                    var bert = BertLoader.FromHuggingFace(path);
                    var vocab = Path.Combine(path, "vocab.txt");
                    if (!File.Exists(vocab)) throw new FileNotFoundException($"{path}: a BERT folder needs vocab.txt for its WordPiece tokenizer", vocab);
                    return new Encoder(bert.Card.Name, bert, WordPieceTokenizer.Load(vocab, Math.Min(512, bert.Config.MaxSeq)));
                }
                // The tokenizer is optional here: a folder without one still runs on token ids.
                var tokPath = tokenizerPath ?? TryFindTokenizerBeside(Path.Combine(path, "config.json"));
                if (cfg.Contains("\"drop_attn_list\"", StringComparison.Ordinal) || cfg.Contains("\"drop_mlp_list\"", StringComparison.Ordinal))
                {
                    // A layer-dropped checkpoint (LLM-Drop layout): the dropped modules' tensors are absent.
                    var (pruned, skips) = PrunedModel.Load(path);
                    return new Decoder(pruned.Card.Name, pruned, tokPath is null ? null : DecoderTokenizer(tokPath, pruned.Config.Vocab), skips, EndOfSequence.FromFolder(path));
                }
                // ViTForImageClassification and LLaVA folders (HfVision); the tokenizer only matters to LLaVA's text side.
                if (HfVision.TryLoad(path, vocab => tokPath is null ? null : DecoderTokenizer(tokPath, vocab), storage) is { } vision) return vision;
                // The family from config.json's architectures / model_type (unsupported ones are named with the supported list).
                var decoder = HfDecoders.Load(path, storage: storage);
                return new Decoder(decoder.Card.Name, decoder, tokPath is null ? null : DecoderTokenizer(tokPath, decoder.Config.Vocab), eos: EndOfSequence.FromFolder(path));
            }
            case ModelFileKind.Npz:
                return new ImageClassifier(Path.GetFileNameWithoutExtension(path), VitModel.Load(path));
            case ModelFileKind.Onnx:
            {
                using var onnx = OnnxModelFile.Open(path);
                throw new ModelFormatException(path, "graph", 0,
                    "only the bundled all-MiniLM-L6-v2 ONNX export is loaded as an encoder; give a Hugging Face BERT folder instead");
            }
            default:
                throw new ModelFormatException(path, "format", 0, $"a {kind} file is not a model the engine runs (Llama: .bin, .gguf, HF folder; BERT: HF folder or minilm)");
        }
    }

    private static string FindTokenizerBeside(string modelPath) => TryFindTokenizerBeside(modelPath)
        ?? throw new FileNotFoundException($"no tokenizer beside {modelPath} (tokenizer.model, tokenizer.json, tokenizer.bin, tok*.bin, tok*.model); pass --tokenizer PATH");

    private static string? TryFindTokenizerBeside(string modelPath)
    {
        var dir = Path.GetDirectoryName(modelPath)!;
        string[] names = ["tokenizer.model", "tokenizer.json", "tokenizer.bin"];
        foreach (var n in names)
            if (File.Exists(Path.Combine(dir, n))) return Path.Combine(dir, n);
        return Directory.EnumerateFiles(dir, "tok*.bin").Concat(Directory.EnumerateFiles(dir, "tok*.model")).FirstOrDefault();
    }

    /// <summary>A tokenizer.json, a GGUF's embedded tokenizer, a SentencePiece model (protobuf) or a llama2.c tokenizer.bin.</summary>
    public static ITextTokenizer DecoderTokenizer(string path, int vocab)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer file {path} does not exist", path);
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return TokenizerJson.Load(path, vocab);
        if (path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
            return GgufTokenizer.TryLoad(path, vocab) ?? throw new ModelFormatException(path, "tokenizer.ggml.tokens", 0, "the GGUF file carries no tokenizer");
        // A llama2.c tokenizer.bin is checked strictly (every length must fit the file exactly); anything else is
        // tried as a SentencePiece model, whose reader names its own problem.
        try { return new Llama2cTokenizer(path, vocab); }
        catch (ModelFormatException) when (!path.EndsWith(".bin", StringComparison.OrdinalIgnoreCase))
        {
            return SentencePieceTokenizer.Load(path, vocab);
        }
    }
}
