#!/usr/bin/python3
"""convert_nezha.py - helper for tests/test_convert_nezha.sh (not a test by itself): writes NEZHA
checkpoints in Huawei's TF and MindSpore's layouts from the fixture tests/ref/nezha_ref.safetensors
with the repo's own writers (convert/tf_bundle.py, convert/ms_ckpt.py), and checks what the
converters made of them.

The foreign names are spelled out here, not taken from convert/names.py, so that a wrong row in the
converters' name table cannot cancel itself out:
  TF (Huawei NEZHA-TensorFlow = Google BERT's variables, no bert/embeddings/position_embeddings):
    google-research/bert modeling.py scopes, kernels [in, out]
  MindSpore (mindspore-ai/models official/nlp/Bert/src/bert_model.py, BertPreTraining wrapping
    BertModel as `bert.bert`): BertAttention's learned table is
    bert.bert.bert_encoder.layers.N.attention.attention._generate_relative_positions_embeddings.embeddings_table

    convert_nezha.py tf FIXTURE DIR [--no-rel-key] [--no-k] [--with-position] [--slots]
    convert_nezha.py ms FIXTURE OUT.ckpt [--even] [--no-tables] [--slots]
    convert_nezha.py hf FIXTURE DIR                        (transformers' NezhaForPreTraining files)
    convert_nezha.py inputs FIXTURE FLAVOUR OUT.safetensors
    convert_nezha.py compare FIXTURE FLAVOUR FORWARD_OUT.safetensors
    convert_nezha.py moments FIXTURE FLAVOUR FORWARD_OUT.safetensors        (optimizer state as bert.h loads it)
    convert_nezha.py model FIXTURE FLAVOUR MODEL.safetensors KEY=JSON... [+tables]   (weights bit-exact + config;
                                                 +tables: learned tables beside the fixture's weights allowed)
    convert_nezha.py rename MODEL.safetensors OUT.safetensors              (nezha.* <-> bert.*)
    convert_nezha.py same A.safetensors B.safetensors                      (same tensors, bits, config)
    convert_nezha.py ms-names FILE.ckpt                                    (the table tags are MindSpore's)
Exit status 0 when what is checked holds; one line on stdout says what was found."""
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "convert"))
import ms_ckpt  # noqa: E402
import safetensors_np  # noqa: E402
import tf_bundle  # noqa: E402

ATOL = RTOL = 1e-5
# bert.h / HF name (inside the layer) -> (TF name inside bert/encoder/layer_N/, MindSpore name inside
# bert.bert.bert_encoder.layers.N.), TF kernels transposed
LAYER = [
    ("attention.self.query.weight", "attention/self/query/kernel", "attention.attention.query_layer.weight"),
    ("attention.self.query.bias", "attention/self/query/bias", "attention.attention.query_layer.bias"),
    ("attention.self.key.weight", "attention/self/key/kernel", "attention.attention.key_layer.weight"),
    ("attention.self.key.bias", "attention/self/key/bias", "attention.attention.key_layer.bias"),
    ("attention.self.value.weight", "attention/self/value/kernel", "attention.attention.value_layer.weight"),
    ("attention.self.value.bias", "attention/self/value/bias", "attention.attention.value_layer.bias"),
    ("attention.self.relative_positions_embeddings.weight", None,
     "attention.attention._generate_relative_positions_embeddings.embeddings_table"),
    ("attention.output.dense.weight", "attention/output/dense/kernel", "attention.output.dense.weight"),
    ("attention.output.dense.bias", "attention/output/dense/bias", "attention.output.dense.bias"),
    ("attention.output.LayerNorm.weight", "attention/output/LayerNorm/gamma", "attention.output.layernorm.gamma"),
    ("attention.output.LayerNorm.bias", "attention/output/LayerNorm/beta", "attention.output.layernorm.beta"),
    ("intermediate.dense.weight", "intermediate/dense/kernel", "intermediate.weight"),
    ("intermediate.dense.bias", "intermediate/dense/bias", "intermediate.bias"),
    ("output.dense.weight", "output/dense/kernel", "output.dense.weight"),
    ("output.dense.bias", "output/dense/bias", "output.dense.bias"),
    ("output.LayerNorm.weight", "output/LayerNorm/gamma", "output.layernorm.gamma"),
    ("output.LayerNorm.bias", "output/LayerNorm/beta", "output.layernorm.beta"),
]
OTHER = [
    ("bert.embeddings.word_embeddings.weight", "bert/embeddings/word_embeddings",
     "bert.bert.bert_embedding_lookup.embedding_table"),
    ("bert.embeddings.token_type_embeddings.weight", "bert/embeddings/token_type_embeddings",
     "bert.bert.bert_embedding_postprocessor.token_type_embedding.embedding_table"),
    ("bert.embeddings.LayerNorm.weight", "bert/embeddings/LayerNorm/gamma", "bert.bert.bert_embedding_postprocessor.layernorm.gamma"),
    ("bert.embeddings.LayerNorm.bias", "bert/embeddings/LayerNorm/beta", "bert.bert.bert_embedding_postprocessor.layernorm.beta"),
    ("bert.pooler.dense.weight", "bert/pooler/dense/kernel", "bert.bert.dense.weight"),
    ("bert.pooler.dense.bias", "bert/pooler/dense/bias", "bert.bert.dense.bias"),
    ("cls.predictions.transform.dense.weight", "cls/predictions/transform/dense/kernel", "bert.cls1.dense.weight"),
    ("cls.predictions.transform.dense.bias", "cls/predictions/transform/dense/bias", "bert.cls1.dense.bias"),
    ("cls.predictions.transform.LayerNorm.weight", "cls/predictions/transform/LayerNorm/gamma", "bert.cls1.layernorm.gamma"),
    ("cls.predictions.transform.LayerNorm.bias", "cls/predictions/transform/LayerNorm/beta", "bert.cls1.layernorm.beta"),
    ("cls.predictions.bias", "cls/predictions/output_bias", "bert.cls1.output_bias"),
    ("cls.seq_relationship.weight", "cls/seq_relationship/output_weights", "bert.cls2.dense.weight"),
    ("cls.seq_relationship.bias", "cls/seq_relationship/output_bias", "bert.cls2.dense.bias"),
]
MS_POSITION = "bert.bert.bert_embedding_postprocessor.full_position_embedding.embedding_table"
MS_TABLE = "attention.attention._generate_relative_positions_embeddings.embeddings_table"
OUTPUTS = ["emb", "layer.0", "layer.1", "pooled", "mlm_logits", "nsp_logits"]


def fixture(path, flavour):
    t, meta = safetensors_np.read(path)
    w = {n[len(flavour) + 3:]: a for n, a in t.items() if n.startswith(flavour + ".w.")}
    return t, w, json.loads(meta[flavour + ".config"])


def foreign(w, L):
    """[(bert.h name, TF name or None, MindSpore name, TF transposed)] for the fixture's tensors."""
    out = []
    for h, tf, ms in OTHER:
        out.append((h, tf, ms, tf.endswith("/kernel")))
    for l in range(L):
        for h, tf, ms in LAYER:
            out.append((f"bert.encoder.layer.{l}.{h}", tf and f"bert/encoder/layer_{l}/{tf}",
                        f"bert.bert.bert_encoder.layers.{l}.{ms}", bool(tf) and tf.endswith("/kernel")))
    return [r for r in out if r[0] in w]


def cmd_tf(fix, d, *opts):
    """Huawei's NEZHA-TensorFlow checkpoint of the huawei weights + its bert_config.json."""
    _, w, cfg = fixture(fix, "huawei")
    tf = {}
    for h, name, _, tr in foreign(w, cfg["num_hidden_layers"]):
        tf[name] = np.ascontiguousarray(w[h].T) if tr else w[h]
    assert len(tf) == len(w), (len(tf), len(w))
    if "--slots" in opts:   # AdamWeightDecayOptimizer's slots (m = w / 2, v = w^2, as bert.h lays them out) + global_step
        for n in list(tf):
            tf[n + "/adam_m"], tf[n + "/adam_v"] = tf[n] * np.float32(0.5), tf[n] * tf[n]
        tf["global_step"] = np.array(7, dtype=np.int64)
    if "--with-position" in opts:   # a BERT checkpoint's position table
        tf["bert/embeddings/position_embeddings"] = np.random.RandomState(1).standard_normal(
            (cfg["max_position_embeddings"], cfg["hidden_size"])).astype(np.float32)
    os.makedirs(d, exist_ok=True)
    tf_bundle.write_bundle(os.path.join(d, "bert_model.ckpt"), tf)
    # Huawei's nezha/bert_config.json keys (directionality and pooler_* are Google's Chinese config's)
    hcfg = {k: cfg[k] for k in ("attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob", "hidden_size",
                                "initializer_range", "intermediate_size", "max_position_embeddings",
                                "num_attention_heads", "num_hidden_layers", "type_vocab_size", "vocab_size")}
    hcfg.update({"directionality": "bidi", "pooler_fc_size": cfg["hidden_size"], "pooler_num_attention_heads": 4,
                 "pooler_num_fc_layers": 3, "pooler_size_per_head": 128, "pooler_type": "first_token_transform"})
    if "--no-rel-key" not in opts:
        hcfg["use_relative_position"] = True
        if "--no-k" not in opts:
            hcfg["max_relative_position"] = cfg["max_relative_position"]
    with open(os.path.join(d, "bert_config.json"), "w") as f:
        json.dump(hcfg, f, indent=2)
    print(f"wrote {len(tf)} TF variables to {d}/bert_model.ckpt")
    return 0


def cmd_ms(fix, out, *opts):
    """The model zoo's nezha pretraining checkpoint of the mindspore weights: BertPreTraining names,
    the learned tables, and the position table MindSpore creates (unused) with random values."""
    _, w, cfg = fixture(fix, "mindspore")
    params = []
    for h, _, ms, _ in foreign(w, cfg["num_hidden_layers"]):
        a = w[h]
        if ms.endswith(MS_TABLE):
            if "--no-tables" in opts:
                continue
            if "--even" in opts:   # 2K+2 rows
                a = np.concatenate([a, a[-1:]], axis=0)
        params.append((ms, a))
        if h == "bert.embeddings.word_embeddings.weight":
            params.append((MS_POSITION, np.random.RandomState(2).standard_normal(
                (cfg["max_position_embeddings"], cfg["hidden_size"])).astype(np.float32) * 0.02))
    if "--slots" in opts:   # nn.Lamb's moments (m = w / 2, v = w^2), the unused position table's too, + global_step
        params += [("lamb_m." + t, a * np.float32(0.5)) for t, a in params] + [("lamb_v." + t, a * a) for t, a in params]
        params.append(("global_step", np.array([7], dtype=np.int32)))
    ms_ckpt.write(out, params)
    print(f"wrote {len(params)} MindSpore parameters to {out}")
    return 0


def cmd_hf(fix, d):
    """transformers' NezhaForPreTraining files of the huawei weights: "nezha.*" keys, the persistent
    positions_encoding buffer of every layer, the tied decoder weight; config.json with model_type
    "nezha" and max_relative_position (NezhaConfig's keys; no use_relative_position)."""
    _, w, cfg = fixture(fix, "huawei")
    items = [("nezha." + h[len("bert."):] if h.startswith("bert.") else h, a) for h, a in w.items()]
    P, hs = cfg["max_position_embeddings"], cfg["hidden_size"] // cfg["num_attention_heads"]
    items += [(f"nezha.encoder.layer.{l}.attention.self.relative_positions_encoding.positions_encoding",
               np.zeros((P, P, hs), np.float32)) for l in range(cfg["num_hidden_layers"])]
    items.append(("cls.predictions.decoder.weight", w["bert.embeddings.word_embeddings.weight"]))
    os.makedirs(d, exist_ok=True)
    safetensors_np.write(os.path.join(d, "model.safetensors"), items, {"format": "pt"})
    c = {k: v for k, v in cfg.items() if k not in ("use_relative_position", "relative_position_flavour")}
    c.update(model_type="nezha", architectures=["NezhaForPreTraining"])
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    print(f"wrote {len(items)} tensors to {d}/model.safetensors")
    return 0


def cmd_inputs(fix, flavour, out):
    t, _, _ = fixture(fix, flavour)
    safetensors_np.write(out, [(n, t[f"{flavour}.in.{n}"]) for n in
                               ("input_ids", "token_type_ids", "attention_mask", "masked_lm_positions",
                                "masked_lm_ids", "next_sentence_label")], {})
    return 0


def cmd_compare(fix, flavour, got_path):
    """bert.h's forward (convert_forward) against the reference outputs, |d| <= 1e-5 + 1e-5 |ref|."""
    t, _, _ = fixture(fix, flavour)
    got, _ = safetensors_np.read(got_path)
    worst, bad = 0.0, []
    for n in OUTPUTS:
        ref = t[f"{flavour}.out.{n}"].astype(np.float64)
        g = got.get(n)
        if g is None or g.size != ref.size:
            bad.append(f"{n}: {'absent' if g is None else f'shape {list(g.shape)}'}")
            continue
        g = g.astype(np.float64).reshape(ref.shape)
        excess = np.abs(g - ref) - (ATOL + RTOL * np.abs(ref))
        worst = max(worst, float(np.abs(g - ref).max()))
        if not np.isfinite(g).all() or excess.max() > 0:
            bad.append(f"{n}: max |d| {np.abs(g - ref).max():.2e}")
    print(f"{', '.join(OUTPUTS)}: max |d| {worst:.2e}" + (f"; FAILED {'; '.join(bad)}" if bad else ""))
    return 1 if bad else 0


def cmd_moments(fix, flavour, got_path):
    """convert_forward's optim.m / optim.v / optim.step (bert_optim_load of the converted training
    state, flat in bert.h's parameter order = the fixture's) against m = w / 2, v = w^2, step 7."""
    _, w, _ = fixture(fix, flavour)
    got, _ = safetensors_np.read(got_path)
    m = np.concatenate([a.reshape(-1) * np.float32(0.5) for a in w.values()])
    v = np.concatenate([(a * a).reshape(-1) for a in w.values()])
    gm, gv, st = got.get("optim.m"), got.get("optim.v"), got.get("optim.step")
    ok = gm is not None and gv is not None and st is not None and np.array_equal(gm, m) and np.array_equal(gv, v) \
        and float(st[0]) == 7.0
    print(f"{m.size} moments each, step {None if st is None else float(st[0])}: {'equal' if ok else 'DIFFERENT'}")
    return 0 if ok else 1


def cmd_model(fix, flavour, path, *want):
    """The converted file holds exactly the fixture's weights (bit for bit, any of the names bert.h
    loads) and its config has the given KEY=JSON values (prefix=P: the encoder's tensors are P.*);
    no absolute position table."""
    _, w, _ = fixture(fix, flavour)
    t, meta = safetensors_np.read(path)
    cfg = json.loads(meta.get("config", "{}"))
    probs = []
    names = {n[len("nezha."):] if n.startswith("nezha.") else n[len("bert."):] if n.startswith("bert.") else n: n
             for n in t}
    for h, a in w.items():
        n = names.get(h[len("bert."):] if h.startswith("bert.") else h)
        if n is None:
            probs.append(f"no {h}")
        elif t[n].dtype != a.dtype or t[n].shape != a.shape or t[n].tobytes() != a.tobytes():
            probs.append(f"{n} differs")
    extra = sorted(set(names.values()) - {names.get(h[len("bert."):] if h.startswith("bert.") else h) for h in w})
    if "+tables" in want:   # a fixed table written as learned ones: those are the only extra tensors
        want = [k for k in want if k != "+tables"]
        extra = [n for n in extra if not n.endswith("attention.self.relative_positions_embeddings.weight")]
    if extra:
        probs.append(f"extra tensors {extra[:3]}")
    for kv in want:
        k, v = kv.split("=", 1)
        if k == "prefix":   # every encoder tensor named PREFIX.* (bert.h's "nezha." for NEZHA)
            wrong = [n for n in t if not n.startswith(("cls.", v + "."))]
            if wrong:
                probs.append(f"{wrong[0]} is not named {v}.*")
            continue
        if cfg.get(k, "<absent>") != json.loads(v):
            probs.append(f"config {k} = {cfg.get(k, '<absent>')!r}, expected {v}")
    print(f"{len(t)} tensors ({len(w)} expected), config {len(want)} keys checked" + (f"; {'; '.join(probs)}" if probs else ""))
    return 1 if probs else 0


def cmd_rename(src, out):
    """The encoder's other prefix: "nezha.*" (bert.h's names, the converters' output) <-> "bert.*"."""
    t, meta = safetensors_np.read(src)
    swap = lambda n: "bert." + n[6:] if n.startswith("nezha.") else "nezha." + n[5:] if n.startswith("bert.") else n
    safetensors_np.write(out, [(swap(n), a) for n, a in t.items()], meta)
    return 0


def cmd_same(a_path, b_path):
    a, ma = safetensors_np.read(a_path)
    b, mb = safetensors_np.read(b_path)
    ok = list(a) == list(b) and all(a[n].dtype == b[n].dtype and a[n].shape == b[n].shape and
                                    a[n].tobytes() == b[n].tobytes() for n in a) and ma.get("config") == mb.get("config")
    print(f"{len(a)} and {len(b)} tensors, configs {'equal' if ma.get('config') == mb.get('config') else 'differ'}: "
          f"{'the same' if ok else 'DIFFERENT'}")
    return 0 if ok else 1


def cmd_ms_names(path):
    tags = [t for t, _ in ms_ckpt.read(path)]
    tabs = [t for t in tags if t.endswith(MS_TABLE)]
    want = [f"bert.bert.bert_encoder.layers.{l}.{MS_TABLE}" for l in range(2)]
    ok = tabs == want and MS_POSITION in tags
    print(f"{len(tags)} parameters, tables {tabs}, position table {'present' if MS_POSITION in tags else 'absent'}")
    return 0 if ok else 1


def main(argv):
    cmds = {"tf": cmd_tf, "ms": cmd_ms, "hf": cmd_hf, "moments": cmd_moments, "inputs": cmd_inputs, "compare": cmd_compare, "model": cmd_model,
            "rename": cmd_rename, "same": cmd_same, "ms-names": cmd_ms_names}
    if not argv or argv[0] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[argv[0]](*argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
