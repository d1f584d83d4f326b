using System.Text.Json;

namespace Workbench.Cli.Tests;

/// <summary>`workbench inspect --json` on a GGUF quantized by llama-quantize: every tensor's stored type and bytes as llama.cpp lists them.</summary>
public class InspectCliTests
{
    private static string Golden(string file) => RepoFiles.Data("goldens", "gguf-quants", file);

    [Fact]
    public void Inspect_json_names_the_stored_types_and_bytes()
    {
        string path = Golden("stories260K-q4_k_m.gguf");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Golden("stories260K-q4_k_m.tensors.json")));
        var want = doc.RootElement.GetProperty("tensors").EnumerateArray()
            .Select(r => (r.GetProperty("name").GetString(), r.GetProperty("type").GetString(), r.GetProperty("nbytes").GetInt64())).ToList();
        var (exit, stdout, stderr) = CliRunner.Run("inspect", "--model", path, "--json");
        Assert.True(exit == 0, stderr);
        var tensors = JsonDocument.Parse(stdout).RootElement.GetProperty("tensors").EnumerateArray()
            .Select(t => (t.GetProperty("name").GetString(), t.GetProperty("dtype").GetString(), t.GetProperty("bytes").GetInt64())).ToList();
        Assert.Equal(want, tensors);
    }

    [Fact]
    public void Inspect_json_names_the_family_and_sizes_of_a_hugging_face_folder()
    {
        string folder = RepoFiles.Data("goldens", "arch", "qwen2");
        using var cfg = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "config.json")));
        var c = cfg.RootElement;
        var (exit, stdout, stderr) = CliRunner.Run("inspect", "--model", folder, "--json");
        Assert.True(exit == 0, stderr);
        var j = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(c.GetProperty("model_type").GetString(), j.GetProperty("family").GetString());
        Assert.Equal(c.GetProperty("num_hidden_layers").GetInt32(), j.GetProperty("layers").GetInt32());
        Assert.Equal(c.GetProperty("hidden_size").GetInt32(), j.GetProperty("hidden").GetInt32());
        Assert.Equal(c.GetProperty("vocab_size").GetInt32(), j.GetProperty("vocab").GetInt32());
        long sum = 0;
        foreach (var t in j.GetProperty("tensors").EnumerateArray())
        {
            Assert.Equal("F32", t.GetProperty("type").GetString());   // the goldens are float32 throughout
            long elements = t.GetProperty("shape").EnumerateArray().Aggregate(1L, (a, d) => a * d.GetInt64());
            Assert.Equal(4 * elements, t.GetProperty("bytes").GetInt64());
            sum += 4 * elements;
        }
        // Resident fp32 copies: every tensor once (the head is untied here, so nothing is shared).
        Assert.Equal(sum, j.GetProperty("resident_bytes").GetInt64());
    }

    [Fact]
    public void Inspect_names_the_bitnet_family_of_a_bitnet_cpp_gguf()
    {
        var dir = Directory.CreateTempSubdirectory("wb-inspect-bitnet-").FullName;
        try
        {
            var path = Workbench.Engine.Tests.Models.HfToGguf.ConvertBitNet(RepoFiles.Data("goldens", "arch", "bitnet_packed"), Path.Combine(dir, "b.gguf"));
            var (exit, stdout, stderr) = CliRunner.Run("inspect", "--model", path, "--json");
            Assert.True(exit == 0, stderr);
            var j = JsonDocument.Parse(stdout).RootElement;
            Assert.Equal("bitnet", j.GetProperty("family").GetString());
            var t = j.GetProperty("tensors").EnumerateArray().Single(e => e.GetProperty("name").GetString() == "blk.0.ffn_down.weight");
            Assert.Equal("I2_S", t.GetProperty("dtype").GetString());
            // the fork's ggml_nbytes: n / 4 codes + 32 bytes for the scale
            Assert.Equal(64 * 128 / 4 + 32, t.GetProperty("bytes").GetInt64());
            (exit, _, stderr) = CliRunner.Run("inspect", "--model",
                Workbench.Engine.Tests.Models.HfToGguf.ConvertBitNet(RepoFiles.Data("goldens", "arch", "bitnet_packed"), Path.Combine(dir, "silu.gguf"), "bitnet"));
            Assert.Equal(2, exit);
            Assert.Contains("bitnet.hidden_activation", stderr);
        }
        finally { Directory.Delete(dir, true); }
    }
}
