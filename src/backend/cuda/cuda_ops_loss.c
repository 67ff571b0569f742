/* cuda_ops_loss.c: the losses of issue 13 on the CUDA backend: binary
 * cross-entropy and the block-wise softmax cross-entropy (xent_stats /
 * xent_loss / xent_grad). Loss sums come back through the deterministic
 * double reduction of reduce.cu, as bpr's. */
#include "backend/cuda/cuda_internal.h"

static int cu_bce(dt_backend *be, const float *scores, int64_t n, int cc, float inv_count, float *dscores,
                  double *loss_sum_host) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  *loss_sum_host = 0.0;
  if (n < 0 || cc < 1) return dt_cuda_bad_call("bce", "n=%lld c=%d", (long long)n, cc);
  if (n == 0) return 0;
  DT_KERNEL(dtk_bce, (c->stream, scores, n, cc, inv_count, dscores, c->partials));
  return dt_cuda_partials_to_host(c, dtk_partial_count(n), loss_sum_host);
}

static int check_block(const char *op, int64_t n, int cols, int ld, int64_t col0) {
  if (n < 0 || cols < 0 || ld < cols || col0 < 0)
    return dt_cuda_bad_call(op, "block [%lld, %d] with ld=%d at column %lld", (long long)n, cols, ld, (long long)col0);
  return 0;
}

static int cu_xent_stats(dt_backend *be, const float *scores, int64_t n, int cols, int ld, int64_t col0,
                         const int32_t *target, int first, float *run_max, float *run_sum, float *tgt_score) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  DT_TRY(check_block("xent_stats", n, cols, ld, col0));
  if (n == 0) return 0;
  DT_KERNEL(dtk_xent_stats, (c->stream, scores, n, cols, ld, col0, target, first, run_max, run_sum, tgt_score));
  return 0;
}

static int cu_xent_loss(dt_backend *be, const float *run_max, const float *run_sum, const float *tgt_score, int64_t n,
                        float *lse, double *loss_sum_host) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  *loss_sum_host = 0.0;
  if (n < 0) return dt_cuda_bad_call("xent_loss", "n=%lld", (long long)n);
  if (n == 0) return 0;
  DT_KERNEL(dtk_xent_loss, (c->stream, run_max, run_sum, tgt_score, n, lse, c->partials));
  return dt_cuda_partials_to_host(c, dtk_partial_count(n), loss_sum_host);
}

static int cu_xent_grad(dt_backend *be, const float *scores, int64_t n, int cols, int ld, int64_t col0,
                        const int32_t *target, const float *lse, float scale, float *dscores, int ldd) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  DT_TRY(check_block("xent_grad", n, cols, ld, col0));
  if (ldd < cols) return dt_cuda_bad_call("xent_grad", "ldd=%d < cols=%d", ldd, cols);
  if (n == 0 || cols == 0) return 0;
  DT_KERNEL(dtk_xent_grad, (c->stream, scores, n, cols, ld, col0, target, lse, scale, dscores, ldd));
  return 0;
}

void dt_cuda_fill_loss_ops(dt_backend *be) {
  be->bce = cu_bce;
  be->xent_stats = cu_xent_stats;
  be->xent_loss = cu_xent_loss;
  be->xent_grad = cu_xent_grad;
}
