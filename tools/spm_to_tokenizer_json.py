#!/usr/bin/env python3
"""Converts a SentencePiece BPE tokenizer.model into a Hugging Face tokenizer.json the way transformers'
LlamaConverter does it (src/transformers/convert_slow_tokenizer.py; legacy Llama behaviour), stdlib only:

- model: BPE, vocab {piece: index} in the model's piece order (LlamaConverter.vocab keeps pieces 3.. and names
  0, 1, 2 after the tokenizer's <unk>, <s>, </s>), unk_token = trainer_spec.unk_piece, fuse_unk true, byte_fallback true;
- merges: generate_merges(vocab, vocab_scores): for every piece, each split into two pieces both in the vocabulary
  (sorted by the halves' ids), then all sorted by (score, len(left), len(right)) descending, stably;
- normalizer: Sequence[Prepend("▁"), Replace(" ", "▁")] (legacy, add_prefix_space true), no pre-tokenizer;
- decoder: Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0)];
- added_tokens: control pieces (type 3) as special, user-defined pieces (type 4) as not special.
No post-processor: BOS is the caller's choice. Usage: spm_to_tokenizer_json.py tokenizer.model out.json
"""
import json
import struct
import sys


def varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        f, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(b, i)
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        elif wire == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError(f"wire type {wire} at {i}")
        yield f, v


def main(src, dst):
    data = open(src, "rb").read()
    pieces, trainer = [], {}
    for f, v in fields(data):
        if f == 1:
            p = dict(fields(v))
            score = struct.unpack("<f", p[2])[0] if 2 in p else 0.0
            pieces.append((p.get(1, b"").decode("utf-8"), score, p.get(3, 1)))
        elif f == 2:
            trainer = dict(fields(v))
    if trainer.get(3, 1) != 2:
        raise SystemExit("not a BPE model (trainer_spec.model_type != 2)")
    unk_piece = trainer.get(45, b"<unk>").decode("utf-8")
    names = ["<unk>", "<s>", "</s>"]  # LlamaTokenizer's convert_ids_to_tokens(0..2)
    vocab_scores = [(names[i] if i < 3 else p, 0.0 if i < 3 else s) for i, (p, s, _) in enumerate(pieces)]
    vocab = {w: i for i, (w, _) in enumerate(vocab_scores)}
    merges = []
    for merge, score in dict(vocab_scores).items():
        local = []
        for k in range(1, len(merge)):
            left, right = merge[:k], merge[k:]
            if left in vocab and right in vocab:
                local.append((left, right, score))
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda v: (v[2], len(v[0]), len(v[1])), reverse=True)
    added = [{"id": i, "content": p, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": t == 3} for i, (p, _, t) in enumerate(pieces) if t in (3, 4)]
    out = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None, "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": unk_piece, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [[a, b] for a, b, _ in merges]},
    }
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
    print(f"{dst}: {len(vocab)} pieces, {len(merges)} merges")


if __name__ == "__main__":
    main(*sys.argv[1:3])
