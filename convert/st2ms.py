#!/usr/bin/env python3
"""bert.h safetensors -> MindSpore model-zoo BERT checkpoint (.ckpt), for MindSpore/Ascend users of a
model trained with bert.h.

    python3 convert/st2ms.py model.safetensors bert.ckpt
    python3 convert/st2ms.py model.safetensors pretrain.ckpt --optim optim.safetensors

Names: the model zoo's BertPreTraining layout through convert/names.py (`bert.bert.*` backbone,
`bert.cls1.*` / `bert.cls2.*` pretraining heads; fine-tuning heads as BertCLS/BertNER `bert.dense_1.*`,
BertSquad `bert.dense1.*`, the CRF's `loss.transitions`). nn.Dense stores (out, in) as bert.h does:
nothing is transposed. Tensors are Float32, one Value per parameter in bert.h's order, so
ms2st.py reads the file back to the same tensors and st2ms.py writes the same bytes again.

With --optim (a bert_optim_save file of lamb, adamw_gb/adamw or momentum) the moments become
`lamb_m.*`/`lamb_v.*`, `adam_m.*`/`adam_v.*` or `moments.*` and the step `global_step` (int32), as the
model zoo's optimizers name them.

NEZHA (a config with "use_relative_position"; the tensors may be named "nezha.*", as bert.h saves
them): the model zoo's nezha network (use_relative_positions) holds one learned (2K+1, head size)
table per BertAttention, `bert.bert.bert_encoder.layers.N.attention.attention.
_generate_relative_positions_embeddings.embeddings_table`; a "mindspore"-flavour model's tables are
written there. A "huawei"-flavour model (the fixed sinusoid table of Huawei's NEZHA / transformers)
gets that table, computed as bert.h does (float64, rounded to float32), in every layer: the same
model in MindSpore's form. MindSpore's EmbeddingPostprocessor creates its position table even when
it is unused, so one of zeros, max_position_embeddings rows, is written for a complete load (ms2st.py
drops it again). The model zoo's BertAttention hard-codes K = 16: a note says when K differs.

Config: MindSpore keeps it in its yaml (bert_net_cfg), not in the checkpoint; the values to put
there are printed. Its nn.LayerNorm has epsilon 1e-7 unless told otherwise and its "gelu" is the tanh
form: a note says when the model was trained with other values (layer_norm_eps, hidden_act)."""
import argparse
import json

import numpy as np

import ms_ckpt
import names
import safetensors_np
from common import ConvertError, cli, note
from st2tf import model_config, nezha

MS_LAYERNORM_EPS = 1e-7
SLOT_PREFIX = {"lamb": ("lamb_m.", "lamb_v."), "adamw_gb": ("adam_m.", "adam_v."), "adamw": ("adam_m.", "adam_v."),
               "momentum": ("moments.",)}
FINETUNE_MS = {hf: ms for hf, _, ms, _ in names.FINETUNE}
MS_NEZHA_K = 16   # max_relative_position in the model zoo's BertAttention


def sinusoid_table(K, d):
    """NEZHA's fixed (2K+1, d) table: R[p][2i] = sin(p / 10000^(2i/d)), R[p][2i+1] = cos(same), p = 0..2K,
    in float64 rounded to float32 (Huawei's numpy table, bert_relative_table)."""
    p = np.arange(2 * K + 1, dtype=np.float64)[:, None]
    ang = p / np.power(10000.0, 2.0 * np.arange(d // 2, dtype=np.float64) / d)[None, :]
    R = np.zeros((2 * K + 1, d))
    R[:, 0::2], R[:, 1::2] = np.sin(ang), np.cos(ang)
    return R.astype(np.float32)


def nezha_tensors(tensors, cfg, rel, path):
    """A NEZHA model's tensors as MindSpore's nezha network holds them: an unused position table of
    zeros, and (fixed flavour) the sinusoid table as every layer's learned table."""
    K, flavour = rel
    C, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    out = {}
    for n, arr in tensors.items():
        hf = names.hf_canonical(n)
        if hf == "bert.embeddings.word_embeddings.weight":
            out[n] = arr
            out[names.POSITION] = np.zeros((cfg["max_position_embeddings"], C), np.float32)
            continue
        if flavour == "huawei" and hf.endswith(names.RELATIVE):
            raise ConvertError(path, f"'{n}': a learned relative-position table in a model whose config says the "
                                     f"fixed (\"huawei\") flavour")
        out[n] = arr
        if flavour == "huawei" and hf.startswith("bert.encoder.layer.") and hf.endswith(".attention.self.value.bias"):
            out[hf[:-len("attention.self.value.bias")] + names.RELATIVE] = sinusoid_table(K, C // cfg["num_attention_heads"])
    note(f"{path}: NEZHA: a zero position table ({cfg['max_position_embeddings']} x {C}, unused by MindSpore's nezha "
         f"network) written for a complete load" +
         (f"; the fixed sinusoid table written as each of the {L} layers' learned table" if flavour == "huawei" else ""))
    if K != MS_NEZHA_K:
        note(f"{path}: max_relative_position is {K}; the model zoo's BertAttention hard-codes {MS_NEZHA_K} "
             f"(RelaPosEmbeddingsGenerator(max_relative_position=...)): set it to {K} there")
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(prog="st2ms.py", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="bert.h / HF-named .safetensors with the config in __metadata__")
    p.add_argument("out", help="output .ckpt")
    p.add_argument("--optim", help="bert.h training-state file to carry as the optimizer's slots and global_step")
    p.add_argument("--skip-unknown", action="store_true", help="drop tensors with no MindSpore name")
    return p.parse_args(argv)


def ms_name(hf):
    """The model zoo's parameter name for a bert.h tensor, or None."""
    hf = names.hf_canonical(hf)
    for h, _, ms, _ in names.EMBEDDINGS:
        if hf == "bert." + h:
            return "bert.bert." + ms
    for h, _, ms, _ in names.POOLER + names.HEADS:
        if hf == h:
            return ("bert." if hf.startswith("cls.") else "bert.bert.") + ms
    if hf.startswith("bert.encoder.layer."):
        parts = hf.split(".", 4)
        if len(parts) == 5 and parts[3].isdigit():
            for h, _, ms, _ in names.LAYER:
                if parts[4] == h:
                    return f"bert.bert.bert_encoder.layers.{int(parts[3])}.{ms}"
        return None
    if hf == "crf.transitions":
        return "loss.transitions"
    if hf in FINETUNE_MS:
        return "bert." + FINETUNE_MS[hf]
    return None


def main(argv):
    a = parse_args(argv)
    tensors, meta = safetensors_np.read(a.model)
    cfg = model_config(meta, a.model)
    rel = nezha(cfg, a.model)
    model_tensors = tensors
    if rel:
        tensors = nezha_tensors(tensors, cfg, rel, a.model)
    params, unknown, seen = [], [], {}
    for hf, arr in tensors.items():
        ms = ms_name(hf)
        if ms is None:
            unknown.append(hf)
            continue
        if ms in seen:
            raise ConvertError(a.model, f"tensors '{seen[ms]}' and '{hf}' are both MindSpore's {ms}")
        seen[ms] = hf
        params.append((ms, np.asarray(arr, dtype=np.float32)))
    if unknown and not a.skip_unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ConvertError(a.model, f"tensor '{unknown[0]}'{more} has no MindSpore name (--skip-unknown drops it)")
    if a.optim:
        o, ometa = safetensors_np.read(a.optim)
        kind = ometa.get("optimizer")
        if ometa.get("format") != "bert.h-optim" or kind not in SLOT_PREFIX:
            raise ConvertError(a.optim, f"not a bert.h training-state file of lamb, adamw_gb, adamw or momentum ({kind})")
        for prefix, k in zip(SLOT_PREFIX[kind], ("m", "v")):
            for hf, arr in tensors.items():
                ms = ms_name(hf)
                if ms is None:
                    continue
                if hf not in model_tensors:   # NEZHA: a table written here, not a parameter of the model
                    params.append((prefix + ms, np.zeros_like(arr)))
                    continue
                slot = next((o[f"{k}.{s}"] for s in names.spellings(hf) if f"{k}.{s}" in o), None)   # bert.* / nezha.*
                if slot is None or slot.shape != arr.shape:
                    raise ConvertError(a.optim, f"no {k} moment of {hf} with its shape {list(arr.shape)}")
                params.append((prefix + ms, np.asarray(slot, dtype=np.float32)))
        try:
            step = int(ometa.get("step", "0"))
        except ValueError:
            raise ConvertError(a.optim, f"step '{ometa.get('step')}' is not a whole number")
        params.append(("global_step", np.array([step], dtype=np.int32)))
    ms_ckpt.write(a.out, params)
    eps, act = cfg.get("layer_norm_eps", 1e-12), cfg.get("hidden_act", "gelu")
    if eps != MS_LAYERNORM_EPS:
        note(f"{a.model}: trained with layer_norm_eps {eps:g}; MindSpore's nn.LayerNorm defaults to 1e-7: "
             f"pass epsilon={eps:g} to the model's LayerNorms for the same outputs")
    if act not in ("gelu_tanh", "gelu_new", "gelu_fast", "gelu_pytorch_tanh"):
        note(f"{a.model}: this model uses the erf GELU; the model zoo's \"gelu\" is nn.GELU(approximate=True), the tanh form")
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "max_position_embeddings", "type_vocab_size", "hidden_dropout_prob", "attention_probs_dropout_prob",
            "initializer_range")
    net_cfg = {k: cfg[k] for k in keys if k in cfg}
    if rel:
        net_cfg["use_relative_positions"] = True
    note(f"{a.out}: {len(params)} parameters; bert_net_cfg for the yaml: " + json.dumps(net_cfg))
    return 0


if __name__ == "__main__":
    cli(main)
