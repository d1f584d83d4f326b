using System.Buffers.Binary;
using System.IO.Compression;
using Google.Protobuf;

namespace Workbench.Engine.Formats;

public enum ModelFileKind { Gguf, Safetensors, SafetensorsIndex, Npz, Onnx, Llama2c, HuggingFaceFolder }

/// <summary>Recognises model files by content (magic numbers, headers, layout sizes), never by extension.</summary>
public static class ModelFiles
{
    public static ModelFileKind Sniff(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            if (File.Exists(System.IO.Path.Combine(path, "config.json"))
                && (File.Exists(System.IO.Path.Combine(path, "model.safetensors")) || File.Exists(System.IO.Path.Combine(path, "model.safetensors.index.json"))))
                return ModelFileKind.HuggingFaceFolder;
            throw new ModelFormatException(path, "folder", 0, "could not recognise the folder: a Hugging Face model folder needs config.json and model.safetensors (or model.safetensors.index.json)");
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"model file not found: {path}", path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long length = fs.Length;
        Span<byte> head = stackalloc byte[32];
        int n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        head = head[..n];

        if (n >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(head) == GgufFile.Magic) return ModelFileKind.Gguf;
        if (n >= 4 && head[..4].SequenceEqual("PK\u0003\u0004"u8) && ZipHasNpy(fs)) return ModelFileKind.Npz;
        if (n >= 9)
        {
            ulong h = BinaryPrimitives.ReadUInt64LittleEndian(head);
            if (h >= 2 && h <= (ulong)(length - 8) && h <= SafetensorsFile.MaxHeaderBytes && head[8] == (byte)'{') return ModelFileKind.Safetensors;
        }
        if (n >= Llama2cHeader.Bytes)
        {
            Span<int> hdr = stackalloc int[7];
            for (int i = 0; i < 7; i++) hdr[i] = BinaryPrimitives.ReadInt32LittleEndian(head[(4 * i)..]);
            if (Llama2cCheckpoint.LooksLike(hdr, length)) return ModelFileKind.Llama2c;
        }
        if (n >= 1 && head[0] == (byte)'{' && LooksLikeIndex(fs)) return ModelFileKind.SafetensorsIndex;
        if (n >= 2 && IsOnnx(fs)) return ModelFileKind.Onnx;
        throw new ModelFormatException(path, "magic", 0,
            "could not recognise the file as GGUF, safetensors, npz, ONNX or a llama2.c checkpoint (header implausible or size does not match the layout)");
    }

    /// <summary>Sniffs and opens any supported tensor file or folder.</summary>
    public static ITensorSource Open(string path) => Sniff(path) switch
    {
        ModelFileKind.Gguf => GgufFile.Open(path),
        ModelFileKind.Safetensors => SafetensorsFile.Open(path),
        ModelFileKind.SafetensorsIndex => SafetensorsIndex.Open(path),
        ModelFileKind.Npz => NpzFile.Open(path),
        ModelFileKind.Onnx => OnnxModelFile.Open(path),
        ModelFileKind.Llama2c => Llama2cCheckpoint.Open(path),
        ModelFileKind.HuggingFaceFolder => File.Exists(System.IO.Path.Combine(path, "model.safetensors"))
            ? SafetensorsFile.Open(System.IO.Path.Combine(path, "model.safetensors"))
            : SafetensorsIndex.Open(System.IO.Path.Combine(path, "model.safetensors.index.json")),
        var k => throw new InvalidOperationException($"unhandled kind {k}"),
    };

    private static bool ZipHasNpy(FileStream fs)
    {
        try
        {
            fs.Position = 0;
            using var zip = new ZipArchive(fs, ZipArchiveMode.Read, leaveOpen: true);
            return zip.Entries.Count > 0 && zip.Entries.All(e => e.FullName.EndsWith(".npy", StringComparison.Ordinal));
        }
        catch (InvalidDataException) { return false; }
    }

    private static bool LooksLikeIndex(FileStream fs)
    {
        if (fs.Length > 64 << 20) return false;
        try
        {
            fs.Position = 0;
            using var doc = System.Text.Json.JsonDocument.Parse(fs);
            return doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object && doc.RootElement.TryGetProperty("weight_map", out _);
        }
        catch (System.Text.Json.JsonException) { return false; }
    }

    /// <summary>A ModelProto: every top-level field parses with a valid wire type, field numbers are known, and a graph (7) is present.</summary>
    private static bool IsOnnx(FileStream fs)
    {
        try
        {
            fs.Position = 0;
            var cis = new CodedInputStream(fs, leaveOpen: true);
            bool graph = false;
            uint tag;
            while ((tag = cis.ReadTag()) != 0)
            {
                int field = (int)(tag >> 3), wire = (int)(tag & 7);
                if (field is < 1 or > 25 || wire is 3 or 4 or > 5) return false;
                if (field == 7 && wire == 2) graph = true;
                cis.SkipLastField();
            }
            return graph;
        }
        catch (InvalidProtocolBufferException) { return false; }
        catch (IOException) { return false; }
    }
}
