using Workbench.Engine.Models;

namespace Workbench.Engine.Costs;

/// <summary>
/// The numbers the cost model needs; any config, including large ones given as plain numbers.
/// <paramref name="Causal"/>: a decoder, whose query i sees only keys 0..i.
/// </summary>
public sealed record TransformerShape(int Layers, int Dim, int MlpDim, int KvDim, MlpKind Mlp, bool Causal = false)
{
    public static TransformerShape From(ModelConfig c) => new(c.Layers, c.Dim, c.MlpDim, c.KvDim, c.Mlp, c.IsCausal);

    /// <summary>A LLaVA-1.5-7B-like language tower (Vicuna-7B: 32 layers, d 4096, SwiGLU m 11008, no GQA; a decoder).</summary>
    public static TransformerShape LlavaLike7B { get; } = new(32, 4096, 11008, 4096, MlpKind.SwiGlu, Causal: true);

    public void Validate()
    {
        if (Layers <= 0) throw new ArgumentOutOfRangeException(nameof(Layers), Layers, "must be positive");
        if (Dim <= 0) throw new ArgumentOutOfRangeException(nameof(Dim), Dim, "must be positive");
        if (MlpDim <= 0) throw new ArgumentOutOfRangeException(nameof(MlpDim), MlpDim, "must be positive");
        if (KvDim <= 0 || KvDim > Dim) throw new ArgumentOutOfRangeException(nameof(KvDim), KvDim, "must be in 1..Dim");
    }
}

/// <summary>Multiply-accumulates of one layer over n tokens, by part.</summary>
public sealed record LayerMacs(int Layer, int Tokens, long Projections, long Attention, long Mlp)
{
    public long Total => Projections + Attention + Mlp;
}

/// <summary>
/// Per-layer MACs of a prefill, plus what ranking the tokens at the stage boundaries costs
/// (kept apart: the issue's formula leaves it out, and it shows why measured savings fall short).
/// </summary>
public sealed record CostReport(TransformerShape Shape, IReadOnlyList<LayerMacs> Layers, long RankingMacs)
{
    public long TotalMacs => Layers.Sum(l => l.Total);
    /// <summary>FLOPs = 2 x MACs (one multiply and one add per accumulate).</summary>
    public long TotalFlops => 2 * TotalMacs;
    public long TotalMacsWithRanking => TotalMacs + RankingMacs;
    public double RatioTo(CostReport full) => (double)TotalMacs / full.TotalMacs;

}

/// <summary>
/// The one cost model (token dropping, layer dropping and low-bit all count with it). Convention: FLOPs = 2 x MACs
/// (a multiply-accumulate is a multiply and an add); attention counts the (query, key) pairs each query actually
/// sees, n^2 for encoders and ViTs, n(n+1)/2 for a causal prefill; counted per module (attention, MLP) so that
/// dropped modules and dropped tokens compose. Per layer with n tokens, width d, MLP width m, key/value width kv:
///   projections  2nd^2 + 2nd*kv    (Q and output: d x d; K and V: d x kv; = 4nd^2 without GQA)
///   attention    2d per pair        (QK^T score and the weighted sum of V, over all heads)
///   MLP          2ndm (GELU: two matrices) or 3ndm (SwiGLU: gate, up, down)
/// Not counted: norms, softmax, activations, biases, embeddings (O(nd)); the output head only where a caller adds it
/// (<see cref="DropCosts"/> does, for decoders).
/// </summary>
public static class Flops
{
    /// <summary>MACs of one token through the attention module's four projections.</summary>
    public static long AttentionProjectionMacs(TransformerShape s) => 2L * s.Dim * s.Dim + 2L * s.Dim * s.KvDim;

    /// <summary>MACs of one token through the MLP.</summary>
    public static long MlpMacs(TransformerShape s) => (s.Mlp == MlpKind.SwiGlu ? 3L : 2L) * s.Dim * s.MlpDim;

    /// <summary>MACs of the scores and the weighted sum for one (query, key) pair, over all heads.</summary>
    public static long PairMacs(TransformerShape s) => 2L * s.Dim;

    /// <summary>(query, key) pairs of n tokens attending to each other: n(n+1)/2 when causal, else n^2.</summary>
    public static long Pairs(TransformerShape s, long n) => s.Causal ? n * (n + 1) / 2 : n * n;

    /// <summary>Block <paramref name="layer"/> over n tokens; a module in <paramref name="skips"/> costs nothing.</summary>
    public static LayerMacs Layer(TransformerShape s, int layer, int n, ModuleSkips? skips = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        bool attn = !(skips?.SkipsAttention(layer) ?? false), mlp = !(skips?.SkipsMlp(layer) ?? false);
        return new LayerMacs(layer, n,
            attn ? n * AttentionProjectionMacs(s) : 0,
            attn ? Pairs(s, n) * PairMacs(s) : 0,
            mlp ? n * MlpMacs(s) : 0);
    }

    /// <summary>Every layer sees all n tokens.</summary>
    public static CostReport Full(TransformerShape s, int n) => ForTokens(s, Enumerable.Repeat(n, s.Layers).ToArray());

    /// <summary>Layer l sees tokensPerLayer[l] tokens (its modules in <paramref name="skips"/> none); no ranking cost.</summary>
    public static CostReport ForTokens(TransformerShape s, IReadOnlyList<int> tokensPerLayer, ModuleSkips? skips = null)
    {
        s.Validate();
        if (tokensPerLayer.Count != s.Layers)
            throw new ArgumentException($"{tokensPerLayer.Count} token counts for {s.Layers} layers", nameof(tokensPerLayer));
        return new CostReport(s, tokensPerLayer.Select((n, l) => Layer(s, l, n, skips)).ToList(), 0);
    }

    /// <summary>
    /// Stages: layers [0, boundaries[0]) see tokensPerStage[0] tokens, [boundaries[0], boundaries[1]) see tokensPerStage[1], ...
    /// Ranking at boundary b scores the n tokens entering it with the query's attention in layer b:
    /// K projection n*d*kv, one query row d*d, scores n*d (the query is the last token, so it sees all n, causal or not).
    /// </summary>
    public static CostReport ForStages(TransformerShape s, IReadOnlyList<int> boundaries, IReadOnlyList<int> tokensPerStage)
    {
        s.Validate();
        if (tokensPerStage.Count != boundaries.Count + 1)
            throw new ArgumentException($"{tokensPerStage.Count} stage token counts for {boundaries.Count} boundaries (need one more)", nameof(tokensPerStage));
        for (int i = 0; i < boundaries.Count; i++)
            if (boundaries[i] < 1 || boundaries[i] >= s.Layers || (i > 0 && boundaries[i] <= boundaries[i - 1]))
                throw new ArgumentException($"boundaries must be increasing layers in 1..{s.Layers - 1}: {string.Join(",", boundaries)}", nameof(boundaries));
        var perLayer = new int[s.Layers];
        int stage = 0;
        for (int l = 0; l < s.Layers; l++)
        {
            while (stage < boundaries.Count && l >= boundaries[stage]) stage++;
            perLayer[l] = tokensPerStage[stage];
        }
        long ranking = 0;
        for (int i = 0; i < boundaries.Count; i++)
        {
            long n = tokensPerStage[i];
            ranking += n * s.Dim * s.KvDim + (long)s.Dim * s.Dim + n * s.Dim;
        }
        return ForTokens(s, perLayer) with { RankingMacs = ranking };
    }
}
