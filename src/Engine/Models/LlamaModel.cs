using System.Numerics.Tensors;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Models;

/// <summary>One Llama block's weights, row-major [out, in] as in llama2.c.</summary>
public sealed class LlamaLayer
{
    public required float[] AttnNorm { get; init; }
    public required float[] Wq { get; init; }
    public required float[] Wk { get; init; }
    public required float[] Wv { get; init; }
    public required float[] Wo { get; init; }
    public required float[] FfnNorm { get; init; }
    /// <summary>Gate projection (llama2.c w1, HF gate_proj).</summary>
    public required float[] W1 { get; init; }
    /// <summary>Down projection (llama2.c w2, HF down_proj).</summary>
    public required float[] W2 { get; init; }
    /// <summary>Up projection (llama2.c w3, HF up_proj).</summary>
    public required float[] W3 { get; init; }
}

public sealed class LlamaWeights
{
    public required float[] TokenEmbedding { get; init; }
    public required LlamaLayer[] Layers { get; init; }
    public required float[] FinalNorm { get; init; }
    /// <summary>Classifier [vocab, dim]; the same array as the embedding when they are shared.</summary>
    public required float[] Output { get; init; }
    public bool SharedOutput => ReferenceEquals(Output, TokenEmbedding);
}

/// <summary>
/// Llama-family decoder (llama2.c's run.c, written as the math): RMSNorm, rotary positions, grouped-query attention
/// with a KV cache, SwiGLU MLP, tied or untied classifier. Rows of a sequence state carry their own positions, so
/// the same code serves prefill, one-token decode, and prefill with tokens dropped between blocks.
/// </summary>
public sealed class LlamaModel : ITransformerModel
{
    public ModelConfig Config { get; }
    public ModelCard Card { get; }
    public LlamaWeights Weights { get; }

    public LlamaModel(ModelConfig config, LlamaWeights weights, ModelCard card)
    {
        config.Validate();
        if (config.Family != ModelFamily.Llama) throw new ArgumentException($"config is {config.Family}, not Llama", nameof(config));
        if (weights.Layers.Length != config.Layers) throw new ArgumentException($"{weights.Layers.Length} layers of weights for {config.Layers} layers", nameof(weights));
        Config = config;
        Weights = weights;
        Card = card;
    }

    /// <summary>Token embeddings of <paramref name="tokens"/> at positions startPos, startPos + 1, ...</summary>
    public SequenceState Embed(ReadOnlySpan<int> tokens, int startPos = 0)
    {
        int d = Config.Dim;
        var positions = new int[tokens.Length];
        for (int i = 0; i < positions.Length; i++) positions[i] = startPos + i;
        var s = new SequenceState(tokens.Length, d, positions);
        for (int i = 0; i < tokens.Length; i++)
        {
            int t = tokens[i];
            if ((uint)t >= (uint)Config.Vocab) throw new ArgumentOutOfRangeException(nameof(tokens), t, $"token id at {i} is outside the vocabulary of {Config.Vocab}");
            Weights.TokenEmbedding.AsSpan(t * d, d).CopyTo(s.Row(i));
        }
        return s;
    }

    public SequenceState Embed(ModelInput input, ForwardContext ctx)
    {
        if (input is not TokenInput t) throw new ArgumentException($"{Card.Name} is a decoder: it takes token ids, not {input.GetType().Name}", nameof(input));
        var s = Embed(t.Tokens, t.StartPos);
        ctx.Fire(HookNames.Embed, -1, s.Active, s.Rows, s.Dim, s.TokenIndex);
        return s;
    }

    public float[] Readout(SequenceState state, ForwardContext ctx) => Logits(state, ctx);

    public IReadOnlyList<NamedLinear> BlockLinears => _linears ??= Weights.Layers.SelectMany((l, i) => new NamedLinear[]
    {
        new($"layers.{i}.wq", i, l.Wq, Config.Dim, Config.Dim),
        new($"layers.{i}.wk", i, l.Wk, Config.KvDim, Config.Dim),
        new($"layers.{i}.wv", i, l.Wv, Config.KvDim, Config.Dim),
        new($"layers.{i}.wo", i, l.Wo, Config.Dim, Config.Dim),
        new($"layers.{i}.w1", i, l.W1, Config.MlpDim, Config.Dim),
        new($"layers.{i}.w2", i, l.W2, Config.Dim, Config.MlpDim),
        new($"layers.{i}.w3", i, l.W3, Config.MlpDim, Config.Dim),
    }).ToArray();
    private NamedLinear[]? _linears;

    public IEnumerable<float[]> ParameterArrays =>
        new[] { Weights.TokenEmbedding, Weights.FinalNorm }
            .Concat(Weights.SharedOutput ? [] : [Weights.Output])
            .Concat(Weights.Layers.SelectMany(l => new[] { l.AttnNorm, l.FfnNorm }))
            .Concat(BlockLinears.Select(l => l.Weight));

    /// <summary>
    /// Runs tokens through the model at positions startPos.. and returns the logits of every surviving row
    /// ([rows, vocab]) with the state (whose TokenIndex says which input each row is).
    /// </summary>
    public (float[] Logits, SequenceState State) Forward(ReadOnlySpan<int> tokens, int startPos, ForwardContext ctx, bool allRows = true)
    {
        var s = Embed(tokens, startPos);
        ctx.Fire(HookNames.Embed, -1, s.Active, s.Rows, s.Dim, s.TokenIndex);
        this.RunBlocks(s, ctx);
        return (Logits(s, ctx, allRows), s);
    }

    /// <summary>Final RMSNorm and classifier: logits of every row, or of the last row only.</summary>
    public float[] Logits(SequenceState s, ForwardContext ctx, bool allRows = true)
    {
        int d = Config.Dim, v = Config.Vocab;
        int first = allRows ? 0 : s.Rows - 1, n = s.Rows - first;
        var normed = _work.Current.Get(Slot.Xb, n * d);
        for (int i = 0; i < n; i++) Ops.RmsNorm(s.Row(first + i), Weights.FinalNorm, Config.NormEps, normed.Slice(i * d, d));
        ctx.Fire(HookNames.LnFinal, Config.Layers, normed, n, d, s.TokenIndex[first..]);
        var logits = new float[n * v];
        ctx.RunLinear(normed, n, d, Weights.Output, v, logits);
        return logits;
    }

    // The temporaries of a block, one workspace per thread: no allocation per call once warm (decode runs ~17 buffers per block).
    private readonly Workspaces _work = new(Slot.Count);
    private static class Slot { public const int Xb = 0, Q = 1, K = 2, V = 3, O = 4, Out = 5, H1 = 6, H3 = 7, Pattern = 8, Count = 9; }

    public void RunBlock(int layer, SequenceState s, ForwardContext ctx)
    {
        var w = Weights.Layers[layer];
        int n = s.Rows, d = Config.Dim;
        var x = s.Active;
        var ws = _work.Current;
        ctx.Fire(HookNames.ResidPre(layer), layer, x, n, d, s.TokenIndex);

        var xb = ws.Get(Slot.Xb, n * d);
        if (!ctx.Skips.SkipsAttention(layer))
        {
            for (int i = 0; i < n; i++) Ops.RmsNorm(s.Row(i), w.AttnNorm, Config.NormEps, xb.Slice(i * d, d));
            ctx.Fire(HookNames.AttnIn(layer), layer, xb, n, d, s.TokenIndex);
            var o = Attention(layer, w, xb, s, ctx, ws);
            ctx.Fire(HookNames.AttnOut(layer), layer, o, n, d, s.TokenIndex);
            TensorPrimitives.Add(x, o, x);
        }
        ctx.Fire(HookNames.ResidMid(layer), layer, x, n, d, s.TokenIndex);

        if (!ctx.Skips.SkipsMlp(layer))
        {
            for (int i = 0; i < n; i++) Ops.RmsNorm(s.Row(i), w.FfnNorm, Config.NormEps, xb.Slice(i * d, d));
            ctx.Fire(HookNames.MlpIn(layer), layer, xb, n, d, s.TokenIndex);
            int h = Config.MlpDim;
            var h1 = ws.Get(Slot.H1, n * h);
            var h3 = ws.Get(Slot.H3, n * h);
            ctx.RunLinear(xb, n, d, w.W1, h, h1);
            ctx.RunLinear(xb, n, d, w.W3, h, h3);
            Ops.SwiGlu(h1, h3);
            var o = ws.Get(Slot.Out, n * d);
            ctx.RunLinear(h1, n, h, w.W2, d, o);
            ctx.Fire(HookNames.MlpOut(layer), layer, o, n, d, s.TokenIndex);
            TensorPrimitives.Add(x, o, x);
        }
        ctx.Fire(HookNames.ResidPost(layer), layer, x, n, d, s.TokenIndex);
    }

    private Span<float> Attention(int layer, LlamaLayer w, Span<float> xb, SequenceState s, ForwardContext ctx, Workspace ws)
    {
        int n = s.Rows, d = Config.Dim, kv = Config.KvDim, hd = Config.HeadDim, heads = Config.Heads;
        float[] q = ws.Array(Slot.Q, n * d), k = ws.Array(Slot.K, n * kv), v = ws.Array(Slot.V, n * kv);
        ctx.RunLinear(xb, n, d, w.Wq, d, q);
        ctx.RunLinear(xb, n, d, w.Wk, kv, k);
        ctx.RunLinear(xb, n, d, w.Wv, kv, v);
        for (int i = 0; i < n; i++)
        {
            Ops.Rope(q.AsSpan(i * d, d), hd, s.Positions[i], Config.RopeTheta);
            Ops.Rope(k.AsSpan(i * kv, kv), hd, s.Positions[i], Config.RopeTheta);
        }
        ctx.Fire(HookNames.AttnK(layer), layer, k.AsSpan(0, n * kv), n, kv, s.TokenIndex);
        ctx.Fire(HookNames.AttnV(layer), layer, v.AsSpan(0, n * kv), n, kv, s.TokenIndex);

        // Keys: the layer's cache (which now also holds the new rows) or, without a cache, the rows themselves.
        float[] keys, values;
        int[] keyPos;
        int c;
        if (ctx.Cache is { } cache)
        {
            var lc = cache.Layer(layer);
            int start = lc.Append(n, s.Positions);
            k.AsSpan(0, n * kv).CopyTo(lc.Keys.AsSpan(start * kv));
            v.AsSpan(0, n * kv).CopyTo(lc.Values.AsSpan(start * kv));
            keys = lc.Keys; values = lc.Values; keyPos = lc.Positions; c = lc.Count;
        }
        else
        {
            keys = k; values = v; keyPos = s.Positions; c = n;
        }

        bool wantPattern = ctx.Wants(HookNames.AttnPattern(layer));
        var pattern = wantPattern ? ws.Array(Slot.Pattern, heads * n * c) : null;
        var o = ws.Array(Slot.O, n * d);
        int group = heads / Config.KvHeads;
        var qPos = s.Positions;
        // causal by position: a row sees keys at its own position or earlier
        void Head(int h) => AttentionKernel.CausalHead(q.AsSpan(0, n * d), n, d, h * hd, keys, values, c, kv, h / group * hd, hd, qPos, keyPos,
            o.AsSpan(0, n * d), pattern is null ? default : pattern.AsSpan(h * n * c, n * c));
        if ((long)n * c * d >= 1 << 16 && ctx.Threads > 1)
            Parallelism.For(heads, ctx.Threads, Head);
        else
            for (int h = 0; h < heads; h++) Head(h);
        if (pattern is not null) ctx.Hooks!.Fire(HookNames.AttnPattern(layer), layer, pattern.AsSpan(0, heads * n * c), [heads, n, c], s.TokenIndex);

        var outp = ws.Get(Slot.Out, n * d);
        ctx.RunLinear(o.AsSpan(0, n * d), n, d, w.Wo, d, outp);
        return outp;
    }

    public float[] QueryAttention(int layer, SequenceState s, int queryRow)
    {
        var w = Weights.Layers[layer];
        int n = s.Rows, d = Config.Dim, kv = Config.KvDim, hd = Config.HeadDim, heads = Config.Heads;
        if ((uint)queryRow >= (uint)n) throw new ArgumentOutOfRangeException(nameof(queryRow), queryRow, $"the state has {n} rows");
        var xb = new float[n * d];
        for (int i = 0; i < n; i++) Ops.RmsNorm(s.Row(i), w.AttnNorm, Config.NormEps, xb.AsSpan(i * d, d));
        var q = new float[d];
        MatMul.Linear(xb.AsSpan(queryRow * d, d), 1, d, w.Wq, d, q, 1);
        Ops.Rope(q, hd, s.Positions[queryRow], Config.RopeTheta);
        var k = new float[n * kv];
        MatMul.Linear(xb, n, d, w.Wk, kv, k, 1);
        for (int i = 0; i < n; i++) Ops.Rope(k.AsSpan(i * kv, kv), hd, s.Positions[i], Config.RopeTheta);
        var mean = new float[n];
        var att = new float[n];
        int group = heads / Config.KvHeads;
        float scale = 1f / MathF.Sqrt(hd);
        int p = s.Positions[queryRow];
        for (int h = 0; h < heads; h++)
        {
            int kvOff = h / group * hd;
            for (int j = 0; j < n; j++)
                att[j] = s.Positions[j] <= p ? TensorPrimitives.Dot(q.AsSpan(h * hd, hd), k.AsSpan(j * kv + kvOff, hd)) * scale : float.NegativeInfinity;
            Ops.Softmax(att);
            TensorPrimitives.Add(mean, att, mean);
        }
        TensorPrimitives.Divide(mean, heads, mean);
        return mean;
    }
}
