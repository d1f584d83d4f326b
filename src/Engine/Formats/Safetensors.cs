using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace Workbench.Engine.Formats;

/// <summary>
/// A safetensors file: u64 header length, JSON header (<c>{"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {..}}</c>),
/// then the byte buffer. Memory-mapped; every entry is checked against the buffer before use.
/// </summary>
public sealed class SafetensorsFile : ITensorSource
{
    /// <summary>The Python library refuses headers over 100 MB; so do we.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MappedFile _file;
    private readonly Dictionary<string, TensorEntry> _map;

    public string Path => _file.Path;
    public string Format => "safetensors";
    public long DataOffset { get; }
    public IReadOnlyList<TensorEntry> Tensors { get; }
    public IReadOnlyDictionary<string, object> Metadata { get; }

    internal static DType? ParseDType(string s) => s switch
    {
        "F32" => DType.F32, "F16" => DType.F16, "BF16" => DType.BF16, "F64" => DType.F64,
        "I8" => DType.I8, "U8" => DType.U8, "I16" => DType.I16, "I32" => DType.I32, "I64" => DType.I64,
        _ => null,
    };

    private SafetensorsFile(MappedFile file)
    {
        _file = file;
        var r = new FieldReader(file);
        ulong n = r.U64("header length");
        if (n > (ulong)(file.Length - 8))
            throw r.Error("header length", 0, $"header of {n} bytes runs past the end of the {file.Length}-byte file");
        if (n > MaxHeaderBytes)
            throw r.Error("header length", 0, $"header of {n} bytes is absurd (limit {MaxHeaderBytes})");
        DataOffset = 8 + (long)n;
        long dataLength = file.Length - DataOffset;
        var header = file.Span(8, (int)n, "header");

        using (var doc = JsonFiles.Parse(Path, header.ToArray(), "header", 8))
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw r.Error("header", 8, "JSON header is not an object");
            var meta = new Dictionary<string, object>(StringComparer.Ordinal);
            var entries = new List<TensorEntry>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                {
                    if (p.Value.ValueKind != JsonValueKind.Object) throw r.Error("__metadata__", 8, "must be an object of strings");
                    foreach (var m in p.Value.EnumerateObject())
                        meta[m.Name] = JsonFiles.Str(m.Value) ??
                            throw r.Error($"__metadata__.{m.Name}", 8, "metadata values must be strings");
                    continue;
                }
                entries.Add(ParseEntry(p, dataLength));
            }
            Metadata = meta;
            TensorIndex.CheckNoOverlap(Path, entries);
            Tensors = entries;
            _map = TensorIndex.Build(Path, entries);
        }
    }

    private TensorEntry ParseEntry(JsonProperty p, long dataLength)
    {
        string f = $"tensor '{p.Name}'";
        ModelFormatException Bad(string field, long offset, string problem) => new(Path, field, offset, problem);
        if (p.Value.ValueKind != JsonValueKind.Object) throw Bad(f, 8, "entry is not an object");
        if (!p.Value.TryGetProperty("dtype", out var dt) || JsonFiles.Str(dt) is not { } dts)
            throw Bad($"{f}.dtype", 8, "missing or not a string");
        var dtype = ParseDType(dts) ?? throw Bad($"{f}.dtype", 8, $"unknown dtype '{dts}' (supported: F32, F16, BF16, F64, I8, U8, I16, I32, I64)");
        if (!p.Value.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw Bad($"{f}.shape", 8, "missing or not an array");
        var shape = new long[sh.GetArrayLength()];
        int k = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (!JsonFiles.TryInt64(d, out long v) || v < 0)
                throw Bad($"{f}.shape", 8, $"dimension {d.GetRawText()} is not a non-negative integer");
            shape[k++] = v;
        }
        if (!p.Value.TryGetProperty("data_offsets", out var offs) || offs.ValueKind != JsonValueKind.Array || offs.GetArrayLength() != 2)
            throw Bad($"{f}.data_offsets", 8, "missing or not a [begin, end] pair");
        if (!JsonFiles.TryInt64(offs[0], out long begin) || !JsonFiles.TryInt64(offs[1], out long end) || begin < 0 || end < 0)
            throw Bad($"{f}.data_offsets", 8, $"[{offs[0].GetRawText()}, {offs[1].GetRawText()}] are not non-negative integers");
        long at = DataOffset + Math.Min(begin, dataLength);
        if (end < begin) throw Bad($"{f}.data_offsets", at, $"end {end} is before begin {begin}");
        if (end > dataLength)
            throw Bad($"{f}.data_offsets", at, $"[{begin}, {end}) runs past the {dataLength}-byte data buffer (file ends at {_file.Length})");
        long? count = DTypes.CheckedProduct(shape);
        if (count is null || count > dataLength || count * DTypes.Size(dtype) != end - begin)
            throw Bad($"{f}.shape", at, $"shape [{string.Join(", ", shape)}] of {dtype} does not match the {end - begin} bytes of data_offsets");
        return new TensorEntry(p.Name, dtype, shape, DataOffset + begin, end - begin);
    }

    public static SafetensorsFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try { return new SafetensorsFile(file); }
        catch { file.Dispose(); throw; }
    }

    public bool Contains(string name) => _map.ContainsKey(name);
    public TensorEntry Get(string name) => TensorIndex.Get(_map, Path, name);
    public float[] ReadF32(string name) => DTypes.ReadF32(_file, Get(name), Format);

    public MappedTensor? Map(string name)
    {
        var e = Get(name);
        GgmlType? t = e.DType switch { DType.F16 => GgmlType.F16, DType.BF16 => GgmlType.BF16, DType.F32 => GgmlType.F32, _ => null };
        return t is { } type ? new MappedTensor(_file, e, type) : null;
    }

    public void Dispose() => _file.Dispose();
}

/// <summary>
/// A sharded Hugging Face checkpoint: <c>model.safetensors.index.json</c> with a weight_map from tensor name to a
/// shard file in the same folder. Shards open on first use; <see cref="Tensors"/> opens them all.
/// Entry offsets are within each tensor's own shard.
/// </summary>
public sealed class SafetensorsIndex : ITensorSource
{
    private readonly Dictionary<string, string> _weightMap;
    private readonly Dictionary<string, SafetensorsFile> _open = new(StringComparer.Ordinal);
    private readonly string _folder;
    private IReadOnlyList<TensorEntry>? _tensors;

    public string Path { get; }
    public string Format => "safetensors (sharded)";
    public IReadOnlyDictionary<string, object> Metadata { get; }
    public IReadOnlyList<string> ShardFiles { get; }
    public IReadOnlyDictionary<string, string> WeightMap => _weightMap;

    private SafetensorsIndex(string path)
    {
        Path = path;
        _folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        using (var doc = JsonFiles.Parse(path, File.ReadAllBytes(path), "index JSON"))
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(path, "weight_map", 0, "missing or not an object");
            _weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in wm.EnumerateObject())
            {
                string? shard = JsonFiles.Str(p.Value);
                // Shards must be plain file names beside the index: no paths, no escaping the folder.
                if (string.IsNullOrEmpty(shard) || shard != System.IO.Path.GetFileName(shard) || shard is "." or "..")
                    throw new ModelFormatException(path, $"weight_map.{p.Name}", 0, $"shard '{p.Value.GetRawText()}' is not a file name in the index's folder");
                _weightMap[p.Name] = shard;
            }
            var meta = new Dictionary<string, object>(StringComparer.Ordinal);
            if (root.TryGetProperty("metadata", out var md) && md.ValueKind == JsonValueKind.Object)
                foreach (var m in md.EnumerateObject())
                    meta[m.Name] = m.Value.ValueKind switch
                    {
                        JsonValueKind.String when JsonFiles.Str(m.Value) is { } str => str,
                        JsonValueKind.Number when m.Value.TryGetInt64(out long l) => l,
                        _ => m.Value.GetRawText(),
                    };
            Metadata = meta;
        }
        ShardFiles = _weightMap.Values.Distinct().Order(StringComparer.Ordinal).ToArray();
    }

    public static SafetensorsIndex Open(string indexPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(indexPath);
        if (!File.Exists(indexPath)) throw new FileNotFoundException($"index file not found: {indexPath}", indexPath);
        return new SafetensorsIndex(indexPath);
    }

    private SafetensorsFile Shard(string shard)
    {
        if (_open.TryGetValue(shard, out var f)) return f;
        string full = System.IO.Path.Combine(_folder, shard);
        if (!File.Exists(full))
            throw new ModelFormatException(Path, "weight_map", 0, $"shard '{shard}' named by the index is missing from {_folder}");
        f = SafetensorsFile.Open(full);
        _open[shard] = f;
        return f;
    }

    /// <summary>Every tensor of every shard (opens all shards) in weight_map order.</summary>
    public IReadOnlyList<TensorEntry> Tensors => _tensors ??= _weightMap.Keys.Select(Get).ToArray();

    public bool Contains(string name) => _weightMap.ContainsKey(name);

    public TensorEntry Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_weightMap.TryGetValue(name, out var shard))
            throw new KeyNotFoundException($"{Path}: no tensor named '{name}' in weight_map");
        var f = Shard(shard);
        if (!f.Contains(name))
            throw new ModelFormatException(f.Path, $"tensor '{name}'", 0, $"the index maps '{name}' to this shard but the shard does not hold it");
        return f.Get(name);
    }

    /// <summary>The shard file that holds a tensor.</summary>
    public string ShardOf(string name) => System.IO.Path.Combine(_folder, _weightMap.TryGetValue(name, out var s) ? s
        : throw new KeyNotFoundException($"{Path}: no tensor named '{name}' in weight_map"));

    public float[] ReadF32(string name)
    {
        Get(name);
        return _open[_weightMap[name]].ReadF32(name);
    }

    public MappedTensor? Map(string name)
    {
        Get(name);
        return _open[_weightMap[name]].Map(name);
    }

    public void Dispose()
    {
        foreach (var f in _open.Values) f.Dispose();
        _open.Clear();
    }
}

/// <summary>Writes safetensors files (F32, F16, BF16) laid out like the Python library writes them.</summary>
public static class SafetensorsWriter
{
    public static void Write(string path, IEnumerable<(string name, int[] shape, float[] data)> tensors,
        DType dtype = DType.F32, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16))
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "only F32, F16 and BF16 can be written");
        var list = Validate(tensors);
        int size = DTypes.Size(dtype);

        // Like safetensors' prepare(): one dtype here, so tensors are ordered by name; offsets are contiguous.
        var sorted = list.OrderBy(t => t.name, StringComparer.Ordinal).ToList();
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, shape, data) in sorted)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype.ToString());
                w.WriteStartArray("shape");
                foreach (var d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                offset += (long)data.Length * size;
                w.WriteNumberValue(offset);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        // The header is padded with spaces so the data buffer starts 8-byte aligned.
        int headerLen = (int)ms.Length;
        int padded = (headerLen + 7) / 8 * 8;
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
        fs.Write(len);
        fs.Write(ms.GetBuffer().AsSpan(0, headerLen));
        for (int i = headerLen; i < padded; i++) fs.WriteByte((byte)' ');
        var buf = new byte[1 << 16];
        foreach (var (_, _, data) in sorted)
        {
            for (int start = 0; start < data.Length; start += buf.Length / size)
            {
                int m = Math.Min(buf.Length / size, data.Length - start);
                Encode(dtype, data.AsSpan(start, m), buf.AsSpan(0, m * size));
                fs.Write(buf, 0, m * size);
            }
        }
    }

    /// <summary>
    /// Writes tensors as shards of at most <paramref name="maxShardBytes"/> of data each (a tensor larger than that gets
    /// its own shard), named model-0000i-of-0000n.safetensors, plus model.safetensors.index.json. Returns the index path.
    /// </summary>
    public static string WriteSharded(string folder, IEnumerable<(string name, int[] shape, float[] data)> tensors,
        DType dtype = DType.F32, long maxShardBytes = 5_000_000_000, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16))
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "only F32, F16 and BF16 can be written");
        var list = Validate(tensors);
        int size = DTypes.Size(dtype);
        var shards = new List<List<(string name, int[] shape, float[] data)>> { new() };
        long current = 0;
        foreach (var t in list)
        {
            long bytes = (long)t.data.Length * size;
            if (shards[^1].Count > 0 && current + bytes > maxShardBytes) { shards.Add([]); current = 0; }
            shards[^1].Add(t);
            current += bytes;
        }
        Directory.CreateDirectory(folder);
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
        {
            string file = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            Write(System.IO.Path.Combine(folder, file), shards[i], dtype, metadata);
            foreach (var t in shards[i]) weightMap[t.name] = file;
        }
        string index = System.IO.Path.Combine(folder, "model.safetensors.index.json");
        using (var fs = File.Create(index))
        using (var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartObject("metadata");
            w.WriteNumber("total_size", list.Sum(t => (long)t.data.Length * size));
            w.WriteEndObject();
            w.WriteStartObject("weight_map");
            foreach (var (k, v) in weightMap) w.WriteString(k, v);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return index;
    }

    private static List<(string name, int[] shape, float[] data)> Validate(IEnumerable<(string name, int[] shape, float[] data)> tensors)
    {
        var list = tensors.ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, shape, data) in list)
        {
            if (string.IsNullOrEmpty(name) || name == "__metadata__") throw new ArgumentException($"invalid tensor name '{name}'", nameof(tensors));
            if (!seen.Add(name)) throw new ArgumentException($"tensor '{name}' appears twice", nameof(tensors));
            ArgumentNullException.ThrowIfNull(shape, nameof(tensors));
            ArgumentNullException.ThrowIfNull(data, nameof(tensors));
            if (shape.Any(d => d < 0)) throw new ArgumentException($"tensor '{name}' has a negative dimension", nameof(tensors));
            if (shape.Aggregate(1L, (a, b) => a * b) != data.Length)
                throw new ArgumentException($"tensor '{name}': shape [{string.Join(", ", shape)}] does not match {data.Length} values", nameof(tensors));
        }
        return list;
    }

    private static void Encode(DType dtype, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (dtype)
        {
            case DType.F32:
                for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(dst[(4 * i)..], src[i]);
                break;
            case DType.F16:
                for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(dst[(2 * i)..], (Half)src[i]);
                break;
            case DType.BF16:
                for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], ToBFloat16(src[i]));
                break;
        }
    }

    /// <summary>float32 to bfloat16 with round-to-nearest-even (as torch does); NaN stays a quiet NaN.</summary>
    public static ushort ToBFloat16(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((bits >> 16) | 0x0040);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
