using System.Numerics.Tensors;
using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Workbench.Engine.Quantization;
using Workbench.Engine.Redundancy;
using Workbench.Engine.Requests;
using Workbench.Engine.Tests.Models;
using Workbench.Engine.Tests.Vision;
using Workbench.Engine.Vision;
using Xunit.Abstractions;

namespace Workbench.Engine.Tests.Redundancy;

/// <summary>
/// Importance, layer drop and ternary quantization on the image models, through the task of the loaded model
/// (<see cref="ModelTask"/>): block importance on the goldens' fixed inputs against 1 - cos of transformers' own
/// hidden states (data/goldens/arch/vit and llava); the layer-by-layer path bit for bit the sequence path on images;
/// a drop of nothing is KL 0 exactly; bitnet reaches every ternary linear through RunLinear; options that do not apply
/// are refused naming them.
/// </summary>
public class ImageTaskTests(ITestOutputHelper output)
{
    private static string Folder(string family) => Path.GetDirectoryName(Bundled.Path($"data/goldens/arch/{family}/config.json"))!;

    /// <summary>Mean over rows of 1 - cos(h_l, h_{l+1}) in double, h_0 = embed, h_{l+1} = layer_out[l]: transformers' numbers, not ours.</summary>
    private static double[] GoldenBlockImportance(NpzFile golden, out int rows)
    {
        var embed = golden.ReadF32("embed");
        var layerOut = golden.ReadF32("layer_out");
        var shape = golden.Get("layer_out").Shape;
        int layers = (int)shape[0], dim = (int)shape[^1];
        rows = embed.Length / dim;
        var result = new double[layers];
        for (int l = 0; l < layers; l++)
        {
            var before = l == 0 ? embed.AsSpan() : layerOut.AsSpan((l - 1) * rows * dim, rows * dim);
            var after = layerOut.AsSpan(l * rows * dim, rows * dim);
            double sum = 0;
            for (int r = 0; r < rows; r++)
            {
                double xy = 0, xx = 0, yy = 0;
                for (int c = 0; c < dim; c++)
                {
                    double x = before[r * dim + c], y = after[r * dim + c];
                    xy += x * y; xx += x * x; yy += y * y;
                }
                sum += 1 - xy / Math.Sqrt(xx * yy);
            }
            result[l] = sum / rows;
        }
        return result;
    }

    [Theory]
    [InlineData("vit")]
    [InlineData("llava")]
    public void Block_importance_on_the_golden_input_is_one_minus_cos_of_transformers_hidden_states(string family)
    {
        var loaded = ModelHub.Load(Folder(family));
        using var golden = NpzFile.Open(Path.Combine(Folder(family), "golden.npz"));
        var pixels = VisionGoldenTests.Pixels(golden);
        ModelInput input = family == "llava" ? ModelInput.Of(VisionGoldenTests.LlavaPrompt(), pixels) : pixels;
        var want = GoldenBlockImportance(golden, out int rows);
        var got = Importance.Measure(loaded.Model, [input]);
        Assert.Equal(rows, got.Tokens); // every row of the residual stream: patches + CLS, or image + text tokens
        Assert.Equal(want.Length, got.Layers);
        for (int l = 0; l < want.Length; l++)
        {
            output.WriteLine($"{family} block {l}: engine {got.Block[l]:F8}, transformers {want[l]:F8}, |diff| {Math.Abs(got.Block[l] - want[l]):E2}");
            Assert.True(Math.Abs(got.Block[l] - want[l]) <= 1e-6, $"block {l}: {got.Block[l]} against transformers' {want[l]}");
        }
        // The scores are not all alike (a test that could not fail would pass on any constant).
        Assert.True(want.Max() - want.Min() > 1e-3);
    }

    [Theory]
    [InlineData("vit")]
    [InlineData("llava")]
    [InlineData("vit-cifar10")]
    public void Layer_by_layer_importance_on_images_equals_the_sequence_path_bit_for_bit(string name)
    {
        var loaded = ModelHub.Load(name.StartsWith("vit-") ? name : Folder(name));
        var task = Assert.IsAssignableFrom<ImageTask>(ModelTask.Of(loaded));
        var inputs = ImageInputs.Prepare(task, samples: 3, seed: 4).Calibration.Inputs;
        Assert.Equal(3, inputs.Count);
        var skips = new ModuleSkips(new HashSet<int> { 1 }, new HashSet<int>());
        foreach (var s in new[] { ModuleSkips.None, skips })
        {
            var streamed = Importance.Measure(loaded.Model, inputs, s);
            var whole = Importance.Measure(loaded.Model, inputs, s, layerByLayer: false);
            Assert.Equal(whole.Block, streamed.Block);
            Assert.Equal(whole.Attention, streamed.Attention);
            Assert.Equal(whole.Mlp, streamed.Mlp);
            Assert.Equal(whole.Tokens, streamed.Tokens);
        }
    }

    [Theory]
    [InlineData("vit-cifar10", true)]
    [InlineData("vit", false)]
    [InlineData("llava", false)]
    public void Dropping_nothing_is_kl_zero_and_dropping_a_block_is_measured(string name, bool labelled)
    {
        var model = name.StartsWith("vit-") ? name : Folder(name);
        DropRun Drop(int k) => Assert.IsType<DropRun>(new DropRequest
        {
            Model = model, Granularity = "block", Count = k, NoSpeed = true, Samples = 4, Seed = 2,
            Evaluation = new EvaluationOptions { Images = 24 },
        }.Run());
        var none = Drop(0);
        Assert.Equal(0.0, none.Report.Quality.Kl);
        Assert.Equal(1.0, none.Report.Quality.Top1Agreement);
        Assert.Equal(none.Report.Quality.AccuracyFull, none.Report.Quality.Accuracy);
        Assert.Equal(labelled, none.Report.Quality.Accuracy is not null);
        Assert.NotNull(none.EvaluationImages);
        Assert.Equal(24, none.EvaluationImages!.Inputs.Count);

        var one = Drop(1);
        var q = one.Report.Quality;
        Assert.Single(one.Plan.Dropped);
        Assert.Equal(one.Plan.Scores[0].Ranked(Granularity.Block)[0].Module, one.Plan.Dropped[0]); // the least important block
        Assert.True(q.Kl > 0 && double.IsFinite(q.Kl!.Value), $"KL {q.Kl}");
        Assert.InRange(q.Top1Agreement!.Value, 0, 1);
        Assert.Null(q.Perplexity);
        // The judged positions: one class distribution per image, or every text position of every prompt.
        var task = (ImageTask)ModelTask.Of(ModelHub.Load(model));
        Assert.Equal(one.EvaluationImages!.Inputs.Sum(i => task.Judged(i).Rows.Length), q.Positions);
        if (labelled)
        {
            // accuracy of the full model recomputed here through the model's own forward pass
            var eval = one.EvaluationImages!;
            var classes = task.ClassIndices(eval.Images)!;
            double acc = eval.Inputs.Select((inp, i) => TensorPrimitives.IndexOfMax(task.Model.Forward(inp, new ForwardContext()).Output) == classes[i] ? 1.0 : 0).Average();
            Assert.Equal(acc, q.AccuracyFull!.Value, 12);
        }
    }

    [Theory]
    [InlineData("vit", "i2s")]
    [InlineData("llava", "tl2")]
    public void Bitnet_on_the_image_models_reaches_every_ternary_linear_and_its_quality_is_finite(string family, string format)
    {
        var report = new BitNetRequest { Model = Folder(family), Format = format, Images = Bundled.Path("data/images/chelsea.png") + "," + Bundled.Path("data/images/rocket.jpg") }.Run();
        Assert.True(report.Lossless.Lossless);
        // every quantized linear saw tokens through ForwardContext.RunLinear (the override keyed by its weight)
        var model = ModelHub.Load(Folder(family)).Model;
        Assert.Equal(model.BlockLinears.Count, report.Layers.Count);
        Assert.All(report.Lossless.Layers, l => Assert.True(l.TokensChecked > 0, $"{l.Name} was never reached"));
        if (family == "vit")
        {
            var c = Assert.IsType<ClassifierQuality>(report.Classifier);
            Assert.Equal("image classifier", report.Kind);
            Assert.Equal(2, c.Images);
            Assert.Null(c.Accuracy); // photos carry no labels
            Assert.True(c.MeanKl > 0 && double.IsFinite(c.MeanKl!.Value));
        }
        else
        {
            var v = Assert.IsType<VisionLanguageQuality>(report.VisionLanguage);
            Assert.Equal("vision-language", report.Kind);
            Assert.Equal(2 * (VisionLanguageTask.IdsBefore + VisionLanguageTask.IdsAfter), v.Positions);
            Assert.True(v.MeanKl > 0 && double.IsFinite(v.MeanKl));
            Assert.InRange(v.Top1Agreement, 0, 1);
        }
    }

    [Theory]
    [InlineData("vit-cifar10", "--seq")]
    [InlineData("vit-cifar10", "--corpus")]
    [InlineData("llava", "--seq")]
    [InlineData("stories260K", "--images")]
    [InlineData("vit-cifar10", "--images")]
    public void Options_that_do_not_apply_are_refused_naming_them(string name, string option)
    {
        var model = name is "llava" ? Folder(name) : name;
        var request = new RedundancyRequest
        {
            Model = model, Granularity = "block",
            Seq = option == "--seq" ? 16 : null,
            Corpus = option == "--corpus" ? "persuasion" : null,
            Images = option == "--images" ? (name == "stories260K" ? Path.Combine(Bundled.Root, "data", "images") : "/no/such/images") : null,
        };
        Assert.Equal(option, Assert.Throws<OptionException>(request.Validate).Option);
        Assert.Equal(option, Assert.Throws<OptionException>(() => request.Run()).Option);
    }

    [Fact]
    public void A_drop_on_one_image_is_refused_and_bitnet_images_on_text_too()
    {
        var drop = new DropRequest { Model = "vit-cifar10", Granularity = "block", Count = 1, NoSpeed = true, Images = Bundled.Path("data/images/coffee.png") };
        Assert.Equal("--images", Assert.Throws<OptionException>(() => drop.Run()).Option);
        var bitnet = new BitNetRequest { Model = "stories260K", Format = "i2s", Images = Path.Combine(Bundled.Root, "data", "images") };
        Assert.Equal("--images", Assert.Throws<OptionException>(() => bitnet.Run()).Option);
    }

    [Fact]
    public void Image_sets_read_folders_files_and_cifar_and_split_by_the_seed()
    {
        var photos = ImageSet.Load(Path.Combine(Bundled.Root, "data", "images"));
        Assert.Equal(["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"], photos.Names);
        Assert.Null(photos.Labels);
        Assert.Equal(224 * 224 * 3, photos.Pixels(1, 224).Length);
        Assert.Equal(VitImage.LoadSquare(Bundled.Path("data/images/chelsea.png"), 48), photos.Pixels(1, 48));

        var cifar = ImageSet.Load(VitBundled.Cifar10Dir);
        Assert.Equal(1000, cifar.Count);
        Assert.Equal(VitModel.ClassNames[VitTestData.Set.Labels[500]], cifar.Labels![500]);
        Assert.Equal(VitTestData.Set.Pixels(7).ToArray(), cifar.Pixels(7, 32)); // the native side is the image itself
        Assert.Equal(64 * 64 * 3, cifar.Pixels(7, 64).Length);

        var (cal, held) = cifar.Split(3);
        Assert.Equal(500, cal.Count);
        Assert.Equal(500, held.Count);
        Assert.Empty(cal.Names.Intersect(held.Names));
        Assert.Equal(cal.Names, cifar.Split(3).Calibration.Names);
        Assert.NotEqual(cal.Names, cifar.Split(4).Calibration.Names);
        // mixing photos with a labelled set drops the labels
        Assert.Null(ImageSet.Load(Bundled.Path("data/images/coffee.png") + "," + VitBundled.Cifar10Dir).Labels);
    }

    [Fact]
    public void Accuracy_needs_labels_that_name_the_models_classes()
    {
        var cifar = ImageSet.Cifar10();
        var ours = (ImageTask)ModelTask.Of(ModelHub.Load("vit-cifar10"));
        var golden = (ImageTask)ModelTask.Of(ModelHub.Load(Folder("vit")));
        Assert.NotNull(ours.ClassIndices(cifar));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"LABEL_{i}"), ((ImageClassifier)golden.Loaded).Model.Labels!);
        Assert.Null(golden.ClassIndices(cifar)); // id2label LABEL_0..9 are not CIFAR-10's classes
    }
}
