using System.Text;
using System.Text.Json;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Tests.Models;

/// <summary>
/// A test-side converter of a Hugging Face decoder folder to GGUF (F32 tensors), doing what llama.cpp's
/// convert_hf_to_gguf.py does for each family (ggml-org/llama.cpp; gguf-py/gguf/constants.py and tensor_mapping.py name
/// the keys and tensors). Written from those files, not from the engine's loader, so the two can disagree.
/// <list type="bullet">
/// <item>LlamaModel (LlamaForCausalLM, MistralForCausalLM -> arch `llama`): q_proj / k_proj rows permuted by
/// LlamaModel.permute(w, n_head[, n_head_kv]) = w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2), for ggml's
/// NORM rope; Llama 3 rope scaling written as rope_freqs.weight (generate_extra_tensors' rope_factors).</item>
/// <item>Qwen2Model / Qwen3Model (`qwen2`, `qwen3`), Phi3MiniModel (`phi3`): NEOX rope, tensors not permuted; phi3 keeps
/// its fused qkv_proj (attn_qkv) and gate_up_proj (ffn_up).</item>
/// <item>Gemma2Model / Gemma3Model: every tensor whose name ends in norm.weight is written + 1; lm_head skipped (tied);
/// attn_logit_softcapping, final_logit_softcapping, sliding_window keys; Gemma 3's rope.freq_base is the full-attention theta.</item>
/// <item>GPT2Model: c_attn, c_proj, c_fc weights transposed (Conv1D [in, out] -> [out, in]).</item>
/// </list>
/// Three keys are written where the stock converter writes none or another value, because llama.cpp could not reproduce
/// these small goldens otherwise (each noted where it is written): llama.attention.sliding_window for Mistral (llama.cpp's
/// llama arch has no sliding window; the golden's window 16 is active over 24 tokens), {arch}.attention.scale for Gemma
/// (llama.cpp uses 1/sqrt(key_length); the goldens' query_pre_attn_scalar is 32 with head_dim 16) and GPT-2's real
/// feed_forward_length (the converter writes 4 * n_embd; the golden's n_inner is 2 * n_embd).
/// </summary>
internal static class HfToGguf
{
    /// <summary>What to get wrong on purpose (the tests that show a wrong convention fails); Stock: only the converter's own keys.</summary>
    public sealed record Options(bool PermuteLlamaQk = true, bool GemmaNormPlusOne = true, bool Stock = false, bool F16Linears = false);

    public static string Convert(string folder, string outPath, Options? options = null)
    {
        options ??= new Options();
        var c = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json"))).RootElement;
        string hfArch = c.GetProperty("architectures")[0].GetString()!;
        string arch = hfArch switch
        {
            "LlamaForCausalLM" or "MistralForCausalLM" => "llama", "Qwen2ForCausalLM" => "qwen2", "Qwen3ForCausalLM" => "qwen3",
            "Gemma2ForCausalLM" => "gemma2", "Gemma3ForCausalLM" => "gemma3", "Phi3ForCausalLM" => "phi3", "GPT2LMHeadModel" => "gpt2",
            _ => throw new NotSupportedException(hfArch),
        };
        bool gemma = arch is "gemma2" or "gemma3", gpt2 = arch == "gpt2";
        int I(string k) => c.GetProperty(k).GetInt32();
        float F(string k) => c.GetProperty(k).GetSingle();
        bool Has(string k) => c.TryGetProperty(k, out var v) && v.ValueKind != JsonValueKind.Null;
        var rope = Has("rope_parameters") ? c.GetProperty("rope_parameters") : default;
        float Theta() => rope.ValueKind != JsonValueKind.Object ? 10000f
            : rope.TryGetProperty("full_attention", out var full) ? full.GetProperty("rope_theta").GetSingle() : rope.GetProperty("rope_theta").GetSingle();

        var kv = new List<(string Key, object Value)> { ("general.architecture", arch), ("general.alignment", 32u) };
        void K(string key, object v) => kv.Add(($"{arch}.{key}", v));
        int heads = I(gpt2 ? "n_head" : "num_attention_heads"), dim = I(gpt2 ? "n_embd" : "hidden_size");
        int kvHeads = Has("num_key_value_heads") ? I("num_key_value_heads") : heads;
        int headDim = Has("head_dim") ? I("head_dim") : dim / heads;
        if (gpt2)
        {
            K("block_count", (uint)I("n_layer")); K("context_length", (uint)I("n_positions")); K("embedding_length", (uint)dim);
            K("feed_forward_length", (uint)(Has("n_inner") ? I("n_inner") : 4 * dim)); // converter: 4 * n_embd (see summary)
            K("attention.head_count", (uint)heads); K("attention.layer_norm_epsilon", F("layer_norm_epsilon"));
        }
        else
        {
            K("block_count", (uint)I("num_hidden_layers")); K("context_length", (uint)I("max_position_embeddings"));
            K("embedding_length", (uint)dim); K("feed_forward_length", (uint)I("intermediate_size"));
            K("attention.head_count", (uint)heads); K("attention.head_count_kv", (uint)kvHeads);
            K("attention.layer_norm_rms_epsilon", F("rms_norm_eps"));
            if (arch != "gemma2") K("rope.freq_base", Theta()); // Gemma2Model writes none (llama.cpp's default 10000)
            if (Has("head_dim") || gemma) { K("attention.key_length", (uint)headDim); K("attention.value_length", (uint)headDim); }
            if (arch is "llama" or "phi3") K("rope.dimension_count", (uint)headDim);
            if (gemma)
            {
                if (Has("attn_logit_softcapping")) K("attn_logit_softcapping", F("attn_logit_softcapping"));
                if (Has("final_logit_softcapping")) K("final_logit_softcapping", F("final_logit_softcapping"));
                K("attention.sliding_window", (uint)I("sliding_window"));
                // not the converter's: the goldens' query_pre_attn_scalar differs from head_dim (see summary)
                if (!options.Stock && Has("query_pre_attn_scalar") && I("query_pre_attn_scalar") != headDim)
                    K("attention.scale", (float)(1 / Math.Sqrt(I("query_pre_attn_scalar"))));
            }
            if (!options.Stock && hfArch == "MistralForCausalLM" && Has("sliding_window")) K("attention.sliding_window", (uint)I("sliding_window")); // not the converter's
        }

        var tensors = new List<(string Name, long[] Shape, float[] Data)>();
        using var st = SafetensorsFile.Open(Path.Combine(folder, "model.safetensors"));
        foreach (var e in st.Tensors)
        {
            if (gemma && e.Name == "lm_head.weight") continue;
            if (gpt2 && (e.Name.EndsWith(".attn.bias") || e.Name.EndsWith(".attn.masked_bias"))) continue;
            var data = st.ReadF32(e.Name);
            var shape = e.Shape.ToArray();
            if (arch == "llama" && options.PermuteLlamaQk && e.Name.EndsWith("self_attn.q_proj.weight")) data = Permute(data, heads, (int)shape[1]);
            if (arch == "llama" && options.PermuteLlamaQk && e.Name.EndsWith("self_attn.k_proj.weight")) data = Permute(data, kvHeads, (int)shape[1]);
            if (gemma && options.GemmaNormPlusOne && e.Name.EndsWith("norm.weight")) data = data.Select(v => v + 1).ToArray();
            if (gpt2 && (e.Name.EndsWith(".c_attn.weight") || e.Name.EndsWith(".c_proj.weight") || e.Name.EndsWith(".c_fc.weight")))
            {
                data = Transpose(data, (int)shape[0], (int)shape[1]);
                shape = [shape[1], shape[0]];
            }
            tensors.Add((Name(e.Name, gemma), shape, data));
        }
        if (arch == "llama" && rope.ValueKind == JsonValueKind.Object && rope.TryGetProperty("rope_type", out var rt) && rt.GetString() == "llama3")
            tensors.Add(("rope_freqs.weight", [headDim / 2], Llama3Factors(rope, headDim)));
        // llama.cpp's --outtype f16 keeps 1-D tensors (norms, biases) in F32 and writes matrices in F16
        Write(outPath, kv, tensors, options.F16Linears ? t => t.Shape.Length == 2 && t.Name != "token_embd.weight" && t.Name != "position_embd.weight" : null);
        return outPath;
    }

    /// <summary>
    /// A BitNetForCausalLM folder written as bitnet.cpp writes microsoft/bitnet-b1.58-2B-4T (microsoft/BitNet:
    /// utils/convert-helper-bitnet.py runs preprocess-huggingface-bitnet.py, convert-ms-to-gguf-bitnet.py --outtype f32 and
    /// `llama-quantize ... I2_S 1`): general.architecture <paramref name="arch"/> ("bitnet-b1.58", "bitnet-25" or "bitnet"),
    /// its keys under that prefix (add_meta_arch: vocab_size, context_length, embedding_length, block_count,
    /// feed_forward_length, rope.dimension_count = n_embd / n_head, head counts, layer_norm_rms_epsilon, rope.freq_base),
    /// general.file_type 40 (LLAMA_FTYPE_MOSTLY_I2_S), tensors under the fork's names (TensorNameMap: attn_sub_norm,
    /// ffn_sub_norm; q/k NOT permuted, its rope is NEOX; no output.weight, the head is token_embd), token_embd and norms F32, and
    /// the seven projections as I2_S (type 36) in the x86 layout of ../shared/data/goldens/gguf-quants/README.md: 128-value
    /// blocks of 32 bytes (byte j: values j, 32 + j, 64 + j, 96 + j in bits 7..6 .. 1..0; codes 0, 1, 2 = -1, 0, +1), then one
    /// float32 scale, 32 bytes in all after the codes. From a packed folder (bitnet_packed: uint8 [out / 4, in] + weight_scale)
    /// the codes are the folder's and the scale is 1 / weight_scale (I2_S dequantizes to code * scale, transformers' BitLinear
    /// to code / weight_scale); from a master folder (bitnet_master) each matrix is ternarized as preprocess-huggingface-bitnet.py's
    /// quant_weight_fp16 does (s = 1 / max(mean |W|, 1e-5), round(W * s) clamped to [-1, 1]) and the scale is quantize_i2_s's
    /// max |w_t / s| = 1 / s. <paramref name="hiddenActivation"/> writes {arch}.hidden_activation (llama.cpp's key; bitnet.cpp's
    /// converters write none).
    /// </summary>
    public static string ConvertBitNet(string folder, string outPath, string arch = "bitnet-b1.58", string? hiddenActivation = null)
    {
        var c = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json"))).RootElement;
        int I(string k) => c.GetProperty(k).GetInt32();
        int heads = I("num_attention_heads"), dim = I("hidden_size");
        float theta = c.TryGetProperty("rope_theta", out var rt) ? rt.GetSingle() : c.GetProperty("rope_parameters").GetProperty("rope_theta").GetSingle();
        var kv = new List<(string Key, object Value)> { ("general.architecture", arch), ("general.name", "bitnet2b_2501"), ("general.file_type", 40u) };
        void K(string key, object v) => kv.Add(($"{arch}.{key}", v));
        K("vocab_size", (uint)I("vocab_size")); K("context_length", (uint)I("max_position_embeddings")); K("embedding_length", (uint)dim);
        K("block_count", (uint)I("num_hidden_layers")); K("feed_forward_length", (uint)I("intermediate_size"));
        K("rope.dimension_count", (uint)(dim / heads)); K("attention.head_count", (uint)heads);
        K("attention.head_count_kv", (uint)I("num_key_value_heads")); K("attention.layer_norm_rms_epsilon", c.GetProperty("rms_norm_eps").GetSingle());
        K("rope.freq_base", theta);
        if (hiddenActivation is not null) K("hidden_activation", hiddenActivation);

        string[] projections = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
        var tensors = new List<(string Name, long[] Shape, float[] Data)>();
        var i2s = new Dictionary<string, byte[]>();
        using var st = SafetensorsFile.Open(Path.Combine(folder, "model.safetensors"));
        foreach (var e in st.Tensors)
        {
            if (e.Name.EndsWith(".weight_scale")) continue;
            string n = BitNetName(e.Name);
            if (projections.Any(p => e.Name.EndsWith($".{p}.weight")))
            {
                var (codes, rows, cols, scale) = e.DType == DType.U8 ? Unpack(st, e) : Ternarize(st.ReadF32(e.Name), e.Shape[0], e.Shape[1]);
                i2s[n] = I2S(codes, scale);
                tensors.Add((n, [rows, cols], []));
            }
            else tensors.Add((n, e.Shape.ToArray(), st.ReadF32(e.Name)));
        }
        Write(outPath, kv, tensors, encode: t => i2s.TryGetValue(t.Name, out var b) ? (36u, b) : null);
        return outPath;
    }

    /// <summary>transformers' unpack_weights: code[i * P + r, c] = ((byte[r, c] >> 2i) &amp; 3) - 1, P = out / 4; scale 1 / weight_scale.</summary>
    private static (sbyte[] Codes, long Rows, long Cols, float Scale) Unpack(SafetensorsFile st, TensorEntry e)
    {
        long p = e.Shape[0], cols = e.Shape[1], rows = 4 * p;
        var bytes = new byte[e.ByteLength];
        using (var h = File.OpenHandle(st.Path)) RandomAccess.Read(h, bytes, e.ByteOffset);
        var codes = new sbyte[rows * cols];
        for (long r = 0; r < p; r++)
            for (long col = 0; col < cols; col++)
                for (int i = 0; i < 4; i++) codes[(i * p + r) * cols + col] = (sbyte)(((bytes[r * cols + col] >> (2 * i)) & 3) - 1);
        float ws = st.ReadF32(e.Name + "_scale")[0];
        return (codes, rows, cols, 1f / ws);
    }

    /// <summary>quant_weight_fp16: s = 1 / max(mean |W|, 1e-5) (mean in float32 as torch), codes round(W * s) clamped; scale 1 / s.</summary>
    private static (sbyte[] Codes, long Rows, long Cols, float Scale) Ternarize(float[] w, long rows, long cols)
    {
        double sum = 0;
        foreach (var v in w) sum += Math.Abs(v);
        float s = 1f / MathF.Max((float)(sum / w.Length), 1e-5f);
        var codes = w.Select(v => (sbyte)Math.Clamp(MathF.Round(v * s), -1f, 1f)).ToArray();
        return (codes, rows, cols, 1f / s);
    }

    /// <summary>quantize_i2_s's x86 layout (ACT_PARALLEL, QK_I2_S = 128) and the float32 scale after the codes (32 bytes with padding).</summary>
    public static byte[] I2S(sbyte[] codes, float scale)
    {
        if (codes.Length % 128 != 0) throw new ArgumentException("I2_S needs whole 128-value blocks");
        var b = new byte[codes.Length / 4 + 32];
        for (int blk = 0; blk < codes.Length / 128; blk++)
            for (int j = 0; j < 32; j++)
            {
                int v = 0;
                for (int g = 0; g < 4; g++) v |= (codes[blk * 128 + 32 * g + j] + 1) << (6 - 2 * g);
                b[blk * 32 + j] = (byte)v;
            }
        BitConverter.TryWriteBytes(b.AsSpan(codes.Length / 4), scale);
        return b;
    }

    /// <summary>The fork's TensorNameMap for the BitNet architectures.</summary>
    private static string BitNetName(string hf)
    {
        switch (hf)
        {
            case "model.embed_tokens.weight": return "token_embd.weight";
            case "model.norm.weight": return "output_norm.weight";
        }
        var parts = hf.Split('.');
        string mid = string.Join('.', parts[3..^1]);
        string g = mid switch
        {
            "input_layernorm" => "attn_norm", "post_attention_layernorm" => "ffn_norm",
            "self_attn.q_proj" => "attn_q", "self_attn.k_proj" => "attn_k", "self_attn.v_proj" => "attn_v", "self_attn.o_proj" => "attn_output",
            "self_attn.attn_sub_norm" => "attn_sub_norm", "mlp.ffn_sub_norm" => "ffn_sub_norm",
            "mlp.gate_proj" => "ffn_gate", "mlp.up_proj" => "ffn_up", "mlp.down_proj" => "ffn_down",
            _ => throw new NotSupportedException(hf),
        };
        return $"blk.{parts[2]}.{g}.{parts[^1]}";
    }

    /// <summary>LlamaModel.permute: row h*hd + 2i + j of the result is row h*hd + j*hd/2 + i of w ([rows, cols]).</summary>
    public static float[] Permute(float[] w, int heads, int cols)
    {
        int rows = w.Length / cols, hd = rows / heads, half = hd / 2;
        var r = new float[w.Length];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                    Array.Copy(w, (long)(h * hd + j * half + i) * cols, r, (long)(h * hd + 2 * i + j) * cols, cols);
        return r;
    }

    /// <summary>convert_hf_to_gguf's Llama 3 rope_factors: 1 above the high-frequency band, factor below the low one, smoothed between.</summary>
    private static float[] Llama3Factors(JsonElement rope, int headDim)
    {
        double theta = rope.GetProperty("rope_theta").GetDouble(), factor = rope.GetProperty("factor").GetDouble();
        double low = rope.GetProperty("low_freq_factor").GetDouble(), high = rope.GetProperty("high_freq_factor").GetDouble();
        double old = rope.GetProperty("original_max_position_embeddings").GetDouble();
        double lowWave = old / low, highWave = old / high;
        var f = new float[headDim / 2];
        for (int i = 0; i < f.Length; i++)
        {
            double freq = (float)(1.0 / Math.Pow(theta, 2.0 * i / headDim)), wave = 2 * Math.PI / freq;
            f[i] = (float)(wave < highWave ? 1 : wave > lowWave ? factor : 1 / ((1 - (old / wave - low) / (high - low)) / factor + (old / wave - low) / (high - low)));
        }
        return f;
    }

    private static float[] Transpose(float[] w, int rows, int cols)
    {
        var t = new float[w.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
        return t;
    }

    /// <summary>tensor_mapping.py's names for these families.</summary>
    private static string Name(string hf, bool gemma)
    {
        var top = new Dictionary<string, string>
        {
            ["model.embed_tokens.weight"] = "token_embd.weight", ["model.norm.weight"] = "output_norm.weight", ["lm_head.weight"] = "output.weight",
            ["transformer.wte.weight"] = "token_embd.weight", ["transformer.wpe.weight"] = "position_embd.weight",
            ["transformer.ln_f.weight"] = "output_norm.weight", ["transformer.ln_f.bias"] = "output_norm.bias",
        };
        if (top.TryGetValue(hf, out var t)) return t;
        var parts = hf.Split('.');
        const int at = 2; // model.layers.N.* and transformer.h.N.*: the layer index is the third part
        string n = parts[at], suffix = parts[^1], mid = string.Join('.', parts[(at + 1)..^1]);
        string g = mid switch
        {
            "input_layernorm" or "ln_1" => "attn_norm",
            "post_attention_layernorm" => gemma ? "post_attention_norm" : "ffn_norm",
            "pre_feedforward_layernorm" or "ln_2" => "ffn_norm",
            "post_feedforward_layernorm" => "post_ffw_norm",
            "self_attn.q_proj" => "attn_q", "self_attn.k_proj" => "attn_k", "self_attn.v_proj" => "attn_v",
            "self_attn.o_proj" or "attn.c_proj" => "attn_output", "self_attn.qkv_proj" or "attn.c_attn" => "attn_qkv",
            "self_attn.q_norm" => "attn_q_norm", "self_attn.k_norm" => "attn_k_norm",
            "mlp.gate_proj" => "ffn_gate", "mlp.up_proj" or "mlp.gate_up_proj" or "mlp.c_fc" => "ffn_up",
            "mlp.down_proj" or "mlp.c_proj" => "ffn_down",
            _ => throw new NotSupportedException(hf),
        };
        return $"blk.{n}.{g}.{suffix}";
    }

    /// <summary>GGUF v3: header, typed key/values, tensor infos (ne = shape reversed; F32, or F16 where asked), data aligned to 32.</summary>
    public static void Write(string path, IReadOnlyList<(string Key, object Value)> kv, IReadOnlyList<(string Name, long[] Shape, float[] Data)> tensors,
        Func<(string Name, long[] Shape, float[] Data), bool>? f16 = null, Func<(string Name, long[] Shape, float[] Data), (uint Type, byte[] Bytes)?>? encode = null)
    {
        using var f = File.Create(path);
        using var w = new BinaryWriter(f);
        void Str(string s) { var b = Encoding.UTF8.GetBytes(s); w.Write((ulong)b.Length); w.Write(b); }
        w.Write(GgufFile.Magic); w.Write(3u); w.Write((ulong)tensors.Count); w.Write((ulong)kv.Count);
        foreach (var (key, value) in kv)
        {
            Str(key);
            switch (value)
            {
                case uint u: w.Write(4u); w.Write(u); break;
                case float x: w.Write(6u); w.Write(x); break;
                case bool b: w.Write(7u); w.Write((byte)(b ? 1 : 0)); break;
                case string s: w.Write(8u); Str(s); break;
                default: throw new NotSupportedException(value.GetType().Name);
            }
        }
        var encoded = tensors.Select(t => encode?.Invoke(t)).ToArray();
        long offset = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            bool half = f16?.Invoke(t) ?? false;
            Str(t.Name); w.Write((uint)t.Shape.Length);
            foreach (var d in t.Shape.Reverse()) w.Write((ulong)d);
            w.Write(encoded[i]?.Type ?? (half ? 1u : 0u)); // an encoded type, F16 or F32
            w.Write((ulong)offset);
            offset += ((encoded[i]?.Bytes.LongLength ?? (half ? 2L : 4L) * t.Data.Length) + 31) / 32 * 32;
        }
        while (f.Position % 32 != 0) w.Write((byte)0);
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            bool half = f16?.Invoke(t) ?? false;
            if (encoded[i] is { } e) w.Write(e.Bytes);
            else foreach (var v in t.Data) { if (half) w.Write((Half)v); else w.Write(v); }
            while (f.Position % 32 != 0) w.Write((byte)0);
        }
    }
}
