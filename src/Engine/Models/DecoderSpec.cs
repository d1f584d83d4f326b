namespace Workbench.Engine.Models;

/// <summary>The norm of a decoder: RMSNorm (Llama, Mistral, Qwen, Gemma, Phi-3, BitNet) or LayerNorm with bias (GPT-2).</summary>
public enum NormKind { Rms, Layer }

/// <summary>
/// The MLP of a decoder block: SwiGLU down(silu(gate) * up); GeGLU down(gelu_tanh(gate) * up) (Gemma); a plain two-layer
/// MLP with biases c_proj(gelu_tanh(c_fc x)) (GPT-2's gelu_new); BitNet's down(subnorm(relu(gate)^2 * up)).
/// </summary>
public enum DecoderMlp { SwiGlu, GeGluTanh, GeluTanh, Relu2Glu }

/// <summary>
/// What a decoder block does, as the families differ. The defaults are llama2.c's Llama-2 block, so a spec only names
/// what its family changes. Weights are held in llama2.c's convention whatever the source: [out, in], rotary on
/// interleaved pairs (Hugging Face's rotate-half rows, biases and q/k norm weights are permuted at load time), fused
/// projections split, Conv1D [in, out] transposed, and Gemma's (1 + w) norm weights stored with the 1 added.
/// </summary>
public sealed record DecoderSpec
{
    public static DecoderSpec Llama2 { get; } = new();

    /// <summary>The Hugging Face model_type (llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3, gpt2, bitnet).</summary>
    public string Family { get; init; } = "llama";
    public NormKind Norm { get; init; } = NormKind.Rms;
    /// <summary>Added to stored norm weights at load time (Gemma: 1, its norm scales by 1 + w).</summary>
    public float NormWeightOffset { get; init; }
    /// <summary>Gemma's sandwich: the attention and MLP outputs are normed again before they join the residual.</summary>
    public bool SandwichNorms { get; init; }
    /// <summary>RMSNorm over head_dim of every query and key head before the rotary (Qwen3, Gemma 3).</summary>
    public bool QkNorm { get; init; }
    /// <summary>RMSNorm of the attention output before o_proj and of the gated MLP product before down_proj (BitNet).</summary>
    public bool SubNorms { get; init; }
    public DecoderMlp Mlp { get; init; } = DecoderMlp.SwiGlu;
    /// <summary>Token embeddings are multiplied by this (Gemma: sqrt(hidden)).</summary>
    public float EmbedScale { get; init; } = 1f;
    /// <summary>Learned absolute position embeddings added to the token embeddings (GPT-2); then there is no rotary.</summary>
    public bool LearnedPositions { get; init; }
    /// <summary>
    /// Rotary inverse frequencies per layer (head_dim / 2 each), computed from the config (default, llama3); null: llama2.c's
    /// own float formula from <see cref="ModelConfig.RopeTheta"/>, so llama2.c checkpoints keep their exact numbers.
    /// </summary>
    public float[][]? RopeInvFreq { get; init; }
    /// <summary>Sliding window per layer: a query at position i sees keys at j with i - w &lt; j &lt;= i; 0 = full causal.</summary>
    public int[]? SlidingWindow { get; init; }
    /// <summary>Scores are scaled by this; 0 = 1/sqrt(head_dim) (Gemma: query_pre_attn_scalar^-0.5).</summary>
    public float AttentionScale { get; init; }
    /// <summary>Attention scores become cap * tanh(s / cap) after scaling (Gemma 2); 0 = none.</summary>
    public float AttentionSoftCap { get; init; }
    /// <summary>Logits become cap * tanh(logits / cap) (Gemma 2); 0 = none.</summary>
    public float FinalSoftCap { get; init; }
    /// <summary>
    /// BitNet's offline-quantized BitLinear: each block linear quantizes its input rows to int8 (absmax 127) and its
    /// weight holds ternary codes with one scale, y = (x_int W^T) / (s_x * weight_scale).
    /// </summary>
    public bool QuantizedActivations { get; init; }

    public int WindowOf(int layer) => SlidingWindow is { } w ? w[layer] : 0;
}
