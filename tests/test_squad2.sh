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
[ $fail = 0 ] && rm -rf "$dir"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
