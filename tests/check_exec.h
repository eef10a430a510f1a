// check_exec.h - for the tests that drive an example program (after bert.h's implementation and
// check.h): the binary's path, file checks, running it with its stdout/stderr in files.
#ifndef CHECK_EXEC_H
#define CHECK_EXEC_H
#include <sys/wait.h>

static char bin[600];   // the example under test, set by check_find_binary

// the example built next to this test program (build/X or build/san/X)
static inline void check_find_binary(const char *argv0, const char *name) {
    const char *slash = strrchr(argv0, '/');
    snprintf(bin, sizeof bin, "%.*s%s", slash ? (int)(slash - argv0 + 1) : 0, argv0, name);
}

static inline int file_exists(const char *p) { FILE *f = fopen(p, "rb"); if (f) fclose(f); return f != NULL; }

// runs `bin args` with stdout in out and stderr in out.err; the exit status, or 128 + signal
static inline int run(const char *args, const char *out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s > %s 2> %s.err", bin, args, out, out);
    int st = system(cmd);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// a whole file, NUL-terminated (free it); NULL if unreadable
static inline char *slurp(const char *path, size_t *n) {
    unsigned char *d;
    size_t len;
    if (bert__read_file(path, &d, &len)) return NULL;
    if (n) *n = len;
    return (char *)d;
}
#endif
