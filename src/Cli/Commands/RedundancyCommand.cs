using System.CommandLine;
using System.Text.Json.Nodes;
using Workbench.Engine.Redundancy;
using Workbench.Engine.Text;

namespace Workbench.Cli.Commands;

/// <summary>`workbench redundancy`: the importance (1 - cos) of every block, attention and MLP layer on calibration text.</summary>
public static class RedundancyCommand
{
    public static Command Create()
    {
        var o = new RedundancyOptions();
        var cmd = new Command("redundancy", "score every block, attention and MLP layer by 1 - cos(input, output) on calibration text or images (He et al. 2024)");
        o.AddTo(cmd);
        cmd.SetAction(r => CliHelpers.Run(() =>
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var run = new RedundancyRequest
            {
                Model = r.GetValue(o.Model)!, Granularity = r.GetValue(o.Granularity)!, Weights = r.GetValue(o.Weights),
                Samples = r.GetValue(o.Samples), Seq = r.GetValue(o.Seq), Seed = r.GetValue(o.Seed), Corpus = r.GetValue(o.Corpus),
                Images = r.GetValue(o.Images),
            }.Run();
            double seconds = clock.Elapsed.TotalSeconds;
            long? peak = CliHelpers.PeakResidentBytes();
            var scores = run.Scores;
            var modules = scores.Of(run.Granularity).Select(x => ModuleJson(x.Module, x.Importance)).ToArray();
            var ranked = run.Ranked.Select(x => ModuleJson(x.Module, x.Importance)).ToArray();
            if (r.GetValue(o.Json))
            {
                CliHelpers.PrintJson(CliHelpers.Obj(
                    ("model", run.Model),
                    ("granularity", Names.Of(run.Granularity)),
                    ("modules", modules),
                    ("ranked", ranked),
                    ("table", Enumerable.Range(0, scores.Layers).Select(l => CliHelpers.Obj(("layer", l), ("block", scores.Block[l]), ("attention", scores.Attention[l]), ("mlp", scores.Mlp[l])))),
                    ("calibration", run.Images is { } images ? RedundancyOptions.ImagesJson(images)
                        : run.Split is { } split ? RedundancyOptions.CalibrationJson(split, run.Calibration)
                        : CliHelpers.Obj(("source", "random_token_ids"), ("seed", r.GetValue(o.Seed)), ("sequences", run.Calibration.Sequences.Count),
                            ("tokens", run.Calibration.Tokens), ("description", run.RandomTokens))),
                    // the whole verb: loading, calibration, importance (and this process's peak resident memory, VmHWM)
                    ("seconds", seconds),
                    ("peak_rss_bytes", peak)));
                return 0;
            }
            Console.Out.WriteLine($"{run.Model}: importance = 1 - cos(input, output), mean over {scores.Tokens} calibration tokens");
            Console.Out.WriteLine(run.CalibrationSource);
            Console.Out.WriteLine();
            Console.Out.WriteLine("layer      block  attention        mlp");
            for (int l = 0; l < scores.Layers; l++)
                Console.Out.WriteLine($"{l,5} {scores.Block[l],10:F5} {scores.Attention[l],10:F5} {scores.Mlp[l],10:F5}");
            Console.Out.WriteLine();
            Console.Out.WriteLine($"{Names.Of(run.Granularity)} modules, least important first: {string.Join(", ", run.Ranked.Select(x => $"{x.Module} {x.Importance:F4}"))}");
            Console.Out.WriteLine($"{seconds:F1} s{(peak is { } p ? $", peak resident memory {p / (1024.0 * 1024 * 1024):F2} GiB" : "")}");
            return 0;
        }, r));
        return cmd;
    }

    internal static JsonObject ModuleJson(ModuleRef m, double? importance = null) => importance is { } x
        ? CliHelpers.Obj(("layer", m.Layer), ("kind", Names.Kind(m.Kind)), ("importance", x))
        : CliHelpers.Obj(("layer", m.Layer), ("kind", Names.Kind(m.Kind)));
}

/// <summary>The options `redundancy` and `drop` share (the magics #!redundancy and #!drop declare the same names).</summary>
internal sealed class RedundancyOptions
{
    public readonly Option<string> Model = CliHelpers.ModelOption("a bundled model (stories260K, babyllama, minilm, vit-cifar10) or a path (a ViT or LLaVA folder too)");
    public readonly Option<string> Granularity = new("--granularity") { Description = "block, attention, mlp or joint", Required = true };
    public readonly Option<int?> Samples = new("--samples") { Description = "calibration sequences (default: 8 for decoders, 16 sentences for encoders, 16 images for image models)" };
    public readonly Option<int?> Seq = new("--seq") { Description = "tokens per calibration sequence (default: 128 for decoders, 64 for encoders)" };
    public readonly Option<int> Seed = new("--seed") { Description = "seed of the calibration/evaluation split", DefaultValueFactory = _ => 0 };
    public readonly Option<string?> Corpus = new("--corpus") { Description = "text file (documents separated by blank lines), or persuasion (the bundled novel austen-16L never saw, one paragraph per line); default TinyStories for decoders, Pride and Prejudice for encoders" };
    public readonly Option<string?> Weights = CliHelpers.WeightsOption();
    public readonly Option<string?> Images = new("--images") { Description = "image classifiers and LLaVA: PNG / JPEG files or folders (a CIFAR-10 folder too), comma-separated; split by --seed into calibration and held-out halves (default: the bundled CIFAR-10 test images)" };
    public readonly Option<bool> Json = CliHelpers.JsonOption();

    public void AddTo(Command cmd)
    {
        cmd.Options.Add(Model);
        cmd.Options.Add(Granularity);
        cmd.Options.Add(Samples);
        cmd.Options.Add(Seq);
        cmd.Options.Add(Seed);
        cmd.Options.Add(Corpus);
        cmd.Options.Add(Weights);
        cmd.Options.Add(Images);
        cmd.Options.Add(Json);
    }

    /// <summary>Where the images came from (image classifiers, vision-language models), as the JSON output lists them.</summary>
    public static JsonObject ImagesJson(ImageSamples images) => CliHelpers.Obj(
        ("source", "images"),
        ("images", images.Images.Source),
        ("count", images.Inputs.Count),
        ("tokens", images.Tokens),
        ("labelled", images.Images.Labels is not null),
        ("preprocessing", images.Preprocessing),
        ("names", images.Images.Names.ToArray()));

    /// <summary>Where the calibration text came from, as the JSON output lists it.</summary>
    public static JsonObject CalibrationJson(CorpusSplit split, TokenSamples calibration) => CliHelpers.Obj(
        ("source", "text"),
        ("corpus", split.Corpus.Source),
        ("seed", split.Seed),
        ("documents", split.Corpus.Documents.Count),
        ("calibration_documents", split.CalibrationDocuments.Length),
        ("evaluation_documents", split.EvaluationDocuments.Length),
        ("calibration_ranges", CorpusSplit.Ranges(split.CalibrationDocuments)),
        ("sequences", calibration.Sequences.Count),
        ("tokens", calibration.Tokens),
        ("documents_used", calibration.Documents));
}
