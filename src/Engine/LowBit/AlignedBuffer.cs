using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Workbench.Engine.LowBit;

/// <summary>
/// A pinned array whose usable part starts on a 64-byte boundary, so every Vector512 load of packed weights
/// touches one cache line instead of two.
/// </summary>
internal sealed class AlignedBuffer<T> where T : unmanaged
{
    private readonly T[] _array;
    private readonly int _offset;
    public int Length { get; }

    public unsafe AlignedBuffer(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        int pad = 64 / sizeof(T);
        _array = GC.AllocateArray<T>(length + pad, pinned: true);
        nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
        _offset = (int)(((64 - (address & 63)) & 63) / sizeof(T));
        Length = length;
    }

    public AlignedBuffer<T> Clone()
    {
        var c = new AlignedBuffer<T>(Length);
        Span.CopyTo(c.Span);
        return c;
    }

    public Span<T> Span => _array.AsSpan(_offset, Length);
    public ref T Ref => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_array), _offset);
}
