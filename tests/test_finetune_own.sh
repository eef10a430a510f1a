#!/bin/sh
# test_finetune_own.sh - the README's user program (examples/finetune_own.c, shown whole in the README):
# the README's copy is the file, it fine-tunes on a user's TSV, writes progress, log and curve, and a run
# SIGKILLed mid-way and resumed with --resume ends bit-identical to an uninterrupted one.
# FINETUNE_OWN: the binary (make builds it). Ends with "N passed, N failed".
BIN=${FINETUNE_OWN:-build/finetune_own}
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "  ok   $2"; else fail=$((fail + 1)); echo "  FAIL $2"; fi; }
dir=$(mktemp -d build/finetune_own_test_XXXXXX) || exit 1

awk '/<!-- readme-finetune/{f=1;next} f&&/^```c/{g=1;next} g&&/^```/{exit} g' README.md > "$dir/readme.c"
cmp -s "$dir/readme.c" examples/finetune_own.c; check $? "the README shows examples/finetune_own.c as it is ($(wc -l < examples/finetune_own.c) lines)"
! grep -n 'bert__\|BERT__\|->data\[' examples/finetune_own.c; check $? "it uses the public API only"

# the user's data: label<TAB>sentence, from the CoLA excerpt in tests/data
awk -F'\t' '{print $2 "\t" $4}' tests/data/classify_cola_train.tsv > "$dir/train.tsv"
awk -F'\t' 'NR <= 12 {print $2 "\t" $4}' tests/data/classify_cola_train.tsv > "$dir/dev.tsv"
printf '{"vocab_size": 1269, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2}\n' > "$dir/tiny.json"
common="--train $dir/train.tsv --dev $dir/dev.tsv --vocab tests/data/classify_vocab.txt --config $dir/tiny.json --max_seq_length 32 --batch_size 8 --steps 10 --lr 1e-3 --seed 3 --print_every 2 --save_every 4 --threads 1"

$BIN $common --out "$dir/whole" > "$dir/whole.out" 2>&1; rc=$?
check $rc "10 steps on 43 sentences (exit $rc)"
grep -q 'step      2/10 | loss' "$dir/whole.out" && grep -q 'ETA' "$dir/whole.out"; check $? "progress lines with the loss and an ETA"
grep -q '^eval .*accuracy' "$dir/whole.out"; check $? "evaluations on the dev file"
[ "$(grep -c '^{"step": ' "$dir/whole/log.jsonl")" = 10 ] && grep -q '"eval_step": 10' "$dir/whole/log.jsonl" && grep -q '"summary": "done"' "$dir/whole/log.jsonl"
check $? "log.jsonl: 10 steps, the last evaluation, a summary"
grep -q '<polyline' "$dir/whole/curve.svg"; check $? "curve.svg drawn"

$BIN $common --out "$dir/killed" --debug_kill_at_step 6 > "$dir/killed.out" 2>&1; rc1=$?
$BIN $common --out "$dir/killed" --resume > "$dir/resumed.out" 2>&1; rc2=$?
[ $rc1 = 137 ] && [ $rc2 = 0 ] && grep -q 'resumed from .*ckpt-00000004' "$dir/resumed.out"; check $? "killed after step 6 (exit $rc1), resumed from the step-4 checkpoint (exit $rc2)"
cmp -s "$dir/whole/ckpt-00000010/model.safetensors" "$dir/killed/ckpt-00000010/model.safetensors"; check $? "the resumed run's weights at step 10 are bit-identical"

$BIN $common --out "$dir/bad" --train tests/data/classify_vocab.txt > "$dir/bad.out" 2>&1; rc=$?
[ $rc = 1 ] && grep -q 'classify_vocab.txt:1: expected "label<TAB>text"' "$dir/bad.out"; check $? "a malformed line: one error naming file:line, exit 1 ($rc)"

# the run layer's output rules: files it writes are never written through a symlink planted at
# their name; a second run on a directory in use is refused; SIGTERM saves and exits 143
mkdir -p "$dir/planted" && printf precious > "$dir/victim.txt"
for name in log.jsonl curve.svg .lock; do ln -s ../victim.txt "$dir/planted/$name"; done
$BIN $common --steps 4 --out "$dir/planted" > "$dir/planted.out" 2>&1; rc=$?
[ "$(cat "$dir/victim.txt")" = precious ]; check $? "symlinks planted at log.jsonl, curve.svg and .lock: their target unchanged (exit $rc)"
mkdir -p "$dir/planted2" "$dir/elsewhere" && ln -s ../elsewhere "$dir/planted2/ckpt-00000004"
$BIN $common --steps 4 --overwrite --out "$dir/planted2" > "$dir/planted2.out" 2>&1; rc=$?
[ $rc = 1 ] && [ -z "$(ls "$dir/elsewhere")" ] && grep -q 'must be a real directory' "$dir/planted2.out"
check $? "a symlink planted at a checkpoint directory's name: refused, nothing written through it (exit $rc)"
$BIN $common --steps 1000000 --save_every 0 --out "$dir/busy" > "$dir/busy1.out" 2>&1 &
pid=$!
i=0; while [ $i -lt 100 ] && ! grep -q 'step      1/' "$dir/busy1.out" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
$BIN $common --out "$dir/busy" > "$dir/busy2.out" 2>&1; rc=$?
[ $rc = 1 ] && grep -q 'another run is using this output directory' "$dir/busy2.out"; check $? "a second run on a directory in use is refused (exit $rc)"
kill -TERM $pid; wait $pid; rc=$?
[ $rc = 143 ] && grep -q '"summary": "interrupted"' "$dir/busy/log.jsonl" && ls "$dir/busy"/ckpt-*/state.safetensors > /dev/null 2>&1
check $? "the first run, sent SIGTERM, saved a checkpoint and exited 143 ($rc)"

# a directory holding an earlier run: refused without --resume/--overwrite, every file unchanged; with
# --overwrite the new run's checkpoints are made and pruned, the earlier run's higher-numbered one kept
mkdir -p "$dir/old" && cp -r "$dir/whole/ckpt-00000010" "$dir/old/ckpt-00000100" && cp "$dir/whole/log.jsonl" "$dir/old/" && printf notes > "$dir/old/notes.txt"
(cd "$dir/old" && find . -type f ! -name .lock | sort | xargs cat | cksum) > "$dir/old.sum"
$BIN $common --out "$dir/old" > "$dir/old1.out" 2>&1; rc=$?
(cd "$dir/old" && find . -type f ! -name .lock | sort | xargs cat | cksum) > "$dir/old.sum2"
[ $rc = 1 ] && grep -q 'holds an earlier run' "$dir/old1.out" && cmp -s "$dir/old.sum" "$dir/old.sum2"
check $? "a fresh run into a directory holding an earlier run: refused, every file unchanged (exit $rc)"
$BIN $common --out "$dir/old" --overwrite --keep 1 > "$dir/old2.out" 2>&1; rc=$?
[ $rc = 0 ] && cmp -s "$dir/old/ckpt-00000100/model.safetensors" "$dir/whole/ckpt-00000010/model.safetensors" && [ -f "$dir/old/ckpt-00000010/state.safetensors" ] && [ ! -d "$dir/old/ckpt-00000008" ] && [ "$(cat "$dir/old/notes.txt")" = notes ]
check $? "--overwrite --keep 1: the new run's last checkpoint kept and its older ones pruned; the earlier run's ckpt-00000100 untouched (exit $rc)"

# standard output is checked like any file: lost progress lines (a full disk, /dev/full) fail the run
# after its checkpoint is saved, and lost --help text fails --help
if [ -w /dev/full ]; then
    $BIN $common --steps 3 --out "$dir/full" > /dev/full 2> "$dir/full.err"; rc=$?
    [ $rc = 1 ] && grep -q 'stdout: write failed' "$dir/full.err" && [ -f "$dir/full/ckpt-00000003/state.safetensors" ]
    check $? "stdout to /dev/full during training: exit 1 naming stdout, the checkpoint saved ($rc)"
    $BIN --help > /dev/full 2> "$dir/help.err"; rc=$?
    [ $rc = 1 ] && grep -q 'stdout: write failed' "$dir/help.err"; check $? "--help into /dev/full: exit 1 ($rc)"
fi

# one config rule: the weights file's own config wins over a different --config (noted, not applied)
printf '{"vocab_size": 1269, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 1, "intermediate_size": 32, "max_position_embeddings": 64, "type_vocab_size": 2}\n' > "$dir/other.json"
$BIN $common --steps 2 --init "$dir/whole/ckpt-00000010/model.safetensors" --config "$dir/other.json" --out "$dir/cfg" > "$dir/cfg.out" 2>&1; rc=$?
[ $rc = 0 ] && grep -q "carries its own config, which differs from $dir/other.json: using the file's" "$dir/cfg.out" && grep -q 'L=2 H=32' "$dir/cfg.out"
check $? "--init with a config in the file and a different --config: the file's is used, with a note (exit $rc)"

[ $fail = 0 ] && rm -rf "$dir"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
