using Workbench.Engine.Models;

namespace Workbench.Engine.Tests.Models;

public class LlamaGoldenTests
{
    internal static readonly Lazy<LlamaModel> Bin = new(() => LlamaLoader.FromLlama2c(Bundled.Path("models/stories260K/stories260K.bin")));
    internal static readonly Lazy<LlamaModel> Gguf = new(() => LlamaLoader.FromGguf(Bundled.Path("models/stories260K/stories260K.gguf")));

    public static TheoryData<string> Sources => new() { "bin", "gguf" };

    private static LlamaModel Get(string source) => source == "bin" ? Bin.Value : Gguf.Value;

    [Theory]
    [MemberData(nameof(Sources))]
    public void Token_by_token_decode_matches_llama2c_logits(string source)
    {
        var model = Get(source);
        var (tokens, golden) = Goldens.Stories260KLogits();
        var ctx = new ForwardContext { Cache = KvCache.For(model.Config) };
        double worst = 0;
        for (int pos = 0; pos < tokens.Length; pos++)
        {
            var (logits, _) = model.Forward([tokens[pos]], pos, ctx);
            for (int v = 0; v < golden[pos].Length; v++) worst = Math.Max(worst, Math.Abs(logits[v] - golden[pos][v]));
        }
        Assert.True(worst <= 1e-4, $"max |logit - golden| = {worst}");
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void One_prefill_pass_matches_llama2c_logits_at_every_position(string source)
    {
        var model = Get(source);
        var (tokens, golden) = Goldens.Stories260KLogits();
        var (logits, state) = model.Forward(tokens, 0, new ForwardContext());
        Assert.Equal(tokens.Length, state.Rows);
        double worst = 0;
        for (int pos = 0; pos < tokens.Length; pos++)
            for (int v = 0; v < 512; v++) worst = Math.Max(worst, Math.Abs(logits[pos * 512 + v] - golden[pos][v]));
        Assert.True(worst <= 1e-4, $"max |logit - golden| = {worst}");
    }

    [Fact]
    public void Config_is_read_from_the_llama2c_header_and_gguf_metadata()
    {
        foreach (var m in new[] { Bin.Value, Gguf.Value })
        {
            var c = m.Config;
            Assert.Equal((5, 64, 172, 8, 4, 512), (c.Layers, c.Dim, c.MlpDim, c.Heads, c.KvHeads, c.Vocab));
        }
        Assert.Equal(512, Bin.Value.Config.MaxSeq);
        Assert.Equal(2048, Gguf.Value.Config.MaxSeq);
        Assert.True(Bin.Value.Weights.SharedOutput);
    }
}
