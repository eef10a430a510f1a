#!/usr/bin/env bash
# bench/bf16_pretrain.sh [STEPS (1000)] [CONFIG (BERT-Tiny's)] - the same pretraining run in fp32 and in
# bf16 (--precision bf16): same data, seed, init and schedule; prints the held-out MLM loss and accuracy
# at every evaluation for both, the final relative difference of the held-out MLM loss, and the step
# times. Data: pretrain_demo.sh's (the SQuAD dev contexts + sample_text.txt through
# create_pretraining_data, uncased vocab, T 128), built here if absent. Needs ../shared/data.
# Then (issue 23's training equivalence) the same run in PyTorch (bench/torch_pretrain.py, float32, and
# under torch.autocast("cpu", dtype=torch.bfloat16)) and one more bert.h fp32 run with --seed 12346
# (the seed-noise yardstick: other data order and dropout masks, the same init); prints one table of
# the five runs' held-out MLM loss / accuracy, the final loss of each against bert.h fp32 and the seed
# spread, the step times, and writes docs/bf16_pretrain_curves.svg (bench/bf16_pretrain_report.py).
# Every run starts from one init file: bert.h's random init from --seed 12345 for CONFIG, saved by a
# one-step run at --lr 0 (LAMB moves nothing at lr 0). The torch runs use bert.h's dropout masks
# (bert_ref's counter RNG) and data order, so each pair starts out identical up to rounding.
# BF16_PRETRAIN_NO_TORCH=1 skips the PyTorch runs and the seed run.
set -eu
cd "$(dirname "$0")/.."
STEPS=${1:-1000}
CONFIG=${2:-../shared/data/tf_ckpt/bert_tiny_L-2_H-128_A-2_index_only/bert_config.json}
OUT=build/bf16_pretrain
DATA=../shared/data
[ -f "$DATA/squad/dev-v1.1.json" ] && [ -f "$CONFIG" ] || { echo "bf16_pretrain.sh: ../shared/data absent: nothing run"; exit 0; }
mkdir -p "$OUT"
make -s build/pretrain build/create_pretraining_data
if [ ! -s "$OUT/data.tfrecord" ]; then
    /usr/bin/python3 tools/squad_to_text.py "$DATA/squad/dev-v1.1.json" > "$OUT/squad_contexts.txt"
    ./build/create_pretraining_data --input_file "$OUT/squad_contexts.txt" --input_file "$DATA/bert_sample/sample_text.txt" \
        --vocab_file "$DATA/vocab/bert_uncased_vocab.txt" --output_file "$OUT/data.tfrecord" --dupe_factor 5 > "$OUT/data.log"
fi
echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1) | $(date -u +%Y-%m-%dT%H:%M:%SZ) | config $CONFIG | $STEPS steps"
T0=$(date +%s)
# the shared init: bert.h's random init from seed 12345, written by one step at lr 0
rm -rf "$OUT/init"
./build/pretrain --input "$OUT/data.tfrecord" --config "$CONFIG" --out "$OUT/init" --lr 0 --steps 1 --batch_size 32 \
    --eval_records 512 --seed 12345 > "$OUT/init.log" 2>&1
INIT=$OUT/init/ckpt-00000001/model.safetensors
FLAGS=(--optimizer lamb --lr 2e-3 --warmup_proportion 0.1 --batch_size 32 --steps "$STEPS" --eval_records 512
       --eval_every $((STEPS / 5)) --print_every 100)
ours() {   # NAME PRECISION SEED
    rm -rf "${OUT:?}/$1"
    ./build/pretrain --input "$OUT/data.tfrecord" --init "$INIT" --out "$OUT/$1" "${FLAGS[@]}" --seed "$3" --precision "$2" > "$OUT/$1.log" 2>&1
}
for p in fp32 bf16; do
    ours "$p" "$p" 12345
    grep -E '^summary' "$OUT/$p.log" | sed "s/^/$p: /"
done
echo "| step | fp32 held-out MLM loss | bf16 | fp32 MLM acc | bf16 |"
echo "|---|---|---|---|---|"
evals() { sed -n 's/^eval *\([0-9]*\) | mlm_acc \([0-9.]*\) | mlm_loss \([0-9.]*\).*/\1 \3 \2/p' "$1"; }   # step loss acc
paste <(evals "$OUT/fp32.log") <(evals "$OUT/bf16.log") |
    awk '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $5, $3, $6; a = $2; b = $5 } END { if (a > 0) printf "final held-out MLM loss: bf16 %+.2f %% of fp32 (target within 1 %%)\n", 100 * (b - a) / a }'
[ "${BF16_PRETRAIN_NO_TORCH:-0}" = 1 ] && { echo "BF16_PRETRAIN_NO_TORCH=1: no PyTorch runs"; exit 0; }

# ---- training equivalence: bert.h fp32 with another seed, PyTorch fp32 and bf16 autocast
ours fp32_seed12346 fp32 12346
grep -E '^summary' "$OUT/fp32_seed12346.log" | sed "s/^/fp32 seed 12346: /"
NPROC=$(nproc)
RUNS=(--run "bert.h fp32" "$OUT/fp32" "$NPROC" --run "bert.h bf16" "$OUT/bf16" "$NPROC")
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    # Debian's torch calls libblas.so.3 (the reference BLAS unless an alternative says otherwise): OpenBLAS
    # as bench/run.sh finds it (a system openblas-pthread, or the copy run.sh fetched into bench/deps/)
    TORCH_ENV=(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1)
    MA=$(cc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
    for d in "/usr/lib/$MA/openblas-pthread" "$PWD/bench/deps/openblas-pthread"; do
        [ -f "$d/libblas.so.3" ] && { TORCH_ENV+=(LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"); break; }
    done
    torch_run() {   # NAME [--autocast]: the two at once, one thread each (two processes at most)
        rm -rf "${OUT:?}/$1"
        env -u OPENBLAS_CORETYPE -u ATEN_CPU_CAPABILITY "${TORCH_ENV[@]}" /usr/bin/python3 bench/torch_pretrain.py \
            --input "$OUT/data.tfrecord" --init "$INIT" --out "$OUT/$1" --lr 2e-3 --warmup_proportion 0.1 --batch_size 32 \
            --steps "$STEPS" --eval_records 512 --eval_every $((STEPS / 5)) --print_every 100 --seed 12345 "${@:2}" > "$OUT/$1.log" 2>&1
    }
    torch_run torch_fp32 & P1=$!
    torch_run torch_bf16 --autocast & P2=$!
    rc=0; wait $P1 || rc=$?; wait $P2 || rc=$?
    head -1 "$OUT/torch_fp32.log" | sed 's/^/torch fp32: /'
    for p in fp32 bf16; do grep -E '^summary' "$OUT/torch_$p.log" | sed "s/^/torch $p: /"; done
    [ $rc = 0 ] || echo "a PyTorch run failed (status $rc): see $OUT/torch_fp32.log, $OUT/torch_bf16.log"
    RUNS+=(--run "torch fp32" "$OUT/torch_fp32" 1 --run "torch bf16 autocast" "$OUT/torch_bf16" 1)
else
    echo "note: /usr/bin/python3 cannot import torch: no PyTorch runs"
fi
RUNS+=(--run "bert.h fp32 seed 12346" "$OUT/fp32_seed12346" "$NPROC")
echo
/usr/bin/python3 bench/bf16_pretrain_report.py "${RUNS[@]}" --svg docs/bf16_pretrain_curves.svg \
    --title "BERT-Tiny pretraining, $STEPS steps (LAMB, lr 2e-3, batch 32, 512 held-out records): bf16 vs fp32, bert.h vs PyTorch" \
    --note "one init for all (bert.h's random init, seed 12345); the first four share the data order and dropout masks; seed 12346: another data order and other masks"
echo "wall time: $(( $(date +%s) - T0 )) s"
