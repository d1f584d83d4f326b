using System.Globalization;
using Workbench.Engine.Costs;

namespace Workbench.Engine.TokenDrop;

/// <summary>How the droppable tokens are ranked at a boundary.</summary>
public enum DropRanking
{
    /// <summary>Keep the tokens the query token attends to most (PyramidDrop, FastV).</summary>
    Attention,
    /// <summary>Keep a seeded random subset (the baseline attention must beat).</summary>
    Random,
    /// <summary>Keep the least-attended tokens (sanity baseline: should be worst).</summary>
    LeastAttended,
}

/// <summary>
/// A drop schedule: stage boundaries and the keep ratio at each.
/// A boundary b (1 &lt;= b &lt; layers) means "after the first b blocks": blocks 0..b-1 (0-based) see the tokens of the
/// previous stage, block b on see only the survivors, ranked with the query token's attention in block b
/// (1-based: "after layer b, ranked by layer b+1"). So for the 4-block ViT, boundaries 1,2,3 with ratio 0.5 give
/// 64 -> 32 -> 16 -> 8 patches over blocks 1 | 2 | 3 | 4.
/// Each ratio is relative to the previous stage's droppable count, rounded up: k = max(1, ceil(r * n_prev)),
/// so a ratio never keeps fewer than it says and at least one droppable token survives. Protected tokens are never counted or dropped.
/// FastV is the one-boundary case.
/// </summary>
public sealed record PyramidSchedule
{
    public IReadOnlyList<int> Boundaries { get; }
    public IReadOnlyList<double> KeepRatios { get; }

    public PyramidSchedule(IEnumerable<int> boundaries, IEnumerable<double> keepRatios)
    {
        ArgumentNullException.ThrowIfNull(boundaries);
        ArgumentNullException.ThrowIfNull(keepRatios);
        var b = boundaries.ToArray();
        var r = keepRatios.ToArray();
        if (b.Length == 0) throw new ArgumentException("at least one stage boundary is needed", nameof(boundaries));
        for (int i = 0; i < b.Length; i++)
        {
            if (b[i] < 1) throw new ArgumentOutOfRangeException(nameof(boundaries), b[i], "a boundary is a layer count >= 1 (drop after that many blocks)");
            if (i > 0 && b[i] <= b[i - 1]) throw new ArgumentException($"boundaries must be strictly increasing: {string.Join(",", b)}", nameof(boundaries));
        }
        if (r.Length == 1 && b.Length > 1) r = Enumerable.Repeat(r[0], b.Length).ToArray();
        if (r.Length != b.Length) throw new ArgumentException($"{r.Length} keep ratios for {b.Length} boundaries (give one, or one per stage)", nameof(keepRatios));
        foreach (var x in r)
            if (!(x > 0 && x <= 1)) throw new ArgumentOutOfRangeException(nameof(keepRatios), x, "keep ratios must be in (0, 1]");
        Boundaries = b;
        KeepRatios = r;
    }

    /// <summary>PyramidDrop with one ratio lambda at every boundary.</summary>
    public static PyramidSchedule Pyramid(IEnumerable<int> boundaries, double lambda) => new(boundaries, [lambda]);

    /// <summary>FastV: one drop after <paramref name="layer"/> blocks keeping <paramref name="keep"/> of the droppable tokens.</summary>
    public static PyramidSchedule FastV(int layer, double keep) => new([layer], [keep]);

    /// <summary>Throws if a boundary is not below the model's layer count (the block after it must exist to rank).</summary>
    public void Validate(int layers)
    {
        if (Boundaries[^1] >= layers)
            throw new ArgumentOutOfRangeException("boundaries", Boundaries[^1], $"boundaries must be in 1..{layers - 1} for a {layers}-layer model");
    }

    public static int KeepCount(int previous, double ratio)
    {
        // Round away float noise first (0.3 * 10 = 3.0000000000000004 must keep 3, not 4).
        return Math.Max(1, (int)Math.Ceiling(Math.Round(ratio * previous, 9)));
    }

    /// <summary>Droppable tokens alive in each stage: [n0, n1, ..., nS].</summary>
    public int[] DroppableCounts(int droppable)
    {
        if (droppable <= 0) throw new ArgumentOutOfRangeException(nameof(droppable), droppable, "there are no droppable tokens");
        var counts = new int[Boundaries.Count + 1];
        counts[0] = droppable;
        for (int i = 0; i < Boundaries.Count; i++) counts[i + 1] = Math.Min(counts[i], KeepCount(counts[i], KeepRatios[i]));
        return counts;
    }

    /// <summary>The analytic cost of this schedule (per-layer MACs with the kept counts, plus ranking).</summary>
    public CostReport Cost(TransformerShape shape, int droppable, int protectedTokens)
    {
        Validate(shape.Layers);
        ArgumentOutOfRangeException.ThrowIfNegative(protectedTokens);
        return Flops.ForStages(shape, Boundaries, DroppableCounts(droppable).Select(n => n + protectedTokens).ToArray());
    }

    public string LayersText => string.Join(",", Boundaries);
    public string KeepText => string.Join(",", KeepRatios.Select(r => r.ToString("0.###", CultureInfo.InvariantCulture)));
    public override string ToString() => $"layers {LayersText} keep {KeepText}";
}
