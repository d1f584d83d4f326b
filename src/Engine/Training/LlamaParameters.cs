using Workbench.Engine.Models;

namespace Workbench.Engine.Training;

/// <summary>One trainable tensor: a name (llama2.c's), its shape and its values (row-major, layers stacked first).</summary>
public sealed record ParameterTensor(string Name, int[] Shape, float[] Data)
{
    /// <summary>Matrices (embedding, classifier, block linears) get weight decay; the norm gains and the biases do not.</summary>
    public bool Decays => !Name.StartsWith("rms", StringComparison.Ordinal) && !Name.StartsWith("b", StringComparison.Ordinal);
}

/// <summary>
/// A Llama decoder's parameters as llama2.c stacks them (token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3,
/// rms_final, and wcls when the classifier is not shared): the layout the optimizer walks and the PyTorch goldens use.
/// A block that does more (<see cref="DecoderSpec"/>) adds its tensors after those, in the same stacked layout:
/// bq, bk, bv (and bo) for projection biases (Qwen2), rms_q, rms_k [layers, head_dim] for q/k RMSNorm (Qwen3),
/// rms_attn_sub [layers, q_dim] and rms_ffn_sub [layers, mlp] for BitNet's sub-norms, rms_post_att and rms_post_ffn
/// [layers, dim] for Gemma's sandwich norms; GPT-2 has no w3 and adds b_att_norm, b_ffn_norm, b_final_norm (LayerNorm),
/// b1, b2 (MLP biases) and wpe (learned positions).
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
    /// <summary>Up projection; null for an ungated MLP (GPT-2).</summary>
    public float[]? W3 { get; }
    public float[] FinalNorm { get; }
    /// <summary>The classifier [vocab, dim]: the embedding array itself when shared.</summary>
    public float[] Output { get; }
    /// <summary>Projection biases [layers, q_dim] / [layers, kv_dim] / [layers, dim]; null when the block has none.</summary>
    public float[]? Bq { get; }
    public float[]? Bk { get; }
    public float[]? Bv { get; }
    public float[]? Bo { get; }
    /// <summary>RMSNorm weights over head_dim of every query / key head, [layers, head_dim] (spec QkNorm).</summary>
    public float[]? QNorm { get; }
    public float[]? KNorm { get; }
    /// <summary>BitNet's sub-norm weights over the attention output [layers, q_dim] and the gated product [layers, mlp] (spec SubNorms).</summary>
    public float[]? AttnSubNorm { get; }
    public float[]? FfnSubNorm { get; }
    /// <summary>Gemma's post-attention and post-MLP norm weights [layers, dim] (spec SandwichNorms), stored with Gemma's 1 added like every norm of it.</summary>
    public float[]? PostAttnNorm { get; }
    public float[]? PostFfnNorm { get; }
    /// <summary>GPT-2: LayerNorm biases [layers, dim] and [dim], MLP biases [layers, mlp] / [layers, dim], learned positions [max positions, dim].</summary>
    public float[]? AttnNormBias { get; }
    public float[]? FfnNormBias { get; }
    public float[]? FinalNormBias { get; }
    public float[]? B1 { get; }
    public float[]? B2 { get; }
    public float[]? PositionEmbedding { get; }
    /// <summary>What the block does: the backprop reads it (MLP, window, rotary), the tensors above follow it.</summary>
    public DecoderSpec Spec { get; }
    public IReadOnlyList<ParameterTensor> Tensors { get; }

    /// <summary>
    /// Zero parameters of the given shapes (a gradient buffer): the Llama block's, plus what <paramref name="spec"/> adds
    /// (q/k norms, sub-norms), plus q, k, v biases with <paramref name="qkvBias"/> and the o_proj bias with <paramref name="oBias"/>.
    /// </summary>
    public LlamaParameters(ModelConfig c, bool sharedOutput, DecoderSpec? spec = null, bool qkvBias = false, bool oBias = false, bool mlpBias = false)
    {
        Config = c;
        SharedOutput = sharedOutput;
        Spec = spec ?? DecoderSpec.Llama2;
        int l = c.Layers, d = c.Dim, qd = c.QDim, kv = c.KvDim, h = c.MlpDim, hd = c.HeadDim;
        var list = new List<ParameterTensor>
        {
            new("token_embedding", [c.Vocab, d], Embedding = new float[c.Vocab * d]),
            new("rms_att", [l, d], AttnNorm = new float[l * d]),
            new("wq", [l, qd, d], Wq = new float[l * qd * d]),
            new("wk", [l, kv, d], Wk = new float[l * kv * d]),
            new("wv", [l, kv, d], Wv = new float[l * kv * d]),
            new("wo", [l, d, qd], Wo = new float[l * d * qd]),
            new("rms_ffn", [l, d], FfnNorm = new float[l * d]),
            new("w1", [l, h, d], W1 = new float[l * h * d]),
            new("w2", [l, d, h], W2 = new float[l * d * h]),
        };
        if (Gated(spec ?? DecoderSpec.Llama2)) list.Add(new("w3", [l, h, d], W3 = new float[l * h * d]));
        list.Add(new("rms_final", [d], FinalNorm = new float[d]));
        if (sharedOutput) Output = Embedding;
        else list.Add(new("wcls", [c.Vocab, d], Output = new float[c.Vocab * d]));
        if (qkvBias)
        {
            list.Add(new("bq", [l, qd], Bq = new float[l * qd]));
            list.Add(new("bk", [l, kv], Bk = new float[l * kv]));
            list.Add(new("bv", [l, kv], Bv = new float[l * kv]));
        }
        if (oBias) list.Add(new("bo", [l, d], Bo = new float[l * d]));
        if (Spec.QkNorm)
        {
            list.Add(new("rms_q", [l, hd], QNorm = new float[l * hd]));
            list.Add(new("rms_k", [l, hd], KNorm = new float[l * hd]));
        }
        if (Spec.SubNorms)
        {
            list.Add(new("rms_attn_sub", [l, qd], AttnSubNorm = new float[l * qd]));
            list.Add(new("rms_ffn_sub", [l, h], FfnSubNorm = new float[l * h]));
        }
        if (Spec.SandwichNorms)
        {
            list.Add(new("rms_post_att", [l, d], PostAttnNorm = new float[l * d]));
            list.Add(new("rms_post_ffn", [l, d], PostFfnNorm = new float[l * d]));
        }
        if (Spec.Norm == NormKind.Layer)
        {
            list.Add(new("b_att_norm", [l, d], AttnNormBias = new float[l * d]));
            list.Add(new("b_ffn_norm", [l, d], FfnNormBias = new float[l * d]));
            list.Add(new("b_final_norm", [d], FinalNormBias = new float[d]));
        }
        if (mlpBias)
        {
            list.Add(new("b1", [l, h], B1 = new float[l * h]));
            list.Add(new("b2", [l, d], B2 = new float[l * d]));
        }
        if (Spec.LearnedPositions) list.Add(new("wpe", [c.MaxSeq, d], PositionEmbedding = new float[c.MaxSeq * d]));
        Tensors = list;
    }

    /// <summary>What the backprop implements, for refusals.</summary>
    public const string Covered = "decoders with RMSNorm or LayerNorm, SwiGLU, GeGLU, BitNet's squared-ReLU GLU or GPT-2's GELU MLP, tied or untied heads, rotary "
        + "frequencies per layer (default or llama3) or learned positions, sliding windows, projection and MLP biases, q/k RMSNorm, BitNet's sub-norms, "
        + "Gemma's sandwich norms, embedding scale and soft-caps (Llama, Mistral, Qwen2, Qwen3, Phi-3, Gemma 2 / 3, GPT-2, BitNet master weights)";

    /// <summary>Whether the block's MLP has an up projection (w3): every family but GPT-2.</summary>
    public static bool Gated(DecoderSpec spec) => spec.Mlp != DecoderMlp.GeluTanh;

    /// <summary>
    /// Why the backprop (<see cref="Covered"/>) would not compute this model's loss, or null when it would: names the
    /// <see cref="DecoderSpec"/> field or the weights the block has that it lacks.
    /// </summary>
    public static string? Unsupported(LlamaModel model, int seq)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (UnsupportedSpec(model.Spec, model.Config) is { } why) return why;
        var s = model.Spec;
        var l0 = model.Weights.Layers[0];
        foreach (var layer in model.Weights.Layers)
        {
            if ((layer.B1 is null) != (l0.B1 is null) || (layer.B2 is null) != (l0.B1 is null)) return "its MLP biases differ from layer to layer";
            if ((layer.W3 is not null) != Gated(s)) return "its up projection does not follow its spec";
            if ((layer.Bq is null) != (l0.Bq is null) || (layer.Bk is null) != (l0.Bq is null) || (layer.Bv is null) != (l0.Bq is null) || (layer.Bo is null) != (l0.Bo is null))
                return "its projection biases differ from layer to layer";
            bool ln = s.Norm == NormKind.Layer;
            if ((layer.AttnNormBias is not null) != ln || (layer.FfnNormBias is not null) != ln) return "its norm biases do not follow its spec";
            if ((layer.PostAttnNorm is not null) != s.SandwichNorms || (layer.PostFfnNorm is not null) != s.SandwichNorms) return "its post-attention / post-MLP norm weights do not follow its spec";
            if ((layer.QNorm is not null) != s.QkNorm || (layer.KNorm is not null) != s.QkNorm) return "its q/k norm weights do not follow its spec";
            if ((layer.AttnSubNorm is not null) != s.SubNorms || (layer.FfnSubNorm is not null) != s.SubNorms) return "its sub-norm weights do not follow its spec";
        }
        if ((model.Weights.FinalNormBias is not null) != (s.Norm == NormKind.Layer)) return "its final norm bias does not follow its spec";
        if ((model.Weights.PositionEmbedding is not null) != s.LearnedPositions) return "its position embeddings do not follow its spec";
        return null;
    }

    /// <summary>The part of <see cref="Unsupported"/> a spec alone decides (the backprop checks it too).</summary>
    public static string? UnsupportedSpec(DecoderSpec s, ModelConfig c)
    {
        ArgumentNullException.ThrowIfNull(s);
        ArgumentNullException.ThrowIfNull(c);
        // (Gemma's norm weight offset is added at load time: the stored weight is the gain, its gradient the same)
        if (s.Norm == NormKind.Layer && (s.QkNorm || s.SubNorms || s.SandwichNorms)) return "it mixes LayerNorm with extra RMSNorms (Norm)";
        if (s.LearnedPositions && s.RopeInvFreq is not null) return "it has both learned positions and rotary frequencies (LearnedPositions, RopeInvFreq)";
        if (s.QuantizedActivations)
            return "its linears are offline-quantized BitLinear layers (QuantizedActivations: ternary codes without the latent weights; train the master weights with --qat ternary)";
        return null;
    }

    /// <summary>A copy of a model's weights (the model's own arrays are never written: its kernels cache packed copies of them).</summary>
    public static LlamaParameters From(LlamaModel model)
    {
        var w = model.Weights;
        var l0 = w.Layers[0];
        var p = new LlamaParameters(model.Config, w.SharedOutput, model.Spec, l0.Bq is not null, l0.Bo is not null, l0.B1 is not null);
        StoredLinears.Fp32(w.TokenEmbedding).CopyTo(p.Embedding, 0);
        w.FinalNorm.CopyTo(p.FinalNorm, 0);
        if (!w.SharedOutput) StoredLinears.Fp32(w.Output).CopyTo(p.Output, 0);
        w.FinalNormBias?.CopyTo(p.FinalNormBias!, 0);
        w.PositionEmbedding?.CopyTo(p.PositionEmbedding!, 0);
        for (int i = 0; i < w.Layers.Length; i++)
        {
            var l = w.Layers[i];
            p.Put(l.AttnNorm, p.AttnNorm, i); p.Put(l.FfnNorm, p.FfnNorm, i);
            p.Put(l.Wq, p.Wq, i); p.Put(l.Wk, p.Wk, i); p.Put(l.Wv, p.Wv, i); p.Put(l.Wo, p.Wo, i);
            p.Put(l.W1, p.W1, i); p.Put(l.W2, p.W2, i);
            foreach (var (src, dst) in new[] { (l.Bq, p.Bq), (l.Bk, p.Bk), (l.Bv, p.Bv), (l.Bo, p.Bo), (l.QNorm, p.QNorm), (l.KNorm, p.KNorm),
                         (l.AttnSubNorm, p.AttnSubNorm), (l.FfnSubNorm, p.FfnSubNorm), (l.PostAttnNorm, p.PostAttnNorm), (l.PostFfnNorm, p.PostFfnNorm),
                         (l.W3, p.W3), (l.AttnNormBias, p.AttnNormBias), (l.FfnNormBias, p.FfnNormBias), (l.B1, p.B1), (l.B2, p.B2) })
                if (dst is not null) p.Put(src!, dst, i);
        }
        return p;
    }

    /// <summary>A new engine model holding copies of these parameters, with their spec (for evaluation and export).</summary>
    public LlamaModel ToModel(ModelCard card)
    {
        var layers = new LlamaLayer[Config.Layers];
        for (int i = 0; i < layers.Length; i++)
            layers[i] = new LlamaLayer
            {
                AttnNorm = Take(AttnNorm, i), Wq = Take(Wq, i), Wk = Take(Wk, i), Wv = Take(Wv, i), Wo = Take(Wo, i),
                FfnNorm = Take(FfnNorm, i), W1 = Take(W1, i), W2 = Take(W2, i), W3 = TakeOrNull(W3, i),
                AttnNormBias = TakeOrNull(AttnNormBias, i), FfnNormBias = TakeOrNull(FfnNormBias, i), B1 = TakeOrNull(B1, i), B2 = TakeOrNull(B2, i),
                Bq = TakeOrNull(Bq, i), Bk = TakeOrNull(Bk, i), Bv = TakeOrNull(Bv, i), Bo = TakeOrNull(Bo, i),
                QNorm = TakeOrNull(QNorm, i), KNorm = TakeOrNull(KNorm, i),
                AttnSubNorm = TakeOrNull(AttnSubNorm, i), FfnSubNorm = TakeOrNull(FfnSubNorm, i),
                PostAttnNorm = TakeOrNull(PostAttnNorm, i), PostFfnNorm = TakeOrNull(PostFfnNorm, i),
            };
        var emb = (float[])Embedding.Clone();
        var weights = new LlamaWeights
        {
            TokenEmbedding = emb, Layers = layers, FinalNorm = (float[])FinalNorm.Clone(),
            Output = SharedOutput ? emb : (float[])Output.Clone(),
            FinalNormBias = (float[]?)FinalNormBias?.Clone(), PositionEmbedding = (float[]?)PositionEmbedding?.Clone(),
        };
        return new LlamaModel(Config, weights, card, Spec);
    }

    /// <summary>Zero tensors of these shapes (a gradient buffer).</summary>
    public LlamaParameters ZerosLike() => new(Config, SharedOutput, Spec, Bq is not null, Bo is not null, B1 is not null);

    public LlamaParameters Clone()
    {
        var p = ZerosLike();
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
    private float[]? TakeOrNull(float[]? stacked, int layer) => stacked is null ? null : Take(stacked, layer);
}
