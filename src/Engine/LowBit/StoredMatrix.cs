using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.LowBit;

/// <summary>The stored weight types the engine computes from directly (a checkpoint's bytes, no fp32 copy).</summary>
public enum StoredType { F16, BF16, Q8_0, Q4_0 }

/// <summary>
/// A weight matrix [rows = out, cols = in] kept in the type its file stores, row-major as ggml and safetensors store
/// it: bf16 / f16 (2 bytes a weight), or ggml's 32-weight blocks Q8_0 (f16 scale d + 32 int8, q * d) and Q4_0 (f16
/// scale d + 16 bytes of nibbles: weight j is (low nibble of byte j) - 8, weight 16 + j is (high nibble) - 8, times d).
/// The bytes are a memory-mapped file's (see <see cref="Map"/>) or the matrix's own; an optional row map makes a view
/// (rows reordered or a slice of a fused tensor) without copying.
///
/// <para>The kernels compute from the stored type with fp32 accumulation, the weights dequantized on the fly (exactly
/// ggml's values: f16 and bf16 widen exactly, q * d is formed as the product below). Q8_0 / Q4_0 do not quantize the
/// activations (llama.cpp does, to Q8_0 blocks): the output is then the fp32 product with ggml's dequantized weights
/// within fp32 rounding, not within an 8-bit activation error. One dot product is defined lane by lane, the same on
/// every path: 16 fp32 lanes; element i of a row goes to lane i mod 16. For f16 / bf16, lane += w x (fused). For a
/// Q block b (32 weights), p = q[0..15] x[0..15] (rounded products), p = fma(q[16..31], x[16..31], p), then
/// lane = fma(d_b, p, lane). The 16 lanes are summed as a fixed tree (8 + 8, 4 + 4, 2 + 2, 1 + 1). V512 holds the 16
/// lanes in one register, V256 in two, V128 in four, the scalar twin in an array: every path gives the same bits (Q8_0 /
/// Q4_0 on the V512 path take the 256-bit kernel, measured faster on Zen 4). The GEMM (prefill) widens rows once and
/// runs the same lane layout from fp32 rows, so a token's output equals its GEMV's bit for bit.</para>
/// </summary>
public sealed unsafe class StoredMatrix
{
    private const int Lanes = 16, Block = 32;
    private readonly byte* _data;
    private readonly long _length;
    private readonly object? _owner; // keeps the bytes alive: a mapped file's lease or a pinned array
    private readonly int[]? _rowMap;

    public int Rows { get; }
    public int Cols { get; }
    public StoredType Type { get; }
    /// <summary>What keeps the bytes alive: a memory-mapped tensor (Formats.MappedTensor) or the matrix's own buffer.</summary>
    internal object? Owner => _owner;
    /// <summary>Bytes of one stored row.</summary>
    public long RowBytes { get; }
    /// <summary>Bytes the kernels stream for one product (the rows this matrix or view reads).</summary>
    public long WeightBytes => RowBytes * Rows;

    private StoredMatrix(StoredType type, int rows, int cols, byte* data, long length, object? owner, int[]? rowMap)
    {
        Shapes.CheckShape(rows, cols);
        Type = type;
        Rows = rows;
        Cols = cols;
        RowBytes = BytesFor(type, 1, cols);
        _data = data;
        _length = length;
        _owner = owner;
        _rowMap = rowMap;
    }

    /// <summary>Bytes of a rows x cols matrix in <paramref name="type"/>; Q8_0 / Q4_0 need cols a multiple of 32.</summary>
    public static long BytesFor(StoredType type, int rows, int cols)
    {
        if (type is StoredType.Q8_0 or StoredType.Q4_0 && cols % Block != 0)
            throw new ArgumentException($"{type} stores rows in blocks of {Block} weights; cols = {cols} is not a multiple of {Block}.", nameof(cols));
        return (long)rows * type switch
        {
            StoredType.F16 or StoredType.BF16 => 2L * cols,
            StoredType.Q8_0 => cols / Block * 34L,
            StoredType.Q4_0 => cols / Block * 18L,
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a stored type"),
        };
    }

    /// <summary>
    /// A matrix over memory someone else owns (a memory-mapped tensor): <paramref name="length"/> bytes at
    /// <paramref name="data"/>, kept valid while <paramref name="owner"/> is reachable. <paramref name="rowMap"/>[r] is the
    /// stored row that row r reads (null: row r), every entry within the stored rows.
    /// </summary>
    public static StoredMatrix Map(StoredType type, int rows, int cols, byte* data, long length, object owner, int[]? rowMap = null)
    {
        ArgumentNullException.ThrowIfNull(owner);
        long rowBytes = BytesFor(type, 1, cols);
        long storedRows = length / rowBytes;
        if (data == null || length % rowBytes != 0 || (rowMap is null && storedRows != rows))
            throw new ArgumentException($"{length} bytes are not {rows} rows of {rowBytes} bytes ({type}, cols = {cols}).", nameof(length));
        if (rowMap is not null)
        {
            if (rowMap.Length != rows) throw new ArgumentException($"row map has {rowMap.Length} entries, not rows = {rows}.", nameof(rowMap));
            foreach (var r in rowMap)
                if ((uint)r >= (ulong)storedRows) throw new ArgumentOutOfRangeException(nameof(rowMap), r, $"row map names row {r}; {storedRows} rows are stored.");
        }
        return new StoredMatrix(type, rows, cols, data, length, owner, rowMap);
    }

    /// <summary>A matrix owning a copy of <paramref name="bytes"/> (rows x cols in the stored layout).</summary>
    public static StoredMatrix FromBytes(StoredType type, int rows, int cols, ReadOnlySpan<byte> bytes)
    {
        long n = BytesFor(type, rows, cols);
        if (bytes.Length != n) throw new ArgumentException($"{bytes.Length} bytes, a {rows} x {cols} {type} matrix has {n}.", nameof(bytes));
        var buffer = new AlignedBuffer<byte>(checked((int)n));
        bytes.CopyTo(buffer.Span);
        return new StoredMatrix(type, rows, cols, (byte*)Unsafe.AsPointer(ref buffer.Ref), n, buffer, null);
    }

    /// <summary>A view of the same bytes whose row r is this matrix's row <paramref name="rowMap"/>[r].</summary>
    public StoredMatrix WithRows(int[] rowMap)
    {
        ArgumentNullException.ThrowIfNull(rowMap);
        var map = new int[rowMap.Length];
        for (int i = 0; i < map.Length; i++)
        {
            if ((uint)rowMap[i] >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(rowMap), rowMap[i], $"row {rowMap[i]} is outside 0..{Rows - 1}.");
            map[i] = _rowMap?[rowMap[i]] ?? rowMap[i];
        }
        return new StoredMatrix(Type, map.Length, Cols, _data, _length, _owner, map);
    }

    /// <summary>A copy of the stored bytes of these rows (a new matrix with its own memory; benchmarks' cold pools).</summary>
    public StoredMatrix CloneWeights()
    {
        var bytes = new byte[WeightBytes];
        for (int r = 0; r < Rows; r++) RowSpan(r).CopyTo(bytes.AsSpan((int)(r * RowBytes)));
        return FromBytes(Type, Rows, Cols, bytes);
    }

    private byte* RowPtr(int r) => _data + (_rowMap?[r] ?? r) * RowBytes;
    private ReadOnlySpan<byte> RowSpan(int r) => new(RowPtr(r), checked((int)RowBytes));

    /// <summary>Seeded synthetic weights (benchmarks, tests): uniform in [-1, 1) stored in the type (Q types quantized as ggml does).</summary>
    public static StoredMatrix Random(StoredType type, int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        var bytes = new byte[BytesFor(type, rows, cols)];
        var w = new float[cols];
        long rowBytes = BytesFor(type, 1, cols);
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++) w[c] = (float)(rng.NextDouble() * 2 - 1);
            Quantize(type, w, bytes.AsSpan((int)(r * rowBytes), (int)rowBytes));
        }
        return FromBytes(type, rows, cols, bytes);
    }

    /// <summary>
    /// One row of fp32 values in the stored layout: f16 / bf16 rounded to nearest even, Q8_0 / Q4_0 as ggml's reference
    /// quantizers do (d = absmax / 127, q = round(x / d); Q4_0: d = max / -8 of the value of largest magnitude,
    /// q = min(15, (int)(x / d + 8.5))).
    /// </summary>
    public static void Quantize(StoredType type, ReadOnlySpan<float> x, Span<byte> dst)
    {
        switch (type)
        {
            case StoredType.F16:
                for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], BitConverter.HalfToUInt16Bits((Half)x[i]));
                break;
            case StoredType.BF16:
                for (int i = 0; i < x.Length; i++)
                {
                    uint u = BitConverter.SingleToUInt32Bits(x[i]);
                    u += 0x7FFF + ((u >> 16) & 1); // round to nearest even (finite inputs)
                    BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], (ushort)(u >> 16));
                }
                break;
            case StoredType.Q8_0:
                for (int b = 0; b < x.Length / Block; b++)
                {
                    var v = x.Slice(b * Block, Block);
                    float amax = 0;
                    foreach (var f in v) amax = Math.Max(amax, Math.Abs(f));
                    float d = amax / 127, id = d != 0 ? 1 / d : 0;
                    var blk = dst.Slice(b * 34, 34);
                    BinaryPrimitives.WriteUInt16LittleEndian(blk, BitConverter.HalfToUInt16Bits((Half)d));
                    for (int j = 0; j < Block; j++) blk[2 + j] = (byte)(sbyte)MathF.Round(v[j] * id, MidpointRounding.AwayFromZero);
                }
                break;
            case StoredType.Q4_0:
                for (int b = 0; b < x.Length / Block; b++)
                {
                    var v = x.Slice(b * Block, Block);
                    float amax = 0, max = 0;
                    foreach (var f in v) if (Math.Abs(f) > amax) { amax = Math.Abs(f); max = f; }
                    float d = max / -8, id = d != 0 ? 1 / d : 0;
                    var blk = dst.Slice(b * 18, 18);
                    BinaryPrimitives.WriteUInt16LittleEndian(blk, BitConverter.HalfToUInt16Bits((Half)d));
                    for (int j = 0; j < 16; j++)
                    {
                        int lo = Math.Min(15, (int)(v[j] * id + 8.5f)), hi = Math.Min(15, (int)(v[16 + j] * id + 8.5f));
                        blk[2 + j] = (byte)(lo | (hi << 4));
                    }
                }
                break;
            default: throw new ArgumentOutOfRangeException(nameof(type), type, "not a stored type");
        }
    }

    /// <summary>Row r's weights as fp32 (exactly ggml's dequantized values).</summary>
    public void DecodeRow(int r, Span<float> dst)
    {
        if ((uint)r >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(r), r, $"row must be in 0..{Rows - 1}");
        if (dst.Length < Cols) throw new ArgumentException($"dst has {dst.Length} elements, cols = {Cols}.", nameof(dst));
        var s = RowSpan(r);
        switch (Type)
        {
            case StoredType.F16:
                for (int i = 0; i < Cols; i++) dst[i] = F16(BinaryPrimitives.ReadUInt16LittleEndian(s[(2 * i)..]));
                break;
            case StoredType.BF16:
                for (int i = 0; i < Cols; i++) dst[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(s[(2 * i)..]) << 16);
                break;
            case StoredType.Q8_0:
                for (int b = 0; b < Cols / Block; b++)
                {
                    float d = F16(BinaryPrimitives.ReadUInt16LittleEndian(s[(b * 34)..]));
                    for (int j = 0; j < Block; j++) dst[b * Block + j] = (sbyte)s[b * 34 + 2 + j] * d;
                }
                break;
            case StoredType.Q4_0:
                for (int b = 0; b < Cols / Block; b++)
                {
                    float d = F16(BinaryPrimitives.ReadUInt16LittleEndian(s[(b * 18)..]));
                    for (int j = 0; j < 16; j++)
                    {
                        byte q = s[b * 18 + 2 + j];
                        dst[b * Block + j] = ((q & 0xF) - 8) * d;
                        dst[b * Block + 16 + j] = ((q >> 4) - 8) * d;
                    }
                }
                break;
        }
    }

    /// <summary>The whole matrix as fp32 [rows, cols] (where a user or an analysis asks for fp32).</summary>
    public float[] ToFloat()
    {
        var w = new float[(long)Rows * Cols];
        for (int r = 0; r < Rows; r++) DecodeRow(r, w.AsSpan((int)((long)r * Cols), Cols));
        return w;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float F16(ushort h) => StoredKernels.F16ToF32(h);

    // ---- GEMV / GEMM ----

    /// <summary>y[rows] = W x (decode). Rows are split across <paramref name="threads"/> (0: all cores).</summary>
    public void Gemv(ReadOnlySpan<float> x, Span<float> y, int threads = 1, IsaPath? path = null) => Gemm(x, 1, y, threads, path);

    /// <summary>
    /// Y[n, rows] = X[n, cols] W^T (prefill). For n &gt; 1 each row is dequantized once into a thread's fp32 scratch and
    /// its dot with every token is taken from there, with the same operations (so each token's output equals its GEMV's).
    /// </summary>
    public void Gemm(ReadOnlySpan<float> x, int n, Span<float> y, int threads = 1, IsaPath? path = null)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "n must be at least 1.");
        if (x.Length != (long)n * Cols) throw new ArgumentException($"x has {x.Length} elements, n x cols = {n} x {Cols}.", nameof(x));
        if (y.Length != (long)n * Rows) throw new ArgumentException($"y has {y.Length} elements, n x rows = {n} x {Rows}.", nameof(y));
        var p = Isa.Resolve(path);
        if (threads <= 0) threads = Environment.ProcessorCount;
        if ((long)Rows * Cols * n < 1 << 16) threads = 1;
        int chunks = Math.Min(threads, (Rows + 15) / 16);
        fixed (float* px = x, py = y)
        {
            if (chunks <= 1) { RowRange(px, n, py, 0, Rows, p); GC.KeepAlive(_owner); return; }
            nint ax = (nint)px, ay = (nint)py;
            Parallelism.For(chunks, chunks, t =>
            {
                int r0 = (int)((long)Rows * t / chunks / 16 * 16), r1 = t == chunks - 1 ? Rows : (int)((long)Rows * (t + 1) / chunks / 16 * 16);
                RowRange((float*)ax, n, (float*)ay, r0, r1, p);
            });
        }
        GC.KeepAlive(_owner); // the mapping stays while the kernels read it
    }

    [ThreadStatic] private static float[]? _rowScratch;

    /// <summary>Rows [r0, r1) of Y for all n tokens on this thread.</summary>
    internal void RowRange(float* x, int n, float* y, int r0, int r1, IsaPath p)
    {
        if (n == 1)
        {
            for (int r = r0; r < r1; r++) y[r] = Dot(RowPtr(r), x, p);
            return;
        }
        bool blocked = Type is StoredType.Q8_0 or StoredType.Q4_0;
        // Rows are widened four at a time into per-thread scratch (grown once, no allocation per call); each token's
        // x row is then read once from the outer caches for four dots (it stays in L1 between them).
        const int Group = 4;
        int stride = Cols + (blocked ? Cols / Block : 0);
        if (_rowScratch is null || _rowScratch.Length < Group * stride) _rowScratch = new float[Group * stride];
        fixed (float* pw = _rowScratch)
            for (int r = r0; r < r1; r += Group)
            {
                int g = Math.Min(Group, r1 - r);
                for (int i = 0; i < g; i++) DecodeUnscaled(RowPtr(r + i), pw + i * stride, pw + i * stride + Cols);
                for (int t = 0; t < n; t++)
                {
                    float* xt = x + (long)t * Cols, yt = y + (long)t * Rows + r;
                    for (int i = 0; i < g; i++)
                    {
                        float* wi = pw + i * stride;
                        yt[i] = blocked ? DotBlocks(wi, wi + Cols, xt, Cols, p) : DotPlain(wi, xt, Cols, p);
                    }
                }
            }
    }

    /// <summary>A row as fp32 for the GEMM: f16 / bf16 widened; Q types as q (exact small integers) and d per block.</summary>
    private void DecodeUnscaled(byte* s, float* w, float* d)
    {
        switch (Type)
        {
            case StoredType.F16:
                for (int i = 0; i < Cols; i++) w[i] = F16(((ushort*)s)[i]);
                break;
            case StoredType.BF16:
                for (int i = 0; i < Cols; i++) w[i] = BitConverter.Int32BitsToSingle(((ushort*)s)[i] << 16);
                break;
            case StoredType.Q8_0:
                for (int b = 0; b < Cols / Block; b++, s += 34)
                {
                    d[b] = F16(*(ushort*)s);
                    for (int j = 0; j < Block; j++) w[b * Block + j] = (sbyte)s[2 + j];
                }
                break;
            case StoredType.Q4_0:
                for (int b = 0; b < Cols / Block; b++, s += 18)
                {
                    d[b] = F16(*(ushort*)s);
                    for (int j = 0; j < 16; j++)
                    {
                        w[b * Block + j] = (s[2 + j] & 0xF) - 8;
                        w[b * Block + 16 + j] = (s[2 + j] >> 4) - 8;
                    }
                }
                break;
        }
    }

    /// <summary>One row's dot product with x from the stored bytes, on path p (every path gives the same bits).</summary>
    internal float Dot(byte* row, float* x, IsaPath p) => Type switch
    {
        StoredType.F16 => p switch { IsaPath.V512 => StoredKernels.F16V512(row, x, Cols), IsaPath.V256 => StoredKernels.F16V256(row, x, Cols), IsaPath.V128 => StoredKernels.F16V128(row, x, Cols), _ => StoredKernels.HalfScalar(row, x, Cols, bf16: false) },
        StoredType.BF16 => p switch { IsaPath.V512 => StoredKernels.Bf16V512(row, x, Cols), IsaPath.V256 => StoredKernels.Bf16V256(row, x, Cols), IsaPath.V128 => StoredKernels.Bf16V128(row, x, Cols), _ => StoredKernels.HalfScalar(row, x, Cols, bf16: true) },
        // Q8_0 / Q4_0 on the V512 path run the 256-bit kernels: on Zen 4 (512-bit ops split in two) the 512-bit
        // widening chain measured slower (4096 x 4096 Q8_0, one thread: 1.23 ms against 1.75-1.83 ms); same bits either way.
        StoredType.Q8_0 => p switch { IsaPath.V512 or IsaPath.V256 => StoredKernels.Q8V256(row, x, Cols), IsaPath.V128 => StoredKernels.Q8V128(row, x, Cols), _ => StoredKernels.QScalar(row, x, Cols, q4: false) },
        _ => p switch { IsaPath.V512 or IsaPath.V256 => StoredKernels.Q4V256(row, x, Cols), IsaPath.V128 => StoredKernels.Q4V128(row, x, Cols), _ => StoredKernels.QScalar(row, x, Cols, q4: true) },
    };

    private static float DotPlain(float* w, float* x, int cols, IsaPath p) => p switch
    {
        IsaPath.V512 => StoredKernels.PlainV512(w, x, cols),
        IsaPath.V256 => StoredKernels.PlainV256(w, x, cols),
        IsaPath.V128 => StoredKernels.PlainV128(w, x, cols),
        _ => StoredKernels.PlainScalar(w, x, cols),
    };

    private static float DotBlocks(float* w, float* d, float* x, int cols, IsaPath p) => p switch
    {
        IsaPath.V512 => StoredKernels.BlocksV512(w, d, x, cols),
        IsaPath.V256 => StoredKernels.BlocksV256(w, d, x, cols),
        IsaPath.V128 => StoredKernels.BlocksV128(w, d, x, cols),
        _ => StoredKernels.BlocksScalar(w, d, x, cols),
    };

    /// <summary>Row r's dot with x on one path (tests: every path against the scalar twin).</summary>
    public float RowDot(int r, ReadOnlySpan<float> x, IsaPath path)
    {
        if ((uint)r >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(r));
        if (x.Length != Cols) throw new ArgumentException($"x has {x.Length} elements, cols = {Cols}.", nameof(x));
        Isa.Require(path);
        fixed (float* px = x) return Dot(RowPtr(r), px, path);
    }

    public override string ToString() => $"{Type} {Rows} x {Cols}";
}
