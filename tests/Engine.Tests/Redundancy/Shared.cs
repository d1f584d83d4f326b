using Workbench.Engine.Models;
using Workbench.Engine.Text;

namespace Workbench.Engine.Tests.Redundancy;

/// <summary>The real models with their default calibration and evaluation text, loaded once for all tests.</summary>
internal static class Shared
{
    public static Decoder Stories => (Decoder)ModelHub.Load("stories260K");
    public static Decoder Baby => (Decoder)ModelHub.Load("babyllama");
    public static Encoder MiniLm => (Encoder)ModelHub.Load("minilm");

    private static readonly Lazy<CorpusSplit> TinyStoriesSplit = new(() => Corpus.Load(Bundled.TinyStories).Split(seed: 1));
    private static readonly Lazy<CorpusSplit> PrideSplit = new(() => Corpus.Load(Bundled.PrideAndPrejudice).Split(seed: 1));

    public static CorpusSplit SplitFor(LoadedModel m) => m is Decoder ? TinyStoriesSplit.Value : PrideSplit.Value;

    public static IReadOnlyList<int[]> Calibration(LoadedModel m, int samples = 4, int seq = 64) => m switch
    {
        Decoder d => SplitFor(m).Calibration(t => d.Tokenizer.Encode(t), samples, seq, pack: true).Sequences,
        Encoder e => SplitFor(m).Calibration(e.Tokenizer.Encode, samples * 4, seq, pack: false).Sequences,
        _ => throw new ArgumentException(nameof(m)),
    };
}
