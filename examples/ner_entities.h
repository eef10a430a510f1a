/* ner_entities.h - examples/ner.c's tag scheme and scoring: the entity types and their BIO/BIOES
   tags, tags back to spans, entity-level precision/recall/F1. Task code of ner.c only (included once,
   after run.h and ner.c's options `opt` and `ro`, which give --types, --tagging and --out).
     parse_types        --types (at most MAX_TYPES names; their order fixes the tag ids) and --tagging
     tag_of, tag_name   tag ids: 0 = O, then per type B, I (BIO) or B, I, E, S (BIOES); names "B-type"
     tags_to_spans      lenient decoding, the same for gold and predicted tags: B opens, I continues one
                        of its type (else opens), E closes one of its type (else stands alone), S stands
                        alone, O closes
     score_record       exact (type, start, end) matches with every gold mention, counted per type
     summarize          P/R/F1 per type, micro (overall) and macro (the mean of the per-type F1s), and
                        their table
     write_dev_results  the summary as OUT/dev_results.json */
#ifndef NER_ENTITIES_H
#define NER_ENTITIES_H

#define MAX_TYPES 32

// ----------------------------------------------------------------------------
// entity types and tags: O = 0, then per type B, I (BIO) or B, I, E, S (BIOES)

static int ntypes, bioes, ntags;
static char type_names[MAX_TYPES][64];

static void parse_types(void) {
    const char *s = opt.types;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0 || len >= sizeof type_names[0]) run_die("--types: empty or over-long type name in '%s'", opt.types);
        if (ntypes == MAX_TYPES) run_die("--types: more than %d types", MAX_TYPES);
        memcpy(type_names[ntypes], s, len);
        type_names[ntypes][len] = 0;
        for (int t = 0; t < ntypes; t++)
            if (!strcmp(type_names[t], type_names[ntypes])) run_die("--types: '%s' given twice", type_names[t]);
        ntypes++;
        s += len + (e != NULL);
    }
    if (!ntypes) run_die("--types: no types");
    if (!strcmp(opt.tagging, "bio")) bioes = 0;
    else if (!strcmp(opt.tagging, "bioes")) bioes = 1;
    else run_die("--tagging: '%s' is not bio or bioes", opt.tagging);
    ntags = 1 + (bioes ? 4 : 2) * ntypes;
}

static int type_index(const char *name) {
    for (int t = 0; t < ntypes; t++) if (!strcmp(type_names[t], name)) return t;
    return -1;
}

static int tag_of(int type, char prefix) {
    int k = prefix == 'B' ? 0 : prefix == 'I' ? 1 : prefix == 'E' ? 2 : 3;
    return 1 + (bioes ? 4 : 2) * type + k;
}
static char tag_prefix(int tag) { return tag == 0 ? 'O' : "BIES"[(tag - 1) % (bioes ? 4 : 2)]; }
static int tag_type(int tag) { return (tag - 1) / (bioes ? 4 : 2); }

static void tag_name(int tag, char *buf, size_t n) {
    if (tag == 0) snprintf(buf, n, "O");
    else snprintf(buf, n, "%c-%s", tag_prefix(tag), type_names[tag_type(tag)]);
}

// ----------------------------------------------------------------------------
// tags to spans, scores

typedef struct { int type, start, end; } span;   // characters [start, end], end inclusive

// lenient decoding (see the top of the file); returns the number of spans written to out (<= n)
static int tags_to_spans(const int32_t *tags, int n, span *out) {
    int count = 0, open = -1, start = 0;
#define CLOSE(last) do { if (open >= 0) { out[count].type = open; out[count].start = start; out[count++].end = (last); } open = -1; } while (0)
    for (int i = 0; i < n; i++) {
        int tg = tags[i];
        if (tg <= 0 || tg >= ntags) { CLOSE(i - 1); continue; }
        char p = tag_prefix(tg);
        int t = tag_type(tg);
        if (p == 'I' && open == t) continue;
        if (p == 'E' && open == t) { CLOSE(i); continue; }
        CLOSE(i - 1);
        if (p == 'B' || p == 'I') { open = t; start = i; }
        else { open = t; start = i; CLOSE(i); }   // S, or an E that closes nothing
    }
    CLOSE(n - 1);
#undef CLOSE
    return count;
}

typedef struct { long gold[MAX_TYPES], pred[MAX_TYPES], correct[MAX_TYPES]; } counts;

static int cmp_span(const void *a, const void *b) {   // start, end, type
    const span *x = (const span *)a, *y = (const span *)b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return (x->type > y->type) - (x->type < y->type);
}

// a prediction is correct when some gold mention is the same (type, start, end); the gold ones are
// sorted into scratch (room for ng) and looked up, as a long text may predict many
static void score_record(counts *c, const span *gold, int ng, const span *pred, int np, span *scratch) {
    for (int i = 0; i < ng; i++) c->gold[gold[i].type]++;
    if (ng) memcpy(scratch, gold, (size_t)ng * sizeof(span));
    qsort(scratch, (size_t)ng, sizeof(span), cmp_span);
    for (int i = 0; i < np; i++) {
        c->pred[pred[i].type]++;
        if (ng && bsearch(&pred[i], scratch, (size_t)ng, sizeof(span), cmp_span)) c->correct[pred[i].type]++;
    }
}

typedef struct { double p, r, f1, macro_f1; long gold, pred, correct; double type_f1[MAX_TYPES]; } summary;

static double f1_of(long correct, long pred, long gold, double *p, double *r) {
    *p = pred ? (double)correct / pred : 0.0;
    *r = gold ? (double)correct / gold : 0.0;
    return *p + *r > 0 ? 2 * *p * *r / (*p + *r) : 0.0;
}

static summary summarize(const counts *c, FILE *f) {
    summary s;
    memset(&s, 0, sizeof s);
    if (f) fprintf(f, "%-14s %6s %6s %8s %10s %8s %8s\n", "type", "gold", "pred", "correct", "precision", "recall", "F1");
    for (int t = 0; t < ntypes; t++) {
        double p, r;
        s.type_f1[t] = f1_of(c->correct[t], c->pred[t], c->gold[t], &p, &r);
        s.macro_f1 += s.type_f1[t] / ntypes;
        s.gold += c->gold[t]; s.pred += c->pred[t]; s.correct += c->correct[t];
        if (f) fprintf(f, "%-14s %6ld %6ld %8ld %10.2f %8.2f %8.2f\n", type_names[t], c->gold[t], c->pred[t], c->correct[t],
                       100 * p, 100 * r, 100 * s.type_f1[t]);
    }
    s.f1 = f1_of(s.correct, s.pred, s.gold, &s.p, &s.r);
    if (f) {
        fprintf(f, "%-14s %6ld %6ld %8ld %10.2f %8.2f %8.2f\n", "overall", s.gold, s.pred, s.correct, 100 * s.p, 100 * s.r, 100 * s.f1);
        fprintf(f, "%-14s %42s %8.2f\n", "macro", "(mean of the per-type F1)", 100 * s.macro_f1);
    }
    return s;
}

static void write_dev_results(const summary *s) {
    char path[4200];
    snprintf(path, sizeof path, "%s/dev_results.json", ro.out);
    bert_atomic_file out;
    FILE *f = run_create(&out, path);
    fprintf(f, "{\"f1\": %.6f, \"precision\": %.6f, \"recall\": %.6f, \"macro_f1\": %.6f, \"gold\": %ld, \"pred\": %ld, \"correct\": %ld, \"per_type_f1\": {",
            s->f1, s->p, s->r, s->macro_f1, s->gold, s->pred, s->correct);
    for (int t = 0; t < ntypes; t++) fprintf(f, t ? ", \"%s\": %.6f" : "\"%s\": %.6f", type_names[t], s->type_f1[t]);
    fprintf(f, "}}\n");
    run_commit(&out, path);
}

#endif
