#!/usr/bin/env bash
# pretrain_demo.sh [STEPS] - the README's pretraining demonstration: a BERT with L=4, H=256 (BERT-Mini
# shape, uncased vocab) pretrained from scratch on public text from ../shared/data (SQuAD v1.1 dev
# contexts + Google's sample_text.txt), with held-out masked-LM accuracy, then the same config's
# training-step throughput in PyTorch (../shared/bench/torch_bert.py) for comparison.
# Output in build/pretrain_demo/ (log.jsonl, curve.svg, checkpoints, summary.txt).
set -eu
cd "$(dirname "$0")/.."
STEPS=${1:-600}
OUT=build/pretrain_demo
DATA=../shared/data
PY=/usr/bin/python3
mkdir -p "$OUT"
make -s build/pretrain build/create_pretraining_data
cp bench/bert_mini.json "$OUT/bert_config.json"   # BERT-Mini's shape, uncased vocab
$PY tools/squad_to_text.py $DATA/squad/dev-v1.1.json > "$OUT/squad_contexts.txt"
./build/create_pretraining_data --input_file "$OUT/squad_contexts.txt" --input_file $DATA/bert_sample/sample_text.txt \
    --vocab_file $DATA/vocab/bert_uncased_vocab.txt --output_file "$OUT/data.tfrecord" --dupe_factor 5 | tee "$OUT/summary.txt"
rm -rf "$OUT/run"
./build/pretrain --input "$OUT/data.tfrecord" --config "$OUT/bert_config.json" --out "$OUT/run" \
    --optimizer lamb --lr 2e-3 --warmup_proportion 0.1 --batch_size 32 --steps "$STEPS" \
    --eval_records 512 --eval_every $((STEPS / 6)) --save_every $((STEPS / 2)) --print_every 25 | tee -a "$OUT/summary.txt"
lscpu | grep -m1 'Model name' | tee -a "$OUT/summary.txt"
# PyTorch on the same config (training step, batch 32, seq 128, 20 predictions), as bench/run.sh runs it
# (torch needs OpenBLAS, not Debian's reference BLAS: the one bench/run.sh fetches into bench/deps)
OB=""
for d in /usr/lib/x86_64-linux-gnu/openblas-pthread bench/deps/openblas-pthread; do [ -f "$d/libblas.so.3" ] && OB=$d; done
if [ -z "$OB" ]; then echo "no OpenBLAS for torch: run 'make bench-quick' once (it fetches it), then this again"; exit 0; fi
CORE=""; grep -qw avx512_bf16 /proc/cpuinfo && CORE=Cooperlake
if $PY -c 'import torch' 2>/dev/null; then
  env -u OPENBLAS_CORETYPE LD_LIBRARY_PATH="$OB" ${CORE:+OPENBLAS_CORETYPE=$CORE} OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=2 \
  $PY - <<'PYEOF' | tee -a "$OUT/summary.txt"
import sys
sys.path.insert(0, "../shared/bench")
import torch_bert
torch_bert.CONFIGS["mini"] = dict(hidden=256, layers=4, heads=4, ffn=1024)
sys.argv = ["torch_bert.py", "--config", "mini", "--mode", "train", "--batch", "32", "--iters", "10"]
torch_bert.main()
PYEOF
fi
