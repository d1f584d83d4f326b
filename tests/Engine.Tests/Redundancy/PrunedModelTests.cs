using System.Text.Json.Nodes;
using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Workbench.Engine.Redundancy;

namespace Workbench.Engine.Tests.Redundancy;

public class PrunedModelTests
{
    private static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "wb-pruned-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    [Theory]
    [InlineData("stories260K")]
    [InlineData("babyllama")]
    public void Saved_pruned_model_loads_back_with_the_same_outputs(string name)
    {
        var m = (Decoder)ModelHub.Load(name);
        var skips = Modules.ToSkips([new ModuleRef(1, ModuleKind.Attention), new ModuleRef(3, ModuleKind.Mlp), new ModuleRef(4, ModuleKind.Block)]);
        var dir = TempDir();
        try
        {
            PrunedModel.Save(dir, m.Model, skips);
            var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
            Assert.Equal([false, true, false, false, true], cfg["drop_attn_list"]!.AsArray().Select(x => x!.GetValue<bool>()));
            Assert.Equal([false, false, false, true, true], cfg["drop_mlp_list"]!.AsArray().Select(x => x!.GetValue<bool>()));
            using (var st = SafetensorsFile.Open(Path.Combine(dir, "model.safetensors")))
            {
                Assert.False(st.Contains("model.layers.1.self_attn.q_proj.weight"));
                Assert.False(st.Contains("model.layers.3.mlp.down_proj.weight"));
                Assert.True(st.Contains("model.layers.3.self_attn.o_proj.weight"));
            }
            var (loaded, loadedSkips) = PrunedModel.Load(dir);
            Assert.Equal(skips.Attention.Order(), loadedSkips.Attention.Order());
            Assert.Equal(skips.Mlp.Order(), loadedSkips.Mlp.Order());
            var ids = Shared.Calibration(m, 1, 40)[0];
            var want = m.Model.Forward(ids, 0, new ForwardContext { Skips = skips }).Logits;
            Assert.Equal(want, loaded.Forward(ids, 0, new ForwardContext { Skips = loadedSkips }).Logits);
            // dropped modules load as zero weights, so even without the skips the outputs are the pruned ones (pre-norm)
            var noSkips = loaded.Forward(ids, 0, new ForwardContext()).Logits;
            Assert.Equal(want.Length, noSkips.Length);
            for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], noSkips[i], 4);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Llm_drop_index_lists_are_read_and_bad_lists_are_reported()
    {
        var m = Shared.Stories;
        var dir = TempDir();
        try
        {
            var skips = Modules.ToSkips([new ModuleRef(2, ModuleKind.Attention)]);
            PrunedModel.Save(dir, m.Model, skips);
            var path = Path.Combine(dir, "config.json");
            var cfg = JsonNode.Parse(File.ReadAllText(path))!;
            cfg["drop_attn_list"] = new JsonArray(2);
            cfg["drop_mlp_list"] = new JsonArray();
            File.WriteAllText(path, cfg.ToJsonString());
            var (_, s) = PrunedModel.Load(dir);
            Assert.Equal([2], s.Attention);
            Assert.Empty(s.Mlp);

            cfg["drop_attn_list"] = new JsonArray(9);
            File.WriteAllText(path, cfg.ToJsonString());
            var e = Assert.Throws<ModelFormatException>(() => PrunedModel.Load(dir));
            Assert.Contains("drop_attn_list", e.Message);

            cfg["drop_attn_list"] = new JsonArray(); // the file lacks layer 2's attention, which the config no longer drops
            File.WriteAllText(path, cfg.ToJsonString());
            Assert.Contains("model.layers.2", Assert.Throws<ModelFormatException>(() => PrunedModel.Load(dir)).Message);
        }
        finally { Directory.Delete(dir, true); }
        Assert.Equal("folder", Assert.Throws<ArgumentException>(() => PrunedModel.Load("/nonexistent")).ParamName);
    }
}
