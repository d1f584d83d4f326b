using System.Numerics.Tensors;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Models;

/// <summary>One BERT block's weights; linear weights row-major [out, in].</summary>
public sealed class BertLayer
{
    public required float[] Wq { get; init; }
    public required float[] Bq { get; init; }
    public required float[] Wk { get; init; }
    public required float[] Bk { get; init; }
    public required float[] Wv { get; init; }
    public required float[] Bv { get; init; }
    public required float[] Wo { get; init; }
    public required float[] Bo { get; init; }
    public required float[] Ln1G { get; init; }
    public required float[] Ln1B { get; init; }
    public required float[] Wi { get; init; }
    public required float[] Bi { get; init; }
    public required float[] Wout { get; init; }
    public required float[] Bout { get; init; }
    public required float[] Ln2G { get; init; }
    public required float[] Ln2B { get; init; }
}

public sealed class BertWeights
{
    public required float[] WordEmbedding { get; init; }
    public required float[] PositionEmbedding { get; init; }
    public required float[] TokenTypeEmbedding { get; init; }
    public required float[] EmbLnG { get; init; }
    public required float[] EmbLnB { get; init; }
    public required BertLayer[] Layers { get; init; }
}

/// <summary>
/// BERT-family encoder (all-MiniLM-L6-v2 by default): word + position + token-type embeddings and LayerNorm,
/// post-LN blocks (x = LN1(x + Attn(x)); x = LN2(x + MLP(x))), exact GELU, padding mask, mean pooling.
/// A skipped module skips its whole sub-layer (module, residual add and LayerNorm): the residual passes through.
/// </summary>
public sealed class BertModel : ITransformerModel
{
    public ModelConfig Config { get; }
    public ModelCard Card { get; }
    public BertWeights Weights { get; }
    public int TypeVocab => Weights.TokenTypeEmbedding.Length / Config.Dim;

    public BertModel(ModelConfig config, BertWeights weights, ModelCard card)
    {
        config.Validate();
        if (config.Family != ModelFamily.Bert) throw new ArgumentException($"config is {config.Family}, not Bert", nameof(config));
        if (weights.Layers.Length != config.Layers) throw new ArgumentException($"{weights.Layers.Length} layers of weights for {config.Layers} layers", nameof(weights));
        Config = config;
        Weights = weights;
        Card = card;
    }

    public SequenceState Embed(ReadOnlySpan<int> ids, ReadOnlySpan<int> typeIds = default, ReadOnlySpan<bool> mask = default)
    {
        int n = ids.Length, d = Config.Dim;
        if (n == 0) throw new ArgumentException("no tokens", nameof(ids));
        if (n > Config.MaxSeq) throw new ArgumentException($"{n} tokens exceed the {Config.MaxSeq} positions of the model", nameof(ids));
        if (!typeIds.IsEmpty && typeIds.Length != n) throw new ArgumentException($"{typeIds.Length} token types for {n} tokens", nameof(typeIds));
        if (!mask.IsEmpty && mask.Length != n) throw new ArgumentException($"{mask.Length} mask entries for {n} tokens", nameof(mask));
        var s = new SequenceState(n, d, Enumerable.Range(0, n).ToArray(), valid: mask.IsEmpty ? null : mask.ToArray());
        var tmp = new float[d];
        for (int i = 0; i < n; i++)
        {
            int t = ids[i], tt = typeIds.IsEmpty ? 0 : typeIds[i];
            if ((uint)t >= (uint)Config.Vocab) throw new ArgumentOutOfRangeException(nameof(ids), t, $"token id at {i} is outside the vocabulary of {Config.Vocab}");
            if ((uint)tt >= (uint)TypeVocab) throw new ArgumentOutOfRangeException(nameof(typeIds), tt, $"token type at {i} is outside 0..{TypeVocab - 1}");
            TensorPrimitives.Add(Weights.WordEmbedding.AsSpan(t * d, d), Weights.PositionEmbedding.AsSpan(i * d, d), tmp);
            TensorPrimitives.Add(tmp, Weights.TokenTypeEmbedding.AsSpan(tt * d, d), tmp);
            Ops.LayerNorm(tmp, Weights.EmbLnG, Weights.EmbLnB, Config.NormEps, s.Row(i));
        }
        return s;
    }

    public SequenceState Embed(ModelInput input, ForwardContext ctx)
    {
        if (input is not TokenInput { StartPos: 0 } t) throw new ArgumentException($"{Card.Name} is an encoder: it takes token ids from position 0, not {input}", nameof(input));
        var s = Embed(t.Tokens);
        ctx.Fire(HookNames.Embed, -1, s.Active, s.Rows, s.Dim, s.TokenIndex);
        return s;
    }

    /// <summary>The sentence embedding: mean pooling over the valid rows.</summary>
    public float[] Readout(SequenceState state, ForwardContext ctx) => MeanPool(state);

    public IReadOnlyList<NamedLinear> BlockLinears => _linears ??= Weights.Layers.SelectMany((l, i) => new NamedLinear[]
    {
        new($"layers.{i}.wq", i, l.Wq, Config.Dim, Config.Dim),
        new($"layers.{i}.wk", i, l.Wk, Config.Dim, Config.Dim),
        new($"layers.{i}.wv", i, l.Wv, Config.Dim, Config.Dim),
        new($"layers.{i}.wo", i, l.Wo, Config.Dim, Config.Dim),
        new($"layers.{i}.wi", i, l.Wi, Config.MlpDim, Config.Dim),
        new($"layers.{i}.wout", i, l.Wout, Config.Dim, Config.MlpDim),
    }).ToArray();
    private NamedLinear[]? _linears;

    public IEnumerable<float[]> ParameterArrays =>
        new[] { Weights.WordEmbedding, Weights.PositionEmbedding, Weights.TokenTypeEmbedding, Weights.EmbLnG, Weights.EmbLnB }
            .Concat(Weights.Layers.SelectMany(l => new[] { l.Bq, l.Bk, l.Bv, l.Bo, l.Bi, l.Bout, l.Ln1G, l.Ln1B, l.Ln2G, l.Ln2B }))
            .Concat(BlockLinears.Select(l => l.Weight));

    /// <summary>last_hidden_state [n, d] of one sequence (ids including [CLS] and [SEP]).</summary>
    public SequenceState Forward(ReadOnlySpan<int> ids, ForwardContext ctx, ReadOnlySpan<int> typeIds = default, ReadOnlySpan<bool> mask = default)
    {
        var s = Embed(ids, typeIds, mask);
        ctx.Fire(HookNames.Embed, -1, s.Active, s.Rows, s.Dim, s.TokenIndex);
        this.RunBlocks(s, ctx);
        return s;
    }

    /// <summary>
    /// last_hidden_state of several sequences. With several threads and no hooks, selector, cache or linear override,
    /// whole sequences run side by side, one thread each: on 2 cores that scales better than splitting every layer
    /// (8 x 128 tokens: ORT-like batch parallelism instead of ~40 short parallel sections per sequence).
    /// Otherwise the sequences run one after another with <paramref name="ctx"/> as given.
    /// </summary>
    public SequenceState[] Forward(IReadOnlyList<int[]> batch, ForwardContext ctx)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var results = new SequenceState[batch.Count];
        bool independent = ctx.Hooks is null && ctx.Selector is null && ctx.Cache is null && ctx.Linear is null;
        if (!independent || ctx.Threads <= 1 || batch.Count < 2)
        {
            for (int i = 0; i < batch.Count; i++) results[i] = Forward(batch[i], ctx);
            return results;
        }
        var single = new ForwardContext { Threads = 1, Skips = ctx.Skips, Cancellation = ctx.Cancellation };
        Parallelism.For(batch.Count, ctx.Threads, i => results[i] = Forward(batch[i], single));
        return results;
    }

    /// <summary>Mean of the rows whose mask is set (sentence-transformers' mean pooling).</summary>
    public static float[] MeanPool(SequenceState s)
    {
        var sum = new float[s.Dim];
        int count = 0;
        for (int i = 0; i < s.Rows; i++)
        {
            if (s.Valid is { } v && !v[i]) continue;
            TensorPrimitives.Add(sum, s.Row(i), sum);
            count++;
        }
        TensorPrimitives.Divide(sum, Math.Max(count, 1), sum);
        return sum;
    }

    public void RunBlock(int layer, SequenceState s, ForwardContext ctx)
    {
        var w = Weights.Layers[layer];
        int n = s.Rows, d = Config.Dim;
        var x = s.Active;
        ctx.Fire(HookNames.ResidPre(layer), layer, x, n, d, s.TokenIndex);
        if (!ctx.Skips.SkipsAttention(layer))
        {
            ctx.Fire(HookNames.AttnIn(layer), layer, x, n, d, s.TokenIndex);
            var attnOut = Attention(layer, w, s, ctx);
            ctx.Fire(HookNames.AttnOut(layer), layer, attnOut.AsSpan(0, n * d), n, d, s.TokenIndex);
            AddNorm(s.Hidden, attnOut, n, w.Ln1G, w.Ln1B, ctx.Threads);
        }
        ctx.Fire(HookNames.ResidMid(layer), layer, x, n, d, s.TokenIndex);
        if (!ctx.Skips.SkipsMlp(layer))
        {
            ctx.Fire(HookNames.MlpIn(layer), layer, x, n, d, s.TokenIndex);
            int m = Config.MlpDim;
            var ws = _work.Current;
            float[] oBuf = ws.Array(Slot.Out, n * d);
            var h = ws.Get(Slot.H, n * m);
            var o = oBuf.AsSpan(0, n * d);
            ctx.RunLinear(x, n, d, w.Wi, m, h, w.Bi, gelu: true); // bias and GELU fused into the GEMM's tiles
            ctx.RunLinear(h, n, m, w.Wout, d, o, w.Bout);
            ctx.Fire(HookNames.MlpOut(layer), layer, o, n, d, s.TokenIndex);
            AddNorm(s.Hidden, oBuf, n, w.Ln2G, w.Ln2B, ctx.Threads);
        }
        ctx.Fire(HookNames.ResidPost(layer), layer, x, n, d, s.TokenIndex);
    }

    /// <summary>x = LayerNorm(x + o) row by row; rows split across threads for long inputs.</summary>
    private void AddNorm(float[] x, float[] o, int n, float[] g, float[] b, int threads)
    {
        int d = Config.Dim;
        Parallelism.For(n, (long)n * d >= 1 << 14 ? threads : 1, i =>
        {
            Span<float> tmp = stackalloc float[d];
            var xi = x.AsSpan(i * d, d);
            TensorPrimitives.Add(xi, o.AsSpan(i * d, d), tmp);
            Ops.LayerNorm(tmp, g, b, Config.NormEps, xi);
        });
    }

    /// <summary>
    /// Temporaries of a forward pass, one workspace per thread (an encoder layer's are 0.2-0.8 MB each, so fresh arrays
    /// would all be large-object allocations, ~20 MB per 128-token forward). Hooks receive spans and copy what they keep.
    /// </summary>
    private readonly Workspaces _work = new(Slot.Count);
    private static class Slot { public const int Q = 0, K = 1, V = 2, O = 3, Out = 4, H = 5, Count = 6; }

    /// <summary>The attention module's output [n, d], in this thread's workspace.</summary>
    private float[] Attention(int layer, BertLayer w, SequenceState s, ForwardContext ctx)
    {
        int n = s.Rows, d = Config.Dim, hd = Config.HeadDim, heads = Config.Heads;
        var x = s.Active;
        var ws = _work.Current;
        float[] qBuf = ws.Array(Slot.Q, n * d), kBuf = ws.Array(Slot.K, n * d), vBuf = ws.Array(Slot.V, n * d), oBuf = ws.Array(Slot.O, n * d);
        var q = qBuf.AsSpan(0, n * d);
        var k = kBuf.AsSpan(0, n * d);
        var v = vBuf.AsSpan(0, n * d);
        ctx.RunLinear(x, n, d, w.Wq, d, q, w.Bq);
        ctx.RunLinear(x, n, d, w.Wk, d, k, w.Bk);
        ctx.RunLinear(x, n, d, w.Wv, d, v, w.Bv);
        ctx.Fire(HookNames.AttnK(layer), layer, k, n, d, s.TokenIndex);
        ctx.Fire(HookNames.AttnV(layer), layer, v, n, d, s.TokenIndex);
        // Ranking asks for one query row's pattern only (ForwardContext.PatternQueryRow): queries nq = 1 row, keys all.
        int q0 = ctx.PatternQueryRow ?? 0, nq = ctx.PatternQueryRow is null ? n : 1;
        bool wantPattern = ctx.Wants(HookNames.AttnPattern(layer));
        var pattern = wantPattern ? new float[heads * nq * n] : null;
        var valid = s.Valid;
        Func<int, int, bool>? allowed = valid is null ? null : (_, j) => valid[j];
        void Head(int h) => AttentionKernel.Head(qBuf.AsSpan(q0 * d, nq * d), nq, d, h * hd, kBuf.AsSpan(0, n * d), vBuf.AsSpan(0, n * d), n, d, h * hd, hd, allowed,
            oBuf.AsSpan(q0 * d, nq * d), pattern is null ? default : pattern.AsSpan(h * nq * n, nq * n));
        if ((long)nq * n * d >= 1 << 16 && ctx.Threads > 1)
            Parallelism.For(heads, ctx.Threads, Head);
        else
            for (int h = 0; h < heads; h++) Head(h);
        if (pattern is not null) ctx.Hooks!.Fire(HookNames.AttnPattern(layer), layer, pattern, [heads, nq, n], s.TokenIndex);
        var outp = ws.Array(Slot.Out, n * d);
        ctx.RunLinear(oBuf.AsSpan(0, n * d), n, d, w.Wo, d, outp.AsSpan(0, n * d), w.Bo);
        return outp;
    }
}
