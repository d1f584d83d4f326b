using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Vision;

/// <summary>
/// The one place the ViT reads its arrays: a minimal reader for the npz written by <c>np.savez</c> (a zip of
/// .npy files, little-endian float32, C order). Swap for Formats.NpzFile when it lands; nothing else depends on this.
/// </summary>
internal static partial class VitArrays
{
    public sealed record NpyArray(string Name, int[] Shape, float[] Data);

    /// <summary>Reads every member in zip order (np.savez names them arr_0, arr_1, ...).</summary>
    public static List<NpyArray> ReadNpz(string path)
    {
        long fileLength = new FileInfo(path).Length;
        ZipArchive zip;
        try { zip = ZipFile.OpenRead(path); }
        catch (InvalidDataException e) { throw new ModelFormatException(path, "zip", 0, "not a zip/npz archive: " + e.Message, e); }
        using (zip)
        {
            var result = new List<NpyArray>(zip.Entries.Count);
            foreach (var entry in zip.Entries)
            {
                // Deflate cannot expand more than ~1032:1, so a larger declared size is a lie; stored members fit in the file.
                long bound = entry.CompressedLength == entry.Length ? fileLength : Math.Min(entry.CompressedLength * 1032L, 1L << 30);
                if (entry.Length > bound || entry.Length > int.MaxValue)
                    throw new ModelFormatException(path, entry.FullName, 0, $"declared size {entry.Length} bytes is impossible for a {fileLength}-byte archive");
                var bytes = new byte[entry.Length];
                try
                {
                    using var s = entry.Open();
                    s.ReadExactly(bytes);
                }
                catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
                {
                    throw new ModelFormatException(path, entry.FullName, 0, "member is truncated or corrupt: " + e.Message, e);
                }
                var name = entry.FullName.EndsWith(".npy", StringComparison.Ordinal) ? entry.FullName[..^4] : entry.FullName;
                result.Add(ParseNpy(path, name, bytes));
            }
            return result;
        }
    }

    /// <summary>Parses one .npy (format 1.0, 2.0 or 3.0) holding little-endian float32 in C order.</summary>
    public static NpyArray ParseNpy(string path, string name, ReadOnlySpan<byte> b)
    {
        ReadOnlySpan<byte> magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];
        if (b.Length < 10 || !b[..6].SequenceEqual(magic)) throw new ModelFormatException(path, name + ".magic", 0, "not a .npy array (bad magic)");
        int major = b[6];
        int headerLen, headerStart;
        if (major == 1) { headerLen = BinaryPrimitives.ReadUInt16LittleEndian(b[8..]); headerStart = 10; }
        else if (major is 2 or 3)
        {
            if (b.Length < 12) throw new ModelFormatException(path, name + ".header_len", 8, "truncated");
            headerLen = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(b[8..]), int.MaxValue);
            headerStart = 12;
        }
        else throw new ModelFormatException(path, name + ".version", 6, $"unsupported .npy version {major}");
        if (headerStart + (long)headerLen > b.Length) throw new ModelFormatException(path, name + ".header", headerStart, $"header of {headerLen} bytes runs past the member ({b.Length} bytes)");
        var header = Encoding.Latin1.GetString(b.Slice(headerStart, headerLen));

        var descr = DescrRegex().Match(header);
        if (!descr.Success) throw new ModelFormatException(path, name + ".descr", headerStart, "header has no 'descr'");
        if (descr.Groups[1].Value is not ("<f4" or "=f4" or "f4"))
            throw new ModelFormatException(path, name + ".descr", headerStart, $"dtype '{descr.Groups[1].Value}' is not little-endian float32");
        if (FortranRegex().Match(header) is { Success: true } f && f.Groups[1].Value == "True")
            throw new ModelFormatException(path, name + ".fortran_order", headerStart, "Fortran-order arrays are not supported");
        var shapeMatch = ShapeRegex().Match(header);
        if (!shapeMatch.Success) throw new ModelFormatException(path, name + ".shape", headerStart, "header has no 'shape'");
        var shape = shapeMatch.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.TryParse(s, out var v) && v >= 0 ? v : throw new ModelFormatException(path, name + ".shape", headerStart, $"bad dimension '{s}'"))
            .ToArray();
        long count = shape.Aggregate(1L, (a, d) => a * d);
        int dataStart = headerStart + headerLen;
        if (count * 4 != b.Length - dataStart)
            throw new ModelFormatException(path, name + ".data", dataStart, $"shape ({string.Join(", ", shape)}) needs {count * 4} bytes but {b.Length - dataStart} follow the header");
        var data = new float[count];
        b[dataStart..].CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
        if (!BitConverter.IsLittleEndian)
            for (int i = 0; i < data.Length; i++) data[i] = BinaryPrimitives.ReadSingleLittleEndian(b[(dataStart + 4 * i)..]);
        return new NpyArray(name, shape, data);
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")] private static partial Regex DescrRegex();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")] private static partial Regex FortranRegex();
    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")] private static partial Regex ShapeRegex();
}
