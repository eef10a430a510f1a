#!/usr/bin/env python3
"""MindSpore .ckpt files, read (and written, for tests) without MindSpore or protobuf.

The file is the protobuf `Checkpoint { repeated Value value = 1; }`, `Value { string tag = 1;
TensorProto tensor = 2; MapTensorProto maptensor = 3; }`, `TensorProto { repeated int64 dims = 1;
string tensor_type = 2; bytes tensor_content = 3; }`. MindSpore appends each Value as its own
serialized Checkpoint, so the whole file parses as one. A parameter larger than the slice size is
saved as several Values with the same tag, each repeating the full dims, holding consecutive
pieces (np.array_split along axis 0): their contents are concatenated. Scalars have dims [0].

    python3 convert/ms_ckpt.py dump FILE.ckpt     # tag, type, dims, slices, first values
"""
import sys

import numpy as np

import wire
from common import ConvertError, check_dims, cli, read_all

TYPES = {"Float32": "<f4", "Float16": "<f2", "Float64": "<f8", "Int8": "i1", "Int16": "<i2", "Int32": "<i4",
         "Int64": "<i8", "UInt8": "u1", "UInt16": "<u2", "UInt32": "<u4", "UInt64": "<u8", "Bool": "?",
         "BFloat16": "<u2"}
NP_TO_TYPE = {np.dtype(v): k for k, v in TYPES.items() if k != "BFloat16"}
MAX_DIMS = 32


class Param:
    def __init__(self, tag, ttype, dims):
        self.tag, self.ttype, self.dims, self.pieces = tag, ttype, dims, []

    @property
    def shape(self):
        return () if self.dims == [0] else tuple(self.dims)   # MindSpore stores a scalar as dims [0]


def read(path):
    """[(tag, array)] in file order (slices joined); arrays are float32/64/16 etc. as stored."""
    buf = read_all(path, 1 << 40)
    params, order = {}, []
    for num, wt, v in wire.fields(buf, 0, len(buf), path, "checkpoint"):
        if num != 1 or wt != wire.BYTES:
            raise ConvertError(path, f"unexpected field {num} at top level (not a MindSpore checkpoint)")
        tag, t = _value(buf, v, path, len(order) + sum(len(p.pieces) - 1 for p in params.values()))
        if t is None:
            continue
        ttype, dims, content = t
        if tag not in params:
            params[tag] = Param(tag, ttype, dims)
            order.append(tag)
        p = params[tag]
        if (p.ttype, p.dims) != (ttype, dims):
            raise ConvertError(path, f"'{tag}': slices disagree on type/dims ({p.ttype}{p.dims} vs {ttype}{dims})")
        p.pieces.append(content)
    if not order:
        raise ConvertError(path, "no parameters (empty or not a MindSpore checkpoint)")
    return [(tag, _array(params[tag], buf, path)) for tag in order]


def _value(buf, span, path, index):
    what = f"value {index}"
    tag, tensor = None, None
    for num, wt, v in wire.fields(buf, span[0], span[1], path, what):
        if num == 1 and wt == wire.BYTES:
            try:
                tag = bytes(buf[v[0]:v[1]]).decode("utf-8")
            except UnicodeDecodeError:
                raise ConvertError(path, f"{what}: tag is not UTF-8 (corrupt file)")
        elif num == 2 and wt == wire.BYTES:
            tensor = v
        elif num == 3:
            raise ConvertError(path, f"{what} ('{tag}'): a MapTensor (embedding cache); not supported")
    if tag is None:
        raise ConvertError(path, f"{what}: no tag (corrupt file)")
    if tensor is None:
        raise ConvertError(path, f"'{tag}': no tensor")
    return tag, _tensor(buf, tensor, path, f"'{tag}'")


def _tensor(buf, span, path, what):
    dims, ttype, content = [], None, (0, 0)
    for num, wt, v in wire.fields(buf, span[0], span[1], path, what):
        if num == 1 and wt == wire.VARINT:
            dims.append(wire.signed64(v))
        elif num == 1 and wt == wire.BYTES:   # packed repeated int64
            pos = v[0]
            while pos < v[1]:
                d, pos = wire.read_varint(buf, pos, v[1], path, what)
                dims.append(wire.signed64(d))
        elif num == 2 and wt == wire.BYTES:
            ttype = bytes(buf[v[0]:v[1]]).decode("utf-8", "replace")
        elif num == 3 and wt == wire.BYTES:
            content = v
        if len(dims) > MAX_DIMS:
            raise ConvertError(path, f"{what}: more than {MAX_DIMS} dims")
    if ttype not in TYPES:
        raise ConvertError(path, f"{what}: unsupported tensor_type {ttype!r}")
    if any(d < 0 or d > (1 << 40) for d in dims):
        raise ConvertError(path, f"{what}: bad dims {dims}")
    return ttype, dims, content


def _array(p, buf, path):
    dt = np.dtype(TYPES[p.ttype])
    numel = 1
    for d in p.shape:
        numel *= d
    got = sum(b - a for a, b in p.pieces)
    if got != numel * dt.itemsize:
        raise ConvertError(path, f"'{p.tag}': dims {p.dims} of {p.ttype} need {numel * dt.itemsize} bytes, "
                                 f"the file holds {got}{f' in {len(p.pieces)} slices' if len(p.pieces) > 1 else ''}")
    check_dims(path, f"'{p.tag}'", p.shape, dt.itemsize, len(buf))   # an empty tensor's other dims too
    raw = b"".join(bytes(buf[a:b]) for a, b in p.pieces)
    a = np.frombuffer(raw, dtype=dt).reshape(p.shape)
    if p.ttype == "BFloat16":
        a = (a.astype(np.uint32) << 16).view(np.float32)
    return a


def write(path, params, slice_bytes=None):
    """Writes [(tag, array)] as MindSpore's _exec_save does: one serialized Checkpoint per Value,
    appended; a tensor over slice_bytes is split into np.array_split pieces along axis 0."""
    from common import write_atomic
    chunks = []
    for tag, a in params:
        a = np.asarray(a)
        a = np.asarray(a, dtype=a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype, order="C")
        dims = list(a.shape) if a.ndim else [0]
        n = 1
        if slice_bytes and a.ndim and a.nbytes > slice_bytes:
            n = min(a.shape[0], -(-a.nbytes // slice_bytes))
        for piece in (np.array_split(a, n, axis=0) if n > 1 else [a]):
            t = b"".join(wire.f_varint(1, d) for d in dims) + wire.f_bytes(2, NP_TO_TYPE[a.dtype].encode()) + \
                wire.f_bytes(3, np.ascontiguousarray(piece).tobytes())
            chunks.append(wire.f_bytes(1, wire.f_bytes(1, tag.encode("utf-8")) + wire.f_bytes(2, t)))
    write_atomic(path, chunks)


def main(argv):
    if len(argv) != 2 or argv[0] != "dump":
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    params = read(argv[1])
    print(f"# {argv[1]}: {len(params)} parameters")
    for tag, a in params:
        first = ", ".join(f"{x:.6g}" for x in a.reshape(-1)[:4].tolist())
        print(f"{tag}\t{a.dtype}\t{list(a.shape)}\t[{first}]")
    return 0


if __name__ == "__main__":
    cli(main)
