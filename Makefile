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

# clang with OpenMP reports each `omp simd` loop it could not vectorise (-Wpass-failed: softmax_row's
# exp loop, which gcc does vectorise): a speed note, not a defect, and fatal under the -Werror builds
ifneq ($(findstring clang,$(shell $(CC) --version 2>/dev/null)),)
  CFLAGS += -Wno-pass-failed
endif

# SAN=1: AddressSanitizer + UndefinedBehaviorSanitizer, abort on the first report
ifeq ($(SAN),1)
  CFLAGS := $(filter-out -O2 -O3,$(CFLAGS)) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  BUILD = build/san
endif

# MPI=1: the programs data parallel over MPI (bert_mpi.h), built with mpicc into build/mpi (SAN=1:
# build/san/mpi); run them
# with mpirun -np N (make test-mpi tests them)
ifeq ($(MPI),1)
  # the MPI wrapper compiles; a CC given on the command line becomes the compiler it wraps
  ifeq ($(origin CC),command line)
    export OMPI_CC := $(CC)
    export MPICH_CC := $(CC)
  endif
  override CC := mpicc
  CFLAGS += -DBERT_MPI
  # override: also under a BUILD=... given on the command line
  override BUILD := $(BUILD)/mpi
endif

TESTS = test_kernels test_autograd test_safetensors test_io test_bert test_nezha test_tfrecord test_pretrain_data test_pretrain test_tokenizer test_encode test_classify test_crash_save test_ner test_device test_squad
TEST_BINS = $(addprefix $(BUILD)/,$(TESTS))

# the kernel tests again with the other microkernels this CPU can run: plain C always, AVX2 if present
KERNEL_VARIANTS = $(BUILD)/test_kernels_c
ifneq ($(shell grep -m1 -o -w avx2 /proc/cpuinfo 2>/dev/null),)
  KERNEL_VARIANTS += $(BUILD)/test_kernels_avx2
endif
# ... and the int8 GEMM's VNNI kernel where AMX would take its place
ifneq ($(shell grep -m1 -o -w amx_int8 /proc/cpuinfo 2>/dev/null),)
  KERNEL_VARIANTS += $(BUILD)/test_kernels_noamx
endif
TEST_BINS += $(KERNEL_VARIANTS)

# every input that ever crashed a fuzz target (tests/fuzz/regressions/TARGET/), replayed through that
# target's harness without libFuzzer; under SAN=1 with the sanitizers that caught it
FUZZ_REPLAY = $(addprefix $(BUILD)/fuzz_replay_,$(notdir $(wildcard tests/fuzz/regressions/*)))
TEST_BINS += $(FUZZ_REPLAY)
$(BUILD)/fuzz_replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c tests/fuzz/*.h bert.h $(wildcard examples/*.c examples/*.h) | $(BUILD)
	$(CC) $(CFLAGS) -DREPLAY_DIR='"tests/fuzz/regressions/$*"' $< tests/fuzz/replay_main.c -o $@ $(LDLIBS)

$(BUILD)/test_kernels_c: tests/test_kernels.c bert.h tests/check.h | $(BUILD)
	$(CC) $(CFLAGS) -DBERT_NO_SIMD $< -o $@ $(LDLIBS)

$(BUILD)/test_kernels_noamx: tests/test_kernels.c bert.h tests/check.h | $(BUILD)
	$(CC) $(CFLAGS) -DBERT_NO_AMX $< -o $@ $(LDLIBS)

$(BUILD)/test_kernels_avx2: tests/test_kernels.c bert.h tests/check.h | $(BUILD)
	$(CC) $(filter-out -march=native,$(CFLAGS)) -mavx2 -mfma $< -o $@ $(LDLIBS)

# CUDA (bert_cuda.h): built with nvcc when it is found (PATH, then /usr/local/cuda); no GPU needed to
# build. `make test` runs cuda-check and the CUDA test, which passes with a "skipped" line on a machine
# without a GPU; test-cuda and bench-cuda run on one. Without nvcc every CUDA target says it skips.
NVCC ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA_ARCH ?= 90
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
NVCCFLAGS ?= -O3 -std=c++17 -arch=sm_$(CUDA_ARCH) -Werror all-warnings -Xcompiler -Wall,-Wextra,-Wshadow,-Werror
CUDA_LDLIBS = -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++ $(LDLIBS)
.PHONY: cuda-check test-cuda bench-cuda test-nccl
# NCCL (bert_cuda.h's data-parallel communicator, -DBERT_NCCL): cuda-check compiles it and links
# tests/test_nccl.c with -lnccl (no GPU needed); test-nccl runs that test on one GPU. `make test` does
# not run it. NCCL_LIBDIR: where libnccl.so is (found beside CUDA's libraries; empty: the linker's path)
NCCL_LIBDIR ?= $(patsubst %/,%,$(dir $(firstword $(wildcard $(CUDA_HOME)/lib64/libnccl.so $(CUDA_HOME)/lib/libnccl.so))))
comma := ,
NCCL_LDLIBS = $(if $(NCCL_LIBDIR),-L$(NCCL_LIBDIR) -Wl$(comma)-rpath$(comma)$(NCCL_LIBDIR)) -lnccl $(CUDA_LDLIBS)
ifneq ($(NVCC),)
$(BUILD)/bert_cuda.o: bert_cuda.h bert.h | $(BUILD)
	$(NVCC) -x cu $(NVCCFLAGS) -DBERT_CUDA_IMPLEMENTATION -I. -c $< -o $@
$(BUILD)/test_cuda: tests/test_cuda.c $(BUILD)/bert_cuda.o bert.h bert_cuda.h tests/check.h tests/check_fixture.h | $(BUILD)
	$(CC) $(CFLAGS) $< $(BUILD)/bert_cuda.o -o $@ $(CUDA_LDLIBS)
$(BUILD)/bench_cuda: bench/bench_cuda.c $(BUILD)/bert_cuda.o bert.h bert_cuda.h | $(BUILD)
	$(CC) $(CFLAGS) $< $(BUILD)/bert_cuda.o -o $@ $(CUDA_LDLIBS)
$(BUILD)/bert_cuda_nccl.o: bert_cuda.h bert.h | $(BUILD)
	$(NVCC) -x cu $(NVCCFLAGS) -DBERT_CUDA_IMPLEMENTATION -DBERT_NCCL -I. -c $< -o $@
$(BUILD)/test_nccl: tests/test_nccl.c $(BUILD)/bert_cuda_nccl.o bert.h bert_cuda.h tests/check.h | $(BUILD)
	$(CC) $(CFLAGS) -Werror -DBERT_NCCL $< $(BUILD)/bert_cuda_nccl.o -o $@ $(NCCL_LDLIBS)
cuda-check: $(BUILD)/bert_cuda.o $(BUILD)/test_cuda $(BUILD)/bench_cuda $(BUILD)/bert_cuda_nccl.o $(BUILD)/test_nccl
	@echo "✓ bert_cuda.h compiles clean with nvcc (sm_$(CUDA_ARCH)), also with -DBERT_NCCL; test_cuda, bench_cuda and test_nccl (-lnccl) link"
test-nccl: $(BUILD)/test_nccl
	./$(BUILD)/test_nccl
test-cuda: $(BUILD)/test_cuda
	./$(BUILD)/test_cuda
bench-cuda: $(BUILD)/bench_cuda
	./$(BUILD)/bench_cuda
ifneq ($(SAN),1)
TEST_BINS += $(BUILD)/test_cuda
endif
else
cuda-check test-cuda bench-cuda test-nccl:
	@echo "✗ nvcc not found: $@ skipped (set NVCC=/path/to/nvcc to build bert_cuda.h)"
endif

.PHONY: test-mpi
test-mpi: $(BUILD)/st_compare
	BUILD=$(BUILD) sh tests/test_mpi.sh

.PHONY: all test ref ref-check cxx-check readme-check clean demo examples
all: $(TEST_BINS)

$(BUILD)/%: tests/%.c bert.h tests/check.h tests/check_exec.h tests/check_fixture.h | $(BUILD)
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)

$(BUILD):
	mkdir -p $(BUILD)

# pretrain a tiny BERT on the public-domain text in examples/data, fine-tune and evaluate it
demo: $(BUILD)/demo
	./$(BUILD)/demo

$(BUILD)/demo: examples/demo.c bert.h examples/run.h | $(BUILD)
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)

# the example programs: one .c file each, built like the demo
EXAMPLES = pretrain create_pretraining_data encode classify ner squad finetune_own
EXAMPLE_BINS = $(addprefix $(BUILD)/,$(EXAMPLES))
examples: $(EXAMPLE_BINS)
$(EXAMPLE_BINS): $(BUILD)/%: examples/%.c bert.h $(wildcard examples/*.h) | $(BUILD)
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)

# tests that drive an example binary
$(BUILD)/test_pretrain: $(BUILD)/pretrain
$(BUILD)/test_pretrain_data: $(BUILD)/create_pretraining_data
$(BUILD)/test_encode: $(BUILD)/encode
$(BUILD)/test_classify: $(BUILD)/classify
$(BUILD)/test_ner: $(BUILD)/ner
$(BUILD)/test_squad: $(BUILD)/squad

# runs every test program, then prints the totals as one "N passed, N failed" line
# scripts that compare against a Python reference (each skips itself when its data is absent)
SCRIPT_TESTS += tests/test_tokenizer_data.sh
# the programs use the public API only; the README's fine-tuning program (examples/finetune_own.c)
SCRIPT_TESTS += tests/test_public_api.sh tests/test_finetune_own.sh
# every program refuses a FIFO, a device or a directory as an input file, at once
SCRIPT_TESTS += tests/test_special_files.sh
# every common flag's boundary and garbage values, through every training program
SCRIPT_TESTS += tests/test_flags.sh
# a symlink planted at every name the programs write is never written through
SCRIPT_TESTS += tests/test_symlinks.sh
# squad --eval on SQuAD v2.0 files against a reference written from the v2.0 metric's definition
SCRIPT_TESTS += tests/test_squad2.sh
# issue 27's pretraining corpora (tools/build_corpus.py, English and Chinese) against the data files read independently
SCRIPT_TESTS += tests/test_corpus.sh
# NEZHA models (both flavours) through pretrain, classify, ner, squad and encode
SCRIPT_TESTS += tests/test_nezha_programs.sh
# NEZHA checkpoints in Huawei's TF and MindSpore's layouts through the converters, back to the reference outputs
SCRIPT_TESTS += tests/test_convert_nezha.sh
# data parallel over MPI: 2 ranks against 1 (make MPI=1 builds; a skip line without mpicc/mpirun)
SCRIPT_TESTS += tests/test_mpi.sh
# the checkpoint converters (convert/*.py: python3 + numpy), with a helper that runs bert.h on their output
SCRIPT_TESTS += tests/test_convert.sh
# ... and on randomly mutated inputs of every format (100 per input kind here; make fuzz runs more)
SCRIPT_TESTS += tests/test_convert_mutate.sh
# the directories pretrain/classify save load in transformers (its rules, python3 + numpy); with
# PyTorch also their forward against tests/ref/bert_ref.py (else a skip line; ref-check requires it)
SCRIPT_TESTS += tests/test_hf_load.sh
# the ONNX export (convert/st2onnx.py) run in ONNX Runtime against bert.h (tests/onnx_forward.c); the ORT
# part skips itself without onnxruntime-node (make ort installs it)
SCRIPT_TESTS += tests/test_onnx.sh
# --remove_padding (the encoder on the real tokens only) through encode, classify, ner, squad against the padded path
SCRIPT_TESTS += tests/test_remove_padding.sh
# --precision bf16 training (bert_cpu_bf16_kernels) through the run layer: the fp32 loss curve, resume, classify
SCRIPT_TESTS += tests/test_bf16_train.sh
ORT_DIR ?= build/ort/node_modules
PYTHON ?= /usr/bin/python3
test: $(TEST_BINS) $(BUILD)/tokenize_dump $(BUILD)/convert_forward $(BUILD)/onnx_forward $(BUILD)/finetune_own $(BUILD)/st_compare $(EXAMPLE_BINS) cxx-check readme-check cuda-check
	@TOKENIZE_DUMP=$(BUILD)/tokenize_dump CONVERT_FORWARD=$(BUILD)/convert_forward ONNX_FORWARD=$(BUILD)/onnx_forward ORT_DIR=$(ORT_DIR) FINETUNE_OWN=$(BUILD)/finetune_own BUILD=$(BUILD) PYTHON=$(PYTHON) \
	  sh tests/run.sh $(TEST_BINS) $(SCRIPT_TESTS)

# ONNX Runtime for tests/test_onnx.sh: npm's onnxruntime-node into build/ort (--ignore-scripts: its install
# script would download GPU extras). Needs npm and the registry, so make test never runs it; a failure
# is only a note (the test then skips its ORT part)
.PHONY: ort
ort:
	@mkdir -p build/ort && if npm install --ignore-scripts --no-audit --no-fund --prefix build/ort onnxruntime-node >build/ort/npm.log 2>&1; \
	  then echo "✓ onnxruntime-node in build/ort"; else echo "✗ npm install onnxruntime-node failed (build/ort/npm.log): test_onnx.sh skips ONNX Runtime"; fi

# the header compiles clean as C++ too (and as C11 with clang when present)
cxx-check: | $(BUILD)
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
	$(PYTHON_TORCH) tests/ref/pretrain_ref.py --tfrecord $(PRETRAIN_TFRECORD) --out tests/ref --bf16
	$(PYTHON_TORCH) tests/ref/encode_ref.py --out tests/ref
	$(PYTHON_TORCH) tests/ref/classify_ref.py --out tests/ref
	$(PYTHON_TORCH) tests/ref/metrics_ref.py --out tests/ref
	$(PYTHON_TORCH) tests/ref/ner_ref.py --out tests/ref
	$(PYTHON_TORCH) tests/ref/squad_ref.py --out tests/ref
	$(PYTHON_TORCH) tests/ref/nezha_ref.py --out tests/ref
	$(PYTHON) tests/ref/squad_features_ref.py --out tests/ref

clean:
	rm -rf build

# regenerate the fixtures into a temp dir and compare them with the committed ones
# (pretrain_ref.safetensors only where the TFRecord file is present)
ref-check: $(BUILD)/pretrain $(BUILD)/classify $(BUILD)/encode $(BUILD)/convert_forward
	@tmp=$$(mktemp -d) && $(PYTHON_TORCH) tests/ref/bert_ref.py --out $$tmp >/dev/null && \
	  $(PYTHON_TORCH) tests/ref/pretrain_ref.py --tfrecord $(PRETRAIN_TFRECORD) --out $$tmp >/dev/null && \
	  $(PYTHON_TORCH) tests/ref/pretrain_ref.py --tfrecord $(PRETRAIN_TFRECORD) --out $$tmp --bf16 >/dev/null && \
	  $(PYTHON_TORCH) tests/ref/encode_ref.py --out $$tmp >/dev/null && \
	  $(PYTHON_TORCH) tests/ref/classify_ref.py --out $$tmp >/dev/null && \
	  $(PYTHON_TORCH) tests/ref/metrics_ref.py --out $$tmp >/dev/null && cmp tests/ref/metrics_ref.json $$tmp/metrics_ref.json && \
	  $(PYTHON_TORCH) tests/ref/ner_ref.py --out $$tmp >/dev/null && \
	  $(PYTHON_TORCH) tests/ref/nezha_ref.py --out $$tmp >/dev/null && \
	  $(PYTHON_TORCH) tests/ref/squad_ref.py --out $$tmp >/dev/null && $(PYTHON) tests/ref/squad_features_ref.py --out $$tmp >/dev/null && \
	  $(PYTHON) tools/gen_squad_tables.py --check examples/squad_eval.h && \
	  $(PYTHON_TORCH) tests/ref/compare.py tests/ref $$tmp $$([ -f $(PRETRAIN_TFRECORD) ] || echo --optional pretrain_ref.safetensors --optional pretrain_bf16_ref.safetensors --optional encode_ref.safetensors) $$([ -f ../shared/data/squad/dev-v1.1.json ] || echo --optional squad_dev_ref.safetensors); \
	  rc=$$?; rm -rf $$tmp; exit $$rc
	@BUILD=$(BUILD) PYTHON=$(PYTHON_TORCH) CONVERT_FORWARD=$(BUILD)/convert_forward sh tests/test_hf_load.sh --require-torch

# the README's usage example compiles and runs
readme-check: | $(BUILD)
	@awk '/<!-- readme-example/{f=1;next} f&&/^```c/{g=1;next} g&&/^```/{exit} g' README.md > $(BUILD)/readme_example.c
	$(CC) $(CFLAGS) -I. $(BUILD)/readme_example.c -o $(BUILD)/readme_example $(LDLIBS)
	cd $(BUILD) && ./readme_example | tail -n 2 && rm -f tiny.safetensors

# the parser-heavy tests under valgrind (memcheck, leaks): built for plain x86-64, since valgrind
# does not decode AVX-512
VG_TESTS = test_safetensors test_io test_tfrecord test_tokenizer test_autograd test_nezha
# the library's tests on aarch64, s390x (big-endian) and i686 (32-bit) under qemu-user, built by the
# Debian cross compilers (tests/test_cross.sh installs them and qemu-user when it can; about 8 minutes)
.PHONY: test-cross
test-cross:
	sh tests/test_cross.sh

# Windows x86-64: the library's tests, the programs end to end and checkpoints both ways, built by
# mingw-w64 and run under wine (tests/test_windows.sh installs both when it can; 2-4 minutes)
.PHONY: test-windows
test-windows:
	sh tests/test_windows.sh

# every C test of make test and every program, built by clang (C11, -Wall -Wextra -Wshadow as errors, no
# OpenMP) into build/clang, when clang is there: the tests that drive a program run the clang-built one
CLANG_TESTS = $(TESTS)
CLANG_FLAGS = -O2 -std=c11 -Wall -Wextra -Wshadow -Werror -march=native
.PHONY: test-clang
test-clang:
	@if command -v clang >/dev/null 2>&1; then mkdir -p build/clang && \
	  for p in $(EXAMPLES) demo; do clang $(CLANG_FLAGS) examples/$$p.c -o build/clang/$$p -lm || exit 1; done && \
	  for t in $(CLANG_TESTS); do clang $(CLANG_FLAGS) tests/$$t.c -o build/clang/$$t -lm || exit 1; done && \
	  sh tests/run.sh $(addprefix build/clang/,$(CLANG_TESTS)); \
	else echo "skipped: no clang (apt-get install clang)"; echo "0 passed, 0 failed"; fi

.PHONY: valgrind
valgrind:
	@mkdir -p build/vg
	@for t in $(VG_TESTS); do $(CC) -O1 -g -std=c11 -Wall -Wextra tests/$$t.c -o build/vg/$$t -lm || exit 1; done
	@RUNNER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" sh tests/run.sh $(addprefix build/vg/,$(VG_TESTS))

# libFuzzer targets for every parser (tests/fuzz, needs clang): FUZZ_SECONDS per target (or FUZZ_RUNS
# executions, whichever comes first), FUZZ_JOBS at once; then the converters' mutation test
FUZZ_SECONDS ?= 60
FUZZ_CONVERT_ITERATIONS ?= 2000
.PHONY: fuzz
fuzz:
	FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_JOBS=$(FUZZ_JOBS) sh tests/fuzz/run.sh $(FUZZ_SECONDS)
	$(PYTHON) tests/fuzz/convert_mutate.py --iterations $(FUZZ_CONVERT_ITERATIONS)

# benchmarks against PyTorch, side by side (bench/README.md); they report, they never fail the build
.PHONY: bench bench-quick
bench:
	CC="$(CC)" bash bench/run.sh
bench-quick:
	CC="$(CC)" bash bench/run.sh --quick
