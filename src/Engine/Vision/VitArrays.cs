using Workbench.Engine.Formats;

namespace Workbench.Engine.Vision;

/// <summary>The one place the ViT reads its arrays: every member of the npz (Formats.NpzFile) as float32, in arr_N order.</summary>
internal static class VitArrays
{
    public sealed record NpyArray(string Name, int[] Shape, float[] Data);

    public static List<NpyArray> ReadNpz(string path)
    {
        using var npz = NpzFile.Open(path);
        // Names and shapes are checked before any data is read, so a bad member fails here, not in the ViT's sort.
        foreach (var t in npz.Tensors)
        {
            if (!t.Name.StartsWith("arr_", StringComparison.Ordinal) || !int.TryParse(t.Name.AsSpan(4), System.Globalization.NumberStyles.None, null, out _))
                throw new ModelFormatException(path, t.Name + ".npy", 0, "member is not named arr_<index> as np.savez writes");
            if (t.Shape.Any(s => s > int.MaxValue))
                throw new ModelFormatException(path, t.Name + ".npy.shape", 0, $"dimension of ({string.Join(", ", t.Shape)}) exceeds {int.MaxValue}");
        }
        return npz.Tensors
            .Select(t => new NpyArray(t.Name, t.Shape.Select(s => (int)s).ToArray(), npz.ReadF32(t.Name)))
            .ToList();
    }
}
