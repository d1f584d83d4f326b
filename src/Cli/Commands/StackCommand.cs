using System.CommandLine;
using System.Text.Json.Nodes;
using System.Globalization;
using Workbench.Engine.LowBit;
using Workbench.Engine.Stacking;

namespace Workbench.Cli.Commands;

/// <summary>
/// <c>workbench stack --model NAME|PATH [--ternary NAME|PATH] --drop-attention K [--pyramid LAYERS --keep R] [--format i2s|tl2] [--json]</c>:
/// the three techniques stacked step by step (full, +drop, +pyramid, +ternary), one row per step: quality on held-out
/// text against the full fp model, prefill and decode tokens/s measured, the cost model's FLOPs, bytes, KV cache and
/// energy per token, and the measured and predicted decode speed-ups. Options are checked by <see cref="StackRequest"/>.
/// </summary>
public static class StackCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "the fp decoder: a bundled name (austen-16L, stories260K, ...) or a path" };
        var ternary = new Option<string?>("--ternary") { Description = "its ternary twin (default: austen-16L-ternary for austen-16L, else post-training quantization of --model)" };
        var drop = new Option<int?>("--drop-attention") { Description = "K: drop the K least important attention layers (1 - cos)" };
        var pyramid = new Option<string?>("--pyramid") { Description = "PyramidDrop stage boundaries on the context tokens, e.g. 4,8,12" };
        var keep = new Option<string?>("--keep") { Description = "keep ratio per stage, e.g. 0.5" };
        var format = new Option<string?>("--format") { Description = $"packed ternary format: {LowBitFormats.NameList(ternaryOnly: true)} (default i2s)" };
        var json = CliHelpers.JsonOption();
        var cmd = new Command("stack", "Stack attention drop, PyramidDrop and ternary kernels on one decoder: quality and cost after every step.");
        foreach (var o in new Option[] { model, ternary, drop, pyramid, keep, format, json }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliHelpers.Run(() =>
        {
            var request = new StackRequest
            {
                Model = pr.GetValue(model), Ternary = pr.GetValue(ternary), DropAttention = pr.GetValue(drop),
                Pyramid = pr.GetValue(pyramid), Keep = pr.GetValue(keep), Format = pr.GetValue(format),
            };
            request.Validate();
            var result = request.Run();
            if (pr.GetValue(json)) CliHelpers.PrintJson(Json(result));
            else Console.Out.Write(Text(result));
            return 0;
        }, pr, prefix: "workbench stack: "));
        return cmd;
    }

    public static JsonObject Json(StackResult r) => CliHelpers.Obj(
        ("model", r.Model), ("ternary", r.Ternary), ("ternary_kind", r.TernaryKind), ("format", r.Format.Name()),
        ("dropped_attention", r.Dropped.Select(m => m.Layer).ToArray()), ("attention_importance", r.AttentionImportance),
        ("pyramid", r.Schedule?.Boundaries), ("keep", r.Schedule?.KeepRatios), ("held_out", r.HeldOut), ("windows", r.Windows),
        ("prompt_tokens", r.Prompt), ("continuation_tokens", r.Continuation), ("decode_tokens", r.Decode), ("runs", r.Runs), ("threads", r.Threads),
        ("compounded_measured_speedup", r.CompoundedMeasured), ("compounded_predicted_speedup", r.CompoundedPredicted),
        ("steps", r.Steps.Select(s => CliHelpers.Obj(
            ("name", s.Name), ("perplexity", s.Perplexity), ("kl", s.Kl), ("top1", s.Top1),
            ("prefill_tokens_per_s", s.PrefillTokensPerSecond), ("decode_tokens_per_s", s.DecodeTokensPerSecond),
            ("flops_per_token", s.FlopsPerToken), ("weight_bytes", s.WeightBytesPerToken), ("bytes_per_token", s.BytesPerToken),
            ("kv_cache_bytes", s.KvCacheBytes), ("kv_cache_bytes_predicted", s.KvCacheBytesPredicted),
            ("energy_j_per_token", s.EnergyJPerToken), ("prefill_flops", s.PrefillFlops),
            ("measured_speedup", s.MeasuredSpeedup), ("predicted_speedup", s.PredictedSpeedup), ("predicted_flops_speedup", s.PredictedFlopsSpeedup),
            ("measured_prefill_speedup", s.MeasuredPrefillSpeedup), ("predicted_prefill_speedup", s.PredictedPrefillSpeedup))).ToArray()));

    public static string Text(StackResult r)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"{r.Model} -> {r.Ternary} ({r.TernaryKind}, {r.Format.Name()}); dropped attention layers {string.Join(",", r.Dropped.Select(m => m.Layer))}"
            + (r.Schedule is { } s ? $"; pyramid {s.LayersText} keep {s.KeepText}" : ""));
        sb.AppendLine(string.Create(inv, $"held out: {r.HeldOut}, {r.Windows} windows of {r.Prompt} prompt + {r.Continuation} scored tokens; speed: {r.Prompt}-token prefill + {r.Decode} decode tokens, median of {r.Runs} interleaved runs, {r.Threads} thread(s)"));
        sb.AppendLine($"{"step",-9} {"ppl",8} {"KL",7} {"top1",6} {"prefill/s",10} {"decode/s",9} {"MFLOP/tok",10} {"weights MB",10} {"KV KB",8} {"mJ/tok",7} {"speedup",8} {"predicted",9}");
        foreach (var x in r.Steps)
            sb.AppendLine(string.Create(inv, $"{x.Name,-9} {x.Perplexity,8:F2} {x.Kl,7:F4} {x.Top1,6:P0} {x.PrefillTokensPerSecond,10:F0} {x.DecodeTokensPerSecond,9:F1} {x.FlopsPerToken / 1e6,10:F2} {x.WeightBytesPerToken / 1e6,10:F3} {x.KvCacheBytes / 1e3,8:F1} {x.EnergyJPerToken * 1e3,7:F3} {x.MeasuredSpeedup,7:F2}x {x.PredictedSpeedup,8:F2}x"));
        sb.AppendLine(string.Create(inv, $"compounded decode speed-up: measured {r.CompoundedMeasured:F2}x, predicted {r.CompoundedPredicted:F2}x (decode bytes per token; FLOPs predict {r.Steps[^1].PredictedFlopsSpeedup:F2}x)"));
        return sb.ToString();
    }
}
