/* comm_internal.h: what the files of src/comm share; not part of the API.
 *
 * comm_core.c      init/finalize, ranks, abort, errors, tables, counters
 * comm_faults.c    watchdog thread, SIGTERM/SIGINT line, progress
 * comm_host.c      host-memory collectives (MPI or single-process copies)
 * comm_dense.c     dense gradient all-reduce (MPI staging or NCCL)
 * comm_dense_shared.c  who updates the dense parameters; the node-shared
 *                  windows of comm.dense_update=shared_memory
 * comm_sparse.c    replicated / sharded exchanges, replica check, checksum
 * comm_chunked.c   bounded-chunk gather/scatter of sharded tables
 *
 * Only comm_core, comm_faults, comm_host, comm_dense and comm_dense_shared
 * contain MPI calls;
 * comm_sparse and comm_chunked are written over the host collectives, so
 * they work unchanged without MPI.
 */
#ifndef DTRAIN_COMM_INTERNAL_H
#define DTRAIN_COMM_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "dtrain/comm.h"

#ifdef DTRAIN_HAVE_MPI
#include <mpi.h>
#endif

typedef struct {
  char *name;
  int64_t n_rows;
  int dim;
  dt_placement placement;
  int64_t lo, hi; /* rows held here */
  dt_comm_table_stats stats;
} dtc_table;

typedef struct dtc_dense dtc_dense;               /* comm_dense.c */
typedef struct dtc_dense_shared dtc_dense_shared; /* comm_dense_shared.c */

struct dt_comm {
  int rank, size, local_rank, local_size;
#ifdef DTRAIN_HAVE_MPI
  MPI_Comm world; /* dup of MPI_COMM_WORLD, MPI_ERRORS_RETURN */
  MPI_Comm local; /* ranks on this node */
  int thread_level;
#endif
  dt_comm_stats stats;
  dtc_table *tables;
  int n_tables;
  /* scratch reused by the sparse and chunked exchanges */
  dt_comm_buffer scratch_send, scratch_recv, scratch_aux;
  size_t *scratch_counts; /* [4 * size] */
  dtc_dense *dense;
  int dense_update; /* dt_dense_update */
  dtc_dense_shared *dshared;
};

/* ---- faults (comm_faults.c) ---- */
/* The collective in progress (a static string, NULL between collectives)
 * and when it started: read by the watchdog and the signal handler. */
extern _Atomic(const char *) dtc_current_op;
extern _Atomic int64_t dtc_op_start_ns;
int64_t dtc_now_ns(void);
static inline void dtc_enter(const char *op) {
  atomic_store_explicit(&dtc_op_start_ns, dtc_now_ns(), memory_order_relaxed);
  atomic_store_explicit(&dtc_current_op, op, memory_order_release);
}
static inline void dtc_leave(void) { atomic_store_explicit(&dtc_current_op, (const char *)0, memory_order_release); }

/* Installs the SIGTERM/SIGINT handler naming `rank`. */
int dtc_faults_install(int rank, int size);
/* Starts/retunes (timeout > 0) or stops (0) the watchdog thread; abort_fn
 * is called from the watchdog thread to take the job down. */
int dtc_watchdog_configure(double timeout_s, void (*abort_fn)(int code));
void dtc_watchdog_stop(void);

/* ---- errors (comm_core.c) ---- */
#ifdef DTRAIN_HAVE_MPI
/* Records "<call> (<what>) failed on rank r of n: <MPI error string> ..." */
int dtc_mpi_fail(const dt_comm *c, int mpi_err, const char *call, const char *what);
#endif
/* Converts a byte/element count to MPI's int, failing with a message. */
int dtc_int_count(const dt_comm *c, size_t n, const char *what, int *out);

/* ---- buffers ---- */
void dtc_buffer_reserve(dt_comm_buffer *b, size_t bytes);
void dtc_sparse_reserve(dt_sparse_rows *s, int64_t rows, int dim);

/* ---- host collectives that count into a given counter (comm_host.c) ---- */
int dtc_allgatherv(dt_comm *c, const void *send, size_t bytes, dt_comm_buffer *out, size_t *counts,
                   uint64_t *bytes_counter, const char *what);
int dtc_alltoallv(dt_comm *c, const void *send, const size_t *send_counts, dt_comm_buffer *recv, size_t *recv_counts,
                  uint64_t *bytes_counter, const char *what);
/* Alltoallv whose receive counts the caller already knows (no count
 * exchange). */
int dtc_alltoallv_known(dt_comm *c, const void *send, const size_t *send_counts, void *recv, const size_t *recv_counts,
                        uint64_t *bytes_counter, const char *what);
/* Point-to-point for the chunked transfers. */
int dtc_send(dt_comm *c, const void *buf, size_t bytes, int dest, uint64_t *bytes_counter, const char *what);
int dtc_recv(dt_comm *c, void *buf, size_t bytes, int src, const char *what);

/* ---- tables ---- */
dtc_table *dtc_table_get(const dt_comm *c, int id);

/* ---- dense (comm_dense.c) ---- */
void dtc_dense_free(dt_comm *c);
/* The name of the backend dt_comm_dense_setup was given ("none" before). */
const char *dtc_dense_backend_name(const dt_comm *c);
/* Frees the shared-memory windows of comm.dense_update=shared_memory. COLLECTIVE. */
void dtc_dense_shared_free(dt_comm *c);

#endif
