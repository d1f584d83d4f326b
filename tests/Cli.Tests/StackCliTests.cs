using System.Text.Json;
using Workbench.Engine.Models;
using Workbench.Engine.Stacking;

namespace Workbench.Cli.Tests;

/// <summary>`workbench stack` as a child process: the JSON contract on the bundled pair, and bad options.</summary>
public class StackCliTests
{
    [Fact]
    public void Stack_json_has_every_step_with_sane_numbers()
    {
        var (code, output, err) = CliRunner.Run("stack", "--model", "austen-16L", "--ternary", "austen-16L-ternary",
            "--drop-attention", "4", "--pyramid", "4,8,12", "--keep", "0.5", "--format", "i2s", "--json");
        Assert.True(code == 0, err);
        var j = JsonDocument.Parse(output).RootElement;
        var steps = j.GetProperty("steps").EnumerateArray().ToArray();
        Assert.Equal(new[] { "full", "+drop", "+pyramid", "+ternary" }, steps.Select(s => s.GetProperty("name").GetString()));
        string[] fields = ["perplexity", "kl", "top1", "decode_tokens_per_s", "prefill_tokens_per_s", "weight_bytes", "kv_cache_bytes",
            "flops_per_token", "energy_j_per_token", "measured_speedup", "predicted_speedup"];
        foreach (var s in steps)
            foreach (var f in fields)
                Assert.True(s.GetProperty(f).GetDouble() >= 0 && double.IsFinite(s.GetProperty(f).GetDouble()), $"{s.GetProperty("name")}.{f}");
        double D(int i, string f) => steps[i].GetProperty(f).GetDouble();
        Assert.All(Enumerable.Range(0, 4), i => Assert.True(D(i, "measured_speedup") > 0 && D(i, "predicted_speedup") > 0));
        Assert.Equal(1, D(0, "measured_speedup"));
        Assert.Equal(0, D(0, "kl"), 12);
        Assert.Equal(4, j.GetProperty("dropped_attention").GetArrayLength());
        // Ternary: the packed block linears are over 10x smaller than fp32 (the fp32 head is the same in both).
        var a = ModelHub.LoadDecoder("austen-16L");
        long head = 4L * a.Config.Vocab * a.Config.Dim;
        Assert.True(D(3, "weight_bytes") - head < (D(2, "weight_bytes") - head) / 10);
        Assert.True(D(3, "energy_j_per_token") < D(2, "energy_j_per_token"));
        Assert.True(D(2, "kv_cache_bytes") < D(1, "kv_cache_bytes") && D(1, "kv_cache_bytes") < D(0, "kv_cache_bytes"));

        // The full step's perplexity is A's on the same held-out windows computed another way: plain forwards, no cache.
        var (_, windows, _) = new StackRequest { Model = "austen-16L", DropAttention = 4 }.Texts(a);
        int prompt = j.GetProperty("prompt_tokens").GetInt32(), v = a.Config.Vocab;
        double nll = 0;
        long n = 0;
        foreach (var w in windows)
        {
            var logits = a.Logits(w);
            for (int i = prompt; i < w.Length; i++, n++)
            {
                var row = logits.AsSpan((i - 1) * v, v);
                float max = System.Numerics.Tensors.TensorPrimitives.Max(row);
                double z = 0;
                foreach (var x in row) z += Math.Exp(x - max);
                nll += Math.Log(z) + max - row[w[i]];
            }
        }
        Assert.Equal(Math.Exp(nll / n), D(0, "perplexity"), 1e-4 * D(0, "perplexity"));
    }

    [Theory]
    [InlineData("--model", "austen-16L")]
    [InlineData("--drop-attention", "4")]
    [InlineData("--model", "austen-16L", "--drop-attention", "x")]
    [InlineData("--model", "austen-16L", "--drop-attention", "4", "--pyramid", "4,8")]
    [InlineData("--model", "austen-16L", "--drop-attention", "4", "--pyramid", "8,4", "--keep", "0.5")]
    [InlineData("--model", "austen-16L", "--drop-attention", "4", "--pyramid", "4,16", "--keep", "0.5")]
    [InlineData("--model", "austen-16L", "--drop-attention", "4", "--keep", "0.5")]
    [InlineData("--model", "austen-16L", "--drop-attention", "4", "--format", "q4")]
    [InlineData("--model", "austen-16L", "--drop-attention", "40")]
    [InlineData("--model", "austen-16L", "--ternary", "stories260K", "--drop-attention", "4")]
    [InlineData("--model", "/no/such/model", "--drop-attention", "4")]
    public void Bad_options_exit_2_with_one_line(params string[] args)
    {
        var (code, output, err) = CliRunner.Run(["stack", .. args]);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
