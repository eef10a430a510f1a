// encode.c - text in, BERT sentence embeddings out: the pooled [CLS] vector (BERT's pooler) or the
// mean of the last layer over the real tokens, per input line, as JSON lines or a .npy matrix.
// With --ids it is the tokenizer as a command: each line's WordPiece ids, [CLS] and [SEP] included.
//
//   cc -O2 -march=native -fopenmp -std=c11 examples/encode.c -o build/encode -lm
//   echo "The quick brown fox. ||| It jumped." | ./build/encode --ids --vocab vocab.txt
//   ./build/encode --model model.safetensors --vocab vocab.txt --input lines.txt --output emb.npy
//
// A line is one sentence, or a pair "A ||| B" (segment ids 0 and 1). Lines longer than
// --max_seq_length are cut (the longer side first, as BERT's own pair truncation does), with a warning
// naming each such line and a count at the end. A file named by --output is written as OUT.tmp and
// renamed when complete: a failed run (a bad line, a full disk) never leaves a partial file under OUT.
#define _DEFAULT_SOURCE
#include <time.h>
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "run.h"

static struct {
    const char *model, *config, *vocab, *input, *output, *pooling;
    int ids, uncased, cased, batch_size, max_seq_length, normalize;
} opt = { .input = "-", .uncased = 1, .batch_size = 32, .max_seq_length = 128 };
static run_opts ro;   // --threads (the one common flag that means something here)

static const bert_flag flags[] = {
    { "model", BERT_FLAG_STR, &opt.model, "weights, safetensors (HF or bert.h names, with or without the heads), or a model "
                                          "directory as transformers / sentence-transformers save it" },
    { "config", BERT_FLAG_STR, &opt.config, "bert_config.json, if the model file carries none" },
    { "vocab", BERT_FLAG_STR, &opt.vocab, "vocab.txt of the model" },
    { "input", BERT_FLAG_STR, &opt.input, "text file, one sentence or 'A ||| B' pair per line; - is stdin" },
    { "output", BERT_FLAG_STR, &opt.output, "OUT.jsonl or OUT.npy (float32, lines x hidden); default stdout, JSON lines" },
    { "pooling", BERT_FLAG_STR, &opt.pooling, "cls (the pooler's [CLS] vector) | mean | max (last layer, real tokens) | both "
                                              "(cls and mean, JSON only); default: a sentence-transformers directory's own, else cls" },
    { "normalize", BERT_FLAG_BOOL, &opt.normalize, "L2-normalise every vector (a sentence-transformers Normalize module sets it)" },
    { "ids", BERT_FLAG_BOOL, &opt.ids, "print each line's token ids instead (no model needed)" },
    { "uncased", BERT_FLAG_BOOL, &opt.uncased, "lower-case and strip accents (uncased and Chinese models)" },
    { "cased", BERT_FLAG_BOOL, &opt.cased, "keep case and accents (cased models)" },
    { "batch_size", BERT_FLAG_INT, &opt.batch_size, "lines per forward pass" },
    { "max_seq_length", BERT_FLAG_INT, &opt.max_seq_length, "tokens per line, [CLS]/[SEP] included" },
    { "threads", BERT_FLAG_INT, &ro.threads, "OpenMP threads (0: OMP_NUM_THREADS or all cores)" },
};
#define NFLAGS ((int)(sizeof flags / sizeof flags[0]))

static const char usage[] =
    "usage: encode --model M.safetensors --vocab vocab.txt [--input lines.txt] [--output emb.jsonl|emb.npy]\n"
    "       encode --ids --vocab vocab.txt [--uncased|--cased] [--input lines.txt]\n"
    "Sentence embeddings (pooled [CLS] or mean of the last layer), or token ids, one per input line;\n"
    "'A ||| B' lines are sentence pairs.\n";

// ----------------------------------------------------------------------------
// input: whole lines, however long

// where the line being encoded came from, for error lines
static const char *in_path = "-";
static long in_line;

#define MAX_LINE ((size_t)256 << 20)   // the tokenizer's limit on one text

static char *read_line(FILE *f, size_t *len) {
    static char *buf;
    static size_t cap;
    size_t n = 0;
    int c;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (n >= MAX_LINE) run_die("%s:%ld: a line longer than 256 MB", in_path, in_line + 1);
        if (n + 2 > cap) buf = (char *)run_realloc(buf, cap = cap ? 2 * cap : 4096);
        buf[n++] = (char)c;
    }
    if (c == EOF && n == 0) return NULL;
    if (!buf) buf = (char *)run_malloc(cap = 16);
    if (n && buf[n - 1] == '\r') n--;
    buf[n] = 0;
    *len = n;
    return buf;
}

// ----------------------------------------------------------------------------
// one line -> [CLS] A [SEP] (B [SEP]) within T tokens

typedef struct { int32_t *a, *b; int cap; } scratch;

static int tokenize_part(const bert_vocab *v, const char *s, size_t n, scratch *sc, int32_t **dst) {
    int count = bert_tokenize(v, !opt.cased, s, n, *dst, sc->cap);
    if (count > sc->cap) {   // a long line: grow both buffers and redo
        sc->cap = count;
        sc->a = (int32_t *)run_realloc(sc->a, (size_t)count * sizeof(int32_t));
        sc->b = (int32_t *)run_realloc(sc->b, (size_t)count * sizeof(int32_t));
        *dst = dst == &sc->a ? sc->a : sc->b;
        count = bert_tokenize(v, !opt.cased, s, n, *dst, sc->cap);
    }
    if (count < 0) run_die("%s:%ld: %s", in_path, in_line, bert_last_error());
    return count;
}

// returns the token count; *cut = how many tokens were dropped to fit T
static int encode_line(const bert_vocab *v, const char *line, size_t len, int T, int32_t *ids, int32_t *types, scratch *sc, int *cut) {
    const char *sep = strstr(line, "|||");
    int na = tokenize_part(v, line, sep ? (size_t)(sep - line) : len, sc, &sc->a), nb = 0;
    if (sep) nb = tokenize_part(v, sep + 3, len - (size_t)(sep + 3 - line), sc, &sc->b);
    int room = T - (sep ? 3 : 2);
    *cut = 0;
    while (na + nb > room) { if (na > nb) na--; else nb--; (*cut)++; }   // drop from the end of the longer side
    int n = 0;
    ids[n] = v->cls_id; types[n++] = 0;
    for (int i = 0; i < na; i++) { ids[n] = sc->a[i]; types[n++] = 0; }
    ids[n] = v->sep_id; types[n++] = 0;
    if (sep) {
        for (int i = 0; i < nb; i++) { ids[n] = sc->b[i]; types[n++] = 1; }
        ids[n] = v->sep_id; types[n++] = 1;
    }
    return n;
}

// ----------------------------------------------------------------------------
// output: stdout, a device or FIFO as it is, or a regular file through OUT.tmp and a rename

typedef struct { FILE *f; const char *name; bert_atomic_file out; int atomic, npy; long rows; int C; } sink;

static char *tmp_left;   // the temp file to remove if the run dies before the rename
static void remove_tmp(void) { if (tmp_left) remove(tmp_left); }   // (the next save would replace it anyway)

// .npy version 1.0 with a fixed 128-byte header, rewritten with the row count at the end
static void npy_header(sink *s, long rows) {
    char head[128];
    memset(head, ' ', sizeof head);
    memcpy(head, "\x93NUMPY\x01\x00\x76\x00", 10);   // header length 118 = 128 - 10
    int n = snprintf(head + 10, 100, "{'descr': '<f4', 'fortran_order': False, 'shape': (%ld, %d), }", rows, s->C);
    head[10 + n] = ' ';
    head[127] = '\n';
    fwrite(head, 1, sizeof head, s->f);
}

static void sink_open(sink *s, int C, int both) {
    memset(s, 0, sizeof *s);
    s->f = stdout; s->name = "stdout"; s->C = C;
    if (!opt.output) return;
    s->name = opt.output;
    s->npy = strlen(opt.output) >= 4 && !strcmp(opt.output + strlen(opt.output) - 4, ".npy");
    if (s->npy && both) run_die("--pooling both needs JSON output, not %s", opt.output);
    if (s->npy && opt.ids) run_die("--ids writes text, not %s", opt.output);
    struct stat st;
    if (stat(opt.output, &st) != 0 || S_ISREG(st.st_mode)) {   // a file: atomically (a device, e.g. /dev/full: directly)
        s->f = run_create(&s->out, opt.output);
        s->atomic = 1;
        tmp_left = s->out.tmp;
        atexit(remove_tmp);
    } else if (!(s->f = fopen(opt.output, "wb"))) run_die("%s: %s", opt.output, strerror(errno));
    if (s->npy) npy_header(s, 0);
}

// the .npy header's row count, then everything flushed, checked, closed and renamed into place
static void sink_close(sink *s) {
    if (s->npy) {
        run_check_stream(s->f, s->name);
        if (fseek(s->f, 0, SEEK_SET) != 0) run_die("%s: cannot rewrite the .npy header: %s", s->name, strerror(errno));
        npy_header(s, s->rows);
    }
    run_check_stream(s->f, s->name);
    if (s->f == stdout) return;
    tmp_left = NULL;
    if (s->atomic) run_commit(&s->out, opt.output);
    else if (fclose(s->f) != 0) run_die("%s: write failed: %s", s->name, strerror(errno));
}

static void emit_json_vec(FILE *f, const char *key, const float *x, int C) {
    fprintf(f, "\"%s\": [", key);
    for (int c = 0; c < C; c++) fprintf(f, c ? ", %.8g" : "%.8g", (double)x[c]);
    fprintf(f, "]");
}

// tok: the vector pooled over the tokens, "mean" or "max"
static void emit(sink *s, long line, const float *cls, const float *tok, const char *tok_key) {
    if (s->npy) {
        fwrite(cls ? cls : tok, sizeof(float), (size_t)s->C, s->f);
    } else {
        fprintf(s->f, "{\"line\": %ld, ", line);
        if (cls) emit_json_vec(s->f, "pooled", cls, s->C);
        if (cls && tok) fprintf(s->f, ", ");
        if (tok) emit_json_vec(s->f, tok_key, tok, s->C);
        fprintf(s->f, "}\n");
    }
    s->rows++;
}

// ----------------------------------------------------------------------------
// the model: lines gathered in batches, padded to the batch's longest, encoded, pooled

// static in main: still reachable when run_die() ends the run mid-file (no leak report)
typedef struct {
    bert_vocab *v; bert_model *m; bert_ctx *ctx;
    int B, T, C, n, want_cls, want_mean, want_max;
    int32_t *ids, *types, *mask, *bi, *bt;   // (B,T) as tokenized; bi, bt, mask (n,Tb) as encoded
    int *lens;
    float *seq, *pooled, *meanv;             // the outputs on the host
    scratch sc;
    long done;                               // lines written
} batch;

static void batch_alloc(batch *b) {
    size_t BT = (size_t)b->B * b->T;
    b->ids = (int32_t *)run_calloc(BT, sizeof(int32_t)); b->types = (int32_t *)run_calloc(BT, sizeof(int32_t));
    b->lens = (int *)run_calloc((size_t)b->B, sizeof(int));
    b->sc.a = (int32_t *)run_malloc(4096 * sizeof(int32_t)); b->sc.b = (int32_t *)run_malloc(4096 * sizeof(int32_t));
    b->sc.cap = 4096;
    if (!b->m) return;
    b->mask = (int32_t *)run_calloc(BT, sizeof(int32_t));
    b->bi = (int32_t *)run_calloc(BT, sizeof(int32_t)); b->bt = (int32_t *)run_calloc(BT, sizeof(int32_t));
    b->seq = (float *)run_calloc(b->want_mean || b->want_max ? BT * (size_t)b->C : 1, sizeof(float));
    b->pooled = (float *)run_calloc((size_t)b->B * b->C, sizeof(float));
    b->meanv = (float *)run_calloc((size_t)b->C, sizeof(float));
    if (!(b->ctx = bert_ctx_create((size_t)16 << 20))) run_die("out of memory for the activation arena");
    b->ctx->training = 0; b->ctx->grad_enabled = 0;
    b->ctx->remove_padding = ro.remove_padding;
}

static void batch_free(batch *b) {
    free(b->ids); free(b->types); free(b->lens); free(b->sc.a); free(b->sc.b);
    free(b->mask); free(b->bi); free(b->bt); free(b->seq); free(b->pooled); free(b->meanv);
    bert_ctx_free(b->ctx);
    bert_model_free(b->m);
    bert_vocab_free(b->v);
}

// x /= |x| (a zero vector stays zero)
static void normalize(float *x, int C) {
    if (!x) return;
    double ss = 0;
    for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
    if (ss > 0) for (int c = 0; c < C; c++) x[c] = (float)(x[c] / sqrt(ss));
}

// the b->n lines gathered: one forward pass, their rows written
static void embed_batch(batch *b, sink *out) {
    int nb = b->n, T = b->T, C = b->C, Tb = 0;
    int32_t pad = b->v->pad_id >= 0 ? b->v->pad_id : 0;
    for (int i = 0; i < nb; i++) if (b->lens[i] > Tb) Tb = b->lens[i];
    for (int i = 0; i < nb; i++)
        for (int t = 0; t < Tb; t++) {
            size_t at = (size_t)i * Tb + t, from = (size_t)i * T + t;
            int real = t < b->lens[i];
            b->bi[at] = real ? b->ids[from] : pad;
            b->bt[at] = real ? b->types[from] : 0;
            b->mask[at] = real;
        }
    bert_ctx_reset(b->ctx, 0);
    bert_tensor *seq = bert_encode(b->ctx, b->m, b->bi, b->bt, b->mask, nb, Tb);
    if (!seq) run_die("%s", bert_last_error());
    if (b->want_cls) run_read_finite(b->ctx, bert_pool(b->ctx, b->m, seq), b->pooled, opt.model);
    int tok = b->want_mean || b->want_max;
    if (tok) run_read_finite(b->ctx, seq, b->seq, opt.model);
    for (int i = 0; i < nb; i++) {
        for (int c = 0; tok && c < C; c++) {   // over the real tokens, [CLS] and [SEP] included (as sentence-transformers)
            double sum = 0, mx = -INFINITY;
            for (int t = 0; t < b->lens[i]; t++) {
                double v = b->seq[((size_t)i * Tb + t) * C + c];
                sum += v;
                if (v > mx) mx = v;
            }
            b->meanv[c] = (float)(b->want_max ? mx : sum / b->lens[i]);
        }
        float *cls = b->want_cls ? b->pooled + (size_t)i * C : NULL;
        if (opt.normalize) { normalize(cls, C); normalize(tok ? b->meanv : NULL, C); }
        emit(out, b->done + i + 1, cls, tok ? b->meanv : NULL, b->want_max ? "max" : "mean");
    }
    b->done += nb;
    b->n = 0;
    if (ferror(out->f)) run_check_stream(out->f, out->name);   // a full disk: stop now, not at the end
}

// every line of in: its ids printed (--ids) or its embedding written; returns the line count
static long encode_stream(FILE *in, batch *b, sink *out) {
    long line_no = 0, truncated = 0;
    time_t started = time(NULL), last_report = started;
    size_t len;
    char *line;
    while ((line = read_line(in, &len))) {
        in_line = ++line_no;
        if (b->m && b->m->config.type_vocab_size < 2 && strstr(line, "|||"))
            run_die("%s:%ld: a sentence pair needs type_vocab_size 2 or more; %s has %d", in_path, line_no, opt.model,
                    b->m->config.type_vocab_size);
        int32_t *ids = b->ids + (size_t)b->n * b->T;
        int cut, n = encode_line(b->v, line, len, b->T, ids, b->types + (size_t)b->n * b->T, &b->sc, &cut);
        if (cut) { truncated++; run_warn("line %ld: %d tokens over --max_seq_length %d were cut", line_no, cut, b->T); }
        if (opt.ids) {
            for (int i = 0; i < n; i++) fprintf(out->f, i ? " %d" : "%d", ids[i]);
            fputc('\n', out->f);
            if (ferror(out->f)) run_check_stream(out->f, out->name);
            continue;
        }
        b->lens[b->n++] = n;
        if (b->n < b->B) continue;
        embed_batch(b, out);
        if (time(NULL) - last_report >= 5) {
            last_report = time(NULL);
            fprintf(stderr, "encode: %ld lines, %.1f lines/s\n", b->done, (double)b->done / (double)(last_report - started));
        }
    }
    if (b->n) embed_batch(b, out);
    if (ferror(in)) run_die("%s: read error", opt.input);
    if (truncated) fprintf(stderr, "encode: %ld of %ld lines were longer than %d tokens and were cut\n", truncated, line_no, b->T);
    return line_no;
}

// ----------------------------------------------------------------------------
// --model DIR: a model directory as transformers and sentence-transformers save it

static char dir_vocab[4200];

static bert_json *json_file(const char *dir, const char *name) {   // NULL when the file is absent
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    if (stat(path, &st) != 0) return NULL;
    size_t n;
    char *text = run_read_file_max(path, &n, (size_t)1 << 20, "a model directory's JSON");
    bert_json *j = NULL;
    if (bert_json_parse(&j, text, n)) run_die("%s: %s", path, bert_last_error());
    free(text);
    return j;
}

static int json_true(const bert_json *o, const char *key) { const bert_json *v = bert_json_get(o, key); return v && v->type == BERT_JSON_TRUE; }

/* model.safetensors (and config.json, read beside it) for the weights; vocab.txt and
   tokenizer_config.json's do_lower_case unless --vocab / --cased say otherwise; modules.json's Pooling
   module (its config's pooling_mode_*) and Normalize module unless --pooling is given. */
static int hf_tokenizer;   // the model directory has a tokenizer_config.json

static void resolve_model_dir(void) {
    struct stat st;
    if (!opt.model || stat(opt.model, &st) != 0 || !S_ISDIR(st.st_mode)) return;
    const char *dir = opt.model;
    run_resolve_weights(&opt.model);   // DIR/model.safetensors (pytorch_model.bin alone: the converter named)
    snprintf(dir_vocab, sizeof dir_vocab, "%s/vocab.txt", dir);
    if (!opt.vocab && stat(dir_vocab, &st) == 0) opt.vocab = dir_vocab;
    bert_json *tc = json_file(dir, "tokenizer_config.json");
    hf_tokenizer = tc != NULL;   // a transformers directory: its BertTokenizer's rules unless --tokenizer says
    const bert_json *lower = bert_json_get(tc, "do_lower_case");
    if (lower && lower->type == BERT_JSON_FALSE && !opt.cased) { opt.cased = 1; fprintf(stderr, "encode: %s: cased (tokenizer_config.json)\n", dir); }
    bert_json_free(tc);
    bert_json *mods = json_file(dir, "modules.json");
    int given = opt.pooling != NULL;   // --pooling on the command line wins over the directory's modules
    for (int i = 0; mods && mods->type == BERT_JSON_ARRAY && i < mods->count; i++) {
        const bert_json *type = bert_json_get(&mods->child[i], "type"), *path = bert_json_get(&mods->child[i], "path");
        if (!type || type->type != BERT_JSON_STRING) continue;
        if (strstr(type->string, ".Normalize") && !given) opt.normalize = 1;
        if (!strstr(type->string, ".Pooling") || given || !path || path->type != BERT_JSON_STRING) continue;
        char name[4300];
        snprintf(name, sizeof name, "%s/config.json", path->string);
        bert_json *pc = json_file(dir, name);
        if (!pc) run_die("%s: modules.json names a Pooling module at %s without its config.json", dir, path->string);
        int cls = json_true(pc, "pooling_mode_cls_token"), mean = json_true(pc, "pooling_mode_mean_tokens"), mx = json_true(pc, "pooling_mode_max_tokens");
        int other = json_true(pc, "pooling_mode_mean_sqrt_len_tokens") || json_true(pc, "pooling_mode_weightedmean_tokens") ||
                    json_true(pc, "pooling_mode_lasttoken");
        bert_json_free(pc);
        if (other || cls + mean + mx != 1)
            run_die("%s: %s/config.json: only one of cls, mean or max pooling is supported (give --pooling)", dir, path->string);
        // sentence-transformers' CLS pooling takes the last layer's [CLS] row, not the pooler's tanh(dense)
        if (cls) run_die("%s: CLS-token pooling (the raw [CLS] row) is not the pooler's vector: give --pooling explicitly", dir);
        opt.pooling = mean ? "mean" : "max";
    }
    if (mods && opt.pooling) fprintf(stderr, "encode: %s: sentence-transformers pooling %s%s\n", dir, opt.pooling, opt.normalize ? ", normalised" : "");
    bert_json_free(mods);
}

// ----------------------------------------------------------------------------
// main

static void load_model(batch *b) {
    b->m = run_load_model(opt.model, opt.config, 1);   // (a headless BertModel is fine: no head is used)
    run_precision(b->m, ro.precision);
    const bert_config *c = &b->m->config;
    if (c->vocab_size != b->v->size) run_die("%s has %d tokens but the model's vocab_size is %d", opt.vocab, b->v->size, c->vocab_size);
    if (b->T > c->max_position_embeddings) b->T = c->max_position_embeddings;
    if (b->T < 3) run_die("%s: max_position_embeddings %d leaves no room for [CLS] A [SEP] (3 or more needed)", opt.model, b->T);
    b->C = c->hidden_size;
}

int main(int argc, char **argv) {
    static batch b;
    ro = run_defaults();
    run_parse("encode", usage, flags, NFLAGS, &ro, RUN_FLAGS_INFER | RUN_FLAGS_TOKENIZER, argc, argv);
    resolve_model_dir();
    if (!opt.vocab) run_die("--vocab is required (--help for usage)");
    if (!opt.pooling) opt.pooling = "cls";
    b.want_cls = !strcmp(opt.pooling, "cls") || !strcmp(opt.pooling, "both");
    b.want_mean = !strcmp(opt.pooling, "mean") || !strcmp(opt.pooling, "both");
    b.want_max = !strcmp(opt.pooling, "max");
    if (!b.want_cls && !b.want_mean && !b.want_max) run_die("--pooling: '%s' is not cls, mean, max or both", opt.pooling);
    if (!opt.ids && !opt.model) run_die("--model is required (or --ids for token ids only)");
    if (opt.batch_size < 1 || opt.max_seq_length < 3 || ro.threads < 0)
        run_die("--batch_size >= 1, --max_seq_length >= 3 and --threads >= 0 please");
    if (!(b.v = bert_vocab_load(opt.vocab))) run_die("%s", bert_last_error());
    run_vocab_mode(b.v, &ro, hf_tokenizer);
    if (b.v->cls_id < 0 || b.v->sep_id < 0) run_die("%s: no [CLS] or [SEP] token", opt.vocab);
    FILE *in = strcmp(opt.input, "-") ? fopen(opt.input, "rb") : stdin;
    in_path = strcmp(opt.input, "-") ? opt.input : "stdin";
    if (!in) run_die("%s: %s", opt.input, strerror(errno));
    b.T = opt.max_seq_length; b.B = opt.batch_size;
    if (!opt.ids) load_model(&b);
    sink out;
    sink_open(&out, b.C, b.want_cls && b.want_mean);
    batch_alloc(&b);
    long lines = encode_stream(in, &b, &out);
    sink_close(&out);
    if (opt.output) fprintf(stderr, "encode: %ld lines -> %s\n", lines, opt.output);
    if (in != stdin) fclose(in);
    batch_free(&b);
    return 0;
}
