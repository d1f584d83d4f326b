namespace Workbench.Engine.Models;

public enum ModelFamily { Llama, Bert, Vit }

/// <summary>The MLP of a block: SwiGLU (Llama: W2(silu(W1 x) * W3 x)) or a two-layer GELU MLP (BERT, ViT; CLIP's quick_gelu x * sigmoid(1.702 x)).</summary>
public enum MlpKind { SwiGlu, GeluErf, GeluTanh, QuickGelu }

/// <summary>
/// Architecture numbers of a transformer, enough for the forward pass, the FLOPs model and the KV-cache size.
/// PreNorm: Llama and ViT (x + f(norm(x))); post-norm: BERT (norm(x + f(x))).
/// </summary>
public sealed record ModelConfig(
    ModelFamily Family,
    int Layers,
    int Dim,
    int MlpDim,
    int Heads,
    int KvHeads,
    int Vocab,
    int MaxSeq,
    bool PreNorm,
    MlpKind Mlp,
    float NormEps,
    float RopeTheta = 10000f,
    int ExplicitHeadDim = 0)
{
    /// <summary>Dim / Heads unless the checkpoint names its own head_dim (Gemma, Qwen3 may).</summary>
    public int HeadDim => ExplicitHeadDim > 0 ? ExplicitHeadDim : Dim / Heads;
    public int KvDim => KvHeads * HeadDim;
    /// <summary>Width of the concatenated query heads (= Dim unless head_dim is explicit).</summary>
    public int QDim => Heads * HeadDim;
    public bool HasRotary => Family == ModelFamily.Llama;
    public bool IsCausal => Family == ModelFamily.Llama;

    /// <summary>Throws ArgumentException naming the first inconsistent field.</summary>
    public void Validate()
    {
        if (Layers <= 0) throw new ArgumentOutOfRangeException(nameof(Layers), Layers, "must be positive");
        if (Dim <= 0) throw new ArgumentOutOfRangeException(nameof(Dim), Dim, "must be positive");
        if (MlpDim <= 0) throw new ArgumentOutOfRangeException(nameof(MlpDim), MlpDim, "must be positive");
        if (ExplicitHeadDim < 0) throw new ArgumentOutOfRangeException(nameof(ExplicitHeadDim), ExplicitHeadDim, "must be positive (or 0 for Dim / Heads)");
        if (Heads <= 0 || (ExplicitHeadDim == 0 && Dim % Heads != 0)) throw new ArgumentException($"Heads ({Heads}) must divide Dim ({Dim})", nameof(Heads));
        if (KvHeads <= 0 || Heads % KvHeads != 0) throw new ArgumentException($"KvHeads ({KvHeads}) must divide Heads ({Heads})", nameof(KvHeads));
        if (HasRotary && HeadDim % 2 != 0) throw new ArgumentException($"head dimension {HeadDim} must be even for rotary embeddings", nameof(Heads));
        if (MaxSeq <= 0) throw new ArgumentOutOfRangeException(nameof(MaxSeq), MaxSeq, "must be positive");
    }
}
