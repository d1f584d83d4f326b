using Workbench.Engine.Requests;

namespace Workbench.Engine.Vision;

/// <summary>
/// Images an analysis feeds an image model (calibration, evaluation): PNG / JPEG files, folders of them, or a CIFAR-10
/// folder in the bundled layout (whose images carry labels). Pixels are read when asked, already brought to the side the
/// model takes (<see cref="Pixels"/>: centre crop, resampled as <see cref="VitImage.DecodeSquare"/> does), so a set of a
/// thousand images costs nothing until used.
/// </summary>
public sealed class ImageSet
{
    private readonly Func<int, byte[]>[] _load;

    /// <summary>What the images are, as the reports name it (a folder, files, or the bundled CIFAR-10 test subset).</summary>
    public string Source { get; }
    public IReadOnlyList<string> Names { get; }
    /// <summary>The class name of each image (CIFAR-10's), or null when the images carry no labels.</summary>
    public IReadOnlyList<string>? Labels { get; }
    public int Count => _load.Length;

    private ImageSet(string source, string[] names, Func<int, byte[]>[] load, string[]? labels)
    {
        Source = source;
        Names = names;
        _load = load;
        Labels = labels;
    }

    /// <summary>Image <paramref name="index"/> as <paramref name="side"/> x <paramref name="side"/> uint8 HWC RGB.</summary>
    public byte[] Pixels(int index, int side)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return _load[index](side);
    }

    /// <summary>The images at <paramref name="indices"/>, in that order (labels kept).</summary>
    public ImageSet Subset(IReadOnlyList<int> indices, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(indices);
        foreach (var i in indices) ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)Count, nameof(indices));
        return new ImageSet(source ?? Source, indices.Select(i => Names[i]).ToArray(), indices.Select(i => _load[i]).ToArray(),
            Labels is null ? null : indices.Select(i => Labels[i]).ToArray());
    }

    /// <summary>The bundled 1,000 CIFAR-10 test images (first 100 per class, labelled).</summary>
    public static ImageSet Cifar10() => FromCifar(Cifar10Set.LoadBundled(), "the bundled CIFAR-10 test subset (data/cifar10-test-1000)");

    private static ImageSet FromCifar(Cifar10Set set, string source) => new(source, set.Names.ToArray(),
        Enumerable.Range(0, set.Count).Select(i => (Func<int, byte[]>)(side => VitImage.ResizeSquare(set.Pixels(i), VitImage.Size, VitImage.Size, side))).ToArray(),
        set.Labels.Select(l => Cifar10Set.ClassNames[l]).ToArray());

    /// <summary>
    /// The images <paramref name="spec"/> names: comma-separated PNG / JPEG files and folders (a folder holding CIFAR-10's
    /// images_u8_N32x32x3.bin is read as a CIFAR-10 set with its labels; any other folder gives its *.png, *.jpg and
    /// *.jpeg files in name order). A missing path or an empty folder is an <see cref="OptionException"/> naming
    /// <paramref name="option"/>; a file that does not decode is a Formats.ModelFormatException naming the file.
    /// </summary>
    public static ImageSet Load(string spec, string option = "--images")
    {
        if (string.IsNullOrWhiteSpace(spec)) throw new OptionException(option, $"{option} is empty: give PNG / JPEG files or folders, comma-separated");
        var names = new List<string>();
        var loads = new List<Func<int, byte[]>>();
        var labels = new List<string>();
        bool labelled = true;
        foreach (var part in spec.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (Directory.Exists(part) && File.Exists(Path.Combine(part, Cifar10Set.ImagesFile)))
            {
                var set = FromCifar(Cifar10Set.Load(part), part);
                for (int i = 0; i < set.Count; i++)
                {
                    int k = i;
                    names.Add(set.Names[i]);
                    loads.Add(side => set.Pixels(k, side));
                    labels.Add(set.Labels![i]);
                }
                continue;
            }
            string[] files;
            if (Directory.Exists(part))
            {
                files = Directory.EnumerateFiles(part)
                    .Where(f => Path.GetExtension(f).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg")
                    .Order(StringComparer.Ordinal).ToArray();
                if (files.Length == 0) throw new OptionException(option, $"{option} {part}: the folder holds no .png, .jpg or .jpeg file");
            }
            else if (File.Exists(part)) files = [part];
            else throw new OptionException(option, $"{option} {part}: no such file or folder (PNG / JPEG files or folders, comma-separated)");
            foreach (var f in files)
            {
                names.Add(Path.GetFileName(f));
                loads.Add(side => VitImage.LoadSquare(f, side));
                labelled = false;
            }
        }
        if (names.Count == 0) throw new OptionException(option, $"{option} '{spec}' names no image");
        return new ImageSet(spec, names.ToArray(), loads.ToArray(), labelled ? labels.ToArray() : null);
    }

    /// <summary>
    /// A seeded split, as the text corpora are split: the images in an order drawn by System.Random(seed), the first
    /// ceil(n / 2) for calibration and the rest held out for evaluation (empty for a single image).
    /// </summary>
    public (ImageSet Calibration, ImageSet Evaluation) Split(int seed)
    {
        var order = Enumerable.Range(0, Count).ToArray();
        new Random(seed).Shuffle(order);
        int half = (Count + 1) / 2;
        return (Subset(order[..half], $"{Source}, calibration half (seed {seed})"), Subset(order[half..], $"{Source}, held-out half (seed {seed})"));
    }

    public override string ToString() => $"{Source}: {Count} images{(Labels is null ? "" : ", labelled")}";
}
