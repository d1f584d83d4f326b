namespace Workbench.Engine.Requests;

/// <summary>How far a run has come: a stage name, work done out of the total, and an optional detail line.</summary>
public readonly record struct RunProgress(string Stage, int Done, int Total, string? Detail = null);

/// <summary>
/// One technique's request: the options with their defaults (init properties named as the CLI options and magics name
/// them), checked once by <see cref="Validate"/> (errors are <see cref="OptionException"/> naming the option), run by
/// <see cref="Run"/> with progress and cancellation, returning a plain result record. CLI verbs and magics only declare
/// the options, build the request and render the result.
/// </summary>
public interface IRequest<out TResult>
{
    /// <summary>Checks every option that can be checked without running; throws <see cref="OptionException"/>.</summary>
    void Validate();

    /// <summary>Validates, then runs.</summary>
    TResult Run(IProgress<RunProgress>? progress = null, CancellationToken cancel = default);
}

/// <summary>A bad option: the message names it (as <c>--option</c>), on one line, without .NET's "(Parameter ...)" suffix.</summary>
public sealed class OptionException(string option, string message) : ArgumentException(message, option)
{
    public string Option => ParamName!;
    public override string Message { get; } = OneLine(message.StartsWith(option, StringComparison.Ordinal) ? message : $"{option}: {message}");

    private static string OneLine(string s) => string.Join(" ", s.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
}
