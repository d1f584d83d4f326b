using System.Text.Json;
using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;

namespace Workbench.Cli.Tests;

/// <summary>
/// `redundancy`, `drop` and `bitnet` on the image models (the bundled CIFAR-10 ViT, transformers' ViT and LLaVA
/// goldens), run as the real tool: exit 0 with the JSON fields scripts read, exit 2 and one line for an option that
/// does not apply.
/// </summary>
public class ImageAnalysisCliTests
{
    private static string Golden(string family) => Path.Combine(RepoFiles.Root, "data", "goldens", "arch", family);
    private static string Photos => Path.Combine(RepoFiles.Root, "data", "images");

    [Fact]
    public void Redundancy_on_the_vit_golden_lists_the_engine_scores_and_the_images()
    {
        var (exit, stdout, stderr) = CliRunner.Run("redundancy", "--model", Golden("vit"), "--granularity", "block", "--images", Photos, "--seed", "1", "--json");
        Assert.True(exit == 0, stderr);
        var doc = JsonDocument.Parse(stdout).RootElement;
        var task = (ImageTask)ModelTask.Of(ModelHub.Load(Golden("vit")));
        var want = Importance.Measure(task.Model, ImageInputs.Prepare(task, seed: 1, images: Photos).Calibration.Inputs);
        Assert.Equal(want.Block, doc.GetProperty("modules").EnumerateArray().Select(m => m.GetProperty("importance").GetDouble()));
        var cal = doc.GetProperty("calibration");
        Assert.Equal("images", cal.GetProperty("source").GetString());
        Assert.Equal(2, cal.GetProperty("count").GetInt32());
        Assert.Equal(2 * 197, cal.GetProperty("tokens").GetInt64());
        Assert.False(cal.GetProperty("labelled").GetBoolean());
        Assert.Contains("224x224", cal.GetProperty("preprocessing").GetString());
    }

    [Fact]
    public void Drop_on_vit_cifar10_reports_kl_agreement_and_accuracy()
    {
        var (exit, stdout, stderr) = CliRunner.Run("drop", "--model", "vit-cifar10", "--granularity", "mlp", "--count", "1", "--no-speed", "--samples", "4", "--json");
        Assert.True(exit == 0, stderr);
        var doc = JsonDocument.Parse(stdout).RootElement;
        var q = doc.GetProperty("quality");
        Assert.True(q.GetProperty("kl").GetDouble() > 0);
        Assert.InRange(q.GetProperty("top1_agreement").GetDouble(), 0, 1);
        Assert.InRange(q.GetProperty("accuracy").GetDouble(), 0, 1);
        Assert.InRange(q.GetProperty("accuracy_full").GetDouble(), 0.3, 1); // a trained model, well above chance (0.1)
        Assert.Equal(100, doc.GetProperty("evaluation").GetProperty("count").GetInt32());
        Assert.Single(doc.GetProperty("drop_mlp_list").EnumerateArray());
    }

    [Fact]
    public void Bitnet_on_llava_reports_next_token_quality_at_the_text_positions()
    {
        var (exit, stdout, stderr) = CliRunner.Run("bitnet", "--model", Golden("llava"), "--format", "i2s", "--images", Photos, "--json");
        Assert.True(exit == 0, stderr);
        var doc = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("vision-language", doc.GetProperty("kind").GetString());
        Assert.True(doc.GetProperty("lossless").GetBoolean());
        var q = doc.GetProperty("quality");
        Assert.Equal(4, q.GetProperty("prompts").GetInt32());
        Assert.Equal(4 * 12, q.GetProperty("positions").GetInt32());
        Assert.True(double.IsFinite(q.GetProperty("kl").GetDouble()));
    }

    [Theory]
    [InlineData("--seq", "redundancy", "--model", "vit-cifar10", "--granularity", "block", "--seq", "16")]
    [InlineData("--corpus", "drop", "--model", "vit-cifar10", "--granularity", "block", "--count", "1", "--corpus", "persuasion")]
    [InlineData("--images", "redundancy", "--model", "stories260K", "--granularity", "block", "--images", "data/images")]
    [InlineData("--images", "bitnet", "--model", "stories260K", "--format", "i2s", "--images", "data/images")]
    [InlineData("--images", "redundancy", "--model", "vit-cifar10", "--granularity", "block", "--images", "/no/such/folder")]
    public void An_option_that_does_not_apply_is_exit_2_and_one_line_naming_it(string option, params string[] args)
    {
        var (exit, stdout, stderr) = CliRunner.Run(args);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains(option, line);
    }
}
