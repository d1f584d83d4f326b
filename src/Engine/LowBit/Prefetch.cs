namespace Workbench.Engine.LowBit;

/// <summary>
/// How far ahead, in bytes, the ternary kernels prefetch on each of their (usually four) row streams. The lines
/// prefetched ahead must stay in the L1 data cache beside the activations or tables until they are used, so the
/// distance follows the L1 size:
/// - Zen 4 VM, 32 KB L1 (I2S, thread CPU time, one thread; two rows / 1024 / 512 / 256 bytes / none): 4096x11008
///   635-666 / 517-578 / 476-487 / 480 / 524 us, 4096x4096 213 / 207 / 212 / 213 / 255 us. TL1 at 2048 bytes and TL2 at
///   4096 bytes were 10-18% slower than at 512 (lines evicted before use).
/// - Emerald Rapids VM, 48 KB L1 (cold GEMVs, median wall time, 512 vs 1024 interleaved in one process): I2S 1-5%
///   faster at 1024 on every shape (6912x2560 one thread 320 -> 303 us), TL2 2-5% (4096x4096 310 -> 298 us), TL1 0-3%;
///   1536 and 2048 were no better than 1024, and an extra L2 prefetch (prefetcht1) 3-10 KB ahead gained nothing.
/// - I2S once prefetched two rows ahead: at 11008 columns that is 4 x 2 x 2816 = 22 KB of prefetched lines, which with
///   the 11 KB of activations overflowed a 32 KB L1, so lines were evicted before they were used and long rows ran
///   slowest.
/// <para>Each kernel reads <see cref="Distance"/> into a local before its loops. Read in the loop, it cost up to 2x in
/// the CLI: there the kernels are compiled fully optimised at their first call (no ReadyToRun code for them,
/// QuickJitForLoops off), possibly before this class is initialised, so the JIT could not fold the value and left a
/// class-initialisation check, a possible helper call, in the inner loop; around it every vector register was spilled
/// and reloaded on each iteration (I2S.DotV512: 97 stack accesses against 6 in the tier-1 code), and about one process
/// in four then ran i2s 2560x6912 on one thread at 370-618 us instead of ~285.</para>
/// </summary>
internal static class Prefetch
{
    public static readonly int Distance = L1DataBytes() >= 48 << 10 ? 1024 : 512;

    /// <summary>
    /// The second, farther prefetch of the table kernels (TL1, TL2), into L2 (prefetcht1): 4 KB ahead on each stream,
    /// 16 KB in flight for four streams, far below any L2, so nothing waits in L1. On the Zen 4 VM (32 KB L1, 2 MB L2)
    /// their one-thread compute rate is about the memory rate (TL2 with weights in L2: 122 G weights/s, the floor at
    /// 25 GB/s is 121), so 512 bytes ahead was too short to hide DRAM latency behind the table look-ups. Cold GEMVs,
    /// medians of five alternations in one process (0 / 2560 / 5120 bytes): TL2 4096x4096 285 / 222 / 241 us,
    /// 4096x11008 562 / 508 / 477; TL1 4096x4096 230 / 172 / 164, 6912x2560 248 / 183 / 194; two threads (0 / 4096):
    /// TL2 11008x4096 462 / 336, TL1 414 / 355. I2S gained nothing and lost up to 20% at two threads (11008x4096
    /// 294 / 353 us): its decode keeps up with the memory, so the farther lines only compete for the fill buffers.
    /// </summary>
    public const int Far = 4096;

    /// <summary>
    /// I2S's second prefetch into L2, only in a part of a GEMV split across threads (fewer rows than the matrix): with
    /// both cores streaming, DRAM answers later and each core needs more lines in flight. Zen 4 VM, cold, median of seven
    /// alternations in one process, none / 2048 bytes (us): two threads 4096x11008 434 / 341, 2560x6912 135 / 125,
    /// 6912x2560 142 / 136, 11008x4096 352 / 345, 4096x4096 119 / 118 (4096 bytes: 134); one thread it lost (4096x11008
    /// 421 / 449, 6912x2560 171 / 182), so a whole-matrix call (one thread) does without.
    /// </summary>
    public const int SplitFar = 2048;

    /// <summary>
    /// Whether the stored-type tile kernels (f16, Q8_0 / Q4_0: <see cref="StoredKernels.F16V512x8"/>, QDotV256x8) ask for
    /// the next tile's eight rows into L2 (prefetcht1) rather than L1. Those lines are wanted a whole tile later: eight
    /// rows of 2560 f16 columns are 40 KB, more than a 32 KB L1 holds beside the tile being read, so there they only
    /// evicted it. Zen 4 VM (32 KB L1), cold GEMVs, median of seven alternations in one process, L1 / L2: f16 6912x2560
    /// 2315 / 1751 us, 2560x6912 2249 / 1870, 4096x4096 2136 / 1770, 11008x4096 6223 / 5294, two threads 6912x2560
    /// 1439 / 1081; Q8_0 4096x4096 1538 / 1468, 11008x4096 3324 / 2698, two threads 807 / 657, but 6912x2560 1480 /
    /// 1606. With a 48 KB L1 (the Emerald Rapids VM, where prefetcht0 was measured to win) the kernels keep it.
    /// </summary>
    public static readonly bool NextTileToL2 = L1DataBytes() is > 0 and < 48 << 10;

    /// <summary>The level-1 data cache of CPU 0 from Linux sysfs; 0 (so the short distance) when it cannot be read.</summary>
    private static long L1DataBytes()
    {
        try
        {
            foreach (var dir in Directory.EnumerateDirectories("/sys/devices/system/cpu/cpu0/cache", "index*"))
            {
                if (File.ReadAllText(Path.Combine(dir, "level")).Trim() != "1" || File.ReadAllText(Path.Combine(dir, "type")).Trim() != "Data") continue;
                var size = File.ReadAllText(Path.Combine(dir, "size")).Trim(); // "48K"
                return size.EndsWith('K') && long.TryParse(size[..^1], out long k) ? k << 10 : 0;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return 0;
    }
}
