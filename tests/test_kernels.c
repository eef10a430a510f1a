// test_kernels.c - every CPU kernel on its own, without fixtures:
//   the blocked sgemm against its naive twin (all transpose cases, edges, alpha/beta, beta=0 on NaN),
//   every backward kernel against central finite differences of its forward (loss = sum(out * w)),
//   the loss kernels (softmax-xent, MSE) against their loss computed by hand,
//   the linear-chain CRF against brute force over all paths (log Z, grads, Viterbi),
//   the dropout RNG's statistics and the LR schedule,
//   exp/erf/tanh and both GELUs against double precision over dense grids.
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "check.h"

static const bert_kernels *K;

// deterministic test data in [-1, 1)
static void fill(float *x, size_t n, uint64_t seed) {
    uint64_t s = bert_rng_stream(seed, 7, 7);
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * bert_rng_uniform(s, i) - 1.0f;
}

static float *vec(size_t n, uint64_t seed) {
    float *x = (float *)calloc(n ? n : 1, sizeof(float));
    if (seed) fill(x, n, seed);
    return x;
}

// ---------------------------------------------------------------------------- sgemm

static void test_sgemm(void) {
    // odd sizes, 1, micro-tile +-1 (12x32 AVX-512, 6x16 AVX2), K across the KC slice, splits along N and along M
    static const int shapes[][3] = { { 1, 1, 1 }, { 7, 13, 5 }, { 16, 16, 16 }, { 13, 33, 31 }, { 11, 31, 193 }, { 5, 17, 257 },
                                     { 33, 17, 300 }, { 130, 1030, 20 }, { 9, 2, 513 }, { 1000, 20, 50 }, { 97, 64, 200 } };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], Kd = shapes[s][2];
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                float *A = vec((size_t)M * Kd, 1), *B = vec((size_t)Kd * N, 2);
                float *C0 = vec((size_t)M * N, 3), *C1 = vec((size_t)M * N, 3);
                int lda = ta ? M : Kd, ldb = tb ? Kd : N;
                K->sgemm(ta, tb, M, N, Kd, 0.5f, A, lda, B, ldb, 0.25f, C0, N);
                bert_sgemm_naive(ta, tb, M, N, Kd, 0.5f, A, lda, B, ldb, 0.25f, C1, N);
                char label[96];
                snprintf(label, sizeof label, "sgemm %dx%dx%d ta=%d tb=%d alpha .5 beta .25", M, N, Kd, ta, tb);
                check_close(label, C0, C1, (size_t)M * N, 1e-5, 1e-4);
                free(A); free(B); free(C0); free(C1);
            }
    }
    // beta = 0 must overwrite C, even when it holds NaN (BLIS contract)
    int M = 20, N = 40, Kd = 30;
    float *A = vec((size_t)M * Kd, 4), *B = vec((size_t)Kd * N, 5), *C0 = vec((size_t)M * N, 0), *C1 = vec((size_t)M * N, 0);
    for (int i = 0; i < M * N; i++) C0[i] = NAN;
    K->sgemm(0, 1, M, N, Kd, 1.0f, A, Kd, B, Kd, 0.0f, C0, N);
    bert_sgemm_naive(0, 1, M, N, Kd, 1.0f, A, Kd, B, Kd, 0.0f, C1, N);
    check_close("sgemm beta=0 overwrites a NaN-filled C", C0, C1, (size_t)M * N, 1e-5, 1e-4);
    free(A); free(B); free(C0); free(C1);
}

// ---------------------------------------------------------------------------- finite differences
// An op under test: forward(out) reads the current inputs; n_out outputs; loss = sum(out * w).

typedef struct fd_op {
    void (*forward)(struct fd_op *op, float *out);
    size_t n_out;
    void *args[8];
    int dims[8];
    float f;
} fd_op;

static double fd_loss(fd_op *op, const float *w, float *out) {
    op->forward(op, out);
    double s = 0.0;
    for (size_t i = 0; i < op->n_out; i++) s += (double)out[i] * w[i];
    return s;
}

// checks analytic d loss / d x (already computed by the backward kernel) against
// (loss(x+h) - loss(x-h)) / 2h for every element of x
static void fd_check(const char *label, fd_op *op, float *x, size_t n, const float *analytic, const float *w,
                     float h, double atol, double rtol) {
    float *out = vec(op->n_out, 0), *numeric = vec(n, 0);
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + h;
        double lp = fd_loss(op, w, out);
        x[i] = keep - h;
        double lm = fd_loss(op, w, out);
        x[i] = keep;
        numeric[i] = (float)((lp - lm) / (2.0 * h));
    }
    char buf[128];
    snprintf(buf, sizeof buf, "finite differences: %s", label);
    check_close(buf, analytic, numeric, n, atol, rtol);
    free(out); free(numeric);
}

#define ARG(i) ((float *)op->args[i])

static void linear_fwd(fd_op *op, float *out) {
    K->linear_forward(out, ARG(0), ARG(1), ARG(2), op->dims[0], op->dims[1], op->dims[2]);
}

static void test_linear_fd(void) {
    int N = 5, IC = 7, OC = 3;
    float *x = vec((size_t)N * IC, 11), *W = vec((size_t)OC * IC, 12), *b = vec(OC, 13), *w = vec((size_t)N * OC, 14);
    float *dx = vec((size_t)N * IC, 0), *dW = vec((size_t)OC * IC, 0), *db = vec(OC, 0);
    K->linear_backward(dx, dW, db, w, x, W, N, IC, OC);
    fd_op op = { linear_fwd, (size_t)N * OC, { x, W, b }, { N, IC, OC }, 0 };
    fd_check("linear dinp", &op, x, (size_t)N * IC, dx, w, 1e-2f, 1e-3, 1e-2);
    fd_check("linear dweight", &op, W, (size_t)OC * IC, dW, w, 1e-2f, 1e-3, 1e-2);
    fd_check("linear dbias", &op, b, OC, db, w, 1e-2f, 1e-3, 1e-2);
    free(x); free(W); free(b); free(w); free(dx); free(dW); free(db);
}

// the fused inference linear against the chain it replaces (linear_forward, add_forward,
// gelu_forward): bit for bit, at shapes with edge tiles in both dims, on one thread and split over
// threads along either side of C (its tiles then find their bias and residual by slab offset)
static void test_linear_act(void) {
    static const int shapes[][3] = { { 1, 7, 3 }, { 13, 17, 37 }, { 40, 33, 200 }, { 300, 64, 24 }, { 97, 300, 310 } };
    static const int acts[] = { BERT_ACT_NONE, BERT_GELU_ERF, BERT_GELU_TANH };
    int bad = 0, cases = 0;
    for (int s = 0; s < 5; s++)
        for (int a = 0; a < 3; a++)
            for (int with = 0; with < 4; with++) {   // bit 0: bias, bit 1: residual
                int N = shapes[s][0], IC = shapes[s][1], OC = shapes[s][2];
                size_t no = (size_t)N * OC;
                float *x = vec((size_t)N * IC, 31), *W = vec((size_t)OC * IC, 32), *b = vec(OC, 33), *r = vec(no, 34);
                float *chain = vec(no, 0), *fused = vec(no, 35);   // fused starts as garbage: it must all be written
                const float *bias = with & 1 ? b : NULL, *res = with & 2 ? r : NULL;
                K->linear_forward(chain, x, W, bias, N, IC, OC);
                if (res) K->add_forward(chain, chain, res, no);
                if (acts[a] != BERT_ACT_NONE) K->gelu_forward(chain, chain, no, acts[a]);
                K->linear_act_forward(fused, x, W, bias, res, N, IC, OC, acts[a]);
                bad += memcmp(chain, fused, no * sizeof(float)) != 0;
                cases++;
                free(x); free(W); free(b); free(r); free(chain); free(fused);
            }
    CHECK(bad == 0, "linear_act_forward equals linear + residual add + GELU bit for bit (%d of %d cases differ; "
                    "shapes up to 97x310 from 300 inputs, every act, with and without bias and residual)", bad, cases);
}

// int8 GEMM (bert_model_quantize's kernel) against an oracle written here: the same symmetric
// quantisation (per output channel, per token; round half to even), the integer products in int64,
// the dequantisation in double; then against the fp32 product within the bound derived in bert.h
static int q8(float v) { int q = (int)nearbyintf(v); return q > 127 ? 127 : q < -127 ? -127 : q; }

static void test_int8_gemm(void) {
    static const int shapes[][3] = { { 1, 4, 1 }, { 5, 7, 33 }, { 12, 64, 32 }, { 13, 130, 70 }, { 128, 768, 96 }, { 50, 3072, 40 } };
    int bad_exact = 0, bad_bound = 0, cases = 0;
    double worst_rel = 0, worst_bound_use = 0;
    for (int s = 0; s < 6; s++) {
        int N = shapes[s][0], IC = shapes[s][1], OC = shapes[s][2], Npad = (N + 95) / 96 * 96;
        float *X = vec((size_t)N * IC, 41 + s), *W = vec((size_t)OC * IC, 51 + s), *out = vec((size_t)N * OC, 61);
        if (s == 2) for (int k = 0; k < IC; k++) X[k] = 0.0f;   // an all-zero token
        bert_qweight q;
        if (!CHECK(bert__qweight_make(&q, W, OC, IC) == BERT_OK, "int8 weights %dx%d", OC, IC)) return;
        uint8_t *xq = (uint8_t *)malloc((size_t)Npad * q.K4 * 4);
        memset(xq, 0x5A, (size_t)Npad * q.K4 * 4);   // garbage: the padding must be written
        float *sx = (float *)malloc((size_t)Npad * sizeof(float));
        bert__quantize_rows(xq, sx, X, N, Npad, IC, q.K4);
        bert__epilogue ep = { NULL, NULL, (size_t)OC, BERT_ACT_NONE, 0, 0 };
        bert__qgemm(out, xq, sx, N, &q, &ep);
        for (int i = 0; i < N; i++) {
            float mx = 0.0f;
            for (int k = 0; k < IC; k++) mx = fmaxf(mx, fabsf(X[(size_t)i * IC + k]));
            float ix = mx > 0.0f ? 127.0f / mx : 0.0f;
            double sxi = mx / 127.0;
            for (int j = 0; j < OC; j++) {
                float mw = 0.0f;
                for (int k = 0; k < IC; k++) mw = fmaxf(mw, fabsf(W[(size_t)j * IC + k]));
                float iw = mw > 0.0f ? 127.0f / mw : 0.0f;
                long long dot = 0;
                double exact = 0, slack = 0;
                for (int k = 0; k < IC; k++) {
                    float x = X[(size_t)i * IC + k], w = W[(size_t)j * IC + k];
                    int a = q8(x * ix), b = q8(w * iw);
                    dot += (long long)a * b;
                    exact += (double)x * w;
                    slack += 0.5 * abs(a) + 0.5 * abs(b) + 0.25;
                }
                double want = (double)dot * (double)(float)sxi * (double)(mw / 127.0f), got = out[(size_t)i * OC + j];
                double rel = fabs(got - want) / (fabs(want) > 1e-30 ? fabs(want) : 1e-30);
                if (!(fabs(got - want) <= 1e-6 * fabs(want) + 1e-30)) bad_exact++;   // (a NaN counts as bad)
                if (rel > worst_rel && fabs(want) > 1e-20) worst_rel = rel;
                double bound = (double)(float)sxi * (mw / 127.0) * slack * (1 + 1e-5) + 1e-6 * fabs(want);
                if (!(fabs(got - exact) <= bound)) bad_bound++;
                if (bound > 0 && fabs(got - exact) / bound > worst_bound_use) worst_bound_use = fabs(got - exact) / bound;
                cases++;
            }
        }
        bert__qweight_free(&q);
        free(X); free(W); free(out); free(xq); free(sx);
    }
    CHECK(bad_exact == 0, "int8 GEMM (%s) = the oracle's exact integer sums, dequantised (%d of %d outputs off by more than 1e-6; worst %.1e)",
          bert_int8_kernel_name(), bad_exact, cases, worst_rel);
    CHECK(bad_bound == 0, "int8 GEMM within the derived bound of the fp32 product: sx sw sum(|Xq|/2 + |Wq|/2 + 1/4) "
          "(%d of %d outside; at most %.0f %% of the bound used)", bad_bound, cases, 100 * worst_bound_use);
}

// bf16 GEMM against an oracle written here (inputs rounded to bf16 by truncating the float and
// correcting to nearest even, the products summed in double), within fp32 summation's error; and
// against the fp32 product within the bound derived in bert.h
static float to_bf16(float x) {   // round to nearest even, by way of double (independent of bert.h's bit trick)
    if (x == (float)0.0f) return x;
    int e;
    double m = frexp((double)x, &e);       // x = m 2^e, 0.5 <= |m| < 1: bf16 keeps 8 significant bits
    double scaled = m * 256.0, r = nearbyint(scaled);
    return (float)ldexp(r / 256.0, e);
}

static void test_bf16_gemm(void) {
    static const int shapes[][3] = { { 1, 2, 1 }, { 5, 7, 33 }, { 13, 130, 70 }, { 128, 768, 96 }, { 50, 3072, 40 } };
    int bad_exact = 0, bad_bound = 0, cases = 0;
    double worst_use = 0;
    for (int s = 0; s < 5; s++) {
        int N = shapes[s][0], IC = shapes[s][1], OC = shapes[s][2], Npad = (N + 95) / 96 * 96;
        float *X = vec((size_t)N * IC, 71 + s), *W = vec((size_t)OC * IC, 81 + s), *out = vec((size_t)N * OC, 91);
        bert_qweight q;
        memset(&q, 0, sizeof q);
        if (!CHECK(bert__bweight_make(&q, W, OC, IC) == BERT_OK, "bf16 weights %dx%d", OC, IC)) return;
        uint16_t *xh = (uint16_t *)malloc((size_t)Npad * q.K4 * 2 * sizeof(uint16_t));
        memset(xh, 0xFF, (size_t)Npad * q.K4 * 2 * sizeof(uint16_t));   // NaN bits: the padding must be written
        bert__bf16_rows(xh, X, N, Npad, IC, q.K4);
        bert__epilogue ep = { NULL, NULL, (size_t)OC, BERT_ACT_NONE, 0, 0 };
        bert__bgemm(out, xh, N, Npad, &q, &ep);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < OC; j++) {
                double want = 0, exact = 0, mag = 0;
                for (int k = 0; k < IC; k++) {
                    float x = X[(size_t)i * IC + k], w = W[(size_t)j * IC + k];
                    want += (double)to_bf16(x) * to_bf16(w);
                    exact += (double)x * w;
                    mag += fabs((double)x * w);
                }
                double got = out[(size_t)i * OC + j], sum_err = IC * 0x1p-24 * mag * 1.01 + 1e-30;
                if (!(fabs(got - want) <= sum_err)) bad_exact++;   // (a NaN counts as bad)
                double bound = (0x1p-7 + 0x1p-16) * mag + sum_err;   // 8 significant bits: 2^-8 per input
                if (!(fabs(got - exact) <= bound)) bad_bound++;
                if (fabs(got - exact) / bound > worst_use) worst_use = fabs(got - exact) / bound;
                cases++;
            }
        bert__qweight_free(&q);
        free(X); free(W); free(out); free(xh);
    }
    CHECK(bad_exact == 0, "bf16 GEMM (%s) = the oracle's sum of bf16 products within fp32 summation error K 2^-24 sum|xw| "
          "(%d of %d outside)", bert_bf16_kernel_name(), bad_exact, cases);
    CHECK(bad_bound == 0, "bf16 GEMM within the derived bound of the fp32 product, (2^-7 + 2^-16) sum|xw| + summation "
          "(%d of %d outside; at most %.0f %% of the bound used)", bad_bound, cases, 100 * worst_use);
}

/* bert_cpu_bf16_kernels (bf16 training): the linear layer's forward (bias + residual) and both
   backward GEMMs (accumulating into what the grads held) against double sums of the fp32 inputs,
   within the bf16 GEMM's bound per output: (2^-7 + 2^-16) sum|ab| for the rounded inputs, K 2^-24
   sum|ab| for the fp32 sums, plus one fp32 rounding of each add to what was there (2^-24 |result|,
   doubled for slack). At awkward shapes (1, odd, past the 32-row AMX block and a 16-k tile). */
static int bf16_check(const char *what, const float *got, const double *want, const double *mag, size_t n, int kdim, double *use) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double bound = (0x1p-7 + 0x1p-16) * mag[i] + kdim * 0x1p-24 * mag[i] * 1.01 + 0x1p-23 * fabs(want[i]) + 1e-30;
        if (!(fabs(got[i] - want[i]) <= bound)) bad++;
        if (fabs(got[i] - want[i]) / bound > *use) *use = fabs(got[i] - want[i]) / bound;
    }
    if (bad) printf("    %s: %d of %zu outside\n", what, bad, n);
    return bad;
}

/* want[i,j] = add[i,j] + sum_k A[i,k] B[k,j] in double and mag[i,j] = sum_k |A[i,k] B[k,j]|, for
   (M,N) outputs over K, the operands given by their strides (element (i,k) of A at A[i*ai + k*ak]);
   add may be NULL */
static void ref_gemm(double *want, double *mag, const float *add, const float *A, size_t ai, size_t ak,
                     const float *B, size_t bk, size_t bj, int M, int N, int kdim) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double sum = 0, m = 0;
            for (int k = 0; k < kdim; k++) {
                double p = (double)A[i * ai + k * ak] * B[k * bk + j * bj];
                sum += p;
                m += fabs(p);
            }
            want[(size_t)i * N + j] = (add ? add[(size_t)i * N + j] : 0.0) + sum;
            mag[(size_t)i * N + j] = m;
        }
}

static void test_bf16_training_kernels(void) {
    const bert_kernels *k = bert_cpu_bf16_kernels();
    static const int shapes[][3] = { { 1, 1, 1 }, { 3, 5, 7 }, { 33, 40, 31 }, { 70, 96, 65 }, { 128, 64, 192 } };
    int bad = 0;
    double use = 0;
    for (int s = 0; s < 5; s++) {
        int N = shapes[s][0], IC = shapes[s][1], OC = shapes[s][2];
        float *x = vec((size_t)N * IC, 301 + s), *w = vec((size_t)OC * IC, 311 + s), *b = vec((size_t)OC, 321 + s);
        float *res = vec((size_t)N * OC, 331 + s), *dy = vec((size_t)N * OC, 341 + s), *out = vec((size_t)N * OC, 351);
        float *dx = vec((size_t)N * IC, 361 + s), *dw = vec((size_t)OC * IC, 371 + s), *db = vec((size_t)OC, 381 + s);
        double *want = (double *)malloc(((size_t)N * IC + (size_t)OC * IC + (size_t)N * OC) * sizeof(double) * 2);
        double *mag = want + (size_t)N * IC + (size_t)OC * IC + (size_t)N * OC;
        k->linear_act_forward(out, x, w, b, res, N, IC, OC, BERT_ACT_NONE);
        ref_gemm(want, mag, res, x, (size_t)IC, 1, w, 1, (size_t)IC, N, OC, IC);   // x . w^T + res
        for (int i = 0; i < N; i++)
            for (int j = 0; j < OC; j++) want[(size_t)i * OC + j] += b[j];
        bad += bf16_check("forward", out, want, mag, (size_t)N * OC, IC, &use);
        float *dx0 = (float *)malloc((size_t)N * IC * sizeof(float)), *dw0 = (float *)malloc((size_t)OC * IC * sizeof(float));
        memcpy(dx0, dx, (size_t)N * IC * sizeof(float));
        memcpy(dw0, dw, (size_t)OC * IC * sizeof(float));
        float db0 = db[0];
        k->linear_backward(dx, dw, db, dy, x, w, N, IC, OC);
        ref_gemm(want, mag, dx0, dy, (size_t)OC, 1, w, (size_t)IC, 1, N, IC, OC);   // dx0 + dy . w
        bad += bf16_check("dinp", dx, want, mag, (size_t)N * IC, OC, &use);
        ref_gemm(want, mag, dw0, dy, 1, (size_t)OC, x, (size_t)IC, 1, OC, IC, N);   // dw0 + dy^T . x
        bad += bf16_check("dweight", dw, want, mag, (size_t)OC * IC, N, &use);
        double sb = db0;
        for (int i = 0; i < N; i++) sb += dy[(size_t)i * OC];
        bad += !(fabs(db[0] - sb) <= 1e-5 * (1 + fabs(sb)));   // bias sums stay fp32
        free(x); free(w); free(b); free(res); free(dy); free(out); free(dx); free(dw); free(db); free(want); free(dx0); free(dw0);
    }
    CHECK(bad == 0 && !strcmp(k->name, "cpu-bf16"), "bf16 training table (%s GEMM): linear forward (bias + residual), dinp and dweight (accumulating) "
          "within the bf16 bound at 5 shapes (at most %.0f %% of it used)", bert_bf16_kernel_name(), 100 * use);
    CHECK(k->layernorm_forward == bert_cpu_kernels()->layernorm_forward && k->attention_forward == bert_cpu_kernels()->attention_forward,
          "bf16 training table: every op but the linear layer's is the fp32 table's");
}

static void layernorm_fwd(fd_op *op, float *out) {
    int N = op->dims[0], C = op->dims[1];
    float mean[16], rstd[16];
    K->layernorm_forward(out, mean, rstd, ARG(0), ARG(1), ARG(2), N, C, 1e-12f);
}

static void test_layernorm_fd(void) {
    int N = 4, C = 9;
    float *x = vec((size_t)N * C, 21), *g = vec(C, 22), *b = vec(C, 23), *w = vec((size_t)N * C, 24);
    float *dx = vec((size_t)N * C, 0), *dg = vec(C, 0), *db = vec(C, 0), *out = vec((size_t)N * C, 0), mean[16], rstd[16];
    K->layernorm_forward(out, mean, rstd, x, g, b, N, C, 1e-12f);
    K->layernorm_backward(dx, dg, db, w, x, g, mean, rstd, N, C);
    fd_op op = { layernorm_fwd, (size_t)N * C, { x, g, b }, { N, C }, 0 };
    fd_check("layernorm dinp", &op, x, (size_t)N * C, dx, w, 1e-3f, 2e-3, 2e-2);
    fd_check("layernorm dweight", &op, g, C, dg, w, 1e-2f, 1e-3, 1e-2);
    fd_check("layernorm dbias", &op, b, C, db, w, 1e-2f, 1e-3, 1e-2);
    free(x); free(g); free(b); free(w); free(dx); free(dg); free(db); free(out);
}

// dims: B T C NH K; args: qkv, mask_add, rel (NULL when K = 0)
static void attention_fwd(fd_op *op, float *out) {
    int B = op->dims[0], T = op->dims[1], C = op->dims[2], NH = op->dims[3], Kr = op->dims[4];
    float *att = vec((size_t)B * NH * T * T, 0);
    K->attention_forward(out, att, ARG(0), ARG(1), ARG(2), B, T, C, NH, Kr, op->f, 99);
    free(att);
}

// Kr > 0: NEZHA's relative table (2Kr+1, HS) as a learned parameter; T = 5 > 2*1+1 clips at Kr = 1
static void test_attention_fd(float drop_p, int Kr) {
    int B = 2, T = 5, C = 8, NH = 2, HS = C / NH;
    size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, nr = (size_t)(2 * Kr + 1) * HS;
    float *qkv = vec(nq, 31), *w = vec(no, 32), *dqkv = vec(nq, 0), *out = vec(no, 0);
    float *att = vec((size_t)B * NH * T * T, 0), mask_add[10];
    float *rel = Kr ? vec(nr, 33) : NULL, *drel = Kr ? vec(nr, 0) : NULL;
    for (int i = 0; i < B * T; i++) mask_add[i] = (i == 8 || i == 9) ? -10000.0f : 0.0f;   // pad the last 2 of seq 1
    for (size_t i = 0; i < nq; i++) qkv[i] *= 2.0f;   // peakier softmax
    K->attention_forward(out, att, qkv, mask_add, rel, B, T, C, NH, Kr, drop_p, 99);
    K->attention_backward(dqkv, drel, w, qkv, att, rel, B, T, C, NH, Kr, drop_p, 99);
    fd_op op = { attention_fwd, no, { qkv, mask_add, rel }, { B, T, C, NH, Kr }, drop_p };
    char label[96];
    snprintf(label, sizeof label, "attention dqkv (mask%s%s)", drop_p > 0 ? ", dropout 0.3" : "", Kr == 1 ? ", relative K=1 clipped" : Kr ? ", relative" : "");
    fd_check(label, &op, qkv, nq, dqkv, w, 1e-3f, 2e-3, 2e-2);
    if (Kr) {
        snprintf(label, sizeof label, "attention drel, the learned table (mask%s, K=%d)", drop_p > 0 ? ", dropout 0.3" : "", Kr);
        fd_check(label, &op, rel, nr, drel, w, 1e-3f, 2e-3, 2e-2);
    }
    // masked keys get (almost) no probability
    double masked = 0.0;
    for (int h = 0; h < NH; h++)
        for (int i = 0; i < T; i++) masked += att[(((size_t)1 * NH + h) * T + i) * T + 3] + att[(((size_t)1 * NH + h) * T + i) * T + 4];
    if (drop_p == (float)0.0f) CHECK(masked < 1e-6, "attention: padded keys get probability %.1e", masked);
    free(qkv); free(w); free(dqkv); free(out); free(att); free(rel); free(drel);
}

// the fused attention against a naive twin in double (odd T, 3 heads, padding, dropout): scores,
// mask, softmax, dropout with the same counter-based mask, weighted sum, heads merged. Kr > 0:
// NEZHA's relative terms written straight from the definition, a_ij = R[clip(j-i, -Kr, Kr) + Kr]:
// s_ij = (q_i.k_j + q_i.a_ij)/sqrt(HS) + mask, z_i = sum_j p_ij (v_j + a_ij)
static void test_attention_naive(float drop_p, int Kr) {
    int B = 2, T = 37, NH = 3, HS = 7, C = NH * HS, C3 = 3 * C;
    float *qkv = vec((size_t)B * T * C3, 81), *out = vec((size_t)B * T * C, 0), *att = vec((size_t)B * NH * T * T, 0);
    float *ref = vec((size_t)B * T * C, 0), *mask_add = vec((size_t)B * T, 0), *rel = Kr ? vec((size_t)(2 * Kr + 1) * HS, 82) : NULL;
    for (int t = 30; t < T; t++) mask_add[T + t] = -10000.0f;   // sequence 1 padded after 30 tokens
    uint64_t stream = bert_rng_stream(5, 6, 7);
    K->attention_forward(out, att, qkv, mask_add, rel, B, T, C, NH, Kr, drop_p, stream);
    double scale = 1.0 / sqrt((double)HS), s[64];
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                double mx = -1e300, sum = 0.0;
                for (int j = 0; j < T; j++) {
                    int dist = j - i < -Kr ? -Kr : j - i > Kr ? Kr : j - i;
                    const float *a = rel ? rel + (size_t)(dist + Kr) * HS : NULL;
                    double d = 0.0;
                    for (int e = 0; e < HS; e++)
                        d += (double)qkv[((size_t)b * T + i) * C3 + h * HS + e] *
                             ((double)qkv[((size_t)b * T + j) * C3 + C + h * HS + e] + (a ? a[e] : 0.0));
                    s[j] = d * scale + mask_add[b * T + j];
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < T; j++) { s[j] = exp(s[j] - mx); sum += s[j]; }
                for (int e = 0; e < HS; e++) {
                    double o = 0.0;
                    for (int j = 0; j < T; j++) {
                        int dist = j - i < -Kr ? -Kr : j - i > Kr ? Kr : j - i;
                        double p = s[j] / sum;
                        uint64_t idx = (((uint64_t)b * NH + h) * T + i) * T + j;
                        if (drop_p > 0.0f) p = bert_rng_uniform(stream, idx) >= drop_p ? p / (1.0 - drop_p) : 0.0;
                        o += p * (qkv[((size_t)b * T + j) * C3 + 2 * C + h * HS + e] + (rel ? rel[(size_t)(dist + Kr) * HS + e] : 0.0));
                    }
                    ref[((size_t)b * T + i) * C + h * HS + e] = (float)o;
                }
            }
    char label[112];
    snprintf(label, sizeof label, "attention vs naive twin (T=37, 3 heads, padding%s%s)", drop_p > 0 ? ", dropout 0.2" : "",
             Kr == 0 ? "" : Kr < T - 1 ? ", relative K=5 clipped" : ", relative K=40 > T-1");
    check_close(label, out, ref, (size_t)B * T * C, 1e-6, 1e-5);
    free(qkv); free(out); free(att); free(ref); free(mask_add); free(rel);
}

static void gelu_fwd(fd_op *op, float *out) { K->gelu_forward(out, ARG(0), op->n_out, op->dims[0]); }
static void tanh_fwd(fd_op *op, float *out) { K->tanh_forward(out, ARG(0), op->n_out); }
static void dropout_fwd(fd_op *op, float *out) { K->dropout_forward(out, ARG(0), op->n_out, op->f, 5); }
static void scale_fwd(fd_op *op, float *out) { K->scale_forward(out, ARG(0), op->n_out, op->f); }

static void test_pointwise_fd(void) {
    size_t n = 64;
    float *x = vec(n, 41), *w = vec(n, 42), *out = vec(n, 0);
    for (size_t i = 0; i < n; i++) x[i] *= 4.0f;   // cover the curved part of GELU and tanh
    for (int act = 0; act < 2; act++) {
        float *dx = vec(n, 0);
        K->gelu_backward(dx, w, x, n, act);
        fd_op op = { gelu_fwd, n, { x }, { act }, 0 };
        fd_check(act == BERT_GELU_TANH ? "gelu (tanh) dinp" : "gelu (erf) dinp", &op, x, n, dx, w, 1e-2f, 1e-3, 1e-2);
        free(dx);
    }
    float *dx = vec(n, 0);
    K->tanh_forward(out, x, n);
    K->tanh_backward(dx, w, out, n);
    fd_op op = { tanh_fwd, n, { x }, { 0 }, 0 };
    fd_check("tanh dinp", &op, x, n, dx, w, 1e-2f, 1e-3, 1e-2);
    memset(dx, 0, n * sizeof(float));
    K->dropout_backward(dx, w, n, 0.25f, 5);
    fd_op dop = { dropout_fwd, n, { x }, { 0 }, 0.25f };
    fd_check("dropout dinp (p 0.25)", &dop, x, n, dx, w, 1e-2f, 1e-3, 1e-2);
    memset(dx, 0, n * sizeof(float));
    K->scale_backward(dx, w, n, -0.37f);
    fd_op sop = { scale_fwd, n, { x }, { 0 }, -0.37f };
    fd_check("scale dinp (alpha -0.37)", &sop, x, n, dx, w, 1e-2f, 1e-3, 1e-2);
    free(x); free(w); free(out); free(dx);
}

static void embedding_fwd(fd_op *op, float *out) {
    K->embedding_forward(out, (const int32_t *)op->args[3], (const int32_t *)op->args[4], ARG(0), ARG(1), ARG(2),
                         op->dims[0], op->dims[1], op->dims[2]);
}

static void test_embedding_fd(void) {
    int B = 2, T = 3, C = 4, V = 5;
    int32_t ids[6] = { 1, 4, 1, 0, 2, 4 }, types[6] = { 0, 0, 1, 0, 1, 1 };
    float *wte = vec((size_t)V * C, 51), *wpe = vec((size_t)T * C, 52), *wtt = vec(2 * (size_t)C, 53), *w = vec((size_t)B * T * C, 54);
    float *dwte = vec((size_t)V * C, 0), *dwpe = vec((size_t)T * C, 0), *dwtt = vec(2 * (size_t)C, 0);
    K->embedding_backward(dwte, dwpe, dwtt, w, ids, types, B, T, C);
    fd_op op = { embedding_fwd, (size_t)B * T * C, { wte, wpe, wtt, ids, types }, { B, T, C }, 0 };
    fd_check("embedding dwte (repeated ids)", &op, wte, (size_t)V * C, dwte, w, 1e-2f, 1e-3, 1e-2);
    fd_check("embedding dwpe", &op, wpe, (size_t)T * C, dwpe, w, 1e-2f, 1e-3, 1e-2);
    fd_check("embedding dwtt", &op, wtt, 2 * (size_t)C, dwtt, w, 1e-2f, 1e-3, 1e-2);
    free(wte); free(wpe); free(wtt); free(w); free(dwte); free(dwpe); free(dwtt);
}

static void xent_fwd(fd_op *op, float *out) {
    float *probs = vec((size_t)op->dims[0] * op->dims[1], 0);
    out[0] = K->xent_forward(probs, ARG(0), (const int32_t *)op->args[1], op->dims[0], op->dims[1], -100);
    free(probs);
}

static void test_xent_fd(void) {
    int N = 4, V = 6;
    int32_t labels[4] = { 2, -100, 5, 0 };
    float *logits = vec((size_t)N * V, 61), *probs = vec((size_t)N * V, 0), *dl = vec((size_t)N * V, 0), w[1] = { 1.7f };
    for (int i = 0; i < N * V; i++) logits[i] *= 3.0f;
    float loss = K->xent_forward(probs, logits, labels, N, V, -100);
    K->xent_backward(dl, probs, labels, w[0], N, V, -100);
    fd_op op = { xent_fwd, 1, { logits, labels }, { N, V }, 0 };
    fd_check("softmax-xent dlogits (one row ignored)", &op, logits, (size_t)N * V, dl, w, 1e-2f, 1e-3, 1e-2);
    double ref = 0.0;   // the loss itself, by hand in double
    for (int n = 0; n < N; n++) {
        if (labels[n] == -100) continue;
        double mx = -1e30, s = 0.0;
        for (int v = 0; v < V; v++) mx = fmax(mx, logits[n * V + v]);
        for (int v = 0; v < V; v++) s += exp(logits[n * V + v] - mx);
        ref += -(logits[n * V + labels[n]] - mx - log(s)) / 3.0;
    }
    CHECK(fabs(loss - ref) < 1e-5, "softmax-xent loss %.7f vs %.7f (mean over the 3 counted rows)", loss, ref);
    int32_t none[2] = { -100, -100 };
    CHECK(K->xent_forward(probs, logits, none, 2, V, -100) == (float)0.0f, "softmax-xent with every row ignored is 0");
    free(logits); free(probs); free(dl);
}

static void mse_fwd(fd_op *op, float *out) { out[0] = K->mse_forward(ARG(0), ARG(1), (size_t)op->dims[0]); }

static void test_mse_fd(void) {
    int n = 7;
    float *pred = vec((size_t)n, 65), *target = vec((size_t)n, 66), *dp = vec((size_t)n, 0), w[1] = { 0.8f };
    K->mse_backward(dp, pred, target, w[0], (size_t)n);
    fd_op op = { mse_fwd, 1, { pred, target }, { n }, 0 };
    fd_check("mse dpred", &op, pred, (size_t)n, dp, w, 1e-2f, 1e-4, 1e-3);
    double ref = 0.0;   // the loss itself, by hand in double
    for (int i = 0; i < n; i++) ref += ((double)pred[i] - target[i]) * ((double)pred[i] - target[i]) / n;
    float loss = K->mse_forward(pred, target, (size_t)n);
    CHECK(fabs(loss - ref) < 1e-6, "mse loss %.7f vs %.7f (mean over %d elements)", loss, ref, n);
    free(pred); free(target); free(dp);
}

static void gather_fwd(fd_op *op, float *out) {
    K->gather_forward(out, ARG(0), (const int32_t *)op->args[1], op->dims[0], op->dims[1]);
}

static void test_gather_fd(void) {
    int N = 5, M = 4, C = 3;
    int32_t rows[4] = { 4, 0, 4, 2 };
    float *x = vec((size_t)N * C, 71), *w = vec((size_t)M * C, 72), *dx = vec((size_t)N * C, 0);
    K->gather_backward(dx, w, rows, M, C);
    fd_op op = { gather_fwd, (size_t)M * C, { x, rows }, { M, C }, 0 };
    fd_check("gather dinp (a repeated row)", &op, x, (size_t)N * C, dx, w, 1e-2f, 1e-3, 1e-2);
    free(x); free(w); free(dx);
}

// ---------------------------------------------------------------------------- linear-chain CRF
// Against brute force over all K^n paths of tiny sequences (log Z, the NLL, its grads from the
// enumerated marginals, Viterbi), and the kernel pair against finite differences.

static double crf_score(const float *em, const float *tr, const int *y, int n, int Kt) {
    int K2 = Kt + 2;
    double s = (double)tr[Kt * K2 + y[0]] + tr[y[n - 1] * K2 + Kt + 1];
    for (int t = 0; t < n; t++) s += (double)em[t * Kt + y[t]] + (t ? (double)tr[y[t - 1] * K2 + y[t]] : 0.0);
    return s;
}

// every path of one sequence: returns log Z; pe (n,K) and ptr (K+2,K+2) get the marginals
// (expected counts), best the highest-scoring path (first one on ties, as bert_crf_decode)
static double crf_brute(const float *em, const float *tr, int n, int Kt, double *pe, double *ptr, int *best) {
    int K2 = Kt + 2, total = 1, y[8];
    for (int t = 0; t < n; t++) total *= Kt;
    double mx = -1e300, z = 0.0;
    for (int pass = 0; pass < 3; pass++)
        for (int p = 0; p < total; p++) {
            for (int t = n - 1, q = p; t >= 0; t--, q /= Kt) y[t] = q % Kt;   // y[0] most significant: lexicographic
            double s = crf_score(em, tr, y, n, Kt);
            if (pass == 0 && s > mx) { mx = s; memcpy(best, y, sizeof(int) * (size_t)n); }
            if (pass == 1) z += exp(s - mx);
            if (pass == 2) {
                double pr = exp(s - mx) / z;
                for (int t = 0; t < n; t++) pe[t * Kt + y[t]] += pr;
                for (int t = 1; t < n; t++) ptr[y[t - 1] * K2 + y[t]] += pr;
                ptr[Kt * K2 + y[0]] += pr;
                ptr[y[n - 1] * K2 + Kt + 1] += pr;
            }
        }
    return mx + log(z);
}

static void crf_fwd(fd_op *op, float *out) {
    int B = op->dims[0], T = op->dims[1], Kt = op->dims[2];
    float nll[8];
    double *work = (double *)calloc((size_t)B * (2 * T * Kt + (Kt + 2) * (Kt + 2)), sizeof(double));
    out[0] = K->crf_forward(nll, ARG(0), ARG(1), (const int32_t *)op->args[2], (const int32_t *)op->args[3], B, T, Kt, work);
    free(work);
}

static void test_crf(void) {
    double e_logz = 0, e_nll = 0, e_de = 0, e_dt = 0;
    int viterbi_bad = 0, cases = 0;
    for (int Kt = 3; Kt <= 4; Kt++)
        for (int T = 1; T <= 5; T++) {
            int B = 3, K2 = Kt + 2, NE = B * T * Kt, NT = K2 * K2, count = 0;
            int32_t lengths[3] = { T, (T + 1) / 2, T == 1 ? 1 : 0 }, tags[15], decoded[15];
            float *em = vec((size_t)NE, 90 + (uint64_t)(T * 10 + Kt)), *tr = vec((size_t)NT, 80 + (uint64_t)(T * 10 + Kt)), nll[3];
            for (int i = 0; i < NE; i++) em[i] *= 2.5f;   // peaked enough that paths differ a lot
            uint64_t s = bert_rng_stream(T, Kt, 3);
            for (int i = 0; i < B * T; i++) tags[i] = (int32_t)(bert_rng_bits(s, (uint64_t)i) % (uint64_t)Kt);
            double *work = (double *)calloc((size_t)B * (2 * T * Kt + NT), sizeof(double));
            float *de = vec((size_t)NE, 0), *dt = vec((size_t)NT, 0), dloss = 1.3f;
            float mean = K->crf_forward(nll, em, tr, tags, lengths, B, T, Kt, work);
            K->crf_backward(de, dt, em, tr, tags, lengths, dloss, B, T, Kt, work);
            for (int b = 0; b < B; b++) count += lengths[b] > 0;
            double want_mean = 0, *pe = (double *)calloc((size_t)NE, sizeof(double)), *pt = (double *)calloc((size_t)NT, sizeof(double));
            for (int b = 0; b < B; b++) {
                int n = lengths[b], y[8], best[8];
                if (!n) { e_nll = fmax(e_nll, fabs(nll[b])); continue; }
                for (int t = 0; t < n; t++) y[t] = tags[b * T + t];
                double *pb = (double *)calloc((size_t)T * Kt, sizeof(double)), *ptb = (double *)calloc((size_t)NT, sizeof(double));
                const float *eb = em + b * T * Kt;
                double logz = crf_brute(eb, tr, n, Kt, pb, ptb, best), gold = crf_score(eb, tr, y, n, Kt);
                e_logz = fmax(e_logz, fabs(((double)nll[b] + gold) - logz));   // the kernel's log Z = NLL + gold score
                e_nll = fmax(e_nll, fabs(nll[b] - (logz - gold)));
                want_mean += (logz - gold) / count;
                for (int t = 0; t < n; t++) {   // expected minus gold counts, scaled by dloss / count
                    for (int j = 0; j < Kt; j++) pe[(b * T + t) * Kt + j] = (pb[t * Kt + j] - (y[t] == j)) * dloss / count;
                    if (t) ptb[y[t - 1] * K2 + y[t]] -= 1.0;
                }
                ptb[Kt * K2 + y[0]] -= 1.0;
                ptb[y[n - 1] * K2 + Kt + 1] -= 1.0;
                for (int i = 0; i < NT; i++) pt[i] += ptb[i] * dloss / count;
                bert_tensor et = { em, NULL, 3, { B, T, Kt, 0 }, (size_t)NE, 0, NULL }, tt = { tr, NULL, 2, { K2, K2, 0, 0 }, (size_t)NT, 0, NULL };
                if (b == 0 && bert_crf_decode(&et, &tt, lengths, decoded) != BERT_OK) viterbi_bad += 1000;
                for (int t = 0; t < T; t++) viterbi_bad += decoded[b * T + t] != (t < n ? best[t] : -1);
                free(pb); free(ptb);
            }
            e_nll = fmax(e_nll, fabs(mean - want_mean));
            for (int i = 0; i < NE; i++) e_de = fmax(e_de, fabs(de[i] - pe[i]));
            for (int i = 0; i < NT; i++) e_dt = fmax(e_dt, fabs(dt[i] - pt[i]));
            cases++;
            free(em); free(tr); free(work); free(de); free(dt); free(pe); free(pt);
        }
    CHECK(e_logz < 2e-5, "crf log Z vs all K^n paths (K 3-4, T 1-5, lengths T, T/2, 0 or 1; %d cases): max err %.2e", cases, e_logz);
    CHECK(e_nll < 2e-5, "crf NLL per sequence and the mean over length > 0 vs brute force: max err %.2e", e_nll);
    CHECK(e_de < 1e-6, "crf d/d emissions = marginals - gold (enumerated), 0 past the length: max err %.2e", e_de);
    CHECK(e_dt < 1e-6, "crf d/d transitions (START, STOP, pairs) vs enumerated expected counts: max err %.2e", e_dt);
    CHECK(viterbi_bad == 0, "crf Viterbi = the best of all K^n paths, -1 past the length (%d tags differ)", viterbi_bad);

    // the kernel pair against finite differences, with a sequence of length 0 in the batch
    int B = 3, T = 5, Kt = 4, K2 = Kt + 2;
    int32_t lengths[3] = { 5, 3, 0 }, tags[15] = { 0, 1, 2, 3, 1, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0 };
    float *em = vec((size_t)B * T * Kt, 97), *tr = vec((size_t)K2 * K2, 98), *de = vec((size_t)B * T * Kt, 0), *dt = vec((size_t)K2 * K2, 0), w[1] = { 0.9f };
    double *work = (double *)calloc((size_t)B * (2 * T * Kt + K2 * K2), sizeof(double));
    K->crf_backward(de, dt, em, tr, tags, lengths, w[0], B, T, Kt, work);
    fd_op op = { crf_fwd, 1, { em, tr, tags, lengths }, { B, T, Kt }, 0 };
    fd_check("crf demissions (lengths 5, 3, 0)", &op, em, (size_t)B * T * Kt, de, w, 1e-2f, 1e-3, 1e-2);
    fd_check("crf dtransitions (K+2)^2", &op, tr, (size_t)K2 * K2, dt, w, 1e-2f, 1e-3, 1e-2);
    free(em); free(tr); free(de); free(dt); free(work);
}

// ---------------------------------------------------------------------------- RNG, schedule

static void test_rng(void) {
    uint64_t s = bert_rng_stream(1, 2, 3);
    double mean = 0.0, lo = 1.0, hi = 0.0;
    int n = 100000, kept = 0;
    for (int i = 0; i < n; i++) {
        float u = bert_rng_uniform(s, (uint64_t)i);
        mean += u; lo = fmin(lo, u); hi = fmax(hi, u);
        kept += u >= 0.1f;
    }
    mean /= n;
    CHECK(lo >= 0.0 && hi < 1.0 && fabs(mean - 0.5) < 0.005, "rng uniform in [0,1): min %.5f max %.5f mean %.4f", lo, hi, mean);
    CHECK(fabs(kept / (double)n - 0.9) < 0.005, "dropout p=0.1 keeps %.4f of elements", kept / (double)n);
    CHECK(bert_rng_stream(1, 2, 3) != bert_rng_stream(1, 2, 4) && bert_rng_stream(1, 2, 3) != bert_rng_stream(1, 3, 3) &&
          bert_rng_stream(1, 2, 3) != bert_rng_stream(2, 2, 3), "streams differ by seed, step and site");
}

static void test_schedule(void) {
    bert_optim o = bert_optim_defaults(BERT_OPTIM_LAMB);
    o.lr = 1e-3f; o.warmup_steps = 10; o.total_steps = 100; o.poly_power = 1.0f; o.end_lr = 0.0f;
    CHECK(bert_optim_lr(&o, 0) == (float)0.0f, "lr at step 0 of warmup is 0 (Google)");
    CHECK(fabsf(bert_optim_lr(&o, 5) - 5e-4f) < 1e-9f, "lr halfway through warmup %.3g", bert_optim_lr(&o, 5));
    CHECK(fabsf(bert_optim_lr(&o, 10) - 9e-4f) < 1e-9f, "lr right after warmup is the decayed value %.3g", bert_optim_lr(&o, 10));
    CHECK(fabsf(bert_optim_lr(&o, 55) - 4.5e-4f) < 1e-9f, "lr at 55/100 with linear decay %.3g", bert_optim_lr(&o, 55));
    CHECK(bert_optim_lr(&o, 100) == (float)0.0f && bert_optim_lr(&o, 1000) == (float)0.0f, "lr reaches end_lr at total_steps and stays");
    o.poly_power = 2.0f; o.end_lr = 1e-5f;
    double want = (1e-3 - 1e-5) * pow(1.0 - 0.5, 2.0) + 1e-5;
    CHECK(fabs(bert_optim_lr(&o, 50) - want) < 1e-9, "poly power 2 with end_lr: %.4g vs %.4g", bert_optim_lr(&o, 50), want);
}

// the vectorisable exp/erf/tanh against double precision over dense ranges: the bounds that
// bert.h's math section promises
static void test_math_bounds(void) {
    double e_exp = 0.0, e_erf = 0.0, e_tanh = 0.0, e_gelu = 0.0;
    int n = 2000000;
    for (int i = 0; i <= n; i++) {
        float x = -87.0f + 175.0f * (float)i / (float)n;
        double ref = exp((double)x);
        e_exp = fmax(e_exp, fabs(bert__expf(x) - ref) / ref);
        float y = -10.0f + 20.0f * (float)i / (float)n;
        e_erf = fmax(e_erf, fabs(bert__erff(y) - erf((double)y)));
        e_tanh = fmax(e_tanh, fabs(bert__tanhf(y) - tanh((double)y)));
        float g;
        K->gelu_forward(&g, &y, 1, BERT_GELU_ERF);
        double gref = 0.5 * y * (1.0 + erf(y / sqrt(2.0)));
        e_gelu = fmax(e_gelu, fabs(g - gref) / fmax(1.0, fabs((double)y)));
    }
    CHECK(e_exp < 4e-7, "expf relative error on [-87, 88]: %.2e (bound 4e-7)", e_exp);
    CHECK(e_erf < 6e-7, "erff absolute error on [-10, 10]: %.2e (bound 6e-7)", e_erf);
    CHECK(e_tanh < 4e-7, "tanhf absolute error on [-10, 10]: %.2e (bound 4e-7)", e_tanh);
    CHECK(e_gelu < 1e-6, "gelu (erf) error / max(1,|x|) on [-10, 10]: %.2e (bound 1e-6)", e_gelu);
    float nan = NAN;
    CHECK(bert__expf(-100.0f) == (float)0.0f && bert__expf(-10000.0f) == (float)0.0f && isnan(bert__expf(nan)) &&
          isinf(bert__expf(100.0f)) == 0 && bert__expf(0.0f) == (float)1.0f,
          "expf: 0 far below (the -10000 mask), NaN stays NaN, exp(0) = 1, clamps instead of overflowing");
}

// The tanh-form GELU (Google's TF "gelu", BERT_GELU_TANH) against its definition in double,
// forward and backward, over [-10, 10] in steps of 1e-4 plus large and tiny values, each point
// held to a bound derived from the tanhf bound above and float rounding (eps = 2^-24):
//   forward y = 0.5x(1 + t), t = tanhf(u), u = c(x + a x^3), c = sqrt(2/pi), a = 0.044715:
//     tanhf's own error <= 4e-7 absolute                              -> 0.5|x| * 4e-7
//     u from 2 rounded constants + 5 roundings: rel. error <= 7 eps; t moves by
//       sech^2(u)|u| * 7eps <= 0.449 * 7eps (the max of u sech^2 u)   -> 0.5|x| * 0.449 * 7eps
//     1 + t rounds (<= eps absolute below 2), the product once (<= eps |y| <= eps|x|; 0.5x is exact)
//   so |err| <= |x| (2e-7 + 0.5*0.449*7eps + 0.5eps + eps) = 4.3e-7 |x|, checked as
//   err / max(1, |x|) < 4.5e-7.
//   backward g = 0.5(1 + t) + 0.5x(1 - t^2) du, du = c(1 + 3a x^2), t within et = 4e-7 + 0.449*7eps:
//     0.5 et + 0.5|x| du (2 et + 2eps) [1 - t*t: t's error, the square and the difference]
//     + (|term1| + |term2|) * 8eps [the remaining roundings: du (5), the products (3)], pointwise.
//   bias: rounding errors average out over the curved part, a wrong constant does not. The mean of
//     (y - ref)/|x| over 0.3 <= |x| <= 3 measures 3e-9 on each side; a sqrt(2/pi) off by r relative
//     shifts it by about 0.06r (0.797885 for 0.79788456, r = 5.5e-7, gives 6.7e-8), so |mean| < 2.5e-8
//     catches sqrt(2/pi) wrong in the 7th digit, which the pointwise bound cannot (it allows ~1e-6).
// Catches: a wrong cubic coefficient (0.0447 for 0.044715, in forward or in backward's t or du),
// a mistyped sqrt(2/pi) (0.7978, 0.79788, 0.797885, a transposed digit), a dropped factor 3 in du.
static double gelu_tanh_ref(double x) {
    double c = sqrt(2.0 / 3.14159265358979323846);
    return 0.5 * x * (1.0 + tanh(c * (x + 0.044715 * x * x * x)));
}

static void test_gelu_tanh_bounds(void) {
    static const float big[] = { 10.5f, 12.0f, 20.0f, 50.0f, 100.0f, 1e3f, 1e6f, 1e13f /* x^3 overflows float */, 1e19f,
                                 1e20f, 3e38f /* the backward's du overflows here: it once gave inf * 0 = NaN */,
                                 1e-30f, 3e-3f, 0.25f, 0.7f, 1.5f, 2.5f };
    const int ngrid = 200001, nbig = (int)(sizeof big / sizeof big[0]), n = ngrid + 2 * nbig;
    float *x = vec((size_t)n, 0), *y = vec((size_t)n, 0), *dx = vec((size_t)n, 0), *ones = vec((size_t)n, 0);
    for (int i = 0; i < ngrid; i++) x[i] = (float)(-10.0 + 1e-4 * i);
    for (int i = 0; i < nbig; i++) { x[ngrid + 2 * i] = big[i]; x[ngrid + 2 * i + 1] = -big[i]; }
    for (int i = 0; i < n; i++) ones[i] = 1.0f;
    K->gelu_forward(y, x, (size_t)n, BERT_GELU_TANH);   // the whole array at once: the vectorised path
    K->gelu_backward(dx, ones, x, (size_t)n, BERT_GELU_TANH);
    const double eps = 1.0 / 16777216.0, c = sqrt(2.0 / 3.14159265358979323846), a = 0.044715;
    const double et = 4e-7 + 0.449 * 7 * eps;
    double e_fwd = 0.0, r_bwd = 0.0, x_fwd = 0.0, x_bwd = 0.0, bias[2] = { 0.0, 0.0 };
    int finite = 1, nbias[2] = { 0, 0 };
    for (int i = 0; i < n; i++) {
        double xi = x[i], e = fabs(y[i] - gelu_tanh_ref(xi)) / fmax(1.0, fabs(xi));
        if (!(e <= e_fwd)) { e_fwd = e; x_fwd = xi; }   // NaN sticks
        if (i < ngrid && fabs(xi) >= 0.3 && fabs(xi) <= 3.0) {
            bias[xi > 0] += (y[i] - gelu_tanh_ref(xi)) / fabs(xi);
            nbias[xi > 0]++;
        }
        double u = c * (xi + a * xi * xi * xi), t = tanh(u), sech = 1.0 / cosh(u), du = c * (1.0 + 3.0 * a * xi * xi);
        double term1 = 0.5 * (1.0 + t), term2 = 0.5 * xi * sech * sech * du;
        double bound = 0.5 * et + 0.5 * fabs(xi) * du * (2.0 * et + 2.0 * eps) + (fabs(term1) + fabs(term2)) * 8.0 * eps;
        double r = fabs(dx[i] - (term1 + term2)) / bound;
        if (!(r <= r_bwd)) { r_bwd = r; x_bwd = xi; }
        finite &= isfinite(y[i]) && isfinite(dx[i]);
    }
    CHECK(e_fwd < 4.5e-7, "gelu (tanh) error / max(1,|x|) on [-10, 10] step 1e-4 + large: %.2e at x=%g (bound 4.5e-7)", e_fwd, x_fwd);
    bias[0] /= nbias[0]; bias[1] /= nbias[1];
    CHECK(fabs(bias[0]) < 2.5e-8 && fabs(bias[1]) < 2.5e-8, "gelu (tanh) mean error / |x| over 0.3 <= |x| <= 3: %.2e (x < 0), %.2e (x > 0) (bound 2.5e-8)",
          bias[0], bias[1]);
    CHECK(r_bwd <= 1.0 && finite, "gelu (tanh) backward vs the analytic derivative: worst error %.2f of the pointwise bound at x=%g",
          r_bwd, x_bwd);
    free(x); free(y); free(dx); free(ones);
}

static void test_optimizer_defaults(void) {
    bert_optim gb = bert_optim_defaults(BERT_OPTIM_ADAMW_GB), std = bert_optim_defaults(BERT_OPTIM_ADAMW);
    bert_optim lamb = bert_optim_defaults(BERT_OPTIM_LAMB), mom = bert_optim_defaults(BERT_OPTIM_MOMENTUM);
    CHECK(!gb.bias_correction && gb.eps == (float)1e-6f && gb.weight_decay == (float)0.01f && gb.clip_norm == (float)1.0f &&
          gb.beta1 == (float)0.9f && gb.beta2 == (float)0.999f, "adamw_gb defaults: Google's (no bias correction, eps 1e-6, wd 0.01, clip 1)");
    CHECK(std.bias_correction, "adamw defaults: bias correction on");
    CHECK(!lamb.bias_correction && lamb.lamb_exclude_ln_bias, "lamb defaults: Google/ALBERT variant (no bias correction, LN/bias ratio 1)");
    CHECK(mom.weight_decay == (float)0.0f && mom.momentum == (float)0.9f, "momentum defaults: mu 0.9, no weight decay");
}

int main(void) {
    K = bert_cpu_kernels();
    printf("sgemm microkernel under test: %s\n", bert_sgemm_kernel_name());
    test_sgemm();
    test_linear_fd();
    test_linear_act();
    test_int8_gemm();
    test_bf16_gemm();
    test_bf16_training_kernels();
    test_layernorm_fd();
    test_attention_fd(0.0f, 0);
    test_attention_fd(0.3f, 0);
    test_attention_fd(0.0f, 1);
    test_attention_fd(0.3f, 1);
    test_attention_fd(0.0f, 6);   // K > T-1: the outer table rows get no gradient
    test_attention_naive(0.0f, 0);
    test_attention_naive(0.2f, 0);
    test_attention_naive(0.0f, 5);
    test_attention_naive(0.2f, 5);
    test_attention_naive(0.0f, 40);
    test_pointwise_fd();
    test_embedding_fd();
    test_xent_fd();
    test_mse_fd();
    test_gather_fd();
    test_crf();
    test_rng();
    test_schedule();
    test_optimizer_defaults();
    test_math_bounds();
    test_gelu_tanh_bounds();
    return check_summary();
}
