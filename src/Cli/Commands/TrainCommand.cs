using System.CommandLine;
using System.Globalization;
using Workbench.Engine.Requests;
using Workbench.Engine.Training;

namespace Workbench.Cli.Commands;

/// <summary>
/// <c>workbench train --model NAME|PATH [--qat ternary] [--drop GRANULARITY:LIST] [--pyramid LAYERS:KEEP] --steps N [--seq L]
/// [--batch B] [--lr X] [--seed S] [--corpus PATH | --tokens FILE] [--tokenizer PATH] [--out DIR] [--json]</c>: builds a <see cref="TrainRequest"/> and renders its result.
/// </summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "A bundled decoder (stories260K, babyllama) or a path (Hugging Face Llama, Mistral, Qwen2, Qwen3, Phi-3, Gemma 2 / 3, GPT-2 and BitNet master-weight folders train too)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer file for a model without one beside it (the corpus is tokenized by it)." };
        var tokens = new Option<string?>("--tokens") { Description = "Train on these token ids (a file of integers separated by spaces or commas) instead of a corpus; the last tenth is held out. A model without tokenizer and without --tokens trains on seeded random ids." };
        var qat = new Option<string?>("--qat") { Description = "Quantization-aware training: ternary (BitNet b1.58: ternary weights, int8 activations)." };
        var drop = new Option<string?>("--drop") { Description = "Train a pruned model: GRANULARITY:LIST, e.g. block:3 or attention:1,2 or mlp:4." };
        var pyramid = new Option<string?>("--pyramid") { Description = "PyramidDrop while training, LAYERS:KEEP (e.g. 2,3,4:0.5): the context tokens are dropped stage by stage, the loss is on the window's suffix; an undropped baseline trains interleaved for the time ratio." };
        var context = new Option<string?>("--context") { Description = "With --pyramid: the share of each window that is droppable context (default 0.75; the rest carries the loss)." };
        var steps = new Option<string?>("--steps") { Description = "Optimizer steps." };
        var seq = new Option<string?>("--seq") { Description = "Tokens per training window (default 128)." };
        var batch = new Option<string?>("--batch") { Description = "Windows per step (default 8)." };
        var lr = new Option<string?>("--lr") { Description = "Peak learning rate (default 5e-3 with --qat, else 1e-3; warmup then cosine decay to a tenth)." };
        var seed = new Option<string?>("--seed") { Description = "Seed of the corpus split and the batch order (default 0)." };
        var corpus = new Option<string?>("--corpus") { Description = "Text file to train on (documents separated by blank lines), or persuasion (the bundled held-out Austen novel); default: bundled TinyStories." };
        var output = new Option<string?>("--out") { Description = "Write the trained model here as a Hugging Face folder." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object for scripts." };
        var command = new Command("train", "Fine-tune a decoder on a corpus (optionally BitNet b1.58 quantization-aware or pruned) and report held-out perplexity.")
        {
            model, qat, drop, pyramid, context, steps, seq, batch, lr, seed, corpus, tokenizer, tokens, output, json,
        };
        command.TreatUnmatchedTokensAsErrors = false; // reported below as one line with exit code 2
        command.SetAction(parse =>
        {
            if (parse.UnmatchedTokens.Count > 0) return Fail($"unexpected argument '{parse.UnmatchedTokens[0]}'.");
            if (parse.Errors.Count > 0) return Fail(parse.Errors[0].Message);
            bool asJson = parse.GetValue(json);
            return CliHelpers.Run(() =>
            {
                var request = new TrainRequest
                {
                    Model = parse.GetValue(model) ?? "",
                    QatMode = parse.GetValue(qat)?.Trim().ToLowerInvariant(),
                    Drop = parse.GetValue(drop),
                    Pyramid = parse.GetValue(pyramid),
                    Context = Parse.Double(parse.GetValue(context), "--context") ?? TrainingPyramid.DefaultContext,
                    Steps = Parse.Int(parse.GetValue(steps), "--steps") ?? throw new OptionException("--steps", "--steps is required"),
                    Seq = Parse.Int(parse.GetValue(seq), "--seq") ?? 128,
                    Batch = Parse.Int(parse.GetValue(batch), "--batch") ?? 8,
                    Lr = Parse.Double(parse.GetValue(lr), "--lr"),
                    Seed = Parse.Int(parse.GetValue(seed), "--seed") ?? 0,
                    Corpus = parse.GetValue(corpus),
                    Tokenizer = parse.GetValue(tokenizer),
                    Tokens = parse.GetValue(tokens),
                    Out = parse.GetValue(output),
                };
                request.Validate();
                var result = request.Run(asJson || Console.IsErrorRedirected ? null : new TerminalProgress());
                Render(result, asJson);
                return 0;
            });
        });
        return command;
    }

    private static void Render(TrainResult r, bool asJson)
    {
        if (asJson)
        {
            CliHelpers.PrintJson(CliHelpers.Obj(
                ("model", r.Model), ("data", r.Data), ("qat", r.Qat ? "ternary" : null), ("drop", r.Drop), ("steps", r.Steps), ("seq", r.Seq), ("batch", r.Batch), ("lr", r.Lr), ("seed", r.Seed),
                ("perplexity_start", r.PerplexityStart), ("perplexity", r.Perplexity), ("perplexity_fp32", r.PerplexityFp32), ("gap_closed", r.GapClosed),
                ("loss", r.Loss.Select(s => s.Loss).ToArray()),
                ("lr_schedule", r.Loss.Select(s => s.Lr).ToArray()),
                ("grad_norm", r.Loss.Select(s => s.GradNorm).ToArray()),
                ("seconds", r.Seconds), ("train_seconds", r.TrainSeconds), ("train_cpu_seconds", r.TrainCpuSeconds), ("tokens_per_s", r.TokensPerSecond), ("forward_tokens_per_s", r.ForwardTokensPerSecond),
                ("train_windows", r.TrainWindows), ("eval_sequences", r.EvalSequences), ("eval_tokens", r.EvalTokens), ("out", r.OutDir),
                ("seconds_per_step", r.SecondsPerStep),
                ("kl_start", r.Start.Kl), ("top1_start", r.Start.Top1Agreement), ("kl", r.After.Kl), ("top1", r.After.Top1Agreement),
                ("pyramid", r.Pyramid), ("loss_positions", r.Pyramid is null ? (int?)null : r.LossPositions), ("rows_per_block", r.RowsPerBlock),
                ("pyramid_time_ratio", r.PyramidTimeRatio), ("loss_tail", TrainResult.TailLoss(r.Loss)),
                ("baseline", r.Baseline is not { } bl ? null : CliHelpers.Obj(
                    ("loss", bl.Loss.Select(s => s.Loss).ToArray()), ("loss_tail", TrainResult.TailLoss(bl.Loss)), ("perplexity", bl.After.Perplexity), ("kl", bl.After.Kl), ("top1", bl.After.Top1Agreement),
                    ("train_seconds", bl.TrainSeconds), ("seconds_per_step", bl.SecondsPerStep)))));
            return;
        }
        var inv = CultureInfo.InvariantCulture;
        string start = r.Qat ? "post-training-quantized" : r.Drop is not null ? "pruned, before training" : "before training";
        Console.Out.WriteLine(string.Create(inv, $"{r.Model}: {r.Steps} steps x {r.Batch} x {r.Seq} tokens{(r.Qat ? ", BitNet b1.58 QAT" : "")}{(r.Drop is null ? "" : $", dropped {r.Drop}")}: loss {r.Loss[0].Loss:F4} -> {r.Loss[^1].Loss:F4}"));
        Console.Out.WriteLine($"data: {r.Data}");
        Console.Out.WriteLine(string.Create(inv, $"held-out perplexity ({r.EvalSequences} x {r.Seq} tokens): fp32 {r.PerplexityFp32:F3}, {start} {r.PerplexityStart:F3}, trained {r.Perplexity:F3}{(r.GapClosed is { } g ? $" ({g:P1} of the log gap closed)" : "")}"));
        if (r.Drop is not null || r.Qat)
            Console.Out.WriteLine(string.Create(inv, $"against the full fp32 model: KL {r.Start.Kl:F4} -> {r.After.Kl:F4}, top-1 agreement {r.Start.Top1Agreement:P1} -> {r.After.Top1Agreement:P1}"));
        if (r.Baseline is { } b)
        {
            Console.Out.WriteLine(string.Create(inv, $"pyramid {r.Pyramid}: rows per block {string.Join(" ", r.RowsPerBlock ?? [])} of {r.Seq}, loss on the last {r.LossPositions} positions; {r.SecondsPerStep * 1e3:F1} ms/step vs {b.SecondsPerStep * 1e3:F1} ms/step undropped (ratio {r.PyramidTimeRatio:F3}, interleaved)"));
            Console.Out.WriteLine(string.Create(inv, $"suffix loss, mean of the last 10% of steps: {TrainResult.TailLoss(r.Loss):F4} with the drop, {TrainResult.TailLoss(b.Loss):F4} without; held-out perplexity {r.Perplexity:F3} vs {b.After.Perplexity:F3}"));
        }
        Console.Out.WriteLine(string.Create(inv, $"{r.TrainSeconds:F1} s training ({r.TrainCpuSeconds:F1} s CPU; {r.TokensPerSecond:F0} tokens/s; forward only {r.ForwardTokensPerSecond:F0} tokens/s), {r.Seconds:F1} s in all{(r.OutDir is null ? "" : $"; written to {r.OutDir}")}"));
    }

    private sealed class TerminalProgress : IProgress<RunProgress>
    {
        public void Report(RunProgress p)
        {
            Console.Error.Write($"\r{p.Stage}: {p.Done}/{p.Total} {p.Detail}     ");
            if (p.Stage == "evaluate" && p.Done == p.Total) Console.Error.WriteLine();
        }
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"workbench train: {message}");
        return CliHelpers.ExitBadInput;
    }
}
