/* embed_exchange.c: a table's part of a step: the sharded lookup, the
 * gradient rows' coalescing and exchange, and the optimizer's row update
 * (embed.h). */
#include <stdlib.h>
#include <string.h>

#include "dtrain/error.h"
#include "embed/embed_internal.h"

int dt_embed_grow_rows(dt_backend *be, int32_t **ids, float **rows, int64_t *cap, int64_t need, int dim) {
  if (need <= *cap && *ids) return DT_OK;
  *cap = need + need / 4 + 16;
  DT_TRY(dt_backend_replace(be, (void **)ids, (size_t)*cap * sizeof(int32_t)));
  return dt_backend_replace(be, (void **)rows, (size_t)(*cap * dim) * sizeof(float));
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* ---- Lookup ---------------------------------------------------------------------- */

int dt_table_lookup(dt_table *tb, int32_t *const *ids, const int64_t *counts, int n_parts) {
  if (!dt_table_needs_lookup(tb)) return DT_OK;
  dt_table_xchg *x = tb->xchg;
  dt_backend *be = tb->be;
  /* the batch's unique global rows, ascending */
  int64_t total = 0;
  for (int p = 0; p < n_parts; p++) total += ids[p] ? counts[p] : 0;
  if (total > x->uniq_cap) {
    x->uniq_cap = total + total / 4 + 16;
    x->uniq = dt_xrealloc(x->uniq, (size_t)x->uniq_cap * sizeof(int32_t));
  }
  int64_t k = 0;
  for (int p = 0; p < n_parts; p++) {
    if (!ids[p]) continue;
    memcpy(x->uniq + k, ids[p], (size_t)counts[p] * sizeof(int32_t));
    k += counts[p];
  }
  qsort(x->uniq, (size_t)k, sizeof(int32_t), cmp_i32);
  int64_t u = 0;
  for (int64_t i = 0; i < k; i++)
    if (u == 0 || x->uniq[u - 1] != x->uniq[i]) x->uniq[u++] = x->uniq[i];
  x->n_uniq = u;
  /* fetch the rows from their owners, into the table's view */
  x->rows_host = dt_xrealloc(x->rows_host, (size_t)((u > 0 ? u : 1) * tb->dim) * sizeof(float));
  DT_TRY(dt_comm_sharded_lookup(tb->comm, tb->comm_id, x->uniq, u, dt_table_fetch_rows, tb, x->rows_host));
  if (u > x->cache_cap) {
    x->cache_cap = u + u / 4 + 16;
    DT_TRY(dt_backend_replace(be, (void **)&x->d_cache, (size_t)(x->cache_cap * tb->dim) * sizeof(float)));
  }
  if (u > 0) DT_TRY(be->upload(be, x->d_cache, x->rows_host, (size_t)(u * tb->dim) * sizeof(float)));
  tb->view = x->d_cache;
  /* global ids -> positions in the view */
  for (int p = 0; p < n_parts; p++) {
    for (int64_t i = 0; ids[p] && i < counts[p]; i++) {
      const int32_t *hit = bsearch(&ids[p][i], x->uniq, (size_t)u, sizeof(int32_t), cmp_i32);
      ids[p][i] = (int32_t)(hit - x->uniq);
    }
  }
  return DT_OK;
}

/* ---- Gradient exchange -------------------------------------------------------------- */

int dt_table_exchange_grads(dt_table *tb, double *sumsq_replicated, double *sumsq_sharded, uint64_t *sent_bytes_floor) {
  dt_backend *be = tb->be;
  dt_table_xchg *x = tb->xchg;
  const int dim = tb->dim;
  int64_t n = tb->grad_n, m = 0;
  DT_TRY(dt_embed_grow_rows(be, &x->d_uniq, &x->d_sums, &x->dsum_cap, n, dim));
  if (n > 0) DT_TRY(be->coalesce_rows(be, tb->grad_ids, tb->grad_rows, n, dim, x->d_uniq, x->d_sums, &m));
  /* the coalesced rows in host memory: the backend's own on the CPU */
  int32_t *ids = x->d_uniq;
  float *rows_h = x->d_sums;
  if (!dt_backend_host_memory(be)) {
    if (m > x->h_cap) {
      x->h_cap = m + m / 4 + 16;
      x->h_ids = dt_xrealloc(x->h_ids, (size_t)x->h_cap * sizeof(int32_t));
      x->h_rows = dt_xrealloc(x->h_rows, (size_t)(x->h_cap * dim) * sizeof(float));
    }
    if (m > 0) {
      DT_TRY(be->download(be, x->h_ids, x->d_uniq, (size_t)m * sizeof(int32_t)));
      DT_TRY(be->download(be, x->h_rows, x->d_sums, (size_t)(m * dim) * sizeof(float)));
    }
    ids = x->h_ids;
    rows_h = x->h_rows;
  }
  *sent_bytes_floor += (uint64_t)m * (uint64_t)dim * sizeof(float);
  if (tb->sharded) {
    /* view positions -> global ids (ascending: the view is sorted); a
     * node-shared table is read by global id already */
    if (!tb->shared_rows)
      for (int64_t k = 0; k < m; k++) ids[k] = x->uniq[ids[k]];
    DT_TRY(dt_comm_sharded_exchange(tb->comm, tb->comm_id, ids, rows_h, m, &x->global));
  } else {
    DT_TRY(dt_comm_replicated_exchange(tb->comm, tb->comm_id, ids, rows_h, m, &x->global));
  }
  double ss = 0;
  const float *restrict rows = x->global.rows;
  /* the simd reduction's lane order is fixed at compile time: same bits every run */
#pragma omp simd reduction(+ : ss)
  for (int64_t k = 0; k < x->global.n * dim; k++) ss += (double)rows[k] * rows[k];
  if (tb->sharded)
    *sumsq_sharded += ss;
  else
    *sumsq_replicated += ss;
  return DT_OK;
}

/* ---- Optimizer update ------------------------------------------------------------- */

static int update_rows(dt_table *tb, dt_sparse_optim optim, const dt_adam_hyper *h, const int32_t *local_ids,
                       const float *grads, int64_t rows) {
  dt_backend *be = tb->be;
  if (optim == DT_SPARSE_ROWWISE_ADAGRAD)
    return be->adagrad_rows(be, tb->data, tb->acc, local_ids, grads, rows, tb->dim, *h);
  return be->adam_rows(be, tb->data, tb->m, tb->v, tb->row_step, local_ids, grads, rows, tb->dim, *h);
}

int dt_table_apply(dt_table *tb, dt_sparse_optim optim, const dt_adam_hyper *hyper) {
  dt_backend *be = tb->be;
  dt_table_xchg *x = tb->xchg;
  int64_t r = x->global.n;
  if (r == 0) return DT_OK;
  /* global ids -> rows of this rank's storage */
  if (tb->row_lo != 0)
    for (int64_t k = 0; k < r; k++) x->global.ids[k] -= (int32_t)tb->row_lo;
  if (dt_backend_host_memory(be)) return update_rows(tb, optim, hyper, x->global.ids, x->global.rows, r);
  DT_TRY(dt_embed_grow_rows(be, &x->d_upd_ids, &x->d_upd_rows, &x->upd_cap, r, tb->dim));
  DT_TRY(be->upload(be, x->d_upd_ids, x->global.ids, (size_t)r * sizeof(int32_t)));
  DT_TRY(be->upload(be, x->d_upd_rows, x->global.rows, (size_t)(r * tb->dim) * sizeof(float)));
  return update_rows(tb, optim, hyper, x->d_upd_ids, x->d_upd_rows, r);
}
