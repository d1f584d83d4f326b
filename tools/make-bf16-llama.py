#!/usr/bin/env python3
"""Writes a seeded random-weight LlamaForCausalLM folder (config.json + one bf16 model.safetensors) for memory and
speed measurements of loading kept-as-stored against fp32 copies. Standard library only; tensors are written one at
a time. Weights are +-[2^-7, 2^-6) with random sign and mantissa (finite bf16), norms 1.0.

    tools/make-bf16-llama.py OUT_DIR [--layers 8 --dim 2048 --ffn 5632 --heads 16 --kv-heads 4 --vocab 32000 --seed 1]
"""
import argparse, json, os, random, struct

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--layers", type=int, default=8)
p.add_argument("--dim", type=int, default=2048)
p.add_argument("--ffn", type=int, default=5632)
p.add_argument("--heads", type=int, default=16)
p.add_argument("--kv-heads", type=int, default=4)
p.add_argument("--vocab", type=int, default=32000)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
os.makedirs(a.out, exist_ok=True)
hd = a.dim // a.heads
kv = a.kv_heads * hd
tensors = [("model.embed_tokens.weight", [a.vocab, a.dim]), ("model.norm.weight", [a.dim]), ("lm_head.weight", [a.vocab, a.dim])]
for i in range(a.layers):
    l = f"model.layers.{i}."
    tensors += [(l + "input_layernorm.weight", [a.dim]), (l + "post_attention_layernorm.weight", [a.dim]),
                (l + "self_attn.q_proj.weight", [a.dim, a.dim]), (l + "self_attn.k_proj.weight", [kv, a.dim]),
                (l + "self_attn.v_proj.weight", [kv, a.dim]), (l + "self_attn.o_proj.weight", [a.dim, a.dim]),
                (l + "mlp.gate_proj.weight", [a.ffn, a.dim]), (l + "mlp.up_proj.weight", [a.ffn, a.dim]),
                (l + "mlp.down_proj.weight", [a.dim, a.ffn])]
tensors.sort()
header, off = {}, 0
for name, shape in tensors:
    n = 2
    for d in shape: n *= d
    header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + n]}
    off += n
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
rng = random.Random(a.seed)
high = bytes(((b & 0x80) | 0x3C) for b in range(256))  # sign from the random byte, exponent 0x78/0x79
with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for name, shape in tensors:
        n = 1
        for d in shape: n *= d
        if name.endswith("norm.weight"):
            f.write(b"\x80\x3f" * n)
            continue
        buf = bytearray(2 * n)
        buf[0::2] = rng.randbytes(n)
        buf[1::2] = rng.randbytes(n).translate(high)
        f.write(buf)
json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": a.dim, "intermediate_size": a.ffn,
           "num_hidden_layers": a.layers, "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads,
           "vocab_size": a.vocab, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "tie_word_embeddings": False, "torch_dtype": "bfloat16"}, open(os.path.join(a.out, "config.json"), "w"), indent=1)
print(f"{a.out}: {off / 1e9:.2f} GB of bf16 weights")
