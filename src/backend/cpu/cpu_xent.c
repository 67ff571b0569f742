/* The losses of issue 13 on the CPU: binary cross-entropy over [positive,
 * negatives] score rows, and softmax cross-entropy whose columns arrive in
 * blocks (running max and sum per row, then the loss, then each block's
 * gradient). Rows are independent and split over threads; loss sums are
 * added in row order, in double. */
#include <math.h>

#include "backend/cpu/cpu_ops.h"
#include "dtrain/op_math.h"

int dt_cpu_bce(dt_backend *be, const float *scores, int64_t n, int c, float inv_count, float *dscores,
               double *loss_sum_host) {
  (void)be;
  DT_CPU_REQUIRE(n >= 0 && c >= 1, "bce", "bad shape [%lld, %d] (column 0 is the positive)", (long long)n, c);
  double loss = 0.0; /* one thread, row order: deterministic */
  for (int64_t i = 0; i < n; i++) {
    for (int j = 0; j < c; j++) {
      float ds;
      loss += (double)dt_bce_term(scores[i * c + j], j == 0, &ds);
      dscores[i * c + j] = inv_count * ds;
    }
  }
  *loss_sum_host = loss;
  return 0;
}

static int check_block(const char *op, int64_t n, int cols, int ld, int64_t col0) {
  if (n < 0 || cols < 0 || ld < cols || col0 < 0)
    return dt_fail(DT_EXIT_RUNTIME, "cpu backend %s: block [%lld, %d] with ld=%d at column %lld", op, (long long)n,
                   cols, ld, (long long)col0);
  return 0;
}

int dt_cpu_xent_stats(dt_backend *be, const float *scores, int64_t n, int cols, int ld, int64_t col0,
                      const int32_t *target, int first, float *run_max, float *run_sum, float *tgt_score) {
  DT_TRY(check_block("xent_stats", n, cols, ld, col0));
  int nt = dt_cpu_threads_for(be, n * cols);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float *restrict s = scores + i * ld;
    /* the block's own (max, sum), then merged into the running pair */
    float m = -INFINITY, sum = 0.0f;
    for (int j = 0; j < cols; j++) m = s[j] > m ? s[j] : m;
    if (m > -INFINITY)
      for (int j = 0; j < cols; j++) sum += dt_softmax_term(s[j], m);
    float rm = first ? -INFINITY : run_max[i], rsum = first ? 0.0f : run_sum[i];
    dt_lse_merge(&rm, &rsum, m, sum);
    run_max[i] = rm;
    run_sum[i] = rsum;
    const int64_t t = (target ? (int64_t)target[i] : 0) - col0;
    if (t >= 0 && t < cols) tgt_score[i] = s[t]; /* a target < 0 is in no block */
  }
  return 0;
}

int dt_cpu_xent_loss(dt_backend *be, const float *run_max, const float *run_sum, const float *tgt_score, int64_t n,
                     float *lse, double *loss_sum_host) {
  (void)be;
  DT_CPU_REQUIRE(n >= 0, "xent_loss", "n=%lld", (long long)n);
  double loss = 0.0;
  for (int64_t i = 0; i < n; i++) {
    const float l = dt_lse(run_max[i], run_sum[i]);
    loss += (double)l - (double)tgt_score[i];
    lse[i] = l; /* last: lse may be run_max or run_sum */
  }
  *loss_sum_host = loss;
  return 0;
}

int dt_cpu_xent_grad(dt_backend *be, const float *scores, int64_t n, int cols, int ld, int64_t col0,
                     const int32_t *target, const float *lse, float scale, float *dscores, int ldd) {
  DT_TRY(check_block("xent_grad", n, cols, ld, col0));
  DT_CPU_REQUIRE(ldd >= cols, "xent_grad", "ldd=%d < cols=%d", ldd, cols);
  int nt = dt_cpu_threads_for(be, n * cols);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float *s = scores + i * ld;
    float *g = dscores + i * ldd; /* may be s: each element is read, then written */
    const int64_t t = target ? (int64_t)target[i] - col0 : -col0;
    const float l = lse[i];
    for (int j = 0; j < cols; j++) g[j] = dt_xent_grad(s[j], l, j == t, scale);
  }
  return 0;
}
