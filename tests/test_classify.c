// test_classify.c - sequence classification: bert_classify_forward (encoder, pooler, dropout,
// classifier; cross-entropy and MSE) against the PyTorch reference tests/ref/classify_ref.py (loss,
// logits and every parameter's gradient, dropout on); the metrics of examples/classify.c against
// tests/ref/metrics_ref.py on fixed prediction files (degenerate ones included); and the program end
// to end on the excerpts in tests/data (CoLA, MRPC pairs, TNEWS JSON, regression): best-on-dev
// checkpoint, reload round trip, same seed = same bytes, a run killed and resumed (--resume) ending
// byte-identical to an uninterrupted one (with accumulation too), prediction file formats, bad input (one
// line naming file:line, exit 1), empty sentences skipped and counted, and --init from the keras-bert
// TF checkpoint converted by convert/tf2st.py (skipped without ../shared/data or python3 + numpy).
#define _DEFAULT_SOURCE
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "check.h"
#include "check_exec.h"

#define FIXTURE "tests/ref/classify_ref.safetensors"
#define METRICS "tests/ref/metrics_ref.json"
#define VOCAB "tests/data/classify_vocab.txt"
#define COLA_TRAIN "tests/data/classify_cola_train.tsv"
#define COLA_DEV "tests/data/classify_cola_dev.tsv"
#define KERAS "../shared/data/tf_ckpt/keras_bert_tiny"
#define OUT "build/classify_test"
static void spit(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) { fputs(text, f); fclose(f); }
}

static int count_lines(const char *s) { int n = 0; for (; s && *s; s++) n += *s == '\n'; return n; }

// ---------------------------------------------------------------------------- the head vs PyTorch

static void test_head(void) {
    bert_st st;
    if (bert_st_open(&st, FIXTURE)) { CHECK(0, "%s: %s (make ref)", FIXTURE, bert_last_error()); return; }
    const char *cj = bert_st_meta(&st, "config");
    bert_config cfg;
    if (!cj || bert_config_parse(&cfg, cj, strlen(cj), FIXTURE)) { CHECK(0, "fixture config"); bert_st_close(&st); return; }
    enum { B = 4, T = 12 };
    int32_t ids[B * T], types[B * T], mask[B * T], labels[B];
    float targets[B];
    int64_t bt[2] = { B, T }, b1[1] = { B };
    CHECK(!bert_st_read_i32(&st, "input_ids", ids, bt, 2) && !bert_st_read_i32(&st, "token_type_ids", types, bt, 2) &&
          !bert_st_read_i32(&st, "attention_mask", mask, bt, 2) && !bert_st_read_i32(&st, "labels", labels, b1, 1) &&
          !bert_st_read_f32(&st, "targets", targets, b1, 1), "fixture inputs: ids, types, mask (two padded rows, two pairs), labels (one -100), targets");
    for (int reg = 0; reg < 2; reg++) {
        const char *prefix = reg ? "reg." : "";
        int K = reg ? 1 : 3;
        bert_model *m = bert_model_create(&cfg, 1);
        if (!m || bert_classifier_add(m, K, 1)) { CHECK(0, "model: %s", bert_last_error()); break; }
        CHECK(bert_classifier_num_labels(m) == K && m->num_tensors == m->num_base_tensors + 2, "bert_classifier_add: classifier.weight (%d, C) and .bias in the table", K);
        int ok = 1;
        for (int i = 0; i < m->num_tensors; i++) {   // the regression head is stored as reg.classifier.*
            char name[200];
            snprintf(name, sizeof name, "%s%s", reg && i >= m->num_base_tensors ? "reg." : "", m->names[i]);
            int64_t shape[2] = { m->tensors[i].shape[0], m->tensors[i].shape[1] };
            ok &= !bert_st_read_f32(&st, name, m->tensors[i].data, shape, m->tensors[i].ndim);
        }
        CHECK(ok, "%s: weights of every tensor of the %d-label model", FIXTURE, K);
        bert_ctx *ctx = bert_ctx_create(1 << 20);
        ctx->seed = 1234;
        bert_ctx_reset(ctx, 3);   // the fixture's dropout seed and step
        bert_model_zero_grad(m);
        bert_classify_out o = bert_classify_forward(ctx, m, ids, types, mask, B, T, reg ? NULL : labels, reg ? targets : NULL);
        float ref[B * 64];
        char key[200], label[200];
        int64_t shape[2] = { B, K }, pc[2] = { B, cfg.hidden_size }, one[1] = { 1 };
        snprintf(key, sizeof key, "%spooled", prefix);
        if (!bert_st_read_f32(&st, key, ref, pc, 2)) check_close(reg ? "regression: pooled output" : "3 labels: pooled output", o.pooled->data, ref, o.pooled->numel, 1e-5, 1e-5);
        snprintf(key, sizeof key, "%slogits", prefix);
        if (!bert_st_read_f32(&st, key, ref, shape, 2)) check_close(reg ? "regression: outputs (dropout on the pooled output)" : "3 labels: logits (dropout on the pooled output)", o.logits->data, ref, o.logits->numel, 1e-5, 1e-5);
        snprintf(key, sizeof key, "%sloss", prefix);
        if (!bert_st_read_f32(&st, key, ref, one, 1)) check_close(reg ? "regression: MSE loss" : "3 labels: cross-entropy loss (one row -100)", o.loss->data, ref, 1, 1e-6, 1e-5);
        bert_backward(ctx, o.loss);
        int with_ref = 0, zero_ok = 1, zeros = 0;
        for (int i = 0; i < m->num_tensors; i++) {
            const bert_tensor *t = &m->tensors[i];
            snprintf(key, sizeof key, "%sgrad.%s", prefix, m->names[i]);
            float *g = (float *)calloc(t->numel, sizeof(float));
            int64_t s2[2] = { t->shape[0], t->shape[1] };
            if (bert_st_find(&st, key)) {
                if (!bert_st_read_f32(&st, key, g, s2, t->ndim)) {
                    snprintf(label, sizeof label, "%sgrad %s", reg ? "reg " : "", m->names[i]);
                    check_close(label, t->grad, g, t->numel, 1e-6, 1e-4);
                    with_ref++;
                }
            } else {   // the MLM/NSP heads: nothing of the loss goes through them
                for (size_t j = 0; j < t->numel; j++) zero_ok &= t->grad[j] == 0.0f;
                zeros++;
            }
            free(g);
        }
        CHECK(with_ref == m->num_tensors - 7 && zeros == 7 && zero_ok, "%s: %d grads compared, the 7 MLM/NSP head tensors' grads are exactly 0", reg ? "regression" : "3 labels", with_ref);
        bert_ctx_free(ctx);
        bert_model_free(m);
    }
    bert_st_close(&st);
}

// ---------------------------------------------------------------------------- metrics vs Python

// numbers within 1e-12 (relative), everything else equal; a key of want missing from got fails
static int json_same(const bert_json *want, const bert_json *got, char *why, size_t cap) {
    if (!got) { snprintf(why, cap, "missing"); return 0; }
    if (want->type == BERT_JSON_NUMBER && got->type == BERT_JSON_NUMBER) {
        if (fabs(want->number - got->number) <= 1e-12 * (1.0 + fabs(want->number))) return 1;
        snprintf(why, cap, "%.17g vs %.17g", got->number, want->number);
        return 0;
    }
    if (want->type != got->type) { snprintf(why, cap, "type %d vs %d", got->type, want->type); return 0; }
    if (want->type == BERT_JSON_STRING) { if (!strcmp(want->string, got->string)) return 1; snprintf(why, cap, "'%s' vs '%s'", got->string, want->string); return 0; }
    if (want->type == BERT_JSON_ARRAY) {
        if (want->count != got->count) { snprintf(why, cap, "%d vs %d elements", got->count, want->count); return 0; }
        for (int i = 0; i < want->count; i++) if (!json_same(&want->child[i], &got->child[i], why, cap)) return 0;
        return 1;
    }
    if (want->type == BERT_JSON_OBJECT) {
        for (int i = 0; i < want->count; i++) {
            if (json_same(&want->child[i], bert_json_get(got, want->child[i].key), why, cap)) continue;
            size_t n = strlen(why);
            char tail[200];
            snprintf(tail, sizeof tail, "%s", why);
            snprintf(why, cap, "%s: %s", want->child[i].key, tail);
            (void)n;
            return 0;
        }
        return 1;
    }
    return 1;   // null, true, false
}

static void test_metrics(void) {
    size_t n;
    char *text = slurp(METRICS, &n);
    bert_json *ref = NULL;
    if (!text || bert_json_parse(&ref, text, n)) { CHECK(0, "%s readable (make ref)", METRICS); free(text); return; }
    for (int i = 0; i < ref->count; i++) {
        const bert_json *want = &ref->child[i];
        char args[600];
        snprintf(args, sizeof args, "--eval_predictions tests/data/%s%s", want->key, strstr(want->key, "regression") ? " --num_labels 1" : "");
        int rc = run(args, OUT "_metrics.json");
        size_t len;
        char *out = slurp(OUT "_metrics.json", &len), why[300] = "";
        bert_json *got = NULL;
        int ok = rc == 0 && out && !bert_json_parse(&got, out, len) && json_same(want, got, why, sizeof why);
        CHECK(ok, "%-34s classify --eval_predictions = metrics_ref.py (%s) %s", want->key,
              strstr(want->key, "regression") ? "pearson, spearman (average ranks for ties), mse" : "accuracy, macro/binary F1, MCC, confusion", why);
        bert_json_free(got);
        free(out);
    }
    bert_json_free(ref);
    free(text);
}

// ---------------------------------------------------------------------------- the program

static const char *tiny_config(int vocab_size) {
    static char path[] = OUT "_config.json";
    char text[600];
    snprintf(text, sizeof text, "{\"vocab_size\": %d, \"hidden_size\": 32, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
             "\"intermediate_size\": 64, \"max_position_embeddings\": 64, \"type_vocab_size\": 2, \"hidden_act\": \"gelu\"}\n", vocab_size);
    spit(path, text);
    return path;
}

// "metrics": {...} of an eval_results.json, as text
static char *metrics_of(const char *dir) {
    char path[300];
    snprintf(path, sizeof path, "%s/eval_results.json", dir);
    char *s = slurp(path, NULL), *m = s ? strstr(s, "\"metrics\": ") : NULL;
    char *r = m ? strdup(m) : NULL;
    free(s);
    return r;
}

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x); free(y);
    return same;
}

static void test_cola(const char *common) {
    char args[2048];
    spit(OUT "_cola_test.tsv", "index\tsentence\n10\tThe sailors rode the breeze clear of the rocks.\n11\tThe mechanical doll wriggled itself loose.\n"
                                "12\tJohn ate.\n13\tBill ate the peaches and Harry the grapes.\n14\t\n");
    snprintf(args, sizeof args, "%s --task cola --train_file " COLA_TRAIN " --dev_file " COLA_DEV " --test_file " OUT "_cola_test.tsv"
             " --do_train --do_eval --do_predict --epochs 3 --batch_size 8 --lr 1e-3 --print_every 5 --out " OUT "_cola", common);
    int rc = run(args, OUT "_cola.out");
    char *out = slurp(OUT "_cola.out", NULL), *err = slurp(OUT "_cola.out.err", NULL);
    CHECK(rc == 0 && out && strstr(out, "step     18/18") && strstr(out, "ETA") && strstr(out, "*best*") && strstr(out, "confusion matrix"),
          "CoLA excerpt (43 train, 16 dev): 18 steps, progress lines with ETA, eval per epoch, best marked, confusion matrix (exit %d)", rc);
    CHECK(out && strstr(out, "majority-class baseline (always '1'): accuracy 0.6875"), "eval prints the majority-class baseline (11 of 16 dev rows are label 1)");
    CHECK(err && strstr(err, "_cola_test.tsv:6: the sentence has no tokens (empty): predicted from [CLS] [SEP] alone"),
          "an empty sentence in a test file is predicted anyway, with a warning naming file:line");
    free(out); free(err);

    // the checkpoint: HF names, 2 labels in the metadata; config.json for transformers
    bert_st st;
    int ok = !bert_st_open(&st, OUT "_cola/model.safetensors");
    const bert_st_tensor *w = ok ? bert_st_find(&st, "classifier.weight") : NULL;
    const char *labels = ok ? bert_st_meta(&st, "labels") : NULL;
    CHECK(ok && w && w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 32 && bert_st_find(&st, "classifier.bias") &&
          bert_st_find(&st, "bert.pooler.dense.weight") && labels && !strcmp(labels, "[\"0\", \"1\"]"),
          "model.safetensors: classifier.weight (2, 32), classifier.bias, bert.* names, labels [\"0\", \"1\"] in the metadata");
    if (ok) bert_st_close(&st);
    char *hf = slurp(OUT "_cola/config.json", NULL);
    CHECK(hf && strstr(hf, "\"architectures\": [\"BertForSequenceClassification\"]") && strstr(hf, "\"id2label\": {\"0\": \"0\", \"1\": \"1\"}"),
          "config.json names BertForSequenceClassification with id2label");
    free(hf);

    // the log: one JSON object per line; 18 steps, 3 evaluations, a summary
    char *log = slurp(OUT "_cola/log.jsonl", NULL);
    int lines = 0, parsed = 0, steps = 0, evals = 0, summary = 0;
    for (char *s = log; s && *s; lines++) {
        char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        bert_json *j;
        if (!bert_json_parse(&j, s, len)) {
            parsed++;
            steps += bert_json_get(j, "step") != NULL && !bert_json_get(j, "summary");   // the summary names its step too
            evals += bert_json_get(j, "eval_step") != NULL;
            summary += bert_json_get(j, "summary") != NULL;
            bert_json_free(j);
        }
        s = nl ? nl + 1 : s + len;
    }
    CHECK(log && lines == parsed && steps == 18 && evals == 3 && summary == 1, "log.jsonl: %d lines, all JSON: 18 steps, 3 evals, a summary", lines);
    free(log);

    // GLUE test layout: header "index", the ids from that column, one prediction per row
    char *pred = slurp(OUT "_cola/test_predictions.tsv", NULL);
    int rows_ok = pred && !strncmp(pred, "index\tprediction\n", 17) && count_lines(pred) == 6;
    for (int id = 10; rows_ok && id <= 14; id++) {
        char a[16], b[16];
        snprintf(a, sizeof a, "\n%d\t0\n", id); snprintf(b, sizeof b, "\n%d\t1\n", id);
        rows_ok = strstr(pred, a) || strstr(pred, b);
    }
    CHECK(rows_ok, "test_predictions.tsv: \"index<TAB>prediction\", ids 10..14 from the test file's index column, labels 0/1");

    // reload round trip: eval and predict from the saved model alone give the same metrics and predictions
    snprintf(args, sizeof args, "--task cola --vocab " VOCAB " --max_seq_length 64 --dev_file " COLA_DEV " --test_file " OUT "_cola_test.tsv"
             " --do_eval --do_predict --init " OUT "_cola/model.safetensors --out " OUT "_cola_reload");
    rc = run(args, OUT "_reload.out");
    char *m1 = metrics_of(OUT "_cola"), *m2 = metrics_of(OUT "_cola_reload");
    char *pred2 = slurp(OUT "_cola_reload/test_predictions.tsv", NULL);
    CHECK(rc == 0 && m1 && m2 && !strcmp(m1, m2) && pred && pred2 && !strcmp(pred, pred2),
          "--init model.safetensors (labels from its metadata): the best checkpoint's dev metrics and predictions again, bit for bit");
    free(m1); free(m2); free(pred); free(pred2);

    // the same seed gives the same bytes
    snprintf(args, sizeof args, "%s --task cola --train_file " COLA_TRAIN " --dev_file " COLA_DEV " --do_train --do_eval --epochs 3 --batch_size 8"
             " --lr 1e-3 --out " OUT "_cola2", common);
    rc = run(args, OUT "_cola2.out");
    CHECK(rc == 0 && same_file(OUT "_cola/model.safetensors", OUT "_cola2/model.safetensors"), "a second run with the same seed writes a byte-identical model");

    // the head learns: 25 epochs on the 43 training sentences fit them
    snprintf(args, sizeof args, "%s --task cola --train_file " COLA_TRAIN " --dev_file " COLA_TRAIN " --do_train --do_eval --epochs 25 --batch_size 8"
             " --lr 3e-3 --print_every 1000 --out " OUT "_fit", common);
    rc = run(args, OUT "_fit.out");
    char *fit = metrics_of(OUT "_fit");
    CHECK(rc == 0 && fit && strstr(fit, "\"accuracy\": 1,"), "25 epochs on the 43 CoLA training sentences: accuracy 1 on them (the gradients reach the encoder and head)");
    free(fit);
}

static void test_tnews_mrpc_regression(const char *common) {
    char args[2048];
    snprintf(args, sizeof args, "%s --task tnews --train_file tests/data/classify_tnews_train.json --dev_file tests/data/classify_tnews_dev.json"
             " --test_file tests/data/classify_tnews_dev.json --labels_file tests/data/classify_tnews_labels.json --do_train --do_eval --do_predict"
             " --epochs 2 --batch_size 8 --lr 1e-3 --out " OUT "_tnews", common);
    int rc = run(args, OUT "_tnews.out");
    char *pred = slurp(OUT "_tnews/test_predictions.json", NULL);
    int lines = 0, ok = rc == 0 && pred;
    for (char *s = pred; ok && s && *s; lines++) {   // {"id": N, "label": "1xx", "label_desc": "news_..."}
        char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        bert_json *j = NULL;
        ok = !bert_json_parse(&j, s, len);
        const bert_json *id = bert_json_get(j, "id"), *l = bert_json_get(j, "label"), *d = bert_json_get(j, "label_desc");
        ok = ok && id && id->type == BERT_JSON_NUMBER && id->number == lines && l && l->type == BERT_JSON_STRING &&
             strlen(l->string) == 3 && l->string[0] == '1' && d && d->type == BERT_JSON_STRING && !strncmp(d->string, "news_", 5);
        bert_json_free(j);
        s = nl ? nl + 1 : s + len;
    }
    CHECK(ok && lines == 10, "TNEWS JSON lines (15 labels from labels.json): test_predictions.json in CLUE's format, {\"id\": 0.., \"label\": \"1xx\", \"label_desc\"} x 10");
    free(pred);
    char *m = metrics_of(OUT "_tnews");
    CHECK(m && strstr(m, "\"labels\": [\"100\", \"101\", \"102\", \"103\", \"104\", \"106\", \"107\", \"108\", \"109\", \"110\", \"112\", \"113\", \"114\", \"115\", \"116\"]"),
          "TNEWS label list in labels.json order (105 and 111 do not exist), 15x15 confusion");
    free(m);

    snprintf(args, sizeof args, "%s --task mrpc --train_file tests/data/classify_mrpc_train.tsv --dev_file tests/data/classify_mrpc_dev.tsv"
             " --do_train --do_eval --epochs 1 --batch_size 8 --max_seq_length 48 --out " OUT "_mrpc", common);
    rc = run(args, OUT "_mrpc.out");
    char *out = slurp(OUT "_mrpc.out", NULL);
    m = metrics_of(OUT "_mrpc");
    CHECK(rc == 0 && out && strstr(out, "classify_mrpc_train.tsv: 24 examples") &&
          strstr(out, "classify_mrpc_train.tsv: 13 of 24 examples were longer than --max_seq_length 48 and were cut (longest 65 tokens; first at line 5)") &&
          m && strstr(m, "\"binary_f1\": ") && strstr(m, "\"n\": 8,"),
          "MRPC pairs (BOM, header): 24 + 8 rows, cut examples counted and reported, binary F1 on dev");
    free(out); free(m);

    snprintf(args, sizeof args, "%s --task tsv --text_a_col 3 --label_col 1 --num_labels 1 --train_file " COLA_TRAIN " --dev_file " COLA_DEV
             " --test_file " COLA_DEV " --predict_format json --do_train --do_eval --do_predict --epochs 2 --batch_size 8 --out " OUT "_reg", common);
    rc = run(args, OUT "_reg.out");
    m = metrics_of(OUT "_reg");
    pred = slurp(OUT "_reg/test_predictions.json", NULL);
    CHECK(rc == 0 && m && strstr(m, "\"spearman\": ") && strstr(m, "\"pearson\": ") && pred && count_lines(pred) == 16 && strstr(pred, "{\"id\": 0, \"label\": "),
          "regression (--task tsv, --num_labels 1, MSE): pearson/spearman on dev, 16 numeric predictions");
    snprintf(args, sizeof args, "--task tsv --text_a_col 3 --label_col 1 --vocab " VOCAB " --max_seq_length 64 --dev_file " COLA_DEV
             " --do_eval --init " OUT "_reg/model.safetensors --out " OUT "_reg2");
    rc = run(args, OUT "_reg2.out");
    char *m2 = metrics_of(OUT "_reg2");
    CHECK(rc == 0 && m && m2 && !strcmp(m, m2), "the regression model reloaded (num_labels 1 from its metadata): the same dev metrics");
    free(m); free(m2); free(pred);
}

static void test_bad_input(const char *common) {
    // inputs cut from the excerpts, each with one fault
    spit(OUT "_bad_dev.tsv", "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\ngj04\t0\t*\tThe doll wriggled.\ngj04\t7\t\tJohn ate.\n");
    spit(OUT "_bad_cols.tsv", "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\ngj04\t0\t*\tThe doll wriggled.\ngj04\t1\t\tJohn ate.\n"
                              "gj04\t1\t\tBill ate.\ngj04\t1\tJohn ate the peaches.\n");
    spit(OUT "_bad.json", "{\"label\": \"108\", \"sentence\": \"上课时学生手机响个不停\"}\n{\"label\": \"104\", \"sentence\": \"商赢环球股份有限公司\"}\n"
                          "{\"label\": 102, \"sentence\": \"老师\"}\n{\"label\": \"108\", \"sentence\": \"上课时\n");
    spit(OUT "_nolabel.json", "{\"label\": \"108\", \"sentence\": \"上课时学生手机响个不停\"}\n{\"sentence\": \"老师\"}\n");
    spit(OUT "_badtarget.tsv", "a\t0.5\t\tJohn ate.\nb\tx1\t\tBill ate.\n");
    spit(OUT "_emptylabel.tsv", "gj04\t1\t\tJohn ate.\ngj04\t \t\tBill ate.\n");
    spit(OUT "_glue_test.tsv", "index\tsentence\n0\tJohn ate.\n");
    bert_config cfg = bert_config_default();
    cfg.vocab_size = 1269; cfg.hidden_size = 32; cfg.num_hidden_layers = 1; cfg.num_attention_heads = 2; cfg.intermediate_size = 64;
    cfg.max_position_embeddings = 64;
    bert_model *plain = bert_model_create(&cfg, 1);
    CHECK(plain && !bert_model_save(plain, OUT "_noclf.safetensors"), "an encoder-only checkpoint for --init");
    bert_model_free(plain);
    char longlab[300], text[700];
    memset(longlab, 'x', 299); longlab[299] = 0;
    snprintf(text, sizeof text, "gj04\t1\t\tJohn ate.\ngj04\t%s\t\tBill ate.\n", longlab);
    spit(OUT "_longlabel.tsv", text);
    snprintf(text, sizeof text, "{\"label\": \"%s\", \"sentence\": \"老师\"}\n", longlab);
    spit(OUT "_longlabel.json", text);
    spit(OUT "_pairs.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tJohn ate.\tJohn ate it.\n0\t3\t4\tBill ate.\tThe doll wriggled.\n");
    spit(OUT "_types1.json", "{\"vocab_size\": 1269, \"hidden_size\": 32, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"intermediate_size\": 64, \"max_position_embeddings\": 64, \"type_vocab_size\": 1}");
    spit(OUT "_v1000.json", "{\"vocab_size\": 1000, \"hidden_size\": 32, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"intermediate_size\": 64, \"max_position_embeddings\": 64}");

    const char *cola = "--task cola --do_train --train_file " COLA_TRAIN " --epochs 1";
    struct { const char *args, *want; } bad[] = {
        { "--task cola --do_train --train_file " COLA_TRAIN " --do_eval --dev_file " OUT "_bad_dev.tsv",
          OUT "_bad_dev.tsv:3: label '7' is not one of the 2 labels from " COLA_TRAIN " (0, 1)" },
        { "--task cola --do_train --train_file " OUT "_bad_cols.tsv", OUT "_bad_cols.tsv:5: 3 tab-separated columns, expected 4 (as on line 1)" },
        { "--task tnews --do_train --train_file " OUT "_bad.json", OUT "_bad.json:4: malformed JSON: json:" },
        { "--task tnews --do_train --train_file " OUT "_nolabel.json", OUT "_nolabel.json:2: no \"label\"" },
        { "--task tsv --text_a_col 3 --label_col 1 --num_labels 1 --do_train --train_file " OUT "_badtarget.tsv", OUT "_badtarget.tsv:2: regression target 'x1' is not a number" },
        { "--task cola --do_train --train_file " OUT "_emptylabel.tsv", OUT "_emptylabel.tsv:2: empty label (column 1)" },
        { "--task cola --do_train --train_file " COLA_TRAIN " --do_eval --dev_file " OUT "_glue_test.tsv", "_glue_test.tsv: a test file (header 'index'): it has no labels" },
        { "--task cola --do_train --train_file nothere.tsv", "nothere.tsv: No such file" },
        { "--task glue --do_train --train_file " COLA_TRAIN, "--task: 'glue' is not one of" },
        { "--task cola --do_eval --dev_file " COLA_DEV " --init " OUT "_noclf.safetensors --label_list 0,1", "_noclf.safetensors has no classifier.weight: fine-tune it first" },
        { "--task cola --do_train --train_file " COLA_TRAIN " --label_list 0", "--label_list: a single label ('0')" },
        { "--task cola --do_train --train_file " OUT "_longlabel.tsv", OUT "_longlabel.tsv:2: a label longer than 255 bytes (column 1)" },
        { "--task tnews --do_train --train_file " OUT "_longlabel.json", OUT "_longlabel.json:1: a \"label\" longer than 255 bytes" },
    };
    char args[2048];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "%s %s --out " OUT "_bad", bad[i].args, strstr(bad[i].args, "--init") ? "--vocab " VOCAB " --max_seq_length 64" : common);
        int rc = run(args, OUT "_bad.out");
        char *e = slurp(OUT "_bad.out.err", NULL);
        int ok = rc == 1 && e && strstr(e, bad[i].want) && strchr(e, '\n') == e + strlen(e) - 1;
        CHECK(ok, "exit 1, one line: \"%s\"%s%s", bad[i].want, ok ? "" : " | got: ", ok ? "" : e ? e : "(nothing)");
        free(e);
    }
    snprintf(args, sizeof args, "--task mrpc --do_train --train_file " OUT "_pairs.tsv --epochs 1 --vocab " VOCAB " --config " OUT
             "_types1.json --max_seq_length 64 --out " OUT "_bad");
    int rc1 = run(args, OUT "_bad.out");
    char *e1 = slurp(OUT "_bad.out.err", NULL);
    CHECK(rc1 == 1 && e1 && strstr(e1, "_pairs.tsv: sentence pairs need type_vocab_size 2 or more; the model has 1"),
          "sentence pairs on a model with type_vocab_size 1: exit 1, one line (exit %d: %s)", rc1, e1 ? e1 : "");
    free(e1);
    snprintf(args, sizeof args, "%s --vocab " VOCAB " --config " OUT "_v1000.json --max_seq_length 64 --out " OUT "_bad", cola);
    int rc = run(args, OUT "_bad.out");
    char *e = slurp(OUT "_bad.out.err", NULL);
    CHECK(rc == 1 && e && strstr(e, "classify_vocab.txt has 1269 tokens but the model's vocab_size is 1000"),
          "exit 1, one line: \"classify_vocab.txt has 1269 tokens but the model's vocab_size is 1000\" (exit %d)", rc);
    free(e);

    // empty sentences (and a blank line) in a training file: skipped with a warning naming file:line, and counted
    spit(OUT "_empty.tsv", "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\ngj04\t1\t\t\n\ngj04\t0\t*\tThe doll wriggled.\n"
                           "gj04\t1\t\t   \ngj04\t1\t\tJohn ate.\n");
    snprintf(args, sizeof args, "%s --task cola --do_train --train_file " OUT "_empty.tsv --epochs 1 --out " OUT "_empty", common);
    rc = run(args, OUT "_empty.out");
    char *out = slurp(OUT "_empty.out", NULL);
    e = slurp(OUT "_empty.out.err", NULL);
    CHECK(rc == 0 && out && strstr(out, "_empty.tsv: 3 examples, 2 with an empty sentence skipped, 1 blank lines ignored") &&
          e && strstr(e, "_empty.tsv:2: the sentence has no tokens (empty): skipped") && strstr(e, "_empty.tsv:5: the sentence has no tokens (empty): skipped"),
          "empty sentences in a training file: skipped, each named by file:line, and counted (exit %d)", rc);
    free(out); free(e);
}

// a run SIGKILLed after a step and resumed (--resume) ends as the uninterrupted run: the final
// checkpoint and the best-on-dev model byte-identical; the best kept before the kill is remembered
// (b), and one kept after the checkpoint resumed from is made again (a); with accumulation too
static void test_resume(const char *common) {
    static const struct { const char *name, *flags; int kill, from, best, last; } cases[] = {
        { "a", "--batch_size 8 --save_every 5", 7, 5, 12, 24 },
        { "b", "--batch_size 4 --accumulation_steps 2 --eval_every 3 --save_every 8", 17, 16, 15, 22 },
    };
    for (int i = 0; i < 2; i++) {
        char args[2048], base[1024], a[300], b[300], want[64];
        snprintf(base, sizeof base, "%s --task tsv --text_a_col 3 --label_col 1 --num_labels 1 --train_file " COLA_TRAIN " --dev_file " COLA_DEV
                 " --do_train --do_eval --epochs 4 --lr 1e-3 %s", common, cases[i].flags);
        snprintf(args, sizeof args, "%s --out " OUT "_whole_%s", base, cases[i].name);
        int rc1 = run(args, OUT "_whole.out");
        snprintf(args, sizeof args, "%s --out " OUT "_killed_%s --debug_kill_at_step %d", base, cases[i].name, cases[i].kill);
        int rc2 = run(args, OUT "_killed.out");
        snprintf(args, sizeof args, "%s --out " OUT "_killed_%s --resume", base, cases[i].name);
        int rc3 = run(args, OUT "_resumed.out");
        char *out = slurp(OUT "_resumed.out", NULL), *whole = slurp(OUT "_whole.out", NULL);
        snprintf(want, sizeof want, "ckpt-%08d at step %d", cases[i].from, cases[i].from);
        CHECK(rc1 == 0 && rc2 == 128 + SIGKILL && rc3 == 0 && out && strstr(out, "resumed from") && strstr(out, want),
              "%s: uninterrupted run, run SIGKILLed after step %d, resumed from its step-%d checkpoint (exit %d, %d, %d)", cases[i].flags,
              cases[i].kill, cases[i].from, rc1, rc2, rc3);
        snprintf(want, sizeof want, "at step %d (", cases[i].best);
        CHECK(whole && strstr(whole, want) && out && strstr(out, want), "both keep the model of step %d as the best on dev", cases[i].best);
        free(out); free(whole);
        for (int f = 0; f < 3; f++) {
            char file[64];
            if (f == 0) snprintf(file, sizeof file, "model.safetensors");
            else snprintf(file, sizeof file, "ckpt-%08d/%s.safetensors", cases[i].last, f == 1 ? "model" : "state");
            snprintf(a, sizeof a, OUT "_whole_%s/%s", cases[i].name, file);
            snprintf(b, sizeof b, OUT "_killed_%s/%s", cases[i].name, file);
            CHECK(same_file(a, b), "killed and resumed: %s byte-identical to the uninterrupted run's", file);
        }
        snprintf(a, sizeof a, OUT "_whole_%s", cases[i].name);
        snprintf(b, sizeof b, OUT "_killed_%s", cases[i].name);
        char *m1 = metrics_of(a), *m2 = metrics_of(b);
        CHECK(m1 && m2 && !strcmp(m1, m2), "and the same eval_results.json metrics");
        free(m1); free(m2);
    }
}

// --init from a real TF checkpoint: keras-bert's tiny one, converted with convert/tf2st.py
static void test_init_keras(void) {
    const char *py = getenv("PYTHON") ? getenv("PYTHON") : "/usr/bin/python3";
    char cmd[1024];
    if (!file_exists(KERAS "/bert_model.ckpt.index")) { printf("  skipped: ../shared/data absent (" KERAS "): --init from a converted TF checkpoint not run\n"); return; }
    snprintf(cmd, sizeof cmd, "%s -c 'import numpy' >/dev/null 2>&1", py);
    if (system(cmd) != 0) { printf("  skipped: %s with numpy not found: --init from a converted TF checkpoint not run\n", py); return; }
    snprintf(cmd, sizeof cmd, "%s convert/tf2st.py " KERAS "/bert_model.ckpt " OUT "_keras.safetensors > " OUT "_keras.log 2>&1", py);
    CHECK(system(cmd) == 0, "convert/tf2st.py keras_bert_tiny -> " OUT "_keras.safetensors");
    // sentences over its 15-token vocab ("all work and no play makes jack a dull boy")
    spit(OUT "_keras.tsv", "0\tall work and no play\n1\tjack a dull boy\n0\tno play makes jack\n1\ta dull boy\n0\twork and play\n1\tjack makes a boy\n");
    const char *common = "--task tsv --text_a_col 1 --label_col 0 --train_file " OUT "_keras.tsv --dev_file " OUT "_keras.tsv --vocab " KERAS "/vocab.txt"
                         " --init " OUT "_keras.safetensors --max_seq_length 16 --batch_size 2";
    char args[1024];
    snprintf(args, sizeof args, "%s --do_train --epochs 1 --lr 0 --out " OUT "_keras0", common);   // lr 0: the weights stay as loaded
    int rc = run(args, OUT "_keras0.out");
    bert_st a, b;
    int ok = rc == 0 && !bert_st_open(&a, OUT "_keras.safetensors");
    int okb = ok && !bert_st_open(&b, OUT "_keras0/model.safetensors");
    int same = okb, n = 0, heads = 0;
    for (int i = 0; okb && i < a.count; i++) {   // the pretraining heads (cls.*) are left out: transformers' task class has none
        const bert_st_tensor *x = &a.tensors[i], *y = bert_st_find(&b, x->name);
        if (!strncmp(x->name, "cls.", 4)) { same &= !y; heads++; continue; }
        same &= y && x->end - x->begin == y->end - y->begin && !memcmp(a.data + x->begin, b.data + y->begin, x->end - x->begin);
        n++;
    }
    const bert_st_tensor *w = okb ? bert_st_find(&b, "classifier.weight") : NULL;
    CHECK(same && n + heads == 46 && heads >= 5 && w && w->shape[0] == 2 && w->shape[1] == 4 && b.count == n + 2,
          "--init the converted checkpoint, --lr 0: its %d encoder tensors saved bit for bit, its %d cls.* heads left out, plus classifier.* (2, 4)", n, heads);
    if (okb) bert_st_close(&b);
    if (ok) bert_st_close(&a);
    snprintf(args, sizeof args, "%s --do_train --do_eval --epochs 20 --lr 1e-2 --out " OUT "_keras1", common);
    rc = run(args, OUT "_keras1.out");
    char *m = metrics_of(OUT "_keras1");
    CHECK(rc == 0 && m && strstr(m, "\"n\": 6,"), "fine-tuning keras_bert_tiny (gelu_tanh, H=4) for 20 epochs runs to the end and evaluates (exit %d)", rc);
    free(m);
}

int main(int argc, char **argv) {
    (void)argc;
    check_find_binary(argv[0], "classify");
    test_head();
    test_metrics();
    bert_vocab *v = bert_vocab_load(VOCAB);
    CHECK(v != NULL, "%s loads", VOCAB);
    if (!v) return check_summary();
    char common[600];
    snprintf(common, sizeof common, "--vocab %s --config %s --max_seq_length 64", VOCAB, tiny_config(v->size));
    bert_vocab_free(v);
    CHECK(run("--help", OUT "_help.out") == 0, "--help exits 0");
    test_cola(common);
    test_tnews_mrpc_regression(common);
    test_bad_input(common);
    test_resume(common);
    test_init_keras();
    if (system("rm -rf " OUT "_*")) {}
    return check_summary();
}
