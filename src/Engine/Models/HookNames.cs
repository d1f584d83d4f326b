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
///
/// In post-norm models (BERT) resid_mid = LN1(resid_pre + attn.out) and resid_post = LN2(resid_mid + mlp.out),
/// and attn.in = resid_pre, mlp.in = resid_mid.
/// A hook may change the array it is given in place: a change at attn.out or mlp.out replaces the module's output.
/// </summary>
public static class HookNames
{
    public const string Embed = "embed";
    public const string LnFinal = "ln_final";
    public static string ResidPre(int layer) => $"blocks.{layer}.resid_pre";
    public static string AttnIn(int layer) => $"blocks.{layer}.attn.in";
    public static string AttnK(int layer) => $"blocks.{layer}.attn.k";
    public static string AttnV(int layer) => $"blocks.{layer}.attn.v";
    public static string AttnPattern(int layer) => $"blocks.{layer}.attn.pattern";
    public static string AttnOut(int layer) => $"blocks.{layer}.attn.out";
    public static string ResidMid(int layer) => $"blocks.{layer}.resid_mid";
    public static string MlpIn(int layer) => $"blocks.{layer}.mlp.in";
    public static string MlpOut(int layer) => $"blocks.{layer}.mlp.out";
    public static string ResidPost(int layer) => $"blocks.{layer}.resid_post";

    /// <summary>Every per-block site name, in the order a forward pass visits them.</summary>
    public static IEnumerable<string> BlockSites(int layer) =>
    [
        ResidPre(layer), AttnIn(layer), AttnK(layer), AttnV(layer), AttnPattern(layer), AttnOut(layer),
        ResidMid(layer), MlpIn(layer), MlpOut(layer), ResidPost(layer),
    ];

    public static IEnumerable<string> All(int layers) =>
        new[] { Embed }.Concat(Enumerable.Range(0, layers).SelectMany(BlockSites)).Append(LnFinal);
}
