using System.Globalization;
using Workbench.Engine.LowBit;
using Workbench.Engine.Requests;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Quantization;

/// <summary>
/// <c>workbench bench gemv</c> and <c>#!gemv</c>: cold-weight GEMV timings (<see cref="GemvComparison.Run"/>) of one
/// format (<c>--format</c>) or several (<c>--compare</c>), beside each format's memory-bandwidth floor.
/// </summary>
public sealed record GemvRequest : IRequest<GemvComparison>
{
    public const int MaxRows = 1 << 20, MaxRuns = 100_000;
    /// <summary>Default timed runs: few, so a notebook cell stays short (the CLI asks for more).</summary>
    public const int DefaultRuns = 21;

    /// <summary>One format name (<c>--format</c>); give this or <see cref="Compare"/>.</summary>
    public string? Format { get; init; }
    /// <summary>Several format names, comma separated, or <c>all</c> (<c>--compare</c>).</summary>
    public string? Compare { get; init; }
    public int? Rows { get; init; }
    public int? Cols { get; init; }
    public int Threads { get; init; } = 1;
    public int Runs { get; init; } = DefaultRuns;
    /// <summary>Kernel path (<c>--isa</c>): scalar, v128, v256, v512; null for the widest supported.</summary>
    public string? Isa { get; init; }
    /// <summary>Read bandwidth in GB/s for the floor (<c>--bandwidth</c>); null to measure it.</summary>
    public double? Bandwidth { get; init; }

    public void Validate() => Parsed();

    /// <summary>Progress steps of <see cref="Run"/>: one per format, then the read bandwidth.</summary>
    public int Steps => Parsed().Formats.Count + 1;

    private (IReadOnlyList<LowBitFormat> Formats, int Rows, int Cols, IsaPath? Path) Parsed()
    {
        bool hasFormat = !string.IsNullOrWhiteSpace(Format), hasCompare = !string.IsNullOrWhiteSpace(Compare);
        if (hasFormat && hasCompare) throw new OptionException("--compare", "give --format (one format) or --compare (several), not both.");
        if (!hasFormat && !hasCompare)
            throw new OptionException("--format", $"--format ({LowBitFormats.NameList()}) or --compare (a comma-separated list, or all) is required.");
        var formats = hasFormat ? [FormatOption.Parse(Format, "--format")] : FormatOption.ParseList(Compare!, "--compare");
        int rows = Required(Rows, "--rows", MaxRows), cols = Required(Cols, "--cols", Shapes.MaxCols);
        foreach (var f in formats)
            if (LowBitFormats.Get(f).Stored is { } st && cols % StoredMatrix.BlockOf(st) is not 0)
                throw new OptionException("--cols", $"--cols {cols}: {f.Name()} stores rows in blocks of {StoredMatrix.BlockOf(st)} weights; give a multiple of {StoredMatrix.BlockOf(st)}.");
        FormatOption.CheckRange(Threads, "--threads", 1, Environment.ProcessorCount);
        FormatOption.CheckRange(Runs, "--runs", 1, MaxRuns);
        if (Bandwidth is { } bw && !(bw > 0 && bw <= 10_000))
            throw new OptionException("--bandwidth", $"--bandwidth '{bw.ToString(CultureInfo.InvariantCulture)}' must be a number of GB/s in (0, 10000].");
        return (formats, rows, cols, ParseIsa(Isa));
    }

    private static int Required(int? value, string option, int max)
    {
        if (value is not { } v) throw new OptionException(option, $"{option} is required (an integer in 1..{max}).");
        FormatOption.CheckRange(v, option, 1, max);
        return v;
    }

    /// <summary>The kernel path a user typed; it must be one this machine (and process) can run.</summary>
    public static IsaPath? ParseIsa(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var v = text.Trim();
        if (!Enum.TryParse<IsaPath>(v, ignoreCase: true, out var path) || !Enum.IsDefined(path) || int.TryParse(v, out _))
            throw new OptionException("--isa", $"--isa '{v}' is not one of {string.Join(", ", Enum.GetValues<IsaPath>().Select(p => p.ToString().ToLowerInvariant()))}.");
        if (!Workbench.Engine.Tensors.Isa.Supported(path))
            throw new OptionException("--isa", $"--isa {v}: this machine (or this process's DOTNET_Enable* settings) cannot run the {path} path; supported: {string.Join(", ", Workbench.Engine.Tensors.Isa.SupportedPaths)}.");
        return path;
    }

    public GemvComparison Run(IProgress<RunProgress>? progress = null, CancellationToken cancel = default)
    {
        var (formats, rows, cols, path) = Parsed();
        int total = Steps;
        return GemvComparison.Run(formats, rows, cols, Threads, Runs, path, Bandwidth,
            progress is null ? null : (done, next) => progress.Report(new RunProgress(next, done, total)), cancel);
    }
}
