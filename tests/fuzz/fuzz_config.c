// fuzz_config.c - bert_config.json parsing and checking on arbitrary bytes; a config that passes
// must round-trip through bert_config_to_json.
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bert_config c;
    if (bert_config_parse(&c, (const char *)data, size, "fuzz") != BERT_OK) return 0;
    char buf[2048];
    int n = bert_config_to_json(&c, buf, sizeof buf);
    bert_config d;
    if (n < 0 || bert_config_parse(&d, buf, (size_t)n, "again") != BERT_OK) abort();
    if (memcmp(&c, &d, sizeof c) != 0) abort();
    return 0;
}
