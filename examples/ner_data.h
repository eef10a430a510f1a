/* ner_data.h - examples/ner.c's data: CLUENER2020's JSON lines read into records (one token per
   character, the gold mentions and their tags), the windows a long text is cut into, and the label
   object of CLUE's submission file. Task code of ner.c only (included once, after run.h, ner.c's
   options `opt` and ner_entities.h).
     char_token           what bert_tokenize makes of a character alone (its first piece; dropped_id
                          for one it drops), cached per code point; ner.c's load_vocab sets vocab,
                          char_cache and dropped_id
     parse_record         one line: "text", "label" {type: {entity: [[start, end]]}} (code points, end
                          inclusive; each span in range and spelling its entity, at most MAX_SPANS),
                          "id"; returns what is wrong with it
     record_tags          the gold tags; of overlapping mentions the one starting first (then the
                          longer, then the earlier in the file) is tagged, the others counted
     dataset_load         every non-blank line of a file of at most MAX_FILE_BYTES; a bad record stops
                          the program with FILE:LINE (--skip_bad_records drops and counts it)
     windows_make/merge   runs of at most W characters, S apart, the last ending at the text's end;
                          per character the tag of the window where it is most central
     write_record_labels  one record's spans as the submission's "label" object */
#ifndef NER_DATA_H
#define NER_DATA_H

#define MAX_SPANS 10000               // gold mentions per record (CLUENER's have a handful): bounds their checks
#define MAX_FILE_BYTES ((size_t)1 << 30)   // a data file is read whole; 1 GB also keeps line and record counts in an int

// ----------------------------------------------------------------------------
// records: the text as characters, one token per character, the gold mentions and their tags

typedef struct {
    char *text;            // UTF-8
    int n;                 // characters
    int *byte_of;          // (n+1): character i is text[byte_of[i], byte_of[i+1])
    int32_t *ids;          // (n) token per character
    int32_t *tags;         // (n) gold tags (all O without labels)
    span *spans;           // (nspans) gold mentions in file order
    int nspans;
    char id[48];           // the "id" as JSON (test.json's number; a plain string), else the record's index
} record;

typedef struct {
    const char *path;
    record *r;
    int n, cap;
    long mentions, skipped, overlaps;
    char first_skip[256];
} dataset;

static const bert_vocab *vocab;
static int32_t *char_cache;   // (0x110000) token id + 1 of each code point seen; 0 = not yet
static int32_t dropped_id;    // the token of characters the tokenizer drops
static const char *reading_path;   // the file and line being read, for the tokenizer's errors
static int reading_line;

static int32_t char_token(uint32_t cp, const char *bytes, int len) {
    if (char_cache[cp]) return char_cache[cp] - 1;
    int32_t ids[16];
    int count = bert_tokenize(vocab, opt.do_lower_case, bytes, (size_t)len, ids, 16);
    if (count < 0 && reading_path) run_die("%s:%d: %s", reading_path, reading_line, bert_last_error());
    if (count < 0) run_die("%s", bert_last_error());
    int32_t id = count == 0 ? dropped_id : ids[0];
    char_cache[cp] = id + 1;
    return id;
}

// code point of the UTF-8 character at s (the JSON reader has validated it); *len its bytes
static uint32_t utf8_next(const unsigned char *s, int *len) {
    if (s[0] < 0x80) { *len = 1; return s[0]; }
    if (s[0] < 0xE0) { *len = 2; return (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F); }
    if (s[0] < 0xF0) { *len = 3; return (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F); }
    *len = 4;
    return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
}

static void record_free(record *r) {
    free(r->text); free(r->byte_of); free(r->ids); free(r->tags); free(r->spans);
    memset(r, 0, sizeof *r);
}

// the characters of text and their tokens
static void record_chars(record *r, const char *text, size_t len) {
    r->text = (char *)run_calloc(len + 1, 1);
    memcpy(r->text, text, len);
    r->byte_of = (int *)run_calloc(len + 1, sizeof(int));
    r->ids = (int32_t *)run_calloc(len + 1, sizeof(int32_t));
    int i = 0;
    for (size_t b = 0; b < len; i++) {
        int n;
        uint32_t cp = utf8_next((const unsigned char *)r->text + b, &n);
        r->byte_of[i] = (int)b;
        r->ids[i] = char_token(cp, r->text + b, n);
        b += (size_t)n;
    }
    r->n = i;
    r->byte_of[i] = (int)len;
}

// the mentions of a "label" object; returns NULL or what is wrong
static const char *record_spans(record *r, const bert_json *label, char *err, size_t cap) {
    int room = 0;
    if (label->type != BERT_JSON_OBJECT) return "\"label\" is not an object";
    for (int i = 0; i < label->count; i++) {
        const bert_json *ty = &label->child[i];
        int type = type_index(ty->key);
        if (type < 0) { snprintf(err, cap, "unknown entity type '%s' (not in --types)", ty->key); return err; }
        if (ty->type != BERT_JSON_OBJECT) { snprintf(err, cap, "type '%s': not an object of entities", ty->key); return err; }
        for (int e = 0; e < ty->count; e++) {
            const bert_json *ent = &ty->child[e];
            if (ent->type != BERT_JSON_ARRAY) { snprintf(err, cap, "entity '%s': not a list of spans", ent->key); return err; }
            size_t key_len = strlen(ent->key);
            for (int k = 0; k < ent->count; k++) {
                const bert_json *sp = &ent->child[k];
                int ok = sp->type == BERT_JSON_ARRAY && sp->count == 2;
                for (int q = 0; ok && q < 2; q++)
                    ok = sp->child[q].type == BERT_JSON_NUMBER && sp->child[q].number == floor(sp->child[q].number) &&
                         fabs(sp->child[q].number) < 1e9;
                if (!ok) { snprintf(err, cap, "entity '%s': a span is not [start, end] with integers", ent->key); return err; }
                int s = (int)sp->child[0].number, t = (int)sp->child[1].number;
                if (s < 0 || t < s || t >= r->n) {
                    snprintf(err, cap, "span [%d, %d] of '%s' is out of range (the text has %d characters)", s, t, ent->key, r->n);
                    return err;
                }
                int b0 = r->byte_of[s], b1 = r->byte_of[t + 1];
                if (key_len != (size_t)(b1 - b0) || memcmp(r->text + b0, ent->key, key_len) != 0) {
                    snprintf(err, cap, "span [%d, %d] is '%.*s' in the text, not '%s'", s, t, b1 - b0, r->text + b0, ent->key);
                    return err;
                }
                if (r->nspans == MAX_SPANS) {   // each span's text is compared with its entity's
                    snprintf(err, cap, "more than %d entity spans in one record", MAX_SPANS);
                    return err;
                }
                if (r->nspans == room) {
                    room = room ? 2 * room : 8;
                    r->spans = (span *)run_realloc(r->spans, (size_t)room * sizeof(span));
                }
                r->spans[r->nspans].type = type; r->spans[r->nspans].start = s; r->spans[r->nspans].end = t;
                r->nspans++;
            }
        }
    }
    return NULL;
}

typedef struct { span s; int index; } ordered_span;

static int cmp_first_longest(const void *a, const void *b) {   // start, then longer first, then file order
    const ordered_span *x = (const ordered_span *)a, *y = (const ordered_span *)b;
    if (x->s.start != y->s.start) return x->s.start < y->s.start ? -1 : 1;
    if (x->s.end != y->s.end) return x->s.end > y->s.end ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

// gold tags from the mentions; an overlapping mention loses to the one starting first (then longer,
// then earlier in the file)
static int record_tags(record *r) {
    r->tags = (int32_t *)run_calloc((size_t)r->n + 1, sizeof(int32_t));
    ordered_span *order = (ordered_span *)run_calloc((size_t)r->nspans + 1, sizeof *order);
    int dropped = 0, last_end = -1;
    for (int i = 0; i < r->nspans; i++) { order[i].s = r->spans[i]; order[i].index = i; }
    qsort(order, (size_t)r->nspans, sizeof *order, cmp_first_longest);
    for (int i = 0; i < r->nspans; i++) {
        const span *s = &order[i].s;
        // the tagged mentions start no later than s and are disjoint, so s overlaps one exactly when
        // it starts by the end of the last one
        if (s->start <= last_end) { dropped++; continue; }
        last_end = s->end;
        for (int c = s->start; c <= s->end; c++) r->tags[c] = tag_of(s->type, c == s->start ? 'B' : 'I');
        if (bioes && s->start == s->end) r->tags[s->start] = tag_of(s->type, 'S');
        else if (bioes) r->tags[s->end] = tag_of(s->type, 'E');
    }
    free(order);
    return dropped;
}

// the record's "id" as it goes into the submission file: test.json's integer, a plain short
// string, else the record's index in the file
static void record_id(char *out, size_t cap, const bert_json *id, int index) {
    int plain = id && id->type == BERT_JSON_STRING && id->string_len < 40;
    for (size_t i = 0; plain && i < id->string_len; i++)
        plain = id->string[i] != '"' && id->string[i] != '\\' && (unsigned char)id->string[i] >= 0x20;
    if (id && id->type == BERT_JSON_NUMBER && id->number == floor(id->number) && fabs(id->number) < 1e15)
        snprintf(out, cap, "%.0f", id->number);
    else if (plain) snprintf(out, cap, "\"%s\"", id->string);
    else snprintf(out, cap, "%d", index);
}

// one JSON line into r; returns NULL or what is wrong with it
static const char *parse_record(record *r, const char *line, size_t len, int labelled, int index, char *err, size_t cap) {
    bert_json *j;
    memset(r, 0, sizeof *r);
    if (bert_json_parse(&j, line, len)) { snprintf(err, cap, "%s", bert_last_error()); return err; }
    const char *bad = NULL;
    const bert_json *text = bert_json_get(j, "text"), *label = bert_json_get(j, "label"), *id = bert_json_get(j, "id");
    if (j->type != BERT_JSON_OBJECT) bad = "not a JSON object";
    else if (!text || text->type != BERT_JSON_STRING) bad = "no \"text\" string";
    else if (strlen(text->string) != text->string_len) bad = "\"text\" holds a NUL character";
    else if (labelled && !label) bad = "no \"label\" object";
    if (!bad) {
        record_chars(r, text->string, text->string_len);
        if (label) bad = record_spans(r, label, err, cap);
    }
    if (!bad) record_id(r->id, sizeof r->id, id, index);
    bert_json_free(j);
    if (bad) {
        if (bad != err) snprintf(err, cap, "%s", bad);
        record_free(r);
        return err;
    }
    return NULL;
}

// every non-blank line of a JSON-lines file; labelled: each record must have "label"
static void dataset_load(dataset *d, const char *path, int labelled) {
    memset(d, 0, sizeof *d);
    d->path = path;
    size_t len;
    char *s = run_read_file_max(path, &len, MAX_FILE_BYTES, "the most ner reads from a data file"), err[512];
    int lineno = 0;
    for (size_t at = 0; at < len;) {
        char *nl = (char *)memchr(s + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - s) : len, n = end - at;
        lineno++;
        while (n && (s[at + n - 1] == '\r' || s[at + n - 1] == ' ' || s[at + n - 1] == '\t')) n--;
        if (n) {
            if (d->n == d->cap) {
                d->cap = d->cap ? 2 * d->cap : 1024;
                d->r = (record *)run_realloc(d->r, (size_t)d->cap * sizeof(record));
            }
            record *r = &d->r[d->n];
            reading_path = path; reading_line = lineno;
            if (parse_record(r, s + at, n, labelled, d->n, err, sizeof err)) {
                if (!opt.skip_bad_records) run_die("%s:%d: %s", path, lineno, err);
                if (!d->skipped++) snprintf(d->first_skip, sizeof d->first_skip, "line %d: %.200s", lineno, err);
            } else {
                d->overlaps += record_tags(r);
                d->mentions += r->nspans;
                d->n++;
            }
        }
        at = end + 1;
    }
    reading_path = NULL;
    free(s);
    if (d->skipped)
        run_warn("%s: skipped %ld malformed record%s (--skip_bad_records; first: %s)", path, d->skipped,
                d->skipped == 1 ? "" : "s", d->first_skip);
}

static void dataset_free(dataset *d) {
    for (int i = 0; i < d->n; i++) record_free(&d->r[i]);
    free(d->r);
    memset(d, 0, sizeof *d);
}

// ----------------------------------------------------------------------------
// windows: runs of at most W characters, S apart, the last ending at the text's end

typedef struct { int rec, start, len; } window;

typedef struct {
    window *w;
    int n;
    int64_t *tag_at;    // (n+1) offset of each window's tags in a flat array
    int64_t *char_at;   // (records+1) offset of each record's characters
} windows;

static void windows_make(windows *ws, const dataset *d, int W, int S) {
    int cap = d->n + 16;
    ws->w = (window *)run_calloc((size_t)cap, sizeof(window));
    ws->n = 0;
    for (int r = 0; r < d->n; r++) {
        int n = d->r[r].n;
        for (int s = 0; n > 0; s = s + S < n - W ? s + S : n - W) {
            if (ws->n == cap) {
                cap *= 2;
                ws->w = (window *)run_realloc(ws->w, (size_t)cap * sizeof(window));
            }
            window *w = &ws->w[ws->n++];
            w->rec = r; w->start = s; w->len = n - s < W ? n - s : W;
            if (s + W >= n) break;
        }
    }
    ws->tag_at = (int64_t *)run_calloc((size_t)ws->n + 1, sizeof(int64_t));
    for (int i = 0; i < ws->n; i++) ws->tag_at[i + 1] = ws->tag_at[i] + ws->w[i].len;
    ws->char_at = (int64_t *)run_calloc((size_t)d->n + 1, sizeof(int64_t));
    for (int r = 0; r < d->n; r++) ws->char_at[r + 1] = ws->char_at[r] + d->r[r].n;
}

static void windows_free(windows *ws) { free(ws->w); free(ws->tag_at); free(ws->char_at); memset(ws, 0, sizeof *ws); }

// per character, the tag of the window where it is most central (the earlier window on a tie)
static void windows_merge(const windows *ws, const int32_t *wtags, int32_t *rtags, int64_t nchars) {
    int *best = (int *)run_calloc((size_t)nchars + 1, sizeof(int));
    for (int64_t i = 0; i < nchars; i++) { best[i] = -1; rtags[i] = 0; }
    for (int i = 0; i < ws->n; i++) {
        const window *w = &ws->w[i];
        for (int c = 0; c < w->len; c++) {
            int central = c < w->len - 1 - c ? c : w->len - 1 - c;
            int64_t at = ws->char_at[w->rec] + w->start + c;
            if (central > best[at]) { best[at] = central; rtags[at] = wtags[ws->tag_at[i] + c]; }
        }
    }
    free(best);
}

// ----------------------------------------------------------------------------
// CLUE's submission file: {"id": ..., "label": {type: {entity: [[start, end], ...]}}} per line

typedef struct { const char *text; int len, index; } mention_text;

static int cmp_mention_text(const void *a, const void *b) {   // text (bytes), then order
    const mention_text *x = (const mention_text *)a, *y = (const mention_text *)b;
    int c = memcmp(x->text, y->text, (size_t)(x->len < y->len ? x->len : y->len));
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

// per type in --types order, each entity text in order of its first mention with all its spans in
// order; the mentions of a type are sorted by text, so equal texts are runs (a pairwise search is
// quadratic in a long text's predictions)
static void write_record_labels(FILE *f, const record *r, const span *sp, int np) {
    mention_text *m = (mention_text *)run_calloc((size_t)np + 1, sizeof *m);
    int *run_of = (int *)run_calloc((size_t)np + 1, sizeof(int)), *run_end = (int *)run_calloc((size_t)np + 1, sizeof(int));
    fprintf(f, "\"label\": {");
    int first_type = 1;
    for (int t = 0; t < ntypes; t++) {
        int n = 0;
        for (int i = 0; i < np; i++) {
            if (sp[i].type != t) continue;
            int b0 = r->byte_of[sp[i].start];
            m[n].text = r->text + b0; m[n].len = r->byte_of[sp[i].end + 1] - b0; m[n++].index = i;
        }
        if (!n) continue;
        qsort(m, (size_t)n, sizeof *m, cmp_mention_text);
        for (int i = 0; i < np; i++) run_of[i] = -1;
        for (int g = 0, h; g < n; g = h) {   // run [g, h): one text; its first mention leads it
            for (h = g + 1; h < n && m[h].len == m[g].len && !memcmp(m[h].text, m[g].text, (size_t)m[g].len); h++) {}
            run_of[m[g].index] = g;
            run_end[g] = h;
        }
        fprintf(f, first_type ? "\"%s\": {" : ", \"%s\": {", type_names[t]);
        first_type = 0;
        int first_ent = 1;
        for (int i = 0; i < np; i++) {
            int g = run_of[i];
            if (sp[i].type != t || g < 0) continue;
            if (!first_ent) fprintf(f, ", ");
            first_ent = 0;
            run_json_string(f, m[g].text, (size_t)m[g].len);
            fprintf(f, ": [");
            for (int k = g; k < run_end[g]; k++) fprintf(f, k > g ? ", [%d, %d]" : "[%d, %d]", sp[m[k].index].start, sp[m[k].index].end);
            fprintf(f, "]");
        }
        fprintf(f, "}");
    }
    fprintf(f, "}");
    free(m); free(run_of); free(run_end);
}

#endif
