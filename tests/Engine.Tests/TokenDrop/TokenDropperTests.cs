using Workbench.Engine.Models;
using Workbench.Engine.Tests.Vision;
using Workbench.Engine.TokenDrop;
using Workbench.Engine.Vision;

namespace Workbench.Engine.Tests.TokenDrop;

public class TokenDropperTests
{
    private static VitModel Model => VitTestData.Model;

    private static IEnumerable<byte[]> Images() =>
        new[] { VitTestData.SyntheticImage() }.Concat(new[] { 0, 150, 333, 777 }.Select(i => VitTestData.Set.Pixels(i).ToArray()));

    [Fact]
    public void Pyramid_keeps_exactly_the_top_k_by_independently_recomputed_attention()
    {
        var schedule = PyramidSchedule.Pyramid([1, 2, 3], 0.5);
        foreach (var img in Images())
        {
            // Capture the residual stream entering each boundary (resid_post fires before the selector runs).
            var hooks = new Hooks().Capture(HookNames.ResidPost(0), HookNames.ResidPost(1), HookNames.ResidPost(2));
            var dropper = new TokenDropper(Model, schedule, TokenRoles.Cls);
            Model.Forward(img, new ForwardContext { Hooks = hooks, Selector = dropper.Selector });
            Assert.Equal([1, 2, 3], dropper.Stages.Select(s => s.Boundary));
            Assert.Equal([32, 16, 8], dropper.Stages.Select(s => s.Kept.Length));

            for (int s = 0; s < 3; s++)
            {
                var a = hooks.Get(HookNames.ResidPost(s));
                var state = new SequenceState(a.Rows, 64, a.TokenIndex.ToArray(), a.TokenIndex.ToArray());
                a.Data.CopyTo(state.Hidden, 0);
                var att = Model.QueryAttention(s + 1, state, Array.IndexOf(a.TokenIndex, 0));
                var patches = Enumerable.Range(0, a.Rows).Where(r => a.TokenIndex[r] != 0).ToArray();
                int k = patches.Length / 2;
                var expected = patches.OrderByDescending(r => att[r]).Take(k).Select(r => a.TokenIndex[r]).Order().ToArray();
                var stage = dropper.Stages[s];
                Assert.Equal(expected, stage.Kept);                       // the top-k, in original order
                Assert.Equal(stage.Kept.Order(), stage.Kept);
                Assert.DoesNotContain(0, stage.Dropped);                  // CLS is never a candidate
                Assert.DoesNotContain(0, stage.Candidates);
                Assert.Equal(patches.Select(r => a.TokenIndex[r]), stage.Candidates);
                Assert.Empty(stage.Kept.Intersect(stage.Dropped));
                // Every kept token scored at least as high as every dropped one.
                var score = stage.Candidates.Zip(stage.Scores).ToDictionary(p => p.First, p => p.Second);
                Assert.True(stage.Kept.Min(t => score[t]) >= stage.Dropped.Max(t => score[t]));
            }
        }
    }

    [Fact]
    public void Boundary_scores_are_the_golden_cls_attention_of_the_next_block()
    {
        var (_, golden) = VitTestData.Goldens();
        var dropper = new TokenDropper(Model, PyramidSchedule.FastV(1, 0.5), TokenRoles.Cls);
        Model.Forward(VitTestData.SyntheticImage(), new ForwardContext { Selector = dropper.Selector });
        var stage = Assert.Single(dropper.Stages);
        Assert.Equal(64, stage.Candidates.Length);
        for (int i = 0; i < 64; i++)
            Assert.True(Math.Abs(stage.Scores[i] - golden[1][stage.Candidates[i]]) < 1e-4, $"token {stage.Candidates[i]}");
        var top32 = Enumerable.Range(1, 64).OrderByDescending(t => golden[1][t]).Take(32).Order();
        Assert.Equal(top32, stage.Kept);
    }

    [Fact]
    public void Survivors_keep_their_positions_and_token_indices()
    {
        var hooks = new Hooks().Capture(HookNames.ResidPre(3));
        int[]? positions = null;
        var dropper = new TokenDropper(Model, PyramidSchedule.Pyramid([1, 2, 3], 0.5), TokenRoles.Cls);
        var ctx = new ForwardContext { Hooks = hooks, Selector = (l, st) => { var k = dropper.Select(l, st); return k; } };
        var state = Model.Embed(VitTestData.SyntheticImage());
        Model.RunBlocks(state, ctx);
        positions = state.Positions;
        Assert.Equal(9, state.Rows);
        Assert.Equal(state.TokenIndex.Take(9), positions);                 // ViT positions are the token indices
        Assert.Equal([0, .. dropper.Stages[^1].Kept], state.TokenIndex.Take(9));
        Assert.Equal(state.TokenIndex.Take(9), hooks.Get(HookNames.ResidPre(3)).TokenIndex);
    }

    [Fact]
    public void Dropped_run_equals_running_the_later_blocks_on_a_hand_built_shorter_state()
    {
        var img = VitTestData.Set.Pixels(42).ToArray();
        int[] rows = [0, 3, 5, 6, 17, 30, 31, 40, 63, 64];
        var dropped = Model.Forward(img, new ForwardContext { Selector = (l, s) => l == 1 ? rows : null });

        var full = Model.Embed(img);
        var ctx = ForwardContext.Default;
        Model.RunBlock(0, full, ctx);
        Model.RunBlock(1, full, ctx);
        var shorter = new SequenceState(rows.Length, 64, rows.ToArray(), rows.ToArray());
        for (int i = 0; i < rows.Length; i++) full.Row(rows[i]).CopyTo(shorter.Row(i));
        Model.RunBlock(2, shorter, ctx);
        Model.RunBlock(3, shorter, ctx);
        Assert.Equal(Model.Readout(shorter, ForwardContext.Default), dropped);
        Assert.NotEqual(Model.Forward(img), dropped);
    }

    [Fact]
    public void A_dropped_token_has_no_influence_on_the_result()
    {
        // Drop patch 10 after block 1: changing what patch 10 holds from then on cannot change the logits.
        var img = VitTestData.Set.Pixels(7).ToArray();
        int[] keep = Enumerable.Range(0, 65).Where(r => r != 10).ToArray();
        var a = Model.Forward(img, new ForwardContext { Selector = (l, s) => l == 1 ? keep : null });
        var hooks = new Hooks().Add(HookNames.ResidPost(1), (p, d) => d.Slice(10 * 64, 64).Fill(1e3f));
        var b = Model.Forward(img, new ForwardContext { Hooks = hooks, Selector = (l, s) => l == 1 ? keep : null });
        Assert.Equal(a, b);
    }

    [Fact]
    public void Ratio_one_drops_nothing_and_equals_the_full_run()
    {
        foreach (var img in Images())
        {
            var dropper = new TokenDropper(Model, PyramidSchedule.Pyramid([1, 2, 3], 1.0), TokenRoles.Cls);
            var logits = Model.Forward(img, new ForwardContext { Selector = dropper.Selector });
            Assert.Equal(Model.Forward(img), logits);
            Assert.All(dropper.Stages, s => { Assert.Empty(s.Dropped); Assert.Equal(64, s.Kept.Length); });
        }
    }

    [Fact]
    public void Protected_tokens_survive_even_the_harshest_schedule()
    {
        var roles = new TokenRoles(0, [0, 5, 64, 33]);
        foreach (var ranking in Enum.GetValues<DropRanking>())
        {
            var dropper = new TokenDropper(Model, PyramidSchedule.Pyramid([1, 2, 3], 0.01), roles, ranking, seed: 3);
            var state = Model.Embed(VitTestData.SyntheticImage());
            Model.RunBlocks(state, new ForwardContext { Selector = dropper.Selector });
            Assert.Equal([0, 5, 33, 64], state.TokenIndex.Take(state.Rows).Where(roles.Protected.Contains));
            Assert.Equal(5, state.Rows); // 4 protected + at least one droppable
            Assert.All(dropper.Stages, s => Assert.DoesNotContain(s.Dropped, roles.Protected.Contains));
        }
    }

    [Fact]
    public void Least_attended_keeps_the_bottom_k_and_random_is_seeded()
    {
        var img = VitTestData.SyntheticImage();
        var top = new TokenDropper(Model, PyramidSchedule.FastV(2, 0.25), TokenRoles.Cls);
        var least = new TokenDropper(Model, PyramidSchedule.FastV(2, 0.25), TokenRoles.Cls, DropRanking.LeastAttended);
        Model.Forward(img, new ForwardContext { Selector = top.Selector });
        Model.Forward(img, new ForwardContext { Selector = least.Selector });
        var s = least.Stages[0];
        Assert.Equal(top.Stages[0].Scores, s.Scores);          // same attention, opposite choice
        Assert.Equal(16, s.Kept.Length);
        var score = s.Candidates.Zip(s.Scores).ToDictionary(p => p.First, p => p.Second);
        Assert.True(s.Kept.Max(t => score[t]) <= s.Dropped.Min(t => score[t]));
        Assert.Empty(s.Kept.Intersect(top.Stages[0].Kept));

        int[] Kept(int seed)
        {
            var d = new TokenDropper(Model, PyramidSchedule.FastV(2, 0.5), TokenRoles.Cls, DropRanking.Random, seed);
            Model.Forward(img, new ForwardContext { Selector = d.Selector });
            return d.Stages[0].Kept;
        }
        Assert.Equal(Kept(11), Kept(11));
        Assert.NotEqual(Kept(11), Kept(12));
        Assert.Equal(32, Kept(5).Length);
    }

    [Fact]
    public void Stage_masks_track_the_surviving_patches()
    {
        var run = VitTokenDrop.Run(Model, VitTestData.SyntheticImage(), PyramidSchedule.Pyramid([1, 2, 3], 0.5));
        var masks = run.StageMasks();
        Assert.Equal([64, 32, 16, 8], masks.Select(m => m.Count(x => x)));
        for (int s = 1; s < 4; s++) Assert.Equal(run.Stages[s - 1].Kept.Select(t => t - 1), Enumerable.Range(0, 64).Where(p => masks[s][p]));
        // CLS attention over the original tokens: NaN exactly where a token is gone, rows sum to 1.
        Assert.Equal(65, run.ClsAttention[3].Length);
        Assert.Equal(9, run.ClsAttention[3].Count(x => !float.IsNaN(x)));
        Assert.Equal(1.0, run.ClsAttention[3].Where(x => !float.IsNaN(x)).Sum(), 4);
        var (_, golden) = VitTestData.Goldens();
        for (int j = 0; j < 65; j++) Assert.True(Math.Abs(run.ClsAttention[0][j] - golden[0][j]) < 1e-4);
    }

    [Theory]
    [InlineData(64, 0.5, 32)]
    [InlineData(5, 0.5, 3)]   // ceil
    [InlineData(10, 0.3, 3)]  // float noise does not round 3.0000000000000004 up
    [InlineData(7, 0.01, 1)]  // at least one
    [InlineData(9, 1.0, 9)]
    public void Keep_count_rounds_up_and_keeps_at_least_one(int previous, double ratio, int expected) =>
        Assert.Equal(expected, PyramidSchedule.KeepCount(previous, ratio));

    [Fact]
    public void Ratios_are_relative_to_the_previous_stage()
    {
        Assert.Equal([64, 32, 16, 8], PyramidSchedule.Pyramid([1, 2, 3], 0.5).DroppableCounts(64));
        Assert.Equal([576, 288, 72, 58], new PyramidSchedule([8, 16, 24], [0.5, 0.25, 0.8]).DroppableCounts(576));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-0.5)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void Ratios_outside_zero_one_are_rejected(double r)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PyramidSchedule.Pyramid([1, 2], r));
        Assert.Equal("keepRatios", e.ParamName);
    }

    [Fact]
    public void Bad_boundaries_and_roles_are_rejected_naming_the_parameter()
    {
        Assert.Equal("boundaries", Assert.Throws<ArgumentException>(() => PyramidSchedule.Pyramid([2, 1], 0.5)).ParamName);
        Assert.Equal("boundaries", Assert.Throws<ArgumentException>(() => PyramidSchedule.Pyramid([1, 1], 0.5)).ParamName);
        Assert.Equal("boundaries", Assert.Throws<ArgumentOutOfRangeException>(() => PyramidSchedule.Pyramid([0, 1], 0.5)).ParamName);
        Assert.Equal("boundaries", Assert.Throws<ArgumentException>(() => PyramidSchedule.Pyramid([], 0.5)).ParamName);
        Assert.Equal("boundaries", Assert.Throws<ArgumentOutOfRangeException>(() => new TokenDropper(Model, PyramidSchedule.Pyramid([2, 4], 0.5), TokenRoles.Cls)).ParamName);
        Assert.Equal("keepRatios", Assert.Throws<ArgumentException>(() => new PyramidSchedule([1, 2, 3], [0.5, 0.5])).ParamName);
        Assert.Equal("keep", Assert.Throws<ArgumentException>(() => PyramidSchedule.Parse("1,2", "half")).ParamName);
        Assert.Equal("layers", Assert.Throws<ArgumentException>(() => PyramidSchedule.Parse("1,x", "0.5")).ParamName);
        Assert.Equal("ranking", Assert.Throws<ArgumentOutOfRangeException>(() => new TokenDropper(Model, PyramidSchedule.FastV(1, 0.5), TokenRoles.Cls, (DropRanking)9)).ParamName);

        var all = new TokenRoles(0, Enumerable.Range(0, 65));
        Assert.Equal("protectedTokens", Assert.Throws<ArgumentException>(() => all.Droppable(65)).ParamName);
        var dropper = new TokenDropper(Model, PyramidSchedule.FastV(1, 0.5), all);
        Assert.Throws<ArgumentException>(() => Model.Forward(VitTestData.SyntheticImage(), new ForwardContext { Selector = dropper.Selector }));
        Assert.Equal("contextEnd", Assert.Throws<ArgumentException>(() => TokenRoles.Prompt(10, 2, 10)).ParamName);
        Assert.Equal(6, TokenRoles.Prompt(10, 2, 8).Droppable(10));
    }
}
