#!/bin/sh
# make_seeds.sh OUT_DIR - seed corpora for the fuzz targets, cut down from ../shared/data and the
# committed fixtures (small excerpts made here, never whole copied files). Missing sources are skipped.
set -u
out=$1; data=../shared/data
mkdir -p "$out/json" "$out/config" "$out/safetensors" "$out/vocab" "$out/tokenizer" "$out/tfrecord"
for f in $data/tf_ckpt/*/bert_config.json; do [ -f "$f" ] && cp "$f" "$out/config/$(basename "$(dirname "$f")").json"; done
[ -f $data/squad/dev-v1.1.json ] && head -c 3000 $data/squad/dev-v1.1.json > "$out/json/squad_head.json"
[ -f $data/cluener2020/dev.json ] && head -n 3 $data/cluener2020/dev.json | tail -n 1 > "$out/json/cluener_line.json"
[ -f $data/tnews/dev_few_all.json ] && head -n 1 $data/tnews/dev_few_all.json > "$out/json/tnews_line.json"
printf '{"a": [1, 2.5e-3, "x\\u00e9", {"b": null}], "c": true}' > "$out/json/mixed.json"
cp "$out"/config/*.json "$out/json/" 2>/dev/null
[ -f $data/vocab/bert_uncased_vocab.txt ] && head -n 300 $data/vocab/bert_uncased_vocab.txt > "$out/vocab/uncased_300.txt"
[ -f $data/vocab/bert_chinese_vocab.txt ] && sed -n '1,120p;670,760p' $data/vocab/bert_chinese_vocab.txt > "$out/vocab/chinese_part.txt"
[ -f $data/bert_sample/sample_text.txt ] && head -c 1500 $data/bert_sample/sample_text.txt > "$out/tokenizer/sample.txt"
[ -f $data/cluener2020/dev.json ] && head -c 1200 $data/cluener2020/dev.json > "$out/tokenizer/cluener.txt"
printf 'Caf\xc3\xa9 na\xc3\xafve \xe5\x8c\x97\xe4\xba\xac \xf0\x9f\x98\x80 \xff\xfe bad\n' > "$out/tokenizer/mixed.txt"
# the first two records of Google's TFRecord, and one record alone
if [ -f $data/pretrain_tfrecord/tf_examples.tfrecord ]; then
    head -c 1700 $data/pretrain_tfrecord/tf_examples.tfrecord > "$out/tfrecord/two_records.tfrecord"
fi
# small safetensors made by the test fixtures' generator: the tiny reference model's header + a cut
for f in tests/ref/tiny.safetensors tests/ref/encode_ref.safetensors; do
    [ -f "$f" ] && head -c 4096 "$f" > "$out/safetensors/$(basename "$f" .safetensors)_head.safetensors"
done
[ -f tests/ref/encode_ref.safetensors ] && cp tests/ref/encode_ref.safetensors "$out/safetensors/encode_ref_small.safetensors"
mkdir -p "$out/classify" "$out/ner" "$out/squad"
[ -f $data/cola/in_domain_dev.tsv ] && head -n 5 $data/cola/in_domain_dev.tsv > "$out/classify/cola.tsv"
[ -f $data/glue/MRPC/dev.tsv ] && head -n 4 $data/glue/MRPC/dev.tsv > "$out/classify/mrpc.tsv"
[ -f $data/tnews/dev_few_all.json ] && head -n 3 $data/tnews/dev_few_all.json > "$out/classify/tnews.json"
[ -f $data/cluener2020/dev.json ] && head -n 1 $data/cluener2020/dev.json > "$out/ner/dev1.json"
[ -f $data/cluener2020/test.json ] && head -n 1 $data/cluener2020/test.json > "$out/ner/test1.json"
# a valid SQuAD file of one paragraph with its questions, cut from dev
[ -f $data/squad/dev-v1.1.json ] && /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
a = d["data"][0]; a["paragraphs"] = a["paragraphs"][:1]
json.dump({"version": d["version"], "data": [a]}, open(sys.argv[2], "w"))' $data/squad/dev-v1.1.json "$out/squad/one_paragraph.json" 2>/dev/null
exit 0
