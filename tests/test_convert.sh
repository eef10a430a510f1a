#!/bin/sh
# test_convert.sh - runs tests/test_convert.py (the checkpoint converters in convert/) with a Python
# that has numpy; `make test` passes PYTHON (Debian's /usr/bin/python3) and CONVERT_FORWARD (the
# helper built from tests/convert_forward.c). Ends with "N passed, N failed" like the C tests.
PY=${PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import numpy' >/dev/null 2>&1; then
    echo "skipped: $PY with numpy not found (apt-get install python3-numpy): convert/ not tested"
    echo "0 passed, 0 failed"
    exit 0
fi
exec "$PY" "$(dirname "$0")/test_convert.py"
