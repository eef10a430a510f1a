// fuzz_tfrecord.c - a TFRecord file of arbitrary bytes: index it, read every record as a pretraining
// example (T 128, P 20, the uncased vocab size), and decode the raw bytes as an Example directly.
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int32_t ids[128], mask[128], seg[128], pos[20], lab[20];
    static float w[20];
    bert_pretrain_example ex = { 128, 20, ids, mask, seg, pos, lab, w, 0 };
    (void)bert_example_decode(&ex, data, size, 30522);
    bert_pretrain_example small = { 4, 2, ids, mask, seg, pos, lab, w, 0 };
    (void)bert_example_decode(&small, data, size, 0);
    const char *path = fuzz_path(data, size, ".bin");
    uint64_t *offs; size_t n;
    if (bert_tfrecord_index(path, &offs, &n) == BERT_OK) BERT_FREE(offs);
    bert_tfrecord r;
    if (bert_tfrecord_open(&r, path) != BERT_OK) return 0;
    for (int k = 0; k < 1000 && bert_tfrecord_next_example(&r, &ex, 30522) == BERT_OK && !r.eof; k++) {}
    bert_tfrecord_close(&r);
    return 0;
}
