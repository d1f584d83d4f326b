namespace Workbench.Engine.Tests;

/// <summary>Readers for the goldens that independent reference implementations produced (data/goldens).</summary>
public static class Goldens
{
    /// <summary>The largest |a[i] - b[i]| (the lengths must agree): how far a result is from its golden.</summary>
    public static double MaxAbs(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Xunit.Assert.Equal(b.Length, a.Length);
        double worst = 0;
        for (int i = 0; i < a.Length; i++) worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
        return worst;
    }

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

    /// <summary>Every greedy golden for both bundled forms of stories260K (the llama2.c .bin and the GGUF).</summary>
    public static TheoryData<string, string, string> Stories260KGreedyCases()
    {
        var d = new TheoryData<string, string, string>();
        foreach (var (prompt, text) in Stories260KGreedy())
            foreach (var model in new[] { "stories260K", "stories260K-gguf" })
                d.Add(model, prompt, text);
        return d;
    }

    /// <summary>Text as the greedy golden holds it: run.c's stdout on one line, its newlines (the final one too) as spaces.</summary>
    public static string AsGreedyGolden(string printed) => (printed + "\n").Replace('\n', ' ');

    /// <summary>stories260K_greedy.tsv: prompt TAB the text run.c printed.</summary>
    public static IEnumerable<(string Prompt, string Text)> Stories260KGreedy() =>
        File.ReadAllLines(Bundled.Path("data/goldens/stories260K_greedy.tsv"))
            .Where(l => l.Contains('\t'))
            .Select(l => (l[..l.IndexOf('\t')], l[(l.IndexOf('\t') + 1)..]));

    /// <summary>
    /// A NumPy .npy file (format 1.0 or 2.0, little-endian, C order) of float32, float64, int8, int32 or int64, as doubles with its
    /// shape: the goldens made by PyTorch / NumPy scripts.
    /// </summary>
    public static (double[] Data, int[] Shape) Npy(string path)
    {
        var b = File.ReadAllBytes(path);
        if (b.Length < 10 || b[0] != 0x93 || System.Text.Encoding.ASCII.GetString(b, 1, 5) != "NUMPY") throw new InvalidDataException($"{path}: not a .npy file");
        int headerLen = b[6] == 1 ? BitConverter.ToUInt16(b, 8) : (int)BitConverter.ToUInt32(b, 8);
        int start = b[6] == 1 ? 10 : 12;
        var header = System.Text.Encoding.Latin1.GetString(b, start, headerLen);
        string descr = System.Text.RegularExpressions.Regex.Match(header, @"'descr':\s*'([^']+)'").Groups[1].Value;
        var shapeText = System.Text.RegularExpressions.Regex.Match(header, @"'shape':\s*\(([^)]*)\)").Groups[1].Value;
        int[] shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        if (header.Contains("'fortran_order': True")) throw new InvalidDataException($"{path}: Fortran order");
        int n = shape.Aggregate(1, (x, y) => x * y), at = start + headerLen;
        var data = new double[n];
        for (int i = 0; i < n; i++)
            data[i] = descr switch
            {
                "<f4" => BitConverter.ToSingle(b, at + 4 * i),
                "<f8" => BitConverter.ToDouble(b, at + 8 * i),
                "<i4" => BitConverter.ToInt32(b, at + 4 * i),
                "<i8" => BitConverter.ToInt64(b, at + 8 * i),
                "|i1" => (sbyte)b[at + i],
                _ => throw new InvalidDataException($"{path}: dtype {descr} not handled"),
            };
        return (data, shape);
    }

    /// <summary>
    /// Perplexity over austen-16L's held-out goldens (heldout_32k_ids.npy): 64 windows of 512 tokens, each predicting
    /// the next id, as goldens/README.md defines ppl_32k. <paramref name="logits"/> gives [512, vocab] for a window.
    /// </summary>
    public static double AustenHeldOutPerplexity(Func<int[], float[]> logits, int vocab)
    {
        var ids = Npy(Bundled.Path("data/goldens/austen-16L/heldout_32k_ids.npy")).Data.Select(x => (int)x).ToArray();
        const int window = 512;
        int windows = (ids.Length - 1) / window;
        double nll = 0;
        for (int w = 0; w < windows; w++)
        {
            var l = logits(ids[(w * window)..((w + 1) * window)]);
            for (int t = 0; t < window; t++)
            {
                var row = l.AsSpan(t * vocab, vocab);
                float max = System.Numerics.Tensors.TensorPrimitives.Max(row);
                double z = 0;
                foreach (var v in row) z += Math.Exp(v - max);
                nll += Math.Log(z) + max - row[ids[w * window + t + 1]];
            }
        }
        return Math.Exp(nll / (windows * window));
    }
}
