using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;

namespace Workbench.Engine.Tests.Fuzz;

/// <summary>
/// Seeded mutations of real files, as an attacker would try them: bit flips, bytes and integer fields set to 0, -1,
/// huge and off-by-one values, truncations, deleted, duplicated and overlapping chunks, invalid UTF-8, protobuf varints
/// running off the end; JSON type swaps and deep nesting for JSON files. <paramref name="hot"/> is the region where the
/// headers live (most mutations land there, the rest anywhere).
/// </summary>
internal static class Mutator
{
    private static readonly long[] Interesting =
    [
        0, 1, -1, 2, 7, 8, 31, 32, 255, 256, 0x7FFF, 0xFFFF, 0x10000, int.MaxValue, int.MinValue, uint.MaxValue,
        (long)int.MaxValue + 1, 1L << 40, long.MaxValue, long.MinValue, 134_217_733, 1_000_000,
    ];

    public static byte[] Bytes(byte[] seed, Random rng, int hot)
    {
        var b = new List<byte>(seed);
        int ops = 1 + rng.Next(rng.Next(2) == 0 ? 1 : 4);
        for (int o = 0; o < ops && b.Count > 0; o++)
        {
            int Pos() => rng.Next(3) > 0 ? rng.Next(Math.Min(hot, b.Count)) : rng.Next(b.Count);
            switch (rng.Next(12))
            {
                case 0: case 1: { int p = Pos(); b[p] ^= (byte)(1 << rng.Next(8)); break; }
                case 2: { int p = Pos(); b[p] = rng.Next(3) switch { 0 => 0, 1 => 0xFF, _ => (byte)rng.Next(256) }; break; }
                case 3: case 4: // an integer field set to an interesting value
                    {
                        int width = rng.Next(2) == 0 ? 4 : 8;
                        int p = Pos() & ~(rng.Next(2) == 0 ? width - 1 : 0);
                        if (p + width > b.Count) break;
                        long v = rng.Next(4) == 0 ? seed.Length + rng.Next(-2, 3) : Interesting[rng.Next(Interesting.Length)];
                        Span<byte> tmp = stackalloc byte[8];
                        BinaryPrimitives.WriteInt64LittleEndian(tmp, v);
                        for (int i = 0; i < width; i++) b[p + i] = tmp[i];
                        break;
                    }
                case 5: // truncation, often inside the header
                    { int keep = rng.Next(3) == 0 ? rng.Next(Math.Min(hot, b.Count)) : rng.Next(b.Count); b.RemoveRange(keep, b.Count - keep); break; }
                case 6: { int p = Pos(); int n = Math.Min(b.Count - p, 1 + rng.Next(64)); b.RemoveRange(p, n); break; }
                case 7: // duplicate a chunk: repeated records, overlapping offsets
                    {
                        int p = Pos(); int n = Math.Min(b.Count - p, 1 + rng.Next(256));
                        b.InsertRange(Pos(), b.GetRange(p, n));
                        break;
                    }
                case 8: // copy a chunk over another: fields pointing into each other
                    {
                        int p = Pos(), q = Pos(); int n = Math.Min(Math.Min(b.Count - p, b.Count - q), 1 + rng.Next(32));
                        var chunk = b.GetRange(p, n);
                        for (int i = 0; i < n; i++) b[q + i] = chunk[i];
                        break;
                    }
                case 9: // invalid UTF-8 and stray control bytes
                    {
                        byte[][] bad = [[0xC3], [0xFF, 0xFE], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0x00], [0xE2, 0x82]];
                        b.InsertRange(Pos(), bad[rng.Next(bad.Length)]);
                        break;
                    }
                case 10: // a protobuf varint that never ends (or runs off the end of the file)
                    {
                        int n = 1 + rng.Next(12);
                        var v = Enumerable.Repeat((byte)0xFF, n).ToArray();
                        if (rng.Next(2) == 0) b.AddRange(v); else b.InsertRange(Pos(), v);
                        break;
                    }
                case 11: { int p = Pos(); int n = 1 + rng.Next(16); var r = new byte[n]; rng.NextBytes(r); b.InsertRange(p, r); break; }
            }
        }
        return [.. b];
    }

    /// <summary>JSON-aware mutations: a value replaced by another type or an extreme number, keys removed, deep nesting; or raw byte mutations.</summary>
    public static byte[] Json(byte[] seed, Random rng)
    {
        if (rng.Next(4) == 0) return Bytes(seed, rng, seed.Length);
        JsonNode? root;
        try { root = JsonNode.Parse(seed); } catch { return Bytes(seed, rng, seed.Length); }
        if (root is null) return Bytes(seed, rng, seed.Length);
        var nodes = new List<JsonNode>();
        void Walk(JsonNode n)
        {
            nodes.Add(n);
            if (n is JsonObject o) foreach (var kv in o) { if (kv.Value is not null) Walk(kv.Value); }
            else if (n is JsonArray a) foreach (var x in a) { if (x is not null) Walk(x); }
        }
        Walk(root);
        int ops = 1 + rng.Next(3);
        for (int k = 0; k < ops; k++)
        {
            var target = nodes[rng.Next(nodes.Count)];
            if (target.Parent is null) continue;
            JsonNode? replacement = rng.Next(14) switch
            {
                0 => JsonValue.Create(2147483647),
                1 => JsonValue.Create(134_217_733),
                2 => JsonValue.Create(-1),
                3 => JsonValue.Create(0),
                4 => JsonValue.Create(1e308),
                5 => JsonValue.Create("x"),
                6 => JsonValue.Create(true),
                7 => null,
                8 => new JsonArray(JsonValue.Create(1), JsonValue.Create("a")),
                9 => new JsonObject { ["a"] = 1 },
                10 => JsonValue.Create(3.5),
                11 => JsonValue.Create("<0xZZ>"),
                12 => JsonValue.Create(9_223_372_036_854_775_807L),
                _ => Deep(rng.Next(2) == 0 ? 70 : 2000),
            };
            if (target.Parent is JsonObject po)
            {
                string key = target.GetPropertyName();
                if (rng.Next(6) == 0) po.Remove(key);
                else po[key] = replacement;
            }
            else if (target.Parent is JsonArray pa)
            {
                int i = target.GetElementIndex();
                if (rng.Next(6) == 0) pa.RemoveAt(i);
                else pa[i] = replacement;
            }
            nodes.Clear();
            Walk(root);
        }
        string text;
        try { text = root.ToJsonString(); } catch { return Bytes(seed, rng, seed.Length); }
        var bytes = Encoding.UTF8.GetBytes(text);
        return rng.Next(5) == 0 ? Bytes(bytes, rng, bytes.Length) : bytes;
    }

    // Nesting beyond System.Text.Json's default depth (64) is written as text: JsonNode cannot hold it.
    private static JsonNode? Deep(int depth)
    {
        if (depth > 60) depth = 60;
        JsonNode n = JsonValue.Create(1);
        for (int i = 0; i < depth; i++) n = new JsonArray(n);
        return n;
    }

    /// <summary>Text mutations: line ends swapped for CR or removed, runs deleted, truncation, invalid UTF-8.</summary>
    public static byte[] Text(byte[] seed, Random rng)
    {
        return rng.Next(5) switch
        {
            0 => seed.Select(c => c == (byte)'\n' ? (byte)'\r' : c).ToArray(),
            1 => seed[..rng.Next(Math.Min(seed.Length, 4096))],
            2 => seed.Where(c => c != (byte)'\n').ToArray(),
            _ => Bytes(seed, rng, 4096),
        };
    }
}
