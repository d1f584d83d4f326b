using Workbench.Engine.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Workbench.Engine.LowBit;

/// <summary>
/// TL2: ternary weights in triplets (w0, w1, w2) -> v = 9 w0 + 3 w1 + w2 in [-13, 13], stored as a 4-bit index |v|
/// and a sign bit (v &lt; 0): negating the triplet negates v, so 14 table entries per activation triplet cover all 27
/// combinations, 5 bits per 3 weights (~1.67 bits per weight).
/// Layout: rows in groups of 64; columns in blocks of 24 (8 triplets); per group and block 320 bytes: four 64-byte
/// index vectors (byte r = |v|(row r, triplet 2m) | |v|(row r, triplet 2m+1) &lt;&lt; 4) then 64 sign bytes (bit k of
/// byte r = sign of row r's triplet k). Columns past the last whole block (cols mod 24, at most 23) are stored as a
/// TL1 matrix (pairs); rows are padded to a multiple of 64 with zero weights.
/// </summary>
public sealed class TL2 : TernaryMatrix
{
    public const int RowGroup = 64;
    public const int BlockCols = 24;
    public const int BlockBytes = 5 * RowGroup;

    /// <summary>
    /// Blocks summed in int16 before widening: a table entry is |w0 b0 + w1 b1 + w2 b2| &lt;= 384 and each lane gets
    /// 8 entries per block, so 8 blocks reach at most 24576 &lt; 32767. Overflow is impossible.
    /// </summary>
    internal const int BlocksPerChunk = 8;

    /// <summary>The triplet whose index is |v| for v = 0..13 (the canonical sign): 9 w0 + 3 w1 + w2 = v.</summary>
    internal static readonly (int W0, int W1, int W2)[] Canonical = Enumerable.Range(0, 14).Select(v =>
    {
        for (int a = -1; a <= 1; a++) for (int b = -1; b <= 1; b++) for (int c = -1; c <= 1; c++)
            if (9 * a + 3 * b + c == v) return (a, b, c);
        throw new InvalidOperationException();
    }).ToArray();

    public int Blocks { get; }
    public int TripletCols => Blocks * BlockCols;
    /// <summary>The columns past the last whole block, as TL1 pairs; null when cols is a multiple of 24.</summary>
    public TL1? Tail { get; }
    internal int Groups => (Rows + RowGroup - 1) / RowGroup;
    internal int GroupBytes => Blocks * BlockBytes;
    public override LowBitFormat Format => LowBitFormat.TL2;
    public override long WeightBytes => base.WeightBytes + (Tail?.WeightBytes ?? 0);
    /// <summary>Bytes of a rows x cols TL2 matrix: 320 bytes per 64 rows and 24 columns, one fp32 scale, and the TL1 tail.</summary>
    public static long BytesFor(int rows, int cols) => (long)Shapes.RoundUp(rows, RowGroup) / RowGroup * (cols / BlockCols) * BlockBytes + sizeof(float)
        + (cols % BlockCols == 0 ? 0 : TL1.BytesFor(rows, cols % BlockCols));

    private TL2(int rows, int cols, float scale, TL1? tail) : base(rows, cols, scale, checked(Shapes.RoundUp(rows, RowGroup) / RowGroup * (cols / BlockCols) * BlockBytes))
    {
        Blocks = cols / BlockCols;
        Tail = tail;
    }

    private TL2(TL2 other) : base(other)
    {
        Blocks = other.Blocks;
        Tail = (TL1?)other.Tail?.CloneWeights();
    }

    public override PackedMatrix CloneWeights() => new TL2(this);

    public static TL2 Pack(TernaryWeights w) => Pack(w.Values, w.Rows, w.Cols, w.Scale);

    public static TL2 Pack(ReadOnlySpan<sbyte> ternary, int rows, int cols, float scale)
    {
        CheckTernary(ternary, rows, cols);
        int blocks = cols / BlockCols, tailCols = cols - blocks * BlockCols;
        TL1? tail = null;
        if (tailCols > 0)
        {
            var t = new sbyte[rows * tailCols];
            for (int r = 0; r < rows; r++) ternary.Slice(r * cols + blocks * BlockCols, tailCols).CopyTo(t.AsSpan(r * tailCols));
            tail = TL1.Pack(t, rows, tailCols, scale);
        }
        var m = new TL2(rows, cols, scale, tail);
        var data = m._data.Span; // zero = index 0, sign + : weight 0, also for padded rows
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < blocks; b++)
            {
                var block = data.Slice(r / RowGroup * m.GroupBytes + b * BlockBytes, BlockBytes);
                for (int k = 0; k < 8; k++)
                {
                    int c = b * BlockCols + 3 * k;
                    int v = 9 * ternary[r * cols + c] + 3 * ternary[r * cols + c + 1] + ternary[r * cols + c + 2];
                    block[k / 2 * RowGroup + r % RowGroup] |= (byte)(Math.Abs(v) << (4 * (k % 2)));
                    if (v < 0) block[4 * RowGroup + r % RowGroup] |= (byte)(1 << k);
                }
            }
        return m;
    }

    public override sbyte[] Unpack()
    {
        var t = new sbyte[(long)Rows * Cols];
        var data = _data.Span;
        for (int r = 0; r < Rows; r++)
            for (int b = 0; b < Blocks; b++)
            {
                var block = data.Slice(r / RowGroup * GroupBytes + b * BlockBytes, BlockBytes);
                for (int k = 0; k < 8; k++)
                {
                    int index = (block[k / 2 * RowGroup + r % RowGroup] >> (4 * (k % 2))) & 0xF;
                    int sign = (block[4 * RowGroup + r % RowGroup] >> k & 1) == 1 ? -1 : 1;
                    var (w0, w1, w2) = Canonical[index];
                    int c = r * Cols + b * BlockCols + 3 * k;
                    t[c] = (sbyte)(sign * w0); t[c + 1] = (sbyte)(sign * w1); t[c + 2] = (sbyte)(sign * w2);
                }
            }
        if (Tail != null)
        {
            var tail = Tail.Unpack();
            for (int r = 0; r < Rows; r++) tail.AsSpan(r * Tail.Cols, Tail.Cols).CopyTo(t.AsSpan(r * Cols + TripletCols));
        }
        return t;
    }

    public override ActivationBuffer CreateActivationBuffer() => new Activations(this);
    protected override Type CreateActivationBufferType => typeof(Activations);

    /// <summary>Per activation triplet: 32 bytes, low then high bytes of the 14 sums (slots 14, 15 zero); plus the tail's TL1 tables.</summary>
    public sealed class Activations : ActivationBuffer
    {
        private readonly AlignedBuffer<byte> _tables;
        private readonly AlignedBuffer<short> _signed;
        private readonly int _tripletCols;
        internal readonly TL1.Activations? Tail;

        internal Activations(TL2 m) : base(m.Cols, m.Cols)
        {
            _tripletCols = m.TripletCols;
            _tables = new AlignedBuffer<byte>(m.Blocks * 8 * 32);
            _signed = new AlignedBuffer<short>(m.Blocks * 8 * 32);
            Tail = (TL1.Activations?)m.Tail?.CreateActivationBuffer();
        }

        internal ref byte TablesRef => ref _tables.Ref;
        /// <summary>Low/high byte tables (Scalar, V128, V256 paths).</summary>
        public ReadOnlySpan<byte> Tables => _tables.Span;
        internal ref short SignedTablesRef => ref _signed.Ref;
        /// <summary>V512 tables: per triplet 32 int16, entry |v| at |v| and -entry at 16 + |v| (slots 14, 15, 30, 31 zero).</summary>
        public ReadOnlySpan<short> SignedTables => _signed.Span;

        protected override void Build(IsaPath path)
        {
            if (path == IsaPath.V512) BuildSignedTables(Q, _signed.Span);
            else BuildTables(Q, _tables.Span);
            if (Tail != null)
                Tail.Load(Q[_tripletCols..], Scale, path);
        }
    }

    /// <summary>Coefficient vectors of the 14 canonical triplets (lanes 14, 15 zero): entry e = C0[e] b0 + C1[e] b1 + C2[e] b2.</summary>
    private static readonly short[] C0 = Coefficients(t => t.W0), C1 = Coefficients(t => t.W1), C2 = Coefficients(t => t.W2);
    private static short[] Coefficients(Func<(int W0, int W1, int W2), int> pick) =>
        Enumerable.Range(0, 16).Select(e => (short)(e < 14 ? pick(Canonical[e]) : 0)).ToArray();

    /// <summary>
    /// Per activation triplet the 14 sums as 16 int16 lanes (one vector multiply-add per coefficient), split into
    /// the low-byte and high-byte 16-byte tables by truncating narrows. Runs once per token; a scalar loop here cost
    /// tens of microseconds per 4096 columns.
    /// </summary>
    internal static void BuildTables(ReadOnlySpan<sbyte> q, Span<byte> tables)
    {
        var c0 = Vector256.Create<short>(C0); var c1 = Vector256.Create<short>(C1); var c2 = Vector256.Create<short>(C2);
        var low = Vector128.Create((ushort)0xFF);
        for (int tr = 0; tr < tables.Length / 32; tr++)
        {
            var v = (c0 * Vector256.Create((short)q[3 * tr]) + c1 * Vector256.Create((short)q[3 * tr + 1]) + c2 * Vector256.Create((short)q[3 * tr + 2])).AsUInt16();
            var t = tables.Slice(tr * 32, 32);
            Vector128.Narrow(v.GetLower() & low, v.GetUpper() & low).CopyTo(t);
            Vector128.Narrow(Vector128.ShiftRightLogical(v.GetLower(), 8), Vector128.ShiftRightLogical(v.GetUpper(), 8)).CopyTo(t[16..]);
        }
    }

    private static readonly short[] S0 = SignedCoefficients(C0), S1 = SignedCoefficients(C1), S2 = SignedCoefficients(C2);
    private static short[] SignedCoefficients(short[] c) => c.Concat(c.Select(v => (short)-v)).ToArray();

    /// <summary>
    /// V512 tables: the sign is folded into the index (sign &lt;&lt; 4 | |v|), so one 32-entry int16 table per triplet
    /// (one zmm) holds every signed sum and vpermw looks 32 rows up at once with no unpacking and no sign fix-up.
    /// </summary>
    internal static void BuildSignedTables(ReadOnlySpan<sbyte> q, Span<short> tables)
    {
        var c0 = Vector512.Create<short>(S0); var c1 = Vector512.Create<short>(S1); var c2 = Vector512.Create<short>(S2);
        for (int tr = 0; tr < tables.Length / 32; tr++)
            (c0 * Vector512.Create((short)q[3 * tr]) + c1 * Vector512.Create((short)q[3 * tr + 1]) + c2 * Vector512.Create((short)q[3 * tr + 2]))
                .CopyTo(tables.Slice(tr * 32, 32));
    }

    protected override unsafe void MatVecCore(ActivationBuffer act, int rowStart, int rowEnd, Span<int> acc, IsaPath path)
    {
        var a = (Activations)act;
        byte* data = (byte*)Unsafe.AsPointer(ref _data.Ref);
        byte* tailData = Tail == null ? null : (byte*)Unsafe.AsPointer(ref MemoryMarshalRef(Tail));
        byte* tailTables = a.Tail == null ? null : a.Tail.TablesFor(path);
        int g0 = rowStart / RowGroup, count = (rowEnd - rowStart + RowGroup - 1) / RowGroup;
        if (path == IsaPath.V512)
        {
            // Four groups at a time, one from each quarter of the range: four memory streams, one set of table loads
            // (4096x4096 cold: 300 / 190 us with pairs, 265 / 143 us with quads, 1 / 2 threads). The rest (at most 3
            // groups) go one at a time. The TL1 tail columns are summed inside the kernels (same even / odd int16
            // lanes), and the sums are put in row order with four two-source permutes straight into acc: the scalar
            // tail pass, interleave and copy this replaced cost ~500 instructions per 64-row group, 5-8% of a group's
            // work at 2560-4096 columns.
            byte* tables = (byte*)Unsafe.AsPointer(ref a.SignedTablesRef);
            int tailK = Tail?.KCount ?? 0;
            long tailGroup = Tail?.GroupBytes ?? 0;
            int* sums = stackalloc int[4 * RowGroup];
            int quarter = count / 4;
            fixed (int* o = acc)
            {
                for (int k = 0; k < quarter; k++)
                {
                    int ga = g0 + k;
                    GroupV512x4(data + (long)ga * GroupBytes, GroupBytes * (long)quarter, Blocks, tables,
                        tailData + ga * tailGroup, tailGroup * quarter, tailK, (short*)tailTables, sums);
                    for (int j = 0; j < 4; j++) StoreGroup(ga + j * quarter, sums + j * RowGroup, rowStart, rowEnd, o);
                }
                for (int g = g0 + 4 * quarter; g < g0 + count; g++)
                {
                    GroupV512(data + (long)g * GroupBytes, Blocks, tables, tailData + g * tailGroup, tailK, (short*)tailTables, sums);
                    StoreGroup(g, sums, rowStart, rowEnd, o);
                }
            }
            return;
        }
        byte* byteTables = (byte*)Unsafe.AsPointer(ref a.TablesRef);
        int* group = stackalloc int[RowGroup];
        int* tail = stackalloc int[RowGroup];
        for (int g = g0; g < g0 + count; g++)
        {
            GroupDot(data + (long)g * GroupBytes, Blocks, byteTables, group, path);
            Finish(g, group, tail, tailData, tailTables, rowStart, rowEnd, acc, path);
        }
    }

    /// <summary>Adds the TL1 tail columns of group g and stores its rows that fall in [rowStart, rowEnd).</summary>
    private unsafe void Finish(int g, int* group, int* tail, byte* tailData, byte* tailTables, int rowStart, int rowEnd, Span<int> acc, IsaPath path)
    {
        if (Tail != null)
        {
            TL1.GroupDot(tailData + (long)g * Tail.GroupBytes, Tail.KCount, tailTables, tail, path);
            for (int i = 0; i < RowGroup; i++) group[i] += tail[i];
        }
        int r0 = g * RowGroup, n = Math.Min(RowGroup, rowEnd - r0);
        for (int i = 0; i < n; i++) acc[r0 - rowStart + i] = group[i];
    }

    private static ref byte MemoryMarshalRef(TL1 m) => ref System.Runtime.InteropServices.MemoryMarshal.GetReference(m.Data);

    internal static unsafe void GroupDot(byte* g, int blocks, byte* tables, int* o, IsaPath path)
    {
        switch (path)
        {
            case IsaPath.Scalar: GroupScalar(g, blocks, tables, o); break;
            case IsaPath.V128: GroupV128(g, blocks, tables, o); break;
            case IsaPath.V256: GroupV256(g, blocks, tables, o); break;
            default:
                int* sums = stackalloc int[RowGroup];
                GroupV512(g, blocks, tables, null, 0, null, sums);
                Interleave(sums, o);
                break;
        }
    }

    internal static unsafe void GroupScalar(byte* g, int blocks, byte* tables, int* o)
    {
        for (int r = 0; r < RowGroup; r++)
        {
            int sum = 0;
            for (int b = 0; b < blocks; b++)
            {
                byte* block = g + b * BlockBytes;
                int signs = block[4 * RowGroup + r];
                for (int k = 0; k < 8; k++)
                {
                    int index = (block[k / 2 * RowGroup + r] >> (4 * (k % 2))) & 0xF;
                    byte* t = tables + (b * 8 + k) * 32;
                    int v = (short)(t[index] | t[16 + index] << 8);
                    sum += (signs >> k & 1) == 1 ? -v : v;
                }
            }
            o[r] = sum;
        }
    }

    internal static unsafe void GroupV128(byte* g, int blocks, byte* tables, int* o)
    {
        var nibble = Vector128.Create((byte)0x0F);
        var one = Vector128.Create((byte)1);
        for (int quarter = 0; quarter < 4; quarter++)
        {
            Vector128<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int b0 = 0; b0 < blocks; b0 += BlocksPerChunk)
            {
                int b1 = Math.Min(blocks, b0 + BlocksPerChunk);
                Vector128<short> lo = default, hi = default;
                for (int b = b0; b < b1; b++)
                {
                    byte* block = g + b * BlockBytes + quarter * 16;
                    var signs = Vector128.Load(block + 4 * RowGroup);
                    byte* t = tables + b * 8 * 32;
                    for (int m = 0; m < 4; m++)
                    {
                        var w = Vector128.Load(block + m * RowGroup);
                        Triplet128(w & nibble, t + 64 * m, Vector128<byte>.Zero - (Vector128.ShiftRightLogical(signs, 2 * m) & one), ref lo, ref hi);
                        Triplet128(Vector128.ShiftRightLogical(w, 4) & nibble, t + 64 * m + 32, Vector128<byte>.Zero - (Vector128.ShiftRightLogical(signs, 2 * m + 1) & one), ref lo, ref hi);
                    }
                }
                s0 += Vector128.WidenLower(lo); s1 += Vector128.WidenUpper(lo);
                s2 += Vector128.WidenLower(hi); s3 += Vector128.WidenUpper(hi);
            }
            int* q = o + quarter * 16;
            s0.Store(q); s1.Store(q + 4); s2.Store(q + 8); s3.Store(q + 12);
        }
    }

    /// <summary>16 rows' signed int16 sums: (x + m) ^ m with m = 0 or -1 negates where the sign bit is set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Triplet128(Vector128<byte> index, byte* t, Vector128<byte> sign, ref Vector128<short> lo, ref Vector128<short> hi)
    {
        var vl = TL1.Lookup(Vector128.Load(t), index);
        var vh = TL1.Lookup(Vector128.Load(t + 16), index);
        var x0 = (Vector128.WidenLower(vl) | Vector128.ShiftLeft(Vector128.WidenLower(vh), 8)).AsInt16();
        var x1 = (Vector128.WidenUpper(vl) | Vector128.ShiftLeft(Vector128.WidenUpper(vh), 8)).AsInt16();
        var m0 = Vector128.WidenLower(sign.AsSByte());
        var m1 = Vector128.WidenUpper(sign.AsSByte());
        lo += (x0 + m0) ^ m0;
        hi += (x1 + m1) ^ m1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void PrefetchBlock(byte* p, bool toL2 = false) // toL2 is a constant at every call: no branch left
    {
        if (!Sse.IsSupported) return;
        if (toL2) { Sse.Prefetch1(p); Sse.Prefetch1(p + 64); Sse.Prefetch1(p + 128); Sse.Prefetch1(p + 192); Sse.Prefetch1(p + 256); }
        else { Sse.Prefetch0(p); Sse.Prefetch0(p + 64); Sse.Prefetch0(p + 128); Sse.Prefetch0(p + 192); Sse.Prefetch0(p + 256); }
    }

    internal static unsafe void GroupV256(byte* g, int blocks, byte* tables, int* o)
    {
        int ahead = Prefetch.Distance; // read once, before the loops: see Prefetch.Distance
        var nibble = Vector256.Create((byte)0x0F);
        var one = Vector256.Create((byte)1);
        Vector256<int> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
        for (int bs = 0; bs < blocks; bs += BlocksPerChunk)
        {
            int be = Math.Min(blocks, bs + BlocksPerChunk);
            Vector256<short> hA0 = default, hB0 = default, hA1 = default, hB1 = default;
            for (int b = bs; b < be; b++)
            {
                byte* block = g + b * BlockBytes;
                PrefetchBlock(block + ahead);
                var sg0 = Vector256.Load(block + 4 * RowGroup).AsUInt16();
                var sg1 = Vector256.Load(block + 4 * RowGroup + 32).AsUInt16();
                byte* t = tables + b * 8 * 32;
                for (int m = 0; m < 4; m++)
                {
                    var w0 = Vector256.Load(block + m * RowGroup);
                    var w1 = Vector256.Load(block + m * RowGroup + 32);
                    var tl = Vector256.Create(Vector128.Load(t + 64 * m)); var th = Vector256.Create(Vector128.Load(t + 64 * m + 16));
                    Triplet256(w0 & nibble, tl, th, Vector256<byte>.Zero - (Vector256.ShiftRightLogical(sg0, 2 * m).AsByte() & one), ref hA0, ref hB0);
                    Triplet256(w1 & nibble, tl, th, Vector256<byte>.Zero - (Vector256.ShiftRightLogical(sg1, 2 * m).AsByte() & one), ref hA1, ref hB1);
                    tl = Vector256.Create(Vector128.Load(t + 64 * m + 32)); th = Vector256.Create(Vector128.Load(t + 64 * m + 48));
                    Triplet256(Vector256.ShiftRightLogical(w0.AsUInt16(), 4).AsByte() & nibble, tl, th, Vector256<byte>.Zero - (Vector256.ShiftRightLogical(sg0, 2 * m + 1).AsByte() & one), ref hA0, ref hB0);
                    Triplet256(Vector256.ShiftRightLogical(w1.AsUInt16(), 4).AsByte() & nibble, tl, th, Vector256<byte>.Zero - (Vector256.ShiftRightLogical(sg1, 2 * m + 1).AsByte() & one), ref hA1, ref hB1);
                }
            }
            a0 += Avx2.ConvertToVector256Int32(hA0.GetLower()); a1 += Avx2.ConvertToVector256Int32(hA0.GetUpper());
            b0 += Avx2.ConvertToVector256Int32(hB0.GetLower()); b1 += Avx2.ConvertToVector256Int32(hB0.GetUpper());
            c0 += Avx2.ConvertToVector256Int32(hA1.GetLower()); c1 += Avx2.ConvertToVector256Int32(hA1.GetUpper());
            d0 += Avx2.ConvertToVector256Int32(hB1.GetLower()); d1 += Avx2.ConvertToVector256Int32(hB1.GetUpper());
        }
        a0.Store(o); b0.Store(o + 8); a1.Store(o + 16); b1.Store(o + 24);
        c0.Store(o + 32); d0.Store(o + 40); c1.Store(o + 48); d1.Store(o + 56);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Triplet256(Vector256<byte> index, Vector256<byte> tl, Vector256<byte> th, Vector256<byte> sign, ref Vector256<short> a, ref Vector256<short> b)
    {
        var vl = Avx2.Shuffle(tl, index);
        var vh = Avx2.Shuffle(th, index);
        var ma = Avx2.UnpackLow(sign, sign).AsInt16();
        var mb = Avx2.UnpackHigh(sign, sign).AsInt16();
        a += (Avx2.UnpackLow(vl, vh).AsInt16() + ma) ^ ma;
        b += (Avx2.UnpackHigh(vl, vh).AsInt16() + mb) ^ mb;
    }

    /// <summary>
    /// AVX-512BW: per triplet, the 5-bit index sign &lt;&lt; 4 | |v| of 64 rows is formed in bytes (one bit-select of the
    /// nibble and the shifted sign byte); vpermw reads only bits 4:0 of each 16-bit index, so the word itself indexes
    /// the even row and the word shifted right by 8 the odd row: two table look-ups give 64 signed int16 sums.
    /// </summary>
    internal static unsafe void GroupV512(byte* g, int blocks, byte* tables, byte* tail, int tailK, short* tailTables, int* sums)
    {
        int ahead = Prefetch.Distance; // read once, before the loops: see Prefetch.Distance
        var nibble = Vector512.Create((byte)0x0F);
        new Span<int>(sums, RowGroup).Clear();
        for (int bs = 0; bs < blocks; bs += BlocksPerChunk)
        {
            int be = Math.Min(blocks, bs + BlocksPerChunk);
            Vector512<short> even = default, odd = default;
            for (int b = bs; b < be; b++)
            {
                byte* block = g + b * BlockBytes;
                PrefetchBlock(block + ahead);
                var sg = Vector512.Load(block + 4 * RowGroup).AsUInt16();
                short* t = (short*)tables + b * 8 * 32;
                var w0 = Vector512.Load(block).AsUInt16();
                var w1 = Vector512.Load(block + RowGroup).AsUInt16();
                var w2 = Vector512.Load(block + 2 * RowGroup).AsUInt16();
                var w3 = Vector512.Load(block + 3 * RowGroup).AsUInt16();
                Signed512(w0, Vector512.ShiftLeft(sg, 4), nibble, t, ref even, ref odd);
                Signed512(Vector512.ShiftRightLogical(w0, 4), Vector512.ShiftLeft(sg, 3), nibble, t + 32, ref even, ref odd);
                Signed512(w1, Vector512.ShiftLeft(sg, 2), nibble, t + 64, ref even, ref odd);
                Signed512(Vector512.ShiftRightLogical(w1, 4), Vector512.ShiftLeft(sg, 1), nibble, t + 96, ref even, ref odd);
                Signed512(w2, sg, nibble, t + 128, ref even, ref odd);
                Signed512(Vector512.ShiftRightLogical(w2, 4), Vector512.ShiftRightLogical(sg, 1), nibble, t + 160, ref even, ref odd);
                Signed512(w3, Vector512.ShiftRightLogical(sg, 2), nibble, t + 192, ref even, ref odd);
                Signed512(Vector512.ShiftRightLogical(w3, 4), Vector512.ShiftRightLogical(sg, 3), nibble, t + 224, ref even, ref odd);
            }
            WidenInto(even, odd, sums);
        }
        if (tailK > 0)
        {
            // The TL1 tail: at most 6 byte-columns (23 columns), far below TL1.KPerChunk, in one int16 chunk.
            Vector512<short> even = default, odd = default;
            for (int k = 0; k < tailK; k++)
                TL1.Word512(Vector512.Load(tail + k * RowGroup).AsUInt16(), Vector512.Load(tailTables + k * 64), Vector512.Load(tailTables + k * 64 + 32), ref even, ref odd);
            WidenInto(even, odd, sums);
        }
    }

    /// <summary>
    /// <see cref="GroupV512"/> on four groups at once, <paramref name="stride"/> bytes apart (one per quarter of the
    /// range): four memory streams, one set of table loads. The int32 sums live in a stack block between chunks so the
    /// four groups' int16 sums fit the 32 registers.
    /// </summary>
    internal static unsafe void GroupV512x4(byte* g, long stride, int blocks, byte* tables, byte* tail, long tailStride, int tailK, short* tailTables, int* sums)
    {
        int ahead = Prefetch.Distance; // read once, before the loops: see Prefetch.Distance
        var nibble = Vector512.Create((byte)0x0F);
        new Span<int>(sums, 4 * 64).Clear();
        byte* ga = g, gb = g + stride, gc = gb + stride, gd = gc + stride;
        const int far = Prefetch.Far; // and into L2, farther ahead
        for (int bs = 0; bs < blocks; bs += BlocksPerChunk)
        {
            int be = Math.Min(blocks, bs + BlocksPerChunk);
            Vector512<short> aE = default, aO = default, bE = default, bO = default, cE = default, cO = default, dE = default, dO = default;
            for (int b = bs; b < be; b++)
            {
                long off = (long)b * BlockBytes;
                PrefetchBlock(ga + off + ahead); PrefetchBlock(gb + off + ahead);
                PrefetchBlock(gc + off + ahead); PrefetchBlock(gd + off + ahead);
                PrefetchBlock(ga + off + far, toL2: true); PrefetchBlock(gb + off + far, toL2: true);
                PrefetchBlock(gc + off + far, toL2: true); PrefetchBlock(gd + off + far, toL2: true);
                var sa = Vector512.Load(ga + off + 4 * RowGroup).AsUInt16();
                var sb = Vector512.Load(gb + off + 4 * RowGroup).AsUInt16();
                var sc = Vector512.Load(gc + off + 4 * RowGroup).AsUInt16();
                var sd = Vector512.Load(gd + off + 4 * RowGroup).AsUInt16();
                short* t = (short*)tables + b * 8 * 32;
                // The four weight vectors of a block written out: the JIT does not unroll a loop over m, and with m a
                // loop variable each sign shift became a branch, a vmovd and a shift by a register (vmovd and the
                // shift both use the shuffle port that the 16 vpermw per m saturate). Kernel alone, weights in L2,
                // 256 rows, one thread: 11.2 -> 9.8 us at 4096 columns, 18.9 -> 15.8-16.4 us at 6912.
                Column4(t, ga + off, gb + off, gc + off, gd + off, sa, sb, sc, sd, 0, nibble, ref aE, ref aO, ref bE, ref bO, ref cE, ref cO, ref dE, ref dO);
                Column4(t, ga + off, gb + off, gc + off, gd + off, sa, sb, sc, sd, 1, nibble, ref aE, ref aO, ref bE, ref bO, ref cE, ref cO, ref dE, ref dO);
                Column4(t, ga + off, gb + off, gc + off, gd + off, sa, sb, sc, sd, 2, nibble, ref aE, ref aO, ref bE, ref bO, ref cE, ref cO, ref dE, ref dO);
                Column4(t, ga + off, gb + off, gc + off, gd + off, sa, sb, sc, sd, 3, nibble, ref aE, ref aO, ref bE, ref bO, ref cE, ref cO, ref dE, ref dO);
            }
            WidenInto(aE, aO, sums); WidenInto(bE, bO, sums + 64); WidenInto(cE, cO, sums + 128); WidenInto(dE, dO, sums + 192);
        }
        if (tailK > 0)
        {
            // The four groups' TL1 tail columns (see GroupV512), one int16 chunk.
            Vector512<short> aE = default, aO = default, bE = default, bO = default, cE = default, cO = default, dE = default, dO = default;
            byte* ta = tail, tb = tail + tailStride, tc = tb + tailStride, td = tc + tailStride;
            for (int k = 0; k < tailK; k++)
            {
                var t0 = Vector512.Load(tailTables + k * 64); var t1 = Vector512.Load(tailTables + k * 64 + 32);
                long off = (long)k * RowGroup;
                TL1.Word512(Vector512.Load(ta + off).AsUInt16(), t0, t1, ref aE, ref aO);
                TL1.Word512(Vector512.Load(tb + off).AsUInt16(), t0, t1, ref bE, ref bO);
                TL1.Word512(Vector512.Load(tc + off).AsUInt16(), t0, t1, ref cE, ref cO);
                TL1.Word512(Vector512.Load(td + off).AsUInt16(), t0, t1, ref dE, ref dO);
            }
            WidenInto(aE, aO, sums); WidenInto(bE, bO, sums + 64); WidenInto(cE, cO, sums + 128); WidenInto(dE, dO, sums + 192);
        }
    }

    /// <summary>
    /// Weight vector m of a block (triplets 2m and 2m + 1) for the four groups of <see cref="GroupV512x4"/>; m is a
    /// constant at every call, so the sign shifts fold to immediates.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Column4(short* t, byte* a, byte* b, byte* c, byte* d, Vector512<ushort> sa, Vector512<ushort> sb,
        Vector512<ushort> sc, Vector512<ushort> sd, int m, Vector512<byte> nibble, ref Vector512<short> aE, ref Vector512<short> aO,
        ref Vector512<short> bE, ref Vector512<short> bO, ref Vector512<short> cE, ref Vector512<short> cO, ref Vector512<short> dE, ref Vector512<short> dO)
    {
        var t0 = Vector512.Load(t + 64 * m);
        var t1 = Vector512.Load(t + 64 * m + 32);
        var wa = Vector512.Load(a + m * RowGroup).AsUInt16();
        var wb = Vector512.Load(b + m * RowGroup).AsUInt16();
        var wc = Vector512.Load(c + m * RowGroup).AsUInt16();
        var wd = Vector512.Load(d + m * RowGroup).AsUInt16();
        Signed512(t0, wa, Shift(sa, 4 - 2 * m), nibble, ref aE, ref aO);
        Signed512(t0, wb, Shift(sb, 4 - 2 * m), nibble, ref bE, ref bO);
        Signed512(t0, wc, Shift(sc, 4 - 2 * m), nibble, ref cE, ref cO);
        Signed512(t0, wd, Shift(sd, 4 - 2 * m), nibble, ref dE, ref dO);
        Signed512(t1, Vector512.ShiftRightLogical(wa, 4), Shift(sa, 3 - 2 * m), nibble, ref aE, ref aO);
        Signed512(t1, Vector512.ShiftRightLogical(wb, 4), Shift(sb, 3 - 2 * m), nibble, ref bE, ref bO);
        Signed512(t1, Vector512.ShiftRightLogical(wc, 4), Shift(sc, 3 - 2 * m), nibble, ref cE, ref cO);
        Signed512(t1, Vector512.ShiftRightLogical(wd, 4), Shift(sd, 3 - 2 * m), nibble, ref dE, ref dO);
    }

    /// <summary>int32 sums laid out [even rows 0..31, odd rows 0..31] to natural row order.</summary>
    private static unsafe void Interleave(int* s, int* o)
    {
        for (int i = 0; i < 32; i++) { o[2 * i] = s[i]; o[2 * i + 1] = s[32 + i]; }
    }

    /// <summary>Shift left by k (right by -k) in 16-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ushort> Shift(Vector512<ushort> v, int k) => k >= 0 ? Vector512.ShiftLeft(v, k) : Vector512.ShiftRightLogical(v, -k);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Signed512(Vector512<short> table, Vector512<ushort> w, Vector512<ushort> s, Vector512<byte> nibble, ref Vector512<short> even, ref Vector512<short> odd)
    {
        var index = Vector512.ConditionalSelect(nibble, w.AsByte(), s.AsByte()).AsInt16();
        even += Avx512BW.PermuteVar32x16(table, index);
        odd += Avx512BW.PermuteVar32x16(table, Vector512.ShiftRightLogical(index, 8));
    }

    /// <summary>
    /// One triplet of 64 rows: w holds |v| in the low nibble of each byte (bits 7:4 are ignored), s the row's sign bit
    /// at bit 4 of each byte; index = nibble ? w : s. Look-ups in the triplet's 32-entry signed table.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Signed512(Vector512<ushort> w, Vector512<ushort> s, Vector512<byte> nibble, short* t, ref Vector512<short> even, ref Vector512<short> odd) =>
        Signed512(Vector512.Load(t), w, s, nibble, ref even, ref odd);

}
