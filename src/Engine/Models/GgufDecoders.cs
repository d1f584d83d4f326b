using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Workbench.Engine.Formats;
using Workbench.Engine.LowBit;

namespace Workbench.Engine.Models;

/// <summary>
/// GGUF decoders of the families llama.cpp names (general.architecture): llama (and Mistral, which llama.cpp writes as
/// llama), qwen2, qwen3, gemma2, gemma3, phi3, gpt2, and bitnet.cpp's own BitNet architectures (its llama.cpp fork,
/// src/llama.cpp LLM_ARCH_NAMES): bitnet-b1.58 and bitnet-25 (LLM_ARCH_BITNET_B158 / _25, microsoft/bitnet-b1.58-2B-4T as
/// utils/convert-ms-to-gguf-bitnet.py writes it; build_bitnet_158: sub-norms, LLM_FFN_RELU_SQR) and bitnet
/// (LLM_ARCH_BITNET, 1bitLLM's BitnetForCausalLM via convert-hf-to-gguf-bitnet.py; llama.cpp runs it with SiLU unless
/// bitnet.hidden_activation says relu2, and only relu2 is supported here). Each file is read onto the same <see cref="DecoderSpec"/> /
/// <see cref="HfDecoders"/> machinery as the Hugging Face folder it was converted from: the metadata is read as the
/// config.json it came from, the tensors are found under the names convert_hf_to_gguf.py gave them, and what the
/// converter changed is undone, as llama.cpp's own code defines it (gguf-py constants.py / tensor_mapping.py,
/// src/llama-arch.cpp, src/llama-model.cpp):
/// <list type="bullet">
/// <item>`llama` q/k rows are permuted by the converter (LlamaModel.permute) so ggml's NORM rope (interleaved pairs)
/// applies: already llama2.c's convention, kept as they are. qwen2, qwen3, gemma2, gemma3 and phi3 use NEOX rope
/// (rotate-half) and are not permuted: unpermuted here as a Hugging Face folder is.</item>
/// <item>Gemma norm weights (every tensor ending in norm.weight) are stored + 1 by the converter: read as they are
/// (the (1 + w) of Gemma's RMSNorm is already in them).</item>
/// <item>GPT-2's Conv1D [in, out] weights are transposed by the converter: stored [out, in] already.</item>
/// <item>phi3's fused attn_qkv (q, k, v rows) and ffn_up (gate rows, then up rows) are split as the folder's.</item>
/// <item>Layer patterns llama.cpp hard-codes: gemma2 sliding on even layers (set_swa_pattern(2)), gemma3 on five of
/// every six (set_swa_pattern(6)) with rope base 10000 on them (rope_freq_base_train_swa); the Gemma attention scale
/// 1/sqrt(key_length) (1/sqrt(embedding_length / head_count) for the 27B sizes: 46 gemma2 / 62 gemma3 layers), unless
/// the file gives {arch}.attention.scale.</item>
/// <item>Llama 3 rope scaling: the converter stores per-frequency divisors in rope_freqs.weight (ggml's freq_factors).</item>
/// <item>BitNet: NEOX rope, q/k not permuted by bitnet.cpp's converters (unpermuted here as a folder is); blk.N.attn_sub_norm
/// and blk.N.ffn_sub_norm; the LM head is token_embd (tied). Its I2_S linears run on the packed kernels, which quantize
/// each activation row to int8 at absmax 127 as bitnet.cpp's I2_S matmul does; with --weights fp32 the block linears
/// quantize their input the same way (DecoderSpec.QuantizedActivations), so both storages compute one function.</item>
/// </list>
/// Linears in F16 / BF16 / Q8_0 / Q4_0 stay mapped (<see cref="StoredLinears"/>); TQ1_0 / TQ2_0 / I2_S go code for code into
/// the packed ternary kernels.
/// </summary>
public static class GgufDecoders
{
    /// <summary>general.architecture -> the Hugging Face model_type the file is read as.</summary>
    public static IReadOnlyDictionary<string, string> Supported { get; } = new Dictionary<string, string>
    {
        ["llama"] = "llama", ["qwen2"] = "qwen2", ["qwen3"] = "qwen3", ["gemma2"] = "gemma2", ["gemma3"] = "gemma3_text",
        ["phi3"] = "phi3", ["gpt2"] = "gpt2",
        ["bitnet-b1.58"] = "bitnet", ["bitnet-25"] = "bitnet", ["bitnet"] = "bitnet",
    };

    public static LlamaModel Load(string path, string? name = null, WeightStorage storage = WeightStorage.Stored, LowBitFormat ternary = LowBitFormat.I2S)
    {
        using var g = GgufFile.Open(path);
        string arch = g.TryGet<string>("general.architecture", out var a) ? a : "";
        if (!Supported.TryGetValue(arch, out var family))
            throw new ModelFormatException(path, "general.architecture", 0,
                $"architecture '{arch}' is not supported (supported: {string.Join(", ", Supported.Keys)})");
        var src = new GgufNames(g, family);
        var c = Config(g, arch, family);
        name ??= System.IO.Path.GetFileNameWithoutExtension(path);
        int layers = c.Int(family == "gpt2" ? "n_layer" : "num_hidden_layers");
        if (layers > g.Tensors.Count)
            throw new ModelFormatException(path, $"{arch}.block_count", 0, $"{layers} layers but the file holds only {g.Tensors.Count} tensors");
        var (cfg, spec) = HfDecoders.Describe(c, family);
        // the converter stored Gemma's 1 + w; {arch}.attention.scale, when given, is the score scale itself
        spec = spec with { NormWeightOffset = 0 };
        if (g.Metadata.ContainsKey($"{arch}.attention.scale")) spec = spec with { AttentionScale = g.GetFloat($"{arch}.attention.scale") };
        if (g.Contains("rope_freqs.weight")) spec = spec with { RopeInvFreq = RopeWithFactors(g, cfg, spec) };
        // bitnet.cpp's ternary linears: int8 activations, as its I2_S matmul computes (the packed kernels do it themselves)
        if (family == "bitnet" && g.Contains("blk.0.attn_q.weight") && GgufQuants.IsTernary(g.GgmlTypeOf("blk.0.attn_q.weight")))
            spec = spec with { QuantizedActivations = true };
        bool tied = !g.Contains("output.weight");
        return family == "gpt2" ? HfDecoders.BuildGpt2(src, cfg, spec, name, conv1d: false, storage, ternary)
            : HfDecoders.Build(src, cfg, spec, c, name, tied, storage, ternary, unpermute: arch != "llama");
    }

    /// <summary>The file's metadata as the config.json it was converted from (the keys HfDecoders reads).</summary>
    private static HfConfig Config(GgufFile g, string arch, string family)
    {
        string K(string key) => $"{arch}.{key}";
        bool Has(string key) => g.Metadata.ContainsKey(K(key));
        int Int(string key, int? fallback = null)
        {
            if (!Has(key)) return fallback ?? throw new ModelFormatException(g.Path, K(key), 0, "required metadata key is missing");
            long v = g.GetInt64(K(key));
            return v is >= 0 and <= int.MaxValue ? (int)v : throw new ModelFormatException(g.Path, K(key), 0, $"{v} is not a size");
        }
        float Float(string key, float fallback) => Has(key) ? g.GetFloat(K(key)) : fallback;

        if (!g.Contains("token_embd.weight")) throw new ModelFormatException(g.Path, "token_embd.weight", 0, "tensor is missing");
        var emb = g.Get("token_embd.weight");
        if (emb.Shape.Length != 2 || emb.Shape[0] > int.MaxValue)
            throw new ModelFormatException(g.Path, "token_embd.weight", emb.ByteOffset, $"shape [{string.Join(", ", emb.Shape)}] is not [vocab, dim]");
        int layers = Int("block_count"), dim = Int("embedding_length"), heads = Int("attention.head_count");
        if (heads <= 0) throw new ModelFormatException(g.Path, K("attention.head_count"), 0, $"{heads} heads: must be positive");
        int headDim = Int("attention.key_length", dim / heads);
        if (Has("attention.value_length") && Int("attention.value_length") != headDim)
            throw new ModelFormatException(g.Path, K("attention.value_length"), 0, $"{Int("attention.value_length")} differs from key_length {headDim} (supported: equal)");
        if (Has("rope.dimension_count") && Int("rope.dimension_count") != headDim)
            throw new ModelFormatException(g.Path, K("rope.dimension_count"), 0, $"partial rotary ({Int("rope.dimension_count")} of {headDim} dimensions) is not supported (supported: {headDim})");
        if (g.TryGet<string>(K("rope.scaling.type"), out var scaling) && scaling is not ("none" or "linear" or ""))
            throw new ModelFormatException(g.Path, K("rope.scaling.type"), 0, $"'{scaling}' is not supported (supported: none; llama3's factors as rope_freqs.weight)");
        if (g.TryGet<string>(K("rope.scaling.type"), out scaling) && scaling == "linear" && Float("rope.scaling.factor", 1f) != 1f)
            throw new ModelFormatException(g.Path, K("rope.scaling.factor"), 0, "linear rope scaling is not supported (supported: factor 1)");

        var o = new JsonObject { ["model_type"] = family, ["vocab_size"] = (int)emb.Shape[0] };
        int window = Int("attention.sliding_window", 0);
        if (family == "bitnet")
        {
            // llama.cpp's bitnet arch defaults to SiLU (1bitLLM); the b1.58 ones are build_bitnet_158's squared ReLU
            string act = arch == "bitnet" ? (g.TryGet<string>(K("hidden_activation"), out var h) ? h : "silu (absent: llama.cpp's default)") : "relu2";
            if (act != "relu2")
                throw new ModelFormatException(g.Path, K("hidden_activation"), 0,
                    $"'{act}' is not supported (supported: relu2, i.e. general.architecture bitnet-b1.58 or bitnet-25, or bitnet with bitnet.hidden_activation = relu2)");
            o["hidden_act"] = "relu2";
        }
        if (family == "gpt2")
        {
            o["n_layer"] = layers; o["n_embd"] = dim; o["n_head"] = heads; o["n_inner"] = Int("feed_forward_length", 4 * dim);
            o["n_positions"] = Int("context_length"); o["layer_norm_epsilon"] = Float("attention.layer_norm_epsilon", 1e-5f);
        }
        else
        {
            o["num_hidden_layers"] = layers; o["hidden_size"] = dim; o["num_attention_heads"] = heads;
            o["num_key_value_heads"] = Int("attention.head_count_kv", heads); o["intermediate_size"] = Int("feed_forward_length");
            o["head_dim"] = headDim; o["max_position_embeddings"] = Int("context_length", 2048);
            o["rms_norm_eps"] = Float("attention.layer_norm_rms_epsilon", 1e-5f);
            o["rope_theta"] = Float("rope.freq_base", 10000f);
            if (family == "gemma3_text") o["rope_local_base_freq"] = 10000f;
            if (family is "gemma2" or "gemma3_text")
            {
                bool big = layers == (family == "gemma2" ? 46 : 62); // llama.cpp's LLM_TYPE_27B
                o["query_pre_attn_scalar"] = big ? dim / heads : headDim;
                if (Has("attn_logit_softcapping")) o["attn_logit_softcapping"] = Float("attn_logit_softcapping", 0);
                if (Has("final_logit_softcapping")) o["final_logit_softcapping"] = Float("final_logit_softcapping", 0);
            }
            if (family == "llama" && g.Contains("blk.0.attn_q.bias") && g.Contains("blk.0.attn_output.bias")) o["attention_bias"] = true;
            if (window > 0)
            {
                o["sliding_window"] = window;
                var types = new JsonArray();
                for (int i = 0; i < layers; i++)
                    types.Add(family switch { "gemma2" => i % 2 == 0, "gemma3_text" => i % 6 < 5, _ => true } ? "sliding_attention" : "full_attention");
                o["layer_types"] = types;
            }
        }
        var root = JsonDocument.Parse(o.ToJsonString()).RootElement;
        return HfConfig.FromJson(g.Path, root);
    }

    /// <summary>
    /// Llama 3's scaled rope as GGUF stores it: rope_freqs.weight holds one divisor per frequency (convert_hf_to_gguf's
    /// rope_factors; llama.cpp's freq_factors: theta_i = pos * base^(-2i/d) / factor_i), the same on every layer.
    /// </summary>
    private static float[][] RopeWithFactors(GgufFile g, ModelConfig cfg, DecoderSpec spec)
    {
        int half = cfg.HeadDim / 2;
        var factors = TensorReading.Read(g, "rope_freqs.weight", half);
        var inv = new float[half];
        for (int i = 0; i < half; i++)
        {
            if (!(factors[i] > 0) || !float.IsFinite(factors[i]))
                throw new ModelFormatException(g.Path, "rope_freqs.weight", g.Get("rope_freqs.weight").ByteOffset, $"factor {i} = {factors[i]} is not positive");
            inv[i] = (float)(1.0 / Math.Pow(cfg.RopeTheta, 2.0 * i / cfg.HeadDim) / factors[i]);
        }
        return Enumerable.Repeat(inv, cfg.Layers).ToArray();
    }
}

/// <summary>
/// A GGUF file seen under the Hugging Face names of its family (gguf-py tensor_mapping.py, read backwards), so the
/// folder loaders read it unchanged. <see cref="Tensors"/> lists the file's own entries and names.
/// </summary>
internal sealed partial class GgufNames(GgufFile file, string family) : ITensorSource, ITernaryTensors
{
    public GgufFile File => file;
    public string Path => file.Path;
    public string Format => file.Format;
    public IReadOnlyList<TensorEntry> Tensors => file.Tensors;
    public IReadOnlyDictionary<string, object> Metadata => file.Metadata;

    private static readonly Dictionary<string, string> LayerNames = new()
    {
        ["input_layernorm"] = "attn_norm", ["pre_feedforward_layernorm"] = "ffn_norm", ["post_feedforward_layernorm"] = "post_ffw_norm",
        ["self_attn.q_proj"] = "attn_q", ["self_attn.k_proj"] = "attn_k", ["self_attn.v_proj"] = "attn_v", ["self_attn.o_proj"] = "attn_output",
        ["self_attn.qkv_proj"] = "attn_qkv", ["self_attn.q_norm"] = "attn_q_norm", ["self_attn.k_norm"] = "attn_k_norm",
        ["mlp.gate_proj"] = "ffn_gate", ["mlp.up_proj"] = "ffn_up", ["mlp.down_proj"] = "ffn_down", ["mlp.gate_up_proj"] = "ffn_up",
        ["self_attn.attn_sub_norm"] = "attn_sub_norm", ["mlp.ffn_sub_norm"] = "ffn_sub_norm", // BitNet (bitnet.cpp's names)
        // GPT-2
        ["ln_1"] = "attn_norm", ["attn.c_attn"] = "attn_qkv", ["attn.c_proj"] = "attn_output", ["ln_2"] = "ffn_norm",
        ["mlp.c_fc"] = "ffn_up", ["mlp.c_proj"] = "ffn_down",
    };

    [GeneratedRegex(@"^(?:model\.layers|transformer\.h)\.(\d+)\.(.+)\.(weight|bias)$")]
    private static partial Regex LayerTensor();

    /// <summary>The GGUF name of a Hugging Face tensor name (the name itself when it has none).</summary>
    public string ToGguf(string hf)
    {
        switch (hf)
        {
            case "model.embed_tokens.weight" or "transformer.wte.weight": return "token_embd.weight";
            case "transformer.wpe.weight": return "position_embd.weight";
            case "model.norm.weight" or "transformer.ln_f.weight": return "output_norm.weight";
            case "transformer.ln_f.bias": return "output_norm.bias";
            case "lm_head.weight": return "output.weight";
        }
        var m = LayerTensor().Match(hf);
        if (!m.Success) return hf;
        string part = m.Groups[2].Value;
        // Gemma's post_attention_layernorm is its own norm (post_attention_norm); elsewhere it is the pre-MLP norm.
        string? gg = part == "post_attention_layernorm" ? (family is "gemma2" or "gemma3_text" ? "post_attention_norm" : "ffn_norm")
            : LayerNames.GetValueOrDefault(part);
        return gg is null ? hf : $"blk.{m.Groups[1].Value}.{gg}.{m.Groups[3].Value}";
    }

    public bool Contains(string name) => file.Contains(ToGguf(name));
    public TensorEntry Get(string name) => file.Get(ToGguf(name));
    public float[] ReadF32(string name) => file.ReadF32(ToGguf(name));
    public MappedTensor? Map(string name) => file.Map(ToGguf(name));
    public bool TryReadTernary(string name, out GgufTernary? ternary) => file.TryReadTernary(ToGguf(name), out ternary);

    public void Dispose() { } // the file belongs to the caller
}
