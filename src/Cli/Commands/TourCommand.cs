using System.CommandLine;
using System.Numerics.Tensors;
using Workbench.Engine.Models;

namespace Workbench.Cli.Commands;

/// <summary>A one-minute look at the engine: the bundled models, a greedy story, two sentences compared.</summary>
public static class TourCommand
{
    public static Command Create()
    {
        var cmd = new Command("tour", "load the bundled models, generate a greedy story, embed two sentences");
        cmd.SetAction(_ => CliHelpers.Run(() =>
        {
            Console.Out.WriteLine($"bundled models: {string.Join(", ", ModelHub.BundledNames)}");
            foreach (var name in new[] { "stories260K", "babyllama", "minilm" })
            {
                var m = ModelHub.Load(name);
                var c = m.Config;
                Console.Out.WriteLine($"{m.Name}: {c.Family}, {c.Layers} layers, dim {c.Dim}, {m.Card.Parameters:N0} parameters ({m.Card.Format})");
            }
            var dec = ModelHub.LoadDecoder("stories260K");
            var story = dec.Generate("Once upon a time", 64);
            Console.Out.WriteLine();
            Console.Out.WriteLine($"stories260K, greedy, 64 steps ({story.DecodeTokensPerSecond:N0} tokens/s):");
            Console.Out.WriteLine(story.Text);
            var enc = ModelHub.LoadEncoder("minilm");
            string a = "A man is eating food.", b = "A man is eating a piece of bread.";
            Console.Out.WriteLine();
            Console.Out.WriteLine($"all-MiniLM-L6-v2 cosine(\"{a}\", \"{b}\") = {TensorPrimitives.CosineSimilarity(enc.Embed(a), enc.Embed(b)):F4}");
            return 0;
        }));
        return cmd;
    }
}
