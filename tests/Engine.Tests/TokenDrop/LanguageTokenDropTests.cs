using Workbench.Engine.Models;
using Workbench.Engine.TokenDrop;

namespace Workbench.Engine.Tests.TokenDrop;

public class LanguageTokenDropTests
{
    [Fact]
    public void Decoder_ratio_one_equals_the_full_model_and_dropping_costs_quality()
    {
        var dec = ModelHub.LoadDecoder("stories260K");
        var prompts = LanguageTokenDrop.TinyStoriesPrompts(3, 900);
        Assert.Equal(3, prompts.Count);
        var same = LanguageTokenDrop.EvaluateDecoder(dec, prompts, PyramidSchedule.Pyramid([1, 2, 3], 1.0), maxContinuation: 8);
        Assert.Equal(0, same.Kl, 9);
        Assert.Equal(1.0, same.Top1Agreement);
        Assert.Equal(same.PerplexityFull, same.PerplexityDropped, 9);
        Assert.Equal(1.0, same.FlopsRatio, 9);

        var half = LanguageTokenDrop.EvaluateDecoder(dec, prompts, PyramidSchedule.Pyramid([1, 2, 3], 0.5), maxContinuation: 8);
        Assert.True(half.Kl > 0 && double.IsFinite(half.Kl));
        Assert.Equal(same.PerplexityFull, half.PerplexityFull, 9); // the full reference does not depend on the schedule
        Assert.InRange(half.FlopsRatio, 0.2, 0.6);
        Assert.All(half.PerPrompt, p => Assert.True(p.ContextTokens > 100 && p.ProtectedTokens > 2));
    }

    [Fact]
    public void Dropped_prefill_keeps_bos_and_instruction_and_a_pruned_cache()
    {
        var dec = ModelHub.LoadDecoder("stories260K");
        var ids = dec.Tokenizer.Encode("Once upon a time there was a little girl who liked to play in the park with her dog.", bos: true);
        int n = ids.Length;
        var roles = TokenRoles.Prompt(n, 1, n - 4);
        var dropper = new TokenDropper(dec.Model, PyramidSchedule.FastV(2, 0.5), roles);
        var cache = KvCache.For(dec.Model.Config, n);
        var (_, state) = dec.Model.Forward(ids, 0, new ForwardContext { Cache = cache, Selector = dropper.Selector }, allRows: false);
        var kept = state.TokenIndex.Take(state.Rows).ToArray();
        Assert.Contains(0, kept);
        Assert.All(Enumerable.Range(n - 4, 4), t => Assert.Contains(t, kept));
        Assert.Equal(4 + 1 + PyramidSchedule.KeepCount(n - 5, 0.5), state.Rows);
        Assert.Equal(n, cache.Count(1));             // layers before the boundary cache every token
        Assert.Equal(state.Rows, cache.Count(2));    // later layers only the survivors
        Assert.Equal(kept, state.Positions.Take(state.Rows)); // rotary positions are the original ones
    }

    [Fact]
    public void Encoder_ratio_one_gives_cosine_one()
    {
        var enc = ModelHub.LoadEncoder("minilm");
        var texts = LanguageTokenDrop.TinyStoriesPrompts(3, 400).Select(p => p.Context).ToList();
        var same = LanguageTokenDrop.EvaluateEncoder(enc, texts, PyramidSchedule.Pyramid([2, 4], 1.0));
        Assert.Equal(1.0, same.MinCosine, 5);
        var half = LanguageTokenDrop.EvaluateEncoder(enc, texts, PyramidSchedule.Pyramid([2, 4], 0.5));
        Assert.InRange(half.MeanCosine, 0.5, 0.99999);
    }

    [Fact]
    public void One_reference_serves_many_schedules_with_the_same_numbers()
    {
        var dec = ModelHub.LoadDecoder("stories260K");
        var prompts = LanguageTokenDrop.TinyStoriesPrompts(3, 600);
        var reference = LanguageTokenDrop.Reference(dec, prompts, maxContinuation: 8);
        Assert.Equal(3, reference.Prompts.Count);
        foreach (var schedule in new[] { PyramidSchedule.Pyramid([1, 2, 3], 0.5), PyramidSchedule.FastV(2, 0.25) })
            foreach (var rank in new[] { DropRanking.Attention, DropRanking.Random })
            {
                var fresh = LanguageTokenDrop.EvaluateDecoder(dec, prompts, schedule, rank, seed: 3, maxContinuation: 8);
                var shared = LanguageTokenDrop.EvaluateDecoder(reference, schedule, rank, seed: 3);
                Assert.Equal(fresh.PerPrompt, shared.PerPrompt);
                Assert.Equal(fresh.Kl, shared.Kl);
                Assert.Equal(fresh.PerplexityFull, shared.PerplexityFull);
            }
        // The reference holds what the full model saw: BOS + context + instruction, and at most 8 continuation tokens.
        var first = reference.Prompts[0];
        Assert.Equal(dec.Tokenizer.BosId, first.Prompt[0]);
        Assert.Equal(dec.Tokenizer.Encode(prompts[0].Context, bos: true), first.Prompt[..first.ContextLength]);
        Assert.InRange(first.Continuation.Length, 1, 8);
        Assert.Equal(1.0, first.NextFull.Sum(), 9);
        Assert.Throws<ArgumentException>(() => LanguageTokenDrop.Reference(dec, []));
    }

    [Fact]
    public void Prompts_from_persuasion_are_cut_from_its_lines()
    {
        var prompts = LanguageTokenDrop.TinyStoriesPrompts(4, 1000, "persuasion");
        Assert.Equal(4, prompts.Count);
        var lines = File.ReadAllLines(Bundled.Persuasion).Select(l => l.Trim()).ToHashSet();
        foreach (var p in prompts)
        {
            Assert.InRange(p.Context.Length, 1, 1000);
            Assert.All(p.Context.Split('\n'), l => Assert.Contains(l, lines)); // whole paragraphs of the novel
            Assert.Contains(p.Instruction + p.Continuation, lines);        // one paragraph cut after its first sentence
            Assert.Contains(p.Instruction[^1], ".!?");
        }
    }
}
