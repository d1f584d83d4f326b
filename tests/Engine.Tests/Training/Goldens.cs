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
        var (data, shape) = Goldens.Npy(Path("batch_tokens.npy"));
        return Enumerable.Range(0, shape[0]).Select(r => data.Skip(r * shape[1]).Take(shape[1]).Select(v => (int)v).ToArray()).ToArray();
    }

    public static double[] Tensor(params string[] parts) => Goldens.Npy(Path(parts)).Data;

    public static double Scalar(params string[] parts) => Tensor(parts)[0];

    public static double[] Losses(string run)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path("adamw_losses.json")));
        return doc.RootElement.GetProperty("losses").GetProperty(run).EnumerateArray().Select(e => e.GetDouble()).ToArray();
    }
}
