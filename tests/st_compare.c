// st_compare.c - two model checkpoints (safetensors) tensor by tensor: the same names and shapes,
// and per tensor max|a - b| <= rtol * max|b| (rtol 0: bit for bit). Prints the worst tensor; exit 0
// when all hold, 1 when one does not, 2 on a read error. For the scripts (tests/test_mpi.sh).
//   st_compare A.safetensors B.safetensors RTOL [SKIP]
// SKIP: tensors whose name contains it are reported, not judged (the attention key biases: their
// gradient is zero in exact arithmetic, softmax being blind to a shift, so what Adam or LAMB makes of
// it is rounding noise amplified to full-size steps, different for any other summation order)
#define BERT_IMPLEMENTATION
#include "../bert.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) { fprintf(stderr, "usage: st_compare A.safetensors B.safetensors RTOL [SKIP]\n"); return 2; }
    const char *skip = argc == 5 ? argv[4] : NULL;
    double skipped_worst = 0;
    int skipped = 0;
    double rtol = atof(argv[3]), worst = 0;
    bert_model *a = bert_model_load(argv[1], NULL), *b = a ? bert_model_load(argv[2], NULL) : NULL;
    if (!a || !b) { fprintf(stderr, "st_compare: %s\n", bert_last_error()); return 2; }
    if (a->num_tensors != b->num_tensors || a->num_params != b->num_params) {
        printf("st_compare: %s and %s hold different models (%zu vs %zu params)\n", argv[1], argv[2], a->num_params, b->num_params);
        return 1;
    }
    int bad = 0, worst_t = 0;
    for (int t = 0; t < a->num_tensors; t++) {
        const bert_tensor *x = &a->tensors[t], *y = &b->tensors[t];
        if (strcmp(a->names[t], b->names[t]) || x->numel != y->numel) { printf("st_compare: tensor %d differs in name or size\n", t); return 1; }
        double d = 0, m = 0;
        for (size_t i = 0; i < x->numel; i++) {
            double u = x->data[i], v = y->data[i];
            if (rtol == 0 ? memcmp(&x->data[i], &y->data[i], sizeof(float)) != 0 : !(fabs(u - v) <= d)) d = rtol == 0 ? 1 : fabs(u - v);
            if (fabs(v) > m) m = fabs(v);
            if (isnan(u) != isnan(v)) d = INFINITY;
        }
        double rel = rtol == 0 ? d : d / (m > 0 ? m : 1e-30);
        if (skip && strstr(a->names[t], skip)) { skipped++; if (rel > skipped_worst) skipped_worst = rel; continue; }
        if (rel > worst || (rel != rel)) { worst = rel; worst_t = t; }
        bad += !(rel <= rtol);
    }
    printf("st_compare: %d tensors, worst %s: %s %.3g (tolerance %g)\n", a->num_tensors, a->names[worst_t],
           rtol == 0 ? "differs" : "max|a-b|/max|b|", worst, rtol);
    if (skipped) printf("st_compare: %d tensors named *%s* not judged (worst %.3g)\n", skipped, skip, skipped_worst);
    bert_model_free(a);
    bert_model_free(b);
    return bad ? 1 : 0;
}
