// test_pretrain_data.c - bert_pretrain_data_create (google-research/bert's create_pretraining_data
// procedure on token ids) on a synthetic corpus: the instance layout ([CLS] A [SEP] B [SEP], segment
// ids, padding), masking statistics (15 %, 80/10/10, never CLS/SEP, sorted positions, the cap),
// next-sentence balance and truth, short sequences, whole-word masking, determinism per seed, the
// TFRecord round trip and bad options.
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "check.h"

#define V 5000
#define CLS 101
#define SEP 102
#define MASK 103

typedef struct {
    int n, nsp1, short_seqs, bad_layout, bad_mask, masked, mask_tok, same_tok, tokens, over_cap, bad_nsp;
    int wwm_split, wwm_checked;
    const unsigned char *cont;
    unsigned char *bytes; size_t len, cap;   // every instance encoded, for determinism checks
    const int32_t *doc_of_token;             // (V) which document a token id belongs to, -1 if shared
} stats;

// token ids encode their document: doc d uses ids 1000 + 4*d .. 1000 + 4*d + 3 (mod the range),
// so a B segment drawn from another document is recognisable
static int32_t token_of(int doc, int k) { return 1000 + (4 * doc + (k & 3)) % 3996; }

static int collect(const bert_pretrain_example *ex, void *user) {
    stats *s = (stats *)user;
    int T = ex->T, n = 0;
    while (n < T && ex->input_mask[n]) n++;
    s->n++; s->tokens += n;
    s->nsp1 += ex->next_sentence_label;
    if (n < T - 8) s->short_seqs++;
    // the sequence before masking (a random replacement may itself be [SEP])
    int32_t orig[512];
    unsigned char masked_at[512] = {0};
    memcpy(orig, ex->input_ids, (size_t)T * sizeof(int32_t));
    for (int p = 0; p < ex->P; p++)
        if (ex->masked_lm_weights[p] > 0 && ex->masked_lm_positions[p] < T) {
            orig[ex->masked_lm_positions[p]] = ex->masked_lm_ids[p];
            masked_at[ex->masked_lm_positions[p]] = 1;
        }
    // layout: CLS, A, SEP, B, SEP, zero padding; segment 0 through the first SEP
    int sep1 = -1, layout = orig[0] == CLS && orig[n - 1] == SEP;
    for (int t = 1; t < n - 1 && sep1 < 0; t++) if (orig[t] == SEP) sep1 = t;
    layout &= sep1 > 1 && sep1 < n - 2;
    for (int t = 0; t < T; t++) {
        layout &= ex->segment_ids[t] == (t > sep1 && t < n);
        if (t >= n) layout &= ex->input_ids[t] == 0 && ex->input_mask[t] == 0;
    }
    s->bad_layout += !layout;
    // masks: sorted, inside the sequence, never on CLS/SEP, count = min(P, max(1, round(0.15 n))) with
    // Python 3's round (half to even) of the double product
    int want = (int)nearbyint(n * 0.15), np = 0;
    if (want < 1) want = 1;
    if (want > ex->P) want = ex->P;
    for (int p = 0; p < ex->P; p++) {
        if (ex->masked_lm_weights[p] == 0.0f) { s->bad_mask += ex->masked_lm_positions[p] != 0 || ex->masked_lm_ids[p] != 0; continue; }
        np++;
        int pos = ex->masked_lm_positions[p];
        s->bad_mask += pos <= 0 || pos >= n - 1 || pos == sep1 || (p > 0 && pos <= ex->masked_lm_positions[p - 1]);
        s->bad_mask += ex->masked_lm_ids[p] == CLS || ex->masked_lm_ids[p] == SEP;
        s->mask_tok += ex->input_ids[pos] == MASK;
        s->same_tok += ex->input_ids[pos] == ex->masked_lm_ids[p];
    }
    s->masked += np;
    s->over_cap += np > want || (!s->cont && np != want);
    // NSP truth: B's original tokens come from A's document unless the label says random
    int a_doc = -1, b_doc = -1;
    for (int t = 1; t < n - 1; t++) {
        int32_t id = orig[t];
        if (id == SEP || !s->doc_of_token || s->doc_of_token[id] < 0) continue;
        if (t < sep1 && a_doc < 0) a_doc = s->doc_of_token[id];
        if (t > sep1 && b_doc < 0) b_doc = s->doc_of_token[id];
    }
    if (s->doc_of_token) s->bad_nsp += (a_doc == b_doc) == ex->next_sentence_label;
    // whole-word masking: a masked "##" piece means the piece before it (over a [SEP], as GB
    // groups them) is masked too, unless it follows [CLS]
    if (s->cont)
        for (int pos = 1; pos < n - 1; pos++) {
            if (!masked_at[pos] || !s->cont[orig[pos]]) continue;
            int q = pos - 1;
            while (q > 0 && orig[q] == SEP) q--;
            if (q == 0) continue;
            s->wwm_checked++;
            s->wwm_split += !masked_at[q];
        }
    size_t need = bert_example_encode(NULL, 0, ex);
    if (s->len + need > s->cap) {
        s->cap = 2 * (s->len + need);
        s->bytes = (unsigned char *)realloc(s->bytes, s->cap);
    }
    bert_example_encode(s->bytes + s->len, need, ex);
    s->len += need;
    return 0;
}

// 300 documents of 3-20 sentences of 2-30 tokens
typedef struct { int32_t *ids, *sent_len, *doc_sents; int nsent, ndoc; size_t nids; } corpus_buf;

static void make_corpus(corpus_buf *c, int with_words) {
    memset(c, 0, sizeof *c);
    c->ndoc = 300;
    c->doc_sents = (int32_t *)calloc((size_t)c->ndoc, sizeof(int32_t));
    c->sent_len = (int32_t *)calloc(300 * 20, sizeof(int32_t));
    c->ids = (int32_t *)calloc(300 * 20 * 30, sizeof(int32_t));
    uint64_t st = bert_rng_stream(99, 0, 0);
    uint64_t k = 0;
    for (int d = 0; d < c->ndoc; d++) {
        c->doc_sents[d] = 3 + (int)(bert_rng_bits(st, k++) % 18);
        if (d == 7) c->doc_sents[d] = 0;   // an empty document is dropped
        for (int s = 0; s < c->doc_sents[d]; s++) {
            int len = 2 + (int)(bert_rng_bits(st, k++) % 29);
            c->sent_len[c->nsent++] = len;
            for (int t = 0; t < len; t++)
                c->ids[c->nids++] = with_words && (t % 3) ? 4500 + (int)(bert_rng_bits(st, k++) % 400) : token_of(d, t);
        }
    }
}

static bert_corpus view(const corpus_buf *c) {
    bert_corpus v = { c->ids, c->sent_len, c->nsent, c->doc_sents, c->ndoc };
    return v;
}

static stats run(const corpus_buf *c, bert_pretrain_data_opts o, const unsigned char *cont, const int32_t *doc_of) {
    stats s;
    memset(&s, 0, sizeof s);
    s.cont = cont; s.doc_of_token = doc_of;
    bert_corpus cv = view(c);
    int rc = bert_pretrain_data_create(&cv, &o, collect, &s);
    if (rc) printf("         bert_pretrain_data_create: %s\n", bert_last_error());
    return s;
}

// statistics of a TFRecord file of 128-token, 20-prediction instances
typedef struct { int n, tokens, predictions, random_next, over; } file_stats;
static int file_stats_of(const char *path, file_stats *fs) {
    int32_t ids[128], mask[128], seg[128], pos[20], lab[20]; float wt[20];
    bert_pretrain_example ex = { 128, 20, ids, mask, seg, pos, lab, wt, 0 };
    bert_tfrecord r;
    memset(fs, 0, sizeof *fs);
    int rc = bert_tfrecord_open(&r, path);
    while (!rc && !(rc = bert_tfrecord_next_example(&r, &ex, 30522)) && !r.eof) {
        int n = 0, np = 0;
        for (int t = 0; t < 128; t++) n += mask[t];
        for (int p = 0; p < 20; p++) np += wt[p] > 0;
        fs->n++; fs->tokens += n; fs->predictions += np; fs->random_next += ex.next_sentence_label;
    }
    bert_tfrecord_close(&r);
    if (rc) printf("         %s\n", bert_last_error());
    return rc;
}

// the tool on sample_text.txt: the same schema and statistics as the file Google's tool made from it,
// and byte-identical output for one seed
static void test_sample_text(const char *self) {
    const char *ref = "../shared/data/pretrain_tfrecord/tf_examples.tfrecord", *text = "../shared/data/bert_sample/sample_text.txt";
    const char *vocab = "../shared/data/vocab/bert_uncased_vocab.txt";
    FILE *f = fopen(ref, "rb");
    if (!f) { printf("  skipped: ../shared/data absent: create_pretraining_data vs Google's file not run\n"); return; }
    fclose(f);
    char tool[600], cmd[2000];
    const char *slash = strrchr(self, '/');
    snprintf(tool, sizeof tool, "%.*screate_pretraining_data", slash ? (int)(slash - self + 1) : 0, self);
    file_stats g, a, sum;
    memset(&sum, 0, sizeof sum);
    int grc = file_stats_of(ref, &g);
    CHECK(grc == BERT_OK && g.n == 60, "Google's tf_examples.tfrecord: %d instances, %.1f tokens each, %.2f %% masked, %.1f %% random next",
          g.n, (double)g.tokens / g.n, 100.0 * g.predictions / g.tokens, 100.0 * g.random_next / g.n);
    int ok = 1;
    for (int seed = 1; seed <= 4 && ok; seed++) {   // pooled over seeds: 3 documents make one run's NSP share noisy
        snprintf(cmd, sizeof cmd, "%s --input_file %s --vocab_file %s --output_file build/cpd_test_%d.tfrecord --dupe_factor 5 "
                 "--random_seed %d > /dev/null", tool, text, vocab, seed, seed);
        ok = system(cmd) == 0;
        char path[64];
        snprintf(path, sizeof path, "build/cpd_test_%d.tfrecord", seed);
        ok = ok && file_stats_of(path, &a) == BERT_OK;
        sum.n += a.n; sum.tokens += a.tokens; sum.predictions += a.predictions; sum.random_next += a.random_next;
    }
    CHECK(ok, "create_pretraining_data on sample_text.txt, dupe 5, seeds 1-4: every record reads back with the 128/20 schema");
    if (!ok) return;
    double gm = (double)g.predictions / g.tokens, am = (double)sum.predictions / sum.tokens;
    double gl = (double)g.tokens / g.n, al = (double)sum.tokens / sum.n;
    double gr = (double)g.random_next / g.n, ar = (double)sum.random_next / sum.n;
    printf("         ours: %d instances per run, %.1f tokens each, %.2f %% masked, %.1f %% random next\n", sum.n / 4, al, 100 * am, 100 * ar);
    CHECK(sum.n / 4 >= g.n * 8 / 10 && sum.n / 4 <= g.n * 12 / 10, "instances per run: %d vs Google's %d", sum.n / 4, g.n);
    CHECK(fabs(am - gm) < 0.005, "masked fraction %.2f %% vs %.2f %%", 100 * am, 100 * gm);
    CHECK(fabs(al - gl) < 0.1 * gl, "mean length %.1f vs %.1f (within 10 %%)", al, gl);
    CHECK(fabs(ar - gr) < 0.1, "random next %.1f %% vs %.1f %% (within 10 points)", 100 * ar, 100 * gr);
    snprintf(cmd, sizeof cmd, "%s --input_file %s --vocab_file %s --output_file build/cpd_test_again.tfrecord --dupe_factor 5 "
             "--random_seed 1 > /dev/null && cmp -s build/cpd_test_1.tfrecord build/cpd_test_again.tfrecord", tool, text, vocab);
    CHECK(system(cmd) == 0, "the same seed again: byte-identical file");
    snprintf(cmd, sizeof cmd, "%s --input_file nothere.txt --vocab_file %s --output_file build/cpd_test_x.tfrecord 2> build/cpd_test_err.txt; "
             "test $? -eq 1 && grep -q 'nothere.txt: no such file' build/cpd_test_err.txt && test ! -e build/cpd_test_x.tfrecord", tool, vocab);
    CHECK(system(cmd) == 0, "a missing input: one error line naming it, exit 1, no output file");
    if (system("rm -f build/cpd_test_*")) {}
}

// the masked positions per instance: Python 3's round() of n * masked_lm_prob, half to even, on the
// double of the typed value, as google-research/bert computes it; the expected counts were written by
// Python itself (tests/data/num_to_predict.txt) for every n in 1..512 and four probabilities
static void test_num_to_predict(void) {
    FILE *f = fopen("tests/data/num_to_predict.txt", "r");
    if (!CHECK(f != NULL, "tests/data/num_to_predict.txt")) return;
    static const float probs[4] = { 0.15f, 0.1f, 0.2f, 0.25f };
    char line[256];
    int rows = 0, bad = 0, first_bad = 0;
    while (fgets(line, sizeof line, f)) {
        int n, want[4];
        if (line[0] == '#' || sscanf(line, "%d %d %d %d %d", &n, &want[0], &want[1], &want[2], &want[3]) != 5) continue;
        for (int p = 0; p < 4; p++)
            if (bert__num_to_predict(n, probs[p], 512) != want[p]) { if (!bad++) first_bad = n; }
        rows++;
    }
    fclose(f);
    CHECK(rows == 512 && bad == 0, "masked positions = Python's round(n * p) half to even, n = 1..512, p = 0.15 0.1 0.2 0.25 "
          "(%d rows, %d differ, first at n = %d)", rows, bad, first_bad);
}

int main(int argc, char **argv) {
    (void)argc;
    test_num_to_predict();
    test_sample_text(argv[0]);
    corpus_buf c;
    make_corpus(&c, 0);
    static int32_t doc_of[V];
    for (int i = 0; i < V; i++) doc_of[i] = -1;
    for (int d = 0; d < 300; d++) for (int k = 0; k < 4; k++) doc_of[token_of(d, k)] = d;
    for (int i = 1000; i < 4996; i++) if (doc_of[i] >= 0) { /* ids are unique to one document when 4*d+k < 3996 */ }
    // documents 0..298 use distinct ids (4*299+3 < 3996), so doc_of is exact
    bert_pretrain_data_opts o = bert_pretrain_data_defaults();
    o.vocab_size = V; o.dupe_factor = 5;
    stats s = run(&c, o, NULL, doc_of);
    printf("  %d instances from 299 documents x dupe 5: %.1f tokens each, %d masked (%.2f %%), NSP random %.1f %%, short %.1f %%\n",
           s.n, (double)s.tokens / s.n, s.masked, 100.0 * s.masked / s.tokens, 100.0 * s.nsp1 / s.n, 100.0 * s.short_seqs / s.n);
    CHECK(s.n > 1000, "instances made (%d)", s.n);
    CHECK(s.bad_layout == 0, "every instance is [CLS] A [SEP] B [SEP] + padding with matching segment ids (%d bad)", s.bad_layout);
    CHECK(s.bad_mask == 0, "masked positions sorted, inside A/B, never CLS/SEP, padding slots zero (%d bad)", s.bad_mask);
    CHECK(s.over_cap == 0, "predictions per instance = min(20, max(1, round(0.15 n))), half to even (%d off)", s.over_cap);
    double fm = (double)s.mask_tok / s.masked, fs = (double)s.same_tok / s.masked;
    CHECK(fm > 0.77 && fm < 0.83 && fs > 0.085 && fs < 0.125, "80/10/10: %.1f %% [MASK], %.1f %% unchanged (+ random 10 %%: %.1f %%)",
          100 * fm, 100 * fs, 100 * (1 - fm - fs));
    double fr = (double)s.nsp1 / s.n;
    CHECK(fr > 0.45 && fr < 0.58, "next sentence random in %.1f %% of instances (GB: 50 %% of multi-sentence chunks, all single ones)", 100 * fr);
    CHECK(s.bad_nsp == 0, "NSP labels true: B from A's document iff label 0 (%d wrong)", s.bad_nsp);
    CHECK(s.short_seqs > 0.05 * s.n, "short_seq_prob 0.1 gives short targets (%.1f %% of instances well under 128)", 100.0 * s.short_seqs / s.n);

    // determinism: same seed, same bytes; another seed, other bytes
    stats s2 = run(&c, o, NULL, doc_of);
    CHECK(s2.len == s.len && !memcmp(s.bytes, s2.bytes, s.len), "same seed: byte-identical output (%zu bytes)", s.len);
    o.seed = 7;
    stats s3 = run(&c, o, NULL, doc_of);
    CHECK(s3.len != s.len || memcmp(s.bytes, s3.bytes, s.len), "another seed: different output");
    free(s.bytes); free(s2.bytes); free(s3.bytes);

    // whole-word masking: ids 4500..4899 are "##" pieces following a word start
    corpus_buf w;
    make_corpus(&w, 1);
    static unsigned char cont[V];
    for (int i = 4500; i < 4900; i++) cont[i] = 1;
    o = bert_pretrain_data_defaults();
    o.vocab_size = V; o.dupe_factor = 2; o.whole_word_mask = 1; o.is_continuation = cont;
    stats ws = run(&w, o, cont, NULL);
    CHECK(ws.n > 0 && ws.wwm_checked > 1000 && ws.wwm_split == 0,
          "whole-word masking: %d masked '##' pieces, each with the piece before it masked too (%d split)", ws.wwm_checked, ws.wwm_split);
    CHECK(ws.over_cap == 0 && ws.bad_mask == 0, "whole-word masking never exceeds the prediction count");
    o.whole_word_mask = 0;
    stats ns = run(&w, o, cont, NULL);
    CHECK(ns.wwm_split > 0, "without it, '##' pieces are masked alone (%d)", ns.wwm_split);
    free(ws.bytes); free(ns.bytes);

    // round trip through a TFRecord file
    {
        o = bert_pretrain_data_defaults();
        o.vocab_size = V; o.dupe_factor = 1;
        stats r = run(&c, o, NULL, NULL);
        const char *path = "build/pretrain_data_test.tfrecord";
        FILE *f = fopen(path, "wb");
        size_t at = 0; int wrote = 0;
        while (f && at < r.len) {   // records are back to back in r.bytes; re-split them by decoding lengths
            int32_t ids[128], mask[128], seg[128], pos[20], lab[20]; float wt[20];
            bert_pretrain_example ex = { 128, 20, ids, mask, seg, pos, lab, wt, 0 };
            size_t len = 0;
            // each encoded example starts with tag 0x0A + varint length of Features
            uint64_t flen = 0; int shift = 0; size_t k = at + 1;
            while (k < r.len) { flen |= (uint64_t)(r.bytes[k] & 0x7F) << shift; shift += 7; if (!(r.bytes[k++] & 0x80)) break; }
            len = (k - at) + (size_t)flen;
            if (bert_example_decode(&ex, r.bytes + at, len, V) || bert_tfrecord_write(f, r.bytes + at, len)) break;
            at += len; wrote++;
        }
        if (f) fclose(f);
        int count = 0, rc;
        bert_tfrecord rd;
        int32_t ids[128], mask[128], seg[128], pos[20], lab[20]; float wt[20];
        bert_pretrain_example ex = { 128, 20, ids, mask, seg, pos, lab, wt, 0 };
        rc = bert_tfrecord_open(&rd, path);
        while (!rc && !(rc = bert_tfrecord_next_example(&rd, &ex, V)) && !rd.eof) count++;
        bert_tfrecord_close(&rd);
        CHECK(wrote == r.n && count == r.n && !rc, "%d instances written as a TFRecord and read back with CRCs checked (%d)", r.n, count);
        remove(path);
        free(r.bytes);
    }

    // bad input
    bert_corpus cv = view(&c);
    o = bert_pretrain_data_defaults();
    o.vocab_size = 900;   // ids go up to 4995
    stats dummy;
    memset(&dummy, 0, sizeof dummy);
    CHECK(bert_pretrain_data_create(&cv, &o, collect, &dummy) == BERT_ERR_ARG && strstr(bert_last_error(), "outside the vocabulary"),
          "ids beyond vocab_size: %s", bert_last_error());
    o.vocab_size = V; o.max_seq_length = 4;
    CHECK(bert_pretrain_data_create(&cv, &o, collect, &dummy) == BERT_ERR_ARG, "max_seq_length 4: %s", bert_last_error());
    o.max_seq_length = 128; o.whole_word_mask = 1;
    CHECK(bert_pretrain_data_create(&cv, &o, collect, &dummy) == BERT_ERR_ARG && strstr(bert_last_error(), "is_continuation"),
          "whole-word masking without the continuation table: %s", bert_last_error());
    o.whole_word_mask = 0; o.max_seq_length = 1 << 30;   // 3T + 2P would overflow an int
    CHECK(bert_pretrain_data_create(&cv, &o, collect, &dummy) == BERT_ERR_ARG && strstr(bert_last_error(), "at most 1048576"),
          "max_seq_length 2^30: %s", bert_last_error());
    o.max_seq_length = 128; o.max_predictions_per_seq = 129;
    CHECK(bert_pretrain_data_create(&cv, &o, collect, &dummy) == BERT_ERR_ARG && strstr(bert_last_error(), "at most max_seq_length"),
          "max_predictions_per_seq over max_seq_length: %s", bert_last_error());
    o.max_predictions_per_seq = 20;
    int32_t neg_docs[2] = { -2, 4 };   // a negative count would index before the first sentence
    bert_corpus neg = { c.ids, c.sent_len, 2, neg_docs, 2 };
    CHECK(bert_pretrain_data_create(&neg, &o, collect, &dummy) == BERT_ERR_ARG && strstr(bert_last_error(), "document 0 claims -2 sentences"),
          "a document with -2 sentences: %s", bert_last_error());
    int32_t zero = 0;
    bert_corpus empty = { c.ids, &zero, 1, &zero, 1 };
    o.whole_word_mask = 0;
    CHECK(bert_pretrain_data_create(&empty, &o, collect, &dummy) == BERT_ERR_ARG && strstr(bert_last_error(), "no non-empty"),
          "only empty documents: %s", bert_last_error());
    free(dummy.bytes);
    free(c.ids); free(c.sent_len); free(c.doc_sents);
    free(w.ids); free(w.sent_len); free(w.doc_sents);
    return check_summary();
}
