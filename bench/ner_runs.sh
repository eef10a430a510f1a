#!/usr/bin/env bash
# ner_runs.sh - the README's CLUENER2020 fine-tuning runs: examples/ner.c on train.json (10,748
# records), scored on dev.json (1,343), softmax and CRF heads, from a RANDOM init of a small BERT
# (L=2, H=128, A=4, F=512, Google's Chinese vocab; no pretrained Chinese weights are in ../shared/data).
# 3 epochs of batch 16 (2,016 steps) each, capped so that both runs fit in the time box (8-9 minutes
# on the shared 2-core machine, 2026-11-22): the two runs go side by side, one thread each (on a busy
# machine OpenMP's threads wait on each other; one thread per run was about 4x faster there than two).
# Output: build/ner_runs/{softmax,crf}/ (log.jsonl, dev_results.json, model.safetensors,
# cluener_predict.json for test.json, ...), the logs beside them, and a markdown table at the end.
set -eu
cd "$(dirname "$0")/.."
OUT=build/ner_runs
DATA=../shared/data
mkdir -p "$OUT"
make -s build/ner
cat > "$OUT/bert_config.json" <<'JSON'
{"vocab_size": 21128, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
 "intermediate_size": 512, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
 "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 64, "type_vocab_size": 2,
 "initializer_range": 0.02}
JSON
COMMON="--do_train --do_eval --do_predict --data_dir $DATA/cluener2020 --vocab $DATA/vocab/bert_chinese_vocab.txt
  --config $OUT/bert_config.json --max_seq_length 64 --batch_size 16 --epochs 3 --lr 3e-3 --warmup_proportion 0.1
  --weight_decay 0.01 --eval_every 672 --print_every 100 --seed 42 --threads 1"
run() {   # name, extra flags
    rm -rf "${OUT:?}/$1"
    local t0=$(date +%s)
    ./build/ner $COMMON $2 --out "$OUT/$1" > "$OUT/$1.log" 2>&1
    echo $(( $(date +%s) - t0 )) > "$OUT/$1.wall_s"
}
lscpu | grep -m1 'Model name' | tee "$OUT/machine.txt"
uptime | tee -a "$OUT/machine.txt"
run softmax "" &
run crf "--use_crf" &
wait
uptime | tee -a "$OUT/machine.txt"
for r in softmax crf; do echo "== $r ($(cat $OUT/$r.wall_s) s wall)"; grep -E '^(train:|eval |type|[a-z]+ +[0-9]|macro|summary)' "$OUT/$r.log"; done
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
res = {r: json.load(open(f"{out}/{r}/dev_results.json")) for r in ("softmax", "crf")}
wall = {r: int(open(f"{out}/{r}.wall_s").read()) for r in res}
types = list(res["softmax"]["per_type_f1"])
print("\n| dev F1 (%) | " + " | ".join(types) + " | overall (micro) | macro | wall |")
print("|---" * (len(types) + 4) + "|")
for r in res:
    cells = [f"{100 * res[r]['per_type_f1'][t]:.2f}" for t in types]
    print(f"| {r} | " + " | ".join(cells) + f" | **{100 * res[r]['f1']:.2f}** (P {100 * res[r]['precision']:.2f}, R {100 * res[r]['recall']:.2f}) | {100 * res[r]['macro_f1']:.2f} | {wall[r] // 60} min {wall[r] % 60} s |")
PY
