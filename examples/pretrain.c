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
#define _DEFAULT_SOURCE   // glob
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#ifndef _WIN32
#include <glob.h>   // (Windows: run.h has a glob of its own)
#endif
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "run.h"

#define MAX_FILES 100000

// ----------------------------------------------------------------------------
// options: the task's own; the optimizer, schedule, steps, checkpoints and output are run.h's

static struct {
    bert_flag_list input, eval_input, text;
    int do_lower_case, dupe_factor, do_whole_word_mask, max_seq_length, max_predictions_per_seq, eval_records, next_sentence;
    float masked_lm_prob, eval_fraction, stop_at_mlm_acc;
    const char *config, *init, *vocab, *schema_dir;
} po = {
    .do_lower_case = 1, .dupe_factor = 5, .max_seq_length = 128, .max_predictions_per_seq = 20, .eval_records = -1,
    .masked_lm_prob = 0.15f, .eval_fraction = 0.05f, .next_sentence = 1,
};
static run_opts ro;

static const bert_flag flags[] = {
    { "input", BERT_FLAG_LIST, &po.input, "TFRecord file or glob (quote it); repeat for more" },
    { "text", BERT_FLAG_LIST, &po.text, "raw text instead (one sentence per line, blank line between documents; needs --vocab)" },
    { "do_lower_case", BERT_FLAG_BOOL, &po.do_lower_case, "--text: lower-case and strip accents" },
    { "dupe_factor", BERT_FLAG_INT, &po.dupe_factor, "--text: passes over the text, each with other masks" },
    { "masked_lm_prob", BERT_FLAG_FLOAT, &po.masked_lm_prob, "--text: fraction of tokens masked" },
    { "do_whole_word_mask", BERT_FLAG_BOOL, &po.do_whole_word_mask, "--text: mask whole words" },
    { "schema_dir", BERT_FLAG_STR, &po.schema_dir, "MindSpore's dataset schema JSON: its numRows limits --input to its first N records" },
    { "eval_input", BERT_FLAG_LIST, &po.eval_input, "held-out TFRecord file or glob; default: the tail of --input" },
    { "eval_records", BERT_FLAG_INT, &po.eval_records, "hold out the last N input records (-1: --eval_fraction)" },
    { "eval_fraction", BERT_FLAG_FLOAT, &po.eval_fraction, "fraction of input records held out when --eval_records is -1" },
    { "config", BERT_FLAG_STR, &po.config, "bert_config.json for a random init (or when --init carries no config)" },
    { "init", BERT_FLAG_STR, &po.init, "initial weights, safetensors (e.g. converted from TF); default random" },
    { "vocab", BERT_FLAG_STR, &po.vocab, "vocab.txt: its size is checked against the config" },
    { "max_seq_length", BERT_FLAG_INT, &po.max_seq_length, "sequence length of the records" },
    { "max_predictions_per_seq", BERT_FLAG_INT, &po.max_predictions_per_seq, "masked positions per record" },
    { "stop_at_mlm_acc", BERT_FLAG_FLOAT, &po.stop_at_mlm_acc, "stop once the held-out MLM accuracy reaches this (0: off); time and steps to it are reported" },
    { "next_sentence", BERT_FLAG_BOOL, &po.next_sentence, "train next-sentence prediction; false: the masked LM alone (NEZHA, RoBERTa)" },
};

static const char usage_text[] =
    "usage: pretrain --input FILE.tfrecord [--input ...] [flags]\n"
    "BERT pretraining (masked LM + next sentence) on TFRecords made by google-research/bert's\n"
    "create_pretraining_data.py (or tools/create_pretraining_data). Example:\n"
    "  pretrain --input 'data/*.tfrecord' --config bert_config.json --optimizer lamb --lr 1e-3 \\\n"
    "           --batch_size 32 --accumulation_steps 4 --steps 10000 --save_every 1000 --out run1\n"
    "Ctrl-C saves a checkpoint and exits with status 130; --resume continues it exactly.\n";

static void parse_options(int argc, char **argv) {
    ro = run_defaults();
    ro.out = "pretrain_out"; ro.optimizer = "lamb"; ro.lr = 1e-4f; ro.epochs = 1; ro.drop_last = 1;
    run_parse("pretrain", usage_text, flags, (int)(sizeof flags / sizeof *flags), &ro, RUN_FLAGS_TRAIN | RUN_FLAGS_COMMON | RUN_FLAGS_TOKENIZER, argc, argv);
    if (!po.input.count && !po.text.count) { printf("%s", usage_text); run_die("--input (TFRecords) or --text is required"); }
    if (po.text.count && !po.vocab) run_die("--text needs --vocab");
    if (!po.config && !po.init) run_die("give --config bert_config.json (or --init with a config in its metadata)");
    if (!(po.stop_at_mlm_acc >= 0 && po.stop_at_mlm_acc <= 1)) run_die("--stop_at_mlm_acc %g: an accuracy in [0, 1] please", (double)po.stop_at_mlm_acc);
    if (po.max_seq_length < 2 || po.max_predictions_per_seq < 1) run_die("--max_seq_length >= 2 and --max_predictions_per_seq >= 1 please");
    if (po.max_predictions_per_seq > 1024) run_die("--max_predictions_per_seq over 1024");
    if (po.eval_fraction < 0 || po.eval_fraction >= 1) run_die("--eval_fraction must be in [0,1)");
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
    if (bert_tfrecord_index(path, &offs, &count)) run_die("%s", bert_last_error());
    if (d->nfiles == MAX_FILES) run_die("more than %d input files", MAX_FILES);
    d->paths = (char **)run_realloc(d->paths, (size_t)(d->nfiles + 1) * sizeof(char *));
    d->first_of = (size_t *)run_realloc(d->first_of, (size_t)(d->nfiles + 1) * sizeof(size_t));
    d->file_of = (int *)run_realloc(d->file_of, (d->n + count + 1) * sizeof(int));
    d->offset_of = (uint64_t *)run_realloc(d->offset_of, (d->n + count + 1) * sizeof(uint64_t));
    d->first_of[d->nfiles] = d->n;
    d->paths[d->nfiles] = run_strdup(path);
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
        if (rc == GLOB_NOMATCH) run_die("%s: no such file (or the pattern matches nothing)", patterns->items[p]);
        if (rc) run_die("%s: cannot expand the pattern", patterns->items[p]);
        for (size_t i = 0; i < g.gl_pathc; i++) dataset_add_file(d, g.gl_pathv[i]);
        globfree(&g);
    }
    d->files = (bert_tfrecord *)run_calloc((size_t)d->nfiles, sizeof(bert_tfrecord));
}

/* --schema_dir: MindSpore's BERT scripts read the TFRecords through a schema file whose "numRows" (when
   given and positive) takes the first numRows records of the files, in the order given */
static void apply_schema(dataset *d) {
    size_t len;
    char *text = run_read_file_max(po.schema_dir, &len, (size_t)1 << 20, "a dataset schema");
    bert_json *j = NULL;
    if (bert_json_parse(&j, text, len)) run_die("%s: %s", po.schema_dir, bert_last_error());
    free(text);
    const bert_json *rows = bert_json_get(j, "numRows");
    if (j->type != BERT_JSON_OBJECT || (rows && (rows->type != BERT_JSON_NUMBER || rows->number != floor(rows->number) || rows->number < 0)))
        run_die("%s: not a dataset schema (a JSON object whose numRows is a whole number >= 0)", po.schema_dir);
    if (rows && rows->number > 0 && rows->number < (double)d->n) {
        printf("pretrain: %s: numRows %.0f of the %zu input records\n", po.schema_dir, rows->number, d->n);
        d->n = (size_t)rows->number;
    } else if (rows && rows->number > (double)d->n) {
        run_warn("%s: numRows %.0f, but the input holds %zu records: all are used", po.schema_dir, rows->number, d->n);
    }
    bert_json_free(j);
}

static void dataset_free(dataset *d) {
    for (int f = 0; f < d->nfiles; f++) { bert_tfrecord_close(&d->files[f]); free(d->paths[f]); }
    free(d->files); free(d->paths); free(d->first_of); free(d->file_of); free(d->offset_of);
    memset(d, 0, sizeof *d);
}

static void dataset_read(dataset *d, size_t i, bert_pretrain_example *ex, int vocab_size) {
    bert_tfrecord *r = &d->files[d->file_of[i]];
    if (!r->file && bert_tfrecord_open(r, d->paths[d->file_of[i]])) run_die("%s", bert_last_error());
    // the record number in messages counts from the file's start
    if (bert_tfrecord_seek(r, d->offset_of[i], (uint64_t)(i - d->first_of[d->file_of[i]])) || bert_tfrecord_next_example(r, ex, vocab_size))
        run_die("%s", bert_last_error());
}

// --text: run the create_pretraining_data procedure into OUT/text_data.tfrecord (deterministic for a
// seed, so a resumed run makes the same file) and train on that
static void text_to_tfrecord(const char *path) {
    static const char *paths[4096];
    int n = 0;
    for (int p = 0; p < po.text.count; p++) {
        glob_t g;
        if (glob(po.text.items[p], 0, NULL, &g) != 0) run_die("%s: no such file (or the pattern matches nothing)", po.text.items[p]);
        if (g.gl_pathc > (size_t)(4096 - n)) run_die("--text: over 4096 files (%s matches %zu); concatenate some", po.text.items[p], g.gl_pathc);
        for (size_t i = 0; i < g.gl_pathc; i++) paths[n++] = run_strdup(g.gl_pathv[i]);
        globfree(&g);
    }
    bert_vocab *v = bert_vocab_load(po.vocab);
    if (v) run_vocab_mode(v, &ro, 0);
    if (!v) run_die("%s", bert_last_error());
    bert_corpus corpus;
    if (bert_corpus_from_files(&corpus, v, po.do_lower_case, paths, n)) run_die("%s", bert_last_error());
    bert_pretrain_data_opts o = bert_pretrain_data_defaults();
    unsigned char *cont;
    if (bert_pretrain_data_vocab(&o, v, &cont)) run_die("%s: %s", po.vocab, bert_last_error());
    o.max_seq_length = po.max_seq_length; o.max_predictions_per_seq = po.max_predictions_per_seq;
    o.dupe_factor = po.dupe_factor; o.masked_lm_prob = po.masked_lm_prob; o.whole_word_mask = po.do_whole_word_mask;
    o.seed = (uint64_t)ro.seed;
    bert_pretrain_data_stats st;
    if (bert_pretrain_data_write(path, &corpus, &o, &st)) run_die("%s", bert_last_error());
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
    b->ids = (int32_t *)run_calloc(3 * bt + 2 * bp + (size_t)B, sizeof(int32_t));
    b->types = b->ids + bt; b->mask = b->types + bt; b->pos = b->mask + bt; b->labels = b->pos + bp; b->nsp = b->labels + bp;
}

// loads records idx[0..B) into the batch (B may be smaller than allocated: a last eval batch)
static void batch_load(batch *b, dataset *d, const size_t *idx, int B, int vocab_size) {
    float w[1024];
    if (b->MP > 1024) run_die("--max_predictions_per_seq over 1024");
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

// without --next_sentence the batch has no NSP labels: bert_pretrain_forward then leaves the NSP head out
static bert_batch batch_view(const batch *b) {
    bert_batch v = { b->B, b->T, b->MP, b->ids, b->types, b->mask, b->pos, b->labels, po.next_sentence ? b->nsp : NULL };
    return v;
}

// argmax hits of logits (N,V) against labels (N), ignoring -100
static int count_correct(bert_ctx *ctx, const bert_tensor *logits, const int32_t *labels) {
    static int32_t *pred;
    static size_t cap;
    size_t N = (size_t)logits->shape[0];
    if (N > cap) pred = (int32_t *)run_realloc(pred, (cap = N) * sizeof(int32_t));
    bert_tensor_argmax(ctx, logits, pred);
    int hits = 0;
    for (size_t i = 0; i < N; i++) hits += labels[i] >= 0 && pred[i] == labels[i];
    return hits;
}

// the NSP loss of an output (0 without --next_sentence) and its hits
static double nsp_loss_of(bert_ctx *ctx, const bert_pretrain_out *o) { return o->nsp_loss ? (double)bert_tensor_item(ctx, o->nsp_loss) : 0.0; }
static int nsp_hits_of(bert_ctx *ctx, const bert_pretrain_out *o, const int32_t *labels) { return o->nsp_logits ? count_correct(ctx, o->nsp_logits, labels) : 0; }

// ----------------------------------------------------------------------------
// the data of a run: training records (the run's cursor indexes them) and the held-out ones

typedef struct {
    dataset train, held;
    dataset *eval_set;        // held, or train's tail
    size_t n_train, n_eval;
    size_t *eval_idx;         // (n_eval) records of eval_set
} corpus_split;

static void split_data(corpus_split *s, char *text_path, size_t cap) {
    if (po.text.count) {
        snprintf(text_path, cap, "%s/text_data.tfrecord", ro.out);
        run_claim(&ro);   // the output directory is this run's before anything is written there
        if (!run_rank()) text_to_tfrecord(text_path);
        run_barrier();    // data parallel: the other ranks read rank 0's file (a shared --out)
        if (po.input.count == 64) run_die("--input: given over 63 times with --text");
        po.input.items[po.input.count++] = text_path;
    }
    dataset_add(&s->train, &po.input);
    if (po.schema_dir) apply_schema(&s->train);
    if (po.eval_input.count) {
        dataset_add(&s->held, &po.eval_input);
        s->n_eval = s->held.n;
        if (!s->n_eval) run_die("--eval_input %s%s: no records to evaluate on", po.eval_input.items[0], po.eval_input.count > 1 ? " ..." : "");
    } else {
        s->n_eval = po.eval_records >= 0 ? (size_t)po.eval_records : (size_t)(po.eval_fraction * (double)s->train.n);
        if (s->n_eval >= s->train.n) run_die("--eval_records %zu leaves no training records (of %zu)", s->n_eval, s->train.n);
    }
    s->eval_set = po.eval_input.count ? &s->held : &s->train;
    s->n_train = s->train.n - (po.eval_input.count ? 0 : s->n_eval);
    s->eval_idx = (size_t *)run_calloc(s->n_eval + 1, sizeof(size_t));
    for (size_t i = 0; i < s->n_eval; i++) s->eval_idx[i] = po.eval_input.count ? i : s->n_train + i;
    if (s->n_train < (size_t)ro.batch_size) run_die("%zu training records, fewer than one batch of %d", s->n_train, ro.batch_size);
}

// ----------------------------------------------------------------------------
// evaluation on the held-out records, in order, dropout off

typedef struct { double mlm_loss, nsp_loss, mlm_acc, nsp_acc; } eval_result;

static eval_result evaluate(run *r, corpus_split *s, batch *b) {
    eval_result e = {0, 0, 0, 0};
    double mlm_sum = 0, nsp_sum = 0;
    long predictions = 0, mlm_hits = 0, nsp_hits = 0;
    bert_ctx *ctx = r->ctx;
    int saved_training = ctx->training, saved_grad = ctx->grad_enabled;
    ctx->training = 0; ctx->grad_enabled = 0;
    for (size_t i = 0; i < s->n_eval; i += (size_t)ro.batch_size) {
        int B = (int)(s->n_eval - i < (size_t)ro.batch_size ? s->n_eval - i : (size_t)ro.batch_size);
        batch_load(b, s->eval_set, s->eval_idx + i, B, r->m->config.vocab_size);
        bert_ctx_reset(ctx, 0);
        bert_batch v = batch_view(b);
        bert_pretrain_out o = bert_pretrain_forward(ctx, r->m, &v);
        mlm_sum += (double)bert_tensor_item(ctx, o.mlm_loss) * b->predictions;
        nsp_sum += nsp_loss_of(ctx, &o) * B;
        predictions += b->predictions;
        mlm_hits += count_correct(ctx, o.mlm_logits, b->labels);
        nsp_hits += nsp_hits_of(ctx, &o, b->nsp);
    }
    ctx->training = saved_training; ctx->grad_enabled = saved_grad;
    if (s->n_eval) {
        e.mlm_loss = predictions ? mlm_sum / (double)predictions : 0.0;
        e.nsp_loss = nsp_sum / (double)s->n_eval;
        e.mlm_acc = predictions ? (double)mlm_hits / (double)predictions : 0.0;
        e.nsp_acc = (double)nsp_hits / (double)s->n_eval;
    }
    return e;
}

static void run_evaluation(run *r, corpus_split *s, batch *b) {
    run_eval_begin(r);
    eval_result e = evaluate(r, s, b);
    char what[64];
    snprintf(what, sizeof what, "%zu records", s->n_eval);
    run_metric mt[] = { { "mlm_acc", e.mlm_acc }, { "mlm_loss", e.mlm_loss }, { "nsp_acc", e.nsp_acc }, { "nsp_loss", e.nsp_loss } };
    run_eval_end(r, what, mt, po.next_sentence ? 4 : 2);
    if (po.stop_at_mlm_acc > 0 && e.mlm_acc >= po.stop_at_mlm_acc && r->stop_reason[0] == 'd') {   // time to target, as MLPerf
        double s_run = bert_time_s() - r->t_start;
        printf("target: held-out MLM accuracy %.4f >= %.4f at step %llu, %.1f s (%.2f h) after this process started\n", e.mlm_acc,
               (double)po.stop_at_mlm_acc, (unsigned long long)r->opt.step, s_run, s_run / 3600.0);
        fprintf(r->log, "{\"target_reached\": \"mlm_acc\", \"target\": %g, \"mlm_acc\": %.6f, \"step\": %llu, \"seconds\": %.3f}\n",
                (double)po.stop_at_mlm_acc, e.mlm_acc, (unsigned long long)r->opt.step, s_run);
        r->stop_reason = "target reached";
    }
}

// ----------------------------------------------------------------------------
// the model: --init weights or a random init from --config, checked against the task

static void check_vocab_file(int vocab_size) {
    FILE *f = (FILE *)bert_open_input(po.vocab);
    if (!f) run_die("%s", bert_last_error());
    long long lines = 0;   // (a huge file must not wrap an int into a false match)
    int c, last = '\n';
    while ((c = getc(f)) != EOF) { if (c == '\n') lines++; last = c; }
    fclose(f);
    lines += last != '\n';
    if (lines != vocab_size) run_die("%s: %lld tokens, but the model's vocab_size is %d", po.vocab, lines, vocab_size);
}

static bert_model *make_model(void) {
    bert_model *m = run_load_model(po.init, po.config, (uint64_t)ro.seed);   // --init without heads: they start random
    if (m->config.max_position_embeddings < po.max_seq_length)
        run_die("--max_seq_length %d exceeds the model's max_position_embeddings %d", po.max_seq_length, m->config.max_position_embeddings);
    if (m->config.type_vocab_size < 2)   // every pretraining example is a pair: segment ids 0 and 1 (NSP or not)
        run_die("%s: type_vocab_size %d: next-sentence pairs need token types 0 and 1", po.init ? po.init : po.config, m->config.type_vocab_size);
    if (po.vocab) check_vocab_file(m->config.vocab_size);
    return m;
}

// ----------------------------------------------------------------------------
// one optimizer step: the data of all its micro-batches first (the masked-LM loss is the mean over
// all the step's predictions, so each micro-batch's weight is its share of them), then forward and
// backward per micro-batch with the accumulation weights of bert_backward_scaled's rule

static void train_step(run *r, corpus_split *s, batch *mb) {
    int A = ro.accumulation_steps, predictions = 0, nsp_hits = 0, mlm_hits = 0, B = 0;
    double t0 = bert_time_s(), mlm = 0, nsp = 0;
    for (int k = 0; k < A; k++) {
        const size_t *idx = run_batch(r, &B);
        batch_load(&mb[k], &s->train, idx, B, r->m->config.vocab_size);
        predictions += mb[k].predictions;
    }
    double data_s = bert_time_s() - t0;
    // the masked-LM loss is the mean over the predictions of every rank: this rank's micro-batch k
    // weighs its share of them, divided by the rank's share of the batch (run_backward multiplies by it)
    double global = run_sum(predictions);
    for (int k = 0; k < A && r->step_finite; k++) {
        bert_ctx *ctx = run_micro(r);
        bert_batch v = batch_view(&mb[k]);
        bert_pretrain_out out = bert_pretrain_forward(ctx, r->m, &v);
        float wm = global > 0 ? (float)mb[k].predictions / (float)global : 0.0f;
        if (run_world() > 1) wm = (float)((double)wm / run_share(r));
        bert_tensor *loss = bert_scale(ctx, out.mlm_loss, wm);
        if (out.nsp_loss) loss = bert_add(ctx, loss, bert_scale(ctx, out.nsp_loss, 1.0f / (float)A));
        run_backward(r, loss, 1.0f);
        mlm += (double)bert_tensor_item(ctx, out.mlm_loss) * wm;
        nsp += nsp_loss_of(ctx, &out) / A;
        mlm_hits += count_correct(ctx, out.mlm_logits, mb[k].labels);
        nsp_hits += nsp_hits_of(ctx, &out, mb[k].nsp);
    }
    run_metric mt[] = { { "mlm_loss", mlm }, { "nsp_loss", nsp }, { "mlm_acc", global > 0 ? (double)mlm_hits * run_world() / global : 0.0 },
                        { "nsp_acc", (double)nsp_hits / (A * B) } };
    if (!po.next_sentence) mt[1] = mt[2];   // the masked LM's two
    run_end_step(r, mt, po.next_sentence ? 4 : 2, data_s);
}

// the step's loss on a zero batch, for run_begin's --max_memory_mb check
static bert_tensor *measure_loss(bert_ctx *ctx, bert_model *m, int B, void *arg) {
    (void)arg;
    batch b;
    batch_alloc(&b, B, po.max_seq_length, po.max_predictions_per_seq);
    bert_batch v = batch_view(&b);
    bert_pretrain_out out = bert_pretrain_forward(ctx, m, &v);
    free(b.ids);
    return out.nsp_loss ? bert_add(ctx, out.mlm_loss, out.nsp_loss) : out.mlm_loss;
}

int main(int argc, char **argv) {
    parse_options(argc, argv);
    run_resolve_weights(&po.init);   // --init DIR: DIR/model.safetensors
    corpus_split s;
    memset(&s, 0, sizeof s);
    char text_path[4200];
    split_data(&s, text_path, sizeof text_path);
    int A = ro.accumulation_steps, total = run_total_steps(&ro, s.n_train);
    if (total < 1) run_die("%zu training records make no full step of %d x %d; lower --batch_size or give --steps", s.n_train, ro.batch_size, A);
    char fingerprint[160];
    snprintf(fingerprint, sizeof fingerprint, "%zu records in %d files, %zu held out, T %d, P %d, batch %d x %d, seed %d",
             s.train.n, s.train.nfiles, s.n_eval, po.max_seq_length, po.max_predictions_per_seq, ro.batch_size, A, ro.seed);
    bert_model *m = make_model();
    ro.measure = measure_loss;
    run r;
    run_begin(&r, &ro, m, s.n_train, total, fingerprint);
    r.tokens_per_example = po.max_seq_length;
    char what[4300];
    snprintf(what, sizeof what, "pretrain: %s | %zu train + %zu held-out records", po.input.items[0], s.n_train, s.n_eval);
    run_print_setup(&r, what);
    batch *mb = (batch *)run_calloc((size_t)A, sizeof(batch)), eb;
    for (int k = 0; k < A; k++) batch_alloc(&mb[k], ro.batch_size, po.max_seq_length, po.max_predictions_per_seq);
    batch_alloc(&eb, ro.batch_size, po.max_seq_length, po.max_predictions_per_seq);
    while (run_next_step(&r)) {
        train_step(&r, &s, mb);
        if (s.n_eval && run_eval_due(&r, 0)) run_evaluation(&r, &s, &eb);
    }
    if (s.n_eval && run_completed(&r)) run_evaluation(&r, &s, &eb);
    int rc = run_finish(&r);
    for (int k = 0; k < A; k++) free(mb[k].ids);
    free(mb); free(eb.ids); free(s.eval_idx);
    bert_model_free(m);
    dataset_free(&s.train);
    dataset_free(&s.held);
    return rc;
}
