using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Quantization;
using Workbench.Engine.Requests;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Tests.LowBit;

public class TernaryModelTests
{
    /// <summary>
    /// The real stories260K weights through every ternary format: the kernels' int32 sums on every supported path equal
    /// a plain scalar sum on the activations the layers really receive, and the outputs equal the dequantized fp32 layer.
    /// </summary>
    [Theory, Trait("Category", "Simd")]
    [InlineData(LowBitFormat.I2S)]
    [InlineData(LowBitFormat.TL1)]
    [InlineData(LowBitFormat.TL2)]
    public void PackedKernelsAreLosslessOnRealWeightsAndActivations(LowBitFormat format)
    {
        var d = ModelHub.LoadDecoder("stories260K");
        using var t = TernaryModel.Quantize(d, format);
        Assert.Equal(7 * d.Config.Layers, t.Layers.Count);
        var ids = d.Tokenizer.Encode(TernaryQuality.HeldOutStories(1)[0], bos: true)[..40];
        var report = t.CheckLossless(ctx => d.Logits(ids, ctx), tokensPerCall: 40);
        Assert.All(report.Layers, l => Assert.True(l.Passed, $"{l.Name}: {l.IntegerMismatches} mismatches, rel {l.MaxRelativeError}"));
        Assert.All(report.Layers, l => Assert.Equal(40, l.TokensChecked));
        Assert.True(report.Lossless);
    }

    /// <summary>
    /// The ternary forward equals an fp32 forward whose linears are replaced by an independent computation: absmean
    /// ternary weights and absmax int8 activations dequantized and multiplied in double (within float rounding).
    /// </summary>
    [Fact]
    public void TernaryForwardEqualsDequantizedReferenceModel()
    {
        var d = ModelHub.LoadDecoder("stories260K");
        using var t = TernaryModel.Quantize(d, LowBitFormat.TL2);
        var reference = new DequantizedReference(d.Model);
        var ids = d.Tokenizer.Encode("Once upon a time, there was a little dog.", bos: true);
        var got = d.Logits(ids, t.Context());
        var expected = d.Logits(ids, new ForwardContext { Linear = reference });
        Assert.Equal(expected.Length, got.Length);
        double maxDiff = 0, maxAbs = 0;
        for (int i = 0; i < got.Length; i++) { maxDiff = Math.Max(maxDiff, Math.Abs(got[i] - expected[i])); maxAbs = Math.Max(maxAbs, Math.Abs(expected[i])); }
        Assert.True(maxDiff <= 1e-3 * maxAbs, $"max |diff| {maxDiff} vs max |logit| {maxAbs}");
        // and it is really different from fp32 (the override ran)
        var fp32 = d.Logits(ids);
        Assert.True(fp32.Zip(got).Max(p => Math.Abs(p.First - p.Second)) > 1e-2);
    }

    private sealed class DequantizedReference : ILinearOverride
    {
        private readonly HashSet<float[]> _linears = new(ReferenceEqualityComparer.Instance);
        public DequantizedReference(LlamaModel m)
        {
            foreach (var l in m.Weights.Layers) foreach (var w in new[] { l.Wq, l.Wk, l.Wv, l.Wo, l.W1, l.W2, l.W3 }) _linears.Add(w);
        }

        public bool TryLinear(float[] weight, ReadOnlySpan<float> x, int n, int k, int m, Span<float> y)
        {
            if (!_linears.Contains(weight)) return false;
            double s = weight.Sum(v => Math.Abs((double)v)) / weight.Length;
            for (int t = 0; t < n; t++)
            {
                var xt = x.Slice(t * k, k);
                double max = 0;
                foreach (var v in xt) max = Math.Max(max, Math.Abs(v));
                float a = max == 0 ? 1f : 127f / (float)max;
                for (int r = 0; r < m; r++)
                {
                    double sum = 0;
                    for (int c = 0; c < k; c++)
                    {
                        double wt = Math.Clamp(Math.Round(weight[r * k + c] / s, MidpointRounding.ToEven), -1, 1);
                        double q = Math.Clamp(Math.Round(xt[c] * a, MidpointRounding.ToEven), -128, 127);
                        sum += wt * s * q / a;
                    }
                    y[t * m + r] = (float)sum;
                }
            }
            return true;
        }
    }

    [Fact]
    public void QualityIsMeasuredAndHonest()
    {
        var d = ModelHub.LoadDecoder("stories260K");
        using var t = TernaryModel.Quantize(d, LowBitFormat.I2S);
        var texts = TernaryQuality.HeldOutStories(2);
        var q = TernaryQuality.Evaluate(d, t, texts);
        Assert.True(q.Positions > 20);
        Assert.True(q.MeanKl > 0 && double.IsFinite(q.MeanKl));
        Assert.InRange(q.Top1Agreement, 0, 1);
        Assert.True(q.PerplexityFp32 > 1 && q.PerplexityFp32 < 50, $"fp32 perplexity {q.PerplexityFp32}"); // the real model predicts its own data well
        Assert.True(q.Perplexity > q.PerplexityFp32); // post-training ternary loses quality
    }

    [Fact]
    public void MiniLmEncoderQuantizesAndKeepsEmbeddingsFp32()
    {
        var e = ModelHub.LoadEncoder("minilm");
        using var t = TernaryModel.Quantize(e, LowBitFormat.TL1);
        Assert.Equal(6 * e.Config.Layers, t.Layers.Count);
        Assert.True(t.PackedLinearBytes * 8 < t.Fp32LinearBytes);
        var sentences = TernaryQuality.HeldOutSentences(3);
        Assert.Equal(3, sentences.Count);
        var q = TernaryQuality.Evaluate(e, t, sentences);
        Assert.InRange(q.MeanCosine, -1, 0.9999);
        var report = t.CheckLossless(ctx => e.Embed(sentences[0], ctx));
        Assert.True(report.Lossless);
    }

    [Fact]
    public void BadInputIsRejected()
    {
        var d = ModelHub.LoadDecoder("stories260K");
        Assert.Throws<ArgumentOutOfRangeException>(() => TernaryModel.Quantize(d, LowBitFormat.Int8));
        Assert.Throws<ArgumentOutOfRangeException>(() => TernaryModel.Quantize(d, LowBitFormat.I2S, threads: 0));
        using var t = TernaryModel.Quantize(d, LowBitFormat.I2S);
        var w = d.Model.Weights.Layers[0].Wq;
        Assert.Throws<ArgumentException>(() => t.TryLinear(w, new float[10], 1, 10, 64, new float[64]));
        Assert.False(t.TryLinear(d.Model.Weights.Output, new float[d.Config.Dim], 1, d.Config.Dim, d.Config.Vocab, new float[d.Config.Vocab]));
    }

    /// <summary>
    /// One Quantize over ITransformerModel: the bytes kept fp32 are the parameter arrays that are not block linears,
    /// equal to the per-architecture sums the Llama and BERT overloads used to write out field by field.
    /// </summary>
    [Fact]
    public void QuantizeCountsKeptBytesFromTheModelsParameterArrays()
    {
        var d = ModelHub.LoadDecoder("stories260K");
        using (var t = TernaryModel.Quantize(d, LowBitFormat.I2S))
        {
            var w = d.Model.Weights;
            long kept = 4L * (w.TokenEmbedding.Length + w.FinalNorm.Length + (w.SharedOutput ? 0 : w.Output.Length)
                              + w.Layers.Sum(l => (long)l.AttnNorm.Length + l.FfnNorm.Length));
            Assert.Equal(kept, t.KeptFp32Bytes);
            Assert.Equal(4L * w.Layers.Sum(l => (long)l.Wq.Length + l.Wk.Length + l.Wv.Length + l.Wo.Length + l.W1.Length + l.W2.Length + l.W3.Length), t.Fp32LinearBytes);
            Assert.Equal(d.Model.BlockLinears.Select(l => l.Name), t.Layers.Select(l => l.Name));
        }
        var e = ModelHub.LoadEncoder("minilm");
        using (var t = TernaryModel.Quantize(e, LowBitFormat.I2S))
        {
            var w = e.Model.Weights;
            long kept = 4L * (w.WordEmbedding.Length + w.PositionEmbedding.Length + w.TokenTypeEmbedding.Length + w.EmbLnG.Length + w.EmbLnB.Length
                              + w.Layers.Sum(l => (long)l.Bq.Length + l.Bk.Length + l.Bv.Length + l.Bo.Length + l.Bi.Length + l.Bout.Length
                                                 + l.Ln1G.Length + l.Ln1B.Length + l.Ln2G.Length + l.Ln2B.Length));
            Assert.Equal(kept, t.KeptFp32Bytes);
            Assert.Equal(e.Model.BlockLinears.Select(l => l.Name), t.Layers.Select(l => l.Name));
        }
    }

    [Fact]
    public void TheVitQuantizesThroughTheSameInterface()
    {
        var vit = ModelHub.Load("vit-cifar10").Model;
        using var t = TernaryModel.Quantize(vit, LowBitFormat.TL2);
        Assert.Equal(vit.BlockLinears.Count, t.Layers.Count);
        Assert.Equal(4L * vit.ParameterArrays.Sum(a => (long)a.Length), t.KeptFp32Bytes + t.Fp32LinearBytes);
        Assert.All(t.Layers, l => Assert.Equal(LowBitFormats.WeightBytes(LowBitFormat.TL2, l.Rows, l.Cols), l.PackedBytes));
    }

    [Fact]
    public void RequestsCheckTheirOptionsOnceNamingThem()
    {
        string Error(Action a) => Assert.Throws<OptionException>(a).Message;
        Assert.Equal("--format 'q4' is not one of i2s, tl1 or tl2.", Error(() => new BitNetRequest { Model = "stories260K", Format = "q4" }.Validate()));
        Assert.Equal("--format 'int8' is not one of i2s, tl1 or tl2.", Error(() => new BitNetRequest { Model = "stories260K", Format = "int8" }.Validate()));
        Assert.Equal("--format is required (i2s, tl1 or tl2).", Error(() => new BitNetRequest { Model = "stories260K", Format = " " }.Validate()));
        Assert.StartsWith("--model is required", Error(() => new BitNetRequest { Model = "", Format = "i2s" }.Validate()));
        Assert.StartsWith("--threads '0' must be an integer in 1..", Error(() => new BitNetRequest { Model = "m", Format = "i2s", Threads = 0 }.Validate()));
        new BitNetRequest { Model = "stories260K", Format = "TL2" }.Validate();

        Assert.Contains("--compare 'i2s,I2S' names a format twice", Error(() => new GemvRequest { Compare = "i2s,I2S", Rows = 8, Cols = 8 }.Validate()));
        Assert.Equal("--format 'q8' is not one of f32, int8, i2s, tl1, tl2, f16, bf16, q8_0, q4_0, q5_0, q4_k, q5_k, q6_k, q2_k, q3_k, q4_1 or q5_1.", Error(() => new GemvRequest { Format = "q8", Rows = 8, Cols = 8 }.Validate()));
        Assert.Equal("--rows is required (an integer in 1..1048576).", Error(() => new GemvRequest { Format = "i2s", Cols = 8 }.Validate()));
        Assert.Equal("--cols '65537' must be an integer in 1..65536.", Error(() => new GemvRequest { Format = "i2s", Rows = 8, Cols = 65537 }.Validate()));
        Assert.Equal("--isa 'avx9' is not one of scalar, v128, v256, v512.", Error(() => new GemvRequest { Format = "i2s", Rows = 8, Cols = 8, Isa = "avx9" }.Validate()));
        Assert.StartsWith("--bandwidth '0' must be", Error(() => new GemvRequest { Format = "i2s", Rows = 8, Cols = 8, Bandwidth = 0 }.Validate()));
        Assert.Equal(LowBitFormats.All.Count + 1, new GemvRequest { Compare = "all", Rows = 8, Cols = 256 }.Steps);
        Assert.Equal("--cols 8: q8_0 stores rows in blocks of 32 weights; give a multiple of 32.", Error(() => new GemvRequest { Compare = "all", Rows = 8, Cols = 8 }.Validate()));
        Assert.Equal("--cols 96: q4_k stores rows in blocks of 256 weights; give a multiple of 256.", Error(() => new GemvRequest { Format = "q4_k", Rows = 8, Cols = 96 }.Validate()));

        var g = new GemvRequest { Compare = "tl1,int8", Rows = 64, Cols = 96, Runs = 2, Bandwidth = 27 }.Run();
        Assert.Equal([LowBitFormat.TL1, LowBitFormat.Int8], g.Results.Select(r => r.Format));
        Assert.All(g.Results, r => Assert.Equal(LowBitFormats.WeightBytes(r.Format, 64, 96), r.WeightBytes));
    }
}
