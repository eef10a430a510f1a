// test_pretrain.c - examples/pretrain.c end to end on Google's 60-record TFRecord:
//   - per-step losses and final weights against the PyTorch reference (tests/ref/pretrain_ref.py)
//   - a run SIGKILLed after step s and resumed is bit-identical at step 2s to an uninterrupted run
//   - accumulation: 2 micro-batches of 4 give the same update as one batch of 8 (dropout off)
//   - SIGINT saves a checkpoint and exits 130; NaN steps are skipped, repeated ones stop the run
//   - bad flags and files give one clear error line and exit 1
// It runs the pretrain binary built next to this one (build/pretrain or build/san/pretrain).
#define _DEFAULT_SOURCE   // mkdtemp, kill, fork
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "check.h"
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
#include <fcntl.h>

#define DATA "../shared/data/pretrain_tfrecord/tf_examples.tfrecord"
static char bin[600], dir[64];

static int file_exists(const char *p) { FILE *f = fopen(p, "rb"); if (f) fclose(f); return f != NULL; }

// runs pretrain with args (output to dir/NAME.out); returns the exit status, or 128+signal
static int run(const char *name, const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s > %s/%s.out 2>&1", bin, args, dir, name);
    int st = system(cmd);
    if (st == -1) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path) {
    unsigned char *d; size_t n;
    return bert__read_file(path, &d, &n) ? NULL : (char *)d;
}

static int output_has(const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s.out", dir, name);
    char *s = slurp(path);
    int ok = s && strstr(s, text);
    if (!ok) printf("         output of %s:\n%s\n", name, s ? s : "(none)");
    free(s);
    return ok;
}

// the "key": value of the log line for step s (-1e30 if absent)
static double log_value(const char *out, int step, const char *key) {
    char path[256], pat[64];
    snprintf(path, sizeof path, "%s/%s/log.jsonl", dir, out);
    snprintf(pat, sizeof pat, "{\"step\": %d,", step);
    char *s = slurp(path), *line = s ? strstr(s, pat) : NULL;
    double v = -1e30;
    if (line) {
        char k[64];
        snprintf(k, sizeof k, "\"%s\": ", key);
        char *eol = strchr(line, '\n'), *at = strstr(line, k);
        if (at && (!eol || at < eol)) v = strtod(at + strlen(k), NULL);
    }
    free(s);
    return v;
}

static int files_equal(const char *a, const char *b) {
    unsigned char *x, *y; size_t nx, ny;
    if (bert__read_file(a, &x, &nx)) return 0;
    if (bert__read_file(b, &y, &ny)) { free(x); return 0; }
    int eq = nx == ny && !memcmp(x, y, nx);
    free(x); free(y);
    return eq;
}

static bert_model *load(const char *out, int step) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s/ckpt-%08d/model.safetensors", dir, out, step);
    bert_model *m = bert_model_load(path, NULL);
    if (!m) printf("         %s\n", bert_last_error());
    return m;
}

static void write_config(const char *name, float dropout) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "{\"vocab_size\": 30522, \"hidden_size\": 32, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
               "\"intermediate_size\": 64, \"hidden_act\": \"gelu\", \"hidden_dropout_prob\": %g, "
               "\"attention_probs_dropout_prob\": %g, \"max_position_embeddings\": 128, \"type_vocab_size\": 2, "
               "\"initializer_range\": 0.02}\n", (double)dropout, (double)dropout);
    fclose(f);
}

// ---------------------------------------------------------------------------- against PyTorch
static void test_reference(void) {
    const char *fix = "tests/ref/pretrain_ref.safetensors";
    if (!file_exists(fix) || !file_exists("tests/ref/pretrain_init.safetensors")) { printf("  skipped: %s absent (make ref)\n", fix); return; }
    char args[1024];
    snprintf(args, sizeof args, "--input " DATA " --init tests/ref/pretrain_init.safetensors --batch_size 4 "
             "--accumulation_steps 2 --steps 6 --optimizer lamb --lr 1e-3 --warmup_steps 2 --eval_records 4 --seed 7 "
             "--out %s/ref --print_every 1", dir);
    int rc = run("ref", args);
    CHECK(rc == 0, "pretrain on the reference's init and data order (exit %d)", rc);
    bert_st st;
    if (bert_st_open(&st, fix)) { CHECK(0, "%s: %s", fix, bert_last_error()); return; }
    float ref[6], got[6];
    int64_t six[1] = { 6 };
    const char *keys[] = { "losses", "mlm_losses", "nsp_losses" }, *logk[] = { "loss", "mlm_loss", "nsp_loss" };
    for (int k = 0; k < 3; k++) {
        if (bert_st_read_f32(&st, keys[k], ref, six, 1)) { CHECK(0, "%s: %s", fix, bert_last_error()); break; }
        for (int s = 0; s < 6; s++) got[s] = (float)log_value("ref", s + 1, logk[k]);
        char label[64];
        snprintf(label, sizeof label, "pretrain %s, 6 steps, vs PyTorch", keys[k]);
        check_close(label, got, ref, 6, 1e-5, 1e-5);
    }
    bert_model *m = load("ref", 6);
    if (m) {
        double worst = 0; int bad = 0;
        for (int t = 0; t < m->num_tensors; t++) {
            char name[200];
            snprintf(name, sizeof name, "final.%s", m->names[t]);
            size_t n = m->tensors[t].numel;
            float *r = (float *)malloc(n * sizeof(float));
            int64_t shape[2] = { m->tensors[t].shape[0], m->tensors[t].shape[1] };
            if (bert_st_read_f32(&st, name, r, shape, m->tensors[t].ndim)) { bad++; free(r); continue; }
            for (size_t i = 0; i < n; i++) {
                double d = fabs((double)m->tensors[t].data[i] - r[i]);
                if (d > worst) worst = d;
                if (!(d <= 1e-6 + 1e-4 * fabs(r[i]))) bad++;
            }
            free(r);
        }
        CHECK(bad == 0, "all %d weights after 6 LAMB steps match PyTorch (max abs diff %.2e; tol 1e-6 + 1e-4 rel)", m->num_tensors, worst);
        bert_model_free(m);
    }
    bert_st_close(&st);
}

// ---------------------------------------------------------------------------- kill and resume
static void test_kill_resume(void) {
    char base[1024], args[1200];
    snprintf(base, sizeof base, "--input " DATA " --config %s/tiny.json --batch_size 4 --accumulation_steps 2 --steps 8 "
             "--save_every 4 --eval_records 4 --lr 1e-3 --seed 3", dir);
    snprintf(args, sizeof args, "%s --out %s/whole", base, dir);
    int rc1 = run("whole", args);
    snprintf(args, sizeof args, "%s --out %s/killed --debug_kill_at_step 4", base, dir);
    int rc2 = run("killed", args);
    snprintf(args, sizeof args, "%s --out %s/killed --resume", base, dir);
    int rc3 = run("resumed", args);
    CHECK(rc1 == 0 && rc2 == 128 + SIGKILL && rc3 == 0, "uninterrupted run, run SIGKILLed after step 4, resumed run (exit %d, %d, %d)", rc1, rc2, rc3);
    CHECK(output_has("resumed", "resumed from") && output_has("resumed", "ckpt-00000004"), "the resumed run starts from the step-4 checkpoint");
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/whole/ckpt-00000008/model.safetensors", dir);
    snprintf(b, sizeof b, "%s/killed/ckpt-00000008/model.safetensors", dir);
    CHECK(files_equal(a, b), "weights at step 8: bit-identical");
    snprintf(a, sizeof a, "%s/whole/ckpt-00000008/state.safetensors", dir);
    snprintf(b, sizeof b, "%s/killed/ckpt-00000008/state.safetensors", dir);
    CHECK(files_equal(a, b), "optimizer moments, step and data cursor at step 8: bit-identical");
    int same = 1;
    for (int s = 5; s <= 8; s++) same &= log_value("whole", s, "loss") == log_value("killed", s, "loss") && log_value("whole", s, "loss") > 0;
    CHECK(same, "losses of steps 5-8 identical (step 8: %.9g vs %.9g)", log_value("whole", 8, "loss"), log_value("killed", 8, "loss"));
}

// a resume state whose data cursor was damaged (past the data, or negative) is refused with one line,
// never used to index the shuffled record order (it once read before the permutation's start)
static void patch_cursor(const char *from, const char *to, char digit_or_minus) {
    unsigned char *d; size_t n;
    if (bert__read_file(from, &d, &n)) { CHECK(0, "read %s", from); return; }
    char *at = n > 8 ? strstr((char *)d + 8, "\"cursor\":\"") : NULL;   // the header JSON, after its u64 length
    if (at) {
        at += strlen("\"cursor\":\"");
        if (digit_or_minus == '-') at[0] = '-';
        else for (char *q = at; *q >= '0' && *q <= '9'; q++) *q = digit_or_minus;
    }
    FILE *f = fopen(to, "wb");
    CHECK(at && f && fwrite(d, 1, n, f) == n, "wrote %s with a damaged cursor", to);
    if (f) fclose(f);
    free(d);
}

static void test_bad_cursor(void) {
    static const struct { const char *name; char patch; const char *want; } cases[] = {
        { "cursor_past", '9', "data cursor 99 is past the 56 training records" },
        { "cursor_negative", '-', "not a complete checkpoint" },
    };
    for (int i = 0; i < 2; i++) {
        char ck[256], cmd[700], args[1400], from[300], to[300];
        snprintf(ck, sizeof ck, "%s/%s/ckpt-00000004", dir, cases[i].name);
        snprintf(cmd, sizeof cmd, "mkdir -p %s && cp %s/whole/ckpt-00000004/model.safetensors %s/", ck, dir, ck);
        if (system(cmd) != 0) { CHECK(0, "%s", cmd); continue; }
        snprintf(from, sizeof from, "%s/whole/ckpt-00000004/state.safetensors", dir);
        snprintf(to, sizeof to, "%s/state.safetensors", ck);
        patch_cursor(from, to, cases[i].patch);
        snprintf(args, sizeof args, "--input " DATA " --config %s/tiny.json --batch_size 4 --accumulation_steps 2 --steps 8 "
                 "--eval_records 4 --lr 1e-3 --seed 3 --out %s/%s_run --resume_from %s", dir, dir, cases[i].name, ck);
        int rc = run(cases[i].name, args);
        CHECK(rc == 1 && output_has(cases[i].name, cases[i].want), "%s: resume refused with \"%s\" (exit %d)", cases[i].name, cases[i].want, rc);
    }
}

// ---------------------------------------------------------------------------- accumulation
static void test_accumulation(void) {
    char args[1200];
    const char *common = "--input " DATA " --batch_size %d --accumulation_steps %d --steps 3 --eval_records 4 --lr 1e-3 "
                         "--warmup_steps 0 --optimizer adamw --seed 5 --config %s/tiny_d0.json --out %s/%s";
    snprintf(args, sizeof args, common, 8, 1, dir, dir, "b8");
    int rc1 = run("b8", args);
    snprintf(args, sizeof args, common, 4, 2, dir, dir, "b4x2");
    int rc2 = run("b4x2", args);
    snprintf(args, sizeof args, common, 2, 4, dir, dir, "b2x4");
    int rc3 = run("b2x4", args);
    CHECK(rc1 == 0 && rc2 == 0 && rc3 == 0, "3 AdamW steps as 1x8, 2x4 and 4x2 (exit %d %d %d)", rc1, rc2, rc3);
    bert_model *m1 = load("b8", 3), *m2 = load("b4x2", 3), *m3 = load("b2x4", 3);
    if (m1 && m2 && m3) {
        float l1[3], l2[3], l3[3];
        for (int s = 0; s < 3; s++) { l1[s] = (float)log_value("b8", s + 1, "loss"); l2[s] = (float)log_value("b4x2", s + 1, "loss"); l3[s] = (float)log_value("b2x4", s + 1, "loss"); }
        check_close("step losses, 2 micro-batches of 4 vs one batch of 8", l2, l1, 3, 1e-5, 1e-5);
        check_close("step losses, 4 micro-batches of 2 vs one batch of 8", l3, l1, 3, 1e-5, 1e-5);
        check_close("weights after 3 steps, 2x4 vs 1x8", m2->params, m1->params, m1->num_params, 1e-5, 0);
        check_close("weights after 3 steps, 4x2 vs 1x8", m3->params, m1->params, m1->num_params, 1e-5, 0);
    } else CHECK(0, "checkpoints of the accumulation runs load");
    bert_model_free(m1); bert_model_free(m2); bert_model_free(m3);
}

// ---------------------------------------------------------------------------- SIGINT, NaN
static void test_sigint(void) {
    char out[256], logp[300];
    snprintf(out, sizeof out, "%s/int", dir);
    snprintf(logp, sizeof logp, "%s/log.jsonl", out);
    pid_t pid = fork();
    if (pid == 0) {
        char cfg[256];
        snprintf(cfg, sizeof cfg, "%s/tiny.json", dir);
        int fd = open("/dev/null", 1);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        execl(bin, bin, "--input", DATA, "--config", cfg, "--batch_size", "4", "--steps", "100000", "--eval_records", "4",
              "--out", out, (char *)NULL);
        _exit(99);
    }
    int started = 0;
    for (int i = 0; i < 600 && !started; i++) {   // wait for the first logged step (at most 60 s)
        usleep(100000);
        char *s = slurp(logp);
        started = s && strstr(s, "{\"step\": 2,");
        free(s);
    }
    kill(pid, SIGINT);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(started && WIFEXITED(st) && WEXITSTATUS(st) == 130, "SIGINT during training: exit status 130 (%d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    char *s = slurp(logp);
    int step = 0;
    const char *sum = s ? strstr(s, "\"summary\": \"interrupted\", \"step\": ") : NULL;
    if (sum) step = atoi(sum + strlen("\"summary\": \"interrupted\", \"step\": "));
    free(s);
    char ck[300];
    snprintf(ck, sizeof ck, "%s/ckpt-%08d/state.safetensors", out, step);
    CHECK(step > 0 && file_exists(ck), "a checkpoint was saved at the interrupted step %d", step);
}

static void test_nan(void) {
    char args[1200];
    snprintf(args, sizeof args, "--input " DATA " --config %s/tiny.json --batch_size 4 --steps 6 --eval_records 4 --out %s/nan1 "
             "--debug_nan_at_step 3", dir, dir);
    int rc = run("nan1", args);
    CHECK(rc == 0 && output_has("nan1", "update skipped (1 skipped so far)") && output_has("nan1", "1 skipped"),
          "one NaN gradient: warned, skipped, counted, the run finishes its 6 steps (exit %d)", rc);
    snprintf(args, sizeof args, "--input " DATA " --config %s/tiny.json --batch_size 4 --steps 20 --eval_records 4 --out %s/nan2 "
             "--debug_nan_at_step 3 --debug_nan_count 100 --max_bad_steps 4", dir, dir);
    rc = run("nan2", args);
    CHECK(rc == 1 && output_has("nan2", "4 steps in a row had NaN/Inf") && output_has("nan2", "no checkpoint had been saved yet"),
          "NaN every step: stops after 4 in a row, exit 1, says no checkpoint exists (%d)", rc);
}

// ---------------------------------------------------------------------------- raw text in
static void test_text(void) {
    char args[1200];
    snprintf(args, sizeof args, "--text ../shared/data/bert_sample/sample_text.txt --vocab ../shared/data/vocab/bert_uncased_vocab.txt "
             "--config %s/tiny.json --batch_size 8 --steps 2 --dupe_factor 2 --out %s/text", dir, dir);
    int rc = run("text", args);
    CHECK(rc == 0 && output_has("text", "text: 3 documents, 31 sentences") && output_has("text", "summary: done after 2 steps"),
          "--text sample_text.txt: create_pretraining_data in-process, then 2 steps (exit %d)", rc);
}

// ---------------------------------------------------------------------------- bad input
static void test_errors(void) {
    char args[1200], path[256];
    struct { const char *name, *args, *want; } cases[] = {
        { "noflag", "--input " DATA " --bogus 3", "unknown flag --bogus" },
        { "noinput", "--config %s/tiny.json", "--input (TFRecords) or --text is required" },
        { "novocab", "--text x.txt --config %s/tiny.json", "--text needs --vocab" },
        { "nofile", "--input %s/nothere.tfrecord --config %s/tiny.json", "nothere.tfrecord: no such file" },
        { "badnum", "--input " DATA " --lr fast", "--lr: 'fast' is not a number" },
        { "bigfloat", "--input " DATA " --lr 1e39", "--lr: '1e39' is beyond float range" },
        { "types1", "--input " DATA " --config %s/types1.json", "types1.json: type_vocab_size 1: next-sentence pairs need token types 0 and 1" },
        { "badwarmup", "--input " DATA " --config %s/tiny.json --warmup_proportion 1e30", "--warmup_proportion must be in [0,1]" },
        { "badopt", "--input " DATA " --config %s/tiny.json --optimizer adam", "--optimizer: 'adam' is not one of" },
        { "badlen", "--input " DATA " --config %s/tiny.json --max_seq_length 64", "feature segment_ids: more than 64 values (expected 64)" },
        { "corrupt", "--input %s/corrupt.tfrecord --config %s/tiny.json --eval_records 0 --batch_size 2", "data CRC mismatch" },
        { "emptyeval", "--input " DATA " --config %s/tiny.json --eval_input %s/empty.tfrecord", "empty.tfrecord: no records to evaluate on" },
    };
    char t1[256];   // the tiny config with one token type
    snprintf(t1, sizeof t1, "%s/types1.json", dir);
    FILE *tf = fopen(t1, "w");
    if (tf) {
        fputs("{\"vocab_size\": 30522, \"hidden_size\": 32, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
              "\"intermediate_size\": 64, \"max_position_embeddings\": 128, \"type_vocab_size\": 1}\n", tf);
        fclose(tf);
    }
    // a copy of the data with one byte of record 2 flipped
    unsigned char *d; size_t n;
    if (!bert__read_file(DATA, &d, &n)) {
        d[2 * 818 + 100] ^= 1;
        snprintf(path, sizeof path, "%s/corrupt.tfrecord", dir);
        FILE *f = fopen(path, "wb");
        if (f) { fwrite(d, 1, n, f); fclose(f); }
        free(d);
    }
    snprintf(path, sizeof path, "%s/empty.tfrecord", dir);
    FILE *ef = fopen(path, "wb");   // a TFRecord file with no record
    if (ef) fclose(ef);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, cases[i].args, dir, dir);
        snprintf(args + strlen(args), sizeof args - strlen(args), " --out %s/err_%s", dir, cases[i].name);   // never ./pretrain_out
        int rc = run(cases[i].name, args);
        CHECK(rc == 1 && output_has(cases[i].name, cases[i].want), "%s: exit 1 with \"%s\" (exit %d)", cases[i].name, cases[i].want, rc);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    const char *slash = strrchr(argv[0], '/');
    snprintf(bin, sizeof bin, "%.*spretrain", slash ? (int)(slash - argv[0] + 1) : 0, argv[0]);
    if (!file_exists(bin)) { CHECK(0, "%s not built (make %s)", bin, bin); return check_summary(); }
    if (!file_exists(DATA)) { printf("  skipped: ../shared/data absent (%s): pretrain tests not run\n", DATA); return check_summary(); }
    snprintf(dir, sizeof dir, "build/pretrain_test_XXXXXX");
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return check_summary(); }
    write_config("tiny.json", 0.1f);
    write_config("tiny_d0.json", 0.0f);
    test_reference();
    test_kill_resume();
    test_bad_cursor();
    test_accumulation();
    test_nan();
    test_sigint();
    test_text();
    test_errors();
    if (!check_failed) { char cmd[128]; snprintf(cmd, sizeof cmd, "rm -rf %s", dir); if (system(cmd)) {} }
    else printf("  outputs kept in %s\n", dir);
    return check_summary();
}
