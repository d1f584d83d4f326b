using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.LowBit;

/// <summary>The stored weight types the engine computes from directly (a checkpoint's bytes, no fp32 copy).</summary>
/// <remarks>Q5_0, Q4_1, Q5_1 and the K types Q2_K ... Q6_K run <see cref="StoredKernelsK"/> (the types llama-quantize's
/// Q4_K_M / Q5_K_M / Q6_K / Q3_K_M mix, and the older Q4_1 / Q5_1 files).</remarks>
public enum StoredType { F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K, Q2_K, Q3_K, Q4_1, Q5_1 }

/// <summary>
/// A weight matrix [rows = out, cols = in] kept in the type its file stores, row-major as ggml and safetensors store
/// it: bf16 / f16 (2 bytes a weight), or ggml's 32-weight blocks Q8_0 (f16 scale d + 32 int8, q * d) and Q4_0 (f16
/// scale d + 16 bytes of nibbles: weight j is (low nibble of byte j) - 8, weight 16 + j is (high nibble) - 8, times d).
/// The bytes are a memory-mapped file's (see <see cref="Map"/>) or the matrix's own; an optional row map makes a view
/// (rows reordered or a slice of a fused tensor) without copying.
///
/// <para>The kernels compute from the stored type. f16 / bf16: the weights widened exactly on the fly, fp32
/// accumulation; one dot product has 32 fp32 lanes, element i in lane i mod 32, lane += w x (fused), the lanes folded
/// 32 -> 16 and summed as a fixed tree (8 + 8, 4 + 4, 2 + 2, 1 + 1). Q8_0 / Q4_0 do as llama.cpp's vec_dot_q8_0_q8_0 /
/// q4_0_q8_0: the activations are quantized to Q8_0 blocks inside the product (<see cref="StoredKernels.QuantizeQ8"/>)
/// and each block is an integer dot: for k = 0..7 the exact int32 sum s_k of w q over elements 4k..4k+3 (what
/// vpmaddubsw + vpmaddwd leave), then lane (b mod 2) 8 + k = fma(d_w d_x, s_k, lane), the 16 lanes summed by the same
/// tree. So the output carries the activations' 8-bit rounding, as llama.cpp's does, not only fp32 rounding. V512 holds
/// the lanes in two registers, V256 in four (f16) or two (Q), V128 in eight or four, the scalar twin in an array: every
/// path gives the same bits (Q8_0 / Q4_0 on the V512 path take the 256-bit kernel: no 512-bit VNNI in .NET 10 here, and
/// Zen 4 splits 512-bit integer multiplies). The GEMM (prefill) widens f16 / bf16 rows once and runs the same lane
/// layout from fp32 rows, and runs the Q dots per token from the stored row, so a token's output equals its GEMV's bit
/// for bit.</para>
///
/// <para>Q5_0 and the K types (Q2_K ... Q6_K: super-blocks of 256 weights with 6-bit or int8 sub-block scales) run
/// <see cref="StoredKernelsK"/>: each weight dequantized on the fly to exactly ggml's value, then lane i mod 16 += w x
/// (fused), the 16-lane tree; their GEMM decodes a row once to those values and runs the same 16-lane dots
/// (<see cref="StoredKernelsK.DotDecoded"/>), so a token's output equals its GEMV's bit for bit.</para>
/// </summary>
public sealed unsafe class StoredMatrix : IStoredLinear
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

    /// <summary>Weights per stored block: 1 (f16 / bf16), 32 (Q8_0, Q4_0, Q5_0, Q4_1, Q5_1), 256 (the K types); cols must be a multiple.</summary>
    public static int BlockOf(StoredType type) => type switch
    {
        StoredType.F16 or StoredType.BF16 => 1,
        StoredType.Q8_0 or StoredType.Q4_0 => Block,
        _ => StoredKernelsK.BlockValues(type),
    };

    /// <summary>Bytes of a rows x cols matrix in <paramref name="type"/>; the block types need cols a multiple of <see cref="BlockOf"/>.</summary>
    public static long BytesFor(StoredType type, int rows, int cols)
    {
        int block = BlockOf(type);
        if (cols % block != 0)
            throw new ArgumentException($"{type} stores rows in blocks of {block} weights; cols = {cols} is not a multiple of {block}.", nameof(cols));
        return (long)rows * type switch
        {
            StoredType.F16 or StoredType.BF16 => 2L * cols,
            StoredType.Q8_0 => cols / Block * 34L,
            StoredType.Q4_0 => cols / Block * 18L,
            _ => (long)cols / block * StoredKernelsK.BlockBytes(type),
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
        var buffer = new AlignedBuffer<byte>(checked((int)WeightBytes)); // straight into the copy: no transient array per copy
        for (int r = 0; r < Rows; r++) RowSpan(r).CopyTo(buffer.Span.Slice((int)(r * RowBytes)));
        return new StoredMatrix(Type, Rows, Cols, (byte*)Unsafe.AsPointer(ref buffer.Ref), WeightBytes, buffer, null);
    }

    private byte* RowPtr(int r) => _data + (_rowMap?[r] ?? r) * RowBytes;
    /// <summary>Row r's stored bytes (tests: the kernels called on one row directly).</summary>
    internal byte* RowAddress(int r) => RowPtr(r);
    private ReadOnlySpan<byte> RowSpan(int r) => new(RowPtr(r), checked((int)RowBytes));

    /// <summary>
    /// Seeded synthetic weights (benchmarks, tests): uniform in [-1, 1) stored in the type (Q types quantized as ggml
    /// does); the K types, Q4_1 and Q5_1 get uniform random codes and scales instead (see <see cref="StoredKernelsK.RandomBlocks"/>).
    /// </summary>
    public static StoredMatrix Random(StoredType type, int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        var bytes = new byte[BytesFor(type, rows, cols)];
        if (type is StoredType.Q2_K or StoredType.Q3_K or StoredType.Q4_K or StoredType.Q5_K or StoredType.Q6_K or StoredType.Q4_1 or StoredType.Q5_1)
        {
            StoredKernelsK.RandomBlocks(type, bytes, rng);
            return FromBytes(type, rows, cols, bytes);
        }
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
            case StoredType.Q5_0:
                StoredKernelsK.QuantizeQ5_0(x, dst);
                break;
            default: throw new ArgumentOutOfRangeException(nameof(type), type, "no quantizer for this stored type (ggml's K quantizers are not reproduced)");
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
            default:
                // the SIMD block decoders (the GEMM's), ggml's values on every path; GC.KeepAlive: the mapping stays while they read
                fixed (float* pd = dst) StoredKernelsK.DecodeRow(Type, RowPtr(r), pd, Cols, Isa.Resolve(null));
                GC.KeepAlive(_owner);
                break;
        }
    }

    IStoredLinear IStoredLinear.WithRows(int[] rowMap) => WithRows(rowMap);
    void IStoredLinear.Gemm(ReadOnlySpan<float> x, int n, Span<float> y, int threads) => Gemm(x, n, y, threads);

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

    /// <summary>Rows per chunk when threads split a product (each takes the next unclaimed chunk), as <see cref="MatMul.GemvChunkRows"/>.</summary>
    internal const int ChunkRows = 64;

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
        // Chunks of ChunkRows rows handed out one at a time (WorkerTeam.RunChunks), shorter multiples of 16 for a small matrix.
        int chunkRows = Math.Min(ChunkRows, ((Rows + threads - 1) / threads + 15) / 16 * 16);
        int chunks = (Rows + chunkRows - 1) / chunkRows;
        fixed (float* px = x, py = y)
        {
            var a = Prepare(px, n, p);
            if (threads <= 1 || chunks <= 1) { RowRange(a, py, 0, Rows, p); GC.KeepAlive(_owner); return; }
            nint ay = (nint)py;
            Parallelism.Chunks(chunks, threads, c => RowRange(a, (float*)ay, c * chunkRows, Math.Min(Rows, (c + 1) * chunkRows), p));
        }
        GC.KeepAlive(_owner); // the mapping stays while the kernels read it
    }

    [ThreadStatic] private static float[]? _rowScratch;
    [ThreadStatic] private static sbyte[]? _xq;
    [ThreadStatic] private static float[]? _xd;
    [ThreadStatic] private static float[]? _xs;

    /// <summary>
    /// The activations of one product: x itself; for Q8_0 / Q4_0 its Q8_0 blocks (values q, scales d); for an f16 GEMV
    /// on the V512 / V256 paths x times 2^112 (xs, null when some |x| reaches 2^16).
    /// </summary>
    internal readonly struct Activations(float* x, int n, sbyte* q, float* d, float* xs = null)
    {
        public readonly float* X = x;
        public readonly int N = n;
        public readonly sbyte* Q = q;
        public readonly float* D = d;
        public readonly float* XS = xs;
    }

    private bool QuantizesActivations => Type is StoredType.Q8_0 or StoredType.Q4_0;

    /// <summary>
    /// The n tokens of x as the kernels read them: Q8_0 / Q4_0 quantize each token to Q8_0 blocks (in this thread's
    /// pinned scratch, valid until its next call), as llama.cpp does inside its product.
    /// </summary>
    internal Activations Prepare(float* x, int n, IsaPath p)
    {
        if (Type == StoredType.F16 && n == 1 && p is IsaPath.V512 or IsaPath.V256)
        {
            if (_xs is null || _xs.Length < Cols) _xs = GC.AllocateArray<float>(Cols, pinned: true);
            var xs = (float*)Unsafe.AsPointer(ref _xs[0]);
            return new Activations(x, n, null, null, StoredKernels.ScaleForF16(x, xs, Cols) ? xs : null);
        }
        if (!QuantizesActivations) return new Activations(x, n, null, null);
        int len = checked(n * Cols);
        if (_xq is null || _xq.Length < len) { _xq = GC.AllocateArray<sbyte>(len, pinned: true); _xd = GC.AllocateArray<float>(len / Block, pinned: true); }
        var q = (sbyte*)Unsafe.AsPointer(ref _xq[0]);
        var d = (float*)Unsafe.AsPointer(ref _xd![0]);
        for (int t = 0; t < n; t++) StoredKernels.QuantizeQ8(x + (long)t * Cols, Cols, q + (long)t * Cols, d + (long)t * (Cols / Block));
        return new Activations(x, n, q, d);
    }

    /// <summary>Rows [r0, r1) of Y for all tokens of <paramref name="a"/> on this thread.</summary>
    internal void RowRange(in Activations a, float* y, int r0, int r1, IsaPath p)
    {
        int n = a.N;
        if (QuantizesActivations)
        {
            int nb = Cols / Block;
            if (n == 1 && p == IsaPath.V512 && Cols >= StoredKernels.QTileMinCols)
            {
                // a GEMV: eight rows at a time, prefetching the next eight (see StoredKernels.QDotV256x8); the same bits as one at a time
                var rp = stackalloc byte*[16];
                int r = r0;
                for (; r + 8 <= r1; r += 8)
                {
                    for (int i = 0; i < 16; i++) rp[i] = RowPtr(Math.Min(r + i, r1 - 1)); // 8..15: the next tile's (or the last rows')
                    if (Type == StoredType.Q8_0) StoredKernels.Q8DotV256x8(rp, a.Q, a.D, Cols, y + r);
                    else StoredKernels.Q4DotV256x8(rp, a.Q, a.D, Cols, y + r);
                }
                for (; r < r1; r++) y[r] = QDot(RowPtr(r), a.Q, a.D, p);
                return;
            }
            // the integer dots from the stored blocks; with n tokens four rows at a time stay in L1 while each token's
            // quantized x is read once for the four
            for (int r = r0; r < r1; r += 4)
            {
                int g = Math.Min(4, r1 - r);
                for (int t = 0; t < n; t++)
                    for (int i = 0; i < g; i++) y[(long)t * Rows + r + i] = QDot(RowPtr(r + i), a.Q + (long)t * Cols, a.D + (long)t * nb, p);
            }
            return;
        }
        float* x = a.X;
        if (n == 1)
        {
            if (p == IsaPath.V512 && (Type == StoredType.F16 && a.XS != null || Type == StoredType.BF16 && Cols >= StoredKernels.TileMinCols))
            {
                // eight rows at a time share each activation load (bf16: long rows, x no longer stays in L1; f16 at every
                // width, prefetching the rows after the tile: see TileMinCols and F16V512x8)
                var rp = stackalloc byte*[16];
                int r = r0;
                for (; r + 8 <= r1; r += 8)
                {
                    for (int i = 0; i < 16; i++) rp[i] = RowPtr(Math.Min(r + i, r1 - 1)); // 8..15: the next tile's (or the last rows')
                    if (Type == StoredType.F16) StoredKernels.F16V512x8(rp, x, a.XS, Cols, y + r);
                    else StoredKernels.Bf16V512x8(rp, x, Cols, y + r);
                }
                for (; r < r1; r++) y[r] = Type == StoredType.F16 ? StoredKernels.F16V512(RowPtr(r), x, a.XS, Cols) : StoredKernels.Bf16V512(RowPtr(r), x, Cols);
            }
            else if (Type == StoredType.F16 && p is IsaPath.V512 or IsaPath.V256)
                for (int r = r0; r < r1; r++) y[r] = p == IsaPath.V512 ? StoredKernels.F16V512(RowPtr(r), x, a.XS, Cols) : StoredKernels.F16V256(RowPtr(r), x, a.XS, Cols);
            else
                for (int r = r0; r < r1; r++) y[r] = Dot(RowPtr(r), x, p);
            return;
        }
        // Rows are widened four at a time into per-thread scratch (grown once, no allocation per call); each token's
        // x row is then read once from the outer caches for four dots (it stays in L1 between them).
        const int Group = 4;
        int stride = Cols;
        if (_rowScratch is null || _rowScratch.Length < Group * stride) _rowScratch = new float[Group * stride];
        fixed (float* pw = _rowScratch)
            for (int r = r0; r < r1; r += Group)
            {
                int g = Math.Min(Group, r1 - r);
                for (int i = 0; i < g; i++) Widen(RowPtr(r + i), pw + i * stride, p);
                for (int t = 0; t < n; t++)
                {
                    float* xt = x + (long)t * Cols, yt = y + (long)t * Rows + r;
                    for (int i = 0; i < g; i++)
                    {
                        yt[i] = StoredKernelsK.Handles(Type) ? StoredKernelsK.DotDecoded(pw + i * stride, xt, Cols, p) : DotPlain(pw + i * stride, xt, Cols, p);
                    }
                }
            }
    }

    /// <summary>A row as fp32 for the GEMM: f16 / bf16 widened; Q5_0, Q4_1, Q5_1 and the K types as ggml's dequantized values.</summary>
    private void Widen(byte* s, float* w, IsaPath p)
    {
        if (Type == StoredType.F16) for (int i = 0; i < Cols; i++) w[i] = F16(((ushort*)s)[i]);
        else if (Type == StoredType.BF16) for (int i = 0; i < Cols; i++) w[i] = BitConverter.Int32BitsToSingle(((ushort*)s)[i] << 16);
        else StoredKernelsK.DecodeRow(Type, s, w, Cols, p); // the SIMD block decoders on path p, ggml's values
    }

    /// <summary>One row's dot product with x from the stored bytes, on path p (every path gives the same bits).</summary>
    internal float Dot(byte* row, float* x, IsaPath p) => Type switch
    {
        StoredType.F16 => p switch { IsaPath.V512 => StoredKernels.F16V512(row, x, null, Cols), IsaPath.V256 => StoredKernels.F16V256(row, x, null, Cols), IsaPath.V128 => StoredKernels.F16V128(row, x, Cols), _ => StoredKernels.HalfScalar(row, x, Cols, bf16: false) },
        StoredType.BF16 => p switch { IsaPath.V512 => StoredKernels.Bf16V512(row, x, Cols), IsaPath.V256 => StoredKernels.Bf16V256(row, x, Cols), IsaPath.V128 => StoredKernels.Bf16V128(row, x, Cols), _ => StoredKernels.HalfScalar(row, x, Cols, bf16: true) },
        StoredType.Q8_0 or StoredType.Q4_0 => throw new InvalidOperationException($"{Type} runs through {nameof(QDot)}."),
        _ => StoredKernelsK.Dot(Type, row, x, Cols, p),
    };

    /// <summary>One Q8_0 / Q4_0 row against one token's Q8_0 activation blocks (every path gives the same bits).</summary>
    private float QDot(byte* row, sbyte* xq, float* xd, IsaPath p) => Type switch
    {
        // The V512 path runs the 256-bit kernels: .NET 10 exposes no 512-bit VNNI here (see Isa), and Zen 4 splits
        // 512-bit vpmaddubsw / vpmaddwd in two; same bits either way.
        StoredType.Q8_0 => p switch { IsaPath.V512 or IsaPath.V256 => StoredKernels.Q8DotV256(row, xq, xd, Cols), IsaPath.V128 => StoredKernels.Q8DotV128(row, xq, xd, Cols), _ => StoredKernels.QDotScalar(row, xq, xd, Cols, q4: false) },
        _ => p switch { IsaPath.V512 or IsaPath.V256 => StoredKernels.Q4DotV256(row, xq, xd, Cols), IsaPath.V128 => StoredKernels.Q4DotV128(row, xq, xd, Cols), _ => StoredKernels.QDotScalar(row, xq, xd, Cols, q4: true) },
    };

    private static float DotPlain(float* w, float* x, int cols, IsaPath p) => p switch
    {
        IsaPath.V512 => StoredKernels.PlainV512(w, x, cols),
        IsaPath.V256 => StoredKernels.PlainV256(w, x, cols),
        IsaPath.V128 => StoredKernels.PlainV128(w, x, cols),
        _ => StoredKernels.PlainScalar(w, x, cols),
    };

    /// <summary>Row r's dot with x on one path (tests: every path against the scalar twin).</summary>
    public float RowDot(int r, ReadOnlySpan<float> x, IsaPath path)
    {
        if ((uint)r >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(r));
        if (x.Length != Cols) throw new ArgumentException($"x has {x.Length} elements, cols = {Cols}.", nameof(x));
        Isa.Require(path);
        fixed (float* px = x)
        {
            var a = Prepare(px, 1, path);
            if (a.XS != null) return path == IsaPath.V512 ? StoredKernels.F16V512(RowPtr(r), px, a.XS, Cols) : StoredKernels.F16V256(RowPtr(r), px, a.XS, Cols);
            return QuantizesActivations ? QDot(RowPtr(r), a.Q, a.D, path) : Dot(RowPtr(r), px, path);
        }
    }

    public override string ToString() => $"{Type} {Rows} x {Cols}";
}
