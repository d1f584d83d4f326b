using Workbench.Engine.Models;

namespace Workbench.Engine.Redundancy;

/// <summary>Two or more generations of one prompt side by side (full model, pruned models).</summary>
public sealed record StoryComparison(string Prompt, IReadOnlyList<Story> Stories)
{
    /// <summary>Generates <paramref name="steps"/> positions from <paramref name="prompt"/> with each drop (greedy, deterministic).</summary>
    public static StoryComparison Generate(Decoder model, string prompt, int steps, params (string Label, IReadOnlyList<ModuleRef> Dropped)[] variants)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(variants);
        if (variants.Length == 0) throw new ArgumentException("no variants to generate with", nameof(variants));
        var stories = variants.Select(v => new Story(v.Label, v.Dropped.ToArray(),
            model.Generate(prompt, steps, temperature: 0f, skips: Modules.ToSkips(v.Dropped)))).ToArray();
        return new StoryComparison(prompt, stories);
    }
}

/// <summary>One generation: its label, what was dropped (empty: the full model) and the engine's result.</summary>
public sealed record Story(string Label, IReadOnlyList<ModuleRef> Dropped, GenerationResult Result);
