#!/usr/bin/env python3
"""HF / PyTorch BERT checkpoint -> bert.h safetensors.

    python3 convert/hf2st.py bert-base-uncased/pytorch_model.bin model.safetensors
    python3 convert/hf2st.py bert-base-uncased/model.safetensors model.safetensors

An HF `model.safetensors` with a config.json beside it loads in bert.h as it is
(bert_model_load(path, NULL) reads the config beside it; same names). This script is for
`pytorch_model.bin` (torch.save's zip format, and the legacy pre-1.6 stream), read with a
restricted unpickler that rebuilds tensors only and refuses every other pickle global, and for
writing any of them as a self-contained bert.h file (config in __metadata__, F16/BF16 as F32).

Names: BertModel keys get `bert.`, old LayerNorm `gamma`/`beta` become `weight`/`bias`, the MLM
bias stored as `cls.predictions.decoder.bias` is folded into `cls.predictions.bias`, the tied
`cls.predictions.decoder.weight` (checked equal to the word embeddings) and the `position_ids`
buffer are dropped; `classifier.*` and `qa_outputs.*` are carried. Config from --config or the
config.json / bert_config.json beside the input; hidden_act keeps HF's meaning ("gelu" = erf)."""
import argparse
import os

import numpy as np

import names
import safetensors_np
import torch_pickle
from common import ConvertError, bert_config, cli, json_loads, load_config_json, model_metadata, note
from tf2st import fill_heads, ordered


def parse_args(argv):
    p = argparse.ArgumentParser(prog="hf2st.py", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="pytorch_model.bin or model.safetensors")
    p.add_argument("out")
    p.add_argument("--config", help="config.json (default: config.json / bert_config.json beside the input)")
    p.add_argument("--skip-unknown", action="store_true", help="drop keys that map to no bert.h tensor")
    p.add_argument("--no-fill-heads", action="store_true", help="fail instead of initialising absent pretraining heads")
    return p.parse_args(argv)


def read_model(path):
    """-> (tensors, metadata): safetensors by extension; otherwise torch.save's zip ("PK") or
    legacy pickle (0x80)."""
    if not path.endswith(".safetensors"):
        with open(path, "rb") as f:
            head = f.read(2)
        if head == b"PK" or head[:1] == b"\x80":
            return torch_pickle.load(path), {}
    return safetensors_np.read(path)


def canonical(raw, path, L, skip_unknown):
    out, unknown = {}, []
    tied = None
    for k, a in raw.items():
        n = names.hf_canonical(k)
        if n == "cls.predictions.decoder.weight":
            tied = a
            continue
        if names.hf_dropped(n):
            continue
        if not names.known_hf(n, L):
            unknown.append(k)
            continue
        if a.dtype.kind != "f":
            raise ConvertError(path, f"'{k}' is {a.dtype}, expected a float tensor")
        a = np.asarray(a, dtype=np.float32, order="C")
        if n in out and not np.array_equal(out[n], a):
            raise ConvertError(path, f"'{k}' and another key both give {n}, with different values")
        out[n] = a
    if unknown and not skip_unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ConvertError(path, f"key '{unknown[0]}'{more} maps to no bert.h tensor (--skip-unknown drops it)")
    if unknown:
        note(f"{path}: dropped {len(unknown)} unmapped keys: {', '.join(unknown[:3])}")
    we = out.get("bert.embeddings.word_embeddings.weight")
    if tied is not None and we is not None and not np.array_equal(np.asarray(tied, np.float32), we):
        raise ConvertError(path, "cls.predictions.decoder.weight differs from the word embeddings; bert.h ties them")
    return out


def find_config(path, given, meta):
    """(config dict, where it came from): --config, a config.json beside the input, or the
    config in a bert.h safetensors file's own metadata."""
    if not given:
        d = os.path.dirname(path) or "."
        given = next((os.path.join(d, n) for n in ("config.json", "bert_config.json")
                      if os.path.exists(os.path.join(d, n))), None)
    if given:
        return load_config_json(given), given
    if "config" in meta:
        cfg = json_loads(meta["config"], path, "bad config in __metadata__")
        if isinstance(cfg, dict):
            return cfg, path
    raise ConvertError(path, "no config.json beside the checkpoint (give --config)")


def main(argv):
    a = parse_args(argv)
    raw, meta = read_model(a.model)
    src, cpath = find_config(a.model, a.config, meta)
    cfg = bert_config(src, cpath)
    tensors = canonical(raw, a.model, cfg["num_hidden_layers"], a.skip_unknown)
    want = names.shapes(cfg)
    for n, t in tensors.items():
        if n in want and t.shape != want[n]:
            raise ConvertError(a.model, f"{n} has shape {list(t.shape)}, {os.path.basename(cpath)} needs {list(want[n])}")
    fill_heads(tensors, [r.hf for r in names.rows(cfg["num_hidden_layers"], names.flavour(cfg)) if r.hf not in tensors], cfg, a.model,
               not a.no_fill_heads)
    safetensors_np.write(a.out, [(names.saved_name(n, cfg), t) for n, t in ordered(tensors, cfg)],
                         model_metadata(cfg, "hf/pytorch"))
    return 0


if __name__ == "__main__":
    cli(main)
