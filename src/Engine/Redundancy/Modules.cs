using Workbench.Engine.Models;
using Workbench.Engine.Requests;

namespace Workbench.Engine.Redundancy;

/// <summary>What a module is: a whole block, or one of its two sub-layers.</summary>
public enum ModuleKind { Block, Attention, Mlp }

/// <summary>What is ranked and dropped: blocks, attention layers, MLP layers, or attention and MLP layers ranked together.</summary>
public enum Granularity { Block, Attention, Mlp, Joint }

/// <summary>How a drop plan is chosen: rank once and drop the k least important (one-shot), or drop one at a time,
/// re-scoring the pruned model after each drop (iterative).</summary>
public enum DropStrategy { OneShot, Iterative }

/// <summary>One module of a model: block, attention or MLP of a layer.</summary>
public readonly record struct ModuleRef(int Layer, ModuleKind Kind)
{
    public override string ToString() => $"{Layer}.{Names.Kind(Kind)}";
}

/// <summary>The names the CLI and JSON use, and parsing with errors that name the parameter.</summary>
public static class Names
{
    public static string Kind(ModuleKind k) => k switch { ModuleKind.Block => "block", ModuleKind.Attention => "attention", _ => "mlp" };

    public static string Of(Granularity g) => g switch
    {
        Granularity.Block => "block", Granularity.Attention => "attention", Granularity.Mlp => "mlp", _ => "joint",
    };

    public static string Of(DropStrategy s) => s == DropStrategy.OneShot ? "one-shot" : "iterative";

    public static Granularity ParseGranularity(string? text, string paramName = "granularity") => text?.Trim().ToLowerInvariant() switch
    {
        "block" or "blocks" => Granularity.Block,
        "attention" or "attn" => Granularity.Attention,
        "mlp" => Granularity.Mlp,
        "joint" => Granularity.Joint,
        _ => throw Bad($"unknown granularity '{text}' (block, attention, mlp or joint)", paramName),
    };

    public static DropStrategy ParseStrategy(string? text, string paramName = "strategy") => text?.Trim().ToLowerInvariant() switch
    {
        "one-shot" or "oneshot" => DropStrategy.OneShot,
        "iterative" => DropStrategy.Iterative,
        _ => throw Bad($"unknown strategy '{text}' (one-shot or iterative)", paramName),
    };

    // Named as an option ("--granularity"): the requests' one-line OptionException; else a plain ArgumentException.
    private static ArgumentException Bad(string message, string paramName) =>
        paramName.StartsWith('-') ? new OptionException(paramName, message) : new ArgumentException(message, paramName);
}

public static class Modules
{
    /// <summary>The modules a granularity ranks, in layer order (joint: attention then MLP of each layer).</summary>
    public static IReadOnlyList<ModuleRef> Of(ModelConfig config, Granularity g) => Of(config.Layers, g);

    public static IReadOnlyList<ModuleRef> Of(int layerCount, Granularity g)
    {
        if (!Enum.IsDefined(g)) throw new ArgumentException($"granularity {(int)g} is not defined", nameof(g));
        var layers = Enumerable.Range(0, layerCount);
        return g switch
        {
            Granularity.Block => layers.Select(l => new ModuleRef(l, ModuleKind.Block)).ToArray(),
            Granularity.Attention => layers.Select(l => new ModuleRef(l, ModuleKind.Attention)).ToArray(),
            Granularity.Mlp => layers.Select(l => new ModuleRef(l, ModuleKind.Mlp)).ToArray(),
            _ => layers.SelectMany(l => new[] { new ModuleRef(l, ModuleKind.Attention), new ModuleRef(l, ModuleKind.Mlp) }).ToArray(),
        };
    }

    /// <summary>The run-time skips that drop these modules (a block drops both of its sub-layers).</summary>
    public static ModuleSkips ToSkips(IEnumerable<ModuleRef> dropped)
    {
        var attn = new SortedSet<int>();
        var mlp = new SortedSet<int>();
        foreach (var m in dropped)
        {
            if (m.Kind is ModuleKind.Block or ModuleKind.Attention) attn.Add(m.Layer);
            if (m.Kind is ModuleKind.Block or ModuleKind.Mlp) mlp.Add(m.Layer);
        }
        return new ModuleSkips(attn, mlp);
    }

    /// <summary>True when the skips already remove this module entirely.</summary>
    public static bool IsDropped(this ModuleSkips s, ModuleRef m) => m.Kind switch
    {
        ModuleKind.Block => s.SkipsBlock(m.Layer),
        ModuleKind.Attention => s.SkipsAttention(m.Layer),
        _ => s.SkipsMlp(m.Layer),
    };

    /// <summary>The skips as LLM-Drop lists: sorted layer indices.</summary>
    public static (int[] Attention, int[] Mlp) Lists(this ModuleSkips s) => (s.Attention.Order().ToArray(), s.Mlp.Order().ToArray());

    /// <summary>Checks layer indices against a model, naming <paramref name="paramName"/> when one is out of range.</summary>
    public static void CheckLayers(ModelConfig config, IEnumerable<int> layers, string paramName)
    {
        foreach (var l in layers)
            if ((uint)l >= (uint)config.Layers)
                throw new ArgumentOutOfRangeException(paramName, l, $"layer {l} is out of range: the model has layers 0..{config.Layers - 1}");
    }

    public static void CheckSkips(ModelConfig config, ModuleSkips skips, string paramName)
    {
        CheckLayers(config, skips.Attention, paramName);
        CheckLayers(config, skips.Mlp, paramName);
    }
}
