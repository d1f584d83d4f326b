using Microsoft.DotNet.Interactive.Events;
using Workbench.Engine.Models;

namespace Workbench.Interactive.Tests;

[Collection("formatters")]
public class ModelDirectiveTests
{
    [Fact]
    public async Task A_bundled_model_shows_its_card_and_is_shared_as_a_variable()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!model --name stories260K");
        r.AssertSucceeded();
        var html = r.Html();
        var card = ModelHub.Load("stories260K").Card;
        Assert.Contains("stories260K", html);
        Assert.Contains($">{card.Parameters}<", html);
        Assert.Contains(">tensor</th>", html);
        Assert.Contains(card.Tensors[0].Name, html);
        // stories260K: dim 64, 5 layers, vocab 512: about 260K parameters.
        Assert.InRange(card.Parameters, 200_000, 300_000);

        var read = await k.SubmitAsync("model.Card.Parameters");
        read.AssertSucceeded();
        Assert.Contains(read.Events.OfType<ReturnValueProduced>(), e => Equals(e.Value, card.Parameters));
        Assert.IsAssignableFrom<LoadedModel>(Last.Of<LoadedModel>("#!model"));
    }

    [Fact]
    public async Task A_missing_file_and_a_corrupt_file_give_clear_errors_and_the_kernel_stays_alive()
    {
        using var k = new TestKernel();
        var missing = await k.SubmitAsync("#!model --name /nonexistent/model.gguf");
        Assert.Contains("neither a bundled model", missing.Failure()!.Message);
        Assert.Contains("workbench-error", missing.Html());

        var corrupt = Path.Combine(Path.GetTempPath(), $"wb-corrupt-{Guid.NewGuid():N}.gguf");
        var magic = "GGUF"u8.ToArray();
        File.WriteAllBytes(corrupt, [.. magic, 3, 0, 0, 0, 1, 2]); // header cut after the version
        var bad = await k.SubmitAsync($"#!model --name \"{corrupt}\"");
        var failure = bad.Failure();
        Assert.NotNull(failure);
        Assert.Contains(corrupt, failure!.Message);
        Assert.Null(failure.Exception);

        (await k.SubmitAsync("#!model --name stories260K --as tiny")).AssertSucceeded();
        (await k.SubmitAsync("tiny.Name")).AssertSucceeded();
    }

    /// <summary>
    /// The hostile-input classes of the fuzz suite reach a notebook too: each gives one line naming the file, and the
    /// kernel keeps working (a stack overflow or an out-of-memory would take the test host down with it).
    /// </summary>
    [Fact]
    public async Task Hostile_model_files_give_one_line_and_the_kernel_stays_alive()
    {
        using var k = new TestKernel();
        var dir = Directory.CreateTempSubdirectory("wb-hostile-").FullName;
        try
        {
            // A GGUF whose one metadata value is an array of arrays nested 20,000 deep.
            var gguf = Path.Combine(dir, "deep.gguf");
            using (var w = new BinaryWriter(File.Create(gguf)))
            {
                w.Write("GGUF"u8); w.Write(3u); w.Write(0UL); w.Write(1UL);
                w.Write(4UL); w.Write("deep"u8); w.Write(9u);   // key, type ARRAY
                for (int i = 0; i < 20_000; i++) { w.Write(9u); w.Write(1UL); }  // element type ARRAY, one element
                w.Write(0u); w.Write(0UL);                      // innermost: an empty uint8 array
            }
            // A Hugging Face folder whose config.json claims 2,147,483,647 layers.
            var hf = Path.Combine(dir, "hf");
            Directory.CreateDirectory(hf);
            var arch = Path.Combine(Workbench.Engine.Bundled.Root, "data", "goldens", "arch", "llama_untied");
            File.Copy(Path.Combine(arch, "model.safetensors"), Path.Combine(hf, "model.safetensors"));
            var cfg = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(arch, "config.json")))!;
            cfg["num_hidden_layers"] = int.MaxValue;
            File.WriteAllText(Path.Combine(hf, "config.json"), cfg.ToJsonString());
            // A config.json that is not UTF-8 at all.
            var utf = Path.Combine(dir, "utf");
            Directory.CreateDirectory(utf);
            File.Copy(Path.Combine(arch, "model.safetensors"), Path.Combine(utf, "model.safetensors"));
            File.WriteAllBytes(Path.Combine(utf, "config.json"), [(byte)'{', (byte)'"', 0xFF, 0xFE, (byte)'"', (byte)':', (byte)'1', (byte)'}']);

            foreach (var (path, named) in new[] { (gguf, gguf), (hf, Path.Combine(hf, "model.safetensors")), (utf, Path.Combine(utf, "config.json")) })
            {
                var r = await k.SubmitAsync($"#!model --name \"{path}\"");
                var failure = r.Failure();
                Assert.NotNull(failure);
                Assert.DoesNotContain('\n', failure!.Message.TrimEnd());
                Assert.Contains(named, failure.Message);
                Assert.Contains("workbench-error", r.Html());
            }
            (await k.SubmitAsync("#!model --name stories260K --as tiny")).AssertSucceeded();
            (await k.SubmitAsync("tiny.Name")).AssertSucceeded();
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task A_bad_variable_name_is_refused()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!model --name stories260K --as 3x");
        Assert.Contains("--as '3x' is not a C# identifier", r.Failure()!.Message);
    }
}
