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
