using System.Text.Json;

namespace Workbench.Cli.Tests;

/// <summary>`workbench train`: the JSON a script reads, and one-line errors naming the option.</summary>
public class TrainCliTests
{
    [Fact]
    public void Cli_train_json_reports_the_perplexities_and_the_loss_per_step()
    {
        var (exit, stdout, stderr) = CliRunner.Run("train", "--model", "stories260K", "--steps", "3", "--seq", "32", "--batch", "2", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var r = doc.RootElement;
        Assert.Equal(3, r.GetProperty("loss").GetArrayLength());
        foreach (var name in new[] { "perplexity_start", "perplexity", "perplexity_fp32", "seconds", "tokens_per_s" })
            Assert.True(r.GetProperty(name).GetDouble() > 0, name);
        Assert.Equal(r.GetProperty("perplexity_fp32").GetDouble(), r.GetProperty("perplexity_start").GetDouble());
    }

    [Theory]
    [InlineData("--steps", "--steps", "0")]
    [InlineData("--steps", "--steps", "abc")]
    [InlineData("--lr", "--lr", "nan")]
    [InlineData("--seq", "--seq", "1")]
    [InlineData("--corpus", "--corpus", "/no/such/file.txt")]
    [InlineData("--pyramid", "--pyramid", "2:0.5")]
    [InlineData("--qat", "--qat", "binary")]
    public void Cli_train_bad_values_are_one_line_naming_the_option_with_exit_2(string named, string option, string value)
    {
        var (exit, stdout, stderr) = CliRunner.Run(option == "--steps" ? ["train", "--model", "stories260K", option, value]
            : ["train", "--model", "stories260K", "--steps", "2", option, value]);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(named, line);
    }
}
