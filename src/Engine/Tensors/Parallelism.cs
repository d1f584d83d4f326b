namespace Workbench.Engine.Tensors;

/// <summary>
/// Splits the kernels' work across cores on one process-wide <see cref="WorkerTeam"/> of spinning threads.
/// A forward pass makes dozens of short parallel calls (seven per encoder layer); Parallel.For wakes a pool thread
/// for each, and on this 2-core VM that wake-up and the late start it causes cost more than the split saves on
/// small inputs. When the team is busy (another caller, or a call nested inside a part) the work falls back to
/// Parallel.For, so concurrent callers stay correct.
/// </summary>
internal static class Parallelism
{
    private static WorkerTeam? _team;
    private static int _busy;

    /// <summary>Runs body(i) for i in [0, count) on up to <paramref name="threads"/> threads, in contiguous ranges.</summary>
    public static void For(int count, int threads, Action<int> body)
    {
        threads = Math.Min(Math.Min(threads, count), Environment.ProcessorCount);
        if (threads <= 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
            return;
        }
        try
        {
            var team = _team ??= new WorkerTeam(Environment.ProcessorCount);
            team.Run(part =>
            {
                if (part >= threads) return;
                int start = (int)((long)count * part / threads), end = (int)((long)count * (part + 1) / threads);
                for (int i = start; i < end; i++) body(i);
            });
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <summary>
    /// Runs body(c) for every chunk c in [0, chunks) on up to <paramref name="threads"/> threads, each taking the next
    /// unclaimed chunk (<see cref="WorkerTeam.RunChunks"/>), so a slowed core does fewer: for a GEMV's row chunks.
    /// </summary>
    public static void Chunks(int chunks, int threads, Action<int> body)
    {
        threads = Math.Min(Math.Min(threads, chunks), Environment.ProcessorCount);
        if (threads <= 1)
        {
            for (int c = 0; c < chunks; c++) body(c);
            return;
        }
        if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
            return;
        }
        try
        {
            (_team ??= new WorkerTeam(Environment.ProcessorCount)).RunChunks(chunks, body, threads);
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }
}
