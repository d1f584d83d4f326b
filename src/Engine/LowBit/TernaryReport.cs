using Microsoft.Data.Analysis;
using Workbench.Engine.Models;
using Workbench.Engine.Tensors;
using DecoderModel = Workbench.Engine.Models.Decoder;
using EncoderModel = Workbench.Engine.Models.Encoder;

namespace Workbench.Engine.LowBit;

/// <summary>
/// Everything <c>workbench bitnet</c> reports for one model and format, as one record: the quantized layers, the
/// lossless check of the packed kernels on real activations, the quality cost against fp32 (decoder: KL, top-1,
/// perplexity; encoder: embedding cosine) and the bytes. Exactly one of <see cref="Decoder"/> and
/// <see cref="Encoder"/> is set.
/// </summary>
public sealed record TernaryReport(
    string Model, string Kind, LowBitFormat Format, IsaPath Path, int Threads,
    IReadOnlyList<TernaryLayer> Layers, LosslessReport Lossless, DecoderQuality? Decoder, EncoderQuality? Encoder,
    long Fp32LinearBytes, long PackedLinearBytes, long KeptFp32Bytes)
{
    /// <summary>Share of zero weights over every quantized linear (weighted by size).</summary>
    public double ZeroFraction => Layers.Sum(l => l.ZeroFraction * l.Rows * (double)l.Cols) / Layers.Sum(l => l.Rows * (double)l.Cols);
    public long ModelBytesFp32 => Fp32LinearBytes + KeptFp32Bytes;
    public long ModelBytesPacked => PackedLinearBytes + KeptFp32Bytes;
    /// <summary>fp32 linear bytes / packed linear bytes.</summary>
    public double LinearCompression => Fp32LinearBytes / (double)PackedLinearBytes;
    public double MaxRelativeError => Lossless.Layers.Count == 0 ? 0 : Lossless.Layers.Max(l => l.MaxRelativeError);

    /// <summary>Stages reported to the progress callback of <see cref="Run"/>.</summary>
    public const int Stages = 3;

    /// <summary>
    /// Quantizes <paramref name="model"/>'s block linears to ternary in <paramref name="format"/>, checks the kernels
    /// losslessly on the activations of the first held-out text, and measures the quality cost on the held-out texts
    /// (<see cref="TernaryQuality.HeldOutStories"/> / <see cref="TernaryQuality.HeldOutSentences"/>).
    /// <paramref name="progress"/> gets (stages done, stage name); cancellation is checked between stages.
    /// </summary>
    public static TernaryReport Run(LoadedModel model, LowBitFormat format, int threads = 1,
        Action<int, string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (format is not (LowBitFormat.I2S or LowBitFormat.TL1 or LowBitFormat.TL2))
            throw new ArgumentOutOfRangeException(nameof(format), format, "Ternary quantization needs I2S, TL1 or TL2.");
        if (threads < 1 || threads > Environment.ProcessorCount)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, $"threads must be in 1..{Environment.ProcessorCount}.");
        if (model is not (DecoderModel or EncoderModel))
            throw new ArgumentException($"'{model.Name}' is neither a decoder nor an encoder; ternary quantization covers Llama and BERT models.", nameof(model));

        progress?.Invoke(0, "quantizing");
        using var ternary = TernaryModel.Quantize(model, format, threads);
        cancellationToken.ThrowIfCancellationRequested();
        progress?.Invoke(1, "lossless check");
        LosslessReport lossless;
        DecoderQuality? dq = null;
        EncoderQuality? eq = null;
        if (model is DecoderModel d)
        {
            var texts = TernaryQuality.HeldOutStories();
            var ids = d.Tokenizer.Encode(texts[0], bos: true);
            lossless = ternary.CheckLossless(ctx => d.Logits(ids.AsSpan(0, Math.Min(ids.Length, d.Config.MaxSeq)), ctx));
            cancellationToken.ThrowIfCancellationRequested();
            progress?.Invoke(2, "quality against fp32");
            dq = TernaryQuality.Evaluate(d, ternary, texts);
        }
        else
        {
            var e = (EncoderModel)model;
            var sentences = TernaryQuality.HeldOutSentences();
            lossless = ternary.CheckLossless(ctx => e.Embed(sentences[0], ctx));
            cancellationToken.ThrowIfCancellationRequested();
            progress?.Invoke(2, "quality against fp32");
            eq = TernaryQuality.Evaluate(e, ternary, sentences);
        }
        progress?.Invoke(3, "done");
        return new TernaryReport(model.Name, model is DecoderModel ? "decoder" : "encoder", format, ternary.Path, threads,
            ternary.Layers, lossless, dq, eq, ternary.Fp32LinearBytes, ternary.PackedLinearBytes, ternary.KeptFp32Bytes);
    }

    /// <summary>One row per quantized linear: its scale, zeros and bytes beside its lossless check.</summary>
    public DataFrame ToDataFrame()
    {
        var checks = Lossless.Layers.ToDictionary(l => l.Name);
        LayerCheck? Check(TernaryLayer l) => checks.GetValueOrDefault(l.Name);
        return new DataFrame(
            new StringDataFrameColumn("layer", Layers.Select(l => l.Name)),
            new Int32DataFrameColumn("rows", Layers.Select(l => l.Rows)),
            new Int32DataFrameColumn("cols", Layers.Select(l => l.Cols)),
            new SingleDataFrameColumn("scale", Layers.Select(l => l.Scale)),
            new DoubleDataFrameColumn("zero_fraction", Layers.Select(l => l.ZeroFraction)),
            new Int64DataFrameColumn("fp32_bytes", Layers.Select(l => l.Fp32Bytes)),
            new Int64DataFrameColumn("packed_bytes", Layers.Select(l => l.PackedBytes)),
            new Int32DataFrameColumn("tokens_checked", Layers.Select(l => Check(l)?.TokensChecked ?? 0)),
            new Int64DataFrameColumn("int_mismatches", Layers.Select(l => Check(l)?.IntegerMismatches ?? 0)),
            new DoubleDataFrameColumn("max_rel_error", Layers.Select(l => Check(l)?.MaxRelativeError ?? 0)),
            new BooleanDataFrameColumn("passed", Layers.Select(l => Check(l)?.Passed ?? false)));
    }
}
