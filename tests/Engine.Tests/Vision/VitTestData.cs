using Workbench.Engine.Models;
using System.Globalization;
using Workbench.Engine.Vision;

namespace Workbench.Engine.Tests.Vision;

/// <summary>Shared fixtures: the bundled model (loaded once), the golden file, the synthetic image.</summary>
public static class VitTestData
{
    private static readonly Lazy<VitModel> s_model = new(VitModel.LoadBundled);
    private static readonly Lazy<Cifar10Set> s_set = new(Cifar10Set.LoadBundled);
    public static VitModel Model => s_model.Value;
    public static Cifar10Set Set => s_set.Value;

    /// <summary>I[y, x, c] = (7x + 13y + 29c) % 256, HWC.</summary>
    public static byte[] SyntheticImage()
    {
        var img = new byte[32 * 32 * 3];
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
                for (int c = 0; c < 3; c++)
                    img[(y * 32 + x) * 3 + c] = (byte)((7 * x + 13 * y + 29 * c) % 256);
        return img;
    }

    /// <summary>Golden logits (10) and CLS attention per block (4 x 65) from the training repository's NumPy code.</summary>
    public static (float[] Logits, float[][] ClsAttention) Goldens()
    {
        var lines = File.ReadAllLines(Path.Combine(VitBundled.RepoRoot(), "data", "goldens", "vit_cifar10_synthetic.txt"))
            .Where(l => l.Length > 0 && l[0] != '#').ToArray();
        float[] Parse(string l) => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        return (Parse(lines[0]), lines.Skip(1).Select(Parse).ToArray());
    }
}
