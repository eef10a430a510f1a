// bench_bert.c - times bert.h on the workloads of ../shared/bench/torch_bert.py, same shapes.
//
//   bench_bert --mode train --batch 8      one pretraining step: reset, zero_grad, forward (MLM over
//                                          20 masked positions + NSP, dropout on), backward, AdamW
//   bench_bert --mode infer --batch 8      encoder + pooler, no tape, dropout off
//   bench_bert --mode sgemm [--shapes S]   bert_cpu_kernels()->sgemm at the BERT-base GEMM shapes
//
// Prints human-readable lines, then one JSON object per workload on its own line (the only lines
// that start with '{'). Build: gcc -O2 -march=native -fopenmp -std=c11 bench_bert.c -o bench_bert -lm
//
// FLOP counts (identical to torch_bert.py's flops(), so GFLOP/s of the two are comparable):
//   GEMM: 2*M*N*K.
//   BERT, the "standard count": per sequence of T tokens, forward = L*[2*(4H^2 + 2HF)*T + 4*T^2*H]
//   (Q,K,V,O and the two FFN matmuls, plus QK^T and P.V) + 2H^2 (pooler). Inference = that * B.
//   Training = 3 * (forward + MLM head 2*P*(H^2 + H*V) + NSP 4H) * B (backward = 2x forward).
//   Embeddings, LayerNorm, softmax, GELU, dropout and the optimizer are not counted.
#define _POSIX_C_SOURCE 200809L
#define BERT_IMPLEMENTATION
#include "../bert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <sys/resource.h>
#ifdef _OPENMP
#include <omp.h>
#define BENCH_PARALLEL_FOR _Pragma("omp parallel for schedule(static)")
#else
#define BENCH_PARALLEL_FOR
#endif

// ---------------------------------------------------------------------------------------------
// helpers

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mb(void) {   // ru_maxrss is in KiB on Linux
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1.0;
    return (double)ru.ru_maxrss / 1024.0;
}

static int threads_used(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void) {   // xorshift64*
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static int rng_int(int n) { return (int)((rng_next() >> 33) % (uint64_t)n); }
static float rng_float(void) { return (float)((rng_next() >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct { double min, med, max; int n; } stats;

static stats stats_of(const double *v, int n) {   // v in seconds; returns ms
    double *s = (double *)malloc((size_t)n * sizeof(double));
    memcpy(s, v, (size_t)n * sizeof(double));
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    stats r;
    r.n = n;
    r.min = 1e3 * s[0];
    r.max = 1e3 * s[n - 1];
    r.med = 1e3 * (n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]));
    free(s);
    return r;
}

typedef struct {
    const char *mode, *shapes, *precision, *arch;
    int batch, seq, masked, warmup, iters, max_iters;
    double min_time, max_time, clip;
    int warmup_set, iters_set, min_time_set;
} options;

static void usage(void) {
    fprintf(stderr,
            "usage: bench_bert --mode train|infer|sgemm|profile [options]\n"
            "  --batch N      batch size (train/infer; default 8)\n"
            "  --seq N        sequence length (default 128)\n"
            "  --masked N     masked positions per sequence (train; default 20)\n"
            "  --warmup N     untimed runs first (default: train 2, infer 3, sgemm 2)\n"
            "  --iters N      timed runs, at least (default: train 7, infer b8 10, infer b1 20, sgemm 10)\n"
            "  --min-time S   keep timing until S seconds were spent (default: sgemm 0.3, others 0)\n"
            "  --max-iters N  cap when --min-time extends the run (default 1000)\n"
            "  --max-time S   stop after S seconds of timed runs once 5 were done (default 0 = no limit)\n"
            "  --shapes S     sgemm set: all (default) | linear | attn | quick | comma list of names\n"
            "                 (names: attn_out,qkv,ffn_up,ffn_down with .fwd/.dx/.dw, attn.qk, attn.pv)\n"
            "  --precision P  infer, profile: fp32 (default), bf16 or int8 (bert_model_quantize); train: fp32 or bf16\n"
            "                 (bert_cpu_bf16_kernels); the workload keeps its name, the JSON line says\n"
            "                 \"precision\" and the low-precision kernel\n"
            "  --arch A       bert (default) or nezha: the same BERT-base with NEZHA's relative positions\n"
            "                 (fixed table, K 64, no absolute positions); workloads nezha_train_b8, ...\n"
            "  --clip X       global-norm clipping threshold for the train step (default 0 = off, as\n"
            "                 torch.optim.AdamW without clip_grad_norm_)\n");
}

static options parse_args(int argc, char **argv) {
    options o;
    memset(&o, 0, sizeof o);
    o.mode = "infer"; o.shapes = "all"; o.precision = "fp32"; o.arch = "bert";
    o.batch = 8; o.seq = 128; o.masked = 20; o.max_iters = 1000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); exit(0); }
        if (!v) { fprintf(stderr, "bench_bert: %s needs a value\n", a); usage(); exit(2); }
        i++;
        if (!strcmp(a, "--mode")) o.mode = v;
        else if (!strcmp(a, "--shapes")) o.shapes = v;
        else if (!strcmp(a, "--batch")) o.batch = atoi(v);
        else if (!strcmp(a, "--seq")) o.seq = atoi(v);
        else if (!strcmp(a, "--masked")) o.masked = atoi(v);
        else if (!strcmp(a, "--warmup")) { o.warmup = atoi(v); o.warmup_set = 1; }
        else if (!strcmp(a, "--iters")) { o.iters = atoi(v); o.iters_set = 1; }
        else if (!strcmp(a, "--max-iters")) o.max_iters = atoi(v);
        else if (!strcmp(a, "--min-time")) { o.min_time = atof(v); o.min_time_set = 1; }
        else if (!strcmp(a, "--max-time")) o.max_time = atof(v);
        else if (!strcmp(a, "--clip")) o.clip = atof(v);
        else if (!strcmp(a, "--precision")) o.precision = v;
        else if (!strcmp(a, "--arch")) o.arch = v;
        else { fprintf(stderr, "bench_bert: unknown option %s\n", a); usage(); exit(2); }
    }
    if (o.batch < 1 || o.seq < 2 || o.masked < 1 || o.masked >= o.seq || o.warmup < 0 || o.iters < 0) {
        fprintf(stderr, "bench_bert: bad sizes\n");
        exit(2);
    }
    if (strcmp(o.precision, "fp32") && strcmp(o.precision, "int8") && strcmp(o.precision, "bf16")) {
        fprintf(stderr, "bench_bert: --precision %s: fp32, bf16 or int8\n", o.precision);
        exit(2);
    }
    if (strcmp(o.arch, "bert") && strcmp(o.arch, "nezha")) {
        fprintf(stderr, "bench_bert: --arch %s: bert or nezha\n", o.arch);
        exit(2);
    }
    if (!strcmp(o.precision, "int8") && strcmp(o.mode, "infer") && strcmp(o.mode, "profile")) {
        fprintf(stderr, "bench_bert: --precision %s is for --mode infer or profile only\n", o.precision);
        exit(2);
    }
    return o;
}

// the torch_bert.py flops(), verbatim
static double bert_flops(const bert_config *c, int B, int T, int P, int train) {
    double H = c->hidden_size, L = c->num_hidden_layers, F = c->intermediate_size, V = c->vocab_size;
    double per_layer = 2.0 * (4 * H * H + 2 * H * F) * T + 2.0 * 2.0 * T * T * H;
    double fwd = L * per_layer + 2 * H * H;
    if (train) {
        fwd += 2.0 * P * (H * H + H * V) + 2 * H * 2;
        return 3.0 * fwd * B;
    }
    return fwd * B;
}

// precision: "fp32", or "int8" for inference after bert_model_quantize (then also its kernel)
static void print_common_json(const char *workload, const char *precision, stats s, double flop, double rss) {
    printf("{\"workload\":\"%s\",\"impl\":\"bert.h\",\"precision\":\"%s\",\"kernel\":\"%s\",", workload, precision,
           bert_sgemm_kernel_name());
    if (!strcmp(precision, "int8")) printf("\"int8_kernel\":\"%s\",", bert_int8_kernel_name());
    if (!strcmp(precision, "bf16")) printf("\"bf16_kernel\":\"%s\",", bert_bf16_kernel_name());
    printf("\"threads\":%d,"
           "\"n\":%d,\"ms_min\":%.3f,\"ms_med\":%.3f,\"ms_max\":%.3f,\"gflop\":%.4f,"
           "\"gflops\":%.2f,\"gflops_best\":%.2f,\"spread\":%.3f,\"rss_mb\":%.1f",
           threads_used(), s.n, s.min, s.med, s.max, flop / 1e9,
           flop / (s.med * 1e-3) / 1e9, flop / (s.min * 1e-3) / 1e9, s.max / s.min, rss);
}

// how many timed runs: iters, then more until min_time seconds are spent (<= max_iters); with
// max_time, fewer than iters (but at least 5) when the machine is so slow that they took longer
static int keep_going(const options *o, int done, double spent) {
    if (o->max_time > 0.0 && spent >= o->max_time && done >= 5) return 0;
    if (done < o->iters) return 1;
    return spent < o->min_time && done < o->max_iters;
}

// ---------------------------------------------------------------------------------------------
// BERT workloads

typedef struct {
    int32_t *ids, *types, *mask, *pos, *labels, *nsp;
} inputs;

static inputs make_inputs(int B, int T, int MP, int V) {
    inputs in;
    in.ids = (int32_t *)malloc((size_t)B * T * sizeof(int32_t));
    in.types = (int32_t *)malloc((size_t)B * T * sizeof(int32_t));
    in.mask = (int32_t *)malloc((size_t)B * T * sizeof(int32_t));
    in.pos = (int32_t *)malloc((size_t)B * MP * sizeof(int32_t));
    in.labels = (int32_t *)malloc((size_t)B * MP * sizeof(int32_t));
    in.nsp = (int32_t *)malloc((size_t)B * sizeof(int32_t));
    int *perm = (int *)malloc((size_t)T * sizeof(int));
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            in.ids[b * T + t] = rng_int(V);
            in.types[b * T + t] = t >= T / 2;   // as torch_bert.py: second half is segment B
            in.mask[b * T + t] = 1;             // all tokens real; the mask is still applied
        }
        // MP distinct positions in [1, T), as torch.randperm(T-1)[:P] + 1
        for (int t = 0; t < T - 1; t++) perm[t] = t + 1;
        for (int i = 0; i < MP; i++) {
            int j = i + rng_int(T - 1 - i), tmp = perm[i];
            perm[i] = perm[j]; perm[j] = tmp;
            in.pos[b * MP + i] = perm[i];
            in.labels[b * MP + i] = rng_int(V);
        }
        in.nsp[b] = rng_int(2);
    }
    free(perm);
    return in;
}

static void free_inputs(inputs *in) {
    free(in->ids); free(in->types); free(in->mask); free(in->pos); free(in->labels); free(in->nsp);
}

static int run_bert(const options *o, int train) {
    bert_config cfg = bert_config_default();   // BERT-base, vocab 30522, GELU erf, dropout 0.1
    int nezha = !strcmp(o->arch, "nezha");
    if (nezha) {   // Huawei's NEZHA-base: the fixed table, K 64 (the FLOP count stays BERT's standard one)
        cfg.use_relative_position = 1;
        cfg.max_relative_position = 64;
        cfg.relative_position_flavour = BERT_RELPOS_FIXED;
    }
    int B = o->batch, T = o->seq, MP = o->masked;
    if (T > cfg.max_position_embeddings) { fprintf(stderr, "bench_bert: seq > max positions\n"); return 1; }
    int warmup = o->warmup_set ? o->warmup : train ? 2 : 3;
    int int8 = !train && !strcmp(o->precision, "int8"), bf16 = !strcmp(o->precision, "bf16");   // training: fp32 or bf16 (bert_cpu_bf16_kernels)
    const char *precision = int8 ? "int8" : bf16 ? "bf16" : "fp32";
    options oo = *o;
    if (!o->iters_set) oo.iters = train ? 7 : B >= 8 ? 10 : 20;

    double t_create = now_s();
    bert_model *m = bert_model_create(&cfg, 42);
    if (!m) { fprintf(stderr, "bench_bert: %s\n", bert_last_error()); return 1; }
    bert_ctx *ctx = bert_ctx_create_on(train && bf16 ? bert_cpu_bf16_kernels() : bert_cpu_kernels(), (size_t)64 << 20);
    if (!ctx) { fprintf(stderr, "bench_bert: out of memory\n"); return 1; }
    bert_optim opt;
    memset(&opt, 0, sizeof opt);
    if (train) {
        opt = bert_optim_defaults(BERT_OPTIM_ADAMW);   // standard AdamW with bias correction
        opt.lr = 1e-4f; opt.weight_decay = 0.01f; opt.eps = 1e-8f;   // torch.optim.AdamW defaults
        opt.clip_norm = (float)o->clip;                              // torch: no clipping
        if (bert_optim_init(&opt, m) != BERT_OK) { fprintf(stderr, "bench_bert: %s\n", bert_last_error()); return 1; }
    } else {
        ctx->grad_enabled = 0;
        ctx->training = 0;
        if ((int8 || bf16) && bert_model_quantize(m, int8 ? BERT_PRECISION_INT8 : BERT_PRECISION_BF16) != BERT_OK) {
            fprintf(stderr, "bench_bert: %s\n", bert_last_error());
            return 1;
        }
    }
    inputs in = make_inputs(B, T, MP, cfg.vocab_size);
    bert_batch batch = { B, T, MP, in.ids, in.types, in.mask, in.pos, in.labels, in.nsp };
    double setup_s = now_s() - t_create;

    // the workload is named the same in both precisions (infer_b1 / infer_b8); the precision is a
    // field of its own in the JSON line; label = what the human-readable lines say
    char workload[64], label[80];
    snprintf(workload, sizeof workload, "%s%s_b%d", nezha ? "nezha_" : "", train ? "train" : "infer", B);
    snprintf(label, sizeof label, "%s%s", workload, int8 ? " int8" : bf16 ? " bf16" : "");
    printf("bert.h %s: %s-base (L=%d H=%d NH=%d F=%d V=%d) B=%d T=%d%s, sgemm kernel %s%s%s, %d threads, "
           "%zu params, setup %.1f s\n", label, nezha ? "NEZHA" : "BERT", cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads,
           cfg.intermediate_size, cfg.vocab_size, B, T, train ? ", MP=20 + NSP, dropout 0.1, AdamW" : ", encoder + pooler",
           bert_sgemm_kernel_name(), int8 ? ", int8 kernel " : bf16 ? ", bf16 kernel " : "",
           int8 ? bert_int8_kernel_name() : bf16 ? bert_bf16_kernel_name() : "", threads_used(),
           m->num_params, setup_s);
    fflush(stdout);

    int cap = oo.max_iters > oo.iters ? oo.max_iters : oo.iters;
    double *times = (double *)malloc((size_t)cap * sizeof(double));
    double *tf = (double *)malloc((size_t)cap * sizeof(double)), *tb = (double *)malloc((size_t)cap * sizeof(double));
    double *to = (double *)malloc((size_t)cap * sizeof(double));
    double check = 0.0, first_loss = 0.0, spent = 0.0;
    int n = 0;
    for (int i = 0; i < warmup || keep_going(&oo, n, spent); i++) {
        double t0 = now_s(), t1, t2, t3;
        bert_ctx_reset(ctx, (uint64_t)i);
        if (train) {
            bert_model_zero_grad(m);
            bert_pretrain_out out = bert_pretrain_forward(ctx, m, &batch);
            t1 = now_s();
            bert_backward(ctx, out.loss);
            t2 = now_s();
            bert_optim_step(&opt, m);
            check = out.loss->data[0];
            t3 = now_s();
            if (i == 0) first_loss = check;
        } else {
            bert_tensor *seq = bert_encode(ctx, m, in.ids, in.types, in.mask, B, T);
            bert_tensor *pooled = bert_pool(ctx, m, seq);
            t1 = t2 = t3 = now_s();
            double s = 0.0;
            for (size_t j = 0; j < pooled->numel; j++) s += fabs(pooled->data[j]);
            check = s / (double)pooled->numel;
        }
        if (train) {   // a step takes seconds: show progress and per-step noise
            printf("  step %d (%s): %.0f ms = fwd %.0f + bwd %.0f + AdamW %.0f, loss %.4f\n", i,
                   i < warmup ? "warm-up" : "timed", 1e3 * (t3 - t0), 1e3 * (t1 - t0), 1e3 * (t2 - t1),
                   1e3 * (t3 - t2), check);
            fflush(stdout);
        }
        if (i >= warmup) {
            times[n] = t3 - t0; tf[n] = t1 - t0; tb[n] = t2 - t1; to[n] = t3 - t2;
            spent += t3 - t0;
            n++;
        }
    }
    stats s = stats_of(times, n);
    double flop = bert_flops(&cfg, B, T, MP, train), rss = peak_rss_mb();
    printf("bert.h %s: %d warm-up + %d timed: min %.1f / med %.1f / max %.1f ms, %.2f seq/s, %.1f GFLOP/step, "
           "%.1f GFLOP/s (med), spread %.2f, peak RSS %.0f MB, arena %.0f MB\n",
           label, warmup, n, s.min, s.med, s.max, B / (s.med * 1e-3), flop / 1e9, flop / (s.med * 1e-3) / 1e9,
           s.max / s.min, rss, (double)bert_ctx_high_water(ctx) / 1048576.0);
    if (train)
        printf("bert.h %s: fwd %.1f / bwd %.1f / AdamW %.1f ms (medians); loss %.4f -> %.4f\n", workload,
               stats_of(tf, n).med, stats_of(tb, n).med, stats_of(to, n).med, first_loss, check);
    print_common_json(workload, precision, s, flop, rss);
    printf(",\"mode\":\"%s\",\"batch\":%d,\"seq\":%d,\"params\":%zu,\"seq_per_s\":%.3f,\"check\":%.6f,"
           "\"arena_mb\":%.1f,\"flop_formula\":\"standard (torch_bert.py flops())\"",
           train ? "train" : "infer", B, T, m->num_params, B / (s.med * 1e-3), check,
           (double)bert_ctx_high_water(ctx) / 1048576.0);
    printf(",\"arch\":\"%s\"", nezha ? "nezha" : "bert");
    if (nezha) printf(",\"max_relative_position\":%d", cfg.max_relative_position);
    if (train)
        printf(",\"masked\":%d,\"ms_fwd\":%.3f,\"ms_bwd\":%.3f,\"ms_opt\":%.3f,\"optim\":\"%s\",\"clip\":%g",
               MP, stats_of(tf, n).med, stats_of(tb, n).med, stats_of(to, n).med, bert_optim_name(opt.type), o->clip);
    printf("}\n");
    fflush(stdout);

    free(times); free(tf); free(tb); free(to);
    free_inputs(&in);
    if (train) bert_optim_free(&opt);
    bert_ctx_free(ctx);
    bert_model_free(m);
    return isfinite(check) ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// sgemm workloads

typedef struct {
    const char *name;    // e.g. "ffn_up.fwd"
    int kind;            // 0 linear, 1 attention QK^T, 2 attention P.V
    int ta, tb, M, N, K; // as bert.h's linear layer / attention kernel call the sgemm
    float beta;
    const char *form;    // NN / NT / TN
    const char *what;
} gemm_case;

enum { NTOK = 1024, AB = 8, AT = 128, AC = 768, ANH = 12 };

static int make_cases(gemm_case *cs) {
    static const struct { const char *name; int ic, oc; } lin[] = {
        { "attn_out", 768, 768 }, { "qkv", 768, 2304 }, { "ffn_up", 768, 3072 }, { "ffn_down", 3072, 768 } };
    static char names[12][32];
    int n = 0;
    for (int l = 0; l < 4; l++) {
        int ic = lin[l].ic, oc = lin[l].oc;
        // forward: out (N,OC) = inp (N,IC) . W^T        sgemm(0,1, N, OC, IC)
        // dX:      dinp (N,IC) += dout (N,OC) . W       sgemm(0,0, N, IC, OC), beta 1
        // dW:      dW (OC,IC) += dout^T (OC,N) . inp    sgemm(1,0, OC, IC, N), beta 1
        snprintf(names[n], sizeof names[n], "%s.fwd", lin[l].name);
        cs[n] = (gemm_case){ names[n], 0, 0, 1, NTOK, oc, ic, 0.0f, "NT", "forward X.W^T" }; n++;
        snprintf(names[n], sizeof names[n], "%s.dx", lin[l].name);
        cs[n] = (gemm_case){ names[n], 0, 0, 0, NTOK, ic, oc, 1.0f, "NN", "input grad dY.W" }; n++;
        snprintf(names[n], sizeof names[n], "%s.dw", lin[l].name);
        cs[n] = (gemm_case){ names[n], 0, 1, 0, oc, ic, NTOK, 1.0f, "TN", "weight grad dY^T.X" }; n++;
    }
    cs[n++] = (gemm_case){ "attn.qk", 1, 0, 1, AT, AT, AC / ANH, 0.0f, "NT", "96 x S = scale Q.K^T, in place on QKV" };
    cs[n++] = (gemm_case){ "attn.pv", 2, 0, 0, AT, AC / ANH, AT, 0.0f, "NN", "96 x O = P.V, in place on QKV" };
    return n;
}

static int selected(const char *shapes, const gemm_case *c) {
    if (!strcmp(shapes, "all")) return 1;
    if (!strcmp(shapes, "linear")) return c->kind == 0;
    if (!strcmp(shapes, "attn")) return c->kind != 0;
    if (!strcmp(shapes, "quick")) return !strcmp(c->name, "ffn_up.fwd") || !strcmp(c->name, "attn.qk");
    size_t len = strlen(c->name);   // comma-separated list of names
    for (const char *p = shapes; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == len && !strncmp(p, c->name, len)) return 1;
        p += l + (e ? 1 : 0);
    }
    return 0;
}

typedef struct {
    const float *A, *B; float *C;      // linear operands
    const float *qkv; float *att, *out; // attention operands: (B,T,3C), (B,NH,T,T), (B,T,C)
} gemm_bufs;

static void run_case(const bert_kernels *k, const gemm_case *c, const gemm_bufs *g) {
    if (c->kind == 0) {
        int lda = c->ta ? c->M : c->K, ldb = c->tb ? c->K : c->N;
        k->sgemm(c->ta, c->tb, c->M, c->N, c->K, 1.0f, g->A, lda, g->B, ldb, c->beta, g->C, c->N);
        return;
    }
    // the attention kernel's loop: per (b,h), parallel over B*NH, each sgemm on its own thread
    int HS = AC / ANH, C3 = 3 * AC;
    float scale = 1.0f / sqrtf((float)HS);
    const float *qkv = g->qkv;
    float *att = g->att, *out = g->out;
    if (c->kind == 1) {
        BENCH_PARALLEL_FOR
        for (int bh = 0; bh < AB * ANH; bh++) {
            int b = bh / ANH, h = bh % ANH;
            const float *q = qkv + (size_t)b * AT * C3 + h * HS, *kk = q + AC;
            k->sgemm(0, 1, AT, AT, HS, scale, q, C3, kk, C3, 0.0f, att + (size_t)bh * AT * AT, AT);
        }
    } else {
        BENCH_PARALLEL_FOR
        for (int bh = 0; bh < AB * ANH; bh++) {
            int b = bh / ANH, h = bh % ANH;
            const float *v = qkv + (size_t)b * AT * C3 + h * HS + 2 * AC;
            k->sgemm(0, 0, AT, HS, AT, 1.0f, att + (size_t)bh * AT * AT, AT, v, C3, 0.0f,
                     out + (size_t)b * AT * AC + h * HS, AC);
        }
    }
}

// max relative error of a few entries of C against double-precision dot products (beta = 0 run)
static double spot_check(const gemm_case *c, const gemm_bufs *g) {
    double worst = 0.0;
    for (int s = 0; s < 16; s++) {
        int i, j, M = c->M, N = c->N, K = c->K;
        double ref = 0.0, got, mag = 0.0;
        if (c->kind == 0) {
            i = rng_int(M); j = rng_int(N);
            int lda = c->ta ? M : K, ldb = c->tb ? K : N;
            for (int p = 0; p < K; p++) {
                double a = c->ta ? g->A[(size_t)p * lda + i] : g->A[(size_t)i * lda + p];
                double b = c->tb ? g->B[(size_t)j * ldb + p] : g->B[(size_t)p * ldb + j];
                ref += a * b; mag += fabs(a * b);
            }
            got = g->C[(size_t)i * N + j];
        } else {
            int bh = rng_int(AB * ANH), b = bh / ANH, h = bh % ANH, HS = AC / ANH, C3 = 3 * AC;
            const float *q = g->qkv + (size_t)b * AT * C3 + h * HS;
            i = rng_int(M); j = rng_int(N);
            if (c->kind == 1) {
                double scale = 1.0 / sqrt((double)HS);
                for (int p = 0; p < K; p++) { double t = (double)q[(size_t)i * C3 + p] * q[AC + (size_t)j * C3 + p] * scale; ref += t; mag += fabs(t); }
                got = g->att[(size_t)bh * AT * AT + (size_t)i * AT + j];
            } else {
                const float *pm = g->att + (size_t)bh * AT * AT;
                for (int p = 0; p < K; p++) { double t = (double)pm[(size_t)i * AT + p] * q[2 * AC + (size_t)p * C3 + j]; ref += t; mag += fabs(t); }
                got = g->out[(size_t)b * AT * AC + (size_t)i * AC + h * HS + j];
            }
        }
        double err = fabs(got - ref) / (mag > 0.0 ? mag : 1.0);
        if (err > worst) worst = err;
    }
    return worst;
}

static int run_sgemm(const options *o) {
    const bert_kernels *k = bert_cpu_kernels();
    options oo = *o;
    int warmup = o->warmup_set ? o->warmup : 2;
    if (!o->iters_set) oo.iters = 10;
    if (!o->min_time_set) oo.min_time = 0.3;
    gemm_case cs[16];
    int nc = make_cases(cs), bad = 0;

    size_t big = (size_t)NTOK * 3072;   // the largest operand: 1024 x 3072 (or 3072 x 1024, 3072 x 768)
    gemm_bufs g;
    float *A = (float *)malloc(big * sizeof(float)), *Bm = (float *)malloc(big * sizeof(float));
    float *C = (float *)malloc(big * sizeof(float));
    size_t nqkv = (size_t)AB * AT * 3 * AC, natt = (size_t)AB * ANH * AT * AT, nout = (size_t)AB * AT * AC;
    float *qkv = (float *)malloc(nqkv * sizeof(float)), *att = (float *)malloc(natt * sizeof(float));
    float *out = (float *)malloc(nout * sizeof(float));
    if (!A || !Bm || !C || !qkv || !att || !out) { fprintf(stderr, "bench_bert: out of memory\n"); return 1; }
    for (size_t i = 0; i < big; i++) { A[i] = rng_float(); Bm[i] = rng_float(); C[i] = 0.0f; }
    for (size_t i = 0; i < nqkv; i++) qkv[i] = rng_float();
    for (size_t i = 0; i < natt; i++) att[i] = 0.5f * (rng_float() + 1.0f) / AT;   // probability-like rows
    memset(out, 0, nout * sizeof(float));
    g.A = A; g.B = Bm; g.C = C; g.qkv = qkv; g.att = att; g.out = out;

    printf("bert.h sgemm: kernel %s, %d threads, C = alpha op(A) op(B) + beta C, GFLOP/s = 2*M*N*K / time\n",
           bert_sgemm_kernel_name(), threads_used());
    int cap = oo.max_iters > oo.iters ? oo.max_iters : oo.iters;
    double *times = (double *)malloc((size_t)cap * sizeof(double));
    for (int ci = 0; ci < nc; ci++) {
        const gemm_case *c = &cs[ci];
        if (!selected(o->shapes, c)) continue;
        int reps = c->kind == 0 ? 1 : AB * ANH;
        double flop = 2.0 * c->M * c->N * c->K * reps;
        // correctness first: one run with beta = 0 (the qk run also refreshes att for pv)
        gemm_case c0 = *c;
        c0.beta = 0.0f;
        run_case(k, &c0, &g);
        double err = spot_check(&c0, &g);
        if (!(err < 1e-4)) { bad = 1; fprintf(stderr, "bench_bert: sgemm %s gives wrong results (rel err %.2e)\n", c->name, err); }
        if (c->kind == 0) memset(C, 0, big * sizeof(float));
        for (int i = 0; i < warmup; i++) run_case(k, c, &g);
        double spent = 0.0;
        int n = 0;
        while (keep_going(&oo, n, spent)) {
            double t0 = now_s();
            run_case(k, c, &g);
            double dt = now_s() - t0;
            times[n++] = dt;
            spent += dt;
        }
        stats s = stats_of(times, n);
        char workload[64], shape[48];
        if (c->kind == 0) snprintf(shape, sizeof shape, "%dx%dx%d", c->M, c->N, c->K);
        else snprintf(shape, sizeof shape, "96x%dx%dx%d", c->M, c->N, c->K);
        snprintf(workload, sizeof workload, "sgemm_%s", c->name);
        printf("bert.h sgemm %-13s %s %-15s (%s, beta %g): %3d runs: min %.3f / med %.3f / max %.3f ms, "
               "%.1f GFLOP/s (med), %.1f (best), spread %.2f, spot-check rel err %.1e\n",
               c->name, c->form, shape, c->what, c->beta, n, s.min, s.med, s.max, flop / (s.med * 1e-3) / 1e9,
               flop / (s.min * 1e-3) / 1e9, s.max / s.min, err);
        fflush(stdout);
        print_common_json(workload, "fp32", s, flop, peak_rss_mb());
        printf(",\"mode\":\"sgemm\",\"shape\":\"%s\",\"form\":\"%s\",\"trans_a\":%d,\"trans_b\":%d,\"M\":%d,"
               "\"N\":%d,\"K\":%d,\"beta\":%g,\"batch_count\":%d,\"group\":\"%s\",\"check_rel_err\":%.2e,"
               "\"flop_formula\":\"2*M*N*K%s\"}\n",
               shape, c->form, c->ta, c->tb, c->M, c->N, c->K, c->beta, reps, c->kind == 0 ? "linear" : "attention",
               err, c->kind == 0 ? "" : " * 96");
        fflush(stdout);
    }
    free(times); free(A); free(Bm); free(C); free(qkv); free(att); free(out);
    return bad;
}

// ---------------------------------------------------------------------------------------------
// profile: the inference forward's ops timed one by one: bert_encode's inference sequence as it is
// (the fused linear epilogues; --precision int8/bf16: the quantised linears), a clock read between
// ops, medians over the timed runs, summed over the layers

enum { P_EMB, P_QKV, P_ATT, P_ATTO, P_LN1, P_FFN1, P_FFN2, P_LN2, P_REWIND, P_POOL, P_N };
static const char *const prof_names[P_N] = { "embeddings + LayerNorm", "qkv linear (C -> 3C) + bias", "attention (QK^T, softmax, PV)",
    "attention out linear (C -> C) + bias + residual", "LayerNorm 1", "ffn up linear (C -> F) + bias + GELU",
    "ffn down linear (F -> C) + bias + residual", "LayerNorm 2 (over the layer's input)", "arena rewind", "pooler" };

// layer l's linear k (0 qkv, 1 attention out, 2 ffn up, 3 ffn down) as bert_encode runs it
static bert_tensor *prof_linear(bert_ctx *ctx, bert_model *m, int l, int k, bert_tensor *x, bert_tensor *res, int act) {
    bert_layer_weights *w = &m->w.layer[l];
    bert_tensor *const W[4] = { &w->qkv_w, w->attn_o_w, w->ffn_i_w, w->ffn_o_w }, *const Bs[4] = { &w->qkv_b, w->attn_o_b, w->ffn_i_b, w->ffn_o_b };
    return m->quant ? bert__qlinear_act(ctx, x, &m->quant[4 * l + k], Bs[k], res, act) : bert__linear_act(ctx, x, W[k], Bs[k], res, act);
}

static int run_profile(const options *o) {
    bert_config cfg = bert_config_default();
    int B = o->batch, T = o->seq, iters = o->iters_set ? o->iters : 10, warmup = o->warmup_set ? o->warmup : 2;
    bert_model *m = bert_model_create(&cfg, 42);
    bert_ctx *ctx = bert_ctx_create((size_t)64 << 20);
    if (!m || !ctx) { fprintf(stderr, "bench_bert: out of memory\n"); return 1; }
    ctx->grad_enabled = 0; ctx->training = 0;
    int int8 = !strcmp(o->precision, "int8"), bf16 = !strcmp(o->precision, "bf16");
    if ((int8 || bf16) && bert_model_quantize(m, int8 ? BERT_PRECISION_INT8 : BERT_PRECISION_BF16) != BERT_OK) {
        fprintf(stderr, "bench_bert: %s\n", bert_last_error());
        return 1;
    }
    inputs in = make_inputs(B, T, 20, cfg.vocab_size);
    double *t = (double *)calloc((size_t)iters * P_N, sizeof(double)), *tot = (double *)calloc((size_t)iters, sizeof(double));
    float eps = cfg.layer_norm_eps;
    int act = (int)cfg.hidden_act;
    for (int i = 0; i < warmup + iters; i++) {
        double *row = i >= warmup ? t + (size_t)(i - warmup) * P_N : NULL, c0 = now_s(), c = c0, c1;
#define LAP(k) do { c1 = now_s(); if (row) row[k] += c1 - c; c = c1; } while (0)
        bert_ctx_reset(ctx, 0);
        bert_tensor *x = bert_layernorm(ctx, bert_embed(ctx, m->w.word_emb, m->w.pos_emb, m->w.type_emb, in.ids, in.types, B, T),
                                        m->w.emb_ln_w, m->w.emb_ln_b, eps);
        LAP(P_EMB);
        for (int l = 0; l < cfg.num_hidden_layers; l++) {
            bert__marks mark = bert__marks_now(ctx);
            bert_layer_weights *w = &m->w.layer[l];
            bert_tensor *qkv = prof_linear(ctx, m, l, 0, x, NULL, BERT_ACT_NONE); LAP(P_QKV);
            bert_tensor *att = bert_attention(ctx, qkv, in.mask, cfg.num_attention_heads, 0.0f); LAP(P_ATT);
            bert_tensor *s1 = prof_linear(ctx, m, l, 1, att, x, BERT_ACT_NONE); LAP(P_ATTO);
            bert_tensor *x1 = bert_layernorm(ctx, s1, w->attn_ln_w, w->attn_ln_b, eps); LAP(P_LN1);
            bert_tensor *f = prof_linear(ctx, m, l, 2, x1, NULL, act); LAP(P_FFN1);
            bert_tensor *s2 = prof_linear(ctx, m, l, 3, f, x1, BERT_ACT_NONE); LAP(P_FFN2);
            x = bert__layernorm_over(ctx, x, s2, w->ffn_ln_w, w->ffn_ln_b, eps); LAP(P_LN2);
            bert__ctx_pop(ctx, mark); LAP(P_REWIND);
        }
        bert_pool(ctx, m, x); LAP(P_POOL);
#undef LAP
        if (row) tot[i - warmup] = c - c0;
    }
    stats all = stats_of(tot, iters);
    printf("bert.h profile: BERT-base inference B=%d T=%d, %s (%s), %d threads, sgemm %s, %d warm-up + %d timed; total min %.1f / med %.1f / max %.1f ms\n",
           B, T, o->precision, int8 ? bert_int8_kernel_name() : bf16 ? bert_bf16_kernel_name() : "fp32", threads_used(),
           bert_sgemm_kernel_name(), warmup, iters, all.min, all.med, all.max);
    printf("| op (summed over %d layers) | median ms | share | GFLOP/s |\n|---|---|---|---|\n", cfg.num_hidden_layers);
    double C = cfg.hidden_size, F = cfg.intermediate_size, N = (double)B * T, L = cfg.num_hidden_layers;
    double flops[P_N] = { 0 };
    flops[P_QKV] = 2 * N * C * 3 * C * L; flops[P_ATTO] = 2 * N * C * C * L; flops[P_FFN1] = flops[P_FFN2] = 2 * N * C * F * L;
    flops[P_ATT] = 4.0 * B * (double)T * T * C * L;
    double *col = (double *)malloc((size_t)iters * sizeof(double));
    for (int k = 0; k < P_N; k++) {
        for (int i = 0; i < iters; i++) col[i] = t[(size_t)i * P_N + k];
        double med = stats_of(col, iters).med;
        printf("| %s | %.2f | %.1f %% |", prof_names[k], med, 100.0 * med / all.med);
        if (flops[k] > 0) printf(" %.1f |\n", flops[k] / (med * 1e-3) / 1e9); else printf(" |\n");
    }
    free(col); free(t); free(tot); free_inputs(&in);
    bert_ctx_free(ctx);
    bert_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    options o = parse_args(argc, argv);
    if (!strcmp(o.mode, "profile")) return run_profile(&o);
    if (!strcmp(o.mode, "train")) return run_bert(&o, 1);
    if (!strcmp(o.mode, "infer")) return run_bert(&o, 0);
    if (!strcmp(o.mode, "sgemm")) return run_sgemm(&o);
    fprintf(stderr, "bench_bert: unknown --mode %s\n", o.mode);
    usage();
    return 2;
}
