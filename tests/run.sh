#!/bin/sh
# Runs each test program given on the command line, shows its output, and ends with the totals
# as one line "N passed, N failed". Exits non-zero if any program failed or crashed. RUNNER, if set,
# prefixes every command (make valgrind sets it to valgrind).
passed=0; failed=0; status=0
for t in "$@"; do
    echo "=== $t"
    out=$(${RUNNER:-} "$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        echo "$t: crashed or printed no summary (exit $rc)"; failed=$((failed + 1)); status=1; continue
    fi
    p=$(echo "$line" | sed 's/ passed.*//'); f=$(echo "$line" | sed 's/.*passed, //; s/ failed.*//')
    passed=$((passed + p)); failed=$((failed + f))
    [ "$rc" -ne 0 ] && status=1
done
echo "$passed passed, $failed failed"
exit $status
