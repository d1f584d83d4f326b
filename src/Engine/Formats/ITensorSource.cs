namespace Workbench.Engine.Formats;

/// <summary>Element types a tensor file may hold. Readers convert F16/BF16 to F32 on read.</summary>
public enum DType { F32, F16, BF16, F64, I8, U8, I16, I32, I64 }

/// <summary>One tensor as a file describes it: shape in row-major order (outermost first), where its bytes are.</summary>
public sealed record TensorEntry(string Name, DType DType, long[] Shape, long ByteOffset, long ByteLength)
{
    public long ElementCount
    {
        get
        {
            long n = 1; // a loop, not Aggregate: LINQ over long is jitted at every model load (no precompiled code)
            foreach (long d in Shape) n *= d;
            return n;
        }
    }
}

/// <summary>
/// A file (or set of files) of named tensors: GGUF, safetensors, llama2.c, npz, ONNX initializers.
/// Every entry was validated against the file length when the source was opened.
/// </summary>
public interface ITensorSource : IDisposable
{
    string Path { get; }
    string Format { get; }
    IReadOnlyList<TensorEntry> Tensors { get; }
    /// <summary>Format-level key/value metadata (GGUF KV pairs, safetensors __metadata__, ...).</summary>
    IReadOnlyDictionary<string, object> Metadata { get; }
    bool Contains(string name);
    TensorEntry Get(string name);
    /// <summary>Reads a tensor converted to float32 (row-major).</summary>
    float[] ReadF32(string name);
    /// <summary>
    /// The tensor's stored bytes, memory-mapped and not converted (GGUF, safetensors); null where the source keeps no
    /// mapping of that type. Types a kernel can compute from: F16, BF16, Q8_0, Q4_0 (and F32).
    /// </summary>
    MappedTensor? Map(string name) => null;
}
