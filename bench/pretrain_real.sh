#!/usr/bin/env bash
# pretrain_real.sh [STEPS] - issue 27's pretraining run: a small BERT (L=4, H=256, A=4, F=1024, seq 128,
# uncased vocab, 11.3 M parameters) from random init on all the English text in ../shared/data
# (tools/build_corpus.py: SQuAD v1.1 dev contexts but the last 8 articles, sample_text.txt, the SST-2,
# CoLA and MRPC training sentences), the 8 held-out SQuAD articles as the held-out masked-LM set (never
# trained on; also the articles SQuAD fine-tuning is scored on). Masked LM + NSP as google-research/bert,
# bf16 mixed precision where the CPU has AVX512-BF16 (else fp32), LAMB lr 2e-3, batch 32, 10 % warmup.
# Resumable: run it again and it continues from its last checkpoint (--resume).
# Output: build/pretrain_real/ (corpus, TFRecords, run/ with log.jsonl, curve.svg, checkpoints).
# PT_LANG=zh: the Chinese run instead (build_corpus.py --lang zh: the TNEWS and CLUENER2020 training texts;
# held out: CLUENER2020's dev texts and 2,000 TNEWS dev titles), Google's Chinese vocabulary, the same
# shape (bench/bert_mini_chinese.json), into build/pretrain_real_zh/.
set -eu
cd "$(dirname "$0")/.."
STEPS=${1:-6000}
DATA=../shared/data
PY=/usr/bin/python3
case ${PT_LANG:-en} in
  en) OUT=build/pretrain_real; CONFIG=bench/bert_mini.json; VOCAB=$DATA/vocab/bert_uncased_vocab.txt ;;
  zh) OUT=build/pretrain_real_zh; CONFIG=bench/bert_mini_chinese.json; VOCAB=$DATA/vocab/bert_chinese_vocab.txt ;;
  *) echo "PT_LANG must be en or zh"; exit 1 ;;
esac
mkdir -p "$OUT"
make -s build/pretrain build/create_pretraining_data
cp $CONFIG "$OUT/bert_config.json"   # BERT-Mini's shape, the vocabulary's size
if [ ! -s "$OUT/train.tfrecord" ] || [ ! -s "$OUT/heldout.tfrecord" ]; then
  $PY tools/build_corpus.py $DATA "$OUT/corpus" --lang ${PT_LANG:-en} | tee "$OUT/corpus.txt"
  ./build/create_pretraining_data --input_file "$OUT/corpus/train.txt" --vocab_file $VOCAB \
      --output_file "$OUT/train.tfrecord" --dupe_factor 5 --random_seed 12345 | tee -a "$OUT/corpus.txt"
  ./build/create_pretraining_data --input_file "$OUT/corpus/heldout.txt" --vocab_file $VOCAB \
      --output_file "$OUT/heldout.tfrecord" --dupe_factor 1 --random_seed 777 | tee -a "$OUT/corpus.txt"
fi
PREC=fp32
grep -qw avx512_bf16 /proc/cpuinfo && PREC=bf16
RESUME=""
[ -d "$OUT/run" ] && ls -d "$OUT"/run/ckpt-* >/dev/null 2>&1 && RESUME=--resume
[ -z "$RESUME" ] && rm -rf "$OUT/run"
lscpu | grep -m1 'Model name'
./build/pretrain --input "$OUT/train.tfrecord" --eval_input "$OUT/heldout.tfrecord" --config "$OUT/bert_config.json" \
    --out "$OUT/run" --precision $PREC --optimizer lamb --lr 2e-3 --warmup_proportion 0.1 --batch_size 32 \
    --steps "$STEPS" --eval_every 250 --save_every 250 --keep 2 --print_every 50 --seed 12345 $RESUME
