using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;
using Workbench.Engine.Requests;

namespace Workbench.Engine.Tests.Redundancy;

/// <summary>
/// Importance layer by layer (every sequence through block l, then block l's mapped pages released) against the
/// sequence-by-sequence passes it replaces: bit for bit, on fp32 models, an encoder, and checkpoints kept as stored
/// (a bf16 Hugging Face folder and a Q8_0 GGUF from bench make-model), with and without skipped modules. And the
/// redundancy request on a model without a tokenizer: seeded random token ids, said so; text refused naming --corpus.
/// </summary>
public sealed class StreamedImportanceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wb-stream-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly DecoderShape Shape = new("t", 3, 64, 4, 2, 96, 200, 128);

    private string Make(string type)
    {
        string path = Path.Combine(_dir, type == "bf16" ? "hf" : "m.gguf");
        if (!Path.Exists(path)) RandomCheckpoint.Write(Shape, type, 5, path);
        return path;
    }

    public static TheoryData<string> Models => new() { "stories260K", "babyllama", "minilm", "bf16", "q8_0" };

    [Theory, MemberData(nameof(Models))]
    public void Layer_by_layer_scores_equal_sequence_by_sequence_scores_bit_for_bit(string name)
    {
        var m = name is "bf16" or "q8_0" ? ModelHub.Load(Make(name)) : ModelHub.Load(name);
        var cal = m is Decoder { HasTokenizer: false } ? RedundancyInputs.RandomTokens(m.Config.Vocab, 3, 40, 1).Sequences : Shared.Calibration(m, samples: 3, seq: 40);
        foreach (var skips in new[] { ModuleSkips.None, new ModuleSkips(new HashSet<int> { 1 }, new HashSet<int> { 0 }) })
        {
            var streamed = Importance.Measure(m.Model, cal, skips);
            var whole = Importance.Measure(m.Model, cal, skips, layerByLayer: false);
            Assert.Equal(whole.Block, streamed.Block);
            Assert.Equal(whole.Attention, streamed.Attention);
            Assert.Equal(whole.Mlp, streamed.Mlp);
            Assert.Equal(whole.Tokens, streamed.Tokens);
            Assert.All(streamed.Block.Where((_, l) => !skips.SkipsBlock(l)), b => Assert.True(b > 0));
        }
    }

    [Fact]
    public void Released_pages_fault_back_with_the_same_values()
    {
        var d = ModelHub.LoadDecoder(Make("bf16"));
        var ids = new[] { 3, 1, 4, 1, 5, 9, 2, 6 };
        var before = d.Logits(ids);
        foreach (var l in d.Model.BlockLinears) StoredLinears.ReleasePages(l.Weight);
        StoredLinears.ReleasePages(d.Model.Weights.TokenEmbedding);
        Assert.Equal(before, d.Logits(ids));
        foreach (var l in d.Model.BlockLinears) StoredLinears.Prefetch(l.Weight);
        Assert.Equal(before, d.Logits(ids));
    }

    [Fact]
    public void A_stored_embedding_reads_the_rows_of_the_fp32_copy()
    {
        foreach (var path in new[] { Make("bf16"), Make("q8_0") })
        {
            var stored = ModelHub.LoadDecoder(path).Model;
            var fp32 = ModelHub.LoadDecoder(path, storage: WeightStorage.Fp32).Model;
            Assert.NotNull(StoredLinears.Find(stored.Weights.TokenEmbedding));
            Assert.Null(StoredLinears.Find(fp32.Weights.TokenEmbedding));
            int[] ids = [0, Shape.Vocab - 1, 17, 17];
            Assert.Equal(fp32.Embed(ids).Active.ToArray(), stored.Embed(ids).Active.ToArray());
        }
    }

    [Theory]
    [InlineData("bf16")]
    [InlineData("q8_0")]
    public void Without_a_tokenizer_redundancy_calibrates_on_seeded_random_ids_and_says_so(string type)
    {
        string path = Make(type);
        var a = new RedundancyRequest { Model = path, Granularity = "block", Samples = 3, Seq = 20, Seed = 9 }.Run();
        Assert.Null(a.Split);
        Assert.Contains("seeded random token ids", a.RandomTokens);
        Assert.Contains("seed 9", a.CalibrationSource);
        var want = RedundancyInputs.RandomTokens(Shape.Vocab, 3, 20, 9);
        Assert.Equal(want.Sequences, a.Calibration.Sequences);
        Assert.All(a.Calibration.Sequences.SelectMany(s => s), t => Assert.InRange(t, 0, Shape.Vocab - 1));
        Assert.NotEqual(want.Sequences, RedundancyInputs.RandomTokens(Shape.Vocab, 3, 20, 10).Sequences);
        Assert.Equal(Importance.Measure(ModelHub.Load(path).Model, want.Sequences).Block, a.Scores.Block);

        var e = Assert.Throws<OptionException>(() => new RedundancyRequest { Model = path, Granularity = "block", Corpus = "persuasion" }.Run());
        Assert.Equal("--corpus", e.Option);
        Assert.Contains("no tokenizer", e.Message);
        Assert.Equal("--model", Assert.Throws<OptionException>(() => new DropRequest { Model = path, Granularity = "block", Count = 1, NoSpeed = true }.Run()).Option);
        // a model with a tokenizer still calibrates on text
        Assert.Null(new RedundancyRequest { Model = "stories260K", Granularity = "block", Samples = 1, Seq = 16 }.Run().RandomTokens);
    }

    [Fact]
    public void Validate_then_run_loads_the_model_once_and_option_errors_come_before_any_load()
    {
        // Validate loads the folder; then its config.json is spoiled: the same request's Run still runs (no second load),
        // a copy made with `with` loads again and names the file.
        string folder = Path.Combine(_dir, "once");
        RandomCheckpoint.Write(Shape, "bf16", 5, folder);
        var r = new RedundancyRequest { Model = folder, Granularity = "block", Samples = 2, Seq = 8 };
        r.Validate();
        File.WriteAllText(Path.Combine(folder, "config.json"), "not json");
        Assert.Equal(2, r.Run().Calibration.Sequences.Count);
        Assert.Throws<ModelFormatException>(() => (r with { Seed = 1 }).Run());

        // options that need no model are checked before loading one: a junk file is never opened for these
        string junk = Path.Combine(_dir, "junk.gguf");
        File.WriteAllBytes(junk, new byte[64]);
        var j = new RedundancyRequest { Model = junk, Granularity = "block" };
        Assert.Throws<ModelFormatException>(j.Validate);
        Assert.Equal("--model", Assert.Throws<OptionException>(() => (j with { Model = Path.Combine(_dir, "absent") }).Validate()).Option);
        Assert.Equal("--samples", Assert.Throws<OptionException>(() => (j with { Samples = 0 }).Validate()).Option);
        Assert.Equal("--seq", Assert.Throws<OptionException>(() => (j with { Seq = 1 }).Validate()).Option);
        Assert.Equal("--corpus", Assert.Throws<OptionException>(() => (j with { Corpus = Path.Combine(_dir, "none.txt") }).Validate()).Option);
        Assert.Equal("--granularity", Assert.Throws<OptionException>(() => (j with { Granularity = "head" }).Validate()).Option);
    }
}
