using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Workbench.Engine.Formats;
using Workbench.Engine.Text;

namespace Workbench.Engine.Tests.Formats;

/// <summary>
/// Hostile and corrupted files: each must fail with a ModelFormatException naming the file, the field and the
/// offset, never crash, hang, or allocate more than the file.
/// </summary>
public class BadInputTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    private static ModelFormatException AssertNames(Action open, string path, string field, long? offset = null)
    {
        var ex = Assert.Throws<ModelFormatException>(open);
        Assert.Equal(path, ex.FilePath);
        Assert.Contains(field, ex.Field);
        if (offset is { } o) Assert.Equal(o, ex.Offset);
        Assert.Contains(path, ex.Message);
        Assert.Contains($"'{ex.Field}'", ex.Message);
        Assert.Contains($"offset {ex.Offset}", ex.Message);
        return ex;
    }

    private string Write(string name, byte[] bytes)
    {
        string p = _tmp.File(name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    private static byte[] Real(params string[] parts) => File.ReadAllBytes(RepoFiles.Model(parts));

    // ---------- truncated files, each format ----------

    [Fact]
    public void Llama2c_truncated_names_the_tensor_past_the_end()
    {
        var bin = Real("stories260K", "stories260K.bin");
        // Cut inside layer 0's wk: embedding (512x64), 5 rms_att (64), 5 wq (64x64) come first.
        long wk0 = 28 + 4L * (512 * 64 + 5 * 64 + 5 * 64 * 64);
        string p = Write("cut.bin", bin[..(int)(wk0 + 100)]);
        var ex = AssertNames(() => Llama2cCheckpoint.Open(p), p, "layers.0.attention.wk.weight", wk0);
        Assert.Contains("runs past the end", ex.Message);
    }

    [Fact]
    public void Gguf_truncated_data_puts_a_tensor_out_of_range()
    {
        var g = Real("stories260K", "stories260K.gguf");
        string p = Write("cut.gguf", g[..^1000]);
        var ex = AssertNames(() => GgufFile.Open(p), p, ".offset");
        Assert.Contains("outside", ex.Message);
    }

    [Fact]
    public void Gguf_truncated_in_metadata()
    {
        var g = Real("stories260K", "stories260K.gguf");
        string p = Write("cut2.gguf", g[..2000]); // inside tokenizer.ggml.tokens
        AssertNames(() => GgufFile.Open(p), p, "tokenizer.ggml.tokens");
    }

    [Fact]
    public void Safetensors_truncated()
    {
        string full = _tmp.File("full.safetensors");
        SafetensorsWriter.Write(full, [("a", [4, 4], new float[16]), ("b", [8], new float[8])]);
        var bytes = File.ReadAllBytes(full);
        string p = Write("cut.safetensors", bytes[..^10]);
        long dataStart = 8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        // "b" sorts after "a": it starts 64 bytes into the data buffer and now runs past the end.
        AssertNames(() => SafetensorsFile.Open(p), p, "tensor 'b'.data_offsets", dataStart + 64);
    }

    [Fact]
    public void Npz_truncated()
    {
        var z = Real("vit-cifar10", "vit_cifar10.npz");
        string p = Write("cut.npz", z[..(z.Length / 2)]);
        AssertNames(() => NpzFile.Open(p), p, "zip central directory", 0);
    }

    [Fact]
    public void Npz_member_with_truncated_data()
    {
        // A member whose header promises more data than it holds.
        string p = _tmp.File("short.npz");
        WriteNpz(p, ("arr_0", "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }", new byte[60]));
        var ex = AssertNames(() => NpzFile.Open(p), p, "arr_0.npy.shape");
        Assert.Contains("64", ex.Message);
    }

    [Fact]
    public void Onnx_truncated()
    {
        using var s = EmbeddedResources.Open(EmbeddedResources.MiniLmAssembly, EmbeddedResources.MiniLmModel);
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        string p = Write("cut.onnx", ms.ToArray()[..5_000_000]);
        // The graph field (7) claims ~90 MB but the file stops at 5 MB.
        var ex = AssertNames(() => OnnxModelFile.Open(p), p, "ModelProto.field 7");
        Assert.Contains("runs past", ex.Message);
    }

    [Fact]
    public void Tokenizer_truncated_piece_length_past_end()
    {
        var t = Real("stories260K", "tok512.bin");
        string p = Write("cut.tok", t[..^3]); // the last piece now claims more bytes than remain
        var ex = AssertNames(() => new Llama2cTokenizer(p, 512), p, "token[511].length");
        Assert.Contains("runs past the end", ex.Message);
    }

    [Fact]
    public void Tokenizer_negative_piece_length()
    {
        var t = Real("stories260K", "tok512.bin");
        BinaryPrimitives.WriteInt32LittleEndian(t.AsSpan(4 + 4), -5); // token 0's length
        string p = Write("neg.tok", t);
        AssertNames(() => new Llama2cTokenizer(p, 512), p, "token[0].length", 8);
    }

    [Fact]
    public void Tokenizer_vocab_size_not_matching_the_model()
    {
        string p = RepoFiles.Model("stories260K", "tok512.bin");
        var ex = AssertNames(() => new Llama2cTokenizer(p, 500), p, "vocab");
        Assert.Contains("more tokens", ex.Message);
        var ex2 = AssertNames(() => new Llama2cTokenizer(p, 600), p, "token[512]", new FileInfo(p).Length);
        Assert.Contains("ends after 512 tokens", ex2.Message);
        AssertNames(() => new Llama2cTokenizer(p, 100_000), p, "vocab", 4); // refused before allocating
        Assert.Throws<ArgumentOutOfRangeException>(() => new Llama2cTokenizer(p, 0));
    }

    // ---------- header lengths beyond the file ----------

    [Fact]
    public void Safetensors_header_length_beyond_file()
    {
        string full = _tmp.File("h.safetensors");
        SafetensorsWriter.Write(full, [("a", [2], new float[2])]);
        var b = File.ReadAllBytes(full);
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)b.Length);
        string p = Write("hl.safetensors", b);
        AssertNames(() => SafetensorsFile.Open(p), p, "header length", 0);
    }

    [Fact]
    public void Safetensors_malformed_json()
    {
        string full = _tmp.File("j.safetensors");
        SafetensorsWriter.Write(full, [("a", [2], new float[2])]);
        var b = File.ReadAllBytes(full);
        b[8 + 5] = (byte)'}'; // break the JSON inside the first key
        string p = Write("badjson.safetensors", b);
        var ex = AssertNames(() => SafetensorsFile.Open(p), p, "header");
        Assert.Contains("malformed JSON", ex.Message);
    }

    [Fact]
    public void Gguf_string_length_beyond_file()
    {
        var gb = new GgufBuilder();
        var bytes = gb.Build();
        long at = gb.At["kv:general.architecture"];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan((int)at), 1UL << 50);
        string p = Write("strlen.gguf", bytes);
        var ex = AssertNames(() => GgufFile.Open(p), p, "kv[0].key", at + 8);
        Assert.Contains("runs past the end", ex.Message);
    }

    [Fact]
    public void Gguf_absurd_counts()
    {
        var bytes = new GgufBuilder().Build();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(8), 1UL << 40);
        string p = Write("count.gguf", bytes);
        AssertNames(() => GgufFile.Open(p), p, "n_tensors", 8);
    }

    // ---------- offsets, overlaps, shapes, types ----------

    [Fact]
    public void Gguf_tensor_offset_out_of_range()
    {
        var gb = new GgufBuilder();
        gb.Tensors.Add(("w", [4, 2], 0, 1024)); // 32 bytes at data+1024, data is 64 bytes
        var bytes = gb.Build();
        string p = Write("off.gguf", bytes);
        AssertNames(() => GgufFile.Open(p), p, "tensor 'w'.offset", gb.At["offset:w"]);
    }

    [Fact]
    public void Gguf_misaligned_offset()
    {
        var gb = new GgufBuilder();
        gb.Tensors.Add(("w", [4], 0, 4));
        var bytes = gb.Build();
        string p = Write("align.gguf", bytes);
        var ex = AssertNames(() => GgufFile.Open(p), p, "tensor 'w'.offset", gb.At["offset:w"]);
        Assert.Contains("alignment", ex.Message);
    }

    [Fact]
    public void Gguf_overlapping_tensors()
    {
        var gb = new GgufBuilder();
        gb.Tensors.Add(("a", [8], 0, 0));  // bytes [0, 32)
        gb.Tensors.Add(("b", [8], 0, 0));  // same bytes
        var bytes = gb.Build();
        string p = Write("overlap.gguf", bytes);
        var ex = AssertNames(() => GgufFile.Open(p), p, ".offset", gb.At["data"]);
        Assert.Contains("overlaps", ex.Message);
    }

    [Fact]
    public void Safetensors_overlapping_tensors()
    {
        string header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
        string p = Write("ov.safetensors", Safetensors(header, 16));
        var ex = AssertNames(() => SafetensorsFile.Open(p), p, "tensor 'b'.offset", 8 + header.Length + 8);
        Assert.Contains("overlaps tensor 'a'", ex.Message);
    }

    [Fact]
    public void Safetensors_end_before_begin_and_size_mismatch()
    {
        string h1 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}";
        string p1 = Write("rev.safetensors", Safetensors(h1, 16));
        Assert.Contains("before begin", AssertNames(() => SafetensorsFile.Open(p1), p1, "tensor 'a'.data_offsets", 8 + h1.Length + 8).Message);
        string h2 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}";
        string p2 = Write("size.safetensors", Safetensors(h2, 16));
        AssertNames(() => SafetensorsFile.Open(p2), p2, "tensor 'a'.shape", 8 + h2.Length);
    }

    [Fact]
    public void Safetensors_negative_shape()
    {
        string h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2,2],\"data_offsets\":[0,16]}}";
        string p = Write("neg.safetensors", Safetensors(h, 16));
        AssertNames(() => SafetensorsFile.Open(p), p, "tensor 'a'.shape", 8);
    }

    [Fact]
    public void Safetensors_unknown_dtype()
    {
        string h = "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[16],\"data_offsets\":[0,16]}}";
        string p = Write("dt.safetensors", Safetensors(h, 16));
        Assert.Contains("F8_E4M3", AssertNames(() => SafetensorsFile.Open(p), p, "tensor 'a'.dtype", 8).Message);
    }

    [Fact]
    public void Gguf_zero_dimension_and_too_many_dims()
    {
        var gb = new GgufBuilder();
        gb.Tensors.Add(("w", [4, 0], 0, 0));
        string p = Write("zero.gguf", gb.Build());
        AssertNames(() => GgufFile.Open(p), p, "tensor 'w'.ne[1]");
        var gb2 = new GgufBuilder();
        gb2.Tensors.Add(("w", [1, 1, 1, 1, 1], 0, 0));
        string p2 = Write("dims.gguf", gb2.Build());
        AssertNames(() => GgufFile.Open(p2), p2, "tensor 'w'.n_dims");
    }

    [Fact]
    public void Gguf_unknown_ggml_type()
    {
        var gb = new GgufBuilder();
        gb.Tensors.Add(("w", [4], 99, 0));
        string p = Write("type.gguf", gb.Build());
        Assert.Contains("unknown ggml type id 99", AssertNames(() => GgufFile.Open(p), p, "tensor 'w'.type").Message);
    }

    [Theory]
    [InlineData(GgmlType.IQ4_NL, 32, 18)]
    [InlineData(GgmlType.Q8_1, 32, 36)]
    [InlineData(GgmlType.IQ2_XXS, 256, 66)]
    [InlineData(GgmlType.MXFP4, 32, 17)]
    public void Gguf_unsupported_ggml_type_is_named_on_read(GgmlType type, int block, int blockBytes)
    {
        var gb = new GgufBuilder { DataBytes = 2 * blockBytes };
        gb.Tensors.Add(("q", [(ulong)block, 2], (uint)type, 0));
        string p = Write($"{type}.gguf", gb.Build());
        using var g = GgufFile.Open(p); // listing works: the layout is known
        Assert.Equal(type, g.GgmlTypeOf("q"));
        Assert.Equal([2L, block], g.Get("q").Shape);
        Assert.Equal(2L * blockBytes, g.Get("q").ByteLength);
        var ex = AssertNames(() => g.ReadF32("q"), p, "tensor 'q'.type", gb.At["data"]);
        Assert.Contains(type.ToString(), ex.Message);
    }

    [Fact]
    public void Llama2c_absurd_and_negative_header_values()
    {
        var bin = Real("stories260K", "stories260K.bin");
        var b1 = (byte[])bin.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(b1, 1 << 20); // dim
        string p1 = Write("dim.bin", b1);
        AssertNames(() => Llama2cCheckpoint.Open(p1), p1, "dim", 0);
        var b2 = (byte[])bin.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(b2.AsSpan(8), -3); // n_layers
        string p2 = Write("layers.bin", b2);
        AssertNames(() => Llama2cCheckpoint.Open(p2), p2, "n_layers", 8);
        var b3 = (byte[])bin.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(b3.AsSpan(16), 3); // n_kv_heads 3 does not divide 8
        string p3 = Write("kv.bin", b3);
        AssertNames(() => Llama2cCheckpoint.Open(p3), p3, "n_kv_heads", 16);
        var b4 = (byte[])bin.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(b4.AsSpan(12), 64); // 64 heads: head size 1 is odd
        BinaryPrimitives.WriteInt32LittleEndian(b4.AsSpan(16), 64);
        string p4 = Write("odd.bin", b4);
        Assert.Contains("odd", AssertNames(() => Llama2cCheckpoint.Open(p4), p4, "n_heads", 12).Message);
    }

    [Fact]
    public void Llama2c_trailing_bytes()
    {
        var bin = Real("stories260K", "stories260K.bin");
        string p = Write("long.bin", [.. bin, 0, 0, 0, 0]);
        AssertNames(() => Llama2cCheckpoint.Open(p), p, "file length", bin.Length);
    }

    // ---------- npz ----------

    internal static void WriteNpz(string path, params (string name, string dict, byte[] data)[] members)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (name, dict, data) in members)
        {
            var header = dict.PadRight((dict.Length + 11 + 63) / 64 * 64 - 11) + "\n";
            using var s = zip.CreateEntry(name + ".npy", CompressionLevel.NoCompression).Open();
            s.Write([0x93, .. "NUMPY"u8, 1, 0]);
            s.Write(BitConverter.GetBytes((ushort)header.Length));
            s.Write(Encoding.ASCII.GetBytes(header));
            s.Write(data);
        }
    }

    [Fact]
    public void Npz_fortran_order_rejected()
    {
        string p = _tmp.File("f.npz");
        WriteNpz(p, ("arr_0", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", new byte[16]));
        AssertNames(() => NpzFile.Open(p), p, "arr_0.npy.fortran_order", 10);
    }

    [Fact]
    public void Npz_pickled_object_array_rejected()
    {
        string p = _tmp.File("o.npz");
        WriteNpz(p, ("arr_0", "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", new byte[16]));
        Assert.Contains("pickle", AssertNames(() => NpzFile.Open(p), p, "arr_0.npy.descr", 10).Message);
    }

    [Fact]
    public void Npz_big_endian_rejected()
    {
        string p = _tmp.File("be.npz");
        WriteNpz(p, ("arr_0", "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", new byte[16]));
        Assert.Contains("big-endian", AssertNames(() => NpzFile.Open(p), p, "arr_0.npy.descr", 10).Message);
    }

    [Fact]
    public void Npz_hand_written_reads_values()
    {
        // Sanity check of the writer used above: a valid member reads back.
        string p = _tmp.File("ok.npz");
        var data = new byte[16];
        for (int i = 0; i < 4; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4 * i), i + 0.5f);
        WriteNpz(p, ("x", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", data),
                    ("y", "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", BitConverter.GetBytes(2.25)));
        using var npz = NpzFile.Open(p);
        Assert.Equal([0.5f, 1.5f, 2.5f, 3.5f], npz.ReadF32("x"));
        Assert.Equal([2.25f], npz.ReadF32("y"));
    }

    // ---------- ONNX external data ----------

    [Fact]
    public void Onnx_external_data_rejected()
    {
        // ModelProto{ graph { initializer { dims:4, data_type:1, name:"w", data_location:EXTERNAL } } }
        byte[] tensor = [0x08, 4, 0x10, 1, 0x42, 1, (byte)'w', 0x70, 1];
        byte[] graph = [0x2A, (byte)tensor.Length, .. tensor];
        byte[] model = [0x08, 7, 0x3A, (byte)graph.Length, .. graph];
        string p = Write("ext.onnx", model);
        Assert.Contains("external", AssertNames(() => OnnxModelFile.Open(p), p, "initializer 'w'.external_data", 6).Message);
    }

    // ---------- 2^40 elements: must throw before allocating ----------

    [Fact]
    public void Huge_claimed_tensors_throw_before_allocating()
    {
        var gb = new GgufBuilder();
        gb.Tensors.Add(("huge", [1UL << 20, 1UL << 20], 0, 0));
        string g = Write("huge.gguf", gb.Build());
        string h = "{\"huge\":{\"dtype\":\"F32\",\"shape\":[1048576,1048576],\"data_offsets\":[0,16]}}";
        string s = Write("huge.safetensors", Safetensors(h, 16));
        string z = _tmp.File("huge.npz");
        WriteNpz(z, ("arr_0", "{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576), }", new byte[16]));
        byte[] dims = [.. Varint(1 << 20), .. Varint(1 << 20)];
        byte[] tensor = [0x0A, (byte)dims.Length, .. dims, 0x10, 1, 0x42, 1, (byte)'h', 0x4A, 16, .. new byte[16]];
        byte[] graph = [0x2A, (byte)tensor.Length, .. tensor];
        string o = Write("huge.onnx", [0x08, 7, 0x3A, (byte)graph.Length, .. graph]);

        long before = GC.GetAllocatedBytesForCurrentThread();
        AssertNames(() => GgufFile.Open(g), g, "tensor 'huge'");
        AssertNames(() => SafetensorsFile.Open(s), s, "tensor 'huge'.shape");
        AssertNames(() => NpzFile.Open(z), z, "arr_0.npy.shape");
        AssertNames(() => OnnxModelFile.Open(o), o, "initializer 'h'.dims");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 16 << 20, $"allocated {allocated} bytes");
    }

    private static byte[] Varint(ulong v)
    {
        var b = new List<byte>();
        while (v >= 0x80) { b.Add((byte)(v | 0x80)); v >>= 7; }
        b.Add((byte)v);
        return [.. b];
    }

    private static byte[] Safetensors(string header, int dataBytes) =>
        [.. BitConverter.GetBytes((ulong)header.Length), .. Encoding.ASCII.GetBytes(header), .. new byte[dataBytes]];
}
