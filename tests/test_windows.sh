#!/bin/sh
# test_windows.sh - bert.h on Windows x86-64: built by mingw-w64 (static, -std=c11 -Wall -Wextra -Wshadow
# -Werror; the .exe files import KERNEL32.dll and msvcrt.dll only) and run under wine, 64-bit only and
# headless (WINEDEBUG=-all, a prefix of its own: $B/wineprefix, about 700 MB, made once in about 10 s
# and kept for the next run; make clean removes it).
#   1. the library's test programs (as tests/test_cross.sh runs them: test_kernels test_autograd
#      test_bert test_nezha test_safetensors test_io test_tokenizer) on the committed fixtures, no
#      -march (the plain-C kernels); test_kernels again with -mavx2 -mfma (the AVX2 microkernel), and
#      test_bert with OpenMP (the posix-threads mingw gcc, 2 threads)
#   2. the programs (examples/*.c, OpenMP on, as the Makefile builds them), then end to end:
#      pretrain --text killed after step 5 (--debug_kill_at_step) and resumed: weights and optimizer
#      state at step 10 bit for bit an uninterrupted run's (the atomic saves: MoveFileEx over the old
#      files); the same run built for this host: the same TFRecord bytes and losses (1e-6 relative);
#      the output directory's lock refusing a second run and gone with the killed one; glob patterns
#      (run.h's own glob there) picking the same files in the same order as glibc's (the
#      create_pretraining_data outputs byte-identical), one matching nothing refused; classify on
#      the CoLA excerpt with the metrics of this host's build
#   3. tests/cross_ckpt.c: 3 training steps there and here (the same losses, 1e-6 relative), and each
#      side reading the other's checkpoint and optimizer state bit for bit.
# Installs mingw-w64 (x86-64) and wine with apt-get when it can (root); without them: a "skipped:"
# line. Ends with "N passed, N failed" (each test program counts as one). Needs this host's cc for 2
# and 3. Builds $JOBS (2) at a time.
B=${BUILD:-build}/windows
mkdir -p "$B" || exit 1
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "  ok   $2"; else fail=$((fail + 1)); echo "  FAIL $2"; fi; }
. tests/cross_losses.sh   # same_losses
TESTS="test_kernels test_autograd test_bert test_nezha test_safetensors test_io test_tokenizer"
PROGRAMS="pretrain create_pretraining_data encode classify ner squad finetune_own demo"
CC=x86_64-w64-mingw32-gcc            # the win32-threads one: no OpenMP
CCP=x86_64-w64-mingw32-gcc-posix     # posix threads (winpthread, linked in statically): libgomp
FLAGS="-O2 -std=c11 -Wall -Wextra -Wshadow -Werror -static"

if ! command -v $CCP >/dev/null 2>&1 || ! command -v wine >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing: gcc-mingw-w64-x86-64 wine wine64 (64-bit only)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc-mingw-w64-x86-64 wine wine64; } > "$B/apt.log" 2>&1 || echo "  (apt-get failed: see $B/apt.log)"
    fi
fi
if ! command -v $CCP >/dev/null 2>&1 || ! command -v wine >/dev/null 2>&1; then
    echo "skipped: no $CCP or wine (apt-get install gcc-mingw-w64-x86-64 wine wine64)"
    echo "0 passed, 0 failed"
    exit 0
fi
export WINEDEBUG=-all WINEPREFIX="$(cd "$B" && pwd)/wineprefix" WINEDLLOVERRIDES="mscoree,mshtml="   # no Mono/Gecko prompts
unset DISPLAY
timeout 300 wine wineboot --init > "$B/wineboot.log" 2>&1   # the prefix, once (about 10 s the first time)
echo "== $($CC --version | head -1), $(wine --version)"

# ---- every build first, $JOBS at a time: NAME COMPILER FLAGS SOURCE OUTPUT; NAME.rc holds the status
JOBS=${JOBS:-2}; running=0
build() {
    { $2 $3 "$4" -o "$5" -lm > "$B/$1.build" 2>&1; echo $? > "$B/$1.rc"; } &
    running=$((running + 1)); [ $running -lt "$JOBS" ] || { wait; running=0; }
}
built() { [ "$(cat "$B/$1.rc" 2>/dev/null)" = 0 ]; }
H="$B/host"; mkdir -p "$H"
rm -f "$B"/*.rc
for x in $TESTS; do build "$x" "$CC" "$FLAGS" "tests/$x.c" "$B/$x.exe"; done
build test_kernels_avx2 "$CC" "$FLAGS -mavx2 -mfma" tests/test_kernels.c "$B/test_kernels_avx2.exe"
build test_bert_openmp "$CCP" "$FLAGS -fopenmp" tests/test_bert.c "$B/test_bert_openmp.exe"
for p in $PROGRAMS; do build "$p" "$CCP" "$FLAGS -fopenmp" "examples/$p.c" "$B/$p.exe"; done
build cross_ckpt "$CC" "$FLAGS" tests/cross_ckpt.c "$B/cross_ckpt.exe"
for p in pretrain create_pretraining_data classify st_compare cross_ckpt; do
    src="examples/$p.c"; [ -f "$src" ] || src="tests/$p.c"
    build "host_$p" cc "-O2 -std=c11" "$src" "$H/$p"
done
wait
for p in pretrain create_pretraining_data classify st_compare cross_ckpt; do
    built "host_$p" || { echo "cannot build $p for this host: $(head -c 300 "$B/host_$p.build")"; exit 1; }
done

dlls() { x86_64-w64-mingw32-objdump -p "$1" | awk '/DLL Name/ { printf "%s ", $3 }'; }
only_system_dlls() { [ "$(dlls "$1")" = "KERNEL32.dll msvcrt.dll " ]; }
wine_run() { timeout 600 wine "$@"; }   # its stdout is Windows text: CRLF (strip \r to compare)

# ---- 1. the library's tests
run_test() {   # NAME [ENV]
    bin="$B/$1.exe"
    built "$1" || { check 1 "$1 builds ($(head -c 300 "$B/$1.build"))"; return; }
    only_system_dlls "$bin" || { check 1 "$1 imports only KERNEL32.dll msvcrt.dll (it imports $(dlls "$bin"))"; return; }
    env $2 timeout 600 wine "$bin" > "$B/$1.out" 2>&1; rc=$?
    summary=$(tail -1 "$B/$1.out" | tr -d '\r')
    [ $rc = 0 ] && echo "$summary" | grep -q ' 0 failed$'
    check $? "$1: $summary"
    [ $rc = 0 ] || grep -E '^  FAIL|^FAIL' "$B/$1.out" | head -5
}
for x in $TESTS; do run_test "$x"; done
grep -h '^skipped' "$B"/test_*.out | tr -d '\r' | sed 's/^/       /'
run_test test_kernels_avx2
grep -q 'microkernel under test: avx2' "$B/test_kernels_avx2.out"
check $? "test_kernels -mavx2 -mfma ran the AVX2 sgemm microkernel ($(grep -m1 'microkernel under test' "$B/test_kernels_avx2.out" | tr -d '\r'))"
run_test test_bert_openmp OMP_NUM_THREADS=2

# ---- 2. the programs
for p in $PROGRAMS; do
    if built "$p"; then
        only_system_dlls "$B/$p.exe"
        check $? "$p.exe builds (imports: $(dlls "$B/$p.exe"))"
    else
        check 1 "$p.exe builds ($(head -c 300 "$B/$p.build"))"
    fi
done
E="$B/e2e"; rm -rf "$E"; mkdir -p "$E"
printf '{"vocab_size": %d, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 64, "type_vocab_size": 2, "initializer_range": 0.02}\n' \
    "$(wc -l < tests/data/classify_vocab.txt)" > "$E/text.json"
P="--text examples/data/sample_text.txt --vocab tests/data/classify_vocab.txt --dupe_factor 2 --max_seq_length 64 --config $E/text.json
   --batch_size 4 --accumulation_steps 2 --eval_records 4 --lr 1e-3 --seed 3 --threads 1"
wine_run "$B/pretrain.exe" $P --steps 10 --save_every 5 --out "$E/whole" > "$E/whole.out" 2>&1; rc1=$?
wine_run "$B/pretrain.exe" $P --steps 10 --save_every 5 --out "$E/killed" --debug_kill_at_step 5 > "$E/killed.out" 2>&1; rc2=$?
wine_run "$B/pretrain.exe" $P --steps 10 --save_every 5 --out "$E/killed" --resume > "$E/resumed.out" 2>&1; rc3=$?
[ $rc1 = 0 ] && [ $rc2 = 137 ] && [ $rc3 = 0 ] && grep -q 'resumed from .*ckpt-00000005' "$E/resumed.out"
check $? "pretrain.exe: an uninterrupted run, one killed after step 5, resumed from its step-5 checkpoint (exit $rc1, $rc2, $rc3)"
same=0
for f in model state; do cmp -s "$E/whole/ckpt-00000010/$f.safetensors" "$E/killed/ckpt-00000010/$f.safetensors" || same=1; done
check $same "pretrain.exe: weights and optimizer state at step 10 bit for bit the uninterrupted run's"
[ -z "$(find "$E/whole" "$E/killed" -name '*.tmp')" ]
check $? "pretrain.exe: no PATH.tmp left behind by the saves"
"$H/pretrain" $P --steps 10 --save_every 5 --out "$E/host" > "$E/host.out" 2>&1
cmp -s "$E/whole/text_data.tfrecord" "$E/host/text_data.tfrecord"
check $? "pretrain --text: the TFRecord made there is this host's byte for byte"
la=$(grep -o '"loss": [0-9.e+-]*' "$E/whole/log.jsonl" | cut -d' ' -f2 | tr '\n' ' ')
lb=$(grep -o '"loss": [0-9.e+-]*' "$E/host/log.jsonl" | cut -d' ' -f2 | tr '\n' ' ')
awk -v a="$la" -v b="$lb" 'BEGIN { n = split(a, x, " "); m = split(b, y, " "); if (n != m || n != 10) exit 1;
    for (i = 1; i <= n; i++) { d = x[i] - y[i]; if (d < 0) d = -d; if (d > 1e-6 * (x[i] < 0 ? -x[i] : x[i])) exit 1 } }'
check $? "pretrain: the 10 losses there are this host's (1e-6 relative; step 10: $(echo $la | awk '{print $NF}') | $(echo $lb | awk '{print $NF}'))"
msg=$("$H/st_compare" "$E/whole/ckpt-00000010/model.safetensors" "$E/host/ckpt-00000010/model.safetensors" 1e-6 key.bias 2>&1)
check $? "pretrain: step-10 weights within 1e-6 of this host's (libm differs; key biases: rounding noise, as in test_mpi.sh): $(echo "$msg" | head -1)"

# the output directory's lock: a second run refused while the first holds it; a killed run leaves none
wine "$B/pretrain.exe" $P --steps 100000 --out "$E/lock" > "$E/lock1.out" 2>&1 &
first=$!
for i in $(seq 1 120); do [ -s "$E/lock/log.jsonl" ] && break; sleep 0.5; done
wine_run "$B/pretrain.exe" $P --steps 2 --out "$E/lock" --resume > "$E/lock2.out" 2>&1; rc=$?
[ $rc = 1 ] && grep -q 'another run is using this output directory' "$E/lock2.out"
check $? "pretrain.exe: a second run on a directory in use is refused (exit $rc: $(head -1 "$E/lock2.out" | tr -d '\r' | cut -c1-90))"
kill "$first" 2> /dev/null; wait "$first" 2> /dev/null
wine_run "$B/pretrain.exe" $P --steps 2 --out "$E/lock" --resume > "$E/lock3.out" 2>&1
check $? "pretrain.exe: after the first run was killed the directory is free again (no stale lock)"

# glob patterns: run.h's there, glibc's here (the programs' C locale: sorted as strcmp sorts); the
# files differ (a line more each), so another choice or order of them makes other bytes
G="$E/glob"; mkdir -p "$G"
line="x"
for f in a10 a2 a1 .a1 b1; do
    { cat examples/data/sample_text.txt; echo "$line"; } > "$G/$f.txt"; line="$line x"
done
n=0
for pat in "$G/a*.txt" "$G/a?.txt" "$G/[ab]1.txt" "$G/*1.txt" "$G/a1.txt"; do
    n=$((n + 1))
    wine_run "$B/create_pretraining_data.exe" --input_file "$pat" --output_file "$E/g_$n.tfrecord" --vocab_file tests/data/classify_vocab.txt --dupe_factor 1 --max_seq_length 64 > "$E/g_$n.out" 2>&1; rc=$?
    "$H/create_pretraining_data" --input_file "$pat" --output_file "$E/g_$n.host.tfrecord" --vocab_file tests/data/classify_vocab.txt --dupe_factor 1 --max_seq_length 64 > "$E/g_$n.host.out" 2>&1
    [ $rc = 0 ] && cmp -s "$E/g_$n.tfrecord" "$E/g_$n.host.tfrecord"
    check $? "create_pretraining_data.exe --input_file '$(basename "$pat")': the same files in the same order as glibc's glob (the output byte for byte this host's)"
done
wine_run "$B/create_pretraining_data.exe" --input_file "$G/zz*.txt" --output_file "$E/none.tfrecord" --vocab_file tests/data/classify_vocab.txt > "$E/none.out" 2>&1; rc=$?
[ $rc = 1 ] && grep -q 'zz\*.txt: no such file (or the pattern matches nothing)' "$E/none.out"
check $? "create_pretraining_data.exe: a pattern that matches nothing is refused (exit $rc)"
wine_run "$B/pretrain.exe" --input "$E/g_*.host.tfrecord" --config "$E/text.json" --max_seq_length 64 --batch_size 4 --steps 2 --eval_records 4 --threads 1 --out "$E/from_glob" > "$E/from_glob.out" 2>&1
check $? "pretrain.exe --input 'g_*.host.tfrecord' reads this host's TFRecords ($(grep -m1 -o '[0-9]* train + [0-9]* held-out records' "$E/from_glob.out"))"

C="--vocab tests/data/classify_vocab.txt --config $E/text.json --max_seq_length 64 --task cola --train_file tests/data/classify_cola_train.tsv
   --dev_file tests/data/classify_cola_dev.tsv --do_train --do_eval --epochs 2 --batch_size 8 --lr 1e-3 --threads 1"
wine_run "$B/classify.exe" $C --out "$E/cola" > "$E/cola.out" 2>&1; rc=$?
"$H/classify" $C --out "$E/cola_host" > "$E/cola_host.out" 2>&1
ev() { grep '^eval tests/data' "$1" | tr -d '\r'; }
[ $rc = 0 ] && [ -n "$(ev "$E/cola.out")" ] && [ "$(ev "$E/cola.out")" = "$(ev "$E/cola_host.out")" ]
check $? "classify.exe: CoLA excerpt, 2 epochs: the dev metrics of this host's build ($(ev "$E/cola.out" | cut -d'|' -f2-4))"

# ---- 3. checkpoints across: written there, read here, and the other way
if built cross_ckpt; then
    rm -rf "$E/ck_win" "$E/ck_host"; mkdir -p "$E/ck_win" "$E/ck_host"
    wine_run "$B/cross_ckpt.exe" write "$E/ck_win" | tr -d '\r' > "$E/ck_win.out"
    "$H/cross_ckpt" write "$E/ck_host" > "$E/ck_host.out"
    lw=$(grep '^losses' "$E/ck_win.out"); lh=$(grep '^losses' "$E/ck_host.out")
    same_losses "$lh" "$lw"
    check $? "cross_ckpt: 3 training steps give this host's losses (1e-6 relative): $lw | host $lh"
    theirs=$(grep '^hash' "$E/ck_win.out"); read_here=$("$H/cross_ckpt" read "$E/ck_win" 2>&1)
    [ -n "$theirs" ] && [ "$theirs" = "$read_here" ]
    check $? "cross_ckpt: its checkpoint and optimizer state read here carry its values bit for bit ($theirs | read here: $read_here)"
    ours=$(grep '^hash' "$E/ck_host.out"); read_there=$(wine_run "$B/cross_ckpt.exe" read "$E/ck_host" 2>&1 | tr -d '\r')
    [ -n "$ours" ] && [ "$ours" = "$read_there" ]
    check $? "cross_ckpt: this host's checkpoint read there, bit for bit ($ours | read there: $read_there)"
else
    check 1 "cross_ckpt builds ($(head -c 300 "$B/cross_ckpt.build"))"
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
