// fuzz_tail.h - after the example's source: undo fuzz_example.h's renames; the input as a file (fuzz_file.h)
#undef main
#undef exit
#undef malloc
#undef calloc
#undef realloc
#undef free
#undef strdup
#include <string.h>
#include "fuzz_file.h"
static const char fuzz_vocab_text[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nthe\n##s\nhello\n,\n.\n北\n京\n1\n";
