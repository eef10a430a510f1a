// fuzz_common.h - shared by the libFuzzer targets in tests/fuzz (make fuzz): bert.h's implementation
// with the file-based parsers fed through fuzz_file.h's per-process file.
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H
#define _DEFAULT_SOURCE
#define BERT_IMPLEMENTATION
#include "../../bert.h"
#include <stdio.h>
#include <unistd.h>

#include "fuzz_file.h"
#endif
