#!/usr/bin/python3
"""pretrain_curves.py OUT.svg RUN_DIR[:LABEL] ... - issue 27's pretraining curves: the held-out masked-LM
accuracy and loss of each run (pretrain's log.jsonl: the "eval_step" lines, and the "time" of the training
step with that number, in seconds since the run started) against steps, with the hours each run had spent
marked under its curve, in one SVG; also prints a markdown table (step, hours, accuracy, loss) per run.
Standard library only.

  bench/pretrain_curves.py docs/pretrain_real_curves.svg build/pretrain_real/run:English \\
      build/pretrain_real_zh/run:Chinese
"""
import json
import sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def load(run_dir):
    """[(step, hours, mlm_acc, mlm_loss)] from RUN_DIR/log.jsonl; the time of a step is its training line's"""
    times, evals = {}, []
    with open(run_dir + "/log.jsonl") as f:
        for line in f:
            r = json.loads(line)
            if "eval_step" in r:
                evals.append(r)
            elif "step" in r and "time" in r:
                times[r["step"]] = r["time"]
    return [(e["eval_step"], times.get(e["eval_step"], float("nan")) / 3600.0, e["mlm_acc"], e["mlm_loss"]) for e in evals]


def svg(path, runs):
    x0, w, h = 70, 600, 190
    ly = 320 + h + 30 + 14 * len(runs) + 10   # the axis caption, under the hours rows (one per run)
    W, H = 760, ly + 30 + 14 * len(runs)       # and the legend, a line per run
    panels = [("held-out masked-LM accuracy (%)", 2, lambda v: 100.0 * v, 60), ("held-out masked-LM loss", 3, lambda v: v, 320)]
    xmax = max(r[-1][0] for _, r in runs)
    fx = lambda s: x0 + w * s / xmax
    out = ["<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' font-size='11'>" % (W, H),
           "<rect width='100%' height='100%' fill='white'/>",
           "<text x='%d' y='20' font-size='13'>Pretraining from random init (L4/H256/A4, seq 128): held-out masked LM</text>" % x0]
    for title, col, f, y0 in panels:
        vals = [f(p[col]) for _, r in runs for p in r]
        lo, hi = min(vals), max(vals)
        pad = (hi - lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
        fy = lambda v: y0 + h - h * (v - lo) / (hi - lo)
        out.append("<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#888'/>" % (x0, y0, w, h))
        out.append("<text x='%d' y='%d'>%s</text>" % (x0, y0 - 6, title))
        for k in range(6):
            v = lo + (hi - lo) * k / 5
            out.append("<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#eee'/><text x='%d' y='%.1f' text-anchor='end'>%.1f</text>"
                       % (x0, x0 + w, fy(v), fy(v), x0 - 4, fy(v) + 4, v))
        for k in range(7):
            s = xmax * k / 6
            out.append("<text x='%.1f' y='%d' text-anchor='middle'>%d</text>" % (fx(s), y0 + h + 14, round(s)))
        for i, (label, r) in enumerate(runs):
            c = COLORS[i % len(COLORS)]
            out.append("<polyline fill='none' stroke='%s' stroke-width='1.6' points='%s'/>" % (
                c, " ".join("%.1f,%.1f" % (fx(p[0]), fy(f(p[col]))) for p in r)))
            if col == 3:   # hours under the loss panel, one row per run, at about six of its evaluations
                yy = y0 + h + 30 + 14 * i
                out.append("<text x='%d' y='%d' text-anchor='end' fill='%s'>hours</text>" % (x0 - 4, yy, c))
                for p in r[max(1, len(r) // 6) - 1::max(1, len(r) // 6)]:
                    out.append("<text x='%.1f' y='%d' text-anchor='middle' fill='%s'>%.2f</text>" % (fx(p[0]), yy, c, p[1]))
    out.append("<text x='%d' y='%d' text-anchor='middle'>optimizer step (hours since the start of each run below the axis)</text>"
               % (x0 + w / 2, ly))
    for i, (label, r) in enumerate(runs):
        c = COLORS[i % len(COLORS)]
        out.append("<line x1='%d' x2='%d' y1='%d' y2='%d' stroke='%s' stroke-width='2'/><text x='%d' y='%d'>%s: %d steps, %.2f h, "
                   "final accuracy %.1f %%, loss %.2f</text>" % (x0 + 10, x0 + 34, ly + 16 + 14 * i, ly + 16 + 14 * i, c, x0 + 40,
                                                               ly + 20 + 14 * i, label, r[-1][0], r[-1][1], 100 * r[-1][2], r[-1][3]))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip())
    runs = []
    for arg in sys.argv[2:]:
        d, _, label = arg.partition(":")
        try:
            r = load(d)
        except (OSError, ValueError, KeyError) as e:
            sys.exit("pretrain_curves.py: %s/log.jsonl: %s" % (d, e))
        if not r:
            sys.exit("pretrain_curves.py: %s/log.jsonl: no held-out evaluation in it" % d)
        runs.append((label or d, r))
    for label, r in runs:
        print("%s (%s)" % (label, "evaluations at steps " + ", ".join(str(p[0]) for p in r[:3]) + ", ..."))
        print("| step | " + " | ".join("{:,}".format(p[0]) for p in r) + " |")
        print("|---|" + "---|" * len(r))
        print("| hours | " + " | ".join("%.2f" % p[1] for p in r) + " |")
        print("| held-out MLM accuracy | " + " | ".join("%.1f %%" % (100 * p[2]) for p in r) + " |")
        print("| held-out MLM loss | " + " | ".join("%.2f" % p[3] for p in r) + " |")
        print()
    svg(sys.argv[1], runs)
    print("curves: %s" % sys.argv[1])


if __name__ == "__main__":
    main()
