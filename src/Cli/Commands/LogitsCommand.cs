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
        var model = CliHelpers.ModelOption("a decoder: a bundled name (stories260K, babyllama, ...) or a path (.bin, .gguf, Hugging Face folder; a LlavaForConditionalGeneration folder with --image)");
        var tokens = new Option<string?>("--tokens") { Description = "comma-separated token ids, run as given (no BOS added); with --image they hold the image's image_token_index ids (one is expanded to the image's count)" };
        var prompt = new Option<string?>("--prompt") { Description = "text, tokenized with BOS by the model's tokenizer; with --image the image goes where it says <image>, else after BOS" };
        var image = new Option<string?>("--image") { Description = "LLaVA: a PNG/JPEG (centre crop, resized, normalised as preprocessor_config.json says) or an .npz with pixel_values [1, 3, side, side] as an image processor gives them" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "tokenizer file when not beside the model (only for --prompt)" };
        var weights = CliHelpers.WeightsOption();
        var json = CliHelpers.JsonOption();
        var cmd = new Command("logits", "one forward pass: the next-token logits at every position") { model, tokens, prompt, image, tokenizer, weights, json };
        cmd.SetAction(r => CliHelpers.Run(() =>
        {
            string? idText = r.GetValue(tokens), text = r.GetValue(prompt), imagePath = r.GetValue(image);
            if ((idText is null) == (text is null)) throw new OptionException("--tokens", "give exactly one of --tokens ID,ID,... or --prompt TEXT");
            var loaded = ModelHub.Load(r.GetValue(model)!, r.GetValue(tokenizer), WeightStorageOption.Parse(r.GetValue(weights)));
            if (imagePath is not null && loaded is not VisionLanguageModel)
                throw new OptionException("--image", $"--image: {loaded.Name} is a text-only model ({loaded.Model.GetType().Name}); --image needs a LlavaForConditionalGeneration folder");
            if (loaded is not (Decoder or VisionLanguageModel))
                throw new OptionException("--model", $"--model {loaded.Name}: logits needs a decoder or a LLaVA folder, not a {loaded.Model.GetType().Name}");
            int vocab = loaded.Config.Vocab;
            int[] ids;
            if (idText is not null)
            {
                ids = Parse.TokenIds(idText, "--tokens");
                if (ids.Length == 0) throw new OptionException("--tokens", "--tokens is empty: give at least one token id");
                foreach (var id in ids)
                    if (id >= vocab) throw new OptionException("--tokens", $"--tokens: id {id} is outside the vocabulary of {vocab}");
            }
            else ids = loaded is VisionLanguageModel v && imagePath is not null ? v.EncodePrompt(text!)
                : loaded is Decoder d ? d.Tokenizer.Encode(text!, bos: true)
                : (((VisionLanguageModel)loaded).Tokenizer ?? throw new OptionException("--prompt", $"--prompt: {loaded.Name} has no tokenizer; pass --tokenizer PATH or give --tokens")).Encode(text!, bos: true);

            float[] flat;
            string? how = null;
            if (loaded is VisionLanguageModel vlm)
            {
                ModelInput? px = null;
                if (imagePath is not null)
                {
                    if (!File.Exists(imagePath)) throw new OptionException("--image", $"--image {imagePath}: no such file (a PNG, a JPEG or an .npz with pixel_values)");
                    try { ids = vlm.WithImageTokens(ids); }
                    catch (ArgumentException e) { throw new OptionException(idText is null ? "--prompt" : "--tokens", $"{(idText is null ? "--prompt" : "--tokens")}: {e.Message}"); }
                    (px, how) = Workbench.Engine.Vision.LlavaImage.Read(vlm.Model, imagePath);
                }
                if (ids.Length > vlm.Config.MaxSeq) throw new OptionException(idText is null ? "--prompt" : "--tokens", $"{ids.Length} tokens exceed the model's {vlm.Config.MaxSeq} positions");
                flat = vlm.Logits(ids, px);
            }
            else
            {
                var dec = (Decoder)loaded;
                if (ids.Length > dec.Config.MaxSeq) throw new OptionException(idText is null ? "--prompt" : "--tokens", $"{ids.Length} tokens exceed the model's {dec.Config.MaxSeq} positions");
                flat = dec.Logits(ids);
            }
            string family = loaded is VisionLanguageModel ? "llava" : ((Decoder)loaded).Model.Spec.Family;
            var rows = Enumerable.Range(0, ids.Length).Select(i => flat.AsSpan(i * vocab, vocab).ToArray()).ToArray();
            if (r.GetValue(json))
            {
                var fields = new List<(string, object?)> { ("model", loaded.Name), ("family", family), ("tokens", ids), ("vocab", vocab) };
                if (how is not null) fields.Add(("image", how));
                fields.Add(("logits", rows));
                CliHelpers.PrintJson(CliHelpers.Obj([.. fields]));
                return 0;
            }
            for (int i = 0; i < ids.Length; i++)
                Console.Out.WriteLine($"{i}\t{ids[i]}\t" + string.Join(" ", rows[i].Select(v => v.ToString("G9", CultureInfo.InvariantCulture))));
            return 0;
        }));
        return cmd;
    }
}
