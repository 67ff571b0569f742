/* TF-IDF rows (CSR) times a dense [vocab, o] matrix, and its weight
 * gradient. Rows of wt are contiguous, so both loops stream o-long rows. */
#include <omp.h>

#include "backend/cpu/cpu_ops.h"

int dt_cpu_csr_matmul(dt_backend *be, float *out, const int64_t *indptr, const int32_t *indices, const float *values,
                      const int32_t *rows, int64_t n, const float *wt, int o) {
  DT_CPU_REQUIRE(n >= 0 && o >= 0, "csr_matmul", "negative shape n=%lld o=%d", (long long)n, o);
  /* work estimate: the nnz of a TF-IDF row is tens, times o */
  int nt = dt_cpu_threads_for(be, n * o * 16);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 16)
  for (int64_t i = 0; i < n; i++) {
    float *restrict y = out + i * o;
    for (int j = 0; j < o; j++) y[j] = 0.0f;
    int64_t p0 = indptr[rows[i]], p1 = indptr[rows[i] + 1];
    for (int64_t p = p0; p < p1; p++) {
      if (p + 2 < p1) dt_cpu_prefetch(wt + (int64_t)indices[p + 2] * o, (size_t)o * sizeof(float));
      const float *restrict w = wt + (int64_t)indices[p] * o;
      float v = values[p];
      for (int j = 0; j < o; j++) y[j] += v * w[j];
    }
  }
  return 0;
}

/* Columns of dwt per thread slice are a multiple of this (whole cache lines). */
enum { CSR_GRAD_SLICE = 16 };

int dt_cpu_csr_matmul_grad(dt_backend *be, float *dwt, const int64_t *indptr, const int32_t *indices,
                           const float *values, const int32_t *rows, int64_t n, const float *dout, int o,
                           int64_t vocab) {
  DT_CPU_REQUIRE(n >= 0 && o >= 0 && vocab >= 0, "csr_matmul_grad", "negative shape n=%lld o=%d vocab=%lld",
                 (long long)n, o, (long long)vocab);
  /* Scatter into rows of dwt. Threads own disjoint column slices of every
   * row and each walks all (i, nnz) pairs in order, so each dwt element gets
   * its additions in the serial order: same bits for any thread count. */
  int nt = dt_cpu_threads_for(be, n * o * 16);
  int max_slices = (o + CSR_GRAD_SLICE - 1) / CSR_GRAD_SLICE;
  if (nt > max_slices) nt = max_slices > 0 ? max_slices : 1;
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), tn = omp_get_num_threads();
    int blocks = max_slices;
    int j0 = (int)((int64_t)blocks * t / tn) * CSR_GRAD_SLICE;
    int j1 = (int)((int64_t)blocks * (t + 1) / tn) * CSR_GRAD_SLICE;
    if (j1 > o) j1 = o;
    for (int64_t i = 0; i < n; i++) {
      const float *restrict g = dout + i * o;
      int64_t p0 = indptr[rows[i]], p1 = indptr[rows[i] + 1];
      for (int64_t p = p0; p < p1; p++) {
        if (p + 2 < p1) dt_cpu_prefetch(dwt + (int64_t)indices[p + 2] * o + j0, (size_t)(j1 - j0) * sizeof(float));
        float *restrict w = dwt + (int64_t)indices[p] * o;
        float v = values[p];
        for (int j = j0; j < j1; j++) w[j] += v * g[j];
      }
    }
  }
  return 0;
}
