#!/bin/sh
# run.sh SECONDS [TARGET...] - builds the libFuzzer targets (clang -fsanitize=fuzzer,address,undefined),
# seeds them (make_seeds.sh), runs each for SECONDS on one core and prints a table row per target:
# executions, edges covered, crashes. Crash inputs are kept in build/fuzz/crashes/. `make fuzz
# FUZZ_SECONDS=N` calls this from the repo root.
set -u
secs=${1:-60}; shift
targets=${*:-"json config safetensors vocab tokenizer tfrecord classify ner squad"}
CLANG=${CLANG:-clang}
out=build/fuzz
mkdir -p "$out/crashes"
if ! command -v "$CLANG" >/dev/null; then echo "skipped: clang not found (apt-get install clang)"; exit 0; fi
sh tests/fuzz/make_seeds.sh "$out/seeds"
echo "| target | seconds | executions | exec/s | edges (cov) | crashes |"
echo "|---|---|---|---|---|---|"
status=0
for t in $targets; do
    bin=$out/fuzz_$t
    if ! $CLANG -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
         -Wall -Wextra tests/fuzz/fuzz_$t.c -o "$bin" -lm 2> "$out/build_$t.log"; then
        echo "| $t | build failed: see $out/build_$t.log | | | | |"; status=1; continue
    fi
    seeds=$out/seeds/$t; [ -d "$seeds" ] || seeds=$out/seeds/json
    mkdir -p "$out/corpus/$t"
    case $t in tokenizer) maxlen=-max_len=256 ;; vocab) maxlen=-max_len=1024 ;; tfrecord) maxlen=-max_len=2048 ;; *) maxlen= ;; esac
    # the example readers exit on bad input by design; their harness jumps out, leaking that parse
    case $t in classify|ner|squad) maxlen="$maxlen -detect_leaks=0" ;; esac
    "$bin" "$out/corpus/$t" "$seeds" $maxlen -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$out/crashes/${t}_" > "$out/run_$t.log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/run_$t.log" | grep -o '[0-9]*$')
    rate=$(grep -o 'exec/s: *[0-9]*' "$out/run_$t.log" | tail -n 1 | grep -o '[0-9]*$')
    cov=$(grep -o 'cov: [0-9]*' "$out/run_$t.log" | tail -n 1 | grep -o '[0-9]*$')
    crashes=$(ls "$out/crashes" 2>/dev/null | grep -c "^${t}_")
    [ "$rc" -ne 0 ] && status=1
    echo "| $t | $secs | ${execs:-?} | ${rate:-?} | ${cov:-?} | $crashes |"
done
exit $status
