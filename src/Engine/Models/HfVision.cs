using System.Text.Json;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Models;

/// <summary>
/// Hugging Face vision folders: ViTForImageClassification (into <see cref="VitModel"/>) and
/// LlavaForConditionalGeneration (a CLIP vision tower, also a <see cref="VitModel"/>, a projector, and the Llama text
/// model through <see cref="HfDecoders"/>). Every size and epsilon comes from config.json and the tensor shapes.
/// </summary>
public static class HfVision
{
    public const string VitArchitecture = "ViTForImageClassification", LlavaArchitecture = "LlavaForConditionalGeneration";

    /// <summary>OpenAI CLIP's pixel mean and std (CLIPImageProcessor's defaults), used when no preprocessor_config.json says otherwise.</summary>
    public static readonly double[] ClipMean = [0.48145466, 0.4578275, 0.40821073], ClipStd = [0.26862954, 0.26130258, 0.27577711];
    /// <summary>ViTImageProcessor's defaults (IMAGENET_STANDARD_MEAN / STD).</summary>
    public static readonly double[] VitMean = [0.5, 0.5, 0.5], VitStd = [0.5, 0.5, 0.5];

    /// <summary>architectures[0] of a config.json, or "" when it has none.</summary>
    public static string Architecture(string configPath)
    {
        var c = HfConfig.Read(configPath);
        return c.Root.TryGetProperty("architectures", out var ar) && ar.ValueKind == JsonValueKind.Array && ar.GetArrayLength() > 0
            ? JsonFiles.Str(ar[0]) ?? "" : "";
    }

    /// <summary>A vision folder as a loaded model, or null when config.json names another architecture.</summary>
    public static LoadedModel? TryLoad(string folder, Func<int, Text.ITextTokenizer?> tokenizer, WeightStorage storage = WeightStorage.Stored)
    {
        var arch = Architecture(Path.Combine(folder, "config.json"));
        string name = new DirectoryInfo(folder).Name;
        if (arch == VitArchitecture) return new ImageClassifier(name, LoadVit(folder));
        if (arch != LlavaArchitecture) return null;
        var llava = LoadLlava(folder, storage);
        return new VisionLanguageModel(name, llava, tokenizer(llava.Config.Vocab));
    }

    /// <summary>A ViTForImageClassification folder: vit.embeddings.*, vit.encoder.layer.{i}.*, vit.layernorm, classifier.</summary>
    public static VitModel LoadVit(string folder)
    {
        var cfgPath = Path.Combine(folder, "config.json");
        var c = HfConfig.Read(cfgPath);
        using var src = HfTensors.Open(folder);
        var (mean, std, from) = Preprocessing(folder, VitMean, VitStd, "ViTImageProcessor's default mean/std (0.5)");
        return Tower(c, src, "vit.", clip: false, (mean, std, from), new DirectoryInfo(folder).Name, withHead: true);
    }

    /// <summary>
    /// A ViT-shaped encoder from a config object and the tensors under <paramref name="p"/>: the HF ViT (conv bias, cls_token,
    /// position_embeddings, layernorm_before/after, final layernorm and classifier) or the CLIP vision model (no conv bias,
    /// class_embedding, position_embedding, pre_layrnorm, layer_norm1/2, quick_gelu; its post_layernorm is not used by LLaVA).
    /// </summary>
    internal static VitModel Tower(HfConfig c, ITensorSource src, string p, bool clip, (double[] Mean, double[] Std, string From) norm, string name, bool withHead)
    {
        int d = c.Int("hidden_size"), layers = c.Int("num_hidden_layers"), heads = c.Int("num_attention_heads"), mlp = c.Int("intermediate_size");
        int image = c.Int("image_size"), patch = c.Int("patch_size"), channels = c.Int("num_channels", 3);
        if (channels != VitModel.Channels) throw new ModelFormatException(c.Path, c.Prefix + "num_channels", 0, $"{channels} channels: only RGB (3) is supported");
        if (patch <= 0 || image <= 0 || image % patch != 0)
            throw new ModelFormatException(c.Path, c.Prefix + "patch_size", 0, $"patch {patch} does not divide image_size {image}");
        if (heads <= 0 || d % heads != 0) throw new ModelFormatException(c.Path, c.Prefix + "num_attention_heads", 0, $"{heads} heads do not divide hidden_size {d}");
        if (layers <= 0 || layers > src.Tensors.Count) throw new ModelFormatException(c.Path, c.Prefix + "num_hidden_layers", 0, $"{layers} layers for {src.Tensors.Count} tensors");
        float eps = c.Float("layer_norm_eps", clip ? 1e-5f : 1e-12f);
        var act = c.Str("hidden_act");
        var kind = (act == "" ? (clip ? "quick_gelu" : "gelu") : act) switch
        {
            "gelu" => MlpKind.GeluErf,
            "gelu_new" or "gelu_pytorch_tanh" => MlpKind.GeluTanh,
            "quick_gelu" => MlpKind.QuickGelu,
            _ => throw new ModelFormatException(c.Path, c.Prefix + "hidden_act", 0, $"'{act}' is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, quick_gelu)"),
        };
        int grid = image / patch, tokens = grid * grid + 1, patchVec = channels * patch * patch;
        float[] R(string n, params long[] shape) => TensorReading.Read(src, p + n, shape);
        bool qkvBias = clip || c.Bool("qkv_bias", true);
        float[] Bias(string n, int len) => qkvBias ? R(n, len) : new float[len];

        var blocks = new VitModel.Block[layers];
        TensorReading.CheckLayerCount(src, layers, i => p + (clip ? $"encoder.layers.{i}.layer_norm1.weight" : $"encoder.layer.{i}.layernorm_before.weight"),
            i => p + (clip ? $"encoder.layers.{i}.mlp.fc2.weight" : $"encoder.layer.{i}.output.dense.weight"));
        for (int i = 0; i < layers; i++)
        {
            if (clip)
            {
                string l = $"encoder.layers.{i}.", a = l + "self_attn.";
                blocks[i] = new VitModel.Block(R(l + "layer_norm1.weight", d), R(l + "layer_norm1.bias", d),
                    R(a + "q_proj.weight", d, d), R(a + "q_proj.bias", d), R(a + "k_proj.weight", d, d), R(a + "k_proj.bias", d),
                    R(a + "v_proj.weight", d, d), R(a + "v_proj.bias", d), R(a + "out_proj.weight", d, d), R(a + "out_proj.bias", d),
                    R(l + "layer_norm2.weight", d), R(l + "layer_norm2.bias", d),
                    R(l + "mlp.fc1.weight", mlp, d), R(l + "mlp.fc1.bias", mlp), R(l + "mlp.fc2.weight", d, mlp), R(l + "mlp.fc2.bias", d));
            }
            else
            {
                string l = $"encoder.layer.{i}.", a = l + "attention.attention.";
                blocks[i] = new VitModel.Block(R(l + "layernorm_before.weight", d), R(l + "layernorm_before.bias", d),
                    R(a + "query.weight", d, d), Bias(a + "query.bias", d), R(a + "key.weight", d, d), Bias(a + "key.bias", d),
                    R(a + "value.weight", d, d), Bias(a + "value.bias", d),
                    R(l + "attention.output.dense.weight", d, d), R(l + "attention.output.dense.bias", d),
                    R(l + "layernorm_after.weight", d), R(l + "layernorm_after.bias", d),
                    R(l + "intermediate.dense.weight", mlp, d), R(l + "intermediate.dense.bias", mlp),
                    R(l + "output.dense.weight", d, mlp), R(l + "output.dense.bias", d));
            }
        }
        // The conv weight [d, C, P, P] is already [out, in] with in = (channel, dy, dx): the patch vector order VitModel uses.
        var e = clip ? "embeddings." : "embeddings.";
        var patchW = R(e + (clip ? "patch_embedding.weight" : "patch_embeddings.projection.weight"), d, channels, patch, patch);
        float[]? patchB = clip ? null : R(e + "patch_embeddings.projection.bias", d);
        var cls = clip ? R(e + "class_embedding", d) : R(e + "cls_token", 1, 1, d);
        var pos = clip ? R(e + "position_embedding.weight", tokens, d) : R(e + "position_embeddings", 1, tokens, d);
        float[]? headW = null, headB = null, lnG = null, lnB = null;
        int classes = 0;
        if (withHead)
        {
            lnG = R("layernorm.weight", d);
            lnB = R("layernorm.bias", d);
            const string head = "classifier.weight";
            if (!src.Contains(head)) throw new ModelFormatException(src.Path, head, 0, "tensor is missing");
            var hs = src.Get(head).Shape;
            if (hs.Length != 2 || hs[1] != d || hs[0] <= 0 || hs[0] > int.MaxValue)
                throw new ModelFormatException(src.Path, head, src.Get(head).ByteOffset, $"shape [{string.Join(", ", hs)}] is not [classes, {d}]");
            classes = (int)hs[0];
            headW = TensorReading.Read(src, head, classes, d);
            headB = TensorReading.Read(src, "classifier.bias", classes);
        }
        var config = new ModelConfig(ModelFamily.Vit, layers, d, mlp, heads, heads, Math.Max(classes, 1), tokens, PreNorm: true, kind, eps);
        try { config.Validate(); }
        catch (ArgumentException ex) { throw new ModelFormatException(c.Path, c.Prefix + (ex.ParamName ?? "config"), 0, ex.Message, ex); }
        var tensors = src.Tensors.Where(t => t.Name.StartsWith(p, StringComparison.Ordinal) || (withHead && t.Name.StartsWith("classifier.", StringComparison.Ordinal))).ToList();
        var card = new ModelCard(name, src.Path, src.Format, config, tensors.Sum(t => t.ElementCount), tensors.Sum(t => t.ByteLength),
            tensors.Select(t => new TensorCardEntry(t.Name, t.DType.ToString(), t.Shape, t.ByteLength)).ToList());
        return new VitModel(src.Path, new VitModel.Parts(config, card, patch, patchW, patchB, cls, pos,
            clip ? R("pre_layrnorm.weight", d) : null, clip ? R("pre_layrnorm.bias", d) : null, blocks, lnG, lnB, headW, headB, norm.Mean, norm.Std, norm.From,
            Labels: withHead ? Labels(c, classes) : null));
    }

    /// <summary>config.json's id2label as a list indexed by class, or null when it is absent or does not name every class once.</summary>
    private static string[]? Labels(HfConfig c, int classes)
    {
        if (!c.Root.TryGetProperty("id2label", out var map) || map.ValueKind != JsonValueKind.Object) return null;
        var names = new string?[classes];
        foreach (var p in map.EnumerateObject())
            if (int.TryParse(p.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i) && i < classes && p.Value.ValueKind == JsonValueKind.String)
                names[i] = p.Value.GetString();
        return names.All(n => n is not null) ? names.Select(n => n!).ToArray() : null;
    }

    /// <summary>preprocessor_config.json's image_mean / image_std when the folder has them, else the given defaults; and which it was.</summary>
    public static (double[] Mean, double[] Std, string From) Preprocessing(string folder, double[] mean, double[] std, string defaults)
    {
        var path = Path.Combine(folder, "preprocessor_config.json");
        if (!File.Exists(path)) return (mean, std, defaults + " (no preprocessor_config.json)");
        var c = HfConfig.Read(path);
        double[] Three(string key, double[] fallback)
        {
            if (!c.Root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
            if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() != 3 || v.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.Number))
                throw new ModelFormatException(path, key, 0, $"{v.GetRawText()} is not three numbers");
            var r = v.EnumerateArray().Select(x => x.GetDouble()).ToArray();
            if (key == "image_std" && r.Any(x => !(x > 0))) throw new ModelFormatException(path, key, 0, "standard deviations must be positive");
            return r;
        }
        return (Three("image_mean", mean), Three("image_std", std), "preprocessor_config.json's image_mean/image_std");
    }

    /// <summary>
    /// A LlavaForConditionalGeneration folder. Tensor names as transformers 5.17's save_pretrained writes them
    /// (language_model.model.*, language_model.lm_head.weight, vision_tower.*, multi_modal_projector.*) or in the
    /// model.language_model.* / model.vision_tower.* form; a vision_tower.vision_model.* tower is read as well.
    /// </summary>
    public static LlavaModel LoadLlava(string folder, WeightStorage storage = WeightStorage.Stored)
    {
        var cfgPath = Path.Combine(folder, "config.json");
        var c = HfConfig.Read(cfgPath);
        var text = c.Sub("text_config");
        var vision = c.Sub("vision_config");
        var textType = text.Str("model_type");
        if (textType is not ("llama" or ""))
            throw new ModelFormatException(cfgPath, "text_config.model_type", 0, $"'{textType}' is not supported as LLaVA's language model (supported: llama)");
        var visionType = vision.Str("model_type");
        if (visionType is not ("clip_vision_model" or ""))
            throw new ModelFormatException(cfgPath, "vision_config.model_type", 0, $"'{visionType}' is not supported as LLaVA's vision tower (supported: clip_vision_model)");
        int imageToken = c.Int(c.Has("image_token_index") ? "image_token_index" : "image_token_id");
        if (!c.Root.TryGetProperty("vision_feature_layer", out var fl) || !JsonFiles.TryInt32(fl, out int featureLayer))
            throw new ModelFormatException(cfgPath, "vision_feature_layer", 0, "required integer is missing (a list of layers is not supported)");
        var strategy = c.Str("vision_feature_select_strategy");
        if (strategy is not ("default" or "full"))
            throw new ModelFormatException(cfgPath, "vision_feature_select_strategy", 0, $"'{strategy}' is not supported (supported: default, full)");
        var act = c.Str("projector_hidden_act");
        if (act is not ("gelu" or ""))
            throw new ModelFormatException(cfgPath, "projector_hidden_act", 0, $"'{act}' is not supported (supported: gelu)");

        using var src = HfTensors.Open(folder);
        bool nested = src.Contains("model.language_model.embed_tokens.weight");
        using var lm = new RenamedSource(src, n => nested ? (n.StartsWith("model.", StringComparison.Ordinal) ? "model.language_model." + n[6..] : n) : "language_model." + n);
        string vp = nested ? "model.vision_tower." : "vision_tower.";
        if (src.Contains(vp + "vision_model.embeddings.class_embedding")) vp += "vision_model.";
        string pp = nested ? "model.multi_modal_projector." : "multi_modal_projector.";

        var (cfg, spec) = HfDecoders.Describe(text, "llama");
        var textModel = HfDecoders.Build(lm, cfg, spec, text, "language_model", text.Bool("tie_word_embeddings", c.Bool("tie_word_embeddings")), storage);
        var norm = Preprocessing(folder, ClipMean, ClipStd, "CLIP's default mean/std");
        var tower = Tower(vision, src, vp, clip: true, norm, "vision_tower", withHead: false);

        int vl = tower.Config.Layers;
        int run = featureLayer < 0 ? vl + 1 + featureLayer : featureLayer;  // hidden_states[k]: k = 0 embeddings, k = i + 1 output of layer i
        if (run < 0 || run > vl)
            throw new ModelFormatException(cfgPath, "vision_feature_layer", 0, $"{featureLayer} is outside the tower's hidden states (-{vl + 1}..{vl})");
        int vd = tower.Config.Dim, td = cfg.Dim;
        bool bias = c.Bool("multimodal_projector_bias", true);
        var w1 = StoredLinears.Read(src, pp + "linear_1.weight", td, vd, storage);
        var w2 = StoredLinears.Read(src, pp + "linear_2.weight", td, td, storage);
        var b1 = bias ? TensorReading.Read(src, pp + "linear_1.bias", td) : null;
        var b2 = bias ? TensorReading.Read(src, pp + "linear_2.bias", td) : null;
        var name = new DirectoryInfo(folder).Name;
        var card = new ModelCard(name, src.Path, src.Format, cfg, src.Tensors.Sum(t => t.ElementCount), src.Tensors.Sum(t => t.ByteLength),
            src.Tensors.Select(t => new TensorCardEntry(t.Name, t.DType.ToString(), t.Shape, t.ByteLength)).ToList());
        int imageTokens = tower.PatchGrid * tower.PatchGrid + (strategy == "full" ? 1 : 0);
        int seqLen = c.Int("image_seq_length", imageTokens);
        if (seqLen != imageTokens)
            throw new ModelFormatException(cfgPath, "image_seq_length", 0, $"{seqLen} image tokens, but the tower gives {imageTokens} features ({strategy} strategy)");
        return new LlavaModel(textModel, tower, new LlavaModel.Projector(w1, b1, w2, b2), imageToken, run, strategy == "default", card);
    }

    /// <summary>The tensors of a source under other names (LLaVA's text model as a plain Llama folder would name them).</summary>
    private sealed class RenamedSource(ITensorSource inner, Func<string, string> rename) : ITensorSource
    {
        public string Path => inner.Path;
        public string Format => inner.Format;
        public IReadOnlyList<TensorEntry> Tensors => inner.Tensors;
        public IReadOnlyDictionary<string, object> Metadata => inner.Metadata;
        public bool Contains(string name) => inner.Contains(rename(name));
        public TensorEntry Get(string name) => inner.Get(rename(name));
        public float[] ReadF32(string name) => inner.ReadF32(rename(name));
        public MappedTensor? Map(string name) => inner.Map(rename(name));
        public void Dispose() { }
    }
}
