#!/bin/sh
# test_flags.sh - boundary and garbage values for every common flag of the run layer, through every
# training program: exit 1, one line naming the flag, no sanitizer report (under SAN=1), within 10 s.
# Also integer garbage and overflow in the flag parser. BUILD: where the binaries are (default build).
# Ends with "N passed, N failed".
B=${BUILD:-build}
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "  ok   $2"; else fail=$((fail + 1)); echo "  FAIL $2"; fi; }
dir=$(mktemp -d build/flags_test_XXXXXX) || exit 1
printf '{"vocab_size": 1269, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2}\n' > "$dir/tiny.json"
awk -F'\t' '{print $2 "\t" $4}' tests/data/classify_cola_train.tsv > "$dir/train.tsv"
V=tests/data/classify_vocab.txt
progs="finetune_own|--train $dir/train.tsv --vocab $V --config $dir/tiny.json --out $dir/o1
classify|--task cola --do_train --train_file tests/data/classify_cola_train.tsv --vocab $V --config $dir/tiny.json --out $dir/o2
pretrain|--text tests/data/encode_lines.txt --vocab $V --config $dir/tiny.json --out $dir/o3
ner|--do_train --train_file tests/data/ner_sample.json --vocab tests/data/ner_vocab.txt --config $dir/tiny.json --out $dir/o4
squad|--do_train --train_file tests/data/squad_eval_cases.json --vocab $V --config $dir/tiny.json --output_dir $dir/o5"
# flag value (the flag's name must appear in the one-line error)
bad="lr -1
lr nan
lr inf
end_lr -0.5
poly_power -1
beta1 2
beta2 -0.1
eps 0
momentum 1
weight_decay -0.01
clip_norm -1
warmup_proportion 1.5
warmup_steps -2
batch_size 0
batch_size 99999999
accumulation_steps 0
steps -5
epochs 0
keep 0
print_every 0
max_bad_steps 0
save_every -1
eval_every -3
max_memory_mb -1
threads -1
optimizer adam
epochs 99999999999999999999
batch_size 12abc
lr 1e99"
echo "$progs" | while IFS='|' read -r prog args; do
    echo "$bad" | while read -r flag value; do
        timeout 10 "$B/$prog" $args --$flag "$value" > "$dir/out" 2>&1; rc=$?
        lines=$(wc -l < "$dir/out")
        if [ $rc = 1 ] && [ "$lines" -le 2 ] && grep -q -- "--$flag" "$dir/out" && ! grep -q 'runtime error\|Sanitizer' "$dir/out"; then echo ok
        else echo "FAIL $prog --$flag $value: exit $rc: $(head -2 "$dir/out" | tr '\n' ' ')"; fi
    done
done > "$dir/results"
n=$(grep -c '^ok' "$dir/results"); bad_lines=$(grep '^FAIL' "$dir/results")
[ -z "$bad_lines" ]; check $? "$(echo "$bad" | wc -l) bad values x $(echo "$progs" | wc -l) training programs: exit 1, one line naming the flag ($n ok)"
[ -n "$bad_lines" ] && echo "$bad_lines" | head -20 | sed 's/^/         /'
# an epoch count whose step count overflows an int is refused, not wrapped
timeout 10 "$B/finetune_own" --train "$dir/train.tsv" --vocab $V --config "$dir/tiny.json" --out "$dir/o6" --epochs 2000000000 --batch_size 1 > "$dir/out" 2>&1; rc=$?
[ $rc = 1 ] && grep -q 'more than 2^31-1' "$dir/out"; check $? "--epochs 2e9 over 43 examples: refused, not wrapped (exit $rc: $(head -1 "$dir/out"))"
# --max_memory_mb: a cap below the run's needs is refused before the run writes anything (no log, no
# checkpoint), with the figures; a cap above them starts the run and prints its share
sed 's/"vocab_size": 1269/"vocab_size": 184/' "$dir/tiny.json" > "$dir/tiny_ner.json"
printf '{"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "the cat sat on the mat in the house", "qas": [{"id": "q1", "question": "where did the cat sit", "answers": [{"text": "the mat", "answer_start": 15}]}, {"id": "q2", "question": "what sat", "answers": [{"text": "cat", "answer_start": 4}]}]}]}]}\n' > "$dir/squad.json"
memprogs="classify|--task cola --do_train --train_file tests/data/classify_cola_train.tsv --vocab $V --config $dir/tiny.json --max_seq_length 64 --out $dir/o2
pretrain|--text tests/data/encode_lines.txt --vocab $V --config $dir/tiny.json --batch_size 4 --max_seq_length 64 --out $dir/o3
ner|--do_train --train_file tests/data/ner_sample.json --vocab tests/data/ner_vocab.txt --config $dir/tiny_ner.json --max_seq_length 64 --out $dir/o4
squad|--do_train --train_file $dir/squad.json --vocab $V --config $dir/tiny.json --max_seq_length 64 --doc_stride 32 --max_query_length 16 --train_batch_size 2 --output_dir $dir/o5"
echo "$memprogs" | while IFS='|' read -r prog args; do
    rm -rf "$dir/o2" "$dir/o3" "$dir/o4" "$dir/o5"
    timeout 20 "$B/$prog" $args --max_memory_mb 1 > "$dir/out" 2>&1; rc=$?
    if [ $rc = 1 ] && grep -q 'max_memory_mb 1: this run needs [0-9.]* MB (params + grads' "$dir/out" && \
       [ -z "$(find "$dir" -name log.jsonl -o -name 'ckpt-*')" ]; then echo ok
    else echo "FAIL $prog --max_memory_mb 1: exit $rc: $(head -2 "$dir/out" | tr '\n' ' ')"; fi
    rm -rf "$dir/o2" "$dir/o3" "$dir/o4" "$dir/o5"
    timeout 60 "$B/$prog" $args --max_memory_mb 4096 --steps 1 > "$dir/out" 2>&1; rc=$?
    if [ $rc = 0 ] && grep -q 'memory [0-9.]* MB of --max_memory_mb 4096' "$dir/out"; then echo ok
    else echo "FAIL $prog --max_memory_mb 4096: exit $rc: $(head -2 "$dir/out" | tr '\n' ' ')"; fi
done > "$dir/results"
bad_lines=$(grep '^FAIL' "$dir/results")
[ -z "$bad_lines" ] && [ "$(grep -c '^ok' "$dir/results")" = 8 ]; check $? "--max_memory_mb: 4 training programs refuse a cap of 1 MB before any log or checkpoint, run under 4096 MB"
[ -n "$bad_lines" ] && echo "$bad_lines" | sed 's/^/         /'
timeout 10 "$B/finetune_own" --train "$dir/train.tsv" --vocab $V --config "$dir/tiny.json" --out "$dir/o7" --max_memory_mb 100 > "$dir/out" 2>&1; rc=$?
[ $rc = 1 ] && grep -q 'does not measure its step' "$dir/out"; check $? "--max_memory_mb in a program that gives no measure: refused, not ignored (exit $rc)"
# --tokenizer: every tokenizing program takes it (bert_vocab_set_mode). A private-use character and a
# 150-character word: Google's tokenization.py keeps U+E000 (so "\ue000cat" is [UNK]) and splits the
# word into pieces; Hugging Face's BertTokenizer drops U+E000 ("cat") and makes the word [UNK]
printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\ncat\nab\n##ab\n' > "$dir/tok_vocab.txt"
printf 'the \356\200\200cat %s\n' "$(printf 'ab%.0s' $(seq 75))" > "$dir/tok.txt"
want_g="2 4 1 6$(printf ' 7%.0s' $(seq 74)) 3"
"$B/encode" --ids --vocab "$dir/tok_vocab.txt" --input "$dir/tok.txt" > "$dir/g.out" 2>&1; rg=$?
"$B/encode" --ids --vocab "$dir/tok_vocab.txt" --input "$dir/tok.txt" --tokenizer google > "$dir/g2.out" 2>&1
"$B/encode" --ids --vocab "$dir/tok_vocab.txt" --input "$dir/tok.txt" --tokenizer hf > "$dir/h.out" 2>&1; rh=$?
[ $rg = 0 ] && [ $rh = 0 ] && [ "$(cat "$dir/g.out")" = "$want_g" ] && cmp -s "$dir/g.out" "$dir/g2.out" && [ "$(cat "$dir/h.out")" = "2 4 5 1 3" ]
check $? "encode --ids: the default (= --tokenizer google) keeps U+E000 and splits a 150-character word; --tokenizer hf drops U+E000, the word [UNK] ($(cut -c1-24 "$dir/g.out")... | $(cat "$dir/h.out"))"
for prog in encode classify ner pretrain squad create_pretraining_data; do
    "$B/$prog" --tokenizer spacy > "$dir/out" 2>&1; rc=$?
    [ $rc = 1 ] && [ "$(wc -l < "$dir/out")" = 1 ] && grep -q 'tokenizer must be google or hf' "$dir/out"
    check $? "$prog --tokenizer spacy: one line, exit $rc"
done
[ $fail = 0 ] && rm -rf "$dir"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
