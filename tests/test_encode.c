// test_encode.c - examples/encode.c against tests/ref/encode_ref.py: pooled [CLS] and mean-pooled
// embeddings of tests/data/encode_lines.txt (pairs, accents, CJK, emoji, an empty line, two lines
// cut at --max_seq_length 24) on the weights of tests/ref/pretrain_init.safetensors, batched with
// padding (batch 3) and one line at a time; the .npy output; --ids; bad input; lost writes (/dev/full).
#define _DEFAULT_SOURCE
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include <sys/stat.h>
#include "check.h"
#include "check_exec.h"

#define VOCAB "../shared/data/vocab/bert_uncased_vocab.txt"
#define FIXTURE "tests/ref/encode_ref.safetensors"
#define LINES "tests/data/encode_lines.txt"
#define N 8
#define C 32
#define MODEL "--model tests/ref/pretrain_init.safetensors --vocab " VOCAB " --input " LINES
// reads "pooled"/"mean" arrays of every JSON line into out (N,C); returns the lines parsed
static int parse_jsonl(const char *path, const char *key, float *out) {
    char *s = slurp(path, NULL);
    int lines = 0;
    for (char *line = s; line && *line && lines < N; lines++) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        bert_json *j;
        if (bert_json_parse(&j, line, len)) { printf("         line %d: %s\n", lines + 1, bert_last_error()); break; }
        const bert_json *a = bert_json_get(j, key);
        for (int c = 0; a && c < C && c < a->count; c++) out[lines * C + c] = (float)a->child[c].number;
        int ok = a && a->count == C;
        bert_json_free(j);
        if (!ok) break;
        line = nl ? nl + 1 : line + len;
    }
    free(s);
    return lines;
}

int main(int argc, char **argv) {
    (void)argc;
    check_find_binary(argv[0], "encode");
    if (!file_exists(VOCAB)) { printf("  skipped: ../shared/data absent (%s): encode tests not run\n", VOCAB); return check_summary(); }
    if (!file_exists(FIXTURE)) { CHECK(0, "%s missing (make ref)", FIXTURE); return check_summary(); }
    bert_st st;
    if (bert_st_open(&st, FIXTURE)) { CHECK(0, "%s", bert_last_error()); return check_summary(); }
    static float ref_pooled[N * C], ref_mean[N * C], got[N * C];
    int64_t shape[2] = { N, C };
    CHECK(!bert_st_read_f32(&st, "pooled", ref_pooled, shape, 2) && !bert_st_read_f32(&st, "mean", ref_mean, shape, 2), "fixture read");
    const char *common = "--model tests/ref/pretrain_init.safetensors --vocab " VOCAB " --input " LINES " --max_seq_length 24";
    char args[1024];
    for (int batch = 1; batch <= 3; batch += 2) {
        snprintf(args, sizeof args, "%s --pooling both --batch_size %d", common, batch);
        int rc = run(args, "build/encode_test.jsonl");
        CHECK(rc == 0, "encode --pooling both --batch_size %d (exit %d)", batch, rc);
        char label[96];
        snprintf(label, sizeof label, "pooled [CLS], batch %d, vs PyTorch", batch);
        if (parse_jsonl("build/encode_test.jsonl", "pooled", got) == N) check_close(label, got, ref_pooled, N * C, 1e-5, 1e-5);
        else CHECK(0, "%s: 8 JSON lines with 32-float \"pooled\"", label);
        snprintf(label, sizeof label, "mean of the last layer, batch %d, vs PyTorch", batch);
        if (parse_jsonl("build/encode_test.jsonl", "mean", got) == N) check_close(label, got, ref_mean, N * C, 1e-5, 1e-5);
        else CHECK(0, "%s: 8 JSON lines with 32-float \"mean\"", label);
    }
    // --precision int8 and bf16: every line's embedding within cosine 0.99 of PyTorch's fp32 one (or,
    // without the instructions in this build, fp32 with a note)
    static const char *const precisions[] = { "int8", "bf16" };
    int rq = 0;
    char *qerr = NULL;
    for (int pi = 0; pi < 2; pi++) {
        snprintf(args, sizeof args, "%s --pooling both --precision %s", common, precisions[pi]);
        rq = run(args, "build/encode_test.lowp.jsonl");
        qerr = slurp("build/encode_test.lowp.jsonl.err", NULL);
        int fell_back = qerr && strstr(qerr, "using fp32");
        double worst = 1.0;
        int lines = parse_jsonl("build/encode_test.lowp.jsonl", "mean", got);
        for (int i = 0; i < lines && i < N; i++) {
            double ab = 0, aa = 0, bb = 0;
            for (int c = 0; c < C; c++) { ab += (double)got[i * C + c] * ref_mean[i * C + c]; aa += (double)got[i * C + c] * got[i * C + c]; bb += (double)ref_mean[i * C + c] * ref_mean[i * C + c]; }
            double cs = ab / sqrt(aa * bb + 1e-300);
            if (cs < worst) worst = cs;
        }
        CHECK(rq == 0 && lines == N && worst >= 0.99, "encode --precision %s (%s): every line's mean embedding within cosine 0.99 of "
              "PyTorch's fp32 (worst %.5f, exit %d)", precisions[pi], fell_back ? "no kernel: fp32 with a note" :
              pi ? bert_bf16_kernel_name() : bert_int8_kernel_name(), worst, rq);
        free(qerr);
    }
    snprintf(args, sizeof args, "%s --precision fp16", common);
    rq = run(args, "build/encode_test.fp16.jsonl");
    qerr = slurp("build/encode_test.fp16.jsonl.err", NULL);
    CHECK(rq == 1 && qerr && strstr(qerr, "--precision fp16: fp32, bf16 or int8"), "--precision fp16: refused with one line (exit %d)", rq);
    free(qerr);

    // a headless BertModel file (HF's BertModel / sentence-transformers: no cls.* heads, names without
    // "bert."; its config in config.json beside it): the same embeddings, and a note on stderr
    {
        bert_model *full = bert_model_load("tests/ref/pretrain_init.safetensors", NULL);
        int saved = 0;
        if (full) {
            bert_st_entry *e = (bert_st_entry *)calloc((size_t)full->num_tensors, sizeof *e);
            int n = 0;
            for (int t = 0; t < full->num_tensors; t++) {
                const char *name = full->names[t];
                if (!strncmp(name, "cls.", 4)) continue;
                e[n].name = !strncmp(name, "bert.", 5) ? name + 5 : name;
                e[n].dtype = BERT_DT_F32;
                e[n].ndim = full->tensors[t].ndim;
                for (int d = 0; d < e[n].ndim; d++) e[n].shape[d] = full->tensors[t].shape[d];
                e[n].data = full->tensors[t].data;
                n++;
            }
            char cfg[1024];
            mkdir("build/encode_test_headless", 0777);
            FILE *cf = fopen("build/encode_test_headless/config.json", "w");
            saved = cf && bert_config_to_json(&full->config, cfg, sizeof cfg) > 0 && fputs(cfg, cf) >= 0 &&
                    !bert_st_save("build/encode_test_headless/model.safetensors", e, n, NULL, 0);
            if (cf) fclose(cf);
            free(e);
            bert_model_free(full);
        }
        snprintf(args, sizeof args, "--model build/encode_test_headless/model.safetensors --vocab " VOCAB " --input " LINES
                 " --max_seq_length 24 --pooling both --batch_size 3");
        int rh = run(args, "build/encode_test.headless.jsonl");
        char *herr = slurp("build/encode_test.headless.jsonl.err", NULL);
        char *a = slurp("build/encode_test.jsonl", NULL), *h = slurp("build/encode_test.headless.jsonl", NULL);
        CHECK(saved && rh == 0 && a && h && !strcmp(a, h) && herr && strstr(herr, "has no pretraining heads"),
              "a headless BertModel file (no cls.*, no \"bert.\" prefix, config.json beside it): the same embeddings, "
              "with a note on stderr (exit %d)", rh);
        free(herr); free(a); free(h);
    }

    // a sentence-transformers directory (model.safetensors without heads, config.json, vocab.txt,
    // tokenizer_config.json, modules.json with Pooling (mean) and Normalize): --model DIR alone gives
    // PyTorch's mean-pooled vectors, L2-normalised
    {
        const char *d = "build/encode_test_st";
        char path[256];
        mkdir(d, 0777);
        snprintf(path, sizeof path, "%s/1_Pooling", d);
        mkdir(path, 0777);
        static const char *const files[][2] = {
            { "tokenizer_config.json", "{\"do_lower_case\": true, \"model_max_length\": 512}" },
            { "modules.json", "[{\"idx\": 0, \"name\": \"0\", \"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"}, "
                              "{\"idx\": 1, \"name\": \"1\", \"path\": \"1_Pooling\", \"type\": \"sentence_transformers.models.Pooling\"}, "
                              "{\"idx\": 2, \"name\": \"2\", \"path\": \"2_Normalize\", \"type\": \"sentence_transformers.models.Normalize\"}]" },
            { "1_Pooling/config.json", "{\"word_embedding_dimension\": 32, \"pooling_mode_cls_token\": false, \"pooling_mode_mean_tokens\": true, "
                                       "\"pooling_mode_max_tokens\": false, \"pooling_mode_mean_sqrt_len_tokens\": false}" },
        };
        int made = 1;
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/%s", d, files[i][0]);
            FILE *f = fopen(path, "w");
            made &= f && fputs(files[i][1], f) >= 0;
            if (f) fclose(f);
        }
        size_t vn = 0;
        char *vocab = slurp(VOCAB, &vn);
        snprintf(path, sizeof path, "%s/vocab.txt", d);
        FILE *vf = fopen(path, "wb");
        made &= vocab && vf && fwrite(vocab, 1, vn, vf) == vn;
        if (vf) fclose(vf);
        free(vocab);
        char *m = slurp("build/encode_test_headless/model.safetensors", &vn), *c = slurp("build/encode_test_headless/config.json", NULL);
        snprintf(path, sizeof path, "%s/model.safetensors", d);
        FILE *mf = fopen(path, "wb");
        made &= m && c && mf && fwrite(m, 1, vn, mf) == vn;
        if (mf) fclose(mf);
        snprintf(path, sizeof path, "%s/config.json", d);
        FILE *cf = fopen(path, "w");
        made &= cf && c && fputs(c, cf) >= 0;
        if (cf) fclose(cf);
        free(m); free(c);
        int rs = run("--model build/encode_test_st --input " LINES " --max_seq_length 24", "build/encode_test.st.jsonl");
        static float want[N * C];
        for (int i = 0; i < N; i++) {
            double ss = 0;
            for (int k = 0; k < C; k++) ss += (double)ref_mean[i * C + k] * ref_mean[i * C + k];
            for (int k = 0; k < C; k++) want[i * C + k] = (float)(ref_mean[i * C + k] / sqrt(ss));
        }
        int lines_st = parse_jsonl("build/encode_test.st.jsonl", "mean", got);
        CHECK(made && rs == 0 && lines_st == N, "encode --model DIR (a sentence-transformers directory, no other flag): exit %d, %d lines", rs, lines_st);
        if (lines_st == N) check_close("sentence-transformers mean pooling + Normalize vs PyTorch's mean, normalised", got, want, N * C, 1e-5, 1e-5);
        // max pooling: every component at least the mean over the same tokens, and some strictly above
        static float mx[N * C];
        rs = run("--model build/encode_test_st --input " LINES " --max_seq_length 24 --pooling max", "build/encode_test.max.jsonl");
        int lines_max = parse_jsonl("build/encode_test.max.jsonl", "max", mx), below = 0, above = 0;
        for (int k = 0; lines_max == N && k < N * C; k++) { below += mx[k] < ref_mean[k] - 1e-5f; above += mx[k] > ref_mean[k] + 1e-3f; }
        CHECK(rs == 0 && lines_max == N && below == 0 && above > N * C / 2, "--pooling max: every component >= the mean pooling's "
              "(%d below, %d of %d above, exit %d)", below, above, N * C, rs);
        rs = run("--model build/encode_test_headless", "build/encode_test.nodir.jsonl");
        CHECK(rs == 1, "a model directory without vocab.txt and no --vocab: refused (exit %d)", rs);
    }

    char *err = slurp("build/encode_test.jsonl.err", NULL);
    CHECK(err && strstr(err, "line 6: 5 tokens over --max_seq_length 24 were cut") && strstr(err, "2 of 8 lines"),
          "overlong lines are cut with a warning naming each, and counted");
    free(err);

    // .npy: a 128-byte v1.0 header with shape (8, 32), then the rows
    snprintf(args, sizeof args, "%s --output build/encode_test.npy", common);
    int rc = run(args, "build/encode_test.out");
    size_t n = 0;
    char *npy = slurp("build/encode_test.npy", &n);
    int ok = rc == 0 && npy && n == 128 + sizeof got && !memcmp(npy, "\x93NUMPY\x01\x00", 8) && strstr(npy + 10, "'shape': (8, 32)");
    if (ok) { memcpy(got, npy + 128, sizeof got); check_close("npy rows (pooled) vs PyTorch", got, ref_pooled, N * C, 1e-5, 1e-5); }
    CHECK(ok, "encode --output x.npy: header '<f4', shape (8, 32), 8x32 floats (exit %d, %zu bytes)", rc, n);
    free(npy);

    // --ids: the tokenizer as a command, no model
    rc = run("--ids --vocab " VOCAB " --input " LINES " --max_seq_length 24", "build/encode_test.ids");
    char *ids = slurp("build/encode_test.ids", NULL);
    const char *want = bert_st_meta(&st, "ids");
    size_t wl = want ? strlen(want) : 0;
    CHECK(rc == 0 && ids && want && !strncmp(ids, want, wl) && ids[wl] == '\n' && !ids[wl + 1],
          "--ids prints the reference ids, [CLS]/[SEP] included, one line per input line");
    free(ids);
    bert_st_close(&st);

    // models too small for the input: a 7-token vocab, one with 1 position, one with 1 token type
    FILE *vf = fopen("build/encode_test.vocab", "w"), *lf = fopen("build/encode_test.pair", "w");
    if (vf) { fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\n", vf); fclose(vf); }
    if (lf) { fputs("a b\na ||| b\n", lf); fclose(lf); }
    for (int k = 0; k < 2; k++) {
        bert_config c = bert_config_default();
        c.vocab_size = 7; c.hidden_size = 4; c.num_hidden_layers = 1; c.num_attention_heads = 1; c.intermediate_size = 4;
        c.max_position_embeddings = k ? 16 : 1; c.type_vocab_size = k ? 1 : 2;
        bert_model *sm = bert_model_create(&c, 1);
        CHECK(sm && bert_model_save(sm, k ? "build/encode_test_types1.safetensors" : "build/encode_test_pos1.safetensors") == BERT_OK,
              "write a model with %s", k ? "type_vocab_size 1" : "max_position_embeddings 1");
        bert_model_free(sm);
    }
    {   // finite weights that overflow in the forward pass (every one scaled by 1e30): NaN/Inf outputs
        bert_config c = bert_config_default();
        c.vocab_size = 7; c.hidden_size = 4; c.num_hidden_layers = 1; c.num_attention_heads = 1; c.intermediate_size = 4;
        c.max_position_embeddings = 16;
        bert_model *sm = bert_model_create(&c, 1);
        for (size_t i = 0; sm && i < sm->num_params; i++) sm->params[i] = sm->params[i] * 1e30f + 1e30f;
        CHECK(sm && bert_model_save(sm, "build/encode_test_huge.safetensors") == BERT_OK, "write a model with huge but finite weights");
        bert_model_free(sm);
    }

    // bad input: one clear line, exit 1
    struct { const char *args, *want; } bad[] = {
        { "--model build/encode_test_pos1.safetensors --vocab build/encode_test.vocab --input build/encode_test.pair",
          "max_position_embeddings 1 leaves no room" },
        { "--model build/encode_test_types1.safetensors --vocab build/encode_test.vocab --input build/encode_test.pair",
          "build/encode_test.pair:2: a sentence pair needs type_vocab_size 2 or more" },
        { "--vocab nothere.txt --ids", "nothere.txt" },
        { "--model tests/ref/tiny.safetensors --vocab " VOCAB, "vocab_size is 112" },
        { "--model tests/ref/pretrain_init.safetensors --vocab " VOCAB " --pooling min", "--pooling: 'min'" },
        { "--model nothere.safetensors --vocab " VOCAB, "nothere.safetensors" },
        { "--ids --vocab " VOCAB " --input missing_lines.txt", "missing_lines.txt" },
        { "--vocab " VOCAB, "--model is required" },
        { "--model build/encode_test_huge.safetensors --vocab build/encode_test.vocab --input build/encode_test.pair",
          "build/encode_test_huge.safetensors: the model's output has" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = run(bad[i].args, "build/encode_test.bad");
        char *e = slurp("build/encode_test.bad.err", NULL);
        CHECK(rc == 1 && e && strstr(e, bad[i].want) && strchr(e, '\n') == e + strlen(e) - 1,
              "%s: exit 1, one line with \"%s\" (exit %d: %s)", bad[i].args, bad[i].want, rc, e ? e : "");
        free(e);
    }
    // no partial file under the output name: a run that fails mid-file leaves neither OUT nor OUT.tmp
    rc = run("--model build/encode_test_types1.safetensors --vocab build/encode_test.vocab --input build/encode_test.pair "
             "--output build/encode_test.fail.npy", "build/encode_test.bad");
    CHECK(rc == 1 && !file_exists("build/encode_test.fail.npy") && !file_exists("build/encode_test.fail.npy.tmp"),
          "a run that fails after opening --output leaves no file under the name nor its .tmp (exit %d)", rc);
    CHECK(!file_exists("build/encode_test.npy.tmp"), "a finished .npy is renamed into place, no .tmp left");

    // a lost write (a full disk: /dev/full as --output, as stdout, behind an .npy name) is exit 1, one line
    remove("build/encode_test.full.npy");
    if (file_exists("/dev/full") && !symlink("/dev/full", "build/encode_test.full.npy")) {
        struct { const char *args, *to, *want; } full[] = {
            { "--ids --vocab " VOCAB " --input " LINES " --output /dev/full", "build/encode_test.full", "/dev/full: write failed" },
            { "--ids --vocab " VOCAB " --input " LINES, "/dev/full", "stdout: write failed" },
            { MODEL, "/dev/full", "stdout: write failed" },
            { MODEL " --output build/encode_test.full.npy", "build/encode_test.full", "build/encode_test.full.npy: write failed" },
        };
        for (size_t i = 0; i < sizeof full / sizeof full[0]; i++) {
            char cmd[2048];
            snprintf(cmd, sizeof cmd, "%s %s > %s 2> build/encode_test.full.err", bin, full[i].args, full[i].to);
            int status = system(cmd);
            char *e = slurp("build/encode_test.full.err", NULL);
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1 && e && strstr(e, full[i].want) && strchr(e, '\n') == e + strlen(e) - 1,
                  "%s > %s: exit 1, one line with \"%s\" (%s)", full[i].args, full[i].to, full[i].want, e ? e : "");
            free(e);
        }
    } else printf("  skipped: no /dev/full: the full-disk checks not run\n");
    if (system("rm -f build/encode_test.* build/encode_test_*.safetensors")) {}
    return check_summary();
}
