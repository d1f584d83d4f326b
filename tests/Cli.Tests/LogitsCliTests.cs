using System.Text.Json;
using Workbench.Engine.Formats;

namespace Workbench.Cli.Tests;

public sealed class LogitsCliTests
{
    private static string Folder(string family) => Path.GetDirectoryName(Bundled.Path($"data/goldens/arch/{family}/config.json"))!;

    [Theory]
    [InlineData("qwen2")]
    [InlineData("gpt2")]
    public void Logits_json_of_a_folder_without_tokenizer_matches_transformers(string family)
    {
        var ids = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(family), "gen_b.json"))).RootElement.GetProperty("prompt")
            .EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var (exit, stdout, stderr) = CliRunner.Run("logits", "--model", Folder(family), "--tokens", string.Join(",", ids), "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal(ids, doc.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()));
        var rows = doc.RootElement.GetProperty("logits");
        using var golden = NpzFile.Open(Path.Combine(Folder(family), "golden.npz"));
        var want = golden.ReadF32("logits_b");
        int vocab = want.Length / ids.Length;
        Assert.Equal(ids.Length, rows.GetArrayLength());
        double worst = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            Assert.Equal(vocab, rows[i].GetArrayLength());
            for (int v = 0; v < vocab; v++) worst = Math.Max(worst, Math.Abs(rows[i][v].GetSingle() - want[i * vocab + v]));
        }
        Assert.True(worst <= 1e-4, $"max |logit - transformers| = {worst}");
    }

    [Theory]
    [InlineData("1,x,3", "'x' is not a token id")]
    [InlineData("1,99999", "outside the vocabulary")]
    public void Bad_token_ids_exit_2_with_one_line_naming_the_option(string tokens, string says)
    {
        var (exit, stdout, stderr) = CliRunner.Run("logits", "--model", Folder("qwen2"), "--tokens", tokens);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("--tokens", line);
        Assert.Contains(says, line);
    }

    [Fact]
    public void A_prompt_without_a_tokenizer_exits_2_with_one_line()
    {
        var (exit, _, stderr) = CliRunner.Run("logits", "--model", Folder("qwen2"), "--prompt", "hello");
        Assert.Equal(2, exit);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("no tokenizer", line);
    }

    [Fact]
    public void Prompt_text_goes_through_the_bundled_tokenizer_with_bos()
    {
        var (exit, stdout, stderr) = CliRunner.Run("logits", "--model", "stories260K", "--prompt", "Once upon a time", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var tokens = doc.RootElement.GetProperty("tokens");
        Assert.Equal(1, tokens[0].GetInt32());
        Assert.Equal(tokens.GetArrayLength(), doc.RootElement.GetProperty("logits").GetArrayLength());
        Assert.Equal(512, doc.RootElement.GetProperty("logits")[0].GetArrayLength());
    }

    private static int[] LlavaPrompt() => JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder("llava"), "gen.json"))).RootElement
        .GetProperty("prompt").EnumerateArray().Select(e => e.GetInt32()).ToArray();

    /// <summary>The golden's pixel_values (its .npz) through the CLI: transformers' logits; one image token is expanded.</summary>
    [Fact]
    public void Logits_image_on_llava_with_the_goldens_pixel_values_matches_transformers()
    {
        var ids = LlavaPrompt();
        string npz = Path.Combine(Folder("llava"), "golden.npz");
        int[] one = [.. ids.TakeWhile(t => t != 255), 255, .. ids.SkipWhile(t => t != 255).SkipWhile(t => t == 255)];
        using var golden = NpzFile.Open(npz);
        var want = golden.ReadF32("logits");
        foreach (var given in new[] { ids, one })
        {
            var (exit, stdout, stderr) = CliRunner.Run("logits", "--model", Folder("llava"), "--image", npz, "--tokens", string.Join(",", given), "--json");
            Assert.True(exit == 0, stderr);
            var j = JsonDocument.Parse(stdout).RootElement;
            Assert.Equal("llava", j.GetProperty("family").GetString());
            Assert.Equal(ids, j.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()));
            var rows = j.GetProperty("logits");
            int vocab = want.Length / ids.Length;
            double worst = 0;
            for (int i = 0; i < ids.Length; i++)
                for (int v = 0; v < vocab; v++) worst = Math.Max(worst, Math.Abs(rows[i][v].GetSingle() - want[i * vocab + v]));
            Assert.True(worst <= 1e-4, $"max |logit - transformers| = {worst}");
        }
    }

    [Fact]
    public void Logits_image_file_on_llava_gives_a_finite_row_per_position()
    {
        var ids = LlavaPrompt();
        var (exit, stdout, stderr) = CliRunner.Run("logits", "--model", Folder("llava"), "--image", Bundled.Path("data/images/chelsea.png"),
            "--tokens", string.Join(",", ids), "--json");
        Assert.True(exit == 0, stderr);
        var j = JsonDocument.Parse(stdout).RootElement;
        Assert.Contains("resized", j.GetProperty("image").GetString());
        var rows = j.GetProperty("logits");
        Assert.Equal(ids.Length, rows.GetArrayLength());
        foreach (var row in rows.EnumerateArray())
        {
            Assert.Equal(256, row.GetArrayLength());
            Assert.All(row.EnumerateArray(), v => Assert.True(float.IsFinite(v.GetSingle())));
        }
    }

    [Theory]
    [InlineData("qwen2", "1,2,3", "--image", "text-only")]
    [InlineData("llava", "1,255,255,3", "--tokens", "image tokens")]
    public void Bad_image_use_exits_2_with_one_line_naming_the_option(string family, string tokens, string option, string says)
    {
        var (exit, stdout, stderr) = CliRunner.Run("logits", "--model", Folder(family), "--image", Path.Combine(Folder("llava"), "golden.npz"), "--tokens", tokens);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(option, line);
        Assert.Contains(says, line);
    }
}
