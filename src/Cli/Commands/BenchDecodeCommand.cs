using System.CommandLine;
using Workbench.Engine.Models;
using Workbench.Engine.Requests;

namespace Workbench.Cli.Commands;

/// <summary>
/// <c>bench decode</c>: steady-state decode speed, the number llama2.c's run.c prints as "achieved tok/s". The same
/// generation as <c>generate</c> runs once to warm up (loading, jitting, first tokens) and then <c>--runs</c> times;
/// the median decode tokens/s of those runs is reported beside the first run's.
/// </summary>
public static class BenchDecodeCommand
{
    public static Command Create()
    {
        var model = CliHelpers.ModelOption();
        var prompt = new Option<string>("--prompt") { Description = "the prompt text", DefaultValueFactory = _ => "Once upon a time" };
        var steps = new Option<int>("--steps") { Description = "positions to run, BOS included (as llama2.c's run.c)", DefaultValueFactory = _ => 256 };
        var runs = new Option<int>("--runs") { Description = "timed generations after the warm-up; the median is reported", DefaultValueFactory = _ => 10 };
        var json = CliHelpers.JsonOption();
        var cmd = new Command("decode", "steady-state greedy decode tokens/s of a Llama-family decoder (warm-up run, then the median of --runs)")
        {
            model, prompt, steps, runs, json,
        };
        cmd.SetAction(r => CliHelpers.Run(() =>
        {
            int n = r.GetValue(steps), reps = r.GetValue(runs);
            if (n <= 0) throw new OptionException("--steps", $"--steps {n} must be positive (positions to run, BOS included)");
            if (reps <= 0) throw new OptionException("--runs", $"--runs {reps} must be positive");
            var dec = ModelHub.LoadDecoder(r.GetValue(model)!);
            string text = r.GetValue(prompt) ?? "";
            var first = dec.Generate(text, n, 0f);
            var rates = new double[reps];
            for (int i = 0; i < reps; i++) rates[i] = dec.Generate(text, n, 0f).DecodeTokensPerSecond;
            Array.Sort(rates);
            double median = reps % 2 == 1 ? rates[reps / 2] : (rates[reps / 2 - 1] + rates[reps / 2]) / 2;
            if (r.GetValue(json))
                CliHelpers.PrintJson(CliHelpers.Obj(
                    ("model", dec.Name),
                    ("tokens", first.Tokens.Length),
                    ("runs", reps),
                    ("decode_tokens_per_s", median),
                    ("first_run_decode_tokens_per_s", first.DecodeTokensPerSecond)));
            else
                Console.Out.WriteLine($"{dec.Name}: {first.Tokens.Length} tokens; decode {median:F0} tok/s (median of {reps} runs after a warm-up run at {first.DecodeTokensPerSecond:F0} tok/s)");
            return 0;
        }, r));
        return cmd;
    }
}
