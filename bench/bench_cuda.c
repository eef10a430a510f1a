// bench_cuda.c - bert.h + bert_cuda.h throughput on one GPU: BERT-base and BERT-large pretraining steps
// (MLM + NSP, LAMB) at seq 128 and 512, and inference (no grad) at seq 128 and 384, with samples/s and
// MFU = model FLOPs / time / the precision's peak. Random weights and tokens: speed only.
//
//   make bench-cuda                      (builds with nvcc; prints that it skips without a GPU)
//   build/bench_cuda [--model base|large|all] [--steps N] [--math fp32|tf32|bf16] [--peak_tflops X] [--quick]
//
// Model FLOPs per sequence (forward; training counts 3x): every matmul 2*m*n*k over the encoder
// (QKV, attention out, FFN: 2T(4C^2 + 2CF) per layer), attention's QK^T and PV (4 T^2 C per layer),
// the pooler, and for pretraining the MLM transform and decoder on MP masked positions. Peaks (dense):
// H100/H200 SXM fp32 67 TFLOP/s, TF32 495, bf16 989; other GPUs need --peak_tflops. --math bf16 rounds
// the GEMM inputs to bf16 inside cuBLAS (fp32 tensors, fp32 accumulation): not yet bf16 activations.
// Anchors (issue 11): NVIDIA DLE BERT-large phase-1 ~44 % MFU on A100 AMP; FasterTransformer fp32 ~81 %
// of fp32 peak; BERT-large SQuAD inference seq 384 at 470 sentences/s (fp16, the seeds).
#define _POSIX_C_SOURCE 200809L   // clock_gettime
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "../bert_cuda.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bert_config config_of(const char *name) {
    bert_config c = bert_config_default();   // BERT-base
    if (strcmp(name, "large") == 0) {
        c.hidden_size = 1024;
        c.num_hidden_layers = 24;
        c.num_attention_heads = 16;
        c.intermediate_size = 4096;
    }
    return c;
}

static double flops_per_sequence(const bert_config *c, int T, int MP, int train) {
    double C = c->hidden_size, F = c->intermediate_size, L = c->num_hidden_layers, V = c->vocab_size;
    double f = L * (2.0 * T * (4.0 * C * C + 2.0 * C * F) + 4.0 * (double)T * T * C) + 2.0 * C * C;   // encoder, pooler
    if (train) f += MP * (2.0 * C * C + 2.0 * C * V) + 2.0 * C * 2;   // MLM transform + decoder, NSP
    return train ? 3.0 * f : f;
}

typedef struct { const char *model; int train, T, B, MP; } bench_case;

// one case: warm up, then `steps` timed steps between two syncs; returns samples/s (0 on failure)
static double run_case(const bench_case *bc, int steps, double peak, const char *precision) {
    const bert_kernels *k = bert_cuda_kernels();
    bert_config cfg = config_of(bc->model);
    bert_model *m = bert_model_create(&cfg, 1);
    if (!m || bert_model_to(m, k) != BERT_OK) {
        printf("%s: model: %s %s\n", bc->model, bert_last_error(), bert_cuda_last_error());
        bert_model_free(m);
        return 0.0;
    }
    int B = bc->B, T = bc->T, MP = bc->MP;
    int32_t *ids = (int32_t *)calloc((size_t)B * T, sizeof(int32_t)), *pos = (int32_t *)calloc((size_t)B * MP + 1, sizeof(int32_t));
    int32_t *lab = (int32_t *)calloc((size_t)B * MP + 1, sizeof(int32_t)), *nsp = (int32_t *)calloc((size_t)B, sizeof(int32_t));
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)(bert_rng_bits(7, (uint64_t)i) % (uint64_t)cfg.vocab_size);
    for (int i = 0; i < B * MP; i++) { pos[i] = (i * 7) % T; lab[i] = ids[(i / MP) * T + pos[i]]; }
    for (int b = 0; b < B; b++) nsp[b] = b & 1;
    bert_batch batch = { B, T, MP, ids, NULL, NULL, pos, lab, nsp };
    bert_optim o = bert_optim_defaults(BERT_OPTIM_LAMB);
    bert_ctx *ctx = bert_ctx_create_on(k, (size_t)1 << 30);
    double sps = 0.0;
    if (ctx && (!bc->train || bert_optim_init(&o, m) == BERT_OK)) {
        ctx->grad_enabled = ctx->training = bc->train;
        double t0 = 0.0;
        for (int s = 0; s < steps + 2; s++) {
            if (s == 2) { bert_cuda_sync(); t0 = now(); }   // two warm-up steps: arena sizing, cuBLAS heuristics
            bert_ctx_reset(ctx, (uint64_t)s);
            if (bc->train) {
                bert_model_zero_grad(m);
                bert_pretrain_out out = bert_pretrain_forward(ctx, m, &batch);
                bert_backward(ctx, out.loss);
                bert_optim_step(&o, m);
            } else {
                bert_encode(ctx, m, ids, NULL, NULL, B, T);
            }
        }
        int rc = bert_cuda_sync();
        double dt = now() - t0;
        if (rc == BERT_OK) {
            sps = (double)steps * B / dt;
            double tflops = sps * flops_per_sequence(&cfg, T, MP, bc->train) / 1e12;
            printf("bert-%-5s %-9s T=%-3d B=%-3d %s: %8.1f samples/s  %6.1f TFLOP/s", bc->model, bc->train ? "pretrain" : "inference",
                   T, B, precision, sps, tflops);
            if (peak > 0) printf("  MFU %4.1f %% of %.0f TFLOP/s", 100.0 * tflops / peak, peak);
            printf("  (%.1f ms/step, arena %.2f GiB)\n", 1e3 * dt / steps, bert_ctx_high_water(ctx) / 1073741824.0);
        } else {
            printf("bert-%s T=%d B=%d: CUDA error: %s\n", bc->model, T, B, bert_cuda_last_error());
        }
    } else {
        printf("bert-%s T=%d B=%d: out of device memory (%s)\n", bc->model, T, B, bert_cuda_last_error());
    }
    bert_ctx_free(ctx);
    bert_optim_free(&o);
    bert_model_free(m);
    free(ids); free(pos); free(lab); free(nsp);
    bert_cuda_clear_error();
    return sps;
}

int main(int argc, char **argv) {
    const char *model = "all";
    const char *math = "fp32";
    int steps = 10, quick = 0;
    float peak_flag = 0.0f;
    bert_flag flags[] = {
        { "model", BERT_FLAG_STR, &model, "base, large or all" },
        { "steps", BERT_FLAG_INT, &steps, "timed steps per case (after 2 warm-up steps)" },
        { "math", BERT_FLAG_STR, &math, "GEMM arithmetic: fp32, tf32 or bf16 (MFU against that peak)" },
        { "peak_tflops", BERT_FLAG_FLOAT, &peak_flag, "the peak to compute MFU against (0: H100/H200 values)" },
        { "quick", BERT_FLAG_BOOL, &quick, "seq 128 cases only, 3 steps" },
    };
    int nflags = (int)(sizeof flags / sizeof flags[0]), rc = bert_flags_parse(flags, nflags, argc, argv);
    if (rc) {
        if (rc != 1) fprintf(stderr, "bench_cuda: %s\n", bert_last_error());
        bert_flags_usage(rc == 1 ? stdout : stderr, flags, nflags);
        return rc == 1 ? 0 : 1;
    }
    static const char *const maths[] = { "fp32", "tf32", "bf16" };
    static const double hopper_peak[] = { 67.0, 495.0, 989.0 };   // H100/H200 SXM, dense
    int mi = 0;
    while (mi < 3 && strcmp(math, maths[mi]) != 0) mi++;
    if (mi == 3) { fprintf(stderr, "bench_cuda: --math: '%s' is not fp32, tf32 or bf16\n", math); return 1; }
    if (bert_cuda_device_count() == 0) {
        printf("bench_cuda: skipped: no CUDA device here (nothing measured)\n");
        return 0;
    }
    if (bert_cuda_init(0) != BERT_OK) { fprintf(stderr, "bench_cuda: %s\n", bert_cuda_last_error()); return 1; }
    bert_cuda_set_math((bert_cuda_math)mi);
    const char *name = bert_cuda_device_name();
    double peak = peak_flag > 0 ? peak_flag : (strstr(name, "H100") || strstr(name, "H200")) ? hopper_peak[mi] : 0.0;
    printf("device: %s, %s GEMMs%s\n", name, math, peak > 0 ? "" : " (unknown peak: pass --peak_tflops for MFU)");
    if (quick) steps = 3;
    static const bench_case cases[] = {
        { "base", 1, 128, 64, 20 }, { "base", 1, 512, 16, 80 }, { "base", 0, 128, 128, 0 }, { "base", 0, 384, 64, 0 },
        { "large", 1, 128, 64, 20 }, { "large", 1, 512, 16, 80 }, { "large", 0, 128, 128, 0 }, { "large", 0, 384, 64, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (strcmp(model, "all") != 0 && strcmp(model, cases[i].model) != 0) continue;
        if (quick && cases[i].T != 128) continue;
        run_case(&cases[i], steps, peak, math);
    }
    bert_cuda_shutdown();
    return 0;
}
