using static Workbench.Engine.Tests.Goldens;
using System.Text.Json;
using Workbench.Engine.Formats;
using Workbench.Engine.LowBit;
using Workbench.Engine.Quantization;
using Workbench.Engine.Models;
using Workbench.Engine.Training;
using Xunit.Abstractions;

namespace Workbench.Engine.Tests.Training;

/// <summary>
/// Training on the Hugging Face decoder families the backprop covers, against transformers' goldens (data/goldens/arch):
/// the training forward's logits on the golden's fixed input equal transformers' logits and its loss equals the
/// cross-entropy of the engine's inference logits; every kind of parameter's gradient equals central finite differences
/// of a float64 forward (<see cref="DoubleDecoder"/>, itself checked against the same golden logits); AdamW lowers the loss.
/// </summary>
public class ArchTrainingTests(ITestOutputHelper output)
{
    public static TheoryData<string> Families => new() { "llama_untied", "llama3_tied", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3_text", "gpt2", "bitnet_master" };

    private static string Folder(string family) => Path.GetDirectoryName(Bundled.Path($"data/goldens/arch/{family}/config.json"))!;

    private static LlamaModel Load(string family) => ModelHub.LoadDecoder(Folder(family), storage: WeightStorage.Fp32).Model;

    private static int[] Ids(string family, string which) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(family), $"gen_{which}.json"))).RootElement.GetProperty("prompt")
            .EnumerateArray().Select(e => e.GetInt32()).ToArray();

    /// <summary>Mean cross-entropy of seq[t + 1] under the logits rows t = 0 .. len-2 (in double).</summary>
    private static double CrossEntropy(ReadOnlySpan<float> logits, int vocab, int[] seq)
    {
        double nll = 0;
        for (int t = 0; t + 1 < seq.Length; t++)
        {
            var row = logits.Slice(t * vocab, vocab);
            double max = double.NegativeInfinity, sum = 0;
            foreach (var v in row) max = Math.Max(max, v);
            foreach (var v in row) sum += Math.Exp(v - max);
            nll += max + Math.Log(sum) - row[seq[t + 1]];
        }
        return nll / (seq.Length - 1);
    }


    [Theory]
    [MemberData(nameof(Families))]
    public void The_training_forward_gives_transformers_logits_and_the_inference_cross_entropy(string family)
    {
        var model = Load(family);
        Assert.Null(LlamaParameters.Unsupported(model, 128));
        int v = model.Config.Vocab;
        using var golden = NpzFile.Open(Path.Combine(Folder(family), "golden.npz"));
        foreach (var which in new[] { "a", "b" })
        {
            var ids = Ids(family, which);
            var want = golden.ReadF32($"logits_{which}"); // [len, vocab]: the training forward sees the first len - 1
            var bp = new LlamaBackprop(model.Config, spec: model.Spec) { KeepLogits = true };
            double loss = bp.Forward(LlamaParameters.From(model), [ids]);
            double dl = MaxAbs(bp.Logits, want.AsSpan(0, (ids.Length - 1) * v));
            Assert.True(dl <= 1e-4, $"{family} {which}: training logits differ from transformers' by {dl}");
            var (inference, _) = model.Forward(ids.AsSpan(0, ids.Length - 1), 0, new ForwardContext());
            double ce = CrossEntropy(inference, v, ids), ceGolden = CrossEntropy(want, v, ids);
            Assert.Equal(ce, loss, 1e-5);
            Assert.Equal(ceGolden, loss, 1e-5);
            output.WriteLine($"{family} {which}: max |logit - transformers| {dl:E2}, loss {loss:F6}, inference CE {ce:F6}, transformers CE {ceGolden:F6}");
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void The_float64_reference_forward_gives_transformers_logits(string family)
    {
        var model = Load(family);
        var w = DoubleDecoder.Of(LlamaParameters.From(model));
        using var golden = NpzFile.Open(Path.Combine(Folder(family), "golden.npz"));
        var ids = Ids(family, "a");
        var logits = DoubleDecoder.Logits(w, model.Config, model.Spec, ids);
        var want = golden.ReadF32("logits_a");
        double worst = 0;
        for (int i = 0; i < want.Length; i++) worst = Math.Max(worst, Math.Abs(logits[i] - want[i]));
        Assert.True(worst <= 1e-4, $"{family}: the float64 forward differs from transformers by {worst}");
    }

    /// <summary>
    /// Float32 analytic gradients against central differences (h = 1e-3) of the float64 forward at the same parameters,
    /// on ids_a (24 tokens: longer than Mistral's window of 16). Per tensor: its 3 largest entries and 3 seeded random
    /// ones; |analytic - fd| must be within 2e-4 of max(|fd|, 1e-2 x the tensor's largest gradient) (measured: at most 3.6e-5, BitNet's wo).
    /// A gradient that is zero in exact arithmetic passes when the float64 difference is below 1e-9 and the float32 one below
    /// 1e-6 of the model's largest gradient: GPT-2's key bias, which without rotary adds the same q.b_k to every score of a
    /// row, so softmax never sees it (the float32 backprop gives 1e-8 of rounding there).
    /// </summary>
    [Theory]
    [MemberData(nameof(Families))]
    public void Gradients_of_every_kind_of_parameter_match_float64_central_differences(string family)
    {
        var model = Load(family);
        var c = model.Config;
        var p = LlamaParameters.From(model);
        var g = p.ZerosLike();
        var ids = Ids(family, "a");
        new LlamaBackprop(c, spec: model.Spec).LossAndGradients(p, [ids], g);
        var w = DoubleDecoder.Of(p);
        var rng = new Random(3);
        const double h = 1e-3;
        double worstRel = 0, globalTop = g.Tensors.Max(t => t.Data.Max(x => Math.Abs(x)));
        string worstAt = "";
        foreach (var (t, gt) in p.Tensors.Zip(g.Tensors))
        {
            var data = w[t.Name];
            double top = gt.Data.Max(x => Math.Abs(x));
            Assert.True(top > 0, $"{family} {t.Name}: no gradient at all");
            var picks = Enumerable.Range(0, gt.Data.Length).OrderByDescending(i => Math.Abs(gt.Data[i])).Take(3)
                .Concat(Enumerable.Range(0, 3).Select(_ => rng.Next(gt.Data.Length))).Distinct();
            foreach (int i in picks)
            {
                double w0 = data[i];
                data[i] = w0 + h;
                double lp = DoubleDecoder.Loss(w, c, model.Spec, ids);
                data[i] = w0 - h;
                double lm = DoubleDecoder.Loss(w, c, model.Spec, ids);
                data[i] = w0;
                double fd = (lp - lm) / (2 * h);
                if (Math.Abs(fd) < 1e-9 && Math.Abs(gt.Data[i]) < 1e-6 * globalTop) continue; // zero both ways (GPT-2's b_k: see above)
                double rel = Math.Abs(gt.Data[i] - fd) / Math.Max(Math.Abs(fd), 1e-2 * top);
                if (rel > worstRel) (worstRel, worstAt) = (rel, $"{t.Name}[{i}]: analytic {gt.Data[i]:E4}, fd {fd:E4}");
                Assert.True(rel <= 2e-4, $"{family} {t.Name}[{i}]: analytic {gt.Data[i]:E6}, central difference {fd:E6} (relative {rel:E2})");
            }
        }
        output.WriteLine($"{family}: {p.Tensors.Count} tensors ({string.Join(", ", p.Tensors.Select(t => t.Name))}); worst relative error {worstRel:E2} at {worstAt}");
    }

    [Theory]
    [InlineData("mistral", false)]
    [InlineData("qwen2", false)]
    [InlineData("qwen3", false)]
    [InlineData("llama3_tied", false)]
    [InlineData("gemma2", false)]
    [InlineData("gemma3_text", false)]
    [InlineData("gpt2", false)]
    [InlineData("bitnet_master", false)]
    [InlineData("bitnet_master", true)]
    public void A_few_adamw_steps_lower_the_loss(string family, bool qat)
    {
        var model = Load(family);
        var p = LlamaParameters.From(model);
        var g = p.ZerosLike();
        var bp = new LlamaBackprop(model.Config, qat, spec: model.Spec);
        var opt = new AdamW(p) { WeightDecay = 0.01 };
        var batch = new[] { Ids(family, "a") };
        var losses = new List<double>();
        for (int k = 0; k < 6; k++)
        {
            losses.Add(bp.LossAndGradients(p, batch, g));
            AdamW.ClipGlobalNorm(g, 1.0);
            opt.Update(p, g, 3e-3);
        }
        output.WriteLine($"{family} qat {qat}: {string.Join(" ", losses.Select(l => l.ToString("F4")))}");
        Assert.True(losses[^1] < 0.95 * losses[0], $"{family}: {string.Join(", ", losses)}");
        for (int k = 1; k < losses.Count; k++) Assert.True(losses[k] < losses[k - 1], $"{family} step {k}: {string.Join(", ", losses)}");
    }

    /// <summary>
    /// BitNet b1.58 QAT of the BitNet block (sub-norms, squared-ReLU GLU): the training forward's loss is the cross-entropy
    /// of the engine's ternary I2S kernels (int8 activations inside) running the very weights the QAT forward multiplies
    /// by, code x (mean |W| + 1e-5) per matrix, up to activation rounding flips; and far from the fp32 loss. Post-training
    /// quantization (what <c>train --qat ternary</c> reports as its start) scales by mean |W| without the 1e-5: on these
    /// random weights (mean |W| ~ 0.016) that moves codes near the threshold, so it is only reported.
    /// </summary>
    [Fact]
    public void Bitnet_qat_forward_is_the_ternary_kernels_running_its_forward_weights()
    {
        var model = Load("bitnet_master");
        var ids = Ids("bitnet_master", "a");
        int layers = model.Config.Layers, v = model.Config.Vocab;
        var p = LlamaParameters.From(model);
        double qat = new LlamaBackprop(model.Config, qat: true, spec: model.Spec).Forward(p, [ids]);
        double fp32 = new LlamaBackprop(model.Config, spec: model.Spec).Forward(p, [ids]);
        var q = p.Clone();
        foreach (var name in new[] { "wq", "wk", "wv", "wo", "w1", "w2", "w3" })
        {
            var stacked = q.Tensors.Single(t => t.Name == name).Data;
            for (int l = 0; l < layers; l++)
            {
                var w = LlamaParameters.Slice(stacked, layers, l);
                float s = BitNetQat.WeightScale(w);
                for (int i = 0; i < w.Length; i++) w[i] = BitNetQat.Code(w[i], s) * s;
            }
        }
        var m = q.ToModel(model.Card);
        using var ternary = TernaryModel.FromStored(m, LowBitFormat.I2S);
        var (logits, _) = m.Forward(ids.AsSpan(0, ids.Length - 1), 0, ternary.Context());
        double kernels = CrossEntropy(logits, v, ids);
        double ptq = Math.Log(TrainRequest.Perplexity(model, [ids], ModuleSkips.None, qat: true, threads: 1));
        output.WriteLine($"bitnet_master: QAT loss {qat:F6}, ternary kernels on its weights {kernels:F6}, PTQ (mean |W|) {ptq:F6}, fp32 {fp32:F6}");
        // int8 activations round at absmax 127: the last bit of a norm can flip a code, so two RMSNorm summation orders
        // (the backprop's double sum, the inference loop's float sum) move this loss by up to ~2.2e-3 (measured when the
        // inference norm changed order); post-training quantization's mean-|W| scale is 0.035 away
        Assert.Equal(kernels, qat, 5e-3);
        Assert.True(Math.Abs(qat - ptq) > 4 * 5e-3, $"QAT {qat} and PTQ {ptq} should be told apart by this tolerance");
        Assert.True(Math.Abs(qat - fp32) > 0.05, $"the ternary forward {qat} should differ from the fp32 one {fp32}");
    }

    [Fact]
    public void Parameters_carry_the_blocks_extra_tensors_and_give_them_back_to_a_model()
    {
        foreach (var (family, extra) in new[] { ("qwen2", new[] { "bq", "bk", "bv" }), ("qwen3", new[] { "rms_q", "rms_k" }),
                     ("bitnet_master", new[] { "rms_attn_sub", "rms_ffn_sub" }), ("gemma3_text", new[] { "rms_q", "rms_k", "rms_post_att", "rms_post_ffn" }),
                     ("gpt2", new[] { "bq", "bk", "bv", "bo", "b_att_norm", "b_ffn_norm", "b_final_norm", "b1", "b2", "wpe" }),
                     ("mistral", Array.Empty<string>()) })
        {
            var model = Load(family);
            var p = LlamaParameters.From(model);
            var names = p.Tensors.Select(t => t.Name).ToArray();
            Assert.Equal(extra, names.Skip(names.Length - extra.Length).ToArray());
            // norms and biases do not decay; GPT-2's position embedding is a matrix like the token embedding and does
            Assert.All(p.Tensors.Where(t => extra.Contains(t.Name)), t => Assert.Equal(t.Name == "wpe", t.Decays));
            // round trip: the model rebuilt from the parameters computes the same logits
            var ids = Ids(family, "b");
            var a = model.Forward(ids, 0, new ForwardContext()).Logits;
            var b = p.ToModel(model.Card).Forward(ids, 0, new ForwardContext()).Logits;
            Assert.Equal(a, b);
        }
    }
}

/// <summary>
/// A float64 decoder forward written from the <see cref="DecoderSpec"/> over <see cref="LlamaParameters"/>' tensors (by
/// name), as plainly as possible: the finite-difference reference of the gradient tests.
/// </summary>
internal static class DoubleDecoder
{
    public static Dictionary<string, double[]> Of(LlamaParameters p) => p.Tensors.ToDictionary(t => t.Name, t => t.Data.Select(v => (double)v).ToArray());

    public static double Loss(Dictionary<string, double[]> w, ModelConfig c, DecoderSpec s, int[] seq)
    {
        var logits = Logits(w, c, s, seq[..^1]);
        int v = c.Vocab;
        double nll = 0;
        for (int t = 0; t + 1 < seq.Length; t++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int j = 0; j < v; j++) max = Math.Max(max, logits[t * v + j]);
            for (int j = 0; j < v; j++) sum += Math.Exp(logits[t * v + j] - max);
            nll += max + Math.Log(sum) - logits[t * v + seq[t + 1]];
        }
        return nll / (seq.Length - 1);
    }

    public static double[] Logits(Dictionary<string, double[]> w, ModelConfig c, DecoderSpec s, int[] tokens)
    {
        int T = tokens.Length, d = c.Dim, qd = c.QDim, kv = c.KvDim, hd = c.HeadDim, heads = c.Heads, kvHeads = c.KvHeads, m = c.MlpDim;
        double eps = c.NormEps;
        double[] L(string name, int layer, int size) => w[name].AsSpan(layer * size, size).ToArray();
        double[]? B(string name, int layer, int size) => w.ContainsKey(name) ? L(name, layer, size) : null;
        var x = new double[T * d];
        for (int t = 0; t < T; t++)
            for (int j = 0; j < d; j++)
                x[t * d + j] = w["token_embedding"][tokens[t] * d + j] * s.EmbedScale + (w.TryGetValue("wpe", out var wpe) ? wpe[t * d + j] : 0);
        double scale = s.AttentionScale > 0 ? s.AttentionScale : 1 / Math.Sqrt(hd), cap = s.AttentionSoftCap;
        for (int l = 0; l < c.Layers; l++)
        {
            var h = BlockNorm(x, d, L("rms_att", l, d), B("b_att_norm", l, d), eps);
            var q = Linear(h, d, L("wq", l, qd * d), qd, B("bq", l, qd));
            var k = Linear(h, d, L("wk", l, kv * d), kv, B("bk", l, kv));
            var v = Linear(h, d, L("wv", l, kv * d), kv, B("bv", l, kv));
            if (s.QkNorm)
            {
                q = Norm(q, hd, L("rms_q", l, hd), eps);
                k = Norm(k, hd, L("rms_k", l, hd), eps);
            }
            double[] freq = s.RopeInvFreq is { } f ? f[l].Select(z => (double)z).ToArray()
                : Enumerable.Range(0, hd / 2).Select(i => Math.Pow(c.RopeTheta, -2.0 * i / hd)).ToArray();
            if (!s.LearnedPositions)
            {
                Rope(q, qd, hd, freq);
                Rope(k, kv, hd, freq);
            }
            var o = new double[T * qd];
            int window = s.WindowOf(l);
            var p = new double[T];
            for (int t = 0; t < T; t++)
                for (int head = 0; head < heads; head++)
                {
                    int kh = head / (heads / kvHeads), lo = window > 0 ? Math.Max(0, t - window + 1) : 0;
                    double max = double.NegativeInfinity, sum = 0;
                    for (int j = lo; j <= t; j++)
                    {
                        double dot = 0;
                        for (int e = 0; e < hd; e++) dot += q[t * qd + head * hd + e] * k[j * kv + kh * hd + e];
                        p[j] = dot * scale;
                        if (cap > 0) p[j] = cap * Math.Tanh(p[j] / cap);
                        max = Math.Max(max, p[j]);
                    }
                    for (int j = lo; j <= t; j++) sum += p[j] = Math.Exp(p[j] - max);
                    for (int j = lo; j <= t; j++)
                        for (int e = 0; e < hd; e++) o[t * qd + head * hd + e] += p[j] / sum * v[j * kv + kh * hd + e];
                }
            if (s.SubNorms) o = Norm(o, qd, L("rms_attn_sub", l, qd), eps);
            var attn = Linear(o, qd, L("wo", l, d * qd), d, B("bo", l, d));
            if (s.SandwichNorms) attn = Norm(attn, d, L("rms_post_att", l, d), eps);
            for (int i = 0; i < x.Length; i++) x[i] += attn[i];

            var h2 = BlockNorm(x, d, L("rms_ffn", l, d), B("b_ffn_norm", l, d), eps);
            var g = Linear(h2, d, L("w1", l, m * d), m, B("b1", l, m));
            var u = w.ContainsKey("w3") ? Linear(h2, d, L("w3", l, m * d), m, null) : null;
            var a = new double[g.Length];
            for (int i = 0; i < a.Length; i++)
                a[i] = s.Mlp switch
                {
                    DecoderMlp.Relu2Glu => Math.Pow(Math.Max(g[i], 0), 2) * u[i],
                    DecoderMlp.GeGluTanh => 0.5 * g[i] * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (g[i] + 0.044715 * g[i] * g[i] * g[i]))) * u![i],
                    DecoderMlp.GeluTanh => 0.5 * g[i] * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (g[i] + 0.044715 * g[i] * g[i] * g[i]))),
                    _ => g[i] / (1 + Math.Exp(-g[i])) * u![i],
                };
            if (s.SubNorms) a = Norm(a, m, L("rms_ffn_sub", l, m), eps);
            var down = Linear(a, m, L("w2", l, d * m), d, B("b2", l, d));
            if (s.SandwichNorms) down = Norm(down, d, L("rms_post_ffn", l, d), eps);
            for (int i = 0; i < x.Length; i++) x[i] += down[i];
        }
        var xf = BlockNorm(x, d, w["rms_final"], w.GetValueOrDefault("b_final_norm"), eps);
        var logits = Linear(xf, d, w.TryGetValue("wcls", out var cls) ? cls : w["token_embedding"], c.Vocab, null);
        if (s.FinalSoftCap > 0) for (int i = 0; i < logits.Length; i++) logits[i] = s.FinalSoftCap * Math.Tanh(logits[i] / s.FinalSoftCap);
        return logits;
    }

    // the block's norm: LayerNorm when it has a bias (GPT-2), else RMSNorm
    private static double[] BlockNorm(double[] x, int width, double[] g, double[]? bias, double eps)
    {
        if (bias is null) return Norm(x, width, g, eps);
        var y = new double[x.Length];
        for (int r = 0; r < x.Length / width; r++)
        {
            double mu = 0, var = 0;
            for (int j = 0; j < width; j++) mu += x[r * width + j] / width;
            for (int j = 0; j < width; j++) var += (x[r * width + j] - mu) * (x[r * width + j] - mu) / width;
            for (int j = 0; j < width; j++) y[r * width + j] = (x[r * width + j] - mu) / Math.Sqrt(var + eps) * g[j] + bias[j];
        }
        return y;
    }

    private static double[] Norm(double[] x, int width, double[] g, double eps)
    {
        var y = new double[x.Length];
        for (int r = 0; r < x.Length / width; r++)
        {
            double ss = 0;
            for (int j = 0; j < width; j++) ss += x[r * width + j] * x[r * width + j];
            double inv = 1 / Math.Sqrt(ss / width + eps);
            for (int j = 0; j < width; j++) y[r * width + j] = x[r * width + j] * inv * g[j];
        }
        return y;
    }

    // y[t, o] = sum_i x[t, i] W[o, i] + b[o]
    private static double[] Linear(double[] x, int inF, double[] wt, int outF, double[]? b)
    {
        int n = x.Length / inF;
        var y = new double[n * outF];
        for (int t = 0; t < n; t++)
            for (int o = 0; o < outF; o++)
            {
                double acc = b?[o] ?? 0;
                for (int i = 0; i < inF; i++) acc += x[t * inF + i] * wt[o * inF + i];
                y[t * outF + o] = acc;
            }
        return y;
    }

    // interleaved pairs (2i, 2i + 1) of every head rotated by pos * freq[i]
    private static void Rope(double[] v, int width, int hd, double[] freq)
    {
        for (int t = 0; t < v.Length / width; t++)
            for (int e = 0; e < width; e += 2)
            {
                double angle = t * freq[e % hd / 2], cos = Math.Cos(angle), sin = Math.Sin(angle);
                double a = v[t * width + e], b = v[t * width + e + 1];
                v[t * width + e] = a * cos - b * sin;
                v[t * width + e + 1] = a * sin + b * cos;
            }
    }
}
