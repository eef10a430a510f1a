/* classify_metrics.h - examples/classify.c's scoring, computed as tests/ref/metrics_ref.py does with
   scikit-learn and scipy (tests/test_classify.c compares them on fixed prediction files). Task code of
   classify.c only (included once, after classify_data.h).
     class_metrics     accuracy, macro-F1 over the labels present (average="macro"), binary F1 of the
                       second label, multiclass MCC (Gorodkin's R_K), confusion matrix, majority baseline
     reg_metrics       Pearson, Spearman (average ranks for ties), MSE
     metrics_json      the JSON of eval_results.json and --eval_predictions, numbers at full precision
     eval_predictions  --eval_predictions FILE: "gold<TAB>predicted" lines scored, one JSON line out */
#ifndef CLASSIFY_METRICS_H
#define CLASSIFY_METRICS_H

static void jstr(FILE *f, const char *s) { run_json_string(f, s, strlen(s)); }
static void jnum(FILE *f, const char *key, double x) {   // ", key: x" at full precision, NaN as null
    fprintf(f, ", \"%s\": ", key);
    if (isfinite(x)) fprintf(f, "%.17g", x); else fputs("null", f);
}

// ----------------------------------------------------------------------------
// metrics of predictions against gold labels or targets

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
    r.confusion = (long *)run_calloc((size_t)K * K + 1, sizeof(long));
    long *t = (long *)run_calloc((size_t)K + 1, sizeof(long)), *p = (long *)run_calloc((size_t)K + 1, sizeof(long)), correct = 0;
    for (int i = 0; i < n; i++) { r.confusion[(size_t)gold[i] * K + pred[i]]++; t[gold[i]]++; p[pred[i]]++; correct += gold[i] == pred[i]; }
    r.accuracy = n ? (double)correct / n : 0.0;
    int present = 0;
    double f1sum = 0.0;
    for (int k = 0; k < K; k++) {
        if (!t[k] && !p[k]) continue;
        f1sum += 2.0 * r.confusion[(size_t)k * K + k] / (double)(t[k] + p[k]);   // 2tp / (2tp + fp + fn)
        present++;
    }
    r.macro_f1 = present ? f1sum / present : 0.0;
    if (K == 2) r.binary_f1 = t[1] + p[1] ? 2.0 * r.confusion[3] / (double)(t[1] + p[1]) : 0.0;
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
    int *order = (int *)run_malloc((size_t)n * sizeof(int));
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
    double *rg = (double *)run_calloc((size_t)n, sizeof(double)), *rp = (double *)run_calloc((size_t)n, sizeof(double));
    r.pearson = n > 1 ? pearson(gold, pred, n) : NAN;
    ranks(gold, rg, n);
    ranks(pred, rp, n);
    r.spearman = n > 1 ? pearson(rg, rp, n) : NAN;
    for (int i = 0; i < n; i++) r.mse += (pred[i] - gold[i]) * (pred[i] - gold[i]) / n;
    free(rg); free(rp);
    return r;
}

static const char *default_metric(void) {   // --metric's default: GLUE's headline metric of the task
    if (opt.num_labels == 1) return "spearman";
    if (!strcmp(opt.task, "cola")) return "mcc";
    if (!strcmp(opt.task, "mrpc")) return "f1";
    return "accuracy";
}

static const char *metric_name(void) { return strcmp(opt.metric, "all") ? opt.metric : default_metric(); }

// the value --metric selects (the checkpoint with the highest is kept)
static double metric_value(const metrics *r) {
    const char *name = metric_name();
    if (!strcmp(name, "spearman")) return r->spearman;
    if (!strcmp(name, "mcc")) return r->mcc;
    if (!strcmp(name, "f1")) return r->K == 2 ? r->binary_f1 : r->macro_f1;
    return r->accuracy;
}

static void metrics_json(FILE *f, const metrics *r) {
    fprintf(f, "{\"n\": %d", r->n);
    if (r->regression) {
        jnum(f, "pearson", r->pearson); jnum(f, "spearman", r->spearman); jnum(f, "mse", r->mse);
    } else {
        fprintf(f, ", \"labels\": [");
        for (int k = 0; k < r->K; k++) { if (k) fprintf(f, ", "); jstr(f, labels.name[k]); }
        fprintf(f, "]");
        jnum(f, "accuracy", r->accuracy); jnum(f, "macro_f1", r->macro_f1); jnum(f, "binary_f1", r->binary_f1); jnum(f, "mcc", r->mcc);
        fprintf(f, ", \"majority_label\": "); jstr(f, labels.name[r->majority]);
        jnum(f, "majority_accuracy", r->majority_acc);
        fprintf(f, ", \"confusion\": [");
        for (int g = 0; g < r->K; g++) {
            fprintf(f, "%s[", g ? ", " : "");
            for (int p = 0; p < r->K; p++) fprintf(f, p ? ", %ld" : "%ld", r->confusion[(size_t)g * r->K + p]);
            fprintf(f, "]");
        }
        fprintf(f, "]");
    }
    if (isfinite(r->loss)) jnum(f, "loss", r->loss);
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

// "gold<TAB>predicted" lines of path into gold/pred (count returned; free each string and the arrays)
static int read_pairs(const char *path, char ***gold, char ***pred) {
    const char *p, *end, *s;
    char *text = read_text(path, &p, &end);
    size_t n;
    int count = 0, cap = 0;
    for (int line = 1; (s = next_line(&p, end, &n)) != NULL; line++) {
        if (is_blank(s, n)) continue;
        const char *tab = (const char *)memchr(s, '\t', n);
        if (!tab || memchr(tab + 1, '\t', (size_t)(s + n - tab - 1))) run_die("%s:%d: expected 2 tab-separated columns (gold, predicted)", path, line);
        if (count == cap) {
            cap = cap ? 2 * cap : 256;
            *gold = (char **)run_realloc(*gold, (size_t)cap * sizeof(char *));
            *pred = (char **)run_realloc(*pred, (size_t)cap * sizeof(char *));
        }
        const char *g = s, *q = tab + 1;
        size_t gn = (size_t)(tab - s), qn = (size_t)(s + n - q);
        trim(&g, &gn); trim(&q, &qn);
        if (!gn || !qn) run_die("%s:%d: an empty label", path, line);
        char *a = (*gold)[count] = run_strndup(g, gn), *b = (*pred)[count] = run_strndup(q, qn), *e1, *e2;
        double x = strtod(a, &e1), y = strtod(b, &e2);
        if (opt.num_labels == 1 && (*e1 || *e2 || !isfinite(x) || !isfinite(y))) run_die("%s:%d: regression values must be numbers", path, line);
        count++;
    }
    if (!count) run_die("%s: no lines", path);
    free(text);
    return count;
}

// --eval_predictions FILE: "gold<TAB>predicted" lines -> the metrics as one JSON line
static int eval_predictions(const char *path) {
    char **gold = NULL, **pred = NULL;
    int count = read_pairs(path, &gold, &pred);
    double *a = (double *)run_calloc((size_t)count, sizeof(double)), *b = (double *)run_calloc((size_t)count, sizeof(double));
    int *ia = (int *)run_calloc((size_t)count, sizeof(int)), *ib = (int *)run_calloc((size_t)count, sizeof(int));
    metrics r;
    if (opt.num_labels == 1) {
        for (int i = 0; i < count; i++) { a[i] = strtod(gold[i], NULL); b[i] = strtod(pred[i], NULL); }
        r = reg_metrics(a, b, count);
    } else {
        if (opt.label_list) labels_from_list(opt.label_list);
        for (int i = 0; i < count && !opt.label_list; i++) { table_add(&labels, gold[i], NULL, path); table_add(&labels, pred[i], NULL, path); }
        if (!opt.label_list) labels_sort(path);
        for (int i = 0; i < count; i++) {
            ia[i] = table_find(&labels, gold[i]); ib[i] = table_find(&labels, pred[i]);
            if (ia[i] < 0 || ib[i] < 0) run_die("%s: label '%s' is not in --label_list (%s)", path, ia[i] < 0 ? gold[i] : pred[i], labels_summary());
        }
        r = class_metrics(ia, ib, count, labels.n);
    }
    metrics_json(stdout, &r);
    printf("\n");
    run_check_stream(stdout, "stdout");
    for (int i = 0; i < count; i++) { free(gold[i]); free(pred[i]); }
    free(gold); free(pred); free(a); free(b); free(ia); free(ib); free(r.confusion);
    return 0;
}

#endif // CLASSIFY_METRICS_H
