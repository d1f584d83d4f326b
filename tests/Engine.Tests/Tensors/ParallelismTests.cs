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

    [Fact]
    public void Chunks_run_once_each_on_the_team_and_through_the_fallback()
    {
        using var team = new WorkerTeam(2);
        foreach (int chunks in new[] { 0, 1, 2, 3, 97 })
            foreach (int parts in new[] { 0, 1, 2 })
            {
                var hits = new int[chunks];
                team.RunChunks(chunks, c => Interlocked.Increment(ref hits[c]), parts);
                Assert.All(hits, h => Assert.Equal(1, h));
            }
        var nested = new int[20 * 30];
        Parallelism.Chunks(20, 2, outer => Parallelism.Chunks(30, 2, inner => Interlocked.Increment(ref nested[outer * 30 + inner])));
        Assert.All(nested, h => Assert.Equal(1, h));
        Assert.ThrowsAny<Exception>(() => team.RunChunks(50, c => { if (c == 40) throw new InvalidOperationException("chunk failed"); }));
        int sum = 0;
        team.RunChunks(8, c => Interlocked.Add(ref sum, c));
        Assert.Equal(28, sum);
    }
}
