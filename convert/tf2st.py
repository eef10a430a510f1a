#!/usr/bin/env python3
"""Google TF BERT checkpoint (tensor bundle) -> bert.h safetensors.

    python3 convert/tf2st.py uncased_L-12_H-768_A-12/bert_model.ckpt model.safetensors
    python3 convert/tf2st.py model.ckpt-20 model.safetensors --optim-out optim.safetensors
    python3 convert/tf2st.py PREFIX --check        # index only: mapping and shapes, no data needed

PREFIX is the checkpoint prefix (PREFIX.index and PREFIX.data-00000-of-00001; the .index path is
accepted too). The config comes from bert_config.json beside it, or --config.

What it does: every entry's dtype/shape/offset is validated from the index, every tensor's masked
CRC32C is verified against the data shard (optimizer slots too, even when they are dropped),
kernels are transposed from TF's [in, out] to bert.h's (out, in), names go through convert/names.py.
`X/adam_m`, `X/adam_v` and `global_step` are dropped, or with --optim-out written as a bert.h
training-state file (optimizer "adamw_gb": Google's AdamWeightDecayOptimizer, which these slots
come from) that bert_optim_load accepts.

NEZHA: Huawei's NEZHA-TensorFlow (huawei-noah/Pretrained-Language-Model) saves Google's variable
names without bert/embeddings/position_embeddings; its relative-position table is a fixed sinusoid,
not a variable. Its bert_config.json says "use_relative_position": true; K is "max_relative_position"
when the config has it (NEZHA-PyTorch's configs do), else 64, the value Huawei's attention_layer
hard-codes. The output's config gets use_relative_position, max_relative_position and
relative_position_flavour "huawei". A checkpoint without position_embeddings whose config does not
say relative is an error: NEZHA is never guessed from a missing tensor.

GELU: google-research/bert's modeling.py computes "gelu" with the tanh form
0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))); in bert.h (as in HF) "gelu" means the exact erf form.
So a TF config's "gelu" is written as "gelu_tanh": the converted model computes what TF computed.
--act gelu keeps erf instead (e.g. to match HF's conversion of the same checkpoint)."""
import argparse
import os

import numpy as np

import names
import safetensors_np
import tf_bundle
from common import (ConvertError, bert_config, cli, load_config_json, model_metadata, note, step_value,
                    truncated_normal)

TF_GELU = "gelu_tanh"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="tf2st.py", description=__doc__.split("\n\n")[0])
    p.add_argument("prefix", help="checkpoint prefix, e.g. DIR/bert_model.ckpt (or the .index path)")
    p.add_argument("out", nargs="?", help="output .safetensors (not needed with --check)")
    p.add_argument("--config", help="bert_config.json (default: the one beside the checkpoint)")
    p.add_argument("--optim-out", help="also write Adam moments + global_step as a bert.h training-state file")
    p.add_argument("--act", choices=["gelu_tanh", "gelu"], help="hidden_act to record (default gelu_tanh, see above)")
    p.add_argument("--skip-unknown", action="store_true", help="drop variables that map to no bert.h tensor")
    p.add_argument("--no-fill-heads", action="store_true",
                   help="fail instead of initialising absent pretraining heads (cls/*)")
    p.add_argument("--check", action="store_true", help="only check the index: names, shapes, shard presence")
    a = p.parse_args(argv)
    if not a.check and not a.out:
        p.error("the output path is required (or --check)")
    return a


def find_config(prefix, given):
    if given:
        return given
    d = os.path.dirname(prefix) or "."
    for n in ("bert_config.json", "config.json"):
        if os.path.exists(os.path.join(d, n)):
            return os.path.join(d, n)
    raise ConvertError(prefix + ".index", "no bert_config.json beside the checkpoint (give --config)")


def tf_config(path, act):
    src = load_config_json(path)
    if src.get("hidden_act", "gelu") not in ("gelu",) and act is None:
        if src.get("hidden_act") in ("gelu_new", "gelu_tanh"):
            act = "gelu_tanh"
        else:
            raise ConvertError(path, f"hidden_act {src.get('hidden_act')!r}: bert.h has only GELU (erf or tanh)")
    return bert_config(src, path, act=act or TF_GELU, flavour="huawei")


class Plan:
    """What each index entry becomes: model tensors, optimizer slots, step, dropped."""

    def __init__(self):
        self.model = {}     # bert.h name -> (entry, transpose)
        self.slots = {}     # ('m'|'v', bert.h name) -> (entry, transpose)
        self.step = None    # entry
        self.unknown = []
        self.unused = []    # NEZHA: a position table its model does not use


def plan(bundle, cfg, skip_unknown):
    path = tf_bundle.index_path(bundle.prefix)
    want = names.shapes(cfg)
    rel = names.flavour(cfg)
    p = Plan()
    for e in bundle.entries:
        if e.name == names.TF_STEP:
            p.step = e
            continue
        base, slot = names.tf_split_slot(e.name)
        hit = names.tf_to_hf(base)
        if hit is None:
            p.unknown.append(e.name)
            continue
        hf, tr = hit
        if rel and hf == names.POSITION:
            p.unused.append(e.name)
            continue
        _check_shape(path, e, hf, tr, want, cfg)
        if slot:
            p.slots[("m" if slot == "adam_m" else "v", hf)] = (e, tr)
        else:
            p.model[hf] = (e, tr)
    if p.unknown and not skip_unknown:
        more = f" (and {len(p.unknown) - 1} more)" if len(p.unknown) > 1 else ""
        raise ConvertError(path, f"variable '{p.unknown[0]}'{more} maps to no bert.h tensor (--skip-unknown drops it)")
    return p


def _check_shape(path, e, hf, tr, want, cfg):
    if e.dtype not in (1, 2, 14, 19):
        raise ConvertError(path, f"'{e.name}' has dtype {tf_bundle.DTYPES[e.dtype][0]}, expected a float type")
    got = tuple(reversed(e.shape)) if tr else e.shape
    if hf in want:
        ok = got == want[hf]
        exp = want[hf]
    else:   # fine-tuning heads: (N, hidden) / (N,)
        ok = len(got) in (1, 2) and (len(got) == 1 or got[1] == cfg["hidden_size"])
        exp = "(N, hidden_size) or (N,)"
    if not ok:
        raise ConvertError(path, f"'{e.name}' has shape {list(e.shape)}, bert.h's {hf} needs "
                                 f"{list(reversed(exp)) if tr and isinstance(exp, tuple) else exp}"
                                 f"{' (TF layout [in, out])' if tr else ''} for this config")


def missing_model(p, cfg):
    return [r.hf for r in names.rows(cfg["num_hidden_layers"], names.flavour(cfg)) if r.hf not in p.model]


def check_position(p, cfg, path):
    """A BERT bundle must have the absolute position table; without it, it may be NEZHA, but only
    its config can say so."""
    if not names.flavour(cfg) and names.POSITION not in p.model:
        raise ConvertError(path, "no variable bert/embeddings/position_embeddings: a BERT checkpoint has one; "
                                 "if this is NEZHA (relative positions), its bert_config.json must say "
                                 "\"use_relative_position\": true")


def fill_heads(tensors, missing, cfg, path, allow):
    """Absent pretraining heads (a fine-tuned checkpoint has none) get Google's init, so bert.h can
    load the file; anything else absent is an error."""
    backbone = [n for n in missing if n not in names.HEAD_NAMES]
    if names.POSITION in backbone:
        raise ConvertError(path, f"no tensor for bert.h's {names.POSITION} (absolute positions); a NEZHA checkpoint "
                                 f"has none, but then its config must say \"use_relative_position\": true")
    if backbone:
        raise ConvertError(path, f"no tensor for bert.h's {backbone[0]}" +
                           (f" (and {len(backbone) - 1} more)" if len(backbone) > 1 else ""))
    if not missing:
        return
    if not allow:
        raise ConvertError(path, f"no pretraining heads ({missing[0]}, ...); drop --no-fill-heads to initialise them")
    want, rng = names.shapes(cfg), np.random.default_rng(0)
    for n in missing:
        s = want[n]
        if n.endswith("LayerNorm.weight"):
            tensors[n] = np.ones(s, np.float32)
        elif len(s) == 2:
            tensors[n] = truncated_normal(s, cfg["initializer_range"], rng)
        else:
            tensors[n] = np.zeros(s, np.float32)
    note(f"{path}: {len(missing)} pretraining-head tensors absent, initialised as Google does "
         f"(MLM/NSP outputs are meaningless until trained)")


def ordered(tensors, cfg):
    """bert.h's order, then the carried fine-tuning heads by name (names.saved_name gives the names to write:
    "nezha.*" for NEZHA, as bert.h saves it and as its training state must name it)."""
    order = [r.hf for r in names.rows(cfg["num_hidden_layers"], names.flavour(cfg))]
    rest = sorted(n for n in tensors if n not in set(order))
    return [(n, tensors[n]) for n in order + rest if n in tensors]


def to_bert(a, tr):
    a = np.asarray(a, dtype=np.float32)
    return np.ascontiguousarray(a.T) if tr else np.ascontiguousarray(a)


def check_only(bundle, p, cfg):
    path = tf_bundle.index_path(bundle.prefix)
    n_model = len(p.model)
    miss = missing_model(p, cfg)
    print(f"{path}: {len(bundle.entries)} entries; {n_model} map to bert.h tensors with the right shapes, "
          f"{len(p.slots)} optimizer slots, {'a' if p.step else 'no'} global_step, {len(p.unknown)} unmapped")
    if names.flavour(cfg):
        print(f"  NEZHA: relative positions (max_relative_position {cfg['max_relative_position']}, fixed sinusoid "
              f"table), no absolute position table{'; ignored: ' + ', '.join(p.unused) if p.unused else ''}")
    if miss:
        print(f"  absent: {', '.join(miss[:4])}{' ...' if len(miss) > 4 else ''}")
    shards = [bundle.shard_path(i) for i in range(bundle.num_shards)]
    absent = [s for s in shards if not os.path.exists(s)]
    for s in absent:
        print(f"  data shard absent: {s}")
    total = max((e.offset + e.size for e in bundle.entries), default=0)
    print(f"  data shard bytes referenced: {total}")
    return 0


def main(argv):
    a = parse_args(argv)
    prefix = tf_bundle.strip_prefix(a.prefix)
    bundle = tf_bundle.read_index(prefix)
    cfg = tf_config(find_config(prefix, a.config), a.act)
    p = plan(bundle, cfg, a.skip_unknown)
    if a.check:
        return check_only(bundle, p, cfg)
    path = tf_bundle.index_path(prefix)
    dest = {}   # entry name -> (dict to fill, key, transpose)
    for hf, (e, tr) in p.model.items():
        dest[e.name] = ("model", hf, tr)
    for key, (e, tr) in p.slots.items():
        dest[e.name] = ("slot", key, tr)
    shards, tensors, moments, step = {}, {}, {}, None
    try:
        tf_bundle.open_shards(bundle, shards)   # every entry inside its shard, none overlapping, before any read
        for e in bundle.entries:   # key order = shard order: one sequential pass, every CRC checked
            arr = tf_bundle.read_tensor(bundle, e, shards)
            if e is p.step:
                step = arr
            elif e.name in dest:
                kind, key, tr = dest[e.name]
                (tensors if kind == "model" else moments)[key] = to_bert(arr, tr)
    finally:
        for f in shards.values():
            f.close()
    check_position(p, cfg, path)   # after the data: every entry and CRC is checked first
    missing = missing_model(p, cfg)
    fill_heads(tensors, missing, cfg, path, not a.no_fill_heads)
    dropped = len(p.slots) + (1 if p.step else 0)
    if a.optim_out:
        write_optim(a.optim_out, moments, step, tensors, cfg, path)
    elif dropped:
        note(f"{path}: {dropped} optimizer entries (adam_m/adam_v/global_step) not carried (--optim-out keeps them)")
    if p.unused:
        note(f"{path}: NEZHA uses no absolute positions: dropped {', '.join(p.unused[:3])}"
             f"{' ...' if len(p.unused) > 3 else ''}")
    if p.unknown:
        note(f"{path}: dropped {len(p.unknown)} unmapped variables: {', '.join(p.unknown[:3])}"
             f"{' ...' if len(p.unknown) > 3 else ''}")
    safetensors_np.write(a.out, [(names.saved_name(n, cfg), t) for n, t in ordered(tensors, cfg)],
                         model_metadata(cfg, "tf tensor bundle"))
    return 0


def write_optim(out, moments, step, tensors, cfg, path):
    """bert_optim_save's layout: "m.<name>" for every tensor, then "v.<name>"; metadata format
    bert.h-optim, optimizer adamw_gb, step. Heads absent from the checkpoint get zero moments."""
    order = [n for n, _ in ordered(tensors, cfg)]
    absent = [n for n in order if ("m", n) not in moments or ("v", n) not in moments]
    if len(absent) == len(order):
        raise ConvertError(path, "--optim-out: the checkpoint has no adam_m/adam_v slots (a released model has none)")
    for n in absent:
        if n not in names.HEAD_NAMES:
            raise ConvertError(path, f"--optim-out: no adam_m/adam_v slot for {n}")
        moments[("m", n)] = moments[("v", n)] = np.zeros_like(tensors[n])
    if step is None:
        note(f"{path}: no global_step; the training state starts at step 0")
        step_val = 0
    else:
        step_val = step_value(step, path)
    items = [(f"{k}.{names.saved_name(n, cfg)}", moments[(k, n)]) for k in ("m", "v") for n in order]
    safetensors_np.write(out, items, {"format": "bert.h-optim", "optimizer": "adamw_gb", "step": str(step_val),
                                      "converted_from": "tf tensor bundle"})


if __name__ == "__main__":
    cli(main)
