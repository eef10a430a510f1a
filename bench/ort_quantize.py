#!/usr/bin/python3
"""ort_quantize.py - the int8 ONNX Runtime model of bench/run.sh: rewrites the encoder's weight
MatMuls of bench/ort_export.py's fp32 model into ORT's contrib op com.microsoft.DynamicQuantizeMatMul.

  /usr/bin/python3 bench/ort_quantize.py IN.onnx OUT.onnx

Needs Debian's python3-onnx (apt-get install python3-onnx) and numpy; no onnxruntime Python package.
Every MatMul whose second input is a 2-D initializer W [K, N] (the 6 linears of each encoder layer:
Q, K, V, attention output, FFN up, FFN down: 72 for BERT-base) becomes
    DynamicQuantizeMatMul(A, W_int8, scale[N], <no zero point>, bias[N])
with symmetric int8 weights and one scale per output channel, scale[n] = max_k |W[k, n]| / 127,
W_int8 = round(W / scale) (in [-127, 127]); A is quantized to uint8 by ORT at run time, per call.
The Add of the linear's bias that follows the MatMul is folded into the op's bias input. Embeddings,
LayerNorms, the attention products (QK^T, PV: MatMuls of two activations), softmax, GELU and the
pooler (a Gemm) stay fp32. Prints the number of MatMuls rewritten and the sizes.
"""
import argparse
import collections
import os
import sys
import time

import numpy as np
import onnx
from onnx import helper, numpy_helper


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inp")
    ap.add_argument("out")
    a = ap.parse_args()
    t0 = time.time()
    m = onnx.load(a.inp)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    consumers = collections.defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)
    graph_outputs = {o.name for o in g.output}
    # torch.onnx.export stores identical initializers once (BERT's zero biases) and hands them out
    # through Identity nodes: follow those back to the initializer
    alias = {n.output[0]: n.input[0] for n in g.node if n.op_type == "Identity" and n.input[0] in inits}

    new_nodes, drop, new_inits, drop_inits = {}, set(), [], set()
    count = folded = 0
    for n in g.node:
        if n.op_type != "MatMul" or n.input[1] not in inits or len(inits[n.input[1]].dims) != 2:
            continue
        w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)     # [K, N]
        amax = np.abs(w).max(axis=0)
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)     # per output channel
        q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
        base = n.input[1]
        new_inits += [numpy_helper.from_array(q, base + "_int8"), numpy_helper.from_array(scale, base + "_scale")]
        if len(consumers[n.input[1]]) == 1:
            drop_inits.add(n.input[1])
        inputs = [n.input[0], base + "_int8", base + "_scale"]
        out = n.output[0]
        # fold the bias: the MatMul's only consumer is Add(bias[N], y) or Add(y, bias[N])
        cs = consumers[out]
        if len(cs) == 1 and cs[0].op_type == "Add" and out not in graph_outputs:
            add = cs[0]
            other = add.input[0] if add.input[1] == out else add.input[1]
            other = alias.get(other, other)
            if other in inits and list(inits[other].dims) == [w.shape[1]]:
                inputs += ["", other]
                out = add.output[0]
                drop.add(id(add))
                folded += 1
        new_nodes[id(n)] = helper.make_node("DynamicQuantizeMatMul", inputs, [out], name=(n.name or base) + "_quant",
                                            domain="com.microsoft")
        count += 1
    if count == 0:
        print("ort_quantize.py: no weight MatMul found in %s" % a.inp, file=sys.stderr)
        return 1

    nodes = [new_nodes.get(id(n), n) for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(nodes)
    keep = [i for i in g.initializer if i.name not in drop_inits]
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    if not any(o.domain == "com.microsoft" for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    tmp = a.out + ".tmp"
    onnx.save(m, tmp)
    os.replace(tmp, a.out)
    print("ort_quantize: %s: %d weight MatMuls -> com.microsoft.DynamicQuantizeMatMul (int8 weights, per-output-channel "
          "scales; %d biases folded), %.0f MB -> %.0f MB, %.1f s" % (
              a.out, count, folded, os.path.getsize(a.inp) / 1e6, os.path.getsize(a.out) / 1e6, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
