#!/bin/sh
# test_remove_padding.sh - --remove_padding (ctx->remove_padding: the encoder on the real tokens of a
# batch only, attention per sequence) through the programs, against the padded path (--remove_padding=0)
# on the same tiny model: encode's vectors within 1e-5 (cls, mean, max pooling; fp32 and int8),
# classify's and ner's predictions and scores identical, squad predicting with it. bert.h's encoder
# itself is checked in tests/test_bert.c. BUILD: where the binaries are. Ends with "N passed, N failed".
B=${BUILD:-build}
PY=${PYTHON:-/usr/bin/python3}
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "  ok   $2"; else fail=$((fail + 1)); echo "  FAIL $2"; fi; }
dir=$(mktemp -d build/remove_padding_test_XXXXXX) || exit 1
V=tests/data/classify_vocab.txt
printf '{"vocab_size": 1269, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2, "initializer_range": 0.2}\n' > "$dir/tiny.json"
# a model to run: one epoch of CoLA on the tiny config
$B/classify --task cola --do_train --train_file tests/data/classify_cola_train.tsv --vocab $V --config "$dir/tiny.json" \
    --max_seq_length 48 --epochs 1 --batch_size 16 --out "$dir/cls" > "$dir/train.out" 2>&1; rc=$?
check $rc "a tiny CoLA classifier to run on (exit $rc)"
# classify: eval and predictions with and without padding removal
for rp in 0 1; do
    $B/classify --task cola --do_eval --do_predict --dev_file tests/data/classify_cola_dev.tsv --test_file tests/data/classify_cola_dev.tsv \
        --predict_format tsv --vocab $V --init "$dir/cls/model.safetensors" --max_seq_length 48 --eval_batch_size 8 \
        --remove_padding=$rp --out "$dir/cls$rp" > "$dir/cls$rp.out" 2>&1 || echo "exit $?" >> "$dir/cls$rp.out"
done
# the same predictions and metrics; the mean dev loss to 1e-6 (sums in another order)
sed 's/"loss": [-0-9.e]*//' "$dir/cls0/eval_results.json" > "$dir/r0"; sed 's/"loss": [-0-9.e]*//' "$dir/cls1/eval_results.json" > "$dir/r1"
l0=$(sed -n 's/.*"loss": \([-0-9.e]*\).*/\1/p' "$dir/cls0/eval_results.json"); l1=$(sed -n 's/.*"loss": \([-0-9.e]*\).*/\1/p' "$dir/cls1/eval_results.json")
[ -s "$dir/cls1/test_predictions.tsv" ] && cmp -s "$dir/cls0/test_predictions.tsv" "$dir/cls1/test_predictions.tsv" && cmp -s "$dir/r0" "$dir/r1" && \
    awk -v a="$l0" -v b="$l1" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= 1e-6) }'
check $? "classify --do_eval --do_predict: predictions and metrics identical with --remove_padding=0 and 1, dev loss $l0 vs $l1"
# encode: vectors as .npy, batches of 8 lines of different lengths
cut -f4 tests/data/classify_cola_train.tsv tests/data/classify_cola_dev.tsv > "$dir/lines.txt"
if "$PY" -c 'import numpy' 2>/dev/null; then
    for case in "cls fp32" "mean fp32" "max fp32" "mean int8"; do
        set -- $case
        for rp in 0 1; do
            $B/encode --model "$dir/cls/model.safetensors" --vocab $V --input "$dir/lines.txt" --pooling $1 --precision $2 \
                --max_seq_length 48 --batch_size 8 --remove_padding=$rp --output "$dir/e$rp.npy" > "$dir/e$rp.out" 2>&1
        done
        d=$("$PY" -c 'import numpy as np, sys; a, b = np.load(sys.argv[1]), np.load(sys.argv[2]); print("%.3g %d" % (np.abs(a - b).max(), a.shape[0]))' "$dir/e0.npy" "$dir/e1.npy" 2>&1)
        "$PY" -c 'import sys; d, n = sys.argv[1].split(); sys.exit(not (float(d) <= 1e-5 and int(n) == 59))' "$d" 2>/dev/null
        check $? "encode --pooling $1 --precision $2: --remove_padding = the padded path within 1e-5 (max |diff|, lines: $d)"
    done
else
    echo "  skipped: no numpy for $PY: encode's vectors not compared"
fi
# ner: a tiny tagger, its dev score and test predictions both ways
printf '{"vocab_size": %d, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2, "initializer_range": 0.2}\n' \
    "$(wc -l < tests/data/ner_vocab.txt)" > "$dir/ner.json"
$B/ner --do_train --train_file tests/data/ner_sample.json --vocab tests/data/ner_vocab.txt --config "$dir/ner.json" --steps 4 \
    --max_seq_length 32 --out "$dir/ner" > "$dir/ner.out" 2>&1
for rp in 0 1; do
    $B/ner --do_eval --do_predict --dev_file tests/data/ner_sample.json --test_file tests/data/ner_test_sample.json --predict_file "$dir/ner_pred$rp.json" \
        --vocab tests/data/ner_vocab.txt --model "$dir/ner/model.safetensors" --max_seq_length 32 --remove_padding=$rp --out "$dir/ner$rp" > "$dir/ner$rp.out" 2>&1
done
[ -s "$dir/ner_pred1.json" ] && cmp -s "$dir/ner_pred0.json" "$dir/ner_pred1.json" && cmp -s "$dir/ner0/dev_results.json" "$dir/ner1/dev_results.json"
check $? "ner --do_eval --do_predict: predictions and dev_results.json identical with --remove_padding=0 and 1"
# squad: off by default (run_squad ranks padded positions too), on with the flag: it runs and says so
printf '{"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "the cat sat on the mat in the house", "qas": [{"id": "q1", "question": "where did the cat sit", "answers": [{"text": "the mat", "answer_start": 15}]}, {"id": "q2", "question": "what sat", "answers": [{"text": "cat", "answer_start": 4}]}]}]}]}\n' > "$dir/squad.json"
$B/squad --do_predict --predict_file "$dir/squad.json" --vocab $V --config "$dir/tiny.json" --max_seq_length 64 --doc_stride 32 \
    --max_query_length 16 --remove_padding --output_dir "$dir/sq" > "$dir/sq.out" 2>&1; rc=$?
[ $rc = 0 ] && [ -s "$dir/sq/predictions.json" ]; check $? "squad --do_predict --remove_padding runs (exit $rc)"
$B/squad --help 2>&1 | grep -q 'remove_padding .*(off)'; check $? "squad --help: --remove_padding is off by default"
$B/encode --help 2>&1 | grep -q 'remove_padding .*(on)'; check $? "encode --help: --remove_padding is on by default"
[ $fail = 0 ] && rm -rf "$dir"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
