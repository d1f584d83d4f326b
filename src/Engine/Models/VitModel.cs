using System.Numerics.Tensors;
using Workbench.Engine.Formats;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Models;

/// <summary>
/// A Vision Transformer in libaohang/ViT-NumPy's npz layout (the bundled CIFAR-10 model, models/vit-cifar10, VIT.md):
/// PxP patches of an RGB image -> patch tokens plus CLS, learned absolute positions added at embedding time, pre-norm
/// blocks (LayerNorm, per-head q/k/v projections stacked into one matrix, GELU-tanh MLP), final LayerNorm, linear head
/// on CLS. Every size comes from the arrays' shapes. It runs on the shared kernels (linear layers through
/// <see cref="ForwardContext.RunLinear"/>, so a low-bit override replaces them as in every other model). Rows carry
/// their positions already added, so dropping rows needs nothing else.
/// </summary>
public sealed class VitModel : ITransformerModel
{
    // The bundled CIFAR-10 checkpoint's sizes, for code that works on that data set (Vision, the token-drop notebooks).
    public const int ImageSize = 32, PatchSize = 4, Grid = 8, Patches = 64, Tokens = 65, Channels = 3, Classes = 10;
    public const int PixelsPerImage = ImageSize * ImageSize * Channels;
    private static readonly double[] CifarMean = [0.4914, 0.4822, 0.4465];
    private static readonly double[] CifarStd = [0.2023, 0.1994, 0.2010];

    public static IReadOnlyList<string> ClassNames { get; } =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    public ModelConfig Config { get; }
    public ModelCard Card { get; }
    public string Path { get; }
    /// <summary>This model's image side, patch side and patch grid (side / patch).</summary>
    public int Image { get; }
    public int Patch { get; }
    public int PatchGrid => Image / Patch;

    private readonly int _d, _heads, _headDim, _mlp, _patchVec, _classes;
    private readonly float[] _patchW;  // [d out, patchVec in]: patch vectors in (channel, dy, dx) order, or (dy, dx, channel) when _channelsLast
    private readonly bool _channelsLast; // the npz's own order (kept, so its numbers stay bit for bit what they were)
    private readonly float[]? _patchB; // HF ViT's conv bias; none in the npz and in CLIP
    private readonly float[] _cls;     // [d]
    private readonly float[] _pos;     // [tokens, d]
    private readonly float[]? _preG, _preB; // CLIP's pre_layrnorm over the embeddings; none in ViT
    private readonly Block[] _blocks;
    private readonly float[]? _lnfG, _lnfB, _headW, _headB; // absent in a vision tower (CLIP inside LLaVA)
    private readonly double[] _mean, _std; // how uint8 pixels become the model's input: (x / 255 - mean) / std per channel
    private readonly Workspaces _work = new(Slot.Count);

    private static class Slot { public const int H = 0, Q = 1, K = 2, V = 3, Cat = 4, O = 5, P = 6, M = 7, Patches = 8, Normed = 9, Count = 10; }

    internal sealed record Block(
        float[] Ln1G, float[] Ln1B, float[] Wq, float[] Bq, float[] Wk, float[] Bk, float[] Wv, float[] Bv,
        float[] Wo, float[] Bo, float[] Ln2G, float[] Ln2B, float[] W1, float[] B1, float[] W2, float[] B2);

    /// <summary>Everything a ViT-shaped model holds, in the engine's convention, whichever file it came from.</summary>
    internal sealed record Parts(ModelConfig Config, ModelCard Card, int Patch, float[] PatchW, float[]? PatchB, float[] Cls, float[] Pos,
        float[]? PreNormG, float[]? PreNormB, Block[] Blocks, float[]? FinalG, float[]? FinalB, float[]? HeadW, float[]? HeadB,
        double[] Mean, double[] Std, string NormSource = "CIFAR-10's mean/std", bool ChannelsLast = false, IReadOnlyList<string>? Labels = null);

    private sealed record NpyArray(string Name, int[] Shape, float[] Data);

    internal VitModel(string path, Parts p)
    {
        Path = path;
        Config = p.Config;
        Card = p.Card;
        Patch = p.Patch;
        _d = p.Config.Dim;
        _heads = p.Config.Heads;
        _headDim = p.Config.HeadDim;
        _mlp = p.Config.MlpDim;
        _patchVec = Channels * Patch * Patch;
        int tokens = p.Config.MaxSeq, grid = (int)Math.Round(Math.Sqrt(tokens - 1));
        Image = grid * Patch;
        _classes = p.HeadW is null ? 0 : p.Config.Vocab;
        (_patchW, _patchB, _cls, _pos, _preG, _preB, _blocks) = (p.PatchW, p.PatchB, p.Cls, p.Pos, p.PreNormG, p.PreNormB, p.Blocks);
        (_lnfG, _lnfB, _headW, _headB, _mean, _std) = (p.FinalG, p.FinalB, p.HeadW, p.HeadB, p.Mean, p.Std);
        PixelNormSource = p.NormSource;
        _channelsLast = p.ChannelsLast;
        Labels = p.Labels is { } names && names.Count == _classes ? names : null;
    }

    /// <summary>The name of each class the head scores (the npz: CIFAR-10's; a Hugging Face folder: config.json's id2label), or null for a tower or when the file names none.</summary>
    public IReadOnlyList<string>? Labels { get; }

    /// <summary>The npz layout: arrays in np.savez order (see the class summary); every size from the shapes.</summary>
    private static Parts NpzParts(string path, List<NpyArray> a)
    {
        if (a.Count < 3 + 4) throw new ModelFormatException(path, "arrays", 0, $"a ViT needs at least 7 arrays (patch embedding, cls, positions, final norm, head), found {a.Count}");
        NpyArray At(int i) => i < a.Count ? a[i] : throw new ModelFormatException(path, $"arr_{i}", 0, $"missing: the file has {a.Count} arrays");
        int Dim(int i, int axis) => At(i).Shape.Length > axis ? At(i).Shape[axis] : throw new ModelFormatException(path, $"arr_{i}.shape", 0, $"has {At(i).Shape.Length} axes, axis {axis} expected");
        float[] Get(int i, params int[] shape)
        {
            var arr = At(i);
            if (!arr.Shape.SequenceEqual(shape))
                throw new ModelFormatException(path, $"arr_{i}.shape", 0, $"expected ({string.Join(", ", shape)}), found ({string.Join(", ", arr.Shape)})");
            return arr.Data;
        }

        // Sizes from the shapes: arr_0 patch embedding (P*P*3, d); arr_2 positions (1, 1 + grid^2, d); the first head's
        // Wq (hd, d) gives the head width; each block holds 2 + 6 * heads + 8 arrays.
        int patchVec = Dim(0, 0), d = Dim(0, 1);
        int patch = (int)Math.Round(Math.Sqrt(patchVec / (double)Channels));
        if (d <= 0 || patch <= 0 || patch * patch * Channels != patchVec)
            throw new ModelFormatException(path, "arr_0.shape", 0, $"({patchVec}, {d}) is not (patch * patch * 3, dim)");
        int tokens = Dim(2, 1);
        int grid = (int)Math.Round(Math.Sqrt(tokens - 1));
        if (tokens < 2 || grid * grid != tokens - 1) throw new ModelFormatException(path, "arr_2.shape", 0, $"{tokens} positions is not 1 + a square number of patches");
        int headDim = Dim(5, 0);
        if (headDim <= 0 || d % headDim != 0) throw new ModelFormatException(path, "arr_5.shape", 0, $"head width {headDim} does not divide dim {d}");
        int heads = d / headDim;
        int perBlock = 10 + 6 * heads;
        if ((a.Count - 7) % perBlock != 0 || a.Count - 7 < perBlock)
            throw new ModelFormatException(path, "arrays", 0, $"expected 7 + layers x {perBlock} arrays for {heads} heads, found {a.Count}");
        int layers = (a.Count - 7) / perBlock;
        int mlp = Dim(3 + perBlock - 4, 0);
        int tail = 3 + layers * perBlock;
        int classes = Dim(tail + 2, 0);

        // (in, out) with in = (dy, dx, channel): transposed to [out, in], the input order kept (ChannelsLast).
        var pw = Get(0, patchVec, d);
        var patchW = new float[d * patchVec];
        for (int j = 0; j < patchVec; j++)
            for (int o = 0; o < d; o++) patchW[o * patchVec + j] = pw[j * d + o];
        var blocks = new Block[layers];
        for (int l = 0; l < layers; l++)
        {
            int b = 3 + perBlock * l, rest = b + 2 + 6 * heads;
            // Stack the per-head (hd, d) projections row-wise: output features [hd h, hd (h + 1)) belong to head h.
            float[] Stack(int offset, out float[] bias)
            {
                var w = new float[d * d];
                bias = new float[d];
                for (int h = 0; h < heads; h++)
                {
                    Get(b + 2 + 6 * h + offset, headDim, d).CopyTo(w, h * headDim * d);
                    Get(b + 2 + 6 * h + offset + 1, 1, headDim).CopyTo(bias, h * headDim);
                }
                return w;
            }
            var wq = Stack(0, out var bq);
            var wk = Stack(2, out var bk);
            var wv = Stack(4, out var bv);
            blocks[l] = new Block(Get(b, d), Get(b + 1, d), wq, bq, wk, bk, wv, bv,
                Get(rest, d, d), Get(rest + 1, 1, d), Get(rest + 2, d), Get(rest + 3, d),
                Get(rest + 4, mlp, d), Get(rest + 5, 1, mlp), Get(rest + 6, d, mlp), Get(rest + 7, 1, d));
        }
        var config = new ModelConfig(ModelFamily.Vit, Layers: layers, Dim: d, MlpDim: mlp, Heads: heads, KvHeads: heads,
            Vocab: classes, MaxSeq: tokens, PreNorm: true, Mlp: MlpKind.GeluTanh, NormEps: 1e-5f);
        long parameters = a.Sum(x => (long)x.Data.Length);
        var card = new ModelCard(System.IO.Path.GetFileNameWithoutExtension(path) == "vit_cifar10" ? "vit-cifar10" : System.IO.Path.GetFileNameWithoutExtension(path),
            "libaohang/ViT-NumPy (MIT), Saved models/vit_cifar10.npz", "npz", config,
            parameters, parameters * sizeof(float),
            a.Select((x, i) => new TensorCardEntry($"arr_{i} {ParamName(i, layers, perBlock)}", "F32", x.Shape.Select(s => (long)s).ToArray(), 4L * x.Data.Length)).ToList());
        return new Parts(config, card, patch, patchW, null, Get(1, 1, 1, d), Get(2, 1, tokens, d), null, null, blocks,
            Get(tail, d), Get(tail + 1, d), Get(tail + 2, classes, d), Get(tail + 3, 1, classes), CifarMean, CifarStd, ChannelsLast: true, Labels: classes == Classes ? ClassNames : null);
    }

    /// <summary>Loads the npz (float32 arrays in np.savez order). Bad files throw ModelFormatException.</summary>
    public static VitModel Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"ViT weights not found: {path}", path);
        List<NpyArray> arrays;
        using (var npz = NpzFile.Open(path))
        {
            // Names and shapes are checked before any data is read; np.savez names members arr_0..arr_N, ordered by
            // the number, not by how the zip lists them.
            foreach (var t in npz.Tensors)
            {
                ArrIndex(path, t.Name);
                if (t.Shape.Any(s => s > int.MaxValue))
                    throw new ModelFormatException(path, t.Name + ".npy.shape", 0, $"dimension of ({string.Join(", ", t.Shape)}) exceeds {int.MaxValue}");
            }
            arrays = npz.Tensors.OrderBy(t => ArrIndex(path, t.Name))
                .Select(t => new NpyArray(t.Name, t.Shape.Select(s => (int)s).ToArray(), npz.ReadF32(t.Name)))
                .ToList();
        }
        return new VitModel(path, NpzParts(path, arrays));
    }

    public static VitModel LoadBundled() => Load(Bundled.Path("models/vit-cifar10/vit_cifar10.npz"));

    private static int ArrIndex(string path, string name) =>
        name.StartsWith("arr_", StringComparison.Ordinal) && int.TryParse(name.AsSpan(4), System.Globalization.NumberStyles.None, null, out var i) ? i
        : throw new ModelFormatException(path, name + ".npy", 0, "member is not named arr_<index> as np.savez writes");

    private static string ParamName(int i, int layers, int perBlock)
    {
        if (i == 0) return "patch_embed.W";
        if (i == 1) return "cls_token";
        if (i == 2) return "pos_embed";
        int tail = 3 + layers * perBlock;
        if (i >= tail) return (i - tail) switch { 0 => "final_ln.gamma", 1 => "final_ln.beta", 2 => "head.W", _ => "head.b" };
        int l = (i - 3) / perBlock, r = (i - 3) % perBlock, heads = (perBlock - 10) / 6;
        if (r == 0) return $"block{l}.ln1.gamma";
        if (r == 1) return $"block{l}.ln1.beta";
        if (r < 2 + 6 * heads) return $"block{l}.head{(r - 2) / 6}.{((r - 2) % 6) switch { 0 => "Wq", 1 => "bq", 2 => "Wk", 3 => "bk", 4 => "Wv", _ => "bv" }}";
        return (r - 2 - 6 * heads) switch
        {
            0 => $"block{l}.attn_out.W", 1 => $"block{l}.attn_out.b", 2 => $"block{l}.ln2.gamma", 3 => $"block{l}.ln2.beta",
            4 => $"block{l}.mlp.fc1.W", 5 => $"block{l}.mlp.fc1.b", 6 => $"block{l}.mlp.fc2.W", _ => $"block{l}.mlp.fc2.b",
        };
    }

    public IReadOnlyList<NamedLinear> BlockLinears => _linears ??= _blocks.SelectMany((b, i) => new NamedLinear[]
    {
        new($"blocks.{i}.wq", i, b.Wq, _d, _d), new($"blocks.{i}.wk", i, b.Wk, _d, _d), new($"blocks.{i}.wv", i, b.Wv, _d, _d),
        new($"blocks.{i}.wo", i, b.Wo, _d, _d), new($"blocks.{i}.fc1", i, b.W1, _mlp, _d), new($"blocks.{i}.fc2", i, b.W2, _d, _mlp),
    }).ToArray();
    private NamedLinear[]? _linears;

    public IEnumerable<float[]> ParameterArrays => new[] { _patchW, _patchB, _cls, _pos, _preG, _preB, _lnfG, _lnfB, _headW, _headB }.OfType<float[]>()
        .Concat(_blocks.SelectMany(b => new[] { b.Ln1G, b.Ln1B, b.Bq, b.Bk, b.Bv, b.Bo, b.Ln2G, b.Ln2B, b.B1, b.B2 }))
        .Concat(BlockLinears.Select(l => l.Weight));

    // ---------------------------------------------------------------- forward

    public SequenceState Embed(ModelInput input, ForwardContext ctx) => input switch
    {
        ImageInput img => Embed(img.PixelsHwc, ctx),
        PixelInput px => EmbedPixels(px, ctx),
        _ => throw new ArgumentException($"{Card.Name} is an image model: it takes an image, not {input.GetType().Name}", nameof(input)),
    };

    /// <summary>The channel means and standard deviations that turn uint8 pixels into this model's input.</summary>
    public IReadOnlyList<double> PixelMean => _mean;
    public IReadOnlyList<double> PixelStd => _std;
    /// <summary>Where <see cref="PixelMean"/> and <see cref="PixelStd"/> come from (a file, or the defaults used).</summary>
    public string PixelNormSource { get; }

    /// <summary>A uint8 HWC image of this model's size as its normalised CHW input: (x / 255 - mean) / std per channel.</summary>
    public PixelInput Normalize(ReadOnlySpan<byte> imageHwc)
    {
        int pixels = Image * Image * Channels;
        if (imageHwc.Length != pixels)
            throw new ArgumentException($"image must be {Image}x{Image}x{Channels} uint8 HWC ({pixels} bytes), got {imageHwc.Length} bytes", nameof(imageHwc));
        var chw = new float[pixels];
        int plane = Image * Image;
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < Channels; c++)
                chw[c * plane + i] = (float)((imageHwc[i * Channels + c] / 255.0 - _mean[c]) / _std[c]);
        return new PixelInput(chw, Image, Image);
    }

    /// <summary>Patch-embeds a uint8 HWC image: 1 + grid^2 rows (CLS, then patches row-major), positions added. Fires "embed".</summary>
    public SequenceState Embed(ReadOnlySpan<byte> imageHwc, ForwardContext? ctx = null) => EmbedPixels(Normalize(imageHwc), ctx ?? ForwardContext.Default);

    /// <summary>
    /// Patch-embeds normalised CHW pixels (what a Hugging Face processor gives as pixel_values): each P x P patch, as a
    /// (channel, dy, dx) vector (the npz's (dy, dx, channel)), times the patch weights (+ bias) = the stride-P convolution; CLS first, patches row-major
    /// over the grid, positions added to every row, then CLIP's pre-norm where the model has one. Fires "embed".
    /// </summary>
    public SequenceState EmbedPixels(PixelInput input, ForwardContext ctx)
    {
        int grid = PatchGrid, patches = grid * grid, tokens = patches + 1, plane = Image * Image;
        if (input.Height != Image || input.Width != Image || input.Chw.Length != Channels * plane)
            throw new ArgumentException($"{Card.Name} takes {Channels}x{Image}x{Image} pixels, got {input.Chw.Length / Math.Max(1, input.Height * input.Width)}x{input.Height}x{input.Width}", nameof(input));
        var state = new SequenceState(tokens, _d, Enumerable.Range(0, tokens).ToArray());
        var x = _work.Current.Get(Slot.Patches, patches * _patchVec);
        var chw = input.Chw;
        for (int py = 0; py < grid; py++)
            for (int px = 0; px < grid; px++)
            {
                var patch = x.Slice((py * grid + px) * _patchVec, _patchVec);
                for (int c = 0; c < Channels; c++)
                    for (int dy = 0; dy < Patch; dy++)
                    {
                        var src = chw.AsSpan(c * plane + (py * Patch + dy) * Image + px * Patch, Patch);
                        if (!_channelsLast) src.CopyTo(patch.Slice((c * Patch + dy) * Patch, Patch));
                        else for (int dx = 0; dx < Patch; dx++) patch[(dy * Patch + dx) * Channels + c] = src[dx];
                    }
            }
        // Row 0 is CLS; the patch rows are one GEMM, then the positions are added to every row.
        _cls.AsSpan(0, _d).CopyTo(state.Row(0));
        MatMul.Linear(x, patches, _patchVec, _patchW, _d, state.Hidden.AsSpan(_d, patches * _d), _patchB, gelu: false, threads: 1);
        TensorPrimitives.Add(state.Active, _pos.AsSpan(0, tokens * _d), state.Active);
        if (_preG is not null) LayerNorm(state.Active, tokens, _preG, _preB!, state.Active);
        ctx.Fire(HookNames.Embed, -1, state.Active, tokens, _d, state.TokenIndex);
        return state;
    }

    public void RunBlock(int layer, SequenceState state, ForwardContext ctx)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(layer);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(layer, Config.Layers);
        if (state.Dim != _d) throw new ArgumentException($"state has dim {state.Dim}, the model {_d}", nameof(state));
        var blk = _blocks[layer];
        int n = state.Rows, d = _d;
        var ws = _work.Current;
        var x = state.Active;
        var tok = state.TokenIndex;

        ctx.Fire(HookNames.ResidPre(layer), layer, x, n, d, tok);
        if (!ctx.Skips.SkipsAttention(layer))
        {
            var h = ws.Get(Slot.H, n * d);
            LayerNorm(x, n, blk.Ln1G, blk.Ln1B, h);
            ctx.Fire(HookNames.AttnIn(layer), layer, h, n, d, tok);
            // Arrays, not spans: the per-head lambda below captures them.
            float[] qa = ws.Array(Slot.Q, n * d), ka = ws.Array(Slot.K, n * d), va = ws.Array(Slot.V, n * d);
            var q = qa.AsSpan(0, n * d);
            var k = ka.AsSpan(0, n * d);
            var v = va.AsSpan(0, n * d);
            ctx.RunLinear(h, n, d, blk.Wq, d, q, blk.Bq);
            ctx.RunLinear(h, n, d, blk.Wk, d, k, blk.Bk);
            ctx.RunLinear(h, n, d, blk.Wv, d, v, blk.Bv);
            ctx.Fire(HookNames.AttnK(layer), layer, k, n, d, tok);
            ctx.Fire(HookNames.AttnV(layer), layer, v, n, d, tok);

            // Ranking asks for one query row's pattern only (ForwardContext.PatternQueryRow): queries nq = 1 row, keys all.
            int q0 = ctx.PatternQueryRow ?? 0, nq = ctx.PatternQueryRow is null ? n : 1;
            bool wantPattern = ctx.Wants(HookNames.AttnPattern(layer));
            var pattern = wantPattern ? ws.Array(Slot.P, _heads * nq * n) : null;
            var cat = ws.Array(Slot.Cat, n * d);
            int hd = _headDim;
            void Head(int hh) => AttentionKernel.Head(qa.AsSpan(q0 * d, nq * d), nq, d, hh * hd, ka.AsSpan(0, n * d), va.AsSpan(0, n * d), n, d, hh * hd, hd,
                null, cat.AsSpan(q0 * d, nq * d), pattern is null ? default : pattern.AsSpan(hh * nq * n, nq * n));
            if ((long)nq * n * d >= 1 << 16 && ctx.Threads > 1) Parallelism.For(_heads, ctx.Threads, Head);
            else for (int hh = 0; hh < _heads; hh++) Head(hh);
            if (pattern is not null) ctx.Hooks!.Fire(HookNames.AttnPattern(layer), layer, pattern.AsSpan(0, _heads * nq * n), [_heads, nq, n], tok);

            var o = ws.Get(Slot.O, n * d);
            ctx.RunLinear(cat.AsSpan(0, n * d), n, d, blk.Wo, d, o, blk.Bo);
            ctx.Fire(HookNames.AttnOut(layer), layer, o, n, d, tok);
            TensorPrimitives.Add(x, o, x);
        }
        ctx.Fire(HookNames.ResidMid(layer), layer, x, n, d, tok);
        if (!ctx.Skips.SkipsMlp(layer))
        {
            var h = ws.Get(Slot.H, n * d);
            LayerNorm(x, n, blk.Ln2G, blk.Ln2B, h);
            ctx.Fire(HookNames.MlpIn(layer), layer, h, n, d, tok);
            var m = ws.Get(Slot.M, n * _mlp);
            ctx.RunLinear(h, n, d, blk.W1, _mlp, m, blk.B1, gelu: Config.Mlp == MlpKind.GeluErf);
            if (Config.Mlp == MlpKind.GeluTanh) Ops.GeluTanh(m);
            else if (Config.Mlp == MlpKind.QuickGelu) QuickGelu(m, ws.Get(Slot.Normed, m.Length));
            var o = ws.Get(Slot.O, n * d);
            ctx.RunLinear(m, n, _mlp, blk.W2, d, o, blk.B2);
            ctx.Fire(HookNames.MlpOut(layer), layer, o, n, d, tok);
            TensorPrimitives.Add(x, o, x);
        }
        ctx.Fire(HookNames.ResidPost(layer), layer, x, n, d, tok);
    }

    /// <summary>Final LayerNorm and the linear head on the CLS row (token 0, which must still be present).</summary>
    public float[] Readout(SequenceState state, ForwardContext ctx)
    {
        if (_headW is null) throw new InvalidOperationException($"{Card.Name} is a vision tower: it has no classifier head");
        int cls = System.Array.IndexOf(state.TokenIndex, 0);
        if (cls < 0 || cls >= state.Rows) throw new InvalidOperationException("the CLS token (token 0) was dropped; it must be protected");
        int d = _d;
        var normed = _work.Current.Get(Slot.Normed, state.Rows * d);
        if (ctx.Wants(HookNames.LnFinal))
        {
            LayerNorm(state.Active, state.Rows, _lnfG!, _lnfB!, normed);
            ctx.Fire(HookNames.LnFinal, Config.Layers, normed, state.Rows, d, state.TokenIndex);
        }
        else LayerNorm(state.Row(cls), 1, _lnfG!, _lnfB!, normed.Slice(cls * d, d));
        var logits = new float[_classes];
        ctx.RunLinear(normed.Slice(cls * d, d), 1, d, _headW, _classes, logits, _headB);
        return logits;
    }

    /// <summary>Full forward pass: embed, blocks (with the context's hooks, skips and token selector), readout.</summary>
    public float[] Forward(ReadOnlySpan<byte> imageHwc, ForwardContext? ctx = null)
    {
        ctx ??= ForwardContext.Default;
        var state = Embed(imageHwc, ctx);
        this.RunBlocks(state, ctx);
        return Readout(state, ctx);
    }

    public int Classify(ReadOnlySpan<byte> imageHwc, ForwardContext? ctx = null) => ArgMax(Forward(imageHwc, ctx));

    public static int ArgMax(ReadOnlySpan<float> v) => TensorPrimitives.IndexOfMax(v);

    /// <summary>CLIP's quick_gelu, x * sigmoid(1.702 x), in place.</summary>
    private static void QuickGelu(Span<float> x, Span<float> tmp)
    {
        TensorPrimitives.Multiply(x, 1.702f, tmp);
        TensorPrimitives.Sigmoid(tmp, tmp);
        TensorPrimitives.Multiply(x, tmp, x);
    }

    private void LayerNorm(ReadOnlySpan<float> x, int n, float[] gamma, float[] beta, Span<float> y)
    {
        for (int i = 0; i < n; i++) Ops.LayerNorm(x.Slice(i * _d, _d), gamma, beta, Config.NormEps, y.Slice(i * _d, _d));
    }
}
