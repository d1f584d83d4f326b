using Workbench.Engine.Tensors;

namespace Workbench.Engine.LowBit;

/// <summary>
/// What one weight format is, in the spirit of ggml's type traits: the name users type, whether it holds ternary
/// weights, the bytes a rows x cols matrix takes (padding and scales as the packed matrix allocates them), how to pack
/// it, and (through the packed matrix) its GEMV / GEMM. F32 is the unpacked baseline: it has bytes but no packer.
/// </summary>
public sealed class LowBitFormatInfo
{
    private readonly Func<int, int, long> _bytes;
    private readonly Func<TernaryWeights, PackedMatrix>? _packTernary;
    private readonly Func<float[], int, int, PackedMatrix>? _packFloat;

    internal LowBitFormatInfo(LowBitFormat format, string name, Func<int, int, long> bytes,
        Func<TernaryWeights, PackedMatrix>? packTernary, Func<float[], int, int, PackedMatrix>? packFloat, StoredType? stored = null)
    {
        Stored = stored;
        Format = format;
        Name = name;
        _bytes = bytes;
        _packTernary = packTernary;
        _packFloat = packFloat;
    }

    public LowBitFormat Format { get; }
    /// <summary>The name as users type it (lower case; parsing ignores case).</summary>
    public string Name { get; }
    /// <summary>Holds ternary weights (absmean-quantized, one scale per tensor): I2S, TL1, TL2.</summary>
    public bool IsTernary => _packTernary is not null;
    /// <summary>A checkpoint type computed from as stored (f16, bf16, q8_0, q4_0, q5_0, the K types): <see cref="StoredMatrix"/>'s kernels.</summary>
    public StoredType? Stored { get; }
    public bool IsStored => Stored is not null;
    /// <summary>Has a packed integer layout and the low-bit kernels (int8 and the ternary formats).</summary>
    public bool IsPacked => _packTernary is not null || _packFloat is not null;

    /// <summary>Bytes of a rows x cols matrix in this format, padding and scales included: what one GEMV streams.</summary>
    public long WeightBytes(int rows, int cols)
    {
        Shapes.CheckShape(rows, cols);
        return _bytes(rows, cols);
    }

    /// <summary>Packs ternary weights (ternary formats only).</summary>
    public PackedMatrix Pack(TernaryWeights t)
    {
        ArgumentNullException.ThrowIfNull(t);
        return _packTernary?.Invoke(t) ?? throw new ArgumentException($"{Name} is not a ternary format; ternary weights pack as {LowBitFormats.NameList(ternaryOnly: true)}.", nameof(t));
    }

    /// <summary>Quantizes and packs fp32 weights: absmean ternary for the ternary formats, per-row absmax for Int8.</summary>
    public PackedMatrix Pack(float[] w, int rows, int cols)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (_packTernary is { } pack) return pack(AbsMeanTernary.Quantize(w, rows, cols));
        return _packFloat?.Invoke(w, rows, cols) ?? throw new ArgumentException($"{Name} is not a packed format.", nameof(w));
    }

    /// <summary>
    /// Seeded synthetic weights packed in this format (benchmarks, probes): ternary (P(0) = 1/3, scale 0.02) for the
    /// ternary formats, uniform fp32 in [-1, 1) quantized per row for Int8.
    /// </summary>
    public PackedMatrix Random(int rows, int cols, int seed)
    {
        if (IsStored) throw new ArgumentException($"{Name} is a stored type; use RandomStored.", nameof(rows));
        if (IsTernary) return Pack(AbsMeanTernary.Random(rows, cols, seed, scale: 0.02f));
        Shapes.CheckShape(rows, cols);
        var rng = new Random(seed);
        var w = new float[(long)rows * cols];
        for (long i = 0; i < w.LongLength; i++) w[i] = (float)(rng.NextDouble() * 2 - 1);
        return Pack(w, rows, cols);
    }

    /// <summary>Seeded synthetic weights in a stored type (uniform in [-1, 1), quantized as ggml does), for benchmarks.</summary>
    public StoredMatrix RandomStored(int rows, int cols, int seed) =>
        Stored is { } t ? StoredMatrix.Random(t, rows, cols, seed) : throw new ArgumentException($"{Name} is not a stored type.", nameof(rows));

    public override string ToString() => Name;
}

/// <summary>The registry of weight formats: every other place (parsers, packers, cost model, tests) asks it.</summary>
public static class LowBitFormats
{
    /// <summary>Every registered format, in the order tables and charts list them.</summary>
    public static IReadOnlyList<LowBitFormatInfo> All { get; } =
    [
        new(LowBitFormat.F32, "f32", (r, c) => 4L * r * c, null, null),
        new(LowBitFormat.Int8, "int8", Int8.BytesFor, null, (w, r, c) => Int8.Pack(w, r, c)),
        new(LowBitFormat.I2S, "i2s", I2S.BytesFor, I2S.Pack, null),
        new(LowBitFormat.TL1, "tl1", TL1.BytesFor, TL1.Pack, null),
        new(LowBitFormat.TL2, "tl2", TL2.BytesFor, TL2.Pack, null),
        new(LowBitFormat.F16, "f16", (r, c) => StoredMatrix.BytesFor(StoredType.F16, r, c), null, null, StoredType.F16),
        new(LowBitFormat.BF16, "bf16", (r, c) => StoredMatrix.BytesFor(StoredType.BF16, r, c), null, null, StoredType.BF16),
        new(LowBitFormat.Q8_0, "q8_0", (r, c) => StoredMatrix.BytesFor(StoredType.Q8_0, r, c), null, null, StoredType.Q8_0),
        new(LowBitFormat.Q4_0, "q4_0", (r, c) => StoredMatrix.BytesFor(StoredType.Q4_0, r, c), null, null, StoredType.Q4_0),
        new(LowBitFormat.Q5_0, "q5_0", (r, c) => StoredMatrix.BytesFor(StoredType.Q5_0, r, c), null, null, StoredType.Q5_0),
        new(LowBitFormat.Q4_K, "q4_k", (r, c) => StoredMatrix.BytesFor(StoredType.Q4_K, r, c), null, null, StoredType.Q4_K),
        new(LowBitFormat.Q5_K, "q5_k", (r, c) => StoredMatrix.BytesFor(StoredType.Q5_K, r, c), null, null, StoredType.Q5_K),
        new(LowBitFormat.Q6_K, "q6_k", (r, c) => StoredMatrix.BytesFor(StoredType.Q6_K, r, c), null, null, StoredType.Q6_K),
        new(LowBitFormat.Q2_K, "q2_k", (r, c) => StoredMatrix.BytesFor(StoredType.Q2_K, r, c), null, null, StoredType.Q2_K),
        new(LowBitFormat.Q3_K, "q3_k", (r, c) => StoredMatrix.BytesFor(StoredType.Q3_K, r, c), null, null, StoredType.Q3_K),
        new(LowBitFormat.Q4_1, "q4_1", (r, c) => StoredMatrix.BytesFor(StoredType.Q4_1, r, c), null, null, StoredType.Q4_1),
        new(LowBitFormat.Q5_1, "q5_1", (r, c) => StoredMatrix.BytesFor(StoredType.Q5_1, r, c), null, null, StoredType.Q5_1),
    ];

    public static IReadOnlyList<LowBitFormatInfo> Ternary { get; } = All.Where(f => f.IsTernary).ToArray();

    public static LowBitFormatInfo Get(LowBitFormat format) =>
        All.FirstOrDefault(f => f.Format == format) ?? throw new ArgumentOutOfRangeException(nameof(format), format, "not a registered format");

    /// <summary>The format a user typed (case-insensitive), or null when no registered format has that name.</summary>
    public static LowBitFormatInfo? Find(string? name)
    {
        var n = name?.Trim();
        return string.IsNullOrEmpty(n) ? null : All.FirstOrDefault(f => f.Name.Equals(n, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The registered names for messages: "f32, int8, i2s, tl1, tl2, f16, bf16, q8_0, ... or q3_k" (or only the ternary ones).</summary>
    public static string NameList(bool ternaryOnly = false)
    {
        var names = (ternaryOnly ? Ternary : All).Select(f => f.Name).ToArray();
        return names.Length == 1 ? names[0] : $"{string.Join(", ", names[..^1])} or {names[^1]}";
    }

    /// <summary>The user-facing name of a format ("i2s").</summary>
    public static string Name(this LowBitFormat format) => Get(format).Name;

    /// <summary>Bytes of a rows x cols matrix in <paramref name="format"/> (see <see cref="LowBitFormatInfo.WeightBytes"/>).</summary>
    public static long WeightBytes(LowBitFormat format, int rows, int cols) => Get(format).WeightBytes(rows, cols);

    /// <summary>Packs ternary weights in a ternary format.</summary>
    public static PackedMatrix Pack(this TernaryWeights t, LowBitFormat format) => Get(format).Pack(t);
}
