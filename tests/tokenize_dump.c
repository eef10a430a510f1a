// tokenize_dump - bert.h's tokenizer on a file of texts, printed as tests/ref/tokenizer_ref.py
// prints them, so that tests/test_tokenizer_data.sh can compare the two byte for byte.
//
//     tokenize_dump VOCAB [--cased] [--basic] [--framed] [--hf] [INPUT]
//
// Texts: one per line, or with --framed records "<byte length>\n<bytes>\n". Output: one line per
// text, the ids separated by spaces (--basic: the basic tokenizer's words). --hf: BERT_TOKENIZE_HF
// (tokenizer_ref.py --hf) instead of BERT_TOKENIZE_GOOGLE. Exit 1 on any error.
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) { fprintf(stderr, "tokenize_dump: %s\n", what); return 1; }

int main(int argc, char **argv) {
    const char *vocab_path = NULL, *input = NULL;
    int lower = 1, basic = 0, framed = 0, hf = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cased")) lower = 0;
        else if (!strcmp(argv[i], "--basic")) basic = 1;
        else if (!strcmp(argv[i], "--framed")) framed = 1;
        else if (!strcmp(argv[i], "--hf")) hf = 1;
        else if (argv[i][0] == '-' && argv[i][1]) return fail("usage: tokenize_dump VOCAB [--cased] [--basic] [--framed] [--hf] [INPUT]");
        else if (!vocab_path) vocab_path = argv[i];
        else if (!input) input = argv[i];
        else return fail("too many arguments");
    }
    if (!vocab_path) return fail("usage: tokenize_dump VOCAB [--cased] [--basic] [--framed] [--hf] [INPUT]");
    bert_vocab *v = bert_vocab_load(vocab_path);
    if (!v || bert_vocab_set_mode(v, hf ? BERT_TOKENIZE_HF : BERT_TOKENIZE_GOOGLE)) return fail(bert_last_error());
    FILE *f = input ? fopen(input, "rb") : stdin;
    if (!f) return fail("cannot open the input");
    size_t len = 0, cap = 1 << 20;
    char *data = (char *)malloc(cap);
    for (size_t n; data && (n = fread(data + len, 1, cap - len, f)) > 0;) {
        len += n;
        if (len == cap) data = (char *)realloc(data, cap *= 2);
    }
    if (input) fclose(f);
    if (!data) return fail("out of memory");
    int32_t *ids = NULL;
    char *out = NULL;
    int ids_cap = 0, out_cap = 0;
    for (size_t pos = 0; pos < len;) {
        size_t n;
        if (framed) {
            char *end = NULL;
            n = (size_t)strtoull(data + pos, &end, 10);
            if (end == data + pos || *end != '\n' || n > len - (size_t)(end + 1 - data) ||
                (size_t)(end + 1 - data) + n >= len || end[1 + n] != '\n') return fail("bad framing");
            pos = (size_t)(end + 1 - data);
        } else {
            const char *nl = (const char *)memchr(data + pos, '\n', len - pos);
            n = nl ? (size_t)(nl - (data + pos)) : len - pos;
        }
        const char *text = data + pos;
        pos += n + 1;
        if (basic) {
            int k = bert_basic_tokenize_mode(v->mode, lower, text, n, out, (size_t)out_cap);
            if (k < 0) return fail(bert_last_error());
            if (k >= out_cap) {
                out = (char *)realloc(out, (size_t)(out_cap = k + 1));
                if (!out || bert_basic_tokenize_mode(v->mode, lower, text, n, out, (size_t)out_cap) != k) return fail("basic tokenizer");
            }
            fwrite(out, 1, (size_t)k, stdout);
        } else {
            int k = bert_tokenize(v, lower, text, n, ids, ids_cap);
            if (k < 0) return fail(bert_last_error());
            if (k > ids_cap) {
                ids = (int32_t *)realloc(ids, (size_t)(ids_cap = k) * sizeof *ids);
                if (!ids || bert_tokenize(v, lower, text, n, ids, ids_cap) != k) return fail("tokenizer");
            }
            for (int i = 0; i < k; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        }
        putchar('\n');
    }
    free(ids); free(out); free(data);
    bert_vocab_free(v);
    return fflush(stdout) == 0 ? 0 : 1;
}
