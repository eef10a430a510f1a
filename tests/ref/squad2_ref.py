#!/usr/bin/python3
"""squad2_ref.py DATA.json PRED.json [NA_PROB.json] [THRESH] - SQuAD v2.0 scores, written here from the
metric's published definition (the official evaluate-v2.0.py's behaviour), as an oracle for
`squad --eval` on version 2 files. Prints json.dumps(result, indent=2).

  normalise: lower case, drop ASCII punctuation, drop the words a/an/the, collapse whitespace
  golds: the answer texts that normalise to something; [""] when there is none
  exact: normalised strings equal; f1: token multiset overlap, 1/0 when either side has no tokens
  per question: the best over the golds; a no-answer probability above THRESH (1.0) turns the
  question into "no answer" (score 1 when it has no answer, else 0)
  totals: over the predicted questions; HasAns_/NoAns_: over the file's questions with/without
  answers; best_*: the threshold on the no-answer probability that maximises each score
"""
import json
import re
import string
import sys
from collections import Counter, OrderedDict


def norm(text):
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text, flags=re.UNICODE)
    return " ".join(text.split())


def tokens(text):
    return norm(text).split() if text else []


def f1(gold, pred):
    g, p = tokens(gold), tokens(pred)
    if not g or not p:
        return int(g == p)
    same = sum((Counter(g) & Counter(p)).values())
    if same == 0:
        return 0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


def main():
    data = json.load(open(sys.argv[1]))["data"]
    preds = json.load(open(sys.argv[2]))
    na_file = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
    thresh = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
    na = json.load(open(na_file)) if na_file else {k: 0.0 for k in preds}
    has, exact, f1s = {}, {}, {}
    for article in data:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                qid = qa["id"]
                has[qid] = bool(qa["answers"])
                golds = [a["text"] for a in qa["answers"] if norm(a["text"])] or [""]
                if qid not in preds:
                    continue
                exact[qid] = max(int(norm(g) == norm(preds[qid])) for g in golds)
                f1s[qid] = max(f1(g, preds[qid]) for g in golds)

    def thresholded(scores):
        return {q: (float(not has[q]) if na[q] > thresh else s) for q, s in scores.items()}

    ex_t, f1_t = thresholded(exact), thresholded(f1s)
    out = OrderedDict()
    out["exact"] = 100.0 * sum(ex_t.values()) / len(ex_t)
    out["f1"] = 100.0 * sum(f1_t.values()) / len(f1_t)
    out["total"] = len(ex_t)
    for name, ids in (("HasAns", [q for q in has if has[q]]), ("NoAns", [q for q in has if not has[q]])):
        if ids:
            out[name + "_exact"] = 100.0 * sum(ex_t[q] for q in ids) / len(ids)
            out[name + "_f1"] = 100.0 * sum(f1_t[q] for q in ids) / len(ids)
            out[name + "_total"] = len(ids)
    if na_file:
        for key, raw in (("exact", exact), ("f1", f1s)):
            score = best = sum(1 for q in has if not has[q])
            best_t = 0.0
            for q in sorted(na, key=lambda k: na[k]):
                if q not in raw:
                    continue
                score += raw[q] if has[q] else (-1 if preds[q] else 0)
                if score > best:
                    best, best_t = score, na[q]
            out["best_" + key] = 100.0 * best / len(raw)
            out["best_" + key + "_thresh"] = best_t
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
