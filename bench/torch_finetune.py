#!/usr/bin/python3
"""torch_finetune.py - the PyTorch side of issue 27's parity runs: the fine-tuning recipe of
examples/classify.c (SST-2) and examples/ner.c (CLUENER2020, softmax or CRF) re-run in PyTorch
(float32 on the CPU, torch.set_num_threads(1)), from the same initial weights, on the SAME BATCHES
IN THE SAME ORDER as one of our runs.

Data order: our program is run with --debug_trace_records, which prints every micro-batch's record
indices on stderr ("records rank 0 epoch E: i1 i2 ..."; classify: the examples of the training file
in order, empty sentences skipped; ner: the training windows in order). --trace FILE is that stderr:
this script takes its micro-batches one by one, in that order, and nothing else (the number of
batches and their sizes are checked against --batch_size, --epochs / --steps and the data).
Without our trace there is no run here: the trace is the contract that both sides saw the same
examples at the same step.

Everything else is written here from the spec, independently of the C code:
  model      post-LN BERT (HF names; erf GELU, LayerNorm eps from the config, attention mask
             (1 - m) * -10000), pooler tanh(W h[CLS] + b); SST-2: dropout + dense on the pooled
             output, softmax cross-entropy (HF BertForSequenceClassification); CLUENER: dropout +
             dense on every token, softmax cross-entropy over the characters or a linear-chain CRF
             (transitions (K+2, K+2), START = K, STOP = K+1, row = from; the mean NLL over the
             windows) (HF BertForTokenClassification + CRF)
  init       --init FILE.safetensors (HF names; the config from its __metadata__ "config", else
             --config); a head the file lacks starts here: classifier.weight ~ N(0, 0.02)
             truncated at 2 std, bias 0, crf.transitions ~ U(-0.1, 0.1), from torch's RNG (--seed)
  dropout    hidden_dropout_prob after the embeddings, after each attention output and each FFN
             output, attention_probs_dropout_prob on the attention probabilities, and one more on
             the pooled output (SST-2) or before the token classifier (CLUENER; --classifier_dropout,
             -1 = hidden_dropout_prob). --dropout_rng torch (default): torch's own RNG, seeded with
             --seed (independent dropout noise: what "within seed noise" allows); --dropout_rng
             bert: bert.h's counter-based masks (tests/ref/bert_ref.py's rng_u: seed --seed, step =
             the micro-batch number from 0, sites 0, 1..3L in the encoder, 1+3L for the head), so
             the masks are ours bit for bit
  optimizer  --optimizer adamw_gb (classify's default): Google's AdamWeightDecay (as
             pytorch-pretrained-bert's BertAdam): no bias correction, u = m/(sqrt(v)+eps) + wd*p,
             p -= lr*u; --optimizer adamw (ner's default): torch.optim.AdamW (bias-corrected,
             decoupled decay). Weight decay --weight_decay on every tensor but LayerNorm, biases
             and crf.transitions. torch.nn.utils.clip_grad_norm_ to --clip_norm over all params.
  schedule   Google's create_optimizer as run.h sets it up: total = --steps, else
             ceil(n / batch) * --epochs (the last batch of an epoch smaller, as ours);
             warmup = int(float32(--warmup_proportion) * total); at update s (0, 1, ...):
             lr*s/warmup while s < warmup, else (lr - end_lr)*(1 - s/total)^power + end_lr
  data       SST-2: the GLUE TSV (header; sentence, label; labels sorted), tests/ref/tokenizer_ref.py
             (google-research/bert's tokenization, uncased), [CLS] tokens [SEP] cut to
             --max_seq_length, a batch padded to its longest; CLUENER: one token per character
             (what the tokenizer makes of the character alone: its first piece, [unused1] for one
             it drops; ner_ref.py's char scheme), BIO tags (an overlapping mention loses to the one
             starting first, then the longer), windows of --max_seq_length - 2 characters,
             (max_seq_length - 2) // 2 apart, the last ending at the text's end
  eval       SST-2: dev accuracy every --eval_every steps and at the end, the best kept (as
             classify's eval_results.json); CLUENER: entity micro-F1 on dev at the end (each
             character's tag from the window where it is most central, lenient BIO decoding,
             exact (type, start, end) matches), the CRF by Viterbi

Output in --out: log.jsonl ({"step", "loss", "lr", "grad_norm"} every step, {"eval_step", metric}
per evaluation, {"summary", ...} last) and results.json (the final metrics). --debug_ids FILE writes
the first batch's input ids (and labels) as JSON, to compare with ours.

    /usr/bin/python3 bench/torch_finetune.py --task sst2 --init ckpt/model.safetensors \\
        --trace ours_s1.trace --train_file SST-2/train.tsv --dev_file SST-2/dev.tsv \\
        --vocab bert_uncased_vocab.txt --max_seq_length 64 --epochs 1 --lr 1e-4 --seed 1 --out torch_s1
"""
import argparse, json, math, os, struct, sys, time
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "ref"))
import bert_ref        # noqa: E402  rng_u (bert.h's dropout RNG), st_read
import tokenizer_ref   # noqa: E402  google-research/bert's WordPiece, written out again

CLUENER_TYPES = "address,book,company,game,government,movie,name,organization,position,scene".split(",")


# ---------------------------------------------------------------------------------------------
# safetensors

def st_read(path):
    """name -> float32/int32 numpy array, metadata (F32, I32 and BF16 read)."""
    buf = open(path, "rb").read()
    n = struct.unpack("<Q", buf[:8])[0]
    hdr = json.loads(buf[8:8 + n])
    meta = hdr.pop("__metadata__", {}) or {}
    out = {}
    for name, d in hdr.items():
        s, e = d["data_offsets"]
        raw = buf[8 + n + s:8 + n + e]
        if d["dtype"] == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(raw, dtype={"F32": "<f4", "I32": "<i4"}[d["dtype"]])
        out[name] = a.reshape(d["shape"]).copy()
    return out, meta


# ---------------------------------------------------------------------------------------------
# data

def read_lines(path):
    data = open(path, "rb").read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [l[:-1] if l.endswith(b"\r") else l for l in lines]


class WordPiece:
    def __init__(self, vocab_path):
        self.vocab = tokenizer_ref.load_vocab(vocab_path)
        self.cls, self.sep, self.pad = self.vocab["[CLS]"], self.vocab["[SEP]"], self.vocab.get("[PAD]", 0)
        self.unk = self.vocab["[UNK]"]
        self.dropped = self.vocab.get("[unused1]", self.unk)
        self.cache = {}

    def ids(self, text):
        return [self.vocab[p] for w in tokenizer_ref.basic_tokenize(text, True) for p in tokenizer_ref.wordpiece(w, self.vocab)]

    def char_id(self, ch):
        """ner.c's scheme: what the tokenizer makes of the character alone, its first piece
        ([unused1], else [UNK], for a character it drops)."""
        if ch not in self.cache:
            ids = self.ids(ch)
            self.cache[ch] = ids[0] if ids else self.dropped
        return self.cache[ch]


def is_blank(b):
    return all(c in b" \t" for c in b)


def load_sst2(path, wp, T):
    """GLUE SST-2 TSV -> list of (ids, label string), the header skipped, empty sentences skipped."""
    out, header = [], True
    for line in read_lines(path):
        if is_blank(line):
            continue
        cols = line.decode("utf-8", "replace").split("\t")
        if header:
            header = False
            continue
        ids = wp.ids(cols[0])
        label = cols[1].strip(" \t")
        if not ids:
            continue
        ids = [wp.cls] + ids[:T - 2] + [wp.sep]
        out.append((ids, label))
    return out


def bio_tags(text, label):
    n, tags = len(text), [0] * len(text)
    spans, gold = [], []
    for t, ents in label.items():
        for ent, sp in ents.items():
            for s, e in sp:
                assert text[s:e + 1] == ent, (text, ent, s, e)
                spans.append((CLUENER_TYPES.index(t), s, e))
    gold = list(spans)
    last_end = -1
    for t, s, e in sorted(spans, key=lambda x: (x[1], -x[2])):   # stable: file order on ties
        if s <= last_end:
            continue   # overlaps a mention tagged before it
        last_end = e
        tags[s] = 1 + 2 * t
        for i in range(s + 1, e + 1):
            tags[i] = 2 + 2 * t
    return tags, gold


def windows(n, W):
    S = max(W // 2, 1)
    out, s = [], 0
    while n > 0:
        out.append((s, min(W, n - s)))
        if s + W >= n:
            break
        s = min(s + S, n - W)
    return out


def load_cluener(path, wp, T):
    """JSON lines -> records [(ids, tags, gold spans)], windows [(record, start, length)]."""
    recs, wins = [], []
    for line in read_lines(path):
        line = line.rstrip(b"\r \t")
        if not line:
            continue
        j = json.loads(line.decode("utf-8"))
        text = j["text"]
        tags, gold = bio_tags(text, j.get("label", {}))
        ids = [wp.char_id(ch) for ch in text]
        r = len(recs)
        recs.append((ids, tags, gold))
        wins += [(r, s, n) for s, n in windows(len(ids), T - 2)]
    return recs, wins


def read_trace(path):
    """our --debug_trace_records lines -> list of record-index lists, in order"""
    out = []
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith("records rank 0 epoch "):
            out.append([int(x) for x in line.split(":", 1)[1].split()])
    return out


# ---------------------------------------------------------------------------------------------
# model

class Dropout:
    """torch's dropout, or bert.h's counter-based masks (bert_ref.rng_u) numbered as ours are:
    one site per dropout call in order, step = the micro-batch number."""

    def __init__(self, mode, seed):
        self.mode, self.seed, self.step, self.site, self.training = mode, seed, 0, 0, True

    def begin(self, step):
        self.step, self.site = step, 0

    def __call__(self, x, p):
        site = self.site
        self.site += 1   # taken even for p == 0, as bert.h does, so the sites stay in step
        if not self.training or p == 0.0:
            return x
        if self.mode == "torch":
            return F.dropout(x, p, True)
        u = bert_ref.rng_u(self.seed, self.step, site, x.numel()).reshape(tuple(x.shape))
        keep = torch.from_numpy(u >= np.float32(p))
        return x * keep.to(x.dtype) * np.float32(1.0 / (1.0 - p))


class Bert:
    def __init__(self, W, cfg, drop):
        self.W, self.cfg, self.drop = W, cfg, drop
        self.L = cfg["num_hidden_layers"]
        self.NH = cfg["num_attention_heads"]
        self.eps = cfg.get("layer_norm_eps", 1e-12)
        self.act = cfg.get("hidden_act", "gelu")
        self.ph = cfg.get("hidden_dropout_prob", 0.1)
        self.pa = cfg.get("attention_probs_dropout_prob", 0.1)

    def ln(self, x, name):
        return F.layer_norm(x, (x.shape[-1],), self.W[name + ".weight"], self.W[name + ".bias"], self.eps)

    def lin(self, x, name):
        return F.linear(x, self.W[name + ".weight"], self.W[name + ".bias"])

    def gelu(self, x):
        if self.act == "gelu":
            return F.gelu(x)
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))

    def encode(self, ids, types, mask):
        W, B, T = self.W, ids.shape[0], ids.shape[1]
        e = "bert.embeddings."
        x = W[e + "word_embeddings.weight"][ids] + W[e + "position_embeddings.weight"][:T][None] + \
            W[e + "token_type_embeddings.weight"][types]
        x = self.drop(self.ln(x, e + "LayerNorm"), self.ph)
        C = x.shape[-1]
        HS = C // self.NH
        ext = ((1.0 - mask.float()) * -10000.0)[:, None, None, :]
        for l in range(self.L):
            p = "bert.encoder.layer.%d." % l
            q, k, v = (self.lin(x, p + "attention.self." + n).reshape(B, T, self.NH, HS).transpose(1, 2)
                       for n in ("query", "key", "value"))
            s = q @ k.transpose(-1, -2) / math.sqrt(HS) + ext
            pr = self.drop(torch.softmax(s, -1), self.pa)
            ctx = (pr @ v).transpose(1, 2).reshape(B, T, C)
            a = self.drop(self.lin(ctx, p + "attention.output.dense"), self.ph)
            x1 = self.ln(a + x, p + "attention.output.LayerNorm")
            f = self.gelu(self.lin(x1, p + "intermediate.dense"))
            f2 = self.drop(self.lin(f, p + "output.dense"), self.ph)
            x = self.ln(f2 + x1, p + "output.LayerNorm")
        return x

    def classify(self, ids, types, mask):
        x = self.encode(ids, types, mask)
        pooled = torch.tanh(self.lin(x[:, 0], "bert.pooler.dense"))
        return self.lin(self.drop(pooled, self.ph), "classifier")

    def token_logits(self, ids, mask, p):
        x = self.encode(ids, torch.zeros_like(ids), mask)
        return self.lin(self.drop(x, self.ph if p < 0 else p), "classifier")


def crf_nll(em, tr, tags, lengths):
    """em (B,Tc,K), tr (K+2,K+2) [START = K, STOP = K+1, row = from], tags (B,Tc), lengths (B):
    the mean over the sequences of log Z - score(tags)."""
    B, Tc, K = em.shape
    S, E = K, K + 1
    steps = torch.arange(Tc)[None, :] < lengths[:, None]                     # (B,Tc)
    y = tags.clone()
    y[~steps] = 0
    bidx = torch.arange(B)
    score = tr[S, y[:, 0]] + em[bidx, 0, y[:, 0]]
    for t in range(1, Tc):
        m = steps[:, t].to(em.dtype)
        score = score + m * (tr[y[:, t - 1], y[:, t]] + em[bidx, t, y[:, t]])
    last = y[bidx, lengths - 1]
    score = score + tr[last, E]
    alpha = tr[S, :K][None] + em[:, 0]
    trK = tr[:K, :K][None]
    for t in range(1, Tc):
        nxt = torch.logsumexp(alpha[:, :, None] + trK, 1) + em[:, t]
        alpha = torch.where(steps[:, t:t + 1], nxt, alpha)
    logz = torch.logsumexp(alpha + tr[:K, E][None], 1)
    return (logz - score).mean()


def crf_viterbi(em, tr, lengths):
    """best tag path per sequence (list of lists), the lower tag id on ties"""
    em, tr = em.detach().double().numpy(), tr.detach().double().numpy()
    B, Tc, K = em.shape
    S, E = K, K + 1
    out = []
    for b in range(B):
        n = int(lengths[b])
        score = tr[S, :K] + em[b, 0]
        back = []
        for t in range(1, n):
            cand = score[:, None] + tr[:K, :K]          # from, to
            arg = cand.argmax(0)
            back.append(arg)
            score = cand[arg, np.arange(K)] + em[b, t]
        best = int((score + tr[:K, E]).argmax())
        path = [best]
        for arg in reversed(back):
            best = int(arg[best])
            path.append(best)
        out.append(path[::-1])
    return out


# ---------------------------------------------------------------------------------------------
# optimizer, schedule

class AdamWeightDecay(torch.optim.Optimizer):
    """Google BERT's AdamWeightDecayOptimizer (pytorch-pretrained-bert's BertAdam without its own
    schedule): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; u = m / (sqrt(v) + eps) (no bias
    correction) + wd p; p -= lr u."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            b1, b2 = g["betas"]
            for p in g["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["m"], st["v"] = torch.zeros_like(p), torch.zeros_like(p)
                m, v = st["m"], st["v"]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                u = m / (v.sqrt() + g["eps"])
                if g["weight_decay"]:
                    u.add_(p, alpha=g["weight_decay"])
                p.add_(u, alpha=-g["lr"])


def lr_at(s, peak, warmup, total, power, end):
    """run.h / bert_optim_lr: float32 peak and end, float64 arithmetic, rounded to float32"""
    peak, end = float(np.float32(peak)), float(np.float32(end))
    lr = peak
    if total > 0:
        frac = min(s, total) / total
        lr = (peak - end) * (1.0 - frac) ** power + end
    if s < warmup:
        lr = peak * s / warmup
    return float(np.float32(lr))


def decays(name):
    return not ("LayerNorm" in name or "bias" in name or name == "crf.transitions")


# ---------------------------------------------------------------------------------------------
# evaluation

def sst2_eval(model, dev, label_index, B=64):
    """accuracy and the mean cross-entropy on dev, batches of B in file order"""
    model.drop.training = False
    hits, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(dev), B):
            chunk = dev[i:i + B]
            ids, types, mask = pad([x[0] for x in chunk], model_pad)
            logits = model.classify(ids, types, mask)
            gold = torch.tensor([label_index[x[1]] for x in chunk])
            loss += F.cross_entropy(logits, gold, reduction="sum").item()
            hits += int((logits.argmax(-1) == gold).sum())
    model.drop.training = True
    return {"accuracy": hits / len(dev), "loss": loss / len(dev)}


def tags_to_spans(tags):
    """ner_entities.h's lenient BIO decoding: B opens, I continues one of its type (else opens), O closes"""
    out, open_t, start = [], -1, 0
    for i, tg in enumerate(tags + [0]):
        if tg <= 0:
            if open_t >= 0:
                out.append((open_t, start, i - 1))
            open_t = -1
            continue
        t, prefix = (tg - 1) // 2, "BI"[(tg - 1) % 2]
        if prefix == "I" and open_t == t:
            continue
        if open_t >= 0:
            out.append((open_t, start, i - 1))
        open_t, start = t, i
    return out


def cluener_eval(model, recs, wins, use_crf, cdrop, B=64, spans_out=None):
    model.drop.training = False
    wtags = []
    with torch.no_grad():
        for i in range(0, len(wins), B):
            chunk = wins[i:i + B]
            ids, mask, _, lengths = ner_batch(recs, chunk)
            logits = model.token_logits(ids, mask, cdrop)
            if use_crf:
                Tc = int(lengths.max())
                paths = crf_viterbi(logits[:, 1:1 + Tc], model.W["crf.transitions"], lengths)
            else:
                am = logits.argmax(-1)
                paths = [am[b, 1:1 + int(lengths[b])].tolist() for b in range(len(chunk))]
            wtags += paths
    model.drop.training = True
    best = [[-1] * len(r[0]) for r in recs]
    rtags = [[0] * len(r[0]) for r in recs]
    for (r, s, n), tg in zip(wins, wtags):
        for c in range(n):
            central = min(c, n - 1 - c)
            if central > best[r][s + c]:
                best[r][s + c] = central
                rtags[r][s + c] = tg[c]
    gold_n = pred_n = correct = 0
    per = {t: [0, 0, 0] for t in range(len(CLUENER_TYPES))}
    for (ids, _, gold), tg in zip(recs, rtags):
        pred = tags_to_spans(tg)
        if spans_out is not None:
            spans_out.append([[CLUENER_TYPES[t], s, e] for t, s, e in pred])
        gset = set(gold)
        gold_n += len(gold)
        pred_n += len(pred)
        for g in gold:
            per[g[0]][0] += 1
        for p in pred:
            per[p[0]][1] += 1
            if p in gset:
                correct += 1
                per[p[0]][2] += 1

    def f1(c, p, g):
        P, R = (c / p if p else 0.0), (c / g if g else 0.0)
        return (2 * P * R / (P + R) if P + R > 0 else 0.0), P, R
    F, P, R = f1(correct, pred_n, gold_n)
    macro = sum(f1(per[t][2], per[t][1], per[t][0])[0] for t in per) / len(per)
    return {"f1": F, "precision": P, "recall": R, "macro_f1": macro, "gold": gold_n, "pred": pred_n, "correct": correct}


# ---------------------------------------------------------------------------------------------
# batches

model_pad = 0


def pad(seqs, pad_id):
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s)
        mask[b, :len(s)] = 1
    return ids, torch.zeros_like(ids), mask


def ner_batch(recs, chunk):
    """[CLS] characters [SEP] padded to the batch's longest window; labels -100 off the characters"""
    global wp_global
    Tc = max(n for _, _, n in chunk)
    T = Tc + 2
    B = len(chunk)
    ids = torch.full((B, T), wp_global.pad, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    lengths = torch.zeros(B, dtype=torch.long)
    for b, (r, s, n) in enumerate(chunk):
        rids, rtags, _ = recs[r]
        ids[b, 0] = wp_global.cls
        ids[b, 1:n + 1] = torch.tensor(rids[s:s + n])
        ids[b, n + 1] = wp_global.sep
        mask[b, :n + 2] = 1
        labels[b, 1:n + 1] = torch.tensor(rtags[s:s + n])
        lengths[b] = n
    return ids, mask, labels, lengths


wp_global = None


# ---------------------------------------------------------------------------------------------
# main

def main():
    global model_pad, wp_global
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True, choices=["sst2", "cluener"])
    ap.add_argument("--init", required=True, help="initial weights, safetensors with HF names (our checkpoint)")
    ap.add_argument("--config", help="bert_config.json when --init has no config in its __metadata__")
    ap.add_argument("--trace", help="our run's stderr with --debug_trace_records: the batches, in order (needed to train)")
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--train_file"); ap.add_argument("--dev_file")
    ap.add_argument("--data_dir", default="../shared/data/cluener2020", help="cluener: train.json, dev.json")
    ap.add_argument("--max_seq_length", type=int, default=128)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps (0: --epochs decide)")
    ap.add_argument("--optimizer", choices=["adamw_gb", "adamw"], help="default: classify's adamw_gb (sst2), ner's adamw (cluener)")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--warmup_proportion", type=float, default=0.1)
    ap.add_argument("--poly_power", type=float, default=1.0)
    ap.add_argument("--end_lr", type=float, default=0.0)
    ap.add_argument("--weight_decay", type=float, default=0.01)
    ap.add_argument("--beta1", type=float, default=0.9); ap.add_argument("--beta2", type=float, default=0.999)
    ap.add_argument("--eps", type=float, help="default: 1e-6 (sst2, classify's), 1e-8 (cluener, ner's)")
    ap.add_argument("--clip_norm", type=float, default=1.0)
    ap.add_argument("--use_crf", action="store_true", help="cluener: linear-chain CRF (else softmax)")
    ap.add_argument("--classifier_dropout", type=float, default=-1.0, help="cluener: before the classifier (-1: hidden_dropout_prob)")
    ap.add_argument("--dropout_rng", choices=["torch", "bert"], default="torch")
    ap.add_argument("--eval_every", type=int, default=0, help="sst2: evaluate every N steps (0: at the end only)")
    ap.add_argument("--no_eval", action="store_true", help="skip the dev evaluation")
    ap.add_argument("--eval_only", action="store_true", help="no training: evaluate --init (a fine-tuned model, heads included) on dev")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--print_every", type=int, default=100)
    ap.add_argument("--out", required=True)
    ap.add_argument("--debug_ids", help="write the first batch's input ids and labels here (JSON)")
    ap.add_argument("--predict_out", help="cluener: the last evaluation's predicted mentions per dev record, JSON lines [[type, start, end], ...]")
    a = ap.parse_args()
    optimizer = a.optimizer or ("adamw_gb" if a.task == "sst2" else "adamw")
    eps = a.eps if a.eps is not None else (1e-6 if a.task == "sst2" else 1e-8)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t_start = time.time()

    arrays, meta = st_read(a.init)
    if "config" in meta:
        cfg = json.loads(meta["config"])
    elif a.config:
        cfg = json.load(open(a.config))
    else:
        sys.exit("%s: no config in its __metadata__: give --config" % a.init)

    if a.eval_only and "crf.transitions" in arrays:
        a.use_crf = True   # a model fine-tuned with the CRF decodes with it (as ner --model does)
    if a.eval_only and "classifier.weight" not in arrays:
        sys.exit("%s: no classifier.weight: --eval_only needs a fine-tuned model" % a.init)
    wp = wp_global = WordPiece(a.vocab)
    model_pad = wp.pad
    T = a.max_seq_length
    if a.task == "sst2":
        train = load_sst2(a.train_file, wp, T)
        dev = load_sst2(a.dev_file, wp, T) if a.dev_file and not a.no_eval else []
        names = sorted({lab for _, lab in train}, key=lambda s: (int(s), s) if s.lstrip("-").isdigit() else (0, s))
        label_index = {n: i for i, n in enumerate(names)}
        K, n_train = len(names), len(train)
    else:
        recs, wins = load_cluener(a.train_file or os.path.join(a.data_dir, "train.json"), wp, T)
        if not a.no_eval:
            dev_recs, dev_wins = load_cluener(a.dev_file or os.path.join(a.data_dir, "dev.json"), wp, T)
        K, n_train = 1 + 2 * len(CLUENER_TYPES), len(wins)
    t_data = time.time() - t_start

    # weights: the file's, then a head it lacks from torch's RNG
    W = {n: torch.from_numpy(x.astype(np.float32)) for n, x in arrays.items() if not n.startswith("cls.")}
    C = cfg["hidden_size"]
    if "classifier.weight" not in W:
        w = torch.empty(K, C)
        torch.nn.init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04)
        W["classifier.weight"], W["classifier.bias"] = w, torch.zeros(K)
        head = "classifier from torch's init (seed %d)" % a.seed
    else:
        head = "classifier from %s" % a.init
    if a.task == "cluener" and a.use_crf and "crf.transitions" not in W:
        W["crf.transitions"] = torch.empty(K + 2, K + 2).uniform_(-0.1, 0.1)
    if a.task == "cluener" and not a.use_crf:
        W.pop("crf.transitions", None)
    assert W["classifier.weight"].shape == (K, C), (W["classifier.weight"].shape, K, C)
    for t in W.values():
        t.requires_grad_(True)
    drop = Dropout(a.dropout_rng, a.seed)
    model = Bert(W, cfg, drop)

    # the schedule and the batches
    per_epoch = -(-n_train // a.batch_size)
    total = a.steps if a.steps else per_epoch * a.epochs
    warmup = int(np.float32(a.warmup_proportion) * np.float32(total))
    if a.eval_only:
        trace = []
        total = 0
    elif not a.trace:
        sys.exit("--trace is needed to train (our run's stderr with --debug_trace_records)")
    else:
        trace = read_trace(a.trace)
    if not a.eval_only and len(trace) < total:
        sys.exit("%s: %d micro-batches, the run takes %d" % (a.trace, len(trace), total))
    trace = trace[:total]
    for k, idx in enumerate(trace):
        if not (0 < len(idx) <= a.batch_size) or max(idx) >= n_train:
            sys.exit("%s: micro-batch %d (%d records, largest %d) does not fit batch %d over %d records"
                     % (a.trace, k, len(idx), max(idx), a.batch_size, n_train))

    params = list(W.items())
    groups = [{"params": [p for n, p in params if decays(n)], "weight_decay": a.weight_decay},
              {"params": [p for n, p in params if not decays(n)], "weight_decay": 0.0}]
    if optimizer == "adamw_gb":
        opt = AdamWeightDecay(groups, lr=a.lr, betas=(a.beta1, a.beta2), eps=eps)
    else:
        opt = torch.optim.AdamW(groups, lr=a.lr, betas=(a.beta1, a.beta2), eps=eps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_at(s, a.lr, warmup, total, a.poly_power, a.end_lr) / a.lr if a.lr else 0.0)

    os.makedirs(a.out, exist_ok=True)
    log = open(os.path.join(a.out, "log.jsonl"), "w")
    log.write(json.dumps({"task": a.task, "init": a.init, "trace": a.trace, "train": n_train, "steps": total,
                          "warmup": warmup, "optimizer": optimizer, "eps": eps, "lr": a.lr, "batch": a.batch_size,
                          "dropout_rng": a.dropout_rng, "seed": a.seed, "head": head, "torch": torch.__version__,
                          "threads": a.threads}) + "\n")
    print("torch_finetune %s: %d train %s, %d steps (warmup %d), %s lr %g eps %g, dropout %s, %s | data %.1f s"
          % (a.task, n_train, "examples" if a.task == "sst2" else "windows", total, warmup, optimizer, a.lr, eps,
             a.dropout_rng, head, t_data), flush=True)

    best, evals = None, []

    def evaluate(step):
        nonlocal best
        if a.no_eval:
            return None
        if a.task == "sst2":
            m = sst2_eval(model, dev, label_index)
        else:
            spans = []
            m = cluener_eval(model, dev_recs, dev_wins, a.use_crf, a.classifier_dropout, spans_out=spans)
            if a.predict_out:
                with open(a.predict_out, "w") as f:
                    f.write("".join(json.dumps(x) + "\n" for x in spans))
        key = "accuracy" if a.task == "sst2" else "f1"
        better = best is None or m[key] > best[1][key]
        if better:
            best = (step, m)
        evals.append((step, m))
        log.write(json.dumps(dict({"eval_step": step}, **m)) + "\n")
        log.flush()
        print("eval  %6d | %s%s" % (step, " | ".join("%s %.4f" % (k, v) for k, v in m.items() if isinstance(v, float)),
                                    " | *best*" if better else ""), flush=True)
        return m

    t_loop = time.time()
    t_eval = 0.0
    for s, idx in enumerate(trace):
        drop.begin(s)   # one micro-batch per step: the micro-batch number is the step
        if a.task == "sst2":
            ids, types, mask = pad([train[i][0] for i in idx], wp.pad)
            labels = torch.tensor([label_index[train[i][1]] for i in idx])
            logits = model.classify(ids, types, mask)
            loss = F.cross_entropy(logits, labels)
        else:
            ids, mask, labels, lengths = ner_batch(recs, [wins[i] for i in idx])
            logits = model.token_logits(ids, mask, a.classifier_dropout)
            if a.use_crf:
                Tc = int(lengths.max())
                loss = crf_nll(logits[:, 1:1 + Tc], W["crf.transitions"], labels[:, 1:1 + Tc], lengths)
            else:
                loss = F.cross_entropy(logits.reshape(-1, K), labels.reshape(-1), ignore_index=-100)
        if s == 0 and a.debug_ids:
            json.dump({"input_ids": ids.tolist(), "labels": labels.tolist(), "records": idx}, open(a.debug_ids, "w"))
        for p in W.values():
            p.grad = None
        loss.backward()
        gn = float(torch.nn.utils.clip_grad_norm_(list(W.values()), a.clip_norm)) if a.clip_norm > 0 else float("nan")
        lr = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        step = s + 1
        log.write(json.dumps({"step": step, "loss": loss.item(), "lr": lr, "grad_norm": gn,
                              "time": round(time.time() - t_start, 3)}) + "\n")
        if step % a.print_every == 0 or step == total or step == 1:
            el = time.time() - t_loop - t_eval
            print("step %6d/%d | loss %.4f | lr %.3e | |g| %.3f | %.1f samples/s" % (
                step, total, loss.item(), lr, gn, step * a.batch_size / max(el, 1e-9)), flush=True)
            log.flush()
        if a.task == "sst2" and a.eval_every and step % a.eval_every == 0 and step != total:
            t0 = time.time()
            evaluate(step)
            t_eval += time.time() - t0
    final = evaluate(total)
    e2e = time.time() - t_start
    res = {"task": a.task, "seed": a.seed, "steps": total, "final": final,
           "best_step": best[0] if best else None, "best": best[1] if best else None,
           "e2e_s": round(e2e, 1), "data_s": round(t_data, 1), "eval_s": round(t_eval, 1)}
    log.write(json.dumps({"summary": "done", "step": total, "e2e_s": round(e2e, 3)}) + "\n")
    log.close()
    json.dump(res, open(os.path.join(a.out, "results.json"), "w"), indent=1)
    print("summary: %d steps in %.1f s | final %s | best %s" % (total, e2e, final, res["best"]), flush=True)


if __name__ == "__main__":
    main()
