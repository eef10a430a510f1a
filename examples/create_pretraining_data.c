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
#ifndef _WIN32
#include <glob.h>   // (Windows: run.h has a glob of its own)
#endif
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include "run.h"

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

static const char usage[] =
    "usage: create_pretraining_data --input_file TEXT --output_file OUT.tfrecord --vocab_file vocab.txt [flags]\n"
    "Makes BERT pretraining instances (masked LM + next sentence) from text with one sentence per\n"
    "line and blank lines between documents; pretrain reads the output.\n";

// every input file (globs expanded, commas split), in order
static int expand_inputs(const char **paths, int cap) {
    int n = 0;
    for (int i = 0; i < opt.input_file.count; i++) {
        char *list = run_strdup(opt.input_file.items[i]);
        for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
            glob_t g;
            if (glob(tok, 0, NULL, &g) != 0) run_die("%s: no such file (or the pattern matches nothing)", tok);
            for (size_t k = 0; k < g.gl_pathc; k++) {
                if (n == cap) run_die("more than %d input files", cap);
                paths[n++] = run_strdup(g.gl_pathv[k]);
            }
            globfree(&g);
        }
        free(list);
    }
    if (!n) run_die("--input_file is required");
    return n;
}

int main(int argc, char **argv) {
    run_opts ro = run_defaults();   // none of the common flags: this program keeps Google's flag names
    run_parse("create_pretraining_data", usage, flags, NFLAGS, &ro, RUN_FLAGS_TOKENIZER, argc, argv);
    if (!opt.output_file || !opt.vocab_file) run_die("--output_file and --vocab_file are required (--help for usage)");
    bert_vocab *v = bert_vocab_load(opt.vocab_file);
    if (v) run_vocab_mode(v, &ro, 0);
    if (!v) run_die("%s", bert_last_error());
    static const char *paths[4096];
    int npaths = expand_inputs(paths, 4096);
    bert_corpus corpus;
    if (bert_corpus_from_files(&corpus, v, opt.do_lower_case, paths, npaths)) run_die("%s", bert_last_error());
    for (int i = 0; i < npaths; i++) free((void *)paths[i]);
    long unk = 0, ntok = 0;
    for (int s = 0; s < corpus.num_sents; s++) ntok += corpus.sent_len[s];
    for (long i = 0; i < ntok; i++) unk += corpus.ids[i] == v->unk_id;

    bert_pretrain_data_opts o = bert_pretrain_data_defaults();
    unsigned char *cont;
    if (bert_pretrain_data_vocab(&o, v, &cont)) run_die("%s: %s", opt.vocab_file, bert_last_error());
    o.max_seq_length = opt.max_seq_length; o.max_predictions_per_seq = opt.max_predictions_per_seq;
    o.dupe_factor = opt.dupe_factor; o.whole_word_mask = opt.do_whole_word_mask;
    o.masked_lm_prob = opt.masked_lm_prob; o.short_seq_prob = opt.short_seq_prob; o.seed = (uint64_t)opt.random_seed;

    bert_pretrain_data_stats w;
    if (bert_pretrain_data_write(opt.output_file, &corpus, &o, &w)) run_die("%s", bert_last_error());
    printf("%d documents, %d sentences, %ld tokens (%ld [UNK]) -> %ld instances in %s\n"
           "  mean length %.1f of %d | masked %.2f %% of tokens, %.2f per instance (slots %d) | random next %.1f %%\n",
           corpus.num_docs, corpus.num_sents, ntok, unk, w.instances, opt.output_file,
           w.instances ? (double)w.tokens / w.instances : 0.0, opt.max_seq_length,
           w.tokens ? 100.0 * w.predictions / w.tokens : 0.0, w.instances ? (double)w.predictions / w.instances : 0.0,
           opt.max_predictions_per_seq, w.instances ? 100.0 * w.random_next / w.instances : 0.0);
    run_check_stream(stdout, "stdout");
    free(cont);
    bert_corpus_free(&corpus);
    bert_vocab_free(v);
    return 0;
}
