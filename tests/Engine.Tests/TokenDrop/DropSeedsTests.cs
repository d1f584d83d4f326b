using Workbench.Engine.TokenDrop;

namespace Workbench.Engine.Tests.TokenDrop;

public class DropSeedsTests
{
    // Low 32 bits of SplitMix64 (Steele, Lea, Flood 2014) on state (seed << 32 | item); state 0 gives the reference
    // generator's well-known first output 0xE220A8397B1DCDAF. Fixed values: they must not change between processes.
    [Theory]
    [InlineData(0, 0, 2065550767)]
    [InlineData(1, 2, -1806667742)]
    [InlineData(-1, 999, 1206504815)]
    public void Seeds_are_splitmix64_and_the_same_in_every_process(int seed, int item, int expected) =>
        Assert.Equal(expected, DropSeeds.For(seed, item));

    [Fact]
    public void Random_ranking_of_an_image_set_is_reproducible_from_the_seed()
    {
        var set = Vision.VitTestData.Set.Every(100);
        var schedule = PyramidSchedule.FastV(1, 0.5);
        var a = VitTokenDrop.Evaluate(Vision.VitTestData.Model, set, schedule, DropRanking.Random, seed: 3);
        var b = VitTokenDrop.Evaluate(Vision.VitTestData.Model, set, schedule, DropRanking.Random, seed: 3, threads: 1);
        Assert.Equal(a.PerImage.Select(r => r.Run.Stages[0].Kept), b.PerImage.Select(r => r.Run.Stages[0].Kept));
        // Image i's kept set is the one a dropper seeded with DropSeeds.For(3, i) picks.
        var one = VitTokenDrop.Run(Vision.VitTestData.Model, set.Pixels(4), schedule, DropRanking.Random, DropSeeds.For(3, 4));
        Assert.Equal(one.Stages[0].Kept, a.PerImage[4].Run.Stages[0].Kept);
    }
}
