"""Shared plumbing for the converters: the one error type, the command-line wrapper that turns
any failure into one line `convert: FILE: problem`, bounded file reading, and bert.h's config.

Every converter is `python3 convert/X.py ...` with python3 + numpy only."""
import json
import math
import os
import reprlib
import sys

import numpy as np


class ConvertError(Exception):
    """A problem with an input or output file, reported as `convert: PATH: problem`."""

    def __init__(self, path, problem):
        problem = one_line(problem)
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = str(path), problem


def one_line(text):
    """Names read from a corrupt file may hold newlines or control characters (\\x1e, \\x85 also
    end a line for str.splitlines): escaped, so a message stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def note(msg):
    """A remark for the user (skipped tensors, filled heads): stderr, never an error."""
    print(f"convert: note: {one_line(msg)}", file=sys.stderr)


# The file being read right now, so that an unexpected exception can still name it.
_current = ["?"]


def set_current(path):
    _current[0] = str(path)


def cli(main):
    sys.exit(run(main, sys.argv[1:]))


def run(main, argv):
    """Runs main(argv) and returns the exit status. Errors become one line on stderr and status 1;
    a Python traceback is never shown (it would bury the one fact the user needs: which file, what)."""
    _current[0] = "?"
    try:
        rc = main(argv)
    except ConvertError as e:
        print(f"convert: {e}", file=sys.stderr)
        rc = 1
    except BrokenPipeError:   # `... dump X | head`
        rc = 0
    except OSError as e:   # missing file, permission, disk full
        where = e.filename if e.filename is not None else _current[0]
        print(f"convert: {where}: {e.strerror or e}", file=sys.stderr)
        rc = 1
    except MemoryError:
        print(f"convert: {_current[0]}: out of memory", file=sys.stderr)
        rc = 1
    except KeyboardInterrupt:
        rc = 130
    except Exception as e:   # a bug or a case we did not foresee: still one line, with the file
        msg = "".join(c if c.isprintable() else " " for c in f"{type(e).__name__}: {e}")
        print(f"convert: {_current[0]}: internal error ({msg})", file=sys.stderr)
        rc = 1
    return rc or 0


class File:
    """A read-only file read by ranges; every range is checked against the file size first, so a
    corrupt size or offset gives an error instead of a short read or a huge allocation."""

    def __init__(self, path):
        self.path = str(path)
        set_current(self.path)
        self.f = open(self.path, "rb")
        self.size = os.fstat(self.f.fileno()).st_size

    def read(self, offset, n, what="data"):
        if offset < 0 or n < 0 or offset > self.size or n > self.size - offset:
            raise ConvertError(self.path, f"{what}: bytes [{offset}, {offset + n}) lie past the end of the "
                                          f"{self.size}-byte file (truncated or corrupt)")
        self.f.seek(offset)
        b = self.f.read(n)
        if len(b) != n:
            raise ConvertError(self.path, f"{what}: short read")
        return b

    def close(self):
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_dims(path, what, shape, itemsize, available, where="file"):
    """Refuses a shape that cannot be backed by `available` bytes, before anything is allocated for
    it: the dims (0 counted as 1, so an empty tensor with huge other dims is caught too, which
    numpy refuses to even describe) times the item size. Python ints: no int64 wrap."""
    span = itemsize
    for d in shape:
        span *= max(d, 1)
    if span > available:
        raise ConvertError(path, f"{what}: shape {list(shape)} is larger than the whole {available}-byte {where}")


def read_all(path, limit=1 << 30):
    with File(path) as f:
        if f.size > limit:
            raise ConvertError(path, f"{f.size} bytes is larger than this reader accepts ({limit})")
        return f.read(0, f.size)


def write_atomic(path, chunks):
    """Writes the byte chunks to PATH.tmp, syncs, renames over PATH: a failed conversion never
    leaves a half-written checkpoint under the final name."""
    path = str(path)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------------------------------------
# bert.h's config: the bert_config.json keys, written into the safetensors __metadata__ "config"
# in the order bert_config_to_json() writes them.

CONFIG_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
               "max_position_embeddings", "type_vocab_size", "hidden_act", "hidden_dropout_prob",
               "attention_probs_dropout_prob", "initializer_range", "layer_norm_eps")
CONFIG_DEFAULTS = {"max_position_embeddings": 512, "type_vocab_size": 2, "hidden_act": "gelu",
                   "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
                   "initializer_range": 0.02, "layer_norm_eps": 1e-12}
REQUIRED_KEYS = CONFIG_KEYS[:5]
# bert.h's bounds (bert__config_check: "sizes are implausibly large"). Past them a config is corrupt,
# and num_hidden_layers sizes the name table (16 rows per layer) before any tensor is read.
LIMITS = {"vocab_size": 1 << 24, "hidden_size": 1 << 16, "num_hidden_layers": 1024, "intermediate_size": 1 << 18,
          "max_position_embeddings": 1 << 20, "type_vocab_size": 1 << 16}

# bert.h's reading of hidden_act (bert__act_parse): "gelu" is HF's exact erf form; these are tanh.
TANH_ACTS = ("gelu_tanh", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_google")
ERF_ACTS = ("gelu", "gelu_erf")


def json_loads(text, path, what):
    """json.loads of bytes or str; every way a corrupt file makes it fail (bad UTF-8, bad syntax,
    nesting deep enough to exhaust the recursion limit) is a ConvertError "WHAT: reason"."""
    try:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ConvertError(path, f"{what}: {e}")


def load_config_json(path):
    cfg = json_loads(read_all(path, 1 << 20), path, "not a JSON config")
    if not isinstance(cfg, dict):
        raise ConvertError(path, "not a JSON object")
    return cfg


# NEZHA (relative positions) in a config: Huawei's bert_config "use_relative_position", MindSpore's
# yaml "use_relative_positions", transformers' "model_type": "nezha" (bert.h reads all three).
# K: "max_relative_position" (NEZHA-PyTorch's bert_config.json, NezhaConfig, bert.h), else 64: the
# value Huawei's NEZHA-TensorFlow attention_layer hard-codes and NezhaConfig's default.
RELATIVE_KEYS = ("use_relative_position", "use_relative_positions")
DEFAULT_MAX_RELATIVE = 64
MAX_RELATIVE_LIMIT = 1 << 16   # bert.h: "max_relative_position must be in [1, 65536]"
FLAVOUR_SPELLINGS = {"huawei": "huawei", "fixed": "huawei", "mindspore": "mindspore", "learned": "mindspore"}


def says_relative(src, source_path):
    """True when a config dict asks for NEZHA's relative positions (never guessed from tensors)."""
    on = False
    for k in RELATIVE_KEYS:
        if k in src:
            if not isinstance(src[k], bool):
                raise ConvertError(source_path, f"config \"{k}\" must be true or false, not {reprlib.repr(src[k])}")
            on |= src[k]
    return on or src.get("model_type") == "nezha"


def relative_config(src, source_path, flavour=None):
    """bert.h's NEZHA keys for a config dict that says relative: (K, flavour). `flavour` is what the
    checkpoint format holds ("huawei": no table, Huawei TF / transformers; "mindspore": learned
    tables); a "relative_position_flavour" in the config must agree with it."""
    K = src.get("max_relative_position", DEFAULT_MAX_RELATIVE)
    if not isinstance(K, int) or isinstance(K, bool) or not 1 <= K <= MAX_RELATIVE_LIMIT:
        raise ConvertError(source_path, f"config \"max_relative_position\" must be an integer in [1, {MAX_RELATIVE_LIMIT}], "
                                        f"not {reprlib.repr(K)}")
    said = src.get("relative_position_flavour")
    if said is not None:
        if said not in FLAVOUR_SPELLINGS:
            raise ConvertError(source_path, f"config \"relative_position_flavour\" must be \"huawei\" or \"mindspore\", "
                                            f"not {reprlib.repr(said)}")
        said = FLAVOUR_SPELLINGS[said]
        if flavour is not None and said != flavour:
            raise ConvertError(source_path, f"config says relative_position_flavour \"{said}\", but this checkpoint "
                                            f"format holds the \"{flavour}\" flavour")
    return K, flavour or said or "huawei"


def bert_config(src, source_path, act=None, eps=None, flavour=None, relative=None):
    """bert.h's config from a bert_config.json / config.json dict. `act` overrides hidden_act with
    bert.h's meaning ("gelu" = erf, "gelu_tanh" = tanh); `eps` fills layer_norm_eps if absent.
    NEZHA: when the config says so, or `relative` is K read from learned tables found in the
    checkpoint, the keys use_relative_position, max_relative_position and relative_position_flavour
    (`flavour`, see relative_config) are added."""
    cfg = {}
    for k in CONFIG_KEYS:
        if k in src:
            cfg[k] = src[k]
        elif k in REQUIRED_KEYS:
            raise ConvertError(source_path, f"config has no \"{k}\"")
        else:
            cfg[k] = CONFIG_DEFAULTS[k]
    if eps is not None and "layer_norm_eps" not in src:
        cfg["layer_norm_eps"] = eps
    if act is not None:
        cfg["hidden_act"] = act
    for k in REQUIRED_KEYS + ("max_position_embeddings", "type_vocab_size"):
        if not isinstance(cfg[k], int) or isinstance(cfg[k], bool) or cfg[k] <= 0:
            raise ConvertError(source_path, f"config \"{k}\" must be a positive integer, not {reprlib.repr(cfg[k])}")
        if cfg[k] > LIMITS.get(k, cfg[k]):
            raise ConvertError(source_path, f"config \"{k}\" = {cfg[k]} is larger than bert.h accepts ({LIMITS[k]})")
    if cfg["hidden_act"] not in TANH_ACTS + ERF_ACTS:
        raise ConvertError(source_path, f"hidden_act {reprlib.repr(cfg['hidden_act'])} is not supported by bert.h "
                                        f"(gelu erf or tanh only)")
    if relative is not None or says_relative(src, source_path):
        K, fl = relative_config(src, source_path, flavour)
        if relative is not None:   # K read from the learned tables' shape
            if "max_relative_position" in src and src["max_relative_position"] != relative:
                raise ConvertError(source_path, f"config \"max_relative_position\" {src['max_relative_position']} "
                                                f"disagrees with the relative-position tables' {2 * relative + 1} rows (K {relative})")
            K = relative
        cfg.update(use_relative_position=True, max_relative_position=K, relative_position_flavour=fl)
        if fl == "huawei" and (cfg["hidden_size"] // cfg["num_attention_heads"]) % 2:
            raise ConvertError(source_path, "NEZHA's fixed sinusoid table needs an even head size "
                                            "(hidden_size / num_attention_heads)")
    return cfg


def step_value(a, path):
    """global_step as an int: one finite, whole, non-negative value below 2^63 (a corrupt file may
    hold no value, several, NaN or 1e30 there)."""
    a = np.asarray(a).reshape(-1)
    if a.size != 1:
        raise ConvertError(path, f"global_step holds {a.size} values, expected one")
    v = a[0].item()
    if isinstance(v, float) and not (math.isfinite(v) and v.is_integer()):
        raise ConvertError(path, f"global_step {v} is not a whole number")
    if not 0 <= int(v) < 1 << 63:
        raise ConvertError(path, f"global_step {int(v)} is negative or too large")
    return int(v)


NEZHA_KEYS = ("use_relative_position", "max_relative_position", "relative_position_flavour")


def config_to_json(cfg):
    """bert_config_to_json's keys and order; NEZHA's three keys last, only for a NEZHA model."""
    keys = CONFIG_KEYS + (NEZHA_KEYS if cfg.get("use_relative_position") else ())
    return json.dumps({k: cfg[k] for k in keys})


def model_metadata(cfg, source):
    """__metadata__ for a model file: what bert_model_save writes, plus where it came from."""
    return {"format": "pt", "producer": "bert.h", "format_version": "1", "config": config_to_json(cfg), "converted_from": source}


def truncated_normal(shape, std, rng):
    """Google's init (truncated at 2 std), for pretraining heads absent from a checkpoint."""
    out = rng.standard_normal(size=shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = np.abs(out) > 2.0
    return (out * std).astype(np.float32)
