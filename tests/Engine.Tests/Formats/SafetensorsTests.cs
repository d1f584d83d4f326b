using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Tests.Formats;

public class SafetensorsTests
{
    private static List<(string, int[], float[])> Stories260KTensors()
    {
        using var ck = Llama2cCheckpoint.Open(RepoFiles.Model("stories260K", "stories260K.bin"));
        return ck.Tensors.Where(t => t.Name != "output.weight" && !t.Name.StartsWith("freq"))
            .Select(t => (t.Name, t.Shape.Select(d => (int)d).ToArray(), ck.ReadF32(t.Name))).ToList();
    }

    [Fact]
    public void Hand_written_file_per_spec_is_read()
    {
        // Built byte by byte from the format description, independent of SafetensorsWriter.
        using var tmp = new TempDir();
        string header = "{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},"
                      + "\"a\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},\"c\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[12,16]}}";
        var bytes = new List<byte>();
        bytes.AddRange(BitConverter.GetBytes((ulong)header.Length));
        bytes.AddRange(Encoding.ASCII.GetBytes(header));
        foreach (var h in new[] { 1.0, -2.0, 0.5, 65504.0 }) bytes.AddRange(BitConverter.GetBytes((Half)h));
        bytes.AddRange(new byte[] { 0x80, 0x3F, 0x40, 0xC0 }); // bf16 1.0, -3.0
        bytes.AddRange(BitConverter.GetBytes(7));
        File.WriteAllBytes(tmp.File("x.safetensors"), bytes.ToArray());

        using var f = SafetensorsFile.Open(tmp.File("x.safetensors"));
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal([1f, -2f, 0.5f, 65504f], f.ReadF32("a"));
        Assert.Equal([1f, -3f], f.ReadF32("b"));
        Assert.Equal(DType.I32, f.Get("c").DType);
        Assert.Empty(f.Get("c").Shape);
        var ex = Assert.Throws<ModelFormatException>(() => f.ReadF32("c"));
        Assert.Contains("I32", ex.Message);
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    public void Writer_round_trips_stories260K(DType dtype)
    {
        using var tmp = new TempDir();
        var tensors = Stories260KTensors();
        string path = tmp.File("m.safetensors");
        SafetensorsWriter.Write(path, tensors, dtype, new Dictionary<string, string> { ["format"] = "pt" });

        // Layout checks against the format description: padded header, name order, contiguous offsets.
        byte[] raw = File.ReadAllBytes(path);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(raw);
        Assert.Equal(0UL, (8 + n) % 8);
        using var doc = JsonDocument.Parse(raw.AsMemory(8, (int)n));
        var names = doc.RootElement.EnumerateObject().Select(p => p.Name).Where(x => x != "__metadata__").ToList();
        Assert.Equal(names.Order(StringComparer.Ordinal), names);
        long expectOffset = 0;
        foreach (var p in doc.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__"))
        {
            Assert.Equal(expectOffset, p.Value.GetProperty("data_offsets")[0].GetInt64());
            expectOffset = p.Value.GetProperty("data_offsets")[1].GetInt64();
        }
        Assert.Equal(raw.Length - 8 - (long)n, expectOffset);

        using var f = SafetensorsFile.Open(path);
        Assert.Equal(tensors.Count, f.Tensors.Count);
        foreach (var (name, shape, data) in tensors)
        {
            Assert.Equal(shape.Select(d => (long)d), f.Get(name).Shape);
            var back = f.ReadF32(name);
            for (int i = 0; i < data.Length; i++)
            {
                float expect = dtype switch
                {
                    DType.F16 => (float)(Half)data[i],
                    DType.BF16 => ReferenceBf16(data[i]),
                    _ => data[i],
                };
                Assert.Equal(expect, back[i]);
            }
        }
    }

    /// <summary>Round-to-nearest-even to bfloat16 by exact arithmetic on the two neighbours, not bit tricks.</summary>
    private static float ReferenceBf16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        float lo = BitConverter.UInt32BitsToSingle(bits & 0xFFFF0000);
        float hi = BitConverter.UInt32BitsToSingle((bits & 0xFFFF0000) + 0x10000);
        double dl = Math.Abs((double)x - lo), dh = Math.Abs((double)hi - x);
        if (dl < dh) return lo;
        if (dh < dl) return hi;
        return ((BitConverter.SingleToUInt32Bits(lo) >> 16) & 1) == 0 ? lo : hi;
    }

    [Fact]
    public void Bf16_rounds_ties_to_even()
    {
        Assert.Equal(0x3F80, SafetensorsWriter.ToBFloat16(1.00390625f));   // tie, 1.0 is even
        Assert.Equal(0x3F82, SafetensorsWriter.ToBFloat16(1.01171875f));   // tie, rounds up to even
        Assert.Equal(0x3F81, SafetensorsWriter.ToBFloat16(1.0048828125f)); // above the tie
        Assert.True(float.IsNaN(BitConverter.Int32BitsToSingle(SafetensorsWriter.ToBFloat16(float.NaN) << 16)));
    }

    [Fact]
    public void Sharded_write_and_index_read()
    {
        using var tmp = new TempDir();
        var tensors = Stories260KTensors();
        string index = SafetensorsWriter.WriteSharded(tmp.Path, tensors, DType.F32, maxShardBytes: 300_000);
        using var idx = SafetensorsIndex.Open(index);
        Assert.True(idx.ShardFiles.Count >= 3, $"{idx.ShardFiles.Count} shards");
        Assert.All(idx.ShardFiles, s => Assert.Matches(@"^model-\d{5}-of-\d{5}\.safetensors$", s));
        Assert.All(idx.ShardFiles, s => Assert.True(new FileInfo(Path.Combine(tmp.Path, s)).Length <= 300_000 + 4096));
        Assert.Equal(tensors.Sum(t => 4L * t.Item3.Length), (long)idx.Metadata["total_size"]);
        Assert.Equal(tensors.Count, idx.Tensors.Count);
        foreach (var (name, _, data) in tensors) Assert.Equal(data, idx.ReadF32(name));

        // A missing shard is named when a tensor in it is requested.
        string victim = idx.ShardOf("layers.4.feed_forward.w3.weight");
        idx.Dispose();
        File.Delete(victim);
        using var idx2 = SafetensorsIndex.Open(index);
        Assert.Equal(tensors[0].Item3, idx2.ReadF32(tensors[0].Item1)); // other shards still load
        var ex = Assert.Throws<ModelFormatException>(() => idx2.ReadF32("layers.4.feed_forward.w3.weight"));
        Assert.Contains(Path.GetFileName(victim), ex.Message);
        Assert.Throws<KeyNotFoundException>(() => idx2.Get("no.such.tensor"));
    }
}
