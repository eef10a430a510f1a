#!/bin/sh
# bench_mpi.sh [ROUNDS] - data parallel against threads on this machine, side by side: pretraining
# BERT-mini (L=4, H=256, A=4, I=1024, T=128, dropout as Google's) on the repository's sample text,
# global batch 16, as 1 process x 2 OpenMP threads (batch 16) and as 2 MPI ranks x 1 thread (batch 8
# each), ROUNDS interleaved rounds (default 5). Prints samples/s (p_core: the training steps only)
# min/median/max of each, the ratio, and the allreduce's share of rank 0's step time.
# Needs mpicc/mpirun (make MPI=1). Run on an idle machine: both use every core.
set -eu
rounds=${1:-5}
B=build; M=build/mpi
make -s $B/pretrain $B/create_pretraining_data > /dev/null
make -s MPI=1 $M/pretrain > /dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
dir=$(mktemp -d build/bench_mpi_XXXXXX)
V=$(wc -l < tests/data/classify_vocab.txt)
printf '{"vocab_size": %d, "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024, "max_position_embeddings": 128, "type_vocab_size": 2}\n' "$V" > "$dir/mini.json"
$B/create_pretraining_data --input_file examples/data/sample_text.txt --vocab_file tests/data/classify_vocab.txt \
    --output_file "$dir/data.tfrecord" --max_seq_length 128 --dupe_factor 20 > /dev/null
common="--input $dir/data.tfrecord --config $dir/mini.json --max_seq_length 128 --steps 12 --eval_records 0 --print_every 100 --save_every 0"
core() { grep -o 'p_core [0-9.]*' "$1" | grep -o '[0-9.]*$'; }
: > "$dir/threads"; : > "$dir/ranks"; : > "$dir/share"
for i in $(seq "$rounds"); do
    rm -rf "$dir/o1" "$dir/o2"
    OMP_NUM_THREADS=2 $B/pretrain $common --batch_size 16 --threads 2 --out "$dir/o1" > "$dir/t.out" 2>&1
    core "$dir/t.out" >> "$dir/threads"
    OMP_NUM_THREADS=1 mpirun -np 2 --bind-to core $M/pretrain $common --batch_size 8 --threads 1 --out "$dir/o2" > "$dir/r.out" 2>&1
    core "$dir/r.out" >> "$dir/ranks"
    grep -o 'allreduce [0-9.]*%' "$dir/r.out" | grep -o '[0-9.]*' >> "$dir/share"
done
stats() { sort -n "$1" | awk '{ a[NR] = $1 } END { printf "%.2f / %.2f / %.2f", a[1], a[int((NR + 1) / 2)], a[NR] }'; }
med() { sort -n "$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; $rounds rounds, 12 steps each (BERT-mini, T 128, global batch 16)"
echo "| configuration | samples/s min / median / max | allreduce share of the step (median) |"
echo "|---|---|---|"
echo "| 1 process x 2 threads, batch 16 | $(stats "$dir/threads") | - |"
echo "| 2 MPI ranks x 1 thread, batch 8 each | $(stats "$dir/ranks") | $(med "$dir/share") % |"
echo "ratio ranks / threads (medians): $(echo "$(med "$dir/ranks") $(med "$dir/threads")" | awk '{ printf "%.2f", $1 / $2 }')"
rm -rf "$dir"
