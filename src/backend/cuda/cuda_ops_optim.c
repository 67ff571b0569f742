/* cuda_ops_optim.c: the optimizers of the CUDA backend: Adam fused over the
 * contiguous dense buffer, lazy Adam and row-wise Adagrad on table rows.
 * The bias corrections are op_math.h's, as on the CPU and in the row
 * kernels. */
#include "backend/cuda/cuda_internal.h"
#include "dtrain/op_math.h"

static int cu_adam(dt_backend *be, float *param, const float *grad, float *m, float *v, int64_t n,
                   dt_adam_hyper hyper) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (n < 0) return dt_cuda_bad_call("adam", "n=%lld", (long long)n);
  if (hyper.step < 1) return dt_cuda_bad_call("adam", "step %lld (steps count from 1)", (long long)hyper.step);
  if (n == 0) return 0;
  DT_KERNEL(dtk_adam, (c->stream, param, grad, m, v, n, hyper, dt_adam_bias_correction(hyper.beta1, hyper.step),
                       dt_adam_bias_correction(hyper.beta2, hyper.step)));
  return 0;
}

static int cu_adam_rows(dt_backend *be, float *table, float *m_table, float *v_table, int64_t *row_step,
                        const int32_t *ids, const float *grads, int64_t m, int dim, dt_adam_hyper hyper) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (m < 0 || dim < 0) return dt_cuda_bad_call("adam_rows", "m=%lld dim=%d", (long long)m, dim);
  if (m == 0) return 0;
  /* Runs with dim == 0 too: the row step counters still advance. */
  DT_KERNEL(dtk_adam_rows, (c->stream, table, m_table, v_table, row_step, ids, grads, m, dim, hyper));
  return 0;
}

static int cu_adagrad_rows(dt_backend *be, float *table, float *acc, const int32_t *ids, const float *grads, int64_t m,
                           int dim, dt_adam_hyper hyper) {
  dt_cuda *c;
  DT_TRY(dt_cuda_enter(be, &c));
  if (m < 0 || dim < 1) return dt_cuda_bad_call("adagrad_rows", "m=%lld dim=%d", (long long)m, dim);
  if (m == 0) return 0;
  DT_KERNEL(dtk_adagrad_rows, (c->stream, table, acc, ids, grads, m, dim, hyper));
  return 0;
}

void dt_cuda_fill_optim_ops(dt_backend *be) {
  be->adam = cu_adam;
  be->adam_rows = cu_adam_rows;
  be->adagrad_rows = cu_adagrad_rows;
}
