/* cuda_ops_eval.c: top-k per score row for evaluation and recommendation. */
#include <math.h>
#include <stdint.h>

#include "backend/cuda/cuda_internal.h"

/* Rows sorted at once on the large-k path: bounds its scratch (4 arrays of
 * this many 4-byte entries, plus CUB's). */
#define DT_CUDA_TOPK_SORT_ITEMS ((int64_t)1 << 24)

static int cu_topk(dt_backend *be, const float *scores, int64_t n, int64_t cols, int k, int32_t *idx_host,
                   float *val_host) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0 || cols < 0 || k < 0)
    return dt_cuda_bad_call("topk", "n=%lld cols=%lld k=%d", (long long)n, (long long)cols, k);
  if (cols > INT32_MAX) return dt_cuda_bad_call("topk", "%lld columns (at most 2^31-1)", (long long)cols);
  if (n == 0 || k == 0) return 0;
  if (cols == 0) {
    for (int64_t i = 0; i < n * k; i++) {
      idx_host[i] = -1;
      val_host[i] = -INFINITY;
    }
    return 0;
  }

  const size_t out_items = (size_t)n * (size_t)k;
  void *idx, *val;
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_0, out_items * sizeof(int32_t), &idx));
  DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_1, out_items * sizeof(float), &val));
  if (k <= DTK_TOPK_SMALL_MAX) {
    DT_KERNEL(dtk_topk_small, (c->stream, scores, n, cols, k, idx, val));
  } else {
    /* Whole-row sorts, a group of rows at a time. */
    int64_t group = DT_CUDA_TOPK_SORT_ITEMS / cols;
    if (group < 1) group = 1;
    if (group > n) group = n;
    const size_t items = (size_t)group * (size_t)cols;
    void *keys, *vals, *keys_sorted, *vals_sorted, *offsets, *temp;
    DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_2, items * sizeof(float), &keys));
    DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_3, items * sizeof(int32_t), &vals));
    DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_4, items * sizeof(float), &keys_sorted));
    DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_5, items * sizeof(int32_t), &vals_sorted));
    DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_6, (size_t)(group + 1) * sizeof(int64_t), &offsets));
    for (int64_t r0 = 0; r0 < n; r0 += group) {
      const int64_t rows = n - r0 < group ? n - r0 : group;
      const float *s = scores + r0 * cols;
      size_t temp_bytes = 0;
      DT_KERNEL(dtk_segmented_sort_desc,
                (c->stream, NULL, &temp_bytes, keys, keys_sorted, vals, vals_sorted, rows * cols, rows, offsets));
      DT_TRY(dt_cuda_scratch(c, DT_CUDA_SCR_CUB, temp_bytes, &temp));
      DT_KERNEL(dtk_topk_sort_prepare, (c->stream, s, rows, cols, keys, vals, offsets));
      DT_KERNEL(dtk_segmented_sort_desc,
                (c->stream, temp, &temp_bytes, keys, keys_sorted, vals, vals_sorted, rows * cols, rows, offsets));
      DT_KERNEL(dtk_topk_sort_pick, (c->stream, s, keys_sorted, vals_sorted, rows, cols, k, (int32_t *)idx + r0 * k,
                                     (float *)val + r0 * k));
    }
  }
  DT_CUDA(cudaMemcpyAsync(idx_host, idx, out_items * sizeof(int32_t), cudaMemcpyDeviceToHost, c->stream));
  DT_CUDA(cudaMemcpyAsync(val_host, val, out_items * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
  DT_CUDA(cudaStreamSynchronize(c->stream));
  return 0;
}

void dt_cuda_fill_eval_ops(dt_backend *be) { be->topk = cu_topk; }
