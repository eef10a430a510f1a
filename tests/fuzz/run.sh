#!/bin/sh
# run.sh SECONDS [TARGET...] - builds the libFuzzer targets (clang -fsanitize=fuzzer,address,undefined),
# seeds them (make_seeds.sh), runs each for SECONDS (or until FUZZ_RUNS executions, when set) and
# prints a table row per target: executions, edges covered, crashes. FUZZ_JOBS targets run at once
# (default 1; one core each). Corpora grow in build/fuzz/corpus/, crash inputs are kept in
# build/fuzz/crashes/ (copy each into tests/fuzz/regressions/TARGET/, where make test replays it).
# `make fuzz FUZZ_SECONDS=N [FUZZ_RUNS=N] [FUZZ_JOBS=N]` calls this from the repo root.
set -u
if [ "${1:-}" = --one ]; then one=$2; shift 2; else one=; fi   # internal: xargs runs one target per call
secs=${1:-60}; shift
targets=${*:-"json config safetensors vocab tokenizer tfrecord classify ner squad flags resume"}
runs=${FUZZ_RUNS:-}
jobs=${FUZZ_JOBS:-1}
CLANG=${CLANG:-clang}
out=build/fuzz
mkdir -p "$out/crashes"
if ! command -v "$CLANG" >/dev/null; then echo "skipped: clang not found (apt-get install clang)"; exit 0; fi

build() {   # target -> build/fuzz/fuzz_TARGET
    extra=
    # the example readers: the tokenizer's internals are the tokenizer target's, not traced here
    case $1 in classify|ner|squad) extra=-fsanitize-coverage-ignorelist=tests/fuzz/examples_ignore.txt ;; esac
    $CLANG -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
        $extra -Wall -Wextra "tests/fuzz/fuzz_$1.c" -o "$out/fuzz_$1" -lm 2> "$out/build_$1.log"
}

fuzz() {   # target -> build/fuzz/run_TARGET.log, exit status in run_TARGET.rc
    t=$1
    if [ "$t" = resume ]; then   # its seed is a valid state file, written by the target itself
        mkdir -p "$out/seeds/resume" && FUZZ_WRITE_SEED="$out/seeds/resume/state.safetensors" "$out/fuzz_resume"
    fi
    seeds=$out/seeds/$t; [ -d "$seeds" ] || seeds=$out/seeds/json
    mkdir -p "$out/corpus/$t"
    case $t in tokenizer) opts=-max_len=256 ;; vocab) opts=-max_len=1024 ;; tfrecord) opts=-max_len=2048 ;; *) opts= ;; esac
    # the example readers exit on bad input by design (their harness jumps out, leaking that parse)
    # and print a line per file read: stdout and stderr closed (libFuzzer keeps its own output)
    case $t in classify|ner|squad|flags|resume) opts="$opts -detect_leaks=0 -close_fd_mask=3" ;; esac
    [ -n "$runs" ] && opts="$opts -runs=$runs"
    start=$(date +%s)
    "$out/fuzz_$t" "$out/corpus/$t" "$seeds" $opts -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$out/crashes/${t}_" > "$out/run_$t.log" 2>&1
    echo $? > "$out/run_$t.rc"
    echo $(($(date +%s) - start)) > "$out/run_$t.secs"
}

if [ -n "$one" ]; then fuzz "$one"; exit 0; fi

sh tests/fuzz/make_seeds.sh "$out/seeds"
status=0
ok_targets=
for t in $targets; do
    if build "$t"; then ok_targets="$ok_targets $t"; else echo "$t: build failed: see $out/build_$t.log"; status=1; fi
done
# a pool of FUZZ_JOBS: the next target starts as soon as one ends (list the slow ones first)
printf '%s\n' $ok_targets | FUZZ_RUNS="$runs" xargs -P "$jobs" -I{} sh "$0" --one {} "$secs"

echo "| target | seconds | executions | exec/s | edges (cov) | crashes |"
echo "|---|---|---|---|---|---|"
for t in $ok_targets; do
    log=$out/run_$t.log
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$')
    took=$(cat "$out/run_$t.secs")
    crashes=$(ls "$out/crashes" 2>/dev/null | grep -c "^${t}_")
    [ "$(cat "$out/run_$t.rc")" -ne 0 ] && status=1
    echo "| $t | ${took} | ${execs:-?} | ${rate:-?} | ${cov:-?} | $crashes |"
done
exit $status
