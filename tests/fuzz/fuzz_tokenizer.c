// fuzz_tokenizer.c - the WordPiece tokenizer on arbitrary bytes (invalid UTF-8 included), uncased
// and cased, with the real uncased vocab when ../shared/data is there (else a small built-in one):
// counts agree between calls, spans are ordered and inside the text, and the basic tokenizer agrees
// on the length it reports.
#include "fuzz_common.h"

static bert_vocab *vocab;

static bert_vocab *load(void) {
    bert_vocab *v = bert_vocab_load("../shared/data/vocab/bert_uncased_vocab.txt");
    if (v) return v;
    static const char small[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nthe\n##s\n##ing\nhello\n,\n.\n北\n京\n";
    return bert_vocab_parse(small, sizeof small - 1, "builtin");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!vocab && !(vocab = load())) abort();
    enum { CAP = 4096 };
    static int32_t ids[CAP], begin[CAP], end[CAP];
    for (int lower = 0; lower < 2; lower++) {
        int n = bert_tokenize(vocab, lower, (const char *)data, size, ids, CAP);
        int m = bert_tokenize_spans(vocab, lower, (const char *)data, size, ids, begin, end, CAP);
        if (n != m) abort();
        for (int i = 0; i < m && i < CAP; i++) {
            if (ids[i] < 0 || ids[i] >= vocab->size) abort();
            if (begin[i] < 0 || end[i] < begin[i] || (size_t)end[i] > size) abort();
            if (i && begin[i] < begin[i - 1]) abort();
        }
        static char out[1 << 16];
        int len = bert_basic_tokenize(lower, (const char *)data, size, out, sizeof out);
        if (len >= 0 && len < (int)sizeof out && strlen(out) != (size_t)len) abort();
    }
    return 0;
}
