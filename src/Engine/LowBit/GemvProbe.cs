using Workbench.Engine.Tensors;
using System.Diagnostics;
using System.Runtime.Intrinsics;

namespace Workbench.Engine.LowBit;

/// <summary>One cold-weight GEMV measurement. Gops counts 2 ops (multiply, add) per weight.</summary>
public sealed record GemvProbeResult(
    LowBitFormat Format, int Rows, int Cols, int Threads, IsaPath Path, int Runs,
    double MedianUs, double MinUs, double Gops, double WeightGBps,
    long WeightBytes, double BitsPerWeight, int PoolCopies, long PoolBytes);

/// <summary>
/// A quick, honest GEMV timer for the CLI and notebooks (BenchmarkDotNet stays the source of record):
/// a pool of weight copies well above the last-level cache, a different copy each call (round robin), so
/// weights come from DRAM; activation quantization (and table building) is inside the timed region.
/// </summary>
public static class GemvProbe
{
    /// <summary>
    /// Pool size: the reference's (refgemv takes ceil(300 MB / weights) copies), so both sides of compare.sh stream from
    /// the same share of cache, and never less than 9/8 of the largest cache this machine reports. It was 160 MB (five
    /// times a ~32 MB last-level cache), but the Xeon VM reports a 260 MB L3, and there 160 MB against 600 MB made
    /// 4096x4096 two-thread GEMVs faster by 20-40% on either side (project int8 400-558 against 676-686 us, fp32
    /// 1732-1740 against 2192-2203; refgemv f32 2107-2191 against 2772-4076, load 2.6-3.6; i2s one thread 295-299 us
    /// from 160 MB, 336-343 from 310 MB): the project's 160 MB pool beside the reference's 300 MB flattered the project.
    /// </summary>
    public static long DefaultPoolBytes { get; } = Math.Max(300_000_000, LastLevelCacheBytes() * 9 / 8);

    /// <summary>The largest CPU cache sysfs lists for cpu0 (bytes), 0 where it lists none.</summary>
    public static long LastLevelCacheBytes()
    {
        long best = 0;
        try
        {
            var dir = "/sys/devices/system/cpu/cpu0/cache";
            if (!Directory.Exists(dir)) return 0;
            foreach (var index in Directory.GetDirectories(dir, "index*"))
            {
                var f = Path.Combine(index, "size");
                if (!File.Exists(f)) continue;
                var t = File.ReadAllText(f).Trim(); // "266240K", "2048K", "32M"
                long unit = t.EndsWith('K') ? 1L << 10 : t.EndsWith('M') ? 1L << 20 : 1;
                if (long.TryParse(t.TrimEnd('K', 'M'), out long v)) best = Math.Max(best, v * unit);
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return best;
    }

    public static GemvProbeResult Run(LowBitFormat format, int rows, int cols, int threads = 1, int runs = 101,
        int warmup = 10, int seed = 1, IsaPath? path = null, long? poolBytes = null)
    {
        long poolTarget = poolBytes ?? DefaultPoolBytes;
        Shapes.CheckShape(rows, cols);
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(runs, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(warmup);
        var p = path ?? Isa.Best;
        Isa.Require(p);
        var rng = new Random(seed);
        var x = new float[cols];
        for (int i = 0; i < cols; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var y = new float[rows];
        var times = new double[runs];
        long weightBytes;
        int copies;

        var info = LowBitFormats.Get(format);
        if (info.IsStored)
        {
            // Weights kept as stored: the same cold pool, rows split across a team, fp32 accumulation from the stored type.
            var first = info.RandomStored(rows, cols, seed);
            weightBytes = first.WeightBytes;
            copies = PoolCopies(weightBytes, poolTarget);
            var pool = new StoredMatrix[copies];
            pool[0] = first;
            for (int i = 1; i < copies; i++) pool[i] = first.CloneWeights();
            using var team = new WorkerTeam(threads);
            int chunks = (rows + StoredMatrix.ChunkRows - 1) / StoredMatrix.ChunkRows;
            var xp = GC.AllocateArray<float>(cols, pinned: true);
            var yp = GC.AllocateArray<float>(rows, pinned: true);
            x.CopyTo(xp, 0);
            StoredMatrix current = first;
            unsafe
            {
                float* px = (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref xp[0]);
                float* py = (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref yp[0]);
                nint ax = (nint)px, ay = (nint)py;
                // Q8_0 / Q4_0 quantize the activations inside the timed call (once, on this thread), as llama.cpp does
                StoredMatrix.Activations act = default;
                Action<int> chunk = c => current.RowRange(act, (float*)ay, c * StoredMatrix.ChunkRows, Math.Min(rows, (c + 1) * StoredMatrix.ChunkRows), p);
                Measure(times, warmup, copies, i => { current = pool[i]; act = current.Prepare((float*)ax, 1, p); team.RunChunks(chunks, chunk); });
                // The kernels hold only the addresses: without these the optimizing JIT ends the arrays' lives at the
                // line that took them, a collection during Measure frees them, and the next call reads unmapped memory
                // (an access violation in QuantizeQ8 with DOTNET_TieredCompilation=0).
                GC.KeepAlive(xp);
                GC.KeepAlive(yp);
            }
        }
        else if (!info.IsPacked)
        {
            weightBytes = LowBitFormats.WeightBytes(format, rows, cols);
            copies = PoolCopies(weightBytes, poolTarget);
            // 64-byte aligned copies, as ggml's F32 tensors are: a .NET float[] of this size starts 24 bytes past a cache
            // line, so every 64-byte load of the kernel straddles two lines (6912x2560, one thread: 4018 us unaligned
            // against 3649 us aligned, thread CPU time, interleaved; 4096x4096 unchanged). Model weights held as
            // float[] still pay that.
            var w0 = new AlignedBuffer<float>(checked(rows * cols));
            var span0 = w0.Span;
            for (int i = 0; i < span0.Length; i++) span0[i] = (float)(rng.NextDouble() * 2 - 1);
            var pool = new AlignedBuffer<float>[copies];
            pool[0] = w0;
            for (int i = 1; i < copies; i++) pool[i] = w0.Clone();
            using var team = new WorkerTeam(threads);
            var current = w0;
            Action<int> chunk = c => MatMul.GemvChunk(current.Span, rows, cols, x, y, c);
            Measure(times, warmup, copies, i => { current = pool[i]; team.RunChunks(MatMul.GemvChunks(rows), chunk); });
        }
        else
        {
            var first = LowBitFormats.Get(format).Random(rows, cols, seed);
            weightBytes = first.WeightBytes;
            copies = PoolCopies(weightBytes, poolTarget);
            var pool = new PackedMatrix[copies];
            pool[0] = first;
            for (int i = 1; i < copies; i++) pool[i] = first.CloneWeights();
            using var ws = first.CreateWorkspace(threads);
            Measure(times, warmup, copies, i => pool[i].Gemv(x, y, ws, p));
        }

        Array.Sort(times);
        double median = times[runs / 2];
        double ops = 2.0 * rows * cols;
        return new GemvProbeResult(format, rows, cols, threads, info.IsPacked || info.IsStored ? p : Isa.Best, runs,
            median, times[0], ops / median / 1e3, weightBytes / median / 1e3, weightBytes,
            weightBytes * 8.0 / ((long)rows * cols), copies, copies * weightBytes);
    }

    private static int PoolCopies(long weightBytes, long poolBytes) =>
        (int)Math.Clamp((poolBytes + weightBytes - 1) / weightBytes, 2, 4096);

    /// <summary>
    /// Warm-up lasts at least this long as well as <c>warmup</c> calls: the runtime first compiles methods without
    /// optimization (tier 0) and swaps in optimized code only after ~100 ms of use, in the background; a short
    /// warm-up timed tier-0 code (4-7x slower activation quantization here).
    /// </summary>
    public static readonly TimeSpan MinWarmup = TimeSpan.FromMilliseconds(600);

    /// <summary>Longest warm-up; the quiet-JIT rule of <see cref="Measure"/> usually ends it far sooner.</summary>
    public static readonly TimeSpan MaxWarmup = TimeSpan.FromSeconds(6);

    private static readonly TimeSpan JitQuiet = TimeSpan.FromMilliseconds(300);

    /// <summary>
    /// Warms up, then times each call. Warm-up ends after <paramref name="warmup"/> calls and <see cref="MinWarmup"/>
    /// once no method has been compiled for 300 ms (the optimized kernels are in place), or at
    /// <see cref="MaxWarmup"/>. Inside a long-lived host (a notebook kernel jits formatters and submissions all the
    /// time) the runtime keeps postponing the tier-1 swap, and a fixed warm-up timed unoptimized kernels (TL1 10x,
    /// f32 8x slower than from the CLI).
    /// </summary>
    private static void Measure(double[] times, int warmup, int copies, Action<int> call)
    {
        // The set-up's garbage (the fp32 source weights, up to hundreds of MB) is collected now, so no collection of it
        // runs during the timed calls (two gen-2 collections ran inside each f16 4096x4096 Run before). It did not close
        // the gap between median and minimum under load, which is the shared machine's preemption of a process that
        // has run for a second (the reference's ~50 ms processes are hit less).
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: false);
        GC.WaitForPendingFinalizers();
        int next = 0;
        long start = Stopwatch.GetTimestamp(), quietSince = start;
        long compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        for (int i = 0; ; i++)
        {
            call(next);
            next = (next + 1) % copies;
            long now = Stopwatch.GetTimestamp(), count = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (count != compiled) { compiled = count; quietSince = now; }
            var elapsed = Stopwatch.GetElapsedTime(start, now);
            if (elapsed >= MaxWarmup) break;
            if (i + 1 >= warmup && elapsed >= MinWarmup && Stopwatch.GetElapsedTime(quietSince, now) >= JitQuiet) break;
        }
        for (int i = 0; i < times.Length; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            call(next);
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            next = (next + 1) % copies;
        }
    }

    /// <summary>
    /// Streaming read bandwidth (GB/s), measured the way <see cref="Run"/> times a GEMV: a pool of
    /// <paramref name="bytes"/> (default: 256 MB or <see cref="DefaultPoolBytes"/>, whichever is larger) well above the last-level cache cut into chunks of <paramref name="chunkBytes"/> (the
    /// size of one GEMV's weights), one cold chunk per timed call (round robin), split across a team of threads, and
    /// the median call. Each thread reads its part as eight interleaved streams with software prefetch: one sequential
    /// stream reads ~10.5 GB/s on one core of this VM, eight streams 15-16 GB/s, and the GEMV kernels use several
    /// streams too, so this is the floor they are measured against.
    /// </summary>
    /// <remarks>
    /// It used to time whole 256 MB passes (median of 5). On the shared 2-core VM under load 20-50 a pass of tens of
    /// milliseconds spans several scheduler time slices, so it timed the other processes too and read 1.7-5 GB/s
    /// while the GEMV calls just before it in the same process, each a few hundred microseconds (the median skips the
    /// preempted ones), streamed 15-25 GB/s: the floor came out several times too high and "x0.1 of the floor" meant
    /// nothing. Short calls and the same median make the kernel and its floor comparable under the same load.
    /// </remarks>
    public static double ReadBandwidthGBps(int threads = 1, long? bytes = null, int runs = 101, long chunkBytes = 4L << 20)
    {
        long total = bytes ?? Math.Max(256L << 20, DefaultPoolBytes); // above the last-level cache, as the GEMV pool
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(runs, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkBytes, 4096L * threads);
        ArgumentOutOfRangeException.ThrowIfLessThan(total, 2 * chunkBytes);
        var buffer = new AlignedBuffer<byte>(checked((int)total));
        buffer.Span.Fill(1);
        int chunks = (int)(total / chunkBytes);
        using var team = new WorkerTeam(threads);
        var times = new double[runs];
        long sink = 0, chunkStart = 0;
        Action<int> part = t =>
        {
            long n = chunkBytes / 4096; // whole pages per thread
            long s = n * t / threads, e = n * (t + 1) / threads;
            Interlocked.Add(ref sink, (long)ReadSum(buffer, chunkStart + s * 4096, chunkStart + e * 4096));
        };
        for (int i = 0; i < chunks; i++) { chunkStart = i * chunkBytes; team.Run(part); } // one pass: pages in, code warm
        for (int i = 0; i < runs; i++)
        {
            chunkStart = i % chunks * chunkBytes;
            long t0 = Stopwatch.GetTimestamp();
            team.Run(part);
            times[i] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }
        Array.Sort(times);
        GC.KeepAlive(sink);
        return chunkBytes / times[runs / 2] / 1e9;
    }

    private const int Streams = 8;

    /// <summary>
    /// Sum of bytes [start, end), read as eight interleaved streams (the remainder byte by byte). Compiled fully
    /// optimized from the first call: the old probe called it only six times per thread, so it ran as tier-0 code
    /// entered through on-stack replacement; this attribute alone (whole 256 MB passes kept) raised the probe from
    /// 1.7 to 5.8-11 GB/s in back-to-back runs at load ~35 on the Zen 4 VM (the kernels streamed 23-25 GB/s).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    internal static unsafe ulong ReadSum(AlignedBuffer<byte> buffer, long start, long end)
    {
        fixed (byte* p0 = buffer.Span)
        {
            long part = (end - start) / Streams / 64 * 64;
            Vector128<ulong> s = default;
            byte* b = p0 + start;
            for (long i = 0; i < part; i += 64)
                for (int k = 0; k < Streams; k++)
                {
                    byte* p = b + k * part + i;
                    if (System.Runtime.Intrinsics.X86.Sse.IsSupported) System.Runtime.Intrinsics.X86.Sse.Prefetch0(p + 2048);
                    s += Vector128.Load((ulong*)p) + Vector128.Load((ulong*)(p + 16)) + Vector128.Load((ulong*)(p + 32)) + Vector128.Load((ulong*)(p + 48));
                }
            ulong total = Vector128.Sum(s);
            for (long i = start + Streams * part; i < end; i++) total += p0[i];
            return total;
        }
    }
}
