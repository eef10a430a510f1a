// fuzz_vocab.c - vocab.txt parsing on arbitrary bytes; a vocab that loads must map every token back
// to its id, and tokenize a fixed text without trouble.
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bert_vocab *v = bert_vocab_parse((const char *)data, size, "fuzz");
    if (!v) return 0;
    for (int id = 0; id < v->size; id++) {
        const char *t = bert_vocab_token(v, id);
        int back = bert_vocab_id(v, t, strlen(t));
        if (back < 0 || strcmp(bert_vocab_token(v, back), t)) abort();
    }
    int32_t ids[64];
    const char *text = "Hello, world! unbelievable 北京 Café";
    (void)bert_tokenize(v, 1, text, strlen(text), ids, 64);
    bert_vocab_free(v);
    return 0;
}
