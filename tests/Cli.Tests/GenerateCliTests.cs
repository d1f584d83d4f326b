using System.Text.Json;
using Workbench.Engine.Tests;

namespace Workbench.Cli.Tests;

/// <summary>`workbench generate` against llama2.c run.c's output (goldens/stories260K_greedy.tsv), as the engine tests check the API.</summary>
public class GenerateCliTests
{
    public static TheoryData<string, string, string> Cases() => Goldens.Stories260KGreedyCases();

    private static string AsGolden(string printed) => Goldens.AsGreedyGolden(printed);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_text_equals_llama2c_through_the_cli(string model, string prompt, string golden)
    {
        var (exit, stdout, stderr) = CliRunner.Run("generate", "--model", model, "--prompt", prompt, "--steps", "64", "--temperature", "0");
        Assert.True(exit == 0, stderr);
        Assert.Equal(golden, AsGolden(stdout.TrimEnd('\n')));
        var (exit2, json, _) = CliRunner.Run("generate", "--model", model, "--prompt", prompt, "--steps", "64", "--temperature", "0", "--json");
        Assert.Equal(0, exit2);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(golden, AsGolden(doc.RootElement.GetProperty("text").GetString()!));
        Assert.Equal(65, doc.RootElement.GetProperty("tokens").GetArrayLength());
        Assert.Equal(1, doc.RootElement.GetProperty("tokens")[0].GetInt32());
    }
}
