// test_autograd.c - the tape and the training loop around it: tape order and names, no-grad mode,
// gradient accumulation (backward and optimizer), arena reset and block merging, init, the
// parameter table, bit-identical resume from a checkpoint + optimizer state, and global-norm
// clipping at thresholds far from 1 (every optimizer's moments after one step).
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "check.h"

enum { B = 2, T = 12, MP = 3 };

static bert_config tiny_config(void) {
    bert_config c = bert_config_default();
    c.vocab_size = 50; c.hidden_size = 32; c.num_hidden_layers = 2; c.num_attention_heads = 4;
    c.intermediate_size = 64; c.max_position_embeddings = 16;
    return c;
}

typedef struct { int32_t ids[B * T], types[B * T], mask[B * T], pos[B * MP], labels[B * MP], nsp[B]; bert_batch b; } batch_buf;

static void make_batch(batch_buf *bb, uint64_t seed) {
    uint64_t s = bert_rng_stream(seed, 0, 0);
    for (int i = 0; i < B * T; i++) {
        bb->ids[i] = (int32_t)(bert_rng_uniform(s, (uint64_t)i) * 50);
        bb->types[i] = (i % T) >= T / 2;
        bb->mask[i] = !(i / T == 1 && i % T >= 9);   // sequence 1 padded after 9 tokens
    }
    for (int i = 0; i < B * MP; i++) {
        bb->pos[i] = 1 + i % MP * 2;
        bb->labels[i] = i == B * MP - 1 ? -100 : (int32_t)(bert_rng_uniform(s, 1000u + (uint64_t)i) * 50);
    }
    bb->nsp[0] = 0; bb->nsp[1] = 1;
    bert_batch b = { B, T, MP, bb->ids, bb->types, bb->mask, bb->pos, bb->labels, bb->nsp };
    bb->b = b;
}

static float train_step(bert_ctx *ctx, bert_model *m, bert_optim *o, const bert_batch *b, uint64_t step) {
    bert_ctx_reset(ctx, step);
    bert_model_zero_grad(m);
    bert_pretrain_out out = bert_pretrain_forward(ctx, m, b);
    bert_backward(ctx, out.loss);
    bert_optim_step(o, m);
    return out.loss->data[0];
}

static void test_tape(bert_model *m, const bert_batch *b) {
    bert_ctx *ctx = bert_ctx_create(1 << 16);
    bert_ctx_reset(ctx, 0);
    bert_pretrain_out o = bert_pretrain_forward(ctx, m, b);
    // per layer: linear attention linear dropout add layernorm linear gelu linear dropout add layernorm
    int expect = 3 /* embed ln dropout */ + 12 * 2 + 4 /* gather linear tanh + nsp linear */ + 1 /* nsp xent */ +
                 6 /* gather linear gelu ln linear xent */ + 1 /* add */;
    CHECK(ctx->tape_len == expect, "tape has %d nodes for L=2 pretraining (expected %d)", ctx->tape_len, expect);
    CHECK(ctx->tape[0].op == BERT_OP_EMBED && ctx->tape[1].op == BERT_OP_LAYERNORM && ctx->tape[3].op == BERT_OP_LINEAR &&
          ctx->tape[4].op == BERT_OP_ATTENTION && ctx->tape[ctx->tape_len - 1].op == BERT_OP_ADD,
          "tape order: embed, layernorm, dropout, linear(qkv), attention, ..., add(losses)");
    CHECK(bert_ctx_find(ctx, "layer.1.qkv") && bert_ctx_find(ctx, "pooled") && !bert_ctx_find(ctx, "layer.7"),
          "named tensors are found on the tape, unknown names are not");
    FILE *devnull = fopen("/dev/null", "w");
    if (devnull) { bert_tape_print(ctx, devnull); fclose(devnull); }
    CHECK(strcmp(bert_op_name(BERT_OP_SOFTMAX_XENT), "softmax_xent") == 0 && strcmp(bert_op_name(BERT_OP_COUNT), "?") == 0,
          "op names come from the table");

    // no-grad mode: nothing recorded, same numbers (dropout off in both)
    ctx->training = 0;
    bert_ctx_reset(ctx, 0);
    float loss_grad = bert_pretrain_forward(ctx, m, b).loss->data[0];
    ctx->grad_enabled = 0;
    bert_ctx_reset(ctx, 0);
    o = bert_pretrain_forward(ctx, m, b);
    CHECK(ctx->tape_len == 0 && o.loss->data[0] == loss_grad, "no-grad: empty tape, identical loss %.6f", o.loss->data[0]);
    bert_ctx_free(ctx);
}

static void test_accumulation(bert_model *m, const bert_batch *b) {
    bert_ctx *ctx = bert_ctx_create(1 << 20);
    ctx->training = 0;
    float *g1 = (float *)malloc(m->num_params * sizeof(float));
    bert_model_zero_grad(m);
    bert_ctx_reset(ctx, 0);
    bert_backward(ctx, bert_pretrain_forward(ctx, m, b).loss);
    memcpy(g1, m->grads, m->num_params * sizeof(float));
    bert_ctx_reset(ctx, 1);   // second micro-batch, grads not zeroed: they add up
    bert_backward(ctx, bert_pretrain_forward(ctx, m, b).loss);
    float *g2 = (float *)malloc(m->num_params * sizeof(float));
    for (size_t i = 0; i < m->num_params; i++) g2[i] = 2.0f * g1[i];
    check_close("backward twice accumulates 2x the gradient", m->grads, g2, m->num_params, 1e-7, 1e-6);
    double nz = 0;
    for (size_t i = 0; i < m->num_params; i++) nz += g1[i] != 0.0f;
    CHECK(nz > 0.9 * m->num_params - 50 * 32, "the gradient is dense where it should be (%.0f of %zu nonzero)", nz, m->num_params);

    // the accumulation rule: two micro-batches backward with weight 1/2 each == one step over their mean
    float *p0 = (float *)malloc(m->num_params * sizeof(float)), *p1 = (float *)malloc(m->num_params * sizeof(float));
    memcpy(p0, m->params, m->num_params * sizeof(float));
    bert_model_zero_grad(m);
    for (int k = 0; k < 2; k++) {
        bert_ctx_reset(ctx, (uint64_t)k);
        bert_backward_scaled(ctx, bert_pretrain_forward(ctx, m, b).loss, 0.5f);
    }
    check_close("backward_scaled 1/2 twice gives the mean gradient", m->grads, g1, m->num_params, 1e-7, 1e-6);
    bert_optim o = bert_optim_defaults(BERT_OPTIM_ADAMW);
    o.lr = 1e-2f;
    bert_optim_init(&o, m);
    bert_optim_step(&o, m);
    memcpy(p1, m->params, m->num_params * sizeof(float));
    memcpy(m->params, p0, m->num_params * sizeof(float));
    memcpy(m->grads, g1, m->num_params * sizeof(float));
    bert_optim_init(&o, m);
    bert_optim_step(&o, m);
    check_close("a step over two half-weighted micro-batches == one step over their mean", p1, m->params, m->num_params, 1e-7, 1e-5);
    CHECK(o.last_grad_norm > 0.0f, "the step reports the grad norm (%.4f)", o.last_grad_norm);
    memcpy(m->params, p0, m->num_params * sizeof(float));
    bert_optim_free(&o);
    free(g1); free(g2); free(p0); free(p1);
    bert_ctx_free(ctx);
}

static void test_arena(bert_model *m, const bert_batch *b) {
    bert_ctx *ctx = bert_ctx_create(1024);   // far too small: the first step chains blocks
    bert_ctx_reset(ctx, 0);
    bert_backward(ctx, bert_pretrain_forward(ctx, m, b).loss);
    size_t hw = bert_ctx_high_water(ctx);
    CHECK(ctx->arena.head->prev != NULL, "a step larger than the arena chains blocks (%zu bytes used)", hw);
    bert_ctx_reset(ctx, 1);
    CHECK(ctx->arena.head->prev == NULL && ctx->arena.head->size >= hw && ctx->arena.used == 0 && ctx->tape_len == 0,
          "reset merges the blocks into one of the high-water size and empties the tape");
    bert_arena_block *blk = ctx->arena.head;
    bert_backward(ctx, bert_pretrain_forward(ctx, m, b).loss);
    CHECK(ctx->arena.head == blk && blk->prev == NULL && bert_ctx_high_water(ctx) == hw,
          "the next step fits in that block: no allocation inside a step");
    bert_ctx_free(ctx);
}

// activation grads are reused once dead: same parameter grads, smaller footprint
static void test_grad_reuse(bert_model *m, const bert_batch *b) {
    size_t hw[2];
    float *g[2];
    for (int retain = 0; retain < 2; retain++) {
        bert_ctx *ctx = bert_ctx_create(1 << 16);
        ctx->retain_grads = retain;
        for (int s = 0; s < 2; s++) {   // the second step runs on the merged arena
            bert_ctx_reset(ctx, 0);
            bert_model_zero_grad(m);
            bert_backward(ctx, bert_pretrain_forward(ctx, m, b).loss);
        }
        hw[retain] = bert_ctx_high_water(ctx);
        g[retain] = (float *)malloc(m->num_params * sizeof(float));
        memcpy(g[retain], m->grads, m->num_params * sizeof(float));
        if (retain) CHECK(bert_ctx_find(ctx, "layer.1")->grad != NULL, "retain_grads keeps activation grads readable");
        else CHECK(bert_ctx_find(ctx, "layer.1")->grad == NULL, "by default a dead activation grad is released");
        bert_ctx_free(ctx);
    }
    CHECK(memcmp(g[0], g[1], m->num_params * sizeof(float)) == 0, "reusing grad memory gives bit-identical parameter grads");
    CHECK(hw[0] < hw[1], "reuse lowers the step's arena high water: %zu vs %zu bytes", hw[0], hw[1]);
    free(g[0]); free(g[1]);
}

static void test_init_and_table(void) {
    bert_config c = tiny_config();
    bert_model *m = bert_model_create(&c, 7);
    int ok_decay = 1, ok_init = 1;
    double sum = 0.0, sumsq = 0.0, maxabs = 0.0;
    size_t n = 0;
    for (int i = 0; i < m->num_tensors; i++) {
        const char *name = m->names[i];
        int no_decay = strstr(name, "LayerNorm") || strstr(name, "bias");
        ok_decay &= m->decay[i] == !no_decay;
        const bert_tensor *t = &m->tensors[i];
        for (size_t j = 0; j < t->numel; j++) {
            float v = t->data[j];
            if (t->ndim == 1) ok_init &= v == (strstr(name, "LayerNorm.weight") ? 1.0f : 0.0f);
            else { sum += v; sumsq += (double)v * v; maxabs = fmax(maxabs, fabs(v)); n++; }
        }
    }
    double sd = sqrt(sumsq / n - (sum / n) * (sum / n));
    CHECK(ok_decay, "decay mask = Google's rule (no decay for LayerNorm and bias)");
    CHECK(ok_init, "LayerNorm gamma 1, every bias 0");
    CHECK(maxabs <= 0.04 + 1e-7 && sd > 0.0160 && sd < 0.0185, "weights: truncated normal at 2 std: max |w| %.4f, std %.4f (0.0176 expected)", maxabs, sd);
    CHECK(m->num_tensors == 5 + 16 * 2 + 9 && m->w.layer[1].qkv_w.data == m->w.layer[1].q_w->data &&
          m->w.layer[1].k_w->data == m->w.layer[1].q_w->data + 32 * 32 && m->w.layer[1].qkv_b.numel == 96,
          "table layout: 46 tensors, q|k|v adjacent so the fused (3C,C) view is the query weight");
    CHECK(bert_model_find(m, "bert.encoder.layer.1.output.LayerNorm.bias") >= 0 && bert_model_find(m, "nope") < 0, "tensors are found by HF name");
    bert_model *m2 = bert_model_create(&c, 7);
    CHECK(memcmp(m->params, m2->params, m->num_params * sizeof(float)) == 0, "init is deterministic for a seed");
    bert_model_free(m2);
    bert_config bad = c;
    bad.num_attention_heads = 5;
    CHECK(bert_model_create(&bad, 1) == NULL && strstr(bert_last_error(), "num_attention_heads"), "a bad config is refused: %s", bert_last_error());
    bert_model_free(m);
}

// train 2N steps straight vs N steps, save, load into fresh objects, N more: bitwise equal
static void test_resume(const bert_batch *b, bert_optim_type type) {
    enum { N = 3 };
    bert_config c = tiny_config();
    bert_model *a = bert_model_create(&c, 3);
    bert_ctx *ctx = bert_ctx_create(1 << 20);   // dropout on: the stream depends on the step
    bert_optim oa = bert_optim_defaults(type);
    oa.lr = 1e-3f; oa.warmup_steps = 2; oa.total_steps = 10;
    bert_optim_init(&oa, a);
    float la[2 * N], lb[2 * N];
    for (int s = 0; s < 2 * N; s++) la[s] = train_step(ctx, a, &oa, b, (uint64_t)s);

    bert_model *m1 = bert_model_create(&c, 3);
    bert_optim o1 = oa;
    o1.m = o1.v = NULL;
    bert_optim_init(&o1, m1);
    for (int s = 0; s < N; s++) lb[s] = train_step(ctx, m1, &o1, b, (uint64_t)s);
    const char *wp = "build/test_resume.safetensors", *op = "build/test_resume_optim.safetensors";
    int saved = bert_model_save(m1, wp) == BERT_OK && bert_optim_save(&o1, m1, op, NULL, 0) == BERT_OK;
    CHECK(saved, "save model + optimizer state (%s)", saved ? "ok" : bert_last_error());
    bert_model *m2 = bert_model_load(wp, NULL);
    bert_optim o2 = oa;
    o2.m = o2.v = NULL;
    int loaded = m2 && bert_optim_init(&o2, m2) == BERT_OK && bert_optim_load(&o2, m2, op) == BERT_OK;
    if (CHECK(loaded, "load them into fresh objects (%s)", loaded ? "ok" : bert_last_error())) {
        for (int s = N; s < 2 * N; s++) lb[s] = train_step(ctx, m2, &o2, b, (uint64_t)s);
        CHECK(memcmp(la, lb, sizeof la) == 0 && memcmp(a->params, m2->params, a->num_params * sizeof(float)) == 0 &&
              memcmp(oa.m, o2.m, oa.n * sizeof(float)) == 0 && o2.step == oa.step,
              "%s: resumed run is bit-identical to the straight one (loss %.6f at step %d)", bert_optim_name(type), lb[2 * N - 1], 2 * N);
    }
    remove(wp); remove(op);
    bert_optim_free(&oa); bert_optim_free(&o1); bert_optim_free(&o2);
    bert_model_free(a); bert_model_free(m1); bert_model_free(m2);
    bert_ctx_free(ctx);
}

static void test_training_learns(const bert_batch *b) {
    bert_config c = tiny_config();
    bert_model *m = bert_model_create(&c, 5);
    bert_ctx *ctx = bert_ctx_create(1 << 20);
    ctx->training = 0;
    bert_optim o = bert_optim_defaults(BERT_OPTIM_ADAMW);
    o.lr = 3e-3f;
    bert_optim_init(&o, m);
    float first = 0, last = 0;
    for (int s = 0; s < 40; s++) { float l = train_step(ctx, m, &o, b, (uint64_t)s); if (!s) first = l; last = l; }
    CHECK(last < 0.2f * first, "40 AdamW steps on one batch overfit it: loss %.4f -> %.4f", first, last);
    bert_optim_free(&o);
    bert_model_free(m);
    bert_ctx_free(ctx);
}

// a task head appended to the table: grads reach it, the optimizer moves it, checkpoints carry it,
// and fine-tuning from a pretraining checkpoint keeps its init
static void test_task_head(const bert_batch *b) {
    bert_config c = tiny_config();
    bert_model *m = bert_model_create(&c, 3);
    size_t base = m->num_params;
    bert_tensor *w = bert_model_add_tensor(m, "classifier.weight", 3, c.hidden_size, 1, 9);
    bert_tensor *bias = bert_model_add_tensor(m, "classifier.bias", 3, 0, 0, 9);
    CHECK(w && bias && m->num_tensors == m->num_base_tensors + 2 && m->num_params == base + 3 * (size_t)c.hidden_size + 3 &&
          m->w.layer[0].qkv_w.data == m->w.layer[0].q_w->data && w->data == m->params + base,
          "bert_model_add_tensor: 2 head tensors appended, buffers grown, named views rebound");
    CHECK(!bert_model_add_tensor(m, "classifier.bias", 3, 0, 0, 9) && strstr(bert_last_error(), "already"), "a duplicate name is refused");
    double ss = 0; for (size_t i = 0; i < w->numel; i++) ss += (double)w->data[i] * w->data[i];
    CHECK(ss > 0 && bias->data[0] == 0.0f, "matrix initialised (rms %.4f), bias zero", sqrt(ss / (double)w->numel));
    bert_ctx *ctx = bert_ctx_create(1 << 20);
    bert_optim o = bert_optim_defaults(BERT_OPTIM_ADAMW);
    bert_optim_init(&o, m);
    int32_t labels[2] = { 2, 0 };
    float before = w->data[0];
    bert_ctx_reset(ctx, 0);
    bert_model_zero_grad(m);
    bert_tensor *seq = bert_encode(ctx, m, b->input_ids, b->token_type_ids, b->attention_mask, b->B, b->T);
    bert_tensor *loss = bert_softmax_xent(ctx, bert_linear(ctx, bert_pool(ctx, m, seq), w, bias), labels, -100);
    bert_backward(ctx, loss);
    double gw = 0; for (size_t i = 0; i < w->numel; i++) gw += fabs(w->grad[i]);
    CHECK(gw > 0 && bias->grad[0] != 0.0f, "classification loss reaches the head's grads");
    bert_optim_step(&o, m);
    CHECK(w->data[0] != before, "the optimizer updates the head");
    const char *path = "build/task_head_test.safetensors", *enc = "build/task_head_base.safetensors";
    bert_model *plain = bert_model_create(&c, 4);
    int saved = bert_model_save(m, path) == BERT_OK && bert_model_save(plain, enc) == BERT_OK;
    bert_model *r = bert_model_create(&c, 5);
    bert_tensor *rw = bert_model_add_tensor(r, "classifier.weight", 3, c.hidden_size, 1, 1);
    bert_model_add_tensor(r, "classifier.bias", 3, 0, 0, 1);
    CHECK(saved && bert_model_load_weights(r, path) == BERT_OK && !memcmp(r->params, m->params, m->num_params * sizeof(float)),
          "save + load with the head: every parameter back bit for bit");
    float keep = rw->data[1];
    CHECK(bert_model_load_weights(r, enc) == BERT_ERR_MISSING, "a strict load of a file without the head fails: %s", bert_last_error());
    int missing = -1;
    CHECK(bert_model_load_encoder(r, enc, &missing) == BERT_OK && missing == 2 && rw->data[1] == keep &&
          r->w.layer[1].ffn_o_w->data[5] == plain->w.layer[1].ffn_o_w->data[5],
          "bert_model_load_encoder: encoder from the pretraining file, 2 absent head tensors keep their values (%d: %s)", missing,
          bert_last_error());
    remove(path); remove(enc);
    bert_optim_free(&o); bert_ctx_free(ctx);
    bert_model_free(m); bert_model_free(plain); bert_model_free(r);
}

// Global-norm clipping at thresholds far from 1 (every other test runs at the default 1.0, where
// comparing ||g|| or ||g||^2 with the threshold gives the same answer). Gradients of a known norm
// are set by hand; after one step from zero moments, for every element, in double from the
// definition (s = min(1, clip/||g||)):
//   adamw, adamw_gb, lamb: m = (1-beta1) g s,  v = (1-beta2) (g s)^2;  momentum: velocity = g s
// and last_grad_norm = ||g||. The four (clip, ||g||) pairs put ||g|| and ||g||^2 on opposite sides
// of the threshold, so each of these bugs fails: clipping when ||g||^2 > clip (or not clipping
// when it is below: 0.05 vs 0.2^2 = 0.04, 20 vs 10^2 = 100), scaling by clip/||g||^2 or
// sqrt(clip/||g||), never clipping, clipping below the threshold, last_grad_norm = ||g||^2, and
// (clip 0, ||g|| 30) a clip_norm <= 0 that clips instead of disabling clipping.
static void test_clipping(void) {
    static const struct { float clip, norm; } cases[] = { { 0.05f, 0.2f }, { 0.05f, 0.03f }, { 20.0f, 10.0f }, { 20.0f, 30.0f }, { 0.0f, 30.0f } };
    static const bert_optim_type types[] = { BERT_OPTIM_ADAMW, BERT_OPTIM_ADAMW_GB, BERT_OPTIM_LAMB, BERT_OPTIM_MOMENTUM };
    bert_config c = tiny_config();
    bert_model *m = bert_model_create(&c, 9);
    size_t n = m->num_params;
    double *g = (double *)malloc(n * sizeof(double));
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            bert_optim o = bert_optim_defaults(types[t]);
            o.clip_norm = cases[k].clip;
            o.lr = 1e-3f;
            bert_optim_init(&o, m);
            double ss = 0.0;
            for (size_t i = 0; i < n; i++) {   // a fixed pattern, scaled to the wanted norm
                m->grads[i] = (float)(sin(0.37 * (double)i + 0.1 * (double)k) * (1.0 + (double)(i % 7)));
                ss += (double)m->grads[i] * m->grads[i];
            }
            double scale = cases[k].norm / sqrt(ss);
            ss = 0.0;
            for (size_t i = 0; i < n; i++) {
                m->grads[i] = (float)(m->grads[i] * scale);
                g[i] = m->grads[i];
                ss += g[i] * g[i];
            }
            double norm = sqrt(ss), s = cases[k].clip > 0.0f ? fmin(1.0, cases[k].clip / norm) : 1.0;   // clip <= 0: off
            int rc = bert_optim_step(&o, m);
            double worst_m = 0.0, worst_v = 0.0;
            for (size_t i = 0; i < n; i++) {
                double gs = g[i] * s, want_m = types[t] == BERT_OPTIM_MOMENTUM ? gs : (1.0 - o.beta1) * gs;
                // float rounding: a few ulps of the value, relative
                worst_m = fmax(worst_m, fabs(o.m[i] - want_m) / (fabs(want_m) + 1e-30));
                if (o.v) {
                    double want_v = (1.0 - o.beta2) * gs * gs;
                    worst_v = fmax(worst_v, fabs(o.v[i] - want_v) / (want_v + 1e-38));
                }
            }
            CHECK(rc == BERT_OK && worst_m < 1e-6 && worst_v < 1e-6 && fabs(o.last_grad_norm - norm) <= 1e-6 * norm,
                  "%-8s clip %-4g ||g|| %-4g: %s, moments = the clipped grad's (max rel err m %.1e, v %.1e), last_grad_norm %.6g",
                  bert_optim_name(types[t]), (double)cases[k].clip, norm, s < 1.0 ? "scaled by clip/||g||" : "not clipped",
                  worst_m, worst_v, (double)o.last_grad_norm);
            bert_optim_free(&o);
        }
    free(g);
    bert_model_free(m);
}

int main(void) {
    batch_buf bb;
    make_batch(&bb, 11);
    bert_config c = tiny_config();
    bert_model *m = bert_model_create(&c, 1);
    test_tape(m, &bb.b);
    test_accumulation(m, &bb.b);
    test_arena(m, &bb.b);
    test_grad_reuse(m, &bb.b);
    bert_model_free(m);
    test_init_and_table();
    test_resume(&bb.b, BERT_OPTIM_LAMB);
    test_resume(&bb.b, BERT_OPTIM_ADAMW_GB);
    test_resume(&bb.b, BERT_OPTIM_MOMENTUM);
    test_training_learns(&bb.b);
    test_task_head(&bb.b);
    test_clipping();
    return check_summary();
}
