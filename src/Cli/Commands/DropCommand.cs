using System.CommandLine;
using System.Globalization;
using Microsoft.Data.Analysis;
using Workbench.Engine.Formats;
using Workbench.Engine.Requests;
using Workbench.Engine.Redundancy;

namespace Workbench.Cli.Commands;

/// <summary>`workbench drop`: drop the K least important modules and measure quality, speed and KV cache against the full model.</summary>
public static class DropCommand
{
    public static Command Create()
    {
        var o = new RedundancyOptions();
        var count = new Option<int>("--count") { Description = "modules to drop", Required = true };
        var strategy = new Option<string>("--strategy") { Description = "one-shot (rank once) or iterative (re-score after each drop)", DefaultValueFactory = _ => "one-shot" };
        var never = new Option<string?>("--never") { Description = "layers never dropped, comma-separated (e.g. 0,4)" };
        var sweep = new Option<bool>("--sweep") { Description = "evaluate every k = 0..count, not only k = count" };
        var csv = new Option<string?>("--csv") { Description = "with --sweep: also write the table to this CSV file" };
        var noSpeed = new Option<bool>("--no-speed") { Description = "skip the measured speed runs (quality and predicted costs only; faster)" };
        var cmd = new Command("drop", "drop the least important blocks / attention / MLP layers and measure quality, speed and memory");
        o.AddTo(cmd);
        cmd.Options.Add(count);
        cmd.Options.Add(strategy);
        cmd.Options.Add(never);
        cmd.Options.Add(sweep);
        cmd.Options.Add(noSpeed);
        cmd.Options.Add(csv);
        cmd.SetAction(r => CliHelpers.Run(() =>
        {
            if (r.GetValue(csv) is not null && !r.GetValue(sweep)) throw new OptionException("--csv", "--csv needs --sweep");
            var result = new DropRequest
            {
                Model = r.GetValue(o.Model)!, Granularity = r.GetValue(o.Granularity)!, Weights = r.GetValue(o.Weights),
                Samples = r.GetValue(o.Samples), Seq = r.GetValue(o.Seq), Seed = r.GetValue(o.Seed), Corpus = r.GetValue(o.Corpus),
                Count = r.GetValue(count), Strategy = r.GetValue(strategy)!, Never = r.GetValue(never),
                Sweep = r.GetValue(sweep), NoSpeed = r.GetValue(noSpeed), Images = r.GetValue(o.Images),
            }.Run();
            var calibration = result.CalibrationImages is { } ci ? RedundancyOptions.ImagesJson(ci) : RedundancyOptions.CalibrationJson(result.Split!, result.Calibration!);
            var evaluation = result.EvaluationImages is { } ei ? (object)RedundancyOptions.ImagesJson(ei) : null;
            if (result is DropSweep sw)
            {
                var df = sw.ToDataFrame();
                if (r.GetValue(csv) is { } path) DataFrame.SaveCsv(df, path, cultureInfo: CultureInfo.InvariantCulture);
                if (r.GetValue(o.Json))
                    CliHelpers.PrintJson(CliHelpers.Obj(
                        ("model", sw.Model),
                        ("granularity", Names.Of(sw.Granularity)),
                        ("strategy", Names.Of(sw.Strategy)),
                        ("order", sw.Plan.Dropped.Select(m => RedundancyCommand.ModuleJson(m))),
                        ("rows", sw.Rows.Select(Report)),
                        ("calibration", calibration),
                        ("evaluation", evaluation ?? sw.Evaluation?.ToString())));
                else
                {
                    Console.Out.WriteLine($"{sw.Model}, {Names.Of(sw.Granularity)}, {Names.Of(sw.Strategy)}: drop order {string.Join(" ", sw.Plan.Dropped)}");
                    Console.Out.WriteLine(df.ToString());
                }
                return 0;
            }
            var run = (DropRun)result;
            var (plan, rep) = (run.Plan, run.Report);
            if (r.GetValue(o.Json))
            {
                CliHelpers.PrintJson(JsonOut.Node(Merge(Report(rep), run, calibration, evaluation))!);
                return 0;
            }
            Console.Out.WriteLine($"{run.Model}: dropped {Names.Of(plan.Granularity)} {string.Join(", ", plan.Dropped)} ({Names.Of(plan.Strategy)})");
            Console.Out.WriteLine(run.CalibrationImages?.ToString() ?? run.Split!.ToString());
            Console.Out.WriteLine(run.EvaluationImages?.ToString() ?? run.Evaluation!.ToString());
            var q = rep.Quality;
            if (run.EvaluationImages is not null)
                Console.Out.WriteLine($"quality: KL(full || pruned) {q.Kl:F5} nats per judged position, top-1 agreement {q.Top1Agreement:P1} over {q.Positions}"
                    + (q.Accuracy is { } acc ? $", accuracy {acc:P1} (full {q.AccuracyFull:P1})" : ""));
            else if (q.Kl is { } kl)
                Console.Out.WriteLine($"quality: KL(full || pruned) {kl:F5} nats/token, top-1 agreement {q.Top1Agreement:P1}, perplexity {q.Perplexity:F3} (full {q.PerplexityFull:F3})");
            else
                Console.Out.WriteLine($"quality: embedding cosine {q.EmbeddingCosine:F5}, Spearman of pairwise similarities {q.Spearman:F4}");
            if (rep.Speed is { } sp && rep.SpeedFull is { } sf)
            {
                if (sp.DecodeTokensPerSecond is { } dec)
                    Console.Out.WriteLine($"decode: {dec:F0} tokens/s (full {sf.DecodeTokensPerSecond:F0}), measured x{rep.MeasuredSpeedup:F2}, FLOPs predict x{rep.PredictedSpeedup:F2}");
                else
                    Console.Out.WriteLine($"encode: {sp.PrefillTokensPerSecond:F0} tokens/s (full {sf.PrefillTokensPerSecond:F0}), measured x{rep.MeasuredSpeedup:F2}, FLOPs predict x{rep.PredictedSpeedup:F2}");
                Console.Out.WriteLine($"KV cache: {sp.KvCacheBytes:N0} bytes (full {sf.KvCacheBytes:N0}); weights {rep.Predicted.WeightBytes:N0} bytes (full {rep.PredictedFull.WeightBytes:N0})");
            }
            return 0;
        }, r));
        return cmd;
    }

    private static Dictionary<string, object?> Merge(Dictionary<string, object?> report, DropRun run, object calibration, object? evaluation)
    {
        var d = new Dictionary<string, object?>
        {
            ["model"] = run.Model,
            ["granularity"] = Names.Of(run.Plan.Granularity),
            ["strategy"] = Names.Of(run.Plan.Strategy),
            ["never"] = run.Plan.Never.Order().ToArray(),
        };
        foreach (var (key, v) in report) d[key] = v;
        d["importance"] = run.Plan.Scores[0].Of(run.Plan.Granularity).Select(x => RedundancyCommand.ModuleJson(x.Module, x.Importance)).ToArray();
        d["calibration"] = calibration;
        d["evaluation"] = evaluation ?? run.Evaluation?.ToString();
        return d;
    }

    /// <summary>One evaluated drop as the JSON the scripts read.</summary>
    private static Dictionary<string, object?> Report(DropReport rep) => new()
    {
        ["k"] = rep.Dropped.Count,
        ["dropped"] = rep.Dropped.Select(m => RedundancyCommand.ModuleJson(m)).ToArray(),
        ["drop_attn_list"] = rep.Skips.Attention.Order().ToArray(),
        ["drop_mlp_list"] = rep.Skips.Mlp.Order().ToArray(),
        ["quality"] = rep.Quality.Kl is not null && rep.Quality.Perplexity is null
            ? new Dictionary<string, object?>
            {
                // image tasks: class distributions (accuracy where labels name the classes), or next tokens at text positions
                ["kl"] = rep.Quality.Kl, ["top1_agreement"] = rep.Quality.Top1Agreement, ["positions"] = rep.Quality.Positions,
                ["accuracy"] = rep.Quality.Accuracy, ["accuracy_full"] = rep.Quality.AccuracyFull,
            }
            : rep.Quality.Kl is not null
            ? new Dictionary<string, object?>
            {
                ["kl"] = rep.Quality.Kl, ["top1_agreement"] = rep.Quality.Top1Agreement,
                ["perplexity"] = rep.Quality.Perplexity, ["perplexity_full"] = rep.Quality.PerplexityFull, ["positions"] = rep.Quality.Positions,
            }
            : new Dictionary<string, object?>
            {
                ["embedding_cosine"] = rep.Quality.EmbeddingCosine, ["spearman"] = rep.Quality.Spearman, ["sentences"] = rep.Quality.Positions,
            },
        ["speed"] = new Dictionary<string, object?>
        {
            ["prefill_tokens_per_s"] = rep.Speed?.PrefillTokensPerSecond,
            ["prefill_tokens_per_s_full"] = rep.SpeedFull?.PrefillTokensPerSecond,
            ["decode_tokens_per_s"] = rep.Speed?.DecodeTokensPerSecond,
            ["decode_tokens_per_s_full"] = rep.SpeedFull?.DecodeTokensPerSecond,
            ["kv_cache_bytes"] = rep.Speed?.KvCacheBytes,
            ["kv_cache_bytes_full"] = rep.SpeedFull?.KvCacheBytes,
            ["measured_speedup"] = rep.MeasuredSpeedup,
            ["prompt_tokens"] = rep.Speed?.PromptTokens,
            ["decode_tokens"] = rep.Speed?.DecodeTokens,
        },
        ["predicted"] = new Dictionary<string, object?>
        {
            ["speedup"] = rep.PredictedSpeedup,
            ["prefill_flops"] = rep.Predicted.PrefillFlops,
            ["prefill_flops_full"] = rep.PredictedFull.PrefillFlops,
            ["decode_flops_per_token"] = rep.Predicted.DecodeFlopsPerToken,
            ["decode_flops_per_token_full"] = rep.PredictedFull.DecodeFlopsPerToken,
            ["decode_bytes_per_token"] = rep.Predicted.DecodeBytesPerToken,
            ["kv_cache_bytes"] = rep.Predicted.KvCacheBytes,
            ["kv_cache_bytes_full"] = rep.PredictedFull.KvCacheBytes,
            ["weight_bytes"] = rep.Predicted.WeightBytes,
            ["weight_bytes_full"] = rep.PredictedFull.WeightBytes,
        },
    };
}
