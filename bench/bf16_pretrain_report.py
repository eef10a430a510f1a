#!/usr/bin/env python3
"""bench/bf16_pretrain_report.py --run LABEL DIR THREADS [--run ...] [--svg PATH] [--batch_size 32]

bench/bf16_pretrain.sh's comparison of several pretraining runs from their DIR/log.jsonl (written by
build/pretrain and by bench/torch_pretrain.py, the same keys): the first --run is the reference (bert.h
fp32), a run whose label has "seed" in it is the seed-noise yardstick (the reference's config with
another --seed). Prints a markdown table of the held-out MLM loss / accuracy at each evaluation, the
final held-out MLM loss of each against the reference and against the seed spread, the early agreement
of the train loss step by step, the step times, and writes an SVG (train loss in blocks of 25 steps, the
held-out MLM loss and its difference to the reference's, against the step; plain Python, no matplotlib). Missing runs are left out."""
import argparse, json, math, os, sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#7f7f7f", "#9467bd"]
DASHES = ["", "", "6,4", "6,4", "2,3", "8,3,2,3"]
WIDTHS = [5.0, 3.6, 2.4, 1.4, 1.6, 1.6]   # wide to narrow: lines that coincide stay visible


def read_log(path):
    steps, evals, summary = {}, {}, {}
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        if "eval_step" in d:
            evals[int(d["eval_step"])] = d
        elif "summary" in d:
            summary = d
        elif "step" in d and "loss" in d:
            steps[int(d["step"])] = d
    return steps, evals, summary


def step_seconds(summary, batch_size):
    if "step_s" in summary:                      # torch_pretrain.py: train time / steps
        return summary["step_s"]
    if summary.get("p_train"):                   # pretrain: training samples/s
        return batch_size / summary["p_train"]
    return float("nan")


# ------------------------------------------------------------------ SVG
def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nice_ticks(lo, hi, n=6):
    span = hi - lo if hi > lo else 1.0
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    t = math.ceil(lo / step) * step
    out = []
    while t <= hi + 1e-9 * span:
        out.append(round(t, 10)); t += step
    return out


def panel(x0, y0, w, h, title, series, xlabel, ylabel, markers, xmax=None):
    """series: [(label, color, dash, width, [(x, y)...])]; returns SVG elements."""
    xs = [p[0] for *_, pts in series for p in pts]
    ys = [p[1] for *_, pts in series for p in pts]
    if not xs:
        return []
    xlo, xhi = 0, max(xs + [xmax or 0])
    ylo, yhi = min(ys), max(ys)
    pad = 0.05 * (yhi - ylo if yhi > ylo else 1.0)
    ylo, yhi = ylo - pad, yhi + pad
    L, R, T, B = 62, 12, 28, 42
    pw, ph = w - L - R, h - T - B
    X = lambda x: x0 + L + (x - xlo) / (xhi - xlo) * pw
    Y = lambda y: y0 + T + (yhi - y) / (yhi - ylo) * ph
    e = [f'<text x="{x0 + L + pw / 2:.1f}" y="{y0 + 18}" text-anchor="middle" font-size="14" font-weight="bold">{esc(title)}</text>']
    for t in nice_ticks(ylo, yhi):
        e.append(f'<line x1="{X(xlo):.1f}" y1="{Y(t):.1f}" x2="{X(xhi):.1f}" y2="{Y(t):.1f}" stroke="#e4e4e4"/>')
        e.append(f'<text x="{X(xlo) - 5:.1f}" y="{Y(t) + 4:.1f}" text-anchor="end" font-size="11">{t:g}</text>')
    for t in nice_ticks(xlo, xhi, 5):
        e.append(f'<line x1="{X(t):.1f}" y1="{Y(ylo):.1f}" x2="{X(t):.1f}" y2="{Y(yhi):.1f}" stroke="#e4e4e4"/>')
        e.append(f'<text x="{X(t):.1f}" y="{Y(ylo) + 16:.1f}" text-anchor="middle" font-size="11">{t:g}</text>')
    e.append(f'<rect x="{X(xlo):.1f}" y="{Y(yhi):.1f}" width="{pw:.1f}" height="{ph:.1f}" fill="none" stroke="#444"/>')
    e.append(f'<text x="{x0 + L + pw / 2:.1f}" y="{y0 + h - 8}" text-anchor="middle" font-size="12">{esc(xlabel)}</text>')
    e.append(f'<text x="{x0 + 14}" y="{y0 + T + ph / 2:.1f}" text-anchor="middle" font-size="12" '
             f'transform="rotate(-90 {x0 + 14} {y0 + T + ph / 2:.1f})">{esc(ylabel)}</text>')
    for label, color, dash, width, pts in series:
        d = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in pts)
        da = f' stroke-dasharray="{dash}"' if dash else ""
        e.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="{width}"{da}/>')
        if markers:
            e += [f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="{1.2 + width}" fill="{color}"/>' for x, y in pts]
    return e


def write_svg(path, runs, title, note=""):
    W, H = 1260, 490
    train, held, diff = [], [], []
    ref = runs[0]
    block = max(1, min(25, len(ref["steps"]) // 40))
    for i, r in enumerate(runs):
        c, d, lw = COLORS[i % len(COLORS)], DASHES[i % len(DASHES)], WIDTHS[i % len(WIDTHS)]
        s = sorted(r["steps"])
        pts = []
        for b in range(0, len(s) - block + 1, block):
            chunk = s[b:b + block]
            pts.append((chunk[-1] - (block - 1) / 2.0, sum(r["steps"][k]["loss"] for k in chunk) / block))
        train.append((r["label"], c, d, lw, pts))
        held.append((r["label"], c, d, lw, [(k, r["evals"][k]["mlm_loss"]) for k in sorted(r["evals"])]))
        diff.append((r["label"], c, d, lw, [(k, r["evals"][k]["mlm_loss"] - ref["evals"][k]["mlm_loss"])
                                        for k in sorted(r["evals"]) if k in ref["evals"]]))
    e = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="15">{esc(title)}</text>']
    last = max(max(r["steps"], default=0) for r in runs)
    e += panel(0, 26, W / 3, H - 116, "train loss (MLM + NSP)" + (f", mean of each {block} steps" if block > 1 else ", per step"),
               train, "step", "loss", False, last)
    e += panel(W / 3, 26, W / 3, H - 116, "held-out MLM loss", held, "step", "MLM loss", True, last)
    e += panel(2 * W / 3, 26, W / 3, H - 116, f"held-out MLM loss minus {ref['label']}'s", diff, "step", "difference", True, last)
    # legend under the panels
    n = len(runs)
    colw = W / max(n, 1)
    for i, r in enumerate(runs):
        x, y = colw * i + 14, H - 52
        c, d, lw = COLORS[i % len(COLORS)], DASHES[i % len(DASHES)], WIDTHS[i % len(WIDTHS)]
        da = f' stroke-dasharray="{d}"' if d else ""
        e.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x + 30:.1f}" y2="{y}" stroke="{c}" stroke-width="{lw}"{da}/>')
        e.append(f'<text x="{x + 36:.1f}" y="{y + 4}" font-size="12">{esc(r["label"])}</text>')
    if note:
        e.append(f'<text x="{W / 2}" y="{H - 18}" text-anchor="middle" font-size="12" fill="#333">{esc(note)}</text>')
    e.append("</svg>")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(e) + "\n")


# ------------------------------------------------------------------ report
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", nargs=3, action="append", metavar=("LABEL", "DIR", "THREADS"), required=True)
    ap.add_argument("--svg")
    ap.add_argument("--title", default="")
    ap.add_argument("--note", default="", help="a line under the legend")
    ap.add_argument("--batch_size", type=int, default=32)
    a = ap.parse_args()
    runs = []
    for label, d, threads in a.run:
        p = os.path.join(d, "log.jsonl")
        if not os.path.exists(p):
            print(f"note: {p} absent: {label} left out")
            continue
        steps, evals, summary = read_log(p)
        runs.append({"label": label, "steps": steps, "evals": evals, "summary": summary, "threads": threads})
    if len(runs) < 2:
        print("fewer than two runs: no comparison"); return 0
    ref = runs[0]
    seed = next((r for r in runs[1:] if "seed" in r["label"]), None)
    ev = sorted(set.intersection(*(set(r["evals"]) for r in runs)))

    print("held-out MLM loss / accuracy (" + ", ".join(f"{len(r['evals'])} evals" for r in runs[:1]) + "):")
    print("| step | " + " | ".join(r["label"] for r in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for k in ev:
        print(f"| {k} | " + " | ".join(f"{r['evals'][k]['mlm_loss']:.4f} / {r['evals'][k]['mlm_acc']:.4f}" for r in runs) + " |")

    if ev:
        last = ev[-1]
        f0 = ref["evals"][last]["mlm_loss"]
        spread = abs(seed["evals"][last]["mlm_loss"] - f0) if seed else float("nan")
        mean_spread = (sum(abs(seed["evals"][k]["mlm_loss"] - ref["evals"][k]["mlm_loss"]) for k in ev) / len(ev)) if seed else float("nan")
        print(f"\nfinal held-out MLM loss (step {last}), against {ref['label']} ({f0:.4f}); seed spread = |{ref['label']} - "
              f"{seed['label'] if seed else '?'}| = {spread:.4f} at step {last}, {mean_spread:.4f} averaged over the {len(ev)} evals:")
        for r in runs[1:]:
            x = r["evals"][last]["mlm_loss"]
            dl = x - f0
            md = sum(abs(r["evals"][k]["mlm_loss"] - ref["evals"][k]["mlm_loss"]) for k in ev) / len(ev)
            acc = r["evals"][last]["mlm_acc"] - ref["evals"][last]["mlm_acc"]
            verdict = "" if r is seed or not seed else ("  within seed noise" if abs(dl) <= spread and md <= mean_spread
                                                       else "  OUTSIDE the seed spread")
            print(f"  {r['label']:24s} {x:.5f}  {dl:+.5f} ({100 * dl / f0:+.3f} %)  |d|/seed spread {abs(dl) / spread if spread > 0 else float('nan'):.2f}"
                  f"  mean |d| over evals {md:.5f}  acc {acc * 100:+.2f} points{verdict}")

    # early agreement, step by step (same init, data order and dropout masks: identical up to rounding)
    print("\ntrain loss, step by step, relative difference (same init, data order and dropout masks):")
    pairs = [(runs[i], runs[j]) for i in range(len(runs)) for j in range(len(runs))
             if i < j and "seed" not in runs[i]["label"] and "seed" not in runs[j]["label"]]
    for x, y in pairs:
        common = sorted(set(x["steps"]) & set(y["steps"]))
        rel = [abs(x["steps"][k]["loss"] - y["steps"][k]["loss"]) / abs(x["steps"][k]["loss"]) for k in common]
        if not rel:
            continue
        first = next((common[i] for i, v in enumerate(rel) if v > 1e-3), None)
        parts = [f"steps 1-{n}: max {max(rel[:n]):.1e}" for n in sorted({10, 100, len(rel)}) if len(rel) >= n]
        parts.append(f"last step {rel[-1]:.1e}")
        print(f"  {x['label']} vs {y['label']}: " + ", ".join(parts) + f"; first step over 1e-3: {first if first else 'none'}")

    print("\nstep time (training steps only; the machine is shared, so indicative):")
    for r in runs:
        t = step_seconds(r["summary"], a.batch_size)
        extra = f", of it dropout masks (numpy) {r['summary']['dropout_mask_s'] / r['summary']['step']:.3f} s" \
            if r["summary"].get("dropout_mask_s") else ""
        print(f"  {r['label']:24s} {t:.3f} s/step ({a.batch_size / t:.1f} samples/s), {r['threads']} thread(s){extra}")
    if a.svg:
        write_svg(a.svg, runs, a.title, a.note)
        print(f"\nwrote {a.svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
