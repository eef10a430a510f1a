// demo.c - bert.h end to end in one file, in about two minutes on a laptop:
//   1. read a text (one sentence per line, blank lines between documents) and build a word vocab
//   2. make BERT pretraining instances the way google-research/bert's create_pretraining_data.py
//      does (simplified): sentence pairs for next-sentence prediction, 15% of tokens masked
//   3. pretrain a tiny BERT with LAMB, evaluating on held-out sentence pairs
//   4. save the model, load it back, check it evaluates identically
//   5. fine-tune it on a made-up acceptability task (real sentence vs the same words shuffled),
//      next to the same classifier trained from a random encoder
// Data: examples/data/sample_text.txt is sample_text.txt from google-research/bert (public-domain Gutenberg text).
//
//   cc -O2 -march=native -fopenmp -std=c11 examples/demo.c -o build/demo -lm && ./build/demo
//   ./build/demo -h     lists the flags
//
// The text is 31 sentences, so the numbers below show that the pipeline runs end to end; they
// say nothing about what BERT can do with real data.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#define BERT_IMPLEMENTATION
#include "../bert.h"

enum { PAD, UNK, CLS, SEP, MASK, NSPECIAL };   // special token ids; words follow, by frequency
static const char *const special_names[NSPECIAL] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };

// ----------------------------------------------------------------------------
// options

typedef struct {
    const char *input, *output;
    int T, MP, B, dupe, steps, eval_every, ft_steps, seed, threads;
    float lr, ft_lr;
} options;

static void usage(const options *d) {
    printf("usage: demo [flags]   pretrain a tiny BERT on a text, then fine-tune it\n"
           "  -i PATH  input text, one sentence per line, blank line between documents (%s)\n"
           "  -o PATH  where to save the pretrained model (%s)\n"
           "  -n INT   pretraining steps (%d)\n"
           "  -b INT   batch size (%d)\n"
           "  -t INT   max sequence length T (%d)\n"
           "  -d INT   dupe factor: passes over the text, each with fresh masks (%d)\n"
           "  -l NUM   pretraining peak learning rate, LAMB (%g)\n"
           "  -f INT   fine-tuning steps, for each of the two classifiers (%d)\n"
           "  -L NUM   fine-tuning peak learning rate, AdamW (%g)\n"
           "  -e INT   evaluate every this many pretraining steps (%d)\n"
           "  -s INT   random seed (%d)\n"
           "  -j INT   OpenMP threads; 0 = OpenMP's default, i.e. OMP_NUM_THREADS or all cores (%d)\n"
           "  -h       this help\n",
           d->input, d->output, d->steps, d->B, d->T, d->dupe, (double)d->lr, d->ft_steps, (double)d->ft_lr,
           d->eval_every, d->seed, d->threads);
}

static options parse_args(int argc, char **argv) {
    options o;
    o.input = "examples/data/sample_text.txt";
    o.output = "build/demo_model.safetensors";
    o.T = 64; o.MP = 10; o.B = 16; o.dupe = 20; o.steps = 1200; o.eval_every = 300;
    o.ft_steps = 250; o.seed = 42; o.lr = 5e-3f; o.ft_lr = 1e-3f;
    o.threads = 1;   // see main()
    options defaults = o;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { usage(&defaults); exit(0); }
        if (a[0] != '-' || strlen(a) != 2 || i + 1 >= argc) {
            fprintf(stderr, "demo: bad argument '%s' (try -h)\n", a);
            exit(1);
        }
        const char *v = argv[++i];
        switch (a[1]) {
        case 'i': o.input = v; break;
        case 'o': o.output = v; break;
        case 'n': o.steps = atoi(v); break;
        case 'b': o.B = atoi(v); break;
        case 't': o.T = atoi(v); break;
        case 'd': o.dupe = atoi(v); break;
        case 'l': o.lr = (float)atof(v); break;
        case 'f': o.ft_steps = atoi(v); break;
        case 'L': o.ft_lr = (float)atof(v); break;
        case 'e': o.eval_every = atoi(v); break;
        case 's': o.seed = atoi(v); break;
        case 'j': o.threads = atoi(v); break;
        default: fprintf(stderr, "demo: unknown flag '%s' (try -h)\n", a); exit(1);
        }
    }
    if (o.T < 8 || o.B < 1 || o.dupe < 1 || o.steps < 1 || o.ft_steps < 1 || o.eval_every < 1 || o.threads < 0 ||
        !(o.lr > 0) || !(o.ft_lr > 0)) {
        fprintf(stderr, "demo: need -t >= 8, positive -b -d -n -f -e, -j >= 0, and learning rates > 0\n");
        exit(1);
    }
    return o;
}

// ----------------------------------------------------------------------------
// small helpers

static void die(const char *what) {   // a library call failed: say what, and why
    fprintf(stderr, "demo: %s: %s\n", what, bert_last_error());
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "demo: out of memory\n"); exit(1); }
    return p;
}

static int32_t *grow_i32(int32_t *p, size_t n) {
    p = (int32_t *)realloc(p, (n ? n : 1) * sizeof(int32_t));
    if (!p) { fprintf(stderr, "demo: out of memory\n"); exit(1); }
    return p;
}

// every random choice comes from bert.h's counter-based RNG: (seed, purpose) names a stream
typedef struct { uint64_t stream, i; } rng;

static rng rng_make(int seed, uint64_t purpose) {
    rng r;
    r.stream = bert_rng_stream((uint64_t)seed, purpose, 0);
    r.i = 0;
    return r;
}
static float rng_uniform(rng *r) { return bert_rng_uniform(r->stream, r->i++); }
static int rng_int(rng *r, int n) {   // [0, n)
    int k = (int)(rng_uniform(r) * (float)n);
    return k < n ? k : n - 1;
}
static void shuffle(int *a, int n, rng *r) {   // Fisher-Yates
    for (int i = n - 1; i > 0; i--) { int j = rng_int(r, i + 1), t = a[i]; a[i] = a[j]; a[j] = t; }
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

// ----------------------------------------------------------------------------
// 1. text -> tokens -> ids

typedef struct { int start, len; } span;

typedef struct {
    char *pool;                  // token strings, NUL-separated
    const char **vocab; int V;   // id -> token
    int32_t *ids; int ntok;      // every token id, sentence after sentence
    span *sent; int nsent;       // sentence s is ids[sent[s].start ...]
    span *doc; int ndoc;         // document d is sentences doc[d].start ...
} corpus;

typedef struct { const char *word; int count, id; } vocab_entry;

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }
static int cmp_word(const void *a, const void *b) {
    return strcmp(((const vocab_entry *)a)->word, ((const vocab_entry *)b)->word);
}
static int cmp_freq(const void *a, const void *b) {   // most frequent first, ties alphabetical
    const vocab_entry *x = (const vocab_entry *)a, *y = (const vocab_entry *)b;
    return x->count != y->count ? y->count - x->count : strcmp(x->word, y->word);
}

static char *read_text(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "demo: cannot open '%s' (pass a text with -i PATH)\n", path); exit(1); }
    size_t cap = 1 << 16, n = 0, got;
    char *buf = (char *)xmalloc(cap + 1);
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) { cap *= 2; buf = (char *)realloc(buf, cap + 1); if (!buf) { fprintf(stderr, "demo: out of memory\n"); exit(1); } }
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) { fprintf(stderr, "demo: cannot read '%s'\n", path); exit(1); }
    buf[n] = 0;
    *size = n;
    return buf;
}

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }
static int is_alnum(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// Splits one line into tokens: lowercased ASCII words, single punctuation characters, and runs of
// non-ASCII bytes (a whole run is one token). Appends them to the pool; returns how many.
static int tokenize_line(const char *s, const char *end, char *pool, size_t *pool_used, const char **toks) {
    int n = 0;
    while (s < end) {
        unsigned char c = (unsigned char)*s;
        if (is_space(c) || c < 32) { s++; continue; }
        const char *t = s + 1;
        if (c >= 0x80) while (t < end && (unsigned char)*t >= 0x80) t++;
        else if (is_alnum(c)) while (t < end && is_alnum((unsigned char)*t)) t++;
        char *w = pool + *pool_used;
        for (size_t i = 0; i < (size_t)(t - s); i++) w[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
        w[t - s] = 0;
        *pool_used += (size_t)(t - s) + 1;
        toks[n++] = w;
        s = t;
    }
    return n;
}

// Builds the vocab: the specials, then every distinct token by frequency (ties alphabetical).
static void build_vocab(corpus *c, const char **toks) {
    const char **sorted = (const char **)xmalloc((size_t)c->ntok * sizeof *sorted);
    memcpy(sorted, toks, (size_t)c->ntok * sizeof *sorted);
    qsort(sorted, (size_t)c->ntok, sizeof *sorted, cmp_str);
    vocab_entry *alpha = (vocab_entry *)xmalloc((size_t)c->ntok * sizeof *alpha), *freq;
    int n = 0;
    for (int i = 0; i < c->ntok; i++) {
        if (n && strcmp(alpha[n - 1].word, sorted[i]) == 0) { alpha[n - 1].count++; continue; }
        alpha[n].word = sorted[i]; alpha[n].count = 1; alpha[n].id = n; n++;
    }
    freq = (vocab_entry *)xmalloc((size_t)n * sizeof *freq);
    memcpy(freq, alpha, (size_t)n * sizeof *freq);   // .id = alphabetical index for now
    qsort(freq, (size_t)n, sizeof *freq, cmp_freq);
    c->V = NSPECIAL + n;
    c->vocab = (const char **)xmalloc((size_t)c->V * sizeof *c->vocab);
    for (int i = 0; i < NSPECIAL; i++) c->vocab[i] = special_names[i];
    for (int r = 0; r < n; r++) { c->vocab[NSPECIAL + r] = freq[r].word; alpha[freq[r].id].id = NSPECIAL + r; }
    for (int i = 0; i < c->ntok; i++) {
        vocab_entry key;
        key.word = toks[i];
        const vocab_entry *e = (const vocab_entry *)bsearch(&key, alpha, (size_t)n, sizeof *alpha, cmp_word);
        c->ids[i] = e ? e->id : UNK;
    }
    free(sorted); free(alpha); free(freq);
}

static corpus load_corpus(const char *path) {
    size_t size;
    char *text = read_text(path, &size);
    corpus c;
    memset(&c, 0, sizeof c);
    int lines = 1;
    for (size_t i = 0; i < size; i++) lines += text[i] == '\n';
    // upper bounds: a token takes at least one byte, a sentence or document at least one line
    c.pool = (char *)xmalloc(2 * size + 1);
    const char **toks = (const char **)xmalloc((size + 1) * sizeof *toks);
    c.ids = (int32_t *)xmalloc((size + 1) * sizeof *c.ids);
    c.sent = (span *)xmalloc((size_t)lines * sizeof *c.sent);
    c.doc = (span *)xmalloc((size_t)lines * sizeof *c.doc);
    size_t pool_used = 0;
    const char *s = text, *end = text + size;
    while (s < end) {
        const char *eol = (const char *)memchr(s, '\n', (size_t)(end - s));
        if (!eol) eol = end;
        int n = tokenize_line(s, eol, c.pool, &pool_used, toks + c.ntok);
        if (n == 0) {   // a blank line ends the document
            if (c.ndoc && c.doc[c.ndoc - 1].len) { c.doc[c.ndoc].start = c.nsent; c.doc[c.ndoc++].len = 0; }
        } else {
            if (c.ndoc == 0) { c.doc[0].start = 0; c.doc[0].len = 0; c.ndoc = 1; }
            c.sent[c.nsent].start = c.ntok; c.sent[c.nsent].len = n; c.nsent++;
            c.doc[c.ndoc - 1].len++;
            c.ntok += n;
        }
        s = eol + 1;
    }
    if (c.ndoc && c.doc[c.ndoc - 1].len == 0) c.ndoc--;
    free(text);
    if (c.ntok == 0) { fprintf(stderr, "demo: '%s' has no text\n", path); exit(1); }
    build_vocab(&c, toks);
    free(toks);
    return c;
}

static void corpus_free(corpus *c) {
    free(c->pool); free(c->vocab); free(c->ids); free(c->sent); free(c->doc);
}

// ----------------------------------------------------------------------------
// 2. pretraining instances, as google-research/bert create_pretraining_data.py (simplified)

typedef struct {   // n rows of T tokens; also used for batches and for the fine-tuning sets
    int n, cap, T, MP;
    int32_t *ids, *types, *mask;   // (n,T) token ids, segment A/B = 0/1, 1 = real token
    int32_t *pos, *labels;         // (n,MP) masked positions and their original ids (-100 = unused)
    int32_t *label;                // (n) 1 = B is a random sentence (NSP), or the class label
    uint64_t *pair;                // (n) which sentence pair the row was made from
} dataset;

static dataset dataset_make(int T, int MP, int cap) {
    dataset d;
    memset(&d, 0, sizeof d);
    d.T = T; d.MP = MP;
    d.cap = cap > 0 ? cap : 16;
    d.ids = grow_i32(NULL, (size_t)d.cap * T); d.types = grow_i32(NULL, (size_t)d.cap * T);
    d.mask = grow_i32(NULL, (size_t)d.cap * T); d.pos = grow_i32(NULL, (size_t)d.cap * MP);
    d.labels = grow_i32(NULL, (size_t)d.cap * MP); d.label = grow_i32(NULL, (size_t)d.cap);
    d.pair = (uint64_t *)xmalloc((size_t)d.cap * sizeof *d.pair);
    return d;
}

static int dataset_add(dataset *d) {   // appends a zeroed row, returns its index
    if (d->n == d->cap) {
        d->cap *= 2;
        size_t r = (size_t)d->cap;
        d->ids = grow_i32(d->ids, r * d->T); d->types = grow_i32(d->types, r * d->T);
        d->mask = grow_i32(d->mask, r * d->T); d->pos = grow_i32(d->pos, r * d->MP);
        d->labels = grow_i32(d->labels, r * d->MP); d->label = grow_i32(d->label, r);
        d->pair = (uint64_t *)realloc(d->pair, r * sizeof *d->pair);
        if (!d->pair) { fprintf(stderr, "demo: out of memory\n"); exit(1); }
    }
    int i = d->n++;
    size_t T = (size_t)d->T, MP = (size_t)d->MP;
    memset(d->ids + i * T, 0, T * 4); memset(d->types + i * T, 0, T * 4); memset(d->mask + i * T, 0, T * 4);
    memset(d->pos + i * MP, 0, MP * 4);
    for (size_t j = 0; j < MP; j++) d->labels[i * MP + j] = -100;
    d->label[i] = 0;
    d->pair[i] = 0;
    return i;
}

static void dataset_copy_row(dataset *dst, int i, const dataset *src, int j) {
    size_t T = (size_t)src->T, MP = (size_t)src->MP;
    memcpy(dst->ids + i * T, src->ids + j * T, T * 4); memcpy(dst->types + i * T, src->types + j * T, T * 4);
    memcpy(dst->mask + i * T, src->mask + j * T, T * 4); memcpy(dst->pos + i * MP, src->pos + j * MP, MP * 4);
    memcpy(dst->labels + i * MP, src->labels + j * MP, MP * 4);
    dst->label[i] = src->label[j]; dst->pair[i] = src->pair[j];
}

static void dataset_free(dataset *d) {
    free(d->ids); free(d->types); free(d->mask); free(d->pos); free(d->labels); free(d->label); free(d->pair);
}

static bert_batch batch_view(const dataset *d, int first, int count) {   // rows [first, first+count)
    bert_batch b;
    b.B = count; b.T = d->T; b.MP = d->MP;
    b.input_ids = d->ids + (size_t)first * d->T;
    b.token_type_ids = d->types + (size_t)first * d->T;
    b.attention_mask = d->mask + (size_t)first * d->T;
    b.masked_lm_positions = d->MP ? d->pos + (size_t)first * d->MP : NULL;
    b.masked_lm_ids = d->MP ? d->labels + (size_t)first * d->MP : NULL;
    b.next_sentence_label = d->label + first;
    return b;
}

// create_masked_lm_predictions: 15% of the non-special tokens (at most MP) become predictions;
// of those 80% are replaced by [MASK], 10% by a random word, 10% kept.
static void mask_tokens(int32_t *ids, int n, int V, int MP, rng *r, int32_t *pos, int32_t *labels) {
    int cand[1024], nc = 0;
    for (int i = 0; i < n && nc < 1024; i++) if (ids[i] >= NSPECIAL) cand[nc++] = i;
    shuffle(cand, nc, r);
    int npred = (int)lroundf(0.15f * (float)nc);
    if (npred < 1) npred = 1;
    if (npred > MP) npred = MP;
    if (npred > nc) npred = nc;
    for (int k = 1; k < npred; k++)   // predictions in position order, like the original
        for (int j = k; j > 0 && cand[j - 1] > cand[j]; j--) { int t = cand[j]; cand[j] = cand[j - 1]; cand[j - 1] = t; }
    for (int k = 0; k < npred; k++) {
        int p = cand[k];
        pos[k] = p;
        labels[k] = ids[p];
        float u = rng_uniform(r);
        if (u < 0.8f) ids[p] = MASK;
        else if (u >= 0.9f) ids[p] = NSPECIAL + rng_int(r, V - NSPECIAL);
    }
}

// [CLS] A [SEP] B [SEP], padded to T, masked
static void add_instance(dataset *d, const int32_t *a, int na, const int32_t *b, int nb, int is_random,
                         uint64_t pair, int V, rng *r) {
    int i = dataset_add(d), n = 0;
    int32_t *ids = d->ids + (size_t)i * d->T, *types = d->types + (size_t)i * d->T;
    ids[n++] = CLS;
    for (int k = 0; k < na; k++) ids[n++] = a[k];
    ids[n++] = SEP;
    for (int k = 0; k < nb; k++) { types[n] = 1; ids[n++] = b[k]; }
    types[n] = 1; ids[n++] = SEP;
    for (int k = 0; k < n; k++) d->mask[(size_t)i * d->T + k] = 1;
    mask_tokens(ids, n, V, d->MP, r, d->pos + (size_t)i * d->MP, d->labels + (size_t)i * d->MP);
    d->label[i] = is_random;
    d->pair[i] = pair;
}

// truncate_seq_pair: trim the longer segment, from the front or the back at random
static void truncate_pair(const int32_t **a, int *na, const int32_t **b, int *nb, int max_tokens, rng *r) {
    while (*na + *nb > max_tokens) {
        const int32_t **s = *na > *nb ? a : b;
        int *ns = *na > *nb ? na : nb;
        if (rng_uniform(r) < 0.5f) (*s)++;
        (*ns)--;
    }
}

static int concat(const corpus *c, int first, int last, int32_t *out) {   // sentences [first, last]
    int n = 0;
    for (int s = first; s <= last; s++) {
        memcpy(out + n, c->ids + c->sent[s].start, (size_t)c->sent[s].len * sizeof *out);
        n += c->sent[s].len;
    }
    return n;
}

// create_instances_from_document: gather sentences into a chunk until it reaches a target length,
// split the chunk at a random sentence boundary into A | B, and half the time replace B by text
// from a random other document (label 1). Differences: a one-sentence chunk that draws "actual
// next" takes the following sentence as B, so the labels stay close to 50/50.
static void instances_from_document(const corpus *c, int d, int T, rng *r, int32_t *bufa, int32_t *bufb,
                                    dataset *out) {
    int max_tokens = T - 3, target = max_tokens;
    if (rng_uniform(r) < 0.1f) target = 2 + rng_int(r, max_tokens - 1);   // short_seq_prob
    int first = c->doc[d].start, end = first + c->doc[d].len, chunk = first, chunk_tokens = 0;
    for (int i = first; i < end; i++) {
        chunk_tokens += c->sent[i].len;
        if (i < end - 1 && chunk_tokens < target) continue;
        int nchunk = i - chunk + 1, a_end = nchunk >= 2 ? 1 + rng_int(r, nchunk - 1) : 1;
        int is_random = rng_uniform(r) < 0.5f, b_first;
        if (!is_random && nchunk == 1) {
            if (i + 1 < end) i++;
            else is_random = 1;
        }
        int na = concat(c, chunk, chunk + a_end - 1, bufa), nb = 0;
        if (is_random) {   // B from another document, from a random sentence on (same one if only one)
            int rd = c->ndoc > 1 ? rng_int(r, c->ndoc - 1) : d;
            if (c->ndoc > 1 && rd >= d) rd++;
            b_first = c->doc[rd].start + rng_int(r, c->doc[rd].len);
            for (int s = b_first; s < c->doc[rd].start + c->doc[rd].len; s++) {   // at least one sentence
                nb += concat(c, s, s, bufb + nb);
                if (nb >= target - na) break;
            }
            i = chunk + a_end - 1;   // the unused sentences of the chunk start the next one
        } else {
            b_first = chunk + a_end;
            nb = concat(c, b_first, i, bufb);
        }
        const int32_t *a = bufa, *b = bufb;
        truncate_pair(&a, &na, &b, &nb, max_tokens, r);
        if (na > 0 && nb > 0)
            add_instance(out, a, na, b, nb, is_random, ((uint64_t)chunk << 32 | (uint64_t)b_first) << 1 | (uint64_t)is_random, c->V, r);
        chunk = i + 1;
        chunk_tokens = 0;
    }
}

typedef struct { uint64_t pair; float u; } pair_draw;
static int cmp_pair(const void *a, const void *b) {
    uint64_t x = ((const pair_draw *)a)->pair, y = ((const pair_draw *)b)->pair;
    return x < y ? -1 : x > y;
}
static int cmp_draw(const void *a, const void *b) {
    float x = ((const pair_draw *)a)->u, y = ((const pair_draw *)b)->u;
    return x < y ? -1 : x > y;
}

// dupe passes over every document, then 10% of the distinct sentence pairs of each label go to eval
// with all their instances, so no held-out pair is ever trained on (its sentences are, in other pairs)
static void make_pretraining_data(const corpus *c, const options *o, dataset *train, dataset *eval) {
    dataset all = dataset_make(o->T, o->MP, 256);
    int32_t *bufa = grow_i32(NULL, (size_t)c->ntok), *bufb = grow_i32(NULL, (size_t)c->ntok);
    rng r = rng_make(o->seed, 0xDA7Au);
    for (int pass = 0; pass < o->dupe; pass++)
        for (int d = 0; d < c->ndoc; d++) instances_from_document(c, d, o->T, &r, bufa, bufb, &all);
    pair_draw *pd = (pair_draw *)xmalloc((size_t)all.n * sizeof *pd), *held = (pair_draw *)xmalloc((size_t)all.n * sizeof *held);
    int nheld = 0;
    for (int label = 0; label < 2; label++) {
        int n = 0, u = 0;
        for (int i = 0; i < all.n; i++) if (all.label[i] == label) pd[n++].pair = all.pair[i];
        qsort(pd, (size_t)n, sizeof *pd, cmp_pair);
        for (int i = 0; i < n; i++) if (!u || pd[i].pair != pd[u - 1].pair) pd[u++] = pd[i];   // distinct pairs
        for (int i = 0; i < u; i++) pd[i].u = bert_rng_uniform(r.stream, pd[i].pair);
        qsort(pd, (size_t)u, sizeof *pd, cmp_draw);   // a random order of the pairs
        for (int i = 0; i < (u + 5) / 10; i++) held[nheld++] = pd[i];
    }
    qsort(held, (size_t)nheld, sizeof *held, cmp_pair);
    *train = dataset_make(o->T, o->MP, all.n);
    *eval = dataset_make(o->T, o->MP, nheld);
    for (int i = 0; i < all.n; i++) {
        pair_draw key;
        key.pair = all.pair[i];
        dataset *d = bsearch(&key, held, (size_t)nheld, sizeof *held, cmp_pair) ? eval : train;
        dataset_copy_row(d, dataset_add(d), &all, i);
    }
    free(pd); free(held); free(bufa); free(bufb);
    dataset_free(&all);
}

static void print_instance(const corpus *c, const dataset *d, int i) {
    const int32_t *ids = d->ids + (size_t)i * d->T, *pos = d->pos + (size_t)i * d->MP, *lab = d->labels + (size_t)i * d->MP;
    printf("example instance (is_random_next=%d):\n ", d->label[i]);
    for (int t = 0, k = 0; t < d->T && d->mask[(size_t)i * d->T + t]; t++) {
        printf(" %s", c->vocab[ids[t]]);
        if (k < d->MP && pos[k] == t && lab[k] != -100) printf("(%s)", c->vocab[lab[k++]]);
    }
    printf("\n  (a word in parentheses is the masked_lm label at that position)\n");
}

// ----------------------------------------------------------------------------
// 3. pretraining

typedef struct { double loss, mlm_acc, nsp_acc; int mlm_n, nsp_n; } metrics;

static void count_correct(const bert_tensor *logits, const int32_t *labels, int *correct, int *total) {
    int N = logits->shape[0], V = logits->shape[1];
    for (int n = 0; n < N; n++) {
        if (labels[n] == -100) continue;
        *correct += argmax(logits->data + (size_t)n * V, V) == labels[n];
        (*total)++;
    }
}

static metrics batch_metrics(const bert_pretrain_out *o, const bert_batch *b) {
    metrics m;
    int mc = 0, nc = 0;
    m.mlm_n = m.nsp_n = 0;
    count_correct(o->mlm_logits, b->masked_lm_ids, &mc, &m.mlm_n);
    count_correct(o->nsp_logits, b->next_sentence_label, &nc, &m.nsp_n);
    m.loss = o->loss->data[0];
    m.mlm_acc = m.mlm_n ? (double)mc / m.mlm_n : 0.0;
    m.nsp_acc = m.nsp_n ? (double)nc / m.nsp_n : 0.0;
    return m;
}

// Loss and accuracies over a whole dataset, dropout off, nothing recorded for backward.
static metrics pretrain_eval(bert_ctx *ctx, bert_model *m, const dataset *d, int B) {
    double mlm_loss = 0.0, nsp_loss = 0.0, mlm_ok = 0.0, nsp_ok = 0.0;
    metrics r;
    memset(&r, 0, sizeof r);
    ctx->training = 0; ctx->grad_enabled = 0;
    for (int i = 0; i < d->n; i += B) {
        bert_batch b = batch_view(d, i, d->n - i < B ? d->n - i : B);
        bert_ctx_reset(ctx, 0);
        bert_pretrain_out o = bert_pretrain_forward(ctx, m, &b);
        metrics bm = batch_metrics(&o, &b);
        mlm_loss += o.mlm_loss->data[0] * bm.mlm_n; mlm_ok += bm.mlm_acc * bm.mlm_n; r.mlm_n += bm.mlm_n;
        nsp_loss += o.nsp_loss->data[0] * bm.nsp_n; nsp_ok += bm.nsp_acc * bm.nsp_n; r.nsp_n += bm.nsp_n;
    }
    ctx->training = 1; ctx->grad_enabled = 1;
    if (r.mlm_n) { mlm_loss /= r.mlm_n; r.mlm_acc = mlm_ok / r.mlm_n; }
    if (r.nsp_n) { nsp_loss /= r.nsp_n; r.nsp_acc = nsp_ok / r.nsp_n; }
    r.loss = mlm_loss + nsp_loss;
    return r;
}

// Fills `batch` with B rows drawn without replacement from a shuffled order of d (reshuffled per epoch).
static void next_batch(const dataset *d, int *order, int *cursor, rng *r, dataset *batch) {
    for (int b = 0; b < batch->n; b++) {
        if (*cursor == 0) shuffle(order, d->n, r);
        dataset_copy_row(batch, b, d, order[*cursor]);
        *cursor = (*cursor + 1) % d->n;
    }
}

static void print_eval(const char *when, int step, const metrics *e) {
    printf("%s %5d | eval loss %.4f | mlm acc %5.1f%% (%d masked) | nsp acc %5.1f%% (%d pairs)\n", when, step,
           e->loss, 100 * e->mlm_acc, e->mlm_n, 100 * e->nsp_acc, e->nsp_n);
}

static metrics pretrain(bert_ctx *ctx, bert_model *m, const dataset *train, const dataset *eval, const options *o,
                        double *seconds) {
    bert_optim opt = bert_optim_defaults(BERT_OPTIM_LAMB);
    opt.lr = o->lr;
    opt.warmup_steps = o->steps / 10;
    opt.total_steps = o->steps;
    if (bert_optim_init(&opt, m) != BERT_OK) die("bert_optim_init");
    dataset batch = dataset_make(o->T, o->MP, o->B);
    for (int b = 0; b < o->B; b++) dataset_add(&batch);
    int *order = (int *)xmalloc((size_t)train->n * sizeof *order), cursor = 0;
    for (int i = 0; i < train->n; i++) order[i] = i;
    rng r = rng_make(o->seed, 0xBA7Cu);
    metrics e;
    memset(&e, 0, sizeof e);
    double t0 = bert_time_s(), t_last = t0, train_time = 0.0;
    int last_step = 0;
    for (int step = 1; step <= o->steps; step++) {
        next_batch(train, order, &cursor, &r, &batch);
        bert_batch b = batch_view(&batch, 0, o->B);
        bert_ctx_reset(ctx, (uint64_t)step);
        bert_model_zero_grad(m);
        bert_pretrain_out out = bert_pretrain_forward(ctx, m, &b);
        bert_backward(ctx, out.loss);
        bert_optim_step(&opt, m);
        if (step % 20 == 0 || step == 1 || step == o->steps) {
            metrics bm = batch_metrics(&out, &b);
            double t = bert_time_s(), dt = t - t_last;
            train_time += dt;
            double tok_s = (double)(step - last_step) * o->B * o->T / dt;
            double eta = train_time / step * (o->steps - step);
            printf("step %4d/%d | loss %.4f | mlm acc %5.1f%% | nsp acc %5.1f%% | lr %.2e | grad norm %6.3f | %5.1fk tok/s | eta %3.0fs\n",
                   step, o->steps, bm.loss, 100 * bm.mlm_acc, 100 * bm.nsp_acc, (double)opt.last_lr,
                   (double)opt.last_grad_norm, tok_s / 1000, eta);
            fflush(stdout);
            t_last = bert_time_s();
            last_step = step;
        }
        if (step % o->eval_every == 0 || step == o->steps) {
            double te = bert_time_s();
            train_time += te - t_last;
            e = pretrain_eval(ctx, m, eval, o->B);
            print_eval("eval @ step", step, &e);
            t_last = bert_time_s();
        }
    }
    *seconds = bert_time_s() - t0;
    free(order);
    dataset_free(&batch);
    bert_optim_free(&opt);
    return e;
}

// ----------------------------------------------------------------------------
// 5. fine-tuning: real sentence (1) vs the same tokens shuffled (0)

typedef struct {   // classifier on the pooled output: logits = W dropout(pooled) + b
    bert_tensor w, b;
    float *buf;        // data | grad | Adam m | Adam v, each n floats (w then b)
    size_t n;
} cls_head;

static cls_head head_make(int C, int seed) {
    cls_head h;
    memset(&h, 0, sizeof h);
    h.n = (size_t)2 * C + 2;
    h.buf = (float *)xmalloc(4 * h.n * sizeof(float));
    memset(h.buf, 0, 4 * h.n * sizeof(float));
    h.w.ndim = 2; h.w.shape[0] = 2; h.w.shape[1] = C; h.w.numel = (size_t)2 * C;
    h.b.ndim = 1; h.b.shape[0] = 2; h.b.numel = 2;
    h.w.flags = h.b.flags = BERT_TENSOR_PARAM | BERT_TENSOR_REQUIRES_GRAD;
    h.w.data = h.buf; h.b.data = h.buf + 2 * C;
    h.w.grad = h.buf + h.n; h.b.grad = h.buf + h.n + 2 * C;
    rng r = rng_make(seed, 0x4EADu);
    for (int i = 0; i < 2 * C; i++) {   // normal(0, 0.02) by Box-Muller, clipped at 2 std like the encoder
        float u1 = rng_uniform(&r) + 1e-7f, u2 = rng_uniform(&r);
        float z = sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
        h.w.data[i] = 0.02f * (z > 2.0f ? 2.0f : z < -2.0f ? -2.0f : z);
    }
    return h;
}

// AdamW with bias correction, the same rule bert_optim uses for BERT_OPTIM_ADAMW (bias: no decay);
// bert_optim only updates the model's own flat buffer, so the head gets these few lines.
static void head_step(cls_head *h, float lr, int t) {
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-6f, wd = 0.01f;
    float *p = h->buf, *g = p + h->n, *m = g + h->n, *v = m + h->n;
    float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
    for (size_t i = 0; i < h->n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        p[i] -= lr * ((m[i] / bc1) / (sqrtf(v[i] / bc2) + eps) + (i < h->w.numel ? wd * p[i] : 0.0f));
    }
}

// [CLS] sentence [SEP] as row i of d; label 0 shuffles the tokens with Sattolo's algorithm (a random
// cyclic permutation: no token keeps its place), redrawn if repeated tokens make it read the same.
static void cls_example(const corpus *c, int s, int label, rng *r, dataset *d, int i) {
    int n = c->sent[s].len < d->T - 2 ? c->sent[s].len : d->T - 2;
    const int32_t *src = c->ids + c->sent[s].start;
    int32_t *ids = d->ids + (size_t)i * d->T;
    memset(ids, 0, (size_t)d->T * 4); memset(d->mask + (size_t)i * d->T, 0, (size_t)d->T * 4);
    memset(d->types + (size_t)i * d->T, 0, (size_t)d->T * 4);
    ids[0] = CLS;
    memcpy(ids + 1, src, (size_t)n * 4);
    for (int tries = 0; label == 0 && tries < 10; tries++) {
        memcpy(ids + 1, src, (size_t)n * 4);
        for (int k = n - 1; k > 0; k--) { int j = rng_int(r, k), t = ids[1 + k]; ids[1 + k] = ids[1 + j]; ids[1 + j] = t; }
        if (memcmp(ids + 1, src, (size_t)n * 4) != 0) break;
    }
    ids[n + 1] = SEP;
    for (int k = 0; k < n + 2; k++) d->mask[(size_t)i * d->T + k] = 1;
    d->label[i] = label;
}

// logits (B,2) for rows [first, first+B) of d, and the mean loss into *loss unless loss is NULL
static bert_tensor *cls_forward(bert_ctx *ctx, bert_model *m, cls_head *h, const dataset *d, int first, int B,
                                bert_tensor **loss) {
    size_t off = (size_t)first * d->T;
    bert_tensor *seq = bert_encode(ctx, m, d->ids + off, d->types + off, d->mask + off, B, d->T);
    bert_tensor *x = bert_dropout(ctx, bert_pool(ctx, m, seq), m->config.hidden_dropout_prob);
    bert_tensor *logits = bert_linear(ctx, x, &h->w, &h->b);
    if (loss) *loss = bert_softmax_xent(ctx, logits, d->label + first, -100);
    return logits;
}

static double cls_eval(bert_ctx *ctx, bert_model *m, cls_head *h, const dataset *d, int B) {
    int ok = 0, total = 0;
    ctx->training = 0; ctx->grad_enabled = 0;
    for (int i = 0; i < d->n; i += B) {
        int nb = d->n - i < B ? d->n - i : B;
        bert_ctx_reset(ctx, 0);
        count_correct(cls_forward(ctx, m, h, d, i, nb, NULL), d->label + i, &ok, &total);
    }
    ctx->training = 1; ctx->grad_enabled = 1;
    return total ? (double)ok / total : 0.0;
}

// Trains encoder + head jointly for o->ft_steps; every batch is fresh: random training sentences,
// half of them shuffled. Returns the accuracy on the held-out set.
static double finetune(const char *name, bert_ctx *ctx, bert_model *m, const corpus *c, const int *sents, int nsents,
                       const dataset *eval, const options *o) {
    bert_optim opt = bert_optim_defaults(BERT_OPTIM_ADAMW);
    opt.lr = o->ft_lr;
    opt.warmup_steps = o->ft_steps / 10;
    opt.total_steps = o->ft_steps;
    if (bert_optim_init(&opt, m) != BERT_OK) die("bert_optim_init");
    cls_head h = head_make(m->config.hidden_size, o->seed);
    dataset batch = dataset_make(o->T, 0, o->B);
    for (int b = 0; b < o->B; b++) dataset_add(&batch);
    rng r = rng_make(o->seed, 0xF17Eu);   // same batches for both runs
    double loss_sum = 0.0;
    int ok = 0, total = 0, since = 0;   // since the last progress line
    for (int step = 1; step <= o->ft_steps; step++) {
        for (int b = 0; b < o->B; b++) {
            int s = sents[rng_int(&r, nsents)];
            cls_example(c, s, rng_uniform(&r) < 0.5f, &r, &batch, b);
        }
        bert_ctx_reset(ctx, (uint64_t)step);
        bert_model_zero_grad(m);
        memset(h.buf + h.n, 0, h.n * sizeof(float));
        bert_tensor *loss;
        bert_tensor *logits = cls_forward(ctx, m, &h, &batch, 0, o->B, &loss);
        bert_backward(ctx, loss);
        bert_optim_step(&opt, m);
        head_step(&h, opt.last_lr, step);
        loss_sum += loss->data[0];
        since++;
        count_correct(logits, batch.label, &ok, &total);
        if (step % ((o->ft_steps + 3) / 4) == 0 || step == o->ft_steps) {
            printf("  %-13s step %4d/%d | train loss %.4f | train acc %5.1f%% | held-out acc %5.1f%%\n", name, step,
                   o->ft_steps, loss_sum / since, 100.0 * ok / total, 100 * cls_eval(ctx, m, &h, eval, o->B));
            fflush(stdout);
            loss_sum = 0.0; ok = total = since = 0;
        }
    }
    double acc = cls_eval(ctx, m, &h, eval, o->B);
    free(h.buf);
    dataset_free(&batch);
    bert_optim_free(&opt);
    return acc;
}

// ----------------------------------------------------------------------------
// main

int main(int argc, char **argv) {
    options o = parse_args(argc, argv);
    double t_start = bert_time_s();
    // One thread by default: a model this small runs hundreds of tiny parallel loops per step, and
    // on a machine whose cores are busy with other work, OpenMP threads spin waiting for each other:
    // we measured 2 threads 20x slower than 1 on a shared 2-core box (and 1.7x faster on an idle one).
    int threads = 1;
#ifdef _OPENMP
    if (o.threads > 0) omp_set_num_threads(o.threads);
    threads = omp_get_max_threads();
#endif

    // 1. data
    corpus c = load_corpus(o.input);
    printf("data:   %s: %d sentences in %d documents, %d tokens\n", o.input, c.nsent, c.ndoc, c.ntok);
    printf("vocab:  %d (5 special + %d words); most frequent:", c.V, c.V - NSPECIAL);
    for (int i = NSPECIAL; i < c.V && i < NSPECIAL + 10; i++) printf(" %s", c.vocab[i]);
    printf("\n");

    // 2. pretraining instances
    dataset train, eval;
    make_pretraining_data(&c, &o, &train, &eval);
    if (train.n == 0 || eval.n == 0) {
        fprintf(stderr, "demo: '%s' is too short to make training and held-out instances\n", o.input);
        return 1;
    }
    int nsp_random = 0, train_random = 0;
    for (int i = 0; i < eval.n; i++) nsp_random += eval.label[i];
    for (int i = 0; i < train.n; i++) train_random += train.label[i];
    printf("instances: %d train / %d eval (dupe factor %d; eval = 10%% of the sentence pairs); B is random in %.0f%% / %.0f%%\n",
           train.n, eval.n, o.dupe, 100.0 * train_random / train.n, 100.0 * nsp_random / eval.n);
    print_instance(&c, &train, 0);

    // trivial baselines on the eval set: always the most frequent masked word; NSP by chance
    int *label_count = (int *)xmalloc((size_t)c.V * sizeof(int)), top = NSPECIAL, hits = 0, n_masked = 0;
    memset(label_count, 0, (size_t)c.V * sizeof(int));
    for (int i = 0; i < train.n * train.MP; i++) if (train.labels[i] != -100) label_count[train.labels[i]]++;
    for (int v = 0; v < c.V; v++) if (label_count[v] > label_count[top]) top = v;
    for (int i = 0; i < eval.n * eval.MP; i++) if (eval.labels[i] != -100) { hits += eval.labels[i] == top; n_masked++; }
    double mlm_base = n_masked ? (double)hits / n_masked : 0.0;
    double nsp_major = (double)(nsp_random > eval.n - nsp_random ? nsp_random : eval.n - nsp_random) / eval.n;
    free(label_count);

    // 3. model
    bert_config cfg = bert_config_default();
    cfg.vocab_size = c.V; cfg.hidden_size = 64; cfg.num_hidden_layers = 2; cfg.num_attention_heads = 4;
    cfg.intermediate_size = 256; cfg.max_position_embeddings = o.T;
    bert_model *m = bert_model_create(&cfg, (uint64_t)o.seed);
    if (!m) die("bert_model_create");
    bert_ctx *ctx = bert_ctx_create(16u << 20);
    if (!ctx) { fprintf(stderr, "demo: bert_ctx_create: out of memory\n"); return 1; }
    ctx->seed = (uint64_t)o.seed;
    printf("\nmodel:  BERT L=%d C=%d NH=%d F=%d P=%d V=%d, dropout %.1f: %zu parameters (%.2f MB fp32)\n",
           cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size,
           cfg.max_position_embeddings, cfg.vocab_size, (double)cfg.hidden_dropout_prob, m->num_params,
           m->num_params * 4.0 / 1e6);
    printf("train:  %d steps, batch %d x T=%d, LAMB lr %g (warmup %d, linear decay), seed %d, %d thread%s\n\n",
           o.steps, o.B, o.T, (double)o.lr, o.steps / 10, o.seed, threads, threads == 1 ? "" : "s");

    double pretrain_s;
    metrics e = pretrain(ctx, m, &train, &eval, &o, &pretrain_s);
    printf("baselines: mlm acc %.1f%% (always '%s'), nsp acc 50%% (chance; majority class %.1f%%)\n",
           100 * mlm_base, c.vocab[top], 100 * nsp_major);

    // 4. checkpoint round trip
    if (bert_model_save(m, o.output) != BERT_OK) die("bert_model_save");
    bert_model *m2 = bert_model_load(o.output, NULL);
    if (!m2) die("bert_model_load");
    metrics e2 = pretrain_eval(ctx, m2, &eval, o.B);
    if (e2.loss != e.loss || e2.mlm_acc != e.mlm_acc || e2.nsp_acc != e.nsp_acc) {
        fprintf(stderr, "demo: checkpoint round trip: eval loss %.9g after reload, %.9g before\n", e2.loss, e.loss);
        return 1;
    }
    printf("saved %s; checkpoint round trip: ok (eval loss %.6f both times)\n", o.output, e2.loss);
    bert_model_free(m);

    // 5. fine-tuning: sentences of 4+ tokens, 20% held out (each: real + shuffled)
    int *sents = (int *)xmalloc((size_t)c.nsent * sizeof(int)), ns = 0;
    for (int s = 0; s < c.nsent; s++) if (c.sent[s].len >= 4) sents[ns++] = s;
    rng r = rng_make(o.seed, 0xC01Au);
    shuffle(sents, ns, &r);
    int n_heldout = (ns + 2) / 5;
    if (n_heldout < 1 || ns - n_heldout < 1) { fprintf(stderr, "demo: too few sentences to fine-tune\n"); return 1; }
    dataset ft_eval = dataset_make(o.T, 0, 2 * n_heldout);
    for (int k = 0; k < n_heldout; k++)
        for (int label = 1; label >= 0; label--) cls_example(&c, sents[k], label, &r, &ft_eval, dataset_add(&ft_eval));
    printf("\nfine-tune: is this a real sentence, or its tokens shuffled? %d training sentences, %d held-out examples\n",
           ns - n_heldout, ft_eval.n);
    double acc_pre = finetune("[pretrained]", ctx, m2, &c, sents + n_heldout, ns - n_heldout, &ft_eval, &o);
    bert_model *scratch = bert_model_create(&cfg, (uint64_t)o.seed + 1);
    if (!scratch) die("bert_model_create");
    double acc_scratch = finetune("[from scratch]", ctx, scratch, &c, sents + n_heldout, ns - n_heldout, &ft_eval, &o);

    // 6. summary
    printf("\n==================================== summary ====================================\n");
    printf("data         %d sentences, %d documents, vocab %d, instances %d train / %d eval\n", c.nsent, c.ndoc, c.V,
           train.n, eval.n);
    printf("model        BERT L=%d C=%d NH=%d F=%d, %zu parameters\n", cfg.num_hidden_layers, cfg.hidden_size,
           cfg.num_attention_heads, cfg.intermediate_size, m2->num_params);
    printf("pretraining  %d steps in %.1fs, held-out eval:\n", o.steps, pretrain_s);
    printf("             MLM acc %.1f%% (baseline: always '%s' %.1f%%)\n", 100 * e.mlm_acc, c.vocab[top], 100 * mlm_base);
    printf("             NSP acc %.1f%% (baseline: chance 50%%, majority class %.1f%%)\n", 100 * e.nsp_acc, 100 * nsp_major);
    printf("fine-tuning  real vs shuffled sentence, %d steps each, %d held-out examples:\n", o.ft_steps, ft_eval.n);
    printf("             pretrained %.1f%% vs from scratch %.1f%% (chance 50%%)\n", 100 * acc_pre, 100 * acc_scratch);
    printf("checkpoint   %s (round trip ok)\n", o.output);
    printf("total time   %.1fs\n", bert_time_s() - t_start);
    printf("(%d sentences is far too little text for these numbers to mean much: this run shows the pipeline.)\n", c.nsent);

    bert_model_free(m2); bert_model_free(scratch); bert_ctx_free(ctx);
    dataset_free(&train); dataset_free(&eval); dataset_free(&ft_eval);
    free(sents);
    corpus_free(&c);
    return 0;
}
