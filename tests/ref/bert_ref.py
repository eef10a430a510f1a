#!/usr/bin/env python3
"""Independent PyTorch reference for bert.h (BERT pre-training in one C header).

A from-scratch post-LN BERT-for-pretraining (MLM + NSP, tied decoder) computed in
float64 with torch autograd, plus the counter-based dropout RNG and the five
optimizers of the spec, all written by hand (no transformers, no safetensors pkg).
It writes the committed test fixtures:
  tiny.safetensors                      weights (F32, HF names) + config metadata
  tiny_{erf,tanh}_{d0,d1}.safetensors   inputs, activations, losses, grads
                                        (erf_d0 also: 10-step optimizer runs,
                                         erf_d1 also: rng.u_site0)
Run:   /usr/bin/python3 tests/ref/bert_ref.py [--out DIR] [--check]
(`make ref` does this). Output is deterministic (byte-identical on rerun).
--check additionally runs a float64 finite-difference check of a few gradients.
"""
import argparse, json, math, os, struct, sys
import numpy as np
import torch
import torch.nn.functional as F

V, C, L, NH, FF, P, TV = 112, 64, 2, 4, 128, 32, 2
HS, EPS, B, T, MP = C // NH, 1e-12, 2, 16, 4
SEED, STEP, PDROP = 1234, 0, 0.1
OPTS = ["adamw_gb", "adamw", "lamb", "lamb_nv", "momentum"]

def param_table(V=V, C=C, L=L, FF=FF, P=P, TV=TV):
    """(name, shape) in flat-buffer order; defaults are the tiny config (pretrain_ref.py passes its own)."""
    t = [("bert.embeddings.word_embeddings.weight", (V, C)), ("bert.embeddings.position_embeddings.weight", (P, C)),
         ("bert.embeddings.token_type_embeddings.weight", (TV, C)),
         ("bert.embeddings.LayerNorm.weight", (C,)), ("bert.embeddings.LayerNorm.bias", (C,))]
    for l in range(L):
        p = f"bert.encoder.layer.{l}."
        t += [(p + "attention.self.query.weight", (C, C)), (p + "attention.self.key.weight", (C, C)),
              (p + "attention.self.value.weight", (C, C)), (p + "attention.self.query.bias", (C,)),
              (p + "attention.self.key.bias", (C,)), (p + "attention.self.value.bias", (C,)),
              (p + "attention.output.dense.weight", (C, C)), (p + "attention.output.dense.bias", (C,)),
              (p + "attention.output.LayerNorm.weight", (C,)), (p + "attention.output.LayerNorm.bias", (C,)),
              (p + "intermediate.dense.weight", (FF, C)), (p + "intermediate.dense.bias", (FF,)),
              (p + "output.dense.weight", (C, FF)), (p + "output.dense.bias", (C,)),
              (p + "output.LayerNorm.weight", (C,)), (p + "output.LayerNorm.bias", (C,))]
    t += [("bert.pooler.dense.weight", (C, C)), ("bert.pooler.dense.bias", (C,)),
          ("cls.predictions.transform.dense.weight", (C, C)), ("cls.predictions.transform.dense.bias", (C,)),
          ("cls.predictions.transform.LayerNorm.weight", (C,)), ("cls.predictions.transform.LayerNorm.bias", (C,)),
          ("cls.predictions.bias", (V,)), ("cls.seq_relationship.weight", (2, C)), ("cls.seq_relationship.bias", (2,))]
    return t

def no_decay(name):  # also "excluded from LAMB adaptation"
    return "LayerNorm" in name or "bias" in name

# ---------------------------------------------------------------- safetensors I/O
def st_write(path, tensors, metadata):
    """tensors: list of (name, np.ndarray float32|int32), written in that order."""
    hdr, blobs, off = {"__metadata__": dict(metadata)}, [], 0
    for name, a in tensors:
        a = np.ascontiguousarray(a)
        dt = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}[a.dtype]
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        hdr[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw); off += len(raw)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

def st_read(path):
    buf = open(path, "rb").read()
    n = struct.unpack("<Q", buf[:8])[0]
    hdr = json.loads(buf[8:8 + n]); meta = hdr.pop("__metadata__", {}); out = {}
    for name, d in hdr.items():
        s, e = d["data_offsets"]
        dt = {"F32": "<f4", "I32": "<i4"}[d["dtype"]]
        out[name] = np.frombuffer(buf[8 + n + s:8 + n + e], dtype=dt).reshape(d["shape"])
    return out, meta

def save(path, tensors, metadata):
    st_write(path, tensors, metadata)
    back, meta = st_read(path)
    assert meta == metadata and list(back) == [n for n, _ in tensors], path
    for n, a in tensors:
        assert back[n].dtype == a.dtype and np.array_equal(back[n], a), (path, n)
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")

# ---------------------------------------------------------------- dropout RNG
M64 = (1 << 64) - 1
def mix_int(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)

def mix_np(z):  # vectorised over uint64 arrays; wraparound is intended
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

def rng_u(seed, step, site, n):
    stream = mix_int(mix_int(mix_int(seed) ^ step) ^ site)
    z = mix_np(np.uint64(stream) ^ np.arange(n, dtype=np.uint64))
    return (z >> np.uint64(40)).astype(np.float64) * 2.0 ** -24

def dropout(x, site, cfg):
    p = cfg["p"]
    if p == 0.0:
        return x
    u = rng_u(cfg["seed"], cfg["step"], site, x.numel()).reshape(tuple(x.shape))
    return x * torch.from_numpy((u >= p) * (1.0 / (1.0 - p)))

# ---------------------------------------------------------------- model
def gelu(x, act):
    if act == "gelu":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))

def ln(x, w, b):
    mu = x.mean(-1, keepdim=True); var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + EPS) * w + b

# bf16 mixed precision as bert.h's bert_cpu_bf16_kernels defines it (set BF16 = True): each linear
# layer's GEMM inputs rounded to bf16 (from their float32 value, round to nearest even), products
# summed in float64 here; the backward rounds dout and the other operand the same way for dX and dW;
# the bias and everything else stay in full precision.
BF16 = False


def bf16(t):
    return t.float().to(torch.bfloat16).double()


class _BF16Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return bf16(x) @ bf16(w).T + b

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        d = bf16(dy)
        dx = d @ bf16(w)
        dw = d.reshape(-1, w.shape[0]).T @ bf16(x).reshape(-1, w.shape[1])
        return dx, dw, dy.reshape(-1, w.shape[0]).sum(0)


def linear(x, w, b):
    """x (..., IC) . w (OC, IC)^T + b (OC)."""
    return _BF16Linear.apply(x, w, b) if BF16 else x @ w.T + b


def heads(W, x, inp, act, o):
    """The pretraining heads on the last layer x (B,T,C) into o: pooler on token 0, NSP, the MLM
    transform + tied decoder at the masked positions, both losses and their sum. Returns o."""
    B, T, C = x.shape
    e = "bert.embeddings."
    pooled = torch.tanh(linear(x[:, 0], W["bert.pooler.dense.weight"], W["bert.pooler.dense.bias"]))
    o["pooled"] = pooled
    nsp = linear(pooled, W["cls.seq_relationship.weight"], W["cls.seq_relationship.bias"])
    o["nsp_logits"] = nsp
    pos = inp["masked_lm_positions"].long()
    g = x.reshape(B * T, C)[(torch.arange(B)[:, None] * T + pos).reshape(-1)]
    c = "cls.predictions."
    h = gelu(linear(g, W[c + "transform.dense.weight"], W[c + "transform.dense.bias"]), act)
    h = ln(h, W[c + "transform.LayerNorm.weight"], W[c + "transform.LayerNorm.bias"])
    mlm = linear(h, W[e + "word_embeddings.weight"], W[c + "bias"])
    o["mlm_logits"] = mlm
    o["mlm_loss"] = F.cross_entropy(mlm, inp["masked_lm_ids"].long().reshape(-1), ignore_index=-100)
    o["nsp_loss"] = F.cross_entropy(nsp, inp["next_sentence_label"].long())
    o["loss"] = o["mlm_loss"] + o["nsp_loss"]
    return o


def forward(W, inp, act, cfg, NH=NH):
    """W: name -> float64 tensor. Returns dict of named outputs (all float64 tensors).
    B, T come from the inputs, C and L from the weights; NH (not recoverable from the weights) is an
    argument defaulting to the tiny config's."""
    o = {}
    ids, tt, am = inp["input_ids"].long(), inp["token_type_ids"].long(), inp["attention_mask"].double()
    e = "bert.embeddings."
    B, T = ids.shape
    C = W[e + "word_embeddings.weight"].shape[1]
    L = sum(1 for n in W if n.startswith("bert.encoder.layer.") and n.endswith(".attention.self.query.weight"))
    HS = C // NH
    x = W[e + "word_embeddings.weight"][ids] + W[e + "position_embeddings.weight"][torch.arange(T)][None] \
        + W[e + "token_type_embeddings.weight"][tt]
    x = dropout(ln(x, W[e + "LayerNorm.weight"], W[e + "LayerNorm.bias"]), 0, cfg)
    o["emb"] = x
    ext = ((1.0 - am) * -10000.0)[:, None, None, :]  # (B,1,1,T) over keys
    for l in range(L):
        p = f"bert.encoder.layer.{l}."
        a = p + "attention.self."
        Wqkv = torch.cat([W[a + "query.weight"], W[a + "key.weight"], W[a + "value.weight"]], 0)
        bqkv = torch.cat([W[a + "query.bias"], W[a + "key.bias"], W[a + "value.bias"]], 0)
        qkv = linear(x, Wqkv, bqkv)
        o[f"layer.{l}.qkv"] = qkv
        q, k, v = (qkv[..., i * C:(i + 1) * C].reshape(B, T, NH, HS).transpose(1, 2) for i in range(3))
        s = q @ k.transpose(-1, -2) / math.sqrt(HS) + ext
        pr = dropout(torch.softmax(s, -1), 1 + 3 * l, cfg)          # (B,NH,T,T)
        ctx = (pr @ v).transpose(1, 2).reshape(B, T, C)
        o[f"layer.{l}.ctx"] = ctx
        ao = dropout(linear(ctx, W[p + "attention.output.dense.weight"], W[p + "attention.output.dense.bias"]), 2 + 3 * l, cfg)
        x1 = ln(ao + x, W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"])
        o[f"layer.{l}.attn_ln"] = x1
        f = gelu(linear(x1, W[p + "intermediate.dense.weight"], W[p + "intermediate.dense.bias"]), act)
        o[f"layer.{l}.ffn_act"] = f
        f2 = dropout(linear(f, W[p + "output.dense.weight"], W[p + "output.dense.bias"]), 3 + 3 * l, cfg)
        x = ln(f2 + x1, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"])
        o[f"layer.{l}"] = x
    return heads(W, x, inp, act, o)

def loss_and_grads(W64, inp, act, cfg):
    W = {n: t.detach().clone().requires_grad_(True) for n, t in W64.items()}
    o = forward(W, inp, act, cfg)
    o["loss"].backward()
    return o, {n: W[n].grad.detach() for n in W}

# ---------------------------------------------------------------- data
def make_weights(table=None, seed=0):
    rs = np.random.RandomState(seed); W = {}
    for name, shape in (table if table is not None else param_table()):
        if "LayerNorm.weight" in name:
            a = 1.0 + 0.1 * rs.standard_normal(shape)
        elif len(shape) == 1:
            a = 0.02 * rs.standard_normal(shape)
        else:  # truncated normal, std 0.02, resample outside 2 std (as TF truncated_normal)
            a = rs.standard_normal(shape)
            while True:
                bad = np.abs(a) > 2.0
                if not bad.any(): break
                a[bad] = rs.standard_normal(int(bad.sum()))
            a = 0.02 * a
        W[name] = a.astype(np.float32)
    return W

def make_inputs():
    rs = np.random.RandomState(1)
    ids = rs.randint(0, V, size=(B, T))
    tt = np.zeros((B, T)); tt[:, T // 2:] = 1
    am = np.ones((B, T)); am[1, 11:] = 0
    pos = np.zeros((B, MP)); lab = np.full((B, MP), -100)
    pos[0] = rs.choice(T, MP, replace=False); lab[0] = rs.randint(0, V, MP)
    pos[1, :MP - 1] = rs.choice(np.arange(1, 11), MP - 1, replace=False); lab[1, :MP - 1] = rs.randint(0, V, MP - 1)
    nsl = np.array([0, 1])
    i32 = lambda a: np.asarray(a).astype(np.int32)
    return [("input_ids", i32(ids)), ("token_type_ids", i32(tt)), ("attention_mask", i32(am)),
            ("masked_lm_positions", i32(pos)), ("masked_lm_ids", i32(lab)), ("next_sentence_label", i32(nsl))]

# ---------------------------------------------------------------- optimizers
def lr_at(s, peak=5e-3, warmup=3, total=10, power=1.0, end=0.0):
    decayed = (peak - end) * (1.0 - min(s, total) / total) ** power + end
    return peak * s / warmup if s < warmup else decayed

def train(opt, W0, inp, steps=10, b1=0.9, b2=0.999, eps=1e-6, wd=0.01, clip=1.0):
    W = {n: t.clone() for n, t in W0.items()}
    m = {n: torch.zeros_like(t) for n, t in W.items()}; v = {n: torch.zeros_like(t) for n, t in W.items()}
    losses, cfg = [], {"p": 0.0, "seed": SEED, "step": STEP}
    for s in range(steps):
        o, G = loss_and_grads(W, inp, "gelu", cfg)
        losses.append(o["loss"].item())
        update(opt, W, G, m, v, s, lr_at(s), b1, b2, eps, wd, clip)
    return losses, W

def update(opt, W, G, m, v, s, lr, b1=0.9, b2=0.999, eps=1e-6, wd=0.01, clip=1.0):
    """One optimizer update in place (W, m, v: name -> tensor): global-norm clip of G, then the rule
    of `opt`; s = updates done before this one. Returns the pre-clip gradient norm."""
    norm = math.sqrt(sum((g * g).sum().item() for g in G.values()))
    if norm > clip:
        G = {n: g * (clip / norm) for n, g in G.items()}
    t = s + 1
    for n, g in G.items():
        p = W[n]
        if opt == "momentum":
            m[n] = 0.9 * m[n] + g; W[n] = p - lr * m[n]; continue
        m[n] = b1 * m[n] + (1 - b1) * g; v[n] = b2 * v[n] + (1 - b2) * g * g
        if opt in ("adamw", "lamb_nv"):
            u = (m[n] / (1 - b1 ** t)) / (torch.sqrt(v[n] / (1 - b2 ** t)) + eps)
        else:
            u = m[n] / (torch.sqrt(v[n]) + eps)
        if not no_decay(n):
            u = u + wd * p
        ratio = 1.0
        if opt == "lamb_nv" or (opt == "lamb" and not no_decay(n)):
            pn, un = p.norm().item(), u.norm().item()
            ratio = pn / un if (pn > 0 and un > 0) else 1.0
        W[n] = p - lr * ratio * u
    return norm

# ---------------------------------------------------------------- main
def fd_check(W64, inp, act, cfg):
    _, G = loss_and_grads(W64, inp, act, cfg)
    for name, idx in [("bert.encoder.layer.0.attention.self.query.weight", (3, 5)),
                      ("bert.embeddings.word_embeddings.weight", (int(inp["input_ids"][0, 2]), 7)),
                      ("cls.predictions.transform.LayerNorm.weight", (11,)), ("bert.encoder.layer.1.output.dense.bias", (2,))]:
        h, Wp, Wm = 1e-5, dict(W64), dict(W64)
        Wp[name] = W64[name].clone(); Wp[name][idx] += h
        Wm[name] = W64[name].clone(); Wm[name][idx] -= h
        fd = (forward(Wp, inp, act, cfg)["loss"].item() - forward(Wm, inp, act, cfg)["loss"].item()) / (2 * h)
        ag = G[name][idx].item()
        print(f"  fd-check {act} p={cfg['p']} {name}{list(idx)}: autograd {ag:.10e} fd {fd:.10e} rel {abs(ag - fd) / max(abs(ag), 1e-12):.2e}")
        assert abs(ag - fd) <= 1e-6 * max(abs(ag), 1e-3), name

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--check", action="store_true", help="also run finite-difference gradient checks")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)

    # RNG self-check: vectorised numpy vs pure-python ints
    u = rng_u(SEED, STEP, 0, 64)
    st = mix_int(mix_int(mix_int(SEED) ^ STEP) ^ 0)
    assert all(u[i] == (mix_int(st ^ i) >> 40) * 2.0 ** -24 for i in range(64))
    print("rng u[0:8] (seed 1234, step 0, site 0):", " ".join(f"{x:.8f}" for x in u[:8]))

    W32 = make_weights()
    config = {"vocab_size": V, "hidden_size": C, "num_hidden_layers": L, "num_attention_heads": NH,
              "intermediate_size": FF, "hidden_act": "gelu", "hidden_dropout_prob": PDROP,
              "attention_probs_dropout_prob": PDROP, "max_position_embeddings": P, "type_vocab_size": TV,
              "initializer_range": 0.02, "layer_norm_eps": EPS}
    save(os.path.join(args.out, "tiny.safetensors"), [(n, W32[n]) for n, _ in param_table()],
         {"format": "bert.h", "config": json.dumps(config)})

    W64 = {n: torch.from_numpy(a.astype(np.float64)) for n, a in W32.items()}
    inputs = make_inputs()
    inp = {n: torch.from_numpy(a.astype(np.int64)) for n, a in inputs}
    f32 = lambda t: t.detach().numpy().astype(np.float32)
    for act, tag in (("gelu", "erf"), ("gelu_tanh", "tanh")):
        for d in (0, 1):
            cfg = {"p": PDROP if d else 0.0, "seed": SEED, "step": STEP}
            o, G = loss_and_grads(W64, inp, act, cfg)
            print(f"{tag}_d{d}: loss {o['loss'].item():.10f} mlm {o['mlm_loss'].item():.10f} nsp {o['nsp_loss'].item():.10f}")
            keys = ["emb"] + [f"layer.{l}.{k}" if k else f"layer.{l}" for l in range(L)
                              for k in ("qkv", "ctx", "attn_ln", "ffn_act", "")]
            keys += ["pooled", "mlm_logits", "nsp_logits"]
            tens = list(inputs) + [(k, f32(o[k])) for k in keys]
            tens += [(k, f32(o[k]).reshape(1)) for k in ("loss", "mlm_loss", "nsp_loss")]
            tens += [("grad." + n, f32(G[n])) for n, _ in param_table()]
            if tag == "erf" and d == 1:
                tens.append(("rng.u_site0", u.astype(np.float32)))
            if tag == "erf" and d == 0:
                for opt in OPTS:
                    losses, Wf = train(opt, W64, inp)
                    print(f"  {opt:9s} losses: " + " ".join(f"{x:.6f}" for x in losses))
                    tens.append((opt + ".losses", np.array(losses, dtype=np.float32)))
                    tens += [(f"{opt}.final.{n}", f32(Wf[n])) for n, _ in param_table()]
            if args.check:
                fd_check(W64, inp, act, cfg)
            meta = {"hidden_act": act, "dropout": str(cfg["p"]), "seed": str(SEED), "step": str(STEP)}
            save(os.path.join(args.out, f"tiny_{tag}_d{d}.safetensors"), tens, meta)

if __name__ == "__main__":
    main()
