using System.CommandLine;
using System.Text.Json.Nodes;
using Workbench.Engine.Formats;
using Workbench.Engine.Requests;

namespace Workbench.Cli;

/// <summary>What every verb shares: JSON output, and turning engine errors into one clear line and an exit code.</summary>
public static class CliHelpers
{
    public const int ExitBadInput = 2;

    /// <summary>
    /// Prints an object built with <see cref="Obj"/>: no reflection, so the native binary prints what the JIT build
    /// prints (names, number formats and escaping as the reflection serializer wrote them before).
    /// </summary>
    public static void PrintJson(JsonNode value) => Console.Out.WriteLine(JsonOut.Text(value));

    /// <summary>A JSON object from (name, value) pairs (<see cref="JsonOut.Node"/> converts the values).</summary>
    public static JsonObject Obj(params (string Name, object? Value)[] properties) => JsonOut.Object(properties);

    /// <summary>This process's peak resident memory (VmHWM of /proc/self/status) in bytes; null where the system has none.</summary>
    public static long? PeakResidentBytes()
    {
        if (!OperatingSystem.IsLinux()) return null;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal)
                && long.TryParse(line[6..].Trim().Split(' ')[0], out long kb)) return kb * 1024;
        return null;
    }

    /// <summary>
    /// Runs a verb under the one error contract of every verb: bad input (a bad option, a missing, unreadable or
    /// malformed file) ends in exactly one line on <paramref name="error"/> (stderr by default) and exit code 2;
    /// cancellation exits 130. <paramref name="parse"/> lets a file error name the option that gave the path.
    /// </summary>
    public static int Run(Func<int> body, ParseResult? parse = null, TextWriter? error = null, string prefix = "workbench: error: ")
    {
        try
        {
            return body();
        }
        catch (OperationCanceledException)
        {
            (error ?? Console.Error).WriteLine("workbench: cancelled");
            return 130;
        }
        catch (Exception e) when (IsBadInput(e))
        {
            (error ?? Console.Error).WriteLine(prefix + OneLine(e, parse));
            return ExitBadInput;
        }
    }

    /// <summary>Errors caused by what the user gave: options, and files that are missing, unreadable or malformed.</summary>
    public static bool IsBadInput(Exception e) => e is ModelFormatException or ArgumentException or IOException
        or UnauthorizedAccessException or InvalidDataException or InvalidOperationException or NotSupportedException
        or PlatformNotSupportedException;

    /// <summary>
    /// The one-line form of a bad-input error. .NET's argument errors end in " (Parameter 'x')" and, for range errors,
    /// a second line "Actual value was ..."; both go, and a parameter named as an option ("--steps") that the message
    /// does not mention leads it. A file error about a path an option gave names that option.
    /// </summary>
    public static string OneLine(Exception e, ParseResult? parse = null)
    {
        var m = e.Message;
        if (e is ArgumentException { ParamName: { } p } and not OptionException)
        {
            int actual = m.IndexOf("\nActual value was", StringComparison.Ordinal);
            if (actual >= 0) m = m[..actual];
            var suffix = $" (Parameter '{p}')";
            if (m.EndsWith(suffix, StringComparison.Ordinal)) m = m[..^suffix.Length];
            if (p.StartsWith('-') && !m.Contains(p, StringComparison.Ordinal)) m = $"{p}: {m}";
        }
        else if (e is IOException or UnauthorizedAccessException && parse is not null && OptionGiving(parse, m) is var (option, path))
            m = Directory.Exists(path) ? $"{option} '{path}' is a folder where a file is expected" : $"{option} '{path}': {m}";
        return string.Join(" ", m.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
    }

    // The option whose value is the path a file error mentions (the longest, so "/a/b" wins over "/a").
    private static (string Option, string Path)? OptionGiving(ParseResult parse, string message) =>
        parse.CommandResult.Children.OfType<System.CommandLine.Parsing.OptionResult>()
            .SelectMany(o => o.Tokens.Select(t => (Option: o.Option.Name, Path: t.Value)))
            .Where(x => x.Path.Length > 0 && (message.Contains(x.Path, StringComparison.Ordinal)
                || message.Contains(System.IO.Path.GetFullPath(x.Path), StringComparison.Ordinal)))
            .OrderByDescending(x => x.Path.Length)
            .Select(x => ((string, string)?)x).FirstOrDefault();

    /// <summary>Progress on stderr, only when stderr is a terminal (scripts get clean output).</summary>
    public static IProgress<(int Done, int Total)>? TerminalProgress(string label) =>
        Console.IsErrorRedirected ? null : new Progress<(int Done, int Total)>(p =>
        {
            Console.Error.Write($"\r{label}: {p.Done}/{p.Total}   ");
            if (p.Done >= p.Total) Console.Error.WriteLine();
        });

    public static Option<string> ModelOption(string? description = null) => new("--model")
    {
        Description = description ?? $"a bundled model ({string.Join(", ", Workbench.Engine.Models.ModelHub.BundledNames)}) or a path (.bin, .gguf, Hugging Face folder)",
        Required = true,
    };

    /// <summary>--weights stored|fp32: linears kept in the file's type (default) or copied to fp32.</summary>
    public static Option<string?> WeightsOption() => new("--weights")
    {
        Description = "stored (default: bf16 / f16 / Q8_0 / Q4_0 linears stay memory-mapped in their type) or fp32 (copy every weight to fp32)",
    };

    public static Option<bool> JsonOption() => new("--json") { Description = "print one JSON object for scripts" };
}
