using System.Text.Json;
using Workbench.Engine.Formats;
using Workbench.Engine.Models;

namespace Workbench.Engine.Tests.Models;

/// <summary>
/// No real Hugging Face Llama checkpoint is on this machine, so the test writes one from stories260K's llama2.c
/// weights the way Hugging Face's conversion script does (q/k rows permuted for rotate-half, HF tensor names,
/// config.json) and checks the loader gives the .bin's logits.
/// </summary>
public sealed class HuggingFaceCopyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wb-hf-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// convert_llama_weights_to_hf.py's permute, written independently of the engine:
    /// w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2).
    /// </summary>
    private static float[] HfPermute(float[] w, int nHeads, int dim1, int dim2)
    {
        int half = dim1 / nHeads / 2;
        var r = new float[w.Length];
        // source index [h, i, j, :] (view) -> destination [h, j, i, :] (after transpose(1, 2))
        for (int h = 0; h < nHeads; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                {
                    int src = ((h * half + i) * 2 + j) * dim2;
                    int dst = ((h * 2 + j) * half + i) * dim2;
                    Array.Copy(w, src, r, dst, dim2);
                }
        return r;
    }

    private string WriteCopy(DType dtype, bool sharded)
    {
        using var ck = Llama2cCheckpoint.Open(Bundled.Path("models/stories260K/stories260K.bin"));
        var h = ck.Header;
        int kv = h.Dim * h.KvHeads / h.Heads;
        var tensors = new List<(string, int[], float[])> { ("model.embed_tokens.weight", [h.Vocab, h.Dim], ck.ReadF32("tok_embeddings.weight")) };
        for (int i = 0; i < h.Layers; i++)
        {
            string m = $"layers.{i}.", p = $"model.layers.{i}.";
            tensors.Add((p + "input_layernorm.weight", [h.Dim], ck.ReadF32(m + "attention_norm.weight")));
            tensors.Add((p + "self_attn.q_proj.weight", [h.Dim, h.Dim], HfPermute(ck.ReadF32(m + "attention.wq.weight"), h.Heads, h.Dim, h.Dim)));
            tensors.Add((p + "self_attn.k_proj.weight", [kv, h.Dim], HfPermute(ck.ReadF32(m + "attention.wk.weight"), h.KvHeads, kv, h.Dim)));
            tensors.Add((p + "self_attn.v_proj.weight", [kv, h.Dim], ck.ReadF32(m + "attention.wv.weight")));
            tensors.Add((p + "self_attn.o_proj.weight", [h.Dim, h.Dim], ck.ReadF32(m + "attention.wo.weight")));
            tensors.Add((p + "post_attention_layernorm.weight", [h.Dim], ck.ReadF32(m + "ffn_norm.weight")));
            tensors.Add((p + "mlp.gate_proj.weight", [h.HiddenDim, h.Dim], ck.ReadF32(m + "feed_forward.w1.weight")));
            tensors.Add((p + "mlp.down_proj.weight", [h.Dim, h.HiddenDim], ck.ReadF32(m + "feed_forward.w2.weight")));
            tensors.Add((p + "mlp.up_proj.weight", [h.HiddenDim, h.Dim], ck.ReadF32(m + "feed_forward.w3.weight")));
        }
        tensors.Add(("model.norm.weight", [h.Dim], ck.ReadF32("norm.weight")));
        // An explicit lm_head (untied), as many real checkpoints have.
        tensors.Add(("lm_head.weight", [h.Vocab, h.Dim], ck.ReadF32("tok_embeddings.weight")));
        var folder = Path.Combine(_dir, $"{dtype}-{sharded}");
        Directory.CreateDirectory(folder);
        if (sharded) SafetensorsWriter.WriteSharded(folder, tensors, dtype, maxShardBytes: 200_000);
        else SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), tensors, dtype);
        File.WriteAllText(Path.Combine(folder, "config.json"), JsonSerializer.Serialize(new
        {
            architectures = new[] { "LlamaForCausalLM" }, model_type = "llama", hidden_size = h.Dim, intermediate_size = h.HiddenDim,
            num_hidden_layers = h.Layers, num_attention_heads = h.Heads, num_key_value_heads = h.KvHeads, vocab_size = h.Vocab,
            max_position_embeddings = h.SeqLen, rms_norm_eps = 1e-5, rope_theta = 10000.0, tie_word_embeddings = false,
        }));
        File.Copy(Bundled.Path("models/stories260K/tok512.bin"), Path.Combine(folder, "tokenizer.bin"));
        return folder;
    }

    [Theory]
    [InlineData(DType.F32, false, 1e-4)]
    [InlineData(DType.F32, true, 1e-4)]
    [InlineData(DType.F16, false, 2e-2)]
    [InlineData(DType.BF16, true, 2e-1)]
    public void Hugging_face_copy_gives_the_logits_of_the_llama2c_bin(DType dtype, bool sharded, double tolerance)
    {
        var folder = WriteCopy(dtype, sharded);
        Assert.Equal(sharded ? ModelFileKind.HuggingFaceFolder : ModelFileKind.HuggingFaceFolder, ModelFiles.Sniff(folder));
        if (sharded) Assert.True(File.Exists(Path.Combine(folder, "model.safetensors.index.json")));
        var hf = ModelHub.LoadDecoder(folder);
        Assert.False(hf.Model.Weights.SharedOutput);
        var (tokens, golden) = Goldens.Stories260KLogits();
        var logits = hf.Logits(tokens);
        double worst = 0;
        for (int pos = 0; pos < tokens.Length; pos++)
            for (int v = 0; v < 512; v++) worst = Math.Max(worst, Math.Abs(logits[pos * 512 + v] - golden[pos][v]));
        Assert.True(worst <= tolerance, $"{dtype}: max |logit - golden| = {worst}");
        if (dtype == DType.F32)
        {
            var text = hf.Generate("Once upon a time", 64).Text;
            Assert.Equal(ModelHub.LoadDecoder("stories260K").Generate("Once upon a time", 64).Text, text);
        }
    }

    [Fact]
    public void Engine_export_round_trips_through_the_loader()
    {
        var bin = ModelHub.LoadDecoder("stories260K");
        var folder = Path.Combine(_dir, "export");
        HuggingFaceExport.WriteLlama(bin.Model, folder);
        File.Copy(Bundled.Path("models/stories260K/tok512.bin"), Path.Combine(folder, "tokenizer.bin"));
        var back = ModelHub.LoadDecoder(folder);
        var ids = bin.Tokenizer.Encode("The cat sat on the mat.");
        Assert.Equal(bin.Logits(ids), back.Logits(ids));
    }
}
