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
public sealed class I2S : PackedMatrix
{
    public const int BlockWeights = 128;
    public const int BlockBytes = 32;
    /// <summary>Column padding: one 64-byte (Vector512) load = two blocks = 256 weights.</summary>
    public const int ColAlign = 256;

    /// <summary>
    /// Loads (of the path's width) summed in int16 before widening to int32. One load gives, per int16 lane,
    /// four vpmaddubsw results of two code x q products each: |lane| &lt;= 4 * 2 * 2 * 128 = 2048, so 8 loads
    /// reach at most 16384 &lt; 32767: overflow is impossible for any codes and any int8 activations.
    /// </summary>
    internal const int LoadsPerChunk = 8;

    private readonly AlignedBuffer<byte> _data;
    public float Scale { get; }
    public int PaddedCols { get; }
    public int RowBytes => PaddedCols / 4;
    public override LowBitFormat Format => LowBitFormat.I2S;
    public override long WeightBytes => (long)Rows * RowBytes + sizeof(float);
    internal override int RowAlign => 4;
    public ReadOnlySpan<byte> Data => _data.Span;

    private I2S(int rows, int cols, float scale) : base(rows, cols)
    {
        Scale = scale;
        PaddedCols = Shapes.RoundUp(cols, ColAlign);
        _data = new AlignedBuffer<byte>(checked(rows * RowBytes));
    }

    public static I2S Pack(TernaryWeights w) => Pack(w.Values, w.Rows, w.Cols, w.Scale);

    public static I2S Pack(ReadOnlySpan<sbyte> ternary, int rows, int cols, float scale)
    {
        Shapes.CheckMatrix(ternary.Length, rows, cols, nameof(ternary));
        AbsMeanTernary.CheckTernary(ternary, nameof(ternary));
        var m = new I2S(rows, cols, scale);
        var data = m._data.Span;
        data.Fill(0b01_01_01_01); // code 1 = weight 0 everywhere, padding included
        for (int r = 0; r < rows; r++)
        {
            var row = data.Slice(r * m.RowBytes, m.RowBytes);
            for (int c = 0; c < cols; c++)
            {
                int block = c / BlockWeights, within = c % BlockWeights;
                int g = within % 32, shift = 6 - 2 * (within / 32);
                ref byte b = ref row[block * BlockBytes + g];
                b = (byte)((b & ~(3 << shift)) | ((ternary[r * cols + c] + 1) << shift));
            }
        }
        return m;
    }

    public sbyte[] Unpack()
    {
        var t = new sbyte[(long)Rows * Cols];
        var data = _data.Span;
        for (int r = 0; r < Rows; r++)
            for (int c = 0; c < Cols; c++)
            {
                int block = c / BlockWeights, within = c % BlockWeights;
                int code = (data[r * RowBytes + block * BlockBytes + within % 32] >> (6 - 2 * (within / 32))) & 3;
                t[r * Cols + c] = (sbyte)(code - 1);
            }
        return t;
    }

    public override float RowScale(int row) => Scale;

    private I2S(I2S other) : base(other.Rows, other.Cols)
    {
        Scale = other.Scale;
        PaddedCols = other.PaddedCols;
        _data = other._data.Clone();
    }

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
        fixed (int* o = acc)
        {
            switch (path)
            {
                case IsaPath.Scalar: DotScalar(w, RowBytes, (sbyte*)Unsafe.AsPointer(ref a.QRef), n, o); break;
                case IsaPath.V128: DotV128(w, RowBytes, (sbyte*)Unsafe.AsPointer(ref a.OrderedRef), n, o); break;
                case IsaPath.V256: DotV256(w, RowBytes, (sbyte*)Unsafe.AsPointer(ref a.QRef), n, o); break;
                case IsaPath.V512: DotV512(w, RowBytes, (sbyte*)Unsafe.AsPointer(ref a.OrderedRef), n, o); break;
            }
        }
        int sumq = a.SumQ;
        for (int i = 0; i < n; i++) acc[i] -= sumq;
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

    /// <summary>AVX2: one 32-byte load is one block (128 weights), lined up with 4 x 32 natural-order activations.</summary>
    internal static unsafe void DotV256(byte* w, int rowBytes, sbyte* q, int rows, int* acc)
    {
        int loads = rowBytes / 32;
        var mask = Vector256.Create((byte)3);
        var ones = Vector256.Create((short)1);
        int r = 0;
        for (; r + 4 <= rows; r += 4, w += 4 * rowBytes)
        {
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int l0 = 0; l0 < loads; l0 += LoadsPerChunk)
            {
                int l1 = Math.Min(loads, l0 + LoadsPerChunk);
                Vector256<short> h0 = default, h1 = default, h2 = default, h3 = default;
                for (int l = l0; l < l1; l++)
                {
                    sbyte* a = q + l * 128;
                    var a0 = Vector256.Load(a); var a1 = Vector256.Load(a + 32);
                    var a2 = Vector256.Load(a + 64); var a3 = Vector256.Load(a + 96);
                    h0 += Block256(Vector256.Load(w + l * 32), a0, a1, a2, a3, mask);
                    h1 += Block256(Vector256.Load(w + rowBytes + l * 32), a0, a1, a2, a3, mask);
                    h2 += Block256(Vector256.Load(w + 2 * rowBytes + l * 32), a0, a1, a2, a3, mask);
                    h3 += Block256(Vector256.Load(w + 3 * rowBytes + l * 32), a0, a1, a2, a3, mask);
                }
                s0 += Avx2.MultiplyAddAdjacent(h0, ones); s1 += Avx2.MultiplyAddAdjacent(h1, ones);
                s2 += Avx2.MultiplyAddAdjacent(h2, ones); s3 += Avx2.MultiplyAddAdjacent(h3, ones);
            }
            acc[r] = Vector256.Sum(s0); acc[r + 1] = Vector256.Sum(s1); acc[r + 2] = Vector256.Sum(s2); acc[r + 3] = Vector256.Sum(s3);
        }
        for (; r < rows; r++, w += rowBytes)
        {
            Vector256<int> s = default;
            for (int l0 = 0; l0 < loads; l0 += LoadsPerChunk)
            {
                int l1 = Math.Min(loads, l0 + LoadsPerChunk);
                Vector256<short> h = default;
                for (int l = l0; l < l1; l++)
                {
                    sbyte* a = q + l * 128;
                    h += Block256(Vector256.Load(w + l * 32), Vector256.Load(a), Vector256.Load(a + 32), Vector256.Load(a + 64), Vector256.Load(a + 96), mask);
                }
                s += Avx2.MultiplyAddAdjacent(h, ones);
            }
            acc[r] = Vector256.Sum(s);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Block256(Vector256<byte> v, Vector256<sbyte> a0, Vector256<sbyte> a1, Vector256<sbyte> a2, Vector256<sbyte> a3, Vector256<byte> mask)
    {
        var u = v.AsUInt16();
        return Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(u, 6).AsByte() & mask, a0)
             + Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(u, 4).AsByte() & mask, a1)
             + Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(u, 2).AsByte() & mask, a2)
             + Avx2.MultiplyAddAdjacent(v & mask, a3);
    }

    /// <summary>
    /// AVX-512BW: one 64-byte load = 256 weights of a row (two blocks), four rows per iteration sharing the four
    /// activation vectors. vpmaddubsw (unsigned codes x signed q) into int16, chunked, then vpmaddwd into int32.
    /// </summary>
    internal static unsafe void DotV512(byte* w, int rowBytes, sbyte* q, int rows, int* acc)
    {
        int loads = rowBytes / 64;
        var mask = Vector512.Create((byte)3);
        var ones = Vector512.Create((short)1);
        int r = 0;
        for (; r + 4 <= rows; r += 4, w += 4 * rowBytes)
        {
            Vector512<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int l0 = 0; l0 < loads; l0 += LoadsPerChunk)
            {
                int l1 = Math.Min(loads, l0 + LoadsPerChunk);
                Vector512<short> h0 = default, h1 = default, h2 = default, h3 = default;
                for (int l = l0; l < l1; l++)
                {
                    sbyte* a = q + l * 256;
                    var a0 = Vector512.Load(a); var a1 = Vector512.Load(a + 64);
                    var a2 = Vector512.Load(a + 128); var a3 = Vector512.Load(a + 192);
                    h0 += Block512(Vector512.Load(w + l * 64), a0, a1, a2, a3, mask);
                    h1 += Block512(Vector512.Load(w + rowBytes + l * 64), a0, a1, a2, a3, mask);
                    h2 += Block512(Vector512.Load(w + 2 * rowBytes + l * 64), a0, a1, a2, a3, mask);
                    h3 += Block512(Vector512.Load(w + 3 * rowBytes + l * 64), a0, a1, a2, a3, mask);
                }
                s0 += Avx512BW.MultiplyAddAdjacent(h0, ones); s1 += Avx512BW.MultiplyAddAdjacent(h1, ones);
                s2 += Avx512BW.MultiplyAddAdjacent(h2, ones); s3 += Avx512BW.MultiplyAddAdjacent(h3, ones);
            }
            acc[r] = Vector512.Sum(s0); acc[r + 1] = Vector512.Sum(s1); acc[r + 2] = Vector512.Sum(s2); acc[r + 3] = Vector512.Sum(s3);
        }
        for (; r < rows; r++, w += rowBytes)
        {
            Vector512<int> s = default;
            for (int l0 = 0; l0 < loads; l0 += LoadsPerChunk)
            {
                int l1 = Math.Min(loads, l0 + LoadsPerChunk);
                Vector512<short> h = default;
                for (int l = l0; l < l1; l++)
                {
                    sbyte* a = q + l * 256;
                    h += Block512(Vector512.Load(w + l * 64), Vector512.Load(a), Vector512.Load(a + 64), Vector512.Load(a + 128), Vector512.Load(a + 192), mask);
                }
                s += Avx512BW.MultiplyAddAdjacent(h, ones);
            }
            acc[r] = Vector512.Sum(s);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Block512(Vector512<byte> v, Vector512<sbyte> a0, Vector512<sbyte> a1, Vector512<sbyte> a2, Vector512<sbyte> a3, Vector512<byte> mask)
    {
        var u = v.AsUInt16();
        return Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(u, 6).AsByte() & mask, a0)
             + Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(u, 4).AsByte() & mask, a1)
             + Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(u, 2).AsByte() & mask, a2)
             + Avx512BW.MultiplyAddAdjacent(v & mask, a3);
    }
}
