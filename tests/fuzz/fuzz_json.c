// fuzz_json.c - the JSON reader on arbitrary bytes: parse, walk every node, look keys up, free.
#include "fuzz_common.h"

static size_t walk(const bert_json *j, int depth) {
    size_t n = 1;
    if (j->type == BERT_JSON_STRING && j->string_len != strlen(j->string) && j->string_len < strlen(j->string)) abort();
    for (int i = 0; i < j->count; i++) n += walk(&j->child[i], depth + 1);
    if (j->type == BERT_JSON_OBJECT) (void)bert_json_get(j, "hidden_size");
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bert_json *j = NULL;
    if (bert_json_parse(&j, (const char *)data, size) == BERT_OK) {
        walk(j, 0);
        bert_json_free(j);
    } else if (j) abort();   // failure must leave *out NULL
    return 0;
}
