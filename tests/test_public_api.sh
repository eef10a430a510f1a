#!/bin/sh
# test_public_api.sh - the programs in examples/ use bert.h's public API only: no private name
# (bert__*, BERT__*) and no direct read of tensor memory (->data[ or ->grad[: tensors may live on a
# device; bert_tensor_item / bert_tensor_read / bert_tensor_argmax / bert_copy_to_host copy what the
# host needs).
# Ends with "N passed, N failed".
pass=0; fail=0
for f in examples/*.c examples/*.h; do
    hits=$(grep -n 'bert__\|BERT__\|->data\[\|->grad\[' "$f")
    if [ -z "$hits" ]; then pass=$((pass + 1)); echo "  ok   $f: public API only"
    else fail=$((fail + 1)); echo "  FAIL $f: private names or tensor memory read directly:"; echo "$hits" | head -5 | sed 's/^/         /'; fi
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
