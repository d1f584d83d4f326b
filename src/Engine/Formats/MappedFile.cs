using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;

namespace Workbench.Engine.Formats;

/// <summary>
/// A read-only memory map of a whole file with bounds-checked access. Every reader validates
/// lengths against <see cref="Length"/> before touching or allocating anything.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _ptr;

    public string Path { get; }
    public long Length { get; }

    private MappedFile(string path, long length, MemoryMappedFile map, MemoryMappedViewAccessor view)
    {
        Path = path;
        Length = length;
        _map = map;
        _view = view;
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _ptr = p + _view.PointerOffset;
    }

    public static MappedFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"model file not found: {path}", path);
        // A zero-length file cannot be mapped; it is simply a truncated model file.
        if (info.Length == 0) throw new ModelFormatException(path, "file", 0, "the file is empty");
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            var map = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            return new MappedFile(path, info.Length, map, view);
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    public bool Has(long offset, long count) => offset >= 0 && count >= 0 && offset <= Length && count <= Length - offset;

    public ReadOnlySpan<byte> Span(long offset, int count, string field)
    {
        if (!Has(offset, count))
            throw new ModelFormatException(Path, field, offset, $"needs {count} bytes but the file ends at {Length}");
        ObjectDisposedException.ThrowIf(_ptr == null, this);
        return new ReadOnlySpan<byte>(_ptr + offset, count);
    }

    // One reference for the source that opened the file, one for each MappedTensor still reachable: the view is
    // unmapped when the last is released, so weights kept as stored outlive the reader that found them.
    private int _refs = 1;
    private int _sourceReleased;

    internal byte* Pointer(long offset, long count, string field)
    {
        if (!Has(offset, count))
            throw new ModelFormatException(Path, field, offset, $"needs {count} bytes but the file ends at {Length}");
        ObjectDisposedException.ThrowIf(_ptr == null, this);
        return _ptr + offset;
    }

    internal void Retain()
    {
        ObjectDisposedException.ThrowIf(_ptr == null, this);
        Interlocked.Increment(ref _refs);
    }

    internal void Release()
    {
        if (Interlocked.Decrement(ref _refs) != 0) return;
        _ptr = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    /// <summary>The opening source is done with the file; the view stays while tensors mapped from it are reachable.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _sourceReleased, 1) == 0) Release();
    }
}

/// <summary>
/// One tensor's stored bytes in a memory-mapped file, valid while this object is reachable (it holds the mapping open
/// after the reader is disposed). The byte range was checked against the file when the reader opened it and again here.
/// <see cref="Type"/> is the stored type in ggml's terms (safetensors F16 / BF16 / F32 map to the same ids).
/// </summary>
public sealed unsafe class MappedTensor
{
    private readonly MappedFile? _file;

    internal MappedTensor(MappedFile file, TensorEntry entry, GgmlType type)
    {
        Pointer = file.Pointer(entry.ByteOffset, entry.ByteLength, $"tensor '{entry.Name}'");
        file.Retain();
        _file = file;
        Entry = entry;
        Type = type;
    }

    public string FilePath => _file!.Path;
    public TensorEntry Entry { get; }
    public GgmlType Type { get; }
    public byte* Pointer { get; }
    public long Length => Entry.ByteLength;

    // (null when the constructor threw before the lease was taken)
    ~MappedTensor() => _file?.Release();

    /// <summary>
    /// Drops this tensor's pages from the process's resident memory (madvise MADV_DONTNEED on the read-only file
    /// mapping): the mapping stays valid and a later read faults the pages back in from the file (the page cache or the
    /// disk), so values never change. What lets an analysis that streams layer by layer keep one layer resident.
    /// Linux only; a no-op elsewhere.
    /// </summary>
    public void ReleasePages() => Advise(MadvDontNeed);

    /// <summary>Asks the kernel to read this tensor's pages ahead (MADV_WILLNEED) while other work runs; Linux only.</summary>
    public void Prefetch() => Advise(MadvWillNeed);

    private const int MadvWillNeed = 3, MadvDontNeed = 4;

    private void Advise(int advice)
    {
        if (!OperatingSystem.IsLinux() || Length == 0) return;
        // Whole pages covering the tensor: a page shared with a neighbour is dropped too and simply faults back.
        long page = Environment.SystemPageSize;
        long start = (long)Pointer & ~(page - 1), end = ((long)Pointer + Length + page - 1) & ~(page - 1);
        _ = Madvise((void*)start, (nuint)(end - start), advice); // advice only: a failure changes nothing
        GC.KeepAlive(this);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "madvise")]
    private static extern int Madvise(void* addr, nuint length, int advice);
}

/// <summary>Sequential little-endian reader over a mapped file; every read names its field on failure.</summary>
internal sealed class FieldReader(MappedFile file)
{
    public MappedFile File { get; } = file;
    public long Position { get; set; }
    public long Remaining => File.Length - Position;

    public ModelFormatException Error(string field, long offset, string problem) => new(File.Path, field, offset, problem);

    public void Need(long count, string field)
    {
        if (count < 0 || count > Remaining)
            throw Error(field, Position, $"needs {count} bytes but only {Math.Max(0, Remaining)} remain (file is {File.Length} bytes)");
    }

    public ReadOnlySpan<byte> Bytes(int count, string field)
    {
        Need(count, field);
        var s = File.Span(Position, count, field);
        Position += count;
        return s;
    }

    public byte U8(string field) => Bytes(1, field)[0];
    public ushort U16(string field) => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2, field));
    public uint U32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4, field));
    public int I32(string field) => BinaryPrimitives.ReadInt32LittleEndian(Bytes(4, field));
    public ulong U64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8, field));
    public long I64(string field) => BinaryPrimitives.ReadInt64LittleEndian(Bytes(8, field));
    public float F32(string field) => BinaryPrimitives.ReadSingleLittleEndian(Bytes(4, field));
    public double F64(string field) => BinaryPrimitives.ReadDoubleLittleEndian(Bytes(8, field));

    /// <summary>A string of <paramref name="length"/> UTF-8 bytes, length checked against the file first.</summary>
    public string Utf8(ulong length, string field)
    {
        if (length > (ulong)Math.Max(0, Remaining) || length > int.MaxValue)
            throw Error(field, Position, $"string length {length} runs past the end of the file ({Math.Max(0, Remaining)} bytes remain)");
        return Encoding.UTF8.GetString(Bytes((int)length, field));
    }
}

/// <summary>Element sizes and conversion to float32, shared by all readers.</summary>
internal static class DTypes
{
    public static int Size(DType t) => t switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        DType.F64 or DType.I64 => 8,
        DType.I8 or DType.U8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };

    public static bool IsFloat(DType t) => t is DType.F32 or DType.F16 or DType.BF16 or DType.F64;

    /// <summary>Converts little-endian elements of a float dtype to float32.</summary>
    public static void ToF32(DType t, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (t)
        {
            case DType.F32:
                MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            case DType.F16:
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src), dst);
                break;
            case DType.BF16:
                {
                    var h = MemoryMarshal.Cast<byte, ushort>(src);
                    // bfloat16 is the top half of a float32.
                    for (int i = 0; i < h.Length; i++) dst[i] = BitConverter.Int32BitsToSingle(h[i] << 16);
                    break;
                }
            case DType.F64:
                {
                    var d = MemoryMarshal.Cast<byte, double>(src);
                    for (int i = 0; i < d.Length; i++) dst[i] = (float)d[i];
                    break;
                }
            default:
                throw new ArgumentOutOfRangeException(nameof(t), t, "not a float dtype");
        }
    }

    /// <summary>
    /// Reads a validated tensor from a mapped file into a new float[], in chunks so that tensors
    /// over 2 GB of source bytes still convert.
    /// </summary>
    public static float[] ReadF32(MappedFile file, TensorEntry e, string format)
    {
        if (!IsFloat(e.DType))
            throw new ModelFormatException(file.Path, $"tensor '{e.Name}'.dtype", e.ByteOffset,
                $"{format} dtype {e.DType} cannot be read as float32 (only F32, F16, BF16, F64 convert)");
        long n = e.ElementCount;
        if (n > Array.MaxLength)
            throw new ModelFormatException(file.Path, $"tensor '{e.Name}'", e.ByteOffset, $"{n} elements do not fit in one float[]");
        int size = Size(e.DType);
        if (n * size != e.ByteLength || !file.Has(e.ByteOffset, e.ByteLength))
            throw new ModelFormatException(file.Path, $"tensor '{e.Name}'", e.ByteOffset, "byte range does not match the file");
        var result = new float[n];
        const int Chunk = 1 << 24; // elements per conversion step
        for (long done = 0; done < n; done += Chunk)
        {
            int m = (int)Math.Min(Chunk, n - done);
            var src = file.Span(e.ByteOffset + done * size, m * size, $"tensor '{e.Name}'");
            ToF32(e.DType, src, result.AsSpan((int)done, m));
        }
        return result;
    }

    /// <summary>Product of dimensions with overflow and sign checks; null when it overflows.</summary>
    public static long? CheckedProduct(ReadOnlySpan<long> dims)
    {
        long p = 1;
        foreach (var d in dims)
        {
            if (d < 0) return null;
            try { p = checked(p * d); } catch (OverflowException) { return null; }
        }
        return p;
    }
}

/// <summary>Shared dictionary/lookup plumbing for tensor sources.</summary>
internal static class TensorIndex
{
    public static Dictionary<string, TensorEntry> Build(string path, IEnumerable<TensorEntry> entries)
    {
        var map = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        foreach (var e in entries)
            if (!map.TryAdd(e.Name, e))
                throw new ModelFormatException(path, $"tensor '{e.Name}'", e.ByteOffset, "tensor name appears twice");
        return map;
    }

    public static TensorEntry Get(Dictionary<string, TensorEntry> map, string path, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (map.TryGetValue(name, out var e)) return e;
        var near = map.Keys.Where(k => k.Contains(name, StringComparison.OrdinalIgnoreCase) || name.Contains(k, StringComparison.OrdinalIgnoreCase)).Take(5);
        throw new KeyNotFoundException($"{path}: no tensor named '{name}' ({map.Count} tensors{(near.Any() ? "; similar: " + string.Join(", ", near) : "")})");
    }

    /// <summary>Rejects tensors whose byte ranges overlap (sorted by offset).</summary>
    public static void CheckNoOverlap(string path, IEnumerable<TensorEntry> entries)
    {
        TensorEntry? prev = null;
        foreach (var e in entries.Where(e => e.ByteLength > 0).OrderBy(e => e.ByteOffset))
        {
            if (prev is not null && e.ByteOffset < prev.ByteOffset + prev.ByteLength)
                throw new ModelFormatException(path, $"tensor '{e.Name}'.offset", e.ByteOffset,
                    $"overlaps tensor '{prev.Name}' which occupies [{prev.ByteOffset}, {prev.ByteOffset + prev.ByteLength})");
            prev = e;
        }
    }
}
