using System.CommandLine;
using System.Globalization;
using Workbench.Engine.LowBit;
using Workbench.Engine.Quantization;
using Workbench.Engine.Requests;

namespace Workbench.Cli.Commands;

/// <summary>
/// <c>workbench bench gemv --format F | --compare F1,F2,...|all --rows M --cols K [--threads T] [--runs N] [--isa P]
/// [--bandwidth GBPS] [--json]</c>: cold-weight GEMV timings through <see cref="GemvRequest"/>, as <c>#!gemv</c>.
/// Options are read as text and checked by the request, so every bad value is one line on stderr and exit code 2.
/// </summary>
public static class BenchGemvCommand
{
    public const int UsageError = 2;

    /// <summary>Timed runs when --runs is not given: more than the magic's, a terminal can wait.</summary>
    public const int DefaultRuns = 101;

    /// <summary>The <c>gemv</c> verb; add it under a <c>bench</c> command (or use <see cref="CreateBenchGroup"/>).</summary>
    public static Command Create()
    {
        var format = new Option<string?>("--format") { Description = $"Weight format: {LowBitFormats.NameList()}.", Arity = ArgumentArity.ZeroOrOne };
        var compare = new Option<string?>("--compare") { Description = "Several formats, comma separated (e.g. f32,int8,i2s,tl2), or all.", Arity = ArgumentArity.ZeroOrOne };
        var rows = new Option<string?>("--rows") { Description = "Output rows M.", Arity = ArgumentArity.ZeroOrOne };
        var cols = new Option<string?>("--cols") { Description = "Input columns K.", Arity = ArgumentArity.ZeroOrOne };
        var threads = new Option<string?>("--threads") { Description = "Threads (default 1).", Arity = ArgumentArity.ZeroOrOne };
        var runs = new Option<string?>("--runs") { Description = $"Timed runs; the median is reported (default {DefaultRuns}).", Arity = ArgumentArity.ZeroOrOne };
        var isa = new Option<string?>("--isa") { Description = "Kernel path: scalar, v128, v256, v512 (default: widest supported).", Arity = ArgumentArity.ZeroOrOne };
        var bandwidth = new Option<string?>("--bandwidth") { Description = "Read bandwidth in GB/s for the floor (default: measured now).", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per format (median_us, gops, weight_gbps, ...)." };
        var command = new Command("gemv", "Time one GEMV with cold weights (pool above the last-level cache) and activation quantization included.")
        {
            format, compare, rows, cols, threads, runs, isa, bandwidth, json,
        };
        command.TreatUnmatchedTokensAsErrors = false; // reported by us, with exit code 2
        command.SetAction(parse =>
        {
            if (parse.UnmatchedTokens.Count > 0)
                return Fail($"unexpected argument '{parse.UnmatchedTokens[0]}'.");
            try
            {
                var request = new GemvRequest
                {
                    Format = parse.GetValue(format),
                    Compare = parse.GetValue(compare),
                    Rows = Parse.Int(parse.GetValue(rows), "--rows"),
                    Cols = Parse.Int(parse.GetValue(cols), "--cols"),
                    Threads = Parse.Int(parse.GetValue(threads), "--threads") ?? 1,
                    Runs = Parse.Int(parse.GetValue(runs), "--runs") ?? DefaultRuns,
                    Isa = parse.GetValue(isa),
                    Bandwidth = Parse.Double(parse.GetValue(bandwidth), "--bandwidth"),
                };
                request.Validate();
                Render(request.Run(), parse.GetValue(json));
                return 0;
            }
            catch (OptionException e)
            {
                return Fail(e.Message);
            }
            catch (PlatformNotSupportedException e)
            {
                return Fail(e.Message);
            }
        });
        return command;
    }

    private static void Render(GemvComparison g, bool asJson)
    {
        foreach (var r in g.Results)
        {
            // The memory floor of this shape on this machine: packed bytes at the read bandwidth.
            double floorUs = g.FloorUs(r.WeightBytes);
            if (asJson)
                CliHelpers.PrintJson(CliHelpers.Obj(
                    ("format", r.Format.Name()), ("rows", r.Rows), ("cols", r.Cols), ("threads", r.Threads), ("isa", r.Path.ToString()),
                    ("runs", r.Runs), ("median_us", r.MedianUs), ("min_us", r.MinUs), ("gops", r.Gops), ("weight_gbps", r.WeightGBps),
                    ("weight_bytes", r.WeightBytes), ("bits_per_weight", r.BitsPerWeight), ("pool_copies", r.PoolCopies), ("pool_bytes", r.PoolBytes),
                    ("bandwidth_gbps", g.ReadGBps), ("floor_us", floorUs), ("x_floor", r.MedianUs / floorUs)));
            else
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Format.Name()} {r.Rows}x{r.Cols} threads={r.Threads} isa={r.Path}: median {r.MedianUs:F1} us (min {r.MinUs:F1}), {r.Gops:F1} GOPS, weights {r.WeightGBps:F1} GB/s, {r.BitsPerWeight:F2} bits/weight, pool {r.PoolCopies} x {r.WeightBytes / 1e6:F1} MB; memory floor {floorUs:F0} us at {g.ReadGBps:F1} GB/s {(g.BandwidthMeasured ? "read here" : "given")} (x{r.MedianUs / floorUs:F2})"));
        }
    }

    /// <summary>A <c>bench</c> command holding <c>gemv</c>, for a Program.cs that has no bench group yet.</summary>
    public static Command CreateBenchGroup() => new("bench", "Micro-benchmarks.") { Create(), BenchDecodeCommand.Create(), BenchMakeModelCommand.Create() };

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"workbench bench gemv: {message}");
        return UsageError;
    }
}
