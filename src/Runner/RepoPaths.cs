namespace Workbench.Runner;

/// <summary>Finds the repository root: the folder holding Workbench.sln, walking up from a start folder.</summary>
public static class RepoPaths
{
    public static string? FindRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Workbench.sln"))) return dir.FullName;
        return null;
    }

    /// <summary>The root found from the current directory, else from the runner's own folder.</summary>
    public static string Root() =>
        FindRoot(Environment.CurrentDirectory) ?? FindRoot(AppContext.BaseDirectory)
        ?? throw new DirectoryNotFoundException("Workbench.sln not found above the current directory or the runner.");
}
