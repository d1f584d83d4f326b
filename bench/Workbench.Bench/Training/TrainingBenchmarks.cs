using BenchmarkDotNet.Attributes;
using Workbench.Engine;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Quantization;
using Workbench.Engine.Text;
using Workbench.Engine.Training;

namespace Workbench.Bench.Training;

/// <summary>
/// Training throughput on stories260K, the shape <c>workbench train</c> uses (8 windows of 128 tokens): one optimizer
/// step (forward, backward, global-norm clip, AdamW), the training forward alone, and beside them the inference forward
/// of the same windows (baseline: fp32, or the ternary I2S kernels for QAT). Every method processes 8 x 128 tokens
/// (OperationsPerInvoke), so the reported time is per token: tokens/s = 1 / Mean.
/// </summary>
public class TrainingBenchmarks
{
    private const int Windows = 8, Seq = 128;

    [Params(false, true)] public bool Qat { get; set; }

    private LlamaModel _model = null!;
    private int[][] _batch = null!;
    private LlamaParameters _p = null!, _g = null!;
    private LlamaBackprop _bp = null!;
    private AdamW _opt = null!;
    private TernaryModel? _ternary;

    [GlobalSetup]
    public void Setup()
    {
        var dec = ModelHub.LoadDecoder("stories260K");
        _model = dec.Model;
        var tokens = Corpus.Load(Bundled.TinyStories).Documents.SelectMany(d => dec.Tokenizer.Encode(d, bos: true)).Take(Windows * (Seq + 1)).ToArray();
        _batch = Enumerable.Range(0, Windows).Select(w => tokens[(w * (Seq + 1))..((w + 1) * (Seq + 1))]).ToArray();
        _p = LlamaParameters.From(_model);
        _g = new LlamaParameters(_p.Config, _p.SharedOutput);
        _bp = new LlamaBackprop(_p.Config, Qat);
        _opt = new AdamW(_p) { WeightDecay = 0.01 };
        _ternary = Qat ? TernaryModel.Quantize(_model, LowBitFormat.I2S, Environment.ProcessorCount) : null;
    }

    [GlobalCleanup]
    public void Cleanup() => _ternary?.Dispose();

    [Benchmark(Baseline = true, OperationsPerInvoke = Windows * Seq)]
    public float InferenceForward()
    {
        var ctx = new ForwardContext { Linear = _ternary };
        float s = 0;
        foreach (var w in _batch) s += _model.Forward(w[..Seq], 0, ctx).Logits[0];
        return s;
    }

    [Benchmark(OperationsPerInvoke = Windows * Seq)]
    public double TrainingForward() => _bp.Forward(_p, _batch);

    [Benchmark(OperationsPerInvoke = Windows * Seq)]
    public double TrainStep()
    {
        double loss = _bp.LossAndGradients(_p, _batch, _g);
        AdamW.ClipGlobalNorm(_g, 1.0);
        _opt.Update(_p, _g, 1e-5);
        return loss;
    }
}
