// onnx_forward.c - helper for tests/test_onnx.sh (not a test by itself): bert.h's outputs for the
// inputs that the ONNX export of the same model gets, written with the ONNX output names, through
// the public API only. Loads MODEL (config from its __metadata__ or a json beside it) with the head
// HEAD (none | sequence | token | span: classifier.* on the pooled output or on every token, with
// the CRF when the file has crf.transitions; qa_outputs.*), then for every case k in INPUTS (I32
// tensors "k.input_ids", "k.attention_mask", "k.token_type_ids", (B,T), k = 0, 1, ...) runs the
// forward pass (dropout off) and saves "k.last_hidden_state" (B,T,C), "k.pooler_output" (B,C) and
// the head's "k.logits" ((B,K) or (B,T,K)), "k.start_logits" / "k.end_logits" (B,T), and once
// "crf_transitions", to OUT.
//   onnx_forward MODEL.safetensors HEAD INPUTS.safetensors OUT.safetensors
// Prints "1 passed, 0 failed" on success; exits 1 with bert_last_error() on failure.
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_CASES = 16, MAX_OUT = 6 * MAX_CASES + 1 };

typedef struct { char name[64]; int ndim; int64_t shape[3]; float *data; } output;

static output outs[MAX_OUT];
static int nout;

// a copy of t's values (the next case's bert_ctx_reset reuses the arena)
static int keep(const bert_ctx *ctx, const bert_tensor *t, int k, const char *name) {
    if (nout == MAX_OUT) return 0;
    output *o = &outs[nout];
    o->data = (float *)malloc(t->numel * sizeof(float));
    if (!o->data) return 0;
    bert_tensor_read(ctx, t, o->data);
    if (k < 0) snprintf(o->name, sizeof o->name, "%s", name);
    else snprintf(o->name, sizeof o->name, "%d.%s", k, name);
    o->ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) o->shape[d] = t->shape[d];
    nout++;
    return 1;
}

// row 2b of span logits (B,2,T) is example b's start logits, row 2b+1 its end logits
static int keep_span(const bert_ctx *ctx, const bert_tensor *t, int k) {
    int B = t->shape[0], T = t->shape[2];
    float *all = (float *)malloc(t->numel * sizeof(float));
    if (!all || nout + 2 > MAX_OUT) { free(all); return 0; }
    bert_tensor_read(ctx, t, all);
    for (int s = 0; s < 2; s++) {
        output *o = &outs[nout];
        o->data = (float *)malloc((size_t)B * T * sizeof(float));
        if (!o->data) { free(all); return 0; }
        for (int b = 0; b < B; b++) memcpy(o->data + (size_t)b * T, all + ((size_t)2 * b + s) * T, (size_t)T * sizeof(float));
        snprintf(o->name, sizeof o->name, "%d.%s", k, s ? "end_logits" : "start_logits");
        o->ndim = 2; o->shape[0] = B; o->shape[1] = T;
        nout++;
    }
    free(all);
    return 1;
}

static int read_i32(const bert_st *st, int k, const char *what, int32_t *dst, int B, int T) {
    char name[64];
    snprintf(name, sizeof name, "%d.%s", k, what);
    int64_t shape[2] = { B, T };
    return bert_st_read_i32(st, name, dst, shape, 2) == BERT_OK;
}

int main(int argc, char **argv) {
    static const char *const heads[] = { "none", "sequence", "token", "span" };
    int head = 0;
    while (argc == 5 && head < 4 && strcmp(argv[2], heads[head])) head++;
    if (argc != 5 || head == 4) {
        fprintf(stderr, "usage: %s MODEL.safetensors none|sequence|token|span INPUTS.safetensors OUT.safetensors\n", argv[0]);
        return 2;
    }
    const char *model_path = argv[1], *in_path = argv[3], *out_path = argv[4];
    bert_config cfg;
    bert_st model_st, in;
    memset(&model_st, 0, sizeof model_st);
    memset(&in, 0, sizeof in);
    bert_model *m = NULL;
    bert_ctx *ctx = NULL;
    int32_t *buf = NULL;
    int ok = bert_checkpoint_config(&cfg, model_path, NULL) == BERT_OK && bert_st_open(&model_st, model_path) == BERT_OK;
    if (ok) {
        const bert_st_tensor *cw = bert_st_find(&model_st, "classifier.weight");
        int crf = bert_st_find(&model_st, "crf.transitions") != NULL, K = cw && cw->ndim == 2 ? (int)cw->shape[0] : 0;
        m = bert_model_create(&cfg, 0);
        ok = m != NULL;
        if (ok && (head == 1 || head == 2) && !K) { ok = 0; fprintf(stderr, "onnx_forward: %s: no classifier.weight\n", model_path); }
        if (ok && head == 1) ok = bert_classifier_add(m, K, 0) == BERT_OK;
        if (ok && head == 2) ok = bert_token_classifier_add(m, K, crf, 0) == BERT_OK;
        if (ok && head == 3) ok = bert_span_head_add(m, 0) == BERT_OK;
        ok = ok && bert_model_load_weights(m, model_path) == BERT_OK;
    }
    ok = ok && bert_st_open(&in, in_path) == BERT_OK;
    ctx = ok ? bert_ctx_create(1u << 20) : NULL;
    ok = ok && ctx;
    int cases = 0;
    for (int k = 0; ok && k < MAX_CASES; k++, cases++) {
        char name[64];
        snprintf(name, sizeof name, "%d.input_ids", k);
        const bert_st_tensor *t = bert_st_find(&in, name);
        if (!t) break;
        if (t->ndim != 2) { ok = 0; fprintf(stderr, "onnx_forward: %s: %s is not (B,T)\n", in_path, name); break; }
        int B = (int)t->shape[0], T = (int)t->shape[1];
        free(buf);
        buf = (int32_t *)malloc(3 * (size_t)B * T * sizeof(int32_t));
        int32_t *ids = buf, *mask = buf + (size_t)B * T, *types = buf + 2 * (size_t)B * T;
        ok = buf && read_i32(&in, k, "input_ids", ids, B, T) && read_i32(&in, k, "attention_mask", mask, B, T) &&
             read_i32(&in, k, "token_type_ids", types, B, T);
        if (!ok) break;
        bert_ctx_reset(ctx, (uint64_t)k);
        ctx->training = 0;       // dropout off
        ctx->grad_enabled = 0;   // inference: no tape
        bert_tensor *seq = bert_encode(ctx, m, ids, types, mask, B, T);
        ok = keep(ctx, seq, k, "last_hidden_state") && keep(ctx, bert_pool(ctx, m, seq), k, "pooler_output");
        if (ok && head == 1) {   // the head's own forward: pooler, (no) dropout, classifier
            bert_classify_out o = bert_classify_forward(ctx, m, ids, types, mask, B, T, NULL, NULL);
            ok = keep(ctx, o.logits, k, "logits");
        } else if (ok && head == 2) {
            int32_t *lengths = (int32_t *)calloc((size_t)B, sizeof(int32_t));   // the CRF asks for them; unused here
            bert_token_classify_out o = bert_token_classify_forward(ctx, m, ids, types, mask, B, T, 0.0f, NULL, lengths);
            ok = lengths && keep(ctx, o.logits, k, "logits");
            free(lengths);
        } else if (ok && head == 3) {
            bert_span_out o = bert_span_forward(ctx, m, ids, types, mask, B, T, NULL, NULL);
            ok = keep_span(ctx, o.logits, k);
        }
        if (!ok) fprintf(stderr, "onnx_forward: out of memory\n");
    }
    int crf = m ? bert_model_find(m, "crf.transitions") : -1;
    if (ok && crf >= 0) ok = keep(ctx, &m->tensors[crf], -1, "crf_transitions");
    if (ok && !cases) { ok = 0; fprintf(stderr, "onnx_forward: %s: no 0.input_ids\n", in_path); }
    if (ok) {
        bert_st_entry e[MAX_OUT];
        memset(e, 0, sizeof e);
        for (int i = 0; i < nout; i++) {
            e[i].name = outs[i].name; e[i].dtype = BERT_DT_F32; e[i].ndim = outs[i].ndim; e[i].data = outs[i].data;
            for (int d = 0; d < outs[i].ndim; d++) e[i].shape[d] = outs[i].shape[d];
        }
        ok = bert_st_save(out_path, e, nout, NULL, 0) == BERT_OK;
    }
    if (!ok && bert_last_error()[0]) fprintf(stderr, "onnx_forward: %s\n", bert_last_error());
    for (int i = 0; i < nout; i++) free(outs[i].data);
    free(buf);
    bert_ctx_free(ctx);
    bert_st_close(&in);
    bert_st_close(&model_st);
    bert_model_free(m);
    if (ok) printf("1 passed, 0 failed\n");
    return ok ? 0 : 1;
}
