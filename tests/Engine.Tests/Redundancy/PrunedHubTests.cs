using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;

namespace Workbench.Engine.Tests.Redundancy;

public sealed class PrunedHubTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wb-pruned-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_pruned_folder_loads_through_the_hub_and_generates_like_the_skipped_original()
    {
        var full = ModelHub.LoadDecoder("stories260K");
        var skips = new ModuleSkips(new HashSet<int> { 2, 3 }, new HashSet<int> { 4 });
        PrunedModel.Save(_dir, full.Model, skips);
        File.Copy(Bundled.Path("models/stories260K/tok512.bin"), Path.Combine(_dir, "tokenizer.bin"));
        var pruned = ModelHub.LoadDecoder(_dir);
        Assert.Equal(skips.Attention.Order(), pruned.Pruned.Attention.Order());
        Assert.Equal(skips.Mlp.Order(), pruned.Pruned.Mlp.Order());
        var want = full.Generate("Once upon a time", 40, skips: skips).Text;
        Assert.Equal(want, pruned.Generate("Once upon a time", 40).Text);
        Assert.NotEqual(full.Generate("Once upon a time", 40).Text, want);
    }
}
