using System.Buffers.Binary;
using System.Text;

namespace Workbench.Engine.Tests.Fuzz;

/// <summary>
/// GGUF-aware mutations on a real file: a metadata value's type tag changed, a value replaced by arrays nested
/// thousands deep, a key emptied, an array's element type changed (e.g. scores as UInt32[]), tensor dims, types and
/// offsets set to 0, -1, huge or another tensor's offset.
/// </summary>
internal static class GgufMutator
{
    private sealed record Kv(int Start, int KeyEnd, int TypeAt, int ValueAt, int End);
    private sealed record Info(int Start, int DimsAt, int NDims, int TypeAt, int OffsetAt, int End);

    public static byte[] Mutate(byte[] seed, Random rng)
    {
        if (rng.Next(3) == 0) return Mutator.Bytes(seed, rng, Math.Min(seed.Length, HeaderEnd(seed)));
        var (kvs, infos) = Walk(seed);
        var b = new List<byte>(seed);
        switch (rng.Next(7))
        {
            case 0: // wrong type tag on a metadata value
                {
                    var kv = kvs[rng.Next(kvs.Count)];
                    Put32(b, kv.TypeAt, (uint)rng.Next(14));
                    break;
                }
            case 1: // a value replaced by arrays of arrays
                {
                    var kv = kvs[rng.Next(kvs.Count)];
                    int depth = rng.Next(3) switch { 0 => 1 + rng.Next(64), 1 => 1000 + rng.Next(5000), _ => 10_000 + rng.Next(20_000) };
                    var nested = new List<byte>();
                    for (int i = 0; i < depth; i++) { nested.AddRange(U32(9)); nested.AddRange(U64(1)); }
                    nested.AddRange(U32(4)); nested.AddRange(U64(1)); nested.AddRange(U32(7));
                    Put32(b, kv.TypeAt, 9);
                    b.RemoveRange(kv.ValueAt, kv.End - kv.ValueAt);
                    b.InsertRange(kv.ValueAt, nested);
                    break;
                }
            case 2: // an empty key
                {
                    var kv = kvs[rng.Next(kvs.Count)];
                    b.RemoveRange(kv.Start + 8, kv.KeyEnd - kv.Start - 8);
                    for (int i = 0; i < 8; i++) b[kv.Start + i] = 0;
                    break;
                }
            case 3: // an array's element type changed (string[] as float[], float[] as uint[] ...)
                {
                    var arrays = kvs.Where(k => BinaryPrimitives.ReadUInt32LittleEndian(seed.AsSpan(k.TypeAt)) == 9).ToList();
                    if (arrays.Count == 0) goto default;
                    var kv = arrays[rng.Next(arrays.Count)];
                    Put32(b, kv.ValueAt, (uint)rng.Next(13));
                    break;
                }
            case 4: // a tensor dimension set to 0, -1, huge, or a little off
                {
                    var ti = infos[rng.Next(infos.Count)];
                    int d = rng.Next(Math.Max(1, ti.NDims));
                    ulong v = rng.Next(5) switch { 0 => 0, 1 => ulong.MaxValue, 2 => 1UL << 40, 3 => (ulong)int.MaxValue + 1, _ => (ulong)rng.Next(1, 1024) };
                    Put64(b, ti.DimsAt + 8 * d, v);
                    break;
                }
            case 5: // a tensor's ggml type or n_dims changed
                {
                    var ti = infos[rng.Next(infos.Count)];
                    if (rng.Next(2) == 0) Put32(b, ti.TypeAt, (uint)rng.Next(40));
                    else Put32(b, ti.DimsAt - 4, (uint)rng.Next(6));
                    break;
                }
            case 6: // a tensor's offset pointing at another's, or out of range
                {
                    var ti = infos[rng.Next(infos.Count)];
                    var other = infos[rng.Next(infos.Count)];
                    ulong v = rng.Next(3) switch
                    {
                        0 => BinaryPrimitives.ReadUInt64LittleEndian(seed.AsSpan(other.OffsetAt)),
                        1 => BinaryPrimitives.ReadUInt64LittleEndian(seed.AsSpan(other.OffsetAt)) + 32,
                        _ => ulong.MaxValue - (ulong)rng.Next(64),
                    };
                    Put64(b, ti.OffsetAt, v);
                    break;
                }
            default: return Mutator.Bytes(seed, rng, HeaderEnd(seed));
        }
        return [.. b];
    }

    /// <summary>Where the tensor infos end (the data section begins after alignment).</summary>
    public static int HeaderEnd(byte[] seed)
    {
        var (_, infos) = Walk(seed);
        return infos.Count > 0 ? infos[^1].End : seed.Length;
    }

    private static (List<Kv>, List<Info>) Walk(byte[] g)
    {
        int pos = 8;
        ulong nT = BinaryPrimitives.ReadUInt64LittleEndian(g.AsSpan(pos)); pos += 8;
        ulong nKv = BinaryPrimitives.ReadUInt64LittleEndian(g.AsSpan(pos)); pos += 8;
        var kvs = new List<Kv>();
        for (ulong i = 0; i < nKv; i++)
        {
            int start = pos;
            int keyLen = (int)BinaryPrimitives.ReadUInt64LittleEndian(g.AsSpan(pos)); pos += 8 + keyLen;
            int keyEnd = pos, typeAt = pos;
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(g.AsSpan(pos)); pos += 4;
            int valueAt = pos;
            pos = SkipValue(g, pos, type);
            kvs.Add(new Kv(start, keyEnd, typeAt, valueAt, pos));
        }
        var infos = new List<Info>();
        for (ulong i = 0; i < nT; i++)
        {
            int start = pos;
            int nameLen = (int)BinaryPrimitives.ReadUInt64LittleEndian(g.AsSpan(pos)); pos += 8 + nameLen;
            int nDims = (int)BinaryPrimitives.ReadUInt32LittleEndian(g.AsSpan(pos)); pos += 4;
            int dimsAt = pos; pos += 8 * nDims;
            int typeAt = pos; pos += 4;
            int offAt = pos; pos += 8;
            infos.Add(new Info(start, dimsAt, nDims, typeAt, offAt, pos));
        }
        return (kvs, infos);
    }

    private static int SkipValue(byte[] g, int pos, uint type)
    {
        switch (type)
        {
            case 0 or 1 or 7: return pos + 1;
            case 2 or 3: return pos + 2;
            case 4 or 5 or 6: return pos + 4;
            case 10 or 11 or 12: return pos + 8;
            case 8: return pos + 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(g.AsSpan(pos));
            case 9:
                {
                    uint et = BinaryPrimitives.ReadUInt32LittleEndian(g.AsSpan(pos));
                    ulong n = BinaryPrimitives.ReadUInt64LittleEndian(g.AsSpan(pos + 4));
                    pos += 12;
                    for (ulong i = 0; i < n; i++) pos = SkipValue(g, pos, et);
                    return pos;
                }
            default: throw new InvalidDataException($"seed GGUF has value type {type}");
        }
    }

    private static byte[] U32(uint v) => BitConverter.GetBytes(v);
    private static byte[] U64(ulong v) => BitConverter.GetBytes(v);
    private static void Put32(List<byte> b, int at, uint v) { var x = U32(v); for (int i = 0; i < 4; i++) b[at + i] = x[i]; }
    private static void Put64(List<byte> b, int at, ulong v) { var x = U64(v); for (int i = 0; i < 8; i++) b[at + i] = x[i]; }
}
