using System.Globalization;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.Directives;
using Workbench.Engine.Models;
using Workbench.Engine.TokenDrop;
using Workbench.Engine.Vision;

namespace Workbench.Interactive.Directives;

/// <summary>
/// <c>#!pyramid-drop</c> and <c>#!fastv</c>: the options of the CLI verbs <c>workbench pyramid-drop</c> / <c>workbench fastv</c>
/// (bound by name), plus <c>--images</c>, <c>--prompts</c>, <c>--image</c> and <c>--as</c>.
/// </summary>
public abstract class TokenDropCommand : KernelDirectiveCommand
{
    /// <summary><c>--model</c>: vit-cifar10, stories260K, babyllama, minilm, or a model path.</summary>
    public string? Model { get; set; }
    /// <summary><c>--layers</c> (pyramid-drop): stage boundaries, e.g. 1,2,3.</summary>
    public string? Layers { get; set; }
    /// <summary><c>--layer</c> (fastv): K, drop after this many layers.</summary>
    public string? Layer { get; set; }
    /// <summary><c>--keep</c>: keep ratio in (0, 1]; pyramid-drop accepts one per stage.</summary>
    public string? Keep { get; set; }
    /// <summary><c>--rank</c>: attention | random | least.</summary>
    public string? Rank { get; set; }
    /// <summary><c>--seed</c>: seed of the random ranking.</summary>
    public string? Seed { get; set; }
    /// <summary><c>--data</c>: a CIFAR-10 folder (ViT) or a text file of paragraphs (language models).</summary>
    public string? Data { get; set; }
    /// <summary><c>--images</c>: evaluate the ViT on N images spread evenly over the set.</summary>
    public string? Images { get; set; }
    /// <summary><c>--prompts</c>: number of TinyStories prompts (decoders, default 8) or texts (encoders, default 16).</summary>
    public string? Prompts { get; set; }
    /// <summary><c>--image</c>: one image (PNG/JPEG path, or an index into the CIFAR-10 set) to show stage by stage.</summary>
    public string? Image { get; set; }
    /// <summary><c>--as</c>: the C# variable that receives the result.</summary>
    public string? As { get; set; }
}

/// <summary><c>#!pyramid-drop</c> (a type of its own: the kernel routes commands to handlers by type).</summary>
public sealed class PyramidDropCommand : TokenDropCommand;

/// <summary><c>#!fastv</c>.</summary>
public sealed class FastVCommand : TokenDropCommand;

/// <summary>The parsed options of one token-drop magic; parsing is separate so that errors name the option.</summary>
internal sealed record TokenDropRequest(string Model, string Method, PyramidSchedule Schedule, DropRanking Ranking, int Seed,
    string? Data, int? Images, int? Prompts, string? Image, string Variable);

internal static class TokenDropDirectives
{
    public const string PyramidName = "#!pyramid-drop", FastVName = "#!fastv";

    public static void Add(Kernel kernel)
    {
        var pyramid = new KernelActionDirective(PyramidName)
        {
            Description = "PyramidDrop: drop tokens at several stage boundaries, ranked by the query token's attention; quality and FLOPs against the full model.",
            Parameters =
            {
                new KernelDirectiveParameter("--model", "vit-cifar10, stories260K, babyllama, minilm, or a model path") { Required = true },
                new KernelDirectiveParameter("--layers", "stage boundaries, comma-separated layer counts, e.g. 1,2,3") { Required = true },
                new KernelDirectiveParameter("--keep", "keep ratio in (0, 1], one for all stages or one per stage, e.g. 0.5 or 0.5,0.5,0.25") { Required = true },
            },
        };
        var fastv = new KernelActionDirective(FastVName)
        {
            Description = "FastV: one token drop after layer K keeping ratio R, ranked by the query token's attention in layer K+1.",
            Parameters =
            {
                new KernelDirectiveParameter("--model", "vit-cifar10, stories260K, babyllama, minilm, or a model path") { Required = true },
                new KernelDirectiveParameter("--layer", "K: drop after this many layers") { Required = true, TypeHint = "number" },
                new KernelDirectiveParameter("--keep", "keep ratio R in (0, 1]") { Required = true, TypeHint = "number" },
            },
        };
        foreach (var d in new[] { pyramid, fastv })
        {
            d.Parameters.Add(new KernelDirectiveParameter("--rank", "attention (default) | random | least"));
            d.Parameters.Add(new KernelDirectiveParameter("--seed", "seed of --rank random (default 0)") { TypeHint = "number" });
            d.Parameters.Add(new KernelDirectiveParameter("--data", "ViT: CIFAR-10 folder (default: the bundled 1,000 test images); language models: text file of paragraphs (default: TinyStories)"));
            d.Parameters.Add(new KernelDirectiveParameter("--images", "ViT: evaluate on N images spread evenly over the set (default: all)") { TypeHint = "number" });
            d.Parameters.Add(new KernelDirectiveParameter("--prompts", "language models: N prompts (decoders, default 8) or texts (encoders, default 16)") { TypeHint = "number" });
            d.Parameters.Add(new KernelDirectiveParameter("--image", "ViT: show one image stage by stage instead: a PNG/JPEG path or an index into the CIFAR-10 set"));
            d.Parameters.Add(new KernelDirectiveParameter("--as", "C# variable for the result (default: pyramidDrop / fastV)"));
        }
        kernel.AddDirective<PyramidDropCommand>(pyramid, (command, context) => Handle(PyramidName, command, context));
        kernel.AddDirective<FastVCommand>(fastv, (command, context) => Handle(FastVName, command, context));
    }

    private static Task Handle(string name, TokenDropCommand command, KernelInvocationContext context)
    {
        TokenDropRequest request;
        try { request = Parse(name, command); }
        catch (ArgumentException e) { return Magic.RunAsync(context, name, _ => throw e); }
        return Magic.RunAsync(context, name, token => Task.Run(() => Execute(request, context, token), token), request.Variable);
    }

    internal static TokenDropRequest Parse(string name, TokenDropCommand c)
    {
        var model = Clean(c.Model) ?? throw new ArgumentException("--model is required (e.g. --model vit-cifar10)", "model");
        PyramidSchedule schedule;
        string method;
        if (name == FastVName)
        {
            method = "fastv";
            var layer = Int(c.Layer, "layer") ?? throw new ArgumentException("--layer is required (e.g. --layer 2)", "layer");
            var keep = Clean(c.Keep) ?? throw new ArgumentException("--keep is required (e.g. --keep 0.5)", "keep");
            if (keep.Contains(',')) throw new ArgumentException($"--keep: fastv takes one ratio, not '{keep}'", "keep");
            schedule = Schedule(layer.ToString(CultureInfo.InvariantCulture), keep, "layer");
        }
        else
        {
            method = "pyramid";
            var layers = Clean(c.Layers) ?? throw new ArgumentException("--layers is required (e.g. --layers 1,2,3)", "layers");
            var keep = Clean(c.Keep) ?? throw new ArgumentException("--keep is required (e.g. --keep 0.5)", "keep");
            schedule = Schedule(layers, keep, "layers");
        }
        var ranking = Clean(c.Rank)?.ToLowerInvariant() switch
        {
            null or "attention" => DropRanking.Attention,
            "random" => DropRanking.Random,
            "least" or "leastattended" or "least-attended" => DropRanking.LeastAttended,
            var r => throw new ArgumentException($"--rank must be attention, random or least, not '{r}'", "rank"),
        };
        int seed = Int(c.Seed, "seed") ?? 0;
        int? images = Int(c.Images, "images");
        if (images is <= 0) throw new ArgumentOutOfRangeException("images", images, $"--images must be positive, not {images}");
        int? prompts = Int(c.Prompts, "prompts");
        if (prompts is <= 0) throw new ArgumentOutOfRangeException("prompts", prompts, $"--prompts must be positive, not {prompts}");
        var variable = Clean(c.As) ?? (name == FastVName ? "fastV" : "pyramidDrop");
        if (!Microsoft.CodeAnalysis.CSharp.SyntaxFacts.IsValidIdentifier(variable))
            throw new ArgumentException($"--as '{variable}' is not a C# identifier", "as");
        return new TokenDropRequest(model, method, schedule, ranking, seed, Clean(c.Data), images, prompts, Clean(c.Image), variable);
    }

    // The engine validates the schedule; the message gets the option's name in front, as the CLI does.
    private static PyramidSchedule Schedule(string layers, string keep, string option)
    {
        try { return PyramidSchedule.Parse(layers, keep); }
        catch (ArgumentException e)
        {
            var which = e.ParamName == "keepRatios" || e.ParamName == "keep" ? "keep" : option;
            throw new ArgumentException($"--{which}: {FirstLine(e.Message)}", which, e);
        }
    }

    private static object Execute(TokenDropRequest r, KernelInvocationContext context, CancellationToken token)
    {
        if (!VitBundled.IsVit(r.Model)) return ExecuteLanguage(r, context, token);
        var vit = VitModel.Load(VitBundled.Resolve(r.Model));
        Validate(r, vit.Config.Layers);
        if (r.Image is not null) return RunImage(r, vit);

        var set = r.Data is null ? Cifar10Set.LoadBundled() : Cifar10Set.Load(r.Data);
        if (r.Images is { } n && n < set.Count) set = set.Every(set.Count / n).Take(n); // class-balanced, as the CLI's --limit
        var progress = LiveProgress.Start(context, $"{r.Method} on {set.Count} images", set.Count);
        var eval = VitTokenDrop.Evaluate(vit, set, r.Schedule, r.Ranking, r.Seed, method: r.Method,
            progress: new SafeProgress(progress), cancellation: token);
        progress.Complete(string.Format(CultureInfo.InvariantCulture, "accuracy {0:P1}", eval.Accuracy));
        return eval;
    }

    private static VitImageDrop RunImage(TokenDropRequest r, VitModel vit)
    {
        VitImage image;
        string label;
        if (int.TryParse(r.Image, NumberStyles.Integer, CultureInfo.InvariantCulture, out var index) && !File.Exists(r.Image))
        {
            var set = r.Data is null ? Cifar10Set.LoadBundled() : Cifar10Set.Load(r.Data);
            if (index < 0 || index >= set.Count)
                throw new ArgumentOutOfRangeException("image", index, $"--image {index}: the CIFAR-10 set has images 0..{set.Count - 1}");
            image = set.Image(index);
            label = $"CIFAR-10 #{index} ({VitModel.ClassNames[set.Labels[index]]})";
        }
        else
        {
            image = VitImage.FromFile(r.Image!);
            label = Path.GetFileName(r.Image!);
        }
        return VitImageDrop.Run(vit, image, r.Schedule, r.Ranking, r.Seed, label);
    }

    private static object ExecuteLanguage(TokenDropRequest r, KernelInvocationContext context, CancellationToken token)
    {
        if (r.Image is not null) throw new ArgumentException($"--image works with the ViT (vit-cifar10), not {r.Model}", "image");
        if (r.Images is not null) throw new ArgumentException($"--images works with the ViT (vit-cifar10); for {r.Model} use --prompts", "images");
        var loaded = ModelHub.Load(r.Model);
        Validate(r, loaded.Config.Layers);
        switch (loaded)
        {
            case Decoder dec:
            {
                var prompts = LanguageTokenDrop.TinyStoriesPrompts(r.Prompts ?? 8, 1000, r.Data);
                var progress = LiveProgress.Start(context, $"{r.Method} on {dec.Name}, {prompts.Count} prompts", prompts.Count);
                var eval = LanguageTokenDrop.EvaluateDecoder(dec, prompts, r.Schedule, r.Ranking, r.Seed,
                    progress: new SafeProgress(progress), cancellation: token);
                progress.Complete(string.Format(CultureInfo.InvariantCulture, "KL {0:F4} nats", eval.Kl));
                return eval;
            }
            case Encoder enc:
            {
                var texts = LanguageTokenDrop.TinyStoriesPrompts(r.Prompts ?? 16, 500, r.Data).Select(p => p.Context).ToList();
                return LanguageTokenDrop.EvaluateEncoder(enc, texts, r.Schedule, r.Ranking, r.Seed);
            }
            default:
                throw new ArgumentException($"--model {r.Model}: not a decoder, encoder or the ViT", "model");
        }
    }

    private static void Validate(TokenDropRequest r, int layers)
    {
        try { r.Schedule.Validate(layers); }
        catch (ArgumentException e)
        {
            var option = r.Method == "fastv" ? "layer" : "layers";
            throw new ArgumentException($"--{option}: {FirstLine(e.Message)}", option, e);
        }
    }

    private static int? Int(string? value, string option)
    {
        var v = Clean(value);
        if (v is null) return null;
        return int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) ? i
            : throw new ArgumentException($"--{option} must be an integer, not '{v}'", option);
    }

    private static string? Clean(string? s)
    {
        var t = s?.Trim().Trim('"').Trim();
        return string.IsNullOrEmpty(t) ? null : t;
    }

    // ArgumentException appends " (Parameter 'x')" and "Actual value was ..."; keep one clean line.
    private static string FirstLine(string message)
    {
        int i = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        var m = i >= 0 ? message[..i] : message;
        return m.Split('\n')[0].Trim();
    }

    /// <summary>
    /// Engine progress arrives from worker threads: serialize it, and never throw there (the engine watches the
    /// cancellation token itself; an exception in a Parallel.For body would come back wrapped).
    /// </summary>
    private sealed class SafeProgress(LiveProgress live) : IProgress<int>
    {
        private readonly Lock gate = new();
        private int last;

        public void Report(int done)
        {
            lock (gate)
            {
                if (done <= last) return;
                last = done;
                try { live.Report(done); }
                catch (OperationCanceledException) { }
            }
        }
    }
}
