using Workbench.Engine.Tensors;
using System.CommandLine;
using System.Globalization;
using Workbench.Engine.LowBit;

namespace Workbench.Cli.Commands;

/// <summary>
/// <c>workbench bench gemv --format f32|int8|i2s|tl1|tl2 --rows M --cols K --threads T [--json]</c>: one cold-weight
/// GEMV timing through <see cref="GemvProbe"/>. Options are parsed here (not by the framework) so every bad value
/// gets one clear line on stderr and exit code 2.
/// </summary>
public static class BenchGemvCommand
{
    public const int UsageError = 2;

    /// <summary>The <c>gemv</c> verb; add it under a <c>bench</c> command (or use <see cref="CreateBenchGroup"/>).</summary>
    public static Command Create()
    {
        var format = new Option<string?>("--format") { Description = "Weight format: f32, int8, i2s, tl1 or tl2.", Arity = ArgumentArity.ZeroOrOne };
        var rows = new Option<string?>("--rows") { Description = "Output rows M.", Arity = ArgumentArity.ZeroOrOne };
        var cols = new Option<string?>("--cols") { Description = "Input columns K.", Arity = ArgumentArity.ZeroOrOne };
        var threads = new Option<string?>("--threads") { Description = "Threads (default 1).", Arity = ArgumentArity.ZeroOrOne };
        var runs = new Option<string?>("--runs") { Description = "Timed runs; the median is reported (default 101).", Arity = ArgumentArity.ZeroOrOne };
        var isa = new Option<string?>("--isa") { Description = "Kernel path: scalar, v128, v256, v512 (default: widest supported).", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (median_us, gops, weight_gbps, ...)." };
        var command = new Command("gemv", "Time one GEMV with cold weights (pool above the last-level cache) and activation quantization included.")
        {
            format, rows, cols, threads, runs, isa, json,
        };
        command.TreatUnmatchedTokensAsErrors = false; // reported by us, with exit code 2
        command.SetAction(parse =>
        {
            try
            {
                if (parse.UnmatchedTokens.Count > 0)
                    return Fail($"unexpected argument '{parse.UnmatchedTokens[0]}'.");
                var f = ParseFormat(parse.GetValue(format));
                int m = ParseInt(parse.GetValue(rows), "--rows", required: true, 1, 1 << 20);
                int k = ParseInt(parse.GetValue(cols), "--cols", required: true, 1, 1 << 16);
                int t = ParseInt(parse.GetValue(threads), "--threads", required: false, 1, Environment.ProcessorCount, 1);
                int n = ParseInt(parse.GetValue(runs), "--runs", required: false, 1, 100_000, 101);
                IsaPath? path = ParseIsa(parse.GetValue(isa));
                var r = GemvProbe.Run(f, m, k, t, n, path: path);
                // The memory floor of this shape on this machine: packed bytes at the measured read bandwidth.
                double bandwidth = GemvProbe.ReadBandwidthGBps(t);
                double floorUs = r.WeightBytes / bandwidth / 1e3;
                if (parse.GetValue(json))
                    CliHelpers.PrintJson(new
                    {
                        format = FormatName(r.Format), rows = r.Rows, cols = r.Cols, threads = r.Threads, isa = r.Path.ToString(),
                        runs = r.Runs, median_us = r.MedianUs, min_us = r.MinUs, gops = r.Gops, weight_gbps = r.WeightGBps,
                        weight_bytes = r.WeightBytes, bits_per_weight = r.BitsPerWeight, pool_copies = r.PoolCopies, pool_bytes = r.PoolBytes,
                        bandwidth_gbps = bandwidth, floor_us = floorUs, x_floor = r.MedianUs / floorUs,
                    });
                else
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{FormatName(r.Format)} {r.Rows}x{r.Cols} threads={r.Threads} isa={r.Path}: median {r.MedianUs:F1} us (min {r.MinUs:F1}), {r.Gops:F1} GOPS, weights {r.WeightGBps:F1} GB/s, {r.BitsPerWeight:F2} bits/weight, pool {r.PoolCopies} x {r.WeightBytes / 1e6:F1} MB; memory floor {floorUs:F0} us at {bandwidth:F1} GB/s read here (x{r.MedianUs / floorUs:F2})"));
                return 0;
            }
            catch (UsageException e)
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

    /// <summary>A <c>bench</c> command holding <c>gemv</c>, for a Program.cs that has no bench group yet.</summary>
    public static Command CreateBenchGroup() => new("bench", "Micro-benchmarks.") { Create() };

    private sealed class UsageException(string message) : Exception(message);

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"workbench bench gemv: {message}");
        return UsageError;
    }

    internal static LowBitFormat ParseFormat(string? s) => s?.ToLowerInvariant() switch
    {
        "f32" => LowBitFormat.F32,
        "int8" => LowBitFormat.Int8,
        "i2s" => LowBitFormat.I2S,
        "tl1" => LowBitFormat.TL1,
        "tl2" => LowBitFormat.TL2,
        null => throw new UsageException("--format is required (f32, int8, i2s, tl1 or tl2)."),
        _ => throw new UsageException($"--format '{s}' is not one of f32, int8, i2s, tl1, tl2."),
    };

    private static IsaPath? ParseIsa(string? s) => s?.ToLowerInvariant() switch
    {
        null => null,
        "scalar" => IsaPath.Scalar,
        "v128" => IsaPath.V128,
        "v256" => IsaPath.V256,
        "v512" => IsaPath.V512,
        _ => throw new UsageException($"--isa '{s}' is not one of scalar, v128, v256, v512."),
    };

    private static int ParseInt(string? s, string name, bool required, int min, int max, int fallback = 0)
    {
        if (s == null)
            return required ? throw new UsageException($"{name} is required (an integer in {min}..{max}).") : fallback;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min || v > max)
            throw new UsageException($"{name} '{s}' must be an integer in {min}..{max}.");
        return v;
    }

    private static string FormatName(LowBitFormat f) => f.ToString().ToLowerInvariant();
}
