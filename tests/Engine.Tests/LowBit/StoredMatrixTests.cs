using Workbench.Engine.Formats;
using Workbench.Engine.LowBit;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Tests.LowBit;

/// <summary>
/// The stored-type kernels (bf16, f16, Q5_0, Q4_1, Q5_1, Q2_K ... Q6_K with fp32 accumulation; Q8_0, Q4_0 as integer dots against
/// activations quantized to Q8_0 blocks, as llama.cpp computes them): every path bit for bit against the scalar twin, the
/// GEMM equal to the GEMV token by token, and the products against ggml's own dequantized values
/// (data/goldens/gguf-quants, made by ggml's C code).
/// </summary>
public class StoredMatrixTests
{
    public static TheoryData<StoredType> Types => new(Enum.GetValues<StoredType>());

    private static (int Rows, int Cols)[] Shapes(StoredType t) => StoredMatrix.BlockOf(t) switch
    {
        // 19 x (QTileMinCols + 32): Q8_0 / Q4_0 GEMVs go eight rows at a time from QTileMinCols columns on (two tiles and
        // three rows alone; an odd block count, so the tile's last block is added alone)
        32 => [(1, 32), (3, 64), (17, 96), (33, 256), (5, 1024), (19, StoredKernels.QTileMinCols + 32)],
        256 => [(1, 256), (3, 512), (17, 768), (33, 256), (5, 2048)],
        // f16 / bf16; 19 x (TileMinCols + 4): from TileMinCols columns on bf16 rows go eight at a time (two tiles, three rows
        // alone, a tail); f16 rows on V512 go eight at a time at every width (9 rows: a tile and a row alone; 17: two
        // tiles and a row)
        _ => [(1, 1), (5, 17), (9, 100), (2, 257), (17, 96), (3, 1024), (19, StoredKernels.TileMinCols + 4), (9, 4196)],
    };

    private static float[] RandomX(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 4 - 2);
        return x;
    }

    private static uint[] Bits(float[] y) => y.Select(BitConverter.SingleToUInt32Bits).ToArray();

    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(Types))]
    public void Every_path_equals_the_scalar_twin_bit_for_bit_and_the_gemm_equals_the_gemv(StoredType type)
    {
        int seed = 0;
        foreach (var (rows, cols) in Shapes(type))
        {
            var m = StoredMatrix.Random(type, rows, cols, ++seed);
            Assert.Equal(StoredMatrix.BytesFor(type, rows, cols), m.WeightBytes);
            const int n = 3;
            var x = RandomX(n * cols, seed);
            var scalar = new float[rows];
            m.Gemv(x.AsSpan(0, cols), scalar, 1, IsaPath.Scalar);
            foreach (var path in Isa.SupportedPaths)
            {
                var y = new float[rows];
                m.Gemv(x.AsSpan(0, cols), y, 1, path);
                Assert.True(Bits(scalar).SequenceEqual(Bits(y)), $"{type} {rows}x{cols} {path}: GEMV differs from the scalar twin");
                using (Isa.Use(path))
                {
                    // the in-process switch: no path named, the scope's is taken; two threads split the rows
                    var yt = new float[rows];
                    m.Gemv(x.AsSpan(0, cols), yt, 2);
                    Assert.Equal(Bits(y), Bits(yt));
                    // the GEMM from a row widened once: each token's output equals its GEMV's, bit for bit
                    var yn = new float[n * rows];
                    m.Gemm(x, n, yn, 2);
                    for (int t = 0; t < n; t++)
                    {
                        var yg = new float[rows];
                        m.Gemv(x.AsSpan(t * cols, cols), yg, 1, IsaPath.Scalar);
                        Assert.True(Bits(yg).SequenceEqual(Bits(yn[(t * rows)..((t + 1) * rows)])), $"{type} {rows}x{cols} {path}: GEMM token {t} differs from its GEMV");
                    }
                }
            }
            // the GEMM's SIMD row decode on every path gives the scalar decoder's values for these random codes and scales
            if (StoredKernelsK.Handles(type))
            {
                var want = new float[rows * cols];
                unsafe
                {
                    fixed (float* pw = want)
                        for (int r = 0; r < rows; r++) StoredKernelsK.DecodeRow(type, m.RowAddress(r), pw + r * cols, cols); // GgufQuants
                }
                foreach (var path in Isa.SupportedPaths)
                {
                    var got = new float[rows * cols];
                    unsafe
                    {
                        fixed (float* pg = got)
                            for (int r = 0; r < rows; r++) StoredKernelsK.DecodeRow(type, m.RowAddress(r), pg + r * cols, cols, path);
                    }
                    Assert.True(Bits(want).SequenceEqual(Bits(got)), $"{type} {rows}x{cols} {path}: the SIMD row decode differs from the scalar decoder");
                }
            }
            // and the scalar twin is the fp32 product of the dequantized weights with x (Q8_0 / Q4_0: with x quantized to
            // Q8_0 blocks as llama.cpp does), to fp32 rounding
            var w = m.ToFloat();
            var xr = ReferenceActivations(type, x.AsSpan(0, cols));
            for (int r = 0; r < rows; r++)
            {
                double exact = 0, mag = 0;
                for (int c = 0; c < cols; c++) { exact += (double)w[r * cols + c] * xr[c]; mag += Math.Abs((double)w[r * cols + c] * xr[c]); }
                Assert.True(Math.Abs(scalar[r] - exact) <= 4e-6 * mag + 1e-30, $"{type} {rows}x{cols} row {r}: {scalar[r]} vs {exact}");
            }
        }
    }

    [Fact]
    public void F16_widening_equals_the_runtime_conversion_for_every_value()
    {
        for (int h = 0; h < 65536; h++)
        {
            float want = (float)BitConverter.UInt16BitsToHalf((ushort)h), got = StoredKernels.F16ToF32((uint)h);
            if (float.IsNaN(want)) Assert.True(float.IsNaN(got), $"0x{h:X4}");
            else Assert.Equal(BitConverter.SingleToUInt32Bits(want), BitConverter.SingleToUInt32Bits(got));
        }
    }

    [Theory, Trait("Category", "Simd")]
    [InlineData("q8_0", StoredType.Q8_0)]
    [InlineData("q4_0", StoredType.Q4_0)]
    [InlineData("q5_0", StoredType.Q5_0)]
    [InlineData("q4_k", StoredType.Q4_K)]
    [InlineData("q5_k", StoredType.Q5_K)]
    [InlineData("q6_k", StoredType.Q6_K)]
    [InlineData("q2_k", StoredType.Q2_K)]
    [InlineData("q3_k", StoredType.Q3_K)]
    [InlineData("q4_1", StoredType.Q4_1)]
    [InlineData("q5_1", StoredType.Q5_1)]
    [InlineData("f16", StoredType.F16)]
    [InlineData("bf16", StoredType.BF16)]
    public void Mapped_golden_tensors_compute_the_product_of_ggml_dequantized_values(string stem, StoredType type)
    {
        string Golden(string f) => Formats.RepoFiles.Data("goldens", "gguf-quants", f);
        using var npz = NpzFile.Open(Golden(stem + ".npz"));
        var matrices = new List<(StoredMatrix M, float[] W)>();
        using (var g = GgufFile.Open(Golden(stem + ".gguf")))
            foreach (var e in g.Tensors)
            {
                var t = g.Map(e.Name)!;
                Assert.Equal(type, Workbench.Engine.Models.StoredLinears.KernelType(t.Type)); // models keep the type as stored
                unsafe { matrices.Add((StoredMatrix.Map(type, (int)e.Shape[0], (int)e.Shape[1], t.Pointer, t.Length, t), npz.ReadF32(e.Name))); }
            }
        // the reader is disposed: the mapped tensors keep the file mapped
        int seed = 10;
        foreach (var (m, w) in matrices)
        {
            int rows = m.Rows, cols = m.Cols;
            var row = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                m.DecodeRow(r, row);
                Assert.Equal(Bits(w[(r * cols)..((r + 1) * cols)]), Bits(row)); // ggml's values, bit for bit
            }
            if (StoredKernelsK.Handles(type))
                foreach (var path in Isa.SupportedPaths)
                {
                    // the GEMM's row decode on each path: the SIMD block decoders give ggml's values too
                    var all = new float[rows * cols];
                    unsafe
                    {
                        fixed (float* pa = all)
                            for (int r = 0; r < rows; r++) StoredKernelsK.DecodeRow(type, m.RowAddress(r), pa + r * cols, cols, path);
                    }
                    Assert.True(Bits(w).SequenceEqual(Bits(all)), $"{stem} {path}: the SIMD row decode differs from ggml's values");
                }
            var x = RandomX(2 * cols, ++seed);
            double[][] xr = [ReferenceActivations(type, x.AsSpan(0, cols)), ReferenceActivations(type, x.AsSpan(cols, cols))];
            foreach (var path in Isa.SupportedPaths)
            {
                var y = new float[2 * rows];
                m.Gemm(x, 2, y, 1, path);
                for (int t = 0; t < 2; t++)
                    for (int r = 0; r < rows; r++)
                    {
                        double exact = 0, mag = 0;
                        for (int c = 0; c < cols; c++) { double p = (double)w[r * cols + c] * xr[t][c]; exact += p; mag += Math.Abs(p); }
                        Assert.True(Math.Abs(y[t * rows + r] - exact) <= 4e-6 * mag + 1e-30, $"{stem} {rows}x{cols} {path} token {t} row {r}: {y[t * rows + r]} vs {exact}");
                    }
            }
        }
    }

    /// <summary>
    /// The activations a product sees: x itself for f16 / bf16; for Q8_0 / Q4_0 x as llama.cpp's quantize_row_q8_0
    /// leaves it (per 32-block d = amax / 127 stored as f16, q = round-to-nearest-even(x 127 / amax)), i.e. q d.
    /// </summary>
    private static double[] ReferenceActivations(StoredType type, ReadOnlySpan<float> x)
    {
        var r = new double[x.Length];
        if (type is not (StoredType.Q8_0 or StoredType.Q4_0)) { for (int i = 0; i < x.Length; i++) r[i] = x[i]; return r; }
        for (int b = 0; b < x.Length / 32; b++)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.Max(amax, Math.Abs(x[32 * b + j]));
            float id = amax == 0 ? 0 : 127f / amax, d = (float)(Half)(amax / 127f);
            for (int j = 0; j < 32; j++)
            {
                float q = MathF.Round(x[32 * b + j] * id, MidpointRounding.ToEven);
                Assert.InRange(q, -127, 127);
                r[32 * b + j] = (double)q * d;
            }
        }
        return r;
    }

    [Theory, Trait("Category", "Simd")]
    [InlineData(1024)]
    [InlineData(4096)]
    public void F16_rows_of_every_bit_pattern_give_the_scalar_twins_bits_on_every_path(int cols)
    {
        // 64 rows x 1024: row r holds the f16 patterns r * 1024 .. r * 1024 + 1023 (subnormals in rows 0 and 32,
        // infinities and NaN in rows 31 and 63: those rows leave the fast widening for the exact one). 16 rows x 4096:
        // the same patterns in longer rows. On V512 f16 rows go eight at a time, the tiles of rows 31 and 63 (7 and 15) holding the specials.
        int rows = 65536 / cols;
        var bytes = new byte[65536 * 2];
        for (int h = 0; h < 65536; h++) { bytes[2 * h] = (byte)h; bytes[2 * h + 1] = (byte)(h >> 8); }
        var m = StoredMatrix.FromBytes(StoredType.F16, rows, cols, bytes);
        var x = RandomX(cols, 5);
        var want = new float[rows];
        m.Gemv(x, want, 1, IsaPath.Scalar);
        var large = (float[])x.Clone();
        large[700] = 70000f; // at or above 2^16 the wide paths keep x unscaled (x 2^112 would overflow)
        var wantLarge = new float[rows];
        m.Gemv(large, wantLarge, 1, IsaPath.Scalar);
        foreach (var path in Isa.SupportedPaths)
        {
            var y = new float[rows];
            m.Gemv(x, y, 1, path);
            Assert.True(Bits(want).SequenceEqual(Bits(y)), $"{path}: differs from the scalar twin");
            m.Gemv(large, y, 1, path);
            Assert.True(Bits(wantLarge).SequenceEqual(Bits(y)), $"{path}, |x| >= 2^16: differs from the scalar twin");
        }
        Assert.NotEqual(Bits(want), Bits(wantLarge));
        Assert.True(float.IsNaN(want[0x7C00 / cols]) && float.IsNaN(want[0xFC00 / cols]));
        var w = m.ToFloat();
        foreach (int r in new[] { 0, 5 % rows, rows / 2, rows / 2 + 1 })
        {
            double exact = 0, mag = 0;
            for (int c = 0; c < cols; c++) { double p = (double)w[r * cols + c] * x[c]; exact += p; mag += Math.Abs(p); }
            Assert.True(Math.Abs(want[r] - exact) <= 4e-6 * mag + 1e-30, $"row {r}: {want[r]} vs {exact}");
        }
    }

    [Fact]
    public unsafe void Block_scales_widen_to_ggmls_values_for_every_f16_pattern()
    {
        // d_w d_x from the f16 bits by the shift-and-mask widening and an activation scale kept times 2^112
        var blk = stackalloc byte[2];
        foreach (float xd in new[] { 1f, 0.00787f, 3.1e-5f, 65504f, 6e-8f, 0f })
        {
            float scaled = xd * 5.192296858534828e33f;
            for (int h = 0; h < 65536; h++)
            {
                blk[0] = (byte)h;
                blk[1] = (byte)(h >> 8);
                float want = StoredKernels.F16ToF32((uint)h) * xd, got = StoredKernels.BlockScale(blk, scaled);
                if (float.IsNaN(want)) Assert.True(float.IsNaN(got), $"0x{h:X4} x {xd}");
                else Assert.True(BitConverter.SingleToUInt32Bits(want) == BitConverter.SingleToUInt32Bits(got), $"0x{h:X4} x {xd}: {got} vs {want}");
            }
        }
    }

    [Fact]
    public void Row_views_read_the_rows_they_name_and_bad_maps_are_refused()
    {
        var m = StoredMatrix.Random(StoredType.Q4_0, 8, 64, 3);
        var view = m.WithRows([7, 0, 3]).WithRows([2, 0]); // rows 3 and 7 of m
        var x = RandomX(64, 4);
        var y = new float[8];
        m.Gemv(x, y);
        var yv = new float[2];
        view.Gemv(x, yv);
        Assert.Equal(new[] { y[3], y[7] }, yv);
        Assert.Equal(2 * 2 * 18, view.WeightBytes);
        Assert.Throws<ArgumentOutOfRangeException>(() => m.WithRows([8]));
        Assert.Throws<ArgumentException>(() => StoredMatrix.Random(StoredType.Q8_0, 2, 48, 1)); // not whole blocks
        Assert.Throws<ArgumentException>(() => StoredMatrix.FromBytes(StoredType.BF16, 2, 3, new byte[11]));
        Assert.Throws<ArgumentException>(() => m.Gemv(new float[63], y));
    }
}
