// test_io.c - bert.h's file formats: model and optimizer checkpoints, the safetensors reader and
// writer, config parsing and the JSON reader. Good files must round-trip exactly; every bad file
// must give an error code and a message naming the file (and the tensor), never a crash or a
// leak (`make SAN=1` runs this under ASan + UBSan + LeakSanitizer). Temporary files live in
// /tmp/bert_test_io_XXXXXX and are removed at the end.
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "check.h"

#ifdef _WIN32   // no mkdtemp there: _mktemp_s picks the name, _mkdir fails if someone took it meanwhile
#include <direct.h>
#include <io.h>
static char *mkdtemp(char *t) { return _mktemp_s(t, strlen(t) + 1) == 0 && _mkdir(t) == 0 ? t : NULL; }
static int remove_any(const char *p) { return remove(p) == 0 || _rmdir(p) == 0 ? 0 : -1; }   // remove() takes no directory
#define TMP_ROOT (getenv("TEMP") ? getenv("TEMP") : ".")
#else
char *mkdtemp(char *);   // POSIX, hidden by -std=c11
#define TMP_ROOT "/tmp"
#define remove_any remove   // a file or an empty directory
#endif

// ----------------------------------------------------------------------------
// temporary files: every path is registered so cleanup can remove it and then check that the
// directory is empty (a stray PATH.tmp left by a failed save would make that check fail)

enum { MAX_TMP = 64 };
static char g_dir[128];
static char g_tmp[MAX_TMP][256];
static int g_ntmp;

static const char *tmp_path(const char *name) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    for (int i = 0; i < g_ntmp; i++) if (!strcmp(g_tmp[i], p)) return g_tmp[i];
    if (g_ntmp == MAX_TMP) { fprintf(stderr, "test_io: too many temp files\n"); abort(); }
    memcpy(g_tmp[g_ntmp], p, sizeof p);
    return g_tmp[g_ntmp++];
}

static void cleanup_tmp(void) {
    for (int i = g_ntmp - 1; i >= 0; i--) remove_any(g_tmp[i]);
    int empty = remove_any(g_dir) == 0;
    CHECK(empty, "temp dir %s is empty once our files are gone (no stray PATH.tmp)", g_dir);
    if (!empty) {   // still clean up after ourselves
        for (int i = 0; i < g_ntmp; i++) {
            char t[sizeof g_tmp[0] + 4];
            size_t len = strlen(g_tmp[i]);
            memcpy(t, g_tmp[i], len);
            memcpy(t + len, ".tmp", 5);
            remove(t);
        }
        remove_any(g_dir);
    }
}

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long len;
    *n = 0;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = (unsigned char *)malloc((size_t)len + 1)) != NULL && fread(buf, 1, (size_t)len, f) == (size_t)len)
        *n = (size_t)len;
    else { free(buf); buf = NULL; }
    fclose(f);
    return buf;
}

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

// a safetensors file by hand: the length field is given separately so a test can lie in it
static int write_st_raw(const char *path, uint64_t hlen, const char *header, const void *data, size_t dn) {
    size_t hn = strlen(header), n = 8 + hn + dn;
    unsigned char *buf = (unsigned char *)malloc(n);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, header, hn);
    if (dn) memcpy(buf + 8 + hn, data, dn);
    int ok = write_bytes(path, buf, n);
    free(buf);
    return ok;
}

// Replaces the first `from` in a safetensors file's header with `to` (same length, so the length
// field stays right). Returns 1 if it was found.
static int patch_header(const char *path, const char *from, const char *to) {
    size_t n, hlen = 0, k = strlen(from);
    unsigned char *file = read_bytes(path, &n);
    int found = 0;
    if (!file || n < 8) { free(file); return 0; }
    for (int i = 0; i < 8; i++) hlen |= (size_t)file[i] << (8 * i);
    if (strlen(to) == k && hlen <= n - 8)
        for (size_t i = 8; !found && i + k <= 8 + hlen; i++)
            if (!memcmp(file + i, from, k)) { memcpy(file + i, to, k); found = 1; }
    if (found) found = write_bytes(path, file, n);
    free(file);
    return found;
}

// the last error message mentions s (NULL: nothing to look for)
static int err_has(const char *s) { return !s || strstr(bert_last_error(), s) != NULL; }

// Replaces the last message with one that names no file, tensor or JSON problem, so a message
// check after a call sees that call's message and not an older one.
static void clear_error(void) { bert_st st; bert_st_open(&st, NULL); }

static int cfg_equal(const bert_config *a, const bert_config *b) {
    return a->vocab_size == b->vocab_size && a->hidden_size == b->hidden_size &&
           a->num_hidden_layers == b->num_hidden_layers && a->num_attention_heads == b->num_attention_heads &&
           a->intermediate_size == b->intermediate_size && a->max_position_embeddings == b->max_position_embeddings &&
           a->type_vocab_size == b->type_vocab_size && a->hidden_act == b->hidden_act &&
           a->hidden_dropout_prob == b->hidden_dropout_prob &&
           a->attention_probs_dropout_prob == b->attention_probs_dropout_prob &&
           a->initializer_range == b->initializer_range && a->layer_norm_eps == b->layer_norm_eps;
}

static int params_equal(const bert_model *a, const bert_model *b) {
    return a && b && a->num_params == b->num_params && !memcmp(a->params, b->params, a->num_params * sizeof(float));
}

// ----------------------------------------------------------------------------
// checkpoints built from a model's tensors, so a test can rename, retype, reshape or drop one

typedef struct { int n, cap; bert_st_entry *e; char (*name)[160]; } entries;

static entries model_entries(const bert_model *m, int extra) {
    entries s;
    s.n = m->num_tensors; s.cap = m->num_tensors + extra;
    s.e = (bert_st_entry *)calloc((size_t)s.cap, sizeof *s.e);
    s.name = (char (*)[160])calloc((size_t)s.cap, 160);
    for (int i = 0; i < s.n; i++) {
        snprintf(s.name[i], 160, "%s", m->names[i]);
        s.e[i].name = s.name[i];
        s.e[i].dtype = BERT_DT_F32;
        s.e[i].ndim = m->tensors[i].ndim;
        for (int d = 0; d < m->tensors[i].ndim; d++) s.e[i].shape[d] = m->tensors[i].shape[d];
        s.e[i].data = m->tensors[i].data;
    }
    return s;
}

static void entries_free(entries *s) { free(s->e); free(s->name); }

static int entries_find(const entries *s, const char *name) {
    for (int i = 0; i < s->n; i++) if (!strcmp(s->e[i].name, name)) return i;
    return -1;
}

static void entries_add(entries *s, const char *name, bert_dtype dt, int64_t d0, int64_t d1, const void *data) {
    if (s->n == s->cap) { fprintf(stderr, "test_io: entries_add past capacity\n"); abort(); }
    int i = s->n++;
    snprintf(s->name[i], 160, "%s", name);
    memset(&s->e[i], 0, sizeof s->e[i]);
    s->e[i].name = s->name[i]; s->e[i].dtype = dt; s->e[i].data = data;
    s->e[i].ndim = d1 ? 2 : 1; s->e[i].shape[0] = d0; s->e[i].shape[1] = d1;
}

// every name: replace the first `from` with `to` (from == "^" means "strip the prefix `to`")
static void entries_rename(entries *s, const char *from, const char *to) {
    for (int i = 0; i < s->n; i++) {
        char *n = s->name[i], buf[160];
        if (!strcmp(from, "^")) {
            size_t k = strlen(to);
            if (!strncmp(n, to, k)) memmove(n, n + k, strlen(n + k) + 1);
            continue;
        }
        char *hit = strstr(n, from);
        if (!hit) continue;
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)(hit - n), n, to, hit + strlen(from));
        memcpy(n, buf, sizeof buf);
    }
}

// saves the entries; with cfg, __metadata__ carries the config as bert_model_save writes it
static int entries_save(const char *path, const entries *s, const bert_config *cfg) {
    char json[1024];
    if (!cfg) return bert_st_save(path, s->e, s->n, NULL, 0);
    bert_config_to_json(cfg, json, sizeof json);
    const char *meta[] = { "format", "bert.h", "config", json };
    return bert_st_save(path, s->e, s->n, meta, 2);
}

// A checkpoint that must not load: bert_model_load gives NULL and bert_model_load_weights into
// a model of the right config gives `code`, both with a message naming the file and `what`.
static void expect_bad_checkpoint(const char *label, const char *path, const char *what, int code, bert_model *scratch) {
    clear_error();
    bert_model *got = bert_model_load(path, NULL);
    CHECK(got == NULL && err_has(path) && err_has(what), "%s: bert_model_load fails naming the file%s%s: %s",
          label, what ? " and " : "", what ? what : "", bert_last_error());
    bert_model_free(got);
    clear_error();
    int rc = bert_model_load_weights(scratch, path);
    CHECK(rc == code && err_has(path) && err_has(what), "%s: bert_model_load_weights gives code %d (want %d): %s",
          label, rc, code, bert_last_error());
}

// ----------------------------------------------------------------------------
// 1. round trip

static void test_round_trip(const bert_model *m) {
    printf("--- round trip: bert_model_save -> bert_model_load\n");
    const char *path = tmp_path("roundtrip.safetensors");
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = bert_model_save(m, path);
    CHECK(rc == BERT_OK, "bert_model_save: %s", rc ? bert_last_error() : "ok");
    CHECK(!file_exists(tmp), "no %s left behind after a successful save", tmp);
    bert_model *r = bert_model_load(path, NULL);
    if (!CHECK(r != NULL, "reload the saved model: %s", r ? "ok" : bert_last_error())) return;
    CHECK(params_equal(m, r), "reloaded params are bitwise equal (%zu floats)", m->num_params);
    CHECK(cfg_equal(&m->config, &r->config), "reloaded config is equal");

    bert_st st;
    rc = bert_st_open(&st, path);
    if (CHECK(rc == BERT_OK, "bert_st_open on the saved file: %s", rc ? bert_last_error() : "ok")) {
        const char *format = bert_st_meta(&st, "format"), *config = bert_st_meta(&st, "config");
        const char *producer = bert_st_meta(&st, "producer");
        CHECK(format && !strcmp(format, "pt") && producer && !strcmp(producer, "bert.h"),
              "__metadata__ format = \"pt\" (transformers loads no other), producer = \"bert.h\" (got %s, %s)",
              format ? format : "none", producer ? producer : "none");
        bert_config c;
        memset(&c, 0, sizeof c);
        CHECK(config && bert_config_parse(&c, config, strlen(config), "meta") == BERT_OK && cfg_equal(&c, &m->config),
              "__metadata__ config parses to the model's config");
        int order = st.count == m->num_tensors;
        for (int i = 0; order && i < st.count; i++)
            order = !strcmp(st.tensors[i].name, m->names[i]) && st.tensors[i].dtype == BERT_DT_F32;
        CHECK(order, "the file holds %d F32 tensors with the model's names, in table order", m->num_tensors);
        bert_st_close(&st);
    }
    // saving over an existing checkpoint replaces it (rename over the old file)
    r->params[0] += 1.0f;
    rc = bert_model_save(r, path);
    bert_model *r2 = bert_model_load(path, NULL);
    CHECK(rc == BERT_OK && params_equal(r, r2) && !file_exists(tmp), "saving over an existing file replaces it");
    bert_model_free(r2);
    // bert_model_load_weights into an existing model, from the fixture itself
    memset(r->params, 0, r->num_params * sizeof(float));
    rc = bert_model_load_weights(r, check_path("tiny.safetensors"));
    CHECK(rc == BERT_OK && params_equal(m, r), "bert_model_load_weights restores every param");
    bert_model_free(r);
}

// ----------------------------------------------------------------------------
// 2a/2b. truncated files and bad header lengths

static void test_truncated(const bert_model *m) {
    printf("--- bad input: truncated files, bad header length\n");
    size_t n;
    unsigned char *file = read_bytes(check_path("tiny.safetensors"), &n);
    if (!CHECK(file && n > 16, "read the fixture bytes")) { free(file); return; }
    size_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (size_t)file[i] << (8 * i);
    // the tensor whose bytes end the file: cutting the last byte must name it
    bert_st st;
    const char *last = NULL;
    char last_name[160] = "";
    if (bert_st_open(&st, check_path("tiny.safetensors")) == BERT_OK) {
        size_t end = 0;
        for (int i = 0; i < st.count; i++)
            if (st.tensors[i].end > end) { end = st.tensors[i].end; snprintf(last_name, sizeof last_name, "%s", st.tensors[i].name); }
        last = last_name;
        bert_st_close(&st);
    }
    bert_model *scratch = bert_model_create(&m->config, 1);
    struct { const char *label; size_t cut; const char *what; } cuts[] = {
        { "0 bytes (empty file)", 0, NULL },
        { "4 bytes", 4, NULL },
        { "8 bytes (length only)", 8, NULL },
        { "mid-header", 8 + hlen / 2, NULL },
        { "header only, no data", 8 + hlen, "tensor '" },
        { "mid-data", 8 + hlen + (n - 8 - hlen) / 2, "tensor '" },
        { "last byte missing", n - 1, last },
    };
    const char *path = tmp_path("truncated.safetensors");
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        write_bytes(path, file, cuts[k].cut);
        memset(&st, 0x55, sizeof st);
        clear_error();
        int rc = bert_st_open(&st, path);
        CHECK(rc == BERT_ERR_FORMAT && err_has(path) && err_has(cuts[k].what),
              "truncated, %s: bert_st_open gives BERT_ERR_FORMAT (%d): %s", cuts[k].label, rc, bert_last_error());
        CHECK(st.file == NULL && st.tensors == NULL && st.count == 0 && st.path == NULL,
              "truncated, %s: bert_st_open leaves *st zeroed", cuts[k].label);
        bert_st_close(&st);   // documented as safe on the zeroed struct
        expect_bad_checkpoint(cuts[k].label, path, cuts[k].what, BERT_ERR_FORMAT, scratch);
    }
    // length field past EOF, 2^63 and 2^64-1 (8 + hlen must not wrap), zero
    struct { const char *label; uint64_t len; } lens[] = {
        { "header length = file size (past EOF)", (uint64_t)n },
        { "header length 2^63", (uint64_t)1 << 63 },
        { "header length 2^64-1", ~(uint64_t)0 },
        { "header length 0", 0 },
    };
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        for (int i = 0; i < 8; i++) file[i] = (unsigned char)(lens[k].len >> (8 * i));
        write_bytes(path, file, n);
        clear_error();
        int rc = bert_st_open(&st, path);
        CHECK(rc == BERT_ERR_FORMAT && err_has(path) && err_has("header length"),
              "%s: bert_st_open gives BERT_ERR_FORMAT (%d): %s", lens[k].label, rc, bert_last_error());
        bert_st_close(&st);
        expect_bad_checkpoint(lens[k].label, path, NULL, BERT_ERR_FORMAT, scratch);
    }
    bert_model_free(scratch);
    free(file);
}

// ----------------------------------------------------------------------------
// 2c/2d/2e. a tensor with the wrong shape, the wrong dtype, or missing

static void test_bad_tensors(const bert_model *m) {
    printf("--- bad input: wrong shape, wrong dtype, missing tensor\n");
    const char *victim = "bert.encoder.layer.1.output.dense.weight";   // (C, F) = (64, 128)
    const char *path = tmp_path("bad_tensor.safetensors");
    bert_model *scratch = bert_model_create(&m->config, 1);
    entries s = model_entries(m, 0);
    int i = entries_find(&s, victim);
    if (!CHECK(i >= 0 && s.e[i].ndim == 2 && s.e[i].shape[0] != s.e[i].shape[1], "the model has %s, not square", victim)) {
        entries_free(&s); bert_model_free(scratch); return;
    }

    // transposed: same byte count, so only the shape check can catch it
    int64_t d0 = s.e[i].shape[0];
    s.e[i].shape[0] = s.e[i].shape[1]; s.e[i].shape[1] = d0;
    CHECK(entries_save(path, &s, &m->config) == BERT_OK, "write a checkpoint with %s transposed", victim);
    expect_bad_checkpoint("transposed shape", path, victim, BERT_ERR_SHAPE, scratch);
    s.e[i].shape[1] = s.e[i].shape[0]; s.e[i].shape[0] = d0;

    // the same bytes labelled I32
    s.e[i].dtype = BERT_DT_I32;
    CHECK(entries_save(path, &s, &m->config) == BERT_OK, "write a checkpoint with %s as I32", victim);
    expect_bad_checkpoint("I32 dtype", path, victim, BERT_ERR_DTYPE, scratch);
    s.e[i].dtype = BERT_DT_F32;

    // a dtype the reader has never heard of, in an otherwise good checkpoint
    CHECK(entries_save(path, &s, &m->config) == BERT_OK, "write a good checkpoint to corrupt");
    if (CHECK(patch_header(path, "\"F32\"", "\"X32\""), "rewrite the first dtype \"F32\" in the header as \"X32\"")) {
        bert_st st;
        clear_error();
        int rc = bert_st_open(&st, path);
        CHECK(rc == BERT_ERR_DTYPE && err_has(path) && err_has("X32"),
              "unknown dtype X32: bert_st_open gives BERT_ERR_DTYPE (%d): %s", rc, bert_last_error());
        bert_st_close(&st);
        expect_bad_checkpoint("unknown dtype X32", path, "X32", BERT_ERR_DTYPE, scratch);
    }
    // and a hand-made one, to pin the tensor named in the message
    const char *raw = tmp_path("bad_dtype.safetensors");
    const char *hdr = "{\"weights\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}";
    write_st_raw(raw, strlen(hdr), hdr, "\0\0", 2);
    bert_st st;
    clear_error();
    int rc = bert_st_open(&st, raw);
    CHECK(rc == BERT_ERR_DTYPE && err_has(raw) && err_has("'weights'") && err_has("F8_E4M3"),
          "unknown dtype F8_E4M3: BERT_ERR_DTYPE naming file, tensor and dtype (%d): %s", rc, bert_last_error());
    bert_st_close(&st);

    // missing: drop one tensor
    const char *gone = "bert.encoder.layer.1.attention.self.key.bias";
    int g = entries_find(&s, gone);
    memmove(&s.e[g], &s.e[g + 1], (size_t)(s.n - g - 1) * sizeof s.e[0]);
    s.n--;
    CHECK(entries_save(path, &s, &m->config) == BERT_OK, "write a checkpoint without %s", gone);
    expect_bad_checkpoint("missing tensor", path, gone, BERT_ERR_MISSING, scratch);
    entries_free(&s);
    bert_model_free(scratch);
}

// ----------------------------------------------------------------------------
// 2f. bad configs

static void test_bad_config(const bert_model *m) {
    printf("--- bad input: config JSON\n");
    static const struct { const char *label, *json, *what; } bad[] = {
        { "not JSON", "hidden_size = 64", NULL },
        { "truncated JSON", "{\"vocab_size\": 112, \"hidden_size\": 64, \"num_hidden_layers\"", NULL },
        { "a JSON array", "[1, 2]", NULL },
        { "missing hidden_size", "{\"vocab_size\": 112, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128}", "hidden_size" },
        { "hidden_size 64.5", "{\"vocab_size\": 112, \"hidden_size\": 64.5, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128}", "hidden_size" },
        { "hidden_size \"64\"", "{\"vocab_size\": 112, \"hidden_size\": \"64\", \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128}", "hidden_size" },
        { "5 heads for hidden_size 64", "{\"vocab_size\": 112, \"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 5, \"intermediate_size\": 128}", "num_attention_heads" },
        { "negative vocab", "{\"vocab_size\": -112, \"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128}", "vocab_size" },
        { "hidden_act relu", "{\"vocab_size\": 112, \"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128, \"hidden_act\": \"relu\"}", "hidden_act" },
        { "dropout 1.5", "{\"vocab_size\": 112, \"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128, \"hidden_dropout_prob\": 1.5}", "hidden_dropout_prob" },
        // 1e39 is a fine double but overflows float: it must not become an infinite epsilon
        { "layer_norm_eps 1e39 (overflows float)", "{\"vocab_size\": 112, \"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128, \"layer_norm_eps\": 1e39}", "layer_norm_eps" },
        { "initializer_range 1e39 (overflows float)", "{\"vocab_size\": 112, \"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128, \"initializer_range\": 1e39}", "initializer_range" },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        clear_error();
        bert_config c = bert_config_default();
        c.vocab_size = 7;   // sentinel: a failed parse must leave *cfg alone
        int rc = bert_config_parse(&c, bad[k].json, strlen(bad[k].json), "cfgtest");
        CHECK(rc != BERT_OK && c.vocab_size == 7 && err_has("cfgtest") && err_has(bad[k].what),
              "config %s: rejected (code %d), cfg untouched: %s", bad[k].label, rc, rc ? bert_last_error() : "accepted");
    }
    {   // BERT-large with a 500k vocabulary: 0.8 G parameters, 6.5 GB of params + grads. A 64-bit
        // host takes the config (allocating it is another matter); a 32-bit one (test-cross's i686)
        // must refuse it by name instead of wrapping its size_t
        static const char big[] = "{\"vocab_size\": 500000, \"hidden_size\": 1024, \"num_hidden_layers\": 24, "
                                  "\"num_attention_heads\": 16, \"intermediate_size\": 4096}";
        bert_config c;
        clear_error();
        int rc = bert_config_parse(&c, big, strlen(big), "bigcfg");
        if (sizeof(size_t) == 4)
            CHECK(rc == BERT_ERR_ARG && err_has("bigcfg") && err_has("address space"),
                  "32-bit: a model over the address space is refused by name: %s", rc ? bert_last_error() : "accepted");
        else
            CHECK(rc == BERT_OK, "64-bit: a 0.8 G-parameter config is accepted (%s)", rc ? bert_last_error() : "ok");
    }
    // a checkpoint whose __metadata__ config is not JSON
    const char *path = tmp_path("bad_meta_config.safetensors");
    entries s = model_entries(m, 0);
    const char *meta[] = { "format", "bert.h", "config", "{\"vocab_size\": 112, \"hidden_size\": " };
    CHECK(bert_st_save(path, s.e, s.n, meta, 2) == BERT_OK, "write a checkpoint with a broken config string");
    clear_error();
    bert_model *got = bert_model_load(path, NULL);
    CHECK(got == NULL && err_has(path) && err_has("config"), "bad __metadata__ config: bert_model_load gives NULL: %s", bert_last_error());
    bert_model_free(got);
    // the file's config wins over the caller's, so a good cfg_or_null does not rescue it
    got = bert_model_load(path, &m->config);
    CHECK(got == NULL && err_has(path), "bad __metadata__ config with cfg_or_null: still NULL: %s", bert_last_error());
    bert_model_free(got);
    entries_free(&s);
}

// ----------------------------------------------------------------------------
// 2g. hand-made headers with bad data offsets

static void test_bad_layout(void) {
    printf("--- bad input: data offsets, header structure\n");
    static const unsigned char data[16];
    static const struct { const char *label, *header, *what; size_t dn; int code; } bad[] = {
        { "overlapping tensors", "{\"alpha\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                 "\"beta\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", "overlap", 12, BERT_ERR_FORMAT },
        { "one tensor inside another", "{\"alpha\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                                       "\"beta\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "overlap", 16, BERT_ERR_FORMAT },
        { "offset past the data end", "{\"alpha\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", "'alpha'", 12, BERT_ERR_FORMAT },
        { "span != dtype x numel", "{\"alpha\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "'alpha'", 8, BERT_ERR_FORMAT },
        { "begin > end", "{\"alpha\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", "'alpha'", 8, BERT_ERR_FORMAT },
        { "negative shape", "{\"alpha\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "'alpha'", 8, BERT_ERR_FORMAT },
        { "duplicate tensor name", "{\"alpha\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                   "\"alpha\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "'alpha'", 8, BERT_ERR_FORMAT },
        { "header is an array", "[1, 2, 3]", NULL, 0, BERT_ERR_FORMAT },
        { "header is not JSON", "{\"alpha\": oops}", NULL, 0, BERT_ERR_FORMAT },
        { "non-string metadata", "{\"__metadata__\":{\"step\":3}}", "__metadata__", 0, BERT_ERR_FORMAT },
    };
    const char *path = tmp_path("bad_layout.safetensors");
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        write_st_raw(path, strlen(bad[k].header), bad[k].header, data, bad[k].dn);
        bert_st st;
        clear_error();
        int rc = bert_st_open(&st, path);
        CHECK(rc == bad[k].code && err_has(path) && err_has(bad[k].what) && st.count == 0 && st.file == NULL,
              "%s: bert_st_open gives %d (want %d): %s", bad[k].label, rc, bad[k].code, bert_last_error());
        bert_st_close(&st);
    }
    // the overlap message names both tensors
    write_st_raw(path, strlen(bad[0].header), bad[0].header, data, bad[0].dn);
    bert_st st;
    bert_st_open(&st, path);
    CHECK(err_has("'alpha'") && err_has("'beta'"), "the overlap message names both tensors: %s", bert_last_error());
    bert_st_close(&st);
}

// ----------------------------------------------------------------------------
// 2h. paths that are not files, and saves that cannot succeed

static void test_not_a_file(const bert_model *m) {
    printf("--- bad input: directories, missing files, unwritable targets\n");
    bert_model *scratch = bert_model_create(&m->config, 1);
    const char *nope = tmp_path("does_not_exist.safetensors");
    const char *paths[] = { "/tmp", g_dir, nope };
    for (int k = 0; k < 3; k++) {
        bert_st st;
        clear_error();
        int rc = bert_st_open(&st, paths[k]);
        CHECK(rc == BERT_ERR_IO && err_has(paths[k]), "bert_st_open(%s) gives BERT_ERR_IO (%d): %s", paths[k], rc, bert_last_error());
        bert_st_close(&st);
        clear_error();
        rc = bert_model_load_weights(scratch, paths[k]);
        CHECK(rc == BERT_ERR_IO && err_has(paths[k]), "bert_model_load_weights(%s) gives BERT_ERR_IO (%d)", paths[k], rc);
        clear_error();
        bert_model *got = bert_model_load(paths[k], NULL);
        CHECK(got == NULL && err_has(paths[k]), "bert_model_load(%s) gives NULL: %s", paths[k], bert_last_error());
        bert_model_free(got);
        bert_config c;
        clear_error();
        rc = bert_config_load(&c, paths[k]);
        CHECK(rc == BERT_ERR_IO && err_has(paths[k]), "bert_config_load(%s) gives BERT_ERR_IO (%d)", paths[k], rc);
    }
    // saving onto a directory or into a missing directory fails with BERT_ERR_IO and leaves no
    // PATH.tmp behind (cleanup checks that the temp dir ends up empty)
    char sub[300];
    snprintf(sub, sizeof sub, "%s/subdir_XXXXXX", g_dir);
    if (CHECK(mkdtemp(sub) != NULL, "make a subdirectory to save onto")) {
        const char *dir = tmp_path(strrchr(sub, '/') + 1);
        char tmp[300];
        snprintf(tmp, sizeof tmp, "%s.tmp", dir);
        clear_error();
        int rc = bert_model_save(m, dir);
        CHECK(rc == BERT_ERR_IO && err_has(dir) && !file_exists(tmp), "save onto a directory: BERT_ERR_IO, no .tmp left (%d): %s",
              rc, bert_last_error());
    }
    const char *missing_dir = tmp_path("no_such_dir/model.safetensors");
    clear_error();
    int rc = bert_model_save(m, missing_dir);
    CHECK(rc == BERT_ERR_IO && err_has(missing_dir), "save into a missing directory: BERT_ERR_IO (%d): %s", rc, bert_last_error());
    // bad entries are refused before anything is written
    const char *path = tmp_path("dup.safetensors");
    float x[2] = { 1, 2 };
    bert_st_entry e[2];
    memset(e, 0, sizeof e);
    e[0].name = e[1].name = "same"; e[0].dtype = e[1].dtype = BERT_DT_F32; e[0].ndim = e[1].ndim = 1;
    e[0].shape[0] = e[1].shape[0] = 2; e[0].data = e[1].data = x;
    clear_error();
    rc = bert_st_save(path, e, 2, NULL, 0);
    CHECK(rc == BERT_ERR_ARG && err_has("same") && !file_exists(path), "bert_st_save with a duplicate name: BERT_ERR_ARG, no file (%d): %s",
          rc, bert_last_error());
    bert_model_free(scratch);
}

// ----------------------------------------------------------------------------
// 3. conversion on load (our own encoders, round to nearest even; the library only decodes)

static uint16_t f32_to_f16(float f) {
    uint32_t x, ax, h;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00u);            // NaN
    if (ax >= 0x47800000u) return (uint16_t)(sign | 0x7C00u);           // >= 2^16: inf
    if (ax < 0x38800000u) {                                             // < 2^-14: subnormal
        float a;
        memcpy(&a, &ax, 4);
        return (uint16_t)(sign | (uint32_t)rint((double)a * 16777216.0));  // units of 2^-24, ties to even
    }
    h = ((ax >> 23) - 112) << 10 | (ax & 0x7FFFFFu) >> 13;
    uint32_t rem = ax & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;              // a carry rounds up into the exponent/inf
    return (uint16_t)(sign | h);
}

static uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

// reference decoders written from the definitions, not from the library's bit tricks
static float f16_value(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, mant = h & 1023;
    double v = e == 0 ? ldexp(mant, -24) : e == 31 ? (mant ? NAN : INFINITY) : ldexp(1024 + mant, e - 25);
    return (float)(s ? -v : v);
}

static float bf16_value(uint16_t b) {
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static int same_float(float a, float b) { return (isnan(a) && isnan(b)) || !memcmp(&a, &b, 4); }

static void test_conversion(const bert_model *m) {
    printf("--- conversion on load: F16, BF16, F64, I64\n");
    // our encoder on known values, so a wrong tolerance result below points at the library
    CHECK(f32_to_f16(1.0f) == 0x3C00 && f32_to_f16(-2.0f) == 0xC000 && f32_to_f16(65504.0f) == 0x7BFF &&
          f32_to_f16(65520.0f) == 0x7C00 && f32_to_f16(5.9604645e-8f) == 0x0001 && f32_to_f16(1.0f + 1.0f / 2048) == 0x3C00 &&
          f32_to_f16(1.0f + 3.0f / 2048) == 0x3C02 && f32_to_bf16(1.0f) == 0x3F80 && f32_to_bf16(1.0f + 1.0f / 256) == 0x3F80 &&
          f32_to_bf16(1.0f + 3.0f / 256) == 0x3F82, "test encoders: f16/bf16 known values, ties to even");

    // every 16-bit pattern, decoded by the library, equals the definition exactly
    const char *path = tmp_path("all_halves.safetensors");
    uint16_t *bits = (uint16_t *)malloc(65536 * sizeof *bits);
    float *got = (float *)malloc(65536 * sizeof *got);
    for (int i = 0; i < 65536; i++) bits[i] = (uint16_t)i;
    double f64[5] = { 1.5, -1e300, 1e300, 3.141592653589793, -0.0 };
    int64_t i64[3] = { 7, -5, (int64_t)1 << 40 }, i64ok[3] = { 7, -5, 2147483647 };
    bert_st_entry e[5];
    memset(e, 0, sizeof e);
    e[0].name = "f16"; e[0].dtype = BERT_DT_F16; e[0].ndim = 1; e[0].shape[0] = 65536; e[0].data = bits;
    e[1].name = "bf16"; e[1].dtype = BERT_DT_BF16; e[1].ndim = 1; e[1].shape[0] = 65536; e[1].data = bits;
    e[2].name = "f64"; e[2].dtype = BERT_DT_F64; e[2].ndim = 1; e[2].shape[0] = 5; e[2].data = f64;
    e[3].name = "i64_big"; e[3].dtype = BERT_DT_I64; e[3].ndim = 1; e[3].shape[0] = 3; e[3].data = i64;
    e[4].name = "i64"; e[4].dtype = BERT_DT_I64; e[4].ndim = 1; e[4].shape[0] = 3; e[4].data = i64ok;
    bert_st st;
    int rc = bert_st_save(path, e, 5, NULL, 0);
    if (!rc) rc = bert_st_open(&st, path);
    if (CHECK(rc == BERT_OK, "write and open all_halves: %s", rc ? bert_last_error() : "ok")) {
        int64_t shape[1] = { 65536 };
        int ok = bert_st_read_f32(&st, "f16", got, shape, 1) == BERT_OK, bad = -1;
        for (int i = 0; ok && i < 65536; i++) if (!same_float(got[i], f16_value((uint16_t)i))) { bad = i; ok = 0; }
        CHECK(ok, "F16 decode is exact for all 65536 patterns (subnormals, inf, NaN)%s%04x", ok ? "" : ": first bad 0x", ok ? 0 : bad);
        ok = bert_st_read_f32(&st, "bf16", got, shape, 1) == BERT_OK; bad = -1;
        for (int i = 0; ok && i < 65536; i++) if (!same_float(got[i], bf16_value((uint16_t)i))) { bad = i; ok = 0; }
        CHECK(ok, "BF16 decode is exact for all 65536 patterns%s%04x", ok ? "" : ": first bad 0x", ok ? 0 : bad);
        shape[0] = 5;
        ok = bert_st_read_f32(&st, "f64", got, shape, 1) == BERT_OK;
        CHECK(ok && got[0] == (float)1.5f && isinf(got[1]) && got[1] < 0 && isinf(got[2]) && got[2] > 0 &&
              got[3] == (float)3.141592653589793 && got[4] == (float)0.0f && signbit(got[4]), "F64 -> F32: rounds, overflows to +-inf, keeps -0");
        int32_t iv[3];
        shape[0] = 3;
        rc = bert_st_read_i32(&st, "i64_big", iv, shape, 1);
        CHECK(rc == BERT_ERR_FORMAT && err_has("i64_big"), "I64 2^40 -> int32 is refused (%d): %s", rc, bert_last_error());
        rc = bert_st_read_i32(&st, "i64", iv, shape, 1);
        CHECK(rc == BERT_OK && iv[0] == 7 && iv[1] == -5 && iv[2] == 2147483647, "I64 -> int32 in range");
        rc = bert_st_read_f32(&st, "i64", got, shape, 1);
        CHECK(rc == BERT_ERR_DTYPE && err_has("i64"), "I64 read as float is BERT_ERR_DTYPE (%d)", rc);
        bert_st_close(&st);
    }
    free(got);
    free(bits);

    // the whole model stored as F16 and as BF16, loaded into a model of the same config
    uint16_t *half = (uint16_t *)malloc(m->num_params * sizeof *half);
    float *expect = (float *)malloc(m->num_params * sizeof *expect);
    bert_model *r = bert_model_create(&m->config, 3);
    for (int fmt = 0; fmt < 2; fmt++) {
        const char *name = fmt ? "BF16" : "F16";
        path = tmp_path(fmt ? "model_bf16.safetensors" : "model_f16.safetensors");
        entries s = model_entries(m, 0);
        size_t subnormal = 0;
        for (size_t j = 0; j < m->num_params; j++) {
            half[j] = fmt ? f32_to_bf16(m->params[j]) : f32_to_f16(m->params[j]);
            expect[j] = fmt ? bf16_value(half[j]) : f16_value(half[j]);
            if (!fmt && (half[j] & 0x7C00) == 0 && (half[j] & 0x3FF)) subnormal++;
        }
        for (int i = 0; i < s.n; i++) {
            s.e[i].dtype = fmt ? BERT_DT_BF16 : BERT_DT_F16;
            s.e[i].data = half + (m->tensors[i].data - m->params);
        }
        rc = entries_save(path, &s, &m->config);
        entries_free(&s);
        if (!CHECK(rc == BERT_OK, "write the model as %s", name)) continue;
        rc = bert_model_load_weights(r, path);
        if (!CHECK(rc == BERT_OK, "bert_model_load_weights from %s: %s", name, rc ? bert_last_error() : "ok")) continue;
        char label[64];
        snprintf(label, sizeof label, "%s params vs the F32 originals", name);
        if (fmt) check_close(label, r->params, m->params, m->num_params, 0.0, 8e-3);
        else check_close(label, r->params, m->params, m->num_params, 1e-6, 1e-3);
        CHECK(!memcmp(r->params, expect, m->num_params * sizeof(float)), "%s params are exactly the stored %s values%s", name, name,
              fmt ? "" : " (incl. subnormals)");
        if (!fmt) printf("         (%zu of the F16 values are subnormal)\n", subnormal);
    }
    bert_model_free(r);
    free(expect);
    free(half);
}

// ----------------------------------------------------------------------------
// 4. names other BERT checkpoints use

static void test_hf_names(const bert_model *m) {
    printf("--- HF name compatibility\n");
    const bert_config *cfg = &m->config;
    int P = cfg->max_position_embeddings;
    int64_t *position_ids = (int64_t *)malloc((size_t)P * sizeof *position_ids);
    for (int i = 0; i < P; i++) position_ids[i] = i;
    static const struct { const char *label; int gamma, bare, decoder_bias; } variants[] = {
        { "LayerNorm gamma/beta", 1, 0, 0 },
        { "BertModel names (no bert.) + cls heads", 0, 1, 0 },
        { "cls.predictions.decoder.bias", 0, 0, 1 },
        { "all three (old TF-converted BertModel)", 1, 1, 1 },
    };
    const char *path = tmp_path("hf_names.safetensors");
    for (size_t k = 0; k < sizeof variants / sizeof variants[0]; k++) {
        entries s = model_entries(m, 2);
        if (variants[k].gamma) { entries_rename(&s, "LayerNorm.weight", "LayerNorm.gamma"); entries_rename(&s, "LayerNorm.bias", "LayerNorm.beta"); }
        if (variants[k].decoder_bias) entries_rename(&s, "cls.predictions.bias", "cls.predictions.decoder.bias");
        // extras HF files carry, which a loader must skip: an I64 buffer and the tied decoder
        entries_add(&s, "bert.embeddings.position_ids", BERT_DT_I64, 1, P, position_ids);
        entries_add(&s, "cls.predictions.decoder.weight", BERT_DT_F32, cfg->vocab_size, cfg->hidden_size, m->w.word_emb->data);
        if (variants[k].bare) entries_rename(&s, "^", "bert.");
        int rc = entries_save(path, &s, NULL);   // no __metadata__, as HF writes them
        entries_free(&s);
        if (!CHECK(rc == BERT_OK, "%s: write", variants[k].label)) continue;
        bert_model *r = bert_model_load(path, cfg);
        CHECK(r && params_equal(m, r), "%s: bert_model_load (config from the caller) gives the same params%s%s",
              variants[k].label, r ? "" : ": ", r ? "" : bert_last_error());
        bert_model_free(r);
        r = bert_model_create(cfg, 5);
        rc = bert_model_load_weights(r, path);
        CHECK(rc == BERT_OK && params_equal(m, r), "%s: bert_model_load_weights gives the same params (%d)", variants[k].label, rc);
        bert_model_free(r);
    }
    free(position_ids);

    // no config anywhere -> MISSING; then a config.json beside the file is found
    entries s = model_entries(m, 0);
    path = tmp_path("no_meta.safetensors");
    CHECK(entries_save(path, &s, NULL) == BERT_OK, "write a checkpoint without __metadata__");
    entries_free(&s);
    bert_model *r = bert_model_load(path, NULL);
    CHECK(r == NULL && err_has(path), "no config in the file, from the caller or beside it: NULL: %s", bert_last_error());
    bert_model_free(r);
    const char *beside = tmp_path("config.json");
    char json[1024];
    int n = bert_config_to_json(cfg, json, sizeof json);
    write_bytes(beside, json, n > 0 ? (size_t)n : 0);
    r = bert_model_load(path, NULL);
    CHECK(r && params_equal(m, r) && cfg_equal(&r->config, cfg), "config.json beside the file is used%s%s", r ? "" : ": ",
          r ? "" : bert_last_error());
    bert_model_free(r);
    remove(beside);
}

// ----------------------------------------------------------------------------
// 5. configs

static void test_config(void) {
    printf("--- config parsing\n");
    // google-research/bert's uncased_L-12_H-768_A-12/bert_config.json
    static const char google[] =
        "{\n  \"attention_probs_dropout_prob\": 0.1,\n  \"hidden_act\": \"gelu\",\n  \"hidden_dropout_prob\": 0.1,\n"
        "  \"hidden_size\": 768,\n  \"initializer_range\": 0.02,\n  \"intermediate_size\": 3072,\n"
        "  \"max_position_embeddings\": 512,\n  \"num_attention_heads\": 12,\n  \"num_hidden_layers\": 12,\n"
        "  \"type_vocab_size\": 2,\n  \"vocab_size\": 30522\n}\n";
    bert_config c;
    memset(&c, 0, sizeof c);
    int rc = bert_config_parse(&c, google, strlen(google), "bert_config.json");
    CHECK(rc == BERT_OK && c.vocab_size == 30522 && c.hidden_size == 768 && c.num_hidden_layers == 12 &&
          c.num_attention_heads == 12 && c.intermediate_size == 3072 && c.max_position_embeddings == 512 &&
          c.type_vocab_size == 2 && c.hidden_dropout_prob == (float)0.1f && c.attention_probs_dropout_prob == (float)0.1f &&
          c.initializer_range == (float)0.02f, "Google bert_config.json: every field (%s)", rc ? bert_last_error() : "ok");
    CHECK(rc == BERT_OK && c.hidden_act == BERT_GELU_ERF, "hidden_act \"gelu\" -> BERT_GELU_ERF");
    CHECK(rc == BERT_OK && c.layer_norm_eps == (float)1e-12f, "layer_norm_eps absent -> 1e-12 (got %g)", (double)c.layer_norm_eps);

    static const char *const tanh_names[] = { "gelu_new", "gelu_tanh" };
    for (int k = 0; k < 2; k++) {
        char text[256];
        snprintf(text, sizeof text, "{\"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
                 "\"intermediate_size\": 16, \"hidden_act\": \"%s\", \"layer_norm_eps\": 1e-5}", tanh_names[k]);
        rc = bert_config_parse(&c, text, strlen(text), NULL);
        CHECK(rc == BERT_OK && c.hidden_act == BERT_GELU_TANH && c.layer_norm_eps == (float)1e-5f && c.max_position_embeddings == 512 &&
              c.type_vocab_size == 2, "hidden_act \"%s\" -> BERT_GELU_TANH, eps 1e-5, defaults for absent P/TV", tanh_names[k]);
    }

    // to_json -> parse is the identity, on values that do not round-trip through short decimals
    bert_config a = bert_config_default();
    a.vocab_size = 28996; a.hidden_size = 1024; a.num_hidden_layers = 24; a.num_attention_heads = 16;
    a.intermediate_size = 4096; a.max_position_embeddings = 1024; a.type_vocab_size = 3; a.hidden_act = BERT_GELU_TANH;
    a.hidden_dropout_prob = 1.0f / 3; a.attention_probs_dropout_prob = 0.0f; a.initializer_range = 0.0371f; a.layer_norm_eps = 1e-7f;
    char json[1024];
    int n = bert_config_to_json(&a, json, sizeof json);
    memset(&c, 0, sizeof c);
    rc = n > 0 ? bert_config_parse(&c, json, (size_t)n, "to_json") : -1;
    CHECK(rc == BERT_OK && cfg_equal(&a, &c), "bert_config_to_json -> bert_config_parse gives the identical struct");
    a.hidden_act = BERT_GELU_ERF;
    n = bert_config_to_json(&a, json, sizeof json);
    rc = n > 0 ? bert_config_parse(&c, json, (size_t)n, "to_json") : -1;
    CHECK(rc == BERT_OK && cfg_equal(&a, &c), "... and with gelu erf");
    CHECK(bert_config_to_json(&a, json, 16) == -1, "bert_config_to_json into a too-small buffer gives -1");

    // bert_config_load reads the same text from a file
    const char *path = tmp_path("bert_config.json");
    write_bytes(path, google, strlen(google));
    memset(&c, 0, sizeof c);
    rc = bert_config_load(&c, path);
    CHECK(rc == BERT_OK && c.hidden_size == 768 && c.vocab_size == 30522, "bert_config_load of a written bert_config.json");
    remove(path);

    // real Google configs, when the shared data is there
    static const struct { const char *path; int hidden, vocab; } real[] = {
        { "../shared/data/tf_ckpt/bert_tiny_L-2_H-128_A-2_index_only/bert_config.json", 128, 30522 },
        { "../shared/data/tf_ckpt/chinese_L-12_H-768_A-12_index_only/bert_config.json", 768, 21128 },
    };
    for (int k = 0; k < 2; k++) {
        if (!file_exists(real[k].path)) { printf("  skipped: ../shared/data not present (%s)\n", real[k].path); continue; }
        memset(&c, 0, sizeof c);
        rc = bert_config_load(&c, real[k].path);
        CHECK(rc == BERT_OK && c.hidden_size == real[k].hidden && c.vocab_size == real[k].vocab && c.hidden_act == BERT_GELU_ERF &&
              c.layer_norm_eps == (float)1e-12f, "%s: hidden %d vocab %d (%s)", real[k].path, c.hidden_size, c.vocab_size,
              rc ? bert_last_error() : "ok");
    }
}

// ----------------------------------------------------------------------------
// 6. optimizer state

static void fill_moments(bert_optim *o) {
    for (size_t i = 0; i < o->n; i++) {
        o->m[i] = sinf(0.37f * (float)i) * 1e-3f;
        if (o->v) o->v[i] = 1e-6f + fabsf(cosf(0.11f * (float)i)) * 1e-4f;
    }
}

static void test_optim(const bert_model *m) {
    printf("--- optimizer state\n");
    static const bert_optim_type types[] = { BERT_OPTIM_ADAMW, BERT_OPTIM_LAMB, BERT_OPTIM_MOMENTUM };
    for (int k = 0; k < 3; k++) {
        const char *name = bert_optim_name(types[k]);
        char file[64];
        snprintf(file, sizeof file, "optim_%s.safetensors", name);
        const char *path = tmp_path(file);
        bert_optim o = bert_optim_defaults(types[k]);
        bert_optim_init(&o, m);
        fill_moments(&o);
        o.step = ((uint64_t)1 << 33) + 7;   // needs all 64 bits
        int rc = bert_optim_save(&o, m, path, NULL, 0);
        CHECK(rc == BERT_OK, "%s: bert_optim_save: %s", name, rc ? bert_last_error() : "ok");
        bert_optim r = bert_optim_defaults(types[k]);
        bert_optim_init(&r, m);
        rc = bert_optim_load(&r, m, path);
        CHECK(rc == BERT_OK && r.step == o.step, "%s: bert_optim_load: step %llu (%s)", name, (unsigned long long)r.step,
              rc ? bert_last_error() : "ok");
        CHECK(!memcmp(r.m, o.m, o.n * sizeof(float)) && (!o.v || !memcmp(r.v, o.v, o.n * sizeof(float))),
              "%s: moments bitwise equal", name);
        bert_optim_free(&r);
        bert_optim_free(&o);
    }
    {   // the caller's own metadata rides along; a NaN gradient skips the update
        bert_model *mw = (bert_model *)m;   // stepped below, its weights restored after
        bert_optim o = bert_optim_defaults(BERT_OPTIM_ADAMW);
        bert_optim_init(&o, m);
        const char *extra[] = { "data_cursor", "12345", "note", "resumable" };
        const char *path = tmp_path("optim_extra.safetensors");
        bert_st st;
        int ok = bert_optim_save(&o, m, path, extra, 2) == BERT_OK && bert_st_open(&st, path) == BERT_OK;
        CHECK(ok && bert_st_meta(&st, "data_cursor") && !strcmp(bert_st_meta(&st, "data_cursor"), "12345") &&
              bert_st_meta(&st, "note") && !strcmp(bert_st_meta(&st, "note"), "resumable") &&
              !strcmp(bert_st_meta(&st, "optimizer"), "adamw"), "bert_optim_save: extra metadata kept beside the fixed keys");
        if (ok) bert_st_close(&st);
        float *before = (float *)malloc(m->num_params * sizeof(float));
        memcpy(before, m->params, m->num_params * sizeof(float));
        bert_model_zero_grad(mw);
        mw->grads[m->num_params / 2] = NAN;
        int rc = bert_optim_step(&o, mw);
        CHECK(rc == BERT_ERR_NONFINITE && o.step == 0 && !memcmp(before, m->params, m->num_params * sizeof(float)),
              "NaN gradient: update skipped, step not counted, weights untouched (%s)", bert_last_error());
        bert_model_zero_grad(mw);
        mw->grads[0] = 1.0f;
        rc = bert_optim_step(&o, mw);
        CHECK(rc == BERT_OK && o.step == 1 && m->params[0] != before[0], "the next finite step applies");
        memcpy(mw->params, before, m->num_params * sizeof(float));
        bert_model_zero_grad(mw);
        free(before);
        bert_optim_free(&o);
    }
    const char *adamw = tmp_path("optim_adamw.safetensors");
    // a state file of another optimizer type
    bert_optim o = bert_optim_defaults(BERT_OPTIM_LAMB);
    bert_optim_init(&o, m);
    int rc = bert_optim_load(&o, m, adamw);
    CHECK(rc != BERT_OK && err_has(adamw) && err_has("adamw") && o.step == 0, "adamw state into a lamb optimizer fails (%d): %s", rc,
          bert_last_error());
    bert_optim_free(&o);
    // a model checkpoint is not optimizer state
    o = bert_optim_defaults(BERT_OPTIM_ADAMW);
    bert_optim_init(&o, m);
    const char *model = check_path("tiny.safetensors");
    rc = bert_optim_load(&o, m, model);
    CHECK(rc != BERT_OK && err_has(model), "a model checkpoint as optimizer state fails (%d): %s", rc, bert_last_error());
    bert_optim_free(&o);
    // state saved for one model shape does not load for another
    bert_config small = m->config;
    small.hidden_size = 32; small.num_attention_heads = 2;
    bert_model *other = bert_model_create(&small, 2);
    o = bert_optim_defaults(BERT_OPTIM_ADAMW);
    bert_optim_init(&o, other);
    rc = bert_optim_load(&o, other, adamw);
    CHECK(rc == BERT_ERR_SHAPE && err_has(adamw), "adamw state into a model with hidden_size 32: BERT_ERR_SHAPE (%d): %s", rc,
          bert_last_error());
    bert_optim_free(&o);
    bert_model_free(other);
    // not initialised for this model
    o = bert_optim_defaults(BERT_OPTIM_ADAMW);
    rc = bert_optim_load(&o, m, adamw);
    CHECK(rc != BERT_OK && err_has(adamw), "into an optimizer never bert_optim_init'ed: error (%d): %s", rc, bert_last_error());
    // a corrupt "step": written as a number of the same width, then patched in the header
    static const struct { uint64_t step; const char *saved, *patched; } bad_steps[] = {
        { 12, "\"12\"", "\"-1\"" },                                          // strtoull accepts a sign
        { 10000000000000000000ull, "\"10000000000000000000\"", "\"99999999999999999999\"" },   // > 2^64-1
        { 10000000000000000ull, "\"10000000000000000\"", "\"10000000000000000\"" },   // > 2^53: t + 1 would not change
    };
    const char *patched = tmp_path("optim_patched.safetensors");
    for (int k = 0; k < 3; k++) {
        o = bert_optim_defaults(BERT_OPTIM_ADAMW);
        bert_optim_init(&o, m);
        o.step = bad_steps[k].step;
        bert_optim_save(&o, m, patched, NULL, 0);
        o.step = 5;
        int found = patch_header(patched, bad_steps[k].saved, bad_steps[k].patched);
        clear_error();
        rc = bert_optim_load(&o, m, patched);
        CHECK(found && rc == BERT_ERR_FORMAT && err_has(patched) && err_has("step") && o.step == 5,
              "\"step\": %s is rejected, step stays 5 (code %d, step %llu): %s", bad_steps[k].patched, rc, (unsigned long long)o.step,
              rc ? bert_last_error() : "accepted");
        bert_optim_free(&o);
    }
    for (int k = 0; k < 2; k++) {   // a NaN first moment, a negative second moment: refused, nothing loaded
        o = bert_optim_defaults(BERT_OPTIM_ADAMW);
        bert_optim_init(&o, m);
        fill_moments(&o);
        if (k == 0) o.m[3] = NAN; else o.v[o.n - 2] = -1e-6f;
        bert_optim_save(&o, m, patched, NULL, 0);
        bert_optim r = bert_optim_defaults(BERT_OPTIM_ADAMW);
        bert_optim_init(&r, m);
        rc = bert_optim_load(&r, m, patched);
        CHECK(rc == BERT_ERR_FORMAT && err_has(patched) && err_has(k ? "or negative" : "NaN/Inf") && r.m[3] == (float)0.0f && r.step == 0,
              "%s moment in the state file: refused, the optimizer untouched: %s", k ? "a negative second" : "a NaN first", bert_last_error());
        bert_optim_free(&r);
        bert_optim_free(&o);
    }
}

// ----------------------------------------------------------------------------
// 7. JSON reader

static int json_rejects(const char *label, const char *text, size_t len) {
    static bert_json sentinel;
    bert_json *j = &sentinel;   // must come back NULL
    clear_error();
    int rc = bert_json_parse(&j, text, len);
    int ok = CHECK(rc == BERT_ERR_FORMAT && j == NULL && err_has("json:") && err_has("byte"),
                   "json rejects %s (%d): %s", label, rc, bert_last_error());
    if (j != &sentinel) bert_json_free(j);
    return ok;
}

static void test_json(void) {
    printf("--- JSON reader\n");
    static const char text[] =
        "{\"s\": \"q\\\"b\\\\s\\/ \\b\\f\\n\\r\\t \\u00e9\\u20AC\\ud83d\\ude00 \xc3\xa9\", \"n\": -1.5e2,"
        " \"a\": [1, [2, {}], null, true, false], \"dup\": 1, \"dup\": 2, \"z\": \"a\\u0000b\", \"e\": {}}";
    static const char want_s[] = "q\"b\\s/ \b\f\n\r\t \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \xc3\xa9";
    bert_json *j = NULL;
    int rc = bert_json_parse(&j, text, strlen(text));
    if (CHECK(rc == BERT_OK && j && j->type == BERT_JSON_OBJECT && j->count == 7, "parse an object with 7 members: %s",
              rc ? bert_last_error() : "ok")) {
        const bert_json *s = bert_json_get(j, "s"), *num = bert_json_get(j, "n"), *a = bert_json_get(j, "a");
        const bert_json *dup = bert_json_get(j, "dup"), *z = bert_json_get(j, "z");
        CHECK(s && s->type == BERT_JSON_STRING && s->string_len == sizeof want_s - 1 && !memcmp(s->string, want_s, sizeof want_s),
              "escapes, \\u00e9, \\u20AC and the surrogate pair \\ud83d\\ude00 decode to the right UTF-8 bytes");
        CHECK(num && num->type == BERT_JSON_NUMBER && num->number == -150.0, "number -1.5e2");
        CHECK(a && a->type == BERT_JSON_ARRAY && a->count == 5 && a->child[1].count == 2 && a->child[1].child[1].type == BERT_JSON_OBJECT &&
              a->child[1].child[1].count == 0 && a->child[2].type == BERT_JSON_NULL && a->child[3].type == BERT_JSON_TRUE &&
              a->child[4].type == BERT_JSON_FALSE, "nested array: counts and literal types");
        CHECK(dup && dup->number == 2.0, "bert_json_get returns the last of duplicate keys (as Python's json.loads)");
        CHECK(z && z->string_len == 3 && !memcmp(z->string, "a\0b", 4), "\\u0000 is kept, with string_len 3");
        CHECK(bert_json_get(j, "missing") == NULL && bert_json_get(a, "s") == NULL && bert_json_get(NULL, "s") == NULL &&
              bert_json_get(j, NULL) == NULL, "bert_json_get: NULL for a missing key, an array, a NULL object or key");
        const bert_json *e = bert_json_get(j, "e");
        CHECK(e && e->type == BERT_JSON_OBJECT && e->count == 0 && bert_json_get(e, "x") == NULL, "empty object");
    }
    bert_json_free(j);

    // nesting: 64 levels are fine, 65 are not
    char deep[200];
    for (int depth = 64; depth <= 65; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        j = NULL;
        rc = bert_json_parse(&j, deep, 2 * (size_t)depth);
        if (depth == 64) CHECK(rc == BERT_OK && j && j->type == BERT_JSON_ARRAY, "64 nested arrays parse");
        else CHECK(rc == BERT_ERR_FORMAT && !j && err_has("nesting"), "65 nested arrays are rejected: %s", bert_last_error());
        bert_json_free(j);
    }
    memset(deep, '[', 199);
    json_rejects("200 unclosed '['", deep, 199);

    static const struct { const char *label, *text; } bad[] = {
        { "trailing garbage after an object", "{} x" },
        { "two values", "1 2" },
        { "an extra ']'", "[1]]" },
        { "an extra '}'", "{\"a\": 1}}" },
        { "a trailing comma", "[1,]" },
        { "a missing ':'", "{\"a\" 1}" },
        { "a non-string key", "{1: 2}" },
        { "an unterminated string", "\"abc" },
        { "an invalid escape \\x", "\"\\x41\"" },
        { "a short \\u escape", "\"\\u12\"" },
        { "a lone high surrogate", "\"\\ud83d\"" },
        { "a high surrogate + non-surrogate", "\"\\ud83d\\u0041\"" },
        { "a lone low surrogate", "\"\\ude00\"" },
        { "a raw control character", "\"a\tb\"" },
        { "overlong UTF-8 (C0 AF)", "\"\xc0\xaf\"" },
        { "a raw UTF-8 surrogate (ED A0 80)", "\"\xed\xa0\x80\"" },
        { "truncated UTF-8", "\"\xe2\x82\"" },
        { "a leading zero", "012" },
        { "a bare minus", "-" },
        { "1.", "1." },
        { "1e309 (beyond double)", "1e309" },
        { "NaN", "NaN" },
        { "single quotes", "'a'" },
        { "nul", "nul" },
        { "empty text", "" },
        { "only whitespace", " \n\t " },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) json_rejects(bad[k].label, bad[k].text, strlen(bad[k].text));
    // the length is honoured: a valid prefix is fine, the text after it is never read
    j = NULL;
    rc = bert_json_parse(&j, "[1, 2] garbage", 6);
    CHECK(rc == BERT_OK && j && j->count == 2, "parse honours len (\"[1, 2]\" of \"[1, 2] garbage\")");
    bert_json_free(j);
}

// a tiny file whose config describes a huge model: refused before the model is allocated (it once
// built 3 GB of parameters and gradients for a 250-byte file, then failed on the first tensor)
static void test_config_bigger_than_data(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/bigcfg.safetensors", g_dir);
    float one = 1.0f;
    bert_st_entry e = { "bert.embeddings.LayerNorm.weight", BERT_DT_F32, 1, { 1 }, &one };
    const char *meta[] = { "config", "{\"vocab_size\": 4194304, \"hidden_size\": 64, \"num_hidden_layers\": 1, "
                           "\"num_attention_heads\": 1, \"intermediate_size\": 64, \"max_position_embeddings\": 8}" };
    if (!CHECK(bert_st_save(path, &e, 1, meta, 1) == BERT_OK, "write %s: %s", path, bert_last_error())) return;
    double t0 = bert_time_s();
    bert_model *m = bert_model_load(path, NULL);
    double took = bert_time_s() - t0;
    CHECK(!m && err_has(path) && err_has("too few for the 268461440 encoder parameters") && took < 5.0,
          "config of 268 M encoder parameters in a 4-byte file: refused before allocating (%.2f s): %s", took, bert_last_error());
    remove(path);
    bert_model_free(m);
}

// the helpers the example programs use for progress lines and summaries
static void test_program_helpers(void) {
    static const struct { double s; const char *want; } cases[] = {
        { 0, "0s" }, { 42.4, "42s" }, { 59.6, "59s" }, { 60, "1m00s" }, { 185, "3m05s" }, { 3599, "59m59s" },
        { 3600, "1h00m" }, { 3725, "1h02m" }, { 360000, "100h00m" }, { -1, "?" }, { NAN, "?" }, { INFINITY, "?" }, { 1e300, "?" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        const char *got = bert_format_duration(buf, sizeof buf, cases[i].s);
        CHECK(got == buf && !strcmp(buf, cases[i].want), "bert_format_duration(%g) = \"%s\" (want \"%s\")", cases[i].s, buf, cases[i].want);
    }
    char tiny[4];
    bert_format_duration(tiny, sizeof tiny, 3725);
    CHECK(strlen(tiny) == 3, "bert_format_duration truncates to its buffer (\"%s\")", tiny);
    double t0 = bert_time_s(), t1 = bert_time_s();
    CHECK(t0 > 1.6e9 && t1 >= t0, "bert_time_s: %.3f then %.3f (seconds since 1970, not going back)", t0, t1);
    double rss = bert_peak_rss_mib();
#ifdef _WIN32   // the peak working set there, /proc or not (wine has one)
    CHECK(rss > 1 && rss < 1e6, "bert_peak_rss_mib: %.1f MiB (the peak working set)", rss);
#else
    FILE *f = fopen("/proc/self/status", "r");
    if (f) fclose(f);
    CHECK(f ? rss > 1 && rss < 1e6 : rss == -1.0, "bert_peak_rss_mib: %.1f MiB (%s)", rss, f ? "/proc here" : "no /proc: -1");
#endif
}

int main(void) {
    test_program_helpers();
    snprintf(g_dir, sizeof g_dir, "%s/bert_test_io_XXXXXX", TMP_ROOT);
    if (!CHECK(mkdtemp(g_dir) != NULL, "create a temp dir")) return check_summary();
    bert_model *m = bert_model_load(check_path("tiny.safetensors"), NULL);
    if (CHECK(m != NULL, "load tests/ref/tiny.safetensors: %s", m ? "ok" : bert_last_error())) {
        test_round_trip(m);
        test_truncated(m);
        test_bad_tensors(m);
        test_bad_config(m);
        test_bad_layout();
        test_not_a_file(m);
        test_conversion(m);
        test_hf_names(m);
        test_optim(m);
    }
    test_config();
    test_config_bigger_than_data();
    test_json();
    bert_model_free(m);
    cleanup_tmp();
    return check_summary();
}
