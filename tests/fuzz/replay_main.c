// replay_main.c - a fuzz target without libFuzzer: runs its LLVMFuzzerTestOneInput once on each file of
// REPLAY_DIR (the inputs that once crashed it, kept in tests/fuzz/regressions/TARGET). make test builds
// one per target with the normal compiler, and `make test SAN=1` with ASan + UBSan, which is where a
// regression shows: a crash, a sanitizer report or an abort() of the harness's own checks ends the
// program before its summary line.
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void) {
    DIR *d = opendir(REPLAY_DIR);
    if (!d) { printf("FAIL cannot open %s\n0 passed, 1 failed\n", REPLAY_DIR); return 1; }
    char *names[256];
    int n = 0, passed = 0, failed = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 256;)
        if (e->d_name[0] != '.') names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", REPLAY_DIR, names[i]);
        FILE *f = fopen(path, "rb");
        uint8_t *buf = NULL;
        long size = -1;
        if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
            (buf = (uint8_t *)malloc((size_t)size + 1)) && fread(buf, 1, (size_t)size, f) == (size_t)size) {
            LLVMFuzzerTestOneInput(buf, (size_t)size);
            printf("ok   %s (%ld bytes): no crash, no sanitizer report\n", path, size);
            passed++;
        } else {
            printf("FAIL %s: cannot read\n", path);
            failed++;
        }
        if (f) fclose(f);
        free(buf);
        free(names[i]);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
