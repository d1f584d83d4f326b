using Workbench.Engine.Formats;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Tensors;
using Workbench.Engine.Tests.Formats;

namespace Workbench.Engine.Tests.LowBit;

/// <summary>
/// GGUF ternary tensors (ggml's TQ1_0, TQ2_0; bitnet.cpp's I2_S) packed code for code into the engine's ternary formats and
/// run by their kernels, against data/goldens/gguf-quants (ggml's own dequantization, its README): the packed codes are the
/// file's codes, codes x scales are ggml's to_float bit for bit, and the GEMV equals the product with ggml's values.
/// </summary>
public class GgufTernaryKernelTests
{
    private static string Golden(string file) => RepoFiles.Data("goldens", "gguf-quants", file);
    private static readonly string[] Names = ["t8x256", "t3x512", "t16x768"];

    public static TheoryData<string, LowBitFormat> Cases()
    {
        var d = new TheoryData<string, LowBitFormat>();
        foreach (var file in new[] { "tq1_0", "tq2_0", "i2_s" })
            foreach (var f in LowBitFormats.Ternary) d.Add(file, f.Format);
        return d;
    }

    [Theory, Trait("Category", "Simd")]
    [MemberData(nameof(Cases))]
    public void Packed_codes_are_the_files_and_the_gemv_is_the_product_with_ggmls_values(string file, LowBitFormat format)
    {
        using var g = GgufFile.Open(Golden(file + ".gguf"));
        using var npz = NpzFile.Open(Golden(file + ".npz"));
        var rng = new Random(7);
        foreach (var name in Names)
        {
            Assert.True(g.TryReadTernary(name, out var t));
            var linear = TernaryLinear.Pack(t!.Values, t.Rows, t.Cols, t.Scales, t.ScaleBlock, format);
            Assert.Equal(format, linear.Format);
            Assert.Equal(t.Values, linear.Codes());
            var ggml = npz.ReadF32(name); // ggml's C to_float of the stored bytes
            Assert.Equal(ggml.Select(BitConverter.SingleToUInt32Bits), linear.ToFloat().Select(BitConverter.SingleToUInt32Bits));

            // These goldens were quantized from non-ternary values: TQ blocks carry their own scales (a part per block),
            // I2_S one scale for the tensor.
            int blockCols = linear.PartCols;
            Assert.Equal(file == "i2_s" ? 1 : t.Cols / 256, linear.Parts.Count);

            int n = 3;
            var x = new float[n * t.Cols];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 4 - 2) * (i % 97 == 0 ? 8 : 1);
            foreach (var path in Isa.SupportedPaths)
            {
                var y = new float[n * t.Rows];
                linear.Gemm(x, n, y, path);
                for (int tok = 0; tok < n; tok++)
                {
                    // The kernels quantize each block of activations with AbsMaxInt8 (q, a); redo it here.
                    var q = new sbyte[t.Cols];
                    var a = new float[t.Cols / blockCols];
                    for (int b = 0; b < a.Length; b++)
                        a[b] = AbsMaxInt8.Quantize(x.AsSpan(tok * t.Cols + b * blockCols, blockCols), q.AsSpan(b * blockCols, blockCols));
                    for (int r = 0; r < t.Rows; r++)
                    {
                        double exact = 0, magnitude = 0, withX = 0, halfStep = 0;
                        for (int c = 0; c < t.Cols; c++)
                        {
                            double w = ggml[r * t.Cols + c], ab = a[c / blockCols];
                            exact += w * q[c] / ab;
                            magnitude += Math.Abs(w * q[c] / ab);
                            withX += w * x[tok * t.Cols + c];
                            halfStep += Math.Abs(w) * 0.5 / ab;
                        }
                        float got = y[tok * t.Rows + r];
                        // The int32 sums are exact; what is left is float rounding of acc * (s / a) per block (a few ulp of each
                        // block's term) and of the sum over blocks: within 1e-6 of the terms' magnitude.
                        Assert.True(Math.Abs(got - exact) <= 1e-6 * magnitude + 1e-30,
                            $"{file} {format} {path} {name} row {r}: {got} vs {exact} (|terms| {magnitude})");
                        // Against ggml's values times the unquantized x: at most half an int8 step per activation.
                        Assert.True(Math.Abs(got - withX) <= halfStep * (1 + 1e-5) + 1e-6 * magnitude,
                            $"{file} {format} {path} {name} row {r}: {got} vs ggml's product {withX} (bound {halfStep})");
                    }
                }
            }
        }
    }

    [Fact]
    public void I2_S_packs_to_exactly_the_files_bytes_when_rows_are_whole_256_blocks()
    {
        // bitnet.cpp's x86 I2_S (128 codes in 32 bytes, code t + 1, element g + 32k in bits 7-2k) is the engine's I2S row layout.
        using var g = GgufFile.Open(Golden("i2_s.gguf"));
        var bytes = File.ReadAllBytes(Golden("i2_s.gguf"));
        foreach (var name in Names)
        {
            g.TryReadTernary(name, out var t);
            var m = (I2S)TernaryLinear.Pack(t!.Values, t.Rows, t.Cols, t.Scales, t.ScaleBlock).Parts.Single();
            var e = g.Get(name);
            Assert.Equal(bytes.AsSpan((int)e.ByteOffset, t.Rows * t.Cols / 4).ToArray(), m.Data.ToArray());
            Assert.Equal(t.Scales[0], m.Scale);
        }
    }

    [Fact]
    public void A_TQ_tensor_with_one_scale_becomes_one_matrix_and_mixed_scales_one_part_per_block()
    {
        // every non-zero block at the same fp16 scale (what llama.cpp's TQ quantizer writes for {-s, 0, +s} weights):
        // one matrix, the tensor's scale; an all-zero block may carry any scale.
        var rng = new Random(3);
        int rows = 4, cols = 512;
        var codes = new sbyte[rows * cols];
        for (int i = 0; i < codes.Length; i++) codes[i] = (sbyte)rng.Next(-1, 2);
        codes.AsSpan(256, 256).Clear(); // row 0, block 1: all zero
        var scales = Enumerable.Repeat(0.25f, rows * cols / 256).ToArray();
        scales[1] = 0;
        var one = TernaryLinear.Pack(codes, rows, cols, scales, 256);
        Assert.Single(one.Parts);
        Assert.Equal(0.25f, one.Parts[0].Scale);
        scales[2] = 0.5f;
        var two = TernaryLinear.Pack(codes, rows, cols, scales, 256);
        Assert.Equal(2, two.Parts.Count);
        Assert.Equal(codes, two.Codes());
    }

    /// <summary>
    /// ggml's TQ2_0 block (ggml-common.h block_tq2_0: uint8 qs[64], ggml_half d): the 256 values in two groups of 128,
    /// value 128 j' + 32 l + m at bits 2l of qs[32 j' + m], stored as code + 1; d = max |x| (quantize_row_tq2_0_ref).
    /// </summary>
    private static byte[] Tq2_0(float[] x)
    {
        var bytes = new byte[x.Length / 256 * 66];
        for (int b = 0; b < x.Length / 256; b++)
        {
            var v = x.AsSpan(b * 256, 256);
            float d = MaxMagnitude(v);
            var o = bytes.AsSpan(b * 66, 66);
            for (int j = 0; j < 2; j++)
                for (int l = 0; l < 4; l++)
                    for (int m = 0; m < 32; m++)
                    {
                        int q = d == 0 ? 0 : (int)MathF.Round(v[128 * j + 32 * l + m] / d);
                        o[32 * j + m] |= (byte)((q + 1) << (2 * l));
                    }
            BitConverter.TryWriteBytes(o[64..], (Half)d);
        }
        return bytes;
    }

    private static float MaxMagnitude(ReadOnlySpan<float> v) { float m = 0; foreach (var a in v) m = MathF.Max(m, MathF.Abs(a)); return m; }

    [Fact]
    public void A_llama_GGUF_with_TQ2_0_linears_runs_on_the_packed_kernels_as_its_dequantized_twin_does()
    {
        // A seeded 1-layer llama-arch file whose block linears are ternary {-s, 0, +s} (s = 1/16, exact in fp16) in TQ2_0:
        // the loaded linears are packed I2S / TL2 matrices straight from the blocks, and the model computes what its fp32
        // dequantization does on the same kernels through TernaryModel.FromStored (values read back as {-s, 0, +s}).
        var rng = new Random(11);
        int dim = 256, heads = 4, kvHeads = 2, ff = 256, vocab = 32, kvDim = dim / heads * kvHeads;
        float[] Normal(int n, float scale) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();
        float[] Ternary(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(-1, 2) / 16f).ToArray();
        var tensors = new List<(string Name, long[] Shape, float[] Data)>
        {
            ("token_embd.weight", [vocab, dim], Normal(vocab * dim, 1)), ("output_norm.weight", [dim], Normal(dim, 0.1f).Select(v => v + 1).ToArray()),
            ("blk.0.attn_norm.weight", [dim], Normal(dim, 0.1f).Select(v => v + 1).ToArray()), ("blk.0.ffn_norm.weight", [dim], Normal(dim, 0.1f).Select(v => v + 1).ToArray()),
            ("blk.0.attn_q.weight", [dim, dim], Ternary(dim * dim)), ("blk.0.attn_k.weight", [kvDim, dim], Ternary(kvDim * dim)),
            ("blk.0.attn_v.weight", [kvDim, dim], Ternary(kvDim * dim)), ("blk.0.attn_output.weight", [dim, dim], Ternary(dim * dim)),
            ("blk.0.ffn_gate.weight", [ff, dim], Ternary(ff * dim)), ("blk.0.ffn_up.weight", [ff, dim], Ternary(ff * dim)),
            ("blk.0.ffn_down.weight", [dim, ff], Ternary(dim * ff)),
        };
        var kv = new List<(string, object)>
        {
            ("general.architecture", "llama"), ("llama.block_count", 1u), ("llama.context_length", 64u), ("llama.embedding_length", (uint)dim),
            ("llama.feed_forward_length", (uint)ff), ("llama.attention.head_count", (uint)heads), ("llama.attention.head_count_kv", (uint)kvHeads),
            ("llama.attention.layer_norm_rms_epsilon", 1e-5f),
        };
        var dir = Directory.CreateTempSubdirectory("wb-tq2-").FullName;
        try
        {
            var path = Path.Combine(dir, "tq2.gguf");
            Models.HfToGguf.Write(path, kv, tensors, encode: t => t.Name.StartsWith("blk.0.attn_") && !t.Name.Contains("norm") || t.Name.StartsWith("blk.0.ffn_") && !t.Name.Contains("norm")
                ? ((uint)GgmlType.TQ2_0, Tq2_0(t.Data)) : null);
            using (var g = GgufFile.Open(path)) Assert.Equal(GgmlType.TQ2_0, g.GgmlTypeOf("blk.0.ffn_down.weight"));
            int[] ids = [3, 17, 5, 29, 0, 11];
            float[]? first = null;
            foreach (var format in new[] { LowBitFormat.I2S, LowBitFormat.TL2 })
            {
                var packed = GgufDecoders.Load(path, ternary: format);
                Assert.Equal(7, packed.BlockLinears.Count);
                Assert.All(packed.BlockLinears, l =>
                {
                    Assert.Empty(l.Weight);
                    var t = StoredLinears.FindTernary(l.Weight)!;
                    Assert.Equal(format, t.Format);
                    Assert.Equal(1f / 16, Assert.Single(t.Parts).Scale); // one tensor scale from 256-value blocks that agree
                });
                var logits = packed.Forward(ids, 0, new ForwardContext()).Logits;
                first ??= logits;
                Assert.Equal(first, logits); // same codes, same int32 sums, same float epilogue in every format

                var fp32 = GgufDecoders.Load(path, storage: WeightStorage.Fp32);
                using var twin = Workbench.Engine.Quantization.TernaryModel.FromStored(fp32, format);
                var want = fp32.Forward(ids, 0, twin.Context()).Logits;
                Assert.Equal(want, logits);
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_GGUF_ternary_linear_is_loaded_onto_the_packed_kernels_not_fp32()
    {
        using var g = GgufFile.Open(Golden("tq2_0.gguf"));
        var w = StoredLinears.Read(g, "t16x768", 16, 768, WeightStorage.Stored, LowBitFormat.TL2);
        Assert.Empty(w);
        Assert.Equal(LowBitFormat.TL2, StoredLinears.FindTernary(w)!.Format);
        Assert.Null(StoredLinears.Find(w));
        Assert.Equal(16 * 768, StoredLinears.Read(g, "t16x768", 16, 768, WeightStorage.Fp32).Length); // fp32 only when asked
        var e = Assert.Throws<ModelFormatException>(() => StoredLinears.Read(g, "t16x768", 768, 16, WeightStorage.Stored));
        Assert.Contains("t16x768", e.Message);
    }
}
