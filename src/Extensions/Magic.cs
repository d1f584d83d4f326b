using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.CSharp;
using Workbench.Engine.Formats;
using Workbench.Engine.Requests;

namespace Workbench.Interactive;

/// <summary>
/// The common shape of every magic command handler: run the work, display the result, store it for C# code
/// (<see cref="Last"/> and, when a variable name is given, a variable of the C# kernel), and turn engine errors
/// into a clear message in the cell. A failed magic fails its command; the kernel stays alive.
/// </summary>
public static class Magic
{
    /// <summary>Runs <paramref name="work"/> for directive <paramref name="name"/> (e.g. "#!model").</summary>
    public static async Task RunAsync(
        KernelInvocationContext context,
        string name,
        Func<CancellationToken, Task<object?>> work,
        string? variable = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(work);
        object? result;
        try
        {
            result = await work(context.CancellationToken);
        }
        catch (Exception e) when (IsUserError(e))
        {
            var error = new WorkbenchError($"{name} failed", Describe(e));
            KernelInvocationContextExtensions.Display(context, error);
            Last.Set(name, error);
            // No exception object: the message is the whole story, a stack trace would bury it.
            context.Fail(context.Command, null, $"{name}: {Describe(e)}");
            return;
        }

        Last.Set(name, result);
        if (result is not null)
        {
            KernelInvocationContextExtensions.Display(context, result);
            if (variable is not null && context.HandlingKernel is CSharpKernel csharp)
                await csharp.SetValueAsync(variable, result, result.GetType());
        }
    }

    /// <summary>
    /// A request's progress on a live bar, reported synchronously (System.Progress posts to a context, which would
    /// reorder the updates); the last step (Done = Total) completes the bar with its detail.
    /// </summary>
    public static IProgress<RunProgress> Bar(LiveProgress bar) => new BarProgress(bar);

    private sealed class BarProgress(LiveProgress bar) : IProgress<RunProgress>
    {
        public void Report(RunProgress p)
        {
            if (p.Done >= p.Total) bar.Complete(p.Detail);
            else bar.Report(p.Done, p.Detail);
        }
    }

    /// <summary>Errors caused by the user's input (a file, an option), shown as a message rather than a stack trace.</summary>
    public static bool IsUserError(Exception e) => e is ModelFormatException or ArgumentException
        or FileNotFoundException or DirectoryNotFoundException or InvalidDataException or OperationCanceledException;

    private static string Describe(Exception e) => e switch
    {
        OperationCanceledException => "cancelled",
        _ => e.Message,
    };
}

/// <summary>The result of the most recent magic command, for C# code in later cells.</summary>
public static class Last
{
    private static readonly Dictionary<string, object?> ByDirective = new();

    /// <summary>The value the last magic command displayed (a <see cref="WorkbenchError"/> if it failed).</summary>
    public static object? Value { get; private set; }

    /// <summary>The directive that produced <see cref="Value"/>, e.g. "#!workbench-plotly".</summary>
    public static string? Directive { get; private set; }

    /// <summary>The last result of a given directive, typed; throws if there is none or it has another type.</summary>
    public static T Of<T>(string directive)
    {
        lock (ByDirective)
        {
            if (!ByDirective.TryGetValue(directive, out var value))
                throw new ArgumentException($"no result of {directive} yet", nameof(directive));
            return value is T t ? t
                : throw new InvalidCastException($"the last result of {directive} is {value?.GetType().Name ?? "null"}, not {typeof(T).Name}");
        }
    }

    internal static void Set(string directive, object? value)
    {
        lock (ByDirective)
        {
            ByDirective[directive] = value;
            Value = value;
            Directive = directive;
        }
    }
}
