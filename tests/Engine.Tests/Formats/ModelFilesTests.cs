using Workbench.Engine.Formats;

namespace Workbench.Engine.Tests.Formats;

public class ModelFilesTests
{
    [Fact]
    public void Sniffs_by_content_not_extension()
    {
        using var tmp = new TempDir();
        // Copies under misleading names: only the bytes decide.
        string Copy(string src, string name) { string p = tmp.File(name); File.Copy(src, p); return p; }
        Assert.Equal(ModelFileKind.Gguf, ModelFiles.Sniff(Copy(RepoFiles.Model("stories260K", "stories260K.gguf"), "a.bin")));
        Assert.Equal(ModelFileKind.Llama2c, ModelFiles.Sniff(Copy(RepoFiles.Model("stories260K", "stories260K.bin"), "b.gguf")));
        Assert.Equal(ModelFileKind.Llama2c, ModelFiles.Sniff(RepoFiles.Model("babyllama-105", "model5000.bin")));
        Assert.Equal(ModelFileKind.Npz, ModelFiles.Sniff(Copy(RepoFiles.Model("vit-cifar10", "vit_cifar10.npz"), "c.onnx")));
        using (var s = EmbeddedResources.Open(EmbeddedResources.MiniLmAssembly, EmbeddedResources.MiniLmModel))
        using (var f = File.Create(tmp.File("d.dat"))) s.CopyTo(f);
        Assert.Equal(ModelFileKind.Onnx, ModelFiles.Sniff(tmp.File("d.dat")));
        using (var o = ModelFiles.Open(tmp.File("d.dat"))) Assert.Equal("ONNX", o.Format);

        SafetensorsWriter.Write(tmp.File("e.npz"), [("w", [2, 3], new float[6])]);
        Assert.Equal(ModelFileKind.Safetensors, ModelFiles.Sniff(tmp.File("e.npz")));

        var hf = Directory.CreateDirectory(tmp.File("hf")).FullName;
        File.WriteAllText(Path.Combine(hf, "config.json"), "{}");
        SafetensorsWriter.WriteSharded(hf, [("a", [4], new float[4]), ("b", [4], new float[4])], DType.F32, maxShardBytes: 16);
        Assert.Equal(ModelFileKind.HuggingFaceFolder, ModelFiles.Sniff(hf));
        Assert.Equal(ModelFileKind.SafetensorsIndex, ModelFiles.Sniff(Path.Combine(hf, "model.safetensors.index.json")));
        using (var src = ModelFiles.Open(hf)) Assert.Equal(2, src.Tensors.Count);
    }

    [Fact]
    public void Unknown_content_is_rejected()
    {
        using var tmp = new TempDir();
        // A llama2.c file one float short: plausible header, wrong size, so not recognised.
        var bin = File.ReadAllBytes(RepoFiles.Model("stories260K", "stories260K.bin"));
        File.WriteAllBytes(tmp.File("short.bin"), bin[..^4]);
        var ex = Assert.Throws<ModelFormatException>(() => ModelFiles.Sniff(tmp.File("short.bin")));
        Assert.Contains("could not recognise", ex.Message);
        Assert.Contains("short.bin", ex.Message);
        File.WriteAllText(tmp.File("text.txt"), "Once upon a time there was a file that was not a model.");
        Assert.Throws<ModelFormatException>(() => ModelFiles.Sniff(tmp.File("text.txt")));
        Assert.Throws<ModelFormatException>(() => ModelFiles.Sniff(RepoFiles.Model("stories260K", "tok512.bin")));
        Assert.Throws<ModelFormatException>(() => ModelFiles.Sniff(tmp.Path)); // a folder without config.json
    }
}
