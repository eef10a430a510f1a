#!/bin/sh
# test_hf_load.sh - the model directories bert.h's programs save load in transformers as they are, and
# compute there what bert.h computes. tests/ref/hf_load_ref.py is the independent reader: transformers'
# rules for the safetensors file, its metadata ("format": "pt"), config.json and the tensor names of the
# architecture config.json names (missing / unexpected / size mismatch), written from transformers'
# source without importing it.
#   acceptance (python3 + numpy; `make test`):
#     - a tiny BERT pretrained 2 steps (OUT/ckpt-N/, BertForPreTraining; erf and tanh GELU) and fine-tuned
#       2 steps by classify (OUT/ and OUT/ckpt-N/, BertForSequenceClassification; 2 labels and
#       regression) is accepted: it loads, with zero missing and zero unexpected keys
#     - the reader refuses what transformers refuses (each a copy of the accepted directory with one
#       fault): "format" not "pt", no __metadata__, an extra tensor, a missing one, a shape config.json
#       does not give, hidden_act outside ACT2FN, a hidden_act that differs from the file's own config,
#       no model_type, another architecture, a truncated file, ...; and accepts old gamma/beta names and
#       a headless BertModel file as BertModel
#     - a sentence-transformers directory made from the pretrained model (BertModel names, Pooling mean,
#       Normalize) is accepted as BertModel
#   forward (also needs PyTorch, Debian's python3-torch; `make ref-check` passes --require-torch; without
#   torch otherwise a "skipped" line): on bert_ref.py's model, float64, within 1e-5 of bert.h:
#     encode's cls/mean/max vectors, convert_forward's last layer at every real token, pooled output, MLM
#     and NSP logits, classify's predictions (regression values; labels where the top two logits differ
#     by more than 1e-5), and `encode --model DIR` on the sentence-transformers directory (mean, L2-normalised).
# BUILD: where the binaries are (default build); PYTHON: a python3 with numpy (and torch). Ends with
# "N passed, N failed".
B=${BUILD:-build}
PY=${PYTHON:-/usr/bin/python3}
CF=${CONVERT_FORWARD:-$B/convert_forward}
REQUIRE_TORCH=0; [ "$1" = --require-torch ] && REQUIRE_TORCH=1
R=tests/ref/hf_load_ref.py
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "  ok   $2"; else fail=$((fail + 1)); echo "  FAIL $2"; fi; }
# the reader's own "  ok"/"  FAIL" lines (--forward) counted as checks; a failed run without one is one failure
tally() {
    cat "$1"
    o=$(grep -c '^  ok ' "$1"); f=$(grep -c '^  FAIL' "$1")
    pass=$((pass + o)); fail=$((fail + f))
    [ "$2" != 0 ] && [ "$f" = 0 ] && check 1 "$3 (exit $2, no comparison failed: $(tail -1 "$1"))"
}
if ! "$PY" -c 'import numpy' >/dev/null 2>&1; then
    echo "  skipped: $PY with numpy not found (apt-get install python3-numpy): transformers' loading rules not checked"
    echo "0 passed, 0 failed"; exit 0
fi
for t in pretrain classify encode; do
    [ -x "$B/$t" ] || { echo "  FAIL $B/$t not built (make $B/$t)"; echo "0 passed, 1 failed"; exit 1; }
done
dir=$(mktemp -d build/hf_load_test_XXXXXX) || exit 1
V=tests/data/classify_vocab.txt
LINES=tests/data/encode_lines.txt   # sentences and "A ||| B" pairs
DEV=tests/data/classify_cola_dev.tsv
# initializer_range 0.2 (not 0.02): activations large enough that erf and tanh GELU differ by ~1e-3 in the
# outputs, so the forward comparison sees a wrong activation (with 0.02 they agree to 1e-6)
cfg='"vocab_size": 1269, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2, "initializer_range": 0.2'
printf '{%s}\n' "$cfg" > "$dir/erf.json"
printf '{%s, "hidden_act": "gelu_tanh"}\n' "$cfg" > "$dir/tanh.json"
common="--vocab $V --steps 2 --batch_size 4 --max_seq_length 64 --lr 1e-3 --threads 1"
cls="--task tsv --text_a_col 3 --label_col 1 --train_file tests/data/classify_cola_train.tsv --do_train"

# ---------------------------------------------------------------- the directories bert.h saves
"$B/pretrain" --text $LINES --config "$dir/erf.json" $common --out "$dir/pre" > "$dir/pre.out" 2>&1 &&
"$B/pretrain" --text $LINES --config "$dir/tanh.json" $common --out "$dir/pre_tanh" > "$dir/pre_tanh.out" 2>&1 &&
"$B/classify" $cls --config "$dir/erf.json" $common --out "$dir/cls" > "$dir/cls.out" 2>&1 &&
"$B/classify" $cls --num_labels 1 --config "$dir/erf.json" $common --out "$dir/reg" > "$dir/reg.out" 2>&1
rc=$?
check $rc "pretrain (erf, tanh GELU) and classify (2 labels, regression) train a tiny BERT 2 steps each (exit $rc)"
if [ $rc != 0 ]; then tail -3 "$dir"/*.out; echo "$pass passed, $fail failed"; exit 1; fi

accept() {   # DIR WHAT: the reader accepts DIR
    "$PY" $R "$1" > "$dir/r.out" 2>&1; rc=$?
    [ $rc = 0 ] && grep -q 'missing 0, unexpected 0, mismatched 0' "$dir/r.out" && grep -q ': accepted$' "$dir/r.out"
    check $? "$2: loads in transformers, 0 missing, 0 unexpected (exit $rc)"
    [ $rc = 0 ] || sed 's/^/         /' "$dir/r.out"
}
accept "$dir/pre/ckpt-00000002" "pretrain OUT/ckpt-00000002 (BertForPreTraining, gelu)"
accept "$dir/pre_tanh/ckpt-00000002" "pretrain OUT/ckpt-00000002 (BertForPreTraining, tanh GELU)"
accept "$dir/cls" "classify OUT (BertForSequenceClassification, 2 labels)"
accept "$dir/reg" "classify OUT (BertForSequenceClassification, regression)"
accept "$dir/cls/ckpt-00000002" "classify OUT/ckpt-00000002 (2 labels)"
accept "$dir/reg/ckpt-00000002" "classify OUT/ckpt-00000002 (regression)"

# ---------------------------------------------------------------- one fault each: refused
# copies of the accepted pretraining directory (and of classify's), each with one thing changed
"$PY" - "$dir/pre/ckpt-00000002" "$dir/cls" "$dir/mut" > "$dir/mut.out" 2>&1 <<'EOF'
import json, os, sys
import numpy as np
sys.path.insert(0, "tests/ref")
import hf_load_ref as h
pre, cls, out = sys.argv[1:4]
def load(src):
    hdr, meta, data = h.read_safetensors(os.path.join(src, "model.safetensors"))
    return [(n, np.array(h.tensor(hdr, data, n))) for n in hdr], meta, json.load(open(os.path.join(src, "config.json")))
T, meta, cfg = load(pre)
def make(name, tensors=T, meta=meta, cfg=cfg, cut=0):
    d = os.path.join(out, name)
    os.makedirs(d)
    h.st_write(os.path.join(d, "model.safetensors"), tensors, meta)
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    if cut:
        os.truncate(os.path.join(d, "model.safetensors"), os.path.getsize(os.path.join(d, "model.safetensors")) - cut)
headless = [(n[5:], a) for n, a in T if n.startswith("bert.")]
make("format_bert.h", meta=dict(meta, format="bert.h"))
make("format_tf", meta=dict(meta, format="tf"))
make("no_metadata", meta=None)
make("extra_tensor", tensors=T + [("cls.extra.weight", np.zeros((2, 2), np.float32))])
make("missing_tensor", tensors=[t for t in T if t[0] != "bert.pooler.dense.bias"])
make("truncated", cut=4)
make("vocab_size_1000", cfg=dict(cfg, vocab_size=1000))
make("no_vocab_size", cfg={k: v for k, v in cfg.items() if k != "vocab_size"})
make("heads_3", cfg=dict(cfg, num_attention_heads=3))
make("act_gelu_tanh", cfg=dict(cfg, hidden_act="gelu_tanh"))
make("act_relu", cfg=dict(cfg, hidden_act="relu"))
make("no_model_type", cfg={k: v for k, v in cfg.items() if k != "model_type"})
make("no_architectures", cfg={k: v for k, v in cfg.items() if k != "architectures"})
make("arch_masked_lm", cfg=dict(cfg, architectures=["BertForMaskedLM"]))
make("headless_as_pretraining", tensors=headless)
make("gamma_beta", tensors=[(n.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"), a) for n, a in T])
make("headless_bert_model", tensors=headless, cfg=dict(cfg, architectures=["BertModel"]))
T, meta, cfg = load(cls)
make("cls_id2label_3", tensors=T, meta=meta, cfg=dict(cfg, id2label={"0": "a", "1": "b", "2": "c"}))
make("cls_problem_type", tensors=T, meta=meta, cfg=dict(cfg, problem_type="ranking"))
EOF
rc=$?
check $rc "19 directories with one fault (or one old spelling) each written (exit $rc)"
[ $rc = 0 ] || cat "$dir/mut.out"
refuse() {   # NAME EXPECTED-TEXT WHAT
    "$PY" $R "$dir/mut/$1" > "$dir/r.out" 2>&1; rc=$?
    [ $rc = 1 ] && grep -qF -- "$2" "$dir/r.out"
    check $? "$3: refused (exit $rc: $(grep -m1 -e 'rejected: ' -e '^  [a-z]' "$dir/r.out" | sed 's/.*rejected: //; s/^  //' | cut -c1-100))"
}
refuse format_bert.h "format 'bert.h', not \"pt\"" "__metadata__ format \"bert.h\""
refuse format_tf "format 'tf', not \"pt\"" "__metadata__ format \"tf\" (the TF loader's names)"
refuse no_metadata "no __metadata__" "no __metadata__"
refuse extra_tensor "unexpected (1): cls.extra.weight" "an extra tensor cls.extra.weight"
refuse missing_tensor "missing (1): bert.pooler.dense.bias" "bert.pooler.dense.bias absent"
refuse truncated "MetadataIncompleteBuffer" "the last 4 bytes cut"
refuse vocab_size_1000 "size mismatch" "config.json vocab_size 1000, the file's 1269"
refuse no_vocab_size "[30522, 32] under config.json" "config.json without vocab_size (BertConfig's 30522)"
refuse heads_3 "not a multiple of num_attention_heads" "num_attention_heads 3 for hidden_size 32"
refuse act_gelu_tanh "hidden_act 'gelu_tanh' is not in transformers' ACT2FN" "hidden_act \"gelu_tanh\""
refuse act_relu "config.json says hidden_act 'relu'" "hidden_act \"relu\" in config.json, \"gelu\" in the file's own config"
refuse no_model_type "model_type is None" "config.json without model_type"
refuse no_architectures "no \"architectures\"" "config.json without architectures"
refuse arch_masked_lm "unexpected (4): bert.pooler.dense.bias, bert.pooler.dense.weight, cls.seq_relationship.bias, cls.seq_relationship.weight" \
    "the pretraining file as BertForMaskedLM (no pooler, no NSP head)"
refuse headless_as_pretraining "missing (8): cls.predictions.bias" "a headless BertModel file as BertForPreTraining"
refuse cls_id2label_3 "classifier.bias: [2] in the file, [3] under config.json" "classify's file with 3 labels in id2label"
refuse cls_problem_type "problem_type 'ranking'" "problem_type \"ranking\""
"$PY" $R "$dir/mut/gamma_beta" > "$dir/r.out" 2>&1; rc=$?
check $rc "LayerNorm.gamma / .beta names (renamed on load): accepted (exit $rc)"
"$PY" $R "$dir/mut/headless_bert_model" > "$dir/r.out" 2>&1; rc=$?
check $rc "a headless file without \"bert.\" as BertModel: accepted (exit $rc)"

# ---------------------------------------------------------------- a sentence-transformers directory
# the pretrained model as sentence-transformers saves one: BertModel names (no heads, no "bert."),
# config.json for BertModel, vocab.txt, tokenizer_config.json, modules.json: Transformer, Pooling
# (mean), Normalize
st="$dir/st"
mkdir -p "$st/1_Pooling" "$st/2_Normalize" && cp "$dir/mut/headless_bert_model/model.safetensors" "$dir/mut/headless_bert_model/config.json" "$st/" &&
cp $V "$st/vocab.txt" &&
printf '{"do_lower_case": true, "model_max_length": 64}\n' > "$st/tokenizer_config.json" &&
printf '[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}, {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}, {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]\n' > "$st/modules.json" &&
printf '{"word_embedding_dimension": 32, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false}\n' > "$st/1_Pooling/config.json"
accept "$st" "a sentence-transformers directory (BertModel, Pooling mean, Normalize)"

# ---------------------------------------------------------------- the forward, against PyTorch
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    if [ $REQUIRE_TORCH = 1 ]; then
        check 1 "$PY has PyTorch (apt-get install python3-torch): the forward comparison is what make ref-check is for"
    else
        echo "  skipped: $PY without PyTorch (apt-get install python3-torch): the forward against bert_ref.py not compared (make ref-check does)"
    fi
else
    [ -x "$CF" ] || echo "  skipped: $CF not built (make $CF): the last layer, MLM and NSP logits not compared"
    "$B/encode" --ids --vocab $V --input $LINES --max_seq_length 64 > "$dir/ids.txt" 2> "$dir/e.err" &&
    cut -f4 $DEV > "$dir/dev.txt" && "$B/encode" --ids --vocab $V --input "$dir/dev.txt" --max_seq_length 64 > "$dir/dev_ids.txt" 2>> "$dir/e.err"
    check $? "encode --ids: the token ids of $LINES and of $DEV's sentences"
    forward() {   # DIR IDS TEXT WHAT [reader flags]: encode's vectors, convert_forward's activations vs PyTorch
        d=$1 ids=$2 text=$3 what=$4; shift 4
        flags=""
        for p in cls mean max; do
            "$B/encode" --model "$d" --vocab $V --input "$text" --max_seq_length 64 --pooling $p --output "$dir/v_$p.npy" 2>> "$dir/e.err" &&
                flags="$flags --compare $p=$dir/v_$p.npy"
        done
        if [ -x "$CF" ] && "$PY" $R "$d" --ids "$ids" --vocab $V --write_inputs "$dir/in.safetensors" > "$dir/r.out" 2>&1 &&
           "$CF" "$d/model.safetensors" "$dir/in.safetensors" "$dir/cf.safetensors" > "$dir/cf.out" 2>&1; then
            flags="$flags --compare_st $dir/cf.safetensors"
        fi
        echo "  -- $what"
        "$PY" $R "$d" --ids "$ids" --vocab $V --forward $flags "$@" > "$dir/r.out" 2>&1
        tally "$dir/r.out" $? "$what: PyTorch forward"
    }
    forward "$dir/pre/ckpt-00000002" "$dir/ids.txt" $LINES "pretrain's checkpoint (BertForPreTraining) on $LINES"
    # the comparison can fail: the same weights with config.json saying gelu_new (tanh form) where bert.h
    # computes erf GELU (the file's own config) differ from bert.h's activations by far more than 1e-5
    if [ -f "$dir/cf.safetensors" ]; then
        cp -r "$dir/pre/ckpt-00000002" "$dir/gelu_new" && sed -i 's/"hidden_act": "gelu"/"hidden_act": "gelu_new"/' "$dir/gelu_new/config.json"
        "$PY" $R "$dir/gelu_new" --ids "$dir/ids.txt" --vocab $V --forward --compare_st "$dir/cf.safetensors" > "$dir/r.out" 2>&1; rc=$?
        [ $rc = 1 ] && [ "$(grep -c '^  FAIL' "$dir/r.out")" -ge 4 ]
        check $? "config.json hidden_act gelu_new over bert.h's erf GELU: the forward comparison fails (exit $rc; $(grep -m1 '^  FAIL sequence' "$dir/r.out" | sed 's/.*\(maxabs [^ ]*\).*/\1/'))"
    fi
    "$B/classify" --task tsv --text_a_col 3 --label_col 1 --do_predict --test_file $DEV --predict_format tsv --vocab $V \
        --init "$dir/cls/model.safetensors" --max_seq_length 64 --out "$dir/cls_pred" > "$dir/p.out" 2>&1 &&
    "$B/classify" --task tsv --text_a_col 3 --label_col 1 --num_labels 1 --do_predict --test_file $DEV --predict_format tsv --vocab $V \
        --init "$dir/reg/model.safetensors" --max_seq_length 64 --out "$dir/reg_pred" > "$dir/p.out" 2>&1
    check $? "classify --do_predict on $DEV with each fine-tuned model"
    forward "$dir/cls" "$dir/dev_ids.txt" "$dir/dev.txt" "classify OUT (2 labels) on $DEV" --compare_predictions "$dir/cls_pred/test_predictions.tsv"
    forward "$dir/reg" "$dir/dev_ids.txt" "$dir/dev.txt" "classify OUT (regression) on $DEV" --compare_predictions "$dir/reg_pred/test_predictions.tsv"
    # the sentence-transformers directory: encode --model DIR alone takes its vocab, case, pooling and normalisation
    echo "  -- encode --model DIR on the sentence-transformers directory"
    # (CoLA's plain sentences: a directory with tokenizer_config.json may pick HF's tokenizer, whose ids
    # differ from encode --ids's on rare characters)
    "$B/encode" --model "$st" --input "$dir/dev.txt" --max_seq_length 64 --output "$dir/st.npy" 2>> "$dir/e.err"
    check $? "encode --model $st (no other flag) writes the vectors"
    "$PY" $R "$st" --ids "$dir/dev_ids.txt" --vocab $V --forward --compare "mean_normalized=$dir/st.npy" > "$dir/r.out" 2>&1
    tally "$dir/r.out" $? "sentence-transformers directory: PyTorch forward"
fi
[ $fail = 0 ] && rm -rf "$dir"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
