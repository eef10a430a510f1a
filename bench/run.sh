#!/usr/bin/env bash
# bench/run.sh - bert.h against PyTorch and ONNX Runtime on this machine, side by side, one process
# at a time.
#
#   bench/run.sh            full run (several minutes): FMA peak, sgemm shapes, train b8 (fp32 and
#                           bf16, PyTorch fp32 and bf16 autocast),
#                           infer b8, infer b1 (ours fp32, int8 and bf16, then torch, then ORT fp32
#                           and int8, for each)
#   bench/run.sh --quick    reduced set in under a minute: FMA peak, two sgemm shapes, infer b1
#   options: --no-torch     skip the PyTorch runs
#            --no-ort       skip ONNX Runtime (otherwise set up in bench/build/ort/, skipped with a
#                           note when node/npm/onnxruntime-node/torch are missing)
#            --threads N    threads for ours (OMP_NUM_THREADS), torch's OpenBLAS and ORT's
#                           intraOpNumThreads (default nproc)
#   env:     CC (gcc), BENCH_CFLAGS (extra flags), PYTHON (/usr/bin/python3),
#            TORCH_BERT (../shared/bench/torch_bert.py), BENCH_NO_FETCH=1 (never apt-get download
#            OpenBLAS for torch), BENCH_TIMEOUT (seconds per process, 900), NODE (node), NPM (npm)
#
# Writes bench/results.jsonl (one JSON object per workload, impl and precision) and keeps every process's
# output under bench/build/logs/. A benchmark reports: it exits 0 even when targets are missed.
set -u -o pipefail

# everything is in main(), so bash parses the whole file before running it (editing run.sh while a
# run is in progress cannot break that run)
main() {

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=$HERE/build
LOGS=$BUILD/logs
CC=${CC:-gcc}
PY=${PYTHON:-/usr/bin/python3}
TORCH_BERT=${TORCH_BERT:-$ROOT/../shared/bench/torch_bert.py}
TIMEOUT=${BENCH_TIMEOUT:-900}
QUICK=0
TORCH=1
ORT=1
NODE=${NODE:-node}
NPM=${NPM:-npm}
THREADS=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --no-torch) TORCH=0 ;;
        --no-ort) ORT=0 ;;
        --threads) THREADS=$2; shift ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

T_START=$(date +%s)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
mkdir -p "$BUILD"
rm -rf "$LOGS"
mkdir -p "$LOGS"

# ---------------------------------------------------------------------------------------------
# build
CFLAGS="-O2 -march=native -fopenmp -std=c11 -Wall -Wextra -Wshadow ${BENCH_CFLAGS:-}"
echo "== build: $CC $CFLAGS"
STAMP="$CC $CFLAGS | $($CC --version 2>/dev/null | head -1)"
if [ "$(cat "$BUILD/.flags" 2>/dev/null)" != "$STAMP" ] || [ "$HERE/bench_bert.c" -nt "$BUILD/bench_bert" ] || \
   [ "$ROOT/bert.h" -nt "$BUILD/bench_bert" ] || [ "$HERE/fma_peak.c" -nt "$BUILD/fma_peak" ]; then
    $CC $CFLAGS "$HERE/bench_bert.c" -o "$BUILD/bench_bert" -lm || { echo "run.sh: build of bench_bert failed" >&2; exit 1; }
    $CC $CFLAGS -pthread "$HERE/fma_peak.c" -o "$BUILD/fma_peak" || { echo "run.sh: build of fma_peak failed" >&2; exit 1; }
    echo "$STAMP" >"$BUILD/.flags"
else
    echo "   (up to date)"
fi

# ---------------------------------------------------------------------------------------------
# machine
echo "== machine"
CPU_MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
[ -n "$CPU_MODEL" ] || CPU_MODEL=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
FLAGS=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2)
ISA_FLAGS=""
for f in sse4_2 avx fma avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_tile amx_bf16; do
    case " $FLAGS " in *" $f "*) ISA_FLAGS="$ISA_FLAGS $f" ;; esac
done
ISA_FLAGS=${ISA_FLAGS# }
echo "cpu:      $CPU_MODEL"
lscpu 2>/dev/null | grep -E '^(CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|L1d cache|L2 cache|L3 cache|Hypervisor vendor):' | sed 's/^/          /'
echo "isa:      $ISA_FLAGS"
echo "threads:  $THREADS (ours: OMP_NUM_THREADS=$THREADS; torch: torch.set_num_threads(1), OPENBLAS_NUM_THREADS=$THREADS)"
echo "compiler: $($CC --version | head -1)"
OMP_ENV=$(env | grep -E '^(OMP_|GOMP_|KMP_|OPENBLAS_|MKL_)' | sort | tr '\n' ' ')
echo "env:      ${OMP_ENV:-(no OMP_/GOMP_/OPENBLAS_ variables set)}"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$COMMIT" != unknown ] && ! git -C "$ROOT" diff --quiet HEAD -- bert.h 2>/dev/null; then COMMIT="$COMMIT+dirty(bert.h)"; fi
echo "bert.h:   commit $COMMIT"
LOAD_START=$(uptime)
echo "uptime:   $LOAD_START"

# share of the CPUs busy with other processes over a short idle window, in percent
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_jiffies() { awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; t=b+$5+$6; print b, t; exit}' /proc/stat; }
idle_busy_pct() {
    local a b
    a=$(cpu_jiffies); sleep "${1:-1}"; b=$(cpu_jiffies)
    echo "$a $b" | awk '{dt = $4 - $2; v = 0; if (dt > 0) v = 100 * ($3 - $1) / dt; printf "%.0f", v}'
}
BG=$(idle_busy_pct 1)
echo "other load: ${BG}% of the CPUs busy during 1 s before starting (0% = quiet machine)"
if [ "$BG" -gt 10 ]; then
    echo "WARNING: other processes are using the CPUs; the figures below will be noisy:"
    ps -eo pid,pcpu,etime,comm --sort=-pcpu 2>/dev/null | sed -n '2,5p' | sed 's/^/          /'
fi

TIME_V=""
if /usr/bin/time -v true >/dev/null 2>&1; then TIME_V=/usr/bin/time; else echo "note: /usr/bin/time missing; peak RSS from the programs' own getrusage"; fi

# ---------------------------------------------------------------------------------------------
# PyTorch and its BLAS: Debian's torch calls libblas.so.3; the baseline is OpenBLAS-pthreads
TORCH_ENV=()
# torch runs with the kernels its libraries pick themselves: variables inherited from the caller's
# environment that force a narrower ISA are dropped for it (BENCH_OPENBLAS_CORETYPE forces one)
TORCH_UNSET=(-u OPENBLAS_CORETYPE -u ATEN_CPU_CAPABILITY -u OPENBLAS_VERBOSE)
for v in OPENBLAS_CORETYPE ATEN_CPU_CAPABILITY; do
    [ -n "${!v:-}" ] && echo "note: ignoring the inherited $v=${!v} for torch (the baseline uses what OpenBLAS/ATen detect)"
done
TORCH_BLAS="none"
TORCH_VERSION=""
if [ "$TORCH" = 1 ]; then
    if [ ! -f "$TORCH_BERT" ]; then
        echo "note: $TORCH_BERT not found; skipping PyTorch"; TORCH=0
    elif ! "$PY" -c 'import torch' >/dev/null 2>&1; then
        echo "note: $PY cannot import torch (apt-get install python3-torch); skipping PyTorch"; TORCH=0
    fi
fi
probe_blas() {   # prints "torch_version|blas description"
    env "${TORCH_UNSET[@]}" "$@" "$PY" - <<'EOF' 2>/dev/null
import ctypes, torch
libs = sorted({l.split()[-1] for l in open('/proc/self/maps') if 'blas' in l.split()[-1].lower()})
desc = 'unknown (' + ','.join(libs) + ')'
for p in libs:
    try:
        f = ctypes.CDLL(p)
        f.openblas_get_config.restype = ctypes.c_char_p
        f.openblas_get_corename.restype = ctypes.c_char_p
        desc = 'OpenBLAS %s core %s (%s)' % (f.openblas_get_config().decode().split()[1],
                                             f.openblas_get_corename().decode(), p)
        break
    except Exception:
        pass
else:
    if any('blas/libblas.so' in p for p in libs):
        desc = 'reference BLAS (' + ','.join(libs) + ')'
print(torch.__version__ + '|' + desc)
EOF
}
if [ "$TORCH" = 1 ]; then
    P=$(probe_blas); TORCH_VERSION=${P%%|*}; TORCH_BLAS=${P#*|}
    if [[ "$TORCH_BLAS" != OpenBLAS* ]]; then
        MA=$($CC -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
        OB=""
        for d in "/usr/lib/$MA/openblas-pthread" "$HERE/deps/openblas-pthread"; do
            [ -f "$d/libblas.so.3" ] && { OB=$d; break; }
        done
        if [ -z "$OB" ] && [ "${BENCH_NO_FETCH:-0}" != 1 ] && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then
            echo "torch uses $TORCH_BLAS; fetching Debian's libopenblas0-pthread into bench/deps/ (apt-get download; no system change)"
            tmp=$(mktemp -d)
            if (cd "$tmp" && apt-get download libopenblas0-pthread >/dev/null 2>&1) && dpkg-deb -x "$tmp"/libopenblas0-pthread_*.deb "$tmp/x" \
               && [ -f "$tmp/x/usr/lib/$MA/openblas-pthread/libblas.so.3" ]; then
                mkdir -p "$HERE/deps" && rm -rf "$HERE/deps/openblas-pthread" && mv "$tmp/x/usr/lib/$MA/openblas-pthread" "$HERE/deps/"
                OB=$HERE/deps/openblas-pthread
            fi
            rm -rf "$tmp"
        fi
        if [ -n "$OB" ]; then
            TORCH_ENV=(LD_LIBRARY_PATH="$OB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
            P=$(probe_blas "${TORCH_ENV[@]}"); TORCH_BLAS=${P#*|}
        fi
        if [[ "$TORCH_BLAS" != OpenBLAS* ]]; then
            echo "WARNING: torch runs on $TORCH_BLAS, not OpenBLAS: it will be far slower than the baseline"
            echo "         (apt-get install libopenblas0-pthread); its figures are kept but not comparable."
        fi
    fi
    # The baseline is PyTorch at its best on this machine, i.e. with OpenBLAS's AVX-512 kernels on an
    # AVX-512 CPU. Should OpenBLAS's detection fall back to an AVX2 core there (a CPU model newer than
    # its tables), force the AVX-512 one. BENCH_OPENBLAS_CORETYPE overrides: a core name, or "auto"
    # for OpenBLAS's own choice whatever it is.
    CORE=${BENCH_OPENBLAS_CORETYPE:-}
    if [ -z "$CORE" ] && [[ "$TORCH_BLAS" == OpenBLAS* ]] && [[ " $ISA_FLAGS " == *" avx512f "* ]] && \
       [[ "$TORCH_BLAS" != *"core SkylakeX"* && "$TORCH_BLAS" != *"core Cooperlake"* && "$TORCH_BLAS" != *"core SapphireRapids"* ]]; then
        if [[ " $ISA_FLAGS " == *" avx512_bf16 "* ]]; then CORE=Cooperlake; else CORE=SkylakeX; fi
        echo "note: OpenBLAS picked ${TORCH_BLAS#*core } on an AVX-512 CPU; forcing OPENBLAS_CORETYPE=$CORE for torch"
    fi
    if [ -n "$CORE" ] && [ "$CORE" != auto ]; then
        TORCH_ENV+=(OPENBLAS_CORETYPE="$CORE")
        P=$(probe_blas "${TORCH_ENV[@]}"); TORCH_BLAS=${P#*|}
    fi
    echo "torch:    $TORCH_VERSION, BLAS: $TORCH_BLAS ${TORCH_ENV[*]:-}"
fi
TORCH_ENV+=(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS="$THREADS")

# ---------------------------------------------------------------------------------------------
# ONNX Runtime (npm onnxruntime-node, CPU) on torch_bert.py's model exported to ONNX. Never fails
# the bench: anything missing prints one "ORT: skipped: ..." line and the runs go on without it.
ORT_DIR=$BUILD/ort
ORT_MODEL=$ORT_DIR/model/bert_base_hf.onnx
ORT_MODEL_INT8=$ORT_DIR/model/bert_base_hf_int8.onnx
ORT_INT8=0
ORT_VERSION=""
ort_setup() {   # returns non-zero (after printing why) when ORT cannot run
    local mods=$ORT_DIR/node_modules pkg=$ORT_DIR/node_modules/onnxruntime-node/package.json
    command -v "$NODE" >/dev/null 2>&1 || { echo "ORT: skipped: no node ($NODE) on PATH"; return 1; }
    if [ ! -f "$pkg" ]; then
        command -v "$NPM" >/dev/null 2>&1 || { echo "ORT: skipped: onnxruntime-node is not installed in $ORT_DIR and there is no npm"; return 1; }
        echo "ORT: npm install --ignore-scripts --no-audit --no-fund --prefix $ORT_DIR onnxruntime-node"
        mkdir -p "$ORT_DIR"
        # --ignore-scripts: the package's install script downloads GPU extras and fails offline; the
        # CPU library (bin/napi-v*/linux/<arch>/libonnxruntime.so.1) is inside the package
        if ! timeout 600 "$NPM" install --ignore-scripts --no-audit --no-fund --prefix "$ORT_DIR" onnxruntime-node \
                >"$LOGS/ort_npm.log" 2>&1 || [ ! -f "$pkg" ]; then
            echo "ORT: skipped: npm install of onnxruntime-node failed ($(tail -1 "$LOGS/ort_npm.log" 2>/dev/null | cut -c1-160); log: $LOGS/ort_npm.log)"
            return 1
        fi
    fi
    ORT_VERSION=$("$NODE" -e 'const p=process.argv[1]; const o=require(p+"/onnxruntime-node"); if (!o.InferenceSession) throw 0; console.log(require(p+"/onnxruntime-node/package.json").version)' "$mods" 2>/dev/null) || {
        echo "ORT: skipped: node cannot load onnxruntime-node from $mods"; return 1; }
    if [ ! -s "$ORT_MODEL" ] || [ ! -s "${ORT_MODEL%.onnx}.ref.json" ] || [ "$TORCH_BERT" -nt "$ORT_MODEL" ] || [ "$HERE/ort_export.py" -nt "$ORT_MODEL" ]; then
        [ -f "$TORCH_BERT" ] || { echo "ORT: skipped: the model must be exported from $TORCH_BERT, which is missing"; return 1; }
        "$PY" -c 'import torch' >/dev/null 2>&1 || { echo "ORT: skipped: the export needs torch and $PY cannot import it (apt-get install python3-torch)"; return 1; }
        echo "ORT: exporting torch_bert.py's BERT-base (--impl hf) to $ORT_MODEL (torch.onnx.export, opset 14)"
        rm -f "$ORT_MODEL" "$ORT_MODEL_INT8"
        if ! env "${TORCH_UNSET[@]}" "${TORCH_ENV[@]}" timeout "$TIMEOUT" "$PY" "$HERE/ort_export.py" "$ORT_DIR/model" --torch-bert "$TORCH_BERT" \
                >"$LOGS/ort_export.log" 2>&1 || [ ! -s "$ORT_MODEL" ]; then
            echo "ORT: skipped: the export failed ($(tail -1 "$LOGS/ort_export.log" | cut -c1-160); log: $LOGS/ort_export.log)"
            return 1
        fi
        grep '^ort_export:' "$LOGS/ort_export.log" | sed 's/^/     /'
    fi
    # int8: the encoder's weight MatMuls -> com.microsoft.DynamicQuantizeMatMul, with Debian's python3-onnx
    if [ -s "$ORT_MODEL_INT8" ] && [ ! "$ORT_MODEL" -nt "$ORT_MODEL_INT8" ] && [ ! "$HERE/ort_quantize.py" -nt "$ORT_MODEL_INT8" ]; then
        ORT_INT8=1
    elif ! "$PY" -c 'import onnx, numpy' >/dev/null 2>&1; then
        echo "ORT: int8 skipped: $PY cannot import onnx (apt-get install python3-onnx); fp32 only"
    elif timeout "$TIMEOUT" "$PY" "$HERE/ort_quantize.py" "$ORT_MODEL" "$ORT_MODEL_INT8" >"$LOGS/ort_quantize.log" 2>&1 && [ -s "$ORT_MODEL_INT8" ]; then
        grep '^ort_quantize:' "$LOGS/ort_quantize.log" | sed 's/^/     /'
        ORT_INT8=1
    else
        echo "ORT: int8 skipped: ort_quantize.py failed ($(tail -1 "$LOGS/ort_quantize.log" | cut -c1-160)); fp32 only"
        rm -f "$ORT_MODEL_INT8"
    fi
    return 0
}
if [ "$ORT" = 1 ]; then
    ort_setup || ORT=0
fi
[ "$ORT" = 1 ] && echo "ort:      onnxruntime-node $ORT_VERSION (CPU), intraOpNumThreads $THREADS, interOpNumThreads 1, sequential, graph optimization 'all'; fp32$([ "$ORT_INT8" = 1 ] && echo ' and int8')"

# ---------------------------------------------------------------------------------------------
# runs: each one a separate process, one at a time, logged with its peak RSS and the other load
SEQ=0
run_one() {   # run_one LABEL IMPL cmd... ; the human lines go to the terminal, all to the log
    local label=$1 impl=$2; shift 2
    SEQ=$((SEQ + 1))
    local base; base=$LOGS/$(printf '%02d' $SEQ)_$label.$impl
    local a b rc
    echo "-- $label ($impl): $*"
    a=$(cpu_jiffies)
    if [ -n "$TIME_V" ]; then
        timeout "$TIMEOUT" "$TIME_V" -v -o "$base.time" "$@" >"$base.out" 2>&1; rc=$?
    else
        timeout "$TIMEOUT" "$@" >"$base.out" 2>&1; rc=$?
    fi
    b=$(cpu_jiffies)
    echo "$a $b $HZ $(nproc)" >"$base.stat"
    grep -v '^{' "$base.out" | grep -v '^RESULT ' | sed 's/^/   /'
    sed -n 's/^RESULT /   torch result: /p' "$base.out" | cut -c1-400
    [ $rc -eq 0 ] || echo "   !! exit status $rc (timeout $TIMEOUT s gives 124)"
    echo "$rc" >"$base.rc"
}

export OMP_NUM_THREADS=$THREADS
OURS=("$BUILD/bench_bert")
TORCHCMD=(env "${TORCH_UNSET[@]}" "${TORCH_ENV[@]}" "$PY" "$TORCH_BERT" --config base --impl hf --threads 1)
# the same model and step under torch.autocast('cpu', dtype=torch.bfloat16) (bench/torch_autocast.py)
TORCHAUTOCAST=(env "${TORCH_UNSET[@]}" "${TORCH_ENV[@]}" "$PY" "$HERE/torch_autocast.py" "$TORCH_BERT" --config base --impl hf --threads 1)
ORTCMD=("$NODE" "$HERE/ort_bench.js" --ort "$ORT_DIR/node_modules" --threads "$THREADS" --seq 128)
run_ours_infer() {   # run_ours_infer LABEL ARGS... : bert.h fp32, then int8 and bf16 (bert_model_quantize), same runs
    local label=$1; shift
    run_one "$label" bert.h "${OURS[@]}" --mode infer --precision fp32 "$@"
    run_one "${label}_int8" bert.h "${OURS[@]}" --mode infer --precision int8 "$@"
    run_one "${label}_bf16" bert.h "${OURS[@]}" --mode infer --precision bf16 "$@"
}
run_ort() {   # run_ort LABEL ARGS... : ORT fp32, then int8 when there is the model
    local label=$1; shift
    [ "$ORT" = 1 ] || return 0
    run_one "$label" ort "${ORTCMD[@]}" --model "$ORT_MODEL" --precision fp32 "$@"
    [ "$ORT_INT8" = 1 ] && run_one "${label}_int8" ort "${ORTCMD[@]}" --model "$ORT_MODEL_INT8" --ref "${ORT_MODEL%.onnx}.ref.json" --precision int8 "$@"
    return 0
}
if [ "$QUICK" = 1 ]; then
    echo "== quick run"
    run_one fma fma_peak "$BUILD/fma_peak" --threads "$THREADS" --reps 3 --time 0.1
    run_one sgemm bert.h "${OURS[@]}" --mode sgemm --shapes quick --warmup 1 --iters 5 --min-time 0.1
    run_ours_infer infer_b1 --batch 1 --warmup 2 --iters 5
    [ "$TORCH" = 1 ] && run_one infer_b1 torch "${TORCHCMD[@]}" --mode infer --batch 1 --warmup 2 --iters 5
    run_ort infer_b1 --batch 1 --warmup 2 --iters 5
else
    echo "== full run"
    run_one fma fma_peak "$BUILD/fma_peak" --threads "$THREADS" --reps 7 --time 0.25 --all-isa
    run_one sgemm bert.h "${OURS[@]}" --mode sgemm --shapes all --warmup 2 --iters 10 --min-time 0.3
    run_one train_b8 bert.h "${OURS[@]}" --mode train --batch 8 --warmup 2 --iters 7 --max-time 90
    run_one train_b8_bf16 bert.h "${OURS[@]}" --mode train --precision bf16 --batch 8 --warmup 2 --iters 7 --max-time 90
    [ "$TORCH" = 1 ] && run_one train_b8 torch "${TORCHCMD[@]}" --mode train --batch 8 --warmup 1 --iters 5
    [ "$TORCH" = 1 ] && run_one train_b8_bf16 torch "${TORCHAUTOCAST[@]}" --mode train --batch 8 --warmup 1 --iters 5
    # NEZHA (issue 25): the same BERT-base with relative positions (fixed table, K 64), against the rows above
    run_one nezha_train_b8 bert.h "${OURS[@]}" --arch nezha --mode train --batch 8 --warmup 2 --iters 7 --max-time 90
    run_one nezha_infer_b8 bert.h "${OURS[@]}" --arch nezha --mode infer --batch 8 --warmup 2 --iters 10 --max-time 60
    run_ours_infer infer_b8 --batch 8 --warmup 2 --iters 10 --max-time 60
    [ "$TORCH" = 1 ] && run_one infer_b8 torch "${TORCHCMD[@]}" --mode infer --batch 8 --warmup 2 --iters 7
    run_ort infer_b8 --batch 8 --warmup 2 --iters 10 --max-time 60
    run_ours_infer infer_b1 --batch 1 --warmup 3 --iters 20
    [ "$TORCH" = 1 ] && run_one infer_b1 torch "${TORCHCMD[@]}" --mode infer --batch 1 --warmup 3 --iters 10
    run_ort infer_b1 --batch 1 --warmup 3 --iters 20
    # the peak again at the end: the report uses the higher median of the two (a conservative % of peak)
    run_one fma_end fma_peak "$BUILD/fma_peak" --threads "$THREADS" --reps 5 --time 0.15
fi

LOAD_END=$(uptime)
echo "== uptime at the end: $LOAD_END"
echo "== wall time: $(( $(date +%s) - T_START )) s"

# ---------------------------------------------------------------------------------------------
# report: table, noise, target check, bench/results.jsonl
if command -v "$PY" >/dev/null 2>&1; then
    "$PY" "$HERE/report.py" --logs "$LOGS" --out "$HERE/results.jsonl" --date "$DATE" --cpu "$CPU_MODEL" \
        --isa-flags "$ISA_FLAGS" --threads "$THREADS" --commit "$COMMIT" --torch-blas "$TORCH_BLAS" \
        --torch-version "$TORCH_VERSION" --ort-version "$ORT_VERSION" --load-start "$LOAD_START" --load-end "$LOAD_END" --bg-start "$BG" \
        --quick "$QUICK" --env "$OMP_ENV"
else
    echo "run.sh: no python3 for the report; raw JSON lines are in $LOGS/*.out"
fi
}

main "$@"
exit 0
