using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Workbench.Engine.Formats;

namespace Workbench.Cli;

/// <summary>What every verb shares: JSON output, and turning engine errors into one clear line and an exit code.</summary>
public static class CliHelpers
{
    public const int ExitBadInput = 2;

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static void PrintJson(object value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, Json));

    /// <summary>Runs a verb; bad files and bad options end in one line on stderr and exit code 2.</summary>
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is ModelFormatException or ArgumentException or FileNotFoundException
                                      or DirectoryNotFoundException or InvalidOperationException or NotSupportedException
                                      or PlatformNotSupportedException)
        {
            Console.Error.WriteLine($"workbench: error: {e.Message}");
            return ExitBadInput;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("workbench: cancelled");
            return 130;
        }
    }

    /// <summary>Progress on stderr, only when stderr is a terminal (scripts get clean output).</summary>
    public static IProgress<(int Done, int Total)>? TerminalProgress(string label) =>
        Console.IsErrorRedirected ? null : new Progress<(int Done, int Total)>(p =>
        {
            Console.Error.Write($"\r{label}: {p.Done}/{p.Total}   ");
            if (p.Done >= p.Total) Console.Error.WriteLine();
        });

    public static Option<string> ModelOption(string? description = null) => new("--model")
    {
        Description = description ?? "a bundled model (stories260K, stories260K-gguf, babyllama, minilm) or a path (.bin, .gguf, Hugging Face folder)",
        Required = true,
    };

    public static Option<bool> JsonOption() => new("--json") { Description = "print one JSON object for scripts" };
}
