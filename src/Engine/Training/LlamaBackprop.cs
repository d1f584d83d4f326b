using System.Numerics.Tensors;
using Workbench.Engine.Models;
using Workbench.Engine.Tensors;
using Workbench.Engine.TokenDrop;

namespace Workbench.Engine.Training;

/// <summary>
/// Reverse-mode gradients of the Llama decoder's mean next-token cross-entropy, written out layer by layer as llm.c
/// does: <see cref="Forward"/> runs a batch of sequences (each row causal on its own, positions 0..T-1) and keeps what
/// the backward needs; <see cref="Backward"/> walks the chain rule back from the loss. All rows of the batch go through
/// the linear layers together ([B*T, in]); attention is per sequence. With <c>qat</c> every block linear runs BitNet
/// b1.58 (ternary absmean weights, per-token int8 absmax inputs) forward and straight-through backward.
/// The block is the one its <see cref="DecoderSpec"/> describes (<see cref="LlamaParameters.Covered"/>), read from the spec
/// and the parameters present, never from the family name: q/k/v/o biases and q/k RMSNorm before the rotary (Qwen2, Qwen3),
/// a sliding window by position (Mistral, Gemma), BitNet's sub-norms before o_proj and down_proj with its squared-ReLU GLU,
/// Gemma's sandwich norms, GeGLU, embedding scale, attention scale and soft-caps, GPT-2's LayerNorm, learned positions and
/// ungated GELU MLP, rotary frequencies per layer (default or llama3). Query width is heads x head_dim (may differ from dim).
/// Deterministic: every sum has a fixed order whatever the thread count.
/// With a <see cref="TrainingPyramid"/>, each row keeps only part of its context from the schedule's boundaries on
/// (PyramidDrop while training): later blocks run on fewer rows, and the loss is the mean over the window's suffix
/// (<see cref="TrainingPyramid"/> says which rows are which). The choice of rows is a constant of the step; the
/// gradients are exact for the computation performed with it (dropped rows get no gradient from the blocks they skip).
/// </summary>
public sealed class LlamaBackprop
{
    public ModelConfig Config { get; }
    public bool Qat { get; }
    public ModuleSkips Skips { get; }
    public int Threads { get; }
    public TrainingPyramid? Pyramid { get; }
    /// <summary>What the block does (the parameters must carry the same spec).</summary>
    public DecoderSpec Spec { get; }

    /// <summary>
    /// Reuse the rows the last forward kept at each boundary instead of ranking again (same batch shape): makes the
    /// loss a smooth function of the parameters, for a finite-difference check of the token-dropped backward.
    /// </summary>
    public bool FreezeSelection { get; set; }

    private readonly int _l, _d, _qd, _kv, _hd, _heads, _group, _mlp, _vocab;
    private readonly bool _relu2;
    private int _b, _t, _n, _nLoss;
    private int[] _inputs = [], _targets = [];
    // rows per sequence entering block l (index _l: the final state), their original positions, and for a block that
    // starts a pyramid stage the row of the previous stage each row came from (null: no drop before this block)
    private int[] _rows = [];
    private int[][] _pos = [];
    private int[]?[] _from = [];
    private int[]? _lossFrom; // final-state row of each loss row (null: every row carries the loss)
    private float[] _xL = [], _dxL = [], _rankH = [], _rankHQ = [], _rRank = [], _rankK = [], _rankQH = [], _rankQ = [];
    private float[][] _cos = [], _sin = []; // per layer (layers of the same frequencies share one table)
    // per layer: residual in, attention norm (1/rms), normed input, its quantized copy, q/k/v (rotated), probabilities,
    // attention output and its quantized copy, residual mid, MLP norm, normed input (+ quantized), gate, up, sigmoid(gate), product (+ quantized)
    private float[][] _xIn = [], _rAtt = [], _hAtt = [], _hAttQ = [], _q = [], _k = [], _v = [], _att = [], _o = [], _oQ = [],
        _xMid = [], _rFfn = [], _hFfn = [], _hFfnQ = [], _g = [], _u = [], _sig = [], _a = [], _aQ = [];
    // q/k before their RMSNorm and its 1/rms per head (QkNorm); sub-normed attention output / MLP product and their 1/rms (SubNorms)
    private float[][] _qPre = [], _kPre = [], _rQ = [], _rK = [], _oN = [], _rO = [], _aN = [], _rA = [];
    // the attention / MLP outputs before Gemma's post-norms and their 1/rms (SandwichNorms); the final soft-cap's tanh
    private float[][] _attnOut = [], _rPostA = [], _mlpOut = [], _rPostF = [];
    private float[] _capT = [], _dPost = [];
    private float[] _x = [], _rFinal = [], _xf = [], _probs = [], _tmp = [];
    // backward scratch
    private float[] _dx = [], _dh = [], _dq = [], _dk = [], _dv = [], _dO = [], _dA = [], _dG = [], _dU = [], _dLogits = [], _dyT = [];
    private float[] _dqPre = [], _dkPre = [], _dON = [], _dAN = [];
    // the weights the forward used: the parameters themselves, or their ternary STE values under QAT
    private float[] _wq = [], _wk = [], _wv = [], _wo = [], _w1 = [], _w2 = [], _w3 = [];
    private bool _haveForward;

    /// <param name="spec">The block (<see cref="LlamaModel.Spec"/>); null: llama2.c's Llama-2 block. Its rotary frequencies
    /// (<see cref="DecoderSpec.RopeInvFreq"/>, e.g. llama3-scaled) are used with angles in float as the inference forward
    /// computes them; without them theta^(-2i/head_dim) from the config, angles in double as llama2.c.</param>
    public LlamaBackprop(ModelConfig config, bool qat = false, ModuleSkips? skips = null, int threads = 0, TrainingPyramid? pyramid = null,
        DecoderSpec? spec = null)
    {
        if (config.Family != ModelFamily.Llama) throw new ArgumentException($"training covers Llama decoders, not {config.Family}", nameof(config));
        Config = config;
        Qat = qat;
        Skips = skips ?? ModuleSkips.None;
        Skips.Check(config, nameof(skips));
        Threads = threads <= 0 ? Environment.ProcessorCount : threads;
        _l = config.Layers; _d = config.Dim; _qd = config.QDim; _kv = config.KvDim; _hd = config.HeadDim; _heads = config.Heads;
        _group = config.Heads / config.KvHeads; _mlp = config.MlpDim; _vocab = config.Vocab;
        pyramid?.Schedule.Validate(config.Layers);
        Pyramid = pyramid;
        Spec = spec ?? DecoderSpec.Llama2;
        if (LlamaParameters.UnsupportedSpec(Spec, config) is { } why) throw new ArgumentException($"the backprop covers {LlamaParameters.Covered}, and {why}", nameof(spec));
        if (Spec.RopeInvFreq is { } ropeInvFreq && (ropeInvFreq.Length != config.Layers || ropeInvFreq.Any(f => f.Length != config.HeadDim / 2)))
            throw new ArgumentException($"rotary frequencies for {ropeInvFreq.Length} layers, {ropeInvFreq[0].Length} each, for {config.Layers} layers of head {config.HeadDim}", nameof(spec));
        if (Spec.SlidingWindow is { } win && win.Length != config.Layers)
            throw new ArgumentException($"{win.Length} sliding windows for {config.Layers} layers", nameof(spec));
        _relu2 = Spec.Mlp == DecoderMlp.Relu2Glu;
        _gelu = Spec.Mlp is DecoderMlp.GeGluTanh or DecoderMlp.GeluTanh;
        _layerNorm = Spec.Norm == NormKind.Layer;
        _scale = Spec.AttentionScale > 0 ? Spec.AttentionScale : 1f / MathF.Sqrt(_hd);
    }

    private readonly bool _gelu, _layerNorm;
    // LayerNorm's row means (GPT-2), beside the 1/std kept in the rms arrays
    private float[][] _mAtt = [], _mFfn = [];
    private float[] _mFinal = [], _mRank = [];
    private readonly float _scale; // attention scores are q.k times this

    /// <summary>Softmax of the last forward's logits at the loss rows, [rows, vocab] (kept for the backward).</summary>
    public ReadOnlySpan<float> Probabilities => _probs.AsSpan(0, _nLoss * _vocab);

    /// <summary>The last forward's logits at the loss rows, [rows, vocab], when <see cref="KeepLogits"/> was set (a copy before the softmax).</summary>
    public ReadOnlySpan<float> Logits => _logits.AsSpan(0, KeepLogits ? _nLoss * _vocab : 0);

    /// <summary>Keep a copy of the logits for <see cref="Logits"/> (for checking the training forward against inference).</summary>
    public bool KeepLogits { get; set; }
    private float[] _logits = [];

    /// <summary>Rows per sequence that entered each block in the last forward, and (last entry) the rows of the final state.</summary>
    public IReadOnlyList<int> RowsPerSequence => _rows;

    /// <summary>Original positions of the rows entering block <paramref name="layer"/> (<c>Config.Layers</c>: the final state), sequence after sequence.</summary>
    public ReadOnlySpan<int> Positions(int layer) => _pos[layer].AsSpan(0, _b * _rows[layer]);

    /// <summary>Rows that carry the loss in the last forward (all B*T without a pyramid, B times the suffix with one).</summary>
    public int LossRows => _nLoss;

    /// <summary>Loss and gradients (written into <paramref name="grads"/>, which is cleared first) of one batch.</summary>
    public double LossAndGradients(LlamaParameters p, IReadOnlyList<int[]> batch, LlamaParameters grads)
    {
        double loss = Forward(p, batch);
        Backward(p, grads);
        return loss;
    }

    /// <summary>
    /// Mean cross-entropy of predicting row[i + 1] from row[0..i] for every row of <paramref name="batch"/> (all rows
    /// the same length T + 1).
    /// </summary>
    public double Forward(LlamaParameters p, IReadOnlyList<int[]> batch)
    {
        if (p.Config != Config) throw new ArgumentException("parameters of another configuration", nameof(p));
        if (p.Spec != Spec) throw new ArgumentException($"parameters of another block ({p.Spec.Family} spec, the backprop runs {Spec.Family}'s)", nameof(p));
        Prepare(batch);
        int d = _d, qd = _qd, kv = _kv, n = _n;
        EffectiveWeights(p);

        for (int i = 0; i < n; i++)
        {
            p.Embedding.AsSpan(_inputs[i] * d, d).CopyTo(_x.AsSpan(i * d, d));
            if (Spec.EmbedScale != 1f) TensorPrimitives.Multiply(_x.AsSpan(i * d, d), Spec.EmbedScale, _x.AsSpan(i * d, d));
            if (p.PositionEmbedding is { } wpe) Add(_x.AsSpan(i * d, d), wpe.AsSpan(_pos[0][i] * d, d), d);
        }

        for (int l = 0; l < _l; l++)
        {
            if (Pyramid is not null && l > 0) Stage(p, l);
            n = _b * _rows[l];
            _x.AsSpan(0, n * d).CopyTo(_xIn[l]);
            if (!Skips.SkipsAttention(l))
            {
                BlockNorm(_x, Layer(p.AttnNorm, l), Opt(p.AttnNormBias, l), _hAtt[l], _rAtt[l], _mAtt[l], n);
                var input = Quantize(_hAtt[l], _hAttQ[l], n, d);
                var (q, k) = p.QNorm is null ? (_q[l], _k[l]) : (_qPre[l], _kPre[l]);
                Linear(input, n, d, Layer(_wq, l), qd, q);
                Linear(input, n, d, Layer(_wk, l), kv, k);
                Linear(input, n, d, Layer(_wv, l), kv, _v[l]);
                AddBias(q, n, qd, p.Bq, l);
                AddBias(k, n, kv, p.Bk, l);
                AddBias(_v[l], n, kv, p.Bv, l);
                if (p.QNorm is not null)
                {
                    // RMSNorm over head_dim of every head, before the rotary
                    RmsNorm(q, Layer(p.QNorm, l), _q[l], _rQ[l], n * _heads, _hd);
                    RmsNorm(k, Layer(p.KNorm!, l), _k[l], _rK[l], n * Config.KvHeads, _hd);
                }
                Rope(_q[l], qd, _pos[l], n, inverse: false, l);
                Rope(_k[l], kv, _pos[l], n, inverse: false, l);
                AttentionForward(l);
                if (p.AttnSubNorm is not null) RmsNorm(_o[l], Layer(p.AttnSubNorm, l), _oN[l], _rO[l], n, qd);
                Linear(Quantize(_oN[l], _oQ[l], n, qd), n, qd, Layer(_wo, l), d, _tmp);
                AddBias(_tmp, n, d, p.Bo, l);
                if (p.PostAttnNorm is not null)
                {
                    // Gemma's sandwich: the attention output normed again before it joins the residual
                    _tmp.AsSpan(0, n * d).CopyTo(_attnOut[l]);
                    RmsNorm(_attnOut[l], Layer(p.PostAttnNorm, l), _tmp, _rPostA[l], n, d);
                }
                Add(_x, _tmp, n * d);
            }
            _x.AsSpan(0, n * d).CopyTo(_xMid[l]);
            if (!Skips.SkipsMlp(l))
            {
                BlockNorm(_x, Layer(p.FfnNorm, l), Opt(p.FfnNormBias, l), _hFfn[l], _rFfn[l], _mFfn[l], n);
                var input = Quantize(_hFfn[l], _hFfnQ[l], n, d);
                Linear(input, n, d, Layer(_w1, l), _mlp, _g[l]);
                AddBias(_g[l], n, _mlp, p.B1, l);
                if (p.W3 is not null) Linear(input, n, d, Layer(_w3, l), _mlp, _u[l]);
                bool gated = p.W3 is not null;
                float[] g = _g[l], u = _u[l], a = _a[l], sig = _sig[l];
                if (_relu2)
                    // BitNet: relu(g)^2 * u, as the inference forward multiplies
                    for (int i = 0; i < n * _mlp; i++)
                    {
                        float r = MathF.Max(g[i], 0f);
                        a[i] = r * r * u[i];
                    }
                else if (_gelu)
                    // Gemma: gelu_tanh(g) * u, gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))); GPT-2: gelu_tanh(g)
                    // alone; keeps the tanh
                    for (int i = 0; i < n * _mlp; i++)
                    {
                        float th = MathF.Tanh((g[i] * (0.044715f * (g[i] * g[i]) + 1f)) * 0.7978845608028654f);
                        sig[i] = th;
                        a[i] = gated ? g[i] * (0.5f * (th + 1f)) * u[i] : g[i] * (0.5f * (th + 1f));
                    }
                else
                    // silu(g) = g / (1 + exp(-g)) as torch computes it (QAT rounding flips follow every last bit)
                    for (int i = 0; i < n * _mlp; i++)
                    {
                        float e = 1f + MathF.Exp(-g[i]);
                        sig[i] = 1f / e;
                        a[i] = g[i] / e * u[i];
                    }
                if (p.FfnSubNorm is not null) RmsNorm(a, Layer(p.FfnSubNorm, l), _aN[l], _rA[l], n, _mlp);
                Linear(Quantize(_aN[l], _aQ[l], n, _mlp), n, _mlp, Layer(_w2, l), d, _tmp);
                AddBias(_tmp, n, d, p.B2, l);
                if (p.PostFfnNorm is not null)
                {
                    _tmp.AsSpan(0, n * d).CopyTo(_mlpOut[l]);
                    RmsNorm(_mlpOut[l], Layer(p.PostFfnNorm, l), _tmp, _rPostF[l], n, d);
                }
                Add(_x, _tmp, n * d);
            }
        }

        // the final norm and the classifier run on the loss rows only
        if (Pyramid is not null) GatherLossRows();
        int nl = _nLoss;
        var xl = _x;
        if (_lossFrom is { } from)
        {
            xl = _xL;
            for (int i = 0; i < nl; i++) _x.AsSpan(from[i] * d, d).CopyTo(xl.AsSpan(i * d, d));
        }
        BlockNorm(xl, p.FinalNorm, p.FinalNormBias, _xf, _rFinal, _mFinal, nl);
        Linear(_xf, nl, d, p.Output, _vocab, _probs);
        if (Spec.FinalSoftCap > 0)
        {
            // logits = cap tanh(z / cap) (Gemma 2); the tanh is kept for the backward
            float cap = Spec.FinalSoftCap;
            for (int i = 0; i < nl * _vocab; i++) _probs[i] = cap * (_capT[i] = MathF.Tanh(_probs[i] / cap));
        }
        if (KeepLogits)
        {
            if (_logits.Length < nl * _vocab) _logits = new float[nl * _vocab];
            _probs.AsSpan(0, nl * _vocab).CopyTo(_logits);
        }
        // softmax per row (kept for the backward); the loss sums in double
        double loss = 0;
        for (int i = 0; i < nl; i++)
        {
            var row = _probs.AsSpan(i * _vocab, _vocab);
            float max = TensorPrimitives.Max(row), target = row[_targets[i]];
            TensorPrimitives.Subtract(row, max, row);
            TensorPrimitives.Exp(row, row);
            float sum = TensorPrimitives.Sum(row);
            loss += max + Math.Log(sum) - target;
            TensorPrimitives.Multiply(row, 1f / sum, row);
        }
        _haveForward = true;
        return loss / nl;
    }

    /// <summary>
    /// Before block <paramref name="layer"/>: if a schedule boundary falls here, rank each sequence's context rows by the
    /// attention its query row (the window's last) pays them in this block, mean over heads (as PyramidDrop ranks at
    /// inference, with the weights this forward runs), keep the top k (ties: the earlier row) and every protected row
    /// in order, and gather the residual stream to those rows.
    /// </summary>
    private void Stage(LlamaParameters p, int layer)
    {
        int stage = -1;
        var boundaries = Pyramid!.Schedule.Boundaries;
        for (int i = 0; i < boundaries.Count; i++) if (boundaries[i] == layer) stage = i;
        int tPrev = _rows[layer - 1];
        if (stage < 0)
        {
            _rows[layer] = tPrev;
            _pos[layer] = _pos[layer - 1];
            _from[layer] = null;
            return;
        }
        int contextEnd = Pyramid.ContextEnd(_t), d = _d;
        var prevPos = _pos[layer - 1];
        int candidates = 0;
        for (int r = 0; r < tPrev; r++) if (TrainingPyramid.IsContext(prevPos[r], contextEnd)) candidates++;
        int keep = Math.Min(candidates, PyramidSchedule.KeepCount(candidates, Pyramid.Schedule.KeepRatios[stage]));
        if (keep == candidates)
        {
            // nothing to drop: no ranking, no gather (a keep-1 schedule is the undropped computation at its cost)
            _rows[layer] = tPrev;
            _pos[layer] = prevPos;
            _from[layer] = null;
            return;
        }
        int tNew = tPrev - candidates + keep;
        if (!(FreezeSelection && _from[layer] is { } frozen && frozen.Length == _b * tNew))
        {
            var scores = RankScores(p, layer, tPrev);
            var from = new int[_b * tNew];
            var pos = new int[_b * tNew];
            for (int b = 0; b < _b; b++)
            {
                var cand = new List<int>(candidates);
                for (int r = 0; r < tPrev; r++) if (TrainingPyramid.IsContext(prevPos[b * tPrev + r], contextEnd)) cand.Add(r);
                var kept = Enumerable.Range(0, cand.Count).OrderByDescending(i => scores[b * tPrev + cand[i]]).ThenBy(i => i)
                    .Take(keep).Select(i => cand[i]).ToHashSet();
                int o = b * tNew;
                for (int r = 0; r < tPrev; r++)
                {
                    if (TrainingPyramid.IsContext(prevPos[b * tPrev + r], contextEnd) && !kept.Contains(r)) continue;
                    from[o] = b * tPrev + r;
                    pos[o] = prevPos[b * tPrev + r];
                    o++;
                }
            }
            _from[layer] = from;
            _pos[layer] = pos;
        }
        _rows[layer] = tNew;
        var f = _from[layer]!;
        for (int i = 0; i < f.Length; i++) _x.AsSpan(f[i] * d, d).CopyTo(_tmp.AsSpan(i * d, d));
        _tmp.AsSpan(0, f.Length * d).CopyTo(_x);
    }

    // Attention of each sequence's last row to all its rows in block `layer`, mean over heads: [B * rows].
    private float[] RankScores(LlamaParameters p, int layer, int rows)
    {
        int d = _d, qd = _qd, n = _b * rows, hd = _hd;
        BlockNorm(_x, Layer(p.AttnNorm, layer), Opt(p.AttnNormBias, layer), _rankH, _rRank, _mRank, n);
        var h = Quantize(_rankH, _rankHQ, n, d);
        Linear(h, n, d, Layer(_wk, layer), _kv, _rankK);
        AddBias(_rankK, n, _kv, p.Bk, layer);
        if (p.KNorm is not null) RmsNorm(_rankK, Layer(p.KNorm, layer), _rankK, new float[n * Config.KvHeads], n * Config.KvHeads, hd);
        Rope(_rankK, _kv, _pos[layer - 1], n, inverse: false, layer);
        for (int b = 0; b < _b; b++) h.AsSpan((b * rows + rows - 1) * d, d).CopyTo(_rankQH.AsSpan(b * d, d));
        Linear(_rankQH, _b, d, Layer(_wq, layer), qd, _rankQ);
        AddBias(_rankQ, _b, qd, p.Bq, layer);
        if (p.QNorm is not null) RmsNorm(_rankQ, Layer(p.QNorm, layer), _rankQ, new float[_b * _heads], _b * _heads, hd);
        var lastPos = new int[_b];
        for (int b = 0; b < _b; b++) lastPos[b] = _pos[layer - 1][b * rows + rows - 1];
        Rope(_rankQ, qd, lastPos, _b, inverse: false, layer);
        var scores = new float[n];
        float scale = _scale, cap = Spec.AttentionSoftCap;
        int window = Spec.WindowOf(layer);
        var s = new float[rows];
        for (int b = 0; b < _b; b++)
        {
            // the query row sees the keys inside its window only (all of them without one)
            int lo = 0;
            if (window > 0) while (_pos[layer - 1][b * rows + lo] <= lastPos[b] - window) lo++;
            var sv = s.AsSpan(lo, rows - lo);
            for (int head = 0; head < _heads; head++)
            {
                int kvh = head / _group;
                var q = _rankQ.AsSpan(b * qd + head * hd, hd);
                for (int j = lo; j < rows; j++)
                {
                    s[j] = TensorPrimitives.Dot(q, _rankK.AsSpan((b * rows + j) * _kv + kvh * hd, hd)) * scale;
                    if (cap > 0) s[j] = cap * MathF.Tanh(s[j] / cap);
                }
                TensorPrimitives.SoftMax(sv, sv);
                for (int j = lo; j < rows; j++) scores[b * rows + j] += s[j] / _heads;
            }
        }
        return scores;
    }

    /// <summary>Gradients of the last <see cref="Forward"/>'s loss with respect to every parameter, into <paramref name="grads"/> (cleared first).</summary>
    public void Backward(LlamaParameters p, LlamaParameters grads)
    {
        if (!_haveForward) throw new InvalidOperationException("Backward needs a Forward first");
        if (grads.Config != Config || grads.SharedOutput != p.SharedOutput || grads.Tensors.Count != p.Tensors.Count)
            throw new ArgumentException("gradients of another shape", nameof(grads));
        grads.Clear();
        int d = _d, qd = _qd, kv = _kv, m = _mlp, nl = _nLoss, n = _b * _rows[_l];

        // cross-entropy: dlogits = (softmax - onehot) / N
        float inv = 1f / nl;
        for (int i = 0; i < nl; i++)
        {
            var src = _probs.AsSpan(i * _vocab, _vocab);
            var dst = _dLogits.AsSpan(i * _vocab, _vocab);
            for (int j = 0; j < _vocab; j++) dst[j] = src[j] * inv;
            dst[_targets[i]] -= inv;
        }
        if (Spec.FinalSoftCap > 0)
            for (int i = 0; i < nl * _vocab; i++) _dLogits[i] *= 1f - _capT[i] * _capT[i];
        // classifier (tied: into the embedding's gradient) and final norm
        GemmBackward.InputGrad(_dLogits, nl, _vocab, p.Output, d, _dh, Threads);
        GemmBackward.WeightGrad(_dLogits, nl, _vocab, _xf, d, grads.Output, _dyT, Threads);
        Array.Clear(_dx, 0, n * d);
        if (_lossFrom is { } lossFrom)
        {
            Array.Clear(_dxL, 0, nl * d);
            BlockNormBackward(_dh, _xL, p.FinalNorm, _rFinal, _mFinal, _dxL, grads.FinalNorm, grads.FinalNormBias, nl);
            for (int i = 0; i < nl; i++) _dxL.AsSpan(i * d, d).CopyTo(_dx.AsSpan(lossFrom[i] * d, d));
        }
        else BlockNormBackward(_dh, _x, p.FinalNorm, _rFinal, _mFinal, _dx, grads.FinalNorm, grads.FinalNormBias, n);

        for (int l = _l - 1; l >= 0; l--)
        {
            n = _b * _rows[l];
            if (!Skips.SkipsMlp(l))
            {
                // x += W2 subnorm(act(W1 h) * W3 h), h = rmsnorm(x_mid) (act: silu, or relu^2 with BitNet's sub-norm)
                var dA = _dA;
                var dy = ThroughNorm(_dx, p.PostFfnNorm, grads.PostFfnNorm, l, _mlpOut[l], _rPostF[l], _dPost, n, d);
                BiasGrad(dy, n, d, grads.B2, l);
                GemmBackward.InputGrad(dy, n, d, Layer(_w2, l), m, dA, Threads);
                GemmBackward.WeightGrad(dy, n, d, _aQ[l], m, Layer(grads.W2, l), _dyT, Threads);
                dA = ThroughNorm(dA, p.FfnSubNorm, grads.FfnSubNorm, l, _a[l], _rA[l], _dAN, n, m);
                float[] g = _g[l], u = _u[l], sg = _sig[l];
                if (_relu2)
                    for (int i = 0; i < n * m; i++)
                    {
                        float r = MathF.Max(g[i], 0f);
                        _dU[i] = dA[i] * (r * r);
                        _dG[i] = dA[i] * u[i] * (2f * r);
                    }
                else if (_gelu)
                    for (int i = 0; i < n * m; i++)
                    {
                        float th = sg[i], x = g[i];
                        float dgelu = 0.5f * (th + 1f) + 0.5f * x * (1f - th * th) * 0.7978845608028654f * (1f + 3f * 0.044715f * x * x);
                        if (p.W3 is null) { _dG[i] = dA[i] * dgelu; continue; }
                        _dU[i] = dA[i] * (x * (0.5f * (th + 1f)));
                        _dG[i] = dA[i] * u[i] * dgelu;
                    }
                else
                    for (int i = 0; i < n * m; i++)
                    {
                        float sig = sg[i];
                        _dU[i] = dA[i] * (g[i] * sig);
                        _dG[i] = dA[i] * u[i] * (sig * (1f + g[i] * (1f - sig)));
                    }
                BiasGrad(_dG, n, m, grads.B1, l);
                GemmBackward.InputGrad(_dG, n, m, Layer(_w1, l), d, _dh, Threads);
                GemmBackward.WeightGrad(_dG, n, m, _hFfnQ[l], d, Layer(grads.W1, l), _dyT, Threads);
                if (p.W3 is not null)
                {
                    GemmBackward.InputGrad(_dU, n, m, Layer(_w3, l), d, _tmp, Threads);
                    Add(_dh, _tmp, n * d);
                    GemmBackward.WeightGrad(_dU, n, m, _hFfnQ[l], d, Layer(grads.W3!, l), _dyT, Threads);
                }
                BlockNormBackward(_dh, _xMid[l], Layer(p.FfnNorm, l), _rFfn[l], _mFfn[l], _dx, Layer(grads.FfnNorm, l), Opt(grads.FfnNormBias, l), n);
            }
            if (!Skips.SkipsAttention(l))
            {
                // x += Wo subnorm(attention(rope(norm(Wq h + bq)), rope(norm(Wk h + bk)), Wv h + bv)) + bo, h = rmsnorm(x_in)
                var dy = ThroughNorm(_dx, p.PostAttnNorm, grads.PostAttnNorm, l, _attnOut[l], _rPostA[l], _dPost, n, d);
                BiasGrad(dy, n, d, grads.Bo, l);
                GemmBackward.InputGrad(dy, n, d, Layer(_wo, l), qd, _dO, Threads);
                GemmBackward.WeightGrad(dy, n, d, _oQ[l], qd, Layer(grads.Wo, l), _dyT, Threads);
                var dO = ThroughNorm(_dO, p.AttnSubNorm, grads.AttnSubNorm, l, _o[l], _rO[l], _dON, n, qd);
                AttentionBackward(l, dO);
                Rope(_dq, qd, _pos[l], n, inverse: true, l);
                Rope(_dk, kv, _pos[l], n, inverse: true, l);
                var dq = ThroughNorm(_dq, p.QNorm, grads.QNorm, l, _qPre[l], _rQ[l], _dqPre, n * _heads, _hd);
                var dk = ThroughNorm(_dk, p.KNorm, grads.KNorm, l, _kPre[l], _rK[l], _dkPre, n * Config.KvHeads, _hd);
                BiasGrad(dq, n, qd, grads.Bq, l);
                BiasGrad(dk, n, kv, grads.Bk, l);
                BiasGrad(_dv, n, kv, grads.Bv, l);
                GemmBackward.InputGrad(dq, n, qd, Layer(_wq, l), d, _dh, Threads);
                GemmBackward.InputGrad(dk, n, kv, Layer(_wk, l), d, _tmp, Threads);
                Add(_dh, _tmp, n * d);
                GemmBackward.InputGrad(_dv, n, kv, Layer(_wv, l), d, _tmp, Threads);
                Add(_dh, _tmp, n * d);
                GemmBackward.WeightGrad(dq, n, qd, _hAttQ[l], d, Layer(grads.Wq, l), _dyT, Threads);
                GemmBackward.WeightGrad(dk, n, kv, _hAttQ[l], d, Layer(grads.Wk, l), _dyT, Threads);
                GemmBackward.WeightGrad(_dv, n, kv, _hAttQ[l], d, Layer(grads.Wv, l), _dyT, Threads);
                BlockNormBackward(_dh, _xIn[l], Layer(p.AttnNorm, l), _rAtt[l], _mAtt[l], _dx, Layer(grads.AttnNorm, l), Opt(grads.AttnNormBias, l), n);
            }
            if (_from[l] is { } from)
            {
                // the rows this block's stage dropped get no gradient from here up; the kept ones go back to their rows
                int nPrev = _b * _rows[l - 1];
                Array.Clear(_tmp, 0, nPrev * d);
                for (int i = 0; i < n; i++) _dx.AsSpan(i * d, d).CopyTo(_tmp.AsSpan(from[i] * d, d));
                _tmp.AsSpan(0, nPrev * d).CopyTo(_dx);
            }
        }
        // embedding lookup, in row order
        n = _n;
        for (int i = 0; i < n; i++)
        {
            var g = grads.Embedding.AsSpan(_inputs[i] * d, d);
            var dxi = _dx.AsSpan(i * d, d);
            if (Spec.EmbedScale == 1f) Add(g, dxi, d);
            else for (int j = 0; j < d; j++) g[j] += dxi[j] * Spec.EmbedScale;
            if (grads.PositionEmbedding is { } gpe) Add(gpe.AsSpan(_pos[0][i] * d, d), dxi, d);
        }
    }

    private Span<float> Layer(float[] stacked, int layer) => LlamaParameters.Slice(stacked, _l, layer);

    private void EffectiveWeights(LlamaParameters p)
    {
        var w3 = p.W3 ?? []; // none in an ungated MLP
        if (!Qat)
        {
            (_wq, _wk, _wv, _wo, _w1, _w2, _w3) = (p.Wq, p.Wk, p.Wv, p.Wo, p.W1, p.W2, w3);
            return;
        }
        if (_wq.Length != p.Wq.Length || ReferenceEquals(_wq, p.Wq))
            (_wq, _wk, _wv, _wo, _w1, _w2, _w3) = (new float[p.Wq.Length], new float[p.Wk.Length], new float[p.Wv.Length],
                new float[p.Wo.Length], new float[p.W1.Length], new float[p.W2.Length], new float[w3.Length]);
        foreach (var (src, dst) in new[] { (p.Wq, _wq), (p.Wk, _wk), (p.Wv, _wv), (p.Wo, _wo), (p.W1, _w1), (p.W2, _w2), (w3, _w3) })
            if (src.Length > 0)
                for (int l = 0; l < _l; l++) BitNetQat.TernaryWeights(Layer(src, l), Layer(dst, l));
    }

    private float[] Quantize(float[] x, float[] q, int n, int k)
    {
        if (!Qat) return x;
        BitNetQat.Activations(x.AsSpan(0, n * k), n, k, q);
        return q;
    }

    // The forward GEMM is the engine's (span overload: these weights change every step, so no packed cache).
    private void Linear(ReadOnlySpan<float> x, int n, int k, ReadOnlySpan<float> w, int m, Span<float> y) =>
        MatMul.Linear(x, n, k, w, m, y, Threads);

    private static void Add(Span<float> x, ReadOnlySpan<float> y, int count)
    {
        for (int i = 0; i < count; i++) x[i] += y[i];
    }

    // Layer `layer`'s slice of a stacked optional tensor (empty when there is none).
    private Span<float> Opt(float[]? stacked, int layer) => stacked is null ? default : Layer(stacked, layer);

    // The block's norm over rows of dim: RMSNorm, or LayerNorm with its bias (keeps 1/std and the mean for the backward).
    private void BlockNorm(float[] x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, float[] y, float[] rinv, float[] mean, int n)
    {
        if (!_layerNorm) { RmsNorm(x, w, y, rinv, n, _d); return; }
        int d = _d;
        for (int i = 0; i < n; i++)
        {
            var row = x.AsSpan(i * d, d);
            double sum = 0;
            foreach (var v in row) sum += v;
            float mu = (float)(sum / d);
            double ss = 0;
            foreach (var v in row) ss += (double)(v - mu) * (v - mu);
            float r = 1f / MathF.Sqrt((float)(ss / d) + Config.NormEps);
            rinv[i] = r;
            mean[i] = mu;
            for (int j = 0; j < d; j++) y[i * d + j] = (row[j] - mu) * r * w[j] + bias[j];
        }
    }

    // LayerNorm: dx += r (dxh - mean(dxh) - xh mean(dxh xh)), dxh = dy w, xh = (x - mu) r; dw += dy xh; db += dy.
    private void BlockNormBackward(float[] dy, float[] x, ReadOnlySpan<float> w, float[] rinv, float[] mean, float[] dx, Span<float> dw, Span<float> db, int n)
    {
        if (!_layerNorm) { RmsNormBackward(dy, x, w, rinv, dx, dw, n, _d); return; }
        int d = _d;
        for (int i = 0; i < n; i++)
        {
            float r = rinv[i], mu = mean[i];
            double sa = 0, sb = 0;
            for (int j = 0; j < d; j++)
            {
                double dxh = (double)dy[i * d + j] * w[j];
                sa += dxh;
                sb += dxh * ((x[i * d + j] - mu) * r);
            }
            float ma = (float)(sa / d), mb = (float)(sb / d);
            for (int j = 0; j < d; j++)
            {
                float g = dy[i * d + j], xh = (x[i * d + j] - mu) * r;
                dx[i * d + j] += r * (g * w[j] - ma - xh * mb);
                dw[j] += g * xh;
                db[j] += g;
            }
        }
    }

    // y[i, :] += layer `layer`'s bias (none: nothing).
    private void AddBias(float[] y, int n, int width, float[]? bias, int layer)
    {
        if (bias is null) return;
        var b = Layer(bias, layer);
        for (int i = 0; i < n; i++) Add(y.AsSpan(i * width, width), b, width);
    }

    // db += sum over rows of dy, rows in order.
    private void BiasGrad(float[] dy, int n, int width, float[]? grad, int layer)
    {
        if (grad is null) return;
        var db = Layer(grad, layer);
        for (int i = 0; i < n; i++) Add(db, dy.AsSpan(i * width, width), width);
    }

    // y = x / sqrt(mean(x^2) + eps) * w per row of `width`; keeps 1/rms for the backward (y may be x).
    private void RmsNorm(float[] x, ReadOnlySpan<float> w, float[] y, float[] rinv, int n, int width)
    {
        int d = width;
        for (int i = 0; i < n; i++)
        {
            var row = x.AsSpan(i * d, d);
            double ss = 0;
            foreach (var v in row) ss += (double)v * v;
            float r = 1f / MathF.Sqrt((float)(ss / d) + Config.NormEps);
            rinv[i] = r;
            for (int j = 0; j < d; j++) y[i * d + j] = row[j] * r * w[j];
        }
    }

    // The gradient through a block's optional RMSNorm (sub-norm, sandwich norm, q/k norm) over `rows` rows of `width`:
    // dy itself when the block has none, else the gradient at the norm's input, in scratch (cleared: the backward adds).
    private float[] ThroughNorm(float[] dy, float[]? norm, float[]? normGrad, int l, float[] x, float[] rinv, float[] scratch, int rows, int width)
    {
        if (norm is null) return dy;
        Array.Clear(scratch, 0, rows * width);
        RmsNormBackward(dy, x, Layer(norm, l), rinv, scratch, Layer(normGrad!, l), rows, width);
        return scratch;
    }

    // dx += r w dy - r^3 / d x sum(dy w x); dw += dy x r.
    private void RmsNormBackward(float[] dy, float[] x, ReadOnlySpan<float> w, float[] rinv, float[] dx, Span<float> dw, int n, int width)
    {
        int d = width;
        for (int i = 0; i < n; i++)
        {
            float r = rinv[i];
            double dot = 0;
            for (int j = 0; j < d; j++) dot += (double)dy[i * d + j] * w[j] * x[i * d + j];
            float c = (float)(dot * r * r * r / d);
            for (int j = 0; j < d; j++)
            {
                float xv = x[i * d + j], g = dy[i * d + j];
                dx[i * d + j] += r * w[j] * g - c * xv;
                dw[j] += g * xv * r;
            }
        }
    }

    // llama2.c rotary on interleaved pairs; angles in double, cast to float. The inverse rotation is the backward.
    private void Rope(float[] v, int width, int[] positions, int n, bool inverse, int layer)
    {
        if (Spec.LearnedPositions) return; // GPT-2: no rotary
        float[] cosT = _cos[layer], sinT = _sin[layer];
        int half = _hd / 2;
        for (int i = 0; i < n; i++)
        {
            int t = positions[i];
            for (int c = 0; c < width; c += 2)
            {
                int f = (c % _hd) / 2;
                float cos = cosT[t * half + f], sin = inverse ? -sinT[t * half + f] : sinT[t * half + f];
                float a = v[i * width + c], b = v[i * width + c + 1];
                v[i * width + c] = a * cos - b * sin;
                v[i * width + c + 1] = a * sin + b * cos;
            }
        }
    }

    // The first row of sequence b (rows T) that row t sees in layer l: 0, or with a sliding window w the first whose
    // position is above pos_t - w (rows are in position order, also after a pyramid stage).
    private int WindowStart(int l, int b, int T, int t)
    {
        int w = Spec.WindowOf(l);
        if (w <= 0) return 0;
        var pos = _pos[l];
        int lo = 0, limit = pos[b * T + t] - w;
        while (pos[b * T + lo] <= limit) lo++;
        return lo;
    }

    // One task per (sequence, kv head): its query heads run in order, so shared key/value gradients sum in a fixed order.
    // Pointers: head_dim is small (8 here) and bounds checks would cost as much as the arithmetic.
    private unsafe void AttentionForward(int l)
    {
        float[] q = _q[l], k = _k[l], v = _v[l], att = _att[l], o = _o[l];
        int T = _rows[l], hd = _hd, d = _qd, kvd = _kv;
        float scale = _scale, cap = Spec.AttentionSoftCap;
        Parallelism.For(_b * Config.KvHeads, Threads, task =>
        {
            int b = task / Config.KvHeads, kvh = task % Config.KvHeads;
            fixed (float* pq = q, pk = k, pv = v, pa = att, po = o)
                for (int h = kvh * _group; h < (kvh + 1) * _group; h++)
                    for (int t = 0; t < T; t++)
                    {
                        float* qt = pq + (b * T + t) * d + h * hd, ot = po + (b * T + t) * d + h * hd;
                        float* p = pa + ((b * _heads + h) * T + t) * T;
                        float* kb = pk + b * T * kvd + kvh * hd, vb = pv + b * T * kvd + kvh * hd;
                        float max = float.NegativeInfinity;
                        int lo = WindowStart(l, b, T, t);
                        for (int j = lo; j <= t; j++)
                        {
                            float* kj = kb + j * kvd;
                            float s = 0;
                            for (int c = 0; c < hd; c++) s += qt[c] * kj[c];
                            p[j] = s * scale;
                            if (cap > 0) p[j] = cap * MathF.Tanh(p[j] / cap); // Gemma 2's soft-capped scores
                            max = Math.Max(max, p[j]);
                        }
                        float sum = 0;
                        for (int j = lo; j <= t; j++) { p[j] = MathF.Exp(p[j] - max); sum += p[j]; }
                        for (int j = lo; j <= t; j++) p[j] /= sum;
                        for (int c = 0; c < hd; c++) ot[c] = 0;
                        for (int j = lo; j <= t; j++)
                        {
                            float* vj = vb + j * kvd;
                            float pj = p[j];
                            for (int c = 0; c < hd; c++) ot[c] += pj * vj[c];
                        }
                    }
        });
    }

    private unsafe void AttentionBackward(int l, float[] dO)
    {
        float[] q = _q[l], k = _k[l], v = _v[l], att = _att[l], dq = _dq, dk = _dk, dv = _dv;
        int T = _rows[l], hd = _hd, d = _qd, kvd = _kv;
        float scale = _scale, cap = Spec.AttentionSoftCap;
        Array.Clear(dq, 0, _b * T * d);
        Array.Clear(dk, 0, _b * T * kvd);
        Array.Clear(dv, 0, _b * T * kvd);
        Parallelism.For(_b * Config.KvHeads, Threads, task =>
        {
            int b = task / Config.KvHeads, kvh = task % Config.KvHeads;
            Span<float> dpSpan = stackalloc float[T];
            fixed (float* pq = q, pk = k, pv = v, pa = att, pdo = dO, pdq = dq, pdk = dk, pdv = dv, dp = dpSpan)
                for (int h = kvh * _group; h < (kvh + 1) * _group; h++)
                    for (int t = 0; t < T; t++)
                    {
                        int qi = (b * T + t) * d + h * hd, kb = b * T * kvd + kvh * hd;
                        float* qt = pq + qi, dot_ = pdo + qi, dqt = pdq + qi;
                        float* p = pa + ((b * _heads + h) * T + t) * T;
                        float dot = 0;
                        int lo = WindowStart(l, b, T, t);
                        for (int j = lo; j <= t; j++)
                        {
                            float* vj = pv + kb + j * kvd, dvj = pdv + kb + j * kvd;
                            float s = 0, pj = p[j];
                            for (int c = 0; c < hd; c++)
                            {
                                s += dot_[c] * vj[c];
                                dvj[c] += pj * dot_[c];
                            }
                            dp[j] = s;
                            dot += pj * s;
                        }
                        for (int j = lo; j <= t; j++)
                        {
                            float ds = p[j] * (dp[j] - dot) * scale;
                            float* kj = pk + kb + j * kvd, dkj = pdk + kb + j * kvd;
                            if (cap > 0)
                            {
                                // through cap tanh(s / cap): the score recomputed as the forward did
                                float sc = 0;
                                for (int c = 0; c < hd; c++) sc += qt[c] * kj[c];
                                float th = MathF.Tanh(sc * scale / cap);
                                ds *= 1f - th * th;
                            }
                            for (int c = 0; c < hd; c++)
                            {
                                dqt[c] += ds * kj[c];
                                dkj[c] += ds * qt[c];
                            }
                        }
                    }
        });
    }

    private void Prepare(IReadOnlyList<int[]> batch)
    {
        if (batch.Count == 0) throw new ArgumentException("the batch is empty", nameof(batch));
        int len = batch[0].Length;
        if (len < 2) throw new ArgumentException("sequences need at least 2 tokens (an input and its target)", nameof(batch));
        if (len - 1 > Config.MaxSeq) throw new ArgumentException($"sequences of {len - 1} inputs exceed the model's {Config.MaxSeq} positions", nameof(batch));
        int b = batch.Count, t = len - 1;
        if (Pyramid is not null && t < TrainingPyramid.MinWindow)
            throw new ArgumentException($"a pyramid needs windows of at least {TrainingPyramid.MinWindow} inputs, not {t}", nameof(batch));
        if (b != _b || t != _t) Allocate(b, t);
        int start = Pyramid is null ? 0 : Pyramid.ContextEnd(t);
        for (int r = 0; r < b; r++)
        {
            var row = batch[r];
            if (row.Length != len) throw new ArgumentException($"batch row {r} has {row.Length} tokens, row 0 has {len}", nameof(batch));
            for (int i = 0; i < len; i++)
                if ((uint)row[i] >= (uint)_vocab) throw new ArgumentOutOfRangeException(nameof(batch), row[i], $"token at row {r}, position {i} is outside the vocabulary of {_vocab}");
            Array.Copy(row, 0, _inputs, r * t, t);
            // the targets of the loss rows: every position, or the suffix [contextEnd, T) with a pyramid
            Array.Copy(row, 1 + start, _targets, r * (t - start), t - start);
        }
        _rows[0] = t;
        if (Pyramid is null)
            for (int l = 1; l <= _l; l++) { _rows[l] = t; _pos[l] = _pos[0]; }
        _haveForward = false;
    }

    // The loss rows sit at the end of each sequence's final rows (the suffix is protected, so always there).
    private void GatherLossRows()
    {
        int tl = _rows[_l] = _rows[_l - 1], suffix = _t - Pyramid!.ContextEnd(_t);
        _pos[_l] = _pos[_l - 1];
        _lossFrom ??= new int[_nLoss];
        for (int r = 0, i = 0; r < _b; r++)
            for (int j = 0; j < suffix; j++) _lossFrom[i++] = r * tl + tl - suffix + j;
    }

    private void Allocate(int b, int t)
    {
        _b = b; _t = t; _n = b * t;
        int n = _n, d = _d, qd = _qd, kv = _kv, m = _mlp;
        _nLoss = Pyramid is null ? n : b * (t - Pyramid.ContextEnd(t));
        _inputs = new int[n]; _targets = new int[_nLoss];
        _rows = new int[_l + 1];
        _pos = new int[_l + 1][];
        _from = new int[]?[_l + 1];
        _lossFrom = null;
        _pos[0] = new int[n];
        for (int i = 0; i < n; i++) _pos[0][i] = i % t;
        if (Pyramid is not null)
        {
            _xL = new float[_nLoss * d]; _dxL = new float[_nLoss * d];
            _rankH = new float[n * d]; _rankHQ = Qat ? new float[n * d] : _rankH; _rRank = new float[n];
            _rankK = new float[n * _kv]; _rankQH = new float[b * d]; _rankQ = new float[b * qd];
        }
        int half = _hd / 2;
        _cos = new float[_l][]; _sin = new float[_l][];
        for (int l = 0; l < _l; l++)
        {
            var f = Spec.RopeInvFreq?[l];
            int same = -1;
            for (int j = 0; j < l && same < 0; j++)
                if (f is null || Spec.RopeInvFreq![j].AsSpan().SequenceEqual(f)) same = j;
            if (same >= 0) { _cos[l] = _cos[same]; _sin[l] = _sin[same]; continue; }
            float[] cos = _cos[l] = new float[t * half], sin = _sin[l] = new float[t * half];
            for (int pos = 0; pos < t; pos++)
                for (int i = 0; i < half; i++)
                {
                    if (f is not null)
                    {
                        // the model's own frequencies: the angle in float, as the inference forward (and transformers) computes it
                        float val = pos * f[i];
                        cos[pos * half + i] = MathF.Cos(val);
                        sin[pos * half + i] = MathF.Sin(val);
                        continue;
                    }
                    double a = pos * Math.Pow(Config.RopeTheta, -2.0 * i / _hd);
                    cos[pos * half + i] = (float)Math.Cos(a);
                    sin[pos * half + i] = (float)Math.Sin(a);
                }
        }
        float[][] Per(int size) => Enumerable.Range(0, _l).Select(_ => new float[size]).ToArray();
        float[][] PerQ(int size, float[][] plain) => Qat ? Per(size) : plain;
        _xIn = Per(n * d); _rAtt = Per(n); _hAtt = Per(n * d); _hAttQ = PerQ(n * d, _hAtt);
        bool qkNorm = Spec.QkNorm, sub = Spec.SubNorms;
        float[][] None() => new float[_l][];
        _q = Per(n * qd); _k = Per(n * kv); _v = Per(n * kv); _att = Per(b * _heads * t * t); _o = Per(n * qd);
        (_qPre, _kPre, _rQ, _rK) = qkNorm ? (Per(n * qd), Per(n * kv), Per(n * _heads), Per(n * Config.KvHeads)) : (None(), None(), None(), None());
        (_oN, _rO) = sub ? (Per(n * qd), Per(n)) : (_o, None());
        _oQ = PerQ(n * qd, _oN);
        _xMid = Per(n * d); _rFfn = Per(n); _hFfn = Per(n * d); _hFfnQ = PerQ(n * d, _hFfn);
        _g = Per(n * m); _u = Per(n * m); _sig = _relu2 ? None() : Per(n * m); _a = Per(n * m);
        (_aN, _rA) = sub ? (Per(n * m), Per(n)) : (_a, None());
        _aQ = PerQ(n * m, _aN);
        _x = new float[n * d]; _rFinal = new float[n]; _xf = new float[n * d]; _probs = new float[n * _vocab]; _tmp = new float[n * Math.Max(Math.Max(d, qd), m)];
        _dx = new float[n * d]; _dh = new float[n * d]; _dq = new float[n * qd]; _dk = new float[n * kv]; _dv = new float[n * kv];
        _dO = new float[n * qd]; _dA = new float[n * m]; _dG = new float[n * m]; _dU = new float[n * m]; _dLogits = new float[n * _vocab];
        (_dqPre, _dkPre) = qkNorm ? (new float[n * qd], new float[n * kv]) : ([], []);
        (_dON, _dAN) = sub ? (new float[n * qd], new float[n * m]) : ([], []);
        bool sandwich = Spec.SandwichNorms;
        (_attnOut, _rPostA, _mlpOut, _rPostF) = sandwich ? (Per(n * d), Per(n), Per(n * d), Per(n)) : (None(), None(), None(), None());
        _dPost = sandwich ? new float[n * d] : [];
        _capT = Spec.FinalSoftCap > 0 ? new float[n * _vocab] : [];
        (_mAtt, _mFfn, _mFinal, _mRank) = _layerNorm ? (Per(n), Per(n), new float[n], new float[n]) : (None(), None(), [], []);
        _dyT = new float[n * Math.Max(Math.Max(Math.Max(d, qd), m), _vocab)];
    }
}
