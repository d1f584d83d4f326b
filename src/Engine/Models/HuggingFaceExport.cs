using Workbench.Engine.Formats;

namespace Workbench.Engine.Models;

/// <summary>
/// Writes a Llama model as a Hugging Face LlamaForCausalLM folder: config.json plus safetensors (one file or shards
/// with model.safetensors.index.json), q/k rows permuted for Hugging Face's rotate-half rotary.
/// </summary>
public static class HuggingFaceExport
{
    public static void WriteLlama(LlamaModel model, string folder, DType dtype = DType.F32, long? maxShardBytes = null,
        IReadOnlyDictionary<string, object>? extraConfig = null, IEnumerable<int>? omitAttention = null, IEnumerable<int>? omitMlp = null)
    {
        if (model.Spec != DecoderSpec.Llama2)
            throw new NotSupportedException($"{model.Card.Name} is a {model.Spec.Family} decoder with its own block; only Llama-2-layout models are written as LlamaForCausalLM");
        Directory.CreateDirectory(folder);
        var c = model.Config;
        var w = model.Weights;
        var noAttn = new HashSet<int>(omitAttention ?? []);
        var noMlp = new HashSet<int>(omitMlp ?? []);
        var tensors = new List<(string, int[], float[])> { ("model.embed_tokens.weight", [c.Vocab, c.Dim], StoredLinears.Fp32(w.TokenEmbedding)) };
        for (int i = 0; i < c.Layers; i++)
        {
            var l = w.Layers[i];
            string p = $"model.layers.{i}.";
            if (!noAttn.Contains(i))
            {
                tensors.Add((p + "input_layernorm.weight", [c.Dim], l.AttnNorm));
                tensors.Add((p + "self_attn.q_proj.weight", [c.Dim, c.Dim], LlamaLoader.PermuteRotary(StoredLinears.Fp32(l.Wq), c.Heads, c.Dim)));
                tensors.Add((p + "self_attn.k_proj.weight", [c.KvDim, c.Dim], LlamaLoader.PermuteRotary(StoredLinears.Fp32(l.Wk), c.KvHeads, c.Dim)));
                tensors.Add((p + "self_attn.v_proj.weight", [c.KvDim, c.Dim], StoredLinears.Fp32(l.Wv)));
                tensors.Add((p + "self_attn.o_proj.weight", [c.Dim, c.Dim], StoredLinears.Fp32(l.Wo)));
            }
            if (!noMlp.Contains(i))
            {
                tensors.Add((p + "post_attention_layernorm.weight", [c.Dim], l.FfnNorm));
                tensors.Add((p + "mlp.gate_proj.weight", [c.MlpDim, c.Dim], StoredLinears.Fp32(l.W1)));
                tensors.Add((p + "mlp.down_proj.weight", [c.Dim, c.MlpDim], StoredLinears.Fp32(l.W2)));
                tensors.Add((p + "mlp.up_proj.weight", [c.MlpDim, c.Dim], StoredLinears.Fp32(l.W3 ?? throw new InvalidOperationException($"{model.Card.Name} layer {i} has no up projection (w3), which a Llama-2 block has"))));
            }
        }
        tensors.Add(("model.norm.weight", [c.Dim], w.FinalNorm));
        if (!w.SharedOutput) tensors.Add(("lm_head.weight", [c.Vocab, c.Dim], StoredLinears.Fp32(w.Output)));
        if (maxShardBytes is { } max) SafetensorsWriter.WriteSharded(folder, tensors, dtype, max);
        else SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), tensors, dtype);

        var config = new Dictionary<string, object>
        {
            ["architectures"] = new[] { "LlamaForCausalLM" },
            ["model_type"] = "llama",
            ["hidden_size"] = c.Dim,
            ["intermediate_size"] = c.MlpDim,
            ["num_hidden_layers"] = c.Layers,
            ["num_attention_heads"] = c.Heads,
            ["num_key_value_heads"] = c.KvHeads,
            ["vocab_size"] = c.Vocab,
            ["max_position_embeddings"] = c.MaxSeq,
            ["rms_norm_eps"] = c.NormEps,
            ["rope_theta"] = c.RopeTheta,
            ["hidden_act"] = "silu",
            ["tie_word_embeddings"] = w.SharedOutput,
            ["torch_dtype"] = dtype switch { DType.F16 => "float16", DType.BF16 => "bfloat16", _ => "float32" },
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
        };
        if (extraConfig is not null) foreach (var (k, v) in extraConfig) config[k] = v;
        File.WriteAllText(Path.Combine(folder, "config.json"), JsonOut.Text(JsonOut.Node(config)!));
    }
}
