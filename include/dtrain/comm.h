/* comm.h: the one place dtrain talks MPI or NCCL.
 *
 * Ranks, the host-memory collectives the trainer, evaluation and checkpoints
 * need, the dense gradient all-reduce of a backend buffer (MPI through host
 * staging, or NCCL when the CUDA backend has one GPU per rank), the sparse
 * embedding exchanges of the two placements (replicated, sharded), bounded
 * chunk gather/scatter of sharded tables for checkpoints, and fault handling
 * (a collective watchdog, a SIGTERM/SIGINT line naming rank and step) and
 * the training loop's stop signals (a stop at a step boundary).
 *
 * Built without MPI (no DTRAIN_HAVE_MPI) the same API serves one process:
 * rank 0 of 1, collectives are copies or no-ops.
 *
 * Collective rule: every function marked COLLECTIVE must be called by every
 * rank, in the same order, with matching sizes where stated (e.g. the same
 * `n` for an all-reduce). Contributions may differ in size and may be empty
 * (m = 0): uneven shards never hang as long as every rank makes the call.
 *
 * Errors: functions return 0 or DT_EXIT_RUNTIME after dt_fail() with a
 * message naming the call, the rank and MPI's error string. A failed
 * collective usually means another rank died; with more than one rank the
 * caller should then end the job with dt_comm_abort() rather than
 * dt_comm_finalize() (which synchronises and would wait for the dead rank).
 *
 * Ownership: dt_comm_init() creates the one dt_comm of the process;
 * dt_comm_finalize() or dt_comm_abort() ends it. Output buffers of type
 * dt_comm_buffer and dt_sparse_rows belong to the caller, start zeroed
 * (= empty), are grown by the module as needed and reused across calls;
 * release them with dt_comm_buffer_free() / dt_sparse_rows_free(). Every
 * other pointer argument is borrowed for the duration of the call.
 *
 * Thread use: call from one thread (the training loop). The watchdog thread
 * is internal.
 */
#ifndef DTRAIN_COMM_H
#define DTRAIN_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "dtrain/backend.h"
#include "dtrain/error.h"

typedef struct dt_comm dt_comm;

/* ------------------------------------------------------------------------ */
/* Lifetime, ranks, progress, faults                                         */
/* ------------------------------------------------------------------------ */

/* Starts MPI (MPI_Init_thread, asking for MPI_THREAD_MULTIPLE so the
 * watchdog may call MPI_Abort while the main thread waits in a collective),
 * duplicates MPI_COMM_WORLD with MPI_ERRORS_RETURN, finds the local rank
 * (MPI_Comm_split_type SHARED), tells the logger the rank, and installs the
 * SIGTERM/SIGINT handler. argc/argv may be NULL. Call once per process,
 * before anything else that could fail on some ranks only. */
int dt_comm_init(int *argc, char ***argv, dt_comm **out);
/* Ends communication after a successful run: stops the watchdog, frees
 * NCCL and MPI objects, MPI_Finalize. COLLECTIVE. Frees `c`. */
int dt_comm_finalize(dt_comm *c);
/* Prints "dtrain: error: rank R: <message>" on stderr and takes every rank
 * down with exit code `code` (MPI_Abort; exit() without MPI). `c` may be
 * NULL (before init or after a failed init). Never returns. */
_Noreturn void dt_comm_abort(dt_comm *c, int code, const char *message);

int dt_comm_rank(const dt_comm *c);
int dt_comm_size(const dt_comm *c);
/* Rank among the processes on this node, and their number. The CUDA
 * backend binds device local_rank (one process per GPU). */
int dt_comm_local_rank(const dt_comm *c);
int dt_comm_local_size(const dt_comm *c);
/* 1 when the build has MPI, 0 when it serves one process only. */
int dt_comm_have_mpi(void);

/* Watchdog: abort every rank (exit 4) when one collective waits longer
 * than `seconds` (comm.timeout_s), with a line naming this rank, the
 * epoch/step of dt_comm_set_progress and the collective. 0 turns it off.
 * Only runs with more than one rank. The timeout must exceed the longest
 * time one rank works alone while the others wait (rank 0 writing a
 * checkpoint, a slow evaluation batch). */
int dt_comm_set_timeout(dt_comm *c, double seconds);
/* Stop signals. While deferral is on (the training loop), the first
 * SIGINT or SIGTERM, or SIGUSR1 (what a batch script forwards before a time
 * limit), only asks for a stop: the handler writes a line naming the rank
 * and step, and the loop stops at its next step boundary. A second SIGINT
 * or SIGTERM ends the process at once, as both do while deferral is off
 * (removing the temporary files being written, fsutil.h). The first call
 * with on = 1 installs the SIGUSR1 handler. */
void dt_comm_defer_stop_signals(dt_comm *c, int on);
/* The stop signal every rank agrees on: the largest signal number any
 * rank received (0: none). COLLECTIVE (one 8-byte all-reduce with more
 * than one rank; call it at the same point of every step on every rank). */
int dt_comm_stop_signal(dt_comm *c, int *sig);
/* Where training is, for the watchdog's and the signal handler's messages.
 * Cheap (two atomic stores): call it every step. epoch/step < 0: unknown. */
void dt_comm_set_progress(dt_comm *c, int64_t epoch, int64_t step);

/* COLLECTIVE. */
int dt_comm_barrier(dt_comm *c);

/* ------------------------------------------------------------------------ */
/* Host-memory collectives (COLLECTIVE)                                      */
/* ------------------------------------------------------------------------ */

/* A growable byte buffer owned by the caller (zero-initialise; reuse). */
typedef struct {
  void *data;
  size_t size;     /* bytes of valid data */
  size_t capacity; /* bytes allocated */
} dt_comm_buffer;
void dt_comm_buffer_free(dt_comm_buffer *b);

/* In place, element-wise over all ranks; n must match on every rank. */
int dt_comm_allreduce_sum_f32(dt_comm *c, float *buf, int64_t n);
int dt_comm_allreduce_sum_f64(dt_comm *c, double *buf, int64_t n);
int dt_comm_allreduce_sum_i64(dt_comm *c, int64_t *buf, int64_t n);
int dt_comm_allreduce_max_i64(dt_comm *c, int64_t *buf, int64_t n);
/* buf[0, bytes) of `root` to every rank; bytes must match. */
int dt_comm_bcast(dt_comm *c, void *buf, size_t bytes, int root);
/* out[r * item_bytes ...] = rank r's item; out holds size * item_bytes. */
int dt_comm_allgather(dt_comm *c, const void *item, size_t item_bytes, void *out);
/* Every rank's `bytes` (any size, 0 allowed) concatenated in rank order into
 * out; counts[r] (size entries, may be NULL) receives rank r's bytes. */
int dt_comm_allgatherv(dt_comm *c, const void *send, size_t bytes, dt_comm_buffer *out, size_t *counts);
/* send holds the parts for ranks 0..size-1 back to back, send_counts[r]
 * bytes for rank r. recv gets the parts sent to this rank, in rank order;
 * recv_counts[r] (may be NULL) the bytes that came from rank r. The counts
 * are exchanged internally (MPI_Alltoall then MPI_Alltoallv). */
int dt_comm_alltoallv(dt_comm *c, const void *send, const size_t *send_counts, dt_comm_buffer *recv,
                      size_t *recv_counts);
/* Variable-size blobs to `root`: there, out gets every rank's bytes in rank
 * order and counts[r] (may be NULL) their sizes; other ranks' out/counts
 * are untouched. */
int dt_comm_gatherv(dt_comm *c, const void *send, size_t bytes, int root, dt_comm_buffer *out, size_t *counts);

/* ------------------------------------------------------------------------ */
/* Dense gradients                                                           */
/* ------------------------------------------------------------------------ */

/* Chooses the transport of dt_comm_dense_allreduce for backend `be`:
 * mode "mpi", "nccl" or "auto" (comm.dense). auto picks NCCL when NCCL is
 * compiled in, the backend is CUDA and every rank has a GPU of its own;
 * otherwise MPI (through host staging unless the backend is the CPU one,
 * whose memory is host memory). "nccl" fails when NCCL is unusable; ranks
 * sharing one GPU always fall back to MPI. Says what it picked (and why)
 * on rank 0's log. COLLECTIVE. */
int dt_comm_dense_setup(dt_comm *c, dt_backend *be, const char *mode);
/* "none" (before setup), "mpi" or "nccl". */
const char *dt_comm_dense_transport(const dt_comm *c);
/* All-reduces the backend buffer buf[n] (floats, backend memory) in place:
 * the sum over ranks, divided by the number of ranks when `average`. n must
 * match on every rank. On CUDA the result is ordered before later work on
 * the backend's stream. COLLECTIVE. */
int dt_comm_dense_allreduce(dt_comm *c, float *buf, int64_t n, int average);

/* Sharded dense update (ZeRO stage 1 for the dense buffer): instead of one
 * all-reduce and every rank running the same Adam over the whole buffer,
 * each rank receives the sum of its own block only (reduce-scatter), updates
 * that block, and the blocks are all-gathered back. The same bytes travel;
 * the optimizer's work and memory traffic are divided by the rank count.
 * Available when dt_comm_dense_can_shard() says so (several ranks, MPI on
 * host memory); otherwise use dt_comm_dense_allreduce. */
int dt_comm_dense_can_shard(const dt_comm *c);
/* This rank's block [lo, hi) of a dense buffer of n floats (blocks are
 * multiples of 16 floats, in rank order). */
void dt_comm_dense_shard(const dt_comm *c, int64_t n, int64_t *lo, int64_t *hi);
/* Sums buf[n] over ranks into this rank's block; the rest of buf is left
 * unspecified. COLLECTIVE. */
int dt_comm_dense_reduce_scatter(dt_comm *c, float *buf, int64_t n);
/* Gives every rank every rank's block of buf[n] (in place). COLLECTIVE. */
int dt_comm_dense_allgather(dt_comm *c, float *buf, int64_t n);

/* Who updates the dense parameters (comm.dense_update; comm_dense_shared.c):
 * every rank everything after an all-reduce; each rank a block after a
 * reduce-scatter, then an all-gather (sharded); or each rank a block of one
 * node-shared copy, summed straight from its peers' gradient buffers
 * (shared_memory: every rank on one machine, host memory). */
typedef enum { DT_DENSE_ALLREDUCE = 0, DT_DENSE_SHARDED = 1, DT_DENSE_SHARED = 2 } dt_dense_update;

/* The storage of DT_DENSE_SHARED: w, m, v one copy per machine (every rank
 * reads them, each writes its block); g this rank's gradient buffer, which
 * its peers read and zero. n floats each, 64-byte aligned, zeroed. */
typedef struct {
  float *w, *m, *v, *g;
} dt_dense_storage;

/* Chooses the dense update for a buffer of n floats, after
 * dt_comm_dense_setup: mode "auto" (shared_memory when every rank is on one
 * machine and the backend's memory is host memory, sharded when they are
 * not, allreduce otherwise), "allreduce", "sharded" or "shared_memory" (an
 * error, exit 2, where the backend or the ranks' placement rule it out;
 * exit 4 when Open MPI's backing directory lacks the room, where auto falls
 * back to sharded with a warning). With one rank every mode is the local
 * update. For DT_DENSE_SHARED it fills *storage (the model adopts it:
 * dt_model_adopt_dense); otherwise *storage is zeroed. COLLECTIVE. */
int dt_comm_dense_update_setup(dt_comm *c, const char *mode, int64_t n, dt_dense_storage *storage);
dt_dense_update dt_comm_dense_update(const dt_comm *c);
const char *dt_comm_dense_update_name(dt_dense_update u);
/* DT_DENSE_SHARED, once every rank's backward pass is done: the sum over the
 * machine's ranks of this rank's block (dt_comm_dense_shard) lands in its own
 * gradient buffer, summed in rank order; the block is zeroed in the other
 * ranks' buffers. *sumsq receives the block's sum of squares (for the
 * gradient norm; the same bits every run). COLLECTIVE. */
int dt_comm_dense_shared_reduce(dt_comm *c, double *sumsq);
/* DT_DENSE_SHARED, after this rank updated its block of the weights and
 * zeroed its block of its own gradient: returns when every rank has (the
 * weights are whole again and every gradient buffer is zero). COLLECTIVE. */
int dt_comm_dense_shared_wait(dt_comm *c);

/* The dense update as one strategy object, chosen once by
 * dt_comm_dense_update_setup: the calls a training step makes at the points
 * where the three modes differ (comm_dense_sync.c). The trainer never asks
 * which mode it runs. All but begin_backward are COLLECTIVE. */
typedef struct {
  int64_t lo, hi; /* the block of the dense buffer this rank sums and updates ([0, n) for allreduce) */
  double sumsq;   /* the block's sum of squares of the summed gradient */
  int partial;    /* 1: sumsq is this rank's share (sum it over ranks with the sharded tables'), 0: the whole */
} dt_dense_block;
typedef struct {
  dt_dense_update mode;
  /* Before the backward pass: zeroes the gradient buffer g[n] (shared_memory:
   * nothing; the owners zeroed every block during the last step). */
  int (*begin_backward)(dt_comm *c, dt_backend *be, float *g, int64_t n);
  /* After it: the gradient summed over ranks (all of g, or this rank's block)
   * and its sum of squares. */
  int (*reduce)(dt_comm *c, dt_backend *be, float *g, int64_t n, dt_dense_block *blk);
  /* After this rank updated its block of w[n]: every rank sees all of w,
   * and g is ready for the next step's backward. */
  int (*after_update)(dt_comm *c, dt_backend *be, float *w, float *g, int64_t n, const dt_dense_block *blk);
  /* Before a checkpoint: the Adam moments m[n], v[n] whole on every rank. */
  int (*before_save)(dt_comm *c, float *m, float *v, int64_t n);
  /* After every rank wrote the parameters (initialised or loaded; rc its own
   * result): with one shared copy, nobody goes on before all are done, and a
   * failure anywhere fails every rank (with fail_code and a message naming
   * `what` on the ranks that did not fail themselves). */
  int (*after_write)(dt_comm *c, int rc, int fail_code, const char *what);
} dt_dense_sync;
const dt_dense_sync *dt_comm_dense_sync(const dt_comm *c);

/* With DT_DENSE_SHARED (one machine, host memory, a barrier at the end of
 * every step), the rows of sharded table `id` (dim floats each) in one
 * shared-memory window: *mine is this rank's block [lo, hi) (uninitialised),
 * *whole row 0 of the whole table as seen from this process, so lookups
 * read any owner's rows directly. Owners still apply their rows' updates.
 * Both NULL when that is not available (another dense update, or an MPI
 * library that does not place the blocks contiguously); the same answer on
 * every rank. The windows are freed by dt_comm_finalize. COLLECTIVE. */
int dt_comm_table_shared(dt_comm *c, int id, int dim, float **mine, float **whole);

/* ------------------------------------------------------------------------ */
/* Embedding tables: placement and sparse exchange                           */
/* ------------------------------------------------------------------------ */

typedef enum { DT_PLACEMENT_REPLICATED = 0, DT_PLACEMENT_SHARDED = 1 } dt_placement;
/* "replicated" | "sharded" (comm.placement.*); DT_EXIT_USAGE otherwise. */
int dt_placement_parse(const char *name, dt_placement *out);
const char *dt_placement_name(dt_placement p);

/* Block partition of R rows over N ranks: rank r owns
 * [dt_comm_block_lo(R, r, N), dt_comm_block_lo(R, r + 1, N)). */
int64_t dt_comm_block_lo(int64_t n_rows, int rank, int size);
/* The rank owning `row` (0 <= row < n_rows). */
int dt_comm_block_owner(int64_t row, int64_t n_rows, int size);

/* Registers an embedding table (same order and arguments on every rank;
 * not collective). *id is its handle for the calls below. The name (copied)
 * appears in messages and in the replica check. */
int dt_comm_table_add(dt_comm *c, const char *name, int64_t n_rows, int dim, dt_placement placement, int *id);
/* Rows this rank holds: [0, n_rows) replicated, its block when sharded. */
void dt_comm_table_range(const dt_comm *c, int id, int64_t *lo, int64_t *hi);
const char *dt_comm_table_name(const dt_comm *c, int id);

/* Sparse rows: unique ids ascending with one row of `dim` floats each.
 * Owned by the caller (zero-initialise; reuse; dt_sparse_rows_free). */
typedef struct {
  int64_t n; /* rows */
  int dim;
  int32_t *ids;     /* [n] ascending, unique */
  float *rows;      /* [n, dim] */
  int64_t capacity; /* rows allocated */
} dt_sparse_rows;
void dt_sparse_rows_free(dt_sparse_rows *s);

/* Replicated placement. Input: this rank's locally coalesced gradient rows
 * (ids strictly ascending, host memory, m >= 0). Output: the global sparse
 * gradient, all-gathered (MPI_Allgatherv) and coalesced: equal ids summed
 * in rank order, so every rank gets the identical bytes and applies the
 * same lazy update. COLLECTIVE. */
int dt_comm_replicated_exchange(dt_comm *c, int table, const int32_t *ids, const float *rows, int64_t m,
                                dt_sparse_rows *out);

/* Fills rows_host [n, dim] with this rank's rows local_ids[0..n) of a
 * sharded table (indices relative to the start of its block). Returns 0 or
 * an error code with a message. */
typedef int (*dt_comm_fetch_fn)(void *ctx, const int32_t *local_ids, int64_t n, int dim, float *rows_host);
/* A dt_comm_fetch_fn for a shard kept in host memory: ctx is its
 * `const float *` [block rows, dim]. */
int dt_comm_fetch_host_rows(void *ctx, const int32_t *local_ids, int64_t n, int dim, float *rows_host);

/* Sharded placement, lookup: this rank needs rows ids[0..m) (global ids,
 * strictly ascending); each owner receives the requests (MPI_Alltoallv),
 * reads them with fetch(ctx, ...) and replies. rows_out [m, dim] (host)
 * gets row ids[k] in row k. COLLECTIVE. */
int dt_comm_sharded_lookup(dt_comm *c, int table, const int32_t *ids, int64_t m, dt_comm_fetch_fn fetch, void *ctx,
                           float *rows_out);
/* Sharded placement, gradients: this rank's coalesced (id, gradient row)
 * pairs (ids strictly ascending, host) go to their owners (MPI_Alltoallv);
 * out gets the rows this rank owns, as global ids ascending, equal ids
 * summed in rank order (deterministic). The owner applies the update.
 * COLLECTIVE. */
int dt_comm_sharded_exchange(dt_comm *c, int table, const int32_t *ids, const float *rows, int64_t m,
                             dt_sparse_rows *out);

/* Rows for chunked transfers. "fill" callbacks write n rows starting at
 * row0 into rows_host; "consume" callbacks read them. Both return 0 or an
 * error code with a message. */
typedef int (*dt_comm_fill_fn)(void *ctx, int64_t row0, int64_t n, int dim, float *rows_host);
typedef int (*dt_comm_consume_fn)(void *ctx, int64_t row0, int64_t n, int dim, const float *rows_host);
/* Gathers a sharded table to rank 0 in chunks of at most max_rows rows
 * (never the whole table at once): each owner reads its rows with
 * read(read_ctx, local_row0, ...), rank 0 hands each chunk, in global row
 * order, to sink(sink_ctx, global_row0, ...). sink is used on rank 0 only,
 * read on owners only. Any rank's failure fails the call on every rank
 * (the same code; the message on the failing rank names it). COLLECTIVE. */
int dt_comm_sharded_gather(dt_comm *c, int table, int64_t max_rows, dt_comm_fill_fn read, void *read_ctx,
                           dt_comm_consume_fn sink, void *sink_ctx);
/* The same for another per-row array of the table's partition (an
 * optimizer's per-row state): rows of `width` floats (2 for an int64 per
 * row) instead of the table's dim. COLLECTIVE. */
int dt_comm_sharded_gather_part(dt_comm *c, int table, int width, int64_t max_rows, dt_comm_fill_fn read,
                                void *read_ctx, dt_comm_consume_fn sink, void *sink_ctx);
/* The reverse, for loading: rank 0 reads chunks of at most max_rows rows
 * with source(source_ctx, global_row0, ...) and each owner stores them with
 * store(store_ctx, local_row0, ...). COLLECTIVE. */
int dt_comm_sharded_scatter(dt_comm *c, int table, int64_t max_rows, dt_comm_fill_fn source, void *source_ctx,
                            dt_comm_consume_fn store, void *store_ctx);

/* Replica check (--check-replicas K): compares checksums[0..n_tables) (one
 * per replicated table, computed by the caller, e.g. with dt_comm_checksum)
 * across ranks. Returns 0 when all agree, otherwise DT_EXIT_RUNTIME on
 * every rank with a message naming the first differing table (table_ids[i]
 * gives table i's name) and the ranks that disagree with rank 0.
 * COLLECTIVE. */
int dt_comm_check_replicas(dt_comm *c, int n_tables, const int *table_ids, const uint64_t *checksums);
/* 64-bit checksum of bytes (FNV-1a over 32-bit words, not cryptographic).
 * Chain over pieces with h = dt_comm_checksum(h, ...), starting from
 * DT_COMM_CHECKSUM_INIT; splitting at multiples of 4 bytes gives the same
 * value as one call. */
#define DT_COMM_CHECKSUM_INIT UINT64_C(0xcbf29ce484222325)
uint64_t dt_comm_checksum(uint64_t h, const void *data, size_t bytes);

/* ------------------------------------------------------------------------ */
/* Counters: bytes this rank sent to other ranks                             */
/* ------------------------------------------------------------------------ */
/* Counted as payload on the wire in a direct-send model, not what MPI's
 * algorithm happens to move: an all-gather of b bytes counts b * (size-1),
 * an all-to-all counts the parts for other ranks, the dense all-reduce
 * counts the ring all-reduce's 2 (size-1)/size * 4n. One rank sends 0. */
typedef struct {
  uint64_t dense_bytes, dense_calls; /* dt_comm_dense_allreduce */
  uint64_t host_bytes, host_calls;   /* the host collectives above */
} dt_comm_stats;
typedef struct {
  uint64_t lookup_bytes; /* sharded lookups: request ids + replied rows */
  uint64_t grad_bytes;   /* gradient exchange: ids + rows (+ counts) */
  uint64_t calls;
} dt_comm_table_stats;
void dt_comm_get_stats(const dt_comm *c, dt_comm_stats *out);
void dt_comm_get_table_stats(const dt_comm *c, int table, dt_comm_table_stats *out);
void dt_comm_reset_stats(dt_comm *c);

#endif
