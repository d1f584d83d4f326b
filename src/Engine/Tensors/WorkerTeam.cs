using System.Diagnostics;

namespace Workbench.Engine.Tensors;

/// <summary>
/// A fixed team of threads for splitting one GEMV across cores without allocating per call:
/// the caller runs part 0 and <c>threads - 1</c> parked workers run the rest. Parallel.For would allocate
/// and wake pool threads on every token; a decode step is only ~100 us, so that overhead matters.
/// </summary>
/// <remarks>
/// Waiting (a worker for the next call, the caller for the workers) busy-spins on a counter with pause instructions
/// for up to <see cref="SpinTime"/>, then blocks on an event. It never yields the core while spinning: the earlier
/// ManualResetEventSlim waits called Thread.Yield / Sleep(0) on every spin after the tenth, and on a loaded 2-core
/// machine (other builds running) each yield handed the core to another process for a time slice, so whichever
/// thread finished its half first came back milliseconds late and a 2-thread GEMV often took longer than a 1-thread
/// one. OpenMP's waiters in the reference kernels spin the same way (GOMP_SPINCOUNT), then block.
/// </remarks>
internal sealed class WorkerTeam : IDisposable
{
    /// <summary>How long a waiting thread spins before it blocks: long enough to bridge the gap between the GEMVs of one decode step.</summary>
    internal static readonly long SpinTime = Stopwatch.Frequency / 5000; // 200 us

    private readonly Thread[] _threads;
    private readonly ManualResetEventSlim[] _wake;
    private readonly ManualResetEventSlim _allDone = new(false, spinCount: 0);
    private Action<int>? _body;
    private volatile bool _disposed;
    private Exception? _error;
    private int _generation;
    private int _pending;

    public int Threads { get; }

    public WorkerTeam(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Threads = threads;
        _threads = new Thread[threads - 1];
        _wake = new ManualResetEventSlim[threads - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            _wake[i] = new ManualResetEventSlim(false, spinCount: 0);
            int part = i + 1;
            _threads[i] = new Thread(() => Loop(part)) { IsBackground = true, Name = $"lowbit-worker-{part}" };
            _threads[i].Start();
        }
    }

    /// <summary>Runs body(0..Threads-1) concurrently and returns when all parts are done.</summary>
    public void Run(Action<int> body)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_threads.Length == 0) { body(0); return; }
        _body = body;
        _error = null;
        _allDone.Reset();
        Volatile.Write(ref _pending, _threads.Length);
        Interlocked.Increment(ref _generation); // publishes _body and _pending (full fence)
        foreach (var w in _wake) w.Set();
        Exception? own = null;
        try { body(0); } catch (Exception e) { own = e; }
        if (!SpinUntilChanged(ref _pending, _threads.Length, untilZero: true))
            // A Set left over from the previous call's last worker can end Wait early: re-check after each reset.
            while (Volatile.Read(ref _pending) != 0)
            {
                _allDone.Wait();
                _allDone.Reset();
                Interlocked.MemoryBarrier();
            }
        _body = null;
        if (own != null) throw own;
        if (_error != null) throw new AggregateException(_error);
    }

    /// <summary>
    /// Spins (pause, no yield) until <paramref name="value"/> differs from <paramref name="seen"/> (or, with
    /// <paramref name="untilZero"/>, is zero) or <see cref="SpinTime"/> has passed; true when it happened.
    /// </summary>
    private static bool SpinUntilChanged(ref int value, int seen, bool untilZero)
    {
        long start = 0;
        while (true)
        {
            for (int i = 0; i < 64; i++)
            {
                int v = Volatile.Read(ref value);
                if (untilZero ? v == 0 : v != seen) return true;
                Thread.SpinWait(4);
            }
            long now = Stopwatch.GetTimestamp();
            if (start == 0) start = now;
            else if (now - start > SpinTime) return false;
        }
    }

    private void Loop(int part)
    {
        var wake = _wake[part - 1];
        int seen = 0;
        while (true)
        {
            if (!SpinUntilChanged(ref _generation, seen, untilZero: false))
            {
                wake.Reset();
                Interlocked.MemoryBarrier(); // the reset is visible before the generation is read again
                if (Volatile.Read(ref _generation) == seen) wake.Wait();
            }
            seen = Volatile.Read(ref _generation);
            if (_disposed) return;
            try { _body!(part); } catch (Exception e) { _error = e; }
            if (Interlocked.Decrement(ref _pending) == 0) _allDone.Set();
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Interlocked.Increment(ref _generation);
        foreach (var w in _wake) w.Set();
        foreach (var t in _threads) t.Join();
        foreach (var e in _wake) e.Dispose();
        _allDone.Dispose();
    }
}
