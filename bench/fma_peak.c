// fma_peak.c - the machine's FP32 peak, measured: FMA throughput of the widest vector ISA compiled
// in (AVX-512 zmm, else AVX2+FMA ymm, else scalar C), on 1 thread and on N threads started at a
// barrier. Each thread runs 12 independent accumulator chains, 48 FMAs per loop iteration, on
// registers only (acc = acc * m + a, which converges: no overflow, no denormals).
//
//   fma_peak [--threads N] [--reps R] [--time S] [--all-isa] [--pin]
//
// GFLOP/s = threads * iterations * 48 FMAs * lanes * 2 flop / wall time between the barriers.
// Prints human lines, then one JSON object per measurement (the only lines starting with '{').
// "peak" is the median over the repetitions. Build:
//   gcc -O2 -march=native -std=c11 -pthread fma_peak.c -o fma_peak
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define FMA_HAVE_SIMD 1
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile float sink;

#define FMA_CHAINS 12
#define FMA_PER_ITER 48   // 12 chains x 4 unrolled

// Each kernel returns nothing; the sum of its accumulators goes to `sink` so nothing is elided.
// One body for both ISAs: V vector type, P intrinsic prefix, W lanes, R register constraint.
#define FMA_KERNEL(name, V, P, W, R)                                                        \
    static void name(long iters) {                                                          \
        V m = P##_set1_ps(0.999999f), a = P##_set1_ps(1e-6f);                               \
        V c[FMA_CHAINS];                                                                    \
        _Pragma("GCC unroll 12") for (int i = 0; i < FMA_CHAINS; i++) c[i] = P##_set1_ps((float)i); \
        for (long it = 0; it < iters; it++) {                                               \
            _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)  /* fully unrolled: 48 FMAs */ \
                _Pragma("GCC unroll 12") for (int i = 0; i < FMA_CHAINS; i++)               \
                    c[i] = P##_fmadd_ps(c[i], m, a);                                        \
            __asm__ volatile("" : "+" R(m), "+" R(a)); /* keep m, a opaque to the optimizer */ \
        }                                                                                   \
        V s = c[0];                                                                         \
        _Pragma("GCC unroll 12") for (int i = 1; i < FMA_CHAINS; i++) s = P##_add_ps(s, c[i]); \
        float t[W], sum = 0.0f;                                                             \
        P##_storeu_ps(t, s);                                                                \
        for (int i = 0; i < W; i++) sum += t[i];                                            \
        sink = sum;                                                                         \
    }

#if defined(__AVX512F__)
FMA_KERNEL(kernel_avx512, __m512, _mm512, 16, "v")
#endif
#if defined(__AVX2__) && defined(__FMA__)
FMA_KERNEL(kernel_avx2, __m256, _mm256, 8, "x")
#endif

#ifndef FMA_HAVE_SIMD
static void kernel_scalar(long iters) {   // what plain C gets: the compiler may or may not use FMA
    float m = 0.999999f, a = 1e-6f, c[FMA_CHAINS];
    for (int i = 0; i < FMA_CHAINS; i++) c[i] = (float)i;
    for (long it = 0; it < iters; it++) {
        for (int r = 0; r < 4; r++)
            for (int i = 0; i < FMA_CHAINS; i++) c[i] = c[i] * m + a;
        __asm__ volatile("" : "+m"(m), "+m"(a));
    }
    float s = 0.0f;
    for (int i = 0; i < FMA_CHAINS; i++) s += c[i];
    sink = s;
}
#endif

typedef struct { const char *name; int lanes; void (*fn)(long); } isa_kernel;

static int isa_list(isa_kernel *k) {   // widest first
    int n = 0;
#if defined(__AVX512F__)
    k[n++] = (isa_kernel){ "avx512", 16, kernel_avx512 };
#endif
#if defined(__AVX2__) && defined(__FMA__)
    k[n++] = (isa_kernel){ "avx2", 8, kernel_avx2 };
#endif
#ifndef FMA_HAVE_SIMD
    k[n++] = (isa_kernel){ "scalar", 1, kernel_scalar };   // no SIMD compiled in
#endif
    return n;
}

typedef struct {
    pthread_barrier_t *bar;
    const isa_kernel *k;
    long iters;
    int tid, pin, ncpu;
} worker;

static void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *worker_main(void *p) {
    worker *w = (worker *)p;
    if (w->pin) pin_to(w->tid % w->ncpu);
    pthread_barrier_wait(w->bar);
    w->k->fn(w->iters);
    pthread_barrier_wait(w->bar);
    return NULL;
}

// one measurement: nth threads (the caller is thread 0), all start at a barrier; returns seconds
static double run_once(const isa_kernel *k, int nth, long iters, int pin, int ncpu) {
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)nth);
    pthread_t *th = (pthread_t *)calloc((size_t)nth, sizeof(pthread_t));
    worker *w = (worker *)calloc((size_t)nth, sizeof(worker));
    for (int t = 0; t < nth; t++) w[t] = (worker){ &bar, k, iters, t, pin, ncpu };
    for (int t = 1; t < nth; t++) pthread_create(&th[t], NULL, worker_main, &w[t]);
    if (pin) pin_to(0);
    pthread_barrier_wait(&bar);
    double t0 = now_s();
    k->fn(iters);
    pthread_barrier_wait(&bar);
    double dt = now_s() - t0;
    for (int t = 1; t < nth; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&bar);
    free(th); free(w);
    return dt;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int nth = (int)sysconf(_SC_NPROCESSORS_ONLN), reps = 7, all = 0, pin = 0;
    int ncpu = nth > 0 ? nth : 1;
    double target = 0.25;   // seconds per measurement
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) nth = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--time") && i + 1 < argc) target = atof(argv[++i]);
        else if (!strcmp(argv[i], "--all-isa")) all = 1;
        else if (!strcmp(argv[i], "--pin")) pin = 1;
        else {
            fprintf(stderr, "usage: fma_peak [--threads N] [--reps R] [--time S] [--all-isa] [--pin]\n");
            return 2;
        }
    }
    if (nth < 1) nth = 1;
    if (reps < 1) reps = 1;
    isa_kernel ks[3];
    int nk = isa_list(ks);
    if (!all) nk = 1;
    int counts[2] = { 1, nth };
    int ncounts = nth > 1 ? 2 : 1;
    printf("fma_peak: widest ISA compiled in: %s (%d fp32 lanes), %d chains x 4 = %d FMA per iteration, "
           "%d online CPUs, %d reps of ~%.2f s, median reported%s\n",
           ks[0].name, ks[0].lanes, FMA_CHAINS, FMA_PER_ITER, ncpu, reps, target, pin ? ", pinned" : "");
    double *g = (double *)malloc((size_t)reps * sizeof(double));
    for (int ki = 0; ki < nk; ki++) {
        const isa_kernel *k = &ks[ki];
        double flop_per_iter = (double)FMA_PER_ITER * k->lanes * 2.0;
        // calibrate on one thread: iterations for ~target seconds
        long iters = 1 << 16;
        for (;;) {
            double dt = run_once(k, 1, iters, pin, ncpu);
            if (dt > 0.02 || iters > (1L << 40)) { iters = (long)(iters * target / dt) + 1; break; }
            iters *= 4;
        }
        for (int ci = 0; ci < ncounts; ci++) {
            int n = counts[ci];
            run_once(k, n, iters / 8 + 1, pin, ncpu);   // warm-up (clock ramp, thread start)
            for (int r = 0; r < reps; r++) g[r] = n * (double)iters * flop_per_iter / run_once(k, n, iters, pin, ncpu) / 1e9;
            qsort(g, (size_t)reps, sizeof(double), cmp_double);
            double med = reps % 2 ? g[reps / 2] : 0.5 * (g[reps / 2 - 1] + g[reps / 2]);
            printf("fma_peak %-6s %d thread%s: min %.1f / med %.1f / max %.1f GFLOP/s (%.1f per thread)\n",
                   k->name, n, n > 1 ? "s" : " ", g[0], med, g[reps - 1], med / n);
            printf("{\"workload\":\"fma_%s_%dt\",\"impl\":\"fma_peak\",\"isa\":\"%s\",\"widest\":%s,\"lanes\":%d,"
                   "\"threads\":%d,\"reps\":%d,\"gflops_min\":%.2f,\"gflops\":%.2f,\"gflops_max\":%.2f,"
                   "\"spread\":%.3f,\"pinned\":%s}\n",
                   k->name, n, k->name, ki == 0 ? "true" : "false", k->lanes, n, reps, g[0], med, g[reps - 1],
                   g[reps - 1] / g[0], pin ? "true" : "false");
            fflush(stdout);
        }
    }
    free(g);
    return 0;
}
