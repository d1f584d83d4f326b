using System.Globalization;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.Directives;
using Workbench.Engine.Requests;
using Workbench.Engine.TokenDrop;

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
    /// <summary><c>--data</c>: a CIFAR-10 folder (ViT) or a text file of paragraphs or a bundled corpus name (language models).</summary>
    public string? Data { get; set; }
    /// <summary><c>--images</c>: evaluate the ViT on N images spread evenly over the set.</summary>
    public string? Images { get; set; }
    /// <summary><c>--prompts</c>: number of TinyStories prompts (decoders, default 8) or texts (encoders, default 16).</summary>
    public string? Prompts { get; set; }
    /// <summary><c>--image</c>: one image (PNG/JPEG path, or an index into the CIFAR-10 set) to show stage by stage.</summary>
    public string? Image { get; set; }
    /// <summary><c>--tokens</c>: LLaVA's prompt ids, with the image tokens where the image goes.</summary>
    public string? Tokens { get; set; }
    /// <summary><c>--as</c>: the C# variable that receives the result.</summary>
    public string? As { get; set; }
}

/// <summary><c>#!pyramid-drop</c> (a type of its own: the kernel routes commands to handlers by type).</summary>
public sealed class PyramidDropCommand : TokenDropCommand;

/// <summary><c>#!fastv</c>.</summary>
public sealed class FastVCommand : TokenDropCommand;

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
            d.Parameters.Add(new KernelDirectiveParameter("--data", "ViT: CIFAR-10 folder (default: the bundled 1,000 test images); language models: text file of paragraphs, or persuasion (the novel austen-16L never saw; default: TinyStories)"));
            d.Parameters.Add(new KernelDirectiveParameter("--images", "ViT: evaluate on N images spread evenly over the set (default: all)") { TypeHint = "number" });
            d.Parameters.Add(new KernelDirectiveParameter("--prompts", "language models: N prompts (decoders, default 8) or texts (encoders, default 16)") { TypeHint = "number" });
            d.Parameters.Add(new KernelDirectiveParameter("--image", "ViT: show one image stage by stage instead: a PNG/JPEG path or an index into the CIFAR-10 set; LLaVA: the PNG/JPEG (default data/images/chelsea.png)"));
            d.Parameters.Add(new KernelDirectiveParameter("--tokens", "LLaVA: the prompt ids with the image tokens where the image goes (default: 4 + 8 seeded random ids around them)"));
            d.Parameters.Add(new KernelDirectiveParameter("--as", "C# variable for the result (default: pyramidDrop / fastV)"));
        }
        kernel.AddDirective<PyramidDropCommand>(pyramid, (command, context) => Handle(PyramidName, command, context));
        kernel.AddDirective<FastVCommand>(fastv, (command, context) => Handle(FastVName, command, context));
    }

    private static Task Handle(string name, TokenDropCommand command, KernelInvocationContext context)
    {
        TokenDropRequest request;
        string variable;
        try { (request, variable) = Parse(name, command); }
        catch (ArgumentException e) { return Magic.RunAsync(context, name, _ => throw e); }
        return Magic.RunAsync(context, name, token => Task.Run<object?>(() => Execute(request, context, token), token), variable);
    }

    /// <summary>The engine request the magic's options give (validated), and the variable that receives the result.</summary>
    internal static (TokenDropRequest Request, string Variable) Parse(string name, TokenDropCommand c)
    {
        var request = new TokenDropRequest
        {
            Method = name == FastVName ? TokenDropMethod.FastV : TokenDropMethod.Pyramid,
            Model = Clean(c.Model), Layers = Clean(c.Layers), Layer = Clean(c.Layer), Keep = Clean(c.Keep), Rank = Clean(c.Rank),
            Seed = Workbench.Engine.Requests.Parse.Int(Clean(c.Seed), "--seed") ?? 0, Data = Clean(c.Data),
            Images = Workbench.Engine.Requests.Parse.Int(Clean(c.Images), "--images"),
            Prompts = Workbench.Engine.Requests.Parse.Int(Clean(c.Prompts), "--prompts"), Image = Clean(c.Image), Tokens = Clean(c.Tokens),
        };
        request.Validate();
        var variable = Clean(c.As) ?? (name == FastVName ? "fastV" : "pyramidDrop");
        if (!Microsoft.CodeAnalysis.CSharp.SyntaxFacts.IsValidIdentifier(variable))
            throw new Workbench.Engine.Requests.OptionException("--as", $"--as '{variable}' is not a C# identifier");
        return (request, variable);
    }

    private static object Execute(TokenDropRequest request, KernelInvocationContext context, CancellationToken token)
    {
        var progress = new SafeProgress(context);
        var result = request.Run(progress, token);
        progress.Complete(result.Vit is { } v ? string.Format(CultureInfo.InvariantCulture, "accuracy {0:P1}", v.Accuracy)
            : result.Decoder is { } d ? string.Format(CultureInfo.InvariantCulture, "KL {0:F4} nats", d.Kl)
            : result.VisionLanguage is { } m ? string.Format(CultureInfo.InvariantCulture, "KL {0:F4} nats", m.Kl) : null);
        return result.Value;
    }

    private static string? Clean(string? s)
    {
        var t = s?.Trim().Trim('"').Trim();
        return string.IsNullOrEmpty(t) ? null : t;
    }

    /// <summary>
    /// A progress bar shown at the first report. Engine progress arrives from worker threads: serialize it, and never
    /// throw there (the engine watches the cancellation token itself; an exception in a Parallel.For body would come back wrapped).
    /// </summary>
    private sealed class SafeProgress(KernelInvocationContext context) : IProgress<RunProgress>
    {
        private readonly Lock gate = new();
        private LiveProgress? live;
        private int last;

        public void Report(RunProgress p)
        {
            lock (gate)
            {
                live ??= LiveProgress.Start(context, p.Stage, p.Total);
                if (p.Done <= last) return;
                last = p.Done;
                try { live.Report(p.Done); }
                catch (OperationCanceledException) { }
            }
        }

        public void Complete(string? note)
        {
            lock (gate) live?.Complete(note);
        }
    }
}
