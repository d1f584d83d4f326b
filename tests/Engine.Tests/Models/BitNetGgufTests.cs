using static Workbench.Engine.Tests.Goldens;
using System.Numerics.Tensors;
using System.Text.Json;
using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Xunit.Abstractions;

namespace Workbench.Engine.Tests.Models;

/// <summary>
/// bitnet.cpp's own GGUF architectures (bitnet-b1.58, bitnet-25, bitnet), written from the transformers BitNet goldens
/// the way its converters and llama-quantize write them (<see cref="HfToGguf.ConvertBitNet"/>: its tensor names, its
/// I2_S packing), loaded through ModelHub and checked against transformers' own logits and greedy continuation of
/// bitnet_packed (the 2B-4T checkpoint format), with the tolerance the packed Hugging Face folder meets (1e-4).
/// </summary>
public sealed class BitNetGgufTests(ITestOutputHelper output) : IDisposable
{
    private const double Tol = 1e-4;
    private readonly string _dir = Directory.CreateTempSubdirectory("wb-bitnet-gguf-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static string Folder(string family) => Path.GetDirectoryName(Bundled.Path($"data/goldens/arch/{family}/config.json"))!;

    private string Gguf(string from, string arch, string? act = null) =>
        HfToGguf.ConvertBitNet(Folder(from), Path.Combine(_dir, $"{from}-{arch}-{Guid.NewGuid():N}.gguf"), arch, act);

    private static int[] Json(string which, string key) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder("bitnet_packed"), $"gen_{which}.json"))).RootElement.GetProperty(key)
            .EnumerateArray().Select(e => e.GetInt32()).ToArray();


    private void MatchesTransformers(LlamaModel model, string label)
    {
        using var golden = NpzFile.Open(Path.Combine(Folder("bitnet_packed"), "golden.npz"));
        foreach (var which in new[] { "a", "b" })
        {
            var prompt = Json(which, "prompt");
            double d = MaxAbs(model.Forward(prompt, 0, new ForwardContext()).Logits, golden.ReadF32($"logits_{which}"));
            output.WriteLine($"{label} {which}: max |logit - transformers| {d:E2}");
            Assert.True(d <= Tol, $"{label} {which}: max |logit - transformers| = {d}");

            var want = Json(which, "generated");
            var ctx = new ForwardContext { Cache = KvCache.For(model.Config, prompt.Length + want.Length) };
            var (logits, _) = model.Forward(prompt, 0, ctx, allRows: false);
            var got = new List<int>();
            for (int k = 0; k < want.Length; k++)
            {
                got.Add(TensorPrimitives.IndexOfMax(logits));
                (logits, _) = model.Forward([got[^1]], prompt.Length + k, ctx, allRows: false);
            }
            Assert.Equal(want, got);
        }
    }

    [Theory]
    [InlineData("bitnet-b1.58", null)]
    [InlineData("bitnet-25", null)]
    [InlineData("bitnet", "relu2")]
    public void A_bitnet_cpp_i2s_file_loads_as_bitnet_on_the_packed_kernels_and_gives_transformers_logits(string arch, string? act)
    {
        var path = Gguf("bitnet_packed", arch, act);
        using (var g = GgufFile.Open(path))
        {
            Assert.Equal(arch, g.GetString("general.architecture"));
            Assert.Equal(GgmlType.I2_S, g.GgmlTypeOf("blk.0.ffn_down.weight"));
            Assert.True(g.Contains("blk.3.attn_sub_norm.weight") && g.Contains("blk.3.ffn_sub_norm.weight") && !g.Contains("output.weight"));
        }
        var model = (LlamaModel)ModelHub.LoadDecoder(path).Model;
        Assert.Equal("bitnet", model.Spec.Family);
        Assert.True(model.Spec.SubNorms);
        Assert.Equal(DecoderMlp.Relu2Glu, model.Spec.Mlp);
        // every block linear is the file's codes in the packed kernels, none an fp32 copy
        Assert.All(model.BlockLinears, l => Assert.NotNull(StoredLinears.FindTernary(l.Weight)));
        Assert.Equal("I2_S", model.Card.Tensors.Single(t => t.Name == "blk.0.attn_q.weight").DType);
        MatchesTransformers(model, $"{arch} I2_S");
    }

    [Fact]
    public void The_codes_and_scale_are_the_packed_folders_row_for_row()
    {
        var gguf = GgufDecoders.Load(Gguf("bitnet_packed", "bitnet-b1.58"));
        var hf = HfDecoders.Load(Folder("bitnet_packed"));
        var a = gguf.BlockLinears.ToArray();
        var b = hf.BlockLinears.ToArray();
        Assert.Equal(b.Length, a.Length);
        for (int i = 0; i < a.Length; i++)
        {
            Assert.Equal(b[i].Name, a[i].Name);
            // code * (1 / weight_scale) on both sides, bit for bit: no row permuted, no scale moved
            Assert.Equal(StoredLinears.Fp32(b[i].Weight), StoredLinears.Fp32(a[i].Weight));
        }
    }

    [Fact]
    public void With_fp32_weights_the_activations_are_still_int8_so_the_file_computes_the_same()
    {
        var path = Gguf("bitnet_packed", "bitnet-b1.58");
        var fp32 = GgufDecoders.Load(path, storage: WeightStorage.Fp32);
        Assert.All(fp32.BlockLinears, l => Assert.Null(StoredLinears.FindTernary(l.Weight)));
        Assert.True(fp32.Spec.QuantizedActivations);
        MatchesTransformers(fp32, "bitnet-b1.58 fp32 copy");
    }

    /// <summary>
    /// bitnet.cpp's own route from the master weights (preprocess-huggingface-bitnet.py's absmean ternarization, then
    /// I2_S) gives the codes transformers' offline quantizer put into bitnet_packed, so that file too matches its logits.
    /// </summary>
    [Fact]
    public void Converting_the_master_weights_as_bitnet_cpp_does_gives_the_packed_checkpoint()
    {
        var fromMaster = GgufDecoders.Load(Gguf("bitnet_master", "bitnet-b1.58"));
        var packed = HfDecoders.Load(Folder("bitnet_packed"));
        var a = fromMaster.BlockLinears.ToArray();
        var b = packed.BlockLinears.ToArray();
        int differ = 0;
        for (int i = 0; i < a.Length; i++)
        {
            var x = StoredLinears.Fp32(a[i].Weight);
            var y = StoredLinears.Fp32(b[i].Weight);
            for (int j = 0; j < x.Length; j++) if (Math.Sign(x[j]) != Math.Sign(y[j])) differ++;
        }
        output.WriteLine($"ternary codes differing from bitnet_packed's: {differ}");
        Assert.Equal(0, differ);
        MatchesTransformers(fromMaster, "bitnet-b1.58 from master weights");
    }

    [Fact]
    public void The_silu_bitnet_variant_names_the_field_and_lists_what_is_supported()
    {
        var e = Assert.Throws<ModelFormatException>(() => ModelHub.LoadDecoder(Gguf("bitnet_packed", "bitnet")));
        Assert.Equal("bitnet.hidden_activation", e.Field);
        Assert.Contains("silu", e.Message);
        foreach (var s in new[] { "relu2", "bitnet-b1.58", "bitnet-25" }) Assert.Contains(s, e.Message);
        e = Assert.Throws<ModelFormatException>(() => GgufDecoders.Load(Gguf("bitnet_packed", "bitnet", "gelu")));
        Assert.Equal("bitnet.hidden_activation", e.Field);
        Assert.Contains("'gelu'", e.Message);
    }

    /// <summary>I2_S packs the flattened tensor in 128-value blocks: rows of 64 are fine (the goldens'), a count off the blocks is not.</summary>
    [Fact]
    public void An_i2s_tensor_needs_whole_blocks_over_the_tensor_not_per_row()
    {
        var ok = Path.Combine(_dir, "rows64.gguf");
        HfToGguf.Write(ok, [("general.architecture", "gguf-quants-golden")], [("t", [6, 64], [])],
            encode: _ => (36u, HfToGguf.I2S(Enumerable.Range(0, 384).Select(i => (sbyte)(i % 3 - 1)).ToArray(), 0.5f)));
        using (var g = GgufFile.Open(ok))
        {
            Assert.True(g.TryReadTernary("t", out var t));
            Assert.Equal((6, 64), (t!.Rows, t.Cols));
            Assert.Equal(Enumerable.Range(0, 384).Select(i => (sbyte)(i % 3 - 1)), t.Values);
        }
        var bad = Path.Combine(_dir, "bad.gguf");
        HfToGguf.Write(bad, [("general.architecture", "gguf-quants-golden")], [("t", [3, 40], [])], encode: _ => (36u, new byte[120 / 4 + 32]));
        var e = Assert.Throws<ModelFormatException>(() => GgufFile.Open(bad));
        Assert.Equal("tensor 't'.ne[0]", e.Field);
        Assert.Contains("120 elements", e.Message);
    }
}
