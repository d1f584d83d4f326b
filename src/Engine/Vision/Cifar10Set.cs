using Workbench.Engine.Models;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Vision;

/// <summary>
/// A labelled CIFAR-10 image set in the bundled layout: images_u8_N32x32x3.bin (N x 32 x 32 x 3 uint8, HWC),
/// labels_u8.bin (N bytes, 0..9 in the order airplane..truck) and names.txt (N lines, the source file of each image).
/// </summary>
public sealed class Cifar10Set
{
    public const string ImagesFile = "images_u8_N32x32x3.bin", LabelsFile = "labels_u8.bin", NamesFile = "names.txt";
    private readonly byte[] _pixels;
    public int Count { get; }
    public IReadOnlyList<byte> Labels { get; }
    public IReadOnlyList<string> Names { get; }
    public string Directory { get; }
    public static IReadOnlyList<string> ClassNames => VitModel.ClassNames;

    private Cifar10Set(string dir, byte[] pixels, byte[] labels, string[] names)
    {
        Directory = dir;
        _pixels = pixels;
        Count = labels.Length;
        Labels = labels;
        Names = names;
    }

    /// <summary>The 1,000 bundled test images (first 100 per class).</summary>
    public static Cifar10Set LoadBundled() => Load(VitBundled.Cifar10Dir);

    public static Cifar10Set Load(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        if (!System.IO.Directory.Exists(directory)) throw new DirectoryNotFoundException($"CIFAR-10 folder not found: {directory}");
        string imgPath = Path.Combine(directory, ImagesFile), labPath = Path.Combine(directory, LabelsFile), namePath = Path.Combine(directory, NamesFile);
        foreach (var p in new[] { imgPath, labPath })
            if (!File.Exists(p)) throw new FileNotFoundException($"missing {Path.GetFileName(p)} in {directory}", p);

        var labels = File.ReadAllBytes(labPath);
        if (labels.Length == 0) throw new ModelFormatException(labPath, "labels", 0, "no labels");
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] >= VitModel.Classes) throw new ModelFormatException(labPath, "labels", i, $"label {labels[i]} is not a CIFAR-10 class (0..9)");

        long expected = (long)labels.Length * VitModel.PixelsPerImage;
        long actual = new FileInfo(imgPath).Length;
        if (actual != expected)
            throw new ModelFormatException(imgPath, "images", Math.Min(actual, expected),
                $"{labels.Length} labels need {expected} bytes of 32x32x3 images, the file has {actual}");
        var pixels = File.ReadAllBytes(imgPath);

        string[] names = File.Exists(namePath) ? File.ReadAllLines(namePath).Where(l => l.Length > 0).ToArray()
            : Enumerable.Range(0, labels.Length).Select(i => $"#{i}").ToArray();
        if (names.Length != labels.Length)
            throw new ModelFormatException(namePath, "names", 0, $"{names.Length} names for {labels.Length} labels");
        return new Cifar10Set(directory, pixels, labels, names);
    }

    /// <summary>Image i as 3,072 HWC bytes (a view, no copy).</summary>
    public ReadOnlySpan<byte> Pixels(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return _pixels.AsSpan(index * VitModel.PixelsPerImage, VitModel.PixelsPerImage);
    }

    public VitImage Image(int index) => new(Pixels(index).ToArray());

    /// <summary>The first <paramref name="count"/> images (the bundled set is ordered by class, so prefer <see cref="Every"/> for a balanced subset).</summary>
    public Cifar10Set Take(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        count = Math.Min(count, Count);
        return new Cifar10Set(Directory, _pixels[..(count * VitModel.PixelsPerImage)], ((byte[])Labels)[..count], ((string[])Names)[..count]);
    }

    /// <summary>Every <paramref name="step"/>-th image: a class-balanced subset of the bundled set.</summary>
    public Cifar10Set Every(int step)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(step);
        var idx = Enumerable.Range(0, Count).Where(i => i % step == 0).ToArray();
        var px = new byte[idx.Length * VitModel.PixelsPerImage];
        for (int j = 0; j < idx.Length; j++) Pixels(idx[j]).CopyTo(px.AsSpan(j * VitModel.PixelsPerImage));
        return new Cifar10Set(Directory, px, idx.Select(i => Labels[i]).ToArray(), idx.Select(i => Names[i]).ToArray());
    }
}
