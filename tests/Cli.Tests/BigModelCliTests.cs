using System.Text.Json;

namespace Workbench.Cli.Tests;

/// <summary>
/// `bench make-model` -> `inspect` -> `redundancy` on small files (the 7B measurement's commands, on the tiny shape and a
/// 2-layer one): the writer's JSON, inspect's tensor groups and resident figures (as stored and with --weights fp32,
/// against the bytes of the tensors themselves), and redundancy's random-token calibration and peak_rss_bytes.
/// </summary>
public sealed class BigModelCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wb-bigcli-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("bf16", "mistral", "BF16")]
    [InlineData("q8_0", "llama", "Q8_0")]
    public void Make_model_then_inspect_then_redundancy(string type, string family, string stored)
    {
        string path = Path.Combine(_dir, type == "bf16" ? "hf" : "m.gguf");
        var (exit, stdout, stderr) = CliRunner.Run("bench", "make-model", "--shape", "tiny", "--layers", "3", "--type", type, "--seed", "4", "--out", path, "--json");
        Assert.True(exit == 0, stderr);
        var w = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(3, w.GetProperty("layers").GetInt32());
        Assert.True(w.GetProperty("peak_rss_bytes").GetInt64() > 0);

        (exit, stdout, stderr) = CliRunner.Run("inspect", "--model", path, "--json");
        Assert.True(exit == 0, stderr);
        var j = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(family, j.GetProperty("family").GetString());
        Assert.Equal(3, j.GetProperty("layers").GetInt32());
        var tensors = j.GetProperty("tensors").EnumerateArray().ToList();
        var groups = j.GetProperty("groups").EnumerateArray().ToList();
        Assert.Equal(tensors.Count, groups.Sum(g => g.GetProperty("count").GetInt32()));
        Assert.Equal(tensors.Sum(t => t.GetProperty("bytes").GetInt64()), groups.Sum(g => g.GetProperty("bytes").GetInt64()));
        // a layer group holds one tensor per layer, of the stored type
        var down = Assert.Single(groups, g => g.GetProperty("name").GetString()!.Contains("down") && g.GetProperty("name").GetString()!.Contains('*'));
        Assert.Equal(3, down.GetProperty("count").GetInt32());
        Assert.Equal(stored, down.GetProperty("type").GetString());
        // resident: the matrices at their stored bytes (norms as fp32 copies); with --weights fp32 every value at 4 bytes
        long elements = tensors.Sum(t => t.GetProperty("shape").EnumerateArray().Aggregate(1L, (a, d) => a * d.GetInt64()));
        long vectors = tensors.Where(t => t.GetProperty("shape").GetArrayLength() == 1).Sum(t => t.GetProperty("shape")[0].GetInt64());
        long matrixBytes = tensors.Where(t => t.GetProperty("shape").GetArrayLength() == 2).Sum(t => t.GetProperty("bytes").GetInt64());
        Assert.Equal(matrixBytes + 4 * vectors, j.GetProperty("resident_stored_bytes").GetInt64());
        Assert.Equal(4 * elements, j.GetProperty("resident_fp32_bytes").GetInt64());
        Assert.Equal(j.GetProperty("resident_stored_bytes").GetInt64(), j.GetProperty("resident_bytes").GetInt64());
        (exit, stdout, _) = CliRunner.Run("inspect", "--model", path, "--weights", "fp32", "--json");
        Assert.Equal(4 * elements, JsonDocument.Parse(stdout).RootElement.GetProperty("resident_bytes").GetInt64());

        (exit, stdout, stderr) = CliRunner.Run("redundancy", "--model", path, "--granularity", "block", "--samples", "2", "--seq", "16", "--seed", "3", "--json");
        Assert.True(exit == 0, stderr);
        var r = JsonDocument.Parse(stdout).RootElement;
        var cal = r.GetProperty("calibration");
        Assert.Equal("random_token_ids", cal.GetProperty("source").GetString());
        Assert.Equal(3, cal.GetProperty("seed").GetInt32());
        Assert.Equal(32, cal.GetProperty("tokens").GetInt64());
        Assert.Equal(3, r.GetProperty("modules").GetArrayLength());
        Assert.True(r.GetProperty("peak_rss_bytes").GetInt64() > 0);
        Assert.True(r.GetProperty("seconds").GetDouble() > 0);

        (exit, _, stderr) = CliRunner.Run("redundancy", "--model", path, "--granularity", "block", "--corpus", "persuasion");
        Assert.Equal(2, exit);
        Assert.Contains("--corpus", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Fact]
    public void Make_model_refuses_unknown_shapes_and_types_naming_the_option()
    {
        var (exit, _, stderr) = CliRunner.Run("bench", "make-model", "--shape", "gpt-5", "--type", "bf16", "--out", Path.Combine(_dir, "x"));
        Assert.Equal(2, exit);
        Assert.Contains("--shape", stderr);
        Assert.Contains("mistral-7b", stderr);
        (exit, _, stderr) = CliRunner.Run("bench", "make-model", "--shape", "tiny", "--type", "q4_k", "--out", Path.Combine(_dir, "x"));
        Assert.Equal(2, exit);
        Assert.Contains("--type", stderr);
        Assert.Contains("q8_0", stderr);
    }
}
