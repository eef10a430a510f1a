// create_pretraining_data.c - raw text to BERT pretraining TFRecords, as google-research/bert's
// create_pretraining_data.py does it (same flags, same procedure, same output schema; our own seeded
// RNG, so the instances are not the Python tool's, but their statistics are).
//
//   cc -O2 -march=native -std=c11 examples/create_pretraining_data.c -o build/create_pretraining_data -lm
//   ./build/create_pretraining_data --input_file ../shared/data/bert_sample/sample_text.txt
//       --output_file /tmp/tf_examples.tfrecord --vocab_file ../shared/data/vocab/bert_uncased_vocab.txt
//       (one command line)
//
// Input: one sentence per line, a blank line between documents; several --input_file (files or
// globs) are read in order, each starting a new document. Output is written to a temp file and
// renamed, so a failed run never leaves a half-written file under the output name.
#define _DEFAULT_SOURCE   // glob
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glob.h>
#define BERT_IMPLEMENTATION
#include "../bert.h"

static struct {
    bert_flag_list input_file;
    const char *output_file, *vocab_file;
    int do_lower_case, do_whole_word_mask, max_seq_length, max_predictions_per_seq, random_seed, dupe_factor;
    float masked_lm_prob, short_seq_prob;
} opt = { .do_lower_case = 1, .max_seq_length = 128, .max_predictions_per_seq = 20, .random_seed = 12345,
          .dupe_factor = 10, .masked_lm_prob = 0.15f, .short_seq_prob = 0.1f };

static const bert_flag flags[] = {
    { "input_file", BERT_FLAG_LIST, &opt.input_file, "text file or glob (quote it); repeat or comma-separate for more" },
    { "output_file", BERT_FLAG_STR, &opt.output_file, "the TFRecord to write" },
    { "vocab_file", BERT_FLAG_STR, &opt.vocab_file, "vocab.txt of the model" },
    { "do_lower_case", BERT_FLAG_BOOL, &opt.do_lower_case, "lower-case and strip accents (uncased and Chinese models)" },
    { "do_whole_word_mask", BERT_FLAG_BOOL, &opt.do_whole_word_mask, "mask all the WordPieces of a word together" },
    { "max_seq_length", BERT_FLAG_INT, &opt.max_seq_length, "tokens per instance, [CLS] and [SEP]s included" },
    { "max_predictions_per_seq", BERT_FLAG_INT, &opt.max_predictions_per_seq, "masked positions per instance, at most" },
    { "random_seed", BERT_FLAG_INT, &opt.random_seed, "seed: one seed gives byte-identical output" },
    { "dupe_factor", BERT_FLAG_INT, &opt.dupe_factor, "passes over the input, each with other masks" },
    { "masked_lm_prob", BERT_FLAG_FLOAT, &opt.masked_lm_prob, "fraction of tokens masked" },
    { "short_seq_prob", BERT_FLAG_FLOAT, &opt.short_seq_prob, "probability of a shorter target length" },
};
#define NFLAGS ((int)(sizeof flags / sizeof flags[0]))

static void die(const char *what) {
    fprintf(stderr, "create_pretraining_data: %s\n", what);
    exit(1);
}

// every input file (globs expanded, commas split), in order
static int expand_inputs(const char **paths, int cap) {
    int n = 0;
    for (int i = 0; i < opt.input_file.count; i++) {
        char *list = strdup(opt.input_file.items[i]);
        for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
            glob_t g;
            if (glob(tok, 0, NULL, &g) != 0) {
                fprintf(stderr, "create_pretraining_data: %s: no such file (or the pattern matches nothing)\n", tok);
                exit(1);
            }
            for (size_t k = 0; k < g.gl_pathc; k++) {
                if (n == cap) die("more than 4096 input files");
                paths[n++] = strdup(g.gl_pathv[k]);
            }
            globfree(&g);
        }
        free(list);
    }
    if (!n) die("--input_file is required");
    return n;
}

int main(int argc, char **argv) {
    int rc = bert_flags_parse(flags, NFLAGS, argc, argv);
    if (rc == 1 || argc == 1) {
        printf("usage: create_pretraining_data --input_file TEXT --output_file OUT.tfrecord --vocab_file vocab.txt [flags]\n"
               "Makes BERT pretraining instances (masked LM + next sentence) from text with one sentence per\n"
               "line and blank lines between documents; pretrain reads the output.\n\nflags:\n");
        bert_flags_usage(stdout, flags, NFLAGS);
        return rc == 1 ? 0 : 1;
    }
    if (rc) die(bert_last_error());
    if (!opt.output_file || !opt.vocab_file) die("--output_file and --vocab_file are required");
    bert_vocab *v = bert_vocab_load(opt.vocab_file);
    if (!v) die(bert_last_error());
    static const char *paths[4096];
    int npaths = expand_inputs(paths, 4096);
    bert_corpus corpus;
    if (bert_corpus_from_files(&corpus, v, opt.do_lower_case, paths, npaths)) die(bert_last_error());
    for (int i = 0; i < npaths; i++) free((void *)paths[i]);
    long unk = 0, ntok = 0;
    for (int s = 0; s < corpus.num_sents; s++) ntok += corpus.sent_len[s];
    for (long i = 0; i < ntok; i++) unk += corpus.ids[i] == v->unk_id;

    bert_pretrain_data_opts o = bert_pretrain_data_defaults();
    unsigned char *cont;
    if (bert_pretrain_data_vocab(&o, v, &cont)) { fprintf(stderr, "create_pretraining_data: %s: %s\n", opt.vocab_file, bert_last_error()); return 1; }
    o.max_seq_length = opt.max_seq_length; o.max_predictions_per_seq = opt.max_predictions_per_seq;
    o.dupe_factor = opt.dupe_factor; o.whole_word_mask = opt.do_whole_word_mask;
    o.masked_lm_prob = opt.masked_lm_prob; o.short_seq_prob = opt.short_seq_prob; o.seed = (uint64_t)opt.random_seed;

    bert_pretrain_data_stats w;
    if (bert_pretrain_data_write(opt.output_file, &corpus, &o, &w)) die(bert_last_error());
    printf("%d documents, %d sentences, %ld tokens (%ld [UNK]) -> %ld instances in %s\n"
           "  mean length %.1f of %d | masked %.2f %% of tokens, %.2f per instance (slots %d) | random next %.1f %%\n",
           corpus.num_docs, corpus.num_sents, ntok, unk, w.instances, opt.output_file,
           w.instances ? (double)w.tokens / w.instances : 0.0, opt.max_seq_length,
           w.tokens ? 100.0 * w.predictions / w.tokens : 0.0, w.instances ? (double)w.predictions / w.instances : 0.0,
           opt.max_predictions_per_seq, w.instances ? 100.0 * w.random_next / w.instances : 0.0);
    free(cont);
    bert_corpus_free(&corpus);
    bert_vocab_free(v);
    return 0;
}
