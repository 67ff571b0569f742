/* Top-k per row by a bounded heap: O(cols log k) per row, one pass over the
 * scores, rows in parallel. */
#include <math.h>
#include <omp.h>

#include "backend/cpu/cpu_ops.h"

typedef struct {
  float val;
  int32_t col;
} topk_entry;

/* Whether a ranks above b: higher value, ties to the lower column. */
static inline int ranks_above(topk_entry a, topk_entry b) { return a.val > b.val || (a.val == b.val && a.col < b.col); }

/* Restores the heap (root = the entry ranking lowest) below position i. */
static void sift_down(topk_entry *h, int size, int i) {
  topk_entry e = h[i];
  for (;;) {
    int c = 2 * i + 1;
    if (c >= size) break;
    if (c + 1 < size && ranks_above(h[c], h[c + 1])) c++;
    if (!ranks_above(e, h[c])) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = e;
}

static void sift_up(topk_entry *h, int i) {
  topk_entry e = h[i];
  while (i > 0) {
    int parent = (i - 1) / 2;
    if (!ranks_above(h[parent], e)) break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = e;
}

/* Columns checked together against the heap's current bar. */
enum { TOPK_BLOCK = 16 };

/* One row into idx/val (k slots): heap of the best k seen so far. `h` has
 * room for k entries. Columns come in increasing order, so a value equal to
 * the heap's lowest never displaces it (ties go to the lower column): a
 * column enters only if its value is strictly above the bar (-INFINITY
 * while the heap is not full, which also keeps -INFINITY and NaN out). Most
 * columns of a long row fall below the bar, so whole blocks are tested at
 * once (a vectorised compare) before any heap work. */
static void topk_row(const float *restrict s, int64_t cols, int k, topk_entry *h, int32_t *idx, float *val) {
  int size = 0;
  float bar = -INFINITY;
  for (int64_t j0 = 0; j0 < cols; j0 += TOPK_BLOCK) {
    int64_t j1 = j0 + TOPK_BLOCK < cols ? j0 + TOPK_BLOCK : cols;
    if (j1 - j0 == TOPK_BLOCK) {
      int any = 0;
      for (int t = 0; t < TOPK_BLOCK; t++) any |= s[j0 + t] > bar;
      if (!any) continue;
    }
    for (int64_t j = j0; j < j1; j++) {
      float x = s[j];
      if (!(x > bar)) continue;
      topk_entry e = {x, (int32_t)j};
      if (size < k) {
        h[size] = e;
        sift_up(h, size++);
      } else {
        h[0] = e;
        sift_down(h, size, 0);
      }
      if (size == k) bar = h[0].val;
    }
  }
  /* pop lowest-ranked first, filling the output from the back */
  for (int r = k - 1; r >= size; r--) {
    idx[r] = -1;
    val[r] = -INFINITY;
  }
  for (int r = size - 1; r >= 0; r--) {
    idx[r] = h[0].col;
    val[r] = h[0].val;
    h[0] = h[r];
    sift_down(h, r, 0);
  }
}

int dt_cpu_topk(dt_backend *be, const float *scores, int64_t n, int64_t cols, int k, int32_t *idx_host,
                float *val_host) {
  DT_CPU_REQUIRE(n >= 0 && cols >= 0 && k >= 1, "topk", "bad shape n=%lld cols=%lld k=%d", (long long)n,
                 (long long)cols, k);
  DT_CPU_REQUIRE(cols <= INT32_MAX, "topk", "%lld columns exceed int32 column ids", (long long)cols);
  DT_CPU_REQUIRE(idx_host && val_host, "topk", "idx_host and val_host are required");
  int nt = dt_cpu_threads_for(be, n * cols);
  topk_entry *heaps = dt_cpu_scratch(be, (size_t)nt * (size_t)k * sizeof(topk_entry), "topk");
  if (!heaps) return DT_EXIT_RUNTIME;
#pragma omp parallel num_threads(nt)
  {
    topk_entry *heap = heaps + (size_t)omp_get_thread_num() * (size_t)k;
#pragma omp for schedule(dynamic, 4)
    for (int64_t i = 0; i < n; i++) topk_row(scores + i * cols, cols, k, heap, idx_host + i * k, val_host + i * k);
  }
  return 0;
}
