using System.Text.Json;
using Workbench.Engine.Formats;
using Workbench.Engine.LowBit;

namespace Workbench.Engine.Models;

/// <summary>
/// Hugging Face decoder folders (config.json + safetensors, single or sharded) of the families the engine runs, read
/// into one <see cref="LlamaModel"/> with the <see cref="DecoderSpec"/> of the family: each family is a config reading
/// and a tensor naming, never its own forward pass. Weights go into llama2.c's convention (see DecoderSpec).
/// </summary>
public static class HfDecoders
{
    /// <summary>architectures[0] -> model_type of every supported family.</summary>
    public static IReadOnlyDictionary<string, string> Supported { get; } = new Dictionary<string, string>
    {
        ["LlamaForCausalLM"] = "llama", ["MistralForCausalLM"] = "mistral", ["Qwen2ForCausalLM"] = "qwen2",
        ["Qwen3ForCausalLM"] = "qwen3", ["Gemma2ForCausalLM"] = "gemma2", ["Gemma3ForCausalLM"] = "gemma3_text",
        ["Phi3ForCausalLM"] = "phi3", ["GPT2LMHeadModel"] = "gpt2", ["BitNetForCausalLM"] = "bitnet",
    };

    private static string SupportedList => string.Join(", ", Supported.Select(p => $"{p.Key} ({p.Value})"));

    /// <summary>The family (model_type) of a config.json: from architectures[0], else model_type; unsupported ones name the field and the list.</summary>
    public static string Family(string configPath)
    {
        var c = HfConfig.Read(configPath);
        if (c.Root.TryGetProperty("architectures", out var ar) && ar.ValueKind == JsonValueKind.Array && ar.GetArrayLength() > 0)
        {
            var arch = JsonFiles.Str(ar[0]) ?? throw new ModelFormatException(configPath, "architectures", 0, $"{ar[0].GetRawText()} is not a string");
            return Supported.TryGetValue(arch, out var f) ? f
                : throw new ModelFormatException(configPath, "architectures", 0, $"'{arch}' is not a supported decoder; supported: {SupportedList}");
        }
        var type = c.Str("model_type");
        return Supported.Values.Contains(type) ? type
            : throw new ModelFormatException(configPath, "model_type", 0, $"'{type}' is not a supported decoder; supported: {SupportedList}");
    }

    /// <summary>
    /// Loads a folder. Linears a checkpoint stores ternary (BitNet's packed uint8) go code for code into the packed kernels
    /// of <paramref name="ternary"/> (I2S, TL1 or TL2), never through fp32, unless <paramref name="storage"/> is Fp32.
    /// </summary>
    public static LlamaModel Load(string folder, string? name = null, WeightStorage storage = WeightStorage.Stored, LowBitFormat ternary = LowBitFormat.I2S)
    {
        var cfgPath = Path.Combine(folder, "config.json");
        var family = Family(cfgPath);
        var c = HfConfig.Read(cfgPath);
        using var src = HfTensors.Open(folder);
        // Per-layer descriptions are sized by config.json's layer count: check it against the tensors first.
        int layers = c.Int(family == "gpt2" ? "n_layer" : "num_hidden_layers");
        if (layers > src.Tensors.Count)
            throw new ModelFormatException(src.Path, "layers", 0, $"config.json gives {layers} layers but the weights hold only {src.Tensors.Count} tensors");
        var (cfg, spec) = Describe(c, family);
        bool tied = c.Bool("tie_word_embeddings", family is "gemma2" or "gemma3_text" or "gpt2");
        return family == "gpt2" ? BuildGpt2(src, cfg, spec, name ?? new DirectoryInfo(folder).Name)
            : Build(src, cfg, spec, c, name ?? new DirectoryInfo(folder).Name, tied, storage, ternary);
    }

    /// <summary>The architecture numbers and the block description of a family's config.json.</summary>
    internal static (ModelConfig, DecoderSpec) Describe(HfConfig c, string family)
    {
        bool gpt2 = family == "gpt2", gemma = family is "gemma2" or "gemma3_text";
        int layers = c.Int(gpt2 ? "n_layer" : "num_hidden_layers"), dim = c.Int(gpt2 ? "n_embd" : "hidden_size");
        int heads = c.Int(gpt2 ? "n_head" : "num_attention_heads");
        int mlp = gpt2 ? c.Int("n_inner", 4 * dim) : c.Int("intermediate_size");
        string headsKey = gpt2 ? "n_head" : "num_attention_heads";
        if (heads <= 0) throw new ModelFormatException(c.Path, headsKey, 0, $"{heads} attention heads: must be positive");
        int headDim = c.Int("head_dim", 0);
        if (headDim == dim / heads && dim % heads == 0) headDim = 0;
        float eps = c.Float(gpt2 ? "layer_norm_epsilon" : "rms_norm_eps", 1e-6f);
        var cfg = new ModelConfig(ModelFamily.Llama, layers, dim, mlp, heads, gpt2 ? heads : c.Int("num_key_value_heads", heads), c.Int("vocab_size"),
            c.Int(gpt2 ? "n_positions" : "max_position_embeddings", 2048), PreNorm: true,
            gpt2 || gemma ? MlpKind.GeluTanh : MlpKind.SwiGlu, eps, RopeTheta(c, "full_attention"), headDim);
        try { cfg.Validate(); }
        catch (ArgumentException e) { throw new ModelFormatException(c.Path, e.ParamName ?? "config", 0, e.Message, e); }

        var act = c.Str(gpt2 ? "activation_function" : gemma && c.Has("hidden_activation") ? "hidden_activation" : "hidden_act");
        string wantAct = gpt2 ? "gelu_new" : gemma ? "gelu_pytorch_tanh" : family == "bitnet" ? "relu2" : "silu";
        if (act != "" && act != wantAct && !(gpt2 && act is "gelu_pytorch_tanh"))  // absent: the family's default
            throw new ModelFormatException(c.Path, gpt2 ? "activation_function" : "hidden_act", 0, $"'{act}' is not supported for {family} (supported: {wantAct})");
        if (c.Bool("mlp_bias")) throw new ModelFormatException(c.Path, "mlp_bias", 0, "MLP biases are not supported for this family (supported: false)");

        var layerTypes = LayerTypes(c, family, layers);
        int window = c.Int("sliding_window", 0);
        var spec = new DecoderSpec
        {
            Family = family,
            Norm = gpt2 ? NormKind.Layer : NormKind.Rms,
            NormWeightOffset = gemma ? 1f : 0f,
            SandwichNorms = gemma,
            QkNorm = family is "qwen3" or "gemma3_text",
            SubNorms = family == "bitnet",
            Mlp = gpt2 ? DecoderMlp.GeluTanh : gemma ? DecoderMlp.GeGluTanh : family == "bitnet" ? DecoderMlp.Relu2Glu : DecoderMlp.SwiGlu,
            EmbedScale = gemma ? MathF.Sqrt(dim) : 1f,
            LearnedPositions = gpt2,
            RopeInvFreq = gpt2 ? null : layerTypes.Select(t => InvFreq(c, t, cfg.HeadDim)).ToArray(),
            SlidingWindow = layerTypes.Select(t => t == "sliding_attention" ? window : 0).ToArray(),
            AttentionScale = gemma ? 1f / MathF.Sqrt(c.Float("query_pre_attn_scalar", cfg.HeadDim)) : 0f,
            AttentionSoftCap = c.Float("attn_logit_softcapping", 0f),
            FinalSoftCap = c.Float("final_logit_softcapping", 0f),
            QuantizedActivations = c.Root.TryGetProperty("quantization_config", out var qc) && qc.ValueKind == JsonValueKind.Object
                && QuantMethod(c, qc) == "bitnet",
        };
        if (spec.SlidingWindow.Any(w => w < 0)) throw new ModelFormatException(c.Path, "sliding_window", 0, "must be positive");
        // No window anywhere, and one default rotary of the config's theta: llama2.c's own formula (the same numbers), so a
        // plain Llama folder has exactly the Llama-2 spec (and exports back).
        if (spec.SlidingWindow.All(w => w == 0)) spec = spec with { SlidingWindow = null };
        var plain = DefaultInvFreq(cfg.RopeTheta, cfg.HeadDim);
        if (spec.RopeInvFreq is { } f && f.All(l => l.AsSpan().SequenceEqual(plain))) spec = spec with { RopeInvFreq = null };
        return (cfg, spec);
    }

    private static string QuantMethod(HfConfig c, JsonElement qc)
    {
        var m = qc.TryGetProperty("quant_method", out var v) ? JsonFiles.Str(v) ?? "" : "";
        return m == "bitnet" ? m : throw new ModelFormatException(c.Path, "quantization_config.quant_method", 0, $"'{m}' is not supported (supported: bitnet)");
    }

    /// <summary>full_attention / sliding_attention per layer: layer_types, else the family's rule for older configs.</summary>
    private static string[] LayerTypes(HfConfig c, string family, int layers)
    {
        if (c.Root.TryGetProperty("layer_types", out var lt) && lt.ValueKind == JsonValueKind.Array)
        {
            var types = lt.EnumerateArray().Select(x => JsonFiles.Str(x) ?? "").ToArray();
            if (types.Length != layers) throw new ModelFormatException(c.Path, "layer_types", 0, $"{types.Length} entries for {layers} layers");
            foreach (var t in types)
                if (t is not ("full_attention" or "sliding_attention"))
                    throw new ModelFormatException(c.Path, "layer_types", 0, $"'{t}' is not supported (supported: full_attention, sliding_attention)");
            return types;
        }
        bool hasWindow = c.Int("sliding_window", 0) > 0;
        return Enumerable.Range(0, layers).Select(i => family switch
        {
            "mistral" when hasWindow => "sliding_attention",
            "qwen2" or "qwen3" when hasWindow && c.Bool("use_sliding_window") && i >= c.Int("max_window_layers", 0) => "sliding_attention",
            "gemma2" when hasWindow && i % 2 == 0 => "sliding_attention",
            "gemma3_text" when hasWindow && (i + 1) % c.Int("sliding_window_pattern", 6) != 0 => "sliding_attention",
            _ => "full_attention",
        }).ToArray();
    }

    /// <summary>The rope parameters of a layer type: transformers 5's rope_parameters (per layer type or shared), else rope_scaling.</summary>
    private static JsonElement? RopeParams(HfConfig c, string layerType)
    {
        if (c.Root.TryGetProperty("rope_parameters", out var rp) && rp.ValueKind == JsonValueKind.Object)
            return rp.TryGetProperty(layerType, out var per) && per.ValueKind == JsonValueKind.Object ? per : rp;
        return c.Root.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind == JsonValueKind.Object ? rs : null;
    }

    private static float RopeTheta(HfConfig c, string layerType)
    {
        if (RopeParams(c, layerType) is { } p && p.TryGetProperty("rope_theta", out var t) && t.ValueKind == JsonValueKind.Number) return t.GetSingle();
        if (layerType == "sliding_attention" && c.Has("rope_local_base_freq")) return c.Float("rope_local_base_freq", 10000f);
        return c.Float("rope_theta", 10000f);
    }

    /// <summary>
    /// Rotary inverse frequencies as transformers computes them: default 1 / theta^(2i/d); llama3 divides the low
    /// frequencies by factor and smooths the middle band. Other rope types are refused, naming the field.
    /// </summary>
    internal static float[] InvFreq(HfConfig c, string layerType, int headDim)
    {
        float theta = RopeTheta(c, layerType);
        var p = RopeParams(c, layerType);
        string field = c.Has("rope_parameters") ? "rope_parameters" : "rope_scaling";
        string type = p is { } e && (e.TryGetProperty("rope_type", out var t) || e.TryGetProperty("type", out t)) ? JsonFiles.Str(t) ?? "" : "default";
        double F(string key, double fallback) => p is { } e2 && e2.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : fallback;
        double partial = F("partial_rotary_factor", c.Float("partial_rotary_factor", 1f));
        if (partial != 1.0) throw new ModelFormatException(c.Path, $"{field}.partial_rotary_factor", 0, $"{partial} is not supported (supported: 1)");
        var inv = DefaultInvFreq(theta, headDim);
        switch (type)
        {
            case "default": return inv;
            case "llama3":
            {
                double factor = F("factor", 8), low = F("low_freq_factor", 1), high = F("high_freq_factor", 4), old = F("original_max_position_embeddings", 8192);
                double lowWave = old / low, highWave = old / high;
                for (int i = 0; i < inv.Length; i++)
                {
                    double f = inv[i], wave = 2 * Math.PI / f;
                    if (wave > lowWave) f /= factor;
                    else if (wave >= highWave)
                    {
                        double smooth = (old / wave - low) / (high - low);
                        f = (1 - smooth) * f / factor + smooth * f;
                    }
                    inv[i] = (float)f;
                }
                return inv;
            }
            default:
                throw new ModelFormatException(c.Path, $"{field}.rope_type", 0, $"'{type}' is not supported (supported: default, llama3)");
        }
    }

    /// <summary>1 / theta^(2i / d) in float, as Ops.Rope computes it.</summary>
    private static float[] DefaultInvFreq(float theta, int headDim)
    {
        var inv = new float[headDim / 2];
        for (int i = 0; i < inv.Length; i++) inv[i] = 1f / MathF.Pow(theta, 2 * i / (float)headDim);
        return inv;
    }

    /// <summary>The Llama-layout families (llama, mistral, qwen2/3, gemma2/3, phi3, bitnet): model.layers.{i}.*</summary>
    internal static LlamaModel Build(ITensorSource src, ModelConfig cfg, DecoderSpec spec, HfConfig c, string name, bool tied, WeightStorage storage,
        LowBitFormat ternary = LowBitFormat.I2S, bool unpermute = true)
    {
        int d = cfg.Dim, qd = cfg.QDim, kv = cfg.KvDim, h = cfg.MlpDim, hd = cfg.HeadDim;
        bool qkvBias = spec.Family == "qwen2" || c.Bool("attention_bias"), oBias = spec.Family != "qwen2" && c.Bool("attention_bias");
        // a folder's packed uint8 + weight_scale; a GGUF's ternary types are read by StoredLinears.Read (ITernaryTensors)
        bool packed = spec.QuantizedActivations && src is not ITernaryTensors;
        float[] Norm(string n, int len)
        {
            var w = TensorReading.Read(src, n, len);
            if (spec.NormWeightOffset != 0) for (int i = 0; i < w.Length; i++) w[i] += spec.NormWeightOffset;
            return w;
        }
        float[] Lin(string n, long rows, long cols) => packed ? Ternary(src, n, rows, cols, storage, ternary) : StoredLinears.Read(src, n + ".weight", rows, cols, storage, ternary);
        // rotate-half rows (and their biases and q/k norm weights) back to llama2.c's interleaved pairs; GGUF's `llama`
        // tensors are already interleaved (convert_hf_to_gguf permutes them for ggml's NORM rope), then nothing is done
        float[] Rot(float[] w, int heads) => unpermute ? LlamaLoader.UnpermuteRotary(w, heads, w.Length / (heads * hd)) : w;
        // The layer count is config.json's word: checked against the tensors present before anything is sized by it.
        TensorReading.CheckLayerCount(src, cfg.Layers, i => $"model.layers.{i}.input_layernorm.weight", i => $"model.layers.{i}.mlp.down_proj.weight");
        var layers = new LlamaLayer[cfg.Layers];
        for (int i = 0; i < cfg.Layers; i++)
        {
            string p = $"model.layers.{i}.", a = p + "self_attn.", m = p + "mlp.";
            float[] wq, wk, wv, w1, w3;
            if (spec.Family == "phi3")
            {
                // fused rows: q, k, v; gate, up
                var qkv = StoredLinears.Read(src, a + "qkv_proj.weight", qd + 2 * kv, d, storage, ternary);
                wq = StoredLinears.Rows(qkv, d, 0, qd); wk = StoredLinears.Rows(qkv, d, qd, qd + kv); wv = StoredLinears.Rows(qkv, d, qd + kv, qd + 2 * kv);
                var gu = StoredLinears.Read(src, m + "gate_up_proj.weight", 2 * h, d, storage, ternary);
                w1 = StoredLinears.Rows(gu, d, 0, h); w3 = StoredLinears.Rows(gu, d, h, 2 * h);
            }
            else
            {
                wq = Lin(a + "q_proj", qd, d); wk = Lin(a + "k_proj", kv, d); wv = Lin(a + "v_proj", kv, d);
                w1 = Lin(m + "gate_proj", h, d); w3 = Lin(m + "up_proj", h, d);
            }
            bool gemma = spec.SandwichNorms;
            layers[i] = new LlamaLayer
            {
                AttnNorm = Norm(p + "input_layernorm.weight", d),
                Wq = Rot(wq, cfg.Heads), Wk = Rot(wk, cfg.KvHeads), Wv = wv,
                Wo = Lin(a + "o_proj", d, qd),
                FfnNorm = Norm(p + (gemma ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"), d),
                W1 = w1, W3 = w3, W2 = Lin(m + "down_proj", d, h),
                Bq = qkvBias ? Rot(TensorReading.Read(src, a + "q_proj.bias", qd), cfg.Heads) : null,
                Bk = qkvBias ? Rot(TensorReading.Read(src, a + "k_proj.bias", kv), cfg.KvHeads) : null,
                Bv = qkvBias ? TensorReading.Read(src, a + "v_proj.bias", kv) : null,
                Bo = oBias ? TensorReading.Read(src, a + "o_proj.bias", d) : null,
                QNorm = spec.QkNorm ? Rot(Norm(a + "q_norm.weight", hd), 1) : null,
                KNorm = spec.QkNorm ? Rot(Norm(a + "k_norm.weight", hd), 1) : null,
                PostAttnNorm = gemma ? Norm(p + "post_attention_layernorm.weight", d) : null,
                PostFfnNorm = gemma ? Norm(p + "post_feedforward_layernorm.weight", d) : null,
                AttnSubNorm = spec.SubNorms ? Norm(a + "attn_sub_norm.weight", qd) : null,
                FfnSubNorm = spec.SubNorms ? Norm(m + "ffn_sub_norm.weight", h) : null,
            };
        }
        // Kept as stored like the linears: the embedding lookup decodes only the rows of the tokens it is given.
        var emb = StoredLinears.Read(src, "model.embed_tokens.weight", cfg.Vocab, d, storage);
        var weights = new LlamaWeights
        {
            TokenEmbedding = emb,
            Layers = layers,
            FinalNorm = Norm("model.norm.weight", d),
            Output = tied || !src.Contains("lm_head.weight") ? emb : StoredLinears.Read(src, "lm_head.weight", cfg.Vocab, d, storage),
        };
        return new LlamaModel(cfg, weights, TensorReading.Card(name, src, cfg), spec);
    }

    /// <summary>
    /// BitNet's packed form: uint8 [rows / 4, cols], 2-bit codes + 1 in row blocks (code[i * rows/4 + r, c] in bits 2i of
    /// byte [r, c]), and weight_scale [1]; transformers' BitLinear computes y = (x_int code^T) / (s_x * weight_scale), so the
    /// weights are code / weight_scale. The codes go straight into the packed kernels of <paramref name="format"/> with the
    /// scale 1 / weight_scale (one byte per code in between, never fp32); Fp32 storage gives code * (1 / weight_scale).
    /// </summary>
    private static float[] Ternary(ITensorSource src, string n, long rows, long cols, WeightStorage storage, LowBitFormat format)
    {
        string wn = n + ".weight";
        if (!src.Contains(wn)) throw new ModelFormatException(src.Path, wn, 0, "tensor is missing");
        var e = src.Get(wn);
        if (e.DType != DType.U8) throw new ModelFormatException(src.Path, $"{wn}.dtype", e.ByteOffset, $"{e.DType} is not the packed ternary U8 of a bitnet checkpoint");
        long p = rows / 4;
        if (rows % 4 != 0 || e.Shape.Length != 2 || e.Shape[0] != p || e.Shape[1] != cols || rows > int.MaxValue || cols > int.MaxValue)
            throw new ModelFormatException(src.Path, wn, e.ByteOffset, $"shape [{string.Join(", ", e.Shape)}] does not match the packed [{p}, {cols}] of a [{rows}, {cols}] matrix");
        var s = TensorReading.Read(src, n + ".weight_scale", 1);
        if (!(s[0] > 0) || !float.IsFinite(s[0]) || !float.IsFinite(1f / s[0]))
            throw new ModelFormatException(src.Path, n + ".weight_scale", src.Get(n + ".weight_scale").ByteOffset, $"{s[0]} is not a positive scale");
        var bytes = RawBytes(src, e);
        var codes = new sbyte[rows * cols];
        for (long r = 0; r < p; r++)
            for (long col = 0; col < cols; col++)
            {
                int b = bytes[r * cols + col];
                for (int i = 0; i < 4; i++)
                {
                    int code = ((b >> (2 * i)) & 3) - 1;
                    if (code > 1) throw new ModelFormatException(src.Path, wn, e.ByteOffset + r * cols + col, $"byte {b} holds the 2-bit value 3, which is no ternary code (0, 1, 2 are -1, 0, +1)");
                    codes[(i * p + r) * cols + col] = (sbyte)code;
                }
            }
        float scale = 1f / s[0];
        if (storage == WeightStorage.Stored)
            return StoredLinears.Register(TernaryLinear.Pack(codes, (int)rows, (int)cols, [scale], (int)(rows * cols), format));
        var w = new float[codes.Length];
        for (long i = 0; i < w.LongLength; i++) w[i] = codes[i] * scale;
        return w;
    }

    /// <summary>GPT-2: transformer.h.{i}.*, Conv1D weights [in, out] (transposed here unless <paramref name="conv1d"/> is false), c_attn's q, k, v split.</summary>
    internal static LlamaModel BuildGpt2(ITensorSource src, ModelConfig cfg, DecoderSpec spec, string name, bool conv1d = true,
        WeightStorage storage = WeightStorage.Fp32, LowBitFormat ternary = LowBitFormat.I2S)
    {
        int d = cfg.Dim, h = cfg.MlpDim;
        // Conv1D [in, out] in a folder; GGUF stores them transposed to [out, in] (convert_hf_to_gguf's GPT2Model), so
        // there they can stay as stored
        float[] Conv(string n, int inF, int outF) => conv1d ? Transpose(TensorReading.Read(src, n, inF, outF), inF, outF) : StoredLinears.Read(src, n, outF, inF, storage, ternary);
        float[] R(string n, int len) => TensorReading.Read(src, n, len);
        TensorReading.CheckLayerCount(src, cfg.Layers, i => $"transformer.h.{i}.ln_1.weight", i => $"transformer.h.{i}.ln_2.weight");
        var layers = new LlamaLayer[cfg.Layers];
        for (int i = 0; i < cfg.Layers; i++)
        {
            string p = $"transformer.h.{i}.";
            var qkv = Conv(p + "attn.c_attn.weight", d, 3 * d);
            var b = R(p + "attn.c_attn.bias", 3 * d);
            layers[i] = new LlamaLayer
            {
                AttnNorm = R(p + "ln_1.weight", d), AttnNormBias = R(p + "ln_1.bias", d),
                Wq = StoredLinears.Rows(qkv, d, 0, d), Wk = StoredLinears.Rows(qkv, d, d, 2 * d), Wv = StoredLinears.Rows(qkv, d, 2 * d, 3 * d),
                Bq = b[..d], Bk = b[d..(2 * d)], Bv = b[(2 * d)..],
                Wo = Conv(p + "attn.c_proj.weight", d, d), Bo = R(p + "attn.c_proj.bias", d),
                FfnNorm = R(p + "ln_2.weight", d), FfnNormBias = R(p + "ln_2.bias", d),
                W1 = Conv(p + "mlp.c_fc.weight", d, h), B1 = R(p + "mlp.c_fc.bias", h),
                W2 = Conv(p + "mlp.c_proj.weight", h, d), B2 = R(p + "mlp.c_proj.bias", d),
            };
        }
        var emb = TensorReading.Read(src, "transformer.wte.weight", cfg.Vocab, d);
        var weights = new LlamaWeights
        {
            TokenEmbedding = emb,
            PositionEmbedding = TensorReading.Read(src, "transformer.wpe.weight", cfg.MaxSeq, d),
            Layers = layers,
            FinalNorm = R("transformer.ln_f.weight", d), FinalNormBias = R("transformer.ln_f.bias", d),
            Output = src.Contains("lm_head.weight") ? TensorReading.Read(src, "lm_head.weight", cfg.Vocab, d) : emb,
        };
        return new LlamaModel(cfg, weights, TensorReading.Card(name, src, cfg), spec);
    }

    /// <summary>A safetensors tensor's stored bytes (the packed ternary U8 that ReadF32 does not convert).</summary>
    private static byte[] RawBytes(ITensorSource src, TensorEntry e)
    {
        string file = src is SafetensorsIndex ix ? Path.Combine(Path.GetDirectoryName(ix.Path)!, ix.WeightMap[e.Name]) : src.Path;
        var bytes = new byte[e.ByteLength];
        using var h = File.OpenHandle(file);
        if (RandomAccess.Read(h, bytes, e.ByteOffset) != bytes.Length)
            throw new ModelFormatException(file, e.Name, e.ByteOffset, "tensor data ends before its byte range");
        return bytes;
    }

    private static float[] Transpose(float[] w, int rows, int cols)
    {
        var t = new float[w.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
        return t;
    }
}

/// <summary>A config.json: typed reads that name the key when it is missing or of the wrong type.</summary>
internal sealed class HfConfig
{
    public string Path { get; }
    public JsonElement Root { get; }
    /// <summary>How errors name this object's keys: "" for config.json's top level, "vision_config." for a nested one.</summary>
    public string Prefix { get; }
    private HfConfig(string path, JsonElement root, string prefix = "") { Path = path; Root = root; Prefix = prefix; }

    /// <summary>A nested config object (LLaVA's text_config, vision_config); a missing one names the key.</summary>
    public HfConfig Sub(string key) =>
        Root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Object ? new HfConfig(Path, v, Prefix + key + ".")
        : throw new ModelFormatException(Path, Prefix + key, 0, "required object is missing or not an object");

    /// <summary>A config read from elsewhere (a GGUF file's metadata under config.json's keys); errors name <paramref name="path"/>.</summary>
    internal static HfConfig FromJson(string path, JsonElement root) => new(path, root);

    public static HfConfig Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist", path);
        var root = JsonFiles.Parse(path, File.ReadAllBytes(path), "json").RootElement;
        return root.ValueKind == JsonValueKind.Object ? new HfConfig(path, root) : throw new ModelFormatException(path, "json", 0, "config is not a JSON object");
    }

    public bool Has(string key) => Root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    public int Int(string key, int? fallback = null)
    {
        if (Root.TryGetProperty(key, out var v) && JsonFiles.TryInt32(v, out int i)) return i;
        if (fallback is { } f && (!Root.TryGetProperty(key, out v) || v.ValueKind == JsonValueKind.Null)) return f;
        throw new ModelFormatException(Path, Prefix + key, 0, "required integer key is missing or not an integer");
    }

    public float Float(string key, float fallback)
    {
        if (!Root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        return JsonFiles.TryFloat(v, out float x) ? x : throw new ModelFormatException(Path, Prefix + key, 0, $"{v.GetRawText()} is not a finite float");
    }

    public bool Bool(string key, bool fallback = false) =>
        Root.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

    public string Str(string key) => Root.TryGetProperty(key, out var v) ? JsonFiles.Str(v) ?? "" : "";
}
