#!/usr/bin/python3
"""Writes tests/data/tokenizer_modes.json, the fixture of tests/test_tokenizer.c's test_modes: texts
where google-research/bert's tokenization.py (bert.h's BERT_TOKENIZE_GOOGLE) and Hugging Face's
BertTokenizer (BERT_TOKENIZE_HF) part ways, and texts where they must not, with the ids and basic
words of each, uncased and cased, on a small vocab kept in the fixture.

    /usr/bin/python3 tests/ref/tokenizer_modes_ref.py [--google TOKENIZATION_PY] [--check] OUT.json

The expectations come from tests/ref/tokenizer_ref.py (default rules, and --hf's). With --google,
the google expectations are also computed by the real tokenization.py at that path (a checkout of
github.com/google-research/bert; its `tensorflow` import is stubbed, only tf.gfile.GFile is used)
and must be identical. --check compares with OUT.json instead of writing it (exit 1 on a difference).

The texts only use characters whose category every Unicode version so far agrees on (noncharacters
are Cn for good; U+0378 has been unassigned since Unicode 1.1; the private-use ranges are fixed), so
the fixture does not depend on the Python that wrote it. Categories are asserted below.
"""
import importlib.util
import json
import os
import sys
import tempfile
import types
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizer_ref  # noqa: E402

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", ",", "!", "-", "abc", "##abc", "##ab", "##a",
         "e", "##e", "\ue000", "##\ue000", "\u4e2d", "\u6587", "\u03c3", "\u03c2", "\u03b1", "##\u03c3", "##\u03c2"]

ABC = "abc" * 70


def cases():
    c = []
    for n in (99, 100, 101, 150, 200, 201):   # abc ##abc ... (##a | ##ab): the two limits, in code points
        c.append(("a word of %d characters" % n, ABC[:n]))
    c += [
        ("101 and 200 characters upper case (lowered before the count)", ABC[:101].upper() + " " + ABC[:200].upper()),
        ("120 e + U+0301: 120 characters uncased, 240 cased", "e\u0301" * 120),
        ("150 characters and a soft hyphen (Cf, dropped before the count)", ABC[:75] + "\u00ad" + ABC[75:150]),
        ("100 characters + U+E000: 101 under google, 100 under hf", ABC[:100] + "\ue000"),
        ("200 characters + U+E000: 201 under google", ABC[:200] + "\ue000"),
        ("two 150-character words around '-'", ABC[:150] + "-" + ABC[:150]),
        ("U+E000 (Co) alone and in words", "\ue000 abc\ue000 \ue000abc \ue000!"),
        ("U+F8FF U+F0000 U+FFFFD U+100000 U+10FFFD (Co)", "\uf8ff abc\U000f0000 \U000ffffd hello\U00100000 \U0010fffd"),
        ("U+0378 U+FDD0 U+FFFF U+10FFFF U+2FFFE (Cn)", "abc\u0378 \ufdd0 hello\uffffworld \U0010ffff \U0002fffe!"),
        ("Co and Cn between CJK ideographs", "\u4e2d\ue000\u6587 \u4e2d\ufdd0\u6587"),
        ("Final_Sigma with U+E000 after the sigma", "\u0391\u03a3\ue000\u0391 \u0391\u03a3\ue000"),
        ("Final_Sigma: none under hf (it lowercases character by character)", "\u0391\u03a3 \u0391\u03a3\u03a3 \u0391\u03a3."),
        ("Cf dropped in both: U+00AD 200B 200D 2060 FEFF 0600 E0001 110BD",
         "hel\u00adlo wor\u200bld hel\u200dlo \u2060world \ufeffhello \u0600abc \U000e0001hello abc\U000110bd"),
        ("Cc dropped in both: U+0001 007F 009F, and U+0085 (no split)",
         "hello\u0001world \u007fhello \u0085world hello\u0085world \u009fabc"),
        ("tab, newline, CR split in both", "hello\tworld\nabc\rhello"),
        ("NUL and U+FFFD dropped in both", "hel\u0000lo \ufffdworld"),
        ("ordinary text", "Hello, world! abcabc e"),
    ]
    return c


CATEGORIES = {"\ue000": "Co", "\uf8ff": "Co", "\U000f0000": "Co", "\U000ffffd": "Co", "\U00100000": "Co",
              "\U0010fffd": "Co", "\u0378": "Cn", "\ufdd0": "Cn", "\uffff": "Cn", "\U0010ffff": "Cn", "\U0002fffe": "Cn",
              "\u00ad": "Cf", "\u200b": "Cf", "\u200d": "Cf", "\u2060": "Cf", "\ufeff": "Cf", "\u0600": "Cf",
              "\U000e0001": "Cf", "\U000110bd": "Cf", "\u0001": "Cc", "\u007f": "Cc", "\u0085": "Cc", "\u009f": "Cc"}


def ours(text, lower, hf):
    vocab = {t: i for i, t in enumerate(VOCAB)}
    words = tokenizer_ref.basic_tokenize(text, lower, hf)
    limit = tokenizer_ref.MAX_CHARS_HF if hf else tokenizer_ref.MAX_CHARS
    return " ".join(words), [vocab[p] for w in words for p in tokenizer_ref.wordpiece(w, vocab, limit)]


def google_module(path):
    sys.modules.setdefault("tensorflow", types.SimpleNamespace(
        gfile=types.SimpleNamespace(GFile=lambda p, mode="r": open(p, mode, encoding="utf-8"))))
    spec = importlib.util.spec_from_file_location("google_tokenization", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def google(mod, vocab_path, text, lower):
    full = mod.FullTokenizer(vocab_path, do_lower_case=lower)
    return " ".join(full.basic_tokenizer.tokenize(text)), full.convert_tokens_to_ids(full.tokenize(text))


def main():
    args = [a for a in sys.argv[1:]]
    check = "--check" in args
    gpath = None
    if "--google" in args:
        i = args.index("--google")
        gpath = args[i + 1]
        del args[i:i + 2]
    args = [a for a in args if a != "--check"]
    if len(args) != 1:
        sys.exit(__doc__)
    for ch, cat in CATEGORIES.items():
        assert unicodedata.category(ch) == cat, (hex(ord(ch)), unicodedata.category(ch), cat)
    mod = google_module(gpath) if gpath else None
    tmp = None
    if mod:
        tmp = tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False)
        tmp.write("\n".join(VOCAB) + "\n")
        tmp.close()
    out = {"about": "tests/ref/tokenizer_modes_ref.py: ids and basic words under tokenization.py's rules (google) and "
                    "BertTokenizer's (hf), uncased and cased, on this vocab (a token's id is its index)",
           "google_checked": "google ids and words equal to google-research/bert's tokenization.py's" if mod else "no",
           "unicode": unicodedata.unidata_version, "vocab": VOCAB, "cases": []}
    differ = 0
    for name, text in cases():
        case = {"name": name, "text": text}
        for mode in ("google", "hf"):
            case[mode] = {}
            for label, lower in (("uncased", True), ("cased", False)):
                words, ids = ours(text, lower, mode == "hf")
                if mod and mode == "google":
                    gw, gi = google(mod, tmp.name, text, lower)
                    assert (gw, gi) == (words, ids), (name, label, gw, words, gi, ids)
                case[mode][label] = {"words": words, "ids": ids}
        differ += case["google"] != case["hf"]
        out["cases"].append(case)
    if tmp:
        os.unlink(tmp.name)
    ncases = len(out["cases"])
    cases_json = ",\n".join("  " + json.dumps(c) for c in out.pop("cases"))
    text = json.dumps(out)[:-1] + ', "cases": [\n' + cases_json + "\n]}\n"   # a case per line
    if check:   # everything but whether tokenization.py checked it
        old = json.load(open(args[0], encoding="utf-8"))
        new = json.loads(text)
        old.pop("google_checked")
        new.pop("google_checked")
        same = old == new
        print("%s: %s" % (args[0], "up to date" if same else "differs"))
        sys.exit(0 if same else 1)
    with open(args[0], "w", encoding="utf-8") as f:
        f.write(text)
    print("%s: %d cases, %d differ between the modes%s" % (args[0], ncases, differ,
                                                         "; google ids checked against " + gpath if mod else ""))


if __name__ == "__main__":
    main()
