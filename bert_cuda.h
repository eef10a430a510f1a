/* bert_cuda.h - v0.1 - bert.h's kernel table on NVIDIA GPUs (CUDA + cuBLAS) - MIT license (see bert.h)

   Do this in ONE CUDA translation unit:
       nvcc -x cu -O2 -arch=sm_90 -DBERT_CUDA_IMPLEMENTATION -c bert_cuda.h -o bert_cuda.o
   and link bert_cuda.o with the C program that holds bert.h's implementation:
       cc -O2 app.c bert_cuda.o -L/usr/local/cuda/lib64 -lcublas -lcudart -lstdc++ -lm
   Other files include "bert_cuda.h" (which includes "bert.h") for the declarations below.

   WHAT IT IS
     Every entry of bert.h's `bert_kernels` table, on one GPU: so the model, the tape, the heads and the
     optimizers are bert.h's code unchanged, running on device pointers. GEMMs go through cuBLAS behind
     one helper that turns bert.h's row-major calls into cuBLAS's column-major ones (C^T = op(B)^T
     op(A)^T); attention runs both per-(b,h) products as one batched GEMM each on the fused QKV buffer,
     with softmax, mask and dropout fused into one kernel. Dropout draws the same counter-based bits as
     the CPU (splitmix64 of stream ^ element index), so the masks are identical bit for bit. Reductions
     that the CPU does in double (grad norm, LAMB's norms, the losses) are done in double here too, in a
     fixed order, so a run repeats exactly; the scatters (embedding, gather backward) use atomicAdd
     and may differ in the last bits from run to run.

   USE
       if (bert_cuda_init(0) != BERT_OK) die(bert_cuda_last_error());
       const bert_kernels *k = bert_cuda_kernels();
       bert_model *m = bert_model_load("model.safetensors", NULL);   // on the host; add heads here
       bert_model_to(m, k);                                          // params and grads to the GPU
       bert_ctx *ctx = bert_ctx_create_on(k, 1u << 30);              // activations on the GPU
       bert_optim_init(&opt, m);                                     // moments beside the params
       ... the same loop as on the CPU; bert_tensor_item(ctx, out.loss) reads a loss ...
       if (bert_cuda_sync() != BERT_OK) die(bert_cuda_last_error());
       bert_model_save(m, "out.safetensors");                        // same files as on the CPU

   MEMORY
     Float pointers given to the kernels are device memory; integer arrays (token ids, labels, rows)
     are host memory, uploaded per call into a scratch buffer; scalar results (a loss, the grad norm,
     LAMB's norms) are returned to the host, which waits for the GPU there.

   ERRORS
     Every CUDA and cuBLAS call is checked. Kernels in a table cannot return codes, and the library
     never exits: the first failure is recorded as "bert_cuda.h:LINE: call: reason" (later ones are
     usually its consequences and are not recorded) and stays until bert_cuda_clear_error().
     bert_cuda_sync() waits for the GPU and returns BERT_ERR_DEVICE once anything failed; call it
     once per step or before trusting results. After a failure the kernels that return a value
     return NaN, so bert_optim_step sees a NaN norm and skips the update (BERT_ERR_NONFINITE).

   PRECISION
     Tensors are fp32. The GEMMs run in pure fp32 by default (no TF32), so results are comparable
     with the CPU; bert_cuda_set_math opts in to tensor-core GEMMs on the same fp32 buffers: TF32
     (inputs rounded to 10 mantissa bits) or BF16 (inputs rounded to bf16's 8 bits), accumulating in
     fp32 either way. Everything outside the GEMMs stays fp32. Not done: bf16 activations in memory,
     fp16 with dynamic loss scaling.

   DATA PARALLEL (NCCL)
     Optional, behind BERT_NCCL: bert.h's communication seam (bert_comm) on NCCL, so data-parallel
     training sums the grads in device memory, GPU to GPU (NVLink, PCIe, InfiniBand), never through
     the host. Define BERT_NCCL for the implementation and for the files that call the functions below
     (their declarations are behind it too), and link with -lnccl; without it nothing here needs NCCL:
         nvcc -x cu -O2 -arch=sm_90 -DBERT_CUDA_IMPLEMENTATION -DBERT_NCCL -c bert_cuda.h -o bert_cuda.o
         mpicc -O2 -DBERT_MPI -DBERT_NCCL app.c bert_cuda.o -L/usr/local/cuda/lib64 -lnccl -lcublas -lcudart -lstdc++ -lm
     One process per GPU: every rank runs the same program, holds the whole model on its own GPU and
     takes its share of each batch (bert.h's seam comment). NCCL needs one id that rank 0 makes and
     sends to the other ranks by any means before they all call bert_nccl_init (which waits for every
     rank); e.g. over bert_mpi.h's seam:
         const bert_comm *mpi = bert_mpi_init();
         char id[128];                                           // NCCL_UNIQUE_ID_BYTES
         if (mpi->rank == 0 && bert_nccl_unique_id(id, sizeof id) < 0) die(bert_cuda_last_error());
         mpi->broadcast(mpi, id, sizeof id, 0);
         if (bert_cuda_init(local_rank) != BERT_OK) die(...);    // this rank's GPU (it calls cudaSetDevice)
         opt.comm = bert_nccl_init(id, mpi->rank, mpi->size);    // NULL + bert_cuda_last_error() on failure
         ... the single-GPU loop: bert_optim_step sums the grads over the ranks, on the GPUs ...
         bert_nccl_free();                                       // before bert_cuda_shutdown
     (local_rank: the GPU of this process on its machine, e.g. OMPI_COMM_WORLD_LOCAL_RANK.) The
     table has device = 1: allreduce_sum sums device floats in place (bert_comm_allreduce_model hands
     it the grads as they are); allreduce_sum_f64 and broadcast take host buffers, as the seam says,
     staged through one device buffer in pieces of at most 16 MiB. Everything runs on this header's
     stream, and every call returns once its collective is done, polling NCCL's asynchronous error
     meanwhile: a failure NCCL detects (a lost connection) comes back as BERT_ERR_DEVICE with
     bert_cuda_last_error() instead of a wait forever. abort aborts the communicator, records the error
     and returns; the caller exits, and the other ranks' next collective fails (or their launcher ends
     them). Compile- and link-checked here (make cuda-check builds tests/test_nccl.c against it) but
     never run: the session that wrote it had no GPU. make test-nccl runs its 1-rank test on one GPU.
*/
#ifndef BERT_CUDA_H
#define BERT_CUDA_H

#ifndef BERT_H   // not twice: bert.h's implementation part has no guard of its own
#include "bert.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

int bert_cuda_device_count(void);              // 0 when there is no GPU or no driver (not an error)
int bert_cuda_init(int device);                // BERT_OK, or BERT_ERR_DEVICE/ARG with bert_cuda_last_error()
const bert_kernels *bert_cuda_kernels(void);   // NULL before bert_cuda_init
const char *bert_cuda_device_name(void);       // e.g. "NVIDIA H200 (sm_90, 132 SMs, 140 GiB)"; "" before init
void bert_cuda_shutdown(void);                 // frees the library's own buffers, handle and stream
const char *bert_cuda_last_error(void);        // the first recorded failure, "" when none
void bert_cuda_clear_error(void);
int bert_cuda_sync(void);                      // waits for queued work: BERT_OK or BERT_ERR_DEVICE
typedef enum { BERT_CUDA_MATH_FP32, BERT_CUDA_MATH_TF32, BERT_CUDA_MATH_BF16 } bert_cuda_math;
void bert_cuda_set_math(bert_cuda_math math);  // the GEMMs' arithmetic (default FP32); see PRECISION

#ifdef BERT_NCCL   // see DATA PARALLEL (NCCL); link with -lnccl
int bert_nccl_unique_id(void *id_out, size_t cap);   // rank 0: the id's size in bytes (128), or -BERT_ERR_ARG/DEVICE
const bert_comm *bert_nccl_init(const void *id, int rank, int size);   // after bert_cuda_init; NULL on failure
void bert_nccl_free(void);                     // destroys the communicator and its staging buffer
#endif

#ifdef __cplusplus
}
#endif
#endif  // BERT_CUDA_H

#ifdef BERT_CUDA_IMPLEMENTATION
#ifndef BERT_CUDA_IMPLEMENTED
#define BERT_CUDA_IMPLEMENTED

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef BERT_NCCL
#include <nccl.h>
#include <sched.h>
#endif

// Every entry of the table has a CUDA version below: entry `foo` of bert.h's BERT_KERNELS is bc_foo,
// and bc_fill_table sets each field from that list by name. When the table grows, the build
// (make cuda-check) stops at bc_fill_table until the new entry's bc_ function exists.

// ----------------------------------------------------------------------------
// state and errors

typedef struct { void *p; size_t cap; } bc_buf;   // a device scratch buffer that only grows

static struct {
    int ready;
    cudaStream_t stream;          // everything runs in order on this one stream
    cublasHandle_t blas;
    char name[256];
    char error[512];
    int failed;
    int sms;
    int device;                   // the GPU bert_cuda_init chose
    bert_cuda_math math;
    bc_buf ints[2];               // integer inputs of the current call
    bc_buf attn;                  // attention: dropped probabilities and dS, (2, B*NH, T, T)
    bc_buf rel;                   // NEZHA attention: Q R^T, dO R^T and the bucket sums, (NH, B*T, 2Ke+1)
    bc_buf ptrs;                  // attention: the batched GEMMs' pointer arrays
    bc_buf part;                  // column-sum partials
    bc_buf red;                   // double partials of the reductions
    bc_buf flt;                   // host floats uploaded for a call (MSE targets)
    bert_memory mem;
    bert_kernels table;
} bc;

static void bc_fail(const char *file, int line, const char *call, const char *why) {
    if (bc.failed) return;   // keep the first: the rest usually follow from it
    bc.failed = 1;
    const char *base = strrchr(file, '/');
    snprintf(bc.error, sizeof bc.error, "%s:%d: %s: %s", base ? base + 1 : file, line, call, why);
}

static bool bc_cuda(cudaError_t e, const char *call, const char *file, int line) {
    if (e == cudaSuccess) return true;
    bc_fail(file, line, call, cudaGetErrorString(e));
    return false;
}

static bool bc_blas(cublasStatus_t s, const char *call, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return true;
    bc_fail(file, line, call, cublasGetStatusString(s));
    return false;
}

#define BC_CUDA(call) bc_cuda((call), #call, __FILE__, __LINE__)
#define BC_BLAS(call) bc_blas((call), #call, __FILE__, __LINE__)
#define BC_LAUNCHED(kernel) bc_cuda(cudaGetLastError(), "launch " kernel, __FILE__, __LINE__)

static void *bc_scratch(bc_buf *b, size_t bytes) {
    if (bytes <= b->cap && b->p) return b->p;
    if (b->p) {   // earlier kernels may still read it
        BC_CUDA(cudaStreamSynchronize(bc.stream));
        BC_CUDA(cudaFree(b->p));
    }
    b->p = NULL;
    b->cap = 0;
    size_t want = bytes + bytes / 4 + 256;   // headroom: a few sizes in a row grow it once
    if (BC_CUDA(cudaMalloc(&b->p, want))) b->cap = want;
    else b->p = NULL;
    return b->p;
}

static void bc_free_buf(bc_buf *b) {
    if (b->p) BC_CUDA(cudaFree(b->p));
    b->p = NULL;
    b->cap = 0;
}

// A host integer array copied to the device for this call. Reusing one buffer per slot is safe:
// the copy is queued on the stream after the kernels that read the previous contents.
static const int32_t *bc_ints(int slot, const int32_t *host, size_t n) {
    if (!host) return NULL;
    int32_t *d = (int32_t *)bc_scratch(&bc.ints[slot], (n ? n : 1) * sizeof(int32_t));
    if (!d || (n && !BC_CUDA(cudaMemcpyAsync(d, host, n * sizeof(int32_t), cudaMemcpyHostToDevice, bc.stream))))
        return NULL;
    return d;
}

// floats that may be host or device memory (the MSE op hands over the caller's targets)
static const float *bc_device_floats(const float *p, size_t n) {
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) == cudaSuccess &&
        (a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged)) return p;
    cudaGetLastError();   // an unregistered host pointer is not an error worth keeping
    float *d = (float *)bc_scratch(&bc.flt, (n ? n : 1) * sizeof(float));
    if (!d || (n && !BC_CUDA(cudaMemcpyAsync(d, p, n * sizeof(float), cudaMemcpyHostToDevice, bc.stream))))
        return NULL;
    return d;
}

// blocks for a grid-stride loop over n elements
static unsigned bc_blocks(size_t n, int threads) {
    size_t b = (n + (size_t)threads - 1) / (size_t)threads, cap = (size_t)(bc.sms > 0 ? bc.sms : 80) * 32;
    return (unsigned)(b < 1 ? 1 : b > cap ? cap : b);
}

#define BC_T 256   // threads per block for the pointwise kernels
#define BC_FOR(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

// the value a scalar-returning kernel gives after a failure: NaN, so the optimizer skips the step
static double bc_result(double v) { return bc.failed ? (double)NAN : v; }

// ----------------------------------------------------------------------------
// device helpers: the CPU's RNG bit for bit, warp and block reductions

__device__ __forceinline__ uint64_t bc_mix(uint64_t z) {   // splitmix64, as bert__mix
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__device__ __forceinline__ float bc_uniform(uint64_t stream, uint64_t i) {   // 24 bits: exact in float
    return (float)(bc_mix(stream ^ i) >> 40) * (1.0f / 16777216.0f);
}

__device__ __forceinline__ float bc_warp_sum(float v) {
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float bc_warp_max(float v) {
    for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// every thread of the block gets the total (blockDim a multiple of 32); sh holds 32 floats
template <bool MAX>
__device__ float bc_block_reduce(float v, float *sh) {
    int lane = threadIdx.x % 32, w = threadIdx.x / 32, nw = blockDim.x / 32;
    v = MAX ? bc_warp_max(v) : bc_warp_sum(v);
    __syncthreads();   // sh may still be read by the previous reduction
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : (MAX ? -INFINITY : 0.0f);
    return MAX ? bc_warp_max(v) : bc_warp_sum(v);
}

// fixed-order tree over a block of 256 doubles (deterministic)
__device__ double bc_block_sum_d(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int k = 128; k; k >>= 1) {
        if ((int)threadIdx.x < k) sh[threadIdx.x] += sh[threadIdx.x + k];
        __syncthreads();
    }
    return sh[0];
}

#define BC_RED 256   // blocks (and threads) of the double reductions

// out[s] = the sum of in[s*n .. s*n+n), one block per segment, each thread in order then a tree
__global__ void bc_sum_segments(double *out, const double *in, int n) {
    __shared__ double sh[BC_RED];
    const double *x = in + (size_t)blockIdx.x * n;
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += BC_RED) s += x[i];
    s = bc_block_sum_d(s, sh);
    if (threadIdx.x == 0) out[blockIdx.x] = s;
}

// block b's contiguous share of n elements (the same split for any launch of BC_RED blocks)
__device__ __forceinline__ void bc_share(size_t n, size_t *i0, size_t *i1) {
    size_t chunk = (n + gridDim.x - 1) / gridDim.x;
    *i0 = blockIdx.x * chunk;
    *i1 = *i0 + chunk < n ? *i0 + chunk : n;
    if (*i0 > n) *i0 = n;
}

// the `segments` partial rows of `red` (BC_RED doubles each) summed and copied to the host
static bool bc_finish_sums(double *host, double *red, int segments) {
    double *out = red + (size_t)segments * BC_RED;
    bc_sum_segments<<<segments, BC_RED, 0, bc.stream>>>(out, red, BC_RED);
    if (!BC_LAUNCHED("bc_sum_segments")) return false;
    if (!BC_CUDA(cudaMemcpyAsync(host, out, (size_t)segments * sizeof(double), cudaMemcpyDeviceToHost, bc.stream)))
        return false;
    return BC_CUDA(cudaStreamSynchronize(bc.stream));
}

static double *bc_red(int segments) {   // partials plus results
    return (double *)bc_scratch(&bc.red, (size_t)segments * (BC_RED + 1) * sizeof(double));
}

// ----------------------------------------------------------------------------
// memory: the bert_memory the table points to

static void *bc_alloc(size_t bytes) {
    void *p = NULL;
    return BC_CUDA(cudaMalloc(&p, bytes ? bytes : 1)) ? p : NULL;
}

static void bc_release(void *p) {
    if (!p) return;
    BC_CUDA(cudaStreamSynchronize(bc.stream));   // queued kernels may still use it
    BC_CUDA(cudaFree(p));
}

static void bc_zero(void *p, size_t bytes) {
    if (bytes) BC_CUDA(cudaMemsetAsync(p, 0, bytes, bc.stream));
}

// from pageable host memory the call returns once the source has been staged, so it may be reused
static void bc_upload(void *dst, const void *src, size_t bytes) {
    if (bytes) BC_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, bc.stream));
}

static void bc_download(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    if (BC_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, bc.stream)))
        BC_CUDA(cudaStreamSynchronize(bc.stream));
    if (bc.failed) memset(dst, 0xff, bytes);   // NaN floats rather than stale bytes
}

static void bc_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) BC_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, bc.stream));
}

// ----------------------------------------------------------------------------
// GEMM: bert.h's row-major C (M,N) = alpha op(A) op(B) + beta C is cuBLAS's column-major
// C^T (N,M) = alpha op(B)^T op(A)^T + beta C^T on the same memory: swap the operands, keep the flags.

static cublasOperation_t bc_op(int trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

// tensor-core modes: the fp32 buffers as they are, the inputs rounded inside cuBLAS, fp32 accumulation
static cublasComputeType_t bc_compute(void) {
    return bc.math == BERT_CUDA_MATH_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F_FAST_TF32;
}

static void bc_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *Cm, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (bc.math == BERT_CUDA_MATH_FP32)
        BC_BLAS(cublasSgemm(bc.blas, bc_op(trans_b), bc_op(trans_a), N, M, K, &alpha, B, ldb, A, lda, &beta, Cm, ldc));
    else
        BC_BLAS(cublasGemmEx(bc.blas, bc_op(trans_b), bc_op(trans_a), N, M, K, &alpha, B, CUDA_R_32F, ldb, A, CUDA_R_32F,
                             lda, &beta, Cm, CUDA_R_32F, ldc, bc_compute(), CUBLAS_GEMM_DEFAULT));
}

static void bc_sgemm_batched(int trans_a, int trans_b, int M, int N, int K, float alpha, float *const *A, int lda,
                             float *const *B, int ldb, float beta, float *const *Cm, int ldc, int batch) {
    if (bc.math == BERT_CUDA_MATH_FP32)
        BC_BLAS(cublasSgemmBatched(bc.blas, bc_op(trans_b), bc_op(trans_a), N, M, K, &alpha, (const float *const *)B, ldb,
                                   (const float *const *)A, lda, &beta, Cm, ldc, batch));
    else
        BC_BLAS(cublasGemmBatchedEx(bc.blas, bc_op(trans_b), bc_op(trans_a), N, M, K, &alpha, (const void *const *)B,
                                    CUDA_R_32F, ldb, (const void *const *)A, CUDA_R_32F, lda, &beta, (void *const *)Cm,
                                    CUDA_R_32F, ldc, batch, bc_compute(), CUBLAS_GEMM_DEFAULT));
}

// ----------------------------------------------------------------------------
// embedding and gather

__global__ void bc_embed_fwd(float *out, const int32_t *ids, const int32_t *types, const float *wte,
                             const float *wpe, const float *wtt, int T, int C, size_t n) {
    BC_FOR(i, n) {
        size_t bt = i / C, c = i % C;
        out[i] = wte[(size_t)ids[bt] * C + c] + (wpe ? wpe[(bt % T) * C + c] : 0.0f) + wtt[(size_t)(types ? types[bt] : 0) * C + c];
    }
}

// tokens repeat, so the scatter adds atomically
__global__ void bc_embed_bwd(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids,
                             const int32_t *types, int T, int C, size_t n) {
    BC_FOR(i, n) {
        size_t bt = i / C, c = i % C;
        float d = dout[i];
        if (dwte) atomicAdd(&dwte[(size_t)ids[bt] * C + c], d);
        if (dwpe) atomicAdd(&dwpe[(bt % T) * C + c], d);
        if (dwtt) atomicAdd(&dwtt[(size_t)(types ? types[bt] : 0) * C + c], d);
    }
}

static void bc_embedding_forward(float *out, const int32_t *ids, const int32_t *types, const float *wte,
                                 const float *wpe, const float *wtt, int B, int T, int C) {
    size_t n = (size_t)B * T * C;
    const int32_t *dids = bc_ints(0, ids, (size_t)B * T), *dtypes = bc_ints(1, types, (size_t)B * T);
    if (!n || !dids || (types && !dtypes)) return;
    bc_embed_fwd<<<bc_blocks(n, BC_T), BC_T, 0, bc.stream>>>(out, dids, dtypes, wte, wpe, wtt, T, C, n);
    BC_LAUNCHED("bc_embed_fwd");
}

static void bc_embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids,
                                  const int32_t *types, int B, int T, int C) {
    size_t n = (size_t)B * T * C;
    const int32_t *dids = bc_ints(0, ids, (size_t)B * T), *dtypes = bc_ints(1, types, (size_t)B * T);
    if (!n || !dids || (types && !dtypes)) return;
    bc_embed_bwd<<<bc_blocks(n, BC_T), BC_T, 0, bc.stream>>>(dwte, dwpe, dwtt, dout, dids, dtypes, T, C, n);
    BC_LAUNCHED("bc_embed_bwd");
}

__global__ void bc_gather_fwd(float *out, const float *inp, const int32_t *rows, int C, size_t n) {
    BC_FOR(i, n) out[i] = inp[(size_t)rows[i / C] * C + i % C];
}

__global__ void bc_gather_bwd(float *dinp, const float *dout, const int32_t *rows, int C, size_t n) {
    BC_FOR(i, n) atomicAdd(&dinp[(size_t)rows[i / C] * C + i % C], dout[i]);   // rows may repeat
}

static void bc_gather_forward(float *out, const float *inp, const int32_t *rows, int M, int C) {
    size_t n = (size_t)M * C;
    const int32_t *d = bc_ints(0, rows, (size_t)M);
    if (!n || !d) return;
    bc_gather_fwd<<<bc_blocks(n, BC_T), BC_T, 0, bc.stream>>>(out, inp, d, C, n);
    BC_LAUNCHED("bc_gather_fwd");
}

static void bc_gather_backward(float *dinp, const float *dout, const int32_t *rows, int M, int C) {
    size_t n = (size_t)M * C;
    const int32_t *d = bc_ints(0, rows, (size_t)M);
    if (!n || !d || !dinp) return;
    bc_gather_bwd<<<bc_blocks(n, BC_T), BC_T, 0, bc.stream>>>(dinp, dout, d, C, n);
    BC_LAUNCHED("bc_gather_bwd");
}

// ----------------------------------------------------------------------------
// column sums, deterministic: blocks of 32 columns x a chunk of rows write partials, then one pass adds
// the partials of each column in order. Plain (dst1 += sum_n d) or LayerNorm's parameter grads
// (dst1 += sum_n xhat*d, dst2 += sum_n d, xhat = (x - mean) * rstd).

#define BC_CS_COLS 32
#define BC_CS_ROWS 8

__global__ void bc_colsum_part(float *part1, float *part2, const float *d, const float *x, const float *mean,
                               const float *rstd, int N, int C, int rows_per) {
    __shared__ float s1[BC_CS_ROWS][BC_CS_COLS + 1], s2[BC_CS_ROWS][BC_CS_COLS + 1];
    int tx = threadIdx.x, ty = threadIdx.y, c = blockIdx.x * BC_CS_COLS + tx, r = blockIdx.y;
    int n0 = r * rows_per, n1 = n0 + rows_per < N ? n0 + rows_per : N;
    float a1 = 0.0f, a2 = 0.0f;
    if (c < C)
        for (int n = n0 + ty; n < n1; n += BC_CS_ROWS) {
            float dv = d[(size_t)n * C + c];
            if (x) { a1 += (x[(size_t)n * C + c] - mean[n]) * rstd[n] * dv; a2 += dv; }
            else a1 += dv;
        }
    s1[ty][tx] = a1;
    s2[ty][tx] = a2;
    __syncthreads();
    if (ty == 0 && c < C) {
        float t1 = 0.0f, t2 = 0.0f;
        for (int k = 0; k < BC_CS_ROWS; k++) { t1 += s1[k][tx]; t2 += s2[k][tx]; }
        part1[(size_t)r * C + c] = t1;
        if (part2) part2[(size_t)r * C + c] = t2;
    }
}

__global__ void bc_colsum_final(float *dst1, float *dst2, const float *part1, const float *part2, int R, int C) {
    BC_FOR(c, (size_t)C) {
        float t1 = 0.0f, t2 = 0.0f;
        for (int r = 0; r < R; r++) {
            t1 += part1[(size_t)r * C + c];
            if (dst2) t2 += part2[(size_t)r * C + c];
        }
        dst1[c] += t1;
        if (dst2) dst2[c] += t2;
    }
}

static void bc_column_sums(float *dst1, float *dst2, const float *d, const float *x, const float *mean,
                           const float *rstd, int N, int C) {
    if (N <= 0 || C <= 0) return;
    int rows_per = (N + 255) / 256;
    if (rows_per < 32) rows_per = 32;
    int R = (N + rows_per - 1) / rows_per;
    float *part = (float *)bc_scratch(&bc.part, 2 * (size_t)R * C * sizeof(float));
    if (!part) return;
    float *part2 = dst2 ? part + (size_t)R * C : NULL;
    dim3 grid((unsigned)((C + BC_CS_COLS - 1) / BC_CS_COLS), (unsigned)R), block(BC_CS_COLS, BC_CS_ROWS);
    bc_colsum_part<<<grid, block, 0, bc.stream>>>(part, part2, d, x, mean, rstd, N, C, rows_per);
    if (!BC_LAUNCHED("bc_colsum_part")) return;
    bc_colsum_final<<<bc_blocks((size_t)C, BC_T), BC_T, 0, bc.stream>>>(dst1, dst2, part, part2, R, C);
    BC_LAUNCHED("bc_colsum_final");
}

// ----------------------------------------------------------------------------
// linear

__global__ void bc_add_bias(float *out, const float *bias, int OC, size_t n) {
    BC_FOR(i, n) out[i] += bias[i % OC];
}

static void bc_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC, int OC) {
    bc_sgemm(0, 1, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
    size_t n = (size_t)N * OC;
    if (!bias || !n) return;
    bc_add_bias<<<bc_blocks(n, BC_T), BC_T, 0, bc.stream>>>(out, bias, OC, n);
    BC_LAUNCHED("bc_add_bias");
}

static void bc_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                               const float *weight, int N, int IC, int OC) {
    if (dinp) bc_sgemm(0, 0, N, IC, OC, 1.0f, dout, OC, weight, IC, 1.0f, dinp, IC);
    if (dweight) bc_sgemm(1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
    if (dbias) bc_column_sums(dbias, NULL, dout, NULL, NULL, NULL, N, OC);
}

// ----------------------------------------------------------------------------
// layernorm: one warp per row (8 rows per block)

__global__ void bc_ln_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                          int N, int C, float eps) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;   // the whole warp: row is the same for its lanes
    const float *x = inp + (size_t)row * C;
    float *o = out + (size_t)row * C;
    float m = 0.0f, v = 0.0f;
    for (int c = lane; c < C; c += 32) m += x[c];
    m = bc_warp_sum(m) / (float)C;
    for (int c = lane; c < C; c += 32) v += (x[c] - m) * (x[c] - m);
    v = bc_warp_sum(v);
    float s = 1.0f / sqrtf(v / (float)C + eps);
    for (int c = lane; c < C; c += 32) o[c] = (x[c] - m) * s * w[c] + b[c];
    if (lane == 0) { mean[row] = m; rstd[row] = s; }
}

__global__ void bc_ln_bwd(float *dinp, const float *dout, const float *inp, const float *w, const float *mean,
                          const float *rstd, int N, int C) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *x = inp + (size_t)row * C, *d = dout + (size_t)row * C;
    float *dx = dinp + (size_t)row * C;
    float m = mean[row], s = rstd[row], dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
    for (int c = lane; c < C; c += 32) {
        dnorm_mean += w[c] * d[c];
        dnorm_norm_mean += w[c] * d[c] * (x[c] - m) * s;
    }
    dnorm_mean = bc_warp_sum(dnorm_mean) / (float)C;
    dnorm_norm_mean = bc_warp_sum(dnorm_norm_mean) / (float)C;
    for (int c = lane; c < C; c += 32) dx[c] += (w[c] * d[c] - dnorm_mean - (x[c] - m) * s * dnorm_norm_mean) * s;
}

static void bc_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                 const float *bias, int N, int C, float eps) {
    if (N <= 0) return;
    bc_ln_fwd<<<(N + 7) / 8, 256, 0, bc.stream>>>(out, mean, rstd, inp, weight, bias, N, C, eps);
    BC_LAUNCHED("bc_ln_fwd");
}

static void bc_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                  const float *weight, const float *mean, const float *rstd, int N, int C) {
    if (N <= 0) return;
    if (dinp) {
        bc_ln_bwd<<<(N + 7) / 8, 256, 0, bc.stream>>>(dinp, dout, inp, weight, mean, rstd, N, C);
        BC_LAUNCHED("bc_ln_bwd");
    }
    if (dweight && dbias) bc_column_sums(dweight, dbias, dout, inp, mean, rstd, N, C);   // as the CPU: both or neither
}

// ----------------------------------------------------------------------------
// attention on the fused buffer qkv (B,T,3C). For head (b,h), Q/K/V are the (T,HS) column slices at
// h*HS of each third of row block b (row stride 3C). Their offsets are b*T*3C + h*HS, which no single
// stride spans, so each product is one cublasSgemmBatched over pointer arrays built on the GPU.
// att (B,NH,T,T) keeps the softmax before dropout; the dropped copy and dS live in a scratch buffer.

enum { BC_Q, BC_K, BC_V, BC_O, BC_DQ, BC_DK, BC_DV, BC_A, BC_PD, BC_DS, BC_NPTR };

__global__ void bc_attn_ptrs(float **ptr, float *qkv, float *o, float *dqkv, float *att, float *pd, float *ds,
                             int BH, int NH, int T, int C) {
    int bh = blockIdx.x * blockDim.x + threadIdx.x;
    if (bh >= BH) return;
    size_t b = (size_t)(bh / NH), h = (size_t)(bh % NH), HS = (size_t)(C / NH), C3 = 3 * (size_t)C, TT = (size_t)T * T;
    float *q = qkv + b * T * C3 + h * HS;
    ptr[BC_Q * BH + bh] = q;
    ptr[BC_K * BH + bh] = q + C;
    ptr[BC_V * BH + bh] = q + 2 * (size_t)C;
    ptr[BC_O * BH + bh] = o + b * T * C + h * HS;
    float *dq = dqkv ? dqkv + b * T * C3 + h * HS : NULL;
    ptr[BC_DQ * BH + bh] = dq;
    ptr[BC_DK * BH + bh] = dq ? dq + C : NULL;
    ptr[BC_DV * BH + bh] = dq ? dq + 2 * (size_t)C : NULL;
    ptr[BC_A * BH + bh] = att + bh * TT;
    ptr[BC_PD * BH + bh] = pd + bh * TT;
    ptr[BC_DS * BH + bh] = ds ? ds + bh * TT : NULL;
}

// one warp per score row r = (b*NH + h)*T + i: mask, softmax (kept in att), dropout (into pd, element
// index r*T + j: the CPU's (b,h,i,j) flat index)
__global__ void bc_attn_softmax(float *att, float *pd, const float *mask_add, int rows, int T, int NH, float p,
                                uint64_t stream, float keep_scale) {
    int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (r >= rows) return;
    float *a = att + (size_t)r * T;
    const float *madd = mask_add ? mask_add + (size_t)(r / (NH * T)) * T : NULL;
    float mx = -INFINITY, sum = 0.0f;
    for (int j = lane; j < T; j += 32) {
        float v = madd ? a[j] + madd[j] : a[j];
        a[j] = v;
        mx = fmaxf(mx, v);
    }
    mx = bc_warp_max(mx);
    for (int j = lane; j < T; j += 32) { float e = expf(a[j] - mx); a[j] = e; sum += e; }
    float inv = 1.0f / bc_warp_sum(sum);
    for (int j = lane; j < T; j += 32) {
        float pr = a[j] * inv;
        a[j] = pr;
        if (pd) pd[(size_t)r * T + j] = bc_uniform(stream, (uint64_t)r * T + j) >= p ? pr * keep_scale : 0.0f;
    }
}

// dS = P * (dP - rowsum(dP * P)) * scale, dP first masked by the same dropout bits
__global__ void bc_attn_softmax_bwd(float *ds, const float *att, int rows, int T, float p, uint64_t stream,
                                    float keep_scale, float scale) {
    int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (r >= rows) return;
    float *d = ds + (size_t)r * T;
    const float *a = att + (size_t)r * T;
    float dot = 0.0f;
    for (int j = lane; j < T; j += 32) {
        float v = d[j];
        if (p > 0.0f) v = bc_uniform(stream, (uint64_t)r * T + j) >= p ? v * keep_scale : 0.0f;
        d[j] = v;
        dot += v * a[j];
    }
    dot = bc_warp_sum(dot);
    for (int j = lane; j < T; j += 32) d[j] = a[j] * (d[j] - dot) * scale;
}

__global__ void bc_dropout_fwd(float *out, const float *inp, size_t n, float p, uint64_t stream, float s) {
    BC_FOR(i, n) out[i] = bc_uniform(stream, i) >= p ? inp[i] * s : 0.0f;
}

__global__ void bc_dropout_bwd(float *dinp, const float *dout, size_t n, float p, uint64_t stream, float s) {
    BC_FOR(i, n) dinp[i] += bc_uniform(stream, i) >= p ? dout[i] * s : 0.0f;
}

// the pointer table for (B*NH) heads; NULL after a failure
static float **bc_attn_table(const float *qkv, const float *o, float *dqkv, const float *att, float *pd, float *ds,
                             int B, int T, int C, int NH) {
    int BH = B * NH;
    float **ptr = (float **)bc_scratch(&bc.ptrs, (size_t)BC_NPTR * BH * sizeof(float *));
    if (!ptr) return NULL;
    bc_attn_ptrs<<<(BH + 127) / 128, 128, 0, bc.stream>>>(ptr, (float *)qkv, (float *)o, dqkv, (float *)att, pd, ds,
                                                          BH, NH, T, C);
    return BC_LAUNCHED("bc_attn_ptrs") ? ptr : NULL;
}

// NEZHA's relative terms (bert.h's bert__rel_* on the CPU: the same buckets, the same table rows
// K-Ke .. K+Ke with Ke = min(K, T-1)). The (T,KR) products of head h for all B sequences are one
// sgemm over the B*T rows of that head's columns, kept as rb (NH, B*T, KR); a score row
// r = (b*NH + h)*T + i reads rb row (h*B + b)*T + i.
__device__ __forceinline__ size_t bc_rel_row(int r, int B, int NH, int T) {
    int i = r % T, bh = r / T, b = bh / NH, h = bh % NH;
    return ((size_t)h * B + b) * T + i;
}

// s[r][j] += rb[row(r)][bucket(i,j)] for every score row r
__global__ void bc_rel_gather_add(float *s, const float *rb, int rows, int B, int NH, int T, int Ke) {
    BC_FOR(e, (size_t)rows * T) {
        int r = (int)(e / T), j = (int)(e % T), i = r % T, d = j - i;
        d = d < -Ke ? -Ke : d > Ke ? Ke : d;
        s[e] += rb[bc_rel_row(r, B, NH, T) * (2 * Ke + 1) + d + Ke];
    }
}

// rb[row(r)][p] = sum of s[r][j] over bucket p (the gather's adjoint)
__global__ void bc_rel_bucket_sum(float *rb, const float *s, int rows, int B, int NH, int T, int Ke) {
    int KR = 2 * Ke + 1;
    BC_FOR(e, (size_t)rows * KR) {
        int r = (int)(e / KR), p = (int)(e % KR), i = r % T;
        const float *row = s + (size_t)r * T;
        int lo = p == 0 ? 0 : i + p - Ke, hi = p == KR - 1 ? T - 1 : i + p - Ke;   // the keys in bucket p
        lo = lo < 0 ? 0 : lo;
        hi = hi > T - 1 ? T - 1 : hi;
        float acc = 0.0f;
        for (int j = lo; j <= hi; j++) acc += row[j];
        rb[bc_rel_row(r, B, NH, T) * KR + p] = acc;
    }
}

static bool bc_rel_launch(bool gather, float *s, float *rb, int rows, int B, int NH, int T, int Ke) {
    size_t n = (size_t)rows * (gather ? T : 2 * Ke + 1);
    if (gather) {
        bc_rel_gather_add<<<bc_blocks(n, BC_T), BC_T, 0, bc.stream>>>(s, rb, rows, B, NH, T, Ke);
        return BC_LAUNCHED("bc_rel_gather_add");
    }
    bc_rel_bucket_sum<<<bc_blocks(n, BC_T), BC_T, 0, bc.stream>>>(rb, s, rows, B, NH, T, Ke);
    return BC_LAUNCHED("bc_rel_bucket_sum");
}

static void bc_attention_forward(float *out, float *att, const float *qkv, const float *mask_add, const float *rel,
                                 int B, int T, int C, int NH, int K, float drop_p, uint64_t stream) {
    int HS = C / NH, BH = B * NH, C3 = 3 * C, rows = BH * T, Ke = K < T - 1 ? K : T - 1, KR = 2 * Ke + 1;
    if (BH <= 0 || T <= 0) return;
    size_t TT = (size_t)T * T, hstride = (size_t)B * T * KR;
    float *pd = drop_p > 0.0f ? (float *)bc_scratch(&bc.attn, (size_t)BH * TT * sizeof(float)) : att;
    float *rb = rel ? (float *)bc_scratch(&bc.rel, (size_t)NH * hstride * sizeof(float)) : NULL;
    if (!pd || (rel && !rb)) return;
    const float *R = rel ? rel + (size_t)(K - Ke) * HS : NULL;
    float **P = bc_attn_table(qkv, out, NULL, att, pd, NULL, B, T, C, NH);
    if (!P) return;
    float scale = 1.0f / sqrtf((float)HS);
    bc_sgemm_batched(0, 1, T, T, HS, scale, P + BC_Q * BH, C3, P + BC_K * BH, C3, 0.0f, P + BC_A * BH, T, BH);
    if (R) {   // the key term: scores += gather(scale Q R^T)
        for (int h = 0; h < NH; h++) bc_sgemm(0, 1, B * T, KR, HS, scale, qkv + h * HS, C3, R, HS, 0.0f, rb + h * hstride, KR);
        if (!bc_rel_launch(true, att, rb, rows, B, NH, T, Ke)) return;
    }
    bc_attn_softmax<<<(rows + 7) / 8, 256, 0, bc.stream>>>(att, drop_p > 0.0f ? pd : NULL, mask_add, rows, T, NH,
                                                           drop_p, stream, 1.0f / (1.0f - drop_p));
    if (!BC_LAUNCHED("bc_attn_softmax")) return;
    bc_sgemm_batched(0, 0, T, HS, T, 1.0f, P + BC_PD * BH, T, P + BC_V * BH, C3, 0.0f, P + BC_O * BH, C, BH);
    if (R) {   // the value term: O += bucket(P') R
        if (!bc_rel_launch(false, pd, rb, rows, B, NH, T, Ke)) return;
        for (int h = 0; h < NH; h++) bc_sgemm(0, 0, B * T, HS, KR, 1.0f, rb + h * hstride, KR, R, HS, 1.0f, out + h * HS, C);
    }
}

static void bc_attention_backward(float *dqkv, float *drel, const float *dout, const float *qkv, const float *att,
                                  const float *rel, int B, int T, int C, int NH, int K, float drop_p, uint64_t stream) {
    int HS = C / NH, BH = B * NH, C3 = 3 * C, rows = BH * T, Ke = K < T - 1 ? K : T - 1, KR = 2 * Ke + 1;
    if (BH <= 0 || T <= 0 || !dqkv) return;
    size_t TT = (size_t)T * T, n = (size_t)BH * TT, hstride = (size_t)B * T * KR;
    float *ds = (float *)bc_scratch(&bc.attn, 2 * n * sizeof(float));
    float *rb = rel ? (float *)bc_scratch(&bc.rel, (size_t)NH * hstride * sizeof(float)) : NULL;
    if (!ds || (rel && !rb)) return;
    const float *R = rel ? rel + (size_t)(K - Ke) * HS : NULL;
    float *dR = drel ? drel + (size_t)(K - Ke) * HS : NULL;
    float *pd = (float *)att, keep_scale = drop_p > 0.0f ? 1.0f / (1.0f - drop_p) : 1.0f;
    if (drop_p > 0.0f) {   // the dropped probabilities again, from the same bits
        pd = ds + n;
        bc_dropout_fwd<<<bc_blocks(n, BC_T), BC_T, 0, bc.stream>>>(pd, att, n, drop_p, stream, keep_scale);
        if (!BC_LAUNCHED("bc_dropout_fwd")) return;
    }
    float **P = bc_attn_table(qkv, dout, dqkv, att, pd, ds, B, T, C, NH);
    if (!P) return;
    float scale = 1.0f / sqrtf((float)HS);
    bc_sgemm_batched(1, 0, T, HS, T, 1.0f, P + BC_PD * BH, T, P + BC_O * BH, C, 1.0f, P + BC_DV * BH, C3, BH);  // dV += P'^T dO
    bc_sgemm_batched(0, 1, T, T, HS, 1.0f, P + BC_O * BH, C, P + BC_V * BH, C3, 0.0f, P + BC_DS * BH, T, BH);   // dP' = dO V^T
    if (R) {   // the value term: dP' += gather(dO R^T); drel += bucket(P')^T dO
        for (int h = 0; h < NH; h++) bc_sgemm(0, 1, B * T, KR, HS, 1.0f, dout + h * HS, C, R, HS, 0.0f, rb + h * hstride, KR);
        if (!bc_rel_launch(true, ds, rb, rows, B, NH, T, Ke)) return;
        if (dR) {
            if (!bc_rel_launch(false, pd, rb, rows, B, NH, T, Ke)) return;
            for (int h = 0; h < NH; h++) bc_sgemm(1, 0, KR, HS, B * T, 1.0f, rb + h * hstride, KR, dout + h * HS, C, 1.0f, dR, HS);
        }
    }
    bc_attn_softmax_bwd<<<(rows + 7) / 8, 256, 0, bc.stream>>>(ds, att, rows, T, drop_p, stream, keep_scale, scale);
    if (!BC_LAUNCHED("bc_attn_softmax_bwd")) return;
    bc_sgemm_batched(0, 0, T, HS, T, 1.0f, P + BC_DS * BH, T, P + BC_K * BH, C3, 1.0f, P + BC_DQ * BH, C3, BH);  // dQ += dS K
    bc_sgemm_batched(1, 0, T, HS, T, 1.0f, P + BC_DS * BH, T, P + BC_Q * BH, C3, 1.0f, P + BC_DK * BH, C3, BH);  // dK += dS^T Q
    if (R) {   // the key term: dQ += bucket(dS) R; drel += bucket(dS)^T Q
        if (!bc_rel_launch(false, ds, rb, rows, B, NH, T, Ke)) return;
        for (int h = 0; h < NH; h++) {
            bc_sgemm(0, 0, B * T, HS, KR, 1.0f, rb + h * hstride, KR, R, HS, 1.0f, dqkv + h * HS, C3);
            if (dR) bc_sgemm(1, 0, KR, HS, B * T, 1.0f, rb + h * hstride, KR, qkv + h * HS, C3, 1.0f, dR, HS);
        }
    }
}

// ----------------------------------------------------------------------------
// pointwise: GELU (erf and tanh forms), tanh, add, accumulate, scale, dropout

#define BC_SQRT_2_OVER_PI 0.7978845608028654f
#define BC_INV_SQRT_2 0.7071067811865476f
#define BC_INV_SQRT_2PI 0.3989422804014327f

__global__ void bc_gelu_fwd(float *out, const float *inp, size_t n, int tanh_form) {
    BC_FOR(i, n) {
        float x = inp[i];
        out[i] = tanh_form ? 0.5f * x * (1.0f + tanhf(BC_SQRT_2_OVER_PI * (x + 0.044715f * x * x * x)))
                           : 0.5f * x * (1.0f + erff(x * BC_INV_SQRT_2));
    }
}

__global__ void bc_gelu_bwd(float *dinp, const float *dout, const float *inp, size_t n, int tanh_form) {
    BC_FOR(i, n) {
        float x = inp[i], g;
        if (tanh_form) {
            float t = tanhf(BC_SQRT_2_OVER_PI * (x + 0.044715f * x * x * x));
            float xc = fminf(fmaxf(x, -10.0f), 10.0f);   // as the CPU twin: no inf * 0 past |x| ~ 5e19
            float du = BC_SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * xc * xc);
            g = 0.5f * (1.0f + t) + 0.5f * xc * (1.0f - t * t) * du;
        } else {
            g = 0.5f * (1.0f + erff(x * BC_INV_SQRT_2)) + x * BC_INV_SQRT_2PI * expf(-0.5f * x * x);
        }
        dinp[i] += g * dout[i];
    }
}

__global__ void bc_tanh_fwd(float *out, const float *inp, size_t n) { BC_FOR(i, n) out[i] = tanhf(inp[i]); }
__global__ void bc_tanh_bwd(float *dinp, const float *dout, const float *out, size_t n) {
    BC_FOR(i, n) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}
__global__ void bc_add_fwd(float *out, const float *a, const float *b, size_t n) { BC_FOR(i, n) out[i] = a[i] + b[i]; }
__global__ void bc_accumulate_k(float *dst, const float *src, size_t n) { BC_FOR(i, n) dst[i] += src[i]; }
__global__ void bc_scale_fwd(float *out, const float *inp, size_t n, float alpha) { BC_FOR(i, n) out[i] = alpha * inp[i]; }
__global__ void bc_scale_bwd(float *dinp, const float *dout, size_t n, float alpha) { BC_FOR(i, n) dinp[i] += alpha * dout[i]; }

// launches a pointwise kernel over n elements (nothing for n == 0 or a NULL output)
#define BC_POINTWISE(kernel, out, n, ...)                                                      \
    do {                                                                                       \
        if (!(n) || !(out)) return;                                                            \
        kernel<<<bc_blocks((n), BC_T), BC_T, 0, bc.stream>>>((out), __VA_ARGS__);             \
        BC_LAUNCHED(#kernel);                                                                  \
    } while (0)

static void bc_gelu_forward(float *out, const float *inp, size_t n, int act) {
    BC_POINTWISE(bc_gelu_fwd, out, n, inp, n, act == BERT_GELU_TANH);
}
static void bc_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n, int act) {
    BC_POINTWISE(bc_gelu_bwd, dinp, n, dout, inp, n, act == BERT_GELU_TANH);
}
static void bc_tanh_forward(float *out, const float *inp, size_t n) { BC_POINTWISE(bc_tanh_fwd, out, n, inp, n); }
static void bc_tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
    BC_POINTWISE(bc_tanh_bwd, dinp, n, dout, out, n);
}
static void bc_add_forward(float *out, const float *a, const float *b, size_t n) { BC_POINTWISE(bc_add_fwd, out, n, a, b, n); }

// the fused inference linear as its chain (in place: each pointwise kernel reads what it writes); a
// GEMM epilogue (cuBLASLt) would save the passes
static void bc_linear_act_forward(float *out, const float *inp, const float *weight, const float *bias, const float *residual,
                                  int N, int IC, int OC, int act) {
    size_t n = (size_t)N * OC;
    bc_linear_forward(out, inp, weight, bias, N, IC, OC);
    if (residual) bc_add_forward(out, out, residual, n);
    if (act != BERT_ACT_NONE) bc_gelu_forward(out, out, n, act);
}
static void bc_accumulate(float *dst, const float *src, size_t n) { BC_POINTWISE(bc_accumulate_k, dst, n, src, n); }
static void bc_scale_forward(float *out, const float *inp, size_t n, float alpha) {
    BC_POINTWISE(bc_scale_fwd, out, n, inp, n, alpha);
}
static void bc_scale_backward(float *dinp, const float *dout, size_t n, float alpha) {
    BC_POINTWISE(bc_scale_bwd, dinp, n, dout, n, alpha);
}
static void bc_dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t stream) {
    BC_POINTWISE(bc_dropout_fwd, out, n, inp, n, p, stream, 1.0f / (1.0f - p));
}
static void bc_dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t stream) {
    BC_POINTWISE(bc_dropout_bwd, dinp, n, dout, n, p, stream, 1.0f / (1.0f - p));
}

// ----------------------------------------------------------------------------
// softmax cross-entropy: one block per row; each row's loss in double, summed in a fixed order

__global__ void bc_xent_fwd(float *probs, double *rowloss, const float *logits, const int32_t *labels, int V,
                            int ignore_index) {
    __shared__ float sh[32];
    const float *l = logits + (size_t)blockIdx.x * V;
    float *p = probs + (size_t)blockIdx.x * V;
    float mx = -INFINITY, sum = 0.0f;
    for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, l[j]);
    mx = bc_block_reduce<true>(mx, sh);
    for (int j = threadIdx.x; j < V; j += blockDim.x) { float e = expf(l[j] - mx); p[j] = e; sum += e; }
    sum = bc_block_reduce<false>(sum, sh);
    float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < V; j += blockDim.x) p[j] *= inv;
    if (threadIdx.x == 0) {
        int y = labels[blockIdx.x];
        rowloss[blockIdx.x] = y == ignore_index ? 0.0 : (double)mx + log((double)sum) - (double)l[y];
    }
}

__global__ void bc_xent_bwd(float *dlogits, const float *probs, const int32_t *labels, float s, int V,
                            int ignore_index, size_t n) {
    BC_FOR(i, n) {
        int y = labels[i / V];
        if (y == ignore_index) continue;
        dlogits[i] += s * (probs[i] - ((int)(i % V) == y ? 1.0f : 0.0f));
    }
}

static int bc_count_labels(const int32_t *labels, int N, int ignore_index) {
    int count = 0;
    for (int n = 0; n < N; n++) count += labels[n] != ignore_index;
    return count;
}

static float bc_xent_forward(float *probs, const float *logits, const int32_t *labels, int N, int V, int ignore_index) {
    if (N <= 0) return (float)bc_result(0.0);
    const int32_t *d = bc_ints(0, labels, (size_t)N);
    double *rowloss = (double *)bc_scratch(&bc.flt, (size_t)N * sizeof(double)), *red = bc_red(1), total = 0.0;
    if (!d || !rowloss || !red) return NAN;
    bc_xent_fwd<<<N, 256, 0, bc.stream>>>(probs, rowloss, logits, d, V, ignore_index);
    if (!BC_LAUNCHED("bc_xent_fwd")) return NAN;
    bc_sum_segments<<<1, BC_RED, 0, bc.stream>>>(red, rowloss, N);   // one segment: the whole rowloss
    if (!BC_LAUNCHED("bc_sum_segments") ||
        !BC_CUDA(cudaMemcpyAsync(&total, red, sizeof(double), cudaMemcpyDeviceToHost, bc.stream)) ||
        !BC_CUDA(cudaStreamSynchronize(bc.stream)))
        return NAN;
    int count = bc_count_labels(labels, N, ignore_index);
    return (float)bc_result(count ? total / count : 0.0);
}

static void bc_xent_backward(float *dlogits, const float *probs, const int32_t *labels, float dloss, int N, int V,
                             int ignore_index) {
    int count = bc_count_labels(labels, N, ignore_index);
    if (!count || !dlogits) return;
    const int32_t *d = bc_ints(0, labels, (size_t)N);
    if (!d) return;
    size_t n = (size_t)N * V;
    bc_xent_bwd<<<bc_blocks(n, BC_T), BC_T, 0, bc.stream>>>(dlogits, probs, d, dloss / (float)count, V, ignore_index, n);
    BC_LAUNCHED("bc_xent_bwd");
}

// ----------------------------------------------------------------------------
// MSE (sequence regression): mean of (pred - target)^2 in double

__global__ void bc_mse_part(double *part, const float *pred, const float *target, size_t n) {
    __shared__ double sh[BC_RED];
    size_t i0, i1;
    bc_share(n, &i0, &i1);
    double s = 0.0;
    for (size_t i = i0 + threadIdx.x; i < i1; i += BC_RED) { double d = (double)pred[i] - (double)target[i]; s += d * d; }
    s = bc_block_sum_d(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void bc_mse_bwd(float *dpred, const float *pred, const float *target, float s, size_t n) {
    BC_FOR(i, n) dpred[i] += s * (pred[i] - target[i]);
}

static float bc_mse_forward(const float *pred, const float *target, size_t n) {
    if (!n) return (float)bc_result(0.0);
    const float *t = bc_device_floats(target, n);
    double *red = bc_red(1), s = 0.0;
    if (!t || !red) return NAN;
    bc_mse_part<<<BC_RED, BC_RED, 0, bc.stream>>>(red, pred, t, n);
    if (!BC_LAUNCHED("bc_mse_part") || !bc_finish_sums(&s, red, 1)) return NAN;
    return (float)bc_result(s / (double)n);
}

static void bc_mse_backward(float *dpred, const float *pred, const float *target, float dloss, size_t n) {
    if (!n || !dpred) return;
    const float *t = bc_device_floats(target, n);
    if (!t) return;
    BC_POINTWISE(bc_mse_bwd, dpred, n, pred, t, 2.0f * dloss / (float)n, n);
}

// ----------------------------------------------------------------------------
// linear-chain CRF (bert_crf_nll): one block per sequence, thread j owns tag j; the forward algorithm
// in double, sequential over time. Transition grads: per sequence (each thread writes only column j
// of its rows, or its own START/STOP slot), then summed over sequences in order. `work` (host
// doubles in bert.h's call) is not used: the device keeps alpha/beta in its own scratch.

__device__ void bc_crf_alpha(double *alpha, const float *em, const float *tr, int n, int K) {
    int j = threadIdx.x, K2 = K + 2;
    if (j < K) alpha[j] = (double)tr[K * K2 + j] + em[j];
    __syncthreads();
    for (int t = 1; t < n; t++) {
        if (j < K) {
            const double *a = alpha + (size_t)(t - 1) * K;
            double m = -INFINITY, s = 0.0;
            for (int i = 0; i < K; i++) m = fmax(m, a[i] + tr[i * K2 + j]);
            for (int i = 0; i < K; i++) s += exp(a[i] + tr[i * K2 + j] - m);
            alpha[(size_t)t * K + j] = em[(size_t)t * K + j] + m + log(s);
        }
        __syncthreads();
    }
}

__device__ void bc_crf_beta(double *beta, const float *em, const float *tr, int n, int K) {
    int i = threadIdx.x, K2 = K + 2;
    if (i < K) beta[(size_t)(n - 1) * K + i] = tr[i * K2 + K + 1];
    __syncthreads();
    for (int t = n - 2; t >= 0; t--) {
        if (i < K) {
            const double *b = beta + (size_t)(t + 1) * K;
            const float *e = em + (size_t)(t + 1) * K;
            double m = -INFINITY, s = 0.0;
            for (int j = 0; j < K; j++) m = fmax(m, tr[i * K2 + j] + e[j] + b[j]);
            for (int j = 0; j < K; j++) s += exp(tr[i * K2 + j] + e[j] + b[j] - m);
            beta[(size_t)t * K + i] = m + log(s);
        }
        __syncthreads();
    }
}

__device__ double bc_crf_log_z(const double *alpha_last, const float *tr, int K) {
    int K2 = K + 2;
    double m = -INFINITY, s = 0.0;
    for (int j = 0; j < K; j++) m = fmax(m, alpha_last[j] + tr[j * K2 + K + 1]);
    for (int j = 0; j < K; j++) s += exp(alpha_last[j] + tr[j * K2 + K + 1] - m);
    return m + log(s);
}

__device__ double bc_crf_score(const float *em, const float *tr, const int32_t *y, int n, int K) {
    int K2 = K + 2;
    double s = (double)tr[K * K2 + y[0]] + tr[y[n - 1] * K2 + K + 1];
    for (int t = 0; t < n; t++) s += em[(size_t)t * K + y[t]] + (t ? (double)tr[y[t - 1] * K2 + y[t]] : 0.0);
    return s;
}

__global__ void bc_crf_fwd(float *nll, double *nll_d, double *alpha_all, const float *emit, const float *tr,
                           const int32_t *tags, const int32_t *lengths, int T, int K) {
    int b = blockIdx.x, n = lengths[b];
    double *alpha = alpha_all + (size_t)b * T * K;
    const float *em = emit + (size_t)b * T * K;
    if (n > 0) bc_crf_alpha(alpha, em, tr, n, K);   // n is the same for the whole block
    if (threadIdx.x == 0) {
        double v = n > 0 ? bc_crf_log_z(alpha + (size_t)(n - 1) * K, tr, K) - bc_crf_score(em, tr, tags + (size_t)b * T, n, K) : 0.0;
        nll_d[b] = v;
        nll[b] = (float)v;
    }
}

__global__ void bc_crf_bwd(float *demit, double *dtr_all, double *ab_all, const float *emit, const float *tr,
                           const int32_t *tags, const int32_t *lengths, double s, int T, int K) {
    __shared__ double log_z;
    int b = blockIdx.x, n = lengths[b], j = threadIdx.x, K2 = K + 2;
    double *alpha = ab_all + (size_t)b * 2 * T * K, *beta = alpha + (size_t)T * K, *dtr = dtr_all + (size_t)b * K2 * K2;
    const float *em = emit + (size_t)b * T * K;
    const int32_t *y = tags + (size_t)b * T;
    for (int i = j; i < K2 * K2; i += blockDim.x) dtr[i] = 0.0;
    if (n <= 0) return;   // the whole block
    bc_crf_alpha(alpha, em, tr, n, K);
    bc_crf_beta(beta, em, tr, n, K);
    if (j == 0) log_z = bc_crf_log_z(alpha + (size_t)(n - 1) * K, tr, K);
    __syncthreads();
    if (j >= K) return;
    for (int t = 0; t < n; t++) {   // marginals: emissions, START -> j, j -> STOP
        double p = exp(alpha[(size_t)t * K + j] + beta[(size_t)t * K + j] - log_z) - (y[t] == j);
        if (demit) demit[((size_t)b * T + t) * K + j] += (float)(s * p);
        if (t == 0) dtr[K * K2 + j] += p;
        if (t == n - 1) dtr[j * K2 + K + 1] += p;
    }
    for (int t = 1; t < n; t++) {   // pair marginals into column j, then the gold transition
        const double *a = alpha + (size_t)(t - 1) * K, *bt = beta + (size_t)t * K;
        const float *e = em + (size_t)t * K;
        for (int i = 0; i < K; i++) dtr[i * K2 + j] += exp(a[i] + tr[i * K2 + j] + e[j] + bt[j] - log_z);
        if (y[t] == j) dtr[y[t - 1] * K2 + j] -= 1.0;
    }
}

__global__ void bc_crf_dtrans(float *dtrans, const double *dtr_all, int B, int K2, double s) {
    BC_FOR(i, (size_t)K2 * K2) {
        double g = 0.0;
        for (int b = 0; b < B; b++) g += dtr_all[(size_t)b * K2 * K2 + i];
        dtrans[i] += (float)(s * g);
    }
}

static int bc_crf_count(const int32_t *lengths, int B) {
    int count = 0;
    for (int b = 0; b < B; b++) count += lengths[b] > 0;
    return count;
}

static unsigned bc_crf_threads(int K) { return (unsigned)((K + 31) / 32 * 32); }

static bool bc_crf_fits(int K) {
    if (K >= 1 && K <= 1024) return true;
    bc_fail(__FILE__, __LINE__, "crf", "K tags must be in [1, 1024] on CUDA");
    return false;
}

static float bc_crf_forward(float *nll, const float *emit, const float *trans, const int32_t *tags,
                            const int32_t *lengths, int B, int T, int K, double *work) {
    (void)work;
    if (B <= 0) return (float)bc_result(0.0);
    if (!bc_crf_fits(K)) return NAN;
    const int32_t *dtags = bc_ints(0, tags, (size_t)B * T), *dlen = bc_ints(1, lengths, (size_t)B);
    double *scratch = (double *)bc_scratch(&bc.attn, ((size_t)B * T * K + (size_t)B) * sizeof(double));
    double *red = bc_red(1), total = 0.0;
    if (!dtags || !dlen || !scratch || !red) return NAN;
    double *nll_d = scratch + (size_t)B * T * K;
    bc_crf_fwd<<<B, bc_crf_threads(K), 0, bc.stream>>>(nll, nll_d, scratch, emit, trans, dtags, dlen, T, K);
    if (!BC_LAUNCHED("bc_crf_fwd")) return NAN;
    bc_sum_segments<<<1, BC_RED, 0, bc.stream>>>(red, nll_d, B);
    if (!BC_LAUNCHED("bc_sum_segments") ||
        !BC_CUDA(cudaMemcpyAsync(&total, red, sizeof(double), cudaMemcpyDeviceToHost, bc.stream)) ||
        !BC_CUDA(cudaStreamSynchronize(bc.stream)))
        return NAN;
    int count = bc_crf_count(lengths, B);
    return (float)bc_result(count ? total / count : 0.0);
}

static void bc_crf_backward(float *demit, float *dtrans, const float *emit, const float *trans, const int32_t *tags,
                            const int32_t *lengths, float dloss, int B, int T, int K, double *work) {
    (void)work;
    int count = bc_crf_count(lengths, B), K2 = K + 2;
    if (!count || !bc_crf_fits(K)) return;
    const int32_t *dtags = bc_ints(0, tags, (size_t)B * T), *dlen = bc_ints(1, lengths, (size_t)B);
    double *ab = (double *)bc_scratch(&bc.attn, ((size_t)B * 2 * T * K + (size_t)B * K2 * K2) * sizeof(double));
    if (!dtags || !dlen || !ab) return;
    double *dtr = ab + (size_t)B * 2 * T * K, s = (double)dloss / count;
    bc_crf_bwd<<<B, bc_crf_threads(K), 0, bc.stream>>>(demit, dtr, ab, emit, trans, dtags, dlen, s, T, K);
    if (!BC_LAUNCHED("bc_crf_bwd") || !dtrans) return;
    bc_crf_dtrans<<<bc_blocks((size_t)K2 * K2, BC_T), BC_T, 0, bc.stream>>>(dtrans, dtr, B, K2, s);
    BC_LAUNCHED("bc_crf_dtrans");
}

// ----------------------------------------------------------------------------
// transpose of the last two dims (the span head's logits)

__global__ void bc_transpose_fwd(float *out, const float *inp, int M, int N, size_t n) {
    BC_FOR(i, n) {
        size_t mn = (size_t)M * N, b = i / mn, r = i % mn, row = r / N, col = r % N;
        out[b * mn + col * M + row] = inp[i];
    }
}

__global__ void bc_transpose_bwd(float *dinp, const float *dout, int M, int N, size_t n) {
    BC_FOR(i, n) {
        size_t mn = (size_t)M * N, b = i / mn, r = i % mn, row = r / N, col = r % N;
        dinp[i] += dout[b * mn + col * M + row];
    }
}

static void bc_transpose_forward(float *out, const float *inp, int B, int M, int N) {
    size_t n = (size_t)B * M * N;
    BC_POINTWISE(bc_transpose_fwd, out, n, inp, M, N, n);
}

static void bc_transpose_backward(float *dinp, const float *dout, int B, int M, int N) {
    size_t n = (size_t)B * M * N;
    BC_POINTWISE(bc_transpose_bwd, dinp, n, dout, M, N, n);
}

// ----------------------------------------------------------------------------
// grad norm and optimizers: one fused pass each, the CPU kernels' math. Sums of squares in double
// over BC_RED fixed shares, then a fixed tree: the same bits on every run.

__global__ void bc_sumsq_part(double *part, const float *x, size_t n) {
    __shared__ double sh[BC_RED];
    size_t i0, i1;
    bc_share(n, &i0, &i1);
    double s = 0.0;
    for (size_t i = i0 + threadIdx.x; i < i1; i += BC_RED) s += (double)x[i] * x[i];
    s = bc_block_sum_d(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

static double bc_sumsq(const float *x, size_t n) {
    double *red = bc_red(1), s = 0.0;
    if (!n) return bc_result(0.0);
    if (!red) return NAN;
    bc_sumsq_part<<<BC_RED, BC_RED, 0, bc.stream>>>(red, x, n);
    if (!BC_LAUNCHED("bc_sumsq_part") || !bc_finish_sums(&s, red, 1)) return NAN;
    return bc_result(s);
}

// u = (m/bc1) / (sqrt(v/bc2) + eps) + wd*p;  p -= lr*u  (ibc = 1/bc, as the CPU kernel)
__global__ void bc_adam_k(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                          float eps, float wd, float gscale, float ibc1, float ibc2) {
    BC_FOR(i, n) {
        float gi = g[i] * gscale;
        float mi = beta1 * m[i] + (1.0f - beta1) * gi, vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * (mi * ibc1 / (sqrtf(vi * ibc2) + eps) + wd * p[i]);
    }
}

static void bc_adam_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                           float eps, float wd, float gscale, float bc1, float bc2) {
    BC_POINTWISE(bc_adam_k, p, n, g, m, v, n, lr, beta1, beta2, eps, wd, gscale, 1.0f / bc1, 1.0f / bc2);
}

// LAMB pass 1: the moments, and |p|^2, |u|^2 per share (part[0..BC_RED) and part[BC_RED..2*BC_RED))
__global__ void bc_adam_norms_part(double *part, const float *p, const float *g, float *m, float *v, size_t n,
                                   float beta1, float beta2, float eps, float wd, float gscale, float bc1, float bc2) {
    __shared__ double sh[BC_RED];
    size_t i0, i1;
    bc_share(n, &i0, &i1);
    double pp = 0.0, uu = 0.0;
    for (size_t i = i0 + threadIdx.x; i < i1; i += BC_RED) {
        float gi = g[i] * gscale;
        float mi = beta1 * m[i] + (1.0f - beta1) * gi, vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float u = (mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * p[i];
        pp += (double)p[i] * p[i];
        uu += (double)u * u;
    }
    pp = bc_block_sum_d(pp, sh);
    __syncthreads();   // sh is reused
    uu = bc_block_sum_d(uu, sh);
    if (threadIdx.x == 0) { part[blockIdx.x] = pp; part[BC_RED + blockIdx.x] = uu; }
}

static void bc_adam_direction_norms(double *pp_uu, const float *p, const float *g, float *m, float *v, size_t n,
                                    float beta1, float beta2, float eps, float wd, float gscale, float bc1, float bc2) {
    double *red = bc_red(2);
    pp_uu[0] = pp_uu[1] = bc_result(0.0);
    if (!n) return;
    if (!red) { pp_uu[0] = pp_uu[1] = NAN; return; }
    bc_adam_norms_part<<<BC_RED, BC_RED, 0, bc.stream>>>(red, p, g, m, v, n, beta1, beta2, eps, wd, gscale, bc1, bc2);
    if (!BC_LAUNCHED("bc_adam_norms_part") || !bc_finish_sums(pp_uu, red, 2)) { pp_uu[0] = pp_uu[1] = NAN; return; }
    pp_uu[0] = bc_result(pp_uu[0]);
    pp_uu[1] = bc_result(pp_uu[1]);
}

__global__ void bc_lamb_k(float *p, const float *m, const float *v, size_t n, float step_size, float eps, float wd,
                          float bc1, float bc2) {
    BC_FOR(i, n) p[i] -= step_size * ((m[i] / bc1) / (sqrtf(v[i] / bc2) + eps) + wd * p[i]);
}

static void bc_lamb_apply(float *p, const float *m, const float *v, size_t n, float step_size, float eps, float wd,
                          float bc1, float bc2) {
    BC_POINTWISE(bc_lamb_k, p, n, m, v, n, step_size, eps, wd, bc1, bc2);
}

__global__ void bc_momentum_k(float *p, const float *g, float *m, size_t n, float lr, float mu, float wd, float gscale) {
    BC_FOR(i, n) {
        float mi = mu * m[i] + g[i] * gscale + wd * p[i];
        m[i] = mi;
        p[i] -= lr * mi;
    }
}

static void bc_momentum_update(float *p, const float *g, float *m, size_t n, float lr, float mu, float wd, float gscale) {
    BC_POINTWISE(bc_momentum_k, p, n, g, m, n, lr, mu, wd, gscale);
}

// ----------------------------------------------------------------------------
// the table and the public API

static void bc_fill_table(bert_kernels *t) {
    memset(t, 0, sizeof *t);
    t->name = "cuda";
    t->mem = &bc.mem;
#define BC_ENTRY(ret, name, args) t->name = bc_##name;   // by name: the field and bc_<field>
    BERT_KERNELS(BC_ENTRY)
#undef BC_ENTRY
}

extern "C" {

int bert_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) { cudaGetLastError(); return 0; }
    return n;
}

const char *bert_cuda_last_error(void) { return bc.error; }
void bert_cuda_clear_error(void) { bc.failed = 0; bc.error[0] = 0; }

void bert_cuda_set_math(bert_cuda_math math) { bc.math = math; }

void bert_cuda_shutdown(void) {
    if (!bc.ready) return;
    BC_CUDA(cudaStreamSynchronize(bc.stream));
    bc_buf *bufs[] = { &bc.ints[0], &bc.ints[1], &bc.attn, &bc.rel, &bc.ptrs, &bc.part, &bc.red, &bc.flt };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) bc_free_buf(bufs[i]);
    BC_BLAS(cublasDestroy(bc.blas));
    BC_CUDA(cudaStreamDestroy(bc.stream));
    bc.ready = 0;
    bc.name[0] = 0;
}

int bert_cuda_init(int device) {
    bert_cuda_shutdown();
    bert_cuda_clear_error();
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        bc_fail(__FILE__, __LINE__, "cudaGetDeviceCount", e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device");
        return BERT_ERR_DEVICE;
    }
    if (device < 0 || device >= count) {
        char why[64];
        snprintf(why, sizeof why, "device %d of %d", device, count);
        bc_fail(__FILE__, __LINE__, "bert_cuda_init", why);
        return BERT_ERR_ARG;
    }
    cudaDeviceProp prop;
    if (!BC_CUDA(cudaSetDevice(device)) || !BC_CUDA(cudaGetDeviceProperties(&prop, device)) ||
        !BC_CUDA(cudaStreamCreateWithFlags(&bc.stream, cudaStreamNonBlocking)))
        return BERT_ERR_DEVICE;
    if (!BC_BLAS(cublasCreate(&bc.blas))) { cudaStreamDestroy(bc.stream); return BERT_ERR_DEVICE; }
    if (!BC_BLAS(cublasSetStream(bc.blas, bc.stream)) || !BC_BLAS(cublasSetMathMode(bc.blas, CUBLAS_DEFAULT_MATH))) {
        cublasDestroy(bc.blas);
        cudaStreamDestroy(bc.stream);
        return BERT_ERR_DEVICE;
    }
    bc.sms = prop.multiProcessorCount;
    bc.device = device;
    snprintf(bc.name, sizeof bc.name, "%.200s (sm_%d%d, %d SMs, %.0f GiB)", prop.name, prop.major, prop.minor,
             prop.multiProcessorCount, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    bc.mem.device = 1;
    bc.mem.alloc = bc_alloc;
    bc.mem.release = bc_release;
    bc.mem.zero = bc_zero;
    bc.mem.upload = bc_upload;
    bc.mem.download = bc_download;
    bc.mem.copy = bc_copy;
    bc_fill_table(&bc.table);
    bc.ready = 1;
    return BERT_OK;
}

const bert_kernels *bert_cuda_kernels(void) { return bc.ready ? &bc.table : NULL; }
const char *bert_cuda_device_name(void) { return bc.name; }

int bert_cuda_sync(void) {
    if (bc.ready) {
        BC_CUDA(cudaStreamSynchronize(bc.stream));
        BC_CUDA(cudaGetLastError());
    }
    return bc.failed ? BERT_ERR_DEVICE : BERT_OK;
}

}  // extern "C"

#ifdef BERT_NCCL
// ----------------------------------------------------------------------------
// data parallel: bert.h's communication seam on NCCL (DATA PARALLEL at the top). One communicator
// per process, every collective on bc.stream; the seam's functions return BERT_ERR_DEVICE with the
// error recorded as every other failure here, and never exit.

#define BC_NCCL_PIECE ((size_t)16 << 20)   // bytes of a host buffer staged per collective

static struct {
    ncclComm_t comm;   // NULL before bert_nccl_init, after bert_nccl_free, and once aborted
    bc_buf stage;      // the device copy of a host buffer (allreduce_sum_f64, broadcast, barrier)
    bert_comm table;
} bcn;

static bool bc_nccl(ncclResult_t r, const char *call, const char *file, int line) {
    if (r == ncclSuccess) return true;
    const char *more = ncclGetLastError(bcn.comm);   // NCCL's own account, when it has one
    char why[400];
    if (more && *more) snprintf(why, sizeof why, "%s (%.300s)", ncclGetErrorString(r), more);
    else snprintf(why, sizeof why, "%s", ncclGetErrorString(r));
    bc_fail(file, line, call, why);
    return false;
}

#define BC_NCCL(call) bc_nccl((call), #call, __FILE__, __LINE__)

static bool bc_nccl_usable(const char *call) {
    if (bcn.comm && bc.ready) return true;
    bc_fail(__FILE__, __LINE__, call, bc.ready ? "no NCCL communicator (bert_nccl_init failed, or freed or aborted)"
                                               : "bert_cuda.h is shut down");
    return false;
}

// Waits for bc.stream (the collective last on it), polling the communicator's asynchronous error so
// that a failure NCCL detects (a peer's connection lost) ends the wait instead of blocking it for
// ever; the communicator is then aborted (NCCL's rule: it cannot be used after an async error).
static bool bc_nccl_wait(void) {
    for (;;) {
        cudaError_t e = cudaStreamQuery(bc.stream);
        if (e == cudaSuccess) return true;
        if (e != cudaErrorNotReady) return bc_cuda(e, "cudaStreamQuery(bc.stream)", __FILE__, __LINE__);
        cudaGetLastError();   // "not ready" is no error worth keeping
        ncclResult_t async = ncclSuccess;
        if (!BC_NCCL(ncclCommGetAsyncError(bcn.comm, &async))) return false;
        if (async != ncclSuccess && async != ncclInProgress) {
            bc_nccl(async, "ncclCommGetAsyncError (a collective failed)", __FILE__, __LINE__);
            BC_NCCL(ncclCommAbort(bcn.comm));
            bcn.comm = NULL;
            return false;
        }
        sched_yield();
    }
}

// a collective on a host buffer: to the device in pieces, sum (root < 0) or broadcast from root,
// back to the host
static int bc_nccl_host(void *host, size_t bytes, ncclDataType_t type, size_t elem, int root) {
    if (!bc_nccl_usable(root < 0 ? "bert_comm allreduce (nccl)" : "bert_comm broadcast (nccl)")) return BERT_ERR_DEVICE;
    size_t piece = BC_NCCL_PIECE / elem * elem;
    for (size_t off = 0; off < bytes; off += piece) {
        size_t k = bytes - off < piece ? bytes - off : piece;
        char *h = (char *)host + off, *d = (char *)bc_scratch(&bcn.stage, k);   // grows to one piece at most
        if (!d || !BC_CUDA(cudaMemcpyAsync(d, h, k, cudaMemcpyHostToDevice, bc.stream))) return BERT_ERR_DEVICE;
        if (root < 0 ? !BC_NCCL(ncclAllReduce(d, d, k / elem, type, ncclSum, bcn.comm, bc.stream))
                     : !BC_NCCL(ncclBroadcast(d, d, k / elem, type, root, bcn.comm, bc.stream)))
            return BERT_ERR_DEVICE;
        if (!bc_nccl_wait() || !BC_CUDA(cudaMemcpyAsync(h, d, k, cudaMemcpyDeviceToHost, bc.stream)) ||
            !BC_CUDA(cudaStreamSynchronize(bc.stream)))
            return BERT_ERR_DEVICE;
    }
    return BERT_OK;
}

// Device floats summed in place. Synchronous: it returns once the sum is done, so a failure is this
// call's return value and bert_optim's last_comm_s times the sum itself. Nothing is lost by waiting:
// bert_optim_step reads the grad norm next (sumsq), which waits for the stream anyway, and every
// kernel that reads the grads runs after it on the same stream.
static int bc_nccl_sum(const bert_comm *c, float *buf, size_t n) {
    (void)c;
    if (!bc_nccl_usable("bert_comm allreduce_sum (nccl)")) return BERT_ERR_DEVICE;
    if (n && (!BC_NCCL(ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, bcn.comm, bc.stream)) || !bc_nccl_wait()))
        return BERT_ERR_DEVICE;
    return BERT_OK;
}

static int bc_nccl_sum_f64(const bert_comm *c, double *buf, size_t n) {
    (void)c;
    return bc_nccl_host(buf, n * sizeof(double), ncclDouble, sizeof(double), -1);
}

static int bc_nccl_broadcast(const bert_comm *c, void *buf, size_t bytes, int root) {
    (void)c;
    if (!bc_nccl_usable("bert_comm broadcast (nccl)")) return BERT_ERR_DEVICE;
    if (root < 0 || root >= bcn.table.size) {
        char why[64];
        snprintf(why, sizeof why, "root %d of %d ranks", root, bcn.table.size);
        bc_fail(__FILE__, __LINE__, "bert_comm broadcast (nccl)", why);
        return BERT_ERR_DEVICE;
    }
    return bc_nccl_host(buf, bytes, ncclChar, 1, root);
}

// every rank adds 1: the sum arrives once all have come, and is the number of ranks
static int bc_nccl_barrier(const bert_comm *c) {
    (void)c;
    int32_t one = 1;
    int rc = bc_nccl_host(&one, sizeof one, ncclInt32, sizeof one, -1);
    if (rc == BERT_OK && one != bcn.table.size) {
        char why[64];
        snprintf(why, sizeof why, "%d ranks came, of %d", (int)one, bcn.table.size);
        bc_fail(__FILE__, __LINE__, "bert_comm barrier (nccl)", why);
        return BERT_ERR_DEVICE;
    }
    return rc;
}

// Aborts the communicator (the other ranks' next collective fails) and records why; it cannot end
// the process: the caller exits.
static void bc_nccl_abort(const bert_comm *c, int code) {
    (void)c;
    char why[64];
    snprintf(why, sizeof why, "rank %d aborted the job (code %d)", bcn.table.rank, code);
    bc_fail(__FILE__, __LINE__, "bert_comm abort (nccl)", why);
    if (bcn.comm) BC_NCCL(ncclCommAbort(bcn.comm));
    bcn.comm = NULL;
}

extern "C" {

int bert_nccl_unique_id(void *id_out, size_t cap) {
    ncclUniqueId id;
    if (!id_out || cap < sizeof id) {
        char why[80];
        snprintf(why, sizeof why, "needs %zu bytes, given %zu", sizeof id, id_out ? cap : (size_t)0);
        bc_fail(__FILE__, __LINE__, "bert_nccl_unique_id", why);
        return -BERT_ERR_ARG;
    }
    if (!BC_NCCL(ncclGetUniqueId(&id))) return -BERT_ERR_DEVICE;
    memcpy(id_out, &id, sizeof id);
    return (int)sizeof id;
}

void bert_nccl_free(void) {
    if (bcn.comm) {
        if (bc.ready) BC_CUDA(cudaStreamSynchronize(bc.stream));   // nothing of ours still queued on it
        BC_NCCL(ncclCommDestroy(bcn.comm));
        bcn.comm = NULL;
    }
    bc_free_buf(&bcn.stage);
}

// The communicator of rank `rank` of `size`, on bert_cuda_init's GPU; every rank calls it with rank
// 0's id, and it returns once all have. A second call replaces the first communicator.
const bert_comm *bert_nccl_init(const void *id, int rank, int size) {
    bert_nccl_free();
    if (!bc.ready) {
        bc_fail(__FILE__, __LINE__, "bert_nccl_init", "call bert_cuda_init first (its GPU and stream are NCCL's)");
        return NULL;
    }
    if (!id || size < 1 || rank < 0 || rank >= size) {
        char why[80];
        snprintf(why, sizeof why, "rank %d of %d%s", rank, size, id ? "" : ", no id");
        bc_fail(__FILE__, __LINE__, "bert_nccl_init", why);
        return NULL;
    }
    ncclUniqueId uid;
    memcpy(&uid, id, sizeof uid);
    ncclComm_t comm = NULL;
    if (!BC_CUDA(cudaSetDevice(bc.device)) || !BC_NCCL(ncclCommInitRank(&comm, size, uid, rank))) return NULL;
    bcn.comm = comm;
    bert_comm *t = &bcn.table;
    memset(t, 0, sizeof *t);
    t->name = "nccl";
    t->rank = rank;
    t->size = size;
    t->device = 1;   // allreduce_sum takes device floats: bert_comm_allreduce_model passes the grads as they are
    t->allreduce_sum = bc_nccl_sum;
    t->allreduce_sum_f64 = bc_nccl_sum_f64;
    t->broadcast = bc_nccl_broadcast;
    t->barrier = bc_nccl_barrier;
    t->abort = bc_nccl_abort;
    t->impl = comm;   // the ncclComm_t, for a caller's own collectives on bert_cuda.h's stream
    return t;
}

}  // extern "C"
#endif  // BERT_NCCL

#endif  // BERT_CUDA_IMPLEMENTED
#endif  // BERT_CUDA_IMPLEMENTATION
