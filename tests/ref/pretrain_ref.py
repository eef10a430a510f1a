#!/usr/bin/env python3
"""Independent PyTorch reference for a short examples/pretrain.c run (float64, torch autograd).

It reproduces, from the documented semantics and NOT from pretrain.c's code, the run

  build/pretrain --input ../shared/data/pretrain_tfrecord/tf_examples.tfrecord
      --init tests/ref/pretrain_init.safetensors --batch_size 4 --accumulation_steps 2 --steps 6
      --optimizer lamb --lr 1e-3 --warmup_steps 2 --eval_records 4 --seed 7 --out DIR

(other flags at their defaults: clip_norm 1, weight_decay 0.01, beta1 .9, beta2 .999, eps 1e-6,
poly_power 1, end_lr 0), and writes two fixtures (see SPEC.md, "Pretraining run"):
  pretrain_init.safetensors  the initial weights (F32, HF names) + config metadata; no data needed
  pretrain_ref.safetensors   per-step losses, the epoch-0 permutation, the final weights
Pieces: a TFRecord reader (CRC32C checked) and tf.train.Example decoder written here with the
stdlib; the model, dropout RNG and LAMB of bert_ref.py (imported, same numerics); the data order
and loss normalisation described in pretrain.c's header comment.

Run:   /usr/bin/python3 tests/ref/pretrain_ref.py [--out DIR] [--tfrecord PATH]
(`make ref` does this). Without the TFRecord file it writes only the init file, prints a skip line
and exits 0. Output is deterministic.
"""
import argparse, hashlib, json, math, os, struct, sys
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_ref  # noqa: E402  (model, dropout RNG, LAMB update, safetensors writer)

# ---------------------------------------------------------------- the run
CONFIG = {"vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
          "intermediate_size": 64, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
          "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 128, "type_vocab_size": 2,
          "initializer_range": 0.02, "layer_norm_eps": 1e-12}
SEQ, PRED = 128, 20                   # --max_seq_length, --max_predictions_per_seq defaults
BATCH, ACCUM, STEPS = 4, 2, 6
LR, WARMUP, END_LR, POWER = 1e-3, 2, 0.0, 1.0
B1, B2, ADAM_EPS, WD, CLIP = 0.9, 0.999, 1e-6, 0.01, 1.0
EVAL_RECORDS, SEED = 4, 7
SHUFFLE_SITE = 0x5348554646           # "SHUFF"
DEFAULT_TFRECORD = "../shared/data/pretrain_tfrecord/tf_examples.tfrecord"
COMMAND = ("build/pretrain --input " + DEFAULT_TFRECORD + " --init tests/ref/pretrain_init.safetensors"
           " --batch_size 4 --accumulation_steps 2 --steps 6 --optimizer lamb --lr 1e-3 --warmup_steps 2"
           " --eval_records 4 --seed 7 --out DIR")
FEATURES = {"input_ids": SEQ, "input_mask": SEQ, "segment_ids": SEQ, "masked_lm_positions": PRED,
            "masked_lm_ids": PRED, "masked_lm_weights": PRED, "next_sentence_labels": 1}

def table():
    c = CONFIG
    return bert_ref.param_table(V=c["vocab_size"], C=c["hidden_size"], L=c["num_hidden_layers"],
                                FF=c["intermediate_size"], P=c["max_position_embeddings"], TV=c["type_vocab_size"])

# ---------------------------------------------------------------- TFRecord + tf.train.Example
def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t
CRC_TABLE = _crc32c_table()

def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF

def masked_crc(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF

def read_tfrecord(path):
    """[u64 len][u32 masked crc32c(len bytes)][data][u32 masked crc32c(data)], little-endian."""
    buf, out, off = open(path, "rb").read(), [], 0
    while off < len(buf):
        assert off + 12 <= len(buf), f"{path}: truncated header of record {len(out)}"
        n = struct.unpack_from("<Q", buf, off)[0]
        assert struct.unpack_from("<I", buf, off + 8)[0] == masked_crc(buf[off:off + 8]), f"record {len(out)}: length CRC"
        assert off + 16 + n <= len(buf), f"{path}: truncated record {len(out)}"
        data = buf[off + 12:off + 12 + n]
        assert struct.unpack_from("<I", buf, off + 12 + n)[0] == masked_crc(data), f"record {len(out)}: data CRC"
        out.append(data); off += 16 + n
    return out

def pb_fields(b):
    """Yields (field, wire, value) of one protobuf message: value is int (varint/fixed) or bytes."""
    i = 0
    def varint():
        nonlocal i
        v = s = 0
        while True:
            c = b[i]; i += 1; v |= (c & 0x7F) << s; s += 7
            if c < 0x80: return v
    while i < len(b):
        key = varint(); field, wire = key >> 3, key & 7
        if wire == 0: yield field, wire, varint()
        elif wire == 1: yield field, wire, b[i:i + 8]; i += 8
        elif wire == 2:
            n = varint(); yield field, wire, b[i:i + n]; i += n
        elif wire == 5: yield field, wire, b[i:i + 4]; i += 4
        else: raise ValueError(f"protobuf wire type {wire}")

def unpack_varints(b):
    out, i = [], 0
    while i < len(b):
        v = s = 0
        while True:
            c = b[i]; i += 1; v |= (c & 0x7F) << s; s += 7
            if c < 0x80: break
        out.append(v - (1 << 64) if v >= 1 << 63 else v)  # int64 two's complement
    return out

def decode_example(data):
    """tf.train.Example: features(1) -> Features: repeated feature(1) map entry {key(1), value(2) Feature};
    Feature oneof bytes_list(1) / float_list(2) / int64_list(3), each with repeated field 1 (packed or not)."""
    ex = {}
    for f, w, feats in pb_fields(data):
        if f != 1 or w != 2: continue
        for f2, w2, entry in pb_fields(feats):
            if f2 != 1 or w2 != 2: continue
            key, value = None, b""
            for f3, w3, v in pb_fields(entry):
                if f3 == 1 and w3 == 2: key = v.decode()
                if f3 == 2 and w3 == 2: value = v
            vals = None
            for kind, w4, lst in pb_fields(value):
                if w4 != 2: continue
                vals = []
                for f5, w5, x in pb_fields(lst):
                    if f5 != 1: continue
                    if kind == 1: vals.append(x)                                          # bytes
                    elif kind == 2:                                                         # float
                        vals += list(struct.unpack(f"<{len(x) // 4}f", x)) if w5 == 2 else [struct.unpack("<f", x)[0]]
                    elif kind == 3:                                                         # int64
                        vals += unpack_varints(x) if w5 == 2 else [x - (1 << 64) if x >= 1 << 63 else x]
            assert key not in ex, f"feature {key} twice"
            ex[key] = vals
    return ex

def load_records(path):
    recs = []
    for i, data in enumerate(read_tfrecord(path)):
        ex = decode_example(data)
        for name, n in FEATURES.items():
            assert name in ex and len(ex[name]) == n, f"record {i}: feature {name}"
        assert all(w in (0.0, 1.0) for w in ex["masked_lm_weights"]), f"record {i}: weights not 0/1"
        assert all(0 <= t < CONFIG["vocab_size"] for t in ex["input_ids"]), f"record {i}: ids"
        recs.append(ex)
    return recs

# ---------------------------------------------------------------- data order and batches
def permutation(n, seed, epoch):
    """Fisher-Yates over [0,n): j = bert_rng_bits(stream, i) % (i+1), stream = bert_rng_stream(seed, epoch, SHUFF)."""
    mix = bert_ref.mix_int
    stream = mix(mix(mix(seed) ^ epoch) ^ SHUFFLE_SITE)
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = mix(stream ^ i) % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm

def make_batch(recs):
    """Model inputs of a micro-batch; slots with weight 0 get position 0 and label -100."""
    g = lambda k: torch.tensor([r[k] for r in recs], dtype=torch.int64)
    w = torch.tensor([r["masked_lm_weights"] for r in recs], dtype=torch.float64)
    pos, lab = g("masked_lm_positions"), g("masked_lm_ids")
    pos[w == 0] = 0; lab[w == 0] = -100
    return {"input_ids": g("input_ids"), "token_type_ids": g("segment_ids"), "attention_mask": g("input_mask"),
            "masked_lm_positions": pos, "masked_lm_ids": lab,
            "next_sentence_label": g("next_sentence_labels").reshape(-1)}, int((w > 0).sum())

def lr_at(s):
    return bert_ref.lr_at(s, peak=LR, warmup=WARMUP, total=STEPS, power=POWER, end=END_LR)

# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--tfrecord", default=os.path.join(root, DEFAULT_TFRECORD),
                    help="default: " + DEFAULT_TFRECORD + " from the repository root")
    ap.add_argument("--bf16", action="store_true", help="the same run with bf16 linear layers (bert_ref.BF16; "
                    "build/pretrain --precision bf16): writes pretrain_bf16_ref.safetensors only")
    args = ap.parse_args()
    bert_ref.BF16 = args.bf16
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value

    tab, NH = table(), CONFIG["num_attention_heads"]
    W32 = bert_ref.make_weights(tab, seed=0)
    if not args.bf16:
        bert_ref.save(os.path.join(args.out, "pretrain_init.safetensors"), [(n, W32[n]) for n, _ in tab],
                      {"format": "bert.h", "config": json.dumps(CONFIG)})
    if not os.path.exists(args.tfrecord):
        print(f"pretrain_ref: SKIP pretrain_ref.safetensors: {args.tfrecord} not found", file=sys.stderr)
        return 0

    recs = load_records(args.tfrecord)
    assert len(recs) == 60, len(recs)
    n_train = len(recs) - EVAL_RECORDS
    perm = permutation(n_train, SEED, 0)
    assert sorted(perm) == list(range(n_train))
    assert STEPS * ACCUM * BATCH <= n_train  # the whole run stays in epoch 0
    print(f"{len(recs)} records (CRCs ok), {n_train} train; perm[:12] = {perm[:12]}")

    W = {n: torch.from_numpy(W32[n].astype(np.float64)) for n, _ in tab}
    m = {n: torch.zeros_like(t) for n, t in W.items()}
    v = {n: torch.zeros_like(t) for n, t in W.items()}
    losses, mlms, nsps, lrs, norms, preds = [], [], [], [], [], []
    micro = 0
    for s in range(STEPS):
        batches = []
        for k in range(ACCUM):
            idx = perm[micro * BATCH:(micro + 1) * BATCH]
            inp, n_k = make_batch([recs[i] for i in idx])
            # masked-LM accounting: labelled slots = weight-1 slots = labels != -100
            assert n_k == int((inp["masked_lm_ids"] != -100).sum()) == sum(sum(recs[i]["masked_lm_weights"]) for i in idx)
            batches.append((micro, inp, n_k)); micro += 1
        N = sum(n for _, _, n in batches)
        Wg = {n: t.detach().clone().requires_grad_(True) for n, t in W.items()}
        loss = mlm = nsp = 0.0
        for k, inp, n_k in batches:
            cfg = {"p": CONFIG["hidden_dropout_prob"], "seed": SEED, "step": k}  # same p for attention
            o = bert_ref.forward(Wg, inp, CONFIG["hidden_act"], cfg, NH=NH)
            if n_k:
                # the mean over labelled slots, by hand, equals cross_entropy's ignore_index mean
                logp = torch.log_softmax(o["mlm_logits"], -1).detach()
                lab = inp["masked_lm_ids"].reshape(-1)
                sel = lab != -100
                by_hand = -logp[sel.nonzero().reshape(-1), lab[sel]].sum().item() / n_k
                assert abs(by_hand - o["mlm_loss"].item()) <= 1e-12 * abs(by_hand), (by_hand, o["mlm_loss"].item())
                mlm = mlm + (n_k / N) * o["mlm_loss"]
            nsp = nsp + o["nsp_loss"] / ACCUM
        loss = mlm + nsp
        loss.backward()
        G = {n: Wg[n].grad.detach() for n in W}
        lr = lr_at(s)
        norm = bert_ref.update("lamb", W, G, m, v, s, lr, B1, B2, ADAM_EPS, WD, CLIP)
        losses.append(loss.item()); mlms.append(float(mlm)); nsps.append(nsp.item())
        lrs.append(lr); norms.append(norm); preds.append(N)
        print(f"step {s + 1}: loss {losses[-1]:.9f} mlm {mlms[-1]:.9f} nsp {nsps[-1]:.9f} "
              f"lr {lr:.6g} |g| {norm:.9f} predictions {N}")

    f32 = lambda x: np.asarray(x, dtype=np.float64).astype(np.float32)
    tens = [("losses", f32(losses)), ("mlm_losses", f32(mlms)), ("nsp_losses", f32(nsps)),
            ("lrs", f32(lrs)), ("grad_norms", f32(norms)), ("predictions", np.array(preds, dtype=np.int32)),
            ("perm", np.array(perm, dtype=np.int32))]
    tens += [("final." + n, W[n].numpy().astype(np.float32)) for n, _ in tab]
    sha = hashlib.sha256(open(args.tfrecord, "rb").read()).hexdigest()
    meta = {"command": COMMAND + (" --precision bf16" if args.bf16 else ""), "steps": str(STEPS), "seed": str(SEED),
            "tfrecord_sha256": sha, "init": "pretrain_init.safetensors"}
    bert_ref.save(os.path.join(args.out, "pretrain_bf16_ref.safetensors" if args.bf16 else "pretrain_ref.safetensors"), tens, meta)
    return 0

if __name__ == "__main__":
    sys.exit(main())
