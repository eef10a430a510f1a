// fuzz_common.h - shared by the libFuzzer targets in tests/fuzz (make fuzz): bert.h's implementation
// with the file-based parsers fed through a per-process temp file.
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H
#define _DEFAULT_SOURCE
#define BERT_IMPLEMENTATION
#include "../../bert.h"
#include <stdio.h>
#include <unistd.h>

// the input as a file (the checkpoint and TFRecord readers take paths)
static const char *fuzz_file(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/bert_fuzz_%d.bin", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}
#endif
