/* run.h - the run layer every program in examples/ stands on, and yours can: include it after bert.h
   (POSIX: it uses fcntl locks, O_NOFOLLOW, directories and signals; on Windows, mingw-w64, the
   stand-ins below the includes: _locking, a glob of its own, binary files, no O_NOFOLLOW).

   One training run lives in an output directory (--out):
       OUT/log.jsonl             one JSON object per line: {"step": ...}, {"eval_step": ...}, {"summary": ...}
       OUT/curve.svg             training loss and the eval metric, redrawn at each evaluation and at the end
       OUT/ckpt-00000100/        model.safetensors and config.json (transformers loads the directory), then
                                 state.safetensors (optimizer moments, data cursor,
                                 dropout step counter) written last, and run_id (the run's lineage): a
                                 directory whose state loads is complete, and a crash at any instant
                                 leaves the previous one intact
       OUT/.lock                 held (fcntl) while a run uses the directory: a second run there is refused
   What it gives a program, in the order a run uses it:
     run_opts + run_parse      the common flags (optimizer and schedule, batch and accumulation, steps or
                               epochs, seed, threads, output, checkpoints, resume, logging), each checked
                               against its range, beside the program's own table; a task flag of the same
                               name takes precedence (how legacy names such as --output_dir stay)
     run_model_config          the one precedence rule for a model's config: the weights file's own wins
                               over --config (noted when they differ)
     run_claim / run_begin     --max_memory_mb checked first (the program's step, opts.measure, built on
                               bert_measure_kernels: exact, nothing allocated), --out claimed (created,
                               locked, refused if it holds an earlier run unless
                               --resume or --overwrite), optimizer, activation arena, SIGINT/SIGTERM,
                               --resume (bit-identical continuation; a checkpoint that exists but does
                               not fit this model or data is refused, never skipped)
     run_next_step/run_batch/run_micro/run_backward/run_end_step
                               the step: data cursor over a per-epoch Fisher-Yates permutation,
                               dropout step numbering, the accumulation weights (bert_backward_scaled's
                               rule), NaN/Inf steps skipped and counted, log line, progress line with ETA,
                               periodic checkpoints keeping the last --keep of this run's own lineage
     run_eval_due/run_eval_end the eval cadence, the eval line, the curve
     run_finish                last checkpoint, summary (e2e, p_whole, p_train, p_core, peak memory),
                               the exit status (0; 1 after too many bad steps or lost stdout; 130/143
                               interrupted, a checkpoint saved)
   and the small things every command-line program needs: run_die/run_warn (one line), checked
   allocation, file reads bounded and refusing FIFOs/devices (run_read_file, run_read_file_max),
   outputs written atomically and never through a symlink (run_create + run_commit), model outputs
   checked for NaN/Inf (run_read_finite), JSON writers, checked streams (run_check_stream).

   The library itself never exits; this layer does (run_die) because it is the program's edge. */
#ifndef BERT_RUN_H
#define BERT_RUN_H

#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE   // mkdir, opendir, fcntl, getpid (when run.h comes before the system headers)
#endif
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef BERT_MPI
#include "../bert_mpi.h"   // data parallel over MPI: build with mpicc -DBERT_MPI (make MPI=1)
#endif

#if defined(__GNUC__) || defined(__clang__)
#ifdef __MINGW32__   // mingw's "printf" checks msvcrt's formats; its C99 stdio (on under -std=c11) takes %zu
#define RUN_PRINTF(a, b) __attribute__((format(__MINGW_PRINTF_FORMAT, a, b)))
#else
#define RUN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#endif
#define RUN_UNUSED __attribute__((unused))
#else
#define RUN_PRINTF(a, b)
#define RUN_UNUSED
#endif

#ifdef _WIN32   // mingw-w64: the POSIX pieces run.h uses, in Windows' terms (see run__glob below too)
#include <ctype.h>
#include <direct.h>
#include <io.h>
#include <process.h>
#include <sys/locking.h>
#define mkdir(path, mode) _mkdir(path)   // no permission bits there
/* No O_NOFOLLOW: _open follows a symlink. Making one takes an administrator (or developer mode)
   there, and the atomic saves still never write through one (bert_atomic_open: O_EXCL on a name it
   removed first); only log.jsonl and .lock could be opened through one. */
#define O_NOFOLLOW 0
#endif
#if !defined(O_NOFOLLOW) && defined(__O_NOFOLLOW)
#define O_NOFOLLOW __O_NOFOLLOW   // glibc hides the POSIX-2008 name under strict -std=c11
#endif
#ifndef O_NOFOLLOW
#error "run.h needs O_NOFOLLOW: #define _DEFAULT_SOURCE (or _POSIX_C_SOURCE 200809L) before any #include"
#endif
#if !defined(__cplusplus) && !defined(_WIN32)
FILE *(fdopen)(int, const char *);   // POSIX, hidden under strict -std=c11; a compatible redeclaration
#endif

#ifdef _WIN32
/* glob() for the programs' file arguments (pretrain --input/--text, create_pretraining_data
   --input_file), which mingw lacks: * ? [set] [!set] in the last path component only, letters in
   either case (as Windows names compare), a leading '.' matched only by the pattern's own, the
   matches sorted as glob sorts them; a name without wildcards is itself when it exists. */
typedef struct { size_t gl_pathc; char **gl_pathv; } glob_t;
#define GLOB_NOSPACE 1
#define GLOB_NOMATCH 3
#define glob(pattern, flags, errfunc, g) run__glob(pattern, g)
#define globfree run__globfree

static int run__fnmatch(const char *p, const char *s) {
    for (; *p; p++, s++) {
        if (*p == '*') {
            while (p[1] == '*') p++;
            for (;; s++) { if (run__fnmatch(p + 1, s)) return 1; if (!*s) return 0; }
        }
        if (!*s) return 0;
        if (*p == '?') continue;
        if (*p == '[') {   // a set; without its ']' the '[' is a plain character
            const char *q = p + 1;
            int neg = *q == '!' || *q == '^', hit = 0, lo = tolower((unsigned char)*s), up = toupper((unsigned char)*s);
            q += neg;
            for (const char *first = q; *q && (*q != ']' || q == first); q++) {
                int a = (unsigned char)*q, z = a;
                if (q[1] == '-' && q[2] && q[2] != ']') { z = (unsigned char)q[2]; q += 2; }
                hit |= (lo >= a && lo <= z) || (up >= a && up <= z);
            }
            if (*q == ']') { if (hit == neg) return 0; p = q; continue; }
        }
        if (tolower((unsigned char)*p) != tolower((unsigned char)*s)) return 0;
    }
    return !*s;
}

static RUN_UNUSED void run__globfree(glob_t *g) {
    for (size_t i = 0; i < g->gl_pathc; i++) free(g->gl_pathv[i]);
    free(g->gl_pathv);
    g->gl_pathc = 0; g->gl_pathv = NULL;
}

static int run__glob_add(glob_t *g, const char *dir, size_t dn, const char *name) {   // 1: out of memory
    char **v = (char **)realloc(g->gl_pathv, (g->gl_pathc + 1) * sizeof *v);
    char *path = (char *)malloc(dn + strlen(name) + 1);
    if (v) g->gl_pathv = v;
    if (!v || !path) { free(path); return 1; }
    memcpy(path, dir, dn);
    strcpy(path + dn, name);
    g->gl_pathv[g->gl_pathc++] = path;
    return 0;
}

static int run__glob_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static RUN_UNUSED int run__glob(const char *pattern, glob_t *g) {
    const char *slash = strrchr(pattern, '/'), *back = strrchr(pattern, '\\');
    struct stat st;
    g->gl_pathc = 0; g->gl_pathv = NULL;
    if (back && (!slash || back > slash)) slash = back;
    if (!strpbrk(pattern, "*?[")) return stat(pattern, &st) != 0 ? GLOB_NOMATCH : run__glob_add(g, "", 0, pattern) ? GLOB_NOSPACE : 0;
    const char *name = slash ? slash + 1 : pattern;
    size_t dn = (size_t)(name - pattern);   // the directory part, kept as written (with its separator)
    char dir[4096];
    if (dn >= sizeof dir) return GLOB_NOMATCH;
    memcpy(dir, pattern, dn);
    dir[dn] = 0;
    DIR *d = opendir(dn ? dir : ".");
    if (!d) return GLOB_NOMATCH;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.' && name[0] != '.') continue;   // ".", "..", and hidden names as POSIX hides them
        if (run__fnmatch(name, e->d_name) && run__glob_add(g, dir, dn, e->d_name)) { closedir(d); run__globfree(g); return GLOB_NOSPACE; }
    }
    closedir(d);
    if (!g->gl_pathc) return GLOB_NOMATCH;
    qsort(g->gl_pathv, g->gl_pathc, sizeof *g->gl_pathv, run__glob_cmp);
    return 0;
}
#endif

#define RUN_SHUFFLE_SITE 0x5348554646ull   // "SHUFF": the data order's RNG site, apart from dropout's

// ----------------------------------------------------------------------------
// errors, memory, files, JSON output

static const char *run_prog = "bert";   // the program's name in messages (run_parse sets it)
static const bert_comm *run_comm;       // the ranks of a data-parallel run (run_parse sets it; NULL: one)

static int run_rank(void) { return run_comm ? run_comm->rank : 0; }
static int run_world(void) { return run_comm ? run_comm->size : 1; }

// one line on stderr: "prog: [kind]message", or "prog (rank R): ..." from a rank other than 0
static void run__report(const char *kind, const char *fmt, va_list ap) {
    fflush(stdout);
    if (run_rank()) fprintf(stderr, "%s (rank %d): %s", run_prog, run_rank(), kind);
    else fprintf(stderr, "%s: %s", run_prog, kind);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
}

// the end of a failed run: with several ranks, every rank ends (MPI_Abort), none waits on this one
static void run__exit_failed(void) {
    if (run_world() > 1) { fflush(NULL); run_comm->abort(run_comm, 1); }
    exit(1);
}

static void run_die(const char *fmt, ...) RUN_PRINTF(1, 2);
static void run_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    run__report("", fmt, ap);
    va_end(ap);
    run__exit_failed();
}

static void run_warn(const char *fmt, ...) RUN_PRINTF(1, 2);
static void run_warn(const char *fmt, ...) {
    if (run_rank()) return;   // the ranks read the same data: rank 0 says it once
    va_list ap;
    va_start(ap, fmt);
    run__report("warning: ", fmt, ap);
    va_end(ap);
}

static RUN_UNUSED void *run_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) run_die("out of memory (%zu bytes)", n);
    return p;
}

static RUN_UNUSED void *run_calloc(size_t n, size_t size) {
    if (size && n > (size_t)-1 / size) run_die("out of memory (%zu x %zu bytes)", n, size);
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) run_die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

static RUN_UNUSED void *run_realloc(void *q, size_t n) {
    void *p = realloc(q, n ? n : 1);
    if (!p) run_die("out of memory (%zu bytes)", n);
    return p;
}

static RUN_UNUSED char *run_strndup(const char *s, size_t n) {
    char *d = (char *)run_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static RUN_UNUSED char *run_strdup(const char *s) { return run_strndup(s, strlen(s)); }

// the whole file, NUL-terminated; *len (may be NULL) excludes the NUL; free() it
static RUN_UNUSED char *run_read_file(const char *path, size_t *len) {
    unsigned char *data;
    size_t n;
    if (bert_read_file(path, &data, &n)) run_die("%s", bert_last_error());
    if (len) *len = n;
    return (char *)data;
}

// run_read_file for at most max bytes: past that, "PATH: larger than N MB (why)" without reading
// on; a regular file only (bert_open_input: a FIFO or a device is refused before a read could block)
static RUN_UNUSED char *run_read_file_max(const char *path, size_t *len, size_t max, const char *why) {
    FILE *f = (FILE *)bert_open_input(path);
    if (!f) run_die("%s", bert_last_error());
    size_t cap = max < ((size_t)1 << 20) ? max + 1 : (size_t)1 << 20, n = 0;
    char *s = (char *)run_malloc(cap + 1);
    for (size_t got; (got = fread(s + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n > max) run_die("%s: larger than %zu MB (%s)", path, max >> 20, why);
        if (n == cap) s = (char *)run_realloc(s, (cap = cap < max / 2 ? 2 * cap : max + 1) + 1);
    }
    if (ferror(f)) run_die("%s: read error", path);
    fclose(f);
    s[n] = 0;
    if (len) *len = n;
    return s;
}

/* An output file of the program, written atomically (bert_atomic_open/close): PATH.tmp created
   exclusively (never through a planted symlink), renamed over PATH by run_commit once every write
   succeeded; a failure (a full disk, /dev/full) is one line and exit 1, PATH keeping what it held. */
static RUN_UNUSED FILE *run_create(bert_atomic_file *a, const char *path) {
    if (run_rank()) {   // the other ranks of a data-parallel run compute the same outputs: rank 0 writes
        a->tmp = NULL;
        if (!(a->file = fopen("/dev/null", "w"))) run_die("/dev/null: %s", strerror(errno));
        return (FILE *)a->file;
    }
    if (bert_atomic_open(a, path)) run_die("%s", bert_last_error());
    return (FILE *)a->file;
}

static RUN_UNUSED void run_commit(bert_atomic_file *a, const char *path) {
    if (run_rank()) { fclose((FILE *)a->file); a->file = NULL; return; }
    if (bert_atomic_close(a, path, 1)) run_die("%s", bert_last_error());
}

// a fine-tuning architecture (not NULL or BertForPreTraining): its files leave out the pretraining heads
static RUN_UNUSED int run_finetuned(const char *architecture) {
    return architecture && strcmp(architecture, "BertForPreTraining") != 0;
}

/* bert_model_save on rank 0 (the only writer of a data-parallel run), one line and exit 1 on failure;
   a fine-tuned model (run_finetuned(architecture)) without the pretraining heads (cls.*), so that
   transformers finds no tensor its task class does not have */
static RUN_UNUSED void run_model_save(const bert_model *m, const char *path, const char *architecture) {
    if (run_rank()) return;
    if (run_finetuned(architecture) ? bert_model_save_finetuned(m, path) : bert_model_save(m, path)) run_die("saving %s", bert_last_error());
}

/* --precision of inference: fp32 (the weights as trained), bf16 or int8 (bert_model_quantize: the
   encoder's weight matrices in bf16, or in int8 with activations quantised per token; faster on a CPU
   with AVX512-BF16 / AVX512-VNNI, outputs within about 1 % of fp32's). run_check_precision when the
   flags are parsed; run_precision before each evaluation or prediction (training drops the copies, so
   they are made again from the current weights). Without the instructions in this build the
   low-precision kernels would be slower than fp32: a note, and fp32. */
static RUN_UNUSED void run_check_precision(const char *p) {
    if (strcmp(p, "fp32") && strcmp(p, "bf16") && strcmp(p, "int8")) run_die("--precision %s: fp32, bf16 or int8", p);
}

static RUN_UNUSED void run_precision(bert_model *m, const char *p) {
    static int noted;
    if (!strcmp(p, "fp32") || m->quant) return;
    int int8 = !strcmp(p, "int8");
    if (strstr(int8 ? bert_int8_kernel_name() : bert_bf16_kernel_name(), "plain")) {
        if (!noted++) run_warn("--precision %s: this build has no %s kernel (built without -march=native on such a CPU?), "
                               "so it would be slower than fp32: using fp32", p, int8 ? "AVX512-VNNI int8" : "AVX512-BF16");
        return;
    }
    if (bert_model_quantize(m, int8 ? BERT_PRECISION_INT8 : BERT_PRECISION_BF16)) run_die("%s", bert_last_error());
}

/* config.json for transformers beside a model.safetensors: the BERT config (bert.h writes HF's
   keys), "model_type": "bert" (or "nezha"), the architecture, and the head's keys (id2label, ...) that keys (may be
   NULL) writes, each as ", \"key\": value". */
static RUN_UNUSED void run_hf_config(const bert_model *m, const char *path, const char *architecture,
                                     void (*keys)(FILE *f, const bert_model *m)) {
    char base[1024];
    bert_atomic_file out;
    if (bert_config_to_json(&m->config, base, sizeof base) < 0) run_die("config too long");
    FILE *f = run_create(&out, path);
    base[strlen(base) - 1] = 0;   // the closing brace comes after the head's keys
    // NEZHA: transformers' NezhaModel classes (BertForX -> NezhaForX); its learned-table flavour has none
    int nezha = m->config.use_relative_position;
    const char *arch = nezha && !strncmp(architecture, "Bert", 4) ? architecture + 4 : architecture;
    fprintf(f, "%s, \"model_type\": \"%s\", \"architectures\": [\"%s%s\"], \"torch_dtype\": \"float32\"", base,
            nezha ? "nezha" : "bert", arch == architecture ? "" : "Nezha", arch);
    if (keys) keys(f, m);
    fprintf(f, "}\n");
    run_commit(&out, path);
}

// the sum over the ranks of x (x itself in one process); every rank must call it at the same point
static RUN_UNUSED double run_sum(double x) {
    if (run_world() > 1 && run_comm->allreduce_sum_f64(run_comm, &x, 1)) run_die("allreduce failed");
    return x;
}

// every rank waits here (rank 0 writing a file the others then read)
static RUN_UNUSED void run_barrier(void) {
    if (run_world() > 1 && run_comm->barrier(run_comm)) run_die("barrier failed");
}

/* s (n bytes of UTF-8) as a JSON string literal, quotes included, quotes and control characters
   escaped, into dst (NULL: only counted); returns its length. In memory, so a metadata string is
   built without stdio (open_memstream is POSIX only). */
static RUN_UNUSED size_t run_json_escape(char *dst, const char *s, size_t n) {
    size_t k = 0;
#define RUN__PUT(ch) do { if (dst) dst[k] = (char)(ch); k++; } while (0)
    RUN__PUT('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
        char u[8];
        if (!esc && c < 0x20) { snprintf(u, sizeof u, "\\u%04x", c); esc = u; }
        if (esc) for (; *esc; esc++) RUN__PUT(*esc);
        else RUN__PUT(c);
    }
    RUN__PUT('"');
#undef RUN__PUT
    return k;
}

// the same, written to f
static RUN_UNUSED void run_json_string(FILE *f, const char *s, size_t n) {
    char small[256];
    size_t len = run_json_escape(NULL, s, n);
    char *buf = len <= sizeof small ? small : (char *)run_malloc(len);
    run_json_escape(buf, s, n);
    fwrite(buf, 1, len, f);
    if (buf != small) free(buf);
}

// a JSON number, or null for NaN/Inf (an undefined metric)
static RUN_UNUSED void run_json_number(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, "%.9g", x);
    else fputs("null", f);
}

// flushes f and dies if anything written to it was lost (a full disk, /dev/full, a closed pipe)
static RUN_UNUSED void run_check_stream(FILE *f, const char *what) {
    if (fflush(f) != 0 || ferror(f)) run_die("%s: write failed: %s", what, strerror(errno ? errno : EIO));
}

/* bert_tensor_read (dst: t->numel floats; NULL: only checked), then the output checked: finite
   weights can still overflow in the forward pass (a checkpoint scaled up by mistake), and a NaN must
   become one clear line and exit 1, never a "-nan" in a JSON file or a prediction from garbage. */
static RUN_UNUSED void run_read_finite(bert_ctx *ctx, const bert_tensor *t, float *dst, const char *what) {
    float *x = dst ? dst : (float *)run_malloc(t->numel * sizeof(float));
    bert_tensor_read(ctx, t, x);
    size_t bad = 0;
    for (size_t i = 0; i < t->numel; i++) bad += !isfinite(x[i]);
    if (!dst) free(x);
    if (bad) run_die("%s: the model's output has %zu NaN/Inf values of %zu (are its weights too large?)", what, bad, t->numel);
}

// the index of the largest of x[0..n) (the first on ties)
static RUN_UNUSED int run_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

// a Fisher-Yates permutation of [0,n) from bert_rng_stream(seed, epoch, RUN_SHUFFLE_SITE); the
// identity when shuffle is 0
static RUN_UNUSED void run_permutation(size_t *perm, size_t n, uint64_t seed, uint64_t epoch, int shuffle) {
    for (size_t i = 0; i < n; i++) perm[i] = i;
    if (!shuffle || n < 2) return;
    uint64_t stream = bert_rng_stream(seed, epoch, RUN_SHUFFLE_SITE);
    for (size_t i = n - 1; i > 0; i--) {   // the modulo bias is < 2^-40 at these sizes
        size_t j = (size_t)(bert_rng_bits(stream, (uint64_t)i) % (uint64_t)(i + 1));
        size_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
}

// ----------------------------------------------------------------------------
// options: the common flags

/* A program's loss on a micro-batch of `batch` all-zero examples (token 0, label 0, full length),
   built on ctx with m: run_begin runs it on bert_measure_kernels to check --max_memory_mb. */
typedef bert_tensor *(*run_loss_fn)(bert_ctx *ctx, bert_model *m, int batch, void *arg);

typedef struct {
    const char *out, *optimizer, *resume_from, *precision;
    int steps, epochs, batch_size, accumulation_steps, warmup_steps, seed, threads, no_shuffle;
    int resume, overwrite, keep, save_every, eval_every, print_every, max_bad_steps;
    float lr, warmup_proportion, poly_power, end_lr, weight_decay, beta1, beta2, eps, clip_norm, momentum;
    float loss_scale; int dynamic_loss_scale, loss_scale_window;   // loss scaling (defaults 1, off, 2000: none)
    int max_memory_mb;   // 0: no cap
    const char *tokenizer;   // --tokenizer google | hf (RUN_FLAGS_TOKENIZER); NULL: not given
    int remove_padding;  // inference: the encoder on the real tokens only (ctx->remove_padding)
    run_loss_fn measure; void *measure_arg;   // not flags: the program's step, for --max_memory_mb
    const char *hf_architecture;              // not a flag: config.json's "architectures" in checkpoints (BertForPreTraining)
    void (*hf_config_keys)(FILE *f, const bert_model *m);   // not a flag: the head's config.json keys (", \"num_labels\": ...")
    int drop_last;   // not a flag: 1 = an epoch's remainder is dropped (every batch full); 0 = a last, smaller batch
    int debug_kill_at_step, debug_kill_rank, debug_nan_at_step, debug_nan_count, debug_trace_records;   // testing hooks
} run_opts;

// defaults as google-research/bert's fine-tuning scripts; a program changes what its task needs
static RUN_UNUSED run_opts run_defaults(void) {
    run_opts o;
    memset(&o, 0, sizeof o);
    o.out = "run_out"; o.optimizer = "adamw_gb"; o.precision = "fp32"; o.remove_padding = 1;
    o.epochs = 3; o.batch_size = 32; o.accumulation_steps = 1; o.warmup_steps = -1; o.seed = 12345;
    o.keep = 3; o.print_every = 10; o.max_bad_steps = 10; o.debug_nan_count = 1; o.debug_kill_rank = -1;
    o.lr = 5e-5f; o.warmup_proportion = 0.1f; o.poly_power = 1.0f; o.weight_decay = 0.01f;
    o.beta1 = 0.9f; o.beta2 = 0.999f; o.eps = 1e-6f; o.clip_norm = 1.0f; o.momentum = 0.9f;
    o.loss_scale = 1.0f; o.loss_scale_window = 2000;
    return o;
}

enum { RUN_FLAGS_TRAIN = 1, RUN_FLAGS_COMMON = 2, RUN_FLAGS_INFER = 4, RUN_FLAGS_TOKENIZER = 8 };   // which groups run_parse adds
#define RUN_MAX_FLAGS 160

static int run__flags(bert_flag *t, run_opts *o, unsigned groups) {
    int n = 0;
#define RUN__F(NAME, TYPE, FIELD, HELP) t[n].name = NAME; t[n].type = TYPE; t[n].value = &o->FIELD; t[n].help = HELP; n++;
    if (groups & RUN_FLAGS_COMMON) {
        RUN__F("out", BERT_FLAG_STR, out, "output directory: checkpoints, log.jsonl, curve.svg")
        RUN__F("threads", BERT_FLAG_INT, threads, "OpenMP threads (0: OMP_NUM_THREADS or all cores)")
        RUN__F("seed", BERT_FLAG_INT, seed, "seed of the data order, the dropout masks and a random init")
    }
    if (groups & RUN_FLAGS_TOKENIZER) {
        RUN__F("tokenizer", BERT_FLAG_STR, tokenizer, "google | hf: google-research/bert's tokenization.py (the default; Google's checkpoints) "
                                                      "or Hugging Face's BertTokenizer (default for a transformers model directory): hf drops "
                                                      "unassigned and private-use characters and makes words over 100 characters [UNK]")
    }
    if ((groups & RUN_FLAGS_INFER) && (groups & RUN_FLAGS_TRAIN)) {
        RUN__F("precision", BERT_FLAG_STR, precision, "fp32 | bf16 | int8: bf16 trains with bf16 GEMM inputs and fp32 sums, master weights and "
                                                      "optimizer (AMX / AVX512-BF16); evaluation and prediction run the encoder's weights in "
                                                      "bf16 or int8 (faster with AVX512-BF16 / VNNI; int8 trains in fp32)")
    } else if (groups & RUN_FLAGS_INFER) {
        RUN__F("precision", BERT_FLAG_STR, precision, "inference: fp32 | bf16 | int8 (the encoder's weights in bf16 or int8: faster with AVX512-BF16 / VNNI)")
    } else if (groups & RUN_FLAGS_TRAIN) {
        RUN__F("precision", BERT_FLAG_STR, precision, "training: fp32 | bf16 (bf16 GEMM inputs, fp32 sums, master weights and optimizer: AMX / AVX512-BF16)")
    }
    if (groups & RUN_FLAGS_INFER) {
        RUN__F("remove_padding", BERT_FLAG_BOOL, remove_padding, "inference: run the encoder on the real tokens of a batch only, attention per sequence (same outputs, faster on padded batches)")
    }
    if (groups & RUN_FLAGS_TRAIN) {
        RUN__F("optimizer", BERT_FLAG_STR, optimizer, "lamb | adamw | adamw_gb | momentum")
        RUN__F("lr", BERT_FLAG_FLOAT, lr, "peak learning rate")
        RUN__F("warmup_steps", BERT_FLAG_INT, warmup_steps, "linear warmup steps (-1: --warmup_proportion)")
        RUN__F("warmup_proportion", BERT_FLAG_FLOAT, warmup_proportion, "warmup as a fraction of the steps")
        RUN__F("poly_power", BERT_FLAG_FLOAT, poly_power, "polynomial decay power after warmup")
        RUN__F("end_lr", BERT_FLAG_FLOAT, end_lr, "learning rate at the last step")
        RUN__F("weight_decay", BERT_FLAG_FLOAT, weight_decay, "decoupled weight decay (not on LayerNorm/bias)")
        RUN__F("beta1", BERT_FLAG_FLOAT, beta1, "Adam/LAMB beta1")
        RUN__F("beta2", BERT_FLAG_FLOAT, beta2, "Adam/LAMB beta2")
        RUN__F("eps", BERT_FLAG_FLOAT, eps, "Adam/LAMB epsilon")
        RUN__F("momentum", BERT_FLAG_FLOAT, momentum, "SGD momentum (--optimizer momentum)")
        RUN__F("clip_norm", BERT_FLAG_FLOAT, clip_norm, "global gradient norm clip, 0 = off")
        RUN__F("batch_size", BERT_FLAG_INT, batch_size, "examples per micro-batch")
        RUN__F("accumulation_steps", BERT_FLAG_INT, accumulation_steps, "micro-batches per optimizer step")
        RUN__F("steps", BERT_FLAG_INT, steps, "optimizer steps (0: --epochs decide)")
        RUN__F("epochs", BERT_FLAG_INT, epochs, "passes over the training data when --steps is 0")
        RUN__F("no_shuffle", BERT_FLAG_BOOL, no_shuffle, "read the training data in file order")
        RUN__F("eval_every", BERT_FLAG_INT, eval_every, "evaluate every N steps (0: the program's default)")
        RUN__F("save_every", BERT_FLAG_INT, save_every, "checkpoint every N steps (0: only at the end)")
        RUN__F("keep", BERT_FLAG_INT, keep, "checkpoints of this run kept (oldest deleted)")
        RUN__F("resume", BERT_FLAG_BOOL, resume, "continue from the newest complete checkpoint in --out")
        RUN__F("resume_from", BERT_FLAG_STR, resume_from, "continue from this checkpoint directory")
        RUN__F("overwrite", BERT_FLAG_BOOL, overwrite, "start over in an --out that holds an earlier run (its checkpoints are kept)")
        RUN__F("print_every", BERT_FLAG_INT, print_every, "progress line every N steps")
        RUN__F("max_memory_mb", BERT_FLAG_INT, max_memory_mb, "refuse to start if params, grads, optimizer state and activations need more (0: no cap)")
        RUN__F("max_bad_steps", BERT_FLAG_INT, max_bad_steps, "stop after this many NaN/Inf steps in a row")
        RUN__F("loss_scale", BERT_FLAG_FLOAT, loss_scale, "multiply the loss by this before the backward and divide the grads by it "
                                                          "(a power of two; 1: none; with --dynamic_loss_scale the start, default 2^15)")
        RUN__F("dynamic_loss_scale", BERT_FLAG_BOOL, dynamic_loss_scale, "halve the loss scale and skip the step when the grads overflow, "
                                                                         "double it after --loss_scale_window clean steps")
        RUN__F("loss_scale_window", BERT_FLAG_INT, loss_scale_window, "clean steps before a dynamic loss scale doubles")
        RUN__F("debug_kill_at_step", BERT_FLAG_INT, debug_kill_at_step, "testing: SIGKILL itself right after this step")
        RUN__F("debug_kill_rank", BERT_FLAG_INT, debug_kill_rank, "testing: ... only this rank (-1: every rank)")
        RUN__F("debug_trace_records", BERT_FLAG_BOOL, debug_trace_records, "testing: each micro-batch's record indices on stderr")
        RUN__F("debug_nan_at_step", BERT_FLAG_INT, debug_nan_at_step, "testing: poison a gradient with NaN at this step")
        RUN__F("debug_nan_count", BERT_FLAG_INT, debug_nan_count, "testing: ... and on this many attempts from there")
    }
#undef RUN__F
    return n;
}

// the program's flags, then the common groups (a name the program already has is left out)
static int run__table(bert_flag *all, const bert_flag *task, int ntask, run_opts *o, unsigned groups) {
    bert_flag common[64];
    int n = 0, nc = run__flags(common, o, groups);
    if (ntask + nc > RUN_MAX_FLAGS) run_die("too many flags");
    for (int i = 0; i < ntask; i++) all[n++] = task[i];
    for (int i = 0; i < nc; i++) {
        int taken = 0;
        for (int j = 0; j < ntask && !taken; j++) taken = !strcmp(task[j].name, common[i].name);
        if (!taken) all[n++] = common[i];
    }
    return n;
}

static void run_check_opts(const run_opts *o, unsigned groups);

/* Parses argv against the program's flags and the common groups. --help prints `intro` (the usage
   text: what the program does and an example) and every flag, then exits 0; a bad flag is one line
   and exit 1. Sets OpenMP's thread count from --threads. */
/* The ranks of a data-parallel run: MPI when built with BERT_MPI (every rank but 0 then prints
   nothing on stdout), and every rank's command line the same as rank 0's (checked: a launcher
   started with different options per rank is refused at once). */
static void run__start_ranks(int argc, char **argv) {
#ifdef BERT_MPI
    if (!(run_comm = bert_mpi_init())) { fprintf(stderr, "%s: MPI could not start\n", run_prog); exit(1); }
#else
    run_comm = bert_comm_single();
#endif
    if (run_world() == 1) return;
    if (run_rank() && !freopen("/dev/null", "w", stdout)) run_die("/dev/null: %s", strerror(errno));
    uint64_t h = 1469598103934665603ull, h0;   // FNV-1a over the arguments and their ends
    for (int i = 1; i < argc; i++)
        for (const unsigned char *c = (const unsigned char *)argv[i];; c++) { h = (h ^ *c) * 1099511628211ull; if (!*c) break; }
    h0 = h;
    if (run_comm->broadcast(run_comm, &h0, sizeof h0, 0)) run_die("broadcast failed");
    if (h0 != h) run_die("this rank's command line differs from rank 0's: every rank must run the same options");
}

static RUN_UNUSED void run_parse(const char *prog, const char *intro, const bert_flag *task, int ntask,
                                 run_opts *o, unsigned groups, int argc, char **argv) {
    bert_flag all[RUN_MAX_FLAGS];
    run_prog = prog;
#ifdef _WIN32
    _fmode = _O_BINARY;   // every file as on POSIX: no CRLF written, no ^Z ending a read early
#endif
    run__start_ranks(argc, argv);
    int n = run__table(all, task, ntask, o, groups);
    int rc = bert_flags_parse(all, n, argc, argv);
    if (rc == 1) {
        printf("%s\nflags:\n", intro);
        bert_flags_usage(stdout, all, n);
        run_check_stream(stdout, "stdout");
        exit(0);
    }
    if (rc) run_die("%s", bert_last_error());
    run_check_opts(o, groups);
#ifdef _OPENMP
    if (o->threads > 0) omp_set_num_threads(o->threads);
#endif
}

/* --tokenizer on a loaded vocab: a program that parses RUN_FLAGS_TOKENIZER calls this after
   bert_vocab_load. hf_dir: the vocab came from a Hugging Face model directory (tokenizer_config.json
   beside it), which picks hf unless --tokenizer is given. */
static RUN_UNUSED void run_vocab_mode(bert_vocab *v, const run_opts *o, int hf_dir) {
    int hf = o->tokenizer ? !strcmp(o->tokenizer, "hf") : hf_dir;
    if (bert_vocab_set_mode(v, hf ? BERT_TOKENIZE_HF : BERT_TOKENIZE_GOOGLE)) run_die("%s", bert_last_error());
}

// a flag's value against its meaning: one line naming the flag and the range
#define RUN__RANGE(ok, flag, range) do { if (!(ok)) run_die("--%s must be %s", flag, range); } while (0)

static void run_check_opts(const run_opts *o, unsigned groups) {
    if (groups & RUN_FLAGS_COMMON) {
        RUN__RANGE(o->out && *o->out, "out", "an output directory");
        RUN__RANGE(o->threads >= 0 && o->threads <= 4096, "threads", "in [0, 4096]");
    }
    if (groups & RUN_FLAGS_INFER) run_check_precision(o->precision);
    else if ((groups & RUN_FLAGS_TRAIN) && strcmp(o->precision, "fp32") && strcmp(o->precision, "bf16"))
        run_die("--precision %s: fp32 or bf16 for training", o->precision);
    if ((groups & RUN_FLAGS_TOKENIZER) && o->tokenizer && strcmp(o->tokenizer, "google") && strcmp(o->tokenizer, "hf"))
        run_die("--tokenizer must be google or hf (got '%s')", o->tokenizer);
    if (!(groups & RUN_FLAGS_TRAIN)) return;
    bert_optim_type type;
    if (bert_optim_parse(&type, o->optimizer)) run_die("--optimizer: %s", bert_last_error());
    RUN__RANGE(o->batch_size >= 1 && o->batch_size <= (1 << 20), "batch_size", "in [1, 1048576]");
    RUN__RANGE(o->accumulation_steps >= 1 && o->accumulation_steps <= (1 << 20), "accumulation_steps", "in [1, 1048576]");
    RUN__RANGE(o->steps >= 0, "steps", ">= 0");
    RUN__RANGE(o->epochs >= 1, "epochs", ">= 1");
    RUN__RANGE(o->lr >= 0 && isfinite(o->lr), "lr", "a number >= 0 (0 keeps the weights as loaded)");
    RUN__RANGE(o->end_lr >= 0 && o->end_lr <= o->lr, "end_lr", "in [0, --lr]");
    RUN__RANGE(o->poly_power >= 0 && o->poly_power <= 100, "poly_power", "in [0, 100]");
    RUN__RANGE(o->warmup_steps >= -1, "warmup_steps", ">= 0 (or -1: --warmup_proportion)");
    RUN__RANGE(o->warmup_proportion >= 0 && o->warmup_proportion <= 1, "warmup_proportion", "in [0,1]");
    RUN__RANGE(o->weight_decay >= 0 && o->weight_decay <= 1, "weight_decay", "in [0,1]");
    RUN__RANGE(o->clip_norm >= 0 && isfinite(o->clip_norm), "clip_norm", "a number >= 0 (0: no clipping)");
    RUN__RANGE(o->beta1 >= 0 && o->beta1 < 1, "beta1", "in [0,1)");
    RUN__RANGE(o->beta2 >= 0 && o->beta2 < 1, "beta2", "in [0,1)");
    RUN__RANGE(o->eps > 0 && o->eps <= 1, "eps", "in (0,1]");
    RUN__RANGE(o->momentum >= 0 && o->momentum < 1, "momentum", "in [0,1)");
    RUN__RANGE(o->keep >= 1, "keep", ">= 1");
    RUN__RANGE(o->print_every >= 1, "print_every", ">= 1");
    RUN__RANGE(o->max_bad_steps >= 1, "max_bad_steps", ">= 1");
    int exponent;   // a power of two has mantissa 0.5 exactly
    RUN__RANGE(o->loss_scale >= 1 && isfinite(o->loss_scale) && frexpf(o->loss_scale, &exponent) == 0.5f, "loss_scale",
               "a power of two >= 1 (it must divide out exactly)");
    RUN__RANGE(o->loss_scale_window >= 1, "loss_scale_window", ">= 1");
    RUN__RANGE(o->max_memory_mb >= 0, "max_memory_mb", ">= 0 (0: no cap)");
    RUN__RANGE(o->debug_kill_rank >= -1, "debug_kill_rank", ">= -1");
    RUN__RANGE(o->save_every >= 0, "save_every", ">= 0 (0: only at the end)");
    RUN__RANGE(o->eval_every >= 0, "eval_every", ">= 0");
}

// ----------------------------------------------------------------------------
// the model's config: one precedence rule for every program

/* The config of the model to build: with a weights file, the file's own config (its __metadata__)
   wins, then --config (config_path), then a bert_config.json / config.json beside the file; without
   one, --config alone. A --config that differs from the file's own is named in a note, never applied
   over it (the weights were trained with the file's). Every program's --help says so. */
static RUN_UNUSED void run_model_config(bert_config *cfg, const char *weights, const char *config_path) {
    bert_config given;
    if (config_path && bert_config_load(&given, config_path)) run_die("%s", bert_last_error());
    if (!weights) {
        if (!config_path) run_die("no config: give --config bert_config.json (a random init) or the weights of a model");
        *cfg = given;
        return;
    }
    if (bert_checkpoint_config(cfg, weights, config_path ? &given : NULL)) run_die("%s", bert_last_error());
    if (config_path && memcmp(cfg, &given, sizeof given) != 0)
        fprintf(stderr, "%s: note: %s carries its own config, which differs from %s: using the file's\n", run_prog, weights, config_path);   // (stderr: encode's stdout is data)
}

/* A model given as a directory (as transformers saves one, or a checkpoint directory here) means its
   model.safetensors (config.json beside it is found by bert_checkpoint_config); a directory with only
   pytorch_model.bin names the converter. *path is replaced; a file path is left as it is. */
static RUN_UNUSED void run_resolve_weights(const char **path) {
    struct stat st;
    if (!*path || stat(*path, &st) != 0 || !S_ISDIR(st.st_mode)) return;
    size_t n = strlen(*path) + 32;
    char *w = (char *)run_malloc(n);   // (kept: the options point at it for the whole run)
    snprintf(w, n, "%s/model.safetensors", *path);
    if (stat(w, &st) != 0) {
        snprintf(w, n, "%s/pytorch_model.bin", *path);
        if (stat(w, &st) == 0)
            run_die("%s holds pytorch_model.bin, not model.safetensors: convert it first (python3 convert/hf2st.py %s %s/model.safetensors)",
                    *path, w, *path);
        run_die("%s: a directory without model.safetensors", *path);
    }
    *path = w;
}

/* The model of a weights file (run_model_config's precedence), or a random one from --config when
   weights is NULL. A file without the pretraining heads loads too (a headless BertModel, as HF's
   BertModel and sentence-transformers save it, with or without the "bert." prefix): the heads keep
   Google's init from seed, and a note on stderr says how many tensors the file lacked. The encoder
   and the pooler must be complete. */
static RUN_UNUSED bert_model *run_load_model(const char *weights, const char *config_path, uint64_t seed) {
    bert_config cfg;
    run_model_config(&cfg, weights, config_path);
    bert_model *m = bert_model_create(&cfg, seed);
    if (!m) run_die("%s", bert_last_error());
    int missing = 0;
    if (weights && bert_model_load_encoder(m, weights, &missing)) run_die("%s", bert_last_error());
    if (missing)
        fprintf(stderr, "%s: note: %s has no pretraining heads (%d tensors): they start from a random init\n", run_prog, weights, missing);
    return m;
}

// ----------------------------------------------------------------------------
// metrics of a step or an evaluation: name/value pairs for the log, the progress line and the curve

typedef struct { const char *name; double value; } run_metric;
#define RUN_MAX_METRICS 16

// ----------------------------------------------------------------------------
// the run

typedef struct { int n, cap; double *x, *y; } run__series;

typedef struct {
    run_opts *o;
    bert_model *m;
    bert_optim opt;
    bert_ctx *ctx;
    int total_steps;            // optimizer steps the run aims for
    size_t n_train;             // training examples: the range of the data cursor
    size_t *perm;               // (n_train) the current epoch's order
    size_t *batch;              // (batch_size) the indices run_batch hands out
    uint64_t micro, epoch, cursor, bad_steps;   // the data cursor and counters, saved in checkpoints
    uint64_t run_id;            // this run's checkpoints carry it; pruning touches no others
    uint64_t first_step;        // o.step when this process started
    char fingerprint[512];      // what the data is; a checkpoint made on other data is refused
    const char *eval_name;      // the eval metric drawn on the curve (run_eval_end's first metric)
    FILE *log;
    int saves;                  // checkpoints this process wrote
    int tokens_per_example;     // for the tok/s of the progress line (0: not shown)
    // the step being taken
    double step_loss; int step_finite, step_samples;
    float scale; uint64_t scale_clean;   // the loss scale now, clean steps since it last changed (saved)
    double share;               // this rank's part of the current global micro-batch (1 in one process)
    int interrupted;            // the signal every rank agreed to stop on (run__stopped)
    int bad_in_row, poisoned;
    // curves and timers
    run__series train, eval;
    double t_start, t_loop, t_data, t_compute, t_eval, t_ckpt, t_mark, t_comm;
    uint64_t samples;           // examples trained on, over all ranks
    const char *stop_reason;
    double last_eval;
} run;

static volatile sig_atomic_t run__signal = 0;
static void run__on_signal(int sig) { run__signal = sig; }

// the signal the run stops on: at once in one process; with several ranks the one they agreed on at
// the end of a step (each rank may see it at another instant, and all must stop at the same step)
static int run__stopped(const run *r) { return run_world() > 1 ? r->interrupted : (int)run__signal; }

static void run__series_add(run__series *s, double x, double y) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->x = (double *)run_realloc(s->x, (size_t)s->cap * sizeof(double));
        s->y = (double *)run_realloc(s->y, (size_t)s->cap * sizeof(double));
    }
    s->x[s->n] = x; s->y[s->n++] = y;
}

static void run__path(char *buf, size_t n, const run *r, const char *name) {
    if ((size_t)snprintf(buf, n, "%s/%s", r->o->out, name) >= n) run_die("%s/%s: path too long", r->o->out, name);
}

static void run__ckpt_dir(char *buf, size_t n, const run *r, uint64_t step) {
    if ((size_t)snprintf(buf, n, "%s/ckpt-%08llu", r->o->out, (unsigned long long)step) >= n) run_die("%s: path too long", r->o->out);
}

/* Opens a file of the output directory for writing ("w" truncates, "a" appends) without following
   a symlink planted at its name (O_NOFOLLOW): a run writes only files of its own. */
static FILE *run__open_out(const char *path, const char *mode) {
    int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | (mode[0] == 'a' ? O_APPEND : O_TRUNC);
    int fd = open(path, flags, 0666);
    FILE *f = fd >= 0 ? fdopen(fd, mode) : NULL;
    if (fd >= 0 && !f) close(fd);
    return f;
}


// ---- checkpoints

static int run__is_ckpt_name(const char *name, unsigned long long *step) {
    char tail;
    return strlen(name) == 13 && sscanf(name, "ckpt-%llu%c", step, &tail) == 1;
}

// checkpoint steps found in OUT, ascending; returns the count (at most cap)
static int run__list(const run *r, unsigned long long *steps, int cap) {
    DIR *dir = opendir(r->o->out);
    int n = 0;
    if (!dir) return 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        unsigned long long s;
        if (run__is_ckpt_name(e->d_name, &s) && n < cap) steps[n++] = s;
    }
    closedir(dir);
    for (int i = 1; i < n; i++)   // insertion sort: a handful of entries
        for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) { unsigned long long t = steps[j]; steps[j] = steps[j - 1]; steps[j - 1] = t; }
    return n;
}

// a decimal count from a state's metadata: digits only (strtoull would take "-1" as 2^64 - 1)
static int run__meta_u64(const bert_st *st, const char *key, uint64_t *v) {
    const char *s = bert_st_meta(st, key);
    char *end = NULL;
    if (!s || *s < '0' || *s > '9') return 0;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return !*end && errno != ERANGE;
}

// the run id beside a checkpoint (OUT/ckpt-N/run_id; 0 if it has none or cannot be read). It is
// not in the state file, so a resumed run's states stay bit-identical to an uninterrupted run's.
static uint64_t run__ckpt_id(const run *r, unsigned long long step) {
    char dir[4096], path[4200];
    run__ckpt_dir(dir, sizeof dir, r, step);
    snprintf(path, sizeof path, "%s/run_id", dir);
    FILE *f = fopen(path, "r");
    unsigned long long id = 0;
    if (f) { if (fscanf(f, "%llu", &id) != 1) id = 0; fclose(f); }
    return id;
}

static void run__remove_ckpt(const run *r, unsigned long long step) {
    char dir[4096], path[4200];
    run__ckpt_dir(dir, sizeof dir, r, step);
    snprintf(path, sizeof path, "%s/state.safetensors", dir); remove(path);   // state first: never a state without weights
    snprintf(path, sizeof path, "%s/model.safetensors", dir); remove(path);
    snprintf(path, sizeof path, "%s/config.json", dir); remove(path);
    snprintf(path, sizeof path, "%s/run_id", dir); remove(path);
    rmdir(dir);
}

// keep the newest --keep checkpoints of this run (its id); other runs' checkpoints are never touched
static void run__prune(const run *r) {
    unsigned long long steps[4096];
    int n = run__list(r, steps, 4096), mine = 0;
    for (int i = n - 1; i >= 0; i--) {
        if (run__ckpt_id(r, steps[i]) != r->run_id || steps[i] > r->opt.step) continue;
        if (++mine > r->o->keep) run__remove_ckpt(r, steps[i]);
    }
}

static void run__check_replicas(run *r);

static void run__save(run *r) {
    run__check_replicas(r);   // (every rank, at the same step)
    if (run_rank()) return;   // rank 0 writes for all: the ranks hold the same weights and state
    double t0 = bert_time_s();
    char dir[4096], path[4200];
    run__ckpt_dir(dir, sizeof dir, r, r->opt.step);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) run_die("%s: %s", dir, strerror(errno));
#ifdef _WIN32   // a directory does not open there: its stat says whether it is one
    struct stat dst;
    int why = stat(dir, &dst) != 0 ? errno : !S_ISDIR(dst.st_mode) ? ENOTDIR : 0;
    if (why) run_die("%s: %s (a checkpoint directory must be a real directory)", dir, strerror(why));
#else
    int fd = open(dir, O_RDONLY | O_NOFOLLOW);   // a symlink planted at the name would lead the save elsewhere
    if (fd < 0) run_die("%s: %s (a checkpoint directory must be a real directory)", dir, strerror(errno));
    close(fd);
#endif
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    remove(path);   // an older state beside new weights would pair them wrongly
    snprintf(path, sizeof path, "%s/run_id", dir);
    bert_atomic_file out;
    fprintf(run_create(&out, path), "%llu\n", (unsigned long long)r->run_id);
    run_commit(&out, path);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    run_model_save(r->m, path, r->o->hf_architecture);
    snprintf(path, sizeof path, "%s/config.json", dir);   // the directory loads in transformers as it is
    run_hf_config(r->m, path, r->o->hf_architecture ? r->o->hf_architecture : "BertForPreTraining", r->o->hf_config_keys);
    char micro[32], epoch[32], cur[32], bad[32], ranks[32], scale[64];
    snprintf(ranks, sizeof ranks, "%d", run_world());
    snprintf(scale, sizeof scale, "%.9g %llu", (double)r->scale, (unsigned long long)r->scale_clean);
    snprintf(micro, sizeof micro, "%llu", (unsigned long long)r->micro);
    snprintf(epoch, sizeof epoch, "%llu", (unsigned long long)r->epoch);
    snprintf(cur, sizeof cur, "%llu", (unsigned long long)r->cursor);
    snprintf(bad, sizeof bad, "%llu", (unsigned long long)r->bad_steps);
    const char *kv[] = { "micro", micro, "epoch", epoch, "cursor", cur, "bad_steps", bad, "data", r->fingerprint, "ranks", ranks,
                         "loss_scale", scale };
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    if (bert_optim_save(&r->opt, r->m, path, kv, 7)) run_die("saving %s", bert_last_error());
    run__prune(r);
    r->t_ckpt += bert_time_s() - t0;
    r->saves++;
}

/* Loads dir's weights, moments and cursor. 0 when the checkpoint is incomplete (no state file: a
   save was cut short), so an older one may be used; anything else wrong with it stops the run. */
static int run__load(run *r, const char *dir) {
    char path[4200];
    bert_st st;
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    FILE *probe = fopen(path, "rb");
    if (!probe) return 0;
    fclose(probe);
    if (bert_st_open(&st, path)) run_die("%s: %s", dir, bert_last_error());
    uint64_t micro = 0, epoch = 0, cursor = 0, bad = 0;
    int ok = run__meta_u64(&st, "micro", &micro) && run__meta_u64(&st, "epoch", &epoch) &&
             run__meta_u64(&st, "cursor", &cursor) && run__meta_u64(&st, "bad_steps", &bad);
    const char *data = bert_st_meta(&st, "data");
    if (!ok) { bert_st_close(&st); run_die("%s: its state has no data cursor: not a complete checkpoint of this program", dir); }
    if (!data || strcmp(data, r->fingerprint)) {
        fprintf(stderr, "%s: %s: it was trained on other data or settings (%s) than this run's (%s)\n", run_prog, dir, data ? data : "?", r->fingerprint);
        bert_st_close(&st);
        exit(1);
    }
    const char *scale = bert_st_meta(&st, "loss_scale");   // "S CLEAN" (a dynamic scale goes on where it was)
    double sv;
    unsigned long long clean;
    if (scale && r->o->dynamic_loss_scale && sscanf(scale, "%lf %llu", &sv, &clean) == 2 && sv >= 1 && sv <= 0x1p127) {
        r->scale = (float)sv;
        r->scale_clean = clean;
    }
    uint64_t ranks = 1;
    if (run__meta_u64(&st, "ranks", &ranks) && ranks != (uint64_t)run_world())
        printf("%s: saved by a %llu-rank run, continued on %d ranks: the data cursor is global, so the record order goes on "
               "unchanged in global batches of %d x %d\n", dir, (unsigned long long)ranks, run_world(), r->o->batch_size, run_world());
    bert_st_close(&st);
    if (cursor > r->n_train)   // same data, so a damaged or edited state file
        run_die("%s/state.safetensors: data cursor %llu is past the %zu training records", dir, (unsigned long long)cursor, r->n_train);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (bert_model_load_weights(r->m, path)) run_die("%s: does not fit this model: %s", dir, bert_last_error());
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    if (bert_optim_load(&r->opt, r->m, path)) run_die("%s", bert_last_error());
    r->micro = micro; r->epoch = epoch; r->cursor = cursor; r->bad_steps = bad;
    snprintf(path, sizeof path, "%s/run_id", dir);
    FILE *f = fopen(path, "r");   // the run continued: its id, so its checkpoints stay its own
    unsigned long long id = 0;
    if (f) { if (fscanf(f, "%llu", &id) == 1 && id) r->run_id = id; fclose(f); }
    printf("resumed from %s at step %llu\n", dir, (unsigned long long)r->opt.step);
    return 1;
}

static void run__resume(run *r) {
    if (r->o->resume_from) {
        if (!run__load(r, r->o->resume_from)) run_die("%s: not a complete checkpoint (no state.safetensors)", r->o->resume_from);
        return;
    }
    if (!r->o->resume) return;
    unsigned long long steps[4096];
    int n = run__list(r, steps, 4096);
    for (int i = n - 1; i >= 0; i--) {
        char dir[4096];
        run__ckpt_dir(dir, sizeof dir, r, steps[i]);
        if (run__load(r, dir)) return;
        printf("%s: incomplete (its save was cut short): trying the one before\n", dir);
    }
    printf("no checkpoint in %s: starting from scratch\n", r->o->out);
}

// ---- claiming the output directory, then beginning

static int run__lock_fd = -1;       // the lock of the output directory this process holds
static char run__claimed[4096];     // ... and its name

static int run__holds_run(const char *out) {   // an earlier run's log or checkpoints
    char path[4200];
    snprintf(path, sizeof path, "%s/log.jsonl", out);
    int fd = open(path, O_RDONLY | O_NOFOLLOW);   // (a symlink at that name counts too: ELOOP)
    if (fd >= 0 || errno == ELOOP) { if (fd >= 0) close(fd); return 1; }
    DIR *dir = opendir(out);
    int found = 0;
    unsigned long long step;
    for (struct dirent *e; dir && !found && (e = readdir(dir)) != NULL;) found = run__is_ckpt_name(e->d_name, &step);
    if (dir) closedir(dir);
    return found;
}

/* Claims --out for this run before anything is written there: creates it, takes an fcntl lock on
   OUT/.lock (released by the kernel when the process ends, so a crash leaves no stale lock; a
   second run on the directory is refused at once), and refuses a directory that holds an earlier
   run (its log.jsonl or checkpoints) unless --resume/--resume_from continues it or --overwrite starts
   over there (the earlier run's checkpoints are still never pruned). run_begin calls it; a program
   that writes into --out before run_begin (pretrain's --text data) calls it first. */
static RUN_UNUSED void run_claim(const run_opts *o) {
    if (run_rank()) return;   // rank 0 owns the output directory of a data-parallel run
    if (run__lock_fd >= 0 && !strcmp(run__claimed, o->out)) return;
    if (strlen(o->out) + 8 >= sizeof run__claimed) run_die("%s: path too long", o->out);
    if (mkdir(o->out, 0777) != 0 && errno != EEXIST) run_die("%s: %s", o->out, strerror(errno));
    char path[4200];
    snprintf(path, sizeof path, "%s/.lock", o->out);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW, 0644);   // never through a planted symlink
    if (fd < 0) run_die("%s: %s", path, strerror(errno));
#ifdef _WIN32   // byte 0, taken without waiting; Windows too drops a process's locks when it ends
    if (_locking(fd, _LK_NBLCK, 1) != 0)
#else
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK; fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) != 0)
#endif
        run_die("%s: another run is using this output directory (its lock %s is held); give another --out", o->out, path);
    if (!o->resume && !o->resume_from && !o->overwrite && run__holds_run(o->out))
        run_die("%s holds an earlier run (log.jsonl or checkpoints): --resume continues it, --overwrite starts over there, "
                "or give another --out", o->out);
    if (run__lock_fd >= 0) close(run__lock_fd);
    run__lock_fd = fd;
    snprintf(run__claimed, sizeof run__claimed, "%s", o->out);
}

static void run__release(void) {
    if (run__lock_fd >= 0) close(run__lock_fd);
    run__lock_fd = -1;
    run__claimed[0] = 0;
}

static uint64_t run__new_id(void) {   // distinct for runs in one directory: time, pid and a counter
    static uint64_t count;
    uint64_t s = bert_rng_bits(bert_rng_stream((uint64_t)(bert_time_s() * 1e6), (uint64_t)getpid(), 0x52554eull), ++count);
    return s ? s >> 1 : 1;
}

// ---- the ranks of a data-parallel run: one start, the same weights, the same state

// FNV-1a over 64-bit words (a tail byte-wise): one pass over the weights, to compare replicas
static uint64_t run__hash(const void *p, size_t bytes) {
    const unsigned char *b = (const unsigned char *)p;
    uint64_t h = 1469598103934665603ull, w;
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) { memcpy(&w, b + i, 8); h = (h ^ w) * 1099511628211ull; }
    for (; i < bytes; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

// rank 0's value of a 64-bit word on every rank; 1 if it differs from this rank's
static int run__differs_from_rank0(uint64_t mine) {
    uint64_t theirs = mine;
    if (run_comm->broadcast(run_comm, &theirs, sizeof theirs, 0)) run_die("broadcast failed");
    return theirs != mine;
}

// a buffer in the model's memory from rank 0 to every rank (through the host: the seam's broadcast)
static void run__broadcast_model(const run *r, float *buf, size_t n) {
    const bert_kernels *k = r->m->k;
    float *host = buf;
    if (k && k->mem && k->mem->device) { host = (float *)run_malloc(n * sizeof(float)); bert_copy_to_host(k, host, buf, n * sizeof(float)); }
    if (run_comm->broadcast(run_comm, host, n * sizeof(float), 0)) run_die("broadcast failed");
    if (host != buf) { bert_copy_from_host(k, buf, host, n * sizeof(float)); free(host); }
}

// every rank trains the same model on the same data and settings: checked before the first step
static void run__agree(run *r) {
    if (run_world() == 1) return;
    uint64_t h = run__hash(r->fingerprint, strlen(r->fingerprint)) ^ run__hash(&r->m->config, sizeof r->m->config);
    h = h * 31 + r->m->num_params;
    if (run__differs_from_rank0(h))
        run_die("this rank's data, model or settings differ from rank 0's (here: %s; %zu params): every rank must "
                "read the same files", r->fingerprint, r->m->num_params);
}

// rank 0's weights, moments and counters (fresh or resumed) on every rank
static void run__share_state(run *r) {
    if (run_world() == 1) return;
    uint32_t scale_bits;
    memcpy(&scale_bits, &r->scale, 4);
    uint64_t c[8] = { r->opt.step, r->micro, r->epoch, r->cursor, r->bad_steps, r->run_id, scale_bits, r->scale_clean };
    if (run_comm->broadcast(run_comm, c, sizeof c, 0)) run_die("broadcast failed");
    r->opt.step = c[0]; r->micro = c[1]; r->epoch = c[2]; r->cursor = c[3]; r->bad_steps = c[4]; r->run_id = c[5];
    scale_bits = (uint32_t)c[6];
    memcpy(&r->scale, &scale_bits, 4);
    r->scale_clean = c[7];
    run__broadcast_model(r, r->m->params, r->m->num_params);
    run__broadcast_model(r, r->opt.m, r->opt.n);
    if (r->opt.v) run__broadcast_model(r, r->opt.v, r->opt.n);
}

/* The replicas must stay bit-identical (same summed grads, same update): a hash of every rank's
   weights against rank 0's, at each progress line and checkpoint. A difference ends the job. */
static void run__check_replicas(run *r) {
    if (run_world() == 1) return;
    const bert_kernels *k = r->m->k;
    size_t bytes = r->m->num_params * sizeof(float);
    float *host = r->m->params;
    if (k && k->mem && k->mem->device) { host = (float *)run_malloc(bytes); bert_copy_to_host(k, host, r->m->params, bytes); }
    uint64_t h = run__hash(host, bytes);
    if (host != r->m->params) free(host);
    if (run__differs_from_rank0(h))
        run_die("step %llu: this rank's weights differ from rank 0's (the replicas diverged: a faulty rank, or "
                "a kernel that is not deterministic)", (unsigned long long)r->opt.step);
}

/* --max_memory_mb, before the optimizer state and the activations are allocated: params and grads
   (already there), the optimizer's moments (by type), and the activation arena of one micro-batch as
   the program's own loss builds it on the measuring kernel table (exact: the same ops allocate the
   same bytes; nothing is computed). Refuses the run with the figures when they exceed the cap. */
static void run__check_memory(const run_opts *o, bert_model *m, bert_optim_type type) {
    if (!o->max_memory_mb) return;
    if (!o->measure) run_die("--max_memory_mb: this program does not measure its step");
    bert_ctx *ctx = bert_ctx_create_on(bert_measure_kernels(), 0);
    if (!ctx) run_die("out of memory");
    bert_backward(ctx, o->measure(ctx, m, o->batch_size, o->measure_arg));
    double mb = 1.0 / (1 << 20), weights = 2.0 * (double)m->num_params * sizeof(float) * mb;
    double moments = (type == BERT_OPTIM_MOMENTUM ? 1.0 : 2.0) * (double)m->num_params * sizeof(float) * mb;
    double acts = (double)bert_ctx_high_water(ctx) * mb, total = weights + moments + acts;
    bert_ctx_free(ctx);
    if (total > o->max_memory_mb)
        run_die("--max_memory_mb %d: this run needs %.1f MB (params + grads %.1f, optimizer %.1f, activations %.1f "
                "for a batch of %d); lower --batch_size (and raise --accumulation_steps) or the sequence length",
                o->max_memory_mb, total, weights, moments, acts, o->batch_size);
    printf("%s: memory %.1f MB of --max_memory_mb %d (params + grads %.1f, optimizer %.1f, activations %.1f)\n", run_prog,
           total, o->max_memory_mb, weights, moments, acts);
}

/* the kernel table training runs on: --precision bf16 -> bf16 mixed precision (bert_cpu_bf16_kernels),
   unless this build has only the plain-C bf16 kernel (slower than fp32: a note, and fp32) */
static const bert_kernels *run__train_kernels(const run_opts *o) {
    if (strcmp(o->precision, "bf16")) return bert_cpu_kernels();
    if (strstr(bert_bf16_kernel_name(), "plain")) {
        run_warn("--precision bf16: this build has no AMX-BF16 or AVX512-BF16 kernel (built without -march=native on such a CPU?), "
                 "so it would be slower than fp32: training in fp32");
        return bert_cpu_kernels();
    }
    return bert_cpu_bf16_kernels();
}

/* Starts a training run of m (created or loaded, task heads added) over n_train examples: the output
   directory and its lock, the optimizer from the options with total_steps, the activation arena,
   signal handlers, --resume, the log. fingerprint names the data and settings a checkpoint must
   match to be resumed (the program's choice, e.g. "1000 examples, T 128, batch 32 x 1, seed 7"). */
static RUN_UNUSED void run_begin(run *r, run_opts *o, bert_model *m, size_t n_train, int total_steps, const char *fingerprint) {
    memset(r, 0, sizeof *r);
    r->t_start = bert_time_s();
    r->o = o; r->m = m; r->n_train = n_train; r->total_steps = total_steps; r->stop_reason = "done";
    r->last_eval = NAN;
    r->scale = o->dynamic_loss_scale && o->loss_scale == 1.0f ? 32768.0f : o->loss_scale;
    snprintf(r->fingerprint, sizeof r->fingerprint, "%s", fingerprint);
    if (total_steps < 1) run_die("no optimizer step to take (check --steps, --epochs, --batch_size and the data)");
    if (n_train < 1) run_die("no training examples");
    bert_optim_type type;
    if (bert_optim_parse(&type, o->optimizer)) run_die("--optimizer: %s", bert_last_error());
    run__check_memory(o, m, type);   // (before --out is claimed)
    run_claim(o);
    r->opt = bert_optim_defaults(type);
    r->opt.lr = o->lr; r->opt.end_lr = o->end_lr; r->opt.poly_power = o->poly_power; r->opt.total_steps = total_steps;
    r->opt.warmup_steps = o->warmup_steps >= 0 ? o->warmup_steps : (int)(o->warmup_proportion * (float)total_steps);
    r->opt.weight_decay = o->weight_decay; r->opt.beta1 = o->beta1; r->opt.beta2 = o->beta2; r->opt.eps = o->eps;
    r->opt.momentum = o->momentum; r->opt.clip_norm = o->clip_norm;
    r->opt.comm = run_comm;   // bert_optim_step sums the ranks' grads
    if (bert_optim_init(&r->opt, m)) run_die("%s", bert_last_error());
    if (!(r->ctx = bert_ctx_create_on(run__train_kernels(o), (size_t)64 << 20))) run_die("out of memory for the activation arena");
    r->ctx->seed = (uint64_t)o->seed + (uint64_t)run_rank() * 0x9E3779B97F4A7C15ull;   // each rank its own dropout masks
    r->perm = (size_t *)run_calloc(n_train, sizeof(size_t));
    r->batch = (size_t *)run_calloc((size_t)o->batch_size, sizeof(size_t));
    r->run_id = run__new_id();
    run__agree(r);
    if (!run_rank()) run__resume(r);
    run__share_state(r);
    run_permutation(r->perm, n_train, (uint64_t)o->seed, r->epoch, !o->no_shuffle);
    r->first_step = r->opt.step;
    char path[4200];
    run__path(path, sizeof path, r, "log.jsonl");
    r->log = run_rank() ? fopen("/dev/null", "w") : run__open_out(path, r->opt.step ? "a" : "w");
    if (!r->log) run_die("%s: %s", path, strerror(errno));
    signal(SIGINT, run__on_signal);    // ISO C signal(): a second Ctrl-C (the handler is then reset,
    signal(SIGTERM, run__on_signal);   // on SysV-semantics libcs) ends the process at once; saves are atomic
    r->t_loop = bert_time_s();
}

// the optimizer's warmup, for the program's opening line
static RUN_UNUSED void run_print_setup(const run *r, const char *what) {
    const bert_config *c = &r->m->config;
    char ranks[64] = "";
    if (run_world() > 1) snprintf(ranks, sizeof ranks, " x %d ranks", run_world());
    char gemm[160];
    if (r->ctx->k == bert_cpu_bf16_kernels()) snprintf(gemm, sizeof gemm, "bf16 %s (linear layers), sgemm %s", bert_bf16_kernel_name(), bert_sgemm_kernel_name());
    else snprintf(gemm, sizeof gemm, "sgemm %s", bert_sgemm_kernel_name());
    if (r->o->dynamic_loss_scale || r->scale != 1.0f)
        snprintf(gemm + strlen(gemm), sizeof gemm - strlen(gemm), " | loss scale %g%s", (double)r->scale, r->o->dynamic_loss_scale ? " (dynamic)" : "");
    char arch[80] = "";
    if (c->use_relative_position)
        snprintf(arch, sizeof arch, " NEZHA K=%d %s", c->max_relative_position, c->relative_position_flavour == BERT_RELPOS_LEARNED ? "learned" : "fixed");
    printf("%s | L=%d H=%d A=%d%s (%zu params) | %s lr %g warmup %d | batch %d%s x %d accumulation | %d steps | %s\n",
           what, c->num_hidden_layers, c->hidden_size, c->num_attention_heads, arch, r->m->num_params, r->o->optimizer,
           (double)r->opt.lr, r->opt.warmup_steps, r->o->batch_size, ranks, r->o->accumulation_steps, r->total_steps, gemm);
    fflush(stdout);
}

// micro-batches in an epoch of n examples: global ones, of --batch_size on each rank
static size_t run__micro_per_epoch(const run_opts *o, size_t n) {
    size_t G = (size_t)o->batch_size * (size_t)run_world();
    return o->drop_last ? n / G : (n + G - 1) / G;
}

// optimizer steps in an epoch of n examples (at least 1)
static RUN_UNUSED int run_steps_per_epoch(const run_opts *o, size_t n) {
    size_t s = run__micro_per_epoch(o, n) / (size_t)o->accumulation_steps;
    return s < 1 ? 1 : s > 2147483647u ? 2147483647 : (int)s;
}

// the optimizer steps of --steps, or of --epochs over n examples in micro-batches of --batch_size
// (global ones: --batch_size on each rank)
static RUN_UNUSED int run_total_steps(const run_opts *o, size_t n) {
    if (o->steps) return o->steps;
    size_t micro = run__micro_per_epoch(o, n);
    double total = (double)micro * o->epochs / o->accumulation_steps;
    if (total > 2147483647.0) run_die("--epochs %d over %zu examples makes %.0f steps, more than 2^31-1", o->epochs, n, total);
    return (int)total;
}

// ---- the step

// 1 while there is a step to take (not done, not interrupted, not failed); zeroes the grads
static RUN_UNUSED int run_next_step(run *r) {
    if ((int)r->opt.step >= r->total_steps || run__stopped(r) || r->stop_reason[0] != 'd') return 0;
    bert_model_zero_grad(r->m);
    r->step_loss = 0; r->step_finite = 1; r->step_samples = 0; r->share = 1.0;
    r->t_mark = bert_time_s();
    return 1;
}

/* The next micro-batch's example indices (*count of them, written to r->batch); a new epoch (a new
   permutation) starts when the current one has no full batch left (drop_last) or none at all.
   With R ranks the micro-batch is global: the next R x --batch_size records of the permutation (the
   same records whatever R), rank k taking the k-th slice, so every record is seen once per epoch. A
   last, smaller global batch is split as evenly as it goes: a rank may get none (*count 0: it runs
   no forward pass; run_backward is not called). r->share is the rank's part, run_backward's factor. */
static RUN_UNUSED const size_t *run_batch(run *r, int *count) {
    size_t R = (size_t)run_world(), k = (size_t)run_rank(), G = (size_t)r->o->batch_size * R, left = r->n_train - r->cursor;
    if (left == 0 || (r->o->drop_last && G > left)) {
        r->epoch++;
        r->cursor = 0;
        run_permutation(r->perm, r->n_train, (uint64_t)r->o->seed, r->epoch, !r->o->no_shuffle);
        left = r->n_train;
    }
    size_t n = G < left ? G : left, lo = n * k / R, hi = n * (k + 1) / R;
    for (size_t e = lo; e < hi; e++) r->batch[e - lo] = r->perm[r->cursor + e];
    if (r->o->debug_trace_records) {   // one write per line: the ranks' lines never interleave
        char line[4096];
        int len = snprintf(line, sizeof line, "records rank %d epoch %llu:", run_rank(), (unsigned long long)r->epoch);
        for (size_t e = lo; e < hi && len < (int)sizeof line - 24; e++) len += snprintf(line + len, sizeof line - (size_t)len, " %zu", r->batch[e - lo]);
        fprintf(stderr, "%s\n", line);
    }
    r->cursor += n;
    if (hi == lo) r->micro++;   // the run_micro this rank skips: the ranks' dropout numbering stays aligned
    r->step_samples += (int)(hi - lo);
    r->share = (double)(hi - lo) / (double)n;
    *count = (int)(hi - lo);
    return r->batch;
}

// this rank's part of the current global micro-batch (1 in one process)
static RUN_UNUSED double run_share(const run *r) { return r->share; }

// before a micro-batch's forward pass: frees the last one's activations, numbers its dropout masks
static RUN_UNUSED bert_ctx *run_micro(run *r) {
    bert_ctx_reset(r->ctx, r->micro++);
    return r->ctx;
}

/* A micro-batch's backward with its accumulation weight (1/accumulation_steps for equal shares; see
   bert_backward_scaled), as in one process: with several ranks it is scaled by this rank's share of
   the global micro-batch, so the summed grads are those of the whole batch. Returns the loss value;
   a NaN/Inf loss marks the step to be skipped (on every rank) and runs no backward. */
static RUN_UNUSED double run_backward(run *r, bert_tensor *loss, float weight) {
    double v = bert_tensor_item(r->ctx, loss);
    if (!isfinite(v)) { r->step_finite = 0; return v; }
    float w = (float)((double)weight * r->share);
    if (r->step_finite) bert_backward_scaled(r->ctx, loss, w * r->scale);   // the optimizer divides r->scale out
    r->step_loss += v * w;
    return v;
}

static void run__progress(run *r, const run_metric *mt, int n) {
    uint64_t s = r->opt.step;
    double per_step = (bert_time_s() - r->t_loop) / (double)(s - r->first_step);
    double sps = (double)r->samples / (r->t_compute > 0 ? r->t_compute : 1e-9);
    char eta[32];
    bert_format_duration(eta, sizeof eta, per_step * (double)((uint64_t)r->total_steps - s));
    printf("step %6llu/%d | loss %.4f", (unsigned long long)s, r->total_steps, r->step_loss);
    for (int i = 0; i < n; i++) printf(" | %s %.4f", mt[i].name, mt[i].value);
    printf(" | lr %.3e | |g| %.3f | ", (double)r->opt.last_lr, (double)r->opt.last_grad_norm);
    if (r->tokens_per_example) printf("%.0f tok/s ", sps * r->tokens_per_example);
    printf("%.2f samples/s | ETA %s\n", sps, eta);
    fflush(stdout);
}

static void run__log_step(run *r, const run_metric *mt, int n) {
    fprintf(r->log, "{\"step\": %llu, \"loss\": %.9g", (unsigned long long)r->opt.step, r->step_loss);
    for (int i = 0; i < n; i++) { fprintf(r->log, ", \"%s\": ", mt[i].name); run_json_number(r->log, mt[i].value); }
    fprintf(r->log, ", \"lr\": %.9g, \"grad_norm\": %.9g, \"samples_per_s\": %.3f, \"time\": %.3f}\n",
            (double)r->opt.last_lr, (double)r->opt.last_grad_norm, (double)r->samples / (r->t_compute > 0 ? r->t_compute : 1e-9),
            bert_time_s() - r->t_start);
    fflush(r->log);
}

/* --dynamic_loss_scale: grads that overflowed (the loss itself finite) halve the scale (the step is
   skipped as any NaN/Inf step); --loss_scale_window clean steps in a row double it. Changes are logged. */
static void run__adjust_scale(run *r, int ok, int loss_finite) {
    float was = r->scale;
    if (!ok && loss_finite && r->scale > 1.0f) { r->scale *= 0.5f; r->scale_clean = 0; }
    else if (ok && ++r->scale_clean >= (uint64_t)r->o->loss_scale_window && r->scale <= 0x1p126f) { r->scale *= 2.0f; r->scale_clean = 0; }
    if (r->scale != was) {
        fprintf(r->log, "{\"loss_scale\": %.9g, \"after_step\": %llu, \"was\": %.9g}\n", (double)r->scale, (unsigned long long)r->opt.step, (double)was);
        fflush(r->log);
    }
}

static void run__skip(run *r) {
    r->bad_steps++;
    run_warn("NaN/Inf loss or gradients at step %llu: update skipped (%llu skipped so far)",
             (unsigned long long)r->opt.step + 1, (unsigned long long)r->bad_steps);
    fprintf(r->log, "{\"skipped_step\": %llu, \"reason\": \"non-finite loss or gradients\"}\n", (unsigned long long)r->opt.step + 1);
    fflush(r->log);
    if (++r->bad_in_row >= r->o->max_bad_steps) r->stop_reason = "failed: too many NaN/Inf steps in a row";
}

/* Ends the step: the optimizer update (skipped, counted and logged on NaN/Inf), the log line with the
   program's metrics, the progress line every --print_every steps, a checkpoint every --save_every.
   data_s: seconds of the step spent reading data (for the summary's split). Returns 1 if the update
   was made. */
#define RUN_MAX_METRICS 16

/* With several ranks, what the step's end decides is decided together, in one small sum: whether
   every rank's loss was finite, whether any rank was signalled, and the global loss, examples and
   metrics (each rank's weighted by its examples: the means over the whole global batch). */
static run_metric *run__global_step(run *r, const run_metric *mt, int n, run_metric *global, uint64_t *samples) {
    *samples = (uint64_t)r->step_samples;
    if (run_world() == 1) { r->interrupted = run__signal; return (run_metric *)mt; }
    double v[4 + RUN_MAX_METRICS];
    v[0] = !r->step_finite; v[1] = run__signal != 0; v[2] = r->step_loss; v[3] = r->step_samples;
    for (int i = 0; i < n; i++) v[4 + i] = mt[i].value * r->step_samples;
    if (run_comm->allreduce_sum_f64(run_comm, v, (size_t)(4 + n))) run_die("allreduce failed");
    r->step_finite = v[0] == 0;
    if (v[1] > 0 && !r->interrupted) r->interrupted = run__signal ? (int)run__signal : SIGINT;
    r->step_loss = v[2];
    *samples = (uint64_t)v[3];
    for (int i = 0; i < n; i++) { global[i].name = mt[i].name; global[i].value = v[3] > 0 ? v[4 + i] / v[3] : 0.0; }
    return global;
}

static RUN_UNUSED int run_end_step(run *r, const run_metric *mt, int n, double data_s) {
    const run_opts *o = r->o;
    if (n > RUN_MAX_METRICS) run_die("run_end_step: more than %d metrics", RUN_MAX_METRICS);
    if (o->debug_nan_at_step && (int)r->opt.step + 1 == o->debug_nan_at_step && r->poisoned < o->debug_nan_count) {
        float nan = NAN;   // poison one gradient in whatever memory the grads live
        bert_copy_from_host(r->m->k, r->m->grads, &nan, sizeof nan);
        r->poisoned++;
    }
    run_metric global[RUN_MAX_METRICS];
    uint64_t samples;
    mt = run__global_step(r, mt, n, global, &samples);
    r->opt.grad_scale = r->scale;
    int rc = r->step_finite ? bert_optim_step(&r->opt, r->m) : BERT_ERR_NONFINITE;
    if (rc && rc != BERT_ERR_NONFINITE) run_die("%s", bert_last_error());   // the ranks' sum failed
    int ok = rc == BERT_OK;
    if (o->dynamic_loss_scale) run__adjust_scale(r, ok, r->step_finite);
    double now = bert_time_s();
    r->t_compute += now - r->t_mark - data_s;
    r->t_data += data_s;
    r->t_comm += r->step_finite ? r->opt.last_comm_s : 0.0;
    r->samples += samples;
    if (!ok) { run__skip(r); return 0; }
    r->bad_in_row = 0;
    uint64_t s = r->opt.step;
    run__series_add(&r->train, (double)s, r->step_loss);
    run__log_step(r, mt, n);
    if (s % (uint64_t)o->print_every == 0 || (int)s == r->total_steps || s == r->first_step + 1) {
        run__progress(r, mt, n);
        run__check_replicas(r);
    }
    if (o->save_every && s % (uint64_t)o->save_every == 0 && (int)s != r->total_steps) run__save(r);
    if (o->debug_kill_at_step && (int)s == o->debug_kill_at_step && (o->debug_kill_rank < 0 || o->debug_kill_rank == run_rank())) {
        fflush(NULL);
#ifdef SIGKILL
        raise(SIGKILL);
#else
        _Exit(137);   // Windows: no SIGKILL; ended as abruptly, with the status a shell gives a killed process
#endif
    }
    return 1;
}

// ---- evaluation and the curve

// 1 when an evaluation is due after this step: every --eval_every steps (or every `every` when the
// flag is 0, e.g. once per epoch; 0 = only at the end), not at the last step (run_finish's turn)
static RUN_UNUSED int run_eval_due(const run *r, int every) {
    int e = r->o->eval_every ? r->o->eval_every : every;
    return e > 0 && r->opt.step > r->first_step && r->opt.step % (uint64_t)e == 0 && (int)r->opt.step != r->total_steps &&
           r->step_finite && !run__stopped(r);
}

static RUN_UNUSED void run_eval_begin(run *r) { r->t_mark = bert_time_s(); }

static void run__svg(const run *r);

/* After an evaluation the program ran (between run_eval_begin and this): the eval line and log line,
   the curve (its first metric on the right axis; values in [0,1] are drawn as such). */
static RUN_UNUSED void run_eval_end(run *r, const char *what, const run_metric *mt, int n) {
    r->t_eval += bert_time_s() - r->t_mark;
    printf("eval  %6llu |", (unsigned long long)r->opt.step);
    for (int i = 0; i < n; i++) printf(" %s %.4f%s", mt[i].name, mt[i].value, i + 1 < n ? " |" : "");
    printf("%s%s\n", what ? " | " : "", what ? what : "");
    fflush(stdout);
    if (r->log) {
        fprintf(r->log, "{\"eval_step\": %llu", (unsigned long long)r->opt.step);
        for (int i = 0; i < n; i++) { fprintf(r->log, ", \"%s\": ", mt[i].name); run_json_number(r->log, mt[i].value); }
        fprintf(r->log, "}\n");
        fflush(r->log);
    }
    if (n > 0) {
        r->eval_name = mt[0].name;
        r->last_eval = mt[0].value;
        run__series_add(&r->eval, (double)r->opt.step, mt[0].value);
    }
    if (r->o) run__svg(r);
}

// training loss (left axis, blue) and the eval metric (right axis, orange) against the step
static void run__svg(const run *r) {
    if (run_rank()) return;
    char path[4200];
    run__path(path, sizeof path, r, "curve.svg");
    bert_atomic_file out;
    if (bert_atomic_open(&out, path)) { run_warn("%s", bert_last_error()); return; }
    FILE *f = (FILE *)out.file;
    const double W = 640, H = 360, x0 = 60, y0 = 20, w = 520, h = 290;
    double lmax = 0, emin = 0, emax = 1, xmax = r->total_steps > 1 ? r->total_steps : 1;
    for (int i = 0; i < r->train.n; i++) if (r->train.y[i] > lmax) lmax = r->train.y[i];
    for (int i = 0; i < r->eval.n; i++) {
        if (r->eval.y[i] < emin) emin = floor(r->eval.y[i]);
        if (r->eval.y[i] > emax) emax = ceil(r->eval.y[i]);
    }
    lmax = lmax > 0 ? ceil(lmax) : 1;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%g' height='%g' font-family='sans-serif' font-size='11'>\n"
               "<rect width='100%%' height='100%%' fill='white'/>\n"
               "<rect x='%g' y='%g' width='%g' height='%g' fill='none' stroke='#888'/>\n", W, H, x0, y0, w, h);
    for (int k = 0; k <= 4; k++) {
        double y = y0 + h - h * k / 4;
        fprintf(f, "<text x='%g' y='%g' text-anchor='end' fill='#1f77b4'>%.2f</text>"
                   "<text x='%g' y='%g' fill='#ff7f0e'>%.2f</text>"
                   "<text x='%g' y='%g' text-anchor='middle'>%.0f</text>\n",
                x0 - 4, y + 4, lmax * k / 4, x0 + w + 4, y + 4, emin + (emax - emin) * k / 4, x0 + w * k / 4, y0 + h + 14, xmax * k / 4);
    }
    fprintf(f, "<text x='%g' y='%g' text-anchor='middle'>step</text>\n", x0 + w / 2, H - 8);
    fprintf(f, "<text x='%g' y='12' fill='#1f77b4'>training loss</text><text x='%g' y='12' fill='#ff7f0e' text-anchor='end'>eval %s</text>\n",
            x0, x0 + w, r->eval_name ? r->eval_name : "(none yet)");
    fprintf(f, "<polyline fill='none' stroke='#1f77b4' stroke-width='1.5' points='");
    for (int i = 0; i < r->train.n; i++) fprintf(f, "%.1f,%.1f ", x0 + w * r->train.x[i] / xmax, y0 + h - h * r->train.y[i] / lmax);
    fprintf(f, "'/>\n<polyline fill='none' stroke='#ff7f0e' stroke-width='2' points='");
    for (int i = 0; i < r->eval.n; i++) fprintf(f, "%.1f,%.1f ", x0 + w * r->eval.x[i] / xmax, y0 + h - h * (r->eval.y[i] - emin) / (emax - emin));
    fprintf(f, "'/>\n");
    for (int i = 0; i < r->eval.n; i++)
        fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='#ff7f0e'/>\n", x0 + w * r->eval.x[i] / xmax, y0 + h - h * (r->eval.y[i] - emin) / (emax - emin));
    fprintf(f, "</svg>\n");
    if (bert_atomic_close(&out, path, 1)) run_warn("%s", bert_last_error());
}

// ---- the end

// 1 when the run ended well enough for a final evaluation (not failed, not interrupted)
static RUN_UNUSED int run_completed(const run *r) { return r->stop_reason[0] == 'd' && !run__stopped(r); }

/* The last checkpoint (unless the run failed or took no step), the curve, the summary line and log
   record, and everything freed but the model. Returns the exit status: 0 done, 1 failed, 130/143
   after SIGINT/SIGTERM (a checkpoint was saved: --resume continues it). */
// data parallel: the global batch, the allreduce's share of the step time, each rank's peak memory
static void run__rank_summary(const run *r) {
    int R = run_world();
    double *v = (double *)run_calloc(2 * (size_t)R, sizeof(double));
    v[run_rank()] = bert_peak_rss_mib();
    v[R + run_rank()] = r->t_compute > 0 ? r->t_comm / r->t_compute : 0.0;
    if (run_comm->allreduce_sum_f64(run_comm, v, 2 * (size_t)R)) run_die("allreduce failed");
    printf("ranks: %d (%s) | global batch %d = %d per rank x %d ranks x %d accumulation | allreduce %.1f%% of the step time "
           "(rank 0) | peak RSS per rank:", R, run_comm->name, r->o->batch_size * R * r->o->accumulation_steps, r->o->batch_size,
           R, r->o->accumulation_steps, 100.0 * v[R]);
    for (int k = 0; k < R; k++) printf(" %.0f", v[k]);
    printf(" MiB\n");
    free(v);
}

static RUN_UNUSED int run_finish(run *r) {
    int sig = run__stopped(r);
    if (sig) r->stop_reason = "interrupted";
    int failed = r->stop_reason[0] == 'f';
    if (!failed && r->opt.step > r->first_step) run__save(r);
    run__svg(r);
    double e2e = bert_time_s() - r->t_start, train_time = bert_time_s() - r->t_loop - r->t_eval;
    double p_whole = (double)r->samples / e2e, p_train = (double)r->samples / train_time;
    double p_core = (double)r->samples / (r->t_compute > 0 ? r->t_compute : 1e-9);
    printf("summary: %s after %llu steps (%llu this run, %llu skipped) | e2e %.1f s | p_whole %.2f samples/s | "
           "p_train %.2f | p_core %.2f | data %.1f s eval %.1f s checkpoints %.1f s | peak RSS %.0f MiB\n",
           r->stop_reason, (unsigned long long)r->opt.step, (unsigned long long)(r->opt.step - r->first_step),
           (unsigned long long)r->bad_steps, e2e, p_whole, p_train, p_core, r->t_data, r->t_eval, r->t_ckpt, bert_peak_rss_mib());
    if (run_world() > 1) run__rank_summary(r);
    if (!failed && r->opt.step > r->first_step) {
        char ckpt[4096];
        run__ckpt_dir(ckpt, sizeof ckpt, r, r->opt.step);
        printf("checkpoint: %s | log: %s/log.jsonl | curve: %s/curve.svg\n", ckpt, r->o->out, r->o->out);
    }
    fprintf(r->log, "{\"summary\": \"%s\", \"step\": %llu, \"skipped\": %llu, \"e2e_s\": %.3f, \"p_whole\": %.4f, \"p_train\": %.4f, "
                    "\"p_core\": %.4f, \"peak_rss_mib\": %.1f, \"eval_%s\": ",
            r->stop_reason, (unsigned long long)r->opt.step, (unsigned long long)r->bad_steps, e2e, p_whole, p_train, p_core,
            bert_peak_rss_mib(), r->eval_name ? r->eval_name : "metric");
    run_json_number(r->log, r->last_eval);
    fprintf(r->log, "}\n");
    if (fclose(r->log) != 0) run_warn("%s/log.jsonl: write failed", r->o->out);
    r->log = NULL;
    if (failed) fprintf(stderr, "%s: stopped: %d steps in a row had NaN/Inf loss or gradients; %s\n", run_prog, r->o->max_bad_steps,
                        r->saves || r->first_step ? "the last good checkpoint is kept" : "no checkpoint had been saved yet");
    bert_ctx_free(r->ctx); r->ctx = NULL;
    bert_optim_free(&r->opt);
    free(r->perm); free(r->batch);
    free(r->train.x); free(r->train.y); free(r->eval.x); free(r->eval.y);
    run__release();
    int rc = failed ? 1 : sig == SIGTERM ? 143 : sig ? 130 : 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {   // the progress lines were lost: the checkpoints are saved, but say so
        fprintf(stderr, "%s: stdout: write failed: the progress and summary lines were lost\n", run_prog);
        rc = rc ? rc : 1;
    }
    return rc;
}

#endif // BERT_RUN_H
