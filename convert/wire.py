"""The protobuf wire format, by hand (no protobuf package): enough to read and write TF's
BundleHeaderProto/BundleEntryProto and MindSpore's Checkpoint/Value/TensorProto, and to write ONNX's
ModelProto (st2onnx.py). Every length is checked against the enclosing message, so a corrupt file
raises ConvertError, never loops."""
import struct

from common import ConvertError

VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5


def read_varint(buf, pos, end, path, what):
    """-> (value, next position). At most 10 bytes and below 2^64, as protobuf allows."""
    result = shift = 0
    while True:
        if pos >= end:
            raise ConvertError(path, f"{what}: truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift >= 70:
            raise ConvertError(path, f"{what}: bad varint (more than 10 bytes)")
    if result >> 64:
        raise ConvertError(path, f"{what}: bad varint (over 64 bits)")
    return result, pos


def fields(buf, start, end, path, what):
    """The fields of the message in buf[start:end] as a list of (number, wire type, value):
    value is an int for varint/fixed32/fixed64 and a (begin, end) pair for length-delimited."""
    out, pos = [], start
    while pos < end:
        key, pos = read_varint(buf, pos, end, path, what)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ConvertError(path, f"{what}: field number 0 (corrupt message)")
        if wt == VARINT:
            v, pos = read_varint(buf, pos, end, path, what)
        elif wt == FIXED64 or wt == FIXED32:
            n = 8 if wt == FIXED64 else 4
            if end - pos < n:
                raise ConvertError(path, f"{what}: truncated fixed{n * 8} field {num}")
            v = int.from_bytes(buf[pos:pos + n], "little")
            pos += n
        elif wt == BYTES:
            n, pos = read_varint(buf, pos, end, path, what)
            if n > end - pos:
                raise ConvertError(path, f"{what}: field {num} declares {n} bytes but only {end - pos} remain")
            v = (pos, pos + n)
            pos += n
        else:
            raise ConvertError(path, f"{what}: unsupported wire type {wt} in field {num} (corrupt message)")
        out.append((num, wt, v))
    return out


def signed64(v):
    return v - (1 << 64) if v >> 63 else v


# --- writing ---------------------------------------------------------------------------------

def varint(n):
    if n < 0:
        n += 1 << 64   # int64 negatives take 10 bytes, as protobuf writes them
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(num, wt):
    return varint(num << 3 | wt)


def f_varint(num, v):
    return key(num, VARINT) + varint(v)


def f_bytes(num, b):
    return key(num, BYTES) + varint(len(b)) + bytes(b)


def f_fixed32(num, v):
    return key(num, FIXED32) + int(v).to_bytes(4, "little")


def f_str(num, s):
    return f_bytes(num, s.encode("utf-8"))


def f_float(num, v):
    return key(num, FIXED32) + struct.pack("<f", v)


# A large message as a list of byte chunks (bytes, or memoryviews of arrays), so that weights are
# written without being copied into one buffer.

def f_chunks(num, chunks):
    """Field NUM holding the message made of CHUNKS: [key + length] + CHUNKS."""
    return [key(num, BYTES) + varint(chunks_len(chunks))] + list(chunks)


def chunks_len(chunks):
    return sum(memoryview(c).nbytes for c in chunks)
