using Workbench.Engine.Formats;
using Workbench.Engine.Models;

namespace Workbench.Engine.Vision;

/// <summary>An image for a LLaVA model's vision tower, read from a file (what `workbench logits --image` feeds it).</summary>
public static class LlavaImage
{
    /// <summary>
    /// The tower's input and how it was prepared: a PNG or JPEG is centre-cropped, resized to the tower's side and
    /// normalised with the folder's preprocessor_config.json mean / std (<see cref="VitModel.PixelNormSource"/>); an .npz
    /// holding <c>pixel_values</c> [1, channels, side, side] float32 (an image processor's output, as the goldens store
    /// it) is the model input as it is.
    /// </summary>
    public static (ModelInput Image, string How) Read(LlavaModel model, string path)
    {
        int side = model.Tower.Image;
        if (!path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase))
            return (ModelInput.Of(VitImage.LoadSquare(path, side)), $"centre crop, resized to {side}x{side}, normalised with {model.Tower.PixelNormSource}");
        using var npz = NpzFile.Open(path);
        if (!npz.Contains("pixel_values")) throw new ModelFormatException(path, "pixel_values", 0, "the .npz holds no pixel_values array");
        var e = npz.Get("pixel_values");
        long[] want = [1, VitModel.Channels, side, side];
        if (!e.Shape.SequenceEqual(want))
            throw new ModelFormatException(path, "pixel_values", e.ByteOffset, $"shape [{string.Join(", ", e.Shape)}] is not the tower's input [{string.Join(", ", want)}]");
        return (new PixelInput(npz.ReadF32("pixel_values"), side, side), "pixel_values as stored (no preprocessing)");
    }
}
