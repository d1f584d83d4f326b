using System.CommandLine;
using Workbench.Engine.LowBit;
using Workbench.Engine.Models;
using Workbench.Engine.Quantization;

namespace Workbench.Cli.Commands;

public static class InspectCommand
{
    public static Command Create()
    {
        var model = CliHelpers.ModelOption();
        var tokenizer = new Option<string?>("--tokenizer") { Description = "tokenizer file when not beside the model" };
        var weights = CliHelpers.WeightsOption();
        var json = CliHelpers.JsonOption();
        var cmd = new Command("inspect", "a model card: architecture, parameter count, tensors, dtypes, bytes") { model, tokenizer, weights, json };
        cmd.SetAction(r => CliHelpers.Run(() =>
        {
            // Loaded as stored (memory-mapped, cheap even for a 7B checkpoint); both resident figures are derived from it,
            // --weights choosing which one resident_bytes reports.
            var storage = WeightStorageOption.Parse(r.GetValue(weights));
            var m = ModelHub.Load(r.GetValue(model)!, r.GetValue(tokenizer));
            var card = m.Card;
            var c = card.Config;
            // The architecture family as the checkpoint names it (config.json's model_type for Hugging Face decoders).
            string family = m.Model is LlamaModel lm ? lm.Spec.Family : c.Family.ToString().ToLowerInvariant();
            long asStored = m.Model.ParameterBytes(), asFp32 = m.Model.Fp32ParameterBytes();
            long resident = storage == WeightStorage.Fp32 ? asFp32 : asStored;
            var groups = card.Groups();
            if (r.GetValue(json))
            {
                var kernels = BundledTernary.Kernels(m);
                CliHelpers.PrintJson(CliHelpers.Obj(
                    ("name", card.Name), ("source", card.Source), ("format", card.Format),
                    ("family", family), ("layers", c.Layers), ("hidden", c.Dim), ("vocab", c.Vocab),
                    // the weights' resident memory when run (--weights stored: the mapped stored bytes; fp32: the copies)
                    ("resident_bytes", resident), ("weights", storage == WeightStorage.Fp32 ? "fp32" : "stored"),
                    ("resident_stored_bytes", asStored), ("resident_fp32_bytes", asFp32),
                    ("groups", groups.Select(g => CliHelpers.Obj(("name", g.Name), ("type", g.DType), ("count", g.Count), ("bytes", g.Bytes)))),
                    ("architecture", CliHelpers.Obj(
                        ("family", c.Family.ToString()), ("layers", c.Layers), ("dim", c.Dim), ("mlp_dim", c.MlpDim), ("heads", c.Heads),
                        ("kv_heads", c.KvHeads), ("head_dim", c.HeadDim), ("vocab", c.Vocab), ("max_seq", c.MaxSeq),
                        ("norm", c.PreNorm ? "pre" : "post"), ("mlp", c.Mlp.ToString()), ("norm_eps", c.NormEps), ("rope_theta", c.HasRotary ? c.RopeTheta : (float?)null))),
                    ("parameters", card.Parameters), ("weight_bytes", card.WeightBytes),
                    // A model whose block linears run on packed kernels (austen-16L-ternary): the format and its bytes.
                    ("packed_kernels", kernels is null ? null : CliHelpers.Obj(("format", kernels.Format.Name()), ("layers", kernels.Layers.Count), ("packed_bytes", kernels.PackedLinearBytes))),
                    ("tensors", card.Tensors.Select(t => CliHelpers.Obj(("name", t.Name), ("type", t.DType), ("dtype", t.DType), ("shape", t.Shape), ("bytes", t.Bytes))))));
                return 0;
            }
            Console.Out.WriteLine($"{card.Name}  ({card.Format}: {card.Source})");
            Console.Out.WriteLine($"  {c.Family}: {c.Layers} layers, dim {c.Dim}, MLP {c.MlpDim} ({c.Mlp}), {c.Heads} heads ({c.KvHeads} KV heads, head dim {c.HeadDim}), vocab {c.Vocab}, context {c.MaxSeq}, {(c.PreNorm ? "pre-norm" : "post-norm")}");
            Console.Out.WriteLine($"  family {family}; {card.Parameters:N0} parameters, {card.WeightBytes:N0} bytes of weights, {card.Tensors.Count} tensors");
            Console.Out.WriteLine($"  resident when run: {Gib(asStored)} as stored (memory-mapped), {Gib(asFp32)} with --weights fp32" +
                (c.Layers > 0 ? $"; block importance (layer by layer) holds about one layer, {Gib((asStored - groups.Where(g => !g.Name.Contains('*')).Sum(g => g.Bytes)) / c.Layers)}" : ""));
            Console.Out.WriteLine("  tensor groups:");
            foreach (var g in groups)
                Console.Out.WriteLine($"    {g.Name,-48} {g.DType,-5} x{g.Count,-4} {g.Bytes,16:N0} B");
            Console.Out.WriteLine("  tensors:");
            if (BundledTernary.Kernels(m) is { } packed)
                Console.Out.WriteLine($"  runs on packed ternary kernels: {packed.Layers.Count} block linears in {packed.Format.Name()} ({packed.PackedLinearBytes:N0} bytes, stored scales), int8 activations");
            foreach (var t in card.Tensors)
                Console.Out.WriteLine($"  {t.Name,-48} {t.DType,-5} [{string.Join(", ", t.Shape)}]  {t.Bytes:N0} B");
            return 0;
        }, r));
        return cmd;
    }

    private static string Gib(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):F2} GiB" : $"{bytes / (double)(1L << 20):F1} MiB";
}
