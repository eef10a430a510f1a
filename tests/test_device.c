// test_device.c - bert.h's device-memory hook (bert_memory, bert_ctx_create_on, bert_model_to) without a
// GPU: a simulated device whose memory is an mmap'd pool that is PROT_NONE except while one of its
// kernels (the CPU kernels, wrapped) or memory functions runs. Any place where bert.h's host code
// dereferences tensor memory directly faults, and the results must equal the CPU's bit for bit
// (same kernels, same order): a training step with dropout, optimizer steps, no-grad inference with
// the per-layer arena rewind, checkpoints from device memory, moving the model back.
#define _DEFAULT_SOURCE   // MAP_ANONYMOUS under -std=c11
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "check.h"
#include <sys/mman.h>

// ---- the simulated device: a bump allocator in one locked pool

#define POOL_BYTES ((size_t)512 << 20)   // reserved, not committed until touched
static unsigned char *pool;
static size_t pool_used;
static long live_allocs, uploads, downloads;

static void unlock(void) { mprotect(pool, POOL_BYTES, PROT_READ | PROT_WRITE); }
static void lock(void) { mprotect(pool, POOL_BYTES, PROT_NONE); }

static void *sim_alloc(size_t bytes) {
    size_t n = (bytes + 4095) & ~(size_t)4095;
    if (pool_used + n > POOL_BYTES) return NULL;
    void *p = pool + pool_used;
    pool_used += n;
    live_allocs++;
    unlock();
    memset(p, 0x7f, n);   // garbage, as a device's fresh memory (3.4e38 as floats)
    lock();
    return p;
}
static void sim_release(void *p) { if (p) live_allocs--; }
static void sim_zero(void *p, size_t n) { unlock(); memset(p, 0, n); lock(); }
static void sim_upload(void *d, const void *s, size_t n) { unlock(); memcpy(d, s, n); lock(); uploads++; }
static void sim_download(void *d, const void *s, size_t n) { unlock(); memcpy(d, s, n); lock(); downloads++; }
static void sim_copy(void *d, const void *s, size_t n) { unlock(); memcpy(d, s, n); lock(); }
static const bert_memory sim_mem = { 1, sim_alloc, sim_release, sim_zero, sim_upload, sim_download, sim_copy };

// every CPU kernel, run with the pool unlocked
static const bert_kernels *CPU;
#define W(name, params, args) static void sim_##name params { unlock(); CPU->name args; lock(); }
#define WR(ret, name, params, args) static ret sim_##name params { unlock(); ret r = CPU->name args; lock(); return r; }
W(sgemm, (int ta, int tb, int M, int N, int K, float al, const float *A, int lda, const float *B, int ldb, float be, float *Cm, int ldc),
  (ta, tb, M, N, K, al, A, lda, B, ldb, be, Cm, ldc))
W(embedding_forward, (float *o, const int32_t *i, const int32_t *t, const float *a, const float *b, const float *c, int B, int T, int C),
  (o, i, t, a, b, c, B, T, C))
W(embedding_backward, (float *a, float *b, float *c, const float *d, const int32_t *i, const int32_t *t, int B, int T, int C),
  (a, b, c, d, i, t, B, T, C))
W(linear_forward, (float *o, const float *x, const float *w, const float *b, int N, int I, int O), (o, x, w, b, N, I, O))
W(linear_backward, (float *dx, float *dw, float *db, const float *d, const float *x, const float *w, int N, int I, int O),
  (dx, dw, db, d, x, w, N, I, O))
W(linear_act_forward, (float *o, const float *x, const float *w, const float *b, const float *r, int N, int I, int O, int a),
  (o, x, w, b, r, N, I, O, a))
W(layernorm_forward, (float *o, float *m, float *r, const float *x, const float *w, const float *b, int N, int C, float e),
  (o, m, r, x, w, b, N, C, e))
W(layernorm_backward, (float *dx, float *dw, float *db, const float *d, const float *x, const float *w, const float *m, const float *r, int N, int C),
  (dx, dw, db, d, x, w, m, r, N, C))
W(attention_forward, (float *o, float *a, const float *q, const float *m, const float *r, int B, int T, int C, int NH, int K, float p, uint64_t s),
  (o, a, q, m, r, B, T, C, NH, K, p, s))
W(attention_backward, (float *dq, float *dr, const float *d, const float *q, const float *a, const float *r, int B, int T, int C, int NH, int K, float p, uint64_t s),
  (dq, dr, d, q, a, r, B, T, C, NH, K, p, s))
W(gelu_forward, (float *o, const float *x, size_t n, int a), (o, x, n, a))
W(gelu_backward, (float *dx, const float *d, const float *x, size_t n, int a), (dx, d, x, n, a))
W(tanh_forward, (float *o, const float *x, size_t n), (o, x, n))
W(tanh_backward, (float *dx, const float *d, const float *o, size_t n), (dx, d, o, n))
W(add_forward, (float *o, const float *a, const float *b, size_t n), (o, a, b, n))
W(accumulate, (float *d, const float *s, size_t n), (d, s, n))
W(scale_forward, (float *o, const float *x, size_t n, float a), (o, x, n, a))
W(scale_backward, (float *dx, const float *d, size_t n, float a), (dx, d, n, a))
W(dropout_forward, (float *o, const float *x, size_t n, float p, uint64_t s), (o, x, n, p, s))
W(dropout_backward, (float *dx, const float *d, size_t n, float p, uint64_t s), (dx, d, n, p, s))
WR(float, xent_forward, (float *p, const float *l, const int32_t *y, int N, int V, int ig), (p, l, y, N, V, ig))
W(xent_backward, (float *dl, const float *p, const int32_t *y, float dl0, int N, int V, int ig), (dl, p, y, dl0, N, V, ig))
W(gather_forward, (float *o, const float *x, const int32_t *r, int M, int C), (o, x, r, M, C))
W(gather_backward, (float *dx, const float *d, const int32_t *r, int M, int C), (dx, d, r, M, C))
WR(double, sumsq, (const float *x, size_t n), (x, n))
W(adam_update, (float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2, float e, float wd, float gs, float c1, float c2),
  (p, g, m, v, n, lr, b1, b2, e, wd, gs, c1, c2))
W(adam_direction_norms, (double *o, const float *p, const float *g, float *m, float *v, size_t n, float b1, float b2, float e, float wd, float gs, float c1, float c2),
  (o, p, g, m, v, n, b1, b2, e, wd, gs, c1, c2))
W(lamb_apply, (float *p, const float *m, const float *v, size_t n, float s, float e, float wd, float c1, float c2), (p, m, v, n, s, e, wd, c1, c2))
W(momentum_update, (float *p, const float *g, float *m, size_t n, float lr, float mu, float wd, float gs), (p, g, m, n, lr, mu, wd, gs))
#undef W
#undef WR

static bert_kernels sim;

static void make_sim(void) {
    sim = *CPU;   // entries not wrapped here (task-head ops) stay the CPU's; this test does not call them
    sim.name = "sim";
    sim.mem = &sim_mem;
#define SET(name) sim.name = sim_##name;
    SET(sgemm) SET(embedding_forward) SET(embedding_backward) SET(linear_forward) SET(linear_backward) SET(linear_act_forward)
    SET(layernorm_forward) SET(layernorm_backward) SET(attention_forward) SET(attention_backward)
    SET(gelu_forward) SET(gelu_backward) SET(tanh_forward) SET(tanh_backward) SET(add_forward) SET(accumulate)
    SET(scale_forward) SET(scale_backward) SET(dropout_forward) SET(dropout_backward) SET(xent_forward)
    SET(xent_backward) SET(gather_forward) SET(gather_backward) SET(sumsq) SET(adam_update)
    SET(adam_direction_norms) SET(lamb_apply) SET(momentum_update)
#undef SET
}

// ---- the test: the same work on the CPU and on the simulated device

static float *download(const float *d, size_t n) {
    float *h = (float *)malloc(n * sizeof(float));
    bert_copy_to_host(&sim, h, d, n * sizeof(float));
    return h;
}

static int same(const char *label, const float *got, const float *ref, size_t n) {
    return check_close(label, got, ref, n, 0.0, 0.0);
}

typedef struct { int32_t ids[32], types[32], mask[32], pos[8], labels[8], nsp[2]; bert_batch b; } batch_t;

static void make_batch(batch_t *t, int V) {
    for (int i = 0; i < 32; i++) { t->ids[i] = (i * 7 + 3) % V; t->types[i] = i % 16 >= 8; t->mask[i] = i % 16 < 13 + i / 16 * 3; }
    for (int i = 0; i < 8; i++) { t->pos[i] = (i * 3 + 1) % 16; t->labels[i] = i == 5 ? -100 : (i * 11) % V; }
    t->nsp[0] = 0; t->nsp[1] = 1;
    memset(&t->b, 0, sizeof t->b);
    t->b.B = 2; t->b.T = 16; t->b.MP = 4;
    t->b.input_ids = t->ids; t->b.token_type_ids = t->types; t->b.attention_mask = t->mask;
    t->b.masked_lm_positions = t->pos; t->b.masked_lm_ids = t->labels; t->b.next_sentence_label = t->nsp;
}

// three LAMB steps with dropout on; returns the losses and leaves the params in m
static void train(bert_model *m, bert_ctx *ctx, const bert_batch *b, float *losses, float *norms) {
    bert_optim o = bert_optim_defaults(BERT_OPTIM_LAMB);
    o.lr = 1e-2f;
    CHECK(bert_optim_init(&o, m) == BERT_OK, "optim init on %s", m->k ? m->k->name : "host");
    for (int s = 0; s < 3; s++) {
        bert_ctx_reset(ctx, (uint64_t)s);
        bert_model_zero_grad(m);
        bert_pretrain_out out = bert_pretrain_forward(ctx, m, b);
        losses[s] = bert_tensor_item(ctx, out.loss);
        bert_backward(ctx, out.loss);
        bert_optim_step(&o, m);
        norms[s] = o.last_grad_norm;
    }
    char path[64];
    snprintf(path, sizeof path, "build/test_device_optim_%s.safetensors", m->k ? "sim" : "cpu");
    CHECK(bert_optim_save(&o, m, path, NULL, 0) == BERT_OK, "bert_optim_save from %s memory", m->k ? "device" : "host");
    bert_optim o2 = bert_optim_defaults(BERT_OPTIM_LAMB);
    bert_optim_init(&o2, m);
    CHECK(bert_optim_load(&o2, m, path) == BERT_OK && o2.step == 3, "bert_optim_load into %s memory", m->k ? "device" : "host");
    float *m1 = m->k ? download(o.m, o.n) : o.m, *m2 = m->k ? download(o2.m, o2.n) : o2.m;
    CHECK(memcmp(m1, m2, o.n * sizeof(float)) == 0, "moments round-trip through the checkpoint");
    if (m->k) { free(m1); free(m2); }
    remove(path);
    bert_optim_free(&o);
    bert_optim_free(&o2);
}

int main(void) {
    CPU = bert_cpu_kernels();
    pool = (unsigned char *)mmap(NULL, POOL_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (!CHECK(pool != MAP_FAILED, "reserve the simulated device pool")) return check_summary();
    make_sim();

    bert_model *cm = bert_model_load(check_path("tiny.safetensors"), NULL), *dm = bert_model_load(check_path("tiny.safetensors"), NULL);
    if (!CHECK(cm && dm, "load tests/ref/tiny.safetensors")) return check_summary();
    CHECK(bert_model_to(dm, &sim) == BERT_OK && dm->k == &sim, "bert_model_to: params and grads in device memory");
    CHECK(!bert_model_add_tensor(dm, "late.head", 2, 0, 0, 1), "adding a head after the move is refused: %s", bert_last_error());
    batch_t bt;
    make_batch(&bt, cm->config.vocab_size);

    // training: a ctx with a small first block, so the first steps chain device blocks and merge them
    bert_ctx *cc = bert_ctx_create(1 << 20), *dc = bert_ctx_create_on(&sim, 1 << 14);
    float cl[3], dl[3], cn[3], dn[3];
    train(cm, cc, &bt.b, cl, cn);
    long before = downloads;
    train(dm, dc, &bt.b, dl, dn);
    printf("  (device run: %ld downloads over 3 steps and the checkpoint checks)\n", downloads - before);
    CHECK(memcmp(cl, dl, sizeof cl) == 0 && memcmp(cn, dn, sizeof cn) == 0,
          "3 LAMB steps with dropout: losses %.6f %.6f %.6f and grad norms identical on the device", (double)dl[0], (double)dl[1], (double)dl[2]);
    float *dp = download(dm->params, dm->num_params), *dg = download(dm->grads, dm->num_params);
    same("params after 3 steps, device vs host", dp, cm->params, cm->num_params);
    same("grads of the last step, device vs host", dg, cm->grads, cm->num_params);
    free(dp); free(dg);
    CHECK(dc->data.high_water > 0 && dc->arena.high_water < dc->data.high_water / 4,
          "device ctx: %zu bytes of device floats, %zu of host headers/ints", dc->data.high_water, dc->arena.high_water);

    // the measuring table: the same step built on it needs exactly the device ctx's bytes, host and
    // device, and neither computes nor touches the model
    {
        bert_ctx *mc = bert_ctx_create_on(bert_measure_kernels(), 0);
        size_t bytes = cm->num_params * sizeof(float);
        float *p0 = (float *)malloc(bytes), *g0 = (float *)malloc(bytes);
        memcpy(p0, cm->params, bytes); memcpy(g0, cm->grads, bytes);
        bert_ctx_reset(mc, 0);
        bert_pretrain_out out = bert_pretrain_forward(mc, cm, &bt.b);
        float loss = bert_tensor_item(mc, out.loss);
        bert_backward(mc, out.loss);
        CHECK(mc->data.high_water == dc->data.high_water && mc->arena.high_water == dc->arena.high_water,
              "measured step: %zu + %zu bytes, the device step's %zu + %zu", mc->data.high_water, mc->arena.high_water,
              dc->data.high_water, dc->arena.high_water);
        CHECK(loss == 0.0f && memcmp(p0, cm->params, bytes) == 0 && memcmp(g0, cm->grads, bytes) == 0,
              "measuring computes nothing (loss reads %g) and leaves params and grads as they were", (double)loss);
        free(p0); free(g0);
        bert_ctx_free(mc);
    }

    // no-grad inference: the encoder pops both arenas after each layer; a fresh ctx with a tiny
    // block runs the chained-blocks path first, the merged single block after a reset
    bert_ctx *ic = bert_ctx_create_on(&sim, 1 << 12);
    ic->grad_enabled = cc->grad_enabled = 0;
    ic->training = cc->training = 0;
    for (int pass = 0; pass < 3; pass++) {
        bert_ctx_reset(ic, 0);
        bert_ctx_reset(cc, 0);
        bert_tensor *h = bert_encode(cc, cm, bt.ids, bt.types, bt.mask, 2, 16), *d = bert_encode(ic, dm, bt.ids, bt.types, bt.mask, 2, 16);
        float *got = download(d->data, d->numel);
        char label[64];
        snprintf(label, sizeof label, "no-grad encoder with arena rewind, pass %d", pass);
        same(label, got, h->data, h->numel);
        free(got);
        // what stays: the embeddings and their LayerNorm (+ mean, rstd), whose floats each layer's output
        // overwrites in turn: no layer's intermediates, and no output of its own
        size_t keep = 2 * bert__pad(h->numel * sizeof(float)) + 2 * bert__pad(32 * sizeof(float));
        if (pass > 0) CHECK(ic->data.used == keep, "the device arena keeps the embeddings' LayerNorm only, each layer's output over it (%zu bytes, expected %zu)",
                            ic->data.used, keep);
    }

    // the rewind's move when the kept data is only a little above the mark: many non-overlapping pieces
    {
        bert_ctx *rc = bert_ctx_create_on(&sim, 1 << 16);
        bert_ctx_reset(rc, 0);
        bert__marks mk = bert__marks_now(rc);
        bert__tensor(rc, 1, 16, 0, 0, 0);   // 64 bytes between the mark and what is kept
        bert_tensor *big = bert__tensor(rc, 1, 1000, 0, 0, 0);
        float vals[1000], *got;
        for (int i = 0; i < 1000; i++) vals[i] = (float)i * 0.5f - 7.0f;
        bert_copy_from_host(&sim, big->data, vals, sizeof vals);
        bert_tensor *kept = bert__ctx_rewind_keep(rc, mk, big);
        got = download(kept->data, 1000);
        CHECK(kept->data == (float *)bert__block_base(mk.data.block) && rc->data.used == bert__pad(sizeof vals),
              "rewind moved the kept floats down to the mark");
        same("rewind by a 64-byte gap (63 pieces)", got, vals, 1000);
        free(got);
        bert_ctx_free(rc);
    }

    // checkpoints from and into device memory
    const char *path = "build/test_device_model.safetensors";
    CHECK(bert_model_save(dm, path) == BERT_OK, "bert_model_save from device memory");
    bert_model *back = bert_model_load(path, NULL);
    CHECK(back && memcmp(back->params, cm->params, cm->num_params * sizeof(float)) == 0, "the file holds the device params");
    bert_model_zero_grad(dm);
    CHECK(bert_model_load_weights(dm, check_path("tiny.safetensors")) == BERT_OK, "bert_model_load_weights into device memory");
    CHECK(bert_model_to(dm, CPU) == BERT_OK && dm->k == NULL, "bert_model_to back to the host");
    bert_model *orig = bert_model_load(check_path("tiny.safetensors"), NULL);
    CHECK(orig && memcmp(dm->params, orig->params, orig->num_params * sizeof(float)) == 0, "loaded weights came back to the host intact");
    remove(path);
    bert_model_free(orig);
    bert_model_free(back);

    bert_ctx_free(ic);
    bert_ctx_free(dc);
    bert_ctx_free(cc);
    bert_model_free(dm);
    bert_model_free(cm);
    CHECK(live_allocs == 0, "every device allocation released (%ld live)", live_allocs);
    munmap(pool, POOL_BYTES);
    return check_summary();
}
