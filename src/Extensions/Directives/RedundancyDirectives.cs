using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.Directives;
using Workbench.Engine.Redundancy;
using Workbench.Engine.Requests;

namespace Workbench.Interactive.Directives;

/// <summary>
/// <c>#!redundancy --model NAME|PATH --granularity block|attention|mlp|joint [--samples N] [--seq L] [--seed S] [--corpus PATH] [--images PATHS] [--as VAR]</c>:
/// the importance (1 - cos) of every block, attention and MLP layer, as the CLI verb <c>workbench redundancy</c>.
/// </summary>
public sealed class RedundancyCommand : KernelDirectiveCommand
{
    public string? Model { get; set; }
    public string? Granularity { get; set; }
    public string? Samples { get; set; }
    public string? Seq { get; set; }
    public string? Seed { get; set; }
    public string? Corpus { get; set; }
    public string? Weights { get; set; }
    public string? Images { get; set; }
    public string? As { get; set; }
}

/// <summary>
/// <c>#!drop --model NAME|PATH --granularity G --count K [--strategy one-shot|iterative] [--never LIST] [--sweep] [--no-speed]
/// [--samples N] [--seq L] [--seed S] [--corpus PATH] [--images PATHS] [--as VAR]</c>, as the CLI verb <c>workbench drop</c>.
/// </summary>
public sealed class DropCommand : KernelDirectiveCommand
{
    public string? Model { get; set; }
    public string? Granularity { get; set; }
    public string? Count { get; set; }
    public string? Strategy { get; set; }
    public string? Never { get; set; }
    public bool Sweep { get; set; }
    public bool NoSpeed { get; set; }
    public string? Samples { get; set; }
    public string? Seq { get; set; }
    public string? Seed { get; set; }
    public string? Corpus { get; set; }
    public string? Weights { get; set; }
    public string? Images { get; set; }
    public string? As { get; set; }
}

internal static class RedundancyDirectives
{
    public const string Redundancy = "#!redundancy";
    public const string Drop = "#!drop";

    public static void Add(Kernel kernel)
    {
        var redundancy = new KernelActionDirective(Redundancy)
        {
            Description = "Score every block, attention and MLP layer by 1 - cos(input, output) on calibration text or images (He et al. 2024) and show the importance heatmap.",
        };
        AddShared(redundancy, "redundancy");
        kernel.AddDirective<RedundancyCommand>(redundancy, (c, context) => Run(context, Redundancy, c.As, "redundancy", token =>
        {
            var request = new RedundancyRequest
            {
                Model = Text(c.Model)!, Granularity = Text(c.Granularity)!,
                Samples = Parse.Int(Text(c.Samples), "--samples"), Seq = Parse.Int(Text(c.Seq), "--seq"), Seed = Parse.Int(Text(c.Seed), "--seed") ?? 0, Corpus = Text(c.Corpus), Weights = Text(c.Weights),
                Images = Text(c.Images),
            };
            return request.Run(Magic.Bar(LiveProgress.Start(context, $"importance of {request.Model}", 2)), token);
        }));

        var drop = new KernelActionDirective(Drop)
        {
            Description = "Drop the K least important blocks / attention / MLP layers and measure quality, decode speed and KV cache against the full model (--sweep: every k = 0..K).",
        };
        AddShared(drop, "drop");
        drop.Parameters.Add(new KernelDirectiveParameter("--count", "modules to drop (with --sweep: the largest k)") { Required = true, TypeHint = "number" });
        drop.Parameters.Add(new KernelDirectiveParameter("--strategy", "one-shot (rank once, default) or iterative (re-score after each drop)"));
        drop.Parameters.Add(new KernelDirectiveParameter("--never", "layers never dropped, comma-separated (e.g. 0,4)"));
        drop.Parameters.Add(new KernelDirectiveParameter("--sweep", "evaluate every k = 0..count, not only k = count") { Flag = true });
        drop.Parameters.Add(new KernelDirectiveParameter("--no-speed", "skip the measured speed runs (quality and predicted costs only; faster)") { Flag = true });
        kernel.AddDirective<DropCommand>(drop, (c, context) =>
            Run(context, Drop, c.As, c.Sweep ? "sweep" : "drop", token => RunDrop(c, context, token)));
    }

    /// <summary>Checks --as, then runs the work off the kernel's thread through <see cref="Magic.RunAsync"/>.</summary>
    private static Task Run(KernelInvocationContext context, string name, string? variable, string fallback, Func<CancellationToken, object?> work)
    {
        var v = Text(variable) ?? fallback;
        if (!Microsoft.CodeAnalysis.CSharp.SyntaxFacts.IsValidIdentifier(v))
            return Magic.RunAsync(context, name, _ => throw new OptionException("--as", $"--as '{v}' is not a C# identifier"));
        return Magic.RunAsync(context, name, token => Task.Run(() => work(token), token), v);
    }

    private static void AddShared(KernelActionDirective d, string verb)
    {
        d.Parameters.Add(new KernelDirectiveParameter("--model", "a bundled model (stories260K, babyllama, minilm, vit-cifar10) or a path (a ViT or LLaVA folder too)") { AllowImplicitName = true, Required = true });
        d.Parameters.Add(new KernelDirectiveParameter("--granularity", "block, attention, mlp or joint") { Required = true });
        d.Parameters.Add(new KernelDirectiveParameter("--samples", "calibration sequences (default: 8 for decoders, 16 sentences for encoders, 16 images for image models)") { TypeHint = "number" });
        d.Parameters.Add(new KernelDirectiveParameter("--seq", "tokens per calibration sequence (default: 128 for decoders, 64 for encoders)") { TypeHint = "number" });
        d.Parameters.Add(new KernelDirectiveParameter("--seed", "seed of the calibration/evaluation split (default 0)") { TypeHint = "number" });
        d.Parameters.Add(new KernelDirectiveParameter("--corpus", "text file, documents separated by blank lines, or persuasion (the novel austen-16L never saw; default: TinyStories for decoders, Pride and Prejudice for encoders)"));
        d.Parameters.Add(new KernelDirectiveParameter("--images", "image classifiers and LLaVA: PNG / JPEG files or folders (a CIFAR-10 folder too), comma-separated, split by --seed into calibration and held-out halves (default: the bundled CIFAR-10 test images)"));
        d.Parameters.Add(new KernelDirectiveParameter("--weights", "stored (default: bf16 / f16 / Q8_0 / Q4_0 linears stay memory-mapped in their type) or fp32"));
        d.Parameters.Add(new KernelDirectiveParameter("--as", $"C# variable for the result (default: {(verb == "drop" ? "drop, or sweep with --sweep" : "redundancy")})"));
    }

    private static object? RunDrop(DropCommand c, KernelInvocationContext context, CancellationToken token)
    {
        var request = new DropRequest
        {
            Model = Text(c.Model)!, Granularity = Text(c.Granularity)!,
            Samples = Parse.Int(Text(c.Samples), "--samples"), Seq = Parse.Int(Text(c.Seq), "--seq"), Seed = Parse.Int(Text(c.Seed), "--seed") ?? 0, Corpus = Text(c.Corpus), Weights = Text(c.Weights), Images = Text(c.Images),
            Count = Parse.Int(Text(c.Count), "--count"), Strategy = Text(c.Strategy) ?? "one-shot", Never = Text(c.Never),
            Sweep = c.Sweep, NoSpeed = c.NoSpeed,
        };
        int k = request.Count ?? 0; // a missing --count fails in Run, which checks every option

        var bar = c.Sweep
            ? LiveProgress.Start(context, $"{Text(c.Granularity)} drop sweep on {request.Model} (k = 0..{k})", k + 1)
            : LiveProgress.Start(context, $"drop {k} {Text(c.Granularity)} modules of {request.Model}", 1);
        return request.Run(Magic.Bar(bar), token);
    }

    internal static string? Text(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim().Trim('"');
}
