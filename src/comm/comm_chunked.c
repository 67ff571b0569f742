/* comm_chunked.c: a sharded table to rank 0 and back, in bounded chunks.
 *
 * The chunk schedule (owner by owner, max_rows rows at a time, in global
 * row order) follows from the table's layout alone, so every rank knows it
 * without talking. Each chunk moves point-to-point between its owner and
 * rank 0 (a 8-byte status header, then the rows), then all ranks agree on
 * a status with one tiny all-reduce. That all-reduce makes a failure
 * anywhere (a read error on an owner, a full disk on rank 0) stop every
 * rank at the same chunk with the same code, and it keeps every rank inside
 * a short collective per chunk, so the watchdog measures one chunk's time,
 * not the whole table's.
 */
#include <limits.h>
#include <string.h>

#include "comm/comm_internal.h"

/* Status shared by the per-chunk all-reduce: code in the high half, the
 * failing rank in the low half (max over ranks picks one failure). */
static int64_t encode_status(int code, int rank) { return code ? ((int64_t)code << 32) | (int64_t)rank : 0; }

static int agree(dt_comm *c, int local_rc, const dtc_table *t, int64_t row0, const char *what) {
  int64_t v = encode_status(local_rc, c->rank);
  DT_TRY(dt_comm_allreduce_max_i64(c, &v, 1));
  if (!v) return DT_OK;
  int code = (int)(v >> 32);
  int who = (int)(v & 0xffffffff);
  if (local_rc) return local_rc; /* this rank's own message stands */
  return dt_fail(code, "%s of table '%s' stopped at row %lld: rank %d failed (its message says why)", what, t->name,
                 (long long)row0, who);
}

static int prepare(dt_comm *c, dtc_table *t, int64_t *max_rows, const char *what) {
  if (t->placement != DT_PLACEMENT_SHARDED)
    return dt_fail(DT_EXIT_RUNTIME, "%s: table '%s' is replicated; rank 0 holds it whole (internal error)", what,
                   t->name);
  if (*max_rows < 1) return dt_fail(DT_EXIT_RUNTIME, "%s of table '%s': chunk of %lld rows", what, t->name,
                                    (long long)*max_rows);
  /* One message must fit MPI's int count. */
  int64_t fit = ((int64_t)INT_MAX - 8) / ((int64_t)t->dim * (int64_t)sizeof(float));
  if (*max_rows > fit) *max_rows = fit;
  if (*max_rows > t->n_rows) *max_rows = t->n_rows;
  dtc_buffer_reserve(&c->scratch_aux, 8 + (size_t)*max_rows * (size_t)t->dim * sizeof(float));
  return DT_OK;
}

int dt_comm_sharded_gather(dt_comm *c, int table, int64_t max_rows, dt_comm_fill_fn read, void *read_ctx,
                           dt_comm_consume_fn sink, void *sink_ctx) {
  dtc_table *t = dtc_table_get(c, table);
  const char *what = "sharded gather to rank 0";
  DT_TRY(prepare(c, t, &max_rows, what));
  const int dim = t->dim;
  const size_t row_bytes = (size_t)dim * sizeof(float);
  for (int r = 0; r < c->size; r++) {
    int64_t lo = dt_comm_block_lo(t->n_rows, r, c->size), hi = dt_comm_block_lo(t->n_rows, r + 1, c->size);
    for (int64_t row0 = lo; row0 < hi; row0 += max_rows) {
      int64_t k = hi - row0 < max_rows ? hi - row0 : max_rows;
      char *buf = c->scratch_aux.data;
      float *rows = (float *)(buf + 8);
      size_t msg = 8 + (size_t)k * row_bytes;
      int rc = DT_OK;
      if (c->rank == r) {
        rc = read(read_ctx, row0 - lo, k, dim, rows);
        if (rc) dt_fail_context(rc, "%s of table '%s': rank %d reading rows [%lld, %lld)", what, t->name, r,
                                (long long)row0, (long long)(row0 + k));
        if (r != 0) {
          int64_t st = rc;
          memcpy(buf, &st, 8);
          int src = dtc_send(c, buf, msg, 0, &c->stats.host_bytes, what);
          if (!rc) rc = src;
        }
      }
      if (c->rank == 0) {
        int64_t st = 0;
        if (r != 0) {
          rc = dtc_recv(c, buf, msg, r, what);
          if (!rc) memcpy(&st, buf, 8);
        }
        /* An owner's failed read is not written; the owner reports it
         * through agree() below. */
        if (!rc && !st) {
          rc = sink(sink_ctx, row0, k, dim, rows);
          if (rc) dt_fail_context(rc, "%s of table '%s': writing rows [%lld, %lld)", what, t->name, (long long)row0,
                                  (long long)(row0 + k));
        }
      }
      DT_TRY(agree(c, rc, t, row0, what));
    }
  }
  return DT_OK;
}

int dt_comm_sharded_scatter(dt_comm *c, int table, int64_t max_rows, dt_comm_fill_fn source, void *source_ctx,
                            dt_comm_consume_fn store, void *store_ctx) {
  dtc_table *t = dtc_table_get(c, table);
  const char *what = "sharded scatter from rank 0";
  DT_TRY(prepare(c, t, &max_rows, what));
  const int dim = t->dim;
  const size_t row_bytes = (size_t)dim * sizeof(float);
  for (int r = 0; r < c->size; r++) {
    int64_t lo = dt_comm_block_lo(t->n_rows, r, c->size), hi = dt_comm_block_lo(t->n_rows, r + 1, c->size);
    for (int64_t row0 = lo; row0 < hi; row0 += max_rows) {
      int64_t k = hi - row0 < max_rows ? hi - row0 : max_rows;
      char *buf = c->scratch_aux.data;
      float *rows = (float *)(buf + 8);
      size_t msg = 8 + (size_t)k * row_bytes;
      int rc = DT_OK;
      int64_t st = 0;
      if (c->rank == 0) {
        rc = source(source_ctx, row0, k, dim, rows);
        if (rc) dt_fail_context(rc, "%s of table '%s': reading rows [%lld, %lld)", what, t->name, (long long)row0,
                                (long long)(row0 + k));
        if (r != 0) {
          st = rc;
          memcpy(buf, &st, 8);
          int src = dtc_send(c, buf, msg, r, &c->stats.host_bytes, what);
          if (!rc) rc = src;
        }
      }
      if (c->rank == r) {
        if (r != 0) {
          rc = dtc_recv(c, buf, msg, 0, what);
          if (!rc) memcpy(&st, buf, 8);
        }
        /* A chunk rank 0 could not read is not stored; rank 0 reports it. */
        if (!rc && !st) {
          rc = store(store_ctx, row0 - lo, k, dim, rows);
          if (rc) dt_fail_context(rc, "%s of table '%s': rank %d storing rows [%lld, %lld)", what, t->name, r,
                                  (long long)row0, (long long)(row0 + k));
        }
      }
      DT_TRY(agree(c, rc, t, row0, what));
    }
  }
  return DT_OK;
}
