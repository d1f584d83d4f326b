using System.Text;
using System.Text.Json;
using Workbench.Engine.Tests.Formats;

namespace Workbench.Engine.Tests.Training;

/// <summary>The PyTorch training goldens copied into tests/Engine.Tests/Data/train (README there), read from .npy files.</summary>
internal static class TrainGoldens
{
    public static string Path(params string[] parts) => System.IO.Path.Combine([RepoFiles.Root, "tests", "Engine.Tests", "Data", "train", .. parts]);

    /// <summary>The fixed batch [4, 64] as rows.</summary>
    public static int[][] Batch()
    {
        var (data, shape) = Npy.Read(Path("batch_tokens.npy"));
        return Enumerable.Range(0, shape[0]).Select(r => data.Skip(r * shape[1]).Take(shape[1]).Select(v => (int)v).ToArray()).ToArray();
    }

    public static double[] Tensor(params string[] parts) => Npy.Read(Path(parts)).Data;

    public static double Scalar(params string[] parts) => Tensor(parts)[0];

    public static double[] Losses(string run)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path("adamw_losses.json")));
        return doc.RootElement.GetProperty("losses").GetProperty(run).EnumerateArray().Select(e => e.GetDouble()).ToArray();
    }
}

/// <summary>Minimal .npy (version 1/2) reader for little-endian f8, f4, i4 and i1 arrays in C order.</summary>
internal static class Npy
{
    public static (double[] Data, int[] Shape) Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY") throw new InvalidDataException($"{path}: not a .npy file");
        int major = bytes[6];
        int headerLen = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToInt32(bytes, 8);
        int start = major == 1 ? 10 : 12;
        var header = Encoding.ASCII.GetString(bytes, start, headerLen);
        string descr = Between(header, "'descr': '", "'");
        if (header.Contains("'fortran_order': True")) throw new InvalidDataException($"{path}: Fortran order");
        var shapeText = Between(header, "'shape': (", ")");
        var shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        int count = shape.Aggregate(1, (a, b) => a * b);
        int off = start + headerLen;
        var data = new double[count];
        for (int i = 0; i < count; i++)
            data[i] = descr switch
            {
                "<f8" => BitConverter.ToDouble(bytes, off + 8 * i),
                "<f4" => BitConverter.ToSingle(bytes, off + 4 * i),
                "<i4" => BitConverter.ToInt32(bytes, off + 4 * i),
                "|i1" => (sbyte)bytes[off + i],
                _ => throw new InvalidDataException($"{path}: dtype {descr} not supported"),
            };
        return (data, shape);
    }

    private static string Between(string s, string open, string close)
    {
        int a = s.IndexOf(open, StringComparison.Ordinal);
        if (a < 0) throw new InvalidDataException($"npy header lacks {open}");
        a += open.Length;
        return s[a..s.IndexOf(close, a, StringComparison.Ordinal)];
    }
}
