using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;

namespace Workbench.Engine.Formats;

/// <summary>
/// A NumPy .npz: a zip of .npy arrays (stored or deflated), as np.savez writes. Tensors keep zip order
/// (arr_0, arr_1, ...), names without ".npy". <see cref="TensorEntry.ByteOffset"/> is the data's offset inside its
/// .npy member (after the header), since deflated members have no file offset. Little-endian, C order, no pickles.
/// </summary>
public sealed class NpzFile : ITensorSource
{
    // Deflate cannot expand data more than ~1032:1; a claimed size beyond that is a lie (or a zip bomb).
    private const long MaxDeflateRatio = 1032;

    private readonly FileStream _stream;
    private readonly ZipArchive _zip;
    private readonly Dictionary<string, TensorEntry> _map;
    private readonly Dictionary<string, ZipArchiveEntry> _members = new(StringComparer.Ordinal);

    public string Path { get; }
    public string Format => "npz";
    public IReadOnlyList<TensorEntry> Tensors { get; }
    public IReadOnlyDictionary<string, object> Metadata { get; } = new Dictionary<string, object>();

    private NpzFile(string path, FileStream stream)
    {
        Path = path;
        _stream = stream;
        try { _zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true); }
        catch (InvalidDataException ex)
        {
            throw new ModelFormatException(path, "zip central directory", 0, $"not a readable zip archive: {ex.Message}", ex);
        }
        var entries = new List<TensorEntry>();
        IReadOnlyList<ZipArchiveEntry> members;
        // The central directory is read lazily, on first access to Entries.
        try { members = _zip.Entries; }
        catch (InvalidDataException ex)
        {
            throw new ModelFormatException(path, "zip central directory", 0, $"not a readable zip archive: {ex.Message}", ex);
        }
        foreach (var z in members)
        {
            if (z.FullName.EndsWith('/')) continue;
            if (!z.FullName.EndsWith(".npy", StringComparison.Ordinal) || z.FullName.Length == 4)
                throw new ModelFormatException(path, z.FullName.Length > 0 ? z.FullName : "member name", 0, "member is not a named .npy array");
            string name = z.FullName[..^4];
            if (z.CompressedLength > stream.Length || z.Length > Math.Max(z.CompressedLength, 1) * MaxDeflateRatio)
                throw new ModelFormatException(path, z.FullName, 0,
                    $"claims {z.Length} bytes from {z.CompressedLength} compressed bytes in a {stream.Length}-byte file");
            entries.Add(ReadHeader(z, name));
            _members[name] = z;
        }
        // Deflate can expand 1032:1, but the loaders' bound is 16 n + 64 MB for a file of n bytes: more declared data is refused.
        long declared = entries.Sum(e => e.ByteLength);
        if (declared > 16 * stream.Length + (64L << 20))
            throw new ModelFormatException(path, "zip members", 0, $"members declare {declared} bytes of arrays in a {stream.Length}-byte file (limit 16 x file + 64 MB)");
        Tensors = entries;
        _map = TensorIndex.Build(path, entries);
    }

    public static NpzFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"npz file not found: {path}", path);
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            if (fs.Length == 0) throw new ModelFormatException(path, "file", 0, "the file is empty");
            return new NpzFile(path, fs);
        }
        catch { fs.Dispose(); throw; }
    }

    private Stream OpenMember(ZipArchiveEntry z)
    {
        try { return z.Open(); }
        catch (InvalidDataException ex) { throw new ModelFormatException(Path, z.FullName, 0, $"cannot open zip member: {ex.Message}", ex); }
    }

    /// <summary>Parses the .npy header: magic, version, header length, then the Python dict literal.</summary>
    private TensorEntry ReadHeader(ZipArchiveEntry z, string name)
    {
        string f = z.FullName;
        using var s = OpenMember(z);
        Span<byte> pre = stackalloc byte[12];
        int got = ReadFully(s, pre[..10], f);
        if (got < 10) throw new ModelFormatException(Path, f, got, "truncated .npy header");
        if (pre[0] != 0x93 || !pre[1..6].SequenceEqual("NUMPY"u8))
            throw new ModelFormatException(Path, f, 0, "missing the \\x93NUMPY magic");
        byte major = pre[6];
        long headerLen, dataStart;
        if (major == 1) { headerLen = BinaryPrimitives.ReadUInt16LittleEndian(pre[8..]); dataStart = 10 + headerLen; }
        else if (major is 2 or 3)
        {
            if (ReadFully(s, pre[10..12], f) < 2) throw new ModelFormatException(Path, f, 10, "truncated .npy header");
            headerLen = BinaryPrimitives.ReadUInt32LittleEndian(pre[8..]);
            dataStart = 12 + headerLen;
        }
        else throw new ModelFormatException(Path, f, 6, $".npy version {major} is not supported (1, 2 and 3 are)");
        if (dataStart > z.Length || headerLen > 1 << 20)
            throw new ModelFormatException(Path, f, 8, $"header length {headerLen} runs past the {z.Length}-byte member");
        var hb = new byte[headerLen];
        if (ReadFully(s, hb, f) < headerLen) throw new ModelFormatException(Path, f, dataStart - headerLen, "truncated .npy header");
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(hb);
        long hdrAt = dataStart - headerLen;

        string descr = DictValue(header, "descr", f, hdrAt).Trim().Trim('\'', '"');
        string fortran = DictValue(header, "fortran_order", f, hdrAt).Trim();
        string shapeText = DictValue(header, "shape", f, hdrAt).Trim();
        if (descr.Contains('O'))
            throw new ModelFormatException(Path, $"{f}.descr", hdrAt, $"dtype '{descr}' is an object array (pickled Python objects are refused)");
        if (fortran != "False")
            throw new ModelFormatException(Path, $"{f}.fortran_order", hdrAt, $"fortran_order {fortran} is not supported (C order only)");
        if (descr.Length < 3 || descr[0] is not ('<' or '|' or '='))
            throw new ModelFormatException(Path, $"{f}.descr", hdrAt,
                descr.StartsWith('>') ? $"big-endian dtype '{descr}' is not supported" : $"dtype '{descr}' is not supported");
        DType dtype = descr[1..] switch
        {
            "f4" => DType.F32, "f8" => DType.F64, "f2" => DType.F16,
            "i1" => DType.I8, "u1" => DType.U8, "i2" => DType.I16, "i4" => DType.I32, "i8" => DType.I64,
            _ => throw new ModelFormatException(Path, $"{f}.descr", hdrAt, $"dtype '{descr}' is not supported"),
        };
        if (!shapeText.StartsWith('(') || !shapeText.EndsWith(')'))
            throw new ModelFormatException(Path, $"{f}.shape", hdrAt, $"shape '{shapeText}' is not a tuple");
        var dims = shapeText[1..^1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var shape = new long[dims.Length];
        for (int i = 0; i < dims.Length; i++)
            if (!long.TryParse(dims[i].TrimEnd('L'), out shape[i]) || shape[i] < 0)
                throw new ModelFormatException(Path, $"{f}.shape", hdrAt, $"dimension '{dims[i]}' is not a non-negative integer");
        long? count = DTypes.CheckedProduct(shape);
        long dataBytes = z.Length - dataStart;
        if (count is null || count > dataBytes || count * DTypes.Size(dtype) != dataBytes)
            throw new ModelFormatException(Path, $"{f}.shape", dataStart,
                $"shape ({string.Join(", ", shape)}) of {descr} needs {(count is null ? "too many" : (count * DTypes.Size(dtype)).ToString())} bytes but the member holds {dataBytes} after the header (truncated or padded data)");
        return new TensorEntry(name, dtype, shape, dataStart, dataBytes);
    }

    /// <summary>The raw text of one value in the header's dict literal, e.g. <c>'shape': (48, 64)</c>.</summary>
    private string DictValue(string header, string key, string member, long at)
    {
        int k = header.IndexOf($"'{key}'", StringComparison.Ordinal);
        if (k < 0) throw new ModelFormatException(Path, $"{member}.{key}", at, $"header dict has no '{key}'");
        int colon = header.IndexOf(':', k);
        if (colon < 0) throw new ModelFormatException(Path, $"{member}.{key}", at, "malformed header dict");
        int start = colon + 1, depth = 0, i = start;
        for (; i < header.Length; i++)
        {
            char c = header[i];
            if (c == '(') depth++;
            else if (c == ')') depth--;
            else if ((c == ',' || c == '}') && depth == 0) break;
        }
        return header[start..i];
    }

    private int ReadFully(Stream s, Span<byte> buf, string member)
    {
        try { return s.ReadAtLeast(buf, buf.Length, throwOnEndOfStream: false); }
        catch (InvalidDataException ex) { throw new ModelFormatException(Path, member, 0, $"corrupt compressed data: {ex.Message}", ex); }
    }

    public bool Contains(string name) => _map.ContainsKey(name);
    public TensorEntry Get(string name) => TensorIndex.Get(_map, Path, name);

    public float[] ReadF32(string name)
    {
        var e = Get(name);
        if (!DTypes.IsFloat(e.DType) || e.DType == DType.BF16)
            throw new ModelFormatException(Path, $"{name}.npy.descr", 0, $"dtype {e.DType} cannot be read as float32 (f2, f4, f8 can)");
        var z = _members[name];
        var result = new float[e.ElementCount];
        using var s = OpenMember(z);
        Skip(s, e.ByteOffset, z.FullName);
        if (e.DType == DType.F32)
        {
            var dst = MemoryMarshal.AsBytes(result.AsSpan());
            int got = ReadFully(s, dst, z.FullName);
            if (got < dst.Length) throw Truncated(z, e, got);
            return result;
        }
        int size = DTypes.Size(e.DType);
        var buf = new byte[Math.Min(e.ByteLength, 1 << 16) / size * size];
        for (long done = 0; done < e.ElementCount;)
        {
            int m = (int)Math.Min(buf.Length / size, e.ElementCount - done);
            int got = ReadFully(s, buf.AsSpan(0, m * size), z.FullName);
            if (got < m * size) throw Truncated(z, e, done * size + got);
            DTypes.ToF32(e.DType, buf.AsSpan(0, m * size), result.AsSpan((int)done, m));
            done += m;
        }
        return result;
    }

    private ModelFormatException Truncated(ZipArchiveEntry z, TensorEntry e, long got) =>
        new(Path, z.FullName, e.ByteOffset + got, $"data ends after {got} of {e.ByteLength} bytes (truncated member)");

    private void Skip(Stream s, long count, string member)
    {
        Span<byte> tmp = stackalloc byte[256];
        while (count > 0)
        {
            int got = ReadFully(s, tmp[..(int)Math.Min(tmp.Length, count)], member);
            if (got == 0) throw new ModelFormatException(Path, member, 0, "member ends inside its header");
            count -= got;
        }
    }

    public void Dispose()
    {
        _zip.Dispose();
        _stream.Dispose();
    }
}
