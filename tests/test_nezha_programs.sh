#!/bin/sh
# test_nezha_programs.sh - every program takes a NEZHA model through its config (issue 25): pretrain
# (masked LM only, --next_sentence=false), classify, ner, squad and encode on tiny NEZHA models of both
# flavours (Huawei's fixed table, MindSpore's learned tables) made from the excerpts in tests/data; the
# files they write say NEZHA (config keys, nezha.* names, no position table, transformers' model_type),
# --remove_padding changes nothing, and a fine-tuned NEZHA model reloads to the same predictions.
# Needs the example binaries (make builds them). Ends with "N passed, N failed".
B=${BUILD:-build}
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "  ok   $2"; else fail=$((fail + 1)); echo "  FAIL $2"; fi; }
dir=$(mktemp -d "$B/nezha_programs_XXXXXX") || exit 1
V=tests/data/classify_vocab.txt
# the st header's JSON (names, dtypes, __metadata__): enough to read names and the config here
header() { od -An -tu8 -N8 "$1" | { read n; tail -c +9 "$1" | head -c "$n"; }; }

tiny='"vocab_size": 1269, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2'
printf '{%s, "use_relative_position": true, "max_relative_position": 4}\n' "$tiny" > "$dir/huawei.json"
printf '{%s, "use_relative_positions": true, "max_relative_position": 3, "relative_position_flavour": "mindspore"}\n' "$tiny" > "$dir/mindspore.json"

# 1. pretrain from text, masked LM only
awk -F'\t' '{print $4} NR % 6 == 0 {print ""}' tests/data/classify_cola_train.tsv > "$dir/text.txt"
for f in huawei mindspore; do
    $B/pretrain --text "$dir/text.txt" --vocab $V --config "$dir/$f.json" --next_sentence=false --max_seq_length 32 \
        --max_predictions_per_seq 5 --dupe_factor 2 --batch_size 4 --steps 6 --save_every 6 --eval_records 4 --threads 1 \
        --out "$dir/pre_$f" > "$dir/pre_$f.out" 2>&1; rc=$?
    ck=$(ls -d "$dir/pre_$f"/ckpt-* 2>/dev/null | tail -1)
    [ $rc = 0 ] && [ -n "$ck" ] && grep -q "NEZHA K=" "$dir/pre_$f.out" && grep -q 'mlm_loss' "$dir/pre_$f.out" && ! grep -q 'nsp_loss' "$dir/pre_$f.out"
    check $? "$f: pretrain --next_sentence=false: 6 steps, the setup line says NEZHA, masked-LM metrics only (exit $rc)"
    h=$(header "$ck/model.safetensors")
    echo "$h" | grep -q 'nezha.encoder.layer.1.attention.self.query.weight' && ! echo "$h" | grep -q 'position_embeddings.weight' &&
        echo "$h" | grep -q 'use_relative_position\\": true'
    check $? "$f: the checkpoint has nezha.* names, no position table, the relative-position config"
    n=$(echo "$h" | grep -o 'relative_positions_embeddings.weight' | wc -l)
    if [ $f = mindspore ]; then [ "$n" = 2 ]; else [ "$n" = 0 ]; fi
    check $? "$f: learned relative tables in the checkpoint: $n (mindspore: one per layer)"
    grep -q '"model_type": "nezha"' "$ck/config.json" && grep -q 'NezhaForPreTraining' "$ck/config.json"
    check $? "$f: config.json for transformers says model_type nezha, NezhaForPreTraining"
done

# 2. classify from the pretrained NEZHA (huawei) and from a random mindspore one
for f in huawei mindspore; do
    init="--init $(ls -d "$dir/pre_$f"/ckpt-* | tail -1)"
    $B/classify --task cola --train_file tests/data/classify_cola_train.tsv --dev_file tests/data/classify_cola_dev.tsv \
        --vocab $V $init --do_train --do_eval --steps 8 --batch_size 8 --max_seq_length 32 --threads 1 --seed 3 \
        --out "$dir/cls_$f" > "$dir/cls_$f.out" 2>&1; rc=$?
    [ $rc = 0 ] && grep -q '^eval .*accuracy' "$dir/cls_$f.out" && [ -s "$dir/cls_$f/model.safetensors" ]
    check $? "$f: classify fine-tunes the pretrained NEZHA: 8 steps, dev accuracy printed (exit $rc)"
    header "$dir/cls_$f/model.safetensors" | grep -q 'relative_position_flavour'
    check $? "$f: the fine-tuned model keeps the NEZHA config"
done
# the fine-tuned model: the same dev predictions after reloading, with --remove_padding too
for rp in "" "--remove_padding"; do
    $B/classify --task cola --dev_file tests/data/classify_cola_dev.tsv --vocab $V --init "$dir/cls_huawei/model.safetensors" \
        --do_eval --max_seq_length 32 --threads 1 --eval_batch_size 5 $rp --out "$dir/cls_eval$rp" > "$dir/cls_eval$rp.out" 2>&1
done
a=$(grep -m1 '^eval .*accuracy' "$dir/cls_eval.out" | sed 's/.*| accuracy/accuracy/'); b=$(grep -m1 '^eval .*accuracy' "$dir/cls_eval--remove_padding.out" | sed 's/.*| accuracy/accuracy/')
[ -n "$a" ] && [ "$a" = "$b" ]
check $? "classify --do_eval of the fine-tuned NEZHA, with and without --remove_padding: the same metrics ($a)"

# 3. ner (CRF) on a random NEZHA of each flavour
for f in huawei mindspore; do
    sed 's/"vocab_size": 1269/"vocab_size": '"$(wc -l < tests/data/ner_vocab.txt)"'/' "$dir/$f.json" > "$dir/ner_$f.json"
    $B/ner --do_train --do_eval --train_file tests/data/ner_sample.json --dev_file tests/data/ner_sample.json \
        --vocab tests/data/ner_vocab.txt --config "$dir/ner_$f.json" --use_crf --max_seq_length 48 --batch_size 8 --steps 6 \
        --threads 1 --out "$dir/ner_$f" > "$dir/ner_$f.out" 2>&1; rc=$?
    [ $rc = 0 ] && grep -qi 'f1' "$dir/ner_$f.out" && header "$dir/ner_$f/model.safetensors" | grep -q 'nezha.encoder'
    check $? "$f: ner --use_crf trains and evaluates a NEZHA model, saved with nezha.* names (exit $rc)"
done

# 4. squad on a tiny v1.1 file
cat > "$dir/squad.json" <<'EOF'
{"version": "1.1", "data": [{"title": "t", "paragraphs": [
 {"context": "The more he reads, the more books he buys. Our friends will buy this analysis.",
  "qas": [{"id": "q1", "question": "Who will buy this analysis?", "answers": [{"text": "Our friends", "answer_start": 43}]},
          {"id": "q2", "question": "What does he buy?", "answers": [{"text": "books", "answer_start": 28}]}]}]}]}
EOF
$B/squad --do_train --do_predict --train_file "$dir/squad.json" --predict_file "$dir/squad.json" --vocab $V \
    --config "$dir/mindspore.json" --max_seq_length 32 --doc_stride 8 --max_query_length 10 --train_batch_size 2 --steps 4 \
    --threads 1 --output_dir "$dir/squad" > "$dir/squad.out" 2>&1; rc=$?
[ $rc = 0 ] && grep -q '"q1"' "$dir/squad/predictions.json" && header "$dir/squad/model.safetensors" | grep -q 'relative_positions_embeddings'
check $? "squad trains and predicts with a NEZHA (learned tables) model (exit $rc)"

# 5. encode: embeddings of the pretrained NEZHA, padded and packed alike
cat tests/data/encode_lines.txt > "$dir/lines.txt"
for rp in "" "--remove_padding"; do
    $B/encode --model "$(ls -d "$dir/pre_huawei"/ckpt-* | tail -1)" --vocab $V --input "$dir/lines.txt" --batch_size 7 $rp \
        --output "$dir/emb$rp.jsonl" > "$dir/enc$rp.out" 2>&1
done
[ "$(wc -l < "$dir/emb.jsonl")" = "$(wc -l < tests/data/encode_lines.txt)" ] && /usr/bin/python3 - "$dir/emb.jsonl" "$dir/emb--remove_padding.jsonl" <<'EOF'
import json, sys
a = [json.loads(l)["pooled"] for l in open(sys.argv[1])]
b = [json.loads(l)["pooled"] for l in open(sys.argv[2])]
sys.exit(0 if len(a) == len(b) and max(abs(x - y) for u, v in zip(a, b) for x, y in zip(u, v)) <= 1e-5 else 1)
EOF
check $? "encode: $(wc -l < tests/data/encode_lines.txt) embeddings from the pretrained NEZHA; --remove_padding gives the same (1e-5)"

# bad configs: one line each, non-zero exit
printf '{%s, "use_relative_position": "yes"}\n' "$tiny" > "$dir/bad1.json"
printf '{%s, "use_relative_position": true, "relative_position_flavour": "google"}\n' "$tiny" > "$dir/bad2.json"
printf '{%s, "use_relative_position": true, "max_relative_position": 0}\n' "$tiny" > "$dir/bad3.json"
for k in 1 2 3; do
    $B/classify --task cola --train_file tests/data/classify_cola_train.tsv --vocab $V --config "$dir/bad$k.json" --do_train --steps 1 \
        --out "$dir/bad_run" > /dev/null 2> "$dir/bad$k.err"; rc=$?
    [ $rc != 0 ] && [ "$(wc -l < "$dir/bad$k.err")" = 1 ] && grep -q "bad$k.json: bad config" "$dir/bad$k.err"
    check $? "bad NEZHA config $k refused in one line naming the file: $(cat "$dir/bad$k.err")"
done

[ $fail = 0 ] && rm -rf "$dir"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
