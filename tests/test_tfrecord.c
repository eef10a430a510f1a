// test_tfrecord.c - the TFRecord reader/writer and the tf.train.Example codec: CRC32C vectors,
// the real 60-record file Google's create_pretraining_data.py made from sample_text.txt (all CRCs,
// the documented features and statistics), an encode/decode/write/read round trip, and corrupted
// copies (bit flips, truncation, huge lengths, schema errors), each rejected naming the record;
// the bit flips also on a file written here, so they run without ../shared/data.
#define _DEFAULT_SOURCE   // mkdtemp
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "check.h"

#define SEQ 128
#define PRED 20
#define REAL "../shared/data/pretrain_tfrecord/tf_examples.tfrecord"
#define VOCAB 30522

typedef struct {
    int32_t ids[SEQ], mask[SEQ], seg[SEQ], pos[PRED], lmids[PRED];
    float w[PRED];
    bert_pretrain_example ex;
} example_buf;

static bert_pretrain_example *example_init(example_buf *b, int t, int p) {
    memset(b, 0, sizeof *b);
    bert_pretrain_example e = {t, p, b->ids, b->mask, b->seg, b->pos, b->lmids, b->w, 0};
    b->ex = e;
    return &b->ex;
}

static int example_equal(const bert_pretrain_example *a, const bert_pretrain_example *b) {
    return a->T == b->T && a->P == b->P && a->next_sentence_label == b->next_sentence_label &&
           !memcmp(a->input_ids, b->input_ids, sizeof(int32_t) * (size_t)a->T) &&
           !memcmp(a->input_mask, b->input_mask, sizeof(int32_t) * (size_t)a->T) &&
           !memcmp(a->segment_ids, b->segment_ids, sizeof(int32_t) * (size_t)a->T) &&
           !memcmp(a->masked_lm_positions, b->masked_lm_positions, sizeof(int32_t) * (size_t)a->P) &&
           !memcmp(a->masked_lm_ids, b->masked_lm_ids, sizeof(int32_t) * (size_t)a->P) &&
           !memcmp(a->masked_lm_weights, b->masked_lm_weights, sizeof(float) * (size_t)a->P);
}

// a small valid example: [CLS] 5..9 [SEP] 10..12 [SEP] with two masked positions
static void example_fill(bert_pretrain_example *e, int label) {
    for (int t = 0; t < e->T; t++) {
        e->input_ids[t] = t < 12 ? 100 + t : 0;
        e->input_mask[t] = t < 12;
        e->segment_ids[t] = t >= 7 && t < 12;
    }
    e->masked_lm_positions[0] = 3; e->masked_lm_ids[0] = 2003; e->masked_lm_weights[0] = 1.0f;
    e->masked_lm_positions[1] = 9; e->masked_lm_ids[1] = 7;    e->masked_lm_weights[1] = 1.0f;
    e->next_sentence_label = label;
}

static void write_bytes(const char *path, const unsigned char *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(d, 1, n, f); fclose(f); }
}

// reads the whole file as examples; returns the status of the first failure (message kept)
static int read_all(const char *path, int t, int p, int *count) {
    bert_tfrecord r;
    example_buf b;
    bert_pretrain_example *e = example_init(&b, t, p);
    int rc = bert_tfrecord_open(&r, path);
    *count = 0;
    while (!rc && !(rc = bert_tfrecord_next_example(&r, e, VOCAB)) && !r.eof) (*count)++;
    bert_tfrecord_close(&r);
    return rc;
}

static void test_crc(void) {
    CHECK(bert_crc32c(0, "123456789", 9) == 0xE3069283u, "crc32c(\"123456789\") = 0x%08X", bert_crc32c(0, "123456789", 9));
    unsigned char zeros[32] = {0};
    CHECK(bert_crc32c(0, zeros, 32) == 0x8A9136AAu, "crc32c(32 zero bytes) = 0x%08X (RFC 3720)", bert_crc32c(0, zeros, 32));
    CHECK(bert_crc32c(bert_crc32c(0, "1234", 4), "56789", 5) == 0xE3069283u, "crc32c continues across calls");
}

static void test_round_trip(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/rt.tfrecord", dir);
    example_buf a, b;
    bert_pretrain_example *ea = example_init(&a, 16, 4), *eb = example_init(&b, 16, 4);
    FILE *f = fopen(path, "wb");
    unsigned char buf[4096];
    for (int i = 0; i < 3; i++) {
        example_fill(ea, i & 1);
        ea->input_ids[1] = 1000 + i;
        size_t n = bert_example_encode(buf, sizeof buf, ea);
        CHECK(n < sizeof buf && bert_example_encode(NULL, 0, ea) == n, "encode: %zu bytes, size query agrees", n);
        CHECK(bert_tfrecord_write(f, buf, n) == BERT_OK, "write record %d", i);
    }
    fclose(f);
    bert_tfrecord r;
    int rc = bert_tfrecord_open(&r, path), n = 0, same = 1;
    while (!rc && !(rc = bert_tfrecord_next_example(&r, eb, VOCAB)) && !r.eof) {
        example_fill(ea, n & 1);
        ea->input_ids[1] = 1000 + n;
        same &= example_equal(ea, eb);
        n++;
    }
    CHECK(!rc && n == 3 && same, "3 written examples read back identical (rc %d: %s)", rc, rc ? bert_last_error() : "");
    // seek back to the second record (offset = 1 record of known size)
    uint64_t second = r.size / 3;
    CHECK(bert_tfrecord_seek(&r, second, 1) == BERT_OK && bert_tfrecord_next_example(&r, eb, VOCAB) == BERT_OK &&
          eb->input_ids[1] == 1001 && r.record == 2, "seek to record 1 and read it");
    bert_tfrecord_close(&r);
}

// decode errors on hand-made examples: wrong length, missing feature, bad values
static void test_schema_errors(void) {
    example_buf a, b;
    bert_pretrain_example *ea = example_init(&a, 16, 4), *eb;
    unsigned char buf[4096];
    example_fill(ea, 0);
    size_t n = bert_example_encode(buf, sizeof buf, ea);
    eb = example_init(&b, 32, 4);
    CHECK(bert_example_decode(eb, buf, n, VOCAB) == BERT_ERR_FORMAT && strstr(bert_last_error(), "16 values, expected 32"),
          "wrong sequence length: %s", bert_last_error());
    eb = example_init(&b, 16, 3);
    CHECK(bert_example_decode(eb, buf, n, VOCAB) == BERT_ERR_FORMAT && strstr(bert_last_error(), "more than 3"),
          "wrong max_predictions: %s", bert_last_error());
    eb = example_init(&b, 16, 4);
    CHECK(bert_example_decode(eb, buf, n, 50) == BERT_ERR_FORMAT && strstr(bert_last_error(), "vocabulary"),
          "id beyond the vocabulary: %s", bert_last_error());
    ea->masked_lm_positions[1] = 16;
    n = bert_example_encode(buf, sizeof buf, ea);
    CHECK(bert_example_decode(eb, buf, n, VOCAB) == BERT_ERR_FORMAT && strstr(bert_last_error(), "masked_lm_positions[1]"),
          "masked position outside the sequence: %s", bert_last_error());
    example_fill(ea, 2);
    n = bert_example_encode(buf, sizeof buf, ea);
    CHECK(bert_example_decode(eb, buf, n, VOCAB) == BERT_ERR_FORMAT && strstr(bert_last_error(), "next_sentence_labels"),
          "NSP label 2: %s", bert_last_error());
    // rename a feature key in the bytes: that feature goes missing
    example_fill(ea, 0);
    n = bert_example_encode(buf, sizeof buf, ea);
    unsigned char *k = NULL;
    for (size_t i = 0; i + 11 <= n && !k; i++) if (!memcmp(buf + i, "segment_ids", 11)) k = buf + i;
    if (k) k[0] = 'X';
    CHECK(k && bert_example_decode(eb, buf, n, VOCAB) == BERT_ERR_FORMAT && strstr(bert_last_error(), "segment_ids missing"),
          "missing feature: %s", bert_last_error());
    if (k) k[0] = 's';
    // a declared length past the buffer, and a never-ending varint
    CHECK(bert_example_decode(eb, buf, n - 5, VOCAB) == BERT_ERR_FORMAT, "truncated example: %s", bert_last_error());
    unsigned char bad[12] = {0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    CHECK(bert_example_decode(eb, bad, sizeof bad, VOCAB) == BERT_ERR_FORMAT, "11-byte varint: %s", bert_last_error());
    CHECK(bert_example_decode(eb, buf, 0, VOCAB) == BERT_ERR_FORMAT && strstr(bert_last_error(), "missing"),
          "empty example: %s", bert_last_error());
}

// TF's masked CRC, from its definition (tensorflow/core/lib/hash/crc32c.h): rotate right 15, add
static uint32_t tf_masked_crc(const void *d, size_t n) {
    uint32_t c = bert_crc32c(0, d, n);
    return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

static uint64_t le(const unsigned char *b, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

// reads records with bert_tfrecord_next until the first failure; returns its status, *count the
// records read before it
static int next_all(const char *path, int *count) {
    bert_tfrecord r;
    int rc = bert_tfrecord_open(&r, path);
    *count = 0;
    while (!rc && !(rc = bert_tfrecord_next(&r)) && !r.eof) (*count)++;
    bert_tfrecord_close(&r);
    return rc;
}

// Corruption without ../shared/data (test_real_file skips without it): a 5-record file written by
// bert_example_encode + bert_tfrecord_write, checked against TF's layout, then every byte of
// record 3 (header, data, footer) gets one bit flipped in turn. Each copy must stop at record 3
// with BERT_ERR_FORMAT naming the file, the record and its byte offset, and the right CRC: a flip
// in the 8 length bytes or their 4 CRC bytes is a "length CRC mismatch", one in the data or its 4
// CRC bytes a "data CRC mismatch". Catches: a data or length CRC not checked, a CRC over fewer
// bytes than the record (say len - 1), the length bound tested before the length CRC (a flipped
// high length bit then reads "past the end"), a wrong record number or path in the message, and
// (the layout check) a writer whose CRC mask or field order differs from TF's.
static void test_synthetic_corruption(const char *dir) {
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/synth.tfrecord", dir);
    snprintf(bad, sizeof bad, "%s/synth_flip.tfrecord", dir);
    example_buf a;
    bert_pretrain_example *ea = example_init(&a, 16, 4);
    unsigned char buf[4096];
    FILE *f = fopen(path, "wb");
    size_t lens[5];
    int wrote = f != NULL;
    for (int i = 0; f && i < 5; i++) {
        example_fill(ea, i & 1);
        ea->input_ids[2] = 2000 + 17 * i;
        lens[i] = bert_example_encode(buf, sizeof buf, ea);
        wrote &= lens[i] < sizeof buf && bert_tfrecord_write(f, buf, lens[i]) == BERT_OK;
    }
    if (f) fclose(f);
    unsigned char *data = NULL;
    size_t len = 0;
    if (!CHECK(wrote && !bert__read_file(path, &data, &len), "synthetic 5-record TFRecord written (%s)", path)) return;

    // TF's layout, record by record: [u64 len][masked crc32c(len)][data][masked crc32c(data)]
    size_t off = 0, off3 = 48 + lens[0] + lens[1] + lens[2];
    int layout = 1;
    for (int i = 0; i < 5; i++) {
        layout &= off + 16 <= len && le(data + off, 8) == lens[i] && le(data + off + 8, 4) == tf_masked_crc(data + off, 8);
        if (!layout) break;
        layout &= off + 16 + lens[i] <= len && le(data + off + 12 + lens[i], 4) == tf_masked_crc(data + off + 12, lens[i]);
        off += 16 + lens[i];
    }
    CHECK(layout && off == len, "written in TF's layout: length, masked crc32c (rot15 + 0xA282EAD8), data, masked crc32c; %zu bytes", len);
    int count, rc = next_all(path, &count);
    CHECK(rc == BERT_OK && count == 5, "the clean file reads back: %d records (%s)", count, rc ? bert_last_error() : "ok");

    char where[64];
    snprintf(where, sizeof where, "record 3 (byte %zu)", off3);
    size_t rec_bytes = 16 + lens[3];
    int all_ok = 1, shown = 0;
    for (size_t b = 0; b < rec_bytes; b++) {
        int bit = (int)(b % 8);
        const char *want = b < 12 ? "length CRC mismatch" : "data CRC mismatch";
        data[off3 + b] ^= (unsigned char)(1u << bit);
        write_bytes(bad, data, len);
        data[off3 + b] ^= (unsigned char)(1u << bit);
        rc = next_all(bad, &count);
        const char *msg = bert_last_error();
        int ok = rc == BERT_ERR_FORMAT && count == 3 && strstr(msg, bad) && strstr(msg, where) && strstr(msg, want);
        if (!ok && shown++ < 3) printf("         byte %zu bit %d of record 3: rc %d after %d records: %s\n", b, bit, rc, count, rc ? msg : "");
        all_ok &= ok;
    }
    CHECK(all_ok, "one bit flipped in each of record 3's %zu bytes: each stops at %s with the right CRC error", rec_bytes, where);

    // the two cases spelled out, with the messages shown
    data[off3 + 12 + lens[3] / 2] ^= 0x10; write_bytes(bad, data, len); data[off3 + 12 + lens[3] / 2] ^= 0x10;
    rc = next_all(bad, &count);
    CHECK(rc == BERT_ERR_FORMAT && count == 3 && strstr(bert_last_error(), bad) && strstr(bert_last_error(), "record 3") &&
          strstr(bert_last_error(), "data CRC mismatch"), "bit flip in record 3's data: %s", bert_last_error());
    data[off3] ^= 0x01; write_bytes(bad, data, len); data[off3] ^= 0x01;   // length + 1: still inside the file
    rc = next_all(bad, &count);
    CHECK(rc == BERT_ERR_FORMAT && count == 3 && strstr(bert_last_error(), bad) && strstr(bert_last_error(), "record 3") &&
          strstr(bert_last_error(), "length CRC mismatch"), "bit flip in record 3's length: %s", bert_last_error());
    data[off3 + 7] ^= 0x40; write_bytes(bad, data, len); data[off3 + 7] ^= 0x40;   // length + 2^62
    rc = next_all(bad, &count);
    CHECK(rc == BERT_ERR_FORMAT && count == 3 && strstr(bert_last_error(), "length CRC mismatch"),
          "a flipped high length bit is a length CRC error, not a huge read: %s", bert_last_error());
    // bert_tfrecord_index checks the length CRCs too (it skips the data)
    uint64_t *offs;
    size_t nrec;
    data[off3 + 2] ^= 0x04; write_bytes(bad, data, len); data[off3 + 2] ^= 0x04;
    CHECK(bert_tfrecord_index(bad, &offs, &nrec) == BERT_ERR_FORMAT && strstr(bert_last_error(), "record 3") &&
          strstr(bert_last_error(), "length CRC mismatch"), "bert_tfrecord_index on a flipped length: %s", bert_last_error());
    remove(bad);
    BERT_FREE(data);
}

static void test_real_file(const char *dir) {
    FILE *f = fopen(REAL, "rb");
    if (!f) { printf("  skipped: ../shared/data absent (%s): real-file tests not run\n", REAL); return; }
    fclose(f);
    bert_tfrecord r;
    example_buf b;
    bert_pretrain_example *e = example_init(&b, SEQ, PRED);
    int rc = bert_tfrecord_open(&r, REAL), n = 0, nsp1 = 0, masked = 0, slots = 0, as_mask = 0, tokens = 0;
    int first_ok = 0, reencoded = 0, byte_same = 0;
    unsigned char buf[8192];
    while (!rc && !(rc = bert_tfrecord_next_example(&r, e, VOCAB)) && !r.eof) {
        if (n == 0) first_ok = e->input_ids[0] == 101 && e->input_ids[1] == 2005 && e->input_ids[2] == 2062 &&
                               e->input_ids[3] == 2084 && e->input_ids[4] == 1037 && e->input_ids[5] == 103;
        nsp1 += e->next_sentence_label;
        for (int t = 0; t < SEQ; t++) tokens += e->input_mask[t];
        for (int p = 0; p < PRED; p++) {
            slots++;
            if (e->masked_lm_weights[p] == 0.0f) continue;
            masked++;
            as_mask += e->input_ids[e->masked_lm_positions[p]] == 103;
        }
        size_t len = bert_example_encode(buf, sizeof buf, e);
        example_buf c;
        bert_pretrain_example *e2 = example_init(&c, SEQ, PRED);
        reencoded += len <= sizeof buf && bert_example_decode(e2, buf, len, VOCAB) == BERT_OK && example_equal(e, e2);
        byte_same += len == r.len && !memcmp(buf, r.data, len);
        n++;
    }
    CHECK(!rc, "%s: every record's length and data CRC verified, every example decoded (%s)", REAL, rc ? bert_last_error() : "ok");
    CHECK(n == 60, "60 records (got %d)", n);
    CHECK(nsp1 == 32 && n - nsp1 == 28, "next_sentence_labels: 32 ones, 28 zeros (got %d, %d)", nsp1, n - nsp1);
    CHECK(first_ok, "record 0 begins [101, 2005, 2062, 2084, 1037, 103] = \"[CLS] for more than a [MASK]\"");
    CHECK(masked > 0 && as_mask > masked * 6 / 10 && as_mask < masked * 95 / 100,
          "%d predictions in %d slots, %d (%.0f %%) shown as [MASK] (80 %% expected)", masked, slots, as_mask, 100.0 * as_mask / masked);
    printf("         %d real tokens in %d records (%.1f per record)\n", tokens, n, (double)tokens / n);
    uint64_t *offs; size_t nrec;
    int irc = bert_tfrecord_index(REAL, &offs, &nrec);
    int seek_ok = !irc && nrec == 60 && offs[0] == 0;
    if (!irc) {   // random access: record 59, then record 3, compared with a sequential read
        example_buf s1, s2;
        bert_pretrain_example *x1 = example_init(&s1, SEQ, PRED), *x2 = example_init(&s2, SEQ, PRED);
        bert_tfrecord q;
        if (bert_tfrecord_open(&q, REAL) == BERT_OK) {
            seek_ok &= bert_tfrecord_seek(&q, offs[59], 59) == BERT_OK && bert_tfrecord_next_example(&q, x1, VOCAB) == BERT_OK;
            seek_ok &= example_equal(x1, e);   // e holds the last record of the sequential pass
            seek_ok &= bert_tfrecord_seek(&q, offs[3], 3) == BERT_OK && bert_tfrecord_next_example(&q, x2, VOCAB) == BERT_OK && q.record == 4;
            bert_tfrecord_close(&q);
        } else seek_ok = 0;
        BERT_FREE(offs);
    }
    CHECK(seek_ok, "bert_tfrecord_index: 60 offsets; seeking to record 59 reads the same example as the sequential pass");
    CHECK(reencoded == 60, "all 60 examples re-encode and decode to the same values (%d)", reencoded);
    printf("         %d of 60 re-encode byte-identically (feature order may differ from the file's)\n", byte_same);
    uint64_t size = r.size;
    bert_tfrecord_close(&r);

    // corrupted copies: one bit flipped in record 7's data, in record 7's length, truncated inside record 59
    unsigned char *data; size_t len;
    if (bert__read_file(REAL, &data, &len)) return;
    uint64_t off = 0;
    for (int i = 0; i < 7; i++) off += bert__io_le64(data + off) + 16;
    char path[512];
    int count;
    snprintf(path, sizeof path, "%s/flip_data.tfrecord", dir);
    data[off + 40] ^= 0x10; write_bytes(path, data, len); data[off + 40] ^= 0x10;
    rc = read_all(path, SEQ, PRED, &count);
    CHECK(rc == BERT_ERR_FORMAT && count == 7 && strstr(bert_last_error(), "record 7") && strstr(bert_last_error(), "data CRC") &&
          strstr(bert_last_error(), "flip_data.tfrecord"), "bit flip in data: %s", bert_last_error());
    snprintf(path, sizeof path, "%s/flip_len.tfrecord", dir);
    data[off + 1] ^= 0x01; write_bytes(path, data, len); data[off + 1] ^= 0x01;
    rc = read_all(path, SEQ, PRED, &count);
    CHECK(rc == BERT_ERR_FORMAT && count == 7 && strstr(bert_last_error(), "record 7") && strstr(bert_last_error(), "length CRC"),
          "bit flip in a length: %s", bert_last_error());
    snprintf(path, sizeof path, "%s/trunc.tfrecord", dir);
    write_bytes(path, data, len - 100);
    rc = read_all(path, SEQ, PRED, &count);
    CHECK(rc == BERT_ERR_FORMAT && count == 59 && strstr(bert_last_error(), "record 59"), "truncated file: %s", bert_last_error());
    CHECK(bert_tfrecord_index(path, &offs, &nrec) == BERT_ERR_FORMAT && strstr(bert_last_error(), "record 59"),
          "bert_tfrecord_index on the truncated file: %s", bert_last_error());
    write_bytes(path, data, len - (size_t)(size - off) + 5);
    rc = read_all(path, SEQ, PRED, &count);
    CHECK(rc == BERT_ERR_FORMAT && count == 7 && strstr(bert_last_error(), "truncated"), "cut inside a header: %s", bert_last_error());
    // a huge declared length with a valid length CRC: rejected before any allocation
    unsigned char huge[12];
    bert__put_le(huge, (uint64_t)1 << 62, 8);
    bert__put_le(huge + 8, bert__crc_masked(huge, 8), 4);
    memcpy(data + off, huge, 12);
    snprintf(path, sizeof path, "%s/huge.tfrecord", dir);
    write_bytes(path, data, len);
    rc = read_all(path, SEQ, PRED, &count);
    CHECK(rc == BERT_ERR_FORMAT && count == 7 && strstr(bert_last_error(), "past the end"), "2^62-byte record: %s", bert_last_error());
    // a schema mismatch names the record too
    rc = read_all(REAL, 64, PRED, &count);
    CHECK(rc == BERT_ERR_FORMAT && count == 0 && strstr(bert_last_error(), "record 0") && strstr(bert_last_error(), "expected 64"),
          "max_seq_length 64 against 128-token records: %s", bert_last_error());
    BERT_FREE(data);
    rc = read_all("no/such.tfrecord", SEQ, PRED, &count);
    CHECK(rc == BERT_ERR_IO && strstr(bert_last_error(), "no/such.tfrecord"), "missing file: %s", bert_last_error());
}

int main(void) {
    char dir[] = "build/tfrecord_XXXXXX";
    if (!mkdtemp(dir)) { snprintf(dir, sizeof dir, "/tmp"); }
    test_crc();
    test_round_trip(dir);
    test_schema_errors();
    test_synthetic_corruption(dir);
    test_real_file(dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (strcmp(dir, "/tmp")) { int ignored = system(cmd); (void)ignored; }
    return check_summary();
}
