#!/bin/sh
# test_corpus.sh - tools/build_corpus.py, the corpora of issue 27's pretraining runs (English and --lang zh),
# against the data files read here independently: the Chinese train file is exactly the TNEWS and CLUENER2020
# training texts (as a multiset) and its held-out file exactly CLUENER2020's dev texts and the first 2,000
# TNEWS dev titles; no English line comes from a GLUE dev sentence or a held-out SQuAD article unless the same
# text is also in a training source; held-out lines come from the last 8 SQuAD articles; pseudo-documents
# have at most 20 lines; the output is byte-identical on a second run; a missing data directory is refused in
# one line. Needs ../shared/data (a skip line otherwise) and /usr/bin/python3. "N passed, N failed".
PY=${PYTHON:-/usr/bin/python3}
DATA=${DATA:-../shared/data}
if [ ! -f "$DATA/squad/dev-v1.1.json" ] || [ ! -f "$DATA/tnews/clue1.1_public/train.json" ]; then
    echo "  skipped: $DATA (SQuAD, GLUE, TNEWS, CLUENER2020) is absent"; echo "0 passed, 0 failed"; exit 0; fi
if ! "$PY" -c 'import json' 2>/dev/null; then echo "  skipped: no $PY"; echo "0 passed, 0 failed"; exit 0; fi
mkdir -p build
dir=$(mktemp -d build/corpus_test_XXXXXX) || exit 1
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "  ok   $2"; else fail=$((fail + 1)); echo "  FAIL $2"; fi; }
for lang in en zh; do
    "$PY" tools/build_corpus.py "$DATA" "$dir/$lang" --lang $lang > "$dir/$lang.out" 2>&1
    check $? "build_corpus.py --lang $lang runs ($(tail -1 "$dir/$lang.out"))"
    "$PY" tools/build_corpus.py "$DATA" "$dir/${lang}2" --lang $lang > /dev/null 2>&1 &&
        cmp -s "$dir/$lang/train.txt" "$dir/${lang}2/train.txt" && cmp -s "$dir/$lang/heldout.txt" "$dir/${lang}2/heldout.txt"
    check $? "--lang $lang: a second run writes the same bytes"
done
"$PY" - "$DATA" "$dir" > "$dir/checks.txt" 2>&1 <<'PY'
import collections, csv, json, os, sys
data, d = sys.argv[1], sys.argv[2]
csv.field_size_limit(1 << 24)

def docs(path):   # documents: blocks of non-empty lines between blank lines
    out, cur = [], []
    for line in open(path, encoding="utf-8").read().split("\n"):
        if line.strip():
            cur.append(line)
        elif cur:
            out.append(cur); cur = []
    return out + ([cur] if cur else [])

def lines(path):
    return [l for doc in docs(path) for l in doc]

def jsonl(path, key):
    return [json.loads(l)[key].strip() for l in open(path, encoding="utf-8") if l.strip() and json.loads(l)[key].strip()]

def tsv(path, col, header):
    rows = list(csv.reader(open(path, encoding="utf-8-sig", newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
    return {r[col].strip() for r in rows[1 if header else 0:] if len(r) > col and r[col].strip()}

def report(ok, what):
    print(("ok   " if ok else "FAIL ") + what)

# Chinese: exact multisets
tn, ner = data + "/tnews/clue1.1_public", data + "/cluener2020"
train_src = jsonl(tn + "/train.json", "sentence") + jsonl(ner + "/train.json", "text")
held_src = jsonl(ner + "/dev.json", "text") + jsonl(tn + "/dev.json", "sentence")[:2000]
zt, zh = lines(d + "/zh/train.txt"), lines(d + "/zh/heldout.txt")
report(collections.Counter(zt) == collections.Counter(train_src),
       "zh train.txt = the TNEWS + CLUENER2020 training texts, as a multiset (%d lines)" % len(zt))
report(collections.Counter(zh) == collections.Counter(held_src),
       "zh heldout.txt = CLUENER2020 dev + the first 2,000 TNEWS dev titles (%d lines)" % len(zh))
dev_all = set(jsonl(tn + "/dev.json", "sentence")) | set(jsonl(ner + "/dev.json", "text"))
leak = [l for l in zt if l in dev_all and l not in set(train_src)]
report(not leak, "zh: no train line is a dev text that no training split has (%d found)" % len(leak))
# English
squad = json.load(open(data + "/squad/dev-v1.1.json", encoding="utf-8"))["data"]
first = " ".join(p["context"] for a in squad[:-8] for p in a["paragraphs"])
last = " ".join(p["context"] for a in squad[-8:] for p in a["paragraphs"])
sample = open(data + "/bert_sample/sample_text.txt", encoding="utf-8").read()
g = data + "/glue"
train_sents = tsv(g + "/SST-2/train.tsv", 0, True) | tsv(data + "/cola/in_domain_train.tsv", 3, False) \
    | tsv(g + "/MRPC/train.tsv", 3, True) | tsv(g + "/MRPC/train.tsv", 4, True)
dev_sents = tsv(g + "/SST-2/dev.tsv", 0, True) | tsv(data + "/cola/in_domain_dev.tsv", 3, False) \
    | tsv(g + "/MRPC/dev.tsv", 3, True) | tsv(g + "/MRPC/dev.tsv", 4, True)
et, eh = lines(d + "/en/train.txt"), lines(d + "/en/heldout.txt")
orphan = [l for l in et if l not in train_sents and l not in first and l not in sample]
report(not orphan, "en: every train line is a training sentence or text of SQuAD articles 0-39 / sample_text.txt (%d not)" % len(orphan))
leak = [l for l in et if l in dev_sents and l not in train_sents and l not in first and l not in sample]
report(not leak, "en: no train line is a GLUE dev sentence only (%d found)" % len(leak))
held_leak = [l for l in et if len(l) > 40 and l in last and l not in first and l not in sample and l not in train_sents]
report(not held_leak, "en: no train line comes from the 8 held-out SQuAD articles only (%d found)" % len(held_leak))
report(all(l in last for l in eh) and len(eh) > 1000, "en: all %d held-out lines come from the last 8 SQuAD articles" % len(eh))
pseudo = [doc for doc in docs(d + "/zh/train.txt") + docs(d + "/zh/heldout.txt")]
report(all(len(doc) <= 20 for doc in pseudo) and len(pseudo) > 3000, "zh: %d pseudo-documents of at most 20 lines" % len(pseudo))
PY
grep '^ok\|^FAIL' "$dir/checks.txt" | sed 's/^/  /'
pass=$((pass + $(grep -c '^ok' "$dir/checks.txt"))); fail=$((fail + $(grep -c '^FAIL' "$dir/checks.txt")))
[ "$(grep -c '^ok\|^FAIL' "$dir/checks.txt")" = 8 ]; check $? "all 8 reference checks ran"
grep -v '^ok\|^FAIL' "$dir/checks.txt" | head -5
"$PY" tools/build_corpus.py "$dir/no_such_dir" "$dir/out" --lang zh > "$dir/bad.out" 2>&1; rc=$?
[ $rc != 0 ] && [ "$(wc -l < "$dir/bad.out")" = 1 ] && grep -q 'no_such_dir.*No such file' "$dir/bad.out" && [ ! -e "$dir/out/train.txt" ]
check $? "a missing data directory: exit $rc, one line ($(head -1 "$dir/bad.out")), nothing written"
rm -rf "$dir"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
