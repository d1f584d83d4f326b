using Workbench.Engine.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Workbench.Engine.LowBit;

/// <summary>
/// I2_S: 2 bits per ternary weight, stored as the code t + 1 in {0, 1, 2}, one fp32 scale per tensor.
/// A row is cut into blocks of 128 weights in 32 bytes; byte g of a block holds element g in bits 7:6,
/// g + 32 in 5:4, g + 64 in 3:2 and g + 96 in 1:0. Since code = t + 1, sum(t q) = sum(code q) - sum(q).
/// Padding: cols are padded with zero weights (code 1) to a multiple of 256 so every row is whole 64-byte loads;
/// the activations are zero padded, so padding adds nothing. Rows are not padded.
/// </summary>
public sealed class I2S : TernaryMatrix
{
    public const int BlockWeights = 128;
    public const int BlockBytes = 32;
    /// <summary>Column padding: one 64-byte (Vector512) load = two blocks = 256 weights.</summary>
    public const int ColAlign = 256;

    /// <summary>
    /// Loads (of the path's width) summed in int16 before widening to int32. V128 (and the scalar-twin reasoning):
    /// one load gives, per int16 lane, four vpmaddubsw results of two code x q products each, |lane| &lt;= 2048, so
    /// 8 loads reach at most 16384. V256/V512 keep the scale-4 products (4 x code &lt;= 8) in their own int16 sum:
    /// per load two vpmaddubsw of lane sums in [-2 * 8 * 128, 2 * 8 * 127], so 8 loads stay in [-32768, 32512]:
    /// it fits int16 exactly, and the scale-1 sum reaches at most 8192. Overflow is impossible for codes 0..2
    /// and any int8 activations (the packer accepts only ternary weights).
    /// </summary>
    internal const int LoadsPerChunk = 8;

    public int PaddedCols { get; }
    public int RowBytes => PaddedCols / 4;
    public override LowBitFormat Format => LowBitFormat.I2S;
    /// <summary>Bytes of a rows x cols I2S matrix: 2 bits per weight with cols padded to 256, plus one fp32 scale.</summary>
    public static long BytesFor(int rows, int cols) => (long)rows * Shapes.RoundUp(cols, ColAlign) / 4 + sizeof(float);
    internal override int RowAlign => 4;

    private I2S(int rows, int cols, float scale) : base(rows, cols, scale, checked(rows * (Shapes.RoundUp(cols, ColAlign) / 4))) =>
        PaddedCols = Shapes.RoundUp(cols, ColAlign);

    public static I2S Pack(TernaryWeights w) => Pack(w.Values, w.Rows, w.Cols, w.Scale);

    public static I2S Pack(ReadOnlySpan<sbyte> ternary, int rows, int cols, float scale)
    {
        CheckTernary(ternary, rows, cols);
        var m = new I2S(rows, cols, scale);
        var data = m._data.Span;
        data.Fill(0b01_01_01_01); // code 1 = weight 0 everywhere, padding included
        for (int r = 0; r < rows; r++)
        {
            var row = data.Slice(r * m.RowBytes, m.RowBytes);
            for (int c = 0; c < cols; c++)
            {
                int shift = Shift(c);
                ref byte b = ref row[ByteOf(c)];
                b = (byte)((b & ~(3 << shift)) | ((ternary[r * cols + c] + 1) << shift));
            }
        }
        return m;
    }

    public override sbyte[] Unpack()
    {
        var t = new sbyte[(long)Rows * Cols];
        var data = _data.Span;
        for (int r = 0; r < Rows; r++)
            for (int c = 0; c < Cols; c++)
                t[r * Cols + c] = (sbyte)((data[r * RowBytes + ByteOf(c)] >> Shift(c) & 3) - 1);
        return t;
    }

    /// <summary>Byte of a row holding column c: block c / 128, byte (c mod 128) mod 32 of it.</summary>
    private static int ByteOf(int c) => c / BlockWeights * BlockBytes + c % BlockWeights % 32;

    /// <summary>Bit position of column c's code in its byte: 6, 4, 2, 0 for the four 32-column quarters of a block.</summary>
    private static int Shift(int c) => 6 - 2 * (c % BlockWeights / 32);

    /// <summary>The 32 bytes of block <paramref name="block"/> of row <paramref name="row"/>, decoded: the block view notebooks show.</summary>
    public I2SBlockView BlockView(int row = 0, int block = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Rows);
        int blocks = RowBytes / BlockBytes;
        if (block < 0 || block >= blocks) throw new ArgumentOutOfRangeException(nameof(block), block, $"block must be in 0..{blocks - 1}.");
        var data = Data.Slice(row * RowBytes + block * BlockBytes, BlockBytes);
        var bytes = new List<I2SByte>();
        for (int g = 0; g < BlockBytes; g++)
        {
            var columns = Enumerable.Range(0, 4).Select(j => block * BlockWeights + g + 32 * j).ToArray();
            byte value = data[g];
            var codes = columns.Select(c => value >> Shift(c) & 3).ToArray();
            bytes.Add(new I2SByte(g, data[g], columns, codes, codes.Select(c => c - 1).ToArray()));
        }
        return new I2SBlockView(row, block, Scale, bytes);
    }

    private I2S(I2S other) : base(other) => PaddedCols = other.PaddedCols;

    public override PackedMatrix CloneWeights() => new I2S(this);
    public override ActivationBuffer CreateActivationBuffer() => new Activations(Cols, PaddedCols);
    protected override Type CreateActivationBufferType => typeof(Activations);

    /// <summary>
    /// Activations in the order a path's loads meet them. A W-byte weight load shifted by 6, 4, 2, 0 gives four
    /// vectors of W codes; vector j lane i is the weight at column (b / 32) * 128 + 32 j + b % 32 with b the byte
    /// index in the row. For W = 32 that is natural order; W = 16 and W = 64 need a reorder, done once per token.
    /// </summary>
    public sealed class Activations : ActivationBuffer
    {
        private readonly AlignedBuffer<sbyte> _ordered;
        internal Activations(int cols, int paddedCols) : base(cols, paddedCols) => _ordered = new AlignedBuffer<sbyte>(paddedCols);
        internal ref sbyte OrderedRef => ref _ordered.Ref;

        protected override void Build(IsaPath path)
        {
            int width = path switch { IsaPath.V128 => 16, IsaPath.V512 => 64, _ => 0 };
            if (width == 0) return; // Scalar and V256 read Q directly
            var q = Q;
            var dst = _ordered.Span;
            int piece = Math.Min(width, 32);
            for (int load = 0; load < PaddedCols / 4 / width; load++)
                for (int j = 0; j < 4; j++)
                    for (int p = 0; p < width / piece; p++)
                    {
                        int b = load * width + p * piece;
                        q.Slice(b / 32 * 128 + 32 * j + b % 32, piece).CopyTo(dst.Slice(load * 4 * width + j * width + p * piece, piece));
                    }
        }
    }

    protected override unsafe void MatVecCore(ActivationBuffer act, int rowStart, int rowEnd, Span<int> acc, IsaPath path)
    {
        var a = (Activations)act;
        byte* w = (byte*)Unsafe.AsPointer(ref _data.Ref) + (long)rowStart * RowBytes;
        int n = rowEnd - rowStart;
        int sumq = a.SumQ;
        fixed (int* o = acc)
        {
            switch (path)
            {
                case IsaPath.Scalar: DotScalar(w, RowBytes, (sbyte*)Unsafe.AsPointer(ref a.QRef), n, o); break;
                case IsaPath.V128: DotV128(w, RowBytes, (sbyte*)Unsafe.AsPointer(ref a.OrderedRef), n, o); break;
                case IsaPath.V256: DotV256(w, RowBytes, (sbyte*)Unsafe.AsPointer(ref a.QRef), n, o); break;
                case IsaPath.V512: DotV512(w, RowBytes, (sbyte*)Unsafe.AsPointer(ref a.OrderedRef), n, sumq, o, n < Rows ? Prefetch.SplitFar : 0); break;
            }
            // sum(t q) = sum(code q) - sum(q); the V512 kernel subtracts it as it stores.
            if (path != IsaPath.V512)
                for (int i = 0; i < n; i++) o[i] -= sumq;
        }
    }

    /// <summary>
    /// Small-batch GEMM on V512: each 64-byte weight load is decoded once (one shift, four masks) and fed to
    /// four tokens' activations, so weights stream from memory once per four tokens. Leftover tokens (n mod 4)
    /// take the one-token kernel on the same rows while they are still in cache.
    /// </summary>
    internal override unsafe bool MatMulCore(ActivationBuffer[] acts, int n, int rowStart, int rowEnd, int[] acc, IsaPath path)
    {
        if (path != IsaPath.V512) return false;
        byte* w0 = (byte*)Unsafe.AsPointer(ref _data.Ref);
        var q = stackalloc nint[4];
        var sums = stackalloc int[4];
        var outs = stackalloc nint[4];
        fixed (int* o = acc)
        {
            // 64-row blocks keep a block's weights in L1/L2 for the leftover tokens.
            for (int r0 = rowStart; r0 < rowEnd; r0 += 64)
            {
                int r1 = Math.Min(rowEnd, r0 + 64);
                byte* w = w0 + (long)r0 * RowBytes;
                int t = 0;
                for (; t + 4 <= n; t += 4)
                {
                    for (int j = 0; j < 4; j++)
                    {
                        var a = (Activations)acts[t + j];
                        q[j] = (nint)Unsafe.AsPointer(ref a.OrderedRef);
                        sums[j] = a.SumQ;
                        outs[j] = (nint)(o + (long)(t + j) * Rows + r0);
                    }
                    DotV512x4(w, RowBytes, (sbyte**)q, r1 - r0, sums, (int**)outs);
                }
                for (; t < n; t++)
                {
                    var a = (Activations)acts[t];
                    DotV512(w, RowBytes, (sbyte*)Unsafe.AsPointer(ref a.OrderedRef), r1 - r0, a.SumQ, o + (long)t * Rows + r0);
                }
            }
        }
        return true;
    }

    /// <summary>Scalar reference: sum(code q) per row, natural activation order.</summary>
    internal static unsafe void DotScalar(byte* w, int rowBytes, sbyte* q, int rows, int* acc)
    {
        for (int r = 0; r < rows; r++, w += rowBytes)
        {
            int sum = 0;
            for (int b = 0; b < rowBytes; b++)
            {
                int byteValue = w[b], col = b / 32 * 128 + b % 32;
                sum += (byteValue >> 6) * q[col] + ((byteValue >> 4) & 3) * q[col + 32]
                     + ((byteValue >> 2) & 3) * q[col + 64] + (byteValue & 3) * q[col + 96];
            }
            acc[r] = sum;
        }
    }

    /// <summary>Portable Vector128 (SSE / Neon): 16-byte loads, widening multiplies, int16 sums chunked as in V512.</summary>
    internal static unsafe void DotV128(byte* w, int rowBytes, sbyte* q, int rows, int* acc)
    {
        int loads = rowBytes / 16;
        var mask = Vector128.Create((byte)3);
        for (int r = 0; r < rows; r++, w += rowBytes)
        {
            var sum = Vector128<int>.Zero;
            for (int l0 = 0; l0 < loads; l0 += LoadsPerChunk)
            {
                int l1 = Math.Min(loads, l0 + LoadsPerChunk);
                var h = Vector128<short>.Zero;
                for (int l = l0; l < l1; l++)
                {
                    var v = Vector128.Load(w + l * 16);
                    sbyte* a = q + l * 64;
                    h += MulAdd(Vector128.ShiftRightLogical(v, 6) & mask, Vector128.Load(a))
                       + MulAdd(Vector128.ShiftRightLogical(v, 4) & mask, Vector128.Load(a + 16))
                       + MulAdd(Vector128.ShiftRightLogical(v, 2) & mask, Vector128.Load(a + 32))
                       + MulAdd(v & mask, Vector128.Load(a + 48));
                }
                sum += Vector128.WidenLower(h) + Vector128.WidenUpper(h);
            }
            acc[r] = Vector128.Sum(sum);
        }
    }

    /// <summary>Per int16 lane the sum of two code x q products (|lane| &lt;= 512), as vpmaddubsw gives.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<short> MulAdd(Vector128<byte> codes, Vector128<sbyte> q)
    {
        if (Ssse3.IsSupported) return Ssse3.MultiplyAddAdjacent(codes, q);
        var c = codes.AsSByte();
        return Vector128.WidenLower(c) * Vector128.WidenLower(q) + Vector128.WidenUpper(c) * Vector128.WidenUpper(q);
    }

    /// <summary>
    /// AVX2: one 32-byte load is one block (128 weights), lined up with 4 x 32 natural-order activations; four rows
    /// share the activation loads. Decoding as in <see cref="Block256"/>: one shift and four masks per load.
    /// The four rows come from the four quarters of the range (see <see cref="Streams"/>).
    /// </summary>
    internal static unsafe void DotV256(byte* w, int rowBytes, sbyte* q, int rows, int* acc)
    {
        int loads = rowBytes / 32, ahead = Prefetch.Distance; // read once, before the loops: see Prefetch.Distance
        var m3 = Vector256.Create((byte)0x03);
        var mC = Vector256.Create((byte)0x0C);
        var ones = Vector256.Create((short)1);
        var fours = Vector256.Create((short)4);
        int quarter = rows / Streams;
        long stride = (long)quarter * rowBytes;
        for (int i = 0; i < quarter; i++, w += rowBytes)
        {
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int l0 = 0; l0 < loads; l0 += LoadsPerChunk)
            {
                int l1 = Math.Min(loads, l0 + LoadsPerChunk);
                Vector256<short> u0 = default, u1 = default, u2 = default, u3 = default, f0 = default, f1 = default, f2 = default, f3 = default;
                for (int l = l0; l < l1; l++)
                {
                    sbyte* a = q + l * 128;
                    var a0 = Vector256.Load(a); var a1 = Vector256.Load(a + 32);
                    var a2 = Vector256.Load(a + 64); var a3 = Vector256.Load(a + 96);
                    byte* p = w + l * 32;
                    if ((l & 1) == 0) Prefetch4(p + ahead, stride);
                    Block256(Vector256.Load(p), a0, a1, a2, a3, m3, mC, ref u0, ref f0);
                    Block256(Vector256.Load(p + stride), a0, a1, a2, a3, m3, mC, ref u1, ref f1);
                    Block256(Vector256.Load(p + 2 * stride), a0, a1, a2, a3, m3, mC, ref u2, ref f2);
                    Block256(Vector256.Load(p + 3 * stride), a0, a1, a2, a3, m3, mC, ref u3, ref f3);
                }
                s0 += Avx2.MultiplyAddAdjacent(u0, fours) + Avx2.MultiplyAddAdjacent(f0, ones);
                s1 += Avx2.MultiplyAddAdjacent(u1, fours) + Avx2.MultiplyAddAdjacent(f1, ones);
                s2 += Avx2.MultiplyAddAdjacent(u2, fours) + Avx2.MultiplyAddAdjacent(f2, ones);
                s3 += Avx2.MultiplyAddAdjacent(u3, fours) + Avx2.MultiplyAddAdjacent(f3, ones);
            }
            acc[i] = Vector256.Sum(s0) >> 2; acc[quarter + i] = Vector256.Sum(s1) >> 2;
            acc[2 * quarter + i] = Vector256.Sum(s2) >> 2; acc[3 * quarter + i] = Vector256.Sum(s3) >> 2;
        }
        w += 3 * stride;
        for (int r = Streams * quarter; r < rows; r++, w += rowBytes)
        {
            Vector256<int> s = default;
            for (int l0 = 0; l0 < loads; l0 += LoadsPerChunk)
            {
                int l1 = Math.Min(loads, l0 + LoadsPerChunk);
                Vector256<short> u = default, f = default;
                for (int l = l0; l < l1; l++)
                {
                    sbyte* a = q + l * 128;
                    Block256(Vector256.Load(w + l * 32), Vector256.Load(a), Vector256.Load(a + 32), Vector256.Load(a + 64), Vector256.Load(a + 96), m3, mC, ref u, ref f);
                }
                s += Avx2.MultiplyAddAdjacent(u, fours) + Avx2.MultiplyAddAdjacent(f, ones);
            }
            acc[r] = Vector256.Sum(s) >> 2;
        }
    }

    /// <summary>
    /// The one-token kernels read four rows at a time, taken from the four quarters of the row range (rows i,
    /// i + n/4, i + n/2, i + 3n/4) rather than four neighbours: four neighbouring rows of a 4096-column matrix share
    /// one 4 KB page, which the hardware prefetcher follows as a single stream and restarts at every page, while four
    /// distant rows are four streams it runs ahead on at once. A pure read of this layout measured 7.6 GB/s for
    /// neighbours and 13.5 GB/s for quarters plus software prefetch on one core of the Xeon this was built on.
    /// </summary>
    internal const int Streams = 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Prefetch4(byte* p, long stride, bool toL2 = false) // toL2: a constant at every call
    {
        if (!Sse.IsSupported) return;
        if (toL2) { Sse.Prefetch1(p); Sse.Prefetch1(p + stride); Sse.Prefetch1(p + 2 * stride); Sse.Prefetch1(p + 3 * stride); }
        else { Sse.Prefetch0(p); Sse.Prefetch0(p + stride); Sse.Prefetch0(p + 2 * stride); Sse.Prefetch0(p + 3 * stride); }
    }

    /// <summary>
    /// Decoding a weight byte with one 16-bit shift by 4 instead of three shifts: with h = v &gt;&gt; 4,
    /// h &amp; 3 is the code of bits 5:4 and v &amp; 3 that of bits 1:0 (scale 1), h &amp; 12 is 4 x the code of bits 7:6 and
    /// v &amp; 12 is 4 x the code of bits 3:2 (scale 4). The scale-1 and scale-4 products go to separate int16 sums
    /// (u, f); f already carries the factor 4, so u is widened with vpmaddwd by 4 and f by 1 into int32 sums of
    /// 4 x the dot product, divided by 4 (an exact shift) at the end: two fewer shifts per load than shifting each
    /// code down. The int32 sums stay below 4 x 2 x 128 x 65536 = 2^26.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block256(Vector256<byte> v, Vector256<sbyte> a0, Vector256<sbyte> a1, Vector256<sbyte> a2, Vector256<sbyte> a3,
        Vector256<byte> m3, Vector256<byte> mC, ref Vector256<short> u, ref Vector256<short> f)
    {
        var h = Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte();
        u += Avx2.MultiplyAddAdjacent(h & m3, a1) + Avx2.MultiplyAddAdjacent(v & m3, a3);
        f += Avx2.MultiplyAddAdjacent(h & mC, a0) + Avx2.MultiplyAddAdjacent(v & mC, a2);
    }

    /// <summary>Software prefetch distance of the GEMM kernel's single row stream (bytes ahead of the current load).</summary>
    internal const int PrefetchBytes = 512;

    /// <summary>
    /// AVX-512BW: one 64-byte load = 256 weights of a row (two blocks), four rows per iteration (one per quarter of
    /// the range, see <see cref="Streams"/>) sharing the four activation vectors; decoding as in <see cref="Block256"/>
    /// (one shift, four masks, four vpmaddubsw). The int32 sums minus sum(q) are stored directly.
    /// </summary>
    internal static unsafe void DotV512(byte* w, int rowBytes, sbyte* q, int rows, int sumq, int* acc, int far = 0)
    {
        int loads = rowBytes / 64, ahead = Prefetch.Distance; // read once, before the loops: see Prefetch.Distance
        var m3 = Vector512.Create((byte)0x03);
        var mC = Vector512.Create((byte)0x0C);
        var ones = Vector512.Create((short)1);
        var fours = Vector512.Create((short)4);
        int quarter = rows / Streams;
        long stride = (long)quarter * rowBytes;
        for (int i = 0; i < quarter; i++, w += rowBytes)
        {
            Vector512<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int l0 = 0; l0 < loads; l0 += LoadsPerChunk)
            {
                int l1 = Math.Min(loads, l0 + LoadsPerChunk);
                Vector512<short> u0 = default, u1 = default, u2 = default, u3 = default, f0 = default, f1 = default, f2 = default, f3 = default;
                for (int l = l0; l < l1; l++)
                {
                    sbyte* a = q + l * 256;
                    var a0 = Vector512.Load(a); var a1 = Vector512.Load(a + 64);
                    var a2 = Vector512.Load(a + 128); var a3 = Vector512.Load(a + 192);
                    byte* p = w + l * 64;
                    Prefetch4(p + ahead, stride);
                    if (far > 0) Prefetch4(p + far, stride, toL2: true); // a part of a split GEMV: Prefetch.SplitFar
                    Block512(Vector512.Load(p), a0, a1, a2, a3, m3, mC, ref u0, ref f0);
                    Block512(Vector512.Load(p + stride), a0, a1, a2, a3, m3, mC, ref u1, ref f1);
                    Block512(Vector512.Load(p + 2 * stride), a0, a1, a2, a3, m3, mC, ref u2, ref f2);
                    Block512(Vector512.Load(p + 3 * stride), a0, a1, a2, a3, m3, mC, ref u3, ref f3);
                }
                s0 += Avx512BW.MultiplyAddAdjacent(u0, fours) + Avx512BW.MultiplyAddAdjacent(f0, ones);
                s1 += Avx512BW.MultiplyAddAdjacent(u1, fours) + Avx512BW.MultiplyAddAdjacent(f1, ones);
                s2 += Avx512BW.MultiplyAddAdjacent(u2, fours) + Avx512BW.MultiplyAddAdjacent(f2, ones);
                s3 += Avx512BW.MultiplyAddAdjacent(u3, fours) + Avx512BW.MultiplyAddAdjacent(f3, ones);
            }
            acc[i] = (Vector512.Sum(s0) >> 2) - sumq; acc[quarter + i] = (Vector512.Sum(s1) >> 2) - sumq;
            acc[2 * quarter + i] = (Vector512.Sum(s2) >> 2) - sumq; acc[3 * quarter + i] = (Vector512.Sum(s3) >> 2) - sumq;
        }
        w += 3 * stride;
        for (int r = Streams * quarter; r < rows; r++, w += rowBytes)
        {
            Vector512<int> s = default;
            for (int l0 = 0; l0 < loads; l0 += LoadsPerChunk)
            {
                int l1 = Math.Min(loads, l0 + LoadsPerChunk);
                Vector512<short> u = default, f = default;
                for (int l = l0; l < l1; l++)
                {
                    sbyte* a = q + l * 256;
                    Block512(Vector512.Load(w + l * 64), Vector512.Load(a), Vector512.Load(a + 64), Vector512.Load(a + 128), Vector512.Load(a + 192), m3, mC, ref u, ref f);
                }
                s += Avx512BW.MultiplyAddAdjacent(u, fours) + Avx512BW.MultiplyAddAdjacent(f, ones);
            }
            acc[r] = (Vector512.Sum(s) >> 2) - sumq;
        }
    }

    /// <summary>
    /// Four tokens per weight load, one row at a time: the row's load is decoded once into four code vectors and
    /// each token adds its four vpmaddubsw products (activations read from L1). out[j][r] = sum - sumq[j].
    /// </summary>
    internal static unsafe void DotV512x4(byte* w, int rowBytes, sbyte** q, int rows, int* sumq, int** outs)
    {
        int loads = rowBytes / 64;
        var m3 = Vector512.Create((byte)0x03);
        var mC = Vector512.Create((byte)0x0C);
        var ones = Vector512.Create((short)1);
        var fours = Vector512.Create((short)4);
        sbyte* q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3];
        for (int r = 0; r < rows; r++, w += rowBytes)
        {
            Vector512<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int l0 = 0; l0 < loads; l0 += LoadsPerChunk)
            {
                int l1 = Math.Min(loads, l0 + LoadsPerChunk);
                Vector512<short> u0 = default, u1 = default, u2 = default, u3 = default, f0 = default, f1 = default, f2 = default, f3 = default;
                for (int l = l0; l < l1; l++)
                {
                    var v = Vector512.Load(w + l * 64);
                    if (Sse.IsSupported) Sse.Prefetch0(w + l * 64 + PrefetchBytes);
                    var h = Vector512.ShiftRightLogical(v.AsUInt16(), 4).AsByte();
                    var c0 = h & mC; var c1 = h & m3; var c2 = v & mC; var c3 = v & m3;
                    int o = l * 256;
                    Codes512(c0, c1, c2, c3, q0 + o, ref u0, ref f0);
                    Codes512(c0, c1, c2, c3, q1 + o, ref u1, ref f1);
                    Codes512(c0, c1, c2, c3, q2 + o, ref u2, ref f2);
                    Codes512(c0, c1, c2, c3, q3 + o, ref u3, ref f3);
                }
                s0 += Avx512BW.MultiplyAddAdjacent(u0, fours) + Avx512BW.MultiplyAddAdjacent(f0, ones);
                s1 += Avx512BW.MultiplyAddAdjacent(u1, fours) + Avx512BW.MultiplyAddAdjacent(f1, ones);
                s2 += Avx512BW.MultiplyAddAdjacent(u2, fours) + Avx512BW.MultiplyAddAdjacent(f2, ones);
                s3 += Avx512BW.MultiplyAddAdjacent(u3, fours) + Avx512BW.MultiplyAddAdjacent(f3, ones);
            }
            outs[0][r] = (Vector512.Sum(s0) >> 2) - sumq[0]; outs[1][r] = (Vector512.Sum(s1) >> 2) - sumq[1];
            outs[2][r] = (Vector512.Sum(s2) >> 2) - sumq[2]; outs[3][r] = (Vector512.Sum(s3) >> 2) - sumq[3];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Codes512(Vector512<byte> c0, Vector512<byte> c1, Vector512<byte> c2, Vector512<byte> c3, sbyte* a, ref Vector512<short> u, ref Vector512<short> f)
    {
        u += Avx512BW.MultiplyAddAdjacent(c1, Vector512.Load(a + 64)) + Avx512BW.MultiplyAddAdjacent(c3, Vector512.Load(a + 192));
        f += Avx512BW.MultiplyAddAdjacent(c0, Vector512.Load(a)) + Avx512BW.MultiplyAddAdjacent(c2, Vector512.Load(a + 128));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block512(Vector512<byte> v, Vector512<sbyte> a0, Vector512<sbyte> a1, Vector512<sbyte> a2, Vector512<sbyte> a3,
        Vector512<byte> m3, Vector512<byte> mC, ref Vector512<short> u, ref Vector512<short> f)
    {
        var h = Vector512.ShiftRightLogical(v.AsUInt16(), 4).AsByte();
        u += Avx512BW.MultiplyAddAdjacent(h & m3, a1) + Avx512BW.MultiplyAddAdjacent(v & m3, a3);
        f += Avx512BW.MultiplyAddAdjacent(h & mC, a0) + Avx512BW.MultiplyAddAdjacent(v & mC, a2);
    }
}

/// <summary>The 32 bytes of one I2_S block decoded: which 4 columns each byte holds, their codes (t + 1) and weights.</summary>
public sealed record I2SBlockView(int Row, int Block, float Scale, IReadOnlyList<I2SByte> Bytes)
{
    /// <summary>Reads block <paramref name="block"/> of row <paramref name="row"/> straight from the packed bytes.</summary>
    public static I2SBlockView Of(I2S matrix, int row = 0, int block = 0) =>
        (matrix ?? throw new ArgumentNullException(nameof(matrix))).BlockView(row, block);
}

/// <summary>Byte <c>Index</c> of a block: its value, the columns of bits 7:6, 5:4, 3:2, 1:0, their codes and weights.</summary>
public sealed record I2SByte(int Index, byte Value, int[] Columns, int[] Codes, int[] Weights);
