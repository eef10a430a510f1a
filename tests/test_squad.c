// test_squad.c - the span head and examples/squad.c:
//   bert_transpose against finite differences; bert_span_forward (loss, logits, every gradient, with
//   dropout) against tests/ref/squad_ref.py (PyTorch, float64); the scoring against
//   tests/ref/squad_eval_ref.py (the official v1.1 metric written again) per question on
//   hand-written Unicode cases; with ../shared/data: the windows of all of dev-v1.1.json against
//   tests/ref/squad_features_ref.py (run_squad written again; CRC-32 of the dump per article),
//   predictions.json and nbest_predictions.json byte for byte for oracle and random logits, the
//   oracle's EM/F1 (>= 98 / 99), the official metric on four prediction files; a tiny fine-tuning run
//   end to end with an exact resume; bad input (a stream past the JSON limit, one token type, the
//   tokenizer out of memory); long contexts (33000 windows, a 400000-piece answer) in about a second.
#define _DEFAULT_SOURCE
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "check.h"
#include "check_exec.h"

#define DEV "../shared/data/squad/dev-v1.1.json"
#define VOCAB "../shared/data/vocab/bert_uncased_vocab.txt"
#define TMP "build/test_squad_"
// a program's stderr: NULL if unreadable; *one_line = exactly one line; the final newline dropped
static char *slurp_err(const char *path, int *one_line) {
    char *e = slurp(path, NULL);
    size_t n = e ? strlen(e) : 0;
    *one_line = e && n && strchr(e, '\n') == e + n - 1;
    if (n && e[n - 1] == '\n') e[n - 1] = 0;
    return e;
}

static void spit(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) { fputs(text, f); fclose(f); }
}

static uint32_t crc32_ieee(uint32_t crc, const void *data, size_t n) {   // zlib.crc32
    const unsigned char *p = (const unsigned char *)data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

// "crc:len" of a file, as squad_features_ref.py's crc()
static void file_crc(const char *path, char *out, size_t cap) {
    size_t n = 0;
    char *d = slurp(path, &n);
    snprintf(out, cap, d ? "%08x:%zu" : "missing", crc32_ieee(0, d, n), n);
    free(d);
}

static const char *meta(const bert_st *st, const char *key) {
    const char *v = bert_st_meta(st, key);
    return v ? v : "(absent)";
}

// ----------------------------------------------------------------------------
// the transpose op

static bert_tensor *transpose_loss(bert_ctx *ctx, bert_tensor *x, const int32_t *labels) {
    bert_ctx_reset(ctx, 0);
    bert_tensor *y = bert_transpose(ctx, x);   // (2,5,3): rows of 3 -> a softmax each
    return bert_softmax_xent(ctx, y, labels, -100);
}

static void test_transpose(void) {
    bert_ctx *ctx = bert_ctx_create(1 << 20);
    int shape[3] = { 2, 3, 5 };
    float x[30];
    for (int i = 0; i < 30; i++) x[i] = bert_rng_uniform(99, (uint64_t)i) * 4.0f - 2.0f;
    bert_tensor *p = bert_tensor_new(ctx, 3, shape);   // in the arena: re-made after each reset below
    memcpy(p->data, x, sizeof x);
    bert_tensor *y = bert_transpose(ctx, p);
    int ok = y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 5 && y->shape[2] == 3;
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++) ok &= y->data[(b * 5 + j) * 3 + i] == x[(b * 3 + i) * 5 + j];
    CHECK(ok, "bert_transpose (2,3,5) -> (2,5,3), every element in place");
    bert_ctx_free(ctx);

    // gradients through transpose + softmax-xent against central differences (x as a parameter)
    static float pdata[30], pgrad[30];
    memcpy(pdata, x, sizeof x);
    bert_tensor param = { pdata, pgrad, 3, { 2, 3, 5, 0 }, 30, BERT_TENSOR_PARAM | BERT_TENSOR_REQUIRES_GRAD, "x" };
    int32_t labels[10] = { 0, 2, 1, -100, 2, 1, 0, 0, 2, 1 };
    ctx = bert_ctx_create(1 << 20);
    bert_backward(ctx, transpose_loss(ctx, &param, labels));
    float fd[30];
    for (int i = 0; i < 30; i++) {
        float keep = pdata[i], h = 1e-2f;
        pdata[i] = keep + h; double lp = transpose_loss(ctx, &param, labels)->data[0];
        pdata[i] = keep - h; double lm = transpose_loss(ctx, &param, labels)->data[0];
        pdata[i] = keep;
        fd[i] = (float)((lp - lm) / (2 * h));
    }
    check_close("transpose backward vs central differences", pgrad, fd, 30, 2e-4, 2e-3);
    bert_ctx_free(ctx);
}

// ----------------------------------------------------------------------------
// the span head against PyTorch

static void test_span_head(void) {
    bert_st st;
    if (bert_st_open(&st, "tests/ref/squad_ref.safetensors")) { CHECK(0, "%s (make ref)", bert_last_error()); return; }
    bert_model *m = bert_model_load("tests/ref/tiny.safetensors", NULL);
    if (!m || bert_span_head_add(m, 1)) { CHECK(0, "%s", bert_last_error()); bert_st_close(&st); return; }
    enum { B = 3, T = 16 };
    int C = m->config.hidden_size;
    int32_t ids[B * T], types[B * T], mask[B * T], start[B], end[B];
    int64_t bt[2] = { B, T }, b1[1] = { B }, w2[2] = { 2, C }, v2[1] = { 2 };
    bert_tensor *qw = &m->tensors[bert_model_find(m, "qa_outputs.weight")], *qb = &m->tensors[bert_model_find(m, "qa_outputs.bias")];
    int rc = bert_st_read_i32(&st, "input_ids", ids, bt, 2) || bert_st_read_i32(&st, "token_type_ids", types, bt, 2) ||
             bert_st_read_i32(&st, "attention_mask", mask, bt, 2) || bert_st_read_i32(&st, "start_positions", start, b1, 1) ||
             bert_st_read_i32(&st, "end_positions", end, b1, 1) || bert_st_read_f32(&st, "qa_outputs.weight", qw->data, w2, 2) ||
             bert_st_read_f32(&st, "qa_outputs.bias", qb->data, v2, 1);
    CHECK(!rc, "fixture inputs and qa_outputs weights read");
    bert_ctx *ctx = bert_ctx_create(8 << 20);
    ctx->seed = 1234;
    bert_ctx_reset(ctx, 0);
    bert_model_zero_grad(m);
    bert_span_out o = bert_span_forward(ctx, m, ids, types, mask, B, T, start, end);
    static float ref[B * 2 * T];
    int64_t lt[3] = { B, 2, T }, one[1] = { 1 };
    float loss;
    CHECK(o.logits->ndim == 3 && o.logits->shape[0] == B && o.logits->shape[1] == 2 && o.logits->shape[2] == T, "span logits are (B,2,T)");
    if (!bert_st_read_f32(&st, "span_logits", ref, lt, 3)) check_close("span logits (dropout 0.1) vs PyTorch", o.logits->data, ref, B * 2 * T, 1e-5, 1e-5);
    if (!bert_st_read_f32(&st, "loss", &loss, one, 1)) check_close("loss (CE start + CE end) / 2 vs PyTorch", o.loss->data, &loss, 1, 1e-6, 1e-5);
    bert_backward(ctx, o.loss);
    int bad = 0;
    double worst = 0;
    for (int i = 0; i < m->num_tensors; i++) {   // every parameter: encoder, pooler/heads (zero), qa_outputs
        bert_tensor *t = &m->tensors[i];
        char name[200];
        snprintf(name, sizeof name, "grad.%s", m->names[i]);
        const bert_st_tensor *e = bert_st_find(&st, name);
        float *g = (float *)malloc(t->numel * sizeof(float));
        int64_t shape[2] = { t->shape[0], t->shape[1] };
        if (!e || bert_st_read_f32(&st, name, g, shape, t->ndim)) { bad++; free(g); continue; }
        for (size_t k = 0; k < t->numel; k++) {
            double d = fabs((double)t->grad[k] - g[k]);
            if (d > worst) worst = d;
            if (!(d <= 1e-6 + 1e-4 * fabs(g[k]))) bad++;
        }
        free(g);
    }
    CHECK(bad == 0, "all %d parameter gradients vs PyTorch within 1e-6 abs + 1e-4 rel (max abs err %.2e, %d off)", m->num_tensors, worst, bad);
    ctx->training = 0;
    ctx->grad_enabled = 0;
    bert_ctx_reset(ctx, 0);
    o = bert_span_forward(ctx, m, ids, types, mask, B, T, NULL, NULL);
    CHECK(o.loss == NULL, "no positions, no loss");
    if (!bert_st_read_f32(&st, "eval.span_logits", ref, lt, 3)) check_close("span logits, dropout off, vs PyTorch", o.logits->data, ref, B * 2 * T, 1e-5, 1e-5);
    bert_ctx_free(ctx);
    bert_model_free(m);
    bert_st_close(&st);
}

// ----------------------------------------------------------------------------
// the metric on hand-written cases, question by question

static void test_metric_cases(void) {
    bert_st st;
    if (bert_st_open(&st, "tests/ref/squad_cases_ref.safetensors")) { CHECK(0, "%s (make ref)", bert_last_error()); return; }
    int rc = run("--eval tests/data/squad_eval_cases.json tests/data/squad_eval_cases_pred.json --eval_details " TMP "details.jsonl", TMP "eval.out");
    char *out = slurp(TMP "eval.out", NULL), *details = slurp(TMP "details.jsonl", NULL), *err = slurp(TMP "eval.out.err", NULL);
    if (out && strchr(out, '\n')) *strchr(out, '\n') = 0;
    const char *want = meta(&st, "scores"), *want_details = meta(&st, "details");
    CHECK(rc == 0 && out && !strcmp(out, want),
          "squad --eval on 34 Unicode cases prints the official script's line %s (got %s)", want, out ? out : "nothing");
    size_t wl = strlen(want_details);
    int same = details && !strncmp(details, want_details, wl) && details[wl] == '\n' && !details[wl + 1];
    CHECK(same, "per-question EM and F1 identical to the Python metric (lower() with Final_Sigma and U+0130, Unicode \\b, "
                "str.split whitespace, ASCII punctuation, multiset F1)");
    if (!same && details) printf("         got:\n%s\n         want:\n%s\n", details, want_details);
    CHECK(err && strstr(err, "Unanswered question c17 will receive score 0."), "an unanswered question is reported as the official script does");
    free(out); free(details); free(err);
    bert_st_close(&st);
}

// ----------------------------------------------------------------------------
// all of dev-v1.1.json against the Python references

static int json_put(char *o, const char *s, size_t n) {   // a JSON string literal, raw UTF-8 kept
    int k = 0;
    o[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { o[k++] = '\\'; o[k++] = (char)c; }
        else if (c < 0x20) k += sprintf(o + k, "\\u%04x", c);
        else o[k++] = (char)c;
    }
    o[k++] = '"';
    return k;
}

// byte offset of code point index cp in s (clamped to n)
static size_t cp_offset(const char *s, size_t n, long cp) {
    size_t i = 0;
    for (long c = 0; i < n && c < cp; c++) do i++; while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80);
    return i;
}

// the four prediction files of squad_features_ref.py's make_eval_predictions, by the same rules
static void write_eval_predictions(const bert_json *data) {
    int n = 0;
    for (int a = 0; a < data->count; a++) {
        const bert_json *ps = bert_json_get(&data->child[a], "paragraphs");
        for (int p = 0; p < ps->count; p++) n += bert_json_get(&ps->child[p], "qas")->count;
    }
    const bert_json **qa = (const bert_json **)malloc((size_t)n * sizeof *qa), **ctx = (const bert_json **)malloc((size_t)n * sizeof *ctx);
    int k = 0;
    for (int a = 0; a < data->count; a++) {
        const bert_json *ps = bert_json_get(&data->child[a], "paragraphs");
        for (int p = 0; p < ps->count; p++) {
            const bert_json *qs = bert_json_get(&ps->child[p], "qas");
            for (int q = 0; q < qs->count; q++) { qa[k] = &qs->child[q]; ctx[k++] = bert_json_get(&ps->child[p], "context"); }
        }
    }
    static const char *names[] = { "perfect", "empty", "random", "partial" };
    char *buf = (char *)malloc(1 << 16);
    for (int f = 0; f < 4; f++) {
        char path[256];
        snprintf(path, sizeof path, TMP "pred_%s.json", names[f]);
        FILE *out = fopen(path, "wb");
        fputs("{", out);
        int first = 1;
        for (k = 0; k < n; k++) {
            const bert_json *ans = bert_json_get(qa[k], "answers"), *a0 = &ans->child[0];
            const bert_json *t0 = bert_json_get(a0, "text"), *last = bert_json_get(&ans->child[ans->count - 1], "text");
            const char *s = t0->string;
            size_t len = t0->string_len, m = 0;
            char tmp[8192];
            int r = k % 10;
            if (f == 1) len = 0;
            else if (f == 2) { t0 = bert_json_get(&bert_json_get(qa[(k * 7919L + 13) % n], "answers")->child[0], "text"); s = t0->string; len = t0->string_len; }
            else if (f == 3) {
                if (r == 0) continue;
                if (r <= 3) { s = last->string; len = last->string_len; }
                else if (r <= 5) {
                    long st = (long)bert_json_get(a0, "answer_start")->number, nc = 0;
                    for (size_t i = 0; i < t0->string_len; i++) nc += ((unsigned char)t0->string[i] & 0xC0) != 0x80;
                    size_t b0 = cp_offset(ctx[k]->string, ctx[k]->string_len, st > 12 ? st - 12 : 0);
                    size_t b1 = cp_offset(ctx[k]->string, ctx[k]->string_len, st + nc + 7);
                    s = ctx[k]->string + b0; len = b1 - b0;
                } else if (r == 6) { const bert_json *q = bert_json_get(qa[k], "question"); s = q->string; len = q->string_len; }
                else if (r == 7) { const char *sp = memchr(s, ' ', len); if (sp) { len -= (size_t)(sp + 1 - s); s = sp + 1; } else len = 0; }
                else if (r == 8) { m = (size_t)snprintf(tmp, sizeof tmp, "%.*s the", (int)len, s); s = tmp; len = m; }
                else { m = (size_t)snprintf(tmp, sizeof tmp, "The %.*s.", (int)len, s); s = tmp; len = m; }
            }
            const bert_json *id = bert_json_get(qa[k], "id");
            int w = first ? 0 : sprintf(buf, ",");
            w += json_put(buf + w, id->string, id->string_len);
            buf[w++] = ':';
            w += json_put(buf + w, s, len);
            fwrite(buf, 1, (size_t)w, out);
            first = 0;
        }
        fputs("}\n", out);
        fclose(out);
    }
    free(buf); free(qa); free(ctx);
}

static void test_dev(void) {
    if (!file_exists(DEV) || !file_exists(VOCAB)) { printf("  skipped: ../shared/data absent (%s): dev-set tests not run\n", DEV); return; }
    bert_st st;
    if (bert_st_open(&st, "tests/ref/squad_dev_ref.safetensors")) { CHECK(0, "%s (make ref)", bert_last_error()); return; }
    // the windows
    int rc = run("--dump_features " TMP "features.txt --predict_file " DEV " --vocab " VOCAB, TMP "dump.out");
    size_t n = 0;
    char *dump = slurp(TMP "features.txt", &n), *out = slurp(TMP "dump.out", NULL), crc[64], per[8192] = "";
    snprintf(crc, sizeof crc, "%08x:%zu", crc32_ieee(0, dump, n), n);
    CHECK(rc == 0 && !strcmp(crc, meta(&st, "features.crc")), "windows of all of dev: dump CRC-32 %s = Python reference's %s", crc, meta(&st, "features.crc"));
    long lines = 0, cur = -1;
    size_t from = 0;
    for (size_t i = 0; dump && i < n; lines++) {   // CRC-32 per article (the first field of a line)
        size_t eol = i;
        while (eol < n && dump[eol] != '\n') eol++;
        long art = atol(dump + i);
        if (cur >= 0 && art != cur) {
            snprintf(per + strlen(per), sizeof per - strlen(per), "%s%08x:%zu", *per ? " " : "", crc32_ieee(0, dump + from, i - from), i - from);
            from = i;
        }
        cur = art;
        i = eol + 1;
    }
    if (cur >= 0) snprintf(per + strlen(per), sizeof per - strlen(per), "%s%08x:%zu", *per ? " " : "", crc32_ieee(0, dump + from, n - from), n - from);
    CHECK(!strcmp(per, meta(&st, "features.per_article")), "the same per article (48 CRC-32s)");
    char want[256];
    snprintf(want, sizeof want, "%s questions -> %s windows, %s tokens, %s labelled at [CLS], %s max-context pieces, %s answers not found",
             meta(&st, "examples.count"), meta(&st, "features.count"), meta(&st, "features.tokens"), meta(&st, "features.at_cls"),
             meta(&st, "features.max_context"), meta(&st, "examples.not_found"));
    CHECK(out && strstr(out, want) && lines == atol(meta(&st, "features.count")), "counts as the reference: %s", want);
    free(dump); free(out);

    // predictions from oracle and random logits, byte for byte, and their scores
    for (int mode = 0; mode < 2; mode++) {
        const char *name = mode ? "random" : "oracle";
        char args[1024], key[64], got[64];
        snprintf(args, sizeof args, "--do_predict --debug_logits %s --seed 12345 --predict_file " DEV " --vocab " VOCAB " --output_dir " TMP "%s", name, name);
        rc = run(args, TMP "pred.out");
        out = slurp(TMP "pred.out", NULL);
        snprintf(args, sizeof args, TMP "%s/predictions.json", name);
        file_crc(args, got, sizeof got);
        snprintf(key, sizeof key, "%s.predictions", name);
        CHECK(rc == 0 && !strcmp(got, meta(&st, key)), "%s logits: predictions.json byte-identical to run_squad's (CRC-32:size %s)", name, got);
        snprintf(args, sizeof args, TMP "%s/nbest_predictions.json", name);
        file_crc(args, got, sizeof got);
        snprintf(key, sizeof key, "%s.nbest", name);
        CHECK(!strcmp(got, meta(&st, key)), "%s logits: nbest_predictions.json byte-identical (%s)", name, got);
        snprintf(key, sizeof key, "%s.scores", name);
        CHECK(out && strstr(out, meta(&st, key)), "%s logits: built-in score %s as the official metric", name, meta(&st, key));
        if (!mode) {
            double em = 0, f1 = 0;
            const char *s = out ? strstr(out, "{\"exact_match\": ") : NULL;
            if (s) sscanf(s, "{\"exact_match\": %lf, \"f1\": %lf}", &em, &f1);
            CHECK(em >= 98.0 && f1 >= 99.0, "oracle (gold positions through windows, n-best, get_final_text, scoring): EM %.4f >= 98, F1 %.4f >= 99", em, f1);
        }
        free(out);
    }

    // the official metric on four prediction files
    size_t len;
    char *text = slurp(DEV, &len);
    bert_json *root = NULL;
    if (text && !bert_json_parse(&root, text, len)) write_eval_predictions(bert_json_get(root, "data"));
    bert_json_free(root);
    free(text);
    static const char *names[] = { "perfect", "empty", "random", "partial" };
    for (int f = 0; f < 4; f++) {
        char args[512], key[64];
        snprintf(args, sizeof args, "--eval " DEV " " TMP "pred_%s.json", names[f]);
        rc = run(args, TMP "eval.out");
        out = slurp(TMP "eval.out", NULL);
        snprintf(key, sizeof key, "eval.%s", names[f]);
        const char *w = meta(&st, key);
        int same = rc == 0 && out && !strncmp(out, w, strlen(w)) && out[strlen(w)] == '\n';
        CHECK(same, "--eval, %s predictions: %s as the Python metric", names[f], w);
        free(out);
    }
    bert_st_close(&st);
}

// ----------------------------------------------------------------------------
// a tiny fine-tuning run, and bad input (no shared data needed)

static const char *words[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "?", "the", "a", "cat", "dog", "sat", "on", "mat", "what",
    "who", "where", "did", "is", "red", "blue", "house", "river", "city", "paris", "london", "france", "england",
    "capital", "of", "in", "lives", "ran", "to", "##s", "big", "small", "tree", "bird", "flew", "over", "sit", "live",
    "does", "green", "hill", "fox", "jumped", "##ed", "near", "old", "bridge", "boat", "sailed", "down",
};
#define NWORDS ((int)(sizeof words / sizeof words[0]))

static void write_vocab_and_config(void) {
    FILE *f = fopen(TMP "vocab.txt", "wb");
    for (int i = 0; i < NWORDS; i++) fprintf(f, "%s\n", words[i]);
    fclose(f);
    f = fopen(TMP "config.json", "wb");
    fprintf(f, "{\"vocab_size\": %d, \"hidden_size\": 32, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
               "\"intermediate_size\": 64, \"max_position_embeddings\": 64, \"type_vocab_size\": 2, \"hidden_act\": \"gelu\", "
               "\"hidden_dropout_prob\": 0.1, \"attention_probs_dropout_prob\": 0.1, \"initializer_range\": 0.02}\n", NWORDS);
    fclose(f);
}

// a SQuAD file of (context, question, answer) triples, answer_start found in the context
static void write_squad(const char *path, const char *const *triples, int n) {
    FILE *f = fopen(path, "wb");
    fprintf(f, "{\"version\": \"1.1\", \"data\": [{\"title\": \"t\", \"paragraphs\": [");
    for (int i = 0; i < n; i++) {
        const char *c = triples[3 * i], *q = triples[3 * i + 1], *a = triples[3 * i + 2], *at = strstr(c, a);
        fprintf(f, "%s{\"context\": \"%s\", \"qas\": [{\"id\": \"q%d\", \"question\": \"%s\", \"answers\": "
                   "[{\"text\": \"%s\", \"answer_start\": %d}]}]}", i ? ", " : "", c, i, q, a, at ? (int)(at - c) : 0);
    }
    fprintf(f, "]}]}\n");
    fclose(f);
}

static void test_training(void) {
    static const char *const data[] = {
        "The cat sat on the red mat. The dog ran to the river.", "Where did the cat sit?", "the red mat",
        "The cat sat on the red mat. The dog ran to the river.", "Who ran to the river?", "The dog",
        "Paris is the capital of France. London is the capital of England.", "What is the capital of France?", "Paris",
        "Paris is the capital of France. London is the capital of England.", "What is the capital of England?", "London",
        ("The bird flew over the big tree. The bird flew over the big tree. The bird flew over the big tree. "
         "The bird flew over the big tree. The small cat lives in the blue house near the old bridge."), "Where does the small cat live?", "the blue house",
        "The old boat sailed down the green river. The fox jumped over the dog.", "What jumped over the dog?", "The fox",
        "The old boat sailed down the green river. The fox jumped over the dog.", "What sailed down the river?", "The old boat",
        "A small bird lives on the hill. The big dog lives in the city.", "Who lives in the city?", "The big dog",
    };
    write_vocab_and_config();
    write_squad(TMP "train.json", data, 8);
    const char *common = "--vocab " TMP "vocab.txt --config " TMP "config.json --max_seq_length 32 --doc_stride 8 "
                         "--max_query_length 10 --train_batch_size 4 --learning_rate 3e-3 --warmup_proportion 0 --seed 7";
    char args[2048];
    snprintf(args, sizeof args, "--do_train --do_predict --train_file " TMP "train.json --predict_file " TMP "train.json %s "
             "--steps 30 --save_every 15 --keep 5 --output_dir " TMP "run", common);
    int rc = run(args, TMP "train.out");
    int one;
    char *out = slurp(TMP "train.out", NULL), *err = slurp_err(TMP "train.out.err", &one);
    CHECK(rc == 0 && out && strstr(out, "step     30/30") && strstr(out, "summary:"), "squad --do_train --do_predict, 30 steps (exit %d%s%s)", rc, err && *err ? ": " : "", err ? err : "");
    CHECK(out && strstr(out, "8 questions, 8 used") && strstr(out, "windows, "), "training data: 8 questions, long context split into windows");
    bert_st st;
    int ok = !bert_st_open(&st, TMP "run/model.safetensors");
    const bert_st_tensor *w = ok ? bert_st_find(&st, "qa_outputs.weight") : NULL, *b = ok ? bert_st_find(&st, "qa_outputs.bias") : NULL;
    CHECK(w && b && w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 32 && b->shape[0] == 2 && bert_st_find(&st, "bert.encoder.layer.1.output.LayerNorm.weight"),
          "model.safetensors holds HF BertForQuestionAnswering names (bert.*, qa_outputs.weight (2,32), qa_outputs.bias (2))");
    if (ok) bert_st_close(&st);
    char *log = slurp(TMP "run/log.jsonl", NULL);
    double first = -1, last = -1;
    for (char *s = log; s && (s = strstr(s, "\"loss\": ")); s += 8) { double v = atof(s + 8); if (first < 0) first = v; last = v; }
    CHECK(first > 0 && last < 0.5 * first, "the training loss falls (first step %.3f, last %.3f)", first, last);
    char *pred = slurp(TMP "run/predictions.json", NULL), *nbest = slurp(TMP "run/nbest_predictions.json", NULL);
    bert_json *pj = NULL, *nj = NULL;
    CHECK(pred && nbest && !bert_json_parse(&pj, pred, strlen(pred)) && !bert_json_parse(&nj, nbest, strlen(nbest)) && pj->count == 8 &&
          nj->count == 8 && nj->child[0].type == BERT_JSON_ARRAY && bert_json_get(&nj->child[0].child[0], "probability"),
          "predictions.json (8 answers) and nbest_predictions.json (text, probability, start/end logit) are valid JSON");
    CHECK(out && strstr(out, "{\"exact_match\": ") && strstr(out, "windows/s"), "scored after prediction, throughput reported");
    bert_json_free(pj); bert_json_free(nj);
    free(pred); free(nbest); free(log); free(out); free(err);

    // resume from the step-15 checkpoint: the same final weights, bit for bit
    if (system("rm -rf " TMP "resume && mkdir -p " TMP "resume && cp -r " TMP "run/ckpt-00000015 " TMP "resume/")) {}
    snprintf(args, sizeof args, "--do_train --train_file " TMP "train.json %s --steps 30 --save_every 15 --resume --output_dir " TMP "resume", common);
    rc = run(args, TMP "resume.out");
    size_t na = 0, nb = 0;
    char *a = slurp(TMP "run/model.safetensors", &na), *bb = slurp(TMP "resume/model.safetensors", &nb);
    out = slurp(TMP "resume.out", NULL);
    CHECK(rc == 0 && out && strstr(out, "resumed from") && a && bb && na == nb && !memcmp(a, bb, na),
          "--resume from step 15 gives bit-identical weights at step 30");
    free(a); free(bb); free(out);
}

static void test_bad_input(void) {
    write_vocab_and_config();
    const char *V = "--vocab " TMP "vocab.txt";
    spit(TMP "bad_start.json", "{\"version\": \"1.1\", \"data\": [{\"paragraphs\": [{\"context\": \"The cat sat on the red mat.\", \"qas\": ["
                               "{\"id\": \"ok\", \"question\": \"Where?\", \"answers\": [{\"text\": \"the red mat\", \"answer_start\": 15}]},"
                               "{\"id\": \"shifted\", \"question\": \"Who?\", \"answers\": [{\"text\": \"dog\", \"answer_start\": 4}]},"
                               "{\"id\": \"outside\", \"question\": \"Who?\", \"answers\": [{\"text\": \"cat\", \"answer_start\": 999}]}]},"
                               "{\"context\": \"\", \"qas\": [{\"id\": \"e\", \"question\": \"Who?\", \"answers\": [{\"text\": \"x\", \"answer_start\": 0}]}]}]}]}\n");
    char args[1024];
    snprintf(args, sizeof args, "--dump_features " TMP "bad.txt --predict_file " TMP "bad_start.json %s", V);
    int rc = run(args, TMP "bad.out");
    int one;
    char *out = slurp(TMP "bad.out", NULL), *err = slurp_err(TMP "bad.out.err", &one);
    CHECK(rc == 0 && err && strstr(err, "question shifted: answer 'dog' is not at answer_start 4 (skipped for training)") &&
          strstr(err, "question outside: answer_start 999 is outside its context of 27 characters (skipped)") &&
          strstr(err, "data[0].paragraphs[1] has an empty context: its 1 questions get no windows") &&
          out && strstr(out, "4 questions -> 3 windows") && strstr(out, "1 answers not found, 1 bad answer_start"),
          "answer_start not matching its text, outside the context, an empty context: warned, counted, skipped");
    free(out); free(err);

    struct { const char *json, *want; } bad[] = {
        { "{\"data\": [{\"paragraphs\": [{\"context\": \"a\", \"qas\": [{\"id\": \"q1\", \"answers\": []}]}]}]}",
          "data[0].paragraphs[0].qas[0] (id q1): no \"question\" string" },
        { "{\"data\": [{\"paragraphs\": [{\"qas\": []}]}]}", "data[0].paragraphs[0]: no \"context\" string" },
        { "{\"data\": [{\"title\": \"x\"}]}", "data[0]: no \"paragraphs\" array" },
        { "{\"data\": [{\"paragraphs\": [{\"context\": \"a\", \"qas\": [{\"id\": \"q1\", \"question\": \"w\", \"answers\": "
          "[{\"text\": \"a\", \"answer_start\": 0.5}]}]}]}]}", "answers[0]: answer_start is not an integer" },
        { "{\"version\": \"1.1\", \"data\": [\n{\"paragraphs\": [\n{\"context\": \"bad \xff here\", \"qas\": []}]}]}", ":3:18: invalid UTF-8" },
        { "{\"version\": \"1.1\"}", "no \"data\" array (not a SQuAD file)" },
        { "[1, 2", ":1:6: " },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spit(TMP "bad.json", bad[i].json);
        snprintf(args, sizeof args, "--dump_features " TMP "bad.txt --predict_file " TMP "bad.json %s", V);
        rc = run(args, TMP "bad.out");
        char *e = slurp_err(TMP "bad.out.err", &one);
        CHECK(rc == 1 && one && strstr(e, bad[i].want) && strstr(e, "build/test_squad_bad.json"),
              "bad file %zu: exit 1, one line naming the file and \"%s\" (exit %d: %s)", i + 1, bad[i].want, rc, e ? e : "");
        free(e);
    }
    FILE *f = fopen(TMP "config_tv1.json", "wb");
    fprintf(f, "{\"vocab_size\": %d, \"hidden_size\": 32, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
               "\"intermediate_size\": 64, \"max_position_embeddings\": 64, \"type_vocab_size\": 1}\n", NWORDS);
    fclose(f);
    spit(TMP "pred_bad1.json", "[\"not\", \"an object\"]");
    spit(TMP "pred_bad2.json", "{\"ok\": 3}");
    struct { const char *args, *want; } cmd[] = {
        { "--eval " TMP "bad_start.json " TMP "pred_bad1.json", "pred_bad1.json: not a JSON object of question id -> answer text" },
        { "--eval " TMP "bad_start.json " TMP "pred_bad2.json", "pred_bad2.json: the answer of question 'ok' is not a string" },
        { "--eval " TMP "nothere.json " TMP "pred_bad2.json", "nothere.json: No such file" },
        { "--eval " TMP "bad_start.json", "usage: squad --eval DATA.json PREDICTIONS.json" },
        { "--do_predict --predict_file " TMP "nothere.json --vocab " TMP "vocab.txt --config " TMP "config.json --max_seq_length 32 --max_query_length 10 --output_dir " TMP "bad_run",
          "nothere.json: No such file" },
        { "--do_predict --predict_file " TMP "bad_start.json --vocab " VOCAB " --config " TMP "config.json --output_dir " TMP "bad_run",
          "has 30522 tokens but the model's vocab_size is" },
        { "--do_train --train_file " TMP "bad_start.json --vocab " TMP "vocab.txt --output_dir " TMP "bad_run", "give --init" },
        { "--do_predict --predict_file " TMP "bad_start.json --vocab " TMP "vocab.txt --debug_logits gold", "--debug_logits: 'gold'" },
        { "--do_train --vocab " TMP "vocab.txt", "--do_train needs --train_file" },
        { "--frobnicate 3", "unknown flag --frobnicate" },
        // a stream is read only up to the JSON reader's limit (it used to grow until memory ran out)
        { "--dump_features " TMP "bad.txt --predict_file /dev/zero --vocab " TMP "vocab.txt", "/dev/zero: not a regular file (a device)" },
        // SQuAD's windows are pairs: one token type would abort in bert_embed on the first batch
        { "--do_predict --predict_file " TMP "bad_start.json --vocab " TMP "vocab.txt --config " TMP "config_tv1.json --max_seq_length 32 "
          "--max_query_length 10 --output_dir " TMP "bad_run", "config_tv1.json: type_vocab_size is 1: SQuAD's windows need token types 0" },
    };
    for (size_t i = 0; i < sizeof cmd / sizeof cmd[0]; i++) {
        if (strstr(cmd[i].args, VOCAB) && !file_exists(VOCAB)) continue;
        rc = run(cmd[i].args, TMP "bad.out");
        char *e = slurp_err(TMP "bad.out.err", &one);
        CHECK(rc == 1 && one && strstr(e, cmd[i].want),
              "squad %s: exit 1, one line with \"%s\" (exit %d: %s)", cmd[i].args, cmd[i].want, rc, e ? e : "");
        free(e);
    }
}

// ----------------------------------------------------------------------------
// long contexts: linear where the windows, the answer span and the answer check were quadratic

static const char *const cycle[] = { "cat", "dog", "sat", "on", "the", "red", "mat" };

// one question on a context of n words from cycle (shifted by 'c' -> 'x' in the answer when
// mangle: then it matches nowhere); the answer is the whole context, or "red mat" past the middle
static void write_long_squad(const char *path, int n, int whole, int mangle) {
    FILE *f = fopen(path, "wb");
    size_t at = 0, answer_at = 0;
    fprintf(f, "{\"version\": \"1.1\", \"data\": [{\"title\": \"t\", \"paragraphs\": [{\"context\": \"");
    for (int i = 0; i < n; i++) {
        const char *w = cycle[i % 7];
        if (!whole && !answer_at && i > n / 2 && !strcmp(w, "red")) answer_at = at + (i > 0);
        at += (size_t)fprintf(f, i ? " %s" : "%s", w);
    }
    fprintf(f, "\", \"qas\": [{\"id\": \"q0\", \"question\": \"what is the cat?\", \"answers\": [{\"text\": \"");
    if (!whole) fprintf(f, "red mat");
    for (int i = 0; whole && i < n; i++) {
        const char *w = cycle[i % 7];
        fprintf(f, i ? " %s" : "%s", mangle && w[0] == 'c' ? "xat" : w);
    }
    fprintf(f, "\", \"answer_start\": %zu}]}]}]}]}\n", answer_at);
    fclose(f);
}

static void test_long_contexts(void) {
    write_vocab_and_config();
    struct { const char *name, *flags, *want; } cases[] = {
        // 32945 windows one piece apart: each piece's max-context window among its 56, not all 32945
        { "max-context", "--max_seq_length 64 --max_query_length 8 --doc_stride 1",
          "1 questions -> 32945 windows, 2108480 tokens, 32890 labelled at [CLS], 33000 max-context pieces, 0 answers not found" },
        // an answer of 400000 pieces that matches nowhere: the tightening tries each start once
        { "answer span", "", "1 questions -> 3124 windows, 1199496 tokens, 3124 labelled at [CLS], 400000 max-context pieces, 1 answers not found" },
        // an answer of 1000000 a's and a b inside a word of 2000000 a's: the "could not find" check
        { "answer check", "", "1 questions -> 1 windows, 6 tokens, 0 labelled at [CLS], 1 max-context pieces, 1 answers not found" },
    };
    write_long_squad(TMP "long0.json", 33000, 0, 0);
    write_long_squad(TMP "long1.json", 400000, 1, 1);
    FILE *f = fopen(TMP "long2.json", "wb");
    fprintf(f, "{\"data\": [{\"paragraphs\": [{\"context\": \"");
    for (int i = 0; i < 2000000; i++) putc('a', f);
    fprintf(f, "\", \"qas\": [{\"id\": \"q0\", \"question\": \"what?\", \"answers\": [{\"text\": \"");
    for (int i = 0; i < 1000000; i++) putc('a', f);
    fprintf(f, "b\", \"answer_start\": 0}]}]}]}]}\n");
    fclose(f);
    for (int c = 0; c < 3; c++) {
        char args[1024];
        snprintf(args, sizeof args, "--dump_features /dev/null --predict_file " TMP "long%d.json --vocab " TMP "vocab.txt %s", c, cases[c].flags);
        double t0 = bert_time_s();
        int rc = run(args, TMP "long.out");
        double dt = bert_time_s() - t0;
        char *out = slurp(TMP "long.out", NULL);
        // the quadratic versions took a minute or more each; these take about a second (20 s: a busy machine)
        CHECK(rc == 0 && out && strstr(out, cases[c].want) && dt < 20,
              "long context, %s: %.1f s (< 20), %s", cases[c].name, dt, out && rc == 0 ? cases[c].want : "failed");
        free(out);
    }
}

// a tokenizer failure names the file and the text: out of memory in a word of 20 MB (under an
// address-space limit the rest of the run fits in); skipped where the limit cannot apply
static void test_tokenizer_error(void) {
    if (strstr(bin, "/san/")) { printf("  skipped: the tokenizer's out-of-memory error (ulimit -v and the sanitizers' shadow memory do not mix)\n"); return; }
    write_vocab_and_config();
    FILE *f = fopen(TMP "huge_word.json", "wb");
    fprintf(f, "{\"data\": [{\"paragraphs\": [{\"context\": \"");
    for (int i = 0; i < 20000000; i++) putc('a', f);
    fprintf(f, "\", \"qas\": [{\"id\": \"q0\", \"question\": \"what?\", \"answers\": [{\"text\": \"a\", \"answer_start\": 0}]}]}]}]}\n");
    fclose(f);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "ulimit -v 600000 && exec %s --dump_features /dev/null --predict_file " TMP "huge_word.json --vocab " TMP "vocab.txt "
             "> " TMP "huge.out 2> " TMP "huge.out.err", bin);
    int st = system(cmd), rc = st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), one;
    char *e = slurp_err(TMP "huge.out.err", &one);
    if (rc == 0) printf("  note: a 20 MB word tokenized within 600 MB: the tokenizer's error was not provoked\n");
    else CHECK(rc == 1 && one && e && strstr(e, "squad: " TMP "huge_word.json: data[0].paragraphs[0]: context word 0: out of memory") == e,
               "the tokenizer running out of memory: exit 1, one line naming the file and the word (exit %d: %.200s)", rc, e ? e : "");
    free(e);
}

int main(int argc, char **argv) {
    (void)argc;
    check_find_binary(argv[0], "squad");
    test_transpose();
    test_span_head();
    test_metric_cases();
    test_bad_input();
    test_long_contexts();
    test_tokenizer_error();
    test_training();
    test_dev();
    if (system("rm -rf build/test_squad_*")) {}
    return check_summary();
}
