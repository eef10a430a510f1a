// test_tokenizer.c - bert.h's WordPiece tokenizer on hand-written edge cases: accents, Final_Sigma,
// CJK mixed with Latin, emoji, control characters, invalid UTF-8, words over 200 characters, empty
// texts, Hangul, combining marks beyond U+036F (Mn stripped, Mc/Me kept), truncation, byte spans,
// and every vocab error. The expected ids were produced by
// tests/ref/tokenizer_ref.py (google-research/bert's tokenization.py written again) on the small
// vocab below and, when ../shared/data is present, on Google's uncased and Chinese vocabs.
// BERT_TOKENIZE_GOOGLE against BERT_TOKENIZE_HF (long words, unassigned, private-use, format and
// control characters): tests/data/tokenizer_modes.json, from tests/ref/tokenizer_modes_ref.py.
// tests/test_tokenizer_data.sh compares the two tokenizers on whole corpora.
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "check.h"

int mkstemp(char *);                         // POSIX, hidden by -std=c11
FILE *fdopen(int, const char *);

#define N_OF(a) (int)(sizeof(a) / sizeof *(a))

static const char *VOCAB =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n,\n!\n.\n$\nun\n##aff\n##able\ncafe\nunicode\n"
    "i\n##stanbul\n\xce\xbf\n##\xce\xb4\n##\xcf\x85\n##\xcf\x83\n##\xce\xb5\n##\xcf\x82\n\xcf\x83\n\xcf\x82\n"   // ο ##δ ##υ ##σ ##ε ##ς σ ς
    "\xe4\xb8\xad\n\xe6\x96\x87\nabc\na\n##a\n##b\n##c\nab\n"                                             // 中 文
    "\xe1\x84\x92\n##\xe1\x85\xa1\n##\xe1\x86\xab\n"                                                        // ᄒ ##ᅡ ##ᆫ (jamo)
    "it\nHello\n##i\n5\n00\n";

typedef struct { const char *name, *text; int len, lower, n; int ids[16]; } tcase;

static int has_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static void test_cases(const bert_vocab *v) {
    static char a100[101], a201[202];
    memset(a100, 'a', 100); memset(a201, 'a', 201);
    static const tcase cases[] = {
        { "ASCII words and punctuation", "Hello, World!", -1, 1, 4, { 5, 7, 6, 8 } },
        { "WordPiece: longest match first, ## continuations", "unaffable", -1, 1, 3, { 11, 12, 13 } },
        { "no decomposition -> one [UNK] for the word", "unaffablex", -1, 1, 1, { 1 } },
        { "uncased: accents stripped (NFD, Mn dropped)", "\xc3\x9cn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 caf\xc3\xa9", -1, 1, 2, { 15, 14 } },
        { "cased: accents kept", "\xc3\x9cn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 caf\xc3\xa9", -1, 0, 2, { 1, 1 } },
        { "combining acute after the letter", "cafe\xcc\x81 CAFE\xcc\x81", -1, 1, 2, { 14, 14 } },
        { "U+0130 lowers to i + U+0307, the mark dropped", "\xc4\xb0stanbul", -1, 1, 2, { 16, 17 } },
        { "Final_Sigma (a '.' between is case-ignorable)", "\xce\x9f\xce\x94\xce\xa5\xce\xa3\xce\xa3\xce\x95\xce\xa5\xce\xa3 \xcf\x83.\xce\xa3. \xce\xa3", -1, 1,
          13, { 18, 19, 20, 21, 21, 22, 20, 23, 24, 9, 25, 9, 24 } },
        { "CJK ideographs are words of their own, Latin stays together", "\xe4\xb8\xad\xe6\x96\x87" "abc\xe4\xb8\xad \xe6\x96\x87", -1, 1, 5, { 26, 27, 28, 26, 27 } },
        { "emoji are not punctuation: they stay in their word", "ab\xf0\x9f\x98\x80 it\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbb \xf0\x9f\x98\x80", -1, 1, 3, { 1, 1, 1 } },
        { "controls dropped (not split), \\t\\n\\r and NBSP split", "a\x01" "b\x7f" "c\xe2\x80\x8b" "d\te\nf\rg\xc2\xa0h", -1, 1, 5, { 1, 1, 1, 1, 1 } },
        { "NUL and U+FFFD dropped", "a\0b \xef\xbf\xbd" "c", 8, 1, 2, { 33, 1 } },
        { "invalid UTF-8 dropped, valid neighbours kept", "ab\xff" "c \xe4\xbd a\xc0\xaf" "b \xed\xa0\x80" "c \xf4\x90\x80\x80" "a \xe4\xb8", -1, 1, 4, { 28, 33, 1, 29 } },
        { "empty text", "", -1, 1, 0, { 0 } },
        { "whitespace only (ideographic space too)", " \t\r\n \xe3\x80\x80 ", -1, 1, 0, { 0 } },
        { "U+2028/U+2029 split words (str.split)", "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", -1, 1, 3, { 29, 1, 1 } },
        { "uncased Hangul: syllables become jamo", "\xed\x95\x9c \xed\x95\x9c\xea\xb5\xad", -1, 1, 4, { 34, 35, 36, 1 } },
        { "cased Hangul stays a syllable", "\xed\x95\x9c", -1, 0, 1, { 1 } },
        { "ASCII symbols are punctuation", "$5.00 hello!!", -1, 1, 7, { 10, 40, 9, 41, 5, 8, 8 } },
        { "a word of 201 characters -> [UNK]", a201, -1, 1, 1, { 1 } },
        { "cased: case kept", "Hello hello", -1, 0, 2, { 38, 5 } },
    };
    for (int c = 0; c < N_OF(cases); c++) {
        const tcase *t = &cases[c];
        int32_t ids[32];
        size_t len = t->len >= 0 ? (size_t)t->len : strlen(t->text);
        int n = bert_tokenize(v, t->lower, t->text, len, ids, 32), same = n == t->n;
        for (int i = 0; same && i < n; i++) same = ids[i] == t->ids[i];
        CHECK(same, "%-58s %d ids", t->name, n);
    }
    int32_t ids[128];
    int n = bert_tokenize(v, 1, a100, 100, ids, 128), ok = n == 100 && ids[0] == 29;
    for (int i = 1; ok && i < 100; i++) ok = ids[i] == 30;
    CHECK(ok, "a word of exactly 100 characters -> a ##a x 99 (%d ids)", n);
    CHECK(bert_tokenize(v, 1, NULL, 0, ids, 0) == 0, "NULL text of length 0 -> 0 ids");
}

// Combining marks beyond U+036F, uncased (lower, NFD, category Mn removed) and cased (kept): Mn of
// nonzero class in Cyrillic, Hebrew, the extended/supplement/symbol/half-mark blocks, Mn of class 0
// (Thai U+0E31, variation selectors U+FE0F and U+E0100), a mark beyond the BMP (U+1D167), a nukta
// from a decomposition (U+0929 -> U+0928 U+093C), and the marks that are not Mn and must stay:
// spacing Mc (U+0903, U+093E) and enclosing Me (U+20DD). Catches tables that strip only the
// U+0300-U+036F block, or only the BMP, keep the class-0 Mn, or strip every M* category.
// Expected words and ids: printed by the Python reference, with MARKS_VOCAB written to vocab.txt
// and the texts one per line in texts.txt:
//     /usr/bin/python3 tests/ref/tokenizer_ref.py vocab.txt [--cased] [--basic] texts.txt
// (MARKS_VOCAB: the specials, the uncased words whole, then every character alone and as ##.)
static const char *MARKS_VOCAB =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n.\na\nab\na\xe2\x83\x9d\nb\ncd\ne\nef\ngh\nij\nxy\nz\n"
    "\xd0\xb0\xd0\xb1\n\xd0\xb1\n\xd7\x90\xd7\x91\n\xe0\xa4\x95\n\xe0\xa4\x95\xe0\xa4\x83\n"
    "\xe0\xa4\x95\xe0\xa4\xbe\n\xe0\xa4\xa8\n\xe0\xb8\x81\xe0\xb8\x99\n\xe2\x9d\xa4\n##.\n##a\n##b\n"
    "c\n##c\nd\n##d\n##e\nf\n##f\ng\n##g\nh\n##h\ni\n##i\nj\n##j\nx\n##x\ny\n##y\n##z\n\xc3\x89\n"
    "##\xc3\x89\n\xd0\x91\n##\xd0\x91\n\xd0\xb0\n##\xd0\xb0\n##\xd0\xb1\n\xd2\x83\n##\xd2\x83\n"
    "\xd6\x91\n##\xd6\x91\n\xd7\x90\n##\xd7\x90\n\xd7\x91\n##\xd7\x91\n\xe0\xa4\x83\n##\xe0\xa4\x83\n"
    "##\xe0\xa4\x95\n##\xe0\xa4\xa8\n\xe0\xa4\xa9\n##\xe0\xa4\xa9\n\xe0\xa4\xbc\n##\xe0\xa4\xbc\n"
    "\xe0\xa4\xbe\n##\xe0\xa4\xbe\n\xe0\xb8\x81\n##\xe0\xb8\x81\n\xe0\xb8\x99\n##\xe0\xb8\x99\n"
    "\xe0\xb8\xb1\n##\xe0\xb8\xb1\n\xe1\xaa\xb0\n##\xe1\xaa\xb0\n\xe1\xb7\x80\n##\xe1\xb7\x80\n"
    "\xe2\x83\x90\n##\xe2\x83\x90\n\xe2\x83\x9d\n##\xe2\x83\x9d\n##\xe2\x9d\xa4\n\xef\xb8\x8f\n"
    "##\xef\xb8\x8f\n\xef\xb8\xa0\n##\xef\xb8\xa0\n\xf0\x9d\x85\xa7\n##\xf0\x9d\x85\xa7\n"
    "\xf3\xa0\x84\x80\n##\xf3\xa0\x84\x80\n";

static void test_marks(void) {
    static const struct { const char *name, *text, *uncased; int nu; int ids_u[12]; const char *cased; int nc; int ids_c[12]; } cases[] = {
        { "U+0483 Cyrillic titlo", "\xd0\xb0\xd2\x83\xd0\xb1 a\xd2\x83" "b",
          "\xd0\xb0\xd0\xb1 ab", 2, { 17, 7 },
          "\xd0\xb0\xd2\x83\xd0\xb1 a\xd2\x83" "b", 6, { 53, 57, 55, 6, 57, 28 } },
        { "U+0591 Hebrew etnahta", "\xd7\x90\xd6\x91\xd7\x91",
          "\xd7\x90\xd7\x91", 1, { 19 },
          "\xd7\x90\xd6\x91\xd7\x91", 3, { 60, 59, 63 } },
        { "U+1AB0 U+1DC0 U+20D0 U+FE20", "c\xe1\xaa\xb0" "d e\xe1\xb7\x80" "f g\xe2\x83\x90h i\xef\xb8\xa0j",
          "cd ef gh ij", 4, { 10, 12, 13, 14 },
          "c\xe1\xaa\xb0" "d e\xe1\xb7\x80" "f g\xe2\x83\x90h i\xef\xb8\xa0j", 12, { 29, 81, 32, 11, 83, 35, 36, 85, 39, 40, 92, 43 } },
        { "U+0E31 Thai (Mn, class 0)", "\xe0\xb8\x81\xe0\xb8\xb1\xe0\xb8\x99",
          "\xe0\xb8\x81\xe0\xb8\x99", 1, { 24 },
          "\xe0\xb8\x81\xe0\xb8\xb1\xe0\xb8\x99", 3, { 74, 79, 77 } },
        { "U+0903 U+093E spacing marks (Mc) kept", "\xe0\xa4\x95\xe0\xa4\x83 \xe0\xa4\x95\xe0\xa4\xbe",
          "\xe0\xa4\x95\xe0\xa4\x83 \xe0\xa4\x95\xe0\xa4\xbe", 2, { 21, 22 },
          "\xe0\xa4\x95\xe0\xa4\x83 \xe0\xa4\x95\xe0\xa4\xbe", 2, { 21, 22 } },
        { "U+093C nukta dropped, U+0929 -> U+0928", "\xe0\xa4\x95\xe0\xa4\xbc \xe0\xa4\xa9",
          "\xe0\xa4\x95 \xe0\xa4\xa8", 2, { 20, 23 },
          "\xe0\xa4\x95\xe0\xa4\xbc \xe0\xa4\xa9", 3, { 20, 71, 68 } },
        { "U+20DD enclosing mark (Me) kept", "a\xe2\x83\x9d",
          "a\xe2\x83\x9d", 1, { 8 },
          "a\xe2\x83\x9d", 1, { 8 } },
        { "U+FE0F U+E0100 U+1D167 (class 0 and beyond the BMP)", "\xe2\x9d\xa4\xef\xb8\x8f z\xf3\xa0\x84\x80 x\xf0\x9d\x85\xa7y",
          "\xe2\x9d\xa4 z xy", 3, { 25, 16, 15 },
          "\xe2\x9d\xa4\xef\xb8\x8f z\xf3\xa0\x84\x80 x\xf0\x9d\x85\xa7y", 7, { 25, 90, 16, 96, 44, 94, 47 } },
        { "mark after punctuation, mark first", "a.\xd6\x91" "b \xd2\x83" "ab",
          "a . b ab", 4, { 6, 5, 9, 7 },
          "a . \xd6\x91" "b \xd2\x83" "ab", 7, { 6, 5, 58, 28, 56, 27, 28 } },
        { "upper case + marks", "\xd0\x91\xd2\x83 \xc3\x89\xe2\x83\x90",
          "\xd0\xb1 e", 2, { 18, 11 },
          "\xd0\x91\xd2\x83 \xc3\x89\xe2\x83\x90", 4, { 51, 57, 49, 85 } },
    };
    bert_vocab *v = bert_vocab_parse(MARKS_VOCAB, strlen(MARKS_VOCAB), "marks vocab");
    if (!CHECK(v && v->size == 97, "parse the marks vocab (%s)", v ? "ok" : bert_last_error())) { bert_vocab_free(v); return; }
    for (int c = 0; c < N_OF(cases); c++) {
        for (int lower = 1; lower >= 0; lower--) {
            const char *want = lower ? cases[c].uncased : cases[c].cased;
            const int *want_ids = lower ? cases[c].ids_u : cases[c].ids_c;
            int want_n = lower ? cases[c].nu : cases[c].nc;
            char words[128];
            int32_t ids[32];
            size_t len = strlen(cases[c].text);
            int k = bert_basic_tokenize(lower, cases[c].text, len, words, sizeof words);
            int n = bert_tokenize(v, lower, cases[c].text, len, ids, 32), same = n == want_n;
            for (int i = 0; same && i < n; i++) same = ids[i] == want_ids[i];
            CHECK(k == (int)strlen(want) && !strcmp(words, want) && same, "%s %-52s '%s' (%d ids)", lower ? "uncased" : "cased  ",
                  cases[c].name, words, n);
        }
    }
    bert_vocab_free(v);
}

// BERT_TOKENIZE_GOOGLE and BERT_TOKENIZE_HF on tests/data/tokenizer_modes.json: every text, uncased and
// cased, gives the reference's ids (bert_tokenize under bert_vocab_set_mode) and basic words
// (bert_basic_tokenize_mode) in each mode (printed: the ids uncased / cased). The fixture's google expectations were checked against
// google-research/bert's tokenization.py itself; its hf ones come from tokenizer_ref.py --hf. Then
// the test is shown able to fail: under the other mode's rules, exactly the cases whose expectations
// differ between the modes fail.
static const char *const mode_name[2] = { "google", "hf" }, *const case_name[2] = { "cased", "uncased" };

static const bert_json *mode_want(const bert_json *k, int m, int lower) {
    return bert_json_get(bert_json_get(k, mode_name[m]), case_name[lower]);
}

static int same_json(const bert_json *a, const bert_json *b) {   // the ids and words of two expectations
    const bert_json *ia = bert_json_get(a, "ids"), *ib = bert_json_get(b, "ids"), *wa = bert_json_get(a, "words"), *wb = bert_json_get(b, "words");
    if (!ia || !ib || !wa || !wb || ia->count != ib->count || wa->string_len != wb->string_len || memcmp(wa->string, wb->string, wa->string_len)) return 0;
    for (int i = 0; i < ia->count; i++) if (ia->child[i].number != ib->child[i].number) return 0;
    return 1;
}

// the cases (uncased or cased) where v under `rules` does not give mode `want`'s ids and words
static int modes_mismatches(bert_vocab *v, const bert_json *cases, int rules, int want, int verbose) {
    int bad_cases = 0;
    bert_vocab_set_mode(v, rules ? BERT_TOKENIZE_HF : BERT_TOKENIZE_GOOGLE);
    for (int c = 0; c < cases->count; c++) {
        const bert_json *k = &cases->child[c], *text = bert_json_get(k, "text"), *name = bert_json_get(k, "name");
        int bad = 0, n_ids[2] = { 0, 0 };
        for (int lower = 1; lower >= 0; lower--) {
            const bert_json *w = mode_want(k, want, lower), *ids_want = bert_json_get(w, "ids"), *words_want = bert_json_get(w, "words");
            int32_t ids[512];
            char words[2048];
            int n = bert_tokenize(v, lower, text->string, text->string_len, ids, 512);
            int nw = bert_basic_tokenize_mode(v->mode, lower, text->string, text->string_len, words, sizeof words);
            int ok = ids_want && words_want && n == ids_want->count && n <= 512 && nw >= 0 && (size_t)nw == words_want->string_len &&
                     (size_t)nw < sizeof words && !memcmp(words, words_want->string, (size_t)nw);
            for (int i = 0; ok && i < n; i++) ok = ids_want->child[i].number == ids[i];
            bad |= !ok;
            n_ids[lower] = n;
        }
        if (verbose) CHECK(!bad, "%-6s %-68s %3d / %3d ids", mode_name[want], name->string, n_ids[1], n_ids[0]);
        bad_cases += bad;
    }
    return bad_cases;
}

static void test_modes(void) {
    const char *path = "tests/data/tokenizer_modes.json";
    char *data = (char *)malloc(1 << 20);
    FILE *f = data ? fopen(path, "rb") : NULL;
    size_t size = f ? fread(data, 1, 1 << 20, f) : 0;
    bert_json *j = NULL;
    if (f) fclose(f);
    int parsed = size > 0 && size < (1 << 20) && bert_json_parse(&j, data, size) == BERT_OK;
    free(data);
    const bert_json *tokens = bert_json_get(j, "vocab"), *cases = bert_json_get(j, "cases");
    int wellformed = parsed && tokens && tokens->type == BERT_JSON_ARRAY && cases && cases->type == BERT_JSON_ARRAY && cases->count > 0;
    for (int c = 0; wellformed && c < cases->count; c++) {
        const bert_json *k = &cases->child[c], *t = bert_json_get(k, "text"), *name = bert_json_get(k, "name");
        wellformed = t && t->type == BERT_JSON_STRING && name && name->type == BERT_JSON_STRING;
        for (int m = 0; m < 4 && wellformed; m++) {
            const bert_json *w = mode_want(k, m / 2, m % 2), *ids = bert_json_get(w, "ids"), *words = bert_json_get(w, "words");
            wellformed = ids && ids->type == BERT_JSON_ARRAY && words && words->type == BERT_JSON_STRING;
        }
    }
    if (!CHECK(wellformed, "read %s: %d cases (%s)", path, cases ? cases->count : 0, parsed ? "parsed" : bert_last_error())) {
        bert_json_free(j);
        return;
    }
    char text[4096];
    size_t len = 0;
    for (int i = 0; i < tokens->count && len + tokens->child[i].string_len + 1 < sizeof text; i++) {
        memcpy(text + len, tokens->child[i].string, tokens->child[i].string_len);
        len += tokens->child[i].string_len;
        text[len++] = '\n';
    }
    bert_vocab *v = bert_vocab_parse(text, len, path);
    if (!CHECK(v && v->size == tokens->count && v->mode == BERT_TOKENIZE_GOOGLE, "the fixture's vocab: %d tokens, mode BERT_TOKENIZE_GOOGLE after parsing",
               v ? v->size : 0)) {
        bert_vocab_free(v); bert_json_free(j);
        return;
    }
    int differ = 0;
    for (int c = 0; c < cases->count; c++)
        differ += !same_json(mode_want(&cases->child[c], 0, 1), mode_want(&cases->child[c], 1, 1)) ||
                  !same_json(mode_want(&cases->child[c], 0, 0), mode_want(&cases->child[c], 1, 0));
    for (int m = 0; m < 2; m++) {
        int bad = modes_mismatches(v, cases, m, m, 1);
        CHECK(bad == 0, "%s: %d of %d texts differ from the reference (uncased or cased)", mode_name[m], bad, cases->count);
    }
    int flipped[2] = { modes_mismatches(v, cases, 1, 0, 0), modes_mismatches(v, cases, 0, 1, 0) };
    CHECK(differ > 0 && flipped[0] == differ && flipped[1] == differ,
          "flipped modes: %d google and %d hf expectations fail under the other's rules (the %d texts where the modes differ)",
          flipped[0], flipped[1], differ);
    CHECK(bert_vocab_set_mode(v, (bert_tokenize_mode)2) == BERT_ERR_ARG && v->mode == BERT_TOKENIZE_GOOGLE &&
          bert_vocab_set_mode(NULL, BERT_TOKENIZE_HF) == BERT_ERR_ARG &&
          bert_basic_tokenize_mode((bert_tokenize_mode)-1, 1, "a", 1, text, sizeof text) == -BERT_ERR_ARG,
          "bert_vocab_set_mode and bert_basic_tokenize_mode refuse a mode out of range (and a NULL vocab)");
    bert_vocab_free(v);
    bert_json_free(j);
}

static void test_spans(const bert_vocab *v) {
    int32_t ids[16], b[16], e[16];
    int n = bert_tokenize_spans(v, 1, "Hello, World!", 13, ids, b, e, 16);
    CHECK(n == 4 && b[0] == 0 && e[0] == 5 && b[1] == 5 && e[1] == 6 && b[2] == 7 && e[2] == 12 && b[3] == 12 && e[3] == 13,
          "spans of 'Hello, World!': [0,5) [5,6) [7,12) [12,13)");
    n = bert_tokenize_spans(v, 1, " unaffable", 10, ids, b, e, 16);
    CHECK(n == 3 && b[0] == 1 && e[0] == 3 && b[1] == 3 && e[1] == 6 && b[2] == 6 && e[2] == 10, "spans of WordPieces: un [1,3) ##aff [3,6) ##able [6,10)");
    const char *acc = "caf\xc3\xa9 cafe\xcc\x81!";   // é precomposed, then e + U+0301 (dropped) before '!'
    n = bert_tokenize_spans(v, 1, acc, strlen(acc), ids, b, e, 16);
    CHECK(n == 3 && b[0] == 0 && e[0] == 5 && b[1] == 6 && e[1] == 10 && b[2] == 12 && e[2] == 13,
          "spans with accents: [0,5) [6,10) [12,13) (a dropped mark belongs to no piece)");
    const char *han = "\xed\x95\x9c!";
    n = bert_tokenize_spans(v, 1, han, strlen(han), ids, b, e, 16);
    CHECK(n == 4 && b[0] == 0 && e[0] == 3 && b[1] == 0 && e[1] == 3 && b[2] == 0 && e[2] == 3 && b[3] == 3 && e[3] == 4,
          "pieces cut from one Hangul syllable share its span");
    n = bert_tokenize_spans(v, 1, "x unaffablex", 12, ids, b, e, 16);
    CHECK(n == 2 && ids[1] == 1 && b[1] == 2 && e[1] == 12, "[UNK] spans its whole word");
    n = bert_tokenize_spans(v, 1, "a\xff\xfe" "b c", 6, ids, NULL, e, 16);
    CHECK(n == 2 && ids[0] == 33 && e[0] == 4 && e[1] == 6, "begin may be NULL; invalid bytes are dropped inside a word: 'ab' [0,4)");
}

static void test_truncation_and_args(const bert_vocab *v) {
    int32_t ids[4] = { -7, -7, -7, -7 };
    int n = bert_tokenize(v, 1, "hello world hello world", 23, ids, 2);
    CHECK(n == 4 && ids[0] == 5 && ids[1] == 6 && ids[2] == -7, "cap 2 of 4: returns 4, writes 2");
    CHECK(bert_tokenize(v, 1, "hello", 5, NULL, 0) == 1, "cap 0 with NULL ids counts");
    CHECK(bert_tokenize(NULL, 1, "hello", 5, ids, 4) == -BERT_ERR_ARG, "NULL vocab -> -BERT_ERR_ARG");
    CHECK(bert_tokenize(v, 1, "hello", 5, NULL, 4) == -BERT_ERR_ARG, "NULL ids with cap > 0 -> -BERT_ERR_ARG");
    CHECK(bert_tokenize(v, 1, NULL, 5, ids, 4) == -BERT_ERR_ARG, "NULL text with len > 0 -> -BERT_ERR_ARG");
    bert_vocab *nounk = bert_vocab_parse("a\n##b\n", 6, "nounk");
    CHECK(nounk && bert_tokenize(nounk, 1, "ab", 2, ids, 4) == 2, "a vocab without [UNK] works while no word needs it");
    n = nounk ? bert_tokenize(nounk, 1, "ab c", 4, ids, 4) : 0;
    CHECK(n == -BERT_ERR_ARG && strstr(bert_last_error(), "[UNK]"), "... and fails cleanly when one does: %s", bert_last_error());
    bert_vocab_free(nounk);
}

static void test_basic(void) {
    char out[64];
    const char *t = "Hello, W\xc3\xb6rld! \xe4\xb8\xad\xe6\x96\x87" "abc \xce\xa3\xce\xa3";
    int n = bert_basic_tokenize(1, t, strlen(t), out, sizeof out);
    const char *want = "hello , world ! \xe4\xb8\xad \xe6\x96\x87 abc \xcf\x83\xcf\x82";
    CHECK(n == (int)strlen(want) && !strcmp(out, want), "basic uncased: '%s'", out);
    n = bert_basic_tokenize(0, t, strlen(t), out, sizeof out);
    want = "Hello , W\xc3\xb6rld ! \xe4\xb8\xad \xe6\x96\x87 abc \xce\xa3\xce\xa3";
    CHECK(n == (int)strlen(want) && !strcmp(out, want), "basic cased: '%s'", out);
    n = bert_basic_tokenize(1, t, strlen(t), out, 8);
    CHECK(n == 32 && !strcmp(out, "hello ,"), "basic truncated to cap 8: returns 32, writes 'hello ,' + NUL");
    CHECK(bert_basic_tokenize(1, t, strlen(t), NULL, 0) == 32, "cap 0 with NULL out measures");
    CHECK(bert_basic_tokenize(1, "\x01 \t", 3, out, sizeof out) == 0 && out[0] == 0, "nothing left -> empty string");
}

static void test_vocab(const bert_vocab *v) {
    CHECK(bert_vocab_size(v) == 42 && v->size == 42, "size %d", bert_vocab_size(v));
    CHECK(v->pad_id == 0 && v->unk_id == 1 && v->cls_id == 2 && v->sep_id == 3 && v->mask_id == 4, "special ids by name");
    CHECK(bert_vocab_id(v, "##aff", 5) == 12 && bert_vocab_id(v, "##affx", 5) == 12 && bert_vocab_id(v, "aff", 3) == -1,
          "bert_vocab_id uses the length, -1 when absent");
    CHECK(bert_vocab_id(v, "", 0) == -1 && bert_vocab_id(v, NULL, 0) == -1, "no empty token here");
    CHECK(!strcmp(bert_vocab_token(v, 13), "##able") && bert_vocab_token(v, 42) == NULL && bert_vocab_token(v, -1) == NULL,
          "bert_vocab_token, NULL out of range");
    const char *strip = " x \r\n\xe2\x80\xa8\ny\n\xe3\x80\x80##z";
    bert_vocab *w = bert_vocab_parse(strip, strlen(strip), "strip");
    CHECK(w && w->size == 4 && bert_vocab_id(w, "x", 1) == 0 && bert_vocab_id(w, "", 0) == 1 && bert_vocab_id(w, "y", 1) == 2 &&
          bert_vocab_id(w, "##z", 3) == 3 && w->unk_id == -1 && w->max_len == 3,
          "lines str.strip()ped (CRLF, U+2028 -> \"\", U+3000), last line without newline");
    bert_vocab_free(w);
    bert_vocab_free(NULL);
    static const struct { const char *name, *text; int code; const char *msg; } bad[] = {
        { "empty", "", BERT_ERR_FORMAT, "bad.txt: empty vocab" },
        { "duplicate", "a\nb\nc\n b\n", BERT_ERR_FORMAT, "bad.txt: line 4: token 'b' already on line 2" },
        { "duplicate after strip (two blank lines)", "a\n\n\n", BERT_ERR_FORMAT, "bad.txt: line 3: token '' already on line 2" },
        { "invalid UTF-8", "a\nb\xc3(\n", BERT_ERR_FORMAT, "bad.txt: line 2: invalid UTF-8" },
        { "NUL byte", "a\nb\0c\n", BERT_ERR_FORMAT, "bad.txt: line 2: NUL byte" },
    };
    for (int k = 0; k < N_OF(bad); k++) {
        size_t len = !strcmp(bad[k].name, "NUL byte") ? 6 : strlen(bad[k].text);
        bert_vocab *x = bert_vocab_parse(bad[k].text, len, "bad.txt");
        CHECK(!x && !strcmp(bert_last_error(), bad[k].msg), "vocab %-40s -> %s", bad[k].name, bert_last_error());
        bert_vocab_free(x);
    }
    char *longline = (char *)malloc(1030);
    memset(longline, 'x', 1025); memcpy(longline + 1025, "\n", 2);
    bert_vocab *x = bert_vocab_parse(longline, 1026, "long.txt");
    CHECK(!x && !strcmp(bert_last_error(), "long.txt: line 1: token longer than 1024 bytes"), "over-long line -> %s", bert_last_error());
    longline[1024] = '\n';
    x = bert_vocab_parse(longline, 1025, "long.txt");
    CHECK(x && x->max_len == 1024, "a 1024-byte token is fine");
    bert_vocab_free(x);
    free(longline);
    x = bert_vocab_load("/nonexistent/vocab.txt");
    CHECK(!x && strstr(bert_last_error(), "/nonexistent/vocab.txt: ") == bert_last_error(), "missing file -> %s", bert_last_error());
    char path[] = "/tmp/bert_test_tokenizer_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (f) fclose(f);
    x = bert_vocab_load(path);
    char want[96];
    snprintf(want, sizeof want, "%s: empty vocab", path);
    CHECK(f && !x && !strcmp(bert_last_error(), want), "empty file -> %s", bert_last_error());
    remove(path);
}

static void test_real_vocabs(void) {
    const char *up = "../shared/data/vocab/bert_uncased_vocab.txt", *cp = "../shared/data/vocab/bert_chinese_vocab.txt";
    if (!has_file(up) || !has_file(cp)) { printf("  skipped: ../shared/data/vocab not present\n"); return; }
    bert_vocab *u = bert_vocab_load(up), *c = bert_vocab_load(cp);
    CHECK(u && u->size == 30522 && u->pad_id == 0 && u->unk_id == 100 && u->cls_id == 101 && u->sep_id == 102 && u->mask_id == 103,
          "uncased vocab: 30522 tokens, [PAD] 0 [UNK] 100 [CLS] 101 [SEP] 102 [MASK] 103");
    CHECK(c && c->size == 21128 && c->unk_id == 100 && bert_vocab_id(c, "", 0) == 343 && bert_vocab_id(c, "##", 2) == 13502,
          "Chinese vocab: 21128 tokens; its U+2028 lines are the tokens \"\" (343) and \"##\" (13502)");
    if (u && c) {
        static const int want_u[] = { 7592, 1010, 2088, 999, 14477, 20961, 3468, 27260, 5598 };
        static const int want_c[] = { 704, 3152, 8425, 8024, 1266, 776, 3614, 6816, 872, 8792, 9197, 8168, 118, 8131 };
        const char *tu = "Hello, World! unaffable \xc3\x9cn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 jumped";
        const char *tc = "\xe4\xb8\xad\xe6\x96\x87" "abc\xef\xbc\x8c\xe5\x8c\x97\xe4\xba\xac\xe6\xac\xa2\xe8\xbf\x8e\xe4\xbd\xa0 COVID-19";
        int32_t ids[32];
        int n = bert_tokenize(u, 1, tu, strlen(tu), ids, 32), same = n == N_OF(want_u);
        for (int i = 0; same && i < n; i++) same = ids[i] == want_u[i];
        CHECK(same, "uncased vocab: 'Hello, World! unaffable \xc3\x9cn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 jumped' -> %d ids as the reference", n);
        n = bert_tokenize(c, 1, tc, strlen(tc), ids, 32), same = n == N_OF(want_c);
        for (int i = 0; same && i < n; i++) same = ids[i] == want_c[i];
        CHECK(same, "Chinese vocab: '%s' -> %d ids as the reference", tc, n);
    }
    bert_vocab_free(u);
    bert_vocab_free(c);
}

// A vocab built so that FNV-1a's low 20 bits (the slot of a plain FNV table) are the same for all
// 65536 tokens: 16 chained pairs of 4-letter blocks that collide in those bits, every choice of one
// block per pair a token. With the seeded, mixed hash the tokens spread: the longest run of occupied
// slots stays short, where the unseeded FNV table put all of them in one probe chain.
static void test_hash_flooding(void) {
    enum { PAIRS = 16, K = 20 };
    char blocks[PAIRS][2][5];
    uint32_t h = 2166136261u, mask = (1u << K) - 1;
    uint64_t rng = 7;
    static uint32_t seen_h[1 << 14];
    static char seen_b[1 << 14][5];
    for (int p = 0; p < PAIRS; p++) {
        int n = 0, found = 0;
        while (!found && n < (1 << 14)) {
            char b[5];
            for (int i = 0; i < 4; i++) { rng = rng * 6364136223846793005u + 1442695040888963407u; b[i] = (char)('a' + (rng >> 33) % 26); }
            b[4] = 0;
            uint32_t nh = h;
            for (int i = 0; i < 4; i++) nh = (nh ^ (unsigned char)b[i]) * 16777619u;
            for (int j = 0; j < n && !found; j++)
                if ((seen_h[j] & mask) == (nh & mask) && strcmp(seen_b[j], b)) {
                    memcpy(blocks[p][0], seen_b[j], 5); memcpy(blocks[p][1], b, 5);
                    h = seen_h[j];   // both continue with the same low bits
                    found = 1;
                }
            seen_h[n] = nh; memcpy(seen_b[n], b, 5); n++;
        }
        if (!found) { CHECK(0, "a low-bit FNV collision for pair %d", p); return; }
    }
    size_t cap = (size_t)(1 << PAIRS) * (4 * PAIRS + 1) + 64, len = 0;
    char *text = (char *)malloc(cap);
    len += (size_t)sprintf(text, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for (uint32_t c = 0; c < (1u << PAIRS); c++) {
        for (int p = 0; p < PAIRS; p++) { memcpy(text + len, blocks[p][(c >> p) & 1], 4); len += 4; }
        text[len++] = '\n';
    }
    uint32_t plain0 = 0;   // the unseeded FNV low bits of the first and every token: all equal
    int same = 1;
    for (uint32_t c = 0; c < (1u << PAIRS); c += 4099) {
        uint32_t x = 2166136261u;
        for (int p = 0; p < PAIRS; p++) for (int i = 0; i < 4; i++) x = (x ^ (unsigned char)blocks[p][(c >> p) & 1][i]) * 16777619u;
        if (c == 0) plain0 = x & mask; else same &= (x & mask) == plain0;
    }
    CHECK(same, "the crafted tokens share their plain FNV-1a low %d bits", K);
    bert_vocab *v = bert_vocab_parse(text, len, "crafted");
    if (CHECK(v && v->size == (1 << PAIRS) + 5, "the crafted vocab of %d tokens parses", (1 << PAIRS) + 5)) {
        uint32_t run = 0, longest = 0;
        for (uint32_t i = 0; i <= 2 * v->slot_mask + 1; i++) {   // twice round: a run may wrap
            run = v->slot[i & v->slot_mask] >= 0 ? run + 1 : 0;
            if (run > longest) longest = run;
        }
        CHECK(longest < 200, "longest run of occupied slots %u of %u (all %d in one chain without the seed and mix)",
              longest, v->slot_mask + 1, v->size - 5);
        int ok = 1;
        for (int id = 0; id < v->size; id += 997) ok &= bert_vocab_id(v, bert_vocab_token(v, id), strlen(bert_vocab_token(v, id))) == id;
        CHECK(ok, "every 997th crafted token maps back to its id");
    }
    bert_vocab_free(v);
    free(text);
}

// the ids of text under v, [UNK]s counted into *unk
static int count_unk(const bert_vocab *v, const char *text, int *unk) {
    static int32_t ids[4096];
    int n = bert_tokenize(v, 1, text, strlen(text), ids, 4096);
    *unk = 0;
    for (int i = 0; i < n && i < 4096; i++) *unk += ids[i] == v->unk_id;
    return n;
}

static int same_vocab(const bert_vocab *a, const bert_vocab *b) {
    int same = a && b && a->size == b->size;
    for (int id = 0; same && id < a->size; id++) same = !strcmp(bert_vocab_token(a, id), bert_vocab_token(b, id));
    return same;
}

// bert_vocab_build: specials first, the whole alphabet twice, pieces by count, deterministic, capped
static void test_vocab_build(void) {
    const char *text = "The walker walked; walking walks.\nThe Walker's CAF\xc3\x89 and caf\xc3\xa9 \xce\xa3\xce\xa3!\n\n"
                       "\xe4\xb8\xad\xe6\x96\x87 walkers talk, talked, talking \xed\x95\x9c\xea\xb5\xad. Unwalkable walkways.\n";
    bert_vocab *v = bert_vocab_build(text, strlen(text), 1, 200, 1), *again = bert_vocab_build(text, strlen(text), 1, 200, 1);
    if (!CHECK(v != NULL, "build a vocab of at most 200 (%s)", v ? "ok" : bert_last_error())) { bert_vocab_free(again); return; }
    CHECK(v->pad_id == 0 && v->unk_id == 1 && v->cls_id == 2 && v->sep_id == 3 && v->mask_id == 4, "[PAD] [UNK] [CLS] [SEP] [MASK] are ids 0..4");
    char words[512], one[8], seen[512] = { 0 };
    int n = bert_basic_tokenize(1, text, strlen(text), words, sizeof words), all = n > 0, chars = 0;
    for (int i = 0; i < n; i++) {   // every character of the normalised words, alone and as "##"
        int len = 1;
        while (((unsigned char)words[i + len] & 0xC0) == 0x80) len++;
        if (words[i] != ' ') {
            memcpy(one, "##", 2); memcpy(one + 2, words + i, (size_t)len);
            all &= bert_vocab_id(v, one + 2, (size_t)len) >= 5 && bert_vocab_id(v, one, (size_t)len + 2) >= 5;
            int id = bert_vocab_id(v, one + 2, (size_t)len);
            if (id >= 0 && id < 512 && !seen[id]) { seen[id] = 1; chars++; }
        }
        i += len - 1;
    }
    CHECK(all, "every character of the text is a token and a ## token (%d distinct)", chars);
    int unk, m = count_unk(v, text, &unk);
    CHECK(m > 0 && unk == 0, "the text tokenizes into %d ids without [UNK]", m);
    CHECK(bert_vocab_id(v, "walk", 4) >= 0 && bert_vocab_id(v, "##ing", 5) >= 0 && bert_vocab_id(v, "walk", 4) < bert_vocab_id(v, "walked", 6),
          "frequent prefixes and ## suffixes learned, the more frequent first (walk %d, walked %d)", bert_vocab_id(v, "walk", 4),
          bert_vocab_id(v, "walked", 6));
    CHECK(same_vocab(v, again), "the same text gives the same vocab, token for token (%d)", v->size);
    bert_vocab *cased = bert_vocab_build(text, strlen(text), 0, 200, 1);
    CHECK(cased && bert_vocab_id(cased, "W", 1) >= 0 && bert_vocab_id(v, "W", 1) < 0, "do_lower_case as bert_tokenize: 'W' only in the cased vocab");
    bert_vocab *small = bert_vocab_build(text, strlen(text), 1, 5 + 2 * chars + 7, 1);
    CHECK(small && small->size == 5 + 2 * chars + 7 && count_unk(small, text, &unk) > m && unk == 0,
          "vocab_size %d is respected exactly; fewer pieces, more ids, still no [UNK]", 5 + 2 * chars + 7);
    bert_vocab *tiny = bert_vocab_build(text, strlen(text), 1, 11, 1);
    CHECK(tiny && tiny->size == 11 && count_unk(tiny, text, &unk) > 0 && unk > 0, "vocab_size 11 < the alphabet: the 3 most frequent characters, [UNK] for the rest");
    bert_vocab *rare = bert_vocab_build(text, strlen(text), 1, 1000, 1000);
    CHECK(rare && rare->size == 5 + 2 * chars, "min_frequency above every count: the alphabet alone (%d)", rare ? rare->size : -1);
    static const struct { const char *text; size_t len; int size, min; const char *what; } bad[] = {
        { "abc", 3, 5, 1, "vocab_size 5" }, { "abc", 3, (1 << 24) + 1, 1, "vocab_size 2^24 + 1" },
        { "abc", 3, 100, 0, "min_frequency 0" }, { NULL, 3, 100, 1, "NULL text of length 3" },
        { " \t\n\x01 ", 5, 100, 1, "a text without words" },
    };
    for (int k = 0; k < N_OF(bad); k++) {
        bert_vocab *x = bert_vocab_build(bad[k].text, bad[k].len, 1, bad[k].size, bad[k].min);
        CHECK(!x && strstr(bert_last_error(), "bert_vocab_build: ") == bert_last_error(), "build with %-22s -> %s", bad[k].what, bert_last_error());
        bert_vocab_free(x);
    }
    char path[] = "/tmp/bert_test_vocab_XXXXXX", tmp[64];
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (f) fclose(f);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    bert_vocab *loaded = f && bert_vocab_save(v, path) == BERT_OK ? bert_vocab_load(path) : NULL;
    CHECK(same_vocab(v, loaded) && !has_file(tmp), "bert_vocab_save + bert_vocab_load: the same ids, no PATH.tmp left");
    CHECK(bert_vocab_save(v, "/nonexistent/vocab.txt") == BERT_ERR_IO && strstr(bert_last_error(), "/nonexistent/vocab.txt: "),
          "save into a missing directory -> %s", bert_last_error());
    CHECK(bert_vocab_save(NULL, path) == BERT_ERR_ARG, "save a NULL vocab -> BERT_ERR_ARG");
    remove(path);
    bert_vocab_free(v); bert_vocab_free(again); bert_vocab_free(cased); bert_vocab_free(small);
    bert_vocab_free(tiny); bert_vocab_free(rare); bert_vocab_free(loaded);
}

int main(void) {
    bert_vocab *v = bert_vocab_parse(VOCAB, strlen(VOCAB), "test vocab");
    if (!CHECK(v != NULL, "parse the test vocab (%s)", v ? "ok" : bert_last_error())) return check_summary();
    test_vocab(v);
    test_hash_flooding();
    test_cases(v);
    test_marks();
    test_spans(v);
    test_truncation_and_args(v);
    test_basic();
    test_modes();
    test_real_vocabs();
    test_vocab_build();
    bert_vocab_free(v);
    return check_summary();
}
