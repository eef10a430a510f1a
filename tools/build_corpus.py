#!/usr/bin/python3
"""build_corpus.py DATA_DIR OUT_DIR [--heldout_articles N] [--lang zh] - issue 27's pretraining corpora.

All the English text in ../shared/data as create_pretraining_data documents (one sentence per line, a
blank line between documents, documents kept whole), written as two files:
  OUT_DIR/train.txt    SQuAD v1.1 dev contexts of every article but the last N (one document per
                       paragraph, sentences split as tools/squad_to_text.py does), Google's
                       sample_text.txt (its own documents), the TRAINING splits of SST-2, CoLA
                       (in-domain) and MRPC (each in order, 20 sentences per pseudo-document: they are
                       single sentences with no document structure; an MRPC pair's two sentences stay in
                       the same document, one after the other)
  OUT_DIR/heldout.txt  the last N SQuAD articles' paragraphs: never trained on. They are the held-out
                       masked-LM slice AND the articles SQuAD fine-tuning is scored on, so no passage a
                       SQuAD score is measured on was seen in pretraining.
The GLUE dev and test sentences are not used (the fine-tuning scores are measured on dev).
--lang zh: the Chinese text instead (Google's Chinese vocabulary), 20 sentences per pseudo-document:
  OUT_DIR/train.txt    the TRAINING texts of CLUE TNEWS (news titles) and CLUENER2020
  OUT_DIR/heldout.txt  CLUENER2020's dev texts and the first --heldout_tnews TNEWS dev titles: never
                       trained on (the TNEWS and CLUENER fine-tuning scores are measured on dev)
Prints the counts. Standard library only. Deterministic.
"""
import argparse, csv, json, os, re, sys

csv.field_size_limit(1 << 24)


def sentences(text):
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])", text) if s.strip()]


def tsv_rows(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def chunks(lines, n):
    return [lines[i:i + n] for i in range(0, len(lines), n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--heldout_articles", type=int, default=8)
    ap.add_argument("--lang", choices=("en", "zh"), default="en")
    ap.add_argument("--heldout_tnews", type=int, default=2000)
    a = ap.parse_args()
    if a.lang == "zh":
        return chinese(a)
    d = a.data
    squad = json.load(open(os.path.join(d, "squad/dev-v1.1.json"), encoding="utf-8"))["data"]
    if not 0 < a.heldout_articles < len(squad):
        sys.exit("build_corpus.py: --heldout_articles must be in [1, %d)" % len(squad))
    train_docs, held_docs, counts = [], [], {}
    for i, art in enumerate(squad):
        docs = [sentences(p["context"]) for p in art["paragraphs"]]
        (held_docs if i >= len(squad) - a.heldout_articles else train_docs).extend(docs)
    counts["squad paragraphs (train / held out)"] = "%d / %d" % (len(train_docs), len(held_docs))
    sample = open(os.path.join(d, "bert_sample/sample_text.txt"), encoding="utf-8").read()
    sdocs = [[l.strip() for l in block.split("\n") if l.strip()] for block in re.split(r"\n\s*\n", sample)]
    sdocs = [x for x in sdocs if x]
    train_docs += sdocs
    counts["sample_text.txt documents"] = len(sdocs)
    sst = [r[0].strip() for r in tsv_rows(os.path.join(d, "glue/SST-2/train.tsv"))[1:] if r and r[0].strip()]
    cola = [r[3].strip() for r in tsv_rows(os.path.join(d, "cola/in_domain_train.tsv")) if len(r) >= 4 and r[3].strip()]
    mrpc = []
    for r in tsv_rows(os.path.join(d, "glue/MRPC/train.tsv"))[1:]:
        if len(r) >= 5:
            mrpc += [r[3].strip(), r[4].strip()]
    for name, lines in (("SST-2 train sentences", sst), ("CoLA in-domain train sentences", cola), ("MRPC train sentences", mrpc)):
        train_docs += chunks(lines, 20)
        counts[name] = len(lines)
    counts["held-out SQuAD article titles"] = ", ".join(art["title"] for art in squad[len(squad) - a.heldout_articles:])
    write(a.out, train_docs, held_docs, counts)


def write(out, train_docs, held_docs, counts):
    os.makedirs(out, exist_ok=True)
    for fname, docs in (("train.txt", train_docs), ("heldout.txt", held_docs)):
        with open(os.path.join(out, fname), "w", encoding="utf-8") as f:
            for doc in docs:
                f.write("\n".join(doc) + "\n\n")
    for k, v in counts.items():
        print("%s: %s" % (k, v))
    print("documents: train %d, held out %d" % (len(train_docs), len(held_docs)))


def json_lines(path, key):
    with open(path, encoding="utf-8") as f:
        return [t for t in (json.loads(l).get(key, "").strip() for l in f if l.strip()) if t]


def chinese(a):
    d = a.data
    tnews = json_lines(os.path.join(d, "tnews/clue1.1_public/train.json"), "sentence")
    ner = json_lines(os.path.join(d, "cluener2020/train.json"), "text")
    tnews_dev = json_lines(os.path.join(d, "tnews/clue1.1_public/dev.json"), "sentence")[:a.heldout_tnews]
    ner_dev = json_lines(os.path.join(d, "cluener2020/dev.json"), "text")
    counts = {"TNEWS train titles": len(tnews), "CLUENER2020 train texts": len(ner),
              "held out: CLUENER2020 dev texts / TNEWS dev titles": "%d / %d" % (len(ner_dev), len(tnews_dev))}
    write(a.out, chunks(tnews, 20) + chunks(ner, 20), chunks(ner_dev, 20) + chunks(tnews_dev, 20), counts)


if __name__ == "__main__":
    try:
        main()
    except OSError as e:   # a missing or unreadable data file: one line naming it
        sys.exit("build_corpus.py: %s: %s" % (e.filename, e.strerror))
    except (ValueError, KeyError) as e:   # a data file that is not what it should be (bad JSON, no "data")
        sys.exit("build_corpus.py: bad data file under %s: %s" % (sys.argv[1] if len(sys.argv) > 1 else "?", e))
