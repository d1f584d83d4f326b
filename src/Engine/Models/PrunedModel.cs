using System.Text.Json;
using System.Text.Json.Nodes;
using Workbench.Engine.Formats;
namespace Workbench.Engine.Models;

/// <summary>
/// A pruned Llama model on disk, in the layout LLM-Drop uses: a Hugging Face folder (config.json + model.safetensors,
/// LlamaForCausalLM tensor names, q/k rows in Hugging Face's rotate-half order) whose config.json carries
/// <c>drop_attn_list</c> and <c>drop_mlp_list</c> (one boolean per layer, as LLM-Drop's config class saves them).
/// The weights of dropped modules (their norm and projections) are not written.
/// </summary>
public static class PrunedModel
{
    public const string ConfigFile = "config.json";
    public const string WeightsFile = "model.safetensors";

    public static void Save(string folder, LlamaModel model, ModuleSkips skips)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(skips);
        var c = model.Config;
        skips.Check(c, nameof(skips));
        var lists = new Dictionary<string, object>
        {
            ["drop_attn_list"] = Enumerable.Range(0, c.Layers).Select(skips.SkipsAttention).ToArray(),
            ["drop_mlp_list"] = Enumerable.Range(0, c.Layers).Select(skips.SkipsMlp).ToArray(),
        };
        HuggingFaceExport.WriteLlama(model, folder, extraConfig: lists, omitAttention: skips.Attention, omitMlp: skips.Mlp);
    }

    /// <summary>
    /// Loads a folder written by <see cref="Save"/> (or by LLM-Drop: the drop lists may be booleans per layer or layer
    /// indices). Dropped modules get zero weights (one shared zero array per shape), so the model gives the pruned
    /// outputs even if run without the returned skips; run it with them to save the compute and the KV cache.
    /// </summary>
    public static (LlamaModel Model, ModuleSkips Skips) Load(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string cfgPath = Path.Combine(folder, ConfigFile);
        if (!File.Exists(cfgPath)) throw new ArgumentException($"'{folder}' has no {ConfigFile}", nameof(folder));
        var c = LlamaLoader.ReadHfConfig(cfgPath, out _);
        JsonNode root;
        try { root = JsonNode.Parse(File.ReadAllText(cfgPath))!; }
        catch (JsonException e) { throw new ModelFormatException(cfgPath, "json", 0, e.Message, e); }
        var skips = new ModuleSkips(DropList(root, "drop_attn_list", c.Layers, cfgPath), DropList(root, "drop_mlp_list", c.Layers, cfgPath));
        var name = Path.GetFileName(Path.GetFullPath(folder).TrimEnd('/'));
        return (LlamaLoader.FromHuggingFace(folder, name, absent: skips), skips);
    }

    /// <summary>Reads an LLM-Drop list: booleans per layer, or layer indices; absent means nothing dropped.</summary>
    private static SortedSet<int> DropList(JsonNode root, string key, int layers, string path)
    {
        var set = new SortedSet<int>();
        if (root[key] is not JsonArray arr) return set;
        for (int i = 0; i < arr.Count; i++)
        {
            var v = arr[i]?.GetValue<JsonElement>() ?? default;
            switch (v.ValueKind)
            {
                case JsonValueKind.True: set.Add(i); break;
                case JsonValueKind.False: break;
                case JsonValueKind.Number when v.TryGetInt32(out int l) && (uint)l < (uint)layers: set.Add(l); break;
                default: throw new ModelFormatException(path, $"{key}[{i}]", 0, $"'{v}' is neither a boolean nor a layer index in 0..{layers - 1}");
            }
        }
        if (arr.Count > 0 && arr.All(x => x?.GetValueKind() is JsonValueKind.True or JsonValueKind.False) && arr.Count != layers)
            throw new ModelFormatException(path, key, 0, $"{arr.Count} booleans for {layers} layers");
        return set;
    }
}
