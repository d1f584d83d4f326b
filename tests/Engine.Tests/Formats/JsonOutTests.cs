using System.Text.Json;
using System.Text.Json.Serialization;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Tests.Formats;

/// <summary>
/// JsonOut (the reflection-free JSON of the native CLI and of config.json) against System.Text.Json's reflection
/// serializer, which the CLI used before: the same text for the values the verbs print.
/// </summary>
public class JsonOutTests
{
    private static readonly JsonSerializerOptions Reflection = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static TheoryData<string, object?> Values() => new()
    {
        { "numbers", new Dictionary<string, object?> { ["i"] = -7, ["l"] = 1L << 40, ["f"] = 0.1f, ["d"] = 1.0 / 3, ["tiny"] = 5e-324, ["big"] = 3.4e38f, ["zero"] = -0.0 } },
        { "named floats", new Dictionary<string, object?> { ["nan"] = double.NaN, ["inf"] = double.PositiveInfinity, ["ninf"] = float.NegativeInfinity, ["fnan"] = float.NaN } },
        { "text", new Dictionary<string, object?> { ["s"] = "Lily's mom said, \"go\"\n<tab>\t é 漢 \u0001", ["empty"] = "", ["none"] = null, ["yes"] = true } },
        { "enum as number", new Dictionary<string, object?> { ["dtype"] = DType.BF16 } },
        { "arrays", new Dictionary<string, object?> { ["ints"] = new[] { 1, 2, 3 }, ["floats"] = new[] { new[] { 1.5f, float.NaN }, Array.Empty<float>() }, ["longs"] = new List<long> { 4, 5 }, ["bools"] = new[] { true, false } } },
        { "nested", new Dictionary<string, object> { ["outer"] = new Dictionary<string, object> { ["inner"] = new Dictionary<string, object> { ["x"] = 1 } }, ["list"] = new object[] { 1, "a", 2.5 } } },
    };

    [Theory]
    [MemberData(nameof(Values))]
    public void Writes_what_the_reflection_serializer_writes(string what, object? value)
    {
        string expected = JsonSerializer.Serialize(value, Reflection);
        Assert.True(expected.Length > 10, what);
        Assert.Equal(expected, JsonOut.Text(JsonOut.Node(value)!));
    }

    [Fact]
    public void Object_keeps_the_order_given_and_refuses_what_it_cannot_write()
    {
        var o = JsonOut.Object(("b", 1), ("a", new[] { "x" }), ("c", null));
        Assert.Equal("{\n  \"b\": 1,\n  \"a\": [\n    \"x\"\n  ],\n  \"c\": null\n}", JsonOut.Text(o).Replace("\r\n", "\n"));
        var e = Assert.Throws<NotSupportedException>(() => JsonOut.Node(new { anonymous = 1 }));
        Assert.Contains("no JSON form", e.Message);
    }
}
