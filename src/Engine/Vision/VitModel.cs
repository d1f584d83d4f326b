using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Workbench.Engine.Formats;
using Workbench.Engine.Models;
using Workbench.Engine.Tensors;

namespace Workbench.Engine.Vision;

/// <summary>
/// The CIFAR-10 Vision Transformer of libaohang/ViT-NumPy (models/vit-cifar10, layout in VIT.md): 4x4 patches of a
/// 32x32 RGB image -> 64 patch tokens plus CLS, learned absolute positions added at embedding time, 4 pre-norm blocks
/// (dim 64, 8 heads of 8, GELU-tanh MLP of 128), final LayerNorm, linear head on CLS. Inference: dropout off.
/// Rows carry their positions already added, so dropping rows needs nothing else.
/// </summary>
public sealed class VitModel : ITransformerModel
{
    public const int ImageSize = 32, PatchSize = 4, Grid = 8, Patches = 64, Tokens = 65, Channels = 3, Classes = 10;
    public const int PixelsPerImage = ImageSize * ImageSize * Channels;
    private const int D = 64, HeadsN = 8, HeadDim = 8, MlpD = 128, PatchVec = PatchSize * PatchSize * Channels;
    private static readonly double[] Mean = [0.4914, 0.4822, 0.4465];
    private static readonly double[] Std = [0.2023, 0.1994, 0.2010];

    public static IReadOnlyList<string> ClassNames { get; } =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    public ModelConfig Config { get; }
    public ModelCard Card { get; }
    public string Path { get; }

    private readonly float[] _patchW; // [64 out, 48 in]
    private readonly float[] _cls;    // [64]
    private readonly float[] _pos;    // [65, 64]
    private readonly Block[] _blocks;
    private readonly float[] _lnfG, _lnfB, _headW, _headB;

    private sealed record Block(
        float[] Ln1G, float[] Ln1B, float[] Wq, float[] Bq, float[] Wk, float[] Bk, float[] Wv, float[] Bv,
        float[] Wo, float[] Bo, float[] Ln2G, float[] Ln2B, float[] W1, float[] B1, float[] W2, float[] B2);

    private VitModel(string path, List<VitArrays.NpyArray> a)
    {
        Path = path;
        const int expected = 3 + 4 * 58 + 4;
        if (a.Count != expected) throw new ModelFormatException(path, "arrays", 0, $"expected {expected} arrays (arr_0..arr_{expected - 1}), found {a.Count}");
        float[] Get(int i, params int[] shape)
        {
            var arr = a[i];
            if (!arr.Shape.SequenceEqual(shape))
                throw new ModelFormatException(path, $"arr_{i}.shape", 0, $"expected ({string.Join(", ", shape)}), found ({string.Join(", ", arr.Shape)})");
            return arr.Data;
        }
        var pw = Get(0, PatchVec, D); // (in, out): used as patches @ W
        _patchW = new float[D * PatchVec];
        for (int j = 0; j < PatchVec; j++)
            for (int o = 0; o < D; o++) _patchW[o * PatchVec + j] = pw[j * D + o];
        _cls = Get(1, 1, 1, D);
        _pos = Get(2, 1, Tokens, D);
        _blocks = new Block[4];
        for (int l = 0; l < 4; l++)
        {
            int b = 3 + 58 * l;
            // Stack the 8 per-head (8, 64) projections row-wise: output features [8h, 8h+8) belong to head h.
            float[] Stack(int offset, out float[] bias)
            {
                var w = new float[D * D];
                bias = new float[D];
                for (int h = 0; h < HeadsN; h++)
                {
                    Get(b + 2 + 6 * h + offset, HeadDim, D).CopyTo(w, h * HeadDim * D);
                    Get(b + 2 + 6 * h + offset + 1, 1, HeadDim).CopyTo(bias, h * HeadDim);
                }
                return w;
            }
            var wq = Stack(0, out var bq);
            var wk = Stack(2, out var bk);
            var wv = Stack(4, out var bv);
            _blocks[l] = new Block(Get(b, D), Get(b + 1, D), wq, bq, wk, bk, wv, bv,
                Get(b + 50, D, D), Get(b + 51, 1, D), Get(b + 52, D), Get(b + 53, D),
                Get(b + 54, MlpD, D), Get(b + 55, 1, MlpD), Get(b + 56, D, MlpD), Get(b + 57, 1, D));
        }
        _lnfG = Get(235, D);
        _lnfB = Get(236, D);
        _headW = Get(237, Classes, D);
        _headB = Get(238, 1, Classes);

        Config = new ModelConfig(ModelFamily.Vit, Layers: 4, Dim: D, MlpDim: MlpD, Heads: HeadsN, KvHeads: HeadsN,
            Vocab: Classes, MaxSeq: Tokens, PreNorm: true, Mlp: MlpKind.GeluTanh, NormEps: 1e-5f);
        long parameters = a.Sum(x => (long)x.Data.Length);
        Card = new ModelCard("vit-cifar10", "libaohang/ViT-NumPy (MIT), Saved models/vit_cifar10.npz", "npz", Config,
            parameters, parameters * sizeof(float),
            a.Select((x, i) => new TensorCardEntry($"arr_{i} {ParamName(i)}", "F32", x.Shape.Select(s => (long)s).ToArray(), 4L * x.Data.Length)).ToList());
    }

    /// <summary>Loads the npz (239 float32 arrays in np.savez order). Bad files throw ModelFormatException.</summary>
    public static VitModel Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"ViT weights not found: {path}", path);
        var arrays = VitArrays.ReadNpz(path);
        // np.savez names members arr_0..arr_N; order by the number, not by how the zip lists them.
        arrays.Sort((x, y) => ArrIndex(path, x.Name).CompareTo(ArrIndex(path, y.Name)));
        return new VitModel(path, arrays);
    }

    public static VitModel LoadBundled() => Load(VitBundled.ModelPath);

    private static int ArrIndex(string path, string name) =>
        name.StartsWith("arr_", StringComparison.Ordinal) && int.TryParse(name.AsSpan(4), out var i) ? i
        : throw new ModelFormatException(path, name, 0, "member is not named arr_<index> as np.savez writes");

    private static string ParamName(int i)
    {
        if (i == 0) return "patch_embed.W";
        if (i == 1) return "cls_token";
        if (i == 2) return "pos_embed";
        if (i >= 235) return (i - 235) switch { 0 => "final_ln.gamma", 1 => "final_ln.beta", 2 => "head.W", _ => "head.b" };
        int l = (i - 3) / 58, r = (i - 3) % 58;
        return r switch
        {
            0 => $"block{l}.ln1.gamma", 1 => $"block{l}.ln1.beta",
            < 50 => $"block{l}.head{(r - 2) / 6}.{((r - 2) % 6) switch { 0 => "Wq", 1 => "bq", 2 => "Wk", 3 => "bk", 4 => "Wv", _ => "bv" }}",
            50 => $"block{l}.attn_out.W", 51 => $"block{l}.attn_out.b", 52 => $"block{l}.ln2.gamma", 53 => $"block{l}.ln2.beta",
            54 => $"block{l}.mlp.fc1.W", 55 => $"block{l}.mlp.fc1.b", 56 => $"block{l}.mlp.fc2.W", _ => $"block{l}.mlp.fc2.b",
        };
    }

    // ---------------------------------------------------------------- forward

    public SequenceState Embed(ModelInput input, ForwardContext ctx) => input is ImageInput img
        ? Embed(img.PixelsHwc, ctx)
        : throw new ArgumentException($"{Card.Name} is an image classifier: it takes an image, not {input.GetType().Name}", nameof(input));

    public IReadOnlyList<NamedLinear> BlockLinears => _blocks.SelectMany((b, i) => new NamedLinear[]
    {
        new($"blocks.{i}.wq", i, b.Wq, D, D), new($"blocks.{i}.wk", i, b.Wk, D, D), new($"blocks.{i}.wv", i, b.Wv, D, D),
        new($"blocks.{i}.wo", i, b.Wo, D, D), new($"blocks.{i}.fc1", i, b.W1, MlpD, D), new($"blocks.{i}.fc2", i, b.W2, D, MlpD),
    }).ToArray();

    public IEnumerable<float[]> ParameterArrays => new[] { _patchW, _cls, _pos, _lnfG, _lnfB, _headW, _headB }
        .Concat(_blocks.SelectMany(b => new[] { b.Ln1G, b.Ln1B, b.Wq, b.Bq, b.Wk, b.Bk, b.Wv, b.Bv, b.Wo, b.Bo, b.Ln2G, b.Ln2B, b.W1, b.B1, b.W2, b.B2 }));

    /// <summary>Patch-embeds a 32x32x3 uint8 HWC image: 65 rows (CLS, then patches row-major), positions added. Fires "embed".</summary>
    public SequenceState Embed(ReadOnlySpan<byte> imageHwc, ForwardContext? ctx = null)
    {
        if (imageHwc.Length != PixelsPerImage)
            throw new ArgumentException($"image must be {ImageSize}x{ImageSize}x{Channels} uint8 HWC ({PixelsPerImage} bytes), got {imageHwc.Length} bytes", nameof(imageHwc));
        var state = new SequenceState(Tokens, D, Enumerable.Range(0, Tokens).ToArray());
        Span<float> patch = stackalloc float[PatchVec];
        for (int e = 0; e < D; e++) state.Hidden[e] = _cls[e] + _pos[e];
        for (int py = 0; py < Grid; py++)
            for (int px = 0; px < Grid; px++)
            {
                for (int dy = 0; dy < PatchSize; dy++)
                    for (int dx = 0; dx < PatchSize; dx++)
                        for (int c = 0; c < Channels; c++)
                        {
                            int y = py * PatchSize + dy, x = px * PatchSize + dx;
                            double v = (imageHwc[(y * ImageSize + x) * Channels + c] / 255.0 - Mean[c]) / Std[c];
                            patch[(dy * PatchSize + dx) * Channels + c] = (float)v;
                        }
                int row = 1 + py * Grid + px;
                var dst = state.Row(row);
                for (int o = 0; o < D; o++)
                    dst[o] = TensorPrimitives.Dot(patch, _patchW.AsSpan(o * PatchVec, PatchVec)) + _pos[row * D + o];
            }
        (ctx ?? ForwardContext.Default).Fire(HookNames.Embed, -1, state.Active, Tokens, D, state.TokenIndex);
        return state;
    }

    public void RunBlock(int layer, SequenceState state, ForwardContext ctx)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(layer);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(layer, Config.Layers);
        if (state.Dim != D) throw new ArgumentException($"state has dim {state.Dim}, the model {D}", nameof(state));
        var blk = _blocks[layer];
        int n = state.Rows;
        var s = Scratch.Get(n);
        var x = state.Active;
        var tok = state.TokenIndex;

        ctx.Fire(HookNames.ResidPre(layer), layer, x, n, D, tok);
        if (!ctx.Skips.SkipsAttention(layer))
        {
            var h = s.H.AsSpan(0, n * D);
            LayerNorm(x, n, blk.Ln1G, blk.Ln1B, h);
            ctx.Fire(HookNames.AttnIn(layer), layer, h, n, D, tok);
            var q = s.Q.AsSpan(0, n * D);
            var k = s.K.AsSpan(0, n * D);
            var v = s.V.AsSpan(0, n * D);
            VitMath.Linear(h, n, D, blk.Wq, D, q, blk.Bq);
            VitMath.Linear(h, n, D, blk.Wk, D, k, blk.Bk);
            VitMath.Linear(h, n, D, blk.Wv, D, v, blk.Bv);
            ctx.Fire(HookNames.AttnK(layer), layer, k, n, D, tok);
            ctx.Fire(HookNames.AttnV(layer), layer, v, n, D, tok);

            var p = s.P.AsSpan(0, HeadsN * n * n);
            float scale = 1f / MathF.Sqrt(HeadDim);
            for (int hd = 0; hd < HeadsN; hd++)
                for (int i = 0; i < n; i++)
                {
                    var qi = q.Slice(i * D + hd * HeadDim, HeadDim);
                    var row = p.Slice((hd * n + i) * n, n);
                    for (int j = 0; j < n; j++) row[j] = VitMath.Dot8(qi, k.Slice(j * D + hd * HeadDim, HeadDim)) * scale;
                    Ops.Softmax(row);
                }
            if (ctx.Hooks is { } hooks && hooks.Wants(HookNames.AttnPattern(layer)))
                hooks.Fire(HookNames.AttnPattern(layer), layer, p, [HeadsN, n, n], tok);

            var cat = s.Cat.AsSpan(0, n * D);
            cat.Clear();
            for (int hd = 0; hd < HeadsN; hd++)
                for (int i = 0; i < n; i++)
                {
                    var dst = cat.Slice(i * D + hd * HeadDim, HeadDim);
                    var row = p.Slice((hd * n + i) * n, n);
                    VitMath.WeightedSum8(row, v.Slice(hd * HeadDim), D, dst);
                }
            var o = s.O.AsSpan(0, n * D);
            VitMath.Linear(cat, n, D, blk.Wo, D, o, blk.Bo);
            ctx.Fire(HookNames.AttnOut(layer), layer, o, n, D, tok);
            TensorPrimitives.Add(x, o, x);
        }
        ctx.Fire(HookNames.ResidMid(layer), layer, x, n, D, tok);
        if (!ctx.Skips.SkipsMlp(layer))
        {
            var h = s.H.AsSpan(0, n * D);
            LayerNorm(x, n, blk.Ln2G, blk.Ln2B, h);
            ctx.Fire(HookNames.MlpIn(layer), layer, h, n, D, tok);
            var m = s.M.AsSpan(0, n * MlpD);
            VitMath.Linear(h, n, D, blk.W1, MlpD, m, blk.B1);
            GeluTanh(m, s.G.AsSpan(0, m.Length));
            var o = s.O.AsSpan(0, n * D);
            VitMath.Linear(m, n, MlpD, blk.W2, D, o, blk.B2);
            ctx.Fire(HookNames.MlpOut(layer), layer, o, n, D, tok);
            TensorPrimitives.Add(x, o, x);
        }
        ctx.Fire(HookNames.ResidPost(layer), layer, x, n, D, tok);
    }

    /// <summary>Final LayerNorm and the linear head on the CLS row (token 0, which must still be present).</summary>
    public float[] Readout(SequenceState state, ForwardContext ctx)
    {
        int cls = Array.IndexOf(state.TokenIndex, 0);
        if (cls < 0 || cls >= state.Rows) throw new InvalidOperationException("the CLS token (token 0) was dropped; it must be protected");
        var normed = new float[state.Rows * D];
        if (ctx.Wants(HookNames.LnFinal))
        {
            LayerNorm(state.Active, state.Rows, _lnfG, _lnfB, normed);
            ctx.Fire(HookNames.LnFinal, Config.Layers, normed.AsSpan(0, state.Rows * D), state.Rows, D, state.TokenIndex);
        }
        else LayerNorm(state.Row(cls), 1, _lnfG, _lnfB, normed.AsSpan(cls * D, D));
        var logits = new float[Classes];
        VitMath.Linear(normed.AsSpan(cls * D, D), 1, D, _headW, Classes, logits, _headB);
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

    public static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    // ---------------------------------------------------------------- pieces

    /// <summary>LayerNorm over the features of each row: population variance, eps 1e-5 inside the sqrt.</summary>
    private static void LayerNorm(ReadOnlySpan<float> x, int n, float[] gamma, float[] beta, Span<float> y)
    {
        for (int i = 0; i < n; i++)
        {
            var xi = x.Slice(i * D, D);
            var yi = y.Slice(i * D, D);
            float mean = TensorPrimitives.Sum(xi) / D;
            float var = 0;
            for (int e = 0; e < D; e++) { float t = xi[e] - mean; var += t * t; }
            float inv = 1f / MathF.Sqrt(var / D + 1e-5f);
            for (int e = 0; e < D; e++) yi[e] = (xi[e] - mean) * inv * gamma[e] + beta[e];
        }
    }

    /// <summary>In place: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), vectorised (tanh dominated the scalar loop).</summary>
    private static void GeluTanh(Span<float> x, Span<float> tmp)
    {
        TensorPrimitives.Multiply(x, x, tmp);                              // x^2
        TensorPrimitives.Multiply(tmp, 0.044715f, tmp);
        TensorPrimitives.Add(tmp, 1f, tmp);                                // 1 + 0.044715 x^2
        TensorPrimitives.Multiply(tmp, x, tmp);                            // x + 0.044715 x^3
        TensorPrimitives.Multiply(tmp, 0.7978845608028654f, tmp);
        TensorPrimitives.Tanh(tmp, tmp);
        TensorPrimitives.Add(tmp, 1f, tmp);
        TensorPrimitives.Multiply(tmp, 0.5f, tmp);                         // 0.5 (1 + tanh)
        TensorPrimitives.Multiply(x, tmp, x);
    }

    /// <summary>Per-thread work buffers, grown on demand, so one model can serve parallel forward calls.</summary>
    private sealed class Scratch
    {
        [ThreadStatic] private static Scratch? t_scratch;
        public float[] H = [], Q = [], K = [], V = [], Cat = [], O = [], P = [], M = [], G = [];
        private int _rows;

        public static Scratch Get(int rows)
        {
            var s = t_scratch ??= new Scratch();
            if (rows > s._rows)
            {
                s._rows = rows;
                s.H = new float[rows * D]; s.Q = new float[rows * D]; s.K = new float[rows * D]; s.V = new float[rows * D];
                s.Cat = new float[rows * D]; s.O = new float[rows * D]; s.P = new float[HeadsN * rows * rows]; s.M = new float[rows * MlpD]; s.G = new float[rows * MlpD];
            }
            return s;
        }
    }
}

/// <summary>
/// Small fp32 kernels for the ViT. Linear: Y[n, m] = X[n, k] W[m, k]^T (+ bias), the contract of Tensors.MatMul.Linear,
/// kept private to Vision until that lands. Each has a Vector256 path and a scalar twin (tests hold them equal).
/// </summary>
internal static class VitMath
{
    public static bool UseSimd { get; set; } = Vector256.IsHardwareAccelerated;

    public static void Linear(ReadOnlySpan<float> x, int n, int k, ReadOnlySpan<float> w, int m, Span<float> y, ReadOnlySpan<float> bias = default)
    {
        if (x.Length < n * k || w.Length < m * k || y.Length < n * m) throw new ArgumentException("buffer shorter than its shape");
        if (UseSimd && k % 8 == 0) LinearVector256(x, n, k, w, m, y, bias);
        else LinearScalar(x, n, k, w, m, y, bias);
    }

    internal static void LinearScalar(ReadOnlySpan<float> x, int n, int k, ReadOnlySpan<float> w, int m, Span<float> y, ReadOnlySpan<float> bias)
    {
        for (int i = 0; i < n; i++)
            for (int o = 0; o < m; o++)
            {
                float acc = 0;
                for (int j = 0; j < k; j++) acc += x[i * k + j] * w[o * k + j];
                y[i * m + o] = acc + (bias.IsEmpty ? 0f : bias[o]);
            }
    }

    // Four outputs at a time share each load of the input row.
    internal static void LinearVector256(ReadOnlySpan<float> x, int n, int k, ReadOnlySpan<float> w, int m, Span<float> y, ReadOnlySpan<float> bias)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float wr = ref MemoryMarshal.GetReference(w);
        for (int i = 0; i < n; i++)
        {
            ref float xi = ref Unsafe.Add(ref xr, i * k);
            int o = 0;
            for (; o + 4 <= m; o += 4)
            {
                ref float w0 = ref Unsafe.Add(ref wr, o * k);
                ref float w1 = ref Unsafe.Add(ref w0, k);
                ref float w2 = ref Unsafe.Add(ref w1, k);
                ref float w3 = ref Unsafe.Add(ref w2, k);
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int j = 0; j < k; j += 8)
                {
                    var xv = Vector256.LoadUnsafe(ref xi, (nuint)j);
                    a0 += xv * Vector256.LoadUnsafe(ref w0, (nuint)j);
                    a1 += xv * Vector256.LoadUnsafe(ref w1, (nuint)j);
                    a2 += xv * Vector256.LoadUnsafe(ref w2, (nuint)j);
                    a3 += xv * Vector256.LoadUnsafe(ref w3, (nuint)j);
                }
                y[i * m + o] = Vector256.Sum(a0) + (bias.IsEmpty ? 0f : bias[o]);
                y[i * m + o + 1] = Vector256.Sum(a1) + (bias.IsEmpty ? 0f : bias[o + 1]);
                y[i * m + o + 2] = Vector256.Sum(a2) + (bias.IsEmpty ? 0f : bias[o + 2]);
                y[i * m + o + 3] = Vector256.Sum(a3) + (bias.IsEmpty ? 0f : bias[o + 3]);
            }
            for (; o < m; o++)
            {
                ref float wo = ref Unsafe.Add(ref wr, o * k);
                Vector256<float> a = default;
                for (int j = 0; j < k; j += 8) a += Vector256.LoadUnsafe(ref xi, (nuint)j) * Vector256.LoadUnsafe(ref wo, (nuint)j);
                y[i * m + o] = Vector256.Sum(a) + (bias.IsEmpty ? 0f : bias[o]);
            }
        }
    }

    /// <summary>Dot product of two 8-float head slices.</summary>
    public static float Dot8(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (UseSimd) return Vector256.Sum(Vector256.Create(a[..8]) * Vector256.Create(b[..8]));
        float s = 0;
        for (int i = 0; i < 8; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>dst[0..8) += sum_j p[j] * v[j * stride .. + 8): one head's attention-weighted sum of values.</summary>
    public static void WeightedSum8(ReadOnlySpan<float> p, ReadOnlySpan<float> v, int stride, Span<float> dst)
    {
        if (UseSimd)
        {
            var acc = Vector256.Create(dst[..8]);
            for (int j = 0; j < p.Length; j++) acc += Vector256.Create(p[j]) * Vector256.Create(v.Slice(j * stride, 8));
            acc.CopyTo(dst);
            return;
        }
        for (int j = 0; j < p.Length; j++)
            for (int e = 0; e < 8; e++) dst[e] += p[j] * v[j * stride + e];
    }
}
