// ner.c - Chinese named-entity recognition on CLUENER2020 (10 fine-grained types) with bert.h's
// token classification head (HF BertForTokenClassification: dropout + dense over every token), softmax
// cross-entropy or a linear-chain CRF (--use_crf). Trains on train.json, reports entity-level P/R/F1
// on dev.json per type, micro (overall) and macro, and writes CLUE's submission file for test.json.
// The training run (optimizer, schedule, data order, checkpoints, --resume, log, Ctrl-C) is run.h's;
// its batches are the training windows, the last one of an epoch short, each padded to its longest.
//
//   cc -O2 -march=native -fopenmp -std=c11 examples/ner.c -o build/ner -lm
//   ./build/ner --do_train --do_eval --do_predict --config bert_config.json --use_crf --out ner_crf
//       (random init; --init converted.safetensors fine-tunes a pretrained encoder instead)
//   ./build/ner --do_eval --model ner_crf/model.safetensors        (evaluate a fine-tuned model)
//
// Data: CLUENER's JSON lines, {"text": T, "label": {type: {entity: [[start, end]]}}}, offsets in
// code points, end inclusive; test.json has "id" and no "label". A record with a span out of range,
// a span whose text is not its entity, a type not in --types, or over 10000 spans stops the program
// with FILE:LINE (--skip_bad_records drops and counts them). A data file may have up to 1 GB.
// Characters: one token per character, so offsets stay exact: what bert_tokenize makes of the
// character alone (its first piece; [unused1], else [UNK], for one the tokenizer drops).
// Tags: BIO or BIOES, id 0 = O, then per type of --types B, I (, E, S). Of overlapping mentions the
// one starting first (the longer on a tie, then the earlier in the file) is tagged for training, the
// others counted; scoring uses every gold mention. Tags to spans, the same for gold and predicted
// tags: B opens, I continues one of its type (else opens), E closes one of its type (else stands
// alone), S stands alone, O closes. With the CRF the tags are Viterbi's path per window.
// Windows: a text over --max_seq_length - 2 characters becomes windows of that many, --doc_stride
// apart, the last one ending at the text's end; a prediction takes each character's tag from the
// window where it is most central (the earlier on a tie).
// Scores: exact (type, start, end) matches; micro P/R/F1 over all mentions, macro the mean of the
// per-type F1s (CLUE reports both).
// Output in --out: model.safetensors (HF names: bert.*, classifier.*, crf.transitions), config.json
// (HF fields, id2label), dev_results.json, cluener_predict.json, run.h's log.jsonl, curve.svg and
// ckpt-N/. Results: README "Fine-tuning: NER (CLUENER2020)". Tests: tests/test_ner.c, tests/ref/ner_ref.py.
// The tag scheme and scoring are ner_entities.h, the records, windows and the submission's label
// object ner_data.h; this file is the program: flags, batches, prediction, model, training.
#define _DEFAULT_SOURCE   // mkdir
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "run.h"

#define CLUENER_TYPES "address,book,company,game,government,movie,name,organization,position,scene"

// ----------------------------------------------------------------------------
// options: the task's own; the optimizer, schedule, steps, checkpoints and output are run.h's

static struct {
    const char *data_dir, *train_file, *dev_file, *test_file, *predict_file, *vocab, *config, *init, *model;
    const char *tagging, *types, *debug_dump_grads;
    int do_train, do_eval, do_predict, use_crf, do_lower_case, max_seq_length, doc_stride, eval_batch_size;
    int skip_bad_records, oracle, debug_stop_at_step;
    float classifier_dropout;
} opt = {
    .data_dir = "../shared/data/cluener2020", .vocab = "../shared/data/vocab/bert_chinese_vocab.txt",
    .tagging = "bio", .types = CLUENER_TYPES, .do_lower_case = 1, .max_seq_length = 128, .doc_stride = -1,
    .eval_batch_size = 64, .classifier_dropout = -1.0f,
};
static run_opts ro;

static const bert_flag flags[] = {
    { "do_train", BERT_FLAG_BOOL, &opt.do_train, "fine-tune on the training file" },
    { "do_eval", BERT_FLAG_BOOL, &opt.do_eval, "score the dev file (entity P/R/F1 per type, micro, macro)" },
    { "do_predict", BERT_FLAG_BOOL, &opt.do_predict, "write CLUE's submission file for the test file" },
    { "data_dir", BERT_FLAG_STR, &opt.data_dir, "directory with train.json, dev.json, test.json" },
    { "train_file", BERT_FLAG_STR, &opt.train_file, "training JSON lines (default DATA_DIR/train.json)" },
    { "dev_file", BERT_FLAG_STR, &opt.dev_file, "dev JSON lines (default DATA_DIR/dev.json)" },
    { "test_file", BERT_FLAG_STR, &opt.test_file, "test JSON lines (default DATA_DIR/test.json)" },
    { "predict_file", BERT_FLAG_STR, &opt.predict_file, "submission output (default OUT/cluener_predict.json)" },
    { "vocab", BERT_FLAG_STR, &opt.vocab, "vocab.txt of the model" },
    { "do_lower_case", BERT_FLAG_BOOL, &opt.do_lower_case, "lower-case and strip accents (Google's Chinese model: 1)" },
    { "config", BERT_FLAG_STR, &opt.config, "bert_config.json for a random init (or for a --init/--model without one)" },
    { "init", BERT_FLAG_STR, &opt.init, "pretrained weights to fine-tune (safetensors; absent heads keep their init)" },
    { "model", BERT_FLAG_STR, &opt.model, "fine-tuned model for --do_eval/--do_predict without --do_train (default OUT/model.safetensors)" },
    { "types", BERT_FLAG_STR, &opt.types, "entity types, comma-separated (their order fixes the tag ids)" },
    { "tagging", BERT_FLAG_STR, &opt.tagging, "bio | bioes" },
    { "use_crf", BERT_FLAG_BOOL, &opt.use_crf, "linear-chain CRF loss and Viterbi decoding instead of softmax" },
    { "max_seq_length", BERT_FLAG_INT, &opt.max_seq_length, "tokens per window, [CLS] and [SEP] included" },
    { "doc_stride", BERT_FLAG_INT, &opt.doc_stride, "characters between window starts (-1: half a window)" },
    { "classifier_dropout", BERT_FLAG_FLOAT, &opt.classifier_dropout, "dropout before the classifier (-1: hidden_dropout_prob)" },
    { "eval_batch_size", BERT_FLAG_INT, &opt.eval_batch_size, "windows per forward pass in eval/predict" },
    { "skip_bad_records", BERT_FLAG_BOOL, &opt.skip_bad_records, "drop malformed records (counted) instead of stopping" },
    { "oracle", BERT_FLAG_BOOL, &opt.oracle, "testing: predict the gold tags (scores alignment, windows, tagging, decoding)" },
    { "debug_dump_grads", BERT_FLAG_STR, &opt.debug_dump_grads, "testing: write the first step's loss and grads here and exit" },
    { "debug_stop_at_step", BERT_FLAG_INT, &opt.debug_stop_at_step, "testing: stop after this step as Ctrl-C does (checkpoint, exit 130)" },
};

static const char usage_text[] =
    "usage: ner [--do_train] [--do_eval] [--do_predict] [flags]\n"
    "Named-entity recognition on CLUENER2020 (JSON lines) with a BERT token classifier, softmax or CRF.\n"
    "  ner --do_train --do_eval --config bert_config.json --use_crf --lr 5e-4 --epochs 3 --out run1\n"
    "  ner --do_eval --do_predict --model run1/model.safetensors --out run1\n"
    "Ctrl-C during training saves a checkpoint and exits with status 130; --resume continues it.\n";

static void parse_types(void);

static void parse_options(int argc, char **argv) {
    ro = run_defaults();
    ro.out = "ner_out"; ro.optimizer = "adamw"; ro.lr = 3e-5f; ro.eps = 1e-8f; ro.seed = 42; ro.keep = 2; ro.print_every = 50;
    run_parse("ner", usage_text, flags, (int)(sizeof flags / sizeof *flags), &ro, RUN_FLAGS_INFER | RUN_FLAGS_TRAIN | RUN_FLAGS_COMMON | RUN_FLAGS_TOKENIZER, argc, argv);
    if (!opt.do_train && !opt.do_eval && !opt.do_predict)
        run_die("nothing to do: give --do_train, --do_eval and/or --do_predict (--help lists the flags)");
    if (opt.max_seq_length < 3) run_die("--max_seq_length must be >= 3 (one character between [CLS] and [SEP])");
    if (opt.eval_batch_size < 1) run_die("--eval_batch_size must be >= 1");
    if (opt.classifier_dropout >= 1) run_die("--classifier_dropout must be < 1");
    if (opt.oracle && opt.do_train) run_die("--oracle scores the gold tags: it does not go with --do_train");
    parse_types();
    int W = opt.max_seq_length - 2;
    opt.doc_stride = opt.doc_stride > 0 ? (opt.doc_stride < W ? opt.doc_stride : W) : (W / 2 > 0 ? W / 2 : 1);
}

#include "ner_entities.h"
#include "ner_data.h"

// ----------------------------------------------------------------------------
// batches: [CLS] characters [SEP] padded to the batch's longest window

typedef struct {
    int B, T;                         // windows, padded length (the longest window + 2)
    int32_t *ids, *mask, *labels;     // (B,T); labels: the tag, -100 off the characters
    int32_t *lengths;                 // (B) characters per window: the CRF's chains are tokens 1..length
} batch;

static void batch_alloc(batch *b, int B, int T) {
    size_t bt = (size_t)B * T;
    b->ids = (int32_t *)run_calloc(3 * bt + (size_t)B, sizeof(int32_t));
    b->mask = b->ids + bt; b->labels = b->mask + bt; b->lengths = b->labels + bt;
}

static void batch_fill(batch *b, const dataset *d, const windows *ws, const size_t *idx, int B) {
    int Tc = 1;
    for (int e = 0; e < B; e++) if (ws->w[idx[e]].len > Tc) Tc = ws->w[idx[e]].len;
    b->B = B; b->T = Tc + 2;
    for (int e = 0; e < B; e++) {
        const window *w = &ws->w[idx[e]];
        const record *r = &d->r[w->rec];
        int32_t *ids = b->ids + (size_t)e * b->T, *mask = b->mask + (size_t)e * b->T, *lab = b->labels + (size_t)e * b->T;
        for (int t = 0; t < b->T; t++) { ids[t] = vocab->pad_id; mask[t] = 0; lab[t] = -100; }
        ids[0] = vocab->cls_id; mask[0] = 1;
        for (int c = 0; c < w->len; c++) {
            ids[1 + c] = r->ids[w->start + c]; mask[1 + c] = 1; lab[1 + c] = r->tags[w->start + c];
        }
        ids[1 + w->len] = vocab->sep_id; mask[1 + w->len] = 1;
        b->lengths[e] = w->len;
    }
}

static bert_token_classify_out forward(bert_ctx *ctx, bert_model *m, const batch *b, int with_loss) {
    return bert_token_classify_forward(ctx, m, b->ids, NULL, b->mask, b->B, b->T, opt.classifier_dropout,
                                       with_loss ? b->labels : NULL, b->lengths);
}

// the predicted tags of every window, flat as ws->tag_at
static void predict_windows(bert_ctx *ctx, bert_model *m, const dataset *d, const windows *ws, int32_t *wtags) {
    run_precision(m, ro.precision);
    int EB = opt.eval_batch_size, saved_training = ctx->training, saved_grad = ctx->grad_enabled;
    batch b;
    batch_alloc(&b, EB, opt.max_seq_length);
    size_t *idx = (size_t *)run_calloc((size_t)EB, sizeof(size_t));
    int32_t *tags = (int32_t *)run_calloc((size_t)EB * opt.max_seq_length, sizeof(int32_t));
    ctx->training = 0; ctx->grad_enabled = 0;
    ctx->remove_padding = ro.remove_padding;   // acts on inference only
    double t0 = bert_time_s();
    for (int i = 0; i < ws->n; i += EB) {
        int B = ws->n - i < EB ? ws->n - i : EB;
        for (int e = 0; e < B; e++) idx[e] = (size_t)(i + e);
        batch_fill(&b, d, ws, idx, B);
        bert_ctx_reset(ctx, 0);
        bert_token_classify_out o = forward(ctx, m, &b, 0);
        run_read_finite(ctx, o.logits, NULL, d->path);
        if (bert_token_classify_decode(ctx, m, &o, b.lengths, tags)) run_die("%s", bert_last_error());
        for (int e = 0; e < B; e++)
            memcpy(wtags + ws->tag_at[idx[e]], tags + (size_t)e * b.T + 1, (size_t)b.lengths[e] * sizeof(int32_t));
    }
    ctx->training = saved_training; ctx->grad_enabled = saved_grad;
    double s = bert_time_s() - t0;
    printf("%s: %d windows in %.2f s (%.2f windows/s)\n", d->path, ws->n, s, s > 0 ? ws->n / s : 0.0);
    free(b.ids); free(idx); free(tags);
}

// predicted (or, with --oracle, gold) tags of every character of d
static void predict_tags(bert_ctx *ctx, bert_model *m, const dataset *d, const windows *ws, int32_t *rtags) {
    int32_t *wtags = (int32_t *)run_calloc((size_t)ws->tag_at[ws->n] + 1, sizeof(int32_t));
    if (opt.oracle) {
        for (int i = 0; i < ws->n; i++)
            memcpy(wtags + ws->tag_at[i], d->r[ws->w[i].rec].tags + ws->w[i].start, (size_t)ws->w[i].len * sizeof(int32_t));
    } else {
        predict_windows(ctx, m, d, ws, wtags);
    }
    windows_merge(ws, wtags, rtags, ws->char_at[d->n]);
    free(wtags);
}

static summary evaluate(bert_ctx *ctx, bert_model *m, const dataset *d, const windows *ws, FILE *table) {
    int32_t *rtags = (int32_t *)run_calloc((size_t)ws->char_at[d->n] + 1, sizeof(int32_t));
    predict_tags(ctx, m, d, ws, rtags);
    counts c;
    memset(&c, 0, sizeof c);
    int pcap = 64, gmax = 1;
    for (int r = 0; r < d->n; r++) if (d->r[r].nspans > gmax) gmax = d->r[r].nspans;
    span *pred = (span *)run_calloc((size_t)pcap, sizeof(span)), *scratch = (span *)run_calloc((size_t)gmax, sizeof(span));
    for (int r = 0; r < d->n; r++) {
        if (d->r[r].n > pcap) { pcap = d->r[r].n; free(pred); pred = (span *)run_calloc((size_t)pcap, sizeof(span)); }
        int np = tags_to_spans(rtags + ws->char_at[r], d->r[r].n, pred);
        score_record(&c, d->r[r].spans, d->r[r].nspans, pred, np, scratch);
    }
    free(pred); free(scratch); free(rtags);
    return summarize(&c, table);
}

// ----------------------------------------------------------------------------
// CLUE's submission file: {"id": ..., "label": {...}} per line (ner_data.h's write_record_labels)

static void write_predictions(const char *path, bert_ctx *ctx, bert_model *m, const dataset *d, const windows *ws) {
    int32_t *rtags = (int32_t *)run_calloc((size_t)ws->char_at[d->n] + 1, sizeof(int32_t));
    predict_tags(ctx, m, d, ws, rtags);
    bert_atomic_file out;
    FILE *f = run_create(&out, path);
    long mentions = 0;
    for (int r = 0; r < d->n; r++) {
        span *sp = (span *)run_calloc((size_t)d->r[r].n + 1, sizeof(span));
        int np = tags_to_spans(rtags + ws->char_at[r], d->r[r].n, sp);
        mentions += np;
        fprintf(f, "{\"id\": %s, ", d->r[r].id);
        write_record_labels(f, &d->r[r], sp, np);
        fprintf(f, "}\n");
        free(sp);
    }
    run_commit(&out, path);
    printf("predict: %d records, %ld mentions -> %s\n", d->n, mentions, path);
    free(rtags);
}

// ----------------------------------------------------------------------------
// model setup

// whether a safetensors file has crf.transitions (a model fine-tuned with the CRF)
static int has_crf(const char *path) {
    bert_st st;
    if (bert_st_open(&st, path)) run_die("%s", bert_last_error());
    int crf = bert_st_find(&st, "crf.transitions") != NULL;
    bert_st_close(&st);
    return crf;
}

static bert_model *make_model(const char *model_path) {
    bert_config cfg;
    const char *from = opt.do_train ? opt.init : model_path;
    run_model_config(&cfg, from, opt.config);
    int crf = from ? has_crf(from) : opt.use_crf;
    if (!opt.do_train && crf != opt.use_crf) {
        opt.use_crf = crf;   // a fine-tuned model says whether it was trained with the CRF
        printf("note: %s %s crf.transitions: decoding with %s\n", from, crf ? "has" : "has no", crf ? "the CRF" : "softmax");
    }
    bert_model *m = bert_model_create(&cfg, (uint64_t)ro.seed);
    if (!m) run_die("%s", bert_last_error());
    if (bert_token_classifier_add(m, ntags, opt.use_crf, (uint64_t)ro.seed)) run_die("%s", bert_last_error());
    int missing = 0;
    if (from && opt.do_train && bert_model_load_encoder(m, from, &missing)) run_die("%s", bert_last_error());
    if (from && !opt.do_train && bert_model_load_weights(m, from)) run_die("%s", bert_last_error());
    if (from && opt.do_train) printf("init: %s (%d head tensors not in it keep their init)\n", from, missing);
    if (m->config.vocab_size != vocab->size)
        run_die("%s has %d tokens, but the model's vocab_size is %d", opt.vocab, vocab->size, m->config.vocab_size);
    if (m->config.max_position_embeddings < opt.max_seq_length)
        run_die("--max_seq_length %d exceeds the model's max_position_embeddings %d", opt.max_seq_length, m->config.max_position_embeddings);
    if (bert_classifier_num_labels(m) != ntags) run_die("the classifier has %d labels, --tagging %s over %d types needs %d",
                                                    bert_classifier_num_labels(m), opt.tagging, ntypes, ntags);
    return m;
}

// config.json's head keys for HF's BertForTokenClassification (OUT and every checkpoint): id2label, label2id
static void hf_tag_keys(FILE *f, const bert_model *m) {
    (void)m;
    fprintf(f, ", \"num_labels\": %d, \"ner_tagging\": \"%s\", \"ner_crf\": %s, \"id2label\": {", ntags, opt.tagging,
            opt.use_crf ? "true" : "false");
    char name[96];
    for (int k = 0; k < ntags; k++) { tag_name(k, name, sizeof name); fprintf(f, k ? ", \"%d\": \"%s\"" : "\"%d\": \"%s\"", k, name); }
    fprintf(f, "}, \"label2id\": {");
    for (int k = 0; k < ntags; k++) { tag_name(k, name, sizeof name); fprintf(f, k ? ", \"%s\": %d" : "\"%s\": %d", name, k); }
    fprintf(f, "}");
}

// ----------------------------------------------------------------------------
// the data, the evaluation, the outputs

static dataset tr, dev, test;   // what --do_train, --do_eval and --do_predict read
static windows tw, dw, sw;

static const char *data_path(char *buf, size_t n, const char *given, const char *name) {
    if (given) return given;
    snprintf(buf, n, "%s/%s", opt.data_dir, name);
    return buf;
}

static bert_vocab *load_vocab(void) {
    bert_vocab *v = bert_vocab_load(opt.vocab);
    if (v) run_vocab_mode(v, &ro, 0);
    if (!v) run_die("%s", bert_last_error());
    if (v->cls_id < 0 || v->sep_id < 0 || v->pad_id < 0 || v->unk_id < 0) run_die("%s: needs [CLS], [SEP], [PAD] and [UNK]", opt.vocab);
    vocab = v;
    dropped_id = bert_vocab_id(v, "[unused1]", 9);
    if (dropped_id < 0) dropped_id = v->unk_id;
    char_cache = (int32_t *)run_calloc(0x110000, sizeof(int32_t));
    return v;
}

static void load_data(void) {
    static char paths[3][4200];   // the datasets keep pointing at them
    int W = opt.max_seq_length - 2, S = opt.doc_stride;
    if (opt.do_train) { dataset_load(&tr, data_path(paths[0], sizeof paths[0], opt.train_file, "train.json"), 1); windows_make(&tw, &tr, W, S); }
    if (opt.do_eval) { dataset_load(&dev, data_path(paths[1], sizeof paths[1], opt.dev_file, "dev.json"), 1); windows_make(&dw, &dev, W, S); }
    if (opt.do_predict) { dataset_load(&test, data_path(paths[2], sizeof paths[2], opt.test_file, "test.json"), 0); windows_make(&sw, &test, W, S); }
    if (opt.do_train && tw.n == 0) run_die("%s: no training windows (no records with text)", tr.path);
}

// scores dev (the per-type table on `table` when given) and reports them as run.h's eval line
static summary report_eval(run *r, bert_ctx *ctx, bert_model *m, FILE *table) {
    run_eval_begin(r);
    summary s = evaluate(ctx, m, &dev, &dw, table);
    char what[160];
    snprintf(what, sizeof what, "%s: %ld gold, %ld predicted, %ld correct", opt.oracle ? "oracle" : "dev", s.gold, s.pred, s.correct);
    run_metric mt[] = { { "f1", s.f1 }, { "precision", s.p }, { "recall", s.r }, { "macro_f1", s.macro_f1 } };
    run_eval_end(r, what, mt, 4);
    return s;
}

// after training or alone: the dev scores (table, eval line, dev_results.json), the submission file
static void final_tasks(run *r, bert_ctx *ctx, bert_model *m) {
    if (opt.do_eval) {
        printf("dev: %s | %d records, %d windows, %ld mentions%s\n", dev.path, dev.n, dw.n, dev.mentions, opt.oracle ? " | oracle: gold tags" : "");
        summary s = report_eval(r, ctx, m, stdout);
        if (!opt.oracle) write_dev_results(&s);
    }
    if (opt.do_predict) {
        char path[4200];
        if (opt.predict_file) snprintf(path, sizeof path, "%s", opt.predict_file);
        else snprintf(path, sizeof path, "%s/cluener_predict.json", ro.out);
        write_predictions(path, ctx, m, &test, &sw);
    }
}

static void save_model(const bert_model *m) {
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", ro.out);
    run_model_save(m, path, ro.hf_architecture);
    snprintf(path, sizeof path, "%s/config.json", ro.out);
    run_hf_config(m, path, ro.hf_architecture, hf_tag_keys);
    printf("model: %s/model.safetensors, %s/config.json\n", ro.out, ro.out);
}

// ----------------------------------------------------------------------------
// training

// testing: the loss, the batch (CRF tags as (B, longest window)) and every parameter's grad after
// the first backward
static void dump_grads(const char *path, const bert_model *m, float loss, const batch *b) {
    int n = m->num_tensors + 5, k = 4, B = b->B, T = b->T, Tc = b->T - 2;
    int32_t *tags = (int32_t *)run_calloc((size_t)B * Tc, sizeof(int32_t));
    for (int e = 0; e < B; e++)
        for (int c = 0; c < b->lengths[e]; c++) tags[(size_t)e * Tc + c] = b->labels[(size_t)e * T + 1 + c];
    float *grads = (float *)run_calloc(m->num_params, sizeof(float));
    bert_copy_to_host(m->k, grads, m->grads, m->num_params * sizeof(float));
    bert_st_entry *e = (bert_st_entry *)run_calloc((size_t)n, sizeof *e);
    char **names = (char **)run_calloc((size_t)n, sizeof(char *));
    e[0] = (bert_st_entry){ "loss", BERT_DT_F32, 1, { 1 }, &loss };
    e[1] = (bert_st_entry){ "input_ids", BERT_DT_I32, 2, { B, T }, b->ids };
    e[2] = (bert_st_entry){ "labels", BERT_DT_I32, 2, { B, T }, b->labels };
    e[3] = (bert_st_entry){ "crf_tags", BERT_DT_I32, 2, { B, Tc }, tags };
    e[k++] = (bert_st_entry){ "lengths", BERT_DT_I32, 1, { B }, b->lengths };
    for (int i = 0; i < m->num_tensors; i++, k++) {
        const bert_tensor *t = &m->tensors[i];
        names[k] = (char *)run_calloc(strlen(m->names[i]) + 6, 1);
        sprintf(names[k], "grad.%s", m->names[i]);
        e[k] = (bert_st_entry){ names[k], BERT_DT_F32, t->ndim, { t->shape[0], t->shape[1], t->shape[2], t->shape[3] },
                                grads + (t->grad - m->grads) };
    }
    if (bert_st_save(path, e, k, NULL, 0)) run_die("%s", bert_last_error());
    for (int i = 0; i < n; i++) free(names[i]);
    free(names); free(e); free(grads); free(tags);
}

// the step's loss on a zero batch of full length, for run_begin's --max_memory_mb check
static bert_tensor *measure_loss(bert_ctx *ctx, bert_model *m, int B, void *arg) {
    (void)arg;
    batch b;
    batch_alloc(&b, B, opt.max_seq_length);
    b.B = B; b.T = opt.max_seq_length;
    for (int e = 0; e < B; e++) b.lengths[e] = opt.max_seq_length - 2;
    bert_tensor *loss = forward(ctx, m, &b, 1).loss;
    free(b.ids);
    return loss;
}

// one optimizer step of --accumulation_steps micro-batches, each weighted 1/A
static void train_step(run *r, batch *b) {
    int A = ro.accumulation_steps;
    double data_s = 0;
    for (int k = 0; k < A; k++) {
        double t0 = bert_time_s();
        int B;
        const size_t *idx = run_batch(r, &B);
        if (!B) continue;   // data parallel: a last batch smaller than the ranks
        batch_fill(b, &tr, &tw, idx, B);
        data_s += bert_time_s() - t0;
        bert_token_classify_out o = forward(run_micro(r), r->m, b, 1);
        double loss = run_backward(r, o.loss, 1.0f / (float)A);
        if (opt.debug_dump_grads) {   // testing: the first step's grads, then stop without saving anything
            dump_grads(opt.debug_dump_grads, r->m, (float)loss, b);
            printf("wrote %s (loss %.9g)\n", opt.debug_dump_grads, loss);
            exit(0);
        }
    }
    run_end_step(r, NULL, 0, data_s);
    if (opt.debug_stop_at_step && (int)r->opt.step == opt.debug_stop_at_step) raise(SIGINT);   // as Ctrl-C
}

static int train(bert_model *m) {
    char fingerprint[512], what[4400];
    snprintf(fingerprint, sizeof fingerprint, "%s: %d windows of %d records, T %d, stride %d, %s%s, batch %d x %d, seed %d",
             tr.path, tw.n, tr.n, opt.max_seq_length, opt.doc_stride, opt.tagging, opt.use_crf ? " crf" : "",
             ro.batch_size, ro.accumulation_steps, ro.seed);
    run r;
    ro.measure = measure_loss;
    ro.hf_architecture = "BertForTokenClassification";
    ro.hf_config_keys = hf_tag_keys;
    run_begin(&r, &ro, m, (size_t)tw.n, run_total_steps(&ro, (size_t)tw.n), fingerprint);
    r.tokens_per_example = (int)(tw.tag_at[tw.n] / tw.n) + 2;
    snprintf(what, sizeof what, "train: %s | %d records, %d windows, %ld mentions (%ld overlapping ones untagged) | %s%s, %d tags",
             tr.path, tr.n, tw.n, tr.mentions, tr.overlaps, opt.tagging, opt.use_crf ? " + CRF" : " + softmax", ntags);
    run_print_setup(&r, what);
    batch b;
    batch_alloc(&b, ro.batch_size, opt.max_seq_length);
    while (run_next_step(&r)) {
        train_step(&r, &b);
        if (opt.do_eval && run_eval_due(&r, 0)) report_eval(&r, r.ctx, m, NULL);
    }
    if (run_completed(&r)) {
        save_model(m);
        final_tasks(&r, r.ctx, m);
    }
    free(b.ids);
    return run_finish(&r);
}

int main(int argc, char **argv) {
    parse_options(argc, argv);
    run_resolve_weights(&opt.init);   // --init DIR: DIR/model.safetensors
    bert_vocab *v = load_vocab();
    load_data();
    if (!run_rank() && mkdir(ro.out, 0777) != 0 && errno != EEXIST) run_die("%s: %s", ro.out, strerror(errno));
    char model_path[4200];   // none for --oracle: the gold tags stand in for the predictions
    if (opt.model) snprintf(model_path, sizeof model_path, "%s", opt.model);
    else snprintf(model_path, sizeof model_path, "%s/model.safetensors", ro.out);
    bert_model *m = opt.oracle ? NULL : make_model(model_path);
    int rc = 0;
    if (opt.do_train) {
        rc = train(m);
    } else {
        bert_ctx *ctx = opt.oracle ? NULL : bert_ctx_create((size_t)64 << 20);
        if (!opt.oracle && !ctx) run_die("out of memory for the activation arena");
        run none;   // no training run: its eval line only
        memset(&none, 0, sizeof none);
        final_tasks(&none, ctx, m);
        free(none.eval.x); free(none.eval.y);
        bert_ctx_free(ctx);
    }
    windows_free(&tw); windows_free(&dw); windows_free(&sw);
    dataset_free(&tr); dataset_free(&dev); dataset_free(&test);
    bert_model_free(m);
    bert_vocab_free(v);
    free(char_cache);
    return rc;
}
