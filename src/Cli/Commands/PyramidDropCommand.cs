using System.CommandLine;
using System.Globalization;
using Workbench.Engine.Formats;
using Workbench.Engine.TokenDrop;

namespace Workbench.Cli.Commands;

/// <summary>
/// workbench pyramid-drop --model NAME|PATH --layers LIST --keep R[,R...] [--rank attention|random|least] [--seed S] [--data PATH] [--limit N] [--json]
/// Boundaries are layer counts: "--layers 1,2,3 --keep 0.5" drops after blocks 1, 2 and 3 (64 -> 32 -> 16 -> 8 ViT patches).
/// </summary>
public static class PyramidDropCommand
{
    public static Command Create() => TokenDropCli.Create(TokenDropMethod.Pyramid, "pyramid-drop",
        "PyramidDrop: drop droppable tokens at several stage boundaries, ranked by the query token's attention; report quality and FLOPs against the full model.");
}

/// <summary>What pyramid-drop and fastv share: the options (named as the magics name them), the request, the rendering.</summary>
internal static class TokenDropCli
{
    public static Command Create(TokenDropMethod method, string name, string description)
    {
        var model = new Option<string?>("--model") { Description = "vit-cifar10, stories260K, babyllama, minilm, or a model path" };
        var layers = new Option<string?>("--layers") { Description = "stage boundaries, comma-separated layer counts, e.g. 1,2,3" };
        var layer = new Option<string?>("--layer") { Description = "FastV: drop after this many layers (K)" };
        var keep = new Option<string?>("--keep") { Description = "keep ratio in (0, 1]; pyramid-drop accepts one per stage" };
        var rank = new Option<string?>("--rank") { Description = "attention (default) | random | least" };
        var seed = new Option<int>("--seed") { Description = "seed for --rank random", DefaultValueFactory = _ => 0 };
        var data = new Option<string?>("--data") { Description = "ViT: a CIFAR-10 folder in the bundled layout (default: the bundled 1,000 test images); language models: a text file of blank-line-separated paragraphs, or persuasion (the novel austen-16L never saw; default: TinyStories)" };
        var limit = new Option<int?>("--limit") { Description = "ViT: N images spread evenly over the set (class-balanced); language models: N prompts" };
        var image = new Option<string?>("--image") { Description = "one image: ViT, a PNG/JPEG or a CIFAR-10 index run stage by stage; LLaVA, a PNG/JPEG (default data/images/chelsea.png)" };
        var tokens = new Option<string?>("--tokens") { Description = "LLaVA: the prompt's ids with the image tokens where the image goes (default: 4 + 8 seeded random ids around them)" };
        var json = CliHelpers.JsonOption();
        var cmd = new Command(name, description);
        foreach (var o in new Option[] { model, method == TokenDropMethod.FastV ? layer : layers, keep, rank, seed, data, limit, image, tokens, json })
            cmd.Options.Add(o);
        cmd.SetAction(pr => CliHelpers.Run(() =>
        {
            var request = new TokenDropRequest
            {
                Method = method, Model = pr.GetValue(model), Layers = pr.GetValue(layers), Layer = pr.GetValue(layer),
                Keep = pr.GetValue(keep), Rank = pr.GetValue(rank), Seed = pr.GetValue(seed), Data = pr.GetValue(data), Limit = pr.GetValue(limit),
                Image = pr.GetValue(image), Tokens = pr.GetValue(tokens),
            };
            request.Validate();
            var result = request.Run();
            Console.Out.WriteLine(pr.GetValue(json) ? JsonOut.Text(JsonOut.Node(Json(result))!) : Text(result));
            return 0;
        }));
        return cmd;
    }

    private static string MethodName(TokenDropResult r) => r.Method == TokenDropMethod.FastV ? "fastv" : "pyramid";
    private static string RankName(TokenDropResult r) => r.Ranking.ToString().ToLowerInvariant();

    private static Dictionary<string, object> Json(TokenDropResult r)
    {
        var json = new Dictionary<string, object>
        {
            ["model"] = r.Model, ["method"] = MethodName(r), ["layers"] = r.Schedule.Boundaries, ["keep"] = r.Schedule.KeepRatios,
            ["rank"] = RankName(r), ["seed"] = r.Seed,
        };
        if (r.Vit is { } v)
        {
            json["images"] = v.Images;
            json["accuracy"] = v.Accuracy;
            json["accuracy_full"] = v.AccuracyFull;
            json["agreement"] = v.Agreement;
            json["flops_ratio"] = v.FlopsRatio;
            json["macs"] = v.Cost.TotalMacs;
            json["macs_full"] = (long)Math.Round(v.Cost.TotalMacs / v.FlopsRatio);
            json["ranking_macs"] = v.Cost.RankingMacs;
            json["tokens_per_layer"] = v.Cost.Layers.Select(l => l.Tokens).ToArray();
        }
        else if (r.Decoder is { } d)
        {
            json["prompts"] = d.PerPrompt.Count;
            json["kl"] = d.Kl;
            json["top1_agreement"] = d.Top1Agreement;
            json["perplexity_full"] = d.PerplexityFull;
            json["perplexity"] = d.PerplexityDropped;
            json["flops_ratio"] = d.FlopsRatio;
        }
        else if (r.VisionLanguage is { } m)
        {
            json["image"] = m.Image;
            json["preprocessing"] = m.Preprocessing;
            json["prompt_tokens"] = m.PromptTokens;
            json["image_tokens_per_stage"] = m.ImageTokensPerStage;
            json["kl"] = m.Kl;
            json["top1_agrees"] = m.Top1Agrees;
            json["generated_full"] = m.GeneratedFull;
            json["generated"] = m.GeneratedDropped;
            json["flops_ratio"] = m.FlopsRatio;
            json["macs"] = m.Cost.TotalMacs;
            json["ranking_macs"] = m.Cost.RankingMacs;
        }
        else if (r.Encoder is { } e)
        {
            json["texts"] = e.Cosines.Length;
            json["cosine"] = e.MeanCosine;
            json["cosine_min"] = e.MinCosine;
            json["flops_ratio"] = e.FlopsRatio;
        }
        return json;
    }

    private static string Text(TokenDropResult r)
    {
        var ci = CultureInfo.InvariantCulture;
        string head = $"{MethodName(r)} on {r.Model}, {r.Schedule}, rank {RankName(r)}";
        if (r.Vit is { } v)
            return string.Join("\n",
                $"{head}, {v.Images} images",
                $"  tokens per layer  {string.Join(" / ", v.Cost.Layers.Select(l => l.Tokens))}",
                string.Format(ci, "  accuracy          {0:P2}  (full model {1:P2})", v.Accuracy, v.AccuracyFull),
                string.Format(ci, "  agreement         {0:P2}  with the full model's predictions", v.Agreement),
                string.Format(ci, "  FLOPs ratio       {0:F4}  (blocks, analytic; ranking adds {1:F4})", v.FlopsRatio, (double)v.Cost.RankingMacs / (v.Cost.TotalMacs / v.FlopsRatio)));
        if (r.Decoder is { } d)
            return string.Format(ci,
                "{0}, {1} prompts\n  KL(full || dropped) {2:F4} nats\n  top-1 agreement     {3:P1}\n  perplexity          {4:F3} (full {5:F3})\n  FLOPs ratio         {6:F4}",
                head, d.PerPrompt.Count, d.Kl, d.Top1Agreement, d.PerplexityDropped, d.PerplexityFull, d.FlopsRatio);
        if (r.VisionLanguage is { } m)
            return string.Join("\n",
                $"{head}, image {m.Image} ({m.Preprocessing})",
                $"  image tokens      {string.Join(" -> ", m.ImageTokensPerStage)} of {m.PromptTokens} prompt tokens (text tokens are kept)",
                string.Format(ci, "  KL(full || dropped) {0:F4} nats, next token", m.Kl),
                $"  top-1             {(m.Top1Agrees ? "same" : "differs")} ({m.Top1Full} full, {m.Top1Dropped} dropped)",
                $"  greedy {m.GeneratedFull.Length} tokens   {m.GeneratedAgreeing} leading tokens agree ({string.Join(",", m.GeneratedDropped)} vs {string.Join(",", m.GeneratedFull)})",
                string.Format(ci, "  FLOPs ratio       {0:F4}  (language-model prefill, analytic; the vision tower runs in full)", m.FlopsRatio));
        var e = r.Encoder!;
        return string.Format(ci, "{0}, {1} texts\n  embedding cosine    {2:F4} (min {3:F4})\n  FLOPs ratio         {4:F4}",
            head, e.Cosines.Length, e.MeanCosine, e.MinCosine, e.FlopsRatio);
    }
}
