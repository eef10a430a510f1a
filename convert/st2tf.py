#!/usr/bin/env python3
"""bert.h safetensors -> Google TF checkpoint (tensor bundle), for TF users of a model trained
with bert.h.

    python3 convert/st2tf.py model.safetensors out/bert_model.ckpt
    python3 convert/st2tf.py model.safetensors out/model.ckpt-20 --optim optim.safetensors

Writes OUT.index + OUT.data-00000-of-00001 (laid out as TF's saver writes them: one shard, entries
in name order, data contiguous in that order, masked CRC32C per entry; the SSTable byte layout
reproduces real Google .index files exactly) and bert_config.json beside them. Weights go back to
TF's names and kernels back to [in, out]. With --optim (a bert_optim_save file of adamw_gb, adamw
or lamb) the moments become `X/adam_m`, `X/adam_v` and the step `global_step` (int64), as
run_pretraining.py's AdamWeightDecayOptimizer would have saved them.

NEZHA (a config with "use_relative_position"): the bundle has no position_embeddings, as Huawei's
NEZHA-TensorFlow saves it, and bert_config.json says "use_relative_position": true and
"max_relative_position": K. Huawei's attention_layer hard-codes K = 64 (a note says when K differs;
NEZHA-PyTorch and tf2st.py read the key). Only the fixed-table flavour ("huawei") has a TF form: a
model with MindSpore's learned tables is refused (st2ms.py writes those).

GELU: TF's modeling.py computes "gelu" with the tanh form, so the config says "gelu" for a
gelu_tanh model. A model trained with bert.h's erf "gelu" is written with "gelu" too, and a note
says TF will compute the tanh form (differences of order 1e-3 in activations).
Copy vocab.txt yourself; this script handles weights and config only."""
import argparse
import json
import os

import numpy as np

import names
import safetensors_np
import tf_bundle
from common import LIMITS, ConvertError, cli, json_loads, note, relative_config, says_relative, write_atomic

HUAWEI_TF_K = 64   # max_relative_position in Huawei's NEZHA-TensorFlow attention_layer


def parse_args(argv):
    p = argparse.ArgumentParser(prog="st2tf.py", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="bert.h / HF-named .safetensors with the config in __metadata__")
    p.add_argument("out", help="output checkpoint prefix, e.g. out/bert_model.ckpt")
    p.add_argument("--optim", help="bert.h training-state file to carry as adam_m/adam_v/global_step")
    p.add_argument("--skip-unknown", action="store_true", help="drop tensors with no TF name")
    p.add_argument("--no-config", action="store_true", help="do not write bert_config.json")
    return p.parse_args(argv)


def model_config(meta, path):
    if "config" not in meta:
        raise ConvertError(path, "no config in __metadata__ (convert it with tf2st/ms2st/hf2st first)")
    cfg = json_loads(meta["config"], path, "bad config in __metadata__")
    L = cfg.get("num_hidden_layers") if isinstance(cfg, dict) else None
    if not isinstance(L, int) or isinstance(L, bool):
        raise ConvertError(path, "config in __metadata__ has no num_hidden_layers")
    if not 1 <= L <= LIMITS["num_hidden_layers"]:   # it sizes the name table: 16 rows per layer
        raise ConvertError(path, f"config in __metadata__: num_hidden_layers {L} is not in [1, {LIMITS['num_hidden_layers']}]")
    return cfg


def nezha(cfg, path):
    """None for a BERT config, else (K, flavour) of a NEZHA one."""
    return relative_config(cfg, path) if says_relative(cfg, path) else None


def tf_config(cfg, path):
    """bert_config.json for google-research/bert: its "gelu" is the tanh form."""
    out = {k: cfg[k] for k in ("attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob", "hidden_size",
                               "initializer_range", "intermediate_size", "max_position_embeddings",
                               "num_attention_heads", "num_hidden_layers", "type_vocab_size", "vocab_size") if k in cfg}
    act = cfg.get("hidden_act", "gelu")
    if act in ("gelu", "gelu_erf"):
        note(f"{path}: this model uses the erf GELU; TF's modeling.py computes \"gelu\" with the tanh form")
    out["hidden_act"] = "gelu"
    eps = cfg.get("layer_norm_eps", 1e-12)
    if eps != 1e-12:
        out["layer_norm_eps"] = eps
        note(f"{path}: layer_norm_eps {eps} recorded in bert_config.json; TF's modeling.py uses 1e-12")
    rel = nezha(cfg, path)
    if rel:
        out["use_relative_position"], out["max_relative_position"] = True, rel[0]
        if rel[0] != HUAWEI_TF_K:
            note(f"{path}: max_relative_position {rel[0]} recorded in bert_config.json; Huawei's NEZHA-TensorFlow "
                 f"attention_layer hard-codes {HUAWEI_TF_K} (edit it there)")
    return out


def tf_tensors(tensors, path, skip_unknown, L):
    out, unknown = {}, []
    for n, a in tensors.items():
        hf = names.hf_canonical(n)
        hit = names.hf_to_tf(hf) if names.known_hf(hf, L) else None
        if hit is None:
            unknown.append(n)
            continue
        tf, tr = hit
        a = np.asarray(a, dtype=np.float32)
        out[tf] = np.ascontiguousarray(a.T) if tr else np.ascontiguousarray(a)
    if unknown and not skip_unknown:
        raise ConvertError(path, f"tensor '{unknown[0]}' has no TF name (--skip-unknown drops it)")
    return out


def optim_tensors(path, model_names, L):
    """adam_m/adam_v slots and global_step from a bert_optim_save file."""
    t, meta = safetensors_np.read(path)
    if meta.get("format") != "bert.h-optim":
        raise ConvertError(path, "not a bert.h training-state file (metadata format != bert.h-optim)")
    if meta.get("optimizer") not in ("adamw_gb", "adamw", "lamb"):
        raise ConvertError(path, f"optimizer {meta.get('optimizer')!r} has no adam_m/adam_v form (adamw_gb, adamw, lamb only)")
    try:
        step = int(meta.get("step", ""))
    except ValueError:
        raise ConvertError(path, f"bad step {meta.get('step')!r} in metadata")
    out, zero = {}, []
    bert_names = {r.hf for r in names.rows(L)}
    for slot, key in (("adam_m", "m."), ("adam_v", "v.")):
        for n, shape in model_names.items():
            hf = names.hf_canonical(n)
            tf, tr = names.hf_to_tf(hf)
            got = next((key + s for s in names.spellings(n) if key + s in t), None)   # bert.* / nezha.*
            if got is not None:
                a = np.asarray(t[got], dtype=np.float32)
            elif hf not in bert_names:   # a fine-tuning head bert.h's optimizer never saw
                a = np.zeros(shape, np.float32)
                zero.append(key + n)
            else:
                raise ConvertError(path, f"no moment '{key + n}'")
            if a.shape != tuple(shape):
                raise ConvertError(path, f"moment '{key + n}' has shape {list(a.shape)}, the weight {list(shape)}")
            out[f"{tf}/{slot}"] = np.ascontiguousarray(a.T) if tr else np.ascontiguousarray(a)
    if zero:
        note(f"{path}: no moments for {', '.join(zero[:2])}{' ...' if len(zero) > 2 else ''}; written as zeros")
    out[names.TF_STEP] = np.array(step, dtype=np.int64)
    return out


def main(argv):
    a = parse_args(argv)
    tensors, meta = safetensors_np.read(a.model)
    cfg = model_config(meta, a.model)
    L = cfg["num_hidden_layers"]
    rel = nezha(cfg, a.model)
    if rel and rel[1] == "mindspore":
        raise ConvertError(a.model, "a NEZHA model with learned relative-position tables (flavour \"mindspore\") has "
                                    "no TF form: Huawei's NEZHA-TensorFlow uses a fixed table (st2ms.py writes this model)")
    tf = tf_tensors(tensors, a.model, a.skip_unknown, L)
    if a.optim:
        kept = {n: tensors[n].shape for n in tensors
                if names.known_hf(names.hf_canonical(n), L) and names.hf_to_tf(names.hf_canonical(n))}
        tf.update(optim_tensors(a.optim, kept, L))
    d = os.path.dirname(a.out)
    if d:
        os.makedirs(d, exist_ok=True)
    tf_bundle.write_bundle(a.out, tf)
    if not a.no_config:
        text = json.dumps(tf_config(cfg, a.model), indent=2, sort_keys=True) + "\n"
        write_atomic(os.path.join(d or ".", "bert_config.json"), [text.encode("utf-8")])
    return 0


if __name__ == "__main__":
    cli(main)
