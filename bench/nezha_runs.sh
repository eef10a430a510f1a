#!/usr/bin/env bash
# nezha_runs.sh [STEPS] - the README's NEZHA runs (issue 25), each side by side with the same BERT, one
# thread each, same data, same seed, same hyperparameters:
#  1. pretraining from random init, masked LM only (NEZHA dropped NSP; the BERT run drops it too so the
#     two compare): BERT-Mini's shape (L=4, H=256, A=4, F=1024), uncased vocab, on pretrain_demo.sh's
#     data (SQuAD v1.1 dev contexts + sample_text.txt, 22,798 instances of 128 tokens, 512 held out),
#     LAMB lr 2e-3, batch 32, STEPS steps (240 by default). NEZHA = Huawei's flavour: fixed sinusoid
#     table, K = 64 (pairs further apart than 64 tokens clip), no absolute position table.
#  2. CLUENER2020 fine-tuning from random init with the CRF head, ner_runs.sh's setup (L=2, H=128, A=4,
#     F=512, Chinese vocab, T 64, batch 16, 3 epochs), NEZHA with K = 64 against BERT.
# Output: build/nezha_runs/{pretrain_bert,pretrain_nezha,ner_bert,ner_nezha}/ and summary.txt.
set -eu
cd "$(dirname "$0")/.."
STEPS=${1:-240}
OUT=build/nezha_runs
DATA=../shared/data
mkdir -p "$OUT"
make -s build/pretrain build/create_pretraining_data build/ner
rel='"use_relative_position": true, "max_relative_position": 64, "relative_position_flavour": "huawei",'
mini='"vocab_size": 30522, "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024,'
tiny='"vocab_size": 21128, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 512,'
rest='"hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "type_vocab_size": 2, "initializer_range": 0.02'
echo "{$mini $rest, \"max_position_embeddings\": 512}" > "$OUT/bert_mini.json"
echo "{$mini $rel $rest, \"max_position_embeddings\": 512}" > "$OUT/nezha_mini.json"
echo "{$tiny $rest, \"max_position_embeddings\": 64}" > "$OUT/bert_tiny.json"
echo "{$tiny $rel $rest, \"max_position_embeddings\": 64}" > "$OUT/nezha_tiny.json"
TF=build/pretrain_demo/data.tfrecord
if [ ! -s "$TF" ]; then
  mkdir -p build/pretrain_demo
  /usr/bin/python3 tools/squad_to_text.py $DATA/squad/dev-v1.1.json > build/pretrain_demo/squad_contexts.txt
  ./build/create_pretraining_data --input_file build/pretrain_demo/squad_contexts.txt --input_file $DATA/bert_sample/sample_text.txt \
      --vocab_file $DATA/vocab/bert_uncased_vocab.txt --output_file "$TF" --dupe_factor 5
fi
lscpu | grep -m1 'Model name' | tee "$OUT/summary.txt"
uptime | tee -a "$OUT/summary.txt"
pretrain() {   # name config
  rm -rf "${OUT:?}/$1"
  local t0=$(date +%s)
  ./build/pretrain --input "$TF" --config "$2" --out "$OUT/$1" --next_sentence=false --threads 1 \
      --optimizer lamb --lr 2e-3 --warmup_proportion 0.1 --batch_size 32 --steps "$STEPS" --seed 7 \
      --eval_records 512 --eval_every $((STEPS / 4)) --save_every "$STEPS" --print_every 20 > "$OUT/$1.log" 2>&1
  echo $(( $(date +%s) - t0 )) > "$OUT/$1.wall_s"
}
ner() {   # name config
  rm -rf "${OUT:?}/$1"
  local t0=$(date +%s)
  ./build/ner --do_train --do_eval --data_dir $DATA/cluener2020 --vocab $DATA/vocab/bert_chinese_vocab.txt \
      --config "$2" --use_crf --max_seq_length 64 --batch_size 16 --epochs 3 --lr 3e-3 --warmup_proportion 0.1 \
      --weight_decay 0.01 --eval_every 672 --print_every 100 --seed 42 --threads 1 --out "$OUT/$1" > "$OUT/$1.log" 2>&1
  echo $(( $(date +%s) - t0 )) > "$OUT/$1.wall_s"
}
pretrain pretrain_bert "$OUT/bert_mini.json" & pretrain pretrain_nezha "$OUT/nezha_mini.json" & wait
ner ner_bert "$OUT/bert_tiny.json" & ner ner_nezha "$OUT/nezha_tiny.json" & wait
uptime | tee -a "$OUT/summary.txt"
for r in pretrain_bert pretrain_nezha ner_bert ner_nezha; do
  echo "== $r ($(cat $OUT/$r.wall_s) s wall)" | tee -a "$OUT/summary.txt"
  grep -E '^(eval|summary|best)' "$OUT/$r.log" | tee -a "$OUT/summary.txt" || true
done
