"""PyTorch checkpoints (`pytorch_model.bin`) read with numpy and a restricted unpickler.

torch.save writes a pickle whose tensors are calls of torch._utils._rebuild_tensor_v2 on
"persistent" storage references, with the raw storages stored next to it: in a zip archive
(`<dir>/data.pkl`, `<dir>/data/<key>`, torch >= 1.6) or, in the legacy format, after the pickle in
the same stream (magic number, protocol 1001, sys info, the pickle, the storage keys, then per
storage an int64 element count and the bytes).

A pickle can call any importable function. This unpickler resolves only the few globals a state
dict needs, each to a local stand-in that builds numpy arrays (never to torch or anything else);
any other global is refused with an error naming it, so a malicious file cannot run code."""
import collections
import io
import os
import pickle
import zipfile

import numpy as np

from common import ConvertError, File

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "bf16",
            "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
            "ByteStorage": "u1", "BoolStorage": "?"}
MAX_NUMEL = 1 << 40


class _NoBuild:
    """The pickle's BUILD opcode sets attributes on the object below it on the stack. On these
    stand-ins it would let a file change a storage's dtype or a tensor's storage, and on the
    StorageType objects in ALLOWED, shared by every load, also what later files in the same process
    read. torch.save never builds them that way, so it is refused."""
    __slots__ = ()

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"the pickle sets the state of a {type(self).__name__}")


class StorageType(_NoBuild):
    def __init__(self, name):
        self.name, self.dtype = name, STORAGES[name]

    @property
    def itemsize(self):
        return 2 if self.dtype == "bf16" else np.dtype(self.dtype).itemsize


class Storage(_NoBuild):
    """A storage reference from the pickle; `data` (a numpy array) is attached once read."""

    def __init__(self, stype, key, numel):
        self.stype, self.key, self.numel, self.data = stype, key, numel, None


class TensorRef(_NoBuild):
    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _ints(v, n=None):
    return isinstance(v, (tuple, list)) and (n is None or len(v) == n) and \
        all(isinstance(x, int) and not isinstance(x, bool) for x in v)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, Storage) or not isinstance(storage_offset, int) or not _ints(size) or \
            not _ints(stride, len(size)) or len(size) > 16:
        raise pickle.UnpicklingError("malformed tensor record")
    return TensorRef(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, TensorRef):
        raise pickle.UnpicklingError("a Parameter around something that is not a tensor")
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in (_rebuild_tensor_v2, _rebuild_tensor, _rebuild_parameter) or new_type not in (_Tensor, _Parameter):
        raise pickle.UnpicklingError("a tensor subclass")
    return func(*args)


class _Tensor:
    pass


class _Parameter:
    pass


ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _Tensor,
    ("torch.nn.parameter", "Parameter"): _Parameter,
}
ALLOWED.update({("torch", n): StorageType(n) for n in STORAGES})


class _Unpickler(pickle._Unpickler):
    """The pure-Python unpickler: slower, but a corrupt length in the pickle makes it read what is
    there and fail, where the C one first tries to allocate the declared size."""

    def __init__(self, f, path):
        super().__init__(f)
        self.path, self.storages = path, {}

    def find_class(self, module, name):
        hit = ALLOWED.get((module, name))
        if hit is None:
            raise ConvertError(self.path, f"refusing pickle global {module}.{name} (only tensors and dicts are "
                                          f"rebuilt; a state dict needs nothing else)")
        return hit

    def persistent_load(self, pid):
        # zip: ('storage', type, key, location, numel); legacy adds view_metadata
        if not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage" or \
                not isinstance(pid[1], StorageType) or not isinstance(pid[2], str) or \
                not isinstance(pid[4], int) or not 0 <= pid[4] <= MAX_NUMEL:
            raise ConvertError(self.path, "malformed storage reference in the pickle")
        if len(pid) == 6 and pid[5] is not None:
            raise ConvertError(self.path, "storage views (pre-0.4 files) are not supported")
        st = self.storages.get(pid[2])
        if st is None:
            st = self.storages[pid[2]] = Storage(pid[1], pid[2], pid[4])
        return st


def _unpickle(data, path, what):
    u = _Unpickler(io.BytesIO(data), path)
    try:
        return u.load(), u.storages
    except ConvertError:
        raise
    except Exception as e:   # a corrupt pickle fails in many ways (struct.error, EOFError, ...): all are "bad pickle"
        raise ConvertError(path, f"{what}: bad pickle ({type(e).__name__}: {e})")


def load(path):
    """{name: np.ndarray} from a torch.save'd state dict (zip or legacy)."""
    with File(path) as f:
        head = f.read(0, min(f.size, 4), "header")
    if head == b"PK\x03\x04":
        obj, storages = _load_zip(path)
    else:
        obj, storages = _load_legacy(path)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]   # a training checkpoint {"state_dict": ..., ...}
    if not isinstance(obj, dict):
        raise ConvertError(path, f"the pickle holds a {type(obj).__name__}, not a state dict")
    out, file_size = {}, os.path.getsize(path)
    for k, v in obj.items():
        if not isinstance(k, str):
            raise ConvertError(path, "a state-dict key is not a string")
        if isinstance(v, TensorRef):
            out[k] = _materialise(v, path, k, file_size)
    return out


def _load_zip(path):
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError) as e:   # e.g. "zip file version 25.5"
        raise ConvertError(path, f"not a readable zip archive ({e})")
    with z:
        pkls = [n for n in z.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise ConvertError(path, "no single <dir>/data.pkl in the archive (not a torch.save file)")
        root = pkls[0][:-len("data.pkl")]
        obj, storages = _unpickle(_zip_read(z, pkls[0], path, 1 << 30), path, pkls[0])
        bo = root + "byteorder"
        if bo in z.namelist() and _zip_read(z, bo, path, 16).strip() != b"little":
            raise ConvertError(path, "big-endian tensors; not supported")
        for st in storages.values():
            nbytes = st.numel * st.stype.itemsize
            raw = _zip_read(z, f"{root}data/{st.key}", path, nbytes)
            if len(raw) < nbytes:
                raise ConvertError(path, f"storage {st.key}: {len(raw)} bytes, the pickle declares {nbytes}")
            st.data = _storage_array(raw[:nbytes], st)
    return obj, storages


def _zip_read(z, name, path, limit):
    try:
        info = z.getinfo(name)
    except KeyError:
        raise ConvertError(path, f"archive member {name} is missing")
    if info.file_size > limit:
        raise ConvertError(path, f"archive member {name} is {info.file_size} bytes, more than expected ({limit})")
    try:
        return z.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError, NotImplementedError) as e:
        raise ConvertError(path, f"archive member {name}: {e}")
    except Exception as e:   # zlib.error and friends from a damaged compressed member
        raise ConvertError(path, f"archive member {name}: {type(e).__name__}: {e}")


def _load_legacy(path):
    with File(path) as f:
        data = f.read(0, f.size, "file")
    bio = io.BytesIO(data)   # five pickles one after the other, then the raw storages

    def next_obj(what):
        uu = _Unpickler(bio, path)
        try:
            return uu.load(), uu.storages
        except ConvertError:
            raise
        except Exception as e:
            raise ConvertError(path, f"{what}: bad pickle ({type(e).__name__}: {e})")

    magic, _ = next_obj("magic number")
    if magic != LEGACY_MAGIC:
        raise ConvertError(path, "not a PyTorch checkpoint (no zip header, no legacy magic number)")
    proto, _ = next_obj("protocol version")
    if proto != 1001:
        # proto may be any object (lists nesting the same list twice per level print in exponential time): name its type
        raise ConvertError(path, f"unsupported legacy protocol {proto if isinstance(proto, int) else type(proto).__name__}")
    info, _ = next_obj("sys info")
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise ConvertError(path, "big-endian or unknown byte order; not supported")
    obj, storages = next_obj("state dict")
    keys, _ = next_obj("storage keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or set(keys) != set(storages):
        raise ConvertError(path, "storage key list does not match the pickle")
    pos = bio.tell()
    for k in keys:
        st = storages[k]
        if len(data) - pos < 8:
            raise ConvertError(path, f"storage {k}: truncated before its size")
        n = int.from_bytes(data[pos:pos + 8], "little", signed=True)
        pos += 8
        nbytes = n * st.stype.itemsize
        if n != st.numel or nbytes > len(data) - pos:
            raise ConvertError(path, f"storage {k}: {n} elements declared, {st.numel} expected, "
                                     f"{len(data) - pos} bytes left (truncated or corrupt)")
        st.data = _storage_array(data[pos:pos + nbytes], st)
        pos += nbytes
    return obj, storages


def _storage_array(raw, st):
    if st.stype.dtype == "bf16":
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, st.stype.dtype)


def _materialise(t, path, name, file_size):
    st = t.storage
    if st.data is None:
        raise ConvertError(path, f"'{name}': its storage was never read")
    if t.offset < 0 or any(s < 0 for s in t.size) or any(s < 0 for s in t.stride):
        raise ConvertError(path, f"'{name}': negative offset, size or stride")
    # The view's bounds are checked against its storage below, but zero strides (an expanded
    # tensor) repeat elements without bound, and numpy refuses huge dims even with a 0 among them:
    # the dims (0 counted as 1) times the item size must fit in the file.
    span = 1
    for n in t.size:
        span *= max(n, 1)
    if span * st.data.itemsize > file_size:
        raise ConvertError(path, f"'{name}': shape {list(t.size)} is larger than the whole {file_size}-byte file")
    if 0 in t.size:
        return np.zeros(t.size, dtype=st.data.dtype)
    last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride))
    if last >= st.data.size:
        raise ConvertError(path, f"'{name}': view [{t.offset}..{last}] lies outside its {st.data.size}-element storage")
    base = st.data[t.offset:]
    a = np.lib.stride_tricks.as_strided(base, shape=t.size, strides=[s * base.itemsize for s in t.stride],
                                        writeable=False)
    return np.array(a)
