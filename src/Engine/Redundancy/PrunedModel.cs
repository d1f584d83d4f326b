using System.Text.Json;
using System.Text.Json.Nodes;
using Workbench.Engine.Formats;
using Workbench.Engine.Models;

namespace Workbench.Engine.Redundancy;

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
        Modules.CheckSkips(c, skips, nameof(skips));
        Directory.CreateDirectory(folder);
        int d = c.Dim, kv = c.KvDim, h = c.MlpDim;
        var w = model.Weights;
        var tensors = new List<(string, int[], float[])>
        {
            ("model.embed_tokens.weight", [c.Vocab, d], w.TokenEmbedding),
            ("model.norm.weight", [d], w.FinalNorm),
        };
        if (!w.SharedOutput) tensors.Add(("lm_head.weight", [c.Vocab, d], w.Output));
        for (int i = 0; i < c.Layers; i++)
        {
            var l = w.Layers[i];
            string p = $"model.layers.{i}.";
            if (!skips.SkipsAttention(i))
            {
                tensors.Add((p + "input_layernorm.weight", [d], l.AttnNorm));
                tensors.Add((p + "self_attn.q_proj.weight", [d, d], LlamaLoader.PermuteRotary(l.Wq, c.Heads, d)));
                tensors.Add((p + "self_attn.k_proj.weight", [kv, d], LlamaLoader.PermuteRotary(l.Wk, c.KvHeads, d)));
                tensors.Add((p + "self_attn.v_proj.weight", [kv, d], l.Wv));
                tensors.Add((p + "self_attn.o_proj.weight", [d, d], l.Wo));
            }
            if (!skips.SkipsMlp(i))
            {
                tensors.Add((p + "post_attention_layernorm.weight", [d], l.FfnNorm));
                tensors.Add((p + "mlp.gate_proj.weight", [h, d], l.W1));
                tensors.Add((p + "mlp.down_proj.weight", [d, h], l.W2));
                tensors.Add((p + "mlp.up_proj.weight", [h, d], l.W3));
            }
        }
        SafetensorsWriter.Write(Path.Combine(folder, WeightsFile), tensors, DType.F32, new Dictionary<string, string> { ["format"] = "pt" });

        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["hidden_size"] = d,
            ["intermediate_size"] = h,
            ["num_hidden_layers"] = c.Layers,
            ["num_attention_heads"] = c.Heads,
            ["num_key_value_heads"] = c.KvHeads,
            ["vocab_size"] = c.Vocab,
            ["max_position_embeddings"] = c.MaxSeq,
            ["rms_norm_eps"] = c.NormEps,
            ["rope_theta"] = c.RopeTheta,
            ["hidden_act"] = "silu",
            ["tie_word_embeddings"] = w.SharedOutput,
            ["torch_dtype"] = "float32",
            ["drop_attn_list"] = new JsonArray(Enumerable.Range(0, c.Layers).Select(i => (JsonNode)skips.SkipsAttention(i)).ToArray()),
            ["drop_mlp_list"] = new JsonArray(Enumerable.Range(0, c.Layers).Select(i => (JsonNode)skips.SkipsMlp(i)).ToArray()),
        };
        File.WriteAllText(Path.Combine(folder, ConfigFile), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>
    /// Loads a folder written by <see cref="Save"/> (or by LLM-Drop: the drop lists may be booleans per layer or layer
    /// indices). Dropped modules get zero weights (one shared zero array per shape), so the model gives the pruned
    /// outputs even if run without the returned skips; run it with them to save the compute and the KV cache.
    /// </summary>
    public static (LlamaModel Model, ModuleSkips Skips) Load(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string cfgPath = Path.Combine(folder, ConfigFile), stPath = Path.Combine(folder, WeightsFile);
        if (!File.Exists(cfgPath)) throw new ArgumentException($"'{folder}' has no {ConfigFile}", nameof(folder));
        if (!File.Exists(stPath)) throw new ArgumentException($"'{folder}' has no {WeightsFile}", nameof(folder));
        var c = LlamaLoader.ReadHfConfig(cfgPath, out bool tied);
        JsonNode root;
        try { root = JsonNode.Parse(File.ReadAllText(cfgPath))!; }
        catch (JsonException e) { throw new ModelFormatException(cfgPath, "json", 0, e.Message, e); }
        var skips = new ModuleSkips(DropList(root, "drop_attn_list", c.Layers, cfgPath), DropList(root, "drop_mlp_list", c.Layers, cfgPath));

        using var st = SafetensorsFile.Open(stPath);
        int d = c.Dim, kv = c.KvDim, h = c.MlpDim;
        var zeros = new Dictionary<long, float[]>();
        float[] Zero(long n) => zeros.TryGetValue(n, out var z) ? z : zeros[n] = new float[n];
        float[] Read(string name, params long[] shape)
        {
            if (!st.Contains(name)) throw new ModelFormatException(stPath, name, 0, "tensor is missing (the module is not in the drop lists)");
            var e = st.Get(name);
            if (e.Shape.Aggregate(1L, (a, b) => a * b) != shape.Aggregate(1L, (a, b) => a * b))
                throw new ModelFormatException(stPath, name, e.ByteOffset, $"shape [{string.Join(", ", e.Shape)}] does not match [{string.Join(", ", shape)}]");
            return st.ReadF32(name);
        }
        var layers = new LlamaLayer[c.Layers];
        for (int i = 0; i < c.Layers; i++)
        {
            string p = $"model.layers.{i}.";
            bool a = skips.SkipsAttention(i), m = skips.SkipsMlp(i);
            layers[i] = new LlamaLayer
            {
                AttnNorm = a ? Zero(d) : Read(p + "input_layernorm.weight", d),
                Wq = a ? Zero((long)d * d) : LlamaLoader.UnpermuteRotary(Read(p + "self_attn.q_proj.weight", d, d), c.Heads, d),
                Wk = a ? Zero((long)kv * d) : LlamaLoader.UnpermuteRotary(Read(p + "self_attn.k_proj.weight", kv, d), c.KvHeads, d),
                Wv = a ? Zero((long)kv * d) : Read(p + "self_attn.v_proj.weight", kv, d),
                Wo = a ? Zero((long)d * d) : Read(p + "self_attn.o_proj.weight", d, d),
                FfnNorm = m ? Zero(d) : Read(p + "post_attention_layernorm.weight", d),
                W1 = m ? Zero((long)h * d) : Read(p + "mlp.gate_proj.weight", h, d),
                W2 = m ? Zero((long)d * h) : Read(p + "mlp.down_proj.weight", d, h),
                W3 = m ? Zero((long)h * d) : Read(p + "mlp.up_proj.weight", h, d),
            };
        }
        var emb = Read("model.embed_tokens.weight", c.Vocab, d);
        var weights = new LlamaWeights
        {
            TokenEmbedding = emb,
            Layers = layers,
            FinalNorm = Read("model.norm.weight", d),
            Output = tied || !st.Contains("lm_head.weight") ? emb : Read("lm_head.weight", c.Vocab, d),
        };
        var card = new ModelCard(Path.GetFileName(Path.GetFullPath(folder).TrimEnd('/')), stPath, "safetensors (pruned)", c,
            st.Tensors.Sum(t => t.ElementCount), st.Tensors.Sum(t => t.ByteLength),
            st.Tensors.Select(t => new TensorCardEntry(t.Name, t.DType.ToString(), t.Shape, t.ByteLength)).ToList());
        return (new LlamaModel(c, weights, card), skips);
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
