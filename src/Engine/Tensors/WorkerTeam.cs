namespace Workbench.Engine.Tensors;

/// <summary>
/// A fixed team of threads for splitting one GEMV across cores without allocating per call:
/// the caller runs part 0 and <c>threads - 1</c> parked workers run the rest. Parallel.For would allocate
/// and wake pool threads on every token; a decode step is only ~100 us, so that overhead matters.
/// </summary>
/// <remarks>
/// The waits are ManualResetEventSlim's (spin 2000, yielding the core between spins after the first few, then
/// block), and measurement kept them: on the shared 2-core VM at load 25, replacing them with a pure pause-spin
/// (no yield, 200 us, then block; what OpenMP's GOMP_SPINCOUNT does in the reference kernels) made 2-thread
/// 4096x4096 GEMVs 2-4x slower (i2s 244 -> 636 us, tl2 335 -> 1497 us median wall time, interleaved in one process):
/// with more runnable threads than cores, a thread spinning for its partner can hold the very core the partner is
/// queued on until the time slice ends, while a yield lets it run. The same oversubscription is why the reference's
/// 2-thread cells swing by 5-20x under load.
/// </remarks>
internal sealed class WorkerTeam : IDisposable
{
    private readonly Thread[] _threads;
    private readonly ManualResetEventSlim[] _go;
    private readonly ManualResetEventSlim[] _done;
    private Action<int>? _body;
    private volatile bool _disposed;
    private Exception? _error;

    public int Threads { get; }

    public WorkerTeam(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Threads = threads;
        _threads = new Thread[threads - 1];
        _go = new ManualResetEventSlim[threads - 1];
        _done = new ManualResetEventSlim[threads - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            _go[i] = new ManualResetEventSlim(false, spinCount: 2000);
            _done[i] = new ManualResetEventSlim(false, spinCount: 2000);
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
        for (int i = 0; i < _threads.Length; i++) { _done[i].Reset(); _go[i].Set(); }
        Exception? own = null;
        try { body(0); } catch (Exception e) { own = e; }
        for (int i = 0; i < _threads.Length; i++) _done[i].Wait();
        _body = null;
        if (own != null) throw own;
        if (_error != null) throw new AggregateException(_error);
    }

    private void Loop(int part)
    {
        var go = _go[part - 1];
        var done = _done[part - 1];
        while (true)
        {
            go.Wait();
            go.Reset();
            if (_disposed) { done.Set(); return; }
            try { _body!(part); } catch (Exception e) { _error = e; }
            done.Set();
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var g in _go) g.Set();
        foreach (var t in _threads) t.Join();
        foreach (var e in _go) e.Dispose();
        foreach (var e in _done) e.Dispose();
    }
}
