using System.Globalization;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.Directives;
using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;

namespace Workbench.Interactive.Directives;

/// <summary>
/// <c>#!redundancy --model NAME|PATH --granularity block|attention|mlp|joint [--samples N] [--seq L] [--seed S] [--corpus PATH] [--as VAR]</c>:
/// the importance (1 - cos) of every block, attention and MLP layer, as the CLI verb <c>workbench redundancy</c>.
/// </summary>
public sealed class RedundancyCommand : KernelDirectiveCommand
{
    public string? Model { get; set; }
    public string? Granularity { get; set; }
    public string? Samples { get; set; }
    public string? Seq { get; set; }
    public string? Seed { get; set; }
    public string? Corpus { get; set; }
    public string? As { get; set; }
}

/// <summary>
/// <c>#!drop --model NAME|PATH --granularity G --count K [--strategy one-shot|iterative] [--never LIST] [--sweep] [--no-speed]
/// [--samples N] [--seq L] [--seed S] [--corpus PATH] [--as VAR]</c>, as the CLI verb <c>workbench drop</c>.
/// </summary>
public sealed class DropCommand : KernelDirectiveCommand
{
    public string? Model { get; set; }
    public string? Granularity { get; set; }
    public string? Count { get; set; }
    public string? Strategy { get; set; }
    public string? Never { get; set; }
    public bool Sweep { get; set; }
    public bool NoSpeed { get; set; }
    public string? Samples { get; set; }
    public string? Seq { get; set; }
    public string? Seed { get; set; }
    public string? Corpus { get; set; }
    public string? As { get; set; }
}

internal static class RedundancyDirectives
{
    public const string Redundancy = "#!redundancy";
    public const string Drop = "#!drop";

    public static void Add(Kernel kernel)
    {
        var redundancy = new KernelActionDirective(Redundancy)
        {
            Description = "Score every block, attention and MLP layer by 1 - cos(input, output) on calibration text (He et al. 2024) and show the importance heatmap.",
        };
        AddShared(redundancy, "redundancy");
        kernel.AddDirective<RedundancyCommand>(redundancy, (c, context) => Run(context, Redundancy, c.As, "redundancy", token =>
        {
            var g = Names.ParseGranularity(Text(c.Granularity), "--granularity");
            var progress = LiveProgress.Start(context, $"importance of {Text(c.Model)}", 2);
            var inputs = Prepare(c.Model, c.Samples, c.Seq, c.Seed, c.Corpus);
            progress.Report(1, inputs.Calibration.ToString());
            var result = RedundancyAnalysis.Run(inputs, g, token);
            progress.Complete($"{result.Scores.Tokens} tokens");
            return result;
        }));

        var drop = new KernelActionDirective(Drop)
        {
            Description = "Drop the K least important blocks / attention / MLP layers and measure quality, decode speed and KV cache against the full model (--sweep: every k = 0..K).",
        };
        AddShared(drop, "drop");
        drop.Parameters.Add(new KernelDirectiveParameter("--count", "modules to drop (with --sweep: the largest k)") { Required = true, TypeHint = "number" });
        drop.Parameters.Add(new KernelDirectiveParameter("--strategy", "one-shot (rank once, default) or iterative (re-score after each drop)"));
        drop.Parameters.Add(new KernelDirectiveParameter("--never", "layers never dropped, comma-separated (e.g. 0,4)"));
        drop.Parameters.Add(new KernelDirectiveParameter("--sweep", "evaluate every k = 0..count, not only k = count") { Flag = true });
        drop.Parameters.Add(new KernelDirectiveParameter("--no-speed", "skip the measured speed runs (quality and predicted costs only; faster)") { Flag = true });
        kernel.AddDirective<DropCommand>(drop, (c, context) =>
            Run(context, Drop, c.As, c.Sweep ? "sweep" : "drop", token => RunDrop(c, context, token)));
    }

    /// <summary>Checks --as, then runs the work off the kernel's thread through <see cref="Magic.RunAsync"/>.</summary>
    private static Task Run(KernelInvocationContext context, string name, string? variable, string fallback, Func<CancellationToken, object?> work)
    {
        var v = Text(variable) ?? fallback;
        if (!Microsoft.CodeAnalysis.CSharp.SyntaxFacts.IsValidIdentifier(v))
            return Magic.RunAsync(context, name, _ => throw new ArgumentException($"--as '{v}' is not a C# identifier", "--as"));
        return Magic.RunAsync(context, name, token => Task.Run(() => work(token), token), v);
    }

    private static void AddShared(KernelActionDirective d, string verb)
    {
        d.Parameters.Add(new KernelDirectiveParameter("--model", "a bundled model (stories260K, babyllama, minilm) or a path") { AllowImplicitName = true, Required = true });
        d.Parameters.Add(new KernelDirectiveParameter("--granularity", "block, attention, mlp or joint") { Required = true });
        d.Parameters.Add(new KernelDirectiveParameter("--samples", "calibration sequences (default: 8 for decoders, 16 sentences for encoders)") { TypeHint = "number" });
        d.Parameters.Add(new KernelDirectiveParameter("--seq", "tokens per calibration sequence (default: 128 for decoders, 64 for encoders)") { TypeHint = "number" });
        d.Parameters.Add(new KernelDirectiveParameter("--seed", "seed of the calibration/evaluation split (default 0)") { TypeHint = "number" });
        d.Parameters.Add(new KernelDirectiveParameter("--corpus", "text file, documents separated by blank lines (default: TinyStories for decoders, Pride and Prejudice for encoders)"));
        d.Parameters.Add(new KernelDirectiveParameter("--as", $"C# variable for the result (default: {(verb == "drop" ? "drop, or sweep with --sweep" : "redundancy")})"));
    }

    private static object? RunDrop(DropCommand c, KernelInvocationContext context, CancellationToken token)
    {
        var g = Names.ParseGranularity(Text(c.Granularity), "--granularity");
        var strategy = Names.ParseStrategy(Text(c.Strategy) ?? "one-shot", "--strategy");
        int k = Int(c.Count, "--count") ?? throw new ArgumentException("--count is required", "--count");
        var never = Layers(c.Never, "--never");
        var inputs = Prepare(c.Model, c.Samples, c.Seq, c.Seed, c.Corpus);
        Modules.CheckLayers(inputs.Model.Config, never, "--never");
        int available = Modules.Of(inputs.Model.Config, g).Count(m => !never.Contains(m.Layer));
        if (k < 0 || k > available)
            throw new ArgumentOutOfRangeException("--count", k, $"--count {k}: {Names.Of(g)} has {available} droppable modules in '{inputs.Model.Name}'");
        bool speed = !c.NoSpeed;
        if (c.Sweep)
        {
            var progress = LiveProgress.Start(context, $"{Names.Of(g)} drop sweep on {inputs.Model.Name} (k = 0..{k})", k + 1);
            var evaluator = new DropEvaluator(inputs.Model, inputs.Split);
            var sweep = DropSweep.Run(evaluator, inputs.Calibration.Sequences, g, strategy, k, never, speed, token,
                new Progress(i => progress.Report(i, i == 0 ? "plan ready" : $"k = {i - 1} evaluated")));
            progress.Complete();
            return sweep;
        }
        var bar = LiveProgress.Start(context, $"drop {k} {Names.Of(g)} modules of {inputs.Model.Name}", 1);
        var run = DropRun.Run(inputs, g, k, strategy, never, speed, cancel: token);
        bar.Complete(string.Join(" ", run.Plan.Dropped));
        return run;
    }

    /// <summary>Synchronous IProgress (System.Progress posts to a context, which would reorder the updates).</summary>
    private sealed class Progress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }

    private static RedundancyInputs Prepare(string? model, string? samples, string? seq, string? seed, string? corpus)
    {
        var name = Text(model) ?? throw new ArgumentException("--model is required", "--model");
        var loaded = ModelHub.Load(name);
        if (loaded is not (Decoder or Encoder))
            throw new ArgumentException($"--model '{name}' is a {loaded.GetType().Name}: layer dropping here needs a text decoder or encoder (stories260K, babyllama, minilm)", "--model");
        int? n = Int(samples, "--samples"), l = Int(seq, "--seq");
        if (n is <= 0) throw new ArgumentOutOfRangeException("--samples", n, $"--samples {n} must be positive");
        if (l is < 2) throw new ArgumentOutOfRangeException("--seq", l, $"--seq {l} must be at least 2");
        if (l > loaded.Config.MaxSeq) throw new ArgumentOutOfRangeException("--seq", l, $"--seq {l}: '{loaded.Name}' holds at most {loaded.Config.MaxSeq} positions");
        var path = Text(corpus);
        if (path is not null && !File.Exists(path)) throw new ArgumentException($"--corpus '{path}' does not exist", "--corpus");
        return RedundancyInputs.Prepare(loaded, n, l, Int(seed, "--seed") ?? 0, path);
    }

    internal static string? Text(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim().Trim('"');

    internal static int? Int(string? s, string option) => Text(s) is not { } t ? null
        : int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
        : throw new ArgumentException($"{option} '{t}' is not an integer", option);

    internal static int[] Layers(string? s, string option) => Text(s) is not { } t ? []
        : t.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(x => int.TryParse(x, NumberStyles.Integer, CultureInfo.InvariantCulture, out int l) ? l
                : throw new ArgumentException($"'{x}' in {option} '{t}' is not a layer index", option))
            .Distinct().ToArray();
}
