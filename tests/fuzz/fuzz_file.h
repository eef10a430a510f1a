// fuzz_file.h - the input as a file, for the parsers that take a path (checkpoints, TFRecords, the
// example readers). One file per process and suffix, in /dev/shm when there is one (a tmpfs: no disk
// writeback per execution), else /tmp.
#ifndef FUZZ_FILE_H
#define FUZZ_FILE_H
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <unistd.h>

static inline const char *fuzz_path(const uint8_t *data, size_t size, const char *suffix) {
    static char path[96];
    static const char *dir;
    if (!dir) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/bert_fuzz_%d%s", dir, (int)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}
#endif
