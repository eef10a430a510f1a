#!/usr/bin/python3
"""classify_ref.py - reference for bert.h's sequence-classification head (bert_classify_forward).

HF BertForSequenceClassification on bert_ref.forward (float64, torch autograd): the pooled output,
dropout on it as one more dropout call after the encoder's (site 1 + 3L, same counter-based RNG as
bert.h), then classifier.weight/bias. Two heads on one encoder and one batch, dropout on:
  3 labels  softmax cross-entropy, mean over rows whose label != -100 (one row is -100)
  1 label   mean squared error against float targets (STS-B-style regression)
Writes classify_ref.safetensors: the weights (HF names; the regression head as reg.classifier.*),
the inputs, labels, targets, logits, both losses and the gradient of every parameter that gets one
(grad.NAME for the 3-label head, reg.grad.NAME for regression, its head named classifier.* there as
in the C model; the MLM/NSP heads get none).
    /usr/bin/python3 tests/ref/classify_ref.py --out tests/ref
    /usr/bin/python3 tests/ref/classify_ref.py --make-vocab tests/data/classify_vocab.txt   (once, by hand)
"""
import argparse, json, os, sys
import numpy as np
import torch
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_ref

V, C, L, NH, FF, P, TV = 112, 32, 2, 4, 64, 32, 2   # smaller than bert_ref's tiny config: a small fixture
B, T, K = 4, 12, 3
SEED, STEP, PDROP = 1234, 3, 0.1

def inputs():
    rs = np.random.RandomState(7)
    ids = rs.randint(5, V, size=(B, T))
    ids[:, 0] = 2                      # a [CLS]-like first token
    tt = np.zeros((B, T)); tt[1, 6:] = 1; tt[3, 5:9] = 1   # two sentence pairs
    am = np.ones((B, T)); am[2, 7:] = 0; am[3, 9:] = 0     # two padded rows
    i32 = lambda a: np.asarray(a).astype(np.int32)
    labels = i32([2, -100, 1, 0])
    targets = np.array([0.25, 3.5, -1.0, 4.75], dtype=np.float32)
    return i32(ids), i32(tt), i32(am), labels, targets

def head(W, inp, cfg, wname, bname):
    o = bert_ref.forward(W, inp, "gelu", cfg, NH=NH)
    pooled = bert_ref.dropout(o["pooled"], 1 + 3 * L, cfg)   # the classifier's dropout site
    return o["pooled"], pooled @ W[wname].T + W[bname]

def run(W64, inp, cfg, labels, targets, reg):
    W = {n: t.detach().clone().requires_grad_(True) for n, t in W64.items()}
    wn, bn = ("reg.classifier.weight", "reg.classifier.bias") if reg else ("classifier.weight", "classifier.bias")
    pooled, logits = head(W, inp, cfg, wn, bn)
    if reg:
        loss = F.mse_loss(logits.squeeze(-1), torch.from_numpy(targets.astype(np.float64)))
    else:
        loss = F.cross_entropy(logits, torch.from_numpy(labels.astype(np.int64)), ignore_index=-100)
    loss.backward()
    grads = {n: W[n].grad.detach() for n in W if W[n].grad is not None}
    return pooled, logits, loss, grads

def make_vocab(path):
    """tests/data/classify_vocab.txt: the special tokens, then every basic-tokenizer word (uncased) of
    the committed classify_* excerpts, sorted, so the C test tokenizes them without ../shared/data."""
    import tokenizer_ref
    data = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
    words = set()
    for name in sorted(os.listdir(data)):
        if not name.startswith("classify_") or name.endswith("_vocab.txt") or "labels" in name:
            continue
        for line in open(os.path.join(data, name), encoding="utf-8-sig"):
            texts = [json.loads(line)["sentence"]] if name.endswith(".json") else line.rstrip("\n").split("\t")
            for t in texts:
                words.update(tokenizer_ref.basic_tokenize(t, True))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(words)) + "\n")
    print("wrote %s (%d tokens)" % (path, len(words) + 5))

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=here)
    ap.add_argument("--make-vocab", metavar="PATH", help="write the test vocab of the tests/data excerpts instead")
    args = ap.parse_args()
    if args.make_vocab:
        return make_vocab(args.make_vocab)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    table = bert_ref.param_table(V=V, C=C, L=L, FF=FF, P=P, TV=TV)
    W32 = bert_ref.make_weights(table, seed=5)
    rs = np.random.RandomState(9)
    heads = [("classifier.weight", (K, C)), ("classifier.bias", (K,)), ("reg.classifier.weight", (1, C)), ("reg.classifier.bias", (1,))]
    for name, shape in heads:
        W32[name] = (0.2 if len(shape) == 2 else 0.1) * rs.standard_normal(shape).astype(np.float32)
    W64 = {n: torch.from_numpy(a.astype(np.float64)) for n, a in W32.items()}
    ids, tt, am, labels, targets = inputs()
    inp = {"input_ids": torch.from_numpy(ids.astype(np.int64)), "token_type_ids": torch.from_numpy(tt.astype(np.int64)),
           "attention_mask": torch.from_numpy(am.astype(np.int64)),
           "masked_lm_positions": torch.zeros(B, 1, dtype=torch.long), "masked_lm_ids": torch.zeros(B, 1, dtype=torch.long),
           "next_sentence_label": torch.zeros(B, dtype=torch.long)}
    cfg = {"p": PDROP, "seed": SEED, "step": STEP}
    f32 = lambda t: t.detach().numpy().astype(np.float32)
    config = {"vocab_size": V, "hidden_size": C, "num_hidden_layers": L, "num_attention_heads": NH,
              "intermediate_size": FF, "hidden_act": "gelu", "hidden_dropout_prob": PDROP,
              "attention_probs_dropout_prob": PDROP, "max_position_embeddings": P, "type_vocab_size": TV,
              "initializer_range": 0.02, "layer_norm_eps": bert_ref.EPS}
    tens = [(n, W32[n]) for n, _ in table] + [(n, W32[n]) for n, _ in heads]
    tens += [("input_ids", ids), ("token_type_ids", tt), ("attention_mask", am), ("labels", labels), ("targets", targets)]
    for reg, prefix in ((False, ""), (True, "reg.")):
        pooled, logits, loss, grads = run(W64, inp, cfg, labels, targets, reg)
        print("%s loss %.10f, %d grads" % ("regression (MSE)" if reg else "3 labels (xent)", loss.item(), len(grads)))
        tens += [(prefix + "pooled", f32(pooled)), (prefix + "logits", f32(logits)), (prefix + "loss", f32(loss).reshape(1))]
        # the regression head's grads under the names the C model gives it (classifier.*)
        tens += [(prefix + "grad." + n[len(prefix):] if n.startswith(prefix) else prefix + "grad." + n, f32(grads[n]))
                 for n, _ in table + heads if n in grads]
    meta = {"config": json.dumps(config), "seed": str(SEED), "step": str(STEP), "dropout": str(PDROP)}
    bert_ref.save(os.path.join(args.out, "classify_ref.safetensors"), tens, meta)

if __name__ == "__main__":
    main()
