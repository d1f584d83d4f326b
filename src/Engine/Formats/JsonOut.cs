using System.Collections;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Workbench.Engine.Formats;

/// <summary>
/// JSON of plain values without reflection (the native, trimmed CLI has no reflection serializer), written as the
/// reflection serializer wrote them: numbers as numbers (NaN and infinities as the strings "NaN", "Infinity",
/// "-Infinity", as with AllowNamedFloatingPointLiterals), enums as their numbers, dictionaries with string keys as
/// objects, other sequences as arrays, nodes as they are.
/// </summary>
public static class JsonOut
{
    public static JsonNode? Node(object? value) => value switch
    {
        null => null,
        JsonNode n => n,
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        int i => JsonValue.Create(i),
        long l => JsonValue.Create(l),
        float f => float.IsFinite(f) ? JsonValue.Create(f) : JsonValue.Create(NamedLiteral(f)),
        double d => double.IsFinite(d) ? JsonValue.Create(d) : JsonValue.Create(NamedLiteral(d)),
        Enum e => JsonValue.Create(Convert.ToInt64(e, CultureInfo.InvariantCulture)),
        IDictionary dict => Object(dict),
        IEnumerable seq => new JsonArray([.. seq.Cast<object?>().Select(Node)]),
        _ => throw new NotSupportedException($"JsonOut: no JSON form for {value.GetType().Name}"),
    };

    /// <summary>A JSON object from (name, value) pairs, in that order.</summary>
    public static JsonObject Object(params (string Name, object? Value)[] properties)
    {
        var o = new JsonObject();
        foreach (var (name, value) in properties) o[name] = Node(value);
        return o;
    }

    /// <summary>Indented text (two spaces, the writer's default escaping), as JsonSerializer with WriteIndented.</summary>
    public static string Text(JsonNode value)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true })) value.WriteTo(w);
        return System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    private static JsonObject Object(IDictionary dict)
    {
        var o = new JsonObject();
        foreach (DictionaryEntry e in dict) o[(string)e.Key] = Node(e.Value);
        return o;
    }

    private static string NamedLiteral(double x) => double.IsNaN(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity";
}
