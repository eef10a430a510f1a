#!/bin/sh
# test_squad2.sh - `squad --eval` on SQuAD v2.0 files against tests/ref/squad2_ref.py (the v2.0 metric
# written from its definition): perfect, all-empty ("no answer" everywhere), all-answered and mixed
# predictions, with and without no-answer probabilities and thresholds; output byte for byte.
# BUILD: where the binaries are. Needs /usr/bin/python3 (standard library only). "N passed, N failed".
B=${BUILD:-build}
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "  ok   $2"; else fail=$((fail + 1)); echo "  FAIL $2"; fi; }
PY=${PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import json' 2>/dev/null; then echo "  skipped: no $PY"; echo "0 passed, 0 failed"; exit 0; fi
dir=$(mktemp -d build/squad2_test_XXXXXX) || exit 1
cat > "$dir/data.json" <<'JSON'
{"version": "v2.0", "data": [{"title": "t", "paragraphs": [
 {"context": "The cat sat on the mat in the old house near the river.", "qas": [
  {"id": "a1", "question": "where did the cat sit", "answers": [{"text": "on the mat", "answer_start": 8}, {"text": "the mat", "answer_start": 11}], "is_impossible": false},
  {"id": "a2", "question": "what is old", "answers": [{"text": "the old house", "answer_start": 26}], "is_impossible": false},
  {"id": "n1", "question": "what did the dog eat", "answers": [], "plausible_answers": [{"text": "mat", "answer_start": 15}], "is_impossible": true},
  {"id": "a3", "question": "which article", "answers": [{"text": "The", "answer_start": 0}], "is_impossible": false},
  {"id": "n2", "question": "who owns the river", "answers": [], "is_impossible": true}]},
 {"context": "Rivers flow to the sea, mostly.", "qas": [
  {"id": "a4", "question": "where do rivers flow", "answers": [{"text": "to the sea", "answer_start": 12}], "is_impossible": false},
  {"id": "n3", "question": "how deep is the sea", "answers": [], "is_impossible": true}]}]}]}
JSON
printf '{"a1": "on the mat", "a2": "the old house", "n1": "", "a3": "", "n2": "", "a4": "to the sea", "n3": ""}\n' > "$dir/perfect.json"
printf '{"a1": "", "a2": "", "n1": "", "a3": "", "n2": "", "a4": "", "n3": ""}\n' > "$dir/empty.json"
printf '{"a1": "mat", "a2": "house", "n1": "mat", "a3": "the", "n2": "river", "a4": "sea mostly", "n3": "deep"}\n' > "$dir/answered.json"
printf '{"a1": "the cat sat", "a2": "", "n1": "", "a3": "cat", "n2": "the river", "a4": "to the sea", "n3": ""}\n' > "$dir/mixed.json"
printf '{"a1": 0.1, "a2": 0.9, "n1": 0.8, "a3": 0.4, "n2": 0.3, "a4": 0.05, "n3": 0.95}\n' > "$dir/na.json"
printf '{"a1": 0.5, "a2": 0.5, "n1": 0.5, "a3": 0.2, "n2": 0.2, "a4": 0.5, "n3": 0.7}\n' > "$dir/na_ties.json"
for case in "perfect" "empty" "answered" "mixed" "mixed na.json" "answered na.json" "mixed na.json 0.5" "empty na.json 0.35" "mixed na_ties.json 0.4"; do
    set -- $case
    pred=$1 na=${2:-} th=${3:-}
    args=""; [ -n "$na" ] && args="--na_prob_file $dir/$na"; [ -n "$th" ] && args="$args --na_prob_thresh $th"
    $B/squad --eval "$dir/data.json" "$dir/$pred.json" $args > "$dir/got.txt" 2> "$dir/got.err"; rc=$?
    naarg=-; [ -n "$na" ] && naarg="$dir/$na"
    "$PY" tests/ref/squad2_ref.py "$dir/data.json" "$dir/$pred.json" "$naarg" ${th:-} > "$dir/want.txt" 2>&1
    cmp -s "$dir/got.txt" "$dir/want.txt"; ok=$?
    [ $rc = 0 ] && [ $ok = 0 ]; check $? "v2.0 $pred${na:+ with $na}${th:+ thresh $th}: squad --eval = the reference, byte for byte (exit $rc)"
    [ $ok = 0 ] || { echo "         got:"; sed 's/^/           /' "$dir/got.txt" "$dir/got.err" | head -20; echo "         want:"; sed 's/^/           /' "$dir/want.txt" | head -20; }
done
# a missing prediction: HasAns/NoAns cannot be scored (the official script stops there too): one line, exit 1
printf '{"a1": "on the mat"}\n' > "$dir/partial.json"
$B/squad --eval "$dir/data.json" "$dir/partial.json" > "$dir/p.out" 2> "$dir/p.err"; rc=$?
[ $rc = 1 ] && grep -q 'has no prediction' "$dir/p.err"; check $? "v2.0 with missing predictions: refused with one line (exit $rc)"

# SQuAD 2.0 prediction and training on a v2.0-format file made from the real dev-v1.1.json (articles
# 0:2; every third question is asked of the next paragraph instead, as an impossible one). The files
# squad writes are compared byte for byte with tests/ref/squad_features_ref.py (run_squad's
# version_2_with_negative post-processing written from its definition) for oracle and random logits
# and three null-score thresholds; its built-in score with evaluate-v2.0's na_prob from null_odds.json
DEV=../shared/data/squad/dev-v1.1.json VOCAB=../shared/data/vocab/bert_uncased_vocab.txt
if [ ! -f "$DEV" ] || [ ! -f "$VOCAB" ]; then
    echo "  skipped: ../shared/data absent ($DEV): SQuAD 2.0 prediction and training not run"
else
    "$PY" - "$DEV" "$dir/v2.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
out = []
for a in d["data"][0:2]:
    paras = a["paragraphs"]
    new = [{"context": p["context"], "qas": []} for p in paras]
    for i, p in enumerate(paras):
        for k, qa in enumerate(p["qas"]):
            if k % 3 == 2:
                new[(i + 1) % len(paras)]["qas"].append({"id": qa["id"] + "_x", "question": qa["question"], "answers": [],
                                                         "plausible_answers": qa["answers"], "is_impossible": True})
            else:
                new[i]["qas"].append(dict(qa, is_impossible=False))
    out.append({"title": a["title"], "paragraphs": new})
json.dump({"version": "v2.0", "data": out}, open(sys.argv[2], "w"))
PY
    for case in "oracle 0" "random 0" "random -0.3" "random 0.4"; do
        set -- $case
        c="$dir/c_$1_$2" r="$dir/r_$1_$2"
        mkdir -p "$c"
        $B/squad --do_predict --debug_logits $1 --seed 12345 --predict_file "$dir/v2.json" --vocab "$VOCAB" --output_dir "$c" \
            --dump_features "$c/features.txt" --null_score_diff_threshold $2 > "$c/out.txt" 2>&1; rc=$?
        "$PY" tests/ref/squad_features_ref.py --predict "$r" --data "$dir/v2.json" --vocab "$VOCAB" --logits $1 --null-threshold $2 > "$r.txt" 2>&1
        bad=""
        for f in features.txt predictions.json nbest_predictions.json null_odds.json; do cmp -s "$c/$f" "$r/$f" || bad="$bad $f"; done
        [ $rc = 0 ] && [ -z "$bad" ]; check $? "v2.0 predict, $1 logits, --null_score_diff_threshold $2: windows, predictions, n-best and null odds = the reference (exit $rc${bad:+; differ:$bad})"
        "$PY" tests/ref/squad2_ref.py "$dir/v2.json" "$r/predictions.json" "$r/null_odds.json" > "$r/eval.txt" 2>&1
        sed -n '/^{/,/^}/p' "$c/out.txt" | cmp -s - "$r/eval.txt"; check $? "v2.0 predict, $1 logits, threshold $2: the built-in score = evaluate-v2.0 with --na-prob-file null_odds.json"
    done
    # training: impossible questions are trained on, every window of theirs answering at [CLS]; the
    # counts of questions, windows and [CLS] labels are the reference's training windows
    cat > "$dir/config.json" <<'CFG'
{"vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 128, "type_vocab_size": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02}
CFG
    $B/squad --do_train --do_predict --train_file "$dir/v2.json" --predict_file "$dir/v2.json" --predict_articles 1:2 --vocab "$VOCAB" \
        --config "$dir/config.json" --max_seq_length 96 --doc_stride 48 --max_query_length 24 --train_batch_size 16 \
        --learning_rate 2e-3 --steps 12 --threads 2 --output_dir "$dir/train" > "$dir/train.out" 2> "$dir/train.err"; rc=$?
    "$PY" - "$dir/ref_train" "$dir/v2.json" "$VOCAB" <<'PY' > "$dir/want_train.txt"
import sys
sys.argv = [sys.argv[0]] + ["--predict", sys.argv[1], "--data", sys.argv[2], "--vocab", sys.argv[3], "--logits", "oracle"]
sys.path.insert(0, "tests/ref")
import squad_features_ref as r
r.MAX_SEQ, r.DOC_STRIDE, r.MAX_QUERY = 96, 48, 24
r.main()
PY
    want=$(sed -n 's/^\([0-9]*\) questions -> \([0-9]*\) features, \([0-9]*\) at.*/\1 \1 \2 \3/p' "$dir/want_train.txt")
    got=$(sed -n 's/^train data: .* | \([0-9]*\) questions, \([0-9]*\) used (.*) | \([0-9]*\) windows, \([0-9]*\) answering at \[CLS\].*/\1 \2 \3 \4/p' "$dir/train.out")
    [ $rc = 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]; check $? "v2.0 training: questions, used, windows and [CLS] labels = the reference's training windows ('$got', want '$want', exit $rc)"
    grep -q '300 impossible' "$dir/train.out"; check $? "v2.0 training: the 300 impossible questions are counted and trained on"
    grep -q 'version_2_with_negative is on' "$dir/train.err"; check $? "a v2.0 file turns SQuAD 2.0 mode on, with a note"
    [ -s "$dir/train/model.safetensors" ] && [ -s "$dir/train/null_odds.json" ] && grep -q '"NoAns_total": 51' "$dir/train.out"
    check $? "v2.0 fine-tuning: model saved, null_odds.json written, the v2.0 metrics printed (HasAns/NoAns)"
    [ $rc = 0 ] || sed 's/^/         /' "$dir/train.err" | head -5
fi
[ $fail = 0 ] && rm -rf "$dir"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
