using Workbench.Engine.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Workbench.Engine.LowBit;

/// <summary>
/// TL1: ternary weights in pairs (w0, w1) -> 4-bit index 3 w0 + w1 + 4 in [0, 8] (2 bits per weight). Per token,
/// each activation pair (b0, b1) gets a 9-entry int16 table of every w0 b0 + w1 b1, split into a 16-byte low-byte
/// table and a 16-byte high-byte table, so a byte shuffle (pshufb / tbl) looks up 16..64 rows at once; AVX-512
/// keeps the 9 sums as one 32-lane int16 table instead and looks 32 rows up with vpermw (see WordV512).
/// Layout: rows in groups of 64; within a group, for each two pairs k (columns 4k .. 4k+3), 64 bytes, byte r =
/// index(row r, pair 2k) | index(row r, pair 2k+1) &lt;&lt; 4. Padding: cols padded with zero weights to a multiple
/// of 4, rows with zero-weight rows to a multiple of 64 (their sums are computed and dropped).
/// </summary>
public sealed class TL1 : TernaryMatrix
{
    public const int RowGroup = 64;
    public const int ColAlign = 4;

    /// <summary>
    /// Byte-columns k (two pairs each) summed in int16 before widening: a table entry is |w0 b0 + w1 b1| &lt;= 256,
    /// two per k per lane, so 32 k's reach at most 16384 &lt; 32767. Overflow is impossible.
    /// </summary>
    internal const int KPerChunk = 32;

    public int PaddedCols { get; }
    internal int KCount => PaddedCols / 4;
    internal int GroupBytes => KCount * RowGroup;
    internal int Groups => (Rows + RowGroup - 1) / RowGroup;
    public override LowBitFormat Format => LowBitFormat.TL1;
    /// <summary>Bytes of a rows x cols TL1 matrix: 4 bits per weight pair, rows padded to 64, cols to 4, plus one fp32 scale.</summary>
    public static long BytesFor(int rows, int cols) => (long)Shapes.RoundUp(rows, RowGroup) * Shapes.RoundUp(cols, ColAlign) / 4 + sizeof(float);

    private TL1(int rows, int cols, float scale) : base(rows, cols, scale, checked(Shapes.RoundUp(rows, RowGroup) * (Shapes.RoundUp(cols, ColAlign) / 4))) =>
        PaddedCols = Shapes.RoundUp(cols, ColAlign);

    private TL1(TL1 other) : base(other) => PaddedCols = other.PaddedCols;

    public override PackedMatrix CloneWeights() => new TL1(this);

    public static TL1 Pack(TernaryWeights w) => Pack(w.Values, w.Rows, w.Cols, w.Scale);

    public static TL1 Pack(ReadOnlySpan<sbyte> ternary, int rows, int cols, float scale)
    {
        CheckTernary(ternary, rows, cols);
        var m = new TL1(rows, cols, scale);
        var data = m._data.Span;
        data.Fill(4 | 4 << 4); // index 4 = (0, 0)
        for (int r = 0; r < rows; r++)
            for (int p = 0; p < m.PaddedCols / 2; p++)
            {
                int c = 2 * p;
                int w0 = c < cols ? ternary[r * cols + c] : 0, w1 = c + 1 < cols ? ternary[r * cols + c + 1] : 0;
                ref byte b = ref data[r / RowGroup * m.GroupBytes + p / 2 * RowGroup + r % RowGroup];
                int shift = 4 * (p % 2);
                b = (byte)((b & ~(0xF << shift)) | ((3 * w0 + w1 + 4) << shift));
            }
        return m;
    }

    public override sbyte[] Unpack()
    {
        var t = new sbyte[(long)Rows * Cols];
        var data = _data.Span;
        for (int r = 0; r < Rows; r++)
            for (int c = 0; c < Cols; c++)
            {
                int p = c / 2;
                var (w0, w1) = PairOf((data[r / RowGroup * GroupBytes + p / 2 * RowGroup + r % RowGroup] >> (4 * (p % 2))) & 0xF);
                t[r * Cols + c] = (sbyte)(c % 2 == 0 ? w0 : w1);
            }
        return t;
    }

    public override ActivationBuffer CreateActivationBuffer() => new Activations(Cols, PaddedCols);
    protected override Type CreateActivationBufferType => typeof(Activations);

    /// <summary>Per activation pair p: 32 bytes, the low bytes then the high bytes of the 9 sums (slots 9..15 zero).</summary>
    public sealed class Activations : ActivationBuffer
    {
        // Each kind is allocated when a path first needs it (a prefill workspace holds one buffer per token).
        private AlignedBuffer<byte>? _tables;
        private AlignedBuffer<short>? _words;
        internal Activations(int cols, int paddedCols) : base(cols, paddedCols) { }
        /// <summary>Low/high byte tables (Scalar, V128, V256 paths); empty until prepared for one of them.</summary>
        public ReadOnlySpan<byte> Tables => _tables is null ? default : _tables.Span;
        /// <summary>V512 tables: per pair 32 int16, the 9 sums at 0..8 and again at 16..24 (see <see cref="WordV512"/>); empty until prepared for V512.</summary>
        public ReadOnlySpan<short> WordTables => _words is null ? default : _words.Span;

        /// <summary>The tables the kernels of <paramref name="path"/> read (built for it): word tables on V512, byte tables elsewhere.</summary>
        internal unsafe byte* TablesFor(IsaPath path) =>
            path == IsaPath.V512 ? (byte*)Unsafe.AsPointer(ref _words!.Ref) : (byte*)Unsafe.AsPointer(ref _tables!.Ref);

        protected override void Build(IsaPath path)
        {
            if (path == IsaPath.V512) BuildWordTables(Q, (_words ??= new AlignedBuffer<short>(PaddedCols / 2 * 32)).Span);
            else BuildTables(Q, (_tables ??= new AlignedBuffer<byte>(PaddedCols / 2 * 32)).Span);
        }
    }

    /// <summary>P0 and P1 twice over (32 lanes): vpermw reads 5 index bits, and bit 4 belongs to the neighbouring nibble.</summary>
    private static readonly short[] W0 = Enumerable.Range(0, 32).Select(e => (short)(e % 16 < 9 ? PairOf(e % 16).W0 : 0)).ToArray();
    private static readonly short[] W1 = Enumerable.Range(0, 32).Select(e => (short)(e % 16 < 9 ? PairOf(e % 16).W1 : 0)).ToArray();

    /// <summary>Per activation pair the 9 sums as int16 in a 32-lane table, twice (one vector multiply-add per coefficient).</summary>
    internal static void BuildWordTables(ReadOnlySpan<sbyte> q, Span<short> tables)
    {
        var c0 = Vector512.Create<short>(W0); var c1 = Vector512.Create<short>(W1);
        for (int p = 0; p < tables.Length / 32; p++)
            (c0 * Vector512.Create((short)q[2 * p]) + c1 * Vector512.Create((short)q[2 * p + 1])).CopyTo(tables.Slice(p * 32, 32));
    }

    /// <summary>
    /// <see cref="WordV512"/> on four groups <paramref name="stride"/> bytes apart (one per quarter of the range): four
    /// memory streams, one pair of table loads per byte-column; the int32 sums wait in a stack block between chunks.
    /// </summary>
    internal static unsafe void WordV512x4(byte* g, long stride, int kCount, short* tables, int* sums)
    {
        int ahead = Prefetch.Distance; // read once, before the loops: see Prefetch.Distance
        const int far = Prefetch.Far; // and into L2, farther ahead
        new Span<int>(sums, 4 * 64).Clear();
        byte* ga = g, gb = g + stride, gc = gb + stride, gd = gc + stride;
        for (int k0 = 0; k0 < kCount; k0 += KPerChunk)
        {
            int k1 = Math.Min(kCount, k0 + KPerChunk);
            Vector512<short> aE = default, aO = default, bE = default, bO = default, cE = default, cO = default, dE = default, dO = default;
            for (int k = k0; k < k1; k++)
            {
                long off = (long)k * RowGroup;
                if (Sse.IsSupported)
                {
                    Sse.Prefetch0(ga + off + ahead); Sse.Prefetch0(gb + off + ahead);
                    Sse.Prefetch0(gc + off + ahead); Sse.Prefetch0(gd + off + ahead);
                    Sse.Prefetch1(ga + off + far); Sse.Prefetch1(gb + off + far);
                    Sse.Prefetch1(gc + off + far); Sse.Prefetch1(gd + off + far);
                }
                var t0 = Vector512.Load(tables + k * 64); var t1 = Vector512.Load(tables + k * 64 + 32);
                Word512(Vector512.Load(ga + off).AsUInt16(), t0, t1, ref aE, ref aO);
                Word512(Vector512.Load(gb + off).AsUInt16(), t0, t1, ref bE, ref bO);
                Word512(Vector512.Load(gc + off).AsUInt16(), t0, t1, ref cE, ref cO);
                Word512(Vector512.Load(gd + off).AsUInt16(), t0, t1, ref dE, ref dO);
            }
            WidenInto(aE, aO, sums); WidenInto(bE, bO, sums + 64); WidenInto(cE, cO, sums + 128); WidenInto(dE, dO, sums + 192);
        }
    }

    /// <summary>
    /// AVX-512BW: the 64 index bytes of a byte-column as 32 words, word i = rows 2i (bits 7:0) and 2i + 1 (15:8).
    /// vpermw looks up 32 int16 lanes by bits 4:0 of each word, so the word itself indexes row 2i's first pair, and the
    /// word shifted right by 4, 8 and 12 index row 2i's second pair and row 2i + 1's two pairs; bit 4 is the next
    /// nibble's low bit, which the doubled table ignores. Four look-ups and three shifts per 64 bytes give int16 sums
    /// with no byte unpacking: the pshufb kernel this replaced needed four shuffles, four unpacks and three masks/shifts
    /// (thread CPU time at 4096x4096 / 11008x4096 / 4096x11008, one thread: 297 / 663 / 724 us -> 280 / 600 / 607 us).
    /// Output: natural row order.
    /// </summary>
    internal static unsafe void WordV512(byte* g, int kCount, short* tables, int* o)
    {
        int* sums = stackalloc int[64];
        WordSums512(g, kCount, tables, sums);
        Interleave(sums, o);
    }

    /// <summary><see cref="WordV512"/>'s sums as <see cref="PackedMatrix.WidenInto"/> lays them out (even rows, then odd rows).</summary>
    internal static unsafe void WordSums512(byte* g, int kCount, short* tables, int* sums)
    {
        int ahead = Prefetch.Distance; // read once, before the loops: see Prefetch.Distance
        new Span<int>(sums, 64).Clear();
        for (int k0 = 0; k0 < kCount; k0 += KPerChunk)
        {
            int k1 = Math.Min(kCount, k0 + KPerChunk);
            Vector512<short> e = default, d = default;
            for (int k = k0; k < k1; k++)
            {
                if (Sse.IsSupported) Sse.Prefetch0(g + k * RowGroup + ahead);
                Word512(Vector512.Load(g + k * RowGroup).AsUInt16(), Vector512.Load(tables + k * 64), Vector512.Load(tables + k * 64 + 32), ref e, ref d);
            }
            WidenInto(e, d, sums);
        }
    }

    private static unsafe void Interleave(int* s, int* o)
    {
        for (int i = 0; i < 32; i++) { o[2 * i] = s[i]; o[2 * i + 1] = s[32 + i]; }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Word512(Vector512<ushort> w, Vector512<short> t0, Vector512<short> t1, ref Vector512<short> even, ref Vector512<short> odd)
    {
        even += Avx512BW.PermuteVar32x16(t0, w.AsInt16()) + Avx512BW.PermuteVar32x16(t1, Vector512.ShiftRightLogical(w, 4).AsInt16());
        odd += Avx512BW.PermuteVar32x16(t0, Vector512.ShiftRightLogical(w, 8).AsInt16()) + Avx512BW.PermuteVar32x16(t1, Vector512.ShiftRightLogical(w, 12).AsInt16());
    }

    /// <summary>Coefficients of the 9 pair indices (lanes 9..15 zero): entry e = (e / 3 - 1) b0 + (e % 3 - 1) b1.</summary>
    private static readonly short[] P0 = Enumerable.Range(0, 16).Select(e => (short)(e < 9 ? PairOf(e).W0 : 0)).ToArray();
    private static readonly short[] P1 = Enumerable.Range(0, 16).Select(e => (short)(e < 9 ? PairOf(e).W1 : 0)).ToArray();

    /// <summary>The weight pair of index e = 3 w0 + w1 + 4 (e in 0..8).</summary>
    internal static (int W0, int W1) PairOf(int e) => (e / 3 - 1, e % 3 - 1);

    /// <summary>Per activation pair the 9 sums as int16 lanes, split into low and high byte tables (truncating narrows).</summary>
    internal static void BuildTables(ReadOnlySpan<sbyte> q, Span<byte> tables)
    {
        var p0 = Vector256.Create<short>(P0); var p1 = Vector256.Create<short>(P1);
        var low = Vector128.Create((ushort)0xFF);
        for (int p = 0; p < tables.Length / 32; p++)
        {
            var v = (p0 * Vector256.Create((short)q[2 * p]) + p1 * Vector256.Create((short)q[2 * p + 1])).AsUInt16();
            var t = tables.Slice(p * 32, 32);
            Vector128.Narrow(v.GetLower() & low, v.GetUpper() & low).CopyTo(t);
            Vector128.Narrow(Vector128.ShiftRightLogical(v.GetLower(), 8), Vector128.ShiftRightLogical(v.GetUpper(), 8)).CopyTo(t[16..]);
        }
    }

    protected override unsafe void MatVecCore(ActivationBuffer act, int rowStart, int rowEnd, Span<int> acc, IsaPath path)
    {
        byte* tables = ((Activations)act).TablesFor(path);
        byte* data = (byte*)Unsafe.AsPointer(ref _data.Ref);
        int g0 = rowStart / RowGroup, count = (rowEnd - rowStart + RowGroup - 1) / RowGroup;
        if (path == IsaPath.V512)
        {
            // Four groups at a time, one from each quarter of the range (see TL2.MatVecCore); the rest one at a time.
            // Sums go to acc in row order through PackedMatrix.StoreGroup (four permutes, no scalar interleave).
            int* sums = stackalloc int[4 * RowGroup];
            int quarter = count / 4;
            fixed (int* o = acc)
            {
                for (int k = 0; k < quarter; k++)
                {
                    int ga = g0 + k;
                    WordV512x4(data + (long)ga * GroupBytes, GroupBytes * (long)quarter, KCount, (short*)tables, sums);
                    for (int j = 0; j < 4; j++) StoreGroup(ga + j * quarter, sums + j * RowGroup, rowStart, rowEnd, o);
                }
                for (int g = g0 + 4 * quarter; g < g0 + count; g++)
                {
                    WordSums512(data + (long)g * GroupBytes, KCount, (short*)tables, sums);
                    StoreGroup(g, sums, rowStart, rowEnd, o);
                }
            }
            return;
        }
        int* group = stackalloc int[RowGroup];
        for (int g = g0; g < g0 + count; g++)
        {
            GroupDot(data + (long)g * GroupBytes, KCount, tables, group, path);
            Store(g, group, rowStart, rowEnd, acc);
        }
    }

    private static unsafe void Store(int g, int* group, int rowStart, int rowEnd, Span<int> acc)
    {
        int r0 = g * RowGroup, n = Math.Min(RowGroup, rowEnd - r0);
        for (int i = 0; i < n; i++) acc[r0 - rowStart + i] = group[i];
    }

    /// <summary>
    /// Sums of one 64-row group over kCount byte-columns into o[0..64), natural row order; <paramref name="tables"/> as
    /// <see cref="Activations.TablesFor"/> gives them for the path.
    /// </summary>
    internal static unsafe void GroupDot(byte* g, int kCount, byte* tables, int* o, IsaPath path)
    {
        switch (path)
        {
            case IsaPath.Scalar: GroupScalar(g, kCount, tables, o); break;
            case IsaPath.V128: GroupV128(g, kCount, tables, o); break;
            case IsaPath.V256: GroupV256(g, kCount, tables, o); break;
            default: WordV512(g, kCount, (short*)tables, o); break;
        }
    }

    internal static unsafe void GroupScalar(byte* g, int kCount, byte* tables, int* o)
    {
        for (int r = 0; r < RowGroup; r++)
        {
            int sum = 0;
            for (int k = 0; k < kCount; k++)
            {
                int b = g[k * RowGroup + r];
                byte* t0 = tables + k * 64, t1 = t0 + 32;
                sum += (short)(t0[b & 0xF] | t0[16 + (b & 0xF)] << 8) + (short)(t1[b >> 4] | t1[16 + (b >> 4)] << 8);
            }
            o[r] = sum;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<byte> Lookup(Vector128<byte> table, Vector128<byte> index) =>
        Ssse3.IsSupported ? Ssse3.Shuffle(table, index) : Vector128.Shuffle(table, index);

    internal static unsafe void GroupV128(byte* g, int kCount, byte* tables, int* o)
    {
        var nibble = Vector128.Create((byte)0x0F);
        for (int quarter = 0; quarter < 4; quarter++)
        {
            Vector128<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int k0 = 0; k0 < kCount; k0 += KPerChunk)
            {
                int k1 = Math.Min(kCount, k0 + KPerChunk);
                Vector128<short> lo = default, hi = default;
                for (int k = k0; k < k1; k++)
                {
                    var w = Vector128.Load(g + k * RowGroup + quarter * 16);
                    byte* t = tables + k * 64;
                    Pair128(w & nibble, t, ref lo, ref hi);
                    Pair128(Vector128.ShiftRightLogical(w, 4) & nibble, t + 32, ref lo, ref hi);
                }
                s0 += Vector128.WidenLower(lo); s1 += Vector128.WidenUpper(lo);
                s2 += Vector128.WidenLower(hi); s3 += Vector128.WidenUpper(hi);
            }
            int* q = o + quarter * 16;
            s0.Store(q); s1.Store(q + 4); s2.Store(q + 8); s3.Store(q + 12);
        }
    }

    /// <summary>Looks up 16 rows' int16 sums; lo gets rows 0..7, hi rows 8..15 (natural order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Pair128(Vector128<byte> index, byte* t, ref Vector128<short> lo, ref Vector128<short> hi)
    {
        var vl = Lookup(Vector128.Load(t), index);
        var vh = Lookup(Vector128.Load(t + 16), index);
        lo += (Vector128.WidenLower(vl) | Vector128.ShiftLeft(Vector128.WidenLower(vh), 8)).AsInt16();
        hi += (Vector128.WidenUpper(vl) | Vector128.ShiftLeft(Vector128.WidenUpper(vh), 8)).AsInt16();
    }

    internal static unsafe void GroupV256(byte* g, int kCount, byte* tables, int* o)
    {
        int ahead = Prefetch.Distance; // read once, before the loops: see Prefetch.Distance
        var nibble = Vector256.Create((byte)0x0F);
        Vector256<int> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
        for (int k0 = 0; k0 < kCount; k0 += KPerChunk)
        {
            int k1 = Math.Min(kCount, k0 + KPerChunk);
            Vector256<short> hA0 = default, hB0 = default, hA1 = default, hB1 = default;
            for (int k = k0; k < k1; k++)
            {
                if (Sse.IsSupported) Sse.Prefetch0(g + k * RowGroup + ahead);
                var w0 = Vector256.Load(g + k * RowGroup);
                var w1 = Vector256.Load(g + k * RowGroup + 32);
                byte* t = tables + k * 64;
                var tl = Vector256.Create(Vector128.Load(t)); var th = Vector256.Create(Vector128.Load(t + 16));
                Pair256(w0 & nibble, tl, th, ref hA0, ref hB0);
                Pair256(w1 & nibble, tl, th, ref hA1, ref hB1);
                tl = Vector256.Create(Vector128.Load(t + 32)); th = Vector256.Create(Vector128.Load(t + 48));
                Pair256(Vector256.ShiftRightLogical(w0.AsUInt16(), 4).AsByte() & nibble, tl, th, ref hA0, ref hB0);
                Pair256(Vector256.ShiftRightLogical(w1.AsUInt16(), 4).AsByte() & nibble, tl, th, ref hA1, ref hB1);
            }
            a0 += Avx2.ConvertToVector256Int32(hA0.GetLower()); a1 += Avx2.ConvertToVector256Int32(hA0.GetUpper());
            b0 += Avx2.ConvertToVector256Int32(hB0.GetLower()); b1 += Avx2.ConvertToVector256Int32(hB0.GetUpper());
            c0 += Avx2.ConvertToVector256Int32(hA1.GetLower()); c1 += Avx2.ConvertToVector256Int32(hA1.GetUpper());
            d0 += Avx2.ConvertToVector256Int32(hB1.GetLower()); d1 += Avx2.ConvertToVector256Int32(hB1.GetUpper());
        }
        // Unpack low/high work per 128-bit lane: lane L of the A sums holds rows 16 L + 0..7, of the B sums 16 L + 8..15.
        a0.Store(o); b0.Store(o + 8); a1.Store(o + 16); b1.Store(o + 24);
        c0.Store(o + 32); d0.Store(o + 40); c1.Store(o + 48); d1.Store(o + 56);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pair256(Vector256<byte> index, Vector256<byte> tl, Vector256<byte> th, ref Vector256<short> a, ref Vector256<short> b)
    {
        var vl = Avx2.Shuffle(tl, index);
        var vh = Avx2.Shuffle(th, index);
        a += Avx2.UnpackLow(vl, vh).AsInt16();
        b += Avx2.UnpackHigh(vl, vh).AsInt16();
    }

}
