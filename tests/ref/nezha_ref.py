#!/usr/bin/python3
"""nezha_ref.py - independent PyTorch reference for NEZHA's functional relative positions (issue 25).

A post-LN BERT-for-pretraining (MLM + NSP, tied decoder; bert_ref.py's LN, GELU and linear) whose
self-attention carries NEZHA's relative position term, computed in float64 with torch autograd and
written from the published semantics (Huawei NEZHA-TensorFlow modeling.py, transformers'
models/nezha/modeling_nezha.py, mindspore-ai/models official/nlp/Bert/src/bert_model.py), not from
their code. Per layer l and head h, head size d, query i, key j:
    a_ij  = R[clip(j - i, -K, K) + K]                         (one (2K+1, d) table for keys, values, heads)
    s_ij  = (q_i.k_j + q_i.a_ij) / sqrt(d) + (1 - m_j) * -10000
    alpha = softmax_j(s) ;  z_i = sum_j alpha_ij (v_j + a_ij)
Two flavours:
    huawei     R FIXED: R[p][2k] = sin(p / 10000^(2k/d)), R[p][2k+1] = cos(p / 10000^(2k/d)), p = 0..2K
               (the shifted index p = clip(j-i)+K, not the signed distance); no gradient
    mindspore  R LEARNED, one table per layer (a parameter with a gradient),
               bert.encoder.layer.N.attention.self.relative_positions_embeddings.weight (2K+1, d)
No absolute position embeddings in either (token-type embeddings kept); dropout off.
Writes nezha_ref.safetensors (F32 / I32, every name prefixed by the flavour):
    <f>.in.<input>   <f>.w.<HF name>   huawei.R (2K+1, d)   <f>.out.<output>   <f>.grad.<HF name>
    __metadata__ {"format": "bert.h", "huawei.config": json, "mindspore.config": json}
The self-checks (asserts) run every time: the fixed table against the formula, one attention row by
explicit loops, padded keys change nothing, K >= T-1 makes the clip a no-op, float64 finite differences.
    /usr/bin/python3 tests/ref/nezha_ref.py --out tests/ref
Output is deterministic (byte-identical on rerun).
"""
import argparse, json, math, os, sys
import numpy as np
import torch
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_ref
from bert_ref import ln, gelu, linear

V, C, L, NH, FF, P, TV = 112, 64, 2, 4, 128, 32, 2   # bert_ref's tiny config (P only bounds T here)
D = C // NH                                          # head size d = 16
K = 3                                                # max_relative_position: T = 16 > 2K+1 = 7
B, T, MP = 3, 16, 4
ACT = "gelu"                                         # erf GELU (HF NEZHA); Huawei's TF code uses the tanh form
TABLE_STD = 0.5                                      # learned tables' init (MindSpore's is 0.02: too faint a test)
FLAVOURS = ("huawei", "mindspore")
REL = "attention.self.relative_positions_embeddings.weight"


def param_table(flavour, k=K):
    """bert_ref's table without position_embeddings; mindspore: the layer's (2k+1, D) table after value.bias."""
    t = []
    for name, shape in bert_ref.param_table(V=V, C=C, L=L, FF=FF, P=P, TV=TV):
        if name == "bert.embeddings.position_embeddings.weight":
            continue
        t.append((name, shape))
        if flavour == "mindspore" and name.endswith("attention.self.value.bias"):
            t.append((name[:-len("attention.self.value.bias")] + REL, (2 * k + 1, D)))
    return t


def config(flavour):
    return {"vocab_size": V, "hidden_size": C, "num_hidden_layers": L, "num_attention_heads": NH,
            "intermediate_size": FF, "hidden_act": ACT, "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0, "max_position_embeddings": P, "type_vocab_size": TV,
            "initializer_range": 0.02, "layer_norm_eps": bert_ref.EPS, "use_relative_position": True,
            "max_relative_position": K, "relative_position_flavour": flavour}


def sinusoid_table(k, d):
    """The fixed (2k+1, d) table, float64: R[p][2i] = sin(p / 10000^(2i/d)), R[p][2i+1] = cos(same)."""
    assert d % 2 == 0
    p = np.arange(2 * k + 1, dtype=np.float64)[:, None]
    ang = p / np.power(10000.0, 2.0 * np.arange(d // 2, dtype=np.float64) / d)[None, :]
    R = np.zeros((2 * k + 1, d))
    R[:, 0::2], R[:, 1::2] = np.sin(ang), np.cos(ang)
    return R


def rel_index(t, k, clip=True):
    """(t, t) long: [i][j] = clip(j - i, -k, k) + k  (i = query, j = key)."""
    dist = torch.arange(t)[None, :] - torch.arange(t)[:, None]
    return (dist.clamp(-k, k) if clip else dist) + k


def forward(W, inp, flavour, k=K, R=None, clip=True, dbg=None):
    """W: name -> float64 tensor; R: the fixed table (huawei), else the layer tables in W are used."""
    o = {}
    ids, tt, am = inp["input_ids"].long(), inp["token_type_ids"].long(), inp["attention_mask"].double()
    e = "bert.embeddings."
    Bn, Tn = ids.shape
    x = ln(W[e + "word_embeddings.weight"][ids] + W[e + "token_type_embeddings.weight"][tt],
           W[e + "LayerNorm.weight"], W[e + "LayerNorm.bias"])
    o["emb"] = x
    ext = ((1.0 - am) * -10000.0)[:, None, None, :]            # (B,1,1,T): over keys j
    idx = rel_index(Tn, k, clip)
    for l in range(L):
        p = f"bert.encoder.layer.{l}."
        a = p + "attention.self."
        q, kk, v = (linear(x, W[a + n + ".weight"], W[a + n + ".bias"]).reshape(Bn, Tn, NH, D).transpose(1, 2)
                    for n in ("query", "key", "value"))        # (B,NH,T,D)
        table = R if flavour == "huawei" else W[p + REL]
        A = table[idx]                                         # (T,T,D): A[i,j] = a_ij
        s = (q @ kk.transpose(-1, -2) + torch.einsum("bhid,ijd->bhij", q, A)) / math.sqrt(D) + ext
        pr = torch.softmax(s, -1)
        z = pr @ v + torch.einsum("bhij,ijd->bhid", pr, A)
        if dbg is not None:
            dbg[l] = (q, kk, v, table)
        o[f"layer.{l}.probs"] = pr
        ctx = z.transpose(1, 2).reshape(Bn, Tn, C)
        o[f"layer.{l}.ctx"] = ctx
        x1 = ln(linear(ctx, W[p + "attention.output.dense.weight"], W[p + "attention.output.dense.bias"]) + x,
                W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"])
        o[f"layer.{l}.attn_ln"] = x1
        f = gelu(linear(x1, W[p + "intermediate.dense.weight"], W[p + "intermediate.dense.bias"]), ACT)
        x = ln(linear(f, W[p + "output.dense.weight"], W[p + "output.dense.bias"]) + x1,
               W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"])
        o[f"layer.{l}"] = x
    o["sequence_output"] = x
    return bert_ref.heads(W, x, inp, ACT, o)   # the pretraining heads exactly as bert_ref.forward


def loss_and_grads(W64, inp, flavour, **kw):
    W = {n: t.detach().clone().requires_grad_(True) for n, t in W64.items()}
    o = forward(W, inp, flavour, **kw)
    o["loss"].backward()
    return o, {n: W[n].grad.detach() for n in W}


# ---------------------------------------------------------------- data
def make_weights(flavour, k=K):
    W = bert_ref.make_weights(param_table("huawei"), seed=0)   # the BERT weights: the same in both flavours
    if flavour == "mindspore":
        for l in range(L):
            rs = np.random.RandomState(100 + l)
            W[f"bert.encoder.layer.{l}." + REL] = (TABLE_STD * rs.standard_normal((2 * k + 1, D))).astype(np.float32)
    return W


def make_inputs():
    rs = np.random.RandomState(25)
    ids = rs.randint(5, V, size=(B, T)); ids[:, 0] = 2
    tt = np.zeros((B, T)); tt[0, 8:] = 1; tt[1, 6:11] = 1; tt[2, 10:] = 1
    am = np.ones((B, T)); am[1, 11:] = 0; ids[1, 11:] = 0          # sequence 1: 11 tokens, 5 of padding
    pos = np.zeros((B, MP)); lab = np.full((B, MP), -100)
    pos[0] = [1, 5, 9, 15]; lab[0] = rs.randint(0, V, MP)          # first and last positions of row 0
    pos[1, :3] = [2, 7, 10]; lab[1, :3] = rs.randint(0, V, 3)      # only real tokens; slot 3 unused
    pos[2] = [3, 4, 12, 14]; lab[2] = rs.randint(0, V, MP)
    nsl = np.array([0, 1, 1])
    i32 = lambda a: np.asarray(a).astype(np.int32)
    return [("input_ids", i32(ids)), ("token_type_ids", i32(tt)), ("attention_mask", i32(am)),
            ("masked_lm_positions", i32(pos)), ("masked_lm_ids", i32(lab)), ("next_sentence_label", i32(nsl))]


# ---------------------------------------------------------------- self-checks
def check_table():
    R = sinusoid_table(K, D)
    for p in range(2 * K + 1):                                     # the formula, scalar by scalar
        for i in range(D // 2):
            w = p / 10000.0 ** (2 * i / D)
            assert abs(R[p, 2 * i] - math.sin(w)) <= 1e-15 and abs(R[p, 2 * i + 1] - math.cos(w)) <= 1e-15
    assert np.array_equal(R[0], np.tile([0.0, 1.0], D // 2))       # p = 0 is j-i = -K, not distance 0
    # transformers builds it as sin/cos(p * exp(2i * -ln(10000)/d)) in float32 at max_position_embeddings
    # and slices [:T, :T]; the same values up to float32 rounding
    pos = torch.arange(0, 2 * K + 1, dtype=torch.float).unsqueeze(1)
    div = torch.exp(torch.arange(0, D, 2).float() * (-math.log(10000.0) / D))
    hf = torch.zeros(2 * K + 1, D); hf[:, 0::2] = torch.sin(pos * div); hf[:, 1::2] = torch.cos(pos * div)
    dhf = np.abs(hf.double().numpy() - R).max()
    assert dhf < 1e-6, dhf
    print(f"  fixed table: formula ok (2K+1={2 * K + 1} x d={D}); transformers' float32 build differs by {dhf:.1e}")
    return R


def check_loops(W64, inp, flavour, R):
    """Layer 0, a few (b, h, i): s, alpha, z by explicit python loops from the formula."""
    dbg = {}
    o = forward(W64, inp, flavour, R=R, dbg=dbg)
    q, kk, v, table = (t.detach().numpy() for t in dbg[0])
    am = inp["attention_mask"].numpy()
    worst = 0.0
    for b, h, i in [(0, 0, 0), (1, 2, 5), (1, 3, 10), (2, 1, 15), (0, 3, 8)]:
        s = []
        for j in range(T):
            a = table[min(max(j - i, -K), K) + K]
            s.append((sum(q[b, h, i, c] * kk[b, h, j, c] for c in range(D)) + sum(q[b, h, i, c] * a[c] for c in range(D)))
                     / math.sqrt(D) + (1 - am[b, j]) * -10000.0)
        mx = max(s); ex = [math.exp(x - mx) for x in s]; al = [x / sum(ex) for x in ex]
        for c in range(D):
            zc = sum(al[j] * (v[b, h, j, c] + table[min(max(j - i, -K), K) + K][c]) for j in range(T))
            worst = max(worst, abs(zc - o["layer.0.ctx"][b, i, h * D + c].item()))
    assert worst < 1e-12, worst
    print(f"  {flavour}: layer-0 attention rows by explicit loops: max diff {worst:.1e}")


def check_padding(W64, inp, flavour, R, o, G):
    """Other ids / token types at the padded positions change no real token's output, no loss, no grad."""
    inp2 = dict(inp)
    ids = inp["input_ids"].clone(); ids[1, 11:] = torch.tensor([7, 99, 3, 50, 111])
    tt = inp["token_type_ids"].clone(); tt[1, 11:] = 1
    inp2["input_ids"], inp2["token_type_ids"] = ids, tt
    o2, G2 = loss_and_grads(W64, inp2, flavour, R=R)
    real = inp["attention_mask"].bool()
    worst = 0.0
    for n in ["emb", "sequence_output"] + [f"layer.{l}" for l in range(L)]:
        worst = max(worst, (o[n] - o2[n]).abs()[real].max().item())
    for n in ("pooled", "nsp_logits", "mlm_logits", "loss"):
        worst = max(worst, (o[n] - o2[n]).abs().max().item())
    assert (o["emb"] - o2["emb"]).abs()[1, 11:].max().item() > 0.1     # the change did reach the padding
    gw = max(((G[n] - G2[n]).abs().max() / (G[n].abs().max() + 1e-30)).item() for n in G)
    assert worst <= 1e-13 and gw <= 1e-12, (worst, gw)
    print(f"  {flavour}: other padded ids/types: real tokens' outputs and loss differ by {worst:.1e}, grads {gw:.1e} rel")


def check_clip(W64, inp, flavour):
    """K >= T-1: the clip is a no-op. huawei: clipped == unclipped at K = T-1 and T+3, but K = T-1 and
    K = T+3 differ (the shifted index moves the sinusoid). mindspore: a K = T+3 table holding the K = T-1
    table in its middle rows gives the K = T-1 model's outputs, those rows' grads and zero elsewhere."""
    k1, k2 = T - 1, T + 3
    if flavour == "huawei":
        outs = {}
        for k in (k1, k2):
            Rk = torch.from_numpy(sinusoid_table(k, D))
            a, b = forward(W64, inp, flavour, k=k, R=Rk), forward(W64, inp, flavour, k=k, R=Rk, clip=False)
            d = max((a[n] - b[n]).abs().max().item() for n in a)
            assert d == 0.0, (k, d)
            outs[k] = a
        shift = (outs[k1]["sequence_output"] - outs[k2]["sequence_output"]).abs().max().item()
        assert shift > 1e-3, shift
        # and at the fixture's K = 3 the clip matters: unclipped = the sinusoid at p = j-i+K in -12..18
        R3 = sinusoid_table(K, D)
        p = np.arange(-(T - 1), T + 2 * K, dtype=np.float64)[:, None]
        ang = p / np.power(10000.0, 2.0 * np.arange(D // 2) / D)[None, :]
        Rx = np.zeros((p.shape[0], D)); Rx[:, 0::2], Rx[:, 1::2] = np.sin(ang), np.cos(ang)
        assert np.allclose(Rx[T - 1:T + 2 * K], R3, rtol=0, atol=1e-15)
        Rxt = torch.from_numpy(Rx)
        ref = forward(W64, inp, flavour, R=torch.from_numpy(R3))["sequence_output"]
        unc = forward(W64, inp, flavour, k=K + T - 1, R=Rxt, clip=False)["sequence_output"]   # index j-i+K+(T-1)
        dclip = (ref - unc).abs().max().item()
        assert dclip > 1e-3, dclip
        print(f"  huawei: K>=T-1 clip is a no-op (exact); K={k1} vs K={k2} differ by {shift:.2e} (shifted index); "
              f"at K={K} clipping changes the output by {dclip:.2e}")
    else:
        W1 = {n: t for n, t in W64.items() if not n.endswith(REL)}
        W2 = dict(W1)
        for l in range(L):
            rs = np.random.RandomState(200 + l)
            t1 = torch.from_numpy(TABLE_STD * rs.standard_normal((2 * k1 + 1, D)))
            t2 = torch.from_numpy(TABLE_STD * rs.standard_normal((2 * k2 + 1, D)))
            t2[k2 - k1:k2 + k1 + 1] = t1
            W1[f"bert.encoder.layer.{l}." + REL], W2[f"bert.encoder.layer.{l}." + REL] = t1, t2
        o1, G1 = loss_and_grads(W1, inp, flavour, k=k1)
        o2, G2 = loss_and_grads(W2, inp, flavour, k=k2)
        o3 = forward(W1, inp, flavour, k=k1, clip=False)
        d = max(max((o1[n] - o2[n]).abs().max().item(), (o1[n] - o3[n]).abs().max().item()) for n in o1)
        g = 0.0
        for n in G1:
            if n.endswith(REL):
                g = max(g, (G1[n] - G2[n][k2 - k1:k2 + k1 + 1]).abs().max().item())
                assert G2[n][:k2 - k1].abs().max().item() == 0.0 and G2[n][k2 + k1 + 1:].abs().max().item() == 0.0
            else:
                g = max(g, (G1[n] - G2[n]).abs().max().item())
        assert d <= 1e-14 and g <= 1e-14, (d, g)
        print(f"  mindspore: K={k2} table around the K={k1} table: outputs differ by {d:.1e}, grads by {g:.1e}, "
              f"outer rows' grads exactly 0; unclipped == clipped")


def fd_check(W64, inp, flavour, R, G):
    ids = inp["input_ids"]
    entries = [("bert.encoder.layer.0.attention.self.query.weight", (3, 5)),
               ("bert.encoder.layer.1.attention.self.key.weight", (17, 40)),
               ("bert.encoder.layer.0.attention.self.value.bias", (9,)),
               ("bert.embeddings.word_embeddings.weight", (int(ids[0, 2]), 7)),
               ("bert.embeddings.token_type_embeddings.weight", (1, 4)),
               ("bert.encoder.layer.1.output.dense.bias", (2,))]
    if flavour == "mindspore":
        entries += [("bert.encoder.layer.0." + REL, (0, 5)),           # row 0: every j-i <= -K (clipped)
                    ("bert.encoder.layer.1." + REL, (2 * K, 11)),      # row 2K: every j-i >= K (clipped)
                    ("bert.encoder.layer.0." + REL, (K, 2)),           # distance 0
                    ("bert.encoder.layer.1." + REL, (K - 1, 0))]       # distance -1
    for name, idx in entries:
        h, Wp, Wm = 1e-5, dict(W64), dict(W64)
        Wp[name] = W64[name].clone(); Wp[name][idx] += h
        Wm[name] = W64[name].clone(); Wm[name][idx] -= h
        fd = (forward(Wp, inp, flavour, R=R)["loss"].item() - forward(Wm, inp, flavour, R=R)["loss"].item()) / (2 * h)
        ag = G[name][idx].item()
        rel = abs(ag - fd) / max(abs(ag), 1e-12)
        print(f"  fd-check {flavour} {name}{list(idx)}: autograd {ag:.10e} fd {fd:.10e} rel {rel:.2e}")
        assert abs(ag - fd) <= 1e-6 * max(abs(ag), 1e-3), name


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)

    inputs = make_inputs()
    inp = {n: torch.from_numpy(a.astype(np.int64)) for n, a in inputs}
    idx = rel_index(T, K)
    assert (idx == 0).sum() > 0 and (idx == 2 * K).sum() > 0 and idx[0, T - 1] == 2 * K and idx[T - 1, 0] == 0
    R64 = check_table()
    R = torch.from_numpy(R64)
    f32 = lambda t: t.detach().numpy().astype(np.float32)
    tens, meta = [], {"format": "bert.h"}
    for flavour in FLAVOURS:
        W32 = make_weights(flavour)
        table = param_table(flavour)
        assert sorted(W32) == sorted(n for n, _ in table)
        W64 = {n: torch.from_numpy(a.astype(np.float64)) for n, a in W32.items()}
        o, G = loss_and_grads(W64, inp, flavour, R=R)
        print(f"{flavour}: loss {o['loss'].item():.10f} mlm {o['mlm_loss'].item():.10f} nsp {o['nsp_loss'].item():.10f}")
        check_loops(W64, inp, flavour, R)
        check_padding(W64, inp, flavour, R, o, G)
        check_clip(W64, inp, flavour)
        fd_check(W64, inp, flavour, R, G)
        keys = ["emb"] + [f"layer.{l}.{k}" if k else f"layer.{l}" for l in range(L) for k in ("probs", "ctx", "attn_ln", "")]
        keys += ["sequence_output", "pooled", "mlm_logits", "nsp_logits"]
        tens += [(f"{flavour}.in.{n}", a) for n, a in inputs]
        tens += [(f"{flavour}.w.{n}", W32[n]) for n, _ in table]
        if flavour == "huawei":
            tens.append(("huawei.R", R64.astype(np.float32)))
        tens += [(f"{flavour}.out.{k}", f32(o[k])) for k in keys]
        tens += [(f"{flavour}.out.{k}", f32(o[k]).reshape(1)) for k in ("loss", "mlm_loss", "nsp_loss")]
        tens += [(f"{flavour}.grad.{n}", f32(G[n])) for n, _ in table]
        meta[f"{flavour}.config"] = json.dumps(config(flavour))
    bert_ref.save(os.path.join(args.out, "nezha_ref.safetensors"), tens, meta)


if __name__ == "__main__":
    main()
