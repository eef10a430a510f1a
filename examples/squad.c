// squad.c - SQuAD v1.1 question answering as google-research/bert's run_squad.py does it: fine-tune
// a span head (HF BertForQuestionAnswering's qa_outputs: start and end logits over every token),
// write predictions.json and nbest_predictions.json, and score them with the official v1.1 metric
// (exact match and token F1), which also scores any existing prediction file (--eval).
//
//   cc -O2 -march=native -fopenmp -std=c11 examples/squad.c -o build/squad -lm
//   ./build/squad --do_train --do_predict --train_file train-v1.1.json --predict_file dev-v1.1.json
//       --init bert_base.safetensors --vocab vocab.txt --output_dir squad_out      (one command line)
//   ./build/squad --eval dev-v1.1.json squad_out/predictions.json
//   ./build/squad --help
//
// The data path is run_squad's, checked feature for feature against tests/ref/squad_features_ref.py
// on all of dev-v1.1.json (tests/test_squad.c):
//   read_squad_examples   each context split on whitespace (space, \t, \r, \n, U+202F) into words,
//                         with a word index per character; the first answer's words from its
//                         answer_start (characters, not bytes); questions whose answer text is not
//                         in those words are skipped for training ("could not find answer")
//   convert_examples_...  WordPiece per word with piece <-> word maps; the question cut to
//                         --max_query_length pieces; [CLS] question [SEP] window [SEP], windows of up
//                         to max_seq_length - |question| - 3 pieces every --doc_stride pieces; the
//                         answer span tightened to the tokenized answer; an answer outside a window
//                         labelled at [CLS] (0); each piece's "max context" window (the one where
//                         min(left, right context) + 0.01 * window length is largest)
//   write_predictions     the --n_best_size best start and end positions of every window, spans
//                         inside the document, starting at a max-context piece, at most
//                         --max_answer_length pieces, sorted by start + end logit; get_final_text
//                         maps the WordPiece span back onto the original words (lower-casing,
//                         accents, punctuation and whitespace handled); the n-best de-duplicated
//                         by text with softmax probabilities
// Differences, by design: training steps count windows (features), not questions; the first
// answer is used where a training question has several (run_squad refuses those); --dynamic_padding
// pads a batch to its longest window instead of max_seq_length (faster; the softmax then spans
// fewer padding positions). Training order: an epoch visits the training windows in a
// Fisher-Yates permutation from bert_rng_stream(seed, epoch, SHUFFLE_SITE), micro-batch k of the
// run uses dropout step k; --resume continues from the newest checkpoint exactly.
#define _DEFAULT_SOURCE   // sigaction, mkdir, opendir
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <signal.h>
#include <dirent.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#define BERT_IMPLEMENTATION
#include "../bert.h"

#define SHUFFLE_SITE 0x5348554646ull   // "SHUFF": the shuffle's RNG site, apart from dropout's
#define FIRST_UNIQUE_ID 1000000000L    // run_squad's unique_id of the first feature

// ----------------------------------------------------------------------------
// options

static struct {
    int do_train, do_predict, do_lower_case, dynamic_padding, resume;
    const char *train_file, *predict_file, *train_articles, *predict_articles;
    const char *vocab, *init, *config, *output_dir, *optimizer, *debug_logits, *dump_features, *eval_details;
    int max_seq_length, doc_stride, max_query_length, n_best_size, max_answer_length;
    int train_batch_size, predict_batch_size, accumulation_steps, steps, warmup_steps;
    int save_every, keep, print_every, seed, threads, predict_limit;
    float epochs, lr, warmup_proportion, weight_decay, beta1, beta2, eps, clip_norm;
} opt = {
    .do_lower_case = 1, .output_dir = "squad_out",
    .optimizer = "adamw_gb", .max_seq_length = 384, .doc_stride = 128, .max_query_length = 64,
    .n_best_size = 20, .max_answer_length = 30, .train_batch_size = 32, .predict_batch_size = 8,
    .accumulation_steps = 1, .warmup_steps = -1, .keep = 2, .print_every = 10, .seed = 12345,
    .epochs = 3.0f, .lr = 5e-5f, .warmup_proportion = 0.1f, .weight_decay = 0.01f, .beta1 = 0.9f,
    .beta2 = 0.999f, .eps = 1e-6f, .clip_norm = 1.0f,
};

static const bert_flag flags[] = {
    { "do_train", BERT_FLAG_BOOL, &opt.do_train, "fine-tune on --train_file" },
    { "do_predict", BERT_FLAG_BOOL, &opt.do_predict, "predict --predict_file and score it when it has answers" },
    { "train_file", BERT_FLAG_STR, &opt.train_file, "SQuAD v1.1 JSON, e.g. train-v1.1.json" },
    { "predict_file", BERT_FLAG_STR, &opt.predict_file, "SQuAD v1.1 JSON, e.g. dev-v1.1.json" },
    { "train_articles", BERT_FLAG_STR, &opt.train_articles, "only articles A:B of --train_file (0-based, B excluded; e.g. 0:40); default all" },
    { "predict_articles", BERT_FLAG_STR, &opt.predict_articles, "only articles A:B of --predict_file (e.g. 40:48); default all" },
    { "vocab", BERT_FLAG_STR, &opt.vocab, "vocab.txt of the model" },
    { "init", BERT_FLAG_STR, &opt.init, "weights, safetensors: a pretrained BERT (qa_outputs.* then start random) or a fine-tuned one" },
    { "config", BERT_FLAG_STR, &opt.config, "bert_config.json: a random model without --init, or the config --init lacks" },
    { "output_dir", BERT_FLAG_STR, &opt.output_dir, "model.safetensors, predictions.json, nbest_predictions.json, log.jsonl, checkpoints" },
    { "do_lower_case", BERT_FLAG_BOOL, &opt.do_lower_case, "lower-case and strip accents (uncased models)" },
    { "max_seq_length", BERT_FLAG_INT, &opt.max_seq_length, "pieces per window, [CLS]/[SEP] included" },
    { "doc_stride", BERT_FLAG_INT, &opt.doc_stride, "pieces between the starts of two windows of a long context" },
    { "max_query_length", BERT_FLAG_INT, &opt.max_query_length, "question pieces kept" },
    { "n_best_size", BERT_FLAG_INT, &opt.n_best_size, "start/end candidates per window and n-best answers per question" },
    { "max_answer_length", BERT_FLAG_INT, &opt.max_answer_length, "longest answer, in pieces" },
    { "train_batch_size", BERT_FLAG_INT, &opt.train_batch_size, "windows per micro-batch" },
    { "predict_batch_size", BERT_FLAG_INT, &opt.predict_batch_size, "windows per forward pass when predicting" },
    { "accumulation_steps", BERT_FLAG_INT, &opt.accumulation_steps, "micro-batches per optimizer step" },
    { "num_train_epochs", BERT_FLAG_FLOAT, &opt.epochs, "passes over the training windows (may be fractional)" },
    { "steps", BERT_FLAG_INT, &opt.steps, "optimizer steps (0: from --num_train_epochs)" },
    { "optimizer", BERT_FLAG_STR, &opt.optimizer, "adamw_gb (Google's, run_squad's) | adamw | lamb | momentum" },
    { "learning_rate", BERT_FLAG_FLOAT, &opt.lr, "peak learning rate" },
    { "warmup_proportion", BERT_FLAG_FLOAT, &opt.warmup_proportion, "linear warmup as a fraction of the steps" },
    { "warmup_steps", BERT_FLAG_INT, &opt.warmup_steps, "linear warmup steps (-1: --warmup_proportion)" },
    { "weight_decay", BERT_FLAG_FLOAT, &opt.weight_decay, "decoupled weight decay (not on LayerNorm/bias)" },
    { "beta1", BERT_FLAG_FLOAT, &opt.beta1, "Adam/LAMB beta1" },
    { "beta2", BERT_FLAG_FLOAT, &opt.beta2, "Adam/LAMB beta2" },
    { "eps", BERT_FLAG_FLOAT, &opt.eps, "Adam/LAMB epsilon" },
    { "clip_norm", BERT_FLAG_FLOAT, &opt.clip_norm, "global gradient norm clip, 0 = off" },
    { "seed", BERT_FLAG_INT, &opt.seed, "seed of the shuffle, the dropout masks and random weights" },
    { "dynamic_padding", BERT_FLAG_BOOL, &opt.dynamic_padding, "pad each batch to its longest window, not max_seq_length" },
    { "save_every", BERT_FLAG_INT, &opt.save_every, "checkpoint every N steps (0: only the final model)" },
    { "keep", BERT_FLAG_INT, &opt.keep, "checkpoints kept (oldest deleted)" },
    { "resume", BERT_FLAG_BOOL, &opt.resume, "continue training from the newest checkpoint in --output_dir" },
    { "print_every", BERT_FLAG_INT, &opt.print_every, "progress line every N steps" },
    { "threads", BERT_FLAG_INT, &opt.threads, "OpenMP threads (0: OMP_NUM_THREADS or all cores)" },
    { "predict_limit", BERT_FLAG_INT, &opt.predict_limit, "predict only the first N questions (0: all), e.g. to measure throughput" },
    { "eval_details", BERT_FLAG_STR, &opt.eval_details, "also write each question's exact_match and f1 as JSON lines" },
    { "dump_features", BERT_FLAG_STR, &opt.dump_features, "testing: write --predict_file's windows as text (tests/ref/squad_features_ref.py's format)" },
    { "debug_logits", BERT_FLAG_STR, &opt.debug_logits, "testing: predict without a model from 'oracle' (gold) or 'random' logits" },
};
#define NFLAGS ((int)(sizeof flags / sizeof flags[0]))

static void usage(FILE *f) {
    fprintf(f, "usage: squad --do_train --train_file train-v1.1.json [--do_predict --predict_file dev-v1.1.json]\n"
               "             --vocab vocab.txt (--init model.safetensors | --config bert_config.json) [flags]\n"
               "       squad --do_predict --predict_file dev-v1.1.json --init fine_tuned.safetensors --vocab vocab.txt\n"
               "       squad --eval DATA.json PREDICTIONS.json [--eval_details OUT.jsonl]\n"
               "SQuAD v1.1 as google-research/bert's run_squad.py: fine-tuning, predictions.json and\n"
               "nbest_predictions.json, and the official EM/F1. Ctrl-C while training saves a checkpoint\n"
               "(exit 130); --resume continues it.\n\nflags:\n");
    bert_flags_usage(f, flags, NFLAGS);
}

static void die(const char *fmt, ...) BERT__PRINTF(1, 2);
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "squad: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static char *xstrndup(const char *s, size_t n) {
    char *d = (char *)xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

// growable arrays: ARR_PUSH(ptr, len, cap, value)
#define ARR_PUSH(a, n, cap, v) do { \
        if ((n) == (cap)) { (cap) = (cap) ? 2 * (cap) : 64; (a) = xrealloc((a), (size_t)(cap) * sizeof *(a)); } \
        (a)[(n)++] = (v); \
    } while (0)

// ----------------------------------------------------------------------------
// UTF-8 (the JSON reader has validated every string) and Python's str methods on it

// one character of valid UTF-8 at s[*i]; advances *i
static uint32_t utf8_next(const char *s, size_t *i) {
    const unsigned char *u = (const unsigned char *)s + *i;
    if (u[0] < 0x80) { *i += 1; return u[0]; }
    if (u[0] < 0xE0) { *i += 2; return (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F); }
    if (u[0] < 0xF0) { *i += 3; return (uint32_t)(u[0] & 0x0F) << 12 | (uint32_t)(u[1] & 0x3F) << 6 | (u[2] & 0x3F); }
    *i += 4;
    return (uint32_t)(u[0] & 0x07) << 18 | (uint32_t)(u[1] & 0x3F) << 12 | (uint32_t)(u[2] & 0x3F) << 6 | (u[3] & 0x3F);
}

static size_t utf8_put(char *p, uint32_t c) {
    if (c < 0x80) { p[0] = (char)c; return 1; }
    if (c < 0x800) { p[0] = (char)(0xC0 | c >> 6); p[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) { p[0] = (char)(0xE0 | c >> 12); p[1] = (char)(0x80 | (c >> 6 & 0x3F)); p[2] = (char)(0x80 | (c & 0x3F)); return 3; }
    p[0] = (char)(0xF0 | c >> 18); p[1] = (char)(0x80 | (c >> 12 & 0x3F)); p[2] = (char)(0x80 | (c >> 6 & 0x3F)); p[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

typedef struct { uint32_t *c; size_t n, cap; } cps;   // code points

static void cps_push(cps *a, uint32_t c) { ARR_PUSH(a->c, a->n, a->cap, c); }

static void cps_from(cps *a, const char *s, size_t len) {
    a->n = 0;
    for (size_t i = 0; i < len;) cps_push(a, utf8_next(s, &i));
}

// code points -> UTF-8 in a malloc'ed string
static char *cps_utf8(const uint32_t *c, size_t n, size_t *len) {
    char *s = (char *)xmalloc(4 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += utf8_put(s + k, c[i]);
    s[k] = 0;
    if (len) *len = k;
    return s;
}

// BEGIN GENERATED SQUAD TABLES: /usr/bin/python3 tools/gen_squad_tables.py --write examples/squad.c
// from Python 3.11.2's str methods, Unicode 14.0.0. Do not edit by hand.
#define SQUAD_UNICODE_VERSION "14.0.0"
typedef struct { uint32_t first; int32_t delta; uint16_t count, step; } lower_run;
static const lower_run lower_runs[181] = {
    {0x41,32,26,1},{0xc0,32,23,1},{0xd8,32,7,1},{0x100,1,24,2},{0x132,1,3,2},{0x139,1,8,2},
    {0x14a,1,23,2},{0x178,-121,1,1},{0x179,1,3,2},{0x181,210,1,1},{0x182,1,2,2},{0x186,206,1,1},
    {0x187,1,1,1},{0x189,205,2,1},{0x18b,1,1,1},{0x18e,79,1,1},{0x18f,202,1,1},{0x190,203,1,1},
    {0x191,1,1,1},{0x193,205,1,1},{0x194,207,1,1},{0x196,211,1,1},{0x197,209,1,1},{0x198,1,1,1},
    {0x19c,211,1,1},{0x19d,213,1,1},{0x19f,214,1,1},{0x1a0,1,3,2},{0x1a6,218,1,1},{0x1a7,1,1,1},
    {0x1a9,218,1,1},{0x1ac,1,1,1},{0x1ae,218,1,1},{0x1af,1,1,1},{0x1b1,217,2,1},{0x1b3,1,2,2},
    {0x1b7,219,1,1},{0x1b8,1,1,1},{0x1bc,1,1,1},{0x1c4,2,1,1},{0x1c5,1,1,1},{0x1c7,2,1,1},
    {0x1c8,1,1,1},{0x1ca,2,1,1},{0x1cb,1,9,2},{0x1de,1,9,2},{0x1f1,2,1,1},{0x1f2,1,2,2},
    {0x1f6,-97,1,1},{0x1f7,-56,1,1},{0x1f8,1,20,2},{0x220,-130,1,1},{0x222,1,9,2},{0x23a,10795,1,1},
    {0x23b,1,1,1},{0x23d,-163,1,1},{0x23e,10792,1,1},{0x241,1,1,1},{0x243,-195,1,1},{0x244,69,1,1},
    {0x245,71,1,1},{0x246,1,5,2},{0x370,1,2,2},{0x376,1,1,1},{0x37f,116,1,1},{0x386,38,1,1},
    {0x388,37,3,1},{0x38c,64,1,1},{0x38e,63,2,1},{0x391,32,17,1},{0x3a4,32,8,1},{0x3cf,8,1,1},
    {0x3d8,1,12,2},{0x3f4,-60,1,1},{0x3f7,1,1,1},{0x3f9,-7,1,1},{0x3fa,1,1,1},{0x3fd,-130,3,1},
    {0x400,80,16,1},{0x410,32,32,1},{0x460,1,17,2},{0x48a,1,27,2},{0x4c0,15,1,1},{0x4c1,1,7,2},
    {0x4d0,1,48,2},{0x531,48,38,1},{0x10a0,7264,38,1},{0x10c7,7264,1,1},{0x10cd,7264,1,1},{0x13a0,38864,80,1},
    {0x13f0,8,6,1},{0x1c90,-3008,43,1},{0x1cbd,-3008,3,1},{0x1e00,1,75,2},{0x1e9e,-7615,1,1},{0x1ea0,1,48,2},
    {0x1f08,-8,8,1},{0x1f18,-8,6,1},{0x1f28,-8,8,1},{0x1f38,-8,8,1},{0x1f48,-8,6,1},{0x1f59,-8,4,2},
    {0x1f68,-8,8,1},{0x1f88,-8,8,1},{0x1f98,-8,8,1},{0x1fa8,-8,8,1},{0x1fb8,-8,2,1},{0x1fba,-74,2,1},
    {0x1fbc,-9,1,1},{0x1fc8,-86,4,1},{0x1fcc,-9,1,1},{0x1fd8,-8,2,1},{0x1fda,-100,2,1},{0x1fe8,-8,2,1},
    {0x1fea,-112,2,1},{0x1fec,-7,1,1},{0x1ff8,-128,2,1},{0x1ffa,-126,2,1},{0x1ffc,-9,1,1},{0x2126,-7517,1,1},
    {0x212a,-8383,1,1},{0x212b,-8262,1,1},{0x2132,28,1,1},{0x2160,16,16,1},{0x2183,1,1,1},{0x24b6,26,26,1},
    {0x2c00,48,48,1},{0x2c60,1,1,1},{0x2c62,-10743,1,1},{0x2c63,-3814,1,1},{0x2c64,-10727,1,1},{0x2c67,1,3,2},
    {0x2c6d,-10780,1,1},{0x2c6e,-10749,1,1},{0x2c6f,-10783,1,1},{0x2c70,-10782,1,1},{0x2c72,1,1,1},{0x2c75,1,1,1},
    {0x2c7e,-10815,2,1},{0x2c80,1,50,2},{0x2ceb,1,2,2},{0x2cf2,1,1,1},{0xa640,1,23,2},{0xa680,1,14,2},
    {0xa722,1,7,2},{0xa732,1,31,2},{0xa779,1,2,2},{0xa77d,-35332,1,1},{0xa77e,1,5,2},{0xa78b,1,1,1},
    {0xa78d,-42280,1,1},{0xa790,1,2,2},{0xa796,1,10,2},{0xa7aa,-42308,1,1},{0xa7ab,-42319,1,1},{0xa7ac,-42315,1,1},
    {0xa7ad,-42305,1,1},{0xa7ae,-42308,1,1},{0xa7b0,-42258,1,1},{0xa7b1,-42282,1,1},{0xa7b2,-42261,1,1},{0xa7b3,928,1,1},
    {0xa7b4,1,8,2},{0xa7c4,-48,1,1},{0xa7c5,-42307,1,1},{0xa7c6,-35384,1,1},{0xa7c7,1,2,2},{0xa7d0,1,1,1},
    {0xa7d6,1,2,2},{0xa7f5,1,1,1},{0xff21,32,26,1},{0x10400,40,40,1},{0x104b0,40,36,1},{0x10570,39,11,1},
    {0x1057c,39,15,1},{0x1058c,39,7,1},{0x10594,39,2,1},{0x10c80,64,51,1},{0x118a0,32,32,1},{0x16e40,32,32,1},
    {0x1e900,34,34,1},
};
static const uint32_t word_changes[1468] = {
    0x30,0x3a,0x41,0x5b,0x5f,0x60,0x61,0x7b,0xaa,0xab,0xb2,0xb4,
    0xb5,0xb6,0xb9,0xbb,0xbc,0xbf,0xc0,0xd7,0xd8,0xf7,0xf8,0x2c2,
    0x2c6,0x2d2,0x2e0,0x2e5,0x2ec,0x2ed,0x2ee,0x2ef,0x370,0x375,0x376,0x378,
    0x37a,0x37e,0x37f,0x380,0x386,0x387,0x388,0x38b,0x38c,0x38d,0x38e,0x3a2,
    0x3a3,0x3f6,0x3f7,0x482,0x48a,0x530,0x531,0x557,0x559,0x55a,0x560,0x589,
    0x5d0,0x5eb,0x5ef,0x5f3,0x620,0x64b,0x660,0x66a,0x66e,0x670,0x671,0x6d4,
    0x6d5,0x6d6,0x6e5,0x6e7,0x6ee,0x6fd,0x6ff,0x700,0x710,0x711,0x712,0x730,
    0x74d,0x7a6,0x7b1,0x7b2,0x7c0,0x7eb,0x7f4,0x7f6,0x7fa,0x7fb,0x800,0x816,
    0x81a,0x81b,0x824,0x825,0x828,0x829,0x840,0x859,0x860,0x86b,0x870,0x888,
    0x889,0x88f,0x8a0,0x8ca,0x904,0x93a,0x93d,0x93e,0x950,0x951,0x958,0x962,
    0x966,0x970,0x971,0x981,0x985,0x98d,0x98f,0x991,0x993,0x9a9,0x9aa,0x9b1,
    0x9b2,0x9b3,0x9b6,0x9ba,0x9bd,0x9be,0x9ce,0x9cf,0x9dc,0x9de,0x9df,0x9e2,
    0x9e6,0x9f2,0x9f4,0x9fa,0x9fc,0x9fd,0xa05,0xa0b,0xa0f,0xa11,0xa13,0xa29,
    0xa2a,0xa31,0xa32,0xa34,0xa35,0xa37,0xa38,0xa3a,0xa59,0xa5d,0xa5e,0xa5f,
    0xa66,0xa70,0xa72,0xa75,0xa85,0xa8e,0xa8f,0xa92,0xa93,0xaa9,0xaaa,0xab1,
    0xab2,0xab4,0xab5,0xaba,0xabd,0xabe,0xad0,0xad1,0xae0,0xae2,0xae6,0xaf0,
    0xaf9,0xafa,0xb05,0xb0d,0xb0f,0xb11,0xb13,0xb29,0xb2a,0xb31,0xb32,0xb34,
    0xb35,0xb3a,0xb3d,0xb3e,0xb5c,0xb5e,0xb5f,0xb62,0xb66,0xb70,0xb71,0xb78,
    0xb83,0xb84,0xb85,0xb8b,0xb8e,0xb91,0xb92,0xb96,0xb99,0xb9b,0xb9c,0xb9d,
    0xb9e,0xba0,0xba3,0xba5,0xba8,0xbab,0xbae,0xbba,0xbd0,0xbd1,0xbe6,0xbf3,
    0xc05,0xc0d,0xc0e,0xc11,0xc12,0xc29,0xc2a,0xc3a,0xc3d,0xc3e,0xc58,0xc5b,
    0xc5d,0xc5e,0xc60,0xc62,0xc66,0xc70,0xc78,0xc7f,0xc80,0xc81,0xc85,0xc8d,
    0xc8e,0xc91,0xc92,0xca9,0xcaa,0xcb4,0xcb5,0xcba,0xcbd,0xcbe,0xcdd,0xcdf,
    0xce0,0xce2,0xce6,0xcf0,0xcf1,0xcf3,0xd04,0xd0d,0xd0e,0xd11,0xd12,0xd3b,
    0xd3d,0xd3e,0xd4e,0xd4f,0xd54,0xd57,0xd58,0xd62,0xd66,0xd79,0xd7a,0xd80,
    0xd85,0xd97,0xd9a,0xdb2,0xdb3,0xdbc,0xdbd,0xdbe,0xdc0,0xdc7,0xde6,0xdf0,
    0xe01,0xe31,0xe32,0xe34,0xe40,0xe47,0xe50,0xe5a,0xe81,0xe83,0xe84,0xe85,
    0xe86,0xe8b,0xe8c,0xea4,0xea5,0xea6,0xea7,0xeb1,0xeb2,0xeb4,0xebd,0xebe,
    0xec0,0xec5,0xec6,0xec7,0xed0,0xeda,0xedc,0xee0,0xf00,0xf01,0xf20,0xf34,
    0xf40,0xf48,0xf49,0xf6d,0xf88,0xf8d,0x1000,0x102b,0x103f,0x104a,0x1050,0x1056,
    0x105a,0x105e,0x1061,0x1062,0x1065,0x1067,0x106e,0x1071,0x1075,0x1082,0x108e,0x108f,
    0x1090,0x109a,0x10a0,0x10c6,0x10c7,0x10c8,0x10cd,0x10ce,0x10d0,0x10fb,0x10fc,0x1249,
    0x124a,0x124e,0x1250,0x1257,0x1258,0x1259,0x125a,0x125e,0x1260,0x1289,0x128a,0x128e,
    0x1290,0x12b1,0x12b2,0x12b6,0x12b8,0x12bf,0x12c0,0x12c1,0x12c2,0x12c6,0x12c8,0x12d7,
    0x12d8,0x1311,0x1312,0x1316,0x1318,0x135b,0x1369,0x137d,0x1380,0x1390,0x13a0,0x13f6,
    0x13f8,0x13fe,0x1401,0x166d,0x166f,0x1680,0x1681,0x169b,0x16a0,0x16eb,0x16ee,0x16f9,
    0x1700,0x1712,0x171f,0x1732,0x1740,0x1752,0x1760,0x176d,0x176e,0x1771,0x1780,0x17b4,
    0x17d7,0x17d8,0x17dc,0x17dd,0x17e0,0x17ea,0x17f0,0x17fa,0x1810,0x181a,0x1820,0x1879,
    0x1880,0x1885,0x1887,0x18a9,0x18aa,0x18ab,0x18b0,0x18f6,0x1900,0x191f,0x1946,0x196e,
    0x1970,0x1975,0x1980,0x19ac,0x19b0,0x19ca,0x19d0,0x19db,0x1a00,0x1a17,0x1a20,0x1a55,
    0x1a80,0x1a8a,0x1a90,0x1a9a,0x1aa7,0x1aa8,0x1b05,0x1b34,0x1b45,0x1b4d,0x1b50,0x1b5a,
    0x1b83,0x1ba1,0x1bae,0x1be6,0x1c00,0x1c24,0x1c40,0x1c4a,0x1c4d,0x1c7e,0x1c80,0x1c89,
    0x1c90,0x1cbb,0x1cbd,0x1cc0,0x1ce9,0x1ced,0x1cee,0x1cf4,0x1cf5,0x1cf7,0x1cfa,0x1cfb,
    0x1d00,0x1dc0,0x1e00,0x1f16,0x1f18,0x1f1e,0x1f20,0x1f46,0x1f48,0x1f4e,0x1f50,0x1f58,
    0x1f59,0x1f5a,0x1f5b,0x1f5c,0x1f5d,0x1f5e,0x1f5f,0x1f7e,0x1f80,0x1fb5,0x1fb6,0x1fbd,
    0x1fbe,0x1fbf,0x1fc2,0x1fc5,0x1fc6,0x1fcd,0x1fd0,0x1fd4,0x1fd6,0x1fdc,0x1fe0,0x1fed,
    0x1ff2,0x1ff5,0x1ff6,0x1ffd,0x2070,0x2072,0x2074,0x207a,0x207f,0x208a,0x2090,0x209d,
    0x2102,0x2103,0x2107,0x2108,0x210a,0x2114,0x2115,0x2116,0x2119,0x211e,0x2124,0x2125,
    0x2126,0x2127,0x2128,0x2129,0x212a,0x212e,0x212f,0x213a,0x213c,0x2140,0x2145,0x214a,
    0x214e,0x214f,0x2150,0x218a,0x2460,0x249c,0x24ea,0x2500,0x2776,0x2794,0x2c00,0x2ce5,
    0x2ceb,0x2cef,0x2cf2,0x2cf4,0x2cfd,0x2cfe,0x2d00,0x2d26,0x2d27,0x2d28,0x2d2d,0x2d2e,
    0x2d30,0x2d68,0x2d6f,0x2d70,0x2d80,0x2d97,0x2da0,0x2da7,0x2da8,0x2daf,0x2db0,0x2db7,
    0x2db8,0x2dbf,0x2dc0,0x2dc7,0x2dc8,0x2dcf,0x2dd0,0x2dd7,0x2dd8,0x2ddf,0x2e2f,0x2e30,
    0x3005,0x3008,0x3021,0x302a,0x3031,0x3036,0x3038,0x303d,0x3041,0x3097,0x309d,0x30a0,
    0x30a1,0x30fb,0x30fc,0x3100,0x3105,0x3130,0x3131,0x318f,0x3192,0x3196,0x31a0,0x31c0,
    0x31f0,0x3200,0x3220,0x322a,0x3248,0x3250,0x3251,0x3260,0x3280,0x328a,0x32b1,0x32c0,
    0x3400,0x4dc0,0x4e00,0xa48d,0xa4d0,0xa4fe,0xa500,0xa60d,0xa610,0xa62c,0xa640,0xa66f,
    0xa67f,0xa69e,0xa6a0,0xa6f0,0xa717,0xa720,0xa722,0xa789,0xa78b,0xa7cb,0xa7d0,0xa7d2,
    0xa7d3,0xa7d4,0xa7d5,0xa7da,0xa7f2,0xa802,0xa803,0xa806,0xa807,0xa80b,0xa80c,0xa823,
    0xa830,0xa836,0xa840,0xa874,0xa882,0xa8b4,0xa8d0,0xa8da,0xa8f2,0xa8f8,0xa8fb,0xa8fc,
    0xa8fd,0xa8ff,0xa900,0xa926,0xa930,0xa947,0xa960,0xa97d,0xa984,0xa9b3,0xa9cf,0xa9da,
    0xa9e0,0xa9e5,0xa9e6,0xa9ff,0xaa00,0xaa29,0xaa40,0xaa43,0xaa44,0xaa4c,0xaa50,0xaa5a,
    0xaa60,0xaa77,0xaa7a,0xaa7b,0xaa7e,0xaab0,0xaab1,0xaab2,0xaab5,0xaab7,0xaab9,0xaabe,
    0xaac0,0xaac1,0xaac2,0xaac3,0xaadb,0xaade,0xaae0,0xaaeb,0xaaf2,0xaaf5,0xab01,0xab07,
    0xab09,0xab0f,0xab11,0xab17,0xab20,0xab27,0xab28,0xab2f,0xab30,0xab5b,0xab5c,0xab6a,
    0xab70,0xabe3,0xabf0,0xabfa,0xac00,0xd7a4,0xd7b0,0xd7c7,0xd7cb,0xd7fc,0xf900,0xfa6e,
    0xfa70,0xfada,0xfb00,0xfb07,0xfb13,0xfb18,0xfb1d,0xfb1e,0xfb1f,0xfb29,0xfb2a,0xfb37,
    0xfb38,0xfb3d,0xfb3e,0xfb3f,0xfb40,0xfb42,0xfb43,0xfb45,0xfb46,0xfbb2,0xfbd3,0xfd3e,
    0xfd50,0xfd90,0xfd92,0xfdc8,0xfdf0,0xfdfc,0xfe70,0xfe75,0xfe76,0xfefd,0xff10,0xff1a,
    0xff21,0xff3b,0xff41,0xff5b,0xff66,0xffbf,0xffc2,0xffc8,0xffca,0xffd0,0xffd2,0xffd8,
    0xffda,0xffdd,0x10000,0x1000c,0x1000d,0x10027,0x10028,0x1003b,0x1003c,0x1003e,0x1003f,0x1004e,
    0x10050,0x1005e,0x10080,0x100fb,0x10107,0x10134,0x10140,0x10179,0x1018a,0x1018c,0x10280,0x1029d,
    0x102a0,0x102d1,0x102e1,0x102fc,0x10300,0x10324,0x1032d,0x1034b,0x10350,0x10376,0x10380,0x1039e,
    0x103a0,0x103c4,0x103c8,0x103d0,0x103d1,0x103d6,0x10400,0x1049e,0x104a0,0x104aa,0x104b0,0x104d4,
    0x104d8,0x104fc,0x10500,0x10528,0x10530,0x10564,0x10570,0x1057b,0x1057c,0x1058b,0x1058c,0x10593,
    0x10594,0x10596,0x10597,0x105a2,0x105a3,0x105b2,0x105b3,0x105ba,0x105bb,0x105bd,0x10600,0x10737,
    0x10740,0x10756,0x10760,0x10768,0x10780,0x10786,0x10787,0x107b1,0x107b2,0x107bb,0x10800,0x10806,
    0x10808,0x10809,0x1080a,0x10836,0x10837,0x10839,0x1083c,0x1083d,0x1083f,0x10856,0x10858,0x10877,
    0x10879,0x1089f,0x108a7,0x108b0,0x108e0,0x108f3,0x108f4,0x108f6,0x108fb,0x1091c,0x10920,0x1093a,
    0x10980,0x109b8,0x109bc,0x109d0,0x109d2,0x10a01,0x10a10,0x10a14,0x10a15,0x10a18,0x10a19,0x10a36,
    0x10a40,0x10a49,0x10a60,0x10a7f,0x10a80,0x10aa0,0x10ac0,0x10ac8,0x10ac9,0x10ae5,0x10aeb,0x10af0,
    0x10b00,0x10b36,0x10b40,0x10b56,0x10b58,0x10b73,0x10b78,0x10b92,0x10ba9,0x10bb0,0x10c00,0x10c49,
    0x10c80,0x10cb3,0x10cc0,0x10cf3,0x10cfa,0x10d24,0x10d30,0x10d3a,0x10e60,0x10e7f,0x10e80,0x10eaa,
    0x10eb0,0x10eb2,0x10f00,0x10f28,0x10f30,0x10f46,0x10f51,0x10f55,0x10f70,0x10f82,0x10fb0,0x10fcc,
    0x10fe0,0x10ff7,0x11003,0x11038,0x11052,0x11070,0x11071,0x11073,0x11075,0x11076,0x11083,0x110b0,
    0x110d0,0x110e9,0x110f0,0x110fa,0x11103,0x11127,0x11136,0x11140,0x11144,0x11145,0x11147,0x11148,
    0x11150,0x11173,0x11176,0x11177,0x11183,0x111b3,0x111c1,0x111c5,0x111d0,0x111db,0x111dc,0x111dd,
    0x111e1,0x111f5,0x11200,0x11212,0x11213,0x1122c,0x11280,0x11287,0x11288,0x11289,0x1128a,0x1128e,
    0x1128f,0x1129e,0x1129f,0x112a9,0x112b0,0x112df,0x112f0,0x112fa,0x11305,0x1130d,0x1130f,0x11311,
    0x11313,0x11329,0x1132a,0x11331,0x11332,0x11334,0x11335,0x1133a,0x1133d,0x1133e,0x11350,0x11351,
    0x1135d,0x11362,0x11400,0x11435,0x11447,0x1144b,0x11450,0x1145a,0x1145f,0x11462,0x11480,0x114b0,
    0x114c4,0x114c6,0x114c7,0x114c8,0x114d0,0x114da,0x11580,0x115af,0x115d8,0x115dc,0x11600,0x11630,
    0x11644,0x11645,0x11650,0x1165a,0x11680,0x116ab,0x116b8,0x116b9,0x116c0,0x116ca,0x11700,0x1171b,
    0x11730,0x1173c,0x11740,0x11747,0x11800,0x1182c,0x118a0,0x118f3,0x118ff,0x11907,0x11909,0x1190a,
    0x1190c,0x11914,0x11915,0x11917,0x11918,0x11930,0x1193f,0x11940,0x11941,0x11942,0x11950,0x1195a,
    0x119a0,0x119a8,0x119aa,0x119d1,0x119e1,0x119e2,0x119e3,0x119e4,0x11a00,0x11a01,0x11a0b,0x11a33,
    0x11a3a,0x11a3b,0x11a50,0x11a51,0x11a5c,0x11a8a,0x11a9d,0x11a9e,0x11ab0,0x11af9,0x11c00,0x11c09,
    0x11c0a,0x11c2f,0x11c40,0x11c41,0x11c50,0x11c6d,0x11c72,0x11c90,0x11d00,0x11d07,0x11d08,0x11d0a,
    0x11d0b,0x11d31,0x11d46,0x11d47,0x11d50,0x11d5a,0x11d60,0x11d66,0x11d67,0x11d69,0x11d6a,0x11d8a,
    0x11d98,0x11d99,0x11da0,0x11daa,0x11ee0,0x11ef3,0x11fb0,0x11fb1,0x11fc0,0x11fd5,0x12000,0x1239a,
    0x12400,0x1246f,0x12480,0x12544,0x12f90,0x12ff1,0x13000,0x1342f,0x14400,0x14647,0x16800,0x16a39,
    0x16a40,0x16a5f,0x16a60,0x16a6a,0x16a70,0x16abf,0x16ac0,0x16aca,0x16ad0,0x16aee,0x16b00,0x16b30,
    0x16b40,0x16b44,0x16b50,0x16b5a,0x16b5b,0x16b62,0x16b63,0x16b78,0x16b7d,0x16b90,0x16e40,0x16e97,
    0x16f00,0x16f4b,0x16f50,0x16f51,0x16f93,0x16fa0,0x16fe0,0x16fe2,0x16fe3,0x16fe4,0x17000,0x187f8,
    0x18800,0x18cd6,0x18d00,0x18d09,0x1aff0,0x1aff4,0x1aff5,0x1affc,0x1affd,0x1afff,0x1b000,0x1b123,
    0x1b150,0x1b153,0x1b164,0x1b168,0x1b170,0x1b2fc,0x1bc00,0x1bc6b,0x1bc70,0x1bc7d,0x1bc80,0x1bc89,
    0x1bc90,0x1bc9a,0x1d2e0,0x1d2f4,0x1d360,0x1d379,0x1d400,0x1d455,0x1d456,0x1d49d,0x1d49e,0x1d4a0,
    0x1d4a2,0x1d4a3,0x1d4a5,0x1d4a7,0x1d4a9,0x1d4ad,0x1d4ae,0x1d4ba,0x1d4bb,0x1d4bc,0x1d4bd,0x1d4c4,
    0x1d4c5,0x1d506,0x1d507,0x1d50b,0x1d50d,0x1d515,0x1d516,0x1d51d,0x1d51e,0x1d53a,0x1d53b,0x1d53f,
    0x1d540,0x1d545,0x1d546,0x1d547,0x1d54a,0x1d551,0x1d552,0x1d6a6,0x1d6a8,0x1d6c1,0x1d6c2,0x1d6db,
    0x1d6dc,0x1d6fb,0x1d6fc,0x1d715,0x1d716,0x1d735,0x1d736,0x1d74f,0x1d750,0x1d76f,0x1d770,0x1d789,
    0x1d78a,0x1d7a9,0x1d7aa,0x1d7c3,0x1d7c4,0x1d7cc,0x1d7ce,0x1d800,0x1df00,0x1df1f,0x1e100,0x1e12d,
    0x1e137,0x1e13e,0x1e140,0x1e14a,0x1e14e,0x1e14f,0x1e290,0x1e2ae,0x1e2c0,0x1e2ec,0x1e2f0,0x1e2fa,
    0x1e7e0,0x1e7e7,0x1e7e8,0x1e7ec,0x1e7ed,0x1e7ef,0x1e7f0,0x1e7ff,0x1e800,0x1e8c5,0x1e8c7,0x1e8d0,
    0x1e900,0x1e944,0x1e94b,0x1e94c,0x1e950,0x1e95a,0x1ec71,0x1ecac,0x1ecad,0x1ecb0,0x1ecb1,0x1ecb5,
    0x1ed01,0x1ed2e,0x1ed2f,0x1ed3e,0x1ee00,0x1ee04,0x1ee05,0x1ee20,0x1ee21,0x1ee23,0x1ee24,0x1ee25,
    0x1ee27,0x1ee28,0x1ee29,0x1ee33,0x1ee34,0x1ee38,0x1ee39,0x1ee3a,0x1ee3b,0x1ee3c,0x1ee42,0x1ee43,
    0x1ee47,0x1ee48,0x1ee49,0x1ee4a,0x1ee4b,0x1ee4c,0x1ee4d,0x1ee50,0x1ee51,0x1ee53,0x1ee54,0x1ee55,
    0x1ee57,0x1ee58,0x1ee59,0x1ee5a,0x1ee5b,0x1ee5c,0x1ee5d,0x1ee5e,0x1ee5f,0x1ee60,0x1ee61,0x1ee63,
    0x1ee64,0x1ee65,0x1ee67,0x1ee6b,0x1ee6c,0x1ee73,0x1ee74,0x1ee78,0x1ee79,0x1ee7d,0x1ee7e,0x1ee7f,
    0x1ee80,0x1ee8a,0x1ee8b,0x1ee9c,0x1eea1,0x1eea4,0x1eea5,0x1eeaa,0x1eeab,0x1eebc,0x1f100,0x1f10d,
    0x1fbf0,0x1fbfa,0x20000,0x2a6e0,0x2a700,0x2b739,0x2b740,0x2b81e,0x2b820,0x2cea2,0x2ceb0,0x2ebe1,
    0x2f800,0x2fa1e,0x30000,0x3134b,
};
static const uint32_t space_chars[29] = {
    0x9,0xa,0xb,0xc,0xd,0x1c,0x1d,0x1e,0x1f,0x20,0x85,0xa0,0x1680,0x2000,0x2001,0x2002,
    0x2003,0x2004,0x2005,0x2006,0x2007,0x2008,0x2009,0x200a,0x2028,0x2029,0x202f,0x205f,0x3000,
};
// END GENERATED SQUAD TABLES

static int is_space(uint32_t c) {   // str.isspace()
    for (size_t i = 0; i < sizeof space_chars / sizeof *space_chars; i++) if (space_chars[i] == c) return 1;
    return 0;
}

static int is_word(uint32_t c) {   // the regex \w of a str pattern: str.isalnum() or "_"
    size_t lo = 0, hi = sizeof word_changes / sizeof *word_changes;   // changes <= c: odd = word
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (word_changes[mid] <= c) lo = mid + 1; else hi = mid;
    }
    return (int)(lo & 1);
}

static uint32_t lower_one(uint32_t c) {   // str.lower() of one character that stays one character
    size_t lo = 0, hi = sizeof lower_runs / sizeof *lower_runs;
    if (c < lower_runs[0].first) return c;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (lower_runs[mid].first <= c) lo = mid; else hi = mid;
    }
    const lower_run *r = &lower_runs[lo];
    uint32_t d = c - r->first;
    return d % r->step == 0 && d / r->step < r->count ? (uint32_t)((int32_t)c + r->delta) : c;
}

// str.lower(): per character, U+0130 to "i" + U+0307, and U+03A3 by the Final_Sigma rule (with
// bert.h's tokenizer tables for "cased" and "case-ignorable", which come from the same Python)
static void py_lower(cps *out, const uint32_t *c, size_t n) {
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i] == 0x130) { cps_push(out, 0x69); cps_push(out, 0x307); }
        else if (c[i] == 0x3A3) cps_push(out, bert__final_sigma(c, n, i) ? 0x3C2 : 0x3C3);
        else cps_push(out, lower_one(c[i]));
    }
}

// ----------------------------------------------------------------------------
// JSON out, byte for byte as Python's json.dumps (ensure_ascii, indent=4, floats by repr())

// a string literal: ", \ and \b \f \n \r \t escaped, printable ASCII kept, everything else \uXXXX
// (lower-case hex, surrogate pairs above U+FFFF)
static void json_string(FILE *f, const char *s, size_t len) {
    putc('"', f);
    for (size_t i = 0; i < len;) {
        uint32_t c = utf8_next(s, &i);
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r" :
                          c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (esc) fputs(esc, f);
        else if (c >= 0x20 && c <= 0x7E) putc((int)c, f);
        else if (c < 0x10000) fprintf(f, "\\u%04x", c);
        else fprintf(f, "\\u%04x\\u%04x", 0xD800 + ((c - 0x10000) >> 10), 0xDC00 + ((c - 0x10000) & 0x3FF));
    }
    putc('"', f);
}

// Python's repr(float): the shortest digits that read back as x; fixed notation for
// 1e-4 <= |x| < 1e16 (with at least one digit after the point), else d.ddde+XX
static void repr_double(char *out, double x) {
    if (x != x) { strcpy(out, "NaN"); return; }
    if (isinf(x)) { strcpy(out, x > 0 ? "Infinity" : "-Infinity"); return; }
    if (x == 0) { strcpy(out, signbit(x) ? "-0.0" : "0.0"); return; }
    char buf[48], digits[24];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, x);
        if (strtod(buf, NULL) == x) break;
    }
    int neg = buf[0] == '-', nd = 0;
    const char *q = buf + neg;
    for (; *q && *q != 'e'; q++) if (*q != '.') digits[nd++] = *q;
    int e10 = atoi(q + 1), decpt = e10 + 1;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    char *o = out;
    if (neg) *o++ = '-';
    if (decpt <= -4 || decpt > 16) {
        *o++ = digits[0];
        if (nd > 1) { *o++ = '.'; memcpy(o, digits + 1, (size_t)nd - 1); o += nd - 1; }
        sprintf(o, "e%c%02d", e10 < 0 ? '-' : '+', e10 < 0 ? -e10 : e10);
        return;
    }
    if (decpt <= 0) {
        *o++ = '0'; *o++ = '.';
        for (int i = 0; i < -decpt; i++) *o++ = '0';
        memcpy(o, digits, (size_t)nd); o += nd;
    } else if (decpt < nd) {
        memcpy(o, digits, (size_t)decpt); o += decpt;
        *o++ = '.';
        memcpy(o, digits + decpt, (size_t)(nd - decpt)); o += nd - decpt;
    } else {
        memcpy(o, digits, (size_t)nd); o += nd;
        for (int i = nd; i < decpt; i++) *o++ = '0';
        *o++ = '.'; *o++ = '0';
    }
    *o = 0;
}

static void json_double(FILE *f, double x) {
    char buf[48];
    repr_double(buf, x);
    fputs(buf, f);
}

// ----------------------------------------------------------------------------
// the official SQuAD v1.1 metric (evaluate-v1.1.py): normalize_answer = lower, drop
// string.punctuation, replace \b(a|an|the)\b by a space, ' '.join(split()); EM and bag-of-words F1

static int is_ascii_punct(uint32_t c) {   // string.punctuation
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

// an article at c[i] (a, an or the, tried in that order as the regex alternation does) between
// word boundaries; returns its length or 0
static size_t article_at(const uint32_t *c, size_t n, size_t i) {
    static const char *const words[] = { "a", "an", "the" };
    if (i > 0 && is_word(c[i - 1])) return 0;
    for (int w = 0; w < 3; w++) {
        size_t k = strlen(words[w]);
        if (i + k > n) continue;
        size_t j = 0;
        while (j < k && c[i + j] == (uint32_t)words[w][j]) j++;
        if (j == k && (i + k == n || !is_word(c[i + k]))) return k;
    }
    return 0;
}

typedef struct { cps in, low, nopunct, out; } norm_scratch;

// the normalized answer as tokens: a malloc'ed string of the tokens each NUL-terminated, *ntok of them
static char *normalize_answer(norm_scratch *s, const char *text, size_t len, int *ntok, size_t *bytes) {
    cps_from(&s->in, text, len);
    py_lower(&s->low, s->in.c, s->in.n);
    s->nopunct.n = 0;
    for (size_t i = 0; i < s->low.n; i++) if (!is_ascii_punct(s->low.c[i])) cps_push(&s->nopunct, s->low.c[i]);
    s->out.n = 0;   // re.sub scans left to right, matches do not overlap; \b looks at the text as it was
    for (size_t i = 0; i < s->nopunct.n;) {
        size_t k = article_at(s->nopunct.c, s->nopunct.n, i);
        if (k) { cps_push(&s->out, ' '); i += k; }
        else cps_push(&s->out, s->nopunct.c[i++]);
    }
    char *r = (char *)xmalloc(4 * s->out.n + 1);
    size_t w = 0;
    int in_token = 0;
    *ntok = 0;
    for (size_t i = 0; i < s->out.n; i++) {   // str.split(): tokens between runs of whitespace
        if (is_space(s->out.c[i])) {
            if (in_token) r[w++] = 0;
            in_token = 0;
            continue;
        }
        if (!in_token) (*ntok)++;
        in_token = 1;
        w += utf8_put(r + w, s->out.c[i]);
    }
    if (in_token) r[w++] = 0;
    *bytes = w;
    return r;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

// the tokens of a normalized answer, sorted (for the Counter intersection)
static const char **sorted_tokens(const char *toks, int n) {
    const char **t = (const char **)xmalloc((size_t)(n ? n : 1) * sizeof *t);
    for (int i = 0; i < n; i++) { t[i] = toks; toks += strlen(toks) + 1; }
    qsort(t, (size_t)n, sizeof *t, cmp_str);
    return t;
}

typedef struct { int em; double f1; } qa_score;

static qa_score score_one(norm_scratch *s, const char *pred, size_t pred_len, const char *gold, size_t gold_len) {
    int np, ng;
    size_t bp, bg;
    char *p = normalize_answer(s, pred, pred_len, &np, &bp), *g = normalize_answer(s, gold, gold_len, &ng, &bg);
    qa_score r = { bp == bg && !memcmp(p, g, bp), 0.0 };   // the normalized strings are equal
    const char **tp = sorted_tokens(p, np), **tg = sorted_tokens(g, ng);
    int same = 0;
    for (int i = 0, j = 0; i < np && j < ng;) {   // sum of min(count) over common tokens
        int c = strcmp(tp[i], tg[j]);
        if (c == 0) { same++; i++; j++; }
        else if (c < 0) i++;
        else j++;
    }
    if (same) {
        double precision = 1.0 * same / np, recall = 1.0 * same / ng;
        r.f1 = (2 * precision * recall) / (precision + recall);
    }
    free(tp); free(tg); free(p); free(g);
    return r;
}

typedef struct { const char *s; size_t len; } strv;   // a string and its length

typedef struct {
    const char *qid;
    int ngolds;
    const strv *golds;
    const strv *pred;   // NULL: unanswered
} scored_question;

typedef struct { double exact_match, f1; long total, answered; } squad_score;

// evaluate(): the sums run in the data's order, as the official script's, so the result is its
// bits; details (may be NULL) gets one JSON line per answered question
static squad_score score_all(const scored_question *q, long n, FILE *details) {
    norm_scratch s;
    memset(&s, 0, sizeof s);
    long em = 0;
    double f1 = 0.0;
    squad_score r = { 0, 0, n, 0 };
    for (long i = 0; i < n; i++) {
        if (!q[i].pred) { fprintf(stderr, "Unanswered question %s will receive score 0.\n", q[i].qid); continue; }
        if (!q[i].ngolds) die("question %s has no answers to score against", q[i].qid);
        int best_em = 0;
        double best_f1 = 0.0;
        for (int g = 0; g < q[i].ngolds; g++) {
            qa_score one = score_one(&s, q[i].pred->s, q[i].pred->len, q[i].golds[g].s, q[i].golds[g].len);
            if (one.em > best_em) best_em = one.em;
            if (g == 0 || one.f1 > best_f1) best_f1 = one.f1;
        }
        em += best_em;
        f1 += best_f1;
        r.answered++;
        if (details) {
            fprintf(details, "{\"id\": ");
            json_string(details, q[i].qid, strlen(q[i].qid));
            char buf[40];
            repr_double(buf, best_f1);
            fprintf(details, ", \"exact_match\": %d, \"f1\": %s}\n", best_em, buf);
        }
    }
    if (n) { r.exact_match = 100.0 * (double)em / (double)n; r.f1 = 100.0 * f1 / (double)n; }
    free(s.in.c); free(s.low.c); free(s.nopunct.c); free(s.out.c);
    return r;
}

// ----------------------------------------------------------------------------
// reading SQuAD v1.1 JSON as published: data -> paragraphs -> context, qas -> id, question,
// answers[text, answer_start]. A missing field is an error naming where it is missing; a question
// whose answer is unusable for training is counted and skipped there.

typedef struct {
    char *text; int len;             // the context, UTF-8
    int article, index;              // data[article].paragraphs[index]
    int nchars;                      // characters (code points): the unit of answer_start
    int32_t *char_at;                // (nchars + 1) byte offset of each character
    int32_t *char_to_word;           // (nchars) run_squad's char_to_word_offset
    int nwords;                      // run_squad's doc_tokens
    int32_t *word_at, *word_len;     // (nwords) their bytes in text
    int npieces;                     // WordPiece of the words, by tokenize_paragraphs
    int32_t *piece_id, *piece_word;  // (npieces) id, the word it came from
    int32_t *word_piece;             // (nwords) the word's first piece
} paragraph;

typedef struct {
    char *qid, *question;
    int question_len, para;
    int ngolds;
    strv *golds;                     // answers[].text
    long *gold_start;                // answers[].answer_start
    int start_word, end_word;        // the first answer's words; -1 when unusable
    int train_ok;                    // run_squad would train on it
    int first_feature, nfeatures;    // its windows
} example;

typedef struct {
    const char *path;
    paragraph *para; int npara, para_cap;
    example *ex; int nex, ex_cap;
    int bad_start, not_found, empty_context, no_answers;   // questions, counted
    int warned;
    char version[32];                // the file's "version" ("1.1"), "?" if absent
} squad_data;

// the whole file; more than the JSON reader takes (BERT__IO_MAX_TEXT) is an error, found without
// reading on (a pipe or /dev/zero would otherwise grow the buffer until memory runs out)
static char *read_file(const char *path, size_t *len) {
    const size_t limit = BERT__IO_MAX_TEXT;
    FILE *f = fopen(path, "rb");
    if (!f) die("%s: %s", path, strerror(errno));
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;   // a pipe has none: the buffer grows
    if (size >= 0) rewind(f);
    if (size > 0 && (size_t)size > limit) die("%s: larger than %zu MB (the JSON reader's limit)", path, limit >> 20);
    size_t cap = size >= 0 ? (size_t)size + 1 : (size_t)1 << 16, n = 0;   // +1: EOF is seen without a regrow
    char *buf = (char *)xmalloc(cap);
    for (size_t got; (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n > limit) die("%s: larger than %zu MB (the JSON reader's limit)", path, limit >> 20);
        if (n == cap) buf = (char *)xrealloc(buf, cap = cap < limit / 2 ? 2 * cap : limit + 1);
    }
    if (ferror(f)) die("%s: read error", path);
    fclose(f);
    *len = n;
    return buf;
}

// bert_json_parse's "json: what at byte N" as "PATH:LINE:COL: what"
static void die_json(const char *path, const char *text, size_t len, const char *msg) {
    const char *at = strstr(msg, " at byte ");
    if (!at) die("%s: %s", path, msg);
    size_t byte = strtoull(at + 9, NULL, 10), line = 1, col = 1;
    for (size_t i = 0; i < byte && i < len; i++) { if (text[i] == '\n') { line++; col = 1; } else col++; }
    const char *what = strncmp(msg, "json: ", 6) ? msg : msg + 6;
    die("%s:%zu:%zu: %.*s (not valid JSON)", path, line, col, (int)(at - what), what);
}

static bert_json *parse_json_file(const char *path) {
    size_t len;
    char *text = read_file(path, &len);
    bert_json *root;
    if (bert_json_parse(&root, text, len)) die_json(path, text, len, bert_last_error());
    free(text);
    return root;
}

static const char *type_name(bert_json_type t) {
    return t == BERT_JSON_STRING ? "string" : t == BERT_JSON_ARRAY ? "array" : t == BERT_JSON_OBJECT ? "object" : "number";
}

static const bert_json *member(const squad_data *d, const bert_json *obj, const char *key, bert_json_type type, const char *where) {
    const bert_json *j = bert_json_get(obj, key);
    if (!obj || obj->type != BERT_JSON_OBJECT) die("%s: %s is not an object", d->path, where);
    if (!j || j->type != type) die("%s: %s: no \"%s\" %s", d->path, where, key, type_name(type));
    return j;
}

// "A:B" (either side may be empty) -> [first, last) within n articles
static void article_range(const char *flag, const char *spec, int n, int *first, int *last) {
    *first = 0; *last = n;
    if (!spec || !*spec) return;
    char *end;
    const char *colon = strchr(spec, ':');
    if (!colon) die("--%s: '%s' is not A:B", flag, spec);
    if (colon > spec) { *first = (int)strtol(spec, &end, 10); if (end != colon) die("--%s: '%s' is not A:B", flag, spec); }
    if (colon[1]) { *last = (int)strtol(colon + 1, &end, 10); if (*end) die("--%s: '%s' is not A:B", flag, spec); }
    if (*first < 0 || *last > n || *first >= *last) die("--%s %s: the file has articles 0:%d", flag, spec, n);
}

static int is_squad_space(uint32_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0x202F; }

// run_squad's whitespace split: words, and the word of every character (-1 before the first)
static void split_context(paragraph *p) {
    p->char_at = (int32_t *)xmalloc(((size_t)p->len + 1) * sizeof(int32_t));
    p->char_to_word = (int32_t *)xmalloc(((size_t)p->len + 1) * sizeof(int32_t));
    int wcap = 0, prev_space = 1;
    p->nchars = p->nwords = 0;
    p->word_at = p->word_len = NULL;
    for (size_t i = 0; i < (size_t)p->len;) {
        size_t at = i;
        uint32_t c = utf8_next(p->text, &i);
        if (is_squad_space(c)) prev_space = 1;
        else {
            if (prev_space) {
                if (p->nwords == wcap) {
                    wcap = wcap ? 2 * wcap : 64;
                    p->word_at = (int32_t *)xrealloc(p->word_at, (size_t)wcap * sizeof(int32_t));
                    p->word_len = (int32_t *)xrealloc(p->word_len, (size_t)wcap * sizeof(int32_t));
                }
                p->word_at[p->nwords++] = (int32_t)at;
            }
            p->word_len[p->nwords - 1] = (int32_t)(i - (size_t)p->word_at[p->nwords - 1]);
            prev_space = 0;
        }
        p->char_at[p->nchars] = (int32_t)at;
        p->char_to_word[p->nchars++] = p->nwords - 1;
    }
    p->char_at[p->nchars] = p->len;
}

// haystack contains needle (bytes; on valid UTF-8 the same as Python's str.find(...) != -1), by
// Knuth-Morris-Pratt: memcmp at every offset is quadratic when a long answer almost matches
static int contains(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0) return 1;
    if (nn > hn) return 0;
    uint32_t *border = (uint32_t *)xmalloc(nn * sizeof(uint32_t));   // nn <= the JSON reader's 100 MB
    border[0] = 0;
    for (size_t i = 1, k = 0; i < nn; i++) {
        while (k > 0 && nd[i] != nd[k]) k = border[k - 1];
        if (nd[i] == nd[k]) k++;
        border[i] = (uint32_t)k;
    }
    size_t k = 0;
    for (size_t i = 0; i < hn && k < nn; i++) {
        while (k > 0 && h[i] != nd[k]) k = border[k - 1];
        if (h[i] == nd[k]) k++;
    }
    free(border);
    return k == nn;
}

static size_t count_chars(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

// the first answer's words, and whether run_squad would keep the question for training: the
// answer's text, whitespace-normalised, must occur in " ".join(those words)
static void locate_answer(squad_data *d, const paragraph *p, example *e) {
    e->start_word = e->end_word = -1;
    e->train_ok = 0;
    if (!e->ngolds) { d->no_answers++; return; }
    long off = e->gold_start[0], n = (long)count_chars(e->golds[0].s, e->golds[0].len);
    if (off < 0 || n == 0 || off + n > p->nchars || p->char_to_word[off] < 0) {
        d->bad_start++;
        if (d->warned++ < 5)
            fprintf(stderr, "squad: warning: %s: question %s: answer_start %ld is outside its context of %d characters (skipped)\n",
                    d->path, e->qid, off, p->nchars);
        return;
    }
    e->start_word = p->char_to_word[off];
    e->end_word = p->char_to_word[off + n - 1];
    char *actual = (char *)xmalloc((size_t)p->len + 1), *clean = (char *)xmalloc(e->golds[0].len + 1);
    size_t na = 0, nc = 0;
    for (int w = e->start_word; w <= e->end_word; w++) {
        if (w > e->start_word) actual[na++] = ' ';
        memcpy(actual + na, p->text + p->word_at[w], (size_t)p->word_len[w]);
        na += (size_t)p->word_len[w];
    }
    for (size_t i = 0, prev_space = 1; i < e->golds[0].len;) {   // " ".join(text.split())
        size_t at = i;
        uint32_t c = utf8_next(e->golds[0].s, &i);
        if (is_space(c)) { prev_space = 1; continue; }
        if (prev_space && nc) clean[nc++] = ' ';
        memcpy(clean + nc, e->golds[0].s + at, i - at);
        nc += i - at;
        prev_space = 0;
    }
    e->train_ok = contains(actual, na, clean, nc);
    if (!e->train_ok) {
        d->not_found++;
        if (d->warned++ < 5)
            fprintf(stderr, "squad: warning: %s: question %s: answer '%.*s' is not at answer_start %ld (skipped for training)\n",
                    d->path, e->qid, (int)e->golds[0].len, e->golds[0].s, off);
    }
    free(actual); free(clean);
}

static void read_answers(squad_data *d, const bert_json *qa, example *e, const char *where) {
    const bert_json *ans = bert_json_get(qa, "answers");
    e->ngolds = 0;
    e->golds = NULL;
    e->gold_start = NULL;
    if (!ans) return;   // unlabelled questions can still be predicted
    if (ans->type != BERT_JSON_ARRAY) die("%s: %s: \"answers\" is not an array", d->path, where);
    e->golds = (strv *)xmalloc((size_t)(ans->count ? ans->count : 1) * sizeof(strv));
    e->gold_start = (long *)xmalloc((size_t)(ans->count ? ans->count : 1) * sizeof(long));
    for (int a = 0; a < ans->count; a++) {
        char w[700];
        snprintf(w, sizeof w, "%s.answers[%d]", where, a);
        const bert_json *t = member(d, &ans->child[a], "text", BERT_JSON_STRING, w);
        const bert_json *s = bert_json_get(&ans->child[a], "answer_start");
        if (s && (s->type != BERT_JSON_NUMBER || s->number != floor(s->number) || fabs(s->number) > 1e15))
            die("%s: %s: answer_start is not an integer", d->path, w);
        e->golds[a].s = xstrndup(t->string, t->string_len);
        e->golds[a].len = t->string_len;
        e->gold_start[a] = s ? (long)s->number : -1;
        e->ngolds++;
    }
}

/* Reads the articles of path that --flag (A:B, NULL = all) names. with_text = 0 (scoring only) needs just each question's
   id and answers' text, as the official script; else contexts and questions too. */
static void read_squad(squad_data *d, const char *path, const char *flag, const char *articles, int with_text) {
    memset(d, 0, sizeof *d);
    d->path = path;
    bert_json *root = parse_json_file(path);
    const bert_json *data = bert_json_get(root, "data");
    if (!data || data->type != BERT_JSON_ARRAY) die("%s: no \"data\" array (not a SQuAD file)", path);
    const bert_json *version = bert_json_get(root, "version");
    snprintf(d->version, sizeof d->version, "%s", version && version->type == BERT_JSON_STRING ? version->string : "?");
    int first, last;
    article_range(flag, articles, data->count, &first, &last);
    for (int a = first; a < last; a++) {
        char where[512];
        snprintf(where, sizeof where, "data[%d]", a);
        const bert_json *paras = member(d, &data->child[a], "paragraphs", BERT_JSON_ARRAY, where);
        for (int pi = 0; pi < paras->count; pi++) {
            const bert_json *pj = &paras->child[pi];
            snprintf(where, sizeof where, "data[%d].paragraphs[%d]", a, pi);
            const bert_json *qas = member(d, pj, "qas", BERT_JSON_ARRAY, where);
            paragraph p;
            memset(&p, 0, sizeof p);
            p.article = a; p.index = pi;
            if (with_text) {
                const bert_json *ctx = member(d, pj, "context", BERT_JSON_STRING, where);
                p.text = xstrndup(ctx->string, ctx->string_len);
                p.len = (int)ctx->string_len;
                split_context(&p);
                if (p.nwords == 0 && qas->count) {
                    d->empty_context += qas->count;
                    fprintf(stderr, "squad: warning: %s: %s has an empty context: its %d questions get no windows\n", path, where, qas->count);
                }
            }
            ARR_PUSH(d->para, d->npara, d->para_cap, p);
            for (int q = 0; q < qas->count; q++) {
                char w[600];
                snprintf(w, sizeof w, "%s.qas[%d]", where, q);
                const bert_json *qa = &qas->child[q], *id = member(d, qa, "id", BERT_JSON_STRING, w);
                example e;
                memset(&e, 0, sizeof e);
                e.qid = xstrndup(id->string, id->string_len);
                e.para = d->npara - 1;
                snprintf(w, sizeof w, "%s.qas[%d] (id %.64s)", where, q, e.qid);
                if (with_text) {
                    const bert_json *qt = member(d, qa, "question", BERT_JSON_STRING, w);
                    e.question = xstrndup(qt->string, qt->string_len);
                    e.question_len = (int)qt->string_len;
                }
                read_answers(d, qa, &e, w);
                if (with_text && p.nwords) locate_answer(d, &d->para[e.para], &e);
                else e.start_word = e.end_word = -1;
                ARR_PUSH(d->ex, d->nex, d->ex_cap, e);
            }
        }
    }
    if (d->warned > 5) fprintf(stderr, "squad: warning: %s: %d more questions with unusable answers\n", path, d->warned - 5);
    bert_json_free(root);
}

static void free_squad(squad_data *d) {
    for (int i = 0; i < d->npara; i++) {
        paragraph *p = &d->para[i];
        free(p->text); free(p->char_at); free(p->char_to_word); free(p->word_at); free(p->word_len);
        free(p->piece_id); free(p->piece_word); free(p->word_piece);
    }
    for (int i = 0; i < d->nex; i++) {
        example *e = &d->ex[i];
        for (int g = 0; g < e->ngolds; g++) free((void *)e->golds[g].s);
        free(e->qid); free(e->question); free(e->golds); free(e->gold_start);
    }
    free(d->para); free(d->ex);
    memset(d, 0, sizeof *d);
}

// ----------------------------------------------------------------------------
// windows ("features"): run_squad's convert_examples_to_features

typedef struct {
    int example, span;               // its question, and which window of the question's context
    int ntokens;                     // [CLS] question [SEP] window [SEP]
    size_t ids_at;                   // its ids in the set's id pool
    int doc_offset;                  // the position of the window's first piece (|question| + 2)
    int span_start, span_len;        // pieces [span_start, span_start + span_len) of the paragraph
    size_t ctx_at;                   // span_len max-context flags in the flag pool
    int start, end;                  // the answer's positions; 0, 0 ([CLS]) outside the window
} feature;

typedef struct {
    feature *f; int n, cap;
    int32_t *ids; size_t nids, ids_cap;
    uint8_t *maxctx; size_t nctx, ctx_cap;
    long tokens, max_context; int at_cls;
} feature_set;

// the WordPiece ids of s in *buf (grown to fit); < 0 on failure, bert_last_error() says why, and the
// caller names the file and the text
static int tokenize(const bert_vocab *v, const char *s, size_t len, int32_t **buf, int *cap) {
    int n = bert_tokenize(v, opt.do_lower_case, s, len, *buf, *cap);
    if (n > *cap) {
        *cap = 2 * n;
        *buf = (int32_t *)xrealloc(*buf, (size_t)*cap * sizeof(int32_t));
        n = bert_tokenize(v, opt.do_lower_case, s, len, *buf, *cap);
    }
    return n;
}

// WordPiece of every word on its own, as run_squad: the pieces, their words, each word's first piece
static void tokenize_paragraphs(squad_data *d, const bert_vocab *v) {
    int cap = 256;
    int32_t *buf = (int32_t *)xmalloc((size_t)cap * sizeof(int32_t));
    for (int i = 0; i < d->npara; i++) {
        paragraph *p = &d->para[i];
        int pcap = 0;
        p->word_piece = (int32_t *)xmalloc((size_t)(p->nwords + 1) * sizeof(int32_t));
        for (int w = 0; w < p->nwords; w++) {
            int n = tokenize(v, p->text + p->word_at[w], (size_t)p->word_len[w], &buf, &cap);
            if (n < 0) die("%s: data[%d].paragraphs[%d]: context word %d: %s", d->path, p->article, p->index, w, bert_last_error());
            p->word_piece[w] = p->npieces;
            if (p->npieces + n > pcap) {
                pcap = 2 * (p->npieces + n);
                p->piece_id = (int32_t *)xrealloc(p->piece_id, (size_t)pcap * sizeof(int32_t));
                p->piece_word = (int32_t *)xrealloc(p->piece_word, (size_t)pcap * sizeof(int32_t));
            }
            for (int k = 0; k < n; k++) { p->piece_id[p->npieces] = buf[k]; p->piece_word[p->npieces++] = w; }
        }
    }
    free(buf);
}

// _improve_answer_span: the first (start, end) inside [s, e], starts ascending and ends descending,
// whose pieces are exactly the tokenized answer; else [s, e] unchanged. Only end = start + nans - 1
// can match (pieces hold no spaces), so it is the first occurrence of the answer in [s, e]: found by
// Knuth-Morris-Pratt, linear where trying every start is quadratic on repetitive text
static void improve_span(const paragraph *p, const int32_t *ans, int nans, int *s, int *e) {
    if (nans < 1 || nans > *e - *s + 1) return;
    int *border = (int *)xmalloc((size_t)nans * sizeof(int));   // the longest proper border of ans[0..i]
    border[0] = 0;
    for (int i = 1, k = 0; i < nans; i++) {
        while (k > 0 && ans[i] != ans[k]) k = border[k - 1];
        if (ans[i] == ans[k]) k++;
        border[i] = k;
    }
    for (int a = *s, k = 0; a <= *e; a++) {
        while (k > 0 && p->piece_id[a] != ans[k]) k = border[k - 1];
        if (p->piece_id[a] == ans[k]) k++;
        if (k == nans) { *s = a - nans + 1; *e = a; break; }
    }
    free(border);
}

// _check_is_max_context: among the windows holding piece pos, the one with the most context
// (min(left, right) + 0.01 * length; the first on ties) is cur. Window starts increase and ends
// never decrease, so the windows holding pos are a run found by binary search (a scan over all of
// them per piece is quadratic in the context's length)
static int is_max_context(const int *starts, const int *lens, int nspans, int cur, int pos) {
    int lo = 0, hi = nspans;   // the first window ending at or after pos
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (starts[mid] + lens[mid] - 1 < pos) lo = mid + 1;
        else hi = mid;
    }
    double best = 0;
    int best_i = -1;
    for (int i = lo; i < nspans && starts[i] <= pos; i++) {
        int end = starts[i] + lens[i] - 1;
        int left = pos - starts[i], right = end - pos;
        double score = (left < right ? left : right) + 0.01 * lens[i];
        if (best_i < 0 || score > best) { best = score; best_i = i; }
    }
    return cur == best_i;
}

/* The windows of every question, in question order; training: only questions run_squad trains on. */
static void convert(squad_data *d, const bert_vocab *v, feature_set *fs, int training) {
    memset(fs, 0, sizeof *fs);
    int T = opt.max_seq_length, qcap = 256, acap = 256, *starts = NULL, *lens = NULL, scap = 0;
    int32_t *q = (int32_t *)xmalloc((size_t)qcap * sizeof(int32_t)), *ans = (int32_t *)xmalloc((size_t)acap * sizeof(int32_t));
    for (int ei = 0; ei < d->nex; ei++) {
        example *e = &d->ex[ei];
        const paragraph *p = &d->para[e->para];
        e->first_feature = fs->n;
        e->nfeatures = 0;
        if (training && !e->train_ok) continue;
        int nq = tokenize(v, e->question, (size_t)e->question_len, &q, &qcap);
        if (nq < 0) die("%s: question %s: %s", d->path, e->qid, bert_last_error());
        if (nq > opt.max_query_length) nq = opt.max_query_length;
        int ts = -1, te = -1;
        if (e->start_word >= 0) {
            ts = p->word_piece[e->start_word];
            te = e->end_word < p->nwords - 1 ? p->word_piece[e->end_word + 1] - 1 : p->npieces - 1;
            int na = tokenize(v, e->golds[0].s, e->golds[0].len, &ans, &acap);
            if (na < 0) die("%s: question %s: answer: %s", d->path, e->qid, bert_last_error());
            improve_span(p, ans, na, &ts, &te);
        }
        int max_doc = T - nq - 3, nspans = 0;   // the windows: up to max_doc pieces every doc_stride
        for (int off = 0; off < p->npieces;) {
            int len = p->npieces - off < max_doc ? p->npieces - off : max_doc;
            if (nspans == scap) {
                scap = scap ? 2 * scap : 16;
                starts = (int *)xrealloc(starts, (size_t)scap * sizeof(int));
                lens = (int *)xrealloc(lens, (size_t)scap * sizeof(int));
            }
            starts[nspans] = off; lens[nspans++] = len;
            if (off + len == p->npieces) break;
            off += len < opt.doc_stride ? len : opt.doc_stride;
        }
        for (int si = 0; si < nspans; si++) {
            feature f;
            memset(&f, 0, sizeof f);
            f.example = ei; f.span = si;
            f.doc_offset = nq + 2;
            f.span_start = starts[si]; f.span_len = lens[si];
            f.ntokens = nq + lens[si] + 3;
            f.ids_at = fs->nids;
            f.ctx_at = fs->nctx;
            ARR_PUSH(fs->ids, fs->nids, fs->ids_cap, v->cls_id);
            for (int i = 0; i < nq; i++) ARR_PUSH(fs->ids, fs->nids, fs->ids_cap, q[i]);
            ARR_PUSH(fs->ids, fs->nids, fs->ids_cap, v->sep_id);
            for (int i = 0; i < lens[si]; i++) {
                uint8_t mc = (uint8_t)is_max_context(starts, lens, nspans, si, starts[si] + i);
                ARR_PUSH(fs->ids, fs->nids, fs->ids_cap, p->piece_id[starts[si] + i]);
                ARR_PUSH(fs->maxctx, fs->nctx, fs->ctx_cap, mc);
                fs->max_context += mc;
            }
            ARR_PUSH(fs->ids, fs->nids, fs->ids_cap, v->sep_id);
            int doc_end = starts[si] + lens[si] - 1;
            if (ts >= 0 && ts >= starts[si] && te <= doc_end) {
                f.start = ts - starts[si] + f.doc_offset;
                f.end = te - starts[si] + f.doc_offset;
            }
            fs->at_cls += f.start == 0;
            fs->tokens += f.ntokens;
            ARR_PUSH(fs->f, fs->n, fs->cap, f);
            e->nfeatures++;
        }
    }
    free(q); free(ans); free(starts); free(lens);
}

static void free_features(feature_set *fs) { free(fs->f); free(fs->ids); free(fs->maxctx); memset(fs, 0, sizeof *fs); }

// --dump_features: one line per window, the format of tests/ref/squad_features_ref.py's dump_line
static void dump_features(const char *path, const squad_data *d, const feature_set *fs) {
    FILE *f = fopen(path, "wb");
    if (!f) die("%s: %s", path, strerror(errno));
    for (int i = 0; i < fs->n; i++) {
        const feature *x = &fs->f[i];
        const example *e = &d->ex[x->example];
        const paragraph *p = &d->para[e->para];
        fprintf(f, "%d %d %d %ld %s |", p->article, x->example, x->span, FIRST_UNIQUE_ID + i, e->qid);
        for (int t = 0; t < x->ntokens; t++) fprintf(f, " %d", fs->ids[x->ids_at + (size_t)t]);
        fprintf(f, " | %d %d %d |", x->doc_offset, x->span_start, x->span_len);
        for (int t = 0; t < x->span_len; t++) fprintf(f, " %d", p->piece_word[x->span_start + t]);
        fprintf(f, " | ");
        for (int t = 0; t < x->span_len; t++) putc('0' + fs->maxctx[x->ctx_at + (size_t)t], f);
        fprintf(f, " | %d %d %d\n", x->start, x->end, e->train_ok);
    }
    if (fclose(f) != 0) die("%s: write failed", path);
}

// ----------------------------------------------------------------------------
// predictions: run_squad's write_predictions and get_final_text

typedef struct {
    float *v;          // (features, 2, stride): each window's start row, then its end row
    int *n;            // (features) positions that have a logit (max_seq_length, or the batch's length)
    int stride;
} logit_set;

// _get_best_indexes: the n largest of x[0..len), largest first, the lower index first among equals
// (Python's sort is stable, also with reverse=True)
static int best_indexes(const float *x, int len, int n, int *top) {
    int k = 0;
    for (int i = 0; i < len; i++) {
        if (k == n && !(x[i] > x[top[n - 1]])) continue;
        int j = k < n ? k++ : n - 1;
        for (; j > 0 && x[top[j - 1]] < x[i]; j--) top[j] = top[j - 1];
        top[j] = i;
    }
    return k;
}

typedef struct { int feature, start, end; double start_logit, end_logit; int order; } prelim;

static int cmp_prelim(const void *a, const void *b) {   // score descending, then first found first
    const prelim *x = (const prelim *)a, *y = (const prelim *)b;
    double sx = x->start_logit + x->end_logit, sy = y->start_logit + y->end_logit;
    if (sx != sy) return sx > sy ? -1 : 1;
    return x->order - y->order;
}

typedef struct { cps pred, orig, tok; char *basic; size_t basic_cap; int *map_a, *map_b; size_t map_cap; } final_scratch;

static long find_cps(const cps *h, const cps *nd) {   // str.find
    for (size_t i = 0; i + nd->n <= h->n; i++)
        if (!nd->n || !memcmp(h->c + i, nd->c, nd->n * sizeof(uint32_t))) return (long)i;
    return -1;
}

/* get_final_text: the predicted text (normalised WordPiece) is found in the basic tokenizer's
   version of the original words, and its first and last characters are carried back to the
   original text through the space-free forms of both; any mismatch returns the original words.
   NULL if the tokenizer fails (bert_last_error()). */
static char *get_final_text(final_scratch *s, const char *pred, size_t pred_len, const char *orig, size_t orig_len, size_t *out_len) {
    int n = bert_basic_tokenize(opt.do_lower_case, orig, orig_len, s->basic, s->basic_cap);
    if (n >= 0 && (size_t)n >= s->basic_cap) {
        s->basic = (char *)xrealloc(s->basic, s->basic_cap = (size_t)n + 64);
        n = bert_basic_tokenize(opt.do_lower_case, orig, orig_len, s->basic, s->basic_cap);
    }
    if (n < 0) return NULL;
    cps_from(&s->tok, s->basic, (size_t)n);
    cps_from(&s->pred, pred, pred_len);
    cps_from(&s->orig, orig, orig_len);
    long start = find_cps(&s->tok, &s->pred), end = start + (long)s->pred.n - 1;
    if (s->orig.n + s->tok.n + 1 > s->map_cap) {
        s->map_cap = 2 * (s->orig.n + s->tok.n + 1);
        s->map_a = (int *)xrealloc(s->map_a, s->map_cap * sizeof(int));
        s->map_b = (int *)xrealloc(s->map_b, s->map_cap * sizeof(int));
    }
    int *orig_ns_to_s = s->map_a, *tok_s_to_ns = s->map_b, orig_ns = 0, tok_ns = 0;
    for (size_t i = 0; i < s->orig.n; i++) if (s->orig.c[i] != ' ') orig_ns_to_s[orig_ns++] = (int)i;
    for (size_t i = 0; i < s->tok.n; i++) tok_s_to_ns[i] = s->tok.c[i] != ' ' ? tok_ns++ : -1;
    long a = -1, b = -1;
    if (start >= 0 && orig_ns == tok_ns) {
        if (tok_s_to_ns[start] >= 0 && tok_s_to_ns[start] < orig_ns) a = orig_ns_to_s[tok_s_to_ns[start]];
        if (end >= 0 && tok_s_to_ns[end] >= 0 && tok_s_to_ns[end] < orig_ns) b = orig_ns_to_s[tok_s_to_ns[end]];
    }
    if (a < 0 || b < 0) { *out_len = orig_len; return xstrndup(orig, orig_len); }
    return cps_utf8(s->orig.c + a, b >= a ? (size_t)(b - a + 1) : 0, out_len);
}

// the window's pieces start..end as run_squad's tok_text: " ".join, " ##" and "##" removed,
// whitespace collapsed
static char *piece_text(const bert_vocab *v, const int32_t *ids, int n, size_t *len) {
    size_t cap = 1;
    for (int i = 0; i < n; i++) cap += strlen(bert_vocab_token(v, ids[i])) + 1;
    char *a = (char *)xmalloc(cap), *b = (char *)xmalloc(cap);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        const char *t = bert_vocab_token(v, ids[i]);
        if (i) a[k++] = ' ';
        memcpy(a + k, t, strlen(t));
        k += strlen(t);
    }
    static const char *const cut[] = { " ##", "##" };
    for (int pass = 0; pass < 2; pass++) {   // str.replace(cut, ""): non-overlapping, left to right
        size_t m = strlen(cut[pass]), w = 0;
        for (size_t i = 0; i < k;) {
            if (i + m <= k && !memcmp(a + i, cut[pass], m)) { i += m; continue; }
            b[w++] = a[i++];
        }
        k = w;
        char *t = a; a = b; b = t;
    }
    size_t w = 0;   // " ".join(text.strip().split())
    for (size_t i = 0, prev_space = 1; i < k;) {
        size_t at = i;
        uint32_t c = utf8_next(a, &i);
        if (is_space(c)) { prev_space = 1; continue; }
        if (prev_space && w) b[w++] = ' ';
        memcpy(b + w, a + at, i - at);
        w += i - at;
        prev_space = 0;
    }
    b[w] = 0;
    free(a);
    *len = w;
    return b;
}

typedef struct { char *text; size_t len; double start_logit, end_logit; } nbest_entry;

/* write_predictions: predictions.json and nbest_predictions.json in dir (as run_squad writes them:
   json.dumps(..., indent=4)); returns each question's answer (the first of its n-best). */
static strv *write_predictions(const char *dir, const squad_data *d, const feature_set *fs, const logit_set *lg, const bert_vocab *v) {
    char path[4200];
    snprintf(path, sizeof path, "%s/predictions.json", dir);
    FILE *fp = fopen(path, "wb");
    if (!fp) die("%s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/nbest_predictions.json", dir);
    FILE *fn = fopen(path, "wb");
    if (!fn) die("%s: %s", path, strerror(errno));
    strv *answers = (strv *)xmalloc((size_t)(d->nex ? d->nex : 1) * sizeof(strv));
    int nb = opt.n_best_size, *si = (int *)xmalloc((size_t)nb * sizeof(int)), *ei = (int *)xmalloc((size_t)nb * sizeof(int));
    prelim *pre = NULL;
    int npre = 0, pcap = 0;
    nbest_entry *best = (nbest_entry *)xmalloc((size_t)(nb + 1) * sizeof(nbest_entry));
    final_scratch fsx;
    memset(&fsx, 0, sizeof fsx);
    fputs(d->nex ? "{\n" : "{}\n", fp);
    fputs(d->nex ? "{\n" : "{}\n", fn);
    for (int q = 0; q < d->nex; q++) {
        const example *e = &d->ex[q];
        const paragraph *p = &d->para[e->para];
        npre = 0;
        for (int k = 0; k < e->nfeatures; k++) {
            int fi = e->first_feature + k;
            const feature *f = &fs->f[fi];
            const float *sl = lg->v + (size_t)fi * 2 * lg->stride, *el = sl + lg->stride;
            int ns = best_indexes(sl, lg->n[fi], nb, si), ne = best_indexes(el, lg->n[fi], nb, ei);
            for (int a = 0; a < ns; a++)
                for (int b = 0; b < ne; b++) {
                    int s = si[a], t = ei[b], lo = f->doc_offset, hi = f->doc_offset + f->span_len;
                    if (s >= f->ntokens || t >= f->ntokens || s < lo || s >= hi || t < lo || t >= hi) continue;
                    if (!fs->maxctx[f->ctx_at + (size_t)(s - lo)] || t < s || t - s + 1 > opt.max_answer_length) continue;
                    prelim x = { fi, s, t, sl[s], el[t], npre };
                    ARR_PUSH(pre, npre, pcap, x);
                }
        }
        qsort(pre, (size_t)npre, sizeof *pre, cmp_prelim);
        int nbest = 0;
        for (int i = 0; i < npre && nbest < nb; i++) {
            const feature *f = &fs->f[pre[i].feature];
            char *final;
            size_t flen = 0;
            if (pre[i].start > 0) {   // the original words under the span, and the pieces' text
                int w0 = p->piece_word[f->span_start + pre[i].start - f->doc_offset];
                int w1 = p->piece_word[f->span_start + pre[i].end - f->doc_offset];
                size_t olen = (size_t)(p->word_at[w1] + p->word_len[w1] - p->word_at[w0]), tlen, k = 0;
                char *orig = (char *)xmalloc(olen + 1);
                for (int w = w0; w <= w1; w++) {   // " ".join(doc_tokens[w0:w1 + 1])
                    if (w > w0) orig[k++] = ' ';
                    memcpy(orig + k, p->text + p->word_at[w], (size_t)p->word_len[w]);
                    k += (size_t)p->word_len[w];
                }
                char *tok = piece_text(v, fs->ids + f->ids_at + pre[i].start, pre[i].end - pre[i].start + 1, &tlen);
                final = get_final_text(&fsx, tok, tlen, orig, k, &flen);
                if (!final) die("%s: question %s: %s", d->path, e->qid, bert_last_error());
                free(tok); free(orig);
                int seen = 0;
                for (int j = 0; j < nbest && !seen; j++) seen = best[j].len == flen && !memcmp(best[j].text, final, flen);
                if (seen) { free(final); continue; }
            } else {
                final = xstrndup("", 0);
            }
            nbest_entry x = { final, flen, pre[i].start_logit, pre[i].end_logit };
            best[nbest++] = x;
        }
        if (!nbest) { nbest_entry x = { xstrndup("empty", 5), 5, 0.0, 0.0 }; best[nbest++] = x; }
        double mx = 0, total = 0;   // _compute_softmax over start + end logits
        for (int i = 0; i < nbest; i++) if (i == 0 || best[i].start_logit + best[i].end_logit > mx) mx = best[i].start_logit + best[i].end_logit;
        for (int i = 0; i < nbest; i++) total += exp(best[i].start_logit + best[i].end_logit - mx);
        fputs("    ", fp); json_string(fp, e->qid, strlen(e->qid)); fputs(": ", fp);
        json_string(fp, best[0].text, best[0].len);
        fputs(q + 1 < d->nex ? ",\n" : "\n}\n", fp);
        fputs("    ", fn); json_string(fn, e->qid, strlen(e->qid)); fputs(": [\n", fn);
        for (int i = 0; i < nbest; i++) {
            fputs("        {\n            \"text\": ", fn); json_string(fn, best[i].text, best[i].len);
            fputs(",\n            \"probability\": ", fn); json_double(fn, exp(best[i].start_logit + best[i].end_logit - mx) / total);
            fputs(",\n            \"start_logit\": ", fn); json_double(fn, best[i].start_logit);
            fputs(",\n            \"end_logit\": ", fn); json_double(fn, best[i].end_logit);
            fputs(i + 1 < nbest ? "\n        },\n" : "\n        }\n", fn);
        }
        fputs(q + 1 < d->nex ? "    ],\n" : "    ]\n}\n", fn);
        answers[q].s = best[0].text;
        answers[q].len = best[0].len;
        for (int i = 1; i < nbest; i++) free(best[i].text);
    }
    if (fclose(fp) != 0 || fclose(fn) != 0) die("%s: write failed", dir);
    free(si); free(ei); free(pre); free(best);
    free(fsx.pred.c); free(fsx.orig.c); free(fsx.tok.c); free(fsx.basic); free(fsx.map_a); free(fsx.map_b);
    return answers;
}

// ----------------------------------------------------------------------------
// scoring: the built-in one after --do_predict, and --eval DATA.json PREDICTIONS.json

// scores d's questions against preds[i] (NULL: unanswered); prints the official script's line
static squad_score score_examples(const squad_data *d, const strv *const *preds, int report) {
    scored_question *q = (scored_question *)xmalloc((size_t)(d->nex ? d->nex : 1) * sizeof *q);
    for (int i = 0; i < d->nex; i++) {
        scored_question x = { d->ex[i].qid, d->ex[i].ngolds, d->ex[i].golds, preds[i] };
        q[i] = x;
    }
    FILE *details = NULL;
    if (opt.eval_details && !(details = fopen(opt.eval_details, "w"))) die("%s: %s", opt.eval_details, strerror(errno));
    squad_score r = score_all(q, d->nex, details);
    if (details && fclose(details) != 0) die("%s: write failed", opt.eval_details);
    if (report) {
        printf("{\"exact_match\": ");
        json_double(stdout, r.exact_match);
        printf(", \"f1\": ");
        json_double(stdout, r.f1);
        printf("}\n");
    }
    free(q);
    return r;
}

typedef struct { const char *key; int index; } pred_key;

static int cmp_pred_key(const void *a, const void *b) {
    const pred_key *x = (const pred_key *)a, *y = (const pred_key *)b;
    int c = strcmp(x->key, y->key);
    return c ? c : x->index - y->index;
}

// the official evaluate-v1.1.py: every question of the file, a prediction per id (the last one
// when an id repeats, as Python's dict), unanswered ones scored 0
static int run_eval(const char *data_path, const char *pred_path) {
    squad_data d;
    read_squad(&d, data_path, NULL, NULL, 0);
    if (strcmp(d.version, "1.1")) fprintf(stderr, "Evaluation expects v-1.1, but got dataset with v-%s\n", d.version);
    bert_json *pj = parse_json_file(pred_path);
    if (pj->type != BERT_JSON_OBJECT) die("%s: not a JSON object of question id -> answer text", pred_path);
    pred_key *keys = (pred_key *)xmalloc((size_t)(pj->count ? pj->count : 1) * sizeof *keys);
    for (int i = 0; i < pj->count; i++) {
        if (pj->child[i].type != BERT_JSON_STRING) die("%s: the answer of question '%s' is not a string", pred_path, pj->child[i].key);
        pred_key k = { pj->child[i].key, i };
        keys[i] = k;
    }
    qsort(keys, (size_t)pj->count, sizeof *keys, cmp_pred_key);
    strv *answers = (strv *)xmalloc((size_t)(d.nex ? d.nex : 1) * sizeof *answers);
    const strv **preds = (const strv **)xmalloc((size_t)(d.nex ? d.nex : 1) * sizeof *preds);
    for (int i = 0; i < d.nex; i++) {
        int lo = 0, hi = pj->count;   // past the last entry with this key
        while (lo < hi) { int mid = (lo + hi) / 2; if (strcmp(keys[mid].key, d.ex[i].qid) <= 0) lo = mid + 1; else hi = mid; }
        preds[i] = NULL;
        if (lo > 0 && !strcmp(keys[lo - 1].key, d.ex[i].qid)) {
            const bert_json *s = &pj->child[keys[lo - 1].index];
            answers[i].s = s->string;
            answers[i].len = s->string_len;
            preds[i] = &answers[i];
        }
    }
    score_examples(&d, preds, 1);
    free(preds); free(answers); free(keys);
    bert_json_free(pj);
    free_squad(&d);
    return 0;
}

// ----------------------------------------------------------------------------
// model: a BERT (random, or --init) with the span head

static int has_file(const char *p) { FILE *f = fopen(p, "rb"); if (f) fclose(f); return f != NULL; }

// the config: --init's metadata, else --config, else bert_config.json / config.json beside --init;
// *head: --init holds a trained span head
static bert_model *make_model(const bert_vocab *v, int *head) {
    bert_config cfg;
    int have = 0;
    static char from[4200];   // where the config came from, for messages
    *head = 0;
    if (opt.init) {
        bert_st st;
        if (bert_st_open(&st, opt.init)) die("%s", bert_last_error());
        const char *c = bert_st_meta(&st, "config");
        if (c && bert_config_parse(&cfg, c, strlen(c), opt.init)) die("%s", bert_last_error());
        have = c != NULL;
        snprintf(from, sizeof from, "%s", opt.init);
        *head = bert_st_find(&st, "qa_outputs.weight") && bert_st_find(&st, "qa_outputs.bias");
        bert_st_close(&st);
    }
    if (!have && opt.config) {
        if (bert_config_load(&cfg, opt.config)) die("%s", bert_last_error());
        have = 1;
        snprintf(from, sizeof from, "%s", opt.config);
    }
    for (int i = 0; !have && opt.init && i < 2; i++) {
        static const char *const names[] = { "bert_config.json", "config.json" };
        const char *slash = strrchr(opt.init, '/');
        char p[4200];
        snprintf(p, sizeof p, "%.*s%s", slash ? (int)(slash - opt.init + 1) : 0, opt.init, names[i]);
        if (has_file(p)) { if (bert_config_load(&cfg, p)) die("%s", bert_last_error()); have = 1; snprintf(from, sizeof from, "%s", p); }
    }
    if (!have) die("give --config bert_config.json (or --init with a config in its metadata or beside it)");
    if (cfg.vocab_size != v->size) die("%s has %d tokens but the model's vocab_size is %d", opt.vocab, v->size, cfg.vocab_size);
    if (cfg.max_position_embeddings < opt.max_seq_length)
        die("--max_seq_length %d exceeds the model's max_position_embeddings %d", opt.max_seq_length, cfg.max_position_embeddings);
    if (cfg.type_vocab_size < 2)   // else bert_embed's range assertion aborts on the first batch
        die("%s: type_vocab_size is %d: SQuAD's windows need token types 0 (question) and 1 (context)", from, cfg.type_vocab_size);
    bert_model *m = bert_model_create(&cfg, (uint64_t)opt.seed);
    if (!m || bert_span_head_add(m, (uint64_t)opt.seed + 1)) die("%s", bert_last_error());
    if (opt.init) {
        int missing;
        if (bert_model_load_encoder(m, opt.init, &missing)) die("%s", bert_last_error());
    }
    return m;
}

// ----------------------------------------------------------------------------
// batches

typedef struct {
    int cap;                                   // windows allocated
    int32_t *ids, *types, *mask, *start, *end;
} batch;

static void batch_alloc(batch *b, int B) {
    size_t n = (size_t)B * opt.max_seq_length;
    b->cap = B;
    b->ids = (int32_t *)xmalloc(3 * n * sizeof(int32_t) + 2 * (size_t)B * sizeof(int32_t));
    b->types = b->ids + n; b->mask = b->types + n; b->start = b->mask + n; b->end = b->start + B;
}

// windows idx[0..n) as [CLS] question [SEP] (segment 0) window [SEP] (segment 1), padded with 0 to
// max_seq_length or, with --dynamic_padding, to the longest of them; returns the length T
static int batch_fill(batch *b, const feature_set *fs, const int *idx, int n) {
    int T = opt.max_seq_length;
    if (opt.dynamic_padding) {
        T = 1;
        for (int i = 0; i < n; i++) if (fs->f[idx[i]].ntokens > T) T = fs->f[idx[i]].ntokens;
    }
    for (int i = 0; i < n; i++) {
        const feature *f = &fs->f[idx[i]];
        for (int t = 0; t < T; t++) {
            int real = t < f->ntokens;
            b->ids[i * T + t] = real ? fs->ids[f->ids_at + (size_t)t] : 0;
            b->types[i * T + t] = real && t >= f->doc_offset;
            b->mask[i * T + t] = real;
        }
        b->start[i] = f->start;
        b->end[i] = f->end;
    }
    return T;
}

// ----------------------------------------------------------------------------
// training

static volatile sig_atomic_t interrupted = 0;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

static bert_optim_type parse_optimizer(const char *name) {
    static const bert_optim_type all[] = { BERT_OPTIM_LAMB, BERT_OPTIM_ADAMW, BERT_OPTIM_ADAMW_GB, BERT_OPTIM_MOMENTUM };
    for (int i = 0; i < 4; i++) if (!strcmp(name, bert_optim_name(all[i]))) return all[i];
    die("--optimizer: '%s' is not one of adamw_gb, adamw, lamb, momentum", name);
    return BERT_OPTIM_ADAMW_GB;
}

static void permutation(int *perm, int n, uint64_t epoch) {
    for (int i = 0; i < n; i++) perm[i] = i;
    uint64_t stream = bert_rng_stream((uint64_t)opt.seed, epoch, SHUFFLE_SITE);
    for (int i = n - 1; i > 0; i--) {   // Fisher-Yates
        int j = (int)(bert_rng_bits(stream, (uint64_t)i) % (uint64_t)(i + 1));
        int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
}

// checkpoints: OUT/ckpt-00000100/{model,state}.safetensors, the state written last
static int list_checkpoints(unsigned long long *steps, int cap) {
    DIR *dir = opendir(opt.output_dir);
    int n = 0;
    if (!dir) return 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        unsigned long long s;
        char tail;
        if (sscanf(e->d_name, "ckpt-%llu%c", &s, &tail) == 1 && strlen(e->d_name) == 13 && n < cap) steps[n++] = s;
    }
    closedir(dir);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) { unsigned long long t = steps[j]; steps[j] = steps[j - 1]; steps[j - 1] = t; }
    return n;
}

static void save_checkpoint(const bert_model *m, const bert_optim *o, uint64_t micro, const char *fingerprint) {
    char dir[4096], path[4200], mic[32];
    snprintf(dir, sizeof dir, "%s/ckpt-%08llu", opt.output_dir, (unsigned long long)o->step);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) die("%s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    remove(path);   // an older state beside new weights would pair them wrongly
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (bert_model_save(m, path)) die("saving %s", bert_last_error());
    snprintf(mic, sizeof mic, "%llu", (unsigned long long)micro);
    const char *kv[] = { "micro", mic, "data", fingerprint };
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    if (bert_optim_save(o, m, path, kv, 2)) die("saving %s", bert_last_error());
    unsigned long long steps[4096];
    int n = list_checkpoints(steps, 4096);
    for (int i = 0; i + opt.keep < n; i++) {
        snprintf(dir, sizeof dir, "%s/ckpt-%08llu", opt.output_dir, steps[i]);
        snprintf(path, sizeof path, "%s/state.safetensors", dir); remove(path);
        snprintf(path, sizeof path, "%s/model.safetensors", dir); remove(path);
        rmdir(dir);
    }
}

// the newest complete checkpoint: weights, moments and the micro-batch counter; 0 if none
static int resume(bert_model *m, bert_optim *o, uint64_t *micro, const char *fingerprint) {
    unsigned long long steps[4096];
    for (int i = list_checkpoints(steps, 4096) - 1; i >= 0; i--) {
        char path[4200];
        bert_st st;
        snprintf(path, sizeof path, "%s/ckpt-%08llu/state.safetensors", opt.output_dir, steps[i]);
        if (bert_st_open(&st, path)) continue;
        const char *mic = bert_st_meta(&st, "micro"), *data = bert_st_meta(&st, "data");
        int ok = mic && data;
        if (ok && strcmp(data, fingerprint)) die("%s: it was trained on other data (%s) than this run's (%s)", path, data, fingerprint);
        if (ok) *micro = strtoull(mic, NULL, 10);
        bert_st_close(&st);
        snprintf(path, sizeof path, "%s/ckpt-%08llu/model.safetensors", opt.output_dir, steps[i]);
        if (!ok || bert_model_load_weights(m, path)) continue;
        snprintf(path, sizeof path, "%s/ckpt-%08llu/state.safetensors", opt.output_dir, steps[i]);
        if (bert_optim_load(o, m, path)) die("%s", bert_last_error());
        printf("resumed from %s/ckpt-%08llu at step %llu\n", opt.output_dir, steps[i], (unsigned long long)o->step);
        return 1;
    }
    return 0;
}

typedef struct { double seconds, features_per_s, loss; int steps; } train_result;

static train_result train(bert_model *m, const feature_set *fs, FILE *log, double t_start) {
    int B = opt.train_batch_size, A = opt.accumulation_steps, micro_per_epoch = fs->n / B;
    if (micro_per_epoch < 1) die("%d training windows, fewer than one batch of %d", fs->n, B);
    int total = opt.steps ? opt.steps : (int)((double)micro_per_epoch * opt.epochs / A);
    if (total < 1) die("%d training windows make no full step of %d x %d; lower --train_batch_size or give --steps", fs->n, B, A);
    bert_optim o = bert_optim_defaults(parse_optimizer(opt.optimizer));
    o.lr = opt.lr; o.total_steps = total;
    o.warmup_steps = opt.warmup_steps >= 0 ? opt.warmup_steps : (int)(opt.warmup_proportion * (float)total);
    o.weight_decay = opt.weight_decay; o.beta1 = opt.beta1; o.beta2 = opt.beta2; o.eps = opt.eps;
    o.clip_norm = opt.clip_norm; o.accumulation_steps = A;
    if (bert_optim_init(&o, m)) die("%s", bert_last_error());
    char fingerprint[160];
    snprintf(fingerprint, sizeof fingerprint, "%d windows, T %d, batch %d x %d, seed %d", fs->n, opt.max_seq_length, B, A, opt.seed);
    uint64_t micro = 0;
    if (opt.resume && !resume(m, &o, &micro, fingerprint)) printf("no checkpoint in %s: starting from scratch\n", opt.output_dir);
    bert_ctx *ctx = bert_ctx_create((size_t)64 << 20);
    if (!ctx) die("out of memory for the activation arena");
    ctx->seed = (uint64_t)opt.seed;
    int *perm = (int *)xmalloc((size_t)fs->n * sizeof(int));
    uint64_t perm_epoch = micro / (uint64_t)micro_per_epoch;
    permutation(perm, fs->n, perm_epoch);
    batch b;
    batch_alloc(&b, B);
    printf("train: %d windows | L=%d H=%d A=%d (%zu params) | %s lr %g warmup %d | batch %d x %d | %d steps (%.2f epochs)%s | sgemm %s\n",
           fs->n, m->config.num_hidden_layers, m->config.hidden_size, m->config.num_attention_heads, m->num_params,
           opt.optimizer, (double)o.lr, o.warmup_steps, B, A, total, (double)total * A / micro_per_epoch,
           opt.dynamic_padding ? " | dynamic padding" : "", bert_sgemm_kernel_name());
    fflush(stdout);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    train_result r = { 0, 0, 0, 0 };
    uint64_t first_step = o.step;
    int bad_in_row = 0;
    double t_loop = bert_time_s(), t_compute = 0;
    while ((int)o.step < total && !interrupted) {
        double t0 = bert_time_s(), loss = 0;
        int finite = 1;
        bert_model_zero_grad(m);
        for (int k = 0; k < A && finite; k++) {
            uint64_t mb = micro++, epoch = mb / (uint64_t)micro_per_epoch;   // a skipped step still moves on
            if (epoch != perm_epoch) permutation(perm, fs->n, perm_epoch = epoch);
            int T = batch_fill(&b, fs, perm + (mb % (uint64_t)micro_per_epoch) * (uint64_t)B, B);
            bert_ctx_reset(ctx, mb);
            bert_span_out out = bert_span_forward(ctx, m, b.ids, b.types, b.mask, B, T, b.start, b.end);
            double lv = bert_tensor_item(ctx, out.loss);
            if (!isfinite(lv)) { finite = 0; break; }
            bert_backward(ctx, out.loss);
            loss += lv / A;
        }
        if (finite && bert_optim_step(&o, m) == BERT_ERR_NONFINITE) finite = 0;
        t_compute += bert_time_s() - t0;
        if (!finite) {
            fprintf(stderr, "squad: warning: NaN/Inf loss or gradients at step %llu: update skipped\n", (unsigned long long)o.step + 1);
            if (++bad_in_row >= 10) die("10 steps in a row had NaN/Inf loss or gradients");
            continue;
        }
        bad_in_row = 0;
        uint64_t s = o.step;
        double fps = (double)(s - first_step) * A * B / t_compute, per_step = (bert_time_s() - t_loop) / (double)(s - first_step);
        fprintf(log, "{\"step\": %llu, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"features_per_s\": %.3f, \"time\": %.3f}\n",
                (unsigned long long)s, loss, (double)o.last_lr, (double)o.last_grad_norm, fps, bert_time_s() - t_start);
        fflush(log);
        r.loss = loss;
        if (s % (uint64_t)opt.print_every == 0 || (int)s == total || s == first_step + 1) {
            char eta[32];
            bert_format_duration(eta, sizeof eta, per_step * (double)((uint64_t)total - s));
            printf("step %6llu/%d | loss %.4f | lr %.3e | |g| %.3f | %.1f windows/s | ETA %s\n", (unsigned long long)s, total,
                   loss, (double)o.last_lr, (double)o.last_grad_norm, fps, eta);
            fflush(stdout);
        }
        if (opt.save_every && s % (uint64_t)opt.save_every == 0 && (int)s != total) save_checkpoint(m, &o, micro, fingerprint);
    }
    if (interrupted && o.step > first_step) save_checkpoint(m, &o, micro, fingerprint);
    r.seconds = bert_time_s() - t_loop;
    r.steps = (int)(o.step - first_step);
    r.features_per_s = t_compute > 0 ? (double)r.steps * A * B / t_compute : 0;
    free(perm); free(b.ids);
    bert_ctx_free(ctx);
    bert_optim_free(&o);
    return r;
}

// ----------------------------------------------------------------------------
// prediction

typedef struct { double seconds, forward_seconds; int features; } predict_result;

// logits without a model, for testing the pipeline: "oracle" puts 1 at each window's gold start and
// end (0 elsewhere); "random" draws u = bert_rng_uniform(bert_rng_stream(seed, window, 0|1), t)
static void debug_logits(logit_set *lg, const feature_set *fs, const char *mode) {
    int oracle = !strcmp(mode, "oracle");
    for (int i = 0; i < fs->n; i++) {
        float *sl = lg->v + (size_t)i * 2 * lg->stride, *el = sl + lg->stride;
        uint64_t s0 = bert_rng_stream((uint64_t)opt.seed, (uint64_t)i, 0), s1 = bert_rng_stream((uint64_t)opt.seed, (uint64_t)i, 1);
        lg->n[i] = lg->stride;
        for (int t = 0; t < lg->stride; t++) {
            sl[t] = oracle ? (float)(t == fs->f[i].start) : bert_rng_uniform(s0, (uint64_t)t);
            el[t] = oracle ? (float)(t == fs->f[i].end) : bert_rng_uniform(s1, (uint64_t)t);
        }
    }
}

static predict_result run_model(bert_model *m, const feature_set *fs, logit_set *lg) {
    predict_result r = { 0, 0, fs->n };
    int PB = opt.predict_batch_size, *idx = (int *)xmalloc((size_t)PB * sizeof(int));
    bert_ctx *ctx = bert_ctx_create((size_t)64 << 20);
    if (!ctx) die("out of memory for the activation arena");
    ctx->training = 0;
    ctx->grad_enabled = 0;
    batch b;
    batch_alloc(&b, PB);
    double t0 = bert_time_s(), last = t0;
    for (int i = 0; i < fs->n; i += PB) {
        int n = fs->n - i < PB ? fs->n - i : PB;
        for (int k = 0; k < n; k++) idx[k] = i + k;
        int T = batch_fill(&b, fs, idx, n);
        double tf = bert_time_s();
        bert_ctx_reset(ctx, 0);
        bert_span_out o = bert_span_forward(ctx, m, b.ids, b.types, b.mask, n, T, NULL, NULL);
        for (int k = 0; k < n; k++) {   // rows 2k (start) and 2k+1 (end) of (n,2,T), wherever the ctx keeps them
            bert_copy_to_host(ctx->k, lg->v + (size_t)(i + k) * 2 * lg->stride, o.logits->data + (size_t)2 * k * T, (size_t)T * sizeof(float));
            bert_copy_to_host(ctx->k, lg->v + ((size_t)(i + k) * 2 + 1) * lg->stride, o.logits->data + ((size_t)2 * k + 1) * T, (size_t)T * sizeof(float));
            lg->n[i + k] = T;
        }
        r.forward_seconds += bert_time_s() - tf;
        if (bert_time_s() - last >= 10 || i + n == fs->n) {
            char eta[32];
            last = bert_time_s();
            bert_format_duration(eta, sizeof eta, (last - t0) / (i + n) * (fs->n - i - n));
            printf("predict: %d/%d windows | %.2f windows/s | ETA %s\n", i + n, fs->n, (i + n) / r.forward_seconds, eta);
            fflush(stdout);
        }
    }
    r.seconds = bert_time_s() - t0;
    free(idx); free(b.ids);
    bert_ctx_free(ctx);
    return r;
}

// ----------------------------------------------------------------------------
// main

static void check_options(void) {
    if (opt.max_seq_length < 8 || opt.max_query_length < 1 || opt.max_seq_length <= opt.max_query_length + 3)
        die("--max_seq_length must exceed --max_query_length + 3 (got %d and %d)", opt.max_seq_length, opt.max_query_length);
    if (opt.doc_stride < 1 || opt.n_best_size < 1 || opt.max_answer_length < 1) die("--doc_stride, --n_best_size and --max_answer_length must be >= 1");
    if (opt.train_batch_size < 1 || opt.predict_batch_size < 1 || opt.accumulation_steps < 1) die("batch sizes and --accumulation_steps must be >= 1");
    if (opt.steps < 0 || !(opt.epochs > 0) || !(opt.lr > 0) || opt.keep < 1 || opt.print_every < 1 || opt.save_every < 0)
        die("--steps >= 0, --num_train_epochs > 0, --learning_rate > 0, --keep >= 1, --print_every >= 1, --save_every >= 0 please");
    if (opt.debug_logits && strcmp(opt.debug_logits, "oracle") && strcmp(opt.debug_logits, "random"))
        die("--debug_logits: '%s' is not oracle or random", opt.debug_logits);
    if (!opt.do_train && !opt.do_predict && !opt.dump_features) { usage(stderr); die("nothing to do: give --do_train and/or --do_predict (or --eval DATA PRED)"); }
    if (opt.do_train && !opt.train_file) die("--do_train needs --train_file");
    if ((opt.do_predict || opt.dump_features) && !opt.predict_file) die("--do_predict and --dump_features need --predict_file");
    if (!opt.vocab) die("--vocab is required");
    if (opt.debug_logits && opt.do_train) die("--debug_logits predicts without a model: no --do_train");
    if ((opt.do_train || (opt.do_predict && !opt.debug_logits)) && !opt.init && !opt.config)
        die("give --init model.safetensors (pretrained or fine-tuned) or --config bert_config.json (random weights)");
}

int main(int argc, char **argv) {
    double t_start = bert_time_s();
    if (argc >= 2 && !strcmp(argv[1], "--eval")) {   // squad --eval DATA PRED [--eval_details OUT]
        if (argc < 4) die("usage: squad --eval DATA.json PREDICTIONS.json [--eval_details OUT.jsonl]");
        static const bert_flag eval_flags[] = { { "eval_details", BERT_FLAG_STR, &opt.eval_details, "" } };
        if (bert_flags_parse(eval_flags, 1, argc - 3, argv + 3)) die("%s", bert_last_error());
        return run_eval(argv[2], argv[3]);
    }
    int rc = bert_flags_parse(flags, NFLAGS, argc, argv);
    if (rc == 1) { usage(stdout); return 0; }
    if (rc) die("%s", bert_last_error());
    check_options();
#ifdef _OPENMP
    if (opt.threads > 0) omp_set_num_threads(opt.threads);
#endif
    const char *inputs[2] = { opt.do_train ? opt.train_file : NULL, opt.do_predict || opt.dump_features ? opt.predict_file : NULL };
    for (int i = 0; i < 2; i++) {   // before a model loads for minutes
        FILE *f = inputs[i] ? fopen(inputs[i], "rb") : NULL;
        if (inputs[i] && !f) die("%s: %s", inputs[i], strerror(errno));
        if (f) fclose(f);
    }
    bert_vocab *v = bert_vocab_load(opt.vocab);
    if (!v) die("%s", bert_last_error());
    if (v->cls_id < 0 || v->sep_id < 0 || v->unk_id < 0) die("%s: no [CLS], [SEP] or [UNK] token", opt.vocab);

    if (opt.dump_features) {   // the windows of --predict_file as text, for the reference comparison
        squad_data d;
        feature_set fs;
        read_squad(&d, opt.predict_file, "predict_articles", opt.predict_articles, 1);
        tokenize_paragraphs(&d, v);
        convert(&d, v, &fs, 0);
        dump_features(opt.dump_features, &d, &fs);
        printf("%d questions -> %d windows, %ld tokens, %d labelled at [CLS], %ld max-context pieces, %d answers not found, %d bad answer_start\n",
               d.nex, fs.n, fs.tokens, fs.at_cls, fs.max_context, d.not_found, d.bad_start);
        free_features(&fs); free_squad(&d); bert_vocab_free(v);
        if (!opt.do_train && !opt.do_predict) return 0;
    }
    if (mkdir(opt.output_dir, 0777) != 0 && errno != EEXIST) die("%s: %s", opt.output_dir, strerror(errno));
    char path[4200];
    snprintf(path, sizeof path, "%s/log.jsonl", opt.output_dir);
    FILE *log = fopen(path, opt.resume ? "a" : "w");
    if (!log) die("%s: %s", path, strerror(errno));

    int head = 0;
    bert_model *m = opt.debug_logits ? NULL : make_model(v, &head);
    train_result tr = { 0, 0, 0, 0 };
    if (opt.do_train) {
        squad_data d;
        feature_set fs;
        double t0 = bert_time_s();
        read_squad(&d, opt.train_file, "train_articles", opt.train_articles, 1);
        tokenize_paragraphs(&d, v);
        convert(&d, v, &fs, 1);
        int used = 0;
        for (int i = 0; i < d.nex; i++) used += d.ex[i].nfeatures > 0;
        printf("train data: %s articles %s | %d questions, %d used (%d answers not found, %d bad answer_start, %d without answers, "
               "%d empty contexts) | %d windows, %d with the answer outside (at [CLS]) | %.1f s\n",
               opt.train_file, opt.train_articles ? opt.train_articles : "all", d.nex, used, d.not_found, d.bad_start,
               d.no_answers, d.empty_context, fs.n, fs.at_cls, bert_time_s() - t0);
        tr = train(m, &fs, log, t_start);
        free_features(&fs);
        free_squad(&d);
        snprintf(path, sizeof path, "%s/model.safetensors", opt.output_dir);
        if (interrupted) {
            fprintf(stderr, "squad: interrupted: checkpoint saved in %s; --resume continues\n", opt.output_dir);
            fclose(log); bert_model_free(m); bert_vocab_free(v);
            return 130;
        }
        if (bert_model_save(m, path)) die("saving %s", bert_last_error());
        printf("saved %s (HF BertForQuestionAnswering names: bert.*, qa_outputs.*)\n", path);
        head = 1;
    }
    predict_result pr = { 0, 0, 0 };
    squad_score sc = { 0, 0, 0, 0 };
    int scored = 0;
    if (opt.do_predict) {
        if (m && !head) fprintf(stderr, "squad: warning: %s: the span head is untrained (no qa_outputs.* in the weights)\n", opt.init ? opt.init : "random weights");
        squad_data d;
        feature_set fs;
        double t0 = bert_time_s();
        read_squad(&d, opt.predict_file, "predict_articles", opt.predict_articles, 1);
        if (opt.predict_limit > 0 && opt.predict_limit < d.nex) d.nex = opt.predict_limit;   // the rest stay allocated, freed below
        int all = d.nex;
        tokenize_paragraphs(&d, v);
        convert(&d, v, &fs, 0);
        printf("predict data: %s articles %s | %d questions | %d windows | %.1f s\n", opt.predict_file,
               opt.predict_articles ? opt.predict_articles : "all", d.nex, fs.n, bert_time_s() - t0);
        logit_set lg = { (float *)xmalloc((size_t)(fs.n ? fs.n : 1) * 2 * opt.max_seq_length * sizeof(float)),
                         (int *)xmalloc((size_t)(fs.n ? fs.n : 1) * sizeof(int)), opt.max_seq_length };
        if (opt.debug_logits) debug_logits(&lg, &fs, opt.debug_logits);
        else pr = run_model(m, &fs, &lg);
        strv *answers = write_predictions(opt.output_dir, &d, &fs, &lg, v);
        printf("wrote %s/predictions.json and nbest_predictions.json\n", opt.output_dir);
        int labelled = 1;
        for (int i = 0; i < d.nex; i++) labelled &= d.ex[i].ngolds > 0;
        if (labelled && d.nex) {
            const strv **preds = (const strv **)xmalloc((size_t)d.nex * sizeof *preds);
            for (int i = 0; i < d.nex; i++) preds[i] = &answers[i];
            sc = score_examples(&d, preds, 1);
            scored = 1;
            free(preds);
        }
        fputs("{\"predict\": ", log);
        json_string(log, opt.predict_file, strlen(opt.predict_file));
        fprintf(log, ", \"questions\": %d, \"windows\": %d, \"forward_s\": %.3f, \"windows_per_s\": %.3f", d.nex, fs.n, pr.forward_seconds, pr.forward_seconds > 0 ? fs.n / pr.forward_seconds : 0.0);
        if (scored) fprintf(log, ", \"exact_match\": %.6f, \"f1\": %.6f", sc.exact_match, sc.f1);
        fprintf(log, "}\n");
        for (int i = 0; i < d.nex; i++) free((void *)answers[i].s);
        free(answers); free(lg.v); free(lg.n);
        d.nex = all;
        free_features(&fs);
        free_squad(&d);
    }
    double e2e = bert_time_s() - t_start;
    printf("summary: e2e %.1f s", e2e);
    if (opt.do_train) printf(" | train %d steps in %.1f s (%.2f windows/s), last loss %.4f", tr.steps, tr.seconds, tr.features_per_s, tr.loss);
    if (opt.do_predict && !opt.debug_logits)
        printf(" | predict %d windows in %.1f s (%.2f windows/s forward, %.2f end to end)", pr.features, pr.seconds,
               pr.forward_seconds > 0 ? pr.features / pr.forward_seconds : 0.0, pr.seconds > 0 ? pr.features / pr.seconds : 0.0);
    if (scored) printf(" | EM %.2f F1 %.2f", sc.exact_match, sc.f1);
    printf(" | peak RSS %.0f MiB\n", bert_peak_rss_mib());
    fprintf(log, "{\"summary\": \"done\", \"e2e_s\": %.3f, \"train_steps\": %d, \"train_windows_per_s\": %.4f, \"peak_rss_mib\": %.1f}\n",
            e2e, tr.steps, tr.features_per_s, bert_peak_rss_mib());
    fclose(log);
    bert_model_free(m);
    bert_vocab_free(v);
    return 0;
}
