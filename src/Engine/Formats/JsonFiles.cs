using System.Text;
using System.Text.Json;

namespace Workbench.Engine.Formats;

/// <summary>
/// JSON model files (config.json, safetensors headers and indexes, tokenizer.json) parsed so that every problem is
/// a <see cref="ModelFormatException"/>: invalid UTF-8 is found (with its offset) before parsing, nesting is limited
/// by System.Text.Json's depth limit (64), and values are read through accessors that check the kind first
/// (JsonElement's own getters throw InvalidOperationException or FormatException on a wrong kind).
/// </summary>
internal static class JsonFiles
{
    /// <summary>Parses <paramref name="bytes"/>; <paramref name="baseOffset"/> is where they start in the file.</summary>
    public static JsonDocument Parse(string path, ReadOnlyMemory<byte> bytes, string field, long baseOffset = 0)
    {
        if (InvalidUtf8At(bytes.Span) is { } bad)
            throw new ModelFormatException(path, field, baseOffset + bad, "invalid UTF-8");
        try { return JsonDocument.Parse(bytes); }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, field, baseOffset + (e.BytePositionInLine ?? 0),
                $"malformed JSON (line {(e.LineNumber ?? 0) + 1}): {e.Message.Split('\n')[0]}", e);
        }
    }

    /// <summary>The offset of the first byte that is not valid UTF-8, or null.</summary>
    public static long? InvalidUtf8At(ReadOnlySpan<byte> s)
    {
        if (System.Text.Unicode.Utf8.IsValid(s)) return null;
        for (int i = 0; i < s.Length;)
        {
            if (Rune.DecodeFromUtf8(s[i..], out _, out int n) != System.Buffers.OperationStatus.Done) return i;
            i += n;
        }
        return null;
    }

    /// <summary>A string value, or null when the element is not a string (or an escaped lone surrogate).</summary>
    public static string? Str(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.String) return null;
        try { return e.GetString(); }
        catch (InvalidOperationException) { return null; }
    }

    public static bool TryInt32(JsonElement e, out int v)
    {
        v = 0;
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out v);
    }

    public static bool TryInt64(JsonElement e, out long v)
    {
        v = 0;
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out v);
    }

    /// <summary>A finite float value (1e308 does not fit a float and is refused).</summary>
    public static bool TryFloat(JsonElement e, out float v)
    {
        v = 0;
        return e.ValueKind == JsonValueKind.Number && e.TryGetSingle(out v) && float.IsFinite(v);
    }
}
