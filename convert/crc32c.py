"""CRC32C (Castagnoli), as TF uses for tensor-bundle entries and table blocks, in numpy.

A byte-at-a-time loop in Python manages ~10 MB/s: too slow for a 400 MB BERT-base shard. So a long
buffer is cut into K chunks of L bytes whose CRCs advance together, one numpy step per byte column,
and the chunk CRCs are then chained with the operator "advance the register over L zero bytes"
(CRC is linear over GF(2): crc(state, chunk) = Z_L(state) ^ crc(0, chunk))."""
import numpy as np

POLY = 0x82F63B78   # reflected Castagnoli polynomial


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (POLY if c & 1 else 0)
        t.append(c)
    return t


TABLE = _table()
TABLE_NP = np.array(TABLE, dtype=np.uint32)
_zero_ops = {}


def _raw(crc, data):
    """Advances the CRC register over data (no init/final xor), byte by byte."""
    t = TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def _zero_op(L):
    """Z_L as four 256-entry tables, one per byte of the register."""
    if L not in _zero_ops:
        cols = np.array([1 << j for j in range(32)], dtype=np.uint32)
        for _ in range(L):
            cols = TABLE_NP[cols & 0xFF] ^ (cols >> 8)
        cols = [int(c) for c in cols]
        tabs = []
        for q in range(4):
            tab = [0] * 256
            for v in range(256):
                acc = 0
                for bit in range(8):
                    if v >> bit & 1:
                        acc ^= cols[q * 8 + bit]
                tab[v] = acc
            tabs.append(tab)
        _zero_ops[L] = tabs
    return _zero_ops[L]


def crc32c(data):
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8).reshape(-1)
    n = buf.size
    if n < (1 << 16):
        return _raw(0xFFFFFFFF, buf.tobytes()) ^ 0xFFFFFFFF
    L = 1 << max(10, (n.bit_length() + 1) // 2)   # about sqrt(n): balances numpy steps and the chaining loop
    K = n // L
    cols = np.ascontiguousarray(buf[:K * L].reshape(K, L).T)   # row i = byte i of every chunk
    lanes = np.zeros(K, dtype=np.uint32)
    for i in range(L):
        lanes = TABLE_NP[(lanes ^ cols[i]) & 0xFF] ^ (lanes >> 8)
    z0, z1, z2, z3 = _zero_op(L)
    s = 0xFFFFFFFF
    for r in lanes.tolist():
        s = z0[s & 0xFF] ^ z1[s >> 8 & 0xFF] ^ z2[s >> 16 & 0xFF] ^ z3[s >> 24] ^ r
    s = _raw(s, buf[K * L:].tobytes())
    return s ^ 0xFFFFFFFF


def mask(c):
    """The masked form LevelDB/TF store: rotate right by 15, add a constant."""
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def unmask(m):
    r = (m - 0xA282EAD8) & 0xFFFFFFFF
    return ((r >> 17) | (r << 15)) & 0xFFFFFFFF
