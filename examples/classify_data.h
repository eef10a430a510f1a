/* classify_data.h - examples/classify.c's data path: the label list and the task files, tokenized
   once into examples, and the batches made of them. Task code of classify.c only (included once,
   after run.h and classify.c's options `opt`, which name the layout: --task, the columns or keys,
   --max_seq_length, --do_lower_case).
     labels          an ordered list of names with CLUE's descriptions (label_desc): from --labels_file
                     (labels.json lines or one per line), --label_list, a fine-tuned model's metadata,
                     or the training file's (sorted: numerically when every label is an integer)
     read_tsv        GLUE TSV as run_classifier.py's processors read it (CoLA, SST-2, MRPC and their
                     test files with header "index"), or --task tsv's columns; every row must have
                     the first row's column count
     read_json       JSON lines (CLUE's TNEWS, or --task json's keys); labels and ids strings or numbers
     dataset_add     [CLS] A [SEP] (B [SEP]) cut to --max_seq_length from the end of the longer side;
                     an empty sentence is skipped (train/dev) or kept (test), and counted
     batch_load      examples padded to the longest of the batch
   Bad input stops with one line naming file:line (run_die). */
#ifndef CLASSIFY_DATA_H
#define CLASSIFY_DATA_H

#define MAX_LABELS 4096
#define MAX_COLS 64

// ----------------------------------------------------------------------------
// labels: an ordered list of names (and CLUE's descriptions); regression has none

typedef struct { int n; char *name[MAX_LABELS]; char *desc[MAX_LABELS]; const char *source; } label_table;
static label_table labels;       // the model's labels, in order
static label_table data_descs;   // every label_desc the data files gave, attached to the list at the end

static int table_find(const label_table *t, const char *s) {
    for (int i = 0; i < t->n; i++) if (!strcmp(t->name[i], s)) return i;
    return -1;
}

static int table_add(label_table *t, const char *s, const char *desc, const char *where) {
    int i = table_find(t, s);
    if (i >= 0) { if (desc && !t->desc[i]) t->desc[i] = run_strdup(desc); return i; }
    if (t->n == MAX_LABELS) run_die("%s: over %d distinct labels", where, MAX_LABELS);
    t->name[t->n] = run_strdup(s);
    t->desc[t->n] = desc ? run_strdup(desc) : NULL;
    return t->n++;
}

static void table_clear(label_table *t) {
    for (int i = 0; i < t->n; i++) { free(t->name[i]); free(t->desc[i]); }
    t->n = 0;
}

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

static void labels_sort(const char *source) {
    int numeric = 1;
    for (int i = 0; i < labels.n; i++) numeric &= is_integer(labels.name[i]);
    static char *pairs[MAX_LABELS][2];   // (name, desc), sorted by name
    for (int i = 0; i < labels.n; i++) { pairs[i][0] = labels.name[i]; pairs[i][1] = labels.desc[i]; }
    qsort(pairs, (size_t)labels.n, sizeof pairs[0], numeric ? label_cmp_num : label_cmp_str);
    for (int i = 0; i < labels.n; i++) { labels.name[i] = pairs[i][0]; labels.desc[i] = pairs[i][1]; }
    labels.source = source;
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

// a JSON string or number as text in buf (a label or an id): 1, or 0 if j is neither, or -1 if it
// does not fit (never cut); integers without a fraction
static int json_scalar(const bert_json *j, char *buf, size_t cap) {
    if (!j) return 0;
    if (j->type == BERT_JSON_STRING && (size_t)j->string_len >= cap) return -1;
    if (j->type == BERT_JSON_STRING) snprintf(buf, cap, "%s", j->string);
    else if (j->type == BERT_JSON_NUMBER && j->number == floor(j->number) && fabs(j->number) < 1e15) snprintf(buf, cap, "%.0f", j->number);
    else if (j->type == BERT_JSON_NUMBER) snprintf(buf, cap, "%.17g", j->number);
    else return 0;
    return 1;
}

// the whole file, its UTF-8 BOM skipped: *p its start, *end its end; free() the return value
static char *read_text(const char *path, const char **p, const char **end) {
    size_t len;
    char *text = run_read_file(path, &len);
    if (len > (size_t)1 << 30) run_die("%s: larger than 1024 MB (the most classify reads; its line counts are ints)", path);
    *p = text;
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) { *p += 3; len -= 3; }
    *end = *p + len;
    return text;
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

static void trim(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t')) { (*s)++; (*n)--; }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

// --labels_file: CLUE's labels.json lines ({"label": ..., "label_desc": ...}) or one label per line
static void labels_from_file(const char *path) {
    const char *p, *end, *s;
    char *text = read_text(path, &p, &end);
    size_t n;
    for (int line = 1; (s = next_line(&p, end, &n)) != NULL; line++) {
        if (is_blank(s, n)) continue;
        char where[600], name[256];
        snprintf(where, sizeof where, "%s:%d", path, line);
        if (*s != '{') { char *t = run_strndup(s, n); table_add(&labels, t, NULL, where); free(t); continue; }
        bert_json *j;
        if (bert_json_parse(&j, s, n)) run_die("%s: malformed JSON: %s", where, bert_last_error());
        const bert_json *d = bert_json_get(j, "label_desc");
        int got = json_scalar(bert_json_get(j, "label"), name, sizeof name);
        if (got < 0) run_die("%s: a \"label\" longer than %d bytes", where, (int)sizeof name - 1);
        if (!got) run_die("%s: no \"label\" string or number", where);
        table_add(&labels, name, d && d->type == BERT_JSON_STRING ? d->string : NULL, where);
        bert_json_free(j);
    }
    if (!labels.n) run_die("%s: no labels in the file", path);
    labels.source = path;
    free(text);
}

static void labels_from_list(const char *list) {
    char *copy = run_strdup(list), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) table_add(&labels, t, NULL, "--label_list");
    free(copy);
    if (!labels.n) run_die("--label_list: no labels in '%s'", list);
    labels.source = "--label_list";
}

// a fine-tuned model's label list (metadata "labels" of --init), if it has one
static void labels_from_checkpoint(const char *path) {
    bert_st st;
    if (bert_st_open(&st, path)) run_die("%s", bert_last_error());
    const char *s = bert_st_meta(&st, "labels"), *d = bert_st_meta(&st, "label_descs"), *k = bert_st_meta(&st, "num_labels");
    if (k && !strcmp(k, "1") && !opt.num_labels) opt.num_labels = 1;
    bert_json *j = NULL, *jd = NULL;
    if (s && !bert_json_parse(&j, s, strlen(s)) && j->type == BERT_JSON_ARRAY) {
        if (d && bert_json_parse(&jd, d, strlen(d))) jd = NULL;
        for (int i = 0; i < j->count; i++) {
            if (j->child[i].type != BERT_JSON_STRING) run_die("%s: bad \"labels\" metadata", path);
            const bert_json *dj = jd && jd->type == BERT_JSON_ARRAY && i < jd->count ? &jd->child[i] : NULL;
            table_add(&labels, j->child[i].string, dj && dj->type == BERT_JSON_STRING ? dj->string : NULL, path);
        }
        labels.source = path;
    }
    bert_json_free(j);
    bert_json_free(jd);
    bert_st_close(&st);
}

// ----------------------------------------------------------------------------
// file layouts

typedef enum { FMT_TSV, FMT_JSON } file_format;
typedef struct { int a, b, label, id, header; } tsv_layout;   // 0-based columns, -1 = none

// a GLUE test file starts with a header whose first column is "index"; it has the id, no label
static tsv_layout task_layout(int test_header) {
    tsv_layout L = { opt.text_a_col, opt.text_b_col, opt.label_col, opt.id_col, opt.skip_header };
    if (!strcmp(opt.task, "cola")) { tsv_layout c = { 3, -1, 1, -1, 0 }, t = { 1, -1, -1, 0, 1 }; L = test_header ? t : c; }
    if (!strcmp(opt.task, "sst2")) { tsv_layout c = { 0, -1, 1, -1, 1 }, t = { 1, -1, -1, 0, 1 }; L = test_header ? t : c; }
    if (!strcmp(opt.task, "mrpc")) { tsv_layout c = { 3, 4, 0, -1, 1 }, t = { 3, 4, -1, 0, 1 }; L = test_header ? t : c; }
    return L;
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
        sc->a = (int32_t *)run_realloc(sc->a, (size_t)count * sizeof(int32_t));
        sc->b = (int32_t *)run_realloc(sc->b, (size_t)count * sizeof(int32_t));
        count = bert_tokenize(v, opt.do_lower_case, s, n, into_b ? sc->b : sc->a, sc->cap);
    }
    if (count < 0) run_die("%s:%d: %s", path, line, bert_last_error());
    return count;
}

static void dataset_grow(dataset *d, int T) {
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 1024;
        d->start = (size_t *)run_realloc(d->start, (size_t)(d->cap + 1) * sizeof(size_t));
        d->label_str = (char **)run_realloc(d->label_str, (size_t)d->cap * sizeof(char *));
        d->id = (char **)run_realloc(d->id, (size_t)d->cap * sizeof(char *));
        d->line = (int *)run_realloc(d->line, (size_t)d->cap * sizeof(int));
    }
    if (d->ntok + (size_t)T > d->tokcap) {
        d->tokcap = 2 * (d->ntok + (size_t)T);
        d->ids = (int32_t *)run_realloc(d->ids, d->tokcap * sizeof(int32_t));
        d->types = (int32_t *)run_realloc(d->types, d->tokcap * sizeof(int32_t));
    }
}

// adds one example; text_b may be NULL. Returns 0 when it was skipped (no tokens, not a test file).
static int dataset_add(dataset *d, const bert_vocab *v, const char *a, size_t na_bytes, const char *b, size_t nb_bytes,
                       const char *label, const char *id, int line, int labelled, scratch *sc) {
    int na = tokenize(v, a, na_bytes, 0, sc, d->path, line), nb = b ? tokenize(v, b, nb_bytes, 1, sc, d->path, line) : 0;
    if (b) d->pairs = 1;
    const int32_t *pa = sc->a, *pb = sc->b;   // only now: the second call may have moved both
    if (na == 0 || (b && nb == 0)) {
        d->empty++;
        run_warn("%s:%d: %s has no tokens (empty): %s", d->path, line, na == 0 ? "the sentence" : "the second sentence",
                 labelled ? "skipped" : "predicted from [CLS] [SEP] alone");
        if (labelled) return 0;
    }
    int T = opt.max_seq_length, room = T - (b ? 3 : 2), full = na + nb + (b ? 3 : 2), cut = 0;
    if (full > d->longest) d->longest = full;
    while (na + nb > room) { if (na > nb) na--; else nb--; cut = 1; }   // the longer side loses its last token
    if (cut && !d->truncated++) d->first_cut_line = line;
    dataset_grow(d, T);
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
    d->label_str[d->n] = label ? run_strdup(label) : NULL;
    d->id[d->n] = run_strdup(id);
    d->line[d->n] = line;
    d->n++;
    return 1;
}

// column k of a TSV row, trimmed, into buf (what names it in the message when too long)
static void tsv_field(const dataset *d, int line, const char *s, size_t n, const char *what, int k, char *buf, size_t cap) {
    trim(&s, &n);
    if (n >= cap) run_die("%s:%d: %s longer than %d bytes (column %d)", d->path, line, what, (int)cap - 1, k);
    snprintf(buf, cap, "%.*s", (int)n, s);
}

static void read_tsv(dataset *d, const bert_vocab *v, const char *p, const char *end, int labelled, scratch *sc) {
    const char *s, *f[MAX_COLS];
    size_t n, fl[MAX_COLS];
    int ncols = -1, first_line = 0, row = 0;
    tsv_layout L = { 0, 0, 0, 0, 0 };
    for (int line = 1; (s = next_line(&p, end, &n)) != NULL; line++) {
        if (is_blank(s, n)) { d->blank++; continue; }
        int k = 0;
        for (const char *c = s, *e = s + n;; k++) {   // split on tabs (GLUE files have no quoting)
            if (k == MAX_COLS) run_die("%s:%d: over %d tab-separated columns", d->path, line, MAX_COLS);
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
            if (labelled && L.label < 0) run_die("%s: a test file (header 'index'): it has no labels", d->path);
            if (k <= need) run_die("%s:%d: %d tab-separated columns, but --task %s needs column %d (0-based)", d->path, line, k, opt.task, need);
            if (L.header) continue;
        }
        if (k != ncols) run_die("%s:%d: %d tab-separated columns, expected %d (as on line %d)", d->path, line, k, ncols, first_line);
        char label[256] = "", id[256];
        if (labelled) {
            tsv_field(d, line, f[L.label], fl[L.label], "a label", L.label, label, sizeof label);
            if (!label[0]) run_die("%s:%d: empty label (column %d)", d->path, line, L.label);
        }
        if (L.id >= 0) tsv_field(d, line, f[L.id], fl[L.id], "an id", L.id, id, sizeof id);
        else snprintf(id, sizeof id, "%d", row);
        row++;
        dataset_add(d, v, f[L.a], fl[L.a], L.b >= 0 ? f[L.b] : NULL, L.b >= 0 ? fl[L.b] : 0, label[0] ? label : NULL, id, line, labelled, sc);
    }
}

static void read_json(dataset *d, const bert_vocab *v, const char *p, const char *end, int labelled, scratch *sc) {
    const char *s;
    size_t n;
    int row = 0;
    for (int line = 1; (s = next_line(&p, end, &n)) != NULL; line++) {
        if (is_blank(s, n)) { d->blank++; continue; }
        bert_json *j;
        if (bert_json_parse(&j, s, n)) run_die("%s:%d: malformed JSON: %s", d->path, line, bert_last_error());
        if (j->type != BERT_JSON_OBJECT) run_die("%s:%d: not a JSON object", d->path, line);
        const bert_json *a = bert_json_get(j, opt.text_a_key), *b = opt.text_b_key ? bert_json_get(j, opt.text_b_key) : NULL;
        if (!a || a->type != BERT_JSON_STRING) run_die("%s:%d: no \"%s\" string", d->path, line, opt.text_a_key);
        if (opt.text_b_key && (!b || b->type != BERT_JSON_STRING)) run_die("%s:%d: no \"%s\" string", d->path, line, opt.text_b_key);
        char label[256] = "", id[256];
        const bert_json *lj = bert_json_get(j, opt.label_key);
        int got = lj ? json_scalar(lj, label, sizeof label) : 1;
        if (got < 0) run_die("%s:%d: a \"%s\" longer than %d bytes", d->path, line, opt.label_key, (int)sizeof label - 1);
        if (!got) run_die("%s:%d: \"%s\" is neither a string nor a number", d->path, line, opt.label_key);
        if (labelled && !label[0]) run_die("%s:%d: no \"%s\"", d->path, line, opt.label_key);
        if (!labelled) label[0] = 0;
        got = json_scalar(bert_json_get(j, opt.id_key), id, sizeof id);
        if (got < 0) run_die("%s:%d: an \"%s\" longer than %d bytes", d->path, line, opt.id_key, (int)sizeof id - 1);
        if (!got) snprintf(id, sizeof id, "%d", row);
        row++;
        const bert_json *desc = bert_json_get(j, "label_desc");
        if (label[0] && desc && desc->type == BERT_JSON_STRING) table_add(&data_descs, label, desc->string, d->path);   // CLUE's description
        dataset_add(d, v, a->string, a->string_len, b ? b->string : NULL, b ? b->string_len : 0, label[0] ? label : NULL, id, line, labelled, sc);
        bert_json_free(j);
    }
}

// labelled: a train/dev file (labels required, empty sentences skipped); else a test file
static void dataset_load(dataset *d, const char *path, const bert_vocab *v, int labelled, scratch *sc) {
    memset(d, 0, sizeof *d);
    d->path = path;
    d->fmt = !strcmp(opt.task, "tnews") || !strcmp(opt.task, "json") ? FMT_JSON : FMT_TSV;
    const char *p, *end;
    char *text = read_text(path, &p, &end);
    if (d->fmt == FMT_JSON) read_json(d, v, p, end, labelled, sc);
    else read_tsv(d, v, p, end, labelled, sc);
    free(text);
    if (!d->n) run_die("%s: no examples", path);
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
    d->label = (int32_t *)run_calloc((size_t)d->n, sizeof(int32_t));
    d->target = (float *)run_calloc((size_t)d->n, sizeof(float));
    for (int i = 0; i < d->n; i++) {
        const char *s = d->label_str[i];
        d->label[i] = -1;
        if (!s) continue;
        if (opt.num_labels == 1) {
            char *e;
            double x = strtod(s, &e);
            if (*e || e == s || !isfinite(x)) run_die("%s:%d: regression target '%s' is not a number", d->path, d->line[i], s);
            d->target[i] = (float)x;
        } else if ((d->label[i] = table_find(&labels, s)) < 0) {
            run_die("%s:%d: label '%s' is not one of the %d labels from %s (%s)", d->path, d->line[i], s, labels.n, labels.source, labels_summary());
        }
    }
}

static void dataset_free(dataset *d) {
    for (int i = 0; i < d->n; i++) { free(d->label_str[i]); free(d->id[i]); }
    free(d->start); free(d->ids); free(d->types); free(d->label_str); free(d->label); free(d->target); free(d->id); free(d->line);
    memset(d, 0, sizeof *d);
}

// ----------------------------------------------------------------------------
// batches: examples padded to the longest of the batch

typedef struct { int B, T; int32_t *ids, *types, *mask, *labels; float *targets; } batch;

static void batch_alloc(batch *b, int B) {
    size_t bt = (size_t)B * opt.max_seq_length;
    b->ids = (int32_t *)run_malloc(3 * bt * sizeof(int32_t));
    b->types = b->ids + bt; b->mask = b->types + bt;
    b->labels = (int32_t *)run_malloc((size_t)B * sizeof(int32_t));
    b->targets = (float *)run_malloc((size_t)B * sizeof(float));
}

static void batch_free(batch *b) { free(b->ids); free(b->labels); free(b->targets); }

static void batch_load(batch *b, const dataset *d, const size_t *idx, int B, int pad_id) {
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

#endif // CLASSIFY_DATA_H
