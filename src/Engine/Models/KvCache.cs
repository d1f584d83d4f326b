namespace Workbench.Engine.Models;

/// <summary>
/// Per-layer key/value cache of a decoder. Each layer keeps its own rows with their positions, because token
/// dropping leaves later layers with fewer entries than earlier ones. A layer is allocated on first use, so a
/// dropped attention layer never allocates.
/// </summary>
public sealed class KvCache
{
    private readonly LayerCache?[] _layers;
    public int Capacity { get; }
    public int KvDim { get; }

    public KvCache(int layers, int capacity, int kvDim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _layers = new LayerCache?[layers];
        Capacity = capacity;
        KvDim = kvDim;
    }

    public static KvCache For(ModelConfig c, int? capacity = null) => new(c.Layers, capacity ?? c.MaxSeq, c.KvDim);

    public int Layers => _layers.Length;

    /// <summary>Entries held by a layer (0 for a layer never used).</summary>
    public int Count(int layer) => _layers[layer]?.Count ?? 0;

    public bool IsAllocated(int layer) => _layers[layer] is not null;

    /// <summary>Bytes actually allocated, over all layers (keys and values, fp32).</summary>
    public long AllocatedBytes => _layers.Sum(l => l is null ? 0L : 2L * sizeof(float) * l.Keys.Length);

    public LayerCache Layer(int layer) => _layers[layer] ??= new LayerCache(Capacity, KvDim);

    public void Clear()
    {
        foreach (var l in _layers) l?.Clear();
    }

    public sealed class LayerCache
    {
        public float[] Keys { get; }
        public float[] Values { get; }
        public int[] Positions { get; }
        public int Count { get; private set; }
        private readonly int _kvDim;

        internal LayerCache(int capacity, int kvDim)
        {
            _kvDim = kvDim;
            Keys = new float[(long)capacity * kvDim];
            Values = new float[(long)capacity * kvDim];
            Positions = new int[capacity];
        }

        /// <summary>Reserves <paramref name="rows"/> entries and returns the index of the first.</summary>
        public int Append(int rows, ReadOnlySpan<int> positions)
        {
            if (Count + rows > Positions.Length)
                throw new InvalidOperationException($"KV cache full: {Count} + {rows} rows exceed its capacity of {Positions.Length} positions");
            positions.CopyTo(Positions.AsSpan(Count));
            int start = Count;
            Count += rows;
            return start;
        }

        public Span<float> Key(int entry) => Keys.AsSpan(entry * _kvDim, _kvDim);
        public Span<float> Value(int entry) => Values.AsSpan(entry * _kvDim, _kvDim);

        public void Clear() => Count = _transposed = 0;

        private float[]? _keysT, _valuesT;
        private int _transposed;

        /// <summary>Columns per row of the transposed copies: the capacity rounded up to whole 16-float vectors.</summary>
        internal int TransposedStride => (Positions.Length + 15) / 16 * 16;

        /// <summary>
        /// Keys and values transposed, [KvDim, <see cref="TransposedStride"/>] (element t of entry j at t * stride + j),
        /// for one-row decoding: a head's scores and its weighted sum of values then run over contiguous memory.
        /// Allocated on first use and brought up to date with the entries appended since the last call (an entry's keys
        /// and values are written once, right after <see cref="Append"/>).
        /// </summary>
        internal (float[] KeysT, float[] ValuesT) Transposed()
        {
            int stride = TransposedStride;
            var kt = _keysT ??= new float[(long)_kvDim * stride];
            var vt = _valuesT ??= new float[(long)_kvDim * stride];
            for (int j = _transposed; j < Count; j++)
                for (int t = 0; t < _kvDim; t++)
                {
                    kt[t * stride + j] = Keys[j * _kvDim + t];
                    vt[t * stride + j] = Values[j * _kvDim + t];
                }
            _transposed = Count;
            return (kt, vt);
        }
    }
}
