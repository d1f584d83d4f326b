using System.CommandLine;
using System.Text.Json;
using Workbench.Cli.Commands;
using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;
using Workbench.Engine.Text;

namespace Workbench.Cli.Tests;

[CollectionDefinition("Console", DisableParallelization = true)]
public class ConsoleCollection;

/// <summary>The `redundancy` and `drop` verbs, invoked in-process (Console redirected, so this collection runs alone).</summary>
[Collection("Console")]
public class CommandTests
{
    private static (int Exit, string Out, string Err) Invoke(params string[] args)
    {
        var root = new RootCommand { RedundancyCommand.Create(), DropCommand.Create() };
        var (o, e) = (Console.Out, Console.Error);
        var so = new StringWriter(); var se = new StringWriter();
        Console.SetOut(so); Console.SetError(se);
        try { return (root.Parse(args).Invoke(), so.ToString(), se.ToString()); }
        finally { Console.SetOut(o); Console.SetError(e); }
    }

    [Fact]
    public void Redundancy_json_lists_every_module_with_the_engine_scores()
    {
        var (exit, stdout, stderr) = Invoke("redundancy", "--model", "stories260K", "--granularity", "attention", "--samples", "2", "--seq", "64", "--seed", "5", "--json");
        Assert.True(exit == 0, stderr);
        var doc = JsonDocument.Parse(stdout).RootElement;
        var modules = doc.GetProperty("modules").EnumerateArray().ToArray();
        Assert.Equal(5, modules.Length);
        var d = ModelHub.LoadDecoder("stories260K");
        var cal = Corpus.Load(Bundled.TinyStories).Split(5).Calibration(t => d.Tokenizer.Encode(t), 2, 64, pack: true).Sequences;
        var want = Importance.Measure(d.Model, cal);
        for (int l = 0; l < 5; l++)
        {
            Assert.Equal(l, modules[l].GetProperty("layer").GetInt32());
            Assert.Equal("attention", modules[l].GetProperty("kind").GetString());
            Assert.Equal(want.Attention[l], modules[l].GetProperty("importance").GetDouble(), 12);
        }
    }

    [Fact]
    public void The_held_out_novel_is_named_with_corpus_persuasion_and_an_unknown_name_is_one_line()
    {
        var (exit, stdout, stderr) = Invoke("redundancy", "--model", "stories260K", "--granularity", "mlp", "--samples", "2", "--seq", "32", "--corpus", "persuasion", "--json");
        Assert.True(exit == 0, stderr);
        var d = ModelHub.LoadDecoder("stories260K");
        var cal = Corpus.Load("persuasion").Split(0).Calibration(t => d.Tokenizer.Encode(t), 2, 32, pack: true).Sequences;
        var want = Importance.Measure(d.Model, cal);
        var modules = JsonDocument.Parse(stdout).RootElement.GetProperty("modules").EnumerateArray().ToArray();
        Assert.Equal(want.Mlp, modules.Select(m => m.GetProperty("importance").GetDouble()));

        var (bad, _, err) = Invoke("drop", "--model", "stories260K", "--granularity", "mlp", "--count", "1", "--corpus", "middlemarch");
        Assert.Equal(2, bad);
        Assert.Contains("--corpus 'middlemarch' does not exist (a text file, or a bundled corpus: persuasion, emma)", err);
        Assert.Single(err.Trim().Split('\n'));
    }

    [Fact]
    public void Drop_json_reports_dropped_quality_and_speed()
    {
        var (exit, stdout, stderr) = Invoke("drop", "--model", "stories260K", "--granularity", "attention", "--count", "2", "--samples", "2", "--seq", "64", "--json");
        Assert.True(exit == 0, stderr);
        var doc = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(2, doc.GetProperty("dropped").GetArrayLength());
        var q = doc.GetProperty("quality");
        Assert.True(q.GetProperty("kl").GetDouble() > 0);
        Assert.InRange(q.GetProperty("top1_agreement").GetDouble(), 0, 1);
        Assert.True(q.GetProperty("perplexity").GetDouble() > q.GetProperty("perplexity_full").GetDouble() * 0.5);
        var s = doc.GetProperty("speed");
        Assert.True(s.GetProperty("decode_tokens_per_s").GetDouble() > 0);
        Assert.True(s.GetProperty("decode_tokens_per_s_full").GetDouble() > 0);
        Assert.Equal(s.GetProperty("kv_cache_bytes_full").GetInt64() * 3 / 5, s.GetProperty("kv_cache_bytes").GetInt64());
    }

    [Fact]
    public void Drop_no_speed_skips_the_speed_runs_and_keeps_quality_and_predictions()
    {
        var (exit, stdout, stderr) = Invoke("drop", "--model", "stories260K", "--granularity", "mlp", "--count", "1", "--samples", "2", "--seq", "64", "--no-speed", "--json");
        Assert.True(exit == 0, stderr);
        var doc = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(JsonValueKind.Null, doc.GetProperty("speed").GetProperty("decode_tokens_per_s").ValueKind);
        Assert.True(doc.GetProperty("quality").GetProperty("kl").GetDouble() > 0);
        Assert.Equal(5L * 2 * 4 * 64 * 32, doc.GetProperty("predicted").GetProperty("kv_cache_bytes").GetInt64()); // an MLP drop keeps every cache
        Assert.Equal(1, doc.GetProperty("dropped").GetArrayLength());
    }

    [Theory]
    [InlineData("drop", "--model", "stories260K", "--granularity", "heads", "--count", "1")]
    [InlineData("drop", "--model", "stories260K", "--granularity", "mlp", "--count", "9")]
    [InlineData("drop", "--model", "stories260K", "--granularity", "mlp", "--count", "1", "--never", "7")]
    [InlineData("drop", "--model", "stories260K", "--granularity", "mlp", "--count", "1", "--strategy", "greedy")]
    [InlineData("redundancy", "--model", "stories260K", "--granularity", "block", "--corpus", "/nonexistent.txt")]
    [InlineData("redundancy", "--model", "stories260K", "--granularity", "block", "--samples", "100000")]
    [InlineData("redundancy", "--model", "no-such-model", "--granularity", "block")]
    public void Bad_options_print_one_line_and_exit_2(params string[] args)
    {
        var (exit, stdout, stderr) = Invoke(args);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
