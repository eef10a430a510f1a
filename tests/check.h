// check.h - the tiny test harness shared by tests/*.c: counters, tolerance checks, fixture paths.
// Each test program includes bert.h's implementation once, then this file, and ends with
// `return check_summary();`, which prints "N passed, N failed" and exits non-zero on failure.
#ifndef CHECK_H
#define CHECK_H
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond, ...) check_report((cond) != 0, #cond, __FILE__, __LINE__, __VA_ARGS__)

static inline int check_report(int ok, const char *expr, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "  ok  " : "  FAIL");
    vprintf(fmt, ap);
    va_end(ap);
    if (!ok) printf("   [%s:%d: %s]", file, line, expr);
    printf("\n");
    if (ok) check_passed++; else check_failed++;
    return ok;
}

// |got - ref| <= atol + rtol*|ref| for every element; prints max abs/rel error and, on failure,
// the first mismatching pairs. Returns 1 when within tolerance.
static inline int check_close(const char *label, const float *got, const float *ref, size_t n, double atol, double rtol) {
    double maxabs = 0.0, maxrel = 0.0;
    size_t bad = 0, first_bad = n;
    for (size_t i = 0; i < n; i++) {
        double a = got[i], b = ref[i], d = fabs(a - b);
        if (d > maxabs) maxabs = d;
        if (fabs(b) > 0 && d / fabs(b) > maxrel) maxrel = d / fabs(b);
        if (!(d <= atol + rtol * fabs(b))) { if (!bad) first_bad = i; bad++; }
    }
    int ok = check_report(bad == 0, "within tolerance", __FILE__, __LINE__,
                          "%-52s n=%-7zu maxabs %.2e maxrel %.2e (atol %.0e rtol %.0e)", label, n, maxabs, maxrel, atol, rtol);
    for (size_t i = first_bad, shown = 0; !ok && i < n && shown < 5; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (d <= atol + rtol * fabs((double)ref[i])) continue;
        printf("         [%zu] got %.9g ref %.9g\n", i, (double)got[i], (double)ref[i]);
        shown++;
    }
    return ok;
}

static inline int check_summary(void) {
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

// fixture directory: tests/ref relative to the repo root (make runs tests from there)
#ifndef CHECK_REF_DIR
#define CHECK_REF_DIR "tests/ref"
#endif

static inline const char *check_path(const char *file) {
    static char buf[8][512];
    static int next;
    char *p = buf[next++ & 7];
    snprintf(p, 512, "%s/%s", CHECK_REF_DIR, file);
    return p;
}
#endif
