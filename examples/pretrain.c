// pretrain.c - BERT pretraining (masked LM + next sentence prediction) as google-research/bert's
// run_pretraining.py and the model zoos run it: TFRecord files in, LAMB/AdamW, gradient
// accumulation, periodic held-out evaluation, resumable checkpoints, a JSON-lines log, an SVG curve
// and the seeds' summary (end-to-end time, p_whole / p_train / p_core throughput, peak memory).
//
//   cc -O2 -march=native -fopenmp -std=c11 examples/pretrain.c -o build/pretrain -lm
//   ./build/pretrain --input ../shared/data/pretrain_tfrecord/tf_examples.tfrecord
//       --config bert_config.json --steps 1000 --batch_size 32 --optimizer lamb --lr 1e-3 --out run1
//       (one command line)
//   ./build/pretrain --help
//
// Data order (what the PyTorch reference in tests/ref/pretrain_ref.py reproduces): the records of
// all --input files in the order given (a glob expands sorted) form one list; the last
// --eval_records of it (or 5 % by default) are held out unless --eval_input is given. Each epoch
// visits the training records in a Fisher-Yates permutation drawn from bert_rng_stream(seed, epoch,
// SHUFFLE_SITE); micro-batches are consecutive runs of --batch_size, the epoch's remainder dropped.
// An optimizer step takes --accumulation_steps micro-batches; its masked-LM loss is the mean over
// all predictions of the step and its NSP loss the mean over all its examples, so accumulating
// A micro-batches of b equals one batch of A*b. Dropout micro-batch k (counted over the run) uses
// bert_ctx_reset(ctx, k) with --seed as the dropout seed.
#define _DEFAULT_SOURCE   // glob, sigaction, mkdir, opendir
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <signal.h>
#include <glob.h>
#include <dirent.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#define BERT_IMPLEMENTATION
#include "../bert.h"

#define SHUFFLE_SITE 0x5348554646ull   // "SHUFF": the shuffle's RNG site, apart from dropout's
#define MAX_FILES 100000

// ----------------------------------------------------------------------------
// options

typedef struct {
    bert_flag_list input, eval_input, text;
    int do_lower_case, dupe_factor, do_whole_word_mask;
    float masked_lm_prob;
    const char *config, *init, *vocab, *out, *optimizer;
    int steps, epochs, batch_size, accumulation_steps, max_seq_length, max_predictions_per_seq;
    int warmup_steps, eval_records, eval_every, save_every, keep, print_every, seed, threads;
    int resume, max_bad_steps, no_shuffle, debug_kill_at_step, debug_nan_at_step, debug_nan_count;
    float lr, warmup_proportion, poly_power, end_lr, weight_decay, beta1, beta2, eps, clip_norm;
    float eval_fraction;
    const char *resume_from;
} options;

static options opt = {
    .out = "pretrain_out", .optimizer = "lamb", .steps = 0, .epochs = 1, .batch_size = 32,
    .accumulation_steps = 1, .max_seq_length = 128, .max_predictions_per_seq = 20, .warmup_steps = -1,
    .eval_records = -1, .eval_every = 0, .save_every = 0, .keep = 3, .print_every = 10, .seed = 12345,
    .max_bad_steps = 10, .debug_nan_count = 1, .do_lower_case = 1, .dupe_factor = 5, .masked_lm_prob = 0.15f, .lr = 1e-4f, .warmup_proportion = 0.1f, .poly_power = 1.0f, .end_lr = 0.0f,
    .weight_decay = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-6f, .clip_norm = 1.0f,
    .eval_fraction = 0.05f,
};

static const bert_flag flags[] = {
    { "input", BERT_FLAG_LIST, &opt.input, "TFRecord file or glob (quote it); repeat for more" },
    { "text", BERT_FLAG_LIST, &opt.text, "raw text instead (one sentence per line, blank line between documents; needs --vocab)" },
    { "do_lower_case", BERT_FLAG_BOOL, &opt.do_lower_case, "--text: lower-case and strip accents" },
    { "dupe_factor", BERT_FLAG_INT, &opt.dupe_factor, "--text: passes over the text, each with other masks" },
    { "masked_lm_prob", BERT_FLAG_FLOAT, &opt.masked_lm_prob, "--text: fraction of tokens masked" },
    { "do_whole_word_mask", BERT_FLAG_BOOL, &opt.do_whole_word_mask, "--text: mask whole words" },
    { "eval_input", BERT_FLAG_LIST, &opt.eval_input, "held-out TFRecord file or glob; default: the tail of --input" },
    { "eval_records", BERT_FLAG_INT, &opt.eval_records, "hold out the last N input records (-1: --eval_fraction)" },
    { "eval_fraction", BERT_FLAG_FLOAT, &opt.eval_fraction, "fraction of input records held out when --eval_records is -1" },
    { "config", BERT_FLAG_STR, &opt.config, "bert_config.json (optional with --init: its metadata has one)" },
    { "init", BERT_FLAG_STR, &opt.init, "initial weights, safetensors (e.g. converted from TF); default random" },
    { "vocab", BERT_FLAG_STR, &opt.vocab, "vocab.txt: its size is checked against the config" },
    { "out", BERT_FLAG_STR, &opt.out, "output directory: checkpoints, log.jsonl, curve.svg" },
    { "optimizer", BERT_FLAG_STR, &opt.optimizer, "lamb | adamw | adamw_gb | momentum" },
    { "lr", BERT_FLAG_FLOAT, &opt.lr, "peak learning rate" },
    { "warmup_steps", BERT_FLAG_INT, &opt.warmup_steps, "linear warmup steps (-1: --warmup_proportion)" },
    { "warmup_proportion", BERT_FLAG_FLOAT, &opt.warmup_proportion, "warmup as a fraction of the steps" },
    { "poly_power", BERT_FLAG_FLOAT, &opt.poly_power, "polynomial decay power after warmup" },
    { "end_lr", BERT_FLAG_FLOAT, &opt.end_lr, "learning rate at the last step" },
    { "weight_decay", BERT_FLAG_FLOAT, &opt.weight_decay, "decoupled weight decay (not on LayerNorm/bias)" },
    { "beta1", BERT_FLAG_FLOAT, &opt.beta1, "Adam/LAMB beta1" },
    { "beta2", BERT_FLAG_FLOAT, &opt.beta2, "Adam/LAMB beta2" },
    { "eps", BERT_FLAG_FLOAT, &opt.eps, "Adam/LAMB epsilon" },
    { "clip_norm", BERT_FLAG_FLOAT, &opt.clip_norm, "global gradient norm clip, 0 = off" },
    { "batch_size", BERT_FLAG_INT, &opt.batch_size, "examples per micro-batch" },
    { "accumulation_steps", BERT_FLAG_INT, &opt.accumulation_steps, "micro-batches per optimizer step" },
    { "max_seq_length", BERT_FLAG_INT, &opt.max_seq_length, "sequence length of the records" },
    { "max_predictions_per_seq", BERT_FLAG_INT, &opt.max_predictions_per_seq, "masked positions per record" },
    { "steps", BERT_FLAG_INT, &opt.steps, "optimizer steps (0: --epochs over the training records)" },
    { "epochs", BERT_FLAG_INT, &opt.epochs, "passes over the training records when --steps is 0" },
    { "seed", BERT_FLAG_INT, &opt.seed, "seed of the shuffle, the dropout masks and a random init" },
    { "no_shuffle", BERT_FLAG_BOOL, &opt.no_shuffle, "read the records in file order" },
    { "eval_every", BERT_FLAG_INT, &opt.eval_every, "evaluate every N steps (0: only at the end)" },
    { "save_every", BERT_FLAG_INT, &opt.save_every, "checkpoint every N steps (0: only at the end)" },
    { "keep", BERT_FLAG_INT, &opt.keep, "checkpoints kept (oldest deleted)" },
    { "resume", BERT_FLAG_BOOL, &opt.resume, "continue from the newest complete checkpoint in --out" },
    { "resume_from", BERT_FLAG_STR, &opt.resume_from, "continue from this checkpoint directory" },
    { "print_every", BERT_FLAG_INT, &opt.print_every, "progress line every N steps" },
    { "max_bad_steps", BERT_FLAG_INT, &opt.max_bad_steps, "stop after this many NaN/Inf steps in a row" },
    { "threads", BERT_FLAG_INT, &opt.threads, "OpenMP threads (0: OMP_NUM_THREADS or all cores)" },
    { "debug_kill_at_step", BERT_FLAG_INT, &opt.debug_kill_at_step, "testing: SIGKILL itself right after this step" },
    { "debug_nan_at_step", BERT_FLAG_INT, &opt.debug_nan_at_step, "testing: poison a gradient with NaN at this step" },
    { "debug_nan_count", BERT_FLAG_INT, &opt.debug_nan_count, "testing: ... and on this many attempts from there" },
};
#define NFLAGS ((int)(sizeof flags / sizeof flags[0]))

static void usage(FILE *f) {
    fprintf(f, "usage: pretrain --input FILE.tfrecord [--input ...] [flags]\n"
               "BERT pretraining (masked LM + next sentence) on TFRecords made by google-research/bert's\n"
               "create_pretraining_data.py (or tools/create_pretraining_data). Example:\n"
               "  pretrain --input 'data/*.tfrecord' --config bert_config.json --optimizer lamb --lr 1e-3 \\\n"
               "           --batch_size 32 --accumulation_steps 4 --steps 10000 --save_every 1000 --out run1\n"
               "Ctrl-C saves a checkpoint and exits with status 130; --resume continues it exactly.\n\nflags:\n");
    bert_flags_usage(f, flags, NFLAGS);
}

static void die(const char *fmt, ...) BERT__PRINTF(1, 2);
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pretrain: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

// ----------------------------------------------------------------------------
// data: every record of every file, addressed by (file, byte offset)

typedef struct {
    int nfiles;
    char **paths;                 // (nfiles)
    bert_tfrecord *files;         // (nfiles) opened on first use
    size_t n;                     // records
    int *file_of;                 // (n)
    size_t *first_of;             // (nfiles) index of each file's first record
    uint64_t *offset_of;          // (n)
} dataset;

static void dataset_add_file(dataset *d, const char *path) {
    uint64_t *offs;
    size_t count;
    if (bert_tfrecord_index(path, &offs, &count)) die("%s", bert_last_error());
    if (d->nfiles == MAX_FILES) die("more than %d input files", MAX_FILES);
    d->paths = (char **)realloc(d->paths, (size_t)(d->nfiles + 1) * sizeof(char *));
    d->first_of = (size_t *)realloc(d->first_of, (size_t)(d->nfiles + 1) * sizeof(size_t));
    d->file_of = (int *)realloc(d->file_of, (d->n + count + 1) * sizeof(int));
    d->offset_of = (uint64_t *)realloc(d->offset_of, (d->n + count + 1) * sizeof(uint64_t));
    if (!d->paths || !d->first_of || !d->file_of || !d->offset_of) die("out of memory indexing %s", path);
    d->first_of[d->nfiles] = d->n;
    d->paths[d->nfiles] = strdup(path);
    for (size_t i = 0; i < count; i++) {
        d->file_of[d->n + i] = d->nfiles;
        d->offset_of[d->n + i] = offs[i];
    }
    d->n += count;
    d->nfiles++;
    BERT_FREE(offs);
}

// each argument is a file or a glob; a pattern that matches nothing is an error, not an empty set
static void dataset_add(dataset *d, const bert_flag_list *patterns) {
    for (int p = 0; p < patterns->count; p++) {
        glob_t g;
        int rc = glob(patterns->items[p], 0, NULL, &g);
        if (rc == GLOB_NOMATCH) die("%s: no such file (or the pattern matches nothing)", patterns->items[p]);
        if (rc) die("%s: cannot expand the pattern", patterns->items[p]);
        for (size_t i = 0; i < g.gl_pathc; i++) dataset_add_file(d, g.gl_pathv[i]);
        globfree(&g);
    }
    d->files = (bert_tfrecord *)calloc((size_t)d->nfiles, sizeof(bert_tfrecord));
    if (!d->files && d->nfiles) die("out of memory");
}

static void dataset_free(dataset *d) {
    for (int f = 0; f < d->nfiles; f++) { bert_tfrecord_close(&d->files[f]); free(d->paths[f]); }
    free(d->files); free(d->paths); free(d->first_of); free(d->file_of); free(d->offset_of);
    memset(d, 0, sizeof *d);
}

static void dataset_read(dataset *d, size_t i, bert_pretrain_example *ex, int vocab_size) {
    bert_tfrecord *r = &d->files[d->file_of[i]];
    if (!r->file && bert_tfrecord_open(r, d->paths[d->file_of[i]])) die("%s", bert_last_error());
    // the record number in messages counts from the file's start
    if (bert_tfrecord_seek(r, d->offset_of[i], (uint64_t)(i - d->first_of[d->file_of[i]])) || bert_tfrecord_next_example(r, ex, vocab_size))
        die("%s", bert_last_error());
}

// --text: run the create_pretraining_data procedure into OUT/text_data.tfrecord (deterministic for a
// seed, so a resumed run makes the same file) and train on that
static void text_to_tfrecord(const char *path) {
    static const char *paths[4096];
    int n = 0;
    for (int p = 0; p < opt.text.count; p++) {
        glob_t g;
        if (glob(opt.text.items[p], 0, NULL, &g) != 0) die("%s: no such file (or the pattern matches nothing)", opt.text.items[p]);
        if (g.gl_pathc > (size_t)(4096 - n)) die("--text: over 4096 files (%s matches %zu); concatenate some", opt.text.items[p], g.gl_pathc);
        for (size_t i = 0; i < g.gl_pathc; i++) paths[n++] = strdup(g.gl_pathv[i]);
        globfree(&g);
    }
    bert_vocab *v = bert_vocab_load(opt.vocab);
    if (!v) die("%s", bert_last_error());
    bert_corpus corpus;
    if (bert_corpus_from_files(&corpus, v, opt.do_lower_case, paths, n)) die("%s", bert_last_error());
    bert_pretrain_data_opts o = bert_pretrain_data_defaults();
    unsigned char *cont;
    if (bert_pretrain_data_vocab(&o, v, &cont)) die("%s: %s", opt.vocab, bert_last_error());
    o.max_seq_length = opt.max_seq_length; o.max_predictions_per_seq = opt.max_predictions_per_seq;
    o.dupe_factor = opt.dupe_factor; o.masked_lm_prob = opt.masked_lm_prob; o.whole_word_mask = opt.do_whole_word_mask;
    o.seed = (uint64_t)opt.seed;
    bert_pretrain_data_stats st;
    if (bert_pretrain_data_write(path, &corpus, &o, &st)) die("%s", bert_last_error());
    printf("text: %d documents, %d sentences -> %ld instances in %s\n", corpus.num_docs, corpus.num_sents, st.instances, path);
    free(cont);
    bert_corpus_free(&corpus);
    bert_vocab_free(v);
    for (int i = 0; i < n; i++) free((void *)paths[i]);
}

// ----------------------------------------------------------------------------
// batches

typedef struct {
    int B, T, MP;
    int32_t *ids, *types, *mask;      // (B,T)
    int32_t *pos, *labels;            // (B,MP) label -100 = padding slot
    int32_t *nsp;                     // (B)
    int predictions;                  // slots with a label
} batch;

static void batch_alloc(batch *b, int B, int T, int MP) {
    b->B = B; b->T = T; b->MP = MP;
    size_t bt = (size_t)B * T, bp = (size_t)B * MP;
    b->ids = (int32_t *)calloc(3 * bt + 2 * bp + (size_t)B, sizeof(int32_t));
    if (!b->ids) die("out of memory for a batch");
    b->types = b->ids + bt; b->mask = b->types + bt; b->pos = b->mask + bt; b->labels = b->pos + bp; b->nsp = b->labels + bp;
}

// loads records idx[0..B) into the batch (B may be smaller than allocated: a last eval batch)
static void batch_load(batch *b, dataset *d, const size_t *idx, int B, int vocab_size) {
    float w[1024];
    if (b->MP > 1024) die("--max_predictions_per_seq over 1024");
    b->B = B; b->predictions = 0;
    for (int e = 0; e < B; e++) {
        bert_pretrain_example ex = { b->T, b->MP, b->ids + (size_t)e * b->T, b->mask + (size_t)e * b->T,
                                     b->types + (size_t)e * b->T, b->pos + (size_t)e * b->MP,
                                     b->labels + (size_t)e * b->MP, w, 0 };
        dataset_read(d, idx[e], &ex, vocab_size);
        b->nsp[e] = ex.next_sentence_label;
        for (int p = 0; p < b->MP; p++) {
            if (w[p] > 0.0f) { b->predictions++; continue; }
            ex.masked_lm_positions[p] = 0;   // padding slot: no label, any valid position
            ex.masked_lm_ids[p] = -100;
        }
    }
}

static bert_batch batch_view(const batch *b) {
    bert_batch v = { b->B, b->T, b->MP, b->ids, b->types, b->mask, b->pos, b->labels, b->nsp };
    return v;
}

// argmax hits of logits (N,V) against labels (N), ignoring -100
static int count_correct(const bert_tensor *logits, const int32_t *labels) {
    int N = logits->shape[0], V = logits->shape[1], hits = 0;
    for (int i = 0; i < N; i++) {
        if (labels[i] < 0) continue;
        const float *row = logits->data + (size_t)i * V;
        int best = 0;
        for (int v = 1; v < V; v++) if (row[v] > row[best]) best = v;
        hits += best == labels[i];
    }
    return hits;
}

// ----------------------------------------------------------------------------
// training state that is not in the model or optimizer: where the data cursor is

typedef struct {
    uint64_t micro;        // micro-batches consumed so far (also the dropout step)
    uint64_t epoch, cursor;   // position in the current epoch's permutation
    uint64_t bad_steps;    // steps skipped for NaN/Inf
} cursor_state;

static void permutation(size_t *perm, size_t n, uint64_t seed, uint64_t epoch, int shuffle) {
    for (size_t i = 0; i < n; i++) perm[i] = i;
    if (!shuffle) return;
    uint64_t stream = bert_rng_stream(seed, epoch, SHUFFLE_SITE);
    for (size_t i = n - 1; i > 0; i--) {   // Fisher-Yates; the modulo bias is < 2^-40 here
        size_t j = (size_t)(bert_rng_bits(stream, (uint64_t)i) % (uint64_t)(i + 1));
        size_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
}

// the next micro-batch's record indices; starts a new epoch when the current one has no full batch
static void next_indices(size_t *out, cursor_state *c, size_t *perm, size_t n_train, int B, uint64_t seed) {
    if ((uint64_t)B > n_train - c->cursor) {   // (cursor <= n_train: checked on resume)
        c->epoch++;
        c->cursor = 0;
        permutation(perm, n_train, seed, c->epoch, !opt.no_shuffle);
    }
    for (int e = 0; e < B; e++) out[e] = perm[c->cursor + (uint64_t)e];
    c->cursor += (uint64_t)B;
}

// ----------------------------------------------------------------------------
// evaluation on the held-out records, in order, dropout off

typedef struct { double mlm_loss, nsp_loss, mlm_acc, nsp_acc; size_t records; } eval_result;

static eval_result evaluate(bert_ctx *ctx, bert_model *m, dataset *d, const size_t *records, size_t n, batch *b, int vocab_size) {
    eval_result r = {0, 0, 0, 0, n};
    double mlm_sum = 0, nsp_sum = 0;
    long predictions = 0, mlm_hits = 0, nsp_hits = 0;
    int saved_training = ctx->training, saved_grad = ctx->grad_enabled;
    ctx->training = 0; ctx->grad_enabled = 0;
    for (size_t i = 0; i < n; i += (size_t)opt.batch_size) {
        int B = (int)(n - i < (size_t)opt.batch_size ? n - i : (size_t)opt.batch_size);
        batch_load(b, d, records + i, B, vocab_size);
        bert_ctx_reset(ctx, 0);
        bert_batch v = batch_view(b);
        bert_pretrain_out o = bert_pretrain_forward(ctx, m, &v);
        mlm_sum += (double)o.mlm_loss->data[0] * b->predictions;
        nsp_sum += (double)o.nsp_loss->data[0] * B;
        predictions += b->predictions;
        mlm_hits += count_correct(o.mlm_logits, b->labels);
        nsp_hits += count_correct(o.nsp_logits, b->nsp);
    }
    b->B = opt.batch_size;
    ctx->training = saved_training; ctx->grad_enabled = saved_grad;
    if (n) {
        r.mlm_loss = predictions ? mlm_sum / (double)predictions : 0.0;
        r.nsp_loss = nsp_sum / (double)n;
        r.mlm_acc = predictions ? (double)mlm_hits / (double)predictions : 0.0;
        r.nsp_acc = (double)nsp_hits / (double)n;
    }
    return r;
}

// ----------------------------------------------------------------------------
// checkpoints: OUT/ckpt-00000100/{model,state}.safetensors; the state is written last, so a
// directory with a state file that loads is complete

static void checkpoint_dir(char *buf, size_t n, uint64_t step) { snprintf(buf, n, "%s/ckpt-%08llu", opt.out, (unsigned long long)step); }

static int is_ckpt_name(const char *name, unsigned long long *step) {
    char tail;
    return sscanf(name, "ckpt-%llu%c", step, &tail) == 1 && strlen(name) == 13;
}

// checkpoint steps found in OUT, ascending; returns the count
static int list_checkpoints(unsigned long long *steps, int cap) {
    DIR *dir = opendir(opt.out);
    int n = 0;
    if (!dir) return 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        unsigned long long s;
        if (is_ckpt_name(e->d_name, &s) && n < cap) steps[n++] = s;
    }
    closedir(dir);
    for (int i = 1; i < n; i++)   // insertion sort: a handful of entries
        for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) { unsigned long long t = steps[j]; steps[j] = steps[j - 1]; steps[j - 1] = t; }
    return n;
}

static void remove_checkpoint(unsigned long long step) {
    char dir[4096], path[4200];
    checkpoint_dir(dir, sizeof dir, step);
    snprintf(path, sizeof path, "%s/state.safetensors", dir); remove(path);   // state first: never a state without weights
    snprintf(path, sizeof path, "%s/model.safetensors", dir); remove(path);
    rmdir(dir);
}

static void save_checkpoint(const bert_model *m, const bert_optim *o, const cursor_state *c, const char *fingerprint) {
    char dir[4096], path[4200];
    checkpoint_dir(dir, sizeof dir, o->step);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) die("%s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    remove(path);   // an older state beside new weights would pair them wrongly
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (bert_model_save(m, path)) die("saving %s", bert_last_error());
    char micro[32], epoch[32], cur[32], bad[32];
    snprintf(micro, sizeof micro, "%llu", (unsigned long long)c->micro);
    snprintf(epoch, sizeof epoch, "%llu", (unsigned long long)c->epoch);
    snprintf(cur, sizeof cur, "%llu", (unsigned long long)c->cursor);
    snprintf(bad, sizeof bad, "%llu", (unsigned long long)c->bad_steps);
    const char *kv[] = { "micro", micro, "epoch", epoch, "cursor", cur, "bad_steps", bad, "data", fingerprint };
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    if (bert_optim_save(o, m, path, kv, 5)) die("saving %s", bert_last_error());
    unsigned long long steps[4096];
    int n = list_checkpoints(steps, 4096);
    for (int i = 0; i + opt.keep < n; i++) remove_checkpoint(steps[i]);
}

// a decimal count from the state's metadata: digits only (strtoull would take "-1" as 2^64 - 1)
static int meta_u64(const bert_st *st, const char *key, uint64_t *v) {
    const char *s = bert_st_meta(st, key);
    char *end = NULL;
    if (!s || *s < '0' || *s > '9') return 0;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return !*end && errno != ERANGE;
}

// loads dir's weights, moments and cursor; 0 if the checkpoint is incomplete or unreadable
static int load_checkpoint(const char *dir, bert_model *m, bert_optim *o, cursor_state *c, const char *fingerprint,
                           size_t n_train, int verbose) {
    char path[4200];
    bert_st st;
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    if (bert_st_open(&st, path)) { if (verbose) fprintf(stderr, "pretrain: skipping %s: %s\n", dir, bert_last_error()); return 0; }
    cursor_state s;
    int ok = meta_u64(&st, "micro", &s.micro) && meta_u64(&st, "epoch", &s.epoch) && meta_u64(&st, "cursor", &s.cursor) &&
             meta_u64(&st, "bad_steps", &s.bad_steps);
    const char *data = bert_st_meta(&st, "data");
    if (ok && (!data || strcmp(data, fingerprint)))
        die("%s: it was trained on other data (%s) than this run's (%s)", dir, data ? data : "?", fingerprint);
    if (ok && s.cursor > n_train)   // same data, so a damaged or edited state file
        die("%s/state.safetensors: data cursor %llu is past the %zu training records", dir, (unsigned long long)s.cursor, n_train);
    bert_st_close(&st);
    if (!ok) { if (verbose) fprintf(stderr, "pretrain: skipping %s: no data cursor in its state\n", dir); return 0; }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (bert_model_load_weights(m, path)) { if (verbose) fprintf(stderr, "pretrain: skipping %s: %s\n", dir, bert_last_error()); return 0; }
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    if (bert_optim_load(o, m, path)) die("%s", bert_last_error());
    *c = s;
    return 1;
}

// ----------------------------------------------------------------------------
// log and curve

typedef struct { int n, cap; double *step, *loss, *eval_step, *eval_acc; int ne; } curve;

static void curve_grow(curve *cv) {
    if (cv->n == cv->cap || cv->ne == cv->cap) {
        cv->cap = cv->cap ? 2 * cv->cap : 256;
        cv->step = (double *)realloc(cv->step, (size_t)cv->cap * sizeof(double));
        cv->loss = (double *)realloc(cv->loss, (size_t)cv->cap * sizeof(double));
        cv->eval_step = (double *)realloc(cv->eval_step, (size_t)cv->cap * sizeof(double));
        cv->eval_acc = (double *)realloc(cv->eval_acc, (size_t)cv->cap * sizeof(double));
        if (!cv->step || !cv->loss || !cv->eval_step || !cv->eval_acc) die("out of memory");
    }
}

static void curve_add(curve *cv, double step, double loss) { curve_grow(cv); cv->step[cv->n] = step; cv->loss[cv->n++] = loss; }
static void curve_eval(curve *cv, double step, double acc) { curve_grow(cv); cv->eval_step[cv->ne] = step; cv->eval_acc[cv->ne++] = acc; }

// training loss (left axis, blue) and held-out masked-LM accuracy (right axis 0..1, orange)
static void write_svg(const char *path, const curve *cv, double max_step) {
    FILE *f = fopen(path, "w");
    if (!f) { fprintf(stderr, "pretrain: %s: %s\n", path, strerror(errno)); return; }
    const double W = 640, H = 360, x0 = 60, y0 = 20, w = 520, h = 290;
    double lmax = 0;
    for (int i = 0; i < cv->n; i++) if (cv->loss[i] > lmax) lmax = cv->loss[i];
    lmax = lmax > 0 ? ceil(lmax) : 1;
    if (max_step < 1) max_step = 1;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%g' height='%g' font-family='sans-serif' font-size='11'>\n"
               "<rect width='100%%' height='100%%' fill='white'/>\n"
               "<rect x='%g' y='%g' width='%g' height='%g' fill='none' stroke='#888'/>\n", W, H, x0, y0, w, h);
    for (int k = 0; k <= 4; k++) {
        double y = y0 + h - h * k / 4;
        fprintf(f, "<text x='%g' y='%g' text-anchor='end' fill='#1f77b4'>%.2f</text>"
                   "<text x='%g' y='%g' fill='#ff7f0e'>%.2f</text>"
                   "<text x='%g' y='%g' text-anchor='middle'>%.0f</text>\n",
                x0 - 4, y + 4, lmax * k / 4, x0 + w + 4, y + 4, k / 4.0, x0 + w * k / 4, y0 + h + 14, max_step * k / 4);
    }
    fprintf(f, "<text x='%g' y='%g' text-anchor='middle'>step</text>\n", x0 + w / 2, H - 8);
    fprintf(f, "<text x='%g' y='12' fill='#1f77b4'>training loss</text><text x='%g' y='12' fill='#ff7f0e' text-anchor='end'>held-out masked-LM accuracy</text>\n", x0, x0 + w);
    fprintf(f, "<polyline fill='none' stroke='#1f77b4' stroke-width='1.5' points='");
    for (int i = 0; i < cv->n; i++) fprintf(f, "%.1f,%.1f ", x0 + w * cv->step[i] / max_step, y0 + h - h * cv->loss[i] / lmax);
    fprintf(f, "'/>\n<polyline fill='none' stroke='#ff7f0e' stroke-width='2' points='");
    for (int i = 0; i < cv->ne; i++) fprintf(f, "%.1f,%.1f ", x0 + w * cv->eval_step[i] / max_step, y0 + h - h * cv->eval_acc[i]);
    fprintf(f, "'/>\n");
    for (int i = 0; i < cv->ne; i++)
        fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='#ff7f0e'/>\n", x0 + w * cv->eval_step[i] / max_step, y0 + h - h * cv->eval_acc[i]);
    fprintf(f, "</svg>\n");
    fclose(f);
}

// ----------------------------------------------------------------------------
// main

static volatile sig_atomic_t interrupted = 0;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

static bert_optim_type parse_optimizer(const char *name) {
    static const bert_optim_type all[] = { BERT_OPTIM_LAMB, BERT_OPTIM_ADAMW, BERT_OPTIM_ADAMW_GB, BERT_OPTIM_MOMENTUM };
    for (int i = 0; i < 4; i++) if (!strcmp(name, bert_optim_name(all[i]))) return all[i];
    die("--optimizer: '%s' is not one of lamb, adamw, adamw_gb, momentum", name);
    return BERT_OPTIM_LAMB;
}

static void check_options(void) {
    if (!opt.input.count && !opt.text.count) { usage(stderr); die("--input (TFRecords) or --text is required"); }
    if (opt.text.count && !opt.vocab) die("--text needs --vocab");
    if (!opt.config && !opt.init) die("give --config bert_config.json (or --init with a config in its metadata)");
    if (opt.batch_size < 1 || opt.accumulation_steps < 1) die("--batch_size and --accumulation_steps must be >= 1");
    if (opt.max_seq_length < 2 || opt.max_predictions_per_seq < 1) die("--max_seq_length >= 2 and --max_predictions_per_seq >= 1 please");
    if (opt.max_predictions_per_seq > 1024) die("--max_predictions_per_seq over 1024");
    if (!(opt.warmup_proportion >= 0 && opt.warmup_proportion <= 1)) die("--warmup_proportion must be in [0,1]");
    if (opt.steps < 0 || opt.epochs < 1) die("--steps must be >= 0 and --epochs >= 1");
    if (!(opt.lr > 0) || opt.keep < 1 || opt.print_every < 1) die("--lr > 0, --keep >= 1, --print_every >= 1 please");
    if (opt.eval_fraction < 0 || opt.eval_fraction >= 1) die("--eval_fraction must be in [0,1)");
    if (opt.save_every < 0 || opt.eval_every < 0) die("--save_every and --eval_every must be >= 0");
}

static bert_model *make_model(void) {
    bert_config cfg;
    if (opt.config && bert_config_load(&cfg, opt.config)) die("%s", bert_last_error());
    bert_model *m;
    if (opt.init) {
        if (!(m = bert_model_load(opt.init, opt.config ? &cfg : NULL))) die("%s", bert_last_error());
        if (opt.config && memcmp(&m->config, &cfg, sizeof cfg) != 0)
            fprintf(stderr, "pretrain: note: %s carries its own config, which differs from %s; using the checkpoint's\n", opt.init, opt.config);
    } else if (!(m = bert_model_create(&cfg, (uint64_t)opt.seed))) die("%s", bert_last_error());
    if (m->config.max_position_embeddings < opt.max_seq_length)
        die("--max_seq_length %d exceeds the model's max_position_embeddings %d", opt.max_seq_length, m->config.max_position_embeddings);
    if (m->config.type_vocab_size < 2)   // every pretraining example is a pair: segment ids 0 and 1
        die("%s: type_vocab_size %d: next-sentence pairs need token types 0 and 1", opt.init ? opt.init : opt.config, m->config.type_vocab_size);
    if (opt.vocab) {   // the vocab file must match the embedding table
        FILE *f = fopen(opt.vocab, "rb");
        if (!f) die("%s: %s", opt.vocab, strerror(errno));
        long long lines = 0;   // (a huge file must not wrap an int into a false match)
        int c, last = '\n';
        while ((c = getc(f)) != EOF) { if (c == '\n') lines++; last = c; }
        fclose(f);
        lines += last != '\n';
        if (lines != m->config.vocab_size) die("%s: %lld tokens, but the model's vocab_size is %d", opt.vocab, lines, m->config.vocab_size);
    }
    return m;
}

int main(int argc, char **argv) {
    double t_start = bert_time_s();
    int rc = bert_flags_parse(flags, NFLAGS, argc, argv);
    if (rc == 1) { usage(stdout); return 0; }
    if (rc) die("%s", bert_last_error());
    check_options();
#ifdef _OPENMP
    if (opt.threads > 0) omp_set_num_threads(opt.threads);
#endif
    if (mkdir(opt.out, 0777) != 0 && errno != EEXIST) die("%s: %s", opt.out, strerror(errno));

    // data
    dataset train = {0}, held = {0};
    char text_path[4200];
    if (opt.text.count) {
        snprintf(text_path, sizeof text_path, "%s/text_data.tfrecord", opt.out);
        text_to_tfrecord(text_path);
        if (opt.input.count == 64) die("--input: given over 63 times with --text");
        opt.input.items[opt.input.count++] = text_path;
    }
    dataset_add(&train, &opt.input);
    size_t n_eval;
    if (opt.eval_input.count) {
        dataset_add(&held, &opt.eval_input);
        n_eval = held.n;
    } else {
        n_eval = opt.eval_records >= 0 ? (size_t)opt.eval_records : (size_t)(opt.eval_fraction * (double)train.n);
        if (n_eval >= train.n) die("--eval_records %zu leaves no training records (of %zu)", n_eval, train.n);
    }
    dataset *eval_set = opt.eval_input.count ? &held : &train;
    size_t n_train = train.n - (opt.eval_input.count ? 0 : n_eval);
    size_t *eval_idx = (size_t *)calloc(n_eval + 1, sizeof(size_t)), *perm = (size_t *)calloc(n_train + 1, sizeof(size_t));
    if (!eval_idx || !perm) die("out of memory");
    for (size_t i = 0; i < n_eval; i++) eval_idx[i] = opt.eval_input.count ? i : n_train + i;
    int B = opt.batch_size, A = opt.accumulation_steps;
    if (n_train < (size_t)B) die("%zu training records, fewer than one batch of %d", n_train, B);
    // epochs count micro-batches (the data stream runs across epoch ends; a step may straddle one)
    size_t micro_per_epoch = n_train / (size_t)B;
    int total = opt.steps ? opt.steps : (int)(micro_per_epoch * (size_t)opt.epochs / (size_t)A);
    if (total < 1) die("%zu training records make no full step of %d x %d; lower --batch_size or give --steps", n_train, B, A);
    char fingerprint[160];
    snprintf(fingerprint, sizeof fingerprint, "%zu records in %d files, %zu held out, T %d, P %d, batch %d x %d, seed %d",
             train.n, train.nfiles, n_eval, opt.max_seq_length, opt.max_predictions_per_seq, B, A, opt.seed);

    // model and optimizer
    bert_model *m = make_model();
    int V = m->config.vocab_size;
    bert_optim o = bert_optim_defaults(parse_optimizer(opt.optimizer));
    o.lr = opt.lr; o.end_lr = opt.end_lr; o.poly_power = opt.poly_power; o.total_steps = total;
    o.warmup_steps = opt.warmup_steps >= 0 ? opt.warmup_steps : (int)(opt.warmup_proportion * (float)total);
    o.weight_decay = opt.weight_decay; o.beta1 = opt.beta1; o.beta2 = opt.beta2; o.eps = opt.eps;
    o.clip_norm = opt.clip_norm; o.accumulation_steps = A;
    if (bert_optim_init(&o, m)) die("%s", bert_last_error());
    bert_ctx *ctx = bert_ctx_create((size_t)64 << 20);
    if (!ctx) die("out of memory for the activation arena");
    ctx->seed = (uint64_t)opt.seed;

    // resume
    cursor_state cur = {0, 0, 0, 0};
    permutation(perm, n_train, (uint64_t)opt.seed, 0, !opt.no_shuffle);
    if (opt.resume_from) {
        if (!load_checkpoint(opt.resume_from, m, &o, &cur, fingerprint, n_train, 1)) die("%s: not a complete checkpoint", opt.resume_from);
        printf("resumed from %s at step %llu\n", opt.resume_from, (unsigned long long)o.step);
    } else if (opt.resume) {
        unsigned long long steps[4096];
        int n = list_checkpoints(steps, 4096), found = 0;
        for (int i = n - 1; i >= 0 && !found; i--) {
            char dir[4096];
            checkpoint_dir(dir, sizeof dir, steps[i]);
            if ((found = load_checkpoint(dir, m, &o, &cur, fingerprint, n_train, 1))) printf("resumed from %s at step %llu\n", dir, (unsigned long long)o.step);
        }
        if (!found) printf("no checkpoint in %s: starting from scratch\n", opt.out);
    }
    permutation(perm, n_train, (uint64_t)opt.seed, cur.epoch, !opt.no_shuffle);

    char path[4200];
    snprintf(path, sizeof path, "%s/log.jsonl", opt.out);
    FILE *log = fopen(path, o.step ? "a" : "w");
    if (!log) die("%s: %s", path, strerror(errno));
    printf("pretrain: %s | %zu train + %zu held-out records | L=%d H=%d A=%d (%zu params) | %s lr %g warmup %d | "
           "batch %d x %d accumulation | %d steps | sgemm %s\n",
           opt.input.items[0], n_train, n_eval, m->config.num_hidden_layers, m->config.hidden_size,
           m->config.num_attention_heads, m->num_params, opt.optimizer, (double)o.lr, o.warmup_steps, B, A, total,
           bert_sgemm_kernel_name());
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);

    batch *mb = (batch *)calloc((size_t)A, sizeof(batch));
    batch eb;
    if (!mb) die("out of memory");
    for (int k = 0; k < A; k++) batch_alloc(&mb[k], B, opt.max_seq_length, opt.max_predictions_per_seq);
    batch_alloc(&eb, B, opt.max_seq_length, opt.max_predictions_per_seq);
    size_t *idx = (size_t *)calloc((size_t)B, sizeof(size_t));
    curve cv = {0, 0, NULL, NULL, NULL, NULL, 0};
    double t_data = 0, t_compute = 0, t_eval = 0, t_ckpt = 0, t_loop = bert_time_s();
    uint64_t first_step = o.step, samples = 0;
    int bad_in_row = 0, poisoned = 0;
    eval_result last_eval = {0, 0, 0, 0, 0};
    const char *stop_reason = "done";

    while ((int)o.step < total) {
        // data for the whole optimizer step first: the loss normalisation needs its prediction count
        double t0 = bert_time_s();
        int predictions = 0;
        for (int k = 0; k < A; k++) {
            next_indices(idx, &cur, perm, n_train, B, (uint64_t)opt.seed);
            batch_load(&mb[k], &train, idx, B, V);
            predictions += mb[k].predictions;
        }
        double t1 = bert_time_s();
        t_data += t1 - t0;

        double loss = 0, mlm = 0, nsp = 0;
        int mlm_hits = 0, nsp_hits = 0, finite = 1, bad_loss = 0;
        bert_model_zero_grad(m);
        for (int k = 0; k < A; k++) {
            bert_ctx_reset(ctx, cur.micro++);
            bert_batch v = batch_view(&mb[k]);
            bert_pretrain_out out = bert_pretrain_forward(ctx, m, &v);
            // weights: mlm by this micro-batch's share of the step's predictions, nsp by 1/A; the
            // optimizer divides the summed grads by A, hence the factor A on the mlm weight
            float wm = predictions ? (float)A * (float)mb[k].predictions / (float)predictions : 0.0f;
            bert_tensor *l = bert_add(ctx, bert_scale(ctx, out.mlm_loss, wm), out.nsp_loss);
            double lv = l->data[0];
            if (!isfinite(lv)) { finite = 0; bad_loss = 1; break; }
            bert_backward(ctx, l);
            loss += lv / A;
            mlm += (double)out.mlm_loss->data[0] * (predictions ? (double)mb[k].predictions / predictions : 0.0);
            nsp += (double)out.nsp_loss->data[0] / A;
            mlm_hits += count_correct(out.mlm_logits, mb[k].labels);
            nsp_hits += count_correct(out.nsp_logits, mb[k].nsp);
        }
        if (opt.debug_nan_at_step && (int)o.step + 1 == opt.debug_nan_at_step && poisoned < opt.debug_nan_count) {
            m->grads[0] = NAN;
            poisoned++;
        }
        if (finite && bert_optim_step(&o, m) == BERT_ERR_NONFINITE) finite = 0;
        t_compute += bert_time_s() - t1;
        samples += (uint64_t)A * (uint64_t)B;
        if (!finite) {
            cur.bad_steps++;
            fprintf(stderr, "pretrain: warning: NaN/Inf %s at step %llu: update skipped (%llu skipped so far)\n",
                    bad_loss ? "loss" : "gradients", (unsigned long long)o.step + 1, (unsigned long long)cur.bad_steps);
            fprintf(log, "{\"skipped_step\": %llu, \"reason\": \"non-finite loss or gradients\"}\n", (unsigned long long)o.step + 1);
            if (++bad_in_row >= opt.max_bad_steps) { stop_reason = "too many NaN/Inf steps in a row"; break; }
            continue;
        }
        bad_in_row = 0;
        uint64_t s = o.step;
        curve_add(&cv, (double)s, loss);
        double elapsed = bert_time_s() - t_loop, per_step = elapsed / (double)(s - first_step);
        double sps = (double)(s - first_step) * A * B / (t_compute + t_data);
        fprintf(log, "{\"step\": %llu, \"loss\": %.9g, \"mlm_loss\": %.9g, \"nsp_loss\": %.9g, \"mlm_acc\": %.6f, "
                     "\"nsp_acc\": %.6f, \"lr\": %.9g, \"grad_norm\": %.9g, \"samples_per_s\": %.3f, \"time\": %.3f}\n",
                (unsigned long long)s, loss, mlm, nsp, predictions ? (double)mlm_hits / predictions : 0.0,
                (double)nsp_hits / (A * B), (double)o.last_lr, (double)o.last_grad_norm, sps, bert_time_s() - t_start);
        fflush(log);
        if (s % (uint64_t)opt.print_every == 0 || (int)s == total || s == first_step + 1) {
            char eta[32];
            bert_format_duration(eta, sizeof eta, per_step * (double)((uint64_t)total - s));
            printf("step %6llu/%d | loss %.4f (mlm %.4f nsp %.4f) | mlm acc %.3f nsp acc %.3f | lr %.3e | |g| %.3f | "
                   "%.0f tok/s %.2f samples/s | ETA %s\n",
                   (unsigned long long)s, total, loss, mlm, nsp, predictions ? (double)mlm_hits / predictions : 0.0,
                   (double)nsp_hits / (A * B), (double)o.last_lr, (double)o.last_grad_norm,
                   sps * opt.max_seq_length, sps, eta);
            fflush(stdout);
        }
        if (n_eval && opt.eval_every && s % (uint64_t)opt.eval_every == 0 && (int)s != total) {
            double te = bert_time_s();
            last_eval = evaluate(ctx, m, eval_set, eval_idx, n_eval, &eb, V);
            t_eval += bert_time_s() - te;
            curve_eval(&cv, (double)s, last_eval.mlm_acc);
            printf("eval  %6llu | mlm loss %.4f acc %.4f | nsp loss %.4f acc %.4f | %zu records\n", (unsigned long long)s,
                   last_eval.mlm_loss, last_eval.mlm_acc, last_eval.nsp_loss, last_eval.nsp_acc, n_eval);
            fprintf(log, "{\"eval_step\": %llu, \"mlm_loss\": %.9g, \"mlm_acc\": %.6f, \"nsp_loss\": %.9g, \"nsp_acc\": %.6f}\n",
                    (unsigned long long)s, last_eval.mlm_loss, last_eval.mlm_acc, last_eval.nsp_loss, last_eval.nsp_acc);
            snprintf(path, sizeof path, "%s/curve.svg", opt.out);
            write_svg(path, &cv, total);
        }
        if (opt.save_every && s % (uint64_t)opt.save_every == 0 && (int)s != total) {
            double tc = bert_time_s();
            save_checkpoint(m, &o, &cur, fingerprint);
            t_ckpt += bert_time_s() - tc;
        }
        if (opt.debug_kill_at_step && (int)s == opt.debug_kill_at_step) { fflush(NULL); raise(SIGKILL); }
        if (interrupted) { stop_reason = "interrupted"; break; }
    }

    // the end: a last checkpoint (unless the run failed), a last evaluation, the summary
    int failed = !strcmp(stop_reason, "too many NaN/Inf steps in a row");
    if (!failed && o.step > first_step) {
        double tc = bert_time_s();
        save_checkpoint(m, &o, &cur, fingerprint);
        t_ckpt += bert_time_s() - tc;
    }
    if (n_eval && !failed && !interrupted) {
        double te = bert_time_s();
        last_eval = evaluate(ctx, m, eval_set, eval_idx, n_eval, &eb, V);
        t_eval += bert_time_s() - te;
        curve_eval(&cv, (double)o.step, last_eval.mlm_acc);
        printf("eval  %6llu | mlm loss %.4f acc %.4f | nsp loss %.4f acc %.4f | %zu records\n", (unsigned long long)o.step,
               last_eval.mlm_loss, last_eval.mlm_acc, last_eval.nsp_loss, last_eval.nsp_acc, n_eval);
        fprintf(log, "{\"eval_step\": %llu, \"mlm_loss\": %.9g, \"mlm_acc\": %.6f, \"nsp_loss\": %.9g, \"nsp_acc\": %.6f}\n",
                (unsigned long long)o.step, last_eval.mlm_loss, last_eval.mlm_acc, last_eval.nsp_loss, last_eval.nsp_acc);
    }
    snprintf(path, sizeof path, "%s/curve.svg", opt.out);
    write_svg(path, &cv, total);
    double e2e = bert_time_s() - t_start, train_time = bert_time_s() - t_loop - t_eval;
    double p_whole = (double)samples / e2e, p_train = (double)samples / train_time, p_core = (double)samples / t_compute;
    char ckpt[4096];
    checkpoint_dir(ckpt, sizeof ckpt, o.step);
    printf("summary: %s after %llu steps (%llu this run, %llu skipped) | e2e %.1f s | p_whole %.2f samples/s | "
           "p_train %.2f | p_core %.2f | data %.1f s eval %.1f s checkpoints %.1f s | peak RSS %.0f MiB\n",
           stop_reason, (unsigned long long)o.step, (unsigned long long)(o.step - first_step), (unsigned long long)cur.bad_steps,
           e2e, p_whole, p_train, p_core, t_data, t_eval, t_ckpt, bert_peak_rss_mib());
    if (!failed && o.step > first_step) printf("checkpoint: %s | log: %s/log.jsonl | curve: %s/curve.svg\n", ckpt, opt.out, opt.out);
    fprintf(log, "{\"summary\": \"%s\", \"step\": %llu, \"skipped\": %llu, \"e2e_s\": %.3f, \"p_whole\": %.4f, \"p_train\": %.4f, "
                 "\"p_core\": %.4f, \"peak_rss_mib\": %.1f, \"eval_mlm_acc\": %.6f, \"eval_nsp_acc\": %.6f}\n",
            stop_reason, (unsigned long long)o.step, (unsigned long long)cur.bad_steps, e2e, p_whole, p_train, p_core,
            bert_peak_rss_mib(), last_eval.mlm_acc, last_eval.nsp_acc);
    fclose(log);
    for (int k = 0; k < A; k++) free(mb[k].ids);
    free(mb); free(eb.ids); free(idx); free(perm); free(eval_idx);
    free(cv.step); free(cv.loss); free(cv.eval_step); free(cv.eval_acc);
    bert_ctx_free(ctx);
    bert_optim_free(&o);
    bert_model_free(m);
    dataset_free(&train);
    dataset_free(&held);
    if (failed) { fprintf(stderr, "pretrain: stopped: %d steps in a row had NaN/Inf loss or gradients; the last good checkpoint is kept\n", opt.max_bad_steps); return 1; }
    return interrupted ? 130 : 0;
}
