using System.CommandLine;
using Workbench.Engine.Models;

namespace Workbench.Cli.Commands;

public static class EmbedCommand
{
    public static Command Create()
    {
        var model = CliHelpers.ModelOption("an encoder: minilm (bundled) or a Hugging Face BERT folder");
        var texts = new Argument<string[]>("texts") { Description = "sentences to embed", Arity = ArgumentArity.OneOrMore };
        var json = CliHelpers.JsonOption();
        var cmd = new Command("embed", "mean-pooled sentence embeddings and their pairwise cosine similarities") { model, texts, json };
        cmd.SetAction(r => CliHelpers.Run(() =>
        {
            var enc = ModelHub.LoadEncoder(r.GetValue(model)!);
            var sentences = r.GetValue(texts)!;
            var vectors = enc.Embed(sentences);
            var cos = Encoder.CosineMatrix(vectors);
            if (r.GetValue(json))
            {
                CliHelpers.PrintJson(CliHelpers.Obj(("model", enc.Name), ("dim", enc.Config.Dim), ("texts", sentences), ("embeddings", vectors), ("cosine", cos)));
                return 0;
            }
            for (int i = 0; i < sentences.Length; i++)
                Console.Out.WriteLine($"[{i}] {sentences[i]}  ({enc.Config.Dim} dims: {string.Join(", ", vectors[i].Take(4).Select(v => v.ToString("F4")))}, ...)");
            Console.Out.WriteLine("cosine similarity:");
            for (int i = 0; i < sentences.Length; i++)
                Console.Out.WriteLine($"[{i}] " + string.Join("  ", cos[i].Select(c => c.ToString("F4"))));
            return 0;
        }, r));
        return cmd;
    }
}
