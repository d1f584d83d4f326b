namespace Workbench.Engine.Tests;

/// <summary>The bundled files' sha256 check and the stamp that lets later starts skip it.</summary>
public class BundledTests
{
    [Fact]
    public void A_verified_copy_in_the_build_output_gets_a_stamp_of_its_hash_length_and_time()
    {
        // The tests run from their build output, which holds a copy of models/ (the engine's own folder).
        var full = Bundled.Path("models/stories260K/tok512.bin");
        Assert.StartsWith(Path.GetFullPath(AppContext.BaseDirectory), Path.GetFullPath(full));
        var stamp = File.ReadAllText(full + ".verified").Split(' ');
        var info = new FileInfo(full);
        Assert.Equal("037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312", stamp[0]);
        Assert.Equal(info.Length.ToString(), stamp[1]);
        Assert.Equal(info.LastWriteTimeUtc.Ticks.ToString(), stamp[2]);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(full))), stamp[0]);
    }
}
