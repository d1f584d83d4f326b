using System.Diagnostics;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.Directives;
using Workbench.Engine.Models;
using Workbench.Engine.Requests;
using Workbench.Engine.Training;
using Workbench.Interactive.Charts;

namespace Workbench.Interactive.Directives;

/// <summary>
/// <c>#!train --model NAME|PATH [--qat ternary] [--drop GRANULARITY:LIST] [--pyramid LAYERS:KEEP] [--context F] --steps N
/// [--seq L] [--batch B] [--lr X] [--seed S] [--corpus PATH] [--out DIR] [--as VAR]</c>, as <c>workbench train</c>.
/// </summary>
public sealed class TrainDirectiveCommand : KernelDirectiveCommand
{
    public string? Model { get; set; }
    public string? Qat { get; set; }
    public string? Drop { get; set; }
    public string? Pyramid { get; set; }
    public string? Context { get; set; }
    public string? Steps { get; set; }
    public string? Seq { get; set; }
    public string? Batch { get; set; }
    public string? Lr { get; set; }
    public string? Seed { get; set; }
    public string? Corpus { get; set; }
    public string? Out { get; set; }
    public string? As { get; set; }
}

/// <summary><c>#!train</c>: the loss drawn live while the engine trains, then the held-out figures as a table.</summary>
internal static class TrainingDirectives
{
    public const string Train = "#!train";

    /// <summary>Minimum time between two frames of the live loss chart (the last frame is always shown).</summary>
    public static TimeSpan Throttle { get; set; } = TimeSpan.FromMilliseconds(400);

    public static void Add(Kernel kernel)
    {
        var train = new KernelActionDirective(Train)
        {
            Description = "Train a Llama decoder in the engine (AdamW; optionally BitNet b1.58 quantization-aware, pruned, or with PyramidDrop), the loss drawn live, then held-out perplexity, KL and top-1 against the untouched model.",
            Parameters =
            {
                new KernelDirectiveParameter("--model", "a bundled decoder (stories260K, babyllama, austen-16L) or a path") { AllowImplicitName = true, Required = true },
                new KernelDirectiveParameter("--qat", "ternary: BitNet b1.58 quantization-aware training"),
                new KernelDirectiveParameter("--drop", "train a pruned model: GRANULARITY:LIST, e.g. block:3, attention:1,2, mlp:4"),
                new KernelDirectiveParameter("--pyramid", "PyramidDrop while training, LAYERS:KEEP (e.g. 2,3,4:0.5); an undropped baseline trains beside it"),
                new KernelDirectiveParameter("--context", "with --pyramid: the droppable share of each window (default 0.75)") { TypeHint = "number" },
                new KernelDirectiveParameter("--steps", "optimizer steps") { Required = true, TypeHint = "number" },
                new KernelDirectiveParameter("--seq", "tokens per training window (default 128)") { TypeHint = "number" },
                new KernelDirectiveParameter("--batch", "windows per step (default 8)") { TypeHint = "number" },
                new KernelDirectiveParameter("--lr", "peak learning rate (default 5e-3 with --qat, else 1e-3)") { TypeHint = "number" },
                new KernelDirectiveParameter("--seed", "seed of the corpus split and the batch order (default 0)") { TypeHint = "number" },
                new KernelDirectiveParameter("--corpus", "text file to train on (documents separated by blank lines), or persuasion (the bundled held-out Austen novel); default: bundled TinyStories"),
                new KernelDirectiveParameter("--out", "write the trained model here as a Hugging Face folder"),
                new KernelDirectiveParameter("--as", "C# variable for the TrainResult (default: train)"),
            },
        };
        kernel.AddDirective<TrainDirectiveCommand>(train, (command, context) => Run(command, context));
    }

    internal static TrainRequest Build(TrainDirectiveCommand c) => new()
    {
        Model = LowBitDirectives.Clean(c.Model) ?? "",
        QatMode = LowBitDirectives.Clean(c.Qat)?.ToLowerInvariant() is { Length: > 0 } q ? q : null,
        Drop = LowBitDirectives.Clean(c.Drop) is { Length: > 0 } d ? d : null,
        Pyramid = LowBitDirectives.Clean(c.Pyramid) is { Length: > 0 } p ? p : null,
        Context = Parse.Double(LowBitDirectives.Clean(c.Context), "--context") ?? TrainingPyramid.DefaultContext,
        Steps = Parse.Int(LowBitDirectives.Clean(c.Steps), "--steps") ?? throw new OptionException("--steps", "--steps is required"),
        Seq = Parse.Int(LowBitDirectives.Clean(c.Seq), "--seq") ?? 128,
        Batch = Parse.Int(LowBitDirectives.Clean(c.Batch), "--batch") ?? 8,
        Lr = Parse.Double(LowBitDirectives.Clean(c.Lr), "--lr"),
        Seed = Parse.Int(LowBitDirectives.Clean(c.Seed), "--seed") ?? 0,
        Corpus = LowBitDirectives.Clean(c.Corpus),
        Out = LowBitDirectives.Clean(c.Out),
    };

    private static Task Run(TrainDirectiveCommand c, KernelInvocationContext context)
    {
        string variable;
        TrainRequest request;
        try
        {
            variable = LowBitDirectives.Variable(c.As, "train");
            request = Build(c);
            request.Validate();
        }
        catch (ArgumentException e)
        {
            return Magic.RunAsync(context, Train, _ => throw e);
        }
        return Magic.RunAsync(context, Train, token => Task.Run<object?>(() => Live(request, context, token), token), variable);
    }

    // One chart displayed before the first step and replaced in place as the steps come (throttled), beside a progress bar.
    private static TrainResult Live(TrainRequest request, KernelInvocationContext context, CancellationToken token)
    {
        string title = $"{Train} {request.Model}{(request.Qat ? " --qat ternary" : "")}{(request.Drop is null ? "" : $" --drop {request.Drop}")}{(request.Pyramid is null ? "" : $" --pyramid {request.Pyramid}")}";
        var loss = new List<TrainStep>(request.Steps);
        List<TrainStep>? baseline = request.Pyramid is null ? null : new(request.Steps);
        if (PlotlyFormatter.ClaimScript()) KernelInvocationContextExtensions.Display(context, new PlotlyScript());
        var chart = KernelInvocationContextExtensions.Display(context, new LiveLoss(title, request.Steps, []));
        var bar = LiveProgress.Start(context, title, request.Steps);
        var since = Stopwatch.StartNew();
        var result = request.Run(Magic.Bar(bar), (step, base_) =>
        {
            loss.Add(step);
            if (base_ is not null) baseline?.Add(base_);
            if (since.Elapsed >= Throttle || step.Step == request.Steps)
            {
                chart.Update(new LiveLoss(title, request.Steps, loss.ToArray(), baseline?.ToArray()));
                since.Restart();
            }
        }, token);
        bar.Complete($"held-out perplexity {result.Perplexity:F3}");
        return result;
    }
}
