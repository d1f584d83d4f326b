using Workbench.Engine.LowBit;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Quantization;

/// <summary>
/// Everything <see cref="BitNetRequest"/> (<c>workbench bitnet</c>, <c>#!bitnet</c>) reports for one model and format, as one record: the quantized layers, the
/// lossless check of the packed kernels on real activations, the quality cost against fp32 (decoder: KL, top-1,
/// perplexity; encoder: embedding cosine; image classifier: accuracy, agreement, KL; vision-language: KL and top-1 at
/// the text positions) and the bytes. Exactly one of <see cref="Decoder"/>, <see cref="Encoder"/>, <see cref="Classifier"/>
/// and <see cref="VisionLanguage"/> is set.
/// </summary>
public sealed record TernaryReport(
    string Model, string Kind, LowBitFormat Format, IsaPath Path, int Threads,
    IReadOnlyList<TernaryLayer> Layers, LosslessReport Lossless, DecoderQuality? Decoder, EncoderQuality? Encoder,
    long Fp32LinearBytes, long PackedLinearBytes, long KeptFp32Bytes, ClassifierQuality? Classifier = null,
    VisionLanguageQuality? VisionLanguage = null)
{
    /// <summary>Share of zero weights over every quantized linear (weighted by size).</summary>
    public double ZeroFraction => Layers.Sum(l => l.ZeroFraction * l.Rows * (double)l.Cols) / Layers.Sum(l => l.Rows * (double)l.Cols);
    public long ModelBytesFp32 => Fp32LinearBytes + KeptFp32Bytes;
    public long ModelBytesPacked => PackedLinearBytes + KeptFp32Bytes;
    /// <summary>fp32 linear bytes / packed linear bytes.</summary>
    public double LinearCompression => Fp32LinearBytes / (double)PackedLinearBytes;
    public double MaxRelativeError => Lossless.Layers.Count == 0 ? 0 : Lossless.Layers.Max(l => l.MaxRelativeError);
}
