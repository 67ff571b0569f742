/* loss_softmax.c: sampled_softmax and softmax (loss.h): softmax
 * cross-entropy of each example's positive against the batch's item list,
 * whose columns the model scores a block at a time.
 *
 * Columns: sampled_softmax = [the example's positive (its candidate score),
 * the n_neg shared negatives (list positions 0..)], the target column 0;
 * softmax = the catalogue (list position = item index), the target the
 * positive's position. The positive's own candidate score is not used by
 * softmax: its column in the catalogue is the same score. */
#include "dtrain/error.h"
#include "loss/loss_internal.h"

int dt_loss_softmax_grad(dt_loss *L, dt_backend *be, dt_model *m, const dt_batch *b, const float *scores,
                         dt_loss_value *v) {
  const int64_t n = b->n, N = b->n_list;
  const int sampled = L->kind == DT_LOSS_SAMPLED_SOFTMAX;
  DT_TRY(be->zero(be, L->d_dscores, (size_t)b->nc * sizeof(float)));
  if (N < 1)
    return dt_fail(DT_EXIT_RUNTIME, "train.loss = %s: the batch has no item list (internal error)",
                   dt_loss_name(L->kind));
  const int64_t K = L->block < N ? L->block : N, blocks = (N + K - 1) / K;
  DT_TRY(dt_loss_grow(be, &L->d_block, &L->block_cap, n * K));
  DT_TRY(dt_loss_grow(be, &L->d_xent, &L->xent_cap, 3 * n));
  float *run_max = L->d_xent, *run_sum = L->d_xent + n, *pos = L->d_xent + 2 * n, *lse = run_max;
  const float scale = (float)(1.0 / v->n_global);
  /* sampled_softmax: column 0 (the target: NULL) is the positive, the list follows */
  const int32_t *target = sampled ? NULL : b->list_target;
  const int64_t col0 = sampled ? 1 : 0;
  int first = 1;
  if (sampled) {
    DT_TRY(be->xent_stats(be, scores, n, 1, b->c, 0, NULL, 1, run_max, run_sum, pos));
    first = 0;
  }
  /* pass 1: every block's running max and sum */
  for (int64_t q = 0; q < blocks; q++) {
    const int64_t lo = q * K, k = N - lo < K ? N - lo : K;
    DT_TRY(dt_model_list_scores(m, b, lo, k, L->d_block));
    DT_TRY(be->xent_stats(be, L->d_block, n, (int)k, (int)k, col0 + lo, target, first, run_max, run_sum, pos));
    first = 0;
  }
  DT_TRY(be->xent_loss(be, run_max, run_sum, pos, n, lse, &v->sums[0]));
  /* pass 2, last block first (its scores are still there): gradients, the model's backward */
  for (int64_t q = blocks - 1; q >= 0; q--) {
    const int64_t lo = q * K, k = N - lo < K ? N - lo : K;
    if (q != blocks - 1) DT_TRY(dt_model_list_scores(m, b, lo, k, L->d_block));
    DT_TRY(be->xent_grad(be, L->d_block, n, (int)k, (int)k, col0 + lo, target, lse, scale, L->d_block, (int)k));
    DT_TRY(dt_model_list_backward(m, b, lo, k, L->d_block));
  }
  if (sampled) DT_TRY(be->xent_grad(be, scores, n, 1, b->c, 0, NULL, lse, scale, L->d_dscores, b->c));
  return DT_OK;
}
