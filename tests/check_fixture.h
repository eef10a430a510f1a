// check_fixture.h - the input batch of a PyTorch parity fixture (tests/ref/*.safetensors written by
// tests/ref/bert_ref.py: input_ids, token_type_ids, attention_mask, masked_lm_positions/ids,
// next_sentence_label), read into fixed arrays and pointed at by a bert_batch, and check_fixture, which
// compares floats with a fixture tensor. Shared by test_bert.c, test_nezha.c (CPU) and test_cuda.c
// (GPU); include after bert.h and check.h.
#ifndef CHECK_FIXTURE_H
#define CHECK_FIXTURE_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int B, T, MP; int32_t ids[64], types[64], mask[64], pos[16], labels[16], nsp[4]; } fixture_batch;

// the inputs named prefix + "input_ids", ... (prefix "" for bert_ref's files, "huawei.in." for nezha_ref's)
static int load_batch_named(const bert_st *st, const char *prefix, fixture_batch *fb, bert_batch *b) {
    static const char *const names[6] = { "input_ids", "token_type_ids", "attention_mask", "masked_lm_positions",
                                          "masked_lm_ids", "next_sentence_label" };
    char n[6][64];
    for (int i = 0; i < 6; i++) snprintf(n[i], sizeof n[i], "%s%s", prefix, names[i]);
    const bert_st_tensor *t = bert_st_find(st, n[0]), *p = bert_st_find(st, n[3]);
    if (!t || !p || t->ndim != 2 || p->ndim != 2 || t->numel > 64 || p->numel > 16) return 0;
    fb->B = (int)t->shape[0]; fb->T = (int)t->shape[1]; fb->MP = (int)p->shape[1];
    int64_t bt[2] = { fb->B, fb->T }, bm[2] = { fb->B, fb->MP }, bb[1] = { fb->B };
    if (bert_st_read_i32(st, n[0], fb->ids, bt, 2) || bert_st_read_i32(st, n[1], fb->types, bt, 2) ||
        bert_st_read_i32(st, n[2], fb->mask, bt, 2) || bert_st_read_i32(st, n[3], fb->pos, bm, 2) ||
        bert_st_read_i32(st, n[4], fb->labels, bm, 2) || bert_st_read_i32(st, n[5], fb->nsp, bb, 1))
        return 0;
    memset(b, 0, sizeof *b);
    b->B = fb->B; b->T = fb->T; b->MP = fb->MP;
    b->input_ids = fb->ids; b->token_type_ids = fb->types; b->attention_mask = fb->mask;
    b->masked_lm_positions = fb->pos; b->masked_lm_ids = fb->labels; b->next_sentence_label = fb->nsp;
    return 1;
}

static inline int load_batch(const bert_st *st, fixture_batch *fb, bert_batch *b) { return load_batch_named(st, "", fb, b); }

// compares a float array with fixture tensor `name` (same numel required)
static inline int check_fixture(const bert_st *st, const char *label, const char *name, const float *got, size_t n,
                                 double atol, double rtol) {
    const bert_st_tensor *t = bert_st_find(st, name);
    if (!t || t->numel != n) return CHECK(0, "fixture has %s with %zu values", name, n);
    float *ref = (float *)malloc(n * sizeof(float));
    int64_t shape[8];
    for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
    int ok = bert_st_read_f32(st, name, ref, shape, t->ndim) == BERT_OK && check_close(label, got, ref, n, atol, rtol);
    free(ref);
    return ok;
}
#endif
