using System.Text.Json;
using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;

namespace Workbench.Engine.Tests.Models;

/// <summary>
/// austen-16L A (a 16-layer Llama trained on five Austen novels; data/goldens/austen-16L, made in PyTorch and checked
/// against transformers 5.17) through the Hugging Face Llama path: logits, greedy continuation, importance profile,
/// held-out perplexity, with the tolerances goldens/README.md gives for a float32 reimplementation.
/// </summary>
public class AustenGoldenTests
{
    private static string G(string file) => Bundled.Path($"data/goldens/austen-16L/{file}");
    private static Decoder A => ModelHub.LoadDecoder("austen-16L");

    private static int[] Ids(string file) => Goldens.Npy(G(file)).Data.Select(x => (int)x).ToArray();

    [Fact]
    public void Logits_of_the_passage_match_pytorch_within_1e_4()
    {
        var ids = Ids("passage_ids.npy");
        var (want, shape) = Goldens.Npy(G("logits_A.npy"));
        Assert.Equal([ids.Length, A.Model.Config.Vocab], shape);
        var got = A.Logits(ids);
        double max = 0;
        for (int i = 0; i < want.Length; i++) max = Math.Max(max, Math.Abs(got[i] - want[i]));
        Assert.True(max < 1e-4, $"max |logit difference| {max}");
    }

    [Fact]
    public void Greedy_continuation_matches()
    {
        var g = JsonDocument.Parse(File.ReadAllText(G("greedy.json"))).RootElement.GetProperty("A");
        var prompt = g.GetProperty("prompt").GetString()!;
        var promptIds = g.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var generated = g.GetProperty("generated_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(promptIds, A.Tokenizer.Encode(prompt, bos: true));
        // run.c semantics: `steps` forward passes, each yielding the token at the next position (BOS is position 0).
        var result = A.Generate(prompt, promptIds.Length + generated.Length - 1, temperature: 0);
        Assert.Equal(promptIds.Concat(generated).ToArray(), result.Tokens);
    }

    [Fact]
    public void Importance_profile_matches_within_1e_3()
    {
        var (ids, shape) = Goldens.Npy(G("importance_ids.npy"));
        var seqs = Enumerable.Range(0, shape[0]).Select(r => ids.Skip(r * shape[1]).Take(shape[1]).Select(x => (int)x).ToArray()).ToArray();
        var scores = Importance.Measure(A.Model, seqs);
        var (want, wshape) = Goldens.Npy(G("importance_A.npy"));
        Assert.Equal([3, A.Model.Config.Layers], wshape);
        int L = wshape[1];
        for (int l = 0; l < L; l++)
        {
            Assert.True(Math.Abs(scores.Block[l] - want[l]) < 1e-3, $"block {l}: {scores.Block[l]} vs {want[l]}");
            Assert.True(Math.Abs(scores.Attention[l] - want[L + l]) < 1e-3, $"attention {l}: {scores.Attention[l]} vs {want[L + l]}");
            Assert.True(Math.Abs(scores.Mlp[l] - want[2 * L + l]) < 1e-3, $"mlp {l}: {scores.Mlp[l]} vs {want[2 * L + l]}");
        }
    }

    [Fact]
    public void Held_out_perplexity_matches_within_0_1_percent()
    {
        var ppl = JsonDocument.Parse(File.ReadAllText(G("ppl.json"))).RootElement.GetProperty("A").GetProperty("ppl_32k").GetDouble();
        double got = Goldens.AustenHeldOutPerplexity(ids => A.Logits(ids), A.Model.Config.Vocab);
        Assert.True(Math.Abs(got / ppl - 1) < 1e-3, $"perplexity {got} vs {ppl}");
    }
}
