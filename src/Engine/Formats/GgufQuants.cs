using System.Buffers.Binary;

namespace Workbench.Engine.Formats;

/// <summary>Dequantizes whole blocks: <c>blocks</c> holds n blocks of one type, <c>dst</c> gets n * block size floats.</summary>
public delegate void GgmlToFloat(ReadOnlySpan<byte> blocks, Span<float> dst);

/// <summary>
/// One ggml tensor type as stored: elements per block, bytes per block, bytes after the last block (bitnet.cpp's
/// I2_S keeps its scale there), and the dequantizer (null: the layout is known, so files list, but values are not read).
/// </summary>
public sealed record GgmlTypeTraits(GgmlType Type, int BlockSize, int BlockBytes, GgmlToFloat? ToFloat, int TrailerBytes = 0)
{
    /// <summary>Bytes of a tensor of <paramref name="elements"/> values (a whole number of blocks).</summary>
    public long ByteLength(long elements) => elements / BlockSize * BlockBytes + TrailerBytes;
}

/// <summary>
/// A ternary tensor read without going through fp32: value i is <c>Values[i] * Scales[i / ScaleBlock]</c>, row-major
/// [Rows, Cols]. TQ1_0 / TQ2_0 have one fp16 scale per 256 values, I2_S one float32 scale for the whole tensor.
/// </summary>
public sealed record GgufTernary(GgmlType Type, sbyte[] Values, int Rows, int Cols, float[] Scales, int ScaleBlock);

/// <summary>A tensor source that can hand out ternary tensors as codes and scales (GGUF TQ1_0, TQ2_0, I2_S).</summary>
public interface ITernaryTensors
{
    /// <summary>The codes and scales of a ternary-typed tensor; false for every other type.</summary>
    bool TryReadTernary(string name, out GgufTernary? ternary);
}

/// <summary>
/// ggml's tensor types in one table, in the spirit of ggml.c's type_traits, with dequantizers that give what ggml's
/// reference <c>to_float</c> (ggml-quants.c, compiled without FMA) gives, bit for bit: fp16 scales are widened exactly,
/// then the same float multiplies and subtracts in the same order. Nothing here may be fused into an FMA.
/// </summary>
public static class GgufQuants
{
    private static readonly GgmlTypeTraits[] All =
    [
        new(GgmlType.F32, 1, 4, (s, d) => DTypes.ToF32(DType.F32, s, d)),
        new(GgmlType.F16, 1, 2, (s, d) => DTypes.ToF32(DType.F16, s, d)),
        new(GgmlType.BF16, 1, 2, (s, d) => DTypes.ToF32(DType.BF16, s, d)),
        new(GgmlType.Q4_0, 32, 18, Q4_0),
        new(GgmlType.Q4_1, 32, 20, Q4_1),
        new(GgmlType.Q5_0, 32, 22, Q5_0),
        new(GgmlType.Q5_1, 32, 24, Q5_1),
        new(GgmlType.Q8_0, 32, 34, Q8_0),
        new(GgmlType.Q2_K, 256, 84, Q2_K),
        new(GgmlType.Q3_K, 256, 110, Q3_K),
        new(GgmlType.Q4_K, 256, 144, Q4_K),
        new(GgmlType.Q5_K, 256, 176, Q5_K),
        new(GgmlType.Q6_K, 256, 210, Q6_K),
        new(GgmlType.TQ1_0, 256, 54, (s, d) => Ternary(GgmlType.TQ1_0, s, d)),
        new(GgmlType.TQ2_0, 256, 66, (s, d) => Ternary(GgmlType.TQ2_0, s, d)),
        // bitnet.cpp's x86 layout: 32-byte groups of 128 codes, then one float32 scale padded to 32 bytes.
        // Its dequantizer needs that scale, so it is dispatched per tensor (see Dequantize).
        new(GgmlType.I2_S, I2sBlock, I2sBlock / 4, null, TrailerBytes: 32),
        // Layouts only: these list and size correctly but do not dequantize.
        new(GgmlType.F64, 1, 8, null), new(GgmlType.I8, 1, 1, null), new(GgmlType.I16, 1, 2, null),
        new(GgmlType.I32, 1, 4, null), new(GgmlType.I64, 1, 8, null),
        new(GgmlType.Q8_1, 32, 36, null), new(GgmlType.Q8_K, 256, 292, null),
        new(GgmlType.IQ2_XXS, 256, 66, null), new(GgmlType.IQ2_XS, 256, 74, null), new(GgmlType.IQ3_XXS, 256, 98, null),
        new(GgmlType.IQ1_S, 256, 50, null), new(GgmlType.IQ4_NL, 32, 18, null), new(GgmlType.IQ3_S, 256, 110, null),
        new(GgmlType.IQ2_S, 256, 82, null), new(GgmlType.IQ4_XS, 256, 136, null), new(GgmlType.IQ1_M, 256, 56, null),
        new(GgmlType.MXFP4, 32, 17, null),
    ];

    private static readonly Dictionary<GgmlType, GgmlTypeTraits> ByType = All.ToDictionary(t => t.Type);

    private const int I2sBlock = 128;

    /// <summary>The traits of a type id, or null when ggml (and bitnet.cpp) have no such type.</summary>
    public static GgmlTypeTraits? Traits(GgmlType type) => ByType.GetValueOrDefault(type);

    /// <summary>The types that read as float32 (the ternary ones also as <see cref="GgufTernary"/>).</summary>
    public static IReadOnlyList<GgmlType> Supported { get; } =
        [.. All.Where(t => t.ToFloat is not null || t.Type == GgmlType.I2_S).Select(t => t.Type)];

    public static bool IsTernary(GgmlType type) => type is GgmlType.TQ1_0 or GgmlType.TQ2_0 or GgmlType.I2_S;

    /// <summary>Dequantizes one whole tensor's stored bytes (<paramref name="data"/>, trailer included) into dst.</summary>
    public static void Dequantize(GgmlType type, ReadOnlySpan<byte> data, Span<float> dst)
    {
        var t = Traits(type);
        if (t is null || !Supported.Contains(type)) throw new NotSupportedException($"ggml type {type} does not dequantize");
        if (dst.Length % t.BlockSize != 0 || data.Length != t.ByteLength(dst.Length))
            throw new ArgumentException($"{data.Length} bytes of {type} do not hold {dst.Length} values");
        if (type == GgmlType.I2_S) I2S(data[..^t.TrailerBytes], dst, I2sScale(data, dst.Length));
        else t.ToFloat!(data, dst);
    }

    /// <summary>Reads a validated GGUF tensor as float32.</summary>
    internal static float[] ReadF32(MappedFile file, TensorEntry e, GgmlType type)
    {
        var t = Traits(type);
        if (t is null || !Supported.Contains(type))
            throw new ModelFormatException(file.Path, $"tensor '{e.Name}'.type", e.ByteOffset,
                $"ggml type {type} is not supported for reading as float32 (supported: {SupportedList})");
        var result = new float[Check(file, e, t)];
        float scale = type == GgmlType.I2_S ? I2sScale(file, e) : 0;
        GgmlToFloat toFloat = t.ToFloat ?? ((s, d) => I2S(s, d, scale));
        ForEachChunk(file, e, t, (first, src) => toFloat(src, result.AsSpan((int)(first * t.BlockSize), src.Length / t.BlockBytes * t.BlockSize)));
        return result;
    }

    /// <summary>
    /// The ternary values and scales of a TQ1_0, TQ2_0 or I2_S tensor, straight from its stored bytes; false for
    /// any other type. Multiplying back (<c>(float)value * scale</c>) is exactly ggml's dequantization.
    /// </summary>
    internal static bool TryReadTernary(MappedFile file, TensorEntry e, GgmlType type, out GgufTernary? ternary)
    {
        ternary = null;
        if (!IsTernary(type)) return false;
        var t = Traits(type)!;
        long n = Check(file, e, t), cols = e.Shape[^1];
        var values = new sbyte[n];
        bool i2s = type == GgmlType.I2_S;
        float[] scales = i2s ? [I2sScale(file, e)] : new float[n / t.BlockSize];
        ForEachChunk(file, e, t, (first, src) =>
        {
            for (int k = 0; k < src.Length / t.BlockBytes; k++)
            {
                var block = src.Slice(k * t.BlockBytes, t.BlockBytes);
                var v = values.AsSpan((int)((first + k) * t.BlockSize), t.BlockSize);
                if (i2s) DecodeI2S(block, v);
                else scales[first + k] = DecodeTq(type, block, v);
            }
        });
        ternary = new GgufTernary(type, values, (int)(n / cols), (int)cols, scales, i2s ? (int)n : t.BlockSize);
        return true;
    }

    private static string SupportedList => string.Join(", ", Supported);

    /// <summary>The element count, after checking it fits one array and the tensor's bytes are whole blocks in the file.</summary>
    private static long Check(MappedFile file, TensorEntry e, GgmlTypeTraits t)
    {
        long n = e.ElementCount;
        if (n > Array.MaxLength)
            throw new ModelFormatException(file.Path, $"tensor '{e.Name}'", e.ByteOffset, $"{n} elements do not fit in one array");
        if (n % t.BlockSize != 0 || t.ByteLength(n) != e.ByteLength || !file.Has(e.ByteOffset, e.ByteLength))
            throw new ModelFormatException(file.Path, $"tensor '{e.Name}'", e.ByteOffset, "byte range does not match the file");
        return n;
    }

    private delegate void BlockChunk(long firstBlock, ReadOnlySpan<byte> blocks);

    /// <summary>Hands the tensor's blocks over in runs of at most ~16 Mi values (a span cannot cover a tensor over 2 GB).</summary>
    private static void ForEachChunk(MappedFile file, TensorEntry e, GgmlTypeTraits t, BlockChunk action)
    {
        long blocks = e.ElementCount / t.BlockSize, chunk = Math.Max(1, (1 << 24) / t.BlockSize);
        for (long b = 0; b < blocks; b += chunk)
        {
            int m = (int)Math.Min(chunk, blocks - b);
            action(b, file.Span(e.ByteOffset + b * t.BlockBytes, m * t.BlockBytes, $"tensor '{e.Name}'"));
        }
    }

    private static float Fp16(ReadOnlySpan<byte> b, int at) => (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(b[at..]));

    // block_q4_0: fp16 d, 16 bytes of nibbles; low nibbles are values 0..15, high nibbles 16..31.
    private static void Q4_0(ReadOnlySpan<byte> s, Span<float> y)
    {
        for (int i = 0, o = 0; i < s.Length; i += 18, o += 32)
        {
            float d = Fp16(s, i);
            var qs = s.Slice(i + 2, 16);
            for (int j = 0; j < 16; j++)
            {
                y[o + j] = ((qs[j] & 0x0F) - 8) * d;
                y[o + j + 16] = ((qs[j] >> 4) - 8) * d;
            }
        }
    }

    // block_q4_1: fp16 d, fp16 m, 16 bytes of nibbles: q * d + m.
    private static void Q4_1(ReadOnlySpan<byte> s, Span<float> y)
    {
        for (int i = 0, o = 0; i < s.Length; i += 20, o += 32)
        {
            float d = Fp16(s, i), m = Fp16(s, i + 2);
            var qs = s.Slice(i + 4, 16);
            for (int j = 0; j < 16; j++)
            {
                y[o + j] = (qs[j] & 0x0F) * d + m;
                y[o + j + 16] = (qs[j] >> 4) * d + m;
            }
        }
    }

    // block_q5_0: fp16 d, 32 high bits (bit j for value j), 16 bytes of nibbles; (q - 16) * d.
    private static void Q5_0(ReadOnlySpan<byte> s, Span<float> y)
    {
        for (int i = 0, o = 0; i < s.Length; i += 22, o += 32)
        {
            float d = Fp16(s, i);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(s[(i + 2)..]);
            var qs = s.Slice(i + 6, 16);
            for (int j = 0; j < 16; j++)
            {
                int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
                y[o + j] = (((qs[j] & 0x0F) | h0) - 16) * d;
                y[o + j + 16] = (((qs[j] >> 4) | h1) - 16) * d;
            }
        }
    }

    // block_q5_1: fp16 d, fp16 m, 32 high bits, 16 bytes of nibbles; q * d + m.
    private static void Q5_1(ReadOnlySpan<byte> s, Span<float> y)
    {
        for (int i = 0, o = 0; i < s.Length; i += 24, o += 32)
        {
            float d = Fp16(s, i), m = Fp16(s, i + 2);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(s[(i + 4)..]);
            var qs = s.Slice(i + 8, 16);
            for (int j = 0; j < 16; j++)
            {
                int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
                y[o + j] = ((qs[j] & 0x0F) | h0) * d + m;
                y[o + j + 16] = ((qs[j] >> 4) | h1) * d + m;
            }
        }
    }

    // block_q8_0: fp16 d, 32 int8.
    private static void Q8_0(ReadOnlySpan<byte> s, Span<float> y)
    {
        for (int i = 0, o = 0; i < s.Length; i += 34, o += 32)
        {
            float d = Fp16(s, i);
            for (int j = 0; j < 32; j++) y[o + j] = (sbyte)s[i + 2 + j] * d;
        }
    }

    // block_q2_K: 16 scale bytes (low nibble scale, high nibble min), 64 bytes of 2-bit codes, fp16 d, fp16 dmin.
    // Each 32-byte half of qs covers 128 values: 4 shifts x (16 values with one scale + 16 with the next).
    private static void Q2_K(ReadOnlySpan<byte> s, Span<float> y)
    {
        for (int i = 0, o = 0; i < s.Length; i += 84)
        {
            var scales = s.Slice(i, 16);
            float d = Fp16(s, i + 80), min = Fp16(s, i + 82);
            int sc = 0;
            for (int n = 0; n < 2; n++)
            {
                var q = s.Slice(i + 16 + 32 * n, 32);
                for (int shift = 0; shift < 8; shift += 2)
                    for (int half = 0; half < 2; half++)
                    {
                        byte b = scales[sc++];
                        float dl = d * (b & 0xF), ml = min * (b >> 4);
                        for (int l = 0; l < 16; l++) y[o++] = dl * ((q[16 * half + l] >> shift) & 3) - ml;
                    }
            }
        }
    }

    // block_q3_K: 32 bytes of high bits (hmask), 64 bytes of 2-bit codes, 12 bytes of 6-bit scales, fp16 d.
    private static void Q3_K(ReadOnlySpan<byte> s, Span<float> y)
    {
        Span<sbyte> scales = stackalloc sbyte[16];
        for (int i = 0, o = 0; i < s.Length; i += 110)
        {
            var hm = s.Slice(i, 32);
            float dAll = Fp16(s, i + 108);
            // The 16 scales: low 4 bits from bytes 0..7 (low nibble, then high nibble), high 2 bits from bytes 8..11.
            const uint k1 = 0x03030303, k2 = 0x0f0f0f0f;
            uint a0 = BinaryPrimitives.ReadUInt32LittleEndian(s[(i + 96)..]), a1 = BinaryPrimitives.ReadUInt32LittleEndian(s[(i + 100)..]);
            uint tmp = BinaryPrimitives.ReadUInt32LittleEndian(s[(i + 104)..]);
            Span<uint> aux = [(a0 & k2) | ((tmp & k1) << 4), (a1 & k2) | (((tmp >> 2) & k1) << 4),
                ((a0 >> 4) & k2) | (((tmp >> 4) & k1) << 4), ((a1 >> 4) & k2) | (((tmp >> 6) & k1) << 4)];
            for (int k = 0; k < 16; k++) scales[k] = (sbyte)(aux[k / 4] >> (8 * (k % 4)));
            int sc = 0, m = 1;
            for (int n = 0; n < 2; n++)
            {
                var q = s.Slice(i + 32 + 32 * n, 32);
                for (int shift = 0; shift < 8; shift += 2, m <<= 1)
                    for (int half = 0; half < 2; half++)
                    {
                        float dl = dAll * (scales[sc++] - 32);
                        for (int l = 0; l < 16; l++)
                        {
                            int at = 16 * half + l;
                            y[o++] = dl * (((q[at] >> shift) & 3) - ((hm[at] & m) != 0 ? 0 : 4));
                        }
                    }
            }
        }
    }

    /// <summary>ggml's get_scale_min_k4: 8 pairs of 6-bit (scale, min) packed into 12 bytes.</summary>
    private static (int Scale, int Min) ScaleMinK4(int j, ReadOnlySpan<byte> q) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));

    // block_q4_K: fp16 d, fp16 dmin, 12 scale bytes, 128 bytes of nibbles; 64 values per 32 bytes (low, then high nibbles).
    // block_q5_K: the same plus 32 bytes of fifth bits (qh) before the nibbles; bits 2j, 2j + 1 for the j-th 64 values.
    private static void Q4_K(ReadOnlySpan<byte> s, Span<float> y) => Q4Or5_K(s, y, fifthBit: false);
    private static void Q5_K(ReadOnlySpan<byte> s, Span<float> y) => Q4Or5_K(s, y, fifthBit: true);

    private static void Q4Or5_K(ReadOnlySpan<byte> s, Span<float> y, bool fifthBit)
    {
        int bytes = fifthBit ? 176 : 144, nibbles = fifthBit ? 48 : 16;
        for (int i = 0, o = 0; i < s.Length; i += bytes)
        {
            float d = Fp16(s, i), min = Fp16(s, i + 2);
            var scales = s.Slice(i + 4, 12);
            var qh = fifthBit ? s.Slice(i + 16, 32) : default;
            for (int j = 0; j < 4; j++)
            {
                var ql = s.Slice(i + nibbles + 32 * j, 32);
                var (sc1, m1i) = ScaleMinK4(2 * j, scales);
                var (sc2, m2i) = ScaleMinK4(2 * j + 1, scales);
                float d1 = d * sc1, m1 = min * m1i, d2 = d * sc2, m2 = min * m2i;
                int u1 = 1 << (2 * j), u2 = 2 << (2 * j);
                for (int l = 0; l < 32; l++) y[o++] = d1 * ((ql[l] & 0xF) + (fifthBit && (qh[l] & u1) != 0 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; l++) y[o++] = d2 * ((ql[l] >> 4) + (fifthBit && (qh[l] & u2) != 0 ? 16 : 0)) - m2;
            }
        }
    }

    // block_q6_K: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 int8 scales, fp16 d; d * scale * (q - 32).
    private static void Q6_K(ReadOnlySpan<byte> s, Span<float> y)
    {
        for (int i = 0, o = 0; i < s.Length; i += 210)
        {
            float d = Fp16(s, i + 208);
            for (int n = 0; n < 2; n++, o += 128)
            {
                var ql = s.Slice(i + 64 * n, 64);
                var qh = s.Slice(i + 128 + 32 * n, 32);
                var sc = s.Slice(i + 192 + 8 * n, 8);
                for (int l = 0; l < 32; l++)
                {
                    int at = l / 16;
                    int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[o + l] = d * (sbyte)sc[at] * q1;
                    y[o + l + 32] = d * (sbyte)sc[at + 2] * q2;
                    y[o + l + 64] = d * (sbyte)sc[at + 4] * q3;
                    y[o + l + 96] = d * (sbyte)sc[at + 6] * q4;
                }
            }
        }
    }

    // TQ1_0 / TQ2_0 dequantize as (float)ternary * d, so they decode to ternaries first; the values are the same.
    private static void Ternary(GgmlType type, ReadOnlySpan<byte> s, Span<float> y)
    {
        int bytes = Traits(type)!.BlockBytes;
        Span<sbyte> v = stackalloc sbyte[256];
        for (int i = 0, o = 0; i < s.Length; i += bytes, o += 256)
        {
            float d = DecodeTq(type, s.Slice(i, bytes), v);
            for (int k = 0; k < 256; k++) y[o + k] = (float)v[k] * d;
        }
    }

    /// <summary>Decodes one TQ1_0 / TQ2_0 block into 256 ternaries and returns its fp16 scale.</summary>
    private static float DecodeTq(GgmlType type, ReadOnlySpan<byte> b, Span<sbyte> v)
    {
        if (type == GgmlType.TQ2_0)
        {
            // qs[64]: 2-bit codes q (value q - 1); each 32-byte group gives 128 values, shift 0, 2, 4, 6 in turn.
            int o = 0;
            for (int j = 0; j < 64; j += 32)
                for (int l = 0; l < 4; l++)
                    for (int m = 0; m < 32; m++) v[o++] = (sbyte)(((b[j + m] >> (2 * l)) & 3) - 1);
            return Fp16(b, 64);
        }
        // TQ1_0: qs[48] then qh[4] hold base-3 digits as fixed-point fractions: 5 digits per byte (4 in qh). Multiplying
        // by 3^n (mod 256) brings digit n to the top; (q * 3) >> 8 reads it. qs[0..32) is 5 x 32 values, qs[32..48)
        // 5 x 16, qh 4 x 4.
        int k = 0;
        Digits(b[..32], 5, v, ref k);
        Digits(b[32..48], 5, v, ref k);
        Digits(b[48..52], 4, v, ref k);
        return Fp16(b, 52);
    }

    private static void Digits(ReadOnlySpan<byte> q, int digits, Span<sbyte> v, ref int k)
    {
        ReadOnlySpan<byte> pow3 = [1, 3, 9, 27, 81, 243];
        for (int n = 0; n < digits; n++)
            for (int m = 0; m < q.Length; m++)
            {
                byte x = (byte)(q[m] * pow3[n]);
                v[k++] = (sbyte)(((ushort)x * 3 >> 8) - 1);
            }
    }

    // I2_S: within each 32-byte group, byte j holds values j, 32 + j, 64 + j, 96 + j in bits 7..6, 5..4, 3..2, 1..0.
    // Codes 0, 1, 2 are -1, 0, +1 (3 is never written; read as 0, as bitnet's converter does).
    private static void DecodeI2S(ReadOnlySpan<byte> b, Span<sbyte> v)
    {
        for (int j = 0; j < 32; j++)
            for (int g = 0; g < 4; g++)
            {
                int code = (b[j] >> (6 - 2 * g)) & 3;
                v[32 * g + j] = (sbyte)(code == 3 ? 0 : code - 1);
            }
    }

    private static void I2S(ReadOnlySpan<byte> s, Span<float> y, float scale)
    {
        Span<sbyte> v = stackalloc sbyte[I2sBlock];
        for (int i = 0, o = 0; i < s.Length; i += I2sBlock / 4, o += I2sBlock)
        {
            DecodeI2S(s.Slice(i, I2sBlock / 4), v);
            for (int k = 0; k < I2sBlock; k++) y[o + k] = (float)v[k] * scale;
        }
    }

    /// <summary>The I2_S scale: one float32 right after the n / 4 code bytes.</summary>
    private static float I2sScale(ReadOnlySpan<byte> data, long n) => BinaryPrimitives.ReadSingleLittleEndian(data[(int)(n / 4)..]);

    private static float I2sScale(MappedFile file, TensorEntry e) =>
        BinaryPrimitives.ReadSingleLittleEndian(file.Span(e.ByteOffset + e.ElementCount / 4, 4, $"tensor '{e.Name}'.scale"));
}
