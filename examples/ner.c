// ner.c - Chinese named-entity recognition on CLUENER2020 (10 fine-grained types): BERT with HF's
// BertForTokenClassification head (dropout + dense over every token) and either softmax
// cross-entropy or a linear-chain CRF (bert_crf_nll / bert_crf_decode) on top. Trains on train.json,
// reports entity-level precision / recall / F1 on dev.json per type, micro (overall) and macro over
// the types, and writes CLUE's submission file for test.json.
//
//   cc -O2 -march=native -fopenmp -std=c11 examples/ner.c -o build/ner -lm
//   ./build/ner --do_train --do_eval --do_predict --config bert_config.json --use_crf --out ner_crf
//       (random init; --init converted.safetensors fine-tunes a pretrained encoder instead)
//   ./build/ner --do_eval --model ner_crf/model.safetensors        (evaluate a fine-tuned model)
//   ./build/ner --help
//
// Data: CLUENER's JSON lines as published: {"text": T, "label": {type: {entity: [[start, end]]}}},
// offsets in characters (code points), end inclusive; test.json has "id" and no "label". A record
// whose span is out of range, whose span text is not the entity, whose type is not in --types, or
// with over 10000 spans stops the program with FILE:LINE (--skip_bad_records drops such records and
// counts them). A data file may have up to 1 GB.
// Characters: one token per character, so offsets stay exact. A character's token is what
// bert_tokenize makes of it alone (lower-cased, accents stripped with --do_lower_case, as Google's
// Chinese model expects; so letters and digits go one by one instead of as WordPiece words); one the
// tokenizer drops (whitespace, control characters) becomes [unused1] ([UNK] if the vocab lacks it),
// one that splits into pieces (a Hangul syllable's jamo) its first piece, an unknown one [UNK].
// Tags: BIO (O, B-x, I-x) or BIOES (also E-x, S-x): id 0 is O, then for each type of --types in
// order B, I (, E, S). Overlapping mentions cannot all be tagged: for training the one starting first
// (the longer on a tie, then the earlier in the file) wins and the others are counted (train.json
// has one such record); scoring always uses every gold mention.
// Windows: a text longer than --max_seq_length - 2 characters becomes windows of that many,
// --doc_stride apart, the last one ending at the text's end. Training uses every window; a
// prediction takes each character's tag from the window where it is most central (the earlier
// window on a tie). CLUENER's texts are at most 50 characters, so at 64 or more nothing is split.
// Tags to spans (lenient, the same for gold and predicted tags): B opens an entity, I continues one
// of its type (else opens one), E closes one of its type (else is a one-character entity), S is a
// one-character entity, O closes. With the CRF the tags are Viterbi's path per window.
// Scores: exact (type, start, end) matches; micro P/R/F1 over all mentions, macro = the mean of
// the per-type F1s (CLUE reports both).
// Data order (as examples/pretrain.c): each epoch visits the training windows in a Fisher-Yates
// permutation from bert_rng_stream(seed, epoch, SHUFFLE_SITE) in batches of --batch_size (the
// last one of an epoch may be short), each padded to its longest window; batch k of the run uses
// bert_ctx_reset(ctx, k), so dropout is the same on a resumed run.
// Output in --out: model.safetensors (HF BertForTokenClassification names: bert.*, classifier.*,
// crf.transitions with --use_crf, plus the pooler and pretraining heads bert.h keeps), config.json
// (HF fields, id2label), log.jsonl, checkpoints ckpt-N/, dev_results.json, cluener_predict.json.
// Results from a random init (softmax vs CRF): README "Fine-tuning: NER (CLUENER2020)",
// bench/ner_runs.sh. Tests: tests/test_ner.c against tests/ref/ner_ref.py.
#define _DEFAULT_SOURCE   // sigaction, mkdir, opendir
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <signal.h>
#include <errno.h>
#include <dirent.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#define BERT_IMPLEMENTATION
#include "../bert.h"

#define SHUFFLE_SITE 0x5348554646ull   // "SHUFF": the shuffle's RNG site, apart from dropout's
#define CRF_INIT_SITE 0x435246ull      // "CRF": the transitions' init
#define MAX_TYPES 32
#define MAX_SPANS 10000               // gold mentions per record (CLUENER's have a handful): bounds their checks
#define MAX_FILE_BYTES ((size_t)1 << 30)   // a data file is read whole; 1 GB also keeps line and record counts in an int
#define CLUENER_TYPES "address,book,company,game,government,movie,name,organization,position,scene"

// ----------------------------------------------------------------------------
// options

typedef struct {
    const char *data_dir, *train_file, *dev_file, *test_file, *predict_file, *vocab, *config, *init, *model;
    const char *out, *tagging, *types, *optimizer, *debug_dump_grads;
    int do_train, do_eval, do_predict, use_crf, do_lower_case, max_seq_length, doc_stride;
    int batch_size, eval_batch_size, epochs, steps, warmup_steps, seed, no_shuffle;
    int eval_every, save_every, keep, resume, print_every, threads, skip_bad_records, oracle, max_bad_steps, debug_stop_at_step;
    float lr, warmup_proportion, weight_decay, beta1, beta2, eps, clip_norm, classifier_dropout;
} options;

static options opt = {
    .data_dir = "../shared/data/cluener2020", .vocab = "../shared/data/vocab/bert_chinese_vocab.txt",
    .out = "ner_out", .tagging = "bio", .types = CLUENER_TYPES, .optimizer = "adamw",
    .do_lower_case = 1, .max_seq_length = 128, .doc_stride = -1, .batch_size = 32, .eval_batch_size = 64,
    .epochs = 3, .warmup_steps = -1, .seed = 42, .keep = 2, .print_every = 50, .max_bad_steps = 10,
    .lr = 3e-5f, .warmup_proportion = 0.1f, .weight_decay = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f,
    .eps = 1e-8f, .clip_norm = 1.0f, .classifier_dropout = -1.0f,
};

static const bert_flag flags[] = {
    { "do_train", BERT_FLAG_BOOL, &opt.do_train, "fine-tune on the training file" },
    { "do_eval", BERT_FLAG_BOOL, &opt.do_eval, "score the dev file (entity P/R/F1 per type, micro, macro)" },
    { "do_predict", BERT_FLAG_BOOL, &opt.do_predict, "write CLUE's submission file for the test file" },
    { "data_dir", BERT_FLAG_STR, &opt.data_dir, "directory with train.json, dev.json, test.json" },
    { "train_file", BERT_FLAG_STR, &opt.train_file, "training JSON lines (default DATA_DIR/train.json)" },
    { "dev_file", BERT_FLAG_STR, &opt.dev_file, "dev JSON lines (default DATA_DIR/dev.json)" },
    { "test_file", BERT_FLAG_STR, &opt.test_file, "test JSON lines (default DATA_DIR/test.json)" },
    { "predict_file", BERT_FLAG_STR, &opt.predict_file, "submission output (default OUT/cluener_predict.json)" },
    { "vocab", BERT_FLAG_STR, &opt.vocab, "vocab.txt of the model" },
    { "do_lower_case", BERT_FLAG_BOOL, &opt.do_lower_case, "lower-case and strip accents (Google's Chinese model: 1)" },
    { "config", BERT_FLAG_STR, &opt.config, "bert_config.json for a random init (or for a --init/--model without one)" },
    { "init", BERT_FLAG_STR, &opt.init, "pretrained weights to fine-tune (safetensors; absent heads keep their init)" },
    { "model", BERT_FLAG_STR, &opt.model, "fine-tuned model for --do_eval/--do_predict without --do_train (default OUT/model.safetensors)" },
    { "out", BERT_FLAG_STR, &opt.out, "output directory" },
    { "types", BERT_FLAG_STR, &opt.types, "entity types, comma-separated (their order fixes the tag ids)" },
    { "tagging", BERT_FLAG_STR, &opt.tagging, "bio | bioes" },
    { "use_crf", BERT_FLAG_BOOL, &opt.use_crf, "linear-chain CRF loss and Viterbi decoding instead of softmax" },
    { "max_seq_length", BERT_FLAG_INT, &opt.max_seq_length, "tokens per window, [CLS] and [SEP] included" },
    { "doc_stride", BERT_FLAG_INT, &opt.doc_stride, "characters between window starts (-1: half a window)" },
    { "optimizer", BERT_FLAG_STR, &opt.optimizer, "adamw | adamw_gb | lamb | momentum" },
    { "lr", BERT_FLAG_FLOAT, &opt.lr, "peak learning rate" },
    { "warmup_steps", BERT_FLAG_INT, &opt.warmup_steps, "linear warmup steps (-1: --warmup_proportion)" },
    { "warmup_proportion", BERT_FLAG_FLOAT, &opt.warmup_proportion, "warmup as a fraction of the steps" },
    { "weight_decay", BERT_FLAG_FLOAT, &opt.weight_decay, "decoupled weight decay (not on LayerNorm, biases, crf.transitions)" },
    { "beta1", BERT_FLAG_FLOAT, &opt.beta1, "Adam beta1" },
    { "beta2", BERT_FLAG_FLOAT, &opt.beta2, "Adam beta2" },
    { "eps", BERT_FLAG_FLOAT, &opt.eps, "Adam epsilon" },
    { "clip_norm", BERT_FLAG_FLOAT, &opt.clip_norm, "global gradient norm clip, 0 = off" },
    { "classifier_dropout", BERT_FLAG_FLOAT, &opt.classifier_dropout, "dropout before the classifier (-1: hidden_dropout_prob)" },
    { "batch_size", BERT_FLAG_INT, &opt.batch_size, "training windows per step" },
    { "eval_batch_size", BERT_FLAG_INT, &opt.eval_batch_size, "windows per forward pass in eval/predict" },
    { "epochs", BERT_FLAG_INT, &opt.epochs, "passes over the training windows when --steps is 0" },
    { "steps", BERT_FLAG_INT, &opt.steps, "optimizer steps (0: --epochs)" },
    { "seed", BERT_FLAG_INT, &opt.seed, "seed of the init, the shuffle and the dropout masks" },
    { "no_shuffle", BERT_FLAG_BOOL, &opt.no_shuffle, "visit the training windows in file order" },
    { "eval_every", BERT_FLAG_INT, &opt.eval_every, "score the dev file every N steps (0: at the end)" },
    { "save_every", BERT_FLAG_INT, &opt.save_every, "checkpoint every N steps (0: at the end)" },
    { "keep", BERT_FLAG_INT, &opt.keep, "checkpoints kept (oldest deleted)" },
    { "resume", BERT_FLAG_BOOL, &opt.resume, "continue from the newest complete checkpoint in --out" },
    { "print_every", BERT_FLAG_INT, &opt.print_every, "progress line every N steps" },
    { "max_bad_steps", BERT_FLAG_INT, &opt.max_bad_steps, "stop after this many NaN/Inf steps in a row" },
    { "threads", BERT_FLAG_INT, &opt.threads, "OpenMP threads (0: OMP_NUM_THREADS or all cores)" },
    { "skip_bad_records", BERT_FLAG_BOOL, &opt.skip_bad_records, "drop malformed records (counted) instead of stopping" },
    { "oracle", BERT_FLAG_BOOL, &opt.oracle, "testing: predict the gold tags (scores alignment, windows, tagging, decoding)" },
    { "debug_dump_grads", BERT_FLAG_STR, &opt.debug_dump_grads, "testing: write the first step's loss and grads here and exit" },
    { "debug_stop_at_step", BERT_FLAG_INT, &opt.debug_stop_at_step, "testing: stop after this step as Ctrl-C does (checkpoint, exit 130)" },
};
#define NFLAGS ((int)(sizeof flags / sizeof flags[0]))

static void usage(FILE *f) {
    fprintf(f, "usage: ner [--do_train] [--do_eval] [--do_predict] [flags]\n"
               "Named-entity recognition on CLUENER2020 (JSON lines) with a BERT token classifier, softmax or CRF.\n"
               "  ner --do_train --do_eval --config bert_config.json --use_crf --lr 5e-4 --epochs 3 --out run1\n"
               "  ner --do_eval --do_predict --model run1/model.safetensors --out run1\n"
               "Ctrl-C during training saves a checkpoint and exits with status 130; --resume continues it.\n\nflags:\n");
    bert_flags_usage(f, flags, NFLAGS);
}

static void die(const char *fmt, ...) BERT__PRINTF(1, 2);
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ner: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) die("out of memory");
    return p;
}

// ----------------------------------------------------------------------------
// entity types and tags: O = 0, then per type B, I (BIO) or B, I, E, S (BIOES)

static int ntypes, bioes, ntags;
static char type_names[MAX_TYPES][64];

static void parse_types(void) {
    const char *s = opt.types;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0 || len >= sizeof type_names[0]) die("--types: empty or over-long type name in '%s'", opt.types);
        if (ntypes == MAX_TYPES) die("--types: more than %d types", MAX_TYPES);
        memcpy(type_names[ntypes], s, len);
        type_names[ntypes][len] = 0;
        for (int t = 0; t < ntypes; t++)
            if (!strcmp(type_names[t], type_names[ntypes])) die("--types: '%s' given twice", type_names[t]);
        ntypes++;
        s += len + (e != NULL);
    }
    if (!ntypes) die("--types: no types");
    if (!strcmp(opt.tagging, "bio")) bioes = 0;
    else if (!strcmp(opt.tagging, "bioes")) bioes = 1;
    else die("--tagging: '%s' is not bio or bioes", opt.tagging);
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
// records: the text as characters, one token per character, the gold mentions and their tags

typedef struct { int type, start, end; } span;   // characters [start, end], end inclusive

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
    if (count < 0 && reading_path) die("%s:%d: %s", reading_path, reading_line, bert_last_error());
    if (count < 0) die("%s", bert_last_error());
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
    r->text = (char *)xcalloc(len + 1, 1);
    memcpy(r->text, text, len);
    r->byte_of = (int *)xcalloc(len + 1, sizeof(int));
    r->ids = (int32_t *)xcalloc(len + 1, sizeof(int32_t));
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
                    if (!(r->spans = (span *)realloc(r->spans, (size_t)room * sizeof(span)))) die("out of memory");
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
    r->tags = (int32_t *)xcalloc((size_t)r->n + 1, sizeof(int32_t));
    ordered_span *order = (ordered_span *)xcalloc((size_t)r->nspans + 1, sizeof *order);
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

// the whole file, NUL-terminated; over MAX_FILE_BYTES is an error, found without reading on (a
// pipe or /dev/zero would otherwise grow the buffer until memory runs out)
static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die("%s: %s", path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    char *s = (char *)xcalloc(cap + 1, 1);
    for (size_t got; (got = fread(s + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n > MAX_FILE_BYTES) die("%s: larger than %zu MB (the most ner reads from a data file)", path, MAX_FILE_BYTES >> 20);
        if (n == cap) {
            cap = cap < MAX_FILE_BYTES / 2 ? 2 * cap : MAX_FILE_BYTES + 1;
            if (!(s = (char *)realloc(s, cap + 1))) die("out of memory reading %s", path);
        }
    }
    if (ferror(f)) die("%s: read error", path);
    fclose(f);
    s[n] = 0;
    *len = n;
    return s;
}

// every non-blank line of a JSON-lines file; labelled: each record must have "label"
static void dataset_load(dataset *d, const char *path, int labelled) {
    memset(d, 0, sizeof *d);
    d->path = path;
    size_t len;
    char *s = read_text(path, &len), err[512];
    int lineno = 0;
    for (size_t at = 0; at < len;) {
        char *nl = (char *)memchr(s + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - s) : len, n = end - at;
        lineno++;
        while (n && (s[at + n - 1] == '\r' || s[at + n - 1] == ' ' || s[at + n - 1] == '\t')) n--;
        if (n) {
            if (d->n == d->cap) {
                d->cap = d->cap ? 2 * d->cap : 1024;
                if (!(d->r = (record *)realloc(d->r, (size_t)d->cap * sizeof(record)))) die("out of memory");
            }
            record *r = &d->r[d->n];
            reading_path = path; reading_line = lineno;
            if (parse_record(r, s + at, n, labelled, d->n, err, sizeof err)) {
                if (!opt.skip_bad_records) die("%s:%d: %s", path, lineno, err);
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
        fprintf(stderr, "ner: %s: skipped %ld malformed record%s (--skip_bad_records; first: %s)\n", path, d->skipped,
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
    ws->w = (window *)xcalloc((size_t)cap, sizeof(window));
    ws->n = 0;
    for (int r = 0; r < d->n; r++) {
        int n = d->r[r].n;
        for (int s = 0; n > 0; s = s + S < n - W ? s + S : n - W) {
            if (ws->n == cap) {
                cap *= 2;
                if (!(ws->w = (window *)realloc(ws->w, (size_t)cap * sizeof(window)))) die("out of memory");
            }
            window *w = &ws->w[ws->n++];
            w->rec = r; w->start = s; w->len = n - s < W ? n - s : W;
            if (s + W >= n) break;
        }
    }
    ws->tag_at = (int64_t *)xcalloc((size_t)ws->n + 1, sizeof(int64_t));
    for (int i = 0; i < ws->n; i++) ws->tag_at[i + 1] = ws->tag_at[i] + ws->w[i].len;
    ws->char_at = (int64_t *)xcalloc((size_t)d->n + 1, sizeof(int64_t));
    for (int r = 0; r < d->n; r++) ws->char_at[r + 1] = ws->char_at[r] + d->r[r].n;
}

static void windows_free(windows *ws) { free(ws->w); free(ws->tag_at); free(ws->char_at); memset(ws, 0, sizeof *ws); }

// per character, the tag of the window where it is most central (the earlier window on a tie)
static void windows_merge(const windows *ws, const int32_t *wtags, int32_t *rtags, int64_t nchars) {
    int *best = (int *)xcalloc((size_t)nchars + 1, sizeof(int));
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
// tags to spans, scores

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

// ----------------------------------------------------------------------------
// batches: [CLS] characters [SEP] padded to the batch's longest window

typedef struct {
    int B, T, Tc;                 // windows, padded length, longest window (characters)
    int32_t *ids, *mask;          // (B,T)
    int32_t *labels;              // (B*T) softmax targets: the tag, -100 off the characters
    int32_t *rows, *tags, *lengths;   // CRF: (B*Tc) the characters' rows of the logits, (B,Tc) tags, (B)
    long tokens;                  // real tokens, [CLS]/[SEP] included
} batch;

static void batch_alloc(batch *b, int B, int T) {
    size_t bt = (size_t)B * T;
    b->ids = (int32_t *)xcalloc(5 * bt + (size_t)B, sizeof(int32_t));
    b->mask = b->ids + bt; b->labels = b->mask + bt; b->rows = b->labels + bt; b->tags = b->rows + bt; b->lengths = b->tags + bt;
}

static void batch_fill(batch *b, const dataset *d, const windows *ws, const size_t *idx, int B, int cls, int sep, int pad) {
    b->B = B; b->Tc = 1; b->tokens = 0;
    for (int e = 0; e < B; e++) if (ws->w[idx[e]].len > b->Tc) b->Tc = ws->w[idx[e]].len;
    b->T = b->Tc + 2;
    int T = b->T, Tc = b->Tc;
    for (int e = 0; e < B; e++) {
        const window *w = &ws->w[idx[e]];
        const record *r = &d->r[w->rec];
        int32_t *ids = b->ids + (size_t)e * T, *mask = b->mask + (size_t)e * T, *lab = b->labels + (size_t)e * T;
        for (int t = 0; t < T; t++) { ids[t] = pad; mask[t] = 0; lab[t] = -100; }
        ids[0] = cls; mask[0] = 1;
        for (int c = 0; c < w->len; c++) {
            ids[1 + c] = r->ids[w->start + c]; mask[1 + c] = 1; lab[1 + c] = r->tags[w->start + c];
        }
        ids[1 + w->len] = sep; mask[1 + w->len] = 1;
        for (int c = 0; c < Tc; c++) {   // rows past the window read its [CLS] row; the length masks them
            b->rows[(size_t)e * Tc + c] = e * T + (c < w->len ? 1 + c : 0);
            b->tags[(size_t)e * Tc + c] = c < w->len ? r->tags[w->start + c] : 0;
        }
        b->lengths[e] = w->len;
        b->tokens += w->len + 2;
    }
}

// ----------------------------------------------------------------------------
// the model: encoder + dropout + classifier (+ CRF)

typedef struct { bert_tensor *w, *b, *trans; } head;

typedef struct { bert_tensor *loss, *logits, *emissions; } outputs;

static outputs forward(bert_ctx *ctx, bert_model *m, const head *h, batch *b, int with_loss) {
    outputs o = { NULL, NULL, NULL };
    float p = opt.classifier_dropout >= 0 ? opt.classifier_dropout : m->config.hidden_dropout_prob;
    bert_tensor *seq = bert_encode(ctx, m, b->ids, NULL, b->mask, b->B, b->T);
    o.logits = bert_linear(ctx, bert_dropout(ctx, seq, p), h->w, h->b);   // (B,T,K): the dropout site after the encoder's 1+3L
    if (opt.use_crf) {
        o.emissions = bert_gather(ctx, o.logits, b->rows, b->B * b->Tc);   // (B*Tc,K), viewed as (B,Tc,K): same memory
        o.emissions->ndim = 3;
        o.emissions->shape[0] = b->B; o.emissions->shape[1] = b->Tc; o.emissions->shape[2] = ntags;
        if (with_loss) o.loss = bert_crf_nll(ctx, o.emissions, h->trans, b->tags, b->lengths);
    } else if (with_loss) {
        o.loss = bert_softmax_xent(ctx, o.logits, b->labels, -100);   // the mean over the characters
    }
    return o;
}

// the batch's predicted tags into wtags (flat over the windows, as ws->tag_at)
static void decode_batch(const outputs *o, const head *h, const batch *b, const windows *ws, const size_t *idx, int32_t *wtags, int32_t *scratch) {
    if (opt.use_crf && bert_crf_decode(o->emissions, h->trans, b->lengths, scratch)) die("%s", bert_last_error());
    for (int e = 0; e < b->B; e++) {
        int32_t *out = wtags + ws->tag_at[idx[e]];
        for (int c = 0; c < b->lengths[e]; c++) {
            if (opt.use_crf) { out[c] = scratch[(size_t)e * b->Tc + c]; continue; }
            const float *row = o->logits->data + ((size_t)e * b->T + 1 + c) * ntags;
            int best = 0;
            for (int k = 1; k < ntags; k++) if (row[k] > row[best]) best = k;
            out[c] = best;
        }
    }
}

// predicted (or, with --oracle, gold) tags of every character of d
static void predict_tags(bert_ctx *ctx, bert_model *m, const head *h, const dataset *d, const windows *ws, int32_t *rtags) {
    int32_t *wtags = (int32_t *)xcalloc((size_t)ws->tag_at[ws->n] + 1, sizeof(int32_t));
    if (opt.oracle) {
        for (int i = 0; i < ws->n; i++)
            memcpy(wtags + ws->tag_at[i], d->r[ws->w[i].rec].tags + ws->w[i].start, (size_t)ws->w[i].len * sizeof(int32_t));
    } else {
        int EB = opt.eval_batch_size, saved_training = ctx->training, saved_grad = ctx->grad_enabled;
        batch b;
        batch_alloc(&b, EB, opt.max_seq_length);
        size_t *idx = (size_t *)xcalloc((size_t)EB, sizeof(size_t));
        int32_t *scratch = (int32_t *)xcalloc((size_t)EB * opt.max_seq_length, sizeof(int32_t));
        ctx->training = 0; ctx->grad_enabled = 0;
        for (int i = 0; i < ws->n; i += EB) {
            int B = ws->n - i < EB ? ws->n - i : EB;
            for (int e = 0; e < B; e++) idx[e] = (size_t)(i + e);
            batch_fill(&b, d, ws, idx, B, vocab->cls_id, vocab->sep_id, vocab->pad_id);
            bert_ctx_reset(ctx, 0);
            outputs o = forward(ctx, m, h, &b, 0);
            decode_batch(&o, h, &b, ws, idx, wtags, scratch);
        }
        ctx->training = saved_training; ctx->grad_enabled = saved_grad;
        free(b.ids); free(idx); free(scratch);
    }
    windows_merge(ws, wtags, rtags, ws->char_at[d->n]);
    free(wtags);
}

static summary evaluate(bert_ctx *ctx, bert_model *m, const head *h, const dataset *d, const windows *ws, FILE *table) {
    int32_t *rtags = (int32_t *)xcalloc((size_t)ws->char_at[d->n] + 1, sizeof(int32_t));
    predict_tags(ctx, m, h, d, ws, rtags);
    counts c;
    memset(&c, 0, sizeof c);
    int pcap = 64, gmax = 1;
    for (int r = 0; r < d->n; r++) if (d->r[r].nspans > gmax) gmax = d->r[r].nspans;
    span *pred = (span *)xcalloc((size_t)pcap, sizeof(span)), *scratch = (span *)xcalloc((size_t)gmax, sizeof(span));
    for (int r = 0; r < d->n; r++) {
        if (d->r[r].n > pcap) { pcap = d->r[r].n; free(pred); pred = (span *)xcalloc((size_t)pcap, sizeof(span)); }
        int np = tags_to_spans(rtags + ws->char_at[r], d->r[r].n, pred);
        score_record(&c, d->r[r].spans, d->r[r].nspans, pred, np, scratch);
    }
    free(pred); free(scratch); free(rtags);
    return summarize(&c, table);
}

// ----------------------------------------------------------------------------
// CLUE's submission file: {"id": ..., "label": {type: {entity: [[start, end], ...]}}} per line

static void json_string(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

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
    mention_text *m = (mention_text *)xcalloc((size_t)np + 1, sizeof *m);
    int *run_of = (int *)xcalloc((size_t)np + 1, sizeof(int)), *run_end = (int *)xcalloc((size_t)np + 1, sizeof(int));
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
            json_string(f, m[g].text, (size_t)m[g].len);
            fprintf(f, ": [");
            for (int k = g; k < run_end[g]; k++) fprintf(f, k > g ? ", [%d, %d]" : "[%d, %d]", sp[m[k].index].start, sp[m[k].index].end);
            fprintf(f, "]");
        }
        fprintf(f, "}");
    }
    fprintf(f, "}");
    free(m); free(run_of); free(run_end);
}

static void write_predictions(const char *path, bert_ctx *ctx, bert_model *m, const head *h, const dataset *d, const windows *ws) {
    int32_t *rtags = (int32_t *)xcalloc((size_t)ws->char_at[d->n] + 1, sizeof(int32_t));
    predict_tags(ctx, m, h, d, ws, rtags);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) die("%s: %s", tmp, strerror(errno));
    long mentions = 0;
    for (int r = 0; r < d->n; r++) {
        span *sp = (span *)xcalloc((size_t)d->r[r].n + 1, sizeof(span));
        int np = tags_to_spans(rtags + ws->char_at[r], d->r[r].n, sp);
        mentions += np;
        fprintf(f, "{\"id\": %s, ", d->r[r].id);
        write_record_labels(f, &d->r[r], sp, np);
        fprintf(f, "}\n");
        free(sp);
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) die("%s: %s", path, strerror(errno));
    printf("predict: %d records, %ld mentions -> %s\n", d->n, mentions, path);
    free(rtags);
}

// ----------------------------------------------------------------------------
// model setup

static int config_from_file(bert_config *cfg, const char *path) {
    bert_st st;
    if (bert_st_open(&st, path)) die("%s", bert_last_error());
    const char *text = bert_st_meta(&st, "config");
    int found = text != NULL;
    if (found && bert_config_parse(cfg, text, strlen(text), path)) die("%s", bert_last_error());
    bert_st_close(&st);
    return found;
}

static int has_tensor(const char *path, const char *name) {
    bert_st st;
    if (bert_st_open(&st, path)) die("%s", bert_last_error());
    int found = bert_st_find(&st, name) != NULL;
    bert_st_close(&st);
    return found;
}

// classifier (ntags, C) and, with the CRF, transitions (ntags+2)^2 drawn from U(-0.1, 0.1) as
// pytorch-crf does, without weight decay
static head add_heads(bert_model *m) {
    if (bert_classifier_add(m, ntags, (uint64_t)opt.seed)) die("%s", bert_last_error());
    if (opt.use_crf) {
        bert_tensor *t = bert_model_add_tensor(m, "crf.transitions", ntags + 2, ntags + 2, 0, (uint64_t)opt.seed);
        if (!t) die("%s", bert_last_error());
        uint64_t s = bert_rng_stream((uint64_t)opt.seed, 0, CRF_INIT_SITE);
        for (size_t i = 0; i < t->numel; i++) t->data[i] = 0.2f * bert_rng_uniform(s, i) - 0.1f;
    }
    head h = { &m->tensors[bert_model_find(m, "classifier.weight")], &m->tensors[bert_model_find(m, "classifier.bias")], NULL };
    if (opt.use_crf) h.trans = &m->tensors[bert_model_find(m, "crf.transitions")];
    return h;
}

static bert_model *make_model(head *h, const char *model_path) {
    bert_config cfg;
    int have_cfg = opt.config != NULL;
    if (opt.config && bert_config_load(&cfg, opt.config)) die("%s", bert_last_error());
    const char *from = opt.do_train ? opt.init : model_path;
    if (from && !have_cfg) have_cfg = config_from_file(&cfg, from);
    if (!have_cfg) die("%s: no config in its metadata: give --config bert_config.json", from ? from : "a random init");
    if (!opt.do_train && has_tensor(model_path, "crf.transitions") != opt.use_crf) {
        opt.use_crf = !opt.use_crf;   // a fine-tuned model says whether it was trained with the CRF
        printf("note: %s %s crf.transitions: decoding with %s\n", model_path, opt.use_crf ? "has" : "has no", opt.use_crf ? "the CRF" : "softmax");
    }
    bert_model *m = bert_model_create(&cfg, (uint64_t)opt.seed);
    if (!m) die("%s", bert_last_error());
    *h = add_heads(m);
    int missing = 0;
    if (from && opt.do_train && bert_model_load_encoder(m, from, &missing)) die("%s", bert_last_error());
    if (from && !opt.do_train && bert_model_load_weights(m, from)) die("%s", bert_last_error());
    if (from && opt.do_train) printf("init: %s (%d head tensors not in it keep their init)\n", from, missing);
    if (m->config.vocab_size != vocab->size)
        die("%s has %d tokens, but the model's vocab_size is %d", opt.vocab, vocab->size, m->config.vocab_size);
    if (m->config.max_position_embeddings < opt.max_seq_length)
        die("--max_seq_length %d exceeds the model's max_position_embeddings %d", opt.max_seq_length, m->config.max_position_embeddings);
    if (bert_classifier_num_labels(m) != ntags) die("the classifier has %d labels, --tagging %s over %d types needs %d",
                                                    bert_classifier_num_labels(m), opt.tagging, ntypes, ntags);
    return m;
}

// HF's config.json for BertForTokenClassification: the encoder's config, id2label, label2id
static void write_hf_config(const bert_model *m, const char *path) {
    char base[1024];
    if (bert_config_to_json(&m->config, base, sizeof base) < 0) die("config too long");
    FILE *f = fopen(path, "w");
    if (!f) die("%s: %s", path, strerror(errno));
    base[strlen(base) - 1] = 0;   // drop the closing brace
    fprintf(f, "%s, \"model_type\": \"bert\", \"architectures\": [\"BertForTokenClassification\"], \"num_labels\": %d, "
               "\"ner_tagging\": \"%s\", \"ner_crf\": %s, \"id2label\": {", base, ntags, opt.tagging, opt.use_crf ? "true" : "false");
    char name[96];
    for (int k = 0; k < ntags; k++) { tag_name(k, name, sizeof name); fprintf(f, k ? ", \"%d\": \"%s\"" : "\"%d\": \"%s\"", k, name); }
    fprintf(f, "}, \"label2id\": {");
    for (int k = 0; k < ntags; k++) { tag_name(k, name, sizeof name); fprintf(f, k ? ", \"%s\": %d" : "\"%s\": %d", name, k); }
    fprintf(f, "}}\n");
    if (fclose(f) != 0) die("%s: %s", path, strerror(errno));
}

// ----------------------------------------------------------------------------
// training state beyond the model and optimizer, checkpoints (as examples/pretrain.c)

typedef struct { uint64_t micro, epoch, cursor, bad_steps; } cursor_state;

static void permutation(size_t *perm, size_t n, uint64_t epoch) {
    for (size_t i = 0; i < n; i++) perm[i] = i;
    if (opt.no_shuffle) return;
    uint64_t stream = bert_rng_stream((uint64_t)opt.seed, epoch, SHUFFLE_SITE);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(bert_rng_bits(stream, (uint64_t)i) % (uint64_t)(i + 1));
        size_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
}

// the next batch's windows; a new epoch starts when the current one is used up
static int next_batch(size_t *out, cursor_state *c, size_t *perm, size_t n) {
    if (c->cursor >= n) { c->epoch++; c->cursor = 0; permutation(perm, n, c->epoch); }
    int B = 0;
    while (B < opt.batch_size && c->cursor < n) out[B++] = perm[c->cursor++];
    return B;
}

static void checkpoint_dir(char *buf, size_t n, uint64_t step) { snprintf(buf, n, "%s/ckpt-%08llu", opt.out, (unsigned long long)step); }

static int list_checkpoints(unsigned long long *steps, int cap) {
    DIR *dir = opendir(opt.out);
    int n = 0;
    if (!dir) return 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        unsigned long long s;
        char tail;
        if (sscanf(e->d_name, "ckpt-%llu%c", &s, &tail) == 1 && strlen(e->d_name) == 13 && n < cap) steps[n++] = s;
    }
    closedir(dir);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) { unsigned long long t = steps[j]; steps[j] = steps[j - 1]; steps[j - 1] = t; }
    return n;
}

static void save_checkpoint(const bert_model *m, const bert_optim *o, const cursor_state *c, const char *fingerprint) {
    char dir[4096], path[4200];
    checkpoint_dir(dir, sizeof dir, o->step);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) die("%s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    remove(path);   // never an old state beside new weights
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (bert_model_save(m, path)) die("saving %s", bert_last_error());
    char micro[32], epoch[32], cur[32], bad[32];
    snprintf(micro, sizeof micro, "%llu", (unsigned long long)c->micro);
    snprintf(epoch, sizeof epoch, "%llu", (unsigned long long)c->epoch);
    snprintf(cur, sizeof cur, "%llu", (unsigned long long)c->cursor);
    snprintf(bad, sizeof bad, "%llu", (unsigned long long)c->bad_steps);
    const char *kv[] = { "micro", micro, "epoch", epoch, "cursor", cur, "bad_steps", bad, "data", fingerprint };
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    if (bert_optim_save(o, m, path, kv, 5)) die("saving %s", bert_last_error());
    unsigned long long steps[4096];
    int n = list_checkpoints(steps, 4096);
    for (int i = 0; i + opt.keep < n; i++) {
        checkpoint_dir(dir, sizeof dir, steps[i]);
        snprintf(path, sizeof path, "%s/state.safetensors", dir); remove(path);
        snprintf(path, sizeof path, "%s/model.safetensors", dir); remove(path);
        rmdir(dir);
    }
}

static int meta_u64(const bert_st *st, const char *key, uint64_t *v) {
    const char *s = bert_st_meta(st, key);
    char *end = NULL;
    if (!s || !*s) return 0;
    *v = strtoull(s, &end, 10);
    return !*end;
}

// the newest complete checkpoint in --out into m, o, c; 0 if there is none
static int resume(bert_model *m, bert_optim *o, cursor_state *c, const char *fingerprint) {
    unsigned long long steps[4096];
    for (int i = list_checkpoints(steps, 4096) - 1; i >= 0; i--) {
        char dir[4096], path[4200];
        checkpoint_dir(dir, sizeof dir, steps[i]);
        snprintf(path, sizeof path, "%s/state.safetensors", dir);
        bert_st st;
        if (bert_st_open(&st, path)) { fprintf(stderr, "ner: skipping %s: %s\n", dir, bert_last_error()); continue; }
        cursor_state s;
        int ok = meta_u64(&st, "micro", &s.micro) && meta_u64(&st, "epoch", &s.epoch) && meta_u64(&st, "cursor", &s.cursor) &&
                 meta_u64(&st, "bad_steps", &s.bad_steps);
        const char *data = bert_st_meta(&st, "data");
        if (ok && (!data || strcmp(data, fingerprint)))
            die("%s: it was trained with other data or settings (%s) than this run's (%s)", dir, data ? data : "?", fingerprint);
        bert_st_close(&st);
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (!ok || bert_model_load_weights(m, path)) { fprintf(stderr, "ner: skipping %s: incomplete\n", dir); continue; }
        snprintf(path, sizeof path, "%s/state.safetensors", dir);
        if (bert_optim_load(o, m, path)) die("%s", bert_last_error());
        *c = s;
        printf("resumed from %s at step %llu\n", dir, (unsigned long long)o->step);
        return 1;
    }
    printf("no checkpoint in %s: starting from scratch\n", opt.out);
    return 0;
}

// testing: the loss, the batch and every parameter's grad after the first backward
static void dump_grads(const char *path, const bert_model *m, float loss, const batch *b) {
    int n = m->num_tensors + 5, k = 0;
    bert_st_entry *e = (bert_st_entry *)xcalloc((size_t)n, sizeof *e);
    char **names = (char **)xcalloc((size_t)n, sizeof(char *));
    e[k].name = "loss"; e[k].dtype = BERT_DT_F32; e[k].ndim = 1; e[k].shape[0] = 1; e[k++].data = &loss;
    e[k].name = "input_ids"; e[k].dtype = BERT_DT_I32; e[k].ndim = 2; e[k].shape[0] = b->B; e[k].shape[1] = b->T; e[k++].data = b->ids;
    e[k].name = "labels"; e[k].dtype = BERT_DT_I32; e[k].ndim = 2; e[k].shape[0] = b->B; e[k].shape[1] = b->T; e[k++].data = b->labels;
    e[k].name = "crf_tags"; e[k].dtype = BERT_DT_I32; e[k].ndim = 2; e[k].shape[0] = b->B; e[k].shape[1] = b->Tc; e[k++].data = b->tags;
    e[k].name = "lengths"; e[k].dtype = BERT_DT_I32; e[k].ndim = 1; e[k].shape[0] = b->B; e[k++].data = b->lengths;
    for (int i = 0; i < m->num_tensors; i++, k++) {
        size_t len = strlen(m->names[i]) + 6;
        names[k] = (char *)xcalloc(len, 1);
        snprintf(names[k], len, "grad.%s", m->names[i]);
        e[k].name = names[k]; e[k].dtype = BERT_DT_F32; e[k].ndim = m->tensors[i].ndim;
        for (int d = 0; d < m->tensors[i].ndim; d++) e[k].shape[d] = m->tensors[i].shape[d];
        e[k].data = m->tensors[i].grad;
    }
    if (bert_st_save(path, e, k, NULL, 0)) die("%s", bert_last_error());
    for (int i = 0; i < n; i++) free(names[i]);
    free(names); free(e);
}

// ----------------------------------------------------------------------------
// main

static volatile sig_atomic_t interrupted = 0;
static uint64_t final_step;   // optimizer steps done when training ends (0 without training)
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

static bert_optim_type parse_optimizer(const char *name) {
    static const bert_optim_type all[] = { BERT_OPTIM_LAMB, BERT_OPTIM_ADAMW, BERT_OPTIM_ADAMW_GB, BERT_OPTIM_MOMENTUM };
    for (int i = 0; i < 4; i++) if (!strcmp(name, bert_optim_name(all[i]))) return all[i];
    die("--optimizer: '%s' is not one of adamw, adamw_gb, lamb, momentum", name);
    return BERT_OPTIM_ADAMW;
}

static void check_options(void) {
    if (!opt.do_train && !opt.do_eval && !opt.do_predict) die("nothing to do: give --do_train, --do_eval and/or --do_predict (--help lists the flags)");
    if (opt.max_seq_length < 3) die("--max_seq_length must be >= 3 (one character between [CLS] and [SEP])");
    if (opt.batch_size < 1 || opt.eval_batch_size < 1) die("--batch_size and --eval_batch_size must be >= 1");
    if (opt.steps < 0 || opt.epochs < 1) die("--steps must be >= 0 and --epochs >= 1");
    if (!(opt.lr > 0) || opt.keep < 1 || opt.print_every < 1) die("--lr > 0, --keep >= 1, --print_every >= 1 please");
    if (opt.save_every < 0 || opt.eval_every < 0) die("--save_every and --eval_every must be >= 0");
    if (opt.classifier_dropout >= 1) die("--classifier_dropout must be < 1");
    if (opt.oracle && opt.do_train) die("--oracle scores the gold tags: it does not go with --do_train");
}

static const char *data_path(char *buf, size_t n, const char *given, const char *name) {
    if (given) return given;
    snprintf(buf, n, "%s/%s", opt.data_dir, name);
    return buf;
}

static void print_eval(FILE *log, const char *what, uint64_t step, const summary *s, const dataset *d) {
    printf("eval  %6llu | %s F1 %.2f (P %.2f R %.2f) | macro F1 %.2f | %ld gold, %ld predicted, %ld correct\n",
           (unsigned long long)step, what, 100 * s->f1, 100 * s->p, 100 * s->r, 100 * s->macro_f1, s->gold, s->pred, s->correct);
    if (!log) return;
    fprintf(log, "{\"eval_step\": %llu, \"file\": \"%s\", \"f1\": %.6f, \"precision\": %.6f, \"recall\": %.6f, \"macro_f1\": %.6f, \"per_type_f1\": {",
            (unsigned long long)step, d->path, s->f1, s->p, s->r, s->macro_f1);
    for (int t = 0; t < ntypes; t++) fprintf(log, t ? ", \"%s\": %.6f" : "\"%s\": %.6f", type_names[t], s->type_f1[t]);
    fprintf(log, "}}\n");
    fflush(log);
}

// the training loop; returns 0 when done, 1 when it stopped on NaN/Inf, 2 after --debug_dump_grads,
// 130 when interrupted
static int train(bert_model *m, const head *h, bert_ctx *ctx, const dataset *tr, const windows *tw, const dataset *dev,
                 const windows *dw, FILE *log, double *t_eval) {
    size_t n = (size_t)tw->n;
    int per_epoch = (int)((n + (size_t)opt.batch_size - 1) / (size_t)opt.batch_size);   // the last batch may be short
    int total = opt.steps ? opt.steps : per_epoch * opt.epochs;
    bert_optim o = bert_optim_defaults(parse_optimizer(opt.optimizer));
    o.lr = opt.lr; o.total_steps = total;
    o.warmup_steps = opt.warmup_steps >= 0 ? opt.warmup_steps : (int)(opt.warmup_proportion * (float)total);
    o.weight_decay = opt.weight_decay; o.beta1 = opt.beta1; o.beta2 = opt.beta2; o.eps = opt.eps; o.clip_norm = opt.clip_norm;
    if (bert_optim_init(&o, m)) die("%s", bert_last_error());
    char fingerprint[256];
    snprintf(fingerprint, sizeof fingerprint, "%s: %zu windows of %d records, T %d, stride %d, %s%s, batch %d, seed %d",
             tr->path, n, tr->n, opt.max_seq_length, opt.doc_stride, opt.tagging, opt.use_crf ? " crf" : "", opt.batch_size, opt.seed);
    cursor_state cur = { 0, 0, 0, 0 };
    size_t *perm = (size_t *)xcalloc(n + 1, sizeof(size_t)), *idx = (size_t *)xcalloc((size_t)opt.batch_size, sizeof(size_t));
    if (opt.resume) resume(m, &o, &cur, fingerprint);
    permutation(perm, n, cur.epoch);
    printf("train: %s | %d records, %zu windows, %ld mentions (%ld overlapping ones untagged) | L=%d H=%d A=%d (%zu params) | %s%s, %d tags | "
           "%s lr %g warmup %d | batch %d | %d steps (%.2f epochs) | sgemm %s\n",
           tr->path, tr->n, n, tr->mentions, tr->overlaps, m->config.num_hidden_layers, m->config.hidden_size,
           m->config.num_attention_heads, m->num_params, opt.tagging, opt.use_crf ? " + CRF" : " + softmax", ntags, opt.optimizer,
           (double)o.lr, o.warmup_steps, opt.batch_size, total, (double)total / per_epoch, bert_sgemm_kernel_name());
    fflush(stdout);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);

    batch b;
    batch_alloc(&b, opt.batch_size, opt.max_seq_length);
    uint64_t first_step = o.step;
    double t_loop = bert_time_s(), t_compute = 0, loss_sum = 0;
    long tokens = 0, chars = 0;
    int loss_n = 0, bad_in_row = 0, rc = 0;
    while ((int)o.step < total) {
        double t0 = bert_time_s();
        int B = next_batch(idx, &cur, perm, n);
        batch_fill(&b, tr, tw, idx, B, vocab->cls_id, vocab->sep_id, vocab->pad_id);
        bert_ctx_reset(ctx, cur.micro++);
        bert_model_zero_grad(m);
        outputs out = forward(ctx, m, h, &b, 1);
        float lv = out.loss->data[0];
        int finite = isfinite(lv);
        if (finite) bert_backward(ctx, out.loss);
        if (opt.debug_dump_grads) {   // testing: the first step's grads, then stop without saving anything
            dump_grads(opt.debug_dump_grads, m, lv, &b);
            printf("wrote %s (loss %.9g)\n", opt.debug_dump_grads, (double)lv);
            rc = 2;
            break;
        }
        if (finite && bert_optim_step(&o, m) == BERT_ERR_NONFINITE) finite = 0;
        t_compute += bert_time_s() - t0;
        if (!finite) {
            cur.bad_steps++;
            fprintf(stderr, "ner: warning: NaN/Inf loss or gradients at step %llu: update skipped (%llu so far)\n",
                    (unsigned long long)o.step + 1, (unsigned long long)cur.bad_steps);
            fprintf(log, "{\"skipped_step\": %llu}\n", (unsigned long long)o.step + 1);
            if (++bad_in_row >= opt.max_bad_steps) { rc = 1; break; }
            continue;
        }
        bad_in_row = 0;
        uint64_t s = o.step;
        tokens += b.tokens;
        for (int e = 0; e < B; e++) chars += b.lengths[e];
        loss_sum += lv; loss_n++;
        fprintf(log, "{\"step\": %llu, \"epoch\": %llu, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"tokens\": %ld, \"time\": %.3f}\n",
                (unsigned long long)s, (unsigned long long)cur.epoch + 1, (double)lv, (double)o.last_lr, (double)o.last_grad_norm,
                (long)b.tokens, bert_time_s() - t_loop);
        if (s % (uint64_t)opt.print_every == 0 || (int)s == total || s == first_step + 1) {
            char eta[32];
            double per_step = (bert_time_s() - t_loop - *t_eval) / (double)(s - first_step);
            bert_format_duration(eta, sizeof eta, per_step * (double)((uint64_t)total - s));
            printf("step %6llu/%d | epoch %llu | loss %.4f | lr %.3e | |g| %.3f | %.0f tok/s | ETA %s\n", (unsigned long long)s, total,
                   (unsigned long long)cur.epoch + 1, loss_sum / loss_n, (double)o.last_lr, (double)o.last_grad_norm,
                   (double)tokens / t_compute, eta);
            fflush(stdout);
            fflush(log);
            loss_sum = 0; loss_n = 0;
        }
        if (dev && opt.eval_every && s % (uint64_t)opt.eval_every == 0 && (int)s != total) {
            double te = bert_time_s();
            summary sm = evaluate(ctx, m, h, dev, dw, NULL);
            *t_eval += bert_time_s() - te;
            print_eval(log, "dev", s, &sm, dev);
        }
        if (opt.save_every && s % (uint64_t)opt.save_every == 0 && (int)s != total) save_checkpoint(m, &o, &cur, fingerprint);
        if (interrupted || (opt.debug_stop_at_step && (int)s == opt.debug_stop_at_step)) { rc = 130; break; }
    }
    if (rc != 1 && rc != 2 && o.step > first_step) save_checkpoint(m, &o, &cur, fingerprint);
    final_step = o.step;
    printf("train: %llu steps (%llu this run, %llu skipped) | %.1f s compute, %.0f tok/s, %.0f characters/s | loop %.1f s\n",
           (unsigned long long)o.step, (unsigned long long)(o.step - first_step), (unsigned long long)cur.bad_steps, t_compute,
           t_compute > 0 ? (double)tokens / t_compute : 0.0, t_compute > 0 ? (double)chars / t_compute : 0.0, bert_time_s() - t_loop);
    free(b.ids); free(perm); free(idx);
    bert_optim_free(&o);
    return rc;
}

int main(int argc, char **argv) {
    double t_start = bert_time_s();
    int rc = bert_flags_parse(flags, NFLAGS, argc, argv);
    if (rc == 1) { usage(stdout); return 0; }
    if (rc) die("%s", bert_last_error());
    check_options();
    parse_types();
#ifdef _OPENMP
    if (opt.threads > 0) omp_set_num_threads(opt.threads);
#endif
    int W = opt.max_seq_length - 2, S = opt.doc_stride > 0 ? (opt.doc_stride < W ? opt.doc_stride : W) : (W / 2 > 0 ? W / 2 : 1);
    opt.doc_stride = S;
    bert_vocab *v = bert_vocab_load(opt.vocab);
    if (!v) die("%s", bert_last_error());
    vocab = v;
    if (v->cls_id < 0 || v->sep_id < 0 || v->pad_id < 0 || v->unk_id < 0) die("%s: needs [CLS], [SEP], [PAD] and [UNK]", opt.vocab);
    dropped_id = bert_vocab_id(v, "[unused1]", 9);
    if (dropped_id < 0) dropped_id = v->unk_id;
    char_cache = (int32_t *)xcalloc(0x110000, sizeof(int32_t));

    // data
    char p_train[4200], p_dev[4200], p_test[4200], path[4200];
    dataset tr = {0}, dev = {0}, test = {0};
    windows tw = {0}, dw = {0}, sw = {0};
    if (opt.do_train) { dataset_load(&tr, data_path(p_train, sizeof p_train, opt.train_file, "train.json"), 1); windows_make(&tw, &tr, W, S); }
    if (opt.do_eval) { dataset_load(&dev, data_path(p_dev, sizeof p_dev, opt.dev_file, "dev.json"), 1); windows_make(&dw, &dev, W, S); }
    if (opt.do_predict) { dataset_load(&test, data_path(p_test, sizeof p_test, opt.test_file, "test.json"), 0); windows_make(&sw, &test, W, S); }
    if (opt.do_train && tw.n == 0) die("%s: no training windows (no records with text)", tr.path);

    if (mkdir(opt.out, 0777) != 0 && errno != EEXIST) die("%s: %s", opt.out, strerror(errno));
    snprintf(path, sizeof path, "%s/log.jsonl", opt.out);
    FILE *log = opt.oracle ? NULL : fopen(path, opt.resume ? "a" : "w");
    if (!opt.oracle && !log) die("%s: %s", path, strerror(errno));

    // model (none for --oracle: the gold tags stand in for the predictions)
    bert_model *m = NULL;
    bert_ctx *ctx = NULL;
    head h = { NULL, NULL, NULL };
    if (!opt.oracle) {
        char mpath[4200];
        if (opt.model) snprintf(mpath, sizeof mpath, "%s", opt.model);
        else snprintf(mpath, sizeof mpath, "%s/model.safetensors", opt.out);
        m = make_model(&h, mpath);
        if (!(ctx = bert_ctx_create((size_t)64 << 20))) die("out of memory for the activation arena");
        ctx->seed = (uint64_t)opt.seed;
    }

    double t_eval = 0;
    int status = 0;
    if (opt.do_train) {
        status = train(m, &h, ctx, &tr, &tw, opt.do_eval ? &dev : NULL, &dw, log, &t_eval);
        if (status == 2) status = 3;   // grads dumped: nothing else to do, exit 0
        if (status == 0) {
            snprintf(path, sizeof path, "%s/model.safetensors", opt.out);
            if (bert_model_save(m, path)) die("saving %s", bert_last_error());
            snprintf(path, sizeof path, "%s/config.json", opt.out);
            write_hf_config(m, path);
            printf("model: %s/model.safetensors, %s/config.json\n", opt.out, opt.out);
        }
    }
    if (opt.do_eval && status == 0) {
        double te = bert_time_s();
        printf("dev: %s | %d records, %d windows, %ld mentions%s\n", dev.path, dev.n, dw.n, dev.mentions, opt.oracle ? " | oracle: gold tags" : "");
        summary s = evaluate(ctx, m, &h, &dev, &dw, stdout);
        t_eval += bert_time_s() - te;
        print_eval(log, opt.oracle ? "oracle" : "dev", final_step, &s, &dev);
        if (!opt.oracle) {
            snprintf(path, sizeof path, "%s/dev_results.json", opt.out);
            FILE *f = fopen(path, "w");
            if (!f) die("%s: %s", path, strerror(errno));
            fprintf(f, "{\"f1\": %.6f, \"precision\": %.6f, \"recall\": %.6f, \"macro_f1\": %.6f, \"gold\": %ld, \"pred\": %ld, \"correct\": %ld, \"per_type_f1\": {",
                    s.f1, s.p, s.r, s.macro_f1, s.gold, s.pred, s.correct);
            for (int t = 0; t < ntypes; t++) fprintf(f, t ? ", \"%s\": %.6f" : "\"%s\": %.6f", type_names[t], s.type_f1[t]);
            fprintf(f, "}}\n");
            fclose(f);
        }
    }
    if (opt.do_predict && status == 0) {
        if (opt.predict_file) snprintf(path, sizeof path, "%s", opt.predict_file);
        else snprintf(path, sizeof path, "%s/cluener_predict.json", opt.out);
        write_predictions(path, ctx, m, &h, &test, &sw);
    }
    double e2e = bert_time_s() - t_start;
    printf("summary: %s | e2e %.1f s | eval %.1f s | peak RSS %.0f MiB\n",
           status == 1 ? "stopped: too many NaN/Inf steps in a row" : status == 130 ? "interrupted" : "done", e2e, t_eval, bert_peak_rss_mib());
    if (log) {
        fprintf(log, "{\"summary\": \"%s\", \"e2e_s\": %.3f, \"eval_s\": %.3f, \"peak_rss_mib\": %.1f}\n",
                status == 1 ? "nan" : status == 130 ? "interrupted" : "done", e2e, t_eval, bert_peak_rss_mib());
        fclose(log);
    }
    windows_free(&tw); windows_free(&dw); windows_free(&sw);
    dataset_free(&tr); dataset_free(&dev); dataset_free(&test);
    bert_ctx_free(ctx);
    bert_model_free(m);
    bert_vocab_free(v);
    free(char_cache);
    if (status == 1) { fprintf(stderr, "ner: stopped: %d steps in a row had NaN/Inf loss or gradients\n", opt.max_bad_steps); return 1; }
    return status == 3 ? 0 : status;
}
