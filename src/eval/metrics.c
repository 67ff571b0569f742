/* metrics.c: ranking metrics of one user (MODEL.md section 3). */
#include <math.h>

#include "dtrain/eval.h"

const int dt_eval_ks[DT_EVAL_NK] = {5, 10, 20};

double dt_ndcg_at(int64_t rank, int k) { return rank <= k ? 1.0 / log2((double)rank + 1.0) : 0.0; }

static int contains_sorted(const int32_t *a, int64_t n, int32_t x) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (a[mid] < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && a[lo] == x;
}

void dt_full_metrics_add(const int32_t *top, int k_max, const int32_t *held, int64_t n_held, dt_metrics *s) {
  if (n_held <= 0) return;
  s->users++;
  double first_hit_rr = 0.0;
  for (int ki = 0; ki < DT_EVAL_NK; ki++) {
    int k = dt_eval_ks[ki] < k_max ? dt_eval_ks[ki] : k_max;
    double dcg = 0, idcg = 0, ap = 0;
    int64_t hits = 0;
    for (int j = 0; j < k; j++) {
      if (top[j] < 0 || !contains_sorted(held, n_held, top[j])) continue;
      hits++;
      dcg += 1.0 / log2((double)j + 2.0);
      ap += (double)hits / (double)(j + 1);
      if (first_hit_rr == 0.0) first_hit_rr = 1.0 / (double)(j + 1);
    }
    int64_t ideal = n_held < k ? n_held : k;
    for (int64_t j = 0; j < ideal; j++) idcg += 1.0 / log2((double)j + 2.0);
    s->recall[ki] += (double)hits / (double)n_held;
    s->ndcg[ki] += idcg > 0 ? dcg / idcg : 0.0;
    s->precision[ki] += (double)hits / (double)dt_eval_ks[ki];
    s->hr[ki] += hits > 0 ? 1.0 : 0.0;
    s->map[ki] += ideal > 0 ? ap / (double)ideal : 0.0;
  }
  /* reciprocal rank of the first hit within the longest list */
  s->mrr += first_hit_rr;
}
