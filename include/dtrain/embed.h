/* embed.h: one embedding table, everything about it in one place: its
 * storage and optimizer state, its placement over the ranks (replicated, or
 * sharded by row blocks), the rows a batch reads (the lookup), the sparse
 * gradient of a backward pass, its coalescing, exchange and optimizer
 * update, and its checkpoint parts.
 *
 * The model owns DT_MAX_TABLES of them (model.h): its forward reads `view`,
 * its backward appends rows to grad_ids / grad_rows. The trainer calls
 * lookup, exchange and apply; checkpoints walk the parts. Talking to other
 * ranks goes through comm.h only (a placed table keeps its communicator);
 * the table's math goes through the backend's ops.
 *
 * A step, for every present table (every rank, the same order: the sharded
 * calls are COLLECTIVE):
 *   dt_table_lookup          sharded: fetch the batch's rows from their owners
 *   (model forward/backward) reads view, fills grad_ids/grad_rows
 *   dt_table_exchange_grads  coalesce, then all-gather (replicated) or send
 *                            to the owners (sharded)
 *   dt_table_apply           lazy Adam or row-wise Adagrad on the rows this
 *                            rank holds
 *
 * Ownership: the table owns its backend buffers and its exchange scratch;
 * dt_table_free releases them (rows adopted from node-shared memory are the
 * communicator's and are not freed here).
 */
#ifndef DTRAIN_EMBED_H
#define DTRAIN_EMBED_H

#include <stdint.h>

#include "dtrain/backend.h"

#define DT_NAME_LEN 64

typedef struct dt_comm dt_comm;             /* comm.h */
typedef struct dt_table_xchg dt_table_xchg; /* lookup and exchange scratch (src/embed) */

/* What a table stores per row, each one checkpoint dataset. */
typedef enum {
  DT_TABLE_PART_ROWS = 0,    /* the embedding rows [rows, dim] */
  DT_TABLE_PART_ADAM_M,      /* lazy Adam first moments [rows, dim] */
  DT_TABLE_PART_ADAM_V,      /* lazy Adam second moments [rows, dim] */
  DT_TABLE_PART_ADAGRAD_ACC, /* row-wise Adagrad sums [rows] */
  DT_TABLE_PART_ROW_STEP,    /* lazy Adam per-row step counts [rows] (int64) */
  DT_TABLE_N_PARTS
} dt_table_part;

/* The optimizer of the tables (optim.sparse). */
typedef enum { DT_SPARSE_LAZY_ADAM = 0, DT_SPARSE_ROWWISE_ADAGRAD } dt_sparse_optim;

typedef struct {
  char name[DT_NAME_LEN]; /* "static.user_emb", ... */
  int present;
  int64_t rows; /* global rows */
  int dim;
  /* Initialisation: N(0, 0.01^2) per element, keyed by (name, row, col),
   * except a zero_init table (all zero) and row pad_row (-1: none). */
  int zero_init;
  int64_t pad_row;
  dt_backend *be;
  /* Storage (backend memory). For a replicated table all rows; for a
   * sharded one the rows this rank owns, [row_lo, row_hi). */
  int sharded;
  int64_t row_lo, row_hi;
  float *data, *m, *v; /* [local rows, dim]; m, v for lazy Adam */
  float *acc;          /* [local rows] for row-wise Adagrad */
  int64_t *row_step;   /* [local rows] lazy Adam per-row steps */
  /* The rows the current batch reads: `data` itself (replicated), the
   * batch's unique rows fetched from their owners (sharded; ids rewritten
   * to positions in it by dt_table_lookup), or the whole node-shared table,
   * read by global id (shared_rows). */
  const float *view;
  int shared_rows; /* data is this rank's block of a node-shared table */
  /* Sparse gradient of the last backward: grad_n rows (ids in the batch's
   * id space for this table, grad_rows [grad_n, dim]), not yet coalesced. */
  int64_t grad_n, grad_cap;
  int32_t *grad_ids;
  float *grad_rows;
  /* Placement (dt_table_place): the communicator and this table's handle. */
  dt_comm *comm;
  int comm_id;
  dt_table_xchg *xchg;
} dt_table;

/* ---- Storage (embed.c) ---- */

/* Allocates storage for every row on backend `be` (the table's name, rows,
 * dim and init rule already set; a table with present = 0 gets nothing).
 * Not initialised: dt_table_init or a checkpoint fills it. */
int dt_table_alloc(dt_table *tb, dt_backend *be);
void dt_table_free(dt_table *tb);
/* Seeded initialisation of the rows this rank holds (element (global row,
 * col) has its own Philox counter, so a sharded table holds exactly the
 * rows a replicated one would); zeroes the optimizer state. */
int dt_table_init(dt_table *tb, uint64_t seed);
/* Makes sure the sparse-gradient buffers hold `rows` rows. */
int dt_table_grad_reserve(dt_table *tb, int64_t rows);

/* ---- Placement ---- */

/* Registers the table with the communicator (once; same order and
 * arguments on every rank) and, when `sharded` and there is more than one
 * rank, keeps only this rank's block of rows: in node-shared memory where
 * comm offers it (comm.dense_update=shared_memory on one machine), so
 * lookups read any owner's rows directly. Call before dt_table_init. */
int dt_table_place(dt_table *tb, dt_comm *comm, int sharded);
/* Whether a batch's rows must be fetched from their owners (sharded, not
 * node-shared). */
int dt_table_needs_lookup(const dt_table *tb);

/* ---- Per step (embed_exchange.c) ---- */

/* A sharded table's lookup: the batch's ids for this table come in n_parts
 * host arrays (global row ids); the unique rows are fetched from their
 * owners into `view` and every id is rewritten to its row's position in
 * it. No-op (and no communication) unless dt_table_needs_lookup.
 * COLLECTIVE for sharded tables. */
int dt_table_lookup(dt_table *tb, int32_t *const *ids, const int64_t *counts, int n_parts);
/* Coalesces the last backward's gradient rows, maps them to global ids and
 * exchanges them (replicated: every rank gets the global sum; sharded: each
 * owner gets its rows' sums). Adds the exchanged rows' squared norm to
 * *sumsq_replicated (identical on every rank) or *sumsq_sharded (this
 * rank's rows only: the caller sums it over ranks) and this rank's coalesced
 * gradient bytes to *sent_bytes_floor. COLLECTIVE. */
int dt_table_exchange_grads(dt_table *tb, double *sumsq_replicated, double *sumsq_sharded, uint64_t *sent_bytes_floor);
/* Updates the rows this rank received in the last exchange: lazy Adam
 * (per-row step counts) or row-wise Adagrad, hyper->grad_scale applied to
 * the gradient first. */
int dt_table_apply(dt_table *tb, dt_sparse_optim optim, const dt_adam_hyper *hyper);

/* ---- Reading the whole table ---- */

/* Rows [first, first + n) into out [n, dim] (host); a sharded table's rows
 * come from their owners in bounded chunks. COLLECTIVE when sharded. */
int dt_table_read_rows(dt_table *tb, int64_t first, int64_t n, float *out);
/* A checksum of this rank's rows (dt_comm_checksum over the bytes). */
int dt_table_checksum(const dt_table *tb, uint64_t *sum);

/* ---- Checkpoint parts (embed_parts.c) ---- */

typedef struct {
  const char *name; /* dataset name under /optim/tables/<table>/ ("m", "v", ...) */
  int64_t cols;     /* values per row: dim, or 1 */
  int is_int64;     /* int64 values (row_step), else float */
  size_t row_bytes;
} dt_table_part_info;
void dt_table_part_describe(const dt_table *tb, dt_table_part part, dt_table_part_info *out);
/* Rows [local_row0, local_row0 + n) of a part of the rows this rank holds,
 * to or from host memory. */
int dt_table_part_download(const dt_table *tb, dt_table_part part, int64_t local_row0, int64_t n, void *host);
int dt_table_part_upload(dt_table *tb, dt_table_part part, int64_t local_row0, int64_t n, const void *host);
/* Hands every row of a part, in global row order and chunks of at most
 * max_rows, to sink(ctx, global_row0, n, host rows) on rank 0 only. A
 * replicated table is read by rank 0; a sharded one is gathered from its
 * owners. Any rank's failure fails the call everywhere (sharded) or on
 * rank 0 (replicated). COLLECTIVE when sharded. */
typedef int (*dt_table_sink_fn)(void *ctx, int64_t row0, int64_t n, const void *rows);
int dt_table_part_gather(const dt_table *tb, dt_table_part part, int64_t max_rows, dt_table_sink_fn sink, void *ctx);

#endif
