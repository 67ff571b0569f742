/* cuda_ops_sparse.c: embedding-row gather, sparse-gradient coalescing and
 * the TF-IDF CSR layer of the CUDA backend. Both reductions here (rows of
 * equal ids, entries of one vocabulary column) sort first and then add in
 * input order: deterministic, with no float atomics. */
#include <stdint.h>

#include "backend/cuda/cuda_internal.h"

static int cu_gather_rows(dt_backend *be, float *out, const float *table, const int32_t *ids, int64_t n, int dim) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0 || dim < 0) return dt_cuda_bad_call("gather_rows", "n=%lld dim=%d", (long long)n, dim);
  if (n == 0 || dim == 0) return 0;
  DT_KERNEL(dtk_gather_rows, (c->stream, out, table, ids, n, dim));
  return 0;
}

static int cu_scatter_add_rows(dt_backend *be, float *dst, int64_t dst_rows, const int32_t *ids, const float *src,
                               int64_t n, int dim) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0 || dim < 0) return dt_cuda_bad_call("scatter_add_rows", "n=%lld dim=%d", (long long)n, dim);
  if (n == 0 || dim == 0) return 0;
  DT_KERNEL(dtk_scatter_add_rows, (c->stream, dst, dst_rows, ids, src, n, dim));
  return 0;
}

/* Sort (id, input index) pairs by id (stable: equal ids keep input order),
 * mark where runs of equal ids start, number the runs with a scan, then sum
 * each run's rows in input order. One synchronisation, for m. */
static int cu_coalesce_rows(dt_backend *be, const int32_t *ids, const float *grads, int64_t n, int dim, int32_t *uniq,
                            float *sums, int64_t *m_host) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  *m_host = 0;
  if (n < 0 || dim < 0) return dt_cuda_bad_call("coalesce_rows", "n=%lld dim=%d", (long long)n, dim);
  if (n > INT32_MAX) return dt_cuda_bad_call("coalesce_rows", "%lld rows is more than 2^31-1", (long long)n);
  if (n == 0) return 0;

  const size_t ibytes = (size_t)n * sizeof(int32_t);
  void *keys_sorted, *iota, *perm, *heads, *run_idx, *starts, *temp;
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_0, ibytes, &keys_sorted));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_1, ibytes, &iota));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_2, ibytes, &perm));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_3, ibytes, &heads));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_4, ibytes, &run_idx));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_5, ibytes, &starts));
  size_t sort_bytes = 0, scan_bytes = 0;
  DT_KERNEL(dtk_sort_pairs_i32, (c->stream, NULL, &sort_bytes, ids, keys_sorted, iota, perm, n));
  DT_KERNEL(dtk_exclusive_sum_i32, (c->stream, NULL, &scan_bytes, heads, run_idx, n));
  size_t temp_bytes = sort_bytes > scan_bytes ? sort_bytes : scan_bytes;
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_CUB, temp_bytes, &temp));

  DT_KERNEL(dtk_iota_i32, (c->stream, iota, n));
  sort_bytes = temp_bytes;
  DT_KERNEL(dtk_sort_pairs_i32, (c->stream, temp, &sort_bytes, ids, keys_sorted, iota, perm, n));
  DT_KERNEL(dtk_run_heads, (c->stream, keys_sorted, n, heads));
  scan_bytes = temp_bytes;
  DT_KERNEL(dtk_exclusive_sum_i32, (c->stream, temp, &scan_bytes, heads, run_idx, n));
  DT_KERNEL(dtk_run_starts, (c->stream, keys_sorted, heads, run_idx, n, uniq, starts, c->scalars));
  int32_t m = 0;
  DT_TRY(dt_cuda_small_to_host(c, &m, c->scalars, sizeof m));
  if (m < 1 || m > n)
    return dt_fail(DT_EXIT_RUNTIME, "cuda backend: coalesce_rows found %d runs in %lld ids", m, (long long)n);
  if (dim > 0) DT_KERNEL(dtk_segment_sum_rows, (c->stream, perm, starts, m, n, grads, dim, sums));
  *m_host = m;
  return 0;
}

static int cu_csr_matmul(dt_backend *be, float *out, const int64_t *indptr, const int32_t *indices, const float *values,
                         const int32_t *rows, int64_t n, const float *wt, int o) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0 || o < 0) return dt_cuda_bad_call("csr_matmul", "n=%lld o=%d", (long long)n, o);
  if (n == 0 || o == 0) return 0;
  DT_KERNEL(dtk_csr_matmul, (c->stream, out, indptr, indices, values, rows, n, wt, o));
  return 0;
}

/* The transpose of the batch's CSR rows, built on the device: count each
 * batch row's nonzeros, scan to offsets (one synchronisation, for the
 * total), list the entries, sort them by vocabulary column (stable), and
 * let one block per vocabulary row add its entries in batch order. */
static int cu_csr_matmul_grad(dt_backend *be, float *dwt, const int64_t *indptr, const int32_t *indices,
                              const float *values, const int32_t *rows, int64_t n, const float *dout, int o,
                              int64_t vocab) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0 || o < 0 || vocab < 0)
    return dt_cuda_bad_call("csr_matmul_grad", "n=%lld o=%d vocab=%lld", (long long)n, o, (long long)vocab);
  if (n == 0 || o == 0 || vocab == 0) return 0;

  void *counts, *offsets, *temp;
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_0, (size_t)(n + 1) * sizeof(int64_t), &counts));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_1, (size_t)(n + 1) * sizeof(int64_t), &offsets));
  size_t scan_bytes = 0;
  DT_KERNEL(dtk_exclusive_sum_i64, (c->stream, NULL, &scan_bytes, counts, offsets, n + 1));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_CUB, scan_bytes, &temp));
  DT_KERNEL(dtk_csr_row_counts, (c->stream, indptr, rows, n, counts));
  DT_KERNEL(dtk_exclusive_sum_i64, (c->stream, temp, &scan_bytes, counts, offsets, n + 1));
  int64_t total = 0;
  DT_TRY(dt_cuda_small_to_host(c, &total, (const int64_t *)offsets + n, sizeof total));
  if (total < 0 || total > INT32_MAX)
    return dt_cuda_bad_call("csr_matmul_grad", "%lld nonzeros in one batch (at most 2^31-1)", (long long)total);
  if (total == 0) return 0;

  const size_t ebytes = (size_t)total * sizeof(int32_t);
  void *keys, *ent_idx, *ent_row, *ent_val, *keys_sorted, *perm;
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_2, ebytes, &keys));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_3, ebytes, &ent_idx));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_4, ebytes, &ent_row));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_5, (size_t)total * sizeof(float), &ent_val));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_6, ebytes, &keys_sorted));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_7, ebytes, &perm));
  size_t sort_bytes = 0;
  DT_KERNEL(dtk_sort_pairs_i32, (c->stream, NULL, &sort_bytes, keys, keys_sorted, ent_idx, perm, total));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_CUB, sort_bytes, &temp));

  DT_KERNEL(dtk_csr_expand, (c->stream, indptr, indices, values, rows, offsets, n, keys, ent_idx, ent_row, ent_val));
  DT_KERNEL(dtk_sort_pairs_i32, (c->stream, temp, &sort_bytes, keys, keys_sorted, ent_idx, perm, total));
  DT_KERNEL(dtk_csr_grad_reduce, (c->stream, keys_sorted, perm, ent_row, ent_val, total, dout, o, vocab, dwt));
  return 0;
}

void dt_cuda_fill_sparse_ops(dt_backend *be) {
  be->gather_rows = cu_gather_rows;
  be->scatter_add_rows = cu_scatter_add_rows;
  be->coalesce_rows = cu_coalesce_rows;
  be->csr_matmul = cu_csr_matmul;
  be->csr_matmul_grad = cu_csr_matmul_grad;
}
