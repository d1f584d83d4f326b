namespace Workbench.Engine.Vision;

/// <summary>Resolves the bundled ViT ("vit-cifar10") and CIFAR-10 files through <see cref="Bundled"/> (sha256-checked).</summary>
public static class VitBundled
{
    public const string ModelName = "vit-cifar10";

    public static string RepoRoot() => Bundled.Root;
    public static string ModelPath => Bundled.Path("models/vit-cifar10/vit_cifar10.npz");
    public static string Cifar10Dir => Path.Combine(Bundled.Root, "data", "cifar10-test-1000");

    /// <summary>True when <paramref name="nameOrPath"/> names the bundled ViT or a .npz file.</summary>
    public static bool IsVit(string nameOrPath) =>
        string.Equals(nameOrPath, ModelName, StringComparison.OrdinalIgnoreCase)
        || nameOrPath.EndsWith(".npz", StringComparison.OrdinalIgnoreCase);

    /// <summary>"vit-cifar10" -> the bundled npz; anything else is taken as a path and must exist.</summary>
    public static string Resolve(string nameOrPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nameOrPath);
        if (string.Equals(nameOrPath, ModelName, StringComparison.OrdinalIgnoreCase)) return ModelPath;
        if (!File.Exists(nameOrPath)) throw new FileNotFoundException($"model file not found: {nameOrPath}", nameOrPath);
        return Path.GetFullPath(nameOrPath);
    }
}
