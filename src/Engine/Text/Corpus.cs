using System.Text;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Text;

/// <summary>
/// A text file cut into documents: blocks separated by blank lines (a TinyStories paragraph, a Pride and Prejudice
/// paragraph or line of dialogue). Hard line wraps inside a block become spaces. Blocks shorter than
/// <c>minWords</c> words (titles, "Chapter 12") are left out, so every document is real running text.
/// Bundled corpora can also be named instead of given by path (<see cref="BundledNames"/>): <c>persuasion</c>, the novel
/// the austen-16L models never saw in training, stored one paragraph per line (data/text/austen/README.md), so there
/// every line is a document.
/// </summary>
public sealed class Corpus
{
    public string Source { get; }
    public IReadOnlyList<string> Documents { get; }

    private Corpus(string source, IReadOnlyList<string> documents)
    {
        Source = source;
        Documents = documents;
    }

    // Corpora that may be named instead of given by path, all stored one paragraph per line.
    private static readonly Dictionary<string, Func<string>> Named = new(StringComparer.OrdinalIgnoreCase)
    {
        ["persuasion"] = () => Bundled.Persuasion,
        ["emma"] = () => Bundled.Emma,
    };

    /// <summary>Corpora that may be named instead of given by path: <c>persuasion</c> (held out from austen-16L) and <c>emma</c> (in its training data), one paragraph per line.</summary>
    public static IReadOnlyList<string> BundledNames { get; } = [.. Named.Keys];

    /// <summary>True for a bundled corpus name or an existing file.</summary>
    public static bool Exists(string? pathOrName) =>
        !string.IsNullOrWhiteSpace(pathOrName) && (Bundle(pathOrName) is not null || File.Exists(pathOrName));

    // A bundled name's file, or null for a path (an existing file of that name wins over the name).
    private static string? Bundle(string pathOrName) =>
        !File.Exists(pathOrName) && Named.TryGetValue(pathOrName.Trim(), out var file) ? file() : null;

    /// <summary>
    /// The raw paragraphs of a text file (blocks between blank lines, trimmed, however short) or of a bundled corpus
    /// (its lines): what prompts are cut from.
    /// </summary>
    public static IReadOnlyList<string> Paragraphs(string pathOrName)
    {
        ArgumentException.ThrowIfNullOrEmpty(pathOrName);
        var bundled = Bundle(pathOrName);
        var text = File.ReadAllText(bundled ?? pathOrName).Replace("\r\n", "\n").Replace('\r', '\n');
        return text.Split(bundled is null ? "\n\n" : "\n", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    public static Corpus Load(string path, int minWords = 3)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var bundled = Bundle(path);
        if (bundled is null && !File.Exists(path)) throw new ArgumentException($"corpus file '{path}' does not exist", nameof(path));
        ArgumentOutOfRangeException.ThrowIfNegative(minWords);
        // A text file of n bytes becomes at most ~2n chars of documents: nothing is sized from its content.
        var docs = ParseDocuments(File.ReadAllText(bundled ?? path), minWords, linePerDocument: bundled is not null);
        if (bundled is not null) path = bundled;
        if (docs.Count < 2)
            throw new ModelFormatException(path, "documents", 0, TooFew(docs.Count, minWords)
                + (bundled is null && Path.GetFileName(path).Equals("persuasion.txt", StringComparison.OrdinalIgnoreCase)
                    ? "; the bundled Persuasion holds one paragraph per line: name it 'persuasion' instead of giving its path" : ""));
        return new Corpus(path, docs);
    }

    public static Corpus FromText(string text, string source = "text", int minWords = 3)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfNegative(minWords);
        var docs = ParseDocuments(text, minWords);
        if (docs.Count < 2) throw new ArgumentException($"corpus '{source}': {TooFew(docs.Count, minWords)}", nameof(text));
        return new Corpus(source, docs);
    }

    private static string TooFew(int count, int minWords) =>
        $"holds {count} document(s) of at least {minWords} words (documents are separated by blank lines); at least 2 are needed to keep calibration and evaluation text apart";

    private static List<string> ParseDocuments(string text, int minWords, bool linePerDocument = false)
    {
        var docs = new List<string>();
        var block = new StringBuilder();
        void Flush()
        {
            var doc = block.ToString().Trim();
            block.Clear();
            if (doc.Length > 0 && doc.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length >= minWords) docs.Add(doc);
        }
        // Line ends may be LF, CRLF or (old Mac files) CR alone.
        foreach (var raw in text.Replace("\r\n", "\n").Replace('\r', '\n').Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0) { Flush(); continue; }
            if (block.Length > 0) block.Append(' ');
            block.Append(line);
            if (linePerDocument) Flush();
        }
        Flush();
        return docs;
    }

    /// <summary>
    /// Splits the documents into a calibration part and an evaluation part that never share a document.
    /// The calibration part is one contiguous run of documents (wrapping around the end) whose start the seed picks;
    /// evaluation is everything else. Contiguous runs keep neighbouring paragraphs of one story on the same side
    /// except at the two cut points.
    /// </summary>
    public CorpusSplit Split(int seed, double calibrationFraction = 0.5)
    {
        if (!(calibrationFraction > 0 && calibrationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(calibrationFraction), calibrationFraction, "must be strictly between 0 and 1");
        int n = Documents.Count;
        int m = Math.Clamp((int)Math.Round(calibrationFraction * n), 1, n - 1);
        int start = new Random(seed).Next(n);
        var cal = Enumerable.Range(0, m).Select(i => (start + i) % n).ToArray();
        var inCal = new bool[n];
        foreach (var i in cal) inCal[i] = true;
        var eval = Enumerable.Range(0, n).Where(i => !inCal[i]).ToArray();
        // Documents inside each part are visited in a seeded order, so different seeds sample different text.
        var rng = new Random(seed ^ 0x5bd1e995);
        rng.Shuffle(cal);
        rng.Shuffle(eval);
        return new CorpusSplit(this, seed, cal, eval);
    }
}

/// <summary>Which documents calibrate and which evaluate (indices into <see cref="Corpus.Documents"/>, in visiting order).</summary>
public sealed record CorpusSplit(Corpus Corpus, int Seed, int[] CalibrationDocuments, int[] EvaluationDocuments)
{
    /// <summary>Token sequences for calibration (importance scores).</summary>
    public TokenSamples Calibration(Func<string, int[]> tokenize, int samples, int seqLen, bool pack) =>
        Sample("calibration", CalibrationDocuments, tokenize, samples, seqLen, pack);

    /// <summary>Token sequences for evaluation (quality of the pruned model), from documents calibration never saw.</summary>
    public TokenSamples Evaluation(Func<string, int[]> tokenize, int samples, int seqLen, bool pack) =>
        Sample("evaluation", EvaluationDocuments, tokenize, samples, seqLen, pack);

    /// <summary>
    /// pack = true (decoders): documents, each tokenized with its BOS, are concatenated and cut into windows of
    /// exactly <paramref name="seqLen"/> tokens (a window may span documents, as in LM calibration sets).
    /// pack = false (encoders): one document per sample, truncated to <paramref name="seqLen"/> tokens by the tokenizer's rules.
    /// </summary>
    private TokenSamples Sample(string part, int[] docs, Func<string, int[]> tokenize, int samples, int seqLen, bool pack)
    {
        ArgumentNullException.ThrowIfNull(tokenize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(samples);
        if (seqLen < 2) throw new ArgumentOutOfRangeException(nameof(seqLen), seqLen, "must be at least 2 tokens");
        var seqs = new List<int[]>();
        var used = new List<int>();
        if (pack)
        {
            var buf = new List<int>();
            foreach (var d in docs)
            {
                if (seqs.Count == samples) break;
                used.Add(d);
                buf.AddRange(tokenize(Corpus.Documents[d]));
                while (buf.Count >= seqLen && seqs.Count < samples)
                {
                    seqs.Add(buf.GetRange(0, seqLen).ToArray());
                    buf.RemoveRange(0, seqLen);
                }
            }
            if (seqs.Count < samples)
                throw new ArgumentException($"the {part} part of '{Corpus.Source}' ({docs.Length} documents) yields only {seqs.Count} sequences of {seqLen} tokens; {samples} were asked for (use fewer samples, a shorter --seq, or a longer corpus)", nameof(samples));
        }
        else
        {
            foreach (var d in docs)
            {
                if (seqs.Count == samples) break;
                var ids = tokenize(Corpus.Documents[d]);
                if (ids.Length > seqLen) ids = ids[..seqLen];
                seqs.Add(ids);
                used.Add(d);
            }
            if (seqs.Count < samples)
                throw new ArgumentException($"the {part} part of '{Corpus.Source}' holds only {docs.Length} documents; {samples} samples were asked for", nameof(samples));
        }
        return new TokenSamples(part, seqs, used.ToArray(), seqs.Sum(s => (long)s.Length));
    }

    public override string ToString() =>
        $"{Corpus.Source}: {Corpus.Documents.Count} documents, seed {Seed}: calibration {CalibrationDocuments.Length} documents ({Ranges(CalibrationDocuments)}), evaluation {EvaluationDocuments.Length} documents ({Ranges(EvaluationDocuments)})";

    /// <summary>Document indices as compact ranges, e.g. "0-9, 20-29".</summary>
    public static string Ranges(IEnumerable<int> indices)
    {
        var sorted = indices.Order().ToArray();
        var parts = new List<string>();
        for (int i = 0; i < sorted.Length;)
        {
            int j = i;
            while (j + 1 < sorted.Length && sorted[j + 1] == sorted[j] + 1) j++;
            parts.Add(i == j ? $"{sorted[i]}" : $"{sorted[i]}-{sorted[j]}");
            i = j + 1;
        }
        return string.Join(", ", parts);
    }
}

/// <summary>Token sequences drawn from one part of a split: which documents they came from and how many tokens.</summary>
public sealed record TokenSamples(string Part, IReadOnlyList<int[]> Sequences, int[] Documents, long Tokens)
{
    public override string ToString() => $"{Part}: {Sequences.Count} sequences, {Tokens} tokens from {Documents.Length} documents ({CorpusSplit.Ranges(Documents)})";
}
