using System.CommandLine;
using System.Diagnostics;

namespace Workbench.Cli.Commands;

/// <summary>
/// <c>workbench notebooks [--out DIR] [--only NAME]</c>: executes the notebooks headlessly and writes DIR/&lt;name&gt;.ipynb
/// and DIR/&lt;name&gt;.html. The CLI does not depend on the notebook layer: it runs src/Runner as a child process
/// (<c>dotnet run --project src/Runner -c Release</c>, which builds it when needed), streams its output, and returns its
/// exit code (non-zero naming the notebook and the failed cell).
/// </summary>
public static class NotebooksCommand
{
    public static Command Create()
    {
        var outOption = new Option<string>("--out")
        {
            Description = "Folder for the executed .ipynb and the .html reports",
            DefaultValueFactory = _ => Path.Combine("out", "notebooks"),
        };
        var onlyOption = new Option<string?>("--only")
        {
            Description = "Run only this notebook (file name, with or without .ipynb)",
        };
        var command = new Command("notebooks", "Execute the notebooks headlessly (in-process .NET Interactive kernel) and write executed .ipynb and self-contained .html")
        {
            outOption,
            onlyOption,
        };
        command.SetAction(parse => Run(parse.GetValue(outOption)!, parse.GetValue(onlyOption)));
        return command;
    }

    internal static int Run(string outDir, string? only)
    {
        // Checked before the runner is built and the notebooks run, so a bad --out fails at once (exit 2, one line).
        if (File.Exists(outDir))
        {
            Console.Error.WriteLine($"workbench: error: --out '{outDir}' is an existing file, not a folder");
            return 2;
        }
        var root = FindRoot(Environment.CurrentDirectory) ?? FindRoot(AppContext.BaseDirectory);
        if (root is null)
        {
            Console.Error.WriteLine("error: Workbench.sln not found above the current directory: run from the repository.");
            return 2;
        }
        var runner = Path.Combine(root, "src", "Runner", "Workbench.Runner.csproj");
        if (!File.Exists(runner))
        {
            Console.Error.WriteLine($"error: the notebook runner is missing ({runner}).");
            return 2;
        }

        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = root, UseShellExecute = false };
        foreach (var a in new[] { "run", "--project", runner, "-c", "Release", "--", "--out", Path.GetFullPath(outDir) })
            psi.ArgumentList.Add(a);
        if (only is not null)
        {
            psi.ArgumentList.Add("--only");
            psi.ArgumentList.Add(only);
        }
        // Output is inherited, not redirected: the runner's progress streams straight to the console.
        using var process = Process.Start(psi);
        if (process is null)
        {
            Console.Error.WriteLine("error: cannot start 'dotnet'.");
            return 2;
        }
        process.WaitForExit();
        return process.ExitCode;
    }

    private static string? FindRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Workbench.sln"))) return dir.FullName;
        return null;
    }
}
