#!/usr/bin/python3
"""ort_export.py - exports torch_bert.py's BERT-base (--impl hf) to ONNX for the ONNX Runtime side
of bench/run.sh, plus a reference output that bench/ort_bench.js checks ORT against.

  /usr/bin/python3 bench/ort_export.py OUTDIR [--torch-bert PATH] [--config base] [--opset 14]

Run with Debian's interpreter (torch 1.13). The model is not copied here: torch_bert.py (default
$TORCH_BERT, else ../shared/bench/torch_bert.py next to the repository) is imported by path, and its
Bert(CONFIGS[config], "hf") is built exactly as its main() builds it (torch.manual_seed(0) first,
so the weights are those of the PyTorch runs), put in eval mode and exported with torch.onnx.export:
what the timed inference calls, model(ids, token_types, mask) -> (sequence output, pooled output),
i.e. embeddings + 12 encoder layers + pooler.

Writes into OUTDIR (the bench's work directory under bench/build/):
  bert_<config>_hf.onnx      inputs  input_ids, token_type_ids, attention_mask: int64 [batch, seq]
                             outputs last_hidden_state [batch, seq, H], pooler_output [batch, H]
                             opset 14, dynamic axes "batch" and "seq" on every input and output
  bert_<config>_hf.ref.json  fixed small inputs and torch's outputs for them (see make_cases)
Prints one line per file. Exit status non-zero on any failure.
"""
import argparse
import importlib.util
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TORCH_BERT = os.environ.get("TORCH_BERT") or os.path.join(HERE, "..", "..", "shared", "bench", "torch_bert.py")
INPUTS = ["input_ids", "token_type_ids", "attention_mask"]
OUTPUTS = ["last_hidden_state", "pooler_output"]


def load_torch_bert(path):
    spec = importlib.util.spec_from_file_location("torch_bert", path)
    if spec is None or spec.loader is None:
        raise SystemExit("ort_export.py: cannot import %s" % path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_cases(torch, vocab):
    """Two fixed inputs: B=2 T=16 with the second sequence's last 5 tokens padded (checks the
    dynamic axes and the mask), and B=1 T=128 laid out as the benchmark's inputs (types half 0 /
    half 1, mask all ones)."""
    g = torch.Generator().manual_seed(1234)
    cases = []
    for (B, T, pad) in ((2, 16, 5), (1, 128, 0)):
        ids = torch.randint(0, vocab, (B, T), generator=g)
        tt = torch.zeros(B, T, dtype=torch.long)
        tt[:, T // 2:] = 1
        mask = torch.ones(B, T, dtype=torch.long)
        if pad:
            mask[B - 1, T - pad:] = 0
        cases.append((ids, tt, mask))
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--torch-bert", default=DEFAULT_TORCH_BERT)
    ap.add_argument("--config", default="base")
    ap.add_argument("--opset", type=int, default=14)
    ap.add_argument("--seed", type=int, default=0, help="torch.manual_seed before building (torch_bert.py's)")
    a = ap.parse_args()

    a.torch_bert = os.path.realpath(a.torch_bert)
    tb = load_torch_bert(a.torch_bert)
    torch = tb.torch
    os.makedirs(a.outdir, exist_ok=True)
    name = "bert_%s_hf" % a.config
    onnx_path = os.path.join(a.outdir, name + ".onnx")
    ref_path = os.path.join(a.outdir, name + ".ref.json")

    t0 = time.time()
    torch.manual_seed(a.seed)
    model = tb.Bert(tb.CONFIGS[a.config], "hf")
    model.eval()

    cases = make_cases(torch, tb.VOCAB)
    refs = []
    with torch.no_grad():
        for ids, tt, mask in cases:
            hidden, pooled = model(ids, tt, mask)
            case = {"shape": list(ids.shape), "input_ids": ids.tolist(), "token_type_ids": tt.tolist(),
                    "attention_mask": mask.tolist(), "pooler_output": [[float(v) for v in row] for row in pooled]}
            if ids.shape[1] <= 16:   # the whole sequence output only for the small case (keeps the file small)
                case["last_hidden_state"] = [float(v) for v in hidden.reshape(-1)]
            refs.append(case)

    # export traces with a shape unlike both reference cases, so the dynamic axes are exercised
    ex = (torch.randint(0, tb.VOCAB, (3, 24)), torch.zeros(3, 24, dtype=torch.long), torch.ones(3, 24, dtype=torch.long))
    tmp = onnx_path + ".tmp"
    dyn = {n: {0: "batch", 1: "seq"} for n in INPUTS + OUTPUTS}
    dyn["pooler_output"] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(model, ex, tmp, input_names=INPUTS, output_names=OUTPUTS, dynamic_axes=dyn,
                          opset_version=a.opset, do_constant_folding=True)
    os.replace(tmp, onnx_path)

    meta = {"model": os.path.basename(onnx_path), "config": a.config, "impl": "hf", "seed": a.seed,
            "torch": torch.__version__, "opset": a.opset, "torch_bert": a.torch_bert,
            "inputs": INPUTS, "outputs": OUTPUTS, "cases": refs}
    with open(ref_path + ".tmp", "w") as f:
        json.dump(meta, f)
    os.replace(ref_path + ".tmp", ref_path)
    print("ort_export: %s (%.0f MB, opset %d, torch %s, %s from %s) in %.1f s" % (
        onnx_path, os.path.getsize(onnx_path) / 1e6, a.opset, torch.__version__, a.config, a.torch_bert, time.time() - t0))
    print("ort_export: %s (torch's outputs for %s)" % (ref_path, ", ".join("B=%d T=%d" % tuple(c["shape"]) for c in refs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
