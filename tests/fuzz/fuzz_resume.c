// fuzz_resume.c - the run layer's checkpoint handling on arbitrary bytes: examples/run.h's --resume
// (run__resume -> run__load) in an output directory whose newest checkpoint holds a valid model of a
// tiny config beside the input as its state.safetensors (optimizer moments, step, data cursor,
// fingerprint) and, after the last "RUNI" in the input, its run_id file. A refused checkpoint ends
// in run_die -> exit, which fuzz_example.h turns into a jump back here.
// FUZZ_WRITE_SEED=PATH makes the binary write a valid state file there (the seed) and exit.
#include "fuzz_example.h"
#define BERT_IMPLEMENTATION
#include "../../bert.h"
#include "../../examples/run.h"
#include "fuzz_tail.h"
#include <sys/stat.h>

static char out_dir[96], ckpt_dir[160];
static bert_model *model;
static run_opts opts;

static void put(const char *name, const uint8_t *data, size_t size) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", ckpt_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

static void begin(run *r) {
    memset(r, 0, sizeof *r);
    r->o = &opts; r->m = model; r->n_train = 10; r->total_steps = 100; r->stop_reason = "done";
    snprintf(r->fingerprint, sizeof r->fingerprint, "fuzz data");
    r->opt = bert_optim_defaults(BERT_OPTIM_ADAMW);
    if (bert_optim_init(&r->opt, model)) abort();
}

static void cleanup(void) {   // the files and directories Initialize made (libFuzzer ends with exit)
    char path[256];
    static const char *const names[] = { "state.safetensors", "model.safetensors", "run_id" };
    for (int i = 0; i < 3; i++) { snprintf(path, sizeof path, "%s/%s", ckpt_dir, names[i]); remove(path); }
    snprintf(path, sizeof path, "%s/.lock", out_dir);
    remove(path);
    rmdir(ckpt_dir);
    rmdir(out_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    bert_config c = bert_config_default();
    c.vocab_size = 8; c.hidden_size = 4; c.num_hidden_layers = 1; c.num_attention_heads = 1;
    c.intermediate_size = 8; c.max_position_embeddings = 8; c.type_vocab_size = 2;
    if (!(model = bert_model_create(&c, 1))) abort();
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(out_dir, sizeof out_dir, "%s/bert_fuzz_resume_%d", tmp, (int)getpid());
    snprintf(ckpt_dir, sizeof ckpt_dir, "%s/ckpt-00000003", out_dir);
    mkdir(out_dir, 0777);
    mkdir(ckpt_dir, 0777);
    atexit(cleanup);
    char path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", ckpt_dir);
    if (bert_model_save(model, path)) abort();
    opts = run_defaults();
    opts.out = out_dir; opts.resume = 1;
    const char *seed = getenv("FUZZ_WRITE_SEED");
    if (seed) {   // a complete state file, as run__save writes it
        run r;
        begin(&r);
        const char *kv[] = { "micro", "12", "epoch", "1", "cursor", "4", "bad_steps", "0", "data", "fuzz data" };
        int rc = bert_optim_save(&r.opt, model, seed, kv, 5);
        bert_optim_free(&r.opt);
        exit(rc ? 1 : 0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t state = size;
    for (size_t i = 0; i + 4 <= size; i++) if (!memcmp(data + i, "RUNI", 4)) state = i;
    put("state.safetensors", data, state);
    char path[256];
    snprintf(path, sizeof path, "%s/run_id", ckpt_dir);
    if (state < size) put("run_id", data + state + 4, size - state - 4); else remove(path);
    run r;
    begin(&r);
    fuzz_track_start();
    if (!setjmp(fuzz_jump)) {
        run__resume(&r);
        if (r.cursor > r.n_train) abort();   // the checks held
    }
    fuzz_release();
    bert_optim_free(&r.opt);
    return 0;
}
