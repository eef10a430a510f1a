#!/usr/bin/env python3
"""MindSpore model-zoo BERT checkpoint (.ckpt) -> bert.h safetensors.

    python3 convert/ms2st.py bert_base.ckpt model.safetensors --config bert_config.json
    python3 convert/ms2st.py pretrain-40_1000.ckpt model.safetensors --heads 12 --optim-out optim.safetensors

Names: pretraining (`bert.bert.*`, `bert.cls1.*`, `bert.cls2.*`) and fine-tuning checkpoints
(`bert.bert.*` backbone, `bert.dense_1.*` classifier of BertCLS/BertNER, `bert.dense1.*` of
BertSquad, the CRF's `loss.transitions`) go through convert/names.py; nn.Dense weights are already
(out, in), nothing is transposed. Float16/Float64 become float32. Sliced parameters (several entries
with one tag) are joined.

Training state: `lamb_m.*`/`lamb_v.*` (nn.Lamb), `adam_m.*`/`adam_v.*` (AdamWeightDecay), `moments.*`
(nn.Momentum) and the scalars (global_step, learning_rate, momentum, loss_scale, ...) are dropped,
or with --optim-out written as a bert.h training-state file (optimizer lamb, adamw_gb or momentum;
step from global_step when present).

NEZHA (the model zoo's bert_network "nezha", use_relative_positions): every BertAttention holds a
learned (2K+1, head size) table, `..._generate_relative_positions_embeddings.embeddings_table` (K = 16
in the model zoo's code); it becomes bert.h's
bert.encoder.layer.N.attention.self.relative_positions_embeddings.weight and the config gets
use_relative_position, max_relative_position = (rows - 1) / 2 and relative_position_flavour
"mindspore". The position table MindSpore still creates (and saves) is unused there: dropped, its
rows give max_position_embeddings (bert.h's bound on the sequence length). The head count is the
hidden size over the tables' width, so --heads is not needed. The tables themselves say NEZHA; a
config that says use_relative_positions for a checkpoint without them is an error.

Config: MindSpore keeps it in yaml, not beside the checkpoint. Sizes are read from the tensor shapes;
the head count cannot be, so give --heads (or --config with a bert_config.json). MindSpore's
nn.LayerNorm epsilon is 1e-7 (BERT passes none; TF uses 1e-12), so layer_norm_eps 1e-7 is written
unless the config says otherwise. nn.GELU() defaults to approximate=True (the tanh form), which the
model zoo's "gelu" activation builds, so hidden_act is "gelu_tanh" unless --act gelu."""
import argparse

import numpy as np

import ms_ckpt
import names
import safetensors_np
from common import (CONFIG_DEFAULTS, ConvertError, bert_config, cli, load_config_json, model_metadata, note,
                    says_relative, step_value)
from tf2st import fill_heads, ordered

MS_LAYERNORM_EPS = 1e-7
MS_GELU = "gelu_tanh"
OPTIMIZERS = {"lamb": "lamb", "adam": "adamw_gb", "moments": "momentum"}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ms2st.py", description=__doc__.split("\n\n")[0])
    p.add_argument("ckpt")
    p.add_argument("out")
    p.add_argument("--config", help="bert_config.json-style JSON (the yaml's bert_net_cfg values)")
    p.add_argument("--heads", type=int, help="num_attention_heads (when there is no --config)")
    p.add_argument("--act", choices=["gelu_tanh", "gelu"], help="hidden_act to record (default gelu_tanh)")
    p.add_argument("--eps", type=float, help=f"layer_norm_eps to record (default {MS_LAYERNORM_EPS})")
    p.add_argument("--optim-out", help="also write the optimizer moments as a bert.h training-state file")
    p.add_argument("--skip-unknown", action="store_true", help="drop parameters that map to no bert.h tensor")
    p.add_argument("--no-fill-heads", action="store_true", help="fail instead of initialising absent pretraining heads")
    return p.parse_args(argv)


def split(params, path, skip_unknown):
    """-> model {bert.h name: array}, slots {(family, 'm'|'v', bert.h name): array}, scalars {tag: array},
    tags {bert.h name: the parameter's tag} (for messages)."""
    model, slots, scalars, unknown, tags = {}, {}, {}, [], {}
    for tag, a in params:
        family, base = names.ms_split_slot(tag)
        if family is None and tag in names.MS_STATE_SCALARS:
            scalars[tag] = a
            continue
        hit = names.ms_to_hf(base)
        if hit is None:
            unknown.append(tag)
            continue
        hf = hit[0]
        if a.dtype.kind != "f":
            raise ConvertError(path, f"'{tag}' is {a.dtype}, expected a float tensor")
        a = np.asarray(a, dtype=np.float32, order="C")
        if family is None:
            if hf in model:
                raise ConvertError(path, f"'{tag}' and another parameter both map to {hf}")
            model[hf] = a
            tags[hf] = tag
        else:
            fam = family.split("_")[0]   # lamb_m -> lamb, adam_v -> adam, moments -> moments
            slots[(fam, "v" if family.endswith("_v") else "m", hf)] = a
    if unknown and not skip_unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ConvertError(path, f"parameter '{unknown[0]}'{more} maps to no bert.h tensor (--skip-unknown drops it)")
    if unknown:
        note(f"{path}: dropped {len(unknown)} unmapped parameters: {', '.join(unknown[:3])}")
    return model, slots, scalars, tags


def relative_tables(model, tags, path):
    """NEZHA: K and the tables' width from the learned relative-position tables, or None (BERT).
    Each is (2K+1, head size), the same shape in every layer."""
    tabs = sorted((n for n in model if n.endswith(names.RELATIVE)), key=lambda n: int(n.split(".")[3]))
    if not tabs:
        return None
    first = model[tabs[0]]
    for n in tabs:
        t = model[n]
        if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 1:
            raise ConvertError(path, f"'{tags[n]}' has shape {list(t.shape)}: a relative-position table is "
                                     f"(2K+1, head size)")
        if t.shape[0] % 2 == 0 or t.shape[0] < 3:
            raise ConvertError(path, f"'{tags[n]}' has {t.shape[0]} rows: a relative-position table has 2K+1 "
                                     f"(an odd number, at least 3)")
        if t.shape != first.shape:
            raise ConvertError(path, f"'{tags[n]}' has shape {list(t.shape)}, '{tags[tabs[0]]}' {list(first.shape)}: "
                                     f"every layer's relative-position table has the same shape")
    return (first.shape[0] - 1) // 2, first.shape[1]


def infer_config(model, path, a, rel):
    """bert_config.json keys from --config, else from the shapes (+ --heads; NEZHA: the tables' width
    gives the head size). rel: (K, head size) of NEZHA's learned tables, or None."""
    kw = dict(act=a.act or MS_GELU, eps=a.eps if a.eps is not None else MS_LAYERNORM_EPS,
              flavour="mindspore", relative=rel[0] if rel else None)
    if a.config:
        src = load_config_json(a.config)
        if not rel and says_relative(src, a.config):
            raise ConvertError(path, f"{a.config} says relative positions (NEZHA), but the checkpoint has no "
                                     f"relative-position tables (...attention._generate_relative_positions_embeddings."
                                     f"embeddings_table)")
        return bert_config(src, a.config, **kw)
    need = ["bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
            "bert.embeddings.token_type_embeddings.weight", "bert.encoder.layer.0.intermediate.dense.weight"]
    P, heads = None, a.heads
    if rel:   # the position table is unused by NEZHA: its size only bounds the sequence length
        pos = model.get(need[1])
        P = pos.shape[0] if pos is not None and pos.ndim == 2 else CONFIG_DEFAULTS["max_position_embeddings"]
        if pos is None:
            note(f"{path}: no position table; max_position_embeddings {P} (bert.h's longest sequence; --config sets it)")
        need.remove(need[1])
        C = model[need[0]].shape[1] if need[0] in model and model[need[0]].ndim == 2 else None
        if C is not None and (C % rel[1] or (heads and heads * rel[1] != C)):
            raise ConvertError(path, f"the relative-position tables are {rel[1]} wide, which is not the head size of "
                                     f"hidden size {C}{f' with --heads {heads}' if heads else ''}")
        if C is not None and not heads:
            heads = C // rel[1]
    for n in need:
        if n not in model:
            raise ConvertError(path, f"cannot infer the config: no {n} (give --config)")
        if model[n].ndim != 2:
            raise ConvertError(path, f"cannot infer the config: {n} has shape {list(model[n].shape)}, not 2-D")
    if not heads:
        raise ConvertError(path, "the number of attention heads is not stored in a checkpoint: give --heads N or --config")
    L = 1 + max(int(n.split(".")[3]) for n in model if n.startswith("bert.encoder.layer."))
    V, C = model[need[0]].shape
    src = {"vocab_size": V, "hidden_size": C, "num_hidden_layers": L, "num_attention_heads": heads,
           "intermediate_size": model[need[-1]].shape[0],
           "max_position_embeddings": P or model[need[1]].shape[0], "type_vocab_size": model[need[-2]].shape[0]}
    if C % heads:
        raise ConvertError(path, f"hidden size {C} is not a multiple of --heads {heads}")
    return bert_config(src, path, **kw)


def check_shapes(model, cfg, path, tags):
    want = names.shapes(cfg)
    for n, arr in model.items():
        if n in want and arr.shape != want[n]:
            raise ConvertError(path, f"'{tags.get(n, n)}' ({n}) has shape {list(arr.shape)}, the config needs "
                                     f"{list(want[n])}")


def write_optim(out, slots, scalars, tensors, cfg, path):
    fams = sorted({f for f, _, _ in slots})
    if not fams:
        raise ConvertError(path, "--optim-out: no lamb_m/lamb_v, adam_m/adam_v or moments.* in the checkpoint")
    if len(fams) > 1:
        raise ConvertError(path, f"--optim-out: moments of several optimizers ({', '.join(fams)})")
    fam = fams[0]
    kinds = ("m",) if fam == "moments" else ("m", "v")
    order = [n for n, _ in ordered(tensors, cfg)]
    items = []
    for k in kinds:
        for n in order:
            a = slots.get((fam, k, n))
            if a is None:
                if n not in names.HEAD_NAMES:
                    raise ConvertError(path, f"--optim-out: no {fam} slot for {n}")
                a = np.zeros_like(tensors[n])   # heads initialised here start with zero moments
            if a.shape != tensors[n].shape:
                raise ConvertError(path, f"--optim-out: {fam} slot of {n} has shape {list(a.shape)}")
            items.append((f"{k}.{names.saved_name(n, cfg)}", a))
    step = 0
    if "global_step" in scalars and scalars["global_step"].size:
        step = step_value(scalars["global_step"], path)
    else:
        note(f"{path}: no global_step; the training state starts at step 0")
    safetensors_np.write(out, items, {"format": "bert.h-optim", "optimizer": OPTIMIZERS[fam], "step": str(step),
                                      "converted_from": "mindspore ckpt"})


def main(argv):
    a = parse_args(argv)
    params = ms_ckpt.read(a.ckpt)
    model, slots, scalars, tags = split(params, a.ckpt, a.skip_unknown)
    rel = relative_tables(model, tags, a.ckpt)
    cfg = infer_config(model, a.ckpt, a, rel)
    if rel and names.POSITION in model:
        del model[names.POSITION]
        note(f"{a.ckpt}: NEZHA uses no absolute positions: dropped {tags[names.POSITION]}")
    check_shapes(model, cfg, a.ckpt, tags)
    fill_heads(model, [r.hf for r in names.rows(cfg["num_hidden_layers"], names.flavour(cfg)) if r.hf not in model],
               cfg, a.ckpt, not a.no_fill_heads)
    if a.optim_out:
        write_optim(a.optim_out, slots, scalars, model, cfg, a.ckpt)
    elif slots or scalars:
        note(f"{a.ckpt}: {len(slots) + len(scalars)} training-state entries not carried (--optim-out keeps the moments)")
    safetensors_np.write(a.out, [(names.saved_name(n, cfg), t) for n, t in ordered(model, cfg)],
                         model_metadata(cfg, "mindspore ckpt"))
    return 0


if __name__ == "__main__":
    cli(main)
