#!/bin/sh
# bert.h's tokenizer against tests/ref/tokenizer_ref.py (google-research/bert's tokenization.py
# written again, stdlib only) on every text in ../shared/data and on generated Unicode corpora:
# the outputs must be identical byte for byte. The generated corpora run twice, under
# BERT_TOKENIZE_GOOGLE and BERT_TOKENIZE_HF (--hf on both sides: every code point's fate, Cn/Co/Cf
# included, in both modes). One check per corpus and mode, one that bert.h's Unicode tables are what
# tools/gen_unicode_tables.py makes from this Python, and one that tests/data/tokenizer_modes.json is
# what tests/ref/tokenizer_modes_ref.py writes; ends with
# "N passed, N failed". Run from the repository root after `make` built $TOKENIZE_DUMP
# (default build/tokenize_dump). Skips, with a message, when the data or /usr/bin/python3 is absent.
DATA=${BERT_DATA:-../shared/data}
PY=${PYTHON_REF:-/usr/bin/python3}
DUMP=${TOKENIZE_DUMP:-build/tokenize_dump}
UNCASED=$DATA/vocab/bert_uncased_vocab.txt
CHINESE=$DATA/vocab/bert_chinese_vocab.txt

if [ ! -x "$PY" ]; then
    echo "skipped: $PY absent"; echo "0 passed, 0 failed"; exit 0
fi
passed=0; failed=0
if "$PY" tools/gen_unicode_tables.py --check bert.h > "${TMPDIR:-/tmp}/gen.$$" 2>&1; then
    echo "  ok   $(cat "${TMPDIR:-/tmp}/gen.$$")"; passed=$((passed + 1))
else
    echo "  FAIL $(cat "${TMPDIR:-/tmp}/gen.$$")"; failed=$((failed + 1))
fi
if "$PY" tests/ref/tokenizer_modes_ref.py --check tests/data/tokenizer_modes.json > "${TMPDIR:-/tmp}/gen.$$" 2>&1; then
    echo "  ok   $(cat "${TMPDIR:-/tmp}/gen.$$")"; passed=$((passed + 1))
else
    echo "  FAIL $(tail -n 3 "${TMPDIR:-/tmp}/gen.$$")"; failed=$((failed + 1))
fi
rm -f "${TMPDIR:-/tmp}/gen.$$"
if [ ! -d "$DATA" ] || [ ! -f "$UNCASED" ] || [ ! -f "$CHINESE" ]; then
    echo "skipped: $DATA absent (or its vocab/ is)"; echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit
fi
if [ ! -x "$DUMP" ]; then
    echo "  FAIL $DUMP not built (make $DUMP)"; echo "$passed passed, $((failed + 1)) failed"; exit 1
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
if ! "$PY" tests/ref/tokenizer_corpora.py "$DATA" "$tmp" > "$tmp/counts"; then
    echo "  FAIL tests/ref/tokenizer_corpora.py"; echo "$passed passed, $((failed + 1)) failed"; exit 1
fi

# compare NAME VOCAB LABEL [tokenizer flags...]
compare() {
    name=$1; vocab=$2; label=$3; shift 3
    texts=$(awk -v n="$name" '$1 == n { print $2 }' "$tmp/counts")
    if [ -z "$texts" ]; then echo "  skip $name: source absent"; return; fi
    start=$(date +%s)
    "$DUMP" "$vocab" --framed "$@" "$tmp/$name.txt" > "$tmp/c.out" 2> "$tmp/c.err"; crc=$?
    mid=$(date +%s)
    "$PY" tests/ref/tokenizer_ref.py "$vocab" --framed "$@" "$tmp/$name.txt" > "$tmp/py.out" 2> "$tmp/py.err"; prc=$?
    end=$(date +%s)
    lines=$(wc -l < "$tmp/c.out"); items=$(wc -w < "$tmp/c.out")
    what=ids; case " $* " in *" --basic "*) what=words;; esac
    if [ $crc -eq 0 ] && [ $prc -eq 0 ] && [ "$lines" -eq "$texts" ] && cmp -s "$tmp/c.out" "$tmp/py.out"; then
        echo "  ok   $name: $texts texts, $items $what identical ($label; C $((mid - start)) s, Python $((end - mid)) s)"
        passed=$((passed + 1))
    else
        echo "  FAIL $name: $texts texts ($label): C exit $crc, Python exit $prc, $lines lines"
        head -c 400 "$tmp/c.err" "$tmp/py.err"
        diff "$tmp/c.out" "$tmp/py.out" | head -n 6 | cut -c 1-300
        failed=$((failed + 1))
    fi
}

compare squad   "$UNCASED" "uncased vocab"
compare cluener "$CHINESE" "Chinese vocab"
compare tnews   "$CHINESE" "Chinese vocab"
compare cola    "$UNCASED" "uncased vocab"
compare sample  "$UNCASED" "uncased vocab"
compare unicode "$UNCASED" "basic tokenizer, do_lower_case" --basic
compare unicode "$UNCASED" "basic tokenizer, cased" --basic --cased
compare fuzz    "$UNCASED" "uncased vocab"
compare fuzz    "$CHINESE" "Chinese vocab"
compare fuzz    "$UNCASED" "uncased vocab, do_lower_case=0" --cased
compare unicode "$UNCASED" "hf: basic tokenizer, do_lower_case" --basic --hf
compare unicode "$UNCASED" "hf: basic tokenizer, cased" --basic --cased --hf
compare fuzz    "$UNCASED" "hf: uncased vocab" --hf
compare fuzz    "$CHINESE" "hf: Chinese vocab" --hf
compare fuzz    "$UNCASED" "hf: uncased vocab, do_lower_case=0" --cased --hf
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
