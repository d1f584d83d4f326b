using System.Text.Json;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Models;

/// <summary>
/// The token ids at which a checkpoint's generation ends, as the program that made it reads them:
/// a Hugging Face folder as transformers does (generation_config.json's eos_token_id when that file sets the key, else
/// config.json's; an int or a list of ints, null = none); a GGUF as llama.cpp does (tokenizer.ggml.eos_token_id and
/// tokenizer.ggml.eot_token_id, llama_vocab_is_eog). llama2.c checkpoints have none: run.c stops at BOS instead
/// (<see cref="Decoder"/> keeps that convention when the ids are null).
/// </summary>
public static class EndOfSequence
{
    public static int[] FromFolder(string folder)
    {
        var gen = Path.Combine(folder, "generation_config.json");
        if (File.Exists(gen) && Read(gen, "eos_token_id") is { } g) return g;
        var cfg = Path.Combine(folder, "config.json");
        return File.Exists(cfg) ? Read(cfg, "eos_token_id") ?? [] : [];
    }

    public static int[] FromGguf(string path)
    {
        using var g = GgufFile.Open(path);
        var ids = new List<int>();
        foreach (var key in new[] { "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id" })
            if (g.Metadata.ContainsKey(key))
            {
                long v = g.GetInt64(key);
                if (v is < 0 or > int.MaxValue) throw new ModelFormatException(path, key, 0, $"{v} is not a token id");
                if (!ids.Contains((int)v)) ids.Add((int)v);
            }
        return [.. ids];
    }

    /// <summary>The key's ids; null when the key is absent (then the next source decides), [] when it is null.</summary>
    private static int[]? Read(string path, string key)
    {
        var root = JsonFiles.Parse(path, File.ReadAllBytes(path), "json").RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty(key, out var v)) return null;
        if (v.ValueKind == JsonValueKind.Null) return [];
        if (JsonFiles.TryInt32(v, out int one)) return one >= 0 ? [one] : throw Bad(path, key, v);
        if (v.ValueKind != JsonValueKind.Array) throw Bad(path, key, v);
        return v.EnumerateArray().Select(e => JsonFiles.TryInt32(e, out int i) && i >= 0 ? i : throw Bad(path, key, e)).ToArray();
    }

    private static ModelFormatException Bad(string path, string key, JsonElement v) =>
        new(path, key, 0, $"{v.GetRawText()} is not a token id or a list of token ids");
}
