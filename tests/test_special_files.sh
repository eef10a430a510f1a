#!/bin/sh
# test_special_files.sh - every program refuses a FIFO, a device or a directory given as an input
# file, with one line naming it, at once (a FIFO with no writer would block forever, /dev/zero never
# ends); programs run with `timeout 10`, so a hang fails the check instead of the suite.
# Needs the example binaries in BUILD (default build). Ends with "N passed, N failed".
B=${BUILD:-build}
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "  ok   $2"; else fail=$((fail + 1)); echo "  FAIL $2"; fi; }
dir=$(mktemp -d build/special_files_test_XXXXXX) || exit 1
mkfifo "$dir/fifo" || { echo "skipped: mkfifo failed"; echo "0 passed, 0 failed"; exit 0; }
mkdir "$dir/adir"
printf '{"vocab_size": 1269, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2}\n' > "$dir/tiny.json"
V=tests/data/classify_vocab.txt
# program | its flags with @ where the special file goes
cases="pretrain|--config $dir/tiny.json --input @ --out $dir/o1
pretrain|--config $dir/tiny.json --text tests/data/encode_lines.txt --vocab @ --out $dir/o2
pretrain|--config $dir/tiny.json --text @ --vocab $V --out $dir/o3
pretrain|--config @ --text tests/data/encode_lines.txt --vocab $V --batch_size 2 --eval_records 1 --out $dir/o4
classify|--task cola --do_train --train_file @ --vocab $V --config $dir/tiny.json --out $dir/o5
classify|--task cola --do_train --train_file tests/data/classify_cola_train.tsv --vocab @ --config $dir/tiny.json --out $dir/o6
classify|--task cola --do_train --train_file tests/data/classify_cola_train.tsv --vocab $V --init @ --out $dir/o7
ner|--do_train --train_file @ --vocab tests/data/ner_vocab.txt --config $dir/tiny.json --out $dir/o8
squad|--do_train --train_file @ --vocab $V --config $dir/tiny.json --output_dir $dir/o9
squad|--do_predict --predict_file @ --vocab $V --config $dir/tiny.json --output_dir $dir/o10
encode|--ids --vocab @ --input tests/data/encode_lines.txt
encode|--vocab $V --model @ --input tests/data/encode_lines.txt
create_pretraining_data|--input_file @ --vocab_file $V --output_file $dir/o.tfrecord
create_pretraining_data|--input_file tests/data/encode_lines.txt --vocab_file @ --output_file $dir/o.tfrecord
finetune_own|--train @ --vocab $V --config $dir/tiny.json --out $dir/o11"
for special in "$dir/fifo:a FIFO" "/dev/zero:a device" "$dir/adir:a directory"; do
    path=${special%%:*}; what=${special#*:}
    [ -e "$path" ] || continue
    echo "$cases" | while IFS='|' read -r prog args; do
        a=$(echo "$args" | sed "s|@|$path|")
        start=$(date +%s)
        timeout 10 "$B/$prog" $a > "$dir/out" 2>&1; rc=$?
        secs=$(( $(date +%s) - start ))
        if [ $rc = 1 ] && grep -q "$path" "$dir/out" && [ $secs -le 2 ]; then echo "ok $prog ${args%% *}"; else echo "FAIL $prog $a -> exit $rc in ${secs}s: $(tail -1 "$dir/out")"; fi
    done > "$dir/results"
    n=$(grep -c '^ok' "$dir/results"); bad=$(grep '^FAIL' "$dir/results")
    [ -z "$bad" ]; check $? "$what as each of $(echo "$cases" | wc -l) input flags of 8 programs: exit 1 within 2 s, the path named ($n ok)"
    [ -n "$bad" ] && echo "$bad" | sed 's/^/         /'
done
[ $fail = 0 ] && rm -rf "$dir"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
