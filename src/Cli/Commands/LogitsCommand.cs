using System.CommandLine;
using System.Globalization;
using Workbench.Engine.Models;
using Workbench.Engine.Requests;

namespace Workbench.Cli.Commands;

/// <summary>
/// One forward pass over given token ids (no BOS added, no tokenizer needed) or a prompt (tokenized with BOS, as
/// generate does), printing the logits of every position: what checks compare against other implementations.
/// </summary>
public static class LogitsCommand
{
    public static Command Create()
    {
        var model = CliHelpers.ModelOption("a decoder: a bundled name (stories260K, babyllama, ...) or a path (.bin, .gguf, Hugging Face folder)");
        var tokens = new Option<string?>("--tokens") { Description = "comma-separated token ids, run as given (no BOS added)" };
        var prompt = new Option<string?>("--prompt") { Description = "text, tokenized with BOS by the model's tokenizer" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "tokenizer file when not beside the model (only for --prompt)" };
        var weights = CliHelpers.WeightsOption();
        var json = CliHelpers.JsonOption();
        var cmd = new Command("logits", "one forward pass: the next-token logits at every position") { model, tokens, prompt, tokenizer, weights, json };
        cmd.SetAction(r => CliHelpers.Run(() =>
        {
            string? idText = r.GetValue(tokens), text = r.GetValue(prompt);
            if ((idText is null) == (text is null)) throw new OptionException("--tokens", "give exactly one of --tokens ID,ID,... or --prompt TEXT");
            var dec = ModelHub.LoadDecoder(r.GetValue(model)!, r.GetValue(tokenizer), WeightStorageOption.Parse(r.GetValue(weights)));
            int vocab = dec.Config.Vocab;
            int[] ids;
            if (idText is not null)
            {
                ids = Parse.TokenIds(idText, "--tokens");
                if (ids.Length == 0) throw new OptionException("--tokens", "--tokens is empty: give at least one token id");
                foreach (var id in ids)
                    if (id >= vocab) throw new OptionException("--tokens", $"--tokens: id {id} is outside the vocabulary of {vocab}");
            }
            else ids = dec.Tokenizer.Encode(text!, bos: true);
            if (ids.Length > dec.Config.MaxSeq) throw new OptionException(idText is null ? "--prompt" : "--tokens", $"{ids.Length} tokens exceed the model's {dec.Config.MaxSeq} positions");

            var flat = dec.Logits(ids);
            var rows = Enumerable.Range(0, ids.Length).Select(i => flat.AsSpan(i * vocab, vocab).ToArray()).ToArray();
            if (r.GetValue(json))
            {
                CliHelpers.PrintJson(CliHelpers.Obj(("model", dec.Name), ("family", dec.Model.Spec.Family), ("tokens", ids), ("vocab", vocab), ("logits", rows)));
                return 0;
            }
            for (int i = 0; i < ids.Length; i++)
                Console.Out.WriteLine($"{i}\t{ids[i]}\t" + string.Join(" ", rows[i].Select(v => v.ToString("G9", CultureInfo.InvariantCulture))));
            return 0;
        }));
        return cmd;
    }
}
