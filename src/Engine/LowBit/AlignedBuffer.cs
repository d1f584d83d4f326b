using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Workbench.Engine.LowBit;

/// <summary>
/// A pinned buffer whose usable part starts on a 64-byte boundary, so every Vector512 load of packed weights
/// touches one cache line instead of two. Buffers of at least <see cref="HugePages.MinBytes"/> on Linux are their
/// own anonymous mapping advised for 2 MB pages (see <see cref="HugePages"/>); smaller ones are pinned arrays.
/// </summary>
internal sealed unsafe class AlignedBuffer<T> where T : unmanaged
{
    private readonly T[]? _array;
    private readonly int _offset;
    private readonly HugePages? _block;
    public int Length { get; }

    public AlignedBuffer(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
        long bytes = (long)length * sizeof(T);
        if (HugePages.Wanted(bytes))
        {
            _block = HugePages.TryMap(bytes);
            if (_block != null) return;
        }
        int pad = 64 / sizeof(T);
        _array = GC.AllocateArray<T>(length + pad, pinned: true);
        nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
        _offset = (int)(((64 - (address & 63)) & 63) / sizeof(T));
    }

    public AlignedBuffer<T> Clone()
    {
        var c = new AlignedBuffer<T>(Length);
        Span.CopyTo(c.Span);
        return c;
    }

    /// <summary>Whether the buffer is a mapping advised for 2 MB pages (the kernel decides whether it gets them).</summary>
    public bool IsMapped => _block != null;

    public Span<T> Span => _block != null ? new Span<T>((void*)_block.Start, Length) : _array.AsSpan(_offset, Length);
    public ref T Ref => ref _block != null ? ref Unsafe.AsRef<T>((void*)_block.Start) : ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_array!), _offset);
}

/// <summary>
/// An anonymous private mapping whose start is 2 MB aligned, advised with madvise(MADV_HUGEPAGE), so Linux's
/// transparent huge pages back it with 2 MB pages where it can (THP "madvise" or "always"; with "never", or when
/// the advice fails, it is ordinary 4 KB pages, which work the same). Packed weights are read as four or more
/// long streams; with 4 KB pages each stream takes a TLB miss every 4 KB (ARCHITECTURE.md has the measured difference).
/// The mapping is returned to the system when the owner is collected (a SafeHandle's release), and its size is
/// reported to the GC as memory pressure.
/// </summary>
internal sealed class HugePages : SafeHandle
{
    private const long Page = 2 << 20;
    /// <summary>Buffers this big or bigger are mapped (smaller ones hold no whole 2 MB page).</summary>
    public const long MinBytes = Page;

    /// <summary>
    /// Off with WORKBENCH_HUGE_PAGES=0 (then every buffer is a pinned array), and off where the runtime is not on
    /// Linux.
    /// </summary>
    public static bool Enabled { get; } = OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("WORKBENCH_HUGE_PAGES") != "0";

    private readonly nint _base;
    private readonly long _length;
    public nint Start { get; }

    private HugePages(nint baseAddress, long length, nint start) : base(0, true)
    {
        _base = baseAddress; _length = length; Start = start;
        SetHandle(baseAddress);
        GC.AddMemoryPressure(length - Page);
    }

    public override bool IsInvalid => handle == 0;

    public static bool Wanted(long bytes) => Enabled && bytes >= MinBytes;

    /// <summary>A zeroed mapping of at least <paramref name="bytes"/>, or null when mmap refuses (the caller falls back).</summary>
    public static HugePages? TryMap(long bytes)
    {
        long length = bytes + Page; // room to start on a 2 MB boundary
        nint p = Mmap(0, (nuint)length, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (p == -1 || p == 0) return null;
        nint start = (nint)(((long)p + Page - 1) / Page * Page);
        // Only the whole 2 MB pages inside the buffer are advised: a huge page over the tail would hold up to 2 MB the
        // buffer does not use. The slack before start and after the end is never touched, so it costs no memory.
        _ = Madvise(start, (nuint)(bytes / Page * Page), MadvHugePage); // advice only: refused, the pages are 4 KB
        return new HugePages(p, length, start);
    }

    protected override bool ReleaseHandle()
    {
        _ = Munmap(_base, (nuint)_length);
        GC.RemoveMemoryPressure(_length - Page);
        return true;
    }

    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapAnonymous = 0x20, MadvHugePage = 14;

    [DllImport("libc", EntryPoint = "mmap")]
    private static extern nint Mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [DllImport("libc", EntryPoint = "munmap")]
    private static extern int Munmap(nint addr, nuint length);

    [DllImport("libc", EntryPoint = "madvise")]
    private static extern int Madvise(nint addr, nuint length, int advice);
}
