using Workbench.Engine.Tensors;

namespace Workbench.Engine.LowBit;

/// <summary>
/// A linear layer whose weights a checkpoint stores ternary (BitNet's packed uint8, GGUF TQ1_0 / TQ2_0 / I2_S), packed
/// code for code into a ternary format (I2S by default, TL1 / TL2 on request) without an fp32 copy, and run by the packed
/// kernels with per-token absmax int8 activations (<see cref="AbsMaxInt8"/>): y = acc * s / a.
/// <para>
/// The scale: one per tensor (BitNet, I2_S; and TQ1_0 / TQ2_0 when every block holding a non-zero code has the same fp16
/// scale, as a ternary-trained model has) gives one matrix. TQ blocks of different scales (a tensor quantized to TQ from
/// non-ternary values) give one matrix per column block of <c>scaleBlock</c> values with a scale per row; each block's
/// activations are quantized on their own, as ggml quantizes activations per 256 values (Q8_K) for these types.
/// </para>
/// Every ternary linear shares one team of threads (one per core), so calls from any model are serialized by its lock.
/// </summary>
public sealed class TernaryLinear : IStoredLinear
{
    private const int ChunkTokens = 16;
    private static readonly Lazy<WorkerTeam> Team = new(() => new WorkerTeam(Math.Max(1, Environment.ProcessorCount)));
    private readonly LowBitWorkspace[] _workspaces;
    private readonly float[] _xPart, _yPart;

    public int Rows { get; }
    public int Cols { get; }
    public LowBitFormat Format { get; }
    /// <summary>The packed matrices: one, or one per column block (<see cref="PartCols"/> columns each).</summary>
    public IReadOnlyList<TernaryMatrix> Parts { get; }
    public int PartCols { get; }
    public long WeightBytes => Parts.Sum(p => p.WeightBytes + (p.RowScales is null ? 0 : 4L * p.Rows));

    private TernaryLinear(int rows, int cols, LowBitFormat format, TernaryMatrix[] parts, int partCols)
    {
        Rows = rows; Cols = cols; Format = format; Parts = parts; PartCols = partCols;
        _workspaces = parts.Select(p => p.CreateWorkspace(Team.Value, ChunkTokens)).ToArray();
        _xPart = parts.Length > 1 ? new float[ChunkTokens * partCols] : [];
        _yPart = parts.Length > 1 ? new float[ChunkTokens * rows] : [];
    }

    /// <summary>
    /// Packs ternary codes (row-major [rows, cols], each -1, 0 or 1) with their scales: value i is codes[i] *
    /// scales[i / scaleBlock]; scaleBlock = rows * cols for one scale, else it must divide cols.
    /// </summary>
    public static TernaryLinear Pack(sbyte[] codes, int rows, int cols, float[] scales, int scaleBlock, LowBitFormat format = LowBitFormat.I2S)
    {
        ArgumentNullException.ThrowIfNull(codes);
        ArgumentNullException.ThrowIfNull(scales);
        Shapes.CheckMatrix(codes.Length, rows, cols, nameof(codes));
        var info = LowBitFormats.Get(format);
        if (!info.IsTernary) throw new ArgumentOutOfRangeException(nameof(format), format, $"ternary weights pack as {LowBitFormats.NameList(ternaryOnly: true)}");
        long n = (long)rows * cols;
        if (scaleBlock <= 0 || (scaleBlock != n && cols % scaleBlock != 0) || scales.LongLength != n / scaleBlock)
            throw new ArgumentException($"{scales.Length} scales of blocks of {scaleBlock} do not cover a {rows} x {cols} matrix", nameof(scales));
        foreach (var s in scales) if (!float.IsFinite(s)) throw new ArgumentException($"scale {s} is not finite", nameof(scales));
        if (UniformScale(codes, scales, scaleBlock) is { } one)
            return new(rows, cols, format, [(TernaryMatrix)info.Pack(new TernaryWeights(codes, rows, cols, one))], cols);
        int blocks = cols / scaleBlock;
        var parts = new TernaryMatrix[blocks];
        var part = new sbyte[(long)rows * scaleBlock];
        for (int b = 0; b < blocks; b++)
        {
            var rowScales = new float[rows];
            for (int r = 0; r < rows; r++)
            {
                Array.Copy(codes, (long)r * cols + b * scaleBlock, part, (long)r * scaleBlock, scaleBlock);
                rowScales[r] = scales[r * blocks + b];
            }
            var m = (TernaryMatrix)info.Pack(new TernaryWeights(part, rows, scaleBlock, 1f));
            m.RowScales = rowScales;
            parts[b] = m;
        }
        return new(rows, cols, format, parts, scaleBlock);
    }

    /// <summary>The one scale every block with a non-zero code shares (1 when all codes are zero), or null.</summary>
    private static float? UniformScale(sbyte[] codes, float[] scales, int scaleBlock)
    {
        if (scales.Length == 1) return scales[0];
        float? s = null;
        for (int b = 0; b < scales.Length; b++)
        {
            if (codes.AsSpan(b * scaleBlock, scaleBlock).IndexOfAnyExcept((sbyte)0) < 0) continue;
            if (s is null) s = scales[b];
            else if (s != scales[b]) return null;
        }
        return s ?? 1f;
    }

    /// <summary>The same codes and scales in another ternary format (code for code, no fp32).</summary>
    public TernaryLinear Repack(LowBitFormat format)
    {
        if (format == Format) return this;
        var info = LowBitFormats.Get(format);
        var parts = Parts.Select(p =>
        {
            var m = (TernaryMatrix)info.Pack(new TernaryWeights(p.Unpack(), p.Rows, p.Cols, p.Scale));
            m.RowScales = p.RowScales;
            return m;
        }).ToArray();
        return new(Rows, Cols, format, parts, PartCols);
    }

    /// <summary>Rows r of the result are rows <paramref name="rowMap"/>[r] of this one (code for code).</summary>
    public TernaryLinear WithRows(int[] rowMap)
    {
        ArgumentNullException.ThrowIfNull(rowMap);
        var info = LowBitFormats.Get(Format);
        var parts = Parts.Select(p =>
        {
            var codes = p.Unpack();
            var picked = new sbyte[(long)rowMap.Length * p.Cols];
            for (int r = 0; r < rowMap.Length; r++) Array.Copy(codes, (long)rowMap[r] * p.Cols, picked, (long)r * p.Cols, p.Cols);
            var m = (TernaryMatrix)info.Pack(new TernaryWeights(picked, rowMap.Length, p.Cols, p.Scale));
            m.RowScales = p.RowScales is { } s ? rowMap.Select(r => s[r]).ToArray() : null;
            return m;
        }).ToArray();
        return new(rowMap.Length, Cols, Format, parts, PartCols);
    }

    /// <summary>The ternary codes, row-major [rows, cols].</summary>
    public sbyte[] Codes()
    {
        var t = new sbyte[(long)Rows * Cols];
        for (int b = 0; b < Parts.Count; b++)
        {
            var c = Parts[b].Unpack();
            for (int r = 0; r < Rows; r++) Array.Copy(c, (long)r * PartCols, t, (long)r * Cols + b * PartCols, PartCols);
        }
        return t;
    }

    /// <summary>The weights as fp32 values (codes times scales): only where a caller asks for them.</summary>
    public float[] ToFloat()
    {
        var t = Codes();
        var w = new float[t.Length];
        for (int b = 0; b < Parts.Count; b++)
            for (int r = 0; r < Rows; r++)
            {
                float s = Parts[b].RowScale(r);
                for (int c = 0; c < PartCols; c++) { long i = (long)r * Cols + b * PartCols + c; w[i] = t[i] * s; }
            }
        return w;
    }

    IStoredLinear IStoredLinear.WithRows(int[] rowMap) => WithRows(rowMap);
    // the ternary linears share one team of threads (one per core): the count asked for does not apply
    void IStoredLinear.Gemm(ReadOnlySpan<float> x, int n, Span<float> y, int threads) => Gemm(x, n, y);

    /// <summary>Y[n, rows] = X[n, cols] W^T on the packed kernels (activations int8-quantized per token inside).</summary>
    public void Gemm(ReadOnlySpan<float> x, int n, Span<float> y, IsaPath? path = null)
    {
        if (x.Length < (long)n * Cols || y.Length < (long)n * Rows)
            throw new ArgumentException($"a {Rows} x {Cols} ternary linear got x of {x.Length} and y of {y.Length} for {n} tokens");
        lock (Team.Value)
            for (int t0 = 0; t0 < n; t0 += ChunkTokens)
            {
                int count = Math.Min(ChunkTokens, n - t0);
                var xc = x.Slice(t0 * Cols, count * Cols);
                var yc = y.Slice(t0 * Rows, count * Rows);
                if (Parts.Count == 1) { Parts[0].Gemm(xc, count, yc, _workspaces[0], path); continue; }
                yc.Clear();
                for (int b = 0; b < Parts.Count; b++)
                {
                    var xp = _xPart.AsSpan(0, count * PartCols);
                    for (int t = 0; t < count; t++) xc.Slice(t * Cols + b * PartCols, PartCols).CopyTo(xp.Slice(t * PartCols, PartCols));
                    var yp = _yPart.AsSpan(0, count * Rows);
                    Parts[b].Gemm(xp, count, yp, _workspaces[b], path);
                    System.Numerics.Tensors.TensorPrimitives.Add(yc, yp, yc);
                }
            }
    }
}
