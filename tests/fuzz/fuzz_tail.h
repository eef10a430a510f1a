// fuzz_tail.h - after the example's source: undo fuzz_example.h's renames; the input as a file
#undef main
#undef exit
#undef malloc
#undef calloc
#undef realloc
#undef free
#undef strdup
static const char *fuzz_path(const uint8_t *data, size_t size, const char *suffix) {
    static char path[80];
    snprintf(path, sizeof path, "/tmp/bert_fuzz_%d%s", (int)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}
static const char fuzz_vocab_text[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nthe\n##s\nhello\n,\n.\n北\n京\n1\n";
