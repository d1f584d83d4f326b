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
}
