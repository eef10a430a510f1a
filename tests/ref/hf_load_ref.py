#!/usr/bin/python3
"""hf_load_ref.py - an independent reader of a model directory (model.safetensors + config.json) that
applies transformers' loading rules, then (with torch) runs the model through tests/ref/bert_ref.py.

Written from transformers' source (modeling_utils.py from_pretrained / load_state_dict /
_load_pretrained_model, configuration_utils.py PretrainedConfig, models/bert/modeling_bert.py,
activations.py, v4.3x-4.5x) and the safetensors format; it imports neither. What it checks:

  safetensors  8-byte little-endian header size (at most 100 MB, within the file), a UTF-8 JSON object,
               "__metadata__" a str->str map, every tensor {dtype, shape, data_offsets} with a known
               dtype, offsets contiguous from 0 in order and covering the data exactly, size = numel
               x dtype size (safetensors' own validation: a file that breaks it does not open).
  metadata     "format" must be "pt" (load_state_dict refuses a file whose format is not pt, tf, flax
               or mlx; from_pretrained sends tf and flax files to the TF / Flax converters, whose
               names are not HF's PyTorch names). No __metadata__ at all is refused too: transformers
               before 4.48 fails on it (metadata.get on None).
  config.json  a JSON object; model_type "bert" (AutoConfig's key); architectures naming a BERT class;
               BertConfig's defaults for absent keys (vocab_size 30522, hidden_size 768, ...);
               positive integer sizes, hidden_size a multiple of num_attention_heads (BertSelfAttention
               raises otherwise); hidden_act a key of ACT2FN (any other string raises KeyError when the
               model is built); dropout probabilities in [0, 1] (nn.Dropout); pad_token_id inside the
               vocabulary (nn.Embedding's padding_idx); id2label keys integers (PretrainedConfig int()s
               them), num_labels = len(id2label) (id2label wins over num_labels), else num_labels (2);
               problem_type None or one of the three PretrainedConfig allows.
  names        expected keys = the architecture's state_dict under this config (BertModel with or
               without its pooler, the heads; position_ids / token_type_ids are non-persistent
               buffers, so never expected and never unexpected); old gamma/beta names renamed
               (_fix_key); base-model prefix "bert": a checkpoint without "bert." keys loads into a
               head model by prefixing, a checkpoint with them into BertModel by dropping the rest;
               missing = expected - loaded, unexpected = loaded - expected - buffers; a tied group
               (cls.predictions.decoder.weight with bert.embeddings.word_embeddings.weight when
               tie_word_embeddings, cls.predictions.decoder.bias with cls.predictions.bias) that is
               only partly present is not missing. A shape that differs from the config's is a
               "size mismatch" RuntimeError (from_pretrained without ignore_mismatched_sizes).
  bert.h       (not transformers' rule) the file's own __metadata__ "config", when present, must agree
               with config.json on every key both carry (bert.h reads the metadata, transformers the
               json: disagreeing files compute different things in the two).

Accepted = loads, with zero missing and zero unexpected keys. Exit status 0 when accepted, 1 when not
(the reasons printed), 2 on bad usage. --write_inputs and --forward go on past what transformers only
warns about (unexpected keys, the bert.h config rule) and stop at missing keys or a refusal: the outputs
are judged by their own comparisons, the acceptance by the plain invocation.

    hf_load_ref.py DIR [--arch NAME]                       the checks (numpy only)
    hf_load_ref.py DIR --ids IDS.txt --vocab vocab.txt --write_inputs IN.safetensors [--positions 1,2]
        the lines of token ids (encode --ids) as a padded batch for tests/convert_forward.c (I32
        input_ids, token_type_ids from the first [SEP], attention_mask, masked_lm_positions, ...)
    hf_load_ref.py DIR --ids IDS.txt --vocab vocab.txt --forward [--positions 1,2] [--atol 1e-5]
        [--compare cls|mean|max|mean_normalized=FILE.npy ...] [--compare_st convert_forward_out.safetensors]
        [--compare_predictions test_predictions.tsv|json]
        builds the model that config.json names on bert_ref.forward (float64, dropout off) and checks
        bert.h's outputs against it: encode's .npy vectors (cls/mean/max pooling, mean L2-normalised as a
        sentence-transformers directory's Pooling + Normalize modules ask), convert_forward's
        activations (last layer at the real tokens, pooled, MLM and NSP logits), classify's
        predictions (regression values within --atol; labels = the argmax where the top two logits
        are further apart than --atol). Prints one "ok"/"FAIL" line per comparison.
"""
import argparse, json, math, os, struct, sys
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# safetensors dtypes and their sizes in bytes
DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
          "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}
MAX_HEADER = 100_000_000

# transformers' ACT2FN keys (activations.py, the set shared by v4.3x-4.5x)
ACT2FN = {"gelu", "gelu_10", "gelu_fast", "gelu_new", "gelu_python", "gelu_pytorch_tanh", "gelu_accurate", "laplace",
          "leaky_relu", "linear", "mish", "quick_gelu", "relu", "relu2", "relu6", "sigmoid", "silu", "swish", "tanh"}
# ... which of them bert_ref.forward computes: the erf GELU and the tanh-form GELU (gelu_new's formula;
# gelu_pytorch_tanh and gelu_fast are the same function written differently)
REF_ACT = {"gelu": "gelu", "gelu_python": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh"}

# BertConfig's defaults (configuration_bert.py) for the keys a BERT state dict's shapes depend on
BERT_DEFAULTS = {"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                 "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
                 "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 2,
                 "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
                 "position_embedding_type": "absolute", "classifier_dropout": None, "tie_word_embeddings": True,
                 "is_decoder": False, "add_cross_attention": False, "problem_type": None}
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")

# architecture -> (BertModel's pooler present, heads); modeling_bert.py's __init__s
ARCHS = {
    "BertModel":                     (True, []),
    "BertForPreTraining":            (True, ["mlm", "nsp"]),
    "BertForMaskedLM":               (False, ["mlm"]),
    "BertLMHeadModel":               (False, ["mlm"]),
    "BertForNextSentencePrediction": (True, ["nsp"]),
    "BertForSequenceClassification": (True, ["classifier"]),
    "BertForMultipleChoice":         (True, ["classifier1"]),
    "BertForTokenClassification":    (False, ["classifier"]),
    "BertForQuestionAnswering":      (False, ["qa"]),
}
BUFFERS = ["embeddings.position_ids", "embeddings.token_type_ids"]   # register_buffer(..., persistent=False)


class Rejected(Exception):
    pass


# ---------------------------------------------------------------- safetensors
def read_safetensors(path):
    """(header dict without __metadata__, metadata or None, data bytes); Rejected on what safetensors refuses."""
    buf = open(path, "rb").read()
    if len(buf) < 8:
        raise Rejected("%s: %d bytes, shorter than the 8-byte header size" % (path, len(buf)))
    n = struct.unpack("<Q", buf[:8])[0]
    if n > MAX_HEADER:
        raise Rejected("%s: header of %d bytes (safetensors: HeaderTooLarge)" % (path, n))
    if 8 + n > len(buf):
        raise Rejected("%s: header of %d bytes runs past the end of the file (InvalidHeaderLength)" % (path, n))
    try:
        text = buf[8:8 + n].decode("utf-8")
        if not text.startswith("{"):
            raise ValueError("does not start with '{'")
        hdr = json.loads(text)
    except (UnicodeDecodeError, ValueError) as e:
        raise Rejected("%s: header is not a JSON object (%s)" % (path, e))
    if not isinstance(hdr, dict):
        raise Rejected("%s: header is not a JSON object" % path)
    meta = hdr.pop("__metadata__", None)
    if meta is not None and (not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())):
        raise Rejected("%s: __metadata__ is not a map of strings to strings" % path)
    data = buf[8 + n:]
    spans = []
    for name, d in hdr.items():
        if not isinstance(d, dict) or set(d) - {"dtype", "shape", "data_offsets"} or len(d) != 3:
            raise Rejected("%s: tensor %r: not {dtype, shape, data_offsets}" % (path, name))
        if d["dtype"] not in DTYPES:
            raise Rejected("%s: tensor %r: unknown dtype %r" % (path, name, d["dtype"]))
        shape, off = d["shape"], d["data_offsets"]
        if not isinstance(shape, list) or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in shape):
            raise Rejected("%s: tensor %r: bad shape %r" % (path, name, shape))
        if not (isinstance(off, list) and len(off) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in off)):
            raise Rejected("%s: tensor %r: bad data_offsets %r" % (path, name, off))
        if off[1] < off[0] or off[1] - off[0] != math.prod(shape) * DTYPES[d["dtype"]]:
            raise Rejected("%s: tensor %r: data_offsets %r do not hold %s %s (TensorInvalidInfo)" % (path, name, off, d["dtype"], shape))
        spans.append((off[0], off[1], name))
    end = 0
    for s, e, name in sorted(spans):
        if s != end:
            raise Rejected("%s: tensor %r starts at %d, expected %d (InvalidOffset: gaps or overlaps)" % (path, name, s, end))
        end = e
    if end != len(data):
        raise Rejected("%s: tensors cover %d bytes of a %d-byte data section (MetadataIncompleteBuffer)" % (path, end, len(data)))
    return hdr, meta, data


def st_write(path, tensors, metadata):
    """tensors: (name, numpy array of float32 / int32) in file order; metadata None: no __metadata__."""
    hdr, blobs, off = ({} if metadata is None else {"__metadata__": dict(metadata)}), [], 0
    for name, a in tensors:
        a = np.ascontiguousarray(a)
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        hdr[name] = {"dtype": {"float32": "F32", "int32": "I32"}[a.dtype.name], "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def tensor(hdr, data, name):
    d = hdr[name]
    s, e = d["data_offsets"]
    raw = data[s:e]
    if d["dtype"] == "BF16":
        u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return u.view(np.float32).reshape(d["shape"])
    dt = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8"}[d["dtype"]]
    return np.frombuffer(raw, dtype=dt).reshape(d["shape"])


# ---------------------------------------------------------------- config.json
def positive_int(cfg, key):
    v = cfg[key]
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise Rejected("config.json: %s is %r, not a positive integer" % (key, v))
    return v


def load_config(path):
    """BertConfig as from_pretrained builds it: the json over BertConfig's defaults, plus num_labels."""
    try:
        raw = json.load(open(path, "rb"))
    except ValueError as e:
        raise Rejected("%s: not valid JSON (%s)" % (path, e))
    if not isinstance(raw, dict):
        raise Rejected("%s: not a JSON object" % path)
    if raw.get("model_type") != "bert":
        raise Rejected("config.json: model_type is %r, not \"bert\" (AutoConfig picks the class by it)" % raw.get("model_type"))
    cfg = dict(BERT_DEFAULTS)
    cfg.update(raw)
    for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "max_position_embeddings", "type_vocab_size"):
        positive_int(cfg, k)
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise Rejected("config.json: hidden_size %d is not a multiple of num_attention_heads %d" % (cfg["hidden_size"], cfg["num_attention_heads"]))
    if not isinstance(cfg["hidden_act"], str) or cfg["hidden_act"] not in ACT2FN:
        raise Rejected("config.json: hidden_act %r is not in transformers' ACT2FN (KeyError when the model is built)" % (cfg["hidden_act"],))
    for k in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
        v = cfg[k]
        if v is None and k == "classifier_dropout":
            continue
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1:
            raise Rejected("config.json: %s is %r, not a probability (nn.Dropout raises)" % (k, v))
    if not isinstance(cfg["layer_norm_eps"], (int, float)) or isinstance(cfg["layer_norm_eps"], bool) or not cfg["layer_norm_eps"] > 0:
        raise Rejected("config.json: layer_norm_eps is %r" % (cfg["layer_norm_eps"],))
    pad = cfg["pad_token_id"]
    if pad is not None and (not isinstance(pad, int) or isinstance(pad, bool) or not -cfg["vocab_size"] <= pad < cfg["vocab_size"]):
        raise Rejected("config.json: pad_token_id %r is outside the vocabulary of %d (nn.Embedding's padding_idx)" % (pad, cfg["vocab_size"]))
    if cfg["problem_type"] is not None and cfg["problem_type"] not in PROBLEM_TYPES:
        raise Rejected("config.json: problem_type %r is not one of %s" % (cfg["problem_type"], ", ".join(PROBLEM_TYPES)))
    if raw.get("label2id") is not None and not isinstance(raw["label2id"], dict):
        raise Rejected("config.json: label2id is not an object (PretrainedConfig raises)")
    if "id2label" in raw and raw["id2label"] is not None:
        if not isinstance(raw["id2label"], dict):
            raise Rejected("config.json: id2label is not an object")
        try:
            id2label = {int(k): v for k, v in raw["id2label"].items()}
        except ValueError:
            raise Rejected("config.json: id2label has a key that is not an integer (PretrainedConfig int()s them)")
        cfg["num_labels"] = len(id2label)   # id2label wins over a num_labels that disagrees (a warning)
        cfg["id2label"] = id2label
    else:
        k = raw.get("num_labels", 2)
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise Rejected("config.json: num_labels is %r" % (k,))
        cfg["num_labels"] = k
        cfg["id2label"] = {i: "LABEL_%d" % i for i in range(k)}
    for k in ("tie_word_embeddings", "is_decoder", "add_cross_attention"):
        if not isinstance(cfg[k], bool):
            raise Rejected("config.json: %s is %r, not true/false" % (k, cfg[k]))
    return cfg, raw


def pick_arch(raw, forced):
    if forced:
        if forced not in ARCHS:
            raise Rejected("--arch %s: not one of %s" % (forced, ", ".join(ARCHS)))
        return forced
    archs = raw.get("architectures")
    if not isinstance(archs, list) or not archs or not all(isinstance(a, str) for a in archs):
        raise Rejected("config.json: no \"architectures\" list naming the model's class")
    for a in archs:
        if a in ARCHS:
            return a
    raise Rejected("config.json: architectures %s names no BERT class transformers has (%s)" % (archs, ", ".join(ARCHS)))


# ---------------------------------------------------------------- the architecture's state dict
def expected_state(arch, cfg):
    """name -> shape of arch's state_dict under cfg, and the tied groups (names sharing storage)."""
    C, V, L, F = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    P, TV, K = cfg["max_position_embeddings"], cfg["type_vocab_size"], cfg["num_labels"]
    pooler, heads = ARCHS[arch]
    pre = "" if arch == "BertModel" else "bert."
    s = {pre + "embeddings.word_embeddings.weight": (V, C), pre + "embeddings.position_embeddings.weight": (P, C),
         pre + "embeddings.token_type_embeddings.weight": (TV, C),
         pre + "embeddings.LayerNorm.weight": (C,), pre + "embeddings.LayerNorm.bias": (C,)}
    HS = C // cfg["num_attention_heads"]

    def attention(p):
        for n in ("query", "key", "value"):
            s[p + "self.%s.weight" % n], s[p + "self.%s.bias" % n] = (C, C), (C,)
        if cfg["position_embedding_type"] in ("relative_key", "relative_key_query"):
            s[p + "self.distance_embedding.weight"] = (2 * P - 1, HS)
        s[p + "output.dense.weight"], s[p + "output.dense.bias"] = (C, C), (C,)
        s[p + "output.LayerNorm.weight"], s[p + "output.LayerNorm.bias"] = (C,), (C,)

    for l in range(L):
        p = pre + "encoder.layer.%d." % l
        attention(p + "attention.")
        if cfg["add_cross_attention"]:
            attention(p + "crossattention.")
        s[p + "intermediate.dense.weight"], s[p + "intermediate.dense.bias"] = (F, C), (F,)
        s[p + "output.dense.weight"], s[p + "output.dense.bias"] = (C, F), (C,)
        s[p + "output.LayerNorm.weight"], s[p + "output.LayerNorm.bias"] = (C,), (C,)
    if pooler:
        s[pre + "pooler.dense.weight"], s[pre + "pooler.dense.bias"] = (C, C), (C,)
    tied = []
    for h in heads:
        if h == "mlm":
            c = "cls.predictions."
            s[c + "transform.dense.weight"], s[c + "transform.dense.bias"] = (C, C), (C,)
            s[c + "transform.LayerNorm.weight"], s[c + "transform.LayerNorm.bias"] = (C,), (C,)
            s[c + "bias"], s[c + "decoder.weight"], s[c + "decoder.bias"] = (V,), (V, C), (V,)
            tied.append([c + "bias", c + "decoder.bias"])   # self.decoder.bias = self.bias
            if cfg["tie_word_embeddings"]:
                tied.append([pre + "embeddings.word_embeddings.weight", c + "decoder.weight"])
        elif h == "nsp":
            s["cls.seq_relationship.weight"], s["cls.seq_relationship.bias"] = (2, C), (2,)
        elif h == "classifier":
            s["classifier.weight"], s["classifier.bias"] = (K, C), (K,)
        elif h == "classifier1":
            s["classifier.weight"], s["classifier.bias"] = (1, C), (1,)
        elif h == "qa":
            s["qa_outputs.weight"], s["qa_outputs.bias"] = (K, C), (K,)
    return s, tied, [pre + b for b in BUFFERS]


def fix_key(k):
    """modeling_utils._fix_key: TF-era LayerNorm names."""
    if "beta" in k:
        return k.replace("beta", "bias")
    if "gamma" in k:
        return k.replace("gamma", "weight")
    return k


def match_keys(arch, cfg, loaded):
    """transformers' missing / unexpected / mismatched for loading `loaded` (name -> shape) into arch."""
    exp, tied, buffers = expected_state(arch, cfg)
    loaded = {fix_key(k): v for k, v in loaded.items()}
    prefix = "bert"
    has_prefix = any(k.startswith(prefix) for k in loaded)
    expects_prefix = any(k.startswith(prefix) for k in exp)
    rename = {}
    if not has_prefix and expects_prefix:      # a base-model file into a head model: compare without "bert."
        rename = {k: k[len(prefix) + 1:] if k.startswith(prefix + ".") else k for k in exp}
    elif has_prefix and not expects_prefix:    # a head-model file into BertModel: compare with "bert."
        rename = {k: prefix + "." + k for k in exp}
    exp = {rename.get(k, k): v for k, v in exp.items()}
    tied = [[rename.get(k, k) for k in g] for g in tied]
    buffers = {rename.get(k, k) for k in buffers}
    missing = sorted(set(exp) - set(loaded))
    unexpected = sorted(set(loaded) - set(exp) - buffers)
    for g in tied:   # a tied group only partly in the file: the rest is filled by tie_weights
        gone = [k for k in missing if k in g]
        if 0 < len(gone) < len(g):
            missing = [k for k in missing if k not in gone]
    mismatched = sorted((k, tuple(loaded[k]), tuple(exp[k])) for k in set(exp) & set(loaded) if tuple(loaded[k]) != tuple(exp[k]))
    return missing, unexpected, mismatched, tied, exp, rename


# ---------------------------------------------------------------- the directory
def inspect(d, forced_arch=None, quiet=False):
    """Returns a dict (arch, cfg, hdr, data, ...) and a list of problems; raises Rejected on a refusal."""
    say = (lambda *a: None) if quiet else print
    st_path, cfg_path = os.path.join(d, "model.safetensors"), os.path.join(d, "config.json")
    for p in (cfg_path, st_path):
        if not os.path.isfile(p):
            raise Rejected("%s: absent (from_pretrained(DIR) reads config.json and model.safetensors)" % p)
    cfg, raw = load_config(cfg_path)
    arch = pick_arch(raw, forced_arch)
    hdr, meta, data = read_safetensors(st_path)
    if meta is None:
        raise Rejected("model.safetensors: no __metadata__ (transformers before 4.48 fails on it; save_pretrained writes {\"format\": \"pt\"})")
    if meta.get("format") != "pt":
        why = ("the TF / Flax loader, whose names differ" if meta.get("format") in ("tf", "flax") else
               "refused: not pt, tf, flax or mlx" if meta.get("format") != "mlx" else "accepted by recent versions only")
        raise Rejected("model.safetensors: __metadata__ format %r, not \"pt\" (%s)" % (meta.get("format"), why))
    problems = []
    for name, h in hdr.items():
        if h["dtype"] not in FLOAT_DTYPES:
            problems.append("tensor %s is %s: a parameter must be floating point" % (name, h["dtype"]))
    missing, unexpected, mismatched, tied, exp, rename = match_keys(arch, cfg, {k: v["shape"] for k, v in hdr.items()})
    if mismatched:
        raise Rejected("size mismatch (from_pretrained raises RuntimeError): " +
                       "; ".join("%s: %s in the file, %s under config.json" % (k, list(a), list(b)) for k, a, b in mismatched))
    if missing:
        problems.append("missing (%d): %s" % (len(missing), ", ".join(missing)))
    if unexpected:
        problems.append("unexpected (%d): %s" % (len(unexpected), ", ".join(unexpected)))
    if "config" in meta:   # bert.h's own config in the file: it must say what config.json says
        try:
            mc = json.loads(meta["config"])
        except ValueError:
            mc = None
            problems.append("bert.h: __metadata__ config is not JSON")
        for k in sorted(set(mc or {}) & set(raw)):
            a, b = raw[k], mc[k]
            same = a == b or (k == "hidden_act" and REF_ACT.get(a, a) == REF_ACT.get(b, b) == "gelu_tanh" or
                              k == "hidden_act" and {a, b} == {"gelu", "gelu_erf"})
            if not same:
                problems.append("bert.h: config.json says %s %r, the file's __metadata__ config %r (bert.h reads the latter)" % (k, a, b))
    absent_tied = sorted(k for g in tied for k in g if k not in hdr and any(o in hdr for o in g))
    dtypes = sorted({h["dtype"] for h in hdr.values()})
    labels = ", %d label%s" % (cfg["num_labels"], "s" if cfg["num_labels"] != 1 else "") if "classifier" in ARCHS[arch][1] else ""
    say("%s: %s (config.json)%s, %d tensors %s, format \"pt\"; missing %d, unexpected %d, mismatched %d%s" %
        (d, arch, labels, len(hdr), "/".join(dtypes), len(missing), len(unexpected), len(mismatched),
         "; tied, filled from their partner: " + ", ".join(absent_tied) if absent_tied else ""))
    return {"arch": arch, "cfg": cfg, "raw": raw, "hdr": hdr, "data": data, "meta": meta, "rename": rename}, problems


# ---------------------------------------------------------------- inputs
def read_ids(path, vocab_path):
    vocab = [l.rstrip("\r\n") for l in open(vocab_path, encoding="utf-8")]
    sep = vocab.index("[SEP]")
    lines = [[int(x) for x in l.split()] for l in open(path) if l.strip()]
    types = []
    for ids in lines:
        first = ids.index(sep) if sep in ids else len(ids) - 1
        types.append([0 if t <= first else 1 for t in range(len(ids))])
    return lines, types


def batch(lines, types, positions):
    B, T, MP = len(lines), max(len(l) for l in lines), len(positions)
    ids, tt, am = np.zeros((B, T), np.int32), np.zeros((B, T), np.int32), np.zeros((B, T), np.int32)
    for i, (l, t) in enumerate(zip(lines, types)):
        ids[i, :len(l)], tt[i, :len(l)], am[i, :len(l)] = l, t, 1
    pos = np.zeros((B, MP), np.int32)
    for i, l in enumerate(lines):
        pos[i] = [min(p, len(l) - 1) for p in positions]
    return {"input_ids": ids, "token_type_ids": tt, "attention_mask": am, "masked_lm_positions": pos,
            "masked_lm_ids": np.zeros((B, MP), np.int32), "next_sentence_label": np.zeros((B,), np.int32)}


# ---------------------------------------------------------------- the PyTorch forward
def forward(info, inp):
    """The architecture's outputs on bert_ref.forward (float64, dropout off), as numpy arrays."""
    import torch
    sys.path.insert(0, HERE)
    import bert_ref
    torch.set_num_threads(1)
    cfg, hdr, data, arch = info["cfg"], info["hdr"], info["data"], info["arch"]
    act = REF_ACT.get(cfg["hidden_act"])
    if act is None:
        raise Rejected("hidden_act %r: the PyTorch reference (bert_ref.py) computes gelu and the tanh-form gelu only" % cfg["hidden_act"])
    if cfg["position_embedding_type"] != "absolute" or cfg["is_decoder"] or not cfg["tie_word_embeddings"]:
        raise Rejected("the PyTorch reference computes absolute positions, no decoder, a tied MLM decoder")
    bert_ref.EPS = float(cfg["layer_norm_eps"])   # bert_ref.ln reads it at call time
    # the file's tensors under the names the architecture uses, then bert_ref's names ("bert." prefixed)
    back = {v: k for k, v in info["rename"].items()}
    W = {}
    for name in hdr:
        k = back.get(fix_key(name), fix_key(name))
        if k.startswith("embeddings.") or k.startswith("encoder.") or k.startswith("pooler."):
            k = "bert." + k   # BertModel's own names
        W[k] = torch.from_numpy(np.asarray(tensor(hdr, data, name), dtype=np.float64))
    if "cls.predictions.decoder.weight" in W and cfg["tie_word_embeddings"]:
        del W["cls.predictions.decoder.weight"]   # tie_weights: the decoder is the word embeddings
    # bert_ref.forward always computes the pooler and both pretraining heads: zeros where this
    # architecture has none (those outputs are not reported)
    table = bert_ref.param_table(V=cfg["vocab_size"], C=cfg["hidden_size"], L=cfg["num_hidden_layers"], FF=cfg["intermediate_size"],
                                 P=cfg["max_position_embeddings"], TV=cfg["type_vocab_size"])
    for name, shape in table:
        if name not in W:
            W[name] = torch.zeros(shape, dtype=torch.float64)
    t = {k: torch.from_numpy(v.astype(np.int64)) for k, v in inp.items()}
    o = bert_ref.forward(W, t, act, {"p": 0.0, "seed": 0, "step": 0}, NH=cfg["num_attention_heads"])
    pooler, heads = ARCHS[arch]
    seq = o["layer.%d" % (cfg["num_hidden_layers"] - 1)]
    m = t["attention_mask"].double()[..., None]
    mean = (seq * m).sum(1) / m.sum(1)   # sentence-transformers' Pooling (mean): over the attention mask
    out = {"seq": seq.numpy(), "mean": mean.numpy(), "max": seq.masked_fill(m == 0, -math.inf).max(1).values.numpy(),
           "mean_normalized": (mean / mean.norm(dim=1, keepdim=True)).numpy()}   # ... then Normalize: L2
    if pooler:
        out["pooled"] = o["pooled"].numpy()
    if "mlm" in heads:
        out["mlm_logits"] = o["mlm_logits"].numpy()
    if "nsp" in heads:
        out["nsp_logits"] = o["nsp_logits"].numpy()
    if "classifier" in heads or "classifier1" in heads:
        src = o["pooled"] if pooler else seq
        out["logits"] = (src @ W["classifier.weight"].T + W["classifier.bias"]).numpy()
    if "qa" in heads:
        out["qa_logits"] = (seq @ W["qa_outputs.weight"].T + W["qa_outputs.bias"]).numpy()
    return out


def compare(label, got, want, atol):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        print("  FAIL %-58s shape %s, PyTorch %s" % (label, list(got.shape), list(want.shape)))
        return False
    d = float(np.max(np.abs(got - want))) if got.size else 0.0
    ok = bool(np.all(np.abs(got - want) <= atol))
    print("  %s %-58s n=%-6d maxabs %.2e (atol %.0e)" % ("ok  " if ok else "FAIL", label, got.size, d, atol))
    return ok


def read_predictions(path):
    """classify's test_predictions: tsv "index<TAB>prediction" after a header, or json lines {"id", "label"}."""
    rows = []
    for i, l in enumerate(open(path, encoding="utf-8")):
        if path.endswith(".json"):
            rows.append(json.loads(l)["label"])
        elif i > 0:
            rows.append(l.rstrip("\n").split("\t")[1])
    return rows


def run_forward(info, lines, types, args):
    positions = [int(x) for x in args.positions.split(",")]
    inp = batch(lines, types, positions)
    out = forward(info, inp)
    am = inp["attention_mask"].astype(bool)
    ok = True
    for spec in args.compare:
        key, _, path = spec.partition("=")
        want = out["pooled" if key == "cls" else key]
        ok &= compare("%s (%s) vs PyTorch" % (key, os.path.basename(path)), np.load(path), want, args.atol)
    if args.compare_st:
        sys.path.insert(0, HERE)
        import bert_ref
        got, _ = bert_ref.st_read(args.compare_st)
        L = info["cfg"]["num_hidden_layers"]
        ok &= compare("sequence output (layer.%d, real tokens) vs PyTorch" % (L - 1), got["layer.%d" % (L - 1)][am], out["seq"][am], args.atol)
        for k in ("pooled", "mlm_logits", "nsp_logits"):
            if k in out:
                ok &= compare("%s vs PyTorch" % k, got[k], out[k], args.atol)
    if args.compare_predictions:
        rows, logits = read_predictions(args.compare_predictions), out["logits"]
        if len(rows) != len(lines):
            print("  FAIL %s: %d predictions for %d lines" % (args.compare_predictions, len(rows), len(lines)))
            return False
        if logits.shape[1] == 1:
            ok &= compare("classifier logits (regression values, %s) vs PyTorch" % os.path.basename(args.compare_predictions),
                          np.array([float(r) for r in rows])[:, None], logits, args.atol)
        else:
            names = [info["cfg"]["id2label"][i] for i in range(logits.shape[1])]
            top = np.sort(logits, 1)
            clear = top[:, -1] - top[:, -2] > args.atol
            agree = [rows[i] == names[int(np.argmax(logits[i]))] for i in range(len(rows)) if clear[i]]
            good = all(agree) and len(agree) > 0
            print("  %s %-58s %d of %d rows decided (margin > %.0e), %d agree" %
                  ("ok  " if good else "FAIL", "classifier labels (argmax, %s) vs PyTorch" % os.path.basename(args.compare_predictions),
                   len(agree), len(rows), args.atol, sum(agree)))
            ok &= good
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--arch", help="load as this class instead of config.json's architectures")
    ap.add_argument("--ids", help="token ids, one line per example (encode --ids)")
    ap.add_argument("--vocab", help="vocab.txt ([SEP] splits a pair's token types)")
    ap.add_argument("--positions", default="1,2", help="masked_lm_positions of every line (MLM logits)")
    ap.add_argument("--write_inputs", help="write the batch as safetensors for convert_forward and stop")
    ap.add_argument("--forward", action="store_true", help="run the PyTorch reference and compare")
    ap.add_argument("--compare", action="append", default=[], help="cls|pooled|mean|max|mean_normalized=FILE.npy (N,C) from encode")
    ap.add_argument("--compare_st", help="convert_forward's output safetensors")
    ap.add_argument("--compare_predictions", help="classify's test_predictions.{tsv,json}")
    ap.add_argument("--atol", type=float, default=1e-5)
    args = ap.parse_args()
    try:
        info, problems = inspect(args.dir, args.arch, quiet=bool(args.write_inputs))
    except Rejected as e:
        print("%s: rejected: %s" % (args.dir, e))
        return 1
    except OSError as e:
        print("%s: rejected: %s" % (args.dir, e))
        return 1
    for p in problems if not args.write_inputs else []:
        print("  %s" % p)
    # the acceptance verdict; --forward and --write_inputs go on where transformers loads the file with
    # a warning (unexpected keys, a disagreeing bert.h metadata config): the outputs are checked on
    # their own, and the verdict is the plain invocation's
    blocking = [p for p in problems if not (args.forward or args.write_inputs) or p.startswith("missing")]
    if blocking:
        print("%s: not accepted (%d problem%s)" % (args.dir, len(problems), "s" if len(problems) > 1 else ""))
        return 1
    if args.ids:
        if not args.vocab:
            ap.error("--ids needs --vocab")
        lines, types = read_ids(args.ids, args.vocab)
        if args.write_inputs:
            inp = batch(lines, types, [int(x) for x in args.positions.split(",")])
            st_write(args.write_inputs, list(inp.items()), {"from": os.path.basename(args.ids)})
            return 0
        if args.forward:
            try:
                return 0 if run_forward(info, lines, types, args) else 1
            except Rejected as e:
                print("  FAIL PyTorch forward: %s" % e)
                return 1
    print("%s: accepted" % args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
