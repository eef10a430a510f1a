// fuzz_classify.c - examples/classify.c's dataset readers (GLUE TSV as CoLA / SST-2 / MRPC lay them
// out, CLUE JSON lines as TNEWS) on arbitrary bytes.
#include "fuzz_example.h"
#include "../../examples/classify.c"
#include "fuzz_tail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bert_vocab *v;
    if (!v) v = bert_vocab_parse(fuzz_vocab_text, sizeof fuzz_vocab_text - 1, "builtin");
    const char *path = fuzz_path(data, size, ".cls");
    static const char *const tasks[] = { "cola", "sst2", "mrpc", "tnews" };
    for (int t = 0; t < 4; t++) {
        opt.task = tasks[t];
        dataset d;
        fuzz_track_start();
        scratch sc = { (int32_t *)fuzz_malloc(64 * sizeof(int32_t)), (int32_t *)fuzz_malloc(64 * sizeof(int32_t)), 64 };
        if (!setjmp(fuzz_jump)) dataset_load(&d, path, v, t != 2, &sc);
        labels.n = data_descs.n = 0;   // the global label tables' strings go with the release
        fuzz_release();   // the dataset, the scratch, and whatever a failed parse left
    }
    return 0;
}
