#!/usr/bin/python3
"""ner_ref.py - PyTorch reference for examples/ner.c: BertForTokenClassification with softmax or a CRF.

Independent of the C code: reads tests/data/ner_sample.json (CLUENER2020 train.json lines 1-7 and
1507, the one train record with overlapping mentions) and tests/data/ner_vocab.txt (those records'
characters lower-cased, a few left out so that [UNK] occurs), and builds what ner.c documents:
one token per character (lower-cased, else [UNK]), BIO tags over the 10 CLUENER types (an
overlapping mention loses to the one starting first, then the longer), windows of
max_seq_length - 2 characters (max_seq_length - 2) // 2 apart with the last one ending at the
text's end, the first batch in file order, [CLS] chars [SEP] padded to the batch's longest window.
The model is bert_ref.forward (float64, dropout on with bert.h's counter-based RNG at the encoder's
sites 0..3L) on the weights written to ner_init.safetensors, then dropout at site 1+3L (ner.c's
one more dropout call), a dense classifier over every token, and either softmax cross-entropy
(the mean over the characters) or a linear-chain CRF written here (transitions (K+2,K+2), START =
K, STOP = K+1, row = from; forward algorithm with torch.logsumexp, the mean NLL over the
windows; grads by autograd). Writes
  ner_init.safetensors   the tiny model (F32, HF names, classifier.*, crf.transitions), config in metadata
  ner_ref.safetensors    per case ("softmax": max_seq_length 64, batch 8; "crf": max_seq_length 16,
                         batch 12, so texts become windows): input_ids, labels, crf_tags, lengths,
                         loss, grad.<name> for every tensor the case's model has
    /usr/bin/python3 tests/ref/ner_ref.py --out tests/ref
"""
import argparse, json, os, sys
import numpy as np
import torch
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_ref

TYPES = "address,book,company,game,government,movie,name,organization,position,scene".split(",")
K = 1 + 2 * len(TYPES)
C, L, NH, FF, P, TV = 16, 2, 2, 32, 64, 2
SEED, PDROP = 7, 0.1
CASES = [("softmax", False, 64, 8), ("crf", True, 16, 12)]   # name, CRF, max_seq_length, batch

def load_vocab(path):
    return {line.rstrip("\n"): i for i, line in enumerate(open(path, encoding="utf-8"))}

def bio_tags(rec):
    n = len(rec["text"]); tags = [0] * n
    spans = [(TYPES.index(t), s, e) for t, ents in rec["label"].items() for ent, sp in ents.items() for s, e in sp]
    for t, s, e in sorted(spans, key=lambda x: (x[1], -(x[2] - x[1]))):
        if any(tags[s:e + 1]): continue   # overlaps an earlier mention
        tags[s] = 1 + 2 * t
        for i in range(s + 1, e + 1): tags[i] = 2 + 2 * t
    return tags

def windows(n, W):
    S = max(W // 2, 1)
    out, s = [], 0
    while n > 0:
        out.append((s, min(W, n - s)))
        if s + W >= n: break
        s = min(s + S, n - W)
    return out

def make_batch(recs, vocab, T, B):
    W, items = T - 2, []
    for r in recs:
        ids = [vocab.get(ch.lower(), vocab["[UNK]"]) for ch in r["text"]]
        tags = bio_tags(r)
        items += [(ids[s:s + n], tags[s:s + n]) for s, n in windows(len(ids), W)]
    items = items[:B]
    Tc = max(len(i) for i, _ in items); Tb = Tc + 2
    ids = np.full((B, Tb), vocab["[PAD]"]); mask = np.zeros((B, Tb)); labels = np.full((B, Tb), -100)
    ctags = np.zeros((B, Tc)); lengths = np.zeros(B)
    for b, (i, t) in enumerate(items):
        n = len(i)
        ids[b, :n + 2] = [vocab["[CLS]"]] + i + [vocab["[SEP]"]]
        mask[b, :n + 2] = 1
        labels[b, 1:n + 1] = t
        ctags[b, :n] = t
        lengths[b] = n
    i32 = lambda a: np.asarray(a).astype(np.int32)
    return i32(ids), i32(mask), i32(labels), i32(ctags), i32(lengths)

def crf_nll(em, tr, tags, lengths):
    """em (B,Tc,K), tr (K+2,K+2): mean over the sequences of log Z - score(tags)."""
    S, E, out = K, K + 1, []
    for b in range(em.shape[0]):
        n = int(lengths[b]); e = em[b, :n]; y = torch.as_tensor(tags[b, :n]).long()
        score = tr[S, y[0]] + e[torch.arange(n), y].sum() + tr[y[:-1], y[1:]].sum() + tr[y[-1], E]
        alpha = tr[S, :K] + e[0]
        for t in range(1, n):
            alpha = torch.logsumexp(alpha[:, None] + tr[:K, :K], 0) + e[t]
        out.append(torch.logsumexp(alpha + tr[:K, E], 0) - score)
    return torch.stack(out).mean()

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=here)
    args = ap.parse_args()
    torch.set_num_threads(1)
    vocab = load_vocab(os.path.join(root, "tests", "data", "ner_vocab.txt"))
    recs = [json.loads(l) for l in open(os.path.join(root, "tests", "data", "ner_sample.json"), encoding="utf-8")]
    V = len(vocab)
    table = bert_ref.param_table(V, C, L, FF, P, TV) + [("classifier.weight", (K, C)), ("classifier.bias", (K,)),
                                                          ("crf.transitions", (K + 2, K + 2))]
    W32 = bert_ref.make_weights(table, seed=3)
    W32["crf.transitions"] = np.random.RandomState(4).uniform(-0.5, 0.5, (K + 2, K + 2)).astype(np.float32)
    config = {"vocab_size": V, "hidden_size": C, "num_hidden_layers": L, "num_attention_heads": NH,
              "intermediate_size": FF, "hidden_act": "gelu", "hidden_dropout_prob": PDROP,
              "attention_probs_dropout_prob": PDROP, "max_position_embeddings": P, "type_vocab_size": TV,
              "initializer_range": 0.02, "layer_norm_eps": 1e-12}
    bert_ref.save(os.path.join(args.out, "ner_init.safetensors"), [(n, W32[n]) for n, _ in table],
                  {"format": "bert.h", "config": json.dumps(config)})
    f32 = lambda t: t.detach().numpy().astype(np.float32)
    out = []
    for name, use_crf, T, B in CASES:
        ids, mask, labels, ctags, lengths = make_batch(recs, vocab, T, B)
        W = {n: torch.from_numpy(W32[n].astype(np.float64)).requires_grad_(True) for n, _ in table}
        Bn, Tb = ids.shape
        inp = {"input_ids": torch.from_numpy(ids).long(), "token_type_ids": torch.zeros(Bn, Tb, dtype=torch.long),
               "attention_mask": torch.from_numpy(mask).long(), "masked_lm_positions": torch.zeros(Bn, 1, dtype=torch.long),
               "masked_lm_ids": torch.zeros(Bn, 1, dtype=torch.long), "next_sentence_label": torch.zeros(Bn, dtype=torch.long)}
        cfg = {"p": PDROP, "seed": SEED, "step": 0}
        o = bert_ref.forward(W, inp, "gelu", cfg, NH=NH)
        x = bert_ref.dropout(o[f"layer.{L - 1}"], 1 + 3 * L, cfg)   # the classifier's dropout: one more site
        logits = x @ W["classifier.weight"].T + W["classifier.bias"]
        if use_crf:
            loss = crf_nll(logits[:, 1:-1], W["crf.transitions"], ctags, lengths)
        else:
            loss = F.cross_entropy(logits.reshape(-1, K), torch.from_numpy(labels).long().reshape(-1), ignore_index=-100)
        loss.backward()
        print(f"{name}: batch {Bn}x{Tb}, {int(lengths.sum())} characters, loss {loss.item():.10f}")
        out += [(f"{name}.input_ids", ids), (f"{name}.labels", labels), (f"{name}.crf_tags", ctags),
                (f"{name}.lengths", lengths), (f"{name}.loss", f32(loss).reshape(1))]
        grad = lambda n: W[n].grad if W[n].grad is not None else torch.zeros_like(W[n])   # unused: the pooler, cls.*
        out += [(f"{name}.grad.{n}", f32(grad(n))) for n, _ in table if use_crf or n != "crf.transitions"]
    bert_ref.save(os.path.join(args.out, "ner_ref.safetensors"), out,
                  {"sample": "tests/data/ner_sample.json", "vocab": "tests/data/ner_vocab.txt", "seed": str(SEED)})

if __name__ == "__main__":
    main()
