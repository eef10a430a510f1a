#!/usr/bin/env python3
"""metrics_ref.py - the classification and regression metrics of examples/classify.c, computed
again in plain Python (stdlib only, written apart from the C code) on the committed prediction
files tests/data/metrics_*.tsv ("gold<TAB>predicted" lines). Writes tests/ref/metrics_ref.json,
which tests/test_classify.c compares with `classify --eval_predictions FILE` (no Python at test time).

Definitions (sklearn's, for the classification ones):
  labels       the labels seen in gold or predictions, numeric order when all are integers
  accuracy     share of lines with gold == predicted
  macro_f1     mean over those labels of F1 = 2PR/(P+R) (0 when P+R = 0), P and R per label
  binary_f1    F1 of the second label when there are exactly 2 (GLUE's positive class "1"), else null
  mcc          Gorodkin's multiclass R_K from the confusion matrix (Matthews' coefficient for 2
               labels); 0 when a side is constant
  majority_*   the most frequent gold label (the first in label order on a tie) and its share
  pearson      product-moment correlation; null when a side is constant
  spearman     Pearson correlation of the ranks, ties sharing their average rank
  mse          mean squared error
Files whose name contains "regression" hold numbers.
    python3 tests/ref/metrics_ref.py [--out tests/ref]
"""
import argparse, json, math, os

def read(path):
    rows = []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\r\n")
        if line.strip():
            g, p = line.split("\t")
            rows.append((g.strip(), p.strip()))
    return rows

def label_order(values):
    def is_int(s):
        return s.lstrip("-").isdigit()
    vals = sorted(set(values))
    return sorted(vals, key=int) if all(is_int(v) for v in vals) else vals

def f1(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return 2 * p * r / (p + r) if p + r else 0.0

def classification(rows):
    labels = label_order([g for g, _ in rows] + [p for _, p in rows])
    K, n = len(labels), len(rows)
    at = {l: i for i, l in enumerate(labels)}
    C = [[0] * K for _ in range(K)]
    for g, p in rows:
        C[at[g]][at[p]] += 1
    f1s = []
    for k in range(K):
        tp = C[k][k]
        fp = sum(C[g][k] for g in range(K) if g != k)
        fn = sum(C[k][p] for p in range(K) if p != k)
        f1s.append(f1(tp, fp, fn))
    # Gorodkin (2004): cov(X,Y) / sqrt(cov(X,X) cov(Y,Y)) written out over the confusion matrix
    cxy = sum(C[k][k] * C[l][m] - C[k][l] * C[m][k] for k in range(K) for l in range(K) for m in range(K))
    cxx = sum(sum(C[k]) * sum(C[f][g] for f in range(K) for g in range(K) if f != k) for k in range(K))
    cyy = sum(sum(C[l][k] for l in range(K)) * sum(C[g][f] for f in range(K) for g in range(K) if f != k) for k in range(K))
    mcc = cxy / math.sqrt(cxx * cyy) if cxx * cyy > 0 else 0.0
    gold_counts = [sum(C[k]) for k in range(K)]
    major = gold_counts.index(max(gold_counts))
    return {"n": n, "labels": labels, "accuracy": sum(C[k][k] for k in range(K)) / n,
            "macro_f1": sum(f1s) / K, "binary_f1": f1s[1] if K == 2 else None, "mcc": mcc,
            "majority_label": labels[major], "majority_accuracy": gold_counts[major] / n, "confusion": C}

def pearson(x, y):
    n = len(x)
    mx, my = math.fsum(x) / n, math.fsum(y) / n
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = math.fsum((a - mx) ** 2 for a in x)
    syy = math.fsum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None

def average_ranks(x):
    order = sorted(range(len(x)), key=lambda i: x[i])
    r = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r

def regression(rows):
    g = [float(a) for a, _ in rows]
    p = [float(b) for _, b in rows]
    return {"n": len(rows), "pearson": pearson(g, p), "spearman": pearson(average_ranks(g), average_ranks(p)),
            "mse": math.fsum((b - a) ** 2 for a, b in zip(g, p)) / len(rows)}

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    data = os.path.join(os.path.dirname(here), "data")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=here)
    args = ap.parse_args()
    out = {}
    for name in sorted(os.listdir(data)):
        if name.startswith("metrics_") and name.endswith(".tsv"):
            rows = read(os.path.join(data, name))
            out[name] = regression(rows) if "regression" in name else classification(rows)
            print(name, json.dumps({k: v for k, v in out[name].items() if k != "confusion"}))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "metrics_ref.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", os.path.join(args.out, "metrics_ref.json"))

if __name__ == "__main__":
    main()
