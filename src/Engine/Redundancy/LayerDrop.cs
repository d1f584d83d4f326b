using Workbench.Engine.Models;

namespace Workbench.Engine.Redundancy;

/// <summary>
/// Which modules to drop, in the order they were chosen, and the scores each choice was made from
/// (one-shot: one table; iterative: one table per step, each measured on the model pruned so far).
/// </summary>
public sealed record DropPlan(Granularity Granularity, DropStrategy Strategy, IReadOnlyList<ModuleRef> Dropped,
    IReadOnlyList<ImportanceScores> Scores, IReadOnlySet<int> Never)
{
    /// <summary>The run-time skips (pass as <see cref="ForwardContext.Skips"/>).</summary>
    public ModuleSkips Skips => Modules.ToSkips(Dropped);
}

public static class LayerDropper
{
    /// <summary>
    /// Chooses <paramref name="count"/> modules of granularity <paramref name="g"/> to drop, least important first.
    /// One-shot ranks once on the full model; iterative drops one module, re-measures importance on the pruned model
    /// (the dropped modules skipped), and repeats. Modules in <paramref name="never"/> layers are never dropped.
    /// </summary>
    public static DropPlan Plan(ITransformerModel model, IReadOnlyList<int[]> calibration, Granularity g, int count,
        DropStrategy strategy = DropStrategy.OneShot, IEnumerable<int>? never = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(calibration);
        return Plan(model, calibration.Select(ids => ModelInput.Of(ids)).ToArray(), g, count, strategy, never, cancel);
    }

    /// <summary>The plan on any calibration inputs the model takes (images, an image with a prompt, token ids).</summary>
    public static DropPlan Plan(ITransformerModel model, IReadOnlyList<ModelInput> calibration, Granularity g, int count,
        DropStrategy strategy = DropStrategy.OneShot, IEnumerable<int>? never = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!Enum.IsDefined(g)) throw new ArgumentException($"granularity {(int)g} is not defined", nameof(g));
        if (!Enum.IsDefined(strategy)) throw new ArgumentException($"strategy {(int)strategy} is not defined", nameof(strategy));
        var neverSet = new SortedSet<int>(never ?? []);
        Modules.CheckLayers(model.Config, neverSet, nameof(never));
        var candidates = Modules.Of(model.Config, g).Where(m => !neverSet.Contains(m.Layer)).ToArray();
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > candidates.Length)
            throw new ArgumentOutOfRangeException(nameof(count), count,
                $"only {candidates.Length} {Names.Of(g)} modules can be dropped ({model.Config.Layers} layers{(neverSet.Count > 0 ? $", never-drop layers {string.Join(",", neverSet)}" : "")})");

        var dropped = new List<ModuleRef>();
        var scores = new List<ImportanceScores>();
        if (strategy == DropStrategy.OneShot)
        {
            var s = Importance.Measure(model, calibration, cancel: cancel);
            scores.Add(s);
            dropped.AddRange(s.Ranked(g).Select(x => x.Module).Where(m => !neverSet.Contains(m.Layer)).Take(count));
        }
        else
        {
            for (int step = 0; step < count; step++)
            {
                var s = Importance.Measure(model, calibration, Modules.ToSkips(dropped), cancel: cancel);
                scores.Add(s);
                dropped.Add(s.Ranked(g).Select(x => x.Module).First(m => !neverSet.Contains(m.Layer)));
            }
            if (count == 0) scores.Add(Importance.Measure(model, calibration, cancel: cancel));
        }
        return new DropPlan(g, strategy, dropped, scores, neverSet);
    }
}
