using System.Diagnostics;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Formatting;

namespace Workbench.Interactive;

/// <summary>The state a <see cref="LiveProgress"/> shows.</summary>
public sealed record ProgressState(string Title, long Done, long Total, string? Note, bool Finished)
{
    public double Fraction => Total <= 0 ? 0 : Math.Clamp((double)Done / Total, 0, 1);
}

/// <summary>
/// A progress bar displayed once and updated in place (one DisplayedValue). Each <see cref="Report"/> also checks the
/// cell's cancellation token, so a long loop stops when the user interrupts the cell.
/// </summary>
public sealed class LiveProgress
{
    private readonly DisplayedValue displayed;
    private readonly Stopwatch sinceUpdate = Stopwatch.StartNew();
    private ProgressState state;

    /// <summary>Minimum time between two display updates (the last one is always shown).</summary>
    public static TimeSpan Throttle { get; set; } = TimeSpan.FromMilliseconds(100);

    private LiveProgress(KernelInvocationContext context, ProgressState initial)
    {
        Token = context.CancellationToken;
        state = initial;
        displayed = KernelInvocationContextExtensions.Display(context, initial);
    }

    /// <summary>Displays a progress bar in the current cell.</summary>
    public static LiveProgress Start(KernelInvocationContext context, string title, long total)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (total < 0) throw new ArgumentOutOfRangeException(nameof(total), total, "must be >= 0");
        return new LiveProgress(context, new ProgressState(title, 0, total, null, false));
    }

    /// <summary>Displays a progress bar in the cell being run (KernelInvocationContext.Current).</summary>
    public static LiveProgress Start(string title, long total) =>
        Start(KernelInvocationContext.Current ?? throw new InvalidOperationException("no cell is running"), title, total);

    /// <summary>The cell's cancellation token.</summary>
    public CancellationToken Token { get; }

    /// <summary>The state last reported.</summary>
    public ProgressState State => state;

    /// <summary>Reports progress; throws OperationCanceledException when the cell was cancelled.</summary>
    public void Report(long done, string? note = null)
    {
        Token.ThrowIfCancellationRequested();
        state = state with { Done = done, Note = note };
        if (sinceUpdate.Elapsed >= Throttle || done >= state.Total)
        {
            displayed.Update(state);
            sinceUpdate.Restart();
        }
    }

    /// <summary>Marks the work finished and shows the final state.</summary>
    public void Complete(string? note = null)
    {
        state = state with { Done = state.Total, Note = note ?? state.Note, Finished = true };
        displayed.Update(state);
    }

    internal static void Register()
    {
        Formatter.Register<ProgressState>((p, writer) => writer.Write(ToHtml(p)), HtmlFormatter.MimeType);
        Formatter.Register<ProgressState>((p, writer) => writer.Write($"{p.Title}: {p.Done}/{p.Total}{(p.Note is null ? "" : " " + p.Note)}"), PlainTextFormatter.MimeType);
        Formatter.SetPreferredMimeTypesFor(typeof(ProgressState), HtmlFormatter.MimeType, PlainTextFormatter.MimeType);
    }

    internal static string ToHtml(ProgressState p)
    {
        var percent = (p.Fraction * 100).ToString("F0", System.Globalization.CultureInfo.InvariantCulture);
        var note = p.Note is null ? "" : " &middot; " + System.Net.WebUtility.HtmlEncode(p.Note);
        var color = p.Finished ? "#2a7" : "#47c";
        return "<div class=\"workbench-progress\" style=\"font-family:sans-serif;font-size:12px\">" +
               $"<div>{System.Net.WebUtility.HtmlEncode(p.Title)}: {p.Done}/{p.Total} ({percent}%){note}</div>" +
               $"<div style=\"width:300px;height:8px;background:#eee\"><div style=\"width:{percent}%;height:8px;background:{color}\"></div></div></div>";
    }
}
