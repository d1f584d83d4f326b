using System.Text;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Tests.Formats;

/// <summary>Writes small GGUF files by hand (string metadata, tensor infos, zero or given data) for tests.</summary>
internal sealed class GgufBuilder
{
    public readonly List<(string key, string value)> Kv = [("general.architecture", "llama")];
    public readonly List<(string key, uint value)> UInts = []; // uint32 metadata (GGUF value type 4), after the strings
    public readonly List<(string name, ulong[] ne, uint type, ulong offset)> Tensors = [];
    public int DataBytes = 64;
    public uint Version = 3;
    public byte[]? Data;
    public readonly Dictionary<string, long> At = []; // positions of fields, for expected offsets

    public byte[] Build()
    {
        var b = new List<byte>();
        void U32(uint v) => b.AddRange(BitConverter.GetBytes(v));
        void U64(ulong v) => b.AddRange(BitConverter.GetBytes(v));
        void Str(string s) { U64((ulong)Encoding.UTF8.GetByteCount(s)); b.AddRange(Encoding.UTF8.GetBytes(s)); }
        U32(GgufFile.Magic); U32(Version); U64((ulong)Tensors.Count); U64((ulong)(Kv.Count + UInts.Count));
        foreach (var (k, v) in Kv) { At[$"kv:{k}"] = b.Count; Str(k); U32(8); Str(v); }
        foreach (var (k, v) in UInts) { At[$"kv:{k}"] = b.Count; Str(k); U32(4); U32(v); }
        foreach (var (name, ne, type, off) in Tensors)
        {
            Str(name); U32((uint)ne.Length);
            foreach (var d in ne) U64(d);
            U32(type);
            At[$"offset:{name}"] = b.Count;
            U64(off);
        }
        while (b.Count % 32 != 0) b.Add(0);
        At["data"] = b.Count;
        b.AddRange(Data ?? new byte[DataBytes]);
        return [.. b];
    }
}
