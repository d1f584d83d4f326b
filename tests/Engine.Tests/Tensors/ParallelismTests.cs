using Workbench.Engine.Tensors;

namespace Workbench.Engine.Tests.Tensors;

public class ParallelismTests
{
    [Fact]
    public void Every_index_runs_once_also_when_calls_nest_or_overlap()
    {
        var hits = new int[1000];
        // Nested: the inner calls find the team busy and fall back to Parallel.For.
        Parallelism.For(10, 2, outer => Parallelism.For(100, 2, inner => Interlocked.Increment(ref hits[outer * 100 + inner])));
        Assert.All(hits, h => Assert.Equal(1, h));
        // Overlapping callers on other threads.
        var counts = new int[4][];
        Parallel.For(0, 4, c =>
        {
            counts[c] = new int[5000];
            for (int rep = 0; rep < 20; rep++) Parallelism.For(5000, 2, i => Interlocked.Increment(ref counts[c][i]));
        });
        Assert.All(counts, a => Assert.All(a, h => Assert.Equal(20, h)));
    }

    [Fact]
    public void An_exception_in_a_part_reaches_the_caller_and_the_team_keeps_working()
    {
        Assert.ThrowsAny<Exception>(() => Parallelism.For(8, 2, i => { if (i == 7) throw new InvalidOperationException("part failed"); }));
        int sum = 0;
        Parallelism.For(8, 2, i => Interlocked.Add(ref sum, i));
        Assert.Equal(28, sum);
    }
}
