using Workbench.Engine.Tensors;

namespace Workbench.Engine.LowBit;

/// <summary>
/// Cold-weight GEMV timings of several formats on one shape, beside the memory-bandwidth floor of each: the time
/// needed just to stream its weight bytes at <see cref="ReadGBps"/>. Decode is bandwidth bound when a kernel sits
/// on its floor; a kernel above it is compute bound.
/// </summary>
public sealed record GemvComparison(int Rows, int Cols, int Threads, IReadOnlyList<GemvProbeResult> Results, double ReadGBps, bool BandwidthMeasured)
{
    /// <summary>Microseconds to read <paramref name="weightBytes"/> at <see cref="ReadGBps"/>.</summary>
    public double FloorUs(long weightBytes) => weightBytes / (ReadGBps * 1e3);

    /// <summary>Measured median over the bandwidth floor (1 = as fast as the memory allows).</summary>
    public double TimesFloor(GemvProbeResult r) => r.MedianUs / FloorUs(r.WeightBytes);

    /// <summary>
    /// Runs <see cref="GemvProbe.Run"/> for each format in turn (same seed, rows, cols, threads, runs) and measures
    /// the streaming read bandwidth with the same thread count, unless <paramref name="bandwidthGBps"/> is given.
    /// <paramref name="progress"/> gets (steps done, what runs next); steps = formats + 1 (the bandwidth).
    /// </summary>
    public static GemvComparison Run(IReadOnlyList<LowBitFormat> formats, int rows, int cols, int threads = 1, int runs = 21,
        IsaPath? path = null, double? bandwidthGBps = null, Action<int, string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(formats);
        if (formats.Count == 0) throw new ArgumentException("Give at least one format.", nameof(formats));
        if (formats.Distinct().Count() != formats.Count) throw new ArgumentException($"Formats repeat: {string.Join(", ", formats)}.", nameof(formats));
        Shapes.CheckShape(rows, cols);
        if (threads < 1 || threads > Environment.ProcessorCount)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, $"threads must be in 1..{Environment.ProcessorCount}.");
        ArgumentOutOfRangeException.ThrowIfLessThan(runs, 1);
        if (bandwidthGBps is { } bw && !(bw > 0 && double.IsFinite(bw)))
            throw new ArgumentOutOfRangeException(nameof(bandwidthGBps), bw, "bandwidth must be a positive number of GB/s.");
        if (path is { } p) LowBitIsa.Require(p);

        var results = new List<GemvProbeResult>();
        for (int i = 0; i < formats.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            progress?.Invoke(i, formats[i].ToString());
            // The previous format's pool (up to ~200 MB) is garbage now: collect it here, not as a background GC
            // competing for the 2 cores and the memory bus while the next format is timed.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            results.Add(GemvProbe.Run(formats[i], rows, cols, threads, runs, path: path));
        }
        cancellationToken.ThrowIfCancellationRequested();
        progress?.Invoke(formats.Count, "read bandwidth");
        double gbps = bandwidthGBps ?? GemvProbe.ReadBandwidthGBps(threads);
        progress?.Invoke(formats.Count + 1, "done");
        return new GemvComparison(rows, cols, threads, results, gbps, bandwidthGBps is null);
    }
}
