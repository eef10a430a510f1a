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
// naming each such line and a count at the end.
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#define BERT_IMPLEMENTATION
#include "../bert.h"

static struct {
    const char *model, *config, *vocab, *input, *output, *pooling;
    int ids, uncased, cased, batch_size, max_seq_length, threads;
} opt = { .input = "-", .pooling = "cls", .uncased = 1, .batch_size = 32, .max_seq_length = 128 };

static const bert_flag flags[] = {
    { "model", BERT_FLAG_STR, &opt.model, "weights, safetensors (HF or bert.h names)" },
    { "config", BERT_FLAG_STR, &opt.config, "bert_config.json, if the model file carries none" },
    { "vocab", BERT_FLAG_STR, &opt.vocab, "vocab.txt of the model" },
    { "input", BERT_FLAG_STR, &opt.input, "text file, one sentence or 'A ||| B' pair per line; - is stdin" },
    { "output", BERT_FLAG_STR, &opt.output, "OUT.jsonl or OUT.npy (float32, lines x hidden); default stdout, JSON lines" },
    { "pooling", BERT_FLAG_STR, &opt.pooling, "cls (the pooler's [CLS] vector) | mean (last layer, real tokens) | both (JSON only)" },
    { "ids", BERT_FLAG_BOOL, &opt.ids, "print each line's token ids instead (no model needed)" },
    { "uncased", BERT_FLAG_BOOL, &opt.uncased, "lower-case and strip accents (uncased and Chinese models)" },
    { "cased", BERT_FLAG_BOOL, &opt.cased, "keep case and accents (cased models)" },
    { "batch_size", BERT_FLAG_INT, &opt.batch_size, "lines per forward pass" },
    { "max_seq_length", BERT_FLAG_INT, &opt.max_seq_length, "tokens per line, [CLS]/[SEP] included" },
    { "threads", BERT_FLAG_INT, &opt.threads, "OpenMP threads (0: OMP_NUM_THREADS or all cores)" },
};
#define NFLAGS ((int)(sizeof flags / sizeof flags[0]))

static void die(const char *fmt, ...) BERT__PRINTF(1, 2);
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "encode: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

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
        if (n >= MAX_LINE) die("%s:%ld: a line longer than 256 MB", in_path, in_line + 1);
        if (n + 2 > cap) {
            cap = cap ? 2 * cap : 4096;
            if (!(buf = (char *)realloc(buf, cap))) die("out of memory reading a line");
        }
        buf[n++] = (char)c;
    }
    if (c == EOF && n == 0) return NULL;
    if (!buf) { cap = 16; buf = (char *)malloc(cap); }
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
        sc->a = (int32_t *)realloc(sc->a, (size_t)count * sizeof(int32_t));
        sc->b = (int32_t *)realloc(sc->b, (size_t)count * sizeof(int32_t));
        if (!sc->a || !sc->b) die("out of memory");
        *dst = dst == &sc->a ? sc->a : sc->b;
        count = bert_tokenize(v, !opt.cased, s, n, *dst, sc->cap);
    }
    if (count < 0) die("%s:%ld: %s", in_path, in_line, bert_last_error());
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
// output

typedef struct { FILE *f; int npy; long rows; long header_at; int C; } sink;

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

static void emit_json_vec(FILE *f, const char *key, const float *x, int C) {
    fprintf(f, "\"%s\": [", key);
    for (int c = 0; c < C; c++) fprintf(f, c ? ", %.8g" : "%.8g", (double)x[c]);
    fprintf(f, "]");
}

static void emit(sink *s, long line, const float *cls, const float *mean) {
    if (s->npy) {
        fwrite(cls ? cls : mean, sizeof(float), (size_t)s->C, s->f);
    } else {
        fprintf(s->f, "{\"line\": %ld, ", line);
        if (cls) emit_json_vec(s->f, "pooled", cls, s->C);
        if (cls && mean) fprintf(s->f, ", ");
        if (mean) emit_json_vec(s->f, "mean", mean, s->C);
        fprintf(s->f, "}\n");
    }
    s->rows++;
}

// ----------------------------------------------------------------------------
// main

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

int main(int argc, char **argv) {
    int rc = bert_flags_parse(flags, NFLAGS, argc, argv);
    if (rc == 1) {
        printf("usage: encode --model M.safetensors --vocab vocab.txt [--input lines.txt] [--output emb.jsonl|emb.npy]\n"
               "       encode --ids --vocab vocab.txt [--uncased|--cased] [--input lines.txt]\n"
               "Sentence embeddings (pooled [CLS] or mean of the last layer), or token ids, one per input line;\n"
               "'A ||| B' lines are sentence pairs.\n\nflags:\n");
        bert_flags_usage(stdout, flags, NFLAGS);
        return 0;
    }
    if (rc) die("%s", bert_last_error());
    if (!opt.vocab) die("--vocab is required (--help for usage)");
    int want_cls = !strcmp(opt.pooling, "cls") || !strcmp(opt.pooling, "both");
    int want_mean = !strcmp(opt.pooling, "mean") || !strcmp(opt.pooling, "both");
    if (!want_cls && !want_mean) die("--pooling: '%s' is not cls, mean or both", opt.pooling);
    if (!opt.ids && !opt.model) die("--model is required (or --ids for token ids only)");
    if (opt.batch_size < 1 || opt.max_seq_length < 3) die("--batch_size >= 1 and --max_seq_length >= 3 please");
#ifdef _OPENMP
    if (opt.threads > 0) omp_set_num_threads(opt.threads);
#endif
    bert_vocab *v = bert_vocab_load(opt.vocab);
    if (!v) die("%s", bert_last_error());
    if (v->cls_id < 0 || v->sep_id < 0) die("%s: no [CLS] or [SEP] token", opt.vocab);
    FILE *in = strcmp(opt.input, "-") ? fopen(opt.input, "rb") : stdin;
    in_path = strcmp(opt.input, "-") ? opt.input : "stdin";
    if (!in) die("%s: %s", opt.input, strerror(errno));

    bert_model *m = NULL;
    int T = opt.max_seq_length, B = opt.batch_size;
    if (!opt.ids) {
        bert_config cfg;
        if (opt.config && bert_config_load(&cfg, opt.config)) die("%s", bert_last_error());
        if (!(m = bert_model_load(opt.model, opt.config ? &cfg : NULL))) die("%s", bert_last_error());
        if (m->config.vocab_size != v->size)
            die("%s has %d tokens but the model's vocab_size is %d", opt.vocab, v->size, m->config.vocab_size);
        if (T > m->config.max_position_embeddings) T = m->config.max_position_embeddings;
        if (T < 3) die("%s: max_position_embeddings %d leaves no room for [CLS] A [SEP] (3 or more needed)", opt.model, T);
    }
    sink out = { stdout, 0, 0, 0, m ? m->config.hidden_size : 0 };
    if (opt.output) {
        out.npy = ends_with(opt.output, ".npy");
        if (out.npy && want_cls && want_mean) die("--pooling both needs JSON output, not %s", opt.output);
        if (!(out.f = fopen(opt.output, "wb"))) die("%s: %s", opt.output, strerror(errno));
        if (out.npy && opt.ids) die("--ids writes text, not %s", opt.output);
        if (out.npy) npy_header(&out, 0);
    }

    // static: still reachable when die() ends the run mid-file, so a leak checker has nothing to report
    static int32_t *ids, *types, *mask;
    static int *lens;
    static float *meanv;
    ids = (int32_t *)calloc((size_t)B * T, sizeof(int32_t)); types = (int32_t *)calloc((size_t)B * T, sizeof(int32_t));
    mask = (int32_t *)calloc((size_t)B * T, sizeof(int32_t));
    lens = (int *)calloc((size_t)B, sizeof(int));
    meanv = (float *)calloc(m ? (size_t)m->config.hidden_size : 1, sizeof(float));
    static scratch sc;
    static bert_ctx *ctx;
    sc.a = (int32_t *)malloc(4096 * sizeof(int32_t)); sc.b = (int32_t *)malloc(4096 * sizeof(int32_t)); sc.cap = 4096;
    ctx = m ? bert_ctx_create((size_t)16 << 20) : NULL;
    if (!ids || !types || !mask || !lens || !meanv || !sc.a || !sc.b || (m && !ctx)) die("out of memory");
    if (ctx) { ctx->training = 0; ctx->grad_enabled = 0; }
    long line_no = 0, truncated = 0, first_line = 0;
    int nb = 0;
    time_t started = time(NULL), last_report = started;
    for (;;) {
        size_t len;
        char *line = read_line(in, &len);
        if (line) {
            in_line = ++line_no;
            if (m && m->config.type_vocab_size < 2 && strstr(line, "|||"))
                die("%s:%ld: a sentence pair needs type_vocab_size 2 or more; %s has %d", in_path, line_no, opt.model,
                    m->config.type_vocab_size);
            int cut, n = encode_line(v, line, len, T, ids + (size_t)nb * T, types + (size_t)nb * T, &sc, &cut);
            if (cut) { truncated++; fprintf(stderr, "encode: warning: line %ld: %d tokens over --max_seq_length %d were cut\n", line_no, cut, T); }
            if (opt.ids) {
                for (int i = 0; i < n; i++) fprintf(out.f, i ? " %d" : "%d", ids[(size_t)nb * T + i]);
                fputc('\n', out.f);
                continue;
            }
            lens[nb++] = n;
        }
        if (opt.ids) { if (!line) break; continue; }
        if (nb == B || (!line && nb > 0)) {   // pad to the longest line of the batch and run it
            int Tb = 0;
            for (int b = 0; b < nb; b++) if (lens[b] > Tb) Tb = lens[b];
            int32_t *bi = (int32_t *)calloc((size_t)nb * Tb, sizeof(int32_t)), *bt = (int32_t *)calloc((size_t)nb * Tb, sizeof(int32_t));
            if (!bi || !bt) die("out of memory");
            for (int b = 0; b < nb; b++)
                for (int t = 0; t < Tb; t++) {
                    int real = t < lens[b];
                    bi[(size_t)b * Tb + t] = real ? ids[(size_t)b * T + t] : (v->pad_id >= 0 ? v->pad_id : 0);
                    bt[(size_t)b * Tb + t] = real ? types[(size_t)b * T + t] : 0;
                    mask[(size_t)b * Tb + t] = real;
                }
            bert_ctx_reset(ctx, 0);
            bert_tensor *seq = bert_encode(ctx, m, bi, bt, mask, nb, Tb);
            bert_tensor *pooled = want_cls ? bert_pool(ctx, m, seq) : NULL;
            int C = m->config.hidden_size;
            for (int b = 0; b < nb; b++) {
                if (want_mean) {
                    for (int c = 0; c < C; c++) {
                        double sum = 0;
                        for (int t = 0; t < lens[b]; t++) sum += seq->data[((size_t)b * Tb + t) * C + c];
                        meanv[c] = (float)(sum / lens[b]);
                    }
                }
                emit(&out, first_line + b + 1, pooled ? pooled->data + (size_t)b * C : NULL, want_mean ? meanv : NULL);
            }
            free(bi); free(bt);
            first_line += nb;
            nb = 0;
            if (time(NULL) - last_report >= 5) {
                last_report = time(NULL);
                fprintf(stderr, "encode: %ld lines, %.1f lines/s\n", first_line, (double)first_line / (double)(last_report - started));
            }
        }
        if (!line) break;
    }
    if (ferror(in)) die("%s: read error", opt.input);
    if (out.npy) { fflush(out.f); fseek(out.f, 0, SEEK_SET); npy_header(&out, out.rows); }
    if (out.f != stdout && fclose(out.f) != 0) die("%s: write failed", opt.output);
    if (truncated) fprintf(stderr, "encode: %ld of %ld lines were longer than %d tokens and were cut\n", truncated, line_no, T);
    if (opt.output) fprintf(stderr, "encode: %ld lines -> %s\n", line_no, opt.output);
    if (in != stdin) fclose(in);
    free(ids); free(types); free(mask); free(lens); free(meanv); free(sc.a); free(sc.b);
    bert_ctx_free(ctx);
    bert_model_free(m);
    bert_vocab_free(v);
    return 0;
}
