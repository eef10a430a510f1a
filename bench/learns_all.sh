#!/usr/bin/env bash
# learns_all.sh - issue 27 end to end, in the order the README reports it: the corpora rebuilt from
# ../shared/data, both pretraining runs, fine-tuning from them against random init (3 seeds), the PyTorch
# parity runs, the curves. Each step is its own script (see its header); pretrain_real.sh continues from
# its last checkpoint, the fine-tuning scripts redo their runs. On the 2-vCPU machine this is 4-5 hours when nothing else runs, most of it
# the pretraining, SQuAD and SST-2 runs. Output under build/ (pretrain_real*, finetune_compare, parity), the
# SVGs in docs/.
#   STEPS_EN (6000), STEPS_ZH (4000): the pretraining runs' lengths; SEEDS ("1 2 3").
set -eu
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"1 2 3"}
step() { echo; echo "== $(date -u +%FT%TZ) $*"; }
step "English pretraining (bench/pretrain_real.sh ${STEPS_EN:-6000})"
bash bench/pretrain_real.sh "${STEPS_EN:-6000}"
step "Chinese pretraining (PT_LANG=zh bench/pretrain_real.sh ${STEPS_ZH:-4000})"
PT_LANG=zh bash bench/pretrain_real.sh "${STEPS_ZH:-4000}"
/usr/bin/python3 bench/pretrain_curves.py docs/pretrain_real_curves.svg build/pretrain_real/run:English build/pretrain_real_zh/run:Chinese
step "fine-tuning, random init against our pretrained init (bf16)"
PREC=bf16 bash bench/finetune_compare.sh "$SEEDS" "cola mrpc"
PREC=bf16 bash bench/finetune_compare.sh "$SEEDS" sst2
PREC=bf16 bash bench/finetune_compare.sh "$SEEDS" tnews
PREC=bf16 bash bench/finetune_compare.sh "$SEEDS" squad
step "parity with PyTorch: SST-2 from the English checkpoint, CLUENER from one random init and from the Chinese checkpoint"
SST2_RANDOM=1 bash bench/parity_runs.sh "$SEEDS" sst2   # also the same recipe from a random init
NER_LR=1e-3 PARITY_OUT=build/parity/cluener_lr1e-3 SVG_SUFFIX=_lr1e-3 bash bench/parity_runs.sh "$SEEDS" cluener
CLUENER_INIT=pretrained NER_LR=1e-3 PARITY_OUT=build/parity/cluener_pretrained SVG_SUFFIX=_pretrained \
    bash bench/parity_runs.sh "$SEEDS" cluener
step "done: build/finetune_compare/summary_*.txt, build/parity*/summary.txt, docs/*.svg"
