/* squad_features.h - examples/squad.c's data path, google-research/bert's run_squad.py (v1.1; v2.0's
   "is_impossible" questions are read and counted, squad.c decides whether they train),
   checked feature for feature against tests/ref/squad_features_ref.py on all of dev-v1.1.json
   (tests/test_squad.c). Task code of squad.c only (included once, after run.h and squad_eval.h).
     read_squad_examples   each context split on whitespace (space, \t, \r, \n, U+202F) into words,
                           with a word index per character; the first answer's words from its
                           answer_start (characters, not bytes); questions whose answer text is not
                           in those words are skipped for training ("could not find answer")
     convert_examples_...  WordPiece per word with piece <-> word maps; the question cut to
                           --max_query_length pieces; [CLS] question [SEP] window [SEP], windows of up
                           to max_seq_length - |question| - 3 pieces every --doc_stride pieces; the
                           answer span tightened to the tokenized answer; an answer outside a window
                           labelled at [CLS] (0); each piece's "max context" window (the one where
                           min(left, right context) + 0.01 * window length is largest)
     get_final_text        a predicted WordPiece span mapped back onto the original words
                           (lower-casing, accents, punctuation and whitespace handled) */
#ifndef SQUAD_FEATURES_H
#define SQUAD_FEATURES_H

#define FIRST_UNIQUE_ID 1000000000L    // run_squad's unique_id of the first feature

// how questions become windows
typedef struct { int do_lower_case, max_seq_length, doc_stride, max_query_length; } squad_windowing;

// ----------------------------------------------------------------------------
// reading SQuAD v1.1 / v2.0 JSON as published: data -> paragraphs -> context, qas -> id, question,
// answers[text, answer_start]. A missing field is an error naming where it is missing; a question
// whose answer is unusable for training is counted and skipped there.

typedef struct {
    char *text; int len;             // the context, UTF-8
    int article, index;              // data[article].paragraphs[index]
    int nchars;                      // characters (code points): the unit of answer_start
    int32_t *char_at;                // (nchars + 1) byte offset of each character
    int32_t *char_to_word;           // (nchars) run_squad's char_to_word_offset
    int nwords;                      // run_squad's doc_tokens
    int32_t *word_at, *word_len;     // (nwords) their bytes in text
    int npieces;                     // WordPiece of the words, by tokenize_paragraphs
    int32_t *piece_id, *piece_word;  // (npieces) id, the word it came from
    int32_t *word_piece;             // (nwords) the word's first piece
} paragraph;

typedef struct {
    char *qid, *question;
    int question_len, para;
    int ngolds;
    strv *golds;                     // answers[].text
    long *gold_start;                // answers[].answer_start
    int start_word, end_word;        // the first answer's words; -1 when unusable
    int impossible;                  // v2.0's "is_impossible": true (its answer is [CLS])
    int train_ok;                    // run_squad would train on it
    int first_feature, nfeatures;    // its windows
} example;

typedef struct {
    const char *path;
    paragraph *para; int npara, para_cap;
    example *ex; int nex, ex_cap;
    int bad_start, not_found, empty_context, no_answers, impossible;   // questions, counted
    int warned;
    char version[32];                // the file's "version" ("1.1"), "?" if absent
} squad_data;

// bert_json_parse's "json: what at byte N" as "PATH:LINE:COL: what"; frees text (the file's bytes)
static void die_json(const char *path, char *text, size_t len, const char *msg) {
    const char *at = strstr(msg, " at byte ");
    if (!at) { free(text); run_die("%s: %s", path, msg); }
    size_t byte = strtoull(at + 9, NULL, 10), line = 1, col = 1;
    for (size_t i = 0; i < byte && i < len; i++) { if (text[i] == '\n') { line++; col = 1; } else col++; }
    free(text);
    const char *what = strncmp(msg, "json: ", 6) ? msg : msg + 6;
    run_die("%s:%zu:%zu: %.*s (not valid JSON)", path, line, col, (int)(at - what), what);
}

static bert_json *parse_json_file(const char *path) {
    size_t len;
    char *text = run_read_file_max(path, &len, BERT_MAX_TEXT_BYTES, "the JSON reader's limit");
    bert_json *root;
    if (bert_json_parse(&root, text, len)) die_json(path, text, len, bert_last_error());
    free(text);
    return root;
}

static const char *type_name(bert_json_type t) {
    return t == BERT_JSON_STRING ? "string" : t == BERT_JSON_ARRAY ? "array" : t == BERT_JSON_OBJECT ? "object" : "number";
}

static const bert_json *member(const squad_data *d, const bert_json *obj, const char *key, bert_json_type type, const char *where) {
    const bert_json *j = bert_json_get(obj, key);
    if (!obj || obj->type != BERT_JSON_OBJECT) run_die("%s: %s is not an object", d->path, where);
    if (!j || j->type != type) run_die("%s: %s: no \"%s\" %s", d->path, where, key, type_name(type));
    return j;
}

// "A:B" (either side may be empty) -> [first, last) within n articles
static void article_range(const char *flag, const char *spec, int n, int *first, int *last) {
    *first = 0; *last = n;
    if (!spec || !*spec) return;
    char *end;
    const char *colon = strchr(spec, ':');
    if (!colon) run_die("--%s: '%s' is not A:B", flag, spec);
    if (colon > spec) { *first = (int)strtol(spec, &end, 10); if (end != colon) run_die("--%s: '%s' is not A:B", flag, spec); }
    if (colon[1]) { *last = (int)strtol(colon + 1, &end, 10); if (*end) run_die("--%s: '%s' is not A:B", flag, spec); }
    if (*first < 0 || *last > n || *first >= *last) run_die("--%s %s: the file has articles 0:%d", flag, spec, n);
}

static int is_squad_space(uint32_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0x202F; }

// run_squad's whitespace split: words, and the word of every character (-1 before the first)
static void split_context(paragraph *p) {
    p->char_at = (int32_t *)run_malloc(((size_t)p->len + 1) * sizeof(int32_t));
    p->char_to_word = (int32_t *)run_malloc(((size_t)p->len + 1) * sizeof(int32_t));
    int wcap = 0, prev_space = 1;
    p->nchars = p->nwords = 0;
    p->word_at = p->word_len = NULL;
    for (size_t i = 0; i < (size_t)p->len;) {
        size_t at = i;
        uint32_t c = utf8_next(p->text, &i);
        if (is_squad_space(c)) prev_space = 1;
        else {
            if (prev_space) {
                if (p->nwords == wcap) {
                    wcap = wcap ? 2 * wcap : 64;
                    p->word_at = (int32_t *)run_realloc(p->word_at, (size_t)wcap * sizeof(int32_t));
                    p->word_len = (int32_t *)run_realloc(p->word_len, (size_t)wcap * sizeof(int32_t));
                }
                p->word_at[p->nwords++] = (int32_t)at;
            }
            p->word_len[p->nwords - 1] = (int32_t)(i - (size_t)p->word_at[p->nwords - 1]);
            prev_space = 0;
        }
        p->char_at[p->nchars] = (int32_t)at;
        p->char_to_word[p->nchars++] = p->nwords - 1;
    }
    p->char_at[p->nchars] = p->len;
}

// haystack contains needle (bytes; on valid UTF-8 the same as Python's str.find(...) != -1), by
// Knuth-Morris-Pratt: memcmp at every offset is quadratic when a long answer almost matches
static int contains(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0) return 1;
    if (nn > hn) return 0;
    uint32_t *border = (uint32_t *)run_malloc(nn * sizeof(uint32_t));   // nn <= the JSON reader's 100 MB
    border[0] = 0;
    for (size_t i = 1, k = 0; i < nn; i++) {
        while (k > 0 && nd[i] != nd[k]) k = border[k - 1];
        if (nd[i] == nd[k]) k++;
        border[i] = (uint32_t)k;
    }
    size_t k = 0;
    for (size_t i = 0; i < hn && k < nn; i++) {
        while (k > 0 && h[i] != nd[k]) k = border[k - 1];
        if (h[i] == nd[k]) k++;
    }
    free(border);
    return k == nn;
}

static size_t count_chars(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

// the first answer's words, and whether run_squad would keep the question for training: the
// answer's text, whitespace-normalised, must occur in " ".join(those words)
static void locate_answer(squad_data *d, const paragraph *p, example *e) {
    e->start_word = e->end_word = -1;
    e->train_ok = 0;
    if (e->impossible) { d->impossible++; return; }   // trained on only in v2.0 mode (squad.c decides)
    if (!e->ngolds) { d->no_answers++; return; }
    long off = e->gold_start[0], n = (long)count_chars(e->golds[0].s, e->golds[0].len);
    if (off < 0 || n == 0 || off + n > p->nchars || p->char_to_word[off] < 0) {
        d->bad_start++;
        if (d->warned++ < 5)
            run_warn("%s: question %s: answer_start %ld is outside its context of %d characters (skipped)",
                    d->path, e->qid, off, p->nchars);
        return;
    }
    e->start_word = p->char_to_word[off];
    e->end_word = p->char_to_word[off + n - 1];
    char *actual = (char *)run_malloc((size_t)p->len + 1), *clean = (char *)run_malloc(e->golds[0].len + 1);
    size_t na = 0, nc = 0;
    for (int w = e->start_word; w <= e->end_word; w++) {
        if (w > e->start_word) actual[na++] = ' ';
        memcpy(actual + na, p->text + p->word_at[w], (size_t)p->word_len[w]);
        na += (size_t)p->word_len[w];
    }
    for (size_t i = 0, prev_space = 1; i < e->golds[0].len;) {   // " ".join(text.split())
        size_t at = i;
        uint32_t c = utf8_next(e->golds[0].s, &i);
        if (is_space(c)) { prev_space = 1; continue; }
        if (prev_space && nc) clean[nc++] = ' ';
        memcpy(clean + nc, e->golds[0].s + at, i - at);
        nc += i - at;
        prev_space = 0;
    }
    e->train_ok = contains(actual, na, clean, nc);
    if (!e->train_ok) {
        d->not_found++;
        if (d->warned++ < 5)
            run_warn("%s: question %s: answer '%.*s' is not at answer_start %ld (skipped for training)",
                    d->path, e->qid, (int)e->golds[0].len, e->golds[0].s, off);
    }
    free(actual); free(clean);
}

static void read_answers(squad_data *d, const bert_json *qa, example *e, const char *where) {
    const bert_json *ans = bert_json_get(qa, "answers");
    e->ngolds = 0;
    e->golds = NULL;
    e->gold_start = NULL;
    if (!ans) return;   // unlabelled questions can still be predicted
    if (ans->type != BERT_JSON_ARRAY) run_die("%s: %s: \"answers\" is not an array", d->path, where);
    e->golds = (strv *)run_malloc((size_t)(ans->count ? ans->count : 1) * sizeof(strv));
    e->gold_start = (long *)run_malloc((size_t)(ans->count ? ans->count : 1) * sizeof(long));
    for (int a = 0; a < ans->count; a++) {
        char w[700];
        snprintf(w, sizeof w, "%s.answers[%d]", where, a);
        const bert_json *t = member(d, &ans->child[a], "text", BERT_JSON_STRING, w);
        const bert_json *s = bert_json_get(&ans->child[a], "answer_start");
        if (s && (s->type != BERT_JSON_NUMBER || s->number != floor(s->number) || fabs(s->number) > 1e15))
            run_die("%s: %s: answer_start is not an integer", d->path, w);
        e->golds[a].s = run_strndup(t->string, t->string_len);
        e->golds[a].len = t->string_len;
        e->gold_start[a] = s ? (long)s->number : -1;
        e->ngolds++;
    }
}

/* Reads the articles of path that --flag (A:B, NULL = all) names. with_text = 0 (scoring only) needs just each question's
   id and answers' text, as the official script; else contexts and questions too. */
static void read_squad(squad_data *d, const char *path, const char *flag, const char *articles, int with_text) {
    memset(d, 0, sizeof *d);
    d->path = path;
    bert_json *root = parse_json_file(path);
    const bert_json *data = bert_json_get(root, "data");
    if (!data || data->type != BERT_JSON_ARRAY) run_die("%s: no \"data\" array (not a SQuAD file)", path);
    const bert_json *version = bert_json_get(root, "version");
    snprintf(d->version, sizeof d->version, "%s", version && version->type == BERT_JSON_STRING ? version->string : "?");
    int first, last;
    article_range(flag, articles, data->count, &first, &last);
    for (int a = first; a < last; a++) {
        char where[512];
        snprintf(where, sizeof where, "data[%d]", a);
        const bert_json *paras = member(d, &data->child[a], "paragraphs", BERT_JSON_ARRAY, where);
        for (int pi = 0; pi < paras->count; pi++) {
            const bert_json *pj = &paras->child[pi];
            snprintf(where, sizeof where, "data[%d].paragraphs[%d]", a, pi);
            const bert_json *qas = member(d, pj, "qas", BERT_JSON_ARRAY, where);
            paragraph p;
            memset(&p, 0, sizeof p);
            p.article = a; p.index = pi;
            if (with_text) {
                const bert_json *ctx = member(d, pj, "context", BERT_JSON_STRING, where);
                p.text = run_strndup(ctx->string, ctx->string_len);
                p.len = (int)ctx->string_len;
                split_context(&p);
                if (p.nwords == 0 && qas->count) {
                    d->empty_context += qas->count;
                    run_warn("%s: %s has an empty context: its %d questions get no windows", path, where, qas->count);
                }
            }
            ARR_PUSH(d->para, d->npara, d->para_cap, p);
            for (int q = 0; q < qas->count; q++) {
                char w[600];
                snprintf(w, sizeof w, "%s.qas[%d]", where, q);
                const bert_json *qa = &qas->child[q], *id = member(d, qa, "id", BERT_JSON_STRING, w);
                example e;
                memset(&e, 0, sizeof e);
                e.qid = run_strndup(id->string, id->string_len);
                e.para = d->npara - 1;
                snprintf(w, sizeof w, "%s.qas[%d] (id %.64s)", where, q, e.qid);
                if (with_text) {
                    const bert_json *qt = member(d, qa, "question", BERT_JSON_STRING, w);
                    e.question = run_strndup(qt->string, qt->string_len);
                    e.question_len = (int)qt->string_len;
                }
                read_answers(d, qa, &e, w);
                const bert_json *imp = bert_json_get(qa, "is_impossible");
                if (imp && imp->type != BERT_JSON_TRUE && imp->type != BERT_JSON_FALSE)
                    run_die("%s: %s: \"is_impossible\" is not true or false", d->path, w);
                e.impossible = imp && imp->type == BERT_JSON_TRUE;
                if (e.impossible && e.ngolds) run_die("%s: %s: an impossible question with answers", d->path, w);
                if (with_text && p.nwords) locate_answer(d, &d->para[e.para], &e);
                else e.start_word = e.end_word = -1;
                ARR_PUSH(d->ex, d->nex, d->ex_cap, e);
            }
        }
    }
    if (d->warned > 5) run_warn("%s: %d more questions with unusable answers", path, d->warned - 5);
    bert_json_free(root);
}

// only the first n questions (--predict_limit); the rest are freed
static void keep_examples(squad_data *d, int n) {
    for (int i = n; i < d->nex; i++) {
        example *e = &d->ex[i];
        for (int g = 0; g < e->ngolds; g++) free((void *)e->golds[g].s);
        free(e->qid); free(e->question); free(e->golds); free(e->gold_start);
    }
    if (n < d->nex) d->nex = n;
}

static void free_squad(squad_data *d) {
    for (int i = 0; i < d->npara; i++) {
        paragraph *p = &d->para[i];
        free(p->text); free(p->char_at); free(p->char_to_word); free(p->word_at); free(p->word_len);
        free(p->piece_id); free(p->piece_word); free(p->word_piece);
    }
    keep_examples(d, 0);
    free(d->para); free(d->ex);
    memset(d, 0, sizeof *d);
}

// ----------------------------------------------------------------------------
// windows ("features"): run_squad's convert_examples_to_features

typedef struct {
    int example, span;               // its question, and which window of the question's context
    int ntokens;                     // [CLS] question [SEP] window [SEP]
    size_t ids_at;                   // its ids in the set's id pool
    int doc_offset;                  // the position of the window's first piece (|question| + 2)
    int span_start, span_len;        // pieces [span_start, span_start + span_len) of the paragraph
    size_t ctx_at;                   // span_len max-context flags in the flag pool
    int start, end;                  // the answer's positions; 0, 0 ([CLS]) outside the window
} feature;

typedef struct {
    feature *f; int n, cap;
    int32_t *ids; size_t nids, ids_cap;
    uint8_t *maxctx; size_t nctx, ctx_cap;
    long tokens, max_context; int at_cls;
} feature_set;

// the WordPiece ids of s in *buf (grown to fit); < 0 on failure, bert_last_error() says why, and the
// caller names the file and the text
static int tokenize(const bert_vocab *v, int lower, const char *s, size_t len, int32_t **buf, int *cap) {
    int n = bert_tokenize(v, lower, s, len, *buf, *cap);
    if (n > *cap) {
        *cap = 2 * n;
        *buf = (int32_t *)run_realloc(*buf, (size_t)*cap * sizeof(int32_t));
        n = bert_tokenize(v, lower, s, len, *buf, *cap);
    }
    return n;
}

// WordPiece of every word on its own, as run_squad: the pieces, their words, each word's first piece
static void tokenize_paragraphs(squad_data *d, const bert_vocab *v, int lower) {
    int cap = 256;
    int32_t *buf = (int32_t *)run_malloc((size_t)cap * sizeof(int32_t));
    for (int i = 0; i < d->npara; i++) {
        paragraph *p = &d->para[i];
        int pcap = 0;
        p->word_piece = (int32_t *)run_malloc((size_t)(p->nwords + 1) * sizeof(int32_t));
        for (int w = 0; w < p->nwords; w++) {
            int n = tokenize(v, lower, p->text + p->word_at[w], (size_t)p->word_len[w], &buf, &cap);
            if (n < 0) run_die("%s: data[%d].paragraphs[%d]: context word %d: %s", d->path, p->article, p->index, w, bert_last_error());
            p->word_piece[w] = p->npieces;
            if (p->npieces + n > pcap) {
                pcap = 2 * (p->npieces + n);
                p->piece_id = (int32_t *)run_realloc(p->piece_id, (size_t)pcap * sizeof(int32_t));
                p->piece_word = (int32_t *)run_realloc(p->piece_word, (size_t)pcap * sizeof(int32_t));
            }
            for (int k = 0; k < n; k++) { p->piece_id[p->npieces] = buf[k]; p->piece_word[p->npieces++] = w; }
        }
    }
    free(buf);
}

// _improve_answer_span: the first (start, end) inside [s, e], starts ascending and ends descending,
// whose pieces are exactly the tokenized answer; else [s, e] unchanged. Only end = start + nans - 1
// can match (pieces hold no spaces), so it is the first occurrence of the answer in [s, e]: found by
// Knuth-Morris-Pratt, linear where trying every start is quadratic on repetitive text
static void improve_span(const paragraph *p, const int32_t *ans, int nans, int *s, int *e) {
    if (nans < 1 || nans > *e - *s + 1) return;
    int *border = (int *)run_malloc((size_t)nans * sizeof(int));   // the longest proper border of ans[0..i]
    border[0] = 0;
    for (int i = 1, k = 0; i < nans; i++) {
        while (k > 0 && ans[i] != ans[k]) k = border[k - 1];
        if (ans[i] == ans[k]) k++;
        border[i] = k;
    }
    for (int a = *s, k = 0; a <= *e; a++) {
        while (k > 0 && p->piece_id[a] != ans[k]) k = border[k - 1];
        if (p->piece_id[a] == ans[k]) k++;
        if (k == nans) { *s = a - nans + 1; *e = a; break; }
    }
    free(border);
}

// _check_is_max_context: among the windows holding piece pos, the one with the most context
// (min(left, right) + 0.01 * length; the first on ties) is cur. Window starts increase and ends
// never decrease, so the windows holding pos are a run found by binary search (a scan over all of
// them per piece is quadratic in the context's length)
static int is_max_context(const int *starts, const int *lens, int nspans, int cur, int pos) {
    int lo = 0, hi = nspans;   // the first window ending at or after pos
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (starts[mid] + lens[mid] - 1 < pos) lo = mid + 1;
        else hi = mid;
    }
    double best = 0;
    int best_i = -1;
    for (int i = lo; i < nspans && starts[i] <= pos; i++) {
        int end = starts[i] + lens[i] - 1;
        int left = pos - starts[i], right = end - pos;
        double score = (left < right ? left : right) + 0.01 * lens[i];
        if (best_i < 0 || score > best) { best = score; best_i = i; }
    }
    return cur == best_i;
}

// run_squad's doc spans: windows of up to max_doc pieces, one every doc_stride pieces
typedef struct { int *start, *len, n, cap; } span_list;

static void doc_spans(span_list *sp, int npieces, int max_doc, int stride) {
    sp->n = 0;
    for (int off = 0; off < npieces;) {
        int len = npieces - off < max_doc ? npieces - off : max_doc;
        if (sp->n == sp->cap) {
            sp->cap = sp->cap ? 2 * sp->cap : 16;
            sp->start = (int *)run_realloc(sp->start, (size_t)sp->cap * sizeof(int));
            sp->len = (int *)run_realloc(sp->len, (size_t)sp->cap * sizeof(int));
        }
        sp->start[sp->n] = off; sp->len[sp->n++] = len;
        if (off + len == npieces) break;
        off += len < stride ? len : stride;
    }
}

// window si of question ei: [CLS] q [SEP] pieces [SEP], its max-context flags, the answer [ts, te]
// (paragraph pieces; -1: none) as positions, or 0, 0 ([CLS]) when the window does not hold it
static void add_window(feature_set *fs, const bert_vocab *v, const paragraph *p, const span_list *sp, int si,
                       int ei, const int32_t *q, int nq, int ts, int te) {
    int s0 = sp->start[si], len = sp->len[si];
    feature f;
    memset(&f, 0, sizeof f);
    f.example = ei; f.span = si;
    f.doc_offset = nq + 2;
    f.span_start = s0; f.span_len = len;
    f.ntokens = nq + len + 3;
    f.ids_at = fs->nids;
    f.ctx_at = fs->nctx;
    ARR_PUSH(fs->ids, fs->nids, fs->ids_cap, v->cls_id);
    for (int i = 0; i < nq; i++) ARR_PUSH(fs->ids, fs->nids, fs->ids_cap, q[i]);
    ARR_PUSH(fs->ids, fs->nids, fs->ids_cap, v->sep_id);
    for (int i = 0; i < len; i++) {
        uint8_t mc = (uint8_t)is_max_context(sp->start, sp->len, sp->n, si, s0 + i);
        ARR_PUSH(fs->ids, fs->nids, fs->ids_cap, p->piece_id[s0 + i]);
        ARR_PUSH(fs->maxctx, fs->nctx, fs->ctx_cap, mc);
        fs->max_context += mc;
    }
    ARR_PUSH(fs->ids, fs->nids, fs->ids_cap, v->sep_id);
    if (ts >= 0 && ts >= s0 && te <= s0 + len - 1) {
        f.start = ts - s0 + f.doc_offset;
        f.end = te - s0 + f.doc_offset;
    }
    fs->at_cls += f.start == 0;
    fs->tokens += f.ntokens;
    ARR_PUSH(fs->f, fs->n, fs->cap, f);
}

/* The windows of every question, in question order; training: only questions run_squad trains on. */
static void convert(squad_data *d, const bert_vocab *v, feature_set *fs, int training, const squad_windowing *w) {
    memset(fs, 0, sizeof *fs);
    int qcap = 256, acap = 256;
    int32_t *q = (int32_t *)run_malloc((size_t)qcap * sizeof(int32_t)), *ans = (int32_t *)run_malloc((size_t)acap * sizeof(int32_t));
    span_list sp = { NULL, NULL, 0, 0 };
    for (int ei = 0; ei < d->nex; ei++) {
        example *e = &d->ex[ei];
        const paragraph *p = &d->para[e->para];
        e->first_feature = fs->n;
        e->nfeatures = 0;
        if (training && !e->train_ok) continue;
        int nq = tokenize(v, w->do_lower_case, e->question, (size_t)e->question_len, &q, &qcap);
        if (nq < 0) run_die("%s: question %s: %s", d->path, e->qid, bert_last_error());
        if (nq > w->max_query_length) nq = w->max_query_length;
        int ts = -1, te = -1;
        if (e->start_word >= 0) {
            ts = p->word_piece[e->start_word];
            te = e->end_word < p->nwords - 1 ? p->word_piece[e->end_word + 1] - 1 : p->npieces - 1;
            int na = tokenize(v, w->do_lower_case, e->golds[0].s, e->golds[0].len, &ans, &acap);
            if (na < 0) run_die("%s: question %s: answer: %s", d->path, e->qid, bert_last_error());
            improve_span(p, ans, na, &ts, &te);
        }
        doc_spans(&sp, p->npieces, w->max_seq_length - nq - 3, w->doc_stride);
        for (int si = 0; si < sp.n; si++) add_window(fs, v, p, &sp, si, ei, q, nq, ts, te);
        e->nfeatures = sp.n;
    }
    free(q); free(ans); free(sp.start); free(sp.len);
}

static void free_features(feature_set *fs) { free(fs->f); free(fs->ids); free(fs->maxctx); memset(fs, 0, sizeof *fs); }

// --dump_features: one line per window, the format of tests/ref/squad_features_ref.py's dump_line
static void dump_features(const char *path, const squad_data *d, const feature_set *fs) {
    bert_atomic_file out;
    FILE *f = run_create(&out, path);
    for (int i = 0; i < fs->n; i++) {
        const feature *x = &fs->f[i];
        const example *e = &d->ex[x->example];
        const paragraph *p = &d->para[e->para];
        fprintf(f, "%d %d %d %ld %s |", p->article, x->example, x->span, FIRST_UNIQUE_ID + i, e->qid);
        for (int t = 0; t < x->ntokens; t++) fprintf(f, " %d", fs->ids[x->ids_at + (size_t)t]);
        fprintf(f, " | %d %d %d |", x->doc_offset, x->span_start, x->span_len);
        for (int t = 0; t < x->span_len; t++) fprintf(f, " %d", p->piece_word[x->span_start + t]);
        fprintf(f, " | ");
        for (int t = 0; t < x->span_len; t++) putc('0' + fs->maxctx[x->ctx_at + (size_t)t], f);
        fprintf(f, " | %d %d %d\n", x->start, x->end, e->train_ok);
    }
    run_commit(&out, path);
}

// ----------------------------------------------------------------------------
// the text of a predicted span: run_squad's write_predictions and get_final_text

typedef struct { cps pred, orig, tok; char *basic; size_t basic_cap; int *map_a, *map_b; size_t map_cap; } final_scratch;

static long find_cps(const cps *h, const cps *nd) {   // str.find
    for (size_t i = 0; i + nd->n <= h->n; i++)
        if (!nd->n || !memcmp(h->c + i, nd->c, nd->n * sizeof(uint32_t))) return (long)i;
    return -1;
}

/* get_final_text: the predicted text (normalised WordPiece) is found in the basic tokenizer's
   version of the original words, and its first and last characters are carried back to the
   original text through the space-free forms of both; any mismatch returns the original words.
   NULL if the tokenizer fails (bert_last_error()). */
static char *get_final_text(final_scratch *s, bert_tokenize_mode mode, int lower, const char *pred, size_t pred_len, const char *orig, size_t orig_len, size_t *out_len) {
    int n = bert_basic_tokenize_mode(mode, lower, orig, orig_len, s->basic, s->basic_cap);
    if (n >= 0 && (size_t)n >= s->basic_cap) {
        s->basic = (char *)run_realloc(s->basic, s->basic_cap = (size_t)n + 64);
        n = bert_basic_tokenize_mode(mode, lower, orig, orig_len, s->basic, s->basic_cap);
    }
    if (n < 0) return NULL;
    cps_from(&s->tok, s->basic, (size_t)n);
    cps_from(&s->pred, pred, pred_len);
    cps_from(&s->orig, orig, orig_len);
    long start = find_cps(&s->tok, &s->pred), end = start + (long)s->pred.n - 1;
    if (s->orig.n + s->tok.n + 1 > s->map_cap) {
        s->map_cap = 2 * (s->orig.n + s->tok.n + 1);
        s->map_a = (int *)run_realloc(s->map_a, s->map_cap * sizeof(int));
        s->map_b = (int *)run_realloc(s->map_b, s->map_cap * sizeof(int));
    }
    int *orig_ns_to_s = s->map_a, *tok_s_to_ns = s->map_b, orig_ns = 0, tok_ns = 0;
    for (size_t i = 0; i < s->orig.n; i++) if (s->orig.c[i] != ' ') orig_ns_to_s[orig_ns++] = (int)i;
    for (size_t i = 0; i < s->tok.n; i++) tok_s_to_ns[i] = s->tok.c[i] != ' ' ? tok_ns++ : -1;
    long a = -1, b = -1;
    if (start >= 0 && orig_ns == tok_ns) {
        if (tok_s_to_ns[start] >= 0 && tok_s_to_ns[start] < orig_ns) a = orig_ns_to_s[tok_s_to_ns[start]];
        if (end >= 0 && tok_s_to_ns[end] >= 0 && tok_s_to_ns[end] < orig_ns) b = orig_ns_to_s[tok_s_to_ns[end]];
    }
    if (a < 0 || b < 0) { *out_len = orig_len; return run_strndup(orig, orig_len); }
    return cps_utf8(s->orig.c + a, b >= a ? (size_t)(b - a + 1) : 0, out_len);
}

// the window's pieces start..end as run_squad's tok_text: " ".join, " ##" and "##" removed,
// whitespace collapsed
static char *piece_text(const bert_vocab *v, const int32_t *ids, int n, size_t *len) {
    size_t cap = 1;
    for (int i = 0; i < n; i++) cap += strlen(bert_vocab_token(v, ids[i])) + 1;
    char *a = (char *)run_malloc(cap), *b = (char *)run_malloc(cap);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        const char *t = bert_vocab_token(v, ids[i]);
        if (i) a[k++] = ' ';
        memcpy(a + k, t, strlen(t));
        k += strlen(t);
    }
    static const char *const cut[] = { " ##", "##" };
    for (int pass = 0; pass < 2; pass++) {   // str.replace(cut, ""): non-overlapping, left to right
        size_t m = strlen(cut[pass]), w = 0;
        for (size_t i = 0; i < k;) {
            if (i + m <= k && !memcmp(a + i, cut[pass], m)) { i += m; continue; }
            b[w++] = a[i++];
        }
        k = w;
        char *t = a; a = b; b = t;
    }
    size_t w = 0;   // " ".join(text.strip().split())
    for (size_t i = 0, prev_space = 1; i < k;) {
        size_t at = i;
        uint32_t c = utf8_next(a, &i);
        if (is_space(c)) { prev_space = 1; continue; }
        if (prev_space && w) b[w++] = ' ';
        memcpy(b + w, a + at, i - at);
        w += i - at;
        prev_space = 0;
    }
    b[w] = 0;
    free(a);
    *len = w;
    return b;
}

#endif // SQUAD_FEATURES_H
