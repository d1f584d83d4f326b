using System.CommandLine;
using System.Diagnostics;
using Workbench.Engine.Models;

namespace Workbench.Cli.Commands;

/// <summary>
/// <c>bench make-model --shape mistral-7b|tiny [--layers N] --type bf16|q8_0 [--seed S] --out PATH [--json]</c>: writes a
/// seeded random-weight checkpoint of a decoder shape, streaming (never a whole tensor in memory): bf16, a Hugging Face
/// MistralForCausalLM folder (sharded safetensors + index); q8_0, a llama.cpp GGUF. The files for measuring a 7B-shaped
/// analysis on this machine (README, "7B-shaped analysis").
/// </summary>
public static class BenchMakeModelCommand
{
    public static Command Create()
    {
        var shape = new Option<string>("--shape") { Description = $"decoder shape: {string.Join(", ", DecoderShape.Named.Select(s => s.Name))}", DefaultValueFactory = _ => "mistral-7b" };
        var layers = new Option<int?>("--layers") { Description = "change the shape's layer count (e.g. a 2-layer 7B-wide file)" };
        var type = new Option<string>("--type") { Description = "bf16 (Hugging Face safetensors folder) or q8_0 (GGUF file)", Required = true };
        var seed = new Option<int>("--seed") { Description = "seed of the weights", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "the folder (bf16) or .gguf file (q8_0) to write", Required = true };
        var json = CliHelpers.JsonOption();
        var cmd = new Command("make-model", "write a seeded random-weight decoder checkpoint (Mistral-7B shape by default), streaming")
        {
            shape, layers, type, seed, output, json,
        };
        cmd.SetAction(r => CliHelpers.Run(() =>
        {
            var s = DecoderShape.Parse(r.GetValue(shape), r.GetValue(layers));
            var sw = Stopwatch.StartNew();
            var written = RandomCheckpoint.Write(s, r.GetValue(type)!, r.GetValue(seed), r.GetValue(output)!);
            double seconds = sw.Elapsed.TotalSeconds;
            if (r.GetValue(json))
                CliHelpers.PrintJson(CliHelpers.Obj(
                    ("path", written.Path), ("type", written.Type), ("shape", s.Name), ("layers", s.Layers), ("hidden", s.Hidden), ("heads", s.Heads),
                    ("kv_heads", s.KvHeads), ("ffn", s.Ffn), ("vocab", s.Vocab), ("seed", written.Seed), ("parameters", written.Parameters),
                    ("bytes", written.Bytes), ("files", written.Files), ("seconds", seconds), ("peak_rss_bytes", CliHelpers.PeakResidentBytes())));
            else
                Console.Out.WriteLine($"{written.Path}: {s.Name} ({s.Layers} layers, hidden {s.Hidden}), {written.Type}, seed {written.Seed}: " +
                    $"{written.Parameters:N0} parameters, {written.Bytes:N0} bytes in {written.Files.Count} files, {seconds:F1} s");
            return 0;
        }, r));
        return cmd;
    }
}
