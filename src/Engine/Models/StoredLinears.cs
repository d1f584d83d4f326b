using System.Runtime.CompilerServices;
using Workbench.Engine.Formats;
using Workbench.Engine.LowBit;

namespace Workbench.Engine.Models;

/// <summary>How a loader keeps a checkpoint's block linears and untied output head.</summary>
public enum WeightStorage
{
    /// <summary>In the type the file stores (bf16, f16, Q8_0, Q4_0, Q5_0, Q2_K, Q4_K, Q5_K, Q6_K), memory-mapped, run by the stored-type kernels; other types as fp32.</summary>
    Stored,
    /// <summary>Every weight copied into fp32 arrays (what analyses that change weights, like training, need).</summary>
    Fp32,
}

/// <summary>The <c>--weights</c> option: <c>stored</c> (the default) or <c>fp32</c>.</summary>
public static class WeightStorageOption
{
    public static WeightStorage Parse(string? text, string option = "--weights") => text?.Trim().ToLowerInvariant() switch
    {
        null or "" or "stored" => WeightStorage.Stored,
        "fp32" => WeightStorage.Fp32,
        _ => throw new Requests.OptionException(option, $"{option} '{text!.Trim()}' is not stored or fp32."),
    };
}

/// <summary>
/// Linear weights kept as stored. A model's linear is identified by its weight array (<see cref="NamedLinear"/>,
/// <see cref="ILinearOverride"/>); a stored linear's array is an empty placeholder registered here with its
/// <see cref="StoredMatrix"/>, so every model runs it through <see cref="ForwardContext.RunLinear"/> unchanged, and a
/// reader that needs values asks <see cref="Fp32"/>. A placeholder used as fp32 by mistake fails the shape checks
/// (it has no elements) instead of computing garbage.
/// </summary>
public static class StoredLinears
{
    private static readonly ConditionalWeakTable<float[], IStoredLinear> Table = new();

    /// <summary>A new placeholder array standing for <paramref name="m"/> (a stored-type matrix or packed ternary codes).</summary>
    public static float[] Register(IStoredLinear m)
    {
        ArgumentNullException.ThrowIfNull(m);
        var key = new float[0];
        Table.Add(key, m);
        return key;
    }

    /// <summary>The linear a placeholder stands for, in whichever form the checkpoint keeps it; null for an fp32 array.</summary>
    public static IStoredLinear? Linear(float[] w) => w.Length == 0 && Table.TryGetValue(w, out var m) ? m : null;

    /// <summary>The stored-type matrix a placeholder stands for; null for an fp32 array or packed ternary codes.</summary>
    public static StoredMatrix? Find(float[] w) => Linear(w) as StoredMatrix;

    /// <summary>The packed ternary linear a placeholder stands for (a checkpoint stored ternary); null otherwise.</summary>
    public static TernaryLinear? FindTernary(float[] w) => Linear(w) as TernaryLinear;

    /// <summary>The weights as fp32 values: the array itself, or a dequantized copy of a stored or packed ternary matrix.</summary>
    public static float[] Fp32(float[] w) => Linear(w)?.ToFloat() ?? w;

    /// <summary>Bytes the weights occupy: 4 a value for fp32, the stored bytes otherwise.</summary>
    public static long Bytes(float[] w) => Linear(w)?.WeightBytes ?? 4L * w.Length;

    /// <summary>Releases the resident pages of a memory-mapped stored matrix (see <see cref="MappedTensor.ReleasePages"/>); nothing for fp32.</summary>
    public static void ReleasePages(float[] w)
    {
        if (Find(w)?.Owner is MappedTensor t) t.ReleasePages();
    }

    /// <summary>Starts reading a memory-mapped stored matrix's pages ahead (see <see cref="MappedTensor.Prefetch"/>); nothing for fp32.</summary>
    public static void Prefetch(float[] w)
    {
        if (Find(w)?.Owner is MappedTensor t) t.Prefetch();
    }

    /// <summary>The kernel type of a ggml / safetensors stored type; null when it has none (then it is read as fp32).</summary>
    public static StoredType? KernelType(GgmlType t) => t switch
    {
        GgmlType.F16 => StoredType.F16, GgmlType.BF16 => StoredType.BF16, GgmlType.Q8_0 => StoredType.Q8_0, GgmlType.Q4_0 => StoredType.Q4_0,
        GgmlType.Q5_0 => StoredType.Q5_0, GgmlType.Q4_K => StoredType.Q4_K, GgmlType.Q5_K => StoredType.Q5_K, GgmlType.Q6_K => StoredType.Q6_K,
        GgmlType.Q2_K => StoredType.Q2_K, GgmlType.Q3_K => StoredType.Q3_K, GgmlType.Q4_1 => StoredType.Q4_1, GgmlType.Q5_1 => StoredType.Q5_1,
        _ => null,
    };

    /// <summary>
    /// A [rows, cols] linear weight: stored (a placeholder) when <paramref name="storage"/> asks for it and the file keeps
    /// it in a type with kernels (GGUF ternary types: packed in <paramref name="ternary"/>), else fp32. The shape is checked either way, naming the tensor.
    /// </summary>
    internal static float[] Read(ITensorSource src, string name, long rows, long cols, WeightStorage storage, LowBitFormat ternary = LowBitFormat.I2S)
    {
        // GGUF TQ1_0 / TQ2_0 / I2_S: codes straight into the packed ternary kernels (never through fp32)
        if (storage == WeightStorage.Stored && src is ITernaryTensors tt && src.Contains(name) && tt.TryReadTernary(name, out var tern) && tern is { } t3)
        {
            var e = src.Get(name);
            if (t3.Rows != rows || t3.Cols != cols)
                throw new ModelFormatException(src.Path, e.Name, e.ByteOffset, $"shape [{string.Join(", ", e.Shape)}] does not match the expected [{rows}, {cols}]");
            try { return Register(TernaryLinear.Pack(t3.Values, t3.Rows, t3.Cols, t3.Scales, t3.ScaleBlock, ternary)); }
            catch (ArgumentException x) { throw new ModelFormatException(src.Path, $"{e.Name}.scale", e.ByteOffset, x.Message, x); }
        }
        if (storage == WeightStorage.Stored && src.Contains(name) && src.Map(name) is { } t && KernelType(t.Type) is { } type
            && rows <= int.MaxValue && cols <= int.MaxValue)
        {
            var got = t.Entry.Shape.Where(s => s != 1).ToArray();
            if (!got.SequenceEqual(new[] { rows, cols }.Where(s => s != 1)))
                throw new ModelFormatException(src.Path, t.Entry.Name, t.Entry.ByteOffset, $"shape [{string.Join(", ", t.Entry.Shape)}] does not match the expected [{rows}, {cols}]");
            unsafe
            {
                return Register(StoredMatrix.Map(type, (int)rows, (int)cols, t.Pointer, t.Length, t));
            }
        }
        return TensorReading.Read(src, name, rows, cols);
    }

    /// <summary>Rows [r0, r1) of a [*, cols] weight (a fused tensor's part): a view of a stored matrix, a copy of fp32.</summary>
    internal static float[] Rows(float[] w, int cols, int r0, int r1) =>
        PermuteRows(w, Enumerable.Range(r0, r1 - r0).ToArray()) ?? w[(r0 * cols)..(r1 * cols)];

    /// <summary>Row r of the result is row <paramref name="map"/>[r] of w (a view of a stored matrix, repacked codes of a ternary one).</summary>
    internal static float[]? PermuteRows(float[] w, int[] map) => Linear(w) is { } m ? Register(m.WithRows(map)) : null;
}
