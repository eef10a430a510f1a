/* test_safetensors.c - the JSON reader and the safetensors reader/writer in depth: every escape,
   every F16 value, hand-made bad headers, truncation at every length, random header mutations,
   write failures. (tests/test_io.c covers the model-level loading on top of them.) */
#define _DEFAULT_SOURCE   /* lstat, symlink */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>

#define BERT_IMPLEMENTATION
#include "../bert.h"
#define g_err bert__error_message   /* the library's last-error buffer (same TU) */
#ifdef _WIN32
#include <direct.h>
#define mkdir(path, mode) _mkdir(path)   /* no permission bits there */
#elif !defined(__cplusplus)
int symlink(const char *, const char *);   /* POSIX; hidden under strict -std=c11 */
#endif

/* ---- tiny test framework ---- */
static int g_fail, g_pass;
#define CHECK(c) do { if (c) g_pass++; else { g_fail++; printf("FAIL %s:%d: %s  [last error: %s]\n", __FILE__, __LINE__, #c, g_err); } } while (0)
#define DIR "/tmp/bert_io_test"

static const char *codename(int rc) {
    static const char *n[] = { "OK", "IO", "OOM", "FORMAT", "SHAPE", "DTYPE", "MISSING", "ARG" };
    return rc >= 0 && rc <= 7 ? n[rc] : "?";
}

/* ---- JSON ---- */
static int jparse(const char *s) { bert_json *j = NULL; int rc = bert_json_parse(&j, s, strlen(s)); bert_json_free(j); return rc; }

static void test_json(void) {
    bert_json *j = NULL;
    const bert_json *a, *c;
    const char *txt = " {\"a\": [1, -0.5, 2.5e2, {\"b\": null}, true, false, []], \"c\": \"x\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\\t\\b\\f\\r\","
                      " \"d\": {}, \"e\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\", \"z\": \"a\\u0000b\", \"n\": -0, \"m\": 0.25E-2 } \n";
    static const char *bad[] = { "", "  ", "[1,]", "{\"a\":1,}", "01", "-01", "1.", ".5", "-", "1e", "1e+", "+1", "[1 2]", "\"\x01\"",
        "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800x\"", "\"abc", "nul", "truex", "[1] x", "{1:2}",
        "{\"a\" 1}", "{\"a\":}", "1e400", "-1e400", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"",
        "NaN", "Infinity", "\"\\u12G4\"", "\"\\u12", "[", "{", "[[]", "{\"a\":1", "\"\t\"", "'a'", "[1,,2]", "\x01", "[1]]", "0x10",
        "\xef\xbb\xbf{}" /* BOM */, NULL };
    int i, rc;
    char buf[200];
    rc = bert_json_parse(&j, txt, strlen(txt));
    CHECK(rc == BERT_OK && j && j->type == BERT_JSON_OBJECT && j->count == 7);
    if (!j) return;
    a = bert_json_get(j, "a");
    CHECK(a && a->type == BERT_JSON_ARRAY && a->count == 7);
    CHECK(a->child[0].number == 1 && a->child[1].number == -0.5 && a->child[2].number == 250 && !a->child[0].key);
    CHECK(a->child[3].type == BERT_JSON_OBJECT && bert_json_get(&a->child[3], "b")->type == BERT_JSON_NULL);
    CHECK(a->child[4].type == BERT_JSON_TRUE && a->child[5].type == BERT_JSON_FALSE && a->child[6].type == BERT_JSON_ARRAY && a->child[6].count == 0 && !a->child[6].child);
    c = bert_json_get(j, "c");
    CHECK(c && c->type == BERT_JSON_STRING && !strcmp(c->string, "x\xc3\xa9\xf0\x9f\x98\x80\n\"\\/\t\b\f\r") && c->string_len == strlen(c->string));
    CHECK(bert_json_get(j, "d")->type == BERT_JSON_OBJECT && bert_json_get(j, "d")->count == 0);
    CHECK(!strcmp(bert_json_get(j, "e")->string, "caf\xc3\xa9 \xf0\x9f\x98\x80"));
    CHECK(bert_json_get(j, "z")->string_len == 3 && !memcmp(bert_json_get(j, "z")->string, "a\0b", 4));
    CHECK(bert_json_get(j, "n")->number == 0 && bert_json_get(j, "m")->number == (double)0.0025);   // (the cast: x87 compares constants in long double)
    CHECK(!bert_json_get(j, "missing") && !bert_json_get(a, "x") && !bert_json_get(NULL, "a"));
    bert_json_free(j);
    CHECK(bert_json_parse(&j, "[\"\\u20ac\\u0041\\u07ff\\uffff\\udbff\\udfff\"]", 40) == BERT_OK &&
          !strcmp(j->child[0].string, "\xe2\x82\xac" "A" "\xdf\xbf" "\xef\xbf\xbf" "\xf4\x8f\xbf\xbf"));
    bert_json_free(j);
    CHECK(jparse("0") == BERT_OK && jparse("\"\"") == BERT_OK && jparse("[[],{}]") == BERT_OK && jparse("-1.5e-300") == BERT_OK);
    for (i = 0; bad[i]; i++) {
        rc = jparse(bad[i]);
        if (rc != BERT_ERR_FORMAT) printf("  bad json #%d '%s' -> %s\n", i, bad[i], codename(rc));
        CHECK(rc == BERT_ERR_FORMAT && !strncmp(g_err, "json: ", 6) && strstr(g_err, " at byte "));
    }
    rc = jparse("[1, 2, x]");
    CHECK(rc == BERT_ERR_FORMAT && !strcmp(g_err, "json: unexpected character at byte 7"));
    /* depth limit: 64 nested arrays ok, 65 not */
    for (i = 0; i < 64; i++) { buf[i] = '['; buf[64 + i] = ']'; }
    buf[128] = 0;
    CHECK(jparse(buf) == BERT_OK);
    for (i = 0; i < 65; i++) { buf[i] = '['; buf[65 + i] = ']'; }
    buf[130] = 0;
    CHECK(jparse(buf) == BERT_ERR_FORMAT && strstr(g_err, "nesting"));
    /* non NUL-terminated input: length is respected */
    CHECK(bert_json_parse(&j, "[1]xyz", 3) == BERT_OK && j->child[0].number == 1);
    bert_json_free(j);
    /* big flat array (many count-slot regrowths + big pool) */
    {
        size_t n = 200000, k;
        char *s = (char *)malloc(n * 2 + 2);
        s[0] = '[';
        for (k = 0; k < n; k++) { s[1 + 2 * k] = (char)('0' + k % 10); s[2 + 2 * k] = ','; }
        s[2 * n] = ']';
        CHECK(bert_json_parse(&j, s, 2 * n + 1) == BERT_OK && j->count == (int)n && j->child[n - 1].number == (double)((n - 1) % 10));
        bert_json_free(j);
        for (k = 0; k < n; k++) s[k] = '[';   /* deep: must fail fast, no stack blow-up */
        CHECK(bert_json_parse(&j, s, n) == BERT_ERR_FORMAT && !j);
        free(s);
    }
}

/* ---- F16 / BF16 / F64 conversions ---- */
static void test_convert(void) {
    unsigned h;
    int bad = 0;
    for (h = 0; h < 65536; h++) {   /* exhaustive F16 vs ldexp reference */
        unsigned ex = (h >> 10) & 31, man = h & 1023;
        double ref = ex == 31 ? (man ? NAN : INFINITY) : ex ? ldexp(1024 + man, (int)ex - 25) : ldexp(man, -24);
        float f = bert__io_f16_to_f32(h);
        if (h & 0x8000) ref = -ref;
        if (ex == 31 && man) { if (!isnan(f)) bad++; }
        else if ((double)f != ref || !signbit(f) != !signbit(ref)) bad++;
    }
    CHECK(bad == 0);
    CHECK(bert__io_f16_to_f32(0x3C00) == (float)1.0f && bert__io_f16_to_f32(0xC000) == (float)-2.0f && bert__io_f16_to_f32(0x7BFF) == (float)65504.0f);
    CHECK(bert__io_f16_to_f32(0x0001) == ldexpf(1, -24) && bert__io_f16_to_f32(0x03FF) == ldexpf(1023, -24));
    CHECK(isinf(bert__io_f16_to_f32(0xFC00)) && bert__io_f16_to_f32(0xFC00) < 0 && signbit(bert__io_f16_to_f32(0x8000)));
}

/* ---- safetensors helpers ---- */
static void write_raw(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(bytes, 1, n, f);
    fclose(f);
}
/* file = u64 len (hlen_override if != ~0) + header + data */
static void write_st(const char *path, const char *header, const void *data, size_t dlen, unsigned long long hlen_override) {
    size_t hl = strlen(header), i;
    unsigned long long L = hlen_override != ~0ull ? hlen_override : hl;
    unsigned char *b = (unsigned char *)malloc(8 + hl + dlen + 1);
    for (i = 0; i < 8; i++) b[i] = (unsigned char)(L >> (8 * i));
    memcpy(b + 8, header, hl);
    if (dlen) memcpy(b + 8 + hl, data, dlen);
    write_raw(path, b, 8 + hl + dlen);
    free(b);
}
static int open_st(const char *header, const void *data, size_t dlen) {
    bert_st st;
    int rc;
    write_st(DIR "/t.safetensors", header, data, dlen, ~0ull);
    rc = bert_st_open(&st, DIR "/t.safetensors");
    if (rc == BERT_OK) bert_st_close(&st);
    return rc;
}

static void test_roundtrip(void) {
    float a[6] = { 1, -2.5f, 3.25f, 1e-30f, -0.0f, 1e30f }, s0 = 42.0f, out[6];
    int32_t ids[4] = { 0, -1, 2147483647, -2147483647 - 1 }, iout[4];
    int64_t i64[3] = { 5, -7, 2147483647 }, i64bad[2] = { 1, 3000000000LL };
    uint16_t f16[4] = { 0x3C00, 0x0001, 0x7C00, 0xC000 }, bf16[3] = { 0x3F80, 0xC040, 0x0001 };
    double f64[3] = { 0.1, 1e300, -1e300 };
    unsigned char u8[3] = { 1, 2, 255 };
    const char *meta[] = { "format", "bert.h", "config", "{\"a\": \"q\\\"\n\xc3\xa9\"}", "empty", "" };
    bert_st_entry e[10];
    bert_st st;
    const bert_st_tensor *t;
    int64_t sh23[2] = { 2, 3 }, sh32[2] = { 3, 2 }, sh16[2] = { 1, 6 }, sh4[1] = { 4 }, sh3[1] = { 3 }, sh2[1] = { 2 };
    int rc, k;
    size_t i;
    memset(e, 0, sizeof e);
    e[0].name = "w"; e[0].dtype = BERT_DT_F32; e[0].ndim = 2; e[0].shape[0] = 2; e[0].shape[1] = 3; e[0].data = a;
    e[1].name = "ids \"quoted\"\n"; e[1].dtype = BERT_DT_I32; e[1].ndim = 1; e[1].shape[0] = 4; e[1].data = ids;
    e[2].name = "scalar"; e[2].dtype = BERT_DT_F32; e[2].ndim = 0; e[2].data = &s0;
    e[3].name = "empty"; e[3].dtype = BERT_DT_F32; e[3].ndim = 2; e[3].shape[0] = 0; e[3].shape[1] = 5; e[3].data = NULL;
    e[4].name = "i64"; e[4].dtype = BERT_DT_I64; e[4].ndim = 1; e[4].shape[0] = 3; e[4].data = i64;
    e[5].name = "h"; e[5].dtype = BERT_DT_F16; e[5].ndim = 1; e[5].shape[0] = 4; e[5].data = f16;
    e[6].name = "bf"; e[6].dtype = BERT_DT_BF16; e[6].ndim = 1; e[6].shape[0] = 3; e[6].data = bf16;
    e[7].name = "d"; e[7].dtype = BERT_DT_F64; e[7].ndim = 1; e[7].shape[0] = 3; e[7].data = f64;
    e[8].name = "i64bad"; e[8].dtype = BERT_DT_I64; e[8].ndim = 1; e[8].shape[0] = 2; e[8].data = i64bad;
    e[9].name = "u8 \xc3\xa9"; e[9].dtype = BERT_DT_U8; e[9].ndim = 1; e[9].shape[0] = 3; e[9].data = u8;
    rc = bert_st_save(DIR "/rt.safetensors", e, 10, meta, 3);
    CHECK(rc == BERT_OK);
    { struct stat sb; CHECK(stat(DIR "/rt.safetensors.tmp", &sb) != 0); }
    rc = bert_st_open(&st, DIR "/rt.safetensors");
    CHECK(rc == BERT_OK);
    if (rc) return;
    CHECK(st.count == 10 && st.meta_count == 3 && !strcmp(bert_st_meta(&st, "format"), "bert.h"));
    CHECK(!strcmp(bert_st_meta(&st, "config"), meta[3]) && !strcmp(bert_st_meta(&st, "empty"), "") && !bert_st_meta(&st, "nope"));
    CHECK(bert__io_le64(st.file) % 8 == 0 && (size_t)(st.data - st.file) == 8 + bert__io_le64(st.file));
    for (k = 0; k < 10; k++) CHECK(!strcmp(st.tensors[k].name, e[k].name));   /* header order kept */
    CHECK(bert_st_read_f32(&st, "w", out, sh23, 2) == BERT_OK && !memcmp(out, a, sizeof a));
    CHECK(bert_st_read_i32(&st, "ids \"quoted\"\n", iout, sh4, 1) == BERT_OK && !memcmp(iout, ids, sizeof ids));
    CHECK(bert_st_read_f32(&st, "scalar", out, NULL, 0) == BERT_OK && out[0] == (float)42.0f);
    t = bert_st_find(&st, "empty");
    CHECK(t && t->numel == 0 && t->begin == t->end && bert_st_read_f32(&st, "empty", out, e[3].shape, 2) == BERT_OK);
    CHECK(bert_st_read_i32(&st, "i64", iout, sh3, 1) == BERT_OK && iout[0] == 5 && iout[1] == -7 && iout[2] == 2147483647);
    CHECK(bert_st_read_f32(&st, "h", out, sh4, 1) == BERT_OK && out[0] == 1 && out[1] == ldexpf(1, -24) && isinf(out[2]) && out[3] == -2);
    CHECK(bert_st_read_f32(&st, "bf", out, sh3, 1) == BERT_OK && out[0] == 1 && out[1] == -3 && out[2] == ldexpf(1, -133));
    CHECK(bert_st_read_f32(&st, "d", out, sh3, 1) == BERT_OK && out[0] == (float)0.1f && isinf(out[1]) && out[1] > 0 && isinf(out[2]) && out[2] < 0);
    /* error paths on reads */
    CHECK(bert_st_read_i32(&st, "i64bad", iout, sh2, 1) == BERT_ERR_FORMAT && strstr(g_err, "int32"));
    CHECK(bert_st_read_f32(&st, "nope", out, sh2, 1) == BERT_ERR_MISSING && !strcmp(g_err, DIR "/rt.safetensors: tensor 'nope' not found"));
    CHECK(bert_st_read_f32(&st, "w", out, sh32, 2) == BERT_ERR_SHAPE && !strcmp(g_err, DIR "/rt.safetensors: tensor 'w' has shape [2,3], expected [3,2]"));
    CHECK(bert_st_read_f32(&st, "w", out, sh16, 2) == BERT_ERR_SHAPE);
    CHECK(bert_st_read_f32(&st, "w", out, sh23, 1) == BERT_ERR_SHAPE && strstr(g_err, "expected [2]"));
    CHECK(bert_st_read_f32(&st, "scalar", out, sh2, 1) == BERT_ERR_SHAPE && strstr(g_err, "has shape []"));
    CHECK(bert_st_read_f32(&st, "ids \"quoted\"\n", out, sh4, 1) == BERT_ERR_DTYPE && strstr(g_err, "I32"));
    CHECK(bert_st_read_i32(&st, "w", iout, sh23, 2) == BERT_ERR_DTYPE && strstr(g_err, "F32"));
    CHECK(bert_st_read_f32(&st, "u8 \xc3\xa9", out, sh3, 1) == BERT_ERR_DTYPE);
    CHECK(bert_st_read_f32(&st, "empty", NULL, e[3].shape, 2) == BERT_OK);
    CHECK(bert_st_read_f32(&st, "w", NULL, sh23, 2) == BERT_ERR_ARG && bert_st_read_f32(&st, "w", out, sh23, 9) == BERT_ERR_ARG);
    /* every truncation of a valid file fails cleanly */
    {
        int allfail = 1;
        bert_st st2;
        for (i = 0; i < st.file_size; i++) {
            write_raw(DIR "/trunc.safetensors", st.file, i);
            rc = bert_st_open(&st2, DIR "/trunc.safetensors");
            if (rc == BERT_OK) { allfail = 0; printf("  truncation to %zu opened\n", i); bert_st_close(&st2); }
            else if (rc != BERT_ERR_FORMAT) { allfail = 0; printf("  truncation to %zu -> %s\n", i, codename(rc)); }
        }
        CHECK(allfail);
    }
    /* random byte mutations of the header: never crash, always OK or a clean error */
    {
        unsigned char *copy = (unsigned char *)malloc(st.file_size);
        unsigned seed = 12345;
        size_t hl = (size_t)bert__io_le64(st.file);
        int it, nok = 0;
        bert_st st2;
        for (it = 0; it < 3000; it++) {
            memcpy(copy, st.file, st.file_size);
            for (k = 0; k < 1 + it % 3; k++) {
                seed = seed * 1103515245u + 12345u;
                copy[8 + (seed >> 8) % hl] = (unsigned char)(seed >> 20);
            }
            write_raw(DIR "/mut.safetensors", copy, st.file_size);
            rc = bert_st_open(&st2, DIR "/mut.safetensors");
            if (rc == BERT_OK) { nok++; bert_st_close(&st2); }
            CHECK(rc >= BERT_OK && rc <= BERT_ERR_ARG && rc != BERT_ERR_IO && rc != BERT_ERR_OOM);
        }
        free(copy);
        printf("  mutations: %d/3000 still valid\n", nok);
    }
    bert_st_close(&st);
    bert_st_close(&st);   /* double close is harmless */
}

static void test_bad_files(void) {
    unsigned char d[64];
    bert_st st;
    int rc;
    struct { const char *hdr; size_t dlen; int code; const char *msg; } cases[] = {
        { "[]", 0, BERT_ERR_FORMAT, "not a JSON object" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", 8, BERT_ERR_FORMAT, "bad header: json: " },
        { "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, BERT_ERR_FORMAT, "tensor 'a': missing or non-string \"dtype\"" },
        { "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, BERT_ERR_FORMAT, "dtype" },
        { "{\"a\":{\"dtype\":\"Q8\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, BERT_ERR_DTYPE, "unsupported dtype 'Q8'" },
        { "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, BERT_ERR_FORMAT, "shape" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, BERT_ERR_FORMAT, "shape" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, BERT_ERR_FORMAT, "shape[0]" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, BERT_ERR_FORMAT, "shape[0]" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, BERT_ERR_FORMAT, "shape[0]" },
        { "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 8, BERT_ERR_FORMAT, "9 dims" },
        { "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,1]}}", 8, BERT_ERR_FORMAT, "overflow" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, BERT_ERR_FORMAT, "data_offsets" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8, BERT_ERR_FORMAT, "data_offsets" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", 8, BERT_ERR_FORMAT, "data_offsets" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, BERT_ERR_FORMAT, "begin 8 > end 0" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 7, BERT_ERR_FORMAT, "past the data buffer (7 bytes)" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, BERT_ERR_FORMAT, "span 8 bytes but F32 x 3 elements needs 12" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16, BERT_ERR_FORMAT, "tensors 'a' and 'b' overlap" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 16, BERT_ERR_FORMAT, "overlap" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, BERT_ERR_FORMAT, "duplicate tensor name 'a'" },
        { "{\"__metadata__\":{\"k\":1}}", 0, BERT_ERR_FORMAT, "value for 'k' is not a string" },
        { "{\"__metadata__\":[]}", 0, BERT_ERR_FORMAT, "__metadata__ is not an object" },
        { "{\"__metadata__\":{},\"__metadata__\":{}}", 0, BERT_ERR_FORMAT, "duplicate __metadata__" },
        { "{\"a\":[1]}", 0, BERT_ERR_FORMAT, "entry is not an object" },
        /* valid oddities */
        { "{}", 0, BERT_OK, NULL },
        { "{\"__metadata__\":{\"k\":\"v\"}}", 0, BERT_OK, NULL },
        { "{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, BERT_OK, NULL },          /* scalar, header not padded */
        { "{\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[8,16]},\"a\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]},"
          "\"z\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[3,3]},\"y\":{\"dtype\":\"I8\",\"shape\":[0,7],\"data_offsets\":[3,3]}}", 16, BERT_OK, NULL },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4],\"extra\":null}}   ", 4, BERT_OK, NULL },
    };
    size_t i;
    memset(d, 0, sizeof d);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        g_err[0] = 0;
        rc = open_st(cases[i].hdr, d, cases[i].dlen);
        if (rc != cases[i].code || (cases[i].msg && !strstr(g_err, cases[i].msg)))
            printf("  case %zu: got %s '%s'\n", i, codename(rc), g_err);
        CHECK(rc == cases[i].code && (!cases[i].msg || (strstr(g_err, cases[i].msg) && !strncmp(g_err, DIR "/t.safetensors: ", strlen(DIR) + 16))));
    }
    /* file-level failures */
    CHECK(bert_st_open(&st, DIR "/does_not_exist.safetensors") == BERT_ERR_IO && strstr(g_err, "No such file"));
    CHECK(bert_st_open(&st, DIR) == BERT_ERR_IO && strstr(g_err, "directory"));
    write_raw(DIR "/t.safetensors", "", 0);
    CHECK(bert_st_open(&st, DIR "/t.safetensors") == BERT_ERR_FORMAT && strstr(g_err, "too short"));
    write_raw(DIR "/t.safetensors", "\x05\0\0\0\0", 5);
    CHECK(bert_st_open(&st, DIR "/t.safetensors") == BERT_ERR_FORMAT && strstr(g_err, "too short for safetensors (5 bytes)"));
    write_st(DIR "/t.safetensors", "{}", NULL, 0, 0);
    CHECK(bert_st_open(&st, DIR "/t.safetensors") == BERT_ERR_FORMAT && strstr(g_err, "header length 0"));
    write_st(DIR "/t.safetensors", "{}", NULL, 0, 200ull << 20);
    CHECK(bert_st_open(&st, DIR "/t.safetensors") == BERT_ERR_FORMAT && strstr(g_err, "over 100 MB"));
    write_st(DIR "/t.safetensors", "{}", NULL, 0, 3);
    CHECK(bert_st_open(&st, DIR "/t.safetensors") == BERT_ERR_FORMAT && strstr(g_err, "past end of file"));
    write_st(DIR "/t.safetensors", "{}", NULL, 0, ~0ull - 1);
    CHECK(bert_st_open(&st, DIR "/t.safetensors") == BERT_ERR_FORMAT);
    write_st(DIR "/t.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", d, 8, ~0ull);   /* missing } */
    CHECK(bert_st_open(&st, DIR "/t.safetensors") == BERT_ERR_FORMAT && strstr(g_err, "bad header: json: ") && strstr(g_err, " at byte "));
    CHECK(st.count == 0 && st.file == NULL && st.path == NULL);   /* zeroed on failure */
}

static void test_save_errors(void) {
    float x[2] = { 1, 2 };
    bert_st_entry e[2];
    const char *badmeta[] = { "k", NULL };
    struct stat sb;
    memset(e, 0, sizeof e);
    e[0].name = "a"; e[0].dtype = BERT_DT_F32; e[0].ndim = 1; e[0].shape[0] = 2; e[0].data = x;
    e[1] = e[0];
    remove(DIR "/s.safetensors"); remove(DIR "/s.safetensors.tmp");
    CHECK(bert_st_save(DIR "/s.safetensors", e, 2, NULL, 0) == BERT_ERR_ARG && strstr(g_err, "duplicate tensor name 'a'"));
    CHECK(stat(DIR "/s.safetensors", &sb) != 0 && stat(DIR "/s.safetensors.tmp", &sb) != 0);
    e[1].name = "b"; e[1].dtype = (bert_dtype)12;   /* in range of the enum's bits: C++ UB otherwise */
    CHECK(bert_st_save(DIR "/s.safetensors", e, 2, NULL, 0) == BERT_ERR_ARG);
    e[1].dtype = BERT_DT_F32; e[1].data = NULL;
    CHECK(bert_st_save(DIR "/s.safetensors", e, 2, NULL, 0) == BERT_ERR_ARG && strstr(g_err, "NULL"));
    e[1].data = x; e[1].shape[0] = -1;
    CHECK(bert_st_save(DIR "/s.safetensors", e, 2, NULL, 0) == BERT_ERR_ARG && strstr(g_err, "shape"));
    e[1].shape[0] = 2; e[1].ndim = 9;
    CHECK(bert_st_save(DIR "/s.safetensors", e, 2, NULL, 0) == BERT_ERR_ARG);
    e[1].ndim = 1; e[1].name = "bad\xff";
    CHECK(bert_st_save(DIR "/s.safetensors", e, 2, NULL, 0) == BERT_ERR_ARG);
    e[1].name = "__metadata__";
    CHECK(bert_st_save(DIR "/s.safetensors", e, 2, NULL, 0) == BERT_ERR_ARG);
    e[1].name = "b";
    CHECK(bert_st_save(DIR "/s.safetensors", e, 2, badmeta, 1) == BERT_ERR_ARG);
    CHECK(bert_st_save(DIR "/no/such/dir/s.safetensors", e, 2, NULL, 0) == BERT_ERR_IO && strstr(g_err, "No such file"));
    CHECK(bert_st_save(DIR "/s.safetensors", e, 2, NULL, 0) == BERT_OK);
    CHECK(bert_st_save(DIR "/s.safetensors", e, 2, NULL, 0) == BERT_OK);   /* overwrite */
    CHECK(stat(DIR "/s.safetensors.tmp", &sb) != 0);
    CHECK(bert_st_save(DIR "/empty.safetensors", NULL, 0, NULL, 0) == BERT_OK);
    {   /* rename onto a directory fails: I/O error, temp file removed */
        mkdir(DIR "/isdir", 0755);
        CHECK(bert_st_save(DIR "/isdir", e, 2, NULL, 0) == BERT_ERR_IO && stat(DIR "/isdir.tmp", &sb) != 0);
    }
    {
        bert_st st;
        CHECK(bert_st_open(&st, DIR "/empty.safetensors") == BERT_OK && st.count == 0 && st.meta_count == 0 && st.data_size == 0);
        bert_st_close(&st);
    }
#ifdef __linux__
    {   /* full device */
        struct stat fs;
        if (stat("/dev/full", &fs) == 0) {
            float big[4096] = { 0 };
            e[0].data = big; e[0].shape[0] = 4096;
            /* a symlink planted at path.tmp (here to /dev/full) is unlinked, never written through:
               the save succeeds into a file of its own (the full disk itself: tests/test_crash_save.c) */
            remove(DIR "/full.safetensors.tmp");
            if (symlink("/dev/full", DIR "/full.safetensors.tmp") == 0) {
                int rc = bert_st_save(DIR "/full.safetensors", e, 1, NULL, 0);
                CHECK(rc == BERT_OK && lstat(DIR "/full.safetensors.tmp", &fs) != 0 && stat(DIR "/full.safetensors", &fs) == 0 && S_ISREG(fs.st_mode));
                remove(DIR "/full.safetensors");
            }
        }
    }
#elif defined(_WIN32)
    printf("skipped on Windows: a symlink planted at path.tmp (no /dev/full, and symlinks need privileges)\n");
#endif
}

int main(void) {
    mkdir(DIR, 0755);
    test_json();
    test_convert();
    test_roundtrip();
    test_bad_files();
    test_save_errors();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
