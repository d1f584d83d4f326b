using System.Diagnostics;

namespace Workbench.Cli.Tests;

/// <summary>Runs the real `workbench` tool (the built workbench.dll beside the tests) as a child process.</summary>
public static class CliRunner
{
    public static (int Exit, string Stdout, string Stderr) Run(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet");
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "workbench.dll"));
        return Start(psi, args);
    }

    /// <summary>
    /// Runs src/Cli's own Release build output (the ReadyToRun images `dotnet build src/Cli -c Release` writes, which
    /// compare.sh times) with extra environment variables; the copy beside the tests is plain IL.
    /// </summary>
    public static (int Exit, string Stdout, string Stderr) RunBuildOutput(IReadOnlyDictionary<string, string> env, params string[] args)
    {
        var dll = Path.Combine(RepoFiles.Root, "src", "Cli", "bin", "Release", "net10.0", "workbench.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException($"build the CLI first (dotnet build src/Cli -c Release): {dll}");
        var psi = new ProcessStartInfo("dotnet");
        psi.ArgumentList.Add(dll);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        return Start(psi, args);
    }

    /// <summary>The native binary ./install.sh builds (bin/workbench at the repository root).</summary>
    public static string NativeBinary => Path.Combine(RepoFiles.Root, "bin", "workbench");

    /// <summary>Runs bin/workbench, the Native AOT build of the same CLI.</summary>
    public static (int Exit, string Stdout, string Stderr) RunNative(params string[] args) => Start(new ProcessStartInfo(NativeBinary), args);

    private static (int Exit, string Stdout, string Stderr) Start(ProcessStartInfo psi, string[] args)
    {
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(true); throw new TimeoutException($"workbench {string.Join(' ', args)} timed out"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
