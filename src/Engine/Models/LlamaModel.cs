using System.Numerics.Tensors;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Models;

/// <summary>
/// One decoder block's weights, row-major [out, in] as in llama2.c. The required ones are every family's; the others
/// are null unless the block's <see cref="DecoderSpec"/> uses them.
/// </summary>
public sealed class LlamaLayer
{
    public required float[] AttnNorm { get; init; }
    public required float[] Wq { get; init; }
    public required float[] Wk { get; init; }
    public required float[] Wv { get; init; }
    public required float[] Wo { get; init; }
    public required float[] FfnNorm { get; init; }
    /// <summary>Gate projection (llama2.c w1, HF gate_proj; GPT-2's c_fc).</summary>
    public required float[] W1 { get; init; }
    /// <summary>Down projection (llama2.c w2, HF down_proj; GPT-2's c_proj).</summary>
    public required float[] W2 { get; init; }
    /// <summary>Up projection (llama2.c w3, HF up_proj); null for an ungated MLP (GPT-2).</summary>
    public float[]? W3 { get; init; }

    /// <summary>LayerNorm biases (GPT-2).</summary>
    public float[]? AttnNormBias { get; init; }
    public float[]? FfnNormBias { get; init; }
    /// <summary>Projection biases (Qwen2: q, k, v; GPT-2: all).</summary>
    public float[]? Bq { get; init; }
    public float[]? Bk { get; init; }
    public float[]? Bv { get; init; }
    public float[]? Bo { get; init; }
    public float[]? B1 { get; init; }
    public float[]? B2 { get; init; }
    /// <summary>RMSNorm weights over head_dim for q and k (Qwen3, Gemma 3).</summary>
    public float[]? QNorm { get; init; }
    public float[]? KNorm { get; init; }
    /// <summary>Gemma's post-attention and post-feed-forward norms (sandwich).</summary>
    public float[]? PostAttnNorm { get; init; }
    public float[]? PostFfnNorm { get; init; }
    /// <summary>BitNet's attn_sub_norm (over the attention output) and ffn_sub_norm (over the gated product).</summary>
    public float[]? AttnSubNorm { get; init; }
    public float[]? FfnSubNorm { get; init; }

    /// <summary>Every array this layer holds that is not a block linear (norms, biases), for byte counts.</summary>
    public IEnumerable<float[]> Extras => new[] { AttnNorm, FfnNorm, AttnNormBias, FfnNormBias, Bq, Bk, Bv, Bo, B1, B2, QNorm, KNorm,
        PostAttnNorm, PostFfnNorm, AttnSubNorm, FfnSubNorm }.OfType<float[]>();
}

public sealed class LlamaWeights
{
    public required float[] TokenEmbedding { get; init; }
    public required LlamaLayer[] Layers { get; init; }
    public required float[] FinalNorm { get; init; }
    /// <summary>Classifier [vocab, dim]; the same array as the embedding when they are shared.</summary>
    /// <remarks>Both may be stored placeholders (<see cref="StoredLinears"/>): read values through StoredLinears.Fp32.</remarks>
    public required float[] Output { get; init; }
    public bool SharedOutput => ReferenceEquals(Output, TokenEmbedding);
    /// <summary>Final LayerNorm bias (GPT-2).</summary>
    public float[]? FinalNormBias { get; init; }
    /// <summary>Learned position embeddings [max positions, dim] (GPT-2).</summary>
    public float[]? PositionEmbedding { get; init; }
}

/// <summary>
/// The decoder (llama2.c's run.c, written as the math, generalized by a <see cref="DecoderSpec"/> to the Hugging Face
/// decoder families): norm, rotary positions, grouped-query attention with a KV cache, gated MLP, tied or untied
/// classifier. Rows of a sequence state carry their own positions, so the same code serves prefill, one-token decode,
/// and prefill with tokens dropped between blocks.
/// </summary>
public sealed class LlamaModel : ITransformerModel
{
    public ModelConfig Config { get; }
    public ModelCard Card { get; }
    public LlamaWeights Weights { get; }
    public DecoderSpec Spec { get; }
    /// <summary>
    /// The model's own kernels for linears a context does not override (e.g. a ternary model's packed block linears);
    /// null = fp32. Set by <see cref="WithLinear"/>; a context's <see cref="ForwardContext.Linear"/> comes first.
    /// </summary>
    public ILinearOverride? LinearOverride { get; private init; }

    public LlamaModel(ModelConfig config, LlamaWeights weights, ModelCard card, DecoderSpec? spec = null)
    {
        config.Validate();
        if (config.Family != ModelFamily.Llama) throw new ArgumentException($"config is {config.Family}, not Llama", nameof(config));
        if (weights.Layers.Length != config.Layers) throw new ArgumentException($"{weights.Layers.Length} layers of weights for {config.Layers} layers", nameof(weights));
        Config = config;
        Weights = weights;
        Card = card;
        Spec = spec ?? DecoderSpec.Llama2;
    }

    /// <summary>The same weights, config, card and spec, running its linears through <paramref name="linear"/> by default.</summary>
    public LlamaModel WithLinear(ILinearOverride? linear) => new(Config, Weights, Card, Spec) { LinearOverride = linear };

    /// <summary>Token embeddings of <paramref name="tokens"/> at positions startPos, startPos + 1, ...</summary>
    public SequenceState Embed(ReadOnlySpan<int> tokens, int startPos = 0)
    {
        int d = Config.Dim;
        var positions = new int[tokens.Length];
        for (int i = 0; i < positions.Length; i++) positions[i] = startPos + i;
        var s = new SequenceState(tokens.Length, d, positions);
        var stored = StoredLinears.Find(Weights.TokenEmbedding); // an embedding kept as stored: only these rows are read
        for (int i = 0; i < tokens.Length; i++)
        {
            int t = tokens[i];
            if ((uint)t >= (uint)Config.Vocab) throw new ArgumentOutOfRangeException(nameof(tokens), t, $"token id at {i} is outside the vocabulary of {Config.Vocab}");
            var row = s.Row(i);
            if (stored is not null) stored.DecodeRow(t, row);
            else Weights.TokenEmbedding.AsSpan(t * d, d).CopyTo(row);
            if (Spec.EmbedScale != 1f) TensorPrimitives.Multiply(row, Spec.EmbedScale, row);
            if (Weights.PositionEmbedding is { } wpe)
            {
                int p = positions[i];
                if ((uint)p >= (uint)Config.MaxSeq) throw new ArgumentOutOfRangeException(nameof(startPos), p, $"position {p} is past the model's {Config.MaxSeq} learned positions");
                TensorPrimitives.Add(row, wpe.AsSpan(p * d, d), row);
            }
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

    public IReadOnlyList<NamedLinear> BlockLinears => _linears ??= Weights.Layers.SelectMany((l, i) => new NamedLinear?[]
    {
        new($"layers.{i}.wq", i, l.Wq, Config.QDim, Config.Dim),
        new($"layers.{i}.wk", i, l.Wk, Config.KvDim, Config.Dim),
        new($"layers.{i}.wv", i, l.Wv, Config.KvDim, Config.Dim),
        new($"layers.{i}.wo", i, l.Wo, Config.Dim, Config.QDim),
        new($"layers.{i}.w1", i, l.W1, Config.MlpDim, Config.Dim),
        new($"layers.{i}.w2", i, l.W2, Config.Dim, Config.MlpDim),
        l.W3 is null ? null : new($"layers.{i}.w3", i, l.W3, Config.MlpDim, Config.Dim),
    }.OfType<NamedLinear>()).ToArray();
    private NamedLinear[]? _linears;

    public IEnumerable<float[]> ParameterArrays =>
        new[] { Weights.TokenEmbedding, Weights.FinalNorm, Weights.FinalNormBias, Weights.PositionEmbedding }.OfType<float[]>()
            .Concat(Weights.SharedOutput ? [] : [Weights.Output])
            .Concat(Weights.Layers.SelectMany(l => l.Extras))
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

    /// <summary>Final norm and classifier (and the final soft-cap): logits of every row, or of the last row only.</summary>
    public float[] Logits(SequenceState s, ForwardContext ctx, bool allRows = true)
    {
        int d = Config.Dim, v = Config.Vocab;
        int first = allRows ? 0 : s.Rows - 1, n = s.Rows - first;
        var normed = _work.Current.Get(Slot.Xb, n * d);
        NormRows(s.Active.Slice(first * d, n * d), d, Weights.FinalNorm, Weights.FinalNormBias, normed);
        ctx.Fire(HookNames.LnFinal, Config.Layers, normed, n, d, s.TokenIndex[first..]);
        var logits = new float[n * v];
        ctx.RunLinear(normed, n, d, Weights.Output, v, logits, fallback: LinearOverride);
        if (Spec.FinalSoftCap > 0) SoftCap(logits, Spec.FinalSoftCap);
        return logits;
    }

    // The temporaries of a block, one workspace per thread: no allocation per call once warm (decode runs ~17 buffers per block).
    private readonly Workspaces _work = new(Slot.Count);
    private static class Slot { public const int Xb = 0, Q = 1, K = 2, V = 3, O = 4, Out = 5, H1 = 6, H3 = 7, Pattern = 8, Xq = 9, RowScale = 10, Scores = 11, Count = 12; }

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
            NormRows(x, d, w.AttnNorm, w.AttnNormBias, xb);
            ctx.Fire(HookNames.AttnIn(layer), layer, xb, n, d, s.TokenIndex);
            var o = Attention(layer, w, xb, s, ctx, ws);
            if (w.PostAttnNorm is { } post) NormRows(o, d, post, null, o);
            ctx.Fire(HookNames.AttnOut(layer), layer, o, n, d, s.TokenIndex);
            Ops.Add(x, o);
        }
        ctx.Fire(HookNames.ResidMid(layer), layer, x, n, d, s.TokenIndex);

        if (!ctx.Skips.SkipsMlp(layer))
        {
            NormRows(x, d, w.FfnNorm, w.FfnNormBias, xb);
            ctx.Fire(HookNames.MlpIn(layer), layer, xb, n, d, s.TokenIndex);
            int h = Config.MlpDim;
            var h1 = ws.Get(Slot.H1, n * h);
            Linear(ctx, ws, xb, n, d, w.W1, h, h1, w.B1);
            if (w.W3 is { } w3)
            {
                var h3 = ws.Get(Slot.H3, n * h);
                Linear(ctx, ws, xb, n, d, w3, h, h3);
                Gate(h1, h3);
            }
            else Ops.GeluTanh(h1);
            if (w.FfnSubNorm is { } sub) NormRows(h1, h, sub, null, h1);
            var o = ws.Get(Slot.Out, n * d);
            Linear(ctx, ws, h1, n, h, w.W2, d, o, w.B2);
            if (w.PostFfnNorm is { } post) NormRows(o, d, post, null, o);
            ctx.Fire(HookNames.MlpOut(layer), layer, o, n, d, s.TokenIndex);
            Ops.Add(x, o);
        }
        ctx.Fire(HookNames.ResidPost(layer), layer, x, n, d, s.TokenIndex);
    }

    /// <summary>The gated MLP's product into <paramref name="gate"/>: act(gate) * up.</summary>
    private void Gate(Span<float> gate, ReadOnlySpan<float> up)
    {
        switch (Spec.Mlp)
        {
            case DecoderMlp.SwiGlu: Ops.SwiGlu(gate, up); break;
            case DecoderMlp.GeGluTanh: Ops.GeluTanh(gate); TensorPrimitives.Multiply(gate, up, gate); break;
            case DecoderMlp.Relu2Glu: Relu2Glu(gate, up); break;
            default: throw new InvalidOperationException($"{Spec.Mlp} is not a gated MLP");
        }
    }

    // Its own method for the reason given at QuantizedLinear (MathF.Max), so Gate's precompiled code is kept.
    private static void Relu2Glu(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++) { float r = MathF.Max(gate[i], 0f); gate[i] = r * r * up[i]; }
    }

    /// <summary>The block's norm over each <paramref name="width"/>-wide row (in place when x and y are the same).</summary>
    private void NormRows(ReadOnlySpan<float> x, int width, float[] g, float[]? bias, Span<float> y)
    {
        for (int i = 0; i < x.Length / width; i++)
        {
            var xi = x.Slice(i * width, width);
            var yi = y.Slice(i * width, width);
            if (Spec.Norm == NormKind.Layer) Ops.LayerNorm(xi, g, bias, Config.NormEps, yi);
            else Ops.RmsNorm(xi, g, Config.NormEps, yi);
        }
    }

    /// <summary>
    /// A block linear through the context (so overrides reach it). With BitNet's quantized activations each input row is
    /// rounded to int8 at absmax 127 (s_x = 127 / max |x|, round half to even as torch.round, clamp to [-128, 127]) and the
    /// integer products are divided by s_x, as transformers' BitLinear does; the weights hold code / weight_scale. A linear
    /// on the packed ternary kernels (the checkpoint's codes, <see cref="StoredLinears.FindTernary"/>) takes x as it is:
    /// the kernels quantize it the same way inside (AbsMaxInt8) and compute acc * (1 / weight_scale) / s_x.
    /// One measured difference: transformers floors max |x| at 1e-5, AbsMaxInt8 gives an all-zero row a = 1 (both give 0 there).
    /// </summary>
    private void Linear(ForwardContext ctx, Workspace ws, ReadOnlySpan<float> x, int n, int k, float[] w, int m, Span<float> y, float[]? bias = null)
    {
        if (!Spec.QuantizedActivations || StoredLinears.FindTernary(w) is not null)
            ctx.RunLinear(x, n, k, w, m, y, bias, fallback: LinearOverride);
        else QuantizedLinear(ctx, ws, x, n, k, w, m, y, bias);
    }

    // Apart from Linear, which every decode step runs: on the Zen 4 VM of issue 14 the runtime rejects the ReadyToRun
    // code of methods using MathF.Max / Math.Clamp (the JIT events flag them "ReadyToRun rejected precompiled code"; the
    // instruction-set check of their float min/max code, it seems) and jits them, so they stay off the common path.
    private void QuantizedLinear(ForwardContext ctx, Workspace ws, ReadOnlySpan<float> x, int n, int k, float[] w, int m, Span<float> y, float[]? bias)
    {
        var xq = ws.Get(Slot.Xq, n * k);
        var sx = ws.Get(Slot.RowScale, n);
        for (int i = 0; i < n; i++)
        {
            var xi = x.Slice(i * k, k);
            sx[i] = 127f / MathF.Max(MathF.Abs(TensorPrimitives.MaxMagnitude(xi)), 1e-5f);
            var qi = xq.Slice(i * k, k);
            for (int j = 0; j < k; j++) qi[j] = Math.Clamp(MathF.Round(xi[j] * sx[i]), -128f, 127f);
        }
        ctx.RunLinear(xq, n, k, w, m, y, fallback: LinearOverride);
        for (int i = 0; i < n; i++) TensorPrimitives.Divide(y.Slice(i * m, m), sx[i], y.Slice(i * m, m));
        Ops.AddBias(y, n, m, bias, gelu: false);
    }

    private static void SoftCap(Span<float> v, float cap)
    {
        TensorPrimitives.Divide(v, cap, v);
        TensorPrimitives.Tanh(v, v);
        TensorPrimitives.Multiply(v, cap, v);
    }

    /// <summary>Rotary on interleaved pairs (2i, 2i + 1) with the layer's inverse frequencies, angles in float as HF computes them.</summary>
    private static void Rope(Span<float> v, int headDim, int pos, float[] invFreq)
    {
        for (int i = 0; i < v.Length; i += 2)
        {
            float val = pos * invFreq[i % headDim / 2];
            float fcr = MathF.Cos(val), fci = MathF.Sin(val);
            float v0 = v[i], v1 = v[i + 1];
            v[i] = v0 * fcr - v1 * fci;
            v[i + 1] = v0 * fci + v1 * fcr;
        }
    }

    private void Rotate(int layer, Span<float> v, int pos)
    {
        if (Spec.LearnedPositions) return;
        if (Spec.RopeInvFreq is { } f) Rope(v, Config.HeadDim, pos, f[layer]);
        else Ops.Rope(v, Config.HeadDim, pos, Config.RopeTheta);
    }

    private Span<float> Attention(int layer, LlamaLayer w, Span<float> xb, SequenceState s, ForwardContext ctx, Workspace ws)
    {
        int n = s.Rows, d = Config.Dim, qd = Config.QDim, kv = Config.KvDim, hd = Config.HeadDim, heads = Config.Heads;
        float[] q = ws.Array(Slot.Q, n * qd), k = ws.Array(Slot.K, n * kv), v = ws.Array(Slot.V, n * kv);
        Linear(ctx, ws, xb, n, d, w.Wq, qd, q, w.Bq);
        Linear(ctx, ws, xb, n, d, w.Wk, kv, k, w.Bk);
        Linear(ctx, ws, xb, n, d, w.Wv, kv, v, w.Bv);
        if (w.QNorm is { } qn) NormRows(q.AsSpan(0, n * qd), hd, qn, null, q);
        if (w.KNorm is { } kn) NormRows(k.AsSpan(0, n * kv), hd, kn, null, k);
        for (int i = 0; i < n; i++)
        {
            Rotate(layer, q.AsSpan(i * qd, qd), s.Positions[i]);
            Rotate(layer, k.AsSpan(i * kv, kv), s.Positions[i]);
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

        // Ranking asks for one query row's pattern only: the queries are that row (nq = 1), the keys every row.
        int q0 = ctx.PatternQueryRow ?? 0, nq = ctx.PatternQueryRow is null ? n : 1;
        bool wantPattern = ctx.Wants(HookNames.AttnPattern(layer));
        var pattern = wantPattern ? ws.Array(Slot.Pattern, heads * nq * c) : null;
        var o = ws.Array(Slot.O, n * qd);
        int group = heads / Config.KvHeads;
        var qPos = nq == n ? s.Positions : [s.Positions[q0]];
        int window = Spec.WindowOf(layer);
        if (Spec.AttentionScale > 0)  // the kernels scale by 1/sqrt(hd): fold the family's scale into q instead
            TensorPrimitives.Multiply(q.AsSpan(0, n * qd), Spec.AttentionScale * MathF.Sqrt(hd), q.AsSpan(0, n * qd));
        // causal by position: a row sees keys at its own position or earlier (and, with a window, fewer than `window` back)
        Func<int, int, bool>? allowed = window > 0 ? (i, j) => keyPos[j] <= qPos[i] && keyPos[j] > qPos[i] - window : null;
        float[]? scores = Spec.AttentionSoftCap > 0 ? ws.Array(Slot.Scores, nq * c * heads) : null;
        void Head(int h)
        {
            var probs = pattern is null ? default : pattern.AsSpan(h * nq * c, nq * c);
            if (scores is not null)
                SoftCappedHead(q, nq, qd, q0 * qd + h * hd, keys, values, c, kv, h / group * hd, hd, qPos, keyPos, window, o, scores.AsSpan(h * nq * c, nq * c), probs);
            else if (allowed is not null)
                AttentionKernel.Head(q.AsSpan(q0 * qd, nq * qd), nq, qd, h * hd, keys, values, c, kv, h / group * hd, hd, allowed, o.AsSpan(q0 * qd, nq * qd), probs);
            else
                AttentionKernel.CausalHead(q.AsSpan(q0 * qd, nq * qd), nq, qd, h * hd, keys, values, c, kv, h / group * hd, hd, qPos, keyPos,
                    o.AsSpan(q0 * qd, nq * qd), probs);
        }
        if (n == 1 && ctx.Cache is { } dc && scores is null && allowed is null)
        {
            // Decoding: one row against the cache, head by head on this thread, with no per-head gathers.
            var lc = dc.Layer(layer);
            var (kt, vt) = lc.Transposed();
            var sc = ws.Get(Slot.Scores, c);
            for (int h = 0; h < heads; h++)
                AttentionKernel.DecodeHead(q.AsSpan(0, qd), h * hd, keys, kt, vt, lc.TransposedStride, c, kv, h / group * hd, hd, qPos[0], keyPos,
                    o.AsSpan(0, qd), sc, pattern is null ? default : pattern.AsSpan(h * c, c));
        }
        else if ((long)nq * c * qd >= 1 << 16 && ctx.Threads > 1)
            Parallelism.For(heads, ctx.Threads, Head);
        else
            for (int h = 0; h < heads; h++) Head(h);
        if (pattern is not null) ctx.Hooks!.Fire(HookNames.AttnPattern(layer), layer, pattern.AsSpan(0, heads * nq * c), [heads, nq, c], s.TokenIndex);

        if (w.AttnSubNorm is { } sub) NormRows(o.AsSpan(0, n * qd), qd, sub, null, o);
        var outp = ws.Get(Slot.Out, n * d);
        Linear(ctx, ws, o.AsSpan(0, n * qd), n, qd, w.Wo, d, outp, w.Bo);
        return outp;
    }

    /// <summary>
    /// One head with Gemma 2's soft-capped scores, s = cap * tanh(q.k / sqrt(hd) / cap) (q already carries the family's
    /// scale), masked by position (and window), softmax, weighted values. Row by row: the GEMM kernels cannot cap.
    /// </summary>
    private void SoftCappedHead(float[] q, int n, int qStride, int qOff, float[] keys, float[] values, int c, int kvStride, int kvOff, int hd,
        int[] qPos, int[] keyPos, int window, float[] o, Span<float> scores, Span<float> probs)
    {
        float scale = 1f / MathF.Sqrt(hd), cap = Spec.AttentionSoftCap;
        for (int i = 0; i < n; i++)
        {
            var qi = q.AsSpan(i * qStride + qOff, hd);
            var si = scores.Slice(i * c, c);
            for (int j = 0; j < c; j++) si[j] = TensorPrimitives.Dot(qi, keys.AsSpan(j * kvStride + kvOff, hd)) * scale;
            SoftCap(si, cap);
            for (int j = 0; j < c; j++)
                if (keyPos[j] > qPos[i] || (window > 0 && keyPos[j] <= qPos[i] - window)) si[j] = float.NegativeInfinity;
            Ops.Softmax(si);
            var oi = o.AsSpan(i * qStride + qOff, hd);
            oi.Clear();
            for (int j = 0; j < c; j++)
                if (si[j] != 0) TensorPrimitives.MultiplyAdd(values.AsSpan(j * kvStride + kvOff, hd), si[j], oi, oi);
            if (!probs.IsEmpty) si.CopyTo(probs.Slice(i * c, c));
        }
    }
}
