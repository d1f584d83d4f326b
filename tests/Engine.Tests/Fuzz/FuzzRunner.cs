using System.Diagnostics;
using System.Text.RegularExpressions;
using Workbench.Engine.Formats;

namespace Workbench.Engine.Tests.Fuzz;

/// <summary>
/// One format under fuzzing: the real files it starts from, how to mutate them, the entry point that loads the
/// mutated file (the one the CLI uses) and a short use of what loaded (a forward pass, an encode).
/// The mutated file is written as <see cref="FileName"/> into a folder that also holds <see cref="Companions"/>
/// (the tokenizer beside a checkpoint, the config beside the weights), so loaders find what they look for.
/// </summary>
internal sealed record FuzzTarget(
    string Name, string FileName, byte[][] Seeds, Func<byte[], Random, byte[]> Mutate,
    Func<string, object?> Load, Action<object?> Use, int DefaultCases,
    IReadOnlyDictionary<string, byte[]>? Companions = null);

/// <summary>What a fuzz run saw: cases by outcome class and the cases outside the contract.</summary>
internal sealed class FuzzReport
{
    public string Target = "";
    public int Cases;
    public int Loaded;
    public readonly Dictionary<string, int> Rejected = new(StringComparer.Ordinal); // by normalised field
    public readonly List<string> Violations = [];
    /// <summary>Violations grouped by exception type and the first Workbench frame, with one example each.</summary>
    public readonly Dictionary<string, (int Count, string Example)> ViolationClasses = new(StringComparer.Ordinal);
    public string ViolationSummary => string.Join("\n", ViolationClasses.OrderByDescending(kv => kv.Value.Count)
        .Select(kv => $"{kv.Value.Count} x {kv.Key}: e.g. {kv.Value.Example}"));
    public TimeSpan Elapsed;
    public TimeSpan Slowest;
    public long MaxAllocated;

    public int RejectedTotal => Rejected.Values.Sum();
    public double PerSecond => Cases / Math.Max(1e-9, Elapsed.TotalSeconds);

    public override string ToString() =>
        $"{Target}: {Cases} cases in {Elapsed.TotalSeconds:F1} s ({PerSecond:F0}/s, slowest {Slowest.TotalMilliseconds:F0} ms, " +
        $"max allocated {MaxAllocated / 1e6:F1} MB): {Loaded} loaded, {RejectedTotal} ModelFormatException, {Violations.Count} outside the contract; " +
        $"top fields: {string.Join(", ", Rejected.OrderByDescending(kv => kv.Value).Take(8).Select(kv => $"{kv.Key} {kv.Value}"))}";
}

/// <summary>
/// Runs seeded mutation cases through a target. Each case runs on its own thread (default stack size, so unbounded
/// recursion shows) with a watchdog, and its managed allocation during loading is held to
/// <see cref="AllocationFactor"/> x (bytes in the case folder) + <see cref="AllocationConstant"/>.
/// Budget: WORKBENCH_FUZZ_CASES (cases per format) overrides each target's default; WORKBENCH_FUZZ_SEED changes the
/// seed; WORKBENCH_FUZZ_TIMEOUT (seconds per case, default 10) the watchdog.
/// Cases outside the contract are written to out/fuzz-failures/ for replay.
/// </summary>
internal static class FuzzRunner
{
    /// <summary>The loaders' documented bound: a file of n bytes allocates at most 16 n + 64 MB while loading.</summary>
    public const long AllocationFactor = 16, AllocationConstant = 64L << 20;

    public static int CasesFor(FuzzTarget t) =>
        int.TryParse(Environment.GetEnvironmentVariable("WORKBENCH_FUZZ_CASES"), out int n) && n > 0 ? n : t.DefaultCases;

    private static int BaseSeed => int.TryParse(Environment.GetEnvironmentVariable("WORKBENCH_FUZZ_SEED"), out int s) ? s : 20261203;

    private static TimeSpan Timeout =>
        TimeSpan.FromSeconds(int.TryParse(Environment.GetEnvironmentVariable("WORKBENCH_FUZZ_TIMEOUT"), out int s) && s > 0 ? s : 10);

    public static FuzzReport Run(FuzzTarget target)
    {
        var report = new FuzzReport { Target = target.Name };
        var dir = Directory.CreateTempSubdirectory($"wb-fuzz-{target.Name}-").FullName;
        try
        {
            long companionBytes = 0;
            foreach (var (name, bytes) in target.Companions ?? new Dictionary<string, byte[]>())
            {
                File.WriteAllBytes(Path.Combine(dir, name), bytes);
                companionBytes += bytes.Length;
            }
            string path = Path.Combine(dir, target.FileName);
            int cases = CasesFor(target);
            int seed = BaseSeed ^ StableHash(target.Name);
            var total = Stopwatch.StartNew();
            for (int i = 0; i < cases; i++)
            {
                var rng = new Random(seed + i * 7919);
                var input = target.Mutate(target.Seeds[rng.Next(target.Seeds.Length)], rng);
                File.WriteAllBytes(path, input);
                long budget = AllocationFactor * (input.Length + companionBytes) + AllocationConstant;
                var outcome = RunCase(target, path, Timeout);
                report.Cases++;
                if (outcome.Elapsed > report.Slowest) report.Slowest = outcome.Elapsed;
                report.MaxAllocated = Math.Max(report.MaxAllocated, outcome.Allocated);
                string? violation = outcome.Error switch
                {
                    _ when outcome.TimedOut => $"no result after {Timeout.TotalSeconds} s",
                    null => null,
                    ModelFormatException m when !NamesField(m) => $"ModelFormatException without a field: {m.Message}",
                    // The boundary's last net catches what a reader let through; the fuzz suite wants the reader fixed.
                    ModelFormatException { Field: Workbench.Engine.Models.ModelHub.UntranslatedField, InnerException: { } inner } =>
                        $"untranslated {inner.GetType().FullName}: {FirstLine(inner.Message)} at {TopFrame(inner)}",
                    ModelFormatException => null,
                    var e => $"{e.GetType().FullName}: {FirstLine(e.Message)} at {TopFrame(e)}",
                };
                if (violation is null && outcome.Allocated > budget)
                    violation = $"allocated {outcome.Allocated:N0} bytes loading {input.Length:N0} bytes (bound {budget:N0})";
                if (violation is not null)
                {
                    report.Violations.Add($"case {i}: {violation}");
                    string cls = outcome.Error is { } err && !outcome.TimedOut && violation.StartsWith(err.GetType().FullName!, StringComparison.Ordinal)
                        ? $"{err.GetType().Name} at {TopFrame(err)}" : violation.Split(' ')[0] + " " + (outcome.TimedOut ? "timeout" : "bound");
                    var prev = report.ViolationClasses.GetValueOrDefault(cls, (0, $"case {i}: {violation}"));
                    report.ViolationClasses[cls] = (prev.Item1 + 1, prev.Item2);
                    Save(target, i, input);
                    if (outcome.TimedOut) break; // the stuck thread still holds the file
                }
                else if (outcome.Error is ModelFormatException mfe)
                {
                    string key = Normalise(mfe.Field);
                    report.Rejected[key] = report.Rejected.GetValueOrDefault(key) + 1;
                }
                else report.Loaded++;
            }
            report.Elapsed = total.Elapsed;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return report;
    }

    private sealed record Outcome(Exception? Error, long Allocated, TimeSpan Elapsed, bool TimedOut);

    private static Outcome RunCase(FuzzTarget target, string path, TimeSpan timeout)
    {
        Exception? error = null;
        long allocated = 0;
        var sw = Stopwatch.StartNew();
        var thread = new Thread(() =>
        {
            try
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                object? loaded;
                try { loaded = target.Load(path); }
                finally { allocated = GC.GetAllocatedBytesForCurrentThread() - before; }
                try { target.Use(loaded); }
                finally { (loaded as IDisposable)?.Dispose(); }
            }
            catch (Exception e) { error = e; }
        }) { IsBackground = true, Name = $"fuzz {target.Name}" };
        thread.Start();
        bool done = thread.Join(timeout);
        return new Outcome(error, allocated, sw.Elapsed, !done);
    }

    /// <summary>The contract: the file, a non-empty field and the offset all appear in the message.</summary>
    public static bool NamesField(ModelFormatException e) =>
        !string.IsNullOrWhiteSpace(e.Field) && !string.IsNullOrEmpty(e.FilePath) && e.Message.Contains($"'{e.Field}'", StringComparison.Ordinal);

    // Field names carry tensor names, keys and indices; outcome classes keep only their shape.
    private static string Normalise(string field) =>
        Regex.Replace(Regex.Replace(field, "'[^']*'", "'*'"), @"\[[^\]]*\]|\d+", "#");

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    private static string TopFrame(Exception e) =>
        (e.StackTrace ?? "").Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Contains("Workbench.")) ?? "(no Workbench frame)";

    private static void Save(FuzzTarget target, int i, byte[] input)
    {
        try
        {
            var dir = Directory.CreateDirectory(Path.Combine(Formats.RepoFiles.Root, "out", "fuzz-failures")).FullName;
            File.WriteAllBytes(Path.Combine(dir, $"{target.Name}-{i}-{target.FileName}"), input);
        }
        catch (IOException) { }
    }

    private static int StableHash(string s)
    {
        int h = 17;
        foreach (char c in s) h = unchecked(h * 31 + c);
        return h;
    }
}
