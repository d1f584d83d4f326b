using System.Diagnostics;

namespace Workbench.Runner;

/// <summary>
/// Packs Workbench.Engine and Workbench.Interactive into artifacts/feed with a fresh version, 0.1.0-dev.&lt;unix seconds&gt;.
/// Notebooks reference <c>#r "nuget: Workbench.Interactive, 0.1.0-dev.*"</c>, a floating version, so each restore takes
/// the newest pack: a same-version package would be served from the NuGet cache and hide code changes.
/// Older packs are removed from the feed and from the global packages folder (only these two package ids).
/// </summary>
public static class FeedBuilder
{
    public static readonly string[] PackageIds = ["Workbench.Engine", "Workbench.Interactive"];
    public const string VersionPrefix = "0.1.0-dev.";

    public static string FeedDir(string root) => Path.Combine(root, "artifacts", "feed");

    /// <summary>Packs both projects; returns the version. Throws with the pack output when a pack fails.</summary>
    public static string Pack(string root, TextWriter log)
    {
        var version = VersionPrefix + DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var feed = FeedDir(root);
        Directory.CreateDirectory(feed);
        foreach (var old in Directory.EnumerateFiles(feed, "Workbench.*.nupkg")) File.Delete(old);
        PruneGlobalCache();

        var sw = Stopwatch.StartNew();
        foreach (var project in new[] { "src/Engine/Workbench.Engine.csproj", "src/Extensions/Workbench.Interactive.csproj" })
        {
            var (code, output) = Dotnet(root, "pack", Path.Combine(root, project), "-c", "Release", "-o", feed,
                $"-p:Version={version}", "--nologo", "-v", "quiet");
            if (code != 0)
                throw new InvalidOperationException($"dotnet pack {project} failed (exit {code}):\n{output}");
        }
        log.WriteLine($"packed {string.Join(", ", PackageIds)} {version} into {Path.GetRelativePath(root, feed)} in {sw.Elapsed.TotalSeconds:F1} s");
        return version;
    }

    // Two packs within one second share a version: remove every dev version so none is served stale.
    private static void PruneGlobalCache()
    {
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (var id in PackageIds)
        {
            var dir = Path.Combine(packages, id.ToLowerInvariant());
            if (!Directory.Exists(dir)) continue;
            foreach (var versionDir in Directory.EnumerateDirectories(dir, VersionPrefix + "*"))
                try { Directory.Delete(versionDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static (int Code, string Output) Dotnet(string workingDir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start dotnet");
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout + stderr.Result);
    }
}
