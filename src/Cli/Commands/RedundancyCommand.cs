using System.CommandLine;
using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;
using Workbench.Engine.Text;

namespace Workbench.Cli.Commands;

/// <summary>`workbench redundancy`: the importance (1 - cos) of every block, attention and MLP layer on calibration text.</summary>
public static class RedundancyCommand
{
    public static Command Create()
    {
        var o = new RedundancyOptions();
        var cmd = new Command("redundancy", "score every block, attention and MLP layer by 1 - cos(input, output) on calibration text (He et al. 2024)");
        o.AddTo(cmd);
        cmd.SetAction(r => CliHelpers.Run(() => RedundancyOptions.OneLine(() =>
        {
            var run = o.Resolve(r);
            var scores = Importance.Measure(run.Model.Model, run.Calibration.Sequences);
            var modules = scores.Of(run.Granularity).Select(x => ModuleJson(x.Module, x.Importance)).ToArray();
            var ranked = scores.Ranked(run.Granularity).Select(x => ModuleJson(x.Module, x.Importance)).ToArray();
            if (r.GetValue(o.Json))
            {
                CliHelpers.PrintJson(new
                {
                    model = run.Model.Name,
                    granularity = Names.Of(run.Granularity),
                    modules,
                    ranked,
                    table = Enumerable.Range(0, scores.Layers).Select(l => new { layer = l, block = scores.Block[l], attention = scores.Attention[l], mlp = scores.Mlp[l] }),
                    calibration = run.CalibrationJson(),
                });
                return 0;
            }
            Console.Out.WriteLine($"{run.Model.Name}: importance = 1 - cos(input, output), mean over {scores.Tokens} calibration tokens");
            Console.Out.WriteLine(run.Split.ToString());
            Console.Out.WriteLine(run.Calibration.ToString());
            Console.Out.WriteLine();
            Console.Out.WriteLine("layer      block  attention        mlp");
            for (int l = 0; l < scores.Layers; l++)
                Console.Out.WriteLine($"{l,5} {scores.Block[l],10:F5} {scores.Attention[l],10:F5} {scores.Mlp[l],10:F5}");
            Console.Out.WriteLine();
            Console.Out.WriteLine($"{Names.Of(run.Granularity)} modules, least important first: {string.Join(", ", scores.Ranked(run.Granularity).Select(x => $"{x.Module} {x.Importance:F4}"))}");
            return 0;
        })));
        return cmd;
    }

    internal static object ModuleJson(ModuleRef m, double? importance = null) => importance is { } x
        ? new { layer = m.Layer, kind = Names.Kind(m.Kind), importance = x }
        : new { layer = m.Layer, kind = Names.Kind(m.Kind) };
}

/// <summary>The options `redundancy` and `drop` share, and what they resolve to.</summary>
internal sealed class RedundancyOptions
{
    public readonly Option<string> Model = CliHelpers.ModelOption("a bundled model (stories260K, babyllama, minilm) or a path");
    public readonly Option<string> Granularity = new("--granularity") { Description = "block, attention, mlp or joint", Required = true };
    public readonly Option<int?> Samples = new("--samples") { Description = "calibration sequences (default: 8 for decoders, 16 sentences for encoders)" };
    public readonly Option<int?> Seq = new("--seq") { Description = "tokens per calibration sequence (default: 128 for decoders, 64 for encoders)" };
    public readonly Option<int> Seed = new("--seed") { Description = "seed of the calibration/evaluation split", DefaultValueFactory = _ => 0 };
    public readonly Option<string?> Corpus = new("--corpus") { Description = "text file (documents separated by blank lines; default TinyStories for decoders, Pride and Prejudice for encoders)" };
    public readonly Option<bool> Json = CliHelpers.JsonOption();

    public void AddTo(Command cmd)
    {
        cmd.Options.Add(Model);
        cmd.Options.Add(Granularity);
        cmd.Options.Add(Samples);
        cmd.Options.Add(Seq);
        cmd.Options.Add(Seed);
        cmd.Options.Add(Corpus);
        cmd.Options.Add(Json);
    }

    public sealed record Resolved(LoadedModel Model, Granularity Granularity, CorpusSplit Split, TokenSamples Calibration)
    {
        public object CalibrationJson() => new
        {
            corpus = Split.Corpus.Source,
            seed = Split.Seed,
            documents = Split.Corpus.Documents.Count,
            calibration_documents = Split.CalibrationDocuments.Length,
            evaluation_documents = Split.EvaluationDocuments.Length,
            calibration_ranges = CorpusSplit.Ranges(Split.CalibrationDocuments),
            sequences = Calibration.Sequences.Count,
            tokens = Calibration.Tokens,
            documents_used = Calibration.Documents,
        };
    }

    /// <summary>Engine range errors carry "Actual value was ..." on a second line; scripts get one line.</summary>
    public static int OneLine(Func<int> body)
    {
        try { return body(); }
        catch (ArgumentException e) when (e.Message.Contains('\n'))
        {
            throw new ArgumentException(string.Join(" ", e.Message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)), e);
        }
    }

    /// <summary>Checks the options (errors name them), then lets the engine build the split and calibration set.</summary>
    public Resolved Resolve(ParseResult r)
    {
        var g = Names.ParseGranularity(r.GetValue(Granularity), "--granularity");
        var model = ModelHub.Load(r.GetValue(Model)!);
        if (model is not (Decoder or Encoder)) throw new ArgumentException($"'{model.Name}' is neither a decoder nor an encoder", "--model");
        int? samples = r.GetValue(Samples), seq = r.GetValue(Seq);
        if (samples <= 0) throw new ArgumentException($"--samples {samples} must be positive", "--samples");
        if (seq < 2) throw new ArgumentException($"--seq {seq} must be at least 2", "--seq");
        if (seq > model.Config.MaxSeq) throw new ArgumentException($"--seq {seq}: the model holds at most {model.Config.MaxSeq} positions", "--seq");
        var corpus = r.GetValue(Corpus);
        if (corpus is not null && !File.Exists(corpus)) throw new ArgumentException($"corpus file '{corpus}' does not exist", "--corpus");
        var inputs = RedundancyInputs.Prepare(model, samples, seq, r.GetValue(Seed), corpus);
        return new Resolved(model, g, inputs.Split, inputs.Calibration);
    }
}
