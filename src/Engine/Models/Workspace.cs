namespace Workbench.Engine.Models;

/// <summary>
/// The temporaries of a model's forward pass (llama2.c's RunState): numbered slots, each grown to the largest length
/// asked for and then reused, so a forward allocates nothing on its hot path once warm. One per thread per model
/// (<see cref="Workspaces"/>), so one model serves parallel forward calls; a hook that runs another forward of the
/// same model on the same thread from inside a block must not expect its caller's temporaries to survive.
/// </summary>
public sealed class Workspace(int slots)
{
    private readonly float[][] _slots = Enumerable.Repeat(System.Array.Empty<float>(), slots).ToArray();

    /// <summary>Slot <paramref name="slot"/> as an array of at least <paramref name="length"/> floats (contents undefined).</summary>
    public float[] Array(int slot, int length)
    {
        ref var a = ref _slots[slot];
        if (a.Length < length) a = new float[length];
        return a;
    }

    /// <summary>The first <paramref name="length"/> floats of slot <paramref name="slot"/> (contents undefined).</summary>
    public Span<float> Get(int slot, int length) => Array(slot, length).AsSpan(0, length);
}

/// <summary>A model's workspaces, one per thread.</summary>
public sealed class Workspaces(int slots)
{
    private readonly ThreadLocal<Workspace> _perThread = new(() => new Workspace(slots));
    public Workspace Current => _perThread.Value!;
}
