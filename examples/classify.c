// classify.c - sentence and sentence-pair classification (and regression) fine-tuning, as HF's
// run_glue.py and google-research/bert's run_classifier.py do it: the published task files in
// (GLUE TSV, CLUE JSON lines), BertForSequenceClassification's head (dropout + dense on the pooled
// output), softmax cross-entropy or, with --num_labels 1, mean squared error; evaluation (accuracy,
// macro-F1, binary F1, MCC, Pearson/Spearman, confusion matrix), best-on-dev checkpoint, predictions
// in the CLUE submission format (JSON lines) or GLUE's (TSV).
//
//   cc -O2 -march=native -fopenmp -std=c11 examples/classify.c -o build/classify -lm
//   ./build/classify --task cola --train_file cola/in_domain_train.tsv --dev_file cola/in_domain_dev.tsv
//       --vocab vocab.txt --init model.safetensors --do_train --do_eval --out cola_out   (one line)
//   ./build/classify --eval_predictions gold_pred.tsv           (metrics of a "gold<TAB>pred" file, JSON)
//   ./build/classify --help
//
// Files, per --task (the layouts of run_classifier.py's processors, read as published):
//   cola   CoLA's raw TSV: no header; source, label, original mark, sentence
//   sst2   GLUE SST-2: header "sentence label"
//   mrpc   GLUE MRPC: header "Quality #1 ID #2 ID #1 String #2 String" (a UTF-8 BOM is skipped); pairs
//          For these three, a GLUE test file (header starting "index") has the id first and no label.
//   tnews  CLUE JSON lines {"sentence", "label" (int or string), "label_desc", "id"}; labels from
//          --labels_file (CLUE's labels.json) or collected from the training file
//   tsv    any TSV: --text_a_col --text_b_col --label_col --id_col --skip_header (a test file:
//          the same columns, the label column not read)
//   json   any JSON lines: --text_a_key --text_b_key --label_key --id_key (AFQMC: sentence1/sentence2)
// The label list: --labels_file, --label_list, the --init model's (saved in its metadata), or the
// training file's labels sorted (numerically when all are integers). Binary F1 is for its second
// label (GLUE's "1"); --metric picks the checkpoint kept (f1 = binary F1 for 2 labels, else macro).
// Pairs are [CLS] A [SEP] B [SEP], cut to --max_seq_length by dropping the last token of the longer
// side (run_classifier.py's _truncate_seq_pair); every cut example is counted and reported.
// Bad input stops with one line naming file:line: malformed JSON, a missing field, a row with another
// column count than the file's first row, a label the label list lacks, a non-numeric regression
// target. A sentence with no tokens (empty) is skipped in train/dev files with a warning naming
// file:line and a count, and predicted from [CLS] [SEP] alone in a test file (a submission needs
// every id). Blank lines are ignored (and counted).
//
// Training order: each epoch visits the training examples in a Fisher-Yates permutation drawn from
// bert_rng_stream(seed, epoch, SHUFFLE_SITE); batches are consecutive runs of --batch_size, the last
// one smaller; dropout of step s uses bert_ctx_reset(ctx, s) with --seed.
#define _DEFAULT_SOURCE   // mkdir
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#define BERT_IMPLEMENTATION
#include "../bert.h"

#define SHUFFLE_SITE 0x5348554646ull   // "SHUFF": the shuffle's RNG site, apart from dropout's
#define MAX_LABELS 4096
#define MAX_COLS 64

// ----------------------------------------------------------------------------
// options

static struct {
    const char *task, *train_file, *dev_file, *test_file, *labels_file, *label_list, *vocab, *config, *init, *out;
    const char *metric, *optimizer, *eval_predictions, *predict_format;
    const char *text_a_key, *text_b_key, *label_key, *id_key;
    int text_a_col, text_b_col, label_col, id_col, skip_header, num_labels, do_lower_case;
    int do_train, do_eval, do_predict, max_seq_length, batch_size, eval_batch_size, epochs, max_steps;
    int eval_every, print_every, seed, threads;
    float lr, warmup_proportion, weight_decay, clip_norm;
} opt = {
    .out = "classify_out", .optimizer = "adamw_gb", .text_a_key = "sentence", .label_key = "label", .id_key = "id",
    .text_a_col = 0, .text_b_col = -1, .label_col = 1, .id_col = -1, .do_lower_case = 1,
    .max_seq_length = 128, .batch_size = 32, .eval_batch_size = 64, .epochs = 3, .print_every = 20, .seed = 12345,
    .lr = 5e-5f, .warmup_proportion = 0.1f, .weight_decay = 0.01f, .clip_norm = 1.0f,
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
    { "out", BERT_FLAG_STR, &opt.out, "output directory: model.safetensors, config.json, log.jsonl, eval_results.json, predictions" },
    { "max_seq_length", BERT_FLAG_INT, &opt.max_seq_length, "tokens per example, [CLS]/[SEP] included" },
    { "batch_size", BERT_FLAG_INT, &opt.batch_size, "training examples per step" },
    { "eval_batch_size", BERT_FLAG_INT, &opt.eval_batch_size, "examples per forward pass in eval/predict" },
    { "lr", BERT_FLAG_FLOAT, &opt.lr, "peak learning rate" },
    { "epochs", BERT_FLAG_INT, &opt.epochs, "passes over the training file" },
    { "max_steps", BERT_FLAG_INT, &opt.max_steps, "stop after this many steps (0: --epochs decide)" },
    { "warmup_proportion", BERT_FLAG_FLOAT, &opt.warmup_proportion, "linear warmup over this fraction of the steps" },
    { "weight_decay", BERT_FLAG_FLOAT, &opt.weight_decay, "decoupled weight decay (not on LayerNorm/bias)" },
    { "optimizer", BERT_FLAG_STR, &opt.optimizer, "adamw_gb (Google's, no bias correction) | adamw (HF/torch)" },
    { "clip_norm", BERT_FLAG_FLOAT, &opt.clip_norm, "global gradient norm clip, 0 = off" },
    { "seed", BERT_FLAG_INT, &opt.seed, "seed of the shuffle, the dropout masks and the random init" },
    { "metric", BERT_FLAG_STR, &opt.metric, "accuracy | f1 | mcc | spearman | all: picks the best checkpoint (default by task)" },
    { "eval_every", BERT_FLAG_INT, &opt.eval_every, "also evaluate every N steps (0: after each epoch)" },
    { "print_every", BERT_FLAG_INT, &opt.print_every, "progress line every N steps" },
    { "threads", BERT_FLAG_INT, &opt.threads, "OpenMP threads (0: OMP_NUM_THREADS or all cores)" },
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
#define NFLAGS ((int)(sizeof flags / sizeof flags[0]))

static void usage(FILE *f) {
    fprintf(f, "usage: classify --task cola|sst2|mrpc|tnews|tsv|json --vocab vocab.txt (--config C.json | --init M.safetensors)\n"
               "                [--do_train --train_file F] [--do_eval --dev_file F] [--do_predict --test_file F] [flags]\n"
               "       classify --eval_predictions gold_pred.tsv [--num_labels 1] [--label_list a,b]\n"
               "Fine-tunes BERT for sentence (pair) classification or regression. Example:\n"
               "  classify --task mrpc --train_file MRPC/train.tsv --dev_file MRPC/dev.tsv --vocab vocab.txt \\\n"
               "           --init bert.safetensors --do_train --do_eval --epochs 3 --lr 2e-5 --out mrpc_out\n\nflags:\n");
    bert_flags_usage(f, flags, NFLAGS);
}

static void die(const char *fmt, ...) BERT__PRINTF(1, 2);
static void die(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);   // what was printed before comes first
    va_start(ap, fmt);
    fprintf(stderr, "classify: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) die("out of memory (%zu bytes)", n);
    return q;
}

static char *xstrndup(const char *s, size_t n) {
    char *d = (char *)xrealloc(NULL, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

// a JSON string literal of s (quotes, backslashes and control characters escaped)
static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double x) {   // NaN (an undefined correlation) is null
    if (isfinite(x)) fprintf(f, "%.17g", x); else fprintf(f, "null");
}

// ----------------------------------------------------------------------------
// labels: an ordered list of names (and CLUE's descriptions); regression has none

typedef struct { int n; char *name[MAX_LABELS]; char *desc[MAX_LABELS]; const char *source; } label_table;
static label_table labels;   // the model's labels, in order
static label_table data_descs;   // every label_desc the data files gave, attached to the list at the end

static int table_find(const label_table *t, const char *s) {
    for (int i = 0; i < t->n; i++) if (!strcmp(t->name[i], s)) return i;
    return -1;
}

static int table_add(label_table *t, const char *s, const char *desc, const char *where) {
    int i = table_find(t, s);
    if (i >= 0) { if (desc && !t->desc[i]) t->desc[i] = strdup(desc); return i; }
    if (t->n == MAX_LABELS) die("%s: over %d distinct labels", where, MAX_LABELS);
    t->name[t->n] = strdup(s);
    t->desc[t->n] = desc ? strdup(desc) : NULL;
    return t->n++;
}

static void table_clear(label_table *t) {
    for (int i = 0; i < t->n; i++) { free(t->name[i]); free(t->desc[i]); }
    t->n = 0;
}

static int label_find(const char *s) { return table_find(&labels, s); }
static int label_add(const char *s, const char *desc, const char *where) { return table_add(&labels, s, desc, where); }

static int is_integer(const char *s) {   // at most 18 digits: fits a long long, so atoll is exact
    if (*s == '-') s++;
    if (!*s || strlen(s) > 18) return 0;
    for (; *s; s++) if (*s < '0' || *s > '9') return 0;
    return 1;
}

// numeric order when every label is an integer ("100" < "2" would be wrong), else byte order
static int label_cmp_num(const void *a, const void *b) {
    long long u = atoll(*(char *const *)a), v = atoll(*(char *const *)b);
    return (u > v) - (u < v);
}
static int label_cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void labels_sort(void) {
    int numeric = 1;
    for (int i = 0; i < labels.n; i++) numeric &= is_integer(labels.name[i]);
    static char *pairs[MAX_LABELS][2];   // (name, desc), sorted by name
    for (int i = 0; i < labels.n; i++) { pairs[i][0] = labels.name[i]; pairs[i][1] = labels.desc[i]; }
    qsort(pairs, (size_t)labels.n, sizeof pairs[0], numeric ? label_cmp_num : label_cmp_str);
    for (int i = 0; i < labels.n; i++) { labels.name[i] = pairs[i][0]; labels.desc[i] = pairs[i][1]; }
}

static const char *labels_summary(void) {   // "0, 1" (at most 20 shown), for messages
    static char buf[512];
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < labels.n && n < sizeof buf - 40; i++) {
        if (i == 20) { snprintf(buf + n, sizeof buf - n, ", ..."); break; }
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%.24s", i ? ", " : "", labels.name[i]);
    }
    return buf;
}

// a JSON value as a label/id string: strings as they are, integers without a fraction
// a string or number as text in buf: 1, or 0 if j is neither, or -1 if it does not fit (never cut)
static int json_scalar(const bert_json *j, char *buf, size_t cap) {
    if (!j) return 0;
    if (j->type == BERT_JSON_STRING && (size_t)j->string_len >= cap) return -1;
    if (j->type == BERT_JSON_STRING) snprintf(buf, cap, "%s", j->string);
    else if (j->type == BERT_JSON_NUMBER && j->number == floor(j->number) && fabs(j->number) < 1e15) snprintf(buf, cap, "%.0f", j->number);
    else if (j->type == BERT_JSON_NUMBER) snprintf(buf, cap, "%.17g", j->number);
    else return 0;
    return 1;
}

static char *read_whole(const char *path, size_t *len) {
    unsigned char *data;
    if (bert__read_file(path, &data, len)) die("%s", bert_last_error());
    if (*len > (size_t)1 << 30) die("%s: larger than 1024 MB (the most classify reads; its line counts are ints)", path);
    return (char *)data;
}

// the next line of [*p, end): returns its start (or NULL at the end), *n its length without "\r\n"
static const char *next_line(const char **p, const char *end, size_t *n) {
    if (*p >= end) return NULL;
    const char *s = *p, *nl = (const char *)memchr(s, '\n', (size_t)(end - s));
    const char *e = nl ? nl : end;
    *p = nl ? nl + 1 : end;
    *n = (size_t)(e - s);
    if (*n && s[*n - 1] == '\r') (*n)--;
    return s;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) if (s[i] != ' ' && s[i] != '\t') return 0;
    return 1;
}

static const char *skip_bom(const char *s, size_t *len) {
    if (*len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) { *len -= 3; return s + 3; }
    return s;
}

// --labels_file: CLUE's labels.json lines ({"label": ..., "label_desc": ...}) or one label per line
static void labels_from_file(const char *path) {
    size_t len;
    char *text = read_whole(path, &len);
    const char *p = skip_bom(text, &len), *end = p + len, *s;
    size_t n;
    for (int line = 1; (s = next_line(&p, end, &n)) != NULL; line++) {
        if (is_blank(s, n)) continue;
        char where[600], name[256];
        snprintf(where, sizeof where, "%s:%d", path, line);
        if (*s != '{') { char *t = xstrndup(s, n); label_add(t, NULL, where); free(t); continue; }
        bert_json *j;
        if (bert_json_parse(&j, s, n)) die("%s: malformed JSON: %s", where, bert_last_error());
        const bert_json *d = bert_json_get(j, "label_desc");
        int got = json_scalar(bert_json_get(j, "label"), name, sizeof name);
        if (got < 0) die("%s: a \"label\" longer than %d bytes", where, (int)sizeof name - 1);
        if (!got) die("%s: no \"label\" string or number", where);
        label_add(name, d && d->type == BERT_JSON_STRING ? d->string : NULL, where);
        bert_json_free(j);
    }
    if (!labels.n) die("%s: no labels in the file", path);
    labels.source = path;
    free(text);
}

static void labels_from_list(const char *list) {
    char *copy = strdup(list), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) label_add(t, NULL, "--label_list");
    free(copy);
    if (!labels.n) die("--label_list: no labels in '%s'", list);
    labels.source = "--label_list";
}

// ----------------------------------------------------------------------------
// file layouts

typedef enum { FMT_TSV, FMT_JSON } file_format;
typedef struct { int a, b, label, id, header; } tsv_layout;   // 0-based columns, -1 = none

static file_format task_format(void) {
    return !strcmp(opt.task, "tnews") || !strcmp(opt.task, "json") ? FMT_JSON : FMT_TSV;
}

// a GLUE test file starts with a header whose first column is "index"; it has the id, no label
static tsv_layout task_layout(int test_header) {
    tsv_layout L = { opt.text_a_col, opt.text_b_col, opt.label_col, opt.id_col, opt.skip_header };
    if (!strcmp(opt.task, "cola")) { tsv_layout c = { 3, -1, 1, -1, 0 }, t = { 1, -1, -1, 0, 1 }; L = test_header ? t : c; }
    if (!strcmp(opt.task, "sst2")) { tsv_layout c = { 0, -1, 1, -1, 1 }, t = { 1, -1, -1, 0, 1 }; L = test_header ? t : c; }
    if (!strcmp(opt.task, "mrpc")) { tsv_layout c = { 3, 4, 0, -1, 1 }, t = { 3, 4, -1, 0, 1 }; L = test_header ? t : c; }
    return L;
}

static const char *default_metric(void) {
    if (opt.num_labels == 1) return "spearman";
    if (!strcmp(opt.task, "cola")) return "mcc";
    if (!strcmp(opt.task, "mrpc")) return "f1";
    return "accuracy";
}

// ----------------------------------------------------------------------------
// datasets: every example tokenized once, [CLS] A [SEP] (B [SEP]), at most T tokens

typedef struct {
    const char *path;
    int n, cap;
    size_t *start;               // (n+1) token offsets
    int32_t *ids, *types;        // tokens of all examples back to back
    size_t ntok, tokcap;
    char **label_str;            // (n) as written in the file, NULL if none
    int32_t *label;              // (n) index in the label list (classification)
    float *target;               // (n) regression targets
    char **id;                   // (n) example ids for predictions
    int *line;                   // (n) line numbers
    long truncated, empty, blank, first_cut_line;
    int pairs;                   // 1 if any example has a second sentence (segment 1)
    int longest;                 // tokens of the longest example before cutting
    file_format fmt;
} dataset;

typedef struct { int32_t *a, *b; int cap; } scratch;

// tokenizes into sc->a (into_b 0) or sc->b; a long text regrows both buffers (keeping what the other
// one holds), so callers read sc->a / sc->b afresh after every call, never a pointer saved before it
static int tokenize(const bert_vocab *v, const char *s, size_t n, int into_b, scratch *sc, const char *path, int line) {
    int count = bert_tokenize(v, opt.do_lower_case, s, n, into_b ? sc->b : sc->a, sc->cap);
    if (count > sc->cap) {   // a long text: grow both buffers and redo
        sc->cap = count;
        sc->a = (int32_t *)xrealloc(sc->a, (size_t)count * sizeof(int32_t));
        sc->b = (int32_t *)xrealloc(sc->b, (size_t)count * sizeof(int32_t));
        count = bert_tokenize(v, opt.do_lower_case, s, n, into_b ? sc->b : sc->a, sc->cap);
    }
    if (count < 0) die("%s:%d: %s", path, line, bert_last_error());
    return count;
}

// adds one example; text_b may be NULL. Returns 0 when it was skipped (no tokens, not a test file).
static int dataset_add(dataset *d, const bert_vocab *v, const char *a, size_t na_bytes, const char *b, size_t nb_bytes,
                       const char *label, const char *id, int line, int labelled, scratch *sc) {
    int na = tokenize(v, a, na_bytes, 0, sc, d->path, line), nb = b ? tokenize(v, b, nb_bytes, 1, sc, d->path, line) : 0;
    if (b) d->pairs = 1;
    const int32_t *pa = sc->a, *pb = sc->b;   // only now: the second call may have moved both
    if (na == 0 || (b && nb == 0)) {
        d->empty++;
        fprintf(stderr, "classify: warning: %s:%d: %s has no tokens (empty): %s\n", d->path, line,
                na == 0 ? "the sentence" : "the second sentence", labelled ? "skipped" : "predicted from [CLS] [SEP] alone");
        if (labelled) return 0;
    }
    int T = opt.max_seq_length, room = T - (b ? 3 : 2), full = na + nb + (b ? 3 : 2), cut = 0;
    if (full > d->longest) d->longest = full;
    while (na + nb > room) { if (na > nb) na--; else nb--; cut = 1; }   // the longer side loses its last token
    if (cut && !d->truncated++) d->first_cut_line = line;
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 1024;
        d->start = (size_t *)xrealloc(d->start, (size_t)(d->cap + 1) * sizeof(size_t));
        d->label_str = (char **)xrealloc(d->label_str, (size_t)d->cap * sizeof(char *));
        d->id = (char **)xrealloc(d->id, (size_t)d->cap * sizeof(char *));
        d->line = (int *)xrealloc(d->line, (size_t)d->cap * sizeof(int));
    }
    if (d->ntok + (size_t)T > d->tokcap) {
        d->tokcap = 2 * (d->ntok + (size_t)T);
        d->ids = (int32_t *)xrealloc(d->ids, d->tokcap * sizeof(int32_t));
        d->types = (int32_t *)xrealloc(d->types, d->tokcap * sizeof(int32_t));
    }
    int32_t *ids = d->ids + d->ntok, *types = d->types + d->ntok;
    int n = 0;
    ids[n] = v->cls_id; types[n++] = 0;
    for (int i = 0; i < na; i++) { ids[n] = pa[i]; types[n++] = 0; }
    ids[n] = v->sep_id; types[n++] = 0;
    if (b) {
        for (int i = 0; i < nb; i++) { ids[n] = pb[i]; types[n++] = 1; }
        ids[n] = v->sep_id; types[n++] = 1;
    }
    d->start[d->n] = d->ntok;
    d->ntok += (size_t)n;
    d->start[d->n + 1] = d->ntok;
    d->label_str[d->n] = label ? strdup(label) : NULL;
    d->id[d->n] = strdup(id);
    d->line[d->n] = line;
    d->n++;
    return 1;
}

static void trim(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t')) { (*s)++; (*n)--; }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

static void read_tsv(dataset *d, const bert_vocab *v, const char *text, size_t len, int labelled, scratch *sc) {
    const char *p = skip_bom(text, &len), *end = p + len, *s;
    size_t n;
    const char *f[MAX_COLS];
    size_t fl[MAX_COLS];
    int ncols = -1, first_line = 0, row = 0;
    tsv_layout L = { 0, 0, 0, 0, 0 };
    for (int line = 1; (s = next_line(&p, end, &n)) != NULL; line++) {
        if (is_blank(s, n)) { d->blank++; continue; }
        int k = 0;
        for (const char *c = s, *e = s + n;; k++) {   // split on tabs (GLUE files have no quoting)
            if (k == MAX_COLS) die("%s:%d: over %d tab-separated columns", d->path, line, MAX_COLS);
            const char *t = (const char *)memchr(c, '\t', (size_t)(e - c));
            f[k] = c; fl[k] = (size_t)((t ? t : e) - c);
            if (!t) { k++; break; }
            c = t + 1;
        }
        if (ncols < 0) {   // the first row fixes the column count and, for GLUE tasks, the layout
            ncols = k; first_line = line;
            L = task_layout(fl[0] == 5 && !memcmp(f[0], "index", 5));
            int need = L.a > L.b ? L.a : L.b;
            if (labelled && L.label > need) need = L.label;
            if (L.id > need) need = L.id;
            if (labelled && L.label < 0) die("%s: a test file (header 'index'): it has no labels", d->path);
            if (k <= need) die("%s:%d: %d tab-separated columns, but --task %s needs column %d (0-based)", d->path, line, k, opt.task, need);
            if (L.header) continue;
        }
        if (k != ncols) die("%s:%d: %d tab-separated columns, expected %d (as on line %d)", d->path, line, k, ncols, first_line);
        char label[256] = "", id[256];
        if (labelled) {
            const char *ls = f[L.label];
            size_t ln = fl[L.label];
            trim(&ls, &ln);
            if (!ln) die("%s:%d: empty label (column %d)", d->path, line, L.label);
            if (ln >= sizeof label) die("%s:%d: a label longer than %d bytes (column %d)", d->path, line, (int)sizeof label - 1, L.label);
            snprintf(label, sizeof label, "%.*s", (int)ln, ls);
        }
        if (L.id >= 0) {
            const char *is = f[L.id];
            size_t in = fl[L.id];
            trim(&is, &in);
            if (in >= sizeof id) die("%s:%d: an id longer than %d bytes (column %d)", d->path, line, (int)sizeof id - 1, L.id);
            snprintf(id, sizeof id, "%.*s", (int)in, is);
        }
        else snprintf(id, sizeof id, "%d", row);
        row++;
        dataset_add(d, v, f[L.a], fl[L.a], L.b >= 0 ? f[L.b] : NULL, L.b >= 0 ? fl[L.b] : 0,
                    label[0] ? label : NULL, id, line, labelled, sc);
    }
}

static void read_json(dataset *d, const bert_vocab *v, const char *text, size_t len, int labelled, scratch *sc) {
    const char *p = skip_bom(text, &len), *end = p + len, *s;
    size_t n;
    int row = 0;
    for (int line = 1; (s = next_line(&p, end, &n)) != NULL; line++) {
        if (is_blank(s, n)) { d->blank++; continue; }
        bert_json *j;
        if (bert_json_parse(&j, s, n)) die("%s:%d: malformed JSON: %s", d->path, line, bert_last_error());
        if (j->type != BERT_JSON_OBJECT) die("%s:%d: not a JSON object", d->path, line);
        const bert_json *a = bert_json_get(j, opt.text_a_key), *b = opt.text_b_key ? bert_json_get(j, opt.text_b_key) : NULL;
        if (!a || a->type != BERT_JSON_STRING) die("%s:%d: no \"%s\" string", d->path, line, opt.text_a_key);
        if (opt.text_b_key && (!b || b->type != BERT_JSON_STRING)) die("%s:%d: no \"%s\" string", d->path, line, opt.text_b_key);
        char label[256] = "", id[256];
        const bert_json *lj = bert_json_get(j, opt.label_key);
        int got = lj ? json_scalar(lj, label, sizeof label) : 1;
        if (got < 0) die("%s:%d: a \"%s\" longer than %d bytes", d->path, line, opt.label_key, (int)sizeof label - 1);
        if (!got) die("%s:%d: \"%s\" is neither a string nor a number", d->path, line, opt.label_key);
        if (labelled && !label[0]) die("%s:%d: no \"%s\"", d->path, line, opt.label_key);
        if (!labelled) label[0] = 0;
        got = json_scalar(bert_json_get(j, opt.id_key), id, sizeof id);
        if (got < 0) die("%s:%d: an \"%s\" longer than %d bytes", d->path, line, opt.id_key, (int)sizeof id - 1);
        if (!got) snprintf(id, sizeof id, "%d", row);
        row++;
        const bert_json *desc = bert_json_get(j, "label_desc");
        if (label[0] && desc && desc->type == BERT_JSON_STRING) table_add(&data_descs, label, desc->string, d->path);   // CLUE's description
        dataset_add(d, v, a->string, a->string_len, b ? b->string : NULL, b ? b->string_len : 0,
                    label[0] ? label : NULL, id, line, labelled, sc);
        bert_json_free(j);
    }
}

// labelled: a train/dev file (labels required, empty sentences skipped); else a test file
static void dataset_load(dataset *d, const char *path, const bert_vocab *v, int labelled, scratch *sc) {
    memset(d, 0, sizeof *d);
    d->path = path;
    d->fmt = task_format();
    size_t len;
    char *text = read_whole(path, &len);
    if (d->fmt == FMT_JSON) read_json(d, v, text, len, labelled, sc);
    else read_tsv(d, v, text, len, labelled, sc);
    free(text);
    if (!d->n) die("%s: no examples", path);
    printf("%s: %d examples", path, d->n);
    if (d->empty) printf(", %ld with an empty sentence %s", d->empty, labelled ? "skipped" : "kept");
    if (d->blank) printf(", %ld blank lines ignored", d->blank);
    printf("\n");
    if (d->truncated)
        printf("%s: %ld of %d examples were longer than --max_seq_length %d and were cut (longest %d tokens; first at line %ld)\n",
               path, d->truncated, d->n, opt.max_seq_length, d->longest, d->first_cut_line);
}

// label strings -> indices (or regression targets); an unknown label stops with file:line
static void dataset_resolve(dataset *d) {
    d->label = (int32_t *)xrealloc(NULL, (size_t)d->n * sizeof(int32_t));
    d->target = (float *)xrealloc(NULL, (size_t)d->n * sizeof(float));
    for (int i = 0; i < d->n; i++) {
        const char *s = d->label_str[i];
        d->label[i] = -1; d->target[i] = 0.0f;
        if (!s) continue;
        if (opt.num_labels == 1) {
            char *e;
            double x = strtod(s, &e);
            if (*e || e == s || !isfinite(x)) die("%s:%d: regression target '%s' is not a number", d->path, d->line[i], s);
            d->target[i] = (float)x;
        } else if ((d->label[i] = label_find(s)) < 0) {
            die("%s:%d: label '%s' is not one of the %d labels from %s (%s)", d->path, d->line[i], s, labels.n,
                labels.source, labels_summary());
        }
    }
}

static void dataset_free(dataset *d) {
    for (int i = 0; i < d->n; i++) { free(d->label_str[i]); free(d->id[i]); }
    free(d->start); free(d->ids); free(d->types); free(d->label_str); free(d->label); free(d->target);
    free(d->id); free(d->line);
    memset(d, 0, sizeof *d);
}

// ----------------------------------------------------------------------------
// batches: examples padded to the longest of the batch

typedef struct { int B, T; int32_t *ids, *types, *mask, *labels; float *targets; } batch;

static void batch_alloc(batch *b, int B) {
    size_t bt = (size_t)B * opt.max_seq_length;
    b->ids = (int32_t *)xrealloc(NULL, 3 * bt * sizeof(int32_t));
    b->types = b->ids + bt; b->mask = b->types + bt;
    b->labels = (int32_t *)xrealloc(NULL, (size_t)B * sizeof(int32_t));
    b->targets = (float *)xrealloc(NULL, (size_t)B * sizeof(float));
}

static void batch_free(batch *b) { free(b->ids); free(b->labels); free(b->targets); }

static void batch_load(batch *b, const dataset *d, const int *idx, int B, int pad_id) {
    int T = 0;
    for (int e = 0; e < B; e++) { int n = (int)(d->start[idx[e] + 1] - d->start[idx[e]]); if (n > T) T = n; }
    b->B = B; b->T = T;
    for (int e = 0; e < B; e++) {
        size_t s = d->start[idx[e]];
        int n = (int)(d->start[idx[e] + 1] - s);
        for (int t = 0; t < T; t++) {
            size_t k = (size_t)e * T + t;
            b->ids[k] = t < n ? d->ids[s + t] : pad_id;
            b->types[k] = t < n ? d->types[s + t] : 0;
            b->mask[k] = t < n;
        }
        b->labels[e] = d->label ? d->label[idx[e]] : -1;
        b->targets[e] = d->target ? d->target[idx[e]] : 0.0f;
    }
}

// ----------------------------------------------------------------------------
// metrics (tests/ref/metrics_ref.py computes the same in Python for tests/test_classify.c)

typedef struct {
    int n, K, regression;
    double accuracy, macro_f1, binary_f1, mcc;   // classification; binary_f1 NaN unless K == 2
    double pearson, spearman, mse;               // regression; a correlation is NaN when a side is constant
    double loss, majority_acc;                   // loss NaN when not computed
    int majority;
    long *confusion;                             // (K,K) rows gold, columns predicted
} metrics;

// accuracy, macro-F1 over the labels that occur in gold or predictions (sklearn's average="macro"),
// F1 of label 1 when K = 2, and MCC in its multiclass form (Gorodkin's R_K, sklearn's formula)
static metrics class_metrics(const int *gold, const int *pred, int n, int K) {
    metrics r;
    memset(&r, 0, sizeof r);
    r.n = n; r.K = K; r.loss = NAN; r.binary_f1 = NAN; r.pearson = r.spearman = r.mse = NAN;
    r.confusion = (long *)calloc((size_t)K * K + 1, sizeof(long));
    long *t = (long *)calloc((size_t)K + 1, sizeof(long)), *p = (long *)calloc((size_t)K + 1, sizeof(long)), correct = 0;
    if (!r.confusion || !t || !p) die("out of memory");
    for (int i = 0; i < n; i++) { r.confusion[(size_t)gold[i] * K + pred[i]]++; t[gold[i]]++; p[pred[i]]++; correct += gold[i] == pred[i]; }
    r.accuracy = n ? (double)correct / n : 0.0;
    int present = 0;
    double f1sum = 0.0;
    for (int k = 0; k < K; k++) {
        if (!t[k] && !p[k]) continue;
        long tp = r.confusion[(size_t)k * K + k];
        f1sum += 2.0 * tp / (double)(t[k] + p[k]);   // 2tp / (2tp + fp + fn)
        present++;
    }
    r.macro_f1 = present ? f1sum / present : 0.0;
    if (K == 2) { long tp = r.confusion[3]; r.binary_f1 = t[1] + p[1] ? 2.0 * tp / (double)(t[1] + p[1]) : 0.0; }
    double s = n, c = (double)correct, pt = 0, pp = 0, tt = 0;
    for (int k = 0; k < K; k++) { pt += (double)p[k] * t[k]; pp += (double)p[k] * p[k]; tt += (double)t[k] * t[k]; }
    double den = sqrt((s * s - pp) * (s * s - tt));
    r.mcc = den > 0 ? (c * s - pt) / den : 0.0;
    for (int k = 1; k < K; k++) if (t[k] > t[r.majority]) r.majority = k;
    r.majority_acc = n ? (double)t[r.majority] / n : 0.0;
    free(t); free(p);
    return r;
}

static double pearson(const double *x, const double *y, int n) {
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= n; my /= n;
    for (int i = 0; i < n; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) * (x[i] - mx); syy += (y[i] - my) * (y[i] - my); }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

static const double *rank_keys;
static int rank_cmp(const void *a, const void *b) {
    double x = rank_keys[*(const int *)a], y = rank_keys[*(const int *)b];
    return (x > y) - (x < y);
}

// 1-based ranks, ties sharing the average of their positions (scipy's rankdata "average")
static void ranks(const double *x, double *r, int n) {
    int *order = (int *)malloc((size_t)n * sizeof(int));
    if (!order) die("out of memory");
    for (int i = 0; i < n; i++) order[i] = i;
    rank_keys = x;
    qsort(order, (size_t)n, sizeof(int), rank_cmp);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && x[order[j + 1]] == x[order[i]]) j++;
        for (int k = i; k <= j; k++) r[order[k]] = 0.5 * (i + j) + 1.0;
        i = j + 1;
    }
    free(order);
}

static metrics reg_metrics(const double *gold, const double *pred, int n) {
    metrics r;
    memset(&r, 0, sizeof r);
    r.n = n; r.regression = 1; r.loss = NAN; r.binary_f1 = NAN;
    double *rg = (double *)malloc((size_t)n * sizeof(double) + 1), *rp = (double *)malloc((size_t)n * sizeof(double) + 1);
    if (!rg || !rp) die("out of memory");
    r.pearson = n > 1 ? pearson(gold, pred, n) : NAN;
    ranks(gold, rg, n);
    ranks(pred, rp, n);
    r.spearman = n > 1 ? pearson(rg, rp, n) : NAN;
    for (int i = 0; i < n; i++) r.mse += (pred[i] - gold[i]) * (pred[i] - gold[i]) / n;
    free(rg); free(rp);
    return r;
}

// the value --metric selects (the checkpoint with the highest is kept)
static double metric_value(const metrics *r, const char *name) {
    if (!strcmp(name, "all")) name = default_metric();
    if (!strcmp(name, "spearman")) return r->spearman;
    if (!strcmp(name, "mcc")) return r->mcc;
    if (!strcmp(name, "f1")) return r->K == 2 ? r->binary_f1 : r->macro_f1;
    return r->accuracy;
}

static void metrics_json(FILE *f, const metrics *r) {
    fprintf(f, "{\"n\": %d", r->n);
    if (r->regression) {
        fprintf(f, ", \"pearson\": "); json_number(f, r->pearson);
        fprintf(f, ", \"spearman\": "); json_number(f, r->spearman);
        fprintf(f, ", \"mse\": "); json_number(f, r->mse);
    } else {
        fprintf(f, ", \"labels\": [");
        for (int k = 0; k < r->K; k++) { if (k) fprintf(f, ", "); json_string(f, labels.name[k]); }
        fprintf(f, "], \"accuracy\": "); json_number(f, r->accuracy);
        fprintf(f, ", \"macro_f1\": "); json_number(f, r->macro_f1);
        fprintf(f, ", \"binary_f1\": "); json_number(f, r->binary_f1);
        fprintf(f, ", \"mcc\": "); json_number(f, r->mcc);
        fprintf(f, ", \"majority_label\": "); json_string(f, labels.name[r->majority]);
        fprintf(f, ", \"majority_accuracy\": "); json_number(f, r->majority_acc);
        fprintf(f, ", \"confusion\": [");
        for (int g = 0; g < r->K; g++) {
            fprintf(f, "%s[", g ? ", " : "");
            for (int p = 0; p < r->K; p++) fprintf(f, p ? ", %ld" : "%ld", r->confusion[(size_t)g * r->K + p]);
            fprintf(f, "]");
        }
        fprintf(f, "]");
    }
    if (isfinite(r->loss)) { fprintf(f, ", \"loss\": "); json_number(f, r->loss); }
    fprintf(f, "}");
}

static void metrics_print(const metrics *r, const char *what) {
    if (r->regression) {
        printf("%s: %d examples | pearson %.4f | spearman %.4f | mse %.4f", what, r->n, r->pearson, r->spearman, r->mse);
        if (isfinite(r->loss)) printf(" | loss %.4f", r->loss);
        printf("\n");
        return;
    }
    printf("%s: %d examples | accuracy %.4f | macro-F1 %.4f", what, r->n, r->accuracy, r->macro_f1);
    if (r->K == 2) printf(" | F1 (label %s) %.4f", labels.name[1], r->binary_f1);
    printf(" | MCC %.4f", r->mcc);
    if (isfinite(r->loss)) printf(" | loss %.4f", r->loss);
    printf("\n  majority-class baseline (always '%s'): accuracy %.4f, MCC 0\n", labels.name[r->majority], r->majority_acc);
    printf("  confusion matrix (rows gold, columns predicted):\n  %12s", "");
    for (int p = 0; p < r->K; p++) printf(" %7.7s", labels.name[p]);
    printf("\n");
    for (int g = 0; g < r->K; g++) {
        printf("  %12.12s", labels.name[g]);
        for (int p = 0; p < r->K; p++) printf(" %7ld", r->confusion[(size_t)g * r->K + p]);
        printf("\n");
    }
}

// --eval_predictions FILE: "gold<TAB>predicted" lines -> the metrics as one JSON line
static int eval_predictions(const char *path) {
    size_t len;
    char *text = read_whole(path, &len);
    const char *p = skip_bom(text, &len), *end = p + len, *s;
    size_t n;
    int count = 0, cap = 0;
    char **gold = NULL, **pred = NULL;
    for (int line = 1; (s = next_line(&p, end, &n)) != NULL; line++) {
        if (is_blank(s, n)) continue;
        const char *tab = (const char *)memchr(s, '\t', n);
        if (!tab || memchr(tab + 1, '\t', (size_t)(s + n - tab - 1)))
            die("%s:%d: expected 2 tab-separated columns (gold, predicted)", path, line);
        if (count == cap) {
            cap = cap ? 2 * cap : 256;
            gold = (char **)xrealloc(gold, (size_t)cap * sizeof(char *));
            pred = (char **)xrealloc(pred, (size_t)cap * sizeof(char *));
        }
        const char *g = s, *q = tab + 1;
        size_t gn = (size_t)(tab - s), qn = (size_t)(s + n - q);
        trim(&g, &gn); trim(&q, &qn);
        if (!gn || !qn) die("%s:%d: an empty label", path, line);
        gold[count] = xstrndup(g, gn); pred[count] = xstrndup(q, qn);
        if (opt.num_labels == 1) {
            char *e1, *e2;
            double a = strtod(gold[count], &e1), b = strtod(pred[count], &e2);
            if (*e1 || *e2 || !isfinite(a) || !isfinite(b)) die("%s:%d: regression values must be numbers", path, line);
        }
        count++;
    }
    if (!count) die("%s: no lines", path);
    metrics r;
    if (opt.num_labels == 1) {
        double *a = (double *)xrealloc(NULL, (size_t)count * sizeof(double)), *b = (double *)xrealloc(NULL, (size_t)count * sizeof(double));
        for (int i = 0; i < count; i++) { a[i] = strtod(gold[i], NULL); b[i] = strtod(pred[i], NULL); }
        r = reg_metrics(a, b, count);
        free(a); free(b);
    } else {
        if (opt.label_list) labels_from_list(opt.label_list);
        else {
            for (int i = 0; i < count; i++) { label_add(gold[i], NULL, path); label_add(pred[i], NULL, path); }
            labels_sort();
            labels.source = path;
        }
        int *a = (int *)xrealloc(NULL, (size_t)count * sizeof(int)), *b = (int *)xrealloc(NULL, (size_t)count * sizeof(int));
        for (int i = 0; i < count; i++) {
            a[i] = label_find(gold[i]); b[i] = label_find(pred[i]);
            if (a[i] < 0 || b[i] < 0) die("%s: label '%s' is not in --label_list (%s)", path, a[i] < 0 ? gold[i] : pred[i], labels_summary());
        }
        r = class_metrics(a, b, count, labels.n);
        free(a); free(b);
    }
    metrics_json(stdout, &r);
    printf("\n");
    for (int i = 0; i < count; i++) { free(gold[i]); free(pred[i]); }
    free(gold); free(pred); free(r.confusion); free(text);
    return 0;
}

// ----------------------------------------------------------------------------
// model: encoder (random, or --init), classifier head; checkpoints with the label list inside

static bert_model *make_model(int K, int *from_file) {
    bert_config cfg, given;
    if (opt.config && bert_config_load(&given, opt.config)) die("%s", bert_last_error());
    *from_file = 0;
    if (opt.init) {
        bert_st st;
        if (bert_st_open(&st, opt.init)) die("%s", bert_last_error());
        if (bert__checkpoint_config(&cfg, &st, opt.init, opt.config ? &given : NULL)) die("%s", bert_last_error());
        *from_file = bert_st_find(&st, "classifier.weight") != NULL;
        bert_st_close(&st);
    } else if (opt.config) {
        cfg = given;
    } else {
        die("give --init (pretrained or fine-tuned weights) or --config (random init)");
    }
    bert_model *m = bert_model_create(&cfg, (uint64_t)opt.seed);
    if (!m || bert_classifier_add(m, K, (uint64_t)opt.seed)) die("%s", bert_last_error());
    if (opt.init) {
        int missing = 0;
        if (bert_model_load_encoder(m, opt.init, &missing)) die("%s", bert_last_error());
        printf("init: %s (%s)\n", opt.init, *from_file ? "with its classifier" : "encoder; the classifier starts from the seed's init");
    }
    if (m->config.max_position_embeddings < opt.max_seq_length)
        die("--max_seq_length %d exceeds the model's max_position_embeddings %d", opt.max_seq_length, m->config.max_position_embeddings);
    return m;
}

// a fine-tuned model's label list (metadata "labels" of --init), if it has one
static void labels_from_checkpoint(const char *path) {
    bert_st st;
    if (bert_st_open(&st, path)) die("%s", bert_last_error());
    const char *s = bert_st_meta(&st, "labels"), *d = bert_st_meta(&st, "label_descs"), *k = bert_st_meta(&st, "num_labels");
    if (k && !strcmp(k, "1") && !opt.num_labels) opt.num_labels = 1;
    bert_json *j = NULL, *jd = NULL;
    if (s && !bert_json_parse(&j, s, strlen(s)) && j->type == BERT_JSON_ARRAY) {
        if (d && bert_json_parse(&jd, d, strlen(d))) jd = NULL;
        for (int i = 0; i < j->count; i++) {
            if (j->child[i].type != BERT_JSON_STRING) die("%s: bad \"labels\" metadata", path);
            const bert_json *dj = jd && jd->type == BERT_JSON_ARRAY && i < jd->count ? &jd->child[i] : NULL;
            label_add(j->child[i].string, dj && dj->type == BERT_JSON_STRING ? dj->string : NULL, path);
        }
        labels.source = path;
    }
    bert_json_free(j);
    bert_json_free(jd);
    bert_st_close(&st);
}

static void labels_json(FILE *f, int descs) {   // ["0", "1"], or the descriptions (null where none)
    fputc('[', f);
    for (int i = 0; i < labels.n; i++) {
        if (i) fprintf(f, ", ");
        if (descs && !labels.desc[i]) fprintf(f, "null");
        else json_string(f, descs ? labels.desc[i] : labels.name[i]);
    }
    fputc(']', f);
}

// a string of what labels_json writes (for the checkpoint's metadata)
static char *labels_string(int descs) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) die("out of memory");
    labels_json(f, descs);
    fclose(f);
    return buf;
}

// the model as HF BertForSequenceClassification names (bert.*, classifier.*, and the pretraining heads
// bert.h keeps), config and label list in the metadata; written to PATH.tmp and renamed
static void save_model(const bert_model *m, const char *path) {
    char config[1024], k[16];
    if (bert_config_to_json(&m->config, config, sizeof config) < 0) die("config too long");
    bert_st_entry *e = (bert_st_entry *)calloc((size_t)m->num_tensors, sizeof *e);
    if (!e) die("out of memory");
    for (int i = 0; i < m->num_tensors; i++) {
        e[i].name = m->names[i];
        e[i].dtype = BERT_DT_F32;
        e[i].ndim = m->tensors[i].ndim;
        for (int d = 0; d < m->tensors[i].ndim; d++) e[i].shape[d] = m->tensors[i].shape[d];
        e[i].data = m->tensors[i].data;
    }
    snprintf(k, sizeof k, "%d", bert_classifier_num_labels(m));
    char *names = labels_string(0), *descs = labels_string(1);
    const char *meta[] = { "format", "bert.h", "format_version", "1", "config", config, "num_labels", k,
                           "labels", names, "label_descs", descs, "task", opt.task };
    if (bert_st_save(path, e, m->num_tensors, meta, 7)) die("saving %s", bert_last_error());
    free(e); free(names); free(descs);
}

// OUT/config.json for transformers: the BERT config plus the head's id2label / label2id
static void save_hf_config(const bert_model *m, const char *path) {
    char config[1024];
    bert_config_to_json(&m->config, config, sizeof config);
    FILE *f = fopen(path, "w");
    if (!f) die("%s: %s", path, strerror(errno));
    config[strlen(config) - 1] = 0;   // drop the closing brace, then add the head's keys
    int K = bert_classifier_num_labels(m);
    fprintf(f, "%s, \"model_type\": \"bert\", \"architectures\": [\"BertForSequenceClassification\"], \"problem_type\": \"%s\"",
            config, K == 1 ? "regression" : "single_label_classification");
    fprintf(f, ", \"num_labels\": %d, \"id2label\": {", K);
    for (int i = 0; i < K; i++) { fprintf(f, "%s\"%d\": ", i ? ", " : "", i); json_string(f, K == 1 ? "LABEL_0" : labels.name[i]); }
    fprintf(f, "}, \"label2id\": {");
    for (int i = 0; i < K; i++) { if (i) fprintf(f, ", "); json_string(f, K == 1 ? "LABEL_0" : labels.name[i]); fprintf(f, ": %d", i); }
    fprintf(f, "}}\n");
    if (fclose(f)) die("%s: write failed", path);
}

// ----------------------------------------------------------------------------
// evaluation and prediction: dropout off, no tape, batches in file order

typedef struct { int *pred; float *value; double loss; } outputs;

static outputs run_model(bert_ctx *ctx, bert_model *m, const dataset *d, int with_labels, int pad_id) {
    int K = bert_classifier_num_labels(m), B = opt.eval_batch_size, idx[4096];
    outputs o = { (int *)xrealloc(NULL, (size_t)d->n * sizeof(int)), (float *)xrealloc(NULL, (size_t)d->n * sizeof(float)), 0.0 };
    batch b;
    batch_alloc(&b, B);
    int saved_training = ctx->training, saved_grad = ctx->grad_enabled;
    ctx->training = 0; ctx->grad_enabled = 0;
    for (int i = 0; i < d->n; i += B) {
        int nb = d->n - i < B ? d->n - i : B;
        for (int e = 0; e < nb; e++) idx[e] = i + e;
        batch_load(&b, d, idx, nb, pad_id);
        bert_ctx_reset(ctx, 0);
        bert_classify_out r = bert_classify_forward(ctx, m, b.ids, b.types, b.mask, nb, b.T,
                                                    with_labels && K > 1 ? b.labels : NULL, with_labels && K == 1 ? b.targets : NULL);
        if (r.loss) o.loss += (double)r.loss->data[0] * nb;
        for (int e = 0; e < nb; e++) {
            const float *row = r.logits->data + (size_t)e * K;
            int best = 0;
            for (int k = 1; k < K; k++) if (row[k] > row[best]) best = k;   // the first of equal scores
            o.pred[i + e] = best;
            o.value[i + e] = row[0];
        }
    }
    o.loss /= d->n;
    ctx->training = saved_training; ctx->grad_enabled = saved_grad;
    batch_free(&b);
    return o;
}

static metrics evaluate(bert_ctx *ctx, bert_model *m, const dataset *d, int pad_id) {
    outputs o = run_model(ctx, m, d, 1, pad_id);
    metrics r;
    if (opt.num_labels == 1) {
        double *g = (double *)xrealloc(NULL, (size_t)d->n * sizeof(double)), *p = (double *)xrealloc(NULL, (size_t)d->n * sizeof(double));
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
    outputs o = run_model(ctx, m, d, 0, pad_id);
    FILE *f = fopen(path, "w");
    if (!f) die("%s: %s", path, strerror(errno));
    if (!json) fprintf(f, "index\tprediction\n");   // GLUE's submission layout
    for (int i = 0; i < d->n; i++) {
        const char *id = d->id[i];
        int numeric = is_integer(id) && id[0] != '-' && (id[0] != '0' || !id[1]);
        if (!json) {
            if (opt.num_labels == 1) fprintf(f, "%s\t%.6g\n", id, (double)o.value[i]);
            else fprintf(f, "%s\t%s\n", id, labels.name[o.pred[i]]);
            continue;
        }
        fprintf(f, "{\"id\": ");   // CLUE's submission layout: {"id": 0, "label": "102", "label_desc": ...}
        if (numeric) fprintf(f, "%s", id); else json_string(f, id);
        if (opt.num_labels == 1) fprintf(f, ", \"label\": %.6g}\n", (double)o.value[i]);
        else {
            fprintf(f, ", \"label\": "); json_string(f, labels.name[o.pred[i]]);
            if (labels.desc[o.pred[i]]) { fprintf(f, ", \"label_desc\": "); json_string(f, labels.desc[o.pred[i]]); }
            fprintf(f, "}\n");
        }
    }
    if (fclose(f)) die("%s: write failed", path);
    printf("predictions: %d examples of %s -> %s\n", d->n, d->path, path);
    free(o.pred); free(o.value);
}

// ----------------------------------------------------------------------------
// main

static void permutation(int *perm, int n, uint64_t epoch) {
    for (int i = 0; i < n; i++) perm[i] = i;
    uint64_t stream = bert_rng_stream((uint64_t)opt.seed, epoch, SHUFFLE_SITE);
    for (int i = n - 1; i > 0; i--) {   // Fisher-Yates
        int j = (int)(bert_rng_bits(stream, (uint64_t)i) % (uint64_t)(i + 1));
        int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
}

static void check_options(void) {
    static const char *const tasks[] = { "cola", "sst2", "mrpc", "tnews", "tsv", "json" };
    static const char *const mets[] = { "accuracy", "f1", "mcc", "spearman", "all" };
    int ok = 0;
    if (!opt.task) { usage(stderr); die("--task is required (cola, sst2, mrpc, tnews, tsv or json)"); }
    for (int i = 0; i < 6; i++) ok |= !strcmp(opt.task, tasks[i]);
    if (!ok) die("--task: '%s' is not one of cola, sst2, mrpc, tnews, tsv, json", opt.task);
    if (!opt.metric) opt.metric = default_metric();
    ok = 0;
    for (int i = 0; i < 5; i++) ok |= !strcmp(opt.metric, mets[i]);
    if (!ok) die("--metric: '%s' is not one of accuracy, f1, mcc, spearman, all", opt.metric);
    if (opt.num_labels == 1 && strcmp(opt.metric, "spearman") && strcmp(opt.metric, "all")) die("--metric %s needs classification; regression (--num_labels 1) has spearman", opt.metric);
    if (opt.num_labels != 1 && !strcmp(opt.metric, "spearman")) die("--metric spearman needs regression (--num_labels 1)");
    if (!opt.do_train && !opt.do_eval && !opt.do_predict) die("nothing to do: give --do_train, --do_eval and/or --do_predict");
    if (opt.do_train && !opt.train_file) die("--do_train needs --train_file");
    if (opt.do_eval && !opt.dev_file) die("--do_eval needs --dev_file");
    if (opt.do_predict && !opt.test_file) die("--do_predict needs --test_file");
    if (!opt.vocab) die("--vocab is required");
    if (opt.num_labels < 0) die("--num_labels must be >= 0");
    if (opt.max_seq_length < 3 || opt.batch_size < 1 || opt.eval_batch_size < 1 || opt.eval_batch_size > 4096) die("--max_seq_length >= 3, --batch_size >= 1, 1 <= --eval_batch_size <= 4096 please");
    if (opt.epochs < 1 || opt.max_steps < 0 || opt.eval_every < 0 || opt.print_every < 1) die("--epochs >= 1, --max_steps >= 0, --eval_every >= 0, --print_every >= 1 please");
    if (!(opt.lr >= 0) || opt.warmup_proportion < 0 || opt.warmup_proportion > 1) die("--lr >= 0 and --warmup_proportion in [0,1] please");
    if (strcmp(opt.optimizer, "adamw_gb") && strcmp(opt.optimizer, "adamw")) die("--optimizer: '%s' is not adamw_gb or adamw", opt.optimizer);
    if (opt.predict_format && strcmp(opt.predict_format, "json") && strcmp(opt.predict_format, "tsv")) die("--predict_format: '%s' is not json or tsv", opt.predict_format);
    if (!strcmp(opt.task, "tsv") && (opt.text_a_col < 0 || opt.label_col < 0)) die("--text_a_col and --label_col must be >= 0");
}

// the label list, in order of precedence: --num_labels 1 (none), --labels_file, --label_list, the
// --init model's, the training file's labels (sorted)
static void setup_labels(const dataset *train) {
    if (opt.num_labels == 1) return;
    if (opt.labels_file) labels_from_file(opt.labels_file);
    else if (opt.label_list) labels_from_list(opt.label_list);
    if (!labels.n && opt.init) labels_from_checkpoint(opt.init);
    if (opt.num_labels == 1) { labels.n = 0; return; }   // the checkpoint is a regression model
    if (!labels.n && train) {
        for (int i = 0; i < train->n; i++) label_add(train->label_str[i], NULL, train->path);
        labels_sort();
        labels.source = train->path;
    }
    if (!labels.n) die("no label list: give --labels_file or --label_list, or --init a model fine-tuned by classify");
    for (int i = 0; i < labels.n; i++) {   // descriptions the data gave (TNEWS's label_desc)
        int k = table_find(&data_descs, labels.name[i]);
        if (!labels.desc[i] && k >= 0 && data_descs.desc[k]) labels.desc[i] = strdup(data_descs.desc[k]);
    }
    if (labels.n < 2) die("%s: a single label ('%s'): classification needs at least 2 (or --num_labels 1 for regression)", labels.source, labels.name[0]);
    if (opt.num_labels && opt.num_labels != labels.n) die("--num_labels %d, but %s has %d labels", opt.num_labels, labels.source, labels.n);
    opt.num_labels = labels.n;
}

int main(int argc, char **argv) {
    double t_start = bert_time_s();
    int rc = bert_flags_parse(flags, NFLAGS, argc, argv);
    if (rc == 1) { usage(stdout); return 0; }
    if (rc) die("%s", bert_last_error());
    if (opt.eval_predictions) return eval_predictions(opt.eval_predictions);
    check_options();
#ifdef _OPENMP
    if (opt.threads > 0) omp_set_num_threads(opt.threads);
#endif
    if (mkdir(opt.out, 0777) != 0 && errno != EEXIST) die("%s: %s", opt.out, strerror(errno));
    bert_vocab *v = bert_vocab_load(opt.vocab);
    if (!v) die("%s", bert_last_error());
    if (v->cls_id < 0 || v->sep_id < 0) die("%s: no [CLS] or [SEP] token", opt.vocab);
    int pad_id = v->pad_id >= 0 ? v->pad_id : 0;

    // data, labels, model
    scratch sc = { (int32_t *)xrealloc(NULL, 4096 * sizeof(int32_t)), (int32_t *)xrealloc(NULL, 4096 * sizeof(int32_t)), 4096 };
    dataset train = {0}, dev = {0}, test = {0};
    if (opt.do_train) dataset_load(&train, opt.train_file, v, 1, &sc);
    if (opt.do_eval) dataset_load(&dev, opt.dev_file, v, 1, &sc);
    if (opt.do_predict) dataset_load(&test, opt.test_file, v, 0, &sc);
    setup_labels(opt.do_train ? &train : NULL);
    if (opt.do_train) dataset_resolve(&train);
    if (opt.do_eval) dataset_resolve(&dev);
    int K = opt.num_labels, from_file;
    bert_model *m = make_model(K, &from_file);
    if (m->config.vocab_size != v->size) die("%s has %d tokens but the model's vocab_size is %d", opt.vocab, v->size, m->config.vocab_size);
    const dataset *paired = train.pairs ? &train : dev.pairs ? &dev : test.pairs ? &test : NULL;
    if (paired && m->config.type_vocab_size < 2)
        die("%s: sentence pairs need type_vocab_size 2 or more; the model has %d", paired->path, m->config.type_vocab_size);
    if (!opt.do_train && !from_file) die("%s has no classifier.weight: fine-tune it first (--do_train)", opt.init ? opt.init : "the model");
    bert_ctx *ctx = bert_ctx_create((size_t)64 << 20);
    if (!ctx) die("out of memory for the activation arena");
    ctx->seed = (uint64_t)opt.seed;

    char path[4200], model_path[4200];
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", opt.out);
    snprintf(path, sizeof path, "%s/log.jsonl", opt.out);
    FILE *log = fopen(path, "w");
    if (!log) die("%s: %s", path, strerror(errno));
    fprintf(log, "{\"task\": \"%s\", \"num_labels\": %d, \"labels\": ", opt.task, K);
    labels_json(log, 0);
    fprintf(log, ", \"train\": %d, \"dev\": %d, \"test\": %d, \"truncated\": [%ld, %ld, %ld], \"skipped_empty\": [%ld, %ld], "
                 "\"max_seq_length\": %d, \"batch_size\": %d, \"lr\": %g, \"epochs\": %d, \"max_steps\": %d, \"seed\": %d, "
                 "\"init\": \"%s\", \"params\": %zu}\n",
            train.n, dev.n, test.n, train.truncated, dev.truncated, test.truncated, train.empty, dev.empty, opt.max_seq_length,
            opt.batch_size, (double)opt.lr, opt.epochs, opt.max_steps, opt.seed, opt.init ? opt.init : "random", m->num_params);

    metrics best;
    memset(&best, 0, sizeof best);
    int have_best = 0, best_step = 0;
    double t_train = 0, t_eval = 0;
    long steps_done = 0, skipped = 0;
    if (opt.do_train) {
        int B = opt.batch_size, per_epoch = (train.n + B - 1) / B;
        int total = opt.max_steps ? opt.max_steps : per_epoch * opt.epochs;
        bert_optim o = bert_optim_defaults(!strcmp(opt.optimizer, "adamw") ? BERT_OPTIM_ADAMW : BERT_OPTIM_ADAMW_GB);
        o.lr = opt.lr; o.total_steps = total; o.warmup_steps = (int)(opt.warmup_proportion * (float)total);
        o.weight_decay = opt.weight_decay; o.clip_norm = opt.clip_norm;
        if (bert_optim_init(&o, m)) die("%s", bert_last_error());
        char head[32];
        if (K == 1) snprintf(head, sizeof head, "regression (MSE)"); else snprintf(head, sizeof head, "%d labels", K);
        printf("classify: %s | %d train examples, %d steps (%d per epoch) | L=%d H=%d A=%d, %zu params | %s lr %g warmup %d | batch %d | T %d | %s | metric %s | sgemm %s\n",
               opt.task, train.n, total, per_epoch, m->config.num_hidden_layers, m->config.hidden_size,
               m->config.num_attention_heads, m->num_params, opt.optimizer, (double)o.lr, o.warmup_steps, B,
               opt.max_seq_length, head, opt.metric, bert_sgemm_kernel_name());
        fflush(stdout);
        int *perm = (int *)xrealloc(NULL, (size_t)train.n * sizeof(int));
        batch b;
        batch_alloc(&b, B);
        double t0 = bert_time_s(), loss_sum = 0;
        long examples = 0, hits = 0, seen = 0;
        for (int s = 0; s < total; s++) {
            int epoch = s / per_epoch, k = s % per_epoch;
            if (k == 0) permutation(perm, train.n, (uint64_t)epoch);
            int nb = train.n - k * B < B ? train.n - k * B : B;
            batch_load(&b, &train, perm + (size_t)k * B, nb, pad_id);
            bert_ctx_reset(ctx, (uint64_t)s);
            bert_model_zero_grad(m);
            bert_classify_out r = bert_classify_forward(ctx, m, b.ids, b.types, b.mask, nb, b.T, K > 1 ? b.labels : NULL, K == 1 ? b.targets : NULL);
            double lv = r.loss->data[0];
            int finite = isfinite(lv);
            if (finite) bert_backward(ctx, r.loss);
            if (finite && bert_optim_step(&o, m) == BERT_ERR_NONFINITE) finite = 0;
            if (!finite) {
                skipped++;
                fprintf(stderr, "classify: warning: NaN/Inf %s at step %d: update skipped\n", isfinite(lv) ? "gradients" : "loss", s + 1);
                fprintf(log, "{\"skipped_step\": %d}\n", s + 1);
                if (skipped >= 10) die("10 steps with NaN/Inf loss or gradients: stopping (lower --lr?)");
                continue;
            }
            steps_done++;
            examples += nb;
            loss_sum += lv * nb; seen += nb;
            if (K > 1)
                for (int e = 0; e < nb; e++) {
                    const float *row = r.logits->data + (size_t)e * K;
                    int best_k = 0;
                    for (int c = 1; c < K; c++) if (row[c] > row[best_k]) best_k = c;
                    hits += best_k == b.labels[e];
                }
            double elapsed = bert_time_s() - t0 - t_eval;
            fprintf(log, "{\"step\": %d, \"epoch\": %.4f, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"examples_per_s\": %.2f}\n",
                    s + 1, (double)(s + 1) / per_epoch, lv, (double)o.last_lr, (double)o.last_grad_norm, (double)examples / elapsed);
            if ((s + 1) % opt.print_every == 0 || s + 1 == total || s == 0) {
                char eta[32];
                bert_format_duration(eta, sizeof eta, elapsed / (s + 1) * (total - s - 1));
                printf("step %5d/%d | epoch %d | loss %.4f", s + 1, total, epoch + 1, loss_sum / seen);
                if (K > 1) printf(" | acc %.3f", (double)hits / seen);
                printf(" | lr %.2e | |g| %.3f | %.1f ex/s | ETA %s\n", (double)o.last_lr, (double)o.last_grad_norm, (double)examples / elapsed, eta);
                fflush(stdout);
                loss_sum = 0; seen = 0; hits = 0;
            }
            int epoch_end = k == per_epoch - 1 || s + 1 == total;
            if (opt.do_eval && (epoch_end || (opt.eval_every && (s + 1) % opt.eval_every == 0))) {
                double te = bert_time_s();
                metrics r2 = evaluate(ctx, m, &dev, pad_id);
                t_eval += bert_time_s() - te;
                double val = metric_value(&r2, opt.metric);
                int better = !have_best || val > metric_value(&best, opt.metric) || (isnan(metric_value(&best, opt.metric)) && !isnan(val));
                char what[160];
                snprintf(what, sizeof what, "eval step %d (epoch %.2f)%s", s + 1, (double)(s + 1) / per_epoch, better ? " *best*" : "");
                metrics_print(&r2, what);
                fprintf(log, "{\"eval_step\": %d, \"metrics\": ", s + 1);
                metrics_json(log, &r2);
                fprintf(log, ", \"best\": %d}\n", better);
                fflush(stdout);
                if (better) {
                    free(best.confusion);
                    best = r2; have_best = 1; best_step = s + 1;
                    save_model(m, model_path);
                } else {
                    free(r2.confusion);
                }
            }
        }
        t_train = bert_time_s() - t0 - t_eval;
        if (!have_best) save_model(m, model_path);   // no dev set: the last weights
        snprintf(path, sizeof path, "%s/config.json", opt.out);
        save_hf_config(m, path);
        printf("model: %s (%s) | config: %s\n", model_path, have_best ? "best on dev" : "last step", path);
        free(perm);
        batch_free(&b);
        bert_optim_free(&o);
        if (have_best && bert_model_load_weights(m, model_path)) die("%s", bert_last_error());   // the best, for predict
    }

    if (opt.do_eval) {
        metrics r;
        if (have_best) r = best;
        else { double te = bert_time_s(); r = evaluate(ctx, m, &dev, pad_id); t_eval += bert_time_s() - te; }
        char what[600];
        snprintf(what, sizeof what, "eval %s%s", dev.path, have_best ? " (best checkpoint)" : "");
        metrics_print(&r, what);
        snprintf(path, sizeof path, "%s/eval_results.json", opt.out);
        FILE *f = fopen(path, "w");
        if (!f) die("%s: %s", path, strerror(errno));
        fprintf(f, "{\"dev_file\": "); json_string(f, dev.path);
        fprintf(f, ", \"step\": %d, \"metric\": \"%s\", \"metrics\": ", best_step, opt.metric);
        metrics_json(f, &r);
        fprintf(f, "}\n");
        if (fclose(f)) die("%s: write failed", path);
        if (!have_best) { fprintf(log, "{\"eval\": "); metrics_json(log, &r); fprintf(log, "}\n"); }
        free(r.confusion);
    }
    if (opt.do_predict) {
        int json = opt.predict_format ? !strcmp(opt.predict_format, "json") : test.fmt == FMT_JSON;
        snprintf(path, sizeof path, "%s/test_predictions.%s", opt.out, json ? "json" : "tsv");
        write_predictions(ctx, m, &test, pad_id, path, json);
    }
    double e2e = bert_time_s() - t_start;
    printf("summary: %ld steps (%ld skipped) | e2e %.1f s (train %.1f s, eval %.1f s) | peak RSS %.0f MiB\n",
           steps_done, skipped, e2e, t_train, t_eval, bert_peak_rss_mib());
    if (have_best) printf("best on dev: %s %.4f at step %d (%s)\n", opt.metric, metric_value(&best, opt.metric), best_step, model_path);
    fprintf(log, "{\"summary\": \"done\", \"steps\": %ld, \"skipped\": %ld, \"e2e_s\": %.3f, \"train_s\": %.3f, \"eval_s\": %.3f, "
                 "\"best_step\": %d, \"best_%s\": ",
            steps_done, skipped, e2e, t_train, t_eval, best_step, opt.metric);
    json_number(log, have_best ? metric_value(&best, opt.metric) : NAN);
    fprintf(log, ", \"peak_rss_mib\": %.1f}\n", bert_peak_rss_mib());
    fclose(log);
    bert_ctx_free(ctx);
    bert_model_free(m);
    bert_vocab_free(v);
    dataset_free(&train); dataset_free(&dev); dataset_free(&test);
    free(sc.a); free(sc.b);
    table_clear(&labels);
    table_clear(&data_descs);
    return 0;
}
