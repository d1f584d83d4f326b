namespace Workbench.Engine.Formats;

/// <summary>The 7-int32 header of a llama2.c checkpoint (legacy export, version 0).</summary>
public sealed record Llama2cHeader(int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int Vocab, int SeqLen, bool SharedClassifier)
{
    public int HeadSize => Dim / Heads;
    public int KvDim => Dim * KvHeads / Heads;
    public const int Bytes = 7 * sizeof(int);

    /// <summary>Float32 count of the whole tensor payload, for the shared or unshared layout.</summary>
    public long PayloadFloats(bool shared)
    {
        long d = Dim, h = HiddenDim, l = Layers, kv = KvDim, v = Vocab;
        long perLayer = d + d * d + 2 * kv * d + d * d + d + 3 * h * d;
        return v * d + l * perLayer + d + (long)SeqLen * (HeadSize / 2) * 2 + (shared ? 0 : v * d);
    }

    /// <summary>Validates header values; returns null when plausible, otherwise the problem and the field.</summary>
    internal static (string field, int index, string problem)? Check(ReadOnlySpan<int> h)
    {
        string[] names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
        // Limits far above any llama2.c model, far below what would let a hostile header ask for huge buffers.
        int[] max = [1 << 16, 1 << 18, 1024, 1024, 1024, 1 << 20, 1 << 20];
        for (int i = 0; i < 7; i++)
        {
            long v = i == 5 ? Math.Abs((long)h[i]) : h[i];
            if (v <= 0) return (names[i], i, $"must be positive, got {h[i]}");
            if (v > max[i]) return (names[i], i, $"{h[i]} is absurd (limit {max[i]})");
        }
        if (h[0] % h[3] != 0) return ("n_heads", 3, $"n_heads {h[3]} does not divide dim {h[0]}");
        if (h[4] > h[3] || h[3] % h[4] != 0) return ("n_kv_heads", 4, $"n_kv_heads {h[4]} does not divide n_heads {h[3]}");
        if (h[0] / h[3] % 2 != 0) return ("n_heads", 3, $"head size {h[0] / h[3]} is odd (rotary embedding pairs need it even)");
        return null;
    }

    internal static Llama2cHeader From(ReadOnlySpan<int> h) =>
        new(h[0], h[1], h[2], h[3], h[4], Math.Abs(h[5]), h[6], SharedClassifier: h[5] > 0);
}

/// <summary>
/// A llama2.c checkpoint (<c>run.c</c>'s legacy .bin): 7 int32 header then float32 tensors in a fixed order.
/// Entries use Meta-Llama names (<c>layers.{i}.attention.wq.weight</c>), one per layer; <c>output.weight</c>
/// points at the embedding when the classifier is shared. Memory-mapped; the layout must fill the file exactly.
/// </summary>
public sealed class Llama2cCheckpoint : ITensorSource
{
    private readonly MappedFile _file;
    private readonly Dictionary<string, TensorEntry> _map;

    public string Path => _file.Path;
    public string Format => "llama2.c";
    public Llama2cHeader Header { get; }
    public IReadOnlyList<TensorEntry> Tensors { get; }
    public IReadOnlyDictionary<string, object> Metadata { get; }

    private Llama2cCheckpoint(MappedFile file)
    {
        _file = file;
        var r = new FieldReader(file);
        r.Need(Llama2cHeader.Bytes, "header");
        Span<int> h = stackalloc int[7];
        for (int i = 0; i < 7; i++) h[i] = r.I32("header");
        if (Llama2cHeader.Check(h) is { } bad)
            throw r.Error(bad.field, bad.index * 4L, bad.problem);
        Header = Llama2cHeader.From(h);
        Tensors = Layout(Header, file.Path, file.Length);
        _map = TensorIndex.Build(file.Path, Tensors);
        if (Header.SharedClassifier)
        {
            // Shared classifier: the output projection is the embedding table itself.
            var alias = _map["tok_embeddings.weight"] with { Name = "output.weight" };
            _map[alias.Name] = alias;
            Tensors = [.. Tensors, alias];
        }
        Metadata = new Dictionary<string, object>
        {
            ["dim"] = Header.Dim, ["hidden_dim"] = Header.HiddenDim, ["n_layers"] = Header.Layers,
            ["n_heads"] = Header.Heads, ["n_kv_heads"] = Header.KvHeads, ["vocab_size"] = Header.Vocab,
            ["seq_len"] = Header.SeqLen, ["shared_classifier"] = Header.SharedClassifier,
        };
    }

    public static Llama2cCheckpoint Open(string path)
    {
        var file = MappedFile.Open(path);
        try { return new Llama2cCheckpoint(file); }
        catch { file.Dispose(); throw; }
    }

    /// <summary>The llama2.c tensor order, checked tensor by tensor against the file length.</summary>
    private static List<TensorEntry> Layout(Llama2cHeader c, string path, long fileLength)
    {
        var list = new List<TensorEntry>();
        long offset = Llama2cHeader.Bytes;
        void Add(string name, params long[] shape)
        {
            long bytes = 4;
            foreach (long s in shape) bytes *= s;
            if (offset + bytes > fileLength)
                throw new ModelFormatException(path, name, offset,
                    $"tensor of {bytes} bytes runs past the end of the file ({fileLength} bytes; the layout needs {Llama2cHeader.Bytes + 4 * c.PayloadFloats(c.SharedClassifier)})");
            list.Add(new TensorEntry(name, DType.F32, shape, offset, bytes));
            offset += bytes;
        }
        void PerLayer(Func<int, string> name, params long[] shape)
        {
            for (int i = 0; i < c.Layers; i++) Add(name(i), shape);
        }
        long d = c.Dim, h = c.HiddenDim, kv = c.KvDim;
        Add("tok_embeddings.weight", c.Vocab, d);
        PerLayer(i => $"layers.{i}.attention_norm.weight", d);
        PerLayer(i => $"layers.{i}.attention.wq.weight", d, d);
        PerLayer(i => $"layers.{i}.attention.wk.weight", kv, d);
        PerLayer(i => $"layers.{i}.attention.wv.weight", kv, d);
        PerLayer(i => $"layers.{i}.attention.wo.weight", d, d);
        PerLayer(i => $"layers.{i}.ffn_norm.weight", d);
        PerLayer(i => $"layers.{i}.feed_forward.w1.weight", h, d);
        PerLayer(i => $"layers.{i}.feed_forward.w2.weight", d, h);
        PerLayer(i => $"layers.{i}.feed_forward.w3.weight", h, d);
        Add("norm.weight", d);
        Add("freq_cis_real", c.SeqLen, c.HeadSize / 2);
        Add("freq_cis_imag", c.SeqLen, c.HeadSize / 2);
        if (!c.SharedClassifier) Add("output.weight", c.Vocab, d);
        if (offset != fileLength)
            throw new ModelFormatException(path, "file length", offset,
                $"the layout ends at byte {offset} but the file has {fileLength - offset} more bytes (wrong header or not a llama2.c legacy checkpoint)");
        return list;
    }

    /// <summary>True when a file's header is plausible and its size matches the shared or unshared layout exactly.</summary>
    internal static bool LooksLike(ReadOnlySpan<int> header, long fileLength)
    {
        if (Llama2cHeader.Check(header) is not null) return false;
        var c = Llama2cHeader.From(header);
        return Llama2cHeader.Bytes + 4 * c.PayloadFloats(c.SharedClassifier) == fileLength;
    }

    public bool Contains(string name) => _map.ContainsKey(name);
    public TensorEntry Get(string name) => TensorIndex.Get(_map, Path, name);
    public float[] ReadF32(string name) => DTypes.ReadF32(_file, Get(name), Format);
    public void Dispose() => _file.Dispose();
}
