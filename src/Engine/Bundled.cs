using System.Security.Cryptography;
using Workbench.Engine.Formats;

namespace Workbench.Engine;

/// <summary>
/// The small real models and data the defaults use, shipped in the repository (models/, data/) and copied next to
/// the engine assembly at build time. Each file's sha256 is checked the first time it is used (in the build output,
/// once per copy: see <see cref="Stamp"/>).
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
        ["models/austen-16L/fp/config.json"] = "dc31d288daa37ac3344c178770d24e91d18d6d181f9f4cb4209592ac1641cf4f",
        ["models/austen-16L/fp/model-00001-of-00002.safetensors"] = "81027d6a46ec3993742990cea4fefb5947672ee618168ffd60da16be33a7dcbe",
        ["models/austen-16L/fp/model-00002-of-00002.safetensors"] = "c4da025689886c63ce66fa0b5428a0a6aeeb28612b1a27efc956ee4e8c5780bf",
        ["models/austen-16L/fp/model.safetensors.index.json"] = "5e426f5ea47148682ec00c94f4dfa47d70d84a0a11d39df03466118712bea83b",
        ["models/austen-16L/fp/tokenizer.model"] = "d0362994a03e682c531c116a2ec02f94f29f0e2c7bb29de1ba0b60a9a528e51f",
        ["models/austen-16L/bitnet-b158/config.json"] = "684b1202d2aed13f788b1be460a35362f3007e7f7fc91b6f8410638df9c9e00a",
        ["models/austen-16L/bitnet-b158/model-00001-of-00002.safetensors"] = "181e4998fc54f2b552d61685a0013edf79d8a7677c33f0a423ae2d374c5d1e01",
        ["models/austen-16L/bitnet-b158/model-00002-of-00002.safetensors"] = "d01099ca9464580b2a7b61ffd1e253be8ba192cde1049a27af001a3236337440",
        ["models/austen-16L/bitnet-b158/model.safetensors.index.json"] = "5e426f5ea47148682ec00c94f4dfa47d70d84a0a11d39df03466118712bea83b",
        ["models/austen-16L/bitnet-b158/tokenizer.model"] = "d0362994a03e682c531c116a2ec02f94f29f0e2c7bb29de1ba0b60a9a528e51f",
        ["data/text/austen/persuasion.txt"] = "0509db07233abe007abf9833d7f05871e35af9a1023a3b59241d59adab1f94d2",
        ["data/text/austen/emma.txt"] = "0c59c31150a5053e59d926b2a6a0e429ee26f1518ff05bb3ff5ad54cf3a003f6",
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
                if (!Verified.Contains(relative) && !StampMatches(full, want))
                {
                    using (var f = File.OpenRead(full))
                    {
                        var hash = SHA256.HashData(f);
                        if (!HexEquals(hash, want))
                            throw new ModelFormatException(full, "sha256", 0, $"checksum {Convert.ToHexStringLower(hash)} does not match the bundled file's {want}: the copy is damaged");
                    }
                    WriteStamp(full, want);
                }
                Verified.Add(relative);
            }
        }
        return full;
    }

    // A verified copy in the build output (the engine's own folder) gets a stamp beside it, FILE.verified: the sha256,
    // length and modification time it had. A later start whose file still has that length and time skips the hash
    // (loading OpenSSL and hashing cost ~5-8 ms of CPU in every `generate` process); any rewrite of the file changes its
    // time and brings the full check back. Elsewhere (WORKBENCH_HOME, a source checkout) nothing is written.
    private static string Stamp(string full, string want)
    {
        var info = new FileInfo(full);
        return $"{want} {info.Length} {info.LastWriteTimeUtc.Ticks}";
    }

    private static bool InBuildOutput =>
        System.IO.Path.GetFullPath(Root).TrimEnd('/', '\\') == System.IO.Path.GetFullPath(AppContext.BaseDirectory).TrimEnd('/', '\\');

    private static bool StampMatches(string full, string want)
    {
        try { return InBuildOutput && File.Exists(full + ".verified") && File.ReadAllText(full + ".verified") == Stamp(full, want); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    private static void WriteStamp(string full, string want)
    {
        if (!InBuildOutput) return;
        try { File.WriteAllText(full + ".verified", Stamp(full, want)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // read-only install: hash every time
    }

    // Byte by byte against the lower-case hex: Convert.ToHexStringLower's vector code is jitted at every start (no
    // precompiled code for it), ~2 ms of a `generate` process.
    private static bool HexEquals(ReadOnlySpan<byte> hash, string hex)
    {
        if (hex.Length != 2 * hash.Length) return false;
        const string digits = "0123456789abcdef";
        for (int i = 0; i < hash.Length; i++)
            if (hex[2 * i] != digits[hash[i] >> 4] || hex[2 * i + 1] != digits[hash[i] & 15]) return false;
        return true;
    }

    /// <summary>Absolute path of a bundled folder (a Hugging Face model folder); checks the sha256 of every known file in it.</summary>
    public static string Folder(string relative)
    {
        var prefix = relative.TrimEnd('/') + "/";
        foreach (var file in Sha256.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToArray()) Path(file);
        var full = System.IO.Path.Combine(Root, relative);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"bundled folder {relative} is missing under {Root}");
        return full;
    }

    public static string TinyStories => Path("data/text/tinystories_val.txt");
    public static string PrideAndPrejudice => Path("data/text/pride_and_prejudice.txt");
    /// <summary>Persuasion, the novel the austen-16L models never saw in training (one paragraph per line).</summary>
    public static string Persuasion => Path("data/text/austen/persuasion.txt");

    /// <summary>Emma, one of the five novels the austen-16L models were trained on (one paragraph per line).</summary>
    public static string Emma => Path("data/text/austen/emma.txt");
}
