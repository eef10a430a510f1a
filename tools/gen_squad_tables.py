#!/usr/bin/python3
"""Generates the Unicode tables of examples/squad_eval.h (examples/squad.c's scoring) from Python's
own string methods.

The official SQuAD v1.1 metric (evaluate-v1.1.py) normalises answers with str.lower(), the regex
\\b(a|an|the)\\b (Python's \\b: a change between word and non-word characters, word = str.isalnum()
or "_") and str.split(). To score exactly as it does, examples/squad_eval.h needs per code point:
  lower   str.lower() of a single character where it is one other character, as runs
          {first, delta, count, step}: first + i*step maps to first + i*step + delta (i < count).
          The one multi-character lowering (U+0130 -> "i" U+0307) and Final_Sigma (U+03A3 -> U+03C2
          at a word's end) are handled in code, the latter with bert.h's tokenizer tables.
  word    the code points where "is a word character" changes, ascending, starting from
          "not a word character" at U+0000
  space   str.isspace()
Run it with Debian's /usr/bin/python3 (Python 3.11, Unicode 14.0.0, the version bert.h's tokenizer
tables come from):

    /usr/bin/python3 tools/gen_squad_tables.py                              # print the C tables
    /usr/bin/python3 tools/gen_squad_tables.py --write examples/squad_eval.h  # replace them between the markers
    /usr/bin/python3 tools/gen_squad_tables.py --check examples/squad_eval.h  # exit 1 if they differ
The script checks its compressed tables against the direct computation for every code point.
"""
import sys, unicodedata

N = 0x110000
BEGIN = "// BEGIN GENERATED SQUAD TABLES"
END = "// END GENERATED SQUAD TABLES"


def lower_runs():
    single = {}
    for c in range(N):
        low = chr(c).lower()
        if low != chr(c) and len(low) == 1 and c != 0x3A3:
            single[c] = ord(low)
    keys, runs, i = sorted(single), [], 0
    while i < len(keys):
        k, d, best = keys[i], single[keys[i]] - keys[i], (1, 1)
        for step in (1, 2):
            n = 1
            while i + n < len(keys) and keys[i + n] == k + n * step and single[keys[i + n]] - keys[i + n] == d:
                n += 1
            if n > best[0]:
                best = (n, step)
        runs.append((k, d, best[0], best[1]))
        i += best[0]
    return runs, single


def word_changes():
    w = [chr(c).isalnum() or c == 0x5F for c in range(N)]
    return [c for c in range(1, N) if w[c] != w[c - 1]], w


def check(runs, single, changes, w):
    got = {}
    for first, d, count, step in runs:
        for i in range(count):
            got[first + i * step] = first + i * step + d
    assert got == single, "lower runs do not reproduce str.lower()"
    multi = [c for c in range(N) if len(chr(c).lower()) > 1]
    assert multi == [0x130] and chr(0x130).lower() == "i\u0307", multi
    state, j = False, 0
    for c in range(N):
        while j < len(changes) and changes[j] <= c:
            state, j = not state, j + 1
        assert state == w[c], hex(c)


def render():
    runs, single = lower_runs()
    changes, w = word_changes()
    check(runs, single, changes, w)
    space = [c for c in range(N) if chr(c).isspace()]
    out = [BEGIN + ": /usr/bin/python3 tools/gen_squad_tables.py --write examples/squad_eval.h",
           "// from Python %s's str methods, Unicode %s. Do not edit by hand." % (sys.version.split()[0], unicodedata.unidata_version),
           "#define SQUAD_UNICODE_VERSION \"%s\"" % unicodedata.unidata_version,
           "typedef struct { uint32_t first; int32_t delta; uint16_t count, step; } lower_run;",
           "static const lower_run lower_runs[%d] = {" % len(runs)]
    cells = ["{0x%x,%d,%d,%d}" % r for r in runs]
    for i in range(0, len(cells), 6):
        out.append("    " + ",".join(cells[i:i + 6]) + ",")
    out.append("};")
    out.append("static const uint32_t word_changes[%d] = {" % len(changes))
    for i in range(0, len(changes), 12):
        out.append("    " + ",".join("0x%x" % c for c in changes[i:i + 12]) + ",")
    out.append("};")
    out.append("static const uint32_t space_chars[%d] = {" % len(space))
    for i in range(0, len(space), 16):
        out.append("    " + ",".join("0x%x" % c for c in space[i:i + 16]) + ",")
    out.append("};")
    out.append(END)
    return "\n".join(out) + "\n"


def main():
    args = sys.argv[1:]
    text = render()
    if not args:
        sys.stdout.write(text)
        return 0
    if len(args) != 2 or args[0] not in ("--write", "--check"):
        sys.exit(__doc__)
    src = open(args[1], encoding="utf-8").read()
    a, b = src.find(BEGIN), src.find(END)
    if a < 0 or b < 0:
        sys.exit("%s: no %s ... %s markers" % (args[1], BEGIN, END))
    b = src.index("\n", b) + 1
    if args[0] == "--check":
        same = src[a:b] == text
        print("%s: SQuAD scoring tables %s Python %s (Unicode %s)" % (args[1], "match" if same else "DIFFER from",
              sys.version.split()[0], unicodedata.unidata_version))
        return 0 if same else 1
    with open(args[1], "w", encoding="utf-8") as f:
        f.write(src[:a] + text + src[b:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
