#!/usr/bin/env bash
# classify_runs.sh - the README's classification runs (section "Fine-tuning: classification"):
# examples/classify.c on the full public CoLA, SST-2, MRPC and CLUE TNEWS files in ../shared/data,
# each from a RANDOM init of a BERT-Tiny-shaped model (L=2, H=128, A=2, F=512; no complete pretrained
# checkpoint is available here), with the exact commands, the wall time of each, and the dev
# metrics next to the majority-class baseline that classify prints from the dev labels.
# CoLA and MRPC run 3 epochs, SST-2 and TNEWS (the big ones) 1 epoch. lr 1e-4: at 1e-3 this model
# from random init stays at the class prior (the README says so).
# Output in build/classify_runs/<task>/ (log.jsonl, eval_results.json, model.safetensors, ...) and
# build/classify_runs/summary.txt.
set -eu
cd "$(dirname "$0")/.."
OUT=build/classify_runs
DATA=../shared/data
mkdir -p "$OUT"
make -s build/classify
for v in uncased:30522 chinese:21128; do
  cat > "$OUT/tiny_${v%%:*}.json" <<JSON
{"vocab_size": ${v##*:}, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
 "intermediate_size": 512, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
 "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 128, "type_vocab_size": 2,
 "initializer_range": 0.02}
JSON
done
EN="--vocab $DATA/vocab/bert_uncased_vocab.txt --config $OUT/tiny_uncased.json"
ZH="--vocab $DATA/vocab/bert_chinese_vocab.txt --config $OUT/tiny_chinese.json"
COMMON="--do_train --do_eval --batch_size 32 --lr 1e-4 --warmup_proportion 0.1 --weight_decay 0.01 --seed 12345 --print_every 50"

run() {   # run TASK ARGS...: one classify run, its wall time and its best dev metrics
  local task=$1; shift
  rm -rf "$OUT/$task"
  echo "== $task: ./build/classify $*" | tee -a "$OUT/summary.txt"
  local t0=$(date +%s.%N)
  ./build/classify "$@" --out "$OUT/$task" | tee "$OUT/$task.log"
  local t1=$(date +%s.%N)
  awk -v t="$task" -v a="$t0" -v b="$t1" 'BEGIN { printf "%s wall %.1f s\n", t, b - a }' | tee -a "$OUT/summary.txt"
  grep -A1 -E '^eval .*best checkpoint' "$OUT/$task.log" | tee -a "$OUT/summary.txt"
  grep -E '^(summary|best on dev)' "$OUT/$task.log" | tee -a "$OUT/summary.txt"
  cat "$OUT/$task/eval_results.json" >> "$OUT/summary.txt"
}

: > "$OUT/summary.txt"
lscpu | grep -m1 'Model name' | tee -a "$OUT/summary.txt"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/summary.txt"
run cola --task cola --train_file $DATA/cola/in_domain_train.tsv --dev_file $DATA/cola/in_domain_dev.tsv \
    $EN $COMMON --max_seq_length 64 --epochs 3
run mrpc --task mrpc --train_file $DATA/glue/MRPC/train.tsv --dev_file $DATA/glue/MRPC/dev.tsv \
    $EN $COMMON --max_seq_length 128 --epochs 3
run sst2 --task sst2 --train_file $DATA/glue/SST-2/train.tsv --dev_file $DATA/glue/SST-2/dev.tsv \
    $EN $COMMON --max_seq_length 64 --epochs 1 --eval_every 500
run tnews --task tnews --train_file $DATA/tnews/clue1.1_public/train.json --dev_file $DATA/tnews/clue1.1_public/dev.json \
    --labels_file $DATA/tnews/clue1.1_public/labels.json $ZH $COMMON --max_seq_length 64 --epochs 1 --eval_every 500
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/summary.txt"
