#!/usr/bin/env bash
# finetune_compare.sh [SEEDS] [TASKS] - issue 27: fine-tuning from bench/pretrain_real.sh's checkpoint
# against the same model from random init, same everything else, for each seed (default "1 2 3") and
# task (default "cola mrpc sst2"; "squad" too): classify on the full public CoLA (in-domain), MRPC and
# SST-2 files, scored on dev (never in the pretraining corpus: build_corpus.py uses the training splits
# only); squad trains on SQuAD v1.1 dev articles 0-39 (their contexts were in the pretraining corpus as
# unlabelled text, their questions never) and scores the 8 held-out articles 40-47 (never seen at all),
# windows of 128 (the pretraining length: longer positions were never trained), stride 64, 2 epochs.
# tnews: CLUE TNEWS (Chinese, 15 classes) from PT_LANG=zh bench/pretrain_real.sh's checkpoint (Google's Chinese
# vocabulary; its dev titles scored here: the first 2,000 are that run's held-out set, none was trained on),
# max_seq_length 64, 1 epoch.
# Two runs at a time, one thread each. AdamW lr 1e-4, 10 % warmup, batch 32, weight decay 0.01, dropout
# 0.1; CoLA and MRPC 3 epochs, SST-2 1 epoch, SQuAD 2 epochs. Prints mean and spread (max - min) per task and init.
# Output: build/finetune_compare/<task>_<init>_s<seed>/ and summary_<tasks>.txt (SUMMARY_ONLY=1: only that
# table again, from the runs already there).
set -eu
cd "$(dirname "$0")/.."
SEEDS=${1:-"1 2 3"}
TASKS=${2:-"cola mrpc sst2"}
PREC=${PREC:-fp32}   # PREC=bf16: bf16 mixed-precision fine-tuning (AVX512-BF16 / AMX machines)
OUT=build/finetune_compare
DATA=../shared/data
pt_of() { [ "$1" = tnews ] && echo build/pretrain_real_zh || echo build/pretrain_real; }   # task -> its pretraining run
vocab_of() { [ "$1" = tnews ] && echo $DATA/vocab/bert_chinese_vocab.txt || echo $DATA/vocab/bert_uncased_vocab.txt; }
ckpt_of() { ls -d $(pt_of $1)/run/ckpt-* 2>/dev/null | tail -1; }
for task in $TASKS; do
  [ -n "$(ckpt_of $task)" ] || { echo "no checkpoint in $(pt_of $task)/run: run bench/pretrain_real.sh first (PT_LANG=zh for tnews)"; exit 1; }
done
mkdir -p "$OUT"
SUMMARY=$OUT/summary_$(echo $TASKS | tr ' ' _).txt
make -s build/classify build/squad
echo "pretrained init: $(for t in $TASKS; do echo -n "$t $(ckpt_of $t) "; done)| precision $PREC" | tee ${SUMMARY_ONLY:+-a} "$SUMMARY"
args_of() {   # task -> classify's data and length flags
  case $1 in
    cola) echo "--task cola --train_file $DATA/cola/in_domain_train.tsv --dev_file $DATA/cola/in_domain_dev.tsv --max_seq_length 64 --epochs 3" ;;
    mrpc) echo "--task mrpc --train_file $DATA/glue/MRPC/train.tsv --dev_file $DATA/glue/MRPC/dev.tsv --max_seq_length 128 --epochs 3" ;;
    sst2) echo "--task sst2 --train_file $DATA/glue/SST-2/train.tsv --dev_file $DATA/glue/SST-2/dev.tsv --max_seq_length 64 --epochs 1 --eval_every 500" ;;
    tnews) echo "--task tnews --train_file $DATA/tnews/clue1.1_public/train.json --dev_file $DATA/tnews/clue1.1_public/dev.json \
                 --labels_file $DATA/tnews/clue1.1_public/labels.json --max_seq_length 64 --epochs 1 --eval_every 500" ;;
    squad) echo "--train_file $DATA/squad/dev-v1.1.json --train_articles 0:40 --predict_file $DATA/squad/dev-v1.1.json \
                 --predict_articles 40:48 --do_predict --max_seq_length 128 --doc_stride 64 --max_query_length 32 --epochs 2" ;;
  esac
}
program_of() { [ "$1" = squad ] && echo squad || echo "classify --do_eval"; }
one() {   # task init seed
  local dir="$OUT/$1_$2_s$3" init
  if [ "$2" = pretrained ]; then init="--init $(ckpt_of $1)"; else init="--config $(pt_of $1)/bert_config.json"; fi
  rm -rf "$dir"
  local t0=$(date +%s)
  ./build/$(program_of $1) $(args_of $1) $init --vocab $(vocab_of $1) --do_train --batch_size 32 \
      --lr 1e-4 --warmup_proportion 0.1 --weight_decay 0.01 --seed $3 --threads 1 --print_every 100 --precision "$PREC" \
      --out "$dir" > "$dir.log" 2>&1
  echo $(( $(date +%s) - t0 )) > "$dir.wall_s"
}
jobs_list=()
for task in $TASKS; do for seed in $SEEDS; do for init in pretrained random; do jobs_list+=("$task $init $seed"); done; done; done
lscpu | grep -m1 'Model name' | tee -a "$SUMMARY"
uptime | tee -a "$SUMMARY"
[ -n "${SUMMARY_ONLY:-}" ] && jobs_list=()   # SUMMARY_ONLY=1: only the table of the runs already in $OUT
for ((i = 0; i < ${#jobs_list[@]}; i += 2)); do
  one ${jobs_list[i]} &
  [ $((i + 1)) -lt ${#jobs_list[@]} ] && one ${jobs_list[i + 1]} &
  wait
done
uptime | tee -a "$SUMMARY"
/usr/bin/python3 - "$OUT" "$TASKS" "$SEEDS" <<'PY' | tee -a "$SUMMARY"
import json, os, sys
out, tasks, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
metric = {"cola": "mcc", "mrpc": "binary_f1", "sst2": "accuracy", "tnews": "accuracy", "squad": "exact_match"}

def scores(d, t):   # classify: the best-on-dev checkpoint's eval_results.json; squad: the last eval in log.jsonl
    if t != "squad":
        return json.load(open(d + "/eval_results.json")).get("metrics", {})
    evals = [json.loads(l) for l in open(d + "/log.jsonl") if l.startswith('{"eval_step"')]
    return evals[-1]

for t in tasks:
    for init in ("random", "pretrained"):
        vals, walls, f1s = [], [], []
        for s in seeds:
            d = "%s/%s_%s_s%s" % (out, t, init, s)
            try:
                r = scores(d, t)
            except Exception:
                continue
            if r.get(metric[t]) is not None:
                vals.append(r[metric[t]])
                if t == "squad":
                    f1s.append(r["f1"])
            walls.append(int(open(d + ".wall_s").read()))
        if vals:
            mean = sum(vals) / len(vals)
            print("%-5s %-10s %s %.4f +- %.4f (spread max-min; n=%d: %s) | wall %s s" % (
                t, init, metric[t], mean, (max(vals) - min(vals)) / 2, len(vals), ", ".join("%.4f" % v for v in vals),
                "/".join(map(str, walls))))
            if f1s:
                print("%-5s %-10s f1 %.4f +- %.4f (n=%d: %s)" % (t, init, sum(f1s) / len(f1s), (max(f1s) - min(f1s)) / 2,
                                                              len(f1s), ", ".join("%.4f" % v for v in f1s)))
PY
