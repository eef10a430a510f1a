// classify.c - sentence and sentence-pair classification (and regression) fine-tuning, as HF's
// run_glue.py and google-research/bert's run_classifier.py do it: the published task files in, a
// dropout + dense head on the pooled output, softmax cross-entropy or (--num_labels 1) MSE; accuracy,
// macro/binary F1, MCC, Pearson/Spearman, confusion matrix; the best model on dev kept; predictions in
// CLUE's (JSON lines) or GLUE's (TSV) submission format. The training run is run.h's (checkpoints,
// --resume, --accumulation_steps, log.jsonl, curve.svg); --help lists the flags.
//   ./build/classify --task cola --train_file cola/in_domain_train.tsv --dev_file cola/in_domain_dev.tsv
//       --vocab vocab.txt --init model.safetensors --do_train --do_eval --out cola_out   (one line)
//   ./build/classify --eval_predictions gold_pred.tsv   (metrics of "gold<TAB>pred" lines, as JSON)
// Files, per --task (run_classifier.py's processors): cola (raw TSV: source, label, mark, sentence),
// sst2 (header "sentence label"), mrpc (header "Quality #1 ID #2 ID #1 String #2 String"; pairs): a
// GLUE test file of these (header "index") has the id first and no label; tnews (CLUE JSON lines
// {"sentence", "label", "label_desc", "id"}); tsv (--text_a_col --text_b_col --label_col --id_col
// --skip_header); json (--text_a_key --text_b_key --label_key --id_key). A UTF-8 BOM is skipped.
// The label list: --labels_file (CLUE's labels.json or one per line), --label_list, the --init model's
// metadata, or the training file's labels sorted (numerically when all are integers). Binary F1 is of
// the second label; --metric picks the model kept in OUT/model.safetensors (+ config.json), evaluated
// after each epoch (or every --eval_every steps); without --do_eval the last weights are kept.
// Pairs are [CLS] A [SEP] B [SEP], cut to --max_seq_length from the end of the longer side
// (_truncate_seq_pair); cut examples are counted. Bad input (malformed JSON, a missing field, another
// column count than the first row's, an unknown label, a non-numeric target) stops with one line
// naming file:line. An empty sentence is skipped with a warning in train/dev files and predicted from
// [CLS] [SEP] alone in a test file. Blank lines are ignored and counted. Training order: run.h's
// per-epoch permutation (--seed), batches of --batch_size, the last of an epoch smaller.
#define _DEFAULT_SOURCE   // open_memstream, mkdir
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "run.h"

// ----------------------------------------------------------------------------
// options: the task's own; run.h's run_opts has the optimizer, schedule, batch, steps and checkpoints

static run_opts ro;
static struct {
    const char *task, *train_file, *dev_file, *test_file, *labels_file, *label_list, *vocab, *config, *init;
    const char *metric, *eval_predictions, *predict_format, *text_a_key, *text_b_key, *label_key, *id_key;
    int text_a_col, text_b_col, label_col, id_col, skip_header, num_labels, do_lower_case;
    int do_train, do_eval, do_predict, max_seq_length, eval_batch_size;
} opt = {
    .text_a_key = "sentence", .label_key = "label", .id_key = "id", .text_a_col = 0, .text_b_col = -1, .label_col = 1,
    .id_col = -1, .do_lower_case = 1, .max_seq_length = 128, .eval_batch_size = 64,
};

static const bert_flag flags[] = {
    { "task", BERT_FLAG_STR, &opt.task, "cola | sst2 | mrpc | tnews | tsv | json: the file layout (see the top of classify.c)" },
    { "train_file", BERT_FLAG_STR, &opt.train_file, "training file" },
    { "dev_file", BERT_FLAG_STR, &opt.dev_file, "labelled evaluation file (--do_eval; also picks the best checkpoint)" },
    { "test_file", BERT_FLAG_STR, &opt.test_file, "file to predict (--do_predict); labels not needed" },
    { "do_train", BERT_FLAG_BOOL, &opt.do_train, "fine-tune on --train_file" },
    { "do_eval", BERT_FLAG_BOOL, &opt.do_eval, "evaluate on --dev_file (after each epoch when training)" },
    { "do_predict", BERT_FLAG_BOOL, &opt.do_predict, "write predictions for --test_file to OUT/test_predictions.{json,tsv}" },
    { "labels_file", BERT_FLAG_STR, &opt.labels_file, "label list: CLUE labels.json ({\"label\", \"label_desc\"} lines) or one label per line" },
    { "label_list", BERT_FLAG_STR, &opt.label_list, "label list as a,b,c (default: --labels_file, the --init model's, or the training file's)" },
    { "num_labels", BERT_FLAG_INT, &opt.num_labels, "1 = regression (MSE; STS-B style); 0 = the label list's size" },
    { "vocab", BERT_FLAG_STR, &opt.vocab, "vocab.txt of the model" },
    { "do_lower_case", BERT_FLAG_BOOL, &opt.do_lower_case, "lower-case and strip accents (uncased and Chinese models)" },
    { "config", BERT_FLAG_STR, &opt.config, "bert_config.json for a random init (or when --init carries no config)" },
    { "init", BERT_FLAG_STR, &opt.init, "weights, safetensors: a pretrained encoder, or a model fine-tuned here" },
    { "max_seq_length", BERT_FLAG_INT, &opt.max_seq_length, "tokens per example, [CLS]/[SEP] included" },
    { "eval_batch_size", BERT_FLAG_INT, &opt.eval_batch_size, "examples per forward pass in eval/predict" },
    { "max_steps", BERT_FLAG_INT, &ro.steps, "the same as --steps (0: --epochs decide)" },
    { "metric", BERT_FLAG_STR, &opt.metric, "accuracy | f1 | mcc | spearman | all: picks the best checkpoint (default by task)" },
    { "text_a_col", BERT_FLAG_INT, &opt.text_a_col, "--task tsv: column of the first sentence (0-based)" },
    { "text_b_col", BERT_FLAG_INT, &opt.text_b_col, "--task tsv: column of the second sentence, -1 = none" },
    { "label_col", BERT_FLAG_INT, &opt.label_col, "--task tsv: column of the label" },
    { "id_col", BERT_FLAG_INT, &opt.id_col, "--task tsv: column of the example id, -1 = the row number from 0" },
    { "skip_header", BERT_FLAG_BOOL, &opt.skip_header, "--task tsv: the first line is a header" },
    { "text_a_key", BERT_FLAG_STR, &opt.text_a_key, "--task json: key of the first sentence" },
    { "text_b_key", BERT_FLAG_STR, &opt.text_b_key, "--task json: key of the second sentence (none by default)" },
    { "label_key", BERT_FLAG_STR, &opt.label_key, "--task json: key of the label" },
    { "id_key", BERT_FLAG_STR, &opt.id_key, "--task json: key of the example id (absent: the line number from 0)" },
    { "predict_format", BERT_FLAG_STR, &opt.predict_format, "json | tsv (default: the test file's kind)" },
    { "eval_predictions", BERT_FLAG_STR, &opt.eval_predictions, "FILE of gold<TAB>predicted lines: print its metrics as JSON and exit" },
};

static const char intro[] =
    "usage: classify --task cola|sst2|mrpc|tnews|tsv|json --vocab vocab.txt (--config C.json | --init M.safetensors)\n"
    "                [--do_train --train_file F] [--do_eval --dev_file F] [--do_predict --test_file F] [flags]\n"
    "       classify --eval_predictions gold_pred.tsv [--num_labels 1] [--label_list a,b]\n"
    "Fine-tunes BERT for sentence (pair) classification or regression; OUT/model.safetensors and config.json\n"
    "are the best model on dev. Example:\n"
    "  classify --task mrpc --train_file MRPC/train.tsv --dev_file MRPC/dev.tsv --vocab vocab.txt \\\n"
    "           --init bert.safetensors --do_train --do_eval --epochs 3 --lr 2e-5 --out mrpc_out";

#include "classify_data.h"
#include "classify_metrics.h"

// ----------------------------------------------------------------------------
// model: encoder (random, or --init), classifier head; checkpoints with the label list inside

static bert_model *make_model(int K, int *from_file) {
    bert_config cfg;
    *from_file = 0;
    run_model_config(&cfg, opt.init, opt.config);
    if (opt.init) {
        bert_st st;
        if (bert_st_open(&st, opt.init)) run_die("%s", bert_last_error());
        *from_file = bert_st_find(&st, "classifier.weight") != NULL;
        bert_st_close(&st);
    }
    bert_model *m = bert_model_create(&cfg, (uint64_t)ro.seed);
    if (!m || bert_classifier_add(m, K, (uint64_t)ro.seed)) run_die("%s", bert_last_error());
    if (opt.init) {
        int missing = 0;
        if (bert_model_load_encoder(m, opt.init, &missing)) run_die("%s", bert_last_error());
        printf("init: %s (%s)\n", opt.init, *from_file ? "with its classifier" : "encoder; the classifier starts from the seed's init");
    }
    if (m->config.max_position_embeddings < opt.max_seq_length)
        run_die("--max_seq_length %d exceeds the model's max_position_embeddings %d", opt.max_seq_length, m->config.max_position_embeddings);
    return m;
}

// ["0", "1"], or the descriptions (null where none), as a string (for the checkpoint's metadata):
// measured, then written (the same loop twice: dst NULL only counts)
static size_t labels_json(char *dst, int descs) {
    size_t k = 0;
#define PUT_TEXT(t) do { size_t len_ = strlen(t); if (dst) memcpy(dst + k, t, len_); k += len_; } while (0)
    PUT_TEXT("[");
    for (int i = 0; i < labels.n; i++) {
        if (i) PUT_TEXT(", ");
        const char *s = descs ? labels.desc[i] : labels.name[i];
        if (!s) PUT_TEXT("null");
        else k += run_json_escape(dst ? dst + k : NULL, s, strlen(s));
    }
    PUT_TEXT("]");
#undef PUT_TEXT
    return k;
}

static char *labels_string(int descs) {
    size_t n = labels_json(NULL, descs);
    char *buf = (char *)run_malloc(n + 1);
    labels_json(buf, descs);
    buf[n] = 0;
    return buf;
}

// the model as HF BertForSequenceClassification holds it (bert.*, classifier.*; not the pretraining
// heads cls.*, which transformers would find unexpected), config and label list in the metadata;
// written to PATH.tmp and renamed
static void save_model(const bert_model *m, const char *path) {
    if (run_rank()) return;   // data parallel: rank 0 writes for all
    char config[1024], k[16];
    if (bert_config_to_json(&m->config, config, sizeof config) < 0) run_die("config too long");
    bert_st_entry *e = (bert_st_entry *)run_calloc((size_t)m->num_tensors, sizeof *e);
    int n = 0;
    for (int i = 0; i < m->num_tensors; i++) {
        if (!strncmp(m->names[i], "cls.", 4)) continue;
        e[n].name = m->names[i];
        e[n].dtype = BERT_DT_F32;
        e[n].ndim = m->tensors[i].ndim;
        for (int d = 0; d < m->tensors[i].ndim; d++) e[n].shape[d] = m->tensors[i].shape[d];
        e[n++].data = m->tensors[i].data;
    }
    snprintf(k, sizeof k, "%d", bert_classifier_num_labels(m));
    char *names = labels_string(0), *descs = labels_string(1);
    const char *meta[] = { "format", "pt", "producer", "bert.h", "format_version", "1", "config", config, "num_labels", k,
                           "labels", names, "label_descs", descs, "task", opt.task };
    if (bert_st_save(path, e, n, meta, 8)) run_die("saving %s", bert_last_error());
    free(e); free(names); free(descs);
}

// config.json's head keys for transformers (OUT and every checkpoint): the problem type, id2label / label2id
static void hf_label_keys(FILE *f, const bert_model *m) {
    int K = bert_classifier_num_labels(m);
    fprintf(f, ", \"problem_type\": \"%s\"", K == 1 ? "regression" : "single_label_classification");
    fprintf(f, ", \"num_labels\": %d, \"id2label\": {", K);
    for (int i = 0; i < K; i++) { fprintf(f, "%s\"%d\": ", i ? ", " : "", i); jstr(f, K == 1 ? "LABEL_0" : labels.name[i]); }
    fprintf(f, "}, \"label2id\": {");
    for (int i = 0; i < K; i++) { if (i) fprintf(f, ", "); jstr(f, K == 1 ? "LABEL_0" : labels.name[i]); fprintf(f, ": %d", i); }
    fprintf(f, "}");
}

// ----------------------------------------------------------------------------
// evaluation and prediction: dropout off, no tape, batches in file order

typedef struct { int *pred; float *value; double loss; } outputs;

static outputs forward_all(bert_ctx *ctx, bert_model *m, const dataset *d, int with_labels, int pad_id) {
    int K = bert_classifier_num_labels(m), B = opt.eval_batch_size;
    outputs o = { (int *)run_calloc((size_t)d->n, sizeof(int)), (float *)run_calloc((size_t)d->n, sizeof(float)), 0.0 };
    size_t *idx = (size_t *)run_calloc((size_t)B, sizeof(size_t));
    float *logits = (float *)run_calloc((size_t)B * K, sizeof(float));
    batch b;
    batch_alloc(&b, B);
    int saved_training = ctx->training, saved_grad = ctx->grad_enabled;
    ctx->training = 0; ctx->grad_enabled = 0;
    ctx->remove_padding = ro.remove_padding;   // acts on inference only
    for (int i = 0; i < d->n; i += B) {
        int nb = d->n - i < B ? d->n - i : B;
        for (int e = 0; e < nb; e++) idx[e] = (size_t)(i + e);
        batch_load(&b, d, idx, nb, pad_id);
        bert_ctx_reset(ctx, 0);
        bert_classify_out r = bert_classify_forward(ctx, m, b.ids, b.types, b.mask, nb, b.T,
                                                    with_labels && K > 1 ? b.labels : NULL, with_labels && K == 1 ? b.targets : NULL);
        if (r.loss) o.loss += (double)bert_tensor_item(ctx, r.loss) * nb;
        run_read_finite(ctx, r.logits, logits, d->path);
        for (int e = 0; e < nb; e++) { o.pred[i + e] = run_argmax(logits + (size_t)e * K, K); o.value[i + e] = logits[(size_t)e * K]; }
    }
    o.loss /= d->n;
    ctx->training = saved_training; ctx->grad_enabled = saved_grad;
    batch_free(&b);
    free(idx); free(logits);
    return o;
}

static metrics evaluate(bert_ctx *ctx, bert_model *m, const dataset *d, int pad_id) {
    run_precision(m, ro.precision);
    outputs o = forward_all(ctx, m, d, 1, pad_id);
    metrics r;
    if (opt.num_labels == 1) {
        double *g = (double *)run_calloc((size_t)d->n, sizeof(double)), *p = (double *)run_calloc((size_t)d->n, sizeof(double));
        for (int i = 0; i < d->n; i++) { g[i] = d->target[i]; p[i] = o.value[i]; }
        r = reg_metrics(g, p, d->n);
        free(g); free(p);
    } else {
        r = class_metrics(d->label, o.pred, d->n, labels.n);
    }
    r.loss = o.loss;
    free(o.pred); free(o.value);
    return r;
}

static void write_predictions(bert_ctx *ctx, bert_model *m, const dataset *d, int pad_id, const char *path, int json) {
    run_precision(m, ro.precision);
    outputs o = forward_all(ctx, m, d, 0, pad_id);
    bert_atomic_file out;
    FILE *f = run_create(&out, path);
    if (!json) fprintf(f, "index\tprediction\n");   // GLUE's submission layout
    for (int i = 0; i < d->n; i++) {
        const char *id = d->id[i], *name = opt.num_labels == 1 ? NULL : labels.name[o.pred[i]], *desc = name ? labels.desc[o.pred[i]] : NULL;
        if (!json) {
            if (name) fprintf(f, "%s\t%s\n", id, name); else fprintf(f, "%s\t%.6g\n", id, (double)o.value[i]);
            continue;
        }
        fprintf(f, "{\"id\": ");   // CLUE's submission layout: {"id": 0, "label": "102", "label_desc": ...}
        if (is_integer(id) && id[0] != '-' && (id[0] != '0' || !id[1])) fprintf(f, "%s", id); else jstr(f, id);
        fprintf(f, ", \"label\": ");
        if (name) jstr(f, name); else fprintf(f, "%.6g", (double)o.value[i]);
        if (desc) { fprintf(f, ", \"label_desc\": "); jstr(f, desc); }
        fprintf(f, "}\n");
    }
    run_commit(&out, path);
    printf("predictions: %d examples of %s -> %s\n", d->n, d->path, path);
    free(o.pred); free(o.value);
}

// ----------------------------------------------------------------------------
// setup: options, data, labels, model

typedef struct {
    bert_vocab *v;
    bert_model *m;
    dataset train, dev, test;
    int pad_id;
    char model_path[4200];                                // OUT/model.safetensors: the best on dev, or the last
    int have_best, best_step, best_metrics; double best_value; metrics best;   // best_metrics: best is filled in
} task_state;

static int one_of(const char *s, const char *const *list, int n) {
    for (int i = 0; i < n; i++) if (!strcmp(s, list[i])) return 1;
    return 0;
}

static void check_options(void) {
    static const char *const tasks[] = { "cola", "sst2", "mrpc", "tnews", "tsv", "json" };
    static const char *const mets[] = { "accuracy", "f1", "mcc", "spearman", "all" };
    if (!opt.task) run_die("--task is required (cola, sst2, mrpc, tnews, tsv or json)");
    if (!one_of(opt.task, tasks, 6)) run_die("--task: '%s' is not one of cola, sst2, mrpc, tnews, tsv, json", opt.task);
    if (!opt.metric) opt.metric = default_metric();
    if (!one_of(opt.metric, mets, 5)) run_die("--metric: '%s' is not one of accuracy, f1, mcc, spearman, all", opt.metric);
    if (opt.num_labels == 1 && strcmp(opt.metric, "spearman") && strcmp(opt.metric, "all")) run_die("--metric %s needs classification; regression (--num_labels 1) has spearman", opt.metric);
    if (opt.num_labels != 1 && !strcmp(opt.metric, "spearman")) run_die("--metric spearman needs regression (--num_labels 1)");
    if (!opt.do_train && !opt.do_eval && !opt.do_predict) run_die("nothing to do: give --do_train, --do_eval and/or --do_predict");
    if (opt.do_train && !opt.train_file) run_die("--do_train needs --train_file");
    if (opt.do_eval && !opt.dev_file) run_die("--do_eval needs --dev_file");
    if (opt.do_predict && !opt.test_file) run_die("--do_predict needs --test_file");
    if (!opt.vocab) run_die("--vocab is required");
    if (opt.num_labels < 0) run_die("--num_labels must be >= 0");
    if (opt.max_seq_length < 3 || opt.eval_batch_size < 1 || opt.eval_batch_size > 4096) run_die("--max_seq_length >= 3, 1 <= --eval_batch_size <= 4096 please");
    if (opt.predict_format && strcmp(opt.predict_format, "json") && strcmp(opt.predict_format, "tsv")) run_die("--predict_format: '%s' is not json or tsv", opt.predict_format);
    if (!strcmp(opt.task, "tsv") && (opt.text_a_col < 0 || opt.label_col < 0)) run_die("--text_a_col and --label_col must be >= 0");
}

// the label list, in order of precedence: --num_labels 1 (none), --labels_file, --label_list, the
// --init model's, the training file's labels (sorted)
static void setup_labels(const dataset *train) {
    if (opt.num_labels == 1) return;
    if (opt.labels_file) labels_from_file(opt.labels_file);
    else if (opt.label_list) labels_from_list(opt.label_list);
    if (!labels.n && opt.init) labels_from_checkpoint(opt.init);
    if (opt.num_labels == 1) { table_clear(&labels); return; }   // the checkpoint is a regression model
    if (!labels.n && train) {
        for (int i = 0; i < train->n; i++) table_add(&labels, train->label_str[i], NULL, train->path);
        labels_sort(train->path);
    }
    if (!labels.n) run_die("no label list: give --labels_file or --label_list, or --init a model fine-tuned by classify");
    for (int i = 0; i < labels.n; i++) {   // descriptions the data gave (TNEWS's label_desc)
        int k = table_find(&data_descs, labels.name[i]);
        if (!labels.desc[i] && k >= 0 && data_descs.desc[k]) labels.desc[i] = run_strdup(data_descs.desc[k]);
    }
    if (labels.n < 2) run_die("%s: a single label ('%s'): classification needs at least 2 (or --num_labels 1 for regression)", labels.source, labels.name[0]);
    if (opt.num_labels && opt.num_labels != labels.n) run_die("--num_labels %d, but %s has %d labels", opt.num_labels, labels.source, labels.n);
    opt.num_labels = labels.n;
}

static void setup(task_state *t) {
    if (!(t->v = bert_vocab_load(opt.vocab))) run_die("%s", bert_last_error());
    run_vocab_mode(t->v, &ro, 0);
    if (t->v->cls_id < 0 || t->v->sep_id < 0) run_die("%s: no [CLS] or [SEP] token", opt.vocab);
    t->pad_id = t->v->pad_id >= 0 ? t->v->pad_id : 0;
    scratch sc = { (int32_t *)run_malloc(4096 * sizeof(int32_t)), (int32_t *)run_malloc(4096 * sizeof(int32_t)), 4096 };
    if (opt.do_train) dataset_load(&t->train, opt.train_file, t->v, 1, &sc);
    if (opt.do_eval) dataset_load(&t->dev, opt.dev_file, t->v, 1, &sc);
    if (opt.do_predict) dataset_load(&t->test, opt.test_file, t->v, 0, &sc);
    free(sc.a); free(sc.b);
    setup_labels(opt.do_train ? &t->train : NULL);
    if (opt.do_train) dataset_resolve(&t->train);
    if (opt.do_eval) dataset_resolve(&t->dev);
    int from_file;
    t->m = make_model(opt.num_labels, &from_file);
    if (t->m->config.vocab_size != t->v->size) run_die("%s has %d tokens but the model's vocab_size is %d", opt.vocab, t->v->size, t->m->config.vocab_size);
    const dataset *paired = t->train.pairs ? &t->train : t->dev.pairs ? &t->dev : t->test.pairs ? &t->test : NULL;
    if (paired && t->m->config.type_vocab_size < 2)
        run_die("%s: sentence pairs need type_vocab_size 2 or more; the model has %d", paired->path, t->m->config.type_vocab_size);
    if (!opt.do_train && !from_file) run_die("%s has no classifier.weight: fine-tune it first (--do_train)", opt.init ? opt.init : "the model");
    if (!run_rank() && mkdir(ro.out, 0777) != 0 && errno != EEXIST) run_die("%s: %s", ro.out, strerror(errno));
    snprintf(t->model_path, sizeof t->model_path, "%s/model.safetensors", ro.out);
}

// ----------------------------------------------------------------------------
// training: run.h's loop; an evaluation on dev after each epoch keeps the best model

// OUT/best.txt beside OUT/model.safetensors: which run and step the model is of, and its dev metric
static void best_record(const task_state *t, const run *r) {
    char path[4200];
    snprintf(path, sizeof path, "%s/best.txt", ro.out);
    bert_atomic_file out;
    FILE *f = run_create(&out, path);
    fprintf(f, "%llu %d %.17g %s\n", (unsigned long long)r->run_id, t->best_step, t->best_value, metric_name());
    run_commit(&out, path);
}

// after --resume: the best model this run kept so far, if it was kept at or before the step resumed
// from (a later one is made again, bit for bit, by the steps redone)
static void best_resume(task_state *t, const run *r) {
    char path[4200], name[32];
    snprintf(path, sizeof path, "%s/best.txt", ro.out);
    FILE *f = fopen(path, "r");
    unsigned long long id;
    int step;
    double value;
    if (!f) return;
    if (fscanf(f, "%llu %d %lf %31s", &id, &step, &value, name) == 4 && id == r->run_id && step >= 0 && (uint64_t)step <= r->opt.step &&
        !strcmp(name, metric_name())) {
        t->have_best = 1; t->best_step = step; t->best_value = value;
    }
    fclose(f);
}

static void eval_dev(run *r, task_state *t) {
    run_eval_begin(r);
    metrics mr = evaluate(r->ctx, t->m, &t->dev, t->pad_id);
    double val = metric_value(&mr);
    int better = !t->have_best || val > t->best_value || (isnan(t->best_value) && !isnan(val));
    run_metric mt[] = { { metric_name(), val }, { mr.regression ? "pearson" : "accuracy", mr.regression ? mr.pearson : mr.accuracy }, { "loss", mr.loss } };
    if (better) {
        if (t->best_metrics) free(t->best.confusion);
        t->best = mr; t->best_metrics = t->have_best = 1; t->best_step = (int)r->opt.step; t->best_value = val;
        save_model(t->m, t->model_path);
        best_record(t, r);
    } else {
        free(mr.confusion);
    }
    run_eval_end(r, better ? "*best*" : NULL, mt, 3);
}

static void log_header(FILE *log, const task_state *t) {
    char *names = labels_string(0);
    fprintf(log, "{\"task\": \"%s\", \"num_labels\": %d, \"labels\": %s, \"train\": %d, \"dev\": %d, \"test\": %d, \"truncated\": [%ld, %ld, %ld], "
                 "\"skipped_empty\": [%ld, %ld], \"max_seq_length\": %d, \"metric\": \"%s\", \"init\": ", opt.task, opt.num_labels, names,
            t->train.n, t->dev.n, t->test.n, t->train.truncated, t->dev.truncated, t->test.truncated, t->train.empty, t->dev.empty,
            opt.max_seq_length, metric_name());
    jstr(log, opt.init ? opt.init : "random");
    fprintf(log, ", \"params\": %zu}\n", t->m->num_params);
    free(names);
}

// the step's loss on a zero batch of full length, for run_begin's --max_memory_mb check
static bert_tensor *measure_loss(bert_ctx *ctx, bert_model *m, int B, void *arg) {
    (void)arg;
    batch b;
    batch_alloc(&b, B);
    size_t bt = (size_t)B * opt.max_seq_length;
    memset(b.ids, 0, 3 * bt * sizeof(int32_t));
    memset(b.labels, 0, (size_t)B * sizeof(int32_t));
    memset(b.targets, 0, (size_t)B * sizeof(float));
    int K = opt.num_labels;
    bert_tensor *loss = bert_classify_forward(ctx, m, b.ids, b.types, b.mask, B, opt.max_seq_length, K > 1 ? b.labels : NULL,
                                              K == 1 ? b.targets : NULL).loss;
    batch_free(&b);
    return loss;
}

static void train_step(run *r, task_state *t, batch *b, float *logits) {
    int K = opt.num_labels, A = ro.accumulation_steps;
    long hits = 0, seen = 0;
    double data_s = 0;
    for (int k = 0; k < A; k++) {
        double t0 = bert_time_s();
        int n;
        const size_t *idx = run_batch(r, &n);
        if (!n) continue;   // data parallel: a last batch smaller than the ranks
        batch_load(b, &t->train, idx, n, t->pad_id);
        data_s += bert_time_s() - t0;
        bert_ctx *ctx = run_micro(r);
        bert_classify_out o = bert_classify_forward(ctx, t->m, b->ids, b->types, b->mask, n, b->T, K > 1 ? b->labels : NULL, K == 1 ? b->targets : NULL);
        run_backward(r, o.loss, 1.0f / (float)A);
        if (K == 1) continue;
        bert_tensor_read(ctx, o.logits, logits);
        for (int e = 0; e < n; e++) hits += run_argmax(logits + (size_t)e * K, K) == b->labels[e];
        seen += n;
    }
    run_metric mt[] = { { "acc", seen ? (double)hits / (double)seen : 0.0 } };
    run_end_step(r, mt, K > 1, data_s);
}

// returns run_finish's exit status (0 done, 1 failed, 130/143 interrupted: --resume continues)
static int train(task_state *t) {
    const dataset *d = &t->train;
    int B = ro.batch_size, A = ro.accumulation_steps, K = opt.num_labels;
    int per_epoch = run_steps_per_epoch(&ro, (size_t)d->n);   // optimizer steps
    char fp[512], what[512], head[32];
    snprintf(fp, sizeof fp, "classify %s: %d examples, %zu tokens, T %d, %d labels, batch %d x %d, seed %d, shuffle %d",
             opt.task, d->n, d->ntok, opt.max_seq_length, K, B, A, ro.seed, !ro.no_shuffle);
    run r;
    ro.measure = measure_loss;
    ro.hf_architecture = "BertForSequenceClassification";
    ro.hf_config_keys = hf_label_keys;
    run_begin(&r, &ro, t->m, (size_t)d->n, run_total_steps(&ro, (size_t)d->n), fp);
    if (K == 1) snprintf(head, sizeof head, "regression (MSE)"); else snprintf(head, sizeof head, "%d labels", K);
    snprintf(what, sizeof what, "classify: %s | %d train examples (%d steps per epoch) | %s | T %d | metric %s", opt.task, d->n,
             per_epoch, head, opt.max_seq_length, metric_name());
    run_print_setup(&r, what);
    if (!r.opt.step) log_header(r.log, t);
    else if (opt.do_eval) best_resume(t, &r);
    batch b;
    batch_alloc(&b, B);
    float *logits = (float *)run_calloc((size_t)B * K, sizeof(float));
    while (run_next_step(&r)) {
        train_step(&r, t, &b, logits);
        if (opt.do_eval && run_eval_due(&r, per_epoch)) eval_dev(&r, t);
    }
    if (opt.do_eval && run_completed(&r)) eval_dev(&r, t);
    if (!opt.do_eval && run_completed(&r)) save_model(t->m, t->model_path);   // no dev set: the last weights
    batch_free(&b);
    free(logits);
    return run_finish(&r);
}

// ----------------------------------------------------------------------------
// main

// after training (the best weights loaded back) or for a model given with --init: config.json,
// eval_results.json, predictions
static void outputs_write(task_state *t) {
    char path[4200];
    bert_ctx *ctx = bert_ctx_create((size_t)64 << 20);
    if (!ctx) run_die("out of memory for the activation arena");
    if (opt.do_train) {
        if (t->have_best && bert_model_load_weights(t->m, t->model_path)) run_die("%s", bert_last_error());
        snprintf(path, sizeof path, "%s/config.json", ro.out);
        run_hf_config(t->m, path, "BertForSequenceClassification", hf_label_keys);
        printf("model: %s (%s) | config: %s\n", t->model_path, t->have_best ? "best on dev" : "last step", path);
    }
    if (opt.do_eval) {
        if (!t->best_metrics) t->best = evaluate(ctx, t->m, &t->dev, t->pad_id);
        snprintf(path, sizeof path, "eval %s%s", t->dev.path, t->have_best ? " (best checkpoint)" : "");
        metrics_print(&t->best, path);
        snprintf(path, sizeof path, "%s/eval_results.json", ro.out);
        bert_atomic_file out;
        FILE *f = run_create(&out, path);
        fprintf(f, "{\"dev_file\": "); jstr(f, t->dev.path);
        fprintf(f, ", \"step\": %d, \"metric\": \"%s\", \"metrics\": ", t->best_step, opt.metric);
        metrics_json(f, &t->best);
        fprintf(f, "}\n");
        run_commit(&out, path);
        free(t->best.confusion);
    }
    if (opt.do_predict) {
        int json = opt.predict_format ? !strcmp(opt.predict_format, "json") : t->test.fmt == FMT_JSON;
        snprintf(path, sizeof path, "%s/test_predictions.%s", ro.out, json ? "json" : "tsv");
        write_predictions(ctx, t->m, &t->test, t->pad_id, path, json);
    }
    if (t->have_best) printf("best on dev: %s %.4f at step %d (%s)\n", metric_name(), t->best_value, t->best_step, t->model_path);
    bert_ctx_free(ctx);
}

int main(int argc, char **argv) {
    ro = run_defaults();
    ro.out = "classify_out"; ro.print_every = 20;
    ro.drop_last = 0;   // every example in every epoch: the last batch smaller
    run_parse("classify", intro, flags, (int)(sizeof flags / sizeof flags[0]), &ro, RUN_FLAGS_INFER | RUN_FLAGS_TRAIN | RUN_FLAGS_COMMON | RUN_FLAGS_TOKENIZER, argc, argv);
    if (opt.eval_predictions) return eval_predictions(opt.eval_predictions);
    run_resolve_weights(&opt.init);   // --init DIR: DIR/model.safetensors
    check_options();
    static task_state t;
    setup(&t);
    int rc = opt.do_train ? train(&t) : 0;
    if (rc == 0) outputs_write(&t);
    run_check_stream(stdout, "stdout");
    bert_model_free(t.m);
    bert_vocab_free(t.v);
    dataset_free(&t.train); dataset_free(&t.dev); dataset_free(&t.test);
    table_clear(&labels);
    table_clear(&data_descs);
    return rc;
}
