#!/usr/bin/python3
"""Writes the texts that tests/test_tokenizer_data.sh tokenizes with bert.h and with
tests/ref/tokenizer_ref.py, as framed files ("<byte length>\\n<bytes>\\n" per text, so texts may
hold newlines), one per corpus, into OUT_DIR:

    /usr/bin/python3 tests/ref/tokenizer_corpora.py DATA_DIR OUT_DIR

  squad.txt    every context and question of squad/dev-v1.1.json
  cluener.txt  the "text" of every record of cluener2020/{train,dev,test}.json
  tnews.txt    the "sentence" of every record of tnews/*.json and tnews/clue1.1_public/*.json
  cola.txt     the sentence column of cola/*.tsv
  sample.txt   every line of bert_sample/sample_text.txt (empty ones too)
  unicode.txt  generated: every code point but the surrogates, 256 consecutive ones per text, then
               each once between capital sigmas ("AΣcΣ", for the Final_Sigma rule)
  fuzz.txt     generated: 20000 random strings over characters the tokenizer treats specially
               (unassigned and private-use ones too), words of 98-103 and 198-203 characters (the
               two max_input_chars_per_word), and 5000 random byte strings (mostly invalid UTF-8),
               seed 1234
Prints "NAME COUNT" per file written. A corpus whose source is missing is skipped.
"""
import glob
import json
import os
import random
import sys


def texts_squad(d):
    data = json.load(open(os.path.join(d, "squad/dev-v1.1.json"), encoding="utf-8"))["data"]
    for article in data:
        for p in article["paragraphs"]:
            yield p["context"]
            for qa in p["qas"]:
                yield qa["question"]


def json_lines(paths, key):
    for path in paths:
        for line in open(path, encoding="utf-8"):
            if line.strip():
                rec = json.loads(line)
                if key in rec:
                    yield rec[key]


def texts_cluener(d):
    return json_lines([os.path.join(d, "cluener2020", f + ".json") for f in ("train", "dev", "test")], "text")


def texts_tnews(d):
    paths = sorted(glob.glob(os.path.join(d, "tnews/*.json"))) + sorted(glob.glob(os.path.join(d, "tnews/clue1.1_public/*.json")))
    return json_lines(paths, "sentence")


def texts_cola(d):
    for f in ("in_domain_train", "in_domain_dev", "out_of_domain_dev"):
        for line in open(os.path.join(d, "cola", f + ".tsv"), "rb").read().decode("utf-8").split("\n"):
            if line:
                yield line.split("\t", 3)[3]


def texts_sample(d):
    lines = open(os.path.join(d, "bert_sample/sample_text.txt"), "rb").read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def texts_unicode(_):
    cps = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    for i in range(0, len(cps), 256):
        yield "".join(map(chr, cps[i:i + 256]))
    for i in range(0, len(cps), 256):
        yield " ".join("A\u03a3%s\u03a3" % chr(c) for c in cps[i:i + 256])


def texts_fuzz(_):
    special = ("AaZz09 \t\n\r\x00\x01\x0b\x0c\x1c\x7f\x85\xa0\xad\u00c0\u00e9\u00df\u0130\u0131\u03a3\u03c3\u03c2"
               "\u0390\u1f82\u0300\u0301\u0327\u0345\u0344\u0f73\u0f77\u0f71\u0f80\u0fb2\u0941\u093f"
               "\U0001d165\U0001d16d\U0001d160\u302e\u302f\u1715\U00016ff0\uac00\ud7a3\u1100\u3131"
               "\u4e2d\u6587\uf900\U0002f800\u3002\uff0c\u3000\u2028\u2029\u200b\u200d\ufeff\ufffd"
               "'.:^`\u00b7\u2019!\"#$%&()*+,-/;<=>?@[\\]_{|}~\u00a1\u00bf\u2014\u2026"
               "\U0001f600\U0001f44d\U0001f3fb\u2764\ufe0f\U000e0001\U0010fffd\u0628\u064e\u05d0\u05b8"
               "\u00c5\u212b\u1e9e\ufb01\u2126\u1e0a\u0323\u0307\u01c5\u1f88\u24b6\U00010400"
               "\ue000\uf8ff\U000f0000\U00100000\u0378\ufdd0\uffff\U0010ffff\u00ad\u2060\x85\x9f")
    rng = random.Random(1234)
    for _ in range(20000):
        yield "".join(rng.choice(special) for _ in range(rng.randint(0, 40)))
    for n in [*range(98, 104), *range(198, 204)]:   # around max_input_chars_per_word, counted after normalisation
        yield "a" * n
        yield "x" * (n - 1) + "\u00e9 " + "Z\u0301" * n + " " + "\u0130" * n + " " + "ab" * (n // 2) + "!"
        yield "b" * (n - 1) + "\ue000 " + "\u200b".join("c" * n) + " " + "d" * (n - 2) + "\U000f0000\u0378e"
    for _ in range(5000):
        yield bytes(rng.choice((rng.randrange(256), rng.randrange(0x80, 0x100), 0x41, 0x20))
                    for _ in range(rng.randint(0, 24)))


CORPORA = [("squad", texts_squad, "squad/dev-v1.1.json"), ("cluener", texts_cluener, "cluener2020/train.json"),
           ("tnews", texts_tnews, "tnews"), ("cola", texts_cola, "cola/in_domain_train.tsv"),
           ("sample", texts_sample, "bert_sample/sample_text.txt"), ("unicode", texts_unicode, ""), ("fuzz", texts_fuzz, "")]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data, out = sys.argv[1], sys.argv[2]
    for name, gen, probe in CORPORA:
        if probe and not os.path.exists(os.path.join(data, probe)):
            continue
        n = 0
        with open(os.path.join(out, name + ".txt"), "wb") as f:
            for t in gen(data):
                b = t if isinstance(t, bytes) else t.encode("utf-8", "surrogatepass")
                f.write(b"%d\n%s\n" % (len(b), b))
                n += 1
        print(name, n)


if __name__ == "__main__":
    main()
