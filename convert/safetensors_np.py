"""safetensors with numpy: u64 LE header length N, N bytes of JSON header
{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}, then the
data buffer. The reader checks what bert.h's reader checks (sizes, offsets inside the buffer and
consistent with dtype x shape, no overlaps), so a file that passes here is not rejected there."""
import json
import math
import reprlib

import numpy as np

from common import ConvertError, File, check_dims, json_loads, write_atomic

DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I32": "<i4", "I64": "<i8", "I16": "<i2", "U8": "u1",
          "I8": "i1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?", "BF16": "<u2"}
NP_TO_ST = {np.dtype(v): k for k, v in DTYPES.items() if k not in ("BF16",)}
MAX_HEADER = 100 << 20


def read(path):
    """({name: array} in header order, metadata dict). BF16 comes back as float32."""
    with File(path) as f:
        if f.size < 8:
            raise ConvertError(path, f"{f.size} bytes is too short for a safetensors file")
        n = int.from_bytes(f.read(0, 8, "header length"), "little")
        if n > f.size - 8 or n > MAX_HEADER:
            raise ConvertError(path, f"header length {n} lies past the end of the {f.size}-byte file")
        header = json_loads(f.read(8, n, "header"), path, "bad JSON header")
        if not isinstance(header, dict):
            raise ConvertError(path, "header is not a JSON object")
        meta = header.pop("__metadata__", None) or {}
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise ConvertError(path, "__metadata__ must map strings to strings")
        # every entry and the overlaps are checked before the first tensor is read: entries that
        # share bytes would each be read (and held) again
        base, data_len, spans = 8 + n, f.size - 8 - n, []
        for name, info in header.items():
            dt, shape, offs = _entry(path, name, info)
            itemsize = np.dtype(DTYPES[dt]).itemsize
            numel = math.prod(shape)   # Python ints: np.prod in int64 wraps [2^32, 2^32] to 0
            if offs[1] > data_len or offs[1] - offs[0] != numel * itemsize:
                raise ConvertError(path, f"tensor '{name}': data_offsets {offs} do not fit {dt}{shape} in a "
                                         f"{data_len}-byte buffer")
            check_dims(path, f"tensor '{name}'", shape, itemsize, f.size)
            spans.append((offs[0], offs[1], name, dt, shape))
        by_offset = sorted(spans, key=lambda x: (x[0], x[1]))
        for (b0, e0, n0, _, _), (b1, _, n1, _, _) in zip(by_offset, by_offset[1:]):
            if b1 < e0:
                raise ConvertError(path, f"tensors '{n0}' and '{n1}' overlap")
        out = {}
        for b, e, name, dt, shape in spans:
            a = np.frombuffer(f.read(base + b, e - b, f"tensor '{name}'"), DTYPES[dt]).reshape(shape)
            out[name] = (a.astype(np.uint32) << 16).view(np.float32) if dt == "BF16" else a
        return out, meta


def _entry(path, name, info):
    if not isinstance(info, dict):
        raise ConvertError(path, f"tensor '{name}': entry is not an object")
    dt, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dt not in DTYPES:
        raise ConvertError(path, f"tensor '{name}': unsupported dtype {reprlib.repr(dt)}")
    if not isinstance(shape, list) or len(shape) > 16 or not all(_uint(d) for d in shape):
        raise ConvertError(path, f"tensor '{name}': bad shape {reprlib.repr(shape)}")
    if not isinstance(offs, list) or len(offs) != 2 or not all(_uint(o) for o in offs) or offs[0] > offs[1]:
        raise ConvertError(path, f"tensor '{name}': bad data_offsets {reprlib.repr(offs)}")
    return dt, tuple(shape), offs


def _uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < (1 << 53)


def write(path, tensors, metadata=None):
    """Writes [(name, array)] (or a dict) in that order, little-endian, header padded with spaces
    to a multiple of 8 so the data is aligned; via PATH.tmp + fsync + rename."""
    items = list(tensors.items()) if isinstance(tensors, dict) else list(tensors)
    header, chunks, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, a in items:
        a = np.asarray(a)
        a = np.asarray(a, dtype=a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype, order="C")
        if a.dtype not in NP_TO_ST:
            raise ConvertError(path, f"tensor '{name}': dtype {a.dtype} cannot be stored")
        raw = a.tobytes()
        header[name] = {"dtype": NP_TO_ST[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    write_atomic(path, [len(text).to_bytes(8, "little"), text] + chunks)
