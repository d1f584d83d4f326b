namespace Workbench.Engine.Models;

/// <summary>
/// The documented hook sites, one place for all of them (TransformerLens-style names).
/// Shapes are [rows, cols] with one row per live token unless noted.
///
///   embed                    [n, d]  token (+ position) embeddings entering block 0
///   blocks.{i}.resid_pre     [n, d]  residual stream entering block i
///   blocks.{i}.attn.in       [n, d]  input of the attention module (after the norm in pre-norm models)
///   blocks.{i}.attn.k        [n, kv] keys of the new rows (after rotary), as appended to the KV cache
///   blocks.{i}.attn.v        [n, kv] values of the new rows
///   blocks.{i}.attn.pattern  [h, n, c] attention probabilities (c = keys attended: cache length or n)
///   blocks.{i}.attn.out      [n, d]  output of the attention module (after the output projection, before the residual add)
///   blocks.{i}.resid_mid     [n, d]  residual stream between attention and MLP
///   blocks.{i}.mlp.in        [n, d]  input of the MLP module (after the norm in pre-norm models)
///   blocks.{i}.mlp.out       [n, d]  output of the MLP module (before the residual add)
///   blocks.{i}.resid_post    [n, d]  residual stream leaving block i
///   ln_final                 [n, d]  after the final norm (pre-norm models)
///   image_features           [m, d]  LLaVA: the projected image features that replace the m image-token embeddings
///
/// In post-norm models (BERT) resid_mid = LN1(resid_pre + attn.out) and resid_post = LN2(resid_mid + mlp.out),
/// and attn.in = resid_pre, mlp.in = resid_mid.
/// A hook may change the array it is given in place: a change at attn.out or mlp.out replaces the module's output.
/// </summary>
public static class HookNames
{
    public const string Embed = "embed";
    public const string LnFinal = "ln_final";
    public const string ImageFeatures = "image_features";
    public static string ResidPre(int layer) => Site(0, layer, "resid_pre");
    public static string AttnIn(int layer) => Site(1, layer, "attn.in");
    public static string AttnK(int layer) => Site(2, layer, "attn.k");
    public static string AttnV(int layer) => Site(3, layer, "attn.v");
    public static string AttnPattern(int layer) => Site(4, layer, "attn.pattern");
    public static string AttnOut(int layer) => Site(5, layer, "attn.out");
    public static string ResidMid(int layer) => Site(6, layer, "resid_mid");
    public static string MlpIn(int layer) => Site(7, layer, "mlp.in");
    public static string MlpOut(int layer) => Site(8, layer, "mlp.out");
    public static string ResidPost(int layer) => Site(9, layer, "resid_post");

    // Every block asks for its ten names on every forward pass (a decode step too), hooks or not: each name is
    // formatted once per layer and kept, not formatted again per call.
    private static readonly string[][] Names = Enumerable.Repeat(Array.Empty<string>(), 10).ToArray();

    private static string Site(int site, int layer, string suffix)
    {
        var names = Volatile.Read(ref Names[site]);
        if ((uint)layer < (uint)names.Length) return names[layer];
        if ((uint)layer >= 4096) return $"blocks.{layer}.{suffix}";
        var grown = new string[Math.Max(layer + 1, 2 * names.Length)];
        names.CopyTo(grown, 0);
        for (int i = names.Length; i < grown.Length; i++) grown[i] = $"blocks.{i}.{suffix}";
        Volatile.Write(ref Names[site], grown);
        return grown[layer];
    }

    /// <summary>Every per-block site name, in the order a forward pass visits them.</summary>
    public static IEnumerable<string> BlockSites(int layer) =>
    [
        ResidPre(layer), AttnIn(layer), AttnK(layer), AttnV(layer), AttnPattern(layer), AttnOut(layer),
        ResidMid(layer), MlpIn(layer), MlpOut(layer), ResidPost(layer),
    ];

    public static IEnumerable<string> All(int layers) =>
        new[] { Embed }.Concat(Enumerable.Range(0, layers).SelectMany(BlockSites)).Append(LnFinal);
}
