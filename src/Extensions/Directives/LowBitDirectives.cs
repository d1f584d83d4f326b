using System.Globalization;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.Directives;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Quantization;
using Workbench.Engine.Requests;

namespace Workbench.Interactive.Directives;

/// <summary><c>#!bitnet --model NAME|PATH --format i2s|tl1|tl2 [--threads T] [--images PATHS] [--as VAR]</c>, as <c>workbench bitnet</c>.</summary>
public sealed class BitNetDirectiveCommand : KernelDirectiveCommand
{
    public string? Model { get; set; }
    public string? Format { get; set; }
    public string? Threads { get; set; }
    public string? Images { get; set; }
    public string? As { get; set; }
}

/// <summary>
/// <c>#!gemv --format F | --compare F1,F2,...|all --rows M --cols K [--threads T] [--runs N] [--isa P] [--bandwidth GBPS] [--as VAR]</c>,
/// as <c>workbench bench gemv</c>, plus several formats at once and the bandwidth floor.
/// </summary>
public sealed class GemvDirectiveCommand : KernelDirectiveCommand
{
    public string? Format { get; set; }
    public string? Compare { get; set; }
    public string? Rows { get; set; }
    public string? Cols { get; set; }
    public string? Threads { get; set; }
    public string? Runs { get; set; }
    public string? Isa { get; set; }
    public string? Bandwidth { get; set; }
    public string? As { get; set; }
}

/// <summary>The ternary low-bit magics: <c>#!bitnet</c> (post-training ternary quantization of a model) and <c>#!gemv</c> (kernel timing).</summary>
internal static class LowBitDirectives
{
    public const string BitNet = "#!bitnet";
    public const string Gemv = "#!gemv";

    public static void Add(Kernel kernel)
    {
        var bitnet = new KernelActionDirective(BitNet)
        {
            Description = "Ternary (BitNet b1.58) post-training quantization of a model's linears: the lossless check of the packed kernels on real activations and the quality cost against fp32.",
            Parameters =
            {
                new KernelDirectiveParameter("--model", $"bundled model ({string.Join(", ", ModelHub.BundledNames)}) or a path") { AllowImplicitName = true, Required = true },
                new KernelDirectiveParameter("--format", $"packed ternary format: {LowBitFormats.NameList(ternaryOnly: true)}") { Required = true },
                new KernelDirectiveParameter("--threads", $"kernel threads, 1..{Environment.ProcessorCount} (default 1)") { TypeHint = "number" },
                new KernelDirectiveParameter("--images", "image classifiers and LLaVA: evaluation images, PNG / JPEG files or folders, comma-separated (default: 200 bundled CIFAR-10 test images)"),
                new KernelDirectiveParameter("--as", "C# variable for the TernaryReport (default: bitnet)"),
            },
        };
        kernel.AddDirective<BitNetDirectiveCommand>(bitnet, (command, context) => RunBitNet(command, context));

        var gemv = new KernelActionDirective(Gemv)
        {
            Description = "Time a cold-weight GEMV (weights streamed from DRAM, activation quantization included) in one or several formats, beside each format's memory-bandwidth floor.",
            Parameters =
            {
                new KernelDirectiveParameter("--format", $"one weight format: {LowBitFormats.NameList()}"),
                new KernelDirectiveParameter("--compare", "several formats, comma separated (e.g. f32,int8,i2s,tl2), or all"),
                new KernelDirectiveParameter("--rows", "output rows M, 1..1048576") { Required = true, TypeHint = "number" },
                new KernelDirectiveParameter("--cols", "input columns K, 1..65536") { Required = true, TypeHint = "number" },
                new KernelDirectiveParameter("--threads", $"threads, 1..{Environment.ProcessorCount} (default 1)") { TypeHint = "number" },
                new KernelDirectiveParameter("--runs", $"timed runs per format, the median is reported (default {GemvRequest.DefaultRuns})") { TypeHint = "number" },
                new KernelDirectiveParameter("--isa", "kernel path: scalar, v128, v256, v512 (default: widest supported)"),
                new KernelDirectiveParameter("--bandwidth", "read bandwidth in GB/s for the floor (default: measured now)") { TypeHint = "number" },
                new KernelDirectiveParameter("--as", "C# variable for the GemvComparison (default: gemv)"),
            },
        };
        kernel.AddDirective<GemvDirectiveCommand>(gemv, (command, context) => RunGemv(command, context));
    }

    private static Task RunBitNet(BitNetDirectiveCommand c, KernelInvocationContext context) => Run(context, BitNet, c.As, "bitnet",
        () => new BitNetRequest
        {
            Model = Clean(c.Model) ?? "",
            Format = Clean(c.Format) ?? "",
            Threads = Parse.Int(Clean(c.Threads), "--threads") ?? 1,
            Images = Clean(c.Images),
        },
        (request, token) =>
        {
            var loaded = ModelHub.Load(request.Model);
            var progress = LiveProgress.Start(context, $"{BitNet} {loaded.Name} {request.Format.ToLowerInvariant()}", BitNetRequest.Stages);
            var report = request.Run(loaded, new LiveReporter(progress), token);
            progress.Complete(report.Lossless.Lossless ? "lossless" : "NOT lossless");
            return report;
        });

    private static Task RunGemv(GemvDirectiveCommand c, KernelInvocationContext context) => Run(context, Gemv, c.As, "gemv",
        () => new GemvRequest
        {
            Format = Clean(c.Format),
            Compare = Clean(c.Compare),
            Rows = Parse.Int(Clean(c.Rows), "--rows"),
            Cols = Parse.Int(Clean(c.Cols), "--cols"),
            Threads = Parse.Int(Clean(c.Threads), "--threads") ?? 1,
            Runs = Parse.Int(Clean(c.Runs), "--runs") ?? GemvRequest.DefaultRuns,
            Isa = Clean(c.Isa),
            Bandwidth = Parse.Double(Clean(c.Bandwidth), "--bandwidth"),
        },
        (request, token) =>
        {
            var progress = LiveProgress.Start(context, $"{Gemv} {request.Rows}x{request.Cols}, {request.Threads} thread(s)", request.Steps);
            var result = request.Run(new LiveReporter(progress), token);
            progress.Complete();
            return result;
        });

    /// <summary>
    /// Builds and validates the request from the cell's options (a bad one fails the cell with its one-line message,
    /// before any work), then runs it off the kernel's thread and shares the result as <c>--as</c>.
    /// </summary>
    private static Task Run<TRequest>(KernelInvocationContext context, string name, string? asOption, string fallback,
        Func<TRequest> build, Func<TRequest, CancellationToken, object?> run) where TRequest : IRequest<object>
    {
        string variable;
        TRequest request;
        try
        {
            variable = Variable(asOption, fallback);
            request = build();
            request.Validate();
        }
        catch (ArgumentException e)
        {
            return Magic.RunAsync(context, name, _ => throw e);
        }
        return Magic.RunAsync(context, name, token => Task.Run(() => run(request, token), token), variable);
    }

    /// <summary>A request's progress drawn on a live progress bar (synchronously, in order).</summary>
    private sealed class LiveReporter(LiveProgress bar) : IProgress<RunProgress>
    {
        public void Report(RunProgress p) => bar.Report(p.Done, p.Stage);
    }

    internal static string? Clean(string? s) => s?.Trim().Trim('"').Trim();

    internal static string Variable(string? s, string fallback)
    {
        var v = Clean(s) is { Length: > 0 } x ? x : fallback;
        return Microsoft.CodeAnalysis.CSharp.SyntaxFacts.IsValidIdentifier(v) ? v : throw new ArgumentException($"--as '{v}' is not a C# identifier", "as");
    }
}
