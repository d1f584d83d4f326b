using System.CommandLine;
using System.Globalization;
using Workbench.Engine.LowBit;
using Workbench.Engine.Quantization;
using Workbench.Engine.Requests;

namespace Workbench.Cli.Commands;

/// <summary>
/// <c>workbench bitnet --model NAME|PATH --format i2s|tl1|tl2 [--threads T] [--json]</c>: ternary post-training
/// quantization of a model's block linears, the lossless check of the packed kernels on real activations (every
/// supported ISA path against the scalar reference; outputs against the dequantized fp32 computation), and the
/// quality cost against fp32 (decoders: KL, top-1 agreement, perplexity on held-out TinyStories; encoders: embedding
/// cosine on Pride and Prejudice sentences). Options are checked by <see cref="BitNetRequest"/>; a bad value is one stderr line, exit 2.
/// </summary>
public static class BitNetCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "A bundled model (stories260K, babyllama, minilm, ...) or a path.", Arity = ArgumentArity.ZeroOrOne };
        var format = new Option<string?>("--format") { Description = $"Packed ternary format: {LowBitFormats.NameList(ternaryOnly: true)}.", Arity = ArgumentArity.ZeroOrOne };
        var threads = new Option<string?>("--threads") { Description = "Kernel threads (default 1).", Arity = ArgumentArity.ZeroOrOne };
        var images = new Option<string?>("--images") { Description = "Image classifiers and LLaVA: evaluation images, PNG / JPEG files or folders (a CIFAR-10 folder too), comma-separated (default: 200 bundled CIFAR-10 test images).", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "Print one JSON object for scripts." };
        var command = new Command("bitnet", "Ternary (BitNet b1.58) post-training quantization of a model: lossless kernel check and quality cost against fp32.")
        {
            model, format, threads, images, json,
        };
        command.TreatUnmatchedTokensAsErrors = false; // reported below as one line with exit code 2
        command.SetAction(parse =>
        {
            if (parse.UnmatchedTokens.Count > 0) return Fail($"unexpected argument '{parse.UnmatchedTokens[0]}'.");
            if (parse.Errors.Count > 0) return Fail(parse.Errors[0].Message);
            bool asJson = parse.GetValue(json);
            try
            {
                var request = new BitNetRequest
                {
                    Model = parse.GetValue(model) ?? "",
                    Format = parse.GetValue(format) ?? "",
                    Threads = Parse.Int(parse.GetValue(threads), "--threads") ?? 1,
                    Images = parse.GetValue(images),
                };
                request.Validate();
                return CliHelpers.Run(() => Render(request.Run(), asJson));
            }
            catch (OptionException e) { return Fail(e.Message); }
        });
        return command;
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"workbench bitnet: {message}");
        return CliHelpers.ExitBadInput;
    }

    private static int Render(TernaryReport r, bool asJson)
    {
        var format = r.Format;
        int threads = r.Threads;
        (string Name, object? Value)[] quality = r.Decoder is { } q
            ? [("kl", q.MeanKl), ("top1_agreement", q.Top1Agreement), ("perplexity", q.Perplexity), ("perplexity_fp32", q.PerplexityFp32), ("positions", q.Positions), ("sequences", q.Sequences)]
            : r.Classifier is { } c
                ? [("accuracy", c.Accuracy), ("accuracy_fp32", c.AccuracyFp32), ("agreement", c.Agreement), ("kl", c.MeanKl), ("images", c.Images)]
                : r.VisionLanguage is { } v
                    ? [("kl", v.MeanKl), ("top1_agreement", v.Top1Agreement), ("positions", v.Positions), ("prompts", v.Prompts)]
                    : [("embedding_cosine", r.Encoder!.MeanCosine), ("embedding_cosine_min", r.Encoder.MinCosine), ("sentences", r.Encoder.Sentences)];
        var lossless = r.Lossless;
        var failed = lossless.Layers.Where(l => !l.Passed).ToList();
        if (asJson)
        {
            CliHelpers.PrintJson(CliHelpers.Obj(
                ("model", r.Model), ("kind", r.Kind), ("format", format.Name()), ("isa", r.Path.ToString()), ("threads", threads),
                ("lossless", lossless.Lossless), ("lossless_layers", lossless.Layers.Count),
                ("lossless_failed", failed.Select(l => l.Name).ToArray()), ("lossless_max_rel_error", lossless.Layers.Max(l => l.MaxRelativeError)),
                ("lossless_paths", lossless.Layers.FirstOrDefault()?.Paths), ("quality", CliHelpers.Obj(quality)), ("linear_layers", r.Layers.Count),
                ("weight_bytes_fp32", r.Fp32LinearBytes), ("weight_bytes_packed", r.PackedLinearBytes), ("kept_fp32_bytes", r.KeptFp32Bytes),
                ("model_bytes_fp32", r.ModelBytesFp32), ("model_bytes_packed", r.ModelBytesPacked), ("zero_fraction", r.ZeroFraction)));
        }
        else
        {
            var inv = CultureInfo.InvariantCulture;
            Console.Out.WriteLine($"{r.Model}: {r.Layers.Count} linear layers -> ternary {format} (isa {r.Path}, {threads} thread(s)); embeddings/head kept fp32");
            Console.Out.WriteLine(string.Create(inv, $"linear weights: fp32 {r.Fp32LinearBytes / 1e6:F3} MB -> packed {r.PackedLinearBytes / 1e6:F3} MB ({r.LinearCompression:F1}x smaller); kept fp32 {r.KeptFp32Bytes / 1e6:F3} MB"));
            Console.Out.WriteLine(lossless.Lossless
                ? string.Create(inv, $"lossless: yes: {lossless.Layers.Count} layers, int32 sums equal the scalar reference on {lossless.Layers[0].Paths}; outputs equal dequantized fp32 within {r.MaxRelativeError:E1} (relative)")
                : $"lossless: NO: {string.Join(", ", failed.Select(l => $"{l.Name} ({l.IntegerMismatches} int mismatches, rel {l.MaxRelativeError:E1})"))}");
            string held = r.Decoder is not null ? "held-out TinyStories" : r.Classifier is not null ? "held-out images"
                : r.VisionLanguage is not null ? "held-out images with seeded prompts, text positions" : "Pride and Prejudice sentences";
            Console.Out.WriteLine(string.Create(inv, $"quality vs fp32 ({held}): {Describe(quality)}"));
        }
        return lossless.Lossless ? 0 : 1;
    }

    private static string Describe((string Name, object? Value)[] properties) => string.Join(", ", properties.Where(p => p.Value is not null).Select(p =>
        $"{p.Name} {(p.Value is double d ? d.ToString("G4", CultureInfo.InvariantCulture) : p.Value)}"));
}
