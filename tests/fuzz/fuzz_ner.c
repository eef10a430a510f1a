// fuzz_ner.c - examples/ner.c's CLUENER record parser (text, label spans, ids) on arbitrary bytes,
// as labelled and as test records.
#include "fuzz_example.h"
#include "../../examples/ner.c"
#include "fuzz_tail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) {   // what ner's main sets up before reading
        parse_types();
        vocab = bert_vocab_parse(fuzz_vocab_text, sizeof fuzz_vocab_text - 1, "builtin");
        char_cache = (int32_t *)calloc(0x110000, sizeof(int32_t));
        dropped_id = vocab->unk_id;
        ready = 1;
    }
    char err[512];
    for (int labelled = 0; labelled < 2; labelled++) {
        record r;
        fuzz_track_start();
        if (!setjmp(fuzz_jump)) (void)parse_record(&r, (const char *)data, size, labelled, 7, err, sizeof err);
        fuzz_release();
    }
    return 0;
}
