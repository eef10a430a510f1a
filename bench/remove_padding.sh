#!/usr/bin/env bash
# bench/remove_padding.sh - what --remove_padding (the encoder on the real tokens only) buys on real
# batches: SQuAD v1.1 dev windows (squad --do_predict, max_seq_length 384, padded / --dynamic_padding /
# --remove_padding) and CLUENER2020 dev texts (ner --do_eval, max_seq_length 128, padded /
# --remove_padding), BERT-base shapes with random weights (the speed does not depend on them),
# ROUNDS interleaved rounds; prints min/median/max of each variant's forward throughput and the ratio
# of medians to the padded run. Needs ../shared/data and a build (make examples).
#   bench/remove_padding.sh [ROUNDS (2)] [SQUAD_QUESTIONS (64)] [NER_TEXTS (256)]   env: THREADS (nproc), BUILD (build)
set -u -o pipefail
ROUNDS=${1:-2}; NQ=${2:-64}; NT=${3:-256}
B=${BUILD:-build}
THREADS=${THREADS:-$(nproc)}
D=../shared/data
for f in "$D/squad/dev-v1.1.json" "$D/cluener2020/dev.json" "$D/vocab/bert_uncased_vocab.txt" "$D/vocab/bert_chinese_vocab.txt" \
         "$D/tf_ckpt/chinese_L-12_H-768_A-12_index_only/bert_config.json"; do
    [ -f "$f" ] || { echo "remove_padding.sh: $f absent: nothing measured"; exit 0; }
done
[ -x "$B/squad" ] && [ -x "$B/ner" ] || { echo "remove_padding.sh: build $B/squad and $B/ner first (make examples)"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
sed 's/"vocab_size": *[0-9]*/"vocab_size": 30522/' "$D/tf_ckpt/chinese_L-12_H-768_A-12_index_only/bert_config.json" > "$tmp/base_en.json"
cp "$D/tf_ckpt/chinese_L-12_H-768_A-12_index_only/bert_config.json" "$tmp/base_zh.json"
head -n "$NT" "$D/cluener2020/dev.json" > "$tmp/ner_dev.json"
echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1) | threads $THREADS | $(date -u +%Y-%m-%dT%H:%M:%SZ)"
squad() {   # squad VARIANT-FLAGS: forward windows/s
    OMP_NUM_THREADS=$THREADS "$B/squad" --do_predict --config "$tmp/base_en.json" --vocab "$D/vocab/bert_uncased_vocab.txt" \
        --predict_file "$D/squad/dev-v1.1.json" --predict_limit "$NQ" --predict_batch_size 8 --threads "$THREADS" \
        --output_dir "$tmp/sq" "$@" 2>/dev/null | sed -n 's/.*(\([0-9.]*\) windows\/s forward.*/\1/p'
}
# a BERT-base tagger to evaluate: one training step from random weights (its save is what ner reads)
OMP_NUM_THREADS=$THREADS "$B/ner" --do_train --train_file "$tmp/ner_dev.json" --config "$tmp/base_zh.json" --vocab "$D/vocab/bert_chinese_vocab.txt" \
    --steps 1 --batch_size 1 --max_seq_length 16 --threads "$THREADS" --out "$tmp/ner" > "$tmp/ner_train.log" 2>&1 || { echo "ner training failed:"; tail -3 "$tmp/ner_train.log"; }
ner() {   # ner VARIANT-FLAGS: windows/s of the dev evaluation (one window per text at T 128)
    OMP_NUM_THREADS=$THREADS "$B/ner" --do_eval --dev_file "$tmp/ner_dev.json" --model "$tmp/ner/model.safetensors" \
        --vocab "$D/vocab/bert_chinese_vocab.txt" --eval_batch_size 8 --threads "$THREADS" --out "$tmp/ner" "$@" 2>&1 |
        sed -n 's/.* (\([0-9.]*\) windows\/s)$/\1/p' | tail -1
}
declare -A got
for r in $(seq "$ROUNDS"); do
    got[sq_pad]+=" $(squad --remove_padding=0)"
    got[sq_dyn]+=" $(squad --remove_padding=0 --dynamic_padding)"
    got[sq_rp]+=" $(squad --remove_padding)"
    got[ner_pad]+=" $(ner --remove_padding=0)"
    got[ner_rp]+=" $(ner --remove_padding=1)"
done
stats() { echo "$1" | tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {if (!NR) {print "- - -"; exit} m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.2f %.2f %.2f", v[1], m, v[NR]}'; }
row() {   # row LABEL KEY BASEKEY UNIT
    read -r lo med hi <<< "$(stats "${got[$2]}")"; read -r _ base _ <<< "$(stats "${got[$3]}")"
    printf "| %s | %s | %s | %s | %s | %s |\n" "$1" "$lo" "$med" "$hi" "$4" "$(awk -v a="$med" -v b="$base" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')"
}
echo "| workload | min | median | max | unit | vs padded |"
echo "|---|---|---|---|---|---|"
row "SQuAD dev, first $NQ questions, T 384, padded" sq_pad sq_pad "windows/s"
row "SQuAD dev, --dynamic_padding" sq_dyn sq_pad "windows/s"
row "SQuAD dev, --remove_padding" sq_rp sq_pad "windows/s"
row "CLUENER dev, first $NT texts, T 128, padded" ner_pad ner_pad "windows/s"
row "CLUENER dev, --remove_padding" ner_rp ner_pad "windows/s"
