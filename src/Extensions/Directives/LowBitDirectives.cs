using System.Globalization;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.Directives;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Tensors;

namespace Workbench.Interactive.Directives;

/// <summary><c>#!bitnet --model NAME|PATH --format i2s|tl1|tl2 [--threads T] [--as VAR]</c>, as <c>workbench bitnet</c>.</summary>
public sealed class BitNetDirectiveCommand : KernelDirectiveCommand
{
    public string? Model { get; set; }
    public string? Format { get; set; }
    public string? Threads { get; set; }
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

    /// <summary>Default timed runs of <c>#!gemv</c>: fewer than the CLI's 101, so a notebook cell stays short.</summary>
    public const int DefaultRuns = 21;

    public static void Add(Kernel kernel)
    {
        var bitnet = new KernelActionDirective(BitNet)
        {
            Description = "Ternary (BitNet b1.58) post-training quantization of a model's linears: the lossless check of the packed kernels on real activations and the quality cost against fp32.",
            Parameters =
            {
                new KernelDirectiveParameter("--model", $"bundled model ({string.Join(", ", ModelHub.BundledNames)}) or a path") { AllowImplicitName = true, Required = true },
                new KernelDirectiveParameter("--format", "packed ternary format: i2s, tl1 or tl2") { Required = true },
                new KernelDirectiveParameter("--threads", $"kernel threads, 1..{Environment.ProcessorCount} (default 1)") { TypeHint = "number" },
                new KernelDirectiveParameter("--as", "C# variable for the TernaryReport (default: bitnet)"),
            },
        };
        kernel.AddDirective<BitNetDirectiveCommand>(bitnet, (command, context) => RunBitNet(command, context));

        var gemv = new KernelActionDirective(Gemv)
        {
            Description = "Time a cold-weight GEMV (weights streamed from DRAM, activation quantization included) in one or several formats, beside each format's memory-bandwidth floor.",
            Parameters =
            {
                new KernelDirectiveParameter("--format", "one weight format: f32, int8, i2s, tl1 or tl2"),
                new KernelDirectiveParameter("--compare", "several formats, comma separated (e.g. f32,int8,i2s,tl2), or all"),
                new KernelDirectiveParameter("--rows", "output rows M, 1..1048576") { Required = true, TypeHint = "number" },
                new KernelDirectiveParameter("--cols", "input columns K, 1..65536") { Required = true, TypeHint = "number" },
                new KernelDirectiveParameter("--threads", $"threads, 1..{Environment.ProcessorCount} (default 1)") { TypeHint = "number" },
                new KernelDirectiveParameter("--runs", $"timed runs per format, the median is reported (default {DefaultRuns})") { TypeHint = "number" },
                new KernelDirectiveParameter("--isa", "kernel path: scalar, v128, v256, v512 (default: widest supported)"),
                new KernelDirectiveParameter("--bandwidth", "read bandwidth in GB/s for the floor (default: measured now)") { TypeHint = "number" },
                new KernelDirectiveParameter("--as", "C# variable for the GemvComparison (default: gemv)"),
            },
        };
        kernel.AddDirective<GemvDirectiveCommand>(gemv, (command, context) => RunGemv(command, context));
    }

    private static Task RunBitNet(BitNetDirectiveCommand c, KernelInvocationContext context)
    {
        string model, variable;
        LowBitFormat format;
        int threads;
        try
        {
            variable = Variable(c.As, "bitnet");
            model = Clean(c.Model) is { Length: > 0 } m ? m : throw new ArgumentException("--model is required (a bundled name or a path).", "model");
            format = ParseFormat(c.Format, ternaryOnly: true);
            threads = ParseInt(c.Threads, "--threads", 1, Environment.ProcessorCount, 1);
        }
        catch (ArgumentException e)
        {
            return Magic.RunAsync(context, BitNet, _ => throw e);
        }
        return Magic.RunAsync(context, BitNet, token => Task.Run<object?>(() =>
        {
            var loaded = ModelHub.Load(model);
            var progress = LiveProgress.Start(context, $"{BitNet} {loaded.Name} {Name(format)}", TernaryReport.Stages);
            var report = TernaryReport.Run(loaded, format, threads, (done, stage) => progress.Report(done, stage), token);
            progress.Complete(report.Lossless.Lossless ? "lossless" : "NOT lossless");
            return report;
        }, token), variable);
    }

    private static Task RunGemv(GemvDirectiveCommand c, KernelInvocationContext context)
    {
        string variable;
        IReadOnlyList<LowBitFormat> formats;
        int rows, cols, threads, runs;
        IsaPath? isa;
        double? bandwidth;
        try
        {
            variable = Variable(c.As, "gemv");
            formats = ParseFormats(c.Format, c.Compare);
            rows = ParseInt(c.Rows, "--rows", 1, 1 << 20);
            cols = ParseInt(c.Cols, "--cols", 1, 1 << 16);
            threads = ParseInt(c.Threads, "--threads", 1, Environment.ProcessorCount, 1);
            runs = ParseInt(c.Runs, "--runs", 1, 100_000, DefaultRuns);
            isa = ParseIsa(c.Isa);
            bandwidth = ParseBandwidth(c.Bandwidth);
        }
        catch (ArgumentException e)
        {
            return Magic.RunAsync(context, Gemv, _ => throw e);
        }
        return Magic.RunAsync(context, Gemv, token => Task.Run<object?>(() =>
        {
            var progress = LiveProgress.Start(context, $"{Gemv} {rows}x{cols}, {threads} thread(s)", formats.Count + 1);
            var result = GemvComparison.Run(formats, rows, cols, threads, runs, isa, bandwidth, (done, next) => progress.Report(done, next), token);
            progress.Complete();
            return result;
        }, token), variable);
    }

    // ---- option parsing: each bad value is one ArgumentException naming the option ----

    internal static string? Clean(string? s) => s?.Trim().Trim('"').Trim();

    internal static string Variable(string? s, string fallback)
    {
        var v = Clean(s) is { Length: > 0 } x ? x : fallback;
        return Microsoft.CodeAnalysis.CSharp.SyntaxFacts.IsValidIdentifier(v) ? v : throw new ArgumentException($"--as '{v}' is not a C# identifier", "as");
    }

    internal static LowBitFormat ParseFormat(string? s, bool ternaryOnly)
    {
        var v = Clean(s)?.ToLowerInvariant();
        var allowed = ternaryOnly ? "i2s, tl1 or tl2" : "f32, int8, i2s, tl1 or tl2";
        return v switch
        {
            null or "" => throw new ArgumentException($"--format is required ({allowed}).", "format"),
            "f32" when !ternaryOnly => LowBitFormat.F32,
            "int8" when !ternaryOnly => LowBitFormat.Int8,
            "i2s" => LowBitFormat.I2S,
            "tl1" => LowBitFormat.TL1,
            "tl2" => LowBitFormat.TL2,
            _ => throw new ArgumentException($"--format '{Clean(s)}' is not one of {allowed}.", "format"),
        };
    }

    internal static IReadOnlyList<LowBitFormat> ParseFormats(string? format, string? compare)
    {
        bool hasFormat = !string.IsNullOrWhiteSpace(Clean(format)), hasCompare = !string.IsNullOrWhiteSpace(Clean(compare));
        if (hasFormat && hasCompare) throw new ArgumentException("give --format (one format) or --compare (several), not both.", "compare");
        if (hasFormat) return [ParseFormat(format, ternaryOnly: false)];
        if (!hasCompare) throw new ArgumentException("--format (f32, int8, i2s, tl1 or tl2) or --compare (a comma-separated list, or all) is required.", "format");
        var list = Clean(compare)!;
        if (list.Equals("all", StringComparison.OrdinalIgnoreCase)) return Enum.GetValues<LowBitFormat>();
        var formats = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(f => ParseFormat(f, ternaryOnly: false)).ToList();
        if (formats.Count == 0) throw new ArgumentException("--compare lists no format.", "compare");
        if (formats.Distinct().Count() != formats.Count) throw new ArgumentException($"--compare '{list}' names a format twice.", "compare");
        return formats;
    }

    internal static int ParseInt(string? s, string option, int min, int max, int? fallback = null)
    {
        var v = Clean(s);
        if (string.IsNullOrEmpty(v))
            return fallback ?? throw new ArgumentException($"{option} is required (an integer in {min}..{max}).", option.TrimStart('-'));
        if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n < min || n > max)
            throw new ArgumentOutOfRangeException(option.TrimStart('-'), v, $"{option} '{v}' must be an integer in {min}..{max}.");
        return n;
    }

    internal static IsaPath? ParseIsa(string? s)
    {
        var v = Clean(s)?.ToLowerInvariant();
        IsaPath? path = v switch
        {
            null or "" => null,
            "scalar" => IsaPath.Scalar,
            "v128" => IsaPath.V128,
            "v256" => IsaPath.V256,
            "v512" => IsaPath.V512,
            _ => throw new ArgumentException($"--isa '{Clean(s)}' is not one of scalar, v128, v256, v512.", "isa"),
        };
        if (path is { } p && !Isa.Supported(p))
            throw new ArgumentException($"--isa {v}: this machine (or this process's DOTNET_Enable* settings) cannot run the {p} path; supported: {string.Join(", ", Isa.SupportedPaths)}.", "isa");
        return path;
    }

    internal static double? ParseBandwidth(string? s)
    {
        var v = Clean(s);
        if (string.IsNullOrEmpty(v)) return null;
        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double gbps) || !(gbps > 0) || !double.IsFinite(gbps) || gbps > 10_000)
            throw new ArgumentOutOfRangeException("bandwidth", v, $"--bandwidth '{v}' must be a number of GB/s in (0, 10000].");
        return gbps;
    }

    internal static string Name(LowBitFormat f) => f.ToString().ToLowerInvariant();
}
