using Workbench.Engine.LowBit;
using Workbench.Engine.Requests;

namespace Workbench.Engine.Quantization;

/// <summary>The one parser of low-bit format options (<c>--format</c>, <c>--compare</c>); names come from <see cref="LowBitFormats"/>.</summary>
public static class FormatOption
{
    /// <summary>One format name (case-insensitive); <paramref name="ternaryOnly"/> admits only the ternary formats.</summary>
    public static LowBitFormat Parse(string? text, string option, bool ternaryOnly = false)
    {
        var allowed = LowBitFormats.NameList(ternaryOnly);
        if (string.IsNullOrWhiteSpace(text)) throw new OptionException(option, $"{option} is required ({allowed}).");
        var f = LowBitFormats.Find(text);
        return f is not null && (!ternaryOnly || f.IsTernary) ? f.Format
            : throw new OptionException(option, $"{option} '{text.Trim()}' is not one of {allowed}.");
    }

    /// <summary>A comma-separated list of distinct format names, or <c>all</c> (every registered format).</summary>
    public static IReadOnlyList<LowBitFormat> ParseList(string text, string option)
    {
        ArgumentNullException.ThrowIfNull(text);
        var list = text.Trim();
        if (list.Equals("all", StringComparison.OrdinalIgnoreCase)) return LowBitFormats.All.Select(f => f.Format).ToArray();
        var formats = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(f => Parse(f, option)).ToList();
        if (formats.Count == 0) throw new OptionException(option, $"{option} lists no format.");
        if (formats.Distinct().Count() != formats.Count) throw new OptionException(option, $"{option} '{list}' names a format twice.");
        return formats;
    }

    /// <summary>An integer option that must lie in [min, max].</summary>
    internal static void CheckRange(int value, string option, int min, int max)
    {
        if (value < min || value > max) throw new OptionException(option, $"{option} '{value}' must be an integer in {min}..{max}.");
    }
}
