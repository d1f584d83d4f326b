using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Workbench.Engine.Text;
using Workbench.Engine.Vision;

namespace Workbench.Engine.Tests.Formats;

/// <summary>
/// One test per class of what the fuzz suite (tests/Engine.Tests/Fuzz) found: recursion, header-driven allocation,
/// each foreign exception type, npz member names, tokenizer.json byte pieces, vocab.txt, small corpora, empty GGUF keys.
/// Each asserts the field the ModelFormatException names.
/// </summary>
public sealed class HostileInputTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    private static ModelFormatException Names(Action open, string path, string field)
    {
        var ex = Assert.Throws<ModelFormatException>(open);
        Assert.Equal(path, ex.FilePath);
        Assert.Equal(field, ex.Field);
        Assert.Contains($"'{field}'", ex.Message);
        return ex;
    }

    private string Write(string name, byte[] bytes)
    {
        string p = _tmp.File(name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    private static byte[] Gguf(params (string key, uint type, byte[] value)[] kvs)
    {
        var b = new List<byte>();
        b.AddRange(BitConverter.GetBytes(GgufFile.Magic)); b.AddRange(BitConverter.GetBytes(3u));
        b.AddRange(BitConverter.GetBytes(0UL)); b.AddRange(BitConverter.GetBytes((ulong)kvs.Length));
        foreach (var (key, type, value) in kvs)
        {
            b.AddRange(BitConverter.GetBytes((ulong)Encoding.UTF8.GetByteCount(key))); b.AddRange(Encoding.UTF8.GetBytes(key));
            b.AddRange(BitConverter.GetBytes(type)); b.AddRange(value);
        }
        return [.. b];
    }

    // ---- recursion ----

    [Fact]
    public void Gguf_arrays_nested_20000_deep_are_refused_at_the_depth_limit()
    {
        var nested = new List<byte>();
        for (int i = 0; i < 20_000; i++) { nested.AddRange(BitConverter.GetBytes(9u)); nested.AddRange(BitConverter.GetBytes(1UL)); }
        nested.AddRange(BitConverter.GetBytes(4u)); nested.AddRange(BitConverter.GetBytes(1UL)); nested.AddRange(BitConverter.GetBytes(7u));
        // The value starts with the outer array's element type (9 = array), so the key's type is 9 too.
        string p = Write("deep.gguf", Gguf(("deep", 9, [.. nested])));
        var ex = Names(() => GgufFile.Open(p), p, "deep");
        Assert.Contains("nested deeper", ex.Message);
        // Header 24, key 8 + 4, type 4; each array header takes 12 bytes: the limit is hit at depth MaxArrayDepth + 1.
        Assert.Equal(40 + 12 * GgufFile.MaxArrayDepth, ex.Offset);
    }

    [Fact]
    public void Gguf_array_of_a_million_bytes_allocates_about_a_million_bytes()
    {
        var value = new List<byte>();
        value.AddRange(BitConverter.GetBytes(0u)); value.AddRange(BitConverter.GetBytes(1_000_000UL));
        value.AddRange(new byte[1_000_000]);
        string p = Write("bytes.gguf", Gguf(("blob", 9, [.. value])));
        long before = GC.GetAllocatedBytesForCurrentThread();
        using (var g = GgufFile.Open(p)) Assert.Equal(1_000_000, ((byte[])g.Metadata["blob"]).Length);
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 1_000_000, 2_000_000);
    }

    [Fact]
    public void Json_nested_beyond_the_depth_limit_is_malformed_json()
    {
        var dir = HfFolder();
        File.WriteAllText(Path.Combine(dir, "config.json"), new string('[', 100_000) + new string(']', 100_000));
        Names(() => ModelHub.Load(dir), Path.Combine(dir, "config.json"), "json");
    }

    // ---- allocation driven by header numbers ----

    [Fact]
    public void Config_json_with_2147483647_layers_is_checked_against_the_tensors_before_allocating()
    {
        var dir = HfFolder();
        var cfgPath = Path.Combine(dir, "config.json");
        var cfg = JsonNode.Parse(File.ReadAllText(cfgPath))!;
        cfg["num_hidden_layers"] = 2147483647;
        File.WriteAllText(cfgPath, cfg.ToJsonString());
        long before = GC.GetAllocatedBytesForCurrentThread();
        Names(() => ModelHub.Load(dir), Path.Combine(dir, "model.safetensors"), "layers");
        long folderBytes = Directory.EnumerateFiles(dir).Sum(f => new FileInfo(f).Length);
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, Fuzz.FuzzRunner.AllocationFactor * folderBytes + Fuzz.FuzzRunner.AllocationConstant);
    }

    [Fact]
    public void Gguf_block_count_beyond_the_tensors_is_refused()
    {
        var g = File.ReadAllBytes(RepoFiles.Model("stories260K", "stories260K.gguf"));
        int at = IndexOf(g, "llama.block_count"u8) + "llama.block_count".Length;
        Assert.Equal(4u, BinaryPrimitives.ReadUInt32LittleEndian(g.AsSpan(at))); // uint32 value follows
        BinaryPrimitives.WriteUInt32LittleEndian(g.AsSpan(at + 4), int.MaxValue);
        string p = Write("layers.gguf", g);
        Names(() => LlamaLoader.FromGguf(p), p, "llama.block_count"); // the GGUF key itself
    }

    [Fact]
    public void Png_header_claiming_a_million_rows_is_refused_before_decoding()
    {
        var png = File.ReadAllBytes(RepoFiles.Data("images", "chelsea.png"));
        // IHDR: length(4) "IHDR"(4) width(4) height(4) ... crc(4) at byte 8.
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(20), 1_000_000);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), Crc32(png.AsSpan(12, 17)));
        string p = Write("tall.png", png);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Names(() => VitImage.FromFile(p), p, "width x height");
        Assert.Contains("1000000", ex.Message.Replace(",", ""));
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 4L * png.Length + (1 << 20));
    }

    // ---- foreign exceptions translated at the boundary ----

    [Fact]
    public void SentencePiece_protobuf_errors_become_model_format_exceptions()
    {
        var model = File.ReadAllBytes(RepoFiles.Model("babyllama-105", "tok105.model"));
        string p = Write("cut.model", model[..(model.Length / 2)]);
        var ex = Names(() => ModelHub.DecoderTokenizer(p, 105), p, "ModelProto");
        Assert.IsType<Google.Protobuf.InvalidProtocolBufferException>(ex.InnerException);
    }

    [Theory]
    [InlineData("hidden_size", "\"64\"")]
    [InlineData("rms_norm_eps", "\"small\"")]
    [InlineData("rms_norm_eps", "1e308")]
    [InlineData("architectures", "[true]")]
    public void Config_json_values_of_the_wrong_type_name_their_key(string key, string json)
    {
        var dir = HfFolder();
        var cfgPath = Path.Combine(dir, "config.json");
        var cfg = JsonNode.Parse(File.ReadAllText(cfgPath))!;
        cfg[key] = JsonNode.Parse(json);
        File.WriteAllText(cfgPath, cfg.ToJsonString());
        Names(() => ModelHub.Load(dir), cfgPath, key);
    }

    [Fact]
    public void Invalid_utf8_in_a_safetensors_header_names_its_offset()
    {
        string full = _tmp.File("u.safetensors");
        SafetensorsWriter.Write(full, [("abc", [2], new float[2])]);
        var b = File.ReadAllBytes(full);
        int at = IndexOf(b, "abc"u8);
        b[at + 1] = 0xFF;
        string p = Write("bad-utf8.safetensors", b);
        var ex = Names(() => SafetensorsFile.Open(p), p, "header");
        Assert.Equal(at + 1, ex.Offset);
    }

    [Fact]
    public void Safetensors_data_offsets_of_the_wrong_type_name_the_tensor()
    {
        string full = _tmp.File("t.safetensors");
        SafetensorsWriter.Write(full, [("a", [2], new float[2])]);
        var b = File.ReadAllBytes(full);
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(b);
        var header = Encoding.UTF8.GetString(b, 8, n).Replace("\"data_offsets\":[0,8]", "\"data_offsets\":[{},8]");
        var hb = Encoding.UTF8.GetBytes(header);
        string p = Write("type.safetensors", [.. BitConverter.GetBytes((ulong)hb.Length), .. hb, .. b[(8 + n)..]]);
        Names(() => SafetensorsFile.Open(p), p, "tensor 'a'.data_offsets");
    }

    [Fact]
    public void Gguf_metadata_of_the_wrong_type_names_the_key()
    {
        var g = File.ReadAllBytes(RepoFiles.Model("stories260K", "stories260K.gguf"));
        int at = IndexOf(g, "llama.embedding_length"u8) + "llama.embedding_length".Length;
        BinaryPrimitives.WriteUInt32LittleEndian(g.AsSpan(at), 6); // uint32 -> float32, same size
        string p = Write("typed.gguf", g);
        var ex = Names(() => LlamaLoader.FromGguf(p), p, "llama.embedding_length");
        Assert.Contains("Single", ex.Message);
    }

    [Fact]
    public void Gguf_tokenizer_scores_as_uint32_name_the_key()
    {
        var g = File.ReadAllBytes(RepoFiles.Model("stories260K", "stories260K.gguf"));
        int at = IndexOf(g, "tokenizer.ggml.scores"u8) + "tokenizer.ggml.scores".Length;
        Assert.Equal(9u, BinaryPrimitives.ReadUInt32LittleEndian(g.AsSpan(at)));
        BinaryPrimitives.WriteUInt32LittleEndian(g.AsSpan(at + 4), 4); // float[] -> uint[]
        string p = Write("scores.gguf", g);
        Names(() => GgufTokenizer.TryLoad(p, 512), p, "tokenizer.ggml.scores");
    }

    [Fact]
    public void Gguf_without_its_embedding_names_the_missing_tensor()
    {
        var g = File.ReadAllBytes(RepoFiles.Model("stories260K", "stories260K.gguf"));
        int at = IndexOf(g, "token_embd.weight"u8);
        g[at] = (byte)'T'; // the tensor is now called Token_embd.weight
        string p = Write("no-embd.gguf", g);
        Names(() => ModelHub.Load(p), p, "token_embd.weight");
    }

    [Fact]
    public void Gguf_empty_key_is_named_by_its_index()
    {
        string p = Write("empty-key.gguf", Gguf(("", 4, BitConverter.GetBytes(1u))));
        Names(() => GgufFile.Open(p), p, "kv[0].key");
    }

    [Fact]
    public void Onnx_data_type_disagreeing_with_its_data_is_refused()
    {
        // TensorProto: dims [2], data_type 11 (DOUBLE), int64_data [1, 2], name "w"; inside GraphProto.initializer inside ModelProto.graph.
        byte[] tensor = [0x08, 2, 0x10, 11, 0x3A, 2, 1, 2, 0x42, 1, (byte)'w'];
        byte[] graph = [0x2A, (byte)tensor.Length, .. tensor];
        byte[] model = [0x08, 7, 0x3A, (byte)graph.Length, .. graph];
        string p = Write("double.onnx", model);
        Names(() => OnnxModelFile.Open(p), p, "initializer 'w'.data_type");
    }

    [Fact]
    public void Npz_member_not_named_arr_n_is_named_before_the_vit_sorts()
    {
        string p = _tmp.File("names.npz");
        BadInputTests.WriteNpz(p, ("weights", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", new byte[8]));
        Names(() => ModelHub.Load(p), p, "weights.npy");
    }

    [Fact]
    public void Tokenizer_json_byte_piece_that_is_not_hex_is_refused()
    {
        string p = Write("tokenizer.json", Encoding.UTF8.GetBytes(
            """{"model": {"type": "BPE", "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0xZZ>": 3}, "merges": []}}"""));
        Names(() => ModelHub.DecoderTokenizer(p, 4), p, "model.vocab[<0xZZ>]");
    }

    [Fact]
    public void Tokenizer_json_id_of_the_wrong_type_names_the_piece()
    {
        string p = Write("tokenizer.json", Encoding.UTF8.GetBytes(
            """{"model": {"type": "BPE", "vocab": {"<unk>": 0, "<s>": "1", "</s>": 2}, "merges": []}}"""));
        Names(() => ModelHub.DecoderTokenizer(p, 3), p, "model.vocab[<s>]");
    }

    private const string Specials = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";

    [Fact]
    public void Vocab_txt_duplicate_word_names_its_line()
    {
        string p = Write("vocab.txt", Encoding.UTF8.GetBytes(Specials + "hello\nworld\nhello\n"));
        var ex = Names(() => WordPieceTokenizer.Load(p, 16), p, "line 8");
        Assert.Contains("line 6", ex.Message);
    }

    [Fact]
    public void Vocab_txt_missing_special_token_names_it()
    {
        string p = Write("vocab.txt", Encoding.UTF8.GetBytes(Specials.Replace("[UNK]\n", "") + "hello\n"));
        Names(() => WordPieceTokenizer.Load(p, 16), p, "[UNK]");
    }

    [Theory]
    [InlineData("")]
    [InlineData("one single paragraph of words\nwrapped over two lines\n")]
    public void Corpus_with_fewer_than_two_documents_names_the_file(string text)
    {
        string p = Write("corpus.txt", Encoding.UTF8.GetBytes(text));
        var ex = Names(() => Corpus.Load(p), p, "documents");
        Assert.Contains("at least 2", ex.Message);
    }

    [Fact]
    public void Corpus_with_cr_line_ends_splits_into_paragraphs()
    {
        string p = Write("cr.txt", Encoding.UTF8.GetBytes("the first paragraph here\r\rthe second paragraph here\r"));
        Assert.Equal(["the first paragraph here", "the second paragraph here"], Corpus.Load(p).Documents);
    }

    // ---- helpers ----

    private string HfFolder()
    {
        var dir = Directory.CreateDirectory(_tmp.File("hf-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        HuggingFaceExport.WriteLlama(ModelHub.LoadDecoder("stories260K").Model, dir);
        File.Copy(RepoFiles.Model("stories260K", "tok512.bin"), Path.Combine(dir, "tokenizer.bin"));
        return dir;
    }

    private static int IndexOf(byte[] hay, ReadOnlySpan<byte> needle) => hay.AsSpan().IndexOf(needle);

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }
}
