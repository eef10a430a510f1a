#!/usr/bin/env python3
"""report.py - turns the logs of bench/run.sh into the comparison table, the noise summary, the
target check and bench/results.jsonl (one JSON object per workload per impl and precision; every
one names "impl": bert.h, torch, ort or fma_peak, and "precision": fp32, bf16 or int8). Standard library only.

Each process run.sh started left LOGS/NN_label.impl.{out,time,stat,rc}:
  .out   its stdout+stderr; JSON result lines start with '{' (bench_bert, fma_peak, ort_bench.js) or
         'RESULT {' (torch)
  .time  /usr/bin/time -v output (peak RSS, user/sys time, context switches), when available
  .stat  /proc/stat busy and total jiffies before and after, CLK_TCK, CPU count: the CPU time other
         processes took while it ran = busy - (user + sys of ours)
"""
import argparse
import glob
import json
import os
import re

TARGETS = [  # (workload, minimum speed ratio torch median / ours median)
    ("train_b8", 1.6),
    ("infer_b8", 1.3),
    ("infer_b1", 1.5),
]
SGEMM_PCT = 85.0   # % of the measured FMA peak, every linear shape
RSS_FRACTION = 0.5  # ours <= half of torch, train b8
# issue 21 (inference; per workload: ratio = the other's median / bert.h's, >1 bert.h faster) and issue 23
# (bf16 training): (label, workload, bert.h precision, other impl, other precision, minimum ratio)
LOWP_TARGETS = [
    ("fp32 >= 1.0x ORT fp32", "infer_b1", "fp32", "ort", "fp32", 1.0),
    ("fp32 >= 1.0x ORT fp32", "infer_b8", "fp32", "ort", "fp32", 1.0),
    ("int8 >= 1.0x ORT int8", "infer_b1", "int8", "ort", "int8", 1.0),
    ("int8 >= 1.0x ORT int8", "infer_b8", "int8", "ort", "int8", 1.0),
    ("int8 >= 2.5x bert.h fp32", "infer_b8", "int8", "bert.h", "fp32", 2.5),
    ("bf16 >= 1.7x bert.h fp32", "infer_b1", "bf16", "bert.h", "fp32", 1.7),
    ("bf16 >= 1.7x bert.h fp32", "infer_b8", "bf16", "bert.h", "fp32", 1.7),
    ("bf16 step >= 3x torch fp32", "train_b8", "bf16", "torch", "fp32", 3.0),
    ("bf16 step >= 1.7x bert.h fp32", "train_b8", "bf16", "bert.h", "fp32", 1.7),
]
BF16_RSS_FRACTION = 0.55  # issue 23: bf16 train b8 peak RSS <= 0.55x torch fp32's


def parse_time_v(path):
    r = {}
    if not os.path.exists(path):
        return r
    for line in open(path, errors="replace"):
        k, _, v = line.strip().rpartition(": ")
        try:
            if k == "Maximum resident set size (kbytes)":
                r["rss_mb"] = int(v) / 1024.0
            elif k == "User time (seconds)":
                r["user_s"] = float(v)
            elif k == "System time (seconds)":
                r["sys_s"] = float(v)
            elif k == "Involuntary context switches":
                r["invol_cs"] = int(v)
            elif k == "Minor (reclaiming a frame) page faults":
                r["minflt"] = int(v)
            elif k.startswith("Elapsed (wall clock) time"):
                parts = [float(x) for x in v.split(":")]
                s = 0.0
                for x in parts:
                    s = s * 60 + x
                r["wall_s"] = s
        except ValueError:
            pass
    return r


def parse_stat(path, t):
    """% of the machine's CPU time used by other processes while this one ran (needs user/sys)."""
    if not os.path.exists(path):
        return None
    try:
        b0, t0, b1, t1, hz, ncpu = [float(x) for x in open(path).read().split()]
    except ValueError:
        return None
    if t1 <= t0 or "user_s" not in t:
        return None
    busy_s = (b1 - b0) / hz
    total_s = (t1 - t0) / hz
    others = busy_s - t["user_s"] - t["sys_s"]
    return max(0.0, 100.0 * others / total_s)


def load_logs(logdir):
    rows = []
    for out in sorted(glob.glob(os.path.join(logdir, "*.out"))):
        base = out[:-4]
        label_impl = os.path.basename(base).split("_", 1)[1]
        label, impl = label_impl.split(".", 1)   # labels have no '.'; impls may ("bert.h")
        t = parse_time_v(base + ".time")
        others = parse_stat(base + ".stat", t)
        rc = open(base + ".rc").read().strip() if os.path.exists(base + ".rc") else "?"
        for line in open(out, errors="replace"):
            line = line.strip()
            if line.startswith("RESULT "):
                line = line[7:]
            if not line.startswith("{"):
                continue
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if impl == "torch":   # torch_bert.py's fields -> ours (its "impl" is the model's: hf or nn)
                j = dict(j, workload="%s_b%d" % (j["mode"], j["batch"]), impl="torch", torch_impl=j.get("impl"),
                         gflops=j.get("gflops_med"), spread=j["ms_max"] / j["ms_min"],
                         gflop=j.get("gflop_per_step"))
            j.setdefault("precision", "fp32")
            j["label"] = label
            j["exit_status"] = rc
            if "rss_mb" in t:
                j["rss_mb"] = round(t["rss_mb"], 1)
                j["rss_source"] = "/usr/bin/time -v"
            elif "rss_mb" in j:
                j["rss_source"] = "getrusage"
            for k in ("user_s", "sys_s", "invol_cs", "minflt", "wall_s"):
                if k in t:
                    j["proc_" + k] = t[k]
            if others is not None:
                j["others_cpu_pct"] = round(others, 1)
            rows.append(j)
    return rows


def fmt_ms(r):
    if r is None or r.get("ms_med") is None:
        return "-"
    def f(x):
        return "%.0f" % x if x >= 100 else "%.1f" % x if x >= 10 else "%.2f" % x
    return "%s/%s/%s" % (f(r["ms_min"]), f(r["ms_med"]), f(r["ms_max"]))


def fnum(x, fmt="%.1f"):
    return "-" if x is None else fmt % x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--date", default="")
    ap.add_argument("--cpu", default="")
    ap.add_argument("--isa-flags", default="")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--commit", default="")
    ap.add_argument("--torch-blas", default="")
    ap.add_argument("--torch-version", default="")
    ap.add_argument("--ort-version", default="")
    ap.add_argument("--load-start", default="")
    ap.add_argument("--load-end", default="")
    ap.add_argument("--bg-start", default="")
    ap.add_argument("--quick", type=int, default=0)
    ap.add_argument("--env", default="")
    a = ap.parse_args()

    rows = load_logs(a.logs)
    fma = [r for r in rows if r.get("impl") == "fma_peak"]
    widest = [r for r in fma if r.get("widest") and r["threads"] == max(x["threads"] for x in fma)] if fma else []
    peak = max((r["gflops"] for r in widest), default=None)
    peak_row = max(widest, key=lambda r: r["gflops"]) if widest else None
    isa = peak_row["isa"] if peak_row else "?"
    kernel = next((r["kernel"] for r in rows if r.get("impl") == "bert.h" and "kernel" in r), "?")
    kernel8 = next((r["int8_kernel"] for r in rows if r.get("impl") == "bert.h" and "int8_kernel" in r), None)

    # keyed by workload within one impl and precision: the int8 rows share the fp32 rows' workload
    # names (infer_b1, infer_b8) and differ by "precision" only
    def pick(impl, prec):
        return {r["workload"]: r for r in rows if r.get("impl") == impl and r.get("precision") == prec}
    ours, ours8 = pick("bert.h", "fp32"), pick("bert.h", "int8")
    torch = pick("torch", "fp32")
    ort, ort8 = pick("ort", "fp32"), pick("ort", "int8")
    ours16, torch16 = pick("bert.h", "bf16"), pick("torch", "bf16")
    for r in rows:
        # % of the FP32 FMA peak: for fp32 work only (int8 GF/s count the same FLOPs, fp32-equivalent)
        r["pct_peak"] = (round(100.0 * r["gflops"] / peak, 1) if peak and r.get("gflops") and r["impl"] != "fma_peak"
                         and r.get("precision") == "fp32" else None)
        r["ratio"] = None
        w, prec = r["workload"], r.get("precision")
        # every ratio: the other impl's median / bert.h's median at the same precision (>1: bert.h faster)
        if prec == "fp32" and w in ours and w in torch and r["impl"] in ("bert.h", "torch"):
            r["ratio"] = round(torch[w]["ms_med"] / ours[w]["ms_med"], 3)
        if r["impl"] == "ort":
            same = (ours if prec == "fp32" else ours8).get(w)
            if same:
                r["ratio"] = round(r["ms_med"] / same["ms_med"], 3)
        if r["impl"] == "bert.h" and prec == "fp32":
            if w in ort:
                r["ratio_ort"] = round(ort[w]["ms_med"] / r["ms_med"], 3)
            if w in ort8:   # across precisions: ORT int8 against bert.h fp32, for orientation
                r["ratio_ort_int8"] = round(ort8[w]["ms_med"] / r["ms_med"], 3)
        if r["impl"] == "bert.h" and prec == "int8":
            # no torch int8: "ratio" stays null; ORT int8 / bert.h int8; bert.h's own int8 speed-up
            if w in ort8:
                r["ratio_ort"] = round(ort8[w]["ms_med"] / r["ms_med"], 3)
            if w in ours:
                r["speedup_vs_fp32"] = round(ours[w]["ms_med"] / r["ms_med"], 3)
        if prec == "bf16" and r["impl"] in ("bert.h", "torch"):
            # bf16 training (issue 23): against torch fp32 and torch bf16 autocast, and bert.h's own fp32
            o16 = ours16.get(w)
            if o16 and r["impl"] == "bert.h":
                if w in torch:
                    r["ratio_torch_fp32"] = round(torch[w]["ms_med"] / r["ms_med"], 3)
                if w in torch16:
                    r["ratio"] = round(torch16[w]["ms_med"] / r["ms_med"], 3)
                if w in ours:
                    r["speedup_vs_fp32"] = round(ours[w]["ms_med"] / r["ms_med"], 3)
        if r["impl"] == "fma_peak":
            r.setdefault("ms_min", None); r.setdefault("ms_med", None); r.setdefault("ms_max", None)
            r.setdefault("rss_mb", None)

    # ---- table
    print()
    print("== results  %s  |  %s  |  %s (%s), %d threads  |  bert.h %s, sgemm %s" % (
        a.date, a.cpu, isa, a.isa_flags, a.threads, a.commit, kernel))
    if a.env.strip():
        print("   environment: %s" % a.env.strip())
    if ours8:
        print("   bert.h int8: bert_model_quantize (int8 weights per output channel, activations per token), "
              "int8 GEMM kernel %s" % kernel8)
    if a.torch_version:
        print("   torch %s on %s (torch 1 thread, OpenBLAS %d threads)" % (a.torch_version, a.torch_blas, a.threads))
    if ort or ort8:
        r0 = next(iter(ort.values() or ort8.values()))
        print("   ORT: onnxruntime-node %s, CPU, intraOpNumThreads %s, interOpNumThreads 1, %s, graph optimization '%s'; "
              "torch_bert.py's model exported to ONNX%s; max abs diff to torch (pooled) %s" % (
                  r0.get("ort", a.ort_version), r0.get("threads"), r0.get("execution_mode", "sequential"), r0.get("graph_opt", "all"),
                  " (int8: encoder MatMuls -> DynamicQuantizeMatMul)" if ort8 else "",
                  ", ".join("%s %.1e" % (p, d[next(iter(d))]["check_max_abs_diff"]) for p, d in (("fp32", ort), ("int8", ort8))
                            if d and d[next(iter(d))].get("check_max_abs_diff") is not None)))
    if peak:
        print("   measured FP32 peak (%s, %d threads, median of %d; higher of the runs): %.1f GFLOP/s; "
              "%% peak below is of this" % (isa, peak_row["threads"], peak_row["reps"], peak))
    # columns: (header, function of (ours, torch, ORT fp32, ORT int8, ours int8) rows -> text); the
    # ORT ones only when ORT ran, the int8 ones only when that int8 ran (RSS, spread: results.jsonl)
    has_ort, has_int8, has_ours8 = bool(ort), bool(ort8), bool(ours8)
    def col(key, fmt, pick):
        return lambda q: fnum(pick(q)[key] if pick(q) and pick(q).get(key) is not None else None, fmt)
    O, T, R, Q8 = (lambda q: q[0]), (lambda q: q[1]), (lambda q: q[2]), (lambda q: q[4])
    cols = [("ours ms min/med/max", lambda q: fmt_ms(q[0])), ("torch ms min/med/max", lambda q: fmt_ms(q[1]))]
    if has_ort:
        cols.append(("ORT ms min/med/max", lambda q: fmt_ms(q[2])))
    if has_int8:
        cols.append(("ORT int8 ms", lambda q: fmt_ms(q[3])))
    if has_ours8:
        cols.append(("bert.h int8 ms", lambda q: fmt_ms(q[4])))
    cols.append(("ratio" if not (has_ort or has_int8 or has_ours8) else "ratio torch", col("ratio", "%.2fx", O)))
    if has_ort:
        cols.append(("ratio ORT", col("ratio_ort", "%.2fx", O)))
    if has_int8 and has_ours8:
        cols.append(("ratio ORT int8", col("ratio_ort", "%.2fx", Q8)))
    elif has_int8:   # no bert.h int8 to compare with: ORT int8 against bert.h fp32
        cols.append(("ratio int8", col("ratio_ort_int8", "%.2fx", O)))
    if has_ours8:
        cols.append(("int8 speed-up", col("speedup_vs_fp32", "%.2fx", Q8)))
    cols += [("GF/s ours", col("gflops", "%.1f", O)), ("GF/s torch", col("gflops", "%.1f", T))]
    if has_ort:
        cols.append(("GF/s ORT", col("gflops", "%.1f", R)))
    cols += [("%pk ours", col("pct_peak", "%.0f%%", O)), ("%pk torch", col("pct_peak", "%.0f%%", T))]
    if has_ort:
        cols.append(("%pk ORT", col("pct_peak", "%.0f%%", R)))
    cols += [("RSS MiB ours", lambda q: fnum(q[0].get("rss_mb") if q[0] and q[0]["mode"] != "sgemm" else None, "%.0f")),
             ("RSS torch", col("rss_mb", "%.0f", T))]
    if has_ort:
        cols.append(("RSS ORT", col("rss_mb", "%.0f", R)))
    cols += [("spread ours", col("spread", "%.2f", O)), ("spread torch", col("spread", "%.2f", T))]
    if has_ort:
        cols.append(("spread ORT", col("spread", "%.2f", R)))
    hdr = ("workload",) + tuple(h for h, _ in cols) + ("other load",)
    lines = [hdr]
    order = []
    for r in rows:
        if r["impl"] in ("bert.h", "torch", "ort") and r["workload"] not in order:
            order.append(r["workload"])
    for w in order:
        q = (ours.get(w), torch.get(w), ort.get(w), ort8.get(w), ours8.get(w))
        oth = [x.get("others_cpu_pct") for x in q if x and x.get("others_cpu_pct") is not None]
        lines.append((w,) + tuple(f(q) for _, f in cols) + ("/".join("%.0f%%" % x for x in oth) if oth else "-",))
    for r in fma:
        cells = {"GF/s ours": "%.1f" % r["gflops"], "spread ours": "%.2f" % r["spread"]}
        lines.append(("fma %s %dt%s" % (r["isa"], r["threads"], " (end)" if r["label"] == "fma_end" else ""),)
                     + tuple(cells.get(h, "-") for h, _ in cols)
                     + ("%.0f%%" % r["others_cpu_pct"] if r.get("others_cpu_pct") is not None else "-",))
    widths = [max(len(str(l[i])) for l in lines) for i in range(len(hdr))]
    for k, l in enumerate(lines):
        print("  " + "  ".join(str(x).ljust(widths[i]) if i == 0 else str(x).rjust(widths[i]) for i, x in enumerate(l)))
        if k == 0:
            print("  " + "  ".join("-" * w for w in widths))
    print("  ratio %s= torch median / ours median (>1: ours faster). spread = max/min of the timed runs." % (
        "torch " if (has_ort or has_int8 or has_ours8) else ""))
    if has_ours8:
        print("  ours (ms, GF/s, %pk, RSS, spread) = bert.h fp32; bert.h int8 ms = bert_model_quantize'd model.")
    if has_ort:
        print("  ratio ORT = ORT fp32 median / ours (bert.h fp32) median (>1: ours faster).")
    if has_int8 and has_ours8:
        print("  ratio ORT int8 = ORT int8 median / bert.h int8 median (>1: bert.h faster).")
    elif has_int8:
        print("  ratio int8 = ORT int8 median / ours (fp32) median: a different precision, for orientation only.")
    if has_ours8:
        print("  int8 speed-up = bert.h fp32 median / bert.h int8 median (>1: int8 faster).")
    if has_int8 or has_ours8:
        print("  int8 rows' GF/s in results.jsonl count the same FLOPs (fp32-equivalent), with no % of the FP32 peak.")
    print("  other load = % of the machine's CPU time other processes used while that process ran.")
    print("  FLOP counts: GEMMs 2*M*N*K; BERT the standard count of torch_bert.py's flops() for every impl.")

    # ---- bf16 training
    if ours16 or torch16:
        kernel16 = next((r["bf16_kernel"] for r in ours16.values() if "bf16_kernel" in r), "?")
        print()
        print("== bf16 mixed-precision training (bert.h: bf16 GEMM inputs in the linear layers, %s; torch: "
              "torch.autocast('cpu', dtype=torch.bfloat16))" % kernel16)
        print("  %-10s %12s %12s %12s %12s  %s" % ("workload", "bert.h fp32", "bert.h bf16", "torch fp32", "torch bf16",
                                                   "bert.h bf16 vs torch fp32 / torch bf16 / bert.h fp32; RSS vs torch fp32"))
        for w in sorted(w for w in set(ours16) | set(torch16) if w.startswith("train")):
            o, o16, t, t16 = ours.get(w), ours16.get(w), torch.get(w), torch16.get(w)
            ms = lambda q: "%.0f" % q["ms_med"] if q else "-"
            rat = lambda q: "%.2fx" % (q["ms_med"] / o16["ms_med"]) if q and o16 else "-"
            rss = "%.0f%%" % (100.0 * o16["rss_mb"] / t["rss_mb"]) if o16 and t and o16.get("rss_mb") and t.get("rss_mb") else "-"
            print("  %-10s %12s %12s %12s %12s  %s / %s / %s; %s" % (w, ms(o), ms(o16), ms(t), ms(t16), rat(t), rat(t16), rat(o), rss))

    # ---- inference at the three precisions (issue 21)
    infer = [w for w in ("infer_b1", "infer_b8") if w in ours or w in ours8 or w in ours16]
    if infer:
        print()
        print("== inference, BERT-base seq 128: bert.h fp32 / bf16 / int8 (bf16 kernel %s), ORT fp32 / int8, torch fp32 "
              "(ms, medians)" % next((r["bf16_kernel"] for r in ours16.values() if "bf16_kernel" in r), "-"))
        print("  %-10s %9s %9s %9s %9s %9s %9s" % ("workload", "bert.h", "bf16", "int8", "ORT", "ORT int8", "torch"))
        for w in infer:
            ms = lambda d: "%.1f" % d[w]["ms_med"] if w in d else "-"
            print("  %-10s %9s %9s %9s %9s %9s %9s" % (w, ms(ours), ms(ours16), ms(ours8), ms(ort), ms(ort8), ms(torch)))

    # ---- NEZHA
    nz = {w: r for w, r in ours.items() if w.startswith("nezha_")}
    if nz:
        print()
        print("== NEZHA (relative positions: fixed table, K %s) against the same BERT-base, bert.h fp32" % (
            next(iter(nz.values())).get("max_relative_position", "?")))
        print("  %-16s %12s %12s  %s" % ("workload", "BERT ms", "NEZHA ms", "NEZHA / BERT time"))
        for w in sorted(nz):
            b = ours.get(w[len("nezha_"):])
            print("  %-16s %12s %12.0f  %s" % (w, "%.0f" % b["ms_med"] if b else "-", nz[w]["ms_med"],
                                               "%.3f" % (nz[w]["ms_med"] / b["ms_med"]) if b else "-"))
            if b:
                nz[w]["ratio_bert"] = round(b["ms_med"] / nz[w]["ms_med"], 3)

    # ---- noise
    spreads = [r["spread"] for r in rows if r.get("spread") and r["impl"] in ("bert.h", "torch", "ort")]
    others = [r["others_cpu_pct"] for r in rows if r.get("others_cpu_pct") is not None]
    print()
    print("== noise")
    print("  uptime at start: %s" % a.load_start.strip())
    print("  uptime at end:   %s" % a.load_end.strip())
    if a.bg_start != "":
        print("  CPU busy with other processes before the first run: %s%%" % a.bg_start)
    if others:
        print("  other processes' share of the CPUs during our runs: max %.0f%%, mean %.0f%%" % (
            max(others), sum(others) / len(others)))
    if spreads:
        worst = max((r for r in rows if r.get("spread") and r["impl"] in ("bert.h", "torch", "ort")), key=lambda r: r["spread"])
        print("  max/min spread within a workload: median %.2f, worst %.2f (%s, %s%s)" % (
            sorted(spreads)[len(spreads) // 2], worst["spread"], worst["workload"], worst["impl"],
            "" if worst.get("precision", "fp32") == "fp32" else " " + worst["precision"]))
    fma_starts = [r for r in widest if r["label"] == "fma"]
    fma_ends = [r for r in widest if r["label"] == "fma_end"]
    if fma_starts and fma_ends:
        print("  FMA peak at start %.1f, at end %.1f GFLOP/s (%+.0f%%)" % (
            fma_starts[0]["gflops"], fma_ends[0]["gflops"], 100.0 * (fma_ends[0]["gflops"] / fma_starts[0]["gflops"] - 1)))
    noisy = (others and max(others) > 10) or (spreads and max(spreads) > 1.3)
    print("  verdict: %s" % ("NOISY - other processes or the host took CPU time; treat ratios within ~20% as noise"
                             if noisy else "quiet enough (differences under ~10% are still noise)"))

    # ---- targets
    print()
    print("== target check (medians, same run; a benchmark reports, it does not fail)")
    for w, tgt in TARGETS:
        o = ours.get(w)
        if not o or o.get("ratio") is None:
            print("  %-34s n/a (%s)" % ("%s >= %.1fx faster than torch" % (w, tgt), "not run" if not o else "no torch result"))
            continue
        ok = o["ratio"] >= tgt
        print("  %-34s %s  %.2fx (%+.0f%% vs target)" % ("%s >= %.1fx faster than torch" % (w, tgt),
                                                         "PASS" if ok else "MISS", o["ratio"], 100.0 * (o["ratio"] / tgt - 1)))
    lin = [r for r in rows if r.get("impl") == "bert.h" and r.get("group") == "linear"]
    label = "sgemm linear shapes >= %.0f%% of peak" % SGEMM_PCT
    if lin and peak:
        worst = min(lin, key=lambda r: r["pct_peak"])
        misses = [r for r in lin if r["pct_peak"] < SGEMM_PCT]
        print("  %-34s %s  worst %.0f%% (%s %s), %d of %d shapes below; %s" % (
            label, "MISS" if misses else "PASS", worst["pct_peak"], worst["workload"], worst["shape"], len(misses), len(lin),
            ", ".join("%s %.0f%%" % (r["workload"][6:], r["pct_peak"]) for r in misses) if misses else "all above"))
        if a.quick:
            print("  %-34s (quick run: only %d of the 12 linear shapes measured)" % ("", len(lin)))
    else:
        print("  %-34s n/a (not run)" % label)
    o, t = ours.get("train_b8"), torch.get("train_b8")
    label = "train_b8 RSS <= %.0f%% of torch" % (100 * RSS_FRACTION)
    if o and t and o.get("rss_mb") and t.get("rss_mb"):
        frac = o["rss_mb"] / t["rss_mb"]
        print("  %-34s %s  %.0f / %.0f MiB = %.0f%% (%+.0f%% vs target)" % (
            label, "PASS" if frac <= RSS_FRACTION else "MISS", o["rss_mb"], t["rss_mb"], 100 * frac,
            100.0 * (RSS_FRACTION / frac - 1)))
    else:
        print("  %-34s n/a (not run)" % label)

    by = {("bert.h", "fp32"): ours, ("bert.h", "int8"): ours8, ("bert.h", "bf16"): ours16, ("torch", "fp32"): torch,
          ("ort", "fp32"): ort, ("ort", "int8"): ort8}
    for label, w, prec, impl, prec2, tgt in LOWP_TARGETS:
        o, t = by[("bert.h", prec)].get(w), by[(impl, prec2)].get(w)
        name = "%s %s" % (w, label)
        if not o or not t:
            print("  %-42s n/a (not run)" % name)
            continue
        ratio = t["ms_med"] / o["ms_med"]
        print("  %-42s %s  %.2fx (%+.0f%% vs target)" % (name, "PASS" if ratio >= tgt else "MISS", ratio, 100.0 * (ratio / tgt - 1)))
    o, t = ours16.get("train_b8"), torch.get("train_b8")
    label = "train_b8 bf16 RSS <= %.0f%% of torch fp32" % (100 * BF16_RSS_FRACTION)
    if o and t and o.get("rss_mb") and t.get("rss_mb"):
        frac = o["rss_mb"] / t["rss_mb"]
        print("  %-42s %s  %.0f / %.0f MiB = %.0f%%" % (label, "PASS" if frac <= BF16_RSS_FRACTION else "MISS",
                                                       o["rss_mb"], t["rss_mb"], 100 * frac))
    else:
        print("  %-42s n/a (not run)" % label)

    # ---- results.jsonl
    common = dict(cpu=a.cpu, isa=isa, isa_flags=a.isa_flags, threads=a.threads, date=a.date, commit=a.commit,
                  peak_gflops=peak, sgemm_kernel=kernel, quick=bool(a.quick), env=a.env.strip())
    with open(a.out, "w") as f:
        for r in rows:
            d = dict(workload=r["workload"], impl=r["impl"], precision=r.get("precision", "fp32"),
                     ms_min=r.get("ms_min"), ms_med=r.get("ms_med"),
                     ms_max=r.get("ms_max"), gflops=r.get("gflops"), pct_peak=r.get("pct_peak"),
                     rss_mb=r.get("rss_mb"), ratio=r.get("ratio"))
            d.update(common)
            d["impl_threads"] = r.get("threads")
            if r["impl"] == "torch":
                d["torch"] = a.torch_version
                d["blas"] = a.torch_blas
            for k, v in r.items():
                if k not in d and k not in ("threads", "check"):
                    d[k] = v
            f.write(json.dumps(d) + "\n")
    print()
    print("wrote %d records to %s" % (len(rows), a.out))


if __name__ == "__main__":
    main()
