namespace Workbench.Engine.Tests;

/// <summary>Readers for the goldens that independent reference implementations produced (data/goldens).</summary>
public static class Goldens
{
    /// <summary>stories260K_once_upon_a_time.logits.bin: per step an int32 token fed, then 512 float32 logits.</summary>
    public static (int[] Tokens, float[][] Logits) Stories260KLogits()
    {
        var bytes = File.ReadAllBytes(Bundled.Path("data/goldens/stories260K_once_upon_a_time.logits.bin"));
        const int vocab = 512, record = 4 + vocab * 4;
        int steps = bytes.Length / record;
        var tokens = new int[steps];
        var logits = new float[steps][];
        for (int s = 0; s < steps; s++)
        {
            tokens[s] = BitConverter.ToInt32(bytes, s * record);
            logits[s] = new float[vocab];
            Buffer.BlockCopy(bytes, s * record + 4, logits[s], 0, vocab * 4);
        }
        return (tokens, logits);
    }

    /// <summary>stories260K_greedy.tsv: prompt TAB the text run.c printed.</summary>
    public static IEnumerable<(string Prompt, string Text)> Stories260KGreedy() =>
        File.ReadAllLines(Bundled.Path("data/goldens/stories260K_greedy.tsv"))
            .Where(l => l.Contains('\t'))
            .Select(l => (l[..l.IndexOf('\t')], l[(l.IndexOf('\t') + 1)..]));
}
