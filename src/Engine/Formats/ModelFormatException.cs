namespace Workbench.Engine.Formats;

/// <summary>
/// The one exception for bad model, tokenizer and data files. Its message always names
/// the file, the field and the byte offset where the problem was found.
/// The readers' contract, whatever the bytes: a file loads or this is thrown (never another exception type, a hang or
/// a crash), and loading a file of n bytes allocates at most 16 n + 64 MB of managed memory: sizes read from headers
/// are checked against the bytes present before anything is allocated. tests/Engine.Tests/Fuzz checks both.
/// </summary>
public sealed class ModelFormatException : Exception
{
    public string FilePath { get; }
    public string Field { get; }
    public long Offset { get; }

    public ModelFormatException(string filePath, string field, long offset, string problem, Exception? inner = null)
        : base($"{filePath}: field '{field}' at offset {offset}: {problem}", inner)
    {
        FilePath = filePath;
        Field = field;
        Offset = offset;
    }
}
