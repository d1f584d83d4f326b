using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Workbench.Engine.Tensors;
namespace Workbench.Engine.LowBit;

/// <summary>
/// One token's int8 activations prepared for one packed format: q in natural order (zero padded), a, sum(q),
/// plus whatever the format's kernels read (I2S: q reordered to the load order of the path; TL1/TL2: tables).
/// </summary>
public abstract class ActivationBuffer
{
    private readonly AlignedBuffer<sbyte> _q;
    private readonly float[] _tmp;

    public int Cols { get; }
    public int PaddedCols { get; }
    /// <summary>a = 127 / max |x|.</summary>
    public float Scale { get; private set; } = 1f;
    public int SumQ { get; private set; }
    /// <summary>The path the buffer was last prepared for; kernels require it to match.</summary>
    public IsaPath Path { get; private set; }
    public bool IsPrepared { get; private set; }

    protected ActivationBuffer(int cols, int paddedCols)
    {
        Cols = cols;
        PaddedCols = paddedCols;
        _q = new AlignedBuffer<sbyte>(paddedCols);
        _tmp = new float[cols];
    }

    /// <summary>Quantized activations, natural order, zero padded to PaddedCols.</summary>
    public ReadOnlySpan<sbyte> Q => _q.Span;
    internal ref sbyte QRef => ref _q.Ref;

    /// <summary>Quantizes x (BitNet absmax int8) and builds the format's tables for the given path.</summary>
    public void Quantize(ReadOnlySpan<float> x, IsaPath path)
    {
        if (x.Length != Cols) throw new ArgumentException($"x has {x.Length} elements; the matrix has cols = {Cols}.", nameof(x));
        Isa.Require(path);
        Scale = AbsMaxInt8.Quantize(x, _q.Span, _tmp);
        Finish(path);
    }

    /// <summary>Loads already-quantized activations (any int8, including -128) with scale a; for tests and probes.</summary>
    public void Load(ReadOnlySpan<sbyte> q, float a, IsaPath path)
    {
        if (q.Length != Cols) throw new ArgumentException($"q has {q.Length} elements; the matrix has cols = {Cols}.", nameof(q));
        if (!(a > 0) || !float.IsFinite(a)) throw new ArgumentOutOfRangeException(nameof(a), a, "Activation scale must be positive and finite.");
        Isa.Require(path);
        q.CopyTo(_q.Span);
        Scale = a;
        Finish(path);
    }

    private void Finish(IsaPath path)
    {
        SumQ = AbsMaxInt8.Sum(_q.Span[..Cols]);
        Path = path;
        Build(path);
        IsPrepared = true;
    }

    protected abstract void Build(IsaPath path);
}

/// <summary>
/// A weight matrix [rows = out, cols = in] in a packed integer format. The kernels compute the exact int32 sums
/// acc[r] = sum_c w[r, c] q[c]; the float output is y[r] = acc[r] * RowScale(r) / a.
/// </summary>
public abstract class PackedMatrix
{
    public int Rows { get; }
    public int Cols { get; }
    public abstract LowBitFormat Format { get; }
    /// <summary>Bytes of packed weights (with padding) plus scales: what one GEMV streams from memory.</summary>
    public abstract long WeightBytes { get; }
    /// <summary>Whether the packed weights are a mapping advised for 2 MB pages (<see cref="HugePages"/>).</summary>
    internal virtual bool InHugePageMapping => false;
    public double BitsPerWeight => WeightBytes * 8.0 / ((long)Rows * Cols);

    /// <summary>Row ranges given to threads start at multiples of this (the format's row group).</summary>
    internal virtual int RowAlign => 64;

    /// <summary>
    /// Rows per chunk when threads split a GEMV (a multiple of <see cref="RowAlign"/>), each taking the next unclaimed
    /// chunk; 0: one equal run of rows per thread. The ternary kernels keep the runs: they read four streams from the
    /// quarters of a run, and chunks of 256 or 1024 rows made TL1 3-6% slower (6912x2560 and 4096x4096, two threads,
    /// interleaved in one process; I2S and TL2 unchanged within noise).
    /// </summary>
    internal virtual int ChunkRows => 0;

    protected PackedMatrix(int rows, int cols)
    {
        Shapes.CheckShape(rows, cols);
        Rows = rows;
        Cols = cols;
    }

    public abstract ActivationBuffer CreateActivationBuffer();

    /// <summary>The integer weights back, row-major [rows, cols] (ternary values, or Int8's int8 values).</summary>
    public abstract sbyte[] Unpack();

    /// <summary>Weight scale of a row: the tensor's s for ternary formats, the row's scale for Int8.</summary>
    public abstract float RowScale(int row);

    /// <summary>
    /// y[i] = acc[i] * (RowScale(rowStart + i) * invA), the float output of rows [rowStart, rowStart + acc.Length).
    /// Ternary formats have one scale per tensor and override this with one vectorized pass (same float operations).
    /// </summary>
    internal virtual void Dequantize(ReadOnlySpan<int> acc, int rowStart, float invA, Span<float> y)
    {
        for (int i = 0; i < acc.Length; i++) y[i] = acc[i] * (RowScale(rowStart + i) * invA);
    }

    /// <summary>
    /// Adds two vectors of int16 sums (a chunk of a 64-row group) into an int32 block of 64 laid out
    /// [a lower 16, a upper 16, b lower 16, b upper 16]: the TL kernels that keep four groups' sums between chunks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void WidenInto(Vector512<short> a, Vector512<short> b, int* s)
    {
        (Vector512.Load(s) + Avx512F.ConvertToVector512Int32(a.GetLower())).Store(s);
        (Vector512.Load(s + 16) + Avx512F.ConvertToVector512Int32(a.GetUpper())).Store(s + 16);
        (Vector512.Load(s + 32) + Avx512F.ConvertToVector512Int32(b.GetLower())).Store(s + 32);
        (Vector512.Load(s + 48) + Avx512F.ConvertToVector512Int32(b.GetUpper())).Store(s + 48);
    }

    private static readonly Vector512<int> LowRows = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    private static readonly Vector512<int> HighRows = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);

    /// <summary>
    /// Stores the int32 sums of 64-row group g, laid out as <see cref="WidenInto"/> leaves them (even rows 0..31 as
    /// two vectors, then the odd rows), in row order: the rows that fall in [rowStart, rowEnd) into acc[row - rowStart].
    /// Four two-source permutes (vpermt2d) instead of 64 scalar moves and a copy.
    /// </summary>
    internal static unsafe void StoreGroup(int g, int* s, int rowStart, int rowEnd, int* acc)
    {
        int r0 = g * 64, n = Math.Min(64, rowEnd - r0);
        if (n == 64) StoreRows(s, acc + (r0 - rowStart));
        else StorePartial(s, acc + (r0 - rowStart), n);
    }

    private static unsafe void StorePartial(int* s, int* o, int n)
    {
        int* tmp = stackalloc int[64];
        StoreRows(s, tmp);
        for (int i = 0; i < n; i++) o[i] = tmp[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreRows(int* s, int* o)
    {
        var e0 = Vector512.Load(s); var e1 = Vector512.Load(s + 16); var d0 = Vector512.Load(s + 32); var d1 = Vector512.Load(s + 48);
        Avx512F.PermuteVar16x32x2(e0, LowRows, d0).Store(o);
        Avx512F.PermuteVar16x32x2(e0, HighRows, d0).Store(o + 16);
        Avx512F.PermuteVar16x32x2(e1, LowRows, d1).Store(o + 32);
        Avx512F.PermuteVar16x32x2(e1, HighRows, d1).Store(o + 48);
    }

    /// <summary>One scale for every row: y = (float)acc * (s * invA), vectorized.</summary>
    internal static void DequantizeUniform(ReadOnlySpan<int> acc, float scale, float invA, Span<float> y)
    {
        System.Numerics.Tensors.TensorPrimitives.ConvertTruncating<int, float>(acc, y[..acc.Length]);
        System.Numerics.Tensors.TensorPrimitives.Multiply(y[..acc.Length], scale * invA, y[..acc.Length]);
    }

    /// <summary>
    /// Exact int32 sums for rows [rowStart, rowEnd) into acc[0 .. rowEnd - rowStart). rowStart must be a multiple of
    /// 64 (a row group); act must have been prepared for the same path.
    /// </summary>
    public void MatVec(ActivationBuffer act, int rowStart, int rowEnd, Span<int> acc, IsaPath path)
    {
        ArgumentNullException.ThrowIfNull(act);
        if (act.Cols != Cols || act.GetType() != CreateActivationBufferType)
            throw new ArgumentException($"Activation buffer (cols = {act.Cols}, {act.GetType().Name}) was not made by this {Format} matrix (cols = {Cols}).", nameof(act));
        if (!act.IsPrepared || act.Path != path)
            throw new ArgumentException($"Activation buffer was prepared for path {act.Path}, kernel asked for {path}.", nameof(act));
        if (rowStart < 0 || rowStart % RowAlign != 0 || rowStart > rowEnd || rowEnd > Rows)
            throw new ArgumentOutOfRangeException(nameof(rowStart), $"Row range [{rowStart}, {rowEnd}) must lie in [0, {Rows}) and start at a multiple of {RowAlign}.");
        if (acc.Length < rowEnd - rowStart)
            throw new ArgumentException($"acc has {acc.Length} elements, row range needs {rowEnd - rowStart}.", nameof(acc));
        Isa.Require(path);
        MatVecCore(act, rowStart, rowEnd, acc, path);
        GC.KeepAlive(this); // the kernels read the weights through an address (a mapping freed with this object)
    }

    /// <summary>Whole-matrix int32 sums on one thread.</summary>
    public int[] MatVec(ActivationBuffer act, IsaPath path)
    {
        var acc = new int[Rows];
        MatVec(act, 0, Rows, acc, path);
        return acc;
    }

    protected abstract Type CreateActivationBufferType { get; }

    /// <summary>
    /// Optional small-batch kernel: exact int32 sums of rows [rowStart, rowEnd) for tokens 0..n-1 into
    /// acc[t * Rows + r], reading each weight once for all n tokens. Returns false when the format has none
    /// (then each 64-row block is run per token, so the block's weights are reused from cache).
    /// </summary>
    internal virtual bool MatMulCore(ActivationBuffer[] acts, int n, int rowStart, int rowEnd, int[] acc, IsaPath path) => false;

    /// <summary>A copy with its own weight memory (for cold-cache pools in benchmarks).</summary>
    public abstract PackedMatrix CloneWeights();
    protected abstract void MatVecCore(ActivationBuffer act, int rowStart, int rowEnd, Span<int> acc, IsaPath path);

    public LowBitWorkspace CreateWorkspace(int threads = 1, int maxTokens = 1) => new(this, threads, maxTokens, null);

    /// <summary>A workspace that borrows a team (many layers, one set of threads); the team is not disposed with it.</summary>
    internal LowBitWorkspace CreateWorkspace(WorkerTeam team, int maxTokens = 1) => new(this, team.Threads, maxTokens, team);

    /// <summary>y[rows] = W x with x quantized per token inside the call. No allocation.</summary>
    public void Gemv(ReadOnlySpan<float> x, Span<float> y, LowBitWorkspace ws, IsaPath? path = null) =>
        Gemm(x, 1, y, ws, path);

    /// <summary>Y[n, rows] = X[n, cols] W^T (prefill). Weights of each 64-row block are reused across the n tokens.</summary>
    public void Gemm(ReadOnlySpan<float> x, int n, Span<float> y, LowBitWorkspace ws, IsaPath? path = null)
    {
        ArgumentNullException.ThrowIfNull(ws);
        if (ws.Matrix.Format != Format || ws.Matrix.Rows != Rows || ws.Matrix.Cols != Cols || ws.Matrix.GetType() != GetType())
            throw new ArgumentException($"Workspace was made for a {ws.Matrix.Format} {ws.Matrix.Rows} x {ws.Matrix.Cols} matrix, not this {Format} {Rows} x {Cols} one.", nameof(ws));
        if (n < 1 || n > ws.MaxTokens) throw new ArgumentOutOfRangeException(nameof(n), n, $"n must be in 1..{ws.MaxTokens} (the workspace's maxTokens).");
        if (x.Length != (long)n * Cols) throw new ArgumentException($"x has {x.Length} elements, n x cols = {n} x {Cols}.", nameof(x));
        if (y.Length != (long)n * Rows) throw new ArgumentException($"y has {y.Length} elements, n x rows = {n} x {Rows}.", nameof(y));
        var p = path ?? Isa.Best;
        Isa.Require(p);
        for (int t = 0; t < n; t++) ws.Activations[t].Quantize(x.Slice(t * Cols, Cols), p);
        unsafe
        {
            // The workers write straight into y: Run returns only when every part is done, so y stays pinned throughout.
            fixed (float* py = y) ws.Run(this, n, p, py);
        }
    }
}

/// <summary>
/// What the ternary formats (I2S, TL1, TL2) share: one fp32 scale for the whole tensor (absmean), and the packed bytes
/// in one 64-byte-aligned buffer.
/// </summary>
public abstract class TernaryMatrix : PackedMatrix
{
    private protected readonly AlignedBuffer<byte> _data;
    public float Scale { get; }
    public ReadOnlySpan<byte> Data => _data.Span;
    public override long WeightBytes => _data.Length + sizeof(float);
    internal override bool InHugePageMapping => _data.IsMapped;

    private protected TernaryMatrix(int rows, int cols, float scale, int bytes) : base(rows, cols)
    {
        Scale = scale;
        _data = new AlignedBuffer<byte>(bytes);
    }

    /// <summary>A copy with its own weight memory.</summary>
    private protected TernaryMatrix(TernaryMatrix other) : base(other.Rows, other.Cols)
    {
        Scale = other.Scale;
        _data = other._data.Clone();
        RowScales = other.RowScales;
    }

    /// <summary>
    /// One scale per row instead of the tensor's (a column block of a GGUF TQ1_0 / TQ2_0 tensor, whose fp16 scales are per
    /// 256 values): set once, right after packing, by <see cref="TernaryLinear"/>; null = <see cref="Scale"/> for every row.
    /// </summary>
    internal float[]? RowScales { get; set; }

    public override float RowScale(int row) => RowScales is { } s ? s[row] : Scale;
    internal override void Dequantize(ReadOnlySpan<int> acc, int rowStart, float invA, Span<float> y)
    {
        if (RowScales is null) DequantizeUniform(acc, Scale, invA, y);
        else base.Dequantize(acc, rowStart, invA, y);
    }

    /// <summary>A packer's input check: rows x cols values, each -1, 0 or 1.</summary>
    private protected static void CheckTernary(ReadOnlySpan<sbyte> ternary, int rows, int cols)
    {
        Shapes.CheckMatrix(ternary.Length, rows, cols, nameof(ternary));
        AbsMeanTernary.CheckTernary(ternary, nameof(ternary));
    }
}

/// <summary>
/// Everything a GEMV/GEMM needs besides weights, allocated once: activation buffers, int32 sums, output binding
/// and the worker team. Not thread-safe; one workspace per concurrent caller.
/// </summary>
public sealed class LowBitWorkspace : IDisposable
{
    private readonly WorkerTeam _team;
    private readonly bool _ownsTeam;
    private readonly int[] _acc;
    private readonly Action<int, int> _part;
    private readonly PartActivations[] _partActs;
    private long _call;
    private int _n;
    private IsaPath _path;
    private PackedMatrix _current;
    private unsafe float* _y; // the caller's pinned output, valid only during Run

    public PackedMatrix Matrix { get; }
    public int Threads => _team.Threads;
    public int MaxTokens { get; }
    public ActivationBuffer[] Activations { get; }

    internal LowBitWorkspace(PackedMatrix m, int threads, int maxTokens, WorkerTeam? shared)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 1);
        Matrix = m;
        MaxTokens = maxTokens;
        Activations = Enumerable.Range(0, maxTokens).Select(_ => m.CreateActivationBuffer()).ToArray();
        _acc = new int[(long)m.Rows * maxTokens > int.MaxValue ? throw new ArgumentOutOfRangeException(nameof(maxTokens)) : m.Rows * maxTokens];
        _current = m;
        _ownsTeam = shared == null;
        _team = shared ?? new WorkerTeam(threads);
        _part = RunPart;
        _partActs = Enumerable.Range(1, Math.Max(0, threads - 1)).Select(_ => new PartActivations(maxTokens)).ToArray();
        // Equal, row-group-aligned halves unless the format asks for chunks (PackedMatrix.ChunkRows): handed out one at a
        // time, those let a slowed core do fewer (WorkerTeam.RunChunks). A later matrix of the same shape (a pool copy)
        // shares the split.
        int perThread = ((m.Rows + m.RowAlign - 1) / m.RowAlign + threads - 1) / threads * m.RowAlign;
        _chunkRows = m.ChunkRows > 0 ? Math.Min(m.ChunkRows, perThread) : perThread;
        _chunks = (m.Rows + _chunkRows - 1) / _chunkRows;
    }

    private readonly int _chunkRows, _chunks;

    internal unsafe void Run(PackedMatrix current, int n, IsaPath path, float* y)
    {
        _current = current;
        _n = n;
        _path = path;
        _y = y;
        _call++;
        try { _team.RunChunks(_chunks, _part); }
        finally { _y = null; }
    }

    /// <summary>
    /// A worker's own copy of the prepared activations. The caller quantizes x into <see cref="Activations"/>; every
    /// other part copies the int8 values (1 byte a column) and builds its own tables from them on its own core, instead
    /// of reading the caller's: those are written on one core and read on the other in every call, so each call's
    /// rebuild first had to take every table line back from the other core's cache. Measured on the 2-core Zen 4 VM
    /// (2560x6912, 2 threads, in process): the caller's quantize-and-tables step cost TL1 7 -> 98 us (221 KB of word
    /// tables), TL2 5 -> 16, I2S at 4096x11008 4 -> 27 when the worker read them. Building them twice costs each part
    /// the same few microseconds, in parallel. A token's buffer is made on its first use, so decode (one token) adds
    /// one buffer per worker, not <see cref="MaxTokens"/>.
    /// </summary>
    private sealed class PartActivations(int maxTokens)
    {
        public readonly ActivationBuffer[] Acts = new ActivationBuffer[maxTokens];
        public long Call = -1;
    }

    private ActivationBuffer[] PartBuffers(int part)
    {
        if (part == 0) return Activations;
        var own = _partActs[part - 1];
        if (own.Call != _call)
        {
            for (int t = 0; t < _n; t++)
                (own.Acts[t] ??= Matrix.CreateActivationBuffer()).Load(Activations[t].Q[..Matrix.Cols], Activations[t].Scale, _path);
            own.Call = _call;
        }
        return own.Acts;
    }

    private unsafe void RunPart(int part, int chunk)
    {
        var m = _current;
        int start = chunk * _chunkRows, end = Math.Min(m.Rows, start + _chunkRows);
        if (start >= end) return;
        int rows = m.Rows;
        var acts = PartBuffers(part);
        if (_n > 1 && m.MatMulCore(acts, _n, start, end, _acc, _path))
        {
            // The format's GEMM kernel filled _acc[t * rows + r] for every token, each weight load feeding all n tokens.
            for (int t = 0; t < _n; t++)
                m.Dequantize(_acc.AsSpan(t * rows + start, end - start), start, 1f / acts[t].Scale, new Span<float>(_y + (long)t * rows + start, end - start));
            return;
        }
        int block = _n == 1 ? end - start : 64;
        for (int r0 = start; r0 < end; r0 += block)
        {
            int r1 = Math.Min(end, r0 + block);
            for (int t = 0; t < _n; t++)
            {
                var act = acts[t];
                var acc = _acc.AsSpan(t * rows + r0, r1 - r0);
                m.MatVec(act, r0, r1, acc, _path);
                m.Dequantize(acc, r0, 1f / act.Scale, new Span<float>(_y + (long)t * rows + r0, r1 - r0));
            }
        }
    }

    public void Dispose()
    {
        if (_ownsTeam) _team.Dispose();
    }
}
