// test_crash_save.c - a checkpoint save killed at any byte leaves the previous checkpoint loadable.
// Built with -DBERT_TEST_FAULTS: bert.h then aborts a save after bert_test_fault_bytes bytes. For
// offsets across the whole file (header length, header, every tensor boundary region, the last
// byte) a child process saves a second model over the first and dies mid-write; the parent then
// loads the file: it must be the first model, bit for bit. Also: weights with NaN/Inf are refused
// on load, naming the tensor.
#define _DEFAULT_SOURCE
#define BERT_TEST_FAULTS
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "check.h"
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

static bert_config tiny(void) {
    bert_config c = bert_config_default();
    c.vocab_size = 50; c.hidden_size = 16; c.num_hidden_layers = 1; c.num_attention_heads = 2;
    c.intermediate_size = 32; c.max_position_embeddings = 16;
    return c;
}

int main(void) {
    bert_config c = tiny();
    bert_model *a = bert_model_create(&c, 1), *b = bert_model_create(&c, 2);
    const char *path = "build/crash_save_test.safetensors";
    CHECK(bert_model_save(a, path) == BERT_OK, "first checkpoint saved");
    unsigned char *d; size_t size = 0;
    if (bert__read_file(path, &d, &size) == BERT_OK) free(d);
    // offsets: every byte of the first 600 (length + header), then a spread over the data, the last bytes
    size_t offsets[900]; int n = 0;
    for (size_t k = 1; k <= 600 && k < size; k++) offsets[n++] = k;
    for (size_t k = 600; k < size && n < 880; k += size / 250 + 1) offsets[n++] = k;
    offsets[n++] = size - 1;
    int died = 0, intact = 0, left_tmp = 0;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            bert_test_fault_bytes = offsets[i];
            bert_model_save(b, path);
            _exit(0);   // not reached when the fault fires
        }
        int st = 0;
        waitpid(pid, &st, 0);
        died += WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
        bert_model *r = bert_model_load(path, NULL);
        intact += r && !memcmp(r->params, a->params, a->num_params * sizeof(float));
        bert_model_free(r);
        FILE *f = fopen("build/crash_save_test.safetensors.tmp", "rb");
        if (f) { left_tmp++; fclose(f); }
    }
    CHECK(died == n, "%d saves killed mid-write (at bytes 1..%zu of %zu)", died, size - 1, size);
    CHECK(intact == n, "after every one the previous checkpoint loads bit for bit (%d of %d)", intact, n);
    printf("         (a partial .tmp was left %d times; the next save replaces it)\n", left_tmp);
    CHECK(bert_model_save(b, path) == BERT_OK, "a save after the crashes succeeds over the leftover .tmp");
    bert_model *r = bert_model_load(path, NULL);
    CHECK(r && !memcmp(r->params, b->params, b->num_params * sizeof(float)), "and loads as the second model");
    bert_model_free(r);
    // a full disk mid-save (ENOSPC injected half-way): the error says so, the previous checkpoint
    // stays and loads, no temp file is left
    bert_test_fault_written = 0; bert_test_fault_bytes = size / 2; bert_test_fault_enospc = 1;
    int rc = bert_model_save(a, path);
    bert_test_fault_enospc = 0;
    CHECK(rc == BERT_ERR_IO && strstr(bert_last_error(), "crash_save_test.safetensors: No space left"), "a full disk: BERT_ERR_IO naming the file (%s)", bert_last_error());
    r = bert_model_load(path, NULL);
    FILE *tf = fopen("build/crash_save_test.safetensors.tmp", "rb");
    CHECK(r && !memcmp(r->params, b->params, b->num_params * sizeof(float)) && !tf, "after it the previous checkpoint loads bit for bit, no .tmp left");
    if (tf) fclose(tf);
    bert_model_free(r);
    // a symlink planted at PATH.tmp is replaced, never written through: its target stays as it was
    FILE *victim = fopen("build/crash_save_victim.txt", "wb");
    if (victim) { fputs("precious", victim); fclose(victim); }
    remove("build/crash_save_test.safetensors.tmp");
    int linked = symlink("crash_save_victim.txt", "build/crash_save_test.safetensors.tmp") == 0;
    rc = bert_model_save(a, path);
    unsigned char *vd = NULL; size_t vn = 0;
    int vok = bert__read_file("build/crash_save_victim.txt", &vd, &vn) == BERT_OK && vn == 8 && !memcmp(vd, "precious", 8);
    free(vd);
    r = bert_model_load(path, NULL);
    CHECK(linked && rc == BERT_OK && vok && r && !memcmp(r->params, a->params, a->num_params * sizeof(float)),
          "a symlink planted at PATH.tmp: the save succeeds, the link's target is unchanged byte for byte");
    bert_model_free(r);
    remove("build/crash_save_victim.txt");
    // NaN / Inf weights are refused, naming the tensor
    b->w.layer[0].ffn_o_w->data[3] = NAN;
    b->w.pool_b->data[0] = INFINITY;
    bert_model_save(b, path);
    r = bert_model_load(path, NULL);
    CHECK(!r && strstr(bert_last_error(), "NaN/Inf"), "a checkpoint with NaN/Inf weights is refused: %s", bert_last_error());
    remove(path);
    bert_model_free(a); bert_model_free(b);
    return check_summary();
}
