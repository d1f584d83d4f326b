using System.Globalization;

namespace Workbench.Engine.Requests;

/// <summary>The one parser for option values that CLI verbs and magics share; errors name the option.</summary>
public static class Parse
{
    /// <summary>A comma-separated list of non-negative layer indices ("1,2,3"; spaces allowed); empty text gives none.</summary>
    public static int[] Layers(string? text, string option)
    {
        if (string.IsNullOrWhiteSpace(text)) return [];
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var layers = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out layers[i]))
                throw new OptionException(option, $"{option} '{text}': '{parts[i]}' is not a layer index (a comma-separated list like 1,2,3)");
        return layers;
    }

    /// <summary>An integer option given as text (magics receive text); null or empty text gives null.</summary>
    public static int? Int(string? text, string option)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        return int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v)
            ? v : throw new OptionException(option, $"{option} '{text}' is not an integer");
    }

    /// <summary>A finite number option given as text; null or empty text gives null.</summary>
    public static double? Double(string? text, string option)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        return double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)
            ? v : throw new OptionException(option, $"{option} '{text}' is not a finite number");
    }
}
