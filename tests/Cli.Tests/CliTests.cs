using System.Text.Json;

namespace Workbench.Cli.Tests;

public sealed class CliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wb-cli-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Embed_json_gives_vectors_and_the_reference_cosine()
    {
        var (exit, stdout, stderr) = CliRunner.Run("embed", "--model", "minilm", "A man is eating food.", "A man is eating a piece of bread.", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var emb = doc.RootElement.GetProperty("embeddings");
        Assert.Equal(2, emb.GetArrayLength());
        Assert.Equal(384, emb[0].GetArrayLength());
        var cos = doc.RootElement.GetProperty("cosine");
        Assert.Equal(1.0, cos[0][0].GetDouble(), 1e-5);
        Assert.Equal(0.755, cos[0][1].GetDouble(), 0.001);
        Assert.Equal(cos[0][1].GetDouble(), cos[1][0].GetDouble(), 1e-6);
    }

    [Fact]
    public void Bench_gemv_json_reports_a_timing_consistent_with_its_shape_and_the_memory_floor()
    {
        var (exit, stdout, stderr) = CliRunner.Run("bench", "gemv", "--format", "i2s", "--rows", "256", "--cols", "512", "--threads", "1", "--runs", "5", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var r = doc.RootElement;
        double median = r.GetProperty("median_us").GetDouble(), bytes = r.GetProperty("weight_bytes").GetInt64();
        Assert.True(median > 0 && r.GetProperty("min_us").GetDouble() <= median);
        Assert.Equal(2.0 * 256 * 512 / median / 1e3, r.GetProperty("gops").GetDouble(), 6);
        Assert.Equal(256 * 512 / 4 + 4, bytes); // 2 bits per weight (512 columns need no padding) + one fp32 scale
        Assert.Equal(bytes / median / 1e3, r.GetProperty("weight_gbps").GetDouble(), 6);
        double bandwidth = r.GetProperty("bandwidth_gbps").GetDouble(), floor = r.GetProperty("floor_us").GetDouble();
        Assert.True(bandwidth > 0.1 && bandwidth < 10_000, $"bandwidth {bandwidth} GB/s");
        Assert.Equal(bytes / bandwidth / 1e3, floor, 6);
        Assert.Equal(median / floor, r.GetProperty("x_floor").GetDouble(), 6);
    }

    [Theory]
    [InlineData("256", "V256")]
    [InlineData("128", "V128")]
    public void Precompiled_build_output_takes_the_path_a_narrower_preferred_vector_width_leaves(string width, string want)
    {
        // ReadyToRun code bakes Vector512.IsHardwareAccelerated in as the build machine saw it; Isa asks in jitted code
        if (!System.Runtime.Intrinsics.X86.Avx512BW.IsSupported) return; // the case exists only where V512 would be the default
        var (exit, stdout, stderr) = CliRunner.RunBuildOutput(new Dictionary<string, string> { ["DOTNET_PreferredVectorBitWidth"] = width },
            "bench", "gemv", "--format", "i2s", "--rows", "64", "--cols", "256", "--runs", "2", "--bandwidth", "20", "--json");
        Assert.True(exit == 0, stderr);
        Assert.Equal(want, JsonDocument.Parse(stdout).RootElement.GetProperty("isa").GetString());
    }

    [Theory]
    [InlineData("q4_k", 144)]
    [InlineData("q6_k", 210)]
    public void Bench_gemv_times_the_k_quant_kernels_from_their_super_blocks(string format, int blockBytes)
    {
        var (exit, stdout, stderr) = CliRunner.Run("bench", "gemv", "--format", format, "--rows", "64", "--cols", "512", "--runs", "3", "--bandwidth", "20", "--json");
        Assert.True(exit == 0, stderr);
        var r = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(format, r.GetProperty("format").GetString());
        Assert.Equal(64L * 512 / 256 * blockBytes, r.GetProperty("weight_bytes").GetInt64());
        Assert.True(r.GetProperty("median_us").GetDouble() > 0);
        // rows are whole super-blocks of 256: anything else is one line naming the option, exit 2
        var (bad, _, badErr) = CliRunner.Run("bench", "gemv", "--format", format, "--rows", "64", "--cols", "96");
        Assert.Equal(2, bad);
        Assert.Contains("--cols 96: " + format + " stores rows in blocks of 256 weights", badErr);
    }

    [Fact]
    public void Bench_decode_json_reports_the_tokens_generate_makes_and_a_rate()
    {
        var (exit, stdout, stderr) = CliRunner.Run("bench", "decode", "--model", "stories260K", "--prompt", "Once upon a time", "--steps", "40", "--runs", "3", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var r = doc.RootElement;
        var (gExit, gOut, gErr) = CliRunner.Run("generate", "--model", "stories260K", "--prompt", "Once upon a time", "--steps", "40", "--json");
        Assert.True(gExit == 0, gErr);
        using var gen = JsonDocument.Parse(gOut);
        Assert.Equal(gen.RootElement.GetProperty("tokens").GetArrayLength(), r.GetProperty("tokens").GetInt32());
        Assert.Equal(3, r.GetProperty("runs").GetInt32());
        Assert.True(r.GetProperty("decode_tokens_per_s").GetDouble() > 0);
        Assert.True(r.GetProperty("first_run_decode_tokens_per_s").GetDouble() > 0);

        var (bad, badOut, badErr) = CliRunner.Run("bench", "decode", "--model", "stories260K", "--runs", "0");
        Assert.Equal(2, bad);
        Assert.Equal("", badOut);
        Assert.Single(badErr.Trim().Split('\n'));
        Assert.Contains("--runs", badErr);
    }

    [Theory]
    [InlineData("stories260K", "Llama", 264_128L)]
    [InlineData("minilm", "Bert", 22_713_216L)]
    public void Inspect_json_describes_the_model(string model, string family, long minParams)
    {
        var (exit, stdout, stderr) = CliRunner.Run("inspect", "--model", model, "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var r = doc.RootElement;
        Assert.Equal(family, r.GetProperty("architecture").GetProperty("family").GetString());
        Assert.True(r.GetProperty("parameters").GetInt64() >= minParams * 99 / 100, $"parameters {r.GetProperty("parameters").GetInt64()}");
        Assert.True(r.GetProperty("tensors").GetArrayLength() > 10);
        foreach (var t in r.GetProperty("tensors").EnumerateArray())
            Assert.True(t.GetProperty("bytes").GetInt64() > 0);
    }

    [Fact]
    public void A_path_is_recognised_by_content_not_extension()
    {
        var copy = Path.Combine(_dir, "weights.dat");
        File.Copy(Bundled.Path("models/stories260K/stories260K.gguf"), copy);
        var (exit, stdout, stderr) = CliRunner.Run("inspect", "--model", copy, "--json");
        Assert.True(exit == 0, stderr);
        Assert.Equal("GGUF", JsonDocument.Parse(stdout).RootElement.GetProperty("format").GetString());
    }

    [Fact]
    public void A_truncated_model_is_one_clear_line_naming_file_field_and_offset()
    {
        var bin = Path.Combine(_dir, "model.bin");
        var bytes = File.ReadAllBytes(Bundled.Path("models/stories260K/stories260K.bin"));
        File.WriteAllBytes(bin, bytes[..(bytes.Length / 2)]);
        File.Copy(Bundled.Path("models/stories260K/tok512.bin"), Path.Combine(_dir, "tokenizer.bin"));
        var gguf = Path.Combine(_dir, "model.gguf");
        var g = File.ReadAllBytes(Bundled.Path("models/stories260K/stories260K.gguf"));
        File.WriteAllBytes(gguf, g[..5000]);
        foreach (var path in new[] { gguf })
        {
            var (exit, stdout, stderr) = CliRunner.Run("generate", "--model", path, "--prompt", "Hi", "--steps", "8", "--temperature", "0");
            Assert.Equal(2, exit);
            Assert.Equal("", stdout);
            var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains(path, line);
            Assert.Contains("offset", line);
            Assert.Contains("field", line);
        }
        // A llama2.c .bin cut in half no longer matches any layout: it is not recognised at all.
        var (e2, _, err2) = CliRunner.Run("inspect", "--model", bin);
        Assert.Equal(2, e2);
        Assert.Contains(bin, err2);
    }

    [Fact]
    public void A_tokenizer_that_does_not_fit_the_model_is_refused()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_dir, "mixed")).FullName;
        File.Copy(Bundled.Path("models/stories260K/stories260K.bin"), Path.Combine(dir, "model.bin"));
        var (exit, _, stderr) = CliRunner.Run("generate", "--model", Path.Combine(dir, "model.bin"), "--tokenizer",
            Bundled.Path("models/babyllama-105/tok105.model"), "--prompt", "Hi", "--steps", "8");
        Assert.Equal(2, exit);
        Assert.Contains("tok105.model", stderr);
        Assert.Contains("512", stderr);
    }

    [Theory]
    [InlineData("generate", "--model", "no-such-model", "--prompt", "x")]
    [InlineData("generate", "--model", "stories260K", "--steps", "0")]
    [InlineData("generate", "--model", "stories260K", "--temperature", "-1")]
    [InlineData("embed", "--model", "stories260K", "hello")]
    public void Bad_options_exit_non_zero_with_a_message(params string[] args)
    {
        var (exit, _, stderr) = CliRunner.Run(args);
        Assert.NotEqual(0, exit);
        Assert.False(string.IsNullOrWhiteSpace(stderr));
        Assert.DoesNotContain("   at ", stderr); // no stack trace
    }
}
