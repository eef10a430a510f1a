/* bert.h - v0.1 - BERT pretraining, fine-tuning and inference in one C header - MIT license
                                              (full text at the end of this file)

   Needs C11 (or C++11); -std=c99 is refused with one #error line.
   Do this:
       #define BERT_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Every other file just #includes "bert.h". Build with e.g.
       cc -O3 -march=native -fopenmp -std=c11 app.c -lm

   WHAT IT IS
     Contiguous fp32 tensors in an arena, a reverse-mode autograd tape, CPU kernels as
     forward/backward pairs on raw float*, the BERT encoder (post-LN, GELU erf or tanh) with the
     pretraining heads (MLM with tied decoder + NSP), AdamW (Google's no-bias-correction flavour
     and the standard one), LAMB, SGD with momentum, Google's LR schedule, global-norm clipping,
     gradient accumulation, safetensors checkpoints with HF `BertForPreTraining` names, and
     google-research/bert's WordPiece tokenizer (id-for-id, Unicode tables included; or, per vocab,
     Hugging Face BertTokenizer's rules: bert_vocab_set_mode(v, BERT_TOKENIZE_HF)).
     NEZHA is a config away ("use_relative_position": true; bert_relpos): functional relative
     positions in every attention layer, Huawei's fixed sinusoid table or MindSpore's learned ones,
     no absolute position table, tensors named nezha.*; everything else, heads included, is BERT's.
     The pretraining heads without NSP: a bert_batch with next_sentence_label NULL.

   PRECISION AND SPEED KNOBS
     Training in bf16 mixed precision: build the step's ctx on bert_cpu_bf16_kernels() (the linear
     layers' GEMMs with bf16 inputs, fp32 sums; everything else fp32); opt.grad_scale divides a loss
     scale back out. Inference: bert_model_quantize(m, BERT_PRECISION_BF16 | _INT8) for low-precision
     weights; ctx->remove_padding = 1 runs the encoder on the real tokens of a batch only. A fine-tuned
     model for transformers: bert_model_save_finetuned (no pretraining heads).

   COMPILE-TIME OPTIONS (set them before including bert.h)
     BERT_STATIC            all functions static (set in every TU that includes bert.h)
     BERT_MALLOC(n), BERT_FREE(p)   your allocator: define both or neither (implementation TU)
     BERT_ASSERT(cond)      your assert; the default prints file:line and aborts. It is always on
                            and only guards programmer errors, never bad input (implementation TU)
     BERT_NO_OPENMP         ignore OpenMP even when compiled with -fopenmp (implementation TU)
     BERT_NO_SIMD           plain C kernels only (implementation TU)
     BERT_NO_AMX            no AMX tiles for the int8 GEMM, AVX512-VNNI instead (implementation TU)

   TABLE OF CONTENTS (search for the banners; both halves run in the order data flows)
     public:          errors · config · parameter table · tensors, arena, context · kernel table ·
                      ops · autograd · model (parameters, encoder) · device memory · heads
                      (pretraining, sequence classification, token classification, span, CRF) ·
                      optimizers · utils for command-line programs · checkpoints · JSON and
                      safetensors · tokenizer · TFRecord · create_pretraining_data
     implementation:  helpers · RNG · vectorisable math · CPU kernels (every forward/backward pair,
                      then the table) · arena and tensors · tape · ops · model · device memory ·
                      encoder · heads (pretraining, then the task heads) · optimizers · flags ·
                      I/O (files, JSON, safetensors) · config · checkpoints · WordPiece tokenizer
                      (+ generated Unicode tables) · TFRecord · create_pretraining_data · license
     The run layer the example programs share (checkpoint directories, --resume, progress line,
     log.jsonl, curve.svg, summary) is examples/run.h, beside this file; include it after bert.h.

   CONVENTIONS
     Dims:  B batch, T sequence length, C hidden size (channels), NH heads, HS = C/NH head size,
            F intermediate (FFN) size, V vocab size, P max positions, TV token-type vocab,
            L layers, MP masked positions per sequence, N rows (B*T or B*MP), OC/IC out/in channels.
     Row-major, PyTorch shape order (outermost first). A Linear weight is (OC, IC): y = x W^T + b.
     Kernels take outputs first, then inputs, then weights, then dims. Backward kernels
     ACCUMULATE (+=) into their gradient outputs; grads start zeroed.
     Errors: functions that touch files or memory return bert_status (BERT_OK == 0) or NULL,
     and bert_last_error() tells why. The library never calls exit().

   EXAMPLE (one pretraining step; see README.md for the whole program)
       bert_config cfg; bert_config_load(&cfg, "bert_config.json");
       bert_model *m = bert_model_create(&cfg, 42);            // Google init
       bert_ctx *ctx = bert_ctx_create(64u << 20);             // activation arena, grows if needed
       bert_optim opt = bert_optim_defaults(BERT_OPTIM_LAMB);
       opt.lr = 1e-3f; opt.warmup_steps = 100; opt.total_steps = 1000;
       bert_optim_init(&opt, m);
       for (int step = 0; step < 1000; step++) {
           bert_ctx_reset(ctx, step);                          // frees last step's activations
           bert_model_zero_grad(m);
           bert_pretrain_out o = bert_pretrain_forward(ctx, m, &batch);  // batch: ids, mask, labels
           bert_backward(ctx, o.loss);
           bert_optim_step(&opt, m);
       }
       bert_model_save(m, "model.safetensors");

   REVISION HISTORY
     0.1  (2026-11-22)  first release: tensors, tape, CPU kernels, BERT + heads, optimizers,
                        safetensors, proven against a PyTorch reference
     (2026-12-06)       bf16 training kernels and loss scaling, padding-free inference, the
                        tokenizer's Hugging Face mode, bert_model_save_finetuned
     (2026-12-06)       NEZHA: relative positions in the attention kernels (attention_forward/
                        backward take the table and K), bert_attention_relative, bert_relative_table,
                        config keys, absent table rows (a size-0 row is no tensor)
*/
#ifndef BERT_H
#define BERT_H

// C11 or C++11 (timespec_get, _Thread_local / thread_local): say so rather than fail somewhere below
#if !defined(__cplusplus) && (!defined(__STDC_VERSION__) || __STDC_VERSION__ < 201112L)
#error "bert.h needs C11 or later (e.g. -std=c11) or C++11"
#endif

#include <stddef.h>
#include <stdint.h>

#ifndef BERTDEF
#ifdef BERT_STATIC
#define BERTDEF static
#else
#define BERTDEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

// ----------------------------------------------------------------------------
// errors

typedef enum {
    BERT_OK = 0,
    BERT_ERR_IO,        // a file could not be opened, read or written
    BERT_ERR_OOM,       // an allocation failed
    BERT_ERR_FORMAT,    // a file or text is malformed
    BERT_ERR_SHAPE,     // a tensor's shape does not match the config
    BERT_ERR_DTYPE,     // a tensor's dtype is not supported
    BERT_ERR_MISSING,   // a tensor or key is absent
    BERT_ERR_ARG,       // a bad value in a config or call
    BERT_ERR_NONFINITE, // NaN or Inf gradients: the optimizer skipped the update
    BERT_ERR_DEVICE     // an accelerator call failed (bert_cuda.h: bert_cuda_last_error())
} bert_status;

BERTDEF const char *bert_last_error(void);
// The message of the last failure in this thread, e.g. "model.safetensors: tensor 'x' has shape
// [2,3], expected [3,2]". Valid until the next failing call in the same thread.

// ----------------------------------------------------------------------------
// config: field names are the bert_config.json keys

typedef enum { BERT_GELU_ERF, BERT_GELU_TANH } bert_act;
/* NEZHA (use_relative_position): no absolute position table; every layer's attention adds
   a_ij = R[clip(j-i, -K, K) + K], a (2K+1, HS) table row, to the keys and the values:
       s_ij = (q_i.k_j + q_i.a_ij) / sqrt(HS) + mask_j,   z_i = sum_j softmax(s)_ij (v_j + a_ij)
   FIXED: R[p][2k] = sin(p / 10000^(2k/HS)), R[p][2k+1] = cos(same), p = 0..2K (Huawei's released
   NEZHA and transformers' NezhaModel: one table for all layers, not a parameter); LEARNED: MindSpore's
   nezha, one (2K+1, HS) parameter per layer (attention.self.relative_positions_embeddings.weight). */
typedef enum { BERT_RELPOS_FIXED, BERT_RELPOS_LEARNED } bert_relpos;
#define BERT_ACT_NONE (-1)   // linear_act_forward without an activation

typedef struct {
    int vocab_size;                      // V
    int hidden_size;                     // C
    int num_hidden_layers;               // L
    int num_attention_heads;             // NH
    int intermediate_size;               // F
    int max_position_embeddings;         // P
    int type_vocab_size;                 // TV
    bert_act hidden_act;                 // "gelu" = erf (HF); "gelu_tanh"/"gelu_new"/... = tanh
    float hidden_dropout_prob;
    float attention_probs_dropout_prob;
    float initializer_range;
    float layer_norm_eps;                // 1e-12 when absent
    // NEZHA's functional relative positions (all three 0/absent: BERT's absolute position table)
    int use_relative_position;           // "use_relative_position(s)": true, or "model_type": "nezha"
    int max_relative_position;           // K: distances j-i clip to [-K, K] (64, MindSpore's nezha 16)
    bert_relpos relative_position_flavour; // "huawei" (fixed sinusoid table) or "mindspore" (learned)
} bert_config;

BERTDEF bert_config bert_config_default(void);                    // BERT-base
BERTDEF int bert_config_parse(bert_config *cfg, const char *json, size_t len, const char *source);
BERTDEF int bert_config_load(bert_config *cfg, const char *path);  // bert_config.json / config.json
BERTDEF int bert_config_to_json(const bert_config *cfg, char *buf, size_t cap); // bytes written or -1
// Note on "gelu": HF's config means the exact erf form; Google's TF code computed the tanh form
// for the same string. Converters from TF write "gelu_tanh" so the meaning travels with the file.

// ----------------------------------------------------------------------------
// parameter table: one row per stored tensor, in flat-buffer order (layer-major; q/k/v weights
// adjacent so the fused (3C,C) QKV matrix is the query weight's pointer, biases likewise).
// X(field, dim0, dim1, hf_name, decay): dim1 == 0 means a 1-D tensor; dims use V C TV F and
// PA (P, or 0 for NEZHA: no absolute positions), RK HS (a learned relative table's 2K+1 rows of the
// head size; 0 unless MindSpore's NEZHA). A row whose size is 0 is absent: no tensor, a NULL field.

#define BERT_PARAMS_EMB(X) \
    X(word_emb,  V,  C, "bert.embeddings.word_embeddings.weight",        1) \
    X(pos_emb,   PA, C, "bert.embeddings.position_embeddings.weight",    1) \
    X(type_emb,  TV, C, "bert.embeddings.token_type_embeddings.weight",  1) \
    X(emb_ln_w,  C,  0, "bert.embeddings.LayerNorm.weight",              0) \
    X(emb_ln_b,  C,  0, "bert.embeddings.LayerNorm.bias",                0)

#define BERT_PARAMS_LAYER(X) \
    X(q_w,       C, C, "bert.encoder.layer.%d.attention.self.query.weight",       1) \
    X(k_w,       C, C, "bert.encoder.layer.%d.attention.self.key.weight",         1) \
    X(v_w,       C, C, "bert.encoder.layer.%d.attention.self.value.weight",       1) \
    X(q_b,       C, 0, "bert.encoder.layer.%d.attention.self.query.bias",         0) \
    X(k_b,       C, 0, "bert.encoder.layer.%d.attention.self.key.bias",           0) \
    X(v_b,       C, 0, "bert.encoder.layer.%d.attention.self.value.bias",         0) \
    X(rel_w,    RK, HS, "bert.encoder.layer.%d.attention.self.relative_positions_embeddings.weight", 1) \
    X(attn_o_w,  C, C, "bert.encoder.layer.%d.attention.output.dense.weight",     1) \
    X(attn_o_b,  C, 0, "bert.encoder.layer.%d.attention.output.dense.bias",       0) \
    X(attn_ln_w, C, 0, "bert.encoder.layer.%d.attention.output.LayerNorm.weight", 0) \
    X(attn_ln_b, C, 0, "bert.encoder.layer.%d.attention.output.LayerNorm.bias",   0) \
    X(ffn_i_w,   F, C, "bert.encoder.layer.%d.intermediate.dense.weight",         1) \
    X(ffn_i_b,   F, 0, "bert.encoder.layer.%d.intermediate.dense.bias",           0) \
    X(ffn_o_w,   C, F, "bert.encoder.layer.%d.output.dense.weight",               1) \
    X(ffn_o_b,   C, 0, "bert.encoder.layer.%d.output.dense.bias",                 0) \
    X(ffn_ln_w,  C, 0, "bert.encoder.layer.%d.output.LayerNorm.weight",           0) \
    X(ffn_ln_b,  C, 0, "bert.encoder.layer.%d.output.LayerNorm.bias",             0)

#define BERT_PARAMS_HEAD(X) \
    X(pool_w,    C, C, "bert.pooler.dense.weight",                     1) \
    X(pool_b,    C, 0, "bert.pooler.dense.bias",                       0) \
    X(mlm_w,     C, C, "cls.predictions.transform.dense.weight",       1) \
    X(mlm_b,     C, 0, "cls.predictions.transform.dense.bias",         0) \
    X(mlm_ln_w,  C, 0, "cls.predictions.transform.LayerNorm.weight",   0) \
    X(mlm_ln_b,  C, 0, "cls.predictions.transform.LayerNorm.bias",     0) \
    X(mlm_bias,  V, 0, "cls.predictions.bias",                         0) \
    X(nsp_w,     2, C, "cls.seq_relationship.weight",                  1) \
    X(nsp_b,     2, 0, "cls.seq_relationship.bias",                    0)

#define BERT__ENUM_EMB(f, d0, d1, name, decay) BERT_PE_##f,
#define BERT__ENUM_LAYER(f, d0, d1, name, decay) BERT_PL_##f,
#define BERT__ENUM_HEAD(f, d0, d1, name, decay) BERT_PH_##f,
enum { BERT_PARAMS_EMB(BERT__ENUM_EMB) BERT_PE_COUNT };
enum { BERT_PARAMS_LAYER(BERT__ENUM_LAYER) BERT_PL_COUNT };
enum { BERT_PARAMS_HEAD(BERT__ENUM_HEAD) BERT_PH_COUNT };

// ----------------------------------------------------------------------------
// tensors, arena, context

enum { BERT_TENSOR_PARAM = 1u, BERT_TENSOR_REQUIRES_GRAD = 2u };

typedef struct bert_tensor {
    float *data;          // numel floats, contiguous
    float *grad;          // same size; NULL until backward needs it (params: their slot in grads)
    int ndim;
    int shape[4];
    size_t numel;
    uint32_t flags;       // BERT_TENSOR_*
    const char *name;     // optional, for debugging and tests (bert_ctx_find)
} bert_tensor;

typedef struct bert_arena_block {
    struct bert_arena_block *prev; size_t size, used;
    unsigned char *base;      // the block's memory: right after this header, or in `mem` (device)
} bert_arena_block;

struct bert_memory;
typedef struct {
    bert_arena_block *head;   // current block; older blocks are chained through prev
    size_t used;              // bytes handed out since the last reset (all blocks)
    size_t high_water;        // the largest `used` ever seen
    const struct bert_memory *mem;   // NULL: host memory; else a device's (see bert_memory)
} bert_arena;

/* Every op the tape records, one row each: X(ENUM, name) makes BERT_OP_ENUM and bert_op_name's
   "name". A new row also needs its case in bert__backward_node (-Wswitch names a missing one). */
#define BERT_OPS(X)                                                                               \
    X(EMBED, embed) X(LINEAR, linear) X(LAYERNORM, layernorm) X(ATTENTION, attention)             \
    X(GELU, gelu) X(TANH, tanh) X(ADD, add) X(DROPOUT, dropout) X(SOFTMAX_XENT, softmax_xent)     \
    X(GATHER, gather) X(SCALE, scale) X(MSE, mse) X(CRF, crf) X(TRANSPOSE, transpose)

typedef enum {
#define BERT__OP_ENUM(ENUM, name) BERT_OP_##ENUM,
    BERT_OPS(BERT__OP_ENUM)
#undef BERT__OP_ENUM
    BERT_OP_COUNT
} bert_op;

typedef struct {
    bert_op op;
    bert_tensor *out;
    bert_tensor *in[3];
    float *saved[2];        // what the forward pass kept for backward (mean/rstd, probs, ...)
    const int32_t *idx[2];  // integer inputs (token ids, labels, gather rows), arena copies
    int iarg[6];
    float farg[2];
    uint64_t stream;        // dropout RNG stream
} bert_node;

struct bert_kernels;

typedef struct bert_ctx {
    const struct bert_kernels *k;  // the kernel table ops run on
    bert_arena arena;              // activations, their grads and saved values
    bert_arena data;               // with a device kernel table: the floats of all those (on the
                                   // device); `arena` then keeps only host things (headers, ints)
    bert_node *tape; int tape_len, tape_cap;
    int grad_enabled;              // record ops on the tape (default 1)
    int training;                  // dropout active (default 1)
    uint64_t seed;                 // dropout seed
    uint64_t step;                 // set by bert_ctx_reset; part of the dropout stream
    int dropout_site;              // counts dropout calls since the last reset
    int retain_grads;              // keep every activation's grad after backward (default 0: an
                                   // activation grad's memory is reused once its node is done)
    int remove_padding;            // inference (no tape, no dropout): bert_encode runs on the real
                                   // tokens only, the padded rows of its output are 0 (default 0)
    float **free_grads; size_t *free_sizes; int free_len, free_cap;   // that reuse list
} bert_ctx;

BERTDEF bert_ctx *bert_ctx_create(size_t arena_bytes);   // NULL on OOM
BERTDEF void bert_ctx_free(bert_ctx *ctx);
BERTDEF void bert_ctx_reset(bert_ctx *ctx, uint64_t step);
// Frees every activation, grad and tape node at once. If the last step overflowed the first arena
// block, the blocks are merged into one of the high-water size here, so a steady-state step never
// calls malloc.
BERTDEF size_t bert_ctx_high_water(const bert_ctx *ctx);
BERTDEF bert_tensor *bert_tensor_new(bert_ctx *ctx, int ndim, const int *shape); // zeroed, in the arena
BERTDEF bert_tensor *bert_ctx_find(const bert_ctx *ctx, const char *name); // last tape output so named
BERTDEF void bert_tape_print(const bert_ctx *ctx, void *file);             // FILE*, one line per node
BERTDEF const char *bert_op_name(bert_op op);

// ----------------------------------------------------------------------------
// kernel table: raw float* kernels, outputs first; backward kernels accumulate

/* Every kernel in the table, one row each: X(return type, field, (parameters)). This list makes the
   struct's fields, and each backend fills its table from it by name: the CPU's entry `foo` is the
   function bert__foo (bert__cpu_kernels), CUDA's is bc_foo (bert_cuda.h, bc_fill_table). A row
   without a function of that name and signature in a backend does not compile. */
#define BERT_KERNELS(X)                                                                           \
    X(void, sgemm, (int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,   \
                    int lda, const float *B, int ldb, float beta, float *Cm, int ldc))            \
    X(void, embedding_forward, (float *out, const int32_t *ids, const int32_t *types,             \
                                const float *wte, const float *wpe, const float *wtt, int B,      \
                                int T, int C))                                                    \
    X(void, embedding_backward, (float *dwte, float *dwpe, float *dwtt, const float *dout,        \
                                 const int32_t *ids, const int32_t *types, int B, int T, int C))  \
    X(void, linear_forward, (float *out, const float *inp, const float *weight, const float *bias, \
                             int N, int IC, int OC))                                              \
    X(void, linear_backward, (float *dinp, float *dweight, float *dbias, const float *dout,       \
                              const float *inp, const float *weight, int N, int IC, int OC))      \
    /* inference: out = act(inp . weight^T + bias + residual) in one pass over out (bias and      \
       residual may be NULL, act BERT_ACT_NONE or a bert_act); the same floats as the chain */    \
    X(void, linear_act_forward, (float *out, const float *inp, const float *weight,               \
                                 const float *bias, const float *residual, int N, int IC, int OC, \
                                 int act))                                                        \
    X(void, layernorm_forward, (float *out, float *mean, float *rstd, const float *inp,           \
                                const float *weight, const float *bias, int N, int C, float eps)) \
    X(void, layernorm_backward, (float *dinp, float *dweight, float *dbias, const float *dout,    \
                                 const float *inp, const float *weight, const float *mean,        \
                                 const float *rstd, int N, int C))                                \
    /* rel (2K+1, C/NH) NEZHA's relative position table or NULL (BERT); drel NULL: not learned */ \
    X(void, attention_forward, (float *out, float *att, const float *qkv, const float *mask_add,  \
                                const float *rel, int B, int T, int C, int NH, int K,             \
                                float drop_p, uint64_t stream))                                   \
    X(void, attention_backward, (float *dqkv, float *drel, const float *dout, const float *qkv,   \
                                 const float *att, const float *rel, int B, int T, int C, int NH, \
                                 int K, float drop_p, uint64_t stream))                           \
    X(void, gelu_forward, (float *out, const float *inp, size_t n, int act))                      \
    X(void, gelu_backward, (float *dinp, const float *dout, const float *inp, size_t n, int act))  \
    X(void, tanh_forward, (float *out, const float *inp, size_t n))                               \
    X(void, tanh_backward, (float *dinp, const float *dout, const float *out, size_t n))          \
    X(void, add_forward, (float *out, const float *a, const float *b, size_t n))                  \
    X(void, accumulate, (float *dst, const float *src, size_t n))   /* dst += src */              \
    X(void, scale_forward, (float *out, const float *inp, size_t n, float alpha))                 \
    X(void, scale_backward, (float *dinp, const float *dout, size_t n, float alpha))              \
    X(void, dropout_forward, (float *out, const float *inp, size_t n, float p, uint64_t stream))  \
    X(void, dropout_backward, (float *dinp, const float *dout, size_t n, float p,                 \
                               uint64_t stream))                                                  \
    /* xent_forward returns the mean loss */                                                      \
    X(float, xent_forward, (float *probs, const float *logits, const int32_t *labels, int N,      \
                            int V, int ignore_index))                                             \
    X(void, xent_backward, (float *dlogits, const float *probs, const int32_t *labels,            \
                            float dloss, int N, int V, int ignore_index))                         \
    X(void, gather_forward, (float *out, const float *inp, const int32_t *rows, int M, int C))    \
    X(void, gather_backward, (float *dinp, const float *dout, const int32_t *rows, int M, int C))  \
    X(double, sumsq, (const float *x, size_t n))                                                  \
    X(void, adam_update, (float *p, const float *g, float *m, float *v, size_t n, float lr,       \
                          float beta1, float beta2, float eps, float wd, float gscale,            \
                          float bc1, float bc2))                                                  \
    X(void, adam_direction_norms, (double *pp_uu, const float *p, const float *g, float *m,       \
                                   float *v, size_t n, float beta1, float beta2, float eps,       \
                                   float wd, float gscale, float bc1, float bc2))                 \
    X(void, lamb_apply, (float *p, const float *m, const float *v, size_t n, float step_size,      \
                         float eps, float wd, float bc1, float bc2))                              \
    X(void, momentum_update, (float *p, const float *g, float *m, size_t n, float lr, float mu,   \
                              float wd, float gscale))                                            \
    /* mse_forward returns the mean */                                                            \
    X(float, mse_forward, (const float *pred, const float *target, size_t n))                     \
    X(void, mse_backward, (float *dpred, const float *pred, const float *target, float dloss,     \
                           size_t n))                                                             \
    /* linear-chain CRF, B sequences of T steps over K tags, transitions (K+2,K+2) (see           \
       bert_crf_nll): the forward writes each sequence's NLL and returns the mean over those of   \
       length > 0 (work: B doubles); the backward takes work of B*(2*T*K + (K+2)*(K+2)) doubles */ \
    X(float, crf_forward, (float *nll, const float *emit, const float *trans, const int32_t *tags, \
                           const int32_t *lengths, int B, int T, int K, double *work))            \
    X(void, crf_backward, (float *demit, float *dtrans, const float *emit, const float *trans,    \
                           const int32_t *tags, const int32_t *lengths, float dloss, int B, int T, \
                           int K, double *work))                                                  \
    /* out (B,N,M) = inp (B,M,N) with the last two dims swapped; the backward adds dout swapped   \
       back */                                                                                    \
    X(void, transpose_forward, (float *out, const float *inp, int B, int M, int N))               \
    X(void, transpose_backward, (float *dinp, const float *dout, int B, int M, int N))

typedef struct bert_kernels {
    const char *name;
    const struct bert_memory *mem;   // where the float pointers live: host (CPU) or a device's
#define BERT__KERNEL_FIELD(ret, name, args) ret(*name) args;
    BERT_KERNELS(BERT__KERNEL_FIELD)
#undef BERT__KERNEL_FIELD
} bert_kernels;

BERTDEF const bert_kernels *bert_cpu_kernels(void);
BERTDEF const bert_kernels *bert_cpu_bf16_kernels(void);
/* The CPU table with bf16 mixed precision for training: the linear layers' forward and both backward
   GEMMs take bf16-rounded inputs (round to nearest even; weights from the fp32 master copy each call)
   and sum in fp32 (AMX-BF16 tiles, AVX512-BF16 vdpbf16ps, or plain C: bert_bf16_kernel_name); all
   else is the fp32 table's. Host memory, the same models and contexts: bert_ctx_create_on(it, bytes). */
BERTDEF const bert_kernels *bert_measure_kernels(void);
/* Counts instead of computing: memory that is never allocated, kernels that do nothing (results
   read as zeros). Build a step on bert_ctx_create_on(bert_measure_kernels(), 0) with a real model
   and bert_ctx_high_water says what its activations need, before any is allocated. */
BERTDEF void bert_sgemm_naive(int trans_a, int trans_b, int M, int N, int K, float alpha,
                              const float *A, int lda, const float *B, int ldb, float beta,
                              float *Cm, int ldc);   // the oracle: C = alpha op(A) op(B) + beta C
BERTDEF const char *bert_sgemm_kernel_name(void);   // which microkernel was compiled in
BERTDEF void bert_cpu_workspace_free(void);         // the calling thread's sgemm packing buffers
BERTDEF uint64_t bert_rng_stream(uint64_t seed, uint64_t step, uint64_t site);
BERTDEF float bert_rng_uniform(uint64_t stream, uint64_t i);  // [0,1), 24 random bits
BERTDEF uint64_t bert_rng_bits(uint64_t stream, uint64_t i);  // 64 random bits (shuffles, sampling)

// ----------------------------------------------------------------------------
// ops: compute now, record a tape node when ctx->grad_enabled

BERTDEF bert_tensor *bert_embed(bert_ctx *ctx, bert_tensor *wte, bert_tensor *wpe, bert_tensor *wtt,
                                const int32_t *ids, const int32_t *types, int B, int T);  // (B,T,C)
// wte[ids] + wpe[t] + wtt[types]; wpe NULL: no position term (NEZHA), types NULL: type 0
BERTDEF bert_tensor *bert_linear(bert_ctx *ctx, bert_tensor *x, bert_tensor *w, bert_tensor *b);
// x (..., IC), w (OC, IC), b (OC) or NULL -> (..., OC)
BERTDEF bert_tensor *bert_layernorm(bert_ctx *ctx, bert_tensor *x, bert_tensor *w, bert_tensor *b,
                                    float eps);
BERTDEF bert_tensor *bert_attention(bert_ctx *ctx, bert_tensor *qkv, const int32_t *mask, int NH,
                                    float drop_p);
// qkv (B,T,3C), mask (B,T) of 0/1 or NULL -> (B,T,C); additive mask (1-mask)*-10000 on keys
BERTDEF bert_tensor *bert_attention_relative(bert_ctx *ctx, bert_tensor *qkv, const int32_t *mask, int NH,
                                             float drop_p, bert_tensor *rel);
// the same with NEZHA's relative positions (bert_relpos): rel (2K+1, C/NH), a parameter (learned,
// it gets a gradient) or a table without grad (bert_relative_table); NULL = bert_attention
BERTDEF bert_tensor *bert_relative_table(bert_ctx *ctx, int K, int HS);
// the fixed sinusoid table (2K+1, HS) in the context (no gradient): R[p][2k] = sin(p / 10000^(2k/HS)),
// R[p][2k+1] = cos(same), p = 0..2K (the shifted index, as the released code, not the distance)
BERTDEF bert_tensor *bert_gelu(bert_ctx *ctx, bert_tensor *x, bert_act act);
BERTDEF bert_tensor *bert_tanh(bert_ctx *ctx, bert_tensor *x);
BERTDEF bert_tensor *bert_add(bert_ctx *ctx, bert_tensor *a, bert_tensor *b);
BERTDEF bert_tensor *bert_scale(bert_ctx *ctx, bert_tensor *x, float alpha);  // alpha * x
BERTDEF bert_tensor *bert_dropout(bert_ctx *ctx, bert_tensor *x, float p);  // identity unless training
BERTDEF bert_tensor *bert_softmax_xent(bert_ctx *ctx, bert_tensor *logits, const int32_t *labels,
                                       int ignore_index);
// logits (N,V), labels (N) -> scalar mean loss over rows whose label != ignore_index (0 if none)
BERTDEF bert_tensor *bert_gather(bert_ctx *ctx, bert_tensor *x, const int32_t *rows, int M);
// x (N,C) viewed as rows, rows (M) in [0,N) -> (M,C)
BERTDEF void bert_tensor_set_name(bert_ctx *ctx, bert_tensor *t, const char *fmt, int i);

// ----------------------------------------------------------------------------
// autograd

BERTDEF void bert_backward(bert_ctx *ctx, bert_tensor *loss);
// Seeds dloss = 1 and walks the tape in reverse; grads accumulate into params' grad buffers.
BERTDEF void bert_backward_scaled(bert_ctx *ctx, bert_tensor *loss, float weight);
/* The same with dloss = weight. GRADIENT ACCUMULATION, the one rule: a step's gradient is
   sum_k w_k * grad(loss_k) over its micro-batches, the weights summing to 1 -- w_k = 1/A for A
   micro-batches of equal size, or each micro-batch's share of the step's loss terms (pretraining's
   masked positions). Backward calls only add, so call this once per micro-batch with its weight,
   then bert_optim_step once; the optimizer takes the summed grads as they are. */

// ----------------------------------------------------------------------------
// model

#define BERT__FIELD(f, d0, d1, name, decay) bert_tensor *f;
typedef struct {
    BERT_PARAMS_LAYER(BERT__FIELD)
    bert_tensor qkv_w;   // (3C, C) view of q_w|k_w|v_w
    bert_tensor qkv_b;   // (3C) view of q_b|k_b|v_b
} bert_layer_weights;

typedef struct {
    BERT_PARAMS_EMB(BERT__FIELD)
    bert_layer_weights *layer;   // (L)
    BERT_PARAMS_HEAD(BERT__FIELD)
} bert_weights;

typedef struct bert_model {
    bert_config config;
    size_t num_params;           // floats in each flat buffer
    float *params;               // (num_params) weights, table order
    float *grads;                // (num_params) same layout
    int num_tensors;             // PE + L*PL + PH, then any task heads added
    int num_base_tensors;        // the table's present rows (PE + L*PL + PH for BERT)
#define BERT_MAX_ADDED_TENSORS 16  // task-head tensors bert_model_add_tensor can append
    bert_tensor *tensors;        // (num_tensors) views into params/grads, table order
    char **names;                // (num_tensors) HF names
    unsigned char *decay;        // (num_tensors) 1 if weight decay applies
    bert_weights w;              // named views
    const struct bert_kernels *k;  // whose memory params/grads are in: NULL = host (bert_model_to)
    struct bert_qweight *quant;  // (L*4) int8 copies of each layer's qkv, attn out, ffn up, ffn down
                                 // weights for inference (bert_model_quantize); NULL: fp32
} bert_model;

BERTDEF bert_model *bert_model_create(const bert_config *cfg, uint64_t seed);
// Allocates and initialises as google-research/bert: truncated normal (2 std) with std
// initializer_range for matrices and embeddings, LayerNorm gamma 1, biases 0. NULL on failure.
BERTDEF void bert_model_free(bert_model *m);
typedef enum { BERT_PRECISION_FP32, BERT_PRECISION_BF16, BERT_PRECISION_INT8 } bert_precision;
BERTDEF int bert_model_quantize(bert_model *m, bert_precision p);
/* Low-precision inference: copies of the encoder layers' four weight matrices in int8 (symmetric per
   output channel) or bf16 (rounded to nearest even), used by bert_encode on a ctx without tape or
   dropout. INT8: activations quantised per token as they go, integer GEMM on AVX512-VNNI's vpdpbusd;
   BF16: activations rounded to bf16, AVX512-BF16's vdpbf16ps, sums in fp32. Without those
   instructions in the build the plain C kernels run (correct, slower than fp32: see
   bert_int8_kernel_name / bert_bf16_kernel_name). Attention, LayerNorm, softmax, embeddings and
   heads stay fp32. Call once the weights are final (bert_optim_step and bert_model_load_weights drop
   the copies); BERT_PRECISION_FP32 drops them too. Host models only. BERT_OK, BERT_ERR_ARG (on a
   device) or BERT_ERR_OOM. */
BERTDEF void bert_model_dequantize(bert_model *m);   // drops the copies (fp32 inference again)
BERTDEF const char *bert_int8_kernel_name(void);     // "avx512-vnni 12x32" or "plain C 12x32"
BERTDEF const char *bert_bf16_kernel_name(void);     // "avx512-bf16 12x32" or "plain C 12x32"
BERTDEF void bert_model_zero_grad(bert_model *m);
BERTDEF int bert_model_find(const bert_model *m, const char *hf_name);  // tensor index or -1
/* Appends a task head's tensor (e.g. "classifier.weight", (num_labels, C)) to the table, so the
   optimizer, grads and checkpoints cover it: a (d0,d1) matrix, or a vector when d1 = 0. Matrices get
   Google's init (truncated normal, initializer_range) from seed, vectors zeros; decay 1 applies
   weight decay. Call before bert_optim_init. Returns the tensor (the pointer stays valid; its data
   moves with each add), or NULL (bert_last_error()). At most BERT_MAX_ADDED_TENSORS. */
BERTDEF bert_tensor *bert_model_add_tensor(bert_model *m, const char *hf_name, int d0, int d1, int decay, uint64_t seed);

BERTDEF bert_tensor *bert_encode(bert_ctx *ctx, bert_model *m, const int32_t *ids,
                                 const int32_t *types, const int32_t *mask, int B, int T);
// -> (B,T,C). Names its intermediates "emb", "layer.%d.qkv", ".ctx", ".attn_ln", ".ffn_act", "layer.%d".
/* With ctx->remove_padding on an inference ctx, the tokens whose mask is 0 are dropped after the
   embeddings (FasterTransformer's "remove padding"): every token-wise op runs on the real tokens of
   the batch packed together, attention runs per sequence over its real tokens; the real rows of the
   result are the padded path's (to float rounding: masked keys weigh exp(-10000) = 0 there), the
   padded rows are 0. */
BERTDEF bert_tensor *bert_pool(bert_ctx *ctx, bert_model *m, bert_tensor *seq);      // -> (B,C)

// ----------------------------------------------------------------------------
// device memory: the hook that lets a kernel table on an accelerator (bert_cuda.h) keep tensors in
// its own memory. A table names the memory its float pointers live in; the CPU table's is host
// memory, where all of the above is plain pointers. A device's memory is touched only by its
// kernels, and bert.h moves bytes through these functions: a ctx from bert_ctx_create_on keeps the
// activation floats in a device arena (tensor headers, names and integer copies stay on the host),
// bert_model_to moves params and grads, bert_optim_init puts the moments beside them, checkpoints
// are read and written through host copies. For every table, integer arrays (ids, labels, rows) and
// scalar results (a returned loss, LAMB's norms) are host values.

typedef struct bert_memory {
    int device;                                         // 1: host code must never dereference it
    void *(*alloc)(size_t bytes);                       // NULL on failure
    void (*release)(void *p);
    void (*zero)(void *p, size_t bytes);
    void (*upload)(void *dst, const void *host_src, size_t bytes);
    void (*download)(void *host_dst, const void *src, size_t bytes);   // the bytes are there on return
    void (*copy)(void *dst, const void *src, size_t bytes);            // within this memory, no overlap
} bert_memory;

BERTDEF bert_ctx *bert_ctx_create_on(const bert_kernels *k, size_t arena_bytes);
// bert_ctx_create on kernel table k; with a device table, arena_bytes of device memory.
BERTDEF int bert_model_to(bert_model *m, const bert_kernels *k);
/* Moves params and grads into k's memory (back to the host with bert_cpu_kernels()). Create or load
   the model and add task heads first, then move it, then bert_optim_init. BERT_OK, or BERT_ERR_OOM
   with m unchanged. */
BERTDEF void bert_copy_to_host(const bert_kernels *k, void *host_dst, const void *src, size_t bytes);
BERTDEF void bert_copy_from_host(const bert_kernels *k, void *dst, const void *host_src, size_t bytes);
// bytes between the host and k's memory (k NULL or the CPU table: memcpy)
BERTDEF float bert_tensor_item(const bert_ctx *ctx, const bert_tensor *t);   // t's first value (a loss)
BERTDEF void bert_tensor_read(const bert_ctx *ctx, const bert_tensor *t, float *host_dst);
// all of t's numel values into host_dst (logits for metrics, embeddings for output), from any memory
BERTDEF void bert_tensor_argmax(const bert_ctx *ctx, const bert_tensor *t, int32_t *host_dst);
// t viewed as rows of its last dim: each row's argmax (the first on ties) into host_dst (numel/last dim)

// ----------------------------------------------------------------------------
// pretraining heads: masked LM (transform + decoder tied to the word embeddings) and next sentence,
// as google-research/bert's run_pretraining.py

typedef struct {
    int B, T, MP;
    const int32_t *input_ids;            // (B,T)
    const int32_t *token_type_ids;       // (B,T) or NULL (all 0)
    const int32_t *attention_mask;       // (B,T) 1 = token, 0 = padding; NULL = all 1
    const int32_t *masked_lm_positions;  // (B,MP) positions in [0,T)
    const int32_t *masked_lm_ids;        // (B,MP) label ids, -100 = unused slot
    const int32_t *next_sentence_label;  // (B) 0 = is next, 1 = random
} bert_batch;

typedef struct {
    bert_tensor *sequence;    // (B,T,C) last layer
    bert_tensor *pooled;      // (B,C)
    bert_tensor *mlm_logits;  // (B*MP,V)
    bert_tensor *nsp_logits;  // (B,2)
    bert_tensor *mlm_loss, *nsp_loss, *loss;   // scalars; loss = mlm + nsp
} bert_pretrain_out;

BERTDEF bert_pretrain_out bert_pretrain_forward(bert_ctx *ctx, bert_model *m, const bert_batch *b);

// ----------------------------------------------------------------------------
// sequence classification: HF BertForSequenceClassification's head (dropout + dense on the pooled
// output); softmax cross-entropy for K >= 2 labels, mean squared error for K = 1 (regression, STS-B)

BERTDEF bert_tensor *bert_mse(bert_ctx *ctx, bert_tensor *pred, const float *target);
// pred (n elements, any shape), target (n) -> scalar mean of (pred - target)^2, as torch's MSELoss
/* Appends "classifier.weight" (num_labels, C) (Google's init from seed, weight decay on) and
   "classifier.bias" (num_labels, zeros) with bert_model_add_tensor; num_labels = 1 is regression.
   Call before bert_optim_init. BERT_OK, or BERT_ERR_ARG with bert_last_error(). */
BERTDEF int bert_classifier_add(bert_model *m, int num_labels, uint64_t seed);
BERTDEF int bert_classifier_num_labels(const bert_model *m);   // K, or 0 when m has no classifier

typedef struct {
    bert_tensor *pooled;   // (B,C)
    bert_tensor *logits;   // (B,K) class scores, or (B,1) predicted values when K = 1
    bert_tensor *loss;     // scalar; NULL when the labels (K >= 2) or targets (K = 1) are NULL
} bert_classify_out;

/* Encoder, pooler, dropout(hidden_dropout_prob) on the pooled output (the dropout site after the
   encoder's 1 + 3L), classifier. K >= 2: softmax cross-entropy against labels (B), the mean over
   rows whose label != -100. K = 1: MSE of logits (B,1) against targets (B). */
BERTDEF bert_classify_out bert_classify_forward(bert_ctx *ctx, bert_model *m, const int32_t *ids,
                                                const int32_t *types, const int32_t *mask, int B, int T,
                                                const int32_t *labels, const float *targets);

// ----------------------------------------------------------------------------
// token classification (examples/ner.c): HF BertForTokenClassification's head, dropout + a dense
// C -> K over every token ("classifier.*"), with softmax cross-entropy, or with a linear-chain CRF
// (bert_crf_nll, "crf.transitions") over each sequence's tokens after [CLS]

/* Appends "classifier.weight" (num_labels, C) and "classifier.bias" (num_labels) as
   bert_classifier_add and, when crf is non-zero, "crf.transitions" (num_labels+2, num_labels+2)
   drawn from U(-0.1, 0.1) as pytorch-crf does, without weight decay. Call before bert_optim_init.
   BERT_OK, or BERT_ERR_ARG with bert_last_error(). */
BERTDEF int bert_token_classifier_add(bert_model *m, int num_labels, int crf, uint64_t seed);

typedef struct {
    bert_tensor *sequence;    // (B,T,C) last layer
    bert_tensor *logits;      // (B,T,K) every token's tag scores
    bert_tensor *emissions;   // CRF: (B,Tc,K) the logits of tokens 1..lengths[b], Tc the longest (>= 1); else NULL
    bert_tensor *loss;        // scalar; NULL when labels are NULL
} bert_token_classify_out;

/* Encoder, dropout (p; < 0: hidden_dropout_prob, as HF's classifier_dropout None) on every token
   (the dropout site after the encoder's 1 + 3L), classifier. labels (B,T): each token's tag in
   [0,K), -100 for none ([CLS], [SEP], padding). Softmax (no crf.transitions in m): loss = the
   cross-entropy's mean over the tokens whose label is not -100; lengths may be NULL. CRF: sequence
   b's chain is its tokens 1..lengths[b] (lengths (B) in [0,T-1], needed; their labels are the
   tags), loss = the mean NLL over the sequences with length > 0. */
BERTDEF bert_token_classify_out bert_token_classify_forward(bert_ctx *ctx, bert_model *m, const int32_t *ids,
                                                            const int32_t *types, const int32_t *mask, int B, int T,
                                                            float p, const int32_t *labels, const int32_t *lengths);
/* The predicted tags (B,T) of o's tokens 1..lengths[b]: each token's argmax (the lower id on ties)
   or, with the CRF, the Viterbi path (bert_crf_decode); -1 at the other tokens. Reads tensors in
   any memory. BERT_OK or BERT_ERR_OOM. */
BERTDEF int bert_token_classify_decode(const bert_ctx *ctx, const bert_model *m, const bert_token_classify_out *o,
                                       const int32_t *lengths, int32_t *tags);

// ----------------------------------------------------------------------------
// span head (SQuAD): HF BertForQuestionAnswering's "qa_outputs", a dense C -> 2 over every token
// giving start and end logits, and run_squad's loss, the mean of the start and end cross-entropies

BERTDEF bert_tensor *bert_transpose(bert_ctx *ctx, bert_tensor *x);
// x (..., M, N) -> (..., N, M), the last two dims swapped (a copy)
/* Appends "qa_outputs.weight" (2, C) (Google's init from seed, weight decay on) and "qa_outputs.bias"
   (2, zeros) with bert_model_add_tensor. Call before bert_optim_init. BERT_OK or BERT_ERR_ARG. */
BERTDEF int bert_span_head_add(bert_model *m, uint64_t seed);

typedef struct {
    bert_tensor *sequence;   // (B,T,C) last layer
    bert_tensor *logits;     // (B,2,T): row 2b holds example b's start logits, row 2b+1 its end logits
    bert_tensor *loss;       // scalar; NULL when start/end are NULL
} bert_span_out;

/* Encoder, then qa_outputs on every token (no dropout in between, as HF and run_squad). With start
   and end (B) in [0,T) (0, the [CLS] token, when the answer is outside the window): loss =
   (mean CE(start logits, start) + mean CE(end logits, end)) / 2, a softmax over all T positions. */
BERTDEF bert_span_out bert_span_forward(bert_ctx *ctx, bert_model *m, const int32_t *ids,
                                        const int32_t *types, const int32_t *mask, int B, int T,
                                        const int32_t *start, const int32_t *end);

// ----------------------------------------------------------------------------
// linear-chain CRF for sequence tagging (examples/ner.c): an op with its backward, and Viterbi.
// Transitions are one (K+2, K+2) tensor, row = from, column = to, over the K tags, then START = K
// and STOP = K+1. A path y of n tags scores
//     tr[START,y0] + sum_t em[t,y_t] + sum_{t>0} tr[y_{t-1},y_t] + tr[y_{n-1},STOP]
// and p(y) = exp(score(y)) / Z. Column START and row STOP are never read (their grads stay 0).
// pytorch-crf's three tensors are slices of it: start_transitions = tr[K,:K], end_transitions =
// tr[:K,K+1], transitions = tr[:K,:K].

// emissions (B,T,K), transitions (K+2,K+2), tags (B,T) in [0,K) for t < lengths[b], lengths (B)
// in [0,T] -> scalar: the mean over sequences with length > 0 of -log p(tags) (0 if none).
// The forward algorithm in log space, in double; the backward from forward-backward marginals.
BERTDEF bert_tensor *bert_crf_nll(bert_ctx *ctx, bert_tensor *emissions, bert_tensor *transitions,
                                  const int32_t *tags, const int32_t *lengths);
/* Viterbi: tags (B,T) gets each sequence's highest-scoring path (ties: the lower tag id), -1 past
   its length. No tape; reads the tensors' data on the host (download device tensors first).
   BERT_OK or BERT_ERR_OOM. */
BERTDEF int bert_crf_decode(const bert_tensor *emissions, const bert_tensor *transitions,
                            const int32_t *lengths, int32_t *tags);

// ----------------------------------------------------------------------------
// optimizers

typedef enum { BERT_OPTIM_ADAMW_GB, BERT_OPTIM_ADAMW, BERT_OPTIM_LAMB, BERT_OPTIM_MOMENTUM } bert_optim_type;

typedef struct {
    bert_optim_type type;
    float lr;                  // peak learning rate
    float end_lr;              // polynomial decay target (0)
    float poly_power;          // 1.0 = linear decay
    int warmup_steps;          // linear warmup from 0
    int total_steps;           // decay horizon
    float beta1, beta2, eps;   // Adam/LAMB
    float weight_decay;        // decoupled; never applied to LayerNorm or bias tensors
    float momentum;            // SGD momentum
    float clip_norm;           // global-norm clipping threshold, <= 0 disables (1.0)
    int bias_correction;       // divide m, v by 1-beta^t (standard AdamW: 1; Google/LAMB: 0)
    int lamb_exclude_ln_bias;  // LAMB: LayerNorm/bias tensors get trust ratio 1 (Google: 1)
    float grad_scale;          // the grads hold this times the true gradient (a loss scale; 0 or 1: none):
                               // the norm, clipping and update divide it out
    // state
    uint64_t step;             // updates done
    size_t n;
    float *m, *v;              // (n) moments, same layout as params
    float last_lr, last_grad_norm;
    const struct bert_kernels *k;  // the model's at bert_optim_init: moments live in its memory
    const struct bert_comm *comm;  // data parallel: grads summed over its ranks first (NULL: one process)
    double last_comm_s;            // seconds the last step spent in that sum
} bert_optim;

BERTDEF bert_optim bert_optim_defaults(bert_optim_type type);
BERTDEF int bert_optim_init(bert_optim *o, const bert_model *m);   // allocates zeroed moments
BERTDEF void bert_optim_free(bert_optim *o);
BERTDEF float bert_optim_lr(const bert_optim *o, uint64_t step);
// Google create_optimizer: decayed = (lr-end)*(1-min(s,total)/total)^power + end, and
// lr*s/warmup while s < warmup, where s = updates done before this one.
BERTDEF int bert_optim_step(bert_optim *o, bert_model *m);
// Clip the grads (as accumulated, see bert_backward_scaled; divided by grad_scale) to clip_norm, one
// update; sets last_lr and last_grad_norm (of the true gradient).
// A NaN/Inf gradient norm skips the update (step not counted) and returns BERT_ERR_NONFINITE.
BERTDEF const char *bert_optim_name(bert_optim_type type);
BERTDEF int bert_optim_parse(bert_optim_type *type, const char *name);   // the inverse; BERT_ERR_ARG

// ----------------------------------------------------------------------------
// communication: the seam data-parallel training stands on, filled like the kernel table. Every
// rank holds the whole model and takes its share of each batch; bert_optim_step with o->comm set
// first sums the grads over the ranks (each rank's backward weighted by its share of the global
// batch, see bert_backward_scaled), so clipping and the update then run identically everywhere.
// bert.h stays single-process: bert_comm_single() is that (every call a no-op). bert_mpi.h fills
// the table with MPI (between processes and machines), bert_cuda.h with NCCL (device buffers).

typedef struct bert_comm {
    const char *name;
    int rank, size;            // this process's rank in [0, size)
    int device;                // 1: the float buffers are in the device memory of bert_cuda.h's table
    // in-place sums over the ranks; BERT_OK, or an error (BERT_ERR_IO over MPI, BERT_ERR_DEVICE over
    // NCCL): the job cannot go on
    int (*allreduce_sum)(const struct bert_comm *c, float *buf, size_t n);
    int (*allreduce_sum_f64)(const struct bert_comm *c, double *buf, size_t n);   // host: metrics, flags
    int (*broadcast)(const struct bert_comm *c, void *host_buf, size_t bytes, int root);
    int (*barrier)(const struct bert_comm *c);
    void (*abort)(const struct bert_comm *c, int code);   // ends every rank (no return), or returns on one
    void *impl;
} bert_comm;

BERTDEF const bert_comm *bert_comm_single(void);
BERTDEF int bert_comm_allreduce_model(const bert_comm *c, const struct bert_kernels *k, float *buf, size_t n);
// the sum of a buffer in k's memory (params, grads, moments), staged through the host when k's
// memory is a device's and c's is not

// ----------------------------------------------------------------------------
// utils for command-line programs: a flag table parser (the examples share it)

typedef enum { BERT_FLAG_INT, BERT_FLAG_FLOAT, BERT_FLAG_STR, BERT_FLAG_BOOL, BERT_FLAG_LIST } bert_flag_type;
typedef struct { const char *items[64]; int count; } bert_flag_list;   // a repeatable flag's values
typedef struct {
    const char *name;        // without the leading "--"
    bert_flag_type type;
    void *value;             // int*, float*, const char**, int* (bool), bert_flag_list*
    const char *help;        // one line; the default is printed from *value
} bert_flag;

/* Parses "--name value" / "--name=value" (a bool flag alone means 1; "=0" / "=1" also work) into
   the table's variables. BERT_OK; 1 if -h or --help was given; BERT_ERR_ARG with bert_last_error()
   naming the flag ("unknown flag --x", "--lr: 'abc' is not a number", "--input: given over 64 times"). */
BERTDEF int bert_flags_parse(const bert_flag *flags, int nflags, int argc, char **argv);
BERTDEF void bert_flags_usage(void *file, const bert_flag *flags, int nflags);   // FILE*; one line per flag
#define BERT_MAX_TEXT_BYTES ((size_t)100 << 20)   // the JSON reader's text limit (and safetensors headers')
/* A whole file into memory, NUL-terminated (*size excludes the NUL); BERT_FREE it. Directories and
   unreadable files are BERT_ERR_IO "PATH: why". */
BERTDEF int bert_read_file(const char *path, unsigned char **data, size_t *size);
/* Opens an input file for reading (a FILE*, NULL + bert_last_error()). Regular files only: FIFOs,
   sockets, devices and directories are refused ("PATH: not a regular file (a FIFO)") before any read
   could block on a FIFO with no writer or run forever on /dev/zero. Every library reader uses it. */
BERTDEF void *bert_open_input(const char *path);
/* Atomic output, what every library writer uses and programs should too: bert_atomic_open creates
   PATH.tmp exclusively (O_CREAT|O_EXCL|O_NOFOLLOW: a stale temp file or a symlink planted at that
   name is unlinked, never written through) and a->file is a FILE* to write to; bert_atomic_close(a,
   path, ok) with ok = every write succeeded flushes, fsyncs, closes and renames it over path (and
   fsyncs the directory; on Windows _commit, then MoveFileEx replacing path, written through), or
   removes it (ok = 0, or any of that failing): path then keeps what it held. Both return BERT_OK
   or BERT_ERR_IO "PATH: why" (e.g. "No space left on device"). */
typedef struct { void *file; char *tmp; } bert_atomic_file;
BERTDEF int bert_atomic_open(bert_atomic_file *a, const char *path);
BERTDEF int bert_atomic_close(bert_atomic_file *a, const char *path, int ok);
BERTDEF int bert_unicode_final_sigma(const uint32_t *cps, size_t n, size_t i);
// 1 when U+03A3 at cps[i] (of n code points) lowers to U+03C2 by Python's str.lower() (Final_Sigma)
// for progress lines and summaries
BERTDEF double bert_time_s(void);          // seconds on the C11 wall clock (timespec_get; Windows: the system time): subtract two readings
BERTDEF double bert_peak_rss_mib(void);    // this process's peak resident memory (Linux /proc; Windows: peak working set), -1 where unknown
BERTDEF const char *bert_format_duration(char *buf, size_t n, double s);   // "42s", "3m05s", "1h02m"; "?" if s < 0 or NaN
// ----------------------------------------------------------------------------
// checkpoints: safetensors with HF BertForPreTraining names, config in __metadata__

BERTDEF int bert_model_save(const bert_model *m, const char *path);
BERTDEF int bert_model_save_finetuned(const bert_model *m, const char *path);
/* bert_model_save without the pretraining heads (cls.*): a fine-tuned model as transformers' task
   classes (BertForSequenceClassification, ...) hold it, no tensor unexpected to them. Load it back
   with bert_model_load_encoder, where the heads are optional. */
BERTDEF bert_model *bert_model_load(const char *path, const bert_config *cfg_or_null);
/* The config a checkpoint's weights need: its __metadata__ "config", else *given (may be NULL), else a
   bert_config.json/config.json beside it; BERT_ERR_FORMAT when the file holds too little tensor data
   for the encoder that config describes (check this before bert_model_create + load_encoder). */
BERTDEF int bert_checkpoint_config(bert_config *cfg, const char *path, const bert_config *given);
// Config from the file's __metadata__ "config", else from cfg_or_null, else from
// bert_config.json / config.json beside the file. Every tensor is checked; NULL + message on error.
BERTDEF int bert_model_load_weights(bert_model *m, const char *path);   // into an existing model
// (both: a file with none of the pretraining heads, as bert_model_save_finetuned writes, loads; the
// heads keep their values)
/* The same for fine-tuning from a pretrained checkpoint: tensors of added heads and of the
   pretraining heads (cls.*) that the file lacks keep their values; their count goes to *missing
   (may be NULL). The encoder must be complete. */
BERTDEF int bert_model_load_encoder(bert_model *m, const char *path, int *missing);
BERTDEF int bert_optim_save(const bert_optim *o, const bert_model *m, const char *path,
                            const char *const *extra_kv, int extra_pairs);
// extra_kv: the caller's own metadata (key, value, ...), e.g. a data cursor; read it back with
// bert_st_open + bert_st_meta. Keys "format", "optimizer", "step", "hparams" are taken.
BERTDEF int bert_optim_load(bert_optim *o, const bert_model *m, const char *path);

// ----------------------------------------------------------------------------
// JSON and safetensors

/* ---- JSON reader (DOM) -------------------------------------------------------------------
   Strict RFC 8259. Text limit 100 MB, nesting limit 64, numbers limited to 255 characters and
   to the range of a double. Strings are unescaped to UTF-8 (\uXXXX incl. surrogate pairs);
   raw UTF-8 is validated, lone surrogates are rejected. Duplicate object keys are kept
   (bert_json_get returns the last, as Python's json module and transformers read them). The whole tree is one allocation: free only the root. */

typedef enum { BERT_JSON_NULL, BERT_JSON_FALSE, BERT_JSON_TRUE, BERT_JSON_NUMBER,
               BERT_JSON_STRING, BERT_JSON_ARRAY, BERT_JSON_OBJECT } bert_json_type;
typedef struct bert_json {
    bert_json_type type;
    double number;            /* BERT_JSON_NUMBER */
    char *string;             /* BERT_JSON_STRING: NUL-terminated UTF-8 (may hold \u0000: see string_len) */
    size_t string_len;
    char *key;                /* member key when this node is an object member, else NULL */
    int count;                /* number of children for ARRAY/OBJECT */
    struct bert_json *child;  /* `count` contiguous children (NULL when count == 0) */
} bert_json;

/* Parses len bytes of text into *out. BERT_OK, or BERT_ERR_FORMAT "json: <problem> at byte N"
   (or BERT_ERR_OOM). *out is NULL on failure. */
BERTDEF int bert_json_parse(bert_json **out, const char *text, size_t len);
BERTDEF void bert_json_free(bert_json *root);   /* root from bert_json_parse; NULL is fine */
/* First member named key of an object; NULL if obj is NULL, not an object, or has no such key. */
BERTDEF const bert_json *bert_json_get(const bert_json *obj, const char *key);

/* ---- safetensors ---------------------------------------------------------------------------
   File: u64 LE header length N, N bytes of JSON header, data buffer (offsets relative to it). */
typedef enum { BERT_DT_F32, BERT_DT_F16, BERT_DT_BF16, BERT_DT_F64, BERT_DT_I32, BERT_DT_I64,
               BERT_DT_U8, BERT_DT_I8, BERT_DT_BOOL, BERT_DT_COUNT } bert_dtype;
typedef struct { char *name; bert_dtype dtype; int ndim; int64_t shape[8]; size_t numel; size_t begin, end; } bert_st_tensor;
typedef struct {
    char *path;                  /* copy of the path (for messages) */
    unsigned char *data;         /* start of the data buffer (inside `file`) */
    unsigned char *file; size_t file_size, data_size;
    int count; bert_st_tensor *tensors;   /* in header order */
    int meta_count; char **meta_keys; char **meta_values;
} bert_st;

/* Reads the whole file into memory and validates the header and every tensor entry (dtype, shape,
   offsets inside the data buffer and consistent with dtype*numel, no overlaps, no duplicate names,
   string-only __metadata__). Codes: BERT_ERR_IO (open/read), BERT_ERR_DTYPE (unsupported dtype),
   BERT_ERR_FORMAT (anything else), BERT_ERR_OOM. On failure *st is zeroed; no need to close. */
BERTDEF int bert_st_open(bert_st *st, const char *path);
BERTDEF void bert_st_close(bert_st *st);        /* frees everything; safe on a zeroed struct */
BERTDEF const bert_st_tensor *bert_st_find(const bert_st *st, const char *name);   /* NULL if absent */
BERTDEF const char *bert_st_meta(const bert_st *st, const char *key);              /* NULL if absent */
/* Copies tensor `name` into dst (numel floats), requiring exactly the given shape (ndim 0 = scalar).
   Converts F32/F16/BF16/F64. Errors: BERT_ERR_MISSING, BERT_ERR_SHAPE, BERT_ERR_DTYPE, BERT_ERR_ARG. */
BERTDEF int bert_st_read_f32(const bert_st *st, const char *name, float *dst, const int64_t *shape, int ndim);
/* Same for int32 from I32 or I64; an I64 value outside int32 gives BERT_ERR_FORMAT. */
BERTDEF int bert_st_read_i32(const bert_st *st, const char *name, int32_t *dst, const int64_t *shape, int ndim);

typedef struct { const char *name; bert_dtype dtype; int ndim; int64_t shape[8]; const void *data; } bert_st_entry;
/* Writes entries (data in host layout, stored little-endian, in the given order) and metadata
   meta_kv = {k0, v0, k1, v1, ...} (meta_pairs pairs; none -> no __metadata__) to PATH.tmp, syncs
   it, and renames it over path. BERT_ERR_ARG for bad entries (bad dtype/shape, NULL data, duplicate
   or invalid UTF-8 names), BERT_ERR_IO "PATH: <reason>" for I/O errors (temp file removed). */
BERTDEF int bert_st_save(const char *path, const bert_st_entry *entries, int count,
                         const char *const *meta_kv, int meta_pairs);
BERTDEF const char *bert_dtype_name(bert_dtype dt);   /* "F32", ...; "?" if out of range */
BERTDEF size_t bert_dtype_size(bert_dtype dt);        /* bytes per element; 0 if out of range */

// ----------------------------------------------------------------------------
// tokenizer: google-research/bert's tokenization.py (BasicTokenizer, then WordpieceTokenizer),
// id for id. Text is UTF-8; every invalid sequence is dropped, as decoding with errors="replace"
// and then _clean_text do. The basic tokenizer drops U+0000, U+FFFD and control characters,
// splits on whitespace, puts each CJK ideograph in a word of its own, then (do_lower_case) applies
// str.lower() (Final_Sigma included) and NFD with the nonspacing marks (Mn) removed, and splits off
// every punctuation character (Unicode P*, and ASCII !-/ :-@ [-` {-~). WordPiece then takes the
// longest vocab entry first, continuations spelled "##..."; a word of more than 200 code points
// (after normalisation), or one with no decomposition, becomes [UNK]. Character data: Python's unicodedata, Unicode
// 14.0.0 (tools/gen_unicode_tables.py). No global state: any number of threads may share a vocab.
//
// Two references, which differ in three rules (bert_vocab_set_mode picks one per vocab):
//                         dropped as control        longest word (max_   uncased, a final
//                         (_clean_text)             input_chars_per_word)  capital sigma becomes
//   BERT_TOKENIZE_GOOGLE  Cc, Cf                    200                    U+03C2 (Final_Sigma)
//   BERT_TOKENIZE_HF      every C*: Cc, Cf, Cn, Co  100                    U+03C3
// GOOGLE, the default, is google-research/bert's tokenization.py (master: Cc/Cf since 2019-03, 200
// since 2018-11). HF is Hugging Face transformers' (Python) BertTokenizer: it kept the first
// release's C* and 100, and its tokenize() lowercases the text one character at a time before the
// basic tokenizer, so str.lower()'s Final_Sigma never applies. So unassigned (Cn: U+0378, U+FDD0,
// U+FFFF, ...) and private-use (Co: U+E000-U+F8FF, planes 15-16) characters are ordinary characters
// under GOOGLE (in their word, usually [UNK]) and vanish under HF, and a word of 101-200 characters
// is WordPieces under GOOGLE and [UNK] under HF. Tab, newline and CR are whitespace in both (Cs
// cannot come from UTF-8). Not modelled: BertTokenizer's special and added tokens in the text
// ("[CLS]" written in a text stays one token there); BertTokenizerFast (Rust) differs further.

typedef enum { BERT_TOKENIZE_GOOGLE, BERT_TOKENIZE_HF } bert_tokenize_mode;

typedef struct {
    int size;                                      // tokens; a token's id is its line number - 1
    int pad_id, unk_id, cls_id, sep_id, mask_id;   // [PAD] [UNK] [CLS] [SEP] [MASK]; -1 if absent
    int max_len;                                   // the longest token, in bytes
    bert_tokenize_mode mode;                       // GOOGLE when loaded or built; bert_vocab_set_mode
    // internal
    char *text;                                    // the tokens, NUL-terminated, one block
    uint32_t *offset, *len;                        // (size) token id -> bytes in text
    int32_t *slot; uint32_t slot_mask;             // open-addressing hash table of ids (-1 = empty)
    uint32_t hash_seed;                            // per vocab: a crafted file cannot make its tokens collide
} bert_vocab;

/* Loads a vocab.txt: one token per line, each line str.strip()ped as load_vocab does (so the
   Chinese vocab's U+2028 line is the token ""). NULL on failure, bert_last_error() "PATH: why":
   missing file, empty file, invalid UTF-8, a NUL byte, a token over 1024 bytes, or a token that
   appears twice (both lines named). */
BERTDEF bert_vocab *bert_vocab_load(const char *path);
BERTDEF bert_vocab *bert_vocab_parse(const char *text, size_t len, const char *source); // same, from memory
BERTDEF void bert_vocab_free(bert_vocab *v);                                            // NULL is fine
BERTDEF int bert_vocab_size(const bert_vocab *v);
BERTDEF int bert_vocab_id(const bert_vocab *v, const char *tok, size_t len);   // -1 if absent
BERTDEF const char *bert_vocab_token(const bert_vocab *v, int id);             // NULL if out of range
/* The rules bert_tokenize and the corpus readers follow with this vocab: BERT_TOKENIZE_GOOGLE (the
   default) or BERT_TOKENIZE_HF (see above). BERT_OK, or BERT_ERR_ARG for a NULL vocab or another value.
   Set it before sharing the vocab between threads. */
BERTDEF int bert_vocab_set_mode(bert_vocab *v, bert_tokenize_mode mode);
/* Learns a WordPiece vocab of at most vocab_size tokens from a text, for pretraining on a new domain
   or language. The text is split into words exactly as bert_tokenize does (bert_basic_tokenize,
   do_lower_case alike, BERT_TOKENIZE_GOOGLE; words over 200 characters are left out: WordPiece
   makes them [UNK]). The vocab's mode is BERT_TOKENIZE_GOOGLE. Ids:
     0..4   [PAD] [UNK] [CLS] [SEP] [MASK] (Google's vocabs have them at 0, 100, 101, 102, 103; read
            them by name, v->pad_id ... v->mask_id, either way)
     then   every character seen, most frequent first, then the same characters as "##" continuations:
            every word of the text then tokenizes without [UNK] (if vocab_size - 5 cannot hold two
            entries per character, the rarest characters are left out)
     then   the pieces with the highest counts, up to vocab_size: a word's prefixes of 2+ characters
            (the whole word is one) and its "##" suffixes of 2+ characters after at least one, each
            counted once per occurrence of the word; pieces counted fewer than min_frequency times are
            left out, so the vocab may be smaller than vocab_size.
   Ties are broken by the tokens' byte order: the same text gives the same vocab, byte for byte.
   Memory: about 30 bytes per word of the text and 50 per character of its distinct words.
   NULL on failure, bert_last_error(): BERT_ERR_ARG for vocab_size outside [6, 16777216],
   min_frequency < 1, NULL text with len > 0, a text over 256 MB or one without words; BERT_ERR_OOM. */
BERTDEF bert_vocab *bert_vocab_build(const char *text, size_t len, int do_lower_case, int vocab_size, int min_frequency);
/* Writes v as vocab.txt (one token per line, id order) to PATH.tmp, syncs it and renames it over
   path: bert_vocab_load gives the same ids back. BERT_OK, BERT_ERR_ARG, BERT_ERR_IO "PATH: why". */
BERTDEF int bert_vocab_save(const bert_vocab *v, const char *path);

/* Tokenizes len bytes of text into WordPiece ids. Returns the number of ids, of which the first
   min(count, cap) are written (a count over cap means truncated), or -BERT_ERR_ARG (text over
   256 MB; a word became [UNK] but the vocab has none) / -BERT_ERR_OOM, with bert_last_error().
   do_lower_case: 1 for uncased models and Google's Chinese model, 0 for cased ones. No [CLS] or
   [SEP] is added. The rules are v->mode's (bert_vocab_set_mode). */
BERTDEF int bert_tokenize(const bert_vocab *v, int do_lower_case, const char *text, size_t len,
                          int32_t *ids, int cap);
/* The same, and where each id came from: text[begin[i], end[i]) are the bytes of the characters
   that produced piece i (a piece cut from inside one character, e.g. a Hangul syllable's jamo,
   gets that character's bytes; an [UNK] gets its whole word's). begin/end may be NULL. */
BERTDEF int bert_tokenize_spans(const bert_vocab *v, int do_lower_case, const char *text, size_t len,
                                int32_t *ids, int32_t *begin, int32_t *end, int cap);
/* The basic tokenizer alone: its words joined by single spaces (" ".join(BasicTokenizer.tokenize)),
   which is what SQuAD's answer projection compares. Writes at most cap bytes including a NUL and
   returns the length of the whole string (>= cap: truncated), or -BERT_ERR_ARG / -BERT_ERR_OOM. */
BERTDEF int bert_basic_tokenize(int do_lower_case, const char *text, size_t len, char *out, size_t cap);
/* The same under the given rules (bert_basic_tokenize is BERT_TOKENIZE_GOOGLE's; pass v->mode to
   match a vocab's); -BERT_ERR_ARG for a mode out of range. */
BERTDEF int bert_basic_tokenize_mode(bert_tokenize_mode mode, int do_lower_case, const char *text, size_t len,
                                     char *out, size_t cap);

// ----------------------------------------------------------------------------
// TFRecord: the pretraining data of google-research/bert and the model zoos. A file is a run of
// records [u64 length][u32 masked crc32c of length][data][u32 masked crc32c of data], each data a
// tf.train.Example with the features below (in any order; other features are ignored).

typedef struct {
    void *file;                 // FILE*
    char *path;
    uint64_t size;              // bytes in the file
    uint64_t offset;            // where the next record starts
    uint64_t record;            // index of the next record (0-based)
    int eof;                    // set by bert_tfrecord_next at the clean end of the file
    unsigned char *data;        // (len) the record just read
    size_t len, cap;
} bert_tfrecord;

BERTDEF int bert_tfrecord_open(bert_tfrecord *r, const char *path);   // BERT_ERR_IO "PATH: why"
BERTDEF void bert_tfrecord_close(bert_tfrecord *r);                   // safe on a zeroed struct
/* Reads the next record into r->data/r->len with both CRCs checked. At the clean end of the file
   it returns BERT_OK with r->eof set. Errors (BERT_ERR_FORMAT/IO) read "PATH: record N: what". */
BERTDEF int bert_tfrecord_next(bert_tfrecord *r);
BERTDEF int bert_tfrecord_seek(bert_tfrecord *r, uint64_t offset, uint64_t record);  // a known record start
/* Scans the record headers (length CRCs checked, data skipped) and returns each record's start in
   *offsets (BERT_FREE it): random access for shuffling without holding the data in memory. */
BERTDEF int bert_tfrecord_index(const char *path, uint64_t **offsets, size_t *count);
BERTDEF int bert_tfrecord_write(void *f, const void *data, size_t len);  // f: a FILE*; BERT_ERR_IO
BERTDEF uint32_t bert_crc32c(uint32_t crc, const void *data, size_t n);  // start with crc = 0

// One pretraining example, decoded into the caller's buffers (T = seq_length, P = max_predictions).
typedef struct {
    int T, P;
    int32_t *input_ids, *input_mask, *segment_ids;     // (T)
    int32_t *masked_lm_positions, *masked_lm_ids;      // (P)
    float *masked_lm_weights;                          // (P) 1 = a real prediction, 0 = padding
    int32_t next_sentence_label;                       // 0 = B follows A, 1 = B is random
} bert_pretrain_example;

/* Decodes a tf.train.Example and checks it against the schema: every feature present once with the
   right type and exactly T or P values, masks and segments 0/1, ids >= 0 (and < vocab_size when
   vocab_size > 0), positions of weighted predictions in [0,T), label 0/1. BERT_ERR_FORMAT "what". */
BERTDEF int bert_example_decode(bert_pretrain_example *ex, const unsigned char *data, size_t len, int vocab_size);
/* Encodes ex as a tf.train.Example (features in google-research/bert's order) into buf; returns the
   bytes needed, which may exceed cap (then nothing useful is written). */
BERTDEF size_t bert_example_encode(unsigned char *buf, size_t cap, const bert_pretrain_example *ex);
/* bert_tfrecord_next + bert_example_decode, the error prefixed with the file and record number. */
BERTDEF int bert_tfrecord_next_example(bert_tfrecord *r, bert_pretrain_example *ex, int vocab_size);

// ----------------------------------------------------------------------------
// create_pretraining_data: google-research/bert's procedure on token ids (sentence pairs with 50 %
// random next sentences, short_seq_prob, truncation from either end, 15 % masking 80/10/10,
// optional whole-word masking, dupe_factor), seeded by our counter-based RNG.

typedef struct {
    const int32_t *ids;         // every sentence's token ids, back to back
    const int32_t *sent_len;    // (num_sents) tokens per sentence
    int num_sents;
    const int32_t *doc_sents;   // (num_docs) sentences per document
    int num_docs;
} bert_corpus;

typedef struct {
    int max_seq_length, max_predictions_per_seq, dupe_factor, whole_word_mask;
    float masked_lm_prob, short_seq_prob;
    uint64_t seed;
    int vocab_size, cls_id, sep_id, mask_id;
    const unsigned char *is_continuation;   // (vocab_size) 1 for "##" pieces; whole-word masking needs it
} bert_pretrain_data_opts;

BERTDEF bert_pretrain_data_opts bert_pretrain_data_defaults(void);   // 128, 20, 10, 0, 0.15, 0.1, 12345
/* The vocab's part of the options: size, [CLS]/[SEP]/[MASK] ids and the "##" table (allocated into
   *table, BERT_FREE it). BERT_ERR_ARG if a special token is missing. */
BERTDEF int bert_pretrain_data_vocab(bert_pretrain_data_opts *o, const bert_vocab *v, unsigned char **table);
/* Tokenizes a text the way create_pretraining_data.py reads its input: one sentence per line
   (stripped), a blank line between documents, lines without tokens dropped. Allocates the
   corpus's arrays; free them with bert_corpus_free. BERT_OK or an error with bert_last_error(). */
BERTDEF int bert_corpus_from_text(bert_corpus *c, const bert_vocab *v, int do_lower_case, const char *text, size_t len);
BERTDEF void bert_corpus_free(bert_corpus *c);
/* The same over files read in order, each starting a new document. Errors name the file. */
BERTDEF int bert_corpus_from_files(bert_corpus *c, const bert_vocab *v, int do_lower_case, const char *const *paths, int n);
/* Makes the instances and hands them to emit() in their final shuffled order (emit returns non-zero
   to stop; that value is returned). The example's buffers are valid during the call only; masked
   slots past the predictions have weight 0. Empty documents are dropped. */
BERTDEF int bert_pretrain_data_create(const bert_corpus *c, const bert_pretrain_data_opts *o,
                                      int (*emit)(const bert_pretrain_example *ex, void *user), void *user);
typedef struct { long instances, tokens, predictions, random_next; } bert_pretrain_data_stats;
/* bert_pretrain_data_create into a TFRecord file, written to PATH.tmp and renamed over path, so a
   failure never leaves a partial file under the name. stats may be NULL. */
BERTDEF int bert_pretrain_data_write(const char *path, const bert_corpus *c, const bert_pretrain_data_opts *o,
                                     bert_pretrain_data_stats *stats);

#ifdef __cplusplus
}
#endif
#endif // BERT_H

// ============================================================================
//                              IMPLEMENTATION
// ============================================================================
#ifdef BERT_IMPLEMENTATION

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <float.h>
#include <errno.h>
#include <time.h>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#elif defined(_WIN32)   // MoveFileExA (the atomic save), the clock, the peak working set; not GDI/COM/winsock
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#include <psapi.h>
#undef near   // 16-bit keywords defined away to nothing: they would eat identifiers (the headers use NEAR/FAR)
#undef far
#endif

#if defined(_OPENMP) && !defined(BERT_NO_OPENMP)
#include <omp.h>
#define BERT__OMP 1
#define BERT__PRAGMA(x) _Pragma(#x)
#else
#define BERT__PRAGMA(x)
#endif
#define BERT__PARALLEL_FOR BERT__PRAGMA(omp parallel for schedule(static))
// Threads only for loops with enough work: a parallel region costs microseconds, and on a busy
// machine a spinning thread waits on a descheduled one, so tiny models run faster on one thread.
#define BERT__MIN_PARALLEL_WORK 65536
#define BERT__PARALLEL_FOR_IF(work) BERT__PRAGMA(omp parallel for schedule(static) if((work) >= BERT__MIN_PARALLEL_WORK))

#if defined(BERT_MALLOC) && defined(BERT_FREE)
#elif !defined(BERT_MALLOC) && !defined(BERT_FREE)
#define BERT_MALLOC(n) malloc(n)
#define BERT_FREE(p) free(p)
#else
#error "bert.h: define both BERT_MALLOC and BERT_FREE, or neither"
#endif

#ifndef BERT_ASSERT
#define BERT_ASSERT(x) do { if (!(x)) bert__abort(__FILE__, __LINE__, #x); } while (0)
#endif
#define BERT_ASSERT_MSG(x, msg) do { if (!(x)) bert__abort(__FILE__, __LINE__, msg); } while (0)

#ifdef __cplusplus
#define BERT__THREAD_LOCAL thread_local
#elif defined(_MSC_VER)
#define BERT__THREAD_LOCAL __declspec(thread)
#else
#define BERT__THREAD_LOCAL _Thread_local
#endif

#if defined(__GNUC__) || defined(__clang__)
#define BERT_RESTRICT __restrict__
#ifdef __MINGW32__   // mingw's "printf" checks msvcrt's formats; its C99 stdio (on under -std=c11) takes %zu
#define BERT__PRINTF(a, b) __attribute__((format(__MINGW_PRINTF_FORMAT, a, b)))
#else
#define BERT__PRINTF(a, b) __attribute__((format(printf, a, b)))
#endif
#define BERT__ALIGNED64 __attribute__((aligned(64)))
#else
#define BERT__ALIGNED64
#define BERT_RESTRICT
#define BERT__PRINTF(a, b)
#endif

// ----------------------------------------------------------------------------
// helpers: errors, allocation

static BERT__THREAD_LOCAL char bert__error_message[512];

BERTDEF const char *bert_last_error(void) { return bert__error_message; }

static void bert__abort(const char *file, int line, const char *what) {
    fprintf(stderr, "bert.h: %s:%d: assertion failed: %s\n", file, line, what);
    fflush(stderr);
    abort();
}

// Records why an environment operation failed and returns its code, so callers can write
// `return bert__err(BERT_ERR_IO, "%s: %s", path, strerror(errno));`.
static int bert__err(int code, const char *fmt, ...) BERT__PRINTF(2, 3);
static int bert__err(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bert__error_message, sizeof bert__error_message, fmt, ap);
    va_end(ap);
    return code;
}

static void *bert__malloc(size_t n) {
    void *p = BERT_MALLOC(n ? n : 1);
    if (!p) bert__err(BERT_ERR_OOM, "out of memory allocating %zu bytes", n);
    return p;
}

static void *bert__calloc(size_t count, size_t size) {
    if (size && count > (size_t)-1 / size) {
        bert__err(BERT_ERR_OOM, "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = bert__malloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

static char *bert__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = (char *)bert__malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

// ----------------------------------------------------------------------------
// counter-based RNG: a dropout mask is a pure function of (seed, step, site, element), so the
// backward pass regenerates it instead of storing it, and every backend draws the same bits.

static inline uint64_t bert__mix(uint64_t z) {   // splitmix64 step
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

BERTDEF uint64_t bert_rng_stream(uint64_t seed, uint64_t step, uint64_t site) {
    return bert__mix(bert__mix(bert__mix(seed) ^ step) ^ site);
}

static inline float bert__uniform(uint64_t stream, uint64_t i) {
    return (float)(bert__mix(stream ^ i) >> 40) * (1.0f / 16777216.0f);
}

BERTDEF float bert_rng_uniform(uint64_t stream, uint64_t i) { return bert__uniform(stream, i); }
BERTDEF uint64_t bert_rng_bits(uint64_t stream, uint64_t i) { return bert__mix(stream ^ i); }

// truncated normal for init: Box-Muller over the same hash, redrawn beyond 2 std (Google's
// tf.truncated_normal_initializer).
static float bert__trunc_normal(uint64_t stream, uint64_t *counter) {
    for (;;) {
        double u1 = ((double)(bert__mix(stream ^ (*counter)++) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        double u2 = (double)(bert__mix(stream ^ (*counter)++) >> 11) * (1.0 / 9007199254740992.0);
        double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        if (z > -2.0 && z < 2.0) return (float)z;
    }
}

// ----------------------------------------------------------------------------
// vectorisable math: exp, erf and tanh from arithmetic alone, so `omp simd` loops vectorise them
// (libm's are opaque scalar calls, and -ffast-math is not an option). Error bounds, checked over
// dense ranges against double precision by tests/test_kernels.c:
//   bert__expf   relative error < 4e-7 on [-87, 88]; exactly 0 below -87.33; NaN stays NaN
//   bert__erff   absolute error < 6e-7 (Abramowitz & Stegun 7.1.26 with bert__expf)
//   bert__tanhf  absolute error < 4e-7 (1 - 2/(exp(2x)+1))

#if defined(_OPENMP) && !defined(BERT_NO_OPENMP)
#define BERT__SIMD BERT__PRAGMA(omp simd)
#define BERT__SIMD_SUM(v) BERT__PRAGMA(omp simd reduction(+:v))
#define BERT__SIMD_MAX(v) BERT__PRAGMA(omp simd reduction(max:v))
#define BERT__PARALLEL_FOR_SIMD BERT__PRAGMA(omp parallel for simd schedule(static))
#else
#define BERT__SIMD
#define BERT__SIMD_SUM(v)
#define BERT__SIMD_MAX(v)
#define BERT__PARALLEL_FOR_SIMD
#endif

// Written branch-free (single-level selects only) so that gcc if-converts and vectorises them.
static inline float bert__expf(float x) {
    float xc = x < 88.0f ? x : 88.0f;
    xc = xc > -88.0f ? xc : -88.0f;                                   // NaN lands on -88, restored below
    // round to nearest (the 1.5 * 2^23 trick), one float step per statement: where float math runs
    // wider (FLT_EVAL_METHOD 1 on s390x, 2 on x87) only an assignment or a cast rounds to float
    float t = xc * 1.44269504088896341f;
    float big = t + 12582912.0f;
    float n = big - 12582912.0f;
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;             // Cody-Waite: x - n ln2 in two parts
    float p = 1.9875691500e-4f;                                        // Cephes expf minimax polynomial
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale;                               // a union, not memcpy: gcc vectorises it
    scale.i = ((int32_t)n + 127) * 8388608;                            // 2^n as float bits (n >= -127)
    float y = p * scale.f;
    y = x < -87.33f ? 0.0f : y;
    return x == x ? y : x;
}

static inline float bert__erff(float x) {
    float ax = fabsf(x);
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    return copysignf(1.0f - poly * bert__expf(-ax * ax), x);
}

static inline float bert__tanhf(float x) { return 1.0f - 2.0f / (bert__expf(2.0f * x) + 1.0f); }

#define BERT__SQRT_2_OVER_PI 0.7978845608028654f
#define BERT__INV_SQRT_2 0.7071067811865476f
#define BERT__INV_SQRT_2PI 0.3989422804014327f
// the two GELUs, one place for each formula (the GELU kernel and the GEMM epilogue both use them)
#define BERT__GELU_ERF(x) (0.5f * (x) * (1.0f + bert__erff((x) * BERT__INV_SQRT_2)))
#define BERT__GELU_TANH(x) (0.5f * (x) * (1.0f + bert__tanhf(BERT__SQRT_2_OVER_PI * ((x) + 0.044715f * (x) * (x) * (x)))))

// out = softmax(in) over n values (in place is fine); returns log(sum(exp(in))) for the loss
static double bert__softmax_row(float *out, const float *in, int n) {
    float maxv = -INFINITY, sum = 0.0f;
    BERT__SIMD_MAX(maxv)
    for (int j = 0; j < n; j++) maxv = in[j] > maxv ? in[j] : maxv;
    BERT__SIMD_SUM(sum)
    for (int j = 0; j < n; j++) { out[j] = bert__expf(in[j] - maxv); sum += out[j]; }
    float inv = 1.0f / sum;
    BERT__SIMD
    for (int j = 0; j < n; j++) out[j] *= inv;
    return (double)maxv + log((double)sum);
}

// Pointwise kernels run in blocks: threads take blocks, and each block is one `omp simd` loop
// (gcc if-converts and vectorises the branchy math helpers in this form, not in `parallel for simd`).
#define BERT__BLOCK 4096
#define BERT__FOR_BLOCKS(n, ...) do { \
        size_t bert__nb = ((n) + BERT__BLOCK - 1) / BERT__BLOCK; \
        BERT__PARALLEL_FOR_IF(n) \
        for (size_t bert__b = 0; bert__b < bert__nb; bert__b++) { \
            size_t i0 = bert__b * BERT__BLOCK; \
            int len = (int)((n) - i0 < BERT__BLOCK ? (n) - i0 : BERT__BLOCK); \
            __VA_ARGS__ \
        } \
    } while (0)

// ----------------------------------------------------------------------------
// CPU kernels
// Forward/backward pairs on raw float*. Outputs first, then inputs, weights, dims.
// Backward kernels accumulate (+=). Dims: B T C NH HS F V N IC OC (see the top of the file).

// sgemm: C = alpha * op(A) * op(B) + beta * C, row-major. op(A) is (M,K), op(B) is (K,N).
// beta == 0 overwrites C (which may hold garbage), as BLIS requires.
BERTDEF void bert_sgemm_naive(int trans_a, int trans_b, int M, int N, int K, float alpha,
                              const float *A, int lda, const float *B, int ldb, float beta,
                              float *Cm, int ldc) {
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int p = 0; p < K; p++) {
                float a = trans_a ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                float b = trans_b ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                acc += (double)a * b;
            }
            float *c = &Cm[(size_t)i * ldc + j];
            *c = (float)(alpha * acc) + (beta == 0.0f ? 0.0f : beta * *c);
        }
    }
}

// The fast sgemm, BLIS style: op(A) and op(B) are packed into MR-row / NR-column micro-panels
// (edges zero-padded, so every transpose case and every edge meets the same microkernel), and the
// packed blocks are sized for the caches of the machines each ISA runs on (below). One microkernel per
// ISA, chosen at compile time (AVX-512, AVX2+FMA, NEON on aarch64); plain C is the fallback.
#if !defined(BERT_NO_SIMD) && defined(__AVX512F__)
#include <immintrin.h>
#define BERT__MR 12
#define BERT__NR 32
#define BERT__KC_DEFAULT 384     // A micro-panel 12 x 384 floats = 18 KB stays in a 48 KB L1
#define BERT__MC_DEFAULT 1020    // A block 1020 x 384 = 1.5 MB, from L3
#define BERT__NC_DEFAULT 768     // B block 384 x 768 = 1.2 MB stays in a 2 MB L2
#define BERT__GEMM_KERNEL "avx512 12x32"
#elif !defined(BERT_NO_SIMD) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define BERT__MR 6
#define BERT__NR 16
#define BERT__KC_DEFAULT 256     // A micro-panel 6 x 256 floats = 6 KB stays in a 32 KB L1
#define BERT__MC_DEFAULT 1020    // A block 1020 x 256 = 1 MB, from L3
#define BERT__NC_DEFAULT 192     // B block 256 x 192 = 192 KB stays in a 512 KB L2
#define BERT__GEMM_KERNEL "avx2+fma 6x16"
#elif !defined(BERT_NO_SIMD) && defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define BERT__MR 12              // 12 x 2 accumulators + 2 B vectors + 1 broadcast: 27 of the 32 NEON registers
#define BERT__NR 8
#define BERT__KC_DEFAULT 256     // A micro-panel 12 x 256 floats = 12 KB stays in a 64 KB L1 (Neoverse, Kunpeng)
#define BERT__MC_DEFAULT 1020    // A block 1020 x 256 = 1 MB
#define BERT__NC_DEFAULT 512     // B block 256 x 512 = 512 KB stays in a 1 MB L2
#define BERT__GEMM_KERNEL "neon 12x8"
#else
#define BERT__MR 8
#define BERT__NR 16
#define BERT__KC_DEFAULT 256
#define BERT__MC_DEFAULT 1024
#define BERT__NC_DEFAULT 512
#define BERT__GEMM_KERNEL "plain C 8x16"
#endif

// BERT_GEMM_KC / _MC / _NC override the cache blocking at compile time (implementation TU)
#ifdef BERT_GEMM_KC
#define BERT__KC BERT_GEMM_KC
#else
#define BERT__KC BERT__KC_DEFAULT
#endif
#ifdef BERT_GEMM_MC
#define BERT__MC BERT_GEMM_MC
#else
#define BERT__MC BERT__MC_DEFAULT
#endif
#ifdef BERT_GEMM_NC
#define BERT__NC BERT_GEMM_NC
#else
#define BERT__NC BERT__NC_DEFAULT
#endif

BERTDEF const char *bert_sgemm_kernel_name(void) { return BERT__GEMM_KERNEL; }

// The one hot spot: C (MR,NR) = alpha * sum_p a[p][0..MR) x b[p][0..NR) + beta * C, for kc steps
// over packed panels. beta == 0 overwrites C (it may hold garbage). One body for every SIMD ISA
// (AVX-512, AVX2, NEON), written against these vector mappings (ggml style); NR is two vectors wide.
#if !defined(BERT_NO_SIMD) && defined(__AVX512F__)
typedef __m512 bert__vec;
#define BERT__VW 16
#define BERT__VZERO() _mm512_setzero_ps()
#define BERT__VSET1(x) _mm512_set1_ps(x)
#define BERT__VLOAD(p) _mm512_load_ps(p)
#define BERT__VLOADU(p) _mm512_loadu_ps(p)
#define BERT__VSTOREU(p, v) _mm512_storeu_ps(p, v)
#define BERT__VMUL(a, b) _mm512_mul_ps(a, b)
#define BERT__VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define BERT__ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#elif !defined(BERT_NO_SIMD) && defined(__AVX2__) && defined(__FMA__)
typedef __m256 bert__vec;
#define BERT__VW 8
#define BERT__VZERO() _mm256_setzero_ps()
#define BERT__VSET1(x) _mm256_set1_ps(x)
#define BERT__VLOAD(p) _mm256_load_ps(p)
#define BERT__VLOADU(p) _mm256_loadu_ps(p)
#define BERT__VSTOREU(p, v) _mm256_storeu_ps(p, v)
#define BERT__VMUL(a, b) _mm256_mul_ps(a, b)
#define BERT__VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define BERT__ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#elif !defined(BERT_NO_SIMD) && defined(__aarch64__) && defined(__ARM_NEON)
typedef float32x4_t bert__vec;
#define BERT__VW 4
#define BERT__VZERO() vdupq_n_f32(0.0f)
#define BERT__VSET1(x) vdupq_n_f32(x)
#define BERT__VLOAD(p) vld1q_f32(p)
#define BERT__VLOADU(p) vld1q_f32(p)
#define BERT__VSTOREU(p, v) vst1q_f32(p, v)
#define BERT__VMUL(a, b) vmulq_f32(a, b)
#define BERT__VFMA(a, b, c) vfmaq_f32(c, a, b)   // a * b + c
#define BERT__ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#endif

#ifdef BERT__ROWS
// The A micro-panel is read as a[i*ars + p*aps]: packed (ars 1, aps MR) or, when op(A) is A itself,
// straight from its rows (ars lda, aps 1), which saves packing the broadcast operand.
static void bert__sgemm_micro_strided(int kc, const float *BERT_RESTRICT a, size_t ars, size_t aps,
                                      const float *BERT_RESTRICT b, float *c, size_t ldc, float alpha, float beta) {
#define BERT__ZERO(i) bert__vec c##i##0 = BERT__VZERO(), c##i##1 = BERT__VZERO();
#define BERT__FMA(i) { bert__vec ai = BERT__VSET1(a[(i) * ars]); c##i##0 = BERT__VFMA(ai, b0, c##i##0); \
                       c##i##1 = BERT__VFMA(ai, b1, c##i##1); }
#define BERT__STORE(i) { float *ci = c + (size_t)(i) * ldc; \
        bert__vec r0 = BERT__VMUL(va, c##i##0), r1 = BERT__VMUL(va, c##i##1); \
        if (beta != 0.0f) { r0 = BERT__VFMA(vb, BERT__VLOADU(ci), r0); r1 = BERT__VFMA(vb, BERT__VLOADU(ci + BERT__VW), r1); } \
        BERT__VSTOREU(ci, r0); BERT__VSTOREU(ci + BERT__VW, r1); }
    BERT__ROWS(BERT__ZERO)
    for (int p = 0; p < kc; p++, a += aps, b += BERT__NR) {
        bert__vec b0 = BERT__VLOAD(b), b1 = BERT__VLOAD(b + BERT__VW);
        BERT__ROWS(BERT__FMA)
    }
    bert__vec va = BERT__VSET1(alpha), vb = BERT__VSET1(beta);
    BERT__ROWS(BERT__STORE)
#undef BERT__ZERO
#undef BERT__FMA
#undef BERT__STORE
}
#else
static void bert__sgemm_micro_strided(int kc, const float *BERT_RESTRICT a, size_t ars, size_t aps,
                                      const float *BERT_RESTRICT b, float *c, size_t ldc, float alpha, float beta) {
    float acc[BERT__MR][BERT__NR];
    memset(acc, 0, sizeof acc);
    for (int p = 0; p < kc; p++, a += aps, b += BERT__NR)
        for (int i = 0; i < BERT__MR; i++)
            for (int j = 0; j < BERT__NR; j++) acc[i][j] += a[i * ars] * b[j];
    for (int i = 0; i < BERT__MR; i++)
        for (int j = 0; j < BERT__NR; j++) {
            float *cij = c + (size_t)i * ldc + j;
            *cij = alpha * acc[i][j] + (beta != 0.0f ? beta * *cij : 0.0f);
        }
}
#endif

// one MR-row micro-panel of op(A): rows [i0, i0+MR) x cols [p0, p0+kc), stored column by column
static void bert__pack_a_panel(float *BERT_RESTRICT dst, const float *A, size_t lda, int trans, int i0, int rows,
                               int p0, int kc) {
    for (int p = 0; p < kc; p++, dst += BERT__MR) {
        int i = 0;
        if (trans) { const float *src = A + (size_t)(p0 + p) * lda + i0; for (; i < rows; i++) dst[i] = src[i]; }
        else for (; i < rows; i++) dst[i] = A[(size_t)(i0 + i) * lda + p0 + p];
        for (; i < BERT__MR; i++) dst[i] = 0.0f;
    }
}

// one NR-column micro-panel of op(B): rows [p0, p0+kc) x cols [j0, j0+NR), stored row by row
static void bert__pack_b_panel(float *BERT_RESTRICT dst, const float *B, size_t ldb, int trans, int p0, int kc,
                               int j0, int cols) {
#if !defined(BERT_NO_SIMD) && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
    if (trans && cols == BERT__NR && ldb < ((size_t)1 << 24)) {   // op(B) = B^T: gather each half-row
        const float *lo = B + (size_t)j0 * ldb + p0, *hi = lo + (size_t)BERT__VW * ldb;
#if defined(__AVX512F__)
        __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32((int)ldb));
        for (int p = 0; p < kc; p++, dst += BERT__NR) {
            _mm512_store_ps(dst, _mm512_i32gather_ps(idx, lo + p, 4));
            _mm512_store_ps(dst + BERT__VW, _mm512_i32gather_ps(idx, hi + p, 4));
        }
#else
        __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)ldb));
        for (int p = 0; p < kc; p++, dst += BERT__NR) {
            _mm256_store_ps(dst, _mm256_i32gather_ps(lo + p, idx, 4));
            _mm256_store_ps(dst + BERT__VW, _mm256_i32gather_ps(hi + p, idx, 4));
        }
#endif
        return;
    }
#endif
#ifdef BERT__ROWS
    if (!trans && cols == BERT__NR) {   // a full row of the panel is two vectors: copied inline, not by memmove
        for (int p = 0; p < kc; p++, dst += BERT__NR) {
            const float *src = B + (size_t)(p0 + p) * ldb + j0;
            BERT__VSTOREU(dst, BERT__VLOADU(src));
            BERT__VSTOREU(dst + BERT__VW, BERT__VLOADU(src + BERT__VW));
        }
        return;
    }
#endif
    for (int p = 0; p < kc; p++, dst += BERT__NR) {
        int j = 0;
        if (!trans) { const float *src = B + (size_t)(p0 + p) * ldb + j0; for (; j < cols; j++) dst[j] = src[j]; }
        else for (; j < cols; j++) dst[j] = B[(size_t)(j0 + j) * ldb + p0 + p];
        for (; j < BERT__NR; j++) dst[j] = 0.0f;
    }
}

// Packing buffers: one per calling thread, grown on first use and then reused, so a steady-state
// training step allocates nothing. bert_cpu_workspace_free() releases the calling thread's.
static BERT__THREAD_LOCAL void *bert__gemm_buf;   // (void *: bert__scratch grows it)
static BERT__THREAD_LOCAL size_t bert__gemm_cap;

BERTDEF void bert_cpu_workspace_free(void) {
    BERT_FREE(bert__gemm_buf);
    bert__gemm_buf = NULL;
    bert__gemm_cap = 0;
}

// A per-thread scratch buffer grown once (*buf of *cap bytes, thread-local in the caller): kernels
// call it inside a training step, which then allocates nothing after its first run.
static void *bert__scratch(void **buf, size_t *cap, size_t bytes, const char *what) {
    if (bytes > *cap) {
        BERT_FREE(*buf);
        *buf = BERT_MALLOC(bytes);
        BERT_ASSERT_MSG(*buf != NULL, what);
        *cap = bytes;
    }
    return *buf;
}

static float *bert__gemm_workspace(size_t floats) {
    bert__scratch(&bert__gemm_buf, &bert__gemm_cap, (floats + 16) * sizeof(float), "sgemm: out of memory for the packing buffers");
    uintptr_t p = (uintptr_t)bert__gemm_buf;   // 64-byte aligned for the microkernel's aligned loads
    return (float *)((p + 63) & ~(uintptr_t)63);
}

// One thread's BLIS loops over a whole (sub-)problem: for each NC column block and KC slice, pack
// op(B) (KC x NC, kept in L2) once, then for each MC row block pack op(A) (MC x KC) and sweep the
// micro-tiles a row of them at a time: the A micro-panel (the broadcast operand) stays in L1
// while the B micro-panels stream from L2 (BLIS's arrangement for these kernels).
/* What a GEMM does to each tile of C after its last K slice, while the tile is still in cache:
   + bias (per column), + residual (same layout as C, row stride ldr), then the activation: the same
   floats, in the same order, as the separate passes of the chain it replaces. (row0, col0): where
   the slab being computed sits in the whole C, so a thread's slab finds its bias and residual. */
typedef struct { const float *bias, *res; size_t ldr; int act, row0, col0; } bert__epilogue;

static void bert__epilogue_tile(const bert__epilogue *ep, float *c, size_t ldc, int row, int col, int mr, int nr) {
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        const float *b = ep->bias ? ep->bias + ep->col0 + col : NULL;
        const float *r = ep->res ? ep->res + (size_t)(ep->row0 + row + i) * ep->ldr + ep->col0 + col : NULL;
        if (b) { BERT__SIMD for (int j = 0; j < nr; j++) ci[j] += b[j]; }
        if (r) { BERT__SIMD for (int j = 0; j < nr; j++) ci[j] += r[j]; }
        if (ep->act == BERT_GELU_ERF) { BERT__SIMD for (int j = 0; j < nr; j++) ci[j] = BERT__GELU_ERF(ci[j]); }
        if (ep->act == BERT_GELU_TANH) { BERT__SIMD for (int j = 0; j < nr; j++) ci[j] = BERT__GELU_TANH(ci[j]); }
    }
}

static void bert__sgemm_serial(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, size_t lda,
                               const float *B, size_t ldb, float beta, float *Cm, size_t ldc, const bert__epilogue *ep) {
    int kc_max = K < BERT__KC ? K : BERT__KC, nc_max = N < BERT__NC ? N : BERT__NC, mc_max = M < BERT__MC ? M : BERT__MC;
    size_t a_floats = ((size_t)(mc_max + BERT__MR) * kc_max + 15) & ~(size_t)15;
    float *apack = bert__gemm_workspace(a_floats + (size_t)(nc_max + BERT__NR) * kc_max), *bpack = apack + a_floats;
    BERT__ALIGNED64 float edge[BERT__MR * BERT__NR];
    for (int j0 = 0; j0 < N; j0 += BERT__NC) {
        int nc = N - j0 < BERT__NC ? N - j0 : BERT__NC;
        for (int p0 = 0; p0 < K; p0 += BERT__KC) {
            int kc = K - p0 < BERT__KC ? K - p0 : BERT__KC;
            float b_eff = p0 == 0 ? beta : 1.0f;   // later K slices add onto the first
            for (int jr = 0; jr < nc; jr += BERT__NR)
                bert__pack_b_panel(bpack + (size_t)jr * kc, B, ldb, trans_b, p0, kc, j0 + jr, nc - jr < BERT__NR ? nc - jr : BERT__NR);
            for (int i0 = 0; i0 < M; i0 += BERT__MC) {
                int mc = M - i0 < BERT__MC ? M - i0 : BERT__MC;
                for (int ir = 0; ir < mc; ir += BERT__MR)   // full panels of a plain A are read in place
                    if (trans_a || mc - ir < BERT__MR)
                        bert__pack_a_panel(apack + (size_t)ir * kc, A, lda, trans_a, i0 + ir, mc - ir < BERT__MR ? mc - ir : BERT__MR, p0, kc);
                for (int ir = 0; ir < mc; ir += BERT__MR) {
                    int mr = mc - ir < BERT__MR ? mc - ir : BERT__MR;
                    for (int jr = 0; jr < nc; jr += BERT__NR) {
                        int nr = nc - jr < BERT__NR ? nc - jr : BERT__NR;
                        int in_place = !trans_a && mr == BERT__MR;   // A's rows as they are, else the packed panel
                        const float *a = in_place ? A + (size_t)(i0 + ir) * lda + p0 : apack + (size_t)ir * kc;
                        size_t ars = in_place ? lda : 1, aps = in_place ? 1 : BERT__MR;
                        const float *b = bpack + (size_t)jr * kc;
                        float *c = Cm + (size_t)(i0 + ir) * ldc + j0 + jr;
                        if (mr == BERT__MR && nr == BERT__NR) {
                            bert__sgemm_micro_strided(kc, a, ars, aps, b, c, ldc, alpha, b_eff);
                        } else {
                            bert__sgemm_micro_strided(kc, a, ars, aps, b, edge, BERT__NR, 1.0f, 0.0f);   // edge tile via a temporary
                            for (int i = 0; i < mr; i++)
                                for (int j = 0; j < nr; j++) {
                                    float *cij = c + (size_t)i * ldc + j;
                                    *cij = alpha * edge[i * BERT__NR + j] + (b_eff != 0.0f ? b_eff * *cij : 0.0f);
                                }
                        }
                        if (ep && p0 + kc == K) bert__epilogue_tile(ep, c, ldc, i0 + ir, j0 + jr, mr, nr);
                    }
                }
            }
        }
    }
}

// Threads split C into slabs along its longer side (whole micro-panels each) and run the serial
// loops on their slab with their own packing buffers: no barrier inside a GEMM, which matters
// on a shared machine where a spinning thread waits for a descheduled one. The cost is that
// each thread packs the operand both need (a few % of the flops at BERT's shapes).
static void bert__sgemm_ep(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *Cm, int ldc, const bert__epilogue *ep) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {   // C = beta C only
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float *c = &Cm[(size_t)i * ldc + j];
                *c = beta == 0.0f ? 0.0f : beta * *c;
            }
        if (ep)
            for (int i = 0; i < M; i++) bert__epilogue_tile(ep, Cm + (size_t)i * ldc, (size_t)ldc, i, 0, 1, N);
        return;
    }
    int nth = 1;
#ifdef BERT__OMP
    if (!omp_in_parallel() && (double)M * N * K >= 262144.0) nth = omp_get_max_threads();   // small or nested: one thread
#endif
    if (nth <= 1) {
        bert__sgemm_serial(trans_a, trans_b, M, N, K, alpha, A, (size_t)lda, B, (size_t)ldb, beta, Cm, (size_t)ldc, ep);
        return;
    }
    int split_n = N / BERT__NR >= M / BERT__MR, unit = split_n ? BERT__NR : BERT__MR, len = split_n ? N : M;
    int units = (len + unit - 1) / unit;
    BERT__PRAGMA(omp parallel num_threads(nth))
    {
#ifdef BERT__OMP
        int tid = omp_get_thread_num(), team = omp_get_num_threads();
#else
        int tid = 0, team = 1;
#endif
        int u0 = (int)((long long)units * tid / team), u1 = (int)((long long)units * (tid + 1) / team);
        int lo = u0 * unit, hi = u1 * unit < len ? u1 * unit : len;
        bert__epilogue slab;   // the thread's slab of C starts at row or column lo
        if (ep) { slab = *ep; if (split_n) slab.col0 += lo; else slab.row0 += lo; }
        if (hi > lo && split_n)
            bert__sgemm_serial(trans_a, trans_b, M, hi - lo, K, alpha, A, (size_t)lda,
                               trans_b ? B + (size_t)lo * ldb : B + lo, (size_t)ldb, beta, Cm + lo, (size_t)ldc, ep ? &slab : NULL);
        else if (hi > lo)
            bert__sgemm_serial(trans_a, trans_b, hi - lo, N, K, alpha, trans_a ? A + lo : A + (size_t)lo * lda, (size_t)lda,
                               B, (size_t)ldb, beta, Cm + (size_t)lo * ldc, (size_t)ldc, ep ? &slab : NULL);
    }
}

static void bert__sgemm_blocked(int trans_a, int trans_b, int M, int N, int K, float alpha,
                                const float *A, int lda, const float *B, int ldb, float beta,
                                float *Cm, int ldc) {
    bert__sgemm_ep(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, Cm, ldc, NULL);
}

// ----------------------------------------------------------------------------
// int8 inference GEMM (bert_model_quantize): out (N,OC) = sx[i] sw[j] (Xq . Wq^T)[i,j], then the
// epilogue (bias, residual, GELU) as the fp32 linear has it.
//
// Weights: symmetric per output channel, Wq = round(W / sw) in [-127,127], sw = max_k |W[j,k]| / 127,
// packed once in panels of 32 columns: for each group of 4 consecutive k, 32 columns x 4 bytes (two
// 64-byte vectors, the s8 operand of vpdpbusd). Activations: symmetric per token (row), Xq =
// round(X / sx) in [-127,127], sx = max_k |X[i,k]| / 127, stored as u8 Xq + 128 (vpdpbusd multiplies
// u8 by s8); comp[j] = 128 sum_k Wq[j,k] takes the +128 back out. The integer sums are exact (|acc| <=
// K 255 127 < 2^31 while K < 66,000). Error of one output, from x = sx (Xq + ex), w = sw (Wq + ew) with
// |ex|, |ew| <= 1/2 (test_kernels checks it):
//     |sum_k x w - sx sw sum_k Xq Wq| <= sx sw sum_k (|Xq|/2 + |Wq|/2 + 1/4)
// plus the float rounding of the dequantisation (a few ulp of the result).

#define BERT__QMR 12   // rows per VNNI tile
#define BERT__QPAD 96  // the quantised activations are padded to a multiple: of 12 (VNNI) and 32 (AMX)
#define BERT__QK4 16   // K4 is padded to a multiple: 64 k, an AMX tile's width (the padding is zeros)
#define BERT__QNR 32   // columns per weight panel

typedef struct bert_qweight {
    int8_t *w;        // int8: (ceil(OC/32), K4, 32, 4) panels, zero-padded
    float *scale;     // int8: (OC) sw
    int32_t *comp;    // int8: (OC) 128 sum_k Wq[j,k]
    uint16_t *h;      // bf16 (instead of the three above): (ceil(OC/32), K2, 32, 2) panels, zero-padded
    int OC, IC, K4;   // K4 = ceil(IC/4) (int8) or K2 = ceil(IC/2) (bf16)
} bert_qweight;

#if !defined(BERT_NO_SIMD) && defined(__AVX512F__) && defined(__AVX512VNNI__)
#define BERT__QGEMM_KERNEL "avx512-vnni 12x32"
// acc (12,32) = sum over K4 groups of a (12 rows of u8, row stride lda) x b (one panel)
static void bert__qgemm_micro(int K4, const uint8_t *a, size_t lda, const int8_t *b, int32_t *acc) {
#define BERT__QROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define BERT__QDECL(i) __m512i c##i##0 = _mm512_setzero_si512(), c##i##1 = _mm512_setzero_si512();
    BERT__QROWS(BERT__QDECL)
    for (int g = 0; g < K4; g++) {
        __m512i b0 = _mm512_loadu_si512((const void *)(b + (size_t)g * 128)), b1 = _mm512_loadu_si512((const void *)(b + (size_t)g * 128 + 64));
        int32_t v;
#define BERT__QSTEP(i) memcpy(&v, a + (size_t)(i) * lda + 4 * (size_t)g, 4); { __m512i av = _mm512_set1_epi32(v); \
        c##i##0 = _mm512_dpbusd_epi32(c##i##0, av, b0); c##i##1 = _mm512_dpbusd_epi32(c##i##1, av, b1); }
        BERT__QROWS(BERT__QSTEP)
    }
#define BERT__QSTORE(i) _mm512_storeu_si512((void *)(acc + (i) * 32), c##i##0); _mm512_storeu_si512((void *)(acc + (i) * 32 + 16), c##i##1);
    BERT__QROWS(BERT__QSTORE)
#undef BERT__QROWS
#undef BERT__QDECL
#undef BERT__QSTEP
#undef BERT__QSTORE
}
#else
#define BERT__QGEMM_KERNEL "plain C 12x32"
static void bert__qgemm_micro(int K4, const uint8_t *a, size_t lda, const int8_t *b, int32_t *acc) {
    memset(acc, 0, BERT__QMR * BERT__QNR * sizeof(int32_t));
    for (int g = 0; g < K4; g++)
        for (int i = 0; i < BERT__QMR; i++) {
            const uint8_t *ai = a + (size_t)i * lda + 4 * (size_t)g;
            const int8_t *bg = b + (size_t)g * 128;
            for (int j = 0; j < BERT__QNR; j++)
                acc[i * BERT__QNR + j] += ai[0] * bg[4 * j] + ai[1] * bg[4 * j + 1] + ai[2] * bg[4 * j + 2] + ai[3] * bg[4 * j + 3];
        }
}
#endif


// W (OC,IC) -> q: scales, compensation and packed panels (BERT_OK or BERT_ERR_OOM)
static int bert__qweight_make(bert_qweight *q, const float *W, int OC, int IC) {
    int K4 = ((IC + 3) / 4 + BERT__QK4 - 1) / BERT__QK4 * BERT__QK4, panels = (OC + BERT__QNR - 1) / BERT__QNR;
    memset(q, 0, sizeof *q);
    q->OC = OC; q->IC = IC; q->K4 = K4;
    q->w = (int8_t *)bert__calloc((size_t)panels * K4 * BERT__QNR * 4, 1);
    q->scale = (float *)bert__malloc((size_t)OC * sizeof(float));
    q->comp = (int32_t *)bert__malloc((size_t)OC * sizeof(int32_t));
    if (!q->w || !q->scale || !q->comp) return BERT_ERR_OOM;
    for (int j = 0; j < OC; j++) {
        const float *wj = W + (size_t)j * IC;
        float mx = 0.0f;
        for (int k = 0; k < IC; k++) mx = fmaxf(mx, fabsf(wj[k]));
        float inv = mx > 0.0f ? 127.0f / mx : 0.0f;
        int32_t sum = 0;
        int8_t *panel = q->w + (size_t)(j / BERT__QNR) * K4 * BERT__QNR * 4;
        for (int k = 0; k < IC; k++) {
            int v = (int)nearbyintf(wj[k] * inv);
            v = v > 127 ? 127 : v < -127 ? -127 : v;
            panel[(size_t)(k / 4) * BERT__QNR * 4 + (j % BERT__QNR) * 4 + k % 4] = (int8_t)v;
            sum += v;
        }
        q->scale[j] = mx > 0.0f ? mx / 127.0f : 0.0f;
        q->comp[j] = 128 * sum;
    }
    return BERT_OK;
}

static void bert__qweight_free(bert_qweight *q) {
    BERT_FREE(q->w); BERT_FREE(q->scale); BERT_FREE(q->comp); BERT_FREE(q->h);
    memset(q, 0, sizeof *q);
}

// one row x (IC) -> u8 Xq + 128 in q (IC bytes); returns sx. Rounding half to even (the SIMD
// conversion's default mode; in plain C by adding and taking back 1.5 * 2^23, exact for |v| <= 127)
#if !defined(BERT_NO_SIMD) && defined(__AVX512F__) && defined(__AVX512VNNI__)
static float bert__quantize_row(uint8_t *q, const float *x, int IC) {
    __m512 mxv = _mm512_setzero_ps();
    for (int k = 0; k < IC; k += 16) {
        __mmask16 m = IC - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (IC - k)) - 1);
        mxv = _mm512_max_ps(mxv, _mm512_abs_ps(_mm512_maskz_loadu_ps(m, x + k)));
    }
    float mx = _mm512_reduce_max_ps(mxv), inv = mx > 0.0f ? 127.0f / mx : 0.0f;
    __m512 iv = _mm512_set1_ps(inv);
    __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127), off = _mm512_set1_epi32(128);
    for (int k = 0; k < IC; k += 16) {
        __mmask16 m = IC - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (IC - k)) - 1);
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + k), iv));
        v = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi), off);
        _mm512_mask_cvtepi32_storeu_epi8(q + k, m, v);
    }
    return mx > 0.0f ? mx / 127.0f : 0.0f;
}
#else
static float bert__quantize_row(uint8_t *q, const float *x, int IC) {
    float mx = 0.0f;
    for (int k = 0; k < IC; k++) { float a = fabsf(x[k]); mx = a > mx ? a : mx; }
    float inv = mx > 0.0f ? 127.0f / mx : 0.0f;
    for (int k = 0; k < IC; k++) {
        float xs = x[k] * inv, big = xs + 12582912.0f;   // one float step each (see bert__expf)
        float r = big - 12582912.0f;
        r = r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r;
        q[k] = (uint8_t)((int)r + 128);
    }
    return mx > 0.0f ? mx / 127.0f : 0.0f;
}
#endif

// X (N,IC) -> xq (Npad rows of K4*4 bytes: u8 Xq + 128, padded with 128) and sx (Npad, 0 past N)
static void bert__quantize_rows(uint8_t *xq, float *sx, const float *X, int N, int Npad, int IC, int K4) {
    size_t ld = (size_t)K4 * 4;
    BERT__PARALLEL_FOR_IF((size_t)N * IC)
    for (int i = 0; i < Npad; i++) {
        uint8_t *qi = xq + (size_t)i * ld;
        if (i >= N) { memset(qi, 128, ld); sx[i] = 0.0f; continue; }
        sx[i] = bert__quantize_row(qi, X + (size_t)i * IC, IC);
        memset(qi + IC, 128, ld - (size_t)IC);
    }
}

// AMX (Intel's tile unit): one TDPBUSD multiplies a 16 x 64 u8 tile by a 64 x 16 s8 tile into 16 x 16
// int32, 16,384 products, the same operands and sums as vpdpbusd: the weight panels are already in
// its layout (each 16-column half of a panel group is one tile row). Linux hands the tile state to a
// process that asks (arch_prctl ARCH_REQ_XCOMP_PERM); when it does not, the VNNI kernel runs.
#if !defined(BERT_NO_SIMD) && !defined(BERT_NO_AMX) && defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__linux__) && \
    defined(__x86_64__)
#define BERT__AMX 1
// arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) as the raw x86-64 system call: no libc
// declaration to clash with (strict C11 hides syscall(); C++ sees it noexcept)
static long bert__arch_prctl(long code, long arg) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "0"(158L), "D"(code), "S"(arg) : "rcx", "r11", "memory");
    return ret;
}

static int bert__amx_ready(void) {
    static int state;   // 0 not asked yet, 1 granted, -1 refused (a race only asks twice)
    if (!state) state = bert__arch_prctl(0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0 ? 1 : -1;
    return state > 0;
}

typedef struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } bert__tilecfg;

// all 8 tiles 16 rows x 64 bytes: 0-3 C (two row blocks x the panel's two 16-column halves, int32),
// 4, 5 A (16 rows x 64 k each), 6, 7 B (16 groups x 16 columns x 4 k): each loaded tile used twice
static void bert__amx_config(void) {
    bert__tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);
}

/* acc (32,32) of 4-byte sums = a (32 rows, stride lda bytes) . the panel b, over G groups of 4 bytes
   (int8: 4 k; bf16: 2 k): both precisions have the same byte layout, only the dot product differs */
#define BERT__AMX_KERNEL(name, DOT)                                                                  \
    static void name(int G, const void *a_, size_t lda, const void *b_, void *acc_) {               \
        const unsigned char *a = (const unsigned char *)a_, *b = (const unsigned char *)b_;         \
        unsigned char *acc = (unsigned char *)acc_;                                                 \
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);                                 \
        for (int g = 0; g < G; g += 16) {   /* 16 groups = 64 bytes: one tile row */                \
            _tile_loadd(4, a + 4 * (size_t)g, lda);                                                 \
            _tile_loadd(5, a + 16 * lda + 4 * (size_t)g, lda);                                      \
            _tile_loadd(6, b + (size_t)g * 128, 128);                                               \
            _tile_loadd(7, b + (size_t)g * 128 + 64, 128);                                          \
            DOT(0, 4, 6); DOT(1, 4, 7); DOT(2, 5, 6); DOT(3, 5, 7);                                 \
        }                                                                                           \
        _tile_stored(0, acc, 128);                                                                  \
        _tile_stored(1, acc + 64, 128);                                                             \
        _tile_stored(2, acc + 16 * 128, 128);                                                       \
        _tile_stored(3, acc + 16 * 128 + 64, 128);                                                  \
    }
BERT__AMX_KERNEL(bert__qgemm_amx, _tile_dpbusd)
#endif

// one tile of acc (mr rows of BERT__QNR) -> out: dequantised, then the epilogue
static void bert__qgemm_store(float *out, const int32_t *acc, const float *sx, const bert_qweight *q, const bert__epilogue *ep,
                              int i0, int j0, int mr, int nr) {
    int OC = q->OC;
    const int32_t *comp = q->comp + j0;
    const float *sw = q->scale + j0;
    for (int i = 0; i < mr; i++) {   // (locals and simd: otherwise -O2 keeps it scalar for fear of aliasing)
        float *o = out + (size_t)(i0 + i) * OC + j0, s = sx[i0 + i];
        const int32_t *a = acc + i * BERT__QNR;
        BERT__SIMD
        for (int j = 0; j < nr; j++) o[j] = (float)(a[j] - comp[j]) * (s * sw[j]);
    }
    bert__epilogue_tile(ep, out + (size_t)i0 * OC + j0, (size_t)OC, i0, j0, mr, nr);
}

// out (N,OC) = dequant(xq . Wq^T) + the epilogue; xq/sx from bert__quantize_rows (rows padded to a
// multiple of BERT__QPAD, which covers both kernels' tiles)
static void bert__qgemm(float *out, const uint8_t *xq, const float *sx, int N, const bert_qweight *q,
                        const bert__epilogue *ep) {
    int panels = (q->OC + BERT__QNR - 1) / BERT__QNR, OC = q->OC;
    size_t lda = (size_t)q->K4 * 4;
#ifdef BERT__AMX
    if (bert__amx_ready()) {
        int tiles = (N + 31) / 32;
        BERT__PRAGMA(omp parallel if((size_t)N * OC * q->IC >= 262144))
        {
            bert__amx_config();   // per thread
            BERT__PRAGMA(omp for collapse(2) schedule(static))
            for (int t = 0; t < tiles; t++)
                for (int p = 0; p < panels; p++) {
                    BERT__ALIGNED64 int32_t acc[32 * BERT__QNR];
                    bert__qgemm_amx(q->K4, xq + (size_t)t * 32 * lda, lda, q->w + (size_t)p * q->K4 * BERT__QNR * 4, acc);   // lda: bytes
                    int i0 = t * 32, j0 = p * BERT__QNR;
                    bert__qgemm_store(out, acc, sx, q, ep, i0, j0, N - i0 < 32 ? N - i0 : 32, OC - j0 < BERT__QNR ? OC - j0 : BERT__QNR);
                }
            _tile_release();
        }
        return;
    }
#endif
    int tiles = (N + BERT__QMR - 1) / BERT__QMR;
    BERT__PRAGMA(omp parallel for collapse(2) schedule(static) if((size_t)N * OC * q->IC >= 262144))
    for (int t = 0; t < tiles; t++)
        for (int p = 0; p < panels; p++) {
            BERT__ALIGNED64 int32_t acc[BERT__QMR * BERT__QNR];
            bert__qgemm_micro(q->K4, xq + (size_t)t * BERT__QMR * lda, lda, q->w + (size_t)p * q->K4 * BERT__QNR * 4, acc);
            int i0 = t * BERT__QMR, j0 = p * BERT__QNR;
            bert__qgemm_store(out, acc, sx, q, ep, i0, j0, N - i0 < BERT__QMR ? N - i0 : BERT__QMR, OC - j0 < BERT__QNR ? OC - j0 : BERT__QNR);
        }
}

BERTDEF const char *bert_int8_kernel_name(void) {
#ifdef BERT__AMX
    if (bert__amx_ready()) return "amx-int8 32x32";
#endif
    return BERT__QGEMM_KERNEL;
}

// ----------------------------------------------------------------------------
// bf16 inference GEMM (bert_model_set_precision BERT_BF16): out (N,OC) = bf16(X) . bf16(W)^T, products
// exact in fp32, sums in fp32 (AVX512-BF16's vdpbf16ps: a pair of k per lane per instruction, twice
// the fp32 FMA's work), then the epilogue. Weights rounded to bf16 once (round to nearest even),
// packed in panels of 32 columns x 2 consecutive k; activations rounded per call. Error of one output:
// bf16 keeps 8 significant bits, so rounding an input costs a relative error <= 2^-8, a product <=
// 2^-7 + 2^-16: |sum x w - sum bf16(x) bf16(w)| <= (2^-7 + 2^-16) sum |x w|, plus the fp32 summation's
// K 2^-24 sum |x w| (test_kernels checks it).

static uint16_t bert__bf16(float x) {   // round to nearest even (NaN stays NaN)
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

static inline float bert__bf16_to_f32(uint16_t h) { uint32_t u = (uint32_t)h << 16; float x; memcpy(&x, &u, 4); return x; }

#if !defined(BERT_NO_SIMD) && defined(__AVX512F__) && defined(__AVX512BF16__)
#define BERT__BGEMM_KERNEL "avx512-bf16 12x32"
static void bert__bgemm_micro(int K2, const uint16_t *a, size_t lda, const uint16_t *b, float *acc) {
#define BERT__BROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define BERT__BDECL(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
    BERT__BROWS(BERT__BDECL)
    for (int g = 0; g < K2; g++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)(b + (size_t)g * 64));
        __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(b + (size_t)g * 64 + 32));
        int32_t v;
#define BERT__BSTEP(i) memcpy(&v, a + (size_t)(i) * lda + 2 * (size_t)g, 4); { __m512bh av = (__m512bh)_mm512_set1_epi32(v); \
        c##i##0 = _mm512_dpbf16_ps(c##i##0, av, b0); c##i##1 = _mm512_dpbf16_ps(c##i##1, av, b1); }
        BERT__BROWS(BERT__BSTEP)
    }
#define BERT__BSTORE(i) _mm512_storeu_ps(acc + (i) * 32, c##i##0); _mm512_storeu_ps(acc + (i) * 32 + 16, c##i##1);
    BERT__BROWS(BERT__BSTORE)
#undef BERT__BROWS
#undef BERT__BDECL
#undef BERT__BSTEP
#undef BERT__BSTORE
}
#else
#define BERT__BGEMM_KERNEL "plain C 12x32"
static void bert__bgemm_micro(int K2, const uint16_t *a, size_t lda, const uint16_t *b, float *acc) {
    memset(acc, 0, BERT__QMR * BERT__QNR * sizeof(float));
    for (int g = 0; g < K2; g++)
        for (int i = 0; i < BERT__QMR; i++) {
            float a0 = bert__bf16_to_f32(a[(size_t)i * lda + 2 * g]), a1 = bert__bf16_to_f32(a[(size_t)i * lda + 2 * g + 1]);
            const uint16_t *bg = b + (size_t)g * 64;
            for (int j = 0; j < BERT__QNR; j++)
                acc[i * BERT__QNR + j] += a0 * bert__bf16_to_f32(bg[2 * j]) + a1 * bert__bf16_to_f32(bg[2 * j + 1]);
        }
}
#endif


static int bert__bf16_k2(int K) { return ((K + 1) / 2 + 15) / 16 * 16; }   // k pairs, padded to an AMX tile's 32 k

// n floats -> bf16, round to nearest even (vcvtneps2bf16 where the build has it: the same rounding)
static void bert__bf16_row(uint16_t *dst, const float *src, int n) {
    int k = 0;
#if !defined(BERT_NO_SIMD) && defined(__AVX512F__) && defined(__AVX512BF16__)
    for (; k + 16 <= n; k += 16)
        _mm256_storeu_si256((__m256i *)(void *)(dst + k), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + k)));
#endif
    for (; k < n; k++) dst[k] = bert__bf16(src[k]);
}

static BERT__THREAD_LOCAL void *bert__bf16_row_buf;   // one converted row, per thread, grown once
static BERT__THREAD_LOCAL size_t bert__bf16_row_cap;

static uint16_t *bert__bf16_row_scratch(size_t n) {
    return (uint16_t *)bert__scratch(&bert__bf16_row_buf, &bert__bf16_row_cap, n * sizeof(uint16_t), "bf16 packing: out of memory for a row");
}

// M' (R,K) = X (row stride ld) or, when t, X^T, rounded to bf16 into the weight-panel layout h:
// (ceil(R/32), K2, 32, 2), zero-padded. Rows are converted whole (bert__bf16_row), then moved into
// place as 32-bit k pairs.
static void bert__bf16_pack_panels(uint16_t *h, const float *X, size_t ld, int t, int R, int K, int K2) {
    int panels = (R + BERT__QNR - 1) / BERT__QNR;
    if (t) {   // X^T: rows k and k+1 of X, read whole, are k pair k/2 of every panel (a stream, not a stride)
        memset(h, 0, (size_t)panels * K2 * BERT__QNR * 2 * sizeof(uint16_t));
        int pairs = (K + 1) / 2;
        BERT__PARALLEL_FOR_IF((size_t)R * K)
        for (int g = 0; g < pairs; g++) {
            uint16_t a[BERT__QNR], b[BERT__QNR];
            for (int p = 0; p < panels; p++) {
                int j0 = p * BERT__QNR, nj = R - j0 < BERT__QNR ? R - j0 : BERT__QNR;
                bert__bf16_row(a, X + (size_t)(2 * g) * ld + j0, nj);
                if (2 * g + 1 < K) bert__bf16_row(b, X + (size_t)(2 * g + 1) * ld + j0, nj);
                else memset(b, 0, sizeof b);
                uint16_t *dst = h + (size_t)p * K2 * BERT__QNR * 2 + (size_t)g * BERT__QNR * 2;
                for (int j = 0; j < nj; j++) { dst[2 * j] = a[j]; dst[2 * j + 1] = b[j]; }
            }
        }
        return;
    }
    BERT__PARALLEL_FOR_IF((size_t)R * K)
    for (int p = 0; p < panels; p++) {
        uint16_t *panel = h + (size_t)p * K2 * BERT__QNR * 2;
        int j0 = p * BERT__QNR, nj = R - j0 < BERT__QNR ? R - j0 : BERT__QNR;
        memset(panel, 0, (size_t)K2 * BERT__QNR * 2 * sizeof(uint16_t));
        {   // X: row j converted, its k pairs to their places 32 pairs apart
            uint16_t *row = bert__bf16_row_scratch((size_t)K + 1);
            row[K] = 0;   // the second half of an odd K's last pair
            for (int j = 0; j < nj; j++) {
                bert__bf16_row(row, X + (size_t)(j0 + j) * ld, K);
                for (int g = 0; g < (K + 1) / 2; g++) memcpy(panel + ((size_t)g * BERT__QNR + j) * 2, row + 2 * g, 2 * sizeof(uint16_t));
            }
        }
    }
}

static int bert__bweight_make(bert_qweight *q, const float *W, int OC, int IC) {
    int K2 = bert__bf16_k2(IC), panels = (OC + BERT__QNR - 1) / BERT__QNR;
    memset(q, 0, sizeof *q);
    q->OC = OC; q->IC = IC; q->K4 = K2;
    q->h = (uint16_t *)bert__malloc((size_t)panels * K2 * BERT__QNR * 2 * sizeof(uint16_t));
    if (!q->h) return BERT_ERR_OOM;
    bert__bf16_pack_panels(q->h, W, (size_t)IC, 0, OC, IC, K2);
    return BERT_OK;
}

// M' (R,K) (X itself, or X^T when t; row stride ld) -> xh: Rpad rows of K2*2 bf16, zero padding
static void bert__bf16_pack_rows(uint16_t *xh, const float *X, size_t ld, int t, int R, int Rpad, int K, int K2) {
    size_t lh = (size_t)K2 * 2;
    if (t) {   // X^T: 32 x 32 tiles; a band of 32 rows of X is read whole, each tile's 32 rows of xh get one cache line
        memset(xh, 0, (size_t)Rpad * lh * sizeof(uint16_t));
        int kb = (K + 31) / 32;
        BERT__PARALLEL_FOR_IF((size_t)R * K)
        for (int b = 0; b < kb; b++) {
            int k0 = b * 32, nk = K - k0 < 32 ? K - k0 : 32;
            uint16_t tile[32][32];
            for (int i0 = 0; i0 < R; i0 += 32) {
                int ni = R - i0 < 32 ? R - i0 : 32;
                for (int k = 0; k < nk; k++) bert__bf16_row(tile[k], X + (size_t)(k0 + k) * ld + i0, ni);
                for (int i = 0; i < ni; i++) {
                    uint16_t *dst = xh + (size_t)(i0 + i) * lh + k0;
                    for (int k = 0; k < nk; k++) dst[k] = tile[k][i];
                }
            }
        }
        return;
    }
    BERT__PARALLEL_FOR_IF((size_t)R * K)
    for (int i = 0; i < Rpad; i++) {
        uint16_t *hi = xh + (size_t)i * lh;
        if (i >= R) { memset(hi, 0, lh * sizeof(uint16_t)); continue; }
        bert__bf16_row(hi, X + (size_t)i * ld, K);
        memset(hi + K, 0, (lh - (size_t)K) * sizeof(uint16_t));   // (arena memory: NaN bits x 0 would be NaN)
    }
}

// X (N,IC) -> xh (Npad rows of K2*2 bf16, zero padding)
static void bert__bf16_rows(uint16_t *xh, const float *X, int N, int Npad, int IC, int K2) {
    bert__bf16_pack_rows(xh, X, (size_t)IC, 0, N, Npad, IC, K2);
}

#if defined(BERT__AMX) && defined(__AMX_BF16__)
// AMX-BF16: the int8 kernel's tiles and loop with TDPBF16PS (16 x 32 bf16 by 32 x 16 into fp32); the
// bf16 panels are its B layout as they are (K2 padded to a multiple of 16: 32 k per tile)
BERT__AMX_KERNEL(bert__bgemm_amx, _tile_dpbf16ps)
#define BERT__AMX_BF16 1
#endif

BERTDEF const char *bert_bf16_kernel_name(void) {
#ifdef BERT__AMX_BF16
    if (bert__amx_ready()) return "amx-bf16 32x32";
#endif
    return BERT__BGEMM_KERNEL;
}

static void bert__bgemm(float *out, const uint16_t *xh, int N, int Npad, const bert_qweight *q, const bert__epilogue *ep) {
    int tiles = Npad / BERT__QMR, panels = (q->OC + BERT__QNR - 1) / BERT__QNR, OC = q->OC;
    size_t lda = (size_t)q->K4 * 2;
#ifdef BERT__AMX_BF16
    if (bert__amx_ready()) {
        int blocks = (N + 31) / 32;
        BERT__PRAGMA(omp parallel if((size_t)N * OC * q->IC >= 262144))
        {
            bert__amx_config();
            BERT__PRAGMA(omp for collapse(2) schedule(static))
            for (int t = 0; t < blocks; t++)
                for (int p = 0; p < panels; p++) {
                    BERT__ALIGNED64 float acc[32 * BERT__QNR];
                    bert__bgemm_amx(q->K4, xh + (size_t)t * 32 * lda, lda * 2, q->h + (size_t)p * q->K4 * BERT__QNR * 2, acc);   // (bytes)
                    int i0 = t * 32, j0 = p * BERT__QNR, mr = N - i0 < 32 ? N - i0 : 32, nr = OC - j0 < BERT__QNR ? OC - j0 : BERT__QNR;
                    for (int i = 0; i < mr; i++) memcpy(out + (size_t)(i0 + i) * OC + j0, acc + i * BERT__QNR, (size_t)nr * sizeof(float));
                    bert__epilogue_tile(ep, out + (size_t)i0 * OC + j0, (size_t)OC, i0, j0, mr, nr);
                }
            _tile_release();
        }
        return;
    }
#endif
    BERT__PRAGMA(omp parallel for collapse(2) schedule(static) if((size_t)N * OC * q->IC >= 262144))
    for (int t = 0; t < tiles; t++)
        for (int p = 0; p < panels; p++) {
            BERT__ALIGNED64 float acc[BERT__QMR * BERT__QNR];
            bert__bgemm_micro(q->K4, xh + (size_t)t * BERT__QMR * lda, lda, q->h + (size_t)p * q->K4 * BERT__QNR * 2, acc);
            int i0 = t * BERT__QMR, j0 = p * BERT__QNR;
            int mr = N - i0 < BERT__QMR ? N - i0 : BERT__QMR, nr = OC - j0 < BERT__QNR ? OC - j0 : BERT__QNR;
            for (int i = 0; i < mr; i++) memcpy(out + (size_t)(i0 + i) * OC + j0, acc + i * BERT__QNR, (size_t)nr * sizeof(float));
            bert__epilogue_tile(ep, out + (size_t)i0 * OC + j0, (size_t)OC, i0, j0, mr, nr);
        }
}

// embedding: out (B,T,C) = wte[ids] + wpe[t] + wtt[types]; ids/types (B,T); types may be NULL
static void bert__embedding_forward(float *out, const int32_t *ids, const int32_t *types,
                                    const float *wte, const float *wpe, const float *wtt,
                                    int B, int T, int C) {
    BERT__PARALLEL_FOR_IF((size_t)B * T * C)
    for (int bt = 0; bt < B * T; bt++) {
        const float *w = wte + (size_t)ids[bt] * C, *p = wpe ? wpe + (size_t)(bt % T) * C : NULL;
        const float *y = wtt + (size_t)(types ? types[bt] : 0) * C;
        float *o = out + (size_t)bt * C;
        if (p) for (int c = 0; c < C; c++) o[c] = w[c] + p[c] + y[c];
        else for (int c = 0; c < C; c++) o[c] = w[c] + y[c];   // NEZHA: no absolute positions
    }
}

// serial: rows of the tables repeat across tokens, so parallel scatter would race
static void bert__embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout,
                                     const int32_t *ids, const int32_t *types, int B, int T, int C) {
    for (int bt = 0; bt < B * T; bt++) {
        const float *d = dout + (size_t)bt * C;
        float *w = dwte ? dwte + (size_t)ids[bt] * C : NULL, *p = dwpe ? dwpe + (size_t)(bt % T) * C : NULL;
        float *y = dwtt ? dwtt + (size_t)(types ? types[bt] : 0) * C : NULL;
        for (int c = 0; c < C; c++) {
            if (dwte) w[c] += d[c];
            if (dwpe) p[c] += d[c];
            if (dwtt) y[c] += d[c];
        }
    }
}

// dst (C) += column sums of src (N,C): threads take column blocks, each row adds as one simd loop
#define BERT__COLS 128
static void bert__column_sums(float *dst, const float *src, int N, int C) {
    int nb = (C + BERT__COLS - 1) / BERT__COLS;
    BERT__PARALLEL_FOR_IF((size_t)N * C)
    for (int cb = 0; cb < nb; cb++) {
        int c0 = cb * BERT__COLS, len = C - c0 < BERT__COLS ? C - c0 : BERT__COLS;
        float acc[BERT__COLS] = { 0 };
        for (int n = 0; n < N; n++) {
            const float *s = src + (size_t)n * C + c0;
            BERT__SIMD
            for (int c = 0; c < len; c++) acc[c] += s[c];
        }
        for (int c = 0; c < len; c++) dst[c0 + c] += acc[c];
    }
}

// linear: out (N,OC) = inp (N,IC) . weight (OC,IC)^T + bias (OC)
static void bert__linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                                 int N, int IC, int OC) {
    bert__sgemm_blocked(0, 1, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
    if (!bias) return;
    BERT__PARALLEL_FOR_IF((size_t)N * OC)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * OC;
        BERT__SIMD
        for (int c = 0; c < OC; c++) o[c] += bias[c];
    }
}

// out (N,OC) = act(inp (N,IC) . weight^T + bias (OC) + residual (N,OC)): bias, residual and GELU
// applied to each tile of out as the GEMM finishes it (bert__epilogue), not in passes of their own
static void bert__linear_act_forward(float *out, const float *inp, const float *weight, const float *bias,
                                     const float *residual, int N, int IC, int OC, int act) {
    bert__epilogue ep = { bias, residual, (size_t)OC, act, 0, 0 };
    bert__sgemm_ep(0, 1, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC, &ep);
}

// dinp (N,IC) += dout (N,OC) . weight (OC,IC);  dweight (OC,IC) += dout^T . inp;  dbias += sum_n dout
static void bert__linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                  const float *inp, const float *weight, int N, int IC, int OC) {
    if (dinp) bert__sgemm_blocked(0, 0, N, IC, OC, 1.0f, dout, OC, weight, IC, 1.0f, dinp, IC);
    if (dweight) bert__sgemm_blocked(1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
    if (dbias) bert__column_sums(dbias, dout, N, OC);
}

// ----------------------------------------------------------------------------
// bf16 training (bert_cpu_bf16_kernels): the linear layer's three GEMMs with bf16 inputs and fp32
// sums on the bf16 GEMM above. Both operands are rounded and packed per call (the weights twice a
// step: W for the forward, W^T for dX), so the fp32 weights stay the master copy; outputs, grads,
// bias sums and everything outside the GEMMs stay fp32. Each output's error is the bf16 GEMM's bound.

static BERT__THREAD_LOCAL unsigned char *bert__bf16_buf;   // the packed operands, per thread, grown once
static BERT__THREAD_LOCAL size_t bert__bf16_cap;

// C (M,N) = beta C + A' B'^T, A' (M,K) = A or A^T (ta), B' (N,K) = B or B^T (tb); beta 0 or 1
static void bert__bf16_gemm(int ta, int tb, int M, int N, int K, const float *A, size_t lda, const float *B, size_t ldb,
                            float beta, float *C, const bert__epilogue *ep) {
    int K2 = bert__bf16_k2(K), Mpad = (M + BERT__QPAD - 1) / BERT__QPAD * BERT__QPAD, panels = (N + BERT__QNR - 1) / BERT__QNR;
    size_t hb = ((size_t)panels * K2 * BERT__QNR * 2 * sizeof(uint16_t) + 63) & ~(size_t)63, ab = ((size_t)Mpad * K2 * 2 * sizeof(uint16_t) + 63) & ~(size_t)63;
    size_t need = hb + ab + (beta != 0.0f ? (size_t)M * N * sizeof(float) : 0);
    if (need > bert__bf16_cap) {
        BERT_FREE(bert__bf16_buf);
        bert__bf16_buf = (unsigned char *)BERT_MALLOC(need);
        BERT_ASSERT_MSG(bert__bf16_buf != NULL, "bf16 GEMM: out of memory for the packed operands");
        bert__bf16_cap = need;
    }
    bert_qweight q;
    memset(&q, 0, sizeof q);
    q.OC = N; q.IC = K; q.K4 = K2;
    q.h = (uint16_t *)(void *)bert__bf16_buf;
    uint16_t *ah = (uint16_t *)(void *)(bert__bf16_buf + hb);
    float *tmp = beta != 0.0f ? (float *)(void *)(bert__bf16_buf + hb + ab) : NULL;
    bert__bf16_pack_panels(q.h, B, ldb, tb, N, K, K2);
    bert__bf16_pack_rows(ah, A, lda, ta, M, Mpad, K, K2);
    bert__epilogue none = { NULL, NULL, (size_t)N, BERT_ACT_NONE, 0, 0 };
    bert__bgemm(tmp ? tmp : C, ah, M, Mpad, &q, ep ? ep : &none);
    if (tmp) {
        BERT__PARALLEL_FOR_IF((size_t)M * N)
        for (int i = 0; i < M; i++) {
            float *c = C + (size_t)i * N;
            const float *d = tmp + (size_t)i * N;
            BERT__SIMD
            for (int j = 0; j < N; j++) c[j] += d[j];
        }
    }
}

static void bert__bf16_linear_act_forward(float *out, const float *inp, const float *weight, const float *bias,
                                          const float *residual, int N, int IC, int OC, int act) {
    bert__epilogue ep = { bias, residual, (size_t)OC, act, 0, 0 };
    bert__bf16_gemm(0, 0, N, OC, IC, inp, (size_t)IC, weight, (size_t)IC, 0.0f, out, &ep);
}

static void bert__bf16_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC, int OC) {
    bert__bf16_linear_act_forward(out, inp, weight, bias, NULL, N, IC, OC, BERT_ACT_NONE);
}

// dinp (N,IC) += dout . weight;  dweight (OC,IC) += dout^T . inp;  dbias += sum_n dout (fp32)
static void bert__bf16_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                       const float *inp, const float *weight, int N, int IC, int OC) {
    if (dinp) bert__bf16_gemm(0, 1, N, IC, OC, dout, (size_t)OC, weight, (size_t)IC, 1.0f, dinp, NULL);
    if (dweight) bert__bf16_gemm(1, 1, OC, IC, N, dout, (size_t)OC, inp, (size_t)IC, 1.0f, dweight, NULL);
    if (dbias) bert__column_sums(dbias, dout, N, OC);
}

// layernorm over the last dim: inp/out (N,C), weight/bias (C), mean/rstd (N) saved for backward
static void bert__layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                    const float *weight, const float *bias, int N, int C, float eps) {
    BERT__PARALLEL_FOR_IF((size_t)N * C)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float m = 0.0f, v = 0.0f;
        BERT__SIMD_SUM(m)
        for (int c = 0; c < C; c++) m += x[c];
        m /= (float)C;
        BERT__SIMD_SUM(v)
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        float s = 1.0f / sqrtf(v / (float)C + eps);
        BERT__SIMD
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * weight[c] + bias[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

static void bert__layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                     const float *inp, const float *weight, const float *mean,
                                     const float *rstd, int N, int C) {
    BERT__PARALLEL_FOR_IF((size_t)N * C)
    for (int n = 0; n < (dinp ? N : 0); n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float m = mean[n], s = rstd[n], dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
        BERT__SIMD_SUM(dnorm_mean)
        for (int c = 0; c < C; c++) dnorm_mean += weight[c] * d[c];
        BERT__SIMD_SUM(dnorm_norm_mean)
        for (int c = 0; c < C; c++) dnorm_norm_mean += weight[c] * d[c] * (x[c] - m) * s;
        dnorm_mean /= (float)C;
        dnorm_norm_mean /= (float)C;
        BERT__SIMD
        for (int c = 0; c < C; c++) dx[c] += (weight[c] * d[c] - dnorm_mean - (x[c] - m) * s * dnorm_norm_mean) * s;
    }
    // parameter grads sum over rows: threads take column blocks so no two share a slot
    if (!dweight || !dbias) return;
    int nb = (C + BERT__COLS - 1) / BERT__COLS;
    BERT__PARALLEL_FOR_IF((size_t)N * C)
    for (int cb = 0; cb < nb; cb++) {
        int c0 = cb * BERT__COLS, len = C - c0 < BERT__COLS ? C - c0 : BERT__COLS;
        float dw[BERT__COLS] = { 0 }, db[BERT__COLS] = { 0 };
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C + c0, *d = dout + (size_t)n * C + c0;
            float m = mean[n], s = rstd[n];
            BERT__SIMD
            for (int c = 0; c < len; c++) { dw[c] += (x[c] - m) * s * d[c]; db[c] += d[c]; }
        }
        for (int c = 0; c < len; c++) { dweight[c0 + c] += dw[c]; dbias[c0 + c] += db[c]; }
    }
}

// self-attention on the fused buffer: qkv (B,T,3C) holds q|k|v, head h at columns h*HS within
// each part. mask_add (B,T) is added to every score against key t (NULL = none). att (B,NH,T,T)
// keeps the softmax probabilities before dropout; out (B,T,C) = dropout(att) . v, heads merged.
// Per (b,h), parallel over B*NH: S = scale * Q K^T and O = P V are two small sgemms that read the
// strided heads in place (no head split/merge copies); the sgemms run on the calling thread.
static BERT__THREAD_LOCAL void *bert__attn_buf;
static BERT__THREAD_LOCAL size_t bert__attn_cap;

static float *bert__attn_scratch(size_t floats) {   // per thread, grown once, like the sgemm buffers
    return (float *)bert__scratch(&bert__attn_buf, &bert__attn_cap, floats * sizeof(float), "attention: out of memory for scratch");
}

// the dropped-out probabilities of one (b,h): pd = att * keep / (1-p), row-major (T,T)
static void bert__attention_dropped(float *pd, const float *a, size_t n, uint64_t row0, float drop_p, uint64_t stream) {
    float keep_scale = 1.0f / (1.0f - drop_p);
    for (size_t j = 0; j < n; j++) pd[j] = bert__uniform(stream, row0 + j) >= drop_p ? a[j] * keep_scale : 0.0f;
}

// NEZHA's relative terms (see bert_relpos) on one (b,h), with the table rows it can reach: when
// T-1 < K nothing is clipped and only rows K-(T-1) .. K+(T-1) are used, so the kernels take the
// table from row K-Ke with Ke = min(K, T-1) rows each side (2Ke+1 = KR), and bucket p of query i
// holds the keys j with clip(j-i, -Ke, Ke) + Ke = p: the first and last buckets gather all the
// clipped keys. The score term is a gather of Qr = Q R^T (T,KR), the value term P R summed by
// bucket, so both are (T,KR,HS) sgemms plus O(T*T) adds instead of (T,T,HS) gathers.
static int bert__rel_reach(int K, int T) { return K < T - 1 ? K : T - 1; }

static int bert__rel_bucket_of(int i, int j, int Ke) {
    int d = j - i;
    return (d < -Ke ? -Ke : d > Ke ? Ke : d) + Ke;
}

// row i: s[j] += r[bucket(i,j)]   (the scores' key term; the backward's value term)
static void bert__rel_gather_add(float *s, const float *r, int i, int T, int Ke) {
    for (int j = 0; j < T; j++) s[j] += r[bert__rel_bucket_of(i, j, Ke)];
}

// row i: r[p] = sum of s[j] over bucket p   (the adjoint of the gather)
static void bert__rel_bucket_sum(float *r, const float *s, int i, int T, int Ke) {
    for (int p = 0; p <= 2 * Ke; p++) r[p] = 0.0f;
    for (int j = 0; j < T; j++) r[bert__rel_bucket_of(i, j, Ke)] += s[j];
}

// rel (2K+1,HS) or NULL (BERT): the key and value terms of one (b,h) whose (T,T) scores are in a
static void bert__rel_scores(float *a, float *qr, const float *q, int C3, const float *R, int T, int HS, int Ke, float scale) {
    int KR = 2 * Ke + 1;
    bert__sgemm_blocked(0, 1, T, KR, HS, scale, q, C3, R, HS, 0.0f, qr, KR);   // (T,KR) scale Q R^T
    for (int i = 0; i < T; i++) bert__rel_gather_add(a + (size_t)i * T, qr + (size_t)i * KR, i, T, Ke);
}

static void bert__rel_values(float *o, int ldo, float *pb, const float *p, const float *R, int T, int HS, int Ke) {
    int KR = 2 * Ke + 1;
    for (int i = 0; i < T; i++) bert__rel_bucket_sum(pb + (size_t)i * KR, p + (size_t)i * T, i, T, Ke);
    bert__sgemm_blocked(0, 0, T, HS, KR, 1.0f, pb, KR, R, HS, 1.0f, o, ldo);    // O += bucket(P') R
}

static void bert__attention_forward(float *out, float *att, const float *qkv, const float *mask_add, const float *rel,
                                    int B, int T, int C, int NH, int K, float drop_p, uint64_t stream) {
    int HS = C / NH, C3 = 3 * C, Ke = bert__rel_reach(K, T), KR = 2 * Ke + 1;
    float scale = 1.0f / sqrtf((float)HS);
    const float *R = rel ? rel + (size_t)(K - Ke) * HS : NULL;   // the rows this T reaches
    BERT__PARALLEL_FOR_IF((size_t)B * NH * T * T * HS)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *q = qkv + (size_t)b * T * C3 + h * HS, *k = q + C, *v = q + 2 * C;
        float *a = att + (size_t)bh * T * T, *o = out + (size_t)b * T * C + h * HS;
        size_t pd_n = drop_p > 0.0f ? (size_t)T * T : 0;
        float *pd = bert__attn_scratch(pd_n + (R ? (size_t)T * KR : 0)), *rb = pd + pd_n;
        bert__sgemm_blocked(0, 1, T, T, HS, scale, q, C3, k, C3, 0.0f, a, T);   // (T,T) scores
        if (R) bert__rel_scores(a, rb, q, C3, R, T, HS, Ke, scale);
        for (int i = 0; i < T; i++) {
            float *row = a + (size_t)i * T;
            if (mask_add) {
                const float *madd = mask_add + (size_t)b * T;
                BERT__SIMD
                for (int j = 0; j < T; j++) row[j] += madd[j];
            }
            bert__softmax_row(row, row, T);
        }
        const float *p = a;
        if (drop_p > 0.0f) {
            bert__attention_dropped(pd, a, (size_t)T * T, (uint64_t)bh * T * T, drop_p, stream);
            p = pd;
        }
        bert__sgemm_blocked(0, 0, T, HS, T, 1.0f, p, T, v, C3, 0.0f, o, C);
        if (R) bert__rel_values(o, C, rb, p, R, T, HS, Ke);
    }
}

// the per-(b,h) parts of a learned table's gradient, summed in a fixed order after the parallel loop
// (deterministic for any thread count); on the calling thread, grown once
static BERT__THREAD_LOCAL void *bert__relgrad_buf;
static BERT__THREAD_LOCAL size_t bert__relgrad_cap;

// dP' = dO V^T; dV += P'^T dO; dP = dP' * dropout mask; dS = P * (dP - rowsum(dP * P)) * scale;
// dQ += dS K; dK += dS^T Q. Each (b,h) owns its own columns of dqkv. With rel (NEZHA): dP' also
// gathers dO R^T, dQ += bucket(dS) R, and drel (NULL: the table is fixed) += bucket(P')^T dO +
// bucket(dS)^T Q.
static void bert__attention_backward(float *dqkv, float *drel, const float *dout, const float *qkv, const float *att,
                                     const float *rel, int B, int T, int C, int NH, int K, float drop_p, uint64_t stream) {
    int HS = C / NH, C3 = 3 * C, Ke = bert__rel_reach(K, T), KR = 2 * Ke + 1;
    float scale = 1.0f / sqrtf((float)HS), keep_scale = drop_p > 0.0f ? 1.0f / (1.0f - drop_p) : 1.0f;
    const float *R = rel ? rel + (size_t)(K - Ke) * HS : NULL;
    size_t part = (size_t)KR * HS;
    float *parts = NULL;
    if (R && drel) {
        size_t bytes = (size_t)B * NH * part * sizeof(float);
        parts = (float *)bert__scratch(&bert__relgrad_buf, &bert__relgrad_cap, bytes,
                                       "attention: out of memory for the relative table's gradient");
        memset(parts, 0, bytes);
    }
    BERT__PARALLEL_FOR_IF((size_t)B * NH * T * T * HS)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        size_t TT = (size_t)T * T;
        const float *q = qkv + (size_t)b * T * C3 + h * HS, *k = q + C, *v = q + 2 * C;
        float *dq = dqkv + (size_t)b * T * C3 + h * HS, *dk = dq + C, *dv = dq + 2 * C;
        const float *a = att + (size_t)bh * TT, *d = dout + (size_t)b * T * C + h * HS;
        float *ds = bert__attn_scratch(2 * TT + (R ? (size_t)T * KR : 0)), *pd = ds + TT, *rb = pd + TT;
        float *dr = parts ? parts + (size_t)bh * part : NULL;
        const float *p = a;
        if (drop_p > 0.0f) { bert__attention_dropped(pd, a, TT, (uint64_t)bh * TT, drop_p, stream); p = pd; }
        bert__sgemm_blocked(1, 0, T, HS, T, 1.0f, p, T, d, C, 1.0f, dv, C3);    // dV += P'^T dO
        bert__sgemm_blocked(0, 1, T, T, HS, 1.0f, d, C, v, C3, 0.0f, ds, T);    // dP' = dO V^T
        if (R) {   // the value term: dP' += gather(dO R^T); drel += bucket(P')^T dO
            bert__sgemm_blocked(0, 1, T, KR, HS, 1.0f, d, C, R, HS, 0.0f, rb, KR);
            for (int i = 0; i < T; i++) bert__rel_gather_add(ds + (size_t)i * T, rb + (size_t)i * KR, i, T, Ke);
            if (dr) {
                for (int i = 0; i < T; i++) bert__rel_bucket_sum(rb + (size_t)i * KR, p + (size_t)i * T, i, T, Ke);
                bert__sgemm_blocked(1, 0, KR, HS, T, 1.0f, rb, KR, d, C, 1.0f, dr, HS);
            }
        }
        for (int i = 0; i < T; i++) {
            float *dsr = ds + (size_t)i * T;
            const float *ar = a + (size_t)i * T;
            float dot = 0.0f;
            uint64_t row0 = (uint64_t)bh * TT + (uint64_t)i * T;
            if (drop_p > 0.0f)   // through dropout: the same mask, regenerated
                for (int j = 0; j < T; j++) dsr[j] = bert__uniform(stream, row0 + j) >= drop_p ? dsr[j] * keep_scale : 0.0f;
            for (int j = 0; j < T; j++) dot += dsr[j] * ar[j];
            for (int j = 0; j < T; j++) dsr[j] = ar[j] * (dsr[j] - dot) * scale;
        }
        bert__sgemm_blocked(0, 0, T, HS, T, 1.0f, ds, T, k, C3, 1.0f, dq, C3);  // dQ += dS K
        bert__sgemm_blocked(1, 0, T, HS, T, 1.0f, ds, T, q, C3, 1.0f, dk, C3);  // dK += dS^T Q
        if (R) {   // the key term: dQ += bucket(dS) R; drel += bucket(dS)^T Q
            for (int i = 0; i < T; i++) bert__rel_bucket_sum(rb + (size_t)i * KR, ds + (size_t)i * T, i, T, Ke);
            bert__sgemm_blocked(0, 0, T, HS, KR, 1.0f, rb, KR, R, HS, 1.0f, dq, C3);
            if (dr) bert__sgemm_blocked(1, 0, KR, HS, T, 1.0f, rb, KR, q, C3, 1.0f, dr, HS);
        }
    }
    if (parts) {   // the rows this T reached, in (b,h) order
        float *dst = drel + (size_t)(K - Ke) * HS;
        for (int bh = 0; bh < B * NH; bh++) {
            const float *src = parts + (size_t)bh * part;
            BERT__SIMD
            for (size_t i = 0; i < part; i++) dst[i] += src[i];
        }
    }
}

// GELU, act = BERT_GELU_ERF: 0.5x(1+erf(x/sqrt2)); BERT_GELU_TANH: 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3)))
static void bert__gelu_forward(float *out, const float *inp, size_t n, int act) {
    BERT__FOR_BLOCKS(n, {
        const float *x = inp + i0;
        float *y = out + i0;
        if (act == BERT_GELU_TANH) {
            BERT__SIMD
            for (int i = 0; i < len; i++) y[i] = BERT__GELU_TANH(x[i]);
        } else {
            BERT__SIMD
            for (int i = 0; i < len; i++) y[i] = BERT__GELU_ERF(x[i]);
        }
    });
}

static void bert__gelu_backward(float *dinp, const float *dout, const float *inp, size_t n, int act) {
    BERT__FOR_BLOCKS(n, {
        const float *x = inp + i0, *d = dout + i0;
        float *dx = dinp + i0;
        if (act == BERT_GELU_TANH) {
            BERT__SIMD
            for (int i = 0; i < len; i++) {
                float t = bert__tanhf(BERT__SQRT_2_OVER_PI * (x[i] + 0.044715f * x[i] * x[i] * x[i]));
                // past |x| = 10, 1 - t*t is exactly 0 in float and du could overflow (|x| > ~5e19:
                // inf * 0 = NaN): the sech^2 term takes x clamped there, the same value everywhere else
                float xc = fminf(fmaxf(x[i], -10.0f), 10.0f);
                float du = BERT__SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * xc * xc);
                dx[i] += (0.5f * (1.0f + t) + 0.5f * xc * (1.0f - t * t) * du) * d[i];
            }
        } else {
            BERT__SIMD
            for (int i = 0; i < len; i++) {
                float g = 0.5f * (1.0f + bert__erff(x[i] * BERT__INV_SQRT_2)) +
                          x[i] * BERT__INV_SQRT_2PI * bert__expf(-0.5f * x[i] * x[i]);
                dx[i] += g * d[i];
            }
        }
    });
}

static void bert__tanh_forward(float *out, const float *inp, size_t n) {
    BERT__PARALLEL_FOR_IF(n)
    for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

static void bert__tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
    BERT__PARALLEL_FOR_IF(n)
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

static void bert__add_forward(float *out, const float *a, const float *b, size_t n) {
    BERT__FOR_BLOCKS(n, {
        BERT__SIMD
        for (int i = 0; i < len; i++) out[i0 + i] = a[i0 + i] + b[i0 + i];
    });
}

static void bert__accumulate(float *dst, const float *src, size_t n) {
    BERT__FOR_BLOCKS(n, {
        BERT__SIMD
        for (int i = 0; i < len; i++) dst[i0 + i] += src[i0 + i];
    });
}

static void bert__scale_forward(float *out, const float *inp, size_t n, float alpha) {
    BERT__FOR_BLOCKS(n, {
        BERT__SIMD
        for (int i = 0; i < len; i++) out[i0 + i] = alpha * inp[i0 + i];
    });
}

static void bert__scale_backward(float *dinp, const float *dout, size_t n, float alpha) {
    BERT__FOR_BLOCKS(n, {
        BERT__SIMD
        for (int i = 0; i < len; i++) dinp[i0 + i] += alpha * dout[i0 + i];
    });
}

// dropout: element i kept iff uniform(stream, i) >= p, then scaled by 1/(1-p)
static void bert__dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t stream) {
    float s = 1.0f / (1.0f - p);
    BERT__FOR_BLOCKS(n, {
        BERT__SIMD
        for (int i = 0; i < len; i++) out[i0 + i] = bert__uniform(stream, i0 + (size_t)i) >= p ? inp[i0 + i] * s : 0.0f;
    });
}

static void bert__dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t stream) {
    float s = 1.0f / (1.0f - p);
    BERT__FOR_BLOCKS(n, {
        BERT__SIMD
        for (int i = 0; i < len; i++) dinp[i0 + i] += bert__uniform(stream, i0 + (size_t)i) >= p ? dout[i0 + i] * s : 0.0f;
    });
}

// softmax cross-entropy: logits (N,V), labels (N); rows labelled ignore_index do not count.
// probs (N,V) saved for backward. Returns the mean over counted rows (0 when none count).
static float bert__xent_forward(float *probs, const float *logits, const int32_t *labels, int N, int V,
                                int ignore_index) {
    double total = 0.0;
    int count = 0;
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * V;
        float *p = probs + (size_t)n * V;
        double lse = bert__softmax_row(p, l, V);
        if (labels[n] == ignore_index) continue;
        total += lse - l[labels[n]];
        count++;
    }
    return count ? (float)(total / count) : 0.0f;
}

static void bert__xent_backward(float *dlogits, const float *probs, const int32_t *labels, float dloss,
                                int N, int V, int ignore_index) {
    int count = 0;
    for (int n = 0; n < N; n++) count += labels[n] != ignore_index;
    if (!count) return;
    float s = dloss / (float)count;
    BERT__PARALLEL_FOR_IF((size_t)N * V)
    for (int n = 0; n < N; n++) {
        if (labels[n] == ignore_index) continue;
        const float *p = probs + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        for (int v = 0; v < V; v++) d[v] += s * (p[v] - (v == labels[n] ? 1.0f : 0.0f));
    }
}

// gather rows: out (M,C) = inp[rows[m]]; backward scatter-adds (serial: rows may repeat)
static void bert__gather_forward(float *out, const float *inp, const int32_t *rows, int M, int C) {
    for (int m = 0; m < M; m++) memcpy(out + (size_t)m * C, inp + (size_t)rows[m] * C, (size_t)C * sizeof(float));
}

static void bert__gather_backward(float *dinp, const float *dout, const int32_t *rows, int M, int C) {
    for (int m = 0; m < M; m++) {
        float *d = dinp + (size_t)rows[m] * C;
        const float *s = dout + (size_t)m * C;
        for (int c = 0; c < C; c++) d[c] += s[c];
    }
}

// sum of squares in double over 64 fixed chunks, added in order: the same bits on any thread count
static double bert__sumsq(const float *x, size_t n) {
    double part[64];
    size_t chunk = (n + 63) / 64;
    BERT__PARALLEL_FOR_IF(n)
    for (int c = 0; c < 64; c++) {
        size_t i0 = (size_t)c * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
        double s = 0.0;
        BERT__SIMD_SUM(s)
        for (size_t i = i0; i < i1; i++) s += (double)x[i] * x[i];
        part[c] = s;
    }
    double s = 0.0;
    for (int c = 0; c < 64; c++) s += part[c];
    return s;
}

// Adam/AdamW update over one tensor (one fused pass). g is scaled by gscale (accumulation and
// clipping); bc1/bc2 are the bias-correction divisors 1-beta^t, or 1 for Google's flavour.
// u = (m/bc1) / (sqrt(v/bc2) + eps) + wd*p;  p -= lr*u
static void bert__adam_update(float *p, const float *g, float *m, float *v, size_t n, float lr,
                              float beta1, float beta2, float eps, float wd, float gscale,
                              float bc1, float bc2) {
    float ibc1 = 1.0f / bc1, ibc2 = 1.0f / bc2;   // one division per element, not three
    BERT__FOR_BLOCKS(n, {
        float *pb = p + i0, *mb = m + i0, *vb = v + i0;
        const float *gb = g + i0;
        BERT__SIMD
        for (int i = 0; i < len; i++) {
            float gi = gb[i] * gscale;
            mb[i] = beta1 * mb[i] + (1.0f - beta1) * gi;
            vb[i] = beta2 * vb[i] + (1.0f - beta2) * gi * gi;
            pb[i] -= lr * (mb[i] * ibc1 / (sqrtf(vb[i] * ibc2) + eps) + wd * pb[i]);
        }
    });
}

// LAMB pass 1: update the moments and return |p|^2 and |u|^2 for the trust ratio (in double, over
// 16 fixed chunks added in order, so the ratio has the same bits on any thread count)
static void bert__adam_direction_norms(double *pp_uu, const float *p, const float *g, float *m, float *v,
                                       size_t n, float beta1, float beta2, float eps, float wd,
                                       float gscale, float bc1, float bc2) {
    double part[16][2];
    size_t chunk = (n + 15) / 16;
    BERT__PARALLEL_FOR_IF(n)
    for (int c = 0; c < 16; c++) {
        size_t i0 = (size_t)c * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
        double pp = 0.0, uu = 0.0;
        for (size_t i = i0; i < i1; i++) {
            float gi = g[i] * gscale;
            m[i] = beta1 * m[i] + (1.0f - beta1) * gi;
            v[i] = beta2 * v[i] + (1.0f - beta2) * gi * gi;
            float u = (m[i] / bc1) / (sqrtf(v[i] / bc2) + eps) + wd * p[i];
            pp += (double)p[i] * p[i];
            uu += (double)u * u;
        }
        part[c][0] = pp;
        part[c][1] = uu;
    }
    pp_uu[0] = pp_uu[1] = 0.0;
    for (int c = 0; c < 16; c++) { pp_uu[0] += part[c][0]; pp_uu[1] += part[c][1]; }
}

// LAMB pass 2: p -= step_size * u, with step_size = lr * trust ratio
static void bert__lamb_apply(float *p, const float *m, const float *v, size_t n, float step_size,
                             float eps, float wd, float bc1, float bc2) {
    BERT__FOR_BLOCKS(n, {
        float *pb = p + i0;
        const float *mb = m + i0, *vb = v + i0;
        BERT__SIMD
        for (int i = 0; i < len; i++) pb[i] -= step_size * ((mb[i] / bc1) / (sqrtf(vb[i] / bc2) + eps) + wd * pb[i]);
    });
}

// SGD with momentum (TF MomentumOptimizer / torch SGD, dampening 0): m = mu*m + g + wd*p; p -= lr*m
static void bert__momentum_update(float *p, const float *g, float *m, size_t n, float lr, float mu,
                                  float wd, float gscale) {
    BERT__FOR_BLOCKS(n, {
        float *pb = p + i0, *mb = m + i0;
        const float *gb = g + i0;
        BERT__SIMD
        for (int i = 0; i < len; i++) {
            mb[i] = mu * mb[i] + gb[i] * gscale + wd * pb[i];
            pb[i] -= lr * mb[i];
        }
    });
}

// defined with their op in the "sequence classification" section near the end
// defined with their op in the "linear-chain CRF" section near the end

// defined with their op in the "span head" section near the end

// host memory for the CPU table: the allocator bert.h uses everywhere, and memcpy/memset
static void *bert__host_alloc(size_t bytes) { return bert__malloc(bytes); }
static void bert__host_release(void *p) { BERT_FREE(p); }
static void bert__host_zero(void *p, size_t bytes) { memset(p, 0, bytes); }
static void bert__host_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static const bert_memory bert__host_memory = {
    0, bert__host_alloc, bert__host_release, bert__host_zero, bert__host_copy, bert__host_copy, bert__host_copy,
};

// the memory a model's or optimizer's buffers are in (k NULL: host)
static const bert_memory *bert__mem_of(const struct bert_kernels *k) { return k && k->mem ? k->mem : &bert__host_memory; }

// the task heads' kernel pairs: MSE (regression), the linear-chain CRF, the last-two-dims
// transpose (span logits)

// mean squared error over n elements; backward adds dloss * 2 (pred - target) / n
static float bert__mse_forward(const float *pred, const float *target, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) { double d = (double)pred[i] - (double)target[i]; s += d * d; }
    return n ? (float)(s / (double)n) : 0.0f;
}

static void bert__mse_backward(float *dpred, const float *pred, const float *target, float dloss, size_t n) {
    if (!n) return;
    float s = 2.0f * dloss / (float)n;
    for (size_t i = 0; i < n; i++) dpred[i] += s * (pred[i] - target[i]);
}

// linear-chain CRF: the kernel pair (in the kernel table), the op, Viterbi. Sequences are
// independent, so threads take whole sequences; everything runs in double, and the transition
// grads are summed over sequences in order, so results do not depend on the thread count.
// alpha (n,K): alpha[t][j] = log of the summed exp-scores of all paths y_0..y_t ending in j
static void bert__crf_alpha(double *alpha, const float *em, const float *tr, int n, int K) {
    int K2 = K + 2;
    for (int j = 0; j < K; j++) alpha[j] = (double)tr[K * K2 + j] + em[j];
    for (int t = 1; t < n; t++) {
        const double *a = alpha + (size_t)(t - 1) * K;
        for (int j = 0; j < K; j++) {   // logsumexp_i(a[i] + tr[i,j]), max-shifted
            double m = -INFINITY, s = 0.0;
            for (int i = 0; i < K; i++) m = fmax(m, a[i] + tr[i * K2 + j]);
            for (int i = 0; i < K; i++) s += exp(a[i] + tr[i * K2 + j] - m);
            alpha[(size_t)t * K + j] = em[(size_t)t * K + j] + m + log(s);
        }
    }
}

// beta (n,K): beta[t][i] = log of the summed exp-scores of all continuations after y_t = i, STOP included
static void bert__crf_beta(double *beta, const float *em, const float *tr, int n, int K) {
    int K2 = K + 2;
    for (int i = 0; i < K; i++) beta[(size_t)(n - 1) * K + i] = tr[i * K2 + K + 1];
    for (int t = n - 2; t >= 0; t--) {
        const double *b = beta + (size_t)(t + 1) * K;
        const float *e = em + (size_t)(t + 1) * K;
        for (int i = 0; i < K; i++) {
            double m = -INFINITY, s = 0.0;
            for (int j = 0; j < K; j++) m = fmax(m, tr[i * K2 + j] + e[j] + b[j]);
            for (int j = 0; j < K; j++) s += exp(tr[i * K2 + j] + e[j] + b[j] - m);
            beta[(size_t)t * K + i] = m + log(s);
        }
    }
}

// log Z from the last alpha row
static double bert__crf_log_z(const double *alpha_last, const float *tr, int K) {
    int K2 = K + 2;
    double m = -INFINITY, s = 0.0;
    for (int j = 0; j < K; j++) m = fmax(m, alpha_last[j] + tr[j * K2 + K + 1]);
    for (int j = 0; j < K; j++) s += exp(alpha_last[j] + tr[j * K2 + K + 1] - m);
    return m + log(s);
}

static double bert__crf_score(const float *em, const float *tr, const int32_t *y, int n, int K) {
    int K2 = K + 2;
    double s = (double)tr[K * K2 + y[0]] + tr[y[n - 1] * K2 + K + 1];
    for (int t = 0; t < n; t++) s += em[(size_t)t * K + y[t]] + (t ? (double)tr[y[t - 1] * K2 + y[t]] : 0.0);
    return s;
}

static int bert__crf_count(const int32_t *lengths, int B) {
    int count = 0;
    for (int b = 0; b < B; b++) count += lengths[b] > 0;
    return count;
}

// work: B*(2*T*K + (K+2)*(K+2)) doubles, as for the backward
static float bert__crf_forward(float *nll, const float *emit, const float *trans, const int32_t *tags,
                               const int32_t *lengths, int B, int T, int K, double *work) {
    size_t per = 2 * (size_t)T * K + (size_t)(K + 2) * (K + 2);
    BERT__PARALLEL_FOR_IF((size_t)B * T * K * K)
    for (int b = 0; b < B; b++) {
        int n = lengths[b];
        double *alpha = work + (size_t)b * per, v = 0.0;
        const float *em = emit + (size_t)b * T * K;
        if (n > 0) {
            bert__crf_alpha(alpha, em, trans, n, K);
            v = bert__crf_log_z(alpha + (size_t)(n - 1) * K, trans, K) - bert__crf_score(em, trans, tags + (size_t)b * T, n, K);
        }
        alpha[per - 1] = v;   // the last slot: the sum below reads it in order
        nll[b] = (float)v;
    }
    double total = 0.0;
    for (int b = 0; b < B; b++) total += work[(size_t)b * per + per - 1];
    int count = bert__crf_count(lengths, B);
    return count ? (float)(total / count) : 0.0f;
}

// d NLL / d em[t,j] = p(y_t = j) - [tag_t = j]; d NLL / d tr[i,j] = expected count of i->j minus
// the gold path's count (START->j at t = 0, i->STOP at the end), each scaled by dloss / count
static void bert__crf_backward(float *demit, float *dtrans, const float *emit, const float *trans,
                               const int32_t *tags, const int32_t *lengths, float dloss, int B, int T, int K,
                               double *work) {
    int K2 = K + 2, count = bert__crf_count(lengths, B);
    if (!count) return;
    size_t per = 2 * (size_t)T * K + (size_t)K2 * K2;
    double s = (double)dloss / count;
    BERT__PARALLEL_FOR_IF((size_t)B * T * K * K)
    for (int b = 0; b < B; b++) {
        int n = lengths[b];
        double *alpha = work + (size_t)b * per, *beta = alpha + (size_t)T * K, *dtr = beta + (size_t)T * K;
        const float *em = emit + (size_t)b * T * K;
        const int32_t *y = tags + (size_t)b * T;
        memset(dtr, 0, (size_t)K2 * K2 * sizeof(double));
        if (n <= 0) continue;
        bert__crf_alpha(alpha, em, trans, n, K);
        bert__crf_beta(beta, em, trans, n, K);
        double log_z = bert__crf_log_z(alpha + (size_t)(n - 1) * K, trans, K);
        for (int t = 0; t < n; t++)
            for (int j = 0; j < K; j++) {
                double p = exp(alpha[(size_t)t * K + j] + beta[(size_t)t * K + j] - log_z) - (y[t] == j);
                if (demit) demit[((size_t)b * T + t) * K + j] += (float)(s * p);
                if (t == 0) dtr[K * K2 + j] += p;
                if (t == n - 1) dtr[j * K2 + K + 1] += p;
            }
        for (int t = 1; t < n; t++) {
            const double *a = alpha + (size_t)(t - 1) * K, *bt = beta + (size_t)t * K;
            const float *e = em + (size_t)t * K;
            for (int i = 0; i < K; i++)
                for (int j = 0; j < K; j++)
                    dtr[i * K2 + j] += exp(a[i] + trans[i * K2 + j] + e[j] + bt[j] - log_z);
            dtr[y[t - 1] * K2 + y[t]] -= 1.0;
        }
    }
    if (!dtrans) return;
    for (int i = 0; i < K2 * K2; i++) {
        double g = 0.0;
        for (int b = 0; b < B; b++) g += work[(size_t)b * per + 2 * (size_t)T * K + i];
        dtrans[i] += (float)(s * g);
    }
}

static void bert__transpose_forward(float *out, const float *inp, int B, int M, int N) {
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * M * N;
        float *y = out + (size_t)b * M * N;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) y[(size_t)j * M + i] = x[(size_t)i * N + j];
    }
}

static void bert__transpose_backward(float *dinp, const float *dout, int B, int M, int N) {
    for (int b = 0; b < B; b++) {
        float *dx = dinp + (size_t)b * M * N;
        const float *dy = dout + (size_t)b * M * N;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) dx[(size_t)i * N + j] += dy[(size_t)j * M + i];
    }
}

// Generated from BERT_KERNELS, which also lays out the struct, so each entry lands in the field of
// its name: entry `foo` is bert__foo. (A positional list C++11 can read; C++ has no designated
// initialisers before C++20.)
#define bert__sgemm bert__sgemm_blocked
static const bert_kernels bert__cpu_kernels = {
    "cpu", &bert__host_memory,
#define BERT__CPU_ENTRY(ret, name, args) bert__##name,
    BERT_KERNELS(BERT__CPU_ENTRY)
#undef BERT__CPU_ENTRY
};
#undef bert__sgemm

BERTDEF const bert_kernels *bert_cpu_kernels(void) { return &bert__cpu_kernels; }

// the CPU table with the linear layer's GEMMs in bf16 (bert__bf16_gemm); made on the first call
BERTDEF const bert_kernels *bert_cpu_bf16_kernels(void) {
    static bert_kernels k;
    if (!k.name) {
        bert_kernels t = bert__cpu_kernels;
        t.linear_forward = bert__bf16_linear_forward;
        t.linear_act_forward = bert__bf16_linear_act_forward;
        t.linear_backward = bert__bf16_linear_backward;
        t.name = "cpu-bf16";
        k = t;
    }
    return &k;
}

/* The measuring table: its memory is only counted (every block gets the same fake device address,
   never dereferenced) and its kernels do nothing, so a step built on a ctx from
   bert_ctx_create_on(bert_measure_kernels(), 0) tells, through bert_ctx_high_water, the bytes that
   step's activations need, without allocating them or computing anything. Downloads read zeros. */
static void *bert__measure_alloc(size_t bytes) { (void)bytes; return (void *)(uintptr_t)64; }
static void bert__measure_release(void *p) { (void)p; }
static void bert__measure_zero(void *p, size_t bytes) { (void)p; (void)bytes; }
static void bert__measure_copy(void *dst, const void *src, size_t bytes) { (void)dst; (void)src; (void)bytes; }
static void bert__measure_download(void *host_dst, const void *src, size_t bytes) { (void)src; memset(host_dst, 0, bytes); }
static const bert_memory bert__measure_memory = {
    1, bert__measure_alloc, bert__measure_release, bert__measure_zero, bert__measure_copy, bert__measure_download,
    bert__measure_copy,
};
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"   // the generated kernels ignore every argument
#endif
#define BERT__MEASURE_RET_void
#define BERT__MEASURE_RET_float return 0.0f;
#define BERT__MEASURE_RET_double return 0.0;
#define BERT__MEASURE_KERNEL(ret, name, args) static ret bert__measure_##name args { BERT__MEASURE_RET_##ret }
BERT_KERNELS(BERT__MEASURE_KERNEL)
#undef BERT__MEASURE_KERNEL
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic pop
#endif
static const bert_kernels bert__measure_kernels = {
    "measure", &bert__measure_memory,
#define BERT__MEASURE_ENTRY(ret, name, args) bert__measure_##name,
    BERT_KERNELS(BERT__MEASURE_ENTRY)
#undef BERT__MEASURE_ENTRY
};

BERTDEF const bert_kernels *bert_measure_kernels(void) { return &bert__measure_kernels; }

// ----------------------------------------------------------------------------
// arena and tensors: a bump allocator reset once per step

#define BERT__ALIGN 64
static size_t bert__pad(size_t n) { return (n + BERT__ALIGN - 1) & ~(size_t)(BERT__ALIGN - 1); }

// A block's header is host memory; its bytes follow the header, or come from a->mem (a device's).
static bert_arena_block *bert__block_new(const bert_arena *a, size_t size, bert_arena_block *prev) {
    bert_arena_block *blk = (bert_arena_block *)bert__malloc(bert__pad(sizeof *blk) + (a->mem ? 0 : size));
    if (!blk) return NULL;
    blk->prev = prev;
    blk->size = size;
    blk->used = 0;
    blk->base = a->mem ? (unsigned char *)a->mem->alloc(size) : (unsigned char *)blk + bert__pad(sizeof *blk);
    if (!blk->base) { BERT_FREE(blk); return NULL; }
    return blk;
}

static void bert__block_free(const bert_arena *a, bert_arena_block *blk) {
    if (a->mem) a->mem->release(blk->base);
    BERT_FREE(blk);
}

static unsigned char *bert__block_base(bert_arena_block *blk) { return blk->base; }

// Memory from the arena (not zeroed: op outputs are overwritten by their kernels; grads come
// from bert__zeros). A full block chains a new one (only until the next reset merges
// them), so a first step of unknown size still runs; out of memory here is fatal by design.
static void *bert__arena_alloc(bert_arena *a, size_t bytes) {
    size_t n = bert__pad(bytes ? bytes : 1);
    if (!a->head || a->head->used + n > a->head->size) {
        size_t size = a->head ? a->head->size : 0;
        if (size < n) size = n;
        bert_arena_block *blk = bert__block_new(a, size, a->head);
        BERT_ASSERT_MSG(blk != NULL, "bert arena: out of memory");
        a->head = blk;
    }
    void *p = bert__block_base(a->head) + a->head->used;
    a->head->used += n;
    a->used += n;
    if (a->used > a->high_water) a->high_water = a->used;
    return p;
}

// Marks and rewinds let no-grad inference drop a layer's intermediates once the layer is done.
typedef struct { bert_arena_block *block; size_t block_used, used; } bert__arena_mark;

static bert__arena_mark bert__mark(const bert_arena *a) {
    bert__arena_mark m;
    m.block = a->head;
    m.block_used = a->head ? a->head->used : 0;
    m.used = a->used;
    return m;
}

// back to the mark, plus `need` bytes there; blocks chained since the mark are released
static void bert__arena_pop_to(bert_arena *a, bert__arena_mark m, size_t need) {
    while (a->head != m.block) {
        bert_arena_block *prev = a->head->prev;
        bert__block_free(a, a->head);
        a->head = prev;
    }
    m.block->used = m.block_used + need;
    a->used = m.used + need;
}

// Frees everything allocated since the mark but `keep` (a tensor made after it), which is moved
// down to the mark; blocks chained since the mark are released (the first step of a run, before
// the arena has learned its size). If `keep` does not fit in the mark's block, nothing is freed.
static bert_tensor *bert__rewind_keep(bert_arena *a, bert__arena_mark m, bert_tensor *keep) {
    size_t need = bert__pad(sizeof(bert_tensor)) + bert__pad(keep->numel * sizeof(float));
    if (!m.block || m.block_used + need > m.block->size) return keep;
    bert_tensor saved = *keep;
    unsigned char *base = bert__block_base(m.block) + m.block_used;
    bert_tensor *t = (bert_tensor *)base;
    float *data = (float *)(base + bert__pad(sizeof(bert_tensor)));
    memmove(data, saved.data, saved.numel * sizeof(float));   // within one block the regions may overlap
    bert__arena_pop_to(a, m, need);   // newer blocks are empty but for what was just copied out
    *t = saved;
    t->data = data;
    return t;
}

// The same for a ctx: with its floats on a device, the header moves down in the host arena and the
// data in the device arena, in pieces no longer than the distance moved (no copy overlaps itself).
typedef struct { bert__arena_mark host, data; } bert__marks;

static bert__marks bert__marks_now(const bert_ctx *ctx) {
    bert__marks m;
    m.host = bert__mark(&ctx->arena);
    m.data = bert__mark(&ctx->data);
    return m;
}

// frees everything allocated since the mark (in both arenas)
static void bert__ctx_pop(bert_ctx *ctx, bert__marks m) {
    if (m.host.block) bert__arena_pop_to(&ctx->arena, m.host, 0);
    if (m.data.block) bert__arena_pop_to(&ctx->data, m.data, 0);
}

static bert_tensor *bert__ctx_rewind_keep(bert_ctx *ctx, bert__marks m, bert_tensor *keep) {
    if (!ctx->data.mem) return bert__rewind_keep(&ctx->arena, m.host, keep);
    size_t hneed = bert__pad(sizeof(bert_tensor)), bytes = keep->numel * sizeof(float), dneed = bert__pad(bytes);
    if (!m.host.block || m.host.block_used + hneed > m.host.block->size ||
        !m.data.block || m.data.block_used + dneed > m.data.block->size) return keep;
    bert_tensor saved = *keep;
    unsigned char *dst = m.data.block->base + m.data.block_used, *src = (unsigned char *)saved.data;
    uintptr_t lo = (uintptr_t)m.data.block->base, s = (uintptr_t)src;
    size_t piece = s >= lo && s < lo + m.data.block->size ? (size_t)(src - dst) : bytes;   // same block: the gap
    for (size_t off = 0; piece && off < bytes; off += piece)
        ctx->data.mem->copy(dst + off, src + off, bytes - off < piece ? bytes - off : piece);
    bert__arena_pop_to(&ctx->data, m.data, dneed);
    bert_tensor *t = (bert_tensor *)(bert__block_base(m.host.block) + m.host.block_used);
    bert__arena_pop_to(&ctx->arena, m.host, hneed);
    *t = saved;
    t->data = (float *)dst;
    return t;
}

static void bert__arena_free_blocks(const bert_arena *a, bert_arena_block *blk) {
    while (blk) { bert_arena_block *prev = blk->prev; bert__block_free(a, blk); blk = prev; }
}

static void bert__arena_reset(bert_arena *a) {
    if (a->head && a->head->prev) {   // the last step overflowed: one block of the high-water size
        bert__arena_free_blocks(a, a->head);
        a->head = bert__block_new(a, a->high_water, NULL);
        BERT_ASSERT_MSG(a->head != NULL, "bert arena: out of memory");
    }
    if (a->head) a->head->used = 0;
    a->used = 0;
}

BERTDEF bert_ctx *bert_ctx_create(size_t arena_bytes) { return bert_ctx_create_on(bert_cpu_kernels(), arena_bytes); }

BERTDEF bert_ctx *bert_ctx_create_on(const bert_kernels *k, size_t arena_bytes) {
    bert_ctx *ctx = (bert_ctx *)bert__calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    size_t bytes = arena_bytes ? arena_bytes : ((size_t)1 << 20);
    ctx->k = k;
    if (k->mem && k->mem->device) {   // floats on the device; the host arena keeps headers, names, ints
        ctx->data.mem = k->mem;
        ctx->data.head = bert__block_new(&ctx->data, bytes, NULL);
        if (!ctx->data.head) { bert_ctx_free(ctx); return NULL; }
        bytes = (size_t)1 << 20;
    }
    ctx->arena.head = bert__block_new(&ctx->arena, bytes, NULL);
    ctx->tape_cap = 1024;
    ctx->tape = (bert_node *)bert__calloc((size_t)ctx->tape_cap, sizeof(bert_node));
    if (!ctx->arena.head || !ctx->tape) { bert_ctx_free(ctx); return NULL; }
    ctx->grad_enabled = 1;
    ctx->training = 1;
    ctx->seed = 1234;
    return ctx;
}

BERTDEF void bert_ctx_free(bert_ctx *ctx) {
    if (!ctx) return;
    bert__arena_free_blocks(&ctx->arena, ctx->arena.head);
    bert__arena_free_blocks(&ctx->data, ctx->data.head);
    BERT_FREE(ctx->tape);
    BERT_FREE(ctx->free_grads);
    BERT_FREE(ctx->free_sizes);
    BERT_FREE(ctx);
}

BERTDEF void bert_ctx_reset(bert_ctx *ctx, uint64_t step) {
    bert__arena_reset(&ctx->arena);
    bert__arena_reset(&ctx->data);
    ctx->tape_len = 0;
    ctx->free_len = 0;
    ctx->step = step;
    ctx->dropout_site = 0;
}

BERTDEF size_t bert_ctx_high_water(const bert_ctx *ctx) { return ctx->arena.high_water + ctx->data.high_water; }

// the arena a tensor's floats come from: the device arena when ctx->k is a device table (also
// when ctx->k was set to one after bert_ctx_create: its blocks then start at each request's size)
static bert_arena *bert__data_arena(bert_ctx *ctx) {
    if (!ctx->data.mem && !ctx->data.head && ctx->k->mem && ctx->k->mem->device) ctx->data.mem = ctx->k->mem;
    return ctx->data.mem ? &ctx->data : &ctx->arena;
}

static float *bert__floats(bert_ctx *ctx, size_t n) {   // uninitialised
    return (float *)bert__arena_alloc(bert__data_arena(ctx), n * sizeof(float));
}

static void bert__zero_floats(bert_ctx *ctx, float *p, size_t n) {
    if (ctx->data.mem) ctx->data.mem->zero(p, n * sizeof(float));
    else memset(p, 0, n * sizeof(float));
}

static float *bert__zeros(bert_ctx *ctx, size_t n) {
    float *p = bert__floats(ctx, n);
    bert__zero_floats(ctx, p, n);
    return p;
}

// Host values an op computes for its kernel (the attention mask): written in host memory, then
// handed over; on the CPU both are the same arena floats, on a device they are uploaded.
static float *bert__host_floats(bert_ctx *ctx, size_t n) {
    bert__data_arena(ctx);
    return ctx->data.mem ? (float *)bert__arena_alloc(&ctx->arena, n * sizeof(float)) : bert__floats(ctx, n);
}

static float *bert__to_data(bert_ctx *ctx, float *host, size_t n) {
    if (!ctx->data.mem) return host;
    float *d = bert__floats(ctx, n);
    ctx->data.mem->upload(d, host, n * sizeof(float));
    return d;
}

// one float of tensor memory, read or written from the host (a loss, its seed gradient)
static void bert__set_scalar(bert_ctx *ctx, float *dst, float v) {
    if (ctx->data.mem) ctx->data.mem->upload(dst, &v, sizeof v);
    else *dst = v;
}

static float bert__get_scalar(const bert_ctx *ctx, const float *src) {
    float v;
    if (ctx->data.mem) ctx->data.mem->download(&v, src, sizeof v);
    else v = *src;
    return v;
}

// an op's output: its kernel overwrites every element, so the data is left uninitialised
static bert_tensor *bert__tensor_of(bert_ctx *ctx, int ndim, const int *shape) {
    BERT_ASSERT(ndim >= 1 && ndim <= 4);
    bert_tensor *t = (bert_tensor *)bert__arena_alloc(&ctx->arena, sizeof(bert_tensor));
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) { BERT_ASSERT(shape[i] > 0); t->shape[i] = shape[i]; t->numel *= (size_t)shape[i]; }
    t->data = bert__floats(ctx, t->numel);
    return t;
}

static bert_tensor *bert__tensor(bert_ctx *ctx, int ndim, int d0, int d1, int d2, int d3) {
    int shape[4] = { d0, d1, d2, d3 };
    return bert__tensor_of(ctx, ndim, shape);
}

BERTDEF bert_tensor *bert_tensor_new(bert_ctx *ctx, int ndim, const int *shape) {
    bert_tensor *t = bert__tensor_of(ctx, ndim, shape);
    bert__zero_floats(ctx, t->data, t->numel);
    return t;
}

BERTDEF void bert_tensor_set_name(bert_ctx *ctx, bert_tensor *t, const char *fmt, int i) {
    char buf[64];
    snprintf(buf, sizeof buf, fmt, i);
    char *s = (char *)bert__arena_alloc(&ctx->arena, strlen(buf) + 1);
    memcpy(s, buf, strlen(buf) + 1);
    t->name = s;
}

static int32_t *bert__copy_ints(bert_ctx *ctx, const int32_t *src, size_t n) {
    int32_t *d = (int32_t *)bert__arena_alloc(&ctx->arena, n * sizeof(int32_t));
    memcpy(d, src, n * sizeof(int32_t));
    return d;
}

// ----------------------------------------------------------------------------
// tape: ops push nodes in forward order, which is already topological

static const char *const bert__op_names[BERT_OP_COUNT] = {   // from BERT_OPS, in enum order
#define BERT__OP_NAME(ENUM, name) #name,
    BERT_OPS(BERT__OP_NAME)
#undef BERT__OP_NAME
};

BERTDEF const char *bert_op_name(bert_op op) {
    return (unsigned)op < BERT_OP_COUNT ? bert__op_names[op] : "?";
}

static int bert__needs_grad(const bert_tensor *t) { return t && (t->flags & BERT_TENSOR_REQUIRES_GRAD); }

// Records a node if any input needs a gradient; the output then needs one too.
static bert_node *bert__record(bert_ctx *ctx, bert_op op, bert_tensor *out, bert_tensor *a,
                               bert_tensor *b, bert_tensor *c) {
    if (!ctx->grad_enabled || !(bert__needs_grad(a) || bert__needs_grad(b) || bert__needs_grad(c))) return NULL;
    if (ctx->tape_len == ctx->tape_cap) {   // grows on the first steps only: the tape is reused
        int cap = ctx->tape_cap * 2;
        bert_node *nt = (bert_node *)bert__calloc((size_t)cap, sizeof(bert_node));
        BERT_ASSERT_MSG(nt != NULL, "bert tape: out of memory");
        memcpy(nt, ctx->tape, (size_t)ctx->tape_len * sizeof(bert_node));
        BERT_FREE(ctx->tape);
        ctx->tape = nt;
        ctx->tape_cap = cap;
    }
    bert_node *n = &ctx->tape[ctx->tape_len++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->out = out;
    n->in[0] = a; n->in[1] = b; n->in[2] = c;
    out->flags |= BERT_TENSOR_REQUIRES_GRAD;
    return n;
}

BERTDEF bert_tensor *bert_ctx_find(const bert_ctx *ctx, const char *name) {
    for (int i = ctx->tape_len - 1; i >= 0; i--) {
        bert_tensor *t = ctx->tape[i].out;
        if (t->name && strcmp(t->name, name) == 0) return t;
    }
    return NULL;
}

BERTDEF void bert_tape_print(const bert_ctx *ctx, void *file) {
    FILE *f = (FILE *)file;
    for (int i = 0; i < ctx->tape_len; i++) {
        const bert_tensor *t = ctx->tape[i].out;
        fprintf(f, "%4d %-13s %-16s [", i, bert_op_name(ctx->tape[i].op), t->name ? t->name : "");
        for (int d = 0; d < t->ndim; d++) fprintf(f, d ? ",%d" : "%d", t->shape[d]);
        fprintf(f, "]\n");
    }
}

// a tensor's grad, allocated zeroed on first use (params already point into the model's grads)
static float *bert__grad(bert_ctx *ctx, bert_tensor *t) {
    if (!t || !bert__needs_grad(t)) return NULL;
    if (t->grad) return t->grad;
    for (int i = ctx->free_len - 1; i >= 0; i--) {   // a dead grad of the same size, if any
        if (ctx->free_sizes[i] != t->numel) continue;
        t->grad = ctx->free_grads[i];
        ctx->free_grads[i] = ctx->free_grads[--ctx->free_len];
        ctx->free_sizes[i] = ctx->free_sizes[ctx->free_len];
        bert__zero_floats(ctx, t->grad, t->numel);
        return t->grad;
    }
    return t->grad = bert__zeros(ctx, t->numel);
}

// After a node's backward its output's grad is dead (every consumer of the output comes later on
// the tape, so it was processed first): its memory goes on the reuse list. This keeps backward's
// footprint near the largest live set instead of the sum of all activation grads.
static void bert__release_grad(bert_ctx *ctx, bert_tensor *t) {
    if (ctx->retain_grads || (t->flags & BERT_TENSOR_PARAM) || !t->grad) return;
    if (ctx->free_len == ctx->free_cap) {   // grows in the first steps only
        int cap = ctx->free_cap ? 2 * ctx->free_cap : 64;
        float **g = (float **)bert__calloc((size_t)cap, sizeof(float *));
        size_t *sz = (size_t *)bert__calloc((size_t)cap, sizeof(size_t));
        BERT_ASSERT_MSG(g && sz, "bert backward: out of memory");
        if (ctx->free_len) {
            memcpy(g, ctx->free_grads, (size_t)ctx->free_len * sizeof(float *));
            memcpy(sz, ctx->free_sizes, (size_t)ctx->free_len * sizeof(size_t));
        }
        BERT_FREE(ctx->free_grads);
        BERT_FREE(ctx->free_sizes);
        ctx->free_grads = g;
        ctx->free_sizes = sz;
        ctx->free_cap = cap;
    }
    ctx->free_grads[ctx->free_len] = t->grad;
    ctx->free_sizes[ctx->free_len++] = t->numel;
    t->grad = NULL;
}

static int bert__rows(const bert_tensor *t) { return (int)(t->numel / (size_t)t->shape[t->ndim - 1]); }
static int bert__cols(const bert_tensor *t) { return t->shape[t->ndim - 1]; }

// One case per op: call the backward kernel with the values the forward saved.
static void bert__backward_node(bert_ctx *ctx, bert_node *n) {
    const bert_kernels *k = ctx->k;
    bert_tensor *out = n->out, *a = n->in[0], *b = n->in[1], *c = n->in[2];
    const float *dout = out->grad;
    switch (n->op) {
    case BERT_OP_EMBED: {
        int B = n->iarg[0], T = n->iarg[1], C = bert__cols(out);
        k->embedding_backward(bert__grad(ctx, a), bert__grad(ctx, b), bert__grad(ctx, c), dout,
                              n->idx[0], n->idx[1], B, T, C);
        break;
    }
    case BERT_OP_LINEAR:
        k->linear_backward(bert__grad(ctx, a), bert__grad(ctx, b), bert__grad(ctx, c), dout, a->data,
                           b->data, bert__rows(a), bert__cols(a), bert__cols(out));
        break;
    case BERT_OP_LAYERNORM:
        k->layernorm_backward(bert__grad(ctx, a), bert__grad(ctx, b), bert__grad(ctx, c), dout, a->data,
                              b->data, n->saved[0], n->saved[1], bert__rows(a), bert__cols(a));
        break;
    case BERT_OP_ATTENTION:
        k->attention_backward(bert__grad(ctx, a), bert__grad(ctx, b), dout, a->data, n->saved[0], b ? b->data : NULL,
                              n->iarg[0], n->iarg[1], n->iarg[2], n->iarg[3], n->iarg[4], n->farg[0], n->stream);
        break;
    case BERT_OP_GELU:
        k->gelu_backward(bert__grad(ctx, a), dout, a->data, a->numel, n->iarg[0]);
        break;
    case BERT_OP_TANH:
        k->tanh_backward(bert__grad(ctx, a), dout, out->data, a->numel);
        break;
    case BERT_OP_ADD:
        if (bert__needs_grad(a)) k->accumulate(bert__grad(ctx, a), dout, a->numel);
        if (bert__needs_grad(b)) k->accumulate(bert__grad(ctx, b), dout, b->numel);
        break;
    case BERT_OP_DROPOUT:
        k->dropout_backward(bert__grad(ctx, a), dout, a->numel, n->farg[0], n->stream);
        break;
    case BERT_OP_SCALE:
        k->scale_backward(bert__grad(ctx, a), dout, a->numel, n->farg[0]);
        break;
    case BERT_OP_MSE:
        k->mse_backward(bert__grad(ctx, a), a->data, n->saved[0], dout[0], a->numel);
        break;
    case BERT_OP_SOFTMAX_XENT:
        k->xent_backward(bert__grad(ctx, a), n->saved[0], n->idx[0], bert__get_scalar(ctx, dout), bert__rows(a),
                         bert__cols(a), n->iarg[0]);
        break;
    case BERT_OP_GATHER:
        k->gather_backward(bert__grad(ctx, a), dout, n->idx[0], n->iarg[0], bert__cols(a));
        break;
    case BERT_OP_CRF: {
        int B = n->iarg[0], T = n->iarg[1], K = n->iarg[2];
        size_t nw = (size_t)B * (2 * (size_t)T * K + (size_t)(K + 2) * (K + 2));
        double *work = (double *)bert__arena_alloc(&ctx->arena, nw * sizeof(double));
        k->crf_backward(bert__grad(ctx, a), bert__grad(ctx, b), a->data, b->data, n->idx[0], n->idx[1],
                        bert__get_scalar(ctx, dout), B, T, K, work);
        break;
    }
    case BERT_OP_TRANSPOSE:
        k->transpose_backward(bert__grad(ctx, a), dout, n->iarg[0], n->iarg[1], n->iarg[2]);
        break;
    case BERT_OP_COUNT:
        BERT_ASSERT_MSG(0, "bad op on the tape");
    }
}

BERTDEF void bert_backward(bert_ctx *ctx, bert_tensor *loss) { bert_backward_scaled(ctx, loss, 1.0f); }

BERTDEF void bert_backward_scaled(bert_ctx *ctx, bert_tensor *loss, float weight) {
    BERT_ASSERT_MSG(loss->numel == 1, "bert_backward: the loss must be a scalar");
    if (!bert__needs_grad(loss)) return;   // nothing on the tape leads to a parameter
    float *seed = bert__grad(ctx, loss);
    bert__set_scalar(ctx, seed, bert__get_scalar(ctx, seed) + weight);   // += weight, in any memory
    for (int i = ctx->tape_len - 1; i >= 0; i--) {
        bert_node *n = &ctx->tape[i];
        if (!n->out->grad) continue;
        bert__backward_node(ctx, n);
        if (n->out != loss) bert__release_grad(ctx, n->out);
    }
}

// ----------------------------------------------------------------------------
// ops: check shapes, run the forward kernel, record the node

BERTDEF bert_tensor *bert_embed(bert_ctx *ctx, bert_tensor *wte, bert_tensor *wpe, bert_tensor *wtt,
                                const int32_t *ids, const int32_t *types, int B, int T) {
    int C = bert__cols(wte);   // wpe NULL: no absolute positions (NEZHA)
    BERT_ASSERT(bert__cols(wtt) == C && (!wpe || (bert__cols(wpe) == C && T <= wpe->shape[0])));
    for (int i = 0; i < B * T; i++) {
        BERT_ASSERT_MSG(ids[i] >= 0 && ids[i] < wte->shape[0], "bert_embed: token id out of range");
        BERT_ASSERT_MSG(!types || (types[i] >= 0 && types[i] < wtt->shape[0]), "bert_embed: token type out of range");
    }
    bert_tensor *out = bert__tensor(ctx, 3, B, T, C, 0);
    ctx->k->embedding_forward(out->data, ids, types, wte->data, wpe ? wpe->data : NULL, wtt->data, B, T, C);
    bert_node *n = bert__record(ctx, BERT_OP_EMBED, out, wte, wpe, wtt);
    if (n) {
        n->idx[0] = bert__copy_ints(ctx, ids, (size_t)B * T);
        n->idx[1] = types ? bert__copy_ints(ctx, types, (size_t)B * T) : NULL;
        n->iarg[0] = B; n->iarg[1] = T;
    }
    return out;
}

BERTDEF bert_tensor *bert_linear(bert_ctx *ctx, bert_tensor *x, bert_tensor *w, bert_tensor *b) {
    int IC = bert__cols(x), OC = w->shape[0], N = bert__rows(x);
    BERT_ASSERT_MSG(w->ndim == 2 && w->shape[1] == IC, "bert_linear: weight must be (OC, IC)");
    BERT_ASSERT_MSG(!b || b->numel == (size_t)OC, "bert_linear: bias must be (OC)");
    int shape[4];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = OC;
    bert_tensor *out = bert__tensor_of(ctx, x->ndim, shape);
    ctx->k->linear_forward(out->data, x->data, w->data, b ? b->data : NULL, N, IC, OC);
    bert__record(ctx, BERT_OP_LINEAR, out, x, w, b);
    return out;
}

// inference only (no tape node): act(x . w^T + b + res) as one kernel, linear_act_forward; res (the
// output's shape) may be NULL, act BERT_ACT_NONE or a bert_act
static bert_tensor *bert__linear_act(bert_ctx *ctx, bert_tensor *x, bert_tensor *w, bert_tensor *b, bert_tensor *res, int act) {
    int IC = bert__cols(x), OC = w->shape[0], N = bert__rows(x);
    BERT_ASSERT_MSG(!ctx->grad_enabled && w->ndim == 2 && w->shape[1] == IC && (!b || b->numel == (size_t)OC),
                    "bert__linear_act: inference only, weight (OC, IC), bias (OC)");
    int shape[4];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = OC;
    bert_tensor *out = bert__tensor_of(ctx, x->ndim, shape);
    BERT_ASSERT_MSG(!res || res->numel == out->numel, "bert__linear_act: residual must have the output's shape");
    ctx->k->linear_act_forward(out->data, x->data, w->data, b ? b->data : NULL, res ? res->data : NULL, N, IC, OC, act);
    return out;
}

// inference with int8 or bf16 weights (bert_model_quantize): as bert__linear_act, x quantised per token
// (int8) or rounded (bf16) into the arena first; host memory only
static bert_tensor *bert__qlinear_act(bert_ctx *ctx, bert_tensor *x, const bert_qweight *q, bert_tensor *b, bert_tensor *res, int act) {
    int IC = bert__cols(x), N = bert__rows(x), OC = q->OC, Npad = (N + BERT__QPAD - 1) / BERT__QPAD * BERT__QPAD;
    BERT_ASSERT_MSG(!ctx->grad_enabled && !bert__mem_of(ctx->k)->device && IC == q->IC, "bert__qlinear_act: host inference only");
    int shape[4];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = OC;
    bert_tensor *out = bert__tensor_of(ctx, x->ndim, shape);
    bert__epilogue ep = { b ? b->data : NULL, res ? res->data : NULL, (size_t)OC, act, 0, 0 };
    if (q->h) {   // bf16
        uint16_t *xh = (uint16_t *)bert__arena_alloc(&ctx->arena, (size_t)Npad * q->K4 * 2 * sizeof(uint16_t));
        bert__bf16_rows(xh, x->data, N, Npad, IC, q->K4);
        bert__bgemm(out->data, xh, N, Npad, q, &ep);
        return out;
    }
    uint8_t *xq = (uint8_t *)bert__arena_alloc(&ctx->arena, (size_t)Npad * q->K4 * 4);
    float *sx = (float *)bert__arena_alloc(&ctx->arena, (size_t)Npad * sizeof(float));
    bert__quantize_rows(xq, sx, x->data, N, Npad, IC, q->K4);
    bert__qgemm(out->data, xq, sx, N, q, &ep);
    return out;
}

BERTDEF bert_tensor *bert_layernorm(bert_ctx *ctx, bert_tensor *x, bert_tensor *w, bert_tensor *b,
                                    float eps) {
    int N = bert__rows(x), C = bert__cols(x);
    BERT_ASSERT(w->numel == (size_t)C && b->numel == (size_t)C);
    bert_tensor *out = bert__tensor_of(ctx, x->ndim, x->shape);
    float *mean = bert__floats(ctx, (size_t)N), *rstd = bert__floats(ctx, (size_t)N);
    ctx->k->layernorm_forward(out->data, mean, rstd, x->data, w->data, b->data, N, C, eps);
    bert_node *n = bert__record(ctx, BERT_OP_LAYERNORM, out, x, w, b);
    if (n) { n->saved[0] = mean; n->saved[1] = rstd; }
    return out;
}

/* Inference: LayerNorm of x written over dst's floats (x's shape), with no tape and no saved
   statistics: bert_encode writes each layer's output over the layer's input, dead by then, so the
   layer's arena is dropped without moving the output down. Same floats as bert_layernorm. */
static bert_tensor *bert__layernorm_over(bert_ctx *ctx, bert_tensor *dst, bert_tensor *x, bert_tensor *w, bert_tensor *b,
                                         float eps) {
    int N = bert__rows(x), C = bert__cols(x);
    BERT_ASSERT_MSG(!ctx->grad_enabled && dst->numel == x->numel && w->numel == (size_t)C && b->numel == (size_t)C,
                    "bert__layernorm_over: inference only, dst of x's size");
    float *mean = bert__floats(ctx, (size_t)N), *rstd = bert__floats(ctx, (size_t)N);
    ctx->k->layernorm_forward(dst->data, mean, rstd, x->data, w->data, b->data, N, C, eps);
    return dst;
}

// the dropout stream of this call: each call in a step gets the next site number
static uint64_t bert__next_stream(bert_ctx *ctx) {
    return bert_rng_stream(ctx->seed, ctx->step, (uint64_t)ctx->dropout_site++);
}

BERTDEF bert_tensor *bert_attention(bert_ctx *ctx, bert_tensor *qkv, const int32_t *mask, int NH,
                                    float drop_p) {
    return bert_attention_relative(ctx, qkv, mask, NH, drop_p, NULL);
}

BERTDEF bert_tensor *bert_attention_relative(bert_ctx *ctx, bert_tensor *qkv, const int32_t *mask, int NH,
                                             float drop_p, bert_tensor *rel) {
    BERT_ASSERT_MSG(qkv->ndim == 3 && qkv->shape[2] % 3 == 0, "bert_attention: qkv must be (B,T,3C)");
    int B = qkv->shape[0], T = qkv->shape[1], C = qkv->shape[2] / 3;
    BERT_ASSERT_MSG(NH > 0 && C % NH == 0, "bert_attention: C must divide into NH heads");
    BERT_ASSERT_MSG(!rel || (rel->ndim == 2 && rel->shape[0] % 2 == 1 && rel->shape[1] == C / NH),
                    "bert_attention_relative: the table must be (2K+1, head size)");
    int K = rel ? rel->shape[0] / 2 : 0;
    float *mask_add = NULL;
    if (mask) {
        float *h = bert__host_floats(ctx, (size_t)B * T);
        for (int i = 0; i < B * T; i++) h[i] = (1.0f - (float)mask[i]) * -10000.0f;
        mask_add = bert__to_data(ctx, h, (size_t)B * T);
    }
    float p = ctx->training ? drop_p : 0.0f;
    uint64_t stream = ctx->training ? bert__next_stream(ctx) : 0;   // sites count calls, not p
    bert_tensor *out = bert__tensor(ctx, 3, B, T, C, 0);
    float *att = bert__floats(ctx, (size_t)B * NH * T * T);
    ctx->k->attention_forward(out->data, att, qkv->data, mask_add, rel ? rel->data : NULL, B, T, C, NH, K, p, stream);
    bert_node *n = bert__record(ctx, BERT_OP_ATTENTION, out, qkv, rel, NULL);
    if (n) {
        n->saved[0] = att;
        n->iarg[0] = B; n->iarg[1] = T; n->iarg[2] = C; n->iarg[3] = NH; n->iarg[4] = K;
        n->farg[0] = p;
        n->stream = stream;
    }
    return out;
}

BERTDEF bert_tensor *bert_gelu(bert_ctx *ctx, bert_tensor *x, bert_act act) {
    bert_tensor *out = bert__tensor_of(ctx, x->ndim, x->shape);
    ctx->k->gelu_forward(out->data, x->data, x->numel, (int)act);
    bert_node *n = bert__record(ctx, BERT_OP_GELU, out, x, NULL, NULL);
    if (n) n->iarg[0] = (int)act;
    return out;
}

BERTDEF bert_tensor *bert_tanh(bert_ctx *ctx, bert_tensor *x) {
    bert_tensor *out = bert__tensor_of(ctx, x->ndim, x->shape);
    ctx->k->tanh_forward(out->data, x->data, x->numel);
    bert__record(ctx, BERT_OP_TANH, out, x, NULL, NULL);
    return out;
}

/* A second header on t's floats, for an op that writes its output over its input: the tape keeps one
   header per op, so each gets its own grad. Only where no backward reads the overwritten values. */
static bert_tensor *bert__alias(bert_ctx *ctx, const bert_tensor *t) {
    bert_tensor *a = (bert_tensor *)bert__arena_alloc(&ctx->arena, sizeof(bert_tensor));
    *a = *t;
    a->grad = NULL; a->flags = 0; a->name = NULL;
    return a;
}

// a + b, into new memory or (in_place) over a's floats
static bert_tensor *bert__add(bert_ctx *ctx, bert_tensor *a, bert_tensor *b, int in_place) {
    BERT_ASSERT_MSG(a->numel == b->numel, "bert_add: sizes differ");
    bert_tensor *out = in_place ? bert__alias(ctx, a) : bert__tensor_of(ctx, a->ndim, a->shape);
    ctx->k->add_forward(out->data, a->data, b->data, a->numel);
    bert__record(ctx, BERT_OP_ADD, out, a, b, NULL);
    return out;
}

BERTDEF bert_tensor *bert_add(bert_ctx *ctx, bert_tensor *a, bert_tensor *b) { return bert__add(ctx, a, b, 0); }

BERTDEF bert_tensor *bert_scale(bert_ctx *ctx, bert_tensor *x, float alpha) {
    bert_tensor *out = bert__tensor_of(ctx, x->ndim, x->shape);
    ctx->k->scale_forward(out->data, x->data, x->numel, alpha);
    bert_node *n = bert__record(ctx, BERT_OP_SCALE, out, x, NULL, NULL);
    if (n) n->farg[0] = alpha;
    return out;
}

// dropout of x, into new memory or (in_place) over x's floats: its backward reads no values
static bert_tensor *bert__dropout(bert_ctx *ctx, bert_tensor *x, float p, int in_place) {
    BERT_ASSERT_MSG(p >= 0.0f && p < 1.0f, "bert_dropout: p must be in [0,1)");
    if (!ctx->training) return x;
    uint64_t stream = bert__next_stream(ctx);   // taken even for p == 0, so sites stay in step
    if (p == 0.0f) return x;
    bert_tensor *out = in_place ? bert__alias(ctx, x) : bert__tensor_of(ctx, x->ndim, x->shape);
    ctx->k->dropout_forward(out->data, x->data, x->numel, p, stream);
    bert_node *n = bert__record(ctx, BERT_OP_DROPOUT, out, x, NULL, NULL);
    if (n) { n->farg[0] = p; n->stream = stream; }
    return out;
}

BERTDEF bert_tensor *bert_dropout(bert_ctx *ctx, bert_tensor *x, float p) { return bert__dropout(ctx, x, p, 0); }

/* Training's residual branch dropout(y) + res, written over y's floats: y is a linear's output (its
   backward reads the linear's input, never y) and neither dropout's nor add's backward reads values,
   so two (N,C) activations per residual -- four per layer -- are never stored. Same floats as
   bert_add(ctx, bert_dropout(ctx, y, p), res). */
static bert_tensor *bert__dropout_add_over(bert_ctx *ctx, bert_tensor *y, bert_tensor *res, float p) {
    return bert__add(ctx, bert__dropout(ctx, y, p, 1), res, 1);
}

BERTDEF bert_tensor *bert_softmax_xent(bert_ctx *ctx, bert_tensor *logits, const int32_t *labels,
                                       int ignore_index) {
    int N = bert__rows(logits), V = bert__cols(logits);
    for (int i = 0; i < N; i++)
        BERT_ASSERT_MSG(labels[i] == ignore_index || (labels[i] >= 0 && labels[i] < V),
                        "bert_softmax_xent: label out of range");
    bert_tensor *out = bert__tensor(ctx, 1, 1, 0, 0, 0);
    float *probs = bert__floats(ctx, logits->numel);
    bert__set_scalar(ctx, out->data, ctx->k->xent_forward(probs, logits->data, labels, N, V, ignore_index));
    bert_node *n = bert__record(ctx, BERT_OP_SOFTMAX_XENT, out, logits, NULL, NULL);
    if (n) { n->saved[0] = probs; n->idx[0] = bert__copy_ints(ctx, labels, (size_t)N); n->iarg[0] = ignore_index; }
    return out;
}

BERTDEF bert_tensor *bert_gather(bert_ctx *ctx, bert_tensor *x, const int32_t *rows, int M) {
    int N = bert__rows(x), C = bert__cols(x);
    for (int m = 0; m < M; m++) BERT_ASSERT_MSG(rows[m] >= 0 && rows[m] < N, "bert_gather: row out of range");
    bert_tensor *out = bert__tensor(ctx, 2, M, C, 0, 0);
    ctx->k->gather_forward(out->data, x->data, rows, M, C);
    bert_node *n = bert__record(ctx, BERT_OP_GATHER, out, x, NULL, NULL);
    if (n) { n->idx[0] = bert__copy_ints(ctx, rows, (size_t)M); n->iarg[0] = M; }
    return out;
}

BERTDEF bert_tensor *bert_mse(bert_ctx *ctx, bert_tensor *pred, const float *target) {
    bert_tensor *out = bert__tensor(ctx, 1, 1, 0, 0, 0);
    out->data[0] = ctx->k->mse_forward(pred->data, target, pred->numel);
    bert_node *n = bert__record(ctx, BERT_OP_MSE, out, pred, NULL, NULL);
    if (n) {   // the caller's targets may change before backward: keep a copy
        float *t = bert__floats(ctx, pred->numel);
        memcpy(t, target, pred->numel * sizeof(float));
        n->saved[0] = t;
    }
    return out;
}

BERTDEF bert_tensor *bert_crf_nll(bert_ctx *ctx, bert_tensor *emissions, bert_tensor *transitions,
                                  const int32_t *tags, const int32_t *lengths) {
    BERT_ASSERT_MSG(emissions->ndim == 3, "bert_crf_nll: emissions must be (B,T,K)");
    int B = emissions->shape[0], T = emissions->shape[1], K = emissions->shape[2];
    BERT_ASSERT_MSG(transitions->ndim == 2 && transitions->shape[0] == K + 2 && transitions->shape[1] == K + 2,
                    "bert_crf_nll: transitions must be (K+2,K+2)");
    for (int b = 0; b < B; b++) {
        BERT_ASSERT_MSG(lengths[b] >= 0 && lengths[b] <= T, "bert_crf_nll: length out of range");
        for (int t = 0; t < lengths[b]; t++)
            BERT_ASSERT_MSG(tags[(size_t)b * T + t] >= 0 && tags[(size_t)b * T + t] < K, "bert_crf_nll: tag out of range");
    }
    bert_tensor *out = bert__tensor(ctx, 1, 1, 0, 0, 0);
    float *nll = bert__floats(ctx, (size_t)B);
    size_t nw = (size_t)B * (2 * (size_t)T * K + (size_t)(K + 2) * (K + 2));
    double *work = (double *)bert__arena_alloc(&ctx->arena, nw * sizeof(double));
    bert__set_scalar(ctx, out->data, ctx->k->crf_forward(nll, emissions->data, transitions->data, tags, lengths, B, T, K, work));
    bert_node *n = bert__record(ctx, BERT_OP_CRF, out, emissions, transitions, NULL);
    if (n) {
        n->idx[0] = bert__copy_ints(ctx, tags, (size_t)B * T);
        n->idx[1] = bert__copy_ints(ctx, lengths, (size_t)B);
        n->iarg[0] = B; n->iarg[1] = T; n->iarg[2] = K;
    }
    return out;
}

BERTDEF bert_tensor *bert_transpose(bert_ctx *ctx, bert_tensor *x) {
    BERT_ASSERT_MSG(x->ndim >= 2, "bert_transpose: needs at least 2 dims");
    int M = x->shape[x->ndim - 2], N = x->shape[x->ndim - 1], B = (int)(x->numel / ((size_t)M * N));
    int shape[4];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 2] = N;
    shape[x->ndim - 1] = M;
    bert_tensor *out = bert__tensor_of(ctx, x->ndim, shape);
    ctx->k->transpose_forward(out->data, x->data, B, M, N);
    bert_node *n = bert__record(ctx, BERT_OP_TRANSPOSE, out, x, NULL, NULL);
    if (n) { n->iarg[0] = B; n->iarg[1] = M; n->iarg[2] = N; }
    return out;
}

// ----------------------------------------------------------------------------
// model: the parameter table laid out in one flat buffer per role

// the table's dimension names for a config (see BERT_PARAMS_EMB): V C P TV F PA RK HS
typedef struct { size_t V, C, P, TV, F, PA, RK, HS; } bert__dims;

static bert__dims bert__dims_of(const bert_config *cfg) {
    bert__dims d;
    int rel = cfg->use_relative_position, K = cfg->max_relative_position;
    d.V = (size_t)cfg->vocab_size; d.C = (size_t)cfg->hidden_size; d.P = (size_t)cfg->max_position_embeddings;
    d.TV = (size_t)cfg->type_vocab_size; d.F = (size_t)cfg->intermediate_size;
    d.PA = rel ? 0 : d.P;
    d.RK = rel && cfg->relative_position_flavour == BERT_RELPOS_LEARNED ? (size_t)(2 * K + 1) : 0;
    d.HS = d.C / (size_t)cfg->num_attention_heads;
    return d;
}

// Sets tensor i's shape, name and decay flag and, once the buffers exist, its data/grad views, and
// returns it; a row of size 0 is absent from the model (NULL, no tensor).
static bert_tensor *bert__param_row(bert_model *m, int *i, size_t *off, size_t d0, size_t d1, const char *fmt,
                                    int layer, int decay) {
    if (d0 == 0) return NULL;
    bert_tensor *t = &m->tensors[*i];
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = (int)d0;
    t->shape[1] = (int)d1;
    t->numel = d0 * (d1 ? d1 : 1);
    t->flags = BERT_TENSOR_PARAM | BERT_TENSOR_REQUIRES_GRAD;
    if (m->params) {
        char raw[128], name[136];
        if (layer >= 0) snprintf(raw, sizeof raw, fmt, layer);
        else snprintf(raw, sizeof raw, "%s", fmt);
        if (m->config.use_relative_position && !strncmp(raw, "bert.", 5)) snprintf(name, sizeof name, "nezha.%s", raw + 5);
        else snprintf(name, sizeof name, "%s", raw);   // (NEZHA: transformers' prefix)
        m->names[*i] = bert__strdup(name);
        t->name = m->names[*i];
        t->data = m->params + *off;
        t->grad = m->grads + *off;
        m->decay[*i] = (unsigned char)decay;
    }
    *off += t->numel;
    (*i)++;
    return t;
}

// Walks the table once: without buffers it measures (floats, tensors), with buffers it points and
// binds the named views (m->w).
static size_t bert__param_layout(bert_model *m, int *count) {
    const bert_config *cfg = &m->config;
    bert__dims d = bert__dims_of(cfg);
    size_t V = d.V, C = d.C, TV = d.TV, F = d.F, PA = d.PA, RK = d.RK, HS = d.HS, off = 0;
    int i = 0, l = -1;
    bert_layer_weights *lw = NULL;
#define BERT__ROW_W(f, d0, d1, name, decay) m->w.f = bert__param_row(m, &i, &off, d0, d1, name, l, decay);
#define BERT__ROW_L(f, d0, d1, name, decay) lw->f = bert__param_row(m, &i, &off, d0, d1, name, l, decay);
    BERT_PARAMS_EMB(BERT__ROW_W)
    for (l = 0; l < cfg->num_hidden_layers; l++) { lw = &m->w.layer[l]; BERT_PARAMS_LAYER(BERT__ROW_L) }
    l = -1;
    BERT_PARAMS_HEAD(BERT__ROW_W)
#undef BERT__ROW_W
#undef BERT__ROW_L
    (void)V; (void)TV; (void)F; (void)PA; (void)RK; (void)HS;
    *count = i;
    return off;
}

// the base parameter count a config implies (with or without the pooler and pretraining heads), from
// the same table, without building the model
static size_t bert__config_num_params(const bert_config *cfg, int with_heads) {
    bert__dims d = bert__dims_of(cfg);
    size_t V = d.V, C = d.C, TV = d.TV, F = d.F, PA = d.PA, RK = d.RK, HS = d.HS, emb = 0, layer = 0, head = 0;
#define BERT__COUNT(sum, d0, d1) (sum) += (size_t)(d0) * (size_t)((d1) ? (d1) : 1);
#define BERT__ROW_EMB(f, d0, d1, name, decay) BERT__COUNT(emb, d0, d1)
#define BERT__ROW_LAYER(f, d0, d1, name, decay) BERT__COUNT(layer, d0, d1)
#define BERT__ROW_HEAD(f, d0, d1, name, decay) BERT__COUNT(head, d0, d1)
    BERT_PARAMS_EMB(BERT__ROW_EMB)
    BERT_PARAMS_LAYER(BERT__ROW_LAYER)
    BERT_PARAMS_HEAD(BERT__ROW_HEAD)
#undef BERT__ROW_EMB
#undef BERT__ROW_LAYER
#undef BERT__ROW_HEAD
#undef BERT__COUNT
    (void)V; (void)C; (void)TV; (void)F; (void)PA; (void)RK; (void)HS;
    return emb + (size_t)cfg->num_hidden_layers * layer + (with_heads ? head : 0);
}

static bert_tensor bert__view(const bert_tensor *first, int d0, int d1) {
    bert_tensor t = *first;
    t.ndim = d1 ? 2 : 1;
    t.shape[0] = d0;
    t.shape[1] = d1;
    t.numel = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    t.name = NULL;
    return t;
}

// the fused QKV views copy their first tensor's data pointers: rebuilt whenever those move
static void bert__bind_weights(bert_model *m) {
    int C = m->config.hidden_size;
    for (int l = 0; l < m->config.num_hidden_layers; l++) {
        bert_layer_weights *lw = &m->w.layer[l];
        lw->qkv_w = bert__view(lw->q_w, 3 * C, C);   // q_w, k_w, v_w are adjacent in the table
        lw->qkv_b = bert__view(lw->q_b, 3 * C, 0);
    }
}

static int bert__config_check(const bert_config *c, const char *source) {
    const char *bad = NULL;
    if (c->vocab_size <= 0) bad = "vocab_size must be > 0";
    else if (c->hidden_size <= 0) bad = "hidden_size must be > 0";
    else if (c->num_hidden_layers <= 0) bad = "num_hidden_layers must be > 0";
    else if (c->num_attention_heads <= 0 || c->hidden_size % c->num_attention_heads)
        bad = "num_attention_heads must be > 0 and divide hidden_size";
    else if (c->intermediate_size <= 0) bad = "intermediate_size must be > 0";
    else if (c->max_position_embeddings <= 0) bad = "max_position_embeddings must be > 0";
    else if (c->type_vocab_size <= 0) bad = "type_vocab_size must be > 0";
    else if (!(c->hidden_dropout_prob >= 0.0f && c->hidden_dropout_prob < 1.0f)) bad = "hidden_dropout_prob must be in [0,1)";
    else if (!(c->attention_probs_dropout_prob >= 0.0f && c->attention_probs_dropout_prob < 1.0f))
        bad = "attention_probs_dropout_prob must be in [0,1)";
    else if (!(c->layer_norm_eps > 0.0f && c->layer_norm_eps < 1.0f)) bad = "layer_norm_eps must be in (0,1)";
    else if (!(c->initializer_range >= 0.0f && c->initializer_range < 10.0f)) bad = "initializer_range must be in [0,10)";
    else if (c->use_relative_position && (c->max_relative_position < 1 || c->max_relative_position > (1 << 16)))
        bad = "max_relative_position must be in [1, 65536]";
    else if (c->use_relative_position && c->relative_position_flavour == BERT_RELPOS_FIXED && (c->hidden_size / c->num_attention_heads) % 2)
        bad = "the fixed relative position table needs an even head size";
    else {   // the whole parameter count must fit comfortably in size_t and int dims
        double C = c->hidden_size, n = (double)c->vocab_size * C + (double)c->max_position_embeddings * C +
            c->num_hidden_layers * (4.0 * C * C + 2.0 * C * c->intermediate_size);
        if (n > 4e10 || c->vocab_size > (1 << 24) || c->hidden_size > (1 << 16) || c->intermediate_size > (1 << 18) ||
            c->num_hidden_layers > 1024 || c->max_position_embeddings > (1 << 20) || c->type_vocab_size > (1 << 16))
            bad = "sizes are implausibly large";
        else if (2.0 * n * sizeof(float) > (double)SIZE_MAX)   // params + grads: a 32-bit size_t ends at 4 GiB
            bad = "too large for this machine's address space (params and grads exceed SIZE_MAX bytes)";
    }
    return bad ? bert__err(BERT_ERR_ARG, "%s: bad config: %s", source ? source : "config", bad) : BERT_OK;
}

BERTDEF void bert_model_dequantize(bert_model *m) {
    if (!m->quant) return;
    for (int i = 0; i < 4 * m->config.num_hidden_layers; i++) bert__qweight_free(&m->quant[i]);
    BERT_FREE(m->quant);
    m->quant = NULL;
}

// the four int8 weights of layer l: 0 qkv, 1 attention out, 2 ffn up, 3 ffn down
static const float *bert__layer_matrix(const bert_model *m, int l, int which) {
    const bert_layer_weights *w = &m->w.layer[l];
    return which == 0 ? w->qkv_w.data : which == 1 ? w->attn_o_w->data : which == 2 ? w->ffn_i_w->data : w->ffn_o_w->data;
}

BERTDEF int bert_model_quantize(bert_model *m, bert_precision p) {
    bert_model_dequantize(m);
    if (p == BERT_PRECISION_FP32) return BERT_OK;
    if (bert__mem_of(m->k)->device) return bert__err(BERT_ERR_ARG, "bert_model_quantize: low-precision inference runs on the host only");
    int L = m->config.num_hidden_layers, C = m->config.hidden_size, F = m->config.intermediate_size;
    m->quant = (bert_qweight *)bert__calloc((size_t)4 * L, sizeof(bert_qweight));
    if (!m->quant) return bert__err(BERT_ERR_OOM, "bert_model_quantize: out of memory");
    static const int oc_ic[4][2] = { { 3, 1 }, { 1, 1 }, { 0, 1 }, { 1, 0 } };   // in units of C, 0 = F
    for (int l = 0; l < L; l++)
        for (int k = 0; k < 4; k++) {
            int OC = oc_ic[k][0] ? oc_ic[k][0] * C : F, IC = oc_ic[k][1] ? C : F;
            bert_qweight *q = &m->quant[4 * l + k];
            const float *W = bert__layer_matrix(m, l, k);
            if (p == BERT_PRECISION_INT8 ? bert__qweight_make(q, W, OC, IC) : bert__bweight_make(q, W, OC, IC)) {
                bert_model_dequantize(m);
                return bert__err(BERT_ERR_OOM, "bert_model_quantize: out of memory");
            }
        }
    return BERT_OK;
}

BERTDEF void bert_model_free(bert_model *m) {
    if (!m) return;
    bert_model_dequantize(m);
    if (m->names)
        for (int i = 0; i < m->num_tensors; i++) BERT_FREE(m->names[i]);
    BERT_FREE(m->names);
    BERT_FREE(m->decay);
    BERT_FREE(m->tensors);
    BERT_FREE(m->w.layer);
    bert__mem_of(m->k)->release(m->params);   // host: BERT_FREE; after bert_model_to: the device's
    bert__mem_of(m->k)->release(m->grads);
    BERT_FREE(m);
}

static void bert__model_init(bert_model *m, uint64_t seed) {
    for (int i = 0; i < m->num_tensors; i++) {
        bert_tensor *t = &m->tensors[i];
        uint64_t stream = bert_rng_stream(seed, 0x1417u, (uint64_t)i), counter = 0;
        float fill = strstr(m->names[i], "LayerNorm.weight") ? 1.0f : 0.0f;
        for (size_t j = 0; j < t->numel; j++)
            t->data[j] = t->ndim == 2 ? m->config.initializer_range * bert__trunc_normal(stream, &counter) : fill;
    }
}

BERTDEF bert_model *bert_model_create(const bert_config *cfg, uint64_t seed) {
    if (bert__config_check(cfg, NULL)) return NULL;
    bert_model *m = (bert_model *)bert__calloc(1, sizeof *m);
    if (!m) return NULL;
    m->config = *cfg;
    // every row present (at most) + room for task heads; absent rows leave slots unused
    size_t slots = BERT_PE_COUNT + (size_t)cfg->num_hidden_layers * BERT_PL_COUNT + BERT_PH_COUNT + BERT_MAX_ADDED_TENSORS;
    m->tensors = (bert_tensor *)bert__calloc(slots, sizeof(bert_tensor));
    m->names = (char **)bert__calloc(slots, sizeof(char *));
    m->decay = (unsigned char *)bert__calloc(slots, 1);
    m->w.layer = (bert_layer_weights *)bert__calloc((size_t)cfg->num_hidden_layers, sizeof(bert_layer_weights));
    if (!m->tensors || !m->names || !m->decay || !m->w.layer) { bert_model_free(m); return NULL; }
    m->num_params = bert__param_layout(m, &m->num_tensors);
    m->num_base_tensors = m->num_tensors;
    m->params = (float *)bert__calloc(m->num_params, sizeof(float));
    m->grads = (float *)bert__calloc(m->num_params, sizeof(float));
    if (!m->params || !m->grads) { bert_model_free(m); return NULL; }
    bert__param_layout(m, &m->num_tensors);
    for (int i = 0; i < m->num_tensors; i++)
        if (!m->names[i]) { bert_model_free(m); return NULL; }
    bert__bind_weights(m);
    bert__model_init(m, seed);
    return m;
}

BERTDEF bert_tensor *bert_model_add_tensor(bert_model *m, const char *hf_name, int d0, int d1, int decay, uint64_t seed) {
    if (d0 <= 0 || d1 < 0) { bert__err(BERT_ERR_ARG, "%s: bad shape (%d, %d)", hf_name, d0, d1); return NULL; }
    if (bert_model_find(m, hf_name) >= 0) { bert__err(BERT_ERR_ARG, "%s: already in the model", hf_name); return NULL; }
    if (bert__mem_of(m->k)->device) { bert__err(BERT_ERR_ARG, "%s: add task heads before bert_model_to", hf_name); return NULL; }
    int k = m->num_tensors;
    if (k - m->num_base_tensors >= BERT_MAX_ADDED_TENSORS) { bert__err(BERT_ERR_ARG, "%s: over %d added tensors", hf_name, BERT_MAX_ADDED_TENSORS); return NULL; }
    size_t numel = (size_t)d0 * (size_t)(d1 ? d1 : 1), n = m->num_params + numel;
    float *params = (float *)bert__calloc(n, sizeof(float)), *grads = (float *)bert__calloc(n, sizeof(float));
    char *name = bert__strdup(hf_name);
    if (!params || !grads || !name) { BERT_FREE(params); BERT_FREE(grads); BERT_FREE(name); return NULL; }
    memcpy(params, m->params, m->num_params * sizeof(float));
    memcpy(grads, m->grads, m->num_params * sizeof(float));
    for (int i = 0; i < k; i++) {   // the same offsets in the new buffers (the table has room: see create)
        size_t off = (size_t)(m->tensors[i].data - m->params);
        m->tensors[i].data = params + off;
        m->tensors[i].grad = grads + off;
    }
    bert_tensor *t = &m->tensors[k];
    t->ndim = d1 ? 2 : 1; t->shape[0] = d0; t->shape[1] = d1; t->numel = numel;
    t->flags = BERT_TENSOR_PARAM | BERT_TENSOR_REQUIRES_GRAD;
    t->data = params + m->num_params; t->grad = grads + m->num_params;
    t->name = m->names[k] = name;
    m->decay[k] = (unsigned char)(decay != 0);
    uint64_t stream = bert_rng_stream(seed, 0x1417u, (uint64_t)k), counter = 0;
    for (size_t j = 0; j < numel && d1; j++) t->data[j] = m->config.initializer_range * bert__trunc_normal(stream, &counter);
    BERT_FREE(m->params); BERT_FREE(m->grads);
    m->params = params; m->grads = grads;
    m->num_params = n; m->num_tensors = k + 1;
    bert__bind_weights(m);
    return t;
}

BERTDEF void bert_model_zero_grad(bert_model *m) { bert__mem_of(m->k)->zero(m->grads, m->num_params * sizeof(float)); }

BERTDEF int bert_model_find(const bert_model *m, const char *hf_name) {
    for (int i = 0; i < m->num_tensors; i++)
        if (strcmp(m->names[i], hf_name) == 0) return i;
    return -1;
}

// ----------------------------------------------------------------------------
// device memory: moving a model between memories, and host access to tensor memory (the ctx side,
// the arena's device blocks, is with the arena above)

BERTDEF void bert_copy_to_host(const bert_kernels *k, void *host_dst, const void *src, size_t bytes) {
    bert__mem_of(k)->download(host_dst, src, bytes);
}

BERTDEF void bert_copy_from_host(const bert_kernels *k, void *dst, const void *host_src, size_t bytes) {
    bert__mem_of(k)->upload(dst, host_src, bytes);
}

BERTDEF float bert_tensor_item(const bert_ctx *ctx, const bert_tensor *t) {
    float v;
    bert_copy_to_host(ctx->k, &v, t->data, sizeof v);   // activations and params share ctx->k's memory
    return v;
}

BERTDEF void bert_tensor_read(const bert_ctx *ctx, const bert_tensor *t, float *host_dst) {
    bert_copy_to_host(ctx->k, host_dst, t->data, t->numel * sizeof(float));
}

BERTDEF void bert_tensor_argmax(const bert_ctx *ctx, const bert_tensor *t, int32_t *host_dst) {
    size_t V = (size_t)t->shape[t->ndim - 1], rows = V ? t->numel / V : 0;
    int device = bert__mem_of(ctx->k)->device;
    float *row = device ? (float *)bert__malloc(V * sizeof(float)) : NULL;
    BERT_ASSERT_MSG(!device || row, "bert_tensor_argmax: out of memory for one row");
    for (size_t i = 0; i < rows; i++) {
        const float *x = t->data + i * V;
        if (device) { bert_copy_to_host(ctx->k, row, x, V * sizeof(float)); x = row; }   // one row at a time
        size_t best = 0;
        for (size_t v = 1; v < V; v++) if (x[v] > x[best]) best = v;
        host_dst[i] = (int32_t)best;
    }
    BERT_FREE(row);
}

// bytes from one memory to another; two devices go through the host
static int bert__mem_move(const bert_memory *to, void *dst, const bert_memory *from, const void *src, size_t bytes) {
    if (!from->device) { to->upload(dst, src, bytes); return BERT_OK; }
    if (!to->device) { from->download(dst, src, bytes); return BERT_OK; }
    void *tmp = bert__malloc(bytes);
    if (!tmp) return BERT_ERR_OOM;
    from->download(tmp, src, bytes);
    to->upload(dst, tmp, bytes);
    BERT_FREE(tmp);
    return BERT_OK;
}

BERTDEF int bert_model_to(bert_model *m, const bert_kernels *k) {
    const bert_memory *from = bert__mem_of(m->k), *to = bert__mem_of(k);
    const bert_kernels *nk = to->device ? k : NULL;   // host memory is recorded as NULL
    if (from == to) { m->k = nk; return BERT_OK; }
    size_t bytes = m->num_params * sizeof(float);
    float *p = (float *)to->alloc(bytes), *g = (float *)to->alloc(bytes);
    int rc = p && g ? BERT_OK : BERT_ERR_OOM;
    if (!rc) rc = bert__mem_move(to, p, from, m->params, bytes);
    if (!rc) rc = bert__mem_move(to, g, from, m->grads, bytes);
    if (rc) {
        if (p) to->release(p);
        if (g) to->release(g);
        return bert__err(BERT_ERR_OOM, "bert_model_to %s: out of memory for %zu parameters", k ? k->name : "host", m->num_params);
    }
    for (int i = 0; i < m->num_tensors; i++) {   // the same offsets in the new buffers
        size_t off = (size_t)(m->tensors[i].data - m->params);
        m->tensors[i].data = p + off;
        m->tensors[i].grad = g + off;
    }
    from->release(m->params);
    from->release(m->grads);
    m->params = p;
    m->grads = g;
    m->k = nk;
    bert__bind_weights(m);   // the fused QKV views copy the data pointers
    return BERT_OK;
}

// ----------------------------------------------------------------------------
// the encoder: embeddings, layers, pooler

// the real tokens of a batch, packed: rows[i] = b*T + t of the i-th token whose mask is 1 (in batch
// order), sequence b's tokens at rows [start[b], start[b] + len[b])
typedef struct { int n, B, T, maxlen; int32_t *rows, *start, *len; } bert__packing;

static const bert__packing *bert__pack(bert_ctx *ctx, const int32_t *mask, int B, int T) {
    bert__packing *pk = (bert__packing *)bert__arena_alloc(&ctx->arena, sizeof *pk);
    pk->rows = (int32_t *)bert__arena_alloc(&ctx->arena, ((size_t)B * T + 2 * (size_t)B) * sizeof(int32_t));
    pk->start = pk->rows + (size_t)B * T;
    pk->len = pk->start + B;
    pk->n = pk->maxlen = 0; pk->B = B; pk->T = T;
    for (int b = 0; b < B; b++) {
        pk->start[b] = pk->n;
        for (int t = 0; t < T; t++) if (mask[b * T + t]) pk->rows[pk->n++] = b * T + t;
        pk->len[b] = pk->n - pk->start[b];
        if (pk->len[b] > pk->maxlen) pk->maxlen = pk->len[b];
    }
    return pk;
}

// attention of packed qkv (N,3C): each sequence over its own tokens, no mask -> (N,C); inference
static bert_tensor *bert__attention_packed(bert_ctx *ctx, bert_tensor *qkv, const bert__packing *pk, int NH,
                                          const bert_tensor *rel) {
    int C = bert__cols(qkv) / 3;
    bert_tensor *out = bert__tensor(ctx, 2, pk->n, C, 0, 0);
    float *att = bert__floats(ctx, (size_t)NH * pk->maxlen * pk->maxlen);
    for (int b = 0; b < pk->B; b++)
        if (pk->len[b])
            ctx->k->attention_forward(out->data + (size_t)pk->start[b] * C, att, qkv->data + (size_t)pk->start[b] * 3 * C,
                                      NULL, rel ? rel->data : NULL, 1, pk->len[b], C, NH, rel ? rel->shape[0] / 2 : 0, 0.0f, 0);
    return out;
}

// relative positions count within the packed sequences: the same distances only when each
// sequence's real tokens are one run (padding at the ends)
static int bert__packing_contiguous(const bert__packing *pk) {
    for (int b = 0; b < pk->B; b++)
        if (pk->len[b] && pk->rows[pk->start[b] + pk->len[b] - 1] - pk->rows[pk->start[b]] != pk->len[b] - 1) return 0;
    return 1;
}

BERTDEF bert_tensor *bert_relative_table(bert_ctx *ctx, int K, int HS) {
    BERT_ASSERT_MSG(K >= 0 && HS > 0 && HS % 2 == 0, "bert_relative_table: K >= 0 and an even head size");
    size_t n = (size_t)(2 * K + 1) * HS;
    float *h = bert__host_floats(ctx, n);
    for (int p = 0; p <= 2 * K; p++)   // in double, rounded once: Huawei's numpy table cast to float32
        for (int k = 0; k < HS / 2; k++) {
            double angle = p / pow(10000.0, 2.0 * k / HS);
            h[(size_t)p * HS + 2 * k] = (float)sin(angle);
            h[(size_t)p * HS + 2 * k + 1] = (float)cos(angle);
        }
    bert_tensor *t = (bert_tensor *)bert__arena_alloc(&ctx->arena, sizeof(bert_tensor));
    memset(t, 0, sizeof *t);
    t->ndim = 2; t->shape[0] = 2 * K + 1; t->shape[1] = HS; t->numel = n;
    t->data = bert__to_data(ctx, h, n);
    t->name = "relative_positions_table";
    return t;
}

// packed rows (N,C) back at their places in a (B,T,C) of zeros (gather's backward into zeros)
static bert_tensor *bert__unpack(bert_ctx *ctx, bert_tensor *x, const bert__packing *pk) {
    int C = bert__cols(x);
    bert_tensor *out = bert__tensor(ctx, 3, pk->B, pk->T, C, 0);
    bert__zero_floats(ctx, out->data, out->numel);
    ctx->k->gather_backward(out->data, x->data, pk->rows, pk->n, C);
    return out;
}

BERTDEF bert_tensor *bert_encode(bert_ctx *ctx, bert_model *m, const int32_t *ids,
                                 const int32_t *types, const int32_t *mask, int B, int T) {
    const bert_config *cfg = &m->config;
    float eps = cfg->layer_norm_eps, hp = cfg->hidden_dropout_prob;
    BERT_ASSERT_MSG(T <= cfg->max_position_embeddings, "bert_encode: T exceeds max_position_embeddings");   // NEZHA too, as transformers
    int infer = !ctx->grad_enabled && !ctx->training;   // no tape, no dropout: bias, residual, GELU fused
    const bert__packing *pk = infer && ctx->remove_padding && mask ? bert__pack(ctx, mask, B, T) : NULL;
    if (pk && (pk->n == B * T || pk->n == 0)) pk = NULL;   // no padding to remove (or nothing left)
    int rel = cfg->use_relative_position, learned = rel && cfg->relative_position_flavour == BERT_RELPOS_LEARNED;
    if (pk && rel && !bert__packing_contiguous(pk)) pk = NULL;
    bert_tensor *table = rel && !learned ? bert_relative_table(ctx, cfg->max_relative_position, cfg->hidden_size / cfg->num_attention_heads) : NULL;
    bert_tensor *x = bert_embed(ctx, m->w.word_emb, m->w.pos_emb, m->w.type_emb, ids, types, B, T);
    if (pk) x = bert_gather(ctx, x, pk->rows, pk->n);   // (N,C): the real tokens, their positions kept
    x = bert__dropout(ctx, bert_layernorm(ctx, x, m->w.emb_ln_w, m->w.emb_ln_b, eps), hp, 1);   // LayerNorm's backward reads its input, not its output
    bert_tensor_set_name(ctx, x, "emb", 0);
    for (int l = 0; l < cfg->num_hidden_layers; l++) {
        bert__marks mark = bert__marks_now(ctx);
        bert_layer_weights *w = &m->w.layer[l];
        const bert_qweight *q = infer && m->quant ? &m->quant[4 * l] : NULL;   // int8: bert_model_quantize
        bert_tensor *qkv = q ? bert__qlinear_act(ctx, x, &q[0], &w->qkv_b, NULL, BERT_ACT_NONE)
                         : infer ? bert__linear_act(ctx, x, &w->qkv_w, &w->qkv_b, NULL, BERT_ACT_NONE)
                                 : bert_linear(ctx, x, &w->qkv_w, &w->qkv_b);             // (B,T,3C)
        bert_tensor *r = learned ? w->rel_w : table;   // NULL: BERT
        bert_tensor *att = pk ? bert__attention_packed(ctx, qkv, pk, cfg->num_attention_heads, r)
                              : bert_attention_relative(ctx, qkv, mask, cfg->num_attention_heads,
                                                        cfg->attention_probs_dropout_prob, r);   // (B,T,C)
        bert_tensor *x1, *f;
        if (q) {
            x1 = bert_layernorm(ctx, bert__qlinear_act(ctx, att, &q[1], w->attn_o_b, x, BERT_ACT_NONE), w->attn_ln_w, w->attn_ln_b, eps);
            f = bert__qlinear_act(ctx, x1, &q[2], w->ffn_i_b, NULL, (int)cfg->hidden_act);   // (B,T,F)
            x = bert__layernorm_over(ctx, x, bert__qlinear_act(ctx, f, &q[3], w->ffn_o_b, x1, BERT_ACT_NONE), w->ffn_ln_w, w->ffn_ln_b, eps);
        } else if (infer) {   // the same floats as the chain below, in fewer passes over memory
            x1 = bert_layernorm(ctx, bert__linear_act(ctx, att, w->attn_o_w, w->attn_o_b, x, BERT_ACT_NONE), w->attn_ln_w, w->attn_ln_b, eps);
            f = bert__linear_act(ctx, x1, w->ffn_i_w, w->ffn_i_b, NULL, (int)cfg->hidden_act);   // (B,T,F)
            x = bert__layernorm_over(ctx, x, bert__linear_act(ctx, f, w->ffn_o_w, w->ffn_o_b, x1, BERT_ACT_NONE), w->ffn_ln_w, w->ffn_ln_b, eps);
        } else {
            bert_tensor *a = bert__dropout_add_over(ctx, bert_linear(ctx, att, w->attn_o_w, w->attn_o_b), x, hp);
            x1 = bert_layernorm(ctx, a, w->attn_ln_w, w->attn_ln_b, eps);
            f = bert_gelu(ctx, bert_linear(ctx, x1, w->ffn_i_w, w->ffn_i_b), cfg->hidden_act); // (B,T,F)
            bert_tensor *f2 = bert__dropout_add_over(ctx, bert_linear(ctx, f, w->ffn_o_w, w->ffn_o_b), x1, hp);
            x = bert_layernorm(ctx, f2, w->ffn_ln_w, w->ffn_ln_b, eps);
        }
        if (ctx->grad_enabled) {   // for bert_ctx_find (the tape's); a name made after the mark would not outlive it
            bert_tensor_set_name(ctx, qkv, "layer.%d.qkv", l);
            bert_tensor_set_name(ctx, att, "layer.%d.ctx", l);
            bert_tensor_set_name(ctx, x1, "layer.%d.attn_ln", l);
            bert_tensor_set_name(ctx, f, "layer.%d.ffn_act", l);
            bert_tensor_set_name(ctx, x, "layer.%d", l);
        } else if (infer) {
            bert__ctx_pop(ctx, mark);   // the output went over the layer's input: nothing to move
        } else {
            x = bert__ctx_rewind_keep(ctx, mark, x);   // no-grad training-mode forward keeps one layer live too
        }
    }
    return pk ? bert__unpack(ctx, x, pk) : x;
}

BERTDEF bert_tensor *bert_pool(bert_ctx *ctx, bert_model *m, bert_tensor *seq) {
    int B = seq->shape[0], T = seq->shape[1];
    int32_t *rows = (int32_t *)bert__arena_alloc(&ctx->arena, (size_t)B * sizeof(int32_t));
    for (int b = 0; b < B; b++) rows[b] = b * T;   // the [CLS] token of each sequence
    bert_tensor *pooled = bert_tanh(ctx, bert_linear(ctx, bert_gather(ctx, seq, rows, B), m->w.pool_w, m->w.pool_b));
    bert_tensor_set_name(ctx, pooled, "pooled", 0);
    return pooled;
}

// ----------------------------------------------------------------------------
// heads on the encoder's output: pretraining (MLM + NSP), sequence classification, token
// classification (softmax or CRF), span (SQuAD), CRF decoding. The task heads add their tensors to
// the parameter table (bert_model_add_tensor), so optimizers and checkpoints cover them.

BERTDEF bert_pretrain_out bert_pretrain_forward(bert_ctx *ctx, bert_model *m, const bert_batch *b) {
    bert_pretrain_out o;
    memset(&o, 0, sizeof o);
    int B = b->B, T = b->T, MP = b->MP;
    o.sequence = bert_encode(ctx, m, b->input_ids, b->token_type_ids, b->attention_mask, B, T);
    o.pooled = bert_pool(ctx, m, o.sequence);
    if (b->next_sentence_label) {
        o.nsp_logits = bert_linear(ctx, o.pooled, m->w.nsp_w, m->w.nsp_b);
        o.nsp_loss = bert_softmax_xent(ctx, o.nsp_logits, b->next_sentence_label, -100);
    }
    if (b->masked_lm_positions && MP > 0) {
        int32_t *rows = (int32_t *)bert__arena_alloc(&ctx->arena, (size_t)B * MP * sizeof(int32_t));
        for (int i = 0; i < B * MP; i++) {
            BERT_ASSERT_MSG(b->masked_lm_positions[i] >= 0 && b->masked_lm_positions[i] < T,
                            "bert_pretrain_forward: masked position out of range");
            rows[i] = (i / MP) * T + b->masked_lm_positions[i];
        }
        bert_tensor *h = bert_linear(ctx, bert_gather(ctx, o.sequence, rows, B * MP), m->w.mlm_w, m->w.mlm_b);
        h = bert_layernorm(ctx, bert_gelu(ctx, h, m->config.hidden_act), m->w.mlm_ln_w, m->w.mlm_ln_b,
                           m->config.layer_norm_eps);
        o.mlm_logits = bert_linear(ctx, h, m->w.word_emb, m->w.mlm_bias);   // decoder tied to embeddings
        o.mlm_loss = bert_softmax_xent(ctx, o.mlm_logits, b->masked_lm_ids, -100);
    }
    o.loss = o.mlm_loss && o.nsp_loss ? bert_add(ctx, o.mlm_loss, o.nsp_loss) : (o.mlm_loss ? o.mlm_loss : o.nsp_loss);
    return o;
}

BERTDEF int bert_classifier_add(bert_model *m, int num_labels, uint64_t seed) {
    if (num_labels < 1) return bert__err(BERT_ERR_ARG, "classifier: num_labels must be >= 1, not %d", num_labels);
    if (!bert_model_add_tensor(m, "classifier.weight", num_labels, m->config.hidden_size, 1, seed) ||
        !bert_model_add_tensor(m, "classifier.bias", num_labels, 0, 0, seed))
        return BERT_ERR_ARG;
    return BERT_OK;
}

BERTDEF int bert_classifier_num_labels(const bert_model *m) {
    int i = bert_model_find(m, "classifier.weight");
    return i >= 0 ? m->tensors[i].shape[0] : 0;
}

BERTDEF bert_classify_out bert_classify_forward(bert_ctx *ctx, bert_model *m, const int32_t *ids,
                                                const int32_t *types, const int32_t *mask, int B, int T,
                                                const int32_t *labels, const float *targets) {
    bert_classify_out o;
    memset(&o, 0, sizeof o);
    int wi = bert_model_find(m, "classifier.weight"), bi = bert_model_find(m, "classifier.bias");
    BERT_ASSERT_MSG(wi >= 0 && bi >= 0, "bert_classify_forward: the model has no classifier (bert_classifier_add)");
    bert_tensor *w = &m->tensors[wi], *b = &m->tensors[bi];
    o.pooled = bert_pool(ctx, m, bert_encode(ctx, m, ids, types, mask, B, T));
    o.logits = bert_linear(ctx, bert_dropout(ctx, o.pooled, m->config.hidden_dropout_prob), w, b);
    bert_tensor_set_name(ctx, o.logits, "logits", 0);
    if (w->shape[0] > 1 && labels) o.loss = bert_softmax_xent(ctx, o.logits, labels, -100);
    if (w->shape[0] == 1 && targets) o.loss = bert_mse(ctx, o.logits, targets);
    return o;
}

BERTDEF int bert_token_classifier_add(bert_model *m, int num_labels, int crf, uint64_t seed) {
    if (bert_classifier_add(m, num_labels, seed)) return BERT_ERR_ARG;
    if (!crf) return BERT_OK;
    bert_tensor *t = bert_model_add_tensor(m, "crf.transitions", num_labels + 2, num_labels + 2, 0, seed);
    if (!t) return BERT_ERR_ARG;
    uint64_t s = bert_rng_stream(seed, 0, 0x435246ull);   // "CRF": the transitions' own site
    for (size_t i = 0; i < t->numel; i++) t->data[i] = 0.2f * bert_rng_uniform(s, i) - 0.1f;   // host: before bert_model_to
    return BERT_OK;
}

BERTDEF bert_token_classify_out bert_token_classify_forward(bert_ctx *ctx, bert_model *m, const int32_t *ids,
                                                            const int32_t *types, const int32_t *mask, int B, int T,
                                                            float p, const int32_t *labels, const int32_t *lengths) {
    bert_token_classify_out o;
    memset(&o, 0, sizeof o);
    int wi = bert_model_find(m, "classifier.weight"), bi = bert_model_find(m, "classifier.bias");
    int ti = bert_model_find(m, "crf.transitions"), K = wi >= 0 ? m->tensors[wi].shape[0] : 0, Tc = 1;
    BERT_ASSERT_MSG(wi >= 0 && bi >= 0, "bert_token_classify_forward: the model has no classifier (bert_token_classifier_add)");
    o.sequence = bert_encode(ctx, m, ids, types, mask, B, T);
    o.logits = bert_linear(ctx, bert_dropout(ctx, o.sequence, p >= 0 ? p : m->config.hidden_dropout_prob),
                           &m->tensors[wi], &m->tensors[bi]);
    if (ti < 0) {
        if (labels) o.loss = bert_softmax_xent(ctx, o.logits, labels, -100);   // the mean over the labelled tokens
        return o;
    }
    BERT_ASSERT_MSG(lengths != NULL, "bert_token_classify_forward: the CRF needs lengths");
    for (int b = 0; b < B; b++) {
        BERT_ASSERT_MSG(lengths[b] >= 0 && lengths[b] < T, "bert_token_classify_forward: length out of range");
        if (lengths[b] > Tc) Tc = lengths[b];
    }
    int32_t *rows = (int32_t *)bert__arena_alloc(&ctx->arena, 2 * (size_t)B * Tc * sizeof(int32_t)), *tags = rows + (size_t)B * Tc;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < Tc; c++) {   // rows past a chain read its sequence's first token; the length masks them
            rows[(size_t)b * Tc + c] = b * T + (c < lengths[b] ? 1 + c : 0);
            tags[(size_t)b * Tc + c] = labels && c < lengths[b] ? labels[(size_t)b * T + 1 + c] : 0;
        }
    o.emissions = bert_gather(ctx, o.logits, rows, B * Tc);   // (B*Tc,K), viewed as (B,Tc,K): the same memory
    o.emissions->ndim = 3;
    o.emissions->shape[0] = B; o.emissions->shape[1] = Tc; o.emissions->shape[2] = K;
    if (labels) o.loss = bert_crf_nll(ctx, o.emissions, &m->tensors[ti], tags, lengths);
    return o;
}

BERTDEF int bert_token_classify_decode(const bert_ctx *ctx, const bert_model *m, const bert_token_classify_out *o,
                                       const int32_t *lengths, int32_t *tags) {
    int B = o->sequence->shape[0], T = o->sequence->shape[1];
    for (int b = 0; b < B; b++)
        BERT_ASSERT_MSG(lengths[b] >= 0 && lengths[b] < T, "bert_token_classify_decode: length out of range");
    if (!o->emissions) {
        bert_tensor_argmax(ctx, o->logits, tags);   // every token's; those off the chains become -1 below
    } else {   // Viterbi on host copies of the emissions and the transitions
        int ti = bert_model_find(m, "crf.transitions"), Tc = o->emissions->shape[1], rc;
        BERT_ASSERT_MSG(ti >= 0, "bert_token_classify_decode: emissions without crf.transitions");
        size_t ne = o->emissions->numel, ntr = m->tensors[ti].numel;
        float *host = (float *)bert__malloc((ne + ntr) * sizeof(float));
        int32_t *path = (int32_t *)bert__malloc(((size_t)B * Tc + 1) * sizeof(int32_t));
        if (!host || !path) { BERT_FREE(host); BERT_FREE(path); return BERT_ERR_OOM; }
        bert_tensor em = *o->emissions, tr = m->tensors[ti];
        em.data = host; tr.data = host + ne;
        bert_tensor_read(ctx, o->emissions, host);
        bert_copy_to_host(m->k, tr.data, m->tensors[ti].data, ntr * sizeof(float));
        rc = bert_crf_decode(&em, &tr, lengths, path);
        for (int b = 0; b < B && !rc; b++)
            for (int c = 0; c < lengths[b]; c++) tags[(size_t)b * T + 1 + c] = path[(size_t)b * Tc + c];
        BERT_FREE(host); BERT_FREE(path);
        if (rc) return rc;
    }
    for (int b = 0; b < B; b++) {
        tags[(size_t)b * T] = -1;
        for (int t = 1 + lengths[b]; t < T; t++) tags[(size_t)b * T + t] = -1;
    }
    return BERT_OK;
}

BERTDEF int bert_span_head_add(bert_model *m, uint64_t seed) {
    if (!bert_model_add_tensor(m, "qa_outputs.weight", 2, m->config.hidden_size, 1, seed) ||
        !bert_model_add_tensor(m, "qa_outputs.bias", 2, 0, 0, seed))
        return BERT_ERR_ARG;
    return BERT_OK;
}

BERTDEF bert_span_out bert_span_forward(bert_ctx *ctx, bert_model *m, const int32_t *ids,
                                        const int32_t *types, const int32_t *mask, int B, int T,
                                        const int32_t *start, const int32_t *end) {
    bert_span_out o;
    memset(&o, 0, sizeof o);
    int wi = bert_model_find(m, "qa_outputs.weight"), bi = bert_model_find(m, "qa_outputs.bias");
    BERT_ASSERT_MSG(wi >= 0 && bi >= 0, "bert_span_forward: the model has no span head (bert_span_head_add)");
    o.sequence = bert_encode(ctx, m, ids, types, mask, B, T);
    // (B,T,2) -> (B,2,T): each row is then one softmax over the positions
    o.logits = bert_transpose(ctx, bert_linear(ctx, o.sequence, &m->tensors[wi], &m->tensors[bi]));
    bert_tensor_set_name(ctx, o.logits, "span_logits", 0);
    if (start && end) {
        int32_t *labels = (int32_t *)bert__arena_alloc(&ctx->arena, 2 * (size_t)B * sizeof(int32_t));
        for (int b = 0; b < B; b++) {
            BERT_ASSERT_MSG(start[b] >= 0 && start[b] < T && end[b] >= 0 && end[b] < T, "bert_span_forward: position out of range");
            labels[2 * b] = start[b];
            labels[2 * b + 1] = end[b];
        }
        o.loss = bert_softmax_xent(ctx, o.logits, labels, -100);   // mean over 2B rows = (start + end) / 2
    }
    return o;
}

// CRF decoding: Viterbi over the emissions and transitions, on host copies
BERTDEF int bert_crf_decode(const bert_tensor *emissions, const bert_tensor *transitions,
                            const int32_t *lengths, int32_t *tags) {
    BERT_ASSERT_MSG(emissions->ndim == 3, "bert_crf_decode: emissions must be (B,T,K)");
    int B = emissions->shape[0], T = emissions->shape[1], K = emissions->shape[2], K2 = K + 2;
    BERT_ASSERT_MSG(transitions->ndim == 2 && transitions->shape[0] == K2 && transitions->shape[1] == K2,
                    "bert_crf_decode: transitions must be (K+2,K+2)");
    const float *tr = transitions->data;
    double *delta = (double *)bert__calloc(2 * (size_t)K, sizeof(double));
    int32_t *back = (int32_t *)bert__calloc((size_t)T * K + 1, sizeof(int32_t));
    if (!delta || !back) { BERT_FREE(delta); BERT_FREE(back); return BERT_ERR_OOM; }
    for (int b = 0; b < B; b++) {
        int n = lengths[b];
        BERT_ASSERT_MSG(n >= 0 && n <= T, "bert_crf_decode: length out of range");
        const float *em = emissions->data + (size_t)b * T * K;
        int32_t *y = tags + (size_t)b * T;
        for (int t = 0; t < T; t++) y[t] = -1;
        if (n == 0) continue;
        double *cur = delta, *next = delta + K;
        for (int j = 0; j < K; j++) cur[j] = (double)tr[K * K2 + j] + em[j];
        for (int t = 1; t < n; t++) {
            for (int j = 0; j < K; j++) {   // best predecessor; strict > keeps the lowest id on ties
                int best = 0;
                for (int i = 1; i < K; i++)
                    if (cur[i] + tr[i * K2 + j] > cur[best] + tr[best * K2 + j]) best = i;
                back[(size_t)t * K + j] = best;
                next[j] = cur[best] + tr[best * K2 + j] + em[(size_t)t * K + j];
            }
            double *swap = cur; cur = next; next = swap;
        }
        int last = 0;
        for (int j = 1; j < K; j++)
            if (cur[j] + tr[j * K2 + K + 1] > cur[last] + tr[last * K2 + K + 1]) last = j;
        y[n - 1] = last;
        for (int t = n - 1; t > 0; t--) y[t - 1] = back[(size_t)t * K + y[t]];
    }
    BERT_FREE(delta);
    BERT_FREE(back);
    return BERT_OK;
}

// ----------------------------------------------------------------------------
// optimizers: one fused pass per tensor over the flat buffers

BERTDEF int bert_optim_parse(bert_optim_type *type, const char *name) {
    static const bert_optim_type all[] = { BERT_OPTIM_LAMB, BERT_OPTIM_ADAMW, BERT_OPTIM_ADAMW_GB, BERT_OPTIM_MOMENTUM };
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (name && !strcmp(name, bert_optim_name(all[i]))) { *type = all[i]; return BERT_OK; }
    return bert__err(BERT_ERR_ARG, "'%s' is not one of lamb, adamw, adamw_gb, momentum", name ? name : "(null)");
}

BERTDEF const char *bert_optim_name(bert_optim_type type) {
    switch (type) {
    case BERT_OPTIM_ADAMW_GB: return "adamw_gb";
    case BERT_OPTIM_ADAMW: return "adamw";
    case BERT_OPTIM_LAMB: return "lamb";
    case BERT_OPTIM_MOMENTUM: return "momentum";
    }
    return "?";
}

BERTDEF bert_optim bert_optim_defaults(bert_optim_type type) {
    bert_optim o;
    memset(&o, 0, sizeof o);
    o.type = type;
    o.lr = 1e-4f;
    o.poly_power = 1.0f;
    o.beta1 = 0.9f;
    o.beta2 = 0.999f;
    o.eps = 1e-6f;
    o.weight_decay = type == BERT_OPTIM_MOMENTUM ? 0.0f : 0.01f;
    o.momentum = 0.9f;
    o.clip_norm = 1.0f;
    o.bias_correction = type == BERT_OPTIM_ADAMW;
    o.lamb_exclude_ln_bias = 1;
    return o;
}

BERTDEF int bert_optim_init(bert_optim *o, const bert_model *m) {
    bert_optim_free(o);
    o->n = m->num_params;
    o->step = 0;
    o->k = m->k;   // the moments go where the params are
    const bert_memory *mem = bert__mem_of(o->k);
    o->m = (float *)mem->alloc(o->n * sizeof(float));
    o->v = o->type == BERT_OPTIM_MOMENTUM ? NULL : (float *)mem->alloc(o->n * sizeof(float));
    if (!o->m || (o->type != BERT_OPTIM_MOMENTUM && !o->v)) { bert_optim_free(o); return BERT_ERR_OOM; }
    mem->zero(o->m, o->n * sizeof(float));
    if (o->v) mem->zero(o->v, o->n * sizeof(float));
    return BERT_OK;
}

// ---- communication: the single-process table, and sums of model buffers in any memory

static int bert__single_sum(const bert_comm *c, float *buf, size_t n) { (void)c; (void)buf; (void)n; return BERT_OK; }
static int bert__single_sum_f64(const bert_comm *c, double *buf, size_t n) { (void)c; (void)buf; (void)n; return BERT_OK; }
static int bert__single_broadcast(const bert_comm *c, void *buf, size_t bytes, int root) {
    (void)c; (void)buf; (void)bytes; (void)root;
    return BERT_OK;
}
static int bert__single_barrier(const bert_comm *c) { (void)c; return BERT_OK; }
static void bert__single_abort(const bert_comm *c, int code) { (void)c; (void)code; }
static const bert_comm bert__single_comm = {
    "single", 0, 1, 0, bert__single_sum, bert__single_sum_f64, bert__single_broadcast, bert__single_barrier,
    bert__single_abort, NULL,
};
BERTDEF const bert_comm *bert_comm_single(void) { return &bert__single_comm; }

BERTDEF int bert_comm_allreduce_model(const bert_comm *c, const struct bert_kernels *k, float *buf, size_t n) {
    if (!c || c->size <= 1) return BERT_OK;
    if (!bert__mem_of(k)->device || c->device) return c->allreduce_sum(c, buf, n);
    float *host = (float *)bert__malloc(n * sizeof(float));
    if (!host) return bert__err(BERT_ERR_OOM, "allreduce: no host buffer for %zu floats", n);
    bert_copy_to_host(k, host, buf, n * sizeof(float));
    int rc = c->allreduce_sum(c, host, n);
    if (!rc) bert_copy_from_host(k, buf, host, n * sizeof(float));
    BERT_FREE(host);
    return rc;
}

BERTDEF void bert_optim_free(bert_optim *o) {
    if (o->m) bert__mem_of(o->k)->release(o->m);
    if (o->v) bert__mem_of(o->k)->release(o->v);
    o->m = o->v = NULL;
}

BERTDEF float bert_optim_lr(const bert_optim *o, uint64_t step) {
    double lr = o->lr, s = (double)step;
    if (o->total_steps > 0) {
        double frac = (s < o->total_steps ? s : o->total_steps) / o->total_steps;
        lr = ((double)o->lr - o->end_lr) * pow(1.0 - frac, o->poly_power) + o->end_lr;
    }
    if (s < o->warmup_steps) lr = (double)o->lr * s / o->warmup_steps;
    return (float)lr;
}

BERTDEF int bert_optim_step(bert_optim *o, bert_model *m) {
    const bert_kernels *k = m->k ? m->k : bert_cpu_kernels();   // the kernels of the params' memory
    BERT_ASSERT_MSG(o->m && o->n == m->num_params && o->k == m->k, "bert_optim_step: call bert_optim_init with this model");
    bert_model_dequantize(m);   // int8 copies of weights about to change would be stale
    if (o->comm && o->comm->size > 1) {   // every rank's share of the batch: the global batch's grads, everywhere
        double t0 = bert_time_s();
        int rc = bert_comm_allreduce_model(o->comm, m->k, m->grads, m->num_params);
        o->last_comm_s = bert_time_s() - t0;
        if (rc) return rc;
    }
    float S = o->grad_scale > 0.0f ? o->grad_scale : 1.0f;   // a power of two divides out exactly
    double norm = sqrt(k->sumsq(m->grads, m->num_params)) / S;
    o->last_grad_norm = (float)norm;
    if (!isfinite(norm)) return bert__err(BERT_ERR_NONFINITE, "gradient norm is %g: update skipped", norm);
    float clip = o->clip_norm > 0.0f && norm > o->clip_norm ? (float)(o->clip_norm / norm) : 1.0f;
    float gscale = clip / S, lr = bert_optim_lr(o, o->step);
    double t = (double)(o->step + 1);
    float bc1 = o->bias_correction ? (float)(1.0 - pow(o->beta1, t)) : 1.0f;
    float bc2 = o->bias_correction ? (float)(1.0 - pow(o->beta2, t)) : 1.0f;
    for (int i = 0; i < m->num_tensors; i++) {
        size_t off = (size_t)(m->tensors[i].data - m->params), n = m->tensors[i].numel;
        float *p = m->params + off, *mom = o->m + off, *vel = o->v ? o->v + off : NULL;
        const float *g = m->grads + off;
        float wd = m->decay[i] ? o->weight_decay : 0.0f;
        switch (o->type) {
        case BERT_OPTIM_ADAMW_GB:
        case BERT_OPTIM_ADAMW:
            k->adam_update(p, g, mom, vel, n, lr, o->beta1, o->beta2, o->eps, wd, gscale, bc1, bc2);
            break;
        case BERT_OPTIM_LAMB: {
            double norms[2];
            k->adam_direction_norms(norms, p, g, mom, vel, n, o->beta1, o->beta2, o->eps, wd, gscale, bc1, bc2);
            int adapt = !(o->lamb_exclude_ln_bias && !m->decay[i]);   // LN/bias are the no-decay rows
            float ratio = adapt && norms[0] > 0.0 && norms[1] > 0.0 ? (float)(sqrt(norms[0]) / sqrt(norms[1])) : 1.0f;
            k->lamb_apply(p, mom, vel, n, lr * ratio, o->eps, wd, bc1, bc2);
            break;
        }
        case BERT_OPTIM_MOMENTUM:
            k->momentum_update(p, g, mom, n, lr, o->momentum, wd, gscale);
            break;
        }
    }
    o->step++;
    o->last_lr = lr;
    return BERT_OK;
}

// ----------------------------------------------------------------------------
// command-line flags

static int bert__flag_set(const bert_flag *f, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case BERT_FLAG_INT: {
        long x = strtol(v, &end, 10);
        if (!*v || *end || errno || x < INT32_MIN || x > INT32_MAX) return bert__err(BERT_ERR_ARG, "--%s: '%s' is not an integer", f->name, v);
        *(int *)f->value = (int)x;
        return BERT_OK;
    }
    case BERT_FLAG_FLOAT: {
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x)) return bert__err(BERT_ERR_ARG, "--%s: '%s' is not a number", f->name, v);
        if (fabs(x) > FLT_MAX) return bert__err(BERT_ERR_ARG, "--%s: '%s' is beyond float range", f->name, v);
        *(float *)f->value = (float)x;
        return BERT_OK;
    }
    case BERT_FLAG_BOOL:
        if (strcmp(v, "0") && strcmp(v, "1") && strcmp(v, "true") && strcmp(v, "false"))
            return bert__err(BERT_ERR_ARG, "--%s: '%s' is not 0/1/true/false", f->name, v);
        *(int *)f->value = !strcmp(v, "1") || !strcmp(v, "true");
        return BERT_OK;
    case BERT_FLAG_LIST: {
        bert_flag_list *l = (bert_flag_list *)f->value;
        if (l->count == 64) return bert__err(BERT_ERR_ARG, "--%s: given over 64 times", f->name);
        l->items[l->count++] = v;
        return BERT_OK;
    }
    case BERT_FLAG_STR:
        *(const char **)f->value = v;
        return BERT_OK;
    }
    return bert__err(BERT_ERR_ARG, "--%s: bad flag type", f->name);
}

BERTDEF int bert_flags_parse(const bert_flag *flags, int nflags, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 1;
        if (strncmp(a, "--", 2) != 0) return bert__err(BERT_ERR_ARG, "unexpected argument '%s' (flags start with --)", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const bert_flag *f = NULL;
        for (int k = 0; k < nflags && !f; k++)
            if (strlen(flags[k].name) == len && !strncmp(flags[k].name, name, len)) f = &flags[k];
        if (!f) return bert__err(BERT_ERR_ARG, "unknown flag --%.*s (--help lists them)", (int)len, name);
        const char *v = eq ? eq + 1 : NULL;
        if (!v && f->type == BERT_FLAG_BOOL) v = "1";
        if (!v && i + 1 >= argc) return bert__err(BERT_ERR_ARG, "--%s needs a value", f->name);
        if (!v) v = argv[++i];
        int rc = bert__flag_set(f, v);
        if (rc) return rc;
    }
    return BERT_OK;
}

BERTDEF void bert_flags_usage(void *file, const bert_flag *flags, int nflags) {
    FILE *out = (FILE *)file;
    for (int k = 0; k < nflags; k++) {
        const bert_flag *f = &flags[k];
        char def[96] = "";
        switch (f->type) {
        case BERT_FLAG_INT: snprintf(def, sizeof def, " (%d)", *(int *)f->value); break;
        case BERT_FLAG_FLOAT: snprintf(def, sizeof def, " (%g)", (double)*(float *)f->value); break;
        case BERT_FLAG_BOOL: snprintf(def, sizeof def, " (%s)", *(int *)f->value ? "on" : "off"); break;
        case BERT_FLAG_STR: if (*(const char **)f->value) snprintf(def, sizeof def, " (%.80s)", *(const char **)f->value); break;
        case BERT_FLAG_LIST: snprintf(def, sizeof def, " (repeatable)"); break;
        }
        const char *arg = f->type == BERT_FLAG_BOOL ? "" : f->type == BERT_FLAG_INT ? " N" : f->type == BERT_FLAG_FLOAT ? " X" : " S";
        char head[64];
        snprintf(head, sizeof head, "--%s%s", f->name, arg);
        fprintf(out, "  %-28s %s%s\n", head, f->help, def);
    }
}

BERTDEF double bert_time_s(void) {
#ifdef _WIN32   // msvcrt has no timespec_get: the same wall clock, 100 ns ticks since 1601
    FILETIME ft;
#if _WIN32_WINNT >= 0x0602
    GetSystemTimePreciseAsFileTime(&ft);   // Windows 8 on; the plain one ticks every ~15 ms
#else
    GetSystemTimeAsFileTime(&ft);
#endif
    return ((double)(((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime) - 116444736e9) * 1e-7;
#else
    struct timespec ts;
    if (!timespec_get(&ts, TIME_UTC)) return 0.0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

BERTDEF double bert_peak_rss_mib(void) {   // VmHWM: the high-water mark of the resident set, in kB
#ifdef _WIN32   // the same number there: the peak working set (kernel32's K32 name: no psapi.lib)
    PROCESS_MEMORY_COUNTERS pmc;
    if (!K32GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc)) return -1.0;
    return (double)pmc.PeakWorkingSetSize / (1024.0 * 1024.0);
#else
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = -1.0;
    if (!f) return -1.0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) { kib = strtod(line + 6, NULL); break; }
    fclose(f);
    return kib < 0 ? -1.0 : kib / 1024.0;
#endif
}

BERTDEF const char *bert_format_duration(char *buf, size_t n, double s) {
    if (!(s >= 0) || s >= 1e9) snprintf(buf, n, "?");   // NaN, negative, or beyond any run's length
    else if (s < 60) snprintf(buf, n, "%ds", (int)s);   // whole seconds, cut down (59.6 is not "60s")
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
    return buf;
}

// ----------------------------------------------------------------------------
// I/O: files, JSON, safetensors

/* ==== I/O: file reading, JSON, safetensors =================================================== */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>
#ifndef __cplusplus
int (fileno)(FILE *); int (fsync)(int);   /* hidden under strict -std=c11; compatible redeclaration */
FILE *(fdopen)(int, const char *);
#endif
#if !defined(O_NOFOLLOW) && defined(__O_NOFOLLOW)
#define O_NOFOLLOW __O_NOFOLLOW   /* glibc hides the POSIX-2008 names under strict -std=c11 */
#endif
#if !defined(O_CLOEXEC) && defined(__O_CLOEXEC)
#define O_CLOEXEC __O_CLOEXEC
#endif
#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0   /* a pre-2008 system: O_EXCL alone still refuses to open through a symlink */
#endif
#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#elif defined(_WIN32)
#include <io.h>          /* _open, _commit (FlushFileBuffers), _close */
#include <fcntl.h>
#include <sys/stat.h>
#endif

#ifdef _WIN32   /* long is 32 bits there: files past 2 GB need the 64-bit seek and tell */
typedef long long bert__off;
#define bert__fseek _fseeki64
#define bert__ftell _ftelli64
#else
typedef long bert__off;
#define bert__fseek fseek
#define bert__ftell ftell
#endif

#define BERT__IO_MAX_TEXT BERT_MAX_TEXT_BYTES   /* JSON text / safetensors header cap: 100 MB */
#define BERT__JSON_MAX_DEPTH 64

BERTDEF void *bert_open_input(const char *path) {
#if defined(__unix__) || defined(__APPLE__)
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);   // O_NONBLOCK: opening a FIFO must not wait
    struct stat st;
    if (fd < 0) { bert__err(BERT_ERR_IO, "%s: %s", path, strerror(errno)); return NULL; }
    if (fstat(fd, &st) != 0) { int e = errno; close(fd); bert__err(BERT_ERR_IO, "%s: %s", path, strerror(e)); return NULL; }
    if (!S_ISREG(st.st_mode)) {
        const char *what = S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" :
                           S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "a socket or other special file";
        close(fd);
        bert__err(BERT_ERR_IO, "%s: not a regular file (%s)", path, what);
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");   // (O_NONBLOCK means nothing for a regular file's reads)
    if (!f) { int e = errno; close(fd); bert__err(BERT_ERR_IO, "%s: %s", path, strerror(e)); }
    return f;
#elif defined(_WIN32)   // a directory does not open there (EACCES): the name's stat says why; NUL, CON open
    struct _stat64 st;
    FILE *f = fopen(path, "rb");
    int e = errno, isdir = !f && _stat64(path, &st) == 0 && (st.st_mode & _S_IFDIR);
    if (f && _fstat64(_fileno(f), &st) == 0 && !(st.st_mode & _S_IFREG)) {
        fclose(f);
        bert__err(BERT_ERR_IO, "%s: not a regular file (%s)", path, (st.st_mode & _S_IFCHR) ? "a device" : "a pipe or other special file");
        return NULL;
    }
    if (isdir) bert__err(BERT_ERR_IO, "%s: not a regular file (a directory)", path);
    else if (!f) bert__err(BERT_ERR_IO, "%s: %s", path, strerror(e));
    return f;
#else
    FILE *f = fopen(path, "rb");
    if (!f) bert__err(BERT_ERR_IO, "%s: %s", path, strerror(errno));
    return f;
#endif
}

/* Whole file into memory (+1 NUL so text formats can be parsed in place); regular files only. */
static int bert__read_file(const char *path, unsigned char **data, size_t *size) {
    FILE *f; bert__off n; unsigned char *buf; int e;
    *data = NULL; *size = 0;
    if (!(f = (FILE *)bert_open_input(path))) return BERT_ERR_IO;
    errno = 0;
    if ((getc(f) == EOF && ferror(f)) || bert__fseek(f, 0, SEEK_END) != 0 || (n = bert__ftell(f)) < 0 ||
        bert__fseek(f, 0, SEEK_SET) != 0) {
        e = errno; fclose(f);
        return bert__err(BERT_ERR_IO, "%s: %s", path, e ? strerror(e) : "cannot read");
    }
    if ((unsigned long long)n >= (size_t)-1) { fclose(f); return bert__err(BERT_ERR_IO, "%s: file too large", path); }
    if (!(buf = (unsigned char *)bert__malloc((size_t)n + 1))) { fclose(f); return BERT_ERR_OOM; }
    errno = 0;
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        e = errno; fclose(f); BERT_FREE(buf);
        return bert__err(BERT_ERR_IO, "%s: %s", path, e ? strerror(e) : "short read");
    }
    fclose(f);
    buf[n] = 0; *data = buf; *size = (size_t)n;
    return BERT_OK;
}

static char *bert__io_strdup(const char *s) {
    size_t n = strlen(s) + 1; char *d = (char *)bert__malloc(n);
    return d ? (char *)memcpy(d, s, n) : NULL;
}

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if invalid: no overlongs,
   no surrogates, nothing above U+10FFFF. */
static size_t bert__io_utf8_len(const unsigned char *s, size_t n) {
    uint32_t c = s[0], cp; size_t len, k;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (k = 1; k < len; k++) { if ((s[k] & 0xC0) != 0x80) return 0; cp = (cp << 6) | (s[k] & 0x3F); }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
    return len;
}

/* ---- JSON ---------------------------------------------------------------------------------
   Two passes over the text with the same code. Pass 0 validates and counts nodes, decoded string
   bytes and the child count of every container (in document order). Pass 1 allocates a single
   block [nodes | strings] and fills it; each container takes its `count` children contiguously
   from the node pool. Recursion depth is bounded by BERT__JSON_MAX_DEPTH. */
typedef struct {
    const unsigned char *s; size_t n, i;
    int build;                            /* 0: validate + count, 1: fill */
    size_t nodes, strbytes;               /* pass 0: totals; pass 1: bump cursors */
    bert_json *pool; char *arena;
    int *counts; size_t ncounts, cap, kc; /* children per container, document order */
    char *err;                            /* [128] */
} bert__jp;

static int bert__jp_fail(bert__jp *p, const char *what, size_t at) {
    snprintf(p->err, 128, "json: %s at byte %zu", what, at);
    return BERT_ERR_FORMAT;
}

static void bert__jp_ws(bert__jp *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static int bert__jp_hex4(bert__jp *p, uint32_t *cp) {
    int k;
    *cp = 0;
    for (k = 0; k < 4; k++, p->i++) {
        unsigned c = p->i < p->n ? p->s[p->i] : 0;
        unsigned d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 :
                     (c >= 'A' && c <= 'F') ? c - 'A' + 10 : 16;
        if (d == 16) return bert__jp_fail(p, "bad \\u escape", p->i);
        *cp = (*cp << 4) | d;
    }
    return 0;
}

/* String at p->i (opening quote). Pass 0 only measures; pass 1 writes into the arena. */
static int bert__jp_string(bert__jp *p, char **out, size_t *outlen) {
    char *dst = p->build ? p->arena + p->strbytes : NULL;
    size_t k = 0, at, len, j;
    unsigned char u[4];
    p->i++;
    for (;;) {
        unsigned c;
        if (p->i >= p->n) return bert__jp_fail(p, "unterminated string", p->i);
        at = p->i; c = p->s[p->i];
        if (c == '"') { p->i++; break; }
        if (c < 0x20) return bert__jp_fail(p, "control character in string", at);
        if (c == '\\') {
            uint32_t cp = 0, lo;
            c = p->i + 1 < p->n ? p->s[p->i + 1] : 0;
            p->i += 2;
            switch (c) {
            case '"': case '\\': case '/': cp = c; break;
            case 'b': cp = '\b'; break;  case 'f': cp = '\f'; break;  case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;  case 't': cp = '\t'; break;
            case 'u':
                if (bert__jp_hex4(p, &cp)) return BERT_ERR_FORMAT;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return bert__jp_fail(p, "unpaired low surrogate", at);
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (p->i + 1 >= p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
                        return bert__jp_fail(p, "unpaired high surrogate", at);
                    p->i += 2;
                    if (bert__jp_hex4(p, &lo)) return BERT_ERR_FORMAT;
                    if (lo < 0xDC00 || lo > 0xDFFF) return bert__jp_fail(p, "unpaired high surrogate", at);
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                break;
            default: return bert__jp_fail(p, "invalid escape", at);
            }
            /* encode cp as UTF-8: continuation bytes from the end, then the lead byte */
            len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            for (j = len - 1; j > 0; j--) { u[j] = (unsigned char)(0x80 | (cp & 0x3F)); cp >>= 6; }
            u[0] = (unsigned char)(len == 1 ? cp : ((0xF00u >> len) & 0xFF) | cp);
            if (dst) memcpy(dst + k, u, len);
            k += len;
        } else {
            len = c < 0x80 ? 1 : bert__io_utf8_len(p->s + p->i, p->n - p->i);
            if (!len) return bert__jp_fail(p, "invalid UTF-8 in string", at);
            if (dst) memcpy(dst + k, p->s + p->i, len);
            k += len; p->i += len;
        }
    }
    if (dst) dst[k] = 0;
    if (out) *out = dst;
    if (outlen) *outlen = k;
    p->strbytes += k + 1;
    return 0;
}

/* Number per the RFC grammar, then strtod on a bounded NUL-terminated copy. */
static int bert__jp_number(bert__jp *p, double *out) {
    size_t at = p->i, n;
    char buf[256], *end;
    const unsigned char *s = p->s;
#define BERT__JP_DIGIT(j) ((j) < p->n && s[j] >= '0' && s[j] <= '9')
    if (p->i < p->n && s[p->i] == '-') p->i++;
    if (!BERT__JP_DIGIT(p->i)) return bert__jp_fail(p, "invalid number", at);
    if (s[p->i] == '0') {
        p->i++;
        if (BERT__JP_DIGIT(p->i)) return bert__jp_fail(p, "leading zero in number", at);
    } else while (BERT__JP_DIGIT(p->i)) p->i++;
    if (p->i < p->n && s[p->i] == '.') {
        p->i++;
        if (!BERT__JP_DIGIT(p->i)) return bert__jp_fail(p, "invalid number", at);
        while (BERT__JP_DIGIT(p->i)) p->i++;
    }
    if (p->i < p->n && (s[p->i] == 'e' || s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (s[p->i] == '+' || s[p->i] == '-')) p->i++;
        if (!BERT__JP_DIGIT(p->i)) return bert__jp_fail(p, "invalid number", at);
        while (BERT__JP_DIGIT(p->i)) p->i++;
    }
#undef BERT__JP_DIGIT
    n = p->i - at;
    if (n >= sizeof buf) return bert__jp_fail(p, "number too long", at);
    memcpy(buf, s + at, n); buf[n] = 0;
    *out = strtod(buf, &end);
    if (end != buf + n || *out > DBL_MAX || *out < -DBL_MAX) return bert__jp_fail(p, "number out of range", at);
    return 0;
}

static int bert__jp_value(bert__jp *p, bert_json *v, int depth) {
    unsigned c;
    int rc;
    bert__jp_ws(p);
    if (p->i >= p->n) return bert__jp_fail(p, "unexpected end of input", p->i);
    c = p->s[p->i];
    if (c == '{' || c == '[') {
        int obj = c == '{', k = 0;
        unsigned close = obj ? '}' : ']';
        size_t slot = p->ncounts;
        bert_json dummy, *kids = NULL;
        if (depth >= BERT__JSON_MAX_DEPTH) return bert__jp_fail(p, "nesting deeper than 64", p->i);
        if (!p->build) {                       /* reserve this container's count slot */
            if (p->ncounts == p->cap) {
                size_t ncap = p->cap ? p->cap * 2 : 64;
                int *q = (int *)bert__malloc(ncap * sizeof(int));
                if (!q) return BERT_ERR_OOM;
                if (p->counts) { memcpy(q, p->counts, p->ncounts * sizeof(int)); BERT_FREE(p->counts); }
                p->counts = q; p->cap = ncap;
            }
            p->counts[p->ncounts++] = 0;
        } else {                               /* take the children from the pool */
            v->count = p->counts[p->kc++];
            kids = v->count ? p->pool + p->nodes : NULL;
            v->child = kids;
            p->nodes += (size_t)v->count;
        }
        v->type = obj ? BERT_JSON_OBJECT : BERT_JSON_ARRAY;
        p->i++;
        bert__jp_ws(p);
        if (p->i < p->n && p->s[p->i] == close) { p->i++; return 0; }
        for (;; k++) {
            bert_json *kid = p->build ? &kids[k] : &dummy;
            if (obj) {
                bert__jp_ws(p);
                if (p->i >= p->n || p->s[p->i] != '"') return bert__jp_fail(p, "expected string key", p->i);
                if ((rc = bert__jp_string(p, &kid->key, NULL))) return rc;
                bert__jp_ws(p);
                if (p->i >= p->n || p->s[p->i] != ':') return bert__jp_fail(p, "expected ':'", p->i);
                p->i++;
            }
            if ((rc = bert__jp_value(p, kid, depth + 1))) return rc;
            bert__jp_ws(p);
            if (p->i < p->n && p->s[p->i] == ',') {
                if (k >= INT_MAX - 1) return bert__jp_fail(p, "too many elements", p->i);
                p->i++; continue;
            }
            if (p->i < p->n && p->s[p->i] == close) { p->i++; break; }
            return bert__jp_fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'", p->i);
        }
        if (!p->build) { p->counts[slot] = k + 1; p->nodes += (size_t)k + 1; }
        return 0;
    }
    if (c == '"') { v->type = BERT_JSON_STRING; return bert__jp_string(p, &v->string, &v->string_len); }
    if (c == '-' || (c >= '0' && c <= '9')) { v->type = BERT_JSON_NUMBER; return bert__jp_number(p, &v->number); }
    if (p->n - p->i >= 4 && !memcmp(p->s + p->i, "null", 4)) { v->type = BERT_JSON_NULL; p->i += 4; return 0; }
    if (p->n - p->i >= 4 && !memcmp(p->s + p->i, "true", 4)) { v->type = BERT_JSON_TRUE; p->i += 4; return 0; }
    if (p->n - p->i >= 5 && !memcmp(p->s + p->i, "false", 5)) { v->type = BERT_JSON_FALSE; p->i += 5; return 0; }
    return bert__jp_fail(p, "unexpected character", p->i);
}

/* Parser core: leaves a format message in err[128] instead of the global error, so callers
   (bert_st_open) can prefix it with a file name. */
static int bert__json_parse(bert_json **out, const char *text, size_t len, char *err) {
    bert__jp p;
    bert_json dummy;
    int rc;
    *out = NULL; err[0] = 0;
    memset(&p, 0, sizeof p);
    p.s = (const unsigned char *)text; p.n = len; p.err = err;
    if (!text && len) return bert__jp_fail(&p, "NULL text", 0);
    if (len > BERT__IO_MAX_TEXT) return bert__jp_fail(&p, "text larger than 100 MB", 0);
    p.nodes = 1;                                       /* the root */
    rc = bert__jp_value(&p, &dummy, 0);
    if (!rc) { bert__jp_ws(&p); if (p.i != p.n) rc = bert__jp_fail(&p, "trailing characters", p.i); }
    if (!rc) {
        if (p.nodes > (((size_t)-1) - p.strbytes) / sizeof(bert_json)) rc = bert__err(BERT_ERR_OOM, "json: tree too large");
        else if (!(p.pool = (bert_json *)bert__malloc(p.nodes * sizeof(bert_json) + p.strbytes))) rc = BERT_ERR_OOM;
    }
    if (!rc) {
        memset(p.pool, 0, p.nodes * sizeof(bert_json));
        p.arena = (char *)(p.pool + p.nodes);
        p.build = 1; p.i = 0; p.nodes = 1; p.strbytes = 0; p.kc = 0;
        rc = bert__jp_value(&p, p.pool, 0);           /* cannot fail: the text was validated */
        if (rc) BERT_FREE(p.pool); else *out = p.pool;
    }
    if (p.counts) BERT_FREE(p.counts);
    return rc;
}

BERTDEF int bert_json_parse(bert_json **out, const char *text, size_t len) {
    char err[128];
    int rc;
    if (!out) return bert__err(BERT_ERR_ARG, "bert_json_parse: out is NULL");
    rc = bert__json_parse(out, text, len, err);
    return rc == BERT_ERR_FORMAT ? bert__err(rc, "%s", err) : rc;
}

BERTDEF void bert_json_free(bert_json *root) { if (root) BERT_FREE(root); }

BERTDEF const bert_json *bert_json_get(const bert_json *obj, const char *key) {
    int i;
    if (!obj || obj->type != BERT_JSON_OBJECT || !key) return NULL;
    for (i = obj->count - 1; i >= 0; i--) if (!strcmp(obj->child[i].key, key)) return &obj->child[i];   // the last wins
    return NULL;
}

/* ---- safetensors -------------------------------------------------------------------------- */
static const char *const bert__dt_names[BERT_DT_COUNT] = { "F32", "F16", "BF16", "F64", "I32", "I64", "U8", "I8", "BOOL" };
static const unsigned char bert__dt_sizes[BERT_DT_COUNT] = { 4, 2, 2, 8, 4, 8, 1, 1, 1 };

BERTDEF const char *bert_dtype_name(bert_dtype dt) { return (int)dt >= 0 && dt < BERT_DT_COUNT ? bert__dt_names[dt] : "?"; }
BERTDEF size_t bert_dtype_size(bert_dtype dt) { return (int)dt >= 0 && dt < BERT_DT_COUNT ? bert__dt_sizes[dt] : 0; }

/* Little-endian loads from bytes: portable and alignment-free (tensor offsets can be odd). */
static uint32_t bert__io_le32(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static uint64_t bert__io_le64(const unsigned char *b) { return (uint64_t)bert__io_le32(b) | (uint64_t)bert__io_le32(b + 4) << 32; }
static float bert__io_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* IEEE half -> float, exact, including subnormals, infinities and NaN payloads. */
static float bert__io_f16_to_f32(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16, ex = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (ex == 0x1F) return bert__io_bits_f32(sign | 0x7F800000u | man << 13);
    if (ex) return bert__io_bits_f32(sign | (ex + 112) << 23 | man << 13);
    if (!man) return bert__io_bits_f32(sign);
    ex = 113;                                          /* subnormal: normalise */
    while (!(man & 0x400)) { man <<= 1; ex--; }
    return bert__io_bits_f32(sign | ex << 23 | (man & 0x3FF) << 13);
}

/* A JSON number that is an exact non-negative integer <= 2^53 (what doubles hold exactly). */
static int bert__io_json_uint(const bert_json *j, uint64_t *v) {
    if (!j || j->type != BERT_JSON_NUMBER || !(j->number >= 0 && j->number <= 9007199254740992.0)) return 0;
    *v = (uint64_t)j->number;
    return (double)*v == j->number;
}

/* Validates one header entry into t (t->name set last, so a failed entry owns nothing). */
static int bert__st_entry(const char *path, const bert_json *j, size_t data_size, bert_st_tensor *t) {
    const bert_json *dt = bert_json_get(j, "dtype"), *sh = bert_json_get(j, "shape"), *off = bert_json_get(j, "data_offsets");
    const char *nm = j->key;
    uint64_t v, b, e;
    size_t es;
    int k;
    if (j->type != BERT_JSON_OBJECT) return bert__err(BERT_ERR_FORMAT, "%s: tensor '%s': entry is not an object", path, nm);
    if (!dt || dt->type != BERT_JSON_STRING) return bert__err(BERT_ERR_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", path, nm);
    for (k = 0; k < BERT_DT_COUNT && strcmp(dt->string, bert__dt_names[k]); k++) {}
    if (k == BERT_DT_COUNT) return bert__err(BERT_ERR_DTYPE, "%s: tensor '%s': unsupported dtype '%s'", path, nm, dt->string);
    t->dtype = (bert_dtype)k;
    if (!sh || sh->type != BERT_JSON_ARRAY) return bert__err(BERT_ERR_FORMAT, "%s: tensor '%s': missing or non-array \"shape\"", path, nm);
    if (sh->count > 8) return bert__err(BERT_ERR_FORMAT, "%s: tensor '%s': %d dims (max 8)", path, nm, sh->count);
    t->ndim = sh->count; t->numel = 1;
    for (k = 0; k < sh->count; k++) {
        if (!bert__io_json_uint(&sh->child[k], &v)) return bert__err(BERT_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, nm, k);
        if (v && t->numel > ((size_t)-1) / v) return bert__err(BERT_ERR_FORMAT, "%s: tensor '%s': element count overflows", path, nm);
        t->shape[k] = (int64_t)v; t->numel *= (size_t)v;
    }
    if (!off || off->type != BERT_JSON_ARRAY || off->count != 2 || !bert__io_json_uint(&off->child[0], &b) || !bert__io_json_uint(&off->child[1], &e))
        return bert__err(BERT_ERR_FORMAT, "%s: tensor '%s': missing or invalid \"data_offsets\"", path, nm);
    if (b > e) return bert__err(BERT_ERR_FORMAT, "%s: tensor '%s': data_offsets begin %llu > end %llu", path, nm, (unsigned long long)b, (unsigned long long)e);
    if (e > (uint64_t)data_size) return bert__err(BERT_ERR_FORMAT, "%s: tensor '%s': data_offsets end %llu is past the data buffer (%zu bytes)", path, nm, (unsigned long long)e, data_size);
    es = bert__dt_sizes[t->dtype];
    if (t->numel > ((size_t)-1) / es) return bert__err(BERT_ERR_FORMAT, "%s: tensor '%s': byte size overflows", path, nm);
    t->begin = (size_t)b; t->end = (size_t)e;
    if (t->end - t->begin != t->numel * es)
        return bert__err(BERT_ERR_FORMAT, "%s: tensor '%s': data_offsets span %zu bytes but %s x %zu elements needs %zu", path, nm,
                         t->end - t->begin, bert__dt_names[t->dtype], t->numel, t->numel * es);
    return (t->name = bert__io_strdup(nm)) ? BERT_OK : BERT_ERR_OOM;
}

static int bert__st_cmp_name(const void *a, const void *b) {
    return strcmp((*(const bert_st_tensor *const *)a)->name, (*(const bert_st_tensor *const *)b)->name);
}
static int bert__st_cmp_begin(const void *a, const void *b) {
    const bert_st_tensor *x = *(const bert_st_tensor *const *)a, *y = *(const bert_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Duplicate names (sort by name) and overlapping byte ranges (sort by begin, track max end). */
static int bert__st_check_layout(const char *path, const bert_st *st) {
    const bert_st_tensor **o, *far = NULL;
    int i, rc = BERT_OK;
    if (st->count < 2) return BERT_OK;
    if (!(o = (const bert_st_tensor **)bert__malloc((size_t)st->count * sizeof *o))) return BERT_ERR_OOM;
    for (i = 0; i < st->count; i++) o[i] = &st->tensors[i];
    qsort((void *)o, (size_t)st->count, sizeof *o, bert__st_cmp_name);
    for (i = 1; i < st->count && !rc; i++)
        if (!strcmp(o[i - 1]->name, o[i]->name)) rc = bert__err(BERT_ERR_FORMAT, "%s: duplicate tensor name '%s'", path, o[i]->name);
    if (!rc) qsort((void *)o, (size_t)st->count, sizeof *o, bert__st_cmp_begin);
    for (i = 0; i < st->count && !rc; i++) {
        if (far && o[i]->begin < far->end)
            rc = bert__err(BERT_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data buffer", path, far->name, o[i]->name);
        if (!far || o[i]->end > far->end) far = o[i];
    }
    BERT_FREE((void *)o);
    return rc;
}

BERTDEF void bert_st_close(bert_st *st) {
    int i;
    if (!st) return;
    for (i = 0; i < st->count; i++) BERT_FREE(st->tensors[i].name);
    for (i = 0; i < st->meta_count; i++) {   /* BERT_FREE is never given NULL */
        if (st->meta_keys[i]) BERT_FREE(st->meta_keys[i]);
        if (st->meta_values[i]) BERT_FREE(st->meta_values[i]);
    }
    if (st->tensors) BERT_FREE(st->tensors);
    if (st->meta_keys) BERT_FREE(st->meta_keys);
    if (st->meta_values) BERT_FREE(st->meta_values);
    if (st->file) BERT_FREE(st->file);
    if (st->path) BERT_FREE(st->path);
    memset(st, 0, sizeof *st);
}

BERTDEF int bert_st_open(bert_st *st, const char *path) {
    bert_json *root = NULL;
    const bert_json *meta = NULL, *m;
    char err[128];
    uint64_t hlen;
    int i, nt = 0, rc;
    if (!st) return bert__err(BERT_ERR_ARG, "bert_st_open: st is NULL");
    memset(st, 0, sizeof *st);
    if (!path) return bert__err(BERT_ERR_ARG, "bert_st_open: path is NULL");
    if (!(st->path = bert__io_strdup(path))) return BERT_ERR_OOM;
    if ((rc = bert__read_file(path, &st->file, &st->file_size))) goto fail;
    if (st->file_size < 8) { rc = bert__err(BERT_ERR_FORMAT, "%s: file too short for safetensors (%zu bytes)", path, st->file_size); goto fail; }
    hlen = bert__io_le64(st->file);
    if (hlen == 0 || hlen > BERT__IO_MAX_TEXT || hlen > st->file_size - 8) {
        rc = bert__err(BERT_ERR_FORMAT, "%s: bad header length %llu (%s)", path, (unsigned long long)hlen,
                       hlen == 0 ? "zero" : hlen > BERT__IO_MAX_TEXT ? "over 100 MB" : "past end of file");
        goto fail;
    }
    st->data = st->file + 8 + hlen;
    st->data_size = st->file_size - 8 - (size_t)hlen;
    if ((rc = bert__json_parse(&root, (const char *)st->file + 8, (size_t)hlen, err))) {
        if (rc == BERT_ERR_FORMAT) bert__err(rc, "%s: bad header: %s", path, err);
        goto fail;
    }
    if (root->type != BERT_JSON_OBJECT) { rc = bert__err(BERT_ERR_FORMAT, "%s: header is not a JSON object", path); goto fail; }
    for (i = 0; i < root->count; i++) {
        if (strcmp(root->child[i].key, "__metadata__")) { nt++; continue; }
        if (meta) { rc = bert__err(BERT_ERR_FORMAT, "%s: duplicate __metadata__", path); goto fail; }
        meta = &root->child[i];
    }
    if (nt && !(st->tensors = (bert_st_tensor *)bert__malloc((size_t)nt * sizeof(bert_st_tensor)))) { rc = BERT_ERR_OOM; goto fail; }
    for (i = 0; i < root->count; i++) {
        if (&root->child[i] == meta) continue;
        memset(&st->tensors[st->count], 0, sizeof(bert_st_tensor));
        if ((rc = bert__st_entry(path, &root->child[i], st->data_size, &st->tensors[st->count]))) goto fail;
        st->count++;
    }
    if (meta) {
        if (meta->type != BERT_JSON_OBJECT) { rc = bert__err(BERT_ERR_FORMAT, "%s: __metadata__ is not an object", path); goto fail; }
        if (meta->count) {
            st->meta_keys = (char **)bert__malloc((size_t)meta->count * sizeof(char *));
            st->meta_values = (char **)bert__malloc((size_t)meta->count * sizeof(char *));
            if (!st->meta_keys || !st->meta_values) { rc = BERT_ERR_OOM; goto fail; }
        }
        for (i = 0; i < meta->count; i++) {
            m = &meta->child[i];
            if (m->type != BERT_JSON_STRING) { rc = bert__err(BERT_ERR_FORMAT, "%s: __metadata__ value for '%s' is not a string", path, m->key); goto fail; }
            st->meta_keys[i] = bert__io_strdup(m->key);
            st->meta_values[i] = bert__io_strdup(m->string);
            st->meta_count++;
            if (!st->meta_keys[i] || !st->meta_values[i]) { rc = BERT_ERR_OOM; goto fail; }
        }
    }
    if ((rc = bert__st_check_layout(path, st))) goto fail;
    bert_json_free(root);
    return BERT_OK;
fail:
    bert_json_free(root);
    bert_st_close(st);
    return rc;
}

BERTDEF const bert_st_tensor *bert_st_find(const bert_st *st, const char *name) {
    int i;
    if (!st || !name) return NULL;
    for (i = 0; i < st->count; i++) if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

BERTDEF const char *bert_st_meta(const bert_st *st, const char *key) {
    int i;
    if (!st || !key) return NULL;
    for (i = 0; i < st->meta_count; i++) if (!strcmp(st->meta_keys[i], key)) return st->meta_values[i];
    return NULL;
}

static void bert__io_shape_str(char *buf, size_t cap, const int64_t *shape, int ndim) {
    size_t n = 0;
    int k;
    n += (size_t)snprintf(buf, cap, "[");
    for (k = 0; k < ndim && n < cap; k++) n += (size_t)snprintf(buf + n, cap - n, k ? ",%lld" : "%lld", (long long)shape[k]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* Shared by the typed readers: argument check, lookup, exact shape match. */
static int bert__st_lookup(const bert_st *st, const char *name, const void *dst, const int64_t *shape, int ndim,
                           const bert_st_tensor **out, const unsigned char **bytes) {
    const bert_st_tensor *t;
    int k = 0;
    if (!st || !name || ndim < 0 || ndim > 8 || (ndim && !shape)) return bert__err(BERT_ERR_ARG, "bert_st_read: bad arguments");
    if (!(t = bert_st_find(st, name))) return bert__err(BERT_ERR_MISSING, "%s: tensor '%s' not found", st->path, name);
    if (t->ndim == ndim) for (k = 0; k < ndim && shape[k] == t->shape[k]; k++) {}
    if (t->ndim != ndim || k != ndim) {
        char a[200], b[200];
        bert__io_shape_str(a, sizeof a, t->shape, t->ndim);
        bert__io_shape_str(b, sizeof b, shape, ndim);
        return bert__err(BERT_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected %s", st->path, name, a, b);
    }
    if (!dst && t->numel) return bert__err(BERT_ERR_ARG, "bert_st_read: dst is NULL");
    *out = t;
    *bytes = st->data + t->begin;
    return BERT_OK;
}

BERTDEF int bert_st_read_f32(const bert_st *st, const char *name, float *dst, const int64_t *shape, int ndim) {
    const bert_st_tensor *t = NULL;
    const unsigned char *s = NULL;
    size_t i;
    int rc = bert__st_lookup(st, name, dst, shape, ndim, &t, &s);
    if (rc) return rc;
    switch (t->dtype) {
    case BERT_DT_F32: for (i = 0; i < t->numel; i++) dst[i] = bert__io_bits_f32(bert__io_le32(s + 4 * i)); break;
    case BERT_DT_F16: for (i = 0; i < t->numel; i++) dst[i] = bert__io_f16_to_f32((uint32_t)s[2 * i] | (uint32_t)s[2 * i + 1] << 8); break;
    case BERT_DT_BF16: for (i = 0; i < t->numel; i++) dst[i] = bert__io_bits_f32(((uint32_t)s[2 * i] | (uint32_t)s[2 * i + 1] << 8) << 16); break;
    case BERT_DT_F64:
        for (i = 0; i < t->numel; i++) {
            uint64_t u = bert__io_le64(s + 8 * i);
            double d;
            memcpy(&d, &u, 8);   /* out-of-range -> inf explicitly (the plain cast is UB in ISO C) */
            dst[i] = d > (double)FLT_MAX ? bert__io_bits_f32(0x7F800000u) : d < -(double)FLT_MAX ? bert__io_bits_f32(0xFF800000u) : (float)d;
        }
        break;
    default:
        return bert__err(BERT_ERR_DTYPE, "%s: tensor '%s' has dtype %s, expected F32/F16/BF16/F64", st->path, name, bert__dt_names[t->dtype]);
    }
    return BERT_OK;
}

BERTDEF int bert_st_read_i32(const bert_st *st, const char *name, int32_t *dst, const int64_t *shape, int ndim) {
    const bert_st_tensor *t = NULL;
    const unsigned char *s = NULL;
    size_t i;
    int rc = bert__st_lookup(st, name, dst, shape, ndim, &t, &s);
    if (rc) return rc;
    if (t->dtype == BERT_DT_I32) {
        for (i = 0; i < t->numel; i++) { uint32_t u = bert__io_le32(s + 4 * i); memcpy(&dst[i], &u, 4); }
    } else if (t->dtype == BERT_DT_I64) {
        for (i = 0; i < t->numel; i++) {
            uint64_t u = bert__io_le64(s + 8 * i);
            int64_t v;
            memcpy(&v, &u, 8);
            if (v < INT32_MIN || v > INT32_MAX)
                return bert__err(BERT_ERR_FORMAT, "%s: tensor '%s' element %zu (%lld) does not fit in int32", st->path, name, i, (long long)v);
            dst[i] = (int32_t)v;
        }
    } else {
        return bert__err(BERT_ERR_DTYPE, "%s: tensor '%s' has dtype %s, expected I32/I64", st->path, name, bert__dt_names[t->dtype]);
    }
    return BERT_OK;
}

/* ---- safetensors writer ------------------------------------------------------------------- */
typedef struct { char *p; size_t len, cap; int oom; } bert__io_sb;   /* growable string, sticky OOM */

static void bert__sb_put(bert__io_sb *b, const char *s, size_t n) {
    if (b->oom) return;
    if (n >= ((size_t)-1) / 2 - b->len) { b->oom = 1; return; }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *q;
        while (cap < b->len + n + 1) cap *= 2;
        if (!(q = (char *)bert__malloc(cap))) { b->oom = 1; return; }
        if (b->p) { memcpy(q, b->p, b->len); BERT_FREE(b->p); }
        b->p = q; b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
static void bert__sb_cstr(bert__io_sb *b, const char *s) { bert__sb_put(b, s, strlen(s)); }

/* JSON string literal: escape quote, backslash and control characters; UTF-8 passes through. */
static void bert__sb_json_str(bert__io_sb *b, const char *s) {
    char esc[8];
    bert__sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; bert__sb_put(b, esc, 2); }
        else if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); bert__sb_put(b, esc, 6); }
        else bert__sb_put(b, s, 1);
    }
    bert__sb_put(b, "\"", 1);
}

static int bert__io_utf8_ok(const char *s) {
    size_t n = strlen(s), i = 0, k;
    while (i < n) { if (!(k = bert__io_utf8_len((const unsigned char *)s + i, n - i))) return 0; i += k; }
    return 1;
}

static int bert__io_cmp_entry(const void *a, const void *b) {
    return strcmp((*(const bert_st_entry *const *)a)->name, (*(const bert_st_entry *const *)b)->name);
}

/* Every byte a checkpoint save writes goes through here. Built with -DBERT_TEST_FAULTS, the process
   aborts once bert_test_fault_bytes bytes are written (0 = never): the crash-during-save test; with
   bert_test_fault_enospc set it fails the write there with ENOSPC instead: a full disk. */
#ifdef BERT_TEST_FAULTS
size_t bert_test_fault_bytes, bert_test_fault_written;
int bert_test_fault_enospc;
#endif
static size_t bert__fwrite(const void *p, size_t size, size_t n, FILE *f) {
#ifdef BERT_TEST_FAULTS
    if (bert_test_fault_bytes && bert_test_fault_written + size * n >= bert_test_fault_bytes) {
        size_t part = bert_test_fault_bytes - bert_test_fault_written;
        fwrite(p, 1, part, f);
        fflush(f);
        if (bert_test_fault_enospc) { bert_test_fault_bytes = 0; errno = ENOSPC; return size ? part / size : 0; }
        abort();
    }
    bert_test_fault_written += size * n;
#endif
    return fwrite(p, size, n, f);
}

/* ---- atomic writes: every file the library writes (checkpoints, optimizer states, vocab.txt,
   TFRecords) goes to PATH.tmp, then fsync, rename over PATH, fsync of the directory. PATH.tmp is
   created exclusively (O_CREAT|O_EXCL|O_NOFOLLOW): whatever already sits at that name -- a stale
   temp file of a crashed save, or a symlink someone planted to make the save overwrite another
   file -- is unlinked first (unlinking a symlink never touches its target), so a save never writes
   through a name it did not create. */
BERTDEF int bert_atomic_open(bert_atomic_file *a, const char *path) {
    size_t n = strlen(path);
    int e = 0;
    a->file = NULL;
    if (!(a->tmp = (char *)bert__malloc(n + 5))) return BERT_ERR_OOM;
    memcpy(a->tmp, path, n);
    memcpy(a->tmp + n, ".tmp", 5);
#if defined(__unix__) || defined(__APPLE__)
    for (int tries = 0; tries < 3 && !a->file; tries++) {   // a name re-planted between unlink and open: again
        int fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        e = errno;
        if (fd < 0 && e == EEXIST && remove(a->tmp) == 0) continue;
        if (fd < 0) break;
        if (!(a->file = fdopen(fd, "wb"))) { e = errno; close(fd); remove(a->tmp); break; }
    }
#elif defined(_WIN32)   // the same exclusive create (CREATE_NEW fails on any existing name, a link included)
    for (int tries = 0; tries < 3 && !a->file; tries++) {
        int fd = _open(a->tmp, _O_WRONLY | _O_CREAT | _O_EXCL | _O_BINARY | _O_NOINHERIT, _S_IREAD | _S_IWRITE);
        e = errno;
        if (fd < 0 && e == EEXIST && remove(a->tmp) == 0) continue;
        if (fd < 0) break;
        if (!(a->file = _fdopen(fd, "wb"))) { e = errno; _close(fd); remove(a->tmp); break; }
    }
#else
    a->file = fopen(a->tmp, "wb");
    e = errno;
#endif
    if (a->file) return BERT_OK;
    int rc = bert__err(BERT_ERR_IO, "%s: %s", path, e ? strerror(e) : "cannot create its temp file");
    BERT_FREE(a->tmp);
    a->tmp = NULL;
    return rc;
}

// a rename is durable only once the directory that holds the name is synced too
static void bert__fsync_dir(const char *path) {
#if defined(__unix__) || defined(__APPLE__)
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= sizeof dir) return;
    if (!slash) strcpy(dir, ".");
    else if (n == 0) strcpy(dir, "/");
    else { memcpy(dir, path, n); dir[n] = 0; }
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) { (void)fsync(fd); close(fd); }
#else
    (void)path;
#endif
}

/* Finishes an atomic write: with ok (every write of the caller succeeded) flush, fsync, close and
   rename over path; otherwise, or when any of that fails, the temp file is removed and path keeps
   what it held. BERT_OK or BERT_ERR_IO "PATH: why" (errno of the first failure, e.g. ENOSPC). */
BERTDEF int bert_atomic_close(bert_atomic_file *a, const char *path, int ok) {
    FILE *f = (FILE *)a->file;
    int e = ok ? 0 : errno;
    ok = ok && !ferror(f);
    if (ok && fflush(f) != 0) { ok = 0; e = errno; }
#if defined(__unix__) || defined(__APPLE__)
    if (ok && fsync(fileno(f)) != 0) { ok = 0; e = errno; }
#elif defined(_WIN32)
    if (ok && _commit(_fileno(f)) != 0) { ok = 0; e = errno; }   // FlushFileBuffers
#endif
    if (fclose(f) != 0 && ok) { ok = 0; e = errno; }
    a->file = NULL;
#ifdef _WIN32   // rename() refuses an existing target there; MoveFileEx replaces it in one step, and
                // WRITE_THROUGH returns only once the move is on disk (the directory fsync of POSIX)
    if (ok && !MoveFileExA(a->tmp, path, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
        DWORD w = GetLastError();   // for strerror: the few a save can meet
        ok = 0; e = w == ERROR_ACCESS_DENIED ? EACCES : w == ERROR_PATH_NOT_FOUND ? ENOENT : w == ERROR_DISK_FULL ? ENOSPC : EIO;
    }
#else
    if (ok && rename(a->tmp, path) != 0) { ok = 0; e = errno; }
#endif
    if (ok) bert__fsync_dir(path);
    else remove(a->tmp);
    BERT_FREE(a->tmp);
    a->tmp = NULL;
    return ok ? BERT_OK : bert__err(BERT_ERR_IO, "%s: %s", path, e ? strerror(e) : "write error");
}

/* Writes nelem elements of esize bytes little-endian (byte-swapping through a buffer on BE hosts). */
static int bert__io_fwrite_le(FILE *f, const void *data, size_t nelem, size_t esize) {
    const uint16_t one = 1;
    const unsigned char *s = (const unsigned char *)data;
    unsigned char buf[4096];
    if (!nelem) return 1;                              /* data may be NULL for empty tensors */
    if (esize == 1 || *(const unsigned char *)&one) return bert__fwrite(data, esize, nelem, f) == nelem;
    while (nelem) {
        size_t m = nelem < sizeof buf / esize ? nelem : sizeof buf / esize, k, j;
        for (k = 0; k < m; k++) for (j = 0; j < esize; j++) buf[k * esize + j] = s[k * esize + esize - 1 - j];
        if (bert__fwrite(buf, esize, m, f) != m) return 0;
        s += m * esize; nelem -= m;
    }
    return 1;
}

/* Validates all entries first, builds the header in memory, then writes PATH.tmp and renames it
   over PATH so a crash mid-save never leaves a truncated checkpoint behind. */
BERTDEF int bert_st_save(const char *path, const bert_st_entry *entries, int count, const char *const *meta_kv, int meta_pairs) {
    bert__io_sb h;
    const bert_st_entry **o = NULL;
    char num[64];
    unsigned char len8[8];
    size_t off = 0, numel, i;
    bert_atomic_file a;
    int n, k, rc = BERT_OK, ok;
    memset(&h, 0, sizeof h);
    if (!path || count < 0 || (count && !entries) || meta_pairs < 0 || (meta_pairs && !meta_kv))
        return bert__err(BERT_ERR_ARG, "bert_st_save: bad arguments");
    for (n = 0; n < 2 * meta_pairs; n++)
        if (!meta_kv[n] || !bert__io_utf8_ok(meta_kv[n])) return bert__err(BERT_ERR_ARG, "bert_st_save: metadata string %d is NULL or not UTF-8", n);
    bert__sb_put(&h, "{", 1);
    if (meta_pairs) {
        bert__sb_cstr(&h, "\"__metadata__\":{");
        for (n = 0; n < meta_pairs; n++) {
            if (n) bert__sb_put(&h, ",", 1);
            bert__sb_json_str(&h, meta_kv[2 * n]); bert__sb_put(&h, ":", 1); bert__sb_json_str(&h, meta_kv[2 * n + 1]);
        }
        bert__sb_put(&h, "}", 1);
    }
    for (n = 0; n < count && !rc; n++) {
        const bert_st_entry *en = &entries[n];
        if (!en->name || !bert__io_utf8_ok(en->name) || !strcmp(en->name, "__metadata__") || (int)en->dtype < 0 ||
            en->dtype >= BERT_DT_COUNT || en->ndim < 0 || en->ndim > 8) {
            rc = bert__err(BERT_ERR_ARG, "bert_st_save: entry %d ('%s'): bad name, dtype or ndim", n, en->name ? en->name : "(null)");
            break;
        }
        for (numel = 1, k = 0; k < en->ndim && !rc; k++) {
            if (en->shape[k] < 0 || (uint64_t)en->shape[k] > 9007199254740992ull ||
                (en->shape[k] && numel > ((size_t)-1) / bert__dt_sizes[en->dtype] / (uint64_t)en->shape[k]))
                rc = bert__err(BERT_ERR_ARG, "bert_st_save: entry '%s': bad shape[%d] = %lld", en->name, k, (long long)en->shape[k]);
            else numel *= (size_t)en->shape[k];
        }
        if (rc) break;
        numel *= bert__dt_sizes[en->dtype];                       /* now bytes */
        if (numel && !en->data) { rc = bert__err(BERT_ERR_ARG, "bert_st_save: entry '%s': data is NULL", en->name); break; }
        if (off > ((size_t)-1) - numel) { rc = bert__err(BERT_ERR_ARG, "bert_st_save: total size overflows"); break; }
        if (n || meta_pairs) bert__sb_put(&h, ",", 1);
        bert__sb_json_str(&h, en->name);
        bert__sb_cstr(&h, ":{\"dtype\":\""); bert__sb_cstr(&h, bert__dt_names[en->dtype]); bert__sb_cstr(&h, "\",\"shape\":[");
        for (k = 0; k < en->ndim; k++) { snprintf(num, sizeof num, k ? ",%lld" : "%lld", (long long)en->shape[k]); bert__sb_cstr(&h, num); }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + numel));
        bert__sb_cstr(&h, num);
        off += numel;
    }
    bert__sb_put(&h, "}", 1);
    while (!h.oom && h.len % 8) bert__sb_put(&h, " ", 1);
    if (!rc && h.oom) rc = bert__err(BERT_ERR_OOM, "bert_st_save: out of memory building the header");
    if (!rc && h.len > BERT__IO_MAX_TEXT) rc = bert__err(BERT_ERR_ARG, "bert_st_save: header over 100 MB");
    if (!rc && count > 1) {                                     /* duplicate names */
        if (!(o = (const bert_st_entry **)bert__malloc((size_t)count * sizeof *o))) rc = BERT_ERR_OOM;
        for (n = 0; n < count && !rc; n++) o[n] = &entries[n];
        if (!rc) qsort((void *)o, (size_t)count, sizeof *o, bert__io_cmp_entry);
        for (n = 1; n < count && !rc; n++)
            if (!strcmp(o[n - 1]->name, o[n]->name)) rc = bert__err(BERT_ERR_ARG, "bert_st_save: duplicate tensor name '%s'", o[n]->name);
    }
    if (rc) goto done;
    for (i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    if ((rc = bert_atomic_open(&a, path))) goto done;
    errno = 0;
    ok = bert__fwrite(len8, 1, 8, (FILE *)a.file) == 8 && bert__fwrite(h.p, 1, h.len, (FILE *)a.file) == h.len;
    for (n = 0; n < count && ok; n++) {
        const bert_st_entry *en = &entries[n];
        for (numel = 1, k = 0; k < en->ndim; k++) numel *= (size_t)en->shape[k];
        ok = bert__io_fwrite_le((FILE *)a.file, en->data, numel, bert__dt_sizes[en->dtype]);
    }
    rc = bert_atomic_close(&a, path, ok);
done:
    if (o) BERT_FREE((void *)o);
    if (h.p) BERT_FREE(h.p);
    return rc;
}

BERTDEF int bert_read_file(const char *path, unsigned char **data, size_t *size) {
    return bert__read_file(path, data, size);
}

// ----------------------------------------------------------------------------
// config: bert_config.json / HF config.json

BERTDEF bert_config bert_config_default(void) {
    bert_config c;
    c.vocab_size = 30522;
    c.hidden_size = 768;
    c.num_hidden_layers = 12;
    c.num_attention_heads = 12;
    c.intermediate_size = 3072;
    c.max_position_embeddings = 512;
    c.type_vocab_size = 2;
    c.hidden_act = BERT_GELU_ERF;
    c.hidden_dropout_prob = 0.1f;
    c.attention_probs_dropout_prob = 0.1f;
    c.initializer_range = 0.02f;
    c.layer_norm_eps = 1e-12f;
    c.use_relative_position = 0;
    c.max_relative_position = 64;
    c.relative_position_flavour = BERT_RELPOS_FIXED;
    return c;
}

// an integer key: required keys must be present; all must be whole numbers in int range
static int bert__config_int(const bert_json *root, const char *key, int required, int *dst, const char *src) {
    const bert_json *j = bert_json_get(root, key);
    if (!j) return required ? bert__err(BERT_ERR_MISSING, "%s: bad config: missing \"%s\"", src, key) : BERT_OK;
    if (j->type != BERT_JSON_NUMBER || j->number != floor(j->number) || fabs(j->number) > 2147483647.0)
        return bert__err(BERT_ERR_FORMAT, "%s: bad config: \"%s\" must be an integer", src, key);
    *dst = (int)j->number;
    return BERT_OK;
}

static int bert__config_float(const bert_json *root, const char *key, float *dst, const char *src) {
    const bert_json *j = bert_json_get(root, key);
    if (!j) return BERT_OK;
    if (j->type != BERT_JSON_NUMBER || !(fabs(j->number) <= 3.4e38))
        return bert__err(BERT_ERR_FORMAT, "%s: bad config: \"%s\" must be a number within float range", src, key);
    *dst = (float)j->number;
    return BERT_OK;
}

static int bert__act_parse(const char *s, bert_act *act) {
    static const char *const tanh_names[] = { "gelu_tanh", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_google" };
    if (strcmp(s, "gelu") == 0 || strcmp(s, "gelu_erf") == 0) { *act = BERT_GELU_ERF; return 1; }
    for (size_t i = 0; i < sizeof tanh_names / sizeof tanh_names[0]; i++)
        if (strcmp(s, tanh_names[i]) == 0) { *act = BERT_GELU_TANH; return 1; }
    return 0;
}

// NEZHA's keys: Huawei's bert_config "use_relative_position", MindSpore's "use_relative_positions",
// transformers' "model_type": "nezha" (its NezhaConfig has no switch: always relative); the flavour is
// ours ("huawei"/"fixed" or "mindspore"/"learned"), written by the converters, never guessed
static int bert__config_relative(const bert_json *root, bert_config *c, const char *src) {
    static const char *const keys[] = { "use_relative_position", "use_relative_positions" };
    for (int i = 0; i < 2; i++) {
        const bert_json *j = bert_json_get(root, keys[i]);
        if (!j) continue;
        if (j->type != BERT_JSON_TRUE && j->type != BERT_JSON_FALSE)
            return bert__err(BERT_ERR_FORMAT, "%s: bad config: \"%s\" must be true or false", src, keys[i]);
        c->use_relative_position |= j->type == BERT_JSON_TRUE;
    }
    const bert_json *mt = bert_json_get(root, "model_type");
    if (mt && mt->type == BERT_JSON_STRING && strcmp(mt->string, "nezha") == 0) c->use_relative_position = 1;
    const bert_json *fl = bert_json_get(root, "relative_position_flavour");
    if (fl) {
        const char *f = fl->type == BERT_JSON_STRING ? fl->string : "";
        if (!strcmp(f, "huawei") || !strcmp(f, "fixed")) c->relative_position_flavour = BERT_RELPOS_FIXED;
        else if (!strcmp(f, "mindspore") || !strcmp(f, "learned")) c->relative_position_flavour = BERT_RELPOS_LEARNED;
        else return bert__err(BERT_ERR_FORMAT, "%s: bad config: \"relative_position_flavour\" must be \"huawei\" or \"mindspore\"", src);
    }
    return bert__config_int(root, "max_relative_position", 0, &c->max_relative_position, src);
}

BERTDEF int bert_config_parse(bert_config *cfg, const char *json, size_t len, const char *source) {
    const char *src = source ? source : "config";
    bert_json *root = NULL;
    bert_config c = bert_config_default();
    if (bert_json_parse(&root, json, len) != BERT_OK) {
        char why[sizeof bert__error_message];
        snprintf(why, sizeof why, "%s", bert_last_error());
        return bert__err(BERT_ERR_FORMAT, "%s: bad config: %s", src, why);
    }
    int rc = root->type == BERT_JSON_OBJECT ? BERT_OK : bert__err(BERT_ERR_FORMAT, "%s: bad config: not a JSON object", src);
    if (!rc) rc = bert__config_int(root, "vocab_size", 1, &c.vocab_size, src);
    if (!rc) rc = bert__config_int(root, "hidden_size", 1, &c.hidden_size, src);
    if (!rc) rc = bert__config_int(root, "num_hidden_layers", 1, &c.num_hidden_layers, src);
    if (!rc) rc = bert__config_int(root, "num_attention_heads", 1, &c.num_attention_heads, src);
    if (!rc) rc = bert__config_int(root, "intermediate_size", 1, &c.intermediate_size, src);
    if (!rc) rc = bert__config_int(root, "max_position_embeddings", 0, &c.max_position_embeddings, src);
    if (!rc) rc = bert__config_int(root, "type_vocab_size", 0, &c.type_vocab_size, src);
    if (!rc) rc = bert__config_float(root, "hidden_dropout_prob", &c.hidden_dropout_prob, src);
    if (!rc) rc = bert__config_float(root, "attention_probs_dropout_prob", &c.attention_probs_dropout_prob, src);
    if (!rc) rc = bert__config_float(root, "initializer_range", &c.initializer_range, src);
    if (!rc) rc = bert__config_float(root, "layer_norm_eps", &c.layer_norm_eps, src);
    if (!rc) rc = bert__config_relative(root, &c, src);
    if (!rc) {
        const bert_json *act = bert_json_get(root, "hidden_act");
        if (act && (act->type != BERT_JSON_STRING || !bert__act_parse(act->string, &c.hidden_act)))
            rc = bert__err(BERT_ERR_ARG, "%s: bad config: unsupported hidden_act (use \"gelu\" or \"gelu_tanh\")", src);
    }
    bert_json_free(root);
    if (!rc) rc = bert__config_check(&c, src);
    if (!rc) *cfg = c;
    return rc;
}

BERTDEF int bert_config_load(bert_config *cfg, const char *path) {
    unsigned char *text = NULL;
    size_t size = 0;
    int rc = bert__read_file(path, &text, &size);
    if (rc) return rc;
    rc = bert_config_parse(cfg, (const char *)text, size, path);
    BERT_FREE(text);
    return rc;
}

// the shortest decimal that reads back as f (what was typed, for a value a float holds: 0.02, not
// 0.0199999996)
static void bert__float_shortest(char *buf, size_t cap, float f) {
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, cap, "%.*g", digits, (double)f);
        if (strtof(buf, NULL) == f) return;
    }
}

BERTDEF int bert_config_to_json(const bert_config *c, char *buf, size_t cap) {
    char hd[32], ad[32], ir[32], eps[32];
    bert__float_shortest(hd, sizeof hd, c->hidden_dropout_prob);
    bert__float_shortest(ad, sizeof ad, c->attention_probs_dropout_prob);
    bert__float_shortest(ir, sizeof ir, c->initializer_range);
    bert__float_shortest(eps, sizeof eps, c->layer_norm_eps);
    int n = snprintf(buf, cap,
        "{\"vocab_size\": %d, \"hidden_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
        "\"intermediate_size\": %d, \"max_position_embeddings\": %d, \"type_vocab_size\": %d, "
        "\"hidden_act\": \"%s\", \"hidden_dropout_prob\": %s, \"attention_probs_dropout_prob\": %s, "
        "\"initializer_range\": %s, \"layer_norm_eps\": %s}",
        c->vocab_size, c->hidden_size, c->num_hidden_layers, c->num_attention_heads, c->intermediate_size,
        c->max_position_embeddings, c->type_vocab_size, c->hidden_act == BERT_GELU_TANH ? "gelu_new" : "gelu",
        hd, ad, ir, eps);
    if (n < 0 || (size_t)n >= cap) return -1;
    if (c->use_relative_position) {   // NEZHA's keys only where they mean something: BERT files stay as they were
        int r = snprintf(buf + n - 1, cap - (size_t)n + 1,
                         ", \"use_relative_position\": true, \"max_relative_position\": %d, \"relative_position_flavour\": \"%s\"}",
                         c->max_relative_position, c->relative_position_flavour == BERT_RELPOS_LEARNED ? "mindspore" : "huawei");
        n = r < 0 ? -1 : n - 1 + r;
    }
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

// ----------------------------------------------------------------------------
// checkpoints

static void bert__entry(bert_st_entry *e, const char *name, const bert_tensor *t, const float *data) {
    memset(e, 0, sizeof *e);
    e->name = name;
    e->dtype = BERT_DT_F32;
    e->ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) e->shape[d] = t->shape[d];
    e->data = data;
}

// every tensor of m, or all but the pretraining heads (cls.*: the base tensors after the pooler)
// when skip_heads
static int bert__model_save(const bert_model *m, const char *path, int skip_heads) {
    char config[1024];
    if (bert_config_to_json(&m->config, config, sizeof config) < 0) return bert__err(BERT_ERR_ARG, "config too long");
    bert_st_entry *e = (bert_st_entry *)bert__calloc((size_t)m->num_tensors, sizeof *e);
    const float *params = m->params;   // on a device: a host copy
    float *copy = bert__mem_of(m->k)->device ? (float *)bert__malloc(m->num_params * sizeof(float)) : NULL;
    if (!e || (bert__mem_of(m->k)->device && !copy)) { BERT_FREE(e); return BERT_ERR_OOM; }
    if (copy) { bert_copy_to_host(m->k, copy, m->params, m->num_params * sizeof(float)); params = copy; }
    int n = 0, first_head = m->num_base_tensors - BERT_PH_COUNT + BERT_PH_mlm_w;
    for (int i = 0; i < m->num_tensors; i++)
        if (!skip_heads || i < first_head || i >= m->num_base_tensors)
            bert__entry(&e[n++], m->names[i], &m->tensors[i], params + (m->tensors[i].data - m->params));
    // "format": "pt" is what transformers requires of a safetensors file's metadata (pt, tf, flax or
    // mlx) before it loads one; "producer" says who wrote it
    const char *meta[] = { "format", "pt", "producer", "bert.h", "format_version", "1", "config", config };
    int rc = bert_st_save(path, e, n, meta, 4);
    BERT_FREE(copy);
    BERT_FREE(e);
    return rc;
}

BERTDEF int bert_model_save(const bert_model *m, const char *path) { return bert__model_save(m, path, 0); }
BERTDEF int bert_model_save_finetuned(const bert_model *m, const char *path) { return bert__model_save(m, path, 1); }

// The stored name of tensor `name` in st: ours, then the spellings other BERT files use: the
// encoder's prefix "bert." or "nezha." (either for either), none (a BertModel file), and TF's
// LayerNorm gamma/beta and decoder bias names.
static const char *bert__st_alias(const bert_st *st, const char *name, char *buf, size_t cap) {
    if (bert_st_find(st, name)) return name;
    static const char *const from[] = { "LayerNorm.weight", "LayerNorm.bias", "cls.predictions.bias" };
    static const char *const to[] = { "LayerNorm.gamma", "LayerNorm.beta", "cls.predictions.decoder.bias" };
    static const char *const prefixes[] = { "bert.", "nezha." };
    const char *base = !strncmp(name, "bert.", 5) ? name + 5 : !strncmp(name, "nezha.", 6) ? name + 6 : NULL;
    char spelled[160];
    for (int pass = 0; pass < 4; pass++) {   // 0: as named, 1-2: each prefix, 3: none
        if (pass == 0) snprintf(spelled, sizeof spelled, "%s", name);
        else if (!base) break;
        else snprintf(spelled, sizeof spelled, "%s%s", pass < 3 ? prefixes[pass - 1] : "", base);
        if (pass && bert_st_find(st, spelled)) { snprintf(buf, cap, "%s", spelled); return buf; }
        for (int i = 0; i < 3; i++) {
            const char *hit = strstr(spelled, from[i]);
            if (!hit) continue;
            snprintf(buf, cap, "%.*s%s%s", (int)(hit - spelled), spelled, to[i], hit + strlen(from[i]));
            if (bert_st_find(st, buf)) return buf;
        }
    }
    return name;   // not found: bert_st_read_f32 reports it by our name
}

// All or nothing: tensors are read into a scratch buffer, so a bad file leaves the model as it was.
// With heads_optional, absent head tensors (added ones, and the pretraining heads after the pooler)
// keep their current values.
/* heads_optional: any tensor after the pooler (pretraining and task heads) may be absent (counted in
   *missing); else only the pretraining heads, and only all of them (a bert_model_save_finetuned file) */
static int bert__load_tensors(bert_model *m, const bert_st *st, int heads_optional, int *missing) {
    float *scratch = (float *)bert__calloc(m->num_params, sizeof(float));
    int rc = scratch ? BERT_OK : BERT_ERR_OOM, first_head = m->num_base_tensors - BERT_PH_COUNT + BERT_PH_mlm_w;
    int no_pretraining_heads = 1;
    for (int i = first_head; i < m->num_base_tensors; i++) {
        char buf[160];
        no_pretraining_heads &= !bert_st_find(st, bert__st_alias(st, m->names[i], buf, sizeof buf));
    }
    if (missing) *missing = 0;
    if (scratch) bert_copy_to_host(m->k, scratch, m->params, m->num_params * sizeof(float));
    for (int i = 0; !rc && i < m->num_tensors; i++) {
        const bert_tensor *t = &m->tensors[i];
        int64_t shape[2] = { t->shape[0], t->shape[1] };
        char buf[160];
        const char *name = bert__st_alias(st, m->names[i], buf, sizeof buf);
        int optional = i >= first_head && (heads_optional || (no_pretraining_heads && i < m->num_base_tensors));
        if (optional && !bert_st_find(st, name)) { if (missing) (*missing)++; continue; }
        float *dst = scratch + (t->data - m->params);
        rc = bert_st_read_f32(st, name, dst, shape, t->ndim);
        size_t bad = 0;
        for (size_t j = 0; !rc && j < t->numel; j++) bad += !isfinite(dst[j]);
        if (bad) rc = bert__err(BERT_ERR_FORMAT, "tensor '%s': %zu NaN/Inf values of %zu", name, bad, t->numel);
    }
    if (!rc) bert_copy_from_host(m->k, m->params, scratch, m->num_params * sizeof(float));
    BERT_FREE(scratch);
    return rc;
}

BERTDEF int bert_model_load_weights(bert_model *m, const char *path) {
    bert_model_dequantize(m);   // int8 copies of the old weights would be stale
    bert_st st;
    int rc = bert_st_open(&st, path);
    if (rc) return rc;
    rc = bert__load_tensors(m, &st, 0, NULL);
    bert_st_close(&st);
    return rc;
}

BERTDEF int bert_model_load_encoder(bert_model *m, const char *path, int *missing) {
    bert_st st;
    int rc = bert_st_open(&st, path);
    if (rc) return rc;
    rc = bert__load_tensors(m, &st, 1, missing);
    bert_st_close(&st);
    return rc;
}

static int bert__config_fits_file(const bert_config *cfg, const bert_st *st, const char *path) {
    size_t need = bert__config_num_params(cfg, 0);   // the encoder's (heads may be absent)
    if (st->data_size / 2 >= need) return BERT_OK;   // 2 bytes a value at the least (F16/BF16)
    return bert__err(BERT_ERR_FORMAT, "%s: %zu bytes of tensor data, too few for the %zu encoder parameters its config describes",
                     path, st->data_size, need);
}

// the config of a checkpoint: its __metadata__, else the caller's, else a json file beside it
static int bert__checkpoint_config_any(bert_config *cfg, const bert_st *st, const char *path, const bert_config *given) {
    const char *text = bert_st_meta(st, "config");
    if (text) return bert_config_parse(cfg, text, strlen(text), path);
    if (given) { *cfg = *given; return bert__config_check(cfg, path); }
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path + 1) : 0;
    static const char *const names[] = { "bert_config.json", "config.json" };
    for (int i = 0; i < 2; i++) {
        char p[4096];
        if (dir + strlen(names[i]) + 1 > sizeof p) break;
        memcpy(p, path, dir);
        strcpy(p + dir, names[i]);
        FILE *f = fopen(p, "rb");
        if (!f) continue;
        fclose(f);
        return bert_config_load(cfg, p);
    }
    return bert__err(BERT_ERR_MISSING, "%s: no config in __metadata__ and no bert_config.json/config.json beside it", path);
}

// config for a checkpoint: its __metadata__, else the caller's, else a json file beside it; checked
// against the file's data size, so a small file cannot make the caller allocate a huge model
static int bert__checkpoint_config(bert_config *cfg, const bert_st *st, const char *path, const bert_config *given) {
    int rc = bert__checkpoint_config_any(cfg, st, path, given);
    return rc ? rc : bert__config_fits_file(cfg, st, path);
}

BERTDEF int bert_checkpoint_config(bert_config *cfg, const char *path, const bert_config *given) {
    bert_st st;
    int rc = bert_st_open(&st, path);
    if (!rc) rc = bert__checkpoint_config(cfg, &st, path, given);
    bert_st_close(&st);
    return rc;
}

BERTDEF bert_model *bert_model_load(const char *path, const bert_config *cfg_or_null) {
    bert_st st;
    if (bert_st_open(&st, path)) return NULL;
    bert_config cfg;
    bert_model *m = NULL;
    if (bert__checkpoint_config(&cfg, &st, path, cfg_or_null) == BERT_OK && (m = bert_model_create(&cfg, 0)) != NULL &&
        bert__load_tensors(m, &st, 0, NULL) != BERT_OK) {
        bert_model_free(m);
        m = NULL;
    }
    bert_st_close(&st);
    return m;
}

// training state: moments under "m.<name>" / "v.<name>", step and hyperparameters in metadata
BERTDEF int bert_optim_save(const bert_optim *o, const bert_model *m, const char *path,
                            const char *const *extra_kv, int extra_pairs) {
    int moments = o->v ? 2 : 1, n = m->num_tensors * moments, rc = BERT_ERR_OOM;
    bert_st_entry *e = (bert_st_entry *)bert__calloc((size_t)n, sizeof *e);
    char *names = (char *)bert__calloc((size_t)n, 160);
    const char **meta = (const char **)bert__calloc(8 + 2 * (size_t)(extra_pairs > 0 ? extra_pairs : 0), sizeof(char *));
    int device = bert__mem_of(o->k)->device;   // then the moments are written from a host copy
    float *host = device ? (float *)bert__malloc((size_t)moments * o->n * sizeof(float)) : NULL;
    const float *hm = o->m, *hv = o->v;
    if (host) {
        bert_copy_to_host(o->k, host, o->m, o->n * sizeof(float));
        if (o->v) bert_copy_to_host(o->k, host + o->n, o->v, o->n * sizeof(float));
        hm = host;
        hv = o->v ? host + o->n : NULL;
    }
    if (e && names && meta && (!device || host)) {
        for (int i = 0; i < n; i++) {
            int t = i % m->num_tensors;
            const float *buf = i < m->num_tensors ? hm : hv;
            snprintf(names + (size_t)i * 160, 160, "%s.%s", i < m->num_tensors ? "m" : "v", m->names[t]);
            bert__entry(&e[i], names + (size_t)i * 160, &m->tensors[t], buf + (m->tensors[t].data - m->params));
        }
        char step[32], hyper[512];
        snprintf(step, sizeof step, "%llu", (unsigned long long)o->step);
        snprintf(hyper, sizeof hyper,
                 "{\"lr\": %.9g, \"end_lr\": %.9g, \"poly_power\": %.9g, \"warmup_steps\": %d, \"total_steps\": %d, "
                 "\"beta1\": %.9g, \"beta2\": %.9g, \"eps\": %.9g, \"weight_decay\": %.9g, \"momentum\": %.9g, "
                 "\"clip_norm\": %.9g, \"bias_correction\": %d, \"lamb_exclude_ln_bias\": %d}",
                 (double)o->lr, (double)o->end_lr, (double)o->poly_power, o->warmup_steps, o->total_steps,
                 (double)o->beta1, (double)o->beta2, (double)o->eps, (double)o->weight_decay, (double)o->momentum,
                 (double)o->clip_norm, o->bias_correction, o->lamb_exclude_ln_bias);
        const char *fixed[] = { "format", "bert.h-optim", "optimizer", bert_optim_name(o->type), "step", step, "hparams", hyper };
        memcpy(meta, fixed, sizeof fixed);
        for (int i = 0; i < 2 * extra_pairs; i++) meta[8 + i] = extra_kv[i];
        rc = bert_st_save(path, e, n, meta, 4 + (extra_pairs > 0 ? extra_pairs : 0));
    }
    BERT_FREE(host);
    BERT_FREE(meta);
    BERT_FREE(names);
    BERT_FREE(e);
    return rc;
}

BERTDEF int bert_optim_load(bert_optim *o, const bert_model *m, const char *path) {
    bert_st st;
    int rc = bert_st_open(&st, path);
    if (rc) return rc;
    const char *type = bert_st_meta(&st, "optimizer"), *step = bert_st_meta(&st, "step");
    char *end = NULL;
    errno = 0;
    unsigned long long s = step ? strtoull(step, &end, 10) : 0;
    int step_ok = step && *step >= '0' && *step <= '9' && !*end && errno != ERANGE && s < (1ull << 53);   // t + 1 stays exact
    float *scratch = (float *)bert__calloc(2 * (size_t)o->n + 1, sizeof(float));   // all or nothing, as for weights
    if (!scratch) { bert_st_close(&st); return BERT_ERR_OOM; }
    if (!type || strcmp(type, bert_optim_name(o->type)) != 0)
        rc = bert__err(BERT_ERR_FORMAT, "%s: optimizer is '%s', expected '%s'", path, type ? type : "(none)", bert_optim_name(o->type));
    else if (!step_ok)
        rc = bert__err(BERT_ERR_FORMAT, "%s: missing or bad \"step\" in metadata", path);
    else if (o->n != m->num_params)
        rc = bert__err(BERT_ERR_ARG, "%s: call bert_optim_init with this model first", path);
    for (int i = 0; !rc && i < m->num_tensors * (o->v ? 2 : 1); i++) {
        int t = i % m->num_tensors;
        char name[160];
        snprintf(name, sizeof name, "%s.%s", i < m->num_tensors ? "m" : "v", m->names[t]);
        int64_t shape[2] = { m->tensors[t].shape[0], m->tensors[t].shape[1] };
        float *buf = scratch + (i < m->num_tensors ? 0 : o->n) + (m->tensors[t].data - m->params);
        rc = bert_st_read_f32(&st, name, buf, shape, m->tensors[t].ndim);
        size_t bad = 0;   // a NaN moment poisons every later step; a second moment is never negative
        for (size_t j = 0; !rc && j < m->tensors[t].numel; j++) bad += !isfinite(buf[j]) || (i >= m->num_tensors && buf[j] < 0);
        if (bad) rc = bert__err(BERT_ERR_FORMAT, "%s: tensor '%s': %zu values of %zu are NaN/Inf%s", path, name, bad,
                                m->tensors[t].numel, i >= m->num_tensors ? " or negative" : "");
    }
    if (!rc) {
        bert_copy_from_host(o->k, o->m, scratch, o->n * sizeof(float));
        if (o->v) bert_copy_from_host(o->k, o->v, scratch + o->n, o->n * sizeof(float));
        o->step = s;
    }
    BERT_FREE(scratch);
    bert_st_close(&st);
    return rc;
}

// ----------------------------------------------------------------------------
// WordPiece tokenizer: tokenization.py's BasicTokenizer and WordpieceTokenizer over tables that
// tools/gen_unicode_tables.py generates from Python's unicodedata (what each class means is
// documented there). A text is decoded, cleaned and cut into whitespace tokens in one pass; each
// token is normalised (uncased: lower, NFD, marks dropped), split on punctuation, and each word
// goes either to WordPiece or to the basic tokenizer's output string.

typedef struct { uint32_t first, value; uint16_t count; uint8_t key_step; int8_t value_step; } bert__uc_run;

// BEGIN GENERATED UNICODE TABLES: /usr/bin/python3 tools/gen_unicode_tables.py --write bert.h
// from Python's unicodedata, Unicode 14.0.0. Do not edit by hand.
#define BERT__UNICODE_VERSION "14.0.0"
enum { BERT__UC_CTRL = 1, BERT__UC_WS, BERT__UC_PUNCT, BERT__UC_GONE, BERT__UC_MN0 };
enum { BERT__UC_CASED = 1, BERT__UC_IGNORABLE };
// character class runs: (first code point << 3) | class, sorted; a run lasts until the next
static const uint32_t bert__uc_class[2177] = {
    0x1,0x4a,0x59,0x6a,0x71,0x102,0x10b,0x180,0x1d3,0x208,0x2db,0x308,
    0x3db,0x3f9,0x502,0x50b,0x510,0x53b,0x540,0x55b,0x560,0x569,0x570,0x5b3,
    0x5c0,0x5db,0x5e0,0x5fb,0x600,0x1804,0x1a7d,0x1a84,0x1b80,0x1bc1,0x1bd0,0x1bf3,
    0x1bf8,0x1c01,0x1c20,0x1c3b,0x1c40,0x1c59,0x1c60,0x1c69,0x1c70,0x1d11,0x1d18,0x241c,
    0x2440,0x2981,0x2988,0x2ab9,0x2ac8,0x2ad3,0x2b00,0x2c4b,0x2c59,0x2c68,0x2c81,0x2c8c,
    0x2df3,0x2dfc,0x2e03,0x2e0c,0x2e1b,0x2e24,0x2e33,0x2e3c,0x2e41,0x2e80,0x2f59,0x2f78,
    0x2f9b,0x2fa9,0x3030,0x304b,0x3058,0x3063,0x3070,0x3084,0x30db,0x30e1,0x30eb,0x3100,
    0x325c,0x3300,0x3353,0x3370,0x3384,0x3388,0x36a3,0x36a8,0x36b4,0x36e9,0x36f0,0x36fc,
    0x3728,0x373c,0x3748,0x3754,0x3770,0x3803,0x3871,0x3880,0x388c,0x3890,0x3984,0x3a59,
    0x3a68,0x3d35,0x3d88,0x3d91,0x3e00,0x3f5c,0x3fa0,0x3fbb,0x3fd0,0x3fd9,0x3fec,0x3ff0,
    0x40b4,0x40d0,0x40dc,0x4120,0x412c,0x4140,0x414c,0x4171,0x4183,0x41f9,0x4200,0x42cc,
    0x42e1,0x42f3,0x42f9,0x4300,0x4359,0x4380,0x4479,0x44c4,0x4500,0x4654,0x4711,0x471c,
    0x4805,0x4818,0x49d5,0x49d8,0x49e4,0x49e8,0x4a0d,0x4a48,0x4a6c,0x4a70,0x4a8c,0x4aad,
    0x4ac0,0x4b15,0x4b23,0x4b30,0x4b83,0x4b88,0x4c0d,0x4c10,0x4c21,0x4c28,0x4c69,0x4c78,
    0x4c89,0x4c98,0x4d49,0x4d50,0x4d89,0x4d90,0x4d99,0x4db0,0x4dd1,0x4de4,0x4de8,0x4e0d,
    0x4e29,0x4e38,0x4e49,0x4e58,0x4e6c,0x4e70,0x4e79,0x4eb8,0x4ec1,0x4ee0,0x4ef1,0x4ef8,
    0x4f15,0x4f21,0x4f30,0x4feb,0x4ff4,0x4ff9,0x500d,0x5018,0x5021,0x5028,0x5059,0x5078,
    0x5089,0x5098,0x5149,0x5150,0x5189,0x5190,0x51a1,0x51a8,0x51b9,0x51c0,0x51d1,0x51e4,
    0x51e9,0x51f0,0x520d,0x5219,0x523d,0x5249,0x525d,0x526c,0x5271,0x528d,0x5291,0x52c8,
    0x52e9,0x52f0,0x52f9,0x5330,0x5385,0x5390,0x53ad,0x53b3,0x53b9,0x540d,0x5418,0x5421,
    0x5428,0x5471,0x5478,0x5491,0x5498,0x5549,0x5550,0x5589,0x5590,0x55a1,0x55a8,0x55d1,
    0x55e4,0x55e8,0x560d,0x5631,0x563d,0x5648,0x5651,0x5658,0x566c,0x5671,0x5680,0x5689,
    0x5700,0x5715,0x5721,0x5730,0x5783,0x5788,0x5791,0x57c8,0x57d5,0x5801,0x580d,0x5810,
    0x5821,0x5828,0x5869,0x5878,0x5889,0x5898,0x5949,0x5950,0x5989,0x5990,0x59a1,0x59a8,
    0x59d1,0x59e4,0x59e8,0x59fd,0x5a00,0x5a0d,0x5a29,0x5a38,0x5a49,0x5a58,0x5a6c,0x5a71,
    0x5aad,0x5ab8,0x5ac1,0x5ae0,0x5af1,0x5af8,0x5b15,0x5b21,0x5b30,0x5bc1,0x5c15,0x5c18,
    0x5c21,0x5c28,0x5c59,0x5c70,0x5c89,0x5c90,0x5cb1,0x5cc8,0x5cd9,0x5ce0,0x5ce9,0x5cf0,
    0x5d01,0x5d18,0x5d29,0x5d40,0x5d59,0x5d70,0x5dd1,0x5df0,0x5e05,0x5e08,0x5e19,0x5e30,
    0x5e49,0x5e50,0x5e6c,0x5e71,0x5e80,0x5e89,0x5eb8,0x5ec1,0x5f30,0x5fd9,0x6005,0x6008,
    0x6025,0x6028,0x6069,0x6070,0x6089,0x6090,0x6149,0x6150,0x61d1,0x61e4,0x61e8,0x61f5,
    0x6208,0x6229,0x6235,0x6249,0x6255,0x626c,0x6271,0x62ac,0x62b9,0x62c0,0x62d9,0x62e8,
    0x62f1,0x6300,0x6315,0x6321,0x6330,0x6381,0x63bb,0x63c0,0x640d,0x6410,0x6423,0x6428,
    0x6469,0x6470,0x6489,0x6490,0x6549,0x6550,0x65a1,0x65a8,0x65d1,0x65e4,0x65e8,0x65fd,
    0x6600,0x6629,0x6635,0x6638,0x6649,0x6650,0x6665,0x666c,0x6671,0x66a8,0x66b9,0x66e8,
    0x66f9,0x6700,0x6715,0x6721,0x6730,0x6781,0x6788,0x6799,0x6805,0x6810,0x6869,0x6870,
    0x6889,0x6890,0x69dc,0x69e8,0x6a0d,0x6a29,0x6a30,0x6a49,0x6a50,0x6a6c,0x6a70,0x6a81,
    0x6aa0,0x6b15,0x6b21,0x6b30,0x6c01,0x6c0d,0x6c10,0x6c21,0x6c28,0x6cb9,0x6cd0,0x6d91,
    0x6d98,0x6de1,0x6de8,0x6df1,0x6e00,0x6e39,0x6e54,0x6e59,0x6e78,0x6e95,0x6ea9,0x6eb5,
    0x6eb9,0x6ec0,0x6f01,0x6f30,0x6f81,0x6f90,0x6fa3,0x6fa9,0x7008,0x718d,0x7190,0x71a5,
    0x71c4,0x71d9,0x71f8,0x723d,0x7244,0x7265,0x727b,0x7280,0x72d3,0x72e1,0x7408,0x7419,
    0x7420,0x7429,0x7430,0x7459,0x7460,0x7521,0x7528,0x7531,0x7538,0x758d,0x7590,0x75a5,
    0x75c4,0x75dd,0x75e8,0x75f1,0x7600,0x7629,0x7630,0x7639,0x7644,0x7665,0x7671,0x7680,
    0x76d1,0x76e0,0x7701,0x7800,0x7823,0x7898,0x78a3,0x78a8,0x78c4,0x78d0,0x79ac,0x79b0,
    0x79bc,0x79c0,0x79cc,0x79d3,0x79f0,0x7a41,0x7a48,0x7b69,0x7b8c,0x7bb5,0x7bd4,0x7bf5,
    0x7bf8,0x7c04,0x7c2b,0x7c34,0x7c40,0x7c6d,0x7cc1,0x7ccd,0x7de9,0x7df0,0x7e34,0x7e38,
    0x7e69,0x7e70,0x7e83,0x7ea8,0x7ecb,0x7ed9,0x8000,0x816d,0x8188,0x8195,0x81bc,0x81c0,
    0x81cc,0x81d8,0x81ed,0x81f8,0x8253,0x8280,0x82c5,0x82d0,0x82f5,0x8308,0x838d,0x83a8,
    0x8415,0x8418,0x842d,0x8438,0x846c,0x8470,0x84ed,0x84f0,0x8631,0x8638,0x8641,0x8668,
    0x8671,0x8680,0x87db,0x87e0,0x9249,0x9250,0x9271,0x9280,0x92b9,0x92c0,0x92c9,0x92d0,
    0x92f1,0x9300,0x9449,0x9450,0x9471,0x9480,0x9589,0x9590,0x95b1,0x95c0,0x95f9,0x9600,
    0x9609,0x9610,0x9631,0x9640,0x96b9,0x96c0,0x9889,0x9890,0x98b1,0x98c0,0x9ad9,0x9aec,
    0x9b03,0x9b48,0x9be9,0x9c00,0x9cd1,0x9d00,0x9fb1,0x9fc0,0x9ff1,0xa003,0xa008,0xb373,
    0xb378,0xb402,0xb408,0xb4db,0xb4e9,0xb500,0xb75b,0xb770,0xb7c9,0xb800,0xb895,0xb8a4,
    0xb8a8,0xb8b1,0xb8f8,0xb995,0xb9a0,0xb9ab,0xb9b9,0xba00,0xba95,0xbaa1,0xbb00,0xbb69,
    0xbb70,0xbb89,0xbb95,0xbba1,0xbc00,0xbda5,0xbdb0,0xbdbd,0xbdf0,0xbe35,0xbe38,0xbe4d,
    0xbe94,0xbe9d,0xbea3,0xbeb8,0xbec3,0xbed8,0xbeec,0xbef1,0xbf00,0xbf51,0xbf80,0xbfd1,
    0xc003,0xc05d,0xc071,0xc07d,0xc080,0xc0d1,0xc100,0xc3c9,0xc400,0xc42d,0xc438,0xc54c,
    0xc550,0xc559,0xc580,0xc7b1,0xc800,0xc8f9,0xc905,0xc918,0xc93d,0xc948,0xc961,0xc980,
    0xc995,0xc998,0xc9cc,0xc9e1,0xca00,0xca09,0xca23,0xca30,0xcb71,0xcb80,0xcba9,0xcc00,
    0xcd61,0xcd80,0xce51,0xce80,0xced9,0xcef0,0xd0bc,0xd0c8,0xd0dd,0xd0e1,0xd0f3,0xd100,
    0xd2b5,0xd2b8,0xd2c5,0xd2f9,0xd304,0xd308,0xd315,0xd318,0xd32d,0xd368,0xd39d,0xd3ac,
    0xd3e9,0xd3fc,0xd400,0xd451,0xd480,0xd4d1,0xd503,0xd538,0xd543,0xd571,0xd584,0xd5f0,
    0xd5fc,0xd679,0xd805,0xd820,0xd9a4,0xd9a8,0xd9b5,0xd9d8,0xd9e5,0xd9e8,0xda15,0xda18,
    0xda69,0xda80,0xdad3,0xdb08,0xdb5c,0xdba0,0xdbeb,0xdbf9,0xdc05,0xdc10,0xdd15,0xdd30,
    0xdd45,0xdd50,0xdd5c,0xdd65,0xdd70,0xdf34,0xdf38,0xdf45,0xdf50,0xdf6d,0xdf70,0xdf7d,
    0xdf90,0xdfa1,0xdfe3,0xe000,0xe165,0xe1a0,0xe1b5,0xe1bc,0xe1c1,0xe1db,0xe200,0xe251,
    0xe268,0xe3f3,0xe400,0xe449,0xe480,0xe5d9,0xe5e8,0xe603,0xe641,0xe684,0xe69b,0xe6a4,
    0xe708,0xe714,0xe748,0xe76c,0xe770,0xe7a4,0xe7a8,0xe7c4,0xe7d0,0xe7d9,0xe800,0xee04,
    0xf000,0xf8b1,0xf8c0,0xf8f1,0xf900,0xfa31,0xfa40,0xfa71,0xfa80,0xfac1,0xfac8,0xfad1,
    0xfad8,0xfae1,0xfae8,0xfaf1,0xfaf8,0xfbf1,0xfc00,0xfda9,0xfdb0,0xfe29,0xfe30,0xfea1,
    0xfeb0,0xfee1,0xfee8,0xff81,0xff90,0xffa9,0xffb0,0xfff9,0x10002,0x10059,0x10083,0x10142,
    0x10151,0x1017a,0x10183,0x10220,0x1022b,0x10290,0x1029b,0x102fa,0x10301,0x10380,0x10391,0x103a0,
    0x103eb,0x103f8,0x1046b,0x10479,0x10480,0x104e9,0x10500,0x10609,0x10684,0x106e8,0x1070c,0x10710,
    0x1072c,0x10789,0x10800,0x10c61,0x10c80,0x11843,0x11860,0x1194b,0x11958,0x12139,0x12200,0x12259,
    0x12300,0x13b43,0x13bb0,0x13e2b,0x13e38,0x13f33,0x13f80,0x14c1b,0x14cc8,0x14ec3,0x14ee0,0x14fe3,
    0x14ff0,0x15ba1,0x15bb0,0x15cb1,0x15cb8,0x1677c,0x16790,0x167a1,0x167cb,0x167e8,0x167f3,0x16800,
    0x16931,0x16938,0x16941,0x16968,0x16971,0x16980,0x16b41,0x16b78,0x16b83,0x16b89,0x16bfc,0x16c00,
    0x16cb9,0x16d00,0x16d39,0x16d40,0x16d79,0x16d80,0x16db9,0x16dc0,0x16df9,0x16e00,0x16e39,0x16e40,
    0x16e79,0x16e80,0x16eb9,0x16ec0,0x16ef9,0x16f04,0x17003,0x17178,0x17183,0x17280,0x17293,0x172f1,
    0x17400,0x174d1,0x174d8,0x177a1,0x17800,0x17eb1,0x17f80,0x17fe1,0x18002,0x1800b,0x18020,0x18043,
    0x18090,0x180a3,0x18100,0x18154,0x18170,0x18183,0x18188,0x181eb,0x181f0,0x18201,0x18208,0x184b9,
    0x184cc,0x184d8,0x18503,0x18508,0x187db,0x187e0,0x18801,0x18828,0x18981,0x18988,0x18c79,0x18c80,
    0x18f21,0x18f80,0x190f9,0x19100,0x52469,0x52480,0x52639,0x52680,0x527f3,0x52800,0x5306b,0x53080,
    0x53161,0x53200,0x5337c,0x53380,0x5339b,0x533a4,0x533f3,0x533f8,0x534f4,0x53500,0x53784,0x53793,
    0x537c1,0x53800,0x53e59,0x53e80,0x53e91,0x53e98,0x53ea1,0x53ea8,0x53ed1,0x53f90,0x54015,0x54018,
    0x54034,0x54038,0x5405d,0x54060,0x5412d,0x54138,0x54164,0x54169,0x54180,0x541d1,0x54200,0x543a3,
    0x543c1,0x54400,0x54624,0x5462d,0x54631,0x54673,0x54680,0x546d1,0x54704,0x54790,0x547c3,0x547d8,
    0x547e3,0x547e8,0x547fd,0x54800,0x54935,0x5495c,0x54973,0x54980,0x54a3d,0x54a90,0x54aa1,0x54afb,
    0x54b00,0x54be9,0x54c05,0x54c18,0x54d9c,0x54da0,0x54db5,0x54dd0,0x54de5,0x54df0,0x54e0b,0x54e71,
    0x54e78,0x54ed1,0x54ef3,0x54f00,0x54f2d,0x54f30,0x54ff9,0x55000,0x5514d,0x55178,0x5518d,0x55198,
    0x551ad,0x551b9,0x55200,0x5521d,0x55220,0x55265,0x55268,0x55271,0x55280,0x552d1,0x552e3,0x55300,
    0x553e5,0x553e8,0x55584,0x55588,0x55594,0x555a8,0x555bc,0x555c8,0x555f4,0x55600,0x5560c,0x55610,
    0x55619,0x556d8,0x556f3,0x55700,0x55765,0x55770,0x55783,0x55790,0x557b4,0x557b9,0x55808,0x55839,
    0x55848,0x55879,0x55888,0x558b9,0x55900,0x55939,0x55940,0x55979,0x55980,0x55b61,0x55b80,0x55f2d,
    0x55f30,0x55f45,0x55f48,0x55f5b,0x55f60,0x55f6c,0x55f71,0x55f80,0x55fd1,0x56000,0x6bd21,0x6bd80,
    0x6be39,0x6be58,0x6bfe1,0x7c800,0x7d371,0x7d380,0x7d6d1,0x7d800,0x7d839,0x7d898,0x7d8c1,0x7d8e8,
    0x7d8f4,0x7d8f8,0x7d9b9,0x7d9c0,0x7d9e9,0x7d9f0,0x7d9f9,0x7da00,0x7da11,0x7da18,0x7da29,0x7da30,
    0x7de19,0x7de98,0x7e9f3,0x7ea00,0x7ec81,0x7ec90,0x7ee41,0x7ee78,0x7ee81,0x7ef80,0x7f005,0x7f083,
    0x7f0d1,0x7f104,0x7f183,0x7f299,0x7f2a3,0x7f310,0x7f31b,0x7f320,0x7f339,0x7f343,0x7f348,0x7f353,
    0x7f361,0x7f380,0x7f3a9,0x7f3b0,0x7f7e9,0x7f80b,0x7f820,0x7f82b,0x7f858,0x7f863,0x7f880,0x7f8d3,
    0x7f8e0,0x7f8fb,0x7f908,0x7f9db,0x7f9f0,0x7f9fb,0x7fa00,0x7fadb,0x7fae0,0x7faeb,0x7faf0,0x7fafb,
    0x7fb30,0x7fdf9,0x7fe10,0x7fe41,0x7fe50,0x7fe81,0x7fe90,0x7fec1,0x7fed0,0x7fee9,0x7ff00,0x7ff39,
    0x7ff40,0x7ff79,0x7ffe0,0x7ffe9,0x80000,0x80061,0x80068,0x80139,0x80140,0x801d9,0x801e0,0x801f1,
    0x801f8,0x80271,0x80280,0x802f1,0x80400,0x807d9,0x80803,0x80819,0x80838,0x809a1,0x809b8,0x80c79,
    0x80c80,0x80ce9,0x80d00,0x80d09,0x80e80,0x80fec,0x80ff1,0x81400,0x814e9,0x81500,0x81689,0x81704,
    0x81708,0x817e1,0x81800,0x81921,0x81968,0x81a59,0x81a80,0x81bb4,0x81bd9,0x81c00,0x81cf1,0x81cfb,
    0x81d00,0x81e21,0x81e40,0x81e83,0x81e88,0x81eb1,0x82000,0x824f1,0x82500,0x82551,0x82580,0x826a1,
    0x826c0,0x827e1,0x82800,0x82941,0x82980,0x82b21,0x82b7b,0x82b80,0x82bd9,0x82be0,0x82c59,0x82c60,
    0x82c99,0x82ca0,0x82cb1,0x82cb8,0x82d11,0x82d18,0x82d91,0x82d98,0x82dd1,0x82dd8,0x82de9,0x83000,
    0x839b9,0x83a00,0x83ab1,0x83b00,0x83b41,0x83c00,0x83c31,0x83c38,0x83d89,0x83d90,0x83dd9,0x84000,
    0x84031,0x84040,0x84049,0x84050,0x841b1,0x841b8,0x841c9,0x841e0,0x841e9,0x841f8,0x842b1,0x842bb,
    0x842c0,0x844f9,0x84538,0x84581,0x84700,0x84799,0x847a0,0x847b1,0x847d8,0x848e1,0x848fb,0x84900,
    0x849d1,0x849fb,0x84a01,0x84c00,0x84dc1,0x84de0,0x84e81,0x84e90,0x8500d,0x85021,0x8502d,0x85039,
    0x85065,0x8506c,0x85075,0x8507c,0x85080,0x850a1,0x850a8,0x850c1,0x850c8,0x851b1,0x851c4,0x851d9,
    0x851fc,0x85200,0x85249,0x85283,0x852c9,0x85300,0x853fb,0x85400,0x85501,0x85600,0x8572c,0x85739,
    0x85758,0x85783,0x857b9,0x85800,0x859b1,0x859cb,0x85a00,0x85ab1,0x85ac0,0x85b99,0x85bc0,0x85c91,
    0x85ccb,0x85ce9,0x85d48,0x85d81,0x86000,0x86249,0x86400,0x86599,0x86600,0x86799,0x867d0,0x86924,
    0x86941,0x86980,0x869d1,0x87300,0x873f9,0x87400,0x87551,0x8755c,0x8756b,0x87571,0x87580,0x87591,
    0x87800,0x87941,0x87980,0x87a34,0x87a88,0x87aab,0x87ad1,0x87b80,0x87c14,0x87c33,0x87c51,0x87d80,
    0x87e61,0x87f00,0x87fb9,0x88000,0x8800d,0x88010,0x881c5,0x88234,0x8823b,0x88271,0x88290,0x88384,
    0x88388,0x8839d,0x883a8,0x883b1,0x883fc,0x88405,0x88410,0x8859d,0x885b8,0x885cc,0x885db,0x885e9,
    0x885f3,0x88615,0x88619,0x88680,0x88749,0x88780,0x887d1,0x88804,0x88818,0x8893d,0x88960,0x8896d,
    0x8899c,0x889a9,0x889b0,0x88a03,0x88a20,0x88a41,0x88a80,0x88b9c,0x88ba3,0x88bb0,0x88bb9,0x88c05,
    0x88c10,0x88db5,0x88df8,0x88e2b,0x88e4d,0x88e54,0x88e5d,0x88e6b,0x88e70,0x88e7d,0x88e80,0x88edb,
    0x88ee0,0x88eeb,0x88f01,0x88f08,0x88fa9,0x89000,0x89091,0x89098,0x8917d,0x89190,0x891a5,0x891a8,
    0x891b4,0x891bd,0x891c3,0x891f5,0x891f9,0x89400,0x89439,0x89440,0x89449,0x89450,0x89471,0x89478,
    0x894f1,0x894f8,0x8954b,0x89551,0x89580,0x896fd,0x89700,0x8971d,0x8974c,0x89759,0x89780,0x897d1,
    0x89805,0x89810,0x89821,0x89828,0x89869,0x89878,0x89889,0x89898,0x89949,0x89950,0x89989,0x89990,
    0x899a1,0x899a8,0x899d1,0x899dc,0x899e8,0x89a05,0x89a08,0x89a29,0x89a38,0x89a49,0x89a58,0x89a71,
    0x89a80,0x89a89,0x89ab8,0x89ac1,0x89ae8,0x89b21,0x89b34,0x89b69,0x89b84,0x89ba9,0x8a000,0x8a1c5,
    0x8a200,0x8a214,0x8a21d,0x8a228,0x8a234,0x8a238,0x8a25b,0x8a280,0x8a2d3,0x8a2e1,0x8a2eb,0x8a2f4,
    0x8a2f8,0x8a311,0x8a400,0x8a59d,0x8a5c8,0x8a5d5,0x8a5d8,0x8a5fd,0x8a608,0x8a614,0x8a620,0x8a633,
    0x8a638,0x8a641,0x8a680,0x8a6d1,0x8ac00,0x8ad95,0x8adb1,0x8adc0,0x8ade5,0x8adf0,0x8adfc,0x8ae0b,
    0x8aec0,0x8aee5,0x8aef1,0x8b000,0x8b19d,0x8b1d8,0x8b1ed,0x8b1f0,0x8b1fc,0x8b205,0x8b20b,0x8b220,
    0x8b229,0x8b280,0x8b2d1,0x8b303,0x8b369,0x8b400,0x8b55d,0x8b560,0x8b56d,0x8b570,0x8b585,0x8b5b0,
    0x8b5bc,0x8b5c0,0x8b5cb,0x8b5d1,0x8b600,0x8b651,0x8b800,0x8b8d9,0x8b8ed,0x8b900,0x8b915,0x8b930,
    0x8b93d,0x8b95c,0x8b961,0x8b980,0x8b9e3,0x8b9f8,0x8ba39,0x8c000,0x8c17d,0x8c1c0,0x8c1cc,0x8c1db,
    0x8c1e1,0x8c500,0x8c799,0x8c7f8,0x8c839,0x8c848,0x8c851,0x8c860,0x8c8a1,0x8c8a8,0x8c8b9,0x8c8c0,
    0x8c9b1,0x8c9b8,0x8c9c9,0x8c9dd,0x8c9e8,0x8c9f4,0x8c9f8,0x8ca1c,0x8ca23,0x8ca39,0x8ca80,0x8cad1,
    0x8cd00,0x8cd41,0x8cd50,0x8cea5,0x8cec1,0x8ced5,0x8cee0,0x8cf04,0x8cf08,0x8cf13,0x8cf18,0x8cf29,
    0x8d000,0x8d00d,0x8d058,0x8d19d,0x8d1a4,0x8d1ad,0x8d1c8,0x8d1dd,0x8d1fb,0x8d23c,0x8d241,0x8d280,
    0x8d28d,0x8d2b8,0x8d2cd,0x8d2e0,0x8d455,0x8d4b8,0x8d4c5,0x8d4cc,0x8d4d3,0x8d4e8,0x8d4f3,0x8d519,
    0x8d580,0x8d7c9,0x8e000,0x8e049,0x8e050,0x8e185,0x8e1b9,0x8e1c5,0x8e1f0,0x8e1fc,0x8e200,0x8e20b,
    0x8e231,0x8e280,0x8e369,0x8e383,0x8e390,0x8e481,0x8e495,0x8e541,0x8e548,0x8e555,0x8e588,0x8e595,
    0x8e5a0,0x8e5ad,0x8e5b9,0x8e800,0x8e839,0x8e840,0x8e851,0x8e858,0x8e98d,0x8e9b9,0x8e9d5,0x8e9d9,
    0x8e9e5,0x8e9f1,0x8e9fd,0x8ea14,0x8ea1d,0x8ea24,0x8ea30,0x8ea3d,0x8ea41,0x8ea80,0x8ead1,0x8eb00,
    0x8eb31,0x8eb38,0x8eb49,0x8eb50,0x8ec79,0x8ec85,0x8ec91,0x8ec98,0x8ecad,0x8ecb0,0x8ecbc,0x8ecc0,
    0x8ecc9,0x8ed00,0x8ed51,0x8f700,0x8f79d,0x8f7a8,0x8f7bb,0x8f7c9,0x8fd80,0x8fd89,0x8fe00,0x8ff91,
    0x8fffb,0x90000,0x91cd1,0x92000,0x92379,0x92383,0x923a9,0x92400,0x92a21,0x97c80,0x97f8b,0x97f99,
    0x98000,0x9a179,0xa2000,0xa3239,0xb4000,0xb51c9,0xb5200,0xb52f9,0xb5300,0xb5351,0xb5373,0xb5380,
    0xb55f9,0xb5600,0xb5651,0xb5680,0xb5771,0xb5784,0xb57ab,0xb57b1,0xb5800,0xb5984,0xb59bb,0xb59e0,
    0xb5a23,0xb5a28,0xb5a31,0xb5a80,0xb5ad1,0xb5ad8,0xb5b11,0xb5b18,0xb5bc1,0xb5be8,0xb5c81,0xb7200,
    0xb74bb,0xb74d9,0xb7800,0xb7a59,0xb7a7d,0xb7a80,0xb7c41,0xb7c7d,0xb7c98,0xb7d01,0xb7f00,0xb7f13,
    0xb7f18,0xb7f25,0xb7f29,0xb7f80,0xb7f91,0xb8000,0xc3fc1,0xc4000,0xc66b1,0xc6800,0xc6849,0xd7f80,
    0xd7fa1,0xd7fa8,0xd7fe1,0xd7fe8,0xd7ff9,0xd8000,0xd8919,0xd8a80,0xd8a99,0xd8b20,0xd8b41,0xd8b80,
    0xd97e1,0xde000,0xde359,0xde380,0xde3e9,0xde400,0xde449,0xde480,0xde4d1,0xde4e0,0xde4ed,0xde4f4,
    0xde4fb,0xde501,0xe7805,0xe7971,0xe7985,0xe7a39,0xe7a80,0xe7e21,0xe8000,0xe87b1,0xe8800,0xe8939,
    0xe8948,0xe8b3c,0xe8b50,0xe8b99,0xe8bdc,0xe8c18,0xe8c2c,0xe8c60,0xe8d54,0xe8d70,0xe8f59,0xe9000,
    0xe9214,0xe9228,0xe9231,0xe9700,0xe97a1,0xe9800,0xe9ab9,0xe9b00,0xe9bc9,0xea000,0xea2a9,0xea2b0,
    0xea4e9,0xea4f0,0xea501,0xea510,0xea519,0xea528,0xea539,0xea548,0xea569,0xea570,0xea5d1,0xea5d8,
    0xea5e1,0xea5e8,0xea621,0xea628,0xea831,0xea838,0xea859,0xea868,0xea8a9,0xea8b0,0xea8e9,0xea8f0,
    0xea9d1,0xea9d8,0xea9f9,0xeaa00,0xeaa29,0xeaa30,0xeaa39,0xeaa50,0xeaa89,0xeaa90,0xeb531,0xeb540,
    0xebe61,0xebe70,0xed005,0xed1b8,0xed1dd,0xed368,0xed3ad,0xed3b0,0xed425,0xed428,0xed43b,0xed461,
    0xed4dd,0xed501,0xed50d,0xed581,0xef800,0xef8f9,0xf0004,0xf0039,0xf0044,0xf00c9,0xf00dc,0xf0111,
    0xf011c,0xf0129,0xf0134,0xf0159,0xf0800,0xf0969,0xf0984,0xf09b8,0xf09f1,0xf0a00,0xf0a51,0xf0a70,
    0xf0a81,0xf1480,0xf1574,0xf1579,0xf1600,0xf1764,0xf1780,0xf17d1,0xf17f8,0xf1801,0xf3f00,0xf3f39,
    0xf3f40,0xf3f61,0xf3f68,0xf3f79,0xf3f80,0xf3ff9,0xf4000,0xf4629,0xf4638,0xf4684,0xf46b9,0xf4800,
    0xf4a24,0xf4a58,0xf4a61,0xf4a80,0xf4ad1,0xf4af3,0xf4b01,0xf6388,0xf65a9,0xf6808,0xf69f1,0xf7000,
    0xf7021,0xf7028,0xf7101,0xf7108,0xf7119,0xf7120,0xf7129,0xf7138,0xf7141,0xf7148,0xf7199,0xf71a0,
    0xf71c1,0xf71c8,0xf71d1,0xf71d8,0xf71e1,0xf7210,0xf7219,0xf7238,0xf7241,0xf7248,0xf7251,0xf7258,
    0xf7261,0xf7268,0xf7281,0xf7288,0xf7299,0xf72a0,0xf72a9,0xf72b8,0xf72c1,0xf72c8,0xf72d1,0xf72d8,
    0xf72e1,0xf72e8,0xf72f1,0xf72f8,0xf7301,0xf7308,0xf7319,0xf7320,0xf7329,0xf7338,0xf7359,0xf7360,
    0xf7399,0xf73a0,0xf73c1,0xf73c8,0xf73e9,0xf73f0,0xf73f9,0xf7400,0xf7451,0xf7458,0xf74e1,0xf7508,
    0xf7521,0xf7528,0xf7551,0xf7558,0xf75e1,0xf7780,0xf7791,0xf8000,0xf8161,0xf8180,0xf84a1,0xf8500,
    0xf8579,0xf8588,0xf8601,0xf8608,0xf8681,0xf8688,0xf87b1,0xf8800,0xf8d71,0xf8f30,0xf9019,0xf9080,
    0xf91e1,0xf9200,0xf9249,0xf9280,0xf9291,0xf9300,0xf9331,0xf9800,0xfb6c1,0xfb6e8,0xfb769,0xfb780,
    0xfb7e9,0xfb800,0xfbba1,0xfbc00,0xfbec9,0xfbf00,0xfbf61,0xfbf80,0xfbf89,0xfc000,0xfc061,0xfc080,
    0xfc241,0xfc280,0xfc2d1,0xfc300,0xfc441,0xfc480,0xfc571,0xfc580,0xfc591,0xfc800,0xfd2a1,0xfd300,
    0xfd371,0xfd380,0xfd3a9,0xfd3c0,0xfd3e9,0xfd400,0xfd439,0xfd480,0xfd569,0xfd580,0xfd5d9,0xfd600,
    0xfd631,0xfd680,0xfd6d1,0xfd700,0xfd741,0xfd780,0xfd7b9,0xfd800,0xfdc99,0xfdca0,0xfde59,0xfdf80,
    0xfdfd1,0x100000,0x153701,0x153800,0x15b9c9,0x15ba00,0x15c0f1,0x15c100,0x167511,0x167580,0x175f09,0x17c000,
    0x17d0f1,0x180000,0x189a59,0x700805,0x700f81,
};
// the class of each ASCII character directly (the common case skips the search)
static const unsigned char bert__uc_ascii_class[128] = {
    1,1,1,1,1,1,1,1,1,2,2,1,1,2,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    2,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,0,0,0,0,0,0,0,0,0,0,3,3,3,3,3,3,
    3,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,3,3,3,3,3,
    3,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,3,3,3,3,1,
};
// case runs for Final_Sigma: (first code point << 2) | case class
static const uint32_t bert__uc_case[1107] = {
    0x0,0x9e,0xa0,0xba,0xbc,0xea,0xec,0x105,0x16c,0x17a,0x17c,0x182,
    0x185,0x1ec,0x2a2,0x2a4,0x2a9,0x2ac,0x2b6,0x2b8,0x2be,0x2c0,0x2d2,0x2d5,
    0x2d8,0x2de,0x2e4,0x2e9,0x2ec,0x301,0x35c,0x361,0x3dc,0x3e1,0x6ec,0x6f1,
    0x700,0x711,0xa50,0xa55,0xac2,0xdc1,0xdd2,0xdd9,0xde0,0xdea,0xded,0xdf8,
    0xdfd,0xe00,0xe12,0xe19,0xe1e,0xe21,0xe2c,0xe31,0xe34,0xe39,0xe88,0xe8d,
    0xfd8,0xfdd,0x1208,0x120e,0x1229,0x14c0,0x14c5,0x155c,0x1566,0x1568,0x157e,0x1581,
    0x1624,0x1646,0x16f8,0x16fe,0x1700,0x1706,0x170c,0x1712,0x1718,0x171e,0x1720,0x17d2,
    0x17d4,0x1802,0x1818,0x1842,0x186c,0x1872,0x1874,0x1902,0x1904,0x192e,0x1980,0x19c2,
    0x19c4,0x1b5a,0x1b78,0x1b7e,0x1ba4,0x1baa,0x1bb8,0x1c3e,0x1c40,0x1c46,0x1c48,0x1cc2,
    0x1d2c,0x1e9a,0x1ec4,0x1fae,0x1fd8,0x1fea,0x1fec,0x1ff6,0x1ff8,0x205a,0x20b8,0x2166,
    0x2170,0x2222,0x2224,0x2242,0x2248,0x2262,0x2280,0x2326,0x240c,0x24ea,0x24ec,0x24f2,
    0x24f4,0x2506,0x2524,0x2536,0x2538,0x2546,0x2560,0x258a,0x2590,0x25c6,0x25c8,0x2606,
    0x2608,0x26f2,0x26f4,0x2706,0x2714,0x2736,0x2738,0x278a,0x2790,0x27fa,0x27fc,0x2806,
    0x280c,0x28f2,0x28f4,0x2906,0x290c,0x291e,0x2924,0x292e,0x2938,0x2946,0x2948,0x29c2,
    0x29c8,0x29d6,0x29d8,0x2a06,0x2a0c,0x2af2,0x2af4,0x2b06,0x2b18,0x2b1e,0x2b24,0x2b36,
    0x2b38,0x2b8a,0x2b90,0x2bea,0x2c00,0x2c06,0x2c08,0x2cf2,0x2cf4,0x2cfe,0x2d00,0x2d06,
    0x2d14,0x2d36,0x2d38,0x2d56,0x2d5c,0x2d8a,0x2d90,0x2e0a,0x2e0c,0x2f02,0x2f04,0x2f36,
    0x2f38,0x3002,0x3004,0x3012,0x3014,0x30f2,0x30f4,0x30fa,0x3104,0x311a,0x3124,0x312a,
    0x3138,0x3156,0x315c,0x318a,0x3190,0x3206,0x3208,0x32f2,0x32f4,0x32fe,0x3300,0x331a,
    0x331c,0x3332,0x3338,0x338a,0x3390,0x3402,0x3408,0x34ee,0x34f4,0x3506,0x3514,0x3536,
    0x3538,0x358a,0x3590,0x3606,0x3608,0x372a,0x372c,0x374a,0x3754,0x375a,0x375c,0x38c6,
    0x38c8,0x38d2,0x38ec,0x391a,0x393c,0x3ac6,0x3ac8,0x3ad2,0x3af4,0x3b1a,0x3b1c,0x3b22,
    0x3b38,0x3c62,0x3c68,0x3cd6,0x3cd8,0x3cde,0x3ce0,0x3ce6,0x3ce8,0x3dc6,0x3dfc,0x3e02,
    0x3e14,0x3e1a,0x3e20,0x3e36,0x3e60,0x3e66,0x3ef4,0x3f1a,0x3f1c,0x40b6,0x40c4,0x40ca,
    0x40e0,0x40e6,0x40ec,0x40f6,0x40fc,0x4162,0x4168,0x417a,0x4184,0x41c6,0x41d4,0x420a,
    0x420c,0x4216,0x421c,0x4236,0x4238,0x4276,0x4278,0x4281,0x4318,0x431d,0x4320,0x4335,
    0x4338,0x4341,0x43ec,0x43f2,0x43f5,0x4400,0x4d76,0x4d80,0x4e81,0x4fd8,0x4fe1,0x4ff8,
    0x5c4a,0x5c54,0x5cca,0x5cd0,0x5d4a,0x5d50,0x5dca,0x5dd0,0x5ed2,0x5ed8,0x5ede,0x5ef8,
    0x5f1a,0x5f1c,0x5f26,0x5f50,0x5f5e,0x5f60,0x5f76,0x5f78,0x602e,0x6040,0x610e,0x6110,
    0x6216,0x621c,0x62a6,0x62a8,0x6482,0x648c,0x649e,0x64a4,0x64ca,0x64cc,0x64e6,0x64f0,
    0x685e,0x6864,0x686e,0x6870,0x695a,0x695c,0x6962,0x697c,0x6982,0x6984,0x698a,0x698c,
    0x6996,0x69b4,0x69ce,0x69f4,0x69fe,0x6a00,0x6a9e,0x6aa0,0x6ac2,0x6b3c,0x6c02,0x6c10,
    0x6cd2,0x6cd4,0x6cda,0x6cec,0x6cf2,0x6cf4,0x6d0a,0x6d0c,0x6dae,0x6dd0,0x6e02,0x6e08,
    0x6e8a,0x6e98,0x6ea2,0x6ea8,0x6eae,0x6eb8,0x6f9a,0x6f9c,0x6fa2,0x6fa8,0x6fb6,0x6fb8,
    0x6fbe,0x6fc8,0x70b2,0x70d0,0x70da,0x70e0,0x71e2,0x71f8,0x7201,0x7224,0x7241,0x72ec,
    0x72f5,0x7300,0x7342,0x734c,0x7352,0x7384,0x738a,0x73a4,0x73b6,0x73b8,0x73d2,0x73d4,
    0x73e2,0x73e8,0x7401,0x74b2,0x75ad,0x75e2,0x75e5,0x766e,0x7801,0x7c58,0x7c61,0x7c78,
    0x7c81,0x7d18,0x7d21,0x7d38,0x7d41,0x7d60,0x7d65,0x7d68,0x7d6d,0x7d70,0x7d75,0x7d78,
    0x7d7d,0x7df8,0x7e01,0x7ed4,0x7ed9,0x7ef6,0x7ef9,0x7efe,0x7f09,0x7f14,0x7f19,0x7f36,
    0x7f41,0x7f50,0x7f59,0x7f70,0x7f76,0x7f81,0x7fb6,0x7fc0,0x7fc9,0x7fd4,0x7fd9,0x7ff6,
    0x7ffc,0x802e,0x8040,0x8062,0x8068,0x8092,0x8094,0x809e,0x80a0,0x80aa,0x80bc,0x8182,
    0x8194,0x819a,0x81c0,0x81c6,0x81c8,0x81fe,0x8200,0x8242,0x8274,0x8342,0x83c4,0x8409,
    0x840c,0x841d,0x8420,0x8429,0x8450,0x8455,0x8458,0x8465,0x8478,0x8491,0x8494,0x8499,
    0x849c,0x84a1,0x84a4,0x84a9,0x84b8,0x84bd,0x84d4,0x84e5,0x84e8,0x84f1,0x8500,0x8515,
    0x8528,0x8539,0x853c,0x8581,0x8600,0x860d,0x8614,0x92d9,0x93a8,0xb001,0xb1f2,0xb1f9,
    0xb394,0xb3ad,0xb3be,0xb3c9,0xb3d0,0xb401,0xb498,0xb49d,0xb4a0,0xb4b5,0xb4b8,0xb5be,
    0xb5c0,0xb5fe,0xb600,0xb782,0xb800,0xb8be,0xb8c0,0xc016,0xc018,0xc0aa,0xc0b8,0xc0c6,
    0xc0d8,0xc0ee,0xc0f0,0xc266,0xc27c,0xc3f2,0xc3fc,0x28056,0x28058,0x293e2,0x293f8,0x29832,
    0x29834,0x29901,0x299b8,0x299be,0x299cc,0x299d2,0x299f8,0x299fe,0x29a01,0x29a72,0x29a80,0x29bc2,
    0x29bc8,0x29c02,0x29c89,0x29dc2,0x29dc5,0x29e22,0x29e2d,0x29e3c,0x29e41,0x29f2c,0x29f41,0x29f48,
    0x29f4d,0x29f50,0x29f55,0x29f68,0x29fca,0x29fd5,0x29fdc,0x29fe2,0x29fe9,0x29fec,0x2a00a,0x2a00c,
    0x2a01a,0x2a01c,0x2a02e,0x2a030,0x2a096,0x2a09c,0x2a0b2,0x2a0b4,0x2a312,0x2a318,0x2a382,0x2a3c8,
    0x2a3fe,0x2a400,0x2a49a,0x2a4b8,0x2a51e,0x2a548,0x2a602,0x2a60c,0x2a6ce,0x2a6d0,0x2a6da,0x2a6e8,
    0x2a6f2,0x2a6f8,0x2a73e,0x2a740,0x2a796,0x2a79c,0x2a8a6,0x2a8bc,0x2a8c6,0x2a8cc,0x2a8d6,0x2a8dc,
    0x2a90e,0x2a910,0x2a932,0x2a934,0x2a9c2,0x2a9c4,0x2a9f2,0x2a9f4,0x2aac2,0x2aac4,0x2aaca,0x2aad4,
    0x2aade,0x2aae4,0x2aafa,0x2ab00,0x2ab06,0x2ab08,0x2ab76,0x2ab78,0x2abb2,0x2abb8,0x2abce,0x2abd4,
    0x2abda,0x2abdc,0x2acc1,0x2ad6e,0x2ad81,0x2ada6,0x2adb0,0x2adc1,0x2af00,0x2af96,0x2af98,0x2afa2,
    0x2afa4,0x2afb6,0x2afb8,0x3ec01,0x3ec1c,0x3ec4d,0x3ec60,0x3ec7a,0x3ec7c,0x3eeca,0x3ef0c,0x3f802,
    0x3f840,0x3f84e,0x3f850,0x3f882,0x3f8c0,0x3f94a,0x3f94c,0x3f956,0x3f958,0x3fbfe,0x3fc00,0x3fc1e,
    0x3fc20,0x3fc3a,0x3fc3c,0x3fc6a,0x3fc6c,0x3fc85,0x3fcec,0x3fcfa,0x3fcfc,0x3fd02,0x3fd05,0x3fd6c,
    0x3fdc2,0x3fdc4,0x3fe7a,0x3fe80,0x3ff8e,0x3ff90,0x3ffe6,0x3fff0,0x407f6,0x407f8,0x40b82,0x40b84,
    0x40dda,0x40dec,0x41001,0x41140,0x412c1,0x41350,0x41361,0x413f0,0x415c1,0x415ec,0x415f1,0x4162c,
    0x41631,0x4164c,0x41651,0x41658,0x4165d,0x41688,0x4168d,0x416c8,0x416cd,0x416e8,0x416ed,0x416f4,
    0x41e02,0x41e18,0x41e1e,0x41ec4,0x41eca,0x41eec,0x42806,0x42810,0x42816,0x4281c,0x42832,0x42840,
    0x428e2,0x428ec,0x428fe,0x42900,0x42b96,0x42b9c,0x43201,0x432cc,0x43301,0x433cc,0x43492,0x434a0,
    0x43aae,0x43ab4,0x43d1a,0x43d44,0x43e0a,0x43e18,0x44006,0x44008,0x440e2,0x4411c,0x441c2,0x441c4,
    0x441ce,0x441d4,0x441fe,0x44208,0x442ce,0x442dc,0x442e6,0x442ec,0x442f6,0x442f8,0x4430a,0x4430c,
    0x44336,0x44338,0x44402,0x4440c,0x4449e,0x444b0,0x444b6,0x444d4,0x445ce,0x445d0,0x44602,0x44608,
    0x446da,0x446fc,0x44726,0x44734,0x4473e,0x44740,0x448be,0x448c8,0x448d2,0x448d4,0x448da,0x448e0,
    0x448fa,0x448fc,0x44b7e,0x44b80,0x44b8e,0x44bac,0x44c02,0x44c08,0x44cee,0x44cf4,0x44d02,0x44d04,
    0x44d9a,0x44db4,0x44dc2,0x44dd4,0x450e2,0x45100,0x4510a,0x45114,0x4511a,0x4511c,0x4517a,0x4517c,
    0x452ce,0x452e4,0x452ea,0x452ec,0x452fe,0x45304,0x4530a,0x45310,0x456ca,0x456d8,0x456f2,0x456f8,
    0x456fe,0x45704,0x45772,0x45778,0x458ce,0x458ec,0x458f6,0x458f8,0x458fe,0x45904,0x45aae,0x45ab0,
    0x45ab6,0x45ab8,0x45ac2,0x45ad8,0x45ade,0x45ae0,0x45c76,0x45c80,0x45c8a,0x45c98,0x45c9e,0x45cb0,
    0x460be,0x460e0,0x460e6,0x460ec,0x46281,0x46380,0x464ee,0x464f4,0x464fa,0x464fc,0x4650e,0x46510,
    0x46752,0x46760,0x4676a,0x46770,0x46782,0x46784,0x46806,0x4682c,0x468ce,0x468e4,0x468ee,0x468fc,
    0x4691e,0x46920,0x46946,0x4695c,0x46966,0x46970,0x46a2a,0x46a5c,0x46a62,0x46a68,0x470c2,0x470dc,
    0x470e2,0x470f8,0x470fe,0x47100,0x4724a,0x472a0,0x472aa,0x472c4,0x472ca,0x472d0,0x472d6,0x472dc,
    0x474c6,0x474dc,0x474ea,0x474ec,0x474f2,0x474f8,0x474fe,0x47518,0x4751e,0x47520,0x47642,0x47648,
    0x47656,0x47658,0x4765e,0x47660,0x47bce,0x47bd4,0x4d0c2,0x4d0e4,0x5abc2,0x5abd4,0x5acc2,0x5acdc,
    0x5ad02,0x5ad10,0x5b901,0x5ba00,0x5bd3e,0x5bd40,0x5be3e,0x5be80,0x5bf82,0x5bf88,0x5bf8e,0x5bf94,
    0x6bfc2,0x6bfd0,0x6bfd6,0x6bff0,0x6bff6,0x6bffc,0x6f276,0x6f27c,0x6f282,0x6f290,0x73c02,0x73cb8,
    0x73cc2,0x73d1c,0x7459e,0x745a8,0x745ce,0x7460c,0x74616,0x74630,0x746aa,0x746b8,0x7490a,0x74914,
    0x75001,0x75154,0x75159,0x75274,0x75279,0x75280,0x75289,0x7528c,0x75295,0x7529c,0x752a5,0x752b4,
    0x752b9,0x752e8,0x752ed,0x752f0,0x752f5,0x75310,0x75315,0x75418,0x7541d,0x7542c,0x75435,0x75454,
    0x75459,0x75474,0x75479,0x754e8,0x754ed,0x754fc,0x75501,0x75514,0x75519,0x7551c,0x75529,0x75544,
    0x75549,0x75a98,0x75aa1,0x75b04,0x75b09,0x75b6c,0x75b71,0x75bec,0x75bf1,0x75c54,0x75c59,0x75cd4,
    0x75cd9,0x75d3c,0x75d41,0x75dbc,0x75dc1,0x75e24,0x75e29,0x75ea4,0x75ea9,0x75f0c,0x75f11,0x75f30,
    0x76802,0x768dc,0x768ee,0x769b4,0x769d6,0x769d8,0x76a12,0x76a14,0x76a6e,0x76a80,0x76a86,0x76ac0,
    0x77c01,0x77c28,0x77c2d,0x77c7c,0x78002,0x7801c,0x78022,0x78064,0x7806e,0x78088,0x7808e,0x78094,
    0x7809a,0x780ac,0x784c2,0x784f8,0x78aba,0x78abc,0x78bb2,0x78bc0,0x7a342,0x7a35c,0x7a401,0x7a512,
    0x7a530,0x7c4c1,0x7c528,0x7c541,0x7c5a8,0x7c5c1,0x7c628,0x7cfee,0x7d000,0x380006,0x380008,0x380082,
    0x380200,0x380402,0x3807c0,
};
// uncased single-character map runs {first, value, count, key step, value step}: for i < count,
// first + i*key_step maps to value + i*value_step
static const bert__uc_run bert__uc_map[1172] = {
    {0x41,0x61,26,1,1},{0xc0,0x61,6,1,0},{0xc6,0xe6,1,1,0},{0xc7,0x63,2,1,2},{0xc9,0x65,3,1,0},{0xcc,0x69,4,1,0},
    {0xd0,0xf0,1,1,0},{0xd1,0x6e,2,1,1},{0xd3,0x6f,4,1,0},{0xd8,0xf8,1,1,0},{0xd9,0x75,4,1,0},{0xdd,0x79,1,1,0},
    {0xde,0xfe,1,1,0},{0xe0,0x61,6,1,0},{0xe7,0x63,2,1,2},{0xe9,0x65,3,1,0},{0xec,0x69,4,1,0},{0xf1,0x6e,2,1,1},
    {0xf3,0x6f,4,1,0},{0xf9,0x75,4,1,0},{0xfd,0x79,2,2,0},{0x100,0x61,6,1,0},{0x106,0x63,8,1,0},{0x10e,0x64,2,1,0},
    {0x110,0x111,1,1,0},{0x112,0x65,10,1,0},{0x11c,0x67,8,1,0},{0x124,0x68,2,1,0},{0x126,0x127,1,1,0},{0x128,0x69,9,1,0},
    {0x132,0x133,1,1,0},{0x134,0x6a,2,1,0},{0x136,0x6b,2,1,0},{0x139,0x6c,6,1,0},{0x13f,0x140,2,2,2},{0x143,0x6e,6,1,0},
    {0x14a,0x14b,1,1,0},{0x14c,0x6f,6,1,0},{0x152,0x153,1,1,0},{0x154,0x72,6,1,0},{0x15a,0x73,8,1,0},{0x162,0x74,4,1,0},
    {0x166,0x167,1,1,0},{0x168,0x75,12,1,0},{0x174,0x77,2,1,0},{0x176,0x79,3,1,0},{0x179,0x7a,6,1,0},{0x181,0x253,1,1,0},
    {0x182,0x183,2,2,2},{0x186,0x254,1,1,0},{0x187,0x188,1,1,0},{0x189,0x256,2,1,1},{0x18b,0x18c,2,3,81},{0x18f,0x259,2,1,2},
    {0x191,0x192,1,1,0},{0x193,0x260,2,1,3},{0x196,0x269,2,1,-1},{0x198,0x199,1,1,0},{0x19c,0x26f,2,1,3},{0x19f,0x275,1,1,0},
    {0x1a0,0x6f,2,1,0},{0x1a2,0x1a3,2,2,2},{0x1a6,0x280,1,1,0},{0x1a7,0x1a8,1,1,0},{0x1a9,0x283,1,1,0},{0x1ac,0x1ad,1,1,0},
    {0x1ae,0x288,1,1,0},{0x1af,0x75,2,1,0},{0x1b1,0x28a,2,1,1},{0x1b3,0x1b4,2,2,2},{0x1b7,0x292,1,1,0},{0x1b8,0x1b9,2,4,4},
    {0x1c4,0x1c6,2,1,0},{0x1c7,0x1c9,2,1,0},{0x1ca,0x1cc,2,1,0},{0x1cd,0x61,2,1,0},{0x1cf,0x69,2,1,0},{0x1d1,0x6f,2,1,0},
    {0x1d3,0x75,10,1,0},{0x1de,0x61,4,1,0},{0x1e2,0xe6,2,1,0},{0x1e4,0x1e5,1,1,0},{0x1e6,0x67,2,1,0},{0x1e8,0x6b,2,1,0},
    {0x1ea,0x6f,4,1,0},{0x1ee,0x292,2,1,0},{0x1f0,0x6a,1,1,0},{0x1f1,0x1f3,2,1,0},{0x1f4,0x67,2,1,0},{0x1f6,0x195,2,1,42},
    {0x1f8,0x6e,2,1,0},{0x1fa,0x61,2,1,0},{0x1fc,0xe6,2,1,0},{0x1fe,0xf8,2,1,0},{0x200,0x61,4,1,0},{0x204,0x65,4,1,0},
    {0x208,0x69,4,1,0},{0x20c,0x6f,4,1,0},{0x210,0x72,4,1,0},{0x214,0x75,4,1,0},{0x218,0x73,2,1,0},{0x21a,0x74,2,1,0},
    {0x21c,0x21d,1,1,0},{0x21e,0x68,2,1,0},{0x220,0x19e,1,1,0},{0x222,0x223,2,2,2},{0x226,0x61,2,1,0},{0x228,0x65,2,1,0},
    {0x22a,0x6f,8,1,0},{0x232,0x79,2,1,0},{0x23a,0x2c65,1,1,0},{0x23b,0x23c,1,1,0},{0x23d,0x19a,1,1,0},{0x23e,0x2c66,1,1,0},
    {0x241,0x242,1,1,0},{0x243,0x180,1,1,0},{0x244,0x289,2,1,3},{0x246,0x247,5,2,2},{0x370,0x371,2,2,2},{0x374,0x2b9,1,1,0},
    {0x376,0x377,1,1,0},{0x37e,0x3b,1,1,0},{0x37f,0x3f3,1,1,0},{0x385,0xa8,1,1,0},{0x386,0x3b1,1,1,0},{0x387,0xb7,1,1,0},
    {0x388,0x3b5,3,1,2},{0x38c,0x3bf,2,2,6},{0x38f,0x3c9,2,1,-16},{0x391,0x3b1,17,1,1},{0x3a3,0x3c3,7,1,1},{0x3aa,0x3b9,2,1,12},
    {0x3ac,0x3b1,2,1,4},{0x3ae,0x3b7,2,1,2},{0x3b0,0x3c5,2,26,-12},{0x3cb,0x3c5,2,1,-6},{0x3cd,0x3c5,2,1,4},{0x3cf,0x3d7,2,4,-5},
    {0x3d4,0x3d2,2,4,7},{0x3da,0x3db,11,2,2},{0x3f4,0x3b8,2,3,64},{0x3f9,0x3f2,2,1,9},{0x3fd,0x37b,3,1,1},{0x400,0x435,2,1,0},
    {0x402,0x452,2,1,-31},{0x404,0x454,3,1,1},{0x407,0x456,2,1,2},{0x409,0x459,3,1,1},{0x40c,0x43a,2,1,-2},{0x40e,0x443,2,1,28},
    {0x410,0x430,9,1,1},{0x419,0x438,2,1,2},{0x41b,0x43b,21,1,1},{0x439,0x438,2,23,-3},{0x451,0x435,2,2,-2},{0x457,0x456,2,5,-28},
    {0x45d,0x438,2,1,11},{0x460,0x461,11,2,2},{0x476,0x475,2,1,0},{0x478,0x479,5,2,2},{0x48a,0x48b,27,2,2},{0x4c0,0x4cf,1,1,0},
    {0x4c1,0x436,2,1,0},{0x4c3,0x4c4,6,2,2},{0x4d0,0x430,4,1,0},{0x4d4,0x4d5,1,1,0},{0x4d6,0x435,2,1,0},{0x4d8,0x4d9,2,2,0},
    {0x4db,0x4d9,1,1,0},{0x4dc,0x436,2,1,0},{0x4de,0x437,2,1,0},{0x4e0,0x4e1,1,1,0},{0x4e2,0x438,4,1,0},{0x4e6,0x43e,2,1,0},
    {0x4e8,0x4e9,2,2,0},{0x4eb,0x4e9,1,1,0},{0x4ec,0x44d,2,1,0},{0x4ee,0x443,6,1,0},{0x4f4,0x447,2,1,0},{0x4f6,0x4f7,1,1,0},
    {0x4f8,0x44b,2,1,0},{0x4fa,0x4fb,27,2,2},{0x531,0x561,38,1,1},{0x622,0x627,2,1,0},{0x624,0x648,2,1,-33},{0x626,0x64a,1,1,0},
    {0x6c0,0x6d5,2,2,-20},{0x6d3,0x6d2,1,1,0},{0x929,0x928,2,8,8},{0x934,0x933,2,36,-30},{0x959,0x916,2,1,1},{0x95b,0x91c,2,1,5},
    {0x95d,0x922,2,1,9},{0x95f,0x92f,2,125,114},{0x9dd,0x9a2,2,2,13},{0xa33,0xa32,2,3,6},{0xa59,0xa16,2,1,1},{0xa5b,0xa1c,2,3,15},
    {0xb5c,0xb21,2,1,1},{0xc48,0xc46,1,1,0},{0xdda,0xdd9,1,1,0},{0xf76,0xfb2,2,2,1},{0x10a0,0x2d00,38,1,1},{0x10c7,0x2d27,2,6,6},
    {0x13a0,0xab70,80,1,1},{0x13f0,0x13f8,6,1,1},{0x1c90,0x10d0,43,1,1},{0x1cbd,0x10fd,3,1,1},{0x1e00,0x61,2,1,0},{0x1e02,0x62,6,1,0},
    {0x1e08,0x63,2,1,0},{0x1e0a,0x64,10,1,0},{0x1e14,0x65,10,1,0},{0x1e1e,0x66,2,1,0},{0x1e20,0x67,2,1,0},{0x1e22,0x68,10,1,0},
    {0x1e2c,0x69,4,1,0},{0x1e30,0x6b,6,1,0},{0x1e36,0x6c,8,1,0},{0x1e3e,0x6d,6,1,0},{0x1e44,0x6e,8,1,0},{0x1e4c,0x6f,8,1,0},
    {0x1e54,0x70,4,1,0},{0x1e58,0x72,8,1,0},{0x1e60,0x73,10,1,0},{0x1e6a,0x74,8,1,0},{0x1e72,0x75,10,1,0},{0x1e7c,0x76,4,1,0},
    {0x1e80,0x77,10,1,0},{0x1e8a,0x78,4,1,0},{0x1e8e,0x79,2,1,0},{0x1e90,0x7a,6,1,0},{0x1e96,0x68,2,1,12},{0x1e98,0x77,2,1,2},
    {0x1e9b,0x17f,1,1,0},{0x1e9e,0xdf,2,2,-126},{0x1ea1,0x61,23,1,0},{0x1eb8,0x65,16,1,0},{0x1ec8,0x69,4,1,0},{0x1ecc,0x6f,24,1,0},
    {0x1ee4,0x75,14,1,0},{0x1ef2,0x79,8,1,0},{0x1efa,0x1efb,3,2,2},{0x1f00,0x3b1,16,1,0},{0x1f10,0x3b5,6,1,0},{0x1f18,0x3b5,6,1,0},
    {0x1f20,0x3b7,16,1,0},{0x1f30,0x3b9,16,1,0},{0x1f40,0x3bf,6,1,0},{0x1f48,0x3bf,6,1,0},{0x1f50,0x3c5,8,1,0},{0x1f59,0x3c5,4,2,0},
    {0x1f60,0x3c9,16,1,0},{0x1f70,0x3b1,2,1,0},{0x1f72,0x3b5,2,1,0},{0x1f74,0x3b7,2,1,0},{0x1f76,0x3b9,2,1,0},{0x1f78,0x3bf,2,1,0},
    {0x1f7a,0x3c5,2,1,0},{0x1f7c,0x3c9,2,1,0},{0x1f80,0x3b1,16,1,0},{0x1f90,0x3b7,16,1,0},{0x1fa0,0x3c9,16,1,0},{0x1fb0,0x3b1,5,1,0},
    {0x1fb6,0x3b1,7,1,0},{0x1fbe,0x3b9,1,1,0},{0x1fc1,0xa8,1,1,0},{0x1fc2,0x3b7,3,1,0},{0x1fc6,0x3b7,2,1,0},{0x1fc8,0x3b5,2,1,0},
    {0x1fca,0x3b7,3,1,0},{0x1fcd,0x1fbf,3,1,0},{0x1fd0,0x3b9,4,1,0},{0x1fd6,0x3b9,6,1,0},{0x1fdd,0x1ffe,3,1,0},{0x1fe0,0x3c5,4,1,0},
    {0x1fe4,0x3c1,2,1,0},{0x1fe6,0x3c5,6,1,0},{0x1fec,0x3c1,1,1,0},{0x1fed,0xa8,2,1,0},{0x1fef,0x60,1,1,0},{0x1ff2,0x3c9,3,1,0},
    {0x1ff6,0x3c9,2,1,0},{0x1ff8,0x3bf,2,1,0},{0x1ffa,0x3c9,3,1,0},{0x1ffd,0xb4,1,1,0},{0x2000,0x2002,2,1,1},{0x2126,0x3c9,1,1,0},
    {0x212a,0x6b,2,1,-10},{0x2132,0x214e,2,46,34},{0x2161,0x2171,15,1,1},{0x2183,0x2184,2,23,12},{0x219b,0x2192,2,19,2},{0x21cd,0x21d0,2,1,4},
    {0x21cf,0x21d2,2,53,49},{0x2209,0x2208,2,3,3},{0x2224,0x2223,2,2,2},{0x2241,0x223c,2,3,7},{0x2247,0x2245,2,2,3},{0x2260,0x3d,1,1,0},
    {0x2262,0x2261,2,11,-20},{0x226e,0x3c,2,1,2},{0x2270,0x2264,2,1,1},{0x2274,0x2272,2,1,1},{0x2278,0x2276,2,1,1},{0x2280,0x227a,2,1,1},
    {0x2284,0x2282,2,1,1},{0x2288,0x2286,2,1,1},{0x22ac,0x22a2,2,1,6},{0x22ae,0x22a9,2,1,2},{0x22e0,0x227c,2,1,1},{0x22e2,0x2291,2,1,1},
    {0x22ea,0x22b2,4,1,1},{0x2329,0x3008,2,1,1},{0x24b6,0x24d0,26,1,1},{0x2adc,0x2add,1,1,0},{0x2c00,0x2c30,48,1,1},{0x2c60,0x2c61,1,1,0},
    {0x2c62,0x26b,1,1,0},{0x2c63,0x1d7d,1,1,0},{0x2c64,0x27d,1,1,0},{0x2c67,0x2c68,3,2,2},{0x2c6d,0x251,2,1,32},{0x2c6f,0x250,2,1,2},
    {0x2c72,0x2c73,2,3,3},{0x2c7e,0x23f,2,1,1},{0x2c80,0x2c81,50,2,2},{0x2ceb,0x2cec,2,2,2},{0x2cf2,0x2cf3,1,1,0},{0x304c,0x304b,12,2,2},
    {0x3065,0x3064,3,2,2},{0x3070,0x306f,2,1,0},{0x3073,0x3072,2,1,0},{0x3076,0x3075,2,1,0},{0x3079,0x3078,2,1,0},{0x307c,0x307b,2,1,0},
    {0x3094,0x3046,2,10,87},{0x30ac,0x30ab,12,2,2},{0x30c5,0x30c4,3,2,2},{0x30d0,0x30cf,2,1,0},{0x30d3,0x30d2,2,1,0},{0x30d6,0x30d5,2,1,0},
    {0x30d9,0x30d8,2,1,0},{0x30dc,0x30db,2,1,0},{0x30f4,0x30a6,2,3,73},{0x30f8,0x30f0,3,1,1},{0x30fe,0x30fd,1,1,0},{0xa640,0xa641,23,2,2},
    {0xa680,0xa681,14,2,2},{0xa722,0xa723,7,2,2},{0xa732,0xa733,31,2,2},{0xa779,0xa77a,2,2,2},{0xa77d,0x1d79,1,1,0},{0xa77e,0xa77f,5,2,2},
    {0xa78b,0xa78c,1,1,0},{0xa78d,0x265,1,1,0},{0xa790,0xa791,2,2,2},{0xa796,0xa797,10,2,2},{0xa7aa,0x266,2,1,-10},{0xa7ac,0x261,2,1,11},
    {0xa7ae,0x26a,2,2,52},{0xa7b1,0x287,2,1,22},{0xa7b3,0xab53,1,1,0},{0xa7b4,0xa7b5,8,2,2},{0xa7c4,0xa794,1,1,0},{0xa7c5,0x282,1,1,0},
    {0xa7c6,0x1d8e,1,1,0},{0xa7c7,0xa7c8,2,2,2},{0xa7d0,0xa7d1,2,6,6},{0xa7d8,0xa7d9,2,29,29},{0xf900,0x8c48,1,1,0},{0xf901,0x66f4,1,1,0},
    {0xf902,0x8eca,1,1,0},{0xf903,0x8cc8,1,1,0},{0xf904,0x6ed1,1,1,0},{0xf905,0x4e32,1,1,0},{0xf906,0x53e5,1,1,0},{0xf907,0x9f9c,2,1,0},
    {0xf909,0x5951,1,1,0},{0xf90a,0x91d1,1,1,0},{0xf90b,0x5587,1,1,0},{0xf90c,0x5948,1,1,0},{0xf90d,0x61f6,1,1,0},{0xf90e,0x7669,1,1,0},
    {0xf90f,0x7f85,1,1,0},{0xf910,0x863f,1,1,0},{0xf911,0x87ba,1,1,0},{0xf912,0x88f8,1,1,0},{0xf913,0x908f,1,1,0},{0xf914,0x6a02,1,1,0},
    {0xf915,0x6d1b,1,1,0},{0xf916,0x70d9,1,1,0},{0xf917,0x73de,1,1,0},{0xf918,0x843d,1,1,0},{0xf919,0x916a,1,1,0},{0xf91a,0x99f1,1,1,0},
    {0xf91b,0x4e82,1,1,0},{0xf91c,0x5375,1,1,0},{0xf91d,0x6b04,1,1,0},{0xf91e,0x721b,1,1,0},{0xf91f,0x862d,1,1,0},{0xf920,0x9e1e,1,1,0},
    {0xf921,0x5d50,1,1,0},{0xf922,0x6feb,1,1,0},{0xf923,0x85cd,1,1,0},{0xf924,0x8964,1,1,0},{0xf925,0x62c9,1,1,0},{0xf926,0x81d8,1,1,0},
    {0xf927,0x881f,1,1,0},{0xf928,0x5eca,1,1,0},{0xf929,0x6717,1,1,0},{0xf92a,0x6d6a,1,1,0},{0xf92b,0x72fc,1,1,0},{0xf92c,0x90ce,1,1,0},
    {0xf92d,0x4f86,1,1,0},{0xf92e,0x51b7,1,1,0},{0xf92f,0x52de,1,1,0},{0xf930,0x64c4,1,1,0},{0xf931,0x6ad3,1,1,0},{0xf932,0x7210,1,1,0},
    {0xf933,0x76e7,1,1,0},{0xf934,0x8001,1,1,0},{0xf935,0x8606,2,1,86},{0xf937,0x8def,1,1,0},{0xf938,0x9732,1,1,0},{0xf939,0x9b6f,1,1,0},
    {0xf93a,0x9dfa,1,1,0},{0xf93b,0x788c,1,1,0},{0xf93c,0x797f,1,1,0},{0xf93d,0x7da0,1,1,0},{0xf93e,0x83c9,1,1,0},{0xf93f,0x9304,1,1,0},
    {0xf940,0x9e7f,1,1,0},{0xf941,0x8ad6,1,1,0},{0xf942,0x58df,1,1,0},{0xf943,0x5f04,1,1,0},{0xf944,0x7c60,1,1,0},{0xf945,0x807e,1,1,0},
    {0xf946,0x7262,1,1,0},{0xf947,0x78ca,1,1,0},{0xf948,0x8cc2,1,1,0},{0xf949,0x96f7,1,1,0},{0xf94a,0x58d8,1,1,0},{0xf94b,0x5c62,1,1,0},
    {0xf94c,0x6a13,1,1,0},{0xf94d,0x6dda,1,1,0},{0xf94e,0x6f0f,1,1,0},{0xf94f,0x7d2f,1,1,0},{0xf950,0x7e37,1,1,0},{0xf951,0x964b,1,1,0},
    {0xf952,0x52d2,1,1,0},{0xf953,0x808b,1,1,0},{0xf954,0x51dc,2,1,-16},{0xf956,0x7a1c,1,1,0},{0xf957,0x7dbe,1,1,0},{0xf958,0x83f1,1,1,0},
    {0xf959,0x9675,1,1,0},{0xf95a,0x8b80,1,1,0},{0xf95b,0x62cf,1,1,0},{0xf95c,0x6a02,1,1,0},{0xf95d,0x8afe,1,1,0},{0xf95e,0x4e39,1,1,0},
    {0xf95f,0x5be7,1,1,0},{0xf960,0x6012,1,1,0},{0xf961,0x7387,1,1,0},{0xf962,0x7570,1,1,0},{0xf963,0x5317,1,1,0},{0xf964,0x78fb,1,1,0},
    {0xf965,0x4fbf,1,1,0},{0xf966,0x5fa9,1,1,0},{0xf967,0x4e0d,1,1,0},{0xf968,0x6ccc,1,1,0},{0xf969,0x6578,1,1,0},{0xf96a,0x7d22,1,1,0},
    {0xf96b,0x53c3,1,1,0},{0xf96c,0x585e,1,1,0},{0xf96d,0x7701,1,1,0},{0xf96e,0x8449,1,1,0},{0xf96f,0x8aaa,1,1,0},{0xf970,0x6bba,1,1,0},
    {0xf971,0x8fb0,1,1,0},{0xf972,0x6c88,1,1,0},{0xf973,0x62fe,1,1,0},{0xf974,0x82e5,1,1,0},{0xf975,0x63a0,1,1,0},{0xf976,0x7565,1,1,0},
    {0xf977,0x4eae,1,1,0},{0xf978,0x5169,2,1,96},{0xf97a,0x6881,1,1,0},{0xf97b,0x7ce7,1,1,0},{0xf97c,0x826f,1,1,0},{0xf97d,0x8ad2,1,1,0},
    {0xf97e,0x91cf,1,1,0},{0xf97f,0x52f5,1,1,0},{0xf980,0x5442,1,1,0},{0xf981,0x5973,1,1,0},{0xf982,0x5eec,1,1,0},{0xf983,0x65c5,1,1,0},
    {0xf984,0x6ffe,1,1,0},{0xf985,0x792a,1,1,0},{0xf986,0x95ad,1,1,0},{0xf987,0x9a6a,1,1,0},{0xf988,0x9e97,2,1,55},{0xf98a,0x529b,1,1,0},
    {0xf98b,0x66c6,1,1,0},{0xf98c,0x6b77,1,1,0},{0xf98d,0x8f62,1,1,0},{0xf98e,0x5e74,1,1,0},{0xf98f,0x6190,2,1,112},{0xf991,0x649a,1,1,0},
    {0xf992,0x6f23,1,1,0},{0xf993,0x7149,1,1,0},{0xf994,0x7489,1,1,0},{0xf995,0x79ca,1,1,0},{0xf996,0x7df4,1,1,0},{0xf997,0x806f,1,1,0},
    {0xf998,0x8f26,1,1,0},{0xf999,0x84ee,1,1,0},{0xf99a,0x9023,1,1,0},{0xf99b,0x934a,1,1,0},{0xf99c,0x5217,1,1,0},{0xf99d,0x52a3,1,1,0},
    {0xf99e,0x54bd,1,1,0},{0xf99f,0x70c8,1,1,0},{0xf9a0,0x88c2,1,1,0},{0xf9a1,0x8aaa,1,1,0},{0xf9a2,0x5ec9,1,1,0},{0xf9a3,0x5ff5,1,1,0},
    {0xf9a4,0x637b,1,1,0},{0xf9a5,0x6bae,1,1,0},{0xf9a6,0x7c3e,1,1,0},{0xf9a7,0x7375,1,1,0},{0xf9a8,0x4ee4,1,1,0},{0xf9a9,0x56f9,1,1,0},
    {0xf9aa,0x5be7,1,1,0},{0xf9ab,0x5dba,1,1,0},{0xf9ac,0x601c,1,1,0},{0xf9ad,0x73b2,1,1,0},{0xf9ae,0x7469,1,1,0},{0xf9af,0x7f9a,1,1,0},
    {0xf9b0,0x8046,1,1,0},{0xf9b1,0x9234,1,1,0},{0xf9b2,0x96f6,2,1,82},{0xf9b4,0x9818,1,1,0},{0xf9b5,0x4f8b,1,1,0},{0xf9b6,0x79ae,1,1,0},
    {0xf9b7,0x91b4,1,1,0},{0xf9b8,0x96b8,1,1,0},{0xf9b9,0x60e1,1,1,0},{0xf9ba,0x4e86,1,1,0},{0xf9bb,0x50da,1,1,0},{0xf9bc,0x5bee,2,1,81},
    {0xf9be,0x6599,1,1,0},{0xf9bf,0x6a02,1,1,0},{0xf9c0,0x71ce,1,1,0},{0xf9c1,0x7642,1,1,0},{0xf9c2,0x84fc,1,1,0},{0xf9c3,0x907c,1,1,0},
    {0xf9c4,0x9f8d,1,1,0},{0xf9c5,0x6688,1,1,0},{0xf9c6,0x962e,1,1,0},{0xf9c7,0x5289,1,1,0},{0xf9c8,0x677b,2,1,120},{0xf9ca,0x6d41,1,1,0},
    {0xf9cb,0x6e9c,1,1,0},{0xf9cc,0x7409,1,1,0},{0xf9cd,0x7559,1,1,0},{0xf9ce,0x786b,1,1,0},{0xf9cf,0x7d10,1,1,0},{0xf9d0,0x985e,1,1,0},
    {0xf9d1,0x516d,1,1,0},{0xf9d2,0x622e,1,1,0},{0xf9d3,0x9678,1,1,0},{0xf9d4,0x502b,1,1,0},{0xf9d5,0x5d19,1,1,0},{0xf9d6,0x6dea,1,1,0},
    {0xf9d7,0x8f2a,1,1,0},{0xf9d8,0x5f8b,1,1,0},{0xf9d9,0x6144,1,1,0},{0xf9da,0x6817,1,1,0},{0xf9db,0x7387,1,1,0},{0xf9dc,0x9686,1,1,0},
    {0xf9dd,0x5229,1,1,0},{0xf9de,0x540f,1,1,0},{0xf9df,0x5c65,1,1,0},{0xf9e0,0x6613,1,1,0},{0xf9e1,0x674e,1,1,0},{0xf9e2,0x68a8,1,1,0},
    {0xf9e3,0x6ce5,1,1,0},{0xf9e4,0x7406,1,1,0},{0xf9e5,0x75e2,1,1,0},{0xf9e6,0x7f79,1,1,0},{0xf9e7,0x88cf,2,1,18},{0xf9e9,0x91cc,1,1,0},
    {0xf9ea,0x96e2,1,1,0},{0xf9eb,0x533f,1,1,0},{0xf9ec,0x6eba,1,1,0},{0xf9ed,0x541d,1,1,0},{0xf9ee,0x71d0,1,1,0},{0xf9ef,0x7498,1,1,0},
    {0xf9f0,0x85fa,1,1,0},{0xf9f1,0x96a3,1,1,0},{0xf9f2,0x9c57,1,1,0},{0xf9f3,0x9e9f,1,1,0},{0xf9f4,0x6797,1,1,0},{0xf9f5,0x6dcb,1,1,0},
    {0xf9f6,0x81e8,1,1,0},{0xf9f7,0x7acb,2,1,85},{0xf9f9,0x7c92,1,1,0},{0xf9fa,0x72c0,1,1,0},{0xf9fb,0x7099,1,1,0},{0xf9fc,0x8b58,1,1,0},
    {0xf9fd,0x4ec0,1,1,0},{0xf9fe,0x8336,1,1,0},{0xf9ff,0x523a,2,1,-51},{0xfa01,0x5ea6,1,1,0},{0xfa02,0x62d3,1,1,0},{0xfa03,0x7cd6,1,1,0},
    {0xfa04,0x5b85,1,1,0},{0xfa05,0x6d1e,1,1,0},{0xfa06,0x66b4,1,1,0},{0xfa07,0x8f3b,1,1,0},{0xfa08,0x884c,1,1,0},{0xfa09,0x964d,1,1,0},
    {0xfa0a,0x898b,1,1,0},{0xfa0b,0x5ed3,1,1,0},{0xfa0c,0x5140,1,1,0},{0xfa0d,0x55c0,1,1,0},{0xfa10,0x585a,1,1,0},{0xfa12,0x6674,1,1,0},
    {0xfa15,0x51de,1,1,0},{0xfa16,0x732a,1,1,0},{0xfa17,0x76ca,1,1,0},{0xfa18,0x793c,2,1,34},{0xfa1a,0x7965,2,1,42},{0xfa1c,0x9756,1,1,0},
    {0xfa1d,0x7cbe,1,1,0},{0xfa1e,0x7fbd,1,1,0},{0xfa20,0x8612,1,1,0},{0xfa22,0x8af8,1,1,0},{0xfa25,0x9038,1,1,0},{0xfa26,0x90fd,1,1,0},
    {0xfa2a,0x98ef,2,1,13},{0xfa2c,0x9928,1,1,0},{0xfa2d,0x9db4,1,1,0},{0xfa2e,0x90de,1,1,0},{0xfa2f,0x96b7,1,1,0},{0xfa30,0x4fae,1,1,0},
    {0xfa31,0x50e7,2,1,102},{0xfa33,0x52c9,2,1,27},{0xfa35,0x5351,1,1,0},{0xfa36,0x559d,2,1,105},{0xfa38,0x5668,1,1,0},{0xfa39,0x5840,2,1,104},
    {0xfa3b,0x5c64,2,1,10},{0xfa3d,0x6094,1,1,0},{0xfa3e,0x6168,2,1,38},{0xfa40,0x61f2,1,1,0},{0xfa41,0x654f,1,1,0},{0xfa42,0x65e2,1,1,0},
    {0xfa43,0x6691,1,1,0},{0xfa44,0x6885,1,1,0},{0xfa45,0x6d77,1,1,0},{0xfa46,0x6e1a,1,1,0},{0xfa47,0x6f22,1,1,0},{0xfa48,0x716e,1,1,0},
    {0xfa49,0x722b,1,1,0},{0xfa4a,0x7422,1,1,0},{0xfa4b,0x7891,1,1,0},{0xfa4c,0x793e,2,1,11},{0xfa4e,0x7948,2,1,8},{0xfa50,0x7956,2,1,7},
    {0xfa52,0x798d,2,1,1},{0xfa54,0x7a40,2,1,65},{0xfa56,0x7bc0,1,1,0},{0xfa57,0x7df4,2,1,21},{0xfa59,0x7e41,1,1,0},{0xfa5a,0x7f72,1,1,0},
    {0xfa5b,0x8005,1,1,0},{0xfa5c,0x81ed,1,1,0},{0xfa5d,0x8279,2,1,0},{0xfa5f,0x8457,1,1,0},{0xfa60,0x8910,1,1,0},{0xfa61,0x8996,1,1,0},
    {0xfa62,0x8b01,2,1,56},{0xfa64,0x8cd3,2,1,53},{0xfa66,0x8fb6,1,1,0},{0xfa67,0x9038,1,1,0},{0xfa68,0x96e3,1,1,0},{0xfa69,0x97ff,2,1,60},
    {0xfa6b,0x6075,1,1,0},{0xfa6c,0x242ee,1,1,0},{0xfa6d,0x8218,1,1,0},{0xfa70,0x4e26,1,1,0},{0xfa71,0x51b5,2,1,-77},{0xfa73,0x4f80,1,1,0},
    {0xfa74,0x5145,2,1,59},{0xfa76,0x52c7,2,1,51},{0xfa78,0x559d,2,1,-72},{0xfa7a,0x5599,2,1,73},{0xfa7c,0x585a,2,1,89},{0xfa7e,0x5944,2,1,16},
    {0xfa80,0x5a62,1,1,0},{0xfa81,0x5b28,1,1,0},{0xfa82,0x5ed2,2,1,7},{0xfa84,0x5f69,2,1,68},{0xfa86,0x60d8,2,1,118},{0xfa88,0x6108,1,1,0},
    {0xfa89,0x618e,2,1,-46},{0xfa8b,0x61f2,2,1,66},{0xfa8d,0x63c4,2,1,88},{0xfa8f,0x6452,1,1,0},{0xfa90,0x6556,1,1,0},{0xfa91,0x6674,1,1,0},
    {0xfa92,0x6717,2,1,4},{0xfa94,0x6756,1,1,0},{0xfa95,0x6b79,2,1,65},{0xfa97,0x6d41,1,1,0},{0xfa98,0x6edb,2,1,-16},{0xfa9a,0x6f22,1,1,0},
    {0xfa9b,0x701e,1,1,0},{0xfa9c,0x716e,1,1,0},{0xfa9d,0x77a7,1,1,0},{0xfa9e,0x7235,2,1,122},{0xfaa0,0x732a,1,1,0},{0xfaa1,0x7471,1,1,0},
    {0xfaa2,0x7506,2,1,53},{0xfaa4,0x761d,2,1,2},{0xfaa6,0x76ca,2,1,17},{0xfaa8,0x76f4,2,1,86},{0xfaaa,0x7740,1,1,0},{0xfaab,0x78cc,1,1,0},
    {0xfaac,0x7ab1,1,1,0},{0xfaad,0x7bc0,1,1,0},{0xfaae,0x7c7b,1,1,0},{0xfaaf,0x7d5b,1,1,0},{0xfab0,0x7df4,1,1,0},{0xfab1,0x7f3e,1,1,0},
    {0xfab2,0x8005,1,1,0},{0xfab3,0x8352,1,1,0},{0xfab4,0x83ef,1,1,0},{0xfab5,0x8779,1,1,0},{0xfab6,0x8941,2,1,69},{0xfab8,0x8996,1,1,0},
    {0xfab9,0x8abf,2,1,57},{0xfabb,0x8acb,2,1,54},{0xfabd,0x8afe,2,1,-17},{0xfabf,0x8b39,2,1,81},{0xfac1,0x8d08,1,1,0},{0xfac2,0x8f38,1,1,0},
    {0xfac3,0x9072,1,1,0},{0xfac4,0x9199,1,1,0},{0xfac5,0x9276,1,1,0},{0xfac6,0x967c,2,1,103},{0xfac8,0x9756,1,1,0},{0xfac9,0x97db,2,1,36},
    {0xfacb,0x980b,2,1,48},{0xfacd,0x9b12,1,1,0},{0xface,0x9f9c,1,1,0},{0xfacf,0x2284a,2,1,-6},{0xfad1,0x233d5,1,1,0},{0xfad2,0x3b9d,1,1,0},
    {0xfad3,0x4018,2,1,33},{0xfad5,0x25249,1,1,0},{0xfad6,0x25cd0,1,1,0},{0xfad7,0x27ed3,1,1,0},{0xfad8,0x9f43,2,1,75},{0xfb1d,0x5d9,2,2,25},
    {0xfb2a,0x5e9,4,1,0},{0xfb2e,0x5d0,3,1,0},{0xfb31,0x5d1,6,1,1},{0xfb38,0x5d8,5,1,1},{0xfb3e,0x5de,2,2,2},{0xfb41,0x5e1,2,2,2},
    {0xfb44,0x5e4,2,2,2},{0xfb47,0x5e7,4,1,1},{0xfb4b,0x5d5,2,1,-4},{0xfb4d,0x5db,2,1,9},{0xff21,0xff41,26,1,1},{0x10400,0x10428,40,1,1},
    {0x104b0,0x104d8,36,1,1},{0x10570,0x10597,11,1,1},{0x1057c,0x105a3,15,1,1},{0x1058c,0x105b3,7,1,1},{0x10594,0x105bb,2,1,1},{0x10c80,0x10cc0,51,1,1},
    {0x1109a,0x11099,2,2,2},{0x110ab,0x110a5,1,1,0},{0x118a0,0x118c0,32,1,1},{0x16e40,0x16e60,32,1,1},{0x1e900,0x1e922,34,1,1},{0x2f800,0x4e3d,2,1,-5},
    {0x2f802,0x4e41,1,1,0},{0x2f803,0x20122,1,1,0},{0x2f804,0x4f60,2,1,78},{0x2f806,0x4fbb,2,1,71},{0x2f808,0x507a,2,1,31},{0x2f80a,0x50e7,2,1,-24},
    {0x2f80c,0x349e,1,1,0},{0x2f80d,0x2063a,1,1,0},{0x2f80e,0x514d,2,1,7},{0x2f810,0x5164,2,1,19},{0x2f812,0x2051c,1,1,0},{0x2f813,0x34b9,1,1,0},
    {0x2f814,0x5167,2,1,38},{0x2f816,0x2054b,1,1,0},{0x2f817,0x5197,2,1,13},{0x2f819,0x4ecc,1,1,0},{0x2f81a,0x51ac,2,1,9},{0x2f81c,0x291df,1,1,0},
    {0x2f81d,0x51f5,2,1,14},{0x2f81f,0x34df,1,1,0},{0x2f820,0x523b,2,1,11},{0x2f822,0x5272,2,1,5},{0x2f824,0x3515,1,1,0},{0x2f825,0x52c7,2,1,2},
    {0x2f827,0x52e4,2,1,22},{0x2f829,0x5305,2,1,1},{0x2f82b,0x5317,2,1,50},{0x2f82d,0x5351,2,1,9},{0x2f82f,0x5373,2,1,10},{0x2f831,0x537f,3,1,0},
    {0x2f834,0x20a2c,1,1,0},{0x2f835,0x7070,1,1,0},{0x2f836,0x53ca,2,1,21},{0x2f838,0x20b63,1,1,0},{0x2f839,0x53eb,2,1,6},{0x2f83b,0x5406,1,1,0},
    {0x2f83c,0x549e,2,1,-102},{0x2f83e,0x5448,2,1,32},{0x2f840,0x54a2,2,1,84},{0x2f842,0x5510,2,1,67},{0x2f844,0x5563,2,1,33},{0x2f846,0x5584,2,1,21},
    {0x2f848,0x55ab,2,1,8},{0x2f84a,0x55c2,1,1,0},{0x2f84b,0x5716,1,1,0},{0x2f84c,0x5606,1,1,0},{0x2f84d,0x5717,1,1,0},{0x2f84e,0x5651,2,1,35},
    {0x2f850,0x5207,1,1,0},{0x2f851,0x58ee,1,1,0},{0x2f852,0x57ce,2,1,38},{0x2f854,0x580d,1,1,0},{0x2f855,0x578b,1,1,0},{0x2f856,0x5832,2,1,-1},
    {0x2f858,0x58ac,1,1,0},{0x2f859,0x214e4,1,1,0},{0x2f85a,0x58f2,2,1,5},{0x2f85c,0x5906,2,1,20},{0x2f85e,0x5922,2,1,64},{0x2f860,0x216a8,2,1,66},
    {0x2f862,0x59ec,2,1,47},{0x2f864,0x5a27,2,1,-79},{0x2f866,0x5a66,1,1,0},{0x2f867,0x36ee,2,1,14},{0x2f869,0x5b08,2,1,54},{0x2f86b,0x5b3e,1,1,0},
    {0x2f86c,0x219c8,1,1,0},{0x2f86d,0x5bc3,2,1,21},{0x2f86f,0x5be7,2,1,12},{0x2f871,0x21b18,1,1,0},{0x2f872,0x5bff,2,1,7},{0x2f874,0x5f53,1,1,0},
    {0x2f875,0x5c22,1,1,0},{0x2f876,0x3781,1,1,0},{0x2f877,0x5c60,2,1,14},{0x2f879,0x5cc0,2,1,-51},{0x2f87b,0x21de4,1,1,0},{0x2f87c,0x5d43,1,1,0},
    {0x2f87d,0x21de6,1,1,0},{0x2f87e,0x5d6e,2,1,-3},{0x2f880,0x5d7c,2,1,101},{0x2f882,0x5de2,1,1,0},{0x2f883,0x382f,1,1,0},{0x2f884,0x5dfd,2,1,43},
    {0x2f886,0x5e3d,2,1,44},{0x2f888,0x3862,1,1,0},{0x2f889,0x22183,1,1,0},{0x2f88a,0x387c,1,1,0},{0x2f88b,0x5eb0,3,1,3},{0x2f88e,0x5eca,1,1,0},
    {0x2f88f,0x2a392,1,1,0},{0x2f890,0x5efe,1,1,0},{0x2f891,0x22331,2,1,0},{0x2f893,0x8201,1,1,0},{0x2f894,0x5f22,2,1,0},{0x2f896,0x38c7,1,1,0},
    {0x2f897,0x232b8,1,1,0},{0x2f898,0x261da,1,1,0},{0x2f899,0x5f62,2,1,9},{0x2f89b,0x38e3,1,1,0},{0x2f89c,0x5f9a,2,1,51},{0x2f89e,0x5fd7,2,1,34},
    {0x2f8a0,0x6081,1,1,0},{0x2f8a1,0x393a,2,1,-30},{0x2f8a3,0x6094,1,1,0},{0x2f8a4,0x226d4,1,1,0},{0x2f8a5,0x60c7,1,1,0},{0x2f8a6,0x6148,2,1,4},
    {0x2f8a8,0x614e,2,1,-2},{0x2f8aa,0x617a,2,1,20},{0x2f8ac,0x61b2,2,1,-14},{0x2f8ae,0x61af,2,1,47},{0x2f8b0,0x61f2,2,1,4},{0x2f8b2,0x6210,2,1,11},
    {0x2f8b4,0x625d,2,1,84},{0x2f8b6,0x62d4,2,1,124},{0x2f8b8,0x22b0c,1,1,0},{0x2f8b9,0x633d,2,1,-65},{0x2f8bb,0x6368,2,1,27},{0x2f8bd,0x63e4,1,1,0},
    {0x2f8be,0x22bf1,1,1,0},{0x2f8bf,0x6422,2,1,-93},{0x2f8c1,0x63a9,1,1,0},{0x2f8c2,0x3a2e,1,1,0},{0x2f8c3,0x6469,2,1,21},{0x2f8c5,0x649d,2,1,-38},
    {0x2f8c7,0x3a6c,1,1,0},{0x2f8c8,0x654f,2,1,29},{0x2f8ca,0x2300a,1,1,0},{0x2f8cb,0x65e3,1,1,0},{0x2f8cc,0x66f8,1,1,0},{0x2f8cd,0x6649,1,1,0},
    {0x2f8ce,0x3b19,1,1,0},{0x2f8cf,0x6691,1,1,0},{0x2f8d0,0x3b08,2,1,-36},{0x2f8d2,0x5192,2,1,3},{0x2f8d4,0x6700,2,1,-100},{0x2f8d6,0x80ad,1,1,0},
    {0x2f8d7,0x43d9,1,1,0},{0x2f8d8,0x6717,2,1,4},{0x2f8da,0x6721,2,1,61},{0x2f8dc,0x6753,1,1,0},{0x2f8dd,0x233c3,1,1,0},{0x2f8de,0x3b49,1,1,0},
    {0x2f8df,0x67fa,2,1,-117},{0x2f8e1,0x6852,2,1,51},{0x2f8e3,0x2346d,1,1,0},{0x2f8e4,0x688e,2,1,-111},{0x2f8e6,0x6914,1,1,0},{0x2f8e7,0x3b9d,1,1,0},
    {0x2f8e8,0x6942,2,1,97},{0x2f8ea,0x69ea,1,1,0},{0x2f8eb,0x6aa8,1,1,0},{0x2f8ec,0x236a3,1,1,0},{0x2f8ed,0x6adb,1,1,0},{0x2f8ee,0x3c18,1,1,0},
    {0x2f8ef,0x6b21,1,1,0},{0x2f8f0,0x238a7,1,1,0},{0x2f8f1,0x6b54,1,1,0},{0x2f8f2,0x3c4e,1,1,0},{0x2f8f3,0x6b72,2,1,45},{0x2f8f5,0x6bba,2,1,1},
    {0x2f8f7,0x23a8d,1,1,0},{0x2f8f8,0x21d0b,1,1,0},{0x2f8f9,0x23afa,1,1,0},{0x2f8fa,0x6c4e,1,1,0},{0x2f8fb,0x23cbc,1,1,0},{0x2f8fc,0x6cbf,2,1,14},
    {0x2f8fe,0x6c67,1,1,0},{0x2f8ff,0x6d16,2,1,40},{0x2f901,0x6d77,2,1,-54},{0x2f903,0x6d69,2,1,15},{0x2f905,0x6d85,1,1,0},{0x2f906,0x23d1e,1,1,0},
    {0x2f907,0x6d34,1,1,0},{0x2f908,0x6e2f,2,1,63},{0x2f90a,0x3d33,1,1,0},{0x2f90b,0x6ecb,2,1,-4},{0x2f90d,0x23ed1,1,1,0},{0x2f90e,0x6df9,1,1,0},
    {0x2f90f,0x6f6e,1,1,0},{0x2f910,0x23f5e,2,1,48},{0x2f912,0x6fc6,2,1,115},{0x2f914,0x701e,2,1,-3},{0x2f916,0x3d96,1,1,0},{0x2f917,0x704a,2,1,51},
    {0x2f919,0x7077,2,1,54},{0x2f91b,0x20525,1,1,0},{0x2f91c,0x7145,1,1,0},{0x2f91d,0x24263,1,1,0},{0x2f91e,0x719c,1,1,0},{0x2f91f,0x243ab,1,1,0},
    {0x2f920,0x7228,2,1,13},{0x2f922,0x7250,1,1,0},{0x2f923,0x24608,1,1,0},{0x2f924,0x7280,2,1,21},{0x2f926,0x24735,1,1,0},{0x2f927,0x24814,1,1,0},
    {0x2f928,0x737a,2,1,17},{0x2f92a,0x3eac,1,1,0},{0x2f92b,0x73a5,1,1,0},{0x2f92c,0x3eb8,2,1,0},{0x2f92e,0x7447,3,1,21},{0x2f931,0x7485,2,1,69},
    {0x2f933,0x3f1b,1,1,0},{0x2f934,0x7524,1,1,0},{0x2f935,0x24c36,1,1,0},{0x2f936,0x753e,1,1,0},{0x2f937,0x24c92,1,1,0},{0x2f938,0x7570,1,1,0},
    {0x2f939,0x2219f,1,1,0},{0x2f93a,0x7610,1,1,0},{0x2f93b,0x24fa1,2,1,23},{0x2f93d,0x25044,1,1,0},{0x2f93e,0x3ffc,2,1,12},{0x2f940,0x76f4,1,1,0},
    {0x2f941,0x250f3,2,1,-1},{0x2f943,0x25119,2,1,26},{0x2f945,0x771e,2,1,1},{0x2f947,0x771f,2,1,43},{0x2f949,0x4039,1,1,0},{0x2f94a,0x778b,1,1,0},
    {0x2f94b,0x4046,2,1,80},{0x2f94d,0x2541d,1,1,0},{0x2f94e,0x784e,2,1,62},{0x2f950,0x78cc,1,1,0},{0x2f951,0x40e3,1,1,0},{0x2f952,0x25626,1,1,0},
    {0x2f953,0x7956,1,1,0},{0x2f954,0x2569a,2,1,43},{0x2f956,0x798f,2,1,92},{0x2f958,0x412f,1,1,0},{0x2f959,0x7a40,2,1,10},{0x2f95b,0x7a4f,1,1,0},
    {0x2f95c,0x2597c,1,1,0},{0x2f95d,0x25aa7,2,1,0},{0x2f95f,0x7aee,1,1,0},{0x2f960,0x4202,1,1,0},{0x2f961,0x25bab,1,1,0},{0x2f962,0x7bc6,2,1,3},
    {0x2f964,0x4227,1,1,0},{0x2f965,0x25c80,1,1,0},{0x2f966,0x7cd2,1,1,0},{0x2f967,0x42a0,1,1,0},{0x2f968,0x7ce8,2,1,-5},{0x2f96a,0x7d00,1,1,0},
    {0x2f96b,0x25f86,1,1,0},{0x2f96c,0x7d63,1,1,0},{0x2f96d,0x4301,1,1,0},{0x2f96e,0x7dc7,2,1,59},{0x2f970,0x7e45,1,1,0},{0x2f971,0x4334,1,1,0},
    {0x2f972,0x26228,2,1,31},{0x2f974,0x4359,1,1,0},{0x2f975,0x262d9,1,1,0},{0x2f976,0x7f7a,1,1,0},{0x2f977,0x2633e,1,1,0},{0x2f978,0x7f95,2,1,101},
    {0x2f97a,0x8005,1,1,0},{0x2f97b,0x264da,2,1,73},{0x2f97d,0x8060,1,1,0},{0x2f97e,0x265a8,1,1,0},{0x2f97f,0x8070,1,1,0},{0x2f980,0x2335f,1,1,0},
    {0x2f981,0x43d5,1,1,0},{0x2f982,0x80b2,2,1,81},{0x2f984,0x440b,1,1,0},{0x2f985,0x813e,1,1,0},{0x2f986,0x5ab5,1,1,0},{0x2f987,0x267a7,2,1,14},
    {0x2f989,0x23393,2,1,9},{0x2f98b,0x8201,2,1,3},{0x2f98d,0x8f9e,1,1,0},{0x2f98e,0x446b,1,1,0},{0x2f98f,0x8291,2,1,-6},{0x2f991,0x829d,1,1,0},
    {0x2f992,0x52b3,1,1,0},{0x2f993,0x82b1,2,1,2},{0x2f995,0x82bd,2,1,41},{0x2f997,0x26b3c,1,1,0},{0x2f998,0x82e5,2,1,56},{0x2f99a,0x8363,2,1,74},
    {0x2f99c,0x8323,1,1,0},{0x2f99d,0x83bd,2,1,42},{0x2f99f,0x8457,1,1,0},{0x2f9a0,0x8353,2,1,119},{0x2f9a2,0x83cc,2,1,16},{0x2f9a4,0x26c36,1,1,0},
    {0x2f9a5,0x26d6b,1,1,0},{0x2f9a6,0x26cd5,1,1,0},{0x2f9a7,0x452b,1,1,0},{0x2f9a8,0x84f1,2,1,2},{0x2f9aa,0x8516,1,1,0},{0x2f9ab,0x273ca,1,1,0},
    {0x2f9ac,0x8564,1,1,0},{0x2f9ad,0x26f2c,1,1,0},{0x2f9ae,0x455d,2,1,4},{0x2f9b0,0x26fb1,1,1,0},{0x2f9b1,0x270d2,1,1,0},{0x2f9b2,0x456b,1,1,0},
    {0x2f9b3,0x8650,2,1,12},{0x2f9b5,0x8667,2,1,2},{0x2f9b7,0x86a9,2,1,-33},{0x2f9b9,0x870e,2,1,-44},{0x2f9bb,0x8779,2,1,-81},{0x2f9bd,0x876b,2,1,27},
    {0x2f9bf,0x45d7,1,1,0},{0x2f9c0,0x87e1,2,1,32},{0x2f9c2,0x45f9,1,1,0},{0x2f9c3,0x8860,2,1,3},{0x2f9c5,0x27667,1,1,0},{0x2f9c6,0x88d7,2,1,7},
    {0x2f9c8,0x4635,1,1,0},{0x2f9c9,0x88fa,1,1,0},{0x2f9ca,0x34bb,1,1,0},{0x2f9cb,0x278ae,1,1,0},{0x2f9cc,0x27966,1,1,0},{0x2f9cd,0x46be,2,1,9},
    {0x2f9cf,0x8aa0,2,1,77},{0x2f9d1,0x8b8a,1,1,0},{0x2f9d2,0x8c55,1,1,0},{0x2f9d3,0x27ca8,1,1,0},{0x2f9d4,0x8cab,2,1,22},{0x2f9d6,0x8d1b,2,1,92},
    {0x2f9d8,0x27f2f,1,1,0},{0x2f9d9,0x20804,1,1,0},{0x2f9da,0x8dcb,2,1,-15},{0x2f9dc,0x8df0,1,1,0},{0x2f9dd,0x208de,1,1,0},{0x2f9de,0x8ed4,2,1,100},
    {0x2f9e0,0x285d2,2,1,27},{0x2f9e2,0x9094,2,1,93},{0x2f9e4,0x9111,1,1,0},{0x2f9e5,0x2872e,1,1,0},{0x2f9e6,0x911b,1,1,0},{0x2f9e7,0x9238,1,1,0},
    {0x2f9e8,0x92d7,2,1,1},{0x2f9ea,0x927c,1,1,0},{0x2f9eb,0x93f9,2,1,28},{0x2f9ed,0x28bfa,1,1,0},{0x2f9ee,0x958b,1,1,0},{0x2f9ef,0x4995,1,1,0},
    {0x2f9f0,0x95b7,1,1,0},{0x2f9f1,0x28d77,1,1,0},{0x2f9f2,0x49e6,1,1,0},{0x2f9f3,0x96c3,1,1,0},{0x2f9f4,0x5db2,1,1,0},{0x2f9f5,0x9723,1,1,0},
    {0x2f9f6,0x29145,1,1,0},{0x2f9f7,0x2921a,1,1,0},{0x2f9f8,0x4a6e,2,1,8},{0x2f9fa,0x97e0,1,1,0},{0x2f9fb,0x2940a,1,1,0},{0x2f9fc,0x4ab2,1,1,0},
    {0x2f9fd,0x29496,1,1,0},{0x2f9fe,0x980b,2,1,0},{0x2fa00,0x9829,1,1,0},{0x2fa01,0x295b6,1,1,0},{0x2fa02,0x98e2,1,1,0},{0x2fa03,0x4b33,1,1,0},
    {0x2fa04,0x9929,2,1,126},{0x2fa06,0x99c2,2,1,60},{0x2fa08,0x4bce,1,1,0},{0x2fa09,0x29b30,1,1,0},{0x2fa0a,0x9b12,1,1,0},{0x2fa0b,0x9c40,1,1,0},
    {0x2fa0c,0x9cfd,1,1,0},{0x2fa0d,0x4cce,2,1,31},{0x2fa0f,0x9d67,1,1,0},{0x2fa10,0x2a0ce,1,1,0},{0x2fa11,0x4cf8,1,1,0},{0x2fa12,0x2a105,1,1,0},
    {0x2fa13,0x2a20e,1,1,0},{0x2fa14,0x2a291,1,1,0},{0x2fa15,0x9ebb,1,1,0},{0x2fa16,0x4d56,1,1,0},{0x2fa17,0x9ef9,2,1,5},{0x2fa19,0x9f05,2,1,10},
    {0x2fa1b,0x9f16,2,1,37},{0x2fa1d,0x2a600,1,1,0},
};
// uncased multi-character maps {code point, up to 3 code points (0 = none)}
static const uint32_t bert__uc_multi[67][4] = {
    {0x9cb,0x9c7,0x9be,0x0},{0x9cc,0x9c7,0x9d7,0x0},{0xb48,0xb47,0xb56,0x0},{0xb4b,0xb47,0xb3e,0x0},{0xb4c,0xb47,0xb57,0x0},
    {0xb94,0xb92,0xbd7,0x0},{0xbca,0xbc6,0xbbe,0x0},{0xbcb,0xbc7,0xbbe,0x0},{0xbcc,0xbc6,0xbd7,0x0},{0xcc0,0xcbf,0xcd5,0x0},
    {0xcc7,0xcc6,0xcd5,0x0},{0xcc8,0xcc6,0xcd6,0x0},{0xcca,0xcc6,0xcc2,0x0},{0xccb,0xcc6,0xcc2,0xcd5},{0xd4a,0xd46,0xd3e,0x0},
    {0xd4b,0xd47,0xd3e,0x0},{0xd4c,0xd46,0xd57,0x0},{0xddc,0xdd9,0xdcf,0x0},{0xddd,0xdd9,0xdcf,0x0},{0xdde,0xdd9,0xddf,0x0},
    {0xf43,0xf42,0xfb7,0x0},{0xf4d,0xf4c,0xfb7,0x0},{0xf52,0xf51,0xfb7,0x0},{0xf57,0xf56,0xfb7,0x0},{0xf5c,0xf5b,0xfb7,0x0},
    {0xf69,0xf40,0xfb5,0x0},{0xf93,0xf92,0xfb7,0x0},{0xf9d,0xf9c,0xfb7,0x0},{0xfa2,0xfa1,0xfb7,0x0},{0xfa7,0xfa6,0xfb7,0x0},
    {0xfac,0xfab,0xfb7,0x0},{0xfb9,0xf90,0xfb5,0x0},{0x1026,0x1025,0x102e,0x0},{0x1b06,0x1b05,0x1b35,0x0},{0x1b08,0x1b07,0x1b35,0x0},
    {0x1b0a,0x1b09,0x1b35,0x0},{0x1b0c,0x1b0b,0x1b35,0x0},{0x1b0e,0x1b0d,0x1b35,0x0},{0x1b12,0x1b11,0x1b35,0x0},{0x1b3b,0x1b3a,0x1b35,0x0},
    {0x1b3d,0x1b3c,0x1b35,0x0},{0x1b40,0x1b3e,0x1b35,0x0},{0x1b41,0x1b3f,0x1b35,0x0},{0x1b43,0x1b42,0x1b35,0x0},{0x1112e,0x11131,0x11127,0x0},
    {0x1112f,0x11132,0x11127,0x0},{0x1134b,0x11347,0x1133e,0x0},{0x1134c,0x11347,0x11357,0x0},{0x114bb,0x114b9,0x114ba,0x0},{0x114bc,0x114b9,0x114b0,0x0},
    {0x114be,0x114b9,0x114bd,0x0},{0x115ba,0x115b8,0x115af,0x0},{0x115bb,0x115b9,0x115af,0x0},{0x11938,0x11935,0x11930,0x0},{0x1d15e,0x1d157,0x1d165,0x0},
    {0x1d15f,0x1d158,0x1d165,0x0},{0x1d160,0x1d158,0x1d165,0x1d16e},{0x1d161,0x1d158,0x1d165,0x1d16f},{0x1d162,0x1d158,0x1d165,0x1d170},{0x1d163,0x1d158,0x1d165,0x1d171},
    {0x1d164,0x1d158,0x1d165,0x1d172},{0x1d1bb,0x1d1b9,0x1d165,0x0},{0x1d1bc,0x1d1ba,0x1d165,0x0},{0x1d1bd,0x1d1b9,0x1d165,0x1d16e},{0x1d1be,0x1d1ba,0x1d165,0x1d16e},
    {0x1d1bf,0x1d1b9,0x1d165,0x1d16f},{0x1d1c0,0x1d1ba,0x1d165,0x1d16f},
};
// canonical combining class of the non-Mn characters that have one {code point, class}
static const uint32_t bert__uc_ccc[25][2] = {
    {0x1715,9},{0x1734,9},{0x1b44,9},{0x1baa,9},{0x1bf2,9},{0x1bf3,9},{0x302e,224},{0x302f,224},
    {0xa953,9},{0xa9c0,9},{0x111c0,9},{0x11235,9},{0x1134d,9},{0x116b6,9},{0x1193d,9},{0x16ff0,6},
    {0x16ff1,6},{0x1d165,216},{0x1d166,216},{0x1d16d,226},{0x1d16e,216},{0x1d16f,216},{0x1d170,216},{0x1d171,216},
    {0x1d172,216},
};
// str.isspace(), which str.strip() strips from vocab lines
static const uint32_t bert__uc_space[29] = {
    0x9,0xa,0xb,0xc,0xd,0x1c,0x1d,0x1e,0x1f,0x20,0x85,0xa0,0x1680,0x2000,0x2001,0x2002,
    0x2003,0x2004,0x2005,0x2006,0x2007,0x2008,0x2009,0x200a,0x2028,0x2029,0x202f,0x205f,0x3000,
};
// END GENERATED UNICODE TABLES

#define BERT__TOK_MAX_TEXT ((size_t)1 << 28)   // 256 MB: keeps every count and span in an int32
#define BERT__WORDPIECE_MAX_CHARS 200          // tokenization.py's max_input_chars_per_word (master)
#define BERT__WORDPIECE_MAX_CHARS_HF 100       // BertTokenizer's (and the first release's)
#define BERT__VOCAB_MAX_TOKEN 1024

// the value of the run that holds c, in a table of (first << shift) | value sorted by first
static int bert__uc_lookup(const uint32_t *t, size_t n, int shift, uint32_t c) {
    size_t lo = 0, hi = n;   // t[0] starts at code point 0
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((t[mid] >> shift) <= c) lo = mid; else hi = mid;
    }
    return (int)(t[lo] & ((1u << shift) - 1));
}

static int bert__uc_class_of(uint32_t c) {
    if (c < 0x80) return bert__uc_ascii_class[c];
    return bert__uc_lookup(bert__uc_class, sizeof bert__uc_class / sizeof *bert__uc_class, 3, c);
}

static int bert__uc_case_of(uint32_t c) {
    return bert__uc_lookup(bert__uc_case, sizeof bert__uc_case / sizeof *bert__uc_case, 2, c);
}

// canonical combining class; only the non-Mn characters matter here (the marks are gone by then)
static int bert__uc_ccc_of(uint32_t c) {
    if (c < bert__uc_ccc[0][0]) return 0;
    for (size_t i = 0; i < sizeof bert__uc_ccc / sizeof *bert__uc_ccc; i++)
        if (bert__uc_ccc[i][0] == c) return (int)bert__uc_ccc[i][1];
    return 0;
}

// The class table's CTRL is BertTokenizer's _clean_text: U+0000, U+FFFD and every C* category but
// tab, newline and CR. tokenization.py (master) drops only Cc and Cf of it: this is that test, for a
// character of class CTRL. Cc is below U+00A0; Cf is this list, unicodedata's (Unicode 14.0.0, as the
// generated tables; tests/test_tokenizer_data.sh checks every code point against Python in both modes).
static const uint32_t bert__uc_cf[21][2] = {
    {0xad,0xad},{0x600,0x605},{0x61c,0x61c},{0x6dd,0x6dd},{0x70f,0x70f},{0x890,0x891},{0x8e2,0x8e2},
    {0x180e,0x180e},{0x200b,0x200f},{0x202a,0x202e},{0x2060,0x2064},{0x2066,0x206f},{0xfeff,0xfeff},
    {0xfff9,0xfffb},{0x110bd,0x110bd},{0x110cd,0x110cd},{0x13430,0x13438},{0x1bca0,0x1bca3},
    {0x1d173,0x1d17a},{0xe0001,0xe0001},{0xe0020,0xe007f},
};

static int bert__is_google_control(uint32_t c) {   // c is of class CTRL: U+0000, U+FFFD, Cc or Cf?
    if (c < 0xA0 || c == 0xFFFD) return 1;
    for (size_t i = 0; i < sizeof bert__uc_cf / sizeof *bert__uc_cf; i++)
        if (c >= bert__uc_cf[i][0] && c <= bert__uc_cf[i][1]) return 1;
    return 0;   // Cn, Co, Cs: ordinary characters to tokenization.py
}

// tokenization.py's _is_chinese_char: the CJK Unified Ideographs blocks, not all of CJK
static int bert__is_cjk(uint32_t c) {
    return c >= 0x3400 && ((c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F));
}

// do_lower_case: the code points of NFD(lower(c)) less its Mn of nonzero combining class (out has 3)
static int bert__uc_map_of(uint32_t c, uint32_t *out) {
    if (c < 0x80) { out[0] = c >= 'A' && c <= 'Z' ? c + 32 : c; return 1; }   // ASCII: lower() only
    if (c >= 0xAC00 && c <= 0xD7A3) {   // Hangul syllable -> L V (T) jamo, by arithmetic
        uint32_t s = c - 0xAC00, t = s % 28;
        out[0] = 0x1100 + s / 588;
        out[1] = 0x1161 + (s % 588) / 28;
        out[2] = 0x11A7 + t;
        return t ? 3 : 2;
    }
    size_t lo = 0, hi = sizeof bert__uc_multi / sizeof *bert__uc_multi;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (bert__uc_multi[mid][0] == c) {
            int n = 0;
            while (n < 3 && bert__uc_multi[mid][n + 1]) { out[n] = bert__uc_multi[mid][n + 1]; n++; }
            return n;
        }
        if (bert__uc_multi[mid][0] < c) lo = mid + 1; else hi = mid;
    }
    out[0] = c;
    lo = 0; hi = sizeof bert__uc_map / sizeof *bert__uc_map;
    if (c < bert__uc_map[0].first) return 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (bert__uc_map[mid].first <= c) lo = mid; else hi = mid;
    }
    const bert__uc_run *r = &bert__uc_map[lo];
    uint32_t d = c - r->first;
    if (d % r->key_step == 0 && d / r->key_step < r->count)
        out[0] = (uint32_t)((int64_t)r->value + (int64_t)(d / r->key_step) * r->value_step);
    return 1;
}

// str.lower()'s Final_Sigma: U+03A3 at t[i] becomes U+03C2 when a cased letter precedes it and
// none follows it, case-ignorable characters (apostrophes, marks, ...) skipped on both sides
static int bert__final_sigma(const uint32_t *t, size_t n, size_t i) {
    size_t j = i;
    int k = 0;
    while (j > 0 && (k = bert__uc_case_of(t[--j])) == BERT__UC_IGNORABLE) {}
    if (k != BERT__UC_CASED) return 0;
    for (j = i + 1; j < n; j++)
        if ((k = bert__uc_case_of(t[j])) != BERT__UC_IGNORABLE) return k != BERT__UC_CASED;
    return 1;
}

// One UTF-8 character at s (n > 0 bytes left) -> code point, *used bytes. An invalid sequence gives
// U+FFFD and consumes its maximal valid prefix (at least one byte), as Python's decoder does.
static uint32_t bert__utf8_decode(const unsigned char *s, size_t n, size_t *used) {
    uint32_t c = s[0], cp;
    unsigned lo = 0x80, hi = 0xBF;
    size_t need, k;
    *used = 1;
    if (c < 0x80) return c;
    if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0xFFFD;
    for (k = 1; k <= need && k < n && s[k] >= lo && s[k] <= hi; k++) {
        cp = cp << 6 | (s[k] & 0x3F);
        lo = 0x80; hi = 0xBF;
    }
    *used = k;
    return k > need ? cp : 0xFFFD;
}

static size_t bert__utf8_put(char *p, uint32_t c) {
    if (c < 0x80) { p[0] = (char)c; return 1; }
    if (c < 0x800) { p[0] = (char)(0xC0 | c >> 6); p[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        p[0] = (char)(0xE0 | c >> 12); p[1] = (char)(0x80 | (c >> 6 & 0x3F)); p[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    p[0] = (char)(0xF0 | c >> 18); p[1] = (char)(0x80 | (c >> 12 & 0x3F));
    p[2] = (char)(0x80 | (c >> 6 & 0x3F)); p[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

// ---- vocab: the tokens in one block, an open-addressing hash table of their ids: FNV-1a from a
// per-vocab seed, then murmur3's finaliser. Without the two, the low bits of FNV-1a (the slot) depend
// only on the low bits of its state, and a vocab file built for it put every token in one probe chain
// (65k lines: 8 s to load instead of 0.16 s).

static uint32_t bert__fnv1a(uint32_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static uint32_t bert__hash_mix(uint32_t h) {
    h ^= h >> 16; h *= 0x85ebca6bu; h ^= h >> 13; h *= 0xc2b2ae35u; h ^= h >> 16;
    return h;
}

// the slot where the search for ("##" when cont) + s[0,n) starts
static uint32_t bert__vocab_slot(const bert_vocab *v, int cont, const char *s, size_t n) {
    uint32_t h = bert__fnv1a(2166136261u ^ v->hash_seed, "##", cont ? 2 : 0);
    return bert__hash_mix(bert__fnv1a(h, s, n)) & v->slot_mask;
}

// a seed from what libc offers: the clock and where the allocator put v (address randomisation)
static uint32_t bert__vocab_seed(const bert_vocab *v) {
    uint64_t a = (uint64_t)(uintptr_t)v ^ ((uint64_t)time(NULL) << 20) ^ (uint64_t)clock();
    return bert__hash_mix((uint32_t)a ^ bert__hash_mix((uint32_t)(a >> 32)));
}

// id of s[0,n) (of "##" + s[0,n) when cont), or -1
static int bert__vocab_find(const bert_vocab *v, int cont, const char *s, size_t n) {
    size_t pre = cont ? 2 : 0;
    for (uint32_t i = bert__vocab_slot(v, cont, s, n);; i = (i + 1) & v->slot_mask) {
        int32_t id = v->slot[i];
        if (id < 0) return -1;
        const char *t = v->text + v->offset[id];
        if (v->len[id] == pre + n && (!cont || (t[0] == '#' && t[1] == '#')) && (!n || memcmp(t + pre, s, n) == 0))
            return id;
    }
}

static int bert__is_pyspace(uint32_t c) {   // str.isspace()
    for (size_t i = 0; i < sizeof bert__uc_space / sizeof *bert__uc_space; i++)
        if (bert__uc_space[i] == c) return 1;
    return 0;
}

BERTDEF void bert_vocab_free(bert_vocab *v) {
    if (!v) return;
    BERT_FREE(v->text); BERT_FREE(v->offset); BERT_FREE(v->len); BERT_FREE(v->slot);
    BERT_FREE(v);
}

BERTDEF bert_vocab *bert_vocab_parse(const char *text, size_t len, const char *source) {
    const char *src = source ? source : "vocab";
    size_t lines = 0, slots = 16;
    if (!text && len) { bert__err(BERT_ERR_ARG, "%s: text is NULL", src); return NULL; }
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    if (len && text[len - 1] != '\n') lines++;   // a last line without its newline
    if (lines == 0) { bert__err(BERT_ERR_FORMAT, "%s: empty vocab", src); return NULL; }
    if (lines > (size_t)1 << 24) {   // the config's vocab_size cap; it keeps offsets and ids far from overflow
        bert__err(BERT_ERR_FORMAT, "%s: %zu lines is too many (at most 16777216)", src, lines);
        return NULL;
    }
    if (len >= (size_t)1 << 31) { bert__err(BERT_ERR_FORMAT, "%s: %zu bytes is too large for a vocab (under 2 GB)", src, len); return NULL; }
    while (slots < 2 * lines) slots *= 2;
    bert_vocab *v = (bert_vocab *)bert__calloc(1, sizeof *v);
    if (!v) return NULL;
    v->text = (char *)bert__malloc(len + 1);
    v->offset = (uint32_t *)bert__calloc(lines, sizeof *v->offset);
    v->len = (uint32_t *)bert__calloc(lines, sizeof *v->len);
    v->slot = (int32_t *)bert__calloc(slots, sizeof *v->slot);
    if (!v->text || !v->offset || !v->len || !v->slot) { bert_vocab_free(v); return NULL; }
    if (len) memcpy(v->text, text, len);
    v->text[len] = 0;
    memset(v->slot, 0xFF, slots * sizeof *v->slot);   // -1: empty
    v->slot_mask = (uint32_t)(slots - 1);
    v->hash_seed = bert__vocab_seed(v);
    v->pad_id = v->unk_id = v->cls_id = v->sep_id = v->mask_id = -1;
    v->mode = BERT_TOKENIZE_GOOGLE;
    const unsigned char *u = (const unsigned char *)v->text;
    size_t pos = 0;
    for (size_t line = 1; line <= lines; line++) {
        size_t end = pos, first = (size_t)-1, last = pos;   // [first, last): the stripped token
        while (end < len && u[end] != '\n') end++;
        for (size_t i = pos, n; i < end; i += n) {
            if (!u[i]) { bert__err(BERT_ERR_FORMAT, "%s: line %zu: NUL byte", src, line); bert_vocab_free(v); return NULL; }
            if (!(n = bert__io_utf8_len(u + i, end - i))) {
                bert__err(BERT_ERR_FORMAT, "%s: line %zu: invalid UTF-8", src, line);
                bert_vocab_free(v); return NULL;
            }
            size_t used;
            if (!bert__is_pyspace(bert__utf8_decode(u + i, n, &used))) { if (first == (size_t)-1) first = i; last = i + n; }
        }
        if (first == (size_t)-1) first = last = pos;
        if (last - first > BERT__VOCAB_MAX_TOKEN) {
            bert__err(BERT_ERR_FORMAT, "%s: line %zu: token longer than %d bytes", src, line, BERT__VOCAB_MAX_TOKEN);
            bert_vocab_free(v); return NULL;
        }
        int dup = bert__vocab_find(v, 0, v->text + first, last - first);
        if (dup >= 0) {
            bert__err(BERT_ERR_FORMAT, "%s: line %zu: token '%.*s' already on line %d", src, line,
                      (int)(last - first), v->text + first, dup + 1);
            bert_vocab_free(v); return NULL;
        }
        int id = v->size++;
        v->offset[id] = (uint32_t)first;
        v->len[id] = (uint32_t)(last - first);
        if ((int)(last - first) > v->max_len) v->max_len = (int)(last - first);
        uint32_t i = bert__vocab_slot(v, 0, v->text + first, last - first);
        while (v->slot[i] >= 0) i = (i + 1) & v->slot_mask;
        v->slot[i] = id;
        v->text[last] = 0;   // last <= end: the newline, stripped space or the final NUL
        pos = end + 1;
    }
    v->pad_id = bert__vocab_find(v, 0, "[PAD]", 5);
    v->unk_id = bert__vocab_find(v, 0, "[UNK]", 5);
    v->cls_id = bert__vocab_find(v, 0, "[CLS]", 5);
    v->sep_id = bert__vocab_find(v, 0, "[SEP]", 5);
    v->mask_id = bert__vocab_find(v, 0, "[MASK]", 6);
    return v;
}

BERTDEF bert_vocab *bert_vocab_load(const char *path) {
    unsigned char *data;
    size_t size;
    if (bert__read_file(path, &data, &size)) return NULL;
    bert_vocab *v = bert_vocab_parse((const char *)data, size, path);
    BERT_FREE(data);
    return v;
}

BERTDEF int bert_vocab_size(const bert_vocab *v) { return v ? v->size : 0; }

BERTDEF int bert_vocab_id(const bert_vocab *v, const char *tok, size_t len) {
    return v && (tok || !len) && len <= (size_t)v->max_len ? bert__vocab_find(v, 0, tok, len) : -1;
}

BERTDEF const char *bert_vocab_token(const bert_vocab *v, int id) {
    return v && id >= 0 && id < v->size ? v->text + v->offset[id] : NULL;
}

BERTDEF int bert_vocab_set_mode(bert_vocab *v, bert_tokenize_mode mode) {
    if (!v || (mode != BERT_TOKENIZE_GOOGLE && mode != BERT_TOKENIZE_HF))
        return bert__err(BERT_ERR_ARG, "bert_vocab_set_mode: NULL vocab or mode %d (BERT_TOKENIZE_GOOGLE or _HF)", (int)mode);
    v->mode = mode;
    return BERT_OK;
}

// ---- the tokenizer proper

typedef struct { uint32_t *cp; int32_t *begin, *end; size_t n, cap; } bert__tchars;   // chars + source spans

static int bert__tchars_push(bert__tchars *t, uint32_t cp, int32_t begin, int32_t end) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        uint32_t *c = (uint32_t *)bert__malloc(cap * sizeof *c);
        int32_t *b = (int32_t *)bert__malloc(cap * sizeof *b), *e = (int32_t *)bert__malloc(cap * sizeof *e);
        if (!c || !b || !e) { BERT_FREE(c); BERT_FREE(b); BERT_FREE(e); return BERT_ERR_OOM; }
        if (t->n) { memcpy(c, t->cp, t->n * sizeof *c); memcpy(b, t->begin, t->n * sizeof *b); memcpy(e, t->end, t->n * sizeof *e); }
        BERT_FREE(t->cp); BERT_FREE(t->begin); BERT_FREE(t->end);
        t->cp = c; t->begin = b; t->end = e; t->cap = cap;
    }
    t->cp[t->n] = cp; t->begin[t->n] = begin; t->end[t->n] = end; t->n++;
    return BERT_OK;
}

typedef struct {
    const bert_vocab *v;           // WordPiece into ids/begin/end; NULL: basic words into out
    int32_t *ids, *begin, *end;
    int cap, count;
    char *out;
    size_t out_cap, out_len;
    int hf;                        // BERT_TOKENIZE_HF's rules, else tokenization.py's
} bert__tok_out;

static void bert__tok_emit(bert__tok_out *o, int id, int32_t begin, int32_t end) {
    if (o->count < o->cap) {
        o->ids[o->count] = id;
        if (o->begin) o->begin[o->count] = begin;
        if (o->end) o->end[o->count] = end;
    }
    o->count++;
}

static void bert__tok_span(const bert__tchars *t, size_t from, size_t to, int32_t *begin, int32_t *end) {
    *begin = t->begin[from]; *end = t->end[from];   // reordering may have moved a char: min and max
    for (size_t i = from + 1; i < to; i++) {
        if (t->begin[i] < *begin) *begin = t->begin[i];
        if (t->end[i] > *end) *end = t->end[i];
    }
}

// one word (chars [from, to) of t): WordPiece, or appended to the basic tokenizer's string
static int bert__tok_word(bert__tok_out *o, const bert__tchars *t, size_t from, size_t to) {
    char buf[4 * BERT__WORDPIECE_MAX_CHARS + 4];
    size_t n = to - from, at[BERT__WORDPIECE_MAX_CHARS + 1];
    if (!o->v) {   // the basic tokenizer's words, joined by spaces (a NUL always fits: +1 < cap)
        for (size_t i = from; i < to; i++) {
            size_t k = 0;
            if (i == from && o->out_len) buf[k++] = ' ';
            k += bert__utf8_put(buf + k, t->cp[i]);
            for (size_t j = 0; j < k; j++, o->out_len++)
                if (o->out_len + 1 < o->out_cap) o->out[o->out_len] = buf[j];
        }
        return BERT_OK;
    }
    const bert_vocab *v = o->v;
    int id[BERT__WORDPIECE_MAX_CHARS], np = 0;
    size_t cut[BERT__WORDPIECE_MAX_CHARS + 1];
    if (n <= (o->hf ? BERT__WORDPIECE_MAX_CHARS_HF : BERT__WORDPIECE_MAX_CHARS)) {
        at[0] = 0;
        for (size_t i = 0; i < n; i++) at[i + 1] = at[i] + bert__utf8_put(buf + at[i], t->cp[from + i]);
        cut[0] = 0;
        size_t fit = 0;   // the last end whose piece is not longer than the vocab's longest token
        for (size_t start = 0; start < n; ) {   // the longest vocab entry that starts here
            size_t room = (size_t)v->max_len, end;   // bytes a piece may have; "##" takes 2 after the start
            room = start ? (room > 2 ? room - 2 : 0) : room;
            if (fit < start) fit = start;
            while (fit < n && at[fit + 1] - at[start] <= room) fit++;   // it only moves forward, except
            while (fit > start && at[fit] - at[start] > room) fit--;    // when the "##" room shrinks
            int found = -1;
            for (end = fit; end > start; end--)   // longest first, as tokenization.py: only lengths that fit
                if ((found = bert__vocab_find(v, start > 0, buf + at[start], at[end] - at[start])) >= 0) break;
            if (found < 0) { np = -1; break; }
            id[np++] = found;
            cut[np] = start = end;
        }
    } else {
        np = -1;
    }
    int32_t b, e;
    if (np < 0) {
        if (v->unk_id < 0) return bert__err(BERT_ERR_ARG, "bert_tokenize: a word needs [UNK] and the vocab has none");
        bert__tok_span(t, from, to, &b, &e);
        bert__tok_emit(o, v->unk_id, b, e);
    }
    for (int p = 0; p < np; p++) {
        bert__tok_span(t, from + cut[p], from + cut[p + 1], &b, &e);
        bert__tok_emit(o, id[p], b, e);
    }
    return BERT_OK;
}

// one whitespace-separated token of the cleaned text (raw): normalise, split on punctuation
static int bert__tok_token(int lower, bert__tchars *raw, bert__tchars *norm, bert__tok_out *o) {
    bert__tchars *t = raw;
    int rc = BERT_OK;
    if (!raw->n) return BERT_OK;
    if (lower) {   // lower() + NFD, the marks of nonzero class already left out by the tables
        t = norm;
        norm->n = 0;
        for (size_t i = 0; i < raw->n && !rc; i++) {
            uint32_t c = raw->cp[i], m[3];
            int k = 1;
            if (bert__uc_class_of(c) == BERT__UC_GONE) continue;
            if (c == 0x3A3) m[0] = !o->hf && bert__final_sigma(raw->cp, raw->n, i) ? 0x3C2 : 0x3C3;   // HF: no Final_Sigma
            else k = bert__uc_map_of(c, m);
            for (int j = 0; j < k && !rc; j++) rc = bert__tchars_push(norm, m[j], raw->begin[i], raw->end[i]);
        }
        for (size_t i = 1; i < norm->n && !rc; i++) {   // NFD's canonical reordering (stable)
            int cc = bert__uc_ccc_of(norm->cp[i]);
            if (!cc) continue;
            uint32_t c = norm->cp[i];
            int32_t b = norm->begin[i], e = norm->end[i];
            size_t j = i;
            for (; j > 0 && bert__uc_ccc_of(norm->cp[j - 1]) > cc; j--) {
                norm->cp[j] = norm->cp[j - 1]; norm->begin[j] = norm->begin[j - 1]; norm->end[j] = norm->end[j - 1];
            }
            norm->cp[j] = c; norm->begin[j] = b; norm->end[j] = e;
        }
    }
    size_t w = 0, word = 0;   // compact in place: drop the marks, cut words at punctuation
    for (size_t i = 0; i < t->n && !rc; i++) {
        int cls = bert__uc_class_of(t->cp[i]);
        if (lower && cls == BERT__UC_MN0) continue;
        t->cp[w] = t->cp[i]; t->begin[w] = t->begin[i]; t->end[w] = t->end[i];
        w++;
        if (cls == BERT__UC_PUNCT) {
            if (w - 1 > word) rc = bert__tok_word(o, t, word, w - 1);
            if (!rc) rc = bert__tok_word(o, t, w - 1, w);
            word = w;
        }
    }
    if (!rc && w > word) rc = bert__tok_word(o, t, word, w);
    raw->n = 0;
    return rc;
}

static int bert__tok_run(const char *fn, int lower, const char *text, size_t len, bert__tok_out *o) {
    if (!text && len) return bert__err(BERT_ERR_ARG, "%s: text is NULL", fn);
    if (len > BERT__TOK_MAX_TEXT) return bert__err(BERT_ERR_ARG, "%s: text of %zu bytes (max 256 MB)", fn, len);
    const unsigned char *s = (const unsigned char *)text;
    bert__tchars raw, norm;
    memset(&raw, 0, sizeof raw);
    memset(&norm, 0, sizeof norm);
    int rc = BERT_OK;
    for (size_t i = 0, used; i < len && !rc; i += used) {   // _clean_text + _tokenize_chinese_chars + split
        uint32_t c = bert__utf8_decode(s + i, len - i, &used);
        int cls = bert__uc_class_of(c), cjk = bert__is_cjk(c);
        if (cls == BERT__UC_CTRL && (o->hf || bert__is_google_control(c))) continue;   // Cn/Co: kept by tokenization.py
        if (cls == BERT__UC_WS || cjk) rc = bert__tok_token(lower, &raw, &norm, o);
        if (cls != BERT__UC_WS && !rc) rc = bert__tchars_push(&raw, c, (int32_t)i, (int32_t)(i + used));
        if (cjk && !rc) rc = bert__tok_token(lower, &raw, &norm, o);
    }
    if (!rc) rc = bert__tok_token(lower, &raw, &norm, o);
    BERT_FREE(raw.cp); BERT_FREE(raw.begin); BERT_FREE(raw.end);
    BERT_FREE(norm.cp); BERT_FREE(norm.begin); BERT_FREE(norm.end);
    return rc;
}

BERTDEF int bert_tokenize_spans(const bert_vocab *v, int do_lower_case, const char *text, size_t len,
                                int32_t *ids, int32_t *begin, int32_t *end, int cap) {
    if (!v || cap < 0 || (cap > 0 && !ids)) return -bert__err(BERT_ERR_ARG, "bert_tokenize: NULL vocab or ids, or cap < 0");
    bert__tok_out o;
    memset(&o, 0, sizeof o);
    o.v = v; o.ids = ids; o.begin = begin; o.end = end; o.cap = cap; o.hf = v->mode == BERT_TOKENIZE_HF;
    int rc = bert__tok_run("bert_tokenize", do_lower_case, text, len, &o);
    return rc ? -rc : o.count;
}

BERTDEF int bert_tokenize(const bert_vocab *v, int do_lower_case, const char *text, size_t len, int32_t *ids, int cap) {
    return bert_tokenize_spans(v, do_lower_case, text, len, ids, NULL, NULL, cap);
}

BERTDEF int bert_basic_tokenize_mode(bert_tokenize_mode mode, int do_lower_case, const char *text, size_t len,
                                     char *out, size_t cap) {
    if (cap && !out) return -bert__err(BERT_ERR_ARG, "bert_basic_tokenize: out is NULL");
    if (mode != BERT_TOKENIZE_GOOGLE && mode != BERT_TOKENIZE_HF) return -bert__err(BERT_ERR_ARG, "bert_basic_tokenize: mode %d", (int)mode);
    bert__tok_out o;
    memset(&o, 0, sizeof o);
    o.out = out; o.out_cap = cap; o.hf = mode == BERT_TOKENIZE_HF;
    int rc = bert__tok_run("bert_basic_tokenize", do_lower_case, text, len, &o);
    if (cap) out[o.out_len < cap ? o.out_len : cap - 1] = 0;
    return rc ? -rc : (int)o.out_len;
}

BERTDEF int bert_basic_tokenize(int do_lower_case, const char *text, size_t len, char *out, size_t cap) {
    return bert_basic_tokenize_mode(BERT_TOKENIZE_GOOGLE, do_lower_case, text, len, out, cap);
}

// ---- bert_vocab_build: counted words -> alphabet + counted prefixes and "##" suffixes -> vocab text

typedef struct { const char *s; uint32_t len; int cont; uint64_t count; } bert__vb_piece;   // ("##") s[0,len)

static int bert__vb_byte(const bert__vb_piece *p, size_t i) {   // byte i of the token as vocab.txt spells it
    return p->cont ? (i < 2 ? '#' : (unsigned char)p->s[i - 2]) : (unsigned char)p->s[i];
}

static int bert__vb_cmp_bytes(const void *a, const void *b) {   // the tokens' byte order
    const bert__vb_piece *x = (const bert__vb_piece *)a, *y = (const bert__vb_piece *)b;
    size_t nx = x->len + (x->cont ? 2u : 0u), ny = y->len + (y->cont ? 2u : 0u);
    for (size_t i = 0; i < nx && i < ny; i++) {
        int d = bert__vb_byte(x, i) - bert__vb_byte(y, i);
        if (d) return d;
    }
    return (nx > ny) - (nx < ny);
}

static int bert__vb_cmp_rank(const void *a, const void *b) {   // most frequent first, ties in byte order
    const bert__vb_piece *x = (const bert__vb_piece *)a, *y = (const bert__vb_piece *)b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return bert__vb_cmp_bytes(a, b);
}

// sorts p[0,n) by token and merges equal tokens (counts summed); returns how many are left
static size_t bert__vb_merge(bert__vb_piece *p, size_t n) {
    size_t u = 0;
    if (n) qsort(p, n, sizeof *p, bert__vb_cmp_bytes);
    for (size_t i = 0; i < n; i++) {
        if (u && !bert__vb_cmp_bytes(&p[u - 1], &p[i])) p[u - 1].count += p[i].count;
        else p[u++] = p[i];
    }
    return u;
}

static size_t bert__vb_nchars(const char *s, size_t n) {   // code points in valid UTF-8
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

// the distinct words of the text with their counts (bytes in *buf); words over 200 characters left out
// (tokenization.py's rules: the vocab built is BERT_TOKENIZE_GOOGLE's)
static int bert__vb_words(int lower, const char *text, size_t len, char **buf, bert__vb_piece **words, size_t *n) {
    bert__tok_out o;
    memset(&o, 0, sizeof o);
    int rc = bert__tok_run("bert_vocab_build", lower, text, len, &o);   // measures the words
    size_t cap = o.out_len + 1, count = 1;
    if (rc || !(*buf = (char *)bert__malloc(cap))) return rc ? rc : BERT_ERR_OOM;
    memset(&o, 0, sizeof o);
    o.out = *buf; o.out_cap = cap;
    if ((rc = bert__tok_run("bert_vocab_build", lower, text, len, &o))) return rc;
    for (size_t i = 0; i < o.out_len; i++) count += (*buf)[i] == ' ';
    if (!(*words = (bert__vb_piece *)bert__calloc(count, sizeof **words))) return BERT_ERR_OOM;
    for (char *s = *buf, *end = *buf + o.out_len, *e; s < end; s = e + 1) {
        if (!(e = (char *)memchr(s, ' ', (size_t)(end - s)))) e = end;
        if (e == s || bert__vb_nchars(s, (size_t)(e - s)) > BERT__WORDPIECE_MAX_CHARS) continue;
        bert__vb_piece w = { s, (uint32_t)(e - s), 0, 1 };
        (*words)[(*n)++] = w;
    }
    *n = bert__vb_merge(*words, *n);
    return BERT_OK;
}

/* The alphabet (cont 0) or the candidate pieces (cont 1) of the words: every character, or every
   prefix of 2+ characters and every "##" suffix of 2+ characters after 1+, each counted once per
   occurrence of its word; merged, pieces under min_frequency dropped, in rank order. NULL: OOM. */
static bert__vb_piece *bert__vb_collect(const bert__vb_piece *w, size_t nw, int pieces, uint64_t min_frequency, size_t *n) {
    size_t total = 1, k = 0;
    for (size_t i = 0; i < nw; i++) total += (pieces ? 2 : 1) * bert__vb_nchars(w[i].s, w[i].len);
    bert__vb_piece *p = (bert__vb_piece *)bert__calloc(total, sizeof *p);
    if (!p) return NULL;
    for (size_t i = 0; i < nw; i++) {
        size_t at[BERT__WORDPIECE_MAX_CHARS + 1], nc = 0;   // where each character starts, then the end
        for (uint32_t b = 0; b < w[i].len; b++) if (((unsigned char)w[i].s[b] & 0xC0) != 0x80) at[nc++] = b;
        at[nc] = w[i].len;
        for (size_t c = 0; c < nc; c++) {
            bert__vb_piece one = { w[i].s + at[c], (uint32_t)(at[c + 1] - at[c]), 0, w[i].count };
            bert__vb_piece prefix = { w[i].s, (uint32_t)at[c + 1], 0, w[i].count };
            bert__vb_piece suffix = { w[i].s + at[c], (uint32_t)(w[i].len - at[c]), 1, w[i].count };
            if (!pieces) p[k++] = one;
            if (pieces && c >= 1) p[k++] = prefix;
            if (pieces && c >= 1 && c + 2 <= nc) p[k++] = suffix;
        }
    }
    k = bert__vb_merge(p, k);
    size_t kept = 0;
    for (size_t i = 0; i < k; i++) if (!pieces || p[i].count >= min_frequency) p[kept++] = p[i];
    if (kept) qsort(p, kept, sizeof *p, bert__vb_cmp_rank);
    *n = kept;
    return p;
}

static size_t bert__vb_put(char *out, const char *s, size_t len, int cont) {   // one vocab.txt line
    if (cont) memcpy(out, "##", 2);
    memcpy(out + (cont ? 2 : 0), s, len);
    out[len + (cont ? 2 : 0)] = '\n';
    return len + (cont ? 3 : 1);
}

// the vocab text: specials, characters, "##" characters, pieces, up to vocab_size lines
static char *bert__vb_text(const bert__vb_piece *ch, size_t nch, const bert__vb_piece *pc, size_t npc, int vocab_size, size_t *len) {
    static const char *const special[5] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
    size_t room = (size_t)vocab_size - 5, nc = nch < room / 2 ? nch : room / 2, np = npc < room - 2 * nc ? npc : room - 2 * nc;
    size_t bytes = 64, n = 0;
    for (size_t i = 0; i < nc; i++) bytes += 2 * ch[i].len + 4;
    for (size_t i = 0; i < np; i++) bytes += pc[i].len + 3;
    char *out = (char *)bert__malloc(bytes);
    if (!out) return NULL;
    for (int i = 0; i < 5; i++) n += bert__vb_put(out + n, special[i], strlen(special[i]), 0);
    for (int cont = 0; cont < 2; cont++)
        for (size_t i = 0; i < nc; i++) n += bert__vb_put(out + n, ch[i].s, ch[i].len, cont);
    for (size_t i = 0; i < np; i++) n += bert__vb_put(out + n, pc[i].s, pc[i].len, pc[i].cont);
    *len = n;
    return out;
}

BERTDEF bert_vocab *bert_vocab_build(const char *text, size_t len, int do_lower_case, int vocab_size, int min_frequency) {
    if ((!text && len) || vocab_size < 6 || vocab_size > (1 << 24) || min_frequency < 1) {
        bert__err(BERT_ERR_ARG, "bert_vocab_build: need text, vocab_size in [6, 16777216] and min_frequency >= 1 (got %d and %d)",
                  vocab_size, min_frequency);
        return NULL;
    }
    char *buf = NULL, *out = NULL;
    bert__vb_piece *words = NULL, *chars = NULL, *pieces = NULL;
    size_t nw = 0, nc = 0, np = 0, n = 0;
    bert_vocab *v = NULL;
    int rc = bert__vb_words(do_lower_case, text, len, &buf, &words, &nw);
    if (!rc && !nw) rc = bert__err(BERT_ERR_ARG, "bert_vocab_build: the text has no words");
    if (!rc && (!(chars = bert__vb_collect(words, nw, 0, 0, &nc)) || !(pieces = bert__vb_collect(words, nw, 1, (uint64_t)min_frequency, &np))))
        rc = BERT_ERR_OOM;
    if (!rc && !(out = bert__vb_text(chars, nc, pieces, np, vocab_size, &n))) rc = BERT_ERR_OOM;
    if (!rc) v = bert_vocab_parse(out, n, "bert_vocab_build");
    if (rc == BERT_ERR_OOM) bert__err(rc, "bert_vocab_build: out of memory");
    BERT_FREE(buf); BERT_FREE(words); BERT_FREE(chars); BERT_FREE(pieces); BERT_FREE(out);
    return v;
}

BERTDEF int bert_vocab_save(const bert_vocab *v, const char *path) {
    if (!v || !path) return bert__err(BERT_ERR_ARG, "bert_vocab_save: NULL vocab or path");
    bert_atomic_file a;
    int rc = bert_atomic_open(&a, path), ok = 1;
    if (rc) return rc;
    errno = 0;
    for (int id = 0; ok && id < v->size; id++)
        ok = fwrite(v->text + v->offset[id], 1, v->len[id], (FILE *)a.file) == v->len[id] && fputc('\n', (FILE *)a.file) != EOF;
    return bert_atomic_close(&a, path, ok);
}

BERTDEF int bert_unicode_final_sigma(const uint32_t *cps, size_t n, size_t i) {
    return bert__final_sigma(cps, n, i);
}

// ----------------------------------------------------------------------------
// TFRecord reader/writer and the tf.train.Example codec of the pretraining schema

#define BERT__TFRECORD_MAX ((uint64_t)1 << 30)   // a record over 1 GiB is corrupt, not data

// CRC-32C (Castagnoli), polynomial 0x82F63B78 reflected, one byte at a time. The table is a
// constant (no first-use build for two threads to race on); it was generated with this Python:
//   for i in range(256):
//       c = i
//       for _ in range(8): c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
//       print("0x%08Xu," % c)
static const uint32_t bert__crc32c_table[256] = {
    0x00000000u, 0xF26B8303u, 0xE13B70F7u, 0x1350F3F4u, 0xC79A971Fu, 0x35F1141Cu, 0x26A1E7E8u, 0xD4CA64EBu,
    0x8AD958CFu, 0x78B2DBCCu, 0x6BE22838u, 0x9989AB3Bu, 0x4D43CFD0u, 0xBF284CD3u, 0xAC78BF27u, 0x5E133C24u,
    0x105EC76Fu, 0xE235446Cu, 0xF165B798u, 0x030E349Bu, 0xD7C45070u, 0x25AFD373u, 0x36FF2087u, 0xC494A384u,
    0x9A879FA0u, 0x68EC1CA3u, 0x7BBCEF57u, 0x89D76C54u, 0x5D1D08BFu, 0xAF768BBCu, 0xBC267848u, 0x4E4DFB4Bu,
    0x20BD8EDEu, 0xD2D60DDDu, 0xC186FE29u, 0x33ED7D2Au, 0xE72719C1u, 0x154C9AC2u, 0x061C6936u, 0xF477EA35u,
    0xAA64D611u, 0x580F5512u, 0x4B5FA6E6u, 0xB93425E5u, 0x6DFE410Eu, 0x9F95C20Du, 0x8CC531F9u, 0x7EAEB2FAu,
    0x30E349B1u, 0xC288CAB2u, 0xD1D83946u, 0x23B3BA45u, 0xF779DEAEu, 0x05125DADu, 0x1642AE59u, 0xE4292D5Au,
    0xBA3A117Eu, 0x4851927Du, 0x5B016189u, 0xA96AE28Au, 0x7DA08661u, 0x8FCB0562u, 0x9C9BF696u, 0x6EF07595u,
    0x417B1DBCu, 0xB3109EBFu, 0xA0406D4Bu, 0x522BEE48u, 0x86E18AA3u, 0x748A09A0u, 0x67DAFA54u, 0x95B17957u,
    0xCBA24573u, 0x39C9C670u, 0x2A993584u, 0xD8F2B687u, 0x0C38D26Cu, 0xFE53516Fu, 0xED03A29Bu, 0x1F682198u,
    0x5125DAD3u, 0xA34E59D0u, 0xB01EAA24u, 0x42752927u, 0x96BF4DCCu, 0x64D4CECFu, 0x77843D3Bu, 0x85EFBE38u,
    0xDBFC821Cu, 0x2997011Fu, 0x3AC7F2EBu, 0xC8AC71E8u, 0x1C661503u, 0xEE0D9600u, 0xFD5D65F4u, 0x0F36E6F7u,
    0x61C69362u, 0x93AD1061u, 0x80FDE395u, 0x72966096u, 0xA65C047Du, 0x5437877Eu, 0x4767748Au, 0xB50CF789u,
    0xEB1FCBADu, 0x197448AEu, 0x0A24BB5Au, 0xF84F3859u, 0x2C855CB2u, 0xDEEEDFB1u, 0xCDBE2C45u, 0x3FD5AF46u,
    0x7198540Du, 0x83F3D70Eu, 0x90A324FAu, 0x62C8A7F9u, 0xB602C312u, 0x44694011u, 0x5739B3E5u, 0xA55230E6u,
    0xFB410CC2u, 0x092A8FC1u, 0x1A7A7C35u, 0xE811FF36u, 0x3CDB9BDDu, 0xCEB018DEu, 0xDDE0EB2Au, 0x2F8B6829u,
    0x82F63B78u, 0x709DB87Bu, 0x63CD4B8Fu, 0x91A6C88Cu, 0x456CAC67u, 0xB7072F64u, 0xA457DC90u, 0x563C5F93u,
    0x082F63B7u, 0xFA44E0B4u, 0xE9141340u, 0x1B7F9043u, 0xCFB5F4A8u, 0x3DDE77ABu, 0x2E8E845Fu, 0xDCE5075Cu,
    0x92A8FC17u, 0x60C37F14u, 0x73938CE0u, 0x81F80FE3u, 0x55326B08u, 0xA759E80Bu, 0xB4091BFFu, 0x466298FCu,
    0x1871A4D8u, 0xEA1A27DBu, 0xF94AD42Fu, 0x0B21572Cu, 0xDFEB33C7u, 0x2D80B0C4u, 0x3ED04330u, 0xCCBBC033u,
    0xA24BB5A6u, 0x502036A5u, 0x4370C551u, 0xB11B4652u, 0x65D122B9u, 0x97BAA1BAu, 0x84EA524Eu, 0x7681D14Du,
    0x2892ED69u, 0xDAF96E6Au, 0xC9A99D9Eu, 0x3BC21E9Du, 0xEF087A76u, 0x1D63F975u, 0x0E330A81u, 0xFC588982u,
    0xB21572C9u, 0x407EF1CAu, 0x532E023Eu, 0xA145813Du, 0x758FE5D6u, 0x87E466D5u, 0x94B49521u, 0x66DF1622u,
    0x38CC2A06u, 0xCAA7A905u, 0xD9F75AF1u, 0x2B9CD9F2u, 0xFF56BD19u, 0x0D3D3E1Au, 0x1E6DCDEEu, 0xEC064EEDu,
    0xC38D26C4u, 0x31E6A5C7u, 0x22B65633u, 0xD0DDD530u, 0x0417B1DBu, 0xF67C32D8u, 0xE52CC12Cu, 0x1747422Fu,
    0x49547E0Bu, 0xBB3FFD08u, 0xA86F0EFCu, 0x5A048DFFu, 0x8ECEE914u, 0x7CA56A17u, 0x6FF599E3u, 0x9D9E1AE0u,
    0xD3D3E1ABu, 0x21B862A8u, 0x32E8915Cu, 0xC083125Fu, 0x144976B4u, 0xE622F5B7u, 0xF5720643u, 0x07198540u,
    0x590AB964u, 0xAB613A67u, 0xB831C993u, 0x4A5A4A90u, 0x9E902E7Bu, 0x6CFBAD78u, 0x7FAB5E8Cu, 0x8DC0DD8Fu,
    0xE330A81Au, 0x115B2B19u, 0x020BD8EDu, 0xF0605BEEu, 0x24AA3F05u, 0xD6C1BC06u, 0xC5914FF2u, 0x37FACCF1u,
    0x69E9F0D5u, 0x9B8273D6u, 0x88D28022u, 0x7AB90321u, 0xAE7367CAu, 0x5C18E4C9u, 0x4F48173Du, 0xBD23943Eu,
    0xF36E6F75u, 0x0105EC76u, 0x12551F82u, 0xE03E9C81u, 0x34F4F86Au, 0xC69F7B69u, 0xD5CF889Du, 0x27A40B9Eu,
    0x79B737BAu, 0x8BDCB4B9u, 0x988C474Du, 0x6AE7C44Eu, 0xBE2DA0A5u, 0x4C4623A6u, 0x5F16D052u, 0xAD7D5351u,
};

BERTDEF uint32_t bert_crc32c(uint32_t crc, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    crc = ~crc;
    while (n--) crc = bert__crc32c_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

// TFRecord stores CRCs rotated and offset, so a CRC of data containing CRCs stays well behaved
static uint32_t bert__crc_masked(const void *data, size_t n) {
    uint32_t c = bert_crc32c(0, data, n);
    return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

static void bert__put_le(unsigned char *b, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) b[i] = (unsigned char)(v >> (8 * i));
}

BERTDEF int bert_tfrecord_open(bert_tfrecord *r, const char *path) {
    memset(r, 0, sizeof *r);
    FILE *f = (FILE *)bert_open_input(path);
    bert__off n = -1;
    if (!f) return BERT_ERR_IO;
    if (f && bert__fseek(f, 0, SEEK_END) == 0) n = bert__ftell(f);
    if (!f || n < 0 || bert__fseek(f, 0, SEEK_SET) != 0) {
        int e = errno;
        if (f) fclose(f);
        return bert__err(BERT_ERR_IO, "%s: %s", path, e ? strerror(e) : "cannot read");
    }
    r->file = f;
    r->size = (uint64_t)n;
    if (!(r->path = bert__strdup(path))) { bert_tfrecord_close(r); return BERT_ERR_OOM; }
    return BERT_OK;
}

BERTDEF void bert_tfrecord_close(bert_tfrecord *r) {
    if (r->file) fclose((FILE *)r->file);
    BERT_FREE(r->path);
    BERT_FREE(r->data);
    memset(r, 0, sizeof *r);
}

BERTDEF int bert_tfrecord_seek(bert_tfrecord *r, uint64_t offset, uint64_t record) {
    if (offset > r->size || bert__fseek((FILE *)r->file, (bert__off)offset, SEEK_SET) != 0)
        return bert__err(BERT_ERR_IO, "%s: cannot seek to byte %llu", r->path, (unsigned long long)offset);
    r->offset = offset; r->record = record; r->eof = 0;
    return BERT_OK;
}

static int bert__tfrecord_fail(bert_tfrecord *r, const char *what) {
    return bert__err(BERT_ERR_FORMAT, "%s: record %llu (byte %llu): %s", r->path,
                     (unsigned long long)r->record, (unsigned long long)r->offset, what);
}

// the length of the record at r->offset, its CRC checked and its data known to fit in the file
static int bert__tfrecord_header(bert_tfrecord *r, uint64_t *len) {
    unsigned char head[12];
    if (r->size - r->offset < 16 || fread(head, 1, 12, (FILE *)r->file) != 12)
        return bert__tfrecord_fail(r, "truncated (file ends inside the record header)");
    *len = bert__io_le64(head);
    if (bert__crc_masked(head, 8) != bert__io_le32(head + 8))
        return bert__tfrecord_fail(r, "length CRC mismatch (corrupt header)");
    if (*len > BERT__TFRECORD_MAX || *len > r->size - r->offset - 16)
        return bert__tfrecord_fail(r, "declared length runs past the end of the file (truncated?)");
    return BERT_OK;
}

BERTDEF int bert_tfrecord_next(bert_tfrecord *r) {
    FILE *f = (FILE *)r->file;
    unsigned char foot[4];
    uint64_t len;
    int rc;
    r->len = 0;
    if (r->offset == r->size) { r->eof = 1; return BERT_OK; }
    if ((rc = bert__tfrecord_header(r, &len))) return rc;
    if (len + 1 > r->cap) {
        unsigned char *d = (unsigned char *)bert__malloc((size_t)len + 1);
        if (!d) return BERT_ERR_OOM;
        BERT_FREE(r->data);
        r->data = d; r->cap = (size_t)len + 1;
    }
    if (fread(r->data, 1, (size_t)len, f) != len || fread(foot, 1, 4, f) != 4)
        return bert__tfrecord_fail(r, "short read");
    if (bert__crc_masked(r->data, (size_t)len) != bert__io_le32(foot))
        return bert__tfrecord_fail(r, "data CRC mismatch (corrupt record)");
    r->len = (size_t)len;
    r->offset += len + 16;
    r->record++;
    return BERT_OK;
}

BERTDEF int bert_tfrecord_index(const char *path, uint64_t **offsets, size_t *count) {
    bert_tfrecord r;
    uint64_t *off = NULL;
    size_t n = 0, cap = 0;
    int rc = bert_tfrecord_open(&r, path);
    *offsets = NULL; *count = 0;
    while (!rc && r.offset < r.size) {
        uint64_t len;
        if ((rc = bert__tfrecord_header(&r, &len))) break;
        if (n == cap) {
            uint64_t *grown = (uint64_t *)bert__malloc((cap = cap ? 2 * cap : 1024) * sizeof *grown);
            if (!grown) { rc = BERT_ERR_OOM; break; }
            if (n) memcpy(grown, off, n * sizeof *off);
            BERT_FREE(off);
            off = grown;
        }
        off[n++] = r.offset;
        if ((rc = bert_tfrecord_seek(&r, r.offset + len + 16, r.record + 1))) break;
    }
    bert_tfrecord_close(&r);
    if (rc) { BERT_FREE(off); return rc; }
    *offsets = off; *count = n;
    return BERT_OK;
}

BERTDEF int bert_tfrecord_write(void *file, const void *data, size_t len) {
    unsigned char head[12], foot[4];
    bert__put_le(head, len, 8);
    bert__put_le(head + 8, bert__crc_masked(head, 8), 4);
    bert__put_le(foot, bert__crc_masked(data, len), 4);
    FILE *f = (FILE *)file;
    if (fwrite(head, 1, 12, f) != 12 || fwrite(data, 1, len, f) != len || fwrite(foot, 1, 4, f) != 4)
        return bert__err(BERT_ERR_IO, "write failed: %s", strerror(errno));
    return BERT_OK;
}

// -- protobuf wire format: just what tf.train.Example needs

typedef struct { const unsigned char *p, *end; } bert__pb;

static int bert__pb_varint(bert__pb *b, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) return 0;
        unsigned char c = *b->p++;
        x |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) { *v = x; return 1; }
    }
    return 0;   // over 10 bytes
}

// the next field: its number, wire type and (for length-delimited fields) its payload
static int bert__pb_field(bert__pb *b, uint32_t *field, int *wire, bert__pb *payload, uint64_t *value) {
    uint64_t key, n;
    if (!bert__pb_varint(b, &key) || (key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) return 0;
    *field = (uint32_t)(key >> 3); *wire = (int)(key & 7);
    switch (*wire) {
    case 0: return bert__pb_varint(b, value);
    case 1: n = 8; break;
    case 5: n = 4; break;
    case 2: if (!bert__pb_varint(b, &n)) return 0; break;
    default: return 0;   // groups (3, 4) are not used by tf.train.Example
    }
    if (n > (uint64_t)(b->end - b->p)) return 0;
    payload->p = b->p; payload->end = b->p + n;
    if (*wire == 5) *value = bert__io_le32(b->p);
    b->p += n;
    return 1;
}

// the schema: name, 1 = int64 / 2 = float list, length T or P
enum { BERT__F_IDS, BERT__F_MASK, BERT__F_SEG, BERT__F_POS, BERT__F_LMIDS, BERT__F_LMW, BERT__F_NSP, BERT__F_COUNT };
static const char *const bert__feature_name[BERT__F_COUNT] = {
    "input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
    "masked_lm_weights", "next_sentence_labels"};

static int bert__feature_len(const bert_pretrain_example *ex, int f) {
    return f <= BERT__F_SEG ? ex->T : f == BERT__F_NSP ? 1 : ex->P;
}

static int32_t *bert__feature_ints(bert_pretrain_example *ex, int f) {
    switch (f) {
    case BERT__F_IDS: return ex->input_ids;
    case BERT__F_MASK: return ex->input_mask;
    case BERT__F_SEG: return ex->segment_ids;
    case BERT__F_POS: return ex->masked_lm_positions;
    case BERT__F_LMIDS: return ex->masked_lm_ids;
    case BERT__F_NSP: return &ex->next_sentence_label;
    default: return NULL;
    }
}

// Int64List or FloatList (field 1, packed or not) into the feature's buffer; its count must be exact
static int bert__feature_values(bert_pretrain_example *ex, int f, int kind, bert__pb list, char *err, size_t errn) {
    const char *name = bert__feature_name[f];
    int want = bert__feature_len(ex, f), n = 0;
    int is_float = f == BERT__F_LMW;
    if (kind != (is_float ? 2 : 3)) {
        snprintf(err, errn, "feature %s: expected a%s list", name, is_float ? " float" : "n int64");
        return 0;
    }
    while (list.p < list.end) {
        uint32_t field; int wire; bert__pb pl; uint64_t v = 0;
        if (!bert__pb_field(&list, &field, &wire, &pl, &v)) { snprintf(err, errn, "feature %s: bad protobuf", name); return 0; }
        if (field != 1) continue;
        bert__pb run = pl;
        int packed = wire == 2, per = is_float ? 4 : 0;
        if (!packed && wire != (is_float ? 5 : 0)) { snprintf(err, errn, "feature %s: bad wire type", name); return 0; }
        for (;;) {
            if (packed) {
                if (run.p >= run.end) break;
                if (is_float) {
                    if (run.end - run.p < per) { snprintf(err, errn, "feature %s: truncated float", name); return 0; }
                    v = bert__io_le32(run.p); run.p += per;
                } else if (!bert__pb_varint(&run, &v)) { snprintf(err, errn, "feature %s: bad varint", name); return 0; }
            }
            if (n >= want) { snprintf(err, errn, "feature %s: more than %d values (expected %d)", name, want, want); return 0; }
            if (is_float) {
                uint32_t bits = (uint32_t)v; float x;
                memcpy(&x, &bits, 4);
                ex->masked_lm_weights[n++] = x;
            } else {
                int64_t s = (int64_t)v;
                if (s < INT32_MIN || s > INT32_MAX) { snprintf(err, errn, "feature %s: value %lld out of int32 range", name, (long long)s); return 0; }
                bert__feature_ints(ex, f)[n++] = (int32_t)s;
            }
            if (!packed) break;
        }
    }
    if (n != want) { snprintf(err, errn, "feature %s: %d values, expected %d", name, n, want); return 0; }
    return 1;
}

// one map entry of Features: key (1) -> Feature (2), whose oneof is bytes (1) / float (2) / int64 (3)
static int bert__feature_entry(bert_pretrain_example *ex, bert__pb entry, unsigned *seen, char *err, size_t errn) {
    bert__pb key = {NULL, NULL}, value = {NULL, NULL};
    while (entry.p < entry.end) {
        uint32_t field; int wire; bert__pb pl; uint64_t v;
        if (!bert__pb_field(&entry, &field, &wire, &pl, &v)) { snprintf(err, errn, "bad protobuf in a feature entry"); return 0; }
        if (wire == 2 && field == 1) key = pl;
        if (wire == 2 && field == 2) value = pl;
    }
    int f = 0;
    while (f < BERT__F_COUNT && !(key.p && strlen(bert__feature_name[f]) == (size_t)(key.end - key.p) &&
                                  !memcmp(bert__feature_name[f], key.p, (size_t)(key.end - key.p)))) f++;
    if (f == BERT__F_COUNT) return 1;   // a feature this schema does not use
    if (*seen & (1u << f)) { snprintf(err, errn, "feature %s appears twice", bert__feature_name[f]); return 0; }
    *seen |= 1u << f;
    int kind = 0;
    bert__pb list = {NULL, NULL};
    while (value.p && value.p < value.end) {
        uint32_t field; int wire; bert__pb pl; uint64_t v;
        if (!bert__pb_field(&value, &field, &wire, &pl, &v)) { snprintf(err, errn, "feature %s: bad protobuf", bert__feature_name[f]); return 0; }
        if (wire == 2 && field >= 1 && field <= 3) { kind = (int)field; list = pl; }
    }
    return bert__feature_values(ex, f, kind, list, err, errn);
}

static int bert__example_check(const bert_pretrain_example *ex, int vocab_size, char *err, size_t errn) {
    for (int t = 0; t < ex->T; t++) {
        if (ex->input_ids[t] < 0 || (vocab_size > 0 && ex->input_ids[t] >= vocab_size))
            return snprintf(err, errn, "input_ids[%d] = %d outside the vocabulary", t, ex->input_ids[t]), 0;
        if ((ex->input_mask[t] | ex->segment_ids[t]) & ~1)
            return snprintf(err, errn, "input_mask/segment_ids[%d] not 0 or 1", t), 0;
    }
    for (int p = 0; p < ex->P; p++) {
        float w = ex->masked_lm_weights[p];
        if (!(w >= 0.0f && w <= 1.0f)) return snprintf(err, errn, "masked_lm_weights[%d] not in [0,1]", p), 0;
        if (w == 0.0f) continue;
        if (ex->masked_lm_positions[p] < 0 || ex->masked_lm_positions[p] >= ex->T)
            return snprintf(err, errn, "masked_lm_positions[%d] = %d outside [0,%d)", p, ex->masked_lm_positions[p], ex->T), 0;
        if (ex->masked_lm_ids[p] < 0 || (vocab_size > 0 && ex->masked_lm_ids[p] >= vocab_size))
            return snprintf(err, errn, "masked_lm_ids[%d] = %d outside the vocabulary", p, ex->masked_lm_ids[p]), 0;
    }
    if (ex->next_sentence_label & ~1) return snprintf(err, errn, "next_sentence_labels = %d, not 0 or 1", ex->next_sentence_label), 0;
    return 1;
}

BERTDEF int bert_example_decode(bert_pretrain_example *ex, const unsigned char *data, size_t len, int vocab_size) {
    char err[200] = "";
    unsigned seen = 0;
    bert__pb b = {data, data + len};
    if (ex->T <= 0 || ex->P <= 0) return bert__err(BERT_ERR_ARG, "example: T and P must be positive");
    while (b.p < b.end) {   // Example: features (1) -> Features: repeated entry (1)
        uint32_t field; int wire; bert__pb feats; uint64_t v;
        if (!bert__pb_field(&b, &field, &wire, &feats, &v)) return bert__err(BERT_ERR_FORMAT, "not a tf.train.Example (bad protobuf)");
        if (field != 1 || wire != 2) continue;
        while (feats.p < feats.end) {
            bert__pb entry;
            if (!bert__pb_field(&feats, &field, &wire, &entry, &v)) return bert__err(BERT_ERR_FORMAT, "bad protobuf in Features");
            if (field == 1 && wire == 2 && !bert__feature_entry(ex, entry, &seen, err, sizeof err))
                return bert__err(BERT_ERR_FORMAT, "%s", err);
        }
    }
    for (int f = 0; f < BERT__F_COUNT; f++)
        if (!(seen & (1u << f))) return bert__err(BERT_ERR_FORMAT, "feature %s missing", bert__feature_name[f]);
    if (!bert__example_check(ex, vocab_size, err, sizeof err)) return bert__err(BERT_ERR_FORMAT, "%s", err);
    return BERT_OK;
}

BERTDEF int bert_tfrecord_next_example(bert_tfrecord *r, bert_pretrain_example *ex, int vocab_size) {
    int rc = bert_tfrecord_next(r);
    if (rc || r->eof) return rc;
    if ((rc = bert_example_decode(ex, r->data, r->len, vocab_size))) {
        char what[sizeof bert__error_message];
        snprintf(what, sizeof what, "%s", bert__error_message);
        r->record--; r->offset -= r->len + 16;   // name the record that failed
        rc = bert__tfrecord_fail(r, what);
        r->record++; r->offset += r->len + 16;
    }
    return rc;
}

// -- encoding: protobuf written back to front would be shorter, but two passes read better

static size_t bert__pb_varint_len(uint64_t v) { size_t n = 1; while (v >= 0x80) { v >>= 7; n++; } return n; }

typedef struct { unsigned char *p; size_t n, cap; } bert__pbw;

static void bert__pbw_byte(bert__pbw *w, unsigned char c) { if (w->n < w->cap) w->p[w->n] = c; w->n++; }
static void bert__pbw_varint(bert__pbw *w, uint64_t v) {
    while (v >= 0x80) { bert__pbw_byte(w, (unsigned char)(v | 0x80)); v >>= 7; }
    bert__pbw_byte(w, (unsigned char)v);
}

// the packed list payload of feature f and its size
static size_t bert__feature_list(bert__pbw *w, const bert_pretrain_example *ex, int f) {
    int n = bert__feature_len(ex, f);
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        if (f == BERT__F_LMW) {
            uint32_t bits; memcpy(&bits, &ex->masked_lm_weights[i], 4);
            bytes += 4;
            if (w) for (int k = 0; k < 4; k++) bert__pbw_byte(w, (unsigned char)(bits >> (8 * k)));
        } else {
            uint64_t v = (uint64_t)(int64_t)bert__feature_ints((bert_pretrain_example *)ex, f)[i];
            bytes += bert__pb_varint_len(v);
            if (w) bert__pbw_varint(w, v);
        }
    }
    return bytes;
}

BERTDEF size_t bert_example_encode(unsigned char *buf, size_t cap, const bert_pretrain_example *ex) {
    bert__pbw w = {buf, 0, cap};
    size_t entry_len[BERT__F_COUNT], features = 0;
    for (int f = 0; f < BERT__F_COUNT; f++) {   // entry = key + Feature{ list{ packed values } }
        size_t vals = bert__feature_list(NULL, ex, f);
        size_t list = 1 + bert__pb_varint_len(vals) + vals;
        size_t feat = 1 + bert__pb_varint_len(list) + list;
        size_t key = strlen(bert__feature_name[f]);
        entry_len[f] = 1 + bert__pb_varint_len(key) + key + 1 + bert__pb_varint_len(feat) + feat;
        features += 1 + bert__pb_varint_len(entry_len[f]) + entry_len[f];
    }
    bert__pbw_byte(&w, 0x0A); bert__pbw_varint(&w, features);
    for (int f = 0; f < BERT__F_COUNT; f++) {
        size_t vals = bert__feature_list(NULL, ex, f), list = 1 + bert__pb_varint_len(vals) + vals;
        size_t key = strlen(bert__feature_name[f]);
        bert__pbw_byte(&w, 0x0A); bert__pbw_varint(&w, entry_len[f]);
        bert__pbw_byte(&w, 0x0A); bert__pbw_varint(&w, key);
        for (size_t i = 0; i < key; i++) bert__pbw_byte(&w, (unsigned char)bert__feature_name[f][i]);
        bert__pbw_byte(&w, 0x12); bert__pbw_varint(&w, 1 + bert__pb_varint_len(list) + list);
        bert__pbw_byte(&w, f == BERT__F_LMW ? 0x12 : 0x1A); bert__pbw_varint(&w, list);
        bert__pbw_byte(&w, 0x0A); bert__pbw_varint(&w, vals);
        bert__feature_list(&w, ex, f);
    }
    return w.n;
}

// ----------------------------------------------------------------------------
// create_pretraining_data

BERTDEF bert_pretrain_data_opts bert_pretrain_data_defaults(void) {
    bert_pretrain_data_opts o;
    memset(&o, 0, sizeof o);
    o.max_seq_length = 128; o.max_predictions_per_seq = 20; o.dupe_factor = 10;
    o.masked_lm_prob = 0.15f; o.short_seq_prob = 0.1f; o.seed = 12345;
    o.cls_id = 101; o.sep_id = 102; o.mask_id = 103;
    return o;
}

typedef struct { uint64_t stream, counter; } bert__rng;   // a sequential view of the counter RNG

static double bert__rng_double(bert__rng *r) { return (double)(bert__mix(r->stream ^ r->counter++) >> 11) * (1.0 / 9007199254740992.0); }   // 53 bits
static int bert__rng_int(bert__rng *r, int lo, int hi) {   // inclusive, as Python's randint
    return lo + (int)(bert__mix(r->stream ^ r->counter++) % (uint64_t)(hi - lo + 1));
}
static void bert__rng_shuffle(bert__rng *r, int32_t *a, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(bert__mix(r->stream ^ r->counter++) % (uint64_t)i);
        int32_t t = a[i - 1]; a[i - 1] = a[j]; a[j] = t;
    }
}

typedef struct { int32_t *v; size_t n, cap; } bert__ivec;
static int bert__ivec_push(bert__ivec *a, int32_t x) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 256;
        int32_t *v = (int32_t *)bert__malloc(cap * sizeof(int32_t));
        if (!v) return 0;
        if (a->n) memcpy(v, a->v, a->n * sizeof(int32_t));
        BERT_FREE(a->v);
        a->v = v; a->cap = cap;
    }
    a->v[a->n++] = x;
    return 1;
}

typedef struct {
    const bert_corpus *c;
    const bert_pretrain_data_opts *o;
    bert__rng rng;
    size_t *sent_start;     // (num_sents) offset of each sentence in c->ids
    int32_t *doc_first;     // (num_docs) first sentence of each document
    int32_t *docs;          // document order (shuffled), only non-empty ones
    int ndocs;
    bert__ivec store;       // instances back to back: [len, a_len, nsp, npred, tokens[len], pos[npred], label[npred]]
    bert__ivec index;       // where each instance starts in store
} bert__cpd;

static int bert__cpd_push_all(bert__ivec *v, const int32_t *x, int n) {
    for (int i = 0; i < n; i++) if (!bert__ivec_push(v, x[i])) return 0;
    return 1;
}

// masks tokens[0..n) in place (CLS/SEP never); writes sorted positions and labels; returns the count.
// Candidates are the positions other than CLS/SEP, in order; with whole-word masking a "##" piece
// joins the previous candidate's group, even across a [SEP] (as google-research/bert does).

/* Google's num_to_predict = min(max_predictions_per_seq, max(1, int(round(len(tokens) * masked_lm_prob))))
   in Python 3: masked_lm_prob is the double of what was typed (0.15, not the float 0.15f widened,
   0.15000000596...), and round() goes half to even (30 tokens: 4.5 -> 4, not 5). The float is turned
   back into its shortest decimal, which is what was typed for any flag value a float holds exactly
   enough, and read as a double; nearbyint rounds half to even. */
static int bert__num_to_predict(int n, float masked_lm_prob, int max_predictions) {
    char buf[32];
    bert__float_shortest(buf, sizeof buf, masked_lm_prob);
    int want = (int)nearbyint((double)n * strtod(buf, NULL));
    if (want < 1) want = 1;
    return want > max_predictions ? max_predictions : want;
}

static int bert__cpd_mask(bert__cpd *s, int32_t *tokens, int n, int32_t *pos, int32_t *label, int32_t *work) {
    const bert_pretrain_data_opts *o = s->o;
    int32_t *cand = work, *gstart = work + n, *order = work + 2 * n + 1;   // (n), (ngroups+1), (ngroups)
    int ncand = 0, ngroups = 0;
    for (int i = 0; i < n; i++) {
        if (tokens[i] == o->cls_id || tokens[i] == o->sep_id) continue;
        if (!(o->whole_word_mask && ngroups > 0 && o->is_continuation[tokens[i]])) gstart[ngroups++] = ncand;
        cand[ncand++] = i;
    }
    gstart[ngroups] = ncand;
    for (int g = 0; g < ngroups; g++) order[g] = g;
    bert__rng_shuffle(&s->rng, order, (size_t)ngroups);
    int want = bert__num_to_predict(n, o->masked_lm_prob, o->max_predictions_per_seq);
    int count = 0;
    for (int k = 0; k < ngroups && count < want; k++) {
        int b = gstart[order[k]], e = gstart[order[k] + 1];
        if (count + (e - b) > want) continue;
        for (int c = b; c < e; c++) {
            int i = cand[c];
            int32_t original = tokens[i], replacement = o->mask_id;
            if (bert__rng_double(&s->rng) >= 0.8) {
                if (bert__rng_double(&s->rng) < 0.5) replacement = original;
                else replacement = bert__rng_int(&s->rng, 0, o->vocab_size - 1);
            }
            tokens[i] = replacement;
            pos[count] = i; label[count] = original; count++;
        }
    }
    for (int i = 1; i < count; i++)   // sort by position, labels along
        for (int j = i; j > 0 && pos[j - 1] > pos[j]; j--) {
            int32_t t = pos[j]; pos[j] = pos[j - 1]; pos[j - 1] = t;
            t = label[j]; label[j] = label[j - 1]; label[j - 1] = t;
        }
    return count;
}

// drops tokens from the longer side, front or back at random, until the pair fits
static void bert__cpd_truncate(bert__cpd *s, int32_t *a, int *na, int32_t *b, int *nb, int max_tokens) {
    while (*na + *nb > max_tokens) {
        int32_t *t = *na > *nb ? a : b;
        int *nt = *na > *nb ? na : nb;
        if (bert__rng_double(&s->rng) < 0.5) memmove(t, t + 1, (size_t)(*nt - 1) * sizeof(int32_t));
        (*nt)--;
    }
}

// one document's instances (create_instances_from_document)
static int bert__cpd_document(bert__cpd *s, int di, int32_t *a, int32_t *b, int32_t *tok, int32_t *pos, int32_t *lab, int32_t *scratch) {
    const bert_corpus *c = s->c;
    const bert_pretrain_data_opts *o = s->o;
    int doc = s->docs[di], first = s->doc_first[doc], nsent = c->doc_sents[doc];
    int max_tokens = o->max_seq_length - 3, target = max_tokens;
    if (bert__rng_double(&s->rng) < o->short_seq_prob) target = bert__rng_int(&s->rng, 2, max_tokens);
    int chunk_first = 0, chunk_n = 0, chunk_len = 0;
    for (int i = 0; i < nsent; i++) {
        if (!chunk_n) chunk_first = i;
        chunk_n++;
        chunk_len += c->sent_len[first + i];
        if (i != nsent - 1 && chunk_len < target) continue;
        int a_end = chunk_n >= 2 ? bert__rng_int(&s->rng, 1, chunk_n - 1) : 1, na = 0, nb = 0, random_next = 0;
        for (int j = 0; j < a_end; j++) {   // A: the chunk's first a_end sentences
            int sj = first + chunk_first + j;
            for (int t = 0; t < c->sent_len[sj]; t++) a[na++] = c->ids[s->sent_start[sj] + (size_t)t];
        }
        if (chunk_n == 1 || bert__rng_double(&s->rng) < 0.5) {   // B from a random other document
            random_next = 1;
            int target_b = target - na, rd = 0;
            for (int k = 0; k < 10; k++) { rd = bert__rng_int(&s->rng, 0, s->ndocs - 1); if (rd != di) break; }
            int rdoc = s->docs[rd], rfirst = s->doc_first[rdoc], rn = c->doc_sents[rdoc];
            for (int j = bert__rng_int(&s->rng, 0, rn - 1); j < rn; j++) {
                int sj = rfirst + j;
                for (int t = 0; t < c->sent_len[sj]; t++) b[nb++] = c->ids[s->sent_start[sj] + (size_t)t];
                if (nb >= target_b) break;
            }
            i -= chunk_n - a_end;   // the unused sentences start the next chunk
        } else {
            for (int j = a_end; j < chunk_n; j++) {
                int sj = first + chunk_first + j;
                for (int t = 0; t < c->sent_len[sj]; t++) b[nb++] = c->ids[s->sent_start[sj] + (size_t)t];
            }
        }
        bert__cpd_truncate(s, a, &na, b, &nb, max_tokens);
        chunk_n = 0; chunk_len = 0;
        if (na < 1 || nb < 1) continue;   // GB asserts; a document of one 1-token sentence can get here
        int n = 0;
        tok[n++] = o->cls_id;
        for (int t = 0; t < na; t++) tok[n++] = a[t];
        tok[n++] = o->sep_id;
        for (int t = 0; t < nb; t++) tok[n++] = b[t];
        tok[n++] = o->sep_id;
        int np = bert__cpd_mask(s, tok, n, pos, lab, scratch);
        int32_t head[4] = { n, na + 2, random_next, np };
        if (!bert__ivec_push(&s->index, (int32_t)s->store.n) || !bert__cpd_push_all(&s->store, head, 4) ||
            !bert__cpd_push_all(&s->store, tok, n) || !bert__cpd_push_all(&s->store, pos, np) ||
            !bert__cpd_push_all(&s->store, lab, np)) return BERT_ERR_OOM;
        if (s->store.n > (size_t)INT32_MAX) return bert__err(BERT_ERR_ARG, "create_pretraining_data: over 2^31 stored ids; split the input");
    }
    return BERT_OK;
}

static int bert__cpd_emit(bert__cpd *s, int (*emit)(const bert_pretrain_example *, void *), void *user) {
    const bert_pretrain_data_opts *o = s->o;
    int T = o->max_seq_length, P = o->max_predictions_per_seq, rc = BERT_OK;
    int32_t *buf = (int32_t *)bert__calloc((size_t)(3 * T + 2 * P), sizeof(int32_t));
    float *w = (float *)bert__calloc((size_t)P, sizeof(float));
    if (!buf || !w) { BERT_FREE(buf); BERT_FREE(w); return BERT_ERR_OOM; }
    bert__rng_shuffle(&s->rng, s->index.v, s->index.n);
    for (size_t k = 0; k < s->index.n && !rc; k++) {
        const int32_t *r = s->store.v + s->index.v[k];
        int n = r[0], a_len = r[1], np = r[3];
        bert_pretrain_example ex = { T, P, buf, buf + T, buf + 2 * T, buf + 3 * T, buf + 3 * T + P, w, r[2] };
        memset(buf, 0, (size_t)(3 * T + 2 * P) * sizeof(int32_t));
        memset(w, 0, (size_t)P * sizeof(float));
        for (int t = 0; t < n; t++) { ex.input_ids[t] = r[4 + t]; ex.input_mask[t] = 1; ex.segment_ids[t] = t >= a_len; }
        for (int p = 0; p < np; p++) { ex.masked_lm_positions[p] = r[4 + n + p]; ex.masked_lm_ids[p] = r[4 + n + np + p]; w[p] = 1.0f; }
        rc = emit(&ex, user);
    }
    BERT_FREE(buf); BERT_FREE(w);
    return rc;
}

BERTDEF int bert_pretrain_data_vocab(bert_pretrain_data_opts *o, const bert_vocab *v, unsigned char **table) {
    *table = NULL;
    if (v->cls_id < 0 || v->sep_id < 0 || v->mask_id < 0) return bert__err(BERT_ERR_ARG, "vocab has no [CLS], [SEP] or [MASK] token");
    if (!(*table = (unsigned char *)bert__calloc((size_t)v->size, 1))) return BERT_ERR_OOM;
    for (int id = 0; id < v->size; id++) (*table)[id] = strncmp(bert_vocab_token(v, id), "##", 2) == 0;
    o->vocab_size = v->size; o->cls_id = v->cls_id; o->sep_id = v->sep_id; o->mask_id = v->mask_id;
    o->is_continuation = *table;
    return BERT_OK;
}

typedef struct { FILE *f; unsigned char *buf; size_t cap; bert_pretrain_data_stats st; } bert__cpd_writer;

static int bert__cpd_write_one(const bert_pretrain_example *ex, void *user) {
    bert__cpd_writer *w = (bert__cpd_writer *)user;
    size_t n = bert_example_encode(w->buf, w->cap, ex);
    if (n > w->cap) {
        BERT_FREE(w->buf);
        w->cap = 2 * n;
        if (!(w->buf = (unsigned char *)bert__malloc(w->cap))) return BERT_ERR_OOM;
        bert_example_encode(w->buf, w->cap, ex);
    }
    int rc = bert_tfrecord_write(w->f, w->buf, n);
    if (rc) return rc;
    w->st.instances++;
    w->st.random_next += ex->next_sentence_label;
    for (int t = 0; t < ex->T; t++) w->st.tokens += ex->input_mask[t];
    for (int p = 0; p < ex->P; p++) w->st.predictions += ex->masked_lm_weights[p] > 0;
    return BERT_OK;
}

BERTDEF int bert_pretrain_data_write(const char *path, const bert_corpus *c, const bert_pretrain_data_opts *o,
                                     bert_pretrain_data_stats *stats) {
    bert_atomic_file a;
    bert__cpd_writer w;
    memset(&w, 0, sizeof w);
    int rc = bert_atomic_open(&a, path);
    if (rc) return rc;
    w.f = (FILE *)a.file;
    errno = 0;
    rc = bert_pretrain_data_create(c, o, bert__cpd_write_one, &w);
    int e = errno;
    if (rc && rc != BERT_ERR_IO) bert_atomic_close(&a, path, 0);   // keeps the creator's message
    else if ((rc = bert_atomic_close(&a, path, !rc)) && e) bert__err(rc, "%s: write failed: %s", path, strerror(e));
    if (stats) *stats = w.st;
    BERT_FREE(w.buf);
    return rc;
}

BERTDEF void bert_corpus_free(bert_corpus *c) {
    BERT_FREE((void *)c->ids); BERT_FREE((void *)c->sent_len); BERT_FREE((void *)c->doc_sents);
    memset(c, 0, sizeof *c);
}

BERTDEF int bert_corpus_from_text(bert_corpus *c, const bert_vocab *v, int do_lower_case, const char *text, size_t len) {
    bert__ivec ids = {NULL, 0, 0}, sents = {NULL, 0, 0}, docs = {NULL, 0, 0};
    int cap = 1024, rc = BERT_OK;
    int32_t *buf = (int32_t *)bert__malloc((size_t)cap * sizeof(int32_t));
    memset(c, 0, sizeof *c);
    if (!buf || !bert__ivec_push(&docs, 0)) { rc = BERT_ERR_OOM; goto done; }
    for (size_t at = 0; at < len && !rc;) {
        const char *nl = (const char *)memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        int n = bert_tokenize(v, do_lower_case, text + at, end - at, buf, cap);
        if (n > cap) {   // a long line: grow and tokenize again
            BERT_FREE(buf);
            cap = n;
            if (!(buf = (int32_t *)bert__malloc((size_t)cap * sizeof(int32_t)))) { rc = BERT_ERR_OOM; break; }
            n = bert_tokenize(v, do_lower_case, text + at, end - at, buf, cap);
        }
        if (n < 0) { rc = -n; break; }
        int blank = 1;   // a line of only whitespace separates documents (Python's strip())
        for (size_t k = at; k < end && blank; k++) blank = strchr(" \t\r\f\v", text[k]) != NULL;
        if (blank) {
            if (docs.v[docs.n - 1] > 0 && !bert__ivec_push(&docs, 0)) rc = BERT_ERR_OOM;
        } else if (n > 0) {   // (the counts are int32: stop before one wraps)
            if (sents.n >= (size_t)INT32_MAX || ids.n > (size_t)INT32_MAX * 4) rc = bert__err(BERT_ERR_ARG, "corpus too large: split it");
            else if (!bert__cpd_push_all(&ids, buf, n) || !bert__ivec_push(&sents, n)) rc = BERT_ERR_OOM;
            else docs.v[docs.n - 1]++;
        }
        at = end + 1;
    }
    if (!rc && docs.n > 1 && docs.v[docs.n - 1] == 0) docs.n--;
done:
    BERT_FREE(buf);
    if (rc) { BERT_FREE(ids.v); BERT_FREE(sents.v); BERT_FREE(docs.v); return rc == BERT_ERR_OOM ? bert__err(rc, "out of memory tokenizing the corpus") : rc; }
    c->ids = ids.v; c->sent_len = sents.v; c->num_sents = (int)sents.n; c->doc_sents = docs.v; c->num_docs = (int)docs.n;
    return BERT_OK;
}

BERTDEF int bert_corpus_from_files(bert_corpus *c, const bert_vocab *v, int do_lower_case, const char *const *paths, int n) {
    unsigned char *all = NULL;
    size_t len = 0, cap = 0;
    memset(c, 0, sizeof *c);
    for (int i = 0; i < n; i++) {   // joined by blank lines: a file never continues the previous one's document
        unsigned char *d; size_t m;
        int rc = bert__read_file(paths[i], &d, &m);
        if (rc) { BERT_FREE(all); return rc; }
        if (m > (size_t)-1 / 2 - len - 2) { BERT_FREE(d); BERT_FREE(all); return bert__err(BERT_ERR_OOM, "%s: the text files are too large together", paths[i]); }
        if (len + m + 2 > cap) {   // geometric growth: many files cost linear time, not quadratic
            size_t ncap = cap ? 2 * cap : 1 << 16;
            while (ncap < len + m + 2) ncap *= 2;
            unsigned char *grown = (unsigned char *)bert__malloc(ncap);
            if (!grown) { BERT_FREE(d); BERT_FREE(all); return bert__err(BERT_ERR_OOM, "%s: out of memory joining the text files", paths[i]); }
            if (len) memcpy(grown, all, len);
            BERT_FREE(all);
            all = grown; cap = ncap;
        }
        memcpy(all + len, d, m);
        all[len + m] = '\n'; all[len + m + 1] = '\n';
        len += m + 2;
        BERT_FREE(d);
    }
    int rc = bert_corpus_from_text(c, v, do_lower_case, (const char *)all, len);
    BERT_FREE(all);
    return rc;
}

BERTDEF int bert_pretrain_data_create(const bert_corpus *c, const bert_pretrain_data_opts *o,
                                      int (*emit)(const bert_pretrain_example *ex, void *user), void *user) {
    if (o->max_seq_length < 5 || o->max_predictions_per_seq < 1 || o->dupe_factor < 1 || o->vocab_size < 1 ||
        !(o->masked_lm_prob > 0 && o->masked_lm_prob <= 1) || !(o->short_seq_prob >= 0 && o->short_seq_prob <= 1))
        return bert__err(BERT_ERR_ARG, "create_pretraining_data: bad options (max_seq_length >= 5, max_predictions >= 1, dupe >= 1, probabilities in range)");
    if (o->max_seq_length > (1 << 20) || o->max_predictions_per_seq > o->max_seq_length)   // keeps 3T + 2P far inside an int
        return bert__err(BERT_ERR_ARG, "create_pretraining_data: max_seq_length %d (at most 1048576) and max_predictions_per_seq %d "
                         "(at most max_seq_length)", o->max_seq_length, o->max_predictions_per_seq);
    if (o->whole_word_mask && !o->is_continuation) return bert__err(BERT_ERR_ARG, "create_pretraining_data: whole-word masking needs is_continuation");
    bert__cpd s;
    memset(&s, 0, sizeof s);
    s.c = c; s.o = o;
    s.rng.stream = bert_rng_stream(o->seed, 0, 0x435044);   // "CPD"
    int T = o->max_seq_length, rc = BERT_OK;
    int32_t *work = NULL;
    size_t pair;
    s.sent_start = (size_t *)bert__calloc((size_t)c->num_sents + 1, sizeof(size_t));
    s.doc_first = (int32_t *)bert__calloc((size_t)c->num_docs + 1, sizeof(int32_t));
    s.docs = (int32_t *)bert__calloc((size_t)c->num_docs + 1, sizeof(int32_t));
    // a chunk stops growing once it reaches the target length, so A and B never exceed the target
    // plus one sentence: that bounds the pair buffers
    int longest = 0;
    for (int i = 0; i < c->num_sents; i++) {
        if (c->sent_len[i] < 0) { rc = bert__err(BERT_ERR_ARG, "create_pretraining_data: negative sentence length"); goto done; }
        if (c->sent_len[i] > longest) longest = c->sent_len[i];
    }
    pair = (size_t)T + (size_t)longest;
    work = (int32_t *)bert__calloc(2 * pair + (size_t)6 * T + 4, sizeof(int32_t));   // a, b | tokens, pos, labels, groups/order
    if (!s.sent_start || !s.doc_first || !s.docs || !work) { rc = BERT_ERR_OOM; goto done; }
    for (int i = 1; i <= c->num_sents; i++) s.sent_start[i] = s.sent_start[i - 1] + (size_t)c->sent_len[i - 1];
    for (int d = 0, first = 0; d < c->num_docs; d++) {
        s.doc_first[d] = first;
        if (c->doc_sents[d] < 0 || c->doc_sents[d] > c->num_sents - first) {
            rc = bert__err(BERT_ERR_ARG, "create_pretraining_data: document %d claims %d sentences of the %d left", d, c->doc_sents[d], c->num_sents - first);
            goto done;
        }
        first += c->doc_sents[d];
        size_t tokens = 0;
        for (int k = s.doc_first[d]; k < first; k++) tokens += (size_t)c->sent_len[k];
        if (tokens > 0) s.docs[s.ndocs++] = d;
    }
    for (size_t i = 0; i < s.sent_start[c->num_sents]; i++)
        if (c->ids[i] < 0 || c->ids[i] >= o->vocab_size) { rc = bert__err(BERT_ERR_ARG, "create_pretraining_data: token id %d outside the vocabulary", c->ids[i]); goto done; }
    if (!s.ndocs) { rc = bert__err(BERT_ERR_ARG, "create_pretraining_data: no non-empty documents"); goto done; }
    bert__rng_shuffle(&s.rng, s.docs, (size_t)s.ndocs);
    for (int dupe = 0; dupe < o->dupe_factor && !rc; dupe++)
        for (int di = 0; di < s.ndocs && !rc; di++)
            rc = bert__cpd_document(&s, di, work, work + pair, work + 2 * pair, work + 2 * pair + T,
                                    work + 2 * pair + 2 * T, work + 2 * pair + 3 * T);
    if (!rc) rc = bert__cpd_emit(&s, emit, user);
done:
    BERT_FREE(s.sent_start); BERT_FREE(s.doc_first); BERT_FREE(s.docs); BERT_FREE(work);
    BERT_FREE(s.store.v); BERT_FREE(s.index.v);
    return rc;
}

#endif // BERT_IMPLEMENTATION

/*
------------------------------------------------------------------------------
MIT License

Copyright (c) 2026 the bert.h authors

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
*/
