using Workbench.Engine.Models;

namespace Workbench.Engine.Training;

/// <summary>One trainable tensor: a name (llama2.c's), its shape and its values (row-major, layers stacked first).</summary>
public sealed record ParameterTensor(string Name, int[] Shape, float[] Data)
{
    /// <summary>Matrices (embedding, classifier, block linears) get weight decay; the norm gains do not.</summary>
    public bool Decays => !Name.StartsWith("rms", StringComparison.Ordinal);
}

/// <summary>
/// A Llama decoder's parameters as llama2.c stacks them (token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3,
/// rms_final, and wcls when the classifier is not shared): the layout the optimizer walks and the PyTorch goldens use.
/// Gradients are held in a second instance of the same shapes.
/// </summary>
public sealed class LlamaParameters
{
    public ModelConfig Config { get; }
    public bool SharedOutput { get; }
    public float[] Embedding { get; }
    public float[] AttnNorm { get; }
    public float[] Wq { get; }
    public float[] Wk { get; }
    public float[] Wv { get; }
    public float[] Wo { get; }
    public float[] FfnNorm { get; }
    public float[] W1 { get; }
    public float[] W2 { get; }
    public float[] W3 { get; }
    public float[] FinalNorm { get; }
    /// <summary>The classifier [vocab, dim]: the embedding array itself when shared.</summary>
    public float[] Output { get; }
    public IReadOnlyList<ParameterTensor> Tensors { get; }

    /// <summary>Zero parameters of the given shapes (a gradient buffer).</summary>
    public LlamaParameters(ModelConfig c, bool sharedOutput)
    {
        Config = c;
        SharedOutput = sharedOutput;
        int l = c.Layers, d = c.Dim, kv = c.KvDim, h = c.MlpDim;
        var list = new List<ParameterTensor>
        {
            new("token_embedding", [c.Vocab, d], Embedding = new float[c.Vocab * d]),
            new("rms_att", [l, d], AttnNorm = new float[l * d]),
            new("wq", [l, d, d], Wq = new float[l * d * d]),
            new("wk", [l, kv, d], Wk = new float[l * kv * d]),
            new("wv", [l, kv, d], Wv = new float[l * kv * d]),
            new("wo", [l, d, d], Wo = new float[l * d * d]),
            new("rms_ffn", [l, d], FfnNorm = new float[l * d]),
            new("w1", [l, h, d], W1 = new float[l * h * d]),
            new("w2", [l, d, h], W2 = new float[l * d * h]),
            new("w3", [l, h, d], W3 = new float[l * h * d]),
            new("rms_final", [d], FinalNorm = new float[d]),
        };
        if (sharedOutput) Output = Embedding;
        else list.Add(new("wcls", [c.Vocab, d], Output = new float[c.Vocab * d]));
        Tensors = list;
    }

    /// <summary>
    /// Why the backprop, which implements the plain Llama block (RMSNorm, rotary with one set of frequencies, causal GQA attention
    /// scaled by 1/sqrt(head_dim), SwiGLU, no biases), would not compute this model's loss, or null when it would. A
    /// sliding window at least <paramref name="seq"/> long changes nothing, so it is allowed.
    /// </summary>
    public static string? Unsupported(LlamaModel model, int seq)
    {
        ArgumentNullException.ThrowIfNull(model);
        var s = model.Spec;
        var c = model.Config;
        if (s.Norm != NormKind.Rms || s.NormWeightOffset != 0) return $"its {s.Family} norms are not plain RMSNorm";
        if (s.SandwichNorms) return "it has sandwich norms";
        if (s.QkNorm) return "it norms q and k";
        if (s.SubNorms) return "it has attention / MLP sub-norms";
        if (s.Mlp != DecoderMlp.SwiGlu) return $"its MLP is {s.Mlp}, not SwiGLU";
        if (s.EmbedScale != 1f) return "it scales its embeddings";
        if (s.LearnedPositions) return "it learns absolute positions";
        if (s.AttentionSoftCap != 0 || s.FinalSoftCap != 0) return "it soft-caps scores or logits";
        if (s.AttentionScale != 0 && Math.Abs(s.AttentionScale - 1 / Math.Sqrt(c.HeadDim)) > 1e-6) return "its attention scale is not 1/sqrt(head_dim)";
        if (s.QuantizedActivations) return "its linears are offline-quantized BitLinear layers";
        for (int l = 0; l < c.Layers; l++)
            if (s.WindowOf(l) is > 0 and var w && w < seq) return $"layer {l} attends through a sliding window of {w} < --seq {seq}";
        foreach (var layer in model.Weights.Layers)
        {
            if (new[] { layer.Bq, layer.Bk, layer.Bv, layer.Bo, layer.B1, layer.B2 }.Any(b => b is not null)) return "it has projection biases";
            if (new[] { layer.AttnNormBias, layer.FfnNormBias, layer.QNorm, layer.KNorm, layer.PostAttnNorm, layer.PostFfnNorm,
                    layer.AttnSubNorm, layer.FfnSubNorm }.Any(n => n is not null)) return "it has norm biases or extra norms";
        }
        if (s.RopeInvFreq is { } freq && freq.Any(f => !f.AsSpan().SequenceEqual(freq[0])))
            return "its layers rotate with different frequencies";
        return null;
    }

    /// <summary>A copy of a model's weights (the model's own arrays are never written: its kernels cache packed copies of them).</summary>
    public static LlamaParameters From(LlamaModel model)
    {
        var w = model.Weights;
        var p = new LlamaParameters(model.Config, w.SharedOutput);
        StoredLinears.Fp32(w.TokenEmbedding).CopyTo(p.Embedding, 0);
        w.FinalNorm.CopyTo(p.FinalNorm, 0);
        if (!w.SharedOutput) StoredLinears.Fp32(w.Output).CopyTo(p.Output, 0);
        for (int i = 0; i < w.Layers.Length; i++)
        {
            var l = w.Layers[i];
            p.Put(l.AttnNorm, p.AttnNorm, i); p.Put(l.FfnNorm, p.FfnNorm, i);
            p.Put(l.Wq, p.Wq, i); p.Put(l.Wk, p.Wk, i); p.Put(l.Wv, p.Wv, i); p.Put(l.Wo, p.Wo, i);
            p.Put(l.W1, p.W1, i); p.Put(l.W2, p.W2, i); p.Put(l.W3, p.W3, i);
        }
        return p;
    }

    /// <summary>A new engine model holding copies of these parameters (for evaluation and export).</summary>
    public LlamaModel ToModel(ModelCard card)
    {
        var layers = new LlamaLayer[Config.Layers];
        for (int i = 0; i < layers.Length; i++)
            layers[i] = new LlamaLayer
            {
                AttnNorm = Take(AttnNorm, i), Wq = Take(Wq, i), Wk = Take(Wk, i), Wv = Take(Wv, i), Wo = Take(Wo, i),
                FfnNorm = Take(FfnNorm, i), W1 = Take(W1, i), W2 = Take(W2, i), W3 = Take(W3, i),
            };
        var emb = (float[])Embedding.Clone();
        var weights = new LlamaWeights
        {
            TokenEmbedding = emb, Layers = layers, FinalNorm = (float[])FinalNorm.Clone(),
            Output = SharedOutput ? emb : (float[])Output.Clone(),
        };
        return new LlamaModel(Config, weights, card);
    }

    public LlamaParameters Clone()
    {
        var p = new LlamaParameters(Config, SharedOutput);
        for (int i = 0; i < Tensors.Count; i++) Tensors[i].Data.CopyTo(p.Tensors[i].Data, 0);
        return p;
    }

    public void Clear()
    {
        foreach (var t in Tensors) Array.Clear(t.Data);
    }

    /// <summary>Layer <paramref name="layer"/>'s slice of a stacked tensor.</summary>
    public static Span<float> Slice(float[] stacked, int layers, int layer)
    {
        int size = stacked.Length / layers;
        return stacked.AsSpan(layer * size, size);
    }

    // training needs fp32: a weight kept as stored is dequantized here
    private void Put(float[] src, float[] stacked, int layer) => StoredLinears.Fp32(src).CopyTo(Slice(stacked, Config.Layers, layer));
    private float[] Take(float[] stacked, int layer) => Slice(stacked, Config.Layers, layer).ToArray();
}
