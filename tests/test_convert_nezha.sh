#!/bin/sh
# test_convert_nezha.sh - the converters on NEZHA checkpoints (issue 25), from the fixture
# tests/ref/nezha_ref.safetensors (tests/ref/nezha_ref.py: both flavours, K = 3). tests/convert_nezha.py
# writes the foreign files with the repo's writers (convert/tf_bundle.py, convert/ms_ckpt.py), spelling the
# foreign names out itself (not from convert/names.py), and checks the results.
#   Huawei's NEZHA-TensorFlow: Google BERT's variable names, no position_embeddings, a Huawei
#     bert_config.json ("use_relative_position": true, "max_relative_position": 3). tf2st.py converts it:
#     bert.h's forward on the result (tests/convert_forward.c) gives the reference outputs (emb, both
#     layers = sequence_output, pooled, MLM and NSP logits) within 1e-5 abs + 1e-5 rel; the weights are
#     the fixture's bit for bit under bert.h's "nezha.*" names; the config says use_relative_position,
#     K 3, flavour "huawei" (K 64 without the key: Huawei's hard-coded value). --optim-out: bert_optim_load
#     takes the Adam state (in bert.h's order). st2tf.py writes the same bundle back byte for byte (with
#     the slots too; also from "bert.*" names) and bert_config.json with the NEZHA keys.
#   MindSpore's nezha: the model zoo's names, the learned tables
#     (bert.bert.bert_encoder.layers.N.attention.attention._generate_relative_positions_embeddings.
#     embeddings_table) and the unused position table MindSpore saves. ms2st.py converts it without
#     --heads: forward within 1e-5, weights bit for bit, flavour "mindspore", K = (rows - 1) / 2 = 3,
#     no position table; MindSpore's eps 1e-7 and tanh GELU by default; --config with
#     use_relative_positions gives the same file; the LAMB state loads in bert.h. st2ms.py writes the
#     tables under MindSpore's names, and ms2st.py reads that back to the same model and training state.
#   A fixed-table (huawei) model through st2ms.py -> ms2st.py: the sinusoid as learned tables, the same
#     reference outputs. transformers' NezhaForPreTraining files ("nezha.*", model_type "nezha") through
#     hf2st.py: the same weights and outputs.
#   Refusals, one line "convert: FILE: problem" and exit 1: a TF bundle without position_embeddings whose
#     config does not say relative; a MindSpore table with an even number of rows; a config saying
#     use_relative_positions for a checkpoint without tables; st2tf.py on learned tables; st2onnx.py.
# BUILD: where convert_forward is (built here if absent); CONVERT_FORWARD: that helper; PYTHON: a python3
# with numpy. Ends with "N passed, N failed".
B=${BUILD:-build}
PY=${PYTHON:-/usr/bin/python3}
CF=${CONVERT_FORWARD:-$B/convert_forward}
FIX=tests/ref/nezha_ref.safetensors
H="$PY tests/convert_nezha.py"
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "  ok   $2"; else fail=$((fail + 1)); echo "  FAIL $2"; fi; }
if ! "$PY" -c 'import numpy' >/dev/null 2>&1; then
    echo "  skipped: $PY with numpy not found (apt-get install python3-numpy): NEZHA conversions not tested"
    echo "0 passed, 0 failed"; exit 0
fi
mkdir -p "$B" || exit 1
if [ ! -x "$CF" ]; then
    ${CC:-cc} -O2 -std=c11 tests/convert_forward.c -o "$CF" -lm || { echo "  FAIL building $CF"; echo "0 passed, 1 failed"; exit 1; }
fi
dir=$(mktemp -d "$B/convert_nezha_test_XXXXXX") || exit 1

# run WHAT CMD...: CMD succeeds (exit 0); its stderr (notes) kept in $dir/err
run() {
    what=$1; shift
    "$@" > "$dir/out" 2> "$dir/err"; rc=$?
    check $rc "$what (exit $rc)"
    [ $rc = 0 ] || sed 's/^/         /' "$dir/err" | tail -n 3
    return $rc
}
# helper WHAT ARGS...: tests/convert_nezha.py ARGS exits 0; its one line is shown
helper() {
    what=$1; shift
    msg=$($H "$@" 2>&1); rc=$?
    check $rc "$what: $(printf '%s' "$msg" | tail -n 1)"
}
# refused WHAT WORDS CMD...: exit 1 and one error line "convert: ..." (notes aside) that holds every
# word of WORDS (a |-separated list), no traceback
refused() {
    what=$1; words=$2; shift 2
    "$@" > /dev/null 2> "$dir/err"; rc=$?
    errs=$(grep -v '^convert: note: ' "$dir/err")
    n=$(printf '%s\n' "$errs" | grep -c .)
    ok=1
    [ $rc = 1 ] && [ "$n" = 1 ] && printf '%s' "$errs" | grep -q '^convert: ' && ! grep -q Traceback "$dir/err" && ok=0
    if [ $ok = 0 ]; then
        old_ifs=$IFS; IFS='|'
        for w in $words; do printf '%s' "$errs" | grep -qF -- "$w" || ok=1; done
        IFS=$old_ifs
    fi
    check $ok "$what: exit $rc, $(printf '%s' "$errs" | head -n 1 | cut -c1-220)"
}
# forward FLAVOUR MODEL WHAT: bert.h's forward on MODEL gives the fixture's FLAVOUR outputs
forward() {
    $H inputs $FIX "$1" "$dir/in_$1.safetensors" &&
    "$CF" "$2" "$dir/in_$1.safetensors" "$dir/fwd.safetensors" > "$dir/fwd.out" 2>&1
    rc=$?
    if [ $rc != 0 ]; then check $rc "$3: convert_forward (exit $rc): $(tail -n 1 "$dir/fwd.out")"; return; fi
    helper "$3: bert.h's forward = the reference within 1e-5" compare $FIX "$1" "$dir/fwd.safetensors"
}

echo "--- Huawei NEZHA-TensorFlow bundle -> tf2st.py"
$H tf $FIX "$dir/hw" > /dev/null || { echo "  FAIL writing the TF bundle"; echo "0 passed, 1 failed"; exit 1; }
grep -q position_embeddings "$dir/hw/bert_model.ckpt.index"; check $((1 - $?)) "the bundle has no bert/embeddings/position_embeddings (as Huawei saves it)"
run "tf2st.py (--act gelu: the fixture's erf GELU)" "$PY" convert/tf2st.py "$dir/hw/bert_model.ckpt" "$dir/hw.safetensors" --act gelu &&
helper "huawei weights bit for bit under bert.h's \"nezha.*\" names, NEZHA config keys" model $FIX huawei "$dir/hw.safetensors" \
    prefix=nezha use_relative_position=true max_relative_position=3 'relative_position_flavour="huawei"' 'hidden_act="gelu"' layer_norm_eps=1e-12 max_position_embeddings=32
forward huawei "$dir/hw.safetensors" "huawei (tf2st)"
run "tf2st.py with Huawei's default GELU" "$PY" convert/tf2st.py "$dir/hw/bert_model.ckpt" "$dir/hw_tanh.safetensors" &&
helper "Huawei's TF \"gelu\" is recorded as gelu_tanh" model $FIX huawei "$dir/hw_tanh.safetensors" 'hidden_act="gelu_tanh"' use_relative_position=true
"$PY" convert/tf2st.py "$dir/hw/bert_model.ckpt" --check > "$dir/check.out" 2>&1
grep -q 'NEZHA: relative positions (max_relative_position 3' "$dir/check.out" && ! grep -q absent "$dir/check.out"
check $? "tf2st.py --check: NEZHA, K 3, nothing absent"
$H tf $FIX "$dir/hw64" --no-k > /dev/null
run "tf2st.py, bert_config.json without max_relative_position (NEZHA-TensorFlow's own)" "$PY" convert/tf2st.py "$dir/hw64/bert_model.ckpt" "$dir/hw64.safetensors" &&
helper "K is 64, Huawei's hard-coded value" model $FIX huawei "$dir/hw64.safetensors" max_relative_position=64 'relative_position_flavour="huawei"'
$H tf $FIX "$dir/hwpos" --with-position > /dev/null
run "tf2st.py, a relative config over a bundle with a position table" "$PY" convert/tf2st.py "$dir/hwpos/bert_model.ckpt" "$dir/hwpos.safetensors" --act gelu &&
helper "the unused position table is dropped" model $FIX huawei "$dir/hwpos.safetensors" use_relative_position=true
grep -q 'NEZHA uses no absolute positions: dropped bert/embeddings/position_embeddings' "$dir/err"; check $? "... and a note says so"

$H tf $FIX "$dir/hwopt" --slots > /dev/null &&
run "tf2st.py --optim-out (adam_m/adam_v, global_step)" "$PY" convert/tf2st.py "$dir/hwopt/bert_model.ckpt" "$dir/hwopt.safetensors" --act gelu --optim-out "$dir/hwopt_optim.safetensors" &&
run "... bert_optim_load takes the training state (adamw_gb)" "$CF" "$dir/hwopt.safetensors" "$dir/in_huawei.safetensors" "$dir/opt.safetensors" "$dir/hwopt_optim.safetensors" adamw_gb &&
helper "... the moments in bert.h's order, step 7" moments $FIX huawei "$dir/opt.safetensors"

echo "--- back to TF: st2tf.py"
run "st2tf.py" "$PY" convert/st2tf.py "$dir/hw.safetensors" "$dir/hw_back/bert_model.ckpt" &&
cmp -s "$dir/hw/bert_model.ckpt.index" "$dir/hw_back/bert_model.ckpt.index" &&
cmp -s "$dir/hw/bert_model.ckpt.data-00000-of-00001" "$dir/hw_back/bert_model.ckpt.data-00000-of-00001"
check $? "the same bundle byte for byte (Huawei's names, no position_embeddings)"
"$PY" -c 'import json, sys; c = json.load(open(sys.argv[1])); sys.exit(not (c.get("use_relative_position") is True and c.get("max_relative_position") == 3 and "relative_position_flavour" not in c))' "$dir/hw_back/bert_config.json"
check $? "bert_config.json: \"use_relative_position\": true, \"max_relative_position\": 3"
grep -q "hard-codes 64" "$dir/err"; check $? "a note says Huawei's attention_layer hard-codes K 64"
run "st2tf.py --optim (the training state from tf2st.py --optim-out)" "$PY" convert/st2tf.py "$dir/hwopt.safetensors" "$dir/hwopt_back/bert_model.ckpt" --optim "$dir/hwopt_optim.safetensors" &&
cmp -s "$dir/hwopt/bert_model.ckpt.index" "$dir/hwopt_back/bert_model.ckpt.index" &&
cmp -s "$dir/hwopt/bert_model.ckpt.data-00000-of-00001" "$dir/hwopt_back/bert_model.ckpt.data-00000-of-00001"
check $? "... the bundle with its adam_m/adam_v slots and global_step, byte for byte"
$H rename "$dir/hw.safetensors" "$dir/hw_bert.safetensors" 2>/dev/null &&
run "st2tf.py on the same model named \"bert.*\"" "$PY" convert/st2tf.py "$dir/hw_bert.safetensors" "$dir/hw_back2/bert_model.ckpt" &&
cmp -s "$dir/hw/bert_model.ckpt.index" "$dir/hw_back2/bert_model.ckpt.index" &&
cmp -s "$dir/hw/bert_model.ckpt.data-00000-of-00001" "$dir/hw_back2/bert_model.ckpt.data-00000-of-00001"
check $? "... the same bundle byte for byte"

echo "--- MindSpore nezha .ckpt -> ms2st.py"
$H ms $FIX "$dir/ms.ckpt" > /dev/null || { echo "  FAIL writing the .ckpt"; echo "$pass passed, $((fail + 1)) failed"; exit 1; }
run "ms2st.py without --heads (--act gelu --eps 1e-12: the fixture's)" "$PY" convert/ms2st.py "$dir/ms.ckpt" "$dir/ms.safetensors" --act gelu --eps 1e-12 &&
helper "mindspore weights and learned tables bit for bit, \"nezha.*\" names, NEZHA config keys" model $FIX mindspore "$dir/ms.safetensors" \
    prefix=nezha use_relative_position=true max_relative_position=3 'relative_position_flavour="mindspore"' num_attention_heads=4 \
    max_position_embeddings=32 layer_norm_eps=1e-12 'hidden_act="gelu"'
forward mindspore "$dir/ms.safetensors" "mindspore (ms2st)"
run "ms2st.py with MindSpore's defaults" "$PY" convert/ms2st.py "$dir/ms.ckpt" "$dir/ms_def.safetensors" --heads 4 &&
helper "eps 1e-7 and the tanh GELU recorded" model $FIX mindspore "$dir/ms_def.safetensors" layer_norm_eps=1e-07 'hidden_act="gelu_tanh"' 'relative_position_flavour="mindspore"'
printf '{"vocab_size": 112, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128, "max_position_embeddings": 32, "type_vocab_size": 2, "use_relative_positions": true, "layer_norm_eps": 1e-12}\n' > "$dir/ms_cfg.json"
run "ms2st.py --config (the yaml's nezha_net_cfg keys, use_relative_positions)" "$PY" convert/ms2st.py "$dir/ms.ckpt" "$dir/ms_cfg.safetensors" --config "$dir/ms_cfg.json" --act gelu &&
helper "... the same file as without --config" same "$dir/ms.safetensors" "$dir/ms_cfg.safetensors"

$H ms $FIX "$dir/msopt.ckpt" --slots > /dev/null &&
run "ms2st.py --optim-out (lamb_m/lamb_v of the tables too, global_step)" "$PY" convert/ms2st.py "$dir/msopt.ckpt" "$dir/msopt.safetensors" --act gelu --eps 1e-12 --optim-out "$dir/msopt_optim.safetensors" &&
run "... bert_optim_load takes the training state (lamb)" "$CF" "$dir/msopt.safetensors" "$dir/in_mindspore.safetensors" "$dir/opt.safetensors" "$dir/msopt_optim.safetensors" lamb &&
helper "... the moments in bert.h's order (each table after its layer's value bias), step 7" moments $FIX mindspore "$dir/opt.safetensors"

echo "--- back to MindSpore: st2ms.py"
run "st2ms.py" "$PY" convert/st2ms.py "$dir/ms.safetensors" "$dir/ms_back.ckpt" &&
helper "the tables under MindSpore's names, and a position table for a complete load" ms-names "$dir/ms_back.ckpt"
grep -q '"use_relative_positions": true' "$dir/err" && grep -q 'hard-codes 16' "$dir/err"
check $? "the yaml values say use_relative_positions; a note says the model zoo hard-codes K 16"
run "ms2st.py on st2ms.py's output" "$PY" convert/ms2st.py "$dir/ms_back.ckpt" "$dir/ms_back.safetensors" --act gelu --eps 1e-12 &&
helper "... the same file again" same "$dir/ms.safetensors" "$dir/ms_back.safetensors"
run "st2ms.py --optim (the lamb state from ms2st.py --optim-out)" "$PY" convert/st2ms.py "$dir/msopt.safetensors" "$dir/msopt_back.ckpt" --optim "$dir/msopt_optim.safetensors" &&
run "... ms2st.py --optim-out on it" "$PY" convert/ms2st.py "$dir/msopt_back.ckpt" "$dir/msopt_back.safetensors" --act gelu --eps 1e-12 --optim-out "$dir/msopt_back_optim.safetensors" &&
helper "... the same model" same "$dir/msopt.safetensors" "$dir/msopt_back.safetensors" &&
cmp -s "$dir/msopt_optim.safetensors" "$dir/msopt_back_optim.safetensors"
check $? "... and the same training state, byte for byte"
$H rename "$dir/ms.safetensors" "$dir/ms_bert.safetensors" 2>/dev/null &&
run "st2ms.py on the same model named \"bert.*\"" "$PY" convert/st2ms.py "$dir/ms_bert.safetensors" "$dir/ms_back2.ckpt" &&
cmp -s "$dir/ms_back.ckpt" "$dir/ms_back2.ckpt"
check $? "... the same .ckpt byte for byte"

echo "--- a fixed-table (huawei) model to MindSpore and back"
run "st2ms.py on the huawei model" "$PY" convert/st2ms.py "$dir/hw.safetensors" "$dir/hw.ckpt" &&
run "ms2st.py on it" "$PY" convert/ms2st.py "$dir/hw.ckpt" "$dir/hw_ms.safetensors" --act gelu --eps 1e-12 &&
helper "the huawei weights bit for bit, learned flavour, K 3" model $FIX huawei "$dir/hw_ms.safetensors" 'relative_position_flavour="mindspore"' max_relative_position=3 +tables
"$PY" - "$dir/hw_ms.safetensors" "$FIX" 2>/dev/null <<'EOF'
import sys; sys.path.insert(0, "convert")
import safetensors_np
t, _ = safetensors_np.read(sys.argv[1]); f, _ = safetensors_np.read(sys.argv[2])
tabs = [a for n, a in t.items() if n.endswith("relative_positions_embeddings.weight")]
R = f["huawei.R"].astype("f8")
sys.exit(not (len(tabs) == 2 and all(a.shape == R.shape and abs(a.astype("f8") - R).max() <= 1e-7 for a in tabs)))
EOF
check $? "every layer's table is the fixed sinusoid (huawei.R within 1e-7)"
forward huawei "$dir/hw_ms.safetensors" "huawei via MindSpore's learned form"

echo "--- transformers' NezhaForPreTraining -> hf2st.py"
$H hf $FIX "$dir/hf" > /dev/null &&
run "hf2st.py (\"nezha.*\" keys, positions_encoding buffers, config.json model_type nezha)" "$PY" convert/hf2st.py "$dir/hf/model.safetensors" "$dir/hf.safetensors" &&
helper "huawei weights bit for bit, buffers dropped, NEZHA config keys" model $FIX huawei "$dir/hf.safetensors" \
    prefix=nezha use_relative_position=true max_relative_position=3 'relative_position_flavour="huawei"'
forward huawei "$dir/hf.safetensors" "huawei (hf2st)"

echo "--- refused, in one line"
$H tf $FIX "$dir/nokey" --no-rel-key > /dev/null
refused "tf2st.py: no position_embeddings and no \"use_relative_position\"" "bert/embeddings/position_embeddings|use_relative_position" \
    "$PY" convert/tf2st.py "$dir/nokey/bert_model.ckpt" "$dir/nokey.safetensors"
[ ! -e "$dir/nokey.safetensors" ]; check $? "... and no output file"
$H ms $FIX "$dir/even.ckpt" --even > /dev/null
refused "ms2st.py: a relative-position table of 8 rows" "_generate_relative_positions_embeddings.embeddings_table|8 rows|2K+1" \
    "$PY" convert/ms2st.py "$dir/even.ckpt" "$dir/even.safetensors" --heads 4
$H ms $FIX "$dir/notab.ckpt" --no-tables > /dev/null
refused "ms2st.py: a config saying use_relative_positions, a checkpoint without tables" "says relative positions|no relative-position tables" \
    "$PY" convert/ms2st.py "$dir/notab.ckpt" "$dir/notab.safetensors" --config "$dir/ms_cfg.json"
refused "st2tf.py: learned tables have no TF form" "learned relative-position tables|st2ms.py" \
    "$PY" convert/st2tf.py "$dir/ms.safetensors" "$dir/ms_tf/bert_model.ckpt"
refused "st2onnx.py: NEZHA is not exported" "NEZHA" "$PY" convert/st2onnx.py "$dir/hw.safetensors" "$dir/hw.onnx"

[ $fail = 0 ] && rm -rf "$dir"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
