using Workbench.Engine.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Workbench.Engine.LowBit;

/// <summary>
/// The int8 baseline (8 bits per weight, like llama.cpp Q8_0 without blocks): per-row absmax weights,
/// s_r = max_c |W[r, c]| / 127, w = clamp(round(W / s_r), -127, 127); int8 activations as for the ternary formats.
/// Layout: row-major, cols padded with zeros to a multiple of 64; one fp32 scale per row.
/// </summary>
/// <remarks>
/// Against llama.cpp's Q8_0 (34 bytes per 32 weights: int8 values and an fp16 scale per block; x86 dot: the sign trick
/// |w| x sign(q, w) through vpmaddubsw, or vpdpbusd where VNNI is compiled in, then a float multiply-add per block):
/// this format streams 8.0 bits per weight to its 8.5, and both are bound by memory, not arithmetic, so the kernels
/// are about reading well. VNNI is not reachable from .NET 10 on the Zen 4 VM measured (AvxVnni.IsSupported is false:
/// the CPU has AVX512-VNNI but not the VEX AVX-VNNI encoding, .NET 10 has no Avx512Vnni class, Avx10v1 is false), and
/// vpmaddubsw's sign trick is not exact for q = -128 against a negative weight; vpmovsxbw + vpmaddwd is exact for every
/// int8 pair and still far faster than memory. What made the 6912x2560 cell 1.2-6x slower than Q8_0 was the access
/// pattern, see <see cref="DotV512"/>.
/// </remarks>
public sealed class Int8 : PackedMatrix
{
    public const int ColAlign = 64;

    private readonly AlignedBuffer<sbyte> _data;
    private readonly float[] _scales;
    public int PaddedCols { get; }
    public override LowBitFormat Format => LowBitFormat.Int8;
    public override long WeightBytes => _data.Length + sizeof(float) * (long)_scales.Length;
    internal override bool InHugePageMapping => _data.IsMapped;
    /// <summary>Bytes of a rows x cols Int8 matrix: a byte per weight with cols padded to 64, plus one fp32 scale per row.</summary>
    public static long BytesFor(int rows, int cols) => (long)rows * Shapes.RoundUp(cols, ColAlign) + sizeof(float) * (long)rows;
    internal override int RowAlign => 4;
    /// <summary>One row at a time streams (<see cref="DotV512"/>), so short chunks cost nothing: ggml's 64 rows.</summary>
    internal override int ChunkRows => 64;
    public ReadOnlySpan<float> Scales => _scales;

    private Int8(int rows, int cols) : base(rows, cols)
    {
        PaddedCols = Shapes.RoundUp(cols, ColAlign);
        _data = new AlignedBuffer<sbyte>(checked(rows * PaddedCols));
        _scales = new float[rows];
    }

    private Int8(Int8 other) : base(other.Rows, other.Cols)
    {
        PaddedCols = other.PaddedCols;
        _data = other._data.Clone();
        _scales = (float[])other._scales.Clone();
    }

    public override PackedMatrix CloneWeights() => new Int8(this);

    /// <summary>Quantizes fp32 weights row by row (absmax).</summary>
    public static Int8 Pack(ReadOnlySpan<float> w, int rows, int cols)
    {
        Shapes.CheckMatrix(w.Length, rows, cols, nameof(w));
        var m = new Int8(rows, cols);
        var data = m._data.Span;
        for (int r = 0; r < rows; r++)
        {
            var row = w.Slice(r * cols, cols);
            float max = System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(row);
            if (!float.IsFinite(max)) throw new ArgumentException($"Row {r} of w contains NaN or infinity.", nameof(w));
            float s = max == 0 ? 1f : MathF.Abs(max) / 127f;
            m._scales[r] = s;
            for (int c = 0; c < cols; c++) data[r * m.PaddedCols + c] = (sbyte)Math.Clamp(MathF.Round(row[c] / s), -127f, 127f);
        }
        return m;
    }

    /// <summary>Packs already-quantized int8 weights (any value, -128 included) with their per-row scales.</summary>
    public static Int8 Pack(ReadOnlySpan<sbyte> values, ReadOnlySpan<float> scales, int rows, int cols)
    {
        Shapes.CheckMatrix(values.Length, rows, cols, nameof(values));
        if (scales.Length != rows) throw new ArgumentException($"scales has {scales.Length} elements, rows = {rows}.", nameof(scales));
        var m = new Int8(rows, cols);
        for (int r = 0; r < rows; r++) values.Slice(r * cols, cols).CopyTo(m._data.Span.Slice(r * m.PaddedCols));
        scales.CopyTo(m._scales);
        return m;
    }

    public override sbyte[] Unpack()
    {
        var t = new sbyte[(long)Rows * Cols];
        for (int r = 0; r < Rows; r++) _data.Span.Slice(r * PaddedCols, Cols).CopyTo(t.AsSpan(r * Cols));
        return t;
    }

    public override float RowScale(int row) => _scales[row];
    public override ActivationBuffer CreateActivationBuffer() => new Activations(Cols, PaddedCols);
    protected override Type CreateActivationBufferType => typeof(Activations);

    public sealed class Activations : ActivationBuffer
    {
        internal Activations(int cols, int paddedCols) : base(cols, paddedCols) { }
        protected override void Build(IsaPath path) { }
    }

    protected override unsafe void MatVecCore(ActivationBuffer act, int rowStart, int rowEnd, Span<int> acc, IsaPath path)
    {
        sbyte* w = (sbyte*)Unsafe.AsPointer(ref _data.Ref) + (long)rowStart * PaddedCols;
        sbyte* q = (sbyte*)Unsafe.AsPointer(ref act.QRef);
        int n = rowEnd - rowStart;
        fixed (int* o = acc)
        {
            switch (path)
            {
                case IsaPath.Scalar: DotScalar(w, PaddedCols, q, n, o); break;
                case IsaPath.V128: DotV128(w, PaddedCols, q, n, o); break;
                case IsaPath.V256: DotV256(w, PaddedCols, q, n, o); break;
                default: DotV512(w, PaddedCols, q, n, o); break;
            }
        }
    }

    internal static unsafe void DotScalar(sbyte* w, int cols, sbyte* q, int rows, int* acc)
    {
        for (int r = 0; r < rows; r++, w += cols)
        {
            int sum = 0;
            for (int c = 0; c < cols; c++) sum += w[c] * q[c];
            acc[r] = sum;
        }
    }

    internal static unsafe void DotV128(sbyte* w, int cols, sbyte* q, int rows, int* acc)
    {
        for (int r = 0; r < rows; r++, w += cols)
        {
            var s = Vector128<int>.Zero;
            for (int c = 0; c < cols; c += 16)
            {
                var wv = Vector128.Load(w + c); var qv = Vector128.Load(q + c);
                // int8 x int8 products fit int16 (|p| <= 16384); two of them are summed in int32.
                var p0 = Vector128.WidenLower(wv) * Vector128.WidenLower(qv);
                var p1 = Vector128.WidenUpper(wv) * Vector128.WidenUpper(qv);
                s += Vector128.WidenLower(p0) + Vector128.WidenUpper(p0) + Vector128.WidenLower(p1) + Vector128.WidenUpper(p1);
            }
            acc[r] = Vector128.Sum(s);
        }
    }

    /// <summary>AVX2: sign-extend 16 bytes to int16 (vpmovsxbw), vpmaddwd into int32; four rows share the activations.</summary>
    internal static unsafe void DotV256(sbyte* w, int cols, sbyte* q, int rows, int* acc)
    {
        int r = 0;
        for (; r + 4 <= rows; r += 4, w += 4 * cols)
        {
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int c = 0; c < cols; c += 16)
            {
                var a = Avx2.ConvertToVector256Int16(Vector128.Load(q + c));
                s0 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.Load(w + c)), a);
                s1 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.Load(w + cols + c)), a);
                s2 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.Load(w + 2 * cols + c)), a);
                s3 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.Load(w + 3 * cols + c)), a);
            }
            acc[r] = Vector256.Sum(s0); acc[r + 1] = Vector256.Sum(s1); acc[r + 2] = Vector256.Sum(s2); acc[r + 3] = Vector256.Sum(s3);
        }
        for (; r < rows; r++, w += cols)
        {
            Vector256<int> s = default;
            for (int c = 0; c < cols; c += 16)
                s += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.Load(w + c)), Avx2.ConvertToVector256Int16(Vector128.Load(q + c)));
            acc[r] = Vector256.Sum(s);
        }
    }

    /// <summary>How far ahead of the weight stream <see cref="DotV512"/> prefetches (one 4 KB page), where it does.</summary>
    internal const int PrefetchBytes = 4096;
    private static readonly bool Prefetch = !Isa.IsAmd && Sse.IsSupported;

    /// <summary>
    /// AVX-512BW: one row at a time, sign-extend 32 bytes to int16 (vpmovsxbw), vpmaddwd into two int32 sums.
    /// One row at a time, not four rows sharing the activation loads as <see cref="DotV256"/> does: this kernel is bound
    /// by memory, not by arithmetic, and the hardware prefetcher of the Zen 4 VM it was measured on follows one
    /// sequential stream per core best (membw: one stream 25 GB/s, eight 21). Four neighbouring rows are four short
    /// interleaved streams; with 2560-byte rows (6912x2560) that read 9 GB/s against 18-20 GB/s one row at a time,
    /// and 15-16 against 22 GB/s at 4096 and 11008 columns (thread CPU time, same process, interleaved). Software
    /// prefetch on top of the four streams recovered only part of it (11-18 GB/s) and slowed the single stream down.
    /// <para>On the Xeon VM (Emerald Rapids, session 9) the single stream read only 8-9 GB/s per core, well under the
    /// 15 GB/s a plain read gets there, and a software prefetch <see cref="PrefetchBytes"/> ahead made the GEMV 28-36%
    /// faster at all five shapes, one and two threads (e.g. 4096x4096 two threads 864 -> 582 us, 11008x4096 2314 ->
    /// 1495 us; 2048 bytes ahead gained less, 8192 the same; median wall time, alternated call by call in one process,
    /// load 1.6-1.9). It is issued off AMD only, where prefetch was measured to slow the single stream.</para>
    /// </summary>
    internal static unsafe void DotV512(sbyte* w, int cols, sbyte* q, int rows, int* acc)
    {
        bool prefetch = Prefetch;
        for (int r = 0; r < rows; r++, w += cols)
        {
            Vector512<int> s0 = default, s1 = default;
            for (int c = 0; c < cols; c += 64)
            {
                // a hint: never faults, also past the end of the matrix
                if (prefetch) Sse.Prefetch0(w + c + PrefetchBytes);
                s0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load(w + c)), Avx512BW.ConvertToVector512Int16(Vector256.Load(q + c)));
                s1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load(w + c + 32)), Avx512BW.ConvertToVector512Int16(Vector256.Load(q + c + 32)));
            }
            acc[r] = Vector512.Sum(s0 + s1);
        }
    }
}
