using System.Text.Json;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Models;

/// <summary>
/// Builds a <see cref="LlamaModel"/> from a llama2.c checkpoint, a GGUF file, or a Hugging Face folder
/// (config.json + safetensors, single or sharded). Internally everything is in llama2.c's convention:
/// weights [out, in], rotary on interleaved pairs. Hugging Face permutes q/k rows for its rotate-half rotary;
/// the loader undoes that permutation.
/// </summary>
public static class LlamaLoader
{
    private sealed record Names(string Embedding, string FinalNorm, string Output, Func<int, string, string> Layer);

    private static readonly Names Meta = new("tok_embeddings.weight", "norm.weight", "output.weight", (i, n) => n switch
    {
        "attn_norm" => $"layers.{i}.attention_norm.weight",
        "wq" => $"layers.{i}.attention.wq.weight",
        "wk" => $"layers.{i}.attention.wk.weight",
        "wv" => $"layers.{i}.attention.wv.weight",
        "wo" => $"layers.{i}.attention.wo.weight",
        "ffn_norm" => $"layers.{i}.ffn_norm.weight",
        "w1" => $"layers.{i}.feed_forward.w1.weight",
        "w2" => $"layers.{i}.feed_forward.w2.weight",
        "w3" => $"layers.{i}.feed_forward.w3.weight",
        _ => throw new ArgumentException(n),
    });

    private static readonly Names HuggingFace = new("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", (i, n) => n switch
    {
        "attn_norm" => $"model.layers.{i}.input_layernorm.weight",
        "wq" => $"model.layers.{i}.self_attn.q_proj.weight",
        "wk" => $"model.layers.{i}.self_attn.k_proj.weight",
        "wv" => $"model.layers.{i}.self_attn.v_proj.weight",
        "wo" => $"model.layers.{i}.self_attn.o_proj.weight",
        "ffn_norm" => $"model.layers.{i}.post_attention_layernorm.weight",
        "w1" => $"model.layers.{i}.mlp.gate_proj.weight",
        "w2" => $"model.layers.{i}.mlp.down_proj.weight",
        "w3" => $"model.layers.{i}.mlp.up_proj.weight",
        _ => throw new ArgumentException(n),
    });

    public static LlamaModel FromLlama2c(string path, string? name = null)
    {
        using var ck = Llama2cCheckpoint.Open(path);
        var h = ck.Header;
        var cfg = new ModelConfig(ModelFamily.Llama, h.Layers, h.Dim, h.HiddenDim, h.Heads, h.KvHeads, h.Vocab, h.SeqLen,
            PreNorm: true, MlpKind.SwiGlu, NormEps: 1e-5f, RopeTheta: 10000f);
        return Build(ck, cfg, Meta, name ?? System.IO.Path.GetFileNameWithoutExtension(path), unpermute: false, shared: h.SharedClassifier);
    }

    /// <summary>A GGUF decoder of any family llama.cpp names that the engine runs (<see cref="GgufDecoders"/>).</summary>
    public static LlamaModel FromGguf(string path, string? name = null, WeightStorage storage = WeightStorage.Stored) =>
        GgufDecoders.Load(path, name, storage);

    /// <summary>
    /// A Hugging Face LlamaForCausalLM folder: config.json and model.safetensors or model.safetensors.index.json.
    /// Modules listed in <paramref name="absent"/> (a layer-dropped checkpoint) have no tensors in the folder and get
    /// zero weights (one shared array per shape), so the model computes the pruned function even without skips.
    /// </summary>
    public static LlamaModel FromHuggingFace(string folder, string? name = null, ModuleSkips? absent = null, WeightStorage storage = WeightStorage.Stored)
    {
        var cfgPath = System.IO.Path.Combine(folder, "config.json");
        var cfg = ReadHfConfig(cfgPath, out bool tied);
        using var src = HfTensors.Open(folder);
        return Build(src, cfg, HuggingFace, name ?? new DirectoryInfo(folder).Name, unpermute: true,
            shared: tied || !src.Contains(HuggingFace.Output), absent, storage);
    }

    internal static ModelConfig ReadHfConfig(string path, out bool tied)
    {
        var root = JsonFiles.Parse(path, File.ReadAllBytes(path), "json").RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new ModelFormatException(path, "json", 0, "config is not a JSON object");
        int Int(string key, int? fallback = null)
        {
            bool absent = !root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null;
            if (absent && fallback is { } f) return f;
            if (JsonFiles.TryInt32(v, out int i)) return i;
            throw new ModelFormatException(path, key, 0, "required integer key is missing or not an integer");
        }
        float Float(string key, float fallback)
        {
            if (!root.TryGetProperty(key, out var v)) return fallback;
            return JsonFiles.TryFloat(v, out float x) ? x : throw new ModelFormatException(path, key, 0, $"{v.GetRawText()} is not a finite float");
        }
        var archs = root.TryGetProperty("architectures", out var ar) && ar.ValueKind == JsonValueKind.Array
            ? ar.EnumerateArray().Select(x => JsonFiles.Str(x) ?? throw new ModelFormatException(path, "architectures", 0, "entries must be strings")).ToArray() : [];
        if (archs.Length > 0 && !archs.Contains("LlamaForCausalLM"))
            throw new ModelFormatException(path, "architectures", 0, $"'{string.Join(",", archs)}' is not LlamaForCausalLM");
        tied = root.TryGetProperty("tie_word_embeddings", out var t) && t.ValueKind == JsonValueKind.True;
        int heads = Int("num_attention_heads");
        var cfg = new ModelConfig(ModelFamily.Llama, Int("num_hidden_layers"), Int("hidden_size"), Int("intermediate_size"),
            heads, Int("num_key_value_heads", heads), Int("vocab_size"), Int("max_position_embeddings", 2048),
            PreNorm: true, MlpKind.SwiGlu, NormEps: Float("rms_norm_eps", 1e-6f), RopeTheta: Float("rope_theta", 10000f));
        try { cfg.Validate(); }
        catch (ArgumentException e) { throw new ModelFormatException(path, e.ParamName ?? "config", 0, e.Message, e); }
        return cfg;
    }

    private static LlamaModel Build(ITensorSource src, ModelConfig cfg, Names names, string name, bool unpermute, bool shared,
        ModuleSkips? absent = null, WeightStorage storage = WeightStorage.Fp32)
    {
        var zeros = new Dictionary<long, float[]>();
        try { cfg.Validate(); }
        catch (ArgumentException e) { throw new ModelFormatException(src.Path, e.ParamName ?? "config", 0, e.Message, e); }
        // Sizes come from the header or config.json; buffers are sized only after the tensors confirm them, and zero
        // weights for absent modules never exceed what the file holds, so loading allocates O(file), not O(header).
        long present = 0;
        foreach (var t in src.Tensors) present += t.ElementCount;
        float[] Zero(long n) => zeros.TryGetValue(n, out var z) ? z
            : n <= present ? zeros[n] = new float[n]
            : throw new ModelFormatException(src.Path, "config", 0, $"a module of {n} weights is larger than all {present} weights in the file");
        int d = cfg.Dim, kv = cfg.KvDim, h = cfg.MlpDim;
        // Kept as stored like the linears: the embedding lookup decodes only the rows of the tokens it is given.
        var emb = StoredLinears.Read(src, names.Embedding, cfg.Vocab, d, storage);
        TensorReading.CheckLayerCount(src, cfg.Layers, i => names.Layer(i, "attn_norm"), i => names.Layer(i, "ffn_norm"), absent);
        var layers = new LlamaLayer[cfg.Layers];
        for (int i = 0; i < cfg.Layers; i++)
        {
            string N(string n) => names.Layer(i, n);
            bool noAttn = absent?.SkipsAttention(i) ?? false, noMlp = absent?.SkipsMlp(i) ?? false;
            float[] Q(string n, int heads, long rows)
            {
                if (noAttn) return Zero(rows * d);
                var w = StoredLinears.Read(src, N(n), rows, d, storage);
                return unpermute ? UnpermuteRotary(w, heads, d) : w;
            }
            float[] A(string n, params long[] shape) => noAttn ? Zero(shape.Aggregate(1L, (a, b) => a * b)) : TensorReading.Read(src, N(n), shape);
            float[] M(string n, params long[] shape) => noMlp ? Zero(shape.Aggregate(1L, (a, b) => a * b)) : TensorReading.Read(src, N(n), shape);
            // block linears: kept as stored when the file's type has kernels (and storage asks for it)
            float[] LA(string n, long rows, long cols) => noAttn ? Zero(rows * cols) : StoredLinears.Read(src, N(n), rows, cols, storage);
            float[] LM(string n, long rows, long cols) => noMlp ? Zero(rows * cols) : StoredLinears.Read(src, N(n), rows, cols, storage);
            layers[i] = new LlamaLayer
            {
                AttnNorm = A("attn_norm", d),
                Wq = Q("wq", cfg.Heads, d),
                Wk = Q("wk", cfg.KvHeads, kv),
                Wv = LA("wv", kv, d),
                Wo = LA("wo", d, d),
                FfnNorm = M("ffn_norm", d),
                W1 = LM("w1", h, d),
                W2 = LM("w2", d, h),
                W3 = LM("w3", h, d),
            };
        }
        var weights = new LlamaWeights
        {
            TokenEmbedding = emb,
            Layers = layers,
            FinalNorm = TensorReading.Read(src, names.FinalNorm, d),
            Output = shared ? emb : StoredLinears.Read(src, names.Output, cfg.Vocab, d, storage),
        };
        return new LlamaModel(cfg, weights, TensorReading.Card(name, src, cfg));
    }

    /// <summary>
    /// Hugging Face's conversion stores q/k rows of each head as [evens..., odds...] (rotate-half);
    /// llama2.c's interleaved pairs want row 2i + j back from row j * headDim/2 + i.
    /// </summary>
    public static float[] UnpermuteRotary(float[] w, int heads, int cols)
    {
        if (StoredLinears.Linear(w)?.Rows is int stored) return StoredLinears.PermuteRows(w, UnpermutedRows(stored, heads))!;
        int rows = w.Length / cols, hd = rows / heads, half = hd / 2;
        var r = new float[w.Length];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                    Array.Copy(w, (long)(h * hd + j * half + i) * cols, r, (long)(h * hd + 2 * i + j) * cols, cols);
        return r;
    }

    /// <summary>The row map of <see cref="UnpermuteRotary"/>: row 2i + j of a head reads its row j * headDim/2 + i.</summary>
    internal static int[] UnpermutedRows(int rows, int heads)
    {
        int hd = rows / heads, half = hd / 2;
        var map = new int[rows];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                    map[h * hd + 2 * i + j] = h * hd + j * half + i;
        return map;
    }

    /// <summary>The inverse of <see cref="UnpermuteRotary"/>: what Hugging Face's conversion script does.</summary>
    public static float[] PermuteRotary(float[] w, int heads, int cols)
    {
        int rows = w.Length / cols, hd = rows / heads, half = hd / 2;
        var r = new float[w.Length];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                    Array.Copy(w, (long)(h * hd + 2 * i + j) * cols, r, (long)(h * hd + j * half + i) * cols, cols);
        return r;
    }
}

internal static class HfTensors
{
    /// <summary>model.safetensors.index.json (sharded) or model.safetensors in a Hugging Face folder.</summary>
    public static ITensorSource Open(string folder)
    {
        var index = System.IO.Path.Combine(folder, "model.safetensors.index.json");
        if (File.Exists(index)) return SafetensorsIndex.Open(index);
        var single = System.IO.Path.Combine(folder, "model.safetensors");
        if (File.Exists(single)) return SafetensorsFile.Open(single);
        throw new FileNotFoundException($"{folder}: neither model.safetensors nor model.safetensors.index.json is present", single);
    }
}

internal static class TensorReading
{
    /// <summary>
    /// A layer count from a header (num_hidden_layers 2147483647) is checked against the tensors before any per-layer
    /// array is made: the last layer must have one of its tensors, unless both of its modules are absent.
    /// </summary>
    public static void CheckLayerCount(ITensorSource src, int layers, Func<int, string> first, Func<int, string> second, ModuleSkips? absent = null)
    {
        int last = layers - 1;
        bool allAbsent = (absent?.SkipsAttention(last) ?? false) && (absent?.SkipsMlp(last) ?? false);
        if (layers > src.Tensors.Count + (allAbsent ? layers : 0) || (!allAbsent && !src.Contains(first(last)) && !src.Contains(second(last))))
            throw new ModelFormatException(src.Path, "layers", 0,
                $"the header gives {layers} layers but the file has no tensors for layer {last} ({first(last)}); {src.Tensors.Count} tensors in all");
    }

    /// <summary>Reads a tensor as float32 after checking its shape, naming the tensor when it is wrong or missing.</summary>
    public static float[] Read(ITensorSource src, string name, params long[] shape)
    {
        if (!src.Contains(name)) throw new ModelFormatException(src.Path, src is GgufNames g ? g.ToGguf(name) : name, 0, "tensor is missing");
        var e = src.Get(name);
        // Singleton dimensions (e.g. [1, 64] biases, [1, 1, 64] tokens) do not change the layout.
        if (!SameLayout(e.Shape, shape))
            throw new ModelFormatException(src.Path, e.Name, e.ByteOffset, $"shape [{string.Join(", ", e.Shape)}] does not match the expected [{string.Join(", ", shape)}]");
        return src.ReadF32(name);
    }

    // Loops rather than LINQ here and above: LINQ over long has no precompiled code, so it was jitted at every model load.
    private static bool SameLayout(IReadOnlyList<long> got, IReadOnlyList<long> want)
    {
        int i = 0, j = 0;
        while (true)
        {
            while (i < got.Count && got[i] == 1) i++;
            while (j < want.Count && want[j] == 1) j++;
            if (i == got.Count || j == want.Count) return i == got.Count && j == want.Count;
            if (got[i++] != want[j++]) return false;
        }
    }

    public static ModelCard Card(string name, ITensorSource src, ModelConfig cfg)
    {
        // Tensors sharing bytes (tied embeddings) count once.
        var offsets = new HashSet<long>();
        long count = 0, bytes = 0;
        foreach (var t in src.Tensors)
            if (offsets.Add(t.ByteOffset)) { count += t.ElementCount; bytes += t.ByteLength; }
        return new(name, src.Path, src.Format, cfg, count, bytes,
            src.Tensors.Select(t => new TensorCardEntry(t.Name, StoredType(src, t), t.Shape, t.ByteLength)).ToList());
    }

    // GGUF lists block-quantized tensors as U8 bytes; the card names the type they are stored in (Q4_K, Q8_0, ...).
    private static string StoredType(ITensorSource src, TensorEntry t) =>
        (src as GgufFile ?? (src as GgufNames)?.File) is { } g ? g.GgmlTypeOf(t.Name).ToString() : t.DType.ToString();
}
