namespace Workbench.Engine.Models;

/// <summary>Modules skipped at run time (layer dropping). A skipped attention layer is not computed and holds no KV cache.</summary>
public sealed record ModuleSkips(IReadOnlySet<int> Attention, IReadOnlySet<int> Mlp)
{
    public static ModuleSkips None { get; } = new(new HashSet<int>(), new HashSet<int>());
    public bool SkipsAttention(int layer) => Attention.Contains(layer);
    public bool SkipsMlp(int layer) => Mlp.Contains(layer);
    public bool SkipsBlock(int layer) => SkipsAttention(layer) && SkipsMlp(layer);

    /// <summary>Checks every layer index against the model, naming <paramref name="paramName"/> when one is out of range.</summary>
    public void Check(ModelConfig config, string paramName)
    {
        foreach (var l in Attention.Concat(Mlp))
            if ((uint)l >= (uint)config.Layers)
                throw new ArgumentOutOfRangeException(paramName, l, $"layer {l} is out of range: the model has layers 0..{config.Layers - 1}");
    }
}

/// <summary>
/// Called after block <paramref name="layer"/> has run (before block layer + 1): returns the rows to keep
/// (indices into the current rows, increasing), or null to keep all. Token dropping is built on this.
/// </summary>
public delegate int[]? TokenSelector(int layer, SequenceState state);

/// <summary>
/// Replaces chosen linear layers (identified by their weight array) with another kernel, e.g. a ternary BitLinear.
/// Returns false for weights it does not handle, which then run as fp32.
/// </summary>
public interface ILinearOverride
{
    bool TryLinear(float[] weight, ReadOnlySpan<float> x, int n, int k, int m, Span<float> y);
}

/// <summary>Everything a forward call may be given besides its input: hooks, skipped modules, a KV cache, a token selector.</summary>
public sealed class ForwardContext
{
    public Hooks? Hooks { get; init; }
    public ModuleSkips Skips { get; init; } = ModuleSkips.None;
    public KvCache? Cache { get; init; }
    public TokenSelector? Selector { get; init; }
    /// <summary>Linear layers run by another kernel (low-bit inference); null = all fp32.</summary>
    public ILinearOverride? Linear { get; init; }
    public int Threads { get; init; } = Environment.ProcessorCount;
    public CancellationToken Cancellation { get; init; }

    /// <summary>
    /// For ranking tokens (<see cref="RunWithCacheExtensions.QueryAttention"/>): when set, a block's attention module
    /// computes scores for this one query row only and fires <c>attn.pattern</c> as [heads, 1, keys]. What the block
    /// computes after the pattern is then not its output; the caller stops at the pattern.
    /// </summary>
    internal int? PatternQueryRow { get; init; }

    public static ForwardContext Default => new();

    /// <summary>
    /// A linear layer, Y[n, m] = X[n, k] W[m, k]^T, through the override if it takes this weight, else the stored-type
    /// kernel of a weight kept as stored or the packed ternary kernels of a checkpoint stored ternary (<see cref="StoredLinears"/>),
    /// which quantize each input row to int8 (absmax) inside, else the fp32 kernel;
    /// then + bias (m values; empty for none) and exact GELU when <paramref name="gelu"/>. The fp32 kernel applies
    /// both as each tile finishes; after an override they run as passes over Y. <paramref name="fallback"/> (the model's
    /// own kernels, <see cref="LlamaModel.LinearOverride"/>) takes the weights this context's <see cref="Linear"/> does not.
    /// </summary>
    public void RunLinear(ReadOnlySpan<float> x, int n, int k, float[] w, int m, Span<float> y, ReadOnlySpan<float> bias = default, bool gelu = false,
        ILinearOverride? fallback = null)
    {
        if ((Linear?.TryLinear(w, x, n, k, m, y) ?? false) || (fallback?.TryLinear(w, x, n, k, m, y) ?? false))
        {
            Tensors.Ops.AddBias(y, n, m, bias, gelu);
            return;
        }
        if (StoredLinears.Linear(w) is { } stored)
        {
            if (stored.Rows != m || stored.Cols != k)
                throw new ArgumentException($"the stored weight is {stored.Rows} x {stored.Cols}, the layer asks for {m} x {k}", nameof(w));
            stored.Gemm(x[..(n * k)], n, y[..(n * m)], Threads);
            Tensors.Ops.AddBias(y, n, m, bias, gelu);
            return;
        }
        Tensors.MatMul.Linear(x, n, k, w, m, y, bias, gelu, Threads);
    }

    internal bool Wants(string site) => Hooks?.Wants(site) ?? false;

    internal void Fire(string site, int layer, Span<float> data, int rows, int cols, int[] tokenIndex)
    {
        if (Hooks is { } h && h.Wants(site)) h.Fire(site, layer, data, [rows, cols], tokenIndex);
    }
}
