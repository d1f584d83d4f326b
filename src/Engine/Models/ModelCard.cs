using Microsoft.Data.Analysis;

namespace Workbench.Engine.Models;

public sealed record TensorCardEntry(string Name, string DType, long[] Shape, long Bytes);

/// <summary>Tensors of one role across the layers (e.g. <c>model.layers.*.mlp.down_proj.weight</c>): stored type, count, bytes.</summary>
public sealed record TensorGroup(string Name, string DType, int Count, long Bytes);

/// <summary>A model card: what a model is, where it came from, how big it is, and its tensors.</summary>
public sealed record ModelCard(
    string Name,
    string Source,
    string Format,
    ModelConfig Config,
    long Parameters,
    long WeightBytes,
    IReadOnlyList<TensorCardEntry> Tensors)
{
    /// <summary>
    /// The tensors grouped by role: a name's layer index (the number after layers. / blk. / h. / layer.) becomes *, so
    /// every layer's q projection is one group; one group per stored type. In the order the groups first appear.
    /// </summary>
    public IReadOnlyList<TensorGroup> Groups() => Tensors
        .GroupBy(t => (Name: LayerIndex.Replace(t.Name, "$1*"), t.DType))
        .Select(g => new TensorGroup(g.Key.Name, g.Key.DType, g.Count(), g.Sum(t => t.Bytes))).ToList();

    private static readonly System.Text.RegularExpressions.Regex LayerIndex = new(@"((?:^|\.)(?:layers|blk|h|layer)\.)\d+(?=\.)");

    public DataFrame ToDataFrame()
    {
        var df = new DataFrame(
            new StringDataFrameColumn("tensor", Tensors.Select(t => t.Name)),
            new StringDataFrameColumn("dtype", Tensors.Select(t => t.DType)),
            new StringDataFrameColumn("shape", Tensors.Select(t => "[" + string.Join(", ", t.Shape) + "]")),
            new Int64DataFrameColumn("bytes", Tensors.Select(t => (long?)t.Bytes)));
        return df;
    }
}
