using System.Text;
using System.Text.Json;
using Workbench.Engine.Formats;
using Workbench.Engine.Text;

namespace Workbench.Engine.Tests.Text;

/// <summary>
/// A Hugging Face tokenizer.json (SentencePiece-BPE with byte fallback, as Llama checkpoints ship) written from
/// stories260K's llama2.c vocabulary: every way to split each piece into two known pieces becomes a merge, ranked by the
/// piece's score. Rank-ordered BPE must then tokenize exactly as llama2.c's score-ordered merging does.
/// </summary>
public sealed class HfBpeTokenizerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wb-tokjson-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string WriteTokenizerJson(Llama2cTokenizer t) => WriteTokenizerJson(t, _dir);

    /// <summary>Writes dir/tokenizer.json from a llama2.c vocabulary (also the fuzz suite's seed).</summary>
    internal static string WriteTokenizerJson(Llama2cTokenizer t, string dir)
    {
        var pieces = Enumerable.Range(0, t.VocabSize).Select(i => Encoding.UTF8.GetString(t.Piece(i)).Replace(' ', '\u2581')).ToArray();
        pieces[0] = "<unk>"; pieces[1] = "<s>"; pieces[2] = "</s>";
        var index = new Dictionary<string, int>();
        for (int i = 0; i < pieces.Length; i++) index.TryAdd(pieces[i], i);
        var merges = new List<string>();
        foreach (int id in Enumerable.Range(3, t.VocabSize - 3).OrderByDescending(t.Score).ThenBy(i => i))
        {
            string p = pieces[id];
            if (p.StartsWith("<0x") || p.Length < 2) continue;
            for (int cut = 1; cut < p.Length; cut++)
                if (index.ContainsKey(p[..cut]) && index.ContainsKey(p[cut..])) merges.Add(p[..cut] + " " + p[cut..]);
        }
        var json = new
        {
            version = "1.0",
            added_tokens = new[] { new { id = 0, content = "<unk>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true }, new { id = 1, content = "<s>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true }, new { id = 2, content = "</s>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true } },
            normalizer = new { type = "Sequence", normalizers = new object[] { new { type = "Prepend", prepend = "\u2581" }, new { type = "Replace", pattern = new { String = " " }, content = "\u2581" } } },
            model = new { type = "BPE", vocab = index, merges, byte_fallback = true, unk_token = "<unk>", fuse_unk = true },
        };
        var path = Path.Combine(dir, "tokenizer.json");
        File.WriteAllText(path, JsonSerializer.Serialize(json));
        return path;
    }

    [Fact]
    public void Tokenizer_json_encodes_and_decodes_like_the_llama2c_tokenizer()
    {
        var llama = new Llama2cTokenizer(Bundled.Path("models/stories260K/tok512.bin"), 512);
        var json = WriteTokenizerJson(llama);
        var hf = HfBpeTokenizer.Load(json, 512);
        using var rust = new Tokenizers.DotNet.Tokenizer(json); // Hugging Face's own tokenizers library on the same file
        var lines = File.ReadLines(Bundled.TinyStories).Where(l => l.Length > 20).Take(60).Append("Zoë's café — naïve 🙂!").ToList();
        foreach (var line in lines)
        {
            var want = llama.Encode(line);
            Assert.Equal(want, hf.Encode(line));
            Assert.Equal(want.Skip(1), rust.Encode(line).Select(i => (int)i));
            // run.c's safe_printf drops lone bytes of byte-fallback characters; tokenizer.json decoding keeps them.
            Assert.Equal(line.All(char.IsAscii) ? llama.Decode(want) : line, hf.Decode(want));
        }
    }

    [Fact]
    public void A_vocabulary_that_does_not_fit_the_model_is_refused()
    {
        var path = WriteTokenizerJson(new Llama2cTokenizer(Bundled.Path("models/stories260K/tok512.bin"), 512));
        var e = Assert.Throws<ModelFormatException>(() => HfBpeTokenizer.Load(path, 32000));
        Assert.Equal("model.vocab", e.Field);
        File.WriteAllText(path, "{\"model\": {\"type\": \"Unigram\"}}");
        Assert.Equal("model.type", Assert.Throws<ModelFormatException>(() => HfBpeTokenizer.Load(path)).Field);
    }
}
