using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Workbench.Engine.Text;

namespace Workbench.Engine.Tests.Redundancy;

public class CorpusTests
{
    [Fact]
    public void Split_is_disjoint_complete_and_deterministic()
    {
        var c = Corpus.Load(Bundled.TinyStories);
        Assert.True(c.Documents.Count > 4000);
        var a = c.Split(7);
        var b = c.Split(7);
        var other = c.Split(8);
        Assert.Empty(a.CalibrationDocuments.Intersect(a.EvaluationDocuments));
        Assert.Equal(Enumerable.Range(0, c.Documents.Count), a.CalibrationDocuments.Concat(a.EvaluationDocuments).Order());
        Assert.Equal(a.CalibrationDocuments, b.CalibrationDocuments);
        Assert.Equal(a.EvaluationDocuments, b.EvaluationDocuments);
        Assert.NotEqual(a.CalibrationDocuments, other.CalibrationDocuments);
        // one contiguous run (possibly wrapping): at most two ranges
        Assert.True(CorpusSplit.Ranges(a.CalibrationDocuments).Split(',').Length <= 2, a.ToString());
    }

    [Fact]
    public void Calibration_and_evaluation_samples_never_share_text()
    {
        var d = (Decoder)ModelHub.Load("babyllama");
        var split = Corpus.Load(Bundled.TinyStories).Split(3);
        var cal = split.Calibration(t => d.Tokenizer.Encode(t), 8, 128, pack: true);
        var ev = split.Evaluation(t => d.Tokenizer.Encode(t), 4, 128, pack: true);
        Assert.All(cal.Sequences, s => Assert.Equal(128, s.Length));
        Assert.Equal(8 * 128, cal.Tokens);
        Assert.Empty(cal.Documents.Intersect(ev.Documents));
        Assert.Subset(split.CalibrationDocuments.ToHashSet(), cal.Documents.ToHashSet());
        Assert.Equal(d.Tokenizer.BosId, cal.Sequences[0][0]); // each window starts at a document
    }

    [Fact]
    public void Encoder_samples_are_one_paragraph_each_truncated_to_the_length()
    {
        var e = (Encoder)ModelHub.Load("minilm");
        var split = Corpus.Load(Bundled.PrideAndPrejudice).Split(1);
        var cal = split.Calibration(e.Tokenizer.Encode, 16, 32, pack: false);
        Assert.Equal(16, cal.Sequences.Count);
        Assert.All(cal.Sequences, s => Assert.InRange(s.Length, 3, 32));
        Assert.DoesNotContain(split.Corpus.Documents, doc => doc.StartsWith("Chapter ")); // headings are not documents
    }

    [Fact]
    public void Short_or_empty_corpus_is_rejected_naming_the_parameter()
    {
        Assert.Equal("text", Assert.Throws<ArgumentException>(() => Corpus.FromText("")).ParamName);
        Assert.Equal("text", Assert.Throws<ArgumentException>(() => Corpus.FromText("only one document here")).ParamName);
        Assert.Equal("path", Assert.Throws<ArgumentException>(() => Corpus.Load("/nonexistent/corpus.txt")).ParamName);
        var small = Corpus.FromText("one two three four\n\nfive six seven eight\n\nnine ten eleven twelve");
        Assert.Equal("samples", Assert.Throws<ArgumentException>(() => small.Split(0).Calibration(t => t.Split(' ').Select(w => w.Length).ToArray(), 4, 64, pack: true)).ParamName);
        Assert.Equal("calibrationFraction", Assert.Throws<ArgumentOutOfRangeException>(() => small.Split(0, 1.0)).ParamName);
        Assert.Equal("seqLen", Assert.Throws<ArgumentOutOfRangeException>(() => small.Split(0).Evaluation(t => [1, 2], 1, 1, pack: false)).ParamName);
    }

    [Fact]
    public void Persuasion_is_named_and_read_one_paragraph_per_line()
    {
        // data/text/austen/README.md: one paragraph per line, no blank lines. Read by its name, each line is a document.
        var lines = File.ReadAllLines(Bundled.Persuasion).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        var c = Corpus.Load("persuasion");
        Assert.Equal(Bundled.Persuasion, c.Source);
        Assert.Equal(lines.Where(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length >= 3), c.Documents);
        Assert.StartsWith("Sir Walter Elliot, of Kellynch Hall", c.Documents[0]); // "Persuasion", "by", "Jane Austen", "(1818)", "Chapter 1" are too short
        Assert.True(c.Documents.Count > 900);
        Assert.Equal(lines, Corpus.Paragraphs("PERSUASION"));
        var split = c.Split(0);
        Assert.Empty(split.CalibrationDocuments.Intersect(split.EvaluationDocuments));

        Assert.True(Corpus.Exists("persuasion"));
        Assert.True(Corpus.Exists(Bundled.TinyStories));
        Assert.False(Corpus.Exists("/nonexistent/corpus.txt"));
        Assert.False(Corpus.Exists(" "));
        Assert.False(Corpus.Exists(null));

        // By its path the file is read by the blank-line rule, where the whole novel is one block: refused, with the way out.
        var e = Assert.Throws<ModelFormatException>(() => Corpus.Load(Bundled.Persuasion));
        Assert.Contains("at least 2", e.Message);
        Assert.Contains("name it 'persuasion'", e.Message);
    }

    [Fact]
    public void Paragraphs_of_a_file_are_its_blank_line_separated_blocks()
    {
        // What the decoder prompts were always cut from (TinyStories): blocks between blank lines, trimmed, however short.
        var want = File.ReadAllText(Bundled.TinyStories).Replace("\r", "").Split("\n\n", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(want, Corpus.Paragraphs(Bundled.TinyStories));
        var dir = Directory.CreateTempSubdirectory("corpus-");
        try
        {
            var p = Path.Combine(dir.FullName, "crlf.txt");
            File.WriteAllText(p, "first block\r\nstill first\r\n\r\nHi.\r\n\r\n\r\nthird\r\n");
            Assert.Equal(["first block\nstill first", "Hi.", "third"], Corpus.Paragraphs(p));
        }
        finally { dir.Delete(true); }
    }
}
