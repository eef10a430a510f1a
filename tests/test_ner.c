// test_ner.c - examples/ner.c end to end:
//   oracle: the gold tags of all 1343 CLUENER2020 dev records go through windows, merging, span
//     decoding and scoring: F1 100.00 for BIO and BIOES, whole texts and windows (max_seq_length
//     10 and 3); the submission file written from the gold tags holds dev.json's labels exactly
//     (needs ../shared/data; skipped with a note without it);
//   vs PyTorch (tests/ref/ner_ref.py): the first step's batch, loss and every grad (classifier and
//     crf.transitions included) for softmax and for the CRF on windows, 1e-6 abs + 1e-4 rel;
//   a short CRF run on the sample: the loss falls, a run stopped at step 13 and resumed ends
//     bit-identical to a straight one, HF names and config.json, evaluating the saved model alone
//     (CRF found in the file) gives the same scores, the submission file for a test excerpt;
//   malformed records: one error line naming FILE:LINE each, or skipped and counted; a record with
//   10000 overlapping mentions (the most allowed) tagged, scored and written back, one with 50000 refused;
//   one-character mentions (none in dev.json) at the start, middle and end of texts and next to
//   others, written here: their gold tags -> spans -> scores give F1 100.00 with the right counts and
//   the submission file gives them back, BIO and BIOES, whole texts and windows (no data needed);
//   CRF decoding: ner's Viterbi tags, as spans of the submission file, for a tiny CRF model saved here
//   equal the best of all K^n paths of the same model's emissions, scored here (no data needed).
// Data (from ../shared/data/cluener2020, see PROVENANCE.md there): tests/data/ner_sample.json is
// train.json lines 1-7 and 1507; ner_test_sample.json is test.json lines 1-5; ner_bad.json is
// dev.json lines 1-9 with lines 2 and 4-8 broken on purpose (span out of range, span text
// mismatch, unknown type, cut JSON, no text, fractional offset); ner_vocab.txt is written by
// tests/ref/ner_ref.py's author from the sample's characters.
#define _DEFAULT_SOURCE
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "check.h"
#include "check_exec.h"

#define DEV "../shared/data/cluener2020/dev.json"
#define CHINESE_VOCAB "../shared/data/vocab/bert_chinese_vocab.txt"
#define SAMPLE "tests/data/ner_sample.json"
#define VOCAB "tests/data/ner_vocab.txt"
#define INIT "tests/ref/ner_init.safetensors"
#define FIXTURE "tests/ref/ner_ref.safetensors"
// "overall gold pred correct P R F1" from ner's score table
static int overall(const char *text, long *gold, long *pred, long *correct, double *f1) {
    const char *o = text ? strstr(text, "\noverall ") : NULL;
    double p, r;
    return o && sscanf(o + 1, "overall %ld %ld %ld %lf %lf %lf", gold, pred, correct, &p, &r, f1) == 6;
}

// ---------------------------------------------------------------------------- oracle

// a label object as sorted "type|entity|start|end" lines, for comparing two files' labels
static char *canonical(const bert_json *label) {
    char **items = NULL;
    int n = 0;
    size_t total = 1;
    for (int t = 0; label && t < label->count; t++)
        for (int e = 0; e < label->child[t].count; e++) {
            const bert_json *ent = &label->child[t].child[e];
            for (int s = 0; s < ent->count; s++) {
                char buf[512];
                snprintf(buf, sizeof buf, "%s|%s|%.0f|%.0f\n", label->child[t].key, ent->key,
                         ent->child[s].child[0].number, ent->child[s].child[1].number);
                items = (char **)realloc(items, (size_t)(n + 1) * sizeof(char *));
                items[n++] = strdup(buf);
                total += strlen(buf);
            }
        }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(items[j - 1], items[j]) > 0; j--) { char *x = items[j]; items[j] = items[j - 1]; items[j - 1] = x; }
    char *out = (char *)calloc(total, 1);
    for (int i = 0; i < n; i++) { strcat(out, items[i]); free(items[i]); }
    free(items);
    return out;
}

// lines of a and b: same count, and each line's "label" (and "id" when want_ids) the same
static int same_labels(const char *a, const char *b, int *lines) {
    int same = 1;
    *lines = 0;
    while (*a && *b && same) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        if (!ea || !eb) return 0;
        bert_json *ja, *jb;
        if (bert_json_parse(&ja, a, (size_t)(ea - a)) || bert_json_parse(&jb, b, (size_t)(eb - b))) return 0;
        char *ca = canonical(bert_json_get(ja, "label")), *cb = canonical(bert_json_get(jb, "label"));
        same = !strcmp(ca, cb);
        if (!same) printf("         line %d: %s vs %s\n", *lines + 1, ca, cb);
        free(ca); free(cb);
        bert_json_free(ja); bert_json_free(jb);
        a = ea + 1; b = eb + 1;
        (*lines)++;
    }
    return same && !*a && !*b;
}

static void test_oracle(void) {
    if (!file_exists(DEV) || !file_exists(CHINESE_VOCAB)) {
        printf("  skipped: ../shared/data absent (%s): oracle tests on the dev set not run\n", DEV);
        return;
    }
    const char *tagging[] = { "bio", "bioes" };
    const int lengths[] = { 128, 10, 3 };
    for (int g = 0; g < 2; g++)
        for (int l = 0; l < 3; l++) {
            char args[1024];
            snprintf(args, sizeof args, "--do_eval --oracle --dev_file %s --tagging %s --max_seq_length %d --out build/test_ner_oracle",
                     DEV, tagging[g], lengths[l]);
            int rc = run(args, "build/test_ner_oracle.out");
            char *out = slurp("build/test_ner_oracle.out", NULL);
            long gold = 0, pred = 0, correct = 0, windows = 0;
            double f1 = 0;
            const char *w = out ? strstr(out, "1343 records, ") : NULL;
            if (w) windows = strtol(w + 14, NULL, 10);
            int ok = rc == 0 && overall(out, &gold, &pred, &correct, &f1);
            CHECK(ok && gold == 3072 && pred == 3072 && correct == 3072 && f1 == 100.0 && (lengths[l] == 128 ? windows == 1343 : windows > 1343),
                  "oracle %-5s max_seq_length %3d: %ld windows over 1343 dev records; gold tags -> spans: %ld/%ld/%ld, F1 %.2f",
                  tagging[g], lengths[l], windows, gold, pred, correct, f1);
            free(out);
        }
    // the submission writer, fed the gold tags through windows of 10 overlapping by 3, gives back dev.json's labels
    int rc = run("--do_predict --oracle --test_file " DEV " --tagging bioes --max_seq_length 12 --doc_stride 7 "
                 "--predict_file build/test_ner_oracle_pred.json --out build/test_ner_oracle", "build/test_ner_oracle.out");
    char *pred = slurp("build/test_ner_oracle_pred.json", NULL), *dev = slurp(DEV, NULL);
    int lines = 0, same = rc == 0 && pred && dev && same_labels(pred, dev, &lines);
    CHECK(same && lines == 1343,
          "--do_predict --oracle on dev.json (windows of 10, stride 7): the submission file's labels equal dev.json's on all %d lines", lines);
    CHECK(pred && !strncmp(pred, "{\"id\": 0, \"label\": {\"address\": {\"台湾\": [[15, 16]]}, \"name\": {\"彭小军\": [[0, 2]]}}}\n", 80),
          "submission format: {\"id\", \"label\": {type: {entity: [[s, e]]}}} per line, types in --types order");
    free(pred); free(dev);
}

// ---------------------------------------------------------------------------- one-character entities (data-free)

// CLUENER's dev set has no one-character mention, so the oracle above never decodes one. These
// records (written here, no ../shared/data needed) put one-character mentions at the start, in the
// middle and at the end of a text, as a whole text, next to each other (the same type and another
// type) and next to longer ones; their gold tags (BIO: a lone B- followed by B-, O or the end;
// BIOES: S-) go through windows, merging, tags -> spans and scoring, and must come back exactly.
// Catches (each seen failing in a scratch copy of ner_entities.h): a span closed only when it has
// 2+ characters (every one-character mention lost), BIOES's S- not closing a span of its own, BIO's
// B- continuing an open mention of its type (adjacent lone B-s merged into one), the mention open at
// the end of the text not closed.
static const char *const single_records[] = {
    "{\"text\": \"张说他来了\", \"label\": {\"name\": {\"张\": [[0, 0]]}}}",                        // at the start
    "{\"text\": \"他在京工作\", \"label\": {\"address\": {\"京\": [[2, 2]]}}}",                      // in the middle
    "{\"text\": \"我们去沪\", \"label\": {\"address\": {\"沪\": [[3, 3]]}}}",                        // at the end
    "{\"text\": \"李\", \"label\": {\"name\": {\"李\": [[0, 0]]}}}",                                 // the whole text
    "{\"text\": \"张李来了\", \"label\": {\"name\": {\"张\": [[0, 0]], \"李\": [[1, 1]]}}}",            // two of one type, adjacent
    "{\"text\": \"张王小明来\", \"label\": {\"name\": {\"张\": [[0, 0]], \"王小明\": [[1, 3]]}}}",      // then a longer one of its type
    "{\"text\": \"他是王小明张\", \"label\": {\"name\": {\"王小明\": [[2, 4]], \"张\": [[5, 5]]}}}",    // after one of its type, at the end
    "{\"text\": \"京张\", \"label\": {\"address\": {\"京\": [[0, 0]]}, \"name\": {\"张\": [[1, 1]]}}}",   // two types, the whole text
    "{\"text\": \"京北京大学沪\", \"label\": {\"address\": {\"京\": [[0, 0]], \"沪\": [[5, 5]]}, \"organization\": {\"北京大学\": [[1, 4]]}}}",
    "{\"text\": \"张见张\", \"label\": {\"name\": {\"张\": [[0, 0], [2, 2]]}}}",                     // one entity twice
    "{\"text\": \"去京张李\", \"label\": {\"address\": {\"京\": [[1, 1]]}, \"name\": {\"张\": [[2, 2]], \"李\": [[3, 3]]}}}",
};
#define SINGLE_MENTIONS 20
#define SINGLE "build/test_ner_single.json"

static void test_single_char(void) {
    FILE *f = fopen(SINGLE, "w");
    if (!f) { CHECK(0, "cannot write %s", SINGLE); return; }
    for (size_t i = 0; i < sizeof single_records / sizeof *single_records; i++) fprintf(f, "%s\n", single_records[i]);
    fclose(f);
    const int nrec = (int)(sizeof single_records / sizeof *single_records);
    const char *tagging[] = { "bio", "bioes" };
    const int lengths[] = { 128, 5, 3 };   // one window per text; windows of 3 characters, stride 1; of 1 character
    for (int g = 0; g < 2; g++) {
        for (int l = 0; l < 3; l++) {
            char args[1024];
            snprintf(args, sizeof args, "--do_eval --oracle --dev_file " SINGLE " --vocab " VOCAB " --tagging %s --max_seq_length %d "
                     "--out build/test_ner_oracle", tagging[g], lengths[l]);
            int rc = run(args, "build/test_ner_single.out");
            char *out = slurp("build/test_ner_single.out", NULL);
            long gold = 0, pred = 0, correct = 0;
            double f1 = 0;
            int ok = rc == 0 && overall(out, &gold, &pred, &correct, &f1);
            CHECK(ok && gold == SINGLE_MENTIONS && pred == SINGLE_MENTIONS && correct == SINGLE_MENTIONS && f1 == 100.0,
                  "one-character mentions, oracle %-5s max_seq_length %3d: gold tags -> spans %ld/%ld/%ld (want %d each), F1 %.2f",
                  tagging[g], lengths[l], gold, pred, correct, SINGLE_MENTIONS, f1);
            free(out);
        }
        // the submission file written from the gold tags holds the records' labels exactly
        char args[1024];
        snprintf(args, sizeof args, "--do_predict --oracle --test_file " SINGLE " --vocab " VOCAB " --tagging %s --max_seq_length 5 "
                 "--predict_file build/test_ner_single_pred.json --out build/test_ner_oracle", tagging[g]);
        int rc = run(args, "build/test_ner_single.out");
        char *pred = slurp("build/test_ner_single_pred.json", NULL), *gold = slurp(SINGLE, NULL);
        int lines = 0, same = rc == 0 && pred && gold && same_labels(pred, gold, &lines);
        CHECK(same && lines == nrec, "one-character mentions, --do_predict --oracle %-5s: the submission file's labels equal the records' on %d/%d lines",
              tagging[g], lines, nrec);
        free(pred); free(gold);
    }
}

// ---------------------------------------------------------------------------- CRF decoding vs brute force (data-free)

// A tiny CRF model made here (random encoder, classifier and transitions scaled up so that the
// emissions and the transitions, START and STOP included, both sway the best path), saved, and
// ner --do_predict --model on short texts written here: each text's submission spans must be those
// of its highest-scoring tag path, found by scoring all K^n paths of the emissions that
// bert_token_classify_forward gives the same in-memory model (the file ner loads is not used to
// compute the expectation), decoded by this file's own reading of the lenient BIOES rules.
// Catches (each seen failing in a scratch copy of bert.h or ner.c): Viterbi without the STOP
// transitions, without the START transitions, backtracking one step off, each token's argmax in
// place of the path; the predicted tags copied one token off (from [CLS]) into the windows; the
// loaded model's transitions zeroed. (The first two and the argmax fail no other test here.)
#define CRF_K 9                 // --types name,address --tagging bioes: O, then B I E S per type
#define CRF_RECORDS 21          // lengths 1..7, three of each: up to 9^7 paths a text
#define CRF_MODEL "build/test_ner_crf.safetensors"
#define CRF_TEXTS "build/test_ner_crf.json"
static const char *const crf_types[] = { "name", "address" };

typedef struct { double best, second; int path[8], cur[8]; } crf_search;

// every path from token t on, given the tags before it and their score
static void crf_enumerate(crf_search *s, const float *em, const float *tr, int n, int t, double score) {
    const int K2 = CRF_K + 2;
    if (t == n) {
        score += tr[s->cur[n - 1] * K2 + CRF_K + 1];   // -> STOP
        if (score > s->best) { s->second = s->best; s->best = score; memcpy(s->path, s->cur, sizeof s->path); }
        else if (score > s->second) s->second = score;
        return;
    }
    for (int y = 0; y < CRF_K; y++) {
        s->cur[t] = y;
        double add = (double)em[t * CRF_K + y] + (t ? (double)tr[s->cur[t - 1] * K2 + y] : (double)tr[CRF_K * K2 + y]);   // START -> y0
        crf_enumerate(s, em, tr, n, t + 1, score + add);
    }
}

// the spans of a BIOES path as "type|entity|start|end\n" lines sorted (canonical()'s form): B opens,
// I continues an open mention of its type (else opens one), E closes one of its type (else stands
// alone), S stands alone, O closes; text is n characters of 3 bytes each
static char *crf_spans(const int *y, int n, const char *text) {
    char *items[16], buf[128];
    int count = 0, open = -1, start = 0;
    size_t total = 1;
    for (int i = 0; i <= n; i++) {
        int tag = i < n ? y[i] : 0, type = tag ? (tag - 1) / 4 : -1;
        char pre = tag ? "BIES"[(tag - 1) % 4] : 'O';
        if (pre == 'I' && open == type) continue;
        // the open mention (if any) ends at close_at; lone: token i is a mention of its own
        int close_at = pre == 'E' && open == type ? i : i - 1, lone = pre == 'S' || (pre == 'E' && open != type);
        for (int pass = 0; pass < 2; pass++) {
            int ty = pass ? type : open, s0 = pass ? i : start, s1 = pass ? i : close_at;
            if (pass ? !lone : open < 0) continue;
            snprintf(buf, sizeof buf, "%s|%.*s|%d|%d\n", crf_types[ty], 3 * (s1 - s0 + 1), text + 3 * s0, s0, s1);
            items[count++] = strdup(buf);
            total += strlen(buf);
        }
        open = -1;
        if (pre == 'B' || pre == 'I') { open = type; start = i; }
    }
    for (int i = 1; i < count; i++)
        for (int j = i; j > 0 && strcmp(items[j - 1], items[j]) > 0; j--) { char *x = items[j]; items[j] = items[j - 1]; items[j - 1] = x; }
    char *out = (char *)calloc(total, 1);
    for (int i = 0; i < count; i++) { strcat(out, items[i]); free(items[i]); }
    return out;
}

static void test_crf_brute_force(void) {
    static const char pool[] = "投招换据数文斯日是普暂有期李核桂桑死比水永洲浙海潮热狂球生界";   // characters of ner_vocab.txt
    const int npool = (int)(sizeof pool - 1) / 3;
    bert_vocab *v = bert_vocab_load(VOCAB);
    if (!v) { CHECK(0, "%s", bert_last_error()); return; }
    bert_config cfg = bert_config_default();   // then a tiny BERT: V from the vocab, C 16, L 1, NH 2, F 32, P 32
    cfg.vocab_size = v->size; cfg.hidden_size = 16; cfg.num_hidden_layers = 1; cfg.num_attention_heads = 2;
    cfg.intermediate_size = 32; cfg.max_position_embeddings = 32; cfg.initializer_range = 0.02f;
    bert_model *m = bert_model_create(&cfg, 11);
    if (!m || bert_token_classifier_add(m, CRF_K, 1, 11)) { CHECK(0, "tiny CRF model: %s", bert_last_error()); bert_vocab_free(v); bert_model_free(m); return; }
    int wi = bert_model_find(m, "classifier.weight"), ti = bert_model_find(m, "crf.transitions");
    for (size_t i = 0; i < m->tensors[wi].numel; i++) m->tensors[wi].data[i] *= 40.0f;   // logits of about +-3
    for (size_t i = 0; i < m->tensors[ti].numel; i++) m->tensors[ti].data[i] *= 20.0f;   // transitions in +-2
    const float *tr = m->tensors[ti].data;
    int saved = !bert_model_save(m, CRF_MODEL);

    // the texts and their ids as ner makes them: [CLS], each character's token, [SEP]
    char texts[CRF_RECORDS][3 * 8 + 1];
    int lens[CRF_RECORDS];
    uint32_t lcg = 12345;
    FILE *f = fopen(CRF_TEXTS, "w");
    for (int r = 0; r < CRF_RECORDS; r++) {
        lens[r] = 1 + r % 7;
        for (int c = 0; c < lens[r]; c++) {
            lcg = lcg * 1664525u + 1013904223u;
            memcpy(texts[r] + 3 * c, pool + 3 * ((lcg >> 16) % (uint32_t)npool), 3);
        }
        texts[r][3 * lens[r]] = 0;
        if (f) fprintf(f, "{\"id\": %d, \"text\": \"%s\"}\n", r, texts[r]);
    }
    if (f) fclose(f);

    // the best path of each text by enumeration
    char *want[CRF_RECORDS];
    double min_margin = 1e30;
    int differ_from_argmax = 0, with_spans = 0, used[CRF_K] = { 0 }, ok_ids = 1;
    bert_ctx *ctx = bert_ctx_create((size_t)16 << 20);
    ctx->training = 0; ctx->grad_enabled = 0;
    for (int r = 0; r < CRF_RECORDS; r++) {
        int n = lens[r], T = n + 2;
        int32_t ids[10], mask[10], len1[1] = { n };
        ids[0] = v->cls_id; ids[n + 1] = v->sep_id;
        for (int c = 0; c < n; c++) ok_ids &= bert_tokenize(v, 1, texts[r] + 3 * c, 3, &ids[1 + c], 1) == 1 && ids[1 + c] != v->unk_id;
        for (int t = 0; t < T; t++) mask[t] = 1;
        bert_ctx_reset(ctx, 0);
        bert_token_classify_out o = bert_token_classify_forward(ctx, m, ids, NULL, mask, 1, T, -1.0f, NULL, len1);
        float em[8 * CRF_K];
        bert_tensor_read(ctx, o.emissions, em);
        crf_search s;
        memset(&s, 0, sizeof s);
        s.best = s.second = -INFINITY;
        crf_enumerate(&s, em, tr, n, 0, 0.0);
        if (n > 1 && s.best - s.second < min_margin) min_margin = s.best - s.second;
        for (int t = 0; t < n; t++) {
            int am = 0;
            for (int k = 1; k < CRF_K; k++) if (em[t * CRF_K + k] > em[t * CRF_K + am]) am = k;
            differ_from_argmax += am != s.path[t];
            used[s.path[t]] = 1;
        }
        want[r] = crf_spans(s.path, n, texts[r]);
        with_spans += want[r][0] != 0;
    }
    int distinct = 0;
    for (int k = 0; k < CRF_K; k++) distinct += used[k];
    CHECK(saved && ok_ids && min_margin > 1e-3 && differ_from_argmax > 0 && with_spans >= CRF_RECORDS / 3 && distinct >= 5,
          "brute force over all 9^n tag paths of %d texts (1-7 characters): best paths clear by >= %.3g, %d tags used, "
          "%d tokens where the path is not the emissions' argmax, %d texts with mentions", CRF_RECORDS, min_margin, distinct,
          differ_from_argmax, with_spans);

    // ner's Viterbi: one window per batch (the emissions computed exactly as above), then all in one padded batch
    const char *batches[] = { "--eval_batch_size 1", "" };
    for (int b = 0; b < 2; b++) {
        char args[1024];
        snprintf(args, sizeof args, "--do_predict --model " CRF_MODEL " --vocab " VOCAB " --types name,address --tagging bioes "
                 "--max_seq_length 16 %s --test_file " CRF_TEXTS " --predict_file build/test_ner_crf_pred.json --out build/test_ner_oracle",
                 batches[b]);
        int rc = run(args, "build/test_ner_crf.out");
        char *out = slurp("build/test_ner_crf.out", NULL), *pred = slurp("build/test_ner_crf_pred.json", NULL);
        int same = 0, lines = 0;
        for (const char *p = pred; p && *p && lines < CRF_RECORDS; lines++) {
            const char *e = strchr(p, '\n');
            bert_json *j = NULL;
            if (!e || bert_json_parse(&j, p, (size_t)(e - p))) break;
            const bert_json *id = bert_json_get(j, "id");
            char *got = canonical(bert_json_get(j, "label"));
            int eq = id && id->number == lines && !strcmp(got, want[lines]);
            if (!eq) printf("         text %d %s: ner %s vs brute force %s\n", lines, texts[lines], got, want[lines]);
            same += eq;
            free(got);
            bert_json_free(j);
            p = e + 1;
        }
        CHECK(rc == 0 && out && strstr(out, "has crf.transitions: decoding with the CRF") && lines == CRF_RECORDS && same == CRF_RECORDS,
              "ner --do_predict with the CRF model%s: %d/%d texts' spans are those of the brute-force best path (exit %d)",
              b ? " (all texts in one padded batch)" : " (one text per batch)", same, CRF_RECORDS, rc);
        free(out); free(pred);
    }
    for (int r = 0; r < CRF_RECORDS; r++) free(want[r]);
    bert_ctx_free(ctx);
    bert_model_free(m);
    bert_vocab_free(v);
}

// ---------------------------------------------------------------------------- vs PyTorch

static void test_reference(void) {
    if (!file_exists(FIXTURE)) { CHECK(0, "%s missing (make ref)", FIXTURE); return; }
    bert_st ref;
    if (bert_st_open(&ref, FIXTURE)) { CHECK(0, "%s", bert_last_error()); return; }
    struct { const char *name, *flags; } cases[] = {
        { "softmax", "--max_seq_length 64 --batch_size 8" },
        { "crf", "--use_crf --max_seq_length 16 --batch_size 12" },
    };
    if (system("rm -rf build/test_ner_grads_softmax build/test_ner_grads_crf")) {}
    for (int c = 0; c < 2; c++) {
        char args[1024], dump[128], key[256];
        snprintf(dump, sizeof dump, "build/test_ner_%s.safetensors", cases[c].name);
        snprintf(args, sizeof args, "--do_train --train_file " SAMPLE " --vocab " VOCAB " --init " INIT " --no_shuffle --seed 7 "
                 "%s --out build/test_ner_grads_%s --debug_dump_grads %s", cases[c].flags, cases[c].name, dump);
        int rc = run(args, "build/test_ner_grads.out");
        bert_st got;
        if (rc != 0 || bert_st_open(&got, dump)) { CHECK(0, "ner %s (exit %d)", args, rc); continue; }
        // the batch: ids, softmax labels, CRF tags and lengths, exactly
        const char *ints[] = { "input_ids", "labels", "crf_tags", "lengths" };
        int same = 1;
        for (int i = 0; i < 4; i++) {
            const bert_st_tensor *a = bert_st_find(&got, ints[i]);
            snprintf(key, sizeof key, "%s.%s", cases[c].name, ints[i]);
            const bert_st_tensor *b = bert_st_find(&ref, key);
            same &= a && b && a->numel == b->numel && a->end - a->begin == b->end - b->begin &&
                    !memcmp(got.data + a->begin, ref.data + b->begin, a->end - a->begin);
        }
        const bert_st_tensor *ids = bert_st_find(&got, "input_ids");
        CHECK(same, "%s: the batch (%lldx%lld ids, labels, CRF tags, lengths) equals the reference's: characters, tags, windows",
              cases[c].name, ids ? (long long)ids->shape[0] : 0LL, ids ? (long long)ids->shape[1] : 0LL);
        float lg, lr;
        int64_t one[1] = { 1 };
        snprintf(key, sizeof key, "%s.loss", cases[c].name);
        if (!bert_st_read_f32(&got, "loss", &lg, one, 1) && !bert_st_read_f32(&ref, key, &lr, one, 1))
            check_close(cases[c].name[0] == 's' ? "softmax loss (mean over characters) vs PyTorch" : "CRF loss (mean NLL over windows) vs PyTorch",
                        &lg, &lr, 1, 1e-6, 1e-4);
        // every grad of the case's model, as one array (per-element tolerance), and the head's on their own
        size_t total = 0;
        int tensors = 0, matched = 0;
        for (int i = 0; i < got.count; i++) if (!strncmp(got.tensors[i].name, "grad.", 5)) total += got.tensors[i].numel;
        float *ga = (float *)calloc(total + 1, sizeof(float)), *gb = (float *)calloc(total + 1, sizeof(float));
        size_t at = 0;
        for (int i = 0; i < got.count; i++) {
            const bert_st_tensor *t = &got.tensors[i];
            if (strncmp(t->name, "grad.", 5)) continue;
            tensors++;
            snprintf(key, sizeof key, "%s.%s", cases[c].name, t->name);
            if (bert_st_read_f32(&got, t->name, ga + at, t->shape, t->ndim) || bert_st_read_f32(&ref, key, gb + at, t->shape, t->ndim)) {
                printf("         %s: %s\n", key, bert_last_error());
                continue;
            }
            matched++;
            if (strstr(t->name, "classifier.weight") || strstr(t->name, "crf.transitions")) {
                char label[96];
                snprintf(label, sizeof label, "%s %s vs PyTorch", cases[c].name, t->name);
                check_close(label, ga + at, gb + at, t->numel, 1e-6, 1e-4);
            }
            at += t->numel;
        }
        int ref_grads = 0;
        snprintf(key, sizeof key, "%s.grad.", cases[c].name);
        for (int i = 0; i < ref.count; i++) ref_grads += !strncmp(ref.tensors[i].name, key, strlen(key));
        char label[96];
        snprintf(label, sizeof label, "%s: all %d grads (%zu floats) vs PyTorch", cases[c].name, tensors, total);
        CHECK(matched == tensors && tensors == ref_grads, "%s: the model's %d tensors are the reference's %d", cases[c].name, tensors, ref_grads);
        check_close(label, ga, gb, total, 1e-6, 1e-4);
        free(ga); free(gb);
        bert_st_close(&got);
    }
    bert_st_close(&ref);
}

// ---------------------------------------------------------------------------- training, resume, outputs

static long first_loss_x1000(const char *log, int last) {
    const char *p = log, *hit = NULL;
    while ((p = strstr(p, "{\"step\": ")) != NULL) { if (!hit || last) hit = p; if (!last) break; p++; }
    const char *l = hit ? strstr(hit, "\"loss\": ") : NULL;
    return l ? (long)(1000 * strtod(l + 8, NULL)) : -1;
}

static void test_training(void) {
    const char *common = "--do_train --do_eval --do_predict --train_file " SAMPLE " --dev_file " SAMPLE
                         " --test_file tests/data/ner_test_sample.json --vocab " VOCAB " --init " INIT
                         " --use_crf --max_seq_length 24 --batch_size 8 --steps 40 --lr 3e-2 --save_every 10 --print_every 10";
    char args[2048];
    if (system("rm -rf build/test_ner_a build/test_ner_b")) {}
    snprintf(args, sizeof args, "%s --out build/test_ner_a", common);
    int rc = run(args, "build/test_ner_a.out");
    char *out = slurp("build/test_ner_a.out", NULL), *log = slurp("build/test_ner_a/log.jsonl", NULL);
    long l0 = first_loss_x1000(log, 0), l1 = first_loss_x1000(log, 1);
    CHECK(rc == 0 && l0 > 0 && l1 > 0 && l1 < l0 * 6 / 10, "40 CRF steps on the sample (windows of 22): loss %.3f -> %.3f", l0 / 1000.0, l1 / 1000.0);
    long gold = 0, pred = 0, correct = 0;
    double f1 = 0;
    int ok = overall(out, &gold, &pred, &correct, &f1);
    CHECK(ok && gold == 19 && f1 > 20.0, "it learns its training records: F1 %.2f over their %ld mentions", f1, gold);

    // stop at step 13 (checkpoint as Ctrl-C does), resume: the same final weights as the straight run
    snprintf(args, sizeof args, "%s --out build/test_ner_b --debug_stop_at_step 13", common);
    int rc1 = run(args, "build/test_ner_b.out");
    snprintf(args, sizeof args, "%s --out build/test_ner_b --resume", common);
    int rc2 = run(args, "build/test_ner_b.out");
    size_t na = 0, nb = 0;
    char *ma = slurp("build/test_ner_a/model.safetensors", &na), *mb = slurp("build/test_ner_b/model.safetensors", &nb);
    char *outb = slurp("build/test_ner_b.out", NULL);
    CHECK(rc1 == 130 && rc2 == 0 && ma && mb && na == nb && !memcmp(ma, mb, na) && outb && strstr(outb, "resumed from build/test_ner_b/ckpt-00000013"),
          "stopped after step 13 (exit %d), resumed (exit %d): model.safetensors byte-identical to the straight run's", rc1, rc2);
    free(ma); free(mb); free(outb);

    // HF BertForTokenClassification names and config.json
    bert_st st;
    int names = !bert_st_open(&st, "build/test_ner_a/model.safetensors");
    if (names) {
        const bert_st_tensor *w = bert_st_find(&st, "classifier.weight"), *b = bert_st_find(&st, "classifier.bias"),
                             *t = bert_st_find(&st, "crf.transitions"), *q = bert_st_find(&st, "bert.encoder.layer.1.attention.self.query.weight");
        names = w && b && t && q && w->shape[0] == 21 && w->shape[1] == 16 && b->shape[0] == 21 && t->shape[0] == 23 && t->shape[1] == 23;
        bert_st_close(&st);
    }
    CHECK(names, "model.safetensors: bert.*, classifier.weight (21,16), classifier.bias (21), crf.transitions (23,23)");
    char *cfg = slurp("build/test_ner_a/config.json", NULL);
    bert_json *j = NULL;
    int cfg_ok = cfg && !bert_json_parse(&j, cfg, strlen(cfg));
    if (cfg_ok) {
        const bert_json *arch = bert_json_get(j, "architectures"), *id2 = bert_json_get(j, "id2label"), *l2i = bert_json_get(j, "label2id");
        const bert_json *b1 = bert_json_get(id2, "1"), *i20 = bert_json_get(l2i, "I-scene");
        cfg_ok = arch && arch->count == 1 && !strcmp(arch->child[0].string, "BertForTokenClassification") && id2 && id2->count == 21 &&
                 b1 && !strcmp(b1->string, "B-address") && i20 && i20->number == 20 && bert_json_get(j, "hidden_size")->number == 16;
    }
    CHECK(cfg_ok, "config.json: HF BertForTokenClassification, id2label/label2id of the 21 BIO tags, the encoder's config");
    bert_json_free(j);
    free(cfg);

    // the saved model on its own: the CRF is found in the file, the scores are the same
    rc = run("--do_eval --model build/test_ner_a/model.safetensors --dev_file " SAMPLE " --vocab " VOCAB " --max_seq_length 24 --out build/test_ner_c",
             "build/test_ner_c.out");
    char *outc = slurp("build/test_ner_c.out", NULL);
    const char *ta = out ? strstr(out, "\ntype ") : NULL, *tc = outc ? strstr(outc, "\ntype ") : NULL;
    const char *ea = ta ? strstr(ta, "\nmacro") : NULL, *ec = tc ? strstr(tc, "\nmacro") : NULL;
    CHECK(rc == 0 && outc && strstr(outc, "has crf.transitions: decoding with the CRF") && ea && ec && ea - ta == ec - tc && !memcmp(ta, tc, (size_t)(ea - ta)),
          "--do_eval --model alone: CRF found in the file, the same per-type table as at the end of training");
    free(outc);

    // the submission file for test.json's first 5 records: ids as given, every span's text is its entity
    char *sub = slurp("build/test_ner_a/cluener_predict.json", NULL), *test = slurp("tests/data/ner_test_sample.json", NULL);
    int lines = 0, good = sub && test;
    for (const char *s = sub, *t = test; good && *s && *t; lines++) {
        const char *es = strchr(s, '\n'), *et = strchr(t, '\n');
        bert_json *js = NULL, *jt = NULL;
        good = es && et && !bert_json_parse(&js, s, (size_t)(es - s)) && !bert_json_parse(&jt, t, (size_t)(et - t));
        good = good && bert_json_get(js, "id")->number == lines && bert_json_get(jt, "id")->number == lines;
        const bert_json *label = good ? bert_json_get(js, "label") : NULL;
        const char *text = good ? bert_json_get(jt, "text")->string : "";
        for (int ty = 0; good && label && ty < label->count; ty++)
            for (int e = 0; good && e < label->child[ty].count; e++) {
                const bert_json *ent = &label->child[ty].child[e];
                for (int k = 0; good && k < ent->count; k++) {
                    int s0 = (int)ent->child[k].child[0].number, s1 = (int)ent->child[k].child[1].number, cp = 0;
                    const char *b0 = NULL, *b1 = NULL;
                    for (const char *c = text; ; c++) {   // code point offsets -> bytes
                        if ((*c & 0xC0) == 0x80) continue;
                        if (cp == s0) b0 = c;
                        if (cp == s1 + 1) { b1 = c; break; }
                        if (!*c) break;
                        cp++;
                    }
                    good = b0 && b1 && (size_t)(b1 - b0) == strlen(ent->key) && !memcmp(b0, ent->key, strlen(ent->key));
                }
            }
        bert_json_free(js); bert_json_free(jt);
        s = es + 1; t = et + 1;
    }
    CHECK(good && lines == 5, "cluener_predict.json: %d lines, ids 0-4 as in test.json, every [s, e] spells its entity", lines);
    free(sub); free(test); free(out); free(log);
}

// ---------------------------------------------------------------------------- bad input

static void test_bad_input(void) {
    // each broken line of ner_bad.json after its good first line: one error line naming FILE:2
    struct { int line; const char *want; } bad[] = {
        { 2, "span [23, 99] of '曼联' is out of range (the text has 41 characters)" },
        { 4, "span [5, 7] is '到文汇' in the text, not '文汇路'" },
        { 5, "unknown entity type 'person'" },
        { 6, "json: " },
        { 7, "no \"text\" string" },
        { 8, "entity '彩票监管部门': a span is not [start, end] with integers" },
    };
    char *all = slurp("tests/data/ner_bad.json", NULL);
    const char *lines[16];
    int n = 0;
    for (char *p = all; p && *p && n < 16; n++) { lines[n] = p; char *e = strchr(p, '\n'); if (!e) { n++; break; } *e = 0; p = e + 1; }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen("build/test_ner_bad.json", "w");
        if (!f || bad[i].line > n) { CHECK(0, "tests/data/ner_bad.json has line %d", bad[i].line); if (f) fclose(f); continue; }
        fprintf(f, "%s\n%s\n", lines[0], lines[bad[i].line - 1]);
        fclose(f);
        int rc = run("--do_eval --oracle --dev_file build/test_ner_bad.json --vocab " VOCAB " --out build/test_ner_oracle", "build/test_ner_bad.out");
        char *e = slurp("build/test_ner_bad.out.err", NULL), want[512];
        snprintf(want, sizeof want, "ner: build/test_ner_bad.json:2: %s", bad[i].want);
        int one_line = e && strchr(e, '\n') == e + strlen(e) - 1;
        if (one_line) e[strlen(e) - 1] = 0;
        CHECK(rc == 1 && one_line && strstr(e, want) == e, "ner_bad.json line %d: exit 1, one line: %s", bad[i].line, e ? e : "");
        free(e);
    }
    free(all);
    int rc = run("--do_eval --oracle --skip_bad_records --dev_file tests/data/ner_bad.json --vocab " VOCAB " --out build/test_ner_oracle", "build/test_ner_bad.out");
    char *e = slurp("build/test_ner_bad.out.err", NULL), *o = slurp("build/test_ner_bad.out", NULL);
    long gold = 0, pred = 0, correct = 0;
    double f1 = 0;
    int scored = overall(o, &gold, &pred, &correct, &f1);
    CHECK(rc == 0 && e && strstr(e, "tests/data/ner_bad.json: skipped 6 malformed records (--skip_bad_records; first: line 2: span [23, 99]") &&
          scored && gold == 7 && f1 == 100.0,
          "--skip_bad_records: the 6 bad records dropped and counted in one line, the 3 good ones scored (%ld mentions, F1 %.2f)", gold, f1);
    free(e); free(o);

    struct { const char *args, *want; } flags[] = {
        { "--do_eval --oracle --tagging bilou --dev_file " SAMPLE " --vocab " VOCAB, "--tagging: 'bilou' is not bio or bioes" },
        { "--vocab " VOCAB, "nothing to do" },
        { "--do_eval --oracle --dev_file missing.json --vocab " VOCAB, "missing.json: No such file" },
        { "--do_train --train_file " SAMPLE " --vocab " VOCAB " --init tests/ref/tiny.safetensors --out build/test_ner_oracle",
          "has 184 tokens, but the model's vocab_size is 112" },
        { "--do_train --train_file " SAMPLE " --vocab " VOCAB " --out build/test_ner_oracle", "no config: give --config bert_config.json" },
        { "--do_predict --test_file tests/data/ner_test_sample.json --vocab " VOCAB " --model " INIT " --types name,book --out build/test_ner_oracle",
          "tensor 'classifier.weight' has shape [21,16], expected [5,16]" },
        // a stream stops at the cap instead of growing until memory runs out
        { "--do_eval --oracle --dev_file /dev/zero --vocab " VOCAB " --out build/test_ner_oracle",
          "ner: /dev/zero: not a regular file (a device)" },
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        rc = run(flags[i].args, "build/test_ner_bad.out");
        e = slurp("build/test_ner_bad.out.err", NULL);
        int one_line = e && strchr(e, '\n') == e + strlen(e) - 1;
        if (one_line) e[strlen(e) - 1] = 0;
        CHECK(rc == 1 && one_line && strstr(e, flags[i].want), "%s: exit 1, one line with \"%s\" (exit %d: %s)",
              flags[i].args, flags[i].want, rc, e ? e : "");
        free(e);
    }
}

// ---------------------------------------------------------------------------- many mentions

// one record's mentions as a JSON list of [start, end], from the last to the first (the reverse of
// the order the tags and the output use)
static void spans_json(FILE *f, int from, int step, int count, int len) {
    fputc('[', f);
    for (int k = count - 1; k >= 0; k--) fprintf(f, "[%d, %d]%s", from + k * step, from + k * step + len - 1, k ? ", " : "");
    fputc(']', f);
}

// the most mentions a record may have (10000), overlapping and tied, through tagging, scoring and the
// submission file; one more than that is an error line
static void test_many_mentions(void) {
    // "北京上海" x 2500: organization 北京上海 on every other copy beats address 北京 there (the same
    // start, longer) and book 海 / scene and name 上海 inside it; elsewhere address 北京 stays, and
    // scene 上海 beats name 上海 (the same span: the earlier in the file)
    FILE *f = fopen("build/test_ner_spans.json", "w");
    fprintf(f, "{\"text\": \"");
    for (int i = 0; i < 2500; i++) fprintf(f, "北京上海");
    fprintf(f, "\", \"label\": {\"organization\": {\"北京上海\": ");
    spans_json(f, 0, 8, 1250, 4);
    fprintf(f, "}, \"scene\": {\"上海\": ");
    spans_json(f, 2, 4, 2500, 2);
    fprintf(f, "}, \"address\": {\"北京\": ");
    spans_json(f, 0, 4, 2500, 2);
    fprintf(f, "}, \"name\": {\"上海\": ");
    spans_json(f, 2, 4, 2500, 2);
    fprintf(f, "}, \"book\": {\"海\": ");
    spans_json(f, 3, 8, 1250, 1);
    fprintf(f, "}}}\n");
    fclose(f);
    int rc = run("--do_eval --do_predict --oracle --dev_file build/test_ner_spans.json --test_file build/test_ner_spans.json --vocab " VOCAB
                 " --predict_file build/test_ner_spans_pred.json --out build/test_ner_oracle", "build/test_ner_spans.out");
    char *out = slurp("build/test_ner_spans.out", NULL), *pred = slurp("build/test_ner_spans_pred.json", NULL);
    long gold = 0, npred = 0, correct = 0;
    double f1 = 0;
    int scored = overall(out, &gold, &npred, &correct, &f1);
    CHECK(rc == 0 && scored && gold == 10000 && npred == 3750 && correct == 3750,
          "a record with 10000 mentions: 3750 tagged (first start, then longer, then file order win), all scored (%ld/%ld/%ld)", gold, npred, correct);
    bert_json *j = NULL;
    const bert_json *label = pred && !bert_json_parse(&j, pred, strlen(pred)) ? bert_json_get(j, "label") : NULL;
    static const char *const types[] = { "address", "organization", "scene" }, *const texts[] = { "北京", "北京上海", "上海" };
    const int first[] = { 4, 0, 6 }, len[] = { 2, 4, 2 };
    int ok = label && label->count == 3;
    for (int t = 0; ok && t < 3; t++) {
        const bert_json *ty = &label->child[t], *ent = ty->count == 1 ? &ty->child[0] : NULL;
        ok = !strcmp(ty->key, types[t]) && ent && !strcmp(ent->key, texts[t]) && ent->count == 1250;
        for (int k = 0; ok && k < 1250; k++)
            ok = ent->child[k].child[0].number == first[t] + 8 * k && ent->child[k].child[1].number == first[t] + 8 * k + len[t] - 1;
    }
    CHECK(ok, "the submission file lists them by type, entity and position: address 北京, organization 北京上海, scene 上海, 1250 spans each");
    bert_json_free(j);
    free(out); free(pred);

    f = fopen("build/test_ner_spans.json", "w");   // 50000 mentions: the tags and scores were quadratic in them
    fprintf(f, "{\"text\": \"");
    for (int i = 0; i < 50000; i++) fprintf(f, "北");
    fprintf(f, "\", \"label\": {\"address\": {\"北\": ");
    spans_json(f, 0, 1, 50000, 1);
    fprintf(f, "}}}\n");
    fclose(f);
    rc = run("--do_eval --oracle --dev_file build/test_ner_spans.json --vocab " VOCAB " --out build/test_ner_oracle", "build/test_ner_spans.out");
    char *e = slurp("build/test_ner_spans.out.err", NULL);
    int one_line = e && strchr(e, '\n') == e + strlen(e) - 1;
    if (one_line) e[strlen(e) - 1] = 0;
    CHECK(rc == 1 && one_line && !strcmp(e, "ner: build/test_ner_spans.json:1: more than 10000 entity spans in one record"),
          "a record with 50000 mentions: exit 1, one line naming FILE:LINE (exit %d: %.200s)", rc, e ? e : "");
    free(e);
}

int main(int argc, char **argv) {
    (void)argc;
    check_find_binary(argv[0], "ner");
    test_reference();
    test_training();
    test_bad_input();
    test_many_mentions();
    test_oracle();
    test_single_char();
    test_crf_brute_force();
    if (system("rm -rf build/test_ner_a build/test_ner_b build/test_ner_c build/test_ner_grads build/test_ner_oracle build/test_ner_*.out* "
               "build/test_ner_*.safetensors build/test_ner_bad.json build/test_ner_oracle_pred.json build/test_ner_spans* build/test_ner_single* build/test_ner_crf*")) {}
    return check_summary();
}
