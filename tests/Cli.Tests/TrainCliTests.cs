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

    [Fact]
    public void Cli_train_pyramid_json_reports_the_schedule_the_interleaved_baseline_and_the_time_ratio()
    {
        var (exit, stdout, stderr) = CliRunner.Run("train", "--model", "stories260K", "--pyramid", "2,3:0.5", "--steps", "3", "--seq", "32", "--batch", "2", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var r = doc.RootElement;
        Assert.Equal("2,3:0.5,0.5", r.GetProperty("pyramid").GetString());
        Assert.Equal(8, r.GetProperty("loss_positions").GetInt32()); // 32 - round(0.75 * 32)
        var rows = r.GetProperty("rows_per_block").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(32, rows[0]);
        Assert.True(rows[^1] < 32, string.Join(",", rows));
        var b = r.GetProperty("baseline");
        Assert.Equal(3, b.GetProperty("loss").GetArrayLength());
        double ratio = r.GetProperty("pyramid_time_ratio").GetDouble();
        Assert.Equal(r.GetProperty("seconds_per_step").GetDouble() / b.GetProperty("seconds_per_step").GetDouble(), ratio, 1e-9);
    }

    [Fact]
    public void Cli_train_drop_json_reports_kl_and_top1_against_the_full_model_before_and_after()
    {
        var (exit, stdout, stderr) = CliRunner.Run("train", "--model", "stories260K", "--drop", "block:2", "--steps", "3", "--seq", "32", "--batch", "2", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var r = doc.RootElement;
        Assert.True(r.GetProperty("kl_start").GetDouble() > 0.01);
        Assert.InRange(r.GetProperty("top1_start").GetDouble(), 0, 0.99);
        Assert.True(r.GetProperty("kl").GetDouble() > 0);
        Assert.True(r.GetProperty("perplexity_start").GetDouble() > r.GetProperty("perplexity_fp32").GetDouble());
    }

    [Theory]
    [InlineData("--steps", "--steps", "0")]
    [InlineData("--steps", "--steps", "abc")]
    [InlineData("--lr", "--lr", "nan")]
    [InlineData("--seq", "--seq", "1")]
    [InlineData("--corpus", "--corpus", "/no/such/file.txt")]
    [InlineData("--pyramid", "--pyramid", "9:0.5")]
    [InlineData("--pyramid", "--pyramid", "2,3")]
    [InlineData("--pyramid", "--pyramid", "2:1.5")]
    [InlineData("--context", "--context", "0.5")]
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

    private static string Arch(string family) => Path.GetDirectoryName(Bundled.Path($"data/goldens/arch/{family}/config.json"))!;

    [Theory]
    [InlineData("qwen2", null)]
    [InlineData("qwen3", null)]
    [InlineData("mistral", null)]
    [InlineData("gemma2", null)]
    [InlineData("gpt2", null)]
    [InlineData("bitnet_master", "ternary")]
    public void Cli_train_takes_a_hugging_face_folder_without_tokenizer_on_seeded_random_ids(string family, string? qat)
    {
        string[] args = ["train", "--model", Arch(family), "--steps", "2", "--seq", "24", "--batch", "2", "--json"];
        var (exit, stdout, stderr) = CliRunner.Run(qat is null ? args : [.. args, "--qat", qat]);
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var r = doc.RootElement;
        Assert.Contains("seeded random token ids", r.GetProperty("data").GetString());
        Assert.Contains("has no tokenizer", r.GetProperty("data").GetString());
        Assert.Equal(2, r.GetProperty("loss").GetArrayLength());
        Assert.Equal(qat, r.GetProperty("qat").GetString());
        Assert.True(double.IsFinite(r.GetProperty("perplexity").GetDouble()) && r.GetProperty("perplexity").GetDouble() > 1);
    }

    [Fact]
    public void Cli_train_takes_token_ids_from_a_file()
    {
        var file = Path.Combine(Path.GetTempPath(), $"wb-train-ids-{Environment.ProcessId}.txt");
        var rng = new Random(5);
        File.WriteAllText(file, string.Join(" ", Enumerable.Range(0, 40 * 17).Select(i => i % 17 == 0 ? 1 : rng.Next(256))));
        try
        {
            var (exit, stdout, stderr) = CliRunner.Run("train", "--model", Arch("qwen3"), "--tokens", file, "--steps", "2", "--seq", "16", "--batch", "2", "--json");
            Assert.True(exit == 0, stderr);
            using var doc = JsonDocument.Parse(stdout);
            var r = doc.RootElement;
            Assert.StartsWith($"token ids from {file}: 680 ids, 36 windows to train on, the last 4 held out", r.GetProperty("data").GetString());
            Assert.Equal(4, r.GetProperty("eval_sequences").GetInt32());
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void Cli_train_tokenizes_the_corpus_with_a_given_tokenizer_and_says_so()
    {
        var tok = Bundled.Path("models/stories260K/tok512.bin");
        var (exit, stdout, stderr) = CliRunner.Run("train", "--model", "stories260K", "--tokenizer", tok, "--steps", "1", "--seq", "16", "--batch", "2", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.EndsWith($"tokenized by {tok}", doc.RootElement.GetProperty("data").GetString());
        var (bad, _, err) = CliRunner.Run("train", "--model", "stories260K", "--tokenizer", "/no/such/tokenizer.model", "--steps", "1");
        Assert.Equal(2, bad);
        Assert.Contains("--tokenizer", Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [Theory]
    [InlineData("bitnet_packed", "--model", new[] { "--steps", "1" }, "offline-quantized")]
    [InlineData("qwen2", "--corpus", new[] { "--steps", "1", "--corpus", "persuasion" }, "no tokenizer")]
    [InlineData("qwen2", "--out", new[] { "--steps", "1", "--out", "/tmp/wb-never-written" }, "Llama-2-layout")]
    public void Cli_train_refuses_what_it_does_not_cover_in_one_line_with_exit_2(string family, string option, string[] rest, string why)
    {
        var (exit, stdout, stderr) = CliRunner.Run(["train", "--model", Arch(family), .. rest]);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(option, line);
        Assert.Contains(why, line);
    }
}
