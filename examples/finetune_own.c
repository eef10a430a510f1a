// finetune_own.c - fine-tune BERT on your own labelled sentences: a TSV of "label<TAB>text" lines,
// labels 0..K-1. Resume, progress, log.jsonl, curve.svg and checkpoints come from the run layer.
//   cc -O2 -march=native -fopenmp -std=c11 examples/finetune_own.c -o finetune_own -lm
//   ./finetune_own --train my.tsv --dev my_dev.tsv --vocab vocab.txt --init bert.safetensors --out my_run
//   (Ctrl-C saves; the same command with --resume continues exactly where it stopped)
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "run.h"

typedef struct { int n, K; int32_t *ids, *types, *mask, *labels; } examples;   // ids/types/mask (n,T)

static struct { const char *train, *dev, *vocab, *config, *init; int max_seq_length; } my = { .max_seq_length = 64 };
static const bert_flag flags[] = {
    { "train", BERT_FLAG_STR, &my.train, "training TSV: label<TAB>text per line" },
    { "dev", BERT_FLAG_STR, &my.dev, "evaluation TSV, same layout (optional)" },
    { "vocab", BERT_FLAG_STR, &my.vocab, "vocab.txt of the model" },
    { "config", BERT_FLAG_STR, &my.config, "bert_config.json for a random init (or when --init carries no config)" },
    { "init", BERT_FLAG_STR, &my.init, "pretrained weights (safetensors)" },
    { "max_seq_length", BERT_FLAG_INT, &my.max_seq_length, "tokens per example, [CLS] and [SEP] included" },
};

// one line "label<TAB>text" -> row i of d: [CLS] tokens [SEP], cut to T
static void add_line(examples *d, const bert_vocab *v, const char *line, const char *where) {
    const char *tab = strchr(line, '\t');
    char *end;
    long label = tab ? strtol(line, &end, 10) : -1;
    if (!tab || end != tab || label < 0 || label > 1000) run_die("%s: expected \"label<TAB>text\" with a label 0..1000", where);
    int T = my.max_seq_length, i = d->n++;
    d->ids = (int32_t *)run_realloc(d->ids, (size_t)d->n * T * sizeof(int32_t));
    d->labels = (int32_t *)run_realloc(d->labels, (size_t)d->n * sizeof(int32_t));
    int32_t *ids = d->ids + (size_t)i * T;
    int n = bert_tokenize(v, 1, tab + 1, strlen(tab + 1), ids + 1, T - 2);   // 1: an uncased vocab
    if (n < 0) run_die("%s: %s", where, bert_last_error());
    if (n > T - 2) n = T - 2;   // bert_tokenize reports the full count; the rest is cut
    ids[0] = bert_vocab_id(v, "[CLS]", 5);
    ids[n + 1] = bert_vocab_id(v, "[SEP]", 5);
    for (int t = n + 2; t < T; t++) ids[t] = 0;
    d->labels[i] = (int32_t)label;
    if (label + 1 > d->K) d->K = (int)label + 1;
}

static examples read_tsv(const char *path, const bert_vocab *v) {
    examples d = { 0, 0, NULL, NULL, NULL, NULL };
    char *text = run_read_file(path, NULL), where[4200];
    int lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        snprintf(where, sizeof where, "%s:%d", path, ++lineno);
        if (*line) add_line(&d, v, line, where);
    }
    free(text);
    if (!d.n) run_die("%s: no examples", path);
    size_t cells = (size_t)d.n * my.max_seq_length;
    d.types = (int32_t *)run_calloc(cells, sizeof(int32_t));
    d.mask = (int32_t *)run_calloc(cells, sizeof(int32_t));
    for (size_t c = 0; c < cells; c++) d.mask[c] = d.ids[c] != 0 || c % my.max_seq_length == 0;
    return d;
}

static void examples_free(examples *d) { free(d->ids); free(d->types); free(d->mask); free(d->labels); }

// rows idx[0..B) of d, gathered into the batch buffers
static void gather(const examples *d, const size_t *idx, int B, int32_t *ids, int32_t *mask, int32_t *labels) {
    int T = my.max_seq_length;
    for (int b = 0; b < B; b++) {
        memcpy(ids + (size_t)b * T, d->ids + idx[b] * T, (size_t)T * sizeof(int32_t));
        memcpy(mask + (size_t)b * T, d->mask + idx[b] * T, (size_t)T * sizeof(int32_t));
        labels[b] = d->labels[idx[b]];
    }
}

static double accuracy(run *r, const examples *d, int32_t *ids, int32_t *mask, int32_t *labels, int32_t *pred) {
    long hits = 0;
    r->ctx->training = 0; r->ctx->grad_enabled = 0;
    for (int i = 0, BS = r->o->batch_size; i < d->n; i += BS) {
        int B = d->n - i < BS ? d->n - i : BS;
        size_t idx[512];   // (--batch_size is at most 512)
        for (int b = 0; b < B; b++) idx[b] = (size_t)(i + b);
        gather(d, idx, B, ids, mask, labels);
        bert_ctx_reset(r->ctx, 0);
        bert_classify_out o = bert_classify_forward(r->ctx, r->m, ids, NULL, mask, B, my.max_seq_length, NULL, NULL);
        bert_tensor_argmax(r->ctx, o.logits, pred);
        for (int b = 0; b < B; b++) hits += pred[b] == labels[b];
    }
    r->ctx->training = 1; r->ctx->grad_enabled = 1;
    return (double)hits / d->n;
}

int main(int argc, char **argv) {
    run_opts ro = run_defaults();
    ro.out = "finetune_out"; ro.lr = 5e-5f; ro.batch_size = 16;
    run_parse("finetune_own", "usage: finetune_own --train my.tsv --vocab vocab.txt (--init M.safetensors | --config C.json)",
              flags, sizeof flags / sizeof *flags, &ro, RUN_FLAGS_TRAIN | RUN_FLAGS_COMMON, argc, argv);
    if (!my.train || !my.vocab || (!my.init && !my.config)) run_die("--train, --vocab and --init or --config are needed");
    if (ro.batch_size > 512 || my.max_seq_length < 3) run_die("--batch_size <= 512 and --max_seq_length >= 3 please");
    bert_vocab *v = bert_vocab_load(my.vocab);
    if (!v) run_die("%s", bert_last_error());
    examples train = read_tsv(my.train, v), dev = my.dev ? read_tsv(my.dev, v) : train;
    bert_config cfg;
    bert_model *m = NULL;
    run_model_config(&cfg, my.init, my.config);   // the file's own config wins over --config
    if (!(m = bert_model_create(&cfg, (uint64_t)ro.seed))) run_die("%s", bert_last_error());
    if (my.init && bert_model_load_encoder(m, my.init, NULL)) run_die("%s", bert_last_error());
    if (bert_classifier_add(m, train.K < 2 ? 2 : train.K, (uint64_t)ro.seed)) run_die("%s", bert_last_error());
    char data[256];
    snprintf(data, sizeof data, "%s: %d examples, T %d, batch %d x %d, seed %d", my.train, train.n, my.max_seq_length,
             ro.batch_size, ro.accumulation_steps, ro.seed);
    run r;
    run_begin(&r, &ro, m, (size_t)train.n, run_total_steps(&ro, (size_t)train.n), data);
    run_print_setup(&r, "finetune_own");
    size_t BT = (size_t)ro.batch_size * my.max_seq_length;
    int32_t *ids = (int32_t *)run_calloc(BT, 4), *mask = (int32_t *)run_calloc(BT, 4);
    int32_t *labels = (int32_t *)run_calloc((size_t)ro.batch_size, 4), *pred = (int32_t *)run_calloc((size_t)ro.batch_size, 4);
    int steps_per_epoch = run_steps_per_epoch(&ro, (size_t)train.n);
    while (run_next_step(&r)) {
        for (int k = 0; k < ro.accumulation_steps; k++) {
            int B;
            const size_t *idx = run_batch(&r, &B);
            if (!B) continue;   // data parallel: a last batch smaller than the ranks gives some none
            gather(&train, idx, B, ids, mask, labels);
            bert_ctx *ctx = run_micro(&r);
            bert_classify_out o = bert_classify_forward(ctx, m, ids, NULL, mask, B, my.max_seq_length, labels, NULL);
            run_backward(&r, o.loss, 1.0f / (float)ro.accumulation_steps);
        }
        run_end_step(&r, NULL, 0, 0.0);
        if (run_eval_due(&r, steps_per_epoch) || (run_completed(&r) && (int)r.opt.step == r.total_steps)) {
            run_eval_begin(&r);
            run_metric acc = { "accuracy", accuracy(&r, &dev, ids, mask, labels, pred) };
            run_eval_end(&r, my.dev ? "dev" : "train", &acc, 1);
        }
    }
    int rc = run_finish(&r);
    free(ids); free(mask); free(labels); free(pred);
    if (my.dev) examples_free(&dev);
    examples_free(&train);
    bert_model_free(m);
    bert_vocab_free(v);
    return rc;
}
