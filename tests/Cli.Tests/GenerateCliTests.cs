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
        Assert.Equal("steps", doc.RootElement.GetProperty("stop").GetString());
    }

    /// <summary>A Hugging Face copy of stories260K whose generation_config.json makes one of its greedy tokens the EOS.</summary>
    [Fact]
    public void Json_says_it_stopped_at_eos_and_ignore_eos_runs_every_step()
    {
        var dir = Directory.CreateTempSubdirectory("wb-gen-eos-").FullName;
        try
        {
            var full = Workbench.Engine.Models.ModelHub.LoadDecoder("stories260K").Generate("Once upon a time", 64);
            int eos = full.Tokens[full.PromptTokens + 5];
            int stopAt = Array.IndexOf(full.Tokens, eos, full.PromptTokens);
            Workbench.Engine.Models.HuggingFaceExport.WriteLlama(Workbench.Engine.Models.ModelHub.LoadDecoder("stories260K").Model, dir);
            File.Copy(Workbench.Engine.Bundled.Path("models/stories260K/tok512.bin"), Path.Combine(dir, "tokenizer.bin"));
            File.WriteAllText(Path.Combine(dir, "generation_config.json"), $"{{\"eos_token_id\": [{eos}]}}");
            var (exit, json, stderr) = CliRunner.Run("generate", "--model", dir, "--prompt", "Once upon a time", "--steps", "64", "--json");
            Assert.True(exit == 0, stderr);
            var j = JsonDocument.Parse(json).RootElement;
            Assert.Equal("eos", j.GetProperty("stop").GetString());
            Assert.Equal(full.Tokens[..stopAt], j.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray());
            (exit, json, stderr) = CliRunner.Run("generate", "--model", dir, "--prompt", "Once upon a time", "--steps", "64", "--ignore-eos", "--json");
            Assert.True(exit == 0, stderr);
            j = JsonDocument.Parse(json).RootElement;
            Assert.Equal("steps", j.GetProperty("stop").GetString());
            Assert.Equal(full.Tokens, j.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        }
        finally { Directory.Delete(dir, true); }
    }
}
