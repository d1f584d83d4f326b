using System.Text;
using System.Text.Json;
using Workbench.Engine.Models;
using Workbench.Engine.Tests.Formats;
using Workbench.Engine.Text;

namespace Workbench.Engine.Tests.Text;

/// <summary>
/// A Hugging Face folder or GGUF that carries a tokenizer makes text prompts work for any family; one without a
/// tokenizer still runs on token ids.
/// </summary>
public sealed class TokenizerWiringTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    /// <summary>GPT-2's byte alphabet alone (its first 256 ranks, no merges): a byte-level tokenizer.json for a 256-token model.</summary>
    internal static string WriteByteTokenizer(string path)
    {
        var vocab = Enumerable.Range(0, 256).ToDictionary(r => Gpt2Vocabulary.Piece(Gpt2Vocabulary.Ranks.Value[r]), r => r);
        var json = new { version = "1.0", added_tokens = Array.Empty<object>(), pre_tokenizer = new { type = "ByteLevel", add_prefix_space = false, use_regex = true },
            decoder = new { type = "ByteLevel" }, model = new { type = "BPE", vocab, merges = Array.Empty<string>() } };
        File.WriteAllText(path, JsonSerializer.Serialize(json));
        return path;
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("qwen2")]
    [InlineData("llama3_tied")]
    [InlineData("mistral")]
    [InlineData("gemma2")]
    [InlineData("phi3")]
    public void A_hugging_face_folder_with_a_tokenizer_json_takes_text(string family)
    {
        var src = RepoFiles.Data("goldens", "arch", family);
        var folder = Directory.CreateDirectory(_dir.File(family)).FullName;
        foreach (var f in new[] { "config.json", "model.safetensors" }) File.Copy(Path.Combine(src, f), Path.Combine(folder, f));
        var bare = ModelHub.LoadDecoder(folder);
        Assert.False(bare.HasTokenizer); // ids only, as before

        WriteByteTokenizer(Path.Combine(folder, "tokenizer.json"));
        var d = ModelHub.LoadDecoder(folder);
        Assert.True(d.HasTokenizer);
        const string text = "Emma Woodhouse, handsome — “clever”";
        // No merges and no BOS token: one id per UTF-8 byte, the byte's rank in GPT-2's alphabet.
        var byteRank = Enumerable.Range(0, 256).ToDictionary(r => Gpt2Vocabulary.Ranks.Value[r][0], r => r);
        var ids = d.Tokenizer.Encode(text, bos: true);
        Assert.Equal(Encoding.UTF8.GetBytes(text).Select(b => byteRank[b]), ids);
        Assert.Equal(bare.Logits(ids), d.Logits(ids));
        var g = d.Generate(text, steps: ids.Length + 6);
        Assert.StartsWith(text, g.Text);
        Assert.Equal(ids, g.Tokens[..ids.Length]); // no BOS to stop at: the prompt, then one token per remaining forward pass
        Assert.Equal(ids.Length + 7, g.Tokens.Length);
    }

    [Fact]
    public void The_austen_folder_reads_its_converted_tokenizer_json_as_its_tokenizer_model()
    {
        var fp = Bundled.Folder("models/austen-16L/fp");
        var viaModel = ModelHub.LoadDecoder(fp);
        var viaJson = ModelHub.LoadDecoder(fp, RepoFiles.Data("tokenizers", "austen-16L.tokenizer.json"));
        Assert.IsType<SentencePieceTokenizer>(viaModel.Tokenizer);
        Assert.IsType<HfBpeTokenizer>(viaJson.Tokenizer);
        string prompt = TokenizerReferenceTests.Paragraphs(Bundled.Persuasion, 1, minLength: 200)[0][..200];
        Assert.Equal(viaModel.Tokenizer.Encode(prompt), viaJson.Tokenizer.Encode(prompt));
        var a = viaModel.Generate(prompt, steps: 80);
        var b = viaJson.Generate(prompt, steps: 80);
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.Equal(a.Text, b.Text);
    }

    [Fact]
    public void A_gguf_without_tokenizer_metadata_still_runs_on_ids()
    {
        var bytes = File.ReadAllBytes(Bundled.Path("models/stories260K/stories260K.gguf"));
        // Same-length key renames keep every offset: tokenizer.ggml.* becomes keys no reader knows.
        byte[] from = Encoding.ASCII.GetBytes("tokenizer.ggml."), to = Encoding.ASCII.GetBytes("tokenizer.none.");
        int renamed = 0;
        for (int i = 0; i + from.Length <= bytes.Length; i++)
            if (bytes.AsSpan(i, from.Length).SequenceEqual(from)) { to.CopyTo(bytes, i); renamed++; }
        Assert.True(renamed >= 3);
        var path = _dir.File("no-tokenizer.gguf");
        File.WriteAllBytes(path, bytes);
        var d = ModelHub.LoadDecoder(path);
        Assert.False(d.HasTokenizer);
        var withTok = ModelHub.LoadDecoder("stories260K-gguf");
        int[] ids = withTok.Tokenizer.Encode("Once upon a time");
        Assert.Equal(withTok.Logits(ids), d.Logits(ids));
    }
}
