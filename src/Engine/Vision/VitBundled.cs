namespace Workbench.Engine.Vision;

/// <summary>
/// Finds the bundled ViT and CIFAR-10 files. The repository root is WORKBENCH_HOME if set, else the first folder
/// holding Workbench.sln found by walking up from the application's base directory. (To be folded into a general ModelHub.)
/// </summary>
public static class VitBundled
{
    public const string ModelName = "vit-cifar10";
    public const string HomeVariable = "WORKBENCH_HOME";

    public static string RepoRoot()
    {
        var env = Environment.GetEnvironmentVariable(HomeVariable);
        if (!string.IsNullOrWhiteSpace(env))
        {
            if (!Directory.Exists(env)) throw new DirectoryNotFoundException($"{HomeVariable}={env} is not a directory");
            return Path.GetFullPath(env);
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Workbench.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException(
            $"could not find the Workbench repository (no Workbench.sln above {AppContext.BaseDirectory}); set {HomeVariable}");
    }

    public static string ModelPath => Path.Combine(RepoRoot(), "models", "vit-cifar10", "vit_cifar10.npz");
    public static string Cifar10Dir => Path.Combine(RepoRoot(), "data", "cifar10-test-1000");

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
