using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Text;
using System.Text.Json;
using Workbench.Engine.LowBit;
using Workbench.Engine.Requests;

namespace Workbench.Engine.Models;

/// <summary>A decoder's shape: what a random-weight checkpoint of it holds (Mistral's layout: GQA, SwiGLU, untied head).</summary>
public sealed record DecoderShape(string Name, int Layers, int Hidden, int Heads, int KvHeads, int Ffn, int Vocab, int MaxPositions = 32768)
{
    /// <summary>mistralai/Mistral-7B-v0.1's numbers: 32 layers, hidden 4096, 32 heads, 8 KV heads, FFN 14336, vocab 32000.</summary>
    public static DecoderShape Mistral7B { get; } = new("mistral-7b", 32, 4096, 32, 8, 14336, 32000);
    /// <summary>A small shape of the same layout, for tests of the writer and the readers.</summary>
    public static DecoderShape Tiny { get; } = new("tiny", 2, 64, 4, 2, 128, 256, 256);

    public static IReadOnlyList<DecoderShape> Named { get; } = [Mistral7B, Tiny];

    public int HeadDim => Hidden / Heads;
    public int KvDim => KvHeads * HeadDim;

    /// <summary>A named shape, with the layer count optionally changed; unknown names are refused naming --shape and listing the names.</summary>
    public static DecoderShape Parse(string? name, int? layers = null)
    {
        var s = Named.FirstOrDefault(x => string.Equals(x.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase))
            ?? throw new OptionException("--shape", $"--shape '{name}' is not a known shape (known: {string.Join(", ", Named.Select(x => x.Name))})");
        if (layers is { } l)
        {
            if (l <= 0) throw new OptionException("--layers", $"--layers {l} must be positive");
            s = s with { Layers = l };
        }
        return s;
    }

    /// <summary>Every tensor in Hugging Face's naming and state-dict order, as [rows, cols] (cols = the input of a linear), with the std of its values (0: a norm of ones).</summary>
    internal IEnumerable<(string Name, int Rows, int Cols, float Std)> HfTensors()
    {
        float In(int n) => 1f / MathF.Sqrt(n);
        yield return ("model.embed_tokens.weight", Vocab, Hidden, 1f);
        for (int i = 0; i < Layers; i++)
        {
            string p = $"model.layers.{i}.";
            yield return (p + "self_attn.q_proj.weight", Hidden, Hidden, In(Hidden));
            yield return (p + "self_attn.k_proj.weight", KvDim, Hidden, In(Hidden));
            yield return (p + "self_attn.v_proj.weight", KvDim, Hidden, In(Hidden));
            yield return (p + "self_attn.o_proj.weight", Hidden, Hidden, In(Hidden));
            yield return (p + "mlp.gate_proj.weight", Ffn, Hidden, In(Hidden));
            yield return (p + "mlp.up_proj.weight", Ffn, Hidden, In(Hidden));
            yield return (p + "mlp.down_proj.weight", Hidden, Ffn, In(Ffn));
            yield return (p + "input_layernorm.weight", 1, Hidden, 0f);
            yield return (p + "post_attention_layernorm.weight", 1, Hidden, 0f);
        }
        yield return ("model.norm.weight", 1, Hidden, 0f);
        yield return ("lm_head.weight", Vocab, Hidden, In(Hidden));
    }
}

/// <summary>
/// Writes seeded random-weight checkpoints of a <see cref="DecoderShape"/> as the field's tools lay them out, streaming
/// (a few rows at a time; a 7B-shaped file is never held in memory): a Hugging Face MistralForCausalLM folder
/// (config.json + bf16 safetensors shards of at most 5 GB + model.safetensors.index.json, as save_pretrained writes them)
/// or a llama.cpp GGUF (architecture llama, Q8_0 linears and embedding, F32 norms, llama.cpp's tensor names and keys).
///
/// <para>Values: row r of a tensor is drawn from its own stream (seeded by the seed, the tensor's Hugging Face name and r),
/// normal with std 1 / sqrt(in) for linears (so activations stay O(1)), 1 for the embedding; norms are ones. Both files
/// of one seed hold the same fp32 draws, rounded to bf16 or quantized to Q8_0 (the GGUF's q/k rows permuted to
/// llama.cpp's interleaved rotary order, as convert_hf_to_gguf.py does), so they are one model in two types.</para>
/// </summary>
public static class RandomCheckpoint
{
    /// <summary>What was written: the path, the bytes on disk and the files.</summary>
    public sealed record Written(string Path, string Type, DecoderShape Shape, int Seed, long Bytes, IReadOnlyList<string> Files, long Parameters);

    public const long HfShardBytes = 5_000_000_000; // save_pretrained's max_shard_size "5GB"

    /// <summary>Writes <paramref name="type"/> (bf16: a Hugging Face folder; q8_0: a GGUF file) at <paramref name="outPath"/>.</summary>
    /// <param name="maxShardBytes">bf16: the largest shard (save_pretrained's 5 GB by default); one file when everything fits.</param>
    public static Written Write(DecoderShape shape, string type, int seed, string outPath, IProgress<RunProgress>? progress = null, long maxShardBytes = HfShardBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        ArgumentNullException.ThrowIfNull(shape);
        if (string.IsNullOrWhiteSpace(outPath)) throw new OptionException("--out", "--out is required");
        if (shape.Hidden % shape.Heads != 0 || shape.Heads % shape.KvHeads != 0)
            throw new OptionException("--shape", $"--shape {shape.Name}: hidden {shape.Hidden} / heads {shape.Heads} / KV heads {shape.KvHeads} do not divide");
        return type?.Trim().ToLowerInvariant() switch
        {
            "bf16" => WriteHuggingFace(shape, seed, outPath, progress, maxShardBytes),
            "q8_0" or "q8" => WriteGguf(shape, seed, outPath, progress),
            _ => throw new OptionException("--type", $"--type '{type}' is not supported (supported: bf16 (Hugging Face safetensors folder), q8_0 (GGUF))"),
        };
    }

    // ---- values ----

    /// <summary>Row <paramref name="row"/> of tensor <paramref name="name"/>: normal(0, std), or ones when std is 0.</summary>
    internal static void Row(int seed, string name, int row, float std, Span<float> dst, Span<float> scratch)
    {
        if (std == 0) { dst.Fill(1f); return; }
        ulong state = Mix(Mix((ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ Fnv(name)) + (ulong)(uint)row * 0xD1B54A32D192ED03UL);
        // Box-Muller on pairs: u1 in (0, 1], u2 in [0, 1); dst[0..h) = r cos, dst[h..2h) = r sin.
        int n = dst.Length, h = (n + 1) / 2;
        var u1 = scratch[..h];
        var u2 = dst[..h];
        for (int i = 0; i < h; i++)
        {
            ulong z = Mix(state += 0x9E3779B97F4A7C15UL);
            u1[i] = ((uint)(z >> 40) + 1) * (1f / (1 << 24));
            u2[i] = (uint)(z & 0xFFFFFF) * (2 * MathF.PI / (1 << 24));
        }
        TensorPrimitives.Log(u1, u1);
        TensorPrimitives.Multiply(u1, -2f * std * std, u1);
        TensorPrimitives.Sqrt(u1, u1);
        var sin = scratch.Slice(h, h);
        var cos = scratch.Slice(2 * h, h);
        TensorPrimitives.SinCos(u2, sin, cos);
        TensorPrimitives.Multiply(cos, u1, cos);
        TensorPrimitives.Multiply(sin, u1, sin);
        cos.CopyTo(dst);
        sin[..(n - h)].CopyTo(dst[h..]);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong Fnv(string s)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (char c in s) h = (h ^ c) * 0x100000001B3UL;
        return h;
    }

    /// <summary>
    /// Encodes rows [0, rows) of a tensor (row r drawn as HF row <paramref name="source"/>(r)) in <paramref name="type"/>
    /// (null: F32) and writes them to <paramref name="output"/>, a batch of rows at a time, the rows of a batch in parallel.
    /// </summary>
    private static void StreamTensor(Stream output, int seed, string name, int rows, int cols, float std, StoredType? type, Func<int, int>? source = null)
    {
        long rowBytes = type is { } t ? StoredMatrix.BytesFor(t, 1, cols) : 4L * cols;
        int batch = (int)Math.Max(1, Math.Min(rows, (16L << 20) / rowBytes));
        var buf = new byte[batch * rowBytes];
        for (int r0 = 0; r0 < rows; r0 += batch)
        {
            int n = Math.Min(batch, rows - r0);
            Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
                () => (new float[cols], new float[3 * ((cols + 1) / 2)]),
                (i, _, s) =>
                {
                    int r = r0 + i;
                    Row(seed, name, source?.Invoke(r) ?? r, std, s.Item1, s.Item2);
                    var dst = buf.AsSpan((int)(i * rowBytes), (int)rowBytes);
                    if (type is { } st) StoredMatrix.Quantize(st, s.Item1, dst);
                    else for (int c = 0; c < cols; c++) BinaryPrimitives.WriteSingleLittleEndian(dst[(4 * c)..], s.Item1[c]);
                    return s;
                }, _ => { });
            output.Write(buf, 0, (int)(n * rowBytes));
        }
    }

    // ---- Hugging Face folder ----

    private static Written WriteHuggingFace(DecoderShape s, int seed, string folder, IProgress<RunProgress>? progress, long maxShardBytes)
    {
        Directory.CreateDirectory(folder);
        var tensors = s.HfTensors().ToList();
        // save_pretrained's sharding: state-dict order, a new shard when the next tensor would pass the limit.
        var shards = new List<List<(string Name, int Rows, int Cols, float Std)>> { new() };
        long current = 0;
        foreach (var t in tensors)
        {
            long bytes = 2L * t.Rows * t.Cols;
            if (shards[^1].Count > 0 && current + bytes > maxShardBytes) { shards.Add([]); current = 0; }
            shards[^1].Add(t);
            current += bytes;
        }
        var files = new List<string>();
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        int done = 0;
        for (int i = 0; i < shards.Count; i++)
        {
            string file = shards.Count == 1 ? "model.safetensors" : $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            // Within a file safetensors orders tensors by dtype alignment, then name: one dtype here, so by name.
            var sorted = shards[i].OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
            using var fs = new FileStream(Path.Combine(folder, file), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
            WriteSafetensorsHeader(fs, sorted.Select(t => (t.Name, t.Rows == 1 ? new long[] { t.Cols } : [t.Rows, t.Cols])));
            foreach (var t in sorted)
            {
                StreamTensor(fs, seed, t.Name, t.Rows, t.Cols, t.Std, StoredType.BF16);
                weightMap[t.Name] = file;
                progress?.Report(new RunProgress("tensors", ++done, tensors.Count, t.Name));
            }
            files.Add(file);
        }
        long total = tensors.Sum(t => 2L * t.Rows * t.Cols);
        if (shards.Count > 1)
        {
            using var fs = File.Create(Path.Combine(folder, "model.safetensors.index.json"));
            using var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true });
            w.WriteStartObject();
            w.WriteStartObject("metadata");
            w.WriteNumber("total_size", total);
            w.WriteEndObject();
            w.WriteStartObject("weight_map");
            foreach (var (k, v) in weightMap) w.WriteString(k, v);
            w.WriteEndObject();
            w.WriteEndObject();
            files.Add("model.safetensors.index.json");
        }
        File.WriteAllText(Path.Combine(folder, "config.json"), HfConfig(s));
        files.Add("config.json");
        long bytesOnDisk = files.Sum(f => new FileInfo(Path.Combine(folder, f)).Length);
        return new Written(folder, "bf16", s, seed, bytesOnDisk, files, tensors.Sum(t => (long)t.Rows * t.Cols));
    }

    private static void WriteSafetensorsHeader(Stream fs, IEnumerable<(string Name, long[] Shape)> tensors)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            w.WriteString("format", "pt");
            w.WriteEndObject();
            long offset = 0;
            foreach (var (name, shape) in tensors)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", "BF16");
                w.WriteStartArray("shape");
                foreach (var d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                offset += 2 * shape.Aggregate(1L, (a, b) => a * b);
                w.WriteNumberValue(offset);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        int len = (int)ms.Length, padded = (len + 7) / 8 * 8; // data 8-byte aligned, the header padded with spaces
        Span<byte> n = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(n, (ulong)padded);
        fs.Write(n);
        fs.Write(ms.GetBuffer().AsSpan(0, len));
        for (int i = len; i < padded; i++) fs.WriteByte((byte)' ');
    }

    /// <summary>config.json as transformers writes it for mistralai/Mistral-7B-v0.1 (bf16, untied head, sliding window 4096).</summary>
    internal static string HfConfig(DecoderShape s)
    {
        var cfg = new Dictionary<string, object?>
        {
            ["architectures"] = new[] { "MistralForCausalLM" },
            ["attention_dropout"] = 0.0,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["head_dim"] = s.HeadDim,
            ["hidden_act"] = "silu",
            ["hidden_size"] = s.Hidden,
            ["initializer_range"] = 0.02,
            ["intermediate_size"] = s.Ffn,
            ["max_position_embeddings"] = s.MaxPositions,
            ["model_type"] = "mistral",
            ["num_attention_heads"] = s.Heads,
            ["num_hidden_layers"] = s.Layers,
            ["num_key_value_heads"] = s.KvHeads,
            ["rms_norm_eps"] = 1e-05,
            ["rope_theta"] = 10000.0,
            ["sliding_window"] = 4096,
            ["tie_word_embeddings"] = false,
            ["torch_dtype"] = "bfloat16",
            ["use_cache"] = true,
            ["vocab_size"] = s.Vocab,
        };
        return JsonSerializer.Serialize(cfg, new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    // ---- GGUF ----

    private const uint GgufU32 = 4, GgufF32 = 6, GgufString = 8;
    private const int GgufAlignment = 32;

    /// <summary>llama.cpp's name of a Hugging Face tensor (convert_hf_to_gguf.py's llama mapping).</summary>
    internal static string GgufName(string hf) => hf switch
    {
        "model.embed_tokens.weight" => "token_embd.weight",
        "model.norm.weight" => "output_norm.weight",
        "lm_head.weight" => "output.weight",
        _ => GgufLayerName(hf),
    };

    private static string GgufLayerName(string hf)
    {
        var parts = hf.Split('.'); // model.layers.{i}.{module...}.weight
        string rest = string.Join('.', parts[3..^1]);
        string n = rest switch
        {
            "self_attn.q_proj" => "attn_q", "self_attn.k_proj" => "attn_k", "self_attn.v_proj" => "attn_v", "self_attn.o_proj" => "attn_output",
            "mlp.gate_proj" => "ffn_gate", "mlp.up_proj" => "ffn_up", "mlp.down_proj" => "ffn_down",
            "input_layernorm" => "attn_norm", "post_attention_layernorm" => "ffn_norm",
            _ => throw new ArgumentException($"no GGUF name for {hf}", nameof(hf)),
        };
        return $"blk.{parts[2]}.{n}.weight";
    }

    private static Written WriteGguf(DecoderShape s, int seed, string path, IProgress<RunProgress>? progress)
    {
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir) Directory.CreateDirectory(dir);
        // llama.cpp's tensor order: token_embd, each block, output_norm, output.
        var tensors = s.HfTensors().Select(t => (Hf: t, Name: GgufName(t.Name), Type: t.Rows == 1 ? (StoredType?)null : StoredType.Q8_0)).ToList();
        var head = new MemoryStream();
        var w = new BinaryWriter(head, Encoding.UTF8, leaveOpen: true);
        w.Write(0x46554747u); // "GGUF"
        w.Write(3u);
        w.Write((ulong)tensors.Count);
        var kv = new List<(string Key, uint Type, object Value)>
        {
            ("general.architecture", GgufString, "llama"),
            ("general.name", GgufString, $"{s.Name} random weights (seed {seed})"),
            ("llama.vocab_size", GgufU32, (uint)s.Vocab),
            ("llama.context_length", GgufU32, (uint)s.MaxPositions),
            ("llama.embedding_length", GgufU32, (uint)s.Hidden),
            ("llama.block_count", GgufU32, (uint)s.Layers),
            ("llama.feed_forward_length", GgufU32, (uint)s.Ffn),
            ("llama.rope.dimension_count", GgufU32, (uint)s.HeadDim),
            ("llama.attention.head_count", GgufU32, (uint)s.Heads),
            ("llama.attention.head_count_kv", GgufU32, (uint)s.KvHeads),
            ("llama.attention.layer_norm_rms_epsilon", GgufF32, 1e-5f),
            ("llama.rope.freq_base", GgufF32, 10000f),
            ("general.file_type", GgufU32, 7u), // LLAMA_FTYPE_MOSTLY_Q8_0
            ("general.quantization_version", GgufU32, 2u),
        };
        w.Write((ulong)kv.Count);
        void Str(string v) { var b = Encoding.UTF8.GetBytes(v); w.Write((ulong)b.Length); w.Write(b); }
        foreach (var (key, type, value) in kv)
        {
            Str(key);
            w.Write(type);
            switch (value) { case string v: Str(v); break; case uint u: w.Write(u); break; case float f: w.Write(f); break; }
        }
        long offset = 0;
        var sizes = new List<long>();
        foreach (var (hf, name, type) in tensors)
        {
            Str(name);
            bool vector = hf.Rows == 1;
            w.Write(vector ? 1u : 2u);
            w.Write((ulong)hf.Cols); // ne[0]: the innermost (input) dimension
            if (!vector) w.Write((ulong)hf.Rows);
            w.Write(type is null ? 0u : 8u); // GGML_TYPE_F32 / GGML_TYPE_Q8_0
            w.Write((ulong)offset);
            long bytes = type is { } t ? StoredMatrix.BytesFor(t, hf.Rows, hf.Cols) : 4L * hf.Rows * hf.Cols;
            sizes.Add(bytes);
            offset += (bytes + GgufAlignment - 1) / GgufAlignment * GgufAlignment;
        }
        w.Flush();
        while (head.Length % GgufAlignment != 0) head.WriteByte(0);
        using (var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            head.Position = 0;
            head.CopyTo(fs);
            for (int i = 0; i < tensors.Count; i++)
            {
                var (hf, name, type) = tensors[i];
                // q/k rows in llama.cpp's interleaved rotary order: GGUF row r is the HF row the HF loader un-permutes to r.
                Func<int, int>? source = null;
                if (name.EndsWith("attn_q.weight", StringComparison.Ordinal) || name.EndsWith("attn_k.weight", StringComparison.Ordinal))
                {
                    var map = LlamaLoader.UnpermutedRows(hf.Rows, name.EndsWith("attn_q.weight", StringComparison.Ordinal) ? s.Heads : s.KvHeads);
                    source = r => map[r];
                }
                StreamTensor(fs, seed, hf.Name, hf.Rows, hf.Cols, hf.Std, type, source);
                for (long pad = sizes[i]; pad % GgufAlignment != 0; pad++) fs.WriteByte(0);
                progress?.Report(new RunProgress("tensors", i + 1, tensors.Count, name));
            }
        }
        return new Written(path, "q8_0", s, seed, new FileInfo(path).Length, [Path.GetFileName(path)], tensors.Sum(t => (long)t.Hf.Rows * t.Hf.Cols));
    }
}
