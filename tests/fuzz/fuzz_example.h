// fuzz_example.h - lets a libFuzzer target include an example program: its main is renamed and its
// die()/exit(1) on bad input jumps back to the target instead of ending the process (the examples
// report bad input and exit, by design; the fuzzer looks for crashes, hangs and memory errors).
// Allocations made while tracking is on are recorded, so what a parse abandoned by the jump still
// holds is freed (fuzz_release) instead of piling up.
#ifndef FUZZ_EXAMPLE_H
#define FUZZ_EXAMPLE_H
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>
#undef _DEFAULT_SOURCE   // the example defines it again (the headers above are already configured)
static jmp_buf fuzz_jump;
static void fuzz_exit(int code) { (void)code; longjmp(fuzz_jump, 1); }

static void **fz_live;
static size_t fz_n, fz_cap;
static int fz_on;
static void fz_track(void *p) {
    if (!p || !fz_on) return;
    if (fz_n == fz_cap) { fz_cap = fz_cap ? 2 * fz_cap : 1024; fz_live = (void **)realloc(fz_live, fz_cap * sizeof *fz_live); if (!fz_live) abort(); }
    fz_live[fz_n++] = p;
}
static void fz_untrack(void *p) {
    for (size_t i = fz_n; i-- > 0;) if (fz_live[i] == p) { fz_live[i] = fz_live[--fz_n]; return; }
}
static void *fuzz_malloc(size_t n) { void *p = malloc(n); fz_track(p); return p; }
static inline void *fuzz_calloc(size_t a, size_t b) { void *p = calloc(a, b); fz_track(p); return p; }
static void *fuzz_realloc(void *q, size_t n) {
    if (q) fz_untrack(q);
    void *p = realloc(q, n);
    fz_track(p ? p : q);
    return p;
}
static void fuzz_free(void *p) { if (p) { fz_untrack(p); free(p); } }
static inline char *fuzz_strdup(const char *s) { char *d = strdup(s); fz_track(d); return d; }
static void fuzz_track_start(void) { fz_on = 1; }
static void fuzz_release(void) { for (size_t i = 0; i < fz_n; i++) free(fz_live[i]); fz_n = 0; fz_on = 0; }

#define exit(code) fuzz_exit(code)
#define main example_main
#define malloc fuzz_malloc
#define calloc fuzz_calloc
#define realloc fuzz_realloc
#define free fuzz_free
#define strdup fuzz_strdup
#endif
