using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Workbench.Engine.TokenDrop;
using Workbench.Engine.Vision;

namespace Workbench.Cli.Commands;

/// <summary>
/// workbench pyramid-drop --model NAME|PATH --layers LIST --keep R[,R...] [--rank attention|random|least] [--seed S] [--data PATH] [--json]
/// Boundaries are layer counts: "--layers 1,2,3 --keep 0.5" drops after blocks 1, 2 and 3 (64 -> 32 -> 16 -> 8 ViT patches).
/// </summary>
public static class PyramidDropCommand
{
    public static Command Create()
    {
        var o = new TokenDropOptions(fastV: false);
        var cmd = new Command("pyramid-drop", "PyramidDrop: drop droppable tokens at several stage boundaries, ranked by the query token's attention; report quality and FLOPs against the full model.");
        o.AddTo(cmd);
        cmd.SetAction(pr => TokenDropCli.Run(pr, o, () =>
        {
            var layers = pr.GetValue(o.Layers) ?? throw new CliUsageException("--layers is required (e.g. --layers 1,2,3)");
            var keep = pr.GetValue(o.Keep) ?? throw new CliUsageException("--keep is required (e.g. --keep 0.5 or --keep 0.5,0.5,0.25)");
            return ("pyramid", PyramidSchedule.Parse(layers, keep));
        }));
        return cmd;
    }
}

/// <summary>A bad option: one line on stderr, exit code 2.</summary>
internal sealed class CliUsageException(string message) : ArgumentException(message);

/// <summary>Options shared by pyramid-drop and fastv.</summary>
internal sealed class TokenDropOptions
{
    public Option<string?> Model { get; } = new("--model") { Description = "vit-cifar10, stories260K, babyllama, minilm, or a model path" };
    public Option<string?> Layers { get; } = new("--layers") { Description = "stage boundaries, comma-separated layer counts, e.g. 1,2,3" };
    public Option<int?> Layer { get; } = new("--layer") { Description = "FastV: drop after this many layers (K)" };
    public Option<string?> Keep { get; } = new("--keep") { Description = "keep ratio in (0, 1]; pyramid-drop accepts one per stage" };
    public Option<string> Rank { get; } = new("--rank") { Description = "attention | random | least", DefaultValueFactory = _ => "attention" };
    public Option<int> Seed { get; } = new("--seed") { Description = "seed for --rank random", DefaultValueFactory = _ => 0 };
    public Option<string?> Data { get; } = new("--data") { Description = "ViT: a CIFAR-10 folder in the bundled layout (default: the bundled 1,000 test images); language models: a text file of blank-line-separated paragraphs (default: TinyStories)" };
    public Option<int?> Limit { get; } = new("--limit") { Description = "ViT: N images spread evenly over the set (class-balanced); language models: N prompts" };
    public Option<bool> Json { get; } = new("--json") { Description = "print one JSON object" };
    private readonly bool _fastV;

    public TokenDropOptions(bool fastV) => _fastV = fastV;

    public void AddTo(Command cmd)
    {
        cmd.Options.Add(Model);
        cmd.Options.Add(_fastV ? Layer : Layers);
        cmd.Options.Add(Keep);
        cmd.Options.Add(Rank);
        cmd.Options.Add(Seed);
        cmd.Options.Add(Data);
        cmd.Options.Add(Limit);
        cmd.Options.Add(Json);
    }
}

internal static class TokenDropCli
{
    public static int Run(ParseResult pr, TokenDropOptions o, Func<(string Method, PyramidSchedule Schedule)> schedule)
    {
        var output = pr.InvocationConfiguration.Output;
        // The verbs' one error contract (CliHelpers.Run): one line and exit 2 for any bad option or file.
        return CliHelpers.Run(() =>
        {
            var model = pr.GetValue(o.Model) ?? throw new CliUsageException("--model is required (e.g. --model vit-cifar10)");
            var (method, sched) = schedule();
            var ranking = pr.GetValue(o.Rank)?.ToLowerInvariant() switch
            {
                "attention" => DropRanking.Attention,
                "random" => DropRanking.Random,
                "least" => DropRanking.LeastAttended,
                var r => throw new CliUsageException($"--rank must be attention, random or least, not '{r}'"),
            };
            int? limit = pr.GetValue(o.Limit);
            if (limit is <= 0) throw new CliUsageException($"--limit must be positive, not {limit}");
            if (!VitBundled.IsVit(model)) return RunLanguageModel(pr, o, model, method, sched, ranking, limit);

            var vit = VitModel.Load(VitBundled.Resolve(model));
            try { sched.Validate(vit.Config.Layers); }
            catch (ArgumentException e) { throw new CliUsageException($"--{(method == "fastv" ? "layer" : "layers")}: {FirstLine(e.Message)}"); }
            var dataPath = pr.GetValue(o.Data);
            var set = dataPath is null ? Cifar10Set.LoadBundled() : Cifar10Set.Load(dataPath);
            if (limit is { } n && n < set.Count) set = set.Every(set.Count / n).Take(n); // class-balanced subset
            int seed = pr.GetValue(o.Seed);

            var eval = VitTokenDrop.Evaluate(vit, set, sched, ranking, seed, method: method);
            if (pr.GetValue(o.Json))
            {
                var json = new Dictionary<string, object>
                {
                    ["model"] = "vit-cifar10",
                    ["method"] = method,
                    ["layers"] = sched.Boundaries,
                    ["keep"] = sched.KeepRatios,
                    ["rank"] = ranking.ToString().ToLowerInvariant(),
                    ["seed"] = seed,
                    ["images"] = eval.Images,
                    ["accuracy"] = eval.Accuracy,
                    ["accuracy_full"] = eval.AccuracyFull,
                    ["agreement"] = eval.Agreement,
                    ["flops_ratio"] = eval.FlopsRatio,
                    ["macs"] = eval.Cost.TotalMacs,
                    ["macs_full"] = (long)Math.Round(eval.Cost.TotalMacs / eval.FlopsRatio),
                    ["ranking_macs"] = eval.Cost.RankingMacs,
                    ["tokens_per_layer"] = eval.Cost.Layers.Select(l => l.Tokens).ToArray(),
                };
                output.WriteLine(JsonSerializer.Serialize(json, CliHelpers.Json));
            }
            else
            {
                var ci = CultureInfo.InvariantCulture;
                output.WriteLine($"{method} on vit-cifar10, {sched}, rank {ranking.ToString().ToLowerInvariant()}, {eval.Images} images");
                output.WriteLine($"  tokens per layer  {string.Join(" / ", eval.Cost.Layers.Select(l => l.Tokens))}");
                output.WriteLine(string.Format(ci, "  accuracy          {0:P2}  (full model {1:P2})", eval.Accuracy, eval.AccuracyFull));
                output.WriteLine(string.Format(ci, "  agreement         {0:P2}  with the full model's predictions", eval.Agreement));
                output.WriteLine(string.Format(ci, "  FLOPs ratio       {0:F4}  (blocks, analytic; ranking adds {1:F4})", eval.FlopsRatio, (double)eval.Cost.RankingMacs / (eval.Cost.TotalMacs / eval.FlopsRatio)));
            }
            return 0;
        }, pr, pr.InvocationConfiguration.Error, "error: ");
    }

    // Decoders: KL / top-1 of the next token and continuation perplexity on TinyStories prompts; encoders: embedding cosine.
    private static int RunLanguageModel(ParseResult pr, TokenDropOptions o, string name, string method, PyramidSchedule sched, DropRanking ranking, int? limit)
    {
        var output = pr.InvocationConfiguration.Output;
        var loaded = ModelHub.Load(name);
        try { sched.Validate(loaded.Config.Layers); }
        catch (ArgumentException e) { throw new CliUsageException($"--{(method == "fastv" ? "layer" : "layers")}: {FirstLine(e.Message)}"); }
        int seed = pr.GetValue(o.Seed);
        var dataPath = pr.GetValue(o.Data);
        var json = new Dictionary<string, object>
        {
            ["model"] = loaded.Name, ["method"] = method, ["layers"] = sched.Boundaries, ["keep"] = sched.KeepRatios,
            ["rank"] = ranking.ToString().ToLowerInvariant(), ["seed"] = seed,
        };
        string text;
        if (loaded is Decoder dec)
        {
            var prompts = LanguageTokenDrop.TinyStoriesPrompts(limit ?? 8, 1000, dataPath);
            var e = LanguageTokenDrop.EvaluateDecoder(dec, prompts, sched, ranking, seed);
            json["prompts"] = e.PerPrompt.Count;
            json["kl"] = e.Kl;
            json["top1_agreement"] = e.Top1Agreement;
            json["perplexity_full"] = e.PerplexityFull;
            json["perplexity"] = e.PerplexityDropped;
            json["flops_ratio"] = e.FlopsRatio;
            text = string.Format(CultureInfo.InvariantCulture,
                "{0} on {1}, {2}, rank {3}, {4} prompts\n  KL(full || dropped) {5:F4} nats\n  top-1 agreement     {6:P1}\n  perplexity          {7:F3} (full {8:F3})\n  FLOPs ratio         {9:F4}",
                method, loaded.Name, sched, json["rank"], e.PerPrompt.Count, e.Kl, e.Top1Agreement, e.PerplexityDropped, e.PerplexityFull, e.FlopsRatio);
        }
        else if (loaded is Encoder enc)
        {
            var texts = LanguageTokenDrop.TinyStoriesPrompts(limit ?? 16, 500, dataPath).Select(p => p.Context).ToList();
            var e = LanguageTokenDrop.EvaluateEncoder(enc, texts, sched, ranking, seed);
            json["texts"] = texts.Count;
            json["cosine"] = e.MeanCosine;
            json["cosine_min"] = e.MinCosine;
            json["flops_ratio"] = e.FlopsRatio;
            text = string.Format(CultureInfo.InvariantCulture, "{0} on {1}, {2}, rank {3}, {4} texts\n  embedding cosine    {5:F4} (min {6:F4})\n  FLOPs ratio         {7:F4}",
                method, loaded.Name, sched, json["rank"], texts.Count, e.MeanCosine, e.MinCosine, e.FlopsRatio);
        }
        else throw new CliUsageException($"--model {name}: not a decoder, encoder or the ViT");
        output.WriteLine(pr.GetValue(o.Json) ? JsonSerializer.Serialize(json, CliHelpers.Json) : text);
        return 0;
    }

    // ArgumentException appends " (Parameter 'x')"; keep one clean line.
    private static string FirstLine(string message)
    {
        int i = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        var m = i >= 0 ? message[..i] : message;
        return m.Split('\n')[0].Trim();
    }
}
