#!/bin/sh
# test_mpi.sh - data-parallel training over MPI (bert_mpi.h through examples/run.h), on this machine:
#   - 2 ranks x batch 4 against 1 rank x batch 8 and 1 rank x 2 accumulation steps x batch 4: the loss
#     of every step and the final weights within 1e-6 relative, 10 steps of LAMB and of AdamW, dropout
#     off (pretrain); the same over TCP only (--mca btl tcp,self, how two machines talk); classify too
#   - every record exactly once per epoch across the ranks (classify: a last, smaller batch split
#     between them; pretrain: whole global batches)
#   - a rank killed mid-run: the job ends non-zero within 30 s; --resume then ends bit-identical to an
#     uninterrupted 2-rank run
#   - ranks started with different options: one clear error, non-zero exit
# Needs mpicc and mpirun (apt-get install openmpi-bin libopenmpi-dev); without them one skip line.
# BUILD: where the single-process binaries are (default build); the MPI ones go to build/mpi.
# Ends with "N passed, N failed".
B=${BUILD:-build}
M=$B/mpi   # make MPI=1 builds there (under SAN=1, sanitized: build/san/mpi)
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "  ok   $2"; else fail=$((fail + 1)); echo "  FAIL $2"; fi; }
if ! command -v mpicc >/dev/null 2>&1 || ! command -v mpirun >/dev/null 2>&1; then
    echo "  skipped: mpicc/mpirun not found (apt-get install openmpi-bin libopenmpi-dev), data-parallel tests not run"
    echo "0 passed, 0 failed"; exit 0
fi
san=0; case $B in */san) san=1 ;; esac
if ! make -s MPI=1 SAN=$san $M/pretrain $M/classify > /dev/null 2> build/mpi_build.log; then
    cat build/mpi_build.log; check 1 "make MPI=1 builds pretrain and classify with mpicc"; echo "$pass passed, $fail failed"; exit 1
fi
for t in "$B/st_compare" "$B/create_pretraining_data"; do [ -x "$t" ] || make -s "$t" BUILD="$B" > /dev/null; done
# Open MPI: CI runs as root; several ranks on a 1-core machine; local traffic only
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
# under SAN=1 the ranks are sanitized too; Open MPI's own allocations live to the end by design
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
dir=$(mktemp -d build/mpi_test_XXXXXX) || exit 1
V=tests/data/classify_vocab.txt
printf '{"vocab_size": 1269, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}\n' > "$dir/tiny.json"
$B/create_pretraining_data --input_file examples/data/sample_text.txt --vocab_file $V --output_file "$dir/data.tfrecord" \
    --max_seq_length 64 --dupe_factor 10 --random_seed 7 > "$dir/cpd.out" 2>&1 || { cat "$dir/cpd.out"; exit 1; }
mpi() { timeout 120 mpirun -np 2 "$@"; }

losses() { grep '^{"step"' "$1/log.jsonl" | sed 's/.*"loss": \([^,]*\),.*/\1/'; }
# same_losses A B: every step's loss within 1e-6 relative (and the same number of steps)
same_losses() {
    losses "$1" > "$dir/la"; losses "$2" > "$dir/lb"
    [ "$(wc -l < "$dir/la")" -gt 0 ] && [ "$(wc -l < "$dir/la")" = "$(wc -l < "$dir/lb")" ] &&
        paste "$dir/la" "$dir/lb" | awk '{ d = $1 - $2; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2; if (d > 1e-6 * m) bad = 1 } END { exit bad }'
}
ckpt() { echo "$1/ckpt-$(printf %08d "$2")/model.safetensors"; }
# equivalent LABEL A B STEP: losses and weights of two runs within 1e-6 (the key biases reported apart)
equivalent() {
    same_losses "$2" "$3"; l=$?
    cmp=$($B/st_compare "$(ckpt "$2" "$4")" "$(ckpt "$3" "$4")" 1e-6 key.bias 2>&1); w=$?
    [ $l = 0 ] && [ $w = 0 ]; check $? "$1: losses of every step and weights within 1e-6 ($(echo "$cmp" | tr '\n' ' '))"
}

# ---- pretrain: 2 ranks x 4 = 1 rank x 8 = 1 rank x 4 x 2 accumulation, LAMB and AdamW
for opt in lamb adamw; do
    common="--input $dir/data.tfrecord --config $dir/tiny.json --max_seq_length 64 --steps 10 --optimizer $opt --lr 1e-3 --eval_records 0 --print_every 1 --seed 3"
    $B/pretrain $common --batch_size 8 --out "$dir/$opt.1x8" > "$dir/$opt.1x8.out" 2>&1
    $B/pretrain $common --batch_size 4 --accumulation_steps 2 --out "$dir/$opt.1x4x2" > "$dir/$opt.1x4x2.out" 2>&1
    mpi $M/pretrain $common --batch_size 4 --out "$dir/$opt.2x4" > "$dir/$opt.2x4.out" 2>&1; rc=$?
    [ $rc = 0 ] && grep -q 'global batch 8 = 4 per rank x 2 ranks' "$dir/$opt.2x4.out"; check $? "pretrain $opt, mpirun -np 2: exit $rc, the global batch reported"
    equivalent "pretrain $opt 2 ranks x 4 vs 1 rank x 8" "$dir/$opt.2x4" "$dir/$opt.1x8" 10
    equivalent "pretrain $opt 2 ranks x 4 vs 1 rank x 4 x 2 accumulation" "$dir/$opt.2x4" "$dir/$opt.1x4x2" 10
done
common="--input $dir/data.tfrecord --config $dir/tiny.json --max_seq_length 64 --steps 10 --optimizer lamb --lr 1e-3 --eval_records 0 --print_every 1 --seed 3"
mpi --mca btl tcp,self $M/pretrain $common --batch_size 4 --out "$dir/tcp" > "$dir/tcp.out" 2>&1; rc=$?
[ $rc = 0 ]; check $? "pretrain over TCP only (--mca btl tcp,self): exit $rc"
equivalent "pretrain lamb over TCP, 2 ranks x 4 vs 1 rank x 8" "$dir/tcp" "$dir/lamb.1x8" 10

# ---- every record once per epoch: pretrain's whole global batches, classify's smaller last one
n=$(grep -o '[0-9]* instances' "$dir/cpd.out" | grep -o '[0-9]*')
mpi $M/pretrain --input "$dir/data.tfrecord" --config "$dir/tiny.json" --max_seq_length 64 --epochs 1 --batch_size 4 --eval_records 0 \
    --debug_trace_records --out "$dir/epoch" > "$dir/epoch.out" 2> "$dir/epoch.err"
grep '^records rank' "$dir/epoch.err" | sed 's/.*://' | tr ' ' '\n' | grep . | sort -n > "$dir/seen"
full=$((n / 8 * 8))
[ "$(wc -l < "$dir/seen")" = $full ] && [ "$(uniq -d < "$dir/seen" | wc -l)" = 0 ] && [ "$(tail -1 "$dir/seen")" -lt "$n" ]
check $? "pretrain, 1 epoch on 2 ranks x 4: $full of $n records, each once ($(wc -l < "$dir/seen") seen, $(uniq -d < "$dir/seen" | wc -l) more than once)"
mpi $M/classify --task cola --do_train --train_file tests/data/classify_cola_train.tsv --vocab $V --config "$dir/tiny.json" \
    --max_seq_length 64 --epochs 2 --batch_size 4 --debug_trace_records --out "$dir/cls_epoch" > "$dir/cls_epoch.out" 2> "$dir/cls_epoch.err"; rc=$?
ok=0
for e in 0 1; do
    grep "^records rank [01] epoch $e:" "$dir/cls_epoch.err" | sed 's/.*://' | tr ' ' '\n' | grep . | sort -n > "$dir/seen"
    [ "$(wc -l < "$dir/seen")" = 43 ] && [ "$(uniq < "$dir/seen" | wc -l)" = 43 ] || ok=1
done
[ $rc = 0 ]; check $(( $? | ok )) "classify, 2 epochs of 43 examples on 2 ranks x 4 (a last global batch of 3 split 1 + 2): each record once per epoch (exit $rc)"

# ---- classify: 2 ranks x 4 = 1 rank x 8, over a last smaller batch (43 examples, 10 steps)
cc="--task cola --do_train --train_file tests/data/classify_cola_train.tsv --vocab $V --config $dir/tiny.json --max_seq_length 64 --steps 10 --lr 1e-3 --print_every 1 --save_every 10 --seed 5"
$B/classify $cc --batch_size 8 --out "$dir/cls1" > "$dir/cls1.out" 2>&1
mpi $M/classify $cc --batch_size 4 --out "$dir/cls2" > "$dir/cls2.out" 2>&1; rc=$?
[ $rc = 0 ]; check $? "classify, mpirun -np 2: exit $rc"
equivalent "classify 2 ranks x 4 vs 1 rank x 8 (AdamW, the epoch's last batch of 3 included)" "$dir/cls2" "$dir/cls1" 10

# ---- a rank killed mid-run: the job ends, non-zero, at once; --resume continues bit-identically
kc="--input $dir/data.tfrecord --config $dir/tiny.json --max_seq_length 64 --steps 12 --optimizer lamb --lr 1e-3 --eval_records 0 --seed 3 --batch_size 4 --save_every 4"
mpi $M/pretrain $kc --out "$dir/whole" > "$dir/whole.out" 2>&1
t0=$(date +%s)
mpi $M/pretrain $kc --out "$dir/killed" --debug_kill_at_step 6 --debug_kill_rank 1 > "$dir/killed.out" 2>&1; rc=$?
took=$(($(date +%s) - t0))
[ $rc != 0 ] && [ $took -lt 30 ]; check $? "rank 1 killed (SIGKILL) after step 6: the job exits $rc in ${took} s"
mpi $M/pretrain $kc --out "$dir/killed" --resume > "$dir/resumed.out" 2>&1; rc=$?
cmp=$($B/st_compare "$(ckpt "$dir/whole" 12)" "$(ckpt "$dir/killed" 12)" 0 2>&1); w=$?
[ $rc = 0 ] && grep -q 'resumed from .*ckpt-00000004' "$dir/resumed.out" && [ $w = 0 ]
check $? "--resume from step 4 on 2 ranks ends bit-identical to the uninterrupted run (exit $rc; $(echo "$cmp" | head -1))"

# ---- a 1-rank run resumed on 2 ranks: the global cursor goes on (re-sharded), with a note
$B/pretrain $kc --out "$dir/grow" --debug_kill_at_step 6 > "$dir/grow1.out" 2>&1
mpi $M/pretrain $kc --out "$dir/grow" --resume > "$dir/grow2.out" 2>&1; rc=$?
[ $rc = 0 ] && grep -q 'saved by a 1-rank run, continued on 2 ranks' "$dir/grow2.out" && [ -f "$(ckpt "$dir/grow" 12)" ]
check $? "a 1-rank checkpoint resumed on 2 ranks: re-sharded from the global data cursor, with a note (exit $rc)"

# ---- different options on the ranks: refused at once
timeout 60 mpirun -np 1 $M/pretrain $kc --out "$dir/mm" : -np 1 $M/pretrain $kc --out "$dir/mm" --lr 2e-3 > "$dir/mm.out" 2>&1; rc=$?
[ $rc != 0 ] && grep -q "command line differs from rank 0's" "$dir/mm.out" && [ ! -f "$dir/mm/log.jsonl" ]
check $? "ranks with different --lr: refused before training (exit $rc: $(grep -m1 'differs' "$dir/mm.out"))"

[ $fail = 0 ] && rm -rf "$dir"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
