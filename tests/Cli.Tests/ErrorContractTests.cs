using Workbench.Cli;

namespace Workbench.Cli.Tests;

/// <summary>Every verb's bad input: exit code 2, exactly one line on stderr, naming the option or the file.</summary>
public sealed class ErrorContractTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wb-errors-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string OneBadInputLine(params string[] args)
    {
        var (exit, stdout, stderr) = CliRunner.Run(args);
        Assert.True(exit == 2, $"exit {exit}: {stderr}");
        Assert.Equal("", stdout);
        return Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private string Garbage(string name)
    {
        var path = Path.Combine(_dir, name);
        var bytes = new byte[3000];
        new Random(1).NextBytes(bytes);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Theory]
    [InlineData("fastv", "model.npz", "--layer", "1")]
    [InlineData("fastv", "model.bin", "--layer", "1")]
    [InlineData("pyramid-drop", "model.npz", "--layers", "1,2")]
    [InlineData("pyramid-drop", "model.gguf", "--layers", "1,2")]
    public void A_token_drop_verb_given_an_unreadable_model_names_the_file(string verb, string file, string layersOption, string layers)
    {
        var path = Garbage(file);
        var line = OneBadInputLine(verb, "--model", path, layersOption, layers, "--keep", "0.5");
        Assert.Contains(path, line);
        Assert.Contains("offset", line);
    }

    [Theory]
    [InlineData("stories260K")]
    [InlineData("vit-cifar10")]
    public void A_folder_or_file_of_the_wrong_kind_for_data_is_one_line_naming_the_option(string model)
    {
        // Language models read --data as a text file, the ViT as a CIFAR-10 folder: give each the other kind.
        var data = model == "vit-cifar10" ? Garbage("images.txt") : _dir;
        var line = OneBadInputLine("pyramid-drop", "--model", model, "--layers", "1", "--keep", "0.5", "--data", data);
        Assert.Contains("--data", line);
        Assert.Contains(data, line);
    }

    [Fact]
    public void A_folder_given_for_the_tokenizer_names_the_option()
    {
        var line = OneBadInputLine("generate", "--model", "stories260K", "--tokenizer", _dir, "--steps", "8");
        Assert.Contains("--tokenizer", line);
        Assert.Contains(_dir, line);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("0")]
    public void Non_positive_steps_are_one_line_naming_the_option(string steps)
    {
        var line = OneBadInputLine("generate", "--model", "stories260K", "--steps", steps);
        Assert.Contains($"--steps {steps}", line);
    }

    [Fact]
    public void A_bundled_model_loads_with_another_tokenizer_file()
    {
        var copy = Path.Combine(_dir, "my-tokenizer.bin");
        File.Copy(Bundled.Path("models/stories260K/tok512.bin"), copy);
        var (exit, withFile, stderr) = CliRunner.Run("generate", "--model", "stories260K", "--tokenizer", copy, "--prompt", "Once", "--steps", "24");
        Assert.True(exit == 0, stderr);
        var (_, bundled, _) = CliRunner.Run("generate", "--model", "stories260K", "--prompt", "Once", "--steps", "24");
        Assert.Equal(bundled, withFile);
        Assert.StartsWith("Once", withFile);
        // A tokenizer of the wrong vocabulary is refused, naming the file and both sizes.
        var line = OneBadInputLine("generate", "--model", "stories260K", "--tokenizer", Bundled.Path("models/babyllama-105/tok105.model"), "--steps", "8");
        Assert.Contains("tok105.model", line);
        Assert.Contains("105", line);
        Assert.Contains("512", line);
        // An encoder brings its own tokenizer.
        Assert.Contains("--tokenizer", OneBadInputLine("inspect", "--model", "minilm", "--tokenizer", copy));
    }

    [Theory]
    [InlineData("--bogus", "generate", "--model", "stories260K", "--bogus")]
    [InlineData("--steps", "generate", "--model", "stories260K", "--steps", "many")]
    [InlineData("--count", "drop", "--model", "stories260K", "--granularity", "block")]
    public void Parse_errors_are_one_line_naming_the_option(string option, params string[] args) =>
        Assert.Contains(option, OneBadInputLine(args));

    [Theory]
    [InlineData("--never", "drop", "--model", "stories260K", "--granularity", "block", "--count", "1", "--never", "9")]
    [InlineData("--never", "drop", "--model", "stories260K", "--granularity", "block", "--count", "1", "--never", "1,x")]
    [InlineData("--count", "drop", "--model", "stories260K", "--granularity", "block", "--count", "6")]
    [InlineData("--csv", "drop", "--model", "stories260K", "--granularity", "block", "--count", "1", "--csv", "out.csv")]
    [InlineData("--seq", "redundancy", "--model", "stories260K", "--granularity", "block", "--seq", "1")]
    [InlineData("--granularity", "redundancy", "--model", "stories260K", "--granularity", "heads")]
    public void Redundancy_option_errors_are_one_line_naming_the_option(string option, params string[] args) =>
        Assert.Contains(option, OneBadInputLine(args));

    [Fact]
    public void One_line_drops_the_parameter_suffix_and_the_actual_value_line()
    {
        Assert.Equal("--layers: boundaries must increase",
            CliHelpers.OneLine(new ArgumentOutOfRangeException("--layers", 3, "boundaries must increase")));
        Assert.Equal("steps must be positive", CliHelpers.OneLine(new ArgumentOutOfRangeException("steps", -1, "steps must be positive")));
        Assert.Equal("--seq 1 must be at least 2", CliHelpers.OneLine(new Workbench.Engine.Requests.OptionException("--seq", "--seq 1 must be at least 2")));
        Assert.Equal("a b", CliHelpers.OneLine(new InvalidDataException("a\n  b")));
    }
}
