/* bert.h - v0.1 - BERT pretraining, fine-tuning and inference in one C header - MIT license
                                              (full text at the end of this file)

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
     gradient accumulation, and safetensors checkpoints with HF `BertForPreTraining` names.

   COMPILE-TIME OPTIONS (set them before including bert.h)
     BERT_STATIC            all functions static (set in every TU that includes bert.h)
     BERT_MALLOC(n), BERT_FREE(p)   your allocator: define both or neither (implementation TU)
     BERT_ASSERT(cond)      your assert; the default prints file:line and aborts. It is always on
                            and only guards programmer errors, never bad input (implementation TU)
     BERT_NO_OPENMP         ignore OpenMP even when compiled with -fopenmp (implementation TU)
     BERT_NO_SIMD           plain C kernels only (implementation TU)

   TABLE OF CONTENTS (search for the banners)
     public:          errors · config · parameter table · tensors, arena, ctx · kernel table ·
                      ops · autograd · model · optimizers · checkpoints · JSON · safetensors
     implementation:  helpers · RNG · CPU kernels · arena/tensors · tape · ops · model ·
                      optimizers · JSON · safetensors · config/checkpoint I/O · license

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
*/
#ifndef BERT_H
#define BERT_H

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
    BERT_ERR_NONFINITE  // NaN or Inf gradients: the optimizer skipped the update
} bert_status;

BERTDEF const char *bert_last_error(void);
// The message of the last failure in this thread, e.g. "model.safetensors: tensor 'x' has shape
// [2,3], expected [3,2]". Valid until the next failing call in the same thread.

// ----------------------------------------------------------------------------
// config: field names are the bert_config.json keys

typedef enum { BERT_GELU_ERF, BERT_GELU_TANH } bert_act;

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
// X(field, dim0, dim1, hf_name, decay): dim1 == 0 means a 1-D tensor; dims use V C P TV F.

#define BERT_PARAMS_EMB(X) \
    X(word_emb,  V,  C, "bert.embeddings.word_embeddings.weight",        1) \
    X(pos_emb,   P,  C, "bert.embeddings.position_embeddings.weight",    1) \
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

typedef struct bert_arena_block { struct bert_arena_block *prev; size_t size, used; } bert_arena_block;

typedef struct {
    bert_arena_block *head;   // current block; older blocks are chained through prev
    size_t used;              // bytes handed out since the last reset (all blocks)
    size_t high_water;        // the largest `used` ever seen
} bert_arena;

typedef enum {
    BERT_OP_EMBED, BERT_OP_LINEAR, BERT_OP_LAYERNORM, BERT_OP_ATTENTION, BERT_OP_GELU,
    BERT_OP_TANH, BERT_OP_ADD, BERT_OP_DROPOUT, BERT_OP_SOFTMAX_XENT, BERT_OP_GATHER,
    BERT_OP_SCALE,
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
    bert_node *tape; int tape_len, tape_cap;
    int grad_enabled;              // record ops on the tape (default 1)
    int training;                  // dropout active (default 1)
    uint64_t seed;                 // dropout seed
    uint64_t step;                 // set by bert_ctx_reset; part of the dropout stream
    int dropout_site;              // counts dropout calls since the last reset
    int retain_grads;              // keep every activation's grad after backward (default 0: an
                                   // activation grad's memory is reused once its node is done)
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

typedef struct bert_kernels {
    const char *name;
    void (*sgemm)(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *Cm, int ldc);
    void (*embedding_forward)(float *out, const int32_t *ids, const int32_t *types, const float *wte,
                              const float *wpe, const float *wtt, int B, int T, int C);
    void (*embedding_backward)(float *dwte, float *dwpe, float *dwtt, const float *dout,
                               const int32_t *ids, const int32_t *types, int B, int T, int C);
    void (*linear_forward)(float *out, const float *inp, const float *weight, const float *bias,
                           int N, int IC, int OC);
    void (*linear_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int N, int IC, int OC);
    void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int N, int C, float eps);
    void (*layernorm_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, int N, int C);
    void (*attention_forward)(float *out, float *att, const float *qkv, const float *mask_add,
                              int B, int T, int C, int NH, float drop_p, uint64_t stream);
    void (*attention_backward)(float *dqkv, const float *dout, const float *qkv, const float *att,
                               int B, int T, int C, int NH, float drop_p, uint64_t stream);
    void (*gelu_forward)(float *out, const float *inp, size_t n, int act);
    void (*gelu_backward)(float *dinp, const float *dout, const float *inp, size_t n, int act);
    void (*tanh_forward)(float *out, const float *inp, size_t n);
    void (*tanh_backward)(float *dinp, const float *dout, const float *out, size_t n);
    void (*add_forward)(float *out, const float *a, const float *b, size_t n);
    void (*accumulate)(float *dst, const float *src, size_t n);          // dst += src
    void (*scale_forward)(float *out, const float *inp, size_t n, float alpha);
    void (*scale_backward)(float *dinp, const float *dout, size_t n, float alpha);
    void (*dropout_forward)(float *out, const float *inp, size_t n, float p, uint64_t stream);
    void (*dropout_backward)(float *dinp, const float *dout, size_t n, float p, uint64_t stream);
    float (*xent_forward)(float *probs, const float *logits, const int32_t *labels, int N, int V,
                          int ignore_index);                             // returns the mean loss
    void (*xent_backward)(float *dlogits, const float *probs, const int32_t *labels, float dloss,
                          int N, int V, int ignore_index);
    void (*gather_forward)(float *out, const float *inp, const int32_t *rows, int M, int C);
    void (*gather_backward)(float *dinp, const float *dout, const int32_t *rows, int M, int C);
    double (*sumsq)(const float *x, size_t n);
    void (*adam_update)(float *p, const float *g, float *m, float *v, size_t n, float lr,
                        float beta1, float beta2, float eps, float wd, float gscale,
                        float bc1, float bc2);
    void (*adam_direction_norms)(double *pp_uu, const float *p, const float *g, float *m, float *v,
                                 size_t n, float beta1, float beta2, float eps, float wd,
                                 float gscale, float bc1, float bc2);
    void (*lamb_apply)(float *p, const float *m, const float *v, size_t n, float step_size,
                       float eps, float wd, float bc1, float bc2);
    void (*momentum_update)(float *p, const float *g, float *m, size_t n, float lr, float mu,
                            float wd, float gscale);
} bert_kernels;

BERTDEF const bert_kernels *bert_cpu_kernels(void);
BERTDEF void bert_sgemm_naive(int trans_a, int trans_b, int M, int N, int K, float alpha,
                              const float *A, int lda, const float *B, int ldb, float beta,
                              float *Cm, int ldc);   // the oracle: C = alpha op(A) op(B) + beta C
BERTDEF const char *bert_sgemm_kernel_name(void);   // which microkernel was compiled in
BERTDEF void bert_cpu_workspace_free(void);         // the calling thread's sgemm packing buffers
BERTDEF uint64_t bert_rng_stream(uint64_t seed, uint64_t step, uint64_t site);
BERTDEF float bert_rng_uniform(uint64_t stream, uint64_t i);  // [0,1), 24 random bits

// ----------------------------------------------------------------------------
// ops: compute now, record a tape node when ctx->grad_enabled

BERTDEF bert_tensor *bert_embed(bert_ctx *ctx, bert_tensor *wte, bert_tensor *wpe, bert_tensor *wtt,
                                const int32_t *ids, const int32_t *types, int B, int T);  // (B,T,C)
BERTDEF bert_tensor *bert_linear(bert_ctx *ctx, bert_tensor *x, bert_tensor *w, bert_tensor *b);
// x (..., IC), w (OC, IC), b (OC) or NULL -> (..., OC)
BERTDEF bert_tensor *bert_layernorm(bert_ctx *ctx, bert_tensor *x, bert_tensor *w, bert_tensor *b,
                                    float eps);
BERTDEF bert_tensor *bert_attention(bert_ctx *ctx, bert_tensor *qkv, const int32_t *mask, int NH,
                                    float drop_p);
// qkv (B,T,3C), mask (B,T) of 0/1 or NULL -> (B,T,C); additive mask (1-mask)*-10000 on keys
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
    int num_tensors;             // PE + L*PL + PH
    bert_tensor *tensors;        // (num_tensors) views into params/grads, table order
    char **names;                // (num_tensors) HF names
    unsigned char *decay;        // (num_tensors) 1 if weight decay applies
    bert_weights w;              // named views
} bert_model;

BERTDEF bert_model *bert_model_create(const bert_config *cfg, uint64_t seed);
// Allocates and initialises as google-research/bert: truncated normal (2 std) with std
// initializer_range for matrices and embeddings, LayerNorm gamma 1, biases 0. NULL on failure.
BERTDEF void bert_model_free(bert_model *m);
BERTDEF void bert_model_zero_grad(bert_model *m);
BERTDEF int bert_model_find(const bert_model *m, const char *hf_name);  // tensor index or -1

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

BERTDEF bert_tensor *bert_encode(bert_ctx *ctx, bert_model *m, const int32_t *ids,
                                 const int32_t *types, const int32_t *mask, int B, int T);
// -> (B,T,C). Names its intermediates "emb", "layer.%d.qkv", ".ctx", ".attn_ln", ".ffn_act", "layer.%d".
BERTDEF bert_tensor *bert_pool(bert_ctx *ctx, bert_model *m, bert_tensor *seq);      // -> (B,C)
BERTDEF bert_pretrain_out bert_pretrain_forward(bert_ctx *ctx, bert_model *m, const bert_batch *b);

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
    int accumulation_steps;    // grads summed over this many micro-batches are divided by it
    // state
    uint64_t step;             // updates done
    size_t n;
    float *m, *v;              // (n) moments, same layout as params
    float last_lr, last_grad_norm;
} bert_optim;

BERTDEF bert_optim bert_optim_defaults(bert_optim_type type);
BERTDEF int bert_optim_init(bert_optim *o, const bert_model *m);   // allocates zeroed moments
BERTDEF void bert_optim_free(bert_optim *o);
BERTDEF float bert_optim_lr(const bert_optim *o, uint64_t step);
// Google create_optimizer: decayed = (lr-end)*(1-min(s,total)/total)^power + end, and
// lr*s/warmup while s < warmup, where s = updates done before this one.
BERTDEF int bert_optim_step(bert_optim *o, bert_model *m);
// grads /= accumulation_steps, clip to clip_norm, one update; sets last_lr and last_grad_norm.
// A NaN/Inf gradient norm skips the update (step not counted) and returns BERT_ERR_NONFINITE.
BERTDEF const char *bert_optim_name(bert_optim_type type);

// ----------------------------------------------------------------------------
// checkpoints: safetensors with HF BertForPreTraining names, config in __metadata__

BERTDEF int bert_model_save(const bert_model *m, const char *path);
BERTDEF bert_model *bert_model_load(const char *path, const bert_config *cfg_or_null);
// Config from the file's __metadata__ "config", else from cfg_or_null, else from
// bert_config.json / config.json beside the file. Every tensor is checked; NULL + message on error.
BERTDEF int bert_model_load_weights(bert_model *m, const char *path);   // into an existing model
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
   (bert_json_get returns the first). The whole tree is one allocation: free only the root. */

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
#include <errno.h>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
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
#define BERT__PRINTF(a, b) __attribute__((format(printf, a, b)))
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
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; // round to nearest (1.5 * 2^23 trick)
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
// ISA, chosen at compile time; the plain C one is the fallback and the template for NEON.
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
// over packed panels. beta == 0 overwrites C (it may hold garbage). One body for both SIMD ISAs,
// written against these vector mappings (ggml style); NR is two vectors wide. A NEON port adds
// a block of mappings here.
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
static BERT__THREAD_LOCAL float *bert__gemm_buf;
static BERT__THREAD_LOCAL size_t bert__gemm_cap;

BERTDEF void bert_cpu_workspace_free(void) {
    BERT_FREE(bert__gemm_buf);
    bert__gemm_buf = NULL;
    bert__gemm_cap = 0;
}

static float *bert__gemm_workspace(size_t floats) {
    if (floats > bert__gemm_cap) {
        BERT_FREE(bert__gemm_buf);
        bert__gemm_buf = (float *)BERT_MALLOC((floats + 16) * sizeof(float));
        BERT_ASSERT_MSG(bert__gemm_buf != NULL, "sgemm: out of memory for the packing buffers");
        bert__gemm_cap = floats;
    }
    uintptr_t p = (uintptr_t)bert__gemm_buf;   // 64-byte aligned for the microkernel's aligned loads
    return (float *)((p + 63) & ~(uintptr_t)63);
}

// One thread's BLIS loops over a whole (sub-)problem: for each NC column block and KC slice, pack
// op(B) (KC x NC, kept in L2) once, then for each MC row block pack op(A) (MC x KC) and sweep the
// micro-tiles a row of them at a time: the A micro-panel (the broadcast operand) stays in L1
// while the B micro-panels stream from L2 (BLIS's arrangement for these kernels).
static void bert__sgemm_serial(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, size_t lda,
                               const float *B, size_t ldb, float beta, float *Cm, size_t ldc) {
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
                            continue;
                        }
                        bert__sgemm_micro_strided(kc, a, ars, aps, b, edge, BERT__NR, 1.0f, 0.0f);   // edge tile via a temporary
                        for (int i = 0; i < mr; i++)
                            for (int j = 0; j < nr; j++) {
                                float *cij = c + (size_t)i * ldc + j;
                                *cij = alpha * edge[i * BERT__NR + j] + (b_eff != 0.0f ? b_eff * *cij : 0.0f);
                            }
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
static void bert__sgemm_blocked(int trans_a, int trans_b, int M, int N, int K, float alpha,
                                const float *A, int lda, const float *B, int ldb, float beta,
                                float *Cm, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {   // C = beta C only
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float *c = &Cm[(size_t)i * ldc + j];
                *c = beta == 0.0f ? 0.0f : beta * *c;
            }
        return;
    }
    int nth = 1;
#ifdef BERT__OMP
    if (!omp_in_parallel() && (double)M * N * K >= 262144.0) nth = omp_get_max_threads();   // small or nested: one thread
#endif
    if (nth <= 1) {
        bert__sgemm_serial(trans_a, trans_b, M, N, K, alpha, A, (size_t)lda, B, (size_t)ldb, beta, Cm, (size_t)ldc);
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
        if (hi > lo && split_n)
            bert__sgemm_serial(trans_a, trans_b, M, hi - lo, K, alpha, A, (size_t)lda,
                               trans_b ? B + (size_t)lo * ldb : B + lo, (size_t)ldb, beta, Cm + lo, (size_t)ldc);
        else if (hi > lo)
            bert__sgemm_serial(trans_a, trans_b, hi - lo, N, K, alpha, trans_a ? A + lo : A + (size_t)lo * lda, (size_t)lda,
                               B, (size_t)ldb, beta, Cm + (size_t)lo * ldc, (size_t)ldc);
    }
}

// embedding: out (B,T,C) = wte[ids] + wpe[t] + wtt[types]; ids/types (B,T); types may be NULL
static void bert__embedding_forward(float *out, const int32_t *ids, const int32_t *types,
                                    const float *wte, const float *wpe, const float *wtt,
                                    int B, int T, int C) {
    BERT__PARALLEL_FOR_IF((size_t)B * T * C)
    for (int bt = 0; bt < B * T; bt++) {
        const float *w = wte + (size_t)ids[bt] * C, *p = wpe + (size_t)(bt % T) * C;
        const float *y = wtt + (size_t)(types ? types[bt] : 0) * C;
        float *o = out + (size_t)bt * C;
        for (int c = 0; c < C; c++) o[c] = w[c] + p[c] + y[c];
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

// dinp (N,IC) += dout (N,OC) . weight (OC,IC);  dweight (OC,IC) += dout^T . inp;  dbias += sum_n dout
static void bert__linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                  const float *inp, const float *weight, int N, int IC, int OC) {
    if (dinp) bert__sgemm_blocked(0, 0, N, IC, OC, 1.0f, dout, OC, weight, IC, 1.0f, dinp, IC);
    if (dweight) bert__sgemm_blocked(1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
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
static BERT__THREAD_LOCAL float *bert__attn_buf;
static BERT__THREAD_LOCAL size_t bert__attn_cap;

static float *bert__attn_scratch(size_t floats) {   // per thread, grown once, like the sgemm buffers
    if (floats > bert__attn_cap) {
        BERT_FREE(bert__attn_buf);
        bert__attn_buf = (float *)BERT_MALLOC(floats * sizeof(float));
        BERT_ASSERT_MSG(bert__attn_buf != NULL, "attention: out of memory for scratch");
        bert__attn_cap = floats;
    }
    return bert__attn_buf;
}

// the dropped-out probabilities of one (b,h): pd = att * keep / (1-p), row-major (T,T)
static void bert__attention_dropped(float *pd, const float *a, size_t n, uint64_t row0, float drop_p, uint64_t stream) {
    float keep_scale = 1.0f / (1.0f - drop_p);
    for (size_t j = 0; j < n; j++) pd[j] = bert__uniform(stream, row0 + j) >= drop_p ? a[j] * keep_scale : 0.0f;
}

static void bert__attention_forward(float *out, float *att, const float *qkv, const float *mask_add,
                                    int B, int T, int C, int NH, float drop_p, uint64_t stream) {
    int HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
    BERT__PARALLEL_FOR_IF((size_t)B * NH * T * T * HS)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *q = qkv + (size_t)b * T * C3 + h * HS, *k = q + C, *v = q + 2 * C;
        float *a = att + (size_t)bh * T * T;
        bert__sgemm_blocked(0, 1, T, T, HS, scale, q, C3, k, C3, 0.0f, a, T);   // (T,T) scores
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
            float *pd = bert__attn_scratch((size_t)T * T);
            bert__attention_dropped(pd, a, (size_t)T * T, (uint64_t)bh * T * T, drop_p, stream);
            p = pd;
        }
        bert__sgemm_blocked(0, 0, T, HS, T, 1.0f, p, T, v, C3, 0.0f, out + (size_t)b * T * C + h * HS, C);
    }
}

// dP' = dO V^T; dV += P'^T dO; dP = dP' * dropout mask; dS = P * (dP - rowsum(dP * P)) * scale;
// dQ += dS K; dK += dS^T Q. Each (b,h) owns its own columns of dqkv.
static void bert__attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                                     int B, int T, int C, int NH, float drop_p, uint64_t stream) {
    int HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS), keep_scale = drop_p > 0.0f ? 1.0f / (1.0f - drop_p) : 1.0f;
    BERT__PARALLEL_FOR_IF((size_t)B * NH * T * T * HS)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        size_t TT = (size_t)T * T;
        const float *q = qkv + (size_t)b * T * C3 + h * HS, *k = q + C, *v = q + 2 * C;
        float *dq = dqkv + (size_t)b * T * C3 + h * HS, *dk = dq + C, *dv = dq + 2 * C;
        const float *a = att + (size_t)bh * TT, *d = dout + (size_t)b * T * C + h * HS;
        float *ds = bert__attn_scratch(2 * TT), *pd = ds + TT;
        const float *p = a;
        if (drop_p > 0.0f) { bert__attention_dropped(pd, a, TT, (uint64_t)bh * TT, drop_p, stream); p = pd; }
        bert__sgemm_blocked(1, 0, T, HS, T, 1.0f, p, T, d, C, 1.0f, dv, C3);    // dV += P'^T dO
        bert__sgemm_blocked(0, 1, T, T, HS, 1.0f, d, C, v, C3, 0.0f, ds, T);    // dP' = dO V^T
        for (int i = 0; i < T; i++) {
            float *dr = ds + (size_t)i * T;
            const float *ar = a + (size_t)i * T;
            float dot = 0.0f;
            uint64_t row0 = (uint64_t)bh * TT + (uint64_t)i * T;
            if (drop_p > 0.0f)   // through dropout: the same mask, regenerated
                for (int j = 0; j < T; j++) dr[j] = bert__uniform(stream, row0 + j) >= drop_p ? dr[j] * keep_scale : 0.0f;
            for (int j = 0; j < T; j++) dot += dr[j] * ar[j];
            for (int j = 0; j < T; j++) dr[j] = ar[j] * (dr[j] - dot) * scale;
        }
        bert__sgemm_blocked(0, 0, T, HS, T, 1.0f, ds, T, k, C3, 1.0f, dq, C3);  // dQ += dS K
        bert__sgemm_blocked(1, 0, T, HS, T, 1.0f, ds, T, q, C3, 1.0f, dk, C3);  // dK += dS^T Q
    }
}

// GELU, act = BERT_GELU_ERF: 0.5x(1+erf(x/sqrt2)); BERT_GELU_TANH: 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3)))
#define BERT__SQRT_2_OVER_PI 0.7978845608028654f
#define BERT__INV_SQRT_2 0.7071067811865476f
#define BERT__INV_SQRT_2PI 0.3989422804014327f
static void bert__gelu_forward(float *out, const float *inp, size_t n, int act) {
    BERT__FOR_BLOCKS(n, {
        const float *x = inp + i0;
        float *y = out + i0;
        if (act == BERT_GELU_TANH) {
            BERT__SIMD
            for (int i = 0; i < len; i++)
                y[i] = 0.5f * x[i] * (1.0f + bert__tanhf(BERT__SQRT_2_OVER_PI * (x[i] + 0.044715f * x[i] * x[i] * x[i])));
        } else {
            BERT__SIMD
            for (int i = 0; i < len; i++) y[i] = 0.5f * x[i] * (1.0f + bert__erff(x[i] * BERT__INV_SQRT_2));
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
                float du = BERT__SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * x[i] * x[i]);
                dx[i] += (0.5f * (1.0f + t) + 0.5f * x[i] * (1.0f - t * t) * du) * d[i];
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

static const bert_kernels bert__cpu_kernels = {
    "cpu",
    bert__sgemm_blocked,
    bert__embedding_forward, bert__embedding_backward,
    bert__linear_forward, bert__linear_backward,
    bert__layernorm_forward, bert__layernorm_backward,
    bert__attention_forward, bert__attention_backward,
    bert__gelu_forward, bert__gelu_backward,
    bert__tanh_forward, bert__tanh_backward,
    bert__add_forward, bert__accumulate,
    bert__scale_forward, bert__scale_backward,
    bert__dropout_forward, bert__dropout_backward,
    bert__xent_forward, bert__xent_backward,
    bert__gather_forward, bert__gather_backward,
    bert__sumsq,
    bert__adam_update, bert__adam_direction_norms, bert__lamb_apply,
    bert__momentum_update,
};

BERTDEF const bert_kernels *bert_cpu_kernels(void) { return &bert__cpu_kernels; }

// ----------------------------------------------------------------------------
// arena and tensors: a bump allocator reset once per step

#define BERT__ALIGN 64
static size_t bert__pad(size_t n) { return (n + BERT__ALIGN - 1) & ~(size_t)(BERT__ALIGN - 1); }

static bert_arena_block *bert__block_new(size_t size, bert_arena_block *prev) {
    bert_arena_block *blk = (bert_arena_block *)bert__malloc(bert__pad(sizeof *blk) + size);
    if (!blk) return NULL;
    blk->prev = prev;
    blk->size = size;
    blk->used = 0;
    return blk;
}

static unsigned char *bert__block_base(bert_arena_block *blk) {
    return (unsigned char *)blk + bert__pad(sizeof *blk);
}

// Memory from the arena (not zeroed: op outputs are overwritten by their kernels; grads come
// from bert__zeros). A full block chains a new one (only until the next reset merges
// them), so a first step of unknown size still runs; out of memory here is fatal by design.
static void *bert__arena_alloc(bert_arena *a, size_t bytes) {
    size_t n = bert__pad(bytes ? bytes : 1);
    if (!a->head || a->head->used + n > a->head->size) {
        size_t size = a->head ? a->head->size : 0;
        if (size < n) size = n;
        bert_arena_block *blk = bert__block_new(size, a->head);
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
    while (a->head != m.block) {   // newer blocks, now empty but for what was just copied out
        bert_arena_block *prev = a->head->prev;
        BERT_FREE(a->head);
        a->head = prev;
    }
    *t = saved;
    t->data = data;
    m.block->used = m.block_used + need;
    a->used = m.used + need;
    return t;
}

static void bert__arena_free_blocks(bert_arena_block *blk) {
    while (blk) { bert_arena_block *prev = blk->prev; BERT_FREE(blk); blk = prev; }
}

static void bert__arena_reset(bert_arena *a) {
    if (a->head && a->head->prev) {   // the last step overflowed: one block of the high-water size
        bert__arena_free_blocks(a->head);
        a->head = bert__block_new(a->high_water, NULL);
        BERT_ASSERT_MSG(a->head != NULL, "bert arena: out of memory");
    }
    if (a->head) a->head->used = 0;
    a->used = 0;
}

BERTDEF bert_ctx *bert_ctx_create(size_t arena_bytes) {
    bert_ctx *ctx = (bert_ctx *)bert__calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->k = bert_cpu_kernels();
    ctx->arena.head = bert__block_new(arena_bytes ? arena_bytes : ((size_t)1 << 20), NULL);
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
    bert__arena_free_blocks(ctx->arena.head);
    BERT_FREE(ctx->tape);
    BERT_FREE(ctx->free_grads);
    BERT_FREE(ctx->free_sizes);
    BERT_FREE(ctx);
}

BERTDEF void bert_ctx_reset(bert_ctx *ctx, uint64_t step) {
    bert__arena_reset(&ctx->arena);
    ctx->tape_len = 0;
    ctx->free_len = 0;
    ctx->step = step;
    ctx->dropout_site = 0;
}

BERTDEF size_t bert_ctx_high_water(const bert_ctx *ctx) { return ctx->arena.high_water; }

static float *bert__floats(bert_ctx *ctx, size_t n) {   // uninitialised
    return (float *)bert__arena_alloc(&ctx->arena, n * sizeof(float));
}

static float *bert__zeros(bert_ctx *ctx, size_t n) {
    float *p = bert__floats(ctx, n);
    memset(p, 0, n * sizeof(float));
    return p;
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
    memset(t->data, 0, t->numel * sizeof(float));
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

static const char *bert__op_names[] = {
    "embed", "linear", "layernorm", "attention", "gelu",
    "tanh", "add", "dropout", "softmax_xent", "gather",
    "scale",
};
typedef char bert__op_names_match[(sizeof bert__op_names / sizeof bert__op_names[0] == BERT_OP_COUNT) ? 1 : -1];

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
        memset(t->grad, 0, t->numel * sizeof(float));
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
        k->attention_backward(bert__grad(ctx, a), dout, a->data, n->saved[0], n->iarg[0], n->iarg[1],
                              n->iarg[2], n->iarg[3], n->farg[0], n->stream);
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
    case BERT_OP_SOFTMAX_XENT:
        k->xent_backward(bert__grad(ctx, a), n->saved[0], n->idx[0], dout[0], bert__rows(a),
                         bert__cols(a), n->iarg[0]);
        break;
    case BERT_OP_GATHER:
        k->gather_backward(bert__grad(ctx, a), dout, n->idx[0], n->iarg[0], bert__cols(a));
        break;
    case BERT_OP_COUNT:
        BERT_ASSERT_MSG(0, "bad op on the tape");
    }
}

BERTDEF void bert_backward(bert_ctx *ctx, bert_tensor *loss) {
    BERT_ASSERT_MSG(loss->numel == 1, "bert_backward: the loss must be a scalar");
    if (!bert__needs_grad(loss)) return;   // nothing on the tape leads to a parameter
    bert__grad(ctx, loss)[0] += 1.0f;
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
    int C = bert__cols(wte);
    BERT_ASSERT(bert__cols(wpe) == C && bert__cols(wtt) == C && T <= wpe->shape[0]);
    for (int i = 0; i < B * T; i++) {
        BERT_ASSERT_MSG(ids[i] >= 0 && ids[i] < wte->shape[0], "bert_embed: token id out of range");
        BERT_ASSERT_MSG(!types || (types[i] >= 0 && types[i] < wtt->shape[0]), "bert_embed: token type out of range");
    }
    bert_tensor *out = bert__tensor(ctx, 3, B, T, C, 0);
    ctx->k->embedding_forward(out->data, ids, types, wte->data, wpe->data, wtt->data, B, T, C);
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

// the dropout stream of this call: each call in a step gets the next site number
static uint64_t bert__next_stream(bert_ctx *ctx) {
    return bert_rng_stream(ctx->seed, ctx->step, (uint64_t)ctx->dropout_site++);
}

BERTDEF bert_tensor *bert_attention(bert_ctx *ctx, bert_tensor *qkv, const int32_t *mask, int NH,
                                    float drop_p) {
    BERT_ASSERT_MSG(qkv->ndim == 3 && qkv->shape[2] % 3 == 0, "bert_attention: qkv must be (B,T,3C)");
    int B = qkv->shape[0], T = qkv->shape[1], C = qkv->shape[2] / 3;
    BERT_ASSERT_MSG(NH > 0 && C % NH == 0, "bert_attention: C must divide into NH heads");
    float *mask_add = NULL;
    if (mask) {
        mask_add = bert__floats(ctx, (size_t)B * T);
        for (int i = 0; i < B * T; i++) mask_add[i] = (1.0f - (float)mask[i]) * -10000.0f;
    }
    float p = ctx->training ? drop_p : 0.0f;
    uint64_t stream = ctx->training ? bert__next_stream(ctx) : 0;   // sites count calls, not p
    bert_tensor *out = bert__tensor(ctx, 3, B, T, C, 0);
    float *att = bert__floats(ctx, (size_t)B * NH * T * T);
    ctx->k->attention_forward(out->data, att, qkv->data, mask_add, B, T, C, NH, p, stream);
    bert_node *n = bert__record(ctx, BERT_OP_ATTENTION, out, qkv, NULL, NULL);
    if (n) {
        n->saved[0] = att;
        n->iarg[0] = B; n->iarg[1] = T; n->iarg[2] = C; n->iarg[3] = NH;
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

BERTDEF bert_tensor *bert_add(bert_ctx *ctx, bert_tensor *a, bert_tensor *b) {
    BERT_ASSERT_MSG(a->numel == b->numel, "bert_add: sizes differ");
    bert_tensor *out = bert__tensor_of(ctx, a->ndim, a->shape);
    ctx->k->add_forward(out->data, a->data, b->data, a->numel);
    bert__record(ctx, BERT_OP_ADD, out, a, b, NULL);
    return out;
}

BERTDEF bert_tensor *bert_scale(bert_ctx *ctx, bert_tensor *x, float alpha) {
    bert_tensor *out = bert__tensor_of(ctx, x->ndim, x->shape);
    ctx->k->scale_forward(out->data, x->data, x->numel, alpha);
    bert_node *n = bert__record(ctx, BERT_OP_SCALE, out, x, NULL, NULL);
    if (n) n->farg[0] = alpha;
    return out;
}

BERTDEF bert_tensor *bert_dropout(bert_ctx *ctx, bert_tensor *x, float p) {
    BERT_ASSERT_MSG(p >= 0.0f && p < 1.0f, "bert_dropout: p must be in [0,1)");
    if (!ctx->training) return x;
    uint64_t stream = bert__next_stream(ctx);   // taken even for p == 0, so sites stay in step
    if (p == 0.0f) return x;
    bert_tensor *out = bert__tensor_of(ctx, x->ndim, x->shape);
    ctx->k->dropout_forward(out->data, x->data, x->numel, p, stream);
    bert_node *n = bert__record(ctx, BERT_OP_DROPOUT, out, x, NULL, NULL);
    if (n) { n->farg[0] = p; n->stream = stream; }
    return out;
}

BERTDEF bert_tensor *bert_softmax_xent(bert_ctx *ctx, bert_tensor *logits, const int32_t *labels,
                                       int ignore_index) {
    int N = bert__rows(logits), V = bert__cols(logits);
    for (int i = 0; i < N; i++)
        BERT_ASSERT_MSG(labels[i] == ignore_index || (labels[i] >= 0 && labels[i] < V),
                        "bert_softmax_xent: label out of range");
    bert_tensor *out = bert__tensor(ctx, 1, 1, 0, 0, 0);
    float *probs = bert__floats(ctx, logits->numel);
    out->data[0] = ctx->k->xent_forward(probs, logits->data, labels, N, V, ignore_index);
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

// ----------------------------------------------------------------------------
// model: the parameter table laid out in one flat buffer per role

// Sets tensor i's shape, name and decay flag and, once the buffers exist, its data/grad views.
static void bert__param_row(bert_model *m, int *i, size_t *off, int d0, int d1, const char *fmt,
                            int layer, int decay) {
    bert_tensor *t = &m->tensors[*i];
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->numel = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    t->flags = BERT_TENSOR_PARAM | BERT_TENSOR_REQUIRES_GRAD;
    if (m->params) {
        char name[128];
        if (layer >= 0) snprintf(name, sizeof name, fmt, layer);
        else snprintf(name, sizeof name, "%s", fmt);
        m->names[*i] = bert__strdup(name);
        t->name = m->names[*i];
        t->data = m->params + *off;
        t->grad = m->grads + *off;
        m->decay[*i] = (unsigned char)decay;
    }
    *off += t->numel;
    (*i)++;
}

// Walks the table once: without buffers it measures, with buffers it points.
static size_t bert__param_layout(bert_model *m) {
    const bert_config *cfg = &m->config;
    int V = cfg->vocab_size, C = cfg->hidden_size, P = cfg->max_position_embeddings;
    int TV = cfg->type_vocab_size, F = cfg->intermediate_size, i = 0, l = -1;
    size_t off = 0;
#define BERT__ROW(f, d0, d1, name, decay) bert__param_row(m, &i, &off, d0, d1, name, l, decay);
    BERT_PARAMS_EMB(BERT__ROW)
    for (l = 0; l < cfg->num_hidden_layers; l++) { BERT_PARAMS_LAYER(BERT__ROW) }
    l = -1;
    BERT_PARAMS_HEAD(BERT__ROW)
#undef BERT__ROW
    (void)V; (void)P; (void)TV; (void)F;
    return off;
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

static void bert__bind_weights(bert_model *m) {
    int L = m->config.num_hidden_layers, C = m->config.hidden_size;
    bert_tensor *head = m->tensors + BERT_PE_COUNT + (size_t)L * BERT_PL_COUNT;
#define BERT__BIND_EMB(f, d0, d1, name, decay) m->w.f = &m->tensors[BERT_PE_##f];
#define BERT__BIND_HEAD(f, d0, d1, name, decay) m->w.f = &head[BERT_PH_##f];
#define BERT__BIND_LAYER(f, d0, d1, name, decay) lw->f = &layer[BERT_PL_##f];
    BERT_PARAMS_EMB(BERT__BIND_EMB)
    BERT_PARAMS_HEAD(BERT__BIND_HEAD)
    for (int l = 0; l < L; l++) {
        bert_layer_weights *lw = &m->w.layer[l];
        bert_tensor *layer = m->tensors + BERT_PE_COUNT + (size_t)l * BERT_PL_COUNT;
        BERT_PARAMS_LAYER(BERT__BIND_LAYER)
        lw->qkv_w = bert__view(lw->q_w, 3 * C, C);   // q_w, k_w, v_w are adjacent in the table
        lw->qkv_b = bert__view(lw->q_b, 3 * C, 0);
    }
#undef BERT__BIND_EMB
#undef BERT__BIND_HEAD
#undef BERT__BIND_LAYER
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
    else {   // the whole parameter count must fit comfortably in size_t and int dims
        double C = c->hidden_size, n = (double)c->vocab_size * C + (double)c->max_position_embeddings * C +
            c->num_hidden_layers * (4.0 * C * C + 2.0 * C * c->intermediate_size);
        if (n > 4e10 || c->vocab_size > (1 << 24) || c->hidden_size > (1 << 16) || c->intermediate_size > (1 << 18) ||
            c->num_hidden_layers > 1024 || c->max_position_embeddings > (1 << 20) || c->type_vocab_size > (1 << 16))
            bad = "sizes are implausibly large";
    }
    return bad ? bert__err(BERT_ERR_ARG, "%s: bad config: %s", source ? source : "config", bad) : BERT_OK;
}

BERTDEF void bert_model_free(bert_model *m) {
    if (!m) return;
    if (m->names)
        for (int i = 0; i < m->num_tensors; i++) BERT_FREE(m->names[i]);
    BERT_FREE(m->names);
    BERT_FREE(m->decay);
    BERT_FREE(m->tensors);
    BERT_FREE(m->w.layer);
    BERT_FREE(m->params);
    BERT_FREE(m->grads);
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
    m->num_tensors = BERT_PE_COUNT + cfg->num_hidden_layers * BERT_PL_COUNT + BERT_PH_COUNT;
    m->tensors = (bert_tensor *)bert__calloc((size_t)m->num_tensors, sizeof(bert_tensor));
    m->names = (char **)bert__calloc((size_t)m->num_tensors, sizeof(char *));
    m->decay = (unsigned char *)bert__calloc((size_t)m->num_tensors, 1);
    m->w.layer = (bert_layer_weights *)bert__calloc((size_t)cfg->num_hidden_layers, sizeof(bert_layer_weights));
    if (!m->tensors || !m->names || !m->decay || !m->w.layer) { bert_model_free(m); return NULL; }
    m->num_params = bert__param_layout(m);
    m->params = (float *)bert__calloc(m->num_params, sizeof(float));
    m->grads = (float *)bert__calloc(m->num_params, sizeof(float));
    if (!m->params || !m->grads) { bert_model_free(m); return NULL; }
    bert__param_layout(m);
    for (int i = 0; i < m->num_tensors; i++)
        if (!m->names[i]) { bert_model_free(m); return NULL; }
    bert__bind_weights(m);
    bert__model_init(m, seed);
    return m;
}

BERTDEF void bert_model_zero_grad(bert_model *m) { memset(m->grads, 0, m->num_params * sizeof(float)); }

BERTDEF int bert_model_find(const bert_model *m, const char *hf_name) {
    for (int i = 0; i < m->num_tensors; i++)
        if (strcmp(m->names[i], hf_name) == 0) return i;
    return -1;
}

// ----------------------------------------------------------------------------
// the encoder and the pretraining heads

BERTDEF bert_tensor *bert_encode(bert_ctx *ctx, bert_model *m, const int32_t *ids,
                                 const int32_t *types, const int32_t *mask, int B, int T) {
    const bert_config *cfg = &m->config;
    float eps = cfg->layer_norm_eps, hp = cfg->hidden_dropout_prob;
    BERT_ASSERT_MSG(T <= cfg->max_position_embeddings, "bert_encode: T exceeds max_position_embeddings");
    bert_tensor *x = bert_embed(ctx, m->w.word_emb, m->w.pos_emb, m->w.type_emb, ids, types, B, T);
    x = bert_dropout(ctx, bert_layernorm(ctx, x, m->w.emb_ln_w, m->w.emb_ln_b, eps), hp);
    bert_tensor_set_name(ctx, x, "emb", 0);
    for (int l = 0; l < cfg->num_hidden_layers; l++) {
        bert__arena_mark mark = bert__mark(&ctx->arena);
        bert_layer_weights *w = &m->w.layer[l];
        bert_tensor *qkv = bert_linear(ctx, x, &w->qkv_w, &w->qkv_b);                   // (B,T,3C)
        bert_tensor *att = bert_attention(ctx, qkv, mask, cfg->num_attention_heads,
                                          cfg->attention_probs_dropout_prob);          // (B,T,C)
        bert_tensor *a = bert_dropout(ctx, bert_linear(ctx, att, w->attn_o_w, w->attn_o_b), hp);
        bert_tensor *x1 = bert_layernorm(ctx, bert_add(ctx, a, x), w->attn_ln_w, w->attn_ln_b, eps);
        bert_tensor *f = bert_gelu(ctx, bert_linear(ctx, x1, w->ffn_i_w, w->ffn_i_b), cfg->hidden_act); // (B,T,F)
        bert_tensor *f2 = bert_dropout(ctx, bert_linear(ctx, f, w->ffn_o_w, w->ffn_o_b), hp);
        x = bert_layernorm(ctx, bert_add(ctx, f2, x1), w->ffn_ln_w, w->ffn_ln_b, eps);
        bert_tensor_set_name(ctx, qkv, "layer.%d.qkv", l);
        bert_tensor_set_name(ctx, att, "layer.%d.ctx", l);
        bert_tensor_set_name(ctx, x1, "layer.%d.attn_ln", l);
        bert_tensor_set_name(ctx, f, "layer.%d.ffn_act", l);
        bert_tensor_set_name(ctx, x, "layer.%d", l);
        if (!ctx->grad_enabled) x = bert__rewind_keep(&ctx->arena, mark, x);   // inference keeps one layer live
    }
    return x;
}

BERTDEF bert_tensor *bert_pool(bert_ctx *ctx, bert_model *m, bert_tensor *seq) {
    int B = seq->shape[0], T = seq->shape[1];
    int32_t *rows = (int32_t *)bert__arena_alloc(&ctx->arena, (size_t)B * sizeof(int32_t));
    for (int b = 0; b < B; b++) rows[b] = b * T;   // the [CLS] token of each sequence
    bert_tensor *pooled = bert_tanh(ctx, bert_linear(ctx, bert_gather(ctx, seq, rows, B), m->w.pool_w, m->w.pool_b));
    bert_tensor_set_name(ctx, pooled, "pooled", 0);
    return pooled;
}

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

// ----------------------------------------------------------------------------
// optimizers: one fused pass per tensor over the flat buffers

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
    o.accumulation_steps = 1;
    return o;
}

BERTDEF int bert_optim_init(bert_optim *o, const bert_model *m) {
    o->n = m->num_params;
    o->step = 0;
    BERT_FREE(o->m);
    BERT_FREE(o->v);
    o->m = (float *)bert__calloc(o->n, sizeof(float));
    o->v = o->type == BERT_OPTIM_MOMENTUM ? NULL : (float *)bert__calloc(o->n, sizeof(float));
    if (!o->m || (o->type != BERT_OPTIM_MOMENTUM && !o->v)) { bert_optim_free(o); return BERT_ERR_OOM; }
    return BERT_OK;
}

BERTDEF void bert_optim_free(bert_optim *o) {
    BERT_FREE(o->m);
    BERT_FREE(o->v);
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
    const bert_kernels *k = bert_cpu_kernels();
    BERT_ASSERT_MSG(o->m && o->n == m->num_params, "bert_optim_step: call bert_optim_init with this model");
    float acc = 1.0f / (float)(o->accumulation_steps > 0 ? o->accumulation_steps : 1);
    double norm = sqrt(k->sumsq(m->grads, m->num_params)) * acc;
    o->last_grad_norm = (float)norm;
    if (!isfinite(norm)) return bert__err(BERT_ERR_NONFINITE, "gradient norm is %g: update skipped", norm);
    float clip = o->clip_norm > 0.0f && norm > o->clip_norm ? (float)(o->clip_norm / norm) : 1.0f;
    float gscale = acc * clip, lr = bert_optim_lr(o, o->step);
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
#ifndef __cplusplus
int (fileno)(FILE *); int (fsync)(int);   /* hidden under strict -std=c11; compatible redeclaration */
#endif
#endif

#define BERT__IO_MAX_TEXT ((size_t)100 << 20)   /* JSON text / safetensors header cap: 100 MB */
#define BERT__JSON_MAX_DEPTH 64

/* Whole file into memory (+1 NUL so text formats can be parsed in place). The getc probe catches
   directories, which fopen happily opens on POSIX and report an absurd size for. */
static int bert__read_file(const char *path, unsigned char **data, size_t *size) {
    FILE *f; long n; unsigned char *buf; int e;
    *data = NULL; *size = 0;
    if (!(f = fopen(path, "rb"))) return bert__err(BERT_ERR_IO, "%s: %s", path, strerror(errno));
    errno = 0;
    if ((getc(f) == EOF && ferror(f)) || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        e = errno; fclose(f);
        return bert__err(BERT_ERR_IO, "%s: %s", path, e ? strerror(e) : "cannot read");
    }
    if ((unsigned long)n >= (size_t)-1) { fclose(f); return bert__err(BERT_ERR_IO, "%s: file too large", path); }
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
    for (i = 0; i < obj->count; i++) if (!strcmp(obj->child[i].key, key)) return &obj->child[i];
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

/* Writes nelem elements of esize bytes little-endian (byte-swapping through a buffer on BE hosts). */
static int bert__io_fwrite_le(FILE *f, const void *data, size_t nelem, size_t esize) {
    const uint16_t one = 1;
    const unsigned char *s = (const unsigned char *)data;
    unsigned char buf[4096];
    if (!nelem) return 1;                              /* data may be NULL for empty tensors */
    if (esize == 1 || *(const unsigned char *)&one) return fwrite(data, esize, nelem, f) == nelem;
    while (nelem) {
        size_t m = nelem < sizeof buf / esize ? nelem : sizeof buf / esize, k, j;
        for (k = 0; k < m; k++) for (j = 0; j < esize; j++) buf[k * esize + j] = s[k * esize + esize - 1 - j];
        if (fwrite(buf, esize, m, f) != m) return 0;
        s += m * esize; nelem -= m;
    }
    return 1;
}

/* Validates all entries first, builds the header in memory, then writes PATH.tmp and renames it
   over PATH so a crash mid-save never leaves a truncated checkpoint behind. */
BERTDEF int bert_st_save(const char *path, const bert_st_entry *entries, int count, const char *const *meta_kv, int meta_pairs) {
    bert__io_sb h;
    const bert_st_entry **o = NULL;
    char num[64], *tmp = NULL;
    unsigned char len8[8];
    size_t off = 0, numel, i;
    FILE *f = NULL;
    int n, k, rc = BERT_OK, e;
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
    if (!rc && !(tmp = (char *)bert__malloc(strlen(path) + 5))) rc = BERT_ERR_OOM;
    if (rc) goto done;
    strcpy(tmp, path); strcat(tmp, ".tmp");
    for (i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    errno = 0;
    if (!(f = fopen(tmp, "wb"))) goto io_error;
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(h.p, 1, h.len, f) != h.len) goto io_error;
    for (n = 0; n < count; n++) {
        const bert_st_entry *en = &entries[n];
        for (numel = 1, k = 0; k < en->ndim; k++) numel *= (size_t)en->shape[k];
        if (!bert__io_fwrite_le(f, en->data, numel, bert__dt_sizes[en->dtype])) goto io_error;
    }
    if (fflush(f) != 0) goto io_error;
#if defined(__unix__) || defined(__APPLE__)
    if (fsync(fileno(f)) != 0) goto io_error;
#endif
    e = fclose(f); f = NULL;
    if (e != 0) goto io_error;
#ifdef _WIN32
    remove(path);
#endif
    if (rename(tmp, path) != 0) goto io_error;
    goto done;
io_error:
    e = errno;
    if (f) fclose(f);
    remove(tmp);
    rc = bert__err(BERT_ERR_IO, "%s: %s", path, e ? strerror(e) : "write error");
done:
    if (o) BERT_FREE((void *)o);
    if (tmp) BERT_FREE(tmp);
    if (h.p) BERT_FREE(h.p);
    return rc;
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

BERTDEF int bert_config_to_json(const bert_config *c, char *buf, size_t cap) {
    int n = snprintf(buf, cap,
        "{\"vocab_size\": %d, \"hidden_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
        "\"intermediate_size\": %d, \"max_position_embeddings\": %d, \"type_vocab_size\": %d, "
        "\"hidden_act\": \"%s\", \"hidden_dropout_prob\": %.9g, \"attention_probs_dropout_prob\": %.9g, "
        "\"initializer_range\": %.9g, \"layer_norm_eps\": %.9g}",
        c->vocab_size, c->hidden_size, c->num_hidden_layers, c->num_attention_heads, c->intermediate_size,
        c->max_position_embeddings, c->type_vocab_size, c->hidden_act == BERT_GELU_TANH ? "gelu_tanh" : "gelu",
        (double)c->hidden_dropout_prob, (double)c->attention_probs_dropout_prob, (double)c->initializer_range,
        (double)c->layer_norm_eps);
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

BERTDEF int bert_model_save(const bert_model *m, const char *path) {
    char config[1024];
    if (bert_config_to_json(&m->config, config, sizeof config) < 0) return bert__err(BERT_ERR_ARG, "config too long");
    bert_st_entry *e = (bert_st_entry *)bert__calloc((size_t)m->num_tensors, sizeof *e);
    if (!e) return BERT_ERR_OOM;
    for (int i = 0; i < m->num_tensors; i++) bert__entry(&e[i], m->names[i], &m->tensors[i], m->tensors[i].data);
    const char *meta[] = { "format", "bert.h", "format_version", "1", "config", config };
    int rc = bert_st_save(path, e, m->num_tensors, meta, 3);
    BERT_FREE(e);
    return rc;
}

// The stored name of tensor `name` in st: ours, then the spellings other BERT files use.
static const char *bert__st_alias(const bert_st *st, const char *name, char *buf, size_t cap) {
    if (bert_st_find(st, name)) return name;
    static const char *const from[] = { "LayerNorm.weight", "LayerNorm.bias", "cls.predictions.bias" };
    static const char *const to[] = { "LayerNorm.gamma", "LayerNorm.beta", "cls.predictions.decoder.bias" };
    for (int pass = 0; pass < 2; pass++) {   // pass 1: a BertModel file stores names without "bert."
        const char *base = name;
        if (pass == 1) {
            if (strncmp(name, "bert.", 5) != 0) break;
            base = name + 5;
            if (bert_st_find(st, base)) return base;
        }
        for (int i = 0; i < 3; i++) {
            const char *hit = strstr(base, from[i]);
            if (!hit) continue;
            snprintf(buf, cap, "%.*s%s%s", (int)(hit - base), base, to[i], hit + strlen(from[i]));
            if (bert_st_find(st, buf)) return buf;
        }
    }
    return name;   // not found: bert_st_read_f32 reports it by our name
}

// All or nothing: tensors are read into a scratch buffer, so a bad file leaves the model as it was.
static int bert__load_tensors(bert_model *m, const bert_st *st) {
    float *scratch = (float *)bert__calloc(m->num_params, sizeof(float));
    int rc = scratch ? BERT_OK : BERT_ERR_OOM;
    for (int i = 0; !rc && i < m->num_tensors; i++) {
        const bert_tensor *t = &m->tensors[i];
        int64_t shape[2] = { t->shape[0], t->shape[1] };
        char buf[160];
        rc = bert_st_read_f32(st, bert__st_alias(st, m->names[i], buf, sizeof buf), scratch + (t->data - m->params), shape, t->ndim);
    }
    if (!rc) memcpy(m->params, scratch, m->num_params * sizeof(float));
    BERT_FREE(scratch);
    return rc;
}

BERTDEF int bert_model_load_weights(bert_model *m, const char *path) {
    bert_st st;
    int rc = bert_st_open(&st, path);
    if (rc) return rc;
    rc = bert__load_tensors(m, &st);
    bert_st_close(&st);
    return rc;
}

// config for a checkpoint: its __metadata__, else the caller's, else a json file beside it
static int bert__checkpoint_config(bert_config *cfg, const bert_st *st, const char *path, const bert_config *given) {
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

BERTDEF bert_model *bert_model_load(const char *path, const bert_config *cfg_or_null) {
    bert_st st;
    if (bert_st_open(&st, path)) return NULL;
    bert_config cfg;
    bert_model *m = NULL;
    if (bert__checkpoint_config(&cfg, &st, path, cfg_or_null) == BERT_OK && (m = bert_model_create(&cfg, 0)) != NULL &&
        bert__load_tensors(m, &st) != BERT_OK) {
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
    if (e && names && meta) {
        for (int i = 0; i < n; i++) {
            int t = i % m->num_tensors;
            const float *buf = i < m->num_tensors ? o->m : o->v;
            snprintf(names + (size_t)i * 160, 160, "%s.%s", i < m->num_tensors ? "m" : "v", m->names[t]);
            bert__entry(&e[i], names + (size_t)i * 160, &m->tensors[t], buf + (m->tensors[t].data - m->params));
        }
        char step[32], hyper[512];
        snprintf(step, sizeof step, "%llu", (unsigned long long)o->step);
        snprintf(hyper, sizeof hyper,
                 "{\"lr\": %.9g, \"end_lr\": %.9g, \"poly_power\": %.9g, \"warmup_steps\": %d, \"total_steps\": %d, "
                 "\"beta1\": %.9g, \"beta2\": %.9g, \"eps\": %.9g, \"weight_decay\": %.9g, \"momentum\": %.9g, "
                 "\"clip_norm\": %.9g, \"bias_correction\": %d, \"lamb_exclude_ln_bias\": %d, \"accumulation_steps\": %d}",
                 (double)o->lr, (double)o->end_lr, (double)o->poly_power, o->warmup_steps, o->total_steps,
                 (double)o->beta1, (double)o->beta2, (double)o->eps, (double)o->weight_decay, (double)o->momentum,
                 (double)o->clip_norm, o->bias_correction, o->lamb_exclude_ln_bias, o->accumulation_steps);
        const char *fixed[] = { "format", "bert.h-optim", "optimizer", bert_optim_name(o->type), "step", step, "hparams", hyper };
        memcpy(meta, fixed, sizeof fixed);
        for (int i = 0; i < 2 * extra_pairs; i++) meta[8 + i] = extra_kv[i];
        rc = bert_st_save(path, e, n, meta, 4 + (extra_pairs > 0 ? extra_pairs : 0));
    }
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
    int step_ok = step && *step >= '0' && *step <= '9' && !*end && errno != ERANGE;
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
    }
    if (!rc) {
        memcpy(o->m, scratch, o->n * sizeof(float));
        if (o->v) memcpy(o->v, scratch + o->n, o->n * sizeof(float));
        o->step = s;
    }
    BERT_FREE(scratch);
    bert_st_close(&st);
    return rc;
}

// ----------------------------------------------------------------------------
// TFRecord reader/writer and the tf.train.Example codec of the pretraining schema

#define BERT__TFRECORD_MAX ((uint64_t)1 << 30)   // a record over 1 GiB is corrupt, not data

static uint32_t bert__crc32c_table[256];

// Castagnoli polynomial, reflected; the table is built on first use (idempotent, so a race
// between threads writes the same values).
BERTDEF uint32_t bert_crc32c(uint32_t crc, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    if (!bert__crc32c_table[1]) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
            bert__crc32c_table[i] = c;
        }
    }
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
    FILE *f = fopen(path, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (!f || n < 0 || fseek(f, 0, SEEK_SET) != 0) {
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
    if (offset > r->size || fseek((FILE *)r->file, (long)offset, SEEK_SET) != 0)
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
