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
    /// The entry for users is Quantization.GemvRequest, which checks the options (distinct formats, ranges) first.
    /// </summary>
    internal static GemvComparison Run(IReadOnlyList<LowBitFormat> formats, int rows, int cols, int threads, int runs,
        IsaPath? path, double? bandwidthGBps, Action<int, string>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(formats);
        if (path is { } p) Isa.Require(p);

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
