// test_nezha.c - NEZHA's relative positions against the PyTorch reference (tests/ref/nezha_ref.py,
// float64): both flavours (Huawei/transformers' fixed sinusoid table, MindSpore's learned per-layer
// tables), K = 3 < T-1 = 15 so the clip is exercised, a padded row. Every activation the fixture
// keeps, the losses and every parameter gradient (the learned tables' included); the fixed table
// itself; the padding-free inference path; checkpoints (config keys and names survive, "bert.*" and
// "nezha.*" files both load); a model without NSP.
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "check.h"
#include "check_fixture.h"

#define FWD_ATOL 1e-5
#define FWD_RTOL 1e-5
#define GRAD_ATOL 1e-6
#define GRAD_RTOL 1e-4

// the fixture's name of our tensor: <flavour>.<part>.bert.* (ours are nezha.*)
static void fixture_name(char *buf, size_t cap, const char *flavour, const char *part, const char *ours) {
    snprintf(buf, cap, "%s.%s.%s%s", flavour, part, strncmp(ours, "nezha.", 6) ? "" : "bert.", strncmp(ours, "nezha.", 6) ? ours : ours + 6);
}

static bert_model *model_from_fixture(const bert_st *st, const char *flavour) {
    char key[64];
    snprintf(key, sizeof key, "%s.config", flavour);
    const char *json = bert_st_meta(st, key);
    bert_config cfg;
    if (!CHECK(json && bert_config_parse(&cfg, json, strlen(json), key) == BERT_OK, "%s: the fixture's config parses", flavour)) return NULL;
    int learned = !strcmp(flavour, "mindspore");
    CHECK(cfg.use_relative_position && cfg.max_relative_position == 3 &&
          cfg.relative_position_flavour == (learned ? BERT_RELPOS_LEARNED : BERT_RELPOS_FIXED),
          "%s: config keys use_relative_position, max_relative_position 3, flavour %s", flavour, flavour);
    bert_model *m = bert_model_create(&cfg, 1);
    if (!CHECK(m != NULL, "%s: model created", flavour)) return NULL;
    int has_rel = bert_model_find(m, "nezha.encoder.layer.1.attention.self.relative_positions_embeddings.weight") >= 0;
    CHECK(m->w.pos_emb == NULL && bert_model_find(m, "nezha.embeddings.position_embeddings.weight") < 0 && has_rel == learned &&
          (m->w.layer[0].rel_w != NULL) == learned,
          "%s: no absolute position table; a learned table per layer only for mindspore (%d)", flavour, has_rel);
    int ok = 1;
    for (int i = 0; ok && i < m->num_tensors; i++) {
        char name[200];
        fixture_name(name, sizeof name, flavour, "w", m->names[i]);
        int64_t shape[2] = { m->tensors[i].shape[0], m->tensors[i].shape[1] };
        if (bert_st_read_f32(st, name, m->tensors[i].data, shape, m->tensors[i].ndim) != BERT_OK) ok = CHECK(0, "read %s: %s", name, bert_last_error());
    }
    int want = 0;
    for (int i = 0; i < st->count; i++)
        want += !strncmp(st->tensors[i].name, flavour, strlen(flavour)) && strstr(st->tensors[i].name, ".w.") == st->tensors[i].name + strlen(flavour);
    CHECK(ok && want == m->num_tensors, "%s: the model's %d tensors = the fixture's parameter table (%d)", flavour, m->num_tensors, want);
    if (!ok) { bert_model_free(m); return NULL; }
    return m;
}

// one pretraining forward and backward of m on the flavour's fixture batch (without NSP labels when
// no_nsp), dropout off; NULL (and m freed) when the inputs cannot be read
static bert_ctx *forward_backward(const bert_st *st, bert_model *m, const char *flavour, int no_nsp, bert_pretrain_out *o) {
    fixture_batch fb;
    bert_batch batch;
    char pre[32];
    snprintf(pre, sizeof pre, "%s.in.", flavour);
    if (!CHECK(load_batch_named(st, pre, &fb, &batch), "%s: read the inputs", flavour)) { bert_model_free(m); return NULL; }
    if (no_nsp) batch.next_sentence_label = NULL;
    bert_ctx *ctx = bert_ctx_create(1 << 20);
    ctx->training = 0;
    bert_ctx_reset(ctx, 0);
    bert_model_zero_grad(m);
    *o = bert_pretrain_forward(ctx, m, &batch);
    bert_backward(ctx, o->loss);
    return ctx;
}

static void test_flavour(const bert_st *st, const char *flavour) {
    printf("--- %s: forward, losses, gradients\n", flavour);
    bert_model *m = model_from_fixture(st, flavour);
    if (!m) return;
    char name[200], label[240];
    bert_pretrain_out o;
    bert_ctx *ctx = forward_backward(st, m, flavour, 0, &o);
    if (!ctx) return;
    static const char *const acts[] = { "emb", "layer.0.ctx", "layer.0.attn_ln", "layer.0", "layer.1.ctx", "layer.1.attn_ln", "layer.1", "pooled" };
    int ok = 1;
    for (size_t a = 0; ok && a < sizeof acts / sizeof acts[0]; a++) {
        const bert_tensor *t = bert_ctx_find(ctx, acts[a]);
        snprintf(name, sizeof name, "%s.out.%s", flavour, acts[a]);
        snprintf(label, sizeof label, "%s fwd %s", flavour, acts[a]);
        ok = CHECK(t != NULL, "tape has %s", acts[a]) && check_fixture(st, label, name, t->data, t->numel, FWD_ATOL, FWD_RTOL);
    }
    struct { const char *what; bert_tensor *t; } outs[] = { { "mlm_logits", o.mlm_logits }, { "nsp_logits", o.nsp_logits },
                                                           { "mlm_loss", o.mlm_loss }, { "nsp_loss", o.nsp_loss }, { "loss", o.loss } };
    for (size_t a = 0; ok && a < sizeof outs / sizeof outs[0]; a++) {
        snprintf(name, sizeof name, "%s.out.%s", flavour, outs[a].what);
        snprintf(label, sizeof label, "%s %s", flavour, outs[a].what);
        ok = check_fixture(st, label, name, outs[a].t->data, outs[a].t->numel, FWD_ATOL, FWD_RTOL);
    }
    for (int i = 0; ok && i < m->num_tensors; i++) {
        fixture_name(name, sizeof name, flavour, "grad", m->names[i]);
        snprintf(label, sizeof label, "%s grad %s", flavour, m->names[i]);
        ok = check_fixture(st, label, name, m->tensors[i].grad, m->tensors[i].numel, GRAD_ATOL, GRAD_RTOL);
    }
    if (!ok) printf("  (stopped at the first tensor out of tolerance)\n");
    bert_ctx_free(ctx);
    bert_model_free(m);
}

static void test_fixed_table(const bert_st *st) {
    bert_ctx *ctx = bert_ctx_create(1 << 16);
    bert_tensor *R = bert_relative_table(ctx, 3, 16);
    check_fixture(st, "the fixed sinusoid table (K 3, HS 16) = the reference's, exact", "huawei.R", R->data, R->numel, 0.0, 0.0);
    bert_ctx_free(ctx);
}

// inference without padding (remove_padding) = the padded path at the real tokens, both flavours
// and all precisions; and a mask with a hole falls back to the padded path (distances count it)
static void test_remove_padding(const bert_st *st, const char *flavour) {
    bert_model *m = model_from_fixture(st, flavour);
    if (!m) return;
    enum { B = 4, T = 13 };
    int C = m->config.hidden_size;
    static const char *const rows[B] = { "1111111000000", "1111111111111", "1100000000000", "1110111111100" };
    int32_t ids[B * T], types[B * T], mask[B * T];
    for (int i = 0; i < B * T; i++) { ids[i] = (i * 29 + 5) % m->config.vocab_size; types[i] = i % T > 4; mask[i] = rows[i / T][i % T] == '1'; }
    bert_ctx *pad = bert_ctx_create(1 << 20), *packed = bert_ctx_create(1 << 20);
    pad->training = packed->training = 0;
    pad->grad_enabled = packed->grad_enabled = 0;
    packed->remove_padding = 1;
    for (int p = BERT_PRECISION_FP32; p <= BERT_PRECISION_INT8; p++) {
        const char *pname = p == BERT_PRECISION_INT8 ? "int8" : p == BERT_PRECISION_BF16 ? "bf16" : "fp32";
        if (bert_model_quantize(m, (bert_precision)p)) { CHECK(0, "quantize %s: %s", pname, bert_last_error()); continue; }
        for (int holes = 0; holes < 2; holes++) {   // holes = 0: the first 3 rows only (padding at the end)
            int nb = holes ? B : 3;
            bert_ctx_reset(pad, 0);
            bert_ctx_reset(packed, 0);
            bert_tensor *a = bert_encode(pad, m, ids, types, mask, nb, T), *b = bert_encode(packed, m, ids, types, mask, nb, T);
            double worst = 0;
            for (int i = 0; i < nb * T; i++)
                for (int c = 0; c < C && mask[i]; c++) worst = fmax(worst, fabs((double)a->data[(size_t)i * C + c] - b->data[(size_t)i * C + c]));
            CHECK(worst <= 1e-5, "%s %s: remove_padding = the padded encoder at the real tokens%s (max |diff| %.2e <= 1e-5)", flavour, pname,
                  holes ? ", a mask with a hole included" : "", worst);
        }
    }
    bert_model_dequantize(m);
    bert_ctx_free(pad);
    bert_ctx_free(packed);
    bert_model_free(m);
}

// a NEZHA checkpoint keeps its config and names; files with "bert.*" names (the fixture's spelling)
// load into it too; the encoder's output is the same after the round trip
static void test_checkpoint(const bert_st *st, const char *flavour) {
    bert_model *m = model_from_fixture(st, flavour);
    if (!m) return;
    char path[64], path2[64];
    snprintf(path, sizeof path, "build/nezha_ckpt_%s.safetensors", flavour);
    snprintf(path2, sizeof path2, "build/nezha_bert_names_%s.safetensors", flavour);
    int rc = bert_model_save(m, path);
    bert_model *back = rc ? NULL : bert_model_load(path, NULL);
    if (!CHECK(back != NULL, "%s: save and load %s: %s", flavour, path, back ? "" : bert_last_error())) { bert_model_free(m); return; }
    CHECK(back->config.use_relative_position && back->config.max_relative_position == 3 &&
          back->config.relative_position_flavour == m->config.relative_position_flavour && back->num_tensors == m->num_tensors &&
          !memcmp(back->params, m->params, m->num_params * sizeof(float)) && !strcmp(back->names[0], "nezha.embeddings.word_embeddings.weight"),
          "%s: the checkpoint keeps the relative-position config, the nezha.* names and every weight", flavour);
    // the same tensors under "bert.*" names: bert_model_load_weights finds them
    bert_st_entry *e = (bert_st_entry *)calloc((size_t)m->num_tensors, sizeof *e);
    char (*names)[160] = (char (*)[160])calloc((size_t)m->num_tensors, 160);
    for (int i = 0; i < m->num_tensors; i++) {
        snprintf(names[i], 160, "bert.%s", m->names[i] + (strncmp(m->names[i], "nezha.", 6) ? 0 : 6));
        if (strncmp(m->names[i], "nezha.", 6)) snprintf(names[i], 160, "%s", m->names[i]);
        e[i].name = names[i]; e[i].dtype = BERT_DT_F32; e[i].ndim = m->tensors[i].ndim;
        e[i].shape[0] = m->tensors[i].shape[0]; e[i].shape[1] = m->tensors[i].shape[1]; e[i].data = m->tensors[i].data;
    }
    memset(back->params, 0, back->num_params * sizeof(float));
    rc = bert_st_save(path2, e, m->num_tensors, NULL, 0);
    if (!rc) rc = bert_model_load_weights(back, path2);
    CHECK(rc == BERT_OK && !memcmp(back->params, m->params, m->num_params * sizeof(float)),
          "%s: a file with bert.* names loads into the NEZHA model (%s)", flavour, rc ? bert_last_error() : "ok");
    free(e); free(names);
    remove(path); remove(path2);
    bert_model_free(back);
    bert_model_free(m);
}

// NSP is optional (NEZHA dropped it): without next_sentence_label the loss is the MLM loss alone
static void test_no_nsp(const bert_st *st) {
    bert_model *m = model_from_fixture(st, "huawei");
    if (!m) return;
    bert_pretrain_out o;
    bert_ctx *ctx = forward_backward(st, m, "huawei", 1, &o);
    if (!ctx) return;
    int nsp_grad = 0;
    for (size_t i = 0; i < m->w.nsp_w->numel; i++) nsp_grad |= m->w.nsp_w->grad[i] != 0.0f;
    CHECK(o.nsp_loss == NULL && o.loss == o.mlm_loss && !nsp_grad &&
          check_fixture(st, "no NSP: loss = the reference's mlm_loss", "huawei.out.mlm_loss", o.loss->data, 1, FWD_ATOL, FWD_RTOL),
          "without next_sentence_label: no NSP loss, no NSP gradient");
    bert_ctx_free(ctx);
    bert_model_free(m);
}

int main(void) {
    bert_st st;
    if (!CHECK(bert_st_open(&st, check_path("nezha_ref.safetensors")) == BERT_OK, "open nezha_ref.safetensors: %s", bert_last_error()))
        return check_summary();
    test_fixed_table(&st);
    test_flavour(&st, "huawei");
    test_flavour(&st, "mindspore");
    test_remove_padding(&st, "huawei");
    test_remove_padding(&st, "mindspore");
    test_checkpoint(&st, "huawei");
    test_checkpoint(&st, "mindspore");
    test_no_nsp(&st);
    bert_st_close(&st);
    return check_summary();
}
