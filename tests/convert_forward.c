// convert_forward.c - helper for tests/test_convert.sh (not a test by itself): loads a converted
// checkpoint with bert_model_load(path, NULL) (config from its __metadata__), runs the pretraining
// forward pass (dropout off) on the batch in INPUTS.safetensors and saves the activations
// (emb, layer.N, pooled, mlm_logits, nsp_logits) to OUT.safetensors for the Python side to compare.
// With OPTIM and TYPE it also loads a converted training-state file with bert_optim_load and saves
// the moments as flat buffers in parameter order ("optim.m", "optim.v") and "optim.step".
//   convert_forward MODEL.safetensors INPUTS.safetensors OUT.safetensors [OPTIM.safetensors TYPE]
// Prints "1 passed, 0 failed" on success so tests/run.sh could run it too; exits 1 with
// bert_last_error() on failure. Frees everything (make test SAN=1 runs it under LeakSanitizer).
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include <stdio.h>
#include <stdlib.h>

enum { MAX_OUT = 64 };

static int read_i32(const bert_st *st, const char *name, int32_t **dst, int64_t d0, int64_t d1) {
    int64_t shape[2] = { d0, d1 };
    *dst = (int32_t *)malloc((size_t)(d0 * (d1 ? d1 : 1)) * sizeof(int32_t));
    return *dst && bert_st_read_i32(st, name, *dst, shape, d1 ? 2 : 1) == BERT_OK;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: %s MODEL.safetensors INPUTS.safetensors OUT.safetensors [OPTIM.safetensors adamw_gb|adamw|lamb|momentum]\n", argv[0]);
        return 2;
    }
    bert_model *m = bert_model_load(argv[1], NULL);
    if (!m) { fprintf(stderr, "convert_forward: %s\n", bert_last_error()); return 1; }
    bert_st in;
    if (bert_st_open(&in, argv[2])) { fprintf(stderr, "convert_forward: %s\n", bert_last_error()); bert_model_free(m); return 1; }
    const bert_st_tensor *ids = bert_st_find(&in, "input_ids"), *pos = bert_st_find(&in, "masked_lm_positions");
    int ok = ids && pos && ids->ndim == 2 && pos->ndim == 2;
    int B = ok ? (int)ids->shape[0] : 0, T = ok ? (int)ids->shape[1] : 0, MP = ok ? (int)pos->shape[1] : 0;
    int32_t *input_ids = NULL, *types = NULL, *mask = NULL, *positions = NULL, *labels = NULL, *nsp = NULL;
    ok = ok && read_i32(&in, "input_ids", &input_ids, B, T) && read_i32(&in, "token_type_ids", &types, B, T) &&
         read_i32(&in, "attention_mask", &mask, B, T) && read_i32(&in, "masked_lm_positions", &positions, B, MP) &&
         read_i32(&in, "masked_lm_ids", &labels, B, MP) && read_i32(&in, "next_sentence_label", &nsp, B, 0);
    int rc = 1;
    bert_ctx *ctx = ok ? bert_ctx_create(1u << 20) : NULL;
    if (ctx) {
        ctx->training = 0;   // dropout off; the tape stays on so every layer's output is kept by name
        bert_ctx_reset(ctx, 0);
        bert_batch b = { B, T, MP, input_ids, types, mask, positions, labels, nsp };
        bert_pretrain_out o = bert_pretrain_forward(ctx, m, &b);
        bert_st_entry e[MAX_OUT];
        char names[MAX_OUT][32];
        int n = 0, L = m->config.num_hidden_layers;
        for (int i = -1; i <= L && n < MAX_OUT - 4; i++) {
            if (i == -1) snprintf(names[n], sizeof names[n], "emb");
            else if (i < L) snprintf(names[n], sizeof names[n], "layer.%d", i);
            else break;
            const bert_tensor *t = bert_ctx_find(ctx, names[n]);
            if (!t) continue;
            memset(&e[n], 0, sizeof e[n]);
            e[n].name = names[n]; e[n].dtype = BERT_DT_F32; e[n].ndim = t->ndim; e[n].data = t->data;
            for (int d = 0; d < t->ndim; d++) e[n].shape[d] = t->shape[d];
            n++;
        }
        bert_optim opt;
        memset(&opt, 0, sizeof opt);
        float step = 0.0f;
        int optim_ok = 1;
        if (argc == 6) {
            static const bert_optim_type kinds[] = { BERT_OPTIM_ADAMW_GB, BERT_OPTIM_ADAMW, BERT_OPTIM_LAMB, BERT_OPTIM_MOMENTUM };
            int t = 0;
            while (t < 4 && strcmp(argv[5], bert_optim_name(kinds[t]))) t++;
            opt = bert_optim_defaults(t < 4 ? kinds[t] : BERT_OPTIM_ADAMW_GB);
            optim_ok = t < 4 && bert_optim_init(&opt, m) == BERT_OK && bert_optim_load(&opt, m, argv[4]) == BERT_OK;
            if (!optim_ok) fprintf(stderr, "convert_forward: %s\n", t < 4 ? bert_last_error() : "unknown optimizer type");
            step = (float)opt.step;
            const char *mv_names[3] = { "optim.m", "optim.v", "optim.step" };
            const float *mv[3] = { opt.m, opt.v, &step };
            for (int k = 0; optim_ok && k < 3; k++) {
                if (!mv[k]) continue;
                memset(&e[n], 0, sizeof e[n]);
                e[n].name = mv_names[k]; e[n].dtype = BERT_DT_F32; e[n].ndim = 1; e[n].data = mv[k];
                e[n].shape[0] = k < 2 ? (int64_t)opt.n : 1;
                n++;
            }
        }
        const bert_tensor *outs[3] = { o.pooled, o.mlm_logits, o.nsp_logits };
        const char *out_names[3] = { "pooled", "mlm_logits", "nsp_logits" };
        for (int k = 0; k < 3; k++) {
            if (!outs[k]) continue;
            memset(&e[n], 0, sizeof e[n]);
            e[n].name = out_names[k]; e[n].dtype = BERT_DT_F32; e[n].ndim = outs[k]->ndim; e[n].data = outs[k]->data;
            for (int d = 0; d < outs[k]->ndim; d++) e[n].shape[d] = outs[k]->shape[d];
            n++;
        }
        rc = !optim_ok || bert_st_save(argv[3], e, n, NULL, 0) ? 1 : 0;
        if (rc && optim_ok) fprintf(stderr, "convert_forward: %s\n", bert_last_error());
        bert_optim_free(&opt);
        bert_ctx_free(ctx);
    } else {
        fprintf(stderr, "convert_forward: %s: bad or missing inputs (input_ids, token_type_ids, attention_mask, "
                        "masked_lm_positions, masked_lm_ids, next_sentence_label as I32)\n", argv[2]);
    }
    free(input_ids); free(types); free(mask); free(positions); free(labels); free(nsp);
    bert_st_close(&in);
    bert_model_free(m);
    if (!rc) printf("1 passed, 0 failed\n");
    return rc;
}
