using System.Text.Json;
using Workbench.Engine.TokenDrop;

namespace Workbench.Cli.Tests;

public class TokenDropCliTests
{
    // The real tool in a child process: the verbs go through CliHelpers.Run, which owns stdout, stderr and the exit code.
    private static (int Code, string Out, string Err) Run(string verb, params string[] args) => CliRunner.Run([verb, .. args]);

    [Fact]
    public void Pyramid_json_reports_accuracy_agreement_and_flops_of_the_engine()
    {
        var (code, output, err) = Run("pyramid-drop", "--model", "vit-cifar10", "--layers", "1,2,3", "--keep", "0.5", "--limit", "100", "--json");
        Assert.True(code == 0, err);
        var j = JsonDocument.Parse(output).RootElement;
        Assert.Equal([65, 33, 17, 9], j.GetProperty("tokens_per_layer").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(4_790_784.0 / 10_682_880.0, j.GetProperty("flops_ratio").GetDouble(), 9);
        Assert.Equal(100, j.GetProperty("images").GetInt32());
        // The same numbers through the engine directly.
        var eval = VitTokenDrop.Evaluate(VitModel.LoadBundled(), Cifar10Set.LoadBundled().Every(10).Take(100), PyramidSchedule.Pyramid([1, 2, 3], 0.5));
        Assert.Equal(eval.Accuracy, j.GetProperty("accuracy").GetDouble(), 9);
        Assert.Equal(eval.AccuracyFull, j.GetProperty("accuracy_full").GetDouble(), 9);
        Assert.Equal(eval.Agreement, j.GetProperty("agreement").GetDouble(), 9);
    }

    [Fact]
    public void Fastv_accepts_layer_and_keep_and_prints_text_without_json()
    {
        var (code, output, err) = Run("fastv", "--model", "vit-cifar10", "--layer", "2", "--keep", "0.25", "--limit", "20", "--rank", "random", "--seed", "3");
        Assert.True(code == 0, err);
        Assert.Contains("65 / 65 / 17 / 17", output);
        Assert.Contains("accuracy", output);
    }

    [Theory]
    [InlineData("--layers", "1,2,3", "--keep", "1.5")]
    [InlineData("--layers", "1,2,3", "--keep", "0")]
    [InlineData("--layers", "3,2", "--keep", "0.5")]
    [InlineData("--layers", "1,2,4", "--keep", "0.5")]
    [InlineData("--layers", "1,2,3", "--keep", "0.5,0.5")]
    [InlineData("--layers", "1,2,3", "--keep", "half")]
    [InlineData("--layers", "1,2,3", "--keep", "0.5", "--rank", "best")]
    [InlineData("--keep", "0.5")]
    [InlineData("--layers", "1")]
    public void Bad_options_print_one_line_and_exit_2(params string[] args)
    {
        var (code, output, err) = Run("pyramid-drop", ["--model", "vit-cifar10", .. args]);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.StartsWith("workbench: error: ", err);
    }

    [Fact]
    public void Missing_model_file_and_missing_model_exit_2()
    {
        var (code, _, err) = Run("fastv", "--model", "/nonexistent/model.npz", "--layer", "1", "--keep", "0.5");
        Assert.Equal(2, code);
        Assert.Contains("/nonexistent/model.npz", err);
        (code, _, err) = Run("fastv", "--layer", "1", "--keep", "0.5");
        Assert.Equal(2, code);
        Assert.Contains("--model", err);
    }
}

public class TokenDropCliLanguageTests
{
    [Fact]
    public void Decoder_json_reports_kl_and_top1_agreement()
    {
        var (code, output, err) = CliRunner.Run("pyramid-drop", "--model", "stories260K", "--layers", "1,2,3", "--keep", "1", "--limit", "2", "--json");
        Assert.True(code == 0, err);
        var j = JsonDocument.Parse(output).RootElement;
        Assert.Equal(0, j.GetProperty("kl").GetDouble(), 9);
        Assert.Equal(1.0, j.GetProperty("top1_agreement").GetDouble());
        Assert.Equal(1.0, j.GetProperty("flops_ratio").GetDouble(), 9);
        Assert.Equal(2, j.GetProperty("prompts").GetInt32());
    }
}

public class TokenDropCliErrorTests
{
    [Fact]
    public void Data_folder_for_a_language_model_is_one_line_naming_data()
    {
        var dir = Directory.CreateTempSubdirectory().FullName;
        try
        {
            var (code, output, err) = CliRunner.Run("pyramid-drop", "--model", "stories260K", "--layers", "1,2,3", "--keep", "0.5", "--data", dir);
            Assert.Equal(2, code);
            Assert.Equal("", output);
            Assert.Equal($"workbench: error: --data {dir} is a folder; language models take a text file of blank-line-separated paragraphs", err.TrimEnd());
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("pyramid-drop", "--layers", "1")]
    [InlineData("fastv", "--layer", "1")]
    public void Unreadable_model_file_exits_2_with_one_line(string verb, string layerOption, string layer)
    {
        var path = Path.Combine(Path.GetTempPath(), $"not-a-model-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(path, new byte[10]);
        try
        {
            var (code, output, err) = CliRunner.Run(verb, "--model", path, layerOption, layer, "--keep", "0.5");
            Assert.Equal(2, code);
            Assert.Equal("", output);
            Assert.Single(err.TrimEnd().Split('\n'));
            Assert.Contains(path, err);
        }
        finally { File.Delete(path); }
    }

}

public class TokenDropCliLlavaTests
{
    private static (int Code, string Out, string Err) Run(string verb, params string[] args) => CliRunner.Run([verb, .. args]);

    private static string Llava => Path.GetDirectoryName(Bundled.Path("data/goldens/arch/llava/config.json"))!;

    [Fact]
    public void Pyramid_on_llava_drops_image_tokens_and_reports_kl_and_flops_of_the_engine()
    {
        var image = Bundled.Path("data/images/chelsea.png");
        var prompt = JsonDocument.Parse(File.ReadAllText(Path.Combine(Llava, "gen.json"))).RootElement.GetProperty("prompt")
            .EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var (code, output, err) = Run("pyramid-drop", "--model", Llava, "--layers", "1,2", "--keep", "0.5", "--image", image,
            "--tokens", string.Join(",", prompt), "--json");
        Assert.True(code == 0, err);
        var j = JsonDocument.Parse(output).RootElement;
        Assert.Equal([16, 8, 4], j.GetProperty("image_tokens_per_stage").EnumerateArray().Select(x => x.GetInt32()));
        var e = VisionLanguageTokenDrop.Evaluate(((VisionLanguageModel)ModelHub.Load(Llava)).Model, prompt,
            ModelInput.Of(VitImage.LoadSquare(image, 32)), PyramidSchedule.Pyramid([1, 2], 0.5));
        Assert.Equal(e.Kl, j.GetProperty("kl").GetDouble(), 9);
        Assert.Equal(e.FlopsRatio, j.GetProperty("flops_ratio").GetDouble(), 9);
        Assert.Equal(e.GeneratedDropped, j.GetProperty("generated").EnumerateArray().Select(x => x.GetInt32()));

        (code, output, err) = Run("fastv", "--model", Llava, "--layer", "2", "--keep", "1");
        Assert.True(code == 0, err);
        Assert.Contains("KL(full || dropped) 0.0000", output);
        Assert.Contains("8 leading tokens agree", output);
    }

    [Theory]
    [InlineData("--tokens", "1,2,3")]
    [InlineData("--image", "/nonexistent/cat.png")]
    [InlineData("--prompts", "3")]
    public void Bad_llava_options_print_one_line_and_exit_2(string option, string value)
    {
        var (code, output, err) = Run("pyramid-drop", "--model", Llava, "--layers", "1,2", "--keep", "0.5", option, value);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.StartsWith("workbench: error: ", err);
        Assert.Contains(option, err);
    }
}
