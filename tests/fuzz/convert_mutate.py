#!/usr/bin/env python3
"""convert_mutate.py - a bounded mutation fuzzer for the Python converters in convert/.

    /usr/bin/python3 tests/fuzz/convert_mutate.py [--iterations N] [--seed S] [--out DIR]

For each input kind (TF .index, TF data shard, MindSpore .ckpt, safetensors, pytorch .bin zip,
the pickle inside that zip, legacy torch.save files) it runs N mutations of real or test-built
inputs in this process through common.run, the wrapper the command lines use. An outcome is OK
when the converter succeeds (exit 0) or fails with exit 1 and one line "convert: FILE: problem"
("convert: note: ..." remarks aside). Anything else is a finding: an internal error (a failure
nobody foresaw), out of memory (a size from the file trusted before it was checked against the
file), a hang past --timeout, a traceback, another exit status. A finding's input is saved as
DIR/KIND_NNN.bin, with KIND_NNN.txt giving the argv and the message.

Fixtures come from tests/test_convert.py (imported, not copied), real files from ../shared/data;
kinds whose inputs are absent are skipped. Ends with "N passed, N failed" (a kind passes with no
finding); exit status 1 on any finding. Without numpy, or without ../shared/data at all, it prints
"skipped: ..." and "0 passed, 0 failed" and exits 0."""
import argparse
import io
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(ROOT, "..", "shared", "data")


def _skip_reason():
    try:
        __import__("numpy")
    except ImportError:
        return f"numpy not importable by {sys.executable} (Debian: /usr/bin/python3 + apt-get install python3-numpy): " \
               "convert/ not fuzzed"
    if not os.path.isdir(SHARED):
        return "../shared/data absent (the real checkpoints among its seeds): convert/ not fuzzed"
    return None


if __name__ == "__main__" and _skip_reason():   # before numpy and test_convert are imported
    print(f"skipped: {_skip_reason()}")
    print("0 passed, 0 failed")
    sys.exit(0)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests"))
if os.path.isdir("/dev/shm") and "TMPDIR" not in os.environ:
    tempfile.tempdir = "/dev/shm"   # test_convert's temp dir: every successful case writes and fsyncs its output
import test_convert as tc  # noqa: E402  fixtures, convert() with its alarm, the temp dir; puts convert/ on sys.path

import hf2st  # noqa: E402
import ms2st  # noqa: E402
import ms_ckpt  # noqa: E402
import safetensors_np  # noqa: E402
import st2tf  # noqa: E402
import tf2st  # noqa: E402
import tf_bundle  # noqa: E402
import wire  # noqa: E402

MEMORY_CAP = 3 << 30   # a huge allocation becomes a MemoryError (a finding), not a dead machine
SAVE_CAP = 50          # findings saved per kind (all are counted)

# ---------------------------------------------------------------------------------------------
# mutators: (bytearray, random.Random, Kind) -> bytearray

BOUNDARY = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
            1 << 32, 1 << 40, 1 << 53, 1 << 62, (1 << 63) - 1, 1 << 63, (1 << 64) - 1]


def _span(r, limit):
    """A length in [1, limit], mostly short: most fields of these formats are a few bytes."""
    return 0 if limit <= 0 else min(limit, r.choice((1, 2, 4, 8, r.randint(1, 64), r.randint(1, limit))))


def _range(d, r):
    a = r.randrange(len(d) + 1)
    return a, a + _span(r, len(d) - a)


def _put(d, r, piece):
    """Overwrites at a random place, or (one time in three) inserts there."""
    p = r.randrange(len(d) + 1)
    d[p:p + (0 if r.random() < 1 / 3 else len(piece))] = piece
    return d


def m_truncate(d, r, k):
    return d[:r.randrange(len(d) + 1)]


def m_flip(d, r, k):
    for _ in range(r.randint(1, 8) if d else 0):
        d[r.randrange(len(d))] ^= r.randint(1, 255)
    return d


def m_delete(d, r, k):
    a, b = _range(d, r)
    return d[:a] + d[b:]


def m_duplicate(d, r, k):
    a, b = _range(d, r)
    p = r.randrange(len(d) + 1)
    return d[:p] + d[a:b] + d[p:]


def m_insert(d, r, k):
    p = r.randrange(len(d) + 1)
    return d[:p] + bytearray(r.getrandbits(8) for _ in range(r.randint(1, 16))) + d[p:]


def m_field(d, r, k):
    """A 1/2/4/8-byte little-endian field set to a boundary value or to about the file size."""
    w = r.choice((1, 2, 4, 8))
    v = r.choice(BOUNDARY + [len(d) - 1, len(d), len(d) + 1, r.getrandbits(64)]) & ((1 << 8 * w) - 1)
    return _put(d, r, v.to_bytes(w, "little"))


def m_varint(d, r, k):
    """A varint-encoded size (protobuf and LevelDB lengths, dims and offsets are varints)."""
    return _put(d, r, wire.varint(r.choice(BOUNDARY + [len(d), len(d) + 1, r.getrandbits(r.randint(1, 64))])))


def m_splice(d, r, k):
    """A range of this input replaced by a range of another input of the same kind."""
    donor = r.choice(k.donors)
    a, b = _range(donor, r)
    p, q = _range(d, r)
    return d[:p] + donor[a:b] + d[q:]


def m_token(d, r, k):
    """A token of the format: pickle opcodes, protobuf keys, JSON pieces, zip signatures."""
    return _put(d, r, r.choice(k.tokens)) if k.tokens else m_flip(d, r, k)


MUTATORS = [m_truncate, m_flip, m_flip, m_delete, m_duplicate, m_insert, m_field, m_field, m_varint, m_splice,
            m_token, m_token]


def mutate(data, r, k):
    d = bytearray(data)
    for _ in range(r.choice((1, 1, 1, 2, 3))):   # mostly one mutation, sometimes stacked
        d = r.choice(MUTATORS)(d, r, k)
    return bytes(d)


PICKLE_TOKENS = [bytes([c]) for c in b"()0.2NRQabdehlpqstu}]\x85\x86\x87\x88\x89\x81\x93\x94\x95"] + [
    b"h\x00", b"q\x00", b"j\xff\xff\xff\x7f", b"J\xff\xff\xff\x7f", b"K\x00", b"X\xff\xff\xff\x7f",
    b"ctorch\nFloatStorage\n", b"ccollections\nOrderedDict\n", b"ctorch._utils\n_rebuild_tensor_v2\n",
    b"ctorch._utils\n_rebuild_parameter\n", b"X\x07\x00\x00\x00storage", b"}b", b"N}\x86b", b"(" * 64]
PROTO_TOKENS = [bytes([c]) for c in b"\x08\x0a\x10\x12\x18\x1a\x20\x22\x28\x2a\x35\x3a"] + [
    b"\x0a\x00", b"\x12\x00", b"Float32", b"Float16", b"Float64", b"BFloat16", b"Int64", b"Bool", b"\xff" * 10,
    b"\x80" * 11]
JSON_TOKENS = [b"{", b"}", b"[", b"]", b",", b":", b'"', b"null", b"true", b"-1", b"1e999", b"0.5", b"[]", b"{}",
               b"18446744073709551616", b"9007199254740993", b'"F32"', b'"BF16"', b'"F64"', b'"I64"', b'"BOOL"',
               b'"shape":[', b'"data_offsets":[0,', b'"dtype":', b'"__metadata__":', b'\\"num_hidden_layers\\": ',
               b'\\"hidden_size\\": ', b'\\"vocab_size\\": ', b"\\u0000", b"\\ud800", b"[" * 3000]
ZIP_TOKENS = [b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07", b"archive/data.pkl",
              b"\x08\x00", b"\x0c\x00", b"\xff\xff\xff\xff"]

# argv templates, one picked per case: {d} is the case directory. The variants reach different
# code (optimizer state, unknown names kept out, --check's index-only path).
TF_ARGV = [["{d}/bert_model.ckpt", "{d}/out.safetensors"],
           ["{d}/bert_model.ckpt", "{d}/out.safetensors", "--optim-out", "{d}/optim.safetensors"],
           ["{d}/bert_model.ckpt", "{d}/out.safetensors", "--skip-unknown", "--act", "gelu"],
           ["{d}/bert_model.ckpt", "--check"]]
MS_ARGV = [["{d}/in.ckpt", "{d}/out.safetensors", "--heads", "4"],
           ["{d}/in.ckpt", "{d}/out.safetensors", "--heads", "4", "--optim-out", "{d}/optim.safetensors"],
           ["{d}/in.ckpt", "{d}/out.safetensors", "--heads", "2", "--skip-unknown"]]
ST_ARGV = [["{d}/in.safetensors", "{d}/out/bert_model.ckpt"],
           ["{d}/in.safetensors", "{d}/out/bert_model.ckpt", "--skip-unknown", "--no-config"]]
PT_ARGV = [["{d}/in.bin", "{d}/out.safetensors"], ["{d}/in.bin", "{d}/out.safetensors", "--skip-unknown"],
           ["{d}/in.bin", "{d}/out.safetensors", "--no-fill-heads"]]

# ---------------------------------------------------------------------------------------------
# input kinds


class Kind:
    """seeds[i] is mutated (or make(r, i) builds the case) and written as dirs[i]/target, where the
    converter finds what it needs beside it (config, the intact half of a TF checkpoint)."""

    def __init__(self, name, mod, seeds, dirs, target, argvs, donors=(), tokens=(), make=None):
        self.name, self.mod, self.seeds, self.dirs, self.target, self.argvs = name, mod, seeds, dirs, target, argvs
        self.donors, self.tokens, self.make_fn = list(seeds) + list(donors), tokens, make

    def case(self, r):
        """-> (input bytes, argv), the input already written where argv points."""
        i = r.randrange(len(self.seeds))
        data = self.make_fn(r, i) if self.make_fn else mutate(self.seeds[i], r, self)
        with open(os.path.join(self.dirs[i], self.target), "wb") as f:
            f.write(data)
        return data, [a.format(d=self.dirs[i]) for a in r.choice(self.argvs)]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def case_dir(name, files):
    """A directory under the test temp dir holding {file name: bytes}."""
    d = tc.tmp(name)
    os.makedirs(d, exist_ok=True)
    for n, b in files.items():
        with open(os.path.join(d, n), "wb") as f:
            f.write(b)
    return d


def build_kinds(skipped):
    w, meta = tc.tiny_weights()
    kinds = []

    # TF: the reference model with Adam slots written by st2tf (as test_corrupt does), and the real
    # keras-bert checkpoint. Raw .index mutations mostly stop at the block checksums, so tf_entries
    # mutates one BundleEntryProto (or key) and rebuilds the table with valid checksums instead.
    optim = tc.tmp("tf_src_optim.safetensors")
    safetensors_np.write(optim, [(f"{k}.{n}", np.full_like(a, 0.5)) for k in "mv" for n, a in w.items()],
                         {"format": "bert.h-optim", "optimizer": "adamw_gb", "step": "7"})
    os.makedirs(tc.tmp("tf_src"), exist_ok=True)
    rc, err = tc.convert(st2tf, os.path.join(tc.REF, "tiny.safetensors"), tc.tmp("tf_src/bert_model.ckpt"), "--optim", optim)
    assert rc == 0, err
    prefixes = [tc.tmp("tf_src/bert_model.ckpt")]
    if os.path.exists(tc.KERAS + ".index"):
        prefixes.append(tc.KERAS)
    else:
        skipped.append(("keras_bert_tiny seed of the TF kinds", tc.KERAS + ".index"))
    files = [{"bert_config.json": read(os.path.join(os.path.dirname(p), "bert_config.json")),
              "bert_model.ckpt.index": read(p + ".index"),
              "bert_model.ckpt.data-00000-of-00001": read(p + ".data-00000-of-00001")} for p in prefixes]
    idx = [f["bert_model.ckpt.index"] for f in files]
    dat = [f["bert_model.ckpt.data-00000-of-00001"] for f in files]
    other_idx = [read(os.path.join(tc.TF_DIR, d, "bert_model.ckpt.index"))
                 for d in (sorted(os.listdir(tc.TF_DIR)) if os.path.isdir(tc.TF_DIR) else [])
                 if os.path.exists(os.path.join(tc.TF_DIR, d, "bert_model.ckpt.index"))]
    items = []
    for p in prefixes:
        b = tf_bundle.read_index(p)
        items.append([(b"", tf_bundle.encode_header(b.num_shards, b.version))] +
                     [(e.name.encode(), tf_bundle.encode_entry(e)) for e in b.entries])

    def make_entries(r, i):
        kv = list(items[i])
        j = r.randrange(len(kv))
        key, val = kv[j]
        kv[j] = (mutate(key, r, entries), val) if r.random() < 0.2 else (key, mutate(val, r, entries))
        kv.sort(key=lambda x: x[0])   # kept sorted, so the reader gets past its key-order check
        return tf_bundle.build_table(kv)

    dirs = {n: [case_dir(f"{n}_{i}", f) for i, f in enumerate(files)] for n in ("tf_index", "tf_data", "tf_entries")}
    entries = Kind("tf_entries", tf2st, idx, dirs["tf_entries"], "bert_model.ckpt.index", TF_ARGV,
                   tokens=PROTO_TOKENS, make=make_entries)
    kinds += [Kind("tf_index", tf2st, idx, dirs["tf_index"], "bert_model.ckpt.index", TF_ARGV, other_idx, PROTO_TOKENS),
              Kind("tf_data", tf2st, dat, dirs["tf_data"], "bert_model.ckpt.data-00000-of-00001", TF_ARGV,
                   tokens=[b"\0" * 4, b"\xff" * 4]),
              entries]

    # MindSpore: a BERT .ckpt in the model zoo's layout (sliced, F16/F64, LAMB slots; test_ms_bert's)
    # and the real LeNet one (not BERT: refused once parsed, so the parser is what it tests)
    ms_ckpt.write(tc.tmp("ms_src.ckpt"), tc.ms_bert_params(w, np.random.default_rng(5)), slice_bytes=4096)
    bert = read(tc.tmp("ms_src.ckpt"))
    lenet = [read(tc.LENET)] if os.path.exists(tc.LENET) else []
    kinds.append(Kind("ms_bert", ms2st, [bert], [case_dir("ms_bert", {})], "in.ckpt", MS_ARGV, lenet, PROTO_TOKENS))
    if lenet:
        kinds.append(Kind("ms_lenet", ms2st, lenet, [case_dir("ms_lenet", {})], "in.ckpt", MS_ARGV, [bert], PROTO_TOKENS))
    else:
        skipped.append(("ms_lenet", tc.LENET))

    # safetensors through st2tf: its JSON header has no checksum, every mutation reaches the parser
    donors = [read(os.path.join(tc.REF, f)) for f in ("tiny_erf_d0.safetensors", "classify_ref.safetensors")]
    kinds.append(Kind("safetensors", st2tf, [read(os.path.join(tc.REF, "tiny.safetensors"))], [case_dir("st", {})],
                      "in.safetensors", ST_ARGV, donors, JSON_TOKENS))

    # pytorch_model.bin: the hand-built zip (test_pytorch's) and a deflated copy, mutated raw (mostly stops
    # at the zip layer and its CRCs), and with only data.pkl mutated and re-zipped with valid CRCs (reaches the
    # restricted unpickler); the legacy torch.save files from ../shared/data
    cfg = meta["config"].encode()
    tc.torch_zip(tc.tmp("pt_src.bin"), tc.hf_state_dict(w))
    zbytes = read(tc.tmp("pt_src.bin"))
    pkl = zipfile.ZipFile(tc.tmp("pt_src.bin")).read("archive/data.pkl")
    legacy = [os.path.join(tc.PT_LEGACY, sub) for sub in ("fastnlp_small_bert", "allennlp_bert_xsmall_dummy")]
    legacy = [(d, next(f for f in os.listdir(d) if f.endswith(".bin"))) for d in legacy if os.path.isdir(d)]
    leg_bytes = [read(os.path.join(d, f)) for d, f in legacy]
    pickle_kind = Kind("pt_pickle", hf2st, [pkl], [case_dir("pt_pickle", {"config.json": cfg})], "in.bin", PT_ARGV,
                       leg_bytes, PICKLE_TOKENS, make=lambda r, i: tc._rezip(zbytes, lambda _: mutate(pkl, r, pickle_kind)))
    # the same archive re-zipped with deflate: its members are inflated piece by piece, within a budget
    deflated = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(zbytes)) as zin, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as zout:
        for n in zin.namelist():
            zout.writestr(n, zin.read(n))
    zseeds = [zbytes, deflated.getvalue()]
    kinds += [Kind("pt_zip", hf2st, zseeds, [case_dir(f"pt_zip_{i}", {"config.json": cfg}) for i in range(len(zseeds))],
                   "in.bin", PT_ARGV, leg_bytes, ZIP_TOKENS + PICKLE_TOKENS[:20]), pickle_kind]
    if legacy:
        kinds.append(Kind("pt_legacy", hf2st, leg_bytes, [case_dir(f"pt_legacy_{i}", {"config.json": read(os.path.join(
            d, "config.json"))}) for i, (d, _) in enumerate(legacy)], "in.bin", PT_ARGV, [pkl], PICKLE_TOKENS))
    else:
        skipped.append(("pt_legacy", tc.PT_LEGACY))
    return kinds


# ---------------------------------------------------------------------------------------------

def verdict(rc, err):
    """'success', 'error' (the one-line refusal) or None (a finding)."""
    lines = [l for l in err.splitlines() if l.strip() and not l.startswith("convert: note: ")]
    if "Traceback" in err:
        return None
    if rc == 0:
        return "success"
    if rc == 1 and len(lines) == 1 and lines[0].startswith("convert: ") and \
            "internal error" not in lines[0] and "out of memory" not in lines[0]:
        return "error"
    return None


def fuzz_kind(k, n, seed, timeout, outdir):
    r = random.Random(f"{seed}:{k.name}")   # a stream per kind: its cases do not depend on the other kinds
    stats, messages, t0 = {"success": 0, "error": 0, "findings": 0}, {}, time.time()
    for _ in range(n):
        data, argv = k.case(r)
        try:
            rc, err = tc.convert(k.mod, *argv, timeout=timeout)
        except BaseException as e:   # escaped common.run (SystemExit, ...): a finding too
            rc, err = -2, f"uncaught {type(e).__name__}: {e}\n"
        v = verdict(rc, err)
        if v:
            stats[v] += 1
            continue
        stats["findings"] += 1
        msg = f"HANG (over {timeout} s)" if rc == -1 else err.strip().replace(tc.TMP, "$TMP") or f"exit {rc}, no message"
        last = msg.splitlines()[-1][:160]
        messages[last] = messages.get(last, 0) + 1
        if stats["findings"] <= SAVE_CAP:
            os.makedirs(outdir, exist_ok=True)
            base = os.path.join(outdir, f"{k.name}_{stats['findings']:03d}")
            with open(base + ".bin", "wb") as f:
                f.write(data)
            with open(base + ".txt", "w") as f:
                f.write(f"convert/{k.mod.__name__}.py {' '.join(a.replace(tc.TMP, '$TMP') for a in argv)}\n"
                        f"(the .bin was {k.target} in that directory)\nexit {rc}\n{msg}\n")
    return stats, messages, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=2000, help="mutations per kind (default 2000)")
    ap.add_argument("--seed", default="1", help="random seed (default 1)")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "fuzz", "convert_findings"),
                    help="where findings are saved (default build/fuzz/convert_findings)")
    ap.add_argument("--timeout", type=int, default=10, help="seconds per case before it counts as a hang (default 10)")
    ap.add_argument("--kinds", help="comma-separated subset of the kinds")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = MEMORY_CAP if hard == resource.RLIM_INFINITY else min(MEMORY_CAP, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    passed = failed = 0
    try:
        skipped = []
        kinds = build_kinds(skipped)
        for what, path in skipped:
            print(f"skipped: {what}: {os.path.relpath(path, ROOT)} absent")
        kinds = [k for k in kinds if not a.kinds or k.name in a.kinds.split(",")]
        print(f"{a.iterations} mutations per kind, seed {a.seed}, {a.timeout} s per case, address space {cap >> 20} MiB")
        print("| kind | mutations | ok-success | ok-error | findings | seconds |\n|---|---:|---:|---:|---:|---:|")
        report = []
        for k in kinds:
            stats, messages, secs = fuzz_kind(k, a.iterations, a.seed, a.timeout, a.out)
            print(f"| {k.name} | {a.iterations} | {stats['success']} | {stats['error']} | {stats['findings']} | "
                  f"{secs:.1f} |", flush=True)
            passed, failed = passed + (not stats["findings"]), failed + bool(stats["findings"])
            report += [f"  {k.name}: {c} x {m}" for m, c in sorted(messages.items(), key=lambda x: -x[1])[:5]]
        if report:
            print(f"findings (inputs saved under {a.out}):\n" + "\n".join(report))
    finally:
        shutil.rmtree(tc.TMP, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
