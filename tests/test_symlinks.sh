#!/bin/sh
# test_symlinks.sh - a symlink planted at every name a program writes (its outputs, their temp files,
# the run layer's files) is replaced or refused, never written through: the file it points to stays
# byte for byte what it was, and the outputs end up as regular files. BUILD: the binaries' folder.
# Ends with "N passed, N failed".
B=${BUILD:-build}
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "  ok   $2"; else fail=$((fail + 1)); echo "  FAIL $2"; fi; }
dir=$(mktemp -d build/symlinks_test_XXXXXX) || exit 1
V=tests/data/classify_vocab.txt
printf '{"vocab_size": 1269, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2}\n' > "$dir/tiny.json"
printf '{"vocab_size": %d, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2}\n' "$(wc -l < tests/data/ner_vocab.txt)" > "$dir/ner.json"
printf precious > "$dir/victim"
plant() {   # plant DIR NAME...: symlinks to the victim at DIR/NAME and DIR/NAME.tmp
    d=$1; shift; mkdir -p "$d"
    for n in "$@"; do ln -sf "$PWD/$dir/victim" "$d/$n"; ln -sf "$PWD/$dir/victim" "$d/$n.tmp"; done
}
outcome() {   # outcome RC LABEL FILE...: the victim intact, and each FILE a regular file
    ok=0; [ "$(cat "$dir/victim")" = precious ] || ok=1
    rc=$1; label=$2; shift 2
    for f in "$@"; do [ -f "$f" ] && [ ! -L "$f" ] || ok=1; done
    check $ok "$label (exit $rc)"
}
# classify: model, config.json, eval_results.json, predictions, best.txt; the run layer's run_id
plant "$dir/cls" model.safetensors config.json eval_results.json test_predictions.tsv best.txt
$B/classify --task cola --do_train --do_eval --do_predict --train_file tests/data/classify_cola_train.tsv --dev_file tests/data/classify_cola_dev.tsv \
    --test_file tests/data/classify_cola_dev.tsv --predict_format tsv --vocab $V --config "$dir/tiny.json" --max_seq_length 64 --epochs 1 --batch_size 16 --overwrite --out "$dir/cls" > "$dir/cls.out" 2>&1
outcome $? "classify: symlinks at model.safetensors, config.json, eval_results.json, test_predictions.tsv, best.txt and their .tmp" \
    "$dir/cls/model.safetensors" "$dir/cls/config.json" "$dir/cls/eval_results.json" "$dir/cls/test_predictions.tsv"
# ner: model, config.json, dev_results.json, the submission file
plant "$dir/ner" model.safetensors config.json dev_results.json pred.json
$B/ner --do_train --do_eval --do_predict --train_file tests/data/ner_sample.json --dev_file tests/data/ner_sample.json --test_file tests/data/ner_test_sample.json \
    --predict_file "$dir/ner/pred.json" --vocab tests/data/ner_vocab.txt --config "$dir/ner.json" --steps 2 --max_seq_length 32 --overwrite --out "$dir/ner" > "$dir/ner.out" 2>&1
outcome $? "ner: symlinks at model.safetensors, config.json, dev_results.json, the submission file and their .tmp" \
    "$dir/ner/model.safetensors" "$dir/ner/config.json" "$dir/ner/dev_results.json" "$dir/ner/pred.json"
# pretrain --text: the generated TFRecord
plant "$dir/pt" text_data.tfrecord
$B/pretrain --text examples/data/sample_text.txt --vocab $V --config "$dir/tiny.json" --batch_size 4 --steps 2 --max_seq_length 64 --overwrite --out "$dir/pt" > "$dir/pt.out" 2>&1
outcome $? "pretrain --text: a symlink at text_data.tfrecord and its .tmp" "$dir/pt/text_data.tfrecord"
# squad: model, predictions.json, nbest_predictions.json; squad --eval --eval_details
printf '{"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "the cat sat on the mat in the house", "qas": [{"id": "q1", "question": "where did the cat sit", "answers": [{"text": "the mat", "answer_start": 15}]}, {"id": "q2", "question": "what sat", "answers": [{"text": "cat", "answer_start": 4}]}]}]}]}\n' > "$dir/squad.json"
plant "$dir/sq" model.safetensors predictions.json nbest_predictions.json details.jsonl
$B/squad --do_train --do_predict --train_file "$dir/squad.json" --predict_file "$dir/squad.json" --vocab $V --config "$dir/tiny.json" --max_seq_length 64 \
    --doc_stride 32 --max_query_length 16 --train_batch_size 2 --steps 2 --overwrite --output_dir "$dir/sq" > "$dir/sq.out" 2>&1
outcome $? "squad: symlinks at model.safetensors, predictions.json, nbest_predictions.json and their .tmp" \
    "$dir/sq/model.safetensors" "$dir/sq/predictions.json" "$dir/sq/nbest_predictions.json"
$B/squad --eval "$dir/squad.json" "$dir/sq/predictions.json" --eval_details "$dir/sq/details.jsonl" > "$dir/sqe.out" 2>&1
outcome $? "squad --eval --eval_details: a symlink at the details file and its .tmp" "$dir/sq/details.jsonl"
# squad on a SQuAD 2.0 file: null_odds.json too
printf '{"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": "the cat sat on the mat in the house", "qas": [{"id": "q1", "question": "where did the cat sit", "answers": [{"text": "the mat", "answer_start": 15}], "is_impossible": false}, {"id": "q2", "question": "what flew", "answers": [], "is_impossible": true}]}]}]}\n' > "$dir/squad2.json"
plant "$dir/sq2" predictions.json nbest_predictions.json null_odds.json
$B/squad --do_predict --debug_logits oracle --predict_file "$dir/squad2.json" --vocab $V --max_seq_length 64 --doc_stride 32 \
    --max_query_length 16 --output_dir "$dir/sq2" > "$dir/sq2.out" 2>&1
outcome $? "squad v2.0: symlinks at predictions.json, nbest_predictions.json, null_odds.json and their .tmp" \
    "$dir/sq2/predictions.json" "$dir/sq2/nbest_predictions.json" "$dir/sq2/null_odds.json"
# encode --output, create_pretraining_data --output_file, the demo's vocab.txt writer (bert_vocab_save)
plant "$dir/misc" e.jsonl d.tfrecord
$B/encode --ids --vocab $V --input tests/data/encode_lines.txt --output "$dir/misc/e.jsonl" > "$dir/enc.out" 2>&1
outcome $? "encode --output: a symlink at the output and its .tmp" "$dir/misc/e.jsonl"
$B/create_pretraining_data --input_file examples/data/sample_text.txt --vocab_file $V --output_file "$dir/misc/d.tfrecord" > "$dir/cpd.out" 2>&1
outcome $? "create_pretraining_data --output_file: a symlink at the output and its .tmp" "$dir/misc/d.tfrecord"
[ $fail = 0 ] && rm -rf "$dir"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
