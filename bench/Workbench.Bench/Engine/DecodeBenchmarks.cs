using BenchmarkDotNet.Attributes;
using Workbench.Engine.Models;

namespace Workbench.Bench.Engine;

/// <summary>stories260K: one decode step with the KV cache (the tokens/s a user sees) and a 64-token prefill.</summary>
[MemoryDiagnoser]
public class DecodeBenchmarks
{
    private Decoder _dec = null!;
    private int[] _prompt = null!;

    [GlobalSetup]
    public void Setup()
    {
        _dec = ModelHub.LoadDecoder("stories260K");
        _prompt = _dec.Generate("Once upon a time", 64).Tokens[..64];
    }

    /// <summary>64 decode steps (positions 0..63), one token at a time: divide 64 by the time for tokens/s.</summary>
    [Benchmark(OperationsPerInvoke = 64)]
    public float Decode64()
    {
        var ctx = new ForwardContext { Cache = KvCache.For(_dec.Config, 64), Threads = 1 };
        float s = 0;
        for (int pos = 0; pos < 64; pos++) s += _dec.Model.Forward([_prompt[pos]], pos, ctx, allRows: false).Logits[0];
        return s;
    }

    [Benchmark(OperationsPerInvoke = 64)]
    public float Prefill64()
    {
        var ctx = new ForwardContext { Cache = KvCache.For(_dec.Config, 64), Threads = 1 };
        return _dec.Model.Forward(_prompt, 0, ctx, allRows: false).Logits[0];
    }
}
