namespace Workbench.Engine.Models;

/// <summary>Where a hook fires: the site name (see <see cref="HookNames"/>), the block, the shape of the data,
/// and, for each row, the index of its token in the original input (rows go missing when tokens are dropped).</summary>
public readonly record struct HookPoint(string Site, int Layer, int[] Shape, int[] TokenIndex);

/// <summary>A hook sees the activation at a site and may change it in place.</summary>
public delegate void HookFn(HookPoint point, Span<float> data);

/// <summary>A captured activation: a copy of the data a site held during the latest forward call.</summary>
public sealed record Activation(string Site, int Layer, int[] Shape, float[] Data, int[] TokenIndex)
{
    public int Rows => Shape.Length == 2 ? Shape[0] : Shape[^2];
    public int Cols => Shape[^1];
    public ReadOnlySpan<float> Row(int r) => Data.AsSpan(r * Cols, Cols);
}

/// <summary>
/// Hooks for one or more forward calls: capture chosen sites, or run functions that read or replace activations.
/// Sites nobody asked for cost nothing (the forward pass checks <see cref="Wants"/> before copying).
/// </summary>
public sealed class Hooks
{
    private readonly Dictionary<string, List<HookFn>> _fns = new(StringComparer.Ordinal);
    private readonly HashSet<string> _capture = new(StringComparer.Ordinal);
    private Func<string, bool>? _capturePredicate;

    public Dictionary<string, Activation> Captured { get; } = new(StringComparer.Ordinal);

    public Hooks Add(string site, HookFn fn)
    {
        ArgumentNullException.ThrowIfNull(fn);
        if (!_fns.TryGetValue(site, out var list)) _fns[site] = list = [];
        list.Add(fn);
        return this;
    }

    public Hooks Capture(params IEnumerable<string> sites)
    {
        foreach (var s in sites) _capture.Add(s);
        return this;
    }

    /// <summary>Capture every site whose name matches, e.g. <c>s =&gt; s.EndsWith(".resid_post")</c>.</summary>
    public Hooks Capture(Func<string, bool> predicate)
    {
        _capturePredicate = predicate;
        return this;
    }

    public bool Wants(string site) =>
        _fns.ContainsKey(site) || _capture.Contains(site) || (_capturePredicate?.Invoke(site) ?? false);

    public Activation Get(string site) =>
        Captured.TryGetValue(site, out var a) ? a : throw new KeyNotFoundException($"site '{site}' was not captured (captured: {string.Join(", ", Captured.Keys.Take(8))}...)");

    /// <summary>Called by the forward passes: runs hook functions (which may edit <paramref name="data"/>), then captures.</summary>
    public void Fire(string site, int layer, Span<float> data, int[] shape, int[] tokenIndex)
    {
        if (_fns.TryGetValue(site, out var list))
        {
            var point = new HookPoint(site, layer, shape, tokenIndex);
            foreach (var fn in list) fn(point, data);
        }
        if (_capture.Contains(site) || (_capturePredicate?.Invoke(site) ?? false))
            Captured[site] = new Activation(site, layer, shape, data.ToArray(), tokenIndex.ToArray());
    }
}
