/* bert_mpi.h - bert.h's communication seam (bert_comm) on MPI: data-parallel training between
   processes and machines, on any MPI-3 library (Open MPI, MPICH). Optional: bert.h never needs it.

       #include "bert.h"
       #include "bert_mpi.h"          // after bert.h, in any number of files (everything is static)
       const bert_comm *c = bert_mpi_init();   // MPI_Init; rank and size of MPI_COMM_WORLD
       opt.comm = c;                  // bert_optim_step sums the grads over the ranks
       ...                            // at exit MPI_Finalize runs (atexit); c->abort ends every rank

   Build with the MPI compiler wrapper and run with its launcher:
       mpicc -O2 -fopenmp -DBERT_MPI prog.c -o prog -lm
       mpirun -np 2 ./prog ...        (two machines: mpirun -H a,b ...; as root: --allow-run-as-root)
   examples/run.h includes this header when BERT_MPI is defined (make MPI=1), so every training
   program runs data parallel with no change.

   Errors: MPI's default handler (MPI_ERRORS_ARE_FATAL) ends the job on a communication failure; a
   rank that dies makes the launcher end the others (Open MPI, MPICH), so a job never hangs on a lost
   rank. Counts over INT_MAX are sent in pieces. */
#ifndef BERT_MPI_H
#define BERT_MPI_H

#include <mpi.h>
#include <limits.h>
#include <stdlib.h>

#define BERT__MPI_PIECE ((size_t)1 << 30)   // elements per MPI call (counts are int)

// in-place sum of n elements of type t (size bytes each), in pieces of at most INT_MAX elements
static int bert__mpi_allreduce(void *buf, size_t n, size_t size, MPI_Datatype t) {
    for (size_t i = 0; i < n; i += BERT__MPI_PIECE) {
        size_t k = n - i < BERT__MPI_PIECE ? n - i : BERT__MPI_PIECE;
        if (MPI_Allreduce(MPI_IN_PLACE, (char *)buf + i * size, (int)k, t, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS) return BERT_ERR_IO;
    }
    return BERT_OK;
}

static int bert__mpi_sum(const bert_comm *c, float *buf, size_t n) { (void)c; return bert__mpi_allreduce(buf, n, sizeof *buf, MPI_FLOAT); }

static int bert__mpi_sum_f64(const bert_comm *c, double *buf, size_t n) { (void)c; return bert__mpi_allreduce(buf, n, sizeof *buf, MPI_DOUBLE); }

static int bert__mpi_broadcast(const bert_comm *c, void *buf, size_t bytes, int root) {
    (void)c;
    for (size_t i = 0; i < bytes; i += BERT__MPI_PIECE) {
        size_t k = bytes - i < BERT__MPI_PIECE ? bytes - i : BERT__MPI_PIECE;
        if (MPI_Bcast((char *)buf + i, (int)k, MPI_BYTE, root, MPI_COMM_WORLD) != MPI_SUCCESS) return BERT_ERR_IO;
    }
    return BERT_OK;
}

static int bert__mpi_barrier(const bert_comm *c) { (void)c; return MPI_Barrier(MPI_COMM_WORLD) == MPI_SUCCESS ? BERT_OK : BERT_ERR_IO; }

static void bert__mpi_abort(const bert_comm *c, int code) { (void)c; MPI_Abort(MPI_COMM_WORLD, code); }

static void bert__mpi_finalize(void) {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}

/* Initialises MPI once (later calls return the same table) and registers MPI_Finalize at exit.
   NULL if MPI cannot start. */
static const bert_comm *bert_mpi_init(void) {
    static bert_comm c;
    static int ready;
    if (ready) return &c;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS) return NULL;
    atexit(bert__mpi_finalize);
    c.name = "mpi";
    MPI_Comm_rank(MPI_COMM_WORLD, &c.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c.size);
    c.device = 0;
    c.allreduce_sum = bert__mpi_sum;
    c.allreduce_sum_f64 = bert__mpi_sum_f64;
    c.broadcast = bert__mpi_broadcast;
    c.barrier = bert__mpi_barrier;
    c.abort = bert__mpi_abort;
    ready = 1;
    return &c;
}

#endif // BERT_MPI_H
