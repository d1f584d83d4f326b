using System.CommandLine;
using Workbench.Engine.Models;
using Workbench.Engine.Requests;

namespace Workbench.Cli.Commands;

public static class GenerateCommand
{
    public static Command Create()
    {
        var model = CliHelpers.ModelOption();
        var prompt = new Option<string>("--prompt") { Description = "the prompt text", DefaultValueFactory = _ => "" };
        var steps = new Option<int>("--steps") { Description = "positions to run, BOS included (as llama2.c's run.c)", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy; higher = more random", DefaultValueFactory = _ => 0f };
        var seed = new Option<int>("--seed") { Description = "sampling seed", DefaultValueFactory = _ => 42 };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "tokenizer file (tokenizer.bin or a SentencePiece .model) when not beside the model" };
        var ignoreEos = new Option<bool>("--ignore-eos") { Description = "do not stop at the model's end-of-sequence ids (llama2.c checkpoints: BOS)" };
        var weights = CliHelpers.WeightsOption();
        var json = CliHelpers.JsonOption();
        var cmd = new Command("generate", "generate text with a Llama-family decoder") { model, prompt, steps, temperature, seed, tokenizer, ignoreEos, weights, json };
        cmd.SetAction(r => CliHelpers.Run(() =>
        {
            float t = r.GetValue(temperature);
            // Checked before the model loads; the messages name the option (one line, exit 2).
            if (!(t >= 0 && float.IsFinite(t)))
                throw new OptionException("--temperature", $"--temperature {t}: must be a finite number >= 0 (0 = greedy)");
            int n = r.GetValue(steps);
            if (n <= 0) throw new OptionException("--steps", $"--steps {n} must be positive (positions to run, BOS included)");
            var dec = ModelHub.LoadDecoder(r.GetValue(model)!, r.GetValue(tokenizer), WeightStorageOption.Parse(r.GetValue(weights)));
            var progress = CliHelpers.TerminalProgress("generating");
            var result = dec.Generate(r.GetValue(prompt) ?? "", n, t, r.GetValue(seed),
                progress: progress is null ? null : new Progress<int>(i => progress.Report((Math.Min(i, n), n))), ignoreEos: r.GetValue(ignoreEos));
            if (r.GetValue(json))
                CliHelpers.PrintJson(CliHelpers.Obj(
                    ("model", dec.Name),
                    ("text", result.Text),
                    ("tokens", result.Tokens),
                    ("prompt_tokens", result.PromptTokens),
                    ("stop", result.Stop),
                    ("prefill_tokens_per_s", result.PrefillTokensPerSecond),
                    ("decode_tokens_per_s", result.DecodeTokensPerSecond)));
            else
                Console.Out.WriteLine(result.Text);
            return 0;
        }, r));
        return cmd;
    }
}
