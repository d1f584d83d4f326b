using System.Globalization;
using Workbench.Engine.Requests;
using Workbench.Engine.TokenDrop;

namespace Workbench.Engine.Training;

/// <summary>
/// PyramidDrop while training (<c>--pyramid LAYERS:KEEP</c>), PyramidDrop's training recipe (Xing et al., 2024: image
/// tokens dropped stage by stage, the text and its loss untouched) carried over to a text window of T input positions:
/// <list type="bullet">
/// <item>position 0 (the window's first token, the attention sink, as BOS at inference) is protected;</item>
/// <item>positions 1 .. C-1 are the <b>context</b>, C = round(T x <see cref="ContextFraction"/>) clamped to 2 .. T-1: the
/// droppable tokens (LLaVA's image tokens);</item>
/// <item>positions C .. T-1 are the <b>suffix</b>: protected, and the only positions that carry the loss (each predicts
/// the token after it; LLaVA's answer). The last position T-1 is the query.</item>
/// </list>
/// At each boundary b of <see cref="Schedule"/> (before block b, 0-based; "after b blocks" as in <see cref="PyramidSchedule"/>)
/// the context rows still alive are ranked by the attention the query row pays them in block b, mean over heads, and
/// k = max(1, ceil(KEEP x alive)) of them survive (ties: the earlier token), with every protected row, in order and with
/// their original rotary positions. Blocks from b on run on the survivors only; the final norm and the classifier run on
/// the suffix only. Training without a pyramid uses every position's loss; to compare like with like, a pyramid run also
/// trains the same model on the same batches with the same suffix loss and no drop (<see cref="TrainResult.Baseline"/>).
/// </summary>
public sealed record TrainingPyramid(PyramidSchedule Schedule, double ContextFraction = TrainingPyramid.DefaultContext)
{
    public const double DefaultContext = 0.75;

    /// <summary>The shortest window with a protected first token, one context token and one suffix token.</summary>
    public const int MinWindow = 3;

    /// <summary>C: the first suffix position of a window of <paramref name="inputs"/> positions.</summary>
    public int ContextEnd(int inputs) => Math.Clamp((int)Math.Round(inputs * ContextFraction, MidpointRounding.AwayFromZero), 2, inputs - 1);

    public static bool IsContext(int position, int contextEnd) => position >= 1 && position < contextEnd;

    /// <summary>
    /// LAYERS:KEEP, e.g. 2,3,4:0.5 (one ratio at every boundary) or 2,4:0.5,0.25 (one per boundary), for a model of
    /// <paramref name="layers"/> blocks (boundaries in 1 .. layers-1).
    /// </summary>
    public static TrainingPyramid Parse(string text, int layers, double context = DefaultContext)
    {
        const string option = "--pyramid";
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
            throw new OptionException(option, $"{option} '{text}' must be LAYERS:KEEP (e.g. 2,3,4:0.5)");
        var boundaries = Requests.Parse.Layers(text[..colon], option);
        var keep = text[(colon + 1)..].Split(',', StringSplitOptions.TrimEntries)
            .Select(k => double.TryParse(k, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)
                ? v : throw new OptionException(option, $"{option} '{text}': keep ratio '{k}' is not a number")).ToArray();
        if (!(context > 0 && context < 1)) throw new OptionException("--context", $"--context {context} must be in (0, 1)");
        PyramidSchedule schedule;
        try { schedule = new PyramidSchedule(boundaries, keep); }
        catch (ArgumentException e) { throw new OptionException(option, $"{option} '{text}': {FirstLine(e.Message)}"); }
        if (schedule.Boundaries[^1] >= layers)
            throw new OptionException(option, $"{option} '{text}': boundary {schedule.Boundaries[^1]} is outside 1..{layers - 1} for a {layers}-layer model");
        return new TrainingPyramid(schedule, context);
    }

    public override string ToString() => $"{Schedule.LayersText}:{Schedule.KeepText}";

    private static string FirstLine(string message)
    {
        int i = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        return (i >= 0 ? message[..i] : message).Split('\n')[0].Trim();
    }
}
