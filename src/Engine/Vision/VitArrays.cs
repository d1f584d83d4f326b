using Workbench.Engine.Formats;

namespace Workbench.Engine.Vision;

/// <summary>The one place the ViT reads its arrays: every member of the npz (Formats.NpzFile) as float32, in arr_N order.</summary>
internal static class VitArrays
{
    public sealed record NpyArray(string Name, int[] Shape, float[] Data);

    public static List<NpyArray> ReadNpz(string path)
    {
        using var npz = NpzFile.Open(path);
        return npz.Tensors
            .Select(t => new NpyArray(t.Name, t.Shape.Select(s => checked((int)s)).ToArray(), npz.ReadF32(t.Name)))
            .ToList();
    }
}
