/* Backend-independent helpers of the sequence encoder and the softmax
 * losses (issue 13), written with the op table only. */
#include <math.h>

#include "dtrain/backend.h"
#include "dtrain/error.h"

int64_t dt_attn_probs_floats(const int32_t *offsets_host, int64_t n_seq, int heads) {
  int64_t total = 0;
  for (int64_t s = 0; s < n_seq; s++) {
    const int64_t len = (int64_t)offsets_host[s + 1] - offsets_host[s];
    total += len * len;
  }
  return total * heads;
}

int dt_softmax_xent(dt_backend *be, const float *scores, int64_t n, int c, float scale, float *dscores, float *work,
                    double *loss_sum_host) {
  *loss_sum_host = 0.0;
  if (n < 0 || c < 1)
    return dt_fail(DT_EXIT_RUNTIME, "dt_softmax_xent: bad shape [%lld, %d] (column 0 is the target)", (long long)n, c);
  if (n == 0) return 0;
  float *run_max = work, *run_sum = work + n, *tgt = work + 2 * n;
  DT_TRY(be->xent_stats(be, scores, n, c, c, 0, NULL, 1, run_max, run_sum, tgt));
  /* lse replaces run_max in place */
  DT_TRY(be->xent_loss(be, run_max, run_sum, tgt, n, run_max, loss_sum_host));
  DT_TRY(be->xent_grad(be, scores, n, c, c, 0, NULL, run_max, scale, dscores, c));
  return 0;
}
