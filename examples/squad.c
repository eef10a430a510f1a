// squad.c - SQuAD v1.1 and v2.0 question answering as google-research/bert's run_squad.py does it:
// fine-tune a span head (HF BertForQuestionAnswering's qa_outputs: start and end logits over every
// token), write predictions.json and nbest_predictions.json, and score them with the official v1.1
// metric (exact match and token F1) or v2.0 metric, which also score any existing prediction file
// (--eval). SQuAD 2.0 (--version_2_with_negative, on by itself for a "version": "v2.0" file):
// impossible questions train with every window answering at [CLS]; each question's null score is
// the smallest [CLS] start + end logit over its windows, the null answer "" is always in its n-best,
// and it is predicted when null score - the best non-empty span's score > --null_score_diff_threshold;
// null_odds.json keeps those differences (evaluate-v2.0's --na-prob-file; its best_f1_thresh is the
// threshold to use). Where no span qualifies, a nonce "empty" answer joins the n-best (transformers'
// post-processing; run_squad fails there).
//
//   cc -O2 -march=native -fopenmp -std=c11 examples/squad.c -o build/squad -lm
//   ./build/squad --do_train --do_predict --train_file train-v1.1.json --predict_file dev-v1.1.json
//       --init bert_base.safetensors --vocab vocab.txt --output_dir squad_out      (one command line)
//   ./build/squad --eval dev-v1.1.json squad_out/predictions.json
//   ./build/squad --help
//
// The data path (reading, windows, the text of a span) is squad_features.h, the official metric
// squad_eval.h; this file is the program: flags, run_squad's n-best post-processing (the
// --n_best_size best starts and ends of every window, spans inside the document starting at a
// max-context piece and at most --max_answer_length pieces, sorted by start + end logit, de-duplicated
// by final text, softmax probabilities), the model with its span head, training, prediction.
// Differences, by design: training steps count windows (features), not questions; the first
// answer is used where a training question has several (run_squad refuses those); --dynamic_padding
// pads a batch to its longest window instead of max_seq_length (faster; the softmax then spans
// fewer padding positions); --remove_padding (off here) runs the encoder on the windows' real tokens
// only (faster still; the padded positions then get no logits and take no n-best slot). Training
// is examples/run.h's: an epoch visits the training windows in a Fisher-Yates permutation in full
// batches, micro-batch k of the run uses dropout step k,
// checkpoints in --output_dir, --resume continues exactly, Ctrl-C saves one (exit 130);
// with --do_predict, --eval_every N also predicts and scores --predict_file every N steps.
#define _DEFAULT_SOURCE   // mkdir
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "run.h"
#include "squad_eval.h"
#include "squad_features.h"

// ----------------------------------------------------------------------------
// options: the task's flags; the common ones (optimizer, steps, checkpoints, ...) are run.h's, some
// under run_squad's names

static struct {
    int do_train, do_predict, dynamic_padding, n_best_size, max_answer_length, predict_batch_size, predict_limit;
    int v2;                          // --version_2_with_negative, or a v2.0 file
    squad_windowing win;
    float epochs, null_threshold;
    const char *train_file, *predict_file, *train_articles, *predict_articles;
    const char *vocab, *init, *config, *debug_logits, *dump_features, *eval_details, *na_prob_file, *na_prob_thresh;
} opt = {
    .n_best_size = 20, .max_answer_length = 30, .predict_batch_size = 8,
    .win = { .do_lower_case = 1, .max_seq_length = 384, .doc_stride = 128, .max_query_length = 64 }, .epochs = 3.0f,
};
static run_opts ro;

static const bert_flag flags[] = {
    { "do_train", BERT_FLAG_BOOL, &opt.do_train, "fine-tune on --train_file" },
    { "do_predict", BERT_FLAG_BOOL, &opt.do_predict, "predict --predict_file and score it when it has answers" },
    { "train_file", BERT_FLAG_STR, &opt.train_file, "SQuAD JSON (v1.1 or v2.0), e.g. train-v1.1.json" },
    { "predict_file", BERT_FLAG_STR, &opt.predict_file, "SQuAD JSON (v1.1 or v2.0), e.g. dev-v1.1.json" },
    { "train_articles", BERT_FLAG_STR, &opt.train_articles, "only articles A:B of --train_file (0-based, B excluded; e.g. 0:40); default all" },
    { "predict_articles", BERT_FLAG_STR, &opt.predict_articles, "only articles A:B of --predict_file (e.g. 40:48); default all" },
    { "vocab", BERT_FLAG_STR, &opt.vocab, "vocab.txt of the model" },
    { "init", BERT_FLAG_STR, &opt.init, "weights, safetensors: a pretrained BERT (qa_outputs.* then start random) or a fine-tuned one" },
    { "config", BERT_FLAG_STR, &opt.config, "bert_config.json: a random model without --init, or the config --init lacks" },
    { "output_dir", BERT_FLAG_STR, &ro.out, "model.safetensors, predictions.json, nbest_predictions.json, log.jsonl, checkpoints (= --out)" },
    { "do_lower_case", BERT_FLAG_BOOL, &opt.win.do_lower_case, "lower-case and strip accents (uncased models)" },
    { "max_seq_length", BERT_FLAG_INT, &opt.win.max_seq_length, "pieces per window, [CLS]/[SEP] included" },
    { "doc_stride", BERT_FLAG_INT, &opt.win.doc_stride, "pieces between the starts of two windows of a long context" },
    { "max_query_length", BERT_FLAG_INT, &opt.win.max_query_length, "question pieces kept" },
    { "n_best_size", BERT_FLAG_INT, &opt.n_best_size, "start/end candidates per window and n-best answers per question" },
    { "max_answer_length", BERT_FLAG_INT, &opt.max_answer_length, "longest answer, in pieces" },
    { "train_batch_size", BERT_FLAG_INT, &ro.batch_size, "windows per micro-batch (= --batch_size)" },
    { "predict_batch_size", BERT_FLAG_INT, &opt.predict_batch_size, "windows per forward pass when predicting" },
    { "num_train_epochs", BERT_FLAG_FLOAT, &opt.epochs, "passes over the training windows when --steps is 0 (may be fractional)" },
    { "epochs", BERT_FLAG_FLOAT, &opt.epochs, "= --num_train_epochs" },
    { "learning_rate", BERT_FLAG_FLOAT, &ro.lr, "peak learning rate (= --lr)" },
    { "dynamic_padding", BERT_FLAG_BOOL, &opt.dynamic_padding, "pad each batch to its longest window, not max_seq_length" },
    { "predict_limit", BERT_FLAG_INT, &opt.predict_limit, "predict only the first N questions (0: all), e.g. to measure throughput" },
    { "version_2_with_negative", BERT_FLAG_BOOL, &opt.v2, "SQuAD 2.0: train on impossible questions (answer at [CLS]), predict \"\" when the null score wins (on by itself for a \"version\": \"v2.0\" file)" },
    { "null_score_diff_threshold", BERT_FLAG_FLOAT, &opt.null_threshold, "SQuAD 2.0: predict \"\" when null score - best span score > this (tune it with the eval's best_f1_thresh)" },
    { "eval_details", BERT_FLAG_STR, &opt.eval_details, "also write each question's exact_match and f1 as JSON lines" },
    { "dump_features", BERT_FLAG_STR, &opt.dump_features, "testing: write --predict_file's windows as text (tests/ref/squad_features_ref.py's format)" },
    { "debug_logits", BERT_FLAG_STR, &opt.debug_logits, "testing: predict without a model from 'oracle' (gold) or 'random' logits" },
};
#define NFLAGS ((int)(sizeof flags / sizeof flags[0]))

static const char usage_text[] =
    "usage: squad --do_train --train_file train-v1.1.json [--do_predict --predict_file dev-v1.1.json]\n"
    "             --vocab vocab.txt (--init model.safetensors | --config bert_config.json) [flags]\n"
    "       squad --do_predict --predict_file dev-v1.1.json --init fine_tuned.safetensors --vocab vocab.txt\n"
    "       squad --eval DATA.json PREDICTIONS.json [--eval_details OUT.jsonl]\n"
    "SQuAD v1.1 and v2.0 as google-research/bert's run_squad.py: fine-tuning, predictions.json,\n"
    "nbest_predictions.json (v2.0: null_odds.json), and the official EM/F1 (v2.0: exact, f1, HasAns,\n"
    "NoAns, best thresholds). Ctrl-C while training saves a checkpoint (exit 130); --resume continues it.";

static void check_options(void) {
    const squad_windowing *w = &opt.win;
    if (w->max_seq_length < 8 || w->max_query_length < 1 || w->max_seq_length <= w->max_query_length + 3)
        run_die("--max_seq_length must exceed --max_query_length + 3 (got %d and %d)", w->max_seq_length, w->max_query_length);
    if (w->doc_stride < 1 || opt.n_best_size < 1 || opt.max_answer_length < 1) run_die("--doc_stride, --n_best_size and --max_answer_length must be >= 1");
    if (opt.predict_batch_size < 1) run_die("--predict_batch_size must be >= 1");
    if (!(opt.epochs > 0 && opt.epochs <= 1e6)) run_die("--num_train_epochs (--epochs) must be in (0, 1e6]");
    if (opt.debug_logits && strcmp(opt.debug_logits, "oracle") && strcmp(opt.debug_logits, "random"))
        run_die("--debug_logits: '%s' is not oracle or random", opt.debug_logits);
    if (!opt.do_train && !opt.do_predict && !opt.dump_features) run_die("nothing to do: give --do_train and/or --do_predict (or --eval DATA PRED); --help lists the flags");
    if (opt.do_train && !opt.train_file) run_die("--do_train needs --train_file");
    if ((opt.do_predict || opt.dump_features) && !opt.predict_file) run_die("--do_predict and --dump_features need --predict_file");
    if (!opt.vocab) run_die("--vocab is required");
    if (opt.debug_logits && opt.do_train) run_die("--debug_logits predicts without a model: no --do_train");
    if ((opt.do_train || (opt.do_predict && !opt.debug_logits)) && !opt.init && !opt.config)
        run_die("give --init model.safetensors (pretrained or fine-tuned) or --config bert_config.json (random weights)");
    const char *inputs[2] = { opt.do_train ? opt.train_file : NULL, opt.do_predict || opt.dump_features ? opt.predict_file : NULL };
    for (int i = 0; i < 2; i++) {   // before a model loads for minutes
        FILE *f = inputs[i] ? (FILE *)bert_open_input(inputs[i]) : NULL;
        if (inputs[i] && !f) run_die("%s", bert_last_error());
        if (f) fclose(f);
    }
}

// "version": "v2.0" (the released files) or "2.0"
static int is_v2(const squad_data *d) { return d->version[0] == '2' || !strncmp(d->version, "v2", 2); }

// SQuAD 2.0 mode from a v2.0 file when --version_2_with_negative was not given (run_squad needs the
// flag; a v2.0 file read as v1.1 would only lose its impossible questions)
static void note_v2(const squad_data *d) {
    if (opt.v2 || !(is_v2(d) || d->impossible)) return;
    opt.v2 = 1;
    if (!run_rank()) fprintf(stderr, "squad: note: %s is SQuAD 2.0 (version %s): --version_2_with_negative is on\n", d->path, d->version);
}

// the questions of path (articles A:B) and their windows; limit > 0 keeps the first limit questions.
// In v2.0 mode an impossible question trains as one whose every window answers at [CLS]
static void load_windows(squad_data *d, feature_set *fs, const bert_vocab *v, const char *path, const char *flag,
                         const char *articles, int training, int limit) {
    read_squad(d, path, flag, articles, 1);
    if (limit > 0) keep_examples(d, limit);
    note_v2(d);
    for (int i = 0; i < d->nex && opt.v2; i++) d->ex[i].train_ok |= d->ex[i].impossible && d->para[d->ex[i].para].nwords > 0;
    tokenize_paragraphs(d, v, opt.win.do_lower_case);
    convert(d, v, fs, training, &opt.win);
}

// ----------------------------------------------------------------------------
// predictions: run_squad's write_predictions

typedef struct {
    float *v;          // (features, 2, stride): each window's start row, then its end row
    int *n;            // (features) positions that have a logit (max_seq_length, or the batch's length)
    int stride;
} logit_set;

// _get_best_indexes: the n largest of x[0..len), largest first, the lower index first among equals
// (Python's sort is stable, also with reverse=True)
static int best_indexes(const float *x, int len, int n, int *top) {
    int k = 0;
    for (int i = 0; i < len; i++) {
        if (k == n && !(x[i] > x[top[n - 1]])) continue;
        int j = k < n ? k++ : n - 1;
        for (; j > 0 && x[top[j - 1]] < x[i]; j--) top[j] = top[j - 1];
        top[j] = i;
    }
    return k;
}

typedef struct { int feature, start, end; double start_logit, end_logit; int order; } prelim;

static int cmp_prelim(const void *a, const void *b) {   // score descending, then first found first
    const prelim *x = (const prelim *)a, *y = (const prelim *)b;
    double sx = x->start_logit + x->end_logit, sy = y->start_logit + y->end_logit;
    if (sx != sy) return sx > sy ? -1 : 1;
    return x->order - y->order;
}

typedef struct { char *text; size_t len; double start_logit, end_logit; } nbest_entry;

typedef struct {             // write_predictions' work buffers, reused question after question
    int *si, *ei;            // (n_best_size) a window's best start and end positions
    prelim *pre; int npre, pcap;
    nbest_entry *best;       // (n_best_size + 2)
    final_scratch fx;
    int null_feature;        // v2.0: the window whose [CLS] start + end logit is smallest (-1: no window)
    double null_start, null_end, score_null;   // its [CLS] logits and their sum
} post_scratch;

// the prelim predictions of e over its windows, best first; in v2.0 mode also the null answer
// ([CLS], [CLS]) of the window where it scores least, added last (sorted after spans it ties with)
static void candidates(post_scratch *ps, const example *e, const feature_set *fs, const logit_set *lg) {
    ps->npre = 0;
    ps->null_feature = -1;
    for (int k = 0; k < e->nfeatures; k++) {
        int fi = e->first_feature + k;
        const feature *f = &fs->f[fi];
        const float *sl = lg->v + (size_t)fi * 2 * lg->stride, *el = sl + lg->stride;
        double null_score = (double)sl[0] + (double)el[0];
        if (opt.v2 && (ps->null_feature < 0 || null_score < ps->score_null)) {
            ps->null_feature = fi;
            ps->score_null = null_score;
            ps->null_start = sl[0]; ps->null_end = el[0];
        }
        int ns = best_indexes(sl, lg->n[fi], opt.n_best_size, ps->si), ne = best_indexes(el, lg->n[fi], opt.n_best_size, ps->ei);
        for (int a = 0; a < ns; a++)
            for (int b = 0; b < ne; b++) {
                int s = ps->si[a], t = ps->ei[b], lo = f->doc_offset, hi = f->doc_offset + f->span_len;
                if (s >= f->ntokens || t >= f->ntokens || s < lo || s >= hi || t < lo || t >= hi) continue;
                if (!fs->maxctx[f->ctx_at + (size_t)(s - lo)] || t < s || t - s + 1 > opt.max_answer_length) continue;
                prelim x = { fi, s, t, sl[s], el[t], ps->npre };
                ARR_PUSH(ps->pre, ps->npre, ps->pcap, x);
            }
    }
    if (ps->null_feature >= 0) {
        prelim x = { ps->null_feature, 0, 0, ps->null_start, ps->null_end, ps->npre };
        ARR_PUSH(ps->pre, ps->npre, ps->pcap, x);
    }
    qsort(ps->pre, (size_t)ps->npre, sizeof *ps->pre, cmp_prelim);
}

// the final text of candidate c: " ".join of the original words under it, through get_final_text
static char *span_text(post_scratch *ps, const squad_data *d, const example *e, const feature_set *fs, const prelim *c,
                       const bert_vocab *v, size_t *flen) {
    const paragraph *p = &d->para[e->para];
    const feature *f = &fs->f[c->feature];
    int w0 = p->piece_word[f->span_start + c->start - f->doc_offset];
    int w1 = p->piece_word[f->span_start + c->end - f->doc_offset];
    size_t olen = (size_t)(p->word_at[w1] + p->word_len[w1] - p->word_at[w0]), tlen, k = 0;
    char *orig = (char *)run_malloc(olen + 1);
    for (int w = w0; w <= w1; w++) {
        if (w > w0) orig[k++] = ' ';
        memcpy(orig + k, p->text + p->word_at[w], (size_t)p->word_len[w]);
        k += (size_t)p->word_len[w];
    }
    char *tok = piece_text(v, fs->ids + f->ids_at + c->start, c->end - c->start + 1, &tlen);
    char *final = get_final_text(&ps->fx, v->mode, opt.win.do_lower_case, tok, tlen, orig, k, flen);
    if (!final) run_die("%s: question %s: %s", d->path, e->qid, bert_last_error());
    free(tok); free(orig);
    return final;
}

/* e's n-best answers in ps->best (distinct texts; "empty" when there is none); returns how many.
   v2.0: the null answer "" is always among them (appended when the n best spans crowd it out), and
   when it is alone a nonce "empty" (logits 0) goes first, as transformers' SQuAD post-processing does
   where run_squad would fail on a question with no span candidate. */
static int nbest_of(post_scratch *ps, const squad_data *d, const example *e, const feature_set *fs, const bert_vocab *v) {
    int nbest = 0, have_null = 0;
    for (int i = 0; i < ps->npre && nbest < opt.n_best_size; i++) {
        const prelim *c = &ps->pre[i];
        size_t flen = 0;
        char *final;
        if (c->start > 0) {
            final = span_text(ps, d, e, fs, c, v, &flen);
            int seen = 0;
            for (int j = 0; j < nbest && !seen; j++) seen = ps->best[j].len == flen && !memcmp(ps->best[j].text, final, flen);
            if (seen) { free(final); continue; }
        } else {
            final = run_strndup("", 0);
        }
        nbest_entry x = { final, flen, c->start_logit, c->end_logit };
        have_null |= flen == 0;
        ps->best[nbest++] = x;
    }
    if (ps->null_feature >= 0 && !have_null) {
        nbest_entry x = { run_strndup("", 0), 0, ps->null_start, ps->null_end };
        ps->best[nbest++] = x;
    }
    if (ps->null_feature >= 0 && nbest == 1) {
        memmove(ps->best + 1, ps->best, sizeof *ps->best);
        nbest_entry x = { run_strndup("empty", 5), 5, 0.0, 0.0 };
        ps->best[0] = x;
        nbest++;
    }
    if (!nbest) { nbest_entry x = { run_strndup("empty", 5), 5, 0.0, 0.0 }; ps->best[nbest++] = x; }
    return nbest;
}

// question e's entries of predictions.json (fp: its answer) and nbest_predictions.json (fn): json.dumps(indent=4)
static void write_question(FILE *fp, FILE *fn, const example *e, const strv *answer, const nbest_entry *best, int nbest, int last) {
    double mx = 0, total = 0;   // _compute_softmax over start + end logits
    for (int i = 0; i < nbest; i++) if (i == 0 || best[i].start_logit + best[i].end_logit > mx) mx = best[i].start_logit + best[i].end_logit;
    for (int i = 0; i < nbest; i++) total += exp(best[i].start_logit + best[i].end_logit - mx);
    fputs("    ", fp); py_json_string(fp, e->qid, strlen(e->qid)); fputs(": ", fp);
    py_json_string(fp, answer->s, answer->len);
    fputs(last ? "\n}\n" : ",\n", fp);
    fputs("    ", fn); py_json_string(fn, e->qid, strlen(e->qid)); fputs(": [\n", fn);
    for (int i = 0; i < nbest; i++) {
        fputs("        {\n            \"text\": ", fn); py_json_string(fn, best[i].text, best[i].len);
        fputs(",\n            \"probability\": ", fn); json_double(fn, exp(best[i].start_logit + best[i].end_logit - mx) / total);
        fputs(",\n            \"start_logit\": ", fn); json_double(fn, best[i].start_logit);
        fputs(",\n            \"end_logit\": ", fn); json_double(fn, best[i].end_logit);
        fputs(i + 1 < nbest ? "\n        },\n" : "\n        }\n", fn);
    }
    fputs(last ? "    ]\n}\n" : "    ],\n", fn);
}

// DIR/NAME, written atomically (run_create); out->tmp names it until run_commit
static FILE *open_out(bert_atomic_file *out, char *path, size_t cap, const char *dir, const char *name) {
    snprintf(path, cap, "%s/%s", dir, name);
    return run_create(out, path);
}

/* v2.0: the answer is "" when score_null - (the best non-empty entry's start + end logit) exceeds
   --null_score_diff_threshold, else that entry's text; *diff gets the difference (null_odds.json).
   A question without windows answers "" (diff 0). Returns the entry index, or -1 for "". */
static int v2_answer(const post_scratch *ps, const nbest_entry *best, int nbest, double *diff) {
    int k = 0;
    while (k < nbest && !best[k].len) k++;
    *diff = 0;
    if (ps->null_feature < 0 || k == nbest) return -1;
    *diff = ps->score_null - best[k].start_logit - best[k].end_logit;
    return *diff > (double)opt.null_threshold ? -1 : k;
}

/* write_predictions: predictions.json and nbest_predictions.json in dir (as run_squad writes them),
   in v2.0 mode also null_odds.json (question id -> null score difference); returns each question's
   answer (the first of its n-best; v2.0: v2_answer's), and in v2.0 mode *null_odds (per question). */
static strv *write_predictions(const char *dir, const squad_data *d, const feature_set *fs, const logit_set *lg, const bert_vocab *v,
                               double **null_odds) {
    bert_atomic_file op, on, oo;
    char pp[4200], pn[4200], po[4200];
    FILE *fp = open_out(&op, pp, sizeof pp, dir, "predictions.json"), *fn = open_out(&on, pn, sizeof pn, dir, "nbest_predictions.json");
    FILE *fo = opt.v2 ? open_out(&oo, po, sizeof po, dir, "null_odds.json") : NULL;
    strv *answers = (strv *)run_malloc((size_t)(d->nex ? d->nex : 1) * sizeof(strv));
    *null_odds = opt.v2 ? (double *)run_calloc((size_t)(d->nex ? d->nex : 1), sizeof(double)) : NULL;
    post_scratch ps;
    memset(&ps, 0, sizeof ps);
    ps.si = (int *)run_malloc((size_t)opt.n_best_size * sizeof(int));
    ps.ei = (int *)run_malloc((size_t)opt.n_best_size * sizeof(int));
    ps.best = (nbest_entry *)run_malloc((size_t)(opt.n_best_size + 2) * sizeof(nbest_entry));
    fputs(d->nex ? "{\n" : "{}\n", fp);
    fputs(d->nex ? "{\n" : "{}\n", fn);
    if (fo) fputs(d->nex ? "{\n" : "{}\n", fo);
    for (int q = 0; q < d->nex; q++) {
        candidates(&ps, &d->ex[q], fs, lg);
        int nbest = nbest_of(&ps, d, &d->ex[q], fs, v), pick = 0;
        if (fo) {
            pick = v2_answer(&ps, ps.best, nbest, &(*null_odds)[q]);
            fputs("    ", fo); py_json_string(fo, d->ex[q].qid, strlen(d->ex[q].qid)); fputs(": ", fo);
            json_double(fo, (*null_odds)[q]);
            fputs(q + 1 == d->nex ? "\n}\n" : ",\n", fo);
        }
        answers[q].len = pick < 0 ? 0 : ps.best[pick].len;
        answers[q].s = run_strndup(pick < 0 ? "" : ps.best[pick].text, answers[q].len);
        write_question(fp, fn, &d->ex[q], &answers[q], ps.best, nbest, q + 1 == d->nex);
        for (int i = 0; i < nbest; i++) free(ps.best[i].text);
    }
    run_commit(&op, pp);
    run_commit(&on, pn);
    if (fo) run_commit(&oo, po);
    free(ps.si); free(ps.ei); free(ps.pre); free(ps.best);
    free(ps.fx.pred.c); free(ps.fx.orig.c); free(ps.fx.tok.c); free(ps.fx.basic); free(ps.fx.map_a); free(ps.fx.map_b);
    return answers;
}

// ----------------------------------------------------------------------------
// scoring: the built-in one after --do_predict, and --eval DATA.json PREDICTIONS.json

// scores d's questions against preds[i] (NULL: unanswered); prints the official script's line
static squad_score score_examples(const squad_data *d, const strv *const *preds) {
    scored_question *q = (scored_question *)run_malloc((size_t)(d->nex ? d->nex : 1) * sizeof *q);
    for (int i = 0; i < d->nex; i++) {
        scored_question x = { d->ex[i].qid, d->ex[i].ngolds, d->ex[i].golds, preds[i] };
        q[i] = x;
    }
    bert_atomic_file out;
    FILE *details = opt.eval_details ? run_create(&out, opt.eval_details) : NULL;
    squad_score r = score_all(q, d->nex, details);
    if (details) run_commit(&out, opt.eval_details);
    printf("{\"exact_match\": ");
    json_double(stdout, r.exact_match);
    printf(", \"f1\": ");
    json_double(stdout, r.f1);
    printf("}\n");
    free(q);
    return r;
}

typedef struct { const char *key; int index; } pred_key;

static int cmp_pred_key(const void *a, const void *b) {
    const pred_key *x = (const pred_key *)a, *y = (const pred_key *)b;
    int c = strcmp(x->key, y->key);
    return c ? c : x->index - y->index;
}

// evaluate-v2.0.py on a version 2 file: the no-answer probabilities (na: per question, else
// --na_prob_file: question id -> probability, else 0 for every question) and --na_prob_thresh (1.0)
static squad_score eval_v2(const squad_data *d, const strv *const *preds, const double *na_probs) {
    v2_question *q = (v2_question *)run_calloc((size_t)(d->nex ? d->nex : 1), sizeof *q);
    int *ngolds = (int *)run_calloc((size_t)(d->nex ? d->nex : 1), sizeof *ngolds);
    const strv **golds = (const strv **)run_calloc((size_t)(d->nex ? d->nex : 1), sizeof *golds);
    for (int i = 0; i < d->nex; i++) { q[i].qid = d->ex[i].qid; q[i].has_ans = d->ex[i].ngolds > 0; ngolds[i] = d->ex[i].ngolds; golds[i] = d->ex[i].golds; }
    bert_json *na = opt.na_prob_file ? parse_json_file(opt.na_prob_file) : NULL;
    if (na && na->type != BERT_JSON_OBJECT) run_die("%s: not a JSON object of question id -> no-answer probability", opt.na_prob_file);
    for (int i = 0; na_probs && i < d->nex; i++) q[i].na_prob = na_probs[i];
    for (int i = 0; na && i < d->nex; i++) {
        const bert_json *p = bert_json_get(na, q[i].qid);
        if (!p && preds[i]) run_die("%s: no probability for question %s", opt.na_prob_file, q[i].qid);
        if (p && p->type != BERT_JSON_NUMBER) run_die("%s: the probability of question %s is not a number", opt.na_prob_file, q[i].qid);
        if (p) q[i].na_prob = p->number;
    }
    v2_raw_scores(q, d->nex, ngolds, golds, preds);
    char *end;
    const char *th = opt.na_prob_thresh ? opt.na_prob_thresh : "1.0";
    double thresh = strtod(th, &end);
    if (end == th || *end || !isfinite(thresh)) run_die("--na_prob_thresh: '%s' is not a number", th);
    squad_score r = v2_report(stdout, q, d->nex, thresh, na != NULL || na_probs != NULL);
    bert_json_free(na);
    free(q); free(ngolds); free(golds);
    return r;
}

// the official evaluate-v1.1.py (and evaluate-v2.0.py on a "version": "2.0" file): every question of
// the file, a prediction per id (the last one when an id repeats, as Python's dict), unanswered ones
// scored 0
static int eval_files(const char *data_path, const char *pred_path) {
    squad_data d;
    read_squad(&d, data_path, NULL, NULL, 0);
    if (strcmp(d.version, "1.1") && !is_v2(&d)) fprintf(stderr, "Evaluation expects v-1.1, but got dataset with v-%s\n", d.version);
    bert_json *pj = parse_json_file(pred_path);
    if (pj->type != BERT_JSON_OBJECT) run_die("%s: not a JSON object of question id -> answer text", pred_path);
    pred_key *keys = (pred_key *)run_malloc((size_t)(pj->count ? pj->count : 1) * sizeof *keys);
    for (int i = 0; i < pj->count; i++) {
        if (pj->child[i].type != BERT_JSON_STRING) run_die("%s: the answer of question '%s' is not a string", pred_path, pj->child[i].key);
        pred_key k = { pj->child[i].key, i };
        keys[i] = k;
    }
    qsort(keys, (size_t)pj->count, sizeof *keys, cmp_pred_key);
    strv *answers = (strv *)run_malloc((size_t)(d.nex ? d.nex : 1) * sizeof *answers);
    const strv **preds = (const strv **)run_malloc((size_t)(d.nex ? d.nex : 1) * sizeof *preds);
    for (int i = 0; i < d.nex; i++) {
        int lo = 0, hi = pj->count;   // past the last entry with this key
        while (lo < hi) { int mid = (lo + hi) / 2; if (strcmp(keys[mid].key, d.ex[i].qid) <= 0) lo = mid + 1; else hi = mid; }
        preds[i] = NULL;
        if (lo > 0 && !strcmp(keys[lo - 1].key, d.ex[i].qid)) {
            const bert_json *s = &pj->child[keys[lo - 1].index];
            answers[i].s = s->string;
            answers[i].len = s->string_len;
            preds[i] = &answers[i];
        }
    }
    if (is_v2(&d)) eval_v2(&d, preds, NULL);   // evaluate-v2.0.py
    else score_examples(&d, preds);
    run_check_stream(stdout, "stdout");
    free(preds); free(answers); free(keys);
    bert_json_free(pj);
    free_squad(&d);
    return 0;
}

// ----------------------------------------------------------------------------
// model: a BERT (random, or --init) with the span head

static int has_file(const char *p) { FILE *f = fopen(p, "rb"); if (f) fclose(f); return f != NULL; }

// the config: --init's metadata, else --config, else bert_config.json / config.json beside --init;
// *from: where it came from; *head: --init holds a trained span head
static void find_config(bert_config *cfg, char *from, size_t cap, int *head) {
    int have = 0;
    *head = 0;
    if (opt.init) {
        bert_st st;
        if (bert_st_open(&st, opt.init)) run_die("%s", bert_last_error());
        const char *c = bert_st_meta(&st, "config");
        if (c && bert_config_parse(cfg, c, strlen(c), opt.init)) run_die("%s", bert_last_error());
        have = c != NULL;
        snprintf(from, cap, "%s", opt.init);
        *head = bert_st_find(&st, "qa_outputs.weight") && bert_st_find(&st, "qa_outputs.bias");
        bert_st_close(&st);
    }
    if (!have && opt.config) {
        if (bert_config_load(cfg, opt.config)) run_die("%s", bert_last_error());
        have = 1;
        snprintf(from, cap, "%s", opt.config);
    }
    for (int i = 0; !have && opt.init && i < 2; i++) {
        static const char *const names[] = { "bert_config.json", "config.json" };
        const char *slash = strrchr(opt.init, '/');
        char p[4200];
        snprintf(p, sizeof p, "%.*s%s", slash ? (int)(slash - opt.init + 1) : 0, opt.init, names[i]);
        if (has_file(p)) { if (bert_config_load(cfg, p)) run_die("%s", bert_last_error()); have = 1; snprintf(from, cap, "%s", p); }
    }
    if (!have) run_die("give --config bert_config.json (or --init with a config in its metadata or beside it)");
}

static bert_model *make_model(const bert_vocab *v, int *head) {
    bert_config cfg;
    char from[4200];
    find_config(&cfg, from, sizeof from, head);
    if (cfg.vocab_size != v->size) run_die("%s has %d tokens but the model's vocab_size is %d", opt.vocab, v->size, cfg.vocab_size);
    if (cfg.max_position_embeddings < opt.win.max_seq_length)
        run_die("--max_seq_length %d exceeds the model's max_position_embeddings %d", opt.win.max_seq_length, cfg.max_position_embeddings);
    if (cfg.type_vocab_size < 2)   // else bert_embed's range assertion aborts on the first batch
        run_die("%s: type_vocab_size is %d: SQuAD's windows need token types 0 (question) and 1 (context)", from, cfg.type_vocab_size);
    bert_model *m = bert_model_create(&cfg, (uint64_t)ro.seed);
    if (!m || bert_span_head_add(m, (uint64_t)ro.seed + 1)) run_die("%s", bert_last_error());
    if (opt.init) {
        int missing;
        if (bert_model_load_encoder(m, opt.init, &missing)) run_die("%s", bert_last_error());
    }
    return m;
}

// ----------------------------------------------------------------------------
// batches

typedef struct { int32_t *ids, *types, *mask, *start, *end; } batch;

static void batch_alloc(batch *b, int B) {
    size_t n = (size_t)B * opt.win.max_seq_length;
    b->ids = (int32_t *)run_malloc(3 * n * sizeof(int32_t) + 2 * (size_t)B * sizeof(int32_t));
    b->types = b->ids + n; b->mask = b->types + n; b->start = b->mask + n; b->end = b->start + B;
}

// windows idx[0..n) as [CLS] question [SEP] (segment 0) window [SEP] (segment 1), padded with 0 to
// max_seq_length or, with --dynamic_padding, to the longest of them; returns the length T
static int batch_fill(batch *b, const feature_set *fs, const size_t *idx, int n) {
    int T = opt.win.max_seq_length;
    if (opt.dynamic_padding) {
        T = 1;
        for (int i = 0; i < n; i++) if (fs->f[idx[i]].ntokens > T) T = fs->f[idx[i]].ntokens;
    }
    for (int i = 0; i < n; i++) {
        const feature *f = &fs->f[idx[i]];
        for (int t = 0; t < T; t++) {
            int real = t < f->ntokens;
            b->ids[i * T + t] = real ? fs->ids[f->ids_at + (size_t)t] : 0;
            b->types[i * T + t] = real && t >= f->doc_offset;
            b->mask[i * T + t] = real;
        }
        b->start[i] = f->start;
        b->end[i] = f->end;
    }
    return T;
}

// ----------------------------------------------------------------------------
// prediction

typedef struct { double seconds, forward_seconds; int windows, scored; squad_score score; } predict_result;

// logits without a model, for testing the pipeline: "oracle" puts 1 at each window's gold start and
// end (0 elsewhere); "random" draws u = bert_rng_uniform(bert_rng_stream(seed, window, 0|1), t)
static void debug_logits(logit_set *lg, const feature_set *fs, const char *mode) {
    int oracle = !strcmp(mode, "oracle");
    for (int i = 0; i < fs->n; i++) {
        float *sl = lg->v + (size_t)i * 2 * lg->stride, *el = sl + lg->stride;
        uint64_t s0 = bert_rng_stream((uint64_t)ro.seed, (uint64_t)i, 0), s1 = bert_rng_stream((uint64_t)ro.seed, (uint64_t)i, 1);
        lg->n[i] = lg->stride;
        for (int t = 0; t < lg->stride; t++) {
            sl[t] = oracle ? (float)(t == fs->f[i].start) : bert_rng_uniform(s0, (uint64_t)t);
            el[t] = oracle ? (float)(t == fs->f[i].end) : bert_rng_uniform(s1, (uint64_t)t);
        }
    }
}

// the start and end logits of every window, --predict_batch_size windows per forward pass
static void forward_all(bert_model *m, const feature_set *fs, logit_set *lg, predict_result *r) {
    int PB = opt.predict_batch_size;
    size_t *idx = (size_t *)run_malloc((size_t)PB * sizeof(size_t));
    float *host = (float *)run_malloc((size_t)PB * 2 * (size_t)lg->stride * sizeof(float));
    bert_ctx *ctx = bert_ctx_create((size_t)64 << 20);
    if (!ctx) run_die("out of memory for the activation arena");
    ctx->training = 0;
    ctx->grad_enabled = 0;
    ctx->remove_padding = ro.remove_padding;
    batch b;
    batch_alloc(&b, PB);
    double t0 = bert_time_s(), last = t0;
    for (int i = 0; i < fs->n; i += PB) {
        int n = fs->n - i < PB ? fs->n - i : PB;
        for (int k = 0; k < n; k++) idx[k] = (size_t)(i + k);
        int T = batch_fill(&b, fs, idx, n);
        double tf = bert_time_s();
        bert_ctx_reset(ctx, 0);
        bert_span_out o = bert_span_forward(ctx, m, b.ids, b.types, b.mask, n, T, NULL, NULL);
        run_read_finite(ctx, o.logits, host, opt.predict_file);   // (n,2,T): rows 2k (start) and 2k+1 (end)
        for (int k = 0; k < 2 * n; k++) memcpy(lg->v + ((size_t)2 * i + (size_t)k) * lg->stride, host + (size_t)k * T, (size_t)T * sizeof(float));
        for (int k = 0; k < n; k++) lg->n[i + k] = ro.remove_padding ? fs->f[i + k].ntokens : T;   // padded rows: no logits
        r->forward_seconds += bert_time_s() - tf;
        if (bert_time_s() - last >= 10 || i + n == fs->n) {
            char eta[32];
            last = bert_time_s();
            bert_format_duration(eta, sizeof eta, (last - t0) / (i + n) * (fs->n - i - n));
            printf("predict: %d/%d windows | %.2f windows/s | ETA %s\n", i + n, fs->n, (i + n) / r->forward_seconds, eta);
            fflush(stdout);
        }
    }
    r->seconds = bert_time_s() - t0;
    free(idx); free(host); free(b.ids);
    bert_ctx_free(ctx);
}

/* --predict_file through the model (or --debug_logits): predictions.json and nbest_predictions.json
   in --output_dir, and the official score when every question has answers. */
static predict_result predict(bert_model *m, const bert_vocab *v) {
    run_precision(m, ro.precision);
    predict_result r;
    memset(&r, 0, sizeof r);
    squad_data d;
    feature_set fs;
    double t0 = bert_time_s();
    load_windows(&d, &fs, v, opt.predict_file, "predict_articles", opt.predict_articles, 0, opt.predict_limit);
    printf("predict data: %s articles %s | %d questions | %d windows | %.1f s\n", opt.predict_file,
           opt.predict_articles ? opt.predict_articles : "all", d.nex, fs.n, bert_time_s() - t0);
    logit_set lg = { (float *)run_malloc((size_t)(fs.n ? fs.n : 1) * 2 * opt.win.max_seq_length * sizeof(float)),
                     (int *)run_malloc((size_t)(fs.n ? fs.n : 1) * sizeof(int)), opt.win.max_seq_length };
    if (opt.debug_logits) debug_logits(&lg, &fs, opt.debug_logits);
    else forward_all(m, &fs, &lg, &r);
    double *null_odds;
    strv *answers = write_predictions(ro.out, &d, &fs, &lg, v, &null_odds);
    printf("wrote %s/predictions.json and nbest_predictions.json%s\n", ro.out, opt.v2 ? " and null_odds.json" : "");
    r.scored = d.nex > 0;
    for (int i = 0; i < d.nex; i++) r.scored &= d.ex[i].ngolds > 0 || (opt.v2 && d.ex[i].impossible);
    if (r.scored) {   // v2.0: evaluate-v2.0.py with --na-prob-file null_odds.json, as google-research/bert's README runs it
        const strv **preds = (const strv **)run_malloc((size_t)d.nex * sizeof *preds);
        for (int i = 0; i < d.nex; i++) preds[i] = &answers[i];
        r.score = opt.v2 ? eval_v2(&d, preds, null_odds) : score_examples(&d, preds);
        free(preds);
    }
    free(null_odds);
    if (!opt.debug_logits)
        printf("predict: %d windows in %.1f s (%.2f windows/s forward, %.2f end to end)\n", fs.n, r.seconds,
               r.forward_seconds > 0 ? fs.n / r.forward_seconds : 0.0, r.seconds > 0 ? fs.n / r.seconds : 0.0);
    run_check_stream(stdout, "stdout");
    for (int i = 0; i < d.nex; i++) free((void *)answers[i].s);
    free(answers); free(lg.v); free(lg.n);
    r.windows = fs.n;
    free_features(&fs);
    free_squad(&d);
    return r;
}

// ----------------------------------------------------------------------------
// training (examples/run.h)

// a prediction and score of --predict_file during or after training: the eval line and log record
static void evaluate(run *r, bert_model *m, const bert_vocab *v) {
    run_eval_begin(r);
    predict_result p = predict(m, v);
    run_metric mt[2] = { { "exact_match", p.score.exact_match }, { "f1", p.score.f1 } };
    run_eval_end(r, p.scored ? NULL : "predictions written, no answers to score", mt, p.scored ? 2 : 0);
}

// the step's loss on a zero batch of full length, for run_begin's --max_memory_mb check
static bert_tensor *measure_loss(bert_ctx *ctx, bert_model *m, int B, void *arg) {
    (void)arg;
    batch b;
    batch_alloc(&b, B);
    memset(b.ids, 0, (3 * (size_t)B * opt.win.max_seq_length + 2 * (size_t)B) * sizeof(int32_t));
    bert_tensor *loss = bert_span_forward(ctx, m, b.ids, b.types, b.mask, B, opt.win.max_seq_length, b.start, b.end).loss;
    free(b.ids);
    return loss;
}

static void train_steps(run *r, bert_model *m, const bert_vocab *v, const feature_set *fs) {
    int A = ro.accumulation_steps;
    batch b;
    batch_alloc(&b, ro.batch_size);
    while (run_next_step(r)) {
        double data_s = 0;
        for (int k = 0; k < A; k++) {
            int n;
            double t0 = bert_time_s();
            const size_t *idx = run_batch(r, &n);
            int T = batch_fill(&b, fs, idx, n);
            data_s += bert_time_s() - t0;
            bert_ctx *ctx = run_micro(r);
            bert_span_out out = bert_span_forward(ctx, m, b.ids, b.types, b.mask, n, T, b.start, b.end);
            run_backward(r, out.loss, 1.0f / (float)A);
        }
        run_end_step(r, NULL, 0, data_s);
        if (opt.do_predict && run_eval_due(r, 0)) evaluate(r, m, v);
    }
    free(b.ids);
}

// fine-tunes m on --train_file, saves OUT/model.safetensors, predicts --predict_file; the exit status
static int train(bert_model *m, const bert_vocab *v) {
    squad_data d;
    feature_set fs;
    double t0 = bert_time_s();
    load_windows(&d, &fs, v, opt.train_file, "train_articles", opt.train_articles, 1, 0);
    int used = 0;
    for (int i = 0; i < d.nex; i++) used += d.ex[i].nfeatures > 0;
    printf("train data: %s articles %s | %d questions, %d used (%d impossible, at [CLS], %d answers not found, %d bad answer_start, "
           "%d without answers, %d empty contexts) | %d windows, %d answering at [CLS] | %.1f s\n",
           opt.train_file, opt.train_articles ? opt.train_articles : "all", d.nex, used, d.impossible,
           d.not_found, d.bad_start,
           d.no_answers, d.empty_context, fs.n, fs.at_cls, bert_time_s() - t0);
    int B = ro.batch_size * run_world(), A = ro.accumulation_steps, per_epoch = fs.n / B;   // global micro-batches
    if (per_epoch < 1) run_die("%d training windows, fewer than one batch of %d", fs.n, B);
    double steps = ro.steps ? ro.steps : (double)per_epoch * opt.epochs / A;
    if (steps > 2147483647.0) run_die("--num_train_epochs %g over %d windows makes %.0f steps, more than 2^31-1", (double)opt.epochs, fs.n, steps);
    int total = (int)steps;
    if (total < 1) run_die("%d training windows make no full step of %d x %d; lower --train_batch_size or give --steps", fs.n, B, A);
    char fingerprint[160], what[160];
    snprintf(fingerprint, sizeof fingerprint, "%d windows, T %d, batch %d x %d, seed %d", fs.n, opt.win.max_seq_length, B, A, ro.seed);
    run r;
    ro.measure = measure_loss;
    ro.hf_architecture = "BertForQuestionAnswering";
    run_begin(&r, &ro, m, (size_t)fs.n, total, fingerprint);
    snprintf(what, sizeof what, "train: %d windows, %.2f epochs%s", fs.n, (double)total * A / per_epoch,
             opt.dynamic_padding ? ", dynamic padding" : "");
    run_print_setup(&r, what);
    train_steps(&r, m, v, &fs);
    free_features(&fs);
    free_squad(&d);
    if (run_completed(&r)) {
        char path[4200];
        snprintf(path, sizeof path, "%s/model.safetensors", ro.out);
        run_model_save(m, path, ro.hf_architecture);
        snprintf(path, sizeof path, "%s/config.json", ro.out);
        run_hf_config(m, path, ro.hf_architecture, NULL);
        printf("saved %s/model.safetensors and config.json (HF BertForQuestionAnswering names: bert.*, qa_outputs.*)\n", ro.out);
        if (opt.do_predict) evaluate(&r, m, v);
    }
    return run_finish(&r);
}

// ----------------------------------------------------------------------------
// main

static void dump(const bert_vocab *v) {   // the windows of --predict_file as text, for the reference comparison
    squad_data d;
    feature_set fs;
    load_windows(&d, &fs, v, opt.predict_file, "predict_articles", opt.predict_articles, 0, 0);
    dump_features(opt.dump_features, &d, &fs);
    printf("%d questions -> %d windows, %ld tokens, %d labelled at [CLS], %ld max-context pieces, %d answers not found, %d bad answer_start\n",
           d.nex, fs.n, fs.tokens, fs.at_cls, fs.max_context, d.not_found, d.bad_start);
    free_features(&fs);
    free_squad(&d);
}

int main(int argc, char **argv) {
    double t_start = bert_time_s();
    run_prog = "squad";
    if (argc >= 2 && !strcmp(argv[1], "--eval")) {   // squad --eval DATA PRED [--eval_details OUT] [v2.0: --na_prob_file F --na_prob_thresh X]
        if (argc < 4) run_die("usage: squad --eval DATA.json PREDICTIONS.json [--eval_details OUT.jsonl] [--na_prob_file NA.json] [--na_prob_thresh 1.0]");
        opt.na_prob_thresh = "1.0";   // a string read as a double, as Python's float() reads it
        static const bert_flag eval_flags[] = { { "eval_details", BERT_FLAG_STR, &opt.eval_details, "" },
                                                { "na_prob_file", BERT_FLAG_STR, &opt.na_prob_file, "" },
                                                { "na_prob_thresh", BERT_FLAG_STR, &opt.na_prob_thresh, "" } };
        if (bert_flags_parse(eval_flags, 3, argc - 3, argv + 3)) run_die("%s", bert_last_error());
        return eval_files(argv[2], argv[3]);
    }
    ro = run_defaults();
    ro.out = "squad_out"; ro.keep = 2; ro.drop_last = 1;
    ro.remove_padding = 0;   // run_squad's n-best ranks the padded positions' logits too
    run_parse("squad", usage_text, flags, NFLAGS, &ro, RUN_FLAGS_INFER | RUN_FLAGS_COMMON | RUN_FLAGS_TRAIN | RUN_FLAGS_TOKENIZER, argc, argv);
    run_resolve_weights(&opt.init);   // --init DIR: DIR/model.safetensors
    check_options();
    bert_vocab *v = bert_vocab_load(opt.vocab);
    if (v) run_vocab_mode(v, &ro, 0);
    if (!v) run_die("%s", bert_last_error());
    if (v->cls_id < 0 || v->sep_id < 0 || v->unk_id < 0) run_die("%s: no [CLS], [SEP] or [UNK] token", opt.vocab);
    if (opt.dump_features) dump(v);
    int head = 0, rc = 0;
    bert_model *m = (opt.do_train || opt.do_predict) && !opt.debug_logits ? make_model(v, &head) : NULL;
    if (opt.do_train) {
        rc = train(m, v);
    } else if (opt.do_predict) {
        if (!run_rank() && mkdir(ro.out, 0777) != 0 && errno != EEXIST) run_die("%s: %s", ro.out, strerror(errno));
        if (m && !head) run_warn("%s: the span head is untrained (no qa_outputs.* in the weights)", opt.init ? opt.init : "random weights");
        predict_result p = predict(m, v);
        printf("summary: e2e %.1f s | predict %d windows", bert_time_s() - t_start, p.windows);
        if (p.scored) printf(" | EM %.2f F1 %.2f", p.score.exact_match, p.score.f1);
        printf(" | peak RSS %.0f MiB\n", bert_peak_rss_mib());
    }
    run_check_stream(stdout, "stdout");
    bert_model_free(m);
    bert_vocab_free(v);
    return rc;
}
