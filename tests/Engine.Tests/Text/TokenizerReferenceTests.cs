using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TiktokenTokenizer = Microsoft.ML.Tokenizers.TiktokenTokenizer;
using Workbench.Engine.Formats;
using Workbench.Engine.Tests.Formats;
using Workbench.Engine.Text;
using HfTokenizer = Tokenizers.DotNet.Tokenizer;

namespace Workbench.Engine.Tests.Text;

/// <summary>
/// The tokenizers models come with, checked on real text against references we did not write: Hugging Face's own
/// Rust tokenizers library (through Tokenizers.DotNet), Microsoft.ML.Tokenizers' TiktokenTokenizer on GPT-2's real
/// ranks, its SentencePiece reader on austen-16L's tokenizer.model, and the llama2.c tokenizer (tok512.bin).
/// </summary>
public sealed class TokenizerReferenceTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    /// <summary>Paragraphs spread through a novel (the first <paramref name="n"/> of every k-th long one).</summary>
    internal static List<string> Paragraphs(string path, int n, int minLength = 300) =>
        File.ReadLines(path).Where(l => l.Length >= minLength).Where((_, i) => i % 37 == 5).Take(n).ToList();

    /// <summary>The same paragraph typeset: curly double and single quotes, an em dash for "--" (non-ASCII, real text).</summary>
    internal static string Typeset(string p)
    {
        var sb = new StringBuilder();
        bool open = true;
        for (int i = 0; i < p.Length; i++)
        {
            char c = p[i];
            if (c == '"') { sb.Append(open ? '“' : '”'); open = !open; }
            else if (c == '\'') sb.Append(i > 0 && char.IsLetter(p[i - 1]) ? '’' : '‘');
            else if (c == '-' && i + 1 < p.Length && p[i + 1] == '-') { sb.Append('—'); i++; }
            else sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>Persuasion and Emma paragraphs, plain and typeset, a Mansfield Park one with '£', and accented French words.</summary>
    internal static List<string> RealText()
    {
        var plain = Paragraphs(Bundled.Persuasion, 6).Concat(Paragraphs(Bundled.Emma, 6)).ToList();
        var pound = File.ReadLines(RepoFiles.Data("text", "austen", "mansfieldpark.txt")).First(l => l.Contains('£'));
        return [.. plain, .. plain.Take(4).Select(Typeset), pound,
            "Elle était naïve; the café's crème brûlée — “déjà vu” — cost £20, ½ of 1815's ¥ 3,000,000."];
    }

    private static string[] TinyStories(int n) => File.ReadLines(Bundled.TinyStories).Where(l => l.Length > 40).Take(n).ToArray();

    private static int[] Hf(HfTokenizer t, string text) => t.Encode(text).Select(x => (int)x).ToArray();

    private static readonly Lazy<TiktokenTokenizer> Tiktoken = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    [Fact]
    public void Gpt2_tokenizer_json_gives_tiktokens_and_hugging_faces_ids_on_austen()
    {
        var path = Gpt2Vocabulary.WriteTokenizerJson(_dir.File("tokenizer.json"));
        var ours = Assert.IsType<ByteLevelBpeTokenizer>(TokenizerJson.Load(path, 50257));
        Assert.Equal(50257, ours.VocabSize);
        Assert.Equal(Gpt2Vocabulary.EndOfText, ours.BosId);
        Assert.Equal(Gpt2Vocabulary.EndOfText, ours.EosId);
        using var hf = new HfTokenizer(path);
        int total = 0;
        foreach (var text in RealText().Append("one<|endoftext|>two  spaces\n\nand   tabs\t!"))
        {
            var ids = ours.Encode(text, bos: false);
            Assert.Equal(Tiktoken.Value.EncodeToIds(text), ids);
            Assert.Equal(Hf(hf, text), ids);
            Assert.Equal(text.Replace("<|endoftext|>", ""), ours.Decode(ours.Encode(text)));
            total += ids.Length;
        }
        Assert.True(total > 2000, $"{total} tokens");
    }

    [Theory]
    [InlineData(ByteLevelBpeTokenizer.Llama3Pattern, false)]
    [InlineData(ByteLevelBpeTokenizer.Qwen2Pattern, true)]
    public void Llama3_and_qwen2_style_files_split_with_their_regex_as_hugging_face_does(string regex, bool nfc)
    {
        // Llama 3 and Qwen2 ship a Split(regex) + ByteLevel(use_regex false) pre-tokenizer (Qwen2 with NFC); GPT-2's
        // vocabulary stands in for theirs (the reading and splitting are what differ), BOS from the template.
        var post = new
        {
            type = "TemplateProcessing",
            single = new object[] { new { SpecialToken = new { id = "<|endoftext|>", type_id = 0 } }, new { Sequence = new { id = "A", type_id = 0 } } },
            pair = Array.Empty<object>(),
            special_tokens = new Dictionary<string, object> { ["<|endoftext|>"] = new { id = "<|endoftext|>", ids = new[] { Gpt2Vocabulary.EndOfText }, tokens = new[] { "<|endoftext|>" } } },
        };
        var path = Gpt2Vocabulary.WriteTokenizerJson(_dir.File("tokenizer.json"), Gpt2Vocabulary.SplitThenByteLevel(regex), nfc ? new { type = "NFC" } : null, post);
        var ours = Assert.IsType<ByteLevelBpeTokenizer>(TokenizerJson.Load(path));
        Assert.Equal(regex, ours.Pattern);
        using var hf = new HfTokenizer(path);
        var texts = RealText().Append("In 1815, 123456789 people paid 3.14159 -- 'tis\r\n\r\n  said   e\u0301 and é.").ToList();
        bool differs = false;
        foreach (var text in texts)
        {
            var ids = ours.Encode(text, bos: true);
            Assert.Equal(Hf(hf, text), ids); // the template puts <|endoftext|> first, as Encode(bos) does
            differs |= !ids.Skip(1).SequenceEqual(Tiktoken.Value.EncodeToIds(text));
            Assert.Equal(nfc ? text.Normalize(NormalizationForm.FormC) : text, ours.Decode(ids));
        }
        Assert.True(differs, "the split regex should change some ids against GPT-2's own split");
    }

    [Fact]
    public void Austen_sentencepiece_as_tokenizer_json_gives_the_models_and_hugging_faces_ids()
    {
        // data/tokenizers/austen-16L.tokenizer.json is tools/spm_to_tokenizer_json.py's conversion of the model's tokenizer.model.
        var json = RepoFiles.Data("tokenizers", "austen-16L.tokenizer.json");
        var ours = Assert.IsType<HfBpeTokenizer>(TokenizerJson.Load(json, 2048));
        var sp = SentencePieceTokenizer.Load(RepoFiles.Model("austen-16L", "fp", "tokenizer.model"), 2048);
        using var hf = new HfTokenizer(json);
        int bytePieces = 0;
        foreach (var text in RealText())
        {
            var ids = ours.Encode(text, bos: false);
            Assert.Equal(sp.Encode(text, bos: false), ids);
            Assert.Equal(Hf(hf, text), ids);
            bytePieces += ids.Count(i => i is >= 3 and < 259);
            Assert.Equal(text, ours.Decode(ours.Encode(text)));
            Assert.Equal(text, sp.Decode(sp.Encode(text)));
        }
        Assert.True(bytePieces > 20, $"{bytePieces} byte-fallback pieces: the typeset text should need them");
    }

    [Theory]
    [InlineData("first", false)]
    [InlineData("always", true)]
    public void A_metaspace_pre_tokenizer_reads_as_hugging_face_reads_it(string scheme, bool split)
    {
        // Non-legacy Llama / Mistral files: no normalizer, a Metaspace pre-tokenizer (split false as LlamaConverter writes).
        var node = JsonNode.Parse(File.ReadAllText(RepoFiles.Data("tokenizers", "austen-16L.tokenizer.json")))!;
        node["normalizer"] = null;
        node["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = scheme, ["split"] = split };
        // A piece across a word boundary ("s▁", first merge): only an unsplit text can form it.
        node["model"]!["vocab"]!["s\u2581"] = 2048;
        node["model"]!["merges"]!.AsArray().Insert(0, new JsonArray("s", "\u2581"));
        var path = _dir.File("tokenizer.json");
        File.WriteAllText(path, node.ToJsonString());
        var ours = TokenizerJson.Load(path, 2049);
        using var hf = new HfTokenizer(path);
        int across = 0;
        foreach (var text in RealText().Take(8))
        {
            var ids = ours.Encode(text, bos: false);
            Assert.Equal(Hf(hf, text), ids);
            across += ids.Count(i => i == 2048);
        }
        Assert.Equal(split, across == 0);
    }

    [Fact]
    public void The_stories260K_gguf_tokenizer_is_the_llama2c_tokenizer()
    {
        var gguf = Assert.IsType<SentencePieceTokenizer>(GgufTokenizer.TryLoad(Bundled.Path("models/stories260K/stories260K.gguf"), 512));
        var llama = new Llama2cTokenizer(Bundled.Path("models/stories260K/tok512.bin"), 512);
        Assert.Equal((1, 2), (gguf.BosId, gguf.EosId));
        foreach (var line in TinyStories(200))
        {
            Assert.Equal(llama.Encode(line), gguf.Encode(line));
            // run.c's safe_printf drops the lone bytes of byte-fallback characters; the SentencePiece decoder keeps them.
            Assert.Equal(line, gguf.Decode(gguf.Encode(line)));
            if (line.All(char.IsAscii)) Assert.Equal(llama.Decode(llama.Encode(line)), gguf.Decode(gguf.Encode(line)));
        }
    }

    [Fact]
    public void A_gpt2_kind_gguf_tokenizer_gives_tiktokens_ids()
    {
        var path = _dir.File("gpt2-vocab.gguf");
        File.WriteAllBytes(path, Gpt2Vocabulary.Gguf());
        var tok = Assert.IsType<ByteLevelBpeTokenizer>(GgufTokenizer.TryLoad(path, 50257));
        Assert.Equal(ByteLevelBpeTokenizer.Gpt2Pattern, tok.Pattern);
        Assert.Equal(Gpt2Vocabulary.EndOfText, tok.BosId);
        foreach (var text in RealText())
        {
            Assert.Equal(Tiktoken.Value.EncodeToIds(text), tok.Encode(text, bos: false));
            Assert.Equal(text, tok.Decode(tok.Encode(text)));
        }
    }

    [Fact]
    public void Bad_tokenizer_files_name_the_file_and_field()
    {
        var good = JsonNode.Parse(File.ReadAllText(Gpt2Vocabulary.WriteTokenizerJson(_dir.File("good.json"))))!;
        ModelFormatException Bad(Action<JsonNode> edit)
        {
            var n = good.DeepClone();
            edit(n);
            var p = _dir.File("bad.json");
            File.WriteAllText(p, n.ToJsonString());
            var e = Assert.Throws<ModelFormatException>(() => TokenizerJson.Load(p));
            Assert.Contains(p, e.Message);
            return e;
        }
        Assert.Equal("model.merges[3]", Bad(n => n["model"]!["merges"]![3] = "Ġzzzq Ġyyyq").Field);
        Assert.Equal("model.type", Bad(n => n["model"]!["type"] = "Unigram").Field);
        Assert.Equal("pre_tokenizer.pretokenizers[0].type", Bad(n => n["pre_tokenizer"] = JsonNode.Parse("""{"type":"Sequence","pretokenizers":[{"type":"Digits"},{"type":"ByteLevel"}]}""")).Field);
        Assert.Equal("pre_tokenizer.pretokenizers[0].pattern.Regex", Bad(n => n["pre_tokenizer"] = JsonSerializer.SerializeToNode(Gpt2Vocabulary.SplitThenByteLevel("(?<"))).Field);
        Assert.Equal("normalizer.type", Bad(n => n["normalizer"] = JsonNode.Parse("""{"type":"Lowercase"}""")).Field);
        Assert.StartsWith("model.vocab[", Bad(n => n["model"]!["vocab"]!["Ġthe"] = -4).Field);
        var trunc = _dir.File("trunc.json");
        File.WriteAllText(trunc, good.ToJsonString()[..5000]);
        Assert.Equal("json", Assert.Throws<ModelFormatException>(() => TokenizerJson.Load(trunc)).Field);

        // GGUF: an unknown tokenizer model or pre-tokenizer is named with its key, its offset and what is supported.
        var gguf = _dir.File("bad.gguf");
        File.WriteAllBytes(gguf, Gpt2Vocabulary.Gguf(pre: "deepseek-coder"));
        var ge = Assert.Throws<ModelFormatException>(() => GgufTokenizer.TryLoad(gguf));
        Assert.Equal("tokenizer.ggml.pre", ge.Field);
        Assert.True(ge.Offset > 0);
        Assert.Contains("qwen2", ge.Message);
        File.WriteAllBytes(gguf, Gpt2Vocabulary.Gguf(model: "bert"));
        ge = Assert.Throws<ModelFormatException>(() => GgufTokenizer.TryLoad(gguf));
        Assert.Equal("tokenizer.ggml.model", ge.Field);
        Assert.True(ge.Offset > 0);
        File.WriteAllBytes(gguf, Gpt2Vocabulary.Gguf());
        Assert.Equal("tokenizer.ggml.tokens", Assert.Throws<ModelFormatException>(() => GgufTokenizer.TryLoad(gguf, 50000)).Field);
    }
}
