#!/usr/bin/env python3
"""bert.h / HF-named safetensors -> ONNX: the BERT encoder, its pooler and the task head, for ONNX
Runtime and other ONNX inference engines.

    python3 convert/st2onnx.py model.safetensors model.onnx
    python3 convert/st2onnx.py ner_run/model.safetensors ner.onnx --opset 14

Inputs input_ids, attention_mask, token_type_ids: int64 [batch, sequence], both axes dynamic
(sequence <= max_position_embeddings). Outputs last_hidden_state [batch, sequence, hidden] and
pooler_output [batch, hidden], and the task head's when the file has one:
  classifier.* on the pooled output (BertForSequenceClassification): logits [batch, labels];
  classifier.* on every token (BertForTokenClassification): logits [batch, sequence, labels];
  qa_outputs.* (BertForQuestionAnswering): start_logits, end_logits [batch, sequence].
A token classifier trained with a CRF (crf.transitions) exports its emission scores as logits and
the transitions as the constant output crf_transitions [labels+2, labels+2] (row from, column to;
START = labels, STOP = labels+1, as bert.h): Viterbi decoding is not an ONNX op, run it yourself.
Whether classifier.* is per sequence or per token: --head, else crf.transitions (token), else the
"architectures" of a config.json beside the file, else a "task" in the metadata (examples/classify.c:
sequence), else sequence with a note. The pretraining heads (cls.*) are not exported.

The graph computes what bert.h computes: the additive padding mask (1 - mask) * -10000 (newer HF code
adds the float minimum instead: the same outputs unless a row is all padding), the config's
GELU (hidden_act "gelu" = erf; gelu_tanh/gelu_new = tanh form), layer_norm_eps, softmax attention
with 1/sqrt(head size). Opset 17 (LayerNormalization) by default; --opset 13..16 spells LayerNorm
out in ReduceMean/Sqrt/Div. Weights are float32 initializers with their HF names; Linear weights are
stored transposed, (in, out), for MatMul. Config from --config, else the file's __metadata__, else a
config.json / bert_config.json beside it. The output is written to OUT.tmp and renamed."""
import argparse
import json
import os

import numpy as np

import names
import wire
from common import ConvertError, bert_config, cli, json_loads, load_config_json, note, write_atomic
from hf2st import read_model

FLOAT, INT64 = 1, 7                      # TensorProto.DataType
A_FLOAT, A_INT, A_STRING, A_INTS = 1, 2, 3, 7   # AttributeProto.AttributeType
PROTOBUF_LIMIT = (2 << 30) - 1           # protobuf's message size limit; no external data here
HEADS = ("auto", "none", "sequence", "token", "span")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="st2onnx.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Errors: one line 'convert: FILE: problem', exit 1; nothing is written.")
    p.add_argument("model", help="bert.h / HF-named .safetensors (config in __metadata__ or config.json beside it)")
    p.add_argument("out", help="the .onnx file to write")
    p.add_argument("--config", help="config.json / bert_config.json (default: the file's __metadata__, then one beside it)")
    p.add_argument("--head", choices=HEADS, default="auto",
                   help="task head: auto (from the tensors and config), none (encoder and pooler only), "
                        "sequence or token (classifier.*), span (qa_outputs.*)")
    p.add_argument("--opset", type=int, default=17, choices=range(13, 18), metavar="13..17",
                   help="ONNX opset (17: LayerNormalization; below: LayerNorm spelled out)")
    p.add_argument("--skip-unknown", action="store_true", help="drop tensors that are no part of BERT or a task head")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------
# the ONNX protobuf messages (onnx.proto, proto2): only the fields written here

def tensor_proto(name, a, doc=None):
    """TensorProto: dims (1), data_type (2), name (8), raw_data (9, little-endian), doc_string (12)."""
    a = np.asarray(a, order="C")   # not ascontiguousarray: it makes a scalar 1-D
    dt = {np.dtype("<f4"): FLOAT, np.dtype("<i8"): INT64}[a.dtype]
    head = b"".join(wire.f_varint(1, d) for d in a.shape) + wire.f_varint(2, dt) + wire.f_str(8, name)
    if doc:
        head += wire.f_str(12, doc)
    return [head] + wire.f_chunks(9, [memoryview(a).cast("B")])


def attribute(name, v):
    """AttributeProto: name (1), f (2), i (3), s (4), ints (8), type (20)."""
    out = wire.f_str(1, name)
    if isinstance(v, float):
        return out + wire.f_float(2, v) + wire.f_varint(20, A_FLOAT)
    if isinstance(v, int):
        return out + wire.f_varint(3, v) + wire.f_varint(20, A_INT)
    if isinstance(v, str):
        return out + wire.f_str(4, v) + wire.f_varint(20, A_STRING)
    return out + b"".join(wire.f_varint(8, x) for x in v) + wire.f_varint(20, A_INTS)


def value_info(name, elem_type, dims):
    """ValueInfoProto{name, TypeProto{tensor_type{elem_type, shape{dim{dim_value | dim_param}}}}}."""
    shape = b"".join(wire.f_bytes(1, wire.f_str(2, d) if isinstance(d, str) else wire.f_varint(1, d)) for d in dims)
    tensor = wire.f_varint(1, elem_type) + wire.f_bytes(2, shape)
    return wire.f_str(1, name) + wire.f_bytes(2, wire.f_bytes(1, tensor))


class Graph:
    """Nodes and initializers in the order they are made; values named op_N unless given a name."""

    def __init__(self, opset):
        self.opset, self.nodes, self.inits, self.n = opset, [], [], 0

    def init(self, name, a, doc=None):
        self.inits.append(tensor_proto(name, a, doc))
        return name

    def const(self, values, dtype=np.int64):
        self.n += 1
        return self.init(f"const_{self.n}", np.asarray(values, dtype=dtype))

    def op(self, op_type, *inputs, out=None, **attrs):
        """NodeProto: input (1), output (2), name (3), op_type (4), attribute (5)."""
        self.n += 1
        out = out or f"{op_type.lower()}_{self.n}"
        node = b"".join(wire.f_str(1, i) for i in inputs) + wire.f_str(2, out) + \
            wire.f_str(3, f"{op_type}_{self.n}") + wire.f_str(4, op_type) + \
            b"".join(wire.f_bytes(5, attribute(k, v)) for k, v in attrs.items())
        self.nodes.append(node)
        return out


def model_chunks(g, inputs, outputs, props, doc):
    """ModelProto: ir_version (1), producer_name (2), producer_version (3), doc_string (6), graph (7),
    opset_import (8), metadata_props (14). GraphProto: node (1), name (2), initializer (5),
    input (11), output (12)."""
    graph = [wire.f_bytes(1, n) for n in g.nodes] + [wire.f_str(2, "bert")]
    for t in g.inits:
        graph += wire.f_chunks(5, t)
    graph += [wire.f_bytes(11, v) for v in inputs] + [wire.f_bytes(12, v) for v in outputs]
    head = wire.f_varint(1, 8 if g.opset >= 15 else 7) + wire.f_str(2, "bert.h st2onnx.py") + \
        wire.f_str(3, "1") + wire.f_str(6, doc)
    tail = wire.f_bytes(8, wire.f_str(1, "") + wire.f_varint(2, g.opset)) + \
        b"".join(wire.f_bytes(14, wire.f_str(1, k) + wire.f_str(2, v)) for k, v in props.items())
    return [head] + wire.f_chunks(7, graph) + [tail]


# ---------------------------------------------------------------------------------------------
# the tensors and the config

def find_config(path, given, meta):
    """(config dict, its path, the "architectures" of --config or a config.json beside the file).
    The config: --config, else __metadata__, else bert_config.json / config.json beside (bert.h's order)."""
    d = os.path.dirname(path) or "."
    beside = [os.path.join(d, n) for n in ("bert_config.json", "config.json") if os.path.exists(os.path.join(d, n))]
    arch = []
    for p in ([given] if given else []) + beside:   # only a hint: an unreadable file beside is no error here
        try:
            a = load_config_json(p).get("architectures")
        except (ConvertError, OSError):
            continue
        if isinstance(a, list):
            arch = a
            break
    if given:
        return load_config_json(given), given, arch
    if "config" in meta:
        cfg = json_loads(meta["config"], path, "bad config in __metadata__")
        if not isinstance(cfg, dict):
            raise ConvertError(path, "config in __metadata__ is not a JSON object")
        return cfg, path, arch
    if beside:
        return load_config_json(beside[0]), beside[0], arch
    raise ConvertError(path, "no config in __metadata__ and no bert_config.json / config.json beside it (give --config)")


def weights(raw, path, cfg, skip_unknown):
    """{bert.h name: float32 array} of the encoder, pooler and head tensors, shapes checked."""
    L = cfg["num_hidden_layers"]
    out, unknown = {}, []
    for k, a in raw.items():
        n = names.hf_canonical(k)
        if names.hf_dropped(n) or n.startswith("cls."):
            continue   # the position_ids buffer, the pretraining heads: not exported
        if not names.known_hf(n, L):
            unknown.append(k)
            continue
        if a.dtype.kind != "f":
            raise ConvertError(path, f"tensor '{k}' is {a.dtype}, expected a float tensor")
        out[n] = np.ascontiguousarray(a, dtype="<f4")
    if unknown and not skip_unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ConvertError(path, f"tensor '{unknown[0]}'{more} is no part of BERT or a task head (--skip-unknown drops it)")
    if unknown:
        note(f"{path}: dropped {len(unknown)} unknown tensors: {', '.join(unknown[:3])}")
    want = names.shapes(cfg)
    for r in names.rows(L):
        if r.hf.startswith("cls."):
            continue
        if r.hf not in out:
            raise ConvertError(path, f"no tensor '{r.hf}'")
        if out[r.hf].shape != want[r.hf]:
            raise ConvertError(path, f"tensor '{r.hf}' has shape {list(out[r.hf].shape)}, the config needs {list(want[r.hf])}")
    C = cfg["hidden_size"]
    for prefix, rows in (("classifier", None), ("qa_outputs", 2)):
        w, b = out.get(prefix + ".weight"), out.get(prefix + ".bias")
        if (w is None) != (b is None):
            raise ConvertError(path, f"{prefix}.weight and {prefix}.bias come together; one of them is missing")
        if w is not None:
            K = rows or (w.shape[0] if w.ndim == 2 else 0)
            if w.shape != (K, C) or K < 1 or b.shape != (K,):
                raise ConvertError(path, f"{prefix}.weight {list(w.shape)} and .bias {list(b.shape)}: expected "
                                         f"[{rows or 'labels'}, {C}] and [{rows or 'labels'}]")
    tr = out.get("crf.transitions")
    if tr is not None:
        if "classifier.weight" not in out:
            raise ConvertError(path, "crf.transitions without classifier.*")
        K = out["classifier.weight"].shape[0]
        if tr.shape != (K + 2, K + 2):
            raise ConvertError(path, f"crf.transitions has shape {list(tr.shape)}, expected [{K + 2}, {K + 2}] for {K} labels")
    return out


def head_kind(choice, w, meta, arch, path):
    """The heads to export: a list of "sequence", "token", "span" (empty: encoder and pooler only)."""
    has_cls, has_qa = "classifier.weight" in w, "qa_outputs.weight" in w
    if choice == "none":
        return []
    if choice == "span":
        if not has_qa:
            raise ConvertError(path, "--head span: the file has no qa_outputs.*")
        return ["span"]
    if choice in ("sequence", "token"):
        if not has_cls:
            raise ConvertError(path, f"--head {choice}: the file has no classifier.*")
        if choice == "sequence" and "crf.transitions" in w:
            raise ConvertError(path, "--head sequence: the file has crf.transitions, a token classifier's CRF")
        return [choice]
    kinds = ["span"] if has_qa else []
    if has_cls:
        if "crf.transitions" in w or any("TokenClassification" in str(a) for a in arch):
            kinds.append("token")
        elif any("SequenceClassification" in str(a) for a in arch) or "task" in meta:
            kinds.append("sequence")
        else:
            note(f"{path}: classifier.* exported as a sequence classifier (logits [batch, labels]); "
                 f"--head token for a token classifier")
            kinds.append("sequence")
    return kinds


# ---------------------------------------------------------------------------------------------
# the graph

def build(cfg, w, kinds, opset):
    g = Graph(opset)
    C, NH, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    HS, eps = C // NH, float(cfg["layer_norm_eps"])
    tanh_gelu = cfg["hidden_act"] not in ("gelu", "gelu_erf")
    f32 = lambda v: g.const(v, np.float32)   # noqa: E731

    def param(n):
        return g.init(n, w[n])

    def linear(x, prefix):   # x @ W^T + b, W stored (in, out)
        wt = g.init(prefix + ".weight", np.ascontiguousarray(w[prefix + ".weight"].T), "transposed: (in, out)")
        return g.op("Add", g.op("MatMul", x, wt), param(prefix + ".bias"))

    def layernorm(x, prefix):
        gamma, beta = param(prefix + ".weight"), param(prefix + ".bias")
        if opset >= 17:
            return g.op("LayerNormalization", x, gamma, beta, axis=-1, epsilon=eps)
        d = g.op("Sub", x, g.op("ReduceMean", x, axes=[-1], keepdims=1))
        var = g.op("ReduceMean", g.op("Mul", d, d), axes=[-1], keepdims=1)
        y = g.op("Div", d, g.op("Sqrt", g.op("Add", var, f32(eps))))
        return g.op("Add", g.op("Mul", y, gamma), beta)

    def gelu(x):
        if tanh_gelu:   # 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))
            x3 = g.op("Mul", g.op("Mul", x, x), x)
            inner = g.op("Mul", g.op("Add", x, g.op("Mul", x3, f32(0.044715))), f32(0.7978845608028654))
            t = g.op("Tanh", inner)
        else:           # 0.5x(1 + erf(x / sqrt 2))
            t = g.op("Erf", g.op("Mul", x, f32(0.7071067811865476)))
        return g.op("Mul", g.op("Mul", x, f32(0.5)), g.op("Add", t, f32(1.0)))

    # embeddings: word + position (the first `sequence` rows) + token type, LayerNorm
    seq_len = g.op("Slice", g.op("Shape", "input_ids"), g.const([1]), g.const([2]))
    pos = g.op("Slice", param("bert.embeddings.position_embeddings.weight"), g.const([0]), seq_len, g.const([0]))
    x = g.op("Add", g.op("Gather", param("bert.embeddings.word_embeddings.weight"), "input_ids"), pos)
    x = g.op("Add", x, g.op("Gather", param("bert.embeddings.token_type_embeddings.weight"), "token_type_ids"))
    x = layernorm(x, "bert.embeddings.LayerNorm")
    # the additive mask (1 - mask) * -10000 on the keys: [batch, 1, 1, sequence]
    m = g.op("Sub", f32(1.0), g.op("Cast", "attention_mask", to=FLOAT))
    mask_add = g.op("Unsqueeze", g.op("Mul", m, f32(-10000.0)), g.const([1, 2]))
    heads_shape, merged_shape = g.const([0, 0, NH, HS]), g.const([0, 0, C])
    scale = f32(1.0 / np.sqrt(np.float32(HS)))
    for i in range(L):
        p = f"bert.encoder.layer.{i}."
        q, k, v = (g.op("Reshape", linear(x, p + "attention.self." + s), heads_shape) for s in ("query", "key", "value"))
        q = g.op("Transpose", q, perm=[0, 2, 1, 3])   # [batch, heads, sequence, head size]
        k = g.op("Transpose", k, perm=[0, 2, 3, 1])   # [batch, heads, head size, sequence]
        v = g.op("Transpose", v, perm=[0, 2, 1, 3])
        s = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), mask_add)
        ctx = g.op("MatMul", g.op("Softmax", s, axis=-1), v)
        ctx = g.op("Reshape", g.op("Transpose", ctx, perm=[0, 2, 1, 3]), merged_shape)
        x = layernorm(g.op("Add", linear(ctx, p + "attention.output.dense"), x), p + "attention.output.LayerNorm")
        h = gelu(linear(x, p + "intermediate.dense"))
        x = layernorm(g.op("Add", linear(h, p + "output.dense"), x), p + "output.LayerNorm")
    g.op("Identity", x, out="last_hidden_state")
    first = g.op("Gather", x, g.const(0), axis=1)   # the [CLS] token: [batch, hidden]
    g.op("Tanh", linear(first, "bert.pooler.dense"), out="pooler_output")
    outs = [("last_hidden_state", ["batch", "sequence", C]), ("pooler_output", ["batch", C])]
    if "sequence" in kinds:
        g.op("Identity", linear("pooler_output", "classifier"), out="logits")
        outs.append(("logits", ["batch", w["classifier.weight"].shape[0]]))
    if "token" in kinds:
        g.op("Identity", linear(x, "classifier"), out="logits")
        outs.append(("logits", ["batch", "sequence", w["classifier.weight"].shape[0]]))
        if "crf.transitions" in w:
            g.op("Identity", param("crf.transitions"), out="crf_transitions")
            outs.append(("crf_transitions", list(w["crf.transitions"].shape)))
    if "span" in kinds:
        span = linear(x, "qa_outputs")   # [batch, sequence, 2]
        g.op("Gather", span, g.const(0), axis=2, out="start_logits")
        g.op("Gather", span, g.const(1), axis=2, out="end_logits")
        outs += [("start_logits", ["batch", "sequence"]), ("end_logits", ["batch", "sequence"])]
    return g, outs


def main(argv):
    a = parse_args(argv)
    raw, meta = read_model(a.model)
    src, cpath, arch = find_config(a.model, a.config, meta)
    cfg = bert_config(src, cpath)
    if names.flavour(cfg):
        raise ConvertError(cpath, "NEZHA (relative positions) is not exported to ONNX: this graph has BERT's "
                                  "absolute positions only")
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise ConvertError(cpath, f"hidden_size {cfg['hidden_size']} does not divide into "
                                  f"{cfg['num_attention_heads']} attention heads")
    eps = cfg["layer_norm_eps"]
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 <= eps < 1:
        raise ConvertError(cpath, f"layer_norm_eps {eps!r} is not a number in [0, 1)")
    w = weights(raw, a.model, cfg, a.skip_unknown)
    kinds = head_kind(a.head, w, meta, arch, a.model)
    if "token" in kinds and "crf.transitions" in w:
        note(f"{a.model}: the CRF is exported as its emission scores (logits) and crf_transitions; "
             f"decode with Viterbi outside ONNX")
    g, outs = build(cfg, w, kinds, a.opset)
    inputs = [value_info(n, INT64, ["batch", "sequence"]) for n in ("input_ids", "attention_mask", "token_type_ids")]
    outputs = [value_info(n, FLOAT, d) for n, d in outs]
    props = {"bert.h.config": json.dumps(cfg), "bert.h.head": ",".join(kinds) or "none",
             "source": os.path.basename(a.model)}
    if "labels" in meta:
        props["labels"] = meta["labels"]
    doc = "BERT encoder exported by bert.h's convert/st2onnx.py; mask convention (1 - attention_mask) * -10000"
    chunks = model_chunks(g, inputs, outputs, props, doc)
    size = wire.chunks_len(chunks)
    if size > PROTOBUF_LIMIT:
        raise ConvertError(a.out, f"the model would take {size} bytes, over protobuf's 2 GiB limit "
                                  f"(ONNX external data is not written by this script)")
    d = os.path.dirname(a.out)
    if d and not os.path.isdir(d):
        raise ConvertError(a.out, f"no directory {d}")
    write_atomic(a.out, chunks)
    return 0


if __name__ == "__main__":
    cli(main)
