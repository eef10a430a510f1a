#!/usr/bin/python3
"""Reference for examples/squad.c's data path: google-research/bert's run_squad.py (SQuAD v1.1)
written again with the standard library only, on tokenizer_ref.py.

  read_squad_examples          whitespace split of each context with char -> word offsets; the
                               first answer's word span; "could not find answer" examples flagged
  convert_examples_to_features WordPiece per word with token <-> word maps, query cut to
                               max_query_length, windows of max_tokens_for_doc every doc_stride
                               tokens, the answer span tightened to the tokenized answer
                               (_improve_answer_span), spans outside a window labelled at [CLS]
                               (0), the max-context flag of every document token
  write_predictions            n-best start/end indexes per feature, spans inside the document,
                               max context only, length <= max_answer_length, sorted by
                               start + end logit, get_final_text back onto the original text,
                               de-duplicated; predictions.json and nbest_predictions.json as
                               run_squad writes them (json.dumps(..., indent=4) + "\\n")

On ../shared/data/squad/dev-v1.1.json it writes tests/ref/squad_dev_ref.safetensors (metadata
only): CRC-32s of the feature dump (the format of `squad --dump_features`) per article and in
all, feature/token counts, the predictions and n-best files (CRC-32 and size) for "oracle" logits
(1 at each feature's gold start/end, 0 elsewhere) and for "random" logits (bert.h's counter RNG),
their EM/F1 by squad_eval_ref.py, and EM/F1 of the prediction files that tests/test_squad.c
generates (perfect, empty, random, partial; the same rules are in make_eval_predictions below)
and of tests/data/squad_eval_cases*.json per question.

    /usr/bin/python3 tests/ref/squad_features_ref.py [--out tests/ref] [--data DEV.json] [--keep DIR]
"""
import argparse, collections, contextlib, io, json, math, os, struct, sys, zlib
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizer_ref
import squad_eval_ref

MAX_SEQ, DOC_STRIDE, MAX_QUERY, N_BEST, MAX_ANSWER = 384, 128, 64, 20, 30
RANDOM_SEED = 12345


# ---------------------------------------------------------------- tokenizer (FullTokenizer)
class Tokenizer:
    def __init__(self, vocab_path, lower=True):
        self.vocab = tokenizer_ref.load_vocab(vocab_path)
        self.inv = {i: t for t, i in self.vocab.items()}
        self.lower = lower

    def tokenize(self, text):
        return [p for w in tokenizer_ref.basic_tokenize(text, self.lower) for p in tokenizer_ref.wordpiece(w, self.vocab)]

    def ids(self, tokens):
        return [self.vocab[t] for t in tokens]


# ---------------------------------------------------------------- read_squad_examples
def is_whitespace(c):
    return c in " \t\r\n" or ord(c) == 0x202F


def split_context(text):
    doc_tokens, char_to_word, prev_ws = [], [], True
    for c in text:
        if is_whitespace(c):
            prev_ws = True
        else:
            if prev_ws:
                doc_tokens.append(c)
            else:
                doc_tokens[-1] += c
            prev_ws = False
        char_to_word.append(len(doc_tokens) - 1)
    return doc_tokens, char_to_word


def read_examples(data):
    examples = []
    for ai, article in enumerate(data):
        for para in article["paragraphs"]:
            doc_tokens, char_to_word = split_context(para["context"])
            for qa in para["qas"]:
                if qa.get("is_impossible", False):   # v2.0: no answer; its windows answer at [CLS]
                    examples.append({"article": ai, "qid": qa["id"], "question": qa["question"], "doc_tokens": doc_tokens,
                                     "start": None, "end": None, "answer": "", "train_ok": True, "impossible": True,
                                     "golds": [], "para": id(para)})
                    continue
                ans = qa["answers"][0]
                text, off = ans["text"], ans["answer_start"]
                start = char_to_word[off]
                end = char_to_word[off + len(text) - 1]
                actual = " ".join(doc_tokens[start:end + 1])
                cleaned = " ".join(tokenizer_ref.whitespace_tokenize(text))
                examples.append({"article": ai, "qid": qa["id"], "question": qa["question"], "doc_tokens": doc_tokens,
                                 "start": start, "end": end, "answer": text, "train_ok": actual.find(cleaned) != -1,
                                 "impossible": False, "golds": [a["text"] for a in qa["answers"]], "para": id(para)})
    return examples


# ---------------------------------------------------------------- convert_examples_to_features
def improve_answer_span(doc_tokens, start, end, tok, answer):
    want = " ".join(tok.tokenize(answer))
    for s in range(start, end + 1):
        for e in range(end, s - 1, -1):
            if " ".join(doc_tokens[s:e + 1]) == want:
                return s, e
    return start, end


def is_max_context(spans, cur, pos):
    best, best_i = None, None
    for i, (start, length) in enumerate(spans):
        end = start + length - 1
        if pos < start or pos > end:
            continue
        score = min(pos - start, end - pos) + 0.01 * length
        if best is None or score > best:
            best, best_i = score, i
    return cur == best_i


def convert(examples, tok):
    features, uid, cache = [], 1000000000, {}
    for ei, ex in enumerate(examples):
        query = tok.tokenize(ex["question"])[:MAX_QUERY]
        if ex["para"] not in cache:   # run_squad tokenizes per example; the result is the same
            tok_to_orig, orig_to_tok, all_doc = [], [], []
            for i, w in enumerate(ex["doc_tokens"]):
                orig_to_tok.append(len(all_doc))
                for sub in tok.tokenize(w):
                    tok_to_orig.append(i)
                    all_doc.append(sub)
            cache[ex["para"]] = (tok_to_orig, orig_to_tok, all_doc)
        tok_to_orig, orig_to_tok, all_doc = cache[ex["para"]]
        if ex["impossible"]:
            ts = te = -1
        else:
            ts = orig_to_tok[ex["start"]]
            te = orig_to_tok[ex["end"] + 1] - 1 if ex["end"] < len(ex["doc_tokens"]) - 1 else len(all_doc) - 1
            ts, te = improve_answer_span(all_doc, ts, te, tok, ex["answer"])
        max_doc = MAX_SEQ - len(query) - 3
        spans, off = [], 0
        while off < len(all_doc):
            length = min(len(all_doc) - off, max_doc)
            spans.append((off, length))
            if off + length == len(all_doc):
                break
            off += min(length, DOC_STRIDE)
        for si, (s0, length) in enumerate(spans):
            tokens = ["[CLS]"] + query + ["[SEP]"]
            to_orig, maxctx = {}, {}
            for i in range(length):
                to_orig[len(tokens)] = tok_to_orig[s0 + i]
                maxctx[len(tokens)] = is_max_context(spans, si, s0 + i)
                tokens.append(all_doc[s0 + i])
            tokens.append("[SEP]")
            doc_offset = len(query) + 2
            if ts >= 0 and ts >= s0 and te <= s0 + length - 1:
                sp, ep = ts - s0 + doc_offset, te - s0 + doc_offset
            else:
                sp = ep = 0
            features.append({"uid": uid, "ex": ei, "span": si, "tokens": tokens, "ids": tok.ids(tokens),
                             "doc_offset": doc_offset, "span_start": s0, "span_len": length,
                             "to_orig": to_orig, "maxctx": maxctx, "start": sp, "end": ep})
            uid += 1   # after the feature, as run_squad: the first one is 1000000000
    return features


def dump_line(ex, f):
    d = f["doc_offset"]
    orig = " ".join(str(f["to_orig"][d + i]) for i in range(f["span_len"]))
    bits = "".join("1" if f["maxctx"][d + i] else "0" for i in range(f["span_len"]))
    return "%d %d %d %d %s | %s | %d %d %d | %s | %s | %d %d %d\n" % (
        ex["article"], f["ex"], f["span"], f["uid"], ex["qid"], " ".join(map(str, f["ids"])),
        d, f["span_start"], f["span_len"], orig, bits, f["start"], f["end"], 1 if ex["train_ok"] else 0)


# ---------------------------------------------------------------- write_predictions
def best_indexes(logits, n):
    return [i for i, _ in sorted(enumerate(logits), key=lambda x: x[1], reverse=True)[:n]]


def strip_spaces(text):
    ns, m = [], collections.OrderedDict()
    for i, c in enumerate(text):
        if c == " ":
            continue
        m[len(ns)] = i
        ns.append(c)
    return "".join(ns), m


def get_final_text(pred_text, orig_text, lower):
    tok_text = " ".join(tokenizer_ref.basic_tokenize(orig_text, lower))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_ns, orig_map = strip_spaces(orig_text)
    tok_ns, tok_map = strip_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return orig_text
    tok_s_to_ns = {v: k for k, v in tok_map.items()}
    if start not in tok_s_to_ns or tok_s_to_ns[start] not in orig_map:
        return orig_text
    orig_start = orig_map[tok_s_to_ns[start]]
    if end not in tok_s_to_ns or tok_s_to_ns[end] not in orig_map:
        return orig_text
    orig_end = orig_map[tok_s_to_ns[end]]
    return orig_text[orig_start:orig_end + 1]


def softmax(scores):
    if not scores:
        return []
    mx = max(scores)
    ex = [math.exp(s - mx) for s in scores]
    total = sum(ex)   # sum() adds left to right from 0, as run_squad's loop does
    return [x / total for x in ex]


def write_predictions(examples, features, logits, lower=True, v2=False, null_threshold=0.0):
    """run_squad's write_predictions; v2 (version_2_with_negative): the null score of each question is
    the smallest start_logits[0] + end_logits[0] over its features, a null prelim ([CLS], [CLS]) with
    that feature's logits joins the candidates, "" is added to the n-best when missing (and, when it is
    the only entry, transformers' nonce "empty" with logits 0 goes before it: run_squad would fail on
    best_non_null_entry None there); the answer is "" when score_null - the best non-empty entry's
    start + end logit > null_threshold, else that entry's text; null_odds: qid -> that difference."""
    by_ex = collections.defaultdict(list)
    for f in features:
        by_ex[f["ex"]].append(f)
    preds, nbest_all, odds = collections.OrderedDict(), collections.OrderedDict(), collections.OrderedDict()
    for ei, ex in enumerate(examples):
        feats, prelim = by_ex[ei], []
        score_null, null = 1000000, None
        for fi, f in enumerate(feats):
            sl, el = logits[f["uid"]]
            if v2 and sl[0] + el[0] < score_null:
                score_null, null = sl[0] + el[0], (fi, 0, 0, sl[0], el[0])
            n = len(f["tokens"])
            for s in best_indexes(sl, N_BEST):
                for e in best_indexes(el, N_BEST):
                    if s >= n or e >= n or s not in f["to_orig"] or e not in f["to_orig"]:
                        continue
                    if not f["maxctx"].get(s, False) or e < s or e - s + 1 > MAX_ANSWER:
                        continue
                    prelim.append((fi, s, e, sl[s], el[e]))
        if null:
            prelim.append(null)
        prelim.sort(key=lambda p: p[3] + p[4], reverse=True)
        seen, nbest = set(), []
        for fi, s, e, ls, le in prelim:
            if len(nbest) >= N_BEST:
                break
            f = feats[fi]
            if s > 0:
                tok_text = " ".join(f["tokens"][s:e + 1]).replace(" ##", "").replace("##", "")
                tok_text = " ".join(tok_text.strip().split())
                orig_text = " ".join(ex["doc_tokens"][f["to_orig"][s]:f["to_orig"][e] + 1])
                final = get_final_text(tok_text, orig_text, lower)
                if final in seen:
                    continue
            else:
                final = ""
            seen.add(final)
            nbest.append((final, ls, le))
        if null and "" not in seen:
            nbest.append(("", null[3], null[4]))
        if null and len(nbest) == 1:
            nbest.insert(0, ("empty", 0.0, 0.0))
        if not nbest:
            nbest.append(("empty", 0.0, 0.0))
        probs = softmax([ls + le for _, ls, le in nbest])
        out = []
        for (text, ls, le), p in zip(nbest, probs):
            o = collections.OrderedDict()
            o["text"], o["probability"], o["start_logit"], o["end_logit"] = text, p, ls, le
            out.append(o)
        nbest_all[ex["qid"]] = out
        if not v2:
            preds[ex["qid"]] = out[0]["text"]
            continue
        best = next((o for o in out if o["text"]), None)
        if null is None or best is None:   # no window (an empty context): no answer
            odds[ex["qid"]], preds[ex["qid"]] = 0.0, ""
            continue
        diff = score_null - best["start_logit"] - best["end_logit"]
        odds[ex["qid"]] = diff
        preds[ex["qid"]] = "" if diff > null_threshold else best["text"]
    dump = lambda x: (json.dumps(x, indent=4) + "\n").encode()
    if v2:
        return dump(preds), dump(nbest_all), preds, dump(odds)
    return dump(preds), dump(nbest_all), preds


# ---------------------------------------------------------------- logits without a model
M64 = (1 << 64) - 1


def mix(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def oracle_logits(features):
    out = {}
    for f in features:
        s, e = [0.0] * MAX_SEQ, [0.0] * MAX_SEQ
        s[f["start"]], e[f["end"]] = 1.0, 1.0
        out[f["uid"]] = (s, e)
    return out


def random_logits(features):
    """u = bert_rng_uniform(bert_rng_stream(seed, unique_id - 1e9, site), t), site 0 start, 1 end."""
    out = {}
    for f in features:
        rows = []
        for site in (0, 1):
            stream = mix(mix(mix(RANDOM_SEED) ^ (f["uid"] - 1000000000)) ^ site)
            rows.append([(mix(stream ^ t) >> 40) * 2.0 ** -24 for t in range(MAX_SEQ)])
        out[f["uid"]] = tuple(rows)
    return out


# ---------------------------------------------------------------- prediction files for the metric test
def make_eval_predictions(data):
    """The four files tests/test_squad.c writes (the same rules in C), as qid -> text dicts."""
    qas = [(qa, para["context"]) for art in data for para in art["paragraphs"] for qa in para["qas"]]
    n = len(qas)
    perfect = {qa["id"]: qa["answers"][0]["text"] for qa, _ in qas}
    empty = {qa["id"]: "" for qa, _ in qas}
    rand = {qa["id"]: qas[(k * 7919 + 13) % n][0]["answers"][0]["text"] for k, (qa, _) in enumerate(qas)}
    partial = {}
    for k, (qa, ctx) in enumerate(qas):
        a0, last = qa["answers"][0], qa["answers"][-1]["text"]
        r = k % 10
        if r == 0:
            continue                                   # unanswered
        elif r <= 3:
            t = last
        elif r <= 5:                                   # the answer with context around it
            s = a0["answer_start"]
            t = ctx[max(0, s - 12):s + len(a0["text"]) + 7]
        elif r == 6:
            t = qa["question"]
        elif r == 7:                                   # the first word dropped
            t = a0["text"].split(" ", 1)[1] if " " in a0["text"] else ""
        elif r == 8:
            t = a0["text"] + " the"
        else:
            t = "The " + a0["text"] + "."
        partial[qa["id"]] = t
    return [("perfect", perfect), ("empty", empty), ("random", rand), ("partial", partial)]


def crc(b):
    return "%08x:%d" % (zlib.crc32(b) & 0xFFFFFFFF, len(b))


def save_meta(path, meta):
    """A safetensors file with no tensors, only __metadata__ (the form compare.py and bert.h read)."""
    h = json.dumps({"__metadata__": meta}, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
    print("wrote %s (%d bytes, metadata only)" % (path, os.path.getsize(path)))


def predict_only(args):
    raw = json.load(open(args.data, encoding="utf-8"))
    v2 = str(raw.get("version", "")).lstrip("v").startswith("2")
    examples = read_examples(raw["data"])
    features = convert(examples, Tokenizer(args.vocab))
    logits = oracle_logits(features) if args.logits == "oracle" else random_logits(features)
    out = write_predictions(examples, features, logits, v2=v2, null_threshold=args.null_threshold)
    os.makedirs(args.predict, exist_ok=True)
    files = {"features.txt": b"".join(dump_line(examples[f["ex"]], f).encode() for f in features),
             "predictions.json": out[0], "nbest_predictions.json": out[1]}
    if v2:
        files["null_odds.json"] = out[3]
    for name, b in files.items():
        open(os.path.join(args.predict, name), "wb").write(b)
    print("%d questions -> %d features, %d at [CLS]; wrote %s" % (len(examples), len(features), sum(1 for f in features if f["start"] == 0), " ".join(sorted(files))))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=here)
    ap.add_argument("--data", default=os.path.join(root, "..", "shared", "data", "squad", "dev-v1.1.json"))
    ap.add_argument("--vocab", default=os.path.join(root, "..", "shared", "data", "vocab", "bert_uncased_vocab.txt"))
    ap.add_argument("--keep", help="also write the dump, predictions and n-best files into this directory")
    ap.add_argument("--predict", metavar="DIR", help="only predict --data (v2.0 when the file says so) with --logits into DIR: "
                    "features.txt, predictions.json, nbest_predictions.json (+ null_odds.json)")
    ap.add_argument("--logits", choices=("oracle", "random"), default="random")
    ap.add_argument("--null-threshold", type=float, default=0.0)
    args = ap.parse_args()
    if args.predict:
        return predict_only(args)
    os.makedirs(args.out, exist_ok=True)
    # the hand-written metric cases need no shared data
    cases = json.load(open(os.path.join(root, "tests", "data", "squad_eval_cases.json"), encoding="utf-8"))
    cpred = json.load(open(os.path.join(root, "tests", "data", "squad_eval_cases_pred.json"), encoding="utf-8"))
    details = []
    with contextlib.redirect_stderr(io.StringIO()):
        score = squad_eval_ref.evaluate(cases["data"], cpred, details)
    save_meta(os.path.join(args.out, "squad_cases_ref.safetensors"),
              {"scores": json.dumps(score), "details": "\n".join(json.dumps(d) for d in details)})
    print("eval cases %s" % json.dumps(score))
    meta = {}
    if not (os.path.exists(args.data) and os.path.exists(args.vocab)):
        print("squad_features_ref: SKIP the dev set: %s or %s absent" % (args.data, args.vocab), file=sys.stderr)
        return
    data = json.load(open(args.data, encoding="utf-8"))["data"]
    tok = Tokenizer(args.vocab)
    examples = read_examples(data)
    features = convert(examples, tok)
    lines = [dump_line(examples[f["ex"]], f).encode() for f in features]
    per_article = collections.defaultdict(list)
    for f, line in zip(features, lines):
        per_article[examples[f["ex"]]["article"]].append(line)
    meta["features.crc"] = crc(b"".join(lines))
    meta["features.per_article"] = " ".join(crc(b"".join(per_article[a])) for a in range(len(data)))
    meta["features.count"] = str(len(features))
    meta["features.tokens"] = str(sum(len(f["ids"]) for f in features))
    meta["features.max_context"] = str(sum(sum(f["maxctx"].values()) for f in features))
    meta["features.at_cls"] = str(sum(1 for f in features if f["start"] == 0))
    meta["examples.count"] = str(len(examples))
    meta["examples.not_found"] = str(sum(1 for e in examples if not e["train_ok"]))
    print("%d examples -> %d features, %s tokens, %s at [CLS], %s answers not found" % (
        len(examples), len(features), meta["features.tokens"], meta["features.at_cls"], meta["examples.not_found"]))
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        open(os.path.join(args.keep, "features.txt"), "wb").write(b"".join(lines))
    for mode, logits in (("oracle", oracle_logits(features)), ("random", random_logits(features))):
        p, nb, preds = write_predictions(examples, features, logits)
        score = squad_eval_ref.evaluate(data, preds)
        meta[mode + ".predictions"], meta[mode + ".nbest"], meta[mode + ".scores"] = crc(p), crc(nb), json.dumps(score)
        print("%s logits: %s | predictions %s nbest %s" % (mode, json.dumps(score), crc(p), crc(nb)))
        if args.keep:
            open(os.path.join(args.keep, mode + "_predictions.json"), "wb").write(p)
            open(os.path.join(args.keep, mode + "_nbest_predictions.json"), "wb").write(nb)
    for name, preds in make_eval_predictions(data):
        with contextlib.redirect_stderr(io.StringIO()):
            meta["eval." + name] = json.dumps(squad_eval_ref.evaluate(data, preds))
        print("eval %-8s %s" % (name, meta["eval." + name]))
    save_meta(os.path.join(args.out, "squad_dev_ref.safetensors"), meta)


if __name__ == "__main__":
    main()
