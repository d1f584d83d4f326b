using Workbench.Engine.Costs;
using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;
using Xunit.Abstractions;

namespace Workbench.Engine.Tests.Redundancy;

public class DropTests(ITestOutputHelper output)
{
    private static LlamaModel WithLayer(LlamaModel m, int layer, Func<LlamaLayer, LlamaLayer> edit)
    {
        var layers = m.Weights.Layers.ToArray();
        layers[layer] = edit(layers[layer]);
        var w = new LlamaWeights { TokenEmbedding = m.Weights.TokenEmbedding, Layers = layers, FinalNorm = m.Weights.FinalNorm, Output = m.Weights.Output };
        return new LlamaModel(m.Config, w, m.Card);
    }

    private static LlamaLayer Copy(LlamaLayer l, float[]? wo = null, float[]? w2 = null) => new()
    {
        AttnNorm = l.AttnNorm, Wq = l.Wq, Wk = l.Wk, Wv = l.Wv, Wo = wo ?? l.Wo, FfnNorm = l.FfnNorm, W1 = l.W1, W2 = w2 ?? l.W2, W3 = l.W3,
    };

    private static int[] Tokens(Decoder d) => Shared.Calibration(d, 1, 40)[0];

    /// <summary>
    /// In a pre-norm block a module adds its output to the residual stream, so a module whose output projection is
    /// zero contributes exactly nothing: a hand-built model with that layer's o_proj (attention) or down_proj (MLP)
    /// zeroed must give the same logits, bit for bit, as the original model with the module skipped.
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(4)]
    public void Skipped_module_equals_model_with_zeroed_output_projection(int layer)
    {
        var m = Shared.Stories.Model;
        var ids = Tokens(Shared.Stories);
        var noAttn = WithLayer(m, layer, l => Copy(l, wo: new float[l.Wo.Length]));
        var noMlp = WithLayer(m, layer, l => Copy(l, w2: new float[l.W2.Length]));
        var skipAttn = new ForwardContext { Skips = Modules.ToSkips([new ModuleRef(layer, ModuleKind.Attention)]) };
        var skipMlp = new ForwardContext { Skips = Modules.ToSkips([new ModuleRef(layer, ModuleKind.Mlp)]) };
        Assert.Equal(noAttn.Forward(ids, 0, new ForwardContext()).Logits, m.Forward(ids, 0, skipAttn).Logits);
        Assert.Equal(noMlp.Forward(ids, 0, new ForwardContext()).Logits, m.Forward(ids, 0, skipMlp).Logits);
        // and skipping really changes the output
        Assert.NotEqual(m.Forward(ids, 0, new ForwardContext()).Logits, m.Forward(ids, 0, skipAttn).Logits);
    }

    /// <summary>Dropping a block equals running the other blocks by hand, for the decoder and the post-LN encoder.</summary>
    [Fact]
    public void Skipped_block_equals_running_the_other_blocks_by_hand()
    {
        foreach (var lm in new LoadedModel[] { Shared.Stories, Shared.MiniLm })
        {
            var ids = Shared.Calibration(lm, 1, 40)[0];
            const int drop = 1;
            var viaSkips = Importance.Hidden(lm.Model, ids, new ForwardContext { Skips = Modules.ToSkips([new ModuleRef(drop, ModuleKind.Block)]) });
            var manual = Importance.Hidden(lm.Model, ids, new ForwardContext { Skips = new ModuleSkips(Enumerable.Range(0, lm.Config.Layers).ToHashSet(), Enumerable.Range(0, lm.Config.Layers).ToHashSet()) });
            // 'manual' so far is the embedding; run every block except `drop` with nothing skipped.
            for (int l = 0; l < lm.Config.Layers; l++)
                if (l != drop) lm.Model.RunBlock(l, manual, new ForwardContext());
            Assert.Equal(manual.Active.ToArray(), viaSkips.Active.ToArray());
        }
    }

    /// <summary>A skipped attention layer never allocates its KV cache; the bytes match the cost model's prediction.</summary>
    [Fact]
    public void Dropped_attention_allocates_no_kv_cache_and_bytes_match_prediction()
    {
        var m = Shared.Stories.Model;
        var ids = Tokens(Shared.Stories);
        var skips = Modules.ToSkips([new ModuleRef(1, ModuleKind.Attention), new ModuleRef(3, ModuleKind.Block), new ModuleRef(4, ModuleKind.Mlp)]);
        var (_, _, kvFull) = DropEvaluator.DecodeRun(m, ids.AsSpan(0, 8), 8, ModuleSkips.None);
        var (_, _, kvPruned) = DropEvaluator.DecodeRun(m, ids.AsSpan(0, 8), 8, skips);
        Assert.Equal(DropCosts.Predict(m.Config, ModuleSkips.None, 8, 8).KvCacheBytes, kvFull);
        Assert.Equal(DropCosts.Predict(m.Config, skips, 8, 8).KvCacheBytes, kvPruned);
        Assert.Equal(kvFull * 3 / 5, kvPruned); // 2 of 5 attention layers dropped
        var cache = KvCache.For(m.Config, 16);
        m.Forward(ids.AsSpan(0, 4), 0, new ForwardContext { Cache = cache, Skips = skips });
        Assert.False(cache.IsAllocated(1));
        Assert.False(cache.IsAllocated(3));
        Assert.True(cache.IsAllocated(4));
    }

    public static TheoryData<string, Granularity> FirstDropCases()
    {
        var d = new TheoryData<string, Granularity>();
        foreach (var m in new[] { "stories260K", "minilm" })
            foreach (var g in Enum.GetValues<Granularity>()) d.Add(m, g);
        return d;
    }

    [Theory]
    [MemberData(nameof(FirstDropCases))]
    public void Iterative_and_one_shot_agree_on_the_first_drop(string name, Granularity g)
    {
        var m = ModelHub.Load(name);
        var cal = Shared.Calibration(m, 2, 48);
        var one = LayerDropper.Plan(m.Model, cal, g, 2, DropStrategy.OneShot);
        var it = LayerDropper.Plan(m.Model, cal, g, 2, DropStrategy.Iterative);
        Assert.Equal(one.Dropped[0], it.Dropped[0]);
        Assert.Equal(one.Scores[0].Ranked(g)[0].Module, one.Dropped[0]);
        Assert.Equal(2, it.Scores.Count);
        Assert.True(it.Scores[1].Skips.IsDropped(it.Dropped[0])); // step 2 was measured on the pruned model
        output.WriteLine($"{name} {g}: one-shot {string.Join(" ", one.Dropped)}; iterative {string.Join(" ", it.Dropped)}");
    }

    [Fact]
    public void Never_list_and_count_are_checked()
    {
        var m = Shared.Stories;
        var cal = Shared.Calibration(m, 1, 32);
        var plan = LayerDropper.Plan(m.Model, cal, Granularity.Attention, 4, never: [2]);
        Assert.DoesNotContain(plan.Dropped, x => x.Layer == 2);
        Assert.Equal(4, plan.Dropped.Count);
        Assert.Equal("count", Assert.ThrowsAny<ArgumentException>(() => LayerDropper.Plan(m.Model, cal, Granularity.Attention, 5, never: [2])).ParamName);
        Assert.Equal("count", Assert.ThrowsAny<ArgumentException>(() => LayerDropper.Plan(m.Model, cal, Granularity.Block, 6)).ParamName);
        Assert.Equal("count", Assert.ThrowsAny<ArgumentException>(() => LayerDropper.Plan(m.Model, cal, Granularity.Mlp, -1)).ParamName);
        Assert.Equal("never", Assert.ThrowsAny<ArgumentException>(() => LayerDropper.Plan(m.Model, cal, Granularity.Mlp, 1, never: [5])).ParamName);
        Assert.Equal("never", Assert.ThrowsAny<ArgumentException>(() => LayerDropper.Plan(m.Model, cal, Granularity.Mlp, 1, never: [-1])).ParamName);
        Assert.Equal(10, LayerDropper.Plan(m.Model, cal, Granularity.Joint, 10).Skips.Attention.Count * 2);
    }

    /// <summary>
    /// The paper's claim, on real models: dropping the k least important attention layers costs less quality than
    /// dropping the k most important ones (decoder: KL to the full model; encoder: embedding cosine to the full model).
    /// </summary>
    [Theory]
    [InlineData("stories260K")]
    [InlineData("babyllama")]
    [InlineData("minilm")]
    public void Dropping_least_important_attention_costs_less_than_dropping_most_important(string name)
    {
        var m = ModelHub.Load(name);
        var cal = Shared.Calibration(m, 4, 64);
        var eval = new DropEvaluator(m, Shared.SplitFor(m), new EvaluationOptions(Samples: 4, SeqLen: 64, Sentences: 24));
        var ranked = Importance.Measure(m.Model, cal).Ranked(Granularity.Attention).Select(x => x.Module).ToArray();
        for (int k = 1; k <= 2; k++)
        {
            var least = eval.Quality(Modules.ToSkips(ranked.Take(k)));
            var most = eval.Quality(Modules.ToSkips(ranked.TakeLast(k)));
            output.WriteLine($"{name} k={k}: least [{string.Join(" ", ranked.Take(k))}] {Describe(least)}; most [{string.Join(" ", ranked.TakeLast(k))}] {Describe(most)}");
            if (m is Decoder)
            {
                Assert.True(least.Kl < most.Kl, $"KL least {least.Kl} vs most {most.Kl}");
                Assert.True(least.Top1Agreement >= most.Top1Agreement);
            }
            else
            {
                Assert.True(least.EmbeddingCosine > most.EmbeddingCosine, $"cosine least {least.EmbeddingCosine} vs most {most.EmbeddingCosine}");
            }
        }
    }

    private static string Describe(QualityReport q) => q.Kl is { } kl
        ? $"KL {kl:F4}, top-1 {q.Top1Agreement:F3}, ppl {q.Perplexity:F3} (full {q.PerplexityFull:F3})"
        : $"cosine {q.EmbeddingCosine:F4}, spearman {q.Spearman:F4}";

    [Fact]
    public void Sweep_rows_run_from_the_full_model_to_every_module_dropped()
    {
        var m = Shared.Stories;
        var eval = new DropEvaluator(m, Shared.SplitFor(m), new EvaluationOptions(Samples: 2, SeqLen: 64, SpeedDecode: 8, SpeedRuns: 1));
        var sweep = DropSweep.Run(eval, Shared.Calibration(m, 2, 64), Granularity.Attention, DropStrategy.Iterative);
        Assert.Equal(6, sweep.Rows.Count);
        Assert.Equal(0, sweep.Rows[0].Quality.Kl!.Value, 9);
        Assert.Equal(1, sweep.Rows[0].Quality.Top1Agreement);
        Assert.Equal(sweep.Rows[0].Quality.PerplexityFull!.Value, sweep.Rows[0].Quality.Perplexity!.Value, 9);
        Assert.Equal(0, sweep.Rows[5].Speed!.KvCacheBytes);
        var df = sweep.ToDataFrame();
        Assert.Equal(6, df.Rows.Count);
        Assert.Contains("kl", df.Columns.Select(c => c.Name));
        Assert.Contains("decode_tokens_per_s", df.Columns.Select(c => c.Name));
        for (int k = 0; k < 6; k++) Assert.Equal(sweep.Rows[k].Predicted.KvCacheBytes, sweep.Rows[k].Speed!.KvCacheBytes);
        output.WriteLine(df.ToString());
    }

    [Fact]
    public void Spearman_matches_hand_computed_values()
    {
        // ranks differ by one swap in two places: rho = 1 - 6 * 4 / (5 * 24) = 0.8
        Assert.Equal(0.8, DropEvaluator.Spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]), 12);
        Assert.Equal(-1, DropEvaluator.Spearman([1, 2, 3], [30, 20, 10]), 12);
        // ties get the mean rank: x ranks [1, 2.5, 2.5, 4]
        Assert.Equal([1, 2.5, 2.5, 4], DropEvaluator.Ranks([0.1, 0.5, 0.5, 0.9]));
    }
}
