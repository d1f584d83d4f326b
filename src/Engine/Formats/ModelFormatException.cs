namespace Workbench.Engine.Formats;

/// <summary>
/// The one exception for bad model, tokenizer and data files. Its message always names
/// the file, the field and the byte offset where the problem was found.
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
