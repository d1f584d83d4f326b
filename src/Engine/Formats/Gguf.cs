namespace Workbench.Engine.Formats;

/// <summary>ggml tensor types by their ggml.h ids (gaps are ids ggml removed).</summary>
public enum GgmlType : uint
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
    I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
    TQ1_0 = 34, TQ2_0 = 35, I2_S = 36 /* bitnet.cpp's fork */, MXFP4 = 39,
}

/// <summary>One GGUF tensor info as stored: dims in ggml order (ne[0] innermost), offset relative to the data section.</summary>
public sealed record GgufTensorInfo(string Name, GgmlType Type, long[] Ne, long RelativeOffset, long ByteLength);

/// <summary>
/// A GGUF v2/v3 file (llama.cpp). Metadata values keep their GGUF types (byte, sbyte, ushort, short, uint, int,
/// float, bool, string, ulong, long, double; arrays as typed arrays: string[], float[], int[], ...).
/// <see cref="TensorEntry.Shape"/> is row-major (ggml dims reversed). Block-quantized tensors are listed with
/// DType U8 and their logical shape; <see cref="GgmlTypeOf"/> gives the real type. Memory-mapped.
/// </summary>
public sealed class GgufFile : ITensorSource, ITernaryTensors
{
    public const uint Magic = 0x46554747; // "GGUF" little-endian
    private readonly MappedFile _file;
    private readonly Dictionary<string, TensorEntry> _map;
    private readonly Dictionary<string, GgufTensorInfo> _infos;
    private readonly Dictionary<string, long> _kvAt = new(StringComparer.Ordinal); // where each key's record starts

    /// <summary>Arrays of arrays deeper than this are refused (the reader recurses once per level).</summary>
    public const int MaxArrayDepth = 8;

    public string Path => _file.Path;
    public string Format => "GGUF";
    public uint Version { get; }
    public long Alignment { get; }
    public long DataOffset { get; }
    public IReadOnlyList<TensorEntry> Tensors { get; }
    public IReadOnlyList<GgufTensorInfo> TensorInfos { get; }
    public IReadOnlyDictionary<string, object> Metadata { get; }

    private static DType ToDType(GgmlType t) => t switch
    {
        GgmlType.F32 => DType.F32, GgmlType.F16 => DType.F16, GgmlType.BF16 => DType.BF16, GgmlType.F64 => DType.F64,
        GgmlType.I8 => DType.I8, GgmlType.I16 => DType.I16, GgmlType.I32 => DType.I32, GgmlType.I64 => DType.I64,
        _ => DType.U8, // block-quantized: raw bytes
    };

    private GgufFile(MappedFile file)
    {
        _file = file;
        var r = new FieldReader(file);
        uint magic = r.U32("magic");
        if (magic != Magic) throw r.Error("magic", 0, $"expected 'GGUF', found 0x{magic:X8}");
        Version = r.U32("version");
        if (Version is not (2 or 3))
            throw r.Error("version", 4, $"GGUF version {Version} is not supported (2 and 3 are)");
        long countsAt = r.Position;
        ulong nTensors = r.U64("n_tensors");
        ulong nKv = r.U64("n_kv");
        // Smallest possible records: a KV is key length (8) + type (4) + 1 byte; a tensor info is 8 + 4 + 4 + 8.
        if (nTensors > (ulong)file.Length / 24)
            throw r.Error("n_tensors", countsAt, $"{nTensors} tensors cannot fit in a {file.Length}-byte file");
        if (nKv > (ulong)file.Length / 13)
            throw r.Error("n_kv", countsAt + 8, $"{nKv} metadata pairs cannot fit in a {file.Length}-byte file");

        var meta = new Dictionary<string, object>(StringComparer.Ordinal);
        for (ulong i = 0; i < nKv; i++)
        {
            long at = r.Position;
            string key = r.Utf8(r.U64($"kv[{i}].key length"), $"kv[{i}].key");
            if (string.IsNullOrWhiteSpace(key)) throw r.Error($"kv[{i}].key", at, "metadata key is empty");
            uint type = r.U32($"{key}.type");
            object value = ReadValue(r, type, key, 0);
            if (!meta.TryAdd(key, value)) throw r.Error(key, at, "metadata key appears twice");
            _kvAt[key] = at;
        }
        Metadata = meta;

        Alignment = 32;
        if (meta.TryGetValue("general.alignment", out var a))
        {
            long al = a switch { uint u => u, int s => s, ulong ul => (long)Math.Min(ul, long.MaxValue), long l => l, _ => -1 };
            if (al <= 0 || (al & (al - 1)) != 0 || al > 1 << 20)
                throw r.Error("general.alignment", 0, $"alignment {a} must be a positive power of two");
            Alignment = al;
        }

        var infos = new List<GgufTensorInfo>((int)nTensors);
        var infoAt = new List<long>((int)nTensors);
        for (ulong i = 0; i < nTensors; i++)
        {
            long at = r.Position;
            string name = r.Utf8(r.U64($"tensor[{i}].name length"), $"tensor[{i}].name");
            uint nDims = r.U32($"tensor '{name}'.n_dims");
            if (nDims is 0 or > 4) throw r.Error($"tensor '{name}'.n_dims", r.Position - 4, $"n_dims {nDims} is outside 1..4");
            var ne = new long[nDims];
            for (int d = 0; d < nDims; d++)
            {
                ulong v = r.U64($"tensor '{name}'.ne[{d}]");
                if (v == 0 || v > long.MaxValue)
                    throw r.Error($"tensor '{name}'.ne[{d}]", r.Position - 8, $"dimension {v} must be positive");
                ne[d] = (long)v;
            }
            uint t = r.U32($"tensor '{name}'.type");
            var type = (GgmlType)t;
            var traits = GgufQuants.Traits(type);
            if (traits is null) throw r.Error($"tensor '{name}'.type", r.Position - 4, $"unknown ggml type id {t} (readable: {string.Join(", ", GgufQuants.Supported)})");
            int block = traits.BlockSize;
            ulong off = r.U64($"tensor '{name}'.offset");
            long? count = DTypes.CheckedProduct(ne);
            if (count is null || count > file.Length * (long)block)
                throw r.Error($"tensor '{name}'.ne", at, $"shape [{string.Join(", ", ne)}] has more elements than the file could hold");
            // I2_S packs the flattened tensor in 128-value blocks (bitnet.cpp's quantize_i2_s over nrow * n_per_row), so
            // only the element count must be whole blocks; every other type's blocks lie within a row
            if (type == GgmlType.I2_S ? count.Value % block != 0 : ne[0] % block != 0)
                throw r.Error($"tensor '{name}'.ne[0]", at, type == GgmlType.I2_S
                    ? $"{count.Value} elements are not whole {type} blocks of {block}"
                    : $"ne[0] = {ne[0]} is not a multiple of the {type} block size {block}");
            long byteLength = traits.ByteLength(count.Value);
            if (off > long.MaxValue) throw r.Error($"tensor '{name}'.offset", r.Position - 8, $"offset {off} is out of range");
            infos.Add(new GgufTensorInfo(name, type, ne, (long)off, byteLength));
            infoAt.Add(r.Position - 8);
        }
        DataOffset = (r.Position + Alignment - 1) / Alignment * Alignment;

        var entries = new List<TensorEntry>(infos.Count);
        for (int i = 0; i < infos.Count; i++)
        {
            var ti = infos[i];
            if (ti.RelativeOffset % Alignment != 0)
                throw r.Error($"tensor '{ti.Name}'.offset", infoAt[i], $"offset {ti.RelativeOffset} is not a multiple of the alignment {Alignment}");
            long abs = DataOffset + ti.RelativeOffset;
            if (ti.RelativeOffset > file.Length || !file.Has(abs, ti.ByteLength))
                throw r.Error($"tensor '{ti.Name}'.offset", infoAt[i],
                    $"data [{abs}, {abs + ti.ByteLength}) lies outside the {file.Length}-byte file");
            var shape = ti.Ne.Reverse().ToArray();
            entries.Add(new TensorEntry(ti.Name, ToDType(ti.Type), shape, abs, ti.ByteLength));
        }
        TensorIndex.CheckNoOverlap(file.Path, entries);
        Tensors = entries;
        TensorInfos = infos;
        _map = TensorIndex.Build(file.Path, entries);
        _infos = infos.ToDictionary(x => x.Name, StringComparer.Ordinal);
    }

    public static GgufFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try { return new GgufFile(file); }
        catch { file.Dispose(); throw; }
    }

    private static object ReadValue(FieldReader r, uint type, string key, int depth)
    {
        switch (type)
        {
            case 0: return r.U8(key);
            case 1: return (sbyte)r.U8(key);
            case 2: return r.U16(key);
            case 3: return (short)r.U16(key);
            case 4: return r.U32(key);
            case 5: return r.I32(key);
            case 6: return r.F32(key);
            case 7: return Bool(r, key);
            case 8: return r.Utf8(r.U64($"{key} length"), key);
            case 9: return ReadArray(r, key, depth + 1);
            case 10: return r.U64(key);
            case 11: return r.I64(key);
            case 12: return r.F64(key);
            default: throw r.Error($"{key}.type", r.Position - 4, $"unknown GGUF value type {type}");
        }
    }

    private static int MinSize(uint type) => type switch
    {
        0 or 1 or 7 => 1, 2 or 3 => 2, 4 or 5 or 6 => 4, 8 or 10 or 11 or 12 => 8, 9 => 12, _ => 1,
    };

    private static object ReadArray(FieldReader r, string key, int depth)
    {
        long at = r.Position;
        if (depth > MaxArrayDepth)
            throw r.Error(key, at, $"arrays nested deeper than {MaxArrayDepth} levels");
        uint et = r.U32($"{key}.element type");
        ulong n = r.U64($"{key}.count");
        if (et > 12) throw r.Error($"{key}.element type", at, $"unknown GGUF value type {et}");
        // Each element needs at least MinSize bytes, so the count is bounded by what is left of the file.
        if (n > (ulong)Math.Max(0, r.Remaining) / (ulong)MinSize(et))
            throw r.Error($"{key}.count", at + 4, $"array of {n} elements cannot fit in the {r.Remaining} bytes left");
        int count = (int)n;
        // Elements go straight into typed arrays (no boxing, no per-element field names), so an array allocates
        // at most a few bytes per byte of the file it occupies.
        return et switch
        {
            0 => Fill(count, () => r.U8(key)), 1 => Fill(count, () => (sbyte)r.U8(key)),
            2 => Fill(count, () => r.U16(key)), 3 => Fill(count, () => (short)r.U16(key)),
            4 => Fill(count, () => r.U32(key)), 5 => Fill(count, () => r.I32(key)), 6 => Fill(count, () => r.F32(key)),
            7 => Fill(count, () => Bool(r, key)), 8 => Fill(count, () => r.Utf8(r.U64($"{key} length"), key)),
            10 => Fill(count, () => r.U64(key)), 11 => Fill(count, () => r.I64(key)), 12 => Fill(count, () => r.F64(key)),
            _ => Fill(count, () => ReadArray(r, key, depth + 1)),
        };
    }

    private static T[] Fill<T>(int count, Func<T> read)
    {
        var a = new T[count];
        for (int i = 0; i < a.Length; i++) a[i] = read();
        return a;
    }

    private static bool Bool(FieldReader r, string key)
    {
        byte b = r.U8(key);
        if (b > 1) throw r.Error(key, r.Position - 1, $"bool value {b} is neither 0 nor 1");
        return b == 1;
    }

    public GgmlType GgmlTypeOf(string name) => _infos.TryGetValue(name, out var i) ? i.Type : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");

    public bool Contains(string name) => _map.ContainsKey(name);
    public TensorEntry Get(string name) => TensorIndex.Get(_map, Path, name);

    public float[] ReadF32(string name)
    {
        var e = Get(name);
        return GgufQuants.ReadF32(_file, e, _infos[name].Type);
    }

    public MappedTensor? Map(string name) => new(_file, Get(name), _infos[name].Type);

    /// <summary>A TQ1_0, TQ2_0 or I2_S tensor's ternaries and scales, read without fp32; false for other types.</summary>
    public bool TryReadTernary(string name, out GgufTernary? ternary) => GgufQuants.TryReadTernary(_file, Get(name), _infos[name].Type, out ternary);

    // Typed metadata accessors: they convert between integer widths and name the key when missing or mistyped.
    public bool TryGet<T>(string key, out T value)
    {
        if (Metadata.TryGetValue(key, out var v) && v is T t) { value = t; return true; }
        value = default!;
        return false;
    }

    /// <summary>Where a metadata key's record starts in the file (0 when absent), for errors that name an offset.</summary>
    public long OffsetOf(string key) => _kvAt.GetValueOrDefault(key);

    public string GetString(string key) => Typed<string>(key);
    public bool GetBool(string key) => Typed<bool>(key);
    public string[] GetStringArray(string key) => Typed<string[]>(key);
    public float[] GetFloatArray(string key) => Typed<float[]>(key);
    public int[] GetInt32Array(string key) => Typed<int[]>(key);

    public long GetInt64(string key) => Raw(key) switch
    {
        byte b => b, sbyte sb => sb, ushort us => us, short s => s, uint u => u, int i => i, long l => l,
        ulong ul when ul <= long.MaxValue => (long)ul,
        var other => throw Mistyped(key, other, "an integer"),
    };

    public float GetFloat(string key) => Raw(key) switch
    {
        float f => f, double d => (float)d,
        var other => throw Mistyped(key, other, "a float"),
    };

    private object Raw(string key) =>
        Metadata.TryGetValue(key, out var v) ? v : throw new ModelFormatException(Path, key, 0, "required metadata key is missing");

    private T Typed<T>(string key) => Raw(key) is T t ? t : throw Mistyped(key, Raw(key), typeof(T).Name);

    // A key of the wrong GGUF type is a bad file, named like every other bad field.
    private ModelFormatException Mistyped(string key, object value, string wanted) =>
        new(Path, key, _kvAt.GetValueOrDefault(key), $"metadata is {value.GetType().Name}, not {wanted}");

    public void Dispose() => _file.Dispose();
}
