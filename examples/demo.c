// demo.c - bert.h end to end on the library's own pipeline, in about a minute:
//   1. learn a WordPiece vocab from a text (bert_vocab_build), saved as OUT/vocab.txt, and hold out
//      the last sentences of its long documents
//   2. tokenize the rest (bert_corpus_from_text) and make pretraining instances with the library's
//      create_pretraining_data (bert_pretrain_data_create): sentence pairs for next-sentence
//      prediction, 15% of the tokens masked; the same for the held-out sentences, to evaluate on
//   3. pretrain a tiny BERT with LAMB on the masked-LM and NSP heads (bert_pretrain_forward), a run
//      of the run layer (run.h) in OUT/pretrain: checkpoint, log.jsonl, curve.svg, --resume
//   4. load the checkpoint back and check that it evaluates identically
//   5. fine-tune its encoder with a classifier head (bert_classifier_add, bert_classify_forward) on a
//      made-up task, "is this a real sentence, or its tokens shuffled?" (OUT/classify), next to the
//      same head on a random encoder (OUT/scratch); tested on sentences the classifier never saw
// Data: examples/data/sample_text.txt is sample_text.txt from google-research/bert (public-domain
// Gutenberg text). It is 31 sentences, so the numbers show that the pipeline runs end to end; they
// say nothing about what BERT can do with real data (run it with --seed N: they move by a lot).
//
//   make demo                  builds build/demo and runs it; everything goes to build/demo_out
//   ./build/demo --help        the flags: the demo's, then run.h's (--steps, --lr, --optimizer, ...
//                              are pretraining's; fine-tuning has --ft_steps and --ft_lr)
#define _DEFAULT_SOURCE   // run.h's mkdir, sigaction: before the first system header, or -std=c11 hides them
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "run.h"

#define SHUFFLE_SITE 0x53454E54ull   // "SENT": the shuffled sentences of the fine-tuning task
#define HELD_LINES 4                 // held out: the last 4 sentences of every document ...
#define HELD_DOC 8                   // ... of 8 or more

// ----------------------------------------------------------------------------
// options: the demo's own; optimizer, steps, batch, seed, output and checkpoints are run.h's

static struct {
    const char *input;
    int vocab_size, min_frequency, max_seq_length, max_predictions_per_seq, dupe_factor;
    int hidden_size, num_layers, ft_steps, ft_copies;
    float ft_lr;
} dopt = { "examples/data/sample_text.txt", 400, 2, 64, 10, 20, 64, 2, 250, 8, 1e-3f };
static run_opts ro;

static const bert_flag flags[] = {
    { "input", BERT_FLAG_STR, &dopt.input, "text: one sentence per line, a blank line between documents" },
    { "vocab_size", BERT_FLAG_INT, &dopt.vocab_size, "the WordPiece vocab learned from the text: at most this many tokens" },
    { "min_frequency", BERT_FLAG_INT, &dopt.min_frequency, "... of pieces seen at least this often" },
    { "max_seq_length", BERT_FLAG_INT, &dopt.max_seq_length, "tokens per instance (T)" },
    { "max_predictions_per_seq", BERT_FLAG_INT, &dopt.max_predictions_per_seq, "masked positions per instance" },
    { "dupe_factor", BERT_FLAG_INT, &dopt.dupe_factor, "passes over the text, each with fresh pairs and masks" },
    { "hidden_size", BERT_FLAG_INT, &dopt.hidden_size, "model width C (a multiple of 16; heads of 16)" },
    { "num_layers", BERT_FLAG_INT, &dopt.num_layers, "encoder layers L" },
    { "ft_steps", BERT_FLAG_INT, &dopt.ft_steps, "fine-tuning steps, for each of the two classifiers" },
    { "ft_lr", BERT_FLAG_FLOAT, &dopt.ft_lr, "fine-tuning peak learning rate (AdamW)" },
    { "ft_copies", BERT_FLAG_INT, &dopt.ft_copies, "fine-tuning examples per training sentence and label" },
};

static const char usage_text[] =
    "usage: demo [flags]   pretrain a tiny BERT on a text with a vocab learned from it, then fine-tune it\n"
    "Writes OUT/vocab.txt and three runs: OUT/pretrain, OUT/classify (from the pretrained encoder) and\n"
    "OUT/scratch (from a random one). --steps, --lr, --optimizer, --batch_size act on pretraining.\n";

static void parse_options(int argc, char **argv) {
    ro = run_defaults();
    ro.overwrite = 1;   // build/demo_out is the demo's own: a second `make demo` starts over there
    ro.out = "build/demo_out"; ro.optimizer = "lamb"; ro.lr = 5e-3f; ro.steps = 1200; ro.batch_size = 16;
    ro.seed = 42; ro.print_every = 100; ro.keep = 1; ro.drop_last = 1;
    // One thread by default: a model this small runs hundreds of tiny parallel loops per step, and
    // where the cores are busy with other work OpenMP threads spin waiting for each other (2 threads
    // measured 20x slower than 1 on a shared 2-core machine, 1.7x faster on an idle one).
    ro.threads = 1;
    run_parse("demo", usage_text, flags, (int)(sizeof flags / sizeof *flags), &ro, RUN_FLAGS_TRAIN | RUN_FLAGS_COMMON, argc, argv);
    if (dopt.max_seq_length < 8 || dopt.max_seq_length > 512) run_die("--max_seq_length must be in [8, 512]");
    if (dopt.max_predictions_per_seq < 1 || dopt.max_predictions_per_seq > dopt.max_seq_length)
        run_die("--max_predictions_per_seq must be in [1, max_seq_length]");
    if (dopt.dupe_factor < 1 || dopt.ft_steps < 1 || dopt.ft_copies < 1) run_die("--dupe_factor, --ft_steps and --ft_copies must be >= 1");
    if (dopt.hidden_size < 16 || dopt.hidden_size % 16 || dopt.num_layers < 1) run_die("--hidden_size: a multiple of 16; --num_layers >= 1");
    if (!(dopt.ft_lr > 0) || !isfinite(dopt.ft_lr)) run_die("--ft_lr must be a positive number");
}

// ----------------------------------------------------------------------------
// 1. the text: a vocab learned from all of it; the last sentences of each long document held out

typedef struct {
    bert_corpus c;
    size_t *start;   // (num_sents + 1) where sentence s begins in c.ids
} sentences;

typedef struct { bert_vocab *v; sentences train, held; } text_data;

static int blank_line(const char *s, size_t n) {   // as bert_corpus_from_text: a document ends here
    for (size_t i = 0; i < n; i++) if (!strchr(" \t\r\f\v\n", s[i])) return 0;
    return 1;
}

/* The text split in two: the last HELD_LINES lines of every document of HELD_DOC+ lines go to *held
   (a document each), the rest to *train. Pass 0 counts each document's lines, pass 1 copies them. */
static void split_text(const char *text, size_t len, char **train, char **held) {
    int *lines = (int *)run_calloc(len + 2, sizeof(int)), d, k;
    char *out[2] = { (char *)run_malloc(len + 2), (char *)run_malloc(len + 2) };
    size_t n[2] = { 0, 0 };
    for (int pass = 0; pass < 2; pass++) {
        d = k = 0;
        for (size_t at = 0, end, next; at < len; at = next) {
            for (end = at; end < len && text[end] != '\n'; end++) {}
            next = end < len ? end + 1 : len;
            if (blank_line(text + at, next - at)) {
                if (k && pass) { out[0][n[0]++] = '\n'; out[1][n[1]++] = '\n'; }
                if (k) { d++; k = 0; }
            } else if (!pass) {
                lines[d] = ++k;
            } else {
                int h = k++ >= lines[d] - HELD_LINES && lines[d] >= HELD_DOC;
                memcpy(out[h] + n[h], text + at, next - at);
                n[h] += next - at;
                if (end == len) out[h][n[h]++] = '\n';
            }
        }
    }
    out[0][n[0]] = out[1][n[1]] = 0;
    *train = out[0]; *held = out[1];
    free(lines);
}

static void tokenize(sentences *s, const bert_vocab *v, const char *text) {
    if (bert_corpus_from_text(&s->c, v, 1, text, strlen(text))) run_die("%s: %s", dopt.input, bert_last_error());
    s->start = (size_t *)run_calloc((size_t)s->c.num_sents + 1, sizeof(size_t));
    for (int i = 0; i < s->c.num_sents; i++) s->start[i + 1] = s->start[i] + (size_t)s->c.sent_len[i];
}

static void load_text(text_data *d) {
    size_t len;
    char *text = run_read_file(dopt.input, &len), *train, *held, path[4200];
    if (!(d->v = bert_vocab_build(text, len, 1, dopt.vocab_size, dopt.min_frequency))) run_die("%s: %s", dopt.input, bert_last_error());
    snprintf(path, sizeof path, "%s/vocab.txt", ro.out);
    if (bert_vocab_save(d->v, path)) run_die("%s", bert_last_error());
    split_text(text, len, &train, &held);
    tokenize(&d->train, d->v, train);
    tokenize(&d->held, d->v, held);
    if (d->held.c.num_sents < 2) run_die("%s: no document of %d+ sentences to hold some out from", dopt.input, HELD_DOC);
    free(text); free(train); free(held);
    const sentences *t = &d->train;
    printf("data:   %s: %d sentences in %d documents; held out (never trained on): the last %d of each document of %d+, "
           "%d sentences\n", dopt.input, t->c.num_sents + d->held.c.num_sents, t->c.num_docs, HELD_LINES, HELD_DOC, d->held.c.num_sents);
    printf("vocab:  %d WordPiece tokens learned from the text (bert_vocab_build), saved as %s\n", d->v->size, path);
    int s = t->c.num_docs > 1 ? t->c.doc_sents[0] : 0;   // the first sentence of the second document
    printf("        sentence %d as pieces:", s + 1);
    for (size_t i = t->start[s]; i < t->start[s + 1] && i < t->start[s] + 24; i++) printf(" %s", bert_vocab_token(d->v, t->c.ids[i]));
    printf("%s\n", t->start[s + 1] - t->start[s] > 24 ? " ..." : "");
}

// ----------------------------------------------------------------------------
// 2. pretraining instances from create_pretraining_data, split into training and held-out

typedef struct {   // n rows of T tokens and P masked slots (also a batch buffer of cap rows)
    int n, cap, T, P;
    int32_t *ids, *types, *mask;   // (n,T)
    int32_t *pos, *labels;         // (n,P) label -100: an unused slot
    int32_t *nsp;                  // (n) 1: segment B is a random sentence
} instances;

static void instances_reserve(instances *s, int rows) {
    if (rows <= s->cap) return;
    s->cap = rows;
    size_t t = (size_t)rows * (size_t)s->T * sizeof(int32_t), p = (size_t)rows * (size_t)s->P * sizeof(int32_t);
    s->ids = (int32_t *)run_realloc(s->ids, t); s->types = (int32_t *)run_realloc(s->types, t);
    s->mask = (int32_t *)run_realloc(s->mask, t); s->pos = (int32_t *)run_realloc(s->pos, p);
    s->labels = (int32_t *)run_realloc(s->labels, p); s->nsp = (int32_t *)run_realloc(s->nsp, (size_t)rows * sizeof(int32_t));
}

static void instances_free(instances *s) {
    free(s->ids); free(s->types); free(s->mask); free(s->pos); free(s->labels); free(s->nsp);
}

// row r of dst := row `from` of src
static void copy_row(instances *dst, int r, const instances *src, int from) {
    size_t T = (size_t)src->T, P = (size_t)src->P, a = (size_t)r, b = (size_t)from;
    memcpy(dst->ids + a * T, src->ids + b * T, T * sizeof(int32_t));
    memcpy(dst->types + a * T, src->types + b * T, T * sizeof(int32_t));
    memcpy(dst->mask + a * T, src->mask + b * T, T * sizeof(int32_t));
    memcpy(dst->pos + a * P, src->pos + b * P, P * sizeof(int32_t));
    memcpy(dst->labels + a * P, src->labels + b * P, P * sizeof(int32_t));
    dst->nsp[r] = src->nsp[from];
}

typedef struct { instances train, eval; } split;

// bert_pretrain_data_create's callback: the instance appended to the set `user`
static int keep_instance(const bert_pretrain_example *ex, void *user) {
    instances *d = (instances *)user;
    if (d->n == d->cap) instances_reserve(d, d->cap ? 2 * d->cap : 64);
    size_t r = (size_t)d->n++, T = (size_t)d->T, P = (size_t)d->P;
    memcpy(d->ids + r * T, ex->input_ids, T * sizeof(int32_t));
    memcpy(d->types + r * T, ex->segment_ids, T * sizeof(int32_t));
    memcpy(d->mask + r * T, ex->input_mask, T * sizeof(int32_t));
    for (size_t k = 0; k < P; k++) {   // an unused slot: no label, any valid position
        int used = ex->masked_lm_weights[k] > 0;
        d->pos[r * P + k] = used ? ex->masked_lm_positions[k] : 0;
        d->labels[r * P + k] = used ? ex->masked_lm_ids[k] : -100;
    }
    d->nsp[r] = ex->next_sentence_label;
    return 0;
}

// create_pretraining_data on the training text and, with another seed, on the held-out text
static void make_instances(const text_data *d, split *s) {
    bert_pretrain_data_opts o = bert_pretrain_data_defaults();
    unsigned char *cont;
    if (bert_pretrain_data_vocab(&o, d->v, &cont)) run_die("%s", bert_last_error());
    o.max_seq_length = dopt.max_seq_length; o.max_predictions_per_seq = dopt.max_predictions_per_seq;
    o.dupe_factor = dopt.dupe_factor; o.seed = (uint64_t)ro.seed;
    memset(s, 0, sizeof *s);
    s->train.T = s->eval.T = o.max_seq_length;
    s->train.P = s->eval.P = o.max_predictions_per_seq;
    if (bert_pretrain_data_create(&d->train.c, &o, keep_instance, &s->train)) run_die("%s", bert_last_error());
    o.seed++;
    if (bert_pretrain_data_create(&d->held.c, &o, keep_instance, &s->eval)) run_die("%s", bert_last_error());
    free(cont);
    if (s->train.n < ro.batch_size || s->eval.n < 1)
        run_die("%s: %d training and %d held-out instances: too few for a batch of %d", dopt.input, s->train.n, s->eval.n, ro.batch_size);
    int random = 0;
    for (int i = 0; i < s->eval.n; i++) random += s->eval.nsp[i];
    printf("instances: %d train / %d held out (dupe factor %d; B is a random sentence in %.0f%% of the held-out ones)\n",
           s->train.n, s->eval.n, dopt.dupe_factor, 100.0 * random / s->eval.n);
}

static void print_instance(const bert_vocab *v, const instances *s, int i) {
    const int32_t *ids = s->ids + (size_t)i * s->T, *pos = s->pos + (size_t)i * s->P, *lab = s->labels + (size_t)i * s->P;
    printf("an instance (is_random_next=%d; a masked token's label in parentheses):\n ", s->nsp[i]);
    for (int t = 0; t < s->T && s->mask[(size_t)i * s->T + t]; t++) {
        printf(" %s", bert_vocab_token(v, ids[t]));
        for (int k = 0; k < s->P; k++)
            if (lab[k] != -100 && pos[k] == t) printf("(%s)", bert_vocab_token(v, lab[k]));
    }
    printf("\n\n");
}

// ----------------------------------------------------------------------------
// 3. pretraining

typedef struct { double mlm_acc, nsp_acc, mlm_loss; } pt_eval;

// argmax hits of logits (N,K) on labels (N); labels of -100 are not counted
static void tally(bert_ctx *ctx, const bert_tensor *logits, const int32_t *labels, long *hits, long *counted) {
    size_t N = (size_t)logits->shape[0];
    int32_t *pred = (int32_t *)run_malloc(N * sizeof(int32_t));
    bert_tensor_argmax(ctx, logits, pred);
    for (size_t i = 0; i < N; i++) {
        if (labels[i] == -100) continue;
        *hits += pred[i] == labels[i];
        (*counted)++;
    }
    free(pred);
}

// rows idx[0..n) of s (rows first..first+n when idx is NULL) into the buffer b, as a bert_batch
static bert_batch gather(const instances *s, const size_t *idx, int first, int n, instances *b) {
    for (int e = 0; e < n; e++) copy_row(b, e, s, idx ? (int)idx[e] : first + e);
    bert_batch v = { n, s->T, s->P, b->ids, b->types, b->mask, b->pos, b->labels, b->nsp };
    return v;
}

// held-out accuracies and masked-LM loss, dropout off
static pt_eval pt_evaluate(bert_ctx *ctx, bert_model *m, const instances *s, instances *buf) {
    long mlm_hits = 0, mlm_n = 0, nsp_hits = 0, nsp_n = 0;
    double loss = 0.0;
    int training = ctx->training, grad = ctx->grad_enabled;
    ctx->training = 0; ctx->grad_enabled = 0;
    for (int i = 0; i < s->n; i += buf->cap) {
        bert_batch b = gather(s, NULL, i, s->n - i < buf->cap ? s->n - i : buf->cap, buf);
        bert_ctx_reset(ctx, 0);
        bert_pretrain_out o = bert_pretrain_forward(ctx, m, &b);
        long before = mlm_n;
        tally(ctx, o.mlm_logits, b.masked_lm_ids, &mlm_hits, &mlm_n);
        tally(ctx, o.nsp_logits, b.next_sentence_label, &nsp_hits, &nsp_n);
        loss += (double)bert_tensor_item(ctx, o.mlm_loss) * (double)(mlm_n - before);
    }
    ctx->training = training; ctx->grad_enabled = grad;
    pt_eval e = { mlm_n ? (double)mlm_hits / mlm_n : 0.0, nsp_n ? (double)nsp_hits / nsp_n : 0.0, mlm_n ? loss / mlm_n : 0.0 };
    return e;
}

static pt_eval pt_report(run *r, const instances *eval, instances *buf) {
    run_eval_begin(r);
    pt_eval e = pt_evaluate(r->ctx, r->m, eval, buf);
    run_metric mt[] = { { "mlm_acc", e.mlm_acc }, { "nsp_acc", e.nsp_acc }, { "mlm_loss", e.mlm_loss } };
    run_eval_end(r, "held-out instances", mt, 3);
    return e;
}

// one optimizer step: --accumulation_steps micro-batches of equal weight
static void pt_step(run *r, const instances *train, instances *buf) {
    int A = r->o->accumulation_steps;
    long mlm_hits = 0, mlm_n = 0, nsp_hits = 0, nsp_n = 0;
    double data_s = 0.0;
    for (int k = 0; k < A; k++) {
        double t0 = bert_time_s();
        int n;
        const size_t *idx = run_batch(r, &n);
        bert_batch b = gather(train, idx, 0, n, buf);
        data_s += bert_time_s() - t0;
        bert_ctx *ctx = run_micro(r);
        bert_pretrain_out o = bert_pretrain_forward(ctx, r->m, &b);
        run_backward(r, o.loss, 1.0f / (float)A);
        tally(ctx, o.mlm_logits, b.masked_lm_ids, &mlm_hits, &mlm_n);
        tally(ctx, o.nsp_logits, b.next_sentence_label, &nsp_hits, &nsp_n);
    }
    run_metric mt[] = { { "mlm_acc", mlm_n ? (double)mlm_hits / mlm_n : 0.0 }, { "nsp_acc", nsp_n ? (double)nsp_hits / nsp_n : 0.0 } };
    run_end_step(r, mt, 2, data_s);
}

// The pretraining run in OUT/pretrain; *final: the held-out eval at the end, *steps: the run's
// length, *ckpt: the checkpoint it ends with. Returns run_finish's exit status.
static int pretrain(bert_model *m, const split *s, pt_eval *final, int *steps, char *ckpt, size_t cap) {
    run_opts o = ro;
    char out[4200], fp[256], what[256];
    snprintf(out, sizeof out, "%s/pretrain", ro.out);
    o.out = out;
    snprintf(fp, sizeof fp, "demo pretraining: %d + %d instances, T %d, P %d, vocab %d, batch %d x %d, seed %d", s->train.n,
             s->eval.n, s->train.T, s->train.P, m->config.vocab_size, o.batch_size, o.accumulation_steps, o.seed);
    run r;
    run_begin(&r, &o, m, (size_t)s->train.n, run_total_steps(&o, (size_t)s->train.n), fp);
    r.tokens_per_example = s->train.T;
    snprintf(what, sizeof what, "pretrain (masked LM + next sentence) | %d instances", s->train.n);
    run_print_setup(&r, what);
    instances buf = { 0, 0, s->train.T, s->train.P, NULL, NULL, NULL, NULL, NULL, NULL };
    instances_reserve(&buf, o.batch_size);
    while (run_next_step(&r)) {
        pt_step(&r, &s->train, &buf);
        if (run_eval_due(&r, 300)) pt_report(&r, &s->eval, &buf);
    }
    if (run_completed(&r)) *final = pt_report(&r, &s->eval, &buf);
    snprintf(ckpt, cap, "%s/ckpt-%08llu/model.safetensors", out, (unsigned long long)r.opt.step);
    *steps = r.total_steps;
    int rc = run_finish(&r);
    instances_free(&buf);
    return rc;
}

// the load-back check: the checkpoint evaluates exactly as the model it was saved from
static void check_round_trip(const char *ckpt, const instances *eval, const pt_eval *want) {
    bert_model *m = bert_model_load(ckpt, NULL);
    bert_ctx *ctx = bert_ctx_create((size_t)16 << 20);
    if (!m || !ctx) run_die("%s", bert_last_error());
    instances buf = { 0, 0, eval->T, eval->P, NULL, NULL, NULL, NULL, NULL, NULL };
    instances_reserve(&buf, ro.batch_size);
    pt_eval e = pt_evaluate(ctx, m, eval, &buf);
    if (e.mlm_loss != want->mlm_loss || e.mlm_acc != want->mlm_acc || e.nsp_acc != want->nsp_acc)
        run_die("%s: held-out masked-LM loss %.9g after loading, %.9g before", ckpt, e.mlm_loss, want->mlm_loss);
    printf("loaded %s back: it evaluates identically (masked-LM loss %.6f)\n", ckpt, e.mlm_loss);
    instances_free(&buf);
    bert_ctx_free(ctx);
    bert_model_free(m);
}

typedef struct { int top; double mlm, nsp; } baselines;

// masked LM: always the training set's most frequent label; NSP: the held-out majority class
static baselines make_baselines(const split *s, int V) {
    baselines b = { 0, 0.0, 0.0 };
    long *count = (long *)run_calloc((size_t)V, sizeof(long)), hits = 0, n = 0;
    for (size_t i = 0; i < (size_t)s->train.n * s->train.P; i++) if (s->train.labels[i] >= 0) count[s->train.labels[i]]++;
    for (int v = 1; v < V; v++) if (count[v] > count[b.top]) b.top = v;
    for (size_t i = 0; i < (size_t)s->eval.n * s->eval.P; i++) if (s->eval.labels[i] >= 0) { hits += s->eval.labels[i] == b.top; n++; }
    int random = 0;
    for (int i = 0; i < s->eval.n; i++) random += s->eval.nsp[i];
    b.mlm = n ? (double)hits / n : 0.0;
    b.nsp = (double)(random > s->eval.n - random ? random : s->eval.n - random) / s->eval.n;
    free(count);
    return b;
}

// ----------------------------------------------------------------------------
// 4. fine-tuning: [CLS] sentence [SEP], label 1 as written, 0 with its tokens shuffled

typedef struct { int n, cap, T; int32_t *ids, *mask, *label; } cls_set;

// Sattolo's algorithm (a random cyclic permutation: no token keeps its place), drawn again, up to
// 10 times, while repeated tokens make the result read the same
static void shuffle_tokens(int32_t *t, int n, uint64_t stream) {
    int32_t *orig = (int32_t *)run_malloc((size_t)n * sizeof(int32_t));
    memcpy(orig, t, (size_t)n * sizeof(int32_t));
    uint64_t draw = 0;
    for (int tries = 0; tries < 10; tries++) {
        memcpy(t, orig, (size_t)n * sizeof(int32_t));
        for (int k = n - 1; k > 0; k--) {
            int j = (int)(bert_rng_bits(stream, draw++) % (uint64_t)k), x = t[k];
            t[k] = t[j]; t[j] = x;
        }
        if (memcmp(t, orig, (size_t)n * sizeof(int32_t)) != 0) break;
    }
    free(orig);
}

static void cls_push(cls_set *s, const bert_vocab *v, const int32_t *sent, int len, int label, uint64_t stream) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->ids = (int32_t *)run_realloc(s->ids, (size_t)s->cap * (size_t)s->T * sizeof(int32_t));
        s->mask = (int32_t *)run_realloc(s->mask, (size_t)s->cap * (size_t)s->T * sizeof(int32_t));
        s->label = (int32_t *)run_realloc(s->label, (size_t)s->cap * sizeof(int32_t));
    }
    int n = len < s->T - 2 ? len : s->T - 2;
    int32_t *ids = s->ids + (size_t)s->n * s->T, *mask = s->mask + (size_t)s->n * s->T;
    memset(ids, 0, (size_t)s->T * sizeof(int32_t));
    memset(mask, 0, (size_t)s->T * sizeof(int32_t));
    ids[0] = v->cls_id;
    memcpy(ids + 1, sent, (size_t)n * sizeof(int32_t));
    if (label == 0) shuffle_tokens(ids + 1, n, stream);
    ids[n + 1] = v->sep_id;
    for (int t = 0; t < n + 2; t++) mask[t] = 1;
    s->label[s->n++] = label;
}

// the sentences of 4+ pieces of s in a random order: the first `held` to eval, as written and
// shuffled once; the others to train, --ft_copies times each way (each copy shuffled anew)
static void add_sentences(cls_set *train, cls_set *eval, int held, const bert_vocab *v, const sentences *s, uint64_t *draw) {
    size_t *order = (size_t *)run_calloc((size_t)s->c.num_sents, sizeof(size_t));
    run_permutation(order, (size_t)s->c.num_sents, (uint64_t)ro.seed, SHUFFLE_SITE, 1);
    for (int j = 0, k = 0; j < s->c.num_sents; j++) {
        int i = (int)order[j], to_eval = k < held;
        if (s->c.sent_len[i] < 4) continue;
        k++;
        for (int copy = 0; copy < (to_eval ? 1 : dopt.ft_copies); copy++)
            for (int label = 1; label >= 0; label--)
                cls_push(to_eval ? eval : train, v, s->c.ids + s->start[i], s->c.sent_len[i], label,
                         bert_rng_stream((uint64_t)ro.seed, (*draw)++, SHUFFLE_SITE));
    }
    free(order);
}

/* The classifier is tested on 20% of the pretraining text's sentences: text the encoder has seen
   (unlabelled) and the classifier has not. It trains on the rest and on the held-out text. */
static void make_cls_sets(const text_data *d, cls_set *train, cls_set *eval) {
    memset(train, 0, sizeof *train); memset(eval, 0, sizeof *eval);
    train->T = eval->T = dopt.max_seq_length;
    int n = 0;
    for (int i = 0; i < d->train.c.num_sents; i++) n += d->train.c.sent_len[i] >= 4;
    uint64_t draw = 0;
    add_sentences(train, eval, (n + 2) / 5, d->v, &d->train, &draw);
    add_sentences(train, NULL, 0, d->v, &d->held, &draw);
    if (train->n < 2 || eval->n < 2) run_die("%s: too few sentences of 4+ pieces to fine-tune on", dopt.input);
    printf("\nfine-tune: is this a real sentence, or its tokens shuffled? %d training examples, %d held-out examples\n",
           train->n, eval->n);
}

static void cls_free(cls_set *s) { free(s->ids); free(s->mask); free(s->label); }

static double cls_accuracy(bert_ctx *ctx, bert_model *m, const cls_set *s, int B) {
    long hits = 0, n = 0;
    int training = ctx->training, grad = ctx->grad_enabled;
    ctx->training = 0; ctx->grad_enabled = 0;
    for (int i = 0; i < s->n; i += B) {
        size_t off = (size_t)i * s->T;
        bert_ctx_reset(ctx, 0);
        bert_classify_out o = bert_classify_forward(ctx, m, s->ids + off, NULL, s->mask + off, s->n - i < B ? s->n - i : B, s->T, NULL, NULL);
        tally(ctx, o.logits, s->label + i, &hits, &n);
    }
    ctx->training = training; ctx->grad_enabled = grad;
    return n ? (double)hits / n : 0.0;
}

static double cls_report(run *r, const cls_set *eval) {
    run_eval_begin(r);
    run_metric mt[] = { { "acc", cls_accuracy(r->ctx, r->m, eval, r->o->batch_size) } };
    run_eval_end(r, "held-out examples", mt, 1);
    return mt[0].value;
}

static void cls_step(run *r, const cls_set *train, cls_set *b) {
    int A = r->o->accumulation_steps;
    long hits = 0, n = 0;
    double data_s = 0.0;
    for (int k = 0; k < A; k++) {
        double t0 = bert_time_s();
        int rows;
        const size_t *idx = run_batch(r, &rows);
        for (int e = 0; e < rows; e++) {
            memcpy(b->ids + (size_t)e * b->T, train->ids + idx[e] * (size_t)b->T, (size_t)b->T * sizeof(int32_t));
            memcpy(b->mask + (size_t)e * b->T, train->mask + idx[e] * (size_t)b->T, (size_t)b->T * sizeof(int32_t));
            b->label[e] = train->label[idx[e]];
        }
        data_s += bert_time_s() - t0;
        bert_ctx *ctx = run_micro(r);
        bert_classify_out o = bert_classify_forward(ctx, r->m, b->ids, NULL, b->mask, rows, b->T, b->label, NULL);
        run_backward(r, o.loss, 1.0f / (float)A);
        tally(ctx, o.logits, b->label, &hits, &n);
    }
    run_metric mt[] = { { "acc", n ? (double)hits / n : 0.0 } };
    run_end_step(r, mt, 1, data_s);
}

/* A classifier on the encoder of `encoder` (a checkpoint), or on a random one when it is NULL,
   trained with AdamW for --ft_steps in OUT/dir. Returns the held-out accuracy; exits on a failed or
   interrupted run. */
static double finetune(const bert_config *cfg, const char *encoder, const char *dir, const cls_set *train, const cls_set *eval) {
    bert_model *m = bert_model_create(cfg, (uint64_t)ro.seed + 1);
    if (!m || bert_classifier_add(m, 2, (uint64_t)ro.seed) || (encoder && bert_model_load_encoder(m, encoder, NULL)))
        run_die("%s", bert_last_error());
    run_opts o = ro;
    char out[4200], fp[160];
    snprintf(out, sizeof out, "%s/%s", ro.out, dir);
    o.out = out; o.optimizer = "adamw"; o.lr = dopt.ft_lr; o.steps = dopt.ft_steps; o.resume_from = NULL;
    snprintf(fp, sizeof fp, "demo fine-tuning: %d examples, T %d, batch %d x %d, seed %d", train->n, train->T, o.batch_size,
             o.accumulation_steps, o.seed);
    run r;
    run_begin(&r, &o, m, (size_t)train->n, run_total_steps(&o, (size_t)train->n), fp);
    r.tokens_per_example = train->T;
    run_print_setup(&r, encoder ? "fine-tune the pretrained encoder" : "fine-tune a random encoder");
    cls_set b = { 0, o.batch_size, train->T, NULL, NULL, NULL };
    b.ids = (int32_t *)run_calloc((size_t)b.cap * (size_t)b.T, sizeof(int32_t));
    b.mask = (int32_t *)run_calloc((size_t)b.cap * (size_t)b.T, sizeof(int32_t));
    b.label = (int32_t *)run_calloc((size_t)b.cap, sizeof(int32_t));
    double acc = NAN;
    while (run_next_step(&r)) {
        cls_step(&r, train, &b);
        if (run_eval_due(&r, (o.steps + 3) / 4)) cls_report(&r, eval);
    }
    if (run_completed(&r)) acc = cls_report(&r, eval);
    int rc = run_finish(&r);
    if (rc) exit(rc);
    cls_free(&b);
    bert_model_free(m);
    return acc;
}

// ----------------------------------------------------------------------------
// 5. main

static bert_config model_config(int vocab_size) {
    bert_config cfg = bert_config_default();
    cfg.vocab_size = vocab_size; cfg.hidden_size = dopt.hidden_size; cfg.num_hidden_layers = dopt.num_layers;
    cfg.num_attention_heads = dopt.hidden_size / 16; cfg.intermediate_size = 4 * dopt.hidden_size;
    cfg.max_position_embeddings = dopt.max_seq_length;
    return cfg;
}

typedef struct {
    pt_eval pt;
    baselines base;
    int pt_steps, ft_eval_n;
    size_t params;
    double acc_pre, acc_scratch, ft_majority, pretrain_s;
    char ckpt[4300];
} results;

static void summary(const text_data *d, const split *s, const bert_config *cfg, const results *x, double t_start) {
    printf("\n==================================== summary ====================================\n");
    int sents = d->train.c.num_sents + d->held.c.num_sents;
    printf("data         %d sentences (%d held out), %d documents, WordPiece vocab %d, instances %d train / %d held out\n", sents,
           d->held.c.num_sents, d->train.c.num_docs, d->v->size, s->train.n, s->eval.n);
    printf("model        BERT L=%d C=%d NH=%d F=%d, %zu parameters\n", cfg->num_hidden_layers, cfg->hidden_size,
           cfg->num_attention_heads, cfg->intermediate_size, x->params);
    printf("pretraining  %d steps in %.1fs, held-out eval:\n", x->pt_steps, x->pretrain_s);
    printf("             MLM acc %.1f%% (baseline: always '%s' %.1f%%)\n", 100 * x->pt.mlm_acc, bert_vocab_token(d->v, x->base.top),
           100 * x->base.mlm);
    printf("             NSP acc %.1f%% (baseline: chance 50%%, majority class %.1f%%)\n", 100 * x->pt.nsp_acc, 100 * x->base.nsp);
    printf("fine-tuning  real vs shuffled sentence, %d steps each, %d held-out examples:\n", dopt.ft_steps, x->ft_eval_n);
    printf("             pretrained %.1f%% vs from scratch %.1f%% (baseline: majority class %.1f%%)\n", 100 * x->acc_pre,
           100 * x->acc_scratch, 100 * x->ft_majority);
    printf("checkpoint   %s (round trip ok)\n", x->ckpt);
    printf("outputs      %s: vocab.txt, pretrain/, classify/, scratch/ (each with log.jsonl, curve.svg)\n", ro.out);
    printf("total time   %.1fs\n", bert_time_s() - t_start);
    printf("(%d sentences is far too little text for these numbers to mean much: this run shows the pipeline.)\n", sents);
}

int main(int argc, char **argv) {
    parse_options(argc, argv);
    double t_start = bert_time_s();
    if (mkdir(ro.out, 0777) != 0 && errno != EEXIST) run_die("%s: %s", ro.out, strerror(errno));
    text_data d;
    load_text(&d);
    split s;
    make_instances(&d, &s);
    print_instance(d.v, &s.train, 0);
    bert_config cfg = model_config(d.v->size);
    bert_model *m = bert_model_create(&cfg, (uint64_t)ro.seed);
    if (!m) run_die("%s", bert_last_error());
    results x;
    memset(&x, 0, sizeof x);
    double t0 = bert_time_s();
    int rc = pretrain(m, &s, &x.pt, &x.pt_steps, x.ckpt, sizeof x.ckpt);
    if (rc) return rc;
    x.pretrain_s = bert_time_s() - t0;
    x.base = make_baselines(&s, d.v->size);
    printf("baselines: masked LM %.1f%% (always '%s'), next sentence 50%% (chance; majority class %.1f%%)\n",
           100 * x.base.mlm, bert_vocab_token(d.v, x.base.top), 100 * x.base.nsp);
    check_round_trip(x.ckpt, &s.eval, &x.pt);
    x.params = m->num_params;
    bert_model_free(m);
    cls_set train, eval;
    make_cls_sets(&d, &train, &eval);
    x.ft_eval_n = eval.n;
    for (int i = 0; i < eval.n; i++) x.ft_majority += eval.label[i];
    x.ft_majority = fmax(x.ft_majority, eval.n - x.ft_majority) / eval.n;
    x.acc_pre = finetune(&cfg, x.ckpt, "classify", &train, &eval);
    x.acc_scratch = finetune(&cfg, NULL, "scratch", &train, &eval);
    summary(&d, &s, &cfg, &x, t_start);
    run_check_stream(stdout, "stdout");
    cls_free(&train); cls_free(&eval);
    instances_free(&s.train); instances_free(&s.eval);
    free(d.train.start); free(d.held.start);
    bert_corpus_free(&d.train.c); bert_corpus_free(&d.held.c);
    bert_vocab_free(d.v);
    return 0;
}
