#!/usr/bin/env python3
"""bench/torch_pretrain.py - examples/pretrain.c's run in PyTorch (float32; --autocast: bf16 autocast).

  bench/torch_pretrain.py --input DATA.tfrecord --init INIT.safetensors --out DIR [--autocast]
      [--lr 2e-3 --warmup_proportion 0.1 --batch_size 32 --steps 1000 --eval_records 512
       --eval_every 200 --print_every 100 --seed 12345 --dropout counter|torch|off]

The same run as `build/pretrain --input DATA --init INIT --optimizer lamb ...` with the same flags
(accumulation 1, clip_norm 1, weight_decay 0.01, beta1 .9, beta2 .999, eps 1e-6, poly_power 1,
end_lr 0, T 128, P 20, next-sentence on): what tests/ref/SPEC.md ("Pretraining run") describes,
with these pieces imported from the references, not copied:
  tests/ref/pretrain_ref.py  TFRecord reader (CRCs checked) + tf.train.Example decoder
                             (load_records), the epoch permutation (permutation), make_batch
  tests/ref/bert_ref.py      param_table, the safetensors reader, the counter-based dropout RNG
                             (rng_u), lr_at, the LAMB update (update("lamb", ...)) and no_decay
The model is written here in float32 with torch's own ops (F.linear, F.layer_norm, F.gelu, softmax,
F.cross_entropy) because bert_ref.forward is float64 by construction (its masks and attention bias
are doubles). Data order: records [0, n - eval_records) train, visited in permutation(n_train, seed,
epoch); a new epoch (epoch + 1, a new permutation) starts when fewer than batch_size records are
left (pretrain sets drop_last). Held out: the last eval_records records, in file order, in batches
of batch_size, dropout off; MLM loss = sum over batches of (batch mean x its predictions) / all
predictions, MLM accuracy = argmax hits (first maximum on ties) / predictions; evaluated every
eval_every steps and after the last step, as pretrain.
Dropout (--dropout): "counter" (default) = bert.h's masks exactly (bert_ref.rng_u: seed, micro-batch
number, site 0 embeddings, 1+3l attention probs, 2+3l attention output, 3+3l FFN output);
"torch" = torch's own RNG (torch.manual_seed(seed)); "off" = none.
--autocast: the model's forward and both losses run inside torch.autocast("cpu", dtype=torch.bfloat16):
linear layers and the attention matmuls in bf16 (oneDNN), softmax on the fp32 sum of the bf16 scores
and the fp32 mask, cross_entropy in fp32 (autocast's fp32 list), LayerNorm in fp32 (torch 1.13's CPU
kernel refuses a bf16 input with fp32 weights; CUDA AMP's policy), master weights, grads (after
the bf16 graph) and LAMB in fp32. The held-out evaluation runs under autocast as well.
Prints pretrain-style lines ("step ...", "eval ...", "summary: ..."), writes DIR/log.jsonl with
pretrain's keys. Debian's /usr/bin/python3 (torch 1.13); one thread (torch.set_num_threads(1)).
"""
import argparse, contextlib, json, math, os, sys, time
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "ref"))
import bert_ref       # noqa: E402
import pretrain_ref   # noqa: E402

B1, B2, ADAM_EPS, WD, CLIP = 0.9, 0.999, 1e-6, 0.01, 1.0


def load_init(path):
    arrays, meta = bert_ref.st_read(path)
    cfg = json.loads(meta["config"])
    tab = bert_ref.param_table(V=cfg["vocab_size"], C=cfg["hidden_size"], L=cfg["num_hidden_layers"],
                               FF=cfg["intermediate_size"], P=cfg["max_position_embeddings"], TV=cfg["type_vocab_size"])
    W = {}
    for n, shape in tab:
        assert n in arrays and tuple(arrays[n].shape) == tuple(shape), (path, n)
        W[n] = torch.from_numpy(arrays[n].astype(np.float32))
    return W, cfg, tab


class Dropout:
    def __init__(self, mode, p, seed):
        self.mode, self.p, self.seed, self.step, self.on, self.t = mode, p, seed, 0, True, 0.0   # t: seconds making masks
        if mode == "torch":
            torch.manual_seed(seed)

    def __call__(self, x, site):
        if not self.on or self.mode == "off" or self.p == 0.0:
            return x
        if self.mode == "torch":
            return F.dropout(x, self.p, training=True)
        t0 = time.time()
        keep = torch.from_numpy(bert_ref.rng_u(self.seed, self.step, site, x.numel()) >= self.p).reshape(x.shape)
        self.t += time.time() - t0
        return x * keep * (1.0 / (1.0 - self.p))


def blas_libs():
    """the BLAS libraries this process mapped (Debian's torch calls libblas.so.3: reference BLAS or OpenBLAS)"""
    try:
        libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.split()[-1].lower()})
    except OSError:
        return "?"
    return ",".join(os.path.basename(l) for l in libs) + (" (reference BLAS: slow)" if any("/blas/libblas" in l for l in libs) else "")


def layer_norm(x, w, b, eps):
    return F.layer_norm(x.float(), (x.shape[-1],), w, b, eps)   # fp32 (see the docstring on autocast)


def forward(W, inp, cfg, drop):
    """BertForPreTraining (post-LN, tied decoder) as bert_ref.forward, float32 / autocast. Returns
    (mlm_logits (B*P, V), nsp_logits (B, 2), mlm_loss, nsp_loss)."""
    act = cfg["hidden_act"]
    gelu = (lambda t: F.gelu(t)) if act == "gelu" else (lambda t: F.gelu(t, approximate="tanh"))
    eps, NH, L = cfg.get("layer_norm_eps", 1e-12), cfg["num_attention_heads"], cfg["num_hidden_layers"]
    ids, tt, am = inp["input_ids"], inp["token_type_ids"], inp["attention_mask"]
    e = "bert.embeddings."
    B, T = ids.shape
    C = W[e + "word_embeddings.weight"].shape[1]
    HS = C // NH
    x = W[e + "word_embeddings.weight"][ids] + W[e + "position_embeddings.weight"][:T][None] + W[e + "token_type_embeddings.weight"][tt]
    x = drop(layer_norm(x, W[e + "LayerNorm.weight"], W[e + "LayerNorm.bias"], eps), 0)
    ext = ((1.0 - am.float()) * -10000.0)[:, None, None, :]
    for l in range(L):
        p = f"bert.encoder.layer.{l}."
        a = p + "attention.self."
        Wqkv = torch.cat([W[a + "query.weight"], W[a + "key.weight"], W[a + "value.weight"]], 0)
        bqkv = torch.cat([W[a + "query.bias"], W[a + "key.bias"], W[a + "value.bias"]], 0)
        qkv = F.linear(x, Wqkv, bqkv)
        q, k, v = (qkv[..., i * C:(i + 1) * C].reshape(B, T, NH, HS).transpose(1, 2) for i in range(3))
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(HS) + ext
        pr = drop(torch.softmax(s, -1), 1 + 3 * l)
        ctx = torch.matmul(pr, v).transpose(1, 2).reshape(B, T, C)
        ao = drop(F.linear(ctx, W[p + "attention.output.dense.weight"], W[p + "attention.output.dense.bias"]), 2 + 3 * l)
        x1 = layer_norm(ao + x, W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], eps)
        f = gelu(F.linear(x1, W[p + "intermediate.dense.weight"], W[p + "intermediate.dense.bias"]))
        f2 = drop(F.linear(f, W[p + "output.dense.weight"], W[p + "output.dense.bias"]), 3 + 3 * l)
        x = layer_norm(f2 + x1, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
    pooled = torch.tanh(F.linear(x[:, 0], W["bert.pooler.dense.weight"], W["bert.pooler.dense.bias"]))
    nsp = F.linear(pooled, W["cls.seq_relationship.weight"], W["cls.seq_relationship.bias"])
    pos = inp["masked_lm_positions"]
    g = x.reshape(B * T, C)[(torch.arange(B)[:, None] * T + pos).reshape(-1)]
    c = "cls.predictions."
    h = gelu(F.linear(g, W[c + "transform.dense.weight"], W[c + "transform.dense.bias"]))
    h = layer_norm(h, W[c + "transform.LayerNorm.weight"], W[c + "transform.LayerNorm.bias"], eps)
    mlm = F.linear(h, W[e + "word_embeddings.weight"], W[c + "bias"])
    labels = inp["masked_lm_ids"].reshape(-1)
    mlm_loss = F.cross_entropy(mlm, labels, ignore_index=-100) if bool((labels != -100).any()) else mlm.sum() * 0.0
    nsp_loss = F.cross_entropy(nsp, inp["next_sentence_label"])
    return mlm, nsp, mlm_loss, nsp_loss


def hits(logits, labels):
    return int(((logits.float().argmax(-1) == labels) & (labels >= 0)).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--init", required=True, help="safetensors with HF names and a config in its metadata (pretrain's checkpoint)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--autocast", action="store_true")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup_proportion", type=float, default=0.1)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--eval_records", type=int, default=512)
    ap.add_argument("--eval_every", type=int, default=200)
    ap.add_argument("--print_every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--dropout", choices=["counter", "torch", "off"], default="counter")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--trace", help="check the data order against pretrain --debug_trace_records's stderr (this file)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    t_start = time.time()

    W, cfg, tab = load_init(args.init)
    assert cfg["hidden_dropout_prob"] == cfg["attention_probs_dropout_prob"], "one dropout p for both (as bert_ref)"
    assert cfg["vocab_size"] == pretrain_ref.CONFIG["vocab_size"], "pretrain_ref.load_records checks ids against 30522"
    recs = pretrain_ref.load_records(args.input)
    n_train = len(recs) - args.eval_records
    assert n_train >= args.batch_size
    BS, STEPS = args.batch_size, args.steps
    warmup = int(args.warmup_proportion * STEPS)
    params = sum(t.numel() for t in W.values())
    print(f"torch_pretrain: {args.input} | {n_train} train + {args.eval_records} held-out records | "
          f"L={cfg['num_hidden_layers']} H={cfg['hidden_size']} A={cfg['num_attention_heads']} ({params} params) | "
          f"lamb lr {args.lr:g} warmup {warmup} | batch {BS} | {STEPS} steps | "
          f"{'bf16 autocast' if args.autocast else 'fp32'} | dropout {args.dropout} | torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), BLAS {blas_libs()}", flush=True)

    # the data order, checked against pretrain's trace when given
    def order():
        epoch, cursor, perm = 0, 0, pretrain_ref.permutation(n_train, args.seed, 0)
        while True:
            if n_train - cursor < BS:
                epoch, cursor = epoch + 1, 0
                perm = pretrain_ref.permutation(n_train, args.seed, epoch)
            yield epoch, perm[cursor:cursor + BS]
            cursor += BS
    if args.trace:
        want = [l.split(":", 1) for l in open(args.trace) if l.startswith("records rank 0 epoch ")]
        got = order()
        for i, (head, idx) in enumerate(want):
            ep, batch = next(got)
            assert int(head.split()[-1]) == ep and [int(t) for t in idx.split()] == batch, f"micro-batch {i}: order differs"
        print(f"data order: the {len(want)} micro-batches of {args.trace} agree (epochs 0..{ep})", flush=True)

    drop = Dropout(args.dropout, cfg["hidden_dropout_prob"], args.seed)
    ac = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.autocast else contextlib.nullcontext

    def evaluate():
        drop.on = False
        mlm_sum = nsp_sum = 0.0
        preds = mh = nh = 0
        held = list(range(n_train, len(recs)))
        with torch.no_grad():
            for i in range(0, len(held), BS):
                inp, n = pretrain_ref.make_batch([recs[j] for j in held[i:i + BS]])
                with ac():
                    mlm, nsp, ml, nl = forward(W, inp, cfg, drop)
                mlm_sum += ml.item() * n; nsp_sum += nl.item() * len(inp["input_ids"])
                preds += n; mh += hits(mlm, inp["masked_lm_ids"].reshape(-1)); nh += hits(nsp, inp["next_sentence_label"])
        drop.on = True
        n_eval = len(held)
        return {"mlm_acc": mh / preds, "mlm_loss": mlm_sum / preds, "nsp_acc": nh / n_eval, "nsp_loss": nsp_sum / n_eval}

    log = open(os.path.join(args.out, "log.jsonl"), "w")
    m = {n: torch.zeros_like(t) for n, t in W.items()}
    v = {n: torch.zeros_like(t) for n, t in W.items()}
    data = order()
    t_train = t_eval = 0.0
    t_run = time.time()
    for s in range(STEPS):
        t0 = time.time()
        _, idx = next(data)
        inp, n = pretrain_ref.make_batch([recs[i] for i in idx])
        drop.step = s                                   # micro-batch number (accumulation 1)
        Wg = {k: t.requires_grad_(True) for k, t in W.items()}
        with ac():
            mlm, nsp, ml, nl = forward(Wg, inp, cfg, drop)
            loss = ml + nl
        loss.backward()
        G = {k: t.grad for k, t in Wg.items()}
        W = {k: t.detach() for k, t in Wg.items()}
        lr = bert_ref.lr_at(s, peak=args.lr, warmup=warmup, total=STEPS, power=1.0, end=0.0)
        with torch.no_grad():
            norm = bert_ref.update("lamb", W, G, m, v, s, lr, B1, B2, ADAM_EPS, WD, CLIP)
        t_train += time.time() - t0
        rec = {"step": s + 1, "loss": loss.item(), "mlm_loss": ml.item(), "nsp_loss": nl.item(),
               "mlm_acc": hits(mlm, inp["masked_lm_ids"].reshape(-1)) / max(n, 1),
               "nsp_acc": hits(nsp, inp["next_sentence_label"]) / len(idx), "lr": lr, "grad_norm": norm,
               "step_s": time.time() - t0, "time": time.time() - t_run}
        log.write(json.dumps(rec) + "\n")
        if (s + 1) % args.print_every == 0 or s == 0 or s + 1 == STEPS:
            print(f"step {s + 1:6d}/{STEPS} | loss {rec['loss']:.4f} | mlm_loss {rec['mlm_loss']:.4f} | nsp_loss {rec['nsp_loss']:.4f} | "
                  f"mlm_acc {rec['mlm_acc']:.4f} | nsp_acc {rec['nsp_acc']:.4f} | lr {lr:.3e} | |g| {norm:.3f} | "
                  f"{t_train / (s + 1):.3f} s/step", flush=True)
        if (args.eval_every > 0 and (s + 1) % args.eval_every == 0) or s + 1 == STEPS:
            t1 = time.time()
            e = evaluate()
            t_eval += time.time() - t1
            print(f"eval  {s + 1:6d} | mlm_acc {e['mlm_acc']:.4f} | mlm_loss {e['mlm_loss']:.4f} | nsp_acc {e['nsp_acc']:.4f} | "
                  f"nsp_loss {e['nsp_loss']:.4f} | {len(recs) - n_train} records", flush=True)
            log.write(json.dumps({"eval_step": s + 1, **e}) + "\n")
        log.flush()
    e2e = time.time() - t_start
    print(f"summary: done after {STEPS} steps | e2e {e2e:.1f} s | train {t_train:.1f} s ({t_train / STEPS:.3f} s/step, "
          f"{BS * STEPS / t_train:.2f} samples/s; of it dropout masks {drop.t:.1f} s) | eval {t_eval:.1f} s", flush=True)
    log.write(json.dumps({"summary": "done", "step": STEPS, "e2e_s": e2e, "train_s": t_train, "step_s": t_train / STEPS,
                          "dropout_mask_s": drop.t, "eval_s": t_eval}) + "\n")
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
