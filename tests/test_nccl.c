// test_nccl.c - bert_cuda.h's NCCL communicator (BERT_NCCL) as a 1-rank job on one GPU: the id and
// the init, every function of the bert_comm table (a sum over one rank is the identity, so every
// buffer comes back unchanged), the errors it records, then a data-parallel training step whose
// grads go through the NCCL sum, against the same steps without it: identical losses and params.
// Without a GPU it says so and passes. Built by `make cuda-check` (nvcc present) against
// bert_cuda.h compiled with -DBERT_NCCL and linked with -lnccl; run by `make test-nccl`, not by
// `make test`. Several ranks (several GPUs) are not tested here.
#ifndef BERT_NCCL
#define BERT_NCCL   // the declarations of bert_nccl_*
#endif
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "../bert_cuda.h"
#include "check.h"

static const bert_kernels *GPU;

static void test_id_and_init(const bert_comm **out) {
    char small[16], id[128] = { 0 };
    CHECK(bert_nccl_unique_id(small, sizeof small) < 0 && strstr(bert_cuda_last_error(), "bert_nccl_unique_id"),
          "an id buffer too small is refused: %s", bert_cuda_last_error());
    bert_cuda_clear_error();
    CHECK(bert_nccl_init(id, 1, 1) == NULL && strstr(bert_cuda_last_error(), "rank 1 of 1"),
          "rank 1 of 1 is refused: %s", bert_cuda_last_error());
    bert_cuda_clear_error();
    int n = bert_nccl_unique_id(id, sizeof id);
    CHECK(n > 0 && n <= (int)sizeof id, "bert_nccl_unique_id: %d bytes %s", n, bert_cuda_last_error());
    const bert_comm *c = n > 0 ? bert_nccl_init(id, 0, 1) : NULL;
    CHECK(c != NULL, "bert_nccl_init(id, 0, 1) %s", bert_cuda_last_error());
    if (c) CHECK(!strcmp(c->name, "nccl") && c->rank == 0 && c->size == 1 && c->device == 1 && c->impl != NULL,
                 "the table: name %s, rank %d of %d, device %d", c->name, c->rank, c->size, c->device);
    *out = c;
}

static void test_collectives(const bert_comm *c) {
    enum { N = 1000 };
    float h[N], back[N];
    for (int i = 0; i < N; i++) h[i] = (float)(i % 37) * 0.25f - 3.0f + (float)i * 1e-3f;
    float *d = (float *)GPU->mem->alloc(N * sizeof(float));
    bert_copy_from_host(GPU, d, h, sizeof h);
    CHECK(c->allreduce_sum(c, d, N) == BERT_OK, "allreduce_sum of %d device floats %s", N, bert_cuda_last_error());
    bert_copy_to_host(GPU, back, d, sizeof back);
    CHECK(memcmp(back, h, sizeof h) == 0, "a 1-rank sum leaves the device buffer unchanged");
    CHECK(c->allreduce_sum(c, d, 0) == BERT_OK, "allreduce_sum of 0 floats");
    CHECK(bert_comm_allreduce_model(c, GPU, d, N) == BERT_OK, "bert_comm_allreduce_model on the device buffer");
    GPU->mem->release(d);

    double v[5] = { 1.5, -2.25, 1e300, 0.0, 3.0 }, v0[5];
    memcpy(v0, v, sizeof v);
    CHECK(c->allreduce_sum_f64(c, v, 5) == BERT_OK && memcmp(v, v0, sizeof v) == 0,
          "allreduce_sum_f64 on a host buffer: unchanged %s", bert_cuda_last_error());
    size_t nbig = (size_t)3 << 20;   // 24 MiB: two pieces through the 16 MiB staging buffer
    double *big = (double *)malloc(nbig * sizeof(double));
    for (size_t i = 0; i < nbig; i++) big[i] = (double)i * 0.5 - 7.0;
    int ok = c->allreduce_sum_f64(c, big, nbig) == BERT_OK;
    for (size_t i = 0; ok && i < nbig; i++) ok = big[i] == (double)i * 0.5 - 7.0;
    CHECK(ok, "allreduce_sum_f64 of %zu doubles (in pieces): unchanged %s", nbig, bert_cuda_last_error());
    free(big);

    char msg[300], msg0[300];
    for (size_t i = 0; i < sizeof msg; i++) msg[i] = (char)(i * 7 + 1);
    memcpy(msg0, msg, sizeof msg);
    CHECK(c->broadcast(c, msg, sizeof msg, 0) == BERT_OK && memcmp(msg, msg0, sizeof msg) == 0,
          "broadcast of a host buffer from root 0: unchanged %s", bert_cuda_last_error());
    CHECK(c->broadcast(c, msg, sizeof msg, 1) == BERT_ERR_DEVICE && strstr(bert_cuda_last_error(), "root 1 of 1"),
          "broadcast from root 1 of 1 is refused: %s", bert_cuda_last_error());
    bert_cuda_clear_error();
    CHECK(c->barrier(c) == BERT_OK, "barrier %s", bert_cuda_last_error());
    CHECK(bert_cuda_sync() == BERT_OK, "no CUDA error recorded %s", bert_cuda_last_error());
}

// A tiny model trained 3 steps. Batch shape B=1, T=4, distinct ids and positions, types 0,0,1,1:
// every target of the CUDA kernels' atomicAdd scatters gets one add, or two onto zero, which are
// the same in either order; so two runs are bit-identical and any difference is the NCCL path's.
static void train(const bert_comm *comm, bert_model *m, const float *init, float *losses, float *final_params) {
    static const int32_t ids[4] = { 2, 5, 9, 13 }, types[4] = { 0, 0, 1, 1 }, pos[2] = { 1, 3 }, lab[2] = { 7, 11 }, nsp[1] = { 1 };
    bert_batch b = { 1, 4, 2, ids, types, NULL, pos, lab, nsp };
    bert_copy_from_host(GPU, m->params, init, m->num_params * sizeof(float));
    bert_optim o = bert_optim_defaults(BERT_OPTIM_ADAMW);
    o.lr = 1e-2f;
    o.comm = comm;
    CHECK(bert_optim_init(&o, m) == BERT_OK, "bert_optim_init on the device");
    bert_ctx *ctx = bert_ctx_create_on(GPU, 4 << 20);
    ctx->training = 0;
    int ok = 1;
    for (int s = 0; s < 3; s++) {
        bert_ctx_reset(ctx, (uint64_t)s);
        bert_model_zero_grad(m);
        bert_pretrain_out out = bert_pretrain_forward(ctx, m, &b);
        losses[s] = bert_tensor_item(ctx, out.loss);
        bert_backward(ctx, out.loss);
        // bert_optim_step sums over the ranks only when there are several: do its sum here, so the
        // grads of this 1-rank job go through ncclAllReduce on the device, on the kernels' stream
        if (comm) ok &= comm->allreduce_sum(comm, m->grads, m->num_params) == BERT_OK;
        ok &= bert_optim_step(&o, m) == BERT_OK;
    }
    CHECK(ok && bert_cuda_sync() == BERT_OK, "3 steps %s NCCL %s", comm ? "with" : "without", bert_cuda_last_error());
    bert_copy_to_host(GPU, final_params, m->params, m->num_params * sizeof(float));
    bert_ctx_free(ctx);
    bert_optim_free(&o);
}

static void test_training(const bert_comm *c) {
    bert_config cfg = bert_config_default();
    cfg.vocab_size = 32;
    cfg.hidden_size = 32;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 2;
    cfg.intermediate_size = 64;
    cfg.max_position_embeddings = 16;
    bert_model *m = bert_model_create(&cfg, 7);
    if (!CHECK(m != NULL, "a tiny model %s", m ? "" : bert_last_error())) return;
    float *init = (float *)malloc(m->num_params * sizeof(float));
    memcpy(init, m->params, m->num_params * sizeof(float));
    if (!CHECK(bert_model_to(m, GPU) == BERT_OK, "bert_model_to the GPU")) { free(init); bert_model_free(m); return; }
    float la[3], lb[3];
    float *pa = (float *)malloc(m->num_params * sizeof(float)), *pb = (float *)malloc(m->num_params * sizeof(float));
    train(c, m, init, la, pa);
    train(NULL, m, init, lb, pb);
    CHECK(memcmp(la, lb, sizeof la) == 0 && isfinite(la[0]) && la[2] < la[0],
          "losses with NCCL %.7f %.7f %.7f = without %.7f %.7f %.7f", (double)la[0], (double)la[1], (double)la[2],
          (double)lb[0], (double)lb[1], (double)lb[2]);
    CHECK(memcmp(pa, pb, m->num_params * sizeof(float)) == 0, "the params after 3 steps are bit-identical");
    free(pa); free(pb); free(init);
    bert_model_to(m, bert_cpu_kernels());
    bert_model_free(m);
}

static void test_abort_and_free(const bert_comm *c) {
    c->abort(c, 3);
    CHECK(strstr(bert_cuda_last_error(), "aborted") != NULL, "abort records the error: %s", bert_cuda_last_error());
    bert_cuda_clear_error();
    float x = 1.0f, *d = (float *)GPU->mem->alloc(sizeof x);
    bert_copy_from_host(GPU, d, &x, sizeof x);
    CHECK(c->allreduce_sum(c, d, 1) == BERT_ERR_DEVICE && strstr(bert_cuda_last_error(), "no NCCL communicator"),
          "after abort the table refuses: %s", bert_cuda_last_error());
    bert_cuda_clear_error();
    GPU->mem->release(d);
    bert_nccl_free();
    char id[128] = { 0 };
    const bert_comm *again = bert_nccl_unique_id(id, sizeof id) > 0 ? bert_nccl_init(id, 0, 1) : NULL;
    CHECK(again != NULL && again->barrier(again) == BERT_OK, "a new communicator after abort and free %s", bert_cuda_last_error());
    bert_nccl_free();
    bert_nccl_free();   // twice is harmless
    CHECK(bert_cuda_sync() == BERT_OK, "no CUDA error recorded %s", bert_cuda_last_error());
}

int main(void) {
    if (bert_cuda_device_count() == 0) {
        printf("  skipped: no CUDA device here (bert_cuda.h with NCCL compiled and linked; the checks need a GPU)\n");
        return check_summary();
    }
    if (!CHECK(bert_cuda_init(0) == BERT_OK, "bert_cuda_init(0): %s", bert_cuda_last_error())) return check_summary();
    printf("device: %s\n", bert_cuda_device_name());
    GPU = bert_cuda_kernels();
    const bert_comm *c = NULL;
    test_id_and_init(&c);
    if (c) {
        test_collectives(c);
        test_training(c);
        test_abort_and_free(c);
    }
    bert_nccl_free();
    bert_cuda_shutdown();
    return check_summary();
}
