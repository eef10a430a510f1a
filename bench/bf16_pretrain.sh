#!/usr/bin/env bash
# bench/bf16_pretrain.sh [STEPS (1000)] [CONFIG (BERT-Tiny's)] - the same pretraining run in fp32 and in
# bf16 (--precision bf16): same data, seed, init and schedule; prints the held-out MLM loss and accuracy
# at every evaluation for both, the final relative difference of the held-out MLM loss, and the step
# times. Data: pretrain_demo.sh's (the SQuAD dev contexts + sample_text.txt through
# create_pretraining_data, uncased vocab, T 128), built here if absent. Needs ../shared/data.
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
for p in fp32 bf16; do
    rm -rf "$OUT/$p"
    ./build/pretrain --input "$OUT/data.tfrecord" --config "$CONFIG" --out "$OUT/$p" --optimizer lamb --lr 2e-3 \
        --warmup_proportion 0.1 --batch_size 32 --steps "$STEPS" --eval_records 512 --eval_every $((STEPS / 5)) \
        --print_every 100 --seed 12345 --precision "$p" > "$OUT/$p.log" 2>&1
    grep -E '^summary' "$OUT/$p.log" | sed "s/^/$p: /"
done
echo "| step | fp32 held-out MLM loss | bf16 | fp32 MLM acc | bf16 |"
echo "|---|---|---|---|---|"
evals() { sed -n 's/^eval *\([0-9]*\) | mlm_acc \([0-9.]*\) | mlm_loss \([0-9.]*\).*/\1 \3 \2/p' "$1"; }   # step loss acc
paste <(evals "$OUT/fp32.log") <(evals "$OUT/bf16.log") |
    awk '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $5, $3, $6; a = $2; b = $5 } END { if (a > 0) printf "final held-out MLM loss: bf16 %+.2f %% of fp32 (target within 1 %%)\n", 100 * (b - a) / a }'
