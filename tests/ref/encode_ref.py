#!/usr/bin/python3
"""encode_ref.py - reference sentence embeddings for examples/encode.c.

Tokenizes tests/data/encode_lines.txt with tokenizer_ref.py (uncased vocab from ../shared/data),
builds [CLS] A [SEP] (B [SEP]) per line ("A ||| B" is a pair), cuts lines over --max_seq_length
from the end of the longer side, runs bert_ref.forward (float64, dropout off) on the weights of
tests/ref/pretrain_init.safetensors one line at a time, and writes encode_ref.safetensors:
  pooled (N,C), mean (N,C) (last layer averaged over the line's tokens), and the ids of each line
  in the metadata ("ids": one line of space-separated ids per input line).
    /usr/bin/python3 tests/ref/encode_ref.py --out tests/ref
"""
import argparse, json, os, sys
import numpy as np
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_ref
import tokenizer_ref

def line_ids(line, vocab, T):
    a, _, b = line.partition("|||")
    pieces = lambda s: [vocab[p] for w in tokenizer_ref.basic_tokenize(s, True) for p in tokenizer_ref.wordpiece(w, vocab)]
    ta, tb = pieces(a), pieces(b) if "|||" in line else []
    room = T - (3 if "|||" in line else 2)
    while len(ta) + len(tb) > room:   # drop from the end of the longer side
        if len(ta) > len(tb): ta.pop()
        else: tb.pop()
    ids = [vocab["[CLS]"]] + ta + [vocab["[SEP]"]]
    types = [0] * len(ids)
    if "|||" in line:
        ids += tb + [vocab["[SEP]"]]
        types += [1] * (len(tb) + 1)
    return ids, types

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=here)
    ap.add_argument("--vocab", default=os.path.join(root, "..", "shared", "data", "vocab", "bert_uncased_vocab.txt"))
    ap.add_argument("--max_seq_length", type=int, default=24)
    args = ap.parse_args()
    if not os.path.exists(args.vocab):
        print("encode_ref: SKIP: %s absent" % args.vocab, file=sys.stderr)
        return
    torch.set_num_threads(1)
    vocab = tokenizer_ref.load_vocab(args.vocab)
    W32, meta = bert_ref.st_read(os.path.join(here, "pretrain_init.safetensors"))
    cfg = json.loads(meta["config"])
    W = {n: torch.from_numpy(np.asarray(a, dtype=np.float64)) for n, a in W32.items()}
    lines = open(os.path.join(root, "tests", "data", "encode_lines.txt"), "rb").read().decode("utf-8").split("\n")[:-1]
    pooled, mean, id_lines = [], [], []
    for line in lines:
        ids, types = line_ids(line, vocab, args.max_seq_length)
        n = len(ids)
        inp = {"input_ids": torch.tensor([ids]), "token_type_ids": torch.tensor([types]),
               "attention_mask": torch.ones(1, n, dtype=torch.long),
               "masked_lm_positions": torch.zeros(1, 1, dtype=torch.long),
               "masked_lm_ids": torch.tensor([[0]]), "next_sentence_label": torch.tensor([0])}
        o = bert_ref.forward(W, inp, cfg["hidden_act"], {"p": 0.0, "seed": 0, "step": 0}, NH=cfg["num_attention_heads"])
        pooled.append(o["pooled"][0].numpy())
        mean.append(o["layer.%d" % (cfg["num_hidden_layers"] - 1)][0].mean(0).numpy())
        id_lines.append(" ".join(map(str, ids)))
        print("%3d tokens | %s" % (n, line[:60]))
    f32 = lambda x: np.asarray(x, dtype=np.float32)
    bert_ref.save(os.path.join(args.out, "encode_ref.safetensors"), [("pooled", f32(pooled)), ("mean", f32(mean))],
                  {"ids": "\n".join(id_lines), "max_seq_length": str(args.max_seq_length),
                   "weights": "pretrain_init.safetensors", "lines": "tests/data/encode_lines.txt"})

if __name__ == "__main__":
    main()
