using Workbench.Engine.Models;

namespace Workbench.Engine.Tests.Models;

public class ActivationCacheTests
{
    private static readonly Decoder Dec = ModelHub.LoadDecoder("stories260K");

    private static int[] Ids(string text) => Dec.Tokenizer.Encode(text, bos: true);

    [Fact]
    public void RunWithCache_gives_each_input_its_own_activations_and_the_readout()
    {
        var inputs = new[] { Ids("Once upon a time there was a cat."), Ids("The dog ran to the park and played all day.") };
        var sites = new[] { HookNames.ResidPost(1), HookNames.AttnPattern(2) };
        var caches = Dec.Model.RunWithCache(inputs.Select(t => ModelInput.Of(t)).ToArray(), sites);
        Assert.Equal(2, caches.Length);
        for (int i = 0; i < inputs.Length; i++)
        {
            var hooks = new Hooks().Capture(sites);
            var (logits, _) = Dec.Model.Forward(ModelInput.Of(inputs[i]), new ForwardContext { Hooks = hooks });
            Assert.Equal(logits, caches[i].Output);
            foreach (var s in sites)
            {
                Assert.Equal(hooks.Get(s).Shape, caches[i][s].Shape);
                Assert.Equal(hooks.Get(s).Data, caches[i][s].Data);
            }
            Assert.Equal(inputs[i].Length, caches[i][HookNames.ResidPost(1)].Rows);
        }
        Assert.Throws<KeyNotFoundException>(() => caches[0][HookNames.MlpOut(0)]);
    }

    [Fact]
    public void QueryAttention_is_the_head_mean_of_the_block_pattern_and_leaves_the_state_alone()
    {
        var ids = Ids("Lily found a red ball under the tree. She gave it to her friend Tom, who smiled.");
        int n = ids.Length, b = 2;
        var hooks = new Hooks().Capture(HookNames.ResidPre(b), HookNames.AttnPattern(b));
        Dec.Model.Forward(ModelInput.Of(ids), new ForwardContext { Hooks = hooks });
        var pre = hooks.Get(HookNames.ResidPre(b));
        var pattern = hooks.Get(HookNames.AttnPattern(b));
        int heads = Dec.Model.Config.Heads;
        Assert.Equal([heads, n, n], pattern.Shape);

        var state = new SequenceState(n, pre.Cols, Enumerable.Range(0, n).ToArray());
        pre.Data.CopyTo(state.Hidden, 0);
        var before = state.Hidden.ToArray();
        foreach (int q in new[] { 0, n / 2, n - 1 })
        {
            var att = Dec.Model.QueryAttention(b, state, q);
            Assert.Equal(n, att.Length);
            for (int j = 0; j < n; j++)
            {
                float sum = 0;
                for (int h = 0; h < heads; h++) sum += pattern.Data[(h * n + q) * n + j];
                // The ranking computes the query row alone (the few-rows kernel path), the forward every row
                // (the panel path): the same math in another summation order.
                Assert.Equal(sum / heads, att[j], 1e-6f);
                if (j > q) Assert.Equal(0f, att[j]); // causal: no attention to later tokens
            }
            Assert.Equal(1.0, att.Sum(), 5);
        }
        Assert.Equal(before, state.Hidden);
        Assert.Throws<ArgumentOutOfRangeException>(() => Dec.Model.QueryAttention(b, state, n));
        Assert.Throws<ArgumentOutOfRangeException>(() => Dec.Model.QueryAttention(Dec.Model.Config.Layers, state, 0));
    }

    [Fact]
    public void RunBlockWithCache_runs_one_block_on_a_copy()
    {
        var ids = Ids("A little bird sang a song.");
        int n = ids.Length;
        var hooks = new Hooks().Capture(HookNames.ResidPre(1), HookNames.ResidPost(1));
        Dec.Model.Forward(ModelInput.Of(ids), new ForwardContext { Hooks = hooks });
        var pre = hooks.Get(HookNames.ResidPre(1));
        var state = new SequenceState(n, pre.Cols, Enumerable.Range(0, n).ToArray());
        pre.Data.CopyTo(state.Hidden, 0);
        var cache = Dec.Model.RunBlockWithCache(1, state, [HookNames.ResidPost(1)]);
        Assert.Equal(hooks.Get(HookNames.ResidPost(1)).Data, cache[HookNames.ResidPost(1)].Data);
        Assert.Equal(pre.Data, state.Active.ToArray());
    }

    /// <summary>
    /// Every architecture's one-row ranking equals the head mean of its full forward pattern: BERT (padding-free), the
    /// ViT (no mask), and decoders with a sliding window (Mistral) or soft-capped scores (Gemma 2).
    /// </summary>
    [Theory]
    [InlineData("minilm")]
    [InlineData("vit-cifar10")]
    [InlineData("arch/mistral")]
    [InlineData("arch/gemma2")]
    public void QueryAttention_of_every_family_is_its_pattern_row(string which)
    {
        ITransformerModel model;
        ModelInput input;
        if (which == "minilm")
        {
            var enc = ModelHub.LoadEncoder("minilm");
            model = enc.Model;
            input = ModelInput.Of(enc.Tokenizer.Encode("The cat sat quietly on the warm mat by the door."));
        }
        else if (which == "vit-cifar10")
        {
            model = VitModel.LoadBundled();
            input = ModelInput.Of(Vision.VitTestData.SyntheticImage());
        }
        else
        {
            model = ModelHub.Load(Path.Combine(Bundled.Root, "data", "goldens", which.Replace("arch/", "arch" + Path.DirectorySeparatorChar))).Model;
            input = ModelInput.Of([4, 94, 230, 145, 145, 245, 131, 76, 227, 131, 51, 159, 128, 182, 153, 103, 107, 196, 91, 83, 249, 14, 140, 181]);
        }
        int b = model.Config.Layers - 1;
        var hooks = new Hooks().Capture(HookNames.ResidPre(b), HookNames.AttnPattern(b));
        model.Forward(input, new ForwardContext { Hooks = hooks });
        var pre = hooks.Get(HookNames.ResidPre(b));
        var pattern = hooks.Get(HookNames.AttnPattern(b));
        int heads = pattern.Shape[0], n = pattern.Shape[1];
        var state = new SequenceState(n, pre.Cols, Enumerable.Range(0, n).ToArray());
        pre.Data.CopyTo(state.Hidden, 0);
        foreach (int q in new[] { 0, n / 2, n - 1 })
        {
            var att = model.QueryAttention(b, state, q);
            for (int j = 0; j < n; j++)
            {
                float sum = 0;
                for (int h = 0; h < heads; h++) sum += pattern.Data[(h * n + q) * n + j];
                Assert.Equal(sum / heads, att[j], 1e-6f);
            }
        }
    }
}
