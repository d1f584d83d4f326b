using Workbench.Engine.Costs;
using Workbench.Engine.Models;
using Workbench.Engine.TokenDrop;

namespace Workbench.Engine.Tests.TokenDrop;

public class FlopsTests
{
    [Fact]
    public void Small_swiglu_gqa_layer_by_hand()
    {
        // n 3, d 4, m 8, kv 2: projections 2*3*4*4 + 2*3*4*2 = 96 + 48; scores+mix 2*3*3*4 = 72; SwiGLU 3*3*4*8 = 288.
        var s = new TransformerShape(2, 4, 8, 2, MlpKind.SwiGlu);
        var l = Flops.Layer(s, 0, 3);
        Assert.Equal((144L, 72L, 288L, 504L), (l.Projections, l.Attention, l.Mlp, l.Total));
        var full = Flops.Full(s, 3);
        Assert.Equal(1008, full.TotalMacs);
        Assert.Equal(2016, full.TotalFlops);
    }

    [Fact]
    public void Vit_pyramid_by_hand()
    {
        var vit = new TransformerShape(4, 64, 128, 64, MlpKind.GeluTanh);
        // n = 65: 4*65*64^2 = 1,064,960; 2*65^2*64 = 540,800; 2*65*64*128 = 1,064,960.
        Assert.Equal(2_670_720, Flops.Layer(vit, 0, 65).Total);
        // 64 -> 32 -> 16 -> 8 patches plus CLS: 65, 33, 17, 9 tokens.
        //   n 33: 540,672 + 139,392 + 540,672 = 1,220,736
        //   n 17: 278,528 +  36,992 + 278,528 =   594,048
        //   n  9: 147,456 +  10,368 + 147,456 =   305,280
        var cost = PyramidSchedule.Pyramid([1, 2, 3], 0.5).Cost(vit, 64, 1);
        Assert.Equal([65, 33, 17, 9], cost.Layers.Select(x => x.Tokens));
        Assert.Equal(2_670_720 + 1_220_736 + 594_048 + 305_280, cost.TotalMacs);
        Assert.Equal(4_790_784.0 / 10_682_880.0, cost.RatioTo(Flops.Full(vit, 65)), 12);
        // Ranking at each boundary: K for n rows (n*64*64), one query row (64*64), scores (n*64); n = 65, 33, 17.
        Assert.Equal((65 + 33 + 17) * 4096L + 3 * 4096L + (65 + 33 + 17) * 64L, cost.RankingMacs);
    }

    [Fact]
    public void Llava_like_7b_fastv()
    {
        // 576 image tokens + 64 text tokens, FastV K=2 R=0.5: layers 0,1 see 640, the other 30 see 352.
        // A decoder: query i sees keys 0..i, so n tokens make 1 + 2 + ... + n = n(n+1)/2 pairs, 2 * 4096 MACs each.
        var s = TransformerShape.LlavaLike7B;
        Assert.True(s.Causal);
        long Pairs(long n) { long p = 0; for (long i = 0; i < n; i++) p += i + 1; return p; }
        long Layer(long n) => 4 * n * 4096L * 4096 + Pairs(n) * 2 * 4096 + 3 * n * 4096 * 11008;
        var cost = PyramidSchedule.FastV(2, 0.5).Cost(s, 576, 64);
        Assert.Equal(2 * Layer(640) + 30 * Layer(352), cost.TotalMacs);
        Assert.Equal(32 * Layer(640), Flops.Full(s, 640).TotalMacs);
        Assert.InRange(cost.RatioTo(Flops.Full(s, 640)), 0.55, 0.60);
    }

    [Fact]
    public void Causal_attention_counts_the_keys_each_query_sees_and_dropped_modules_cost_nothing()
    {
        // n 3 causal: pairs 1 + 2 + 3 = 6 (not 9), 2 * d = 8 MACs each.
        var s = new TransformerShape(2, 4, 8, 2, MlpKind.SwiGlu, Causal: true);
        Assert.Equal(48L, Flops.Layer(s, 0, 3).Attention);
        var skips = new ModuleSkips(new HashSet<int> { 1 }, new HashSet<int> { 0 });
        var l0 = Flops.Layer(s, 0, 3, skips);
        var l1 = Flops.Layer(s, 1, 3, skips);
        Assert.Equal((144L, 48L, 0L), (l0.Projections, l0.Attention, l0.Mlp));
        Assert.Equal((0L, 0L, 288L), (l1.Projections, l1.Attention, l1.Mlp));
    }

    [Fact]
    public void Drop_costs_count_with_the_same_model()
    {
        // stories260K-like decoder by hand: d 64, kv 32, m 172, SwiGLU, vocab 512, 5 layers; prompt 10, decode 4.
        var c = ModelHub.LoadDecoder("stories260K").Model.Config;
        Assert.True(c.IsCausal);
        long d = c.Dim, kv = c.KvDim, m = c.MlpDim, v = c.Vocab, L = c.Layers;
        var skips = new ModuleSkips(new HashSet<int> { 1 }, new HashSet<int> { 2, 3 });
        var cost = Workbench.Engine.Costs.DropCosts.Predict(c, skips, 10, 4);
        long attnW = d * d + 2 * d * kv + d * d, mlpW = 3 * d * m;
        long a = L - 1, f = L - 2;
        // prefill: every token through every kept projection (2 FLOPs per weight), 55 causal pairs, 4d FLOPs per pair, one head row.
        Assert.Equal(2.0 * 10 * (a * attnW + f * mlpW) + a * 55 * 4 * d + 2 * d * v, cost.PrefillFlops);
        // decode steps see 11, 12, 13, 14 keys: mean 12.5.
        Assert.Equal(2.0 * (a * attnW + f * mlpW) + a * 12.5 * 4 * d + 2 * d * v, cost.DecodeFlopsPerToken);
        Assert.Equal(4 * (a * attnW + f * mlpW), cost.WeightBytes);
        Assert.Equal(a * 2 * 4 * 14 * kv, cost.KvCacheBytes);
    }

    [Fact]
    public void Bad_shapes_and_stage_lists_are_rejected()
    {
        var s = new TransformerShape(4, 64, 128, 64, MlpKind.GeluTanh);
        Assert.Equal("boundaries", Assert.Throws<ArgumentException>(() => Flops.ForStages(s, [2, 1], [10, 5, 3])).ParamName);
        Assert.Equal("boundaries", Assert.Throws<ArgumentException>(() => Flops.ForStages(s, [4], [10, 5])).ParamName);
        Assert.Equal("tokensPerStage", Assert.Throws<ArgumentException>(() => Flops.ForStages(s, [1], [10])).ParamName);
        Assert.Equal("tokensPerLayer", Assert.Throws<ArgumentException>(() => Flops.ForTokens(s, [1, 2])).ParamName);
        Assert.Equal("KvDim", Assert.Throws<ArgumentOutOfRangeException>(() => Flops.Full(s with { KvDim = 0 }, 5)).ParamName);
        Assert.Equal("droppable", Assert.Throws<ArgumentOutOfRangeException>(() => PyramidSchedule.FastV(1, 0.5).Cost(s, 0, 1)).ParamName);
    }
}
