using Microsoft.Data.Analysis;

namespace Workbench.Engine.Models;

public sealed record TensorCardEntry(string Name, string DType, long[] Shape, long Bytes);

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
