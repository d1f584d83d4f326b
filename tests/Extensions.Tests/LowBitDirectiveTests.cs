using System.Globalization;
using Microsoft.DotNet.Interactive.Events;
using Workbench.Engine.Costs;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Quantization;
using Workbench.Engine.Tensors;
using Workbench.Interactive.Charts;
using Workbench.Interactive.Directives;

namespace Workbench.Interactive.Tests;

[Collection("formatters")]
public class LowBitDirectiveTests
{
    private static string F(double x, int digits) => x.ToString("F" + digits, CultureInfo.InvariantCulture);

    [Fact]
    public async Task Bitnet_on_stories260K_shows_the_engine_report_with_its_chart_and_shares_it()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!bitnet --model stories260K --format i2s");
        r.AssertSucceeded();
        var html = r.Html();

        // The same run through the engine directly: every number the cell shows must be the engine's.
        var direct = new BitNetRequest { Model = "stories260K", Format = "i2s" }.Run();
        Assert.True(direct.Lossless.Lossless);
        var q = direct.Decoder!;
        Assert.Contains("lossless</th><td", html);
        Assert.Contains("yes: int32 sums equal the scalar reference", html);
        Assert.Contains($"{F(q.PerplexityFp32, 2)} fp32 -&gt; {F(q.Perplexity, 2)} ternary", html);
        Assert.Contains($"{F(q.MeanKl, 3)} nats per token", html);
        Assert.Contains("workbench-plotly", html);         // the bytes chart
        Assert.Contains(">layers.0.wq<", html);            // the layer table
        Assert.Contains("workbench-progress", html);       // a live progress bar was shown
        var table = direct.ToDataFrame();                  // the layer table, beside each layer's lossless check
        Assert.Equal(direct.Layers.Count, table.Rows.Count);
        Assert.Equal(direct.Layers.Count, direct.Lossless.ToDataFrame().Rows.Count);
        Assert.Equal(q.MeanKl, (double)new[] { q }.ToDataFrame()["kl"][0]!);
        // stories260K: 5 layers x 7 linears, fp32 perplexity about 5.4 on TinyStories; ternary PTQ wrecks it.
        Assert.Equal(35, direct.Layers.Count);
        Assert.InRange(q.PerplexityFp32, 3, 10);
        Assert.True(q.Perplexity > 10 * q.PerplexityFp32);

        var shared = await k.SubmitAsync("bitnet.Decoder.MeanKl");
        shared.AssertSucceeded();
        Assert.Contains(shared.Events.OfType<ReturnValueProduced>(), e => Equals(e.Value, q.MeanKl));
        Assert.Same(Last.Of<TernaryReport>(LowBitDirectives.BitNet), Last.Value);
    }

    [Fact]
    public async Task Bitnet_quality_is_identical_across_formats_because_the_kernels_are_exact()
    {
        // I2_S, TL1 and TL2 pack the same ternary weights; lossless kernels give bit-identical outputs, so the quality
        // cost cannot depend on the format. A kernel with any error would show up as a KL difference here.
        using var k = new TestKernel();
        (await k.SubmitAsync("#!bitnet --model stories260K --format tl1 --as a")).AssertSucceeded();
        (await k.SubmitAsync("#!bitnet --model stories260K --format tl2 --as b")).AssertSucceeded();
        var cmp = await k.SubmitAsync("a.Decoder.MeanKl == b.Decoder.MeanKl && a.Decoder.Perplexity == b.Decoder.Perplexity && a.Lossless.Lossless && b.Lossless.Lossless");
        cmp.AssertSucceeded();
        Assert.Contains(cmp.Events.OfType<ReturnValueProduced>(), e => Equals(e.Value, true));
    }

    [Fact]
    public async Task Bitnet_bad_options_give_clear_errors_and_the_kernel_stays_alive()
    {
        using var k = new TestKernel();
        var format = await k.SubmitAsync("#!bitnet --model stories260K --format q4");
        Assert.Contains("--format 'q4' is not one of i2s, tl1 or tl2", format.Failure()!.Message);
        Assert.Contains("workbench-error", format.Html());

        var f32 = await k.SubmitAsync("#!bitnet --model stories260K --format f32");
        Assert.Contains("is not one of i2s, tl1 or tl2", f32.Failure()!.Message);

        var missing = await k.SubmitAsync("#!bitnet --model /nonexistent/model.bin --format i2s");
        Assert.Contains("neither a bundled model", missing.Failure()!.Message);

        // The ViT is quantized through the same path now, and judged by its top-1 accuracy.
        var vit = await k.SubmitAsync("#!bitnet --model vit-cifar10 --format i2s");
        vit.AssertSucceeded();
        Assert.Contains("top-1 accuracy", vit.Html());

        var threads = await k.SubmitAsync("#!bitnet --model stories260K --format i2s --threads 0");
        Assert.Contains("--threads '0' must be an integer in 1..", threads.Failure()!.Message);

        var variable = await k.SubmitAsync("#!bitnet --model stories260K --format i2s --as 9lives");
        Assert.Contains("--as '9lives' is not a C# identifier", variable.Failure()!.Message);

        var alive = await k.SubmitAsync("6 * 7");
        alive.AssertSucceeded();
        Assert.Contains(alive.Events.OfType<ReturnValueProduced>(), e => Equals(e.Value, 42));
    }

    [Fact]
    public async Task Gemv_compares_formats_against_their_bandwidth_floor()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!gemv --compare i2s,tl2,int8 --rows 256 --cols 768 --runs 3 --bandwidth 27");
        r.AssertSucceeded();
        var html = r.Html();
        Assert.Contains("workbench-plotly", html);
        Assert.Contains("bandwidth floor at 27.0 GB/s", html);
        var g = Last.Of<GemvComparison>(LowBitDirectives.Gemv);
        Assert.Equal([LowBitFormat.I2S, LowBitFormat.TL2, LowBitFormat.Int8], g.Results.Select(x => x.Format));
        Assert.False(g.BandwidthMeasured);
        foreach (var x in g.Results)
        {
            // Bytes from the cost model's independent layout arithmetic; the floor is bytes / 27 GB/s.
            Assert.Equal(LowBitFormats.WeightBytes(x.Format, 256, 768), x.WeightBytes);
            Assert.Equal(x.WeightBytes / 27e3, g.FloorUs(x.WeightBytes), 9);
            Assert.Contains($"its floor of {F(x.WeightBytes / 27e3, 1)} us", html);
            Assert.Contains($"median {F(x.MedianUs, 1)} us", html);
            Assert.Equal(3, x.Runs);
            Assert.True(x.MedianUs > 0);
        }
        Assert.Equal(2.0, g.Results[0].BitsPerWeight, 2);  // 256 x 768 is whole I2_S blocks: 2 bits + one scale
        Assert.InRange(g.Results[1].BitsPerWeight, 1.66, 1.68); // TL2: 5 bits per 3 weights

        var shared = await k.SubmitAsync("gemv.Results.Count");
        Assert.Contains(shared.Events.OfType<ReturnValueProduced>(), e => Equals(e.Value, 3));
    }

    [Fact]
    public async Task Gemv_single_format_measures_bandwidth_when_not_given()
    {
        using var k = new TestKernel();
        var r = await k.SubmitAsync("#!gemv --format tl1 --rows 128 --cols 256 --runs 2 --as one");
        r.AssertSucceeded();
        var g = Last.Of<GemvComparison>(LowBitDirectives.Gemv);
        Assert.Single(g.Results);
        Assert.True(g.BandwidthMeasured);
        Assert.InRange(g.ReadGBps, 0.1, 2000);
        Assert.Contains("measured now", r.Html());
    }

    [Fact]
    public async Task Gemv_bad_options_give_clear_errors_and_the_kernel_stays_alive()
    {
        using var k = new TestKernel();
        (string Magic, string Message)[] cases =
        [
            ("#!gemv --rows 64 --cols 64", "--format (f32, int8, i2s, tl1, tl2, f16, bf16, q8_0, q4_0, q5_0, q4_k, q5_k, q6_k, q2_k, q3_k, q4_1 or q5_1) or --compare"),
            ("#!gemv --format i2s --compare tl2 --rows 64 --cols 64", "not both"),
            ("#!gemv --format q8 --rows 64 --cols 64", "--format 'q8' is not one of f32, int8, i2s, tl1, tl2, f16, bf16, q8_0, q4_0, q5_0, q4_k, q5_k, q6_k, q2_k, q3_k, q4_1 or q5_1"),
            ("#!gemv --compare i2s,i2s --rows 64 --cols 64", "names a format twice"),
            ("#!gemv --format i2s --rows 0 --cols 64", "--rows '0' must be an integer in 1..1048576"),
            ("#!gemv --format i2s --rows 64 --cols 70000", "--cols '70000' must be an integer in 1..65536"),
            ("#!gemv --format i2s --rows 64 --cols 64 --runs x", "--runs 'x' is not an integer"),
            ("#!gemv --format i2s --rows 64 --cols 64 --isa avx9", "--isa 'avx9' is not one of scalar, v128, v256, v512"),
            ("#!gemv --format i2s --rows 64 --cols 64 --bandwidth -3", "--bandwidth '-3' must be a number of GB/s"),
            ("#!gemv --format i2s --rows 64 --cols 64 --threads 99", "--threads '99' must be an integer in 1.."),
        ];
        foreach (var (magic, message) in cases)
        {
            var r = await k.SubmitAsync(magic);
            Assert.True(r.Failure() is not null, magic + " should fail");
            Assert.Contains(message, r.Failure()!.Message);
            Assert.Null(r.Failure()!.Exception);
        }
        (await k.SubmitAsync("1 + 1")).AssertSucceeded();
    }

    [Fact]
    public void The_gemv_chart_draws_the_reference_kernels_when_LOWBIT_measured_the_shape()
    {
        GemvProbeResult Fake(LowBitFormat f, double us) =>
            new(f, 4096, 4096, 1, IsaPath.Scalar, 5, us, us, 0, 0, LowBitFormats.WeightBytes(f, 4096, 4096), LowBitFormats.WeightBytes(f, 4096, 4096) * 8.0 / (4096 * 4096), 2, 0);
        var g = new GemvComparison(4096, 4096, 1, [Fake(LowBitFormat.F32, 4000), Fake(LowBitFormat.I2S, 300), Fake(LowBitFormat.TL1, 400)], 27, false);
        var json = Plotly.NET.GenericChart.toFigureJson(LowBitCharts.Gemv(g));
        Assert.Contains("bitnet.cpp I2_S, one row at a time: 219 us", json);
        Assert.Contains("llama.cpp F32: 3452 us", json);
        Assert.Contains("\"type\":\"log\"", json);
        // 4096 x 4096 at 2 bits is 4 MiB + 4 bytes: 155.3 us at 27 GB/s (LOWBIT.md: "about 156 us").
        Assert.Equal(155.3, g.FloorUs(g.Results[1].WeightBytes), 1);
        Assert.Null(LowBitReference.Comparable(LowBitFormat.TL1, 4096, 4096));
        Assert.Empty(LowBitReference.For(100, 100));
        Assert.Equal(8, LowBitReference.ToDataFrame(2560, 6912).Rows.Count);
    }

    [Fact]
    public void The_I2S_block_view_decodes_the_packed_bytes_back_to_the_weights()
    {
        var t = AbsMeanTernary.Random(3, 300, seed: 5);
        var m = I2S.Pack(t);
        for (int row = 0; row < 3; row++)
            for (int block = 0; block < 4; block++) // 300 columns are padded to 512: 4 blocks of 128
            {
                var v = I2SBlockView.Of(m, row, block);
                Assert.Equal(32, v.Bytes.Count);
                foreach (var b in v.Bytes)
                    for (int j = 0; j < 4; j++)
                    {
                        int c = b.Columns[j];
                        Assert.Equal(block * 128 + b.Index + 32 * j, c);
                        Assert.Equal(b.Codes[j] - 1, b.Weights[j]);
                        Assert.Equal(c < 300 ? t.Values[row * 300 + c] : 0, b.Weights[j]); // padding columns hold weight 0
                    }
            }
        Assert.Throws<ArgumentOutOfRangeException>(() => I2SBlockView.Of(m, 0, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => I2SBlockView.Of(m, 3, 0));
    }

    [Fact]
    public void The_TL1_and_TL2_table_views_read_every_entry_back_as_its_formula_on_every_path()
    {
        var rng = new Random(3);
        var x = Enumerable.Range(0, 48).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var t = AbsMeanTernary.Random(64, 48, seed: 9);
        foreach (var path in Isa.SupportedPaths)
        {
            var a1 = (TL1.Activations)TL1.Pack(t).CreateActivationBuffer();
            a1.Quantize(x, path);
            for (int p = 0; p < 24; p++)
            {
                var v = LookupTables.TL1(a1, p);
                Assert.Equal(9, v.Entries.Count);
                Assert.All(v.Entries, e => Assert.Equal(e.Weights[0] * a1.Q[2 * p] + e.Weights[1] * a1.Q[2 * p + 1], e.TableValue));
                Assert.Equal(3 * 1 + 1 + 4, v.Entries.Single(e => e.Weights is [1, 1]).Index);
            }
            var a2 = (TL2.Activations)TL2.Pack(t).CreateActivationBuffer();
            a2.Quantize(x, path);
            for (int tr = 0; tr < 16; tr++)
            {
                var v = LookupTables.TL2(a2, tr);
                Assert.Equal(14, v.Entries.Count);
                Assert.All(v.Entries, e =>
                {
                    Assert.Equal(e.Index, 9 * e.Weights[0] + 3 * e.Weights[1] + e.Weights[2]);
                    Assert.Equal(e.Weights[0] * a2.Q[3 * tr] + e.Weights[1] * a2.Q[3 * tr + 1] + e.Weights[2] * a2.Q[3 * tr + 2], e.TableValue);
                });
            }
            Assert.Throws<ArgumentOutOfRangeException>(() => LookupTables.TL2(a2, 16));
        }
    }

    [Fact]
    public void The_absmean_chart_counts_the_ternary_values_of_a_real_matrix()
    {
        var d = (Decoder)ModelHub.Load("stories260K");
        var w = d.Model.Weights.Layers[0].W1;
        var t = AbsMeanTernary.Quantize(w, d.Config.MlpDim, d.Config.Dim);
        var (minus, zero, plus) = LowBitCharts.Fractions(t);
        // Independent count: |W| < s/2 rounds to 0 (ties are measure-zero for real weights).
        double s = w.Average(v => Math.Abs(v));
        Assert.Equal(w.Count(v => Math.Abs(v) < s / 2) / (double)w.Length, zero, 6);
        Assert.Equal(w.Count(v => v >= s / 2) / (double)w.Length, plus, 6);
        Assert.Equal(1.0, minus + zero + plus, 9);
        var json = Plotly.NET.GenericChart.toFigureJson(LowBitCharts.AbsMean(w, t, "layers.0.w1"));
        Assert.Contains("\"histogram\"", json);
        Assert.Contains(zero.ToString("P1", CultureInfo.InvariantCulture), json);
        Assert.Throws<ArgumentException>(() => LowBitCharts.AbsMean(w.AsSpan(1), t));
    }

    [Fact]
    public void Token_costs_of_the_2B_shapes_follow_the_bytes_per_weight()
    {
        var costs = BitNetTokenCosts.Analytic([LowBitFormat.F32, LowBitFormat.I2S, LowBitFormat.TL2], readGBps: 27);
        long layerParams = 30L * (2 * 2560 * 2560 + 2 * 640 * 2560 + 3 * 6912 * 2560), head = 128256L * 2560;
        Assert.Equal(4 * (layerParams + head), costs[0].WeightBytes);                  // fp32 everywhere
        Assert.Equal(layerParams / 4 + 30 * 7 * 4 + head + 4 * 128256, costs[1].WeightBytes); // 2 bits + scales, int8 head + row scales
        Assert.True(costs[2].WeightBytes < costs[1].WeightBytes);
        Assert.All(costs, c => Assert.True(c.MemoryUj > 10 * c.ArithmeticUj)); // reading weights dominates the energy
        Assert.Equal(costs[0].WeightBytes / 27e6, costs[0].FloorMsPerToken, 9);
        Assert.Throws<ArgumentOutOfRangeException>(() => BitNetTokenCosts.Analytic([LowBitFormat.I2S], 0));
        var json = Plotly.NET.GenericChart.toFigureJson(LowBitCharts.TokenEnergy(costs));
        Assert.Contains("DRAM", json);
    }

    [Fact]
    public void Cost_tables_show_the_engine_records_column_for_column()
    {
        var costs = BitNetTokenCosts.Analytic([LowBitFormat.I2S, LowBitFormat.TL2], readGBps: 27);
        var t = costs.ToDataFrame();
        Assert.Equal(2, t.Rows.Count);
        Assert.Equal(costs[1].WeightBytes / 1e6, (double)t["weight_mb_per_token"][1]!, 9);
        var m = new DecodeMeasurement(LowBitFormat.I2S, LowBitFormat.Int8, 30, 1, IsaPath.Scalar, 5, 100.0, 10.0, 0, 0);
        var token = LowBitCosts.ForToken(m);
        Assert.Equal(token.WeightBytesPerToken / 1e6, (double)new[] { token }.ToDataFrame()["weight_mb_per_token"][0]!, 9);
        var gemv = LowBitCosts.ForBitNetToken(LowBitFormat.TL1);
        Assert.Equal(gemv.Select(c => c.WeightBytes), LowBitCosts.ForBitNetToken(LowBitFormat.TL1).ToDataFrame()["weight_bytes"].Cast<long?>().Select(v => v!.Value));
    }
}
