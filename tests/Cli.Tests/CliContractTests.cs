using System.Diagnostics;

namespace Workbench.Cli.Tests;

/// <summary>The CLI's contract for the options the fuzz pass found: exit 2, exactly one line naming the option.</summary>
public sealed class CliContractTests
{
    private static string[] Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Theory]
    [InlineData("Infinity")]
    [InlineData("NaN")]
    [InlineData("-Infinity")]
    public void Generate_refuses_a_temperature_that_is_not_finite(string t)
    {
        var (exit, stdout, stderr) = CliRunner.Run("generate", "--model", "stories260K", "--prompt", "Hi", "--steps", "8", "--temperature", t);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        var line = Assert.Single(Lines(stderr));
        Assert.Contains("--temperature", line);
    }

    [Fact]
    public void Notebooks_out_an_existing_file_fails_at_once()
    {
        var file = Path.GetTempFileName();
        try
        {
            var sw = Stopwatch.StartNew();
            var (exit, _, stderr) = CliRunner.Run("notebooks", "--out", file, "--only", "01-redundancy");
            Assert.Equal(2, exit);
            var line = Assert.Single(Lines(stderr));
            Assert.Contains("--out", line);
            Assert.Contains(file, line);
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"took {sw.Elapsed}");
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void Engine_refuses_infinite_temperature_naming_it()
    {
        var d = Engine.Models.ModelHub.LoadDecoder("stories260K");
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => d.Generate("Hi", 4, float.PositiveInfinity));
        Assert.Equal("temperature", ex.ParamName);
    }
}
