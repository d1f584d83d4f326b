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
    private readonly Action<int> _chunkLoop;
    private Action<int>? _chunkBody;
    private Action<int, int>? _partChunkBody;
    private int _chunks, _parts, _nextChunk;
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
        _chunkLoop = ChunkLoop;
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

    /// <summary>
    /// Runs body(c) for every c in [0, chunks) and returns when all are done. Part p takes chunk p first, then each
    /// part takes the next unclaimed chunk (an atomic counter), as ggml's threads take chunks of rows: a part whose
    /// core is slowed does fewer chunks instead of holding the whole call back. Measured on the 2-core VM (Xeon, fp32
    /// 6912x2560, two threads, time of each part): with equal halves the part on CPU 1 (which also takes all of the
    /// disk's interrupts) took 3.5-3.7 ms against 2.7-2.8 ms on CPU 0, and the caller waited ~0.8 ms for it; the same
    /// with chunks dealt alternately (so not memory locality); swapped by pinning, the part on CPU 1 was still the slow
    /// one. Handed out, both parts end within 30 us and the call took 3.16 against 3.65 ms. The slowdown comes and
    /// goes with the machine's other tenants; when it is absent chunks cost nothing measurable for fp32 and int8.
    /// chunks = Threads gives each part one chunk: a static split. Only the first <paramref name="parts"/> parts
    /// (default all) take chunks.
    /// </summary>
    public void RunChunks(int chunks, Action<int> body, int parts = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(chunks);
        parts = parts <= 0 ? Threads : Math.Min(parts, Threads);
        if (chunks <= 1 || parts == 1)
        {
            for (int c = 0; c < chunks; c++) body(c);
            return;
        }
        _chunkBody = body;
        try { RunChunkLoop(chunks, parts); }
        finally { _chunkBody = null; }
    }

    /// <summary>
    /// <see cref="RunChunks(int, Action{int}, int)"/> with the part that runs each chunk: body(part, chunk), part in
    /// [0, Threads), 0 being the caller. A part is always the same thread, so per-part state (a thread's own copy of
    /// what every chunk reads) needs no synchronisation.
    /// </summary>
    public void RunChunks(int chunks, Action<int, int> body)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(chunks);
        if (chunks <= 1 || Threads == 1)
        {
            for (int c = 0; c < chunks; c++) body(0, c);
            return;
        }
        _partChunkBody = body;
        try { RunChunkLoop(chunks, Threads); }
        finally { _partChunkBody = null; }
    }

    private void RunChunkLoop(int chunks, int parts)
    {
        _chunks = chunks;
        _parts = parts;
        _nextChunk = parts;
        Run(_chunkLoop);
    }

    private void ChunkLoop(int part)
    {
        if (part >= _parts) return;
        var withPart = _partChunkBody;
        for (int c = part; c < _chunks; c = Interlocked.Increment(ref _nextChunk) - 1)
            if (withPart != null) withPart(part, c); else _chunkBody!(c);
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
