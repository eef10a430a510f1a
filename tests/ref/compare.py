"""compare.py A_DIR B_DIR [--optional NAME]... - check that two sets of fixture files hold the same tensors.

Used by `make ref-check`: the committed fixtures (every *.safetensors in A_DIR) against a fresh run of
bert_ref.py and pretrain_ref.py in B_DIR. A file named with --optional may be absent from B_DIR (a
reference skipped for want of its input data): it is reported as skipped, not failed. Names,
dtypes, shapes and metadata must be equal; values equal to 1e-6 relative (float64 BLAS on a
different CPU may round a last float32 bit differently). Prints one line per file and the totals.
"""
import json, os, struct, sys
import numpy as np

DT = {"F32": np.float32, "I32": np.int32, "F64": np.float64, "I64": np.int64}

def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    meta = head.pop("__metadata__", {})
    out = {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], DT[v["dtype"]]).reshape(v["shape"])
           for k, v in head.items()}
    return meta, out

def same(a_path, b_path):
    ma, ta = read(a_path)
    mb, tb = read(b_path)
    if ma != mb or list(ta) != list(tb):
        return "metadata or tensor names differ"
    for k in ta:
        x, y = ta[k], tb[k]
        if x.dtype != y.dtype or x.shape != y.shape:
            return "%s: dtype/shape differ" % k
        if not np.allclose(x.astype(np.float64), y.astype(np.float64), rtol=1e-6, atol=1e-12):
            return "%s: values differ" % k
    return None

def main():
    args, optional = sys.argv[1:], set()
    while "--optional" in args:
        i = args.index("--optional")
        optional.add(args[i + 1])
        del args[i:i + 2]
    a, b = args
    passed = failed = 0
    for name in sorted(os.listdir(a)):
        if not name.endswith(".safetensors"):
            continue
        if name in optional and not os.path.exists(os.path.join(b, name)):
            print("  skip %s: not regenerated (its input data is absent)" % name)
            continue
        why = same(os.path.join(a, name), os.path.join(b, name)) if os.path.exists(os.path.join(b, name)) else "missing"
        print("  %s %s%s" % ("ok  " if why is None else "FAIL", name, "" if why is None else ": " + why))
        passed, failed = passed + (why is None), failed + (why is not None)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
