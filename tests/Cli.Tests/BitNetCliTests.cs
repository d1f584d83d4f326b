using System.Text.Json;

namespace Workbench.Cli.Tests;

/// <summary>`workbench bitnet` and `workbench bench gemv` invoked in-process: exit codes and the scripted JSON fields.</summary>
[Collection("Console")]
public class BitNetCliTests
{
    [Fact]
    public void CliBitNetRejectsBadOptionsWithExitCode2()
    {
        var err = new StringWriter();
        var oldErr = Console.Error;
        Console.SetError(err);
        try
        {
            var cmd = Workbench.Cli.Commands.BitNetCommand.Create();
            Assert.Equal(2, cmd.Parse(["--model", "stories260K", "--format", "q4"]).Invoke());
            Assert.Equal(2, cmd.Parse(["--format", "i2s"]).Invoke());
            Assert.Equal(2, cmd.Parse(["--model", "stories260K"]).Invoke());
            Assert.Equal(2, cmd.Parse(["--model", "/no/such/model.bin", "--format", "i2s"]).Invoke());
            Assert.Equal(2, cmd.Parse(["--model", "stories260K", "--format", "tl2", "--threads", "0"]).Invoke());
            var lines = err.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(5, lines.Length);
            Assert.Contains("--format 'q4'", lines[0]);
        }
        finally { Console.SetError(oldErr); }
    }

    [Fact]
    public void CliBitNetJsonHasTheScriptedFields()
    {
        var output = new StringWriter();
        var oldOut = Console.Out;
        Console.SetOut(output);
        int rc;
        try { rc = Workbench.Cli.Commands.BitNetCommand.Create().Parse(["--model", "stories260K", "--format", "tl2", "--json"]).Invoke(); }
        finally { Console.SetOut(oldOut); }
        Assert.Equal(0, rc);
        using var doc = System.Text.Json.JsonDocument.Parse(output.ToString());
        var root = doc.RootElement;
        Assert.True(root.GetProperty("lossless").GetBoolean());
        var q = root.GetProperty("quality");
        foreach (var name in new[] { "kl", "top1_agreement", "perplexity", "perplexity_fp32" }) Assert.True(q.GetProperty(name).GetDouble() >= 0);
        Assert.True(root.GetProperty("weight_bytes_fp32").GetInt64() > root.GetProperty("weight_bytes_packed").GetInt64());
    }

    [Fact]
    public void BenchGemvRejectsBadOptionsWithExitCode2()
    {
        var err = new StringWriter();
        var oldErr = Console.Error;
        Console.SetError(err);
        try
        {
            var bench = Workbench.Cli.Commands.BenchGemvCommand.CreateBenchGroup();
            Assert.Equal(2, bench.Parse(["gemv", "--format", "q4", "--rows", "8", "--cols", "8"]).Invoke());
            Assert.Equal(2, bench.Parse(["gemv", "--format", "i2s", "--rows", "x", "--cols", "8"]).Invoke());
            Assert.Equal(2, bench.Parse(["gemv", "--format", "i2s", "--cols", "8"]).Invoke());
            Assert.Contains("--format 'q4'", err.ToString());
            Assert.Contains("--rows 'x'", err.ToString());
        }
        finally { Console.SetError(oldErr); }
    }
}
