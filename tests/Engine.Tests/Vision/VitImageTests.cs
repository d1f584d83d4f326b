using SkiaSharp;
using Workbench.Engine.Formats;
using Workbench.Engine.Vision;

namespace Workbench.Engine.Tests.Vision;

public class VitImageTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("vitimg");
    public void Dispose() => _dir.Delete(true);

    private string Encode(int w, int h, Func<int, int, (byte R, byte G, byte B)> pixel, SKEncodedImageFormat format, string name)
    {
        using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) { var (r, g, b) = pixel(x, y); bmp.SetPixel(x, y, new SKColor(r, g, b)); }
        using var data = bmp.Encode(format, 100);
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    [Fact]
    public void A_32x32_png_round_trips_exactly()
    {
        var png = Encode(32, 32, (x, y) => ((byte)(7 * x), (byte)(13 * y), (byte)(x * y)), SKEncodedImageFormat.Png, "a.png");
        var img = VitImage.FromFile(png);
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
                Assert.Equal(((byte)(7 * x), (byte)(13 * y), (byte)(x * y)), (img[y, x, 0], img[y, x, 1], img[y, x, 2]));
    }

    [Fact]
    public void Downscaling_2x2_blocks_gives_the_block_colours()
    {
        // 64x64 made of constant 2x2 blocks: a box/trilinear 2x reduction must return each block's colour.
        var png = Encode(64, 64, (x, y) => ((byte)(8 * (x / 2)), (byte)(8 * (y / 2)), 100), SKEncodedImageFormat.Png, "b.png");
        var img = VitImage.FromFile(png);
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
            {
                Assert.InRange(img[y, x, 0], 8 * x - 4, 8 * x + 4);
                Assert.InRange(img[y, x, 1], 8 * y - 4, 8 * y + 4);
                Assert.InRange(img[y, x, 2], 98, 102);
            }
    }

    [Fact]
    public void Non_square_images_are_centre_cropped_not_stretched()
    {
        // 128 x 64: the outer 32 columns on each side are red, the middle 64 green -> the crop is all green.
        var png = Encode(128, 64, (x, y) => x < 32 || x >= 96 ? ((byte)255, (byte)0, (byte)0) : ((byte)0, (byte)255, (byte)0), SKEncodedImageFormat.Png, "c.png");
        var img = VitImage.FromFile(png);
        Assert.All(Enumerable.Range(0, 32 * 32), p => Assert.Equal((0, 255, 0), ((int)img.Hwc[p * 3], (int)img.Hwc[p * 3 + 1], (int)img.Hwc[p * 3 + 2])));
    }

    [Fact]
    public void Jpeg_decodes_close_to_the_source()
    {
        var jpg = Encode(32, 32, (x, y) => ((byte)(4 * x + 50), (byte)(4 * y + 50), 128), SKEncodedImageFormat.Jpeg, "d.jpg");
        var img = VitImage.FromFile(jpg);
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
                Assert.InRange(img[y, x, 0], 4 * x + 50 - 6, 4 * x + 50 + 6);
    }

    [Fact]
    public void Bundled_photos_load_and_classify()
    {
        // chelsea.png is a cat (scikit-image). We only require a valid 32x32 result and a finite prediction.
        var root = VitBundled.RepoRoot();
        foreach (var f in new[] { "chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg" })
        {
            var img = VitImage.FromFile(Path.Combine(root, "data", "images", f));
            Assert.Equal(32 * 32 * 3, img.Hwc.Length);
            Assert.All(VitTestData.Model.Forward(img.Hwc), v => Assert.True(float.IsFinite(v)));
        }
    }

    [Fact]
    public void Wrong_format_or_size_fails_clearly()
    {
        var txt = Path.Combine(_dir.FullName, "not-an-image.png");
        File.WriteAllText(txt, "hello, this is text");
        var e = Assert.Throws<ModelFormatException>(() => VitImage.FromFile(txt));
        Assert.Contains("not-an-image.png", e.Message);

        var png = Encode(40, 40, (x, y) => (1, 2, 3), SKEncodedImageFormat.Png, "t.png");
        var bytes = File.ReadAllBytes(png);
        var truncated = Path.Combine(_dir.FullName, "truncated.png");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        Assert.Contains("truncated.png", Assert.Throws<ModelFormatException>(() => VitImage.FromFile(truncated)).Message);

        Assert.Throws<FileNotFoundException>(() => VitImage.FromFile(Path.Combine(_dir.FullName, "missing.png")));
        Assert.Equal("hwc", Assert.Throws<ArgumentException>(() => new VitImage(new byte[10])).ParamName);
        Assert.Equal("height", Assert.Throws<ArgumentOutOfRangeException>(() => VitImage.FromHwc(new byte[64 * 32 * 3], 64, 32)).ParamName);
        Assert.Equal("channels", Assert.Throws<ArgumentOutOfRangeException>(() => VitImage.FromHwc(new byte[32 * 32 * 4], 32, 32, 4)).ParamName);
    }
}

public class Cifar10SetTests
{
    [Fact]
    public void Bundled_set_has_100_images_per_class_in_class_order()
    {
        var set = VitTestData.Set;
        Assert.Equal(1000, set.Count);
        for (int c = 0; c < 10; c++) Assert.Equal(100, set.Labels.Count(l => l == c));
        for (int i = 0; i < set.Count; i++)
            Assert.StartsWith(Cifar10Set.ClassNames[set.Labels[i]] + "/", set.Names[i]);
        Assert.Equal(100, set.Every(10).Count);
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(10, set.Every(10).Labels.Count(l => l == c)));
    }

    [Fact]
    public void Full_model_accuracy_on_the_bundled_images_is_near_the_published_figure()
    {
        // ViT-NumPy reports 77.52 % on the 10,000 test images (with dropout left on); chance is 10 %.
        var m = VitTestData.Model;
        var set = VitTestData.Set.Every(4);
        int correct = Enumerable.Range(0, set.Count).Count(i => m.Classify(set.Pixels(i)) == set.Labels[i]);
        Assert.InRange(correct / (double)set.Count, 0.65, 0.85);
    }

    [Fact]
    public void Corrupt_sets_throw_ModelFormatException_naming_the_file()
    {
        var dir = Directory.CreateTempSubdirectory("cifar");
        try
        {
            File.WriteAllBytes(Path.Combine(dir.FullName, Cifar10Set.LabelsFile), [0, 1, 2]);
            File.WriteAllBytes(Path.Combine(dir.FullName, Cifar10Set.ImagesFile), new byte[3 * 3072 - 5]);
            var e = Assert.Throws<ModelFormatException>(() => Cifar10Set.Load(dir.FullName));
            Assert.Contains(Cifar10Set.ImagesFile, e.Message);

            File.WriteAllBytes(Path.Combine(dir.FullName, Cifar10Set.ImagesFile), new byte[3 * 3072]);
            File.WriteAllBytes(Path.Combine(dir.FullName, Cifar10Set.LabelsFile), [0, 11, 2]);
            Assert.Equal("labels", Assert.Throws<ModelFormatException>(() => Cifar10Set.Load(dir.FullName)).Field);

            File.WriteAllBytes(Path.Combine(dir.FullName, Cifar10Set.LabelsFile), [0, 1, 2]);
            Assert.Equal(3, Cifar10Set.Load(dir.FullName).Count);
            Assert.Throws<DirectoryNotFoundException>(() => Cifar10Set.Load(Path.Combine(dir.FullName, "nope")));
        }
        finally { dir.Delete(true); }
    }
}
