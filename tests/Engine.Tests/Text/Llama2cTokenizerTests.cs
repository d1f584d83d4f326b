using System.Buffers.Binary;
using System.Text;
using Workbench.Engine.Text;

namespace Workbench.Engine.Tests.Text;

public class Llama2cTokenizerTests
{
    private static string RepoPath(params string[] parts)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Workbench.sln"))) return Path.Combine([dir.FullName, .. parts]);
        throw new DirectoryNotFoundException("Workbench.sln");
    }

    private static Llama2cTokenizer Tok512() => new(RepoPath("models", "stories260K", "tok512.bin"), 512);

    /// <summary>The tokens fed at each step of the run.c golden run (int32 token, then 512 float32 logits).</summary>
    private static int[] GoldenTokens()
    {
        byte[] d = File.ReadAllBytes(RepoPath("data", "goldens", "stories260K_once_upon_a_time.logits.bin"));
        const int record = 4 + 512 * 4;
        Assert.Equal(0, d.Length % record);
        return Enumerable.Range(0, d.Length / record).Select(i => BinaryPrimitives.ReadInt32LittleEndian(d.AsSpan(i * record))).ToArray();
    }

    private static Dictionary<string, string> GoldenTexts() =>
        File.ReadAllLines(RepoPath("data", "goldens", "stories260K_greedy.tsv"), Encoding.UTF8)
            .Where(l => l.Contains('\t')).ToDictionary(l => l.Split('\t')[0], l => l.Split('\t', 2)[1]);

    [Fact]
    public void Loads_tok512()
    {
        var t = Tok512();
        Assert.Equal(512, t.VocabSize);
        Assert.Equal(7, t.MaxTokenLength);
        Assert.Equal("<0x41>"u8.ToArray(), t.Piece(3 + 0x41).ToArray());
    }

    [Fact]
    public void Encodes_prompt_like_run_c()
    {
        var golden = GoldenTokens();
        // run.c fed BOS then the prompt's tokens before generating; the prompt is 4 tokens long.
        int[] ids = Tok512().Encode("Once upon a time", bos: true, eos: false);
        Assert.Equal(golden.Take(ids.Length), ids);
        Assert.Equal(5, ids.Length);
        Assert.Equal([1, 403, 407, 261, 378, 2], Tok512().Encode("Once upon a time", bos: true, eos: true));
        Assert.Empty(Tok512().Encode("", bos: false));
    }

    [Fact]
    public void Decodes_golden_tokens_to_the_golden_text_prefix()
    {
        var tok = Tok512();
        string text = tok.Decode(GoldenTokens());
        string golden = GoldenTexts()["Once upon a time"];
        Assert.True(text.Length > 80, text); // 31 tokens of text
        Assert.StartsWith(text, golden);
    }

    [Fact]
    public void Round_trips_tinystories_lines()
    {
        var tok = Tok512();
        var lines = File.ReadLines(RepoPath("data", "text", "tinystories_val.txt"))
            .Where(l => l.Length > 20 && l.All(c => c is >= ' ' and <= '~') && !l.StartsWith(' ')).Take(40).ToList();
        Assert.Equal(40, lines.Count);
        foreach (var line in lines)
        {
            var ids = tok.Encode(line);
            Assert.True(ids.Length < Encoding.UTF8.GetByteCount(line), "merges should shorten the sequence");
            Assert.Equal(line, tok.Decode(ids));
        }
    }

    [Fact]
    public void Non_ascii_falls_back_to_bytes()
    {
        var tok = Tok512();
        // '漢' (E6 BC A2) is not a piece of this 512 vocabulary, so it becomes its three UTF-8 bytes + 3.
        int[] ids = tok.Encode("漢", bos: false);
        Assert.Equal(" "u8.ToArray(), tok.Piece(ids[0]).ToArray());
        Assert.Equal([0xE6 + 3, 0xBC + 3, 0xA2 + 3], ids[1..]);
        Assert.Equal([0xE6], tok.DecodePiece(ids[0], ids[1]));
        // run.c's safe_printf drops such single non-printable bytes.
        Assert.Equal(0, Llama2cTokenizer.SafePiece([0xE6]).Length);
        Assert.Equal(1, Llama2cTokenizer.SafePiece("\n"u8).Length);
    }

    [Fact]
    public void Merges_pick_highest_score_first()
    {
        var tok = Tok512();
        // Brute check of the final state: no adjacent pair of the output concatenates into a vocabulary piece.
        var ids = tok.Encode("The little dog was happy and played with the ball in the park.", bos: false);
        var pieces = Enumerable.Range(0, tok.VocabSize).Select(i => Encoding.Latin1.GetString(tok.Piece(i))).ToHashSet();
        for (int i = 0; i + 1 < ids.Length; i++)
            Assert.DoesNotContain(Encoding.Latin1.GetString(tok.Piece(ids[i])) + Encoding.Latin1.GetString(tok.Piece(ids[i + 1])), pieces);
    }
}
