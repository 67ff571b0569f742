/* embed.c: a table's storage, initialisation and placement, and reading it
 * whole (embed.h). */
#include <stdlib.h>
#include <string.h>

#include "dtrain/comm.h"
#include "dtrain/error.h"
#include "dtrain/log.h"
#include "dtrain/rng.h"
#include "embed/embed_internal.h"

/* data, m, v [local, dim]; acc [local]; row_step [local] (int64) */
static int alloc_rows(dt_table *tb, int64_t local) {
  dt_backend *be = tb->be;
  size_t bytes = (size_t)(local * tb->dim) * sizeof(float);
  DT_TRY(dt_backend_alloc(be, bytes, (void **)&tb->data));
  DT_TRY(dt_backend_alloc(be, bytes, (void **)&tb->m));
  DT_TRY(dt_backend_alloc(be, bytes, (void **)&tb->v));
  DT_TRY(dt_backend_alloc(be, (size_t)local * sizeof(float), (void **)&tb->acc));
  return dt_backend_alloc(be, (size_t)local * sizeof(int64_t), (void **)&tb->row_step);
}

static void free_rows(dt_table *tb) {
  dt_backend *be = tb->be;
  if (tb->shared_rows) tb->data = NULL; /* the communicator's */
  void *ps[] = {tb->data, tb->m, tb->v, tb->acc, tb->row_step};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
    if (ps[i]) be->free(be, ps[i]);
  tb->data = tb->m = tb->v = tb->acc = NULL;
  tb->row_step = NULL;
}

int dt_table_alloc(dt_table *tb, dt_backend *be) {
  tb->be = be;
  tb->row_lo = 0;
  tb->row_hi = tb->rows;
  if (!tb->present) return DT_OK;
  DT_TRY(alloc_rows(tb, tb->rows));
  tb->view = tb->data;
  return DT_OK;
}

static void free_xchg(dt_backend *be, dt_table_xchg *x) {
  if (!x) return;
  void *dev[] = {x->d_cache, x->d_uniq, x->d_sums, x->d_upd_ids, x->d_upd_rows};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
    if (dev[i]) be->free(be, dev[i]);
  free(x->uniq);
  free(x->rows_host);
  free(x->h_ids);
  free(x->h_rows);
  dt_sparse_rows_free(&x->global);
  free(x);
}

void dt_table_free(dt_table *tb) {
  if (!tb->be) return;
  free_xchg(tb->be, tb->xchg);
  tb->xchg = NULL;
  free_rows(tb);
  if (tb->grad_ids) tb->be->free(tb->be, tb->grad_ids);
  if (tb->grad_rows) tb->be->free(tb->be, tb->grad_rows);
  tb->grad_ids = NULL;
  tb->grad_rows = NULL;
  tb->grad_cap = tb->grad_n = 0;
}

int dt_table_init(dt_table *tb, uint64_t seed) {
  if (!tb->present) return DT_OK;
  dt_backend *be = tb->be;
  const int64_t local = tb->row_hi - tb->row_lo;
  const uint32_t hash = dt_name_hash(tb->name);
  float *rows = dt_xmalloc((size_t)(local * tb->dim) * sizeof(float));
  for (int64_t r = 0; r < local; r++) {
    int64_t gr = tb->row_lo + r;
    for (int c = 0; c < tb->dim; c++) {
      float x = 0.0f;
      if (!tb->zero_init && gr != tb->pad_row) {
        dt_rand4 rr = dt_philox(seed, DT_RNG_INIT, hash, (uint32_t)gr, (uint32_t)((uint64_t)gr >> 32), (uint32_t)c);
        x = 0.01f * dt_normal_from(rr.v[0], rr.v[1]);
      }
      rows[r * tb->dim + c] = x;
    }
  }
  int rc = be->upload(be, tb->data, rows, (size_t)(local * tb->dim) * sizeof(float));
  free(rows);
  DT_TRY(rc);
  DT_TRY(be->zero(be, tb->m, (size_t)(local * tb->dim) * sizeof(float)));
  DT_TRY(be->zero(be, tb->v, (size_t)(local * tb->dim) * sizeof(float)));
  DT_TRY(be->zero(be, tb->acc, (size_t)local * sizeof(float)));
  return be->zero(be, tb->row_step, (size_t)local * sizeof(int64_t));
}

int dt_table_grad_reserve(dt_table *tb, int64_t rows) {
  if (rows <= tb->grad_cap) return DT_OK;
  int64_t c = rows + rows / 4 + 64;
  tb->grad_cap = 0;
  DT_TRY(dt_backend_replace(tb->be, (void **)&tb->grad_ids, (size_t)c * sizeof(int32_t)));
  DT_TRY(dt_backend_replace(tb->be, (void **)&tb->grad_rows, (size_t)(c * tb->dim) * sizeof(float)));
  tb->grad_cap = c;
  return DT_OK;
}

/* ---- Placement ------------------------------------------------------------------- */

/* Keeps rows [lo, hi) only (uninitialised). */
static int keep_block(dt_table *tb, int64_t lo, int64_t hi) {
  if (lo < 0 || hi > tb->rows || lo > hi)
    dt_panic("bad shard [%lld, %lld) of %s", (long long)lo, (long long)hi, tb->name);
  free_rows(tb);
  tb->sharded = 1;
  tb->row_lo = lo;
  tb->row_hi = hi;
  DT_TRY(alloc_rows(tb, hi - lo > 0 ? hi - lo : 1));
  tb->view = NULL; /* dt_table_lookup points it at the fetched rows of each batch */
  return DT_OK;
}

/* This rank's block in node-shared memory: `mine` replaces it, `whole` (row 0
 * of the whole table) becomes the view, read by global id. */
static void adopt_shared_rows(dt_table *tb, float *mine, const float *whole) {
  memcpy(mine, tb->data, (size_t)((tb->row_hi - tb->row_lo) * tb->dim) * sizeof(float));
  tb->be->free(tb->be, tb->data);
  tb->data = mine;
  tb->view = whole;
  tb->shared_rows = 1;
}

int dt_table_place(dt_table *tb, dt_comm *comm, int sharded) {
  if (!tb->present) return DT_OK;
  /* one rank holds every row either way: skip the owner machinery */
  if (dt_comm_size(comm) == 1) sharded = 0;
  tb->comm = comm;
  DT_TRY(dt_comm_table_add(comm, tb->name, tb->rows, tb->dim, sharded ? DT_PLACEMENT_SHARDED : DT_PLACEMENT_REPLICATED,
                           &tb->comm_id));
  if (!tb->xchg) tb->xchg = dt_xcalloc(1, sizeof *tb->xchg);
  if (!sharded) return DT_OK;
  int64_t lo, hi;
  dt_comm_table_range(comm, tb->comm_id, &lo, &hi);
  DT_TRY(keep_block(tb, lo, hi));
  /* one machine: the blocks in shared memory, lookups read the owners' rows */
  float *mine, *whole;
  DT_TRY(dt_comm_table_shared(comm, tb->comm_id, tb->dim, &mine, &whole));
  if (mine) {
    if (!dt_backend_host_memory(tb->be))
      return dt_fail(DT_EXIT_RUNTIME, "node-shared rows need a sharded table on the CPU backend (internal error)");
    adopt_shared_rows(tb, mine, whole);
  }
  dt_log_info("table %s: sharded, this rank holds rows [%lld, %lld) of %lld%s", tb->name, (long long)lo, (long long)hi,
              (long long)tb->rows, mine ? " in shared memory (lookups read the owners' rows)" : "");
  return DT_OK;
}

int dt_table_needs_lookup(const dt_table *tb) { return tb->present && tb->sharded && !tb->shared_rows; }

/* ---- Reading ------------------------------------------------------------------------ */

int dt_table_fetch_rows(void *table, const int32_t *local_ids, int64_t n, int dim, float *rows_host) {
  const dt_table *tb = table;
  dt_backend *be = tb->be;
  if (n == 0) return DT_OK;
  if (dt_backend_host_memory(be)) {
    for (int64_t k = 0; k < n; k++)
      memcpy(rows_host + k * dim, tb->data + (int64_t)local_ids[k] * dim, (size_t)dim * sizeof(float));
    return DT_OK;
  }
  int32_t *d_ids = NULL;
  float *d_rows = NULL;
  int rc = dt_backend_alloc(be, (size_t)n * sizeof(int32_t), (void **)&d_ids);
  if (!rc) rc = dt_backend_alloc(be, (size_t)(n * dim) * sizeof(float), (void **)&d_rows);
  if (!rc) rc = be->upload(be, d_ids, local_ids, (size_t)n * sizeof(int32_t));
  if (!rc) rc = be->gather_rows(be, d_rows, tb->data, d_ids, n, dim);
  if (!rc) rc = be->download(be, rows_host, d_rows, (size_t)(n * dim) * sizeof(float));
  if (d_ids) be->free(be, d_ids);
  if (d_rows) be->free(be, d_rows);
  return rc;
}

int dt_table_read_rows(dt_table *tb, int64_t first, int64_t n, float *out) {
  dt_backend *be = tb->be;
  if (!tb->sharded) return be->download(be, out, tb->data + first * tb->dim, (size_t)(n * tb->dim) * sizeof(float));
  const int64_t chunk = 65536;
  int32_t *ids = dt_xmalloc((size_t)chunk * sizeof(int32_t));
  int rc = DT_OK;
  for (int64_t lo = 0; lo < n && !rc; lo += chunk) {
    int64_t k = n - lo < chunk ? n - lo : chunk;
    for (int64_t i = 0; i < k; i++) ids[i] = (int32_t)(first + lo + i);
    rc = dt_comm_sharded_lookup(tb->comm, tb->comm_id, ids, k, dt_table_fetch_rows, tb, out + lo * tb->dim);
  }
  free(ids);
  return rc;
}

int dt_table_checksum(const dt_table *tb, uint64_t *sum) {
  size_t bytes = (size_t)((tb->row_hi - tb->row_lo) * tb->dim) * sizeof(float);
  float *host = dt_xmalloc(bytes);
  int rc = tb->be->download(tb->be, host, tb->data, bytes);
  *sum = dt_comm_checksum(DT_COMM_CHECKSUM_INIT, host, bytes);
  free(host);
  return rc;
}
