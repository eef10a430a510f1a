// test_bert.c - bert.h against the PyTorch reference (tests/ref/bert_ref.py, float64):
// every activation, the losses, every parameter gradient for GELU erf/tanh x dropout off/on,
// the dropout RNG bits, and 10 steps of each optimizer. Fixtures: tests/ref/*.safetensors.
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "check.h"
#include "check_fixture.h"

// Tolerances (|got-ref| <= atol + rtol*|ref|). The reference runs in float64, we in float32.
#define FWD_ATOL 1e-5
#define FWD_RTOL 1e-5
#define GRAD_ATOL 1e-6
#define GRAD_RTOL 1e-4
#define OPT_ATOL 1e-5
#define OPT_RTOL 1e-4

static int check_activation(const bert_st *st, const bert_ctx *ctx, const char *name) {
    const bert_tensor *t = bert_ctx_find(ctx, name);
    if (!CHECK(t != NULL, "tape has a tensor named %s", name)) return 0;
    char label[96];
    snprintf(label, sizeof label, "fwd %s", name);
    return check_fixture(st, label, name, t->data, t->numel, FWD_ATOL, FWD_RTOL);
}

static void test_variant(bert_model *m, const float *init, const char *act, int dropout) {
    char file[64];
    snprintf(file, sizeof file, "tiny_%s_d%d.safetensors", act, dropout);
    printf("--- %s: forward, losses, gradients\n", file);
    bert_st st;
    if (!CHECK(bert_st_open(&st, check_path(file)) == BERT_OK, "open %s: %s", file, bert_last_error())) return;
    fixture_batch fb;
    bert_batch batch;
    if (!CHECK(load_batch(&st, &fb, &batch), "read the inputs of %s", file)) { bert_st_close(&st); return; }
    memcpy(m->params, init, m->num_params * sizeof(float));
    m->config.hidden_act = strcmp(act, "tanh") == 0 ? BERT_GELU_TANH : BERT_GELU_ERF;
    bert_ctx *ctx = bert_ctx_create(1 << 20);
    ctx->training = dropout;   // d0: the inference path (dropout off); d1: p = 0.1 from the config
    ctx->seed = 1234;
    bert_ctx_reset(ctx, 0);
    bert_model_zero_grad(m);
    bert_pretrain_out o = bert_pretrain_forward(ctx, m, &batch);
    bert_backward(ctx, o.loss);

    int ok = check_activation(&st, ctx, "emb");
    for (int l = 0; ok && l < m->config.num_hidden_layers; l++) {
        static const char *const parts[] = { "layer.%d.qkv", "layer.%d.ctx", "layer.%d.attn_ln", "layer.%d.ffn_act", "layer.%d" };
        for (int p = 0; ok && p < 5; p++) {
            char name[48];
            snprintf(name, sizeof name, parts[p], l);
            ok = check_activation(&st, ctx, name);
        }
    }
    if (ok) ok = check_activation(&st, ctx, "pooled");
    {   // training's residual branches run in place: dropout over the linear's output, the add over that
        int over = 0, L = m->config.num_hidden_layers;
        for (int i = 0; i < ctx->tape_len; i++) {
            const bert_node *n = &ctx->tape[i];
            over += (n->op == BERT_OP_DROPOUT || n->op == BERT_OP_ADD) && n->out->data == n->in[0]->data;
        }
        int want = dropout ? 4 * L + 1 : 2 * L;   // + the embeddings' dropout; without dropout only the adds
        CHECK(over == want, "ops written over their input: %d, want %d (2 per residual%s)", over, want,
              dropout ? " + the embeddings' dropout" : ", no dropout");
    }
    if (ok) ok = check_fixture(&st, "fwd mlm_logits", "mlm_logits", o.mlm_logits->data, o.mlm_logits->numel, FWD_ATOL, FWD_RTOL);
    if (ok) ok = check_fixture(&st, "fwd nsp_logits", "nsp_logits", o.nsp_logits->data, o.nsp_logits->numel, FWD_ATOL, FWD_RTOL);
    if (ok) ok = check_fixture(&st, "loss mlm", "mlm_loss", o.mlm_loss->data, 1, FWD_ATOL, FWD_RTOL);
    if (ok) ok = check_fixture(&st, "loss nsp", "nsp_loss", o.nsp_loss->data, 1, FWD_ATOL, FWD_RTOL);
    if (ok) ok = check_fixture(&st, "loss total", "loss", o.loss->data, 1, FWD_ATOL, FWD_RTOL);
    for (int i = 0; ok && i < m->num_tensors; i++) {
        char name[160], label[200];
        snprintf(name, sizeof name, "grad.%s", m->names[i]);
        snprintf(label, sizeof label, "grad %s", m->names[i]);
        ok = check_fixture(&st, label, name, m->tensors[i].grad, m->tensors[i].numel, GRAD_ATOL, GRAD_RTOL);
    }
    if (!ok) printf("  (stopped at the first tensor out of tolerance)\n");
    if (bert_st_find(&st, "rng.u_site0")) {   // the RNG bits themselves: exact
        float u[64];
        uint64_t stream = bert_rng_stream(1234, 0, 0);
        for (int i = 0; i < 64; i++) u[i] = bert_rng_uniform(stream, (uint64_t)i);
        check_fixture(&st, "rng uniform (seed 1234, step 0, site 0), exact", "rng.u_site0", u, 64, 0.0, 0.0);
    }
    bert_ctx_free(ctx);
    bert_st_close(&st);
}

typedef struct { const char *name; bert_optim_type type; int bias_correction, exclude; } opt_case;

static void test_optimizer(bert_model *m, const float *init, const opt_case *oc) {
    printf("--- optimizer %s: 10 steps against the reference\n", oc->name);
    bert_st st;
    if (!CHECK(bert_st_open(&st, check_path("tiny_erf_d0.safetensors")) == BERT_OK, "open: %s", bert_last_error())) return;
    fixture_batch fb;
    bert_batch batch;
    load_batch(&st, &fb, &batch);
    memcpy(m->params, init, m->num_params * sizeof(float));
    m->config.hidden_act = BERT_GELU_ERF;
    bert_optim o = bert_optim_defaults(oc->type);
    o.lr = 5e-3f; o.warmup_steps = 3; o.total_steps = 10; o.poly_power = 1.0f; o.end_lr = 0.0f; o.clip_norm = 1.0f;
    o.bias_correction = oc->bias_correction;
    o.lamb_exclude_ln_bias = oc->exclude;
    bert_optim_init(&o, m);
    bert_ctx *ctx = bert_ctx_create(1 << 20);
    ctx->training = 0;
    float losses[10];
    for (int s = 0; s < 10; s++) {
        bert_ctx_reset(ctx, (uint64_t)s);
        bert_model_zero_grad(m);
        bert_pretrain_out out = bert_pretrain_forward(ctx, m, &batch);
        losses[s] = out.loss->data[0];
        bert_backward(ctx, out.loss);
        bert_optim_step(&o, m);
    }
    char name[200], label[220];
    snprintf(name, sizeof name, "%s.losses", oc->name);
    snprintf(label, sizeof label, "%s losses (10 steps)", oc->name);
    int ok = check_fixture(&st, label, name, losses, 10, OPT_ATOL, OPT_RTOL);
    for (int i = 0; ok && i < m->num_tensors; i++) {
        // The key bias gets an exactly zero gradient (softmax ignores a constant shift of a row),
        // so what it receives is rounding noise: 1e-9 here, 1e-17 in the float64 reference.
        // LAMB with adaptation on every tensor (lamb_nv) rescales that noise to lr*|p| (the trust
        // ratio normalises any direction), so both sides move it by noise. Its gradient is
        // checked to be ~0 above; here only the size of its move is bounded.
        if (!oc->exclude && strstr(m->names[i], "key.bias")) {
            double moved = 0.0, norm = 0.0;
            for (size_t j = 0; j < m->tensors[i].numel; j++) {
                double d = (double)m->tensors[i].data[j] - init[m->tensors[i].data - m->params + j];
                moved += d * d;
                norm += (double)init[m->tensors[i].data - m->params + j] * init[m->tensors[i].data - m->params + j];
            }
            // the schedule's lr summed over 10 steps is 0.0325; |p| grows by at most that factor
            CHECK(sqrt(moved) <= 0.0325 * 1.04 * sqrt(norm), "%s final %s moved %.2e <= bound %.2e", oc->name,
                  m->names[i], sqrt(moved), 0.0325 * 1.04 * sqrt(norm));
            continue;
        }
        snprintf(name, sizeof name, "%s.final.%s", oc->name, m->names[i]);
        snprintf(label, sizeof label, "%s final %s", oc->name, m->names[i]);
        ok = check_fixture(&st, label, name, m->tensors[i].data, m->tensors[i].numel, OPT_ATOL, OPT_RTOL);
    }
    bert_optim_free(&o);
    bert_ctx_free(ctx);
    bert_st_close(&st);
}

// inference (no tape, no dropout) takes the fused linears (bias, residual, GELU in the GEMM): its
// encoder output must be the taped forward's bit for bit, for both GELUs
static void test_fused_inference(bert_model *m) {
    int B = 2, T = 9;
    int32_t ids[18], types[18], mask[18];
    for (int i = 0; i < B * T; i++) { ids[i] = (i * 37 + 5) % m->config.vocab_size; types[i] = i % T > 4; mask[i] = i % T < 7 + i / T; }
    for (int act = BERT_GELU_ERF; act <= BERT_GELU_TANH; act++) {
        m->config.hidden_act = (bert_act)act;
        bert_ctx *taped = bert_ctx_create(1 << 20), *infer = bert_ctx_create(1 << 20);
        taped->training = 0;                             // dropout off, tape on: the unfused chain
        infer->training = 0; infer->grad_enabled = 0;    // the fused path
        bert_tensor *a = bert_encode(taped, m, ids, types, mask, B, T), *b = bert_encode(infer, m, ids, types, mask, B, T);
        CHECK(a->numel == b->numel && memcmp(a->data, b->data, a->numel * sizeof(float)) == 0,
              "fused inference encoder = taped forward bit for bit (gelu %s, B=%d T=%d)", act == BERT_GELU_ERF ? "erf" : "tanh", B, T);
        bert_ctx_free(taped);
        bert_ctx_free(infer);
    }
    m->config.hidden_act = BERT_GELU_ERF;
}

// int8 and bf16 inference (bert_model_quantize): every token's output within cosine 0.99 of fp32's (the issue's
// bar for encode), and dropping the int8 copies gives the fp32 output back bit for bit
static double cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
    return ab / sqrt(aa * bb + 1e-300);
}

static void test_int8_inference(bert_model *m) {
    int B = 2, T = 9, C = m->config.hidden_size;
    int32_t ids[18], types[18], mask[18];
    for (int i = 0; i < B * T; i++) { ids[i] = (i * 29 + 3) % m->config.vocab_size; types[i] = i % T > 4; mask[i] = i % T < 8; }
    bert_ctx *ctx = bert_ctx_create(1 << 20);
    ctx->training = 0; ctx->grad_enabled = 0;
    bert_tensor *h = bert_encode(ctx, m, ids, types, mask, B, T);
    float *fp32 = (float *)malloc(h->numel * sizeof(float));
    memcpy(fp32, h->data, h->numel * sizeof(float));
    for (int p = BERT_PRECISION_BF16; p <= BERT_PRECISION_INT8; p++) {
        const char *name = p == BERT_PRECISION_INT8 ? "int8" : "bf16";
        if (!CHECK(bert_model_quantize(m, (bert_precision)p) == BERT_OK && m->quant, "bert_model_quantize %s (%s)", name,
                   p == BERT_PRECISION_INT8 ? bert_int8_kernel_name() : bert_bf16_kernel_name())) continue;
        bert_ctx_reset(ctx, 0);
        h = bert_encode(ctx, m, ids, types, mask, B, T);
        double worst = 1.0;
        for (int t = 0; t < B * T; t++) { double c = cosine(h->data + (size_t)t * C, fp32 + (size_t)t * C, C); if (c < worst) worst = c; }
        CHECK(worst >= 0.99, "%s encoder: every token's output within cosine 0.99 of fp32 (worst %.6f)", name, worst);
    }
    bert_model_dequantize(m);
    bert_ctx_reset(ctx, 0);
    h = bert_encode(ctx, m, ids, types, mask, B, T);
    CHECK(!m->quant && memcmp(h->data, fp32, h->numel * sizeof(float)) == 0, "bert_model_dequantize: the fp32 output again, bit for bit");
    free(fp32);
    bert_ctx_free(ctx);
}

/* ctx->remove_padding: the encoder on the real tokens only. Against the padded path at every real
   token (1e-5: masked keys weigh exp(-10000) = 0 in both, only the order of sums differs), padded rows
   exactly 0, at fp32, bf16 and int8. Rows: prefix masks of lengths 1..T, an all-padding row, a full row
   and a mask with holes (real tokens keep their positions). */
static void test_remove_padding(bert_model *m) {
    enum { B = 6, T = 11 };
    int C = m->config.hidden_size;
    static const char *const rows[B] = { "11111110000", "10000000000", "00000000000", "11111111111", "11011101100", "11110000000" };
    int32_t ids[B * T], types[B * T], mask[B * T];
    for (int i = 0; i < B * T; i++) { ids[i] = (i * 31 + 7) % m->config.vocab_size; types[i] = i % T > 5; mask[i] = rows[i / T][i % T] == '1'; }
    bert_ctx *pad = bert_ctx_create(1 << 20), *packed = bert_ctx_create(1 << 20);
    pad->training = packed->training = 0;
    pad->grad_enabled = packed->grad_enabled = 0;
    packed->remove_padding = 1;
    for (int p = BERT_PRECISION_FP32; p <= BERT_PRECISION_INT8; p++) {
        const char *name = p == BERT_PRECISION_INT8 ? "int8" : p == BERT_PRECISION_BF16 ? "bf16" : "fp32";
        if (bert_model_quantize(m, (bert_precision)p)) { CHECK(0, "bert_model_quantize %s: %s", name, bert_last_error()); continue; }
        bert_ctx_reset(pad, 0);
        bert_ctx_reset(packed, 0);
        bert_tensor *a = bert_encode(pad, m, ids, types, mask, B, T), *b = bert_encode(packed, m, ids, types, mask, B, T);
        double worst = 0;
        int zeros = 1, real = 0;
        for (int i = 0; i < B * T; i++)
            for (int c = 0; c < C; c++) {
                double d = fabs((double)a->data[(size_t)i * C + c] - b->data[(size_t)i * C + c]);
                if (mask[i] && d > worst) worst = d;
                if (!mask[i] && b->data[(size_t)i * C + c] != (float)0.0f) zeros = 0;
                real += mask[i] && c == 0;
            }
        CHECK(b->ndim == 3 && b->shape[0] == B && b->shape[1] == T && b->shape[2] == C && worst <= 1e-5 && zeros,
              "%s: remove_padding = the padded encoder at the %d real tokens (max |diff| %.2e <= 1e-5), padded rows 0", name, real, worst);
        bert_tensor *pa = bert_pool(pad, m, a), *pb = bert_pool(packed, m, b);
        worst = 0;
        for (int i = 0; i < B * C; i++) if (mask[(i / C) * T]) worst = fmax(worst, fabs((double)pa->data[i] - pb->data[i]));
        CHECK(worst <= 1e-5, "%s: remove_padding: the pooled [CLS] vectors equal (max |diff| %.2e)", name, worst);
    }
    bert_model_dequantize(m);
    bert_ctx_free(pad);
    bert_ctx_free(packed);
}

int main(void) {
    bert_model *m = bert_model_load(check_path("tiny.safetensors"), NULL);
    if (!CHECK(m != NULL, "load tests/ref/tiny.safetensors: %s", m ? "" : bert_last_error())) return check_summary();
    CHECK(m->config.hidden_size == 64 && m->config.num_hidden_layers == 2 && m->config.vocab_size == 112 &&
          m->config.layer_norm_eps == (float)1e-12f && m->config.hidden_act == BERT_GELU_ERF,
          "config from the checkpoint metadata: C=64 L=2 V=112 eps=1e-12 gelu=erf");
    float *init = (float *)malloc(m->num_params * sizeof(float));
    memcpy(init, m->params, m->num_params * sizeof(float));
    test_fused_inference(m);
    test_int8_inference(m);
    test_remove_padding(m);
    test_variant(m, init, "erf", 0);
    test_variant(m, init, "tanh", 0);
    test_variant(m, init, "erf", 1);
    test_variant(m, init, "tanh", 1);
    static const opt_case cases[] = {
        { "adamw_gb", BERT_OPTIM_ADAMW_GB, 0, 1 },
        { "adamw", BERT_OPTIM_ADAMW, 1, 1 },
        { "lamb", BERT_OPTIM_LAMB, 0, 1 },
        { "lamb_nv", BERT_OPTIM_LAMB, 1, 0 },
        { "momentum", BERT_OPTIM_MOMENTUM, 0, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_optimizer(m, init, &cases[i]);
    free(init);
    bert_model_free(m);
    return check_summary();
}
