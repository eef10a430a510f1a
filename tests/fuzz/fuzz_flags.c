// fuzz_flags.c - the command-line layer on arbitrary argument vectors: the input split at NUL bytes
// into argv, parsed by examples/run.h's run_parse (bert_flags_parse over a task table of every flag
// type plus the run layer's common flags, then every common flag's range check). A bad flag ends in
// run_die -> exit, which fuzz_example.h turns into a jump back here; --help prints and exits likewise.
#include "fuzz_example.h"
#define BERT_IMPLEMENTATION
#include "../../bert.h"
#include "../../examples/run.h"
#include "fuzz_tail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char buf[4096];
    char *argv[130];
    int argc = 0;
    if (size >= sizeof buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    argv[argc++] = (char *)"fuzz";
    for (size_t i = 0; i <= size && argc < 128;) {   // NUL-separated arguments
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    static struct { int n; float x; const char *s; int b; bert_flag_list l; } t;
    memset(&t, 0, sizeof t);
    const bert_flag task[] = {
        { "n", BERT_FLAG_INT, &t.n, "an int" }, { "x", BERT_FLAG_FLOAT, &t.x, "a float" },
        { "s", BERT_FLAG_STR, &t.s, "a string" }, { "b", BERT_FLAG_BOOL, &t.b, "a bool" },
        { "l", BERT_FLAG_LIST, &t.l, "a list" }, { "lr", BERT_FLAG_FLOAT, &t.x, "a task flag over a common one" },
    };
    run_opts o = run_defaults();
    int saved_out = dup(1), devnull = open("/dev/null", O_WRONLY);   // --help's text is not the point
    if (devnull >= 0) dup2(devnull, 1);
    fuzz_track_start();
    if (!setjmp(fuzz_jump)) {
        run_parse("fuzz", "usage: fuzz", task, 6, &o, RUN_FLAGS_TRAIN | RUN_FLAGS_COMMON, argc, argv);
        if (o.batch_size < 1 || o.accumulation_steps < 1 || !(o.lr >= 0)) abort();   // the checks held
    }
    fuzz_release();
    fflush(stdout);
    if (saved_out >= 0) { dup2(saved_out, 1); close(saved_out); }
    if (devnull >= 0) close(devnull);
    return 0;
}
