#!/usr/bin/python3
"""Generates the Unicode tables of bert.h's WordPiece tokenizer from Python's unicodedata.

Run it with Debian's /usr/bin/python3 (Python 3.11, unicodedata.unidata_version 14.0.0): the
pyenv python3 first on PATH on the dev machines may carry another Unicode version.

    /usr/bin/python3 tools/gen_unicode_tables.py               # print the C tables
    /usr/bin/python3 tools/gen_unicode_tables.py --write bert.h  # replace them between the markers
    /usr/bin/python3 tools/gen_unicode_tables.py --check bert.h  # exit 1 if bert.h's tables differ

What the tokenizer needs, per code point, so that it does what google-research/bert's
tokenization.py does under this Python:
  class   CTRL   dropped by _clean_text (U+0000, U+FFFD, and _is_control: category C*, except
                 \\t \\n \\r)
          WS     a word separator: _is_whitespace (space \\t \\n \\r, category Zs), which
                 _clean_text turns into a space, plus the str.isspace() characters that survive
                 _clean_text (U+2028, U+2029), on which whitespace_tokenize's str.split() splits
          PUNCT  _is_punctuation: ASCII 33-47, 58-64, 91-96, 123-126, or category P*
          GONE   uncased only: lower() + NFD leaves nothing but nonspacing marks (Mn) with a
                 nonzero combining class, so _run_strip_accents drops everything it becomes
          MN0    category Mn with combining class 0: dropped after canonical reordering (it still
                 separates reorder runs)
  case    for str.lower()'s Final_Sigma rule: CASED (cased and not case-ignorable) or IGNORABLE
          (case-ignorable), measured by asking lower() itself, so it is Python's notion exactly
  map     uncased only: strip(NFD(lower(c))) where it differs from c, strip() removing the Mn
          characters of nonzero combining class (those never separate reorder runs, so dropping
          them before the reordering changes nothing). Hangul syllables are decomposed in code.
  space   str.isspace(), for str.strip() of vocab lines
  ccc     the canonical combining class of the non-Mn characters that have one (the only
          characters whose relative order NFD's canonical reordering can change in the output)
The script checks its own compressed tables against the direct computation for every code point.
"""
import sys, unicodedata

N = 0x110000
CTRL, WS, PUNCT, GONE, MN0 = 1, 2, 3, 4, 5
CASED, IGNORABLE = 1, 2
cat = [unicodedata.category(chr(c)) for c in range(N)]
ccc = [unicodedata.combining(chr(c)) for c in range(N)]


def is_whitespace(ch):   # tokenization.py's _is_whitespace
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch):      # tokenization.py's _is_control
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def is_punctuation(ch):  # tokenization.py's _is_punctuation
    cp = ord(ch)
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or \
        unicodedata.category(ch).startswith("P")


def hangul(c):
    return 0xAC00 <= c <= 0xD7A3


def mapped(c):
    """strip(NFD(lower(c))) as a list of code points (Mn of nonzero class removed)."""
    d = unicodedata.normalize("NFD", chr(c).lower())
    return [ord(x) for x in d if not (cat[ord(x)] == "Mn" and ccc[ord(x)])]


def classify(c):
    ch = chr(c)
    if c == 0 or c == 0xFFFD or is_control(ch):
        return CTRL
    if is_whitespace(ch) or ch.isspace():
        return WS
    if is_punctuation(ch):
        return PUNCT
    if not (0xD800 <= c < 0xE000) and mapped(c) == []:
        return GONE
    if cat[c] == "Mn" and ccc[c] == 0:
        return MN0
    return 0


def case_class(c):
    ch = chr(c)
    if (ch + "\u03a3").lower()[-1] == "\u03c2":        # cased and not case-ignorable
        return CASED
    if ("A" + ch + "\u03a3").lower()[-1] == "\u03c2":  # skipped over: case-ignorable
        return IGNORABLE
    return 0


def runs(values):
    """[(first, value)] where the value changes."""
    out, prev = [], None
    for c, v in enumerate(values):
        if v != prev:
            out.append((c, v))
            prev = v
    return out


def build():
    cls = [classify(c) for c in range(N)]
    case = [case_class(c) for c in range(N)]
    singles, multis = {}, {}
    for c in range(N):
        if 0xD800 <= c < 0xE000 or hangul(c) or cls[c] == GONE:
            continue
        m = mapped(c)
        if m != [c]:
            (singles if len(m) == 1 else multis)[c] = m
    # sanity: what the C code assumes about the mapped text
    for c in range(N):
        if 0xD800 <= c < 0xE000 or cls[c] in (CTRL, WS):
            continue
        m = mapped(c)
        assert len(chr(c).lower()) <= 3 and len(m) <= 3, hex(c)
        for x in m:
            assert cls[x] not in (CTRL, WS, GONE), (hex(c), hex(x))     # no new separators or drops
            assert (cls[x] == MN0) == (cat[x] == "Mn"), (hex(c), hex(x))
            assert mapped(x) == [x] or hangul(x), (hex(c), hex(x))          # already normal
        if cls[c] == 0 and cat[c] == "Mn":
            raise AssertionError("Mn of nonzero class that is not GONE: " + hex(c))
    assert chr(0x3A3).lower() == "\u03c3" and mapped(0x3A3) == [0x3C3]
    # greedy runs over consecutive keys: key = first + i*kstep, value = v0 + i*vstep
    keys = sorted(singles)
    mruns, i = [], 0
    while i < len(keys):
        k0, v0 = keys[i], singles[keys[i]][0]
        j = i + 1
        if j < len(keys):
            ks, vs = keys[j] - k0, singles[keys[j]][0] - v0
            if 1 <= ks <= 255 and -128 <= vs <= 127:
                while j < len(keys) and keys[j] == k0 + (j - i) * ks and singles[keys[j]][0] == v0 + (j - i) * vs:
                    j += 1
            else:
                j = i + 1
        n = j - i
        if n == 1:
            ks, vs = 1, 0
        mruns.append((k0, v0, n, ks, vs))
        i = j
    nonmn = sorted((c, ccc[c]) for c in range(N) if ccc[c] and cat[c] != "Mn")
    return cls, case, singles, multis, mruns, nonmn


def check(cls, case, singles, multis, mruns, nonmn):
    """Decode the compressed tables as the C code does and compare with the direct computation."""
    import bisect
    crun, krun = runs(cls), runs(case)
    cfirst, kfirst = [r[0] for r in crun], [r[0] for r in krun]
    mfirst = [r[0] for r in mruns]
    for c in range(N):
        assert crun[bisect.bisect_right(cfirst, c) - 1][1] == cls[c]
        assert krun[bisect.bisect_right(kfirst, c) - 1][1] == case[c]
        got = [c]
        if c in multis:
            got = multis[c]
        else:
            r = bisect.bisect_right(mfirst, c) - 1
            if r >= 0:
                k0, v0, n, ks, vs = mruns[r]
                if (c - k0) % ks == 0 and (c - k0) // ks < n:
                    got = [v0 + (c - k0) // ks * vs]
        want = singles.get(c, multis.get(c, [c]))
        assert got == want, hex(c)


def emit(cls, case, singles, multis, mruns, nonmn):
    crun, krun = runs(cls), runs(case)
    L = []
    L.append("// BEGIN GENERATED UNICODE TABLES: /usr/bin/python3 tools/gen_unicode_tables.py --write bert.h")
    L.append("// from Python's unicodedata, Unicode %s. Do not edit by hand." % unicodedata.unidata_version)
    L.append('#define BERT__UNICODE_VERSION "%s"' % unicodedata.unidata_version)
    L.append("enum { BERT__UC_CTRL = %d, BERT__UC_WS, BERT__UC_PUNCT, BERT__UC_GONE, BERT__UC_MN0 };" % CTRL)
    L.append("enum { BERT__UC_CASED = %d, BERT__UC_IGNORABLE };" % CASED)

    def table(decl, items, per_line, fmt):
        L.append(decl + " = {")
        for i in range(0, len(items), per_line):
            L.append("    " + ",".join(fmt(x) for x in items[i:i + per_line]) + ",")
        L.append("};")

    L.append("// character class runs: (first code point << 3) | class, sorted; a run lasts until the next")
    table("static const uint32_t bert__uc_class[%d]" % len(crun), crun, 12, lambda r: "0x%x" % (r[0] << 3 | r[1]))
    L.append("// the class of each ASCII character directly (the common case skips the search)")
    table("static const unsigned char bert__uc_ascii_class[128]", cls[:128], 32, lambda v: "%d" % v)
    L.append("// case runs for Final_Sigma: (first code point << 2) | case class")
    table("static const uint32_t bert__uc_case[%d]" % len(krun), krun, 12, lambda r: "0x%x" % (r[0] << 2 | r[1]))
    L.append("// uncased single-character map runs {first, value, count, key step, value step}: for i < count,")
    L.append("// first + i*key_step maps to value + i*value_step")
    table("static const bert__uc_run bert__uc_map[%d]" % len(mruns), mruns, 6,
          lambda r: "{0x%x,0x%x,%d,%d,%d}" % r)
    L.append("// uncased multi-character maps {code point, up to 3 code points (0 = none)}")
    items = [(c,) + tuple(m + [0] * (3 - len(m))) for c, m in sorted(multis.items())]
    table("static const uint32_t bert__uc_multi[%d][4]" % len(items), items, 5, lambda r: "{0x%x,0x%x,0x%x,0x%x}" % r)
    L.append("// canonical combining class of the non-Mn characters that have one {code point, class}")
    table("static const uint32_t bert__uc_ccc[%d][2]" % len(nonmn), nonmn, 8, lambda r: "{0x%x,%d}" % r)
    space = [c for c in range(N) if chr(c).isspace()]
    L.append("// str.isspace(), which str.strip() strips from vocab lines")
    table("static const uint32_t bert__uc_space[%d]" % len(space), space, 16, lambda c: "0x%x" % c)
    L.append("// END GENERATED UNICODE TABLES")
    return "\n".join(L) + "\n"


def main():
    tables = build()
    check(*tables)
    text = emit(*tables)
    if len(sys.argv) == 3 and sys.argv[1] in ("--write", "--check"):
        path = sys.argv[2]
        src = open(path, encoding="utf-8").read()
        a = src.find("// BEGIN GENERATED UNICODE TABLES")
        b = src.find("// END GENERATED UNICODE TABLES")
        if a < 0 or b < 0:
            sys.exit("%s: no GENERATED UNICODE TABLES markers" % path)
        b = src.index("\n", b) + 1
        if sys.argv[1] == "--check":
            if src[a:b] != text:
                sys.exit("%s: Unicode tables differ from tools/gen_unicode_tables.py's output" % path)
            print("%s: Unicode tables up to date (Unicode %s)" % (path, unicodedata.unidata_version))
        elif src[a:b] != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(src[:a] + text + src[b:])
    elif len(sys.argv) == 1:
        sys.stdout.write(text)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
