namespace Workbench.Engine.TokenDrop;

/// <summary>
/// Per-item seeds for random ranking. HashCode.Combine is randomized per process, so seeding with it made
/// "--rank random --seed 0" give different numbers on every run; this is one SplitMix64 step, the same everywhere.
/// </summary>
public static class DropSeeds
{
    /// <summary>The seed of item <paramref name="item"/> (an image or prompt index) under run seed <paramref name="seed"/>.</summary>
    public static int For(int seed, int item)
    {
        ulong z = ((ulong)(uint)seed << 32 | (uint)item) + 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(uint)z;
    }
}
