#!/usr/bin/env bash
# parity_runs.sh [SEEDS] [TASKS] - issue 27's "parity with PyTorch's recipe": the same fine-tuning runs
# in our programs and in PyTorch (bench/torch_finetune.py), for each seed (default "1 2 3") and task
# (default "cluener sst2"): the same initial weights (one file both sides load), the same batches in
# the same order (our run's --debug_trace_records trace, which the torch run reads), the same
# optimizer, schedule, clipping, weight decay and dropout rates; the dropout noise and, for SST-2,
# the classifier head's init are each side's own (torch's RNG seeded with the seed). Then the final
# dev metrics (mean +- half the spread over the seeds) and the training-loss curves overlaid.
#   sst2     classify, from the newest build/pretrain_real checkpoint (bench/pretrain_real.sh; L4/H256,
#            uncased vocab), PREC fp32, AdamW (Google's adamw_gb, as classify's default) lr 1e-4, 10 %
#            warmup, batch 32, weight decay 0.01, dropout 0.1, max_seq_length 64, 1 epoch, dev accuracy
#            every 250 steps and at the end, the best one reported (classify's eval_results.json) and
#            the last. As finetune_compare.sh's SST-2 run, except: fp32, and the FIRST
#            SST2_TRAIN_LINES (default 30000) of the 67,349 training sentences (938 steps), so that
#            the 12 runs fit about 80 minutes on the shared 2-core machine (84 min on 2026-12-06 with
#            4-6 other jobs running; SST2_TRAIN_LINES=0: all of them, about twice as long).
#   cluener  ner --use_crf, from ONE random init (no pretrained Chinese checkpoint exists here) that ner
#            itself writes once (--lr 0 --steps 1 --seed 0: the weights bert_model_create and the
#            heads get from seed 0, the CRF's transitions included), L4/H256/A4/F1024, Google's
#            Chinese vocab; both sides load it (the same heads too). AdamW (ner's default: bias-
#            corrected, eps 1e-8) lr NER_LR (default 3e-3, bench/ner_runs.sh's), 10 % warmup, batch 32,
#            weight decay 0.01, dropout 0.1, max_seq_length 64, 1 epoch (336 steps), entity micro-F1 on
#            dev.json at the end. At 3e-3 this L4/H256 model collapses to all-O (F1 0) on seeds 2 and 3,
#            on both sides alike (the loss spikes come at the same steps: the batch order decides);
#            1e-3 trains on every seed:
#              NER_LR=1e-3 PARITY_OUT=build/parity/cluener_lr1e-3 SVG_SUFFIX=_lr1e-3 \
#                  bash bench/parity_runs.sh "1 2 3" cluener
#            CLUENER_INIT=pretrained: from the newest PT_LANG=zh bench/pretrain_real.sh checkpoint instead
#            (the same shape and vocabulary, pretrained on the TNEWS and CLUENER training texts), with the
#            heads (CRF included) ner draws from seed 0 in the same one-step, lr-0 run:
#              CLUENER_INIT=pretrained NER_LR=1e-3 PARITY_OUT=build/parity/cluener_pretrained \
#                  SVG_SUFFIX=_pretrained bash bench/parity_runs.sh "1 2 3" cluener
#   SST2_RANDOM=1 also runs our side of SST-2 from a random init of the checkpoint's shape (the same recipe
#   otherwise: the table's random-init column), as build/parity/sst2_random_s<seed>; SST2_RANDOM=only: just those.
# Two runs at a time (nice), one thread each; a torch run starts once our run of its seed has
# written its trace. Torch uses OpenBLAS (libopenblas0-serial, fetched with apt-get download into
# build/parity/openblas and put first on LD_LIBRARY_PATH for the torch runs only; Debian's torch
# otherwise runs on netlib's reference BLAS, ~20x slower): nothing is installed system-wide.
# Output: build/parity/<task>_<ours|torch>_s<seed>/ (+ .log, .wall_s, our .trace), summary.txt
# (also printed), docs/parity_sst2.svg and docs/parity_cluener.svg. REPORT_ONLY=1 redoes only the
# summary and the SVGs from the runs there. PARITY_OUT (default build/parity) and SVG_SUFFIX (the
# SVGs' names: docs/parity_<task><suffix>.svg) keep another set of runs apart.
# Tight check of the torch side first (dropout 0, same head: losses to ~1e-6): tests/test_torch_parity.sh.
set -eu
cd "$(dirname "$0")/.."
SEEDS=${1:-"1 2 3"}
TASKS=${2:-"cluener sst2"}
SST2_TRAIN_LINES=${SST2_TRAIN_LINES:-30000}
NER_LR=${NER_LR:-3e-3}
OUT=${PARITY_OUT:-build/parity}
SVG_SUFFIX=${SVG_SUFFIX:-}
DATA=../shared/data
PY=/usr/bin/python3
PT=build/pretrain_real
mkdir -p "$OUT" docs
CKPT=$(ls -d $PT/run/ckpt-* 2>/dev/null | tail -1)
CLUENER_INIT=${CLUENER_INIT:-random}
case $CLUENER_INIT in
  random) NER_BASE="--config $OUT/cluener_config.json" ;;
  pretrained) CKPT_ZH=$(ls -d build/pretrain_real_zh/run/ckpt-* 2>/dev/null | tail -1)
              NER_BASE="--init $CKPT_ZH" ;;
  *) echo "CLUENER_INIT must be random or pretrained"; exit 1 ;;
esac

if [ "${REPORT_ONLY:-0}" != 1 ]; then
$PY -c "import torch, numpy" || { echo "$PY has no torch/numpy"; exit 1; }
case " $TASKS " in *" sst2 "*) [ -n "$CKPT" ] || { echo "no checkpoint in $PT/run: run bench/pretrain_real.sh first"; exit 1; } ;; esac
[ "$CLUENER_INIT" = random ] || [ -n "$CKPT_ZH" ] || { echo "no checkpoint in build/pretrain_real_zh/run: run PT_LANG=zh bench/pretrain_real.sh first"; exit 1; }
make -s build/classify build/ner
BLAS=$PWD/build/parity/openblas/root/usr/lib/x86_64-linux-gnu/openblas-serial
if [ ! -f "$BLAS/libblas.so.3" ]; then
    (mkdir -p build/parity/openblas && cd build/parity/openblas && apt-get download libopenblas0-serial >/dev/null 2>&1 &&
     dpkg -x libopenblas0-serial_*.deb root) || echo "warning: could not fetch libopenblas0-serial: torch runs on netlib's reference BLAS (slow)"
fi
TORCH_ENV="LD_LIBRARY_PATH=$BLAS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# the data each side reads
SST2_TRAIN=$DATA/glue/SST-2/train.tsv
if [ "$SST2_TRAIN_LINES" != 0 ] && [[ " $TASKS " == *" sst2 "* ]]; then
    SST2_TRAIN=$OUT/sst2_train_first$SST2_TRAIN_LINES.tsv
    head -n $((SST2_TRAIN_LINES + 1)) $DATA/glue/SST-2/train.tsv > $SST2_TRAIN   # the header and the first N sentences
fi
SST2_ARGS="--task sst2 --train_file $SST2_TRAIN --dev_file $DATA/glue/SST-2/dev.tsv --vocab $DATA/vocab/bert_uncased_vocab.txt
  --max_seq_length 64 --epochs 1 --eval_every 250 --batch_size 32 --optimizer adamw_gb --eps 1e-6 --lr 1e-4
  --warmup_proportion 0.1 --weight_decay 0.01 --threads 1 --print_every 100"
NER_ARGS="--data_dir $DATA/cluener2020 --vocab $DATA/vocab/bert_chinese_vocab.txt --use_crf --max_seq_length 64 --epochs 1
  --batch_size 32 --optimizer adamw --eps 1e-8 --lr $NER_LR --warmup_proportion 0.1 --weight_decay 0.01 --threads 1 --print_every 50"
# written once per kind, by our side: the init with its heads, weights untouched (lr 0); each kind its own
# directory, so a pretrained run never picks up a random init written earlier into the same PARITY_OUT
NER_INIT_DIR=$OUT/cluener_init; [ "$CLUENER_INIT" = pretrained ] && NER_INIT_DIR=${NER_INIT_DIR}_pretrained
NER_INIT=$NER_INIT_DIR/model.safetensors
if [ ! -f $NER_INIT ]; then
    cp bench/bert_mini_chinese.json $OUT/cluener_config.json   # BERT-Mini's shape, the Chinese vocabulary
    rm -rf $NER_INIT_DIR
    ./build/ner --do_train --data_dir $DATA/cluener2020 --vocab $DATA/vocab/bert_chinese_vocab.txt $NER_BASE \
        --use_crf --max_seq_length 64 --batch_size 32 --steps 1 --lr 0 --seed 0 --threads 1 --out $NER_INIT_DIR > $NER_INIT_DIR.log 2>&1
fi

ours() {   # task seed [random]: random = SST-2 from a random init of the checkpoint's shape (SST2_RANDOM)
    local dir=$OUT/$1_${3:-ours}_s$2 t0=$(date +%s) init="--init $CKPT"
    [ "${3:-}" = random ] && init="--config $PT/bert_config.json"
    rm -rf $dir $dir.failed $dir.wall_s
    if [ $1 = sst2 ]; then
        nice ./build/classify $SST2_ARGS $init --do_train --do_eval --precision fp32 --seed $2 --debug_trace_records \
            --out $dir > $dir.log 2> $dir.trace || echo failed > $dir.failed
    else
        nice ./build/ner $NER_ARGS --init $NER_INIT --do_train --do_eval --seed $2 --debug_trace_records \
            --out $dir > $dir.log 2> $dir.trace || echo failed > $dir.failed
    fi
    echo $(( $(date +%s) - t0 )) > $dir.wall_s
}
torch_side() {   # task seed: after our run of that seed (its trace)
    local dir=$OUT/$1_torch_s$2 trace=$OUT/$1_ours_s$2.trace
    rm -rf $dir $dir.failed $dir.wall_s
    while [ ! -f $OUT/$1_ours_s$2.wall_s ]; do sleep 5; done
    local t0=$(date +%s)
    if [ $1 = sst2 ]; then
        env $TORCH_ENV nice $PY bench/torch_finetune.py $SST2_ARGS --init $CKPT/model.safetensors --trace $trace --seed $2 \
            --out $dir > $dir.log 2>&1 || echo failed > $dir.failed
    else
        env $TORCH_ENV nice $PY bench/torch_finetune.py --task cluener $NER_ARGS --init $NER_INIT --trace $trace --seed $2 \
            --out $dir > $dir.log 2>&1 || echo failed > $dir.failed
    fi
    echo $(( $(date +%s) - t0 )) > $dir.wall_s
}
jobs_list=()
for task in $TASKS; do
    if [ $task = sst2 ] && [ "${SST2_RANDOM:-0}" != 0 ]; then
        for seed in $SEEDS; do jobs_list+=("ours sst2 $seed random"); done
        [ "$SST2_RANDOM" = only ] && continue
    fi
    for seed in $SEEDS; do jobs_list+=("ours $task $seed"); done
    for seed in $SEEDS; do jobs_list+=("torch_side $task $seed"); done
done
{ echo "parity runs $(date -u +%FT%TZ) | seeds $SEEDS | tasks $TASKS | sst2 init $CKPT | sst2 train lines ${SST2_TRAIN_LINES/#0/all} | cluener lr $NER_LR"
  lscpu | grep -m1 'Model name'; uptime; } > $OUT/machine.txt
cat $OUT/machine.txt
running=0
for j in "${jobs_list[@]}"; do
    if [ $running -ge 2 ]; then wait -n || true; running=$((running - 1)); fi
    echo "$(date +%T) start: $j"
    $j &
    running=$((running + 1))
done
wait
uptime | tee -a $OUT/machine.txt
fi

$PY - "$OUT" "$TASKS" "$SEEDS" "$SVG_SUFFIX" "${CLUENER_INIT:-random}" <<'PY' | tee "$OUT/summary.txt"
import json, math, os, sys
out, tasks, seeds, suffix, cluener_init = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4], sys.argv[5]
cluener_init = "our Chinese pretrained checkpoint" if cluener_init == "pretrained" else "one shared random init"

def rows(path):
    try:
        return [json.loads(l) for l in open(path)]
    except OSError:
        return []

def run_of(task, side, seed):
    d = "%s/%s_%s_s%s" % (out, task, side, seed)
    r = {"dir": d, "failed": os.path.exists(d + ".failed")}
    try:
        r["wall"] = int(open(d + ".wall_s").read())
    except (OSError, ValueError):
        r["wall"] = None
    log = rows(d + "/log.jsonl")
    r["lr"] = log[0].get("lr") if log and side == "torch" else None   # torch_finetune.py's header line
    r["loss"] = {x["step"]: x["loss"] for x in log if "loss" in x and "step" in x and "eval_step" not in x}
    evals = [x for x in log if "eval_step" in x]
    if task == "sst2":
        if side in ("ours", "random"):
            try:
                r["best"] = json.load(open(d + "/eval_results.json"))["metrics"]["accuracy"]
            except (OSError, KeyError, ValueError):
                r["best"] = None
        else:
            try:
                r["best"] = json.load(open(d + "/results.json"))["best"]["accuracy"]
            except (OSError, KeyError, ValueError, TypeError):
                r["best"] = None
        r["final"] = evals[-1]["accuracy"] if evals else None
    else:
        r["final"] = evals[-1]["f1"] if evals else None
        r["best"] = r["final"]
    return r

def stat(v):
    v = [x for x in v if x is not None]
    if not v:
        return "n/a", None
    m = sum(v) / len(v)
    return "%.4f +- %.4f (%s)" % (m, (max(v) - min(v)) / 2, ", ".join("%.4f" % x for x in v)), m

def tail_loss(r, frac=0.1):
    if not r["loss"]:
        return None
    steps = sorted(r["loss"])
    k = max(1, int(len(steps) * frac))
    return sum(r["loss"][s] for s in steps[-k:]) / k

def svg(task, runs, path):
    W, H, x0, y0, w, h = 720, 420, 70, 40, 600, 310
    smooth = 50 if task == "sst2" else 20
    curves = []
    for side, seed, r in runs:
        steps = sorted(r["loss"])
        ys, acc = [], []
        for s in steps:
            acc.append(r["loss"][s])
            if len(acc) > smooth:
                acc.pop(0)
            ys.append(sum(acc) / len(acc))
        if steps:
            curves.append((side, seed, steps, ys))
    if not curves:
        return
    xmax = max(c[2][-1] for c in curves)
    logy = task == "cluener"
    lo = min(min(c[3]) for c in curves)
    hi = max(max(c[3]) for c in curves)
    if logy:   # the axis from the 1-2-5 value below the lowest point to the one above the highest
        grid = [m * 10 ** k for k in range(-3, 6) for m in (1, 2, 5)]
        lo, hi = max(g for g in grid if g <= lo), min(g for g in grid if g >= hi)
        fy = lambda v: y0 + h - h * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        yt = sorted(g for g in grid if lo <= g <= hi)
    else:
        lo, hi = math.floor(lo * 10) / 10, math.ceil(hi * 10) / 10
        fy = lambda v: y0 + h - h * (v - lo) / (hi - lo)
        yt = [lo + (hi - lo) * k / 5 for k in range(6)]
    fx = lambda s: x0 + w * s / xmax
    colors = {"ours": ["#1f77b4", "#4a98d0", "#08477a"], "torch": ["#ff7f0e", "#f5a35c", "#b35500"]}
    lr = [r["lr"] for _, _, r in runs if r.get("lr")]
    lr = " lr %g," % lr[0] if lr else ""
    title = {"sst2": "SST-2 from our pretrained init,%s training loss (moving mean of %d steps)" % (lr, smooth),
             "cluener": "CLUENER2020 CRF from %s,%s loss (%d-step mean, log)" % (cluener_init, lr, smooth)}[task]
    s = ["<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' font-size='11'>" % (W, H),
         "<rect width='100%' height='100%' fill='white'/>",
         "<text x='%d' y='20' font-size='13'>%s</text>" % (x0, title),
         "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#888'/>" % (x0, y0, w, h)]
    for v in yt:
        s.append("<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#eee'/><text x='%d' y='%.1f' text-anchor='end'>%s</text>"
                 % (x0, x0 + w, fy(v), fy(v), x0 - 4, fy(v) + 4, ("%g" % v) if logy else ("%.2f" % v)))
    for k in range(6):
        xs = xmax * k / 5
        s.append("<text x='%.1f' y='%d' text-anchor='middle'>%d</text>" % (fx(xs), y0 + h + 15, round(xs)))
    s.append("<text x='%d' y='%d' text-anchor='middle'>optimizer step</text>" % (x0 + w / 2, y0 + h + 32))
    for side, seed, steps, ys in curves:
        c = colors[side][(int(seed) - 1) % 3]
        dash = "" if side == "ours" else " stroke-dasharray='5,3'"
        s.append("<polyline fill='none' stroke='%s' stroke-width='1.4'%s points='%s'/>" % (
            c, dash, " ".join("%.1f,%.1f" % (fx(x), fy(y)) for x, y in zip(steps, ys))))
    lx, ly = x0 + w - 250, y0 + 14
    for i, (side, seed, _, _) in enumerate(curves):
        c = colors[side][(int(seed) - 1) % 3]
        dash = "" if side == "ours" else " stroke-dasharray='5,3'"
        yy = ly + 14 * i
        name = "ours (bert.h)" if side == "ours" else "PyTorch (torch_finetune.py)"
        s.append("<line x1='%d' x2='%d' y1='%d' y2='%d' stroke='%s' stroke-width='2'%s/><text x='%d' y='%d'>%s, seed %s</text>"
                 % (lx, lx + 24, yy, yy, c, dash, lx + 30, yy + 4, name, seed))
    s.append("</svg>")
    open(path, "w").write("\n".join(s) + "\n")
    print("curve: %s" % path)

try:
    print(open(out + "/machine.txt").read().rstrip())
except OSError:
    pass
metric = {"sst2": "dev accuracy", "cluener": "dev entity micro-F1"}
table = []
for t in tasks:
    runs = [(side, s, run_of(t, side, s)) for side in ("ours", "torch") for s in seeds]
    print("\n== %s (%s)" % (t, metric[t]))
    steps = {side: sorted({len(r["loss"]) for sd, _, r in runs if sd == side}) for side in ("ours", "torch")}
    print("steps per run: ours %s, torch %s" % (steps["ours"], steps["torch"]))
    means = {}
    for side in ("ours", "torch"):
        rs = [r for sd, _, r in runs if sd == side]
        failed = [r["dir"] for r in rs if r["failed"]]
        best, mb = stat([r["best"] for r in rs])
        final, mf = stat([r["final"] for r in rs])
        tl, _ = stat([tail_loss(r) for r in rs])
        walls = "/".join(str(r["wall"]) for r in rs)
        means[side] = mb
        if t == "sst2":
            print("%-5s best-on-dev %s | last step %s | train loss, last 10%% of steps %s | wall %s s%s"
                  % (side, best, final, tl, walls, " | FAILED: " + " ".join(failed) if failed else ""))
        else:
            print("%-5s %s | train loss, last 10%% of steps %s | wall %s s%s"
                  % (side, best, tl, walls, " | FAILED: " + " ".join(failed) if failed else ""))
        table.append((t, side, best, walls))
    if means["ours"] is not None and means["torch"] is not None:
        print("difference of the means (torch - ours): %+.4f" % (means["torch"] - means["ours"]))
    rnd = [run_of(t, "random", s) for s in seeds] if t == "sst2" else []
    if any(r["best"] is not None for r in rnd):   # SST2_RANDOM: the same recipe from a random init, ours only
        best, _ = stat([r["best"] for r in rnd])
        print("ours from a random init (SST2_RANDOM): best-on-dev %s | wall %s s" % (best, "/".join(str(r["wall"]) for r in rnd)))
    svg(t, runs, "docs/parity_%s%s.svg" % (t, suffix))
print("\n| task (dev) | metric | init | ours (bert.h), mean +- half-spread (seeds) | PyTorch from our init | wall per run (ours / torch) |")
print("|---|---|---|---|---|---|")
for t in tasks:
    o = [x for x in table if x[0] == t and x[1] == "ours"][0]
    p = [x for x in table if x[0] == t and x[1] == "torch"][0]
    init = "our pretrained checkpoint" if t == "sst2" else cluener_init
    print("| %s | %s | %s | %s | %s | %s s / %s s |" % ({"sst2": "SST-2 (872)", "cluener": "CLUENER2020 (1,343)"}[t],
          {"sst2": "accuracy (best on dev)", "cluener": "entity micro-F1"}[t], init, o[2], p[2], o[3], p[3]))
PY
