using Xunit.Abstractions;

namespace Workbench.Engine.Tests.Fuzz;

/// <summary>
/// Seeded mutation fuzzing of every reader through the CLI's entry points: each case must load (and then run briefly)
/// or fail with a ModelFormatException naming file, field and offset, within the watchdog and the allocation bound.
/// A bounded budget runs with the suite; WORKBENCH_FUZZ_CASES=20000 runs a long one (environment.md).
/// Split over classes so xunit runs them side by side.
/// </summary>
public abstract class FuzzTestBase(ITestOutputHelper output)
{
    private static readonly object ReportLock = new();

    private protected void Check(FuzzTarget target)
    {
        var r = FuzzRunner.Run(target);
        output.WriteLine(r.ToString());
        lock (ReportLock)
        {
            var dir = Directory.CreateDirectory(Path.Combine(Formats.RepoFiles.Root, "out")).FullName;
            File.AppendAllText(Path.Combine(dir, "fuzz-report.txt"), $"{DateTime.UtcNow:u} {r}\n");
        }
        Assert.True(r.Cases == FuzzRunner.CasesFor(target) || r.Violations.Count > 0, $"{r.Cases} cases ran");
        Assert.True(r.Violations.Count == 0, $"{r}\n{r.ViolationSummary}");
    }
}

public sealed class DecoderFileFuzzTests(ITestOutputHelper output) : FuzzTestBase(output)
{
    [Fact] public void Llama2c_checkpoint() => Check(FuzzTargets.Llama2c);
    [Fact] public void Llama2c_reader() => Check(FuzzTargets.Llama2cReader);
    [Fact] public void Gguf() => Check(FuzzTargets.Gguf);
    [Fact] public void Safetensors() => Check(FuzzTargets.Safetensors);
    [Fact] public void Config_json() => Check(FuzzTargets.LlamaConfig);
    [Fact] public void Safetensors_index() => Check(FuzzTargets.SafetensorsIndex);
    [Fact] public void Gguf_q8_0_kept_as_stored() => Check(FuzzTargets.GgufQ8);
    [Fact] public void Gguf_other_families() => Check(FuzzTargets.GgufFamilies);
    [Fact] public void Safetensors_bf16_kept_as_stored() => Check(FuzzTargets.SafetensorsBf16);
}

public sealed class TokenizerFuzzTests(ITestOutputHelper output) : FuzzTestBase(output)
{
    [Fact] public void Llama2c_tokenizer_bin() => Check(FuzzTargets.Llama2cTokenizer);
    [Fact] public void SentencePiece_model() => Check(FuzzTargets.SentencePiece);
    [Fact] public void Tokenizer_json() => Check(FuzzTargets.TokenizerJson);
    [Fact] public void Vocab_txt() => Check(FuzzTargets.VocabTxt);
}

public sealed class DataFileFuzzTests(ITestOutputHelper output) : FuzzTestBase(output)
{
    [Fact] public void Npz() => Check(FuzzTargets.Npz);
    [Fact] public void Npz_reader() => Check(FuzzTargets.NpzReader);
    [Fact] public void Onnx() => Check(FuzzTargets.Onnx);
    [Fact] public void Images() => Check(FuzzTargets.Images);
    [Fact] public void Corpus() => Check(FuzzTargets.Corpus);
}
