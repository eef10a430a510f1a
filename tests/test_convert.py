#!/usr/bin/env python3
"""test_convert.py - the checkpoint converters in convert/ (run by tests/test_convert.sh, i.e. by
`make test`). Ends with "N passed, N failed" like the C tests.

What it proves:
  * TF: the real keras_bert_tiny checkpoint (../shared/data/tf_ckpt) parses (139 entries, every
    CRC32C checked), converts, and bert.h's forward pass on the result equals an independent numpy
    forward of the TF arrays (float64, TF layout, tanh GELU) within 1e-5; its optimizer slots load
    with bert_optim_load. The index-only Google checkpoints (Chinese base 206 entries, Tiny 46,
    Mini 78, Medium 142) map entry by entry to bert.h tensors of the right shapes, and converting
    them reports the absent data shard in one line. Rewriting any of the five real .index files
    gives the same bytes.
  * Round trips: TF -> safetensors -> TF reproduces the real keras checkpoint byte for byte, and
    -> safetensors again is bit-identical; the PyTorch reference's HF-named safetensors
    (tests/ref/tiny.safetensors) loads in bert.h as is and, also after safetensors -> TF ->
    safetensors, gives the reference activations (erf, or tanh when the TF "gelu" is kept).
  * MindSpore: the real LeNet .ckpt parses (18 entries, names, dims, first values) and is rewritten
    byte for byte; a BERT checkpoint in MindSpore's layout (sliced parameters, Float16/Float64, LAMB
    slots, global_step) converts to the source arrays, with layer_norm_eps 1e-7 recorded, and its
    moments load in bert.h; fine-tuning names (dense_1, dense1, CRF transitions) map.
  * PyTorch: pytorch_model.bin in the zip format (written here by hand, and by torch when present)
    and the legacy format (../shared/data/pt_legacy_dummy) convert bit-exactly; old gamma/beta names
    are accepted; a pickle that names any other global is refused without running it.
  * Corrupt inputs of every format (truncated, flipped bytes, bad CRC, bad varint, huge declared
    sizes) give exit status 1 and one line "convert: FILE: problem", never a traceback or a hang.
  * Inflating inputs: per format, small files declaring huge sizes (a 1 MB zip whose data.pkl
    inflates to 1 GiB, a 2^31-float storage over 4 bytes, thousands of tensors or entries on the
    same bytes, huge dims products) are refused in one line by the command line run under a
    300 MiB address-space cap; a refused file (also pickles that set attributes on the rebuild
    functions) followed by a valid one in the same process: the valid one converts.
Parts that need ../shared/data print "skipped: ..." when it is absent."""
import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "convert"))

import common  # noqa: E402
import crc32c  # noqa: E402
import hf2st  # noqa: E402
import ms2st  # noqa: E402
import ms_ckpt  # noqa: E402
import names  # noqa: E402
import safetensors_np  # noqa: E402
import st2ms  # noqa: E402
import st2tf  # noqa: E402
import tf2st  # noqa: E402
import tf_bundle  # noqa: E402
import wire  # noqa: E402

SHARED = os.path.join(ROOT, "..", "shared", "data")
TF_DIR = os.path.join(SHARED, "tf_ckpt")
KERAS = os.path.join(TF_DIR, "keras_bert_tiny", "bert_model.ckpt")
LENET = os.path.join(SHARED, "ms_ckpt", "checkpoint_lenet-1_1875.ckpt")
PT_LEGACY = os.path.join(SHARED, "pt_legacy_dummy")
REF = os.path.join(ROOT, "tests", "ref")
FORWARD = os.environ.get("CONVERT_FORWARD", os.path.join(ROOT, "build", "convert_forward"))
PY = sys.executable
ATOL = RTOL = 1e-5

passed = failed = 0
TMP = tempfile.mkdtemp(prefix="bert_test_convert_")


def check(ok, msg):
    global passed, failed
    print(("  ok   " if ok else "  FAIL ") + msg)
    if ok:
        passed += 1
    else:
        failed += 1
    return ok


def section(title):
    print(f"--- {title}")


def tmp(name):
    return os.path.join(TMP, name)


def have_shared(what, *paths):
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        print(f"skipped: {what}: ../shared/data absent ({os.path.relpath(missing[0], ROOT)})")
    return not missing


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so the converters' error handling cannot swallow it."""


def _alarm(signum, frame):
    raise Hang()


signal.signal(signal.SIGALRM, _alarm)


def _address_space():
    """This process's virtual memory size in bytes (Linux /proc), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def convert(mod, *argv, timeout=60, mem=None):
    """Runs a converter's main in this process through the same wrapper as its command line.
    -> (exit status, stderr text); a hang becomes status -1. mem: bytes of address space the run
    may add (RLIMIT_AS, restored after), so that a converter allocating without bound fails here
    (status -2, or its own "out of memory" line) instead of exhausting the machine."""
    err = io.StringIO()
    limit = None
    if mem is not None and _address_space() is not None:
        import resource
        limit = resource.getrlimit(resource.RLIMIT_AS)
        cap = _address_space() + mem
        if limit[1] != resource.RLIM_INFINITY and cap > limit[1]:
            limit = None
        else:
            resource.setrlimit(resource.RLIMIT_AS, (cap, limit[1]))
    signal.alarm(timeout)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = common.run(mod.main, [str(a) for a in argv])
    except Hang:
        rc = -1
        err.write("HANG\n")
    except MemoryError:   # one that escaped common.run (its own message failed for lack of memory)
        rc = -2
        err.write("MEMORY\n")
    finally:
        signal.alarm(0)
        if limit is not None:
            import resource
            resource.setrlimit(resource.RLIMIT_AS, limit)
    return rc, err.getvalue()


def cli(script, *argv, timeout=120):
    r = subprocess.run([PY, os.path.join(ROOT, "convert", script)] + [str(a) for a in argv],
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def one_line_error(rc, err, path):
    """Exit 1, exactly one stderr line "convert: <path...>: problem", no traceback."""
    lines = [l for l in err.splitlines() if l.strip()]
    return rc == 1 and len(lines) == 1 and lines[0].startswith("convert: ") and path in lines[0] and \
        "Traceback" not in err and "internal error" not in err


def close(label, got, ref, atol=ATOL, rtol=RTOL):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if got.shape != ref.shape:
        return check(False, f"{label}: shape {got.shape} vs reference {ref.shape}")
    d = np.abs(got - ref)
    ok = bool(np.all(d <= atol + rtol * np.abs(ref)))
    return check(ok, f"{label:<48} n={got.size:<6} maxabs {d.max():.2e} (atol {atol:.0e} rtol {rtol:.0e})")


def run_forward(model, inputs, optim=None, optim_type=None):
    """bert.h (tests/convert_forward.c) on a converted file -> {name: array} or None."""
    out = tmp("forward_out.safetensors")
    if os.path.exists(out):
        os.remove(out)
    if not os.path.exists(FORWARD):
        check(False, f"helper {FORWARD} exists (make builds it)")
        return None
    cmd = [FORWARD, model, inputs, out] + ([optim, optim_type] if optim else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if not check(r.returncode == 0, f"bert.h loads {os.path.basename(model)}" +
                 (f" and {os.path.basename(optim)} ({optim_type})" if optim else "") +
                 ("" if r.returncode == 0 else f": {r.stderr.strip()}")):
        return None
    return safetensors_np.read(out)[0]


# ---------------------------------------------------------------------------------------------
# an independent numpy forward pass on TF-named, TF-layout arrays (kernels [in, out])

def gelu(x, act):
    if act == "tanh":
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))
    from math import erf
    return 0.5 * x * (1.0 + np.vectorize(erf)(x / np.sqrt(2.0)))


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def tf_forward(w, heads, batch, act, eps=1e-12):
    g = lambda n: np.asarray(w[n], np.float64)  # noqa: E731
    ids, tt, mask, pos = batch["input_ids"], batch["token_type_ids"], batch["attention_mask"], batch["masked_lm_positions"]
    B, T = ids.shape
    x = g("bert/embeddings/word_embeddings")[ids] + g("bert/embeddings/position_embeddings")[:T][None] + \
        g("bert/embeddings/token_type_embeddings")[tt]
    x = layer_norm(x, g("bert/embeddings/LayerNorm/gamma"), g("bert/embeddings/LayerNorm/beta"), eps)
    out = {"emb": x}
    C = x.shape[-1]
    HS = C // heads
    ext = (1.0 - mask[:, None, None, :].astype(np.float64)) * -10000.0
    L = sum(1 for n in w if n.startswith("bert/encoder/layer_") and n.endswith("/intermediate/dense/bias"))
    for l in range(L):
        p = f"bert/encoder/layer_{l}/"
        dense = lambda h, n: h @ g(p + n + "/kernel") + g(p + n + "/bias")  # noqa: E731
        split = lambda h: h.reshape(B, T, heads, HS).transpose(0, 2, 1, 3)  # noqa: E731
        q, k, v = (split(dense(x, f"attention/self/{n}")) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(HS) + ext
        s = np.exp(s - s.max(-1, keepdims=True))
        ctx = ((s / s.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
        x1 = layer_norm(dense(ctx, "attention/output/dense") + x, g(p + "attention/output/LayerNorm/gamma"),
                        g(p + "attention/output/LayerNorm/beta"), eps)
        f = gelu(dense(x1, "intermediate/dense"), act)
        x = layer_norm(dense(f, "output/dense") + x1, g(p + "output/LayerNorm/gamma"), g(p + "output/LayerNorm/beta"), eps)
        out[f"layer.{l}"] = x
    pooled = np.tanh(x[:, 0] @ g("bert/pooler/dense/kernel") + g("bert/pooler/dense/bias"))
    out["pooled"] = pooled
    out["nsp_logits"] = pooled @ g("cls/seq_relationship/output_weights").T + g("cls/seq_relationship/output_bias")
    rows = x[np.arange(B)[:, None], pos].reshape(-1, C)
    h = gelu(rows @ g("cls/predictions/transform/dense/kernel") + g("cls/predictions/transform/dense/bias"), act)
    h = layer_norm(h, g("cls/predictions/transform/LayerNorm/gamma"), g("cls/predictions/transform/LayerNorm/beta"), eps)
    out["mlm_logits"] = h @ g("bert/embeddings/word_embeddings").T + g("cls/predictions/output_bias")
    return out


def compare_forward(label, got, ref, keys):
    if got is None:
        return
    for k in keys:
        if k not in got or k not in ref:
            check(False, f"{label}: {k} present in both")
            continue
        close(f"{label} {k}", got[k], np.asarray(ref[k]).reshape(got[k].shape))


# ---------------------------------------------------------------------------------------------
# 0. building blocks

def test_building_blocks():
    section("building blocks: CRC32C, the shared name table against bert.h")
    check(crc32c.crc32c(b"123456789") == 0xE3069283, "crc32c('123456789') = 0xe3069283 (the standard check value)")
    data = np.random.default_rng(1).integers(0, 256, 300007, dtype=np.uint8)
    check(crc32c.crc32c(data) == crc32c._raw(0xFFFFFFFF, data.tobytes()) ^ 0xFFFFFFFF,
          "vectorised crc32c of 300007 random bytes equals the byte-at-a-time loop")
    check(crc32c.unmask(crc32c.mask(0x12345678)) == 0x12345678, "mask/unmask round trip")
    # names.py must list bert.h's BERT_PARAMS_* in the same order
    text = open(os.path.join(ROOT, "bert.h")).read()
    import re
    table = []
    for macro in ("BERT_PARAMS_EMB", "BERT_PARAMS_LAYER", "BERT_PARAMS_HEAD"):
        body = text[text.index(f"#define {macro}(X)"):]
        body = body[:body.index("\n\n")]
        table.append(re.findall(r'"((?:bert|cls)\.[^"]+)"', body))
    want = table[0] + [n.replace("%d", str(l)) for l in range(2) for n in table[1]] + table[2]
    # a row of size 0 is absent: BERT has no learned relative tables (rel_w), NEZHA no position table
    bert = [n for n in want if not n.endswith(names.RELATIVE)]
    got = [r.hf for r in names.rows(2)]
    check(got == bert, f"names.rows(2) lists bert.h's {len(bert)} tensors in BERT_PARAMS order")
    check([r.hf for r in names.rows(2, "mindspore")] == [n for n in want if n != names.POSITION] and
          [r.hf for r in names.rows(2, "huawei")] == [n for n in bert if n != names.POSITION],
          "names.rows(2, flavour): NEZHA's tensors in BERT_PARAMS order (learned tables: mindspore only)")
    # literal names from ../shared/reference/*_bert_names.md
    lit = {
        "bert/encoder/layer_3/attention/self/query/kernel": "bert.encoder.layer.3.attention.self.query.weight",
        "cls/predictions/output_bias": "cls.predictions.bias",
        "cls/seq_relationship/output_weights": "cls.seq_relationship.weight",
        "bert/embeddings/LayerNorm/gamma": "bert.embeddings.LayerNorm.weight",
        "cls/squad/output_weights": "qa_outputs.weight",
        "output_weights": "classifier.weight"}
    check(all(names.tf_to_hf(k)[0] == v for k, v in lit.items()), "TF names from tf_bert_names.md map as documented")
    check(names.tf_to_hf("bert/encoder/layer_3/attention/self/query/kernel")[1] and
          not names.tf_to_hf("cls/seq_relationship/output_weights")[1],
          "TF kernels are transposed, seq_relationship/output_weights ([2, H]) is not")
    ms = {
        "bert.bert.bert_encoder.layers.0.attention.attention.query_layer.weight": "bert.encoder.layer.0.attention.self.query.weight",
        "bert.bert.bert_embedding_postprocessor.full_position_embedding.embedding_table": "bert.embeddings.position_embeddings.weight",
        "bert.bert.bert_encoder.layers.11.intermediate.weight": "bert.encoder.layer.11.intermediate.dense.weight",
        "bert.bert.dense.weight": "bert.pooler.dense.weight",
        "bert.cls1.output_bias": "cls.predictions.bias",
        "bert.cls2.dense.weight": "cls.seq_relationship.weight",
        "bert.dense_1.weight": "classifier.weight",
        "bert.dense1.bias": "qa_outputs.bias",
        "loss.transitions": "crf.transitions"}
    check(all((names.ms_to_hf(k) or ("?",))[0] == v for k, v in ms.items()),
          "MindSpore names from mindspore_bert_names.md map as documented (pretraining and fine-tuning)")
    hf = {"embeddings.LayerNorm.gamma": "bert.embeddings.LayerNorm.weight",
          "bert.encoder.layer.0.output.LayerNorm.beta": "bert.encoder.layer.0.output.LayerNorm.bias",
          "cls.predictions.decoder.bias": "cls.predictions.bias", "pooler.dense.weight": "bert.pooler.dense.weight"}
    check(all(names.hf_canonical(k) == v for k, v in hf.items()), "HF variants (gamma/beta, no bert., decoder.bias) map")


# ---------------------------------------------------------------------------------------------
# 1. TF: real checkpoints

def keras_batch():
    rng = np.random.default_rng(7)
    B, T, MP = 2, 12, 3
    mask = np.ones((B, T), np.int32)
    mask[1, 9:] = 0
    return {"input_ids": rng.integers(0, 15, (B, T)).astype(np.int32),
            "token_type_ids": np.array([[0] * 6 + [1] * 6] * B, np.int32),
            "attention_mask": mask,
            "masked_lm_positions": np.array([[1, 4, 7], [2, 3, 8]], np.int32),
            "masked_lm_ids": rng.integers(0, 15, (B, MP)).astype(np.int32),
            "next_sentence_label": np.array([0, 1], np.int32)}


def test_tf_keras():
    section("TF: the real keras_bert_tiny checkpoint (139 entries, global_step 20)")
    if not have_shared("keras_bert_tiny", KERAS + ".index"):
        return
    bundle, arrays = tf_bundle.read_bundle(KERAS)   # verifies every entry's CRC32C
    check(len(bundle.entries) == 139, f"139 entries parsed ({len(bundle.entries)}), every masked CRC32C verified")
    slots = [e for e in bundle.entries if e.name.endswith(("/adam_m", "/adam_v"))]
    check(len(slots) == 92 and int(arrays["global_step"]) == 20, "46 model variables + 92 Adam slots + global_step = 20")
    check(np.allclose(arrays["bert/embeddings/LayerNorm/gamma"], [0.999994, 1.000006, 0.999994, 1.000005], atol=1e-6) and
          np.allclose(arrays["bert/embeddings/word_embeddings"][0], [-0.00626, 0.020773, 0.025259, 0.02232], atol=1e-6),
          "sample values as in PROVENANCE.md")
    shard = open(KERAS + ".data-00000-of-00001", "rb").read()
    ends = [e.offset + e.size for e in bundle.entries]
    check(all(crc32c.mask(crc32c.crc32c(shard[e.offset:e.offset + e.size])) == e.crc for e in bundle.entries) and
          [e.offset for e in bundle.entries] == [0] + ends[:-1] and ends[-1] == len(shard) == 8420,
          "all 139 CRCs recomputed here match; the entries tile the 8420-byte shard in name order")

    model, optim = tmp("keras.safetensors"), tmp("keras_optim.safetensors")
    rc, err = convert(tf2st, KERAS, model, "--optim-out", optim)
    if not check(rc == 0, f"tf2st converts it (model + training state){'' if rc == 0 else ': ' + err.strip()}"):
        return
    t, meta = safetensors_np.read(model)
    import json
    cfg = json.loads(meta["config"])
    check(cfg["hidden_act"] == "gelu_tanh" and cfg["layer_norm_eps"] == 1e-12,
          "config records Google's GELU as gelu_tanh and layer_norm_eps 1e-12")
    # transposed by the rule of tf_bert_names.md (every `kernel`, nothing else), not by names.py's flag
    exact = all(np.array_equal(t[r.hf], arrays[r.tf].T if r.tf.endswith("/kernel") else arrays[r.tf]) for r in names.rows(2))
    check(exact and len(t) == 46, "the 46 tensors are the TF arrays (kernels transposed), bit for bit")

    batch = keras_batch()
    inputs = tmp("keras_inputs.safetensors")
    safetensors_np.write(inputs, batch)
    got = run_forward(model, inputs, optim, "adamw_gb")
    ref = tf_forward(arrays, 4, batch, "tanh")
    compare_forward("keras forward vs numpy on TF arrays:", got, ref,
                    ["emb", "layer.0", "layer.1", "pooled", "mlm_logits", "nsp_logits"])
    if got is not None:
        m = np.concatenate([arrays[r.tf + "/adam_m"].T.reshape(-1) if r.transpose else arrays[r.tf + "/adam_m"].reshape(-1)
                            for r in names.rows(2)])
        v = np.concatenate([arrays[r.tf + "/adam_v"].T.reshape(-1) if r.transpose else arrays[r.tf + "/adam_v"].reshape(-1)
                            for r in names.rows(2)])
        check(np.array_equal(got["optim.m"], m) and np.array_equal(got["optim.v"], v) and got["optim.step"][0] == 20,
              "bert_optim_load reads the Adam moments (bert.h layout) and step 20")

    # After 20 steps from Google's init (std 0.02) the activations are so small that a transposed
    # kernel or the other GELU changes the outputs by < 1e-5. So the same TF arrays are also run
    # scaled up (kernels x40, embeddings x20, biases + N(0, 0.5)), written as a TF bundle under the
    # same names, where both mistakes show by orders of magnitude (checked first).
    section("TF: the keras arrays scaled up, where a wrong transpose or GELU would show")
    rng = np.random.default_rng(0)
    big = {}
    for k, a in arrays.items():
        if "/adam_" in k or k == "global_step":
            continue
        if k.endswith(("/kernel", "output_weights")):
            a = a * 40
        elif k.endswith("_embeddings"):
            a = a * 20
        elif k.endswith(("/bias", "output_bias")):
            a = a + rng.standard_normal(a.shape).astype(np.float32) * 0.5
        big[k] = a.astype(np.float32)
    os.makedirs(tmp("keras_big"), exist_ok=True)
    tf_bundle.write_bundle(tmp("keras_big/bert_model.ckpt"), big)
    shutil.copy(os.path.join(os.path.dirname(KERAS), "bert_config.json"), tmp("keras_big"))
    ref_tanh, ref_erf = tf_forward(big, 4, batch, "tanh"), tf_forward(big, 4, batch, "erf")
    flipped = dict(big)
    flipped["bert/encoder/layer_0/attention/self/query/kernel"] = big["bert/encoder/layer_0/attention/self/query/kernel"].T
    ref_flip = tf_forward(flipped, 4, batch, "tanh")
    d_act = max(np.abs(ref_tanh[k] - ref_erf[k]).max() for k in ("layer.1", "mlm_logits"))
    d_tr = max(np.abs(ref_tanh[k] - ref_flip[k]).max() for k in ("layer.1", "mlm_logits"))
    check(d_act > 100 * ATOL and d_tr > 100 * ATOL,
          f"the comparison discriminates: erf vs tanh GELU differ by {d_act:.1e}, a transposed query kernel by {d_tr:.1e}")
    for act, ref_big, extra in (("gelu_tanh", ref_tanh, []), ("gelu", ref_erf, ["--act", "gelu"])):
        out = tmp(f"keras_big_{act}.safetensors")
        rc, err = convert(tf2st, tmp("keras_big/bert_model.ckpt"), out, *extra)
        if check(rc == 0, f"tf2st converts the scaled checkpoint ({act}{', the default' if not extra else ''})"):
            compare_forward(f"scaled, {act}, vs numpy on TF arrays:", run_forward(out, inputs), ref_big,
                            ["emb", "layer.0", "layer.1", "pooled", "mlm_logits", "nsp_logits"])

    section("TF round trip: TF -> safetensors -> TF -> safetensors")
    os.makedirs(tmp("tf_rt"), exist_ok=True)
    back = tmp("tf_rt/bert_model.ckpt")
    rc, err = convert(st2tf, model, back, "--optim", optim)
    check(rc == 0, f"st2tf writes the TF checkpoint back{'' if rc == 0 else ': ' + err.strip()}")
    check(open(back + ".index", "rb").read() == open(KERAS + ".index", "rb").read(),
          "the .index is byte-identical to the real one (4497 bytes)")
    check(open(back + ".data-00000-of-00001", "rb").read() == open(KERAS + ".data-00000-of-00001", "rb").read(),
          "the data shard is byte-identical to the real one (8420 bytes)")
    model2, optim2 = tmp("keras2.safetensors"), tmp("keras2_optim.safetensors")
    rc, err = convert(tf2st, back, model2, "--optim-out", optim2)
    check(rc == 0 and open(model, "rb").read() == open(model2, "rb").read() and
          open(optim, "rb").read() == open(optim2, "rb").read(), "-> safetensors again: model and training state bit-identical")
    rc, out, err = cli("tf2st.py", KERAS, tmp("keras_cli.safetensors"))
    check(rc == 0 and open(tmp("keras_cli.safetensors"), "rb").read() == open(model, "rb").read() and
          "not carried" in err, "command line: same file; the dropped adam_m/adam_v/global_step are noted on stderr")


def test_tf_index_only():
    section("TF: index-only Google checkpoints (data shards absent)")
    cases = [("chinese_L-12_H-768_A-12_index_only", 206, 12), ("bert_tiny_L-2_H-128_A-2_index_only", 46, 2),
             ("bert_mini_L-4_H-256_A-4_index_only", 78, 4), ("bert_medium_L-8_H-512_A-8_index_only", 142, 8)]
    for d, count, L in cases:
        prefix = os.path.join(TF_DIR, d, "bert_model.ckpt")
        if not have_shared(d, prefix + ".index"):
            continue
        b = tf_bundle.read_index(prefix)
        cfg = common.bert_config(common.load_config_json(os.path.join(TF_DIR, d, "bert_config.json")), d)
        want = names.shapes(cfg)
        mapped, bad = set(), []
        for e in b.entries:
            hit = names.tf_to_hf(e.name)
            if hit is None:
                bad.append(e.name)
                continue
            # the rule from tf_bert_names.md, not names.py's flag: only `kernel`s are [in, out]
            exp = tuple(reversed(want[hit[0]])) if e.name.endswith("/kernel") else want[hit[0]]
            if e.shape != exp:
                bad.append(f"{e.name} {list(e.shape)}")
            mapped.add(hit[0])
        check(len(b.entries) == count and not bad and mapped == set(want),
              f"{d}: {count} entries, each maps to a bert.h tensor of the right shape, all {len(want)} covered"
              + (f" (bad: {bad[:2]})" if bad else ""))
        rc, err = convert(tf2st, prefix, tmp("absent.safetensors"))
        check(one_line_error(rc, err, ".data-00000-of-00001") and "data shard absent" in err,
              f"{d}: converting reports in one line: {err.strip()[-70:]}")
        if d.startswith("chinese"):
            rc, out, err = cli("tf2st.py", prefix, "--check")
            check(rc == 0 and "206 map to bert.h tensors with the right shapes" in out and "data shard absent" in out,
                  "tf2st --check prints the mapping summary and the absent shard")
    section("TF: the writer lays out .index files as TF does")
    for d in ["keras_bert_tiny"] + [c[0] for c in cases]:
        prefix = os.path.join(TF_DIR, d, "bert_model.ckpt")
        if not have_shared(d, prefix + ".index"):
            continue
        b = tf_bundle.read_index(prefix)
        items = [(b"", tf_bundle.encode_header(b.num_shards, b.version))] + \
                [(e.name.encode(), tf_bundle.encode_entry(e)) for e in b.entries]
        orig = open(prefix + ".index", "rb").read()
        check(tf_bundle.build_table(items) == orig, f"{d}: re-encoded entries + SSTable = the real {len(orig)} bytes")


# ---------------------------------------------------------------------------------------------
# 2. HF-named safetensors from the PyTorch reference, and TF round trips of it

def tiny_weights():
    return safetensors_np.read(os.path.join(REF, "tiny.safetensors"))


def test_hf_reference():
    section("HF names: the PyTorch reference's tiny.safetensors in bert.h")
    tiny = os.path.join(REF, "tiny.safetensors")
    keys = ["emb", "layer.0", "layer.1", "pooled", "mlm_logits", "nsp_logits"]
    erf, tanh = os.path.join(REF, "tiny_erf_d0.safetensors"), os.path.join(REF, "tiny_tanh_d0.safetensors")
    ref_erf, ref_tanh = safetensors_np.read(erf)[0], safetensors_np.read(tanh)[0]
    compare_forward("as is vs reference (erf):", run_forward(tiny, erf), ref_erf, keys)

    section("safetensors -> TF -> safetensors (the reference model)")
    os.makedirs(tmp("tiny_tf"), exist_ok=True)
    rc, err = convert(st2tf, tiny, tmp("tiny_tf/bert_model.ckpt"))
    check(rc == 0 and "erf GELU" in err, "st2tf writes it, noting that TF computes its \"gelu\" with tanh")
    b, arrays = tf_bundle.read_bundle(tmp("tiny_tf/bert_model.ckpt"))
    w, _ = tiny_weights()
    check(len(b.entries) == 46 and all(np.array_equal(arrays[r.tf], w[r.hf].T if r.transpose else w[r.hf])
                                        for r in names.rows(2)), "46 TF variables, kernels [in, out], values exact")
    for act, ref, extra in (("gelu", ref_erf, ["--act", "gelu"]), ("gelu_tanh", ref_tanh, [])):
        out = tmp(f"tiny_back_{act}.safetensors")
        rc, err = convert(tf2st, tmp("tiny_tf/bert_model.ckpt"), out, *extra)
        t, _ = safetensors_np.read(out)
        check(rc == 0 and all(np.array_equal(t[n], w[n]) for n in w), f"back to safetensors ({act}): all 46 tensors bit-identical")
        compare_forward(f"round trip ({act}) vs reference:", run_forward(out, erf if act == "gelu" else tanh), ref, keys)
    os.makedirs(tmp("tiny_tf2"), exist_ok=True)
    rc1, _ = convert(st2tf, tmp("tiny_back_gelu_tanh.safetensors"), tmp("tiny_tf2/bert_model.ckpt"))
    same = all(open(tmp(f"tiny_tf/bert_model.ckpt{x}"), "rb").read() == open(tmp(f"tiny_tf2/bert_model.ckpt{x}"), "rb").read()
               for x in (".index", ".data-00000-of-00001"))
    check(rc1 == 0 and same, "-> TF again: .index and data bit-identical")

    section("TF fine-tuned checkpoint (run_classifier names, no cls/ heads)")
    ft = {tf: (w[hf].T if tr else w[hf]) for hf, (tf, tr) in ((n, names.hf_to_tf(n)) for n in w) if not hf.startswith("cls.")}
    ft["output_weights"] = np.ones((3, 64), np.float32)
    ft["output_bias"] = np.arange(3, dtype=np.float32)
    ft["some/extra/variable"] = np.zeros(2, np.float32)
    os.makedirs(tmp("ft"), exist_ok=True)
    tf_bundle.write_bundle(tmp("ft/model.ckpt-100"), ft)
    shutil.copy(tmp("tiny_tf/bert_config.json"), tmp("ft/bert_config.json"))
    rc, err = convert(tf2st, tmp("ft/model.ckpt-100"), tmp("ft.safetensors"))
    check(one_line_error(rc, err, "model.ckpt-100.index") and "some/extra/variable" in err,
          "an unmapped variable is an error naming it")
    rc, err = convert(tf2st, tmp("ft/model.ckpt-100"), tmp("ft.safetensors"), "--skip-unknown")
    t, _ = safetensors_np.read(tmp("ft.safetensors")) if rc == 0 else ({}, {})
    check(rc == 0 and np.array_equal(t.get("classifier.weight"), ft["output_weights"]) and "initialised" in err,
          "--skip-unknown: converts; output_weights -> classifier.weight; absent cls/ heads initialised (noted)")
    run_forward(tmp("ft.safetensors"), erf)
    # a training state as bert_optim_save writes it (the 46 bert.h tensors only) next to a model that
    # also carries classifier.*: the head's slots are written as zeros, with a note
    optim = tmp("ft_optim.safetensors")
    safetensors_np.write(optim, [(f"{k}.{n}", np.full_like(a, 0.25 if k == "m" else 0.5)) for k in "mv" for n, a in w.items()],
                         {"format": "bert.h-optim", "optimizer": "adamw_gb", "step": "42"})
    rc, err = convert(st2tf, tmp("ft.safetensors"), tmp("ft_tf/model.ckpt-42"), "--optim", optim)
    b, arrays = tf_bundle.read_bundle(tmp("ft_tf/model.ckpt-42")) if rc == 0 else (None, {})
    check(rc == 0 and "written as zeros" in err and int(arrays.get("global_step", -1)) == 42 and
          not arrays["output_weights/adam_m"].any() and (arrays["bert/pooler/dense/kernel/adam_v"] == 0.5).all(),
          "st2tf --optim with a bert.h training state: adam slots + global_step 42, the classifier's slots zero (noted)")
    rc, err = convert(hf2st, os.path.join(REF, "tiny.safetensors"), tmp("hf_meta.safetensors"))
    t, _ = safetensors_np.read(tmp("hf_meta.safetensors")) if rc == 0 else ({}, {})
    check(rc == 0 and list(t) == list(w) and all(np.array_equal(t[n], w[n]) for n in w),
          "hf2st on a safetensors file takes the config from its __metadata__ when no config.json is beside it")


# ---------------------------------------------------------------------------------------------
# 3. MindSpore

def test_ms_lenet():
    section("MindSpore: the real LeNet checkpoint")
    if not have_shared("checkpoint_lenet-1_1875.ckpt", LENET):
        return
    p = ms_ckpt.read(LENET)
    want = [("conv1.weight", [6, 1, 5, 5]), ("conv2.weight", [16, 6, 5, 5]), ("fc1.weight", [120, 400]), ("fc1.bias", [120]),
            ("fc2.weight", [84, 120]), ("fc2.bias", [84]), ("fc3.weight", [10, 84]), ("fc3.bias", [10]),
            ("learning_rate", []), ("momentum", [])]
    want += [("moments." + n, s) for n, s in want[:8]]
    check([(t, list(a.shape)) for t, a in p] == want, "18 entries with the documented names, order and dims")
    d = dict(p)
    check(np.allclose(d["conv1.weight"].reshape(-1)[:4], [-0.336955, -0.137829, 0.00323, -0.006554], atol=1e-6),
          "conv1.weight starts -0.336955, -0.137829, 0.00323, -0.006554")
    check(d["learning_rate"].dtype == np.float64 and d["momentum"].dtype == np.float64 and
          all(a.dtype == np.float32 for t, a in p if t not in ("learning_rate", "momentum")),
          "learning_rate and momentum are Float64 scalars (dims [0]), the rest Float32")
    ms_ckpt.write(tmp("lenet.ckpt"), p)
    check(open(tmp("lenet.ckpt"), "rb").read() == open(LENET, "rb").read(), "rewriting it gives the same 494163 bytes")
    rc, err = convert(ms2st, LENET, tmp("lenet.safetensors"))
    check(one_line_error(rc, err, LENET) and "conv1.weight" in err, "ms2st refuses it (not BERT) in one line")


def ms_bert_params(w, rng, finetune=False):
    """tests/ref/tiny.safetensors under MindSpore model-zoo names, with LAMB slots and scalars."""
    out = []
    for r in names.rows(2):
        if r.hf.startswith("cls."):
            if finetune:
                continue
            tag = "bert." + r.ms
        else:
            tag = "bert.bert." + r.ms
        a = w[r.hf]
        if r.hf == "bert.embeddings.word_embeddings.weight":
            a = a.astype(np.float16)   # Float16 in the file
        if r.hf == "cls.predictions.bias":
            a = a.astype(np.float64)   # Float64 in the file
        out.append((tag, a))
    if finetune:
        out += [("bert.dense_1.weight", rng.standard_normal((5, 64)).astype(np.float32)),
                ("bert.dense_1.bias", np.zeros(5, np.float32)),
                ("loss.transitions", rng.standard_normal((7, 7)).astype(np.float32))]
        return out
    tags = [t for t, _ in out]
    for fam in ("lamb_m.", "lamb_v."):   # a second moment is never negative (bert_optim_load refuses one that is)
        out += [(fam + t, (np.abs if fam == "lamb_v." else np.asarray)(rng.standard_normal(w[r.hf].shape)).astype(np.float32))
                for t, r in zip(tags, names.rows(2))]
    out += [("global_step", np.array([1234], np.int32)), ("learning_rate", np.array([1e-4], np.float32)),
            ("loss_scale", np.array([65536.0], np.float32))]
    return out


def test_ms_bert():
    section("MindSpore: a BERT checkpoint in the model zoo's layout (sliced, F16/F64, LAMB)")
    w, _ = tiny_weights()
    rng = np.random.default_rng(3)
    params = ms_bert_params(w, rng)
    ck = tmp("bert_pretrain.ckpt")
    ms_ckpt.write(ck, params, slice_bytes=4096)
    buf = open(ck, "rb").read()
    values = wire.fields(buf, 0, len(buf), ck, "test")
    tags = [bytes(buf[a:b]).decode() for _, _, (s, e) in values for n, _, (a, b) in wire.fields(buf, s, e, ck, "t") if n == 1]
    check(len(values) > len(params) and tags.count("bert.bert.bert_embedding_lookup.embedding_table") == 4 and
          tags.count("lamb_m.bert.bert.bert_encoder.layers.0.attention.attention.query_layer.weight") == 4,
          f"the file holds {len(values)} Values for {len(params)} parameters (word embeddings in 4 slices)")
    model, optim = tmp("ms.safetensors"), tmp("ms_optim.safetensors")
    rc, err = convert(ms2st, ck, model, "--heads", "4", "--optim-out", optim)
    if not check(rc == 0, f"ms2st converts it{'' if rc == 0 else ': ' + err.strip()}"):
        return
    t, meta = safetensors_np.read(model)
    import json
    cfg = json.loads(meta["config"])
    check(cfg["layer_norm_eps"] == 1e-7 and cfg["hidden_act"] == "gelu_tanh" and cfg["num_hidden_layers"] == 2 and
          cfg["vocab_size"] == 112 and cfg["num_attention_heads"] == 4,
          "config from the shapes + --heads; MindSpore's LayerNorm epsilon 1e-7 and GELU (tanh) recorded")
    src = dict(params)
    ok = all(np.array_equal(t[r.hf], np.asarray(src[("bert." if r.hf.startswith("cls.") else "bert.bert.") + r.ms], np.float32))
             for r in names.rows(2))
    check(ok and len(t) == 46, "all 46 tensors equal the source arrays (F16/F64 widened to F32, slices joined)")
    o, ometa = safetensors_np.read(optim)
    check(ometa.get("optimizer") == "lamb" and ometa.get("step") == "1234" and
          all(np.array_equal(o["m." + r.hf], src["lamb_m." + ("bert." if r.hf.startswith("cls.") else "bert.bert.") + r.ms])
              for r in names.rows(2)), "training state: optimizer lamb, step 1234 from global_step, moments equal lamb_m/lamb_v")
    got = run_forward(model, os.path.join(REF, "tiny_tanh_d0.safetensors"), optim, "lamb")
    if got is not None:
        m = np.concatenate([o["m." + r.hf].reshape(-1) for r in names.rows(2)])
        check(np.array_equal(got["optim.m"], m) and got["optim.step"][0] == 1234, "bert_optim_load reads the LAMB moments and step")
        # the reference ran with eps 1e-12 and tanh; this model differs only in eps (and the F16 embeddings)
        ref = safetensors_np.read(os.path.join(REF, "tiny_tanh_d0.safetensors"))[0]
        close("MindSpore model forward ~ reference (F16 embeddings)", got["nsp_logits"], ref["nsp_logits"], 2e-2, 2e-2)
    rc, err = convert(ms2st, ck, tmp("ms_noheads.safetensors"))
    check(one_line_error(rc, err, ck) and "--heads" in err, "without --heads or --config: one line saying so")

    section("MindSpore out: bert.h safetensors -> .ckpt (st2ms) and back")
    back_ck, again_ck = tmp("st2ms.ckpt"), tmp("st2ms_again.ckpt")
    rc1, err1 = convert(st2ms, model, back_ck, "--optim", optim)
    rc2, err2 = convert(ms2st, back_ck, tmp("st2ms.safetensors"), "--heads", "4", "--optim-out", tmp("st2ms_optim.safetensors"))
    rc3, err3 = convert(st2ms, tmp("st2ms.safetensors"), again_ck, "--optim", tmp("st2ms_optim.safetensors"))
    if check(rc1 == 0 and rc2 == 0 and rc3 == 0, "st2ms, ms2st on its output, st2ms again" +
             ("" if rc1 == rc2 == rc3 == 0 else ": " + (err1 + err2 + err3).strip()[:300])):
        t1, _ = safetensors_np.read(model)
        t2, m2 = safetensors_np.read(tmp("st2ms.safetensors"))
        o1, _ = safetensors_np.read(optim)
        o2, om2 = safetensors_np.read(tmp("st2ms_optim.safetensors"))
        check(list(t1) == list(t2) and all(np.array_equal(t1[n], t2[n]) for n in t1) and
              json.loads(m2["config"])["layer_norm_eps"] == 1e-7,
              "the model zoo's names and back: all 46 tensors bit for bit, in bert.h's order")
        check(om2.get("optimizer") == "lamb" and om2.get("step") == "1234" and all(np.array_equal(o1[n], o2[n]) for n in o1),
              "the LAMB moments as lamb_m/lamb_v and the step as global_step, back bit for bit")
        check(open(back_ck, "rb").read() == open(again_ck, "rb").read(), "a second round trip writes the same .ckpt, byte for byte")
        ms_tags = [tag for tag, _ in ms_ckpt.read(back_ck)]
        check("bert.bert.bert_embedding_lookup.embedding_table" in ms_tags and "bert.cls2.dense.weight" in ms_tags and
              "lamb_v.bert.bert.bert_encoder.layers.1.output.layernorm.beta" in ms_tags and "global_step" in ms_tags and
              "bert_net_cfg" in err1, "the .ckpt's tags are the model zoo's (bert.bert.*, bert.cls2.*, lamb_v.*, global_step); "
              "the yaml's bert_net_cfg printed")
    rc, err = convert(st2ms, model, tmp("st2ms_eps.ckpt"))
    check(rc == 0 and "layer_norm_eps" not in err and "erf GELU" not in err, "a model already on MindSpore's eps and GELU: no notes")
    rc, err = convert(st2ms, os.path.join(REF, "tiny.safetensors"), tmp("st2ms_tiny.ckpt"), "--skip-unknown")
    check(rc == 0 and "layer_norm_eps 1e-12" in err and "erf GELU" in err,
          "bert.h's defaults (eps 1e-12, erf GELU) written with a note on each" + ("" if rc == 0 else ": " + err.strip()[:200]))

    section("MindSpore: fine-tuning checkpoints (BertCLS/BertNER names)")
    ft = tmp("bert_ner.ckpt")
    fparams = ms_bert_params(w, rng, finetune=True)
    ms_ckpt.write(ft, fparams)
    cfgfile = tmp("ms_config.json")
    open(cfgfile, "w").write(json.dumps({k: cfg[k] for k in common.CONFIG_KEYS[:7]}))
    rc, err = convert(ms2st, ft, tmp("ms_ner.safetensors"), "--config", cfgfile)
    t, meta = safetensors_np.read(tmp("ms_ner.safetensors")) if rc == 0 else ({}, {})
    fd = dict(fparams)
    check(rc == 0 and np.array_equal(t.get("classifier.weight"), fd["bert.dense_1.weight"]) and
          np.array_equal(t.get("crf.transitions"), fd["loss.transitions"]) and "initialised" in err and
          json.loads(meta["config"])["layer_norm_eps"] == 1e-7,
          "dense_1 -> classifier.*, loss.transitions -> crf.transitions, absent heads initialised (noted), eps 1e-7")
    run_forward(tmp("ms_ner.safetensors"), os.path.join(REF, "tiny_tanh_d0.safetensors"))


# ---------------------------------------------------------------------------------------------
# 4. PyTorch pytorch_model.bin

def _p_str(s):
    b = s.encode("utf-8")
    return b"X" + len(b).to_bytes(4, "little") + b


def _p_int(i):
    return b"J" + int(i).to_bytes(4, "little", signed=True)


def _p_tuple(items):
    return b"(" + b"".join(items) + b"t"


def _p_global(mod, name):
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def torch_zip(path, tensors, transposed=(), pickle_body=None):
    """A pytorch_model.bin as torch.save (zip format) writes it, built by hand: data.pkl is
    OrderedDict{name: _rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict())}."""
    storages, body = [], b""
    kinds = {np.dtype("float32"): "FloatStorage", np.dtype("int64"): "LongStorage", np.dtype("float16"): "HalfStorage"}
    for name, a in tensors:
        a = np.asarray(a)
        key = str(len(storages))
        if name in transposed:   # stored as the transpose's storage with swapped strides
            storages.append((key, np.ascontiguousarray(a.T)))
            stride = (1, a.shape[0])
        else:
            storages.append((key, np.ascontiguousarray(a)))
            stride = tuple(int(np.prod(a.shape[i + 1:])) for i in range(a.ndim))
        pid = _p_tuple([_p_str("storage"), _p_global("torch", kinds[a.dtype]), _p_str(key), _p_str("cpu"), _p_int(a.size)])
        body += _p_str(name) + _p_global("torch._utils", "_rebuild_tensor_v2") + _p_tuple(
            [pid + b"Q", _p_int(0), _p_tuple([_p_int(d) for d in a.shape]), _p_tuple([_p_int(s) for s in stride]),
             b"\x89", _p_global("collections", "OrderedDict") + b")R"]) + b"R"
    pkl = b"\x80\x02" + _p_global("collections", "OrderedDict") + b")R(" + body + b"u."
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle_body if pickle_body is not None else pkl)
        z.writestr("archive/byteorder", "little")
        for key, a in storages:
            z.writestr(f"archive/data/{key}", a.astype(a.dtype.newbyteorder("<")).tobytes())
        z.writestr("archive/version", "3\n")


def hf_state_dict(w, old_names=False):
    sd = []
    for n, a in w.items():
        if old_names:
            n = n.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        sd.append((n, a))
    sd += [("cls.predictions.decoder.weight", w["bert.embeddings.word_embeddings.weight"]),
           ("cls.predictions.decoder.bias", w["cls.predictions.bias"]),
           ("bert.embeddings.position_ids", np.arange(32, dtype=np.int64)[None])]
    return sd


def tiny_dir(name):
    """(weights, metadata, a fresh folder under TMP holding the tiny model's config.json)."""
    w, meta = tiny_weights()
    d = tmp(name)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "config.json"), "w").write(meta["config"])
    return w, meta, d


def test_pytorch():
    section("PyTorch: pytorch_model.bin (zip format, restricted unpickler)")
    w, meta, d = tiny_dir("hf")
    import json
    erf = os.path.join(REF, "tiny_erf_d0.safetensors")
    ref = safetensors_np.read(erf)[0]
    for old in (False, True):
        binf = os.path.join(d, "pytorch_model.bin")
        torch_zip(binf, hf_state_dict(w, old), transposed=("bert.encoder.layer.0.attention.self.query.weight",))
        out = tmp(f"hf_{int(old)}.safetensors")
        rc, err = convert(hf2st, binf, out)
        t, m = safetensors_np.read(out) if rc == 0 else ({}, {})
        check(rc == 0 and list(t) == list(w) and all(np.array_equal(t[n], w[n]) for n in w) and
              json.loads(m["config"])["hidden_act"] == "gelu",
              f"BertForPreTraining keys{' with old gamma/beta' if old else ''} (+ tied decoder, decoder.bias, "
              f"position_ids, a strided tensor): 46 tensors bit-exact{'' if rc == 0 else ': ' + err.strip()}")
    compare_forward("converted .bin vs reference:", run_forward(tmp("hf_1.safetensors"), erf), ref,
                    ["emb", "layer.1", "pooled", "mlm_logits", "nsp_logits"])
    sd = hf_state_dict(w)
    sd[-3] = ("cls.predictions.decoder.weight", np.ones_like(w["bert.embeddings.word_embeddings.weight"]))
    torch_zip(os.path.join(d, "untied.bin"), sd)
    rc, err = convert(hf2st, os.path.join(d, "untied.bin"), tmp("x.safetensors"))
    check(one_line_error(rc, err, "untied.bin") and "ties" in err, "an untied decoder is refused (bert.h ties it)")

    section("PyTorch: a pickle naming any other global is refused, not run")
    marker = tmp("pwned")
    for mod, fn in (("os", "system"), ("builtins", "eval"), ("subprocess", "call"), ("posix", "system")):
        body = b"\x80\x02" + _p_global(mod, fn) + _p_tuple([_p_str(f"touch {marker}") if fn != "eval"
                                                             else _p_str(f"open({marker!r}, 'w')")]) + b"R."
        torch_zip(os.path.join(d, "evil.bin"), [], pickle_body=body)
        rc, err = convert(hf2st, os.path.join(d, "evil.bin"), tmp("x.safetensors"))
        check(one_line_error(rc, err, "evil.bin") and f"refusing pickle global {mod}.{fn}" in err and
              not os.path.exists(marker), f"{mod}.{fn}: refused ({err[err.find('refusing'):][:45]}...), nothing executed")
    rc, out, err = cli("hf2st.py", os.path.join(d, "evil.bin"), tmp("x.safetensors"))
    check(rc == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err and not os.path.exists(marker),
          "the same from the command line: one line, no traceback")

    section("PyTorch: legacy (pre-1.6) torch.save files from ../shared/data")
    if have_shared("pt_legacy_dummy", PT_LEGACY):
        for sub, fname, n in (("fastnlp_small_bert", "small_pytorch_model.bin", 39),
                              ("allennlp_bert_xsmall_dummy", "pytorch_model.bin", 23)):
            src = os.path.join(PT_LEGACY, sub, fname)
            import torch_pickle
            raw = torch_pickle.load(src)
            out = tmp(f"{sub}.safetensors")
            rc, err = convert(hf2st, src, out)
            t, _ = safetensors_np.read(out) if rc == 0 else ({}, {})
            ok = rc == 0 and len(raw) == n and all(np.array_equal(t[names.hf_canonical(k)], v) for k, v in raw.items())
            check(ok and "initialised" in err, f"{sub}: {n} tensors (Parameters unwrapped{', no bert. prefix' if n == 23 else ''}) "
                                               f"converted exactly; heads initialised (noted)")
            cfg = json.loads(safetensors_np.read(out)[1]["config"]) if rc == 0 else {}
            if cfg:
                B, T = 1, 6
                inp = tmp("legacy_inputs.safetensors")
                safetensors_np.write(inp, {"input_ids": np.arange(T, dtype=np.int32)[None] % cfg["vocab_size"],
                                           "token_type_ids": np.zeros((B, T), np.int32), "attention_mask": np.ones((B, T), np.int32),
                                           "masked_lm_positions": np.array([[1]], np.int32), "masked_lm_ids": np.array([[2]], np.int32),
                                           "next_sentence_label": np.array([0], np.int32)})
                run_forward(out, inp)

    section("PyTorch: files written by torch itself")
    probe = subprocess.run([PY, "-c", "import torch"], capture_output=True)
    if probe.returncode != 0:
        print("skipped: torch not importable here (the hand-written zip above covers the format)")
        return
    script = f"""
import sys, torch, collections
sys.path.insert(0, {os.path.join(ROOT, 'convert')!r})
import safetensors_np
w, _ = safetensors_np.read({os.path.join(REF, 'tiny.safetensors')!r})
sd = collections.OrderedDict((k, torch.nn.Parameter(torch.from_numpy(v.copy()))) for k, v in w.items())
sd['bert.embeddings.position_ids'] = torch.arange(32)[None]
torch.save(sd, {os.path.join(d, 'torch_zip.bin')!r})
torch.save(sd, {os.path.join(d, 'torch_legacy.bin')!r}, _use_new_zipfile_serialization=False)
"""
    r = subprocess.run([PY, "-c", script], capture_output=True, text=True, timeout=300)
    if not check(r.returncode == 0, "torch.save wrote zip and legacy files" + ("" if r.returncode == 0 else ": " + r.stderr[-200:])):
        return
    for f in ("torch_zip.bin", "torch_legacy.bin"):
        out = tmp(f + ".safetensors")
        rc, err = convert(hf2st, os.path.join(d, f), out)
        t, _ = safetensors_np.read(out) if rc == 0 else ({}, {})
        check(rc == 0 and all(np.array_equal(t[n], w[n]) for n in w), f"{f}: nn.Parameters rebuilt, 46 tensors bit-exact")


# ---------------------------------------------------------------------------------------------
# 5. corrupt inputs

def corrupt(src, dst, fn):
    data = bytearray(open(src, "rb").read())
    data = fn(data)
    with open(dst, "wb") as f:
        f.write(bytes(data))
    return dst


def flip(pos):
    def f(d):
        d[pos % len(d)] ^= 0x5A
        return d
    return f


def expect_error(label, mod, argv, path_part, words=(), **kw):
    rc, err = convert(mod, *argv, **kw)
    ok = one_line_error(rc, err, path_part) and all(w in err for w in words)
    check(ok, f"{label}: {err.strip()[:110] if err.strip() else f'exit {rc}, no message'}")


def fuzz(label, mod, src, argv_fn, n, rng):
    """Random truncations and byte flips: each run either succeeds or fails with one line."""
    assert src.startswith(TMP), "fuzz copies only inside the temp dir"
    data = open(src, "rb").read()
    bad = []
    for i in range(n):
        d = bytearray(data)
        if i % 3 == 0:
            d = d[:int(rng.integers(0, len(d)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                d[int(rng.integers(0, len(d)))] ^= int(rng.integers(1, 256))
        dst = src + ".fuzz"
        open(dst, "wb").write(bytes(d))
        rc, err = convert(mod, *argv_fn(dst), timeout=30)
        if not (rc == 0 or one_line_error(rc, err, "")):
            bad.append(err.strip()[:100] or f"exit {rc}")
    check(not bad, f"{label}: {n} random truncations/flips -> success or one clear line" + (f" (e.g. {bad[0]})" if bad else ""))


def test_corrupt():
    section("corrupt inputs: one line \"convert: FILE: problem\", exit 1, no traceback, no hang")
    rng = np.random.default_rng(11)
    w, meta = tiny_weights()
    # a TF bundle with optimizer slots, written from the reference model
    os.makedirs(tmp("c_tf"), exist_ok=True)
    src = tmp("c_tf/bert_model.ckpt")
    optim = tmp("c_optim.safetensors")
    safetensors_np.write(optim, [(f"{k}.{n}", np.full_like(a, 0.5)) for k in "mv" for n, a in w.items()],
                         {"format": "bert.h-optim", "optimizer": "adamw_gb", "step": "7"})
    rc, _ = convert(st2tf, os.path.join(REF, "tiny.safetensors"), src, "--optim", optim)
    idx, dat = src + ".index", src + ".data-00000-of-00001"
    out = tmp("c_out.safetensors")
    os.makedirs(tmp("c"), exist_ok=True)

    def tf_case(label, fn_idx=None, fn_dat=None, words=(), extra=()):
        d = tmp(f"c/{label.replace(' ', '_')}")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "bert_model.ckpt")
        shutil.copy(tmp("c_tf/bert_config.json"), d)
        corrupt(idx, p + ".index", fn_idx or (lambda x: x))
        corrupt(dat, p + ".data-00000-of-00001", fn_dat or (lambda x: x))
        expect_error(f"TF {label}", tf2st, [p, out, *extra], p, words)

    size = os.path.getsize(idx)
    for cut in (0, 20, 47, size // 2, size - 1):
        tf_case(f"index truncated to {cut} bytes", lambda d, c=cut: d[:c])
    tf_case("index magic flipped", flip(size - 1), words=("magic",))
    tf_case("index byte flipped in a block", flip(100), words=("checksum",))
    tf_case("index block handle of 2^60 bytes", lambda d: d[:-48] + wire.varint(1 << 60) + wire.varint(1 << 60) +
            b"\0\0" + b"\0" * (38 - 2 * len(wire.varint(1 << 60))) + d[-8:], words=("past the end",))
    tf_case("data shard truncated", fn_dat=lambda d: d[:len(d) // 2], words=("past the end",))
    tf_case("data byte flipped (bad CRC)", fn_dat=flip(1000), words=("crc32c mismatch",))

    def rebuilt(entry_fn, extra=None):
        b = tf_bundle.read_index(src)
        items = [(b"", tf_bundle.encode_header(1))]
        for e in b.entries:
            items.append((e.name.encode(), entry_fn(e)))
        if extra:   # one more key, last in name order
            items.append((extra.name.encode(), tf_bundle.encode_entry(extra)))
        return lambda _: bytearray(tf_bundle.build_table(items))

    first = tf_bundle.read_index(src).entries[0].name
    tf_case("bad varint in an entry (valid block CRC)",
            rebuilt(lambda e: b"\x08" + b"\xff" * 11 if e.name == first else tf_bundle.encode_entry(e)), words=("varint",))
    big = tf_bundle.Entry("zz/huge", 1, (1 << 20, 1 << 20), 0, 0, 4 << 40, 0)
    tf_case("entry declaring 4 TiB", rebuilt(tf_bundle.encode_entry, big), words=("past the end", "zz/huge"),
            extra=("--skip-unknown",))
    tf_case("an entry's shape disagreeing with the config", rebuilt(lambda e: tf_bundle.encode_entry(
        tf_bundle.Entry(e.name, 1, (3, 3), 0, 0, 36, 0)) if e.name == first else tf_bundle.encode_entry(e)),
        words=("has shape [3, 3]",))
    huge_dim = tf_bundle.Entry("x", 1, (1 << 50,), 0, 0, 4 << 50, 0)
    tf_case("entry with a 2^50 dimension", rebuilt(lambda e: tf_bundle.encode_entry(huge_dim) if e.name == first
                                                    else tf_bundle.encode_entry(e)), words=("dimension",))
    expect_error("TF prefix that does not exist", tf2st, [tmp("nowhere/bert_model.ckpt"), out], "nowhere")
    rc, o, err = cli("tf2st.py", tmp("c/data_byte_flipped_(bad_CRC)/bert_model.ckpt"), out)
    check(rc == 1 and len(err.strip().splitlines()) == 1 and "crc32c mismatch" in err and "Traceback" not in err,
          "command line, bad CRC: exit 1, one line on stderr")

    # MindSpore
    ck = tmp("c_bert.ckpt")
    ms_ckpt.write(ck, ms_bert_params(w, np.random.default_rng(5)), slice_bytes=4096)
    n = os.path.getsize(ck)
    cases = [("truncated", lambda d: d[:n // 2], ()), ("truncated to 3 bytes", lambda d: d[:3], ()),
             ("bad varint", lambda d: bytearray(b"\x0a" + b"\xff" * 11) + d, ("varint",)),
             ("declared length 2^62", lambda d: bytearray(b"\x0a" + wire.varint(1 << 62)) + d, ("declares",)),
             ("dims of 2^40 x 2^40", lambda d: bytearray(wire.f_bytes(1, wire.f_bytes(1, b"big") + wire.f_bytes(
                 2, wire.f_varint(1, 1 << 40) + wire.f_varint(1, 1 << 40) + wire.f_bytes(2, b"Float32") + wire.f_bytes(3, b"\0" * 8)))) + d,
              ("need",)),
             ("unknown tensor_type", lambda d: bytearray(d.replace(b"Float32", b"Flaot32", 1)), ("tensor_type",))]
    for label, fn, words in cases:
        expect_error(f"MindSpore {label}", ms2st, [corrupt(ck, tmp("c_ms.ckpt"), fn), out, "--heads", "4"], "c_ms.ckpt", words)

    # safetensors (st2tf's input)
    st = os.path.join(REF, "tiny.safetensors")
    cases = [("truncated", lambda d: d[:len(d) // 2], ("do not fit",)),
             ("header length 2^63", lambda d: bytearray((1 << 63).to_bytes(8, "little")) + d[8:], ("header length",)),
             ("bad JSON", lambda d: d[:9] + b"!" + d[10:], ("JSON",)),
             ("offsets out of range", lambda d: d.replace(b"[0,28672]", b"[0,99999999]", 1), ())]
    for label, fn, words in cases:
        expect_error(f"safetensors {label}", st2tf, [corrupt(st, tmp("c_st.safetensors"), fn), tmp("c_st_out/m.ckpt")],
                     "c_st.safetensors", words)

    # pytorch_model.bin
    d = tmp("c_hf")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "config.json"), "w").write(meta["config"])
    binf = os.path.join(d, "pytorch_model.bin")
    torch_zip(binf, hf_state_dict(w))
    zsize = os.path.getsize(binf)
    storage_at = open(binf, "rb").read().index(w["bert.embeddings.word_embeddings.weight"].tobytes()[:64])
    cases = [("truncated zip", lambda x: x[:zsize // 2], ("zip",)),
             ("flipped byte in a storage (zip CRC)", flip(storage_at + 10), ("CRC",)),
             ("storage declaring 2^31 elements", lambda x: bytearray(_rezip(bytes(x), lambda p: p.replace(
                 b"J\x00\x1c\x00\x00", b"J\xff\xff\xff\x7f", 1))), ("bytes",))]
    for label, fn, words in cases:
        expect_error(f"pytorch .bin {label}", hf2st, [corrupt(binf, os.path.join(d, "c.bin"), fn), out], "c.bin", words)
    if os.path.exists(PT_LEGACY):
        leg = os.path.join(PT_LEGACY, "fastnlp_small_bert", "small_pytorch_model.bin")
        shutil.copy(os.path.join(PT_LEGACY, "fastnlp_small_bert", "config.json"), d)
        expect_error("legacy .bin truncated", hf2st, [corrupt(leg, os.path.join(d, "c.bin"), lambda x: x[:len(x) - 100]), out],
                     "c.bin", ("truncated",))
        os.remove(os.path.join(d, "config.json"))
        open(os.path.join(d, "config.json"), "w").write(meta["config"])

    section("corrupt inputs: random truncations and flips")
    fuzz("TF .index", tf2st, idx, lambda p: [_fuzz_prefix(p, idx, dat, "index"), out], 30, rng)
    fuzz("TF data shard", tf2st, dat, lambda p: [_fuzz_prefix(p, idx, dat, "data"), out], 15, rng)
    fuzz("MindSpore .ckpt", ms2st, ck, lambda p: [p, out, "--heads", "4"], 30, rng)
    shutil.copy(st, tmp("c_tiny.safetensors"))
    fuzz("safetensors", st2tf, tmp("c_tiny.safetensors"), lambda p: [p, tmp("c_st_out/m.ckpt")], 20, rng)
    fuzz("pytorch .bin (zip)", hf2st, binf, lambda p: [p, out], 20, rng)


def test_corrupt_found():
    """Inputs that tests/fuzz/convert_mutate.py (or probes after it) found: each once gave a
    traceback-like "internal error", a hang, unbounded memory or a message split over two lines.
    Each runs under a 20 s alarm and a 1 GiB address-space cap, which an unfixed converter hits."""
    section("corrupt inputs found by fuzzing: one line each, no hang, no unbounded memory")
    import json
    import torch_pickle
    bound = {"timeout": 20, "mem": 1 << 30}
    w, meta = tiny_weights()
    cfg = json.loads(meta["config"])
    tiny = os.path.join(REF, "tiny.safetensors")
    d = tmp("r")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "config.json"), "w").write(meta["config"])
    out, tf_out = tmp("r_out.safetensors"), tmp("r_tf/bert_model.ckpt")
    clean = os.path.join(d, "clean.bin")
    torch_zip(clean, hf_state_dict(w))

    def write(name, data):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    # a key holding \x1e (or \x85, which str.splitlines also ends a line at) in a note
    sep = os.path.join(d, "sep.bin")
    torch_zip(sep, hf_state_dict(w) + [("bert.junk\x1eX", np.zeros(2, np.float32))])
    rc, err = convert(hf2st, sep, out, "--skip-unknown", **bound)
    check(rc == 0 and all(l.startswith("convert: note: ") for l in err.splitlines()) and "junk\\x1eX" in err,
          "pytorch .bin key with \\x1e, --skip-unknown: converts; the note escapes it, every line is \"convert: ...\""
          + ("" if rc == 0 else ": " + err.strip()[:80]))

    # zipfile raises NotImplementedError for a "version needed to extract" it does not know
    z = bytearray(open(clean, "rb").read())
    z[z.index(b"PK\x01\x02") + 6] = 255   # the first central-directory record: version 25.5
    expect_error("pytorch .bin needing zip version 25.5", hf2st, [write("zipver.bin", bytes(z)), out], "zipver.bin",
                 ("not a readable zip",), **bound)

    # num_hidden_layers sizes the name table (16 rows per layer) before any tensor is read
    st = tmp("r_layers.safetensors")
    safetensors_np.write(st, w, dict(meta, config=json.dumps(dict(cfg, num_hidden_layers=10 ** 9))))
    expect_error("safetensors config num_hidden_layers 10^9 (st2tf)", st2tf, [st, tf_out], "r_layers.safetensors",
                 ("num_hidden_layers",), **bound)
    params = ms_bert_params(w, np.random.default_rng(5))
    ms_ckpt.write(tmp("r_layers.ckpt"), [(t.replace("layers.1.", "layers.100000000."), a) for t, a in params])
    expect_error("MindSpore tag with layers.100000000", ms2st, [tmp("r_layers.ckpt"), out, "--heads", "4"],
                 "r_layers.ckpt", ("num_hidden_layers",), **bound)

    # safetensors headers: a shape whose element count wraps in int64, JSON nested 100000 deep
    def st_file(name, header):
        h = header if isinstance(header, bytes) else json.dumps(header).encode()
        return write(name, len(h).to_bytes(8, "little") + h)

    expect_error("safetensors shape [2^32, 2^32] with data_offsets [0, 0]", st2tf,
                 [st_file("wrap.safetensors", {"a": {"dtype": "F32", "shape": [1 << 32, 1 << 32], "data_offsets": [0, 0]}}),
                  tf_out], "wrap.safetensors", ("do not fit",), **bound)
    deep = b"[" * 100000 + b"]" * 100000
    expect_error("safetensors header nested 100000 deep", st2tf, [st_file("deep.safetensors", b'{"a":' + deep + b"}"), tf_out],
                 "deep.safetensors", ("bad JSON header",), **bound)
    os.makedirs(tmp("r_meta"), exist_ok=True)   # no config.json beside: hf2st reads the metadata's
    st = tmp("r_meta/deep_meta.safetensors")
    safetensors_np.write(st, w, dict(meta, config=deep.decode()))
    for mod, argv in ((st2tf, [st, tf_out]), (hf2st, [st, out])):
        expect_error(f"safetensors __metadata__ config nested 100000 deep ({mod.__name__})", mod, argv,
                     "deep_meta.safetensors", ("bad config in __metadata__",), **bound)

    # global_step that is no step: NaN (MindSpore), no value at all (TF)
    ms_ckpt.write(tmp("r_nan.ckpt"), [(t, np.array([np.nan], np.float32) if t == "global_step" else a) for t, a in params])
    expect_error("MindSpore --optim-out with global_step NaN", ms2st,
                 [tmp("r_nan.ckpt"), out, "--heads", "4", "--optim-out", tmp("r_optim.safetensors")], "r_nan.ckpt",
                 ("global_step",), **bound)
    os.makedirs(tmp("r_tf"), exist_ok=True)
    optim = tmp("r_optim_in.safetensors")
    safetensors_np.write(optim, [(f"{k}.{n}", np.full_like(a, 0.5)) for k in "mv" for n, a in w.items()],
                         {"format": "bert.h-optim", "optimizer": "adamw_gb", "step": "7"})
    rc, err = convert(st2tf, tiny, tf_out, "--optim", optim)
    arrays = tf_bundle.read_bundle(tf_out)[1] if rc == 0 else {}
    arrays["global_step"] = np.zeros(0, np.int64)
    os.makedirs(tmp("r_tf0"), exist_ok=True)
    tf_bundle.write_bundle(tmp("r_tf0/bert_model.ckpt"), arrays)
    if os.path.exists(tmp("r_tf/bert_config.json")):
        shutil.copy(tmp("r_tf/bert_config.json"), tmp("r_tf0"))
    expect_error("TF --optim-out with global_step of shape [0]", tf2st,
                 [tmp("r_tf0/bert_model.ckpt"), out, "--optim-out", tmp("r_optim.safetensors")], "r_tf0",
                 ("global_step",), **bound)

    # MindSpore: the word-embedding table (which the config is inferred from) flattened to 1-D
    ms_ckpt.write(tmp("r_flat.ckpt"), [(t, a.reshape(-1) if t == "bert.bert.bert_embedding_lookup.embedding_table" else a)
                                       for t, a in params])
    expect_error("MindSpore 1-D word-embedding table", ms2st, [tmp("r_flat.ckpt"), out, "--heads", "4"], "r_flat.ckpt",
                 ("not 2-D",), **bound)

    # pickle BUILD on the FloatStorage stand-in (once shared by every load in this process)
    evil = b"\x80\x02" + _p_global("torch", "FloatStorage") + b"}" + _p_str("dtype") + _p_str("<f8") + b"sb0"
    expect_error("pickle BUILD setting FloatStorage's dtype", hf2st,
                 [write("build.bin", _rezip(open(clean, "rb").read(), lambda pk: evil + pk[2:])), out], "build.bin",
                 ("sets the state",), **bound)
    rc, err = convert(hf2st, clean, out, **bound)
    t, _ = safetensors_np.read(out) if rc == 0 else ({}, {})
    check(rc == 0 and all(np.array_equal(t.get(n), w[n]) for n in w),
          "  then a clean .bin in the same process still converts bit-exactly (the stand-ins are unchanged)"
          + ("" if rc == 0 else ": " + err.strip()[:80]))

    # tensor records whose shape no 16-element storage can back: zero strides, a 2^70 dim beside a 0
    def one_tensor(size, stride):
        pid = _p_tuple([_p_str("storage"), _p_global("torch", "FloatStorage"), _p_str("0"), _p_str("cpu"), _p_int(4)])
        body = b"\x80\x02" + _p_global("collections", "OrderedDict") + b")R(" + _p_str("x") + \
            _p_global("torch._utils", "_rebuild_tensor_v2") + _p_tuple(
                [pid + b"Q", _p_int(0), _p_tuple(size), _p_tuple(stride), b"\x89",
                 _p_global("collections", "OrderedDict") + b")R"]) + b"Ru."
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("archive/data.pkl", body)
            zf.writestr("archive/data/0", b"\0" * 16)
        return buf.getvalue()

    expect_error("pytorch .bin view [2^31-1, 64] with strides 0", hf2st,
                 [write("zs.bin", one_tensor([_p_int(0x7FFFFFFF), _p_int(64)], [_p_int(0), _p_int(0)])), out], "zs.bin",
                 ("larger than the whole",), **bound)
    expect_error("pytorch .bin shape [0, 2^70]", hf2st,
                 [write("z70.bin", one_tensor([_p_int(0), b"\x8a\x09" + (1 << 70).to_bytes(9, "little")],
                                              [_p_int(0), _p_int(0)])), out], "z70.bin", ("larger than the whole",), **bound)

    # legacy format: the "protocol version" pickle is a list holding the same list twice per level,
    # whose repr doubles per level (the fuzzer's 60 levels never finish, inside C where no alarm
    # reaches; 20 levels give a 6 MB message): the error names its type instead
    lv = b"\x80\x02]q\x00"
    for i in range(20):
        lv += b"(h" + bytes([i]) + b"h" + bytes([i]) + b"lq" + bytes([i + 1])
    magic = b"\x80\x02\x8a\x0a" + torch_pickle.LEGACY_MAGIC.to_bytes(10, "little") + b"."
    expect_error("legacy .bin protocol version: a list nested 20 deep", hf2st, [write("nested.bin", magic + lv + b"."), out],
                 "nested.bin", ("protocol list",), **bound)


# ---------------------------------------------------------------------------------------------
# 6. inflating inputs: a small file declaring huge sizes

# Runs a converter's command line in a child whose address space is capped at what it has after
# importing numpy plus MEM bytes: a converter that allocates from a declared size before checking it
# against the file dies there (MemoryError, "out of memory") instead of passing.
_CAPPED = """
import os, resource, runpy, sys
import numpy
script, mem = sys.argv[1], int(sys.argv[2])
try:
    with open("/proc/self/statm") as f:
        cap = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE") + mem
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or cap <= hard:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
except (OSError, ValueError):
    pass
sys.argv = [script] + sys.argv[3:]
sys.path.insert(0, os.path.dirname(script))
runpy.run_path(script, run_name="__main__")
"""
CAP = 300 << 20


def capped(script, *argv, mem=CAP, timeout=60):
    """-> (exit status, stderr) of `python3 convert/SCRIPT argv` under the cap; a hang is -1."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    try:
        r = subprocess.run([PY, "-c", _CAPPED, os.path.join(ROOT, "convert", script), str(mem)] + [str(a) for a in argv],
                           capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return -1, "HANG\n"
    return r.returncode, r.stderr


def _p_long(i):
    return _p_int(i) if -(1 << 31) <= i < 1 << 31 else b"\x8a\x08" + int(i).to_bytes(8, "little", signed=True)


def _p_tensor(name, key, numel, size, stride, legacy=False):
    """One state-dict item: name, then _rebuild_tensor_v2 (zip) or _rebuild_tensor (legacy) on a
    FloatStorage reference declaring `numel` elements."""
    pid = _p_tuple([_p_str("storage"), _p_global("torch", "FloatStorage"), _p_str(key), _p_str("cpu"), _p_long(numel)] +
                   ([b"N"] if legacy else []))
    args = [pid + b"Q", _p_int(0), _p_tuple([_p_long(d) for d in size]), _p_tuple([_p_long(x) for x in stride])]
    if legacy:
        return _p_str(name) + _p_global("torch._utils", "_rebuild_tensor") + _p_tuple(args) + b"R"
    return _p_str(name) + _p_global("torch._utils", "_rebuild_tensor_v2") + _p_tuple(
        args + [b"\x89", _p_global("collections", "OrderedDict") + b")R"]) + b"R"


def _p_state_dict(items):
    return b"\x80\x02" + _p_global("collections", "OrderedDict") + b")R(" + b"".join(items) + b"u."


def _legacy_bin(state_dict, storages):
    """A legacy torch.save stream: magic, protocol 1001, sys info, the state dict, the storage keys,
    then per storage (key, numel, bytes) its int64 element count and bytes."""
    import torch_pickle
    out = b"\x80\x02\x8a\x0a" + torch_pickle.LEGACY_MAGIC.to_bytes(10, "little") + b"."
    out += b"\x80\x02M\xe9\x03." + b"\x80\x02}(" + _p_str("little_endian") + b"\x88u." + state_dict
    out += b"\x80\x02](" + b"".join(_p_str(k) for k, _, _ in storages) + b"e."
    for _, numel, raw in storages:
        out += int(numel).to_bytes(8, "little", signed=True) + raw
    return out


def _zip_raw(members):
    """A zip archive written by hand, so that a member can be a ready-made deflate stream:
    members = [(name, bytes)] stored, or [(name, (deflate stream, crc32, size))] deflated."""
    import struct
    import zlib
    out, central = b"", b""
    for name, m in members:
        n = name.encode()
        if isinstance(m, tuple):
            data, crc, size, method = m[0], m[1], m[2], 8
        else:
            data, crc, size, method = m, zlib.crc32(m), len(m), 0
        head = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size, len(n), 0)
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(data), size, len(n),
                               0, 0, 0, 0, 0, len(out)) + n
        out += head + n + data
    return out + central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central),
                                       len(out), 0)


def _zeros_deflated(n_chunks, chunk=1 << 24):
    """(deflate stream, crc32, size) of n_chunks x 16 MiB of zeros, made in a fraction of a second:
    a full flush resets the compressor, so every chunk compresses to the same bytes."""
    import zlib
    z = b"\0" * chunk
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(z) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(n_chunks):
        crc = zlib.crc32(z, crc)
    return block * n_chunks + c.flush(), crc, n_chunks * chunk


def inflating_inputs():
    """[(label, script, argv, file name part, words)]: per format, small files declaring huge sizes.
    Each once made a converter allocate far more than the file holds (or numpy fail)."""
    import json
    w, meta = tiny_weights()
    d = tmp("inflate")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "config.json"), "w").write(meta["config"])
    out = os.path.join(d, "out.safetensors")

    def put(name, data):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    cases = []
    # pytorch zip: the pickle declares 2^31 floats (8 GiB), the data file holds 4 bytes
    sd = _p_state_dict([_p_tensor("bert.embeddings.word_embeddings.weight", "0", 1 << 31, [1 << 31], [1])])
    cases.append(("pytorch zip: storage of 2^31 floats, its data file 4 bytes", "hf2st.py",
                  [put("pt_numel.bin", _zip_raw([("archive/data.pkl", sd), ("archive/data/0", b"\0" * 4)])), out],
                  "pt_numel.bin", ("declares 8589934592 bytes",)))
    # pytorch zip: a 1 MB file whose data.pkl inflates to 1 GiB (made the converter allocate 2.1 GB)
    cases.append(("pytorch zip: 1 MB file, data.pkl deflated from 1 GiB", "hf2st.py",
                  [put("pt_bomb.bin", _zip_raw([("archive/data.pkl", _zeros_deflated(64))])), out],
                  "pt_bomb.bin", ("expands to 1073741824 bytes", "zip bomb")))
    # pytorch zip: a stored 6 MB data.pkl of empty sets in one list (1 byte each, 216 bytes in memory:
    # 1.3 GB of objects; made the converter hold 100x the pickle's size)
    sets = b"\x80\x04(" + b"\x8f" * (6 << 20) + b"l."
    cases.append(("pytorch zip: 6 MB data.pkl of 6M empty sets", "hf2st.py",
                  [put("pt_sets.bin", _zip_raw([("archive/data.pkl", sets)])), out],
                  "pt_sets.bin", ("more than 1048576 opcodes",)))
    # pytorch zip and legacy: 4000 tensor records viewing one 256 KiB storage (1 GiB of copies)
    n = 1 << 16
    views = [_p_tensor(f"t{i}", "0", n, [n], [1]) for i in range(4000)]
    cases.append(("pytorch zip: 4000 tensors viewing one 256 KiB storage", "hf2st.py",
                  [put("pt_views.bin", _zip_raw([("archive/data.pkl", _p_state_dict(views)),
                                                 ("archive/data/0", b"\0" * 4 * n)])), out],
                  "pt_views.bin", ("viewing the same data",)))
    sd = _p_state_dict([_p_tensor("x", "0", 1 << 31, [4], [1], legacy=True)])
    cases.append(("legacy pickle: storage of 2^31 floats, 4 bytes after it", "hf2st.py",
                  [put("leg_numel.bin", _legacy_bin(sd, [("0", 1 << 31, b"\0" * 4)])), out],
                  "leg_numel.bin", ("declares 8589934592 bytes",)))
    views = [_p_tensor(f"t{i}", "0", n, [n], [1], legacy=True) for i in range(4000)]
    cases.append(("legacy pickle: 4000 tensors viewing one 256 KiB storage", "hf2st.py",
                  [put("leg_views.bin", _legacy_bin(_p_state_dict(views), [("0", n, b"\0" * 4 * n)])), out],
                  "leg_views.bin", ("viewing the same data",)))

    # TF: an index entry of shape [2^20, 2^20] (4 TiB) over a 4-byte shard; 2000 entries sharing one 512 KiB range
    def bundle(name, entries, data):
        p = os.path.join(d, name, "bert_model.ckpt")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        open(os.path.join(d, name, "bert_config.json"), "w").write(meta["config"])
        items = [(b"", tf_bundle.encode_header(1))] + [(e.name.encode(), tf_bundle.encode_entry(e)) for e in entries]
        put(os.path.join(name, "bert_model.ckpt.index"), tf_bundle.build_table(items))
        put(os.path.join(name, "bert_model.ckpt.data-00000-of-00001"), data)
        return p

    cases.append(("TF index: an entry of shape [2^20, 2^20], 4-byte shard", "tf2st.py",
                  [bundle("tf_shape", [tf_bundle.Entry("zz/huge", 1, (1 << 20, 1 << 20), 0, 0, 4 << 40, 0)], b"\0" * 4),
                   out, "--skip-unknown"], "tf_shape", ("past the end", "zz/huge")))
    zc = crc32c.mask(crc32c.crc32c(b"\0" * 4 * (1 << 17)))
    cases.append(("TF index: 2000 entries sharing one 512 KiB range", "tf2st.py",
                  [bundle("tf_alias", [tf_bundle.Entry(f"t{i:04d}", 1, (1 << 17,), 0, 0, 4 << 17, zc) for i in range(2000)],
                          b"\0" * (4 << 17)), out, "--skip-unknown"], "tf_alias", ("share bytes",)))

    # MindSpore: dims [2^20, 2^20] over 8 bytes; an empty tensor of dims [0, 2^40, 2^40]
    def ms_value(tag, dims, content):
        t = b"".join(wire.f_varint(1, x) for x in dims) + wire.f_bytes(2, b"Float32") + wire.f_bytes(3, content)
        return wire.f_bytes(1, wire.f_bytes(1, tag.encode()) + wire.f_bytes(2, t))

    cases.append(("MindSpore: dims [2^20, 2^20] product over 8 bytes", "ms2st.py",
                  [put("ms_dims.ckpt", ms_value("big", [1 << 20, 1 << 20], b"\0" * 8)), out, "--heads", "4"],
                  "ms_dims.ckpt", ("need 4398046511104 bytes",)))
    cases.append(("MindSpore: empty tensor of dims [0, 2^40, 2^40]", "ms2st.py",
                  [put("ms_empty.ckpt", ms_value("big", [0, 1 << 40, 1 << 40], b"")), out, "--heads", "4"],
                  "ms_empty.ckpt", ("larger than the whole",)))

    # safetensors: shape [2^20, 2^20]; 4000 entries on one 256 KiB range; shape [0, 2^52, 2^52]
    def st(name, header, data=b""):
        h = json.dumps(header).encode()
        return put(name, len(h).to_bytes(8, "little") + h + data)

    tf_out = os.path.join(d, "st_out", "bert_model.ckpt")
    cases.append(("safetensors: shape [2^20, 2^20]", "st2tf.py",
                  [st("st_shape.safetensors", {"a": {"dtype": "F32", "shape": [1 << 20, 1 << 20],
                                                     "data_offsets": [0, 4 << 40]}}), tf_out],
                  "st_shape.safetensors", ("do not fit",)))
    cases.append(("safetensors: 4000 entries on one 256 KiB range", "st2tf.py",
                  [st("st_alias.safetensors", {f"t{i}": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}
                                               for i in range(4000)}, b"\0" * 4 * n), tf_out],
                  "st_alias.safetensors", ("overlap",)))
    cases.append(("safetensors: empty tensor of shape [0, 2^52, 2^52]", "st2tf.py",
                  [st("st_empty.safetensors", {"a": {"dtype": "F32", "shape": [0, 1 << 52, 1 << 52],
                                                     "data_offsets": [0, 0]}}), tf_out],
                  "st_empty.safetensors", ("larger than the whole",)))
    return cases


def test_inflating():
    section(f"inflating inputs: small files declaring huge sizes, each under a {CAP >> 20} MiB address-space cap")
    for label, script, argv, part, words in inflating_inputs():
        size = os.path.getsize(argv[0] if os.path.isfile(argv[0]) else argv[0] + ".index")
        rc, err = capped(script, *argv)
        ok = one_line_error(rc, err, part) and "out of memory" not in err and all(x in err for x in words)
        line = err.strip().splitlines()[-1] if err.strip() else f"exit {rc}, no message"
        check(ok, f"{label} ({size} bytes): exit {rc}, {line[line.find(part):][:100] if ok else line[-160:]}")

    # what stays accepted: a torch.save archive re-zipped with deflate (its members expand a little)
    w, meta = tiny_weights()
    d = tmp("inflate")
    clean = os.path.join(d, "clean.bin")
    torch_zip(clean, hf_state_dict(w))
    zin = zipfile.ZipFile(clean)
    with zipfile.ZipFile(os.path.join(d, "deflated.bin"), "w", zipfile.ZIP_DEFLATED) as z:
        for name in zin.namelist():
            z.writestr(name, zin.read(name))
    zin.close()
    rc, err = convert(hf2st, os.path.join(d, "deflated.bin"), tmp("deflated.safetensors"), mem=1 << 30)
    t, _ = safetensors_np.read(tmp("deflated.safetensors")) if rc == 0 else ({}, {})
    check(rc == 0 and all(np.array_equal(t.get(n), w[n]) for n in w),
          "a pytorch .bin re-zipped with deflate still converts bit-exactly" + ("" if rc == 0 else ": " + err.strip()[:100]))


def test_rejected_then_valid():
    """A refused file leaves nothing behind: the next, valid file in the same process converts."""
    section("a rejected file, then a valid one, in the same process (the converter modules imported once)")
    import json
    w, meta, d = tiny_dir("state")
    clean = os.path.join(d, "clean.bin")
    torch_zip(clean, hf_state_dict(w))
    out = os.path.join(d, "out.safetensors")
    bound = {"timeout": 30, "mem": 1 << 30}

    def then_clean():
        if os.path.exists(out):
            os.remove(out)
        rc, err = convert(hf2st, clean, out, **bound)
        t, _ = safetensors_np.read(out) if rc == 0 else ({}, {})
        check(rc == 0 and all(np.array_equal(t.get(n), w[n]) for n in w),
              f"  then the clean .bin converts bit-exactly{'' if rc == 0 else ': ' + err.strip()[-100:]}")

    # BUILD on the stand-ins: (obj, None) then {attr: value} as slot state is setattr(obj, attr, value).
    # __defaults__ = None on _rebuild_tensor_v2 made every later tensor record a TypeError.
    def build(mod, name, attr, value=b"N"):
        return b"\x80\x02" + _p_global(mod, name) + b"N}" + _p_str(attr) + value + b"s\x86b0"

    evils = [("_rebuild_tensor_v2.__defaults__ = None", build("torch._utils", "_rebuild_tensor_v2", "__defaults__")),
             ("_rebuild_tensor.__defaults__ = ()", build("torch._utils", "_rebuild_tensor", "__defaults__", b")")),
             ("torch.Tensor class attribute", build("torch", "Tensor", "x")),
             ("FloatStorage.dtype = '<f8'", b"\x80\x02" + _p_global("torch", "FloatStorage") + b"}" + _p_str("dtype") +
              _p_str("<f8") + b"sb0")]
    for label, evil in evils:
        p = os.path.join(d, "evil.bin")
        with open(p, "wb") as f:
            f.write(_rezip(open(clean, "rb").read(), lambda pk, e=evil: e + pk[2:]))
        rc, err = convert(hf2st, p, out, **bound)
        check(one_line_error(rc, err, "evil.bin") and "sets the state" in err,
              f"pytorch .bin setting {label}: refused ({err.strip()[err.find('the pickle'):][:60]})")
        then_clean()
    if os.path.exists(PT_LEGACY):
        src = os.path.join(PT_LEGACY, "fastnlp_small_bert", "small_pytorch_model.bin")
        rc, err = convert(hf2st, src, tmp("state_legacy.safetensors"), **bound)
        check(rc == 0, "  and a legacy .bin from ../shared/data after them" + ("" if rc == 0 else ": " + err.strip()[-100:]))

    # every format: each inflating input (in this process, under a 1 GiB cap), then a valid file of that format
    os.makedirs(tmp("state_tf"), exist_ok=True)
    tf_prefix = tmp("state_tf/bert_model.ckpt")
    rc_tf, _ = convert(st2tf, os.path.join(REF, "tiny.safetensors"), tf_prefix)
    ck = tmp("state_bert.ckpt")
    ms_ckpt.write(ck, ms_bert_params(w, np.random.default_rng(5)), slice_bytes=4096)
    valid = {"hf2st.py": (hf2st, [clean, out]), "st2tf.py": (st2tf, [os.path.join(REF, "tiny.safetensors"),
                                                                     tmp("state_st/bert_model.ckpt")]),
             "tf2st.py": (tf2st, [tf_prefix, out]), "ms2st.py": (ms2st, [ck, out, "--heads", "4"])}
    mods = {"hf2st.py": hf2st, "st2tf.py": st2tf, "tf2st.py": tf2st, "ms2st.py": ms2st}
    bad = []
    for label, script, argv, part, words in inflating_inputs():
        rc, err = convert(mods[script], *argv, **bound)
        mod, vargv = valid[script]
        rc2, err2 = convert(mod, *vargv, **bound)
        if not (one_line_error(rc, err, part) and rc2 == 0):
            bad.append(f"{label}: {err.strip()[-60:]} / {err2.strip()[-60:]}")
    ok = not bad and rc_tf == 0
    if ok:   # and the last valid outputs are right
        t, m = safetensors_np.read(out)
        ok = json.loads(m["config"])["num_attention_heads"] == 4 and len(t) == len(w)
    check(ok, "each inflating input refused in this process, then a valid file of its format converts"
              + (f" (e.g. {bad[0]})" if bad else ""))


def _fuzz_prefix(p, idx, dat, which):
    """A prefix whose .index or data shard is the fuzzed copy p (the other one intact)."""
    d = tmp("c_fuzz")
    os.makedirs(d, exist_ok=True)
    shutil.copy(tmp("c_tf/bert_config.json"), d)
    q = os.path.join(d, "bert_model.ckpt")
    shutil.copy(p if which == "index" else idx, q + ".index")
    shutil.copy(p if which == "data" else dat, q + ".data-00000-of-00001")
    return q


def _rezip(data, fn):
    """The same zip with data.pkl passed through fn (to corrupt the pickle, not the zip)."""
    zin = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for n in zin.namelist():
            b = zin.read(n)
            z.writestr(n, fn(b) if n.endswith("data.pkl") else b)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------

def main():
    tests = [test_building_blocks, test_tf_keras, test_tf_index_only, test_hf_reference, test_ms_lenet, test_ms_bert,
             test_pytorch, test_corrupt, test_corrupt_found, test_inflating, test_rejected_then_valid]
    try:
        for t in tests:
            try:
                t()
            except Exception as e:   # a broken test is a failure, and the others still run
                import traceback
                traceback.print_exc(file=sys.stdout)
                check(False, f"{t.__name__} raised {type(e).__name__}: {e}")
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
