using System.Text.Json;
using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Workbench.Engine.Tests.Text;

namespace Workbench.Engine.Tests.Models;

/// <summary>
/// What `workbench logits --image` feeds a LLaVA folder (<see cref="VisionLanguageModel"/>): the golden's own
/// pixel_values (transformers' input, README: a torch.randn draw, no preprocessing) read from its .npz give transformers'
/// logits; an image file goes through the folder's preprocessing; the image placeholder is expanded as LLaVA's processor does.
/// </summary>
public sealed class LlavaInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wb-llava-in-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static string Folder(string f) => Path.GetDirectoryName(Bundled.Path($"data/goldens/arch/{f}/config.json"))!;

    private static int[] Prompt() => JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder("llava"), "gen.json"))).RootElement
        .GetProperty("prompt").EnumerateArray().Select(e => e.GetInt32()).ToArray();

    private static VisionLanguageModel Load(string? tokenizer = null) => Assert.IsType<VisionLanguageModel>(ModelHub.Load(Folder("llava"), tokenizer));

    [Fact]
    public void The_goldens_pixel_values_from_its_npz_give_transformers_logits()
    {
        var m = Load();
        string npz = Path.Combine(Folder("llava"), "golden.npz");
        var (image, how) = Workbench.Engine.Vision.LlavaImage.Read(m.Model, npz);
        Assert.Contains("as stored", how);
        using var golden = NpzFile.Open(npz);
        Assert.Equal(golden.ReadF32("pixel_values"), Assert.IsType<PixelInput>(image).Chw);
        var logits = m.Logits(Prompt(), image);
        var want = golden.ReadF32("logits");
        Assert.Equal(want.Length, logits.Length);
        double worst = 0;
        for (int i = 0; i < want.Length; i++) worst = Math.Max(worst, Math.Abs(logits[i] - want[i]));
        Assert.True(worst <= 1e-4, $"max |logit - transformers| = {worst}");
        // without the image the image-token ids are embedded as themselves: other logits
        Assert.NotEqual(logits, m.Logits(Prompt(), null));
    }

    [Fact]
    public void One_image_token_is_expanded_to_the_images_features_and_other_counts_are_refused()
    {
        var m = Load();
        var full = Prompt();
        int id = m.Model.ImageTokenId;
        int[] one = [.. full.TakeWhile(t => t != id), id, .. full.SkipWhile(t => t != id).SkipWhile(t => t == id)];
        Assert.Equal(full, m.WithImageTokens(one));
        Assert.Equal(full, m.WithImageTokens(full));
        var e = Assert.Throws<ArgumentException>(() => m.WithImageTokens([1, id, id, 5]));
        Assert.Contains($"{m.Model.ImageTokens}", e.Message);
    }

    [Fact]
    public void A_prompt_puts_the_image_where_it_says_image_else_after_bos()
    {
        var tok = TokenizerWiringTests.WriteByteTokenizer(Path.Combine(_dir, "tokenizer.json"));
        var m = Load(tok);
        int id = m.Model.ImageTokenId, n = m.Model.ImageTokens;
        var t = m.Tokenizer!;
        Assert.Equal([.. t.Encode("ab", bos: true), .. Enumerable.Repeat(id, n), .. t.Encode("cd", bos: false)], m.EncodePrompt("ab<image>cd"));
        Assert.Equal([.. t.Encode("", bos: true), .. Enumerable.Repeat(id, n), .. t.Encode("cd", bos: false)], m.EncodePrompt("cd"));
    }

    [Fact]
    public void An_image_file_is_preprocessed_to_the_towers_input_and_a_wrong_pixel_values_shape_is_named()
    {
        var m = Load();
        var (image, how) = Workbench.Engine.Vision.LlavaImage.Read(m.Model, Bundled.Path("data/images/chelsea.png"));
        Assert.Equal(m.Model.Tower.Image * m.Model.Tower.Image * 3, Assert.IsType<ImageInput>(image).PixelsHwc.Length);
        Assert.Contains($"{m.Model.Tower.Image}x{m.Model.Tower.Image}", how);
        var logits = m.Logits(Prompt(), image);
        Assert.Equal(Prompt().Length * m.Config.Vocab, logits.Length);
        Assert.All(logits, v => Assert.True(float.IsFinite(v)));
        // the ViT golden's pixel_values are 224 x 224: not this tower's input
        var e = Assert.Throws<ModelFormatException>(() => Workbench.Engine.Vision.LlavaImage.Read(m.Model, Path.Combine(Folder("vit"), "golden.npz")));
        Assert.Equal("pixel_values", e.Field);
    }
}
