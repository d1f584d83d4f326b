using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Workbench.Engine;
using Workbench.Engine.Costs;
using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;
using Workbench.Engine.Text;

namespace Workbench.Bench.Redundancy;

/// <summary>
/// The importance pass (one forward per calibration sequence, hooks on every block) and the decode speed of a model
/// with its k least important attention layers dropped. The PredictedSpeedup column is what the FLOPs model
/// (Costs.DropCosts) predicts for decode against k = 0; compare it with the measured ratio of the Decode rows.
/// Run: dotnet run -c Release --project bench/Workbench.Bench -- --filter '*LayerDropBench*' --job short
/// </summary>
[MemoryDiagnoser]
[Config(typeof(PredictionConfig))]
public class LayerDropBench
{
    [Params("stories260K", "babyllama")]
    public string Model { get; set; } = "stories260K";

    [Params(0, 1, 2, 4)]
    public int AttentionDropped { get; set; }

    public const int Prompt = 16, Decode = 48;

    private Decoder _model = null!;
    private IReadOnlyList<int[]> _calibration = null!;
    private ModuleSkips _skips = ModuleSkips.None;
    private int[] _prompt = [];

    [GlobalSetup]
    public void Setup()
    {
        _model = (Decoder)ModelHub.Load(Model);
        var split = Corpus.Load(Bundled.TinyStories).Split(0);
        _calibration = split.Calibration(t => _model.Tokenizer.Encode(t), 4, 128, pack: true).Sequences;
        _prompt = split.Evaluation(t => _model.Tokenizer.Encode(t), 1, Prompt, pack: true).Sequences[0];
        _skips = Skips(_model, _calibration, AttentionDropped);
    }

    internal static ModuleSkips Skips(Decoder model, IReadOnlyList<int[]> calibration, int k) =>
        Modules.ToSkips(Importance.Measure(model.Model, calibration).Ranked(Granularity.Attention).Take(k).Select(x => x.Module));

    /// <summary>Scores every block, attention and MLP layer: 4 sequences of 128 tokens.</summary>
    [Benchmark]
    public ImportanceScores ImportancePass() => Importance.Measure(_model.Model, _calibration, _skips);

    /// <summary>Prefill 16 tokens, then 48 greedy decode steps with a KV cache; dropped attention layers skipped.</summary>
    [Benchmark]
    public long DecodeRun() => DropEvaluator.DecodeRun(_model.Model, _prompt, Decode, _skips).KvBytes;

    private sealed class PredictionConfig : ManualConfig
    {
        public PredictionConfig() => AddColumn(new PredictedSpeedupColumn());
    }

    /// <summary>Decode FLOPs per token of the full model over those of the pruned one (DropCosts).</summary>
    private sealed class PredictedSpeedupColumn : IColumn
    {
        public string Id => nameof(PredictedSpeedupColumn);
        public string ColumnName => "PredictedSpeedup";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "decode FLOPs/token of the full model over the pruned model's, from DropCosts";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
        {
            var name = (string)benchmarkCase.Parameters["Model"];
            int k = (int)benchmarkCase.Parameters["AttentionDropped"];
            var cfg = ModelHub.Load(name).Config;
            // Which layers are dropped does not change the FLOPs (all attention layers are the same size): only k does.
            var skips = Modules.ToSkips(Enumerable.Range(0, k).Select(l => new ModuleRef(l, ModuleKind.Attention)));
            double full = DropCosts.Predict(cfg, ModuleSkips.None, Prompt, Decode).DecodeFlopsPerToken;
            double pruned = DropCosts.Predict(cfg, skips, Prompt, Decode).DecodeFlopsPerToken;
            return (full / pruned).ToString("F3");
        }
    }
}
