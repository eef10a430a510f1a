"""PyTorch checkpoints (`pytorch_model.bin`) read with numpy and a restricted unpickler.

torch.save writes a pickle whose tensors are calls of torch._utils._rebuild_tensor_v2 on
"persistent" storage references, with the raw storages stored next to it: in a zip archive
(`<dir>/data.pkl`, `<dir>/data/<key>`, torch >= 1.6) or, in the legacy format, after the pickle in
the same stream (magic number, protocol 1001, sys info, the pickle, the storage keys, then per
storage an int64 element count and the bytes).

A pickle can call any importable function. This unpickler resolves only the few globals a state
dict needs, each to a local stand-in that builds numpy arrays (never to torch or anything else);
any other global is refused with an error naming it, so a malicious file cannot run code.

Sizes: every size the pickle or the archive declares is checked against the bytes the file holds
before anything of that size is allocated: a storage's bytes against the file, each zip member's
declared size against what it stores (members may expand to at most twice the archive in all), and
the tensors' bytes against their storages' (a state dict repeats at most a tied copy). A pickle's
opcodes are counted too: each builds at most one small object (an empty set, 216 bytes, is the
largest) from as little as one byte, so MAX_OPS of them bound what a crafted pickle of any size can
make the unpickler hold (a BERT-large state dict takes about 12,000).

State: nothing a load reads or builds is shared with the next load. The storage types are made
per unpickler, and the pickle's BUILD opcode (which sets attributes, also on functions and classes)
is accepted only on the OrderedDicts torch.save builds, so a refused file cannot change what a
later file in the same process is read with."""
import collections
import io
import pickle
import zipfile

import numpy as np

from common import ConvertError, File, check_dims

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "bf16",
            "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
            "ByteStorage": "u1", "BoolStorage": "?"}
MAX_NUMEL = 1 << 40
MAX_OPS = 1 << 20


class StorageType:
    def __init__(self, name):
        self.name, self.dtype = name, STORAGES[name]

    @property
    def itemsize(self):
        return 2 if self.dtype == "bf16" else np.dtype(self.dtype).itemsize


class Storage:
    """A storage reference from the pickle; `data` (a numpy array) is attached once read."""
    __slots__ = ("stype", "key", "numel", "data")

    def __init__(self, stype, key, numel):
        self.stype, self.key, self.numel, self.data = stype, key, numel, None


class TensorRef:
    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _sane_int(x):
    """An int of sane size. torch's are int64; up to 128 bits are let through to the checks that say
    what is wrong with them, but not the ints of millions of digits a pickle can hold, whose
    products take minutes."""
    return isinstance(x, int) and not isinstance(x, bool) and -(1 << 128) < x < 1 << 128


def _ints(v, n=None):
    return isinstance(v, (tuple, list)) and (n is None or len(v) == n) and all(_sane_int(x) for x in v)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, Storage) or not _sane_int(storage_offset) or not _ints(size) or \
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


def _allowed():
    """The globals a state dict needs, for one unpickler: fresh StorageType objects each time, so
    nothing one file's pickle gets hold of is seen by another's."""
    table = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Tensor"): _Tensor,
        ("torch.nn.parameter", "Parameter"): _Parameter,
    }
    table.update({("torch", n): StorageType(n) for n in STORAGES})
    return table


def _load_build(self):
    """BUILD sets attributes on the object below the state: on a function (its __defaults__), a
    class or a stand-in that would change how every later file in this process is read. torch.save
    uses it only to give a state dict (an OrderedDict) its `_metadata`, so that alone is accepted."""
    if len(self.stack) < 2:
        raise pickle.UnpicklingError("BUILD on an empty stack")
    inst, state = self.stack[-2], self.stack[-1]
    if type(inst) is not collections.OrderedDict or type(state) is not dict or \
            not all(type(k) is str for k in state):
        raise pickle.UnpicklingError(f"the pickle sets the state of a {type(inst).__name__} "
                                     f"(torch.save does that only to an OrderedDict)")
    pickle._Unpickler.load_build(self)


def _counted(op):
    """An opcode's handler that first counts it against MAX_OPS."""
    def handler(self):
        self.ops += 1
        if self.ops > MAX_OPS:
            raise ConvertError(self.path, f"the pickle runs more than {MAX_OPS} opcodes (a state dict needs a few per "
                                          f"tensor: corrupt or crafted)")
        op(self)
    return handler


class _Unpickler(pickle._Unpickler):
    """The pure-Python unpickler: slower, but a corrupt length in the pickle makes it read what is
    there and fail, where the C one first tries to allocate the declared size. A storage may
    declare at most `expansion` x the file's size in bytes (what the file can hold); at most MAX_OPS
    opcodes run."""
    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = _load_build
    dispatch = {code: _counted(op) for code, op in dispatch.items()}

    def __init__(self, f, path, file_size, expansion=1):
        super().__init__(f)
        self.path, self.storages, self.allowed, self.ops = path, {}, _allowed(), 0
        self.file_size, self.max_storage = file_size, expansion * file_size

    def find_class(self, module, name):
        hit = self.allowed.get((module, name))
        if hit is None:
            raise ConvertError(self.path, f"refusing pickle global {module}.{name} (only tensors and dicts are "
                                          f"rebuilt; a state dict needs nothing else)")
        return hit

    def persistent_load(self, pid):
        # zip: ('storage', type, key, location, numel); legacy adds view_metadata
        if not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage" or \
                not isinstance(pid[1], StorageType) or not isinstance(pid[2], str) or \
                not _sane_int(pid[4]) or not 0 <= pid[4] <= MAX_NUMEL:
            raise ConvertError(self.path, "malformed storage reference in the pickle")
        if len(pid) == 6 and pid[5] is not None:
            raise ConvertError(self.path, "storage views (pre-0.4 files) are not supported")
        nbytes = pid[4] * pid[1].itemsize
        if nbytes > self.max_storage:
            raise ConvertError(self.path, f"storage {pid[2]} declares {nbytes} bytes ({pid[4]} x {pid[1].name}), "
                                          f"more than the {self.file_size}-byte file can hold (corrupt)")
        st = self.storages.get(pid[2])
        if st is None:
            st = self.storages[pid[2]] = Storage(pid[1], pid[2], pid[4])
        return st


# torch.save stores zip members uncompressed, so a real archive's members hold less than the archive;
# re-zipped with deflate, weights barely shrink (~10%). Twice the archive is room for that, and stops a
# zip bomb (deflate reaches 1000x) or members whose directory sizes overlap or lie.
ZIP_EXPANSION = 2
# Tying repeats the word embeddings (and the MLM bias) as the decoder's: a state dict's tensors hold at
# most twice its storages' bytes. Many records viewing one storage would multiply a small file.
TENSOR_EXPANSION = 2
SLACK = 1 << 20


def _unpickle(data, path, what, file_size):
    u = _Unpickler(io.BytesIO(data), path, file_size, ZIP_EXPANSION)
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
        file_size = f.size
    if head == b"PK\x03\x04":
        obj, storages = _load_zip(path, file_size)
    else:
        obj, storages = _load_legacy(path)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]   # a training checkpoint {"state_dict": ..., ...}
    if not isinstance(obj, dict):
        raise ConvertError(path, f"the pickle holds a {type(obj).__name__}, not a state dict")
    refs = []
    for k, v in obj.items():
        if not isinstance(k, str):
            raise ConvertError(path, "a state-dict key is not a string")
        if isinstance(v, TensorRef):
            refs.append((k, v))
    # every view checked, and what the copies will take added up, before the first is made
    need = sum(_check_view(v, path, k, file_size) for k, v in refs)
    have = sum(st.data.nbytes for st in storages.values() if st.data is not None)
    if need > TENSOR_EXPANSION * have + SLACK:
        raise ConvertError(path, f"the tensors take {need} bytes, more than {TENSOR_EXPANSION}x the {have} bytes of "
                                 f"their storages (many tensors viewing the same data: corrupt or crafted)")
    return {k: _materialise(v) for k, v in refs}


class _Budget:
    """The bytes the archive's members may still expand to, for one load."""

    def __init__(self, n):
        self.left = n


def _load_zip(path, file_size):
    budget = _Budget(ZIP_EXPANSION * file_size)
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError) as e:   # e.g. "zip file version 25.5"
        raise ConvertError(path, f"not a readable zip archive ({e})")
    with z:
        pkls = [n for n in z.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise ConvertError(path, "no single <dir>/data.pkl in the archive (not a torch.save file)")
        root = pkls[0][:-len("data.pkl")]
        obj, storages = _unpickle(_zip_read(z, pkls[0], path, 1 << 30, budget), path, pkls[0], file_size)
        bo = root + "byteorder"
        if bo in z.namelist() and _zip_read(z, bo, path, 16, budget).strip() != b"little":
            raise ConvertError(path, "big-endian tensors; not supported")
        for st in storages.values():
            nbytes = st.numel * st.stype.itemsize
            name = f"{root}data/{st.key}"
            size = _zip_info(z, name, path).file_size
            if size < nbytes:   # before reading it: the pickle's numel may be anything the file holds
                raise ConvertError(path, f"storage {st.key}: {size} bytes, the pickle declares {nbytes}")
            raw = _zip_read(z, name, path, nbytes, budget)
            st.data = _storage_array(raw, st)
    return obj, storages


def _zip_info(z, name, path):
    try:
        return z.getinfo(name)
    except KeyError:
        raise ConvertError(path, f"archive member {name} is missing")


def _zip_read(z, name, path, limit, budget):
    """A member's bytes. Its declared size is checked against `limit`, against what it stores
    (stored: exactly; deflated: within the budget) and against the budget before anything of that
    size is allocated, and it is inflated in bounded pieces: zipfile's read() of a whole member
    inflates all the data at once, whatever size the directory declares."""
    info = _zip_info(z, name, path)
    n = info.file_size
    if n > limit:
        raise ConvertError(path, f"archive member {name} is {n} bytes, more than expected ({limit})")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ConvertError(path, f"archive member {name}: compression method {info.compress_type} (torch.save "
                                 f"stores members uncompressed; only stored and deflated members are read)")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != n:
        raise ConvertError(path, f"archive member {name} declares {n} bytes but stores {info.compress_size} (corrupt)")
    if n > budget.left:
        raise ConvertError(path, f"archive member {name} expands to {n} bytes: with the members before it, more "
                                 f"than {ZIP_EXPANSION}x the archive (a zip bomb, or corrupt sizes)")
    budget.left -= n
    out = bytearray(n)
    try:
        with z.open(info) as f:
            pos, view = 0, memoryview(out)
            while pos < n:
                piece = f.read(min(n - pos, 1 << 22))
                if not piece:
                    break
                view[pos:pos + len(piece)] = piece
                pos += len(piece)
            if pos < n or f.read(1):
                raise ConvertError(path, f"archive member {name}: {pos} bytes, its directory entry says {n} (corrupt)")
    except ConvertError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError, NotImplementedError) as e:
        raise ConvertError(path, f"archive member {name}: {e}")
    except Exception as e:   # zlib.error and friends from a damaged compressed member
        raise ConvertError(path, f"archive member {name}: {type(e).__name__}: {e}")
    return out


def _load_legacy(path):
    with File(path) as f:
        data = f.read(0, f.size, "file")
    bio = io.BytesIO(data)   # five pickles one after the other, then the raw storages

    def next_obj(what):
        uu = _Unpickler(bio, path, len(data))
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
        if st.data is not None:
            raise ConvertError(path, f"storage {k} is listed twice")
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


def _check_view(t, path, name, file_size):
    """Checks a tensor record against its storage; -> the bytes its copy will take."""
    st = t.storage
    if st.data is None:
        raise ConvertError(path, f"'{name}': its storage was never read")
    if t.offset < 0 or any(s < 0 for s in t.size) or any(s < 0 for s in t.stride):
        raise ConvertError(path, f"'{name}': negative offset, size or stride")
    # The view's bounds are checked against its storage below, but zero strides (an expanded
    # tensor) repeat elements without bound, and numpy refuses huge dims even with a 0 among them:
    # the dims (0 counted as 1) times the item size must fit in the file.
    check_dims(path, f"'{name}'", t.size, st.data.itemsize, file_size)
    numel = 1
    for n in t.size:
        numel *= n
    if numel:
        last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride))
        if last >= st.data.size:
            raise ConvertError(path, f"'{name}': view [{t.offset}..{last}] lies outside its {st.data.size}-element storage")
    return numel * st.data.itemsize


def _materialise(t):
    st = t.storage
    if 0 in t.size:
        return np.zeros(t.size, dtype=st.data.dtype)
    base = st.data[t.offset:]
    a = np.lib.stride_tricks.as_strided(base, shape=t.size, strides=[s * base.itemsize for s in t.stride],
                                        writeable=False)
    return np.array(a)
