using System.Text.Json;
using Workbench.Engine.Formats;
using Workbench.Engine.Models;

namespace Workbench.Engine.Tests.Models;

/// <summary>
/// A Hugging Face BERT folder (config.json, model.safetensors with PyTorch's [out, in] Linear weights and
/// "bert."-prefixed names, vocab.txt) written from the ONNX MiniLM's initializers loads to the same encoder.
/// </summary>
public sealed class BertHuggingFaceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wb-bert-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Bert_safetensors_folder_gives_the_onnx_models_embeddings()
    {
        var onnx = MiniLmOnnxRuntimeTests.MiniLm.Value;
        var m = onnx.Model;
        var c = m.Config;
        var w = m.Weights;
        var t = new List<(string, int[], float[])>
        {
            ("bert.embeddings.word_embeddings.weight", [c.Vocab, c.Dim], w.WordEmbedding),
            ("bert.embeddings.position_embeddings.weight", [c.MaxSeq, c.Dim], w.PositionEmbedding),
            ("bert.embeddings.token_type_embeddings.weight", [w.TokenTypeEmbedding.Length / c.Dim, c.Dim], w.TokenTypeEmbedding),
            ("bert.embeddings.LayerNorm.weight", [c.Dim], w.EmbLnG),
            ("bert.embeddings.LayerNorm.bias", [c.Dim], w.EmbLnB),
        };
        for (int i = 0; i < c.Layers; i++)
        {
            var l = w.Layers[i];
            string p = $"bert.encoder.layer.{i}.";
            void Lin(string name, float[] weight, float[] bias, int o, int n)
            {
                t.Add((p + name + ".weight", [o, n], weight));
                t.Add((p + name + ".bias", [o], bias));
            }
            Lin("attention.self.query", l.Wq, l.Bq, c.Dim, c.Dim);
            Lin("attention.self.key", l.Wk, l.Bk, c.Dim, c.Dim);
            Lin("attention.self.value", l.Wv, l.Bv, c.Dim, c.Dim);
            Lin("attention.output.dense", l.Wo, l.Bo, c.Dim, c.Dim);
            Lin("intermediate.dense", l.Wi, l.Bi, c.MlpDim, c.Dim);
            Lin("output.dense", l.Wout, l.Bout, c.Dim, c.MlpDim);
            t.Add((p + "attention.output.LayerNorm.weight", [c.Dim], l.Ln1G));
            t.Add((p + "attention.output.LayerNorm.bias", [c.Dim], l.Ln1B));
            t.Add((p + "output.LayerNorm.weight", [c.Dim], l.Ln2G));
            t.Add((p + "output.LayerNorm.bias", [c.Dim], l.Ln2B));
        }
        SafetensorsWriter.Write(Path.Combine(_dir, "model.safetensors"), t);
        File.WriteAllText(Path.Combine(_dir, "config.json"), JsonSerializer.Serialize(new
        {
            architectures = new[] { "BertModel" }, model_type = "bert", hidden_size = c.Dim, intermediate_size = c.MlpDim,
            num_hidden_layers = c.Layers, num_attention_heads = c.Heads, vocab_size = c.Vocab, max_position_embeddings = c.MaxSeq,
            hidden_act = "gelu", layer_norm_eps = 1e-12, type_vocab_size = 2,
        }));
        File.WriteAllLines(Path.Combine(_dir, "vocab.txt"), EmbeddedResources.MiniLmVocabulary());

        var hf = ModelHub.LoadEncoder(_dir);
        foreach (var s in MiniLmOnnxRuntimeTests.Sentences(5))
            Assert.Equal(onnx.Embed(s), hf.Embed(s));
    }
}
