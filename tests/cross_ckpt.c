// cross_ckpt.c - helper for tests/test_cross.sh (issue 26): the same tiny training run on any host, and
// the files it writes read on another. Single-threaded, dropout on, LAMB, a NEZHA-free tiny BERT.
//   cross_ckpt write DIR   init (seed 7), 3 steps on a fixed batch, saves DIR/model.safetensors and
//                          DIR/optim.safetensors; prints the 3 losses and a hash of every float's bits
//   cross_ckpt read DIR    loads both files and prints the same hash (of the model's floats and the
//                          optimizer's moments): equal to the writer's means the bytes on disk carry
//                          the same values whatever the byte order of the hosts
// The hash is of the values' bit patterns (uint32 arithmetic), not of memory bytes, so it means the
// same on little- and big-endian hosts.
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_floats(uint64_t h, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        h = (h ^ u) * 0x100000001b3ull;
    }
    return h;
}

static uint64_t state_hash(const bert_model *m, const bert_optim *o) {
    uint64_t h = hash_floats(0xcbf29ce484222325ull, m->params, m->num_params);
    return hash_floats(hash_floats(h, o->m, o->n), o->v, o->n);
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "write") && strcmp(argv[1], "read"))) {
        fprintf(stderr, "usage: cross_ckpt write|read DIR\n");
        return 2;
    }
    char mpath[512], opath[512];
    snprintf(mpath, sizeof mpath, "%s/model.safetensors", argv[2]);
    snprintf(opath, sizeof opath, "%s/optim.safetensors", argv[2]);
    bert_config c = bert_config_default();
    c.vocab_size = 97; c.hidden_size = 32; c.num_hidden_layers = 2; c.num_attention_heads = 4;
    c.intermediate_size = 48; c.max_position_embeddings = 16;
    bert_optim o = bert_optim_defaults(BERT_OPTIM_LAMB);
    o.lr = 1e-2f; o.warmup_steps = 1; o.total_steps = 10;
    if (!strcmp(argv[1], "read")) {
        bert_model *m = bert_model_load(mpath, NULL);
        if (!m || bert_optim_init(&o, m) || bert_optim_load(&o, m, opath)) { fprintf(stderr, "cross_ckpt: %s\n", bert_last_error()); return 1; }
        printf("hash %016llx\n", (unsigned long long)state_hash(m, &o));
        bert_optim_free(&o);
        bert_model_free(m);
        return 0;
    }
    bert_model *m = bert_model_create(&c, 7);
    if (!m || bert_optim_init(&o, m)) { fprintf(stderr, "cross_ckpt: %s\n", bert_last_error()); return 1; }
    enum { B = 2, T = 12, MP = 3 };
    int32_t ids[B * T], types[B * T], mask[B * T], pos[B * MP], labels[B * MP], nsp[B] = { 0, 1 };
    for (int i = 0; i < B * T; i++) { ids[i] = (i * 37 + 11) % c.vocab_size; types[i] = i % T >= 6; mask[i] = i % T < 10 + i / T; }
    for (int i = 0; i < B * MP; i++) { pos[i] = 1 + 3 * (i % MP); labels[i] = (i * 13 + 5) % c.vocab_size; }
    bert_batch b = { B, T, MP, ids, types, mask, pos, labels, nsp };
    bert_ctx *ctx = bert_ctx_create(1 << 20);
    ctx->seed = 99;
    printf("losses");
    for (int s = 0; s < 3; s++) {
        bert_ctx_reset(ctx, (uint64_t)s);
        bert_model_zero_grad(m);
        bert_pretrain_out out = bert_pretrain_forward(ctx, m, &b);
        bert_backward(ctx, out.loss);
        bert_optim_step(&o, m);
        printf(" %.9g", (double)out.loss->data[0]);
    }
    printf("\n");
    int rc = bert_model_save(m, mpath) || bert_optim_save(&o, m, opath, NULL, 0);
    if (rc) fprintf(stderr, "cross_ckpt: %s\n", bert_last_error());
    else printf("hash %016llx\n", (unsigned long long)state_hash(m, &o));
    bert_ctx_free(ctx);
    bert_optim_free(&o);
    bert_model_free(m);
    return rc;
}
