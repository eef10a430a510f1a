// fuzz_squad.c - examples/squad.c's SQuAD v1.1 reader (JSON -> articles, paragraphs, questions,
// answers with offsets checked against the context) on arbitrary bytes.
#include "fuzz_example.h"
#include "../../examples/squad.c"
#include "fuzz_tail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path(data, size, ".json");
    squad_data d;
    fuzz_track_start();
    if (!setjmp(fuzz_jump)) read_squad(&d, path, NULL, NULL, 1);
    fuzz_release();
    return 0;
}
