# bert.h — build the tests and examples. `make test` is what CI runs.
CC ?= cc
CFLAGS ?= -O2 -std=c11 -Wall -Wextra -Wshadow
LDLIBS = -lm
BUILD = build
PYTHON_TORCH ?= /usr/bin/python3

# -march=native when the compiler takes it (never -ffast-math: the kernels rely on IEEE semantics)
ifeq ($(shell echo 'int main(void){return 0;}' | $(CC) -march=native -x c - -o /dev/null 2>/dev/null && echo ok),ok)
  CFLAGS += -march=native
endif

# OpenMP, detected by compiling an empty program; NO_OMP=1 turns it off
ifeq ($(NO_OMP),1)
  $(info ✗ OpenMP off (NO_OMP=1))
else ifeq ($(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo ok),ok)
  ifneq ($(SAN),1)
    CFLAGS += -fopenmp
    $(info ✓ OpenMP)
  endif
else
  $(info ✗ OpenMP not found, building single-threaded)
endif

# SAN=1: AddressSanitizer + UndefinedBehaviorSanitizer, abort on the first report
ifeq ($(SAN),1)
  CFLAGS := $(filter-out -O2 -O3,$(CFLAGS)) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  BUILD = build/san
endif

TESTS = test_kernels test_autograd test_safetensors test_io test_bert test_tfrecord test_pretrain_data test_pretrain test_tokenizer test_encode
TEST_BINS = $(addprefix $(BUILD)/,$(TESTS))

# the kernel tests again with the other microkernels this CPU can run: plain C always, AVX2 if present
KERNEL_VARIANTS = $(BUILD)/test_kernels_c
ifneq ($(shell grep -m1 -o -w avx2 /proc/cpuinfo 2>/dev/null),)
  KERNEL_VARIANTS += $(BUILD)/test_kernels_avx2
endif
TEST_BINS += $(KERNEL_VARIANTS)

$(BUILD)/test_kernels_c: tests/test_kernels.c bert.h tests/check.h | $(BUILD)
	$(CC) $(CFLAGS) -DBERT_NO_SIMD $< -o $@ $(LDLIBS)

$(BUILD)/test_kernels_avx2: tests/test_kernels.c bert.h tests/check.h | $(BUILD)
	$(CC) $(filter-out -march=native,$(CFLAGS)) -mavx2 -mfma $< -o $@ $(LDLIBS)

.PHONY: all test ref ref-check cxx-check readme-check clean demo examples
all: $(TEST_BINS)

$(BUILD)/%: tests/%.c bert.h tests/check.h | $(BUILD)
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)

$(BUILD):
	mkdir -p $(BUILD)

# pretrain a tiny BERT on the public-domain text in examples/data, fine-tune and evaluate it
demo: $(BUILD)/demo
	./$(BUILD)/demo

$(BUILD)/demo: examples/demo.c bert.h | $(BUILD)
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)

# the example programs: one .c file each, built like the demo
EXAMPLES = pretrain create_pretraining_data encode
EXAMPLE_BINS = $(addprefix $(BUILD)/,$(EXAMPLES))
examples: $(EXAMPLE_BINS)
$(EXAMPLE_BINS): $(BUILD)/%: examples/%.c bert.h | $(BUILD)
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)

# tests that drive an example binary
$(BUILD)/test_pretrain: $(BUILD)/pretrain
$(BUILD)/test_pretrain_data: $(BUILD)/create_pretraining_data
$(BUILD)/test_encode: $(BUILD)/encode

# runs every test program, then prints the totals as one "N passed, N failed" line
# scripts that compare against a Python reference (each skips itself when its data is absent)
SCRIPT_TESTS += tests/test_tokenizer_data.sh
# the checkpoint converters (convert/*.py: python3 + numpy), with a helper that runs bert.h on their output
SCRIPT_TESTS += tests/test_convert.sh
PYTHON ?= /usr/bin/python3
test: $(TEST_BINS) $(BUILD)/tokenize_dump $(BUILD)/convert_forward cxx-check readme-check
	@TOKENIZE_DUMP=$(BUILD)/tokenize_dump CONVERT_FORWARD=$(BUILD)/convert_forward PYTHON=$(PYTHON) \
	  sh tests/run.sh $(TEST_BINS) $(SCRIPT_TESTS)

# the header compiles clean as C++ too (and as C11 with clang when present)
cxx-check:
	@printf '#define BERT_IMPLEMENTATION\n#include "bert.h"\n' > $(BUILD)/cxx_check.cpp
	g++ -x c++ -std=c++11 -Wall -Wextra -Wshadow -I. -fsyntax-only $(BUILD)/cxx_check.cpp
	@if command -v clang >/dev/null 2>&1; then printf '#define BERT_IMPLEMENTATION\n#include "bert.h"\n' > $(BUILD)/clang_check.c && \
	  clang -std=c11 -Wall -Wextra -Wshadow -I. -fsyntax-only $(BUILD)/clang_check.c && echo "✓ clang -std=c11 clean"; fi

# regenerate the committed fixtures from the PyTorch reference (needs: apt-get install python3-torch);
# the pretraining run's reference needs the TFRecord file and skips (with a note) without it
PRETRAIN_TFRECORD ?= ../shared/data/pretrain_tfrecord/tf_examples.tfrecord
ref:
	$(PYTHON_TORCH) tests/ref/bert_ref.py --out tests/ref
	$(PYTHON_TORCH) tests/ref/pretrain_ref.py --tfrecord $(PRETRAIN_TFRECORD) --out tests/ref
	$(PYTHON_TORCH) tests/ref/encode_ref.py --out tests/ref

clean:
	rm -rf build

# regenerate the fixtures into a temp dir and compare them with the committed ones
# (pretrain_ref.safetensors only where the TFRecord file is present)
ref-check:
	@tmp=$$(mktemp -d) && $(PYTHON_TORCH) tests/ref/bert_ref.py --out $$tmp >/dev/null && \
	  $(PYTHON_TORCH) tests/ref/pretrain_ref.py --tfrecord $(PRETRAIN_TFRECORD) --out $$tmp >/dev/null && \
	  $(PYTHON_TORCH) tests/ref/encode_ref.py --out $$tmp >/dev/null && \
	  $(PYTHON_TORCH) tests/ref/compare.py tests/ref $$tmp $$([ -f $(PRETRAIN_TFRECORD) ] || echo --optional pretrain_ref.safetensors --optional encode_ref.safetensors); \
	  rc=$$?; rm -rf $$tmp; exit $$rc

# the README's usage example compiles and runs
readme-check: | $(BUILD)
	@awk '/<!-- readme-example/{f=1;next} f&&/^```c/{g=1;next} g&&/^```/{exit} g' README.md > $(BUILD)/readme_example.c
	$(CC) $(CFLAGS) -I. $(BUILD)/readme_example.c -o $(BUILD)/readme_example $(LDLIBS)
	cd $(BUILD) && ./readme_example | tail -n 2 && rm -f tiny.safetensors

# benchmarks against PyTorch, side by side (bench/README.md); they report, they never fail the build
.PHONY: bench bench-quick
bench:
	CC="$(CC)" bash bench/run.sh
bench-quick:
	CC="$(CC)" bash bench/run.sh --quick
