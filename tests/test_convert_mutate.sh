#!/bin/sh
# test_convert_mutate.sh - a short run of tests/fuzz/convert_mutate.py (random mutations of every
# checkpoint format the converters read: each one converts, or fails with one "convert: FILE: ..."
# line) in make test; `make fuzz` runs it longer (FUZZ_CONVERT_ITERATIONS per input kind).
PY=${PYTHON:-/usr/bin/python3}
exec "$PY" "$(dirname "$0")/fuzz/convert_mutate.py" --iterations "${CONVERT_MUTATIONS:-100}"
