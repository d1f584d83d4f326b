using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Workbench.Engine.Vision;

namespace Workbench.Engine.Tests.Vision;

public class VitModelTests
{
    [Fact]
    public void Logits_match_numpy_goldens()
    {
        var (golden, _) = VitTestData.Goldens();
        var logits = VitTestData.Model.Forward(VitTestData.SyntheticImage());
        Assert.Equal(10, golden.Length);
        for (int i = 0; i < 10; i++) Assert.True(Math.Abs(golden[i] - logits[i]) < 1e-4, $"logit {i}: {logits[i]} vs golden {golden[i]}");
    }

    [Fact]
    public void Cls_attention_pattern_hook_matches_goldens_per_block()
    {
        var (_, golden) = VitTestData.Goldens();
        var hooks = new Hooks().Capture(s => s.EndsWith(".attn.pattern"));
        VitTestData.Model.Forward(VitTestData.SyntheticImage(), new ForwardContext { Hooks = hooks });
        for (int l = 0; l < 4; l++)
        {
            var a = hooks.Get(HookNames.AttnPattern(l));
            Assert.Equal([8, 65, 65], a.Shape);
            for (int j = 0; j < 65; j++)
            {
                float mean = 0;
                for (int h = 0; h < 8; h++) mean += a.Data[(h * 65 + 0) * 65 + j];
                mean /= 8;
                Assert.True(Math.Abs(mean - golden[l][j]) < 1e-4, $"block {l} key {j}: {mean} vs {golden[l][j]}");
            }
        }
    }

    [Fact]
    public void QueryAttention_matches_goldens_on_the_state_entering_each_block()
    {
        var (_, golden) = VitTestData.Goldens();
        var m = VitTestData.Model;
        var state = m.Embed(VitTestData.SyntheticImage());
        var ctx = ForwardContext.Default;
        for (int l = 0; l < 4; l++)
        {
            var att = m.QueryAttention(l, state, 0);
            Assert.Equal(65, att.Length);
            Assert.Equal(1.0, att.Sum(), 4);
            for (int j = 0; j < 65; j++) Assert.True(Math.Abs(att[j] - golden[l][j]) < 1e-4, $"block {l} key {j}: {att[j]} vs {golden[l][j]}");
            m.RunBlock(l, state, ctx);
        }
    }

    [Fact]
    public void Hook_sites_fire_in_order_with_documented_shapes()
    {
        var seen = new List<(string, int[])>();
        var hooks = new Hooks();
        foreach (var site in HookNames.All(4)) hooks.Add(site, (p, _) => seen.Add((p.Site, p.Shape)));
        VitTestData.Model.Forward(VitTestData.SyntheticImage(), new ForwardContext { Hooks = hooks });
        Assert.Equal(HookNames.All(4).ToArray(), seen.Select(s => s.Item1).ToArray());
        Assert.All(seen, s => Assert.Equal(s.Item1.EndsWith("pattern") ? [8, 65, 65] : new[] { 65, 64 }, s.Item2));
    }

    [Fact]
    public void Zeroing_attn_out_equals_skipping_attention()
    {
        var m = VitTestData.Model;
        var img = VitTestData.SyntheticImage();
        var skipped = m.Forward(img, new ForwardContext { Skips = new ModuleSkips(new HashSet<int> { 2 }, new HashSet<int>()) });
        var zeroed = m.Forward(img, new ForwardContext { Hooks = new Hooks().Add(HookNames.AttnOut(2), (_, d) => d.Clear()) });
        var full = m.Forward(img);
        Assert.Equal(zeroed, skipped);
        Assert.NotEqual(full, skipped);
        var noMlp = m.Forward(img, new ForwardContext { Skips = new ModuleSkips(new HashSet<int>(), new HashSet<int> { 1 }) });
        var zeroMlp = m.Forward(img, new ForwardContext { Hooks = new Hooks().Add(HookNames.MlpOut(1), (_, d) => d.Clear()) });
        Assert.Equal(zeroMlp, noMlp);
    }

    [Fact]
    public void Config_and_card_describe_the_file()
    {
        var m = VitTestData.Model;
        Assert.Equal((4, 64, 128, 8), (m.Config.Layers, m.Config.Dim, m.Config.MlpDim, m.Config.Heads));
        Assert.Equal(141_962, m.Card.Parameters); // VIT.md
        Assert.Equal(239, m.Card.Tensors.Count);
    }

    [Fact]
    public void Wrong_image_size_names_the_parameter()
    {
        var e = Assert.Throws<ArgumentException>(() => VitTestData.Model.Forward(new byte[100]));
        Assert.Equal("imageHwc", e.ParamName);
    }

    [Fact]
    public void Corrupt_or_truncated_npz_throws_ModelFormatException()
    {
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            var bytes = File.ReadAllBytes(VitBundled.ModelPath);
            var truncated = Path.Combine(dir.FullName, "t.npz");
            File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
            var e = Assert.Throws<ModelFormatException>(() => VitModel.Load(truncated));
            Assert.Contains("t.npz", e.Message);

            var garbage = Path.Combine(dir.FullName, "g.npz");
            File.WriteAllBytes(garbage, new byte[1000]);
            Assert.Throws<ModelFormatException>(() => VitModel.Load(garbage));

            // A valid npz with one array: wrong count of arrays.
            var one = Path.Combine(dir.FullName, "one.npz");
            using (var zip = System.IO.Compression.ZipFile.Open(one, System.IO.Compression.ZipArchiveMode.Create))
            using (var s = zip.CreateEntry("arr_0.npy").Open())
                s.Write(Npy("<f4", "(2, 2)", new byte[16]));
            Assert.Contains("arrays", Assert.Throws<ModelFormatException>(() => VitModel.Load(one)).Message);
        }
        finally { dir.Delete(true); }
    }

    internal static byte[] Npy(string descr, string shape, byte[] data)
    {
        var header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        header = header.PadRight((header.Length + 11) / 64 * 64 + 64 - 11) + "\n";
        var h = System.Text.Encoding.Latin1.GetBytes(header);
        return [0x93, .. "NUMPY"u8, 1, 0, (byte)(h.Length & 0xff), (byte)(h.Length >> 8), .. h, .. data];
    }
}
