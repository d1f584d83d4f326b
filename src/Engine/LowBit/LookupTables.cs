using Workbench.Engine.Tensors;

namespace Workbench.Engine.LowBit;

/// <summary>One table of TL1 (an activation pair) or TL2 (an activation triplet): every entry the kernel can look up.</summary>
public sealed record LookupTableView(LowBitFormat Format, int Group, int[] Activations, IReadOnlyList<LookupEntry> Entries);

/// <summary>Entry <c>Index</c>: the weights it stands for, the int16 read back from the table, and that sum recomputed from the activations.</summary>
public sealed record LookupEntry(int Index, int[] Weights, int TableValue, int Expected);

/// <summary>The tables the TL kernels look up, read back from prepared activations (the view notebooks show).</summary>
public static class LookupTables
{
    /// <summary>The 9-entry table of activation pair <paramref name="pair"/> (columns 2 pair, 2 pair + 1), as the kernel reads it.</summary>
    public static LookupTableView TL1(TL1.Activations act, int pair = 0)
    {
        ArgumentNullException.ThrowIfNull(act);
        if (!act.IsPrepared) throw new ArgumentException("Quantize (or Load) the activations first.", nameof(act));
        bool words = act.Path == IsaPath.V512;
        int pairs = (words ? act.WordTables.Length : act.Tables.Length) / 32;
        if (pair < 0 || pair >= pairs) throw new ArgumentOutOfRangeException(nameof(pair), pair, $"pair must be in 0..{pairs - 1}.");
        var t = words ? default : act.Tables.Slice(pair * 32, 32);
        var tw = words ? act.WordTables.Slice(pair * 32, 32) : default;
        int b0 = act.Q[2 * pair], b1 = act.Q[2 * pair + 1];
        var entries = new List<LookupEntry>();
        for (int e = 0; e < 9; e++)
        {
            var (w0, w1) = LowBit.TL1.PairOf(e);
            // V512 keeps one int16 per entry (twice over); the other paths split low and high bytes.
            entries.Add(new LookupEntry(e, [w0, w1], words ? tw[e] : (short)(t[e] | t[16 + e] << 8), w0 * b0 + w1 * b1));
        }
        return new LookupTableView(LowBitFormat.TL1, pair, [b0, b1], entries);
    }

    /// <summary>The 14-entry table of activation triplet <paramref name="triplet"/> (columns 3 triplet .. 3 triplet + 2).</summary>
    public static LookupTableView TL2(TL2.Activations act, int triplet = 0)
    {
        ArgumentNullException.ThrowIfNull(act);
        if (!act.IsPrepared) throw new ArgumentException("Quantize (or Load) the activations first.", nameof(act));
        bool signed = act.Path == IsaPath.V512;
        int triplets = (signed ? act.SignedTables.Length : act.Tables.Length) / 32;
        if (triplet < 0 || triplet >= triplets) throw new ArgumentOutOfRangeException(nameof(triplet), triplet, $"triplet must be in 0..{triplets - 1}.");
        int b0 = act.Q[3 * triplet], b1 = act.Q[3 * triplet + 1], b2 = act.Q[3 * triplet + 2];
        var entries = new List<LookupEntry>();
        for (int v = 0; v < 14; v++)
        {
            var (w0, w1, w2) = LowBit.TL2.Canonical[v];
            // V512 keeps one int16 per entry (and the negated entries at 16 + v); the other paths split low and high bytes.
            int value = signed ? act.SignedTables[triplet * 32 + v]
                : (short)(act.Tables[triplet * 32 + v] | act.Tables[triplet * 32 + 16 + v] << 8);
            entries.Add(new LookupEntry(v, [w0, w1, w2], value, w0 * b0 + w1 * b1 + w2 * b2));
        }
        return new LookupTableView(LowBitFormat.TL2, triplet, [b0, b1, b2], entries);
    }
}
