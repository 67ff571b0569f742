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

static int prepare(dt_comm *c, dtc_table *t, int width, int64_t *max_rows, const char *what) {
  if (t->placement != DT_PLACEMENT_SHARDED)
    return dt_fail(DT_EXIT_RUNTIME, "%s: table '%s' is replicated; rank 0 holds it whole (internal error)", what,
                   t->name);
  if (*max_rows < 1)
    return dt_fail(DT_EXIT_RUNTIME, "%s of table '%s': chunk of %lld rows", what, t->name, (long long)*max_rows);
  if (width < 1) return dt_fail(DT_EXIT_RUNTIME, "%s of table '%s': rows of %d floats", what, t->name, width);
  /* One message must fit MPI's int count. */
  int64_t fit = ((int64_t)INT_MAX - 8) / ((int64_t)width * (int64_t)sizeof(float));
  if (*max_rows > fit) *max_rows = fit;
  if (*max_rows > t->n_rows) *max_rows = t->n_rows;
  dtc_buffer_reserve(&c->scratch_aux, 8 + (size_t)*max_rows * (size_t)width * sizeof(float));
  return DT_OK;
}

/* The chunk schedule of both directions. A chunk of owner r's block moves
 * from `from` (the owner when gathering, rank 0 when scattering) to `to`:
 * `from` produces it with fill(), `to` consumes it with consume(), each
 * callback addressing rows its own way (the owner by its local row, rank 0
 * by the global one). */
typedef struct {
  int gather;
  const char *what;
  dt_comm_fill_fn fill;
  void *fill_ctx;
  dt_comm_consume_fn consume;
  void *consume_ctx;
} chunk_walk;

/* One chunk [row0, row0 + k) of owner r's block [lo, ...). */
static int move_chunk(dt_comm *c, const dtc_table *t, const chunk_walk *cw, int width, int r, int64_t lo, int64_t row0,
                      int64_t k) {
  const int from = cw->gather ? r : 0, to = cw->gather ? 0 : r;
  const int64_t from_row = cw->gather ? row0 - lo : row0, to_row = cw->gather ? row0 : row0 - lo;
  char *buf = c->scratch_aux.data;
  float *rows = (float *)(buf + 8);
  size_t msg = 8 + (size_t)k * (size_t)width * sizeof(float);
  int rc = DT_OK;
  int64_t st = 0;
  if (c->rank == from) {
    rc = cw->fill(cw->fill_ctx, from_row, k, width, rows);
    if (rc && cw->gather)
      dt_fail_context(rc, "%s of table '%s': rank %d reading rows [%lld, %lld)", cw->what, t->name, c->rank,
                      (long long)row0, (long long)(row0 + k));
    else if (rc)
      dt_fail_context(rc, "%s of table '%s': reading rows [%lld, %lld)", cw->what, t->name, (long long)row0,
                      (long long)(row0 + k));
    if (from != to) {
      st = rc;
      memcpy(buf, &st, 8);
      int src = dtc_send(c, buf, msg, to, &c->stats.host_bytes, cw->what);
      if (!rc) rc = src;
    }
  }
  if (c->rank == to) {
    if (from != to) {
      rc = dtc_recv(c, buf, msg, from, cw->what);
      if (!rc) memcpy(&st, buf, 8);
    }
    /* A chunk its producer could not read is not consumed; the producer
     * reports it through agree() below. */
    if (!rc && !st) {
      rc = cw->consume(cw->consume_ctx, to_row, k, width, rows);
      if (rc && cw->gather)
        dt_fail_context(rc, "%s of table '%s': writing rows [%lld, %lld)", cw->what, t->name, (long long)row0,
                        (long long)(row0 + k));
      else if (rc)
        dt_fail_context(rc, "%s of table '%s': rank %d storing rows [%lld, %lld)", cw->what, t->name, c->rank,
                        (long long)row0, (long long)(row0 + k));
    }
  }
  return agree(c, rc, t, row0, cw->what);
}

static int walk(dt_comm *c, int table, int width, int64_t max_rows, const chunk_walk *cw) {
  dtc_table *t = dtc_table_get(c, table);
  DT_TRY(prepare(c, t, width, &max_rows, cw->what));
  for (int r = 0; r < c->size; r++) {
    int64_t lo = dt_comm_block_lo(t->n_rows, r, c->size), hi = dt_comm_block_lo(t->n_rows, r + 1, c->size);
    for (int64_t row0 = lo; row0 < hi; row0 += max_rows)
      DT_TRY(move_chunk(c, t, cw, width, r, lo, row0, hi - row0 < max_rows ? hi - row0 : max_rows));
  }
  return DT_OK;
}

int dt_comm_sharded_gather_part(dt_comm *c, int table, int width, int64_t max_rows, dt_comm_fill_fn read,
                                void *read_ctx, dt_comm_consume_fn sink, void *sink_ctx) {
  chunk_walk cw = {1, "sharded gather to rank 0", read, read_ctx, sink, sink_ctx};
  return walk(c, table, width, max_rows, &cw);
}

int dt_comm_sharded_gather(dt_comm *c, int table, int64_t max_rows, dt_comm_fill_fn read, void *read_ctx,
                           dt_comm_consume_fn sink, void *sink_ctx) {
  return dt_comm_sharded_gather_part(c, table, dtc_table_get(c, table)->dim, max_rows, read, read_ctx, sink, sink_ctx);
}

int dt_comm_sharded_scatter(dt_comm *c, int table, int64_t max_rows, dt_comm_fill_fn source, void *source_ctx,
                            dt_comm_consume_fn store, void *store_ctx) {
  chunk_walk cw = {0, "sharded scatter from rank 0", source, source_ctx, store, store_ctx};
  return walk(c, table, dtc_table_get(c, table)->dim, max_rows, &cw);
}
