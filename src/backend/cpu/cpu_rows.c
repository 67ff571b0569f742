/* Embedding rows: gather (forward) and coalesce (the backward's sparse
 * gradient, one summed row per distinct id). */
#include <string.h>

#include "backend/cpu/cpu_ops.h"

/* rows ahead of the current one whose cache lines are requested */
enum { ROW_PREFETCH = 8 };

int dt_cpu_gather_rows(dt_backend *be, float *out, const float *table, const int32_t *ids, int64_t n, int dim) {
  DT_CPU_REQUIRE(n >= 0 && dim >= 0, "gather_rows", "negative shape n=%lld dim=%d", (long long)n, dim);
  int nt = dt_cpu_threads_for(be, n * dim);
  size_t row_bytes = (size_t)dim * sizeof(float);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; i++) memcpy(out + i * dim, table + (int64_t)ids[i] * dim, row_bytes);
  return 0;
}

/* Sorts (key << 32 | index) pairs by key with a stable LSD radix sort over
 * the key's bytes, so equal keys keep their input order. Bytes on which all
 * keys agree are skipped (ids below 2^16 need two passes). Returns the
 * buffer that holds the result (a or tmp). */
static uint64_t *radix_sort_by_high32(uint64_t *a, uint64_t *tmp, int64_t n) {
  int64_t count[4][256];
  memset(count, 0, sizeof count);
  for (int64_t i = 0; i < n; i++) {
    uint32_t key = (uint32_t)(a[i] >> 32);
    for (int d = 0; d < 4; d++) count[d][(key >> (8 * d)) & 0xff]++;
  }
  uint64_t *src = a, *dst = tmp;
  for (int d = 0; d < 4; d++) {
    int64_t *c = count[d];
    int trivial = 0;
    for (int b = 0; b < 256; b++)
      if (c[b] == n) trivial = 1;
    if (trivial) continue;
    int64_t pos = 0;
    for (int b = 0; b < 256; b++) {
      int64_t cnt = c[b];
      c[b] = pos;
      pos += cnt;
    }
    int shift = 32 + 8 * d;
    for (int64_t i = 0; i < n; i++) dst[c[(src[i] >> shift) & 0xff]++] = src[i];
    uint64_t *t = src;
    src = dst;
    dst = t;
  }
  return src;
}

/* The first k in [0, m] with seg[k] >= e (seg ascending, seg[m] = n). */
static int64_t first_segment_at(const int64_t *seg, int64_t m, int64_t e) {
  int64_t lo = 0, hi = m;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (seg[mid] < e)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int dt_cpu_coalesce_rows(dt_backend *be, const int32_t *ids, const float *grads, int64_t n, int dim, int32_t *uniq,
                         float *sums, int64_t *m_host) {
  DT_CPU_REQUIRE(n >= 0 && dim >= 0, "coalesce_rows", "negative shape n=%lld dim=%d", (long long)n, dim);
  DT_CPU_REQUIRE(n <= (int64_t)UINT32_MAX, "coalesce_rows", "%lld rows exceed 2^32", (long long)n);
  *m_host = 0;
  if (n == 0) return 0;
  /* scratch: pairs[n], tmp[n], segment starts[n+1] */
  uint64_t *pairs = dt_cpu_scratch(be, (size_t)(3 * n + 1) * sizeof(uint64_t), "coalesce_rows");
  if (!pairs) return DT_EXIT_RUNTIME;
  uint64_t *tmp = pairs + n;
  int64_t *seg = (int64_t *)(tmp + n);

  /* flipping the sign bit makes unsigned order equal signed order */
  for (int64_t i = 0; i < n; i++) pairs[i] = ((uint64_t)((uint32_t)ids[i] ^ 0x80000000u) << 32) | (uint64_t)i;
  uint64_t *sorted = radix_sort_by_high32(pairs, tmp, n);

  int64_t m = 0;
  for (int64_t i = 0; i < n; i++) {
    if (i == 0 || (sorted[i] >> 32) != (sorted[i - 1] >> 32)) {
      seg[m] = i;
      uniq[m] = (int32_t)((uint32_t)(sorted[i] >> 32) ^ 0x80000000u);
      m++;
    }
  }
  seg[m] = n;

  /* Each output row is one thread's: sums in input order, any thread
   * count. Threads split the input rows (popular ids have many), at id
   * boundaries. The rows are read in sorted order, i.e. scattered over
   * grads: prefetching a few rows ahead keeps several memory reads in
   * flight (without it the loop waits out one miss per row). */
  int nt = dt_cpu_threads_for(be, n * dim);
  size_t row_bytes = (size_t)dim * sizeof(float);
#pragma omp parallel num_threads(nt)
  {
    int64_t e0, e1;
    dt_cpu_share(n, &e0, &e1);
    int64_t k0 = first_segment_at(seg, m, e0), k1 = first_segment_at(seg, m, e1);
    int64_t e_end = seg[k1];
    for (int64_t k = k0; k < k1; k++) {
      float *restrict s = sums + k * dim;
      for (int64_t e = seg[k]; e < seg[k + 1]; e++) {
        if (e + ROW_PREFETCH < e_end)
          dt_cpu_prefetch(grads + (int64_t)(uint32_t)sorted[e + ROW_PREFETCH] * dim, row_bytes);
        const float *restrict g = grads + (int64_t)(uint32_t)sorted[e] * dim;
        if (e == seg[k])
          memcpy(s, g, row_bytes);
        else
          for (int j = 0; j < dim; j++) s[j] += g[j];
      }
    }
  }
  *m_host = m;
  return 0;
}

int dt_cpu_scatter_add_rows(dt_backend *be, float *dst, int64_t dst_rows, const int32_t *ids, const float *src,
                            int64_t n, int dim) {
  DT_CPU_REQUIRE(n >= 0 && dim >= 0, "scatter_add_rows", "negative shape n=%lld dim=%d", (long long)n, dim);
  /* in-range ids are unique (the spec), so rows never race */
  int nt = dt_cpu_threads_for(be, n * dim);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < n; i++) {
    int64_t r = ids[i];
    if (r < 0 || r >= dst_rows) continue;
    float *restrict d = dst + r * dim;
    const float *restrict s = src + i * dim;
    for (int c = 0; c < dim; c++) d[c] += s[c];
  }
  return 0;
}
