using Workbench.Engine.Models;
using SkiaSharp;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Vision;

/// <summary>
/// A 32x32 RGB image as the ViT takes it: uint8, HWC (row-major, channels last, R G B).
/// </summary>
public sealed record VitImage
{
    public const int Size = VitModel.ImageSize;

    /// <summary>
    /// Largest image decoded: 50 megapixels (200 MB of RGBA). The dimensions come from the header (SKCodec reads them
    /// without decoding), so a small file claiming a huge image is refused before any pixel buffer exists.
    /// </summary>
    public const long MaxPixels = 50_000_000;
    public byte[] Hwc { get; }

    public VitImage(byte[] hwc)
    {
        ArgumentNullException.ThrowIfNull(hwc);
        if (hwc.Length != VitModel.PixelsPerImage)
            throw new ArgumentException($"expected {Size}x{Size}x3 uint8 HWC ({VitModel.PixelsPerImage} bytes), got {hwc.Length}", nameof(hwc));
        Hwc = hwc;
    }

    public byte this[int y, int x, int c] => Hwc[(y * Size + x) * 3 + c];

    /// <summary>Decodes a PNG or JPEG file (SkiaSharp) and brings it to 32x32, see <see cref="FromEncoded"/>.</summary>
    public static VitImage FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"image not found: {path}", path);
        return FromEncoded(File.ReadAllBytes(path), path);
    }

    /// <summary>
    /// Decodes PNG/JPEG bytes, centre-crops to a square (the short side; CIFAR images are square so nothing is lost
    /// there, and photos are not stretched), then resamples to 32x32 with trilinear mipmapped filtering
    /// (SKFilterMode.Linear + SKMipmapMode.Linear: a box-filtered mip pyramid, so large downscales average
    /// instead of aliasing). The image is drawn over black, so transparent pixels come out black.
    /// </summary>
    public static VitImage FromEncoded(byte[] encoded, string name = "image") => new(DecodeSquare(encoded, Size, name));

    /// <summary>Decodes a PNG or JPEG file into a <paramref name="size"/> x <paramref name="size"/> uint8 HWC RGB image, as <see cref="DecodeSquare"/>.</summary>
    public static byte[] LoadSquare(string path, int size)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"image not found: {path}", path);
        return DecodeSquare(File.ReadAllBytes(path), size, path);
    }

    /// <summary>
    /// PNG/JPEG bytes as a <paramref name="size"/> x <paramref name="size"/> uint8 HWC RGB image: centre crop to a square,
    /// then the resampling of <see cref="FromEncoded"/> (which is this at 32 x 32).
    /// </summary>
    public static byte[] DecodeSquare(byte[] encoded, int size, string name = "image")
    {
        ArgumentNullException.ThrowIfNull(encoded);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, 4096);
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data);
        if (codec is null)
            throw new ModelFormatException(name, "image", 0, "not a decodable image (expected PNG or JPEG)");
        if (codec.EncodedFormat is not (SKEncodedImageFormat.Png or SKEncodedImageFormat.Jpeg))
            throw new ModelFormatException(name, "image", 0, $"unsupported image format {codec.EncodedFormat} (expected PNG or JPEG)");
        int w = codec.Info.Width, h = codec.Info.Height;
        if (w <= 0 || h <= 0)
            throw new ModelFormatException(name, w <= 0 ? "width" : "height", 0, $"image header gives {w}x{h} pixels");
        if ((long)w * h > MaxPixels)
            throw new ModelFormatException(name, "width x height", 0, $"image header claims {w}x{h} = {(long)w * h:N0} pixels, over the limit of {MaxPixels:N0}");
        // Compressed data cannot describe more than ~1032 pixels per byte (deflate's limit; JPEG needs more bytes still),
        // so a header claiming far more pixels than the bytes could carry is a forged header, refused before decoding.
        if ((long)w * h > 1032L * 4 * encoded.Length + 1_000_000)
            throw new ModelFormatException(name, "width x height", 0, $"image header claims {w}x{h} pixels, more than {encoded.Length} bytes can encode");
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var full = new SKBitmap(info);
        var result = codec.GetPixels(info, full.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput) || (result == SKCodecResult.IncompleteInput && codec.Info.Width * codec.Info.Height == 0))
            throw new ModelFormatException(name, "image", 0, $"decoding failed: {result}");
        if (result == SKCodecResult.IncompleteInput)
            throw new ModelFormatException(name, "image", encoded.Length, "image data is truncated");

        using var image = SKImage.FromBitmap(full);
        return CropAndResample(image, size);
    }

    /// <summary>
    /// Raw uint8 HWC RGB pixels (<paramref name="width"/> x <paramref name="height"/>, a CIFAR-10 image for instance) as a
    /// <paramref name="size"/> x <paramref name="size"/> image, by the centre crop and resampling of <see cref="DecodeSquare"/>;
    /// a square image of that size already is returned as a copy.
    /// </summary>
    public static byte[] ResizeSquare(ReadOnlySpan<byte> hwc, int width, int height, int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, 4096);
        if (hwc.Length != width * height * 3) throw new ArgumentException($"{hwc.Length} bytes for {width}x{height}x3", nameof(hwc));
        if (width == size && height == size) return hwc.ToArray();
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var rgba = new byte[width * height * 4];
        for (int i = 0, j = 0; j < hwc.Length; i += 4, j += 3)
        {
            rgba[i] = hwc[j]; rgba[i + 1] = hwc[j + 1]; rgba[i + 2] = hwc[j + 2]; rgba[i + 3] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var image = SKImage.FromBitmap(bitmap);
        return CropAndResample(image, size);
    }

    // Centre crop to the short side, then trilinear mipmapped resampling to size x size over black; RGB out.
    private static byte[] CropAndResample(SKImage image, int size)
    {
        var info = image.Info;
        int side = Math.Min(info.Width, info.Height);
        var src = SKRectI.Create((info.Width - side) / 2, (info.Height - side) / 2, side, side);
        var dstInfo = new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var surface = SKSurface.Create(dstInfo) ?? throw new InvalidOperationException($"could not create a {size}x{size} raster surface");
        surface.Canvas.Clear(SKColors.Black);
        surface.Canvas.DrawImage(image, src, SKRect.Create(size, size), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        var rgba = new byte[size * size * 4];
        unsafe
        {
            fixed (byte* p = rgba)
                if (!surface.ReadPixels(dstInfo, (IntPtr)p, size * 4, 0, 0))
                    throw new InvalidOperationException("could not read back the resized pixels");
        }
        return RgbaToRgb(rgba);
    }

    /// <summary>Wraps raw pixels; they must already be 32x32x3 HWC.</summary>
    public static VitImage FromHwc(ReadOnlySpan<byte> hwc, int height, int width, int channels = 3)
    {
        if (height != Size) throw new ArgumentOutOfRangeException(nameof(height), height, $"the ViT takes {Size}x{Size} images; resize first (VitImage.FromFile)");
        if (width != Size) throw new ArgumentOutOfRangeException(nameof(width), width, $"the ViT takes {Size}x{Size} images; resize first (VitImage.FromFile)");
        if (channels != 3) throw new ArgumentOutOfRangeException(nameof(channels), channels, "the ViT takes RGB (3 channels)");
        if (hwc.Length != height * width * channels) throw new ArgumentException($"{hwc.Length} bytes for {height}x{width}x{channels}", nameof(hwc));
        return new VitImage(hwc.ToArray());
    }

    private static byte[] RgbaToRgb(ReadOnlySpan<byte> rgba)
    {
        var rgb = new byte[rgba.Length / 4 * 3];
        for (int i = 0, j = 0; i < rgba.Length; i += 4, j += 3)
        {
            rgb[j] = rgba[i]; rgb[j + 1] = rgba[i + 1]; rgb[j + 2] = rgba[i + 2];
        }
        return rgb;
    }
}
