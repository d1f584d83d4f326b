namespace Workbench.Engine.Models;

/// <summary>
/// The hidden states of one sequence as they flow through the blocks: one row per live token.
/// Token dropping removes rows; every row keeps its original position (for rotary or learned positions)
/// and the index of its token in the original input.
/// </summary>
public sealed class SequenceState
{
    public int Rows { get; private set; }
    public int Dim { get; }
    /// <summary>[Rows, Dim] row-major; the array may be longer than Rows * Dim.</summary>
    public float[] Hidden { get; private set; }
    public int[] Positions { get; private set; }
    public int[] TokenIndex { get; private set; }
    /// <summary>Keys that may be attended to (BERT padding mask). Null means all rows are valid.</summary>
    public bool[]? Valid { get; private set; }

    public SequenceState(int rows, int dim, int[] positions, int[]? tokenIndex = null, bool[]? valid = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        if (positions.Length != rows) throw new ArgumentException($"positions has {positions.Length} entries for {rows} rows", nameof(positions));
        if (valid is not null && valid.Length != rows) throw new ArgumentException($"valid has {valid.Length} entries for {rows} rows", nameof(valid));
        Rows = rows;
        Dim = dim;
        Hidden = new float[rows * dim];
        Positions = positions;
        TokenIndex = tokenIndex ?? Identity(rows);
        Valid = valid;
    }

    private static int[] Identity(int rows)
    {
        var ids = new int[rows];
        for (int i = 0; i < rows; i++) ids[i] = i;
        return ids;
    }

    public Span<float> Row(int r) => Hidden.AsSpan(r * Dim, Dim);
    public Span<float> Active => Hidden.AsSpan(0, Rows * Dim);

    /// <summary>Keeps the given rows (indices into the current rows, strictly increasing), in order.</summary>
    public void Keep(ReadOnlySpan<int> rows)
    {
        if (rows.Length == 0) throw new ArgumentException("at least one row must be kept", nameof(rows));
        var pos = new int[rows.Length];
        var idx = new int[rows.Length];
        bool[]? valid = Valid is null ? null : new bool[rows.Length];
        int prev = -1;
        for (int i = 0; i < rows.Length; i++)
        {
            int r = rows[i];
            if (r <= prev || r >= Rows) throw new ArgumentException($"row {r} at {i} is out of order or out of range (rows {Rows})", nameof(rows));
            prev = r;
            if (r != i) Hidden.AsSpan(r * Dim, Dim).CopyTo(Hidden.AsSpan(i * Dim, Dim));
            pos[i] = Positions[r];
            idx[i] = TokenIndex[r];
            if (valid is not null) valid[i] = Valid![r];
        }
        Rows = rows.Length;
        Positions = pos;
        TokenIndex = idx;
        Valid = valid;
    }
}
