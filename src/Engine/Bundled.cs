using System.Security.Cryptography;
using Workbench.Engine.Formats;

namespace Workbench.Engine;

/// <summary>
/// The small real models and data the defaults use, shipped in the repository (models/, data/) and copied next to
/// the engine assembly at build time. Each file's sha256 is checked the first time it is used.
/// </summary>
public static class Bundled
{
    private static readonly Dictionary<string, string> Sha256 = new(StringComparer.Ordinal)
    {
        ["models/stories260K/stories260K.bin"] = "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696",
        ["models/stories260K/tok512.bin"] = "037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312",
        ["models/stories260K/stories260K.gguf"] = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d",
        ["models/babyllama-105/model5000.bin"] = "98b63851593002f0ab706ff1db61fd9f5fd73d89df34970dd66eced9ee954464",
        ["models/babyllama-105/tok105.model"] = "eed6827c1b4d876b982b9b628626dba444960a041857085e0d88c4a92aa8d3c6",
        ["models/vit-cifar10/vit_cifar10.npz"] = "325909a928ccf6d81a3496f775a2bcd139befdfebddf9bff5965fdfb66339579",
    };

    private static readonly HashSet<string> Verified = [];
    private static string? _root;

    /// <summary>
    /// The folder holding models/ and data/: $WORKBENCH_HOME, else the engine's own folder (build output),
    /// else the nearest parent of it that has them (a source checkout).
    /// </summary>
    public static string Root => _root ??= FindRoot();

    private static string FindRoot()
    {
        if (Environment.GetEnvironmentVariable("WORKBENCH_HOME") is { Length: > 0 } home && Directory.Exists(System.IO.Path.Combine(home, "models")))
            return home;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (Directory.Exists(System.IO.Path.Combine(dir.FullName, "models")) && Directory.Exists(System.IO.Path.Combine(dir.FullName, "data")))
                return dir.FullName;
        throw new DirectoryNotFoundException($"the bundled models/ and data/ folders were not found from {AppContext.BaseDirectory}; set WORKBENCH_HOME to the repository root");
    }

    /// <summary>Absolute path of a bundled file (relative like "data/text/tinystories_val.txt"); checks its sha256 if known.</summary>
    public static string Path(string relative)
    {
        var full = System.IO.Path.Combine(Root, relative);
        if (!File.Exists(full)) throw new FileNotFoundException($"bundled file {relative} is missing under {Root}", full);
        if (Sha256.TryGetValue(relative, out var want))
        {
            lock (Verified)
            {
                if (!Verified.Contains(relative))
                {
                    using var f = File.OpenRead(full);
                    var got = Convert.ToHexStringLower(SHA256.HashData(f));
                    if (got != want) throw new ModelFormatException(full, "sha256", 0, $"checksum {got} does not match the bundled file's {want}: the copy is damaged");
                    Verified.Add(relative);
                }
            }
        }
        return full;
    }

    public static string TinyStories => Path("data/text/tinystories_val.txt");
    public static string PrideAndPrejudice => Path("data/text/pride_and_prejudice.txt");
}
