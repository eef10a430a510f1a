#!/bin/sh
# test_onnx.sh - convert/st2onnx.py (bert.h safetensors -> ONNX) against bert.h itself. Builds small
# models from the committed fixtures (tests/ref: tiny, classify_ref, ner_init, squad_ref) in every
# form the exporter handles: erf and tanh GELU, layer_norm_eps 1e-3, type_vocab_size 3, a short
# position table, a config in __metadata__ or in a config.json beside, the sequence, token (with and
# without CRF) and span heads, opsets 13, 14, 16 and 17. Each export is parsed back (inputs, outputs, dynamic
# axes, every node's inputs defined), then run in ONNX Runtime (npm onnxruntime-node, tests/onnx_run.js)
# on batches of 1, 2 and 3 rows and sequences of 5, 12 and max_position_embeddings tokens, with
# padding, and compared with bert.h's outputs (tests/onnx_forward.c) at 1e-5 max abs. Wrong-config
# exports must fail that comparison. Bad input: one line, exit 1, nothing written.
# PYTHON (Debian's /usr/bin/python3 + numpy), BUILD, ONNX_FORWARD (the helper; built here if absent),
# ORT_DIR (node_modules with onnxruntime-node; default build/ort/node_modules, then bench's; `make ort`
# installs it). Without onnxruntime-node the ORT part prints "skipped: ...". Ends "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-/usr/bin/python3}
B=${BUILD:-build}
if ! "$PY" -c 'import numpy' >/dev/null 2>&1; then
    echo "skipped: $PY with numpy not found (apt-get install python3-numpy): convert/st2onnx.py not tested"
    echo "0 passed, 0 failed"
    exit 0
fi
mkdir -p "$B" || exit 1
FWD=${ONNX_FORWARD:-$B/onnx_forward}
if [ ! -x "$FWD" ]; then
    ${CC:-cc} -O2 -std=c11 -Wall -Wextra -Wshadow tests/onnx_forward.c -o "$FWD" -lm || { echo "  FAIL building $FWD"; echo "0 passed, 1 failed"; exit 1; }
fi
ORT=
if command -v node >/dev/null 2>&1; then
    for d in ${ORT_DIR:-} build/ort/node_modules bench/build/ort/node_modules; do
        if [ -d "$d" ] && node tests/onnx_run.js "$d" --probe >/dev/null 2>&1; then ORT=$d; break; fi
    done
fi
exec "$PY" - "$FWD" "$ORT" "$B" "$PY" <<'PYTHON'
import json, os, shutil, subprocess, sys, tempfile
import numpy as np
sys.path.insert(0, "convert")
import safetensors_np as st
import wire

FWD, ORT, BUILD, PY = sys.argv[1:5]
TOL = 1e-5
passed = failed = 0


def check(ok, msg):
    global passed, failed
    print(f"  {'ok  ' if ok else 'FAIL'} {msg}")
    if ok:
        passed += 1
    else:
        failed += 1
    return ok


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, stdin=subprocess.DEVNULL)


def export(model, out, *opts):
    return run(PY, "convert/st2onnx.py", model, out, *opts)


tmp = tempfile.mkdtemp(prefix="onnx_test_", dir=BUILD)
if ORT:
    print(f"onnxruntime-node {run('node', 'tests/onnx_run.js', ORT, '--probe').stdout.strip()} from {ORT}")
else:
    print("skipped: onnxruntime-node not found (make ort installs it into build/ort; or ORT_DIR=.../node_modules): "
          "the exports are parsed and checked, but not run and compared with bert.h")

# ---------------------------------------------------------------------------------------------
# the models

rng = np.random.default_rng(7)


def save(name, tensors, cfg=None, meta=None, config_json=None):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    md = dict(meta or {})
    if cfg is not None:
        md["config"] = json.dumps(cfg)
    path = os.path.join(d, "model.safetensors")
    st.write(path, tensors, md or None)
    if config_json is not None:
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config_json, f)
    return path


tiny, tiny_meta = st.read("tests/ref/tiny.safetensors")
cfg_tiny = json.loads(tiny_meta["config"])
cls_ref, cls_meta = st.read("tests/ref/classify_ref.safetensors")
cfg_cls = json.loads(cls_meta["config"])
cls_w = {k: v for k, v in cls_ref.items() if k.startswith(("bert.", "cls.", "classifier."))}
squad_ref, _ = st.read("tests/ref/squad_ref.safetensors")

# tiny's FFN inputs are small, where erf and tanh GELU agree to 1e-6: its intermediate weights x20
# put them where the two forms differ by up to 2e-4, so a wrong GELU shows
big = dict(tiny)
for i in range(cfg_tiny["num_hidden_layers"]):
    big[f"bert.encoder.layer.{i}.intermediate.dense.weight"] = tiny[f"bert.encoder.layer.{i}.intermediate.dense.weight"] * 20
# tanh GELU (HF's "gelu_new"), eps 1e-3, 3 token types, 24 positions; the config only in a config.json beside
cfg_tanh = dict(cfg_tiny, hidden_act="gelu_new", layer_norm_eps=1e-3, type_vocab_size=3, max_position_embeddings=24)
tanh_w = dict(big)
tanh_w["bert.embeddings.position_embeddings.weight"] = tiny["bert.embeddings.position_embeddings.weight"][:24]
tt = tiny["bert.embeddings.token_type_embeddings.weight"]
tanh_w["bert.embeddings.token_type_embeddings.weight"] = np.concatenate([tt, (rng.standard_normal((1, tt.shape[1])) * 0.05).astype(np.float32)])
squad_w = dict(tiny, **{k: squad_ref[k] for k in ("qa_outputs.weight", "qa_outputs.bias")})

# (label, model, the head onnx_forward adds, export options, outputs)
BASE = ["last_hidden_state", "pooler_output"]
MODELS = [
    ("tiny: erf GELU, eps 1e-12, opset 17", "tests/ref/tiny.safetensors", "none", [], BASE),
    ("tiny, FFN weights x20: erf GELU", save("big", big, cfg_tiny), "none", [], BASE),
    ("FFN x20, tanh GELU (gelu_new), eps 1e-3, 3 token types, 24 positions, config.json beside",
     save("tanh", tanh_w, None, None, dict(cfg_tanh, architectures=["BertModel"])), "none", [], BASE),
    ("sequence classifier (3 labels), opset 14", save("classify", cls_w, cfg_cls), "sequence", ["--opset", "14"], BASE + ["logits"]),
    ("sequence classifier, --head none", os.path.join(tmp, "classify", "model.safetensors"), "none", ["--head", "none"], BASE),
    ("token classifier (architectures in config.json), opset 13", save("token", cls_w, cfg_cls, None,
     dict(cfg_cls, architectures=["BertForTokenClassification"])), "token", ["--opset", "13"], BASE + ["logits"]),
    ("token classifier with CRF (ner_init: 21 tags)", "tests/ref/ner_init.safetensors", "token", [], BASE + ["logits", "crf_transitions"]),
    ("span head (qa_outputs), opset 16", save("squad", squad_w, cfg_tiny), "span", ["--opset", "16"], BASE + ["start_logits", "end_logits"]),
]


def inputs_for(cfg, path):
    """Cases (B, T): 1 and 3 rows x 5 and 12 tokens, and 2 rows of max_position_embeddings; padding
    (mask 0) in the rows after the first, token types 0..type_vocab_size-1 in the second half."""
    V, P, TV = cfg["vocab_size"], cfg["max_position_embeddings"], cfg["type_vocab_size"]
    out = {}
    for k, (b, t) in enumerate([(1, 5), (3, 5), (1, 12), (3, 12), (2, P)]):
        ids = rng.integers(0, V, (b, t)).astype(np.int32)
        mask = np.ones((b, t), np.int32)
        types = np.zeros((b, t), np.int32)
        for r in range(b):
            if r:
                mask[r, max(1, t - 2 * r - 1):] = 0
            types[r, t // 2:] = rng.integers(0, TV)
        types[-1, -1] = TV - 1
        out.update({f"{k}.input_ids": ids, f"{k}.attention_mask": mask, f"{k}.token_type_ids": types})
    st.write(path, out)
    return out


def config_of(path):
    t, meta = st.read(path)
    if "config" in meta:
        return json.loads(meta["config"])
    with open(os.path.join(os.path.dirname(path), "config.json")) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------
# reading an ONNX file back with wire.fields: the structure the exporter promises

def msg(buf, span):
    return wire.fields(buf, span[0], span[1], "model", "onnx")


def text(buf, span):
    return bytes(buf[span[0]:span[1]]).decode()


def value_info(buf, span):
    name, elem, dims = None, None, []
    for n, _, v in msg(buf, span):
        if n == 1:
            name = text(buf, v)
        elif n == 2:
            for tn, _, tv in msg(buf, v):   # TypeProto.tensor_type
                for en, _, ev in msg(buf, tv):
                    if en == 1:
                        elem = ev
                    elif en == 2:
                        for _, _, dv in msg(buf, ev):
                            for dn, _, x in msg(buf, dv):
                                dims.append(text(buf, x) if dn == 2 else x)
    return name, elem, dims


def parse(path):
    buf = open(path, "rb").read()
    m = {"opset": None, "nodes": [], "inits": set(), "inputs": [], "outputs": [], "props": {}}
    for n, _, v in wire.fields(buf, 0, len(buf), path, "model"):
        if n == 8:
            m["opset"] = dict((f, x) for f, _, x in msg(buf, v)).get(2)
        elif n == 14:
            kv = {f: text(buf, x) for f, _, x in msg(buf, v)}
            m["props"][kv[1]] = kv[2]
        elif n == 7:
            for gn, _, gv in msg(buf, v):
                if gn == 1:
                    fs = msg(buf, gv)
                    m["nodes"].append(([text(buf, x) for f, _, x in fs if f == 1], [text(buf, x) for f, _, x in fs if f == 2],
                                       next(text(buf, x) for f, _, x in fs if f == 4)))
                elif gn == 5:
                    m["inits"].add(next(text(buf, x) for f, _, x in msg(buf, gv) if f == 8))
                elif gn in (11, 12):
                    m["inputs" if gn == 11 else "outputs"].append(value_info(buf, gv))
    return m


def structure(m, want_outputs, opset):
    problems = []
    if m["opset"] != opset:
        problems.append(f"opset {m['opset']}")
    if m["inputs"] != [(n, 7, ["batch", "sequence"]) for n in ("input_ids", "attention_mask", "token_type_ids")]:
        problems.append(f"inputs {m['inputs']}")
    if [o[0] for o in m["outputs"]] != want_outputs or any(o[1] != 1 for o in m["outputs"]):
        problems.append(f"outputs {[o[:2] for o in m['outputs']]}")
    for name, _, dims in m["outputs"]:
        if name != "crf_transitions" and dims[:1] != ["batch"]:
            problems.append(f"{name} dims {dims}")
    known = set(m["inits"]) | {"input_ids", "attention_mask", "token_type_ids"}
    for ins, outs, op in m["nodes"]:
        problems += [f"{op} reads undefined {i}" for i in ins if i not in known]
        known |= set(outs)
    problems += [f"output {o[0]} never computed" for o in m["outputs"] if o[0] not in known]
    return problems


# ---------------------------------------------------------------------------------------------
# exports, compared with bert.h

def compare(got_path, ref_path, names):
    """{output: max abs diff over the cases} and a list of problems (shapes, missing outputs)."""
    got, gmeta = st.read(got_path)
    ref, _ = st.read(ref_path)
    worst, problems = {}, []
    if json.loads(gmeta.get("outputs", "[]")) != names:
        problems.append(f"ORT's outputs {gmeta.get('outputs')}")
    for name in names:
        for key in sorted(k for k in ref if k == name or k.endswith("." + name)):
            gkey = key if "." in key else "0." + key   # crf_transitions: once in bert.h's, every case in ORT's
            if gkey not in got or got[gkey].shape != ref[key].shape:
                problems.append(f"{gkey}: {got[gkey].shape if gkey in got else 'missing'} vs bert.h {ref[key].shape}")
                continue
            d = float(np.max(np.abs(got[gkey].astype(np.float64) - ref[key]))) if ref[key].size else 0.0
            worst[name] = max(worst.get(name, 0.0), d if d == d else float("inf"))
    return worst, problems


def ort_vs_bert(label, onnx, c_out, inputs, names, opt="all"):
    o = os.path.join(tmp, f"ort_{len(os.listdir(tmp))}.safetensors")
    r = run("node", "tests/onnx_run.js", ORT, onnx, inputs, o, "--opt", opt)
    if r.returncode:
        return check(False, f"{label}: ORT failed: {r.stderr.strip()[:300]}"), {}, None
    worst, problems = compare(o, c_out, names)
    ok = not problems and all(v <= TOL for v in worst.values()) and len(worst) == len(names)
    errs = ", ".join(f"{k} {v:.1e}" for k, v in worst.items())
    check(ok, f"{label}: ORT (optimizations {opt}) = bert.h within {TOL:g} on B 1,3,2 x T 5,12,P with padding: {errs}"
              + (f" [{'; '.join(problems)}]" if problems else ""))
    return ok, worst, o


max_seen = {}
for label, model, head, opts, names in MODELS:
    onnx = os.path.join(tmp, f"{len(os.listdir(tmp))}.onnx")
    r = export(model, onnx, *opts)
    if not check(r.returncode == 0 and os.path.exists(onnx), f"{label}: exported ({r.stderr.strip()[:300] or 'no messages'})"):
        continue
    if head == "sequence" and "--head" not in opts:
        check("note:" in r.stderr and "sequence classifier" in r.stderr and len(r.stderr.splitlines()) == 1,
              f"{label}: an unhinted classifier.* is taken as a sequence classifier, with one note line")
    if "crf_transitions" in names:
        check("note:" in r.stderr and "Viterbi" in r.stderr, f"{label}: a note says the CRF is exported as emissions + transitions")
    opset = int(opts[opts.index("--opset") + 1]) if "--opset" in opts else 17
    problems = structure(parse(onnx), names, opset)
    check(not problems, f"{label}: opset {opset}, inputs int64 [batch, sequence], outputs {', '.join(names)}, "
                        f"every node's inputs defined{': ' + '; '.join(problems[:4]) if problems else ''}")
    ins = os.path.join(tmp, f"in_{len(os.listdir(tmp))}.safetensors")
    inputs_for(config_of(model), ins)
    c_out = os.path.join(tmp, f"bert_{len(os.listdir(tmp))}.safetensors")
    r = run(FWD, model, head, ins, c_out)
    if not check(r.returncode == 0, f"{label}: bert.h forward ({r.stderr.strip()[:300] or 'ok'})") or not ORT:
        continue
    for opt in (["all", "disabled"] if head == "none" and "--head" not in opts else ["all"]):
        ok, worst, ort_out = ort_vs_bert(label, onnx, c_out, ins, names, opt)
        for k, v in worst.items():
            max_seen[k] = max(max_seen.get(k, 0.0), v)
    if "crf_transitions" in names and ort_out:
        got, _ = st.read(ort_out)
        want, _ = st.read(model)
        check(np.array_equal(got.get("0.crf_transitions"), want["crf.transitions"]),
              f"{label}: crf_transitions = the file's crf.transitions, bit for bit")

if ORT and max_seen:
    print("largest differences ORT vs bert.h: " + ", ".join(f"{k} {v:.2e}" for k, v in max_seen.items()))

# the comparison can fail: the tanh model exported under a config with the wrong eps or GELU
tanh_model = os.path.join(tmp, "tanh", "model.safetensors")
tanh_in = os.path.join(tmp, "tanh_in.safetensors")
tanh_ref = os.path.join(tmp, "tanh_ref.safetensors")
inputs_for(cfg_tanh, tanh_in)
if ORT and run(FWD, tanh_model, "none", tanh_in, tanh_ref).returncode == 0:
    for what, wrong in (("layer_norm_eps 1e-12 instead of 1e-3", dict(cfg_tanh, layer_norm_eps=1e-12)),
                        ("erf GELU instead of tanh", dict(cfg_tanh, hidden_act="gelu"))):
        cj, onnx = os.path.join(tmp, "wrong.json"), os.path.join(tmp, "wrong.onnx")
        with open(cj, "w") as f:
            json.dump(wrong, f)
        export(tanh_model, onnx, "--config", cj)
        o = os.path.join(tmp, "wrong_ort.safetensors")
        r = run("node", "tests/onnx_run.js", ORT, onnx, tanh_in, o)
        worst, _ = compare(o, tanh_ref, BASE) if r.returncode == 0 else ({}, None)
        d = max(worst.values()) if worst else 0.0
        check(d > 10 * TOL, f"a wrong config ({what}) fails the comparison: max diff {d:.1e}")

# deterministic: the same file twice, byte for byte
a, b = os.path.join(tmp, "det_a.onnx"), os.path.join(tmp, "det_b.onnx")
export("tests/ref/tiny.safetensors", a)
export("tests/ref/tiny.safetensors", b)
check(os.path.exists(a) and open(a, "rb").read() == open(b, "rb").read(), "two exports of one model are byte-identical")

# ---------------------------------------------------------------------------------------------
# bad input: one line "convert: FILE: problem" on stderr, exit 1, no output file (nor OUT.tmp)

def refused(label, model, *opts, expect=None, pre=None):
    out = os.path.join(tmp, "bad.onnx")
    for p in (out, out + ".tmp"):
        if os.path.exists(p):
            os.remove(p)
    if pre is not None:
        with open(out, "w") as f:
            f.write(pre)
    r = export(model, out, *opts)
    lines = r.stderr.splitlines()
    left = os.path.exists(out + ".tmp") or (os.path.exists(out) and open(out).read() != (pre or ""))
    ok = (r.returncode == 1 and len(lines) == 1 and lines[0].startswith("convert: ") and "Traceback" not in r.stderr
          and not left and (pre is not None or not os.path.exists(out)) and (expect is None or expect in lines[0]))
    check(ok, f"bad input, {label}: exit {r.returncode}, {lines[0] if len(lines) == 1 else f'{len(lines)} lines'}"
              f"{'; output left behind' if left else ''}")


raw = open("tests/ref/tiny.safetensors", "rb").read()
trunc = os.path.join(tmp, "truncated.safetensors")
with open(trunc, "wb") as f:
    f.write(raw[:len(raw) // 2])
refused("a truncated safetensors file", trunc, expect=trunc)
refused("a truncated file, where an older output exists (kept as it was)", trunc, pre="old model\n")
hdr = os.path.join(tmp, "header_only.safetensors")
with open(hdr, "wb") as f:
    f.write(raw[:8 + int.from_bytes(raw[:8], "little") // 2])
refused("a file cut inside its header", hdr, expect=hdr)
refused("a missing file", os.path.join(tmp, "nope.safetensors"), expect="nope.safetensors")
bare = save("bare", tiny)
refused("no config anywhere", bare, expect="no config")
missing = save("missing", {k: v for k, v in tiny.items() if k != "bert.encoder.layer.1.output.LayerNorm.bias"}, cfg_tiny)
refused("a missing tensor", missing, expect="bert.encoder.layer.1.output.LayerNorm.bias")
shaped = save("shaped", dict(cls_w, **{"classifier.bias": np.zeros(4, np.float32)}), cfg_cls)
refused("a head with mismatched shapes", shaped, expect="classifier")
wrongcfg = save("wrongcfg", tiny, dict(cfg_tiny, hidden_size=48))
refused("a config that does not fit the tensors", wrongcfg, expect="shape")
extra = save("extra", dict(tiny, **{"extra.weight": np.zeros(3, np.float32)}), cfg_tiny)
refused("an unknown tensor", extra, expect="--skip-unknown")
r = export(extra, os.path.join(tmp, "extra.onnx"), "--skip-unknown")
check(r.returncode == 0 and os.path.exists(os.path.join(tmp, "extra.onnx")), "--skip-unknown drops it, with a note")
ints = save("ints", dict(tiny, **{"bert.pooler.dense.bias": np.zeros(64, np.int32)}), cfg_tiny)
refused("an integer weight", ints, expect="float")
refused("--head span without qa_outputs", "tests/ref/tiny.safetensors", "--head", "span", expect="qa_outputs")
r = export("tests/ref/tiny.safetensors", os.path.join(tmp, "no", "such", "dir", "m.onnx"))
check(r.returncode == 1 and len(r.stderr.splitlines()) == 1 and not os.path.exists(os.path.join(tmp, "no")),
      f"bad output directory: exit {r.returncode}, {r.stderr.strip()}")
r = run(PY, "convert/st2onnx.py", "--help")
check(r.returncode == 0 and "usage: st2onnx.py" in r.stdout and "last_hidden_state" in r.stdout, "--help prints the usage, exit 0")

if not failed:
    shutil.rmtree(tmp)
else:
    print(f"  (files kept in {tmp})")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PYTHON
