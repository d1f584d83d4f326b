using Microsoft.ML.OnnxRuntime;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Tests.Formats;

public class OnnxTests
{
    [Fact]
    public void MiniLm_initializers_and_nodes()
    {
        using var m = EmbeddedResources.OpenMiniLmModel();
        Assert.True(m.Tensors.Count > 90, $"{m.Tensors.Count} initializers");
        Assert.True(m.OpsetVersion > 0);
        var vocab = EmbeddedResources.MiniLmVocabulary();
        Assert.Equal(30522, vocab.Length);
        Assert.Equal([(long)vocab.Length, 384], m.Get("embeddings.word_embeddings.weight").Shape);
        Assert.Equal([384L], m.Get("encoder.layer.0.attention.output.LayerNorm.weight").Shape);

        // Weights feed MatMul as the second input, stored [in, out] (y = x W).
        var init = m.Tensors.ToDictionary(t => t.Name);
        var matmulWeights = m.Nodes.Where(n => n.OpType == "MatMul" && init.ContainsKey(n.Inputs[1]))
            .Select(n => init[n.Inputs[1]]).ToList();
        Assert.Equal(24, matmulWeights.Count(t => t.Shape.SequenceEqual([384L, 384]))); // q, k, v, o x 6 layers
        Assert.Equal(6, matmulWeights.Count(t => t.Shape.SequenceEqual([384L, 1536]))); // FFN up: in 384, out 1536
        Assert.Equal(6, matmulWeights.Count(t => t.Shape.SequenceEqual([1536L, 384]))); // FFN down
        var w = m.ReadF32(matmulWeights[0].Name);
        Assert.Equal(384 * 384, w.Length);
        Assert.All(w, v => Assert.True(float.IsFinite(v)));

        // ONNX Runtime parses the same bytes independently: same graph inputs and outputs.
        using var s = EmbeddedResources.Open(EmbeddedResources.MiniLmAssembly, EmbeddedResources.MiniLmModel);
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        using var session = new InferenceSession(ms.ToArray());
        var initNames = init.Keys.ToHashSet();
        Assert.Equal(session.InputMetadata.Keys.Order(), m.GraphInputs.Where(n => !initNames.Contains(n)).Order());
        Assert.Equal(session.OutputMetadata.Keys.Order(), m.GraphOutputs.Order());
    }

    [Fact]
    public void Missing_resource_names_the_resource()
    {
        var ex = Assert.Throws<ArgumentException>(() => OnnxModelFile.FromResource(EmbeddedResources.MiniLmAssembly, "nope.onnx"));
        Assert.Contains("nope.onnx", ex.Message);
    }
}
