#!/usr/bin/env python3
"""TF tensor bundles (`PREFIX.index` + `PREFIX.data-00000-of-00001`), read and written without
TensorFlow.

The .index file is a LevelDB-format SSTable: data blocks of prefix-compressed (key, value) entries
with a restart array, an index block pointing at them, an empty metaindex block, and a 48-byte
footer (two block handles, padding, magic 0xdb4775248b80fb57). Each block is followed by a type
byte (0 = uncompressed) and the masked CRC32C of block + type. Key "" holds a BundleHeaderProto,
every other key is a tensor name whose value is a BundleEntryProto (dtype, shape, shard, offset,
size, masked crc32c of the tensor bytes). Tensor bytes are raw little-endian, C order.

    python3 convert/tf_bundle.py dump PREFIX      # list the entries (name dtype shape offset size crc)
"""
import sys

import numpy as np

import wire
from common import ConvertError, File, check_dims, cli, read_all, write_atomic
from crc32c import crc32c, mask

MAGIC = 0xDB4775248B80FB57
FOOTER = 48
# TF DataType enum -> (name, numpy dtype). DT_STRING (7) and resource/variant types are refused.
DTYPES = {1: ("float32", "<f4"), 2: ("float64", "<f8"), 3: ("int32", "<i4"), 4: ("uint8", "u1"),
          5: ("int16", "<i2"), 6: ("int8", "i1"), 9: ("int64", "<i8"), 10: ("bool", "?"),
          14: ("bfloat16", "<u2"), 17: ("uint16", "<u2"), 19: ("float16", "<f2")}
NP_TO_DT = {np.dtype("<f4"): 1, np.dtype("<f8"): 2, np.dtype("<i4"): 3, np.dtype("u1"): 4, np.dtype("<i2"): 5,
            np.dtype("i1"): 6, np.dtype("<i8"): 9, np.dtype("?"): 10, np.dtype("<f2"): 19}
MAX_DIMS = 32

# TF's table options for bundles (core/lib/io/table_options.h, BundleWriter): 256 KiB data blocks,
# a restart point every 16 keys (every key in the index block), no compression.
BLOCK_SIZE = 262144
RESTART_INTERVAL = 16


class Entry:
    """One BundleEntryProto: where a tensor's bytes are and their masked crc32c."""

    def __init__(self, name, dtype, shape, shard_id=0, offset=0, size=0, crc=0):
        self.name, self.dtype, self.shape = name, dtype, tuple(shape)
        self.shard_id, self.offset, self.size, self.crc = shard_id, offset, size, crc

    @property
    def numel(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __repr__(self):
        return f"{self.name} {DTYPES.get(self.dtype, ('dt%d' % self.dtype,))[0]} {list(self.shape)}"


class Bundle:
    """A parsed .index: header fields and the entries in key order."""

    def __init__(self, prefix, num_shards, entries, version):
        self.prefix, self.num_shards, self.entries, self.version = prefix, num_shards, entries, version
        self.by_name = {e.name: e for e in entries}

    def shard_path(self, shard_id):
        return f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}"


# ---------------------------------------------------------------------------------------------
# reading the SSTable

def _handle(buf, pos, end, path, what):
    off, pos = wire.read_varint(buf, pos, end, path, what)
    size, pos = wire.read_varint(buf, pos, end, path, what)
    return (off, size), pos


def _block(buf, handle, path, what):
    """The contents of one block, its trailer checked (uncompressed, CRC32C matches)."""
    off, size = handle
    limit = len(buf) - FOOTER
    if off > limit or size > limit - off or limit - off - size < 5:
        raise ConvertError(path, f"{what}: block [{off}, +{size}] lies past the end of the table (truncated or corrupt)")
    contents = buf[off:off + size]
    btype = buf[off + size]
    if btype != 0:
        raise ConvertError(path, f"{what}: block compression type {btype} (only uncompressed bundles are supported)")
    stored = int.from_bytes(buf[off + size + 1:off + size + 5], "little")
    if mask(crc32c(contents + bytes([btype]))) != stored:
        raise ConvertError(path, f"{what}: block checksum mismatch (corrupt file)")
    return contents


def _block_entries(block, path, what):
    """The (key, value) pairs of a block, in order; keys must strictly increase."""
    n = len(block)
    if n < 4:
        raise ConvertError(path, f"{what}: block shorter than its restart count")
    num_restarts = int.from_bytes(block[n - 4:], "little")
    if num_restarts == 0 or num_restarts > (n - 4) // 4:
        raise ConvertError(path, f"{what}: bad restart count {num_restarts}")
    end = n - 4 - 4 * num_restarts
    out, pos, last = [], 0, b""
    while pos < end:
        shared, pos = wire.read_varint(block, pos, end, path, what)
        unshared, pos = wire.read_varint(block, pos, end, path, what)
        vlen, pos = wire.read_varint(block, pos, end, path, what)
        if shared > len(last) or unshared > end - pos or vlen > end - pos - unshared:
            raise ConvertError(path, f"{what}: entry {len(out)} runs past its block (corrupt file)")
        k = last[:shared] + block[pos:pos + unshared]
        pos += unshared
        if out and k <= last:
            raise ConvertError(path, f"{what}: keys out of order at entry {len(out)} (corrupt file)")
        out.append((k, block[pos:pos + vlen]))
        pos += vlen
        last = k
    return out


def _entry(name, val, path):
    """A BundleEntryProto: dtype=1 shape=2 shard_id=3 offset=4 size=5 crc32c=6 slices=7."""
    what = f"entry '{name}'"
    e = Entry(name, 0, ())
    shape = None
    for num, wt, v in wire.fields(val, 0, len(val), path, what):
        if num == 1 and wt == wire.VARINT:
            e.dtype = v
        elif num == 2 and wt == wire.BYTES:
            shape = _shape(val, v, path, what)
        elif num == 3 and wt == wire.VARINT:
            e.shard_id = v
        elif num == 4 and wt == wire.VARINT:
            e.offset = wire.signed64(v)
        elif num == 5 and wt == wire.VARINT:
            e.size = wire.signed64(v)
        elif num == 6 and wt == wire.FIXED32:
            e.crc = v
        elif num == 7:
            raise ConvertError(path, f"{what}: a partitioned variable (slices); not supported")
    e.shape = tuple(shape or ())
    if e.dtype not in DTYPES:
        raise ConvertError(path, f"{what}: unsupported dtype {e.dtype} (only numeric tensors are converted)")
    if e.offset < 0 or e.size < 0:
        raise ConvertError(path, f"{what}: negative offset or size")
    if e.numel * np.dtype(DTYPES[e.dtype][1]).itemsize != e.size:
        raise ConvertError(path, f"{what}: size {e.size} does not match shape {list(e.shape)} x "
                                 f"{np.dtype(DTYPES[e.dtype][1]).itemsize} bytes")
    return e


def _shape(buf, span, path, what):
    """TensorShapeProto: repeated Dim dim = 2 { int64 size = 1; string name = 2; }, unknown_rank = 3."""
    dims = []
    for num, wt, v in wire.fields(buf, span[0], span[1], path, what):
        if num == 2 and wt == wire.BYTES:
            size = 0
            for n2, w2, v2 in wire.fields(buf, v[0], v[1], path, what):
                if n2 == 1 and w2 == wire.VARINT:
                    size = wire.signed64(v2)
            if size < 0 or size > (1 << 40):
                raise ConvertError(path, f"{what}: bad dimension {size}")
            dims.append(size)
            if len(dims) > MAX_DIMS:
                raise ConvertError(path, f"{what}: more than {MAX_DIMS} dimensions")
        elif num == 3 and v:
            raise ConvertError(path, f"{what}: unknown rank")
    return dims


def _header(val, path):
    """BundleHeaderProto: num_shards=1, endianness=2 (0 little, 1 big), version=3 {producer=1}."""
    num_shards, endian, version = 1, 0, b""
    for num, wt, v in wire.fields(val, 0, len(val), path, "bundle header"):
        if num == 1 and wt == wire.VARINT:
            num_shards = wire.signed64(v)
        elif num == 2 and wt == wire.VARINT:
            endian = v
        elif num == 3 and wt == wire.BYTES:
            version = val[v[0]:v[1]]
    if endian != 0:
        raise ConvertError(path, "big-endian bundle; not supported")
    if not 1 <= num_shards <= 100000:
        raise ConvertError(path, f"bad num_shards {num_shards}")
    return num_shards, version


def index_path(prefix):
    return prefix + ".index"


def strip_prefix(path):
    """Accepts PREFIX, PREFIX.index or PREFIX.data-* and returns PREFIX."""
    path = str(path)
    if path.endswith(".index"):
        return path[:-len(".index")]
    i = path.rfind(".data-")
    if i >= 0 and "-of-" in path[i:]:
        return path[:i]
    return path


def read_index(prefix):
    """Parses PREFIX.index into a Bundle; checks footer, block checksums, key order, every entry."""
    path = index_path(prefix)
    buf = read_all(path, 1 << 30)
    if len(buf) < FOOTER:
        raise ConvertError(path, f"{len(buf)} bytes is too short for a tensor-bundle index (48-byte footer)")
    foot = len(buf) - FOOTER
    if int.from_bytes(buf[-8:], "little") != MAGIC:
        raise ConvertError(path, "bad magic number: not a TF tensor-bundle index (or truncated)")
    meta_h, pos = _handle(buf, foot, foot + 40, path, "footer")
    index_h, pos = _handle(buf, pos, foot + 40, path, "footer")
    _block(buf, meta_h, path, "metaindex")
    entries, header, seen_blocks = [], None, 0
    for sep, hval in _block_entries(_block(buf, index_h, path, "index block"), path, "index block"):
        h, _ = _handle(hval, 0, len(hval), path, "index block")
        seen_blocks += 1
        for k, v in _block_entries(_block(buf, h, path, f"data block {seen_blocks}"), path, f"data block {seen_blocks}"):
            if k > sep:
                raise ConvertError(path, "a key lies beyond its index separator (corrupt file)")
            if entries and k.decode("utf-8", "replace") <= entries[-1].name and k != b"":
                raise ConvertError(path, "keys out of order across blocks (corrupt file)")
            if k == b"":
                header = _header(v, path)
                continue
            try:
                name = k.decode("utf-8")
            except UnicodeDecodeError:
                raise ConvertError(path, "a tensor name is not UTF-8 (corrupt file)")
            entries.append(_entry(name, v, path))
    if header is None:
        raise ConvertError(path, "no bundle header (key \"\") in the index")
    num_shards, version = header
    for e in entries:
        if e.shard_id >= num_shards:
            raise ConvertError(path, f"entry '{e.name}': shard {e.shard_id} of {num_shards}")
    return Bundle(prefix, num_shards, entries, version)


def _shard(bundle, shard_id, shards):
    sp = bundle.shard_path(shard_id)
    if sp not in shards:
        try:
            shards[sp] = File(sp)
        except FileNotFoundError:
            raise ConvertError(sp, "data shard absent (only the .index is here)")
    return sp, shards[sp]


def open_shards(bundle, shards):
    """Opens the data shards (into `shards`) and checks the layout before any tensor is read:
    every entry's bytes lie inside its shard, and no two entries share bytes. TF's writer appends
    each tensor once; entries pointing at the same bytes would each be read (checked, held) again,
    so a small shard could stand for any amount of data."""
    spans = []
    for e in bundle.entries:
        sp, f = _shard(bundle, e.shard_id, shards)
        if e.offset > f.size or e.size > f.size - e.offset:
            raise ConvertError(sp, f"tensor '{e.name}': bytes [{e.offset}, {e.offset + e.size}) lie past the end of "
                                   f"the {f.size}-byte file (truncated or corrupt)")
        if e.size:
            spans.append((e.shard_id, e.offset, e.offset + e.size, e.name))
    spans.sort()
    for (s0, _, e0, n0), (s1, b1, _, n1) in zip(spans, spans[1:]):
        if s0 == s1 and b1 < e0:
            raise ConvertError(bundle.shard_path(s0), f"tensors '{n0}' and '{n1}' share bytes (corrupt index)")


def read_tensor(bundle, entry, shards, verify=True):
    """The tensor's array (TF layout), its masked crc32c verified. `shards` caches open files
    (open_shards first checks that the entries do not overlap)."""
    sp, _ = _shard(bundle, entry.shard_id, shards)
    itemsize = np.dtype(DTYPES[entry.dtype][1]).itemsize
    check_dims(sp, f"tensor '{entry.name}'", entry.shape, itemsize, shards[sp].size, "data shard")
    raw = shards[sp].read(entry.offset, entry.size, f"tensor '{entry.name}'")
    if verify and mask(crc32c(raw)) != entry.crc:
        raise ConvertError(sp, f"tensor '{entry.name}': crc32c mismatch (stored {entry.crc:#010x}, "
                               f"data gives {mask(crc32c(raw)):#010x}): corrupt shard")
    a = np.frombuffer(raw, dtype=DTYPES[entry.dtype][1]).reshape(entry.shape)
    if entry.dtype == 14:   # bfloat16: the high half of a float32
        a = (a.astype(np.uint32) << 16).view(np.float32)
    return a


def read_bundle(prefix, verify=True):
    """(Bundle, {name: array}) for every entry, in key order."""
    b = read_index(prefix)
    shards = {}
    try:
        open_shards(b, shards)
        return b, {e.name: read_tensor(b, e, shards, verify) for e in b.entries}
    finally:
        for f in shards.values():
            f.close()


# ---------------------------------------------------------------------------------------------
# writing, laid out as TF's BundleWriter + TableBuilder do

def encode_entry(e):
    """BundleEntryProto bytes, fields in number order, proto3 defaults (0) omitted as TF does."""
    shape = b"".join(wire.f_bytes(2, wire.f_varint(1, d) if d else b"") for d in e.shape)
    out = wire.f_varint(1, e.dtype) + wire.f_bytes(2, shape)
    if e.shard_id:
        out += wire.f_varint(3, e.shard_id)
    if e.offset:
        out += wire.f_varint(4, e.offset)
    if e.size:
        out += wire.f_varint(5, e.size)
    return out + wire.f_fixed32(6, e.crc)


def encode_header(num_shards, version=None):
    version = wire.f_varint(1, 1) if version is None else version   # VersionDef{producer: 1}
    return wire.f_varint(1, num_shards) + wire.f_bytes(3, version)


class _BlockBuilder:
    def __init__(self, restart_interval):
        self.interval, self.buf, self.restarts, self.count, self.last = restart_interval, bytearray(), [0], 0, b""

    def add(self, k, v):
        shared = 0
        if self.count < self.interval:
            m = min(len(k), len(self.last))
            while shared < m and k[shared] == self.last[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buf))
            self.count = 0
        self.buf += wire.varint(shared) + wire.varint(len(k) - shared) + wire.varint(len(v)) + k[shared:] + v
        self.last = k
        self.count += 1

    def size_estimate(self):
        return len(self.buf) + 4 * len(self.restarts) + 4

    def finish(self):
        return bytes(self.buf) + b"".join(r.to_bytes(4, "little") for r in self.restarts) + \
            len(self.restarts).to_bytes(4, "little")

    def empty(self):
        return not self.buf


def _separator(start, limit):
    """LevelDB's BytewiseComparator::FindShortestSeparator."""
    n = min(len(start), len(limit))
    i = 0
    while i < n and start[i] == limit[i]:
        i += 1
    if i < n and start[i] < 0xFF and start[i] + 1 < limit[i]:
        return start[:i] + bytes([start[i] + 1])
    return start


def _successor(k):
    """LevelDB's BytewiseComparator::FindShortSuccessor."""
    for i, c in enumerate(k):
        if c != 0xFF:
            return k[:i] + bytes([c + 1])
    return k


def build_table(items):
    """SSTable bytes for sorted (key, value) pairs, as leveldb::TableBuilder writes them."""
    out = bytearray()

    def write_block(contents):
        h = (len(out), len(contents))
        out.extend(contents + b"\0" + mask(crc32c(contents + b"\0")).to_bytes(4, "little"))
        return h

    def enc_handle(h):
        return wire.varint(h[0]) + wire.varint(h[1])

    data, index = _BlockBuilder(RESTART_INTERVAL), _BlockBuilder(1)
    pending, last = None, b""
    for k, v in items:
        if pending is not None:
            index.add(_separator(last, k), enc_handle(pending))
            pending = None
        data.add(k, v)
        last = k
        if data.size_estimate() >= BLOCK_SIZE:
            pending = write_block(data.finish())
            data = _BlockBuilder(RESTART_INTERVAL)
    if not data.empty():
        pending = write_block(data.finish())
    meta_h = write_block(_BlockBuilder(RESTART_INTERVAL).finish())
    if pending is not None:
        index.add(_successor(last), enc_handle(pending))
    index_h = write_block(index.finish())
    footer = enc_handle(meta_h) + enc_handle(index_h)
    footer += b"\0" * (40 - len(footer)) + MAGIC.to_bytes(8, "little")
    return bytes(out + footer)


def _tf_array(name, a):
    a = np.asarray(a)
    dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
    if dt not in NP_TO_DT:
        raise ConvertError(name, f"dtype {a.dtype} has no TF tensor-bundle equivalent here")
    return np.asarray(a, dtype=dt, order="C")   # (ascontiguousarray would turn a scalar into shape [1])


def write_bundle(prefix, tensors):
    """Writes {name: array} as PREFIX.index + PREFIX.data-00000-of-00001: one shard, entries and
    data in byte order of the names, data contiguous from offset 0 (what TF's saver produces)."""
    names = sorted(tensors, key=lambda n: n.encode("utf-8"))
    entries, chunks, offset = [], [], 0
    for n in names:
        a = _tf_array(n, tensors[n])
        raw = a.tobytes()
        entries.append(Entry(n, NP_TO_DT[a.dtype], a.shape, 0, offset, len(raw), mask(crc32c(raw))))
        chunks.append(raw)
        offset += len(raw)
    items = [(b"", encode_header(1))] + [(e.name.encode("utf-8"), encode_entry(e)) for e in entries]
    write_atomic(f"{prefix}.data-00000-of-00001", chunks)
    write_atomic(index_path(prefix), [build_table(items)])
    return entries


# ---------------------------------------------------------------------------------------------

def main(argv):
    if len(argv) != 2 or argv[0] != "dump":
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    b = read_index(strip_prefix(argv[1]))
    print(f"# {index_path(b.prefix)}: {len(b.entries)} entries, {b.num_shards} shard(s)")
    for e in b.entries:
        print(f"{e.name}\t{DTYPES[e.dtype][0]}\t{list(e.shape)}\tshard {e.shard_id}\toffset {e.offset}\t"
              f"size {e.size}\tcrc {e.crc:#010x}")
    return 0


if __name__ == "__main__":
    cli(main)
